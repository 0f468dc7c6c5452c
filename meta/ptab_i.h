/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A compact hash table of references for the master's per-object indexes
 * (inode number, directory entry, readdir cookie). Open addressing with
 * linear probing and backward-shift deletion: one 4-byte slot per element
 * at a load factor between 0.35 and 0.7, and nothing inside the element.
 * uthash would put a 56-byte handle in every inode for every index, which
 * alone is more than the per-object memory budget (PERFORMANCE.md); the
 * master's small tables (nodes, puts, retired objects) do use uthash.
 *
 * A slot holds a 32-bit reference, not a pointer: the element's distance
 * from the table's base in 8-byte words (0: an empty slot). So every
 * element lies 8-byte aligned in (base, base + 32 GiB): the master's
 * inodes all come from one reserved stretch of address space (meta/ns.c).
 * The API takes and returns pointers.
 *
 * The hash of an element is recomputed by the table's hash callback when
 * it is moved (growth and deletion), so an element's key must not change
 * while it is in a table: remove it, change the key, insert it again.
 *
 * Not thread-safe; the master serialises all calls.
 */
#ifndef MCFS_PTAB_I_H
#define MCFS_PTAB_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mcfs_ptab {
	uint32_t *slots; /* owned; mask + 1 of them, 0 when empty; NULL before the first insert */
	size_t mask;
	size_t count;
	const uint8_t *base;		    /* elements are at base + 8 * slot */
	uint64_t (*hash)(const void *elem); /* of a stored element's key */
};

static inline void *mcfs_ptab_elem(const struct mcfs_ptab *t, uint32_t ref)
{
	return (void *)(t->base + ((size_t)ref << 3));
}

/* Elements lie in (base, base + 32 GiB), 8-byte aligned. */
void mcfs_ptab_init(struct mcfs_ptab *t, const void *base, uint64_t (*hash)(const void *elem));
/* Frees the slot array only; the elements belong to the caller. */
void mcfs_ptab_fini(struct mcfs_ptab *t);

/*
 * Make room for n more elements, so that the next n inserts cannot fail.
 * 0 or -ENOMEM. Lets a caller allocate before it changes anything.
 */
int mcfs_ptab_reserve(struct mcfs_ptab *t, size_t n);

/* Add elem (not already in t). 0, -EINVAL (outside the table's range), -ENOMEM (t unchanged). */
int mcfs_ptab_insert(struct mcfs_ptab *t, void *elem);

/* Remove elem (the very pointer) if it is in t. */
void mcfs_ptab_remove(struct mcfs_ptab *t, const void *elem);

/*
 * The element with hash h for which match(elem, key) holds, or NULL. h must
 * be what the table's hash callback returns for such an element.
 */
static inline void *mcfs_ptab_find(const struct mcfs_ptab *t, uint64_t h,
				   bool (*match)(const void *elem, const void *key),
				   const void *key)
{
	size_t i;

	if (!t->slots)
		return NULL;
	for (i = (size_t)h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
		void *e = mcfs_ptab_elem(t, t->slots[i]);

		if (match(e, key))
			return e;
	}
	return NULL;
}

/*
 * Iteration: start with *pos = 0; returns the next element, or NULL at the
 * end. To remove the element just returned and go on, remove it and then
 * decrement *pos: deletion shifts later elements back into its slot, which
 * must be looked at again. (An element may then be returned twice, never
 * skipped.) Inserting during an iteration is not allowed.
 */
void *mcfs_ptab_next(const struct mcfs_ptab *t, size_t *pos);

#endif
