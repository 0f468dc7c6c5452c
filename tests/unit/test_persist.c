// SPDX-License-Identifier: Apache-2.0
/*
 * meta/persist: the master's durable store.
 *
 * suite persist: the log in a directory: replay, deletes, a torn tail, the
 * directory lock.
 *
 * suite persist_etcd: the HA store in a real /usr/bin/etcd on free 127.0.0.1
 * ports with a temp data dir (skipped when it is not installed): round trip,
 * key layout, binary values, pagination, fencing by the leader key, and an
 * etcd that goes away and comes back (resync). The fixture's fini stops etcd
 * by PID and removes its data dir even when a test fails; etcd also gets
 * SIGKILL if the test process dies.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"
#include "meta/etcd.h"
#include "meta/persist.h"
#include "tests/unit/etcd_server.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mcfs-persist-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

struct seen {
	int n;
	uint64_t sum;
	uint64_t meta[4];
};

static int count(void *arg, uint8_t kind, uint64_t key, const uint8_t *val, size_t len)
{
	struct seen *s = arg;

	if (kind == MCFS_PERSIST_META && key < 4 && len == 8) {
		s->meta[key] = mcfs_get_u64le(val);
		return 0;
	}
	s->n++;
	s->sum += key * 1000 + len;
	return 0;
}

TestSuite(persist, .init = setup, .fini = teardown);

Test(persist, replay_and_delete)
{
	struct mcfs_persist *p;
	struct seen s = {0};

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	for (uint64_t k = 1; k <= 100; k++)
		cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, k, "abcdefgh", k % 8), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 7, "x", 1), 0); /* replaced */
	for (uint64_t k = 50; k <= 100; k++)
		cr_assert_eq(mcfs_persist_del(p, MCFS_PERSIST_INODE, k), 0);
	cr_assert_eq(mcfs_persist_put_u64(p, MCFS_META_EPOCH, 42), 0);
	cr_assert_eq(mcfs_persist_flush(p), 0);
	mcfs_persist_close(p);

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 49);
	{
		uint64_t want = 0;

		for (uint64_t k = 1; k < 50; k++)
			want += k * 1000 + (k == 7 ? 1 : k % 8);
		cr_assert_eq(s.sum, want);
	}
	cr_assert_eq(s.meta[MCFS_META_EPOCH], 42);
	mcfs_persist_close(p);
}

Test(persist, torn_tail_is_cut)
{
	struct mcfs_persist *p;
	struct seen s = {0};
	char path[128];
	int fd;

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	for (uint64_t k = 2; k < 12; k++)
		cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, k, "0123456789", 10), 0);
	mcfs_persist_close(p);
	/* A crash in the middle of an append: half an entry, then garbage. */
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "\x20\x00\x00\x00\x01\x02", 6), 6);
	close(fd);
	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 10);
	/* Appends after the cut are readable again. */
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 99, "z", 1), 0);
	mcfs_persist_close(p);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 11);
	mcfs_persist_close(p);
}

Test(persist, corrupt_entry_and_foreign_file)
{
	struct mcfs_persist *p;
	struct seen s = {0};
	char path[128];
	struct stat st;
	int fd;

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 5, "aaaa", 4), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 6, "bbbb", 4), 0);
	mcfs_persist_close(p);
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	cr_assert_eq(stat(path, &st), 0);
	/* Flip a byte of the last entry's value: its crc no longer matches. */
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "X", 1, st.st_size - 1), 1);
	close(fd);
	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 1);
	mcfs_persist_close(p);

	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_eq(write(fd, "not a log", 9), 9);
	close(fd);
	cr_assert_eq(mcfs_persist_open(dir, &p), -EINVAL);
}

Test(persist, one_master_per_directory)
{
	struct mcfs_persist *p, *q;

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_open(dir, &q), -EBUSY);
	mcfs_persist_close(p);
	cr_assert_eq(mcfs_persist_open(dir, &q), 0);
	mcfs_persist_close(q);
}

/* ---------------------------------------------------------------------------
 * The etcd store against a real etcd (the approach of tests/unit/test_etcd.c)
 */

#define PREFIX "/t/store/"
#define GUARD  "/t/leader"

static void etcd_init(void)
{
	etcd_start("estore");
}

static void etcd_fini(void)
{
	etcd_stop();
}

TestSuite(persist_etcd, .init = etcd_init, .fini = etcd_fini, .timeout = 30);

static struct mcfs_etcd *etcd_client(void)
{
	struct mcfs_etcd *e;

	if (!etcd_pid)
		cr_skip_test(ETCD_BIN " is not installed (apt-get install etcd-server)");
	cr_assert_eq(mcfs_etcd_open(etcd_url, &e), 0);
	return e;
}

/* The leader key: GUARD under a fresh lease. Returns its create revision. */
static int64_t make_guard(struct mcfs_etcd *e, int64_t *lease)
{
	int64_t rev = 0;

	cr_assert_eq(mcfs_etcd_lease_grant(e, 30, lease), 0, "%s", mcfs_etcd_errmsg(e));
	cr_assert_eq(mcfs_etcd_put(e, GUARD, "me", 2, *lease, &rev), 0, "%s", mcfs_etcd_errmsg(e));
	cr_assert_gt(rev, 0);
	return rev;
}

struct raw {
	int n;
	size_t len;
	uint8_t val[64];
};

static int raw_kv(void *arg, const char *key, const void *val, size_t len, int64_t mod_rev)
{
	struct raw *r = arg;

	(void)key, (void)mod_rev;
	r->n++;
	r->len = len;
	memcpy(r->val, val, len < sizeof(r->val) ? len : sizeof(r->val));
	return 0;
}

/* What etcd holds at key: -1 when absent, else the length (value in r). */
static long raw_get(struct mcfs_etcd *e, const char *key, struct raw *r)
{
	memset(r, 0, sizeof(*r));
	cr_assert_eq(mcfs_etcd_get(e, key, false, raw_kv, r, NULL), 0, "%s", mcfs_etcd_errmsg(e));
	return r->n ? (long)r->len : -1;
}

Test(persist_etcd, round_trip_and_layout)
{
	struct mcfs_etcd *e = etcd_client();
	struct mcfs_persist *p;
	struct seen s = {0};
	struct raw r;
	int64_t lease, grev = make_guard(e, &lease);
	int n = 0;

	/* bad arguments */
	cr_assert_eq(mcfs_persist_open_etcd(NULL, PREFIX, GUARD, grev, &p), -EINVAL);
	cr_assert_eq(mcfs_persist_open_etcd(e, "", GUARD, grev, &p), -EINVAL);
	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, NULL, grev, &p), -EINVAL);
	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, 0, &p), -EINVAL);
	cr_assert_eq(mcfs_persist_open_etcd(e, "/t/", GUARD, grev, &p), -EINVAL,
		     "the guard inside the prefix");

	/* the same changes as the file test */
	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 0);
	for (uint64_t k = 1; k <= 100; k++)
		cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, k, "abcdefgh", k % 8), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 7, "x", 1), 0); /* replaced */
	for (uint64_t k = 50; k <= 100; k++)
		cr_assert_eq(mcfs_persist_del(p, MCFS_PERSIST_INODE, k), 0);
	cr_assert_eq(mcfs_persist_del(p, MCFS_PERSIST_INODE, 1000), 0, "absent: a no-op");
	cr_assert_eq(mcfs_persist_put_u64(p, MCFS_META_EPOCH, 42), 0);
	cr_assert_eq(mcfs_persist_flush(p), 0);
	/* the table is current before any reopen */
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 49);
	mcfs_persist_close(p);

	/* the layout: prefix + kind (2 hex) + "/" + key (16 hex), raw bytes */
	cr_assert_eq(raw_get(e, PREFIX "01/0000000000000007", &r), 1);
	cr_assert_eq(r.val[0], 'x');
	cr_assert_eq(raw_get(e, PREFIX "01/0000000000000031", &r), 49 % 8);
	cr_assert_eq(raw_get(e, PREFIX "01/0000000000000032", &r), -1, "50 was deleted");
	cr_assert_eq(raw_get(e, PREFIX "02/0000000000000003", &r), 8);
	cr_assert_eq(mcfs_get_u64le(r.val), 42);
	cr_assert_eq(mcfs_etcd_get(e, PREFIX, true, count_kv, &n, NULL), 0);
	cr_assert_eq(n, 50);

	/* foreign keys under the prefix are ignored; keys beside it are not read */
	cr_assert_eq(mcfs_etcd_put(e, PREFIX "junk", "j", 1, 0, NULL), 0);
	cr_assert_eq(mcfs_etcd_put(e, PREFIX "01/00000000000000zz", "j", 1, 0, NULL), 0);
	cr_assert_eq(mcfs_etcd_put(e, "/t/store2/01/0000000000000001", "j", 1, 0, NULL), 0);

	/* the handle survived the close */
	memset(&s, 0, sizeof(s));
	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 49);
	{
		uint64_t want = 0;

		for (uint64_t k = 1; k < 50; k++)
			want += k * 1000 + (k == 7 ? 1 : k % 8);
		cr_assert_eq(s.sum, want);
	}
	cr_assert_eq(s.meta[MCFS_META_EPOCH], 42);
	mcfs_persist_close(p);
	mcfs_etcd_close(e);
}

struct blobs {
	int n;
	int bad;
	const uint8_t *want[4];
	size_t want_len[4];
};

static int check_blob(void *arg, uint8_t kind, uint64_t key, const uint8_t *val, size_t len)
{
	struct blobs *b = arg;

	b->n++;
	if (kind != 0xff || key >= 4 || len != b->want_len[key] ||
	    (len && memcmp(val, b->want[key], len)))
		b->bad++;
	return 0;
}

Test(persist_etcd, binary_values)
{
	struct mcfs_etcd *e = etcd_client();
	struct mcfs_persist *p;
	int64_t lease, grev = make_guard(e, &lease);
	static uint8_t all[256], zeros[17], big[64 << 10];
	struct blobs b = {0};
	struct raw r;

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	b.want[0] = all, b.want_len[0] = sizeof(all);
	b.want[1] = zeros, b.want_len[1] = sizeof(zeros);
	b.want[2] = NULL, b.want_len[2] = 0;
	b.want[3] = big, b.want_len[3] = sizeof(big);

	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	for (uint64_t k = 0; k < 4; k++)
		cr_assert_eq(mcfs_persist_put(p, 0xff, k, b.want[k], b.want_len[k]), 0, "key %d",
			     (int)k);
	/* the largest key, and a value over the limit (refused up front) */
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_NODE, UINT64_MAX, "n", 1), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_NODE, 1, big, (1 << 20) + 1), -EMSGSIZE);
	mcfs_persist_close(p);
	cr_assert_eq(raw_get(e, PREFIX "03/ffffffffffffffff", &r), 1);

	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	cr_assert_eq(mcfs_persist_del(p, MCFS_PERSIST_NODE, UINT64_MAX), 0);
	cr_assert_eq(mcfs_persist_load(p, check_blob, &b), 0);
	cr_assert_eq(b.n, 4);
	cr_assert_eq(b.bad, 0);
	mcfs_persist_close(p);
	cr_assert_eq(raw_get(e, PREFIX "03/ffffffffffffffff", &r), -1);
	mcfs_etcd_close(e);
}

static int sum_vals(void *arg, uint8_t kind, uint64_t key, const uint8_t *val, size_t len)
{
	struct seen *s = arg;
	char want[32];

	snprintf(want, sizeof(want), "v%llu", (unsigned long long)key);
	if (kind == MCFS_PERSIST_INODE && len == strlen(want) && !memcmp(val, want, len)) {
		s->n++;
		s->sum += key;
	}
	return 0;
}

Test(persist_etcd, pagination)
{
	struct mcfs_etcd *e = etcd_client();
	struct mcfs_persist *p;
	int64_t lease, grev = make_guard(e, &lease);
	struct seen s = {0};
	const uint64_t nkeys = 300;

	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	for (uint64_t k = 1; k <= nkeys; k++) {
		char v[32];

		snprintf(v, sizeof(v), "v%llu", (unsigned long long)k);
		cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, k, v, strlen(v)), 0);
	}
	mcfs_persist_close(p);
	mcfs_etcd_set_page_size(e, 7); /* 43 pages */
	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, sum_vals, &s), 0);
	cr_assert_eq(s.n, (int)nkeys);
	cr_assert_eq(s.sum, nkeys * (nkeys + 1) / 2);
	mcfs_persist_close(p);
	mcfs_etcd_close(e);
}

Test(persist_etcd, fencing)
{
	struct mcfs_etcd *e = etcd_client();
	struct mcfs_persist *p, *q;
	int64_t lease, lease2, grev = make_guard(e, &lease), grev2;
	struct seen s = {0};
	struct raw r;

	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 1, "a", 1), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 2, "b", 1), 0);

	/* the leader's lease ends: its key goes, and with it the right to write */
	cr_assert_eq(mcfs_etcd_lease_revoke(e, lease), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 3, "c", 1), -ECANCELED);
	/* broken from now on: -EIO without asking etcd (a guarded try would say ECANCELED) */
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 4, "d", 1), -EIO);
	cr_assert_eq(mcfs_persist_del(p, MCFS_PERSIST_INODE, 1), -EIO);
	cr_assert_eq(mcfs_persist_put_u64(p, MCFS_META_EPOCH, 9), -EIO);
	cr_assert_eq(mcfs_persist_del(p, MCFS_PERSIST_INODE, 77), 0, "absent: still a no-op");
	cr_assert_eq(mcfs_persist_flush(p), -EIO);
	cr_assert_eq(raw_get(e, PREFIX "01/0000000000000003", &r), -1);

	/* a new leader: the same key name, a new create revision */
	grev2 = make_guard(e, &lease2);
	cr_assert_neq(grev2, grev);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 5, "e", 1), -EIO, "still broken");
	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev2, &q), 0);
	cr_assert_eq(mcfs_persist_load(q, count, &s), 0);
	cr_assert_eq(s.n, 2, "what the old leader wrote in time, no more");
	cr_assert_eq(mcfs_persist_put(q, MCFS_PERSIST_INODE, 6, "f", 1), 0);
	cr_assert_eq(mcfs_persist_del(q, MCFS_PERSIST_INODE, 1), 0);
	mcfs_persist_close(q);
	mcfs_persist_close(p);

	/* a deposed master opening late reads, but cannot write, even though GUARD exists */
	cr_assert_eq(mcfs_persist_open_etcd(e, PREFIX, GUARD, grev, &p), 0);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 1, "z", 1), -ECANCELED);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 1, "z", 1), -EIO);
	mcfs_persist_close(p);
	cr_assert_eq(raw_get(e, PREFIX "01/0000000000000001", &r), -1);
	cr_assert_eq(raw_get(e, PREFIX "01/0000000000000006", &r), 1);
	mcfs_etcd_close(e);
}

struct writer {
	struct mcfs_persist *p;
	int rc;
};

static void *put_while_down(void *arg)
{
	struct writer *w = arg;

	w->rc = mcfs_persist_put(w->p, MCFS_PERSIST_INODE, 2, "two", 3);
	return NULL;
}

static int inode_keys(void *arg, uint8_t kind, uint64_t key, const uint8_t *val, size_t len)
{
	uint64_t *mask = arg;

	(void)val, (void)len;
	if (kind == MCFS_PERSIST_INODE && key < 64)
		*mask |= 1ull << key;
	return 0;
}

static uint64_t reopen_keys(struct mcfs_etcd *e, const char *prefix, int64_t grev)
{
	struct mcfs_persist *p;
	uint64_t mask = 0;

	cr_assert_eq(mcfs_persist_open_etcd(e, prefix, GUARD, grev, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, inode_keys, &mask), 0);
	mcfs_persist_close(p);
	return mask;
}

/*
 * etcd goes away: writes fail (after retrying), the store remembers, and once
 * etcd is back flush (store a) or close (store b) puts etcd in line with the
 * table. Two stores, each with its own handle; a's first failing write runs
 * in a thread so the two ~2 s retries overlap.
 */
Test(persist_etcd, unreachable_then_resync)
{
	struct mcfs_etcd *e = etcd_client(), *ea, *eb;
	struct mcfs_persist *a, *b;
	int64_t lease, grev = make_guard(e, &lease);
	struct writer w;
	pthread_t th;
	uint64_t t0;
	int rc = -1;

	cr_assert_eq(mcfs_etcd_open(etcd_url, &ea), 0);
	cr_assert_eq(mcfs_etcd_open(etcd_url, &eb), 0);
	cr_assert_eq(mcfs_persist_open_etcd(ea, "/t/a/", GUARD, grev, &a), 0);
	cr_assert_eq(mcfs_persist_open_etcd(eb, "/t/b/", GUARD, grev, &b), 0);
	cr_assert_eq(mcfs_persist_put(a, MCFS_PERSIST_INODE, 1, "one", 3), 0);
	cr_assert_eq(mcfs_persist_put(b, MCFS_PERSIST_INODE, 1, "one", 3), 0);

	etcd_kill();
	w.p = a;
	cr_assert_eq(pthread_create(&th, NULL, put_while_down, &w), 0);
	cr_assert_eq(mcfs_persist_put(b, MCFS_PERSIST_INODE, 2, "two", 3), -EIO);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(w.rc, -EIO);
	/* while resyncing, one try per write */
	cr_assert_eq(mcfs_persist_del(a, MCFS_PERSIST_INODE, 1), -EIO);
	cr_assert_eq(mcfs_persist_put(a, MCFS_PERSIST_INODE, 3, "three", 5), -EIO);
	cr_assert_eq(mcfs_persist_del(b, MCFS_PERSIST_INODE, 1), -EIO);
	cr_assert_neq(mcfs_persist_flush(a), 0);

	etcd_launch(); /* the same data */
	/* a write that works does not end the resync; flush does, within a second or so */
	cr_assert_eq(mcfs_persist_put(a, MCFS_PERSIST_INODE, 4, "four", 4), 0);
	t0 = mcfs_now_ms();
	while (mcfs_now_ms() - t0 < 5000) {
		rc = mcfs_persist_flush(a);
		if (!rc)
			break;
		usleep(50000);
	}
	cr_assert_eq(rc, 0, "flush resyncs once etcd is back: %d", rc);
	cr_assert_eq(mcfs_persist_flush(a), 0);
	mcfs_persist_close(a);
	mcfs_persist_close(b); /* resyncs before it goes */
	cr_assert_eq(reopen_keys(e, "/t/a/", grev), (1u << 2) | (1u << 3) | (1u << 4));
	cr_assert_eq(reopen_keys(e, "/t/b/", grev), 1u << 2);
	mcfs_etcd_close(ea);
	mcfs_etcd_close(eb);
	mcfs_etcd_close(e);
}
