// SPDX-License-Identifier: Apache-2.0
/* The node's catalog of the files it holds replicas of (see catalog.h). */
#include "mcfs/catalog.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "common/buf.h"
#include "meta/proto.h"

struct entry {
	uint64_t ino;
	uint64_t version;
	uint8_t *raw; /* the encoded record, its length word included */
	uint32_t len;
	UT_hash_handle hh;
};

struct mcfs_catalog {
	pthread_mutex_t lock;
	struct entry *by_ino;
};

int mcfs_catalog_create(struct mcfs_catalog **out)
{
	struct mcfs_catalog *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void entry_free(struct mcfs_catalog *c, struct entry *e)
{
	HASH_DEL(c->by_ino, e);
	free(e->raw);
	free(e);
}

void mcfs_catalog_clear(struct mcfs_catalog *c)
{
	struct entry *e, *tmp;

	pthread_mutex_lock(&c->lock);
	HASH_ITER(hh, c->by_ino, e, tmp)
	entry_free(c, e);
	pthread_mutex_unlock(&c->lock);
}

void mcfs_catalog_destroy(struct mcfs_catalog *c)
{
	struct entry *e, *tmp;

	if (!c)
		return;
	HASH_ITER(hh, c->by_ino, e, tmp)
	entry_free(c, e);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int apply_one(struct mcfs_catalog *c, const struct mcfs_rec *rec)
{
	struct entry *e;
	uint8_t *raw;

	HASH_FIND(hh, c->by_ino, &rec->ino, sizeof(rec->ino), e);
	if (e && e->version > rec->version)
		return 0; /* ours is newer: this one was overtaken on the way */
	if (rec->kind == MCFS_REC_DROP) {
		if (e)
			entry_free(c, e);
		return 0;
	}
	if (rec->kind != MCFS_REC_FILE)
		return 0;
	raw = malloc(rec->raw.len);
	if (!raw)
		return -ENOMEM;
	memcpy(raw, rec->raw.p, rec->raw.len);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			free(raw);
			return -ENOMEM;
		}
		e->ino = rec->ino;
		HASH_ADD(hh, c->by_ino, ino, sizeof(e->ino), e);
		if (!e->hh.tbl) {
			free(e);
			free(raw);
			return -ENOMEM;
		}
	}
	free(e->raw);
	e->raw = raw;
	e->len = rec->raw.len;
	e->version = rec->version;
	return 0;
}

int mcfs_catalog_apply(struct mcfs_catalog *c, const uint8_t *p, size_t len)
{
	struct mcfs_rec rec;
	struct mcfs_rd r;
	int ret;

	mcfs_rd_init(&r, p, len);
	pthread_mutex_lock(&c->lock);
	while ((ret = mcfs_rec_next(&r, &rec)) != 0) {
		if (ret == -EINVAL)
			continue; /* one bad record: the others still count */
		if (ret < 0)
			break;
		ret = apply_one(c, &rec);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int mcfs_catalog_report(struct mcfs_catalog *c,
			int (*send)(void *arg, const uint8_t *p, size_t len, uint32_t count),
			void *arg, size_t max)
{
	struct mcfs_buf b;
	struct entry *e, *tmp;
	int ret = 0;

	mcfs_buf_init(&b);
	/* A copy, so the lock is not held while the master is talked to. */
	pthread_mutex_lock(&c->lock);
	HASH_ITER(hh, c->by_ino, e, tmp)
	mcfs_buf_put(&b, e->raw, e->len);
	pthread_mutex_unlock(&c->lock);
	if (b.oom) {
		mcfs_buf_fini(&b);
		return -ENOMEM;
	}
	{
		struct mcfs_rd r;
		struct mcfs_rec rec;
		size_t start = 0, end = 0;
		uint32_t n = 0;

		mcfs_rd_init(&r, b.data, b.len);
		while (!ret && mcfs_rec_next(&r, &rec) == 1) { /* our own: all well-formed */
			if (end > start && end - start + rec.raw.len > max) {
				ret = send(arg, b.data + start, end - start, n);
				start = end;
				n = 0;
			}
			end += rec.raw.len;
			n++;
		}
		if (!ret && end > start)
			ret = send(arg, b.data + start, end - start, n);
	}
	mcfs_buf_fini(&b);
	return ret;
}

size_t mcfs_catalog_count(struct mcfs_catalog *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = HASH_COUNT(c->by_ino);
	pthread_mutex_unlock(&c->lock);
	return n;
}
