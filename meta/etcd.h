/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small etcd v3 client: the JSON gateway of etcd 3.4 (POST /v3/...) over
 * libcurl, parsed with jansson. mcfs-master uses it for leader election (HA)
 * and to keep directory metadata durable; the mcfs daemon uses it to find the
 * leader.
 *
 * Endpoints: a handle holds one or more etcd client URLs. Every call tries the
 * endpoint that answered last, then the others in order; an endpoint that
 * cannot be reached, times out, or answers "unavailable" (gRPC code 14, e.g. a
 * member cut off from its quorum) is skipped. When none answers the call
 * returns the last failure: -ETIMEDOUT (timed out), -EIO (connection refused,
 * reset, truncated reply) or -EAGAIN (every member said unavailable).
 *
 * Errors, all negative errno values:
 *   -EINVAL     bad argument (checked before anything is sent), or gRPC 3
 *   -ENOENT     not found: no such key / lease (gRPC 5, "requested lease not
 *               found"), an expired lease, no leader ("election: no leader")
 *   -ECANCELED  a guarded write whose guard failed; gRPC 1 (cancelled)
 *   -ETIMEDOUT  no answer within the timeout; gRPC 4 (deadline exceeded)
 *   -EEXIST     gRPC 6;  -EPERM: gRPC 7 and 9;  -EACCES: gRPC 16
 *   -ENOSPC     gRPC 8 (etcd's "database space exceeded" and quotas)
 *   -EAGAIN     gRPC 10 (aborted) and 14 (unavailable: retry later)
 *   -ERANGE     gRPC 11: the revision asked for is compacted or in the future
 *   -ENOTSUP    gRPC 12, or the URL is not an etcd v3 gateway (plain 404)
 *   -EBADMSG    a reply that is not the JSON expected (never a crash)
 *   -EMSGSIZE   a reply larger than 256 MiB
 *   -EIO        anything else (gRPC 2, 13, 15; transport failures)
 * mcfs_etcd_errmsg() tells the last error in words (the server's message when
 * it sent one).
 *
 * Threads: a handle is not thread-safe; use one handle from one thread at a
 * time (open one per thread that needs etcd). Different handles may be used
 * concurrently; libcurl's global init is done once, thread-safely.
 *
 * Keys are NUL-free strings; values are arbitrary bytes.
 */
#ifndef MCFS_ETCD_H
#define MCFS_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mcfs_etcd;

/*
 * Open a client over a comma-separated list of endpoints:
 * "http://h:p[,http://h:p...]" (https:// also) or "h:p[,h:p...]"; IPv6 hosts
 * in brackets ("[::1]:2379"). Blanks around commas are ignored. Nothing is
 * contacted yet. 0, -EINVAL (bad list, the reason logged) or -ENOMEM.
 */
int mcfs_etcd_open(const char *urls, struct mcfs_etcd **out);
/* Accepts NULL. */
void mcfs_etcd_close(struct mcfs_etcd *e);
/* Per-request timeout in ms for the short calls (not campaign/observe). Default 2000; 0 = default. */
void mcfs_etcd_set_timeout(struct mcfs_etcd *e, unsigned ms);
/* Keys per range request in mcfs_etcd_get (default 1000; 0 = default). For tests and tuning. */
void mcfs_etcd_set_page_size(struct mcfs_etcd *e, unsigned keys);
/* The last error in words; "" after a success. Belongs to the handle, valid until its next call. */
const char *mcfs_etcd_errmsg(const struct mcfs_etcd *e);

/*
 * Grant a lease of ttl_s seconds (etcd raises small TTLs to its minimum,
 * ~2 s). *lease_id receives its id.
 */
int mcfs_etcd_lease_grant(struct mcfs_etcd *e, unsigned ttl_s, int64_t *lease_id);
/* One keepalive. *ttl_left (may be NULL) gets the TTL renewed. -ENOENT when the lease is gone. */
int mcfs_etcd_lease_keepalive(struct mcfs_etcd *e, int64_t lease_id, int64_t *ttl_left);
/* Revoke a lease and delete its keys. -ENOENT when it does not exist (anymore). */
int mcfs_etcd_lease_revoke(struct mcfs_etcd *e, int64_t lease_id);

/*
 * Put key = val[0..len) (len may be 0; val may then be NULL), attached to
 * lease_id unless it is 0. *revision (may be NULL) gets the store's revision
 * after the put. -ENOENT when the lease does not exist.
 */
int mcfs_etcd_put(struct mcfs_etcd *e, const char *key, const void *val, size_t len,
		  int64_t lease_id, int64_t *revision);

/*
 * Called for each key found, in key order. key and val are borrowed for the
 * call (val is NUL-terminated too, for text). A non-zero return stops the
 * listing and is what mcfs_etcd_get returns (return a negative errno).
 */
typedef int (*mcfs_etcd_kv_fn)(void *arg, const char *key, const void *val, size_t len,
			       int64_t mod_rev);
/*
 * Read key, or every key starting with key when prefix is true ("" with
 * prefix: the whole keyspace). Large prefixes are read in pages, all at the
 * revision of the first page, so the listing is one consistent snapshot.
 * *revision (may be NULL) gets that revision. Finding no key is not an error
 * (0, fn never called). -ERANGE when the snapshot got compacted mid-listing.
 */
int mcfs_etcd_get(struct mcfs_etcd *e, const char *key, bool prefix, mcfs_etcd_kv_fn fn, void *arg,
		  int64_t *revision);
/* Delete key, or every key starting with key. -ENOENT when nothing was deleted. */
int mcfs_etcd_delete(struct mcfs_etcd *e, const char *key, bool prefix);

/*
 * Fenced writes (one transaction): act only if guard_key exists with
 * create_revision == guard_create_rev (> 0), e.g. the leader key of an
 * election and its struct mcfs_etcd_leader.rev: a deposed master's write then
 * fails. -ECANCELED when the guard failed (nothing written).
 */
int mcfs_etcd_put_if(struct mcfs_etcd *e, const char *guard_key, int64_t guard_create_rev,
		     const char *key, const void *val, size_t len);
/* As mcfs_etcd_delete, fenced; deleting nothing is not an error here. */
int mcfs_etcd_delete_if(struct mcfs_etcd *e, const char *guard_key, int64_t guard_create_rev,
			const char *key, bool prefix);

/*
 * Elections (etcd's v3election service, concurrency.Election semantics): a
 * candidate key "<election>/<lease in hex>" is created under the lease; the
 * leader is the candidate with the lowest create revision. The leader key
 * goes away when the leader resigns or its lease expires or is revoked.
 */
struct mcfs_etcd_leader {
	char *name;    /* the election name; owned */
	char *key;     /* the leader key; owned */
	int64_t rev;   /* its create revision: the leadership term (use for put_if) */
	int64_t lease; /* the lease holding it */
	void *value; /* the leader's value (NUL-terminated, owned), may be NULL if value_len == 0 */
	size_t value_len; /* length of value */
};

/*
 * Campaign for leadership of election with lease_id, announcing val. Blocks
 * until elected (0, *out filled) or timeout_ms (0: the handle's timeout)
 * passes: -ETIMEDOUT, and etcd withdraws the candidate key, so call again to
 * keep campaigning. A candidate that already holds the leadership with this
 * lease gets its key back at once (and its value updated to val). If the
 * caller gives up for good after a timeout, it revokes the lease: an
 * election won just as the reply was lost would otherwise stay held.
 * -ENOENT when the lease does not exist.
 */
int mcfs_etcd_campaign(struct mcfs_etcd *e, const char *election, int64_t lease_id, const void *val,
		       size_t len, unsigned timeout_ms, struct mcfs_etcd_leader *out);
/* The current leader of election. -ENOENT when there is none. */
int mcfs_etcd_leader(struct mcfs_etcd *e, const char *election, struct mcfs_etcd_leader *out);
/* Give up leadership l (from campaign). Resigning a leadership already lost is not an error. */
int mcfs_etcd_resign(struct mcfs_etcd *e, const struct mcfs_etcd_leader *l);
/*
 * Wait up to timeout_ms for the leader to differ from known (another key,
 * term or value). known NULL (or with key NULL) means "no leader known":
 * then any leader is news. 0 with *out the new leader (at once if it already
 * differs); -ENOENT as soon as the election has no leader while known names
 * one (the leader key was deleted with no successor); -ETIMEDOUT when nothing
 * changed in time.
 */
int mcfs_etcd_observe(struct mcfs_etcd *e, const char *election,
		      const struct mcfs_etcd_leader *known, unsigned timeout_ms,
		      struct mcfs_etcd_leader *out);
/* Free what l owns and zero it. Accepts a zeroed struct. */
void mcfs_etcd_leader_fini(struct mcfs_etcd_leader *l);

#endif
