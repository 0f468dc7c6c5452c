// SPDX-License-Identifier: Apache-2.0
/*
 * The master's namespace (see ns_i.h): inode allocation, directory entries
 * in cookie order, moves, and the user.* attributes stored with an inode.
 * Every change that can fail allocates first, so a failure leaves the
 * namespace as it was.
 */
#include "meta/ns_i.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "meta/proto.h"

/* PERFORMANCE.md budgets the master's memory per object: an inode must not grow unnoticed. */
static_assert(sizeof(void *) != 8 || sizeof(struct mcfs_inode) <= 168,
	      "struct mcfs_inode grew past 168 bytes");

struct name_key {
	const struct mcfs_inode *dir;
	const char *name;
	size_t len;
};

static uint64_t name_hash(const struct mcfs_inode *dir, const char *name, size_t len)
{
	return XXH3_64bits_withSeed(name, len, dir->ino);
}

static uint64_t hash_by_ino(const void *e)
{
	return mcfs_ptab_mix64(((const struct mcfs_inode *)e)->ino);
}

static uint64_t hash_by_seq(const void *e)
{
	return mcfs_ptab_mix64(((const struct mcfs_inode *)e)->seq);
}

static uint64_t hash_by_name(const void *e)
{
	const struct mcfs_inode *in = e;

	return name_hash(in->parent, in->name, in->namelen);
}

static bool match_ino(const void *e, const void *key)
{
	return ((const struct mcfs_inode *)e)->ino == *(const uint64_t *)key;
}

static bool match_seq(const void *e, const void *key)
{
	return ((const struct mcfs_inode *)e)->seq == *(const uint64_t *)key;
}

static bool match_name(const void *e, const void *key)
{
	const struct mcfs_inode *in = e;
	const struct name_key *k = key;

	return in->parent == k->dir && in->namelen == k->len && !memcmp(in->name, k->name, k->len);
}

static void xattrs_free(struct mcfs_xattrs *x)
{
	if (!x)
		return;
	for (uint32_t i = 0; i < x->n; i++) {
		free(x->v[i].name);
		free(x->v[i].value);
	}
	free(x->v);
	free(x);
}

int mcfs_obj_set_reps(struct mcfs_obj *o, const struct mcfs_rep *v, uint8_t n)
{
	struct mcfs_rep *many = NULL;

	if (n > 1) {
		many = malloc(n * sizeof(*many));
		if (!many)
			return -ENOMEM;
		memcpy(many, v, n * sizeof(*many));
	}
	/* Copied out before the old list goes: v may be part of it. */
	if (n == 1) {
		struct mcfs_rep one = v[0];

		if (o->nrep > 1)
			free(o->reps.many);
		o->reps.one = one;
	} else {
		if (o->nrep > 1)
			free(o->reps.many);
		if (n)
			o->reps.many = many;
		else
			memset(&o->reps, 0, sizeof(o->reps));
	}
	o->nrep = n;
	return 0;
}

void mcfs_obj_del_rep(struct mcfs_obj *o, uint8_t i)
{
	struct mcfs_rep *many;

	if (i >= o->nrep)
		return;
	if (o->nrep == 1) {
		memset(&o->reps, 0, sizeof(o->reps));
	} else if (o->nrep == 2) {
		/* Back to the inline form: the survivor moves in. */
		many = o->reps.many;
		o->reps.one = many[!i];
		free(many);
	} else {
		many = o->reps.many;
		memmove(&many[i], &many[i + 1], (size_t)(o->nrep - i - 1) * sizeof(*many));
	}
	o->nrep--;
}

void mcfs_obj_fini(struct mcfs_obj *o)
{
	if (o->nrep > 1)
		free(o->reps.many);
	memset(o, 0, sizeof(*o));
}

static void inode_free(struct mcfs_inode *in)
{
	if (S_ISLNK(in->mode))
		free(in->u.lnk.target);
	else if (S_ISREG(in->mode))
		mcfs_obj_fini(&in->u.file.obj);
	xattrs_free(in->xattrs);
	if (in->name != in->iname)
		free(in->name);
	free(in);
}

/*
 * Room for in to be renamed name[0..len): NULL in *out when it fits in
 * iname, else a copy of its own. 0 or -ENOMEM.
 */
static int name_prepare(const struct mcfs_inode *in, const char *name, size_t len, char **out)
{
	*out = NULL;
	if (len <= in->namecap)
		return 0;
	*out = strndup(name, len);
	return *out ? 0 : -ENOMEM;
}

/* Rename in (out of the name table) to name[0..len), with what name_prepare() gave. */
static void name_commit(struct mcfs_inode *in, const char *name, size_t len, char *own)
{
	if (in->name != in->iname)
		free(in->name);
	if (own) {
		in->name = own;
	} else {
		memcpy(in->iname, name, len);
		in->iname[len] = '\0';
		in->name = in->iname;
	}
	in->namelen = (uint8_t)len;
}

int mcfs_ns_init(struct mcfs_ns *ns, int64_t now_ns)
{
	struct mcfs_inode *root = calloc(1, sizeof(*root) + 1);
	int ret;

	if (!root)
		return -ENOMEM;
	mcfs_ptab_init(&ns->by_ino, hash_by_ino);
	mcfs_ptab_init(&ns->by_name, hash_by_name);
	mcfs_ptab_init(&ns->by_seq, hash_by_seq);
	root->name = root->iname;
	root->ino = MCFS_ROOT_INO;
	root->seq = MCFS_ROOT_INO;
	root->mode = S_IFDIR | 0755;
	root->atime_ns = root->mtime_ns = root->ctime_ns = now_ns;
	ret = mcfs_ptab_insert(&ns->by_ino, root);
	if (ret) {
		free(root);
		return ret;
	}
	ns->root = root;
	ns->last_id = MCFS_ROOT_INO;
	ns->ninodes = 1;
	ns->changed = NULL;
	return 0;
}

void mcfs_ns_fini(struct mcfs_ns *ns)
{
	struct mcfs_inode *in;
	size_t pos = 0;

	while ((in = mcfs_ptab_next(&ns->by_ino, &pos)))
		inode_free(in);
	mcfs_ptab_fini(&ns->by_ino);
	mcfs_ptab_fini(&ns->by_name);
	mcfs_ptab_fini(&ns->by_seq);
	ns->root = NULL;
	ns->ninodes = 0;
}

struct mcfs_inode *mcfs_ns_get(const struct mcfs_ns *ns, uint64_t ino)
{
	return mcfs_ptab_find(&ns->by_ino, mcfs_ptab_mix64(ino), match_ino, &ino);
}

struct mcfs_inode *mcfs_ns_lookup(const struct mcfs_ns *ns, const struct mcfs_inode *dir,
				  const char *name, size_t len)
{
	struct name_key k = {dir, name, len};

	return mcfs_ptab_find(&ns->by_name, name_hash(dir, name, len), match_name, &k);
}

/* Append in (parent, name and seq set) to its directory and the name and cookie tables. */
static void link_in(struct mcfs_ns *ns, struct mcfs_inode *in)
{
	struct mcfs_inode *dir = in->parent;

	in->prev = dir->u.dir.tail;
	in->next = NULL;
	if (dir->u.dir.tail)
		dir->u.dir.tail->next = in;
	else
		dir->u.dir.head = in;
	dir->u.dir.tail = in;
	if (S_ISDIR(in->mode))
		dir->u.dir.nsubdirs++;
	/*
	 * These cannot fail: the caller reserved room, or took the inode out of
	 * the same table just before.
	 */
	(void)mcfs_ptab_insert(&ns->by_name, in);
	if (in->seq != in->ino)
		(void)mcfs_ptab_insert(&ns->by_seq, in);
}

/* Take in out of its directory and the name and cookie tables (not the inode table). */
static void unlink_in(struct mcfs_ns *ns, struct mcfs_inode *in)
{
	struct mcfs_inode *dir = in->parent;

	mcfs_ptab_remove(&ns->by_name, in);
	if (in->seq != in->ino)
		mcfs_ptab_remove(&ns->by_seq, in);
	if (in->prev)
		in->prev->next = in->next;
	else
		dir->u.dir.head = in->next;
	if (in->next)
		in->next->prev = in->prev;
	else
		dir->u.dir.tail = in->prev;
	in->prev = in->next = NULL;
	if (S_ISDIR(in->mode))
		dir->u.dir.nsubdirs--;
}

static void touch_dir(struct mcfs_inode *dir, int64_t now_ns)
{
	dir->mtime_ns = now_ns;
	dir->ctime_ns = now_ns;
}

static int ns_create(struct mcfs_ns *ns, struct mcfs_inode *dir, const char *name, size_t len,
		     uint32_t mode, uint32_t uid, uint32_t gid, const char *target, size_t tlen,
		     uint64_t ino, int64_t now_ns, struct mcfs_inode **out)
{
	struct mcfs_inode *in;
	int ret = -ENOMEM;

	in = calloc(1, sizeof(*in) + len + 1);
	if (!in)
		return -ENOMEM;
	in->namecap = (uint8_t)len;
	name_commit(in, name, len, NULL);
	if (S_ISLNK(mode)) {
		in->u.lnk.target = strndup(target, tlen);
		if (!in->u.lnk.target)
			goto out_free_inode;
		in->u.lnk.len = (uint32_t)tlen;
	}
	ret = mcfs_ptab_reserve(&ns->by_ino, 1);
	if (!ret)
		ret = mcfs_ptab_reserve(&ns->by_name, 1);
	if (!ret && ino)
		ret = mcfs_ptab_reserve(&ns->by_seq, 1);
	if (ret)
		goto out_free_target;

	if (ino) {
		/* Listings stay in cookie order: below the directory's last one, a fresh cookie. */
		in->ino = ino;
		if (ino > ns->last_id)
			ns->last_id = ino;
		in->seq = dir->u.dir.tail && dir->u.dir.tail->seq > ino ? ++ns->last_id : ino;
	} else {
		in->ino = ++ns->last_id;
		in->seq = in->ino;
	}
	in->parent = dir;
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	in->atime_ns = in->mtime_ns = in->ctime_ns = now_ns;
	(void)mcfs_ptab_insert(&ns->by_ino, in); /* reserved above: cannot fail */
	link_in(ns, in);
	ns->ninodes++;
	*out = in;
	return 0;

out_free_target:
	if (S_ISLNK(mode))
		free(in->u.lnk.target);
out_free_inode:
	free(in);
	return ret;
}

int mcfs_ns_create(struct mcfs_ns *ns, struct mcfs_inode *dir, const char *name, size_t len,
		   uint32_t mode, uint32_t uid, uint32_t gid, const char *target, size_t tlen,
		   int64_t now_ns, struct mcfs_inode **out)
{
	int ret = ns_create(ns, dir, name, len, mode, uid, gid, target, tlen, 0, now_ns, out);

	if (!ret) {
		touch_dir(dir, now_ns);
		mcfs_ns_changed(ns, *out);
	}
	return ret;
}

int mcfs_ns_create_at(struct mcfs_ns *ns, struct mcfs_inode *dir, const char *name, size_t len,
		      uint32_t mode, uint32_t uid, uint32_t gid, const char *target, size_t tlen,
		      uint64_t ino, int64_t mtime_ns, int64_t ctime_ns, struct mcfs_inode **out)
{
	int ret;

	if (ino <= MCFS_ROOT_INO || mcfs_ns_get(ns, ino))
		return -EEXIST;
	ret = ns_create(ns, dir, name, len, mode, uid, gid, target, tlen, ino, mtime_ns, out);
	if (!ret)
		(*out)->ctime_ns = ctime_ns;
	return ret;
}

void mcfs_ns_delete(struct mcfs_ns *ns, struct mcfs_inode *in, int64_t now_ns)
{
	struct mcfs_inode *dir = in->parent;

	if (ns->changed)
		ns->changed(ns->changed_arg, in, true);
	unlink_in(ns, in);
	touch_dir(dir, now_ns);
	mcfs_ptab_remove(&ns->by_ino, in);
	ns->ninodes--;
	inode_free(in);
}

int mcfs_ns_move(struct mcfs_ns *ns, struct mcfs_inode *in, struct mcfs_inode *newdir,
		 const char *name, size_t len, int64_t now_ns,
		 void (*replace)(void *arg, struct mcfs_inode *old), void *arg)
{
	struct mcfs_inode *olddir = in->parent, *old;
	char *own;
	int ret;

	ret = name_prepare(in, name, len, &own);
	if (ret)
		return ret;
	ret = mcfs_ptab_reserve(&ns->by_seq, 1);
	if (ret) {
		free(own);
		return ret;
	}
	old = mcfs_ns_lookup(ns, newdir, name, len);
	if (old)
		replace(arg, old);
	unlink_in(ns, in);
	name_commit(in, name, len, own);
	in->parent = newdir;
	in->seq = ++ns->last_id;
	link_in(ns, in);
	in->ctime_ns = now_ns;
	touch_dir(olddir, now_ns);
	touch_dir(newdir, now_ns);
	mcfs_ns_changed(ns, in);
	return 0;
}

int mcfs_ns_exchange(struct mcfs_ns *ns, struct mcfs_inode *a, struct mcfs_inode *b, int64_t now_ns)
{
	struct mcfs_inode *adir = a->parent, *bdir = b->parent;
	char aname[MCFS_NAME_MAX + 1], bname[MCFS_NAME_MAX + 1];
	size_t alen = a->namelen, blen = b->namelen;
	char *aown, *bown;
	int ret;

	/* Copies: committing one name may overwrite the other's source. */
	memcpy(aname, a->name, alen);
	memcpy(bname, b->name, blen);
	ret = name_prepare(a, bname, blen, &aown);
	if (ret)
		return ret;
	ret = name_prepare(b, aname, alen, &bown);
	if (!ret)
		ret = mcfs_ptab_reserve(&ns->by_seq, 2);
	if (ret) {
		free(aown);
		free(bown);
		return ret;
	}
	unlink_in(ns, a);
	unlink_in(ns, b);
	name_commit(a, bname, blen, aown);
	a->parent = bdir;
	a->seq = ++ns->last_id;
	name_commit(b, aname, alen, bown);
	b->parent = adir;
	b->seq = ++ns->last_id;
	link_in(ns, b);
	link_in(ns, a);
	a->ctime_ns = b->ctime_ns = now_ns;
	touch_dir(adir, now_ns);
	touch_dir(bdir, now_ns);
	mcfs_ns_changed(ns, a);
	mcfs_ns_changed(ns, b);
	return 0;
}

bool mcfs_ns_is_within(const struct mcfs_inode *in, const struct mcfs_inode *dir)
{
	for (; in; in = in->parent) {
		if (in == dir)
			return true;
	}
	return false;
}

struct mcfs_inode *mcfs_ns_resume(const struct mcfs_ns *ns, const struct mcfs_inode *dir,
				  uint64_t cookie)
{
	struct mcfs_inode *in;

	if (!cookie)
		return dir->u.dir.head;
	in = mcfs_ns_get(ns, cookie);
	if (!in || in->seq != cookie)
		in = mcfs_ptab_find(&ns->by_seq, mcfs_ptab_mix64(cookie), match_seq, &cookie);
	if (in && in->parent == dir)
		return in->next;
	/* The entry left dir: the listing goes on at the first larger cookie. */
	for (in = dir->u.dir.head; in && in->seq <= cookie; in = in->next)
		;
	return in;
}

struct mcfs_inode *mcfs_ns_walk_next(const struct mcfs_inode *top, struct mcfs_inode *in)
{
	if (!in)
		return top->u.dir.head;
	if (S_ISDIR(in->mode) && in->u.dir.head)
		return in->u.dir.head;
	while (in != top && !in->next)
		in = in->parent;
	return in == top ? NULL : in->next;
}

static struct mcfs_xattr *xattr_find(const struct mcfs_inode *in, const char *name, size_t nlen)
{
	struct mcfs_xattrs *x = in->xattrs;

	if (!x)
		return NULL;
	for (uint32_t i = 0; i < x->n; i++) {
		if (x->v[i].nlen == nlen && !memcmp(x->v[i].name, name, nlen))
			return &x->v[i];
	}
	return NULL;
}

const struct mcfs_xattr *mcfs_ns_xattr_get(const struct mcfs_inode *in, const char *name,
					   size_t nlen)
{
	return xattr_find(in, name, nlen);
}

int mcfs_ns_xattr_set(struct mcfs_inode *in, const char *name, size_t nlen, const void *value,
		      size_t vlen, uint32_t flags, size_t max_bytes)
{
	struct mcfs_xattr *e = xattr_find(in, name, nlen);
	struct mcfs_xattrs *x = in->xattrs;
	size_t bytes = x ? x->bytes : 0;
	uint8_t *v = NULL;

	if (e && (flags & MCFS_XATTR_CREATE))
		return -EEXIST;
	if (!e && (flags & MCFS_XATTR_REPLACE))
		return -ENODATA;
	/* Each entry also costs its two length words: what a packed list (a record) holds. */
	bytes = e ? bytes - e->vlen + vlen : bytes + nlen + vlen + MCFS_XATTR_ENTRY_OVERHEAD;
	if (bytes > max_bytes)
		return -ENOSPC;
	if (vlen) {
		v = malloc(vlen);
		if (!v)
			return -ENOMEM;
		memcpy(v, value, vlen);
	}
	if (e) {
		free(e->value);
		e->value = v;
		e->vlen = (uint32_t)vlen;
		x->bytes = (uint32_t)bytes;
		return 0;
	}
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			goto out_free_value;
		in->xattrs = x;
	}
	if (x->n == x->cap) {
		uint32_t cap = x->cap ? x->cap * 2 : 2;
		struct mcfs_xattr *nv = realloc(x->v, cap * sizeof(*nv));

		if (!nv)
			goto out_free_value;
		x->v = nv;
		x->cap = cap;
	}
	e = &x->v[x->n];
	e->name = strndup(name, nlen);
	if (!e->name)
		goto out_free_value;
	e->nlen = (uint32_t)nlen;
	e->value = v;
	e->vlen = (uint32_t)vlen;
	x->n++;
	x->bytes = (uint32_t)bytes;
	return 0;

out_free_value:
	free(v);
	return -ENOMEM;
}

int mcfs_ns_xattr_remove(struct mcfs_inode *in, const char *name, size_t nlen)
{
	struct mcfs_xattr *e = xattr_find(in, name, nlen);
	struct mcfs_xattrs *x = in->xattrs;

	if (!e)
		return -ENODATA;
	x->bytes -= e->nlen + e->vlen + MCFS_XATTR_ENTRY_OVERHEAD;
	free(e->name);
	free(e->value);
	*e = x->v[--x->n];
	if (!x->n) {
		free(x->v);
		free(x);
		in->xattrs = NULL;
	}
	return 0;
}
