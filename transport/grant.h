/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Grants: what the master hands a node so that a peer's segment server
 * lets it read or write one range of one segment, until a deadline.
 *
 * The master signs each grant with a keyed hash (XXH3 with a random
 * per-master secret, shared with every node at HELLO); a segment server
 * serves a request only when the grant's MAC is right, the deadline has not
 * passed, the access matches and the requested bytes lie inside the granted
 * range. This keeps a confused or buggy peer inside what it was given; it is
 * not a defence against a peer that knows the secret (the token handshake
 * is the authentication, see ARCHITECTURE.md).
 */
#ifndef MCFS_GRANT_H
#define MCFS_GRANT_H

#include <stddef.h>
#include <stdint.h>

#define MCFS_GRANT_SECRET_LEN 192 /* >= XXH3_SECRET_SIZE_MIN */
#define MCFS_GRANT_READ	      0x1
#define MCFS_GRANT_WRITE      0x2

struct mcfs_grant {
	uint64_t node_id; /* the node whose segment it is */
	uint32_t seg_id;
	uint8_t access; /* MCFS_GRANT_* */
	uint64_t offset;
	uint64_t len;
	uint64_t expiry_ms; /* wall-clock ms (CLOCK_REALTIME) after which it is void */
	uint64_t mac;
};

/* Fill secret with MCFS_GRANT_SECRET_LEN random bytes. 0 or -errno. */
int mcfs_grant_secret_init(uint8_t *secret);

/* The MAC of every field of g but mac itself. */
uint64_t mcfs_grant_mac(const struct mcfs_grant *g, const uint8_t *secret);

/* Set g->mac. */
void mcfs_grant_sign(struct mcfs_grant *g, const uint8_t *secret);

/*
 * May the holder of g do access to [off, off + len) of (node_id, seg_id) at
 * now_ms? 0, -EACCES for a bad MAC, wrong node/segment or access,
 * -ETIMEDOUT when expired, -ERANGE for bytes outside the grant.
 */
int mcfs_grant_check(const struct mcfs_grant *g, const uint8_t *secret, uint64_t node_id,
		     uint32_t seg_id, uint8_t access, uint64_t off, uint64_t len, uint64_t now_ms);

/* Wall-clock ms, the clock grant deadlines use. */
uint64_t mcfs_grant_now_ms(void);

#endif
