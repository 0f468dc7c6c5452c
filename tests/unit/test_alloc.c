// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the segment allocator (meta/alloc.c): rounding, exhaustion,
 * reuse, coalescing in every order, the KV-block fragmentation pattern,
 * resizing, frees and resizes of space that is not live, reserving, and long
 * random runs checked against a bitmap model of the segment.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/alloc.h"

#define K 1024ull
#define M (1024ull * K)
#define G (1024ull * M)
#define T (1024ull * G)

static struct mcfs_alloc *mk(uint64_t size, uint32_t max_allocs)
{
	struct mcfs_alloc *a = NULL;

	cr_assert_eq(mcfs_alloc_create(size, max_allocs, &a), 0);
	cr_assert_not_null(a);
	return a;
}

static struct mcfs_alloc_stats stats(const struct mcfs_alloc *a)
{
	struct mcfs_alloc_stats st;

	mcfs_alloc_stats(a, &st);
	return st;
}

static void assert_stats_eq(const struct mcfs_alloc_stats *x, const struct mcfs_alloc_stats *y)
{
	cr_assert_eq(x->size, y->size);
	cr_assert_eq(x->used, y->used);
	cr_assert_eq(x->free, y->free);
	cr_assert_eq(x->largest_free, y->largest_free);
	cr_assert_eq(x->nr_allocs, y->nr_allocs);
	cr_assert_eq(x->nr_free_ranges, y->nr_free_ranges);
}

/* The whole segment is one free range again. */
static void assert_empty(const struct mcfs_alloc *a)
{
	struct mcfs_alloc_stats st = stats(a);

	cr_assert_eq(st.used, 0);
	cr_assert_eq(st.free, st.size);
	cr_assert_eq(st.largest_free, st.size);
	cr_assert_eq(st.nr_allocs, 0);
	cr_assert_eq(st.nr_free_ranges, 1);
}

Test(alloc, create_args)
{
	struct mcfs_alloc *a = NULL;

	cr_assert_eq(mcfs_alloc_create(0, 16, &a), -EINVAL);
	cr_assert_eq(mcfs_alloc_create(MCFS_ALLOC_ALIGN - 1, 16, &a), -EINVAL);
	cr_assert_eq(mcfs_alloc_create(1 * M, 0, &a), -EINVAL);
	/* 2^32 units and beyond do not fit the allocator's 32-bit unit counts. */
	cr_assert_eq(mcfs_alloc_create(16 * T, 16, &a), -EINVAL);
	cr_assert_eq(mcfs_alloc_create(UINT64_MAX, 16, &a), -EINVAL);
	cr_assert_null(a);
	mcfs_alloc_destroy(NULL);

	/* The size is rounded down to the alignment. */
	a = mk(MCFS_ALLOC_ALIGN * 3 + 100, 16);
	cr_assert_eq(stats(a).size, MCFS_ALLOC_ALIGN * 3);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, basic)
{
	struct mcfs_alloc *a = mk(1 * M, 64);
	struct mcfs_extent e1, e2;
	struct mcfs_alloc_stats st;

	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &e1), 0);
	cr_assert_eq(e1.offset, 0);
	cr_assert_eq(e1.len, 64 * K);
	cr_assert_eq(mcfs_alloc_get(a, 128 * K, &e2), 0);
	cr_assert_eq(e2.offset, 64 * K);
	cr_assert_eq(e2.len, 128 * K);
	cr_assert_leq(e1.offset + e1.len, e2.offset);
	st = stats(a);
	cr_assert_eq(st.used, 192 * K);
	cr_assert_eq(st.free, 1 * M - 192 * K);
	cr_assert_eq(st.largest_free, 1 * M - 192 * K);
	cr_assert_eq(st.nr_allocs, 2);
	cr_assert_eq(st.nr_free_ranges, 1);
	cr_assert_eq(mcfs_alloc_put(a, &e1), 0);
	st = stats(a);
	cr_assert_eq(st.used, 128 * K);
	cr_assert_eq(st.nr_free_ranges, 2);
	cr_assert_eq(mcfs_alloc_put(a, &e2), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, alignment_rounding)
{
	struct mcfs_alloc *a = mk(1 * M, 64);
	static const uint64_t lens[] = {1, 4095, 4096, 4097, 8191, 8192, 12289, 65535};
	uint64_t want_used = 0;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct mcfs_extent e;
		uint64_t want =
		    (lens[i] + MCFS_ALLOC_ALIGN - 1) / MCFS_ALLOC_ALIGN * MCFS_ALLOC_ALIGN;

		cr_assert_eq(mcfs_alloc_get(a, lens[i], &e), 0);
		cr_assert_eq(e.len, want, "len %llu -> %llu, want %llu",
			     (unsigned long long)lens[i], (unsigned long long)e.len,
			     (unsigned long long)want);
		cr_assert_eq(e.offset % MCFS_ALLOC_ALIGN, 0);
		want_used += want;
	}
	cr_assert_eq(stats(a).used, want_used);
	mcfs_alloc_destroy(a);
}

Test(alloc, exhaustion)
{
	struct mcfs_alloc *a = mk(1 * M, 1024);
	struct mcfs_extent e;
	uint32_t n = 0;

	cr_assert_eq(mcfs_alloc_get(a, 0, &e), -EINVAL);
	cr_assert_eq(mcfs_alloc_get(a, 1 * M + 1, &e), -ENOSPC);
	cr_assert_eq(mcfs_alloc_get(a, UINT64_MAX, &e), -ENOSPC);
	while (mcfs_alloc_get(a, 4 * K, &e) == 0)
		n++;
	cr_assert_eq(n, 256);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e), -ENOSPC);
	cr_assert_eq(stats(a).free, 0);
	cr_assert_eq(stats(a).largest_free, 0);
	cr_assert_eq(stats(a).nr_free_ranges, 0);
	mcfs_alloc_destroy(a);

	/* Free space scattered in ranges too small for the request. */
	a = mk(64 * K, 64);
	struct mcfs_extent ex[16];
	for (int i = 0; i < 16; i++)
		cr_assert_eq(mcfs_alloc_get(a, 4 * K, &ex[i]), 0);
	for (int i = 0; i < 16; i += 2)
		cr_assert_eq(mcfs_alloc_put(a, &ex[i]), 0);
	cr_assert_eq(stats(a).free, 32 * K);
	cr_assert_eq(stats(a).largest_free, 4 * K);
	cr_assert_eq(mcfs_alloc_get(a, 8 * K, &e), -ENOSPC);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e), 0);
	mcfs_alloc_destroy(a);
}

Test(alloc, free_and_reuse_same_offset)
{
	struct mcfs_alloc *a = mk(16 * M, 64);
	struct mcfs_extent e[4], again;

	for (int i = 0; i < 4; i++)
		cr_assert_eq(mcfs_alloc_get(a, 1 * M, &e[i]), 0);
	/* A hole of exactly the block size is reused by the next block of that size. */
	cr_assert_eq(mcfs_alloc_put(a, &e[1]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 1 * M, &again), 0);
	cr_assert_eq(again.offset, e[1].offset);
	cr_assert_eq(again.len, 1 * M);
	/* And the last block freed goes back where it came from. */
	cr_assert_eq(mcfs_alloc_put(a, &e[3]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 1 * M, &again), 0);
	cr_assert_eq(again.offset, e[3].offset);
	mcfs_alloc_destroy(a);
}

/* Sizes between bin floors: an exact-size hole must still be found when nothing else fits. */
Test(alloc, reuse_between_bin_floors)
{
	struct mcfs_alloc *a = mk(4 * 300 * K, 64);
	struct mcfs_extent e[4], again;

	for (int i = 0; i < 4; i++)
		cr_assert_eq(mcfs_alloc_get(a, 300 * K, &e[i]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &again), -ENOSPC);
	cr_assert_eq(mcfs_alloc_put(a, &e[2]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 300 * K, &again), 0);
	cr_assert_eq(again.offset, e[2].offset);
	cr_assert_eq(mcfs_alloc_put(a, &e[0]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 296 * K, &again), 0);
	cr_assert_eq(again.offset, 0);
	cr_assert_eq(mcfs_alloc_get(a, 8 * K, &again), -ENOSPC);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &again), 0);
	mcfs_alloc_destroy(a);
}

Test(alloc, coalesce_every_order)
{
	static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
					 {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

	for (int o = 0; o < 6; o++) {
		/* Three adjacent ranges that fill the segment, then again with free space around. */
		for (int pad = 0; pad < 2; pad++) {
			struct mcfs_alloc *a = mk(pad ? 3 * M : 832 * K, 16);
			struct mcfs_extent e[3], lead, full;

			if (pad)
				cr_assert_eq(mcfs_alloc_get(a, 64 * K, &lead), 0);
			cr_assert_eq(mcfs_alloc_get(a, 64 * K, &e[0]), 0);
			cr_assert_eq(mcfs_alloc_get(a, 256 * K, &e[1]), 0);
			cr_assert_eq(mcfs_alloc_get(a, 512 * K, &e[2]), 0);
			cr_assert_eq(e[1].offset, e[0].offset + e[0].len);
			cr_assert_eq(e[2].offset, e[1].offset + e[1].len);
			if (pad)
				cr_assert_eq(mcfs_alloc_put(a, &lead), 0);
			for (int i = 0; i < 3; i++)
				cr_assert_eq(mcfs_alloc_put(a, &e[orders[o][i]]), 0);
			assert_empty(a);
			cr_assert_eq(mcfs_alloc_get(a, stats(a).size, &full), 0, "order %d pad %d",
				     o, pad);
			cr_assert_eq(full.offset, 0);
			mcfs_alloc_destroy(a);
		}
	}
}

Test(alloc, kv_fragmentation)
{
	static const uint64_t sizes[] = {64 * K, 256 * K, 1 * M};
	enum { N = 4096 };
	struct mcfs_alloc *a = mk(1 * G, N);
	struct mcfs_extent *e = calloc(N, sizeof(*e));
	uint64_t *want = calloc(N, sizeof(*want));
	int n = 0;

	cr_assert(e && want);
	/* Fill with a mix of the fixed KV block sizes until nothing fits. */
	for (;; n++) {
		cr_assert_lt(n, N);
		want[n] = sizes[(n * 7 + n / 3) % 3];
		if (mcfs_alloc_get(a, want[n], &e[n]))
			break;
	}
	cr_assert_gt(n, 1000);
	/* Free every other block, then ask for the same sizes again: all must fit. */
	for (int i = 0; i < n; i += 2)
		cr_assert_eq(mcfs_alloc_put(a, &e[i]), 0);
	for (int i = 0; i < n; i += 2)
		cr_assert_eq(mcfs_alloc_get(a, want[i], &e[i]), 0, "block %d of %llu bytes", i,
			     (unsigned long long)want[i]);
	/* And again in the opposite order. */
	for (int i = 0; i < n; i += 2)
		cr_assert_eq(mcfs_alloc_put(a, &e[i]), 0);
	for (int i = n - 2 + (n % 2); i >= 0; i -= 2)
		cr_assert_eq(mcfs_alloc_get(a, want[i], &e[i]), 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(mcfs_alloc_put(a, &e[i]), 0);
	assert_empty(a);
	free(want);
	free(e);
	mcfs_alloc_destroy(a);
}

Test(alloc, resize)
{
	struct mcfs_alloc *a = mk(1 * M, 16);
	struct mcfs_extent e, f, g, bad;
	struct mcfs_alloc_stats st;

	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &e), 0);
	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &f), 0);
	/* Shrink: the tail becomes a free range of its own (f is live after it). */
	cr_assert_eq(mcfs_alloc_resize(a, &e, 10 * K), 0);
	cr_assert_eq(e.len, 12 * K);
	cr_assert_eq(e.offset, 0);
	st = stats(a);
	cr_assert_eq(st.used, 76 * K);
	cr_assert_eq(st.nr_free_ranges, 2);
	/* Grow back into that free tail, exactly. */
	cr_assert_eq(mcfs_alloc_resize(a, &e, 64 * K), 0);
	cr_assert_eq(e.len, 64 * K);
	cr_assert_eq(stats(a).nr_free_ranges, 1);
	/* No room after e: f is live there. */
	cr_assert_eq(mcfs_alloc_resize(a, &e, 68 * K), -EAGAIN);
	cr_assert_eq(e.len, 64 * K);
	/* f is last: it grows into the free space after it, partly. */
	cr_assert_eq(mcfs_alloc_resize(a, &f, 512 * K), 0);
	cr_assert_eq(f.offset, 64 * K);
	cr_assert_eq(f.len, 512 * K);
	cr_assert_eq(stats(a).free, 1 * M - 576 * K);
	/* Shrinking f gives its tail to the free range after it (no new range). */
	cr_assert_eq(mcfs_alloc_resize(a, &f, 128 * K), 0);
	st = stats(a);
	cr_assert_eq(st.nr_free_ranges, 1);
	cr_assert_eq(st.largest_free, 1 * M - 192 * K);
	/* Too big for what follows, and far too big to count. */
	cr_assert_eq(mcfs_alloc_resize(a, &f, 1 * M), -EAGAIN);
	cr_assert_eq(mcfs_alloc_resize(a, &f, UINT64_MAX), -EAGAIN);
	/* Up to the very end of the segment. */
	cr_assert_eq(mcfs_alloc_resize(a, &f, 1 * M - 64 * K), 0);
	cr_assert_eq(stats(a).free, 0);
	cr_assert_eq(stats(a).nr_free_ranges, 0);
	/* Same size: nothing changes. */
	cr_assert_eq(mcfs_alloc_resize(a, &f, 1 * M - 64 * K - 5), 0);
	cr_assert_eq(f.len, 1 * M - 64 * K);
	/* Bad arguments: new_len 0, a range past the end, a misaligned one. */
	cr_assert_eq(mcfs_alloc_resize(a, &f, 0), -EINVAL);
	bad = f;
	bad.offset += 4096;
	cr_assert_eq(mcfs_alloc_resize(a, &bad, 8 * K), -EINVAL);
	bad = f;
	bad.offset += 1;
	cr_assert_eq(mcfs_alloc_resize(a, &bad, 8 * K), -EINVAL);
	cr_assert_eq(stats(a).free, 0);
	cr_assert_eq(f.len, 1 * M - 64 * K);
	/* A freed range cannot be resized, nor one that is partly free. */
	g = e;
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	st = stats(a);
	cr_assert_eq(mcfs_alloc_resize(a, &g, 8 * K), -EINVAL);
	cr_assert_eq(mcfs_alloc_resize(a, &g, 128 * K), -EINVAL);
	bad = (struct mcfs_extent){.offset = 32 * K, .len = 64 * K};
	cr_assert_eq(mcfs_alloc_resize(a, &bad, 8 * K), -EINVAL);
	struct mcfs_alloc_stats now = stats(a);
	assert_stats_eq(&now, &st);
	cr_assert_eq(mcfs_alloc_put(a, &f), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, max_allocs)
{
	struct mcfs_alloc *a = mk(1 * M, 4);
	struct mcfs_extent e[5];

	for (int i = 0; i < 4; i++)
		cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[i]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[4]), -ENOSPC);
	cr_assert_eq(stats(a).nr_allocs, 4);
	cr_assert_eq(mcfs_alloc_put(a, &e[2]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[4]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[2]), -ENOSPC);
	/* Worst case for free ranges: every other unit free, max_allocs live. */
	for (int i = 0; i < 4; i++)
		if (i != 2)
			cr_assert_eq(mcfs_alloc_put(a, &e[i]), 0);
	cr_assert_eq(mcfs_alloc_put(a, &e[4]), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

/* More live ranges than the node array's first size: it must grow. */
Test(alloc, many_small)
{
	enum { N = 20000 };
	struct mcfs_alloc *a = mk(N * 8 * K, N);
	struct mcfs_extent *e = calloc(N, sizeof(*e));

	cr_assert_not_null(e);
	for (int i = 0; i < N; i++)
		cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[i]), 0);
	/* Every other one freed: the most free ranges there can be. */
	for (int i = 0; i < N; i += 2)
		cr_assert_eq(mcfs_alloc_put(a, &e[i]), 0);
	cr_assert_eq(stats(a).nr_free_ranges, N / 2 + 1);
	for (int i = 1; i < N; i += 2)
		cr_assert_eq(mcfs_alloc_resize(a, &e[i], 4 * K), 0);
	for (int i = 1; i < N; i += 2)
		cr_assert_eq(mcfs_alloc_put(a, &e[i]), 0);
	assert_empty(a);
	free(e);
	mcfs_alloc_destroy(a);
}

/* A put that must be refused: -EINVAL and nothing changed. */
static void put_einval(struct mcfs_alloc *a, uint64_t offset, uint64_t len)
{
	struct mcfs_extent x = {.offset = offset, .len = len};
	struct mcfs_alloc_stats before = stats(a), now;
	int ret = mcfs_alloc_put(a, &x);

	cr_assert_eq(ret, -EINVAL, "put [%llu, +%llu): %d", (unsigned long long)offset,
		     (unsigned long long)len, ret);
	now = stats(a);
	assert_stats_eq(&now, &before);
}

/* A resize that must be refused: -EINVAL and nothing changed. */
static void resize_einval(struct mcfs_alloc *a, uint64_t offset, uint64_t len, uint64_t new_len)
{
	struct mcfs_extent x = {.offset = offset, .len = len};
	struct mcfs_alloc_stats before = stats(a), now;
	int ret = mcfs_alloc_resize(a, &x, new_len);

	cr_assert_eq(ret, -EINVAL, "resize [%llu, +%llu) to %llu: %d", (unsigned long long)offset,
		     (unsigned long long)len, (unsigned long long)new_len, ret);
	now = stats(a);
	assert_stats_eq(&now, &before);
}

Test(alloc, double_free_and_bad_ranges)
{
	const uint64_t top = UINT64_MAX - (MCFS_ALLOC_ALIGN - 1);
	struct mcfs_alloc *a = mk(1 * M, 16);
	struct mcfs_extent e, f, h;
	struct mcfs_alloc_stats st;

	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &e), 0);
	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &f), 0);
	cr_assert_eq(e.offset, 0);
	cr_assert_eq(f.offset, 64 * K);
	cr_assert_eq(mcfs_alloc_reserve(a, 1 * M - 64 * K, 64 * K, &h), 0);
	/* Free: [0, 64K), [128K, 960K); live: f = [64K, 128K), h = [960K, 1M). */
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	st = stats(a);
	cr_assert_eq(st.nr_allocs, 2);
	cr_assert_eq(st.used, 128 * K);
	cr_assert_eq(st.nr_free_ranges, 2);

	/* Double free, and resize of the freed range. */
	put_einval(a, e.offset, e.len);
	resize_einval(a, e.offset, e.len, 4 * K);
	/* Ranges never allocated. */
	put_einval(a, 4 * K, 4 * K);
	put_einval(a, 512 * K, 64 * K);
	put_einval(a, 128 * K, 832 * K);
	/* Straddling live and free pages. */
	put_einval(a, 32 * K, 64 * K);	 /* free, then the start of f */
	put_einval(a, 96 * K, 64 * K);	 /* the end of f, then free */
	put_einval(a, 0, 128 * K);	 /* free, then all of f */
	put_einval(a, 64 * K, 68 * K);	 /* all of f, then one free page */
	put_einval(a, 896 * K, 128 * K); /* free, then all of h */
	put_einval(a, 0, 1 * M);	 /* everything */
	resize_einval(a, 32 * K, 64 * K, 4 * K);
	resize_einval(a, 64 * K, 68 * K, 64 * K);
	/* Misaligned offsets, even where the pages are live. */
	put_einval(a, f.offset + 1, f.len);
	put_einval(a, f.offset + 2 * K, 4 * K);
	put_einval(a, h.offset - 1, h.len);
	resize_einval(a, f.offset + 1, f.len, 4 * K);
	/* Zero length. */
	put_einval(a, f.offset, 0);
	put_einval(a, 0, 0);
	put_einval(a, 1 * M, 0);
	/* Past the end, or wrapping around. */
	put_einval(a, h.offset, h.len + 4 * K);
	put_einval(a, 1 * M, 4 * K);
	put_einval(a, 8 * T, 4 * K);
	put_einval(a, top, 4 * K);
	put_einval(a, h.offset, top);
	put_einval(a, top, top);
	resize_einval(a, h.offset, h.len + 4 * K, 4 * K);
	resize_einval(a, 1 * M, 4 * K, 4 * K);
	/* new_len 0 on a live range. */
	resize_einval(a, f.offset, f.len, 0);

	/* After all that, f and h are still live, and free as handed out. */
	st = stats(a);
	cr_assert_eq(st.nr_allocs, 2);
	cr_assert_eq(st.used, 128 * K);
	cr_assert_eq(mcfs_alloc_put(a, &f), 0);
	put_einval(a, f.offset, f.len);
	cr_assert_eq(mcfs_alloc_put(a, &h), 0);
	put_einval(a, h.offset, h.len);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

/* A range freed can be reserved again exactly, and freed again. */
Test(alloc, put_then_reserve_same_range)
{
	struct mcfs_alloc *a = mk(1 * M, 16);
	struct mcfs_extent e, r;

	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &e), 0);
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	assert_empty(a);
	cr_assert_eq(mcfs_alloc_reserve(a, e.offset, e.len, &r), 0);
	cr_assert_eq(r.offset, e.offset);
	cr_assert_eq(r.len, e.len);
	cr_assert_eq(stats(a).used, 64 * K);
	cr_assert_eq(stats(a).nr_allocs, 1);
	cr_assert_eq(mcfs_alloc_put(a, &r), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, huge_segment)
{
	/* Just under the 16 TiB limit; the allocator's memory does not depend on it. */
	struct mcfs_alloc *a = mk(16 * T - MCFS_ALLOC_ALIGN, 16);
	struct mcfs_extent e, f;

	cr_assert_eq(mcfs_alloc_get(a, 8 * T, &e), 0);
	cr_assert_eq(e.len, 8 * T);
	cr_assert_eq(mcfs_alloc_get(a, 8 * T, &f), -ENOSPC);
	cr_assert_eq(mcfs_alloc_get(a, 8 * T - MCFS_ALLOC_ALIGN, &f), 0);
	cr_assert_eq(f.offset, 8 * T);
	cr_assert_eq(stats(a).free, 0);
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	cr_assert_eq(mcfs_alloc_put(a, &f), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

/* A model of the segment, one bit per unit, and the live ranges. */
struct model {
	uint8_t *bits;
	uint32_t units;
	struct mcfs_extent *live;
	uint32_t nlive;
	uint64_t used;
};

static bool model_test(const struct model *m, uint64_t u)
{
	return m->bits[u / 8] & (1u << (u % 8));
}

static void model_mark(struct model *m, const struct mcfs_extent *e, bool set)
{
	for (uint64_t u = e->offset / MCFS_ALLOC_ALIGN; u < (e->offset + e->len) / MCFS_ALLOC_ALIGN;
	     u++) {
		cr_assert_lt(u, m->units, "range past the end");
		cr_assert_eq(model_test(m, u), !set, "unit %llu %s twice", (unsigned long long)u,
			     set ? "allocated" : "freed");
		if (set)
			m->bits[u / 8] |= (uint8_t)(1u << (u % 8));
		else
			m->bits[u / 8] &= (uint8_t) ~(1u << (u % 8));
	}
}

/* The largest run of free units in the model. */
static uint64_t model_largest(const struct model *m)
{
	uint64_t best = 0, run = 0;

	for (uint64_t u = 0; u < m->units; u++) {
		run = model_test(m, u) ? 0 : run + 1;
		if (run > best)
			best = run;
	}
	return best;
}

Test(alloc, random_against_model)
{
	enum { UNITS = 4096, MAX = 512, OPS = 50000 };
	struct mcfs_alloc *a = mk((uint64_t)UNITS * MCFS_ALLOC_ALIGN, MAX);
	struct model m = {.units = UNITS};
	unsigned seed = 12345;

	m.bits = calloc(UNITS / 8, 1);
	m.live = calloc(MAX, sizeof(*m.live));
	cr_assert(m.bits && m.live);
	for (int op = 0; op < OPS; op++) {
		int r = rand_r(&seed) % 100;

		if (r < 50 || m.nlive == 0) {
			/* Mostly small, sometimes large, sizes not aligned. */
			uint64_t len = rand_r(&seed) % 10
					   ? (uint64_t)(rand_r(&seed) % (16 * 4096)) + 1
					   : (uint64_t)(rand_r(&seed) % (512 * 4096)) + 1;
			struct mcfs_extent e;
			int ret = mcfs_alloc_get(a, len, &e);

			if (ret == 0) {
				cr_assert_lt(m.nlive, MAX);
				cr_assert_eq(e.offset % MCFS_ALLOC_ALIGN, 0);
				cr_assert_geq(e.len, len);
				cr_assert_lt(e.len - len, MCFS_ALLOC_ALIGN);
				model_mark(&m, &e, true);
				m.used += e.len;
				m.live[m.nlive++] = e;
			} else {
				cr_assert_eq(ret, -ENOSPC);
				/* Only with max_allocs ranges live or no free range big enough. */
				uint64_t need = (len + MCFS_ALLOC_ALIGN - 1) / MCFS_ALLOC_ALIGN;
				uint64_t largest = model_largest(&m);

				cr_assert(
				    m.nlive == MAX || largest < need + need / 8 + 1,
				    "op %d: -ENOSPC for %llu units with %llu free in one range", op,
				    (unsigned long long)need, (unsigned long long)largest);
			}
		} else if (r < 85) {
			uint32_t i = (uint32_t)rand_r(&seed) % m.nlive;

			model_mark(&m, &m.live[i], false);
			m.used -= m.live[i].len;
			cr_assert_eq(mcfs_alloc_put(a, &m.live[i]), 0);
			/* A second free of the same range is refused and changes nothing. */
			if (rand_r(&seed) % 8 == 0) {
				struct mcfs_alloc_stats before = stats(a), now;

				cr_assert_eq(mcfs_alloc_put(a, &m.live[i]), -EINVAL, "op %d", op);
				now = stats(a);
				assert_stats_eq(&now, &before);
			}
			m.live[i] = m.live[--m.nlive];
		} else {
			uint32_t i = (uint32_t)rand_r(&seed) % m.nlive;
			struct mcfs_extent e = m.live[i];
			uint64_t len = (uint64_t)(rand_r(&seed) % (64 * 4096)) + 1;
			int ret;

			model_mark(&m, &m.live[i], false);
			ret = mcfs_alloc_resize(a, &e, len);
			if (ret == 0) {
				cr_assert_eq(e.offset, m.live[i].offset);
				cr_assert_geq(e.len, len);
				cr_assert_lt(e.len - len, MCFS_ALLOC_ALIGN);
			} else {
				cr_assert_eq(ret, -EAGAIN);
				cr_assert_gt(len, m.live[i].len);
				cr_assert_eq(e.len, m.live[i].len);
			}
			model_mark(&m, &e, true);
			m.used = m.used - m.live[i].len + e.len;
			m.live[i] = e;
		}
		if (op % 97 == 0 || op == OPS - 1) {
			struct mcfs_alloc_stats st = stats(a);

			cr_assert_eq(st.used, m.used, "op %d", op);
			cr_assert_eq(st.free, st.size - m.used);
			cr_assert_eq(st.nr_allocs, m.nlive);
			cr_assert_eq(st.largest_free, model_largest(&m) * MCFS_ALLOC_ALIGN, "op %d",
				     op);
		}
	}
	while (m.nlive) {
		m.nlive--;
		cr_assert_eq(mcfs_alloc_put(a, &m.live[m.nlive]), 0);
	}
	assert_empty(a);
	free(m.live);
	free(m.bits);
	mcfs_alloc_destroy(a);
}

/* The number of maximal runs of free units in the model: free ranges always coalesce. */
static uint32_t model_free_runs(const struct model *m)
{
	uint32_t runs = 0;

	for (uint64_t u = 0; u < m->units; u++)
		if (!model_test(m, u) && (u == 0 || model_test(m, u - 1)))
			runs++;
	return runs;
}

/* True when some unit of [offset, offset + len) is allocated in the model. */
static bool model_any(const struct model *m, uint64_t offset, uint64_t len)
{
	for (uint64_t u = offset / MCFS_ALLOC_ALIGN; u < (offset + len) / MCFS_ALLOC_ALIGN; u++)
		if (model_test(m, u))
			return true;
	return false;
}

/* Reserve a range that must be free, and check what comes back. */
static struct mcfs_extent rsv(struct mcfs_alloc *a, uint64_t offset, uint64_t len)
{
	struct mcfs_extent e;
	int ret = mcfs_alloc_reserve(a, offset, len, &e);

	cr_assert_eq(ret, 0, "reserve [%llu, +%llu): %d", (unsigned long long)offset,
		     (unsigned long long)len, ret);
	cr_assert_eq(e.offset, offset);
	cr_assert_eq(e.len, len);
	return e;
}

/* Check the stats the reserve tests care about. */
static void assert_shape(const struct mcfs_alloc *a, uint64_t used, uint32_t nr_allocs,
			 uint32_t nr_free_ranges, uint64_t largest_free)
{
	struct mcfs_alloc_stats st = stats(a);

	cr_assert_eq(st.used, used, "used %llu, want %llu", (unsigned long long)st.used,
		     (unsigned long long)used);
	cr_assert_eq(st.free, st.size - used);
	cr_assert_eq(st.nr_allocs, nr_allocs);
	cr_assert_eq(st.nr_free_ranges, nr_free_ranges, "%u free ranges, want %u",
		     st.nr_free_ranges, nr_free_ranges);
	cr_assert_eq(st.largest_free, largest_free, "largest free %llu, want %llu",
		     (unsigned long long)st.largest_free, (unsigned long long)largest_free);
}

Test(alloc, reserve_positions)
{
	struct mcfs_alloc *a = mk(1 * M, 64);
	struct mcfs_extent s, mid, end, gap1, gap2, e;

	/* At the start of the segment: one free range after it. */
	s = rsv(a, 0, 64 * K);
	assert_shape(a, 64 * K, 1, 1, 1 * M - 64 * K);
	/* In the middle of a free range: free on both sides. */
	mid = rsv(a, 512 * K, 64 * K);
	assert_shape(a, 128 * K, 2, 2, 448 * K);
	/* At the very end. */
	end = rsv(a, 1 * M - 64 * K, 64 * K);
	assert_shape(a, 192 * K, 3, 2, 448 * K);
	/* Exactly a whole free range, each side live: the free range is gone. */
	gap2 = rsv(a, 576 * K, 384 * K);
	assert_shape(a, 576 * K, 4, 1, 448 * K);
	gap1 = rsv(a, 64 * K, 448 * K);
	assert_shape(a, 1 * M, 5, 0, 0);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e), -ENOSPC);
	cr_assert_eq(mcfs_alloc_reserve(a, 4 * K, 4 * K, &e), -EEXIST);

	/* Ranges from a reserve resize and free as those from mcfs_alloc_get(). */
	cr_assert_eq(mcfs_alloc_resize(a, &mid, 16 * K), 0);
	assert_shape(a, 1 * M - 48 * K, 5, 1, 48 * K);
	cr_assert_eq(mcfs_alloc_resize(a, &mid, 64 * K), 0);
	assert_shape(a, 1 * M, 5, 0, 0);

	/* Freed in an order that coalesces on both sides. */
	cr_assert_eq(mcfs_alloc_put(a, &mid), 0);
	cr_assert_eq(mcfs_alloc_put(a, &mid), -EINVAL); /* a second put changes nothing */
	assert_shape(a, 1 * M - 64 * K, 4, 1, 64 * K);
	cr_assert_eq(mcfs_alloc_put(a, &s), 0);
	cr_assert_eq(mcfs_alloc_put(a, &end), 0);
	assert_shape(a, 832 * K, 2, 3, 64 * K);
	cr_assert_eq(mcfs_alloc_put(a, &gap2), 0);
	cr_assert_eq(mcfs_alloc_put(a, &gap1), 0);
	assert_empty(a);
	/* And the space is whole again. */
	cr_assert_eq(mcfs_alloc_get(a, 1 * M, &e), 0);
	cr_assert_eq(e.offset, 0);
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	mcfs_alloc_destroy(a);

	/* The whole segment at once, in one whose size is not a multiple of the alignment. */
	a = mk(1 * M + 100, 4);
	e = rsv(a, 0, 1 * M);
	assert_shape(a, 1 * M, 1, 0, 0);
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	assert_empty(a);
	e = rsv(a, 1 * M - 4 * K, 4 * K);
	assert_shape(a, 4 * K, 1, 1, 1 * M - 4 * K);
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, reserve_adjacent)
{
	enum { UP = 64, DOWN = 32 };
	struct mcfs_alloc *a = mk(1 * M, 256);
	struct mcfs_extent up[UP], down[DOWN], lo, hi, rest, e;

	/* Increasing and adjacent: only the free tail remains, as one range. */
	for (int i = 0; i < UP; i++)
		up[i] = rsv(a, (uint64_t)i * 4 * K, 4 * K);
	assert_shape(a, 256 * K, UP, 1, 768 * K);
	/* Decreasing and adjacent, down from the end. */
	for (int i = 0; i < DOWN; i++)
		down[i] = rsv(a, 1 * M - (uint64_t)(i + 1) * 8 * K, 8 * K);
	assert_shape(a, 512 * K, UP + DOWN, 1, 512 * K);
	/* Touching the live ranges on either side of the free one in the middle. */
	lo = rsv(a, 256 * K, 4 * K);
	hi = rsv(a, 764 * K, 4 * K);
	assert_shape(a, 520 * K, UP + DOWN + 2, 1, 504 * K);
	/* A get takes from what is left and does not overlap. */
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e), 0);
	cr_assert_geq(e.offset, 260 * K);
	cr_assert_leq(e.offset + e.len, 764 * K);
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	rest = rsv(a, 260 * K, 504 * K);
	assert_shape(a, 1 * M, UP + DOWN + 3, 0, 0);

	/* Every other one freed: each a free range of its own. */
	for (int i = 0; i < UP; i += 2)
		cr_assert_eq(mcfs_alloc_put(a, &up[i]), 0);
	assert_shape(a, 1 * M - 128 * K, UP / 2 + DOWN + 3, UP / 2, 4 * K);
	for (int i = 1; i < UP; i += 2)
		cr_assert_eq(mcfs_alloc_put(a, &up[i]), 0);
	assert_shape(a, 768 * K, DOWN + 3, 1, 256 * K);
	cr_assert_eq(mcfs_alloc_put(a, &rest), 0);
	for (int i = DOWN - 1; i >= 0; i--)
		cr_assert_eq(mcfs_alloc_put(a, &down[i]), 0);
	cr_assert_eq(mcfs_alloc_put(a, &lo), 0);
	cr_assert_eq(mcfs_alloc_put(a, &hi), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, reserve_overlap)
{
	static const uint64_t bad[][2] = {
	    {0, 4 * K},		      /* inside a range from get */
	    {60 * K, 8 * K},	      /* across the end of it */
	    {128 * K, 132 * K},	      /* free, then into the reserved range */
	    {252 * K, 8 * K},	      /* across the start of the reserved range */
	    {256 * K, 64 * K},	      /* the reserved range exactly */
	    {260 * K, 4 * K},	      /* inside it */
	    {316 * K, 8 * K},	      /* across its end */
	    {0, 1 * M},		      /* everything */
	    {64 * K, 1 * M - 64 * K}, /* free, live, free */
	};
	struct mcfs_alloc *a = mk(1 * M, 64);
	struct mcfs_alloc_stats before;
	struct mcfs_extent g, r, e, f1, f2;

	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &g), 0);
	cr_assert_eq(g.offset, 0);
	r = rsv(a, 256 * K, 64 * K);
	before = stats(a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(mcfs_alloc_reserve(a, bad[i][0], bad[i][1], &e), -EEXIST, "case %zu",
			     i);
		struct mcfs_alloc_stats now = stats(a);
		assert_stats_eq(&now, &before);
	}
	/* Unchanged indeed: the free ranges are exactly where they were. */
	f1 = rsv(a, 64 * K, 192 * K);
	f2 = rsv(a, 320 * K, 704 * K);
	assert_shape(a, 1 * M, 4, 0, 0);
	cr_assert_eq(mcfs_alloc_put(a, &f1), 0);
	cr_assert_eq(mcfs_alloc_put(a, &f2), 0);
	cr_assert_eq(mcfs_alloc_put(a, &g), 0);
	cr_assert_eq(mcfs_alloc_put(a, &r), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, reserve_einval)
{
	const uint64_t top = UINT64_MAX - (MCFS_ALLOC_ALIGN - 1);
	const uint64_t bad[][2] = {
	    {0, 0},
	    {4 * K, 0},
	    {1, 4 * K},
	    {2 * K, 4 * K},
	    {4 * K, 1},
	    {4 * K, 4 * K + 1},
	    {0, 2 * K},
	    {1 * M, 4 * K},
	    {1 * M, 0},
	    {1 * M - 4 * K, 8 * K},
	    {0, 1 * M + 4 * K},
	    {top, 4 * K},
	    {4 * K, top},
	    {top, top},
	    {8 * T, 4 * K},
	    {4 * K, UINT64_MAX},
	};
	struct mcfs_alloc *a = mk(1 * M + 100, 64);
	struct mcfs_extent e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mcfs_alloc_reserve(a, bad[i][0], bad[i][1], &e), -EINVAL,
			     "case %zu: [%llu, +%llu)", i, (unsigned long long)bad[i][0],
			     (unsigned long long)bad[i][1]);
	assert_empty(a);
	/* Misaligned is -EINVAL even where the range is also allocated. */
	e = rsv(a, 0, 64 * K);
	cr_assert_eq(mcfs_alloc_reserve(a, 2 * K, 4 * K, &e), -EINVAL);
	cr_assert_eq(mcfs_alloc_put(a, &e), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

Test(alloc, reserve_enospc)
{
	struct mcfs_alloc *a = mk(1 * M, 3);
	struct mcfs_extent e[3], x;
	struct mcfs_alloc_stats before;

	e[0] = rsv(a, 0, 4 * K);
	e[1] = rsv(a, 512 * K, 4 * K);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[2]), 0);
	before = stats(a);
	cr_assert_eq(mcfs_alloc_reserve(a, 256 * K, 4 * K, &x), -ENOSPC);
	/* An overlap is reported as such even with max_allocs ranges live. */
	cr_assert_eq(mcfs_alloc_reserve(a, 512 * K, 4 * K, &x), -EEXIST);
	struct mcfs_alloc_stats now = stats(a);
	assert_stats_eq(&now, &before);
	cr_assert_eq(mcfs_alloc_put(a, &e[1]), 0);
	x = rsv(a, 256 * K, 4 * K);
	cr_assert_eq(mcfs_alloc_put(a, &x), 0);
	cr_assert_eq(mcfs_alloc_put(a, &e[0]), 0);
	cr_assert_eq(mcfs_alloc_put(a, &e[2]), 0);
	assert_empty(a);
	mcfs_alloc_destroy(a);
}

/* Recovery: reserve the reported ranges, then gets must only ever use the rest. */
Test(alloc, reserve_then_fill)
{
	enum { UNITS = 4096, MAX = 8192 };
	struct mcfs_alloc *a = mk((uint64_t)UNITS * MCFS_ALLOC_ALIGN, MAX);
	struct model m = {.units = UNITS};
	unsigned seed = 777;
	uint32_t nres = 0;
	struct mcfs_extent e;

	m.bits = calloc(UNITS / 8, 1);
	m.live = calloc(MAX, sizeof(*m.live));
	cr_assert(m.bits && m.live);
	/* Sorted by offset, random lengths and gaps (sometimes none). */
	for (uint64_t u = (uint64_t)(rand_r(&seed) % 4);;) {
		uint64_t len = (uint64_t)(rand_r(&seed) % 16) + 1;

		if (u + len > UNITS)
			break;
		e = rsv(a, u * MCFS_ALLOC_ALIGN, len * MCFS_ALLOC_ALIGN);
		model_mark(&m, &e, true);
		m.used += e.len;
		m.live[m.nlive++] = e;
		nres++;
		u += len + (uint64_t)(rand_r(&seed) % 3 ? rand_r(&seed) % 16 : 0);
	}
	cr_assert_gt(nres, 100);
	assert_shape(a, m.used, m.nlive, model_free_runs(&m), model_largest(&m) * MCFS_ALLOC_ALIGN);
	/* Fill what is left with gets of mixed sizes, then of single units: none may overlap. */
	for (int small = 0; small < 2; small++) {
		for (;;) {
			uint64_t len = small ? 4 * K : (uint64_t)(rand_r(&seed) % (8 * 4096)) + 1;

			if (mcfs_alloc_get(a, len, &e)) {
				if (small)
					break;
				if (rand_r(&seed) % 16 == 0)
					break;
				continue;
			}
			cr_assert_lt(m.nlive, MAX);
			model_mark(&m, &e, true); /* fails on any unit allocated twice */
			m.used += e.len;
			m.live[m.nlive++] = e;
		}
	}
	cr_assert_eq(m.used, (uint64_t)UNITS * MCFS_ALLOC_ALIGN);
	assert_shape(a, m.used, m.nlive, 0, 0);
	/* Free everything in random order: one free range of the full size again. */
	while (m.nlive) {
		uint32_t i = (uint32_t)rand_r(&seed) % m.nlive;

		cr_assert_eq(mcfs_alloc_put(a, &m.live[i]), 0);
		m.live[i] = m.live[--m.nlive];
	}
	assert_empty(a);
	free(m.live);
	free(m.bits);
	mcfs_alloc_destroy(a);
}

/*
 * Ranges reserved in shuffled, decreasing, and increasing order, many more than
 * the cursor can walk past: the index path and its rebuilds.
 */
Test(alloc, reserve_any_order)
{
	enum { N = 100000 };
	uint64_t *off = calloc(N, sizeof(*off)), *len = calloc(N, sizeof(*len));
	uint32_t *perm = calloc(N, sizeof(*perm));
	struct mcfs_extent *e = calloc(N, sizeof(*e));
	unsigned seed = 4242;
	uint64_t u = 0, used = 0;
	uint32_t gaps = 0;

	cr_assert(off && len && perm && e);
	for (uint32_t i = 0; i < N; i++) {
		uint64_t gap = (uint64_t)(rand_r(&seed) % 4);

		gaps += gap != 0;
		u += gap;
		off[i] = u * MCFS_ALLOC_ALIGN;
		len[i] = ((uint64_t)(rand_r(&seed) % 4) + 1) * MCFS_ALLOC_ALIGN;
		used += len[i];
		u += len[i] / MCFS_ALLOC_ALIGN;
		perm[i] = i;
	}
	for (int order = 0; order < 3; order++) {
		struct mcfs_alloc *a = mk((u + 5) * MCFS_ALLOC_ALIGN, N);
		struct mcfs_extent x;

		for (uint32_t i = 0; i < N; i++) {
			if (order == 0) { /* Fisher-Yates */
				uint32_t j = i + (uint32_t)rand_r(&seed) % (N - i), t = perm[i];

				perm[i] = perm[j];
				perm[j] = t;
			} else {
				perm[i] = order == 1 ? N - 1 - i : i;
			}
			e[perm[i]] = rsv(a, off[perm[i]], len[perm[i]]);
		}
		/* The gaps between reported ranges stay free, plus the 5 units at the end. */
		assert_shape(a, used, N, gaps + 1, 5 * MCFS_ALLOC_ALIGN);
		for (uint32_t i = 0; i < N; i += 997) {
			cr_assert_eq(mcfs_alloc_reserve(a, off[i], len[i], &x), -EEXIST);
			cr_assert_eq(mcfs_alloc_reserve(a, off[i] + len[i] - MCFS_ALLOC_ALIGN,
							MCFS_ALLOC_ALIGN, &x),
				     -EEXIST);
		}
		for (uint32_t i = 0; i < N; i++)
			cr_assert_eq(mcfs_alloc_put(a, &e[perm[(i * 7919u) % N]]), 0);
		assert_empty(a);
		mcfs_alloc_destroy(a);
	}
	free(e);
	free(perm);
	free(len);
	free(off);
}

/* The recovery case at full scale: 1M ranges of 4-64 KiB, sorted, with random gaps, in 64 GiB. */
Test(alloc, reserve_million_sorted)
{
	enum { N = 1000000 };
	struct mcfs_alloc *a = mk(64 * G, N);
	struct mcfs_extent *h = calloc(N, sizeof(*h));
	unsigned seed = 99;
	uint64_t off = 0, used = 0;
	struct mcfs_extent e;

	cr_assert_not_null(h);
	for (uint32_t i = 0; i < N; i++) {
		uint64_t len = ((uint64_t)(rand_r(&seed) % 16) + 1) * 4 * K;

		off += (uint64_t)(rand_r(&seed) % 4) * 4 * K;
		cr_assert_eq(mcfs_alloc_reserve(a, off, len, &h[i]), 0, "range %u", i);
		off += len;
		used += len;
	}
	cr_assert_eq(stats(a).used, used);
	cr_assert_eq(stats(a).nr_allocs, N);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e), -ENOSPC); /* max_allocs ranges live */
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(mcfs_alloc_put(a, &h[i]), 0, "range %u", i);
	assert_empty(a);
	free(h);
	mcfs_alloc_destroy(a);
}

/* get, put, resize and reserve at random, checked against the bitmap model after every op. */
Test(alloc, random_with_reserve)
{
	enum { UNITS = 4096, MAX = 512, OPS = 40000 };
	struct mcfs_alloc *a = mk((uint64_t)UNITS * MCFS_ALLOC_ALIGN, MAX);
	struct model m = {.units = UNITS};
	unsigned seed = 31337;
	uint32_t nres_ok = 0, nres_exist = 0, nres_nospc = 0;

	m.bits = calloc(UNITS / 8, 1);
	m.live = calloc(MAX, sizeof(*m.live));
	cr_assert(m.bits && m.live);
	for (int op = 0; op < OPS; op++) {
		int r = rand_r(&seed) % 100;
		struct mcfs_alloc_stats before = stats(a);

		if (r < 30) {
			uint64_t len = (uint64_t)(rand_r(&seed) % (16 * 4096)) + 1;
			struct mcfs_extent e;
			int ret = mcfs_alloc_get(a, len, &e);

			if (ret == 0) {
				model_mark(&m, &e, true);
				m.used += e.len;
				m.live[m.nlive++] = e;
			} else {
				cr_assert_eq(ret, -ENOSPC);
			}
		} else if (r < 60 && m.nlive) {
			uint32_t i = (uint32_t)rand_r(&seed) % m.nlive;

			model_mark(&m, &m.live[i], false);
			m.used -= m.live[i].len;
			cr_assert_eq(mcfs_alloc_put(a, &m.live[i]), 0);
			m.live[i] = m.live[--m.nlive];
		} else if (r < 70 && m.nlive) {
			uint32_t i = (uint32_t)rand_r(&seed) % m.nlive;
			struct mcfs_extent e = m.live[i];
			uint64_t len = (uint64_t)(rand_r(&seed) % (32 * 4096)) + 1;

			model_mark(&m, &m.live[i], false);
			if (mcfs_alloc_resize(a, &e, len))
				cr_assert_eq(e.len, m.live[i].len);
			model_mark(&m, &e, true);
			m.used = m.used - m.live[i].len + e.len;
			m.live[i] = e;
		} else {
			/* A reserve: mostly inside a free run, else anywhere (often overlapping). */
			uint64_t u = (uint64_t)rand_r(&seed) % UNITS, end, len;
			struct mcfs_extent e;
			int ret, want;

			if (rand_r(&seed) % 4) {
				while (u < UNITS && model_test(&m, u))
					u++;
				if (u == UNITS)
					continue;
				for (end = u; end < UNITS && !model_test(&m, end); end++)
					;
				/* Sometimes the whole run, from its start. */
				if (rand_r(&seed) % 8 == 0) {
					while (u > 0 && !model_test(&m, u - 1))
						u--;
					len = end - u;
				} else {
					len = (uint64_t)rand_r(&seed) % (end - u) + 1;
					if (len > 64)
						len = (uint64_t)rand_r(&seed) % 64 + 1;
				}
			} else {
				len = (uint64_t)rand_r(&seed) % 64 + 1;
				if (u + len > UNITS)
					len = UNITS - u;
			}
			ret =
			    mcfs_alloc_reserve(a, u * MCFS_ALLOC_ALIGN, len * MCFS_ALLOC_ALIGN, &e);
			want = model_any(&m, u * MCFS_ALLOC_ALIGN, len * MCFS_ALLOC_ALIGN) ? -EEXIST
			       : m.nlive == MAX						   ? -ENOSPC
											   : 0;
			cr_assert_eq(ret, want, "op %d: reserve [%llu, +%llu) units: %d, want %d",
				     op, (unsigned long long)u, (unsigned long long)len, ret, want);
			if (ret == 0) {
				cr_assert_eq(e.offset, u * MCFS_ALLOC_ALIGN);
				cr_assert_eq(e.len, len * MCFS_ALLOC_ALIGN);
				model_mark(&m, &e, true);
				m.used += e.len;
				m.live[m.nlive++] = e;
				nres_ok++;
			} else {
				struct mcfs_alloc_stats now = stats(a);

				assert_stats_eq(&now, &before);
				if (ret == -EEXIST)
					nres_exist++;
				else
					nres_nospc++;
			}
		}
		if (op % 7 == 0 || op == OPS - 1) {
			struct mcfs_alloc_stats st = stats(a);

			cr_assert_eq(st.used, m.used, "op %d", op);
			cr_assert_eq(st.free, st.size - m.used);
			cr_assert_eq(st.nr_allocs, m.nlive);
			cr_assert_eq(st.nr_free_ranges, model_free_runs(&m), "op %d", op);
			cr_assert_eq(st.largest_free, model_largest(&m) * MCFS_ALLOC_ALIGN, "op %d",
				     op);
		}
	}
	/* Every outcome was seen. */
	cr_assert_gt(nres_ok, 1000);
	cr_assert_gt(nres_exist, 100);
	cr_assert_gt(nres_nospc, 0);
	while (m.nlive) {
		m.nlive--;
		cr_assert_eq(mcfs_alloc_put(a, &m.live[m.nlive]), 0);
	}
	assert_empty(a);
	free(m.live);
	free(m.bits);
	mcfs_alloc_destroy(a);
}
