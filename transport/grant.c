// SPDX-License-Identifier: Apache-2.0
/*
 * Grant signing and checking (see grant.h). The MAC input is the fields in
 * a fixed little-endian layout, so master and nodes agree whatever their
 * struct padding.
 */
#include "transport/grant.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "common/buf.h"

int mcfs_grant_secret_init(uint8_t *secret)
{
	size_t got = 0;

	while (got < MCFS_GRANT_SECRET_LEN) {
		ssize_t n = getrandom(secret + got, MCFS_GRANT_SECRET_LEN - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

uint64_t mcfs_grant_mac(const struct mcfs_grant *g, const uint8_t *secret)
{
	uint8_t raw[48];
	struct mcfs_buf b = {.data = raw, .cap = sizeof(raw)};

	/* b borrows raw: it has room for all of it, so nothing is reallocated. */
	mcfs_buf_put_u64(&b, g->node_id);
	mcfs_buf_put_u32(&b, g->seg_id);
	mcfs_buf_put_u32(&b, g->access);
	mcfs_buf_put_u64(&b, g->offset);
	mcfs_buf_put_u64(&b, g->len);
	mcfs_buf_put_u64(&b, g->expiry_ms);
	return XXH3_64bits_withSecret(raw, b.len, secret, MCFS_GRANT_SECRET_LEN);
}

void mcfs_grant_sign(struct mcfs_grant *g, const uint8_t *secret)
{
	g->mac = mcfs_grant_mac(g, secret);
}

int mcfs_grant_check(const struct mcfs_grant *g, const uint8_t *secret, uint64_t node_id,
		     uint32_t seg_id, uint8_t access, uint64_t off, uint64_t len, uint64_t now_ms)
{
	if (g->mac != mcfs_grant_mac(g, secret) || g->node_id != node_id || g->seg_id != seg_id ||
	    !(g->access & access))
		return -EACCES;
	if (now_ms > g->expiry_ms)
		return -ETIMEDOUT;
	if (off < g->offset || len > g->len || off - g->offset > g->len - len)
		return -ERANGE;
	return 0;
}

uint64_t mcfs_grant_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
