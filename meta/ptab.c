// SPDX-License-Identifier: Apache-2.0
/*
 * The master's compact reference hash table (see ptab_i.h). Linear probing
 * keeps a lookup to one or two cache lines of slots plus the elements it
 * compares; backward-shift deletion keeps probe sequences short without
 * tombstones. The table never shrinks: the namespace it indexes grows back.
 */
#include "meta/ptab_i.h"

#include <errno.h>
#include <stdlib.h>

#define MIN_SLOTS 16u

/* Grow past 70% full: linear probing degrades quickly above that. */
static bool over_load(size_t count, size_t nslots)
{
	return count * 10 > nslots * 7;
}

void mcfs_ptab_init(struct mcfs_ptab *t, const void *base, uint64_t (*hash)(const void *elem))
{
	t->slots = NULL;
	t->mask = 0;
	t->count = 0;
	t->base = base;
	t->hash = hash;
}

/* elem's reference, or 0 when it cannot have one. */
static uint32_t ref_of(const struct mcfs_ptab *t, const void *elem)
{
	uintptr_t off = (uintptr_t)elem - (uintptr_t)t->base;

	if ((uintptr_t)elem <= (uintptr_t)t->base || (off & 7) || (off >> 3) > UINT32_MAX)
		return 0;
	return (uint32_t)(off >> 3);
}

void mcfs_ptab_fini(struct mcfs_ptab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->mask = 0;
	t->count = 0;
}

static void place(uint32_t *slots, size_t mask, uint32_t ref, uint64_t h)
{
	size_t i = (size_t)h & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = ref;
}

static uint64_t hash_at(const struct mcfs_ptab *t, uint32_t ref)
{
	return t->hash(mcfs_ptab_elem(t, ref));
}

static int resize(struct mcfs_ptab *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	size_t i;

	if (!slots)
		return -ENOMEM;
	if (t->slots) {
		for (i = 0; i <= t->mask; i++) {
			if (t->slots[i])
				place(slots, nslots - 1, t->slots[i], hash_at(t, t->slots[i]));
		}
		free(t->slots);
	}
	t->slots = slots;
	t->mask = nslots - 1;
	return 0;
}

int mcfs_ptab_reserve(struct mcfs_ptab *t, size_t n)
{
	size_t nslots = t->slots ? t->mask + 1 : 0;
	size_t want = nslots ? nslots : MIN_SLOTS;

	while (over_load(t->count + n, want))
		want *= 2;
	if (want == nslots)
		return 0;
	return resize(t, want);
}

int mcfs_ptab_insert(struct mcfs_ptab *t, void *elem)
{
	uint32_t ref = ref_of(t, elem);
	int ret;

	if (!ref)
		return -EINVAL;
	ret = mcfs_ptab_reserve(t, 1);
	if (ret)
		return ret;
	place(t->slots, t->mask, ref, t->hash(elem));
	t->count++;
	return 0;
}

/* Is home slot k outside the cyclic range (hole, j]? Then the element at j may fill the hole. */
static bool may_fill(size_t hole, size_t j, size_t k)
{
	if (hole <= j)
		return k <= hole || k > j;
	return k <= hole && k > j;
}

void mcfs_ptab_remove(struct mcfs_ptab *t, const void *elem)
{
	uint32_t ref = ref_of(t, elem);
	size_t i, j;

	if (!t->slots || !ref)
		return;
	for (i = (size_t)t->hash(elem) & t->mask; t->slots[i] != ref; i = (i + 1) & t->mask) {
		if (!t->slots[i])
			return;
	}
	for (j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
		size_t k = (size_t)hash_at(t, t->slots[j]) & t->mask;

		if (may_fill(i, j, k)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i] = 0;
	t->count--;
}

void *mcfs_ptab_next(const struct mcfs_ptab *t, size_t *pos)
{
	if (!t->slots)
		return NULL;
	while (*pos <= t->mask) {
		uint32_t ref = t->slots[(*pos)++];

		if (ref)
			return mcfs_ptab_elem(t, ref);
	}
	return NULL;
}
