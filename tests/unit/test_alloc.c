// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the segment allocator (meta/alloc.c): rounding, exhaustion,
 * reuse, coalescing in every order, the KV-block fragmentation pattern,
 * resizing, handle validation, and a long random run checked against a
 * bitmap model of the segment.
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
	cr_assert_neq(e1.handle, e2.handle);
	st = stats(a);
	cr_assert_eq(st.used, 192 * K);
	cr_assert_eq(st.free, 1 * M - 192 * K);
	cr_assert_eq(st.largest_free, 1 * M - 192 * K);
	cr_assert_eq(st.nr_allocs, 2);
	cr_assert_eq(st.nr_free_ranges, 1);
	mcfs_alloc_put(a, e1.handle);
	st = stats(a);
	cr_assert_eq(st.used, 128 * K);
	cr_assert_eq(st.nr_free_ranges, 2);
	mcfs_alloc_put(a, e2.handle);
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
		mcfs_alloc_put(a, ex[i].handle);
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
	mcfs_alloc_put(a, e[1].handle);
	cr_assert_eq(mcfs_alloc_get(a, 1 * M, &again), 0);
	cr_assert_eq(again.offset, e[1].offset);
	cr_assert_eq(again.len, 1 * M);
	/* And the last block freed goes back where it came from. */
	mcfs_alloc_put(a, e[3].handle);
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
	mcfs_alloc_put(a, e[2].handle);
	cr_assert_eq(mcfs_alloc_get(a, 300 * K, &again), 0);
	cr_assert_eq(again.offset, e[2].offset);
	mcfs_alloc_put(a, e[0].handle);
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
				mcfs_alloc_put(a, lead.handle);
			for (int i = 0; i < 3; i++)
				mcfs_alloc_put(a, e[orders[o][i]].handle);
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
		mcfs_alloc_put(a, e[i].handle);
	for (int i = 0; i < n; i += 2)
		cr_assert_eq(mcfs_alloc_get(a, want[i], &e[i]), 0, "block %d of %llu bytes", i,
			     (unsigned long long)want[i]);
	/* And again in the opposite order. */
	for (int i = 0; i < n; i += 2)
		mcfs_alloc_put(a, e[i].handle);
	for (int i = n - 2 + (n % 2); i >= 0; i -= 2)
		cr_assert_eq(mcfs_alloc_get(a, want[i], &e[i]), 0);
	for (int i = 0; i < n; i++)
		mcfs_alloc_put(a, e[i].handle);
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
	/* Bad arguments. */
	cr_assert_eq(mcfs_alloc_resize(a, &f, 0), -EINVAL);
	bad = f;
	bad.offset += 4096;
	cr_assert_eq(mcfs_alloc_resize(a, &bad, 8 * K), -EINVAL);
	bad = f;
	bad.handle ^= 0x40000000;
	cr_assert_eq(mcfs_alloc_resize(a, &bad, 8 * K), -EINVAL);
	/* A freed range cannot be resized. */
	g = e;
	mcfs_alloc_put(a, e.handle);
	cr_assert_eq(mcfs_alloc_resize(a, &g, 8 * K), -EINVAL);
	mcfs_alloc_put(a, f.handle);
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
	mcfs_alloc_put(a, e[2].handle);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[4]), 0);
	cr_assert_eq(mcfs_alloc_get(a, 4 * K, &e[2]), -ENOSPC);
	/* Worst case for free ranges: every other unit free, max_allocs live. */
	for (int i = 0; i < 4; i++)
		if (i != 2)
			mcfs_alloc_put(a, e[i].handle);
	mcfs_alloc_put(a, e[4].handle);
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
		mcfs_alloc_put(a, e[i].handle);
	cr_assert_eq(stats(a).nr_free_ranges, N / 2 + 1);
	for (int i = 1; i < N; i += 2)
		cr_assert_eq(mcfs_alloc_resize(a, &e[i], 4 * K), 0);
	for (int i = 1; i < N; i += 2)
		mcfs_alloc_put(a, e[i].handle);
	assert_empty(a);
	free(e);
	mcfs_alloc_destroy(a);
}

Test(alloc, double_free_and_stale_handles)
{
	struct mcfs_alloc *a = mk(1 * M, 16);
	struct mcfs_extent e, f, g;
	struct mcfs_alloc_stats st;

	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &e), 0);
	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &f), 0);
	mcfs_alloc_put(a, e.handle);
	mcfs_alloc_put(a, e.handle);
	st = stats(a);
	cr_assert_eq(st.nr_allocs, 1);
	cr_assert_eq(st.used, 64 * K);
	/* The node behind e's handle is reused by g: e's handle must still not free g. */
	cr_assert_eq(mcfs_alloc_get(a, 64 * K, &g), 0);
	cr_assert_eq(g.offset, e.offset);
	mcfs_alloc_put(a, e.handle);
	cr_assert_eq(stats(a).nr_allocs, 2);
	cr_assert_eq(stats(a).used, 128 * K);
	/* Handles that never existed. */
	mcfs_alloc_put(a, UINT32_MAX);
	mcfs_alloc_put(a, 12345);
	mcfs_alloc_put(a, f.handle + 1);
	cr_assert_eq(stats(a).nr_allocs, 2);
	mcfs_alloc_put(a, f.handle);
	mcfs_alloc_put(a, g.handle);
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
	mcfs_alloc_put(a, e.handle);
	mcfs_alloc_put(a, f.handle);
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
				/* Only when no handle is left or no free range is large enough. */
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
			mcfs_alloc_put(a, m.live[i].handle);
			/* A second free of the same handle must change nothing. */
			if (rand_r(&seed) % 8 == 0)
				mcfs_alloc_put(a, m.live[i].handle);
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
	while (m.nlive)
		mcfs_alloc_put(a, m.live[--m.nlive].handle);
	assert_empty(a);
	free(m.live);
	free(m.bits);
	mcfs_alloc_destroy(a);
}
