// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the master's namespace (meta/ns.c) and of the pointer hash
 * table under it (meta/ptab.c), below the protocol: cookie order and
 * resumption, moves and exchanges, the subtree walk, stored xattrs, and
 * the table's insert/remove/iterate invariants under load.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "meta/ns_i.h"
#include "meta/proto.h"
#include "meta/ptab_i.h"

/* ptab */

/* A table base just below an array: its first element is reference 1. */
#define BASE_BELOW(v) ((const void *)((uintptr_t)(v)-8))

struct item {
	uint64_t key;
	bool in;
};

static uint64_t item_hash(const void *e)
{
	return mcfs_mix64(((const struct item *)e)->key);
}

/* A deliberately bad hash: long clusters that wrap around the table's end. */
static uint64_t item_hash_clustered(const void *e)
{
	return ((const struct item *)e)->key % 7 + 13;
}

static bool item_match(const void *e, const void *key)
{
	return ((const struct item *)e)->key == *(const uint64_t *)key;
}

static struct item *find(struct mcfs_ptab *t, uint64_t key)
{
	struct item probe = {key, false};

	return mcfs_ptab_find(t, t->hash(&probe), item_match, &key);
}

static void check_all(struct mcfs_ptab *t, struct item *v, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		struct item *f = find(t, v[i].key);

		if (v[i].in) {
			cr_assert_eq(f, &v[i], "key %llu", (unsigned long long)v[i].key);
			count++;
		} else {
			cr_assert_null(f, "key %llu", (unsigned long long)v[i].key);
		}
	}
	cr_assert_eq(t->count, count);
}

static void ptab_churn(uint64_t (*hash)(const void *), size_t n)
{
	struct item *v = calloc(n, sizeof(*v));
	struct mcfs_ptab t;

	mcfs_ptab_init(&t, BASE_BELOW(v), hash);
	cr_assert_null(find(&t, 1));
	mcfs_ptab_remove(&t, &v[0]); /* empty table: nothing happens */
	srand(42);
	for (size_t i = 0; i < n; i++) {
		v[i].key = ((uint64_t)rand() << 31 | (uint64_t)rand()) * 2 + 1; /* unique enough */
		v[i].key = v[i].key ^ (uint64_t)i << 40;
		cr_assert_eq(mcfs_ptab_insert(&t, &v[i]), 0);
		v[i].in = true;
	}
	check_all(&t, v, n);
	for (size_t i = 0; i < n; i++) {
		if (rand() % 2) {
			mcfs_ptab_remove(&t, &v[i]);
			v[i].in = false;
		}
	}
	check_all(&t, v, n);
	/* Removing what is not there changes nothing. */
	struct item stranger = {12345, false};
	mcfs_ptab_remove(&t, &stranger);
	check_all(&t, v, n);
	for (size_t i = 0; i < n; i += 3) {
		if (!v[i].in) {
			cr_assert_eq(mcfs_ptab_insert(&t, &v[i]), 0);
			v[i].in = true;
		}
	}
	check_all(&t, v, n);
	mcfs_ptab_fini(&t);
	free(v);
}

Test(ptab, insert_find_remove)
{
	ptab_churn(item_hash, 100000);
}

Test(ptab, insert_find_remove_clustered)
{
	ptab_churn(item_hash_clustered, 2000);
}

static void iterate_removing(uint64_t (*hash)(const void *), size_t n)
{
	struct item *v = calloc(n, sizeof(*v));
	unsigned *visits = calloc(n, sizeof(*visits));
	struct mcfs_ptab t;
	struct item *e;
	size_t pos = 0;

	mcfs_ptab_init(&t, BASE_BELOW(v), hash);
	for (size_t i = 0; i < n; i++) {
		v[i].key = i * 2654435761u + 1;
		v[i].in = true;
		cr_assert_eq(mcfs_ptab_insert(&t, &v[i]), 0);
	}
	while ((e = mcfs_ptab_next(&t, &pos))) {
		size_t i = (size_t)(e - v);

		visits[i]++;
		if (i % 3 == 0) {
			cr_assert_eq(visits[i], 1, "a removed element came back");
			mcfs_ptab_remove(&t, e);
			e->in = false;
			pos--;
		}
	}
	for (size_t i = 0; i < n; i++)
		cr_assert_geq(visits[i], 1, "element %zu skipped", i);
	check_all(&t, v, n);
	mcfs_ptab_fini(&t);
	free(v);
	free(visits);
}

Test(ptab, iterate_while_removing)
{
	iterate_removing(item_hash, 50000);
	iterate_removing(item_hash_clustered, 500);
}

Test(ptab, reserve_then_insert)
{
	struct item v[100];
	struct mcfs_ptab t;
	uint32_t *slots;

	mcfs_ptab_init(&t, BASE_BELOW(v), item_hash);
	cr_assert_eq(mcfs_ptab_reserve(&t, 100), 0);
	slots = t.slots;
	for (int i = 0; i < 100; i++) {
		v[i].key = (uint64_t)i;
		v[i].in = true;
		cr_assert_eq(mcfs_ptab_insert(&t, &v[i]), 0);
	}
	cr_assert_eq(t.slots, slots, "the table grew after a reserve");
	cr_assert_leq(t.count * 10, (t.mask + 1) * 7);
	check_all(&t, v, 100);
	mcfs_ptab_fini(&t);
}

/* Elements are 32-bit references from the base: one the table cannot name is refused. */
Test(ptab, element_out_of_reach)
{
	struct item v[4] = {{1, true}, {2, true}, {3, false}, {4, false}};
	struct mcfs_ptab t;
	char *odd = (char *)&v[2] + 4;

	mcfs_ptab_init(&t, (const void *)&v[1], item_hash);
	cr_assert_eq(mcfs_ptab_insert(&t, &v[0]), -EINVAL, "below the base");
	cr_assert_eq(mcfs_ptab_insert(&t, &v[1]), -EINVAL, "the base itself: reference 0");
	cr_assert_eq(mcfs_ptab_insert(&t, odd), -EINVAL, "not 8-byte aligned");
	cr_assert_eq(mcfs_ptab_insert(&t, (void *)((uintptr_t)&v[1] + ((uintptr_t)1 << 35))),
		     -EINVAL, "32 GiB away");
	cr_assert_eq(t.count, 0);
	cr_assert_eq(mcfs_ptab_insert(&t, &v[2]), 0);
	cr_assert_eq(find(&t, 3), &v[2]);
	mcfs_ptab_remove(&t, &v[0]); /* not in it, and cannot be: nothing happens */
	cr_assert_eq(t.count, 1);
	mcfs_ptab_fini(&t);
}

/* ns */

static struct mcfs_ns ns;
static int64_t now_ns = 1000;

static void setup(void)
{
	cr_assert_eq(mcfs_ns_init(&ns, 1), 0);
}

static void teardown(void)
{
	mcfs_ns_fini(&ns);
}

TestSuite(ns, .init = setup, .fini = teardown);

static struct mcfs_inode *mk(struct mcfs_inode *dir, const char *name, uint32_t type)
{
	struct mcfs_inode *in;

	cr_assert_eq(mcfs_ns_create(&ns, dir, name, strlen(name), type | 0644, 1, 2, "tgt", 3,
				    ++now_ns, &in),
		     0);
	cr_assert_eq(in->mode, type | 0644);
	cr_assert_eq(in->namelen, strlen(name));
	cr_assert_eq(mcfs_ns_parent(in), dir);
	return in;
}

static struct mcfs_inode *lk(struct mcfs_inode *dir, const char *name)
{
	return mcfs_ns_lookup(&ns, dir, name, strlen(name));
}

/* The names of dir in listing order, as "a,b,c". */
static void names(struct mcfs_inode *dir, char *out)
{
	out[0] = '\0';
	for (struct mcfs_inode *e = mcfs_ns_resume(&ns, dir, 0); e; e = mcfs_ns_next(e)) {
		strcat(out, mcfs_inode_name(e));
		if (e->next)
			strcat(out, ",");
	}
}

Test(ns, root)
{
	cr_assert_eq(ns.root->ino, MCFS_ROOT_INO);
	cr_assert_eq(mcfs_ns_get(&ns, MCFS_ROOT_INO), ns.root);
	cr_assert_eq(ns.root->mode, S_IFDIR | 0755);
	cr_assert_eq(mcfs_ns_nlink(ns.root), 2);
	cr_assert_eq(ns.ninodes, 1);
	cr_assert_null(mcfs_ns_get(&ns, 2));
}

Test(ns, create_lookup_delete)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *f = mk(d, "f", S_IFREG);
	struct mcfs_inode *l = mk(d, "l", S_IFLNK);
	char buf[256];

	cr_assert_eq(lk(ns.root, "d"), d);
	cr_assert_eq(lk(d, "f"), f);
	cr_assert_null(lk(ns.root, "f"));
	cr_assert_null(lk(d, "F"));
	cr_assert_eq(mcfs_ns_get(&ns, f->ino), f);
	cr_assert_str_eq(l->u.lnk.target, "tgt");
	cr_assert_eq(l->u.lnk.len, 3);
	cr_assert_eq(mcfs_ns_nlink(ns.root), 3);
	cr_assert_eq(mcfs_ns_nlink(d), 2);
	cr_assert_eq(mcfs_ns_nlink(f), 1);
	cr_assert_eq(d->mtime_ns, now_ns);
	cr_assert_eq(ns.ninodes, 4);
	names(d, buf);
	cr_assert_str_eq(buf, "f,l");
	mcfs_ns_delete(&ns, f, ++now_ns);
	cr_assert_null(lk(d, "f"));
	cr_assert_eq(d->mtime_ns, now_ns);
	cr_assert_eq(d->ctime_ns, now_ns);
	mcfs_ns_delete(&ns, l, ++now_ns);
	cr_assert_null(d->u.dir.head);
	cr_assert_null(d->u.dir.tail);
	mcfs_ns_delete(&ns, d, ++now_ns);
	cr_assert_eq(mcfs_ns_nlink(ns.root), 2);
	cr_assert_eq(ns.ninodes, 1);
}

Test(ns, names_are_bytes)
{
	struct mcfs_inode *a = mk(ns.root, "a", S_IFREG);
	struct mcfs_inode *b;

	cr_assert_eq(mcfs_ns_create(&ns, ns.root, "a\nb", 3, S_IFREG, 0, 0, NULL, 0, 0, &b), 0);
	cr_assert_eq(mcfs_ns_lookup(&ns, ns.root, "a\nb", 3), b);
	cr_assert_eq(mcfs_ns_lookup(&ns, ns.root, "a", 1), a);
	cr_assert_null(mcfs_ns_lookup(&ns, ns.root, "a\n", 2));
}

static void noop_replace(void *arg, struct mcfs_inode *old)
{
	*(struct mcfs_inode **)arg = old;
	mcfs_ns_delete(&ns, old, now_ns);
}

Test(ns, move_appends_with_a_fresh_cookie)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *e = mk(ns.root, "e", S_IFDIR);
	struct mcfs_inode *a = mk(d, "a", S_IFREG), *b = mk(d, "b", S_IFREG);
	struct mcfs_inode *c = mk(d, "c", S_IFREG), *x = mk(e, "x", S_IFREG), *gone = NULL;
	uint64_t seq = a->seq;
	char buf[256];

	cr_assert_eq(a->seq, a->ino);
	cr_assert_eq(mcfs_ns_move(&ns, a, d, "a2", 2, ++now_ns, noop_replace, &gone), 0);
	cr_assert_null(gone);
	cr_assert_gt(a->seq, c->seq);
	cr_assert_neq(a->seq, a->ino);
	cr_assert_eq(a->ctime_ns, now_ns);
	names(d, buf);
	cr_assert_str_eq(buf, "b,c,a2");
	cr_assert_null(lk(d, "a"));
	cr_assert_eq(lk(d, "a2"), a);
	/* Resuming after a's old cookie: b is next; after its new one: the end. */
	cr_assert_eq(mcfs_ns_resume(&ns, d, seq), b);
	cr_assert_null(mcfs_ns_resume(&ns, d, a->seq));
	cr_assert_eq(mcfs_ns_resume(&ns, d, b->seq), c);
	/* Across directories, over an existing entry. */
	cr_assert_eq(mcfs_ns_move(&ns, b, e, "x", 1, ++now_ns, noop_replace, &gone), 0);
	cr_assert_eq(gone, x);
	cr_assert_eq(lk(e, "x"), b);
	cr_assert_eq(mcfs_ns_parent(b), e);
	names(d, buf);
	cr_assert_str_eq(buf, "c,a2");
	names(e, buf);
	cr_assert_str_eq(buf, "x");
	/* A directory's nlink follows its subdirectories. */
	cr_assert_eq(mcfs_ns_nlink(ns.root), 4);
	cr_assert_eq(mcfs_ns_move(&ns, e, d, "e", 1, ++now_ns, noop_replace, &gone), 0);
	cr_assert_eq(mcfs_ns_nlink(ns.root), 3);
	cr_assert_eq(mcfs_ns_nlink(d), 3);
	cr_assert(mcfs_ns_is_within(b, d));
	cr_assert(mcfs_ns_is_within(d, d));
	cr_assert(!mcfs_ns_is_within(d, e));
	/* The moved entry's cookie still resumes (cookie table). */
	cr_assert_eq(mcfs_ns_resume(&ns, d, a->seq), e);
}

Test(ns, exchange)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *e = mk(ns.root, "e", S_IFDIR);
	struct mcfs_inode *a = mk(d, "a", S_IFREG), *sub = mk(e, "sub", S_IFDIR);
	char buf[256];

	cr_assert_eq(mcfs_ns_exchange(&ns, a, sub, ++now_ns), 0);
	cr_assert_eq(lk(d, "a"), sub);
	cr_assert_eq(lk(e, "sub"), a);
	cr_assert_eq(mcfs_ns_parent(sub), d);
	cr_assert_eq(mcfs_ns_nlink(d), 3);
	cr_assert_eq(mcfs_ns_nlink(e), 2);
	names(d, buf);
	cr_assert_str_eq(buf, "a");
	/* Within one directory. */
	struct mcfs_inode *b = mk(d, "b", S_IFREG);
	cr_assert_eq(mcfs_ns_exchange(&ns, sub, b, ++now_ns), 0);
	cr_assert_eq(lk(d, "a"), b);
	cr_assert_eq(lk(d, "b"), sub);
	cr_assert_eq(mcfs_ns_nlink(d), 3);
}

Test(ns, resume_after_removed_entries)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *v[10];
	char name[8];

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "%d", i);
		v[i] = mk(d, name, S_IFREG);
	}
	uint64_t c3 = v[3]->seq, c4 = v[4]->seq, c9 = v[9]->seq;

	mcfs_ns_delete(&ns, v[3], now_ns);
	mcfs_ns_delete(&ns, v[4], now_ns);
	cr_assert_eq(mcfs_ns_resume(&ns, d, c3), v[5]);
	cr_assert_eq(mcfs_ns_resume(&ns, d, c4), v[5]);
	cr_assert_eq(mcfs_ns_resume(&ns, d, 0), v[0]);
	mcfs_ns_delete(&ns, v[9], now_ns);
	cr_assert_null(mcfs_ns_resume(&ns, d, c9));
	cr_assert_null(mcfs_ns_resume(&ns, d, UINT64_MAX));
	/* A cookie of another directory's entry. */
	cr_assert_eq(mcfs_ns_resume(&ns, ns.root, v[0]->seq), NULL);
}

Test(ns, walk_visits_everything_below)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *e = mk(d, "e", S_IFDIR);
	struct mcfs_inode *in = NULL;
	char buf[256] = "";

	mk(e, "f", S_IFREG);
	mk(mk(e, "empty", S_IFDIR), "deep", S_IFREG);
	mk(d, "g", S_IFREG);
	mk(ns.root, "outside", S_IFREG);
	while ((in = mcfs_ns_walk_next(d, in))) {
		strcat(buf, mcfs_inode_name(in));
		strcat(buf, ",");
	}
	cr_assert_str_eq(buf, "e,f,empty,deep,g,");
	cr_assert_null(mcfs_ns_walk_next(mk(ns.root, "lonely", S_IFDIR), NULL));
}

Test(ns, stored_xattrs)
{
	struct mcfs_inode *f = mk(ns.root, "f", S_IFREG);
	const struct mcfs_xattr *x;
	char v[89] = {0};

	cr_assert_null(mcfs_ns_xattr_get(f, "user.a", 6));
	cr_assert_eq(mcfs_ns_xattr_remove(f, "user.a", 6), -ENODATA);
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.a", 6, "12345", 5, 0, 100), 0);
	cr_assert_eq(mcfs_inode_xattrs(f)->bytes, 6 + 5 + 8);
	cr_assert_str_eq(mcfs_inode_name(f), "f", "the name moved to the ext with the xattrs");
	x = mcfs_ns_xattr_get(f, "user.a", 6);
	cr_assert_not_null(x);
	cr_assert_eq(x->vlen, 5);
	cr_assert_eq(memcmp(x->value, "12345", 5), 0);
	cr_assert_str_eq(x->name, "user.a");
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.a", 6, "1", 1, MCFS_XATTR_CREATE, 100), -EEXIST);
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.b", 6, "1", 1, MCFS_XATTR_REPLACE, 100), -ENODATA);
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.a", 6, "", 0, MCFS_XATTR_REPLACE, 100), 0);
	cr_assert_eq(mcfs_inode_xattrs(f)->bytes, 6 + 8);
	cr_assert_eq(mcfs_ns_xattr_get(f, "user.a", 6)->vlen, 0);
	/* The limit counts names, values and 8 bytes per entry (a packed list's length words). */
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.b", 6, v, 72, 0, 100), 0);
	cr_assert_eq(mcfs_inode_xattrs(f)->bytes, 100);
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.c", 6, "", 0, 0, 100), -ENOSPC);
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.b", 6, v, 73, 0, 100), -ENOSPC);
	cr_assert_eq(mcfs_ns_xattr_remove(f, "user.a", 6), 0);
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.c", 6, "", 0, 0, 100), 0);
	cr_assert_eq(mcfs_ns_xattr_remove(f, "user.b", 6), 0);
	cr_assert_eq(mcfs_ns_xattr_remove(f, "user.c", 6), 0);
	cr_assert_null(mcfs_inode_xattrs(f));
	cr_assert_eq(lk(ns.root, "f"), f);
	/* Freed with the inode (the sanitizer build checks). */
	cr_assert_eq(mcfs_ns_xattr_set(f, "user.z", 6, "zz", 2, 0, 100), 0);
}

/*
 * Inode memory is reused: names of every length, deleted and created again
 * in other orders and lengths, never overlap (each keeps its own name and
 * fields), and a rename within an inode's room stays in place.
 */
Test(ns, inode_slots_reused)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *v[600];
	char name[300];
	int i, j;

	for (int round = 0; round < 3; round++) {
		for (i = 0; i < 600; i++) {
			int len = 8 + (i * 7 + round * 13) % 248; /* 8..255 */
			int pre = snprintf(name, sizeof(name), "%04d-%d-", i, round);

			for (j = pre; j < len; j++)
				name[j] = (char)('a' + (i + j + round) % 26);
			name[len] = '\0';
			v[i] = mk(d, name, S_IFREG);
			cr_assert_geq(v[i]->namecap, strlen(name));
			v[i]->u.file.obj.size = (uint64_t)i * 1000 + (uint64_t)round;
		}
		for (i = 0; i < 600; i++) {
			cr_assert_eq(lk(d, mcfs_inode_name(v[i])), v[i]);
			cr_assert_eq(v[i]->u.file.obj.size, (uint64_t)i * 1000 + (uint64_t)round);
		}
		/* Free every other one, then all: their slots come back next round. */
		for (i = 0; i < 600; i += 2)
			mcfs_ns_delete(&ns, v[i], ++now_ns);
		for (i = 1; i < 600; i += 2) {
			cr_assert_eq(lk(d, mcfs_inode_name(v[i])), v[i]);
			mcfs_ns_delete(&ns, v[i], ++now_ns);
		}
		cr_assert_null(d->u.dir.head);
	}
}

/* Many entries: every lookup lands, and the listing is in creation order. */
Test(ns, many_entries)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *prev = NULL, *e;
	char name[16];
	int i = 0;

	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		mk(d, name, S_IFREG);
	}
	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		e = lk(d, name);
		cr_assert_not_null(e);
		cr_assert_eq(mcfs_ns_get(&ns, e->ino), e);
	}
	i = 0;
	for (e = mcfs_ns_head(d); e; prev = e, e = mcfs_ns_next(e), i++) {
		if (prev)
			cr_assert_gt(e->seq, prev->seq);
		cr_assert_eq(mcfs_ns_resume(&ns, d, e->seq), mcfs_ns_next(e));
	}
	cr_assert_eq(i, 20000);
}

/* Names live in the inode until a rename needs more room. */
Test(ns, renames_change_name_length)
{
	struct mcfs_inode *d = mk(ns.root, "d", S_IFDIR), *a = mk(d, "ab", S_IFREG);
	struct mcfs_inode *b = mk(d, "a-much-longer-name", S_IFREG), *gone = NULL;
	char buf[256];

	/* Every inode has room for 7 bytes of name in place (or the ext pointer). */
	cr_assert_eq(a->namecap, 7);
	cr_assert_eq(mcfs_inode_name(a), a->iname);
	cr_assert_eq(mcfs_ns_move(&ns, a, d, "abcdefg", 7, ++now_ns, noop_replace, &gone), 0);
	cr_assert_eq(mcfs_inode_name(a), a->iname);
	cr_assert_str_eq(mcfs_inode_name(a), "abcdefg");
	cr_assert_eq(mcfs_ns_move(&ns, a, d, "a-longer-name", 13, ++now_ns, noop_replace, &gone),
		     0);
	cr_assert(a->flags & MCFS_I_EXT);
	cr_assert_str_eq(mcfs_inode_name(a), "a-longer-name");
	cr_assert_eq(a->namelen, 13);
	cr_assert_eq(lk(d, "a-longer-name"), a);
	cr_assert_null(lk(d, "abcdefg"));
	cr_assert_eq(mcfs_ns_move(&ns, a, d, "x", 1, ++now_ns, noop_replace, &gone), 0);
	cr_assert_str_eq(mcfs_inode_name(a), "x");
	cr_assert_eq(mcfs_ns_exchange(&ns, a, b, ++now_ns), 0);
	cr_assert_str_eq(mcfs_inode_name(a), "a-much-longer-name");
	cr_assert_str_eq(mcfs_inode_name(b), "x");
	cr_assert_eq(lk(d, "a-much-longer-name"), a);
	cr_assert_eq(lk(d, "x"), b);
	cr_assert_eq(mcfs_ns_exchange(&ns, b, a, ++now_ns), 0);
	cr_assert_str_eq(mcfs_inode_name(a), "x");
	cr_assert_str_eq(mcfs_inode_name(b), "a-much-longer-name");
	cr_assert_not(b->flags & MCFS_I_EXT, "b's own room held both names");
	cr_assert_eq(mcfs_inode_name(b), b->iname);
	/* An inode with an ext (xattrs) keeps its attributes through renames. */
	cr_assert_eq(mcfs_ns_xattr_set(b, "user.k", 6, "v", 1, 0, 100), 0);
	cr_assert_eq(mcfs_ns_move(&ns, b, d, "b2", 2, ++now_ns, noop_replace, &gone), 0);
	cr_assert_str_eq(mcfs_inode_name(b), "b2");
	cr_assert_eq(mcfs_ns_xattr_get(b, "user.k", 6)->vlen, 1);
	cr_assert_eq(mcfs_ns_exchange(&ns, a, b, ++now_ns), 0);
	cr_assert_str_eq(mcfs_inode_name(a), "b2");
	cr_assert_str_eq(mcfs_inode_name(b), "x");
	cr_assert_eq(lk(d, "x"), b);
	cr_assert_eq(lk(d, "b2"), a);
	cr_assert_eq(mcfs_ns_exchange(&ns, a, b, ++now_ns), 0);
	names(d, buf);
	cr_assert_str_eq(buf, "b2,x");
	/* Freed with a name of its own (the sanitizer build checks). */
	cr_assert_eq(
	    mcfs_ns_move(&ns, b, d, "b-is-now-even-longer", 20, ++now_ns, noop_replace, &gone), 0);
	cr_assert_null(gone);
}

/* Object replica lists: inline for one, an array for more, freed with the inode. */

static struct mcfs_rep rep_on(uint32_t node)
{
	return (struct mcfs_rep){
	    .node_id = node, .page = node + 100, .pages = 1, .tier = 1, .state = 2};
}

/* The node ids of o's replicas, as "1,2,3". */
static void rep_nodes(const struct mcfs_obj *o, char *out)
{
	out[0] = '\0';
	for (uint8_t i = 0; i < o->nrep; i++)
		sprintf(out + strlen(out), "%s%u", i ? "," : "", mcfs_obj_creps(o)[i].node_id);
}

/* The atime follows the mtime until one is set apart; that one stays. */
Test(ns, atime_apart_from_mtime)
{
	struct mcfs_inode *f = mk(ns.root, "f", S_IFREG);

	cr_assert_eq(mcfs_inode_atime(f), f->mtime_ns);
	cr_assert_eq(mcfs_ns_set_atime(f, f->mtime_ns), 0);
	cr_assert_null(mcfs_inode_ext(f), "an atime equal to the mtime took room");
	f->mtime_ns += 10;
	cr_assert_eq(mcfs_inode_atime(f), f->mtime_ns);
	cr_assert_eq(mcfs_ns_set_atime(f, 5), 0);
	cr_assert_eq(mcfs_inode_atime(f), 5);
	f->mtime_ns += 10;
	cr_assert_eq(mcfs_inode_atime(f), 5);
	cr_assert_str_eq(mcfs_inode_name(f), "f");
	cr_assert_null(mcfs_inode_xattrs(f));
	/* Back to equal: still its own, so a later mtime change leaves it. */
	cr_assert_eq(mcfs_ns_set_atime(f, f->mtime_ns), 0);
	cr_assert_eq(mcfs_inode_atime(f), f->mtime_ns);
	f->mtime_ns += 10;
	cr_assert_eq(mcfs_inode_atime(f), f->mtime_ns - 10);
}

/* A pending file's creator lives in its empty replica list. */
Test(ns, pending_file_creator)
{
	struct mcfs_inode *f = mk(ns.root, "f", S_IFREG);

	mcfs_file_set_creator(f, 7);
	cr_assert_eq(mcfs_file_creator(f), 7);
	cr_assert_eq(f->u.file.obj.nrep, 0);
}

Test(ns, object_replica_lists)
{
	struct mcfs_inode *f = mk(ns.root, "f", S_IFREG), *g = mk(ns.root, "g", S_IFREG);
	struct mcfs_obj *o = &f->u.file.obj;
	struct mcfs_rep v[MCFS_MAX_REPLICAS];
	char buf[64];

	for (uint32_t i = 0; i < MCFS_MAX_REPLICAS; i++)
		v[i] = rep_on(i + 1);
	cr_assert_eq(o->nrep, 0);
	cr_assert_eq(mcfs_obj_set_reps(o, v, 1), 0);
	cr_assert_eq(mcfs_obj_reps(o), &o->reps.one);
	rep_nodes(o, buf);
	cr_assert_str_eq(buf, "1");
	cr_assert_eq(mcfs_obj_set_reps(o, v, 3), 0);
	rep_nodes(o, buf);
	cr_assert_str_eq(buf, "1,2,3");
	cr_assert_eq(mcfs_obj_reps(o)[2].page, 103);
	/* The list may be set from itself. */
	cr_assert_eq(mcfs_obj_set_reps(o, mcfs_obj_reps(o) + 1, 2), 0);
	rep_nodes(o, buf);
	cr_assert_str_eq(buf, "2,3");
	cr_assert_eq(mcfs_obj_set_reps(o, mcfs_obj_reps(o) + 1, 1), 0);
	rep_nodes(o, buf);
	cr_assert_str_eq(buf, "3");
	cr_assert_eq(mcfs_obj_set_reps(o, v, MCFS_MAX_REPLICAS), 0);
	/* Deleting keeps the order; down to one it moves inline again. */
	mcfs_obj_del_rep(o, 0);
	mcfs_obj_del_rep(o, 3);
	mcfs_obj_del_rep(o, 5);
	rep_nodes(o, buf);
	cr_assert_str_eq(buf, "2,3,4,6,7");
	mcfs_obj_del_rep(o, 9); /* out of range: nothing */
	for (int i = 0; i < 3; i++)
		mcfs_obj_del_rep(o, 1);
	rep_nodes(o, buf);
	cr_assert_str_eq(buf, "2,7");
	mcfs_obj_del_rep(o, 1);
	cr_assert_eq(mcfs_obj_reps(o), &o->reps.one);
	cr_assert_eq(o->reps.one.node_id, 2);
	cr_assert_eq(o->reps.one.page, 102);
	mcfs_obj_del_rep(o, 0);
	cr_assert_eq(o->nrep, 0);
	cr_assert_eq(mcfs_obj_set_reps(o, v, 0), 0);
	cr_assert_eq(o->nrep, 0);
	/* A list of several, left for the inode's deletion (and fini) to free. */
	cr_assert_eq(mcfs_obj_set_reps(o, v, 4), 0);
	cr_assert_eq(mcfs_obj_set_reps(&g->u.file.obj, v, 5), 0);
	mcfs_ns_delete(&ns, f, ++now_ns);
}
