// SPDX-License-Identifier: Apache-2.0
/*
 * The master's durable store: an append-only log in --data-dir, replayed and
 * compacted at open, or (HA) keys in etcd written through a leadership fence.
 * Both backends keep the same in-memory table of live entries; a backend is
 * an ops table that makes a change, already applied to the table, durable.
 * See meta/persist.h.
 */
#include "meta/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "meta/etcd.h"

#define LOG_NAME     "meta.log"
#define LOG_TMP	     "meta.log.tmp"
#define LOCK_NAME    "lock"
#define MAGIC	     "MCFSLOG1"
#define MAGIC_LEN    8
#define ENTRY_MAX    (1u << 20)
#define OP_PUT	     1
#define OP_DEL	     2
#define ENTRY_HEAD   8	/* u32 length, u32 crc */
#define PAYLOAD_HEAD 10 /* u8 op, u8 kind, u64 key */

/* etcd: prefix + kind (2 hex digits) + "/" + key (16 hex digits) */
#define ETCD_KEY_TAIL	  19
#define ETCD_RETRY_MS	  2000 /* how long a write retries an unreachable etcd */
#define ETCD_BACKOFF_MS	  50   /* the first pause between tries, doubled each time */
#define ETCD_RESYNC_EVERY 1000 /* ms between two resyncs tried by flush */

struct entry {
	struct {
		uint8_t kind;
		uint8_t pad[7];
		uint64_t key;
	} id;
	uint8_t *val;
	size_t len;
	bool synced; /* etcd resync: etcd holds this very value */
	UT_hash_handle hh;
};

struct mcfs_persist;

/* A backend. write() makes durable one change that is already in p->live. */
struct backend_ops {
	int (*write)(struct mcfs_persist *p, uint8_t op, uint8_t kind, uint64_t key,
		     const void *val, size_t len);
	int (*flush)(struct mcfs_persist *p);
	void (*fini)(struct mcfs_persist *p); /* frees what the backend holds, not p->live */
};

struct mcfs_persist {
	const struct backend_ops *ops;
	bool broken; /* a write failed for good: refuse further writes, say so once */
	struct entry *live;
	/* the file backend */
	char *dir;
	int lock_fd;
	int fd; /* the log, open for appending */
	bool dirty;
	pthread_t syncer; /* runs the fdatasyncs (syncer_main) */
	bool syncer_started, sync_wanted, sync_stop;
	pthread_mutex_t slock;
	pthread_cond_t scond;
	/* the etcd backend */
	struct mcfs_etcd *etcd; /* borrowed */
	char *prefix;
	size_t prefix_len;
	char *guard_key;
	int64_t guard_rev;
	char *key;	       /* prefix + room for the tail: the key being written */
	bool resync;	       /* a write failed: etcd may differ from p->live */
	int resync_err;	       /* the last failure */
	uint64_t resync_at_ms; /* flush tries to resync from then on */
};

static const struct backend_ops file_ops, etcd_ops;

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static struct entry *entry_find(struct mcfs_persist *p, uint8_t kind, uint64_t key)
{
	struct entry *e, k;

	memset(&k.id, 0, sizeof(k.id));
	k.id.kind = kind;
	k.id.key = key;
	HASH_FIND(hh, p->live, &k.id, sizeof(k.id), e);
	return e;
}

static void entry_drop(struct mcfs_persist *p, struct entry *e)
{
	HASH_DEL(p->live, e);
	free(e->val);
	free(e);
}

/* Apply one operation to the in-memory table. 0 or -ENOMEM. */
static int apply(struct mcfs_persist *p, uint8_t op, uint8_t kind, uint64_t key, const uint8_t *val,
		 size_t len)
{
	struct entry *e = entry_find(p, kind, key);
	uint8_t *copy;

	if (op == OP_DEL) {
		if (e)
			entry_drop(p, e);
		return 0;
	}
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, val, len);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			free(copy);
			return -ENOMEM;
		}
		e->id.kind = kind;
		e->id.key = key;
		HASH_ADD(hh, p->live, id, sizeof(e->id), e);
		if (!e->hh.tbl) {
			free(e);
			free(copy);
			return -ENOMEM;
		}
	}
	free(e->val);
	e->val = copy;
	e->len = len;
	return 0;
}

static void entry_encode(struct mcfs_buf *b, uint8_t op, uint8_t kind, uint64_t key,
			 const void *val, size_t len)
{
	size_t start = b->len;

	mcfs_buf_put_u32(b, (uint32_t)(PAYLOAD_HEAD + len));
	mcfs_buf_put_u32(b, 0);
	mcfs_buf_put_u8(b, op);
	mcfs_buf_put_u8(b, kind);
	mcfs_buf_put_u64(b, key);
	mcfs_buf_put(b, val, len);
	if (!b->oom)
		mcfs_buf_set_u32(b, start + 4,
				 mcfs_crc32c(0, b->data + start + ENTRY_HEAD, PAYLOAD_HEAD + len));
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

/* Replay the log into the table; a bad entry ends it (the compaction cuts it off). */
/*
 * Replay the log at path into the table. *clean: the whole file is valid
 * and holds not much more than the live entries, so it can be appended to
 * as it is (no compaction, no fsync at start: on a busy disk that can take
 * seconds).
 */
static int replay(struct mcfs_persist *p, const char *path, bool *clean)
{
	uint8_t *buf;
	size_t len, off = MAGIC_LEN, n = 0;
	int ret = read_file(path, &buf, &len);

	*clean = false;
	if (ret || !buf)
		return ret;
	if (len && (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN))) {
		mcfs_err("%s is not an mcfs master log; move it away or pick another --data-dir",
			 path);
		free(buf);
		return -EINVAL;
	}
	while (len && off < len) {
		uint32_t plen, crc;
		const uint8_t *pl;

		if (len - off < ENTRY_HEAD)
			break;
		plen = mcfs_get_u32le(buf + off);
		crc = mcfs_get_u32le(buf + off + 4);
		if (plen < PAYLOAD_HEAD || plen > ENTRY_MAX || len - off - ENTRY_HEAD < plen)
			break;
		pl = buf + off + ENTRY_HEAD;
		if (mcfs_crc32c(0, pl, plen) != crc)
			break;
		ret = apply(p, pl[0], pl[1], mcfs_get_u64le(pl + 2), pl + PAYLOAD_HEAD,
			    plen - PAYLOAD_HEAD);
		if (ret) {
			free(buf);
			return ret;
		}
		off += ENTRY_HEAD + plen;
		n++;
	}
	if (len && off < len)
		mcfs_warn("%s: %zu bytes at its end are torn or corrupt and are dropped", path,
			  len - off);
	*clean = len >= MAGIC_LEN && off == len && n <= 2 * (size_t)HASH_COUNT(p->live) + 64;
	free(buf);
	return 0;
}

/* Write the live table as a fresh log and put it in place; leaves p->fd open on it. */
static int compact(struct mcfs_persist *p)
{
	char *tmp = path_in(p->dir, LOG_TMP), *log = path_in(p->dir, LOG_NAME);
	struct mcfs_buf b;
	struct entry *e, *etmp;
	int fd = -1, ret = -ENOMEM;

	mcfs_buf_init(&b);
	if (!tmp || !log)
		goto out;
	mcfs_buf_put(&b, MAGIC, MAGIC_LEN);
	HASH_ITER(hh, p->live, e, etmp)
	entry_encode(&b, OP_PUT, e->id.kind, e->id.key, e->val, e->len);
	if (b.oom)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = write_all(fd, b.data, b.len);
	if (!ret && fdatasync(fd) < 0)
		ret = -errno;
	if (!ret && rename(tmp, log) < 0)
		ret = -errno;
	if (ret) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	/* The rename itself must survive a crash: sync the directory. */
	{
		int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	if (lseek(fd, 0, SEEK_END) < 0) {
		ret = -errno;
		close(fd);
		goto out;
	}
	p->fd = fd;
out:
	mcfs_buf_fini(&b);
	free(tmp);
	free(log);
	return ret;
}

static void *syncer_main(void *arg);

int mcfs_persist_open(const char *dir, struct mcfs_persist **out)
{
	struct mcfs_persist *p = calloc(1, sizeof(*p));
	char *lock = NULL, *log = NULL;
	bool clean;
	int ret = -ENOMEM;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->slock, NULL);
	pthread_cond_init(&p->scond, NULL);
	p->ops = &file_ops;
	p->fd = -1;
	p->lock_fd = -1;
	p->dir = strdup(dir);
	if (!p->dir)
		goto fail;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		mcfs_err("cannot create data directory %s: %s", dir, strerror(-ret));
		goto fail;
	}
	lock = path_in(dir, LOCK_NAME);
	log = path_in(dir, LOG_NAME);
	if (!lock || !log)
		goto fail;
	p->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p->lock_fd < 0) {
		ret = -errno;
		mcfs_err("cannot open %s: %s", lock, strerror(-ret));
		goto fail;
	}
	if (flock(p->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		mcfs_err("data directory %s is in use by another mcfs-master", dir);
		goto fail;
	}
	ret = replay(p, log, &clean);
	if (ret)
		goto fail;
	if (clean) {
		p->fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
		ret = p->fd < 0 ? -errno : 0;
	} else {
		ret = compact(p);
	}
	if (ret) {
		mcfs_err("cannot write %s/%s: %s", dir, LOG_NAME, strerror(-ret));
		goto fail;
	}
	ret = -pthread_create(&p->syncer, NULL, syncer_main, p);
	if (ret)
		goto fail;
	p->syncer_started = true;
	free(lock);
	free(log);
	*out = p;
	return 0;

fail:
	free(lock);
	free(log);
	mcfs_persist_close(p);
	return ret;
}

static void file_fini(struct mcfs_persist *p)
{
	if (p->syncer_started) {
		pthread_mutex_lock(&p->slock);
		p->sync_stop = true;
		pthread_cond_signal(&p->scond);
		pthread_mutex_unlock(&p->slock);
		pthread_join(p->syncer, NULL);
	}
	pthread_cond_destroy(&p->scond);
	pthread_mutex_destroy(&p->slock);
	if (p->fd >= 0) {
		if (p->dirty)
			(void)fdatasync(p->fd);
		close(p->fd);
	}
	if (p->lock_fd >= 0)
		close(p->lock_fd); /* drops the flock */
	free(p->dir);
}

void mcfs_persist_close(struct mcfs_persist *p)
{
	struct entry *e, *tmp;

	if (!p)
		return;
	p->ops->fini(p);
	HASH_ITER(hh, p->live, e, tmp)
	entry_drop(p, e);
	free(p);
}

int mcfs_persist_load(struct mcfs_persist *p,
		      int (*fn)(void *arg, uint8_t kind, uint64_t key, const uint8_t *val,
				size_t len),
		      void *arg)
{
	struct entry *e, *tmp;

	HASH_ITER(hh, p->live, e, tmp)
	{
		int ret = fn(arg, e->id.kind, e->id.key, e->val, e->len);

		if (ret)
			return ret;
	}
	return 0;
}

static int file_write(struct mcfs_persist *p, uint8_t op, uint8_t kind, uint64_t key,
		      const void *val, size_t len)
{
	struct mcfs_buf b;
	int ret;

	mcfs_buf_init(&b);
	entry_encode(&b, op, kind, key, val, len);
	ret = b.oom ? -ENOMEM : write_all(p->fd, b.data, b.len);
	mcfs_buf_fini(&b);
	if (ret) {
		p->broken = true;
		mcfs_err("cannot append to %s/%s: %s; directories changed from now on are not "
			 "durable",
			 p->dir, LOG_NAME, strerror(-ret));
		return ret;
	}
	p->dirty = true;
	return 0;
}

/*
 * fdatasync on a thread of its own: on a busy disk one can take seconds,
 * which the master's request loop must not wait for. The appends are in the
 * kernel already (a killed master loses nothing); this covers a machine
 * crash, a tick later.
 */
static void *syncer_main(void *arg)
{
	struct mcfs_persist *p = arg;

	pthread_mutex_lock(&p->slock);
	while (!p->sync_stop) {
		if (!p->sync_wanted) {
			pthread_cond_wait(&p->scond, &p->slock);
			continue;
		}
		p->sync_wanted = false;
		pthread_mutex_unlock(&p->slock);
		if (fdatasync(p->fd) < 0)
			mcfs_warn("fdatasync of %s/%s: %s", p->dir, LOG_NAME, strerror(errno));
		pthread_mutex_lock(&p->slock);
	}
	pthread_mutex_unlock(&p->slock);
	return NULL;
}

static int file_flush(struct mcfs_persist *p)
{
	if (!p->dirty || p->fd < 0)
		return 0;
	p->dirty = false;
	pthread_mutex_lock(&p->slock);
	p->sync_wanted = true;
	pthread_cond_signal(&p->scond);
	pthread_mutex_unlock(&p->slock);
	return 0;
}

static const struct backend_ops file_ops = {
    .write = file_write,
    .flush = file_flush,
    .fini = file_fini,
};

/* Apply one change to the table, then have the backend make it durable. */
static int change(struct mcfs_persist *p, uint8_t op, uint8_t kind, uint64_t key, const void *val,
		  size_t len)
{
	int ret;

	if (p->broken)
		return -EIO;
	if (PAYLOAD_HEAD + len > ENTRY_MAX)
		return -EMSGSIZE;
	ret = apply(p, op, kind, key, val, len);
	if (ret)
		return ret;
	return p->ops->write(p, op, kind, key, val, len);
}

int mcfs_persist_put(struct mcfs_persist *p, uint8_t kind, uint64_t key, const void *val,
		     size_t len)
{
	return change(p, OP_PUT, kind, key, val, len);
}

int mcfs_persist_del(struct mcfs_persist *p, uint8_t kind, uint64_t key)
{
	if (!entry_find(p, kind, key))
		return 0;
	return change(p, OP_DEL, kind, key, NULL, 0);
}

int mcfs_persist_put_u64(struct mcfs_persist *p, uint64_t key, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return mcfs_persist_put(p, MCFS_PERSIST_META, key, b, sizeof(b));
}

int mcfs_persist_flush(struct mcfs_persist *p)
{
	return p->ops->flush(p);
}

/* ---------------------------------------------------------------------------
 * The etcd backend: one key per entry, every write fenced by the leader's key
 */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Fill p->key with the key of (kind, key); returns p->key. */
static const char *etcd_key(struct mcfs_persist *p, uint8_t kind, uint64_t key)
{
	snprintf(p->key + p->prefix_len, ETCD_KEY_TAIL + 1, "%02x/%016llx", kind,
		 (unsigned long long)key);
	return p->key;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse the tail of a key found under the prefix. false: not one of ours. */
static bool etcd_parse_key(const struct mcfs_persist *p, const char *k, uint8_t *kind,
			   uint64_t *key)
{
	const char *t = k + p->prefix_len;
	int hi, lo;
	uint64_t v = 0;

	if (strlen(k) != p->prefix_len + ETCD_KEY_TAIL || memcmp(k, p->prefix, p->prefix_len) ||
	    t[2] != '/')
		return false;
	hi = hex_digit(t[0]);
	lo = hex_digit(t[1]);
	if (hi < 0 || lo < 0)
		return false;
	for (int i = 3; i < ETCD_KEY_TAIL; i++) {
		int d = hex_digit(t[i]);

		if (d < 0)
			return false;
		v = v * 16 + (uint64_t)d;
	}
	*kind = (uint8_t)(hi * 16 + lo);
	*key = v;
	return true;
}

static bool etcd_transient(int rc)
{
	return rc == -ETIMEDOUT || rc == -EIO || rc == -EAGAIN;
}

/* The guard failed: this master is no longer the leader. */
static int etcd_lost(struct mcfs_persist *p)
{
	if (!p->broken)
		mcfs_err("lost leadership: the store refuses writes (etcd guard %s at revision "
			 "%lld is gone)",
			 p->guard_key, (long long)p->guard_rev);
	p->broken = true;
	return -ECANCELED;
}

/* One fenced write of what the table holds for (kind, key): a put, or a delete when absent. */
static int etcd_sync_one(struct mcfs_persist *p, uint8_t kind, uint64_t key)
{
	struct entry *e = entry_find(p, kind, key);
	const char *k = etcd_key(p, kind, key);

	if (e)
		return mcfs_etcd_put_if(p->etcd, p->guard_key, p->guard_rev, k, e->val, e->len);
	/* deleting nothing is not an error for delete_if */
	return mcfs_etcd_delete_if(p->etcd, p->guard_key, p->guard_rev, k, false);
}

static int etcd_write(struct mcfs_persist *p, uint8_t op, uint8_t kind, uint64_t key,
		      const void *val, size_t len)
{
	uint64_t start = mcfs_now_ms();
	unsigned pause = ETCD_BACKOFF_MS;
	int rc;

	(void)val, (void)len; /* the table has them */
	for (;;) {
		rc = etcd_sync_one(p, kind, key);
		if (!rc)
			return 0;
		if (rc == -ECANCELED)
			return etcd_lost(p);
		/* While etcd is known to be failing, one try only: the caller's loop waits. */
		if (!etcd_transient(rc) || p->resync ||
		    mcfs_now_ms() + pause - start > ETCD_RETRY_MS)
			break;
		sleep_ms(pause);
		pause *= 2;
	}
	if (!p->resync)
		mcfs_err("etcd store: cannot %s %s: %s (%s); the store resyncs at the next flush",
			 op == OP_PUT ? "write" : "delete", p->key, strerror(-rc),
			 mcfs_etcd_errmsg(p->etcd));
	else
		mcfs_debug("etcd store: cannot %s %s: %s", op == OP_PUT ? "write" : "delete",
			   p->key, strerror(-rc));
	p->resync = true;
	p->resync_err = rc;
	p->resync_at_ms = mcfs_now_ms() + ETCD_RESYNC_EVERY;
	return rc;
}

struct etcd_id {
	uint8_t kind;
	uint64_t key;
};

struct etcd_diff {
	struct mcfs_persist *p;
	struct etcd_id *gone; /* in etcd, not in the table */
	size_t ngone, cap;
};

static int etcd_diff_kv(void *arg, const char *k, const void *val, size_t len, int64_t mod_rev)
{
	struct etcd_diff *d = arg;
	struct entry *e;
	uint8_t kind;
	uint64_t key;

	(void)mod_rev;
	if (!etcd_parse_key(d->p, k, &kind, &key))
		return 0; /* not ours: left alone */
	e = entry_find(d->p, kind, key);
	if (e) {
		e->synced = e->len == len && !memcmp(e->val, val, len);
		return 0;
	}
	if (d->ngone == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		void *g = realloc(d->gone, cap * sizeof(*d->gone));

		if (!g)
			return -ENOMEM;
		d->gone = g;
		d->cap = cap;
	}
	d->gone[d->ngone].kind = kind;
	d->gone[d->ngone].key = key;
	d->ngone++;
	return 0;
}

/*
 * Make etcd hold exactly the table after failed writes (each may or may not
 * have landed): read the prefix, delete what the table lacks, put what
 * differs. One try per request.
 */
static int etcd_resync(struct mcfs_persist *p)
{
	struct etcd_diff d = {.p = p};
	struct entry *e, *tmp;
	size_t n = 0;
	int rc;

	HASH_ITER(hh, p->live, e, tmp)
	e->synced = false;
	rc = mcfs_etcd_get(p->etcd, p->prefix, true, etcd_diff_kv, &d, NULL);
	if (rc == -ECANCELED)
		rc = -EIO; /* a cancelled read, not a failed guard */
	for (size_t i = 0; !rc && i < d.ngone; i++, n++)
		rc = etcd_sync_one(p, d.gone[i].kind, d.gone[i].key);
	HASH_ITER(hh, p->live, e, tmp)
	{
		if (rc)
			break;
		if (!e->synced) {
			rc = etcd_sync_one(p, e->id.kind, e->id.key);
			n++;
		}
	}
	free(d.gone);
	if (rc == -ECANCELED)
		return etcd_lost(p);
	if (rc) {
		p->resync_err = rc;
		p->resync_at_ms = mcfs_now_ms() + ETCD_RESYNC_EVERY;
		mcfs_debug("etcd store: resync failed: %s", strerror(-rc));
		return rc;
	}
	p->resync = false;
	mcfs_info("etcd store: back in sync (%zu keys rewritten)", n);
	return 0;
}

/*
 * Every acknowledged write is durable already; only after a failed one is
 * there work: resync, at most once every ETCD_RESYNC_EVERY ms.
 */
static int etcd_flush(struct mcfs_persist *p)
{
	if (p->broken)
		return -EIO;
	if (!p->resync)
		return 0;
	if (mcfs_now_ms() < p->resync_at_ms)
		return p->resync_err;
	return etcd_resync(p);
}

static void etcd_fini(struct mcfs_persist *p)
{
	if (p->resync && !p->broken && etcd_resync(p))
		mcfs_err("etcd store closed with changes etcd may lack: %s",
			 strerror(-p->resync_err));
	free(p->prefix);
	free(p->guard_key);
	free(p->key);
}

static const struct backend_ops etcd_ops = {
    .write = etcd_write,
    .flush = etcd_flush,
    .fini = etcd_fini,
};

static int etcd_load_kv(void *arg, const char *k, const void *val, size_t len, int64_t mod_rev)
{
	struct mcfs_persist *p = arg;
	uint8_t kind;
	uint64_t key;

	(void)mod_rev;
	if (!etcd_parse_key(p, k, &kind, &key)) {
		mcfs_warn("etcd store: ignoring %s: not a key of the store", k);
		return 0;
	}
	return apply(p, OP_PUT, kind, key, val, len);
}

static int etcd_load(struct mcfs_persist *p)
{
	uint64_t start = mcfs_now_ms();
	unsigned pause = ETCD_BACKOFF_MS;
	int rc;

	for (;;) {
		struct entry *e, *tmp;

		rc = mcfs_etcd_get(p->etcd, p->prefix, true, etcd_load_kv, p, NULL);
		if (!rc)
			return 0;
		HASH_ITER(hh, p->live, e, tmp)
		entry_drop(p, e);
		/* -ERANGE: compacted mid-listing; a fresh listing gets a newer snapshot */
		if ((!etcd_transient(rc) && rc != -ERANGE) ||
		    mcfs_now_ms() + pause - start > ETCD_RETRY_MS)
			return rc;
		sleep_ms(pause);
		pause *= 2;
	}
}

int mcfs_persist_open_etcd(struct mcfs_etcd *e, const char *prefix, const char *guard_key,
			   int64_t guard_rev, struct mcfs_persist **out)
{
	struct mcfs_persist *p;
	size_t plen;
	int ret;

	if (!e || !prefix || !*prefix || !guard_key || !*guard_key || guard_rev <= 0 || !out) {
		mcfs_err("etcd store: needs an etcd handle, a prefix, a guard key and its create "
			 "revision (> 0)");
		return -EINVAL;
	}
	plen = strlen(prefix);
	if (!strncmp(guard_key, prefix, plen)) {
		mcfs_err("etcd store: the guard key %s must not lie under the store's prefix %s",
			 guard_key, prefix);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ops = &etcd_ops;
	p->fd = -1;
	p->lock_fd = -1;
	p->etcd = e;
	p->prefix_len = plen;
	p->guard_rev = guard_rev;
	p->prefix = strdup(prefix);
	p->guard_key = strdup(guard_key);
	p->key = malloc(plen + ETCD_KEY_TAIL + 1);
	if (!p->prefix || !p->guard_key || !p->key) {
		ret = -ENOMEM;
		goto out_close;
	}
	memcpy(p->key, prefix, plen + 1);
	ret = etcd_load(p);
	if (ret) {
		mcfs_err("etcd store: cannot read %s: %s (%s)", prefix, strerror(-ret),
			 mcfs_etcd_errmsg(e));
		goto out_close;
	}
	*out = p;
	return 0;

out_close:
	mcfs_persist_close(p);
	return ret;
}
