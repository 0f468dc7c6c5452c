// SPDX-License-Identifier: Apache-2.0
/*
 * Blob layout (little-endian, 64 bytes of header):
 *
 *   0  magic "MCFSBLB1"     8  key        16 version    24 length
 *   32 pool seed            40 pool offset of the body   48 reserved (0)
 *   56 reserved (0)         60 crc32c of bytes 0..59
 *
 * The body is pool[offset, offset + length - 64). The offset mixes key,
 * version and seed, so two writers of one key almost always have bodies
 * that differ from their first byte on; when they happen to share one the
 * bytes a reader sees are still exactly one writer's, which is all the
 * check promises.
 */
#include "tools/bench/blob.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const uint8_t magic[8] = {'M', 'C', 'F', 'S', 'B', 'L', 'B', '1'};

#define POOL_SLACK (1u << 20)

uint64_t bench_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t bench_rand_below(uint64_t *state, uint64_t n)
{
	/* Lemire's multiply-shift: the bias is below 2^-32 for our n. */
	return (uint64_t)(((unsigned __int128)bench_rand_next(state) * n) >> 64);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

int bench_pool_init(struct bench_pool *p, uint64_t seed, size_t max_body)
{
	uint64_t st = seed, r;
	size_t len = max_body + POOL_SLACK;

	p->bytes = malloc(len);
	if (!p->bytes)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 8) {
		r = bench_rand_next(&st);
		memcpy(p->bytes + i, &r, len - i < 8 ? len - i : 8);
	}
	p->len = len;
	p->seed = seed;
	return 0;
}

void bench_pool_fini(struct bench_pool *p)
{
	if (!p)
		return;
	free(p->bytes);
	p->bytes = NULL;
	p->len = 0;
}

static uint64_t body_off(const struct bench_pool *p, uint64_t key, uint64_t version, size_t body)
{
	uint64_t st = key * 0xd6e8feb86659fd93ull ^ version * 0x9fb21c651e98df25ull ^ p->seed;

	return bench_rand_below(&st, p->len - body + 1);
}

int bench_blob_fill(const struct bench_pool *p, uint64_t key, uint64_t version, void *buf,
		    size_t len)
{
	uint8_t *b = buf;
	size_t body;
	uint64_t off;

	if (len < BENCH_BLOB_HDR_LEN || len - BENCH_BLOB_HDR_LEN > p->len)
		return -EINVAL;
	body = len - BENCH_BLOB_HDR_LEN;
	off = body_off(p, key, version, body);
	memcpy(b, magic, sizeof(magic));
	put_le64(b + 8, key);
	put_le64(b + 16, version);
	put_le64(b + 24, len);
	put_le64(b + 32, p->seed);
	put_le64(b + 40, off);
	memset(b + 48, 0, 12);
	uint32_t crc = mcfs_crc32c(0, b, 60);
	for (int i = 0; i < 4; i++)
		b[60 + i] = (uint8_t)(crc >> (8 * i));
	memcpy(b + BENCH_BLOB_HDR_LEN, p->bytes + off, body);
	return 0;
}

enum bench_blob_verdict bench_blob_check(const struct bench_pool *p, const void *buf, size_t len,
					 uint64_t want_key, struct bench_blob_hdr *hdr,
					 size_t *bad_at)
{
	const uint8_t *b = buf;
	struct bench_blob_hdr h;
	uint32_t crc = 0;
	size_t body;

	if (len < BENCH_BLOB_HDR_LEN)
		return BENCH_BLOB_SHORT;
	for (int i = 3; i >= 0; i--)
		crc = (crc << 8) | b[60 + i];
	if (memcmp(b, magic, sizeof(magic)) || mcfs_crc32c(0, b, 60) != crc)
		return BENCH_BLOB_CORRUPT;
	h.key = get_le64(b + 8);
	h.version = get_le64(b + 16);
	h.len = get_le64(b + 24);
	h.pool_seed = get_le64(b + 32);
	h.pool_off = get_le64(b + 40);
	if (h.pool_seed != p->seed || h.len < BENCH_BLOB_HDR_LEN ||
	    h.len - BENCH_BLOB_HDR_LEN > p->len ||
	    h.pool_off > p->len - (h.len - BENCH_BLOB_HDR_LEN))
		return BENCH_BLOB_CORRUPT;
	if (hdr)
		*hdr = h;
	if (want_key != BENCH_BLOB_ANY_KEY && h.key != want_key)
		return BENCH_BLOB_WRONG_KEY;
	/* Compare the bytes both have first, so a short read names its first bad byte too. */
	body = (len < h.len ? len : h.len) - BENCH_BLOB_HDR_LEN;
	if (memcmp(b + BENCH_BLOB_HDR_LEN, p->bytes + h.pool_off, body)) {
		const uint8_t *want = p->bytes + h.pool_off;
		size_t i = 0;

		while (b[BENCH_BLOB_HDR_LEN + i] == want[i])
			i++;
		if (bad_at)
			*bad_at = BENCH_BLOB_HDR_LEN + i;
		return BENCH_BLOB_TORN;
	}
	if (len != h.len) {
		if (bad_at)
			*bad_at = len < h.len ? len : h.len;
		return BENCH_BLOB_TORN;
	}
	return BENCH_BLOB_OK;
}

const char *bench_blob_verdict_str(enum bench_blob_verdict v)
{
	switch (v) {
	case BENCH_BLOB_OK:
		return "ok";
	case BENCH_BLOB_SHORT:
		return "short";
	case BENCH_BLOB_CORRUPT:
		return "corrupt";
	case BENCH_BLOB_WRONG_KEY:
		return "wrong-key";
	case BENCH_BLOB_TORN:
		return "torn";
	}
	return "?";
}
