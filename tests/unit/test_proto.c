// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the metadata codec (meta/proto.c) and of frame headers
 * (transport/frame.c): every message type round-trips as request and as
 * response with every field set, and every kind of malformed input is
 * refused with the documented errno, never read past.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "meta/proto.h"
#include "transport/frame.h"

static const uint16_t all_types[] = {
    MCFS_MSG_HELLO,	 MCFS_MSG_HEARTBEAT, MCFS_MSG_BYE,	   MCFS_MSG_STATFS,
    MCFS_MSG_LOOKUP,	 MCFS_MSG_GETATTR,   MCFS_MSG_SETATTR,	   MCFS_MSG_MKDIR,
    MCFS_MSG_CREATE,	 MCFS_MSG_SYMLINK,   MCFS_MSG_READLINK,	   MCFS_MSG_UNLINK,
    MCFS_MSG_RMDIR,	 MCFS_MSG_RENAME,    MCFS_MSG_READDIR,	   MCFS_MSG_SETXATTR,
    MCFS_MSG_GETXATTR,	 MCFS_MSG_LISTXATTR, MCFS_MSG_REMOVEXATTR, MCFS_MSG_PUT_START,
    MCFS_MSG_PUT_GROW,	 MCFS_MSG_PUT_END,   MCFS_MSG_PUT_REVOKE,  MCFS_MSG_GET,
    MCFS_MSG_LEASE,	 MCFS_MSG_PUT_PLACE, MCFS_MSG_REPL_START,  MCFS_MSG_REPL_END,
    MCFS_MSG_SOLE_LIST,	 MCFS_MSG_BATCH,     MCFS_MSG_SYNC,	   MCFS_MSG_REPORT,
    MCFS_MSG_REPORT_END, MCFS_MSG_RELEASE,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

static struct mcfs_blob blob(const char *s)
{
	return (struct mcfs_blob){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static struct mcfs_attr sample_attr(uint64_t ino)
{
	return (struct mcfs_attr){
	    .ino = ino,
	    .mode = 0100644,
	    .uid = 1000,
	    .gid = 100,
	    .nlink = 1,
	    .size = 5ull << 32,
	    .atime_ns = -1, /* times before 1970 must survive */
	    .mtime_ns = 1700000000123456789ll,
	    .ctime_ns = INT64_MIN,
	    .version = UINT64_MAX,
	    .flags = MCFS_ATTR_PENDING,
	};
}

static char addrs[MCFS_MAX_REPLICAS][32];
static uint8_t value_bytes[300];

/* Every field of m set to something distinct and non-zero. */
static void fill(struct mcfs_msg *m, uint16_t type, bool resp)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->resp = resp;
	m->req_id = 0x1122334455667788ull;
	m->epoch = 7;
	m->ino = 42;
	m->ino2 = 43;
	m->name = blob("blk_0042");
	m->name2 = blob("10.0.0.5:7422");
	for (size_t i = 0; i < sizeof(value_bytes); i++)
		value_bytes[i] = (uint8_t)(i * 7 + 1);
	m->value = (struct mcfs_blob){value_bytes, sizeof(value_bytes)};
	m->mode = 040755;
	m->uid = 1001;
	m->gid = 1002;
	m->flags = 0x5;
	m->valid = MCFS_SET_MODE | MCFS_SET_MTIME;
	m->count = 1000;
	m->crc = 0xdeadbeef;
	m->proto = MCFS_PROTO_VERSION;
	m->seg_id = 11;
	m->size = 1ull << 40;
	m->total = 8ull << 30;
	m->free = 3ull << 30;
	m->cookie = 99;
	m->version = 5;
	m->put_id = 77;
	m->node_id = 3;
	m->lease_ms = 10000;
	m->atime_ns = 1;
	m->mtime_ns = -2;
	m->attr = sample_attr(42);
	m->nrep = MCFS_MAX_REPLICAS;
	for (uint32_t i = 0; i < MCFS_MAX_REPLICAS; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "10.0.0.%u:7422", i + 1);
		m->rep[i] = (struct mcfs_replica){
		    .node_id = i + 1,
		    .seg_id = i * 2,
		    .tier = MCFS_TIER_DRAM,
		    .state = MCFS_REP_COMPLETE,
		    .offset = (uint64_t)i << 20,
		    .len = 65536,
		    .access = (uint8_t)(i % 3 + 1),
		    .rkey = 0xabcdef00u + i,
		    .expiry_ms = 1700000000000ull + i,
		    .mac = 0x0123456789abcdefull ^ i,
		    .addr = blob(addrs[i]),
		};
	}
}

static bool blob_eq(struct mcfs_blob a, struct mcfs_blob b)
{
	return a.len == b.len && (!a.len || !memcmp(a.p, b.p, a.len));
}

static bool attr_eq(const struct mcfs_attr *a, const struct mcfs_attr *b)
{
	return a->ino == b->ino && a->mode == b->mode && a->uid == b->uid && a->gid == b->gid &&
	       a->nlink == b->nlink && a->size == b->size && a->atime_ns == b->atime_ns &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns &&
	       a->version == b->version && a->flags == b->flags;
}

/* Encode m, check its header, decode it into *d (borrowing from *b). */
static void encode_decode(const struct mcfs_msg *m, struct mcfs_buf *b, struct mcfs_msg *d)
{
	struct mcfs_frame_hdr h;

	mcfs_buf_init(b);
	cr_assert_eq(mcfs_msg_encode(m, b), 0, "encode %s", mcfs_msg_name(m->type));
	cr_assert_eq(mcfs_frame_parse(b->data, b->len, &h), 0);
	cr_assert_eq(h.version, MCFS_FRAME_VERSION);
	cr_assert_eq(h.type, m->type);
	cr_assert_eq(h.flags, m->resp ? MCFS_FRAME_RESP : 0);
	cr_assert_eq(h.req_id, m->req_id);
	cr_assert_eq(MCFS_FRAME_HDR + (size_t)h.len, b->len);
	cr_assert_eq(mcfs_msg_decode_frame(b->data, b->len, d), 0, "decode %s%s",
		     mcfs_msg_name(m->type), m->resp ? " response" : "");
	cr_assert_eq(d->type, m->type);
	cr_assert_eq(d->resp, m->resp);
	cr_assert_eq(d->req_id, m->req_id);
	if (m->resp) {
		cr_assert_eq(d->status, m->status);
		cr_assert_eq(d->epoch, m->epoch);
	}
}

/*
 * Every type, both directions: decoding and encoding again gives the same
 * bytes, so whatever the schema carries survives; fields outside the schema
 * decode as zero.
 */
Test(proto, roundtrip_every_type)
{
	for (size_t t = 0; t < NTYPES; t++) {
		for (int resp = 0; resp < 2; resp++) {
			struct mcfs_msg m, d;
			struct mcfs_buf b, b2;

			fill(&m, all_types[t], resp);
			if (all_types[t] == MCFS_MSG_SYMLINK || all_types[t] == MCFS_MSG_READLINK)
				m.value = blob("../target/of/the/link");
			encode_decode(&m, &b, &d);
			mcfs_buf_init(&b2);
			cr_assert_eq(mcfs_msg_encode(&d, &b2), 0);
			cr_assert_eq(b2.len, b.len, "%s", mcfs_msg_name(m.type));
			cr_assert_eq(memcmp(b.data, b2.data, b.len), 0, "%s",
				     mcfs_msg_name(m.type));
			/* Each field is the original or absent. */
			cr_assert(d.ino == m.ino || !d.ino);
			cr_assert(d.ino2 == m.ino2 || !d.ino2);
			cr_assert(blob_eq(d.name, m.name) || !d.name.len);
			cr_assert(blob_eq(d.name2, m.name2) || !d.name2.len);
			cr_assert(blob_eq(d.value, m.value) || !d.value.len);
			cr_assert(d.size == m.size || !d.size);
			cr_assert(d.nrep == m.nrep || !d.nrep);
			cr_assert(attr_eq(&d.attr, &m.attr) || !d.attr.ino);
			mcfs_buf_fini(&b);
			mcfs_buf_fini(&b2);
		}
	}
}

Test(proto, names)
{
	for (size_t t = 0; t < NTYPES; t++)
		cr_assert_not_null(mcfs_msg_name(all_types[t]));
	cr_assert_str_eq(mcfs_msg_name(MCFS_MSG_LOOKUP), "LOOKUP");
	cr_assert_str_eq(mcfs_msg_name(MCFS_MSG_PUT_START), "PUT_START");
	cr_assert_null(mcfs_msg_name(0));
	cr_assert_null(mcfs_msg_name(5));
	cr_assert_null(mcfs_msg_name(45));
	cr_assert_null(mcfs_msg_name(UINT16_MAX));
	/* Exactly the listed types are known. */
	for (uint32_t t = 0, n = 0; t <= UINT16_MAX; t++) {
		if (mcfs_msg_name((uint16_t)t))
			n++;
		if (t == UINT16_MAX)
			cr_assert_eq(n, NTYPES);
	}
}

/* The fields that matter, checked one by one for the messages the daemon lives on. */
Test(proto, fields_of_key_messages)
{
	struct mcfs_msg m, d;
	struct mcfs_buf b;

	fill(&m, MCFS_MSG_HELLO, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.proto, MCFS_PROTO_VERSION);
	cr_assert(blob_eq(d.name, m.name));
	cr_assert(blob_eq(d.name2, m.name2));
	cr_assert_eq(d.size, m.size);
	cr_assert_eq(d.flags, m.flags);
	cr_assert_eq(d.ino, 0);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_HELLO, true);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.node_id, 3);
	cr_assert_eq(d.proto, MCFS_PROTO_VERSION);
	cr_assert_eq(d.name.len, 0);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_RENAME, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.ino, 42);
	cr_assert_eq(d.ino2, 43);
	cr_assert(blob_eq(d.name, m.name));
	cr_assert(blob_eq(d.name2, m.name2));
	cr_assert_eq(d.flags, m.flags);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_SETATTR, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.valid, m.valid);
	cr_assert_eq(d.mode, m.mode);
	cr_assert_eq(d.uid, m.uid);
	cr_assert_eq(d.gid, m.gid);
	cr_assert_eq(d.atime_ns, 1);
	cr_assert_eq(d.mtime_ns, -2);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_STATFS, true);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.total, m.total);
	cr_assert_eq(d.free, m.free);
	cr_assert_eq(d.count, m.count);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_PUT_END, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.put_id, 77);
	cr_assert_eq(d.size, m.size);
	cr_assert_eq(d.crc, 0xdeadbeef);
	mcfs_buf_fini(&b);

	/* GET: the attr, checksum, lease and all eight replicas. */
	fill(&m, MCFS_MSG_GET, true);
	encode_decode(&m, &b, &d);
	cr_assert(attr_eq(&d.attr, &m.attr));
	cr_assert_eq(d.crc, m.crc);
	cr_assert_eq(d.lease_ms, 10000);
	cr_assert_eq(d.nrep, MCFS_MAX_REPLICAS);
	for (uint32_t i = 0; i < d.nrep; i++) {
		cr_assert_eq(d.rep[i].node_id, m.rep[i].node_id);
		cr_assert_eq(d.rep[i].seg_id, m.rep[i].seg_id);
		cr_assert_eq(d.rep[i].tier, m.rep[i].tier);
		cr_assert_eq(d.rep[i].state, m.rep[i].state);
		cr_assert_eq(d.rep[i].offset, m.rep[i].offset);
		cr_assert_eq(d.rep[i].len, m.rep[i].len);
		cr_assert_eq(d.rep[i].rkey, m.rep[i].rkey);
		cr_assert_eq(d.rep[i].access, m.rep[i].access);
		cr_assert_eq(d.rep[i].expiry_ms, m.rep[i].expiry_ms);
		cr_assert_eq(d.rep[i].mac, m.rep[i].mac);
		cr_assert(blob_eq(d.rep[i].addr, m.rep[i].addr));
		/* Borrowed from the frame, not copied. */
		cr_assert(d.rep[i].addr.p > b.data && d.rep[i].addr.p < b.data + b.len);
	}
	mcfs_buf_fini(&b);

	/* Zero replicas and empty strings are fine. */
	fill(&m, MCFS_MSG_PUT_START, true);
	m.nrep = 0;
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.nrep, 0);
	cr_assert_eq(d.put_id, 77);
	cr_assert_eq(d.version, 5);
	mcfs_buf_fini(&b);
	fill(&m, MCFS_MSG_GETXATTR, true);
	m.value = (struct mcfs_blob){NULL, 0};
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.value.len, 0);
	mcfs_buf_fini(&b);
}

/* Replicas decoded from d match m's, grant included. */
static void assert_reps_eq(const struct mcfs_msg *d, const struct mcfs_msg *m)
{
	cr_assert_eq(d->nrep, m->nrep);
	for (uint32_t i = 0; i < d->nrep; i++) {
		cr_assert_eq(d->rep[i].node_id, m->rep[i].node_id);
		cr_assert_eq(d->rep[i].seg_id, m->rep[i].seg_id);
		cr_assert_eq(d->rep[i].state, m->rep[i].state);
		cr_assert_eq(d->rep[i].access, m->rep[i].access);
		cr_assert_eq(d->rep[i].offset, m->rep[i].offset);
		cr_assert_eq(d->rep[i].len, m->rep[i].len);
		cr_assert_eq(d->rep[i].expiry_ms, m->rep[i].expiry_ms);
		cr_assert_eq(d->rep[i].mac, m->rep[i].mac);
		cr_assert(blob_eq(d->rep[i].addr, m->rep[i].addr));
	}
}

/* The cluster messages and the grant-carrying responses, field by field. */
Test(proto, fields_of_cluster_messages)
{
	static const uint8_t secret[192] = {1, 2, 3, [191] = 0xff};
	struct mcfs_msg m, d;
	struct mcfs_buf b;

	/* HELLO's response hands out the grant secret. */
	fill(&m, MCFS_MSG_HELLO, true);
	m.seg_id = 0x1234567;
	m.value = (struct mcfs_blob){secret, sizeof(secret)};
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.node_id, 3);
	cr_assert_eq(d.seg_id, 0x1234567);
	cr_assert(blob_eq(d.value, m.value));
	mcfs_buf_fini(&b);

	/* LEASE answers fresh grants. */
	fill(&m, MCFS_MSG_LEASE, true);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.lease_ms, 10000);
	assert_reps_eq(&d, &m);
	mcfs_buf_fini(&b);
	fill(&m, MCFS_MSG_LEASE, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.ino, 42);
	cr_assert_eq(d.version, 5);
	cr_assert_eq(d.nrep, 0);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_PUT_PLACE, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.put_id, 77);
	cr_assert_eq(d.size, m.size);
	cr_assert_eq(d.ino, 0);
	mcfs_buf_fini(&b);
	fill(&m, MCFS_MSG_PUT_PLACE, true);
	encode_decode(&m, &b, &d);
	assert_reps_eq(&d, &m);
	cr_assert_eq(d.put_id, 0);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_REPL_START, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.ino, 42);
	cr_assert_eq(d.version, 5);
	cr_assert_eq(d.count, 1000);
	cr_assert_eq(d.size, 0);
	mcfs_buf_fini(&b);
	fill(&m, MCFS_MSG_REPL_START, true);
	m.nrep = 2;
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.put_id, 77);
	assert_reps_eq(&d, &m);
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_REPL_END, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.put_id, 77);
	mcfs_buf_fini(&b);
	fill(&m, MCFS_MSG_REPL_END, true);
	encode_decode(&m, &b, &d);
	cr_assert_eq(b.len, MCFS_FRAME_HDR + 12); /* status and epoch only */
	mcfs_buf_fini(&b);

	fill(&m, MCFS_MSG_SOLE_LIST, false);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.cookie, 99);
	cr_assert_eq(d.count, 1000);
	mcfs_buf_fini(&b);
}

Test(proto, sole_entries)
{
	struct mcfs_buf ents, b;
	struct mcfs_msg m, d;
	struct mcfs_sole e;
	struct mcfs_rd r;
	int n = 0, ret;

	mcfs_buf_init(&ents);
	for (uint64_t i = 0; i < 3; i++) {
		struct mcfs_sole s = {
		    .cookie = 10 + i, .ino = 10 + i, .version = 100 + i, .size = (5ull << 32) + i};

		mcfs_sole_put(&ents, &s);
	}
	cr_assert_eq(ents.len, 3 * 32);
	fill(&m, MCFS_MSG_SOLE_LIST, true);
	m.count = 3;
	m.flags = MCFS_READDIR_EOF;
	m.value = (struct mcfs_blob){ents.data, (uint32_t)ents.len};
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.count, 3);
	cr_assert_eq(d.flags, MCFS_READDIR_EOF);
	mcfs_rd_init(&r, d.value.p, d.value.len);
	while ((ret = mcfs_sole_next(&r, &e)) == 1) {
		cr_assert_eq(e.cookie, 10 + (uint64_t)n);
		cr_assert_eq(e.ino, 10 + (uint64_t)n);
		cr_assert_eq(e.version, 100 + (uint64_t)n);
		cr_assert_eq(e.size, (5ull << 32) + (uint64_t)n);
		n++;
	}
	cr_assert_eq(ret, 0);
	cr_assert_eq(n, 3);
	/* Cut inside an entry: malformed; at a boundary: the end. */
	for (size_t cut = 1; cut < ents.len; cut++) {
		mcfs_rd_init(&r, ents.data, cut);
		while ((ret = mcfs_sole_next(&r, &e)) == 1)
			;
		cr_assert_eq(ret, cut % 32 ? -EBADMSG : 0, "cut at %zu", cut);
	}
	mcfs_buf_fini(&b);
	mcfs_buf_fini(&ents);
}

Test(proto, attr_wire_size)
{
	struct mcfs_attr a = sample_attr(9), back;
	struct mcfs_buf b;
	struct mcfs_rd r;

	mcfs_buf_init(&b);
	mcfs_attr_put(&b, &a);
	cr_assert_eq(b.len, MCFS_ATTR_WIRE);
	mcfs_rd_init(&r, b.data, b.len);
	mcfs_attr_get(&r, &back);
	cr_assert_not(r.err);
	cr_assert(attr_eq(&a, &back));
	mcfs_buf_fini(&b);
}

Test(proto, readdir_entries)
{
	static const char *const names[] = {"a", "blk_0042", "name with spaces", "\xff\x01"};
	struct mcfs_buf ents, b;
	struct mcfs_msg m, d;
	struct mcfs_dirent de;
	struct mcfs_rd r;
	char longname[MCFS_NAME_MAX + 1];
	int n = 0, ret;

	mcfs_buf_init(&ents);
	for (int i = 0; i < 4; i++) {
		struct mcfs_attr a = sample_attr(100 + i);

		mcfs_dirent_put(&ents, 1000 + i, names[i], strlen(names[i]), &a);
	}
	memset(longname, 'x', MCFS_NAME_MAX);
	longname[MCFS_NAME_MAX] = 0;
	{
		struct mcfs_attr a = sample_attr(200);

		mcfs_dirent_put(&ents, 2000, longname, MCFS_NAME_MAX, &a);
	}
	fill(&m, MCFS_MSG_READDIR, true);
	m.count = 5;
	m.flags = MCFS_READDIR_EOF;
	m.value = (struct mcfs_blob){ents.data, (uint32_t)ents.len};
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.count, 5);
	cr_assert_eq(d.flags, MCFS_READDIR_EOF);
	mcfs_rd_init(&r, d.value.p, d.value.len);
	while ((ret = mcfs_dirent_next(&r, &de)) == 1) {
		struct mcfs_attr want = sample_attr(n < 4 ? 100 + (uint64_t)n : 200);
		const char *nm = n < 4 ? names[n] : longname;

		cr_assert_eq(de.cookie, n < 4 ? 1000 + (uint64_t)n : 2000);
		cr_assert(blob_eq(de.name, blob(nm)));
		cr_assert(attr_eq(&de.attr, &want));
		n++;
	}
	cr_assert_eq(ret, 0);
	cr_assert_eq(n, 5);

	/* A list cut anywhere inside an entry is malformed; at an entry boundary it just ends. */
	for (size_t cut = 1; cut < ents.len; cut++) {
		mcfs_rd_init(&r, ents.data, cut);
		while ((ret = mcfs_dirent_next(&r, &de)) == 1)
			;
		if (cut == 8 + 4 + 1 + MCFS_ATTR_WIRE)
			cr_assert_eq(ret, 0);
		else if (ret == 0)
			cr_assert_eq(mcfs_rd_left(&r), 0);
		else
			cr_assert_eq(ret, -EBADMSG, "cut at %zu", cut);
	}
	mcfs_buf_fini(&b);

	/* An empty name, and a name over the limit. */
	mcfs_buf_fini(&ents);
	mcfs_buf_init(&ents);
	{
		struct mcfs_attr a = sample_attr(1);
		char toolong[MCFS_NAME_MAX + 1];

		mcfs_dirent_put(&ents, 1, "", 0, &a);
		mcfs_rd_init(&r, ents.data, ents.len);
		cr_assert_eq(mcfs_dirent_next(&r, &de), -EBADMSG);
		mcfs_buf_fini(&ents);
		memset(toolong, 'y', sizeof(toolong));
		mcfs_dirent_put(&ents, 1, toolong, sizeof(toolong), &a);
		mcfs_rd_init(&r, ents.data, ents.len);
		cr_assert_eq(mcfs_dirent_next(&r, &de), -EBADMSG);
	}
	mcfs_buf_fini(&ents);
}

Test(proto, batch_carries_frames)
{
	struct mcfs_buf inner, b;
	struct mcfs_msg m, d, sub;
	struct mcfs_frame_hdr h;
	size_t off = 0;
	int n = 0;

	mcfs_buf_init(&inner);
	fill(&m, MCFS_MSG_LOOKUP, false);
	cr_assert_eq(mcfs_msg_encode(&m, &inner), 0);
	fill(&m, MCFS_MSG_GETATTR, false);
	cr_assert_eq(mcfs_msg_encode(&m, &inner), 0);
	fill(&m, MCFS_MSG_BATCH, false);
	m.count = 2;
	m.value = (struct mcfs_blob){inner.data, (uint32_t)inner.len};
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.count, 2);
	while (off < d.value.len) {
		cr_assert_eq(mcfs_frame_parse(d.value.p + off, d.value.len - off, &h), 0);
		cr_assert_eq(mcfs_msg_decode_frame(d.value.p + off, MCFS_FRAME_HDR + h.len, &sub),
			     0);
		cr_assert_eq(sub.type, n ? MCFS_MSG_GETATTR : MCFS_MSG_LOOKUP);
		off += MCFS_FRAME_HDR + h.len;
		n++;
	}
	cr_assert_eq(n, 2);
	mcfs_buf_fini(&b);
	mcfs_buf_fini(&inner);
}

/* Several frames back to back, as a pipelining peer sends them. */
Test(proto, pipelined_frames)
{
	struct mcfs_buf b;
	struct mcfs_msg m, d;
	struct mcfs_frame_hdr h;
	size_t off = 0;
	int n = 0;

	mcfs_buf_init(&b);
	for (size_t t = 0; t < NTYPES; t++) {
		fill(&m, all_types[t], t % 2);
		m.req_id = t;
		if (all_types[t] == MCFS_MSG_SYMLINK || all_types[t] == MCFS_MSG_READLINK)
			m.value = blob("t");
		cr_assert_eq(mcfs_msg_encode(&m, &b), 0);
	}
	while (off < b.len) {
		cr_assert_eq(mcfs_frame_parse(b.data + off, b.len - off, &h), 0);
		cr_assert_eq(mcfs_msg_decode(&h, b.data + off + MCFS_FRAME_HDR, &d), 0);
		cr_assert_eq(d.req_id, (uint64_t)n);
		cr_assert_eq(d.type, all_types[n]);
		off += MCFS_FRAME_HDR + h.len;
		n++;
	}
	cr_assert_eq(off, b.len);
	cr_assert_eq(n, (int)NTYPES);
	mcfs_buf_fini(&b);
}

/* Every proper prefix of every payload is refused, and so is every prefix of the frame. */
Test(proto, truncated_everywhere)
{
	for (size_t t = 0; t < NTYPES; t++) {
		for (int resp = 0; resp < 2; resp++) {
			struct mcfs_msg m, d;
			struct mcfs_frame_hdr h;
			struct mcfs_buf b;

			fill(&m, all_types[t], resp);
			if (all_types[t] == MCFS_MSG_SYMLINK || all_types[t] == MCFS_MSG_READLINK)
				m.value = blob("target");
			mcfs_buf_init(&b);
			cr_assert_eq(mcfs_msg_encode(&m, &b), 0);
			cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), 0);
			for (uint32_t len = 0; len < h.len; len++) {
				struct mcfs_frame_hdr th = h;
				/* A copy of exactly len bytes, so that a read past it is caught. */
				uint8_t *p = malloc(len ? len : 1);

				memcpy(p, b.data + MCFS_FRAME_HDR, len);
				th.len = len;
				cr_assert_eq(mcfs_msg_decode(&th, p, &d), -EBADMSG,
					     "%s%s cut to %u of %u", mcfs_msg_name(m.type),
					     resp ? " response" : "", len, h.len);
				free(p);
			}
			for (size_t len = 0; len < b.len; len++)
				cr_assert_eq(mcfs_msg_decode_frame(b.data, len, &d), -EBADMSG);
			mcfs_buf_fini(&b);
		}
	}
}

Test(proto, trailing_bytes)
{
	for (size_t t = 0; t < NTYPES; t++) {
		for (int resp = 0; resp < 2; resp++) {
			struct mcfs_msg m, d;
			struct mcfs_buf b;
			struct mcfs_frame_hdr h;

			fill(&m, all_types[t], resp);
			if (all_types[t] == MCFS_MSG_SYMLINK || all_types[t] == MCFS_MSG_READLINK)
				m.value = blob("target");
			mcfs_buf_init(&b);
			cr_assert_eq(mcfs_msg_encode(&m, &b), 0);
			mcfs_buf_put_u8(&b, 0);
			mcfs_buf_set_u32(&b, 8, (uint32_t)(b.len - MCFS_FRAME_HDR));
			cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), 0);
			cr_assert_eq(mcfs_msg_decode(&h, b.data + MCFS_FRAME_HDR, &d), -EBADMSG,
				     "%s", mcfs_msg_name(m.type));
			/* A frame buffer longer than the frame is refused too. */
			mcfs_buf_set_u32(&b, 8, (uint32_t)(b.len - 1 - MCFS_FRAME_HDR));
			cr_assert_eq(mcfs_msg_decode_frame(b.data, b.len, &d), -EBADMSG);
			mcfs_buf_fini(&b);
		}
	}
}

/* A valid GETATTR request frame to corrupt. */
static void getattr_frame(struct mcfs_buf *b)
{
	struct mcfs_msg m;

	fill(&m, MCFS_MSG_GETATTR, false);
	mcfs_buf_init(b);
	cr_assert_eq(mcfs_msg_encode(&m, b), 0);
}

Test(frame, header_checks)
{
	struct mcfs_frame_hdr h;
	struct mcfs_msg d;
	struct mcfs_buf b;

	getattr_frame(&b);
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), 0);
	cr_assert_eq(h.len, 8);
	for (size_t len = 0; len < MCFS_FRAME_HDR; len++)
		cr_assert_eq(mcfs_frame_parse(b.data, len, &h), -EAGAIN);
	/* The header alone is enough to judge it; the payload need not be there. */
	cr_assert_eq(mcfs_frame_parse(b.data, MCFS_FRAME_HDR, &h), 0);

	b.data[0] ^= 1; /* magic */
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), -EPROTO);
	cr_assert_eq(mcfs_msg_decode_frame(b.data, b.len, &d), -EPROTO);
	b.data[0] ^= 1;
	b.data[4] = 2; /* version */
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), -EPROTO);
	b.data[4] = 0;
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), -EPROTO);
	b.data[4] = MCFS_FRAME_VERSION;
	b.data[5] = 0x02; /* an unknown flag */
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), -EPROTO);
	b.data[5] = 0;
	b.data[15] = 0x80; /* reserved */
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), -EPROTO);
	b.data[15] = 0;
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), 0);

	/* Oversized: refused from the header, before anything is buffered. */
	mcfs_buf_set_u32(&b, 8, MCFS_FRAME_MAX + 1);
	cr_assert_eq(mcfs_frame_parse(b.data, MCFS_FRAME_HDR, &h), -EMSGSIZE);
	cr_assert_eq(mcfs_msg_decode_frame(b.data, b.len, &d), -EMSGSIZE);
	mcfs_buf_set_u32(&b, 8, UINT32_MAX);
	cr_assert_eq(mcfs_frame_parse(b.data, MCFS_FRAME_HDR, &h), -EMSGSIZE);
	mcfs_buf_set_u32(&b, 8, MCFS_FRAME_MAX);
	cr_assert_eq(mcfs_frame_parse(b.data, MCFS_FRAME_HDR, &h), 0);
	cr_assert_eq(h.len, MCFS_FRAME_MAX);
	/* The header claims more than the buffer holds. */
	cr_assert_eq(mcfs_msg_decode_frame(b.data, b.len, &d), -EBADMSG);
	mcfs_buf_fini(&b);
}

Test(frame, begin_finish)
{
	struct mcfs_buf b;
	struct mcfs_frame_hdr h;
	size_t off;

	mcfs_buf_init(&b);
	mcfs_buf_put(&b, "xyz", 3);
	off = mcfs_frame_begin(&b, 77, MCFS_FRAME_RESP, 5);
	cr_assert_eq(off, 3);
	mcfs_buf_put(&b, "hello", 5);
	cr_assert_eq(mcfs_frame_finish(&b, off), 0);
	cr_assert_eq(mcfs_frame_parse(b.data + 3, b.len - 3, &h), 0);
	cr_assert_eq(h.type, 77);
	cr_assert_eq(h.flags, MCFS_FRAME_RESP);
	cr_assert_eq(h.len, 5);
	cr_assert_eq(h.req_id, 5);
	mcfs_buf_fini(&b);

	/* A payload past the limit cannot be finished. */
	mcfs_buf_init(&b);
	off = mcfs_frame_begin(&b, 1, 0, 1);
	cr_assert_eq(mcfs_buf_reserve(&b, MCFS_FRAME_MAX + 1), 0);
	memset(b.data + b.len, 0, MCFS_FRAME_MAX + 1);
	b.len += MCFS_FRAME_MAX + 1;
	cr_assert_eq(mcfs_frame_finish(&b, off), -EMSGSIZE);
	mcfs_buf_fini(&b);
}

Test(proto, unknown_type)
{
	static const uint16_t bad[] = {0, 5, 9, 25, 29, 45, 50, 1000, UINT16_MAX};
	struct mcfs_frame_hdr h;
	struct mcfs_msg m, d;
	struct mcfs_buf b;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		getattr_frame(&b);
		b.data[6] = (uint8_t)bad[i];
		b.data[7] = (uint8_t)(bad[i] >> 8);
		cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), 0);
		cr_assert_eq(mcfs_msg_decode(&h, b.data + MCFS_FRAME_HDR, &d), -ENOTSUP, "type %u",
			     bad[i]);
		cr_assert_eq(mcfs_msg_decode_frame(b.data, b.len, &d), -ENOTSUP);
		/* And they cannot be encoded; out is left as it was. */
		fill(&m, bad[i], false);
		cr_assert_eq(mcfs_msg_encode(&m, &b), -EINVAL);
		cr_assert_eq(b.len, MCFS_FRAME_HDR + 8);
		mcfs_buf_fini(&b);
	}
}

/* A LOOKUP request payload with a hand-made name length. */
static int decode_lookup_with_name(uint32_t claimed, uint32_t present)
{
	struct mcfs_frame_hdr h = {.version = MCFS_FRAME_VERSION, .type = MCFS_MSG_LOOKUP};
	struct mcfs_msg d;
	struct mcfs_buf b;
	int ret;

	mcfs_buf_init(&b);
	mcfs_buf_put_u64(&b, 1);
	mcfs_buf_put_u32(&b, claimed);
	for (uint32_t i = 0; i < present; i++)
		mcfs_buf_put_u8(&b, 'n');
	h.len = (uint32_t)b.len;
	ret = mcfs_msg_decode(&h, b.data, &d);
	if (!ret)
		cr_assert_eq(d.name.len, claimed);
	mcfs_buf_fini(&b);
	return ret;
}

Test(proto, bad_string_lengths)
{
	cr_assert_eq(decode_lookup_with_name(3, 3), 0);
	cr_assert_eq(decode_lookup_with_name(0, 0), 0);
	cr_assert_eq(decode_lookup_with_name(MCFS_NAME_MAX, MCFS_NAME_MAX), 0);
	/* Beyond the frame. */
	cr_assert_eq(decode_lookup_with_name(4, 3), -EBADMSG);
	cr_assert_eq(decode_lookup_with_name(1000, 3), -EBADMSG);
	cr_assert_eq(decode_lookup_with_name(UINT32_MAX, 3), -EBADMSG);
	/* Over the name limit, though all there. */
	cr_assert_eq(decode_lookup_with_name(MCFS_NAME_MAX + 1, MCFS_NAME_MAX + 1), -EBADMSG);
	/* Shorter than the bytes that follow: trailing bytes. */
	cr_assert_eq(decode_lookup_with_name(2, 3), -EBADMSG);
}

Test(proto, symlink_target_limit)
{
	char *target = malloc(MCFS_PATH_MAX + 2);
	struct mcfs_msg m, d;
	struct mcfs_buf b;
	struct mcfs_frame_hdr h;

	memset(target, 't', MCFS_PATH_MAX + 1);
	target[MCFS_PATH_MAX] = 0;
	fill(&m, MCFS_MSG_SYMLINK, false);
	m.value = blob(target);
	encode_decode(&m, &b, &d);
	cr_assert_eq(d.value.len, MCFS_PATH_MAX);
	mcfs_buf_fini(&b);

	/* One byte more cannot be encoded, nor decoded when a peer sends it. */
	target[MCFS_PATH_MAX] = 't';
	target[MCFS_PATH_MAX + 1] = 0;
	m.value = blob(target);
	mcfs_buf_init(&b);
	cr_assert_eq(mcfs_msg_encode(&m, &b), -ENAMETOOLONG);
	cr_assert_eq(b.len, 0);
	m.type = MCFS_MSG_SETXATTR; /* a value of the same length, in a field without that limit */
	cr_assert_eq(mcfs_msg_encode(&m, &b), 0);
	/* Relabel it SYMLINK: ino, name, value... the target field now holds 4096 bytes. */
	b.data[6] = MCFS_MSG_SYMLINK;
	cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), 0);
	cr_assert_eq(mcfs_msg_decode(&h, b.data + MCFS_FRAME_HDR, &d), -EBADMSG);
	mcfs_buf_fini(&b);
	free(target);
}

/*
 * A GET response by hand: a replica count of nrep, then (at most
 * MCFS_MAX_REPLICAS + 1) replicas with an address of addr_len bytes.
 */
static int decode_get_resp(uint32_t nrep, uint32_t addr_len)
{
	struct mcfs_frame_hdr h = {
	    .version = MCFS_FRAME_VERSION, .flags = MCFS_FRAME_RESP, .type = MCFS_MSG_GET};
	struct mcfs_attr a = sample_attr(1);
	struct mcfs_msg d;
	struct mcfs_buf b;
	int ret;

	mcfs_buf_init(&b);
	mcfs_buf_put_u32(&b, 0);
	mcfs_buf_put_u64(&b, 1);
	mcfs_attr_put(&b, &a);
	mcfs_buf_put_u32(&b, 0x1234); /* crc */
	mcfs_buf_put_u64(&b, 500);    /* lease */
	mcfs_buf_put_u32(&b, nrep);
	for (uint32_t i = 0; i < nrep && i <= MCFS_MAX_REPLICAS; i++) {
		mcfs_buf_put_u64(&b, i);
		mcfs_buf_put_u32(&b, 0);
		mcfs_buf_put_u8(&b, MCFS_TIER_DRAM);
		mcfs_buf_put_u8(&b, MCFS_REP_COMPLETE);
		mcfs_buf_put_u8(&b, 1); /* access */
		mcfs_buf_put_u8(&b, 0);
		mcfs_buf_put_u64(&b, 0);
		mcfs_buf_put_u64(&b, 4096);
		mcfs_buf_put_u64(&b, 0);
		mcfs_buf_put_u64(&b, 12345); /* expiry_ms */
		mcfs_buf_put_u64(&b, 67890); /* mac */
		mcfs_buf_put_u32(&b, addr_len);
		for (uint32_t j = 0; j < addr_len; j++)
			mcfs_buf_put_u8(&b, 'a');
	}
	h.len = (uint32_t)b.len;
	ret = mcfs_msg_decode(&h, b.data, &d);
	if (!ret) {
		cr_assert_eq(d.nrep, nrep);
		cr_assert_eq(d.lease_ms, 500);
		for (uint32_t i = 0; i < nrep; i++) {
			cr_assert_eq(d.rep[i].node_id, i);
			cr_assert_eq(d.rep[i].access, 1);
			cr_assert_eq(d.rep[i].len, 4096);
			cr_assert_eq(d.rep[i].expiry_ms, 12345);
			cr_assert_eq(d.rep[i].mac, 67890);
			cr_assert_eq(d.rep[i].addr.len, addr_len);
		}
	}
	mcfs_buf_fini(&b);
	return ret;
}

Test(proto, replica_limits)
{
	struct mcfs_msg m;
	struct mcfs_buf b;
	char longaddr[MCFS_NAME_MAX + 2];

	cr_assert_eq(decode_get_resp(0, 0), 0);
	cr_assert_eq(decode_get_resp(MCFS_MAX_REPLICAS, 14), 0);
	cr_assert_eq(decode_get_resp(MCFS_MAX_REPLICAS, MCFS_NAME_MAX), 0);
	cr_assert_eq(decode_get_resp(MCFS_MAX_REPLICAS + 1, 14), -EBADMSG);
	cr_assert_eq(decode_get_resp(UINT32_MAX, 0), -EBADMSG);
	cr_assert_eq(decode_get_resp(1, MCFS_NAME_MAX + 1), -EBADMSG);

	mcfs_buf_init(&b);
	fill(&m, MCFS_MSG_GET, true);
	m.nrep = MCFS_MAX_REPLICAS + 1;
	cr_assert_eq(mcfs_msg_encode(&m, &b), -EINVAL);
	cr_assert_eq(b.len, 0);
	fill(&m, MCFS_MSG_GET, true);
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = 0;
	m.rep[3].addr = blob(longaddr);
	cr_assert_eq(mcfs_msg_encode(&m, &b), -ENAMETOOLONG);
	cr_assert_eq(b.len, 0);
	mcfs_buf_fini(&b);
}

Test(proto, error_responses)
{
	struct mcfs_msg m, d;
	struct mcfs_buf b;
	struct mcfs_frame_hdr h;

	/* An error carries status and epoch only, whatever else is set. */
	fill(&m, MCFS_MSG_GET, true);
	m.status = -ENOENT;
	m.epoch = 99;
	encode_decode(&m, &b, &d);
	cr_assert_eq(b.len, MCFS_FRAME_HDR + 12);
	cr_assert_eq(d.status, -ENOENT);
	cr_assert_eq(d.epoch, 99);
	cr_assert_eq(d.nrep, 0);
	cr_assert_eq(d.attr.ino, 0);
	/* Anything after them is malformed. */
	mcfs_buf_put_u64(&b, 0);
	mcfs_buf_set_u32(&b, 8, 20);
	cr_assert_eq(mcfs_msg_decode_frame(b.data, b.len, &d), -EBADMSG);
	mcfs_buf_fini(&b);

	/* Status is 0 or a negative errno: not positive, not below -4095. */
	for (int i = 0; i < 3; i++) {
		static const int32_t st[] = {1, -4096, INT32_MIN};

		fill(&m, MCFS_MSG_UNLINK, true);
		m.status = -EIO;
		mcfs_buf_init(&b);
		cr_assert_eq(mcfs_msg_encode(&m, &b), 0);
		mcfs_buf_set_u32(&b, MCFS_FRAME_HDR, (uint32_t)st[i]);
		cr_assert_eq(mcfs_frame_parse(b.data, b.len, &h), 0);
		cr_assert_eq(mcfs_msg_decode(&h, b.data + MCFS_FRAME_HDR, &d), -EBADMSG,
			     "status %d", st[i]);
		mcfs_buf_set_u32(&b, MCFS_FRAME_HDR, (uint32_t)-4095);
		cr_assert_eq(mcfs_msg_decode(&h, b.data + MCFS_FRAME_HDR, &d), 0);
		cr_assert_eq(d.status, -4095);
		mcfs_buf_fini(&b);
	}
}

Test(proto, encode_too_long_names)
{
	char longname[MCFS_NAME_MAX + 2];
	struct mcfs_msg m;
	struct mcfs_buf b;

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	mcfs_buf_init(&b);
	/* Earlier frames in the buffer are kept intact. */
	fill(&m, MCFS_MSG_GETATTR, false);
	cr_assert_eq(mcfs_msg_encode(&m, &b), 0);

	fill(&m, MCFS_MSG_LOOKUP, false);
	m.name = blob(longname);
	cr_assert_eq(mcfs_msg_encode(&m, &b), -ENAMETOOLONG);
	fill(&m, MCFS_MSG_RENAME, false);
	m.name2 = blob(longname);
	cr_assert_eq(mcfs_msg_encode(&m, &b), -ENAMETOOLONG);
	fill(&m, MCFS_MSG_HELLO, false);
	m.name = blob(longname);
	cr_assert_eq(mcfs_msg_encode(&m, &b), -ENAMETOOLONG);
	fill(&m, MCFS_MSG_SETXATTR, false);
	m.name = blob(longname);
	cr_assert_eq(mcfs_msg_encode(&m, &b), -ENAMETOOLONG);
	cr_assert_eq(b.len, MCFS_FRAME_HDR + 8);
	cr_assert_eq(mcfs_msg_decode_frame(b.data, b.len, &m), 0);
	cr_assert_eq(m.type, MCFS_MSG_GETATTR);

	/* Exactly at the limit is fine. */
	longname[MCFS_NAME_MAX] = 0;
	fill(&m, MCFS_MSG_LOOKUP, false);
	m.name = blob(longname);
	cr_assert_eq(mcfs_msg_encode(&m, &b), 0);
	mcfs_buf_fini(&b);
}

Test(proto, encode_too_big)
{
	uint8_t *big = calloc(1, MCFS_FRAME_MAX);
	struct mcfs_msg m;
	struct mcfs_buf b;

	cr_assert_not_null(big);
	mcfs_buf_init(&b);
	fill(&m, MCFS_MSG_SETXATTR, false);
	m.value = (struct mcfs_blob){big, MCFS_FRAME_MAX};
	cr_assert_eq(mcfs_msg_encode(&m, &b), -EMSGSIZE);
	cr_assert_eq(b.len, 0);
	cr_assert_not(b.oom);
	mcfs_buf_fini(&b);
	free(big);
}

/* Catalog records: every kind round-trips; truncations, bad kinds and oversized fields are refused. */
Test(proto, records)
{
	struct mcfs_rec in, out;
	struct mcfs_buf b;
	struct mcfs_rd r;
	static const uint8_t xattrs[] = {6, 0, 0, 0, 'u', 's', 'e', 'r', '.', 'a', 1, 0, 0, 0, 'v'};

	memset(&in, 0, sizeof(in));
	in.kind = MCFS_REC_FILE;
	in.ino = 77;
	in.version = 9;
	in.parent = 5;
	in.name.p = (const uint8_t *)"blk_1";
	in.name.len = 5;
	in.mode = 0100644;
	in.uid = 1;
	in.gid = 2;
	in.flags = 2;
	in.replica_num = 2;
	in.mtime_ns = 123;
	in.ctime_ns = 456;
	in.pin_wall_ms = 789;
	in.size = 5000;
	in.crc = 0xabcd;
	in.xattrs.p = xattrs;
	in.xattrs.len = sizeof(xattrs);
	in.nrep = 1;
	in.rep[0].offset = 4096;
	in.rep[0].len = 8192;
	in.rep[0].tier = MCFS_TIER_DRAM;
	mcfs_buf_init(&b);
	mcfs_rec_put(&b, &in);
	in.kind = MCFS_REC_DROP;
	in.ino = 78;
	mcfs_rec_put(&b, &in);
	in.kind = MCFS_REC_LINK;
	in.ino = 79;
	in.nrep = 0;
	in.target.p = (const uint8_t *)"a/b";
	in.target.len = 3;
	mcfs_rec_put(&b, &in);

	mcfs_rd_init(&r, b.data, b.len);
	cr_assert_eq(mcfs_rec_next(&r, &out), 1);
	cr_assert_eq(out.kind, MCFS_REC_FILE);
	cr_assert_eq(out.ino, 77);
	cr_assert_eq(out.version, 9);
	cr_assert_eq(out.parent, 5);
	cr_assert_eq(out.name.len, 5);
	cr_assert_eq(memcmp(out.name.p, "blk_1", 5), 0);
	cr_assert_eq(out.size, 5000);
	cr_assert_eq(out.crc, 0xabcd);
	cr_assert_eq(out.pin_wall_ms, 789);
	cr_assert_eq(out.nrep, 1);
	cr_assert_eq(out.rep[0].offset, 4096);
	cr_assert_eq(out.rep[0].len, 8192);
	cr_assert_eq(out.xattrs.len, sizeof(xattrs));
	{
		struct mcfs_rd xr;
		struct mcfs_blob n, v;

		mcfs_rd_init(&xr, out.xattrs.p, out.xattrs.len);
		cr_assert_eq(mcfs_xattr_next(&xr, &n, &v), 1);
		cr_assert_eq(n.len, 6);
		cr_assert_eq(v.len, 1);
		cr_assert_eq(mcfs_xattr_next(&xr, &n, &v), 0);
	}
	cr_assert_eq(mcfs_rec_next(&r, &out), 1);
	cr_assert_eq(out.kind, MCFS_REC_DROP);
	cr_assert_eq(out.ino, 78);
	cr_assert_eq(mcfs_rec_next(&r, &out), 1);
	cr_assert_eq(out.kind, MCFS_REC_LINK);
	cr_assert_eq(out.target.len, 3);
	cr_assert_eq(mcfs_rec_next(&r, &out), 0);

	/* Every truncation of the list fails cleanly, never reads past it. */
	for (size_t len = 1; len < b.len; len++) {
		int ret = 1;

		mcfs_rd_init(&r, b.data, len);
		while (ret == 1)
			ret = mcfs_rec_next(&r, &out);
		if (ret == 0)
			cr_assert(len == 4 + mcfs_get_u32le(b.data) ||
				      len ==
					  8 + mcfs_get_u32le(b.data) +
					      mcfs_get_u32le(b.data + 4 + mcfs_get_u32le(b.data)),
				  "a cut at %zu parsed as complete", len);
		else
			cr_assert_eq(ret, -EBADMSG);
	}
	/* An unknown kind: that record is skipped, the next one still reads. */
	b.data[4] = 9;
	mcfs_rd_init(&r, b.data, b.len);
	cr_assert_eq(mcfs_rec_next(&r, &out), -EINVAL);
	cr_assert_eq(mcfs_rec_next(&r, &out), 1);
	cr_assert_eq(out.ino, 78);
	/* A length past the limit breaks the list. */
	mcfs_buf_set_u32(&b, 0, MCFS_REC_MAX + 1);
	mcfs_rd_init(&r, b.data, b.len);
	cr_assert_eq(mcfs_rec_next(&r, &out), -EBADMSG);
	mcfs_buf_fini(&b);
}
