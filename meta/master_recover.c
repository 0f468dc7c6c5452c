// SPDX-License-Identifier: Apache-2.0
/*
 * Losing the master loses nothing: what it knows is either durable in its
 * store (directories, symlinks, id counters: meta/persist.h) or held by the
 * nodes, each of which keeps a catalog of the published files it has a
 * replica of (proto.h, "Catalog records").
 *
 * Catalogs stay current through SYNC: whenever a file's record changes
 * (publish, rename, attributes, xattrs, pins, a replica added or dropped,
 * the file removed or evicted) the master marks it dirty for every node
 * holding a replica of the old or the new object, and the node's next SYNC
 * fetches each dirty inode's record as it is then (coalesced: a file
 * renamed ten times is sent once). A PUT_END answer carries the writer's
 * record at once, so a failover right after close() loses nothing.
 *
 * After a restart (or on a new leader) every node says HELLO with
 * MCFS_HELLO_REPORT and sends its catalog (REPORT, then REPORT_END). The
 * master puts each file back under its inode number, merges the replicas
 * that several nodes report for one version, keeps the higher version when
 * two disagree, and carves every reported range out of the node's fresh
 * allocator before that segment may take a new allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/log.h"
#include "common/util.h"
#include "meta/client.h"
#include "meta/master_i.h"

#define HWM_STEP (1u << 20)
/* One SYNC answer holds at most this many bytes of records. */
#define SYNC_BYTES (1u << 20)

void mcfs_master_mark(struct mcfs_master *m, uint64_t node_id, uint64_t ino)
{
	struct mcfs_node *n = mcfs_master_node(m, node_id);
	struct mcfs_dirty *d;

	if (!n || !n->syncs)
		return;
	HASH_FIND(hh, n->dirty, &ino, sizeof(ino), d);
	if (d)
		return;
	d = malloc(sizeof(*d));
	if (!d) {
		/* Its catalog lags for this file until it changes again. */
		mcfs_warn("out of memory tracking a change for node %llu",
			  (unsigned long long)n->id);
		return;
	}
	d->ino = ino;
	HASH_ADD(hh, n->dirty, ino, sizeof(d->ino), d);
	if (!d->hh.tbl)
		free(d);
}

void mcfs_master_mark_obj(struct mcfs_master *m, uint64_t ino, const struct mcfs_obj *obj)
{
	const struct mcfs_rep *reps = mcfs_obj_creps(obj);

	for (uint8_t i = 0; i < obj->nrep; i++)
		mcfs_master_mark(m, reps[i].node_id, ino);
}

void mcfs_master_dirty_free(struct mcfs_node *n)
{
	struct mcfs_dirty *d, *tmp;

	HASH_ITER(hh, n->dirty, d, tmp)
	{
		HASH_DEL(n->dirty, d);
		free(d);
	}
}

static void pack_xattrs(const struct mcfs_inode *in, struct mcfs_buf *b)
{
	const struct mcfs_xattrs *xs = mcfs_inode_xattrs(in);

	if (!xs)
		return;
	for (uint32_t i = 0; i < xs->n; i++) {
		const struct mcfs_xattr *x = &xs->v[i];

		mcfs_buf_put_u32(b, x->nlen);
		mcfs_buf_put(b, x->name, x->nlen);
		mcfs_buf_put_u32(b, x->vlen);
		mcfs_buf_put(b, x->value, x->vlen);
	}
}

/* The fields every kind of inode record shares. */
static void rec_common(const struct mcfs_inode *in, struct mcfs_rec *rec, struct mcfs_buf *xb)
{
	rec->ino = in->ino;
	rec->parent = in->parent ? mcfs_ns_parent(in)->ino : 0;
	rec->name.p = (const uint8_t *)mcfs_inode_name(in);
	rec->name.len = in->namelen;
	rec->mode = in->mode;
	rec->uid = in->uid;
	rec->gid = in->gid;
	rec->flags = in->flags & (MCFS_I_SOFT_PIN | MCFS_I_HARD_PIN);
	rec->replica_num = in->replica_num;
	rec->mtime_ns = in->mtime_ns;
	rec->ctime_ns = in->ctime_ns;
	xb->len = 0;
	pack_xattrs(in, xb);
	rec->xattrs.p = xb->data;
	rec->xattrs.len = (uint32_t)xb->len;
}

void mcfs_master_rec(struct mcfs_master *m, uint64_t ino, uint64_t node_id, uint64_t now_ms,
		     struct mcfs_buf *b)
{
	struct mcfs_inode *in = mcfs_ns_get(&m->ns, ino);
	struct mcfs_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.ino = ino;
	if (in && S_ISREG(in->mode) && !(in->flags & MCFS_I_PENDING) && in->parent) {
		const struct mcfs_obj *obj = &in->u.file.obj;
		const struct mcfs_rep *reps = mcfs_obj_creps(obj);

		for (uint8_t i = 0; i < obj->nrep; i++) {
			if (reps[i].node_id != node_id || reps[i].state != MCFS_REP_COMPLETE)
				continue;
			rec.rep[rec.nrep].offset = mcfs_rep_offset(&reps[i]);
			rec.rep[rec.nrep].len = mcfs_rep_len(&reps[i]);
			rec.rep[rec.nrep].tier = reps[i].tier;
			rec.nrep++;
		}
		if (rec.nrep) {
			rec.kind = MCFS_REC_FILE;
			rec_common(in, &rec, &m->rec);
			rec.version = obj->version;
			rec.size = obj->size;
			rec.crc = obj->crc;
			if (in->u.file.pin_ms > now_ms)
				rec.pin_wall_ms =
				    mcfs_wall_ns() / 1000000 + (in->u.file.pin_ms - now_ms);
			mcfs_rec_put(b, &rec);
			return;
		}
	}
	/* Not (or no longer) held there: anything up to the current version goes. */
	rec.kind = MCFS_REC_DROP;
	rec.version = in && S_ISREG(in->mode) ? in->u.file.obj.version : UINT64_MAX;
	mcfs_rec_put(b, &rec);
}

/* Directories and symlinks: the store's. */
static void store_inode(struct mcfs_master *m, struct mcfs_inode *in, bool gone)
{
	struct mcfs_buf b;
	struct mcfs_rec rec;

	if (gone) {
		(void)mcfs_persist_del(m->store, MCFS_PERSIST_INODE, in->ino);
		return;
	}
	memset(&rec, 0, sizeof(rec));
	rec.kind = S_ISLNK(in->mode) ? MCFS_REC_LINK : MCFS_REC_DIR;
	rec_common(in, &rec, &m->rec);
	if (S_ISLNK(in->mode)) {
		rec.target.p = (const uint8_t *)in->u.lnk.target;
		rec.target.len = in->u.lnk.len;
	}
	if (!in->parent)
		rec.name.len = 0; /* the root */
	mcfs_buf_init(&b);
	mcfs_rec_put(&b, &rec);
	if (b.oom)
		mcfs_err("out of memory storing inode %llu", (unsigned long long)in->ino);
	else
		(void)mcfs_persist_put(m->store, MCFS_PERSIST_INODE, in->ino, b.data, b.len);
	mcfs_buf_fini(&b);
}

void mcfs_master_ns_changed(void *arg, struct mcfs_inode *in, bool gone)
{
	struct mcfs_master *m = arg;

	if (S_ISREG(in->mode)) {
		mcfs_master_mark_obj(m, in->ino, &in->u.file.obj);
	} else if (m->store) {
		store_inode(m, in, gone);
	}
}

void mcfs_master_store_check(struct mcfs_master *m, bool flush)
{
	if (!m->store)
		return;
	if (m->ns.last_id + 1 >= m->ino_hwm) {
		m->ino_hwm = m->ns.last_id + HWM_STEP;
		(void)mcfs_persist_put_u64(m->store, MCFS_META_INO_HWM, m->ino_hwm);
	}
	if (m->last_version + 1 >= m->version_hwm) {
		m->version_hwm = m->last_version + HWM_STEP;
		(void)mcfs_persist_put_u64(m->store, MCFS_META_VERSION_HWM, m->version_hwm);
	}
	if (flush)
		(void)mcfs_persist_flush(m->store);
}

/* ---- the nodes of the last run ---- */

static uint64_t node_key(const char *name)
{
	return XXH3_64bits(name, strlen(name));
}

void mcfs_master_node_stored(struct mcfs_master *m, const struct mcfs_node *n, bool present)
{
	if (!m->store || !n->syncs)
		return;
	if (present)
		(void)mcfs_persist_put(m->store, MCFS_PERSIST_NODE, node_key(n->name), n->name,
				       strlen(n->name));
	else
		(void)mcfs_persist_del(m->store, MCFS_PERSIST_NODE, node_key(n->name));
}

static void expect_done(struct mcfs_master *m, const char *name)
{
	uint64_t key = node_key(name);
	struct mcfs_expect *e;

	HASH_FIND(hh, m->expect, &key, sizeof(key), e);
	if (!e)
		return;
	HASH_DEL(m->expect, e);
	free(e->name);
	free(e);
	if (!m->expect)
		mcfs_info("rebuild complete: every node of the last run has reported");
}

void mcfs_master_expect_free(struct mcfs_master *m)
{
	struct mcfs_expect *e, *tmp;

	HASH_ITER(hh, m->expect, e, tmp)
	{
		HASH_DEL(m->expect, e);
		free(e->name);
		free(e);
	}
}

void mcfs_master_rebuild_tick(struct mcfs_master *m, uint64_t now_ms)
{
	struct mcfs_expect *e, *tmp;

	if (!m->expect || now_ms < m->recover_until_ms)
		return;
	HASH_ITER(hh, m->expect, e, tmp)
	{
		/* Gone for good, as far as we wait: the next restart does not wait for it. */
		mcfs_warn("node %s did not come back to report its files; the rebuild goes on "
			  "without them (they return if it rejoins)",
			  e->name);
		(void)mcfs_persist_del(m->store, MCFS_PERSIST_NODE, e->key);
		HASH_DEL(m->expect, e);
		free(e->name);
		free(e);
	}
}

/* ---- loading the store ---- */

struct load {
	struct mcfs_master *m;
	struct mcfs_buf recs; /* directory and symlink records, placed once their parent is */
	size_t nrecs;
	uint64_t epoch;
};

static int load_one(void *arg, uint8_t kind, uint64_t key, const uint8_t *val, size_t len)
{
	struct load *l = arg;
	uint64_t v = 0;

	if (kind == MCFS_PERSIST_META) {
		if (len != 8)
			return -EBADMSG;
		v = mcfs_get_u64le(val);
		if (key == MCFS_META_INO_HWM)
			l->m->ino_hwm = v;
		else if (key == MCFS_META_VERSION_HWM)
			l->m->version_hwm = v;
		else if (key == MCFS_META_EPOCH)
			l->epoch = v;
		return 0;
	}
	if (kind == MCFS_PERSIST_NODE) {
		struct mcfs_expect *e = calloc(1, sizeof(*e));

		if (!e || !(e->name = strndup((const char *)val, len))) {
			free(e);
			return -ENOMEM;
		}
		e->key = key;
		HASH_ADD(hh, l->m->expect, key, sizeof(e->key), e);
		if (!e->hh.tbl) {
			free(e->name);
			free(e);
			return -ENOMEM;
		}
		return 0;
	}
	if (kind != MCFS_PERSIST_INODE)
		return 0; /* a newer master's: not ours to judge */
	mcfs_buf_put(&l->recs, val, len);
	l->nrecs++;
	return l->recs.oom ? -ENOMEM : 0;
}

static void xattrs_apply(struct mcfs_inode *in, struct mcfs_blob xs)
{
	struct mcfs_blob name, value;
	struct mcfs_rd r;
	char nm[MCFS_NAME_MAX + 1];

	mcfs_rd_init(&r, xs.p, xs.len);
	while (mcfs_xattr_next(&r, &name, &value) == 1) {
		/* Stored user attributes only; mcfs's own are fields, not entries. */
		if (name.len < 5 || memcmp(name.p, "user.", 5) ||
		    (name.len >= 10 && !memcmp(name.p, "user.mcfs.", 10)) ||
		    memchr(name.p, 0, name.len))
			continue;
		memcpy(nm, name.p, name.len);
		nm[name.len] = '\0';
		(void)mcfs_ns_xattr_set(in, nm, name.len, value.p, value.len, 0, MCFS_XATTR_MAX);
	}
}

static void attrs_apply(struct mcfs_inode *in, const struct mcfs_rec *rec)
{
	in->mode = rec->mode;
	in->uid = rec->uid;
	in->gid = rec->gid;
	in->mtime_ns = rec->mtime_ns;
	in->ctime_ns = rec->ctime_ns;
	in->replica_num = rec->replica_num;
	in->flags = (uint8_t)((in->flags & ~(MCFS_I_SOFT_PIN | MCFS_I_HARD_PIN)) |
			      (rec->flags & (MCFS_I_SOFT_PIN | MCFS_I_HARD_PIN)));
	for (const struct mcfs_xattrs *xs; (xs = mcfs_inode_xattrs(in));) {
		if (mcfs_ns_xattr_remove(in, xs->v[0].name, xs->v[0].nlen))
			break;
	}
	xattrs_apply(in, rec->xattrs);
}

/* Place the records whose parent exists; repeat until a pass places none. */
static size_t load_tree(struct load *l)
{
	struct mcfs_master *m = l->m;
	size_t placed = 0, left;
	bool progress = true;
	uint8_t *done = calloc(l->nrecs ? l->nrecs : 1, 1);

	if (!done)
		return 0;
	while (progress) {
		struct mcfs_rd r;
		struct mcfs_rec rec;
		size_t i = 0;

		progress = false;
		mcfs_rd_init(&r, l->recs.data, l->recs.len);
		for (int got;
		     i < l->nrecs && (got = mcfs_rec_next(&r, &rec)) != 0 && got != -EBADMSG; i++) {
			struct mcfs_inode *dir, *in;

			if (done[i])
				continue;
			if (got < 0) {
				mcfs_warn("a stored record does not decode; skipped");
				done[i] = 1;
				continue;
			}
			if (rec.ino == MCFS_ROOT_INO) {
				attrs_apply(m->ns.root, &rec);
				m->ns.root->mode = S_IFDIR | (rec.mode & 07777);
				done[i] = 1;
				continue;
			}
			dir = mcfs_ns_get(&m->ns, rec.parent);
			if (!dir)
				continue;
			done[i] = 1;
			progress = true;
			if (!S_ISDIR(dir->mode) ||
			    mcfs_ns_lookup(&m->ns, dir, (const char *)rec.name.p, rec.name.len) ||
			    (rec.kind == MCFS_REC_DIR) != S_ISDIR(rec.mode) ||
			    mcfs_ns_create_at(&m->ns, dir, (const char *)rec.name.p, rec.name.len,
					      rec.mode, rec.uid, rec.gid,
					      (const char *)rec.target.p, rec.target.len, rec.ino,
					      rec.mtime_ns, rec.ctime_ns, &in)) {
				mcfs_warn("stored inode %llu does not fit the tree; skipped",
					  (unsigned long long)rec.ino);
				continue;
			}
			attrs_apply(in, &rec);
			placed++;
		}
	}
	left = 0;
	for (size_t i = 0; i < l->nrecs; i++)
		left += !done[i];
	if (left)
		mcfs_warn("%zu stored directories or symlinks have no parent any more; skipped",
			  left);
	free(done);
	return placed;
}

int mcfs_master_attach_store(struct mcfs_master *m, struct mcfs_persist *store)
{
	struct load l;
	size_t placed;
	int ret;

	memset(&l, 0, sizeof(l));
	l.m = m;
	mcfs_buf_init(&l.recs);
	ret = mcfs_persist_load(store, load_one, &l);
	if (ret) {
		mcfs_buf_fini(&l.recs);
		return ret;
	}
	/* The hook is off while loading: nothing loaded needs storing again. */
	m->ns.changed = NULL;
	/* Above every stored number first: cookies made while loading collide with none. */
	if (m->ino_hwm > m->ns.last_id)
		m->ns.last_id = m->ino_hwm;
	if (m->version_hwm > m->last_version)
		m->last_version = m->version_hwm;
	placed = load_tree(&l);
	mcfs_buf_fini(&l.recs);
	m->store = store;
	m->epoch = l.epoch + 1;
	if (m->expect) {
		/* Below the nodes' RPC timeout: a waiting call must not turn into EIO. */
		uint64_t grace = m->conf.node_ttl_ms ? m->conf.node_ttl_ms : 10000;

		if (grace > MCFS_RPC_TIMEOUT_MS * 2 / 3)
			grace = MCFS_RPC_TIMEOUT_MS * 2 / 3;

		m->recover_until_ms = m->clock_ms(m->clock_arg) + grace;
		mcfs_info("rebuilding: waiting up to %llu ms for %u nodes to report their files",
			  (unsigned long long)grace, HASH_COUNT(m->expect));
	}
	ret = mcfs_persist_put_u64(store, MCFS_META_EPOCH, m->epoch);
	if (!ret)
		ret = mcfs_persist_flush(store);
	m->ns.changed = mcfs_master_ns_changed;
	m->ns.changed_arg = m;
	mcfs_master_store_check(m, true);
	mcfs_info("store loaded: %zu directories and symlinks; epoch %llu", placed,
		  (unsigned long long)m->epoch);
	return ret;
}

/* ---- SYNC, REPORT ---- */

int mcfs_master_do_sync(struct mcfs_req *r)
{
	struct mcfs_master *m = r->m;
	struct mcfs_node *n = r->node;
	struct mcfs_dirty *d, *tmp;
	uint32_t max = r->in->count ? r->in->count : UINT32_MAX, count = 0;

	n->syncs = true;
	HASH_ITER(hh, n->dirty, d, tmp)
	{
		if (count >= max || m->scratch.len >= SYNC_BYTES)
			break;
		mcfs_master_rec(m, d->ino, n->id, r->now_ms, &m->scratch);
		if (m->scratch.oom)
			return -ENOMEM;
		HASH_DEL(n->dirty, d);
		free(d);
		count++;
	}
	r->out->count = count;
	r->out->flags = n->dirty ? MCFS_SYNC_MORE : 0;
	r->out->value.p = m->scratch.data;
	r->out->value.len = (uint32_t)m->scratch.len;
	return 0;
}

/* The ranges rec says n holds, carved out of its allocator. False when none could be. */
static uint8_t reserve_reps(struct mcfs_node *n, const struct mcfs_rec *rec, struct mcfs_rep *out)
{
	uint8_t k = 0;

	for (uint8_t i = 0; i < rec->nrep; i++) {
		struct mcfs_extent ext = {0, 0};
		struct mcfs_rep *rep = &out[k];

		memset(rep, 0, sizeof(*rep));
		rep->node_id = (uint32_t)n->id;
		rep->tier = rec->rep[i].tier ? rec->rep[i].tier : MCFS_TIER_DRAM;
		rep->state = MCFS_REP_COMPLETE;
		if (rec->rep[i].len) {
			if (!n->alloc || rec->rep[i].len < rec->size ||
			    mcfs_alloc_reserve(n->alloc, rec->rep[i].offset, rec->rep[i].len,
					       &ext)) {
				if (n->report_dropped++ < 5)
					mcfs_warn(
					    "node %s reports inode %llu at [%llu, +%llu) which "
					    "it cannot hold; that replica is dropped",
					    n->name, (unsigned long long)rec->ino,
					    (unsigned long long)rec->rep[i].offset,
					    (unsigned long long)rec->rep[i].len);
				continue;
			}
			rep->page = (uint32_t)(ext.offset / MCFS_ALLOC_ALIGN);
			rep->pages = (uint32_t)(ext.len / MCFS_ALLOC_ALIGN);
		} else if (rec->size) {
			continue;
		}
		k++;
	}
	return k;
}

static void reps_release(struct mcfs_node *n, struct mcfs_rep *reps, uint8_t k)
{
	for (uint8_t i = 0; i < k; i++) {
		struct mcfs_extent ext = mcfs_rep_ext(&reps[i]);

		if (reps[i].pages && n->alloc)
			(void)mcfs_alloc_put(n->alloc, &ext);
	}
}

/* One reported file: 1 when taken (created or merged), 0 when passed over. */
static int report_one(struct mcfs_req *r, const struct mcfs_rec *rec)
{
	struct mcfs_master *m = r->m;
	struct mcfs_node *n = r->node;
	struct mcfs_rep reps[MCFS_MAX_REPLICAS], all[MCFS_MAX_REPLICAS];
	struct mcfs_inode *dir, *in, *other;
	uint8_t k, nall;
	struct mcfs_obj *obj;

	/* A peer's report: only what a file could be, with ids this cluster could have made. */
	if (!S_ISREG(rec->mode) || !rec->version || !rec->nrep || !rec->name.len ||
	    memchr(rec->name.p, '/', rec->name.len) || memchr(rec->name.p, 0, rec->name.len) ||
	    (rec->name.p[0] == '.' &&
	     (rec->name.len == 1 || (rec->name.len == 2 && rec->name.p[1] == '.'))) ||
	    rec->ino <= MCFS_ROOT_INO || rec->ino >= UINT64_MAX / 2 ||
	    rec->version >= UINT64_MAX / 2 ||
	    (m->store && (rec->ino >= m->ino_hwm || rec->version >= m->version_hwm)))
		return 0;
	dir = mcfs_ns_get(&m->ns, rec->parent);
	if (!dir || !S_ISDIR(dir->mode)) {
		mcfs_warn("node %s reports inode %llu in directory %llu, which is gone; dropped",
			  n->name, (unsigned long long)rec->ino, (unsigned long long)rec->parent);
		mcfs_master_mark(m, n->id, rec->ino);
		return 0;
	}
	in = mcfs_ns_get(&m->ns, rec->ino);
	if (in && (!S_ISREG(in->mode) || in->u.file.obj.version > rec->version)) {
		mcfs_master_mark(m, n->id, rec->ino); /* it learns that its copy is stale */
		return 0;
	}
	other = mcfs_ns_lookup(&m->ns, dir, (const char *)rec->name.p, rec->name.len);
	if (other && other != in &&
	    (!S_ISREG(other->mode) || other->u.file.obj.version >= rec->version)) {
		mcfs_master_mark(m, n->id, rec->ino);
		return 0;
	}
	k = reserve_reps(n, rec, reps);
	if (!k)
		return 0;
	if (other && other != in)
		mcfs_master_inode_remove(m, other, r->now_ms, r->now_ns); /* older: this one wins */
	if (!in) {
		if (mcfs_ns_create_at(&m->ns, dir, (const char *)rec->name.p, rec->name.len,
				      rec->mode, rec->uid, rec->gid, NULL, 0, rec->ino,
				      rec->mtime_ns, rec->ctime_ns, &in)) {
			reps_release(n, reps, k);
			return 0;
		}
	}
	obj = &in->u.file.obj;
	if (obj->version == rec->version) {
		/* Another holder of the same version: one more replica. */
		uint8_t added = 0;

		nall = obj->nrep;
		memcpy(all, mcfs_obj_creps(obj), nall * sizeof(all[0]));
		while (added < k && nall < MCFS_MAX_REPLICAS)
			all[nall++] = reps[added++];
		if (mcfs_obj_set_reps(obj, all, nall))
			added = 0;
		reps_release(n, reps + added, (uint8_t)(k - added));
		if (!added)
			return 0;
	} else {
		/* Newer than what others reported: theirs are stale. */
		struct mcfs_obj nobj;

		memset(&nobj, 0, sizeof(nobj));
		if (mcfs_obj_set_reps(&nobj, reps, k)) {
			reps_release(n, reps, k);
			return 0;
		}
		nobj.version = rec->version;
		nobj.size = rec->size;
		nobj.crc = rec->crc;
		mcfs_master_obj_retire(m, in->ino, obj, r->now_ms);
		*obj = nobj;
		if (mcfs_ns_parent(in) != dir || in->namelen != rec->name.len ||
		    memcmp(mcfs_inode_name(in), rec->name.p, rec->name.len))
			(void)mcfs_ns_move(&m->ns, in, dir, (const char *)rec->name.p,
					   rec->name.len, r->now_ns, NULL, NULL);
		attrs_apply(in, rec);
		in->mode = S_IFREG | (rec->mode & 07777);
		in->u.file.pin_ms = 0;
		if (rec->pin_wall_ms) {
			uint64_t wall = (uint64_t)mcfs_wall_ns() / 1000000;

			if (rec->pin_wall_ms > wall)
				in->u.file.pin_ms = r->now_ms + (rec->pin_wall_ms - wall);
		}
	}
	in->flags &= (uint8_t)~MCFS_I_PENDING;
	if (rec->version > m->last_version)
		m->last_version = rec->version;
	return 1;
}

int mcfs_master_do_report(struct mcfs_req *r)
{
	struct mcfs_master *m = r->m;
	struct mcfs_rec rec;
	struct mcfs_rd rd;
	uint32_t taken = 0;
	int ret;

	if (!r->node->recovering)
		return -EALREADY;
	/* Records are checked one by one: a bad one ends the report, the others stay. */
	m->ns.changed = NULL;
	mcfs_rd_init(&rd, r->in->value.p, r->in->value.len);
	while ((ret = mcfs_rec_next(&rd, &rec)) != 0 && ret != -EBADMSG) {
		if (ret == 1 && rec.kind == MCFS_REC_FILE)
			taken += (uint32_t)report_one(r, &rec);
	}
	m->ns.changed = mcfs_master_ns_changed;
	m->ns.changed_arg = m;
	r->node->reported += taken;
	r->out->count = taken;
	return ret == -EBADMSG ? ret : 0;
}

int mcfs_master_do_report_end(struct mcfs_req *r)
{
	struct mcfs_node *n = r->node;

	if (!n->recovering)
		return -EALREADY;
	n->recovering = false;
	mcfs_info("node %s (id %llu) reported %llu files; its segment is in use again", n->name,
		  (unsigned long long)n->id, (unsigned long long)n->reported);
	if (n->report_dropped)
		mcfs_warn(
		    "node %s: %llu reported replicas did not fit its segment and were dropped",
		    n->name, (unsigned long long)n->report_dropped);
	expect_done(r->m, n->name);
	mcfs_master_repair_mark(r->m); /* what it reported may be short of copies */
	return 0;
}
