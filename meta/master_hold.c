// SPDX-License-Identifier: Apache-2.0
/*
 * Read holds: which nodes read which version of a file now, so that the
 * space of a version unlinked or replaced is freed the moment its last
 * reader closes it, not when its read lease runs out.
 *
 * GET and PUT_END (the writer keeps reading what it wrote) acquire a hold
 * for the calling node on (ino, version); RELEASE gives back as many as the
 * node's daemon acquired once its last handle on that version has closed.
 * Counting acquisitions, not handles, makes a RELEASE that crosses a new GET
 * on the wire harmless. LEASE renewals keep a hold alive (and bring it back
 * after a master restart). A hold lasts as long as the read lease it came
 * with unless renewed, so a node that dies or forgets to release holds
 * nothing for longer than the lease.
 *
 * A retired version (mcfs_master_obj_retire) that no live hold covers is
 * freed at once; otherwise when the last hold is released, or at the latest
 * when its lease runs out (mcfs_master_tick).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "meta/master_i.h"

static struct mcfs_hold *hold_find(struct mcfs_master *m, uint64_t ino, uint64_t version)
{
	struct mcfs_hold *h, key;

	memset(&key.key, 0, sizeof(key.key));
	key.key.ino = ino;
	key.key.version = version;
	HASH_FIND(hh, m->holds, &key.key, sizeof(key.key), h);
	return h;
}

static void hold_free(struct mcfs_master *m, struct mcfs_hold *h)
{
	HASH_DEL(m->holds, h);
	free(h->v);
	free(h);
}

void mcfs_master_hold(struct mcfs_master *m, uint64_t ino, uint64_t version, uint64_t node_id,
		      uint64_t now_ms, bool acquire)
{
	struct mcfs_hold *h = hold_find(m, ino, version);
	uint64_t until = now_ms + m->conf.lease_ms;
	struct mcfs_hold_node *hn = NULL;

	if (!node_id || !version)
		return;
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h)
			return; /* the read lease alone protects it, as before holds */
		h->key.ino = ino;
		h->key.version = version;
		HASH_ADD(hh, m->holds, key, sizeof(h->key), h);
		if (!h->hh.tbl) {
			free(h);
			return;
		}
	}
	for (uint32_t i = 0; i < h->n && !hn; i++)
		if (h->v[i].node_id == node_id)
			hn = &h->v[i];
	if (!hn) {
		if (h->n == h->cap) {
			uint32_t cap = h->cap ? h->cap * 2 : 2;
			struct mcfs_hold_node *v = realloc(h->v, cap * sizeof(*v));

			if (!v) {
				if (!h->n)
					hold_free(m, h);
				return;
			}
			h->v = v;
			h->cap = cap;
		}
		hn = &h->v[h->n++];
		memset(hn, 0, sizeof(*hn));
		hn->node_id = node_id;
	}
	if (acquire)
		hn->count++;
	else if (!hn->count)
		hn->count = 1; /* a renewal of a hold this master never saw (it restarted) */
	if (hn->until_ms < until)
		hn->until_ms = until;
}

bool mcfs_master_held(struct mcfs_master *m, uint64_t ino, uint64_t version, uint64_t now_ms)
{
	struct mcfs_hold *h = hold_find(m, ino, version);

	if (!h)
		return false;
	for (uint32_t i = 0; i < h->n; i++)
		if (h->v[i].count && h->v[i].until_ms > now_ms)
			return true;
	return false;
}

/* Drop node i of h; h itself when it was the last. */
static bool hold_drop(struct mcfs_master *m, struct mcfs_hold *h, uint32_t i)
{
	h->v[i] = h->v[--h->n];
	if (h->n)
		return false;
	hold_free(m, h);
	return true;
}

static void free_if_unheld(struct mcfs_master *m, uint64_t ino, uint64_t version, uint64_t now_ms)
{
	struct mcfs_retired *rt, key;

	if (mcfs_master_held(m, ino, version, now_ms))
		return;
	memset(&key, 0, sizeof(key));
	key.key.ino = ino;
	key.key.version = version;
	HASH_FIND(hh, m->retired, &key.key, sizeof(key.key), rt);
	if (rt)
		mcfs_master_retired_free(m, rt);
}

int mcfs_master_do_release(struct mcfs_req *r)
{
	struct mcfs_master *m = r->m;
	struct mcfs_rd rd;
	uint32_t done = 0;

	if (r->in->value.len % MCFS_RELEASE_ENTRY)
		return -EBADMSG;
	mcfs_rd_init(&rd, r->in->value.p, r->in->value.len);
	while (mcfs_rd_left(&rd)) {
		uint64_t ino = mcfs_rd_u64(&rd), version = mcfs_rd_u64(&rd);
		uint32_t count = mcfs_rd_u32(&rd);
		struct mcfs_hold *h = hold_find(m, ino, version);

		if (!h)
			continue;
		for (uint32_t i = 0; i < h->n; i++) {
			if (h->v[i].node_id != r->caller)
				continue;
			h->v[i].count = h->v[i].count > count ? h->v[i].count - count : 0;
			if (!h->v[i].count)
				hold_drop(m, h, i);
			done++;
			break;
		}
		free_if_unheld(m, ino, version, r->now_ms);
	}
	r->out->count = done;
	return 0;
}

void mcfs_master_hold_strip(struct mcfs_master *m, uint64_t node_id)
{
	struct mcfs_hold *h, *tmp;

	HASH_ITER(hh, m->holds, h, tmp)
	{
		for (uint32_t i = 0; i < h->n; i++) {
			if (h->v[i].node_id == node_id) {
				hold_drop(m, h, i);
				break;
			}
		}
	}
}

void mcfs_master_hold_expire(struct mcfs_master *m, uint64_t now_ms)
{
	struct mcfs_hold *h, *tmp;

	HASH_ITER(hh, m->holds, h, tmp)
	{
		for (uint32_t i = h->n; i-- > 0;) {
			if (h->v[i].until_ms <= now_ms && hold_drop(m, h, i))
				break;
		}
	}
}

void mcfs_master_holds_free(struct mcfs_master *m)
{
	struct mcfs_hold *h, *tmp;

	HASH_ITER(hh, m->holds, h, tmp)
	hold_free(m, h);
}
