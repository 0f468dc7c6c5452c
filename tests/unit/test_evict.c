// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of eviction, leases, pins and zombie puts at the master
 * (meta/evict.c, meta/master.c), driven as the daemon drives the master:
 * request frames through mcfs_master_handle(). Time is a fake clock
 * (mcfs_master_set_clock) and explicit mcfs_master_tick() times: no sleeps.
 *
 * Most tests use one node whose 1 MiB segment holds four objects of a
 * quarter (Q) each: the pool is full, and the next allocation has to evict.
 * Presence is checked with GETATTR, which takes no lease (LOOKUP would).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "meta/master_i.h"
#include "meta/proto.h"

#define SEG   (1u << 20)
#define Q     (SEG / 4)
#define NRBUF 8

static struct mcfs_master *m;
static uint64_t now_ms = 1000000;
static struct mcfs_buf reqb, rbuf[NRBUF];
static unsigned rnext;
static struct mcfs_master_sess *sessions[16];
static unsigned nsessions;
static uint64_t last_id;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return now_ms;
}

static void setup_conf(const struct mcfs_master_conf *c)
{
	mcfs_log_set_level(LOG_WARNING);
	cr_assert_eq(mcfs_master_create(c, &m), 0);
	/* Small, readable ids for these tests (a real master starts them from the clock). */
	m->last_put_id = 0;
	m->last_version = 0;
	m->ns.last_id = MCFS_ROOT_INO;
	mcfs_master_set_clock(m, fake_clock, NULL);
	mcfs_buf_init(&reqb);
	for (int i = 0; i < NRBUF; i++)
		mcfs_buf_init(&rbuf[i]);
}

/* The defaults, but nodes never time out: the tests jump the clock far. */
static void default_conf(struct mcfs_master_conf *c)
{
	mcfs_master_conf_default(c);
	c->node_ttl_ms = 0;
}

static void setup(void)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	setup_conf(&c);
}

static void teardown(void)
{
	for (unsigned i = 0; i < nsessions; i++)
		mcfs_master_sess_close(m, sessions[i]);
	nsessions = 0;
	mcfs_master_destroy(m);
	m = NULL;
	mcfs_buf_fini(&reqb);
	for (int i = 0; i < NRBUF; i++)
		mcfs_buf_fini(&rbuf[i]);
}

static void reconf(const struct mcfs_master_conf *c)
{
	teardown();
	setup_conf(c);
}

static int call(struct mcfs_master_sess *s, struct mcfs_msg *req, struct mcfs_msg *resp)
{
	struct mcfs_buf *out = &rbuf[rnext++ % NRBUF];

	req->req_id = ++last_id;
	req->resp = false;
	reqb.len = 0;
	out->len = 0;
	cr_assert_eq(mcfs_msg_encode(req, &reqb), 0);
	cr_assert_eq(mcfs_master_handle(m, s, reqb.data, reqb.len, out), 0);
	cr_assert_eq(mcfs_msg_decode_frame(out->data, out->len, resp), 0);
	cr_assert_eq(resp->req_id, req->req_id);
	return resp->status;
}

static struct mcfs_blob S(const char *s) {
	struct mcfs_blob b = {(const uint8_t *)s, (uint32_t)strlen(s)};

	return b;
}

static struct mcfs_msg
M(uint16_t type) {
	struct mcfs_msg q;

	memset(&q, 0, sizeof(q));
	q.type = type;
	return q;
}

/* A session bound to a new node with a segment of size bytes; its id in *id. */
static struct mcfs_master_sess *
node_ex(const char *name, const char *addr, uint64_t size, uint64_t *id)
{
	struct mcfs_master_sess *s;
	struct mcfs_msg q = M(MCFS_MSG_HELLO), r;

	cr_assert_eq(mcfs_master_sess_open(m, &s), 0);
	sessions[nsessions++] = s;
	q.proto = MCFS_PROTO_VERSION;
	q.name = S(name);
	q.name2 = S(addr);
	q.size = size;
	cr_assert_eq(call(s, &q, &r), 0);
	if (id)
		*id = r.node_id;
	return s;
}

static struct mcfs_master_sess *node(const char *name)
{
	return node_ex(name, "", SEG, NULL);
}

static int lookup(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	struct mcfs_msg q = M(MCFS_MSG_LOOKUP), r;

	q.ino = dir;
	q.name = S(name);
	return call(s, &q, &r);
}

/* Is inode ino there? GETATTR takes no lease. */
static bool alive(struct mcfs_master_sess *s, uint64_t ino)
{
	struct mcfs_msg q = M(MCFS_MSG_GETATTR), r;
	int ret;

	q.ino = ino;
	ret = call(s, &q, &r);
	cr_assert(ret == 0 || ret == -ENOENT);
	return ret == 0;
}

static uint64_t mkd(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	struct mcfs_msg q = M(MCFS_MSG_MKDIR), r;

	q.ino = dir;
	q.name = S(name);
	q.mode = 0755;
	cr_assert_eq(call(s, &q, &r), 0);
	return r.attr.ino;
}

static uint64_t creat(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	struct mcfs_msg q = M(MCFS_MSG_CREATE), r;

	q.ino = dir;
	q.name = S(name);
	q.mode = 0644;
	q.flags = MCFS_CREATE_EXCL;
	cr_assert_eq(call(s, &q, &r), 0, "create %s", name);
	return r.attr.ino;
}

static int put_start(struct mcfs_master_sess *s, uint64_t ino, uint64_t cap, struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_PUT_START);

	q.ino = ino;
	q.size = cap;
	return call(s, &q, r);
}

static int put_grow(struct mcfs_master_sess *s, uint64_t put_id, uint64_t cap, struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_PUT_GROW);

	q.put_id = put_id;
	q.size = cap;
	return call(s, &q, r);
}

static int put_place(struct mcfs_master_sess *s, uint64_t put_id, uint64_t size, struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_PUT_PLACE);

	q.put_id = put_id;
	q.size = size;
	return call(s, &q, r);
}

/* The writer's handle closes: give back the read hold PUT_END gave it (RELEASE). */
static void release_hold(struct mcfs_master_sess *s, uint64_t ino, uint64_t version)
{
	struct mcfs_msg q = M(MCFS_MSG_RELEASE), r;
	uint8_t v[MCFS_RELEASE_ENTRY] = {0};

	for (int i = 0; i < 8; i++) {
		v[i] = (uint8_t)(ino >> (8 * i));
		v[8 + i] = (uint8_t)(version >> (8 * i));
	}
	v[16] = 1;
	q.value.p = v;
	q.value.len = sizeof(v);
	cr_assert_eq(call(s, &q, &r), 0);
}

/* PUT_END by a writer that closes its handle right after. */
static int put_end(struct mcfs_master_sess *s, uint64_t put_id, uint64_t size)
{
	struct mcfs_msg q = M(MCFS_MSG_PUT_END), r;
	int ret;

	q.put_id = put_id;
	q.size = size;
	ret = call(s, &q, &r);
	if (!ret)
		release_hold(s, r.attr.ino, r.attr.version);
	return ret;
}

static int repl_start(struct mcfs_master_sess *s, uint64_t ino, uint64_t version, uint32_t count,
		      struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_REPL_START);

	q.ino = ino;
	q.version = version;
	q.count = count;
	return call(s, &q, r);
}

/* Publish size bytes into ino; its new version. */
static uint64_t publish(struct mcfs_master_sess *s, uint64_t ino, uint64_t size)
{
	struct mcfs_msg p, r, q = M(MCFS_MSG_PUT_END);

	cr_assert_eq(put_start(s, ino, size, &p), 0);
	q.put_id = p.put_id;
	q.size = size;
	cr_assert_eq(call(s, &q, &r), 0);
	release_hold(s, ino, r.attr.version);
	return r.attr.version;
}

/* A new file name in dir with size bytes published. */
static uint64_t file(struct mcfs_master_sess *s, uint64_t dir, const char *name, uint64_t size)
{
	uint64_t ino = creat(s, dir, name);

	publish(s, ino, size);
	return ino;
}

static int get(struct mcfs_master_sess *s, uint64_t ino)
{
	struct mcfs_msg q = M(MCFS_MSG_GET), r;

	q.ino = ino;
	return call(s, &q, &r);
}

static int lease(struct mcfs_master_sess *s, uint64_t ino, uint64_t version)
{
	struct mcfs_msg q = M(MCFS_MSG_LEASE), r;

	q.ino = ino;
	q.version = version;
	return call(s, &q, &r);
}

static int unlink_ex(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	struct mcfs_msg q = M(MCFS_MSG_UNLINK), r;

	q.ino = dir;
	q.name = S(name);
	return call(s, &q, &r);
}

static int xset(struct mcfs_master_sess *s, uint64_t ino, const char *name, const char *v)
{
	struct mcfs_msg q = M(MCFS_MSG_SETXATTR), r;

	q.ino = ino;
	q.name = S(name);
	q.value = S(v);
	return call(s, &q, &r);
}

static void xget_is(struct mcfs_master_sess *s, uint64_t ino, const char *name, const char *want)
{
	struct mcfs_msg q = M(MCFS_MSG_GETXATTR), r;
	char v[64];

	q.ino = ino;
	q.name = S(name);
	cr_assert_eq(call(s, &q, &r), 0, "getxattr %s", name);
	cr_assert_lt(r.value.len, sizeof(v));
	memcpy(v, r.value.p, r.value.len);
	v[r.value.len] = '\0';
	cr_assert_str_eq(v, want, "getxattr %s", name);
}

static uint64_t pool_free(struct mcfs_master_sess *s)
{
	struct mcfs_msg q = M(MCFS_MSG_STATFS), r;

	cr_assert_eq(call(s, &q, &r), 0);
	return r.free;
}

/* The names dir lists, comma-separated, into out. */
static void names(struct mcfs_master_sess *s, uint64_t dir, char *out, size_t outsz)
{
	struct mcfs_msg q = M(MCFS_MSG_READDIR), r;
	struct mcfs_dirent d;
	struct mcfs_rd rd;
	size_t len = 0;

	q.ino = dir;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert(r.flags & MCFS_READDIR_EOF);
	mcfs_rd_init(&rd, r.value.p, r.value.len);
	out[0] = '\0';
	while (mcfs_dirent_next(&rd, &d) == 1)
		len += (size_t)snprintf(out + len, outsz - len, "%s%.*s", len ? "," : "",
					(int)d.name.len, (const char *)d.name.p);
}

static struct mcfs_master_stats stats(void)
{
	struct mcfs_master_stats st;

	mcfs_master_get_stats(m, &st);
	return st;
}

/* Four files of Q bytes, one second apart: a full segment, oldest first. */
static void fill4(struct mcfs_master_sess *s, uint64_t dir, uint64_t ino[4])
{
	char name[8];

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ino[i] = file(s, dir, name, Q);
		now_ms += 1000;
	}
}

/* Which of ino[0..n) are alive, as a string of 0 and 1. */
static const char *alive_map(struct mcfs_master_sess *s, const uint64_t *ino, int n)
{
	static char map[64];

	for (int i = 0; i < n; i++)
		map[i] = alive(s, ino[i]) ? '1' : '0';
	map[n] = '\0';
	return map;
}

TestSuite(evict, .init = setup, .fini = teardown);

/* Eviction order */

Test(evict, oldest_access_goes_first_and_a_get_refreshes)
{
	struct mcfs_master_sess *a = node("node-a");
	uint64_t f[4], x = creat(a, MCFS_ROOT_INO, "x");
	struct mcfs_msg r;

	fill4(a, MCFS_ROOT_INO, f);
	cr_assert_eq(pool_free(a), 0);
	cr_assert_eq(get(a, f[0]), 0); /* f0 is now the youngest */
	now_ms += 11000;	       /* and its lease is over */
	cr_assert_eq(put_start(a, x, 4096, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1011");
	cr_assert_eq(stats().evicted_objects, 1);
	cr_assert_eq(stats().evicted_bytes, Q);
	cr_assert_eq(stats().alloc_evictions, 1);
	cr_assert_eq(pool_free(a), Q - 4096);
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1001");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1000");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0000");
	cr_assert_eq(stats().evicted_objects, 4);
	cr_assert_eq(stats().alloc_enospc, 0);
}

Test(evict, a_lease_read_renewal_counts_as_an_access)
{
	struct mcfs_master_sess *a = node("node-a");
	uint64_t f[4], x = creat(a, MCFS_ROOT_INO, "x");
	struct mcfs_msg r;

	fill4(a, MCFS_ROOT_INO, f);
	cr_assert_eq(get(a, f[1]), 0);
	now_ms += 5000;
	cr_assert_eq(lease(a, f[0], 1), 0); /* f0 was version 1: still open, renewed */
	now_ms += 11000;
	cr_assert_eq(put_start(a, x, 2 * Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1100");
}

Test(evict, leased_objects_are_skipped_and_lookup_leases)
{
	struct mcfs_master_sess *a = node("node-a"), *b = node_ex("node-b", "", 0, NULL);
	uint64_t f[4], x = creat(a, MCFS_ROOT_INO, "x");
	struct mcfs_msg r;

	fill4(a, MCFS_ROOT_INO, f);
	cr_assert_eq(get(b, f[0]), 0);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f1"), 0);
	xget_is(b, f[1], "user.mcfs.lease_ms", "10000");
	now_ms += 4000;
	xget_is(b, f[1], "user.mcfs.lease_ms", "6000");
	cr_assert_eq(put_start(a, x, 4096, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1101");
	/* Leases over: f1 goes next, its lookup did not count as a read, f0's GET did. */
	now_ms += 6000;
	xget_is(b, f[1], "user.mcfs.lease_ms", "0");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1001");
}

Test(evict, soft_pinned_go_only_after_every_unpinned_one)
{
	struct mcfs_master_sess *a = node("node-a");
	uint64_t pd = mkd(a, MCFS_ROOT_INO, "pinned"), f[4], x = creat(a, MCFS_ROOT_INO, "x");
	struct mcfs_msg r;

	cr_assert_eq(xset(a, pd, "user.mcfs.soft_pin", "1"), 0);
	/* The two oldest inherit the pin from their directory. */
	f[0] = file(a, pd, "p0", Q);
	now_ms += 1000;
	f[1] = creat(a, MCFS_ROOT_INO, "p1");
	cr_assert_eq(xset(a, f[1], "user.mcfs.soft_pin", "1"), 0);
	publish(a, f[1], Q);
	now_ms += 1000;
	f[2] = file(a, MCFS_ROOT_INO, "u2", Q);
	now_ms += 1000;
	f[3] = file(a, MCFS_ROOT_INO, "u3", Q);
	now_ms += 1000;
	xget_is(a, f[0], "user.mcfs.soft_pin_ms", "1796000");
	cr_assert_eq(put_start(a, x, 4096, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1101");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1100");
	/* Nothing unpinned is left: the oldest soft-pinned one. */
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0100");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0000");
}

Test(evict, an_expired_soft_pin_counts_as_unpinned)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.soft_pin_ttl_ms = 5000;
	c.max_soft_pin_ttl_ms = 60000;
	reconf(&c);

	struct mcfs_master_sess *a = node("node-a");
	uint64_t f[4], x = creat(a, MCFS_ROOT_INO, "x"), t0 = now_ms;
	struct mcfs_msg r;
	const char *pin[4] = {"1", "0", "1", "0"};
	char name[8];

	for (int i = 0; i < 4; i++) {
		now_ms = t0 + 1000 * (uint64_t)(i < 2 ? i : i + 1); /* t0, +1, +3, +4 s */
		snprintf(name, sizeof(name), "f%d", i);
		f[i] = creat(a, MCFS_ROOT_INO, name);
		cr_assert_eq(xset(a, f[i], "user.mcfs.soft_pin", pin[i]), 0);
		publish(a, f[i], Q);
	}
	now_ms = t0 + 6000; /* f0's pin ended at t0 + 5 s, f2's runs to t0 + 8 s */
	xget_is(a, f[0], "user.mcfs.soft_pin", "1");
	xget_is(a, f[0], "user.mcfs.soft_pin_ms", "0");
	xget_is(a, f[2], "user.mcfs.soft_pin_ms", "2000");
	cr_assert_eq(put_start(a, x, 4096, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0111");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0011");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0010");
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0000");
}

Test(evict, hard_pinned_are_never_evicted)
{
	struct mcfs_master_sess *a = node("node-a");
	uint64_t hd = mkd(a, MCFS_ROOT_INO, "hard"), f[4], x = creat(a, MCFS_ROOT_INO, "x");
	struct mcfs_msg r;

	cr_assert_eq(xset(a, hd, "user.mcfs.hard_pin", "1"), 0);
	fill4(a, hd, f);
	cr_assert_eq(put_start(a, x, 4096, &r), -ENOSPC);
	cr_assert_str_eq(alive_map(a, f, 4), "1111");
	cr_assert_eq(stats().alloc_enospc, 1);
	now_ms += 3600 * 1000; /* no expiry */
	cr_assert_eq(put_start(a, x, 4096, &r), -ENOSPC);
	/* Unpinned, it may go; removed, it goes whatever its pin. */
	cr_assert_eq(xset(a, f[2], "user.mcfs.hard_pin", "0"), 0);
	cr_assert_eq(put_start(a, x, 4096, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1101");
	cr_assert_eq(unlink_ex(a, hd, "f0"), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0101");
}

Test(evict, enospc_when_everything_is_leased_or_pinned)
{
	struct mcfs_master_sess *a = node("node-a"), *b = node_ex("node-b", "", 0, NULL);
	uint64_t f[4], x = creat(a, MCFS_ROOT_INO, "x");
	struct mcfs_master_stats st0, st1;
	struct mcfs_msg r, g;

	fill4(a, MCFS_ROOT_INO, f);
	cr_assert_eq(xset(a, f[0], "user.mcfs.hard_pin", "1"), 0);
	cr_assert_eq(xset(a, f[1], "user.mcfs.soft_pin", "1"), 0);
	cr_assert_eq(get(b, f[1]), 0);
	cr_assert_eq(get(b, f[2]), 0);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f3"), 0);
	st0 = stats();
	cr_assert_eq(put_start(a, x, 4096, &r), -ENOSPC);
	st1 = stats();
	/* At once: one look at the (small) table, nothing evicted. */
	cr_assert_leq(st1.evict_inspected - st0.evict_inspected, m->ns.by_ino.mask + 1);
	cr_assert_eq(st1.evicted_objects, 0);
	cr_assert_eq(st1.alloc_enospc, 1);
	/* Nothing half-visible: x is still the creator's pending file, no put holds space. */
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "x"), -ENOENT);
	cr_assert_eq(pool_free(a), 0);
	cr_assert_eq(HASH_COUNT(m->puts), 0);
	/* A put of capacity 0 cannot grow either. */
	cr_assert_eq(put_start(a, x, 0, &r), 0);
	cr_assert_eq(put_grow(a, r.put_id, 4096, &g), -ENOSPC);
	/*
	 * The leases end: the unpinned ones go first, f3 before f2 (a lookup
	 * leases but is no read), then the soft-pinned one.
	 */
	now_ms += 10000;
	cr_assert_eq(put_grow(a, r.put_id, 4096, &g), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1110");
	cr_assert_eq(put_start(a, x, Q, &g), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1100");
	cr_assert_eq(put_start(a, x, Q, &g), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "1000");
	cr_assert_eq(put_start(a, x, Q, &g), -ENOSPC);
}

Test(evict, a_file_is_not_evicted_to_make_room_for_its_own_next_version)
{
	struct mcfs_master_sess *a = node("node-a");
	uint64_t f = file(a, MCFS_ROOT_INO, "f", SEG);
	struct mcfs_msg r;

	cr_assert_eq(put_start(a, f, 4096, &r), -ENOSPC);
	cr_assert(alive(a, f));
	/* Nor is anything evicted for a put larger than the whole segment. */
	uint64_t g = creat(a, MCFS_ROOT_INO, "g");

	cr_assert_eq(put_start(a, g, SEG + 4096, &r), -ENOSPC);
	cr_assert(alive(a, f));
	cr_assert_eq(stats().evicted_objects, 0);
}

Test(evict, the_failing_node_evicts_its_own_objects)
{
	uint64_t ia, ib;
	struct mcfs_master_sess *b = node_ex("node-b", "10.0.0.2:1", 2 * SEG, &ib),
				*a = node_ex("node-a", "10.0.0.1:1", SEG, &ia);
	uint64_t old = file(b, MCFS_ROOT_INO, "old-on-b", Q), f[4], x;
	struct mcfs_msg r;

	now_ms += 1000;
	fill4(a, MCFS_ROOT_INO, f);
	cr_assert_eq(pool_free(a), 2 * SEG - Q);
	x = creat(a, MCFS_ROOT_INO, "x");
	cr_assert_eq(put_start(a, x, 4096, &r), 0);
	cr_assert(alive(a, old)); /* older, but evicting it gives a no room */
	cr_assert_str_eq(alive_map(a, f, 4), "0111");
	(void)ia;
	(void)ib;
}

Test(evict, put_place_and_repl_start_evict_on_the_target_node)
{
	uint64_t ia, ib;
	struct mcfs_master_sess *a = node_ex("node-a", "10.0.0.1:1", SEG, &ia),
				*b = node_ex("node-b", "10.0.0.2:1", SEG, &ib);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), fb[4], f, g, vg;
	struct mcfs_msg p, r;

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "2"), 0);
	fill4(b, MCFS_ROOT_INO, fb);
	/* PUT_PLACE: b is full, its oldest object makes room for the second replica. */
	f = creat(a, d, "f");
	cr_assert_eq(put_start(a, f, 4096, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 4096, &r), 0);
	cr_assert_eq(r.nrep, 2);
	cr_assert_eq(r.rep[1].node_id, ib);
	cr_assert_eq(put_end(a, p.put_id, 4096), 0);
	cr_assert_str_eq(alive_map(a, fb, 4), "0111");
	/* REPL_START: the same. */
	g = creat(a, MCFS_ROOT_INO, "g");
	vg = publish(a, g, Q);
	cr_assert_eq(repl_start(a, g, vg, 1, &r), 0);
	cr_assert_eq(r.nrep, 1);
	cr_assert_eq(r.rep[0].node_id, ib);
	cr_assert_str_eq(alive_map(a, fb, 4), "0011");
	(void)ia;
}

/* Rounds in the tick */

Test(evict, a_round_over_the_watermark_evicts_the_ratio_in_a_tick)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.high_watermark = 0.10;
	c.evict_ratio = 0.05;
	reconf(&c);

	struct mcfs_master_sess *a = node("node-a");
	uint64_t pd = mkd(a, MCFS_ROOT_INO, "pinned"), f[40];
	char name[8];

	/* Nothing to do below the watermark. */
	cr_assert_eq(mcfs_master_tick(m, now_ms), 1000);
	cr_assert_eq(stats().evict_rounds, 0);
	cr_assert_eq(xset(a, pd, "user.mcfs.soft_pin", "1"), 0);
	/* 40 objects of 4 KiB, 15.6 % of the pool: the 10 oldest soft-pinned. */
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		f[i] = file(a, i < 10 ? pd : MCFS_ROOT_INO, name, 4096);
		now_ms += 1000;
	}
	/* 5 % of 40 evictable: the two oldest unpinned ones, in one tick here. */
	cr_assert_eq(mcfs_master_tick(m, now_ms), 1000);
	cr_assert_eq(stats().evict_rounds, 1);
	cr_assert_eq(stats().evicted_objects, 2);
	cr_assert_eq(stats().evicted_bytes, 2 * 4096);
	cr_assert_str_eq(alive_map(a, f, 14), "11111111110011");
	cr_assert_eq(pool_free(a), SEG - 38 * 4096);
	/* Still over: the next tick, the next round: 5 % of 38, rounded up. */
	cr_assert_eq(mcfs_master_tick(m, now_ms), 1000);
	cr_assert_eq(stats().evicted_objects, 4);
	cr_assert_str_eq(alive_map(a, f, 14), "11111111110000");
}

Test(evict, a_round_takes_soft_pinned_ones_when_unpinned_are_too_few)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.high_watermark = 0.0;
	c.evict_ratio = 0.25;
	reconf(&c);

	struct mcfs_master_sess *a = node("node-a"), *b = node_ex("node-b", "", 0, NULL);
	uint64_t pd = mkd(a, MCFS_ROOT_INO, "pinned"), hd = mkd(a, MCFS_ROOT_INO, "hard"), f[12];
	char name[8];

	cr_assert_eq(xset(a, pd, "user.mcfs.soft_pin", "1"), 0);
	cr_assert_eq(xset(a, hd, "user.mcfs.hard_pin", "1"), 0);
	/* f0-f3 hard-pinned, f4-f10 soft-pinned, f11 unpinned but leased. */
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		f[i] = file(a, i < 4 ? hd : i < 11 ? pd : MCFS_ROOT_INO, name, 4096);
		now_ms += 1000;
	}
	cr_assert_eq(get(b, f[11]), 0);
	/* Evictable: the 7 soft-pinned ones; a quarter, rounded up: the 2 oldest. */
	mcfs_master_tick(m, now_ms);
	cr_assert_str_eq(alive_map(a, f, 12), "111100111111");
	/* A lease no longer holds it: the unpinned one goes first. */
	now_ms += 10000;
	mcfs_master_tick(m, now_ms);
	cr_assert_str_eq(alive_map(a, f, 12), "111100011110");
}

Test(evict, a_failed_allocation_starts_a_round_for_its_node)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.evict_ratio = 0.10;
	reconf(&c);

	uint64_t ib;
	struct mcfs_master_sess *a = node("node-a"), *b = node_ex("node-b", "10.0.0.2:1", SEG, &ib);
	uint64_t f[64], fb = file(b, MCFS_ROOT_INO, "on-b", 4096), x;
	char name[8];
	struct mcfs_msg r;

	now_ms += 1000;
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		f[i] = file(a, MCFS_ROOT_INO, name, 16384);
		now_ms += 1000;
	}
	x = creat(a, MCFS_ROOT_INO, "x");
	cr_assert_eq(put_start(a, x, 4096, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 10), "0111111111");
	cr_assert_eq(stats().evict_rounds, 1);
	/*
	 * The round: 10 % of the 64 evictable objects on node-a, rounded up: 7,
	 * of which the allocation evicted one already. None of node-b's.
	 */
	cr_assert_eq(mcfs_master_tick(m, now_ms), 1000);
	cr_assert_str_eq(alive_map(a, f, 10), "0000000111");
	cr_assert(alive(a, fb));
	cr_assert_eq(stats().evicted_objects, 7);
}

Test(evict, a_round_spans_ticks_and_checks_each_candidate_again, .timeout = 60)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.high_watermark = 0.0;
	c.evict_ratio = 0.001;
	reconf(&c);

	struct mcfs_master_sess *a = node("node-a"), *b = node_ex("node-b", "", 0, NULL);
	uint64_t f[4], e0 = 0, e;
	unsigned ticks = 0;
	char name[16];

	fill4(a, MCFS_ROOT_INO, f);
	/* Enough younger empty objects that a sweep takes two ticks. */
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		e = file(a, MCFS_ROOT_INO, name, 0);
		if (!e0)
			e0 = e;
	}
	cr_assert_gt(m->ns.by_ino.mask + 1, MCFS_EVICT_STEP);
	cr_assert_eq(mcfs_master_tick(m, now_ms), 0);
	cr_assert_eq(m->ev.phase, MCFS_EVICT_SWEEP);
	/* Meanwhile f0 is read, f1 soft-pinned: whether swept already or not, they stay. */
	cr_assert_eq(get(b, f[0]), 0);
	cr_assert_eq(xset(a, f[1], "user.mcfs.soft_pin", "1"), 0);
	while (mcfs_master_tick(m, now_ms) == 0)
		cr_assert_lt(++ticks, 10);
	/* 0.1 % of 3004 evictable, rounded up: 4, the oldest that may still go. */
	cr_assert_eq(stats().evicted_objects, 4);
	cr_assert_str_eq(alive_map(a, f, 4), "1100");
	cr_assert(!alive(a, e0));
	cr_assert(!alive(a, e0 + 1));
	cr_assert(alive(a, e0 + 2));
}

Test(evict, a_round_that_finds_nothing_waits_before_the_next)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.high_watermark = 0.5;
	reconf(&c);

	struct mcfs_master_sess *a = node("node-a");
	uint64_t hd = mkd(a, MCFS_ROOT_INO, "hard"), f[4];

	cr_assert_eq(xset(a, hd, "user.mcfs.hard_pin", "1"), 0);
	fill4(a, hd, f);
	cr_assert_eq(mcfs_master_tick(m, now_ms), MCFS_EVICT_IDLE_MS);
	cr_assert_eq(stats().evict_rounds, 1);
	cr_assert_eq(mcfs_master_tick(m, now_ms + 400), MCFS_EVICT_IDLE_MS - 400);
	cr_assert_eq(stats().evict_rounds, 1);
	/* Something became evictable: the next round, a second later, takes it. */
	cr_assert_eq(xset(a, f[3], "user.mcfs.hard_pin", "0"), 0);
	mcfs_master_tick(m, now_ms + MCFS_EVICT_IDLE_MS);
	cr_assert_eq(stats().evict_rounds, 2);
	cr_assert_str_eq(alive_map(a, f, 4), "1110");
}

/* Namespace and space */

Test(evict, an_evicted_object_leaves_the_namespace_and_frees_its_space_at_once)
{
	struct mcfs_master_sess *a = node("node-a"), *b = node_ex("node-b", "", 0, NULL);
	uint64_t f[4], x = creat(a, MCFS_ROOT_INO, "x");
	struct mcfs_msg r, q = M(MCFS_MSG_GETXATTR), xr;
	char list[256];

	fill4(a, MCFS_ROOT_INO, f);
	cr_assert_eq(get(b, f[1]), 0); /* a reader holds f1 */
	cr_assert_eq(put_start(a, x, Q, &r), 0);
	cr_assert_str_eq(alive_map(a, f, 4), "0111");
	cr_assert_eq(pool_free(a), 0);
	/* Gone by name and by number, for every node. */
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f0"), -ENOENT);
	cr_assert_eq(lookup(a, MCFS_ROOT_INO, "f0"), -ENOENT);
	cr_assert_eq(get(b, f[0]), -ENOENT);
	cr_assert_eq(lease(b, f[0], 1), -ENOENT);
	q.ino = f[0];
	q.name = S("user.mcfs.lease_ms");
	cr_assert_eq(call(b, &q, &xr), -ENOENT);
	names(b, MCFS_ROOT_INO, list, sizeof(list));
	cr_assert_str_eq(list, "f1,f2,f3");
	names(a, MCFS_ROOT_INO, list, sizeof(list));
	cr_assert_str_eq(list, "x,f1,f2,f3");
	/*
	 * Unlinking the leased f1: its name goes at once, its space when the
	 * lease ends. (f2, f3 are pinned, or the round the failed allocation
	 * started would take one of them in the next tick.)
	 */
	cr_assert_eq(xset(a, f[2], "user.mcfs.hard_pin", "1"), 0);
	cr_assert_eq(xset(a, f[3], "user.mcfs.hard_pin", "1"), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "f1"), 0);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f1"), -ENOENT);
	cr_assert_eq(pool_free(a), 0);
	cr_assert_eq(lease(b, f[1], 2), 0); /* the reader renews and reads on */
	now_ms += 9999;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), 0);
	now_ms += 1;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), Q);
	cr_assert_eq(lease(b, f[1], 2), -ENOENT);
}

/* Leases and pins: the arithmetic */

Test(evict, lease_and_pin_arithmetic)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.lease_ms = 3000;
	c.soft_pin_ttl_ms = 60000;
	c.max_soft_pin_ttl_ms = 20000;
	reconf(&c);

	struct mcfs_master_sess *a = node("node-a");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), v;

	/* A pending file takes no lease; a published one by lookup, get and lease. */
	cr_assert_eq(xset(a, f, "user.mcfs.soft_pin", "1"), 0);
	cr_assert_eq(lookup(a, MCFS_ROOT_INO, "f"), 0);
	xget_is(a, f, "user.mcfs.lease_ms", "0");
	xget_is(a, f, "user.mcfs.soft_pin_ms", "0");
	now_ms += 500;
	v = publish(a, f, 4096);
	xget_is(a, f, "user.mcfs.soft_pin_ms", "20000"); /* capped, from publication */
	cr_assert_eq(lookup(a, MCFS_ROOT_INO, "f"), 0);
	xget_is(a, f, "user.mcfs.lease_ms", "3000");
	now_ms += 1000;
	xget_is(a, f, "user.mcfs.lease_ms", "2000");
	xget_is(a, f, "user.mcfs.soft_pin_ms", "19000");
	cr_assert_eq(get(a, f), 0);
	xget_is(a, f, "user.mcfs.lease_ms", "3000");
	now_ms += 2999;
	cr_assert_eq(lease(a, f, v), 0);
	xget_is(a, f, "user.mcfs.lease_ms", "3000");
	now_ms += 3000;
	xget_is(a, f, "user.mcfs.lease_ms", "0");
	/* Set again on a published file: starts now. */
	cr_assert_eq(xset(a, f, "user.mcfs.soft_pin", "1"), 0);
	xget_is(a, f, "user.mcfs.soft_pin_ms", "20000");
	now_ms += 20000;
	xget_is(a, f, "user.mcfs.soft_pin_ms", "0");
	xget_is(a, f, "user.mcfs.soft_pin", "1");
}

/* Zombie puts */

Test(evict, an_untouched_put_is_revoked_after_the_put_timeout)
{
	struct mcfs_master_sess *a = node("node-a"), *b = node_ex("node-b", "", 0, NULL);
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), t0 = now_ms;
	struct mcfs_msg p;

	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	/* Write grants last as long as the put may. */
	cr_assert_geq(p.rep[0].expiry_ms, mcfs_grant_now_ms() + 59000);
	cr_assert_leq(p.rep[0].expiry_ms, mcfs_grant_now_ms() + 60000);
	cr_assert_eq(mcfs_master_tick(m, t0 + 59000), 1000);
	cr_assert_eq(mcfs_master_tick(m, t0 + 59999), 1);
	cr_assert_eq(pool_free(a), SEG - 8192);
	cr_assert(alive(a, f));
	cr_assert_eq(mcfs_master_tick(m, t0 + 60000), 1000);
	/* Space back, the pending file it was for gone, the put unknown. */
	cr_assert_eq(pool_free(a), SEG);
	cr_assert_eq(stats().puts_expired, 1);
	cr_assert(!alive(a, f));
	cr_assert_eq(lookup(a, MCFS_ROOT_INO, "f"), -ENOENT);
	cr_assert_eq(put_end(a, p.put_id, 100), -ENOENT);
	(void)b;
}

Test(evict, a_renewed_put_lives_on)
{
	struct mcfs_master_sess *a = node("node-a");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), t0 = now_ms;
	struct mcfs_msg p, g;

	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	now_ms = t0 + 50000;
	cr_assert_eq(put_grow(a, p.put_id, 0, &g), 0); /* the renewal */
	cr_assert_eq(g.nrep, 1);
	cr_assert_eq(g.rep[0].offset, p.rep[0].offset);
	cr_assert_eq(mcfs_master_tick(m, t0 + 60000), 1000);
	cr_assert_eq(mcfs_master_tick(m, t0 + 109000), 1000);
	cr_assert_eq(pool_free(a), SEG - 8192);
	now_ms = t0 + 100000;
	cr_assert_eq(put_grow(a, p.put_id, 16384, &g), 0); /* a grow renews too */
	cr_assert_eq(mcfs_master_tick(m, t0 + 159999), 1);
	cr_assert_eq(put_end(a, p.put_id, 10000), 0);
	cr_assert_eq(mcfs_master_tick(m, t0 + 200000), 1000);
	cr_assert(alive(a, f));
	cr_assert_eq(stats().puts_expired, 0);
}

Test(evict, an_expired_put_leaves_published_and_shared_files_alone)
{
	uint64_t ia, ib;
	struct mcfs_master_sess *a = node_ex("node-a", "10.0.0.1:1", SEG, &ia),
				*b = node_ex("node-b", "10.0.0.2:1", SEG, &ib);
	uint64_t f = file(a, MCFS_ROOT_INO, "f", 4096), g = creat(a, MCFS_ROOT_INO, "g"),
		 t0 = now_ms;
	struct mcfs_msg p1, p2, p3, rr;

	/* A new version of a published file, and two puts on one pending file. */
	cr_assert_eq(put_start(a, f, 4096, &p1), 0);
	cr_assert_eq(put_start(a, g, 4096, &p2), 0);
	now_ms = t0 + 30000;
	cr_assert_eq(put_start(a, g, 4096, &p3), 0);
	cr_assert_eq(repl_start(a, f, 1, 1, &rr), 0);
	cr_assert_eq(rr.rep[0].node_id, ib);
	cr_assert_eq(pool_free(a), 2 * SEG - 5 * 4096);
	mcfs_master_tick(m, t0 + 60000);
	cr_assert_eq(stats().puts_expired, 2);
	cr_assert(alive(b, f));
	cr_assert(alive(a, g)); /* p3 still writes it */
	cr_assert_eq(put_end(a, p1.put_id, 1), -ENOENT);
	cr_assert_eq(pool_free(a), 2 * SEG - 3 * 4096);
	/* The replication and the last put expire too: then the pending file goes. */
	mcfs_master_tick(m, t0 + 90000);
	cr_assert_eq(stats().puts_expired, 4);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	cr_assert(!alive(a, g));
	cr_assert(alive(b, f));
	(void)ia;
}

/* Bounded work */

Test(evict, work_per_tick_is_bounded_with_100k_objects, .timeout = 120)
{
	struct mcfs_master_conf c;

	default_conf(&c);
	c.high_watermark = 0.5;
	reconf(&c);

	struct mcfs_master_sess *a = node("node-a");
	uint64_t big = creat(a, MCFS_ROOT_INO, "big"), first = 0, ino = 0;
	struct mcfs_master_stats st0, st1, st;
	uint64_t next;
	unsigned ticks = 0;
	char name[16];
	struct mcfs_msg r;

	cr_assert_eq(xset(a, big, "user.mcfs.hard_pin", "1"), 0);
	publish(a, big, 3 * Q);
	/* 100 000 empty objects, all of one age: the lowest inode numbers are the oldest. */
	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		ino = file(a, MCFS_ROOT_INO, name, 0);
		if (!first)
			first = ino;
	}
	now_ms += 1000;
	st0 = stats();
	do {
		st1 = stats();
		next = mcfs_master_tick(m, now_ms);
		st = stats();
		cr_assert_leq(st.evict_inspected - st1.evict_inspected, MCFS_EVICT_STEP);
		cr_assert_leq(st.evicted_objects - st1.evicted_objects, MCFS_EVICT_STEP);
		ticks++;
	} while (next == 0 && ticks < 1000);
	cr_assert_gt(ticks, 16, "one round spans many ticks (%u)", ticks);
	cr_assert_eq(st.evict_rounds - st0.evict_rounds, 1);
	cr_assert_eq(st.evicted_objects - st0.evicted_objects, 5000);
	cr_assert(!alive(a, first));
	cr_assert(!alive(a, first + 4999));
	cr_assert(alive(a, first + 5000));
	cr_assert(alive(a, ino));
	cr_assert(alive(a, big));
	/* A failed allocation looks at a bounded span and answers at once. */
	st0 = stats();
	cr_assert_eq(put_start(a, creat(a, MCFS_ROOT_INO, "x"), 2 * Q, &r), -ENOSPC);
	st = stats();
	cr_assert_leq(st.evict_inspected - st0.evict_inspected,
		      (uint64_t)MCFS_EVICT_SYNC_SPAN * MCFS_EVICT_SYNC_TRIES);
	/* Empty objects free nothing there: none was evicted for it. */
	cr_assert_eq(st.evicted_objects, st0.evicted_objects);
}
