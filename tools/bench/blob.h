/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Verifiable file contents for mcfs-bench. Every file the bench writes is
 * a blob: a 64-byte header (magic, key, version, length, pool seed, pool
 * offset, crc32c of the header) followed by a body copied from a shared
 * pseudo-random pool at an offset derived from (key, version). A reader
 * that knows the pool checks every byte it read: a header from one writer
 * and a body (or a length) from another is "torn", never silently
 * accepted.
 *
 * Writing a blob costs one memcpy from the pool, and checking one a
 * memcmp, so verification stays cheap next to the I/O being measured.
 */
#ifndef MCFS_BENCH_BLOB_H
#define MCFS_BENCH_BLOB_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_BLOB_HDR_LEN 64
/* bench_blob_check(): accept any key. */
#define BENCH_BLOB_ANY_KEY UINT64_MAX

/* The shared source of body bytes; read-only once built, so threads share it. */
struct bench_pool {
	uint8_t *bytes; /* owned; len bytes */
	size_t len;
	uint64_t seed;
};

/* The decoded header of a blob. */
struct bench_blob_hdr {
	uint64_t key;
	uint64_t version;
	uint64_t len; /* the whole blob, header included */
	uint64_t pool_seed;
	uint64_t pool_off;
};

enum bench_blob_verdict {
	BENCH_BLOB_OK = 0,
	BENCH_BLOB_SHORT,     /* fewer bytes than a header: empty or truncated */
	BENCH_BLOB_CORRUPT,   /* bad magic or header checksum, or another pool */
	BENCH_BLOB_WRONG_KEY, /* a valid blob, but of another key */
	BENCH_BLOB_TORN,      /* valid header, but the length or body is not that writer's */
};

/*
 * Builds the pool: max_body + 1 MiB bytes (so bodies start at many
 * offsets) from a splitmix64 stream seeded with seed. 0 or -ENOMEM.
 * Release with bench_pool_fini().
 */
int bench_pool_init(struct bench_pool *p, uint64_t seed, size_t max_body);
void bench_pool_fini(struct bench_pool *p);

/*
 * Writes the blob of (key, version) of len bytes into buf. len must be at
 * least BENCH_BLOB_HDR_LEN and the body (len - BENCH_BLOB_HDR_LEN) at most
 * the pool's max_body. 0 or -EINVAL.
 */
int bench_blob_fill(const struct bench_pool *p, uint64_t key, uint64_t version, void *buf,
		    size_t len);

/*
 * Checks that buf[0, len) is exactly one complete blob built from pool p,
 * of key want_key (or any key with BENCH_BLOB_ANY_KEY). The decoded header
 * goes to *hdr when it is valid (hdr may be NULL); on BENCH_BLOB_TORN
 * *bad_at (may be NULL) is the offset of the first wrong byte, or len when
 * only the length is wrong.
 */
enum bench_blob_verdict bench_blob_check(const struct bench_pool *p, const void *buf, size_t len,
					 uint64_t want_key, struct bench_blob_hdr *hdr,
					 size_t *bad_at);

const char *bench_blob_verdict_str(enum bench_blob_verdict v);

/* splitmix64: the bench's one pseudo-random generator (state advances). */
uint64_t bench_rand_next(uint64_t *state);
/* A uniform integer in [0, n) (n > 0). */
uint64_t bench_rand_below(uint64_t *state, uint64_t n);

#endif
