// SPDX-License-Identifier: Apache-2.0
/*
 * The master core (see master.h): decodes one request frame, applies it to
 * the namespace (ns.c), the node registry, the puts in flight and the object
 * table, and encodes the response. docs/protocol.md is the contract for
 * every message; this file is its implementation.
 *
 * Objects live inside their file's inode (one replica for now). When a new
 * version is published or the file goes away, the old object is retired:
 * freed at once when no read lease holds it, else kept in a table by
 * (ino, version) until mcfs_master_tick() sees its lease end, so readers
 * that opened it keep reading valid bytes.
 *
 * Versions come from one master-wide counter at PUT_END (PUT_START answers
 * version 0), so a later publish always has a larger version.
 */
#include "meta/master_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"

#define EPOCH		      1
#define READDIR_DEFAULT_COUNT 1024
/* A READDIR response value stays under this (one entry is at most 339 bytes). */
#define READDIR_MAX_BYTES ((1u << 20) - 4096)
/*
 * A BATCH runs a sub-request only while its response so far leaves this much
 * room below MCFS_FRAME_MAX: no single response is larger (READDIR is capped
 * at 1 MiB, xattr values at 64 KiB). Later sub-requests get -EMSGSIZE, unrun.
 */
#define BATCH_SUB_ROOM (2u << 20)
/* mcfs_master_tick() asks to run again within this, even with nothing due. */
#define TICK_MAX_MS 1000
/* The allocator's own limit on live ranges per segment. */
#define MAX_RANGES (1u << 28)

void mcfs_master_conf_default(struct mcfs_master_conf *c)
{
	c->lease_ms = 10000;
	c->soft_pin_ttl_ms = 30 * 60 * 1000;
	c->max_soft_pin_ttl_ms = 24 * 60 * 60 * 1000;
	c->node_ttl_ms = 10000;
	c->high_watermark = 0.90;
	c->evict_ratio = 0.05;
	c->default_replicas = 1;
}

static uint64_t real_clock(void *arg)
{
	(void)arg;
	return mcfs_now_ms();
}

void mcfs_master_set_clock(struct mcfs_master *m, uint64_t (*clock)(void *arg), void *arg)
{
	m->clock_ms = clock ? clock : real_clock;
	m->clock_arg = clock ? arg : NULL;
}

uint64_t mcfs_master_pin_ttl(const struct mcfs_master *m)
{
	return m->conf.soft_pin_ttl_ms < m->conf.max_soft_pin_ttl_ms ? m->conf.soft_pin_ttl_ms
								     : m->conf.max_soft_pin_ttl_ms;
}

struct mcfs_node *mcfs_master_node(const struct mcfs_master *m, uint64_t id)
{
	return id < m->nodes_cap ? m->nodes[id] : NULL;
}

int mcfs_master_create(const struct mcfs_master_conf *c, struct mcfs_master **out)
{
	struct mcfs_master *m;
	int ret;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (c)
		m->conf = *c;
	else
		mcfs_master_conf_default(&m->conf);
	if (m->conf.default_replicas < 1 || m->conf.default_replicas > MCFS_MAX_REPLICAS) {
		ret = -EINVAL;
		goto out_free_master;
	}
	ret = mcfs_ns_init(&m->ns, mcfs_wall_ns());
	if (ret)
		goto out_free_master;
	m->ns.root->replica_num = (uint8_t)m->conf.default_replicas;
	mcfs_buf_init(&m->scratch);
	mcfs_buf_init(&m->batch);
	mcfs_master_set_clock(m, NULL, NULL);
	*out = m;
	return 0;

out_free_master:
	free(m);
	return ret;
}

static void node_free(struct mcfs_node *n)
{
	if (!n)
		return;
	mcfs_alloc_destroy(n->alloc);
	free(n->name);
	free(n->addr);
	free(n);
}

void mcfs_master_destroy(struct mcfs_master *m)
{
	struct mcfs_put *p, *ptmp;
	struct mcfs_retired *rt, *rtmp;

	if (!m)
		return;
	HASH_ITER(hh, m->puts, p, ptmp)
	{
		HASH_DEL(m->puts, p);
		free(p);
	}
	HASH_ITER(hh, m->retired, rt, rtmp)
	{
		HASH_DEL(m->retired, rt);
		free(rt);
	}
	for (uint64_t i = 0; i < m->nodes_cap; i++)
		node_free(m->nodes[i]);
	free(m->nodes);
	mcfs_ns_fini(&m->ns);
	mcfs_buf_fini(&m->scratch);
	mcfs_buf_fini(&m->batch);
	free(m);
}

int mcfs_master_sess_open(struct mcfs_master *m, struct mcfs_master_sess **out)
{
	struct mcfs_master_sess *s = calloc(1, sizeof(*s));

	(void)m;
	if (!s)
		return -ENOMEM;
	*out = s;
	return 0;
}

void mcfs_master_sess_close(struct mcfs_master *m, struct mcfs_master_sess *s)
{
	(void)m;
	free(s);
}

/* Objects and their space */

static void rep_free(struct mcfs_master *m, const struct mcfs_rep *rep)
{
	struct mcfs_node *n;

	if (!rep->pages)
		return;
	n = mcfs_master_node(m, rep->node_id);
	if (n && n->alloc && n->seg_id == rep->seg_id)
		mcfs_alloc_put(n->alloc, rep->handle);
}

static void obj_free(struct mcfs_master *m, const struct mcfs_obj *obj)
{
	if (obj->nrep)
		rep_free(m, &obj->rep);
}

/*
 * ino's object obj is replaced or its file is gone: free its space now if no
 * lease holds it, else when the lease ends (mcfs_master_tick).
 */
static void obj_retire(struct mcfs_master *m, uint64_t ino, const struct mcfs_obj *obj,
		       uint64_t now_ms)
{
	struct mcfs_retired *rt;

	if (!obj->version)
		return;
	if (obj->lease_ms <= now_ms) {
		obj_free(m, obj);
		return;
	}
	rt = calloc(1, sizeof(*rt));
	if (rt) {
		rt->key.ino = ino;
		rt->key.version = obj->version;
		rt->obj = *obj;
		HASH_ADD(hh, m->retired, key, sizeof(rt->key), rt);
		if (rt->hh.tbl)
			return;
		free(rt);
	}
	/* Freeing leased space could hand a reader someone else's bytes: leak it instead. */
	mcfs_err("out of memory retiring inode %llu version %llu; its %llu bytes stay reserved",
		 (unsigned long long)ino, (unsigned long long)obj->version,
		 (unsigned long long)mcfs_rep_len(&obj->rep));
}

static struct mcfs_retired *retired_find(struct mcfs_master *m, uint64_t ino, uint64_t version)
{
	struct mcfs_retired *rt, key;

	memset(&key, 0, sizeof(key));
	key.key.ino = ino;
	key.key.version = version;
	HASH_FIND(hh, m->retired, &key.key, sizeof(key.key), rt);
	return rt;
}

/* Take a file, symlink or empty directory out of the namespace. */
static void inode_remove(struct mcfs_req *r, struct mcfs_inode *in)
{
	if (S_ISREG(in->mode))
		obj_retire(r->m, in->ino, &in->u.file.obj, r->now_ms);
	mcfs_ns_delete(&r->m->ns, in, r->now_ns);
}

static void put_free(struct mcfs_master *m, struct mcfs_put *p)
{
	struct mcfs_node *n = mcfs_master_node(m, p->node_id);

	if (p->has_range && n && n->alloc)
		mcfs_alloc_put(n->alloc, p->ext.handle);
	HASH_DEL(m->puts, p);
	free(p);
}

static bool on_node(const struct mcfs_obj *obj, uint64_t node_id)
{
	return obj->nrep && obj->rep.node_id == node_id;
}

/*
 * A node leaves: its puts end, its retired objects go, and so does every file
 * whose object lives only on it or that it created and never published.
 * Their space goes with its allocator.
 */
static void node_remove(struct mcfs_master *m, struct mcfs_node *n, int64_t now_ns)
{
	struct mcfs_put *p, *ptmp;
	struct mcfs_retired *rt, *rtmp;
	struct mcfs_inode *in;
	size_t pos = 0, gone = 0;

	HASH_ITER(hh, m->puts, p, ptmp)
	{
		if (p->node_id == n->id) {
			HASH_DEL(m->puts, p);
			free(p);
		}
	}
	HASH_ITER(hh, m->retired, rt, rtmp)
	{
		if (on_node(&rt->obj, n->id)) {
			HASH_DEL(m->retired, rt);
			free(rt);
		}
	}
	while ((in = mcfs_ptab_next(&m->ns.by_ino, &pos))) {
		if (!S_ISREG(in->mode))
			continue;
		if (in->flags & MCFS_I_PENDING ? in->u.file.creator == n->id
					       : on_node(&in->u.file.obj, n->id)) {
			/* Its space goes with the allocator below. */
			mcfs_ns_delete(&m->ns, in, now_ns);
			pos--; /* the slot may now hold an element not seen yet */
			gone++;
		}
	}
	mcfs_info("node %s (id %llu) left; %zu files went with it", n->name,
		  (unsigned long long)n->id, gone);
	m->nodes[n->id] = NULL;
	node_free(n);
}

/* Requests */

static bool valid_name(struct mcfs_blob b)
{
	if (!b.len || memchr(b.p, '/', b.len) || memchr(b.p, '\0', b.len))
		return false;
	if (b.p[0] == '.' && (b.len == 1 || (b.len == 2 && b.p[1] == '.')))
		return false;
	return true;
}

static bool valid_text(struct mcfs_blob b, bool empty_ok)
{
	return (b.len || empty_ok) && !memchr(b.p ? (const void *)b.p : "", '\0', b.len);
}

static void fill_attr(struct mcfs_attr *a, const struct mcfs_inode *in)
{
	a->ino = in->ino;
	a->mode = in->mode;
	a->uid = in->uid;
	a->gid = in->gid;
	a->nlink = mcfs_ns_nlink(in);
	a->atime_ns = in->atime_ns;
	a->mtime_ns = in->mtime_ns;
	a->ctime_ns = in->ctime_ns;
	a->size = 0;
	a->version = 0;
	a->flags = 0;
	if (S_ISREG(in->mode)) {
		a->size = in->u.file.obj.size;
		a->version = in->u.file.obj.version;
		if (in->flags & MCFS_I_PENDING)
			a->flags |= MCFS_ATTR_PENDING;
	} else if (S_ISLNK(in->mode)) {
		a->size = in->u.lnk.len;
	}
}

static void fill_rep(const struct mcfs_master *m, struct mcfs_replica *out,
		     const struct mcfs_rep *rep)
{
	const struct mcfs_node *n = mcfs_master_node(m, rep->node_id);

	out->node_id = rep->node_id;
	out->seg_id = rep->seg_id;
	out->tier = rep->tier;
	out->state = rep->state;
	out->offset = mcfs_rep_offset(rep);
	out->len = mcfs_rep_len(rep);
	out->rkey = 0;
	out->addr.p = n ? (const uint8_t *)n->addr : NULL;
	out->addr.len = n ? (uint32_t)strlen(n->addr) : 0;
}

static int get_inode(struct mcfs_req *r, uint64_t ino, struct mcfs_inode **out)
{
	struct mcfs_inode *in = mcfs_ns_get(&r->m->ns, ino);

	if (!in || !mcfs_master_visible(r, in))
		return -ENOENT;
	*out = in;
	return 0;
}

static int get_dir(struct mcfs_req *r, uint64_t ino, struct mcfs_inode **out)
{
	int ret = get_inode(r, ino, out);

	if (!ret && !S_ISDIR((*out)->mode))
		ret = -ENOTDIR;
	return ret;
}

static struct mcfs_inode *lookup_visible(struct mcfs_req *r, const struct mcfs_inode *dir,
					 struct mcfs_blob name)
{
	struct mcfs_inode *in = mcfs_ns_lookup(&r->m->ns, dir, (const char *)name.p, name.len);

	return in && mcfs_master_visible(r, in) ? in : NULL;
}

static int nodes_reserve(struct mcfs_master *m, uint64_t id)
{
	uint64_t cap = m->nodes_cap ? m->nodes_cap : 8;
	struct mcfs_node **v;

	if (id < m->nodes_cap)
		return 0;
	while (cap <= id)
		cap *= 2;
	v = realloc(m->nodes, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(v + m->nodes_cap, 0, (cap - m->nodes_cap) * sizeof(*v));
	m->nodes = v;
	m->nodes_cap = cap;
	return 0;
}

static int do_hello(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_master *m = r->m;
	struct mcfs_node *n;
	int ret;

	if (q->proto != MCFS_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (r->node)
		return -EISCONN;
	if (!valid_text(q->name, false) || !valid_text(q->name2, true))
		return -EINVAL;
	ret = nodes_reserve(m, m->last_node_id + 1);
	if (ret)
		return ret;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	ret = -ENOMEM;
	n->name = strndup(q->name.p ? (const char *)q->name.p : "", q->name.len);
	n->addr = strndup(q->name2.p ? (const char *)q->name2.p : "", q->name2.len);
	if (!n->name || !n->addr)
		goto out_free_node;
	if (q->size) {
		uint64_t ranges = q->size / MCFS_ALLOC_ALIGN;

		ret = mcfs_alloc_create(
		    q->size, ranges < MAX_RANGES ? (uint32_t)ranges : MAX_RANGES, &n->alloc);
		if (ret)
			goto out_free_node;
		n->seg_id = ++m->last_seg_id;
	}
	n->id = ++m->last_node_id;
	n->last_seen_ms = r->now_ms;
	m->nodes[n->id] = n;
	r->s->node_id = n->id;
	mcfs_info("node %s (id %llu) joined from %s with %llu bytes", n->name,
		  (unsigned long long)n->id, *n->addr ? n->addr : "this process",
		  (unsigned long long)q->size);
	r->out->node_id = n->id;
	r->out->proto = MCFS_PROTO_VERSION;
	return 0;

out_free_node:
	node_free(n);
	return ret;
}

static int do_heartbeat(struct mcfs_req *r)
{
	struct mcfs_node *n = mcfs_master_node(r->m, r->in->node_id);

	if (!n)
		return -ENOENT;
	n->last_seen_ms = r->now_ms;
	return 0;
}

static int do_bye(struct mcfs_req *r)
{
	uint64_t id = r->in->node_id ? r->in->node_id : r->caller;

	if (id != r->caller)
		return -EPERM;
	node_remove(r->m, r->node, r->now_ns);
	r->s->node_id = 0;
	r->node = NULL;
	r->caller = 0;
	return 0;
}

static int do_statfs(struct mcfs_req *r)
{
	struct mcfs_master *m = r->m;
	struct mcfs_alloc_stats st;

	r->out->total = 0;
	r->out->free = 0;
	for (uint64_t i = 0; i < m->nodes_cap; i++) {
		if (!m->nodes[i] || !m->nodes[i]->alloc)
			continue;
		mcfs_alloc_stats(m->nodes[i]->alloc, &st);
		r->out->total += st.size;
		r->out->free += st.free;
	}
	r->out->count = m->ns.ninodes > UINT32_MAX ? UINT32_MAX : (uint32_t)m->ns.ninodes;
	return 0;
}

static int do_lookup(struct mcfs_req *r)
{
	struct mcfs_inode *dir, *in;
	int ret = get_dir(r, r->in->ino, &dir);

	if (ret)
		return ret;
	if (!valid_name(r->in->name))
		return -EINVAL;
	in = lookup_visible(r, dir, r->in->name);
	if (!in)
		return -ENOENT;
	fill_attr(&r->out->attr, in);
	return 0;
}

static int do_getattr(struct mcfs_req *r)
{
	struct mcfs_inode *in;
	int ret = get_inode(r, r->in->ino, &in);

	if (ret)
		return ret;
	fill_attr(&r->out->attr, in);
	return 0;
}

#define SET_ALL                                                                                    \
	(MCFS_SET_MODE | MCFS_SET_UID | MCFS_SET_GID | MCFS_SET_ATIME | MCFS_SET_MTIME |           \
	 MCFS_SET_ATIME_NOW | MCFS_SET_MTIME_NOW)

static int do_setattr(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in;
	int ret = get_inode(r, q->ino, &in);

	if (ret)
		return ret;
	if (q->valid & ~SET_ALL)
		return -EINVAL;
	if (q->valid & MCFS_SET_MODE)
		in->mode = (in->mode & S_IFMT) | (q->mode & 07777);
	if (q->valid & MCFS_SET_UID)
		in->uid = q->uid;
	if (q->valid & MCFS_SET_GID)
		in->gid = q->gid;
	if (q->valid & MCFS_SET_ATIME_NOW)
		in->atime_ns = r->now_ns;
	else if (q->valid & MCFS_SET_ATIME)
		in->atime_ns = q->atime_ns;
	if (q->valid & MCFS_SET_MTIME_NOW)
		in->mtime_ns = r->now_ns;
	else if (q->valid & MCFS_SET_MTIME)
		in->mtime_ns = q->mtime_ns;
	in->ctime_ns = r->now_ns;
	fill_attr(&r->out->attr, in);
	return 0;
}

/* The parent directory and the free name for a new entry. */
static int new_entry(struct mcfs_req *r, struct mcfs_inode **dir)
{
	int ret = get_dir(r, r->in->ino, dir);

	if (ret)
		return ret;
	if (!valid_name(r->in->name))
		return -EINVAL;
	/* A name taken by another node's unpublished file is taken all the same. */
	if (mcfs_ns_lookup(&r->m->ns, *dir, (const char *)r->in->name.p, r->in->name.len))
		return -EEXIST;
	return 0;
}

static void inherit(struct mcfs_inode *in, const struct mcfs_inode *dir)
{
	in->replica_num = dir->replica_num;
	in->flags |= dir->flags & (MCFS_I_SOFT_PIN | MCFS_I_HARD_PIN);
}

static int do_mkdir(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *dir, *in;
	int ret = new_entry(r, &dir);

	if (!ret)
		ret = mcfs_ns_create(&r->m->ns, dir, (const char *)q->name.p, q->name.len,
				     S_IFDIR | (q->mode & 07777), q->uid, q->gid, NULL, 0,
				     r->now_ns, &in);
	if (ret)
		return ret;
	inherit(in, dir);
	fill_attr(&r->out->attr, in);
	return 0;
}

static int do_create(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *dir, *in;
	int ret = new_entry(r, &dir);

	if (ret == -EEXIST) {
		in = mcfs_ns_lookup(&r->m->ns, dir, (const char *)q->name.p, q->name.len);
		if (!mcfs_master_visible(r, in) || (q->flags & MCFS_CREATE_EXCL))
			return -EEXIST;
		if (S_ISDIR(in->mode))
			return -EISDIR;
		if (!S_ISREG(in->mode))
			return -EEXIST;
		fill_attr(&r->out->attr, in);
		return 0;
	}
	if (!ret)
		ret = mcfs_ns_create(&r->m->ns, dir, (const char *)q->name.p, q->name.len,
				     S_IFREG | (q->mode & 07777), q->uid, q->gid, NULL, 0,
				     r->now_ns, &in);
	if (ret)
		return ret;
	inherit(in, dir);
	in->flags |= MCFS_I_PENDING;
	in->u.file.creator = (uint32_t)r->caller;
	fill_attr(&r->out->attr, in);
	return 0;
}

static int do_symlink(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *dir, *in;
	int ret = new_entry(r, &dir);

	if (ret)
		return ret;
	if (!valid_text(q->value, false))
		return -EINVAL;
	ret =
	    mcfs_ns_create(&r->m->ns, dir, (const char *)q->name.p, q->name.len, S_IFLNK | 0777,
			   q->uid, q->gid, (const char *)q->value.p, q->value.len, r->now_ns, &in);
	if (ret)
		return ret;
	fill_attr(&r->out->attr, in);
	return 0;
}

static int do_readlink(struct mcfs_req *r)
{
	struct mcfs_inode *in;
	int ret = get_inode(r, r->in->ino, &in);

	if (ret)
		return ret;
	if (!S_ISLNK(in->mode))
		return -EINVAL;
	r->out->value.p = (const uint8_t *)in->u.lnk.target;
	r->out->value.len = in->u.lnk.len;
	return 0;
}

/* The visible entry named by the request's (ino, name). */
static int old_entry(struct mcfs_req *r, struct mcfs_inode **out)
{
	struct mcfs_inode *dir;
	int ret = get_dir(r, r->in->ino, &dir);

	if (ret)
		return ret;
	if (!valid_name(r->in->name))
		return -EINVAL;
	*out = lookup_visible(r, dir, r->in->name);
	return *out ? 0 : -ENOENT;
}

static int do_unlink(struct mcfs_req *r)
{
	struct mcfs_inode *in;
	int ret = old_entry(r, &in);

	if (ret)
		return ret;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	inode_remove(r, in);
	return 0;
}

static int do_rmdir(struct mcfs_req *r)
{
	struct mcfs_inode *in;
	int ret = old_entry(r, &in);

	if (ret)
		return ret;
	if (!S_ISDIR(in->mode))
		return -ENOTDIR;
	if (in->u.dir.head)
		return -ENOTEMPTY;
	inode_remove(r, in);
	return 0;
}

/* May src take the place of dst (which exists)? POSIX rename's rules. */
static int may_replace(const struct mcfs_inode *src, const struct mcfs_inode *dst)
{
	if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
		return -ENOTDIR;
	if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
		return -EISDIR;
	if (S_ISDIR(dst->mode) && dst->u.dir.head)
		return -ENOTEMPTY;
	return 0;
}

/* mcfs_ns_move()'s callback: the rename's target goes, as in UNLINK or RMDIR. */
static void replace_target(void *arg, struct mcfs_inode *old)
{
	inode_remove(arg, old);
}

static int do_rename(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *src, *newdir, *dst;
	int ret;

	if ((q->flags & ~(MCFS_RENAME_NOREPLACE | MCFS_RENAME_EXCHANGE)) ||
	    (q->flags & MCFS_RENAME_NOREPLACE && q->flags & MCFS_RENAME_EXCHANGE))
		return -EINVAL;
	ret = old_entry(r, &src);
	if (ret)
		return ret;
	ret = get_dir(r, q->ino2, &newdir);
	if (ret)
		return ret;
	if (!valid_name(q->name2))
		return -EINVAL;
	dst = mcfs_ns_lookup(&r->m->ns, newdir, (const char *)q->name2.p, q->name2.len);
	if (dst == src)
		return 0;
	if (q->flags & MCFS_RENAME_EXCHANGE) {
		/* Another node's unpublished file is not there to exchange with. */
		if (!dst || !mcfs_master_visible(r, dst))
			return -ENOENT;
		if ((S_ISDIR(src->mode) && mcfs_ns_is_within(newdir, src)) ||
		    (S_ISDIR(dst->mode) && mcfs_ns_is_within(src->parent, dst)))
			return -EINVAL;
		return mcfs_ns_exchange(&r->m->ns, src, dst, r->now_ns);
	}
	if (dst && (q->flags & MCFS_RENAME_NOREPLACE))
		return -EEXIST;
	if (S_ISDIR(src->mode) && mcfs_ns_is_within(newdir, src))
		return -EINVAL;
	if (dst) {
		ret = may_replace(src, dst);
		if (ret)
			return ret;
	}
	return mcfs_ns_move(&r->m->ns, src, newdir, (const char *)q->name2.p, q->name2.len,
			    r->now_ns, replace_target, r);
}

static int do_readdir(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_buf *b = &r->m->scratch;
	uint32_t max = q->count ? q->count : READDIR_DEFAULT_COUNT, n = 0;
	struct mcfs_inode *dir, *e;
	struct mcfs_attr a;
	int ret = get_dir(r, q->ino, &dir);

	if (ret)
		return ret;
	for (e = mcfs_ns_resume(&r->m->ns, dir, q->cookie); e; e = e->next) {
		if (!mcfs_master_visible(r, e))
			continue;
		if (n == max || b->len + 12 + e->namelen + MCFS_ATTR_WIRE > READDIR_MAX_BYTES)
			break;
		fill_attr(&a, e);
		mcfs_dirent_put(b, e->seq, e->name, e->namelen, &a);
		n++;
	}
	if (b->oom)
		return -ENOMEM;
	r->out->count = n;
	r->out->flags = e ? 0 : MCFS_READDIR_EOF;
	r->out->value.p = b->data;
	r->out->value.len = (uint32_t)b->len;
	return 0;
}

static struct mcfs_put *put_find(struct mcfs_master *m, uint64_t id)
{
	struct mcfs_put *p;

	HASH_FIND(hh, m->puts, &id, sizeof(id), p);
	return p;
}

/* The put named by the request, if it is the caller's. */
static int own_put(struct mcfs_req *r, struct mcfs_put **out)
{
	struct mcfs_put *p = put_find(r->m, r->in->put_id);

	if (!p)
		return -ENOENT;
	if (p->node_id != r->caller)
		return -EPERM;
	*out = p;
	return 0;
}

static void put_replicas(struct mcfs_req *r, const struct mcfs_put *p)
{
	struct mcfs_rep rep = {0};

	if (!p->has_range) {
		r->out->nrep = 0;
		return;
	}
	rep.node_id = (uint32_t)p->node_id;
	rep.seg_id = r->node->seg_id;
	rep.page = (uint32_t)(p->ext.offset / MCFS_ALLOC_ALIGN);
	rep.pages = (uint32_t)(p->ext.len / MCFS_ALLOC_ALIGN);
	rep.tier = MCFS_TIER_DRAM;
	rep.state = MCFS_REP_PENDING;
	r->out->nrep = 1;
	fill_rep(r->m, &r->out->rep[0], &rep);
}

static int do_put_start(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_master *m = r->m;
	struct mcfs_inode *in;
	struct mcfs_put *p;
	int ret = get_inode(r, q->ino, &in);

	if (ret)
		return ret;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	if (q->size && !r->node->alloc)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (q->size) {
		ret = mcfs_alloc_get(r->node->alloc, q->size, &p->ext);
		if (ret)
			goto out_free_put;
		p->has_range = true;
	}
	p->id = m->last_put_id + 1;
	p->ino = in->ino;
	p->node_id = r->caller;
	HASH_ADD(hh, m->puts, id, sizeof(p->id), p);
	if (!p->hh.tbl) {
		ret = -ENOMEM;
		goto out_free_range;
	}
	m->last_put_id = p->id;
	r->out->put_id = p->id;
	r->out->version = 0; /* assigned at PUT_END */
	put_replicas(r, p);
	return 0;

out_free_range:
	if (p->has_range)
		mcfs_alloc_put(r->node->alloc, p->ext.handle);
out_free_put:
	free(p);
	return ret;
}

static int do_put_grow(struct mcfs_req *r)
{
	struct mcfs_alloc *a = r->node->alloc;
	struct mcfs_put *p;
	int ret = own_put(r, &p);

	if (ret)
		return ret;
	if (!r->in->size)
		return -EINVAL;
	if (!a)
		return -ENOSPC;
	if (p->has_range) {
		ret = mcfs_alloc_resize(a, &p->ext, r->in->size);
	} else {
		ret = mcfs_alloc_get(a, r->in->size, &p->ext);
		p->has_range = !ret;
	}
	if (ret)
		return ret;
	put_replicas(r, p);
	return 0;
}

static int do_put_end(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_master *m = r->m;
	struct mcfs_inode *in;
	struct mcfs_obj *obj;
	struct mcfs_put *p;
	int ret = own_put(r, &p);

	if (ret)
		return ret;
	if (q->size > (p->has_range ? p->ext.len : 0))
		return -EINVAL;
	in = mcfs_ns_get(&m->ns, p->ino);
	if (!in) {
		/* Unlinked while it was written: nothing to publish into. */
		put_free(m, p);
		return -ENOENT;
	}
	if (p->has_range && !q->size) {
		mcfs_alloc_put(r->node->alloc, p->ext.handle);
		p->has_range = false;
	} else if (p->has_range && q->size < p->ext.len) {
		/* Shrinking in place cannot fail; if it did, the range just stays larger. */
		(void)mcfs_alloc_resize(r->node->alloc, &p->ext, q->size);
	}

	obj = &in->u.file.obj;
	obj_retire(m, in->ino, obj, r->now_ms);
	memset(obj, 0, sizeof(*obj));
	obj->version = ++m->last_version;
	obj->size = q->size;
	obj->crc = q->crc;
	obj->nrep = 1;
	obj->rep.node_id = (uint32_t)p->node_id;
	obj->rep.seg_id = r->node->seg_id;
	obj->rep.tier = MCFS_TIER_DRAM;
	obj->rep.state = MCFS_REP_COMPLETE;
	if (p->has_range) {
		obj->rep.page = (uint32_t)(p->ext.offset / MCFS_ALLOC_ALIGN);
		obj->rep.pages = (uint32_t)(p->ext.len / MCFS_ALLOC_ALIGN);
		obj->rep.handle = p->ext.handle;
	}
	in->flags &= (uint8_t)~MCFS_I_PENDING;
	in->mtime_ns = in->ctime_ns = r->now_ns;
	in->u.file.pin_ms = in->flags & MCFS_I_SOFT_PIN ? r->now_ms + mcfs_master_pin_ttl(m) : 0;
	/* The range now belongs to the object. */
	p->has_range = false;
	put_free(m, p);
	fill_attr(&r->out->attr, in);
	return 0;
}

static int do_put_revoke(struct mcfs_req *r)
{
	struct mcfs_put *p;
	int ret = own_put(r, &p);

	if (ret)
		return ret;
	put_free(r->m, p);
	return 0;
}

static void lease_extend(struct mcfs_req *r, struct mcfs_obj *obj)
{
	uint64_t deadline = r->now_ms + r->m->conf.lease_ms;

	if (obj->lease_ms < deadline)
		obj->lease_ms = deadline;
}

static int do_get(struct mcfs_req *r)
{
	struct mcfs_inode *in;
	struct mcfs_obj *obj;
	int ret = get_inode(r, r->in->ino, &in);

	if (ret)
		return ret;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	fill_attr(&r->out->attr, in);
	obj = &in->u.file.obj;
	if (!obj->version)
		return 0; /* the creator's own pending file: nothing to read yet */
	lease_extend(r, obj);
	r->out->crc = obj->crc;
	r->out->lease_ms = r->m->conf.lease_ms;
	r->out->nrep = obj->nrep;
	if (obj->nrep)
		fill_rep(r->m, &r->out->rep[0], &obj->rep);
	return 0;
}

static int do_lease(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in = mcfs_ns_get(&r->m->ns, q->ino);
	struct mcfs_retired *rt;
	struct mcfs_obj *obj = NULL;

	if (!q->version)
		return -ENOENT;
	if (in && S_ISREG(in->mode) && in->u.file.obj.version == q->version) {
		obj = &in->u.file.obj;
	} else {
		rt = retired_find(r->m, q->ino, q->version);
		if (rt)
			obj = &rt->obj;
	}
	if (!obj)
		return -ENOENT;
	lease_extend(r, obj);
	r->out->lease_ms = r->m->conf.lease_ms;
	return 0;
}

static int run_one(struct mcfs_master *m, struct mcfs_master_sess *s, const struct mcfs_msg *q,
		   bool in_batch, struct mcfs_buf *out);

/*
 * The next sub-request frame of a BATCH value at *off, decoded into sub.
 * A sub-frame must be a whole, well-formed request.
 */
static int batch_next(struct mcfs_blob v, size_t *off, struct mcfs_msg *sub)
{
	struct mcfs_frame_hdr h;
	size_t left = v.len - *off;
	int ret;

	ret = mcfs_frame_parse(v.p + *off, left, &h);
	if (ret == -EAGAIN)
		return -EBADMSG;
	if (ret)
		return ret;
	if (h.len > left - MCFS_FRAME_HDR)
		return -EBADMSG;
	ret = mcfs_msg_decode(&h, v.p + *off + MCFS_FRAME_HDR, sub);
	if (ret)
		return ret;
	if (sub->resp)
		return -EBADMSG;
	*off += MCFS_FRAME_HDR + h.len;
	return 0;
}

/* Check every sub-frame before any runs: a malformed one fails the whole frame, unrun. */
static int batch_check(const struct mcfs_msg *q)
{
	struct mcfs_msg sub;
	size_t off = 0;
	int ret;

	for (uint32_t i = 0; i < q->count; i++) {
		ret = batch_next(q->value, &off, &sub);
		if (ret)
			return ret;
	}
	return off == q->value.len ? 0 : -EBADMSG;
}

static int do_batch(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_master *m = r->m;
	struct mcfs_msg sub, err;
	size_t off = 0;
	int ret;

	m->batch.len = 0;
	m->batch.oom = false;
	for (uint32_t i = 0; i < q->count; i++) {
		ret = batch_next(q->value, &off, &sub);
		if (ret)
			return ret; /* cannot happen: batch_check() passed */
		if (m->batch.len + BATCH_SUB_ROOM <= MCFS_FRAME_MAX) {
			ret = run_one(m, r->s, &sub, true, &m->batch);
		} else {
			memset(&err, 0, sizeof(err));
			err.type = sub.type;
			err.resp = true;
			err.req_id = sub.req_id;
			err.status = -EMSGSIZE;
			err.epoch = EPOCH;
			ret = mcfs_msg_encode(&err, &m->batch);
		}
		if (ret)
			return ret;
	}
	r->out->count = q->count;
	r->out->value.p = m->batch.data;
	r->out->value.len = (uint32_t)m->batch.len;
	return 0;
}

struct op {
	int (*fn)(struct mcfs_req *r);
	bool anon; /* allowed before HELLO: reads, for tools */
};

static const struct op ops[] = {
    [MCFS_MSG_HELLO] = {do_hello, true},
    [MCFS_MSG_HEARTBEAT] = {do_heartbeat, false},
    [MCFS_MSG_BYE] = {do_bye, false},
    [MCFS_MSG_STATFS] = {do_statfs, true},
    [MCFS_MSG_LOOKUP] = {do_lookup, true},
    [MCFS_MSG_GETATTR] = {do_getattr, true},
    [MCFS_MSG_SETATTR] = {do_setattr, false},
    [MCFS_MSG_MKDIR] = {do_mkdir, false},
    [MCFS_MSG_CREATE] = {do_create, false},
    [MCFS_MSG_SYMLINK] = {do_symlink, false},
    [MCFS_MSG_READLINK] = {do_readlink, true},
    [MCFS_MSG_UNLINK] = {do_unlink, false},
    [MCFS_MSG_RMDIR] = {do_rmdir, false},
    [MCFS_MSG_RENAME] = {do_rename, false},
    [MCFS_MSG_READDIR] = {do_readdir, true},
    [MCFS_MSG_SETXATTR] = {mcfs_master_setxattr, false},
    [MCFS_MSG_GETXATTR] = {mcfs_master_getxattr, true},
    [MCFS_MSG_LISTXATTR] = {mcfs_master_listxattr, true},
    [MCFS_MSG_REMOVEXATTR] = {mcfs_master_removexattr, false},
    [MCFS_MSG_PUT_START] = {do_put_start, false},
    [MCFS_MSG_PUT_GROW] = {do_put_grow, false},
    [MCFS_MSG_PUT_END] = {do_put_end, false},
    [MCFS_MSG_PUT_REVOKE] = {do_put_revoke, false},
    [MCFS_MSG_GET] = {do_get, true},
    [MCFS_MSG_LEASE] = {do_lease, true},
    [MCFS_MSG_BATCH] = {do_batch, true},
};

/* Run request q and append its response to out. 0, or -ENOMEM when nothing could be appended. */
static int run_one(struct mcfs_master *m, struct mcfs_master_sess *s, const struct mcfs_msg *q,
		   bool in_batch, struct mcfs_buf *out)
{
	const struct op *op = q->type < sizeof(ops) / sizeof(ops[0]) ? &ops[q->type] : NULL;
	struct mcfs_msg resp;
	struct mcfs_req r;
	int ret;

	memset(&resp, 0, sizeof(resp));
	resp.type = q->type;
	resp.resp = true;
	resp.req_id = q->req_id;
	resp.epoch = EPOCH;
	r.m = m;
	r.s = s;
	r.now_ms = m->clock_ms(m->clock_arg);
	r.node = mcfs_master_node(m, s->node_id);
	if (r.node)
		r.node->last_seen_ms = r.now_ms; /* any request shows it alive */
	else
		s->node_id = 0; /* its node left */
	r.caller = s->node_id;
	r.now_ns = mcfs_wall_ns();
	r.in = q;
	r.out = &resp;
	m->scratch.len = 0;
	m->scratch.oom = false;

	if (!op || !op->fn)
		resp.status = -ENOTSUP; /* the decoder knows no more types than ops */
	else if (q->type == MCFS_MSG_BATCH && in_batch)
		resp.status = -EINVAL;
	else if (!op->anon && !r.node)
		resp.status = -EPERM;
	else
		resp.status = op->fn(&r);

	ret = mcfs_msg_encode(&resp, out);
	if (ret && !resp.status) {
		/* The answer did not fit or could not be built: say so instead. */
		resp.status = ret;
		ret = mcfs_msg_encode(&resp, out);
	}
	return ret;
}

int mcfs_master_handle(struct mcfs_master *m, struct mcfs_master_sess *s, const uint8_t *frame,
		       size_t len, struct mcfs_buf *out)
{
	struct mcfs_msg q;
	int ret = mcfs_msg_decode_frame(frame, len, &q);

	if (ret)
		return ret;
	if (q.resp)
		return -EBADMSG;
	if (q.type == MCFS_MSG_BATCH) {
		ret = batch_check(&q);
		if (ret)
			return ret;
	}
	return run_one(m, s, &q, false, out);
}

uint64_t mcfs_master_tick(struct mcfs_master *m, uint64_t now_ms)
{
	struct mcfs_retired *rt, *tmp;
	uint64_t next = TICK_MAX_MS;

	HASH_ITER(hh, m->retired, rt, tmp)
	{
		if (rt->obj.lease_ms <= now_ms) {
			obj_free(m, &rt->obj);
			HASH_DEL(m->retired, rt);
			free(rt);
		} else if (rt->obj.lease_ms - now_ms < next) {
			next = rt->obj.lease_ms - now_ms;
		}
	}
	/* Nodes silent past conf.node_ttl_ms are kept for now (last_seen_ms is recorded). */
	return next;
}
