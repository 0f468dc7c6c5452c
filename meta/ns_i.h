/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The master's namespace: inodes, their names in directories, the order a
 * directory lists them in, and the user.* attributes stored with them. It
 * knows nothing of nodes, segments or the wire; meta/master.c applies the
 * protocol's rules on top.
 *
 * Every inode but the root has exactly one name (no hard links), so an
 * inode is its own directory entry: three pointer tables (meta/ptab_i.h)
 * find it by inode number, by (parent, name), and by readdir cookie.
 *
 * Readdir cookies: inode numbers and cookies come from one 64-bit counter
 * that never goes back. A new inode gets cookie == ino; an inode that moves
 * (rename) gets a fresh cookie and is appended to its new directory. So
 * every directory lists its entries in increasing cookie order, resuming
 * after a cookie is one hash lookup (by inode number, or in the cookie table
 * that holds only moved inodes), and when the cookie's entry is gone the
 * first larger cookie is where the listing goes on.
 *
 * Not thread-safe; the master serialises all calls.
 */
#ifndef MCFS_NS_I_H
#define MCFS_NS_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/alloc.h"
#include "meta/ptab_i.h"

/*
 * One replica of an object: a range of one node's segment, in allocator
 * pages (MCFS_ALLOC_ALIGN bytes; the allocator counts in 32-bit pages too).
 * A node has one segment for its life (its id is never reused), so the
 * node's record names the segment.
 */
struct mcfs_rep {
	uint32_t node_id;
	uint32_t page;	/* offset / MCFS_ALLOC_ALIGN */
	uint32_t pages; /* length reserved; 0 for an empty object, which holds no range */
	uint8_t tier;	/* MCFS_TIER_* */
	uint8_t state;	/* MCFS_REP_* */
};

static inline uint64_t mcfs_rep_offset(const struct mcfs_rep *r)
{
	return (uint64_t)r->page * MCFS_ALLOC_ALIGN;
}

static inline uint64_t mcfs_rep_len(const struct mcfs_rep *r)
{
	return (uint64_t)r->pages * MCFS_ALLOC_ALIGN;
}

/* The allocator's extent of a replica's range (pages > 0). */
static inline struct mcfs_extent mcfs_rep_ext(const struct mcfs_rep *r)
{
	struct mcfs_extent e = {mcfs_rep_offset(r), mcfs_rep_len(r)};

	return e;
}

/*
 * A published version of a file. version 0: nothing published yet.
 *
 * Most objects have one replica, so it lives inline; with more, reps.many
 * is an array of nrep of them (owned). Use mcfs_obj_reps() to read them and
 * the mcfs_obj_* functions below to change the list, never the union.
 * The first replica is the one the writer staged (or the oldest survivor).
 */
struct mcfs_obj {
	uint64_t version;
	uint64_t size;
	union {
		struct mcfs_rep one;   /* nrep <= 1 */
		struct mcfs_rep *many; /* nrep > 1: owned, nrep entries */
	} reps;
	uint64_t lease_ms; /* read lease deadline, monotonic ms; 0 when never leased */
	uint32_t crc;
	uint8_t nrep; /* complete replicas, 0..MCFS_MAX_REPLICAS */
};

/* The replicas of o, nrep of them. Valid until the list next changes. */
static inline struct mcfs_rep *mcfs_obj_reps(struct mcfs_obj *o)
{
	return o->nrep > 1 ? o->reps.many : &o->reps.one;
}

static inline const struct mcfs_rep *mcfs_obj_creps(const struct mcfs_obj *o)
{
	return o->nrep > 1 ? o->reps.many : &o->reps.one;
}

/*
 * Replace o's replica list with a copy of v[0..n) (n <= MCFS_MAX_REPLICAS;
 * v may point into the current list). 0 or -ENOMEM (o unchanged). It frees
 * no segment space: that is the caller's.
 */
int mcfs_obj_set_reps(struct mcfs_obj *o, const struct mcfs_rep *v, uint8_t n);
/* Take replica i (< nrep) out of o's list; the others keep their order. Cannot fail. */
void mcfs_obj_del_rep(struct mcfs_obj *o, uint8_t i);
/* Free o's list and zero o (its segment space is the caller's). */
void mcfs_obj_fini(struct mcfs_obj *o);

/* inode flags */
#define MCFS_I_PENDING	0x1 /* created, not yet published */
#define MCFS_I_SOFT_PIN 0x2
#define MCFS_I_HARD_PIN 0x4
#define MCFS_I_EXT	0x8  /* iname holds a pointer to a struct mcfs_inode_ext */
#define MCFS_I_ATIME	0x10 /* the ext holds an atime other than mtime */

struct mcfs_xattr {
	char *name;	/* owned, NUL-terminated */
	uint8_t *value; /* owned, vlen bytes (NULL when 0) */
	uint32_t vlen;
	uint32_t nlen;
};

/* The user.* attributes of one inode. */
struct mcfs_xattrs {
	struct mcfs_xattr *v; /* owned, n used of cap */
	uint32_t n, cap;
	uint32_t bytes; /* sum of name and value lengths */
};

/*
 * What few inodes need: a name longer than the one the inode was created
 * with (a rename), user.* attributes, and an access time set apart from
 * the modification time. Allocated on first need and kept until the inode
 * goes.
 */
struct mcfs_inode_ext {
	char *name;		   /* owned, NUL-terminated: the inode's name */
	struct mcfs_xattrs xattrs; /* n == 0: none */
	int64_t atime_ns;	   /* with MCFS_I_ATIME */
};

/*
 * An inode and its name. The name is stored after the inode in the same
 * allocation (iname, room for namecap bytes and a NUL) until the inode
 * needs a struct mcfs_inode_ext: then iname holds the pointer to it
 * (namecap is at least 7, so there is room) and the name lives in the ext.
 * Read both through mcfs_inode_name() and mcfs_inode_xattrs(). The master
 * keeps one of these per file, so every byte counts (PERFORMANCE.md: at
 * most 150 bytes per object plus its key).
 *
 * Inodes link to each other by 32-bit references (mcfs_iref(), 0 for
 * none), not pointers: every inode of the process lies in one reserved
 * stretch of address space (meta/ns.c). Follow them with mcfs_iptr() or
 * the mcfs_ns_parent() family below.
 */
struct mcfs_inode {
	uint64_t ino;
	uint64_t seq;		    /* readdir cookie within the parent */
	int64_t mtime_ns, ctime_ns; /* the atime: mcfs_inode_atime() */
	uint32_t parent;	    /* 0 for the root */
	uint32_t prev, next;	    /* siblings, in cookie order */
	uint32_t mode, uid, gid;
	uint8_t namelen; /* 1..255 (0 for the root) */
	uint8_t namecap; /* bytes iname can hold, NUL not counted; at least 7 */
	uint8_t flags;	 /* MCFS_I_* */
	uint8_t replica_num;
	/*
	 * A file's last access (publish, GET, LEASE) on the master's LRU clock
	 * (mcfs_lru_clock()), for eviction; unused by other inodes. Here
	 * rather than in u.file it fills what would be padding.
	 */
	uint32_t lru;
	union {
		struct {
			uint32_t head, tail; /* children */
			uint32_t nsubdirs;
		} dir;
		struct {
			/*
			 * While the file is pending it has no object (nrep
			 * 0), and obj.reps.one.node_id names the node that
			 * created it: mcfs_file_creator().
			 */
			struct mcfs_obj obj;
			uint64_t pin_ms; /* soft pin deadline, monotonic ms; 0 when none */
		} file;
		struct {
			char *target; /* owned, NUL-terminated */
			uint32_t len;
		} lnk;
	} u;
	char iname[];
};

/* The node that created pending file in (MCFS_I_PENDING). */
static inline uint32_t mcfs_file_creator(const struct mcfs_inode *in)
{
	return in->u.file.obj.reps.one.node_id;
}

static inline void mcfs_file_set_creator(struct mcfs_inode *in, uint32_t node_id)
{
	in->u.file.obj.reps.one.node_id = node_id;
}

/* Where the process's inodes lie (set by the first mcfs_ns_init()). */
extern uint8_t *mcfs_inode_base;

static inline struct mcfs_inode *mcfs_iptr(uint32_t ref)
{
	return ref ? (struct mcfs_inode *)(mcfs_inode_base + ((size_t)ref << 3)) : NULL;
}

static inline uint32_t mcfs_iref(const struct mcfs_inode *in)
{
	return in ? (uint32_t)(((const uint8_t *)in - mcfs_inode_base) >> 3) : 0;
}

static inline struct mcfs_inode *mcfs_ns_parent(const struct mcfs_inode *in)
{
	return mcfs_iptr(in->parent);
}

static inline struct mcfs_inode *mcfs_ns_next(const struct mcfs_inode *in)
{
	return mcfs_iptr(in->next);
}

/* The first entry of directory dir, in cookie order, or NULL. */
static inline struct mcfs_inode *mcfs_ns_head(const struct mcfs_inode *dir)
{
	return mcfs_iptr(dir->u.dir.head);
}

/* The ext of in (MCFS_I_EXT), or NULL. */
static inline struct mcfs_inode_ext *mcfs_inode_ext(const struct mcfs_inode *in)
{
	struct mcfs_inode_ext *x = NULL;

	if (in->flags & MCFS_I_EXT)
		memcpy(&x, in->iname, sizeof(x));
	return x;
}

/* in's name: NUL-terminated, in->namelen bytes. */
static inline const char *mcfs_inode_name(const struct mcfs_inode *in)
{
	const struct mcfs_inode_ext *x = mcfs_inode_ext(in);

	return x ? x->name : in->iname;
}

/* in's access time: its mtime unless one was set apart (MCFS_I_ATIME). */
static inline int64_t mcfs_inode_atime(const struct mcfs_inode *in)
{
	const struct mcfs_inode_ext *x = mcfs_inode_ext(in);

	return x && (in->flags & MCFS_I_ATIME) ? x->atime_ns : in->mtime_ns;
}

/* in's user.* attributes, or NULL when it has none. */
static inline const struct mcfs_xattrs *mcfs_inode_xattrs(const struct mcfs_inode *in)
{
	const struct mcfs_inode_ext *x = mcfs_inode_ext(in);

	return x && x->xattrs.n ? &x->xattrs : NULL;
}

/*
 * Inode memory: per size class (8-byte steps of name room), slots carved
 * from 64 KiB chunks with no allocator header, a freed slot reused by the
 * next inode of its class. The chunks come from the process's inode region
 * (meta/ns.c) and go back to it with the namespace. Built with
 * AddressSanitizer, a freed slot is poisoned and never reused, so that a
 * use after free is still caught.
 */
#define MCFS_ISLAB_CLASSES 32

struct mcfs_islab {
	void *free[MCFS_ISLAB_CLASSES];	   /* free slots, linked through their first word */
	uint8_t *next[MCFS_ISLAB_CLASSES]; /* the newest chunk's first unused slot */
	uint8_t *end[MCFS_ISLAB_CLASSES];  /* and its end */
	void *chunks;			   /* every chunk, linked through its first word */
};

struct mcfs_ns {
	struct mcfs_islab slab;
	struct mcfs_ptab by_ino;
	struct mcfs_ptab by_name; /* (parent, name) */
	struct mcfs_ptab by_seq;  /* moved inodes only (seq != ino) */
	uint64_t last_id;	  /* last inode number or cookie handed out */
	uint64_t ninodes;
	struct mcfs_inode *root;
	/*
	 * Told of every inode created, moved or changed (gone false) and of
	 * every inode about to be freed (gone true); NULL for none. The
	 * master keeps directories durable and nodes' catalogs current by it.
	 */
	void (*changed)(void *arg, struct mcfs_inode *in, bool gone);
	void *changed_arg;
};

/* Tell ns->changed that the caller changed in (attributes, pins, xattrs, its object). */
static inline void mcfs_ns_changed(struct mcfs_ns *ns, struct mcfs_inode *in)
{
	if (ns->changed)
		ns->changed(ns->changed_arg, in, false);
}

/* The root gets MCFS_ROOT_INO, mode S_IFDIR | 0755, uid/gid 0, times now_ns. 0 or -ENOMEM. */
int mcfs_ns_init(struct mcfs_ns *ns, int64_t now_ns);
/* Frees every inode (names, targets, xattrs). */
void mcfs_ns_fini(struct mcfs_ns *ns);

/* The inode numbered ino, or NULL. */
struct mcfs_inode *mcfs_ns_get(const struct mcfs_ns *ns, uint64_t ino);
/* The entry name[0..len) of dir, or NULL. */
struct mcfs_inode *mcfs_ns_lookup(const struct mcfs_ns *ns, const struct mcfs_inode *dir,
				  const char *name, size_t len);

/*
 * Create an inode of the given mode (S_IFREG, S_IFDIR or S_IFLNK with
 * permissions) named name[0..len) in dir, which must not hold that name.
 * Times are now_ns; dir's mtime and ctime too. A symlink's target is
 * target[0..tlen), copied. flags, replica_num and the file fields are left
 * zero for the caller. 0 or -ENOMEM (nothing changed).
 */
int mcfs_ns_create(struct mcfs_ns *ns, struct mcfs_inode *dir, const char *name, size_t len,
		   uint32_t mode, uint32_t uid, uint32_t gid, const char *target, size_t tlen,
		   int64_t now_ns, struct mcfs_inode **out);

/*
 * Recovery: the same with the inode number given (not in use; above the
 * root), and the given times. Later inode numbers and cookies come after it.
 */
int mcfs_ns_create_at(struct mcfs_ns *ns, struct mcfs_inode *dir, const char *name, size_t len,
		      uint32_t mode, uint32_t uid, uint32_t gid, const char *target, size_t tlen,
		      uint64_t ino, int64_t mtime_ns, int64_t ctime_ns, struct mcfs_inode **out);

/*
 * Remove inode from its directory and the tables and free it (an empty
 * directory, a file, a symlink; never the root). dir's mtime and ctime
 * become now_ns. The caller has dealt with a file's object's space (the
 * replica list itself is freed here).
 */
void mcfs_ns_delete(struct mcfs_ns *ns, struct mcfs_inode *in, int64_t now_ns);

/*
 * Move inode to newdir under name[0..len) with a fresh cookie, at the end
 * of newdir's listing. When newdir already holds that name, replace(arg,
 * old) is called once nothing can fail any more, and must take old out
 * (mcfs_ns_delete); old is never in itself, nor one of the two directories.
 * Both directories get mtime = ctime = now_ns, the inode ctime = now_ns.
 * 0 or -ENOMEM (nothing changed).
 */
int mcfs_ns_move(struct mcfs_ns *ns, struct mcfs_inode *in, struct mcfs_inode *newdir,
		 const char *name, size_t len, int64_t now_ns,
		 void (*replace)(void *arg, struct mcfs_inode *old), void *arg);

/*
 * Swap the names (and directories) of a and b, both linked and distinct.
 * Each gets a fresh cookie. 0 or -ENOMEM (nothing changed).
 */
int mcfs_ns_exchange(struct mcfs_ns *ns, struct mcfs_inode *a, struct mcfs_inode *b,
		     int64_t now_ns);

/* Is in dir itself or below it? */
bool mcfs_ns_is_within(const struct mcfs_inode *in, const struct mcfs_inode *dir);

/*
 * Where a listing of dir goes on after cookie (0: from the start): the
 * first entry whose cookie is larger, or NULL at the end. O(1) unless the
 * cookie's entry has left dir since.
 */
struct mcfs_inode *mcfs_ns_resume(const struct mcfs_ns *ns, const struct mcfs_inode *dir,
				  uint64_t cookie);

/*
 * The next inode of a walk over everything below top (not top itself), in
 * depth-first order: start with in = NULL; NULL at the end.
 */
struct mcfs_inode *mcfs_ns_walk_next(const struct mcfs_inode *top, struct mcfs_inode *in);

static inline uint32_t mcfs_ns_nlink(const struct mcfs_inode *in)
{
	return S_ISDIR(in->mode) ? 2 + in->u.dir.nsubdirs : 1;
}

/*
 * Stored user.* attributes. Names are whole ("user.x"), checked by the
 * caller. set: -EEXIST/-ENODATA per flags (MCFS_XATTR_CREATE/REPLACE),
 * -ENOSPC when names and values together would pass max_bytes, -ENOMEM.
 */
const struct mcfs_xattr *mcfs_ns_xattr_get(const struct mcfs_inode *in, const char *name,
					   size_t nlen);
int mcfs_ns_xattr_set(struct mcfs_inode *in, const char *name, size_t nlen, const void *value,
		      size_t vlen, uint32_t flags, size_t max_bytes);
/* 0 or -ENODATA. */
int mcfs_ns_xattr_remove(struct mcfs_inode *in, const char *name, size_t nlen);

/*
 * Set in's access time. One equal to its mtime costs nothing; another is
 * kept in the inode's ext. 0 or -ENOMEM (in unchanged).
 */
int mcfs_ns_set_atime(struct mcfs_inode *in, int64_t atime_ns);

#endif
