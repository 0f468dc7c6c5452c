// SPDX-License-Identifier: Apache-2.0
/*
 * Eviction at the master (see evict_i.h for the policy): rounds that sweep
 * the inode table a bounded step per tick and then evict the oldest
 * objects they found, and the bounded synchronous eviction a failed
 * allocation asks for. An evicted object goes as by UNLINK: its name
 * leaves the namespace (on every node: they all ask the master), and its
 * space, held by no lease, is freed at once.
 */
#include "meta/master_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"

/* Room a round's heaps keep beyond its expected target, for objects created while it sweeps. */
#define ROUND_SLACK 64

static bool soft_pinned(const struct mcfs_inode *in, uint64_t now_ms)
{
	return (in->flags & MCFS_I_SOFT_PIN) && in->u.file.pin_ms > now_ms;
}

bool mcfs_evict_allowed(const struct mcfs_inode *in, uint64_t now_ms, int pass)
{
	const struct mcfs_obj *obj = &in->u.file.obj;

	if (!S_ISREG(in->mode) || (in->flags & (MCFS_I_PENDING | MCFS_I_HARD_PIN)) ||
	    !obj->version || obj->lease_ms > now_ms)
		return false;
	return pass >= 2 || !soft_pinned(in, now_ms);
}

/* Has obj a replica on node_id (any node: 0), one that holds space when need_space? */
static bool has_rep_on(const struct mcfs_obj *obj, uint64_t node_id, bool need_space)
{
	const struct mcfs_rep *reps = mcfs_obj_creps(obj);

	if (!node_id)
		return true;
	for (uint8_t i = 0; i < obj->nrep; i++) {
		if (reps[i].node_id == node_id && (reps[i].pages || !need_space))
			return true;
	}
	return false;
}

/* Oldest first; among equals the lower inode number, created first. */
static bool older(const struct mcfs_evict_cand *a, const struct mcfs_evict_cand *b)
{
	return a->age != b->age ? a->age > b->age : a->ino < b->ino;
}

static int cand_cmp(const void *x, const void *y)
{
	if (older(x, y))
		return -1;
	return older(y, x) ? 1 : 0;
}

static void cand_swap(struct mcfs_evict_cand *v, size_t i, size_t j)
{
	struct mcfs_evict_cand t = v[i];

	v[i] = v[j];
	v[j] = t;
}

/* Heap order: every parent is younger than its children, so the root is the first to give up. */
static void heap_up(struct mcfs_evict_heap *h, size_t i)
{
	while (i) {
		size_t up = (i - 1) / 2;

		if (!older(&h->v[up], &h->v[i]))
			return;
		cand_swap(h->v, up, i);
		i = up;
	}
}

static void heap_down(struct mcfs_evict_heap *h, size_t i)
{
	for (;;) {
		size_t y = i, l = 2 * i + 1, rr = l + 1;

		if (l < h->n && older(&h->v[y], &h->v[l]))
			y = l;
		if (rr < h->n && older(&h->v[y], &h->v[rr]))
			y = rr;
		if (y == i)
			return;
		cand_swap(h->v, y, i);
		i = y;
	}
}

/* Keep c if it is among the cap oldest offered. */
static void heap_offer(struct mcfs_evict_heap *h, const struct mcfs_evict_cand *c)
{
	if (h->n < h->cap) {
		h->v[h->n] = *c;
		heap_up(h, h->n++);
	} else if (h->cap && older(c, &h->v[0])) {
		h->v[0] = *c;
		heap_down(h, 0);
	}
}

static int heap_init(struct mcfs_evict_heap *h, size_t cap)
{
	h->v = malloc(cap * sizeof(*h->v));
	h->n = 0;
	h->cap = h->v ? cap : 0;
	return h->v ? 0 : -ENOMEM;
}

static void heap_fini(struct mcfs_evict_heap *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

void mcfs_evict_fini(struct mcfs_evict *ev)
{
	heap_fini(&ev->u);
	heap_fini(&ev->s);
	ev->phase = MCFS_EVICT_IDLE;
}

/* LRU clock steps from atime to base; 0 for an access after base (read since the scan began). */
static uint32_t age_of(uint32_t base, uint32_t atime)
{
	uint32_t d = base - atime;

	return d < 0x80000000u ? d : 0;
}

/* What one scan looks for and has found. */
struct scan {
	uint64_t node_id;  /* 0: any */
	bool need_space;   /* only objects whose replica there holds space: room is wanted */
	uint64_t skip_ino; /* 0: none */
	uint64_t now_ms;
	uint32_t base;
	struct mcfs_evict_heap *u, *s;
	uint64_t seen_u, seen_s;
};

static void scan_one(struct scan *sc, const struct mcfs_inode *in)
{
	struct mcfs_evict_cand c;

	if (in->ino == sc->skip_ino || !mcfs_evict_allowed(in, sc->now_ms, 2) ||
	    !has_rep_on(&in->u.file.obj, sc->node_id, sc->need_space))
		return;
	c.ino = in->ino;
	c.atime = in->lru;
	c.age = age_of(sc->base, c.atime);
	if (soft_pinned(in, sc->now_ms)) {
		sc->seen_s++;
		heap_offer(sc->s, &c);
	} else {
		sc->seen_u++;
		heap_offer(sc->u, &c);
	}
}

/* Take in out of the namespace, as UNLINK does, and count it. */
static void evict_inode(struct mcfs_master *m, struct mcfs_inode *in, uint64_t now_ms,
			int64_t now_ns)
{
	const struct mcfs_obj *obj = &in->u.file.obj;
	const struct mcfs_rep *reps = mcfs_obj_creps(obj);
	uint64_t bytes = 0;

	for (uint8_t i = 0; i < obj->nrep; i++)
		bytes += mcfs_rep_len(&reps[i]);
	m->stats.evicted_objects++;
	m->stats.evicted_bytes += bytes;
	mcfs_debug("evicting inode %llu version %llu (%llu bytes held)",
		   (unsigned long long)in->ino, (unsigned long long)obj->version,
		   (unsigned long long)bytes);
	mcfs_master_obj_retire(m, in->ino, &in->u.file.obj, now_ms);
	mcfs_ns_delete(&m->ns, in, now_ns);
}

/*
 * Evict candidate c if it still may go in this pass and was not read since
 * it was seen. True if it went.
 */
static bool evict_cand(struct mcfs_master *m, const struct mcfs_evict_cand *c, uint64_t node_id,
		       int pass, uint64_t now_ms, int64_t now_ns)
{
	struct mcfs_inode *in = mcfs_ns_get(&m->ns, c->ino);

	if (!in || !mcfs_evict_allowed(in, now_ms, pass) || in->lru != c->atime ||
	    !has_rep_on(&in->u.file.obj, node_id, false))
		return false;
	evict_inode(m, in, now_ms, now_ns);
	return true;
}

void mcfs_evict_start(struct mcfs_master *m, uint64_t node_id, uint64_t now_ms)
{
	struct mcfs_evict *ev = &m->ev;
	size_t cap;

	/* After a round that found too little: what is leased or pinned stays so a while. */
	if (ev->phase != MCFS_EVICT_IDLE || now_ms < ev->idle_until_ms)
		return;
	/* The target is a share of the evictable objects, and there are no more than inodes. */
	cap = (size_t)(m->conf.evict_ratio * (double)m->ns.ninodes) + ROUND_SLACK;
	if (heap_init(&ev->u, cap) || heap_init(&ev->s, cap)) {
		mcfs_evict_fini(ev);
		mcfs_warn("out of memory starting an eviction round; trying again later");
		return;
	}
	ev->phase = MCFS_EVICT_SWEEP;
	ev->node_id = node_id;
	ev->base = mcfs_lru_clock(now_ms);
	ev->cursor = 0;
	ev->seen_u = ev->seen_s = 0;
	ev->target = ev->done = ev->credit = 0;
	ev->iu = ev->is = 0;
	m->stats.evict_rounds++;
}

/* The sweep is over: how many go, in which order. */
static void sweep_done(struct mcfs_master *m)
{
	struct mcfs_evict *ev = &m->ev;
	uint64_t seen = ev->seen_u + ev->seen_s;
	double x = m->conf.evict_ratio * (double)(seen + ev->credit);
	uint64_t t = (uint64_t)x;

	/* At least the ratio: round up, but not for the last bits of a product like 0.05 * 40. */
	if (x - (double)t > 1e-9)
		t++;
	if (!t && seen)
		t = 1;
	/* What failed allocations evicted meanwhile counts. */
	ev->target = t > ev->credit ? t - ev->credit : 0;
	qsort(ev->u.v, ev->u.n, sizeof(*ev->u.v), cand_cmp);
	qsort(ev->s.v, ev->s.n, sizeof(*ev->s.v), cand_cmp);
	ev->phase = MCFS_EVICT_EVICT;
}

static void round_end(struct mcfs_master *m, uint64_t now_ms)
{
	struct mcfs_evict *ev = &m->ev;

	if (ev->done < ev->target || !(ev->seen_u + ev->seen_s)) {
		/* The rest is leased or pinned: sweeping again at once would find the same. */
		ev->idle_until_ms = now_ms + MCFS_EVICT_IDLE_MS;
		mcfs_debug("eviction round: %llu of %llu objects evicted; the rest are leased or "
			   "pinned",
			   (unsigned long long)ev->done, (unsigned long long)ev->target);
	}
	mcfs_evict_fini(ev);
}

bool mcfs_evict_step(struct mcfs_master *m, uint64_t now_ms, int64_t now_ns)
{
	struct mcfs_evict *ev = &m->ev;
	unsigned budget = MCFS_EVICT_STEP;
	bool pass2;

	if (ev->phase == MCFS_EVICT_SWEEP) {
		const struct mcfs_ptab *t = &m->ns.by_ino;
		size_t nslots = t->slots ? t->mask + 1 : 0;
		struct scan sc = {.node_id = ev->node_id,
				  .now_ms = now_ms,
				  .base = ev->base,
				  .u = &ev->u,
				  .s = &ev->s};

		/* The table may have grown since the last step: the cursor just goes on. */
		while (budget && ev->cursor < nslots) {
			uint32_t ref = t->slots[ev->cursor++];

			budget--;
			m->stats.evict_inspected++;
			if (ref)
				scan_one(&sc, mcfs_ptab_elem(t, ref));
		}
		ev->seen_u += sc.seen_u;
		ev->seen_s += sc.seen_s;
		if (ev->cursor < nslots)
			return true;
		sweep_done(m);
	}
	if (ev->phase != MCFS_EVICT_EVICT)
		return false;
	/* Soft-pinned objects only once every unpinned one the sweep met had its turn. */
	pass2 = ev->seen_u <= ev->u.n;
	while (ev->done < ev->target) {
		const struct mcfs_evict_cand *c;
		int pass;

		if (ev->iu < ev->u.n) {
			if (!budget)
				return true;
			c = &ev->u.v[ev->iu++];
			pass = 1;
		} else if (pass2 && ev->is < ev->s.n) {
			if (!budget)
				return true;
			c = &ev->s.v[ev->is++];
			pass = 2;
		} else {
			break;
		}
		budget--;
		if (evict_cand(m, c, ev->node_id, pass, now_ms, now_ns))
			ev->done++;
	}
	round_end(m, now_ms);
	return false;
}

/* Evict h's candidates oldest first, trying the allocation after each. */
static int evict_until(struct mcfs_master *m, struct mcfs_evict_heap *h, int pass, uint64_t node_id,
		       uint64_t now_ms, int64_t now_ns, int (*try_alloc)(void *arg), void *arg)
{
	int ret;

	qsort(h->v, h->n, sizeof(*h->v), cand_cmp);
	for (size_t i = 0; i < h->n; i++) {
		if (!evict_cand(m, &h->v[i], node_id, pass, now_ms, now_ns))
			continue;
		ret = try_alloc(arg);
		if (ret != -ENOSPC)
			return ret;
	}
	return -ENOSPC;
}

int mcfs_evict_alloc(struct mcfs_master *m, uint64_t node_id, uint64_t skip_ino, uint64_t now_ms,
		     int64_t now_ns, int (*try_alloc)(void *arg), void *arg)
{
	struct mcfs_evict *ev = &m->ev;
	struct mcfs_evict_heap u = {0}, s = {0};
	uint64_t evicted = m->stats.evicted_objects;
	int ret = -ENOSPC;

	m->stats.alloc_evictions++;
	/* The room asked for now comes below; the round frees the ratio over the next ticks. */
	mcfs_evict_start(m, node_id, now_ms);
	if (heap_init(&u, MCFS_EVICT_SYNC_CAND) || heap_init(&s, MCFS_EVICT_SYNC_CAND)) {
		ret = -ENOMEM;
		goto out_free_heaps;
	}
	for (int tries = 0; tries < MCFS_EVICT_SYNC_TRIES && ret == -ENOSPC; tries++) {
		const struct mcfs_ptab *t = &m->ns.by_ino;
		size_t nslots = t->slots ? t->mask + 1 : 0;
		size_t span = nslots < MCFS_EVICT_SYNC_SPAN ? nslots : MCFS_EVICT_SYNC_SPAN;
		bool whole = span == nslots;
		struct scan sc = {.node_id = node_id,
				  .need_space = true,
				  .skip_ino = skip_ino,
				  .now_ms = now_ms,
				  .base = mcfs_lru_clock(now_ms),
				  .u = &u,
				  .s = &s};

		u.n = s.n = 0;
		if (ev->sync_cursor >= nslots)
			ev->sync_cursor = 0;
		/* The slot count is a power of two: the window wraps around with the mask. */
		for (size_t k = 0; k < span; k++) {
			uint32_t ref = t->slots[ev->sync_cursor];

			ev->sync_cursor = (ev->sync_cursor + 1) & t->mask;
			if (ref)
				scan_one(&sc, mcfs_ptab_elem(t, ref));
		}
		m->stats.evict_inspected += span;
		if (!u.n && !s.n) {
			if (whole)
				break; /* nothing evictable at all: ENOSPC at once */
			continue;
		}
		ret = evict_until(m, &u, 1, node_id, now_ms, now_ns, try_alloc, arg);
		/*
		 * Soft-pinned ones when no unpinned one is left: every one in the
		 * table was tried (whole), or the window held none (a sample).
		 */
		if (ret == -ENOSPC && (whole ? sc.seen_u <= u.n : !sc.seen_u))
			ret = evict_until(m, &s, 2, node_id, now_ms, now_ns, try_alloc, arg);
	}
out_free_heaps:
	heap_fini(&u);
	heap_fini(&s);
	/* They count towards the round's share, if they are of its objects. */
	if (ev->phase != MCFS_EVICT_IDLE && (!ev->node_id || ev->node_id == node_id))
		ev->credit += m->stats.evicted_objects - evicted;
	if (ret == -ENOSPC)
		m->stats.alloc_enospc++;
	return ret;
}
