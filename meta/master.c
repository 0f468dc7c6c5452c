// SPDX-License-Identifier: Apache-2.0
/*
 * The master core (see master.h): decodes one request frame, applies it to
 * the namespace (ns.c), the node registry, the puts in flight and the object
 * table, and encodes the response. docs/protocol.md is the contract for
 * every message; this file is its implementation.
 *
 * Objects live inside their file's inode, with their complete replicas, each
 * on a different node. When a new version is published or the file goes
 * away, the old object is retired: freed at once when no read lease holds
 * it, else kept in a table by (ino, version) until mcfs_master_tick() sees
 * its lease end, so readers that opened it keep reading valid bytes. A
 * replica dropped from a live object (replica_num lowered) waits the same
 * way, in a list.
 *
 * Versions come from one master-wide counter at PUT_END (PUT_START answers
 * version 0), so a later publish always has a larger version.
 *
 * Every replica handed out carries a grant signed with the master's secret
 * (transport/grant.h): read access until the object's lease deadline for
 * GET and LEASE, write access for a minute for the ranges a put fills.
 *
 * A node that leaves (BYE), falls silent past the node TTL, or says HELLO
 * again under the same name (it restarted) takes its segment with it: its
 * replicas vanish from their objects, objects left without one leave the
 * namespace, and puts writing to it fail at their end.
 *
 * Read leases are granted by LOOKUP, GET and LEASE and hold the object
 * against eviction and its space against reuse. A put its writer leaves
 * untouched past the put timeout is revoked by the tick (a writer that died
 * with its node is handled sooner, by the node TTL). When an allocation
 * finds no room, or the pool passes the high watermark, objects are
 * evicted (evict.c).
 */
#include "meta/master_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"

#define READDIR_DEFAULT_COUNT 1024
/* A READDIR response value stays under this (one entry is at most 339 bytes). */
#define READDIR_MAX_BYTES ((1u << 20) - 4096)
/* SOLE_LIST entries per response: by default, and at most (32 bytes each: 1 MiB). */
#define SOLE_DEFAULT_COUNT 1024
#define SOLE_MAX_COUNT	   32768
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
/* A write grant lasts the put timeout, or this long without one. */
#define WRITE_GRANT_MS 60000
/* Silent this long (three missed heartbeats), a node gets no new copies. */
#define NODE_SILENT_MS 3000

void mcfs_master_conf_default(struct mcfs_master_conf *c)
{
	c->lease_ms = 10000;
	c->soft_pin_ttl_ms = 30 * 60 * 1000;
	c->max_soft_pin_ttl_ms = 24 * 60 * 60 * 1000;
	c->node_ttl_ms = 10000;
	c->high_watermark = 0.90;
	c->evict_ratio = 0.05;
	c->default_replicas = 1;
	c->put_timeout_ms = 60000;
	c->poll_us = 50;
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
	ret = mcfs_grant_secret_init(m->grant_secret);
	if (ret)
		goto out_free_master;
	ret = mcfs_ns_init(&m->ns, mcfs_wall_ns());
	if (ret)
		goto out_free_master;
	m->ns.root->replica_num = 0; /* unset: files take their node's default */
	m->ns.changed = mcfs_master_ns_changed;
	m->ns.changed_arg = m;
	m->epoch = 1;
	/*
	 * Put ids, inode numbers and versions never repeat across runs of a
	 * master: a daemon may still hold a put id, or a file under an inode
	 * number and version, from the last run. With a store the high-water
	 * marks it keeps go further (mcfs_master_attach_store).
	 */
	{
		uint64_t us = (uint64_t)mcfs_wall_ns() / 1000;

		m->last_put_id = us << 10;
		m->last_version = us << 10;
		m->ns.last_id = us << 10;
	}
	mcfs_buf_init(&m->scratch);
	mcfs_buf_init(&m->rec);
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
	mcfs_master_dirty_free(n);
	free(n->degraded);
	free(n->name);
	free(n->addr);
	free(n);
}

void mcfs_master_destroy(struct mcfs_master *m)
{
	struct mcfs_put *p, *ptmp;
	struct mcfs_retired *rt, *rtmp;
	struct mcfs_dropped *d;

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
		mcfs_obj_fini(&rt->obj);
		free(rt);
	}
	while ((d = m->dropped)) {
		m->dropped = d->next;
		free(d);
	}
	for (uint64_t i = 0; i < m->nodes_cap; i++)
		node_free(m->nodes[i]);
	free(m->nodes);
	mcfs_evict_fini(&m->ev);
	mcfs_ns_fini(&m->ns);
	mcfs_buf_fini(&m->scratch);
	mcfs_buf_fini(&m->batch);
	mcfs_buf_fini(&m->rec);
	mcfs_master_expect_free(m);
	mcfs_master_holds_free(m);
	explicit_bzero(m->grant_secret, sizeof(m->grant_secret));
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

/* Give a range back to its node's allocator; a range of a node gone went with it. */
static void range_free(struct mcfs_master *m, uint64_t node_id, uint32_t seg_id,
		       const struct mcfs_extent *ext)
{
	struct mcfs_node *n = mcfs_master_node(m, node_id);
	int ret;

	if (!n || !n->alloc || n->seg_id != seg_id)
		return;
	ret = mcfs_alloc_put(n->alloc, ext);
	if (ret)
		mcfs_err("freeing [%llu, +%llu) on node %s: %s; the range stays reserved",
			 (unsigned long long)ext->offset, (unsigned long long)ext->len, n->name,
			 strerror(-ret));
}

static void rep_free(struct mcfs_master *m, const struct mcfs_rep *rep)
{
	const struct mcfs_node *n = mcfs_master_node(m, rep->node_id);
	struct mcfs_extent ext = mcfs_rep_ext(rep);

	if (rep->pages && n)
		range_free(m, rep->node_id, n->seg_id, &ext);
}

/* Free every replica's space and the list. */
static void obj_release(struct mcfs_master *m, struct mcfs_obj *obj)
{
	const struct mcfs_rep *reps = mcfs_obj_creps(obj);

	for (uint8_t i = 0; i < obj->nrep; i++)
		rep_free(m, &reps[i]);
	mcfs_obj_fini(obj);
}

/* The retired copy, kept until the lease ends (mcfs_master_tick), owns the replica list. */
void mcfs_master_obj_retire(struct mcfs_master *m, uint64_t ino, struct mcfs_obj *obj,
			    uint64_t now_ms)
{
	struct mcfs_retired *rt;

	if (!obj->version) {
		mcfs_obj_fini(obj);
		return;
	}
	mcfs_master_mark_obj(m, ino, obj); /* its holders drop it from their catalogs */
	if (!mcfs_master_held(m, ino, obj->version, now_ms)) {
		/* Nobody reads it (holds, master_hold.c): its space is free at once. */
		obj_release(m, obj);
		return;
	}
	rt = calloc(1, sizeof(*rt));
	if (rt) {
		rt->key.ino = ino;
		rt->key.version = obj->version;
		rt->obj = *obj;
		HASH_ADD(hh, m->retired, key, sizeof(rt->key), rt);
		if (rt->hh.tbl) {
			memset(obj, 0, sizeof(*obj));
			return;
		}
		free(rt);
	}
	/* Freeing leased space could hand a reader someone else's bytes: leak it instead. */
	mcfs_err("out of memory retiring inode %llu version %llu; its %llu bytes stay reserved",
		 (unsigned long long)ino, (unsigned long long)obj->version,
		 (unsigned long long)obj->size);
	mcfs_obj_fini(obj);
}

void mcfs_master_retired_free(struct mcfs_master *m, struct mcfs_retired *rt)
{
	HASH_DEL(m->retired, rt);
	obj_release(m, &rt->obj);
	free(rt);
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

/* rep leaves a live object: free its space when the object's lease ends. */
static void rep_defer_free(struct mcfs_master *m, const struct mcfs_rep *rep, uint64_t lease_ms,
			   uint64_t now_ms)
{
	const struct mcfs_node *n = mcfs_master_node(m, rep->node_id);
	struct mcfs_dropped *d;

	if (!rep->pages || !n)
		return; /* a node gone took its space with it */
	if (lease_ms <= now_ms) {
		rep_free(m, rep);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		mcfs_err("out of memory dropping a replica; its %llu bytes stay reserved",
			 (unsigned long long)mcfs_rep_len(rep));
		return;
	}
	d->free_ms = lease_ms;
	d->node_id = rep->node_id;
	d->seg_id = n->seg_id;
	d->page = rep->page;
	d->pages = rep->pages;
	d->next = m->dropped;
	m->dropped = d;
}

void mcfs_master_drop_reps(struct mcfs_req *r, struct mcfs_obj *obj, uint8_t keep)
{
	while (obj->nrep > keep) {
		uint8_t last = (uint8_t)(obj->nrep - 1);

		mcfs_master_mark(r->m, mcfs_obj_reps(obj)[last].node_id, r->in->ino);
		rep_defer_free(r->m, &mcfs_obj_reps(obj)[last], obj->lease_ms, r->now_ms);
		mcfs_obj_del_rep(obj, last);
	}
}

void mcfs_master_inode_remove(struct mcfs_master *m, struct mcfs_inode *in, uint64_t now_ms,
			      int64_t now_ns)
{
	if (S_ISREG(in->mode))
		mcfs_master_obj_retire(m, in->ino, &in->u.file.obj, now_ms);
	mcfs_ns_delete(&m->ns, in, now_ns);
}

/* Take a file, symlink or empty directory out of the namespace. */
static void inode_remove(struct mcfs_req *r, struct mcfs_inode *in)
{
	mcfs_master_inode_remove(r->m, in, r->now_ms, r->now_ns);
}

/* Free the ranges a put holds (the put itself stays). */
static void put_ranges_free(struct mcfs_master *m, struct mcfs_put *p)
{
	for (uint8_t i = 0; i < p->nrep; i++) {
		if (p->rep[i].has_range)
			range_free(m, p->rep[i].node_id, p->rep[i].seg_id, &p->rep[i].ext);
		p->rep[i].has_range = false;
	}
}

static void put_free(struct mcfs_master *m, struct mcfs_put *p)
{
	put_ranges_free(m, p);
	HASH_DEL(m->puts, p);
	free(p);
}

/* Is in a published file with fewer complete replicas than its replica_num? */
static bool file_short(const struct mcfs_inode *in)
{
	const struct mcfs_obj *obj = &in->u.file.obj;

	return S_ISREG(in->mode) && !(in->flags & MCFS_I_PENDING) && obj->version && obj->nrep &&
	       obj->nrep < (in->replica_num ? in->replica_num : 1);
}

/* File ino may be short of copies: node node_id (its first replica's) is to copy it again. */
static void degraded_add(struct mcfs_master *m, uint32_t node_id, uint64_t ino)
{
	struct mcfs_node *n = mcfs_master_node(m, node_id);

	if (!n)
		return;
	if (n->ndegraded == n->degraded_cap) {
		uint32_t cap = n->degraded_cap ? n->degraded_cap * 2 : 64;
		uint64_t *v = realloc(n->degraded, (size_t)cap * sizeof(*v));

		if (!v) {
			m->repair_scan = true; /* the next walk finds it */
			return;
		}
		n->degraded = v;
		n->degraded_cap = cap;
	}
	n->degraded[n->ndegraded++] = ino;
}

/* Build every node's degraded list afresh from a walk of all files. */
static void degraded_walk(struct mcfs_master *m)
{
	struct mcfs_inode *in;
	size_t pos = 0;

	for (uint64_t id = 1; id <= m->last_node_id; id++) {
		struct mcfs_node *n = mcfs_master_node(m, id);

		if (n)
			n->ndegraded = 0;
	}
	m->repair_scan = false;
	while ((in = mcfs_ptab_next(&m->ns.by_ino, &pos)))
		if (file_short(in))
			degraded_add(m, mcfs_obj_creps(&in->u.file.obj)->node_id, in->ino);
}

/*
 * Leave out of p the copies that hold nothing: those whose node left, and
 * rep[i] for each bit i of drop (copies its writer could not fill). The
 * others keep their order. Returns how many are left.
 *
 * A copy that failed may still arrive: a write that timed out against a
 * stalled peer sits in its socket, with a grant good for the put timeout,
 * and lands when the peer wakes. So its range is not handed out again
 * before that grant has expired.
 */
static uint8_t put_drop_reps(struct mcfs_master *m, struct mcfs_put *p, uint32_t drop,
			     uint64_t now_ms)
{
	uint64_t grant_ms = m->conf.put_timeout_ms ? m->conf.put_timeout_ms : WRITE_GRANT_MS;
	uint8_t n = 0;

	for (uint8_t i = 0; i < p->nrep; i++) {
		struct mcfs_put_rep *pr = &p->rep[i];

		if (pr->lost || (drop & (1u << i))) {
			struct mcfs_rep rep = {
			    .node_id = (uint32_t)pr->node_id,
			    .page = (uint32_t)(pr->ext.offset / MCFS_ALLOC_ALIGN),
			    .pages = (uint32_t)(pr->ext.len / MCFS_ALLOC_ALIGN),
			};

			if (pr->has_range)
				rep_defer_free(m, &rep, now_ms + grant_ms, now_ms);
			continue;
		}
		if (n != i)
			p->rep[n] = *pr;
		n++;
	}
	p->nrep = n;
	return n;
}

/* Forget obj's replicas on node id (its space went with the node). True if it had one. */
static bool obj_strip_node(struct mcfs_obj *obj, uint64_t id)
{
	bool had = false;

	for (uint8_t i = obj->nrep; i-- > 0;) {
		if (mcfs_obj_creps(obj)[i].node_id == id) {
			mcfs_obj_del_rep(obj, i);
			had = true;
		}
	}
	return had;
}

/*
 * Node n leaves (why says how, for the log): its puts end, puts writing to
 * it lose that copy, its replicas vanish from every object, and objects left with no
 * replica leave the namespace, as do the files it created and never
 * published. Its space goes with its allocator.
 */
static void node_remove(struct mcfs_master *m, struct mcfs_node *n, const char *why, int64_t now_ns)
{
	struct mcfs_put *p, *ptmp;
	struct mcfs_retired *rt, *rtmp;
	struct mcfs_dropped **dp, *d;
	struct mcfs_inode *in;
	size_t pos = 0, lost = 0, kept = 0, failed = 0;

	mcfs_master_hold_strip(m, n->id);
	HASH_ITER(hh, m->puts, p, ptmp)
	{
		if (p->node_id == n->id) {
			/* Its copies on other nodes are freed; its own space goes below. */
			put_free(m, p);
			continue;
		}
		for (uint8_t i = 0; i < p->nrep; i++) {
			if (p->rep[i].node_id == n->id) {
				p->rep[i].has_range = false;
				p->rep[i].lost = true;
				failed++;
			}
		}
	}
	HASH_ITER(hh, m->retired, rt, rtmp)
	{
		if (obj_strip_node(&rt->obj, n->id) && !rt->obj.nrep) {
			HASH_DEL(m->retired, rt);
			mcfs_obj_fini(&rt->obj);
			free(rt);
		}
	}
	for (dp = &m->dropped; (d = *dp);) {
		if (d->node_id == n->id) {
			*dp = d->next;
			free(d);
		} else {
			dp = &d->next;
		}
	}
	while ((in = mcfs_ptab_next(&m->ns.by_ino, &pos))) {
		struct mcfs_obj *obj = &in->u.file.obj;

		if (!S_ISREG(in->mode))
			continue;
		if (in->flags & MCFS_I_PENDING ? mcfs_file_creator(in) != n->id
					       : !obj_strip_node(obj, n->id))
			continue;
		if (!(in->flags & MCFS_I_PENDING) && obj->nrep) {
			kept++;
			continue;
		}
		mcfs_ns_delete(&m->ns, in, now_ns);
		pos--; /* the slot may now hold an element not seen yet */
		lost++;
	}
	mcfs_info("node %s (id %llu) dropped: %s; %zu files went with it, %zu kept a replica "
		  "elsewhere, %zu puts lost a copy on it",
		  n->name, (unsigned long long)n->id, why, lost, kept, failed);
	if (kept || failed)
		mcfs_master_repair_mark(m); /* copies to make again, on the nodes left */
	if (n->incarnation)
		m->dropped_inc[m->dropped_inc_next++ % MCFS_DROPPED_INCS] = n->incarnation;
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
	a->atime_ns = mcfs_inode_atime(in);
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

/* Describe rep in out, with a grant of access to its range until expiry_ms (wall clock). */
static void fill_rep(const struct mcfs_master *m, struct mcfs_replica *out,
		     const struct mcfs_rep *rep, uint8_t access, uint64_t expiry_ms)
{
	const struct mcfs_node *n = mcfs_master_node(m, rep->node_id);
	struct mcfs_grant g;

	out->node_id = rep->node_id;
	out->seg_id = n ? n->seg_id : 0;
	out->tier = rep->tier;
	out->state = rep->state;
	out->offset = mcfs_rep_offset(rep);
	out->len = mcfs_rep_len(rep);
	out->rkey = 0;
	out->addr.p = n ? (const uint8_t *)n->addr : NULL;
	out->addr.len = n ? (uint32_t)strlen(n->addr) : 0;
	memset(&g, 0, sizeof(g));
	g.node_id = out->node_id;
	g.seg_id = out->seg_id;
	g.access = access;
	g.offset = out->offset;
	g.len = out->len;
	g.expiry_ms = expiry_ms;
	mcfs_grant_sign(&g, m->grant_secret);
	out->access = access;
	out->expiry_ms = expiry_ms;
	out->mac = g.mac;
}

/* Answer obj's replicas, each with a read grant that lasts as long as its lease. */
static void obj_replicas(struct mcfs_req *r, const struct mcfs_obj *obj)
{
	const struct mcfs_rep *reps = mcfs_obj_creps(obj);
	uint64_t expiry = mcfs_grant_now_ms() + mcfs_master_ms_left(r, obj->lease_ms);

	r->out->nrep = obj->nrep;
	for (uint8_t i = 0; i < obj->nrep; i++)
		fill_rep(r->m, &r->out->rep[i], &reps[i], MCFS_GRANT_READ, expiry);
}

/* A read lease on obj until at least now + the lease TTL: no eviction, no reuse of its space. */
static void lease_extend(struct mcfs_req *r, struct mcfs_obj *obj)
{
	uint64_t deadline = r->now_ms + r->m->conf.lease_ms;

	if (obj->lease_ms < deadline)
		obj->lease_ms = deadline;
}

/* An access, for eviction's LRU order. */
static void touch(struct mcfs_req *r, struct mcfs_inode *in)
{
	in->lru = mcfs_lru_clock(r->now_ms);
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

/* The registered node named name, or NULL. */
static struct mcfs_node *node_by_name(const struct mcfs_master *m, struct mcfs_blob name)
{
	for (uint64_t i = 0; i < m->nodes_cap; i++) {
		struct mcfs_node *n = m->nodes[i];

		if (n && strlen(n->name) == name.len && !memcmp(n->name, name.p, name.len))
			return n;
	}
	return NULL;
}

/* Did this master drop the daemon run incarnation (and so it must not report)? */
static bool was_dropped(const struct mcfs_master *m, uint64_t incarnation)
{
	for (unsigned i = 0; i < MCFS_DROPPED_INCS; i++)
		if (m->dropped_inc[i] == incarnation)
			return true;
	return false;
}

static int do_hello(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_master *m = r->m;
	struct mcfs_node *n, *old;
	bool dropped;
	int ret;

	if (q->proto != MCFS_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (r->node)
		return -EISCONN;
	if (!valid_text(q->name, false) || !valid_text(q->name2, true))
		return -EINVAL;
	old = node_by_name(m, q->name);
	if (old && q->incarnation && old->incarnation == q->incarnation && old->size == q->size &&
	    !old->recovering) {
		/* The same daemon, reconnected (its connection broke): nothing changed. */
		old->last_seen_ms = r->now_ms;
		r->s->node_id = old->id;
		r->s->lost = false;
		r->node = old;
		r->caller = old->id;
		r->out->node_id = old->id;
		r->out->proto = MCFS_PROTO_VERSION;
		r->out->seg_id = old->seg_id;
		r->out->flags = MCFS_HELLO_RESUMED;
		r->out->value.p = m->grant_secret;
		r->out->value.len = sizeof(m->grant_secret);
		return 0;
	}
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
	n->incarnation = q->incarnation;
	n->size = q->size;
	n->syncs = (q->flags & MCFS_HELLO_REPORT) != 0;
	dropped = q->incarnation && was_dropped(m, q->incarnation);
	n->recovering = n->syncs && !dropped;
	/* Its name is still registered: the node restarted, and what it held is gone. */
	if (old)
		node_remove(m, old, "it restarted (HELLO again)", r->now_ns);
	n->id = ++m->last_node_id;
	n->last_seen_ms = r->now_ms;
	m->nodes[n->id] = n;
	r->s->node_id = n->id;
	r->s->lost = false;
	r->node = n;
	r->caller = n->id;
	mcfs_master_node_stored(m, n, true);
	if (n->alloc)
		mcfs_master_repair_mark(m); /* room for copies that had nowhere to go */
	mcfs_info("node %s (id %llu) joined from %s with %llu bytes", n->name,
		  (unsigned long long)n->id, *n->addr ? n->addr : "this process",
		  (unsigned long long)q->size);
	r->out->node_id = n->id;
	r->out->proto = MCFS_PROTO_VERSION;
	r->out->seg_id = n->seg_id;
	r->out->flags = dropped ? MCFS_HELLO_DROPPED : 0;
	r->out->value.p = m->grant_secret;
	r->out->value.len = sizeof(m->grant_secret);
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
	r->out->version = r->m->repair_gen;
	return 0;
}

static int do_bye(struct mcfs_req *r)
{
	uint64_t id = r->in->node_id ? r->in->node_id : r->caller;

	if (id != r->caller)
		return -EPERM;
	mcfs_master_node_stored(r->m, r->node, false);
	node_remove(r->m, r->node, "it left (BYE)", r->now_ns);
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
	/* A lookup leases a published file (as Mooncake's exists does), without counting as a read. */
	if (S_ISREG(in->mode) && in->u.file.obj.version)
		lease_extend(r, &in->u.file.obj);
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
	int64_t atime, mtime;
	int ret = get_inode(r, q->ino, &in);

	if (ret)
		return ret;
	if (q->valid & ~SET_ALL)
		return -EINVAL;
	/* The atime first: the only change that can fail (an atime apart from mtime needs room). */
	atime = mcfs_inode_atime(in);
	mtime = in->mtime_ns;
	if (q->valid & MCFS_SET_ATIME_NOW)
		atime = r->now_ns;
	else if (q->valid & MCFS_SET_ATIME)
		atime = q->atime_ns;
	if (q->valid & MCFS_SET_MTIME_NOW)
		mtime = r->now_ns;
	else if (q->valid & MCFS_SET_MTIME)
		mtime = q->mtime_ns;
	if (mtime != in->mtime_ns || atime != mcfs_inode_atime(in)) {
		int64_t old = in->mtime_ns;

		in->mtime_ns = mtime;
		ret = mcfs_ns_set_atime(in, atime);
		if (ret) {
			in->mtime_ns = old;
			return ret;
		}
	}
	if (q->valid & MCFS_SET_MODE)
		in->mode = (in->mode & S_IFMT) | (q->mode & 07777);
	if (q->valid & MCFS_SET_UID)
		in->uid = q->uid;
	if (q->valid & MCFS_SET_GID)
		in->gid = q->gid;
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

/*
 * A new entry takes its directory's defaults. A directory's replica_num is 0
 * until someone sets it: then a new file takes the creating node's default
 * (mcfs --replicas, in CREATE's count), or the master's.
 */
static void inherit(struct mcfs_req *r, struct mcfs_inode *in, const struct mcfs_inode *dir)
{
	in->replica_num = dir->replica_num;
	if (!in->replica_num && S_ISREG(in->mode))
		in->replica_num = r->in->count >= 1 && r->in->count <= MCFS_MAX_REPLICAS
				      ? (uint8_t)r->in->count
				      : (uint8_t)r->m->conf.default_replicas;
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
	inherit(r, in, dir);
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
		/*
		 * Another node's unpublished file: without O_EXCL this node opens
		 * the same file (as POSIX would) and may put versions of it; the
		 * last PUT_END wins. It stays invisible here until published.
		 */
		if ((q->flags & MCFS_CREATE_EXCL) ||
		    (!mcfs_master_visible(r, in) && !S_ISREG(in->mode)))
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
	inherit(r, in, dir);
	in->flags |= MCFS_I_PENDING;
	mcfs_file_set_creator(in, (uint32_t)r->caller);
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
		    (S_ISDIR(dst->mode) && mcfs_ns_is_within(mcfs_ns_parent(src), dst)))
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
	for (e = mcfs_ns_resume(&r->m->ns, dir, q->cookie); e; e = mcfs_ns_next(e)) {
		if (!mcfs_master_visible(r, e))
			continue;
		if (n == max || b->len + 12 + e->namelen + MCFS_ATTR_WIRE > READDIR_MAX_BYTES)
			break;
		fill_attr(&a, e);
		mcfs_dirent_put(b, e->seq, mcfs_inode_name(e), e->namelen, &a);
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

/* The put named by the request, if it is the caller's and of that kind. */
static int own_put(struct mcfs_req *r, uint8_t kind, struct mcfs_put **out)
{
	struct mcfs_put *p = put_find(r->m, r->in->put_id);

	if (!p)
		return -ENOENT;
	if (p->node_id != r->caller)
		return -EPERM;
	if (kind && p->kind != kind)
		return -EINVAL;
	*out = p;
	return 0;
}

static void put_rep_get(const struct mcfs_put_rep *pr, uint8_t state, struct mcfs_rep *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->node_id = (uint32_t)pr->node_id;
	if (pr->has_range) {
		rep->page = (uint32_t)(pr->ext.offset / MCFS_ALLOC_ALIGN);
		rep->pages = (uint32_t)(pr->ext.len / MCFS_ALLOC_ALIGN);
	}
	rep->tier = MCFS_TIER_DRAM;
	rep->state = state;
}

/*
 * Answer the ranges p writes, pending, with write grants. The writer's own
 * staging (a write put's first) may be read back too. Before PUT_PLACE a
 * staging of capacity 0 is no replica at all.
 */
static void put_replicas(struct mcfs_req *r, const struct mcfs_put *p)
{
	uint64_t ttl = r->m->conf.put_timeout_ms ? r->m->conf.put_timeout_ms : WRITE_GRANT_MS;
	uint64_t expiry = mcfs_grant_now_ms() + ttl;
	struct mcfs_rep rep;
	uint32_t n = 0;

	for (uint8_t i = 0; i < p->nrep; i++) {
		bool staging = p->kind == MCFS_PUT_WRITE && i == 0;

		if (staging && !p->placed && !p->rep[0].has_range)
			continue;
		put_rep_get(&p->rep[i], MCFS_REP_PENDING, &rep);
		fill_rep(r->m, &r->out->rep[n++], &rep,
			 staging ? MCFS_GRANT_READ | MCFS_GRANT_WRITE : MCFS_GRANT_WRITE, expiry);
	}
	r->out->nrep = n;
}

/* Give p an id and add it to the table. 0 or -ENOMEM (p untouched). */
static int put_add(struct mcfs_master *m, struct mcfs_put *p)
{
	p->id = m->last_put_id + 1;
	HASH_ADD(hh, m->puts, id, sizeof(p->id), p);
	if (!p->hh.tbl)
		return -ENOMEM;
	m->last_put_id = p->id;
	return 0;
}

struct alloc_try {
	struct mcfs_alloc *a;
	uint64_t len;
	struct mcfs_extent *ext;
};

static int alloc_try(void *arg)
{
	struct alloc_try *t = arg;

	return mcfs_alloc_get(t->a, t->len, t->ext);
}

/*
 * Allocate len bytes of node n's segment for a put on inode ino. Without
 * room, evict objects with a replica on n (never ino's: the put may be its
 * next version) and try again; -ENOSPC when that does not make room.
 */
static int alloc_range(struct mcfs_req *r, struct mcfs_node *n, uint64_t ino, uint64_t len,
		       struct mcfs_extent *ext)
{
	struct alloc_try t = {n->alloc, len, ext};
	struct mcfs_alloc_stats st;
	int ret = mcfs_alloc_get(n->alloc, len, ext);

	if (ret != -ENOSPC)
		return ret;
	mcfs_alloc_stats(n->alloc, &st);
	if (len > st.size)
		return -ENOSPC; /* it would not fit in an empty segment: evict nothing */
	return mcfs_evict_alloc(r->m, n->id, ino, r->now_ms, r->now_ns, alloc_try, &t);
}

static int do_put_start(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in = mcfs_ns_get(&r->m->ns, q->ino);
	struct mcfs_put *p;

	if (r->node->recovering)
		return -EINPROGRESS; /* its segment is not rebuilt yet: the client retries */
	int ret;

	/* Any node may put a version, even of a file another node created (see CREATE). */
	if (!in)
		return -ENOENT;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	if (q->size && !r->node->alloc)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->kind = MCFS_PUT_WRITE;
	p->ino = in->ino;
	p->node_id = r->caller;
	p->touched_ms = r->now_ms;
	p->nrep = 1;
	p->rep[0].node_id = r->caller;
	p->rep[0].seg_id = r->node->seg_id;
	if (q->size) {
		ret = alloc_range(r, r->node, in->ino, q->size, &p->rep[0].ext);
		if (ret)
			goto out_free_put;
		p->rep[0].has_range = true;
	}
	ret = put_add(r->m, p);
	if (ret)
		goto out_free_range;
	r->out->put_id = p->id;
	r->out->version = 0; /* assigned at PUT_END */
	/* The writer calls PUT_PLACE only when the file wants more than this copy. */
	r->out->count = in->replica_num;
	put_replicas(r, p);
	return 0;

out_free_range:
	if (p->rep[0].has_range)
		(void)mcfs_alloc_put(r->node->alloc, &p->rep[0].ext);
out_free_put:
	free(p);
	return ret;
}

static int do_put_grow(struct mcfs_req *r)
{
	struct mcfs_alloc *a = r->node->alloc;
	struct mcfs_put_rep *st;
	struct mcfs_put *p;
	int ret = own_put(r, r->in->size ? MCFS_PUT_WRITE : 0, &p);

	if (ret)
		return ret;
	if (!r->in->size) {
		/* A renewal: the writer is alive, the put stays; fresh grants. */
		p->touched_ms = r->now_ms;
		put_replicas(r, p);
		return 0;
	}
	if (p->placed)
		return -EINVAL;
	if (!a)
		return -ENOSPC;
	p->touched_ms = r->now_ms;
	st = &p->rep[0];
	if (st->has_range) {
		ret = mcfs_alloc_resize(a, &st->ext, r->in->size);
	} else {
		ret = alloc_range(r, r->node, p->ino, r->in->size, &st->ext);
		st->has_range = !ret;
	}
	if (ret)
		return ret;
	put_replicas(r, p);
	return 0;
}

/* The staging range of write put p holds size bytes now: give back what it has beyond. */
static void staging_trim(struct mcfs_req *r, struct mcfs_put *p, uint64_t size)
{
	struct mcfs_put_rep *st = &p->rep[0];

	if (!st->has_range)
		return;
	if (!size) {
		(void)mcfs_alloc_put(r->node->alloc, &st->ext);
		st->has_range = false;
	} else if (size < st->ext.len) {
		/* Shrinking in place cannot fail; if it did, the range just stays larger. */
		(void)mcfs_alloc_resize(r->node->alloc, &st->ext, size);
	}
}

/*
 * Has n missed its heartbeats (one a second) for long enough that it is
 * likely gone, though not yet dropped (node_ttl_ms)? Placement passes such
 * a node over. The embedded master's own node (no address) sends none.
 */
static bool node_silent(const struct mcfs_master *m, const struct mcfs_node *n, uint64_t now_ms)
{
	uint64_t after = m->conf.node_ttl_ms / 2;

	if (!*n->addr || !m->conf.node_ttl_ms)
		return false;
	if (after > NODE_SILENT_MS)
		after = NODE_SILENT_MS;
	return now_ms > n->last_seen_ms + after;
}

struct cand {
	struct mcfs_node *n;
	uint64_t free;
};

/* Most free space first; among equals, the oldest node, so placement is repeatable. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->free != y->free)
		return x->free > y->free ? -1 : 1;
	return x->n->id < y->n->id ? -1 : x->n->id > y->n->id;
}

/*
 * Append up to want new ranges of size bytes to p, each on a different
 * node with a segment, none on a node p already writes to or in skip[0..nskip),
 * most free space first. A node that a peer cannot reach (no address) only
 * takes a copy its own daemon writes (the caller). A node without room is
 * passed over. Returns how many were placed, or -ENOMEM.
 */
static int place(struct mcfs_req *r, struct mcfs_put *p, unsigned want, uint64_t size,
		 const uint64_t *skip, unsigned nskip)
{
	struct mcfs_master *m = r->m;
	struct cand *c;
	size_t nc = 0;
	int placed = 0;

	if (!want)
		return 0;
	c = malloc((m->last_node_id + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (uint64_t id = 1; id <= m->last_node_id; id++) {
		struct mcfs_node *n = mcfs_master_node(m, id);
		struct mcfs_alloc_stats st;
		bool taken = false;

		if (!n || !n->alloc || n->recovering || (!*n->addr && n->id != r->caller))
			continue;
		if (node_silent(m, n, r->now_ms) && n->id != r->caller)
			continue; /* likely dead: a copy there would fail the writer's transfer */
		for (uint8_t i = 0; i < p->nrep && !taken; i++)
			taken = p->rep[i].node_id == id;
		for (unsigned i = 0; i < nskip && !taken; i++)
			taken = skip[i] == id;
		if (taken)
			continue;
		mcfs_alloc_stats(n->alloc, &st);
		c[nc].n = n;
		c[nc].free = st.free;
		nc++;
	}
	qsort(c, nc, sizeof(*c), cand_cmp);
	for (size_t i = 0; i < nc && (unsigned)placed < want && p->nrep < MCFS_MAX_REPLICAS; i++) {
		struct mcfs_put_rep *pr = &p->rep[p->nrep];

		memset(pr, 0, sizeof(*pr));
		if (size) {
			if (alloc_range(r, c[i].n, p->ino, size, &pr->ext))
				continue; /* no room there: fewer replicas rather than none */
			pr->has_range = true;
		}
		pr->node_id = c[i].n->id;
		pr->seg_id = c[i].n->seg_id;
		p->nrep++;
		placed++;
	}
	free(c);
	return placed;
}

static int do_put_place(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in;
	struct mcfs_put *p;
	unsigned want;
	int ret = own_put(r, MCFS_PUT_WRITE, &p);

	if (ret)
		return ret;
	p->touched_ms = r->now_ms;
	if (p->placed) {
		/* Asked again (a retry): the same answer, or a different size is an error. */
		if (q->size != p->size)
			return -EINVAL;
		put_replicas(r, p);
		return 0;
	}
	if (q->size > (p->rep[0].has_range ? p->rep[0].ext.len : 0))
		return -EINVAL;
	in = mcfs_ns_get(&r->m->ns, p->ino);
	if (!in) {
		/* Unlinked while it was written: nothing to place for. */
		put_free(r->m, p);
		return -ENOENT;
	}
	staging_trim(r, p, q->size);
	want = in->replica_num > 1 ? in->replica_num - 1u : 0;
	ret = place(r, p, want, q->size, NULL, 0);
	if (ret < 0)
		return ret;
	p->placed = true;
	p->size = q->size;
	put_replicas(r, p);
	return 0;
}

static int do_put_end(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_master *m = r->m;
	struct mcfs_rep reps[MCFS_MAX_REPLICAS];
	struct mcfs_obj nobj, *obj;
	struct mcfs_inode *in;
	struct mcfs_put *p;
	uint8_t placed;
	int ret = own_put(r, MCFS_PUT_WRITE, &p);

	if (ret)
		return ret;
	if (p->placed ? q->size != p->size
		      : q->size > (p->rep[0].has_range ? p->rep[0].ext.len : 0))
		return -EINVAL;
	if (q->flags >> p->nrep)
		return -EINVAL; /* names a copy the put does not have */
	in = mcfs_ns_get(&m->ns, p->ino);
	if (!in) {
		/* Unlinked while it was written: nothing to publish into. */
		put_free(m, p);
		return -ENOENT;
	}
	staging_trim(r, p, q->size);
	/*
	 * Copies whose node left, or that the writer could not fill (a peer it
	 * could not reach), are left out: the object is published with the
	 * others. Only a put left with none fails.
	 */
	placed = p->nrep;
	if (!put_drop_reps(m, p, q->flags, r->now_ms)) {
		put_free(m, p);
		return -EIO;
	}
	if (p->nrep < placed) {
		/* A copy left out: to be made again elsewhere, by the first replica's node. */
		degraded_add(m, (uint32_t)p->rep[0].node_id, p->ino);
		m->repair_gen++;
	}
	/* replica_num lowered since PUT_PLACE: the copies beyond it are not kept. */
	for (uint8_t keep = in->replica_num ? in->replica_num : 1; p->nrep > keep; p->nrep--) {
		struct mcfs_put_rep *pr = &p->rep[p->nrep - 1];

		if (pr->has_range)
			range_free(m, pr->node_id, pr->seg_id, &pr->ext);
	}
	memset(&nobj, 0, sizeof(nobj));
	for (uint8_t i = 0; i < p->nrep; i++)
		put_rep_get(&p->rep[i], MCFS_REP_COMPLETE, &reps[i]);
	ret = mcfs_obj_set_reps(&nobj, reps, p->nrep);
	if (ret)
		return ret;
	nobj.version = ++m->last_version;
	nobj.size = q->size;
	nobj.crc = q->crc;

	obj = &in->u.file.obj;
	mcfs_master_obj_retire(m, in->ino, obj, r->now_ms);
	*obj = nobj;
	in->flags &= (uint8_t)~MCFS_I_PENDING;
	in->mtime_ns = in->ctime_ns = r->now_ns;
	in->u.file.pin_ms = in->flags & MCFS_I_SOFT_PIN ? r->now_ms + mcfs_master_pin_ttl(m) : 0;
	touch(r, in); /* a new object starts young */
	/* The ranges now belong to the object. */
	for (uint8_t i = 0; i < p->nrep; i++)
		p->rep[i].has_range = false;
	put_free(m, p);
	fill_attr(&r->out->attr, in);
	/*
	 * The writer's handle goes on reading it: a hold (no read lease, which
	 * would keep a new object from eviction).
	 */
	mcfs_master_hold(m, in->ino, obj->version, r->caller, r->now_ms, true);
	mcfs_ns_changed(&m->ns, in); /* the holders' catalogs */
	if (r->node->syncs) {
		/* The writer's record now: a failover right after close() loses nothing. */
		mcfs_master_rec(m, in->ino, r->caller, r->now_ms, &m->scratch);
		r->out->value.p = m->scratch.data;
		r->out->value.len = (uint32_t)m->scratch.len;
	}
	return 0;
}

static int do_put_revoke(struct mcfs_req *r)
{
	struct mcfs_put *p;
	uint32_t copies = 0;
	int ret = own_put(r, 0, &p);

	if (ret)
		return ret;
	/* Copies to peers (all of a replication's, a placed write's but the staging) may still land. */
	for (uint8_t i = p->kind == MCFS_PUT_WRITE ? 1 : 0; i < p->nrep; i++)
		copies |= 1u << i;
	(void)put_drop_reps(r->m, p, copies, r->now_ms);
	put_free(r->m, p);
	return 0;
}

/* The regular file ino, when (ino, version) is its current object. */
static int current_obj(struct mcfs_req *r, uint64_t ino, uint64_t version, struct mcfs_inode **out)
{
	struct mcfs_inode *in;
	int ret = get_inode(r, ino, &in);

	if (ret)
		return ret;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	if (!version || in->u.file.obj.version != version)
		return -ENOENT;
	*out = in;
	return 0;
}

static int do_repl_start(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	uint64_t skip[MCFS_MAX_REPLICAS];
	const struct mcfs_rep *reps;
	struct mcfs_inode *in;
	struct mcfs_obj *obj;
	struct mcfs_put *p;
	unsigned want;
	int ret = current_obj(r, q->ino, q->version, &in);

	if (ret)
		return ret;
	if (!q->count)
		return -EINVAL;
	obj = &in->u.file.obj;
	if (obj->nrep >= MCFS_MAX_REPLICAS)
		return -ENOSPC;
	want = MCFS_MAX_REPLICAS - obj->nrep;
	if (q->count < want)
		want = q->count;
	reps = mcfs_obj_creps(obj);
	for (uint8_t i = 0; i < obj->nrep; i++)
		skip[i] = reps[i].node_id;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->kind = MCFS_PUT_REPL;
	p->ino = in->ino;
	p->node_id = r->caller;
	p->touched_ms = r->now_ms;
	p->version = obj->version;
	p->size = obj->size;
	p->placed = true;
	ret = place(r, p, want, obj->size, skip, obj->nrep);
	if (ret == 0)
		ret = -ENOSPC;
	if (ret > 0)
		ret = put_add(r->m, p);
	if (ret) {
		put_ranges_free(r->m, p);
		free(p);
		return ret;
	}
	r->out->put_id = p->id;
	put_replicas(r, p);
	return 0;
}

static int do_repl_end(struct mcfs_req *r)
{
	struct mcfs_master *m = r->m;
	struct mcfs_rep reps[MCFS_MAX_REPLICAS];
	struct mcfs_inode *in;
	struct mcfs_obj *obj;
	struct mcfs_put *p;
	bool take[MCFS_MAX_REPLICAS];
	uint8_t n;
	int ret = own_put(r, MCFS_PUT_REPL, &p);

	if (ret)
		return ret;
	if (!put_drop_reps(m, p, 0, r->now_ms)) {
		/* Every node it copied to left. */
		put_free(m, p);
		return -EIO;
	}
	in = mcfs_ns_get(&m->ns, p->ino);
	if (!in || !S_ISREG(in->mode) || in->u.file.obj.version != p->version) {
		/* Replaced or gone meanwhile: the copies are of nothing current. */
		put_free(m, p);
		return -ENOENT;
	}
	obj = &in->u.file.obj;
	n = obj->nrep;
	memcpy(reps, mcfs_obj_creps(obj), n * sizeof(reps[0]));
	for (uint8_t i = 0; i < p->nrep; i++) {
		bool dup = false;

		/* Another replication may have put a copy on that node first. */
		for (uint8_t j = 0; j < n && !dup; j++)
			dup = reps[j].node_id == p->rep[i].node_id;
		take[i] = !dup && n < MCFS_MAX_REPLICAS;
		if (take[i])
			put_rep_get(&p->rep[i], MCFS_REP_COMPLETE, &reps[n++]);
	}
	ret = mcfs_obj_set_reps(obj, reps, n);
	if (ret) {
		put_free(m, p);
		return ret;
	}
	for (uint8_t i = 0; i < p->nrep; i++) {
		if (take[i])
			p->rep[i].has_range = false; /* the object's now */
	}
	put_free(m, p);
	mcfs_master_mark_obj(m, in->ino, obj);
	return 0;
}

static int do_get(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in;
	struct mcfs_obj *obj;
	int ret = get_inode(r, q->ino, &in);

	if (ret)
		return ret;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	/*
	 * The name the caller reached it by (ino2 and name; none when ino2 is
	 * 0): renamed since, the name may hold another file now, which is what
	 * an open after that rename must see (close-to-open).
	 */
	if (q->ino2 &&
	    (!in->parent || mcfs_ns_parent(in)->ino != q->ino2 || in->namelen != q->name.len ||
	     memcmp(mcfs_inode_name(in), q->name.p, q->name.len)))
		return -ENOENT;
	fill_attr(&r->out->attr, in);
	obj = &in->u.file.obj;
	if (!obj->version)
		return 0; /* the creator's own pending file: nothing to read yet */
	lease_extend(r, obj);
	mcfs_master_hold(r->m, in->ino, obj->version, r->caller, r->now_ms, true);
	touch(r, in);
	r->out->crc = obj->crc;
	r->out->lease_ms = r->m->conf.lease_ms;
	obj_replicas(r, obj);
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
		touch(r, in); /* a file kept open is in use */
	} else {
		rt = retired_find(r->m, q->ino, q->version);
		if (rt)
			obj = &rt->obj;
	}
	if (!obj)
		return -ENOENT;
	lease_extend(r, obj);
	mcfs_master_hold(r->m, q->ino, q->version, r->caller, r->now_ms, false);
	r->out->lease_ms = r->m->conf.lease_ms;
	obj_replicas(r, obj);
	return 0;
}

static int sole_cmp(const void *a, const void *b)
{
	const struct mcfs_sole *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Restore the max-heap (by ino) below slot i of h[0..n). */
static void sole_sift_down(struct mcfs_sole *h, size_t n, size_t i)
{
	for (;;) {
		size_t big = i, l = 2 * i + 1, rr = l + 1;
		struct mcfs_sole t;

		if (l < n && h[l].ino > h[big].ino)
			big = l;
		if (rr < n && h[rr].ino > h[big].ino)
			big = rr;
		if (big == i)
			return;
		t = h[i];
		h[i] = h[big];
		h[big] = t;
		i = big;
	}
}

static void sole_sift_up(struct mcfs_sole *h, size_t i)
{
	while (i) {
		size_t up = (i - 1) / 2;
		struct mcfs_sole t;

		if (h[up].ino >= h[i].ino)
			return;
		t = h[i];
		h[i] = h[up];
		h[up] = t;
		i = up;
	}
}

/* Answer a SOLE_LIST page: h[0..n) (owned, freed here) in inode order, EOF when eof. */
static int sole_answer(struct mcfs_req *r, struct mcfs_sole *h, size_t n, bool eof)
{
	struct mcfs_buf *b = &r->m->scratch;

	qsort(h, n, sizeof(*h), sole_cmp);
	for (size_t i = 0; i < n; i++)
		mcfs_sole_put(b, &h[i]);
	free(h);
	if (b->oom)
		return -ENOMEM;
	r->out->count = (uint32_t)n;
	r->out->flags = eof ? MCFS_READDIR_EOF : 0;
	r->out->value.p = b->data;
	r->out->value.len = (uint32_t)b->len;
	return 0;
}

/*
 * SOLE_LIST DEGRADED: hand the caller the files on its degraded list that
 * are still short of copies with their first replica on it (in inode
 * order), and forget them; a file whose first replica moved goes to that
 * node's list. O(max), after a walk of all files when one is due.
 */
static int sole_list_degraded(struct mcfs_req *r, uint32_t max)
{
	struct mcfs_master *m = r->m;
	struct mcfs_node *node = r->node;
	struct mcfs_sole *h;
	size_t n = 0;

	if (m->repair_scan)
		degraded_walk(m);
	h = malloc(max * sizeof(*h));
	if (!h)
		return -ENOMEM;
	while (node && node->ndegraded && n < max) {
		uint64_t ino = node->degraded[--node->ndegraded];
		const struct mcfs_inode *in = mcfs_ns_get(&m->ns, ino);
		uint32_t first;

		if (!in || !file_short(in))
			continue;
		first = mcfs_obj_creps(&in->u.file.obj)->node_id;
		if (first != r->caller) {
			degraded_add(m, first, ino);
			continue;
		}
		h[n].cookie = h[n].ino = ino;
		h[n].version = in->u.file.obj.version;
		h[n].size = in->u.file.obj.size;
		n++;
	}
	return sole_answer(r, h, n, !node || !node->ndegraded);
}

/*
 * The caller's sole objects with inode numbers above the cookie, the
 * smallest count of them, in inode order: one pass over the inode table
 * keeping the count smallest in a max-heap. The cookie is the inode number,
 * so paging is right whatever comes and goes in between.
 */
static int do_sole_list(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	uint32_t max = q->count ? q->count : SOLE_DEFAULT_COUNT;
	struct mcfs_sole *h;
	struct mcfs_inode *in;
	size_t n = 0, matched = 0, pos = 0;

	if (max > SOLE_MAX_COUNT)
		max = SOLE_MAX_COUNT;
	if (q->flags & MCFS_SOLE_DEGRADED)
		return sole_list_degraded(r, max);
	h = malloc(max * sizeof(*h));
	if (!h)
		return -ENOMEM;
	while ((in = mcfs_ptab_next(&r->m->ns.by_ino, &pos))) {
		const struct mcfs_obj *obj = &in->u.file.obj;
		struct mcfs_sole e;

		if (in->ino <= q->cookie || !S_ISREG(in->mode) || in->flags & MCFS_I_PENDING ||
		    !obj->version || obj->nrep != 1 || mcfs_obj_creps(obj)->node_id != r->caller)
			continue;
		matched++;
		e.cookie = e.ino = in->ino;
		e.version = obj->version;
		e.size = obj->size;
		if (n < max) {
			h[n] = e;
			sole_sift_up(h, n++);
		} else if (e.ino < h[0].ino) {
			h[0] = e;
			sole_sift_down(h, n, 0);
		}
	}
	return sole_answer(r, h, n, matched <= n);
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
			err.epoch = r->m->epoch;
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
    [MCFS_MSG_PUT_PLACE] = {do_put_place, false},
    [MCFS_MSG_REPL_START] = {do_repl_start, false},
    [MCFS_MSG_REPL_END] = {do_repl_end, false},
    [MCFS_MSG_SOLE_LIST] = {do_sole_list, false},
    [MCFS_MSG_BATCH] = {do_batch, true},
    [MCFS_MSG_SYNC] = {mcfs_master_do_sync, false},
    [MCFS_MSG_REPORT] = {mcfs_master_do_report, false},
    [MCFS_MSG_REPORT_END] = {mcfs_master_do_report_end, false},
    [MCFS_MSG_RELEASE] = {mcfs_master_do_release, false},
};

/*
 * During a rebuild, may a miss of this request be a file not reported yet
 * (answer EINPROGRESS: the client asks again)? Not for liveness, catalogs,
 * or puts: an unknown put will not come back.
 */
static bool rebuild_may_wait(uint16_t type)
{
	switch (type) {
	case MCFS_MSG_HEARTBEAT:
	case MCFS_MSG_SYNC:
	case MCFS_MSG_PUT_START:
	case MCFS_MSG_PUT_GROW:
	case MCFS_MSG_PUT_END:
	case MCFS_MSG_PUT_REVOKE:
	case MCFS_MSG_PUT_PLACE:
	case MCFS_MSG_REPL_START:
	case MCFS_MSG_REPL_END:
		return false;
	default:
		return true;
	}
}

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
	resp.epoch = m->epoch;
	r.m = m;
	r.s = s;
	r.now_ms = m->clock_ms(m->clock_arg);
	r.node = mcfs_master_node(m, s->node_id);
	if (r.node) {
		r.node->last_seen_ms = r.now_ms; /* any request shows it alive */
	} else if (s->node_id) {
		/* Its node was dropped (TTL, restart) or left from another session. */
		s->node_id = 0;
		s->lost = true;
	}
	r.caller = s->node_id;
	r.now_ns = mcfs_wall_ns();
	r.in = q;
	r.out = &resp;
	m->scratch.len = 0;
	m->scratch.oom = false;

	if (m->standby)
		resp.status = -EREMCHG; /* not the leader: look it up again */
	else if (!op || !op->fn)
		resp.status = -ENOTSUP; /* the decoder knows no more types than ops */
	else if (q->type == MCFS_MSG_BATCH && in_batch)
		resp.status = -EINVAL;
	else if (!op->anon && !r.node)
		resp.status = s->lost ? -ENOTCONN : -EPERM;
	else
		resp.status = op->fn(&r);
	if (!resp.status && (q->type == MCFS_MSG_SETATTR || q->type == MCFS_MSG_SETXATTR ||
			     q->type == MCFS_MSG_REMOVEXATTR)) {
		struct mcfs_inode *in = mcfs_ns_get(&m->ns, q->ino);

		if (in)
			mcfs_ns_changed(&m->ns, in);
	}
	/*
	 * Until every node of the last run has reported, a miss may be a file
	 * not reported yet: the client waits and asks again.
	 */
	if (resp.status == -ENOENT && mcfs_master_rebuilding(m) && rebuild_may_wait(q->type))
		resp.status = -EINPROGRESS;
	mcfs_master_store_check(m, false);

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

/*
 * Put p's writer left it untouched past the put timeout: it is dead or has
 * forgotten it. Free its ranges, and the pending file it created for it if
 * nothing else writes that file: no half-object is ever published.
 */
static void put_expire(struct mcfs_master *m, struct mcfs_put *p, uint64_t now_ms, int64_t now_ns)
{
	uint64_t ino = p->ino, writer = p->node_id;
	bool write = p->kind == MCFS_PUT_WRITE;
	struct mcfs_put *q, *tmp;
	struct mcfs_inode *in;

	mcfs_info("put %llu on inode %llu from node %llu untouched for %llu ms: revoked",
		  (unsigned long long)p->id, (unsigned long long)ino, (unsigned long long)writer,
		  (unsigned long long)(now_ms - p->touched_ms));
	m->stats.puts_expired++;
	put_free(m, p);
	in = mcfs_ns_get(&m->ns, ino);
	if (!write || !in || !S_ISREG(in->mode) || !(in->flags & MCFS_I_PENDING) ||
	    mcfs_file_creator(in) != writer)
		return;
	HASH_ITER(hh, m->puts, q, tmp)
	{
		if (q->ino == ino)
			return;
	}
	mcfs_ns_delete(&m->ns, in, now_ns);
}

/* Is the pool (every registered segment) fuller than the high watermark? */
static bool over_watermark(const struct mcfs_master *m)
{
	uint64_t size = 0, used = 0;
	struct mcfs_alloc_stats st;

	for (uint64_t id = 1; id <= m->last_node_id; id++) {
		const struct mcfs_node *n = mcfs_master_node(m, id);

		if (!n || !n->alloc)
			continue;
		mcfs_alloc_stats(n->alloc, &st);
		size += st.size;
		used += st.used;
	}
	return size && (double)used > m->conf.high_watermark * (double)size;
}

void mcfs_master_get_stats(const struct mcfs_master *m, struct mcfs_master_stats *st)
{
	*st = m->stats;
}

void mcfs_master_set_standby(struct mcfs_master *m, bool standby)
{
	m->standby = standby;
}

bool mcfs_master_standby(const struct mcfs_master *m)
{
	return m->standby;
}

void mcfs_master_set_epoch(struct mcfs_master *m, uint64_t epoch)
{
	m->epoch = epoch;
}

uint64_t mcfs_master_epoch(const struct mcfs_master *m)
{
	return m->epoch;
}

const struct mcfs_master_conf *mcfs_master_get_conf(const struct mcfs_master *m)
{
	return &m->conf;
}

uint64_t mcfs_master_tick(struct mcfs_master *m, uint64_t now_ms)
{
	struct mcfs_retired *rt, *tmp;
	struct mcfs_dropped **dp, *d;
	struct mcfs_put *p, *ptmp;
	uint64_t next = TICK_MAX_MS, ttl = m->conf.node_ttl_ms, put_ttl = m->conf.put_timeout_ms;
	int64_t now_ns = mcfs_wall_ns();
	char why[64];

	mcfs_master_store_check(m, true);
	mcfs_master_rebuild_tick(m, now_ms);
	mcfs_master_hold_expire(m, now_ms);

	HASH_ITER(hh, m->retired, rt, tmp)
	{
		if (!mcfs_master_held(m, rt->key.ino, rt->key.version, now_ms)) {
			obj_release(m, &rt->obj);
			HASH_DEL(m->retired, rt);
			free(rt);
		} else if (rt->obj.lease_ms > now_ms && rt->obj.lease_ms - now_ms < next) {
			next = rt->obj.lease_ms - now_ms;
		}
	}
	for (dp = &m->dropped; (d = *dp);) {
		if (d->free_ms <= now_ms) {
			struct mcfs_extent ext = {(uint64_t)d->page * MCFS_ALLOC_ALIGN,
						  (uint64_t)d->pages * MCFS_ALLOC_ALIGN};

			range_free(m, d->node_id, d->seg_id, &ext);
			*dp = d->next;
			free(d);
			continue;
		}
		if (d->free_ms - now_ms < next)
			next = d->free_ms - now_ms;
		dp = &d->next;
	}
	/*
	 * node_ttl_ms 0: nodes are never dropped for silence. Nor is a node with
	 * a segment and no address: the embedded master's own node, which lives
	 * and dies with the master's process (and sends no heartbeats).
	 */
	for (uint64_t id = 1; ttl && id <= m->last_node_id; id++) {
		struct mcfs_node *n = mcfs_master_node(m, id);
		uint64_t due;

		if (!n || (n->alloc && !*n->addr))
			continue;
		due = n->last_seen_ms + ttl;
		if (due <= now_ms) {
			snprintf(why, sizeof(why), "silent for %llu ms",
				 (unsigned long long)(now_ms - n->last_seen_ms));
			node_remove(m, n, why, now_ns);
		} else if (due - now_ms < next) {
			next = due - now_ms;
		}
	}
	HASH_ITER(hh, m->puts, p, ptmp)
	{
		uint64_t due = p->touched_ms + put_ttl;

		if (!put_ttl)
			break;
		if (due <= now_ms)
			put_expire(m, p, now_ms, now_ns);
		else if (due - now_ms < next)
			next = due - now_ms;
	}
	if (m->ev.phase == MCFS_EVICT_IDLE && over_watermark(m)) {
		if (now_ms >= m->ev.idle_until_ms)
			mcfs_evict_start(m, 0, now_ms);
		else if (m->ev.idle_until_ms - now_ms < next)
			next = m->ev.idle_until_ms - now_ms;
	}
	if (m->ev.phase != MCFS_EVICT_IDLE && mcfs_evict_step(m, now_ms, now_ns))
		next = 0; /* more of the round right after the requests waiting */
	return next;
}
