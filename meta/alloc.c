// SPDX-License-Identifier: Apache-2.0
/*
 * The segment allocator (see alloc.h): a two-level segregated fit in the
 * manner of Sebastian Aaltonen's OffsetAllocator, which Mooncake uses for its
 * segments, that keeps nothing per live range.
 *
 * Sizes are counted in units of MCFS_ALLOC_ALIGN and mapped to 256 bins by a
 * tiny floating-point encoding (5-bit exponent, 3-bit mantissa), so a bin
 * spans at most 1/8 of its size and the handful of fixed KV block sizes each
 * get a bin of their own. A free range sits in the bin of its size rounded
 * down; a request looks from the bin of its size rounded up, so any range
 * found is large enough without walking a list. Two bitmaps (32 top bins x 8
 * leaf bins) make that search two find-first-set instructions.
 *
 * Only free ranges have a record (a node: 16 bytes). Live ranges are known
 * by one bit per unit in the page map, which is what lets a free refuse
 * space that is not live. Coalescing a freed range with its free
 * neighbours needs the free range that ends where it starts and the one
 * that starts where it ends: a small open-addressing table maps both ends
 * of every free range to its node (two free ranges never touch, so no unit
 * is the end of one and the start of another). Free ranges never outnumber
 * live ones by more than one, so the nodes and the table stay small when
 * the segment is well used, whatever the number of live ranges.
 *
 * Reserving a given range (recovery: the ranges a node reports live after a
 * master restart) needs the free range that contains an offset: the page
 * map scanned back from it finds where that free range starts, and the
 * ends table its node.
 */
#include "meta/alloc.h"

#include "common/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TOP_BINS      32
#define LEAF_BINS     8
#define NBINS	      (TOP_BINS * LEAF_BINS)
#define MANTISSA_BITS 3
#define MANTISSA_MASK ((1u << MANTISSA_BITS) - 1)
#define NONE	      UINT32_MAX
/* The node array and the ends table start this small and double on demand. */
#define INITIAL_NODES 64u
#define INITIAL_ENDS  256u
/* Ranges of one bin examined before a request that fits no larger bin fails. */
#define FALLBACK_SCAN	 1024
#define MAX_ALLOCS_LIMIT (1u << 28)

/* A free range. Unused nodes form a stack threaded through bin_next. */
struct node {
	uint32_t offset; /* units */
	uint32_t size;	 /* units */
	uint32_t bin_prev, bin_next;
};

/* An entry of the ends table: unit key is the start or the end of free range idx. */
struct end {
	uint32_t key;
	uint32_t idx; /* NONE: empty */
};

struct mcfs_alloc {
	uint32_t units;	     /* managed size in units */
	uint32_t max_allocs; /* live ranges at most */
	uint32_t nr_allocs;
	uint32_t nr_free_ranges;
	uint64_t free_units;

	uint32_t used_top;	     /* bit t: some leaf of top bin t is non-empty */
	uint8_t used_leaf[TOP_BINS]; /* bit l: bin t * 8 + l is non-empty */
	uint32_t bin_head[NBINS];    /* first node of each bin, or NONE */

	struct node *nodes; /* owned; nr_nodes of them */
	uint32_t nr_nodes;
	uint32_t unused_top; /* top of the unused-node stack, or NONE */

	struct end *ends; /* owned; ends_mask + 1 entries, at most half used */
	uint32_t ends_mask;
	uint32_t nr_ends;

	uint64_t *live; /* owned; bit u: unit u is in a live range */
};

/* Exponent/mantissa code of size, rounded up: the smallest bin that only holds ranges >= size. */
static uint32_t bin_round_up(uint32_t size)
{
	uint32_t exp = 0, mantissa, start;

	if (size <= MANTISSA_MASK)
		return size;
	start = 31 - (uint32_t)__builtin_clz(size) - MANTISSA_BITS;
	exp = start + 1;
	mantissa = (size >> start) & MANTISSA_MASK;
	if (size & ((1u << start) - 1))
		mantissa++;
	/* A mantissa overflow carries into the exponent, as it should. */
	return (exp << MANTISSA_BITS) + mantissa;
}

/* The bin of a free range of size units: the largest bin whose floor is <= size. */
static uint32_t bin_round_down(uint32_t size)
{
	uint32_t exp, mantissa, start;

	if (size <= MANTISSA_MASK)
		return size;
	start = 31 - (uint32_t)__builtin_clz(size) - MANTISSA_BITS;
	exp = start + 1;
	mantissa = (size >> start) & MANTISSA_MASK;
	return (exp << MANTISSA_BITS) | mantissa;
}

/* Lowest set bit of mask at or above bit from, or NONE. */
static uint32_t lowest_bit_from(uint32_t mask, uint32_t from)
{
	if (from >= 32)
		return NONE;
	mask &= ~((1u << from) - 1);
	return mask ? (uint32_t)__builtin_ctz(mask) : NONE;
}

/* A byte length in units, rounded up; false when it cannot fit in 32 bits. */
static bool to_units(uint64_t len, uint32_t *units)
{
	uint64_t u = len / MCFS_ALLOC_ALIGN + (len % MCFS_ALLOC_ALIGN != 0);

	if (u > UINT32_MAX)
		return false;
	*units = (uint32_t)u;
	return true;
}

/* The units [*u, *u + *n) of ext: false unless it is aligned, non-empty and within the segment. */
static bool ext_units(const struct mcfs_alloc *a, const struct mcfs_extent *ext, uint32_t *u,
		      uint32_t *n)
{
	if (!ext->len || ext->offset % MCFS_ALLOC_ALIGN || ext->len % MCFS_ALLOC_ALIGN ||
	    ext->offset / MCFS_ALLOC_ALIGN >= a->units ||
	    ext->len / MCFS_ALLOC_ALIGN > a->units - ext->offset / MCFS_ALLOC_ALIGN)
		return false;
	*u = (uint32_t)(ext->offset / MCFS_ALLOC_ALIGN);
	*n = (uint32_t)(ext->len / MCFS_ALLOC_ALIGN);
	return true;
}

/* The page map */

/* The bits of word w that [u, u + n) covers, and how many units that is. */
static uint64_t word_mask(uint32_t u, uint32_t n, uint32_t *k)
{
	uint32_t b = u % 64;

	*k = 64 - b < n ? 64 - b : n;
	return (*k == 64 ? ~0ULL : (1ULL << *k) - 1) << b;
}

/* Mark every unit of [u, u + n) live (on) or not. */
static void bits_set(struct mcfs_alloc *a, uint32_t u, uint32_t n, bool on)
{
	while (n) {
		uint32_t k;
		uint64_t m = word_mask(u, n, &k);

		if (on)
			a->live[u / 64] |= m;
		else
			a->live[u / 64] &= ~m;
		u += k;
		n -= k;
	}
}

/* Is every unit of [u, u + n) live (on), or every one not live? */
static bool bits_all(const struct mcfs_alloc *a, uint32_t u, uint32_t n, bool on)
{
	while (n) {
		uint32_t k;
		uint64_t m = word_mask(u, n, &k), v = a->live[u / 64] & m;

		if (on ? v != m : v != 0)
			return false;
		u += k;
		n -= k;
	}
	return true;
}

/* Where the run of units that are not live, and that reaches unit u, starts. */
static uint32_t free_run_start(const struct mcfs_alloc *a, uint32_t u)
{
	while (u) {
		uint32_t w = (u - 1) / 64, b = (u - 1) % 64;
		uint64_t v = a->live[w] & (b == 63 ? ~0ULL : (2ULL << b) - 1);

		if (v)
			return w * 64 + (63 - (uint32_t)__builtin_clzll(v)) + 1;
		u = w * 64;
	}
	return 0;
}

/* The ends table */

static uint32_t mix32(uint32_t x)
{
	return (uint32_t)mcfs_mix64(x);
}

/* The free range that starts or ends at unit key, or NONE. */
static uint32_t ends_find(const struct mcfs_alloc *a, uint32_t key)
{
	for (uint32_t i = mix32(key) & a->ends_mask;; i = (i + 1) & a->ends_mask) {
		if (a->ends[i].idx == NONE)
			return NONE;
		if (a->ends[i].key == key)
			return a->ends[i].idx;
	}
}

static void ends_place(struct end *t, uint32_t mask, uint32_t key, uint32_t idx)
{
	uint32_t i = mix32(key) & mask;

	while (t[i].idx != NONE)
		i = (i + 1) & mask;
	t[i].key = key;
	t[i].idx = idx;
}

/* Room for n more entries with the table at most half full. 0 or -ENOMEM (nothing changed). */
static int ends_reserve(struct mcfs_alloc *a, uint32_t n)
{
	uint32_t cap = a->ends_mask + 1, want = cap;
	struct end *t;

	while ((uint64_t)(a->nr_ends + n) * 2 > want)
		want *= 2;
	if (want == cap)
		return 0;
	t = malloc((size_t)want * sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < want; i++)
		t[i].idx = NONE;
	for (uint32_t i = 0; i < cap; i++)
		if (a->ends[i].idx != NONE)
			ends_place(t, want - 1, a->ends[i].key, a->ends[i].idx);
	free(a->ends);
	a->ends = t;
	a->ends_mask = want - 1;
	return 0;
}

/* Is home slot k outside the cyclic range (hole, j]? Then the entry at j may fill the hole. */
static bool may_fill(uint32_t hole, uint32_t j, uint32_t k)
{
	if (hole <= j)
		return k <= hole || k > j;
	return k <= hole && k > j;
}

/* Remove key's entry; backward-shift deletion keeps every probe sequence whole. */
static void ends_del(struct mcfs_alloc *a, uint32_t key)
{
	uint32_t mask = a->ends_mask, i = mix32(key) & mask;

	while (a->ends[i].key != key) {
		if (a->ends[i].idx == NONE)
			return;
		i = (i + 1) & mask;
	}
	if (a->ends[i].idx == NONE)
		return;
	for (uint32_t j = (i + 1) & mask; a->ends[j].idx != NONE; j = (j + 1) & mask) {
		if (may_fill(i, j, mix32(a->ends[j].key) & mask)) {
			a->ends[i] = a->ends[j];
			i = j;
		}
	}
	a->ends[i].idx = NONE;
	a->nr_ends--;
}

/* Free ranges: nodes in their bins and the ends table */

/* Take a node off the unused stack, growing the array when it is empty. */
static int node_new(struct mcfs_alloc *a, uint32_t *out)
{
	uint32_t idx = a->unused_top;

	if (idx == NONE) {
		uint32_t want = a->nr_nodes * 2;
		struct node *p = realloc(a->nodes, (size_t)want * sizeof(*p));

		if (!p)
			return -ENOMEM;
		/* Push the new nodes so that the lowest index comes out first. */
		for (uint32_t i = want; i-- > a->nr_nodes;) {
			p[i].bin_next = a->unused_top;
			a->unused_top = i;
		}
		a->nodes = p;
		a->nr_nodes = want;
		idx = a->unused_top;
	}
	a->unused_top = a->nodes[idx].bin_next;
	*out = idx;
	return 0;
}

static void node_release(struct mcfs_alloc *a, uint32_t idx)
{
	a->nodes[idx].bin_next = a->unused_top;
	a->unused_top = idx;
}

/* Make node idx (offset and size set) a free range: its bin and both its ends (room reserved). */
static void free_add(struct mcfs_alloc *a, uint32_t idx)
{
	struct node *n = &a->nodes[idx];
	uint32_t bin = bin_round_down(n->size);
	uint32_t head = a->bin_head[bin];

	n->bin_prev = NONE;
	n->bin_next = head;
	if (head != NONE)
		a->nodes[head].bin_prev = idx;
	a->bin_head[bin] = idx;
	a->used_leaf[bin / LEAF_BINS] |= (uint8_t)(1u << (bin % LEAF_BINS));
	a->used_top |= 1u << (bin / LEAF_BINS);
	a->free_units += n->size;
	a->nr_free_ranges++;
	ends_place(a->ends, a->ends_mask, n->offset, idx);
	ends_place(a->ends, a->ends_mask, n->offset + n->size, idx);
	a->nr_ends += 2;
}

/* Take free range idx out of its bin and the ends table; the node stays the caller's. */
static void free_del(struct mcfs_alloc *a, uint32_t idx)
{
	struct node *n = &a->nodes[idx];
	uint32_t bin = bin_round_down(n->size);

	if (n->bin_prev != NONE)
		a->nodes[n->bin_prev].bin_next = n->bin_next;
	else
		a->bin_head[bin] = n->bin_next;
	if (n->bin_next != NONE)
		a->nodes[n->bin_next].bin_prev = n->bin_prev;
	if (a->bin_head[bin] == NONE) {
		a->used_leaf[bin / LEAF_BINS] &= (uint8_t) ~(1u << (bin % LEAF_BINS));
		if (!a->used_leaf[bin / LEAF_BINS])
			a->used_top &= ~(1u << (bin / LEAF_BINS));
	}
	a->free_units -= n->size;
	a->nr_free_ranges--;
	ends_del(a, n->offset);
	ends_del(a, n->offset + n->size);
}

/* The free range that ends at unit u, or NONE. */
static uint32_t free_ending_at(const struct mcfs_alloc *a, uint32_t u)
{
	uint32_t idx = ends_find(a, u);

	return idx != NONE && a->nodes[idx].offset + a->nodes[idx].size == u ? idx : NONE;
}

/* The free range that starts at unit u, or NONE. */
static uint32_t free_starting_at(const struct mcfs_alloc *a, uint32_t u)
{
	uint32_t idx = ends_find(a, u);

	return idx != NONE && a->nodes[idx].offset == u ? idx : NONE;
}

/*
 * Give the live units [u, u + n) back, merged with the free ranges on either
 * side. 0 or -ENOMEM (nothing changed).
 */
static int release_units(struct mcfs_alloc *a, uint32_t u, uint32_t n)
{
	uint32_t p = free_ending_at(a, u), x = free_starting_at(a, u + n), idx;
	int ret = ends_reserve(a, 2);

	if (ret)
		return ret;
	if (p == NONE && x == NONE) {
		ret = node_new(a, &idx);
		if (ret)
			return ret;
		a->nodes[idx].offset = u;
		a->nodes[idx].size = n;
	} else if (p != NONE && x != NONE) {
		free_del(a, p);
		free_del(a, x);
		a->nodes[p].size += n + a->nodes[x].size;
		node_release(a, x);
		idx = p;
	} else if (p != NONE) {
		free_del(a, p);
		a->nodes[p].size += n;
		idx = p;
	} else {
		free_del(a, x);
		a->nodes[x].offset = u;
		a->nodes[x].size += n;
		idx = x;
	}
	free_add(a, idx);
	bits_set(a, u, n, false);
	return 0;
}

int mcfs_alloc_create(uint64_t size, uint32_t max_allocs, struct mcfs_alloc **out)
{
	uint64_t units = size / MCFS_ALLOC_ALIGN;
	struct mcfs_alloc *a;
	uint32_t root;

	if (!units || units > UINT32_MAX || !max_allocs || max_allocs > MAX_ALLOCS_LIMIT)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->units = (uint32_t)units;
	a->max_allocs = max_allocs;
	a->unused_top = NONE;
	for (uint32_t i = 0; i < NBINS; i++)
		a->bin_head[i] = NONE;
	a->nr_nodes = INITIAL_NODES;
	a->nodes = malloc(INITIAL_NODES * sizeof(*a->nodes));
	a->ends = malloc(INITIAL_ENDS * sizeof(*a->ends));
	/* Untouched pages of a large map cost no memory until ranges are handed out there. */
	a->live = calloc(units / 64 + 1, sizeof(*a->live));
	if (!a->nodes || !a->ends || !a->live) {
		mcfs_alloc_destroy(a);
		return -ENOMEM;
	}
	for (uint32_t i = INITIAL_NODES; i-- > 0;) {
		a->nodes[i].bin_next = a->unused_top;
		a->unused_top = i;
	}
	for (uint32_t i = 0; i < INITIAL_ENDS; i++)
		a->ends[i].idx = NONE;
	a->ends_mask = INITIAL_ENDS - 1;
	node_new(a, &root); /* cannot fail: the stack was just filled */
	a->nodes[root].offset = 0;
	a->nodes[root].size = a->units;
	free_add(a, root);
	*out = a;
	return 0;
}

void mcfs_alloc_destroy(struct mcfs_alloc *a)
{
	if (!a)
		return;
	free(a->live);
	free(a->ends);
	free(a->nodes);
	free(a);
}

/*
 * Before giving up: the bin of size rounded down holds ranges from its floor
 * up to the next bin's, some of which may be large enough (a freed 300 KiB
 * block can take a 300 KiB request; the O(1) search only looks from 320
 * KiB). Only reached when the pool is nearly full; the walk is bounded so
 * that a failure stays cheap.
 */
static uint32_t fallback_fit(const struct mcfs_alloc *a, uint32_t size)
{
	uint32_t bin = bin_round_down(size), idx = a->bin_head[bin];

	if (bin == bin_round_up(size))
		return NONE; /* an exact bin floor: that bin was searched already */
	for (uint32_t i = 0; idx != NONE && i < FALLBACK_SCAN; i++, idx = a->nodes[idx].bin_next)
		if (a->nodes[idx].size >= size)
			return idx;
	return NONE;
}

int mcfs_alloc_get(struct mcfs_alloc *a, uint64_t len, struct mcfs_extent *ext)
{
	uint32_t size, min_bin, top, leaf = NONE, idx, u;
	struct node *n;

	if (!len)
		return -EINVAL;
	if (!to_units(len, &size) || size > a->units || a->nr_allocs >= a->max_allocs)
		return -ENOSPC;
	min_bin = bin_round_up(size);
	top = min_bin / LEAF_BINS;
	if (a->used_top & (1u << top))
		leaf = lowest_bit_from(a->used_leaf[top], min_bin % LEAF_BINS);
	if (leaf == NONE) {
		top = lowest_bit_from(a->used_top, top + 1);
		if (top != NONE)
			leaf = (uint32_t)__builtin_ctz(a->used_leaf[top]);
	}
	if (leaf != NONE) {
		idx = a->bin_head[top * LEAF_BINS + leaf];
	} else {
		idx = fallback_fit(a, size);
		if (idx == NONE)
			return -ENOSPC;
	}
	if (ends_reserve(a, 2))
		return -ENOMEM;
	free_del(a, idx);
	n = &a->nodes[idx];
	u = n->offset;
	if (n->size > size) {
		/* The remainder stays free, in the same node. */
		n->offset += size;
		n->size -= size;
		free_add(a, idx);
	} else {
		node_release(a, idx);
	}
	bits_set(a, u, size, true);
	a->nr_allocs++;
	ext->offset = (uint64_t)u * MCFS_ALLOC_ALIGN;
	ext->len = (uint64_t)size * MCFS_ALLOC_ALIGN;
	return 0;
}

int mcfs_alloc_put(struct mcfs_alloc *a, const struct mcfs_extent *ext)
{
	uint32_t u, n;
	int ret;

	if (!ext_units(a, ext, &u, &n) || !bits_all(a, u, n, true))
		return -EINVAL;
	ret = release_units(a, u, n);
	if (!ret)
		a->nr_allocs--;
	return ret;
}

int mcfs_alloc_resize(struct mcfs_alloc *a, struct mcfs_extent *ext, uint64_t new_len)
{
	uint32_t u, n, size;
	int ret;

	if (!new_len || !ext_units(a, ext, &u, &n) || !bits_all(a, u, n, true))
		return -EINVAL;
	if (!to_units(new_len, &size))
		return -EAGAIN;
	if (size > n) {
		uint32_t delta = size - n, x = free_starting_at(a, u + n);

		if (x == NONE || a->nodes[x].size < delta)
			return -EAGAIN;
		if (ends_reserve(a, 2))
			return -ENOMEM;
		free_del(a, x);
		if (a->nodes[x].size == delta) {
			node_release(a, x);
		} else {
			a->nodes[x].offset += delta;
			a->nodes[x].size -= delta;
			free_add(a, x);
		}
		bits_set(a, u + n, delta, true);
	} else if (size < n) {
		ret = release_units(a, u + size, n - size);
		if (ret)
			return ret;
	}
	ext->len = (uint64_t)size * MCFS_ALLOC_ALIGN;
	return 0;
}

int mcfs_alloc_reserve(struct mcfs_alloc *a, uint64_t offset, uint64_t len, struct mcfs_extent *ext)
{
	struct mcfs_extent want = {offset, len};
	uint32_t u, size, s, idx, before, after, rest = NONE;
	int ret;

	if (!ext_units(a, &want, &u, &size))
		return -EINVAL;
	if (!bits_all(a, u, size, false))
		return -EEXIST;
	if (a->nr_allocs >= a->max_allocs)
		return -ENOSPC;
	/* Free ranges are coalesced: the run of free units that holds u is one free range. */
	s = free_run_start(a, u);
	idx = free_starting_at(a, s);
	if (idx == NONE)
		return -EEXIST; /* cannot happen: every unit not live is in a free range */
	before = u - s;
	after = s + a->nodes[idx].size - u - size;
	ret = ends_reserve(a, 4);
	if (!ret && before && after)
		ret = node_new(a, &rest);
	if (ret)
		return ret;
	free_del(a, idx);
	if (before) {
		a->nodes[idx].size = before;
		free_add(a, idx);
	} else if (after) {
		rest = idx;
	} else {
		node_release(a, idx);
	}
	if (after) {
		a->nodes[rest].offset = u + size;
		a->nodes[rest].size = after;
		free_add(a, rest);
	}
	bits_set(a, u, size, true);
	a->nr_allocs++;
	*ext = want;
	return 0;
}

void mcfs_alloc_stats(const struct mcfs_alloc *a, struct mcfs_alloc_stats *st)
{
	uint32_t largest = 0;

	memset(st, 0, sizeof(*st));
	if (a->used_top) {
		/* Every range in the highest non-empty bin beats every range below it. */
		uint32_t top = 31 - (uint32_t)__builtin_clz(a->used_top);
		uint32_t leaf = 31 - (uint32_t)__builtin_clz(a->used_leaf[top]);

		for (uint32_t i = a->bin_head[top * LEAF_BINS + leaf]; i != NONE;
		     i = a->nodes[i].bin_next)
			if (a->nodes[i].size > largest)
				largest = a->nodes[i].size;
	}
	st->size = (uint64_t)a->units * MCFS_ALLOC_ALIGN;
	st->free = a->free_units * MCFS_ALLOC_ALIGN;
	st->used = st->size - st->free;
	st->largest_free = (uint64_t)largest * MCFS_ALLOC_ALIGN;
	st->nr_allocs = a->nr_allocs;
	st->nr_free_ranges = a->nr_free_ranges;
}
