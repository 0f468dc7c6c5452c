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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/util.h"
#include "meta/proto.h"

/* PERFORMANCE.md budgets the master's memory per object: an inode must not grow unnoticed. */
static_assert(sizeof(void *) != 8 || sizeof(struct mcfs_inode) <= 120,
	      "struct mcfs_inode grew past 120 bytes");

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
	return mcfs_mix64(((const struct mcfs_inode *)e)->ino);
}

static uint64_t hash_by_seq(const void *e)
{
	return mcfs_mix64(((const struct mcfs_inode *)e)->seq);
}

static uint64_t hash_by_name(const void *e)
{
	const struct mcfs_inode *in = e;

	return name_hash(mcfs_ns_parent(in), mcfs_inode_name(in), in->namelen);
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

	return in->parent == mcfs_iref(k->dir) && in->namelen == k->len &&
	       !memcmp(mcfs_inode_name(in), k->name, k->len);
}

static void ext_free(struct mcfs_inode_ext *x)
{
	if (!x)
		return;
	for (uint32_t i = 0; i < x->xattrs.n; i++) {
		free(x->xattrs.v[i].name);
		free(x->xattrs.v[i].value);
	}
	free(x->xattrs.v);
	free(x->name);
	free(x);
}

/* A new ext for in, holding name[0..len) (in's name now, or the one it gets). NULL: no memory. */
static struct mcfs_inode_ext *ext_new(const char *name, size_t len)
{
	struct mcfs_inode_ext *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->name = strndup(name, len);
	if (!x->name) {
		free(x);
		return NULL;
	}
	return x;
}

static void ext_attach(struct mcfs_inode *in, struct mcfs_inode_ext *x)
{
	memcpy(in->iname, &x, sizeof(x));
	in->flags |= MCFS_I_EXT;
}

/* in's ext, made now if it has none. NULL: no memory (in unchanged). */
static struct mcfs_inode_ext *ext_get(struct mcfs_inode *in)
{
	struct mcfs_inode_ext *x = mcfs_inode_ext(in);

	if (x)
		return x;
	x = ext_new(in->iname, in->namelen);
	if (x)
		ext_attach(in, x);
	return x;
}

#if defined(__SANITIZE_ADDRESS__)
#define ISLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ISLAB_ASAN 1
#endif
#endif
#ifdef ISLAB_ASAN
#include <sanitizer/asan_interface.h>
#define SLOT_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define SLOT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLOT_POISON(p, n)   ((void)(p), (void)(n))
#define SLOT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ISLAB_CHUNK  (64u << 10)
#define ISLAB_HEADER 16u /* a chunk's link; the slots after it stay 8-byte aligned */
#define INODE_HEAD   offsetof(struct mcfs_inode, iname)
#define INODE_MIN    (INODE_HEAD + sizeof(struct mcfs_inode_ext *)) /* room for the ext pointer */

/*
 * The inode region: address space reserved once per process (PROT_NONE,
 * nothing committed) and made usable a step at a time, from which every
 * namespace takes its 64 KiB chunks. A 32-bit reference in 8-byte words
 * reaches 32 GiB of it: some 200 million inodes. Chunks of a namespace
 * that ends go back to the region (their memory to the system) for the
 * next one.
 */
#define REGION_MAX  ((size_t)1 << 35)
#define REGION_MIN  ((size_t)1 << 28)
#define REGION_STEP ((size_t)16 << 20)

uint8_t *mcfs_inode_base;
static size_t region_size, region_usable, region_top;
static void *region_free; /* chunks given back, linked through their first word */
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;

/* Reserve the region (once): the largest of 32 GiB, 16 GiB, ... that the system grants. */
static bool region_reserve(void)
{
	if (mcfs_inode_base)
		return true;
	for (size_t sz = REGION_MAX; sz >= REGION_MIN; sz /= 2) {
		void *p =
		    mmap(NULL, sz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p != MAP_FAILED) {
			mcfs_inode_base = p;
			region_size = sz;
			region_top = ISLAB_CHUNK; /* offset 0 would be reference 0: none */
			region_usable = 0;
			return true;
		}
	}
	return false;
}

/* A chunk of the region, or NULL when it is used up (or cannot be committed). */
static uint8_t *region_chunk(void)
{
	uint8_t *c = NULL;

	pthread_mutex_lock(&region_lock);
	if (region_free) {
		c = region_free;
		SLOT_UNPOISON(c, ISLAB_CHUNK);
		memcpy(&region_free, c, sizeof(void *));
	} else if (region_reserve() && region_top + ISLAB_CHUNK <= region_size) {
		if (region_top + ISLAB_CHUNK > region_usable) {
			size_t step = region_size - region_usable < REGION_STEP
					  ? region_size - region_usable
					  : REGION_STEP;

			if (!mprotect(mcfs_inode_base + region_usable, step,
				      PROT_READ | PROT_WRITE))
				region_usable += step;
		}
		if (region_top + ISLAB_CHUNK <= region_usable) {
			c = mcfs_inode_base + region_top;
			region_top += ISLAB_CHUNK;
		}
	}
	pthread_mutex_unlock(&region_lock);
	return c;
}

/* Give a chunk back: its memory goes to the system, its place to the next namespace. */
static void region_chunk_put(uint8_t *c)
{
	SLOT_UNPOISON(c, ISLAB_CHUNK);
	(void)madvise(c, ISLAB_CHUNK, MADV_DONTNEED);
	pthread_mutex_lock(&region_lock);
	memcpy(c, &region_free, sizeof(void *));
	region_free = c;
	pthread_mutex_unlock(&region_lock);
}

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* The size class of an inode holding len bytes of name and a NUL. */
static unsigned int islab_class(size_t len)
{
	size_t sz = round8(INODE_HEAD + len + 1);

	return sz <= round8(INODE_MIN) ? 0 : (unsigned int)((sz - round8(INODE_MIN)) / 8);
}

static size_t islab_size(unsigned int cls)
{
	return round8(INODE_MIN) + (size_t)cls * 8;
}

/*
 * A zeroed inode with room for len bytes of name (1..255, 0 for the root);
 * namecap says how much room it got. NULL: no memory.
 */
static struct mcfs_inode *inode_alloc(struct mcfs_ns *ns, size_t len)
{
	unsigned int cls = islab_class(len);
	size_t sz = islab_size(cls);
	struct mcfs_islab *sl = &ns->slab;
	struct mcfs_inode *in;

	if (sl->free[cls]) {
		in = sl->free[cls];
		memcpy(&sl->free[cls], in, sizeof(void *));
	} else {
		if (sl->next[cls] + sz > sl->end[cls] || !sl->next[cls]) {
			uint8_t *c = region_chunk();

			if (!c)
				return NULL;
			memcpy(c, &sl->chunks, sizeof(void *));
			sl->chunks = c;
			sl->next[cls] = c + ISLAB_HEADER;
			sl->end[cls] = c + ISLAB_CHUNK;
		}
		in = (struct mcfs_inode *)sl->next[cls];
		sl->next[cls] += sz;
	}
	memset(in, 0, sz);
	in->namecap = (uint8_t)(sz - INODE_HEAD - 1 > 255 ? 255 : sz - INODE_HEAD - 1);
	return in;
}

/* Give in's memory back (what it owns is the caller's to free first). */
static void inode_release(struct mcfs_ns *ns, struct mcfs_inode *in)
{
	size_t sz = islab_size(islab_class(in->namecap));

#ifdef ISLAB_ASAN
	/* Never reused: a use after free stays a poisoned access. */
	(void)ns;
	SLOT_POISON(in, sz);
#else
	unsigned int cls = islab_class(in->namecap);

	(void)sz;
	memcpy(in, &ns->slab.free[cls], sizeof(void *));
	ns->slab.free[cls] = in;
#endif
}

static void islab_fini(struct mcfs_islab *sl)
{
	void *c = sl->chunks, *next;

	while (c) {
		memcpy(&next, c, sizeof(next));
		region_chunk_put(c);
		c = next;
	}
	memset(sl, 0, sizeof(*sl));
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

static void inode_free(struct mcfs_ns *ns, struct mcfs_inode *in)
{
	if (S_ISLNK(in->mode))
		free(in->u.lnk.target);
	else if (S_ISREG(in->mode))
		mcfs_obj_fini(&in->u.file.obj);
	ext_free(mcfs_inode_ext(in));
	inode_release(ns, in);
}

/* What renaming an inode needs, allocated before anything changes. */
struct name_change {
	char *own;		  /* a copy of the new name, for an inode with an ext */
	struct mcfs_inode_ext *x; /* a new ext holding it, when it outgrows iname */
};

/* Room for in to be renamed name[0..len). 0 or -ENOMEM (nothing allocated). */
static int name_prepare(const struct mcfs_inode *in, const char *name, size_t len,
			struct name_change *c)
{
	c->own = NULL;
	c->x = NULL;
	if (in->flags & MCFS_I_EXT) {
		c->own = strndup(name, len);
		return c->own ? 0 : -ENOMEM;
	}
	if (len <= in->namecap)
		return 0;
	c->x = ext_new(name, len);
	return c->x ? 0 : -ENOMEM;
}

static void name_abort(struct name_change *c)
{
	free(c->own);
	ext_free(c->x);
}

/* Rename in (out of the name table) to name[0..len), with what name_prepare() gave. */
static void name_commit(struct mcfs_inode *in, const char *name, size_t len, struct name_change *c)
{
	struct mcfs_inode_ext *x = mcfs_inode_ext(in);

	if (x) {
		free(x->name);
		x->name = c->own;
	} else if (c->x) {
		ext_attach(in, c->x);
	} else {
		memcpy(in->iname, name, len);
		in->iname[len] = '\0';
	}
	in->namelen = (uint8_t)len;
}

int mcfs_ns_init(struct mcfs_ns *ns, int64_t now_ns)
{
	struct mcfs_inode *root;
	int ret;

	memset(&ns->slab, 0, sizeof(ns->slab));
	root = inode_alloc(ns, 0);
	if (!root)
		return -ENOMEM;
	mcfs_ptab_init(&ns->by_ino, mcfs_inode_base, hash_by_ino);
	mcfs_ptab_init(&ns->by_name, mcfs_inode_base, hash_by_name);
	mcfs_ptab_init(&ns->by_seq, mcfs_inode_base, hash_by_seq);
	root->ino = MCFS_ROOT_INO;
	root->seq = MCFS_ROOT_INO;
	root->mode = S_IFDIR | 0755;
	root->mtime_ns = root->ctime_ns = now_ns;
	ret = mcfs_ptab_insert(&ns->by_ino, root);
	if (ret) {
		inode_release(ns, root);
		islab_fini(&ns->slab);
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
		inode_free(ns, in);
	islab_fini(&ns->slab);
	mcfs_ptab_fini(&ns->by_ino);
	mcfs_ptab_fini(&ns->by_name);
	mcfs_ptab_fini(&ns->by_seq);
	ns->root = NULL;
	ns->ninodes = 0;
}

struct mcfs_inode *mcfs_ns_get(const struct mcfs_ns *ns, uint64_t ino)
{
	return mcfs_ptab_find(&ns->by_ino, mcfs_mix64(ino), match_ino, &ino);
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
	struct mcfs_inode *dir = mcfs_ns_parent(in);
	struct mcfs_inode *tail = mcfs_iptr(dir->u.dir.tail);

	in->prev = dir->u.dir.tail;
	in->next = 0;
	if (tail)
		tail->next = mcfs_iref(in);
	else
		dir->u.dir.head = mcfs_iref(in);
	dir->u.dir.tail = mcfs_iref(in);
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
	struct mcfs_inode *dir = mcfs_ns_parent(in);

	mcfs_ptab_remove(&ns->by_name, in);
	if (in->seq != in->ino)
		mcfs_ptab_remove(&ns->by_seq, in);
	if (in->prev)
		mcfs_iptr(in->prev)->next = in->next;
	else
		dir->u.dir.head = in->next;
	if (in->next)
		mcfs_iptr(in->next)->prev = in->prev;
	else
		dir->u.dir.tail = in->prev;
	in->prev = in->next = 0;
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
	struct name_change nc = {NULL, NULL};
	struct mcfs_inode *in;
	int ret = -ENOMEM;

	in = inode_alloc(ns, len);
	if (!in)
		return -ENOMEM;
	name_commit(in, name, len, &nc);
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
		const struct mcfs_inode *tail = mcfs_iptr(dir->u.dir.tail);

		in->seq = tail && tail->seq > ino ? ++ns->last_id : ino;
	} else {
		in->ino = ++ns->last_id;
		in->seq = in->ino;
	}
	in->parent = mcfs_iref(dir);
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	in->mtime_ns = in->ctime_ns = now_ns;
	(void)mcfs_ptab_insert(&ns->by_ino, in); /* reserved above: cannot fail */
	link_in(ns, in);
	ns->ninodes++;
	*out = in;
	return 0;

out_free_target:
	if (S_ISLNK(mode))
		free(in->u.lnk.target);
out_free_inode:
	inode_release(ns, in);
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
	struct mcfs_inode *dir = mcfs_ns_parent(in);

	if (ns->changed)
		ns->changed(ns->changed_arg, in, true);
	unlink_in(ns, in);
	touch_dir(dir, now_ns);
	mcfs_ptab_remove(&ns->by_ino, in);
	ns->ninodes--;
	inode_free(ns, in);
}

int mcfs_ns_move(struct mcfs_ns *ns, struct mcfs_inode *in, struct mcfs_inode *newdir,
		 const char *name, size_t len, int64_t now_ns,
		 void (*replace)(void *arg, struct mcfs_inode *old), void *arg)
{
	struct mcfs_inode *olddir = mcfs_ns_parent(in), *old;
	struct name_change nc;
	int ret;

	ret = name_prepare(in, name, len, &nc);
	if (ret)
		return ret;
	ret = mcfs_ptab_reserve(&ns->by_seq, 1);
	if (ret) {
		name_abort(&nc);
		return ret;
	}
	old = mcfs_ns_lookup(ns, newdir, name, len);
	if (old)
		replace(arg, old);
	unlink_in(ns, in);
	name_commit(in, name, len, &nc);
	in->parent = mcfs_iref(newdir);
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
	struct mcfs_inode *adir = mcfs_ns_parent(a), *bdir = mcfs_ns_parent(b);
	char aname[MCFS_NAME_MAX + 1], bname[MCFS_NAME_MAX + 1];
	size_t alen = a->namelen, blen = b->namelen;
	struct name_change ac, bc = {NULL, NULL};
	int ret;

	/* Copies: committing one name may overwrite the other's source. */
	memcpy(aname, mcfs_inode_name(a), alen);
	memcpy(bname, mcfs_inode_name(b), blen);
	ret = name_prepare(a, bname, blen, &ac);
	if (ret)
		return ret;
	ret = name_prepare(b, aname, alen, &bc);
	if (!ret)
		ret = mcfs_ptab_reserve(&ns->by_seq, 2);
	if (ret) {
		name_abort(&ac);
		name_abort(&bc);
		return ret;
	}
	unlink_in(ns, a);
	unlink_in(ns, b);
	name_commit(a, bname, blen, &ac);
	a->parent = mcfs_iref(bdir);
	a->seq = ++ns->last_id;
	name_commit(b, aname, alen, &bc);
	b->parent = mcfs_iref(adir);
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
	for (; in; in = mcfs_ns_parent(in)) {
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
		return mcfs_ns_head(dir);
	in = mcfs_ns_get(ns, cookie);
	if (!in || in->seq != cookie)
		in = mcfs_ptab_find(&ns->by_seq, mcfs_mix64(cookie), match_seq, &cookie);
	if (in && mcfs_ns_parent(in) == dir)
		return mcfs_ns_next(in);
	/* The entry left dir: the listing goes on at the first larger cookie. */
	for (in = mcfs_ns_head(dir); in && in->seq <= cookie; in = mcfs_ns_next(in))
		;
	return in;
}

struct mcfs_inode *mcfs_ns_walk_next(const struct mcfs_inode *top, struct mcfs_inode *in)
{
	if (!in)
		return mcfs_ns_head(top);
	if (S_ISDIR(in->mode) && in->u.dir.head)
		return mcfs_ns_head(in);
	while (in != top && !in->next)
		in = mcfs_ns_parent(in);
	return in == top ? NULL : mcfs_ns_next(in);
}

static struct mcfs_xattr *xattr_find(const struct mcfs_inode *in, const char *name, size_t nlen)
{
	const struct mcfs_xattrs *x = mcfs_inode_xattrs(in);

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
	const struct mcfs_xattrs *cur = mcfs_inode_xattrs(in);
	size_t bytes = cur ? cur->bytes : 0;
	struct mcfs_inode_ext *ext;
	struct mcfs_xattrs *x;
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
	ext = ext_get(in);
	if (!ext)
		goto out_free_value;
	x = &ext->xattrs;
	if (e) {
		free(e->value);
		e->value = v;
		e->vlen = (uint32_t)vlen;
		x->bytes = (uint32_t)bytes;
		return 0;
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
	struct mcfs_xattrs *x;

	if (!e)
		return -ENODATA;
	x = &mcfs_inode_ext(in)->xattrs;
	x->bytes -= e->nlen + e->vlen + MCFS_XATTR_ENTRY_OVERHEAD;
	free(e->name);
	free(e->value);
	*e = x->v[--x->n];
	if (!x->n) {
		free(x->v);
		x->v = NULL;
		x->cap = 0;
	}
	return 0;
}

int mcfs_ns_set_atime(struct mcfs_inode *in, int64_t atime_ns)
{
	struct mcfs_inode_ext *x;

	if (atime_ns == in->mtime_ns && !(in->flags & MCFS_I_ATIME))
		return 0;
	x = ext_get(in);
	if (!x)
		return -ENOMEM;
	x->atime_ns = atime_ns;
	in->flags |= MCFS_I_ATIME;
	return 0;
}
