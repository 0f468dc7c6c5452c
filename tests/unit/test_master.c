// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the master core (meta/master.c, meta/master_xattr.c),
 * driven the way the daemon and the server drive it: request frames built
 * with mcfs_msg_encode() go through mcfs_master_handle(), responses are
 * decoded with mcfs_msg_decode_frame(). Leases, pins and node TTLs run on a
 * fake clock (mcfs_master_set_clock); mcfs_master_tick() gets explicit times.
 * Sessions that say HELLO stand for nodes, so three sessions are a cluster
 * of three.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "meta/master_i.h"
#include "meta/proto.h"

#define SEG   (1u << 20) /* 1 MiB segments: 256 ranges of 4 KiB */
#define NRBUF 8

static struct mcfs_master *m;
static uint64_t now_ms = 1000000;
static struct mcfs_buf reqb, rbuf[NRBUF];
static unsigned rnext;
static struct mcfs_master_sess *sessions[16]; /* closed by teardown() */
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

/* Long node TTL: the lease and pin tests jump the clock far past the default 10 s. */
static void setup(void)
{
	struct mcfs_master_conf c;

	mcfs_master_conf_default(&c);
	c.node_ttl_ms = 3600 * 1000;
	setup_conf(&c);
}

static void teardown(void)
{
	for (unsigned i = 0; i < nsessions; i++)
		mcfs_master_sess_close(m, sessions[i]);
	nsessions = 0;
	mcfs_master_destroy(m);
	mcfs_buf_fini(&reqb);
	for (int i = 0; i < NRBUF; i++)
		mcfs_buf_fini(&rbuf[i]);
}

static struct mcfs_master_sess *sess(void)
{
	struct mcfs_master_sess *s;

	cr_assert_eq(mcfs_master_sess_open(m, &s), 0);
	cr_assert_lt(nsessions, sizeof(sessions) / sizeof(sessions[0]));
	sessions[nsessions++] = s;
	return s;
}

/* Handle raw bytes; the response (if any) is decoded into resp. Returns handle()'s result. */
static int handle_raw(struct mcfs_master_sess *s, const uint8_t *p, size_t len,
		      struct mcfs_msg *resp)
{
	struct mcfs_buf *out = &rbuf[rnext++ % NRBUF];
	int ret;

	out->len = 0;
	ret = mcfs_master_handle(m, s, p, len, out);
	if (ret) {
		cr_assert_eq(out->len, 0, "a failed handle() appended a response");
		return ret;
	}
	cr_assert_eq(mcfs_msg_decode_frame(out->data, out->len, resp), 0);
	return 0;
}

/* One request; returns the response status. resp's blobs stay valid for NRBUF calls. */
static int call(struct mcfs_master_sess *s, struct mcfs_msg *req, struct mcfs_msg *resp)
{
	req->req_id = ++last_id;
	req->resp = false;
	reqb.len = 0;
	cr_assert_eq(mcfs_msg_encode(req, &reqb), 0);
	cr_assert_eq(handle_raw(s, reqb.data, reqb.len, resp), 0);
	cr_assert(resp->resp);
	cr_assert_eq(resp->type, req->type);
	cr_assert_eq(resp->req_id, req->req_id);
	cr_assert_eq(resp->epoch, 1);
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

static int
hello_ex(struct mcfs_master_sess *s, const char *name, const char *addr, uint64_t size,
	 uint64_t *node_id)
{
	struct mcfs_msg q = M(MCFS_MSG_HELLO), r;
	int ret;

	q.proto = MCFS_PROTO_VERSION;
	q.name = S(name);
	q.name2 = S(addr);
	q.size = size;
	ret = call(s, &q, &r);
	if (!ret) {
		cr_assert_eq(r.proto, MCFS_PROTO_VERSION);
		/* Every node gets the secret that signs its grants. */
		cr_assert_eq(r.value.len, MCFS_GRANT_SECRET_LEN);
		cr_assert_eq(memcmp(r.value.p, m->grant_secret, MCFS_GRANT_SECRET_LEN), 0);
		/* The segment its grants name, 0 without one. */
		cr_assert_eq(r.seg_id, mcfs_master_node(m, r.node_id)->seg_id);
		if (!size)
			cr_assert_eq(r.seg_id, 0);
		if (node_id)
			*node_id = r.node_id;
	}
	return ret;
}

/* A session bound to a new node with a SEG-byte segment. */
static struct mcfs_master_sess *node(const char *name, const char *addr)
{
	struct mcfs_master_sess *s = sess();

	cr_assert_eq(hello_ex(s, name, addr, SEG, NULL), 0);
	return s;
}

static int lookup(struct mcfs_master_sess *s, uint64_t dir, const char *name, struct mcfs_attr *a)
{
	struct mcfs_msg q = M(MCFS_MSG_LOOKUP), r;
	int ret;

	q.ino = dir;
	q.name = S(name);
	ret = call(s, &q, &r);
	if (!ret && a)
		*a = r.attr;
	return ret;
}

static int getattr(struct mcfs_master_sess *s, uint64_t ino, struct mcfs_attr *a)
{
	struct mcfs_msg q = M(MCFS_MSG_GETATTR), r;
	int ret;

	q.ino = ino;
	ret = call(s, &q, &r);
	if (!ret && a)
		*a = r.attr;
	return ret;
}

static struct mcfs_attr attr_of(struct mcfs_master_sess *s, uint64_t ino)
{
	struct mcfs_attr a;

	cr_assert_eq(getattr(s, ino, &a), 0, "getattr %llu", (unsigned long long)ino);
	return a;
}

static int mkdir_ex(struct mcfs_master_sess *s, uint64_t dir, const char *name, uint64_t *ino)
{
	struct mcfs_msg q = M(MCFS_MSG_MKDIR), r;
	int ret;

	q.ino = dir;
	q.name = S(name);
	q.mode = 0750;
	q.uid = 1000;
	q.gid = 100;
	ret = call(s, &q, &r);
	if (!ret) {
		cr_assert_eq(r.attr.mode, S_IFDIR | 0750);
		cr_assert_eq(r.attr.uid, 1000);
		cr_assert_eq(r.attr.nlink, 2);
		if (ino)
			*ino = r.attr.ino;
	}
	return ret;
}

static uint64_t mkd(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	uint64_t ino;

	cr_assert_eq(mkdir_ex(s, dir, name, &ino), 0, "mkdir %s", name);
	return ino;
}

static int create_ex(struct mcfs_master_sess *s, uint64_t dir, const char *name, uint32_t flags,
		     struct mcfs_attr *a)
{
	struct mcfs_msg q = M(MCFS_MSG_CREATE), r;
	int ret;

	q.ino = dir;
	q.name = S(name);
	q.mode = 0644;
	q.uid = 7;
	q.gid = 8;
	q.flags = flags;
	ret = call(s, &q, &r);
	if (!ret && a)
		*a = r.attr;
	return ret;
}

static uint64_t creat(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	struct mcfs_attr a;

	cr_assert_eq(create_ex(s, dir, name, MCFS_CREATE_EXCL, &a), 0, "create %s", name);
	cr_assert_eq(a.mode, S_IFREG | 0644);
	cr_assert_eq(a.flags, MCFS_ATTR_PENDING);
	cr_assert_eq(a.version, 0);
	cr_assert_eq(a.size, 0);
	return a.ino;
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

/* RELEASE count holds of s on (ino, version). Returns the status; *done (may be NULL) the count. */
static int release(struct mcfs_master_sess *s, uint64_t ino, uint64_t version, uint32_t count)
{
	struct mcfs_msg q = M(MCFS_MSG_RELEASE), r;
	uint8_t v[MCFS_RELEASE_ENTRY];

	for (int i = 0; i < 8; i++) {
		v[i] = (uint8_t)(ino >> (8 * i));
		v[8 + i] = (uint8_t)(version >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		v[16 + i] = (uint8_t)(count >> (8 * i));
	q.value.p = v;
	q.value.len = sizeof(v);
	return call(s, &q, &r);
}

/* PUT_END by a writer that then closes its handle (its hold released), as most do. */
static int put_end_ex(struct mcfs_master_sess *s, uint64_t put_id, uint64_t size, uint32_t crc,
		      uint32_t unfilled, struct mcfs_attr *a)
{
	struct mcfs_msg q = M(MCFS_MSG_PUT_END), r;
	int ret;

	q.put_id = put_id;
	q.size = size;
	q.crc = crc;
	q.flags = unfilled;
	ret = call(s, &q, &r);
	if (!ret && a)
		*a = r.attr;
	return ret;
}

static int put_end_keep(struct mcfs_master_sess *s, uint64_t put_id, uint64_t size, uint32_t crc,
			struct mcfs_attr *a)
{
	return put_end_ex(s, put_id, size, crc, 0, a);
}

static int put_end(struct mcfs_master_sess *s, uint64_t put_id, uint64_t size, uint32_t crc,
		   struct mcfs_attr *a)
{
	struct mcfs_attr at;
	int ret = put_end_keep(s, put_id, size, crc, &at);

	if (!ret) {
		cr_assert_eq(release(s, at.ino, at.version, 1), 0);
		if (a)
			*a = at;
	}
	return ret;
}

static int put_revoke(struct mcfs_master_sess *s, uint64_t put_id)
{
	struct mcfs_msg q = M(MCFS_MSG_PUT_REVOKE), r;

	q.put_id = put_id;
	return call(s, &q, &r);
}

/* Publish size bytes into ino; returns the new attr. */
static struct mcfs_attr publish(struct mcfs_master_sess *s, uint64_t ino, uint64_t size,
				uint32_t crc)
{
	struct mcfs_msg r;
	struct mcfs_attr a;

	cr_assert_eq(put_start(s, ino, size, &r), 0);
	cr_assert_eq(put_end(s, r.put_id, size, crc, &a), 0);
	cr_assert_eq(a.flags, 0);
	cr_assert_eq(a.size, size);
	return a;
}

static int get(struct mcfs_master_sess *s, uint64_t ino, struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_GET);

	q.ino = ino;
	return call(s, &q, r);
}

/* GET of ino only if it is still name in dir (close-to-open after a rename elsewhere). */
static int get_named(struct mcfs_master_sess *s, uint64_t ino, uint64_t dir, const char *name,
		     struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_GET);

	q.ino = ino;
	q.ino2 = dir;
	q.name = S(name);
	return call(s, &q, r);
}

static int lease(struct mcfs_master_sess *s, uint64_t ino, uint64_t version)
{
	struct mcfs_msg q = M(MCFS_MSG_LEASE), r;
	int ret;

	q.ino = ino;
	q.version = version;
	ret = call(s, &q, &r);
	if (!ret)
		cr_assert_eq(r.lease_ms, 10000);
	return ret;
}

static int unlink_ex(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	struct mcfs_msg q = M(MCFS_MSG_UNLINK), r;

	q.ino = dir;
	q.name = S(name);
	return call(s, &q, &r);
}

static int rmdir_ex(struct mcfs_master_sess *s, uint64_t dir, const char *name)
{
	struct mcfs_msg q = M(MCFS_MSG_RMDIR), r;

	q.ino = dir;
	q.name = S(name);
	return call(s, &q, &r);
}

static int rename_ex(struct mcfs_master_sess *s, uint64_t dir, const char *name, uint64_t newdir,
		     const char *newname, uint32_t flags)
{
	struct mcfs_msg q = M(MCFS_MSG_RENAME), r;

	q.ino = dir;
	q.name = S(name);
	q.ino2 = newdir;
	q.name2 = S(newname);
	q.flags = flags;
	return call(s, &q, &r);
}

static void statfs(struct mcfs_master_sess *s, uint64_t *total, uint64_t *free_, uint32_t *count)
{
	struct mcfs_msg q = M(MCFS_MSG_STATFS), r;

	cr_assert_eq(call(s, &q, &r), 0);
	if (total)
		*total = r.total;
	if (free_)
		*free_ = r.free;
	if (count)
		*count = r.count;
}

static uint64_t pool_free(struct mcfs_master_sess *s)
{
	uint64_t f;

	statfs(s, NULL, &f, NULL);
	return f;
}

static int xset_ex(struct mcfs_master_sess *s, uint64_t ino, const char *name, const void *v,
		   size_t len, uint32_t flags)
{
	struct mcfs_msg q = M(MCFS_MSG_SETXATTR), r;

	q.ino = ino;
	q.name = S(name);
	q.value.p = v;
	q.value.len = (uint32_t)len;
	q.flags = flags;
	return call(s, &q, &r);
}

static int xset(struct mcfs_master_sess *s, uint64_t ino, const char *name, const char *v)
{
	return xset_ex(s, ino, name, v, strlen(v), 0);
}

/* getxattr into out (NUL-terminated; out has room for 4096 bytes). */
static int xget(struct mcfs_master_sess *s, uint64_t ino, const char *name, char *out)
{
	struct mcfs_msg q = M(MCFS_MSG_GETXATTR), r;
	int ret;

	q.ino = ino;
	q.name = S(name);
	ret = call(s, &q, &r);
	if (!ret && out) {
		cr_assert_lt(r.value.len, 4096);
		memcpy(out, r.value.p, r.value.len);
		out[r.value.len] = '\0';
	}
	return ret;
}

static void xget_is(struct mcfs_master_sess *s, uint64_t ino, const char *name, const char *want)
{
	char v[4096];

	cr_assert_eq(xget(s, ino, name, v), 0, "getxattr %s", name);
	cr_assert_str_eq(v, want, "getxattr %s", name);
}

static int xremove(struct mcfs_master_sess *s, uint64_t ino, const char *name)
{
	struct mcfs_msg q = M(MCFS_MSG_REMOVEXATTR), r;

	q.ino = ino;
	q.name = S(name);
	return call(s, &q, &r);
}

/* listxattr as one string with NULs turned into ','. */
static void xlist(struct mcfs_master_sess *s, uint64_t ino, char *out)
{
	struct mcfs_msg q = M(MCFS_MSG_LISTXATTR), r;

	q.ino = ino;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_lt(r.value.len, 4096);
	for (uint32_t i = 0; i < r.value.len; i++)
		out[i] = r.value.p[i] ? (char)r.value.p[i] : ',';
	out[r.value.len] = '\0';
}

TestSuite(master, .init = setup, .fini = teardown);

/* Sessions and nodes */

Test(master, root_is_a_directory)
{
	struct mcfs_master_sess *s = sess();
	struct mcfs_attr a = attr_of(s, MCFS_ROOT_INO);

	cr_assert_eq(a.ino, MCFS_ROOT_INO);
	cr_assert_eq(a.mode, S_IFDIR | 0755);
	cr_assert_eq(a.uid, 0);
	cr_assert_eq(a.gid, 0);
	cr_assert_eq(a.nlink, 2);
	cr_assert_gt(a.mtime_ns, 0);
	xget_is(s, MCFS_ROOT_INO, "user.mcfs.replica_num", "1");
}

Test(master, hello_registers_nodes)
{
	struct mcfs_master_sess *a = sess(), *b = sess(), *c = sess();
	uint64_t ida = 0, idb = 0, total, free_;
	uint32_t count;

	cr_assert_eq(hello_ex(a, "node-a", "127.0.0.1:7422", SEG, &ida), 0);
	cr_assert_eq(hello_ex(b, "node-b", "", 2 * SEG, &idb), 0);
	cr_assert_eq(ida, 1);
	cr_assert_eq(idb, 2);
	/* One registration per session. */
	cr_assert_eq(hello_ex(a, "again", "", SEG, NULL), -EISCONN);
	/* No segment: a client-only node. */
	cr_assert_eq(hello_ex(c, "tool", "", 0, NULL), 0);
	statfs(a, &total, &free_, &count);
	cr_assert_eq(total, 3 * SEG);
	cr_assert_eq(free_, 3 * SEG);
	cr_assert_eq(count, 1);
}

Test(master, hello_rejects)
{
	struct mcfs_master_sess *s = sess();
	struct mcfs_msg q = M(MCFS_MSG_HELLO), r;

	q.proto = MCFS_PROTO_VERSION + 1;
	q.name = S("n");
	cr_assert_eq(call(s, &q, &r), -EPROTONOSUPPORT);
	cr_assert_eq(hello_ex(s, "", "", SEG, NULL), -EINVAL);
	cr_assert_eq(hello_ex(s, "tiny", "", 100, NULL), -EINVAL);
	q.proto = MCFS_PROTO_VERSION;
	q.name.p = (const uint8_t *)"a\0b";
	q.name.len = 3;
	cr_assert_eq(call(s, &q, &r), -EINVAL);
	/* Still unbound: writes are refused. */
	cr_assert_eq(mkdir_ex(s, MCFS_ROOT_INO, "d", NULL), -EPERM);
	cr_assert_eq(hello_ex(s, "ok", "", SEG, NULL), 0);
}

Test(master, writes_need_hello_reads_do_not)
{
	struct mcfs_master_sess *n = node("node-a", "h:1"), *tool = sess();
	uint64_t d = mkd(n, MCFS_ROOT_INO, "d"), f = creat(n, d, "f");
	struct mcfs_msg q = M(MCFS_MSG_READDIR), r;

	publish(n, f, 100, 1);
	cr_assert_eq(mkdir_ex(tool, MCFS_ROOT_INO, "x", NULL), -EPERM);
	cr_assert_eq(create_ex(tool, d, "g", 0, NULL), -EPERM);
	cr_assert_eq(unlink_ex(tool, d, "f"), -EPERM);
	cr_assert_eq(put_start(tool, f, 10, &r), -EPERM);
	cr_assert_eq(xset(tool, f, "user.a", "b"), -EPERM);
	q = M(MCFS_MSG_HEARTBEAT);
	q.node_id = 1;
	cr_assert_eq(call(tool, &q, &r), -EPERM);

	cr_assert_eq(lookup(tool, d, "f", NULL), 0);
	cr_assert_eq(getattr(tool, f, NULL), 0);
	xget_is(tool, f, "user.mcfs.tier", "dram");
	cr_assert_eq(get(tool, f, &r), 0);
	cr_assert_eq(r.nrep, 1);
	q = M(MCFS_MSG_READDIR);
	q.ino = d;
	cr_assert_eq(call(tool, &q, &r), 0);
	cr_assert_eq(r.count, 1);
	statfs(tool, NULL, NULL, NULL);
}

Test(master, heartbeat_and_bye)
{
	struct mcfs_master_sess *a = node("node-a", "a:1"), *b = node("node-b", "b:1");
	struct mcfs_msg q = M(MCFS_MSG_HEARTBEAT), r;
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d");
	uint64_t fa = creat(a, d, "fa"), fb = creat(b, d, "fb"), pend = creat(a, d, "pending");
	uint64_t total;
	uint32_t count;
	char v[4096];

	publish(a, fa, 5000, 1);
	publish(b, fb, 5000, 2);
	q.node_id = 1;
	cr_assert_eq(call(a, &q, &r), 0);
	q.node_id = 99;
	cr_assert_eq(call(a, &q, &r), -ENOENT);

	/* A node unregisters only itself. */
	q = M(MCFS_MSG_BYE);
	q.node_id = 2;
	cr_assert_eq(call(a, &q, &r), -EPERM);
	q.node_id = 1;
	cr_assert_eq(call(a, &q, &r), 0);

	cr_assert_eq(lookup(b, d, "fa", NULL), -ENOENT);
	cr_assert_eq(getattr(b, fa, NULL), -ENOENT);
	cr_assert_eq(getattr(b, pend, NULL), -ENOENT);
	cr_assert_eq(lookup(b, d, "fb", NULL), 0);
	statfs(b, &total, NULL, &count);
	cr_assert_eq(total, SEG);
	cr_assert_eq(count, 3); /* root, d, fb */
	cr_assert_eq(xget(b, d, "user.mcfs.locations", v), 0);
	cr_assert_str_eq(v, "node-b 1 5000\n");
	/* The session is unbound now; it may register again, as a new node. */
	cr_assert_eq(mkdir_ex(a, MCFS_ROOT_INO, "x", NULL), -EPERM);
	cr_assert_eq(hello_ex(a, "node-a", "a:1", SEG, &q.node_id), 0);
	cr_assert_eq(q.node_id, 3);
}

Test(master, bye_ends_puts_and_retired_objects)
{
	struct mcfs_master_sess *a = node("node-a", ""), *b = node("node-b", "");
	struct mcfs_msg q = M(MCFS_MSG_BYE), r, pr;
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_attr v1 = publish(a, f, 100, 1);

	cr_assert_eq(get(b, f, &r), 0);
	publish(a, f, 200, 2); /* v1 is retired, under b's lease */
	cr_assert_eq(put_start(a, f, 300, &pr), 0);
	cr_assert_eq(call(a, &q, &r), 0);
	cr_assert_eq(lease(b, f, v1.version), -ENOENT);
	cr_assert_eq(mcfs_master_tick(m, now_ms + 100000), 1000);
	cr_assert_eq(getattr(b, f, NULL), -ENOENT);
}

/* Namespace */

Test(master, mkdir_lookup_getattr)
{
	struct mcfs_master_sess *s = node("node-a", "");
	struct mcfs_attr root0 = attr_of(s, MCFS_ROOT_INO), a, b;
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), e;

	cr_assert_eq(attr_of(s, MCFS_ROOT_INO).nlink, 3);
	cr_assert_geq(attr_of(s, MCFS_ROOT_INO).mtime_ns, root0.mtime_ns);
	cr_assert_eq(lookup(s, MCFS_ROOT_INO, "d", &a), 0);
	cr_assert_eq(a.ino, d);
	b = attr_of(s, d);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
	cr_assert_eq(mkdir_ex(s, MCFS_ROOT_INO, "d", NULL), -EEXIST);
	e = mkd(s, d, "e");
	cr_assert_gt(e, d);
	cr_assert_eq(attr_of(s, d).nlink, 3);
	cr_assert_eq(attr_of(s, MCFS_ROOT_INO).nlink, 3);
	cr_assert_eq(lookup(s, MCFS_ROOT_INO, "nope", NULL), -ENOENT);
	cr_assert_eq(lookup(s, 12345, "d", NULL), -ENOENT);
	cr_assert_eq(getattr(s, 12345, NULL), -ENOENT);
	cr_assert_eq(mkdir_ex(s, 12345, "x", NULL), -ENOENT);

	/* A file is not a directory. */
	uint64_t f = creat(s, d, "f");
	cr_assert_eq(lookup(s, f, "x", NULL), -ENOTDIR);
	cr_assert_eq(mkdir_ex(s, f, "x", NULL), -ENOTDIR);
	cr_assert_eq(create_ex(s, f, "x", 0, NULL), -ENOTDIR);
}

Test(master, names_are_checked)
{
	struct mcfs_master_sess *s = node("node-a", "");
	static const char *bad[] = {"", ".", "..", "a/b", "/"};
	struct mcfs_msg q = M(MCFS_MSG_MKDIR), r;
	char longest[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(mkdir_ex(s, MCFS_ROOT_INO, bad[i], NULL), -EINVAL, "%s", bad[i]);
		cr_assert_eq(create_ex(s, MCFS_ROOT_INO, bad[i], 0, NULL), -EINVAL, "%s", bad[i]);
		cr_assert_eq(lookup(s, MCFS_ROOT_INO, bad[i], NULL), -EINVAL, "%s", bad[i]);
	}
	q.ino = MCFS_ROOT_INO;
	q.name.p = (const uint8_t *)"a\0b";
	q.name.len = 3;
	cr_assert_eq(call(s, &q, &r), -EINVAL);
	/* Any other byte is fine, up to 255 of them. */
	memset(longest, 'x', 255);
	longest[255] = '\0';
	mkd(s, MCFS_ROOT_INO, longest);
	mkd(s, MCFS_ROOT_INO, "...");
	mkd(s, MCFS_ROOT_INO, "sp ace\n\xff");
	cr_assert_eq(lookup(s, MCFS_ROOT_INO, "sp ace\n\xff", NULL), 0);
}

Test(master, inode_numbers_are_never_reused)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f1 = creat(s, MCFS_ROOT_INO, "f"), f2;

	cr_assert_eq(unlink_ex(s, MCFS_ROOT_INO, "f"), 0);
	f2 = creat(s, MCFS_ROOT_INO, "f");
	cr_assert_gt(f2, f1);
	cr_assert_eq(getattr(s, f1, NULL), -ENOENT);
}

Test(master, setattr)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");
	struct mcfs_msg q = M(MCFS_MSG_SETATTR), r;
	struct mcfs_attr before = attr_of(s, f);

	q.ino = f;
	q.valid = MCFS_SET_MODE | MCFS_SET_UID | MCFS_SET_GID | MCFS_SET_ATIME | MCFS_SET_MTIME;
	q.mode = S_IFDIR | 04711; /* the type cannot change */
	q.uid = 42;
	q.gid = 43;
	q.atime_ns = 111;
	q.mtime_ns = 222;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.attr.mode, S_IFREG | 04711);
	cr_assert_eq(r.attr.uid, 42);
	cr_assert_eq(r.attr.gid, 43);
	cr_assert_eq(r.attr.atime_ns, 111);
	cr_assert_eq(r.attr.mtime_ns, 222);
	cr_assert_geq(r.attr.ctime_ns, before.ctime_ns);

	/* Only what valid names changes; *_NOW wins over explicit times. */
	q.valid = MCFS_SET_ATIME_NOW | MCFS_SET_MTIME_NOW | MCFS_SET_MTIME;
	q.mode = 0;
	q.uid = 0;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.attr.mode, S_IFREG | 04711);
	cr_assert_eq(r.attr.uid, 42);
	cr_assert_gt(r.attr.atime_ns, 1000000000);
	cr_assert_gt(r.attr.mtime_ns, 1000000000);

	/* mtime alone leaves the atime where it was; atime alone, the mtime. */
	q.valid = MCFS_SET_ATIME | MCFS_SET_MTIME;
	q.atime_ns = q.mtime_ns = 5000;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.attr.atime_ns, 5000);
	q.valid = MCFS_SET_MTIME;
	q.mtime_ns = 6000;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.attr.atime_ns, 5000);
	cr_assert_eq(r.attr.mtime_ns, 6000);
	q.valid = MCFS_SET_ATIME;
	q.atime_ns = 7000;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.attr.atime_ns, 7000);
	cr_assert_eq(r.attr.mtime_ns, 6000);
	cr_assert_eq(attr_of(s, f).atime_ns, 7000);

	q.valid = 0x80;
	cr_assert_eq(call(s, &q, &r), -EINVAL);
	q.valid = MCFS_SET_MODE;
	q.ino = 999;
	cr_assert_eq(call(s, &q, &r), -ENOENT);
	/* Directories keep their type too. */
	q.ino = MCFS_ROOT_INO;
	q.mode = 0700;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.attr.mode, S_IFDIR | 0700);
}

Test(master, create_existing)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");
	struct mcfs_attr a;

	mkd(s, MCFS_ROOT_INO, "d");
	cr_assert_eq(create_ex(s, MCFS_ROOT_INO, "f", MCFS_CREATE_EXCL, NULL), -EEXIST);
	cr_assert_eq(create_ex(s, MCFS_ROOT_INO, "f", 0, &a), 0);
	cr_assert_eq(a.ino, f);
	publish(s, f, 10, 0);
	cr_assert_eq(create_ex(s, MCFS_ROOT_INO, "f", 0, &a), 0);
	cr_assert_eq(a.ino, f);
	cr_assert_eq(a.size, 10);
	cr_assert_eq(create_ex(s, MCFS_ROOT_INO, "d", 0, NULL), -EISDIR);
	cr_assert_eq(create_ex(s, MCFS_ROOT_INO, "d", MCFS_CREATE_EXCL, NULL), -EEXIST);
	cr_assert_eq(mkdir_ex(s, MCFS_ROOT_INO, "f", NULL), -EEXIST);
}

Test(master, pending_is_visible_to_its_creator_only)
{
	struct mcfs_master_sess *a = node("node-a", ""), *b = node("node-b", ""), *tool = sess();
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_msg q = M(MCFS_MSG_READDIR), r;
	struct mcfs_attr at;
	struct mcfs_dirent de;
	struct mcfs_rd rd;

	cr_assert_eq(lookup(a, MCFS_ROOT_INO, "f", &at), 0);
	cr_assert_eq(at.flags, MCFS_ATTR_PENDING);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f", NULL), -ENOENT);
	cr_assert_eq(lookup(tool, MCFS_ROOT_INO, "f", NULL), -ENOENT);
	cr_assert_eq(getattr(b, f, NULL), -ENOENT);
	cr_assert_eq(get(b, f, &r), -ENOENT);
	cr_assert_eq(xget(b, f, "user.mcfs.replica_num", NULL), -ENOENT);
	cr_assert_eq(unlink_ex(b, MCFS_ROOT_INO, "f"), -ENOENT);
	/* The name is taken all the same: O_EXCL fails, mkdir fails... */
	cr_assert_eq(create_ex(b, MCFS_ROOT_INO, "f", MCFS_CREATE_EXCL, NULL), -EEXIST);
	cr_assert_eq(mkdir_ex(b, MCFS_ROOT_INO, "f", NULL), -EEXIST);
	/* ...and a plain O_CREAT opens the same unpublished file, which b may put. */
	cr_assert_eq(create_ex(b, MCFS_ROOT_INO, "f", 0, &at), 0);
	cr_assert_eq(at.ino, f);
	cr_assert_eq(put_start(b, f, 10, &r), 0);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f", NULL), -ENOENT);

	q.ino = MCFS_ROOT_INO;
	cr_assert_eq(call(b, &q, &r), 0);
	cr_assert_eq(r.count, 0);
	cr_assert_eq(r.flags, MCFS_READDIR_EOF);
	cr_assert_eq(call(a, &q, &r), 0);
	cr_assert_eq(r.count, 1);
	mcfs_rd_init(&rd, r.value.p, r.value.len);
	cr_assert_eq(mcfs_dirent_next(&rd, &de), 1);
	cr_assert_eq(de.attr.ino, f);
	cr_assert_eq(de.attr.flags, MCFS_ATTR_PENDING);

	/* The creator's GET: nothing to read yet. */
	cr_assert_eq(get(a, f, &r), 0);
	cr_assert_eq(r.attr.version, 0);
	cr_assert_eq(r.nrep, 0);

	/* Published: everyone sees it. */
	publish(a, f, 64, 7);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f", &at), 0);
	cr_assert_eq(at.flags, 0);
	cr_assert_gt(at.version, 0);
	cr_assert_eq(at.size, 64);
	cr_assert_eq(lookup(tool, MCFS_ROOT_INO, "f", NULL), 0);
	cr_assert_eq(call(b, &q, &r), 0);
	cr_assert_eq(r.count, 1);
}

Test(master, new_entries_inherit_replication_and_pins)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), e, f, g;

	cr_assert_eq(xset(s, d, "user.mcfs.replica_num", "3"), 0);
	cr_assert_eq(xset(s, d, "user.mcfs.soft_pin", "1"), 0);
	cr_assert_eq(xset(s, d, "user.mcfs.hard_pin", "1\n"), 0);
	e = mkd(s, d, "e");
	f = creat(s, e, "f"); /* transitively */
	g = creat(s, d, "g");
	for (int i = 0; i < 3; i++) {
		uint64_t ino = i == 0 ? e : i == 1 ? f : g;

		xget_is(s, ino, "user.mcfs.replica_num", "3");
		xget_is(s, ino, "user.mcfs.soft_pin", "1");
		xget_is(s, ino, "user.mcfs.hard_pin", "1");
	}
	xget_is(s, MCFS_ROOT_INO, "user.mcfs.replica_num", "1");
	xget_is(s, MCFS_ROOT_INO, "user.mcfs.soft_pin", "0");
}

Test(master, default_replicas_from_conf)
{
	struct mcfs_master_conf c;
	struct mcfs_master *m2;

	mcfs_master_conf_default(&c);
	c.default_replicas = 0;
	cr_assert_eq(mcfs_master_create(&c, &m2), -EINVAL);
	c.default_replicas = 9;
	cr_assert_eq(mcfs_master_create(&c, &m2), -EINVAL);
	c.default_replicas = 2;
	teardown();
	setup_conf(&c);
	struct mcfs_master_sess *s = node("node-a", "");
	xget_is(s, MCFS_ROOT_INO, "user.mcfs.replica_num", "2");
	xget_is(s, creat(s, MCFS_ROOT_INO, "f"), "user.mcfs.replica_num", "2");
}

Test(master, symlink_readlink)
{
	struct mcfs_master_sess *s = node("node-a", "");
	struct mcfs_msg q = M(MCFS_MSG_SYMLINK), r;
	char target[MCFS_PATH_MAX + 1];
	uint64_t l;

	q.ino = MCFS_ROOT_INO;
	q.name = S("l");
	q.value = S("../some/target");
	q.uid = 5;
	q.gid = 6;
	cr_assert_eq(call(s, &q, &r), 0);
	l = r.attr.ino;
	cr_assert_eq(r.attr.mode, S_IFLNK | 0777);
	cr_assert_eq(r.attr.size, 14);
	cr_assert_eq(r.attr.uid, 5);
	cr_assert_eq(r.attr.nlink, 1);
	cr_assert_eq(call(s, &q, &r), -EEXIST);
	q.name = S("empty");
	q.value = S("");
	cr_assert_eq(call(s, &q, &r), -EINVAL);
	q.name = S("long");
	memset(target, 'a', MCFS_PATH_MAX);
	target[MCFS_PATH_MAX] = '\0';
	q.value = S(target);
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.attr.size, MCFS_PATH_MAX);

	q = M(MCFS_MSG_READLINK);
	q.ino = l;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.value.len, 14);
	cr_assert_eq(memcmp(r.value.p, "../some/target", 14), 0);
	q.ino = MCFS_ROOT_INO;
	cr_assert_eq(call(s, &q, &r), -EINVAL);
	q.ino = creat(s, MCFS_ROOT_INO, "f");
	cr_assert_eq(call(s, &q, &r), -EINVAL);
	q.ino = 4242;
	cr_assert_eq(call(s, &q, &r), -ENOENT);

	/* Symlinks are not files. */
	cr_assert_eq(get(s, l, &r), -EINVAL);
	cr_assert_eq(put_start(s, l, 10, &r), -EINVAL);
	cr_assert_eq(create_ex(s, MCFS_ROOT_INO, "l", 0, NULL), -EEXIST);
	cr_assert_eq(unlink_ex(s, MCFS_ROOT_INO, "l"), 0);
	cr_assert_eq(lookup(s, MCFS_ROOT_INO, "l", NULL), -ENOENT);
}

Test(master, unlink_rmdir)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d");
	struct mcfs_attr before;

	mkd(s, d, "sub");
	creat(s, d, "f");
	cr_assert_eq(unlink_ex(s, MCFS_ROOT_INO, "d"), -EISDIR);
	cr_assert_eq(rmdir_ex(s, d, "f"), -ENOTDIR);
	cr_assert_eq(rmdir_ex(s, MCFS_ROOT_INO, "d"), -ENOTEMPTY);
	cr_assert_eq(rmdir_ex(s, MCFS_ROOT_INO, "nope"), -ENOENT);
	cr_assert_eq(unlink_ex(s, MCFS_ROOT_INO, "nope"), -ENOENT);
	cr_assert_eq(rmdir_ex(s, MCFS_ROOT_INO, "."), -EINVAL);
	cr_assert_eq(rmdir_ex(s, MCFS_ROOT_INO, ".."), -EINVAL);
	cr_assert_eq(unlink_ex(s, 777, "x"), -ENOENT);
	before = attr_of(s, d);
	cr_assert_eq(before.nlink, 3);
	cr_assert_eq(unlink_ex(s, d, "f"), 0);
	cr_assert_eq(rmdir_ex(s, d, "sub"), 0);
	cr_assert_eq(attr_of(s, d).nlink, 2);
	cr_assert_geq(attr_of(s, d).mtime_ns, before.mtime_ns);
	cr_assert_eq(rmdir_ex(s, MCFS_ROOT_INO, "d"), 0);
	cr_assert_eq(attr_of(s, MCFS_ROOT_INO).nlink, 2);
	cr_assert_eq(getattr(s, d, NULL), -ENOENT);
}

/* Rename */

Test(master, rename_file_over_file_retires_the_target)
{
	struct mcfs_master_sess *s = node("node-a", ""), *b = node("node-b", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), e = mkd(s, MCFS_ROOT_INO, "e");
	uint64_t f = creat(s, d, "f"), g = creat(s, e, "g");
	struct mcfs_attr a, before;

	publish(s, f, 4096, 1);
	publish(s, g, 8192, 2);
	cr_assert_eq(pool_free(s), 2 * SEG - 3 * 4096);
	before = attr_of(s, f);
	cr_assert_eq(rename_ex(s, d, "f", e, "g", 0), 0);
	cr_assert_eq(lookup(s, d, "f", NULL), -ENOENT);
	cr_assert_eq(lookup(b, e, "g", &a), 0);
	cr_assert_eq(a.ino, f);
	cr_assert_eq(a.size, 4096);
	cr_assert_geq(a.ctime_ns, before.ctime_ns);
	cr_assert_eq(getattr(s, g, NULL), -ENOENT);
	/* No lease held g's object: its space is free at once. */
	cr_assert_eq(pool_free(s), 2 * SEG - 4096);
	/* Onto itself: nothing happens. */
	cr_assert_eq(rename_ex(s, e, "g", e, "g", 0), 0);
	cr_assert_eq(lookup(s, e, "g", &a), 0);
	cr_assert_eq(a.ino, f);
	/* Within one directory. */
	cr_assert_eq(rename_ex(s, e, "g", e, "h", 0), 0);
	cr_assert_eq(lookup(s, e, "h", NULL), 0);
	cr_assert_eq(rename_ex(s, e, "nope", e, "x", 0), -ENOENT);
}

Test(master, get_by_a_name_that_moved)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), e = mkd(s, MCFS_ROOT_INO, "e");
	uint64_t f = creat(s, d, "f");
	struct mcfs_attr a = publish(s, f, 4096, 1);
	struct mcfs_msg r;

	cr_assert_eq(get_named(s, f, d, "f", &r), 0);
	cr_assert_eq(r.attr.version, a.version);
	cr_assert_eq(release(s, f, a.version, 1), 0);
	/* No name given: any inode by its number, as before. */
	cr_assert_eq(get(s, f, &r), 0);
	cr_assert_eq(release(s, f, a.version, 1), 0);
	cr_assert_eq(get_named(s, f, d, "g", &r), -ENOENT);
	cr_assert_eq(get_named(s, f, e, "f", &r), -ENOENT);
	cr_assert_eq(get_named(s, f, d, "ff", &r), -ENOENT);
	cr_assert_eq(get_named(s, f, d, "", &r), -ENOENT);
	/* Moved to another directory, then renamed in it. */
	cr_assert_eq(rename_ex(s, d, "f", e, "g", 0), 0);
	cr_assert_eq(get_named(s, f, d, "f", &r), -ENOENT);
	cr_assert_eq(get_named(s, f, e, "g", &r), 0);
	cr_assert_eq(release(s, f, a.version, 1), 0);
	cr_assert_eq(rename_ex(s, e, "g", e, "h", 0), 0);
	cr_assert_eq(get_named(s, f, e, "g", &r), -ENOENT);
	cr_assert_eq(get_named(s, f, e, "h", &r), 0);
	cr_assert_eq(release(s, f, a.version, 1), 0);
}

Test(master, rename_directories)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t a = mkd(s, MCFS_ROOT_INO, "a"), b = mkd(s, MCFS_ROOT_INO, "b");
	uint64_t a1 = mkd(s, a, "a1"), a2 = mkd(s, a1, "a2");
	uint64_t full = mkd(s, MCFS_ROOT_INO, "full");
	struct mcfs_attr at;

	creat(s, full, "x");
	creat(s, MCFS_ROOT_INO, "file");
	mkd(s, b, "empty");
	/* Into its own subtree. */
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "a", a2, "x", 0), -EINVAL);
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "a", a, "x", 0), -EINVAL);
	cr_assert_eq(rename_ex(s, a, "a1", a2, "x", 0), -EINVAL);
	/* Dir over non-dir, non-dir over dir, dir over a non-empty dir. */
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "a", MCFS_ROOT_INO, "file", 0), -ENOTDIR);
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "file", MCFS_ROOT_INO, "a", 0), -EISDIR);
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "b", MCFS_ROOT_INO, "full", 0), -ENOTEMPTY);
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "a", MCFS_ROOT_INO, "file", 0), -ENOTDIR);
	/* Parent into a sibling: nlink moves along. */
	cr_assert_eq(attr_of(s, a).nlink, 3);
	cr_assert_eq(attr_of(s, b).nlink, 3);
	cr_assert_eq(rename_ex(s, a, "a1", b, "moved", 0), 0);
	cr_assert_eq(attr_of(s, a).nlink, 2);
	cr_assert_eq(attr_of(s, b).nlink, 4);
	cr_assert_eq(lookup(s, b, "moved", &at), 0);
	cr_assert_eq(at.ino, a1);
	cr_assert_eq(lookup(s, a1, "a2", NULL), 0);
	/* Dir over an empty dir. */
	cr_assert_eq(rename_ex(s, b, "moved", b, "empty", 0), 0);
	cr_assert_eq(attr_of(s, b).nlink, 3);
	cr_assert_eq(lookup(s, b, "empty", &at), 0);
	cr_assert_eq(at.ino, a1);
	cr_assert_eq(lookup(s, b, "moved", NULL), -ENOENT);
	/* To a parent's name that is a non-empty dir holding it. */
	cr_assert_eq(rename_ex(s, a1, "a2", MCFS_ROOT_INO, "b", 0), -ENOTEMPTY);
	/* Bad target directory and names. */
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "a", 999, "x", 0), -ENOENT);
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "a", a2, "..", 0), -EINVAL);
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "file", a2, "x", 3), -EINVAL);
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "file", a2, "x", 4), -EINVAL);
}

Test(master, rename_noreplace_and_exchange)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), e = mkd(s, MCFS_ROOT_INO, "e");
	uint64_t f = creat(s, d, "f"), g = creat(s, e, "g");
	struct mcfs_attr a;

	cr_assert_eq(rename_ex(s, d, "f", e, "g", MCFS_RENAME_NOREPLACE), -EEXIST);
	cr_assert_eq(rename_ex(s, d, "f", e, "new", MCFS_RENAME_NOREPLACE), 0);
	cr_assert_eq(rename_ex(s, e, "new", d, "f", MCFS_RENAME_NOREPLACE), 0);
	cr_assert_eq(rename_ex(s, d, "f", e, "missing", MCFS_RENAME_EXCHANGE), -ENOENT);
	cr_assert_eq(rename_ex(s, d, "f", e, "g", MCFS_RENAME_EXCHANGE), 0);
	cr_assert_eq(lookup(s, d, "f", &a), 0);
	cr_assert_eq(a.ino, g);
	cr_assert_eq(lookup(s, e, "g", &a), 0);
	cr_assert_eq(a.ino, f);
	/* A directory and a file: nlinks follow the directory. */
	mkd(s, d, "sub");
	cr_assert_eq(attr_of(s, d).nlink, 3);
	cr_assert_eq(rename_ex(s, d, "sub", e, "g", MCFS_RENAME_EXCHANGE), 0);
	cr_assert_eq(attr_of(s, d).nlink, 2);
	cr_assert_eq(attr_of(s, e).nlink, 3);
	cr_assert_eq(lookup(s, d, "sub", &a), 0);
	cr_assert_eq(a.ino, f);
	/* Not into one's own subtree, either way round. */
	uint64_t sub = mkd(s, e, "g2");
	(void)sub;
	cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "e", e, "g2", MCFS_RENAME_EXCHANGE), -EINVAL);
	cr_assert_eq(rename_ex(s, e, "g2", MCFS_ROOT_INO, "e", MCFS_RENAME_EXCHANGE), -EINVAL);
	/* With itself. */
	cr_assert_eq(rename_ex(s, d, "f", d, "f", MCFS_RENAME_EXCHANGE), 0);
}

Test(master, rename_over_another_nodes_pending_file)
{
	struct mcfs_master_sess *a = node("node-a", ""), *b = node("node-b", "");
	uint64_t tmp = creat(b, MCFS_ROOT_INO, "tmp"), p = creat(a, MCFS_ROOT_INO, "key");
	struct mcfs_msg pr;
	struct mcfs_attr at;

	publish(b, tmp, 10, 3);
	cr_assert_eq(put_start(a, p, 100, &pr), 0);
	cr_assert_eq(
	    rename_ex(b, MCFS_ROOT_INO, "tmp", MCFS_ROOT_INO, "key", MCFS_RENAME_NOREPLACE),
	    -EEXIST);
	cr_assert_eq(rename_ex(b, MCFS_ROOT_INO, "tmp", MCFS_ROOT_INO, "key", MCFS_RENAME_EXCHANGE),
		     -ENOENT);
	cr_assert_eq(rename_ex(b, MCFS_ROOT_INO, "tmp", MCFS_ROOT_INO, "key", 0), 0);
	cr_assert_eq(lookup(a, MCFS_ROOT_INO, "key", &at), 0);
	cr_assert_eq(at.ino, tmp);
	/* a's put lost its file. */
	cr_assert_eq(put_end(a, pr.put_id, 50, 0, NULL), -ENOENT);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
}

/* Readdir */

struct listing {
	uint32_t calls;
	uint32_t total;
	unsigned char *seen; /* by entry number */
	long last;	     /* entry number of the last one listed */
};

/* List dir in pages of count; every entry is named "e<N>". Marks seen[N]. */
static void list_page(struct mcfs_master_sess *s, uint64_t dir, uint64_t *cookie, uint32_t count,
		      struct listing *l, bool *eof)
{
	struct mcfs_msg q = M(MCFS_MSG_READDIR), r;
	struct mcfs_dirent de;
	struct mcfs_rd rd;
	uint32_t n = 0;
	int ret;

	q.ino = dir;
	q.cookie = *cookie;
	q.count = count;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_leq(r.value.len, 1u << 20);
	mcfs_rd_init(&rd, r.value.p, r.value.len);
	while ((ret = mcfs_dirent_next(&rd, &de)) == 1) {
		char name[256];
		unsigned long k;

		cr_assert_lt(de.name.len, sizeof(name));
		memcpy(name, de.name.p, de.name.len);
		name[de.name.len] = '\0';
		cr_assert_eq(name[0], 'e');
		k = strtoul(name + 1, NULL, 10);
		cr_assert_eq(l->seen[k], 0, "entry %s listed twice", name);
		l->seen[k] = 1;
		l->last = (long)k;
		cr_assert_gt(de.cookie, *cookie);
		cr_assert_gt(de.attr.ino, 0);
		*cookie = de.cookie;
		n++;
	}
	cr_assert_eq(ret, 0);
	cr_assert_eq(n, r.count);
	if (count)
		cr_assert_leq(n, count);
	l->total += n;
	l->calls++;
	*eof = r.flags & MCFS_READDIR_EOF;
}

#define BIG 10000

Test(master, readdir_pages_through_a_large_directory, .timeout = 60)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "big"), cookie = 0;
	struct listing l = {0, 0, calloc(BIG, 1), -1};
	bool eof = false;
	char name[32];

	for (int i = 0; i < BIG; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		creat(s, d, name);
	}
	while (!eof)
		list_page(s, d, &cookie, 333, &l, &eof);
	cr_assert_eq(l.total, BIG);
	cr_assert_eq(l.calls, (BIG + 332) / 333);
	for (int i = 0; i < BIG; i++)
		cr_assert_eq(l.seen[i], 1);

	/* count 0 means 1024. */
	memset(l.seen, 0, BIG);
	l.total = l.calls = 0;
	cookie = 0;
	list_page(s, d, &cookie, 0, &l, &eof);
	cr_assert_eq(l.total, 1024);
	cr_assert(!eof);
	/* The page that ends exactly at the end says EOF. */
	cookie = 0;
	memset(l.seen, 0, BIG);
	list_page(s, d, &cookie, BIG, &l, &eof);
	cr_assert(eof);
	free(l.seen);
}

Test(master, readdir_with_deletions_in_between, .timeout = 60)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "big"), cookie = 0, other = mkd(s, MCFS_ROOT_INO, "o");
	unsigned char *removed = calloc(BIG, 1);
	struct listing l = {0, 0, calloc(BIG, 1), -1};
	bool eof = false;
	char name[32];
	int next_victim = BIG - 1;

	for (int i = 0; i < BIG; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		creat(s, d, name);
	}
	while (!eof) {
		list_page(s, d, &cookie, 250, &l, &eof);
		if (eof)
			break;
		/*
		 * Remove the entry the cookie names (the resume point must be
		 * found anyway), one listed earlier, and one not listed yet
		 * (which must then not appear). Move one away by rename.
		 */
		for (int k = 0; k < BIG; k++) {
			if (l.seen[k] && !removed[k]) {
				snprintf(name, sizeof(name), "e%d", k);
				cr_assert_eq(unlink_ex(s, d, name), 0);
				removed[k] = 1;
				break;
			}
		}
		if (!removed[l.last]) {
			snprintf(name, sizeof(name), "e%ld", l.last);
			cr_assert_eq(unlink_ex(s, d, name), 0);
			removed[l.last] = 2;
		}
		while (next_victim >= 0 && l.seen[next_victim])
			next_victim--;
		if (next_victim >= 0) {
			snprintf(name, sizeof(name), "e%d", next_victim);
			if (next_victim % 2)
				cr_assert_eq(unlink_ex(s, d, name), 0);
			else
				cr_assert_eq(rename_ex(s, d, name, other, name, 0), 0);
			removed[next_victim] = 3;
			next_victim--;
		}
	}
	for (int i = 0; i < BIG; i++) {
		if (removed[i] == 3)
			cr_assert_eq(l.seen[i], 0, "e%d was removed before it was listed", i);
		else
			cr_assert_eq(l.seen[i], 1, "e%d listed %d times", i, l.seen[i]);
	}
	free(l.seen);
	free(removed);
}

Test(master, readdir_resumes_after_a_moved_cookie)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), cookie = 0;
	struct listing l = {0, 0, calloc(100, 1), -1};
	bool eof;
	char name[32];

	/* Entries renamed into place: their cookies are not their inode numbers. */
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		creat(s, MCFS_ROOT_INO, "tmp");
		cr_assert_eq(rename_ex(s, MCFS_ROOT_INO, "tmp", d, name, 0), 0);
	}
	/* Resume through the cookie table. */
	list_page(s, d, &cookie, 10, &l, &eof);
	cr_assert_eq(l.last, 9);
	list_page(s, d, &cookie, 7, &l, &eof);
	cr_assert_eq(l.last, 16);
	/* The cookie's entry moves away: resume at the next larger cookie. */
	cr_assert_eq(rename_ex(s, d, "e16", MCFS_ROOT_INO, "e16", 0), 0);
	do
		list_page(s, d, &cookie, 7, &l, &eof);
	while (!eof);
	cr_assert_eq(l.total, 100);
	free(l.seen);
}

Test(master, readdir_stays_under_a_mebibyte)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), cookie = 0;
	struct listing l = {0, 0, calloc(4000, 1), -1};
	char name[256];
	bool eof = false;

	memset(name, 'x', 255);
	name[255] = '\0';
	name[0] = 'e';
	for (int i = 0; i < 4000; i++) {
		int n = snprintf(name, sizeof(name), "e%d", i);

		name[n] = 'x';
		creat(s, d, name);
	}
	list_page(s, d, &cookie, 4000, &l, &eof);
	cr_assert(!eof);
	cr_assert_lt(l.total, 4000);
	cr_assert_gt(l.total, 2500);
	while (!eof)
		list_page(s, d, &cookie, 4000, &l, &eof);
	cr_assert_eq(l.total, 4000);
	free(l.seen);
}

Test(master, readdir_errors_and_attrs)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f"), d = mkd(s, MCFS_ROOT_INO, "d");
	struct mcfs_msg q = M(MCFS_MSG_READDIR), r;
	struct mcfs_dirent de;
	struct mcfs_rd rd;

	q.ino = f;
	cr_assert_eq(call(s, &q, &r), -ENOTDIR);
	q.ino = 999;
	cr_assert_eq(call(s, &q, &r), -ENOENT);
	q.ino = d;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.count, 0);
	cr_assert_eq(r.flags, MCFS_READDIR_EOF);
	/* Entries carry full attrs; a vanished cookie past the end gives nothing. */
	publish(s, f, 123, 9);
	q.ino = MCFS_ROOT_INO;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.count, 2);
	mcfs_rd_init(&rd, r.value.p, r.value.len);
	cr_assert_eq(mcfs_dirent_next(&rd, &de), 1);
	cr_assert_eq(de.name.len, 1);
	cr_assert_eq(de.name.p[0], 'f');
	cr_assert_eq(de.attr.size, 123);
	cr_assert_eq(de.attr.mode, S_IFREG | 0644);
	cr_assert_eq(mcfs_dirent_next(&rd, &de), 1);
	cr_assert_eq(de.attr.ino, d);
	cr_assert_eq(de.attr.nlink, 2);
	cr_assert_eq(mcfs_dirent_next(&rd, &de), 0);
	q.cookie = 1u << 30;
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(r.count, 0);
	cr_assert_eq(r.flags, MCFS_READDIR_EOF);
}

/* Puts */

Test(master, put_start_grow_end)
{
	struct mcfs_master_sess *s = node("node-a", "10.0.0.1:7422");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");
	struct mcfs_msg r, g;
	struct mcfs_attr a;

	cr_assert_eq(put_start(s, f, 10000, &r), 0);
	cr_assert_gt(r.put_id, 0);
	cr_assert_eq(r.version, 0);
	cr_assert_eq(r.nrep, 1);
	cr_assert_eq(r.rep[0].node_id, 1);
	cr_assert_eq(r.rep[0].seg_id, 1);
	cr_assert_eq(r.rep[0].tier, MCFS_TIER_DRAM);
	cr_assert_eq(r.rep[0].state, MCFS_REP_PENDING);
	cr_assert_eq(r.rep[0].len, 12288);
	cr_assert_eq(r.rep[0].rkey, 0);
	cr_assert_eq(r.rep[0].addr.len, 13);
	cr_assert_eq(memcmp(r.rep[0].addr.p, "10.0.0.1:7422", 13), 0);
	cr_assert_eq(pool_free(s), SEG - 12288);

	/* Nothing is visible before PUT_END. */
	cr_assert_eq(attr_of(s, f).flags, MCFS_ATTR_PENDING);
	cr_assert_eq(put_grow(s, r.put_id, 20000, &g), 0);
	cr_assert_eq(g.nrep, 1);
	cr_assert_eq(g.rep[0].offset, r.rep[0].offset);
	cr_assert_eq(g.rep[0].len, 20480);
	/* Size 0 renews the put: the same range, fresh grants. */
	cr_assert_eq(put_grow(s, r.put_id, 0, &g), 0);
	cr_assert_eq(g.nrep, 1);
	cr_assert_eq(g.rep[0].offset, r.rep[0].offset);
	cr_assert_eq(g.rep[0].len, 20480);
	cr_assert_eq(put_end(s, r.put_id, 20481, 0, NULL), -EINVAL);
	cr_assert_eq(put_end(s, r.put_id, 5000, 0xabcd, &a), 0);
	cr_assert_eq(a.size, 5000);
	cr_assert_eq(a.version, 1);
	cr_assert_eq(a.flags, 0);
	/* Trimmed to the size. */
	cr_assert_eq(pool_free(s), SEG - 8192);
	cr_assert_eq(get(s, f, &r), 0);
	cr_assert_eq(r.rep[0].len, 8192);
	cr_assert_eq(r.rep[0].state, MCFS_REP_COMPLETE);
	cr_assert_eq(r.crc, 0xabcd);
	/* The put is gone. */
	cr_assert_eq(put_end(s, r.put_id, 0, 0, NULL), -ENOENT);
	cr_assert_eq(put_revoke(s, 12345), -ENOENT);
	cr_assert_eq(put_grow(s, 12345, 10, &g), -ENOENT);
}

Test(master, put_grow_in_place_or_eagain)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");
	struct mcfs_msg p1, p2, g;

	cr_assert_eq(put_start(s, f, 4096, &p1), 0);
	cr_assert_eq(put_start(s, f, 4096, &p2), 0);
	cr_assert_neq(p1.put_id, p2.put_id);
	/* p2's range sits right after p1's. */
	cr_assert_eq(put_grow(s, p1.put_id, 8192, &g), -EAGAIN);
	cr_assert_eq(put_grow(s, p2.put_id, 3 * 4096, &g), 0);
	cr_assert_eq(g.rep[0].len, 3 * 4096);
	cr_assert_eq(put_revoke(s, p2.put_id), 0);
	cr_assert_eq(put_grow(s, p1.put_id, 8192, &g), 0);
	cr_assert_eq(put_revoke(s, p1.put_id), 0);
	cr_assert_eq(put_revoke(s, p1.put_id), -ENOENT);
	cr_assert_eq(pool_free(s), SEG);
}

Test(master, put_of_capacity_zero)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f"), e = creat(s, MCFS_ROOT_INO, "e");
	struct mcfs_msg r, g;
	struct mcfs_attr a;
	char v[4096];

	cr_assert_eq(put_start(s, f, 0, &r), 0);
	cr_assert_eq(r.nrep, 0);
	cr_assert_eq(put_end(s, r.put_id, 1, 0, NULL), -EINVAL);
	cr_assert_eq(put_grow(s, r.put_id, 100, &g), 0);
	cr_assert_eq(g.nrep, 1);
	cr_assert_eq(g.rep[0].len, 4096);
	cr_assert_eq(put_end(s, r.put_id, 100, 5, &a), 0);
	cr_assert_eq(a.size, 100);

	/* An empty object holds no space, yet lives on its node. */
	cr_assert_eq(put_start(s, e, 0, &r), 0);
	cr_assert_eq(put_end(s, r.put_id, 0, 0, &a), 0);
	cr_assert_eq(a.size, 0);
	cr_assert_gt(a.version, 0);
	cr_assert_eq(pool_free(s), SEG - 4096);
	cr_assert_eq(get(s, e, &r), 0);
	cr_assert_eq(r.nrep, 1);
	cr_assert_eq(r.rep[0].len, 0);
	cr_assert_eq(xget(s, e, "user.mcfs.replicas", v), 0);
	cr_assert_str_eq(v, "node-a - dram complete\n");
	/* Size 0 at PUT_END frees what was reserved. */
	cr_assert_eq(put_start(s, e, 50000, &r), 0);
	cr_assert_eq(put_end(s, r.put_id, 0, 0, &a), 0);
	cr_assert_eq(pool_free(s), SEG - 4096);
}

Test(master, put_enospc)
{
	struct mcfs_master_sess *s = node("node-a", ""), *nos = sess();
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");
	struct mcfs_msg r, r2, g;

	cr_assert_eq(put_start(s, f, SEG + 1, &r), -ENOSPC);
	cr_assert_eq(put_start(s, f, SEG - 4096, &r), 0);
	cr_assert_eq(put_start(s, f, 8192, &r2), -ENOSPC);
	cr_assert_eq(put_start(s, f, 4096, &r2), 0);
	cr_assert_eq(pool_free(s), 0);
	cr_assert_eq(put_grow(s, r2.put_id, 8192, &g), -EAGAIN);
	cr_assert_eq(put_revoke(s, r.put_id), 0);
	cr_assert_eq(put_start(s, f, 8192, &r), 0);
	/* A node without a segment cannot put anything but nothing. */
	cr_assert_eq(hello_ex(nos, "client", "", 0, NULL), 0);
	uint64_t h = creat(nos, MCFS_ROOT_INO, "h");
	cr_assert_eq(put_start(nos, h, 1, &r), -ENOSPC);
	cr_assert_eq(put_start(nos, h, 0, &r), 0);
	cr_assert_eq(put_grow(nos, r.put_id, 1, &g), -ENOSPC);
}

Test(master, put_checks_target_and_owner)
{
	struct mcfs_master_sess *a = node("node-a", ""), *b = node("node-b", "");
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_msg r, g;

	cr_assert_eq(put_start(a, d, 10, &r), -EISDIR);
	cr_assert_eq(put_start(a, 9999, 10, &r), -ENOENT);
	cr_assert_eq(put_start(a, f, 10, &r), 0);
	cr_assert_eq(put_grow(b, r.put_id, 100, &g), -EPERM);
	cr_assert_eq(put_end(b, r.put_id, 1, 0, NULL), -EPERM);
	cr_assert_eq(put_revoke(b, r.put_id), -EPERM);
	cr_assert_eq(put_end(a, r.put_id, 1, 0, NULL), 0);
}

Test(master, republish_keeps_the_inode_and_last_end_wins)
{
	struct mcfs_master_sess *a = node("node-a", ""), *b = node("node-b", "");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_attr v1 = publish(a, f, 100, 1), at;
	struct mcfs_msg p1, p2, r;

	/* Two writers; nothing changes for readers before an end. */
	cr_assert_eq(put_start(a, f, 200, &p1), 0);
	cr_assert_eq(put_start(b, f, 300, &p2), 0);
	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(r.attr.version, v1.version);
	cr_assert_eq(r.attr.size, 100);
	cr_assert_eq(put_end(b, p2.put_id, 300, 3, &at), 0);
	cr_assert_gt(at.version, v1.version);
	cr_assert_eq(put_end(a, p1.put_id, 200, 2, &at), 0);
	cr_assert_eq(at.ino, f);
	/* b's lease holds v1; the version p2 published was never leased. */
	cr_assert_eq(mcfs_master_tick(m, now_ms + 10000), 1000);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f", &at), 0);
	cr_assert_eq(at.ino, f);
	cr_assert_eq(at.size, 200);
	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(r.crc, 2);
	cr_assert_eq(r.rep[0].node_id, 1);
	/* The replaced versions were not leased: their space is back. */
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
}

Test(master, put_end_after_unlink_frees)
{
	struct mcfs_master_sess *a = node("node-a", "");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), g;
	struct mcfs_msg p, p2;

	cr_assert_eq(put_start(a, f, 40000, &p), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "f"), 0);
	/* Still valid until its end: it may even grow. */
	cr_assert_eq(put_grow(a, p.put_id, 50000, &p2), 0);
	cr_assert_eq(put_end(a, p.put_id, 100, 0, NULL), -ENOENT);
	cr_assert_eq(pool_free(a), SEG);
	cr_assert_eq(put_end(a, p.put_id, 100, 0, NULL), -ENOENT);
	/* Published then unlinked with a put in flight, revoked. */
	g = creat(a, MCFS_ROOT_INO, "g");
	publish(a, g, 5000, 0);
	cr_assert_eq(put_start(a, g, 4096, &p), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "g"), 0);
	cr_assert_eq(put_start(a, g, 4096, &p2), -ENOENT);
	cr_assert_eq(put_revoke(a, p.put_id), 0);
	cr_assert_eq(pool_free(a), SEG);
}

/* Leases */

Test(master, get_grants_a_lease)
{
	struct mcfs_master_sess *a = node("node-a", "h:1"), *b = node("node-b", "h:2");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), d = mkd(a, MCFS_ROOT_INO, "d");
	struct mcfs_attr v1 = publish(a, f, 6000, 77);
	struct mcfs_msg r;

	xget_is(b, f, "user.mcfs.lease_ms", "0");
	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(r.attr.version, v1.version);
	cr_assert_eq(r.attr.size, 6000);
	cr_assert_eq(r.crc, 77);
	cr_assert_eq(r.lease_ms, 10000);
	cr_assert_eq(r.nrep, 1);
	cr_assert_eq(r.rep[0].node_id, 1);
	cr_assert_eq(r.rep[0].state, MCFS_REP_COMPLETE);
	cr_assert_eq(r.rep[0].len, 8192);
	cr_assert_eq(r.rep[0].addr.len, 3);
	xget_is(b, f, "user.mcfs.lease_ms", "10000");
	now_ms += 4000;
	xget_is(b, f, "user.mcfs.lease_ms", "6000");
	/* A later GET extends, an earlier deadline never shortens. */
	cr_assert_eq(get(b, f, &r), 0);
	xget_is(b, f, "user.mcfs.lease_ms", "10000");
	cr_assert_eq(lease(b, f, v1.version), 0);
	cr_assert_eq(lease(b, f, v1.version + 1), -ENOENT);
	cr_assert_eq(lease(b, f, 0), -ENOENT);
	cr_assert_eq(lease(b, 4321, 1), -ENOENT);
	now_ms += 20000;
	xget_is(b, f, "user.mcfs.lease_ms", "0");
	cr_assert_eq(get(b, d, &r), -EISDIR);
	cr_assert_eq(get(b, 4321, &r), -ENOENT);
}

Test(master, unlinked_object_lives_until_its_lease_ends)
{
	struct mcfs_master_sess *a = node("node-a", ""), *b = node("node-b", "");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_attr v1 = publish(a, f, 4096, 1);
	struct mcfs_msg r;
	uint64_t t0 = now_ms;

	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "f"), 0);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f", NULL), -ENOENT);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	/* Renewable while retired. */
	now_ms = t0 + 5000;
	cr_assert_eq(lease(b, f, v1.version), 0);
	cr_assert_eq(mcfs_master_tick(m, t0 + 10000), 1000); /* at most 1 s between ticks */
	cr_assert_eq(mcfs_master_tick(m, t0 + 14500), 500);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	cr_assert_eq(mcfs_master_tick(m, t0 + 14999), 1);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	cr_assert_eq(mcfs_master_tick(m, t0 + 15000), 1000);
	cr_assert_eq(pool_free(a), 2 * SEG);
	cr_assert_eq(lease(b, f, v1.version), -ENOENT);
}

Test(master, replaced_version_lives_until_its_lease_ends)
{
	struct mcfs_master_sess *a = node("node-a", "");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_attr v1 = publish(a, f, 4096, 1), v2, v3;
	struct mcfs_msg r;
	uint64_t t0 = now_ms;

	cr_assert_eq(get(a, f, &r), 0);
	v2 = publish(a, f, 8192, 2);
	cr_assert_eq(pool_free(a), SEG - 3 * 4096);
	/* Both versions answer LEASE: the current and the retired one. */
	cr_assert_eq(lease(a, f, v1.version), 0);
	cr_assert_eq(lease(a, f, v2.version), 0);
	v3 = publish(a, f, 4096, 3);
	(void)v3;
	cr_assert_eq(pool_free(a), SEG - 4 * 4096);
	cr_assert_eq(mcfs_master_tick(m, t0 + 9999), 1);
	cr_assert_eq(pool_free(a), SEG - 4 * 4096);
	cr_assert_eq(mcfs_master_tick(m, t0 + 10000), 1000);
	cr_assert_eq(pool_free(a), SEG - 4096);
	cr_assert_eq(lease(a, f, v1.version), -ENOENT);
	cr_assert_eq(lease(a, f, v2.version), -ENOENT);
	cr_assert_eq(mcfs_master_tick(m, t0 + 20000), 1000);
}

Test(master, rename_over_a_leased_file)
{
	struct mcfs_master_sess *a = node("node-a", "");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), g = creat(a, MCFS_ROOT_INO, "g");
	struct mcfs_attr vg;
	struct mcfs_msg r;

	publish(a, f, 4096, 1);
	vg = publish(a, g, 4096, 2);
	cr_assert_eq(get(a, g, &r), 0);
	cr_assert_eq(rename_ex(a, MCFS_ROOT_INO, "f", MCFS_ROOT_INO, "g", 0), 0);
	cr_assert_eq(pool_free(a), SEG - 2 * 4096);
	cr_assert_eq(lease(a, g, vg.version), 0);
	mcfs_master_tick(m, now_ms + 10000);
	cr_assert_eq(pool_free(a), SEG - 4096);
}

/* Extended attributes */

Test(master, xattr_namespaces)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");

	/* Nothing is stored outside user.*: reads find nothing, writes are refused. */
	cr_assert_eq(xget(s, f, "security.selinux", NULL), -ENODATA);
	cr_assert_eq(xget(s, f, "trusted.x", NULL), -ENODATA);
	cr_assert_eq(xget(s, f, "use", NULL), -ENODATA);
	cr_assert_eq(xset(s, f, "trusted.x", "1"), -EOPNOTSUPP);
	cr_assert_eq(xset(s, f, "system.posix_acl_access", "x"), -EOPNOTSUPP);
	cr_assert_eq(xremove(s, f, "security.capability"), -EOPNOTSUPP);
	cr_assert_eq(xget(s, f, "user.", NULL), -EINVAL);
	cr_assert_eq(xset(s, f, "user.", "x"), -EINVAL);
	cr_assert_eq(xget(s, f, "", NULL), -EINVAL);
	cr_assert_eq(xget(s, 999, "user.x", NULL), -ENOENT);
	cr_assert_eq(xset_ex(s, f, "user.x", "v", 1, 4), -EINVAL);
}

Test(master, xattr_replicas_tier_checksum)
{
	struct mcfs_master_sess *a = node("node-a", "127.0.0.1:7422"), *e = node("embedded", "");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), g = creat(e, MCFS_ROOT_INO, "g");
	char v[4096];

	/* Pending: no replicas, no tier, no checksum. */
	xget_is(a, f, "user.mcfs.replicas", "");
	cr_assert_eq(xget(a, f, "user.mcfs.tier", v), -ENODATA);
	cr_assert_eq(xget(a, f, "user.mcfs.checksum", v), -ENODATA);
	xget_is(a, f, "user.mcfs.lease_ms", "0");
	publish(a, f, 10, 0xabcd);
	publish(e, g, 10, 0xdeadbeef);
	xget_is(a, f, "user.mcfs.replicas", "node-a 127.0.0.1:7422 dram complete\n");
	xget_is(a, g, "user.mcfs.replicas", "embedded - dram complete\n");
	xget_is(a, f, "user.mcfs.tier", "dram");
	xget_is(a, f, "user.mcfs.checksum", "crc32c:0000abcd");
	xget_is(a, g, "user.mcfs.checksum", "crc32c:deadbeef");
	/* Read-only. */
	cr_assert_eq(xset(a, f, "user.mcfs.replicas", "x"), -EPERM);
	cr_assert_eq(xset(a, f, "user.mcfs.tier", "dram"), -EPERM);
	cr_assert_eq(xset(a, f, "user.mcfs.checksum", "x"), -EPERM);
	cr_assert_eq(xset(a, f, "user.mcfs.lease_ms", "1"), -EPERM);
	cr_assert_eq(xset(a, f, "user.mcfs.soft_pin_ms", "1"), -EPERM);
	cr_assert_eq(xset(a, MCFS_ROOT_INO, "user.mcfs.locations", "1"), -EPERM);
	/* Unknown mcfs names. */
	cr_assert_eq(xget(a, f, "user.mcfs.bogus", v), -ENODATA);
	cr_assert_eq(xset(a, f, "user.mcfs.bogus", "1"), -EINVAL);
	cr_assert_eq(xset(a, f, "user.mcfs.", "1"), -EINVAL);
	/* Names of the other kind. */
	cr_assert_eq(xget(a, f, "user.mcfs.locations", v), -ENODATA);
	cr_assert_eq(xget(a, MCFS_ROOT_INO, "user.mcfs.replicas", v), -ENODATA);
	cr_assert_eq(xget(a, MCFS_ROOT_INO, "user.mcfs.tier", v), -ENODATA);
	cr_assert_eq(xget(a, MCFS_ROOT_INO, "user.mcfs.lease_ms", v), -ENODATA);
	/* Never removable. */
	cr_assert_eq(xremove(a, f, "user.mcfs.replica_num"), -EPERM);
	cr_assert_eq(xremove(a, f, "user.mcfs.bogus"), -EPERM);
	cr_assert_eq(xremove(a, MCFS_ROOT_INO, "user.mcfs.locations"), -EPERM);
}

Test(master, xattr_replica_num)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");
	static const char *bad[] = {"0", "9", "x", "", "33", "01", "1\n\n", " 1", "-1", "\n"};

	xget_is(s, f, "user.mcfs.replica_num", "1");
	cr_assert_eq(xset(s, f, "user.mcfs.replica_num", "8"), 0);
	xget_is(s, f, "user.mcfs.replica_num", "8");
	cr_assert_eq(xset(s, f, "user.mcfs.replica_num", "2\n"), 0);
	xget_is(s, f, "user.mcfs.replica_num", "2");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(xset(s, f, "user.mcfs.replica_num", bad[i]), -EINVAL, "'%s'", bad[i]);
	xget_is(s, f, "user.mcfs.replica_num", "2");
	/* mcfs's attributes always exist. */
	cr_assert_eq(xset_ex(s, f, "user.mcfs.replica_num", "3", 1, MCFS_XATTR_CREATE), -EEXIST);
	cr_assert_eq(xset_ex(s, f, "user.mcfs.replica_num", "3", 1, MCFS_XATTR_REPLACE), 0);
	xget_is(s, f, "user.mcfs.replica_num", "3");
}

Test(master, xattr_soft_pin)
{
	struct mcfs_master_conf c;

	mcfs_master_conf_default(&c);
	c.soft_pin_ttl_ms = 60000;
	c.max_soft_pin_ttl_ms = 30000; /* the cap wins */
	teardown();
	setup_conf(&c);

	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t d = mkd(s, MCFS_ROOT_INO, "d"), f = creat(s, MCFS_ROOT_INO, "f"), g;

	xget_is(s, f, "user.mcfs.soft_pin", "0");
	xget_is(s, f, "user.mcfs.soft_pin_ms", "0");
	cr_assert_eq(xset(s, f, "user.mcfs.soft_pin", "2"), -EINVAL);
	cr_assert_eq(xset(s, f, "user.mcfs.soft_pin", "yes"), -EINVAL);
	cr_assert_eq(xset(s, f, "user.mcfs.soft_pin", ""), -EINVAL);
	/* Unpublished: the pin starts at PUT_END. */
	cr_assert_eq(xset(s, f, "user.mcfs.soft_pin", "1"), 0);
	xget_is(s, f, "user.mcfs.soft_pin", "1");
	xget_is(s, f, "user.mcfs.soft_pin_ms", "0");
	now_ms += 1000;
	publish(s, f, 1, 0);
	xget_is(s, f, "user.mcfs.soft_pin_ms", "30000");
	now_ms += 10000;
	xget_is(s, f, "user.mcfs.soft_pin_ms", "20000");
	/* Setting it again starts it again; a new version gets a fresh one. */
	cr_assert_eq(xset(s, f, "user.mcfs.soft_pin", "1\n"), 0);
	xget_is(s, f, "user.mcfs.soft_pin_ms", "30000");
	now_ms += 5000;
	publish(s, f, 2, 0);
	xget_is(s, f, "user.mcfs.soft_pin_ms", "30000");
	now_ms += 30000;
	xget_is(s, f, "user.mcfs.soft_pin_ms", "0");
	xget_is(s, f, "user.mcfs.soft_pin", "1");
	cr_assert_eq(xset(s, f, "user.mcfs.soft_pin", "1"), 0);
	cr_assert_eq(xset(s, f, "user.mcfs.soft_pin", "0"), 0);
	xget_is(s, f, "user.mcfs.soft_pin_ms", "0");
	xget_is(s, f, "user.mcfs.soft_pin", "0");
	/* Directories: a default, no timer. */
	cr_assert_eq(xset(s, d, "user.mcfs.soft_pin", "1"), 0);
	xget_is(s, d, "user.mcfs.soft_pin", "1");
	cr_assert_eq(xget(s, d, "user.mcfs.soft_pin_ms", NULL), -ENODATA);
	g = creat(s, d, "g");
	publish(s, g, 1, 0);
	xget_is(s, g, "user.mcfs.soft_pin_ms", "30000");
}

Test(master, xattr_hard_pin)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f");

	xget_is(s, f, "user.mcfs.hard_pin", "0");
	cr_assert_eq(xset(s, f, "user.mcfs.hard_pin", "1"), 0);
	xget_is(s, f, "user.mcfs.hard_pin", "1");
	cr_assert_eq(xset(s, f, "user.mcfs.hard_pin", "0\n"), 0);
	xget_is(s, f, "user.mcfs.hard_pin", "0");
	cr_assert_eq(xset(s, f, "user.mcfs.hard_pin", "true"), -EINVAL);
	cr_assert_eq(xset(s, MCFS_ROOT_INO, "user.mcfs.hard_pin", "1"), 0);
	xget_is(s, MCFS_ROOT_INO, "user.mcfs.hard_pin", "1");
}

Test(master, xattr_locations)
{
	struct mcfs_master_sess *a = node("node-a", ""), *b = node("node-b", "");
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), e = mkd(a, d, "e"), x = mkd(a, MCFS_ROOT_INO, "x");
	char name[16];

	xget_is(a, d, "user.mcfs.locations", "");
	publish(b, creat(b, d, "b1"), 100, 0);
	publish(a, creat(a, e, "a1"), 1000, 0);
	publish(a, creat(a, e, "a2"), 2000, 0);
	publish(a, creat(a, x, "a3"), 5, 0);
	creat(a, e, "pending");
	xget_is(a, d, "user.mcfs.locations", "node-a 2 3000\nnode-b 1 100\n");
	xget_is(a, e, "user.mcfs.locations", "node-a 2 3000\n");
	xget_is(a, MCFS_ROOT_INO, "user.mcfs.locations", "node-a 3 3005\nnode-b 1 100\n");
	xget_is(b, x, "user.mcfs.locations", "node-a 1 5\n");
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		mkd(a, e, name);
	}
	xget_is(a, d, "user.mcfs.locations", "node-a 2 3000\nnode-b 1 100\n");
}

Test(master, xattr_user_attributes)
{
	struct mcfs_master_sess *s = node("node-a", ""), *o = node("node-b", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f"), d = mkd(s, MCFS_ROOT_INO, "d");
	struct mcfs_attr before = attr_of(s, f);
	static char big[MCFS_XATTR_MAX + 1];
	char v[4096];

	cr_assert_eq(xget(s, f, "user.a", v), -ENODATA);
	cr_assert_eq(xremove(s, f, "user.a"), -ENODATA);
	cr_assert_eq(xset(s, f, "user.a", "hello"), 0);
	xget_is(s, f, "user.a", "hello");
	cr_assert_geq(attr_of(s, f).ctime_ns, before.ctime_ns);
	/* Stored values are kept as given, newline included, and may be empty or binary. */
	cr_assert_eq(xset(s, f, "user.b", "x\n"), 0);
	xget_is(s, f, "user.b", "x\n");
	cr_assert_eq(xset(s, f, "user.empty", ""), 0);
	xget_is(s, f, "user.empty", "");
	cr_assert_eq(xset_ex(s, f, "user.bin", "\0\1\2", 3, 0), 0);
	cr_assert_eq(xset_ex(s, f, "user.a", "x", 1, MCFS_XATTR_CREATE), -EEXIST);
	cr_assert_eq(xset_ex(s, f, "user.new", "x", 1, MCFS_XATTR_REPLACE), -ENODATA);
	cr_assert_eq(xset_ex(s, f, "user.a", "bye", 3, MCFS_XATTR_REPLACE), 0);
	xget_is(s, f, "user.a", "bye");
	cr_assert_eq(xset_ex(s, f, "user.new", "x", 1, MCFS_XATTR_CREATE), 0);
	/* "user.mcfs" without the dot is an ordinary name. */
	cr_assert_eq(xset(s, f, "user.mcfs", "ok"), 0);
	xget_is(s, f, "user.mcfs", "ok");
	/* Directories have them too. */
	cr_assert_eq(xset(s, d, "user.dir", "1"), 0);
	xget_is(s, d, "user.dir", "1");
	/* Visible from other nodes once published. */
	publish(s, f, 1, 0);
	xget_is(o, f, "user.a", "bye");
	cr_assert_eq(xremove(s, f, "user.a"), 0);
	cr_assert_eq(xget(s, f, "user.a", v), -ENODATA);
	cr_assert_eq(xremove(s, f, "user.a"), -ENODATA);

	/* Sizes: one value over 64 KiB is E2BIG, a total over it ENOSPC. */
	memset(big, 'v', sizeof(big));
	cr_assert_eq(xset_ex(s, d, "user.big", big, MCFS_XATTR_MAX + 1, 0), -E2BIG);
	cr_assert_eq(xset_ex(s, d, "user.big", big, MCFS_XATTR_MAX, 0), -ENOSPC);
	cr_assert_eq(xset_ex(s, d, "user.big", big, MCFS_XATTR_MAX - 100, 0), 0);
	cr_assert_eq(xset_ex(s, d, "user.more", big, 100, 0), -ENOSPC);
	/* Replacing counts the new size, not both. */
	cr_assert_eq(xset_ex(s, d, "user.big", big, MCFS_XATTR_MAX - 120, 0), 0);
	cr_assert_eq(xremove(s, d, "user.big"), 0);
	cr_assert_eq(xset_ex(s, d, "user.more", big, 30000, 0), 0);
	cr_assert_eq(xset_ex(s, d, "user.more2", big, 30000, 0), 0);
	cr_assert_eq(xset_ex(s, d, "user.more3", big, 30000, 0), -ENOSPC);
}

Test(master, xattr_symlinks)
{
	struct mcfs_master_sess *s = node("node-a", "");
	struct mcfs_msg q = M(MCFS_MSG_SYMLINK), r;
	char v[4096];

	q.ino = MCFS_ROOT_INO;
	q.name = S("l");
	q.value = S("t");
	cr_assert_eq(call(s, &q, &r), 0);
	cr_assert_eq(xset(s, r.attr.ino, "user.a", "1"), -EPERM);
	cr_assert_eq(xset(s, r.attr.ino, "user.mcfs.replica_num", "1"), -EPERM);
	cr_assert_eq(xget(s, r.attr.ino, "user.a", v), -ENODATA);
	cr_assert_eq(xget(s, r.attr.ino, "user.mcfs.replica_num", v), -ENODATA);
	cr_assert_eq(xremove(s, r.attr.ino, "user.a"), -EPERM);
	xlist(s, r.attr.ino, v);
	cr_assert_str_eq(v, "");
}

Test(master, listxattr)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t f = creat(s, MCFS_ROOT_INO, "f"), d = mkd(s, MCFS_ROOT_INO, "d");
	char v[4096];

	xlist(s, f, v);
	cr_assert_str_eq(v, "user.mcfs.replicas,user.mcfs.replica_num,user.mcfs.soft_pin,"
			    "user.mcfs.soft_pin_ms,user.mcfs.hard_pin,user.mcfs.lease_ms,"
			    "user.mcfs.tier,user.mcfs.checksum,");
	xlist(s, d, v);
	cr_assert_str_eq(v, "user.mcfs.replica_num,user.mcfs.soft_pin,user.mcfs.hard_pin,"
			    "user.mcfs.locations,");
	cr_assert_eq(xset(s, f, "user.k1", "v"), 0);
	cr_assert_eq(xset(s, f, "user.k2", "v"), 0);
	xlist(s, f, v);
	cr_assert_str_eq(v, "user.mcfs.replicas,user.mcfs.replica_num,user.mcfs.soft_pin,"
			    "user.mcfs.soft_pin_ms,user.mcfs.hard_pin,user.mcfs.lease_ms,"
			    "user.mcfs.tier,user.mcfs.checksum,user.k1,user.k2,");
}

/* Batches and malformed frames */

static void append(struct mcfs_buf *b, struct mcfs_msg *q, uint64_t id)
{
	q->req_id = id;
	cr_assert_eq(mcfs_msg_encode(q, b), 0);
}

Test(master, batch)
{
	struct mcfs_master_sess *s = node("node-a", "");
	struct mcfs_msg q, r, sub, outer = M(MCFS_MSG_BATCH);
	struct mcfs_buf b, inner;
	struct mcfs_frame_hdr h;
	size_t off = 0;

	mcfs_buf_init(&b);
	mcfs_buf_init(&inner);
	q = M(MCFS_MSG_MKDIR);
	q.ino = MCFS_ROOT_INO;
	q.name = S("d");
	q.mode = 0755;
	append(&b, &q, 100);
	q = M(MCFS_MSG_MKDIR);
	q.ino = MCFS_ROOT_INO;
	q.name = S("d"); /* EEXIST */
	append(&b, &q, 101);
	q = M(MCFS_MSG_LOOKUP);
	q.ino = MCFS_ROOT_INO;
	q.name = S("d");
	append(&b, &q, 102);
	/* A BATCH inside a BATCH is refused, not run. */
	q = M(MCFS_MSG_MKDIR);
	q.ino = MCFS_ROOT_INO;
	q.name = S("nested");
	append(&inner, &q, 1);
	q = M(MCFS_MSG_BATCH);
	q.count = 1;
	q.value.p = inner.data;
	q.value.len = (uint32_t)inner.len;
	append(&b, &q, 103);
	q = M(MCFS_MSG_STATFS);
	append(&b, &q, 104);

	outer.count = 5;
	outer.value.p = b.data;
	outer.value.len = (uint32_t)b.len;
	cr_assert_eq(call(s, &outer, &r), 0);
	cr_assert_eq(r.count, 5);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(mcfs_frame_parse(r.value.p + off, r.value.len - off, &h), 0);
		cr_assert_eq(mcfs_msg_decode_frame(r.value.p + off, MCFS_FRAME_HDR + h.len, &sub),
			     0);
		off += MCFS_FRAME_HDR + h.len;
		cr_assert(sub.resp);
		cr_assert_eq(sub.req_id, 100 + (uint64_t)i);
		cr_assert_eq(sub.epoch, 1);
		switch (i) {
		case 0:
			cr_assert_eq(sub.type, MCFS_MSG_MKDIR);
			cr_assert_eq(sub.status, 0);
			cr_assert_eq(sub.attr.mode, S_IFDIR | 0755);
			break;
		case 1:
			cr_assert_eq(sub.status, -EEXIST);
			break;
		case 2:
			cr_assert_eq(sub.type, MCFS_MSG_LOOKUP);
			cr_assert_eq(sub.status, 0);
			cr_assert_eq(sub.attr.nlink, 2);
			break;
		case 3:
			cr_assert_eq(sub.type, MCFS_MSG_BATCH);
			cr_assert_eq(sub.status, -EINVAL);
			break;
		case 4:
			cr_assert_eq(sub.type, MCFS_MSG_STATFS);
			cr_assert_eq(sub.count, 2);
			break;
		}
	}
	cr_assert_eq(off, r.value.len);
	cr_assert_eq(lookup(s, MCFS_ROOT_INO, "nested", NULL), -ENOENT);
	/* An empty batch. */
	outer.count = 0;
	outer.value.len = 0;
	cr_assert_eq(call(s, &outer, &r), 0);
	cr_assert_eq(r.count, 0);
	cr_assert_eq(r.value.len, 0);
	mcfs_buf_fini(&b);
	mcfs_buf_fini(&inner);
}

Test(master, batch_of_puts)
{
	struct mcfs_master_sess *s = node("node-a", "");
	struct mcfs_msg q, r, sub, outer = M(MCFS_MSG_BATCH);
	struct mcfs_buf b;
	struct mcfs_frame_hdr h;
	uint64_t ino[10], put_id[10];
	size_t off;
	char name[16];

	mcfs_buf_init(&b);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ino[i] = creat(s, MCFS_ROOT_INO, name);
		q = M(MCFS_MSG_PUT_START);
		q.ino = ino[i];
		q.size = 4096;
		append(&b, &q, (uint64_t)i);
	}
	outer.count = 10;
	outer.value.p = b.data;
	outer.value.len = (uint32_t)b.len;
	cr_assert_eq(call(s, &outer, &r), 0);
	off = 0;
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(mcfs_frame_parse(r.value.p + off, r.value.len - off, &h), 0);
		cr_assert_eq(mcfs_msg_decode_frame(r.value.p + off, MCFS_FRAME_HDR + h.len, &sub),
			     0);
		off += MCFS_FRAME_HDR + h.len;
		cr_assert_eq(sub.status, 0);
		cr_assert_eq(sub.nrep, 1);
		put_id[i] = sub.put_id;
	}
	b.len = 0;
	for (int i = 0; i < 10; i++) {
		q = M(MCFS_MSG_PUT_END);
		q.put_id = put_id[i];
		q.size = 100;
		append(&b, &q, (uint64_t)i);
	}
	outer.value.p = b.data;
	outer.value.len = (uint32_t)b.len;
	cr_assert_eq(call(s, &outer, &r), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(attr_of(s, ino[i]).size, 100);
	mcfs_buf_fini(&b);
}

Test(master, malformed_batches_run_nothing)
{
	struct mcfs_master_sess *s = node("node-a", "");
	struct mcfs_msg q, r, outer = M(MCFS_MSG_BATCH);
	struct mcfs_buf b, f;

	mcfs_buf_init(&b);
	mcfs_buf_init(&f);
	q = M(MCFS_MSG_MKDIR);
	q.ino = MCFS_ROOT_INO;
	q.name = S("d");
	append(&b, &q, 1);
	outer.value.p = b.data;
	outer.value.len = (uint32_t)b.len;

	/* count says more frames than there are, or fewer. */
	outer.count = 2;
	append(&f, &outer, 9);
	cr_assert_lt(handle_raw(s, f.data, f.len, &r), 0);
	outer.count = 0;
	f.len = 0;
	append(&f, &outer, 9);
	cr_assert_lt(handle_raw(s, f.data, f.len, &r), 0);
	/* A truncated sub-frame. */
	outer.count = 1;
	outer.value.len = (uint32_t)b.len - 1;
	f.len = 0;
	append(&f, &outer, 9);
	cr_assert_lt(handle_raw(s, f.data, f.len, &r), 0);
	/* A good frame, then a response frame inside. */
	q.resp = true;
	q.status = 0;
	q.req_id = 2;
	cr_assert_eq(mcfs_msg_encode(&q, &b), 0);
	outer.count = 2;
	outer.value.p = b.data;
	outer.value.len = (uint32_t)b.len;
	f.len = 0;
	append(&f, &outer, 9);
	cr_assert_eq(handle_raw(s, f.data, f.len, &r), -EBADMSG);
	/* A sub-frame with a bad magic. */
	b.data[0] ^= 0xff;
	outer.count = 1;
	outer.value.len = (uint32_t)b.len;
	f.len = 0;
	append(&f, &outer, 9);
	cr_assert_eq(handle_raw(s, f.data, f.len, &r), -EPROTO);
	/* The first mkdir never ran. */
	cr_assert_eq(lookup(s, MCFS_ROOT_INO, "d", NULL), -ENOENT);
	mcfs_buf_fini(&b);
	mcfs_buf_fini(&f);
}

Test(master, malformed_frames)
{
	struct mcfs_master_sess *s = node("node-a", "");
	struct mcfs_msg q = M(MCFS_MSG_LOOKUP), r;
	struct mcfs_buf b;
	uint8_t *copy;

	mcfs_buf_init(&b);
	q.ino = MCFS_ROOT_INO;
	q.name = S("x");
	append(&b, &q, 1);
	copy = malloc(b.len + 8);
	/* Truncated: header only, short header, payload cut. */
	cr_assert_eq(handle_raw(s, b.data, MCFS_FRAME_HDR, &r), -EBADMSG);
	cr_assert_eq(handle_raw(s, b.data, 10, &r), -EBADMSG);
	cr_assert_eq(handle_raw(s, b.data, 0, &r), -EBADMSG);
	cr_assert_eq(handle_raw(s, b.data, b.len - 1, &r), -EBADMSG);
	/* Trailing bytes after the frame, or inside the payload. */
	memcpy(copy, b.data, b.len);
	memset(copy + b.len, 0, 8);
	cr_assert_eq(handle_raw(s, copy, b.len + 8, &r), -EBADMSG);
	memcpy(copy, b.data, b.len);
	copy[8] += 4; /* len says 4 more bytes of payload */
	memset(copy + b.len, 0, 4);
	cr_assert_eq(handle_raw(s, copy, b.len + 4, &r), -EBADMSG);
	/* Oversized length. */
	memcpy(copy, b.data, b.len);
	copy[8] = 0xff;
	copy[9] = 0xff;
	copy[10] = 0xff;
	copy[11] = 0x7f;
	cr_assert_eq(handle_raw(s, copy, b.len, &r), -EMSGSIZE);
	/* Bad version, bad magic, reserved bits, unknown type. */
	memcpy(copy, b.data, b.len);
	copy[4] = 2;
	cr_assert_eq(handle_raw(s, copy, b.len, &r), -EPROTO);
	memcpy(copy, b.data, b.len);
	copy[1] = 'X';
	cr_assert_eq(handle_raw(s, copy, b.len, &r), -EPROTO);
	memcpy(copy, b.data, b.len);
	copy[12] = 1;
	cr_assert_eq(handle_raw(s, copy, b.len, &r), -EPROTO);
	memcpy(copy, b.data, b.len);
	copy[6] = 99;
	copy[7] = 0;
	cr_assert_eq(handle_raw(s, copy, b.len, &r), -ENOTSUP);
	/* A name longer than its limit. */
	memcpy(copy, b.data, b.len);
	copy[MCFS_FRAME_HDR + 8] = 0; /* name length: 0x100 */
	copy[MCFS_FRAME_HDR + 9] = 1;
	cr_assert_eq(handle_raw(s, copy, b.len, &r), -EBADMSG);
	/* A response sent as a request. */
	memcpy(copy, b.data, b.len);
	copy[5] = MCFS_FRAME_RESP;
	cr_assert_lt(handle_raw(s, copy, b.len, &r), 0);
	/* The good frame still works. */
	cr_assert_eq(handle_raw(s, b.data, b.len, &r), 0);
	cr_assert_eq(r.status, -ENOENT);
	free(copy);
	mcfs_buf_fini(&b);
}

Test(master, statfs_counts)
{
	struct mcfs_master_sess *s = node("node-a", "");
	uint64_t total, free_;
	uint32_t count;

	mkd(s, MCFS_ROOT_INO, "d");
	publish(s, creat(s, MCFS_ROOT_INO, "f"), 10000, 0);
	statfs(s, &total, &free_, &count);
	cr_assert_eq(total, SEG);
	cr_assert_eq(free_, SEG - 12288);
	cr_assert_eq(count, 3);
}

Test(master, tick_with_nothing_to_do)
{
	cr_assert_eq(mcfs_master_tick(m, now_ms), 1000);
}

/* Decode the i-th sub-response of a BATCH response value. */
static void batch_sub(const struct mcfs_msg *r, size_t *off, struct mcfs_msg *sub)
{
	struct mcfs_frame_hdr h;

	cr_assert_eq(mcfs_frame_parse(r->value.p + *off, r->value.len - *off, &h), 0);
	cr_assert_eq(mcfs_msg_decode_frame(r->value.p + *off, MCFS_FRAME_HDR + h.len, sub), 0);
	*off += MCFS_FRAME_HDR + h.len;
}

Test(master, batch_binds_and_stays_under_the_frame_limit, .timeout = 60)
{
	struct mcfs_master_sess *s = sess();
	struct mcfs_msg q, r, sub, outer = M(MCFS_MSG_BATCH);
	struct mcfs_buf b;
	uint64_t d;
	char name[256];
	size_t off = 0;
	int ok = 0, big = 0;

	/* HELLO first in a batch: what follows runs as that node. */
	mcfs_buf_init(&b);
	q = M(MCFS_MSG_HELLO);
	q.proto = MCFS_PROTO_VERSION;
	q.name = S("node-a");
	q.size = SEG;
	append(&b, &q, 1);
	q = M(MCFS_MSG_MKDIR);
	q.ino = MCFS_ROOT_INO;
	q.name = S("d");
	append(&b, &q, 2);
	outer.count = 2;
	outer.value.p = b.data;
	outer.value.len = (uint32_t)b.len;
	cr_assert_eq(call(s, &outer, &r), 0);
	batch_sub(&r, &off, &sub);
	cr_assert_eq(sub.status, 0);
	cr_assert_eq(sub.node_id, 1);
	batch_sub(&r, &off, &sub);
	cr_assert_eq(sub.status, 0);
	d = sub.attr.ino;

	/* Twenty listings of about 1 MiB each cannot all fit in one frame. */
	memset(name, 'x', 255);
	name[255] = '\0';
	for (int i = 0; i < 3500; i++) {
		int n = snprintf(name, sizeof(name), "e%d", i);

		name[n] = 'x';
		creat(s, d, name);
	}
	b.len = 0;
	for (int i = 0; i < 20; i++) {
		q = M(MCFS_MSG_READDIR);
		q.ino = d;
		q.count = 4000;
		append(&b, &q, (uint64_t)i);
	}
	outer.count = 20;
	outer.value.p = b.data;
	outer.value.len = (uint32_t)b.len;
	cr_assert_eq(call(s, &outer, &r), 0);
	cr_assert_lt(r.value.len, MCFS_FRAME_MAX);
	off = 0;
	for (int i = 0; i < 20; i++) {
		batch_sub(&r, &off, &sub);
		cr_assert_eq(sub.req_id, (uint64_t)i);
		if (sub.status == 0) {
			cr_assert_eq(big, 0, "a listing ran after one was refused");
			cr_assert_gt(sub.count, 2500);
			ok++;
		} else {
			cr_assert_eq(sub.status, -EMSGSIZE);
			big++;
		}
	}
	cr_assert_geq(ok, 12);
	cr_assert_geq(big, 1);
	mcfs_buf_fini(&b);
}

/* A cluster: several nodes, replicas, grants, node failure */

#define ADDR_A "10.0.0.1:7422"
#define ADDR_B "10.0.0.2:7422"
#define ADDR_C "10.0.0.3:7422"

/* A session bound to a new node with a segment of size bytes; its id in *id. */
static struct mcfs_master_sess *node_ex(const char *name, const char *addr, uint64_t size,
					uint64_t *id)
{
	struct mcfs_master_sess *s = sess();

	cr_assert_eq(hello_ex(s, name, addr, size, id), 0);
	return s;
}

/* Use the TTL tests' configuration: the default 10 s node TTL. */
static void use_node_ttl(uint64_t ttl_ms)
{
	struct mcfs_master_conf c;

	mcfs_master_conf_default(&c);
	c.node_ttl_ms = ttl_ms;
	teardown();
	setup_conf(&c);
}

static int put_place(struct mcfs_master_sess *s, uint64_t put_id, uint64_t size, struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_PUT_PLACE);

	q.put_id = put_id;
	q.size = size;
	return call(s, &q, r);
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

static int repl_end(struct mcfs_master_sess *s, uint64_t put_id)
{
	struct mcfs_msg q = M(MCFS_MSG_REPL_END), r;

	q.put_id = put_id;
	return call(s, &q, &r);
}

static int lease_ex(struct mcfs_master_sess *s, uint64_t ino, uint64_t version, struct mcfs_msg *r)
{
	struct mcfs_msg q = M(MCFS_MSG_LEASE);

	q.ino = ino;
	q.version = version;
	return call(s, &q, r);
}

static int heartbeat(struct mcfs_master_sess *s, uint64_t id)
{
	struct mcfs_msg q = M(MCFS_MSG_HEARTBEAT), r;

	q.node_id = id;
	return call(s, &q, &r);
}

/* Publish size bytes into ino the way the daemon does with replicas: start, place, end. */
static struct mcfs_attr publish_placed(struct mcfs_master_sess *s, uint64_t ino, uint64_t size,
				       uint32_t nrep_want)
{
	struct mcfs_msg p, r;
	struct mcfs_attr a;

	cr_assert_eq(put_start(s, ino, size, &p), 0);
	cr_assert_eq(put_place(s, p.put_id, size, &r), 0);
	cr_assert_eq(r.nrep, nrep_want);
	cr_assert_eq(put_end(s, p.put_id, size, 0, &a), 0);
	return a;
}

/* Check rp's grant as a segment server would, for access to [off, off + len). */
static int grant_check(const struct mcfs_replica *rp, uint8_t access, uint64_t off, uint64_t len,
		       uint64_t wall_ms)
{
	struct mcfs_grant g = {
	    .node_id = rp->node_id,
	    .seg_id = rp->seg_id,
	    .access = rp->access,
	    .offset = rp->offset,
	    .len = rp->len,
	    .expiry_ms = rp->expiry_ms,
	    .mac = rp->mac,
	};

	return mcfs_grant_check(&g, m->grant_secret, rp->node_id, rp->seg_id, access, off, len,
				wall_ms);
}

/* rp's grant lets its holder do access to the whole range now, and expires about ttl from now. */
static void assert_grant(const struct mcfs_replica *rp, uint8_t access, uint64_t ttl)
{
	uint64_t wall = mcfs_grant_now_ms();

	cr_assert_eq(rp->access, access);
	cr_assert_eq(grant_check(rp, access, rp->offset, rp->len, wall), 0);
	cr_assert_geq(rp->expiry_ms, wall + ttl - 2000, "expires in %lld ms, not %llu",
		      (long long)(rp->expiry_ms - wall), (unsigned long long)ttl);
	cr_assert_leq(rp->expiry_ms, wall + ttl);
}

/* The node ids of r's replicas, as "1,2,3". */
static void rep_nodes(const struct mcfs_msg *r, char *out)
{
	out[0] = '\0';
	for (uint32_t i = 0; i < r->nrep; i++)
		sprintf(out + strlen(out), "%s%llu", i ? "," : "",
			(unsigned long long)r->rep[i].node_id);
}

static void get_nodes_is(struct mcfs_master_sess *s, uint64_t ino, const char *want)
{
	struct mcfs_msg r;
	char v[128];

	cr_assert_eq(get(s, ino, &r), 0, "get %llu", (unsigned long long)ino);
	rep_nodes(&r, v);
	cr_assert_str_eq(v, want, "replicas of %llu", (unsigned long long)ino);
	for (uint32_t i = 0; i < r.nrep; i++)
		cr_assert_eq(r.rep[i].state, MCFS_REP_COMPLETE);
}

Test(master, grant_secret_is_per_master)
{
	struct mcfs_master *other;

	node("node-a", ADDR_A); /* hello_ex checks the secret it hands out */
	cr_assert_eq(mcfs_master_create(NULL, &other), 0);
	cr_assert_neq(memcmp(other->grant_secret, m->grant_secret, MCFS_GRANT_SECRET_LEN), 0);
	mcfs_master_destroy(other);
}

Test(master, grants_verify_and_fail_when_tampered)
{
	struct mcfs_master_sess *a = node("node-a", ADDR_A), *b = node("node-b", ADDR_B);
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_msg p, r, r2;
	struct mcfs_replica t;
	uint64_t wall;

	/* The writer's staging: read and write, for a minute. */
	cr_assert_eq(put_start(a, f, 10000, &p), 0);
	assert_grant(&p.rep[0], MCFS_GRANT_READ | MCFS_GRANT_WRITE, 60000);
	cr_assert_eq(put_grow(a, p.put_id, 20000, &r), 0);
	assert_grant(&r.rep[0], MCFS_GRANT_READ | MCFS_GRANT_WRITE, 60000);
	cr_assert_eq(r.rep[0].len, 20480);
	cr_assert_eq(put_end(a, p.put_id, 10000, 0, NULL), 0);

	/* A reader: read only, until the lease ends. */
	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(r.nrep, 1);
	assert_grant(&r.rep[0], MCFS_GRANT_READ, 10000);
	wall = mcfs_grant_now_ms();
	cr_assert_eq(r.rep[0].node_id, 1);
	cr_assert_eq(r.rep[0].len, 12288);
	cr_assert_eq(grant_check(&r.rep[0], MCFS_GRANT_WRITE, r.rep[0].offset, 1, wall), -EACCES);
	cr_assert_eq(grant_check(&r.rep[0], MCFS_GRANT_READ, r.rep[0].offset + 4096, 8192, wall),
		     0);
	cr_assert_eq(grant_check(&r.rep[0], MCFS_GRANT_READ, r.rep[0].offset + 4096, 8193, wall),
		     -ERANGE);
	cr_assert_eq(grant_check(&r.rep[0], MCFS_GRANT_READ, r.rep[0].offset + 12288, 1, wall),
		     -ERANGE);
	cr_assert_eq(
	    grant_check(&r.rep[0], MCFS_GRANT_READ, r.rep[0].offset, 1, r.rep[0].expiry_ms + 1),
	    -ETIMEDOUT);
	/* Any field changed breaks the MAC. */
	t = r.rep[0];
	t.len += 4096;
	cr_assert_eq(grant_check(&t, MCFS_GRANT_READ, t.offset, 1, wall), -EACCES);
	t = r.rep[0];
	t.offset += 4096;
	cr_assert_eq(grant_check(&t, MCFS_GRANT_READ, t.offset, 1, wall), -EACCES);
	t = r.rep[0];
	t.access |= MCFS_GRANT_WRITE;
	cr_assert_eq(grant_check(&t, MCFS_GRANT_WRITE, t.offset, 1, wall), -EACCES);
	t = r.rep[0];
	t.expiry_ms += 100000;
	cr_assert_eq(grant_check(&t, MCFS_GRANT_READ, t.offset, 1, wall), -EACCES);
	t = r.rep[0];
	t.mac ^= 1;
	cr_assert_eq(grant_check(&t, MCFS_GRANT_READ, t.offset, 1, wall), -EACCES);
	t = r.rep[0];
	t.node_id = 2;
	cr_assert_eq(grant_check(&t, MCFS_GRANT_READ, t.offset, 1, wall), -EACCES);
	t = r.rep[0];
	t.seg_id = 2;
	cr_assert_eq(grant_check(&t, MCFS_GRANT_READ, t.offset, 1, wall), -EACCES);

	/* LEASE renews with fresh grants: a later deadline, as long as the lease. */
	now_ms += 4000;
	cr_assert_eq(lease_ex(b, f, attr_of(b, f).version, &r2), 0);
	cr_assert_eq(r2.lease_ms, 10000);
	cr_assert_eq(r2.nrep, 1);
	assert_grant(&r2.rep[0], MCFS_GRANT_READ, 10000);
	cr_assert_eq(r2.rep[0].offset, r.rep[0].offset);
	cr_assert_geq(r2.rep[0].expiry_ms, r.rep[0].expiry_ms);
	/* A grant never ends before the lease it came with, even one granted earlier. */
	now_ms += 1000;
	cr_assert_eq(get(b, f, &r2), 0);
	assert_grant(&r2.rep[0], MCFS_GRANT_READ, 10000);
}

Test(master, put_place_puts_replicas_on_distinct_nodes)
{
	uint64_t ia, ib, ic;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib),
				*c = node_ex("node-c", ADDR_C, SEG, &ic);
	uint64_t d3 = mkd(a, MCFS_ROOT_INO, "three"), d2 = mkd(a, MCFS_ROOT_INO, "two");
	uint64_t f, g, total, free_;
	struct mcfs_msg p, r;
	struct mcfs_attr at;
	char v[4096];

	cr_assert_eq(xset(a, d3, "user.mcfs.replica_num", "3"), 0);
	cr_assert_eq(xset(a, d2, "user.mcfs.replica_num", "2"), 0);
	f = creat(a, d3, "f");
	xget_is(a, f, "user.mcfs.replica_num", "3");
	cr_assert_eq(put_start(a, f, 20000, &p), 0);
	cr_assert_eq(p.nrep, 1);
	/* The final size is smaller: the staging is trimmed, copies are that size. */
	cr_assert_eq(put_place(a, p.put_id, 10000, &r), 0);
	cr_assert_eq(r.nrep, 3);
	cr_assert_eq(r.rep[0].node_id, ia);
	cr_assert_eq(r.rep[0].offset, p.rep[0].offset);
	assert_grant(&r.rep[0], MCFS_GRANT_READ | MCFS_GRANT_WRITE, 60000);
	cr_assert_eq(r.rep[1].node_id, ib); /* equal free space: the older node first */
	cr_assert_eq(r.rep[2].node_id, ic);
	cr_assert_eq(r.rep[1].addr.len, strlen(ADDR_B));
	cr_assert_eq(memcmp(r.rep[1].addr.p, ADDR_B, strlen(ADDR_B)), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(r.rep[i].state, MCFS_REP_PENDING);
		cr_assert_eq(r.rep[i].len, 12288);
		cr_assert_eq(r.rep[i].seg_id, r.rep[i].node_id);
		if (i)
			assert_grant(&r.rep[i], MCFS_GRANT_WRITE, 60000);
	}
	statfs(a, &total, &free_, NULL);
	cr_assert_eq(total, 3 * SEG);
	cr_assert_eq(free_, 3 * SEG - 3 * 12288);
	/* Nothing is visible before PUT_END, to anyone. */
	cr_assert_eq(getattr(b, f, NULL), -ENOENT);
	cr_assert_eq(put_end(a, p.put_id, 10000, 9, &at), 0);
	cr_assert_eq(at.size, 10000);
	get_nodes_is(c, f, "1,2,3");
	cr_assert_eq(get(c, f, &r), 0);
	for (int i = 0; i < 3; i++)
		assert_grant(&r.rep[i], MCFS_GRANT_READ, 10000);
	xget_is(b, f, "user.mcfs.replicas",
		"node-a " ADDR_A " dram complete\nnode-b " ADDR_B " dram complete\nnode-c " ADDR_C
		" dram complete\n");
	xget_is(b, MCFS_ROOT_INO, "user.mcfs.locations",
		"node-a 1 10000\nnode-b 1 10000\nnode-c 1 10000\n");

	/* replica_num 2: the one other node with the most free space. */
	publish(b, creat(b, MCFS_ROOT_INO, "fill-b"), 100000, 0);
	g = creat(a, d2, "g");
	publish_placed(a, g, 5000, 2);
	get_nodes_is(b, g, "1,3");
	/* The writer's own node is never picked again, whatever its space. */
	g = creat(c, d2, "h");
	publish_placed(c, g, 5000, 2);
	get_nodes_is(b, g, "3,1");
	(void)xget(b, g, "user.mcfs.replicas", v);
	cr_assert_str_eq(v, "node-c " ADDR_C " dram complete\nnode-a " ADDR_A " dram complete\n");
}

Test(master, put_place_settles_for_fewer_replicas)
{
	uint64_t ia, ib, ic;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), f, big, full;
	struct mcfs_msg p, r;

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "3"), 0);
	/* Two nodes, replica_num 3: two replicas. */
	f = creat(a, d, "f");
	publish_placed(a, f, 4096, 2);
	get_nodes_is(b, f, "1,2");

	/* Nodes without room, a segment or an address to be written at are passed over. */
	struct mcfs_master_sess *c = node_ex("node-c", ADDR_C, SEG, &ic);
	struct mcfs_master_sess *tool = node_ex("client", "", 0, NULL);
	struct mcfs_master_sess *local = node_ex("local-only", "", 4 * SEG, NULL);

	full = creat(c, MCFS_ROOT_INO, "full");
	publish(c, full, SEG - 8192, 0);
	cr_assert_eq(xset(c, full, "user.mcfs.hard_pin", "1"), 0); /* not evicted for room */
	big = creat(a, d, "big");
	cr_assert_eq(put_start(a, big, 3 * 4096, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 3 * 4096, &r), 0);
	cr_assert_eq(r.nrep, 2); /* a and b: c has 8 KiB left, tool and local-only do not count */
	cr_assert_eq(r.rep[1].node_id, ib);
	cr_assert_eq(put_end(a, p.put_id, 3 * 4096, 0, NULL), 0);
	/* 8 KiB still fits on c: three replicas, the roomier b first. */
	f = creat(a, d, "small");
	publish_placed(a, f, 8192, 3);
	get_nodes_is(b, f, "1,2,3");
	cr_assert_eq(pool_free(a), 7 * SEG - (SEG - 8192) - 2 * 4096 - 2 * 3 * 4096 - 3 * 8192);
	(void)tool;
	(void)local;
}

Test(master, put_place_rules)
{
	uint64_t ia;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node("node-b", ADDR_B);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), f, e;
	struct mcfs_msg p, r, r2;
	struct mcfs_attr at;

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "2"), 0);
	f = creat(a, d, "f");
	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 8193, &r), -EINVAL); /* over the capacity */
	cr_assert_eq(put_place(b, p.put_id, 100, &r), -EPERM);
	cr_assert_eq(put_place(a, 12345, 100, &r), -ENOENT);
	cr_assert_eq(put_place(a, p.put_id, 5000, &r), 0);
	cr_assert_eq(r.nrep, 2);
	/* Asked again: the same ranges, fresh grants. */
	cr_assert_eq(put_place(a, p.put_id, 5000, &r2), 0);
	cr_assert_eq(r2.nrep, 2);
	cr_assert_eq(r2.rep[1].node_id, r.rep[1].node_id);
	cr_assert_eq(r2.rep[1].offset, r.rep[1].offset);
	cr_assert_eq(put_place(a, p.put_id, 4000, &r2), -EINVAL);
	/* Placed: no more growing, and the end must say the placed size. */
	cr_assert_eq(put_grow(a, p.put_id, 100000, &r2), -EINVAL);
	cr_assert_eq(put_end(a, p.put_id, 4000, 0, NULL), -EINVAL);
	cr_assert_eq(pool_free(a), 2 * SEG - 2 * 8192);
	/*
	 * Revoked: every range goes; the copy's once no write under its grant
	 * can land any more (after the put timeout).
	 */
	cr_assert_eq(put_revoke(a, p.put_id), 0);
	cr_assert_eq(pool_free(a), 2 * SEG - 8192);
	now_ms += m->conf.put_timeout_ms;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), 2 * SEG);
	cr_assert_eq(attr_of(a, f).flags, MCFS_ATTR_PENDING);

	/* Without PUT_PLACE, one replica, as before replication. */
	publish(a, f, 100, 0);
	get_nodes_is(b, f, "1");
	/* An empty object: replicas of 0 bytes that hold no space. */
	e = creat(a, d, "empty");
	cr_assert_eq(put_start(a, e, 50000, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 0, &r), 0);
	cr_assert_eq(r.nrep, 2);
	cr_assert_eq(r.rep[0].len, 0);
	cr_assert_eq(r.rep[1].len, 0);
	cr_assert_eq(put_end(a, p.put_id, 0, 0, &at), 0);
	cr_assert_eq(at.size, 0);
	get_nodes_is(b, e, "1,2");
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	/* A file unlinked before its place: the put is freed. */
	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	cr_assert_eq(unlink_ex(a, d, "f"), 0);
	cr_assert_eq(put_place(a, p.put_id, 8192, &r), -ENOENT);
	cr_assert_eq(put_revoke(a, p.put_id), -ENOENT);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096); /* f's object, still leased */
	mcfs_master_tick(m, now_ms + 10000);
	cr_assert_eq(pool_free(a), 2 * SEG);
	/* A file unlinked after its place: the end frees every range. */
	f = creat(a, d, "g");
	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 8192, &r), 0);
	cr_assert_eq(unlink_ex(a, d, "g"), 0);
	cr_assert_eq(put_end(a, p.put_id, 8192, 0, NULL), -ENOENT);
	cr_assert_eq(pool_free(a), 2 * SEG);
	/* replica_num lowered between place and end: the extra copies are let go. */
	f = creat(a, d, "h");
	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 8192, &r), 0);
	cr_assert_eq(r.nrep, 2);
	cr_assert_eq(xset(a, f, "user.mcfs.replica_num", "1"), 0);
	cr_assert_eq(put_end(a, p.put_id, 8192, 0, NULL), 0);
	get_nodes_is(b, f, "1");
	cr_assert_eq(pool_free(a), 2 * SEG - 8192);
}

Test(master, repl_start_end_adds_replicas)
{
	uint64_t ia, ib, ic;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib),
				*c = node_ex("node-c", ADDR_C, SEG, &ic);
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), d = mkd(a, MCFS_ROOT_INO, "d");
	struct mcfs_attr v1 = publish(a, f, 6000, 5);
	struct mcfs_msg r, r2;
	char v[4096];

	/* Raising replica_num only records it. */
	cr_assert_eq(xset(b, f, "user.mcfs.replica_num", "3"), 0);
	get_nodes_is(b, f, "1");
	cr_assert_eq(repl_start(b, f, v1.version + 1, 2, &r), -ENOENT);
	cr_assert_eq(repl_start(b, f, 0, 2, &r), -ENOENT);
	cr_assert_eq(repl_start(b, 9999, v1.version, 2, &r), -ENOENT);
	cr_assert_eq(repl_start(b, d, v1.version, 2, &r), -EISDIR);
	cr_assert_eq(repl_start(b, f, v1.version, 0, &r), -EINVAL);
	/* The daemon that handled the setxattr copies it: two new nodes. */
	cr_assert_eq(repl_start(b, f, v1.version, 2, &r), 0);
	cr_assert_gt(r.put_id, 0);
	cr_assert_eq(r.nrep, 2);
	cr_assert_eq(r.rep[0].node_id, ib);
	cr_assert_eq(r.rep[1].node_id, ic);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(r.rep[i].state, MCFS_REP_PENDING);
		cr_assert_eq(r.rep[i].len, 8192);
		assert_grant(&r.rep[i], MCFS_GRANT_WRITE, 60000);
	}
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192);
	/* Pending copies are nobody's business yet. */
	get_nodes_is(c, f, "1");
	cr_assert_eq(repl_end(a, r.put_id), -EPERM);
	cr_assert_eq(put_end(b, r.put_id, 6000, 0, NULL), -EINVAL);
	cr_assert_eq(put_place(b, r.put_id, 6000, &r2), -EINVAL);
	cr_assert_eq(repl_end(b, r.put_id), 0);
	cr_assert_eq(repl_end(b, r.put_id), -ENOENT);
	get_nodes_is(c, f, "1,2,3");
	xget_is(c, f, "user.mcfs.replicas",
		"node-a " ADDR_A " dram complete\nnode-b " ADDR_B " dram complete\nnode-c " ADDR_C
		" dram complete\n");
	/* Every node holds one now: nowhere left. */
	cr_assert_eq(repl_start(b, f, v1.version, 1, &r), -ENOSPC);
	/* A write put is not a replication. */
	cr_assert_eq(put_start(a, f, 10, &r2), 0);
	cr_assert_eq(repl_end(a, r2.put_id), -EINVAL);
	cr_assert_eq(put_revoke(a, r2.put_id), 0);
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192);
	(void)v;
}

Test(master, repl_of_a_replaced_version_is_freed)
{
	uint64_t ib;
	struct mcfs_master_sess *a = node("node-a", ADDR_A),
				*b = node_ex("node-b", ADDR_B, SEG, &ib);
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_attr v1 = publish(a, f, 4096, 1);
	struct mcfs_msg r;

	/* Asking for more than there are nodes: what there is. */
	cr_assert_eq(repl_start(a, f, v1.version, 7, &r), 0);
	cr_assert_eq(r.nrep, 1);
	cr_assert_eq(r.rep[0].node_id, ib);
	cr_assert_eq(pool_free(a), 2 * SEG - 2 * 4096);
	/* A new version is published meanwhile: the copy is of nothing current. */
	publish(a, f, 4096, 2);
	cr_assert_eq(repl_end(a, r.put_id), -ENOENT);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	xget_is(b, f, "user.mcfs.replicas", "node-a " ADDR_A " dram complete\n");
	/* Unlinked meanwhile: the same. */
	cr_assert_eq(repl_start(a, f, attr_of(a, f).version, 1, &r), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "f"), 0);
	cr_assert_eq(repl_end(a, r.put_id), -ENOENT);
	cr_assert_eq(pool_free(a), 2 * SEG);
	/* Revoked: freed. */
	f = creat(a, MCFS_ROOT_INO, "g");
	v1 = publish(a, f, 4096, 1);
	cr_assert_eq(repl_start(a, f, v1.version, 1, &r), 0);
	cr_assert_eq(put_revoke(b, r.put_id), -EPERM);
	cr_assert_eq(put_revoke(a, r.put_id), 0);
	now_ms += m->conf.put_timeout_ms;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	/* No other node with room, nor anything to evict there: ENOSPC. */
	uint64_t fill = creat(b, MCFS_ROOT_INO, "fill");

	cr_assert_eq(xset(b, fill, "user.mcfs.hard_pin", "1"), 0);
	publish(b, fill, SEG, 0);
	cr_assert_eq(repl_start(a, f, v1.version, 1, &r), -ENOSPC);
	/* Two replications racing to one node: the second copy is let go. */
	cr_assert_eq(unlink_ex(b, MCFS_ROOT_INO, "fill"), 0);
	struct mcfs_msg r1, r2;

	cr_assert_eq(repl_start(a, f, v1.version, 1, &r1), 0);
	cr_assert_eq(repl_start(b, f, v1.version, 1, &r2), 0);
	cr_assert_eq(r1.rep[0].node_id, ib);
	cr_assert_eq(r2.rep[0].node_id, ib);
	cr_assert_eq(repl_end(b, r2.put_id), 0);
	cr_assert_eq(repl_end(a, r1.put_id), 0);
	get_nodes_is(b, f, "1,2");
	cr_assert_eq(pool_free(a), 2 * SEG - 2 * 4096);
}

Test(master, lowering_replica_num_drops_replicas_after_their_lease)
{
	struct mcfs_master_sess *a = node("node-a", ADDR_A), *b = node("node-b", ADDR_B),
				*c = node("node-c", ADDR_C);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), f, g;
	struct mcfs_msg r;
	uint64_t t0;

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "3"), 0);
	f = creat(a, d, "f");
	publish_placed(a, f, 8192, 3);
	g = creat(a, d, "g");
	publish_placed(a, g, 4096, 3);
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192 - 3 * 4096);
	/* f is being read; g is not. */
	t0 = now_ms;
	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(xset(c, f, "user.mcfs.replica_num", "1"), 0);
	cr_assert_eq(xset(c, g, "user.mcfs.replica_num", "2\n"), 0);
	get_nodes_is(b, f, "1");
	get_nodes_is(b, g, "1,2");
	xget_is(b, f, "user.mcfs.replicas", "node-a " ADDR_A " dram complete\n");
	/* g's copy is free at once; f's two wait for the lease its reader holds. */
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192 - 2 * 4096);
	cr_assert_eq(mcfs_master_tick(m, t0 + 9999), 1);
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192 - 2 * 4096);
	/* (The GETs since ran at t0 too: the clock stood still.) */
	cr_assert_eq(mcfs_master_tick(m, t0 + 10000), 1000);
	cr_assert_eq(pool_free(a), 3 * SEG - 8192 - 2 * 4096);
	/* Raising it again records it; the copies come from REPL_START. */
	cr_assert_eq(xset(c, f, "user.mcfs.replica_num", "2"), 0);
	get_nodes_is(b, f, "1");
	xget_is(b, f, "user.mcfs.replica_num", "2");
}

/* One SOLE_LIST page: inos into out[], count returned, *eof set. */
static uint32_t sole_page_ex(struct mcfs_master_sess *s, uint32_t flags, uint64_t *cookie,
			     uint32_t count, uint64_t *out, bool *eof)
{
	struct mcfs_msg q = M(MCFS_MSG_SOLE_LIST), r;
	struct mcfs_sole e;
	struct mcfs_rd rd;
	uint32_t n = 0;
	int ret;

	q.cookie = *cookie;
	q.count = count;
	q.flags = flags;
	cr_assert_eq(call(s, &q, &r), 0);
	mcfs_rd_init(&rd, r.value.p, r.value.len);
	while ((ret = mcfs_sole_next(&rd, &e)) == 1) {
		struct mcfs_attr a = attr_of(s, e.ino);

		cr_assert_gt(e.cookie, *cookie);
		cr_assert_eq(e.cookie, e.ino);
		cr_assert_eq(e.version, a.version);
		cr_assert_eq(e.size, a.size);
		if (n)
			cr_assert_gt(e.ino, out[n - 1]);
		out[n++] = e.ino;
		*cookie = e.cookie;
	}
	cr_assert_eq(ret, 0);
	cr_assert_eq(n, r.count);
	*eof = r.flags & MCFS_READDIR_EOF;
	return n;
}

static uint32_t sole_page(struct mcfs_master_sess *s, uint64_t *cookie, uint32_t count,
			  uint64_t *out, bool *eof)
{
	return sole_page_ex(s, 0, cookie, count, out, eof);
}

/* The master's repair generation, as HEARTBEAT answers it. */
static uint64_t repair_gen(struct mcfs_master_sess *s, uint64_t id)
{
	struct mcfs_msg q = M(MCFS_MSG_HEARTBEAT), r;

	q.node_id = id;
	cr_assert_eq(call(s, &q, &r), 0);
	return r.version;
}

/*
 * Objects left with fewer replicas than replica_num are listed to the node
 * holding their first replica (SOLE_LIST, MCFS_SOLE_DEGRADED), after the
 * repair generation moved; copying them again takes them off the list.
 */
Test(master, degraded_objects_listed_for_repair)
{
	use_node_ttl(10000);

	uint64_t ia, ib, ic, t0 = now_ms, g0, g1, g2, cookie = 0, seen[8];
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib),
				*c = node_ex("node-c", ADDR_C, SEG, &ic);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), one, two, three, alone;
	struct mcfs_msg r;
	bool eof;

	(void)b;
	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "2"), 0);
	one = creat(a, d, "one");
	publish_placed(a, one, 4096, 2);
	two = creat(a, d, "two");
	publish_placed(a, two, 4096, 2);
	three = creat(c, d, "three");
	publish_placed(c, three, 4096, 2);
	alone = creat(a, MCFS_ROOT_INO, "alone"); /* replica_num 1: never degraded */
	publish(a, alone, 4096, 0);
	/* Nothing is missing yet. */
	cr_assert_eq(sole_page_ex(a, MCFS_SOLE_DEGRADED, &cookie, 0, seen, &eof), 0);
	cr_assert(eof);
	g0 = repair_gen(a, ia);
	/* c falls silent and is dropped: what had a copy there is one short. */
	now_ms = t0 + 9999;
	cr_assert_eq(heartbeat(a, ia), 0);
	cr_assert_eq(heartbeat(b, ib), 0);
	now_ms = t0 + 10000;
	mcfs_master_tick(m, now_ms);
	g1 = repair_gen(a, ia);
	cr_assert_gt(g1, g0, "a node left with copies: the repair generation did not move");
	cookie = 0;
	uint32_t na = sole_page_ex(a, MCFS_SOLE_DEGRADED, &cookie, 0, seen, &eof);
	cr_assert(eof);
	/* "three" lost its first copy (on c): its survivor is first now. */
	for (uint32_t i = 0; i < na; i++)
		cr_assert(seen[i] == one || seen[i] == two || seen[i] == three);
	cookie = 0;
	uint32_t nb = sole_page_ex(b, MCFS_SOLE_DEGRADED, &cookie, 0, seen + na, &eof);
	const uint64_t files[] = {one, two, three};
	uint32_t missing = 0;

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(get(a, files[i], &r), 0);
		missing += r.nrep == 1;
	}
	cr_assert_geq(missing, 1, "nothing lost a copy on c: nothing to test");
	cr_assert_eq(na + nb, missing, "every object that lost a copy is listed, to one node");
	/* Handed out once: asked again with nothing changed, the list is empty. */
	cookie = 0;
	cr_assert_eq(sole_page_ex(a, MCFS_SOLE_DEGRADED, &cookie, 0, seen + na + nb, &eof), 0);
	cr_assert(eof);
	/* A copy made again (on the other survivor) takes it off the list. */
	for (uint32_t i = 0; i < na; i++) {
		struct mcfs_msg pr;

		cr_assert_eq(repl_start(a, seen[i], attr_of(a, seen[i]).version, 1, &pr), 0);
		cr_assert_eq(repl_end(a, pr.put_id), 0);
	}
	cookie = 0;
	cr_assert_eq(sole_page_ex(a, MCFS_SOLE_DEGRADED, &cookie, 0, seen, &eof), 0);
	/* A node joining (room for copies) moves the generation too. */
	cr_assert_eq(hello_ex(c, "node-c", ADDR_C, SEG, &ic), 0);
	g2 = repair_gen(a, ia);
	cr_assert_gt(g2, g1);
	(void)r;
}

Test(master, sole_list_pages_through_the_callers_only_copies)
{
	struct mcfs_master_sess *a = node("node-a", ADDR_A), *b = node("node-b", ADDR_B),
				*tool = sess();
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), sole[12], seen[16], cookie = 0;
	struct mcfs_msg q = M(MCFS_MSG_SOLE_LIST), r;
	uint32_t n, total = 0;
	char name[16];
	bool eof;

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "2"), 0);
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		sole[i] = creat(a, MCFS_ROOT_INO, name);
		publish(a, sole[i], 100 + (uint64_t)i, 0);
		snprintf(name, sizeof(name), "two%d", i);
		publish_placed(a, creat(a, d, name), 100, 2); /* on a and b: not sole */
	}
	publish(b, creat(b, MCFS_ROOT_INO, "b-only"), 10, 0);
	creat(a, MCFS_ROOT_INO, "pending");
	/* Pages of 5 in inode order; an entry not yet listed goes away in between. */
	n = sole_page(a, &cookie, 5, seen, &eof);
	cr_assert_eq(n, 5);
	cr_assert_not(eof);
	cr_assert_eq(memcmp(seen, sole, 5 * sizeof(*seen)), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "s7"), 0);
	total = n;
	n = sole_page(a, &cookie, 5, seen + total, &eof);
	cr_assert_eq(n, 5);
	cr_assert_not(eof);
	total += n;
	n = sole_page(a, &cookie, 5, seen + total, &eof);
	cr_assert_eq(n, 1);
	cr_assert(eof);
	total += n;
	cr_assert_eq(total, 11);
	for (uint32_t i = 0, j = 0; i < 12; i++) {
		if (i == 7)
			continue;
		cr_assert_eq(seen[j++], sole[i]);
	}
	/* Exactly a page left: EOF on it, not on an empty one after. */
	cookie = sole[6];
	n = sole_page(a, &cookie, 4, seen, &eof);
	cr_assert_eq(n, 4);
	cr_assert(eof);
	/* A copy elsewhere takes it off the list. */
	cr_assert_eq(repl_start(a, sole[0], attr_of(a, sole[0]).version, 1, &r), 0);
	cr_assert_eq(repl_end(a, r.put_id), 0);
	cookie = 0;
	n = sole_page(a, &cookie, 0, seen, &eof);
	cr_assert_eq(n, 10);
	cr_assert(eof);
	cr_assert_eq(seen[0], sole[1]);
	cookie = 0;
	n = sole_page(b, &cookie, 0, seen, &eof);
	cr_assert_eq(n, 1);
	cr_assert(eof);
	cr_assert_eq(call(tool, &q, &r), -EPERM);
}

Test(master, silent_node_is_dropped_after_the_ttl)
{
	use_node_ttl(10000);

	uint64_t ia, ib, ic, t0 = now_ms;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib),
				*c = node_ex("node-c", ADDR_C, SEG, &ic);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), d3 = mkd(a, MCFS_ROOT_INO, "d3");
	uint64_t gone, kept, mine, bput, total;
	struct mcfs_msg q = M(MCFS_MSG_READDIR), r, pb, pc, pr, rr;
	struct mcfs_attr kv;
	char v[4096];

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "2"), 0);
	cr_assert_eq(xset(a, d3, "user.mcfs.replica_num", "3"), 0);
	/* On c alone; on c and a; on a alone; c's unpublished file. */
	gone = creat(c, d, "gone");
	publish(c, gone, 4096, 0);
	kept = creat(c, d, "kept");
	kv = publish_placed(c, kept, 8192, 2);
	mine = creat(a, d, "mine");
	publish(a, mine, 4096, 0);
	creat(c, d, "pending");
	get_nodes_is(b, kept, "3,1");
	/* Puts that touch c: b's, placed on a and c; c's own, placed on c and a. */
	bput = creat(b, d3, "bput");
	cr_assert_eq(put_start(b, bput, 4096, &pb), 0);
	cr_assert_eq(put_place(b, pb.put_id, 4096, &r), 0);
	cr_assert_eq(r.nrep, 3);
	cr_assert_eq(put_start(c, creat(c, d, "cput"), 4096, &pc), 0);
	cr_assert_eq(put_place(c, pc.put_id, 4096, &r), 0);
	cr_assert_eq(r.nrep, 2);
	/* A replication by a that copies to b and c. */
	cr_assert_eq(repl_start(a, mine, attr_of(a, mine).version, 2, &pr), 0);
	cr_assert_eq(pr.nrep, 2);

	/* a and b stay in touch, c falls silent. */
	now_ms = t0 + 9999;
	cr_assert_eq(heartbeat(a, ia), 0);
	cr_assert_eq(heartbeat(b, ib), 0);
	cr_assert_eq(mcfs_master_tick(m, now_ms), 1);
	get_nodes_is(b, kept, "3,1");
	now_ms = t0 + 10000;
	cr_assert_eq(mcfs_master_tick(m, now_ms), 1000);
	/* Gone: the file only c held, and c's pending one. */
	cr_assert_eq(lookup(a, d, "gone", NULL), -ENOENT);
	cr_assert_eq(getattr(a, gone, NULL), -ENOENT);
	cr_assert_eq(lookup(a, d, "cput", NULL), -ENOENT);
	q.ino = d;
	cr_assert_eq(call(a, &q, &r), 0);
	cr_assert_eq(r.count, 2); /* kept, mine */
	/* Kept: the files with a replica elsewhere, listing only it. */
	get_nodes_is(b, kept, "1");
	cr_assert_eq(attr_of(b, kept).version, kv.version);
	xget_is(b, kept, "user.mcfs.replicas", "node-a " ADDR_A " dram complete\n");
	get_nodes_is(b, mine, "1");
	xget_is(b, MCFS_ROOT_INO, "user.mcfs.locations", "node-a 2 12288\n");
	/* Puts that also wrote to c end with their other copies. */
	cr_assert_eq(put_end(b, pb.put_id, 4096, 0, NULL), 0);
	cr_assert_eq(put_revoke(b, pb.put_id), -ENOENT);
	get_nodes_is(a, bput, "2,1");
	cr_assert_eq(repl_end(a, pr.put_id), 0);
	get_nodes_is(b, mine, "1,2");
	statfs(a, &total, NULL, NULL);
	cr_assert_eq(total, 2 * SEG);
	cr_assert_eq(pool_free(a), 2 * SEG - 8192 - 4 * 4096);
	/* c's session: its node is gone; it must say HELLO again, as a new node. */
	cr_assert_eq(mkdir_ex(c, MCFS_ROOT_INO, "x", NULL), -ENOTCONN);
	cr_assert_eq(heartbeat(c, ic), -ENOTCONN);
	cr_assert_eq(heartbeat(a, ic), -ENOENT);
	cr_assert_eq(getattr(c, kept, NULL), 0); /* reads need no node */
	cr_assert_eq(hello_ex(c, "node-c", ADDR_C, SEG, &ic), 0);
	cr_assert_eq(ic, 4);
	cr_assert_eq(mkdir_ex(c, MCFS_ROOT_INO, "x", NULL), 0);
	(void)rr;
	(void)v;
}

/* PUT_END naming copies its writer could not fill (bit i: rep[i]); the hold released. */
static int put_end_unfilled(struct mcfs_master_sess *s, uint64_t put_id, uint64_t size,
			    uint32_t unfilled)
{
	struct mcfs_attr a;
	int ret = put_end_ex(s, put_id, size, 0, unfilled, &a);

	if (!ret)
		cr_assert_eq(release(s, a.ino, a.version, 1), 0);
	return ret;
}

Test(master, put_end_leaves_out_copies_not_written)
{
	uint64_t ia, ib, ic;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib),
				*c = node_ex("node-c", ADDR_C, SEG, &ic);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), f, g;
	struct mcfs_msg p, r;
	char want[32];

	(void)b;
	(void)c;
	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "3"), 0);
	f = creat(a, d, "f");
	g = creat(a, d, "g");
	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 8192, &r), 0);
	cr_assert_eq(r.nrep, 3);
	cr_assert_eq(r.rep[0].node_id, ia);
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192);
	/* A copy the put does not have: refused, and the put goes on. */
	cr_assert_eq(put_end_unfilled(a, p.put_id, 8192, 1u << 3), -EINVAL);
	/* The third copy could not be written: published on the first two. */
	cr_assert_eq(put_end_unfilled(a, p.put_id, 8192, 1u << 2), 0);
	snprintf(want, sizeof(want), "%llu,%llu", (unsigned long long)r.rep[0].node_id,
		 (unsigned long long)r.rep[1].node_id);
	get_nodes_is(a, f, want);
	/*
	 * The copy that failed may still land (a write stuck in a stalled
	 * peer's socket): its range is handed out again only once the grant
	 * for it has expired, after the put timeout.
	 */
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192);
	now_ms += m->conf.put_timeout_ms - 1;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), 3 * SEG - 3 * 8192);
	now_ms += 1;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), 3 * SEG - 2 * 8192);
	cr_assert_eq(heartbeat(b, ib), 0); /* heard from: placed on again */
	cr_assert_eq(heartbeat(c, ic), 0);
	/* No copy written at all: nothing to publish, and the space comes back. */
	cr_assert_eq(put_start(a, g, 4096, &p), 0);
	cr_assert_eq(put_place(a, p.put_id, 4096, &r), 0);
	cr_assert_eq(put_end_unfilled(a, p.put_id, 4096, 7), -EIO);
	cr_assert_eq(put_revoke(a, p.put_id), -ENOENT);
	now_ms += m->conf.put_timeout_ms;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), 3 * SEG - 2 * 8192);
	cr_assert(attr_of(a, g).flags & MCFS_ATTR_PENDING);
}

Test(master, silent_node_gets_no_new_copies)
{
	use_node_ttl(10000);

	uint64_t ia, ib, ic;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib),
				*c = node_ex("node-c", ADDR_C, SEG, &ic);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d");
	struct mcfs_attr at;

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "3"), 0);
	/* c misses three heartbeats: likely dead, though not dropped yet. */
	now_ms += 3001;
	cr_assert_eq(heartbeat(a, ia), 0);
	cr_assert_eq(heartbeat(b, ib), 0);
	at = publish_placed(a, creat(a, d, "f"), 4096, 2);
	get_nodes_is(a, at.ino, "1,2");
	/* Heard from again, it takes copies again. */
	cr_assert_eq(heartbeat(c, ic), 0);
	at = publish_placed(a, creat(a, d, "g"), 4096, 3);
	cr_assert_eq(attr_of(a, at.ino).version, at.version);
	/* The writer itself is never passed over. */
	now_ms += 3001;
	cr_assert_eq(heartbeat(b, ib), 0);
	at = publish_placed(a, creat(a, d, "h"), 4096, 2);
	get_nodes_is(b, at.ino, "1,2");
}

/* HELLO of a reporting node with incarnation inc: its response flags, and its id in *id. */
static uint32_t hello_inc(struct mcfs_master_sess *s, const char *name, uint64_t inc, uint64_t *id)
{
	struct mcfs_msg q = M(MCFS_MSG_HELLO), r;

	q.proto = MCFS_PROTO_VERSION;
	q.name = S(name);
	q.name2 = S(ADDR_B);
	q.size = SEG;
	q.flags = MCFS_HELLO_REPORT;
	q.incarnation = inc;
	cr_assert_eq(call(s, &q, &r), 0);
	*id = r.node_id;
	return r.flags;
}

/*
 * A daemon run this master dropped (silent past the TTL) that says HELLO
 * again was cut off: its catalog missed what changed meanwhile, so it is
 * told to join empty (DROPPED) and is not waited for as a reporter.
 */
Test(master, dropped_incarnation_joins_empty)
{
	use_node_ttl(10000);

	uint64_t ia, ib, t0 = now_ms;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia), *b = sess(), *b2 = sess(),
				*b3 = sess();
	struct mcfs_msg q = M(MCFS_MSG_REPORT_END), r;

	cr_assert_eq(hello_inc(b, "node-b", 77, &ib) & MCFS_HELLO_DROPPED, 0);
	cr_assert(mcfs_master_node(m, ib)->recovering, "a reporting node is waited for");
	q.count = 0;
	cr_assert_eq(call(b, &q, &r), 0);
	now_ms = t0 + 9999;
	cr_assert_eq(heartbeat(a, ia), 0);
	now_ms = t0 + 10000;
	mcfs_master_tick(m, now_ms);
	cr_assert_null(mcfs_master_node(m, ib), "node-b was not dropped");
	/* The same run, back: joins empty, reports nothing. */
	cr_assert_eq(hello_inc(b2, "node-b", 77, &ib) & MCFS_HELLO_DROPPED, MCFS_HELLO_DROPPED);
	cr_assert_not(mcfs_master_node(m, ib)->recovering);
	/* Another run of the same name (a restart) reports as usual. */
	cr_assert_eq(hello_inc(b3, "node-b", 78, &ib) & MCFS_HELLO_DROPPED, 0);
	cr_assert(mcfs_master_node(m, ib)->recovering);
}

Test(master, dead_node_leaves_retired_objects_their_survivors)
{
	use_node_ttl(10000);

	uint64_t ia, ib, ic, t0 = now_ms;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, SEG, &ib),
				*c = node_ex("node-c", ADDR_C, SEG, &ic);
	uint64_t d = mkd(a, MCFS_ROOT_INO, "d"), f, g;
	struct mcfs_attr v1, w1;
	struct mcfs_msg r;

	cr_assert_eq(xset(a, d, "user.mcfs.replica_num", "2"), 0);
	f = creat(c, d, "f");
	v1 = publish_placed(c, f, 4096, 2); /* c, a */
	g = creat(c, MCFS_ROOT_INO, "g");
	w1 = publish(c, g, 4096, 0); /* c alone */
	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(get(b, g, &r), 0);
	/* Both replaced while b reads them: retired, under b's lease. */
	publish(a, f, 4096, 0);
	publish(a, g, 4096, 0);
	now_ms = t0 + 5000;
	cr_assert_eq(lease(b, f, v1.version), 0);
	cr_assert_eq(lease(b, g, w1.version), 0);
	cr_assert_eq(heartbeat(a, ia), 0);
	cr_assert_eq(mcfs_master_tick(m, t0 + 10000), 1000);
	/* c is gone: f's old version lives on a, g's old version had no other copy. */
	cr_assert_eq(lease_ex(b, f, v1.version, &r), 0);
	cr_assert_eq(r.nrep, 1);
	cr_assert_eq(r.rep[0].node_id, ia);
	assert_grant(&r.rep[0], MCFS_GRANT_READ, 10000);
	cr_assert_eq(lease_ex(b, g, w1.version, &r), -ENOENT);
	/* The survivors are freed when the lease ends. */
	now_ms = t0 + 14000;
	cr_assert_eq(heartbeat(a, ia), 0);
	cr_assert_eq(heartbeat(b, ib), 0);
	cr_assert_eq(mcfs_master_tick(m, t0 + 14999), 1);
	cr_assert_eq(pool_free(a), 2 * SEG - 3 * 4096);
	cr_assert_eq(mcfs_master_tick(m, t0 + 15000), 1000);
	cr_assert_eq(pool_free(a), 2 * SEG - 2 * 4096);
}

Test(master, hello_under_a_registered_name_is_a_restart)
{
	uint64_t ia, ib, ia2;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia),
				*b = node_ex("node-b", ADDR_B, 2 * SEG, &ib), *a2 = sess();
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), g = creat(b, MCFS_ROOT_INO, "g"), total;
	struct mcfs_msg p;

	publish(a, f, 4096, 0);
	publish(b, g, 4096, 0);
	cr_assert_eq(put_start(a, g, 4096, &p), 0);
	/* node-a comes back from a restart: its memory is new, its old objects are gone. */
	cr_assert_eq(hello_ex(a2, "node-a", ADDR_A, 3 * SEG, &ia2), 0);
	cr_assert_eq(ia2, 3);
	cr_assert_eq(getattr(b, f, NULL), -ENOENT);
	cr_assert_eq(lookup(b, MCFS_ROOT_INO, "f", NULL), -ENOENT);
	get_nodes_is(b, g, "2");
	statfs(b, &total, NULL, NULL);
	cr_assert_eq(total, 5 * SEG);
	cr_assert_eq(pool_free(b), 5 * SEG - 4096);
	/* The old registration's session is told so. */
	cr_assert_eq(put_end(a, p.put_id, 4096, 0, NULL), -ENOTCONN);
	cr_assert_eq(put_end(a2, p.put_id, 4096, 0, NULL), -ENOENT);
	/* The new one works, and is counted alive. */
	publish(a2, creat(a2, MCFS_ROOT_INO, "f2"), 100, 0);
	(void)ia;
}

Test(master, statfs_sums_live_nodes_and_tick_wakes_for_the_next_ttl)
{
	use_node_ttl(10000);

	uint64_t ia, ib, ic, total, free_, t0 = now_ms;
	struct mcfs_master_sess *a = node_ex("node-a", ADDR_A, SEG, &ia);

	now_ms = t0 + 3000;
	struct mcfs_master_sess *b = node_ex("node-b", ADDR_B, 2 * SEG, &ib);
	struct mcfs_master_sess *c = node_ex("node-c", ADDR_C, 4 * SEG, &ic);

	publish(b, creat(b, MCFS_ROOT_INO, "f"), 4096, 0);
	statfs(a, &total, &free_, NULL);
	cr_assert_eq(total, 7 * SEG);
	cr_assert_eq(free_, 7 * SEG - 4096);
	/* a spoke last (statfs) at t0 + 3000, like b and c: all due at t0 + 13000. */
	cr_assert_eq(mcfs_master_tick(m, t0 + 12500), 500);
	now_ms = t0 + 12000;
	cr_assert_eq(heartbeat(b, ib), 0);
	cr_assert_eq(heartbeat(c, ic), 0);
	cr_assert_eq(mcfs_master_tick(m, t0 + 13000), 1000);
	statfs(b, &total, &free_, NULL);
	cr_assert_eq(total, 6 * SEG);
	cr_assert_eq(free_, 6 * SEG - 4096);
	/* A clean leave goes at once. */
	struct mcfs_msg q = M(MCFS_MSG_BYE), r;

	cr_assert_eq(call(c, &q, &r), 0);
	statfs(b, &total, NULL, NULL);
	cr_assert_eq(total, 2 * SEG);
	/* The embedded node (a segment, no address) is never dropped for silence. */
	struct mcfs_master_sess *e = node("embedded", ""), *tool = node_ex("tool", "", 0, NULL);

	cr_assert_eq(mcfs_master_tick(m, now_ms + 1000000), 1000);
	statfs(e, &total, NULL, NULL);
	cr_assert_eq(total, SEG);
	cr_assert_eq(mkdir_ex(tool, MCFS_ROOT_INO, "x", NULL), -ENOTCONN);
	/* Node TTL 0: nobody is. */
	use_node_ttl(0);
	a = node("node-a", ADDR_A);
	cr_assert_eq(mcfs_master_tick(m, now_ms + 1000000), 1000);
	statfs(a, &total, NULL, NULL);
	cr_assert_eq(total, SEG);
}

/* Read holds: the space of a replaced or unlinked version is free when its last reader closes. */
Test(master, release_frees_a_retired_version_at_once)
{
	struct mcfs_master_sess *a = node("node-a", "h:1"), *b = node("node-b", "h:2");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_attr v1 = publish(a, f, 8192, 0), v2;
	struct mcfs_msg r;

	cr_assert_eq(get(b, f, &r), 0); /* b opens it */
	cr_assert_eq(get(b, f, &r), 0); /* twice */
	v2 = publish(a, f, 4096, 0);	/* replaced: v1 stays while b reads */
	cr_assert_eq(pool_free(a), 2 * SEG - 8192 - 4096);
	cr_assert_eq(release(b, f, v1.version, 1), 0);
	cr_assert_eq(pool_free(a), 2 * SEG - 8192 - 4096, "one of b's two opens is still open");
	/* A release from a node that holds nothing changes nothing. */
	cr_assert_eq(release(a, f, v1.version, 5), 0);
	cr_assert_eq(pool_free(a), 2 * SEG - 8192 - 4096);
	cr_assert_eq(release(b, f, v1.version, 1), 0);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096, "released: v1's space is free at once");
	/* A version nobody opened goes at once when unlinked. */
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "f"), 0);
	cr_assert_eq(pool_free(a), 2 * SEG);
	(void)v2;
}

Test(master, a_writer_holds_what_it_published)
{
	struct mcfs_master_sess *a = node("node-a", "h:1"), *b = node("node-b", "h:2");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f");
	struct mcfs_msg p;
	struct mcfs_attr v1;

	cr_assert_eq(put_start(a, f, 8192, &p), 0);
	cr_assert_eq(put_end_keep(a, p.put_id, 8192, 0, &v1), 0); /* a keeps it open */
	cr_assert_eq(unlink_ex(b, MCFS_ROOT_INO, "f"), 0);
	cr_assert_eq(pool_free(a), 2 * SEG - 8192, "the writer still reads its version");
	cr_assert_eq(release(a, f, v1.version, 1), 0);
	cr_assert_eq(pool_free(a), 2 * SEG);
}

Test(master, holds_end_with_their_lease_or_their_node)
{
	struct mcfs_master_sess *a = node("node-a", "h:1"), *b = node("node-b", "h:2");
	uint64_t f = creat(a, MCFS_ROOT_INO, "f"), g = creat(a, MCFS_ROOT_INO, "g");
	struct mcfs_attr vf = publish(a, f, 8192, 0), vg = publish(a, g, 4096, 0);
	struct mcfs_msg r;

	cr_assert_eq(get(b, f, &r), 0);
	cr_assert_eq(get(b, g, &r), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "f"), 0);
	cr_assert_eq(unlink_ex(a, MCFS_ROOT_INO, "g"), 0);
	cr_assert_eq(pool_free(a), 2 * SEG - 8192 - 4096);
	/* b renews g (its reader is still open) but forgets f: f goes when its lease ends. */
	now_ms += 6000;
	cr_assert_eq(lease(b, g, vg.version), 0);
	now_ms += 5000;
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), 2 * SEG - 4096);
	/* b leaves: its holds go with it. */
	{
		struct mcfs_msg q = M(MCFS_MSG_BYE);

		cr_assert_eq(call(b, &q, &r), 0);
	}
	mcfs_master_tick(m, now_ms);
	cr_assert_eq(pool_free(a), SEG, "b's segment left with it; g is free");
	(void)vf;
}

Test(master, release_rejects_a_malformed_list)
{
	struct mcfs_master_sess *a = node("node-a", "h:1");
	struct mcfs_msg q = M(MCFS_MSG_RELEASE), r;
	uint8_t v[MCFS_RELEASE_ENTRY + 3] = {0};

	q.value.p = v;
	q.value.len = sizeof(v);
	cr_assert_eq(call(a, &q, &r), -EBADMSG);
}

/* A master started again hands out no put id, inode number or version of its last run. */
Test(master, ids_never_repeat_across_runs)
{
	struct mcfs_master *m1, *m2;
	struct mcfs_master_sess *s1, *s2;
	uint64_t ino[2], ver[2], put[2];

	for (int run = 0; run < 2; run++) {
		struct mcfs_master **mm = run ? &m2 : &m1;
		struct mcfs_master_sess **ss = run ? &s2 : &s1;
		struct mcfs_msg q = M(MCFS_MSG_HELLO), r;
		struct mcfs_buf out, in;

		cr_assert_eq(mcfs_master_create(NULL, mm), 0);
		cr_assert_eq(mcfs_master_sess_open(*mm, ss), 0);
		mcfs_buf_init(&out);
		mcfs_buf_init(&in);
#define RUN(msg)                                                                                   \
	do {                                                                                       \
		out.len = 0;                                                                       \
		in.len = 0;                                                                        \
		cr_assert_eq(mcfs_msg_encode(&(msg), &out), 0);                                    \
		cr_assert_eq(mcfs_master_handle(*mm, *ss, out.data, out.len, &in), 0);             \
		cr_assert_eq(mcfs_msg_decode_frame(in.data, in.len, &r), 0);                       \
		cr_assert_eq(r.status, 0);                                                         \
	} while (0)
		q.proto = MCFS_PROTO_VERSION;
		q.name.p = (const uint8_t *)"n";
		q.name.len = 1;
		q.size = SEG;
		RUN(q);
		q = M(MCFS_MSG_CREATE);
		q.ino = MCFS_ROOT_INO;
		q.name.p = (const uint8_t *)"f";
		q.name.len = 1;
		q.mode = S_IFREG | 0644;
		RUN(q);
		ino[run] = r.attr.ino;
		q = M(MCFS_MSG_PUT_START);
		q.ino = ino[run];
		q.size = 4096;
		RUN(q);
		put[run] = r.put_id;
		q = M(MCFS_MSG_PUT_END);
		q.put_id = put[run];
		q.size = 10;
		RUN(q);
		ver[run] = r.attr.version;
#undef RUN
		mcfs_buf_fini(&out);
		mcfs_buf_fini(&in);
		mcfs_master_sess_close(*mm, *ss);
		mcfs_master_destroy(*mm);
		usleep(2000); /* the next run starts later, as a restart does */
	}
	cr_assert_gt(ino[1], ino[0]);
	cr_assert_gt(ver[1], ver[0]);
	cr_assert_gt(put[1], put[0]);
}
