// SPDX-License-Identifier: Apache-2.0
/*
 * The master's durable store in --data-dir: an append-only log, replayed and
 * compacted at open. See meta/persist.h.
 */
#include "meta/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

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

struct entry {
	struct {
		uint8_t kind;
		uint8_t pad[7];
		uint64_t key;
	} id;
	uint8_t *val;
	size_t len;
	UT_hash_handle hh;
};

struct mcfs_persist {
	char *dir;
	int lock_fd;
	int fd; /* the log, open for appending */
	bool dirty;
	bool broken; /* a write failed: refuse further writes, say so once */
	struct entry *live;
};

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
static int replay(struct mcfs_persist *p, const char *path)
{
	uint8_t *buf;
	size_t len, off = MAGIC_LEN, n = 0;
	int ret = read_file(path, &buf, &len);

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

int mcfs_persist_open(const char *dir, struct mcfs_persist **out)
{
	struct mcfs_persist *p = calloc(1, sizeof(*p));
	char *lock = NULL, *log = NULL;
	int ret = -ENOMEM;

	if (!p)
		return -ENOMEM;
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
	ret = replay(p, log);
	if (ret)
		goto fail;
	ret = compact(p);
	if (ret) {
		mcfs_err("cannot write %s/%s: %s", dir, LOG_NAME, strerror(-ret));
		goto fail;
	}
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

void mcfs_persist_close(struct mcfs_persist *p)
{
	struct entry *e, *tmp;

	if (!p)
		return;
	if (p->fd >= 0) {
		if (p->dirty)
			(void)fdatasync(p->fd);
		close(p->fd);
	}
	if (p->lock_fd >= 0)
		close(p->lock_fd); /* drops the flock */
	HASH_ITER(hh, p->live, e, tmp)
	entry_drop(p, e);
	free(p->dir);
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

static int append(struct mcfs_persist *p, uint8_t op, uint8_t kind, uint64_t key, const void *val,
		  size_t len)
{
	struct mcfs_buf b;
	int ret;

	if (p->broken)
		return -EIO;
	if (PAYLOAD_HEAD + len > ENTRY_MAX)
		return -EMSGSIZE;
	ret = apply(p, op, kind, key, val, len);
	if (ret)
		return ret;
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

int mcfs_persist_put(struct mcfs_persist *p, uint8_t kind, uint64_t key, const void *val,
		     size_t len)
{
	return append(p, OP_PUT, kind, key, val, len);
}

int mcfs_persist_del(struct mcfs_persist *p, uint8_t kind, uint64_t key)
{
	if (!entry_find(p, kind, key))
		return 0;
	return append(p, OP_DEL, kind, key, NULL, 0);
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
	if (!p->dirty || p->fd < 0)
		return 0;
	p->dirty = false;
	return fdatasync(p->fd) < 0 ? -errno : 0;
}
