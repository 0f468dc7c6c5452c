// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the segment wire format (transport/seg.c) and of the TCP
 * segment server and client (transport/tcp.c), in one process: a server on
 * 127.0.0.1 with an ephemeral port serves a malloc'd 64 MiB segment filled
 * with a canary pattern, and grants are signed with a test secret.
 *
 * Besides round trips, every test that sends something the server must
 * refuse checks that no byte outside what was granted changed, and that the
 * server still serves a valid request afterwards.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"
#include "transport/frame.h"
#include "transport/seg.h"
#include "transport/xport.h"

#define SEG_SIZE (64u << 20)
#define NODE	 7
#define SEGID	 3
#define MIB	 (1u << 20)

static uint8_t *seg;	  /* what the server serves */
static uint8_t *pristine; /* the canary pattern seg started with */
static uint8_t secret[MCFS_GRANT_SECRET_LEN];
static struct mcfs_xport_server *srv;
static struct mcfs_xport_client *cl;
static char addr[64];

/* ---- helpers ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_random(uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v = rnd();

		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)rnd();
}

static void fill_canary(uint8_t *p, size_t len)
{
	/* Different in every 8-byte word, so a misplaced range cannot look right. */
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t v = (i + 1) * 0x9e3779b97f4a7c15ull;

		memcpy(p + i * 8, &v, 8);
	}
}

/* Is seg as it started outside [a, b)? */
static void assert_untouched_outside(uint64_t a, uint64_t b)
{
	cr_assert(a <= b && b <= SEG_SIZE);
	cr_assert_eq(memcmp(seg, pristine, a), 0, "bytes before %llu changed",
		     (unsigned long long)a);
	cr_assert_eq(memcmp(seg + b, pristine + b, SEG_SIZE - b), 0, "bytes after %llu changed",
		     (unsigned long long)b);
}

static void restore(uint64_t a, uint64_t b)
{
	memcpy(seg + a, pristine + a, b - a);
}

static struct mcfs_grant grant(uint8_t access, uint64_t off, uint64_t len)
{
	struct mcfs_grant g = {.node_id = NODE,
			       .seg_id = SEGID,
			       .access = access,
			       .offset = off,
			       .len = len,
			       .expiry_ms = mcfs_grant_now_ms() + 60000};

	mcfs_grant_sign(&g, secret);
	return g;
}

static void start_server(uint16_t port, uint32_t io_timeout_ms)
{
	struct mcfs_xport_server_conf sc = {.host = "127.0.0.1",
					    .port = port,
					    .seg_base = seg,
					    .seg_size = SEG_SIZE,
					    .io_timeout_ms = io_timeout_ms};

	cr_assert_eq(mcfs_xport_server_create(&mcfs_xport_tcp, &sc, &srv), 0);
	snprintf(addr, sizeof(addr), "%s", mcfs_xport_server_addr(srv));
	cr_assert_eq(mcfs_xport_server_start(srv, NODE, SEGID, secret), 0);
}

static void setup(void)
{
	seg = malloc(SEG_SIZE);
	pristine = malloc(SEG_SIZE);
	cr_assert(seg && pristine);
	fill_canary(pristine, SEG_SIZE);
	memcpy(seg, pristine, SEG_SIZE);
	for (int i = 0; i < MCFS_GRANT_SECRET_LEN; i++)
		secret[i] = (uint8_t)(i * 13 + 1);
	start_server(0, 0);
	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, NULL, &cl), 0);
}

static void teardown(void)
{
	mcfs_xport_client_destroy(cl);
	mcfs_xport_server_destroy(srv);
	free(seg);
	free(pristine);
}

TestSuite(seg, .init = setup, .fini = teardown);
TestSuite(segwire);

static uint16_t addr_port(const char *a)
{
	char host[64];
	uint16_t port;

	cr_assert_eq(mcfs_parse_hostport(a, "", host, sizeof(host), &port), 0);
	return port;
}

/* A plain socket to the server, for speaking the protocol by hand. */
static int raw_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(addr_port(addr)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void raw_send(int fd, const void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const uint8_t *)p + done, len - done, MSG_NOSIGNAL);

		if (n <= 0)
			return; /* the server may have closed; the caller checks what matters */
		done += (size_t)n;
	}
}

/* Read one response head; returns its status, or 1 when the connection closed. */
static int raw_resp(int fd, uint16_t type, uint64_t req_id, uint32_t data_len)
{
	uint8_t in[MCFS_SEG_RESP_BYTES];
	int32_t st;

	if (recv(fd, in, sizeof(in), MSG_WAITALL) != (ssize_t)sizeof(in))
		return 1;
	cr_assert_eq(mcfs_seg_resp_decode(in, type, req_id, data_len, &st), 0);
	return st;
}

static void raw_skip(int fd, size_t n)
{
	uint8_t b[4096];

	while (n) {
		ssize_t got = recv(fd, b, n < sizeof(b) ? n : sizeof(b), 0);

		cr_assert(got > 0);
		n -= (size_t)got;
	}
}

/* Does the server close fd (soon)? */
static bool raw_closed(int fd)
{
	uint8_t b[4096];
	ssize_t n;

	while ((n = recv(fd, b, sizeof(b), 0)) > 0)
		;
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void raw_req(int fd, uint16_t type, uint64_t id, const struct mcfs_grant *g, uint64_t off,
		    uint32_t len, const void *data)
{
	uint8_t head[MCFS_SEG_REQ_BYTES];
	struct mcfs_seg_req r = {.grant = *g, .off = off, .len = len};

	mcfs_seg_req_encode(head, type, id, &r);
	raw_send(fd, head, sizeof(head));
	if (data)
		raw_send(fd, data, len);
}

/* The server still serves: a fresh read through the client returns the right bytes. */
static void assert_serves(void)
{
	uint8_t buf[4096];
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 40 * MIB, 4096);

	cr_assert_eq(mcfs_xport_read(cl, addr, &g, 40 * MIB, buf, sizeof(buf)), 0);
	cr_assert_eq(memcmp(buf, seg + 40 * MIB, sizeof(buf)), 0);
}

/* ---- wire format ---- */

Test(segwire, request_round_trip)
{
	uint8_t b[MCFS_SEG_REQ_BYTES];
	struct mcfs_seg_req r = {.grant = {.node_id = 0x1122334455667788ull,
					   .seg_id = 0xa1b2c3d4,
					   .access = MCFS_GRANT_WRITE,
					   .offset = 1ull << 40,
					   .len = 12345,
					   .expiry_ms = 999,
					   .mac = 0xfeedfacecafebeefull},
				 .off = (1ull << 40) + 7,
				 .len = MCFS_SEG_IO_MAX},
			    d;
	struct mcfs_frame_hdr h;

	mcfs_seg_req_encode(b, MCFS_SEG_WRITE, 42, &r);
	cr_assert_eq(mcfs_frame_parse(b, sizeof(b), &h), 0);
	cr_assert_eq(h.type, MCFS_SEG_WRITE);
	cr_assert_eq(h.req_id, 42);
	cr_assert_eq(h.len, MCFS_SEG_REQ_HEAD + MCFS_SEG_IO_MAX);
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), 0);
	cr_assert_eq(memcmp(&d.grant.node_id, &r.grant.node_id, 8), 0);
	cr_assert_eq(d.grant.seg_id, r.grant.seg_id);
	cr_assert_eq(d.grant.access, r.grant.access);
	cr_assert_eq(d.grant.offset, r.grant.offset);
	cr_assert_eq(d.grant.len, r.grant.len);
	cr_assert_eq(d.grant.expiry_ms, r.grant.expiry_ms);
	cr_assert_eq(d.grant.mac, r.grant.mac);
	cr_assert_eq(d.off, r.off);
	cr_assert_eq(d.len, r.len);

	/* A READ carries no data: its frame is the head alone. */
	mcfs_seg_req_encode(b, MCFS_SEG_READ, 43, &r);
	cr_assert_eq(mcfs_frame_parse(b, sizeof(b), &h), 0);
	cr_assert_eq(h.len, MCFS_SEG_REQ_HEAD);
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), 0);
}

Test(segwire, request_decode_refuses_malformed_heads)
{
	uint8_t b[MCFS_SEG_REQ_BYTES];
	struct mcfs_seg_req r = {.grant = {.access = MCFS_GRANT_READ}, .len = 100}, d;
	struct mcfs_frame_hdr h;

	mcfs_seg_req_encode(b, MCFS_SEG_READ, 1, &r);
	cr_assert_eq(mcfs_frame_parse(b, sizeof(b), &h), 0);
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), 0);

	h.len = MCFS_SEG_REQ_HEAD + 100; /* a READ with data */
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), -EINVAL);
	h.len = MCFS_SEG_REQ_HEAD;
	h.type = MCFS_SEG_WRITE; /* a WRITE without */
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), -EINVAL);
	h.type = 7;
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), -EINVAL);
	h.type = MCFS_SEG_READ;
	h.flags = MCFS_FRAME_RESP;
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), -EINVAL);
	h.flags = 0;

	b[MCFS_FRAME_HDR + 12 + 1] = 1; /* access 256 */
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), -EINVAL);
	b[MCFS_FRAME_HDR + 12 + 1] = 0;
	b[MCFS_FRAME_HDR + 60] = 1; /* flags */
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), -EINVAL);
	b[MCFS_FRAME_HDR + 60] = 0;
	r.len = MCFS_SEG_IO_MAX + 1;
	mcfs_seg_req_encode(b, MCFS_SEG_READ, 1, &r);
	cr_assert_eq(mcfs_seg_req_decode(&h, b + MCFS_FRAME_HDR, &d), -EINVAL);
}

Test(segwire, response_checks)
{
	uint8_t b[MCFS_SEG_RESP_BYTES];
	int32_t st = 1;

	mcfs_seg_resp_encode(b, MCFS_SEG_READ, 9, 0, 4096);
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_READ, 9, 4096, &st), 0);
	cr_assert_eq(st, 0);
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_READ, 9, 4095, &st), -EPROTO);
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_READ, 8, 4096, &st), -EPROTO);
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_WRITE, 9, 4096, &st), -EPROTO);

	/* An error carries no data, whatever was asked for. */
	mcfs_seg_resp_encode(b, MCFS_SEG_READ, 9, -EACCES, 0);
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_READ, 9, 4096, &st), 0);
	cr_assert_eq(st, -EACCES);

	mcfs_seg_resp_encode(b, MCFS_SEG_WRITE, 9, 5, 0); /* a positive status */
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_WRITE, 9, 0, &st), -EPROTO);
	mcfs_seg_resp_encode(b, MCFS_SEG_WRITE, 9, 0, 0);
	b[5] = 0; /* not a response */
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_WRITE, 9, 0, &st), -EPROTO);
	mcfs_seg_resp_encode(b, MCFS_SEG_WRITE, 9, 0, 0);
	b[MCFS_FRAME_HDR + 4] = 1; /* reserved */
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_WRITE, 9, 0, &st), -EPROTO);
	mcfs_seg_resp_encode(b, MCFS_SEG_WRITE, 9, 0, 0);
	b[0] ^= 1; /* magic */
	cr_assert_eq(mcfs_seg_resp_decode(b, MCFS_SEG_WRITE, 9, 0, &st), -EPROTO);
}

/* ---- round trips ---- */

static void round_trip(uint64_t off, size_t len)
{
	uint8_t *out = malloc(len + 1), *in = malloc(len + 1);
	struct mcfs_grant wg = grant(MCFS_GRANT_WRITE, off, len);
	struct mcfs_grant rg = grant(MCFS_GRANT_READ, off, len);

	cr_assert(out && in);
	fill_random(out, len + 1);
	memset(in, 0xee, len + 1);
	cr_assert_eq(mcfs_xport_write(cl, addr, &wg, off, out, len), 0, "write %zu at %llu", len,
		     (unsigned long long)off);
	cr_assert_eq(memcmp(seg + off, out, len), 0);
	assert_untouched_outside(off, off + len);
	cr_assert_eq(mcfs_xport_read(cl, addr, &rg, off, in, len), 0);
	cr_assert_eq(memcmp(in, out, len), 0, "read back %zu at %llu", len,
		     (unsigned long long)off);
	cr_assert_eq(in[len], 0xee, "a byte past the buffer was written");
	restore(off, off + len);
	free(out);
	free(in);
}

Test(seg, round_trips_of_every_size)
{
	static const size_t sizes[] = {0, 1, 4095, MIB, 3 * MIB + 17};
	static const uint64_t offs[] = {0, 1, 12345, 33 * MIB + 4095};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++)
			round_trip(offs[j], sizes[i]);
		round_trip(SEG_SIZE - sizes[i], sizes[i]); /* up to the last byte */
	}
}

Test(seg, whole_segment_round_trip)
{
	round_trip(0, SEG_SIZE);
}

Test(seg, small_chunks_and_depth_one)
{
	struct mcfs_xport_client_conf cc = {.chunk = 4096, .depth = 1};
	struct mcfs_xport_client *c2;
	uint8_t *buf = malloc(MIB + 5);
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 5 * MIB, MIB + 5);

	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, &cc, &c2), 0);
	cr_assert_eq(mcfs_xport_read(c2, addr, &g, 5 * MIB, buf, MIB + 5), 0);
	cr_assert_eq(memcmp(buf, seg + 5 * MIB, MIB + 5), 0);
	cc = (struct mcfs_xport_client_conf){.chunk = 65536 + 3, .depth = 64};
	mcfs_xport_client_destroy(c2);
	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, &cc, &c2), 0);
	memset(buf, 0, MIB + 5);
	cr_assert_eq(mcfs_xport_read(c2, addr, &g, 5 * MIB, buf, MIB + 5), 0);
	cr_assert_eq(memcmp(buf, seg + 5 * MIB, MIB + 5), 0);
	mcfs_xport_client_destroy(c2);
	free(buf);
}

Test(seg, connections_are_pooled)
{
	struct mcfs_xport_stats st;

	for (int i = 0; i < 20; i++)
		assert_serves();
	mcfs_xport_server_stats(srv, &st);
	cr_assert_eq(st.conns_accepted, 1);
	cr_assert_eq(st.reads, 20);
	cr_assert_eq(st.bytes_read, 20 * 4096);
}

/* ---- refusals ---- */

static void refused_both_ways(const struct mcfs_grant *g, uint64_t off, size_t len, int want)
{
	uint8_t *buf = malloc(len ? len : 1);

	memset(buf, 0x77, len ? len : 1);
	cr_assert_eq(mcfs_xport_read(cl, addr, g, off, buf, len), want);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(buf[i], 0x77, "a refused read wrote the buffer");
	cr_assert_eq(mcfs_xport_write(cl, addr, g, off, buf, len), want);
	assert_untouched_outside(0, 0);
	free(buf);
}

Test(seg, bad_grants_are_refused_and_change_nothing)
{
	struct mcfs_grant g;
	struct mcfs_xport_stats st;
	uint8_t other[MCFS_GRANT_SECRET_LEN];
	const uint8_t rw = MCFS_GRANT_READ | MCFS_GRANT_WRITE;

	g = grant(rw, MIB, MIB);
	g.node_id = NODE + 1;
	mcfs_grant_sign(&g, secret);
	refused_both_ways(&g, MIB, 4096, -EACCES);

	g = grant(rw, MIB, MIB);
	g.seg_id = SEGID + 1;
	mcfs_grant_sign(&g, secret);
	refused_both_ways(&g, MIB, 4096, -EACCES);

	g = grant(MCFS_GRANT_READ, MIB, MIB);
	cr_assert_eq(mcfs_xport_write(cl, addr, &g, MIB, seg, 4096), -EACCES);
	g = grant(MCFS_GRANT_WRITE, MIB, MIB);
	cr_assert_eq(mcfs_xport_read(cl, addr, &g, MIB, pristine, 4096), -EACCES);
	g = grant(0, MIB, MIB);
	refused_both_ways(&g, MIB, 4096, -EACCES);

	g = grant(rw, MIB, MIB);
	g.mac ^= 1;
	refused_both_ways(&g, MIB, 4096, -EACCES);
	g = grant(rw, MIB, MIB);
	g.len = 64 * MIB; /* widened after signing */
	refused_both_ways(&g, MIB, 2 * MIB, -EACCES);

	memcpy(other, secret, sizeof(other));
	other[0] ^= 1;
	g = grant(rw, MIB, MIB);
	mcfs_grant_sign(&g, other);
	refused_both_ways(&g, MIB, 4096, -EACCES);

	g = grant(rw, MIB, MIB);
	g.expiry_ms = mcfs_grant_now_ms() - 1;
	mcfs_grant_sign(&g, secret);
	refused_both_ways(&g, MIB, 4096, -ETIMEDOUT);

	g = grant(rw, MIB, MIB);
	refused_both_ways(&g, MIB - 1, 4096, -ERANGE);
	refused_both_ways(&g, MIB + 1, MIB, -ERANGE);
	refused_both_ways(&g, 2 * MIB, 1, -ERANGE);
	refused_both_ways(&g, 2 * MIB + 1, 0, -ERANGE);
	refused_both_ways(&g, UINT64_MAX - 10, 4, -ERANGE);

	/* A genuine grant past the end of the segment still stops at the segment. */
	g = grant(rw, SEG_SIZE - 4096, 2 * MIB);
	refused_both_ways(&g, SEG_SIZE - 4096, 8192, -ERANGE);
	refused_both_ways(&g, SEG_SIZE, 1, -ERANGE);
	g = grant(rw, UINT64_MAX - MIB, MIB);
	refused_both_ways(&g, UINT64_MAX - MIB, 4096, -ERANGE);

	/* Every refusal kept the connection: one was ever made. */
	assert_serves();
	mcfs_xport_server_stats(srv, &st);
	cr_assert_eq(st.conns_accepted, 1);
	cr_assert_eq(st.proto_errors, 0);
	cr_assert(st.refused >= 30);
}

Test(seg, a_write_past_its_grant_stops_at_the_grant)
{
	uint8_t *buf = malloc(3 * MIB);
	struct mcfs_grant g = grant(MCFS_GRANT_WRITE, 10 * MIB, 2 * MIB);

	fill_random(buf, 3 * MIB);
	/* Whole chunks inside the grant may land; nothing outside it does. */
	cr_assert_eq(mcfs_xport_write(cl, addr, &g, 10 * MIB, buf, 3 * MIB), -ERANGE);
	assert_untouched_outside(10 * MIB, 12 * MIB);
	cr_assert_eq(mcfs_xport_write(cl, addr, &g, 11 * MIB, buf, 2 * MIB), -ERANGE);
	assert_untouched_outside(10 * MIB, 12 * MIB);
	assert_serves();
	free(buf);
}

Test(seg, identity_changes_while_serving)
{
	uint8_t fresh[MCFS_GRANT_SECRET_LEN], buf[4096];
	struct mcfs_grant old = grant(MCFS_GRANT_READ, 0, 4096), g;

	cr_assert_eq(mcfs_xport_read(cl, addr, &old, 0, buf, sizeof(buf)), 0);
	cr_assert_eq(mcfs_xport_server_start(srv, NODE, SEGID, secret), -EALREADY);
	cr_assert_eq(mcfs_grant_secret_init(fresh), 0);
	mcfs_xport_server_set_identity(srv, NODE + 100, SEGID + 1, fresh);
	cr_assert_eq(mcfs_xport_read(cl, addr, &old, 0, buf, sizeof(buf)), -EACCES);
	g = old;
	g.node_id = NODE + 100;
	mcfs_grant_sign(&g, fresh);
	cr_assert_eq(mcfs_xport_read(cl, addr, &g, 0, buf, sizeof(buf)), -EACCES); /* old seg id */
	g.seg_id = SEGID + 1;
	mcfs_grant_sign(&g, fresh);
	cr_assert_eq(mcfs_xport_read(cl, addr, &g, 0, buf, sizeof(buf)), 0);
	cr_assert_eq(memcmp(buf, seg, sizeof(buf)), 0);
}

/* ---- transport trouble ---- */

Test(seg, nothing_listening_is_refused)
{
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, 4096);
	uint8_t buf[4096];
	char a[64];

	snprintf(a, sizeof(a), "%s", addr);
	mcfs_xport_server_destroy(srv);
	srv = NULL;
	cr_assert_eq(mcfs_xport_read(cl, a, &g, 0, buf, sizeof(buf)), -ECONNREFUSED);
	start_server(0, 0);
}

Test(seg, a_restarted_server_is_reached_through_a_stale_pool)
{
	uint16_t port = addr_port(addr);
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, 4096);
	uint8_t buf[4096];

	for (int i = 0; i < 3; i++)
		cr_assert_eq(mcfs_xport_read(cl, addr, &g, 0, buf, sizeof(buf)), 0);
	mcfs_xport_server_destroy(srv);
	start_server(port, 0);
	cr_assert_eq(mcfs_xport_read(cl, addr, &g, 0, buf, sizeof(buf)), 0);
	cr_assert_eq(memcmp(buf, seg, sizeof(buf)), 0);
}

/* A listening socket that nobody serves: connects complete, nothing answers. */
Test(seg, a_silent_peer_times_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct mcfs_xport_client_conf cc = {.timeout_ms = 300};
	struct mcfs_xport_client *c2;
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, 4096);
	uint8_t buf[4096];
	char a[64];
	uint64_t t0;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 16), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	snprintf(a, sizeof(a), "127.0.0.1:%u", ntohs(sa.sin_port));
	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, &cc, &c2), 0);
	for (int i = 0; i < 2; i++) {
		t0 = mcfs_now_ms();
		cr_assert_eq(mcfs_xport_read(c2, a, &g, 0, buf, sizeof(buf)), -ETIMEDOUT);
		cr_assert(mcfs_now_ms() - t0 < 3000);
		t0 = mcfs_now_ms();
		cr_assert_eq(mcfs_xport_write(c2, a, &g, 0, buf, sizeof(buf)), -ETIMEDOUT);
		cr_assert(mcfs_now_ms() - t0 < 3000);
	}
	/* The same client still reaches a live server. */
	g = grant(MCFS_GRANT_READ, 0, 4096);
	cr_assert_eq(mcfs_xport_read(c2, addr, &g, 0, buf, sizeof(buf)), 0);
	mcfs_xport_client_destroy(c2);
	close(lfd);
}

/* A peer that asks for a lot and never reads holds up nobody but itself. */
Test(seg, a_peer_that_never_reads_blocks_no_one)
{
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, SEG_SIZE);
	uint64_t t0;
	int fd = raw_connect();

	for (int i = 0; i < 64; i++)
		raw_req(fd, MCFS_SEG_READ, (uint64_t)i + 1, &g, 0, MCFS_SEG_IO_MAX, NULL);
	usleep(100 * 1000);
	t0 = mcfs_now_ms();
	for (int i = 0; i < 10; i++)
		assert_serves();
	round_trip(20 * MIB, 4 * MIB);
	cr_assert(mcfs_now_ms() - t0 < 5000);
	/* teardown destroys the server with that connection still stuck in send() */
	close(fd);
}

Test(seg, a_stuck_peer_is_dropped_after_the_io_timeout)
{
	uint8_t hdr[MCFS_SEG_REQ_BYTES];
	struct mcfs_seg_req r = {.grant = grant(MCFS_GRANT_WRITE, 0, MIB), .len = MIB};
	int fd;

	mcfs_xport_server_destroy(srv);
	start_server(0, 300);
	/* Half a header, then silence. */
	fd = raw_connect();
	mcfs_seg_req_encode(hdr, MCFS_SEG_WRITE, 1, &r);
	raw_send(fd, hdr, 10);
	cr_assert(raw_closed(fd));
	close(fd);
	/* A whole head and part of the data, then silence. */
	fd = raw_connect();
	raw_send(fd, hdr, sizeof(hdr));
	raw_send(fd, pristine, 1000);
	cr_assert(raw_closed(fd));
	close(fd);
	assert_serves();
}

Test(seg, a_client_leaving_mid_transfer_is_cleaned_up)
{
	struct mcfs_grant g = grant(MCFS_GRANT_READ | MCFS_GRANT_WRITE, 0, 16 * MIB);
	struct mcfs_xport_stats st;
	int fd;

	/* A write that stops half way. */
	fd = raw_connect();
	raw_req(fd, MCFS_SEG_WRITE, 1, &g, 0, MCFS_SEG_IO_MAX, NULL);
	raw_send(fd, seg + MIB, MIB);
	close(fd);
	/* Reads whose responses nobody takes. */
	fd = raw_connect();
	for (int i = 0; i < 4; i++)
		raw_req(fd, MCFS_SEG_READ, (uint64_t)i + 1, &g, 0, MCFS_SEG_IO_MAX, NULL);
	usleep(50 * 1000);
	close(fd);
	for (int i = 0; i < 250; i++) {
		mcfs_xport_server_stats(srv, &st);
		if (st.conns_open == 0)
			break;
		usleep(20 * 1000);
	}
	cr_assert_eq(st.conns_open, 0);
	cr_assert_eq(st.conns_accepted, 2);
	assert_untouched_outside(0, 16 * MIB);
	assert_serves();
}

Test(seg, bound_before_start_serves_after)
{
	struct mcfs_xport_server_conf sc = {
	    .host = "127.0.0.1", .seg_base = seg, .seg_size = SEG_SIZE};
	struct mcfs_xport_client_conf cc = {.timeout_ms = 200};
	struct mcfs_xport_server *s2;
	struct mcfs_xport_client *c2;
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, 4096);
	uint8_t buf[4096];
	const char *a2;

	cr_assert_eq(mcfs_xport_server_create(&mcfs_xport_tcp, &sc, &s2), 0);
	a2 = mcfs_xport_server_addr(s2);
	cr_assert(strncmp(a2, "127.0.0.1:", 10) == 0 && addr_port(a2) != 0);
	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, &cc, &c2), 0);
	/* Not serving yet: the connection waits in the backlog and the read times out. */
	cr_assert_eq(mcfs_xport_read(c2, a2, &g, 0, buf, sizeof(buf)), -ETIMEDOUT);
	cr_assert_eq(mcfs_xport_server_start(s2, NODE, SEGID, secret), 0);
	cr_assert_eq(mcfs_xport_read(cl, a2, &g, 0, buf, sizeof(buf)), 0);
	cr_assert_eq(memcmp(buf, seg, sizeof(buf)), 0);
	mcfs_xport_client_destroy(c2);
	mcfs_xport_server_destroy(s2);
}

/* ---- malformed input ---- */

Test(seg, malformed_frames_close_only_their_connection)
{
	uint8_t hdr[MCFS_SEG_REQ_BYTES];
	struct mcfs_buf b;
	struct mcfs_xport_stats st;
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, 4096);
	static const char http[] = "GET / HTTP/1.0\r\nHost: mcfs\r\n\r\n"; /* > a header */
	int fd, keep = raw_connect();

	/* keep: a connection with requests before and after the others' trouble */
	raw_req(keep, MCFS_SEG_READ, 1, &g, 0, 4096, NULL);
	cr_assert_eq(raw_resp(keep, MCFS_SEG_READ, 1, 4096), 0);
	raw_skip(keep, 4096);

	fd = raw_connect(); /* garbage */
	raw_send(fd, http, sizeof(http) - 1);
	cr_assert(raw_closed(fd));
	close(fd);

	fd = raw_connect(); /* a payload over the frame limit: never allocated, closed */
	mcfs_buf_init(&b);
	mcfs_frame_begin(&b, MCFS_SEG_WRITE, 0, 1);
	mcfs_buf_set_u32(&b, 8, 0xffffffffu);
	raw_send(fd, b.data, b.len);
	cr_assert(raw_closed(fd));
	close(fd);
	mcfs_buf_fini(&b);

	fd = raw_connect(); /* a response frame sent as a request */
	mcfs_seg_resp_encode(hdr, MCFS_SEG_READ, 1, 0, 0);
	raw_send(fd, hdr, MCFS_SEG_RESP_BYTES);
	cr_assert(raw_closed(fd));
	close(fd);

	fd = raw_connect(); /* a request shorter than its head */
	mcfs_buf_init(&b);
	mcfs_frame_begin(&b, MCFS_SEG_READ, 0, 1);
	mcfs_buf_put(&b, pristine, 10);
	cr_assert_eq(mcfs_frame_finish(&b, 0), 0);
	raw_send(fd, b.data, b.len);
	cr_assert(raw_closed(fd));
	close(fd);
	mcfs_buf_fini(&b);

	mcfs_xport_server_stats(srv, &st);
	cr_assert_eq(st.proto_errors, 4);
	raw_req(keep, MCFS_SEG_READ, 2, &g, 0, 4096, NULL);
	cr_assert_eq(raw_resp(keep, MCFS_SEG_READ, 2, 4096), 0);
	close(keep);
	assert_serves();
}

Test(seg, unknown_types_and_bad_heads_are_answered_and_skipped)
{
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, 4096);
	struct mcfs_seg_req r = {.grant = g, .len = 4096};
	uint8_t head[MCFS_SEG_REQ_BYTES];
	struct mcfs_buf b;
	int fd = raw_connect();

	/* A type from some newer peer, with a payload: skipped, answered -EOPNOTSUPP. */
	mcfs_buf_init(&b);
	mcfs_frame_begin(&b, 199, 0, 5);
	mcfs_buf_put(&b, pristine, 100000);
	cr_assert_eq(mcfs_frame_finish(&b, 0), 0);
	raw_send(fd, b.data, b.len);
	mcfs_buf_fini(&b);
	cr_assert_eq(raw_resp(fd, 199, 5, 0), -EOPNOTSUPP);

	/* A head with stray flags, and a READ with data: -EINVAL, the payload skipped. */
	mcfs_seg_req_encode(head, MCFS_SEG_READ, 6, &r);
	head[MCFS_FRAME_HDR + 60] = 0x80;
	raw_send(fd, head, sizeof(head));
	cr_assert_eq(raw_resp(fd, MCFS_SEG_READ, 6, 0), -EINVAL);
	mcfs_seg_req_encode(head, MCFS_SEG_READ, 7, &r);
	head[8] = MCFS_SEG_REQ_HEAD + 16; /* frame length: 16 bytes of data a READ must not have */
	raw_send(fd, head, sizeof(head));
	raw_send(fd, pristine, 16);
	cr_assert_eq(raw_resp(fd, MCFS_SEG_READ, 7, 0), -EINVAL);
	/* More than one request may carry: refused, nothing allocated. */
	r.len = MCFS_SEG_IO_MAX + 1;
	mcfs_seg_req_encode(head, MCFS_SEG_READ, 8, &r);
	raw_send(fd, head, sizeof(head));
	cr_assert_eq(raw_resp(fd, MCFS_SEG_READ, 8, 0), -EINVAL);

	/* The same connection still serves, pipelined. */
	raw_req(fd, MCFS_SEG_READ, 9, &g, 0, 4096, NULL);
	raw_req(fd, MCFS_SEG_READ, 10, &g, 100, 1, NULL);
	cr_assert_eq(raw_resp(fd, MCFS_SEG_READ, 9, 4096), 0);
	raw_skip(fd, 4096);
	cr_assert_eq(raw_resp(fd, MCFS_SEG_READ, 10, 1), 0);
	raw_skip(fd, 1);
	close(fd);
	assert_untouched_outside(0, 0);
}

/* ---- concurrency ---- */

struct worker {
	pthread_t th;
	int id;
	int err;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t base = (uint64_t)(w->id + 1) * 8 * MIB;
	size_t len = (size_t)(w->id + 1) * 700 * 1024 + 3; /* up to ~2.7 MiB, all different */
	uint8_t *out = malloc(len), *in = malloc(len);
	struct mcfs_grant wg = grant(MCFS_GRANT_WRITE, base, len);
	struct mcfs_grant rg = grant(MCFS_GRANT_READ, base, len);

	for (int i = 0; i < 20 && !w->err; i++) {
		memset(out, w->id * 16 + i, len);
		w->err = mcfs_xport_write(cl, addr, &wg, base, out, len);
		if (!w->err)
			w->err = mcfs_xport_read(cl, addr, &rg, base, in, len);
		if (!w->err && memcmp(in, out, len))
			w->err = -EILSEQ;
	}
	free(out);
	free(in);
	return NULL;
}

Test(seg, concurrent_clients)
{
	struct worker w[4];
	struct mcfs_xport_stats st;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.id = i};
		cr_assert_eq(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(w[i].th, NULL);
		cr_assert_eq(w[i].err, 0, "worker %d: %s", i, strerror(-w[i].err));
	}
	for (int i = 0; i < 4; i++) {
		uint64_t base = (uint64_t)(i + 1) * 8 * MIB;
		size_t len = (size_t)(i + 1) * 700 * 1024 + 3;

		restore(base, base + len);
	}
	assert_untouched_outside(0, 0);
	mcfs_xport_server_stats(srv, &st);
	cr_assert(st.conns_accepted >= 1 && st.conns_accepted <= 4);
	cr_assert(st.reads + st.writes >= 160); /* requests: a transfer may take several */
}

/* ---- fuzz ---- */

#define FUZZ_CONNS 1500
#define WIN_OFF	   (48 * MIB) /* the one range fuzzing may write with a valid grant */
#define WIN_LEN	   (64u << 10)

static void fuzz_frame(struct mcfs_buf *b, uint64_t id)
{
	static uint8_t junk[WIN_LEN];
	struct mcfs_grant g;
	struct mcfs_seg_req r;
	uint8_t head[MCFS_SEG_REQ_BYTES];
	uint16_t type = rnd() & 1 ? MCFS_SEG_READ : MCFS_SEG_WRITE;
	uint32_t n;
	size_t off;

	fill_random(junk, sizeof(junk));
	switch (rnd() % 9) {
	case 0: /* garbage */
		mcfs_buf_put(b, junk, 1 + rnd() % 200);
		break;
	case 1: /* a valid header of any type, any small payload */
		off = mcfs_frame_begin(b, (uint16_t)rnd(), rnd() % 3 ? 0 : MCFS_FRAME_RESP, id);
		mcfs_buf_put(b, junk, rnd() % 300);
		mcfs_frame_finish(b, off);
		break;
	case 2: /* a segment type with a payload of random size and bytes */
		off = mcfs_frame_begin(b, type, 0, id);
		mcfs_buf_put(b, junk, rnd() % 200);
		mcfs_frame_finish(b, off);
		break;
	case 3: /* a huge announced length */
		off = mcfs_frame_begin(b, type, 0, id);
		mcfs_buf_set_u32(
		    b, off + 8,
		    (uint32_t)(MCFS_FRAME_MAX + 1 + rnd() % (UINT32_MAX - MCFS_FRAME_MAX)));
		break;
	case 4: /* a forged grant: random fields, random place */
		fill_random((uint8_t *)&g, sizeof(g));
		g.access &= 3;
		r = (struct mcfs_seg_req){.grant = g,
					  .off = rnd() % 4 ? rnd() % (2ull * SEG_SIZE) : rnd(),
					  .len = (uint32_t)(rnd() % WIN_LEN)};
		mcfs_seg_req_encode(head, type, id, &r);
		mcfs_buf_put(b, head, sizeof(head));
		if (type == MCFS_SEG_WRITE)
			mcfs_buf_put(b, junk, r.len);
		break;
	case 5: /* a genuine grant on the window, asked for bytes outside it */
		g = grant(MCFS_GRANT_READ | MCFS_GRANT_WRITE, WIN_OFF, WIN_LEN);
		n = (uint32_t)(1 + rnd() % WIN_LEN);
		r = (struct mcfs_seg_req){.grant = g, .len = n};
		r.off = rnd() & 1 ? WIN_OFF + WIN_LEN - n + 1 + rnd() % 4096
				  : WIN_OFF - 1 - rnd() % 4096;
		mcfs_seg_req_encode(head, type, id, &r);
		mcfs_buf_put(b, head, sizeof(head));
		if (type == MCFS_SEG_WRITE)
			mcfs_buf_put(b, junk, n);
		break;
	case 6: /* a genuine request inside the window */
		g = grant(MCFS_GRANT_READ | MCFS_GRANT_WRITE, WIN_OFF, WIN_LEN);
		n = (uint32_t)(rnd() % WIN_LEN);
		r = (struct mcfs_seg_req){
		    .grant = g, .off = WIN_OFF + rnd() % (WIN_LEN - n + 1), .len = n};
		mcfs_seg_req_encode(head, type, id, &r);
		mcfs_buf_put(b, head, sizeof(head));
		if (type == MCFS_SEG_WRITE)
			mcfs_buf_put(b, junk, n);
		break;
	case 7: /* a genuine request with one bit flipped somewhere in its head */
		g = grant(MCFS_GRANT_READ | MCFS_GRANT_WRITE, WIN_OFF, WIN_LEN);
		r = (struct mcfs_seg_req){.grant = g, .off = WIN_OFF, .len = 512};
		mcfs_seg_req_encode(head, type, id, &r);
		n = (uint32_t)(rnd() % (sizeof(head) * 8));
		head[n / 8] ^= (uint8_t)(1u << (n % 8));
		mcfs_buf_put(b, head, sizeof(head));
		if (type == MCFS_SEG_WRITE)
			mcfs_buf_put(b, junk, 512);
		break;
	default: /* a request cut short */
		g = grant(MCFS_GRANT_WRITE, WIN_OFF, WIN_LEN);
		r = (struct mcfs_seg_req){.grant = g, .off = WIN_OFF, .len = WIN_LEN};
		mcfs_seg_req_encode(head, MCFS_SEG_WRITE, id, &r);
		mcfs_buf_put(b, head, sizeof(head));
		mcfs_buf_put(b, junk, rnd() % WIN_LEN);
		mcfs_buf_put(b, head, rnd() % sizeof(head));
		break;
	}
}

Test(seg, fuzz_leaves_the_server_alive_and_the_canary_intact, .timeout = 120)
{
	struct mcfs_buf b;
	struct mcfs_xport_stats st;
	uint64_t t0 = mcfs_now_ms();
	unsigned frames = 0;

	rng = 20240611;
	mcfs_buf_init(&b);
	for (int i = 0; i < FUZZ_CONNS; i++) {
		int fd = raw_connect();
		int nf = 1 + (int)(rnd() % 4);

		b.len = 0;
		for (int k = 0; k < nf; k++)
			fuzz_frame(&b, (uint64_t)k + 1);
		frames += (unsigned)nf;
		raw_send(fd, b.data, b.len);
		/* No more from us: the server answers what it can, then closes. */
		shutdown(fd, SHUT_WR);
		cr_assert(raw_closed(fd), "connection %d: the server did not finish", i);
		close(fd);
	}
	mcfs_buf_fini(&b);
	cr_log_info("fuzz: %u frames on %d connections in %llu ms", frames, FUZZ_CONNS,
		    (unsigned long long)(mcfs_now_ms() - t0));
	assert_untouched_outside(WIN_OFF, WIN_OFF + WIN_LEN);
	assert_serves();
	round_trip(WIN_OFF, WIN_LEN);
	mcfs_xport_server_stats(srv, &st);
	cr_assert(st.proto_errors > 0 && st.refused > 0 && st.reads + st.writes > 0);
}

/* ---- streams (mcfs_xport_stream_*) ---- */

/* Take the current answer of s whole, in pieces of at most piece bytes, into out. */
static void stream_take(struct mcfs_xport_stream *s, uint8_t *out, uint32_t len, uint32_t piece)
{
	uint32_t got = 0, avail;
	int fd;

	while (got < len) {
		cr_assert_eq(mcfs_xport_stream_next(s, piece, &fd, &avail), 0, "at %u of %u", got,
			     len);
		cr_assert(avail >= 1 && avail <= piece && avail <= len - got);
		/* next() promised avail bytes already queued: one recv takes them */
		cr_assert_eq(recv(fd, out + got, avail, MSG_DONTWAIT), (ssize_t)avail);
		mcfs_xport_stream_consumed(s, avail);
		got += avail;
	}
}

Test(seg, stream_answers_in_order)
{
	static const struct {
		uint64_t off;
		uint32_t len;
	} asks[] = {{0, 1}, {12345, 4096}, {7 * MIB + 3, MIB}, {SEG_SIZE - 5000, 5000}};
	struct mcfs_grant g = grant(MCFS_GRANT_READ, 0, SEG_SIZE);
	struct mcfs_xport_stream *s;
	uint8_t *buf = malloc(MIB);

	cr_assert(buf);
	cr_assert_eq(mcfs_xport_stream_open(cl, addr, &s), 0);
	/* nothing asked: nothing to wait for */
	{
		int fd;
		uint32_t avail;

		cr_assert_eq(mcfs_xport_stream_next(s, 100, &fd, &avail), -EINVAL);
	}
	for (int round = 0; round < 3; round++) {
		/*
		 * everything asked up front, answers taken in order, in odd
		 * pieces, then whole (a large answer may come in parts)
		 */
		for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++)
			cr_assert_eq(mcfs_xport_stream_ask(s, &g, asks[i].off, asks[i].len), 0);
		for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
			uint32_t piece = round == 0 ? 1000 : round == 1 ? 65536 + 7 : asks[i].len;

			memset(buf, 0, asks[i].len);
			stream_take(s, buf, asks[i].len, piece);
			cr_assert_eq(memcmp(buf, seg + asks[i].off, asks[i].len), 0, "ask %zu", i);
		}
	}
	cr_assert_eq(mcfs_xport_stream_ask(s, &g, 0, 0), -EINVAL);
	cr_assert_eq(mcfs_xport_stream_ask(s, &g, 0, MCFS_SEG_IO_MAX + 1), -EINVAL);
	mcfs_xport_stream_close(s, true);
	free(buf);
}

/* A refused ask is that ask's error; the stream goes on with the next. */
Test(seg, stream_survives_a_refusal)
{
	struct mcfs_grant g = grant(MCFS_GRANT_READ, MIB, 4096);
	struct mcfs_grant forged = g;
	struct mcfs_xport_stream *s;
	uint8_t buf[4096];
	uint32_t avail;
	int fd;

	forged.len = 2 * MIB; /* wider than signed */
	cr_assert_eq(mcfs_xport_stream_open(cl, addr, &s), 0);
	cr_assert_eq(mcfs_xport_stream_ask(s, &g, MIB + 4000, 200), 0); /* past the grant */
	cr_assert_eq(mcfs_xport_stream_ask(s, &forged, MIB, 4096), 0);	/* bad signature */
	cr_assert_eq(mcfs_xport_stream_ask(s, &g, MIB, 4096), 0);	/* fine */
	cr_assert_eq(mcfs_xport_stream_next(s, 4096, &fd, &avail), -ERANGE);
	cr_assert_eq(mcfs_xport_stream_next(s, 4096, &fd, &avail), -EACCES);
	stream_take(s, buf, sizeof(buf), sizeof(buf));
	cr_assert_eq(memcmp(buf, seg + MIB, sizeof(buf)), 0);
	mcfs_xport_stream_close(s, true);
}

/* Streams hold connections: only so many at once; closing one frees its place. */
Test(seg, streams_are_bounded)
{
	struct mcfs_xport_stream *s[64];
	int n = 0, ret;

	while (n < 64 && !(ret = mcfs_xport_stream_open(cl, addr, &s[n])))
		n++;
	cr_assert_lt(n, 64);
	cr_assert_gt(n, 0);
	cr_assert_eq(ret, -EBUSY);
	mcfs_xport_stream_close(s[--n], false);
	cr_assert_eq(mcfs_xport_stream_open(cl, addr, &s[n]), 0);
	n++;
	while (n)
		mcfs_xport_stream_close(s[--n], true);
	cr_assert_eq(mcfs_xport_stream_open(cl, addr, &s[0]), 0);
	mcfs_xport_stream_close(s[0], true);
}
