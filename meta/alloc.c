// SPDX-License-Identifier: Apache-2.0
/*
 * The segment allocator (see alloc.h): a two-level segregated fit in the
 * manner of Sebastian Aaltonen's OffsetAllocator, which Mooncake uses for its
 * segments.
 *
 * Sizes are counted in units of MCFS_ALLOC_ALIGN and mapped to 256 bins by a
 * tiny floating-point encoding (5-bit exponent, 3-bit mantissa), so a bin
 * spans at most 1/8 of its size and the handful of fixed KV block sizes each
 * get a bin of their own. A free range sits in the bin of its size rounded
 * down; a request looks from the bin of its size rounded up, so any range
 * found is large enough without walking a list. Two bitmaps (32 top bins x 8
 * leaf bins) make that search two find-first-set instructions.
 *
 * Ranges, live and free, are nodes of one array linked in address order to
 * their neighbours, which is what makes coalescing on free O(1). The array
 * grows by doubling up to the most nodes that can ever be needed: with free
 * neighbours always merged, free ranges never outnumber live ones by more
 * than one, so 2 * max_allocs + 1 nodes suffice. Unused nodes form a stack
 * threaded through bin_next.
 *
 * A handle is a node index with a generation in the bits above it, so a
 * handle that was freed, and even one whose node was reused since, is
 * recognised and ignored rather than freeing someone else's range.
 */
#include "meta/alloc.h"

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
/* The node array starts this small and doubles on demand. */
#define INITIAL_NODES 1024u
/* Ranges of one bin examined before a request that fits no larger bin fails. */
#define FALLBACK_SCAN 1024
/* Keeps 2 * max_allocs + 1 and the generation bits well inside 32 bits. */
#define MAX_ALLOCS_LIMIT (1u << 28)

enum node_state {
	NODE_UNUSED = 0, /* on the unused stack */
	NODE_FREE,	 /* a free range, in a bin */
	NODE_USED,	 /* a live range, named by a handle */
};

struct node {
	uint32_t offset;	     /* units */
	uint32_t size;		     /* units */
	uint32_t bin_prev, bin_next; /* bin list (FREE); bin_next chains the unused stack */
	uint32_t nb_prev, nb_next;   /* address-order neighbours (FREE and USED) */
	uint16_t gen;		     /* bumped whenever a live range ends */
	uint8_t state;		     /* enum node_state */
};

struct mcfs_alloc {
	uint32_t units;	     /* managed size in units */
	uint32_t max_allocs; /* live ranges at most */
	uint32_t max_nodes;  /* 2 * max_allocs + 1 */
	uint32_t idx_bits;   /* handle = gen << idx_bits | index */
	uint32_t nr_allocs;
	uint32_t nr_free_ranges;
	uint64_t free_units;

	uint32_t used_top;	     /* bit t: some leaf of top bin t is non-empty */
	uint8_t used_leaf[TOP_BINS]; /* bit l: bin t * 8 + l is non-empty */
	uint32_t bin_head[NBINS];    /* first node of each bin, or NONE */

	struct node *nodes; /* owned; nr_nodes of them, grows up to max_nodes */
	uint32_t nr_nodes;
	uint32_t unused_top; /* top of the unused-node stack, or NONE */
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

static uint32_t bits_for(uint32_t n)
{
	return n <= 1 ? 1 : 32 - (uint32_t)__builtin_clz(n - 1);
}

static uint32_t handle_of(const struct mcfs_alloc *a, uint32_t idx)
{
	uint32_t gen_bits = 32 - a->idx_bits;
	uint32_t gen = gen_bits ? a->nodes[idx].gen & ((1u << gen_bits) - 1) : 0;

	return gen_bits ? (gen << a->idx_bits) | idx : idx;
}

/* The node index of a live range's handle, or NONE for a stale or bogus one. */
static uint32_t node_of(const struct mcfs_alloc *a, uint32_t handle)
{
	uint32_t idx = a->idx_bits >= 32 ? handle : handle & ((1u << a->idx_bits) - 1);

	if (idx >= a->nr_nodes || a->nodes[idx].state != NODE_USED)
		return NONE;
	if (handle_of(a, idx) != handle)
		return NONE;
	return idx;
}

static void bin_insert(struct mcfs_alloc *a, uint32_t idx)
{
	struct node *n = &a->nodes[idx];
	uint32_t bin = bin_round_down(n->size);
	uint32_t head = a->bin_head[bin];

	n->state = NODE_FREE;
	n->bin_prev = NONE;
	n->bin_next = head;
	if (head != NONE)
		a->nodes[head].bin_prev = idx;
	a->bin_head[bin] = idx;
	a->used_leaf[bin / LEAF_BINS] |= (uint8_t)(1u << (bin % LEAF_BINS));
	a->used_top |= 1u << (bin / LEAF_BINS);
	a->free_units += n->size;
	a->nr_free_ranges++;
}

static void bin_remove(struct mcfs_alloc *a, uint32_t idx)
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
}

/* Take a node off the unused stack, growing the array when it is empty. */
static int node_new(struct mcfs_alloc *a, uint32_t *out)
{
	uint32_t idx = a->unused_top;

	if (idx == NONE) {
		uint32_t want = a->nr_nodes * 2;
		struct node *p;

		if (a->nr_nodes >= a->max_nodes)
			return -ENOSPC; /* cannot happen while the counting argument holds */
		if (want > a->max_nodes)
			want = a->max_nodes;
		p = realloc(a->nodes, (size_t)want * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + a->nr_nodes, 0, (size_t)(want - a->nr_nodes) * sizeof(*p));
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
	struct node *n = &a->nodes[idx];

	n->state = NODE_UNUSED;
	n->bin_next = a->unused_top;
	a->unused_top = idx;
}

/* Unlink node idx from the address order (its neighbours join up). */
static void nb_unlink(struct mcfs_alloc *a, uint32_t idx)
{
	struct node *n = &a->nodes[idx];

	if (n->nb_prev != NONE)
		a->nodes[n->nb_prev].nb_next = n->nb_next;
	if (n->nb_next != NONE)
		a->nodes[n->nb_next].nb_prev = n->nb_prev;
}

/* Link node idx into the address order right after node prev. */
static void nb_link_after(struct mcfs_alloc *a, uint32_t prev, uint32_t idx)
{
	struct node *p = &a->nodes[prev];
	struct node *n = &a->nodes[idx];

	n->nb_prev = prev;
	n->nb_next = p->nb_next;
	if (p->nb_next != NONE)
		a->nodes[p->nb_next].nb_prev = idx;
	p->nb_next = idx;
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

int mcfs_alloc_create(uint64_t size, uint32_t max_allocs, struct mcfs_alloc **out)
{
	uint64_t units = size / MCFS_ALLOC_ALIGN;
	struct mcfs_alloc *a;
	uint32_t root;
	int ret;

	if (!units || units > UINT32_MAX || !max_allocs || max_allocs > MAX_ALLOCS_LIMIT)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->units = (uint32_t)units;
	a->max_allocs = max_allocs;
	a->max_nodes = 2 * max_allocs + 1;
	a->idx_bits = bits_for(a->max_nodes);
	a->unused_top = NONE;
	for (uint32_t i = 0; i < NBINS; i++)
		a->bin_head[i] = NONE;
	a->nr_nodes = a->max_nodes < INITIAL_NODES ? a->max_nodes : INITIAL_NODES;
	a->nodes = calloc(a->nr_nodes, sizeof(*a->nodes));
	if (!a->nodes) {
		ret = -ENOMEM;
		goto out_free_alloc;
	}
	for (uint32_t i = a->nr_nodes; i-- > 0;) {
		a->nodes[i].bin_next = a->unused_top;
		a->unused_top = i;
	}
	node_new(a, &root); /* cannot fail: the stack was just filled */
	a->nodes[root].offset = 0;
	a->nodes[root].size = a->units;
	a->nodes[root].nb_prev = NONE;
	a->nodes[root].nb_next = NONE;
	bin_insert(a, root);
	*out = a;
	return 0;

out_free_alloc:
	free(a);
	return ret;
}

void mcfs_alloc_destroy(struct mcfs_alloc *a)
{
	if (!a)
		return;
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
	uint32_t size, min_bin, top, leaf = NONE, bin, idx, rest_idx, total;
	struct node *n;
	int ret;

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
		bin = top * LEAF_BINS + leaf;
		idx = a->bin_head[bin];
	} else {
		idx = fallback_fit(a, size);
		if (idx == NONE)
			return -ENOSPC;
	}
	n = &a->nodes[idx];
	total = n->size;
	if (total > size) {
		/* Get the node for the remainder first so that a failure changes nothing. */
		ret = node_new(a, &rest_idx);
		if (ret)
			return ret;
		n = &a->nodes[idx]; /* node_new may have moved the array */
	}
	bin_remove(a, idx);
	n->state = NODE_USED;
	n->size = size;
	if (total > size) {
		struct node *r = &a->nodes[rest_idx];

		r->offset = n->offset + size;
		r->size = total - size;
		nb_link_after(a, idx, rest_idx);
		bin_insert(a, rest_idx);
	}
	a->nr_allocs++;
	ext->offset = (uint64_t)n->offset * MCFS_ALLOC_ALIGN;
	ext->len = (uint64_t)size * MCFS_ALLOC_ALIGN;
	ext->handle = handle_of(a, idx);
	return 0;
}

void mcfs_alloc_put(struct mcfs_alloc *a, uint32_t handle)
{
	uint32_t idx = node_of(a, handle);
	struct node *n;

	if (idx == NONE)
		return;
	n = &a->nodes[idx];
	n->gen++; /* every outstanding copy of the handle is stale from here on */
	a->nr_allocs--;
	/* The freed node absorbs its free neighbours and stays in the address order. */
	if (n->nb_prev != NONE && a->nodes[n->nb_prev].state == NODE_FREE) {
		uint32_t p = n->nb_prev;

		bin_remove(a, p);
		n->offset = a->nodes[p].offset;
		n->size += a->nodes[p].size;
		nb_unlink(a, p);
		node_release(a, p);
	}
	if (n->nb_next != NONE && a->nodes[n->nb_next].state == NODE_FREE) {
		uint32_t x = n->nb_next;

		bin_remove(a, x);
		n->size += a->nodes[x].size;
		nb_unlink(a, x);
		node_release(a, x);
	}
	bin_insert(a, idx);
}

int mcfs_alloc_resize(struct mcfs_alloc *a, struct mcfs_extent *ext, uint64_t new_len)
{
	uint32_t idx = node_of(a, ext->handle);
	uint32_t size, next, rest_idx;
	struct node *n;
	int ret;

	if (idx == NONE || !new_len)
		return -EINVAL;
	n = &a->nodes[idx];
	if ((uint64_t)n->offset * MCFS_ALLOC_ALIGN != ext->offset)
		return -EINVAL;
	if (!to_units(new_len, &size))
		return -EAGAIN;
	next = n->nb_next;
	if (size > n->size) {
		uint32_t delta = size - n->size;
		struct node *x;

		if (next == NONE || a->nodes[next].state != NODE_FREE ||
		    a->nodes[next].size < delta)
			return -EAGAIN;
		x = &a->nodes[next];
		bin_remove(a, next);
		n->size = size;
		if (x->size == delta) {
			nb_unlink(a, next);
			node_release(a, next);
		} else {
			x->offset += delta;
			x->size -= delta;
			bin_insert(a, next);
		}
	} else if (size < n->size) {
		uint32_t tail = n->size - size;

		if (next != NONE && a->nodes[next].state == NODE_FREE) {
			/* The tail joins the free range after it. */
			struct node *x = &a->nodes[next];

			bin_remove(a, next);
			x->offset -= tail;
			x->size += tail;
			bin_insert(a, next);
		} else {
			ret = node_new(a, &rest_idx);
			if (ret)
				return ret;
			n = &a->nodes[idx];
			a->nodes[rest_idx].offset = n->offset + size;
			a->nodes[rest_idx].size = tail;
			nb_link_after(a, idx, rest_idx);
			bin_insert(a, rest_idx);
		}
		n->size = size;
	}
	ext->len = (uint64_t)size * MCFS_ALLOC_ALIGN;
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
