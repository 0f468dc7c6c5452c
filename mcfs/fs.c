// SPDX-License-Identifier: Apache-2.0
/*
 * FUSE low-level operations of the node daemon: every namespace call maps
 * onto one master RPC; file contents live in segments.
 *
 * A write handle stages its bytes in a put: a range of this node's segment
 * that the master reserved (PUT_START) and that becomes the local replica
 * when the handle is flushed (PUT_END), so publishing copies nothing. A read
 * handle holds a version of the object (GET) and a lease on it, renewed by
 * the lease thread while the handle stays open; reads are answered straight
 * from the replica's memory.
 *
 * The kernel keeps one page cache per inode, but two versions of a file may
 * be open at once on one node (an old reader while a new version is
 * published). Only handles of one version share the page cache at a time;
 * a handle on any other version bypasses it (direct_io), so no reader ever
 * sees another version's pages.
 *
 * All of this runs on the FUSE session thread, except the lease list which
 * the lease thread also reads (n->lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uthash.h>
#include <utlist.h>

#include "common/log.h"
#include "common/util.h"
#include "mcfs/catalog.h"
#include "mcfs/kio.h"
#include "mcfs/node.h"

#define MIN_STAGE      (256u << 10) /* first reservation of a put */
#define BLKSIZE	       (1u << 20)   /* st_blksize: what cp and friends size their I/O by */
#define MAX_INODES     65536	    /* per-inode records kept for closed files */
#define SYNC_PERIOD_MS 50	    /* how often the catalog asks for changes */
#define TICK_MS	       100	    /* the embedded master's timed work, at most this often */
/*
 * Holds to give back wait this long for others: one RELEASE and one wake-up
 * of the lease thread for every few closes, not one each.
 */
#define RELEASE_BATCH_MS 2

/* Per-inode state on this node. FUSE thread only. */
struct mcfs_ino {
	uint64_t ino;
	uint64_t cache_version; /* version whose pages the kernel may hold (0: none known) */
	uint32_t cache_users;	/* open handles reading through the page cache */
	uint32_t nopen;
	struct mcfs_fh *writer; /* the last write handle opened, while open */
	uint32_t attr_told;	/* attributes handed to the kernel (replies), counted */
	struct mcfs_attr attr;	/* as of the last open, for fstat after unlink */
	/*
	 * The name the kernel knows it by: where the last lookup or create
	 * found it, moved by our own renames (NULL: unknown). An open checks
	 * with the master that the name still leads here, and reopens what
	 * the name holds now when it does not.
	 */
	uint64_t parent;
	char *name;
	bool named; /* the kernel knows it by that name now: in n->ino_names */
	struct {
		uint64_t parent, hash;
	} nkey; /* its n->ino_names key */
	UT_hash_handle hh;
	UT_hash_handle hn; /* in n->ino_names */
};

struct mcfs_fh {
	struct mcfs_node *n;
	struct mcfs_fh *oprev, *onext; /* in n->open_fhs */
	struct mcfs_ino *in;
	uint64_t ino;
	bool write;
	bool cached; /* counted in in->cache_users */

	/* The published version this handle reads, and the base a write copies. */
	uint64_t version;
	uint64_t held_ino, held_version; /* the read hold it took (vhold_ref), 0 when none */
	uint64_t put_gen;		 /* n->put_gen when its put started */
	uint64_t size;
	const uint8_t *data; /* its local replica, NULL when size is 0 */
	uint64_t seg_epoch;  /* n->seg_epoch when data came from the segment, else 0 */
	bool base_dropped;   /* truncated: a new put starts empty */

	/* The put in flight, if any. */
	bool staged; /* a put (or, for an orphan, private memory) holds new bytes */
	bool orphan; /* the file went away: staged bytes are in the heap */
	uint64_t put_id;
	uint64_t cap;
	uint64_t len;
	uint8_t *stage;
	bool dirty;
	/*
	 * The last change was a write() (not a truncate, fallocate, mmap or
	 * set time), and the kernel was told no attributes of the file since
	 * (in->attr_told is still told_at_write): it dropped its cached size
	 * and times after that write by itself, so a publish need not tell it to.
	 */
	bool write_last;
	uint32_t told_at_write;
	int error; /* sticky: a write failed, nothing will be published */

	/* Times set while dirty, applied again after publishing. */
	uint32_t keep_times;
	int64_t atime_ns, mtime_ns;

	struct mcfs_fh *prev, *next; /* n->leased, protected by n->lock */
	bool leased;
	uint64_t renew_put; /* the put the lease thread keeps alive, protected by n->lock */

	/* The base version's replicas when none is local: fetched whole on first use. */
	struct mcfs_remote *remote;
	bool append;	   /* O_APPEND: every write goes at the end of what it holds */
	uint32_t repnum;   /* the file's replica_num, as PUT_START reported it */
	uint32_t unfilled; /* bit i: PUT_PLACE's copy i could not be written */

	/* Where create() made the file: a new file that fails is removed again. */
	uint64_t parent;
	char *name;
};

/* Replicas of a version held elsewhere, with the grants to read them. */
struct mcfs_remote {
	uint32_t nrep;
	uint32_t cur; /* the replica that answered last: tried first */
	struct {
		struct mcfs_grant g;
		char addr[MCFS_NAME_MAX + 1];
	} rep[MCFS_MAX_REPLICAS];
	uint8_t *buf; /* the object's bytes as they arrive (heap), NULL before */
	uint64_t size;

	/*
	 * Large objects are fetched by two threads of their own (two
	 * connections move more than one on loopback), chunk by chunk from the
	 * start, so that reads of the first bytes need not wait for the last.
	 */
	pthread_mutex_t mu; /* protects rep, cur and everything below */
	pthread_cond_t cv;
	pthread_t thr[2];
	uint32_t nthr;
	bool cancel;
	uint64_t next;	  /* the next chunk a fetch thread takes */
	uint8_t *done;	  /* per chunk: arrived */
	uint64_t prefix;  /* chunks [0, prefix) all arrived */
	uint64_t fetched; /* bytes [0, fetched) of buf are in */
	int error;

	/*
	 * Sequential reads stream instead (FUSE thread only): each read's range
	 * is asked of the replica ahead of time, and its bytes are received
	 * into one reused buffer and replied while the next ones travel. Any
	 * trouble falls back to the whole-object fetch above, which tries every
	 * replica.
	 */
	struct mcfs_xport_stream *st;
	uint64_t st_pos;     /* object offset of the next data byte on st */
	uint64_t st_end;     /* asked up to here */
	uint32_t st_unit;    /* bytes per ask: the last read's size */
	uint32_t st_rep;     /* the replica st reads */
	bool nostream;	     /* streaming failed once, or reads jump about: fetch */
	uint8_t st_restarts; /* streams started over for a read out of sequence */
	bool st_refreshed;   /* the grants were renewed once for a refused ask */
	/*
	 * The ask made at open is split in two when it is large: its second
	 * half, bytes [st2_lo, st2_hi), comes over a second connection (st2),
	 * to the next replica where there are several, else to the same one,
	 * where its own thread serves it: both halves travel at once. Every
	 * other byte comes over st, in order.
	 */
	struct mcfs_xport_stream *st2;
	uint64_t st2_lo, st2_hi;
	uint32_t st2_rep;   /* the replica st2 reads */
	uint32_t st_failed; /* the replica whose stream failed last */
};

struct mcfs_dirh {
	struct mcfs_dirh *prev, *next; /* in n->open_dirs */
	struct mcfs_buf page;	       /* the last READDIR answer */
	struct mcfs_rd rd;	       /* position in page */
	uint64_t next_off;	       /* FUSE offset the next entry in rd would have */
	bool eof;
};

static struct mcfs_node *node_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Scratch for a call: request, response and the response's buffer. */
struct call {
	struct mcfs_msg req;
	struct mcfs_msg resp;
	struct mcfs_buf rbuf;
};

static void call_init(struct call *c, uint16_t type)
{
	memset(&c->req, 0, sizeof(c->req));
	c->req.type = type;
	mcfs_buf_init(&c->rbuf);
}

static int call_run(struct mcfs_node *n, struct call *c)
{
	return mcfs_mc_call(n->mc, &c->req, &c->resp, &c->rbuf);
}

static void call_fini(struct call *c)
{
	mcfs_buf_fini(&c->rbuf);
}

static struct mcfs_blob blob_str(const char *s)
{
	struct mcfs_blob b = {(const uint8_t *)s, (uint32_t)strlen(s)};

	return b;
}

static struct mcfs_ino *ino_find(struct mcfs_node *n, uint64_t ino)
{
	struct mcfs_ino *in;

	HASH_FIND(hh, n->inodes, &ino, sizeof(ino), in);
	return in;
}

static uint64_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
	return h;
}

/*
 * The name no longer leads to in (unlinked, renamed over): in keeps it as
 * the name it was last known by, which an open of in tries again.
 */
static void name_detach(struct mcfs_node *n, struct mcfs_ino *in)
{
	if (!in->named)
		return;
	HASH_DELETE(hn, n->ino_names, in);
	in->named = false;
}

static void name_clear(struct mcfs_node *n, struct mcfs_ino *in)
{
	name_detach(n, in);
	free(in->name);
	in->name = NULL;
}

static struct mcfs_ino *name_find(struct mcfs_node *n, uint64_t parent, const char *name);

/* in is known as name in parent now (nothing on out of memory: no name). */
static void name_set(struct mcfs_node *n, struct mcfs_ino *in, uint64_t parent, const char *name)
{
	struct mcfs_ino *other = name_find(n, parent, name);

	if (other && other != in)
		name_detach(n, other); /* a name leads to one inode */
	name_clear(n, in);
	in->name = strdup(name);
	if (!in->name)
		return;
	in->parent = parent;
	memset(&in->nkey, 0, sizeof(in->nkey));
	in->nkey.parent = parent;
	in->nkey.hash = name_hash(name);
	HASH_ADD(hn, n->ino_names, nkey, sizeof(in->nkey), in);
	in->named = true;
}

/* The inode known here as name in parent, or NULL. */
static struct mcfs_ino *name_find(struct mcfs_node *n, uint64_t parent, const char *name)
{
	struct mcfs_ino *in, key;

	memset(&key.nkey, 0, sizeof(key.nkey));
	key.nkey.parent = parent;
	key.nkey.hash = name_hash(name);
	HASH_FIND(hn, n->ino_names, &key.nkey, sizeof(key.nkey), in);
	return in && in->parent == parent && !strcmp(in->name, name) ? in : NULL;
}

static void ino_free(struct mcfs_node *n, struct mcfs_ino *in)
{
	name_clear(n, in);
	HASH_DEL(n->inodes, in);
	free(in);
}

/* Trim records of closed inodes when the table grows large; dropping one only costs a cache refill. */
static void ino_trim(struct mcfs_node *n)
{
	struct mcfs_ino *in, *tmp;

	if (HASH_COUNT(n->inodes) < MAX_INODES)
		return;
	HASH_ITER(hh, n->inodes, in, tmp)
	{
		if (!in->nopen)
			ino_free(n, in);
	}
}

static struct mcfs_ino *ino_get(struct mcfs_node *n, uint64_t ino)
{
	struct mcfs_ino *in = ino_find(n, ino);

	if (in)
		return in;
	ino_trim(n);
	in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->ino = ino;
	HASH_ADD(hh, n->inodes, ino, sizeof(in->ino), in);
	return in;
}

/*
 * Remember where a file was found, for fh_load()'s retry by name, and what
 * it looked like, for a getattr that races with its removal.
 */
static void inval_entry_later(struct mcfs_node *n, uint64_t parent, const char *name);

static void ino_remember(struct mcfs_node *n, const struct mcfs_attr *a, uint64_t parent,
			 const char *name)
{
	struct mcfs_ino *in = ino_get(n, a->ino);

	if (!in)
		return;
	if (!in->nopen || in->attr.ino != a->ino)
		in->attr = *a;
	if (in->named && in->parent == parent && !strcmp(in->name, name))
		return;
	/* Renamed on another node: the kernel's entry by the old name is stale. */
	if (in->named)
		inval_entry_later(n, in->parent, in->name);
	name_set(n, in, parent, name);
}

/* The size this node shows for a file (in: its record, if any): a local writer's staged length counts. */
static uint64_t local_size(const struct mcfs_ino *in, const struct mcfs_attr *a)
{
	uint64_t size = a->size;

	if (in && in->writer) {
		struct mcfs_fh *w = in->writer;
		uint64_t wlen = w->staged ? w->len : (w->base_dropped ? 0 : w->size);

		if ((a->flags & MCFS_ATTR_PENDING) || wlen > size)
			size = wlen;
	}
	return size;
}

/* What the kernel is told of a file: every reply with attributes comes here. */
static void attr_to_stat(struct mcfs_node *n, const struct mcfs_attr *a, struct stat *st)
{
	struct mcfs_ino *in = S_ISREG(a->mode) ? ino_find(n, a->ino) : NULL;

	if (in)
		in->attr_told++;
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)(S_ISREG(a->mode) ? local_size(in, a) : a->size);
	st->st_blksize = BLKSIZE;
	st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
	st->st_atim.tv_sec = a->atime_ns / 1000000000;
	st->st_atim.tv_nsec = a->atime_ns % 1000000000;
	st->st_mtim.tv_sec = a->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
	st->st_ctim.tv_sec = a->ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = a->ctime_ns % 1000000000;
}

static void fill_entry(struct mcfs_node *n, const struct mcfs_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 1;
	attr_to_stat(n, a, &e->attr);
	e->attr_timeout = n->conf->attr_timeout;
	e->entry_timeout = n->conf->attr_timeout;
}

static int check_name(const char *name)
{
	return strlen(name) > MCFS_NAME_MAX ? -ENAMETOOLONG : 0;
}

static void reply_entry_from(fuse_req_t req, struct call *c, int ret)
{
	struct fuse_entry_param e;

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fill_entry(node_of(req), &c->resp.attr, &e);
	fuse_reply_entry(req, &e);
}

static void mcfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mcfs_node *n = userdata;

	(void)n;
	/* Versions, not timestamps, decide what the page cache may keep. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/*
	 * O_TRUNC comes with the open, so the handle starts an empty version;
	 * otherwise it would come as a separate truncate of the path.
	 */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	conn->max_write = 1u << 20;
	conn->max_read = 0;
	conn->max_readahead = 1u << 20;
}

static void mcfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct call c;
	int ret = check_name(name);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	call_init(&c, MCFS_MSG_LOOKUP);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	ret = call_run(node_of(req), &c);
	if (ret == -ENOENT) {
		/* Negative entries are not cached: another node may create the key. */
		struct fuse_entry_param e = {0};

		fuse_reply_entry(req, &e);
	} else {
		if (!ret && S_ISREG(c.resp.attr.mode))
			ino_remember(node_of(req), &c.resp.attr, parent, name);
		reply_entry_from(req, &c, ret);
	}
	call_fini(&c);
}

/*
 * A cached name that the daemon found gone. The kernel entry is dropped by
 * the lease thread: from the FUSE thread notify_inval_entry could deadlock
 * against an operation that holds the directory lock while it waits for us.
 */
struct mcfs_inval {
	uint64_t parent;
	struct mcfs_inval *next;
	char name[];
};

static void inval_entry_later(struct mcfs_node *n, uint64_t parent, const char *name)
{
	size_t len = strlen(name) + 1;
	struct mcfs_inval *iv = malloc(sizeof(*iv) + len);

	if (!iv)
		return; /* the entry just times out */
	iv->parent = parent;
	memcpy(iv->name, name, len);
	pthread_mutex_lock(&n->lock);
	LL_PREPEND(n->invals, iv);
	pthread_cond_signal(&n->stop_cond);
	pthread_mutex_unlock(&n->lock);
}

/* Lease thread, n->lock held; drops it while talking to the kernel. */
static void inval_run(struct mcfs_node *n)
{
	while (n->invals) {
		struct mcfs_inval *list = n->invals, *iv, *tmp;

		n->invals = NULL;
		pthread_mutex_unlock(&n->lock);
		LL_FOREACH_SAFE(list, iv, tmp)
		{
			if (n->se)
				fuse_lowlevel_notify_inval_entry(n->se, iv->parent, iv->name,
								 strlen(iv->name));
			free(iv);
		}
		pthread_mutex_lock(&n->lock);
	}
}

static void mcfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mcfs_node *n = node_of(req);
	struct stat st;
	struct call c;
	int ret;

	(void)fi;
	call_init(&c, MCFS_MSG_GETATTR);
	c.req.ino = ino;
	ret = call_run(n, &c);
	if (ret == -ENOENT) {
		struct mcfs_ino *in = ino_find(n, ino);

		if (in && in->attr.ino == ino) {
			if (in->name)
				inval_entry_later(n, in->parent, in->name);
			/*
			 * Unlinked or replaced since the kernel looked it up (here
			 * or on another node): the inode the kernel holds lives on
			 * unlinked, as on a local filesystem, so a stat() racing
			 * with a rename sees the old file rather than ESTALE. Not
			 * cached: the next stat() after the kernel's entry expires
			 * finds what the name holds now.
			 */
			c.resp.attr = in->attr;
			c.resp.attr.nlink = 0;
			attr_to_stat(n, &c.resp.attr, &st);
			fuse_reply_attr(req, &st, 0);
			call_fini(&c);
			return;
		}
		ret = -ESTALE;
	}
	if (ret) {
		fuse_reply_err(req, -ret);
	} else {
		attr_to_stat(n, &c.resp.attr, &st);
		fuse_reply_attr(req, &st, n->conf->attr_timeout);
	}
	call_fini(&c);
}

/* ---- handles: versions, leases, puts ---- */

/*
 * The versions this node's handles read, and the read holds the master
 * gave for them (GET, PUT_END: meta/master_hold.c). When the last handle on
 * a version closes, the holds acquired for it are given back (RELEASE, sent
 * by the lease thread), so the master frees a replaced or unlinked version
 * at once instead of when its lease runs out. n->lock.
 */
struct mcfs_vhold {
	struct {
		uint64_t ino;
		uint64_t version;
	} key;
	uint32_t refs;	     /* handles reading it */
	uint32_t acq;	     /* holds acquired since it was last released */
	uint32_t to_release; /* queued for the next RELEASE */
	bool queued;
	struct mcfs_vhold *qnext;
	UT_hash_handle hh;
};

static struct mcfs_vhold *vhold_find(struct mcfs_node *n, uint64_t ino, uint64_t version)
{
	struct mcfs_vhold *v, key;

	memset(&key.key, 0, sizeof(key.key));
	key.key.ino = ino;
	key.key.version = version;
	HASH_FIND(hh, n->vholds, &key.key, sizeof(key.key), v);
	return v;
}

/* fh reads (ino, version) now; acquired: the master just gave a hold for it. */
static void vhold_ref(struct mcfs_fh *fh, uint64_t ino, uint64_t version, bool acquired)
{
	struct mcfs_node *n = fh->n;
	struct mcfs_vhold *v;

	if (!version)
		return;
	pthread_mutex_lock(&n->lock);
	v = vhold_find(n, ino, version);
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (v) {
			v->key.ino = ino;
			v->key.version = version;
			HASH_ADD(hh, n->vholds, key, sizeof(v->key), v);
			if (!v->hh.tbl) {
				free(v);
				v = NULL;
			}
		}
	}
	if (v) {
		v->refs++;
		v->acq += acquired;
		fh->held_ino = ino;
		fh->held_version = version;
	}
	/* Out of memory: the hold just lasts until its lease ends. */
	pthread_mutex_unlock(&n->lock);
}

/* fh no longer reads the version it held. */
static void vhold_unref(struct mcfs_fh *fh)
{
	struct mcfs_node *n = fh->n;
	struct mcfs_vhold *v;

	if (!fh->held_version)
		return;
	pthread_mutex_lock(&n->lock);
	v = vhold_find(n, fh->held_ino, fh->held_version);
	if (v && v->refs && !--v->refs) {
		v->to_release += v->acq;
		v->acq = 0;
		if (v->to_release && !v->queued) {
			/*
			 * Soon (RELEASE_BATCH_MS): the space of a version replaced
			 * meanwhile comes back then, not when its lease ends.
			 */
			if (!n->release_q) {
				n->release_since_ms = mcfs_now_ms();
				pthread_cond_signal(&n->stop_cond);
			}
			v->queued = true;
			v->qnext = n->release_q;
			n->release_q = v;
		} else if (!v->queued) {
			HASH_DEL(n->vholds, v);
			free(v);
		}
	}
	pthread_mutex_unlock(&n->lock);
	fh->held_ino = fh->held_version = 0;
}

/* Lease thread: give back the holds of versions no handle reads any more. */
static void release_run(struct mcfs_node *n)
{
	struct mcfs_buf list;
	struct mcfs_vhold *v;
	struct call c;

	mcfs_buf_init(&list);
	pthread_mutex_lock(&n->lock);
	while ((v = n->release_q)) {
		n->release_q = v->qnext;
		v->queued = false;
		mcfs_buf_put_u64(&list, v->key.ino);
		mcfs_buf_put_u64(&list, v->key.version);
		mcfs_buf_put_u32(&list, v->to_release);
		v->to_release = 0;
		if (!v->refs && !v->acq) {
			HASH_DEL(n->vholds, v);
			free(v);
		}
	}
	pthread_mutex_unlock(&n->lock);
	for (size_t off = 0; off < list.len && !list.oom;) {
		size_t len = list.len - off;

		if (len > (1u << 20) / MCFS_RELEASE_ENTRY * MCFS_RELEASE_ENTRY)
			len = (1u << 20) / MCFS_RELEASE_ENTRY * MCFS_RELEASE_ENTRY;
		call_init(&c, MCFS_MSG_RELEASE);
		c.req.value.p = list.data + off;
		c.req.value.len = (uint32_t)len;
		/* On failure the holds end with their leases, as without RELEASE. */
		(void)call_run(n, &c);
		call_fini(&c);
		off += len;
	}
	mcfs_buf_fini(&list);
}

static void lease_add(struct mcfs_fh *fh)
{
	struct mcfs_node *n = fh->n;

	if (fh->leased || (!fh->version && !fh->renew_put))
		return;
	pthread_mutex_lock(&n->lock);
	DL_APPEND(n->leased, fh);
	fh->leased = true;
	pthread_mutex_unlock(&n->lock);
}

/*
 * Tell the lease thread which put of fh to keep alive: the master revokes a
 * put left untouched for its put timeout (a writer that died), and a file
 * may stay open for writing longer than that.
 */
static void fh_track_put(struct mcfs_fh *fh)
{
	uint64_t id = fh->staged && !fh->orphan ? fh->put_id : 0;

	pthread_mutex_lock(&fh->n->lock);
	fh->renew_put = id;
	pthread_mutex_unlock(&fh->n->lock);
	lease_add(fh);
}

static void lease_del(struct mcfs_fh *fh)
{
	struct mcfs_node *n = fh->n;

	if (!fh->leased)
		return;
	pthread_mutex_lock(&n->lock);
	DL_DELETE(n->leased, fh);
	fh->leased = false;
	pthread_mutex_unlock(&n->lock);
}

/* Point fh at the local replica described by a GET or PUT_END answer. */
static void grant_from(struct mcfs_grant *g, const struct mcfs_replica *r)
{
	g->node_id = r->node_id;
	g->seg_id = r->seg_id;
	g->access = r->access;
	g->offset = r->offset;
	g->len = r->len;
	g->expiry_ms = r->expiry_ms;
	g->mac = r->mac;
}

static void blob_cpy(char *dst, size_t dstsz, const struct mcfs_blob *b)
{
	size_t len = b->len < dstsz - 1 ? b->len : dstsz - 1;

	memcpy(dst, b->p, len);
	dst[len] = 0;
}

/* Keep the complete replicas of a GET/LEASE answer that a peer can serve. */
static void remote_set(struct mcfs_remote *rm, const struct mcfs_msg *m)
{
	rm->nrep = 0;
	rm->cur = 0;
	for (uint32_t i = 0; i < m->nrep; i++) {
		const struct mcfs_replica *r = &m->rep[i];

		if (r->state != MCFS_REP_COMPLETE || !r->addr.len || r->len < m->attr.size)
			continue;
		grant_from(&rm->rep[rm->nrep].g, r);
		blob_cpy(rm->rep[rm->nrep].addr, sizeof(rm->rep[0].addr), &r->addr);
		rm->nrep++;
	}
}

#define BUF_MMAP (4u << 20) /* fetch buffers this large are mapped, with huge pages */

/*
 * Memory for a fetched object. Large buffers are mapped with huge pages and
 * faulted in at once: page by page, first-touch faults cost more than the
 * network transfer on these machines.
 */
static uint8_t *buf_alloc(uint64_t size)
{
	void *p;

	if (size < BUF_MMAP)
		return malloc(size ? size : 1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, size, MADV_HUGEPAGE);
	madvise(p, size, MADV_POPULATE_WRITE);
	return p;
}

static void buf_free(uint8_t *p, uint64_t size)
{
	if (!p)
		return;
	if (size < BUF_MMAP)
		free(p);
	else
		munmap(p, size);
}

static struct mcfs_remote *remote_new(void)
{
	struct mcfs_remote *rm = calloc(1, sizeof(*rm));

	if (!rm)
		return NULL;
	pthread_mutex_init(&rm->mu, NULL);
	pthread_cond_init(&rm->cv, NULL);
	return rm;
}

/*
 * Second streams open on this node (remote->st2). The transport lends a
 * node 16 streams at once; at most half go to second streams, so that with
 * many readers at once each still gets a first stream, and only the first
 * few split.
 */
#define STREAM_SPLITS_MAX 8
static uint32_t stream_splits;

static void stream2_close(struct mcfs_remote *rm, bool reuse)
{
	if (!rm->st2)
		return;
	mcfs_xport_stream_close(rm->st2, reuse);
	rm->st2 = NULL;
	__atomic_fetch_sub(&stream_splits, 1, __ATOMIC_RELAXED);
}

static void remote_free(struct mcfs_remote *rm)
{
	if (!rm)
		return;
	mcfs_xport_stream_close(rm->st, true);
	stream2_close(rm, true);
	pthread_mutex_lock(&rm->mu);
	rm->cancel = true;
	pthread_mutex_unlock(&rm->mu);
	for (uint32_t t = 0; t < rm->nthr; t++)
		pthread_join(rm->thr[t], NULL);
	free(rm->done);
	pthread_mutex_destroy(&rm->mu);
	pthread_cond_destroy(&rm->cv);
	buf_free(rm->buf, rm->size);
	free(rm);
}

static int fh_set_version(struct mcfs_fh *fh, const struct mcfs_msg *m)
{
	struct mcfs_node *n = fh->n;
	uint64_t size = m->attr.size;
	const uint8_t *data = NULL;
	struct mcfs_remote *remote = NULL;

	if (size) {
		for (uint32_t i = 0; i < m->nrep && !data; i++) {
			const struct mcfs_replica *r = &m->rep[i];

			if (r->node_id == n->node_id && r->state == MCFS_REP_COMPLETE &&
			    r->len >= size && n->seg)
				data = mcfs_seg_ptr(n->seg, r->offset, size);
		}
		if (!data) {
			remote = remote_new();
			if (!remote)
				return -ENOMEM;
			remote_set(remote, m);
			if (!remote->nrep) {
				free(remote);
				mcfs_err("inode %" PRIu64 " version %" PRIu64 " has no replica",
					 fh->ino, m->attr.version);
				return -EIO;
			}
		}
	}
	if (m->lease_ms && !n->lease_ms)
		n->lease_ms = m->lease_ms;
	fh->in->attr = m->attr;
	lease_del(fh);
	remote_free(fh->remote);
	fh->remote = remote;
	fh->version = m->attr.version;
	fh->size = size;
	fh->data = data;
	fh->seg_epoch = data ? __atomic_load_n(&n->seg_epoch, __ATOMIC_ACQUIRE) : 0;
	lease_add(fh);
	return 0;
}

/* Load the current version of fh->ino as the handle's base (GET, with a lease). */
static int fh_load(struct mcfs_fh *fh)
{
	struct mcfs_ino *in = fh->in;
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_GET);
	c.req.ino = fh->ino;
	if (in->named) {
		/* Only if the name still leads here (ENOENT otherwise). */
		c.req.ino2 = in->parent;
		c.req.name = blob_str(in->name);
	}
	ret = call_run(fh->n, &c);
	/*
	 * Replaced (rename over it), or renamed away, between the kernel's
	 * lookup and this open: open what the name holds now, as a lookup a
	 * moment later would have. The handle reads the new inode; the
	 * kernel's inode keeps its number.
	 */
	for (int tries = 0; ret == -ENOENT && in->name && tries < 8; tries++) {
		call_fini(&c);
		call_init(&c, MCFS_MSG_LOOKUP);
		c.req.ino = in->parent;
		c.req.name = blob_str(in->name);
		ret = call_run(fh->n, &c);
		if (ret == -ENOENT || (!ret && !S_ISREG(c.resp.attr.mode))) {
			/* The name is gone: so is the kernel's entry, soon. */
			inval_entry_later(fh->n, in->parent, in->name);
			call_fini(&c);
			return -ENOENT;
		}
		if (ret)
			break;
		fh->ino = c.resp.attr.ino;
		call_fini(&c);
		call_init(&c, MCFS_MSG_GET);
		c.req.ino = fh->ino;
		c.req.ino2 = in->parent;
		c.req.name = blob_str(in->name);
		ret = call_run(fh->n, &c);
	}
	if (!ret) {
		vhold_unref(fh);
		vhold_ref(fh, fh->ino, c.resp.attr.version, true);
		ret = fh_set_version(fh, &c.resp);
		if (ret)
			vhold_unref(fh);
		in->attr.ino = in->ino;
	} else if (ret == -ENOENT) {
		ret = -ESTALE; /* the kernel looks the path up again and retries */
	}
	call_fini(&c);
	return ret;
}

/* Fresh read grants for the handle's version (they last as long as the lease). */
static int remote_refresh(struct mcfs_fh *fh)
{
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_LEASE);
	c.req.ino = fh->ino;
	c.req.version = fh->version;
	ret = call_run(fh->n, &c);
	if (!ret) {
		c.resp.attr.size = fh->size; /* LEASE carries no attr */
		pthread_mutex_lock(&fh->remote->mu);
		remote_set(fh->remote, &c.resp);
		pthread_mutex_unlock(&fh->remote->mu);
	}
	call_fini(&c);
	return ret;
}

#define FETCH_CHUNK (4u << 20) /* what the fetch thread asks for at a time */
#define FETCH_SYNC  (2u << 20) /* objects up to this size are fetched in one go, no thread */

/*
 * Fetch bytes [off, off + len) of the base version from a peer: from the
 * replica that answered last, else the next one; EIO only when none
 * answers. A grant refused or expired is renewed once (LEASE).
 */
static int fetch_range(struct mcfs_fh *fh, uint64_t off, uint64_t len)
{
	struct mcfs_remote *rm = fh->remote;
	char addr[sizeof(rm->rep[0].addr)];
	bool refreshed = false;
	struct mcfs_grant g;
	int ret = -EIO;

	for (uint32_t i = 0;; i++) {
		uint32_t k;

		pthread_mutex_lock(&rm->mu);
		if (i >= rm->nrep) {
			pthread_mutex_unlock(&rm->mu);
			break;
		}
		k = (rm->cur + i) % rm->nrep;
		g = rm->rep[k].g;
		memcpy(addr, rm->rep[k].addr, sizeof(addr));
		pthread_mutex_unlock(&rm->mu);

		ret = mcfs_xport_read(fh->n->xc, addr, &g, g.offset + off, rm->buf + off, len);
		if (!ret) {
			pthread_mutex_lock(&rm->mu);
			rm->cur = k;
			pthread_mutex_unlock(&rm->mu);
			return 0;
		}
		if (!refreshed && (ret == -EACCES || (ret == -ETIMEDOUT &&
						      g.expiry_ms <= mcfs_grant_now_ms() + 1000))) {
			refreshed = true;
			if (!remote_refresh(fh)) {
				i = UINT32_MAX; /* start over with fresh grants */
				continue;
			}
		}
		mcfs_warn("inode %" PRIu64 ": replica at %s failed (%s), trying the next", fh->ino,
			  addr, strerror(-ret));
	}
	mcfs_err("inode %" PRIu64 " version %" PRIu64 ": no replica answered", fh->ino,
		 fh->version);
	return -EIO;
}

static void *fetch_main(void *arg)
{
	struct mcfs_fh *fh = arg;
	struct mcfs_remote *rm = fh->remote;

	for (;;) {
		uint64_t off, len;
		int ret;

		pthread_mutex_lock(&rm->mu);
		if (rm->cancel || rm->error || rm->next >= rm->size) {
			pthread_mutex_unlock(&rm->mu);
			break;
		}
		off = rm->next;
		rm->next += FETCH_CHUNK;
		pthread_mutex_unlock(&rm->mu);
		len = rm->size - off < FETCH_CHUNK ? rm->size - off : FETCH_CHUNK;

		ret = fetch_range(fh, off, len);

		pthread_mutex_lock(&rm->mu);
		if (ret) {
			rm->error = ret;
		} else {
			rm->done[off / FETCH_CHUNK] = 1;
			while (rm->prefix * FETCH_CHUNK < rm->size && rm->done[rm->prefix])
				rm->prefix++;
			rm->fetched = rm->prefix * FETCH_CHUNK < rm->size ? rm->prefix * FETCH_CHUNK
									  : rm->size;
		}
		pthread_cond_broadcast(&rm->cv);
		pthread_mutex_unlock(&rm->mu);
	}
	return NULL;
}

/*
 * Wait until the base version's bytes [0, end) are in memory, starting the
 * fetch on first use. 0 or -EIO / -ENOMEM.
 */
static int remote_wait(struct mcfs_fh *fh, uint64_t end)
{
	struct mcfs_remote *rm = fh->remote;
	int ret = 0;

	if (!rm->buf) {
		rm->size = fh->size;
		rm->buf = buf_alloc(rm->size);
		if (!rm->buf)
			return -ENOMEM;
		if (rm->size <= FETCH_SYNC) {
			ret = fetch_range(fh, 0, rm->size);
			rm->fetched = ret ? 0 : rm->size;
			rm->error = ret;
			return ret;
		}
		rm->done = calloc((rm->size + FETCH_CHUNK - 1) / FETCH_CHUNK, 1);
		if (!rm->done)
			return -ENOMEM;
		for (uint32_t t = 0; t < 2; t++) {
			ret = -pthread_create(&rm->thr[t], NULL, fetch_main, fh);
			if (ret)
				break;
			rm->nthr++;
		}
		if (!rm->nthr)
			return ret;
	}
	if (end > rm->size)
		end = rm->size;
	pthread_mutex_lock(&rm->mu);
	while (rm->fetched < end && !rm->error)
		pthread_cond_wait(&rm->cv, &rm->mu);
	ret = rm->fetched >= end ? 0 : rm->error;
	pthread_mutex_unlock(&rm->mu);
	return ret;
}

/* The base version's bytes in memory: local replica, or fetched. */
static int fh_base(struct mcfs_fh *fh)
{
	int ret;

	if (fh->data || !fh->size || fh->base_dropped)
		return 0;
	if (!fh->remote)
		return -EIO;
	ret = remote_wait(fh, fh->size);
	if (!ret) {
		fh->data = fh->remote->buf;
		fh->seg_epoch = 0;
	}
	return ret;
}

#define STREAM_FIRST	(1u << 20) /* asked at open: a whole KV block, or the kernel's largest read */
#define STREAM_AHEAD	2	   /* reads asked ahead of the one being answered */
#define STREAM_ASK_MAX	(8u << 20)   /* the most one ask may ask for (MCFS_SEG_IO_MAX) */
#define STREAM_RESTARTS 2	     /* reads out of sequence a handle streams through */
#define STREAM_SPLIT	(512u << 10) /* a first ask this large goes half over a second stream */

static void stream_drop(struct mcfs_remote *rm, bool reuse)
{
	mcfs_xport_stream_close(rm->st, reuse);
	rm->st = NULL;
	stream2_close(rm, reuse);
}

/* After a failure: log it, and let the handle fetch from now on. */
static void stream_fail(struct mcfs_fh *fh, int err)
{
	struct mcfs_remote *rm = fh->remote;
	char addr[sizeof(rm->rep[0].addr)];

	pthread_mutex_lock(&rm->mu);
	memcpy(addr, rm->rep[rm->st_failed < rm->nrep ? rm->st_failed : 0].addr, sizeof(addr));
	pthread_mutex_unlock(&rm->mu);
	mcfs_warn("inode %" PRIu64 ": streaming from %s failed (%s), fetching instead", fh->ino,
		  addr, strerror(-err));
	stream_drop(rm, false);
	rm->nostream = true;
}

/* Ask for the object's bytes [st_end, end), in asks of st_unit. */
static int stream_ask(struct mcfs_fh *fh, uint64_t end)
{
	struct mcfs_remote *rm = fh->remote;
	struct mcfs_grant g;
	int ret = 0;

	if (end > fh->size)
		end = fh->size;
	pthread_mutex_lock(&rm->mu);
	g = rm->rep[rm->st_rep].g; /* the lease thread may renew it */
	pthread_mutex_unlock(&rm->mu);
	while (rm->st_end < end && !ret) {
		uint64_t len = end - rm->st_end < rm->st_unit ? end - rm->st_end : rm->st_unit;

		ret = mcfs_xport_stream_ask(rm->st, &g, g.offset + rm->st_end, (uint32_t)len);
		if (!ret)
			rm->st_end += len;
	}
	if (ret == -EINVAL)
		return 0; /* enough asked for now */
	if (ret)
		rm->st_failed = rm->st_rep;
	return ret;
}

/* A stream starting at off, asking for len bytes. 0, or -errno: fetch instead. */
static int stream_start(struct mcfs_fh *fh, uint64_t off, uint64_t len)
{
	struct mcfs_remote *rm = fh->remote;
	char addr[sizeof(rm->rep[0].addr)];
	int ret;

	pthread_mutex_lock(&rm->mu);
	rm->st_rep = rm->cur < rm->nrep ? rm->cur : 0;
	memcpy(addr, rm->rep[rm->st_rep].addr, sizeof(addr));
	pthread_mutex_unlock(&rm->mu);
	ret = mcfs_xport_stream_open(fh->n->xc, addr, &rm->st);
	if (ret) {
		rm->st = NULL;
		return ret;
	}
	rm->st_pos = rm->st_end = off;
	rm->st_unit = len < STREAM_ASK_MAX ? (uint32_t)len : STREAM_ASK_MAX;
	ret = stream_ask(fh, off + len);
	if (ret)
		stream_drop(rm, false);
	return ret;
}

/*
 * Ask for bytes [lo, hi) over a second stream, to the replica after st's
 * (st's own when it is the only one), where a stream can be had (0; st2 is
 * then set); -errno otherwise, nothing asked.
 */
static int stream_split(struct mcfs_fh *fh, uint64_t lo, uint64_t hi)
{
	struct mcfs_remote *rm = fh->remote;
	char addr[sizeof(rm->rep[0].addr)];
	struct mcfs_grant g;
	int ret;

	if (__atomic_fetch_add(&stream_splits, 1, __ATOMIC_RELAXED) >= STREAM_SPLITS_MAX) {
		__atomic_fetch_sub(&stream_splits, 1, __ATOMIC_RELAXED);
		return -EBUSY;
	}
	pthread_mutex_lock(&rm->mu);
	rm->st2_rep = (rm->st_rep + 1) % rm->nrep;
	memcpy(addr, rm->rep[rm->st2_rep].addr, sizeof(addr));
	g = rm->rep[rm->st2_rep].g;
	pthread_mutex_unlock(&rm->mu);
	ret = mcfs_xport_stream_open(fh->n->xc, addr, &rm->st2);
	if (ret) {
		rm->st2 = NULL;
		__atomic_fetch_sub(&stream_splits, 1, __ATOMIC_RELAXED);
		return ret;
	}
	ret = mcfs_xport_stream_ask(rm->st2, &g, g.offset + lo, (uint32_t)(hi - lo));
	if (ret) {
		stream2_close(rm, false);
		return ret;
	}
	rm->st2_lo = lo;
	rm->st2_hi = hi;
	return 0;
}

/*
 * On opening a remote file for reading: ask for its first bytes at once,
 * so that they travel while the open is answered and the first read comes.
 * A large first ask goes in two halves over two connections: on the
 * replica, each is sent by a thread of its own, on its own CPU where there
 * is one, and a lone object arrives sooner than over one connection.
 */
static void remote_prefetch(struct mcfs_fh *fh)
{
	struct mcfs_remote *rm = fh->remote;
	uint64_t len = fh->size < STREAM_FIRST ? fh->size : STREAM_FIRST;
	uint64_t half = len / 2 / 4096 * 4096;

	if (!rm || rm->st || rm->buf || rm->nostream || !fh->size)
		return;
	if (len < STREAM_SPLIT)
		half = len;
	if (stream_start(fh, 0, half)) {
		rm->nostream = true; /* -EBUSY, -EOPNOTSUPP, a peer down: fetch */
		return;
	}
	if (half == len)
		return;
	if (!stream_split(fh, half, len)) {
		rm->st_end = len; /* st asks on from there */
	} else if (stream_ask(fh, len)) {
		stream_fail(fh, -EIO); /* st broke: nothing asked of it is to be read */
	}
}

/* The FUSE thread's buffer for reads copied from a stream: kept, so its pages stay faulted. */
static uint8_t *stream_buf;
static uint64_t stream_buf_cap;

/* The stream that carries the object's byte pos, and how many from there on it carries. */
static struct mcfs_xport_stream *stream_at(struct mcfs_remote *rm, uint64_t pos, uint64_t *run)
{
	if (rm->st2 && pos >= rm->st2_lo && pos < rm->st2_hi) {
		*run = rm->st2_hi - pos;
		return rm->st2;
	}
	*run = rm->st2 && pos < rm->st2_lo ? rm->st2_lo - pos : UINT64_MAX;
	return rm->st;
}

/* Answer a read of [off, off + n) from the stream's bytes, copied (across answers). */
static int stream_reply_copy(fuse_req_t req, struct mcfs_fh *fh, uint64_t n)
{
	struct mcfs_remote *rm = fh->remote;
	uint8_t *buf;
	uint64_t got = 0;
	uint32_t avail;
	int fd, ret = 0;

	if (n > stream_buf_cap) {
		buf = realloc(stream_buf, n);
		if (!buf)
			return -ENOMEM;
		stream_buf = buf;
		stream_buf_cap = n;
	}
	buf = stream_buf;
	while (got < n && !ret) {
		uint64_t run, want = n - got;
		struct mcfs_xport_stream *s = stream_at(rm, rm->st_pos + got, &run);

		if (want > run)
			want = run;
		if (want > UINT32_MAX)
			want = UINT32_MAX;
		ret = mcfs_xport_stream_next(s, (uint32_t)want, &fd, &avail);
		if (!ret && recv(fd, buf + got, avail, MSG_WAITALL) != (ssize_t)avail)
			ret = -EIO; /* the bytes were queued: nothing short of a reset stops this */
		if (!ret) {
			mcfs_xport_stream_consumed(s, avail);
			got += avail;
		} else {
			rm->st_failed = s == rm->st2 ? rm->st2_rep : rm->st_rep;
		}
	}
	if (!ret) {
		rm->st_pos += n;
		if (rm->st2 && rm->st_pos >= rm->st2_hi)
			stream2_close(rm, true); /* all its bytes are in */
		fuse_reply_buf(req, (const char *)buf, n);
	}
	return ret;
}

/*
 * Answer a read from the stream, starting one where there is none or the
 * read is not the next in line. 0 when replied; -errno when the caller is
 * to fetch and reply instead (nothing was replied).
 */
static int stream_read(fuse_req_t req, struct mcfs_fh *fh, uint64_t off, uint64_t n)
{
	struct mcfs_remote *rm = fh->remote;
	int ret;

	if (rm->nostream)
		return -EAGAIN;
	if (rm->st && rm->st_pos != off) {
		/* Not sequential: start over here; a handle that keeps jumping fetches. */
		stream_drop(rm, false);
		if (++rm->st_restarts > STREAM_RESTARTS) {
			rm->nostream = true;
			return -EAGAIN;
		}
	}
retry:
	if (!rm->st) {
		ret = stream_start(fh, off, n);
		if (ret) {
			rm->nostream = true;
			return ret;
		}
	}
	if (n > rm->st_unit || n < rm->st_unit / 2)
		rm->st_unit = n < STREAM_ASK_MAX ? (uint32_t)n : STREAM_ASK_MAX;
	/* This read's bytes, and the next reads' on their way while we answer. */
	ret = stream_ask(fh, off + n + (uint64_t)STREAM_AHEAD * rm->st_unit);
	/*
	 * Received, then replied. A splice into the reply would move the bytes
	 * once, but when libfuse fails one mid-way (it answers the read with an
	 * error and returns 0) nobody knows how much left the socket, and the
	 * stream would hand the next read the wrong bytes.
	 */
	if (!ret)
		ret = stream_reply_copy(req, fh, n);
	if ((ret == -EACCES || ret == -ETIMEDOUT) && !rm->st_refreshed) {
		/* The replica refused this ask: its grant may have run out. Renew, ask again. */
		rm->st_refreshed = true;
		stream_drop(rm, false);
		if (!remote_refresh(fh))
			goto retry;
	}
	if (ret)
		stream_fail(fh, ret);
	return ret;
}

static int stage_ptr(struct mcfs_fh *fh, const struct mcfs_msg *m, uint8_t **out, uint64_t *cap)
{
	struct mcfs_node *n = fh->n;
	const struct mcfs_replica *r = &m->rep[0];

	if (m->nrep != 1 || r->node_id != n->node_id || !n->seg)
		return -EIO;
	*out = mcfs_seg_ptr(n->seg, r->offset, r->len);
	if (!*out)
		return -EIO;
	*cap = r->len;
	return 0;
}

static int put_start(struct mcfs_fh *fh, uint64_t cap, uint64_t *put_id, uint8_t **stage,
		     uint64_t *got)
{
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_PUT_START);
	c.req.ino = fh->ino;
	c.req.size = cap;
	ret = call_run(fh->n, &c);
	if (!ret) {
		*put_id = c.resp.put_id;
		*stage = NULL;
		*got = 0;
		fh->repnum = c.resp.count;
		if (cap)
			ret = stage_ptr(fh, &c.resp, stage, got);
	}
	call_fini(&c);
	return ret;
}

static void put_revoke(struct mcfs_node *n, uint64_t put_id)
{
	struct call c;

	if (!put_id)
		return;
	call_init(&c, MCFS_MSG_PUT_REVOKE);
	c.req.put_id = put_id;
	if (call_run(n, &c))
		mcfs_warn("could not revoke put %" PRIu64, put_id);
	call_fini(&c);
}

static void stage_drop(struct mcfs_fh *fh)
{
	if (fh->orphan)
		free(fh->stage);
	else
		put_revoke(fh->n, fh->put_id);
	fh->staged = false;
	fh->orphan = false;
	fh->put_id = 0;
	fh->stage = NULL;
	fh->cap = 0;
	fh->len = 0;
	fh_track_put(fh);
}

static int stage_fail(struct mcfs_fh *fh, int err)
{
	if (err == -EAGAIN)
		err = -ENOSPC;
	fh->error = err;
	stage_drop(fh);
	return err;
}

/*
 * The file was unlinked or replaced before this handle staged anything: as
 * on any POSIX file system its writes still succeed and stay readable
 * through the handle, but nobody else will see them, so they go to private
 * memory instead of the pool.
 */
static int stage_orphan(struct mcfs_fh *fh, uint64_t cap)
{
	uint8_t *heap;

	if (!fh->orphan) {
		const uint8_t *src;

		if (!fh->staged && fh_base(fh))
			fh->base_dropped = true; /* unreachable now, and nobody will see it */
		src = fh->staged ? fh->stage : fh->data;
		uint64_t keep = fh->staged ? fh->len : (fh->base_dropped ? 0 : fh->size);

		heap = malloc(cap > keep ? cap : keep);
		if (!heap)
			return stage_fail(fh, -ENOMEM);
		if (keep)
			memcpy(heap, src, keep);
		if (fh->staged)
			put_revoke(fh->n, fh->put_id);
		fh->put_id = 0;
		fh->len = keep;
		fh->orphan = true;
		fh->staged = true;
	} else {
		heap = realloc(fh->stage, cap);
		if (!heap)
			return stage_fail(fh, -ENOMEM);
	}
	fh->stage = heap;
	fh->cap = cap;
	fh_track_put(fh);
	return 0;
}

/*
 * Make the put able to hold need bytes. The first call starts the put with a
 * copy of the base version (copy-on-write); later ones grow it, in place when
 * the allocator can, otherwise into a new range.
 */
/*
 * The master this put was started with is gone (it restarted, or a new
 * leader took over, and knows nothing of puts in flight): its range may be
 * handed out again, so nothing more goes there and the write fails (EIO).
 */
static bool put_lost(struct mcfs_fh *fh)
{
	return fh->staged && !fh->orphan &&
	       fh->put_gen != __atomic_load_n(&fh->n->put_gen, __ATOMIC_ACQUIRE);
}

static int stage_reserve(struct mcfs_fh *fh, uint64_t need)
{
	uint64_t cap, put_id, got;
	uint8_t *stage;
	struct call c;
	int ret;

	if (fh->error)
		return fh->error;
	if (put_lost(fh))
		return stage_fail(fh, -EIO);
	if (fh->staged && need <= fh->cap && (need == 0 || fh->stage))
		return 0;
	if (!fh->staged) {
		uint64_t keep = fh->base_dropped ? 0 : fh->size;

		ret = fh_base(fh);
		if (ret)
			return stage_fail(fh, ret);
		cap = need > keep ? need : keep;
		if (cap && cap < MIN_STAGE)
			cap = MIN_STAGE;
		ret = put_start(fh, cap, &put_id, &stage, &got);
		if (ret == -ENOENT)
			return stage_orphan(fh, cap ? cap : MIN_STAGE);
		if (ret)
			return stage_fail(fh, ret);
		fh->staged = true;
		fh->put_id = put_id;
		fh->put_gen = __atomic_load_n(&fh->n->put_gen, __ATOMIC_ACQUIRE);
		fh->stage = stage;
		fh->cap = got;
		if (keep)
			memcpy(stage, fh->data, keep);
		fh->len = keep;
		fh_track_put(fh);
		return 0;
	}
	cap = fh->cap * 2 > need ? fh->cap * 2 : need;
	if (cap < MIN_STAGE)
		cap = MIN_STAGE;
	if (fh->orphan)
		return stage_orphan(fh, cap);
	call_init(&c, MCFS_MSG_PUT_GROW);
	c.req.put_id = fh->put_id;
	c.req.size = cap;
	ret = call_run(fh->n, &c);
	if (!ret)
		ret = stage_ptr(fh, &c.resp, &stage, &got);
	call_fini(&c);
	if (!ret) {
		if (fh->stage && stage != fh->stage)
			memmove(stage, fh->stage, fh->len);
		fh->stage = stage;
		fh->cap = got;
		return 0;
	}
	if (ret != -EAGAIN)
		return stage_fail(fh, ret);
	/* Cannot grow in place: a new range, one copy, and the old range goes back. */
	ret = put_start(fh, cap, &put_id, &stage, &got);
	if (ret == -ENOENT)
		return stage_orphan(fh, cap);
	if (ret)
		return stage_fail(fh, ret);
	if (fh->len)
		memcpy(stage, fh->stage, fh->len);
	put_revoke(fh->n, fh->put_id);
	fh->put_id = put_id;
	fh->put_gen = __atomic_load_n(&fh->n->put_gen, __ATOMIC_ACQUIRE);
	fh->stage = stage;
	fh->cap = got;
	fh_track_put(fh);
	return 0;
}

/* Set the staged length to size, zero-filling what a grow exposes. */
static int stage_truncate(struct mcfs_fh *fh, uint64_t size)
{
	int ret;

	if (fh->error)
		return fh->error;
	fh->write_last = false;
	if (!fh->staged && size == 0) {
		fh->base_dropped = true;
		fh->dirty = true;
		return 0;
	}
	ret = stage_reserve(fh, size);
	if (ret)
		return ret;
	if (size > fh->len)
		memset(fh->stage + fh->len, 0, size - fh->len);
	fh->len = size;
	fh->dirty = true;
	return 0;
}

static int reapply_times(struct mcfs_fh *fh)
{
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_SETATTR);
	c.req.ino = fh->ino;
	c.req.valid = fh->keep_times;
	c.req.atime_ns = fh->atime_ns;
	c.req.mtime_ns = fh->mtime_ns;
	ret = call_run(fh->n, &c);
	call_fini(&c);
	fh->keep_times = 0;
	return ret;
}

/*
 * A copy to a peer failed. Until the master stops placing copies on a dead
 * peer (a few seconds), every put fails one: say so once a second, with
 * how many were not said.
 */
static void copy_warn(struct mcfs_node *n, const char *addr, int err)
{
	uint64_t now = mcfs_now_ms(), last = __atomic_load_n(&n->copy_warn_ms, __ATOMIC_RELAXED);
	unsigned quiet;

	if (last && now - last < 1000) {
		__atomic_add_fetch(&n->copy_warn_quiet, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&n->copy_warn_ms, now, __ATOMIC_RELAXED);
	quiet = __atomic_exchange_n(&n->copy_warn_quiet, 0, __ATOMIC_RELAXED);
	if (quiet)
		mcfs_warn("writing a replica to %s failed: %s (and %u more copies failed in the "
			  "last second)",
			  addr, strerror(-err), quiet);
	else
		mcfs_warn("writing a replica to %s failed: %s", addr, strerror(-err));
}

/*
 * Write src to every replica in m->rep[from..] that is not the local staging:
 * a memcpy for our own segment, a one-sided write for a peer's. With
 * unfilled NULL the first copy that fails fails it all (-EIO); else a
 * failed copy sets bit i of *unfilled and the others go on.
 */
static int copy_to_replicas(struct mcfs_node *n, const uint8_t *src, uint64_t len,
			    const struct mcfs_msg *m, uint32_t from, uint32_t *unfilled)
{
	char addr[MCFS_NAME_MAX + 1];
	struct mcfs_grant g;
	int ret;

	for (uint32_t i = from; i < m->nrep; i++) {
		const struct mcfs_replica *r = &m->rep[i];

		ret = 0;
		if (r->len < len) {
			ret = -EIO;
		} else if (r->node_id == n->node_id) {
			uint8_t *dst = n->seg ? mcfs_seg_ptr(n->seg, r->offset, len) : NULL;

			if (!dst)
				ret = -EIO;
			else if (dst != src && len)
				memcpy(dst, src, len);
		} else if (len) {
			grant_from(&g, r);
			blob_cpy(addr, sizeof(addr), &r->addr);
			ret = mcfs_xport_write(n->xc, addr, &g, r->offset, src, len);
			if (ret)
				copy_warn(n, addr, ret);
		}
		if (!ret)
			continue;
		if (!unfilled)
			return -EIO;
		*unfilled |= 1u << i;
	}
	return 0;
}

/*
 * The final size is known: have the master place the other replicas and
 * fill them. The copies that could not be written are left out at PUT_END
 * (fh->unfilled): the object is published with fewer replicas rather than
 * not at all.
 */
static int put_place(struct mcfs_fh *fh)
{
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_PUT_PLACE);
	c.req.put_id = fh->put_id;
	c.req.size = fh->len;
	ret = call_run(fh->n, &c);
	/* -ENOENT from the master only: the file went away (put_done()). */
	fh->unfilled = 0;
	if (!ret)
		ret = copy_to_replicas(fh->n, fh->stage, fh->len, &c.resp, 0, &fh->unfilled);
	call_fini(&c);
	return ret;
}

/*
 * The put is over: published, or unlinked or replaced while being written
 * (PUT_PLACE or PUT_END answered ENOENT, and the master freed the put: as
 * on any POSIX file system the writes succeed and nobody sees them).
 */
static void put_done(struct mcfs_fh *fh)
{
	fh->staged = false;
	fh->put_id = 0;
	fh->stage = NULL;
	fh->cap = 0;
	fh->len = 0;
	fh->dirty = false;
	fh_track_put(fh);
}

/*
 * Publish what the handle staged: PUT_END with its crc32c. The staged range
 * becomes the new version's local replica, and the handle's base.
 */
static int fh_publish(struct mcfs_fh *fh)
{
	struct mcfs_node *n = fh->n;
	struct call c;
	int ret;

	if (fh->error)
		return fh->error;
	if (put_lost(fh))
		return stage_fail(fh, -EIO);
	if (!fh->dirty)
		return 0;
	if (!fh->staged) {
		ret = stage_reserve(fh, fh->base_dropped ? 0 : fh->size);
		if (ret)
			return ret;
	}
	if (fh->orphan) {
		fh->dirty = false; /* nobody can see it any more: nothing to publish */
		return 0;
	}
	if (fh->repnum > 1) {
		ret = put_place(fh);
		if (ret == -ENOENT) {
			put_done(fh);
			return 0;
		}
		if (ret)
			return stage_fail(fh, ret);
	}
	call_init(&c, MCFS_MSG_PUT_END);
	c.req.put_id = fh->put_id;
	c.req.size = fh->len;
	c.req.crc = fh->len ? mcfs_crc32c(0, fh->stage, fh->len) : 0;
	c.req.flags = fh->repnum > 1 ? fh->unfilled : 0;
	ret = call_run(n, &c);
	if (ret == -ENOENT) {
		call_fini(&c);
		put_done(fh);
		return 0;
	}
	if (ret) {
		call_fini(&c);
		stage_fail(fh, ret);
		return ret;
	}
	free(fh->name);
	fh->name = NULL; /* published: no longer ours to remove */
	if (n->cat && c.resp.value.len)
		(void)mcfs_catalog_apply(n->cat, c.resp.value.p, c.resp.value.len);
	lease_del(fh);
	fh->in->attr = c.resp.attr;
	vhold_unref(fh); /* the version it read before, if any */
	vhold_ref(fh, fh->ino, c.resp.attr.version, true);
	fh->version = c.resp.attr.version;
	fh->size = fh->len;
	fh->data = fh->len ? fh->stage : NULL;
	fh->seg_epoch = __atomic_load_n(&n->seg_epoch, __ATOMIC_ACQUIRE);
	fh->base_dropped = false;
	put_done(fh);
	lease_add(fh);
	call_fini(&c);
	/* A page-cached writer's pages are the new version's bytes. */
	if (fh->cached)
		fh->in->cache_version = fh->version;
	if (fh->keep_times)
		reapply_times(fh);
	/*
	 * Drop the kernel's cached size and times; pages stay. Not after a
	 * write(), whose end did that already: a full invalidation would also
	 * cost the next open a GETATTR (the kernel checks permissions against
	 * the mode it holds).
	 */
	if (!fh->write_last || fh->in->attr_told != fh->told_at_write)
		fuse_lowlevel_notify_inval_inode(n->se, fh->ino, -1, 0);
	fh->write_last = false;
	return 0;
}

static struct mcfs_fh *fh_new(struct mcfs_node *n, uint64_t ino, bool write)
{
	struct mcfs_fh *fh = calloc(1, sizeof(*fh));

	if (!fh)
		return NULL;
	fh->in = ino_get(n, ino);
	if (!fh->in) {
		free(fh);
		return NULL;
	}
	fh->n = n;
	fh->ino = ino;
	fh->write = write;
	fh->in->nopen++;
	if (write)
		fh->in->writer = fh;
	DL_APPEND2(n->open_fhs, fh, oprev, onext);
	return fh;
}

static void fh_free(struct mcfs_fh *fh)
{
	struct mcfs_ino *in = fh->in;

	DL_DELETE2(fh->n->open_fhs, fh, oprev, onext);
	stage_drop(fh);
	lease_del(fh); /* after stage_drop, which may list it again */
	vhold_unref(fh);
	if (fh->cached)
		in->cache_users--;
	if (in->writer == fh)
		in->writer = NULL;
	in->nopen--;
	remote_free(fh->remote);
	free(fh->name);
	free(fh);
}

/*
 * A file created by this handle whose content could not be published is
 * removed again, if the name still refers to it: a failed put leaves nothing
 * behind, not even an empty file.
 */
static void fh_unpublish_created(struct mcfs_fh *fh)
{
	struct call c;
	int ret;

	if (!fh->name || fh->version)
		return;
	call_init(&c, MCFS_MSG_LOOKUP);
	c.req.ino = fh->parent;
	c.req.name = blob_str(fh->name);
	ret = call_run(fh->n, &c);
	if (!ret && c.resp.attr.ino == fh->ino && (c.resp.attr.flags & MCFS_ATTR_PENDING)) {
		call_fini(&c);
		call_init(&c, MCFS_MSG_UNLINK);
		c.req.ino = fh->parent;
		c.req.name = blob_str(fh->name);
		/*
		 * No notify_inval_entry here: from the only FUSE thread it can
		 * deadlock against an unlink or rename holding the directory lock
		 * while it waits for us. The kernel's cached entry now leads to
		 * ESTALE, and the kernel looks the name up again (ENOENT).
		 */
		call_run(fh->n, &c);
	}
	call_fini(&c);
	/*
	 * Removed now, or already gone (a master that restarted never knew
	 * it): no name leads here, and a stat() of the kernel's stale entry
	 * gets ESTALE, so the kernel looks the name up again, rather than the
	 * attributes of a file that never was (getattr).
	 */
	{
		struct mcfs_ino *in = ino_find(fh->n, fh->ino);

		if (in) {
			name_detach(fh->n, in);
			in->attr.ino = 0;
		}
	}
	free(fh->name);
	fh->name = NULL;
}

/*
 * Decide how the kernel may cache this handle's pages. A read handle of the
 * version the page cache holds shares it (keep_cache); so does the first
 * handle when no other uses it. Everything else bypasses it.
 */
static void fh_choose_cache(struct mcfs_fh *fh, struct fuse_file_info *fi)
{
	struct mcfs_ino *in = fh->in;

	fi->keep_cache = 0;
	fi->direct_io = 1;
	/*
	 * Every handle reads its own version, whatever the kernel's size says;
	 * an appending one writes where its own version ends (mcfs_write).
	 */
	if (mcfs_kio_direct_io_mmap() || (fi->flags & (O_DIRECT | O_APPEND)))
		return;
	if ((fi->flags & O_ACCMODE) == O_WRONLY)
		return; /* write-only: straight into the put, no page copies */
	if (!fh->write && !fh->version)
		return; /* a file still being written on this node */
	if (!fh->write && in->cache_users && in->cache_version == fh->version) {
		fi->keep_cache = 1;
	} else if (!in->cache_users) {
		fi->keep_cache = !fh->write && in->cache_version == fh->version;
		/* A read-write handle's pages will hold its own, unpublished bytes. */
		in->cache_version = fh->write ? 0 : fh->version;
	} else {
		return;
	}
	fi->direct_io = 0;
	fh->cached = true;
	in->cache_users++;
}

/* A write open of in's name by thread pid failed with ESTALE: the kernel retries it. */
static void estale_note(struct mcfs_node *n, const struct mcfs_ino *in, pid_t pid)
{
	unsigned i = n->estale_next++ % (sizeof(n->estale) / sizeof(n->estale[0]));

	if (!in->name)
		return;
	n->estale[i].parent = in->parent;
	n->estale[i].hash = name_hash(in->name);
	n->estale[i].pid = pid;
}

/* Did thread pid's write open of name in parent fail with ESTALE last? Forgets it. */
static bool estale_take(struct mcfs_node *n, uint64_t parent, const char *name, pid_t pid)
{
	uint64_t h = name_hash(name);

	for (size_t i = 0; i < sizeof(n->estale) / sizeof(n->estale[0]); i++) {
		if (n->estale[i].hash == h && n->estale[i].parent == parent &&
		    n->estale[i].pid == pid) {
			n->estale[i].hash = 0;
			n->estale[i].parent = 0;
			n->estale[i].pid = 0;
			return true;
		}
	}
	return false;
}

/* Is this open thread pid's retry after estale_note() of in's name? Forgets it. */
static bool estale_retried(struct mcfs_node *n, const struct mcfs_ino *in, pid_t pid)
{
	return estale_take(n, in->parent, in->name, pid);
}

/*
 * created: CREATE made the file just now. resolved: the master found ino by
 * its name in this very request (CREATE of an existing file), so no cached
 * name can be stale.
 */
static int fh_open(struct mcfs_node *n, uint64_t ino, struct fuse_file_info *fi, bool created,
		   bool resolved, pid_t pid, struct mcfs_fh **out)
{
	int acc = fi->flags & O_ACCMODE;
	bool write = acc != O_RDONLY;
	struct mcfs_fh *fh;
	int ret;

	fh = fh_new(n, ino, write);
	if (!fh)
		return -ENOMEM;
	fh->append = write && (fi->flags & O_APPEND);
	if (created) {
		fh->base_dropped = true;
		fh->dirty = true; /* an empty new file is published at close too */
	} else {
		/*
		 * Replaced since the kernel's lookup: the handle opens what the
		 * name holds now (fh_load). Gone: if our own unlink or rename
		 * removed it after the kernel found it, the open succeeds on the
		 * removed file as on any POSIX file system, its writes going where
		 * nobody sees them; if another node did, the kernel's name is
		 * stale, and ESTALE has it look the path up again, so that the put
		 * lands under the name (a new file with O_CREAT), not in the old
		 * inode.
		 */
		ret = fh_load(fh);
		if (write && (ret == -ENOENT || ret == -ESTALE)) {
			if (resolved ||
			    (fh->in->name && (!fh->in->named || estale_retried(n, fh->in, pid)))) {
				fh->base_dropped = true;
				ret = stage_orphan(fh, MIN_STAGE);
			} else {
				estale_note(n, fh->in, pid);
				ret = -ESTALE;
			}
		}
		if (ret) {
			fh_free(fh);
			return ret;
		}
		if (write && fh->in->name)
			(void)estale_retried(n, fh->in, pid); /* the name is good again */
		if (fi->flags & O_TRUNC) {
			fh->base_dropped = true;
			fh->dirty = true;
		}
	}
	fh_choose_cache(fh, fi);
	if (!write)
		remote_prefetch(fh);
	/* Closing a read handle publishes nothing: spare the round trip. */
	fi->noflush = !write;
	fi->fh = (uintptr_t)fh;
	*out = fh;
	return 0;
}

static void mcfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mcfs_fh *fh;
	int ret = fh_open(node_of(req), ino, fi, false, false, fuse_req_ctx(req)->pid, &fh);

	/*
	 * Replaced or removed after the kernel looked the name up: ESTALE
	 * (the kernel looks the path up again and retries once), or ENOENT
	 * when fh_load() found the name itself gone.
	 */
	if (ret)
		fuse_reply_err(req, -ret);
	else if (fuse_reply_open(req, fi) == -ENOENT)
		fh_free(fh); /* the opener was interrupted */
}

static void mcfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			struct fuse_file_info *fi)
{
	struct mcfs_node *n = node_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct mcfs_fh *fh;
	struct call c;
	int ret = check_name(name);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	call_init(&c, MCFS_MSG_CREATE);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	c.req.mode = S_IFREG | (mode & 07777 & ~ctx->umask);
	c.req.uid = ctx->uid;
	c.req.gid = ctx->gid;
	c.req.flags = (fi->flags & O_EXCL) ? MCFS_CREATE_EXCL : 0;
	c.req.count = (uint32_t)n->conf->replicas; /* unless the directory says otherwise */
	ret = call_run(n, &c);
	if (!ret) {
		bool created = (c.resp.attr.flags & MCFS_ATTR_PENDING) && !c.resp.attr.version &&
			       !ino_find(n, c.resp.attr.ino);

		ret = fh_open(n, c.resp.attr.ino, fi, created, true, ctx->pid, &fh);
		if (!ret && created) {
			fh->parent = parent;
			fh->name = strdup(name);
		}
		if (!ret) {
			ino_remember(n, &c.resp.attr, parent, name);
			/* A retry that found the name free: the note is spent. */
			(void)estale_take(n, parent, name, ctx->pid);
		}
	}
	if (ret) {
		fuse_reply_err(req, -ret);
	} else {
		fill_entry(n, &c.resp.attr, &e);
		if (fuse_reply_create(req, &e, fi) == -ENOENT)
			fh_free(fh);
	}
	call_fini(&c);
}

static void mcfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct mcfs_fh *fh = (struct mcfs_fh *)(uintptr_t)fi->fh;
	const uint8_t *data = fh->data;
	uint64_t len = fh->base_dropped ? 0 : fh->size;

	(void)ino;
	/*
	 * A handle reads its own put, else the version it opened. One opened
	 * before the file's first close has none (version 0) and reads the file
	 * empty, whatever another handle stages meanwhile: a put is seen whole
	 * or not at all.
	 */
	if (fh->staged) {
		data = fh->stage;
		len = fh->len;
	} else if (fh->seg_epoch &&
		   fh->seg_epoch != __atomic_load_n(&fh->n->seg_epoch, __ATOMIC_ACQUIRE)) {
		/* This node was dropped since: the segment's old contents are not its to serve. */
		fuse_reply_err(req, EIO);
		return;
	}
	if (!data && len && !fh->staged && fh->remote && off >= 0 && (uint64_t)off < len) {
		uint64_t end = (uint64_t)off + size < len ? (uint64_t)off + size : len;
		int ret;

		if (!fh->remote->buf && !stream_read(req, fh, (uint64_t)off, end - (uint64_t)off))
			return;
		ret = remote_wait(fh, end);

		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		data = fh->remote->buf;
	}
	if (off < 0 || (uint64_t)off >= len || !data) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > len - (uint64_t)off)
		size = len - (uint64_t)off;
	fuse_reply_buf(req, (const char *)data + off, size);
}

static void mcfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct mcfs_fh *fh = (struct mcfs_fh *)(uintptr_t)fi->fh;
	uint64_t end;
	int ret;

	(void)ino;
	if (fh->append) {
		/*
		 * The kernel puts an O_APPEND write at the size it has cached,
		 * which is stale when another node rewrote the file since: the end
		 * is that of the version this handle opened, and of its writes.
		 */
		ret = stage_reserve(fh, 0);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		off = (off_t)fh->len;
	}
	if (off < 0 || (uint64_t)off > UINT64_MAX - size) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	end = (uint64_t)off + size;
	ret = stage_reserve(fh, end);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if ((uint64_t)off > fh->len)
		memset(fh->stage + fh->len, 0, (uint64_t)off - fh->len);
	memcpy(fh->stage + off, buf, size);
	if (end > fh->len)
		fh->len = end;
	fh->dirty = true;
	fh->keep_times &= ~(uint32_t)MCFS_SET_MTIME; /* a write after a set time is newer */
	fh->write_last = !fi->writepage; /* the kernel's own write-back (mmap) drops nothing */
	fh->told_at_write = fh->in->attr_told;
	fuse_reply_write(req, size);
}

/*
 * Whether task pid surely still has its address space. An exiting task
 * loses it (exit_mm) before the kernel closes its files for it (exit_files),
 * so this tells the close of a live process from one at exit in one system
 * call, where /proc/PID/stat costs an open, a read and a close (6 us on the
 * development VM, against 1 us). It reads one byte at address 1, which no
 * process can map (mmap_min_addr): EFAULT says the address space is there,
 * ESRCH that it or the task is gone. Anything else (EPERM: not allowed to
 * look) is "don't know".
 */
static bool has_address_space(pid_t pid)
{
	char byte;
	struct iovec local = {.iov_base = &byte, .iov_len = 1};
	struct iovec remote = {.iov_base = (void *)1, .iov_len = 1};

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == 1 || errno == EFAULT;
}

/*
 * Whether pid is being torn down by a signal (SIGKILL, a crash): the kernel
 * is closing its files for it, and what it was writing was never finished.
 * /proc/PID/stat field 9 holds the task flags (PF_EXITING 0x4 once it
 * exits) and field 52 the exit code, whose low 7 bits name the signal.
 */
static bool killed_by_signal(pid_t pid)
{
	char path[64], buf[2048];
	unsigned long long flags = 0, code = 0;
	char *p, *save = NULL;
	ssize_t len;
	int fd, field = 2;

	if (has_address_space(pid))
		return false; /* a close by a live process: the usual case */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = 0;
	p = strrchr(buf, ')'); /* the command name may hold anything */
	if (!p)
		return false;
	for (p = strtok_r(p + 1, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 9)
			flags = strtoull(p, NULL, 10);
		else if (field == 52)
			code = strtoull(p, NULL, 10);
	}
	return (flags & 0x4) && (code & 0x7f);
}

static void mcfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mcfs_fh *fh = (struct mcfs_fh *)(uintptr_t)fi->fh;
	int ret;

	if (fh->write && fh->dirty && killed_by_signal(fuse_req_ctx(req)->pid)) {
		/* A writer that died mid-put publishes nothing: not even an empty file. */
		mcfs_info("inode %" PRIu64 ": the writer (pid %d) was killed: nothing published",
			  fh->ino, (int)fuse_req_ctx(req)->pid);
		stage_drop(fh);
		fh->dirty = false;
		fh->error = -EIO; /* not EINTR: a process sharing the handle would retry forever */
		fuse_reply_err(req, 0);
		fh_unpublish_created(fh);
		return;
	}
	ret = fh->write ? fh_publish(fh) : 0;

	(void)ino;
	fuse_reply_err(req, -ret);
	if (ret)
		fh_unpublish_created(fh);
}

static void mcfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	mcfs_flush(req, ino, fi);
}

static void mcfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mcfs_fh *fh = (struct mcfs_fh *)(uintptr_t)fi->fh;

	(void)ino;
	/* Pages written through a shared mapping after the last close arrive before this. */
	if (fh->write && fh->dirty && fh_publish(fh))
		mcfs_warn("inode %" PRIu64 ": data written after close was not published", fh->ino);
	if (fh->error)
		fh_unpublish_created(fh);
	fh_free(fh);
	fuse_reply_err(req, 0);
}

static void mcfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			   struct fuse_file_info *fi)
{
	struct mcfs_fh *fh = (struct mcfs_fh *)(uintptr_t)fi->fh;
	uint64_t end;
	int ret;

	(void)ino;
	if (mode & ~FALLOC_FL_KEEP_SIZE) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0 || (uint64_t)off > UINT64_MAX - (uint64_t)len) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!fh->write) {
		fuse_reply_err(req, EBADF);
		return;
	}
	end = (uint64_t)off + (uint64_t)len;
	fh->write_last = false;
	ret = stage_reserve(fh, end);
	if (!ret && !(mode & FALLOC_FL_KEEP_SIZE) && end > fh->len)
		ret = stage_truncate(fh, end);
	fuse_reply_err(req, -ret);
}

/* truncate(2) on a path: a new version with the old bytes cut or zero-extended. */
static int truncate_path(struct mcfs_node *n, uint64_t ino, uint64_t size)
{
	struct mcfs_fh *fh = fh_new(n, ino, true);
	int ret;

	if (!fh)
		return -ENOMEM;
	ret = fh_load(fh);
	if (!ret && size < fh->size && size) {
		/* Copy only what stays. */
		fh->size = size;
	}
	if (!ret)
		ret = stage_truncate(fh, size);
	if (!ret)
		ret = fh_publish(fh);
	fh_free(fh);
	return ret;
}

static void mcfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	struct mcfs_node *n = node_of(req);
	struct mcfs_fh *fh = fi ? (struct mcfs_fh *)(uintptr_t)fi->fh : NULL;
	struct stat st;
	struct call c;
	int ret = 0;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0)
			ret = -EINVAL;
		else if (fh && fh->write)
			ret = stage_truncate(fh, (uint64_t)attr->st_size);
		else if (fh)
			ret = -EBADF;
		else
			ret = truncate_path(n, ino, (uint64_t)attr->st_size);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	call_init(&c, MCFS_MSG_SETATTR);
	c.req.ino = ino;
	if (to_set & FUSE_SET_ATTR_MODE)
		c.req.valid |= MCFS_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		c.req.valid |= MCFS_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		c.req.valid |= MCFS_SET_GID;
	if (to_set & FUSE_SET_ATTR_ATIME)
		c.req.valid |=
		    (to_set & FUSE_SET_ATTR_ATIME_NOW) ? MCFS_SET_ATIME_NOW : MCFS_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME)
		c.req.valid |=
		    (to_set & FUSE_SET_ATTR_MTIME_NOW) ? MCFS_SET_MTIME_NOW : MCFS_SET_MTIME;
	c.req.mode = attr->st_mode;
	c.req.uid = attr->st_uid;
	c.req.gid = attr->st_gid;
	c.req.atime_ns = (int64_t)attr->st_atim.tv_sec * 1000000000 + attr->st_atim.tv_nsec;
	c.req.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
	if (c.req.valid & (MCFS_SET_ATIME | MCFS_SET_MTIME)) {
		/*
		 * cp -p sets times before close (futimens, which the kernel
		 * passes without the file: the file's writer here, then): keep
		 * them past the publish.
		 */
		struct mcfs_ino *in = fh && fh->write ? NULL : ino_find(n, ino);
		struct mcfs_fh *w = fh && fh->write ? fh : in ? in->writer : NULL;

		if (w && w->dirty) {
			w->keep_times = c.req.valid & (MCFS_SET_ATIME | MCFS_SET_MTIME);
			w->write_last = false;
			w->atime_ns = c.req.atime_ns;
			w->mtime_ns = c.req.mtime_ns;
		}
	}
	if (!c.req.valid)
		c.req.type = MCFS_MSG_GETATTR;
	ret = call_run(n, &c);
	if (ret) {
		fuse_reply_err(req, -ret);
	} else {
		attr_to_stat(n, &c.resp.attr, &st);
		fuse_reply_attr(req, &st, n->conf->attr_timeout);
	}
	call_fini(&c);
}

/* ---- namespace ---- */

static void mcfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct call c;
	int ret = check_name(name);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	call_init(&c, MCFS_MSG_MKDIR);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	c.req.mode = S_IFDIR | (mode & 07777 & ~ctx->umask);
	c.req.uid = ctx->uid;
	c.req.gid = ctx->gid;
	reply_entry_from(req, &c, call_run(node_of(req), &c));
	call_fini(&c);
}

/* mknod makes regular files only: an empty object, published at once. */
static void mcfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct mcfs_node *n = node_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct mcfs_fh *fh;
	struct call c;
	int ret = check_name(name);

	(void)rdev;
	if (!ret && !S_ISREG(mode))
		ret = -EPERM;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	call_init(&c, MCFS_MSG_CREATE);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	c.req.mode = S_IFREG | (mode & 07777 & ~ctx->umask);
	c.req.uid = ctx->uid;
	c.req.gid = ctx->gid;
	c.req.flags = MCFS_CREATE_EXCL;
	c.req.count = (uint32_t)n->conf->replicas;
	ret = call_run(n, &c);
	if (!ret) {
		fh = fh_new(n, c.resp.attr.ino, true);
		if (!fh) {
			ret = -ENOMEM;
		} else {
			fh->base_dropped = true;
			fh->dirty = true;
			ret = fh_publish(fh);
			fh_free(fh);
		}
	}
	if (!ret) {
		struct call g;

		call_init(&g, MCFS_MSG_GETATTR);
		g.req.ino = c.resp.attr.ino;
		reply_entry_from(req, &g, call_run(n, &g));
		call_fini(&g);
	} else {
		fuse_reply_err(req, -ret);
	}
	call_fini(&c);
}

static void mcfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct call c;
	int ret = check_name(name);

	if (!ret && strlen(link) > MCFS_PATH_MAX)
		ret = -ENAMETOOLONG;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	call_init(&c, MCFS_MSG_SYMLINK);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	c.req.value = blob_str(link);
	c.req.uid = ctx->uid;
	c.req.gid = ctx->gid;
	reply_entry_from(req, &c, call_run(node_of(req), &c));
	call_fini(&c);
}

static void mcfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[MCFS_PATH_MAX + 1];
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_READLINK);
	c.req.ino = ino;
	ret = call_run(node_of(req), &c);
	if (ret) {
		fuse_reply_err(req, -ret);
	} else {
		memcpy(target, c.resp.value.p, c.resp.value.len);
		target[c.resp.value.len] = 0;
		fuse_reply_readlink(req, target);
	}
	call_fini(&c);
}

static void simple_call(fuse_req_t req, struct call *c)
{
	fuse_reply_err(req, -call_run(node_of(req), c));
	call_fini(c);
}

static void mcfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mcfs_node *n = node_of(req);
	struct mcfs_ino *in;
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_UNLINK);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	ret = call_run(n, &c);
	if (!ret && (in = name_find(n, parent, name)))
		name_detach(n, in);
	fuse_reply_err(req, -ret);
	call_fini(&c);
}

static void mcfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct call c;

	call_init(&c, MCFS_MSG_RMDIR);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	simple_call(req, &c);
}

static void mcfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
			const char *newname, unsigned int flags)
{
	struct mcfs_node *n = node_of(req);
	struct call c;
	int ret = check_name(newname);

	if (!ret && (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)))
		ret = -EINVAL;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	call_init(&c, MCFS_MSG_RENAME);
	c.req.ino = parent;
	c.req.name = blob_str(name);
	c.req.ino2 = newparent;
	c.req.name2 = blob_str(newname);
	c.req.flags = (flags & RENAME_NOREPLACE ? MCFS_RENAME_NOREPLACE : 0) |
		      (flags & RENAME_EXCHANGE ? MCFS_RENAME_EXCHANGE : 0);
	ret = call_run(n, &c);
	if (!ret) {
		/* The names the kernel now knows the two inodes by. */
		struct mcfs_ino *src = name_find(n, parent, name);
		struct mcfs_ino *dst = name_find(n, newparent, newname);

		if (src)
			name_detach(n, src);
		if (dst)
			name_detach(n, dst);
		if (src)
			name_set(n, src, newparent, newname);
		if (dst && (flags & RENAME_EXCHANGE))
			name_set(n, dst, parent, name);
	}
	fuse_reply_err(req, -ret);
	call_fini(&c);
}

static void mcfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM);
}

static void mcfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	struct call c;
	int ret;

	(void)ino;
	call_init(&c, MCFS_MSG_STATFS);
	ret = call_run(node_of(req), &c);
	if (ret) {
		fuse_reply_err(req, -ret);
	} else {
		memset(&sv, 0, sizeof(sv));
		sv.f_bsize = 4096;
		sv.f_frsize = 4096;
		sv.f_blocks = c.resp.total / 4096;
		sv.f_bfree = c.resp.free / 4096;
		sv.f_bavail = sv.f_bfree;
		sv.f_files = c.resp.count + sv.f_bfree;
		sv.f_ffree = sv.f_bfree;
		sv.f_favail = sv.f_bfree;
		sv.f_namemax = MCFS_NAME_MAX;
		fuse_reply_statfs(req, &sv);
	}
	call_fini(&c);
}

/* ---- directories ---- */

static void mcfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mcfs_node *n = node_of(req);
	struct mcfs_dirh *d = calloc(1, sizeof(*d));

	(void)ino;
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	mcfs_buf_init(&d->page);
	d->next_off = UINT64_MAX;
	fi->fh = (uintptr_t)d;
	DL_APPEND(n->open_dirs, d); /* before the reply, which ends req */
	if (fuse_reply_open(req, fi) == -ENOENT) {
		DL_DELETE(n->open_dirs, d);
		mcfs_buf_fini(&d->page);
		free(d);
	}
}

/*
 * FUSE offsets: 1 after ".", 2 after "..", cookie + 2 after an entry. A
 * directory handle keeps the last page of entries, so a listing costs one
 * master call per page rather than one per kernel request.
 */
static int dir_fetch(struct mcfs_node *n, uint64_t ino, struct mcfs_dirh *d, uint64_t off)
{
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_READDIR);
	c.req.ino = ino;
	c.req.cookie = off - 2;
	c.req.count = 1024;
	ret = call_run(n, &c);
	if (!ret) {
		/* Keep the entries: the response buffer is reused by the next call. */
		d->page.len = 0;
		mcfs_buf_put(&d->page, c.resp.value.p, c.resp.value.len);
		if (d->page.oom)
			ret = -ENOMEM;
		mcfs_rd_init(&d->rd, d->page.data, d->page.len);
		d->next_off = off;
		d->eof = c.resp.flags & MCFS_READDIR_EOF;
	}
	call_fini(&c);
	return ret;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct mcfs_node *n = node_of(req);
	struct mcfs_dirh *d = (struct mcfs_dirh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t pos = 0;
	int ret = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (;;) {
		const char *name = NULL;
		char namebuf[MCFS_NAME_MAX + 1];
		struct fuse_entry_param e;
		struct mcfs_dirent de;
		struct mcfs_rd save;
		uint64_t next;
		size_t used;

		if (off < 2) {
			name = off == 0 ? "." : "..";
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = ino;
			e.attr.st_mode = S_IFDIR;
			next = (uint64_t)off + 1;
		} else {
			if ((uint64_t)off != d->next_off || (!mcfs_rd_left(&d->rd) && !d->eof)) {
				ret = dir_fetch(n, ino, d, (uint64_t)off);
				if (ret)
					break;
			}
			save = d->rd;
			ret = mcfs_dirent_next(&d->rd, &de);
			if (ret <= 0) {
				if (ret < 0)
					ret = -EIO;
				break;
			}
			memcpy(namebuf, de.name.p, de.name.len);
			namebuf[de.name.len] = 0;
			name = namebuf;
			fill_entry(n, &de.attr, &e);
			if (plus && S_ISREG(de.attr.mode)) {
				/* The kernel learns this name: where a known file is now. */
				struct mcfs_ino *known = ino_find(n, de.attr.ino);

				if (known && known->named &&
				    (known->parent != ino || strcmp(known->name, name))) {
					inval_entry_later(n, known->parent, known->name);
					name_set(n, known, ino, name);
				}
			}
			next = de.cookie + 2;
		}
		if (plus)
			used = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e,
						      (off_t)next);
		else
			used = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr,
						 (off_t)next);
		if (used > size - pos) {
			if (off >= 2)
				d->rd = save; /* it did not fit: serve it next time */
			break;
		}
		pos += used;
		off = (off_t)next;
		if (off > 2)
			d->next_off = next;
	}
	if (ret < 0 && pos == 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void mcfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void mcfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			     struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void mcfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mcfs_dirh *d = (struct mcfs_dirh *)(uintptr_t)fi->fh;

	(void)ino;
	DL_DELETE(node_of(req)->open_dirs, d);
	mcfs_buf_fini(&d->page);
	free(d);
	fuse_reply_err(req, 0);
}

void mcfs_fs_close_all(struct mcfs_node *n)
{
	struct mcfs_fh *fh, *ftmp;
	struct mcfs_dirh *d, *dtmp;
	unsigned int nf = 0, nd = 0;

	DL_FOREACH_SAFE2(n->open_fhs, fh, ftmp, onext)
	{
		if (fh->error)
			fh_unpublish_created(fh);
		fh_free(fh);
		nf++;
	}
	DL_FOREACH_SAFE(n->open_dirs, d, dtmp)
	{
		DL_DELETE(n->open_dirs, d);
		mcfs_buf_fini(&d->page);
		free(d);
		nd++;
	}
	if (nf || nd)
		mcfs_debug("unmounted with %u files and %u directories open: closed", nf, nd);
}

static void mcfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* ---- extended attributes ---- */

/* Only user.* lives in mcfs; the kernel's own probes (security.capability on every write) end here. */
static bool xattr_foreign(const char *name)
{
	return strncmp(name, "user.", 5) != 0;
}

static void reply_xattr_value(fuse_req_t req, size_t size, const struct mcfs_blob *v)
{
	if (size == 0)
		fuse_reply_xattr(req, v->len);
	else if (v->len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, (const char *)v->p, v->len);
}

/*
 * Copy version m of an object (a GET answer) to `count` more nodes: the
 * master picks them (REPL_START), we fill them from our replica or a
 * peer's, and REPL_END makes them complete.
 */
static int add_replicas(struct mcfs_node *n, const struct mcfs_msg *m, uint32_t count)
{
	struct mcfs_fh tmp = {.n = n, .ino = m->attr.ino};
	struct mcfs_ino in = {0};
	const uint8_t *src = NULL;
	struct call c;
	int ret;

	/* A throwaway handle finds the bytes: our segment, else a peer's. */
	tmp.in = &in;
	tmp.size = m->attr.size;
	tmp.version = m->attr.version;
	for (uint32_t i = 0; i < m->nrep && !src; i++)
		if (m->rep[i].node_id == n->node_id && n->seg)
			src = mcfs_seg_ptr(n->seg, m->rep[i].offset, tmp.size);
	if (!src && tmp.size) {
		tmp.remote = remote_new();
		if (!tmp.remote)
			return -ENOMEM;
		remote_set(tmp.remote, m);
		ret = fh_base(&tmp);
		if (ret)
			goto out_free;
		src = tmp.data;
	}
	call_init(&c, MCFS_MSG_REPL_START);
	c.req.ino = m->attr.ino;
	c.req.version = m->attr.version;
	c.req.count = count;
	ret = call_run(n, &c);
	if (!ret) {
		uint64_t id = c.resp.put_id;

		ret = copy_to_replicas(n, src, tmp.size, &c.resp, 0, NULL);
		call_fini(&c);
		call_init(&c, ret ? MCFS_MSG_PUT_REVOKE : MCFS_MSG_REPL_END);
		c.req.put_id = id;
		if (!ret)
			ret = call_run(n, &c);
		else
			call_run(n, &c);
	}
	call_fini(&c);
out_free:
	remote_free(tmp.remote);
	return ret;
}

/* Give back the hold one GET of (ino, version) acquired, at once. */
static void release_one(struct mcfs_node *n, uint64_t ino, uint64_t version)
{
	struct mcfs_buf b;
	struct call c;

	mcfs_buf_init(&b);
	mcfs_buf_put_u64(&b, ino);
	mcfs_buf_put_u64(&b, version);
	mcfs_buf_put_u32(&b, 1);
	if (!b.oom) {
		call_init(&c, MCFS_MSG_RELEASE);
		c.req.value.p = b.data;
		c.req.value.len = (uint32_t)b.len;
		(void)call_run(n, &c); /* on failure the hold ends with its lease */
		call_fini(&c);
	}
	mcfs_buf_fini(&b);
}

/*
 * Bring the published file ino up to its replica_num (copies made from
 * ours or a peer's). 0 when it has them now (or is no published file), or
 * the error that stopped it.
 */
static int replicate_ino(struct mcfs_node *n, uint64_t ino)
{
	struct call c;
	uint32_t have = 0, want;
	char val[16];
	int ret;

	call_init(&c, MCFS_MSG_GETXATTR);
	c.req.ino = ino;
	c.req.name = blob_str("user.mcfs.replica_num");
	ret = call_run(n, &c);
	if (!ret && c.resp.value.len >= sizeof(val))
		ret = -EINVAL;
	if (ret) {
		call_fini(&c);
		return ret == -ENOENT ? 0 : ret;
	}
	blob_cpy(val, sizeof(val), &c.resp.value);
	want = (uint32_t)strtoul(val, NULL, 10);
	call_fini(&c);
	call_init(&c, MCFS_MSG_GET);
	c.req.ino = ino;
	ret = call_run(n, &c);
	if (!ret && S_ISREG(c.resp.attr.mode) && c.resp.attr.version) {
		for (uint32_t i = 0; i < c.resp.nrep; i++)
			have += c.resp.rep[i].state == MCFS_REP_COMPLETE;
		if (want > have)
			ret = add_replicas(n, &c.resp, want - have);
		release_one(n, ino, c.resp.attr.version);
	} else if (ret == -ENOENT || ret == -EISDIR || ret == -EINVAL) {
		ret = 0; /* gone, or no file: nothing to copy */
	}
	call_fini(&c);
	return ret;
}

/* After replica_num was raised on a published file: bring it up to the new count. */
static void replicate(struct mcfs_node *n, uint64_t ino)
{
	int ret = replicate_ino(n, ino);

	if (ret)
		mcfs_warn("inode %" PRIu64 ": could not add replicas: %s", ino, strerror(-ret));
}

/*
 * Repairs. When the master's repair generation moves (a node left or
 * joined, a put left a copy out), this node copies again the objects whose
 * first replica it holds and that have fewer than their replica_num: the
 * master hands them out a page at a time (and forgets them), and the page
 * is worked through for at most REPAIR_BUDGET_MS per step, between the
 * lease thread's other duties. A round that could not copy everything (no
 * node with room) waits for the next change, when the master looks again.
 */
#define REPAIR_PAGE	 4096
#define REPAIR_BUDGET_MS 50

/*
 * Something changed (generation gen): once the page in hand is done, ask
 * the master again, whatever it said before.
 */
static void repair_restart(struct mcfs_node *n, uint64_t gen)
{
	n->repair_want = gen;
	n->repair_eof = false;
}

/*
 * One SOLE_LIST page (count entries after cookie, with flags) into page,
 * replacing what it held. 0 with *eof, or -errno (page left empty).
 */
static int sole_page(struct mcfs_node *n, uint64_t cookie, uint32_t count, uint32_t flags,
		     struct mcfs_buf *page, bool *eof)
{
	struct call c;
	int ret;

	page->len = 0;
	call_init(&c, MCFS_MSG_SOLE_LIST);
	c.req.cookie = cookie;
	c.req.count = count;
	c.req.flags = flags;
	ret = call_run(n, &c);
	if (!ret) {
		*eof = c.resp.flags & MCFS_READDIR_EOF;
		mcfs_buf_put(page, c.resp.value.p, c.resp.value.len);
		if (page->oom) {
			page->oom = false;
			page->len = 0;
			ret = -ENOMEM;
		}
	}
	call_fini(&c);
	return ret;
}

/* The next page of objects to repair. false: none for now (asked again next step). */
static bool repair_fetch(struct mcfs_node *n)
{
	int ret = sole_page(n, 0, REPAIR_PAGE, MCFS_SOLE_DEGRADED, &n->repair_page, &n->repair_eof);

	n->repair_off = 0;
	if (ret)
		n->repair_eof = false;
	return !ret && (n->repair_page.len || n->repair_eof);
}

static void repair_step(struct mcfs_node *n)
{
	uint64_t start = mcfs_now_ms();

	while (mcfs_now_ms() - start < REPAIR_BUDGET_MS) {
		struct mcfs_sole e;
		struct mcfs_rd rd;

		if (n->repair_off >= n->repair_page.len) {
			if (n->repair_eof)
				break;
			if (!repair_fetch(n))
				return;
			continue;
		}
		mcfs_rd_init(&rd, n->repair_page.data + n->repair_off,
			     n->repair_page.len - n->repair_off);
		if (mcfs_sole_next(&rd, &e) <= 0) {
			n->repair_off = n->repair_page.len; /* a bad page: ask again after it */
			continue;
		}
		n->repair_off += rd.off;
		if (replicate_ino(n, e.ino))
			n->repair_failed++;
		else
			n->repair_done++;
	}
	if (n->repair_off < n->repair_page.len || !n->repair_eof)
		return; /* goes on at the next step */
	if (n->repair_failed)
		mcfs_warn("repair: %u objects still have fewer replicas than they should (no "
			  "other node could take a copy); %u checked",
			  n->repair_failed, n->repair_done + n->repair_failed);
	else if (n->repair_done)
		mcfs_info("repair: %u objects checked and copied to bring them back to their "
			  "replica count",
			  n->repair_done);
	n->repair_seen = n->repair_want;
	n->repair_done = n->repair_failed = 0;
}

/*
 * Objects per SOLE_LIST page when leaving (32 bytes each: 512 KiB). Each
 * page costs the master a walk of every inode, whatever its size: a node
 * holding a million objects alone costs 62 walks, not 3,900 at 256.
 */
#define DRAIN_PAGE 16384

unsigned mcfs_fs_drain(struct mcfs_node *n)
{
	struct mcfs_buf page;
	uint64_t cookie = 0;
	unsigned lost = 0, moved = 0;
	bool eof = false;

	mcfs_buf_init(&page);
	while (!eof) {
		struct mcfs_sole e;
		struct mcfs_rd rd;
		struct call c;
		int ret;

		ret = sole_page(n, cookie, DRAIN_PAGE, 0, &page, &eof);
		if (ret) {
			mcfs_warn("cannot list the objects only this node holds: %s",
				  strerror(-ret));
			break;
		}
		mcfs_rd_init(&rd, page.data, page.len);
		if (!page.len && !eof)
			break; /* an empty page that is not the end: do not spin */
		while ((ret = mcfs_sole_next(&rd, &e)) > 0) {
			cookie = e.cookie;
			call_init(&c, MCFS_MSG_GET);
			c.req.ino = e.ino;
			ret = call_run(n, &c);
			if (!ret && c.resp.attr.version == e.version)
				ret = add_replicas(n, &c.resp, 1);
			call_fini(&c);
			if (ret && ret != -ENOENT)
				lost++;
			else if (!ret)
				moved++;
		}
		if (ret < 0)
			break;
	}
	mcfs_buf_fini(&page);
	if (moved || lost)
		mcfs_info("leaving: moved %u objects to other nodes, %u could not be moved", moved,
			  lost);
	return lost;
}

static void mcfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			  size_t size, int flags)
{
	struct call c;
	int ret;

	if (xattr_foreign(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (strlen(name) > MCFS_NAME_MAX) {
		fuse_reply_err(req, ERANGE);
		return;
	}
	if (size > MCFS_XATTR_MAX) {
		fuse_reply_err(req, E2BIG);
		return;
	}
	call_init(&c, MCFS_MSG_SETXATTR);
	c.req.ino = ino;
	c.req.name = blob_str(name);
	c.req.value.p = (const uint8_t *)value;
	c.req.value.len = (uint32_t)size;
	c.req.flags = (flags & XATTR_CREATE ? MCFS_XATTR_CREATE : 0) |
		      (flags & XATTR_REPLACE ? MCFS_XATTR_REPLACE : 0);
	ret = call_run(node_of(req), &c);
	call_fini(&c);
	if (!ret && !strcmp(name, "user.mcfs.replica_num"))
		replicate(node_of(req), ino);
	fuse_reply_err(req, -ret);
}

static void mcfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct call c;
	int ret;

	if (xattr_foreign(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (strlen(name) > MCFS_NAME_MAX) {
		fuse_reply_err(req, ERANGE);
		return;
	}
	call_init(&c, MCFS_MSG_GETXATTR);
	c.req.ino = ino;
	c.req.name = blob_str(name);
	ret = call_run(node_of(req), &c);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_xattr_value(req, size, &c.resp.value);
	call_fini(&c);
}

static void mcfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct call c;
	int ret;

	call_init(&c, MCFS_MSG_LISTXATTR);
	c.req.ino = ino;
	ret = call_run(node_of(req), &c);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_xattr_value(req, size, &c.resp.value);
	call_fini(&c);
}

static void mcfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct call c;

	if (xattr_foreign(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (strlen(name) > MCFS_NAME_MAX) {
		fuse_reply_err(req, ERANGE);
		return;
	}
	call_init(&c, MCFS_MSG_REMOVEXATTR);
	c.req.ino = ino;
	c.req.name = blob_str(name);
	simple_call(req, &c);
}

void mcfs_fs_fini(struct mcfs_node *n)
{
	struct mcfs_ino *in, *tmp;

	struct mcfs_inval *iv, *ivtmp;

	free(stream_buf);
	stream_buf = NULL;
	stream_buf_cap = 0;

	HASH_ITER(hh, n->inodes, in, tmp)
	ino_free(n, in);
	{
		struct mcfs_vhold *v, *vtmp;

		HASH_ITER(hh, n->vholds, v, vtmp)
		{
			HASH_DEL(n->vholds, v);
			free(v);
		}
		n->release_q = NULL;
	}
	LL_FOREACH_SAFE(n->invals, iv, ivtmp)
	free(iv);
	n->invals = NULL;
	mcfs_buf_fini(&n->repair_page);
}

/* ---- the lease thread ---- */

/* Renew every open handle's lease in one BATCH call. */
static void renew_leases(struct mcfs_node *n)
{
	struct mcfs_buf frames;
	struct call c;
	struct mcfs_fh *fh;
	uint32_t count = 0;

	mcfs_buf_init(&frames);
	pthread_mutex_lock(&n->lock);
	DL_FOREACH(n->leased, fh)
	{
		struct mcfs_msg m = {
		    .type = MCFS_MSG_LEASE, .ino = fh->ino, .version = fh->version};
		struct mcfs_msg g = {.type = MCFS_MSG_PUT_GROW, .put_id = fh->renew_put};

		/* PUT_GROW of size 0 renews a put without changing it. */
		if (fh->version) {
			m.req_id = ++count;
			if (mcfs_msg_encode(&m, &frames))
				break;
		}
		if (fh->renew_put) {
			g.req_id = ++count;
			if (mcfs_msg_encode(&g, &frames))
				break;
		}
		if (frames.len > (MCFS_FRAME_MAX >> 1))
			break; /* the rest waits for the next round; lease_ms/3 leaves time */
	}
	pthread_mutex_unlock(&n->lock);
	if (count) {
		call_init(&c, MCFS_MSG_BATCH);
		c.req.count = count;
		c.req.value.p = frames.data;
		c.req.value.len = (uint32_t)frames.len;
		if (call_run(n, &c))
			mcfs_warn("lease renewal failed; open files may lose their replicas");
		call_fini(&c);
	}
	mcfs_buf_fini(&frames);
}

/* Fetch the changes to our catalog's records (the master marks them; SYNC drains them). */
static void catalog_sync(struct mcfs_node *n)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		struct call c;
		int ret;

		call_init(&c, MCFS_MSG_SYNC);
		ret = call_run(n, &c);
		if (!ret && c.resp.value.len)
			ret = mcfs_catalog_apply(n->cat, c.resp.value.p, c.resp.value.len);
		if (ret && ret != -ENOTCONN && ret != -EPERM)
			mcfs_warn("catalog sync with the master failed: %s", strerror(-ret));
		if (ret || !(c.resp.flags & MCFS_SYNC_MORE)) {
			call_fini(&c);
			return;
		}
		call_fini(&c);
	}
}

static void *lease_main(void *arg)
{
	struct mcfs_node *n = arg;
	uint64_t last_hb = 0, last_renew = 0, last_tick = 0;
	bool tick_again = false;

	pthread_mutex_lock(&n->lock);
	while (!n->stopping) {
		uint64_t lease = n->lease_ms ? n->lease_ms : 10000;
		uint64_t wait = lease / 3 < 200 ? lease / 3 : 200;

		/* Catalogs trail the master by at most this (SYNC): what a crash could undo. */
		if (n->cat && wait > SYNC_PERIOD_MS)
			wait = SYNC_PERIOD_MS;
		struct timespec ts;
		bool release_due = false;

		if (n->release_q) {
			uint64_t due = n->release_since_ms + RELEASE_BATCH_MS, now = mcfs_now_ms();

			release_due = due <= now;
			wait = release_due ? 0 : due - now;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (!n->invals && !release_due)
			pthread_cond_timedwait(&n->stop_cond, &n->lock, &ts);
		if (n->stopping)
			break;
		inval_run(n);
		if (n->release_q && n->release_since_ms + RELEASE_BATCH_MS <= mcfs_now_ms()) {
			pthread_mutex_unlock(&n->lock);
			release_run(n);
			pthread_mutex_lock(&n->lock);
		}
		pthread_mutex_unlock(&n->lock);
		/*
		 * The embedded master's timed work, at most every TICK_MS (this
		 * thread also wakes for each RELEASE); an eviction round in
		 * progress asks to run again at once: a few steps, then yield.
		 */
		if (tick_again || mcfs_now_ms() - last_tick >= TICK_MS) {
			int steps = 0;

			while ((tick_again = mcfs_mc_tick(n->mc) == 0) && ++steps < 16)
				;
			last_tick = mcfs_now_ms();
		}
		if (n->cat)
			catalog_sync(n);
		if (mcfs_now_ms() - last_renew >= lease / 3) {
			renew_leases(n);
			last_renew = mcfs_now_ms();
		}
		if (mcfs_now_ms() - last_hb >= 1000) {
			struct call c;

			int ret;

			call_init(&c, MCFS_MSG_HEARTBEAT);
			c.req.node_id = n->node_id;
			ret = call_run(n, &c);
			if (!ret && c.resp.version != n->repair_want)
				repair_restart(
				    n, c.resp.version); /* something changed: from the start */
			call_fini(&c);
			if (ret == -EIO)
				mcfs_warn("heartbeat to the master failed");
			else if (ret)
				mcfs_mc_rejoin(n->mc); /* dropped while unreachable: join again */
			last_hb = mcfs_now_ms();
		}
		if (n->repair_want != n->repair_seen && n->seg)
			repair_step(n);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int mcfs_lease_start(struct mcfs_node *n)
{
	int ret;

	n->stopping = false;
	ret = pthread_create(&n->lease_thread, NULL, lease_main, n);
	return -ret;
}

void mcfs_lease_stop(struct mcfs_node *n)
{
	pthread_mutex_lock(&n->lock);
	n->stopping = true;
	pthread_cond_signal(&n->stop_cond);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->lease_thread, NULL);
}

const struct fuse_lowlevel_ops mcfs_fs_ops = {
    .init = mcfs_init,
    .lookup = mcfs_lookup,
    .getattr = mcfs_getattr,
    .setattr = mcfs_setattr,
    .readlink = mcfs_readlink,
    .mknod = mcfs_mknod,
    .mkdir = mcfs_mkdir,
    .unlink = mcfs_unlink,
    .rmdir = mcfs_rmdir,
    .symlink = mcfs_symlink,
    .rename = mcfs_rename,
    .link = mcfs_link,
    .open = mcfs_open,
    .read = mcfs_read,
    .write = mcfs_write,
    .flush = mcfs_flush,
    .release = mcfs_release,
    .fsync = mcfs_fsync,
    .opendir = mcfs_opendir,
    .readdir = mcfs_readdir,
    .readdirplus = mcfs_readdirplus,
    .releasedir = mcfs_releasedir,
    .fsyncdir = mcfs_fsyncdir,
    .statfs = mcfs_statfs,
    .setxattr = mcfs_setxattr,
    .getxattr = mcfs_getxattr,
    .listxattr = mcfs_listxattr,
    .removexattr = mcfs_removexattr,
    .create = mcfs_create,
    .fallocate = mcfs_fallocate,
};
