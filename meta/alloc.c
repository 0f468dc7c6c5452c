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
 *
 * Reserving a given range (recovery: the ranges a node reports live after a
 * master restart) needs the free range that contains an offset, which the
 * bins cannot tell. The address order can: a reserve walks it from a cursor
 * left where the previous reserve ended, so reserves in increasing (or
 * decreasing) offset order cost O(1) each. A reserve far from the cursor
 * binary searches an address-ordered index of the nodes instead, then walks
 * from the entry found across whatever ranges were made there since the
 * index was built: O(log n) expected when reserves come in random order,
 * though an adversarial order can make those walks long. The index is built
 * by the first far reserve and rebuilt, O(n), only once as many nodes have
 * been taken or released as it holds, which amortises the rebuilds. Get, put
 * and resize never look at the cursor or the index; they only keep the
 * cursor on a node in use and count layout changes.
 */
#include "meta/alloc.h"

#include <assert.h>
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
/* Neighbours a reserve walks from the cursor before it turns to the index. */
#define CURSOR_WALK 4

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

/* An entry of the reserve index: node idx started at offset when the index was built. */
struct index_ent {
	uint32_t offset; /* units */
	uint32_t idx;
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

	/*
	 * Where a reserve starts looking: always a FREE or USED node (a node
	 * released by a merge hands the cursor on to the node that absorbs it).
	 */
	uint32_t cursor;
	/*
	 * The reserve index: every FREE and USED node in address order as of
	 * its build (owned; index_cap entries allocated, index_n valid, none
	 * before the first out-of-order reserve). Entries go stale as ranges
	 * split, merge and move; one is trusted only while its node is in use
	 * and still starts at the recorded offset.
	 */
	struct index_ent *index;
	uint32_t index_n, index_cap;
	uint64_t layout_changes; /* nodes taken or released since the index was built */
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
	a->layout_changes++;
	*out = idx;
	return 0;
}

/* Put node idx back on the unused stack; heir is the node that now covers its range. */
static void node_release(struct mcfs_alloc *a, uint32_t idx, uint32_t heir)
{
	struct node *n = &a->nodes[idx];

	n->state = NODE_UNUSED;
	n->bin_next = a->unused_top;
	a->unused_top = idx;
	a->layout_changes++;
	if (a->cursor == idx)
		a->cursor = heir;
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
	a->cursor = root;
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
	free(a->index);
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
		node_release(a, p, idx);
	}
	if (n->nb_next != NONE && a->nodes[n->nb_next].state == NODE_FREE) {
		uint32_t x = n->nb_next;

		bin_remove(a, x);
		n->size += a->nodes[x].size;
		nb_unlink(a, x);
		node_release(a, x, idx);
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
			node_release(a, next, idx);
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

/*
 * Walk the address order from node *i towards unit u, at most limit steps;
 * true when *i then contains u. The nodes cover [0, units) without a gap, so
 * for u < units there is always a neighbour in the direction walked.
 */
static bool walk_to(const struct mcfs_alloc *a, uint32_t *i, uint32_t u, uint32_t limit)
{
	for (uint32_t steps = 0;; steps++) {
		const struct node *n = &a->nodes[*i];

		if (u >= n->offset && u - n->offset < n->size)
			return true;
		if (steps == limit)
			return false;
		*i = u < n->offset ? n->nb_prev : n->nb_next;
	}
}

/* (Re)build the reserve index from the address order: O(n). */
static int index_build(struct mcfs_alloc *a)
{
	uint32_t want = a->nr_allocs + a->nr_free_ranges, i = a->cursor, k = 0;

	if (want > a->index_cap) {
		uint32_t cap = want + want / 2 < a->max_nodes ? want + want / 2 : a->max_nodes;
		struct index_ent *p = realloc(a->index, (size_t)cap * sizeof(*p));

		if (!p) {
			a->index_n = 0;
			return -ENOMEM;
		}
		a->index = p;
		a->index_cap = cap;
	}
	while (a->nodes[i].nb_prev != NONE)
		i = a->nodes[i].nb_prev;
	for (; i != NONE; i = a->nodes[i].nb_next) {
		assert(k < want);
		a->index[k].offset = a->nodes[i].offset;
		a->index[k++].idx = i;
	}
	assert(k == want);
	a->index_n = k;
	a->layout_changes = 0;
	return 0;
}

/* A node that starts at or shortly before unit u, from the index; NONE when its entry is stale. */
static uint32_t index_near(const struct mcfs_alloc *a, uint32_t u)
{
	uint32_t lo = 0, hi = a->index_n, idx;

	if (!hi)
		return NONE;
	/* The last entry at or before u; the first one is at unit 0. */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a->index[mid].offset <= u)
			lo = mid;
		else
			hi = mid;
	}
	idx = a->index[lo].idx;
	if (a->nodes[idx].state == NODE_UNUSED || a->nodes[idx].offset != a->index[lo].offset)
		return NONE;
	return idx;
}

/* The node, free or live, that contains unit u (< units). */
static uint32_t find_unit(struct mcfs_alloc *a, uint32_t u)
{
	uint32_t i = a->cursor, near;

	if (walk_to(a, &i, u, CURSOR_WALK))
		return i;
	/* Far from the last reserve: jump close through the index. */
	if (!a->index_n || a->layout_changes > a->index_n)
		(void)index_build(a); /* without it the walk below still gets there, slowly */
	near = index_near(a, u);
	if (near != NONE)
		i = near;
	walk_to(a, &i, u, UINT32_MAX);
	return i;
}

int mcfs_alloc_reserve(struct mcfs_alloc *a, uint64_t offset, uint64_t len, struct mcfs_extent *ext)
{
	uint32_t u, size, idx, before, after, res_idx = NONE, rest_idx = NONE;
	struct node *n;
	int ret;

	if (!len || offset % MCFS_ALLOC_ALIGN || len % MCFS_ALLOC_ALIGN ||
	    offset / MCFS_ALLOC_ALIGN >= a->units ||
	    len / MCFS_ALLOC_ALIGN > a->units - offset / MCFS_ALLOC_ALIGN)
		return -EINVAL;
	u = (uint32_t)(offset / MCFS_ALLOC_ALIGN);
	size = (uint32_t)(len / MCFS_ALLOC_ALIGN);
	idx = find_unit(a, u);
	a->cursor = idx;
	n = &a->nodes[idx];
	/* Free ranges are always coalesced: whatever follows a free range is live. */
	if (n->state != NODE_FREE || size > n->offset + n->size - u)
		return -EEXIST;
	if (a->nr_allocs >= a->max_allocs)
		return -ENOSPC;
	before = u - n->offset;
	after = n->offset + n->size - u - size;
	/* Take the nodes the split needs first so that a failure changes nothing. */
	if (before) {
		ret = node_new(a, &res_idx);
		if (ret)
			return ret;
	} else {
		res_idx = idx;
	}
	if (after) {
		ret = node_new(a, &rest_idx);
		if (ret) {
			if (before)
				node_release(a, res_idx, idx);
			return ret;
		}
	}
	/* node_new may have moved the array: no node pointers from before it. */
	bin_remove(a, idx);
	if (before) {
		a->nodes[idx].size = before;
		bin_insert(a, idx);
		nb_link_after(a, idx, res_idx);
	}
	n = &a->nodes[res_idx];
	n->offset = u;
	n->size = size;
	n->state = NODE_USED;
	if (after) {
		a->nodes[rest_idx].offset = u + size;
		a->nodes[rest_idx].size = after;
		nb_link_after(a, res_idx, rest_idx);
		bin_insert(a, rest_idx);
	}
	a->nr_allocs++;
	a->cursor = res_idx;
	ext->offset = offset;
	ext->len = len;
	ext->handle = handle_of(a, res_idx);
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
