// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of meta/etcd.c, the etcd v3 JSON-gateway client.
 *
 * suite etcd: the pure parsers on replies recorded from a real etcd 3.4.23
 * (missing fields, errors, streams), base64, endpoint lists, mutated and
 * truncated replies (must fail cleanly, never crash), and the transport
 * against small fake HTTP servers (garbage, 503 failover, refused, silent).
 *
 * suite etcd_real: a real /usr/bin/etcd on free 127.0.0.1 ports with a temp
 * data dir (skipped when it is not installed): leases, keys with
 * pagination, fenced writes, elections with two candidates, observe. The
 * fixture's fini stops etcd by PID and removes its data dir even when a test
 * fails; etcd also gets SIGKILL if the test process dies.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "meta/etcd.h"
#include "meta/etcd_i.h"
#include "tests/unit/etcd_server.h"

/* ---------------------------------------------------------------------------
 * Replies recorded from etcd 3.4.23's gateway (curl -d ... against etcd --data-dir tmp)
 */

/* POST /v3/lease/grant {"TTL":10} */
static const char rec_grant[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":"
    "\"4111120239571277829\",\"TTL\":\"10\"}";
/* POST /v3/kv/put on a fresh store */
static const char rec_put[] = "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
			      "\"13668033151171901709\",\"revision\":\"2\",\"raft_term\":\"2\"}}";
/* POST /v3/kv/range {"key":"foo"} */
static const char rec_range_one[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"2\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":"
    "\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":"
    "\"YmFy\"}],\"count\":\"1\"}";
/* POST /v3/kv/range {"key":"nope"}: no kvs, no count */
static const char rec_range_none[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"2\",\"raft_term\":\"2\"}}";
/* a key put with no value: "value" is left out */
static const char rec_range_empty_value[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"3\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":"
    "\"ZW1wdHk=\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\"}],"
    "\"count\":\"1\"}";
/* POST /v3/kv/range over p/ with limit 2 (5 keys) */
static const char rec_range_page[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"8\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":"
    "\"cC8x\",\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\",\"value\":"
    "\"djE=\"},{\"key\":\"cC8y\",\"create_revision\":\"5\",\"mod_revision\":\"5\",\"version\":"
    "\"1\",\"value\":\"djI=\"}],\"more\":true,\"count\":\"5\"}";
/* POST /v3/kv/deleterange: 5 deleted, then again: nothing ("deleted" left out) */
static const char rec_delete_5[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"9\",\"raft_term\":\"2\"},\"deleted\":\"5\"}";
static const char rec_delete_0[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"9\",\"raft_term\":\"2\"}}";
/* POST /v3/lease/keepalive: a stream of one message; for a revoked lease TTL is left out */
static const char rec_keepalive[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"2\",\"raft_term\":\"2\"},\"ID\":"
    "\"4111120239571277834\",\"TTL\":\"5\"}}\n";
static const char rec_keepalive_gone[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"2\",\"raft_term\":\"2\"},\"ID\":\"12345\"}}\n";
/* POST /v3/kv/txn: guard held, then guard failed ("succeeded" left out) */
static const char rec_txn_ok[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"23\",\"raft_term\":\"2\"},\"succeeded\":true,"
    "\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"23\"}}}]}";
static const char rec_txn_failed[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"23\",\"raft_term\":\"2\"}}";
/* POST /v3/election/campaign */
static const char rec_campaign[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"10\",\"raft_term\":\"2\"},\"leader\":{\"name\":"
    "\"ZWw=\",\"key\":\"ZWwvMzkwZGEyMTM4NDkwOTgxYg==\",\"rev\":\"10\",\"lease\":"
    "\"4111120239571277851\"}}";
/* POST /v3/election/leader */
static const char rec_leader[] =
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"10\",\"raft_term\":\"2\"},\"kv\":{\"key\":"
    "\"ZWwvMzkwZGEyMTM4NDkwOTgxYg==\",\"create_revision\":\"10\",\"mod_revision\":\"10\","
    "\"version\":\"1\",\"value\":\"bm9kZTE=\",\"lease\":\"4111120239571277851\"}}";
/* POST /v3/watch on w/: created, put w/a=x, put w/b (empty), delete w/a */
static const char rec_watch[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"18\",\"raft_term\":\"2\"},\"created\":true}}\n"
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"19\",\"raft_term\":\"2\"},\"events\":[{\"kv\":{"
    "\"key\":\"dy9h\",\"create_revision\":\"19\",\"mod_revision\":\"19\",\"version\":\"1\","
    "\"value\":\"eA==\"}}]}}\n"
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"20\",\"raft_term\":\"2\"},\"events\":[{\"kv\":{"
    "\"key\":\"dy9i\",\"create_revision\":\"20\",\"mod_revision\":\"20\",\"version\":\"1\"}}]}}"
    "\n"
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"21\",\"raft_term\":\"2\"},\"events\":[{\"type\":"
    "\"DELETE\",\"kv\":{\"key\":\"dy9h\",\"mod_revision\":\"21\"}}]}}\n";
/* a watch from a compacted revision: created, then cancelled (header revision left out) */
static const char rec_watch_compacted[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"revision\":\"21\",\"raft_term\":\"2\"},\"created\":true}}\n"
    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
    "\"13668033151171901709\",\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":"
    "\"18\"}}\n";
/* errors */
static const char rec_err_badjson[] = /* HTTP 400 */
    "{\"error\":\"invalid character 'g' looking for beginning of value\",\"message\":\"invalid "
    "character 'g' looking for beginning of value\",\"code\":3}";
static const char rec_err_lease[] = /* HTTP 404, lease revoke */
    "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested "
    "lease not found\",\"code\":5}";
static const char rec_err_noleader[] = /* HTTP 500, election leader */
    "{\"error\":\"election: no leader\",\"message\":\"election: no leader\",\"code\":2}";
static const char rec_err_campaign_lease[] = /* HTTP 500, campaign with an unknown lease */
    "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested "
    "lease not found\",\"code\":2}";
static const char rec_err_compacted[] = /* HTTP 400 */
    "{\"error\":\"etcdserver: mvcc: required revision has been compacted\",\"message\":"
    "\"etcdserver: mvcc: required revision has been compacted\",\"code\":11}";
static const char rec_err_notfound[] = "Not Found\n"; /* HTTP 404 text/plain: unknown path */

/* ---------------------------------------------------------------------------
 * Pure parsers
 */

static json_t *load(const char *s)
{
	json_t *j = json_loads(s, JSON_ALLOW_NUL, NULL);

	cr_assert(j, "fixture is not JSON: %s", s);
	return j;
}

Test(etcd, parse_i64)
{
	static const struct {
		const char *s;
		int64_t v;
	} ok[] = {
	    {"0", 0},
	    {"12", 12},
	    {"-5", -5},
	    {"4111120239571277851", 4111120239571277851LL},
	    {"9223372036854775807", INT64_MAX},
	    {"-9223372036854775808", INT64_MIN},
	    {"007", 7},
	};
	static const char *const bad[] = {"",	"-",   "12a", "9223372036854775808",  " 1",
					  "+1", "1.5", "0x1", "-9223372036854775809", "1 "};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(mcfs_etcd_parse_i64(ok[i].s, &v), 0, "'%s'", ok[i].s);
		cr_assert_eq(v, ok[i].v, "'%s'", ok[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mcfs_etcd_parse_i64(bad[i], &v), -EBADMSG, "'%s' accepted", bad[i]);
	cr_assert_eq(mcfs_etcd_parse_i64(NULL, &v), -EBADMSG);
}

Test(etcd, json_i64_and_bool)
{
	json_t *j = load("{\"s\":\"12\",\"i\":7,\"n\":null,\"b\":true,\"f\":1.5,\"x\":\"abc\","
			 "\"o\":{},\"neg\":\"-3\",\"z\":\"1\\u00002\"}");
	int64_t v = 99;
	bool b = true;

	cr_assert_eq(mcfs_etcd_json_i64(j, "s", &v), 0);
	cr_assert_eq(v, 12);
	cr_assert_eq(mcfs_etcd_json_i64(j, "i", &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(mcfs_etcd_json_i64(j, "neg", &v), 0);
	cr_assert_eq(v, -3);
	v = 99;
	cr_assert_eq(mcfs_etcd_json_i64(j, "missing", &v), 0, "missing is 0");
	cr_assert_eq(v, 0);
	v = 99;
	cr_assert_eq(mcfs_etcd_json_i64(j, "n", &v), 0, "null is 0");
	cr_assert_eq(v, 0);
	cr_assert_eq(mcfs_etcd_json_i64(j, "b", &v), -EBADMSG);
	cr_assert_eq(mcfs_etcd_json_i64(j, "f", &v), -EBADMSG);
	cr_assert_eq(mcfs_etcd_json_i64(j, "x", &v), -EBADMSG);
	cr_assert_eq(mcfs_etcd_json_i64(j, "o", &v), -EBADMSG);
	cr_assert_eq(mcfs_etcd_json_i64(j, "z", &v), -EBADMSG, "embedded NUL");
	cr_assert_eq(mcfs_etcd_json_i64(NULL, "s", &v), -EBADMSG);

	cr_assert_eq(mcfs_etcd_json_bool(j, "b", &b), 0);
	cr_assert(b);
	cr_assert_eq(mcfs_etcd_json_bool(j, "missing", &b), 0);
	cr_assert_not(b, "missing is false");
	cr_assert_eq(mcfs_etcd_json_bool(j, "s", &b), -EBADMSG);
	json_decref(j);
}

Test(etcd, base64_vectors)
{
	/* RFC 4648 section 10 */
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"",	      "Zg==",	  "Zm8=",    "Zm9v",
					  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

	for (size_t i = 0; i < 7; i++) {
		char *s = mcfs_etcd_b64_encode(plain[i], strlen(plain[i]));
		uint8_t *d = NULL;
		size_t n = 99;

		cr_assert_str_eq(s, enc[i]);
		cr_assert_eq(mcfs_etcd_b64_decode(enc[i], strlen(enc[i]), &d, &n), 0, "%s", enc[i]);
		cr_assert_eq(n, strlen(plain[i]));
		cr_assert_str_eq((char *)d, plain[i], "decoded text is NUL-terminated");
		free(s);
		free(d);
	}
}

Test(etcd, base64_round_trip)
{
	uint8_t src[300];

	srand(42);
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)rand();
	src[0] = 0;
	src[1] = 0xff;
	for (size_t len = 0; len <= sizeof(src); len++) {
		char *s = mcfs_etcd_b64_encode(src, len);
		uint8_t *d = NULL;
		size_t n = 0;

		cr_assert(s);
		cr_assert_eq(strlen(s), (len + 2) / 3 * 4);
		cr_assert_eq(mcfs_etcd_b64_decode(s, strlen(s), &d, &n), 0, "len %zu", len);
		cr_assert_eq(n, len);
		cr_assert(!memcmp(d, src, len), "len %zu differs", len);
		cr_assert_eq(d[n], 0);
		free(s);
		free(d);
	}
}

Test(etcd, base64_rejects)
{
	static const char *const bad[] = {
	    "Zg=",		/* length not a multiple of 4 */
	    "Zg",		/* padding missing (Go's StdEncoding wants it) */
	    "Z",	"Z===", /* three pads */
	    "====",	"Zh==", /* unused bits set: not canonical */
	    "Zm9=",	"=Zm8", /* pad first */
	    "Zm=8",		/* pad in the middle */
	    "Zm8=Zm8=",		/* pad before the end */
	    "Zm 8",	"Zm-8", /* URL alphabet */
	    "Zm_8",	"Zm8\n", "\xc3\xa9Zm8", "Zm8\0",
	};
	uint8_t *d = (uint8_t *)"untouched";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = 12345;
		size_t len = strlen(bad[i]);

		if (!strcmp(bad[i], "Zm8\0"))
			len = 4;
		cr_assert_eq(mcfs_etcd_b64_decode(bad[i], len, &d, &n), -EINVAL, "'%s' accepted",
			     bad[i]);
		cr_assert_str_eq((char *)d, "untouched");
		cr_assert_eq(n, 12345);
	}
	cr_assert_eq(mcfs_etcd_b64_decode(NULL, 0, &d, &(size_t){0}), -EINVAL);
}

Test(etcd, grpc_codes)
{
	cr_assert_eq(mcfs_etcd_grpc_errno(0, NULL), 0);
	cr_assert_eq(mcfs_etcd_grpc_errno(1, NULL), -ECANCELED);
	cr_assert_eq(mcfs_etcd_grpc_errno(2, "election: no leader"), -ENOENT);
	cr_assert_eq(mcfs_etcd_grpc_errno(2, "election: not leader"), -EPERM);
	cr_assert_eq(mcfs_etcd_grpc_errno(2, "something"), -EIO);
	cr_assert_eq(mcfs_etcd_grpc_errno(2, NULL), -EIO);
	cr_assert_eq(mcfs_etcd_grpc_errno(3, NULL), -EINVAL);
	cr_assert_eq(mcfs_etcd_grpc_errno(4, NULL), -ETIMEDOUT);
	cr_assert_eq(mcfs_etcd_grpc_errno(5, NULL), -ENOENT);
	cr_assert_eq(mcfs_etcd_grpc_errno(6, NULL), -EEXIST);
	cr_assert_eq(mcfs_etcd_grpc_errno(7, NULL), -EPERM);
	cr_assert_eq(mcfs_etcd_grpc_errno(8, NULL), -ENOSPC);
	cr_assert_eq(mcfs_etcd_grpc_errno(9, NULL), -EPERM);
	cr_assert_eq(mcfs_etcd_grpc_errno(10, NULL), -EAGAIN);
	cr_assert_eq(mcfs_etcd_grpc_errno(11, NULL), -ERANGE);
	cr_assert_eq(mcfs_etcd_grpc_errno(12, NULL), -ENOTSUP);
	cr_assert_eq(mcfs_etcd_grpc_errno(13, NULL), -EIO);
	cr_assert_eq(mcfs_etcd_grpc_errno(14, "etcdserver: no leader"), -EAGAIN,
		     "raft's no leader is not the election's");
	cr_assert_eq(mcfs_etcd_grpc_errno(15, NULL), -EIO);
	cr_assert_eq(mcfs_etcd_grpc_errno(16, NULL), -EACCES);
	cr_assert_eq(mcfs_etcd_grpc_errno(99, NULL), -EIO);
}

Test(etcd, error_replies)
{
	static const struct {
		long http;
		const char *body;
		int rc;
		const char *msg;
	} cases[] = {
	    {400, rec_err_badjson, -EINVAL, "invalid character 'g' looking for beginning"},
	    {404, rec_err_lease, -ENOENT, "etcdserver: requested lease not found"},
	    {500, rec_err_noleader, -ENOENT, "election: no leader"},
	    {500, rec_err_campaign_lease, -ENOENT, "etcdserver: requested lease not found"},
	    {400, rec_err_compacted, -ERANGE, "etcdserver: mvcc: required revision has been"},
	    {404, rec_err_notfound, -ENOTSUP, "HTTP 404: Not Found"},
	    {503, "{\"error\":\"etcdserver: request timed out\",\"code\":14}", -EAGAIN,
	     "etcdserver: request timed out"},
	    {503, "Service Unavailable", -EAGAIN, "HTTP 503: Service Unavailable"},
	    {502, "", -EIO, "HTTP 502 with no body"},
	    {500, "<html>oops</html>", -EIO, "HTTP 500: <html>oops</html>"},
	    {400, "{\"error\":\"x\"}", -EINVAL, "x"}, /* no code: from the HTTP status */
	    {418, "{\"error\":[1,2]}", -EBADMSG, "HTTP 418: {\"error\":[1,2]}"},
	    {200,
	     "{\"error\":{\"grpc_code\":5,\"http_code\":404,\"message\":\"gone\","
	     "\"http_status\":\"Not Found\"}}",
	     -ENOENT, "gone"},
	    {200, "{\"error\":{\"http_code\":503}}", -EAGAIN, "error without a message"},
	    {500, "{\"error\":\"line1\\nline2\\u0001\",\"code\":\"13\"}", -EIO, "line1"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[128] = "junk";
		int rc = mcfs_etcd_parse_error(cases[i].http, cases[i].body, strlen(cases[i].body),
					       msg, sizeof(msg));

		cr_assert_eq(rc, cases[i].rc, "case %zu: %d", i, rc);
		cr_assert(!strncmp(msg, cases[i].msg, strlen(cases[i].msg)), "case %zu: '%s'", i,
			  msg);
	}
	/* a tiny message buffer is cut, not overrun */
	{
		char msg[4];

		mcfs_etcd_parse_error(500, rec_err_noleader, strlen(rec_err_noleader), msg,
				      sizeof(msg));
		cr_assert_str_eq(msg, "ele");
		cr_assert_eq(mcfs_etcd_parse_error(500, NULL, 0, NULL, 0), -EIO);
	}
}

Test(etcd, parse_reply)
{
	json_t *j = (json_t *)1;
	char msg[128];

	cr_assert_eq(mcfs_etcd_parse_reply(200, rec_put, strlen(rec_put), &j, msg, sizeof(msg)), 0);
	cr_assert(json_is_object(j));
	json_decref(j);
	cr_assert_eq(
	    mcfs_etcd_parse_reply(404, rec_err_lease, strlen(rec_err_lease), &j, msg, sizeof(msg)),
	    -ENOENT);
	cr_assert_null(j);
	static const char *const garbage[] = {
	    "",		  "garbage", "[]",
	    "\"str\"",	  "12",	     "{\"header\":",
	    "{\"a\":1}}", "null",    "{\"error\":\"x\",\"code\":13}",
	};
	static const int want[] = {-EBADMSG, -EBADMSG, -EBADMSG, -EBADMSG, -EBADMSG,
				   -EBADMSG, -EBADMSG, -EBADMSG, -EIO};

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		j = (json_t *)1;
		cr_assert_eq(mcfs_etcd_parse_reply(200, garbage[i], strlen(garbage[i]), &j, msg,
						   sizeof(msg)),
			     want[i], "'%s'", garbage[i]);
		cr_assert_null(j);
	}
	cr_assert_eq(mcfs_etcd_parse_reply(200, NULL, 0, &j, msg, sizeof(msg)), -EBADMSG);
}

Test(etcd, parse_recorded)
{
	struct mcfs_etcd_range r;
	json_t *j;
	int64_t v;
	bool b;

	j = load(rec_grant);
	cr_assert_eq(mcfs_etcd_json_i64(j, "ID", &v), 0);
	cr_assert_eq(v, 4111120239571277829LL);
	cr_assert_eq(mcfs_etcd_json_i64(j, "TTL", &v), 0);
	cr_assert_eq(v, 10);
	cr_assert_eq(mcfs_etcd_parse_revision(j, &v), 0);
	cr_assert_eq(v, 1);
	json_decref(j);

	j = load(rec_range_one);
	cr_assert_eq(mcfs_etcd_parse_range(j, &r), 0);
	cr_assert_eq(r.revision, 2);
	cr_assert_eq(r.count, 1);
	cr_assert_not(r.more);
	cr_assert_eq(r.nkvs, 1);
	cr_assert_str_eq(r.kvs[0].key, "foo");
	cr_assert_eq(r.kvs[0].key_len, 3);
	cr_assert_str_eq((char *)r.kvs[0].val, "bar");
	cr_assert_eq(r.kvs[0].val_len, 3);
	cr_assert_eq(r.kvs[0].create_rev, 2);
	cr_assert_eq(r.kvs[0].mod_rev, 2);
	cr_assert_eq(r.kvs[0].version, 1);
	cr_assert_eq(r.kvs[0].lease, 0, "missing lease is 0");
	mcfs_etcd_range_fini(&r);
	json_decref(j);

	j = load(rec_range_none);
	cr_assert_eq(mcfs_etcd_parse_range(j, &r), 0);
	cr_assert_eq(r.nkvs, 0, "missing kvs is empty");
	cr_assert_eq(r.count, 0, "missing count is 0");
	cr_assert_eq(r.revision, 2);
	mcfs_etcd_range_fini(&r);
	json_decref(j);

	j = load(rec_range_empty_value);
	cr_assert_eq(mcfs_etcd_parse_range(j, &r), 0);
	cr_assert_eq(r.nkvs, 1);
	cr_assert_str_eq(r.kvs[0].key, "empty");
	cr_assert_eq(r.kvs[0].val_len, 0, "missing value is empty");
	cr_assert_str_eq((char *)r.kvs[0].val, "");
	mcfs_etcd_range_fini(&r);
	json_decref(j);

	j = load(rec_range_page);
	cr_assert_eq(mcfs_etcd_parse_range(j, &r), 0);
	cr_assert(r.more);
	cr_assert_eq(r.count, 5);
	cr_assert_eq(r.nkvs, 2);
	cr_assert_str_eq(r.kvs[1].key, "p/2");
	cr_assert_str_eq((char *)r.kvs[1].val, "v2");
	mcfs_etcd_range_fini(&r);
	json_decref(j);

	j = load(rec_delete_5);
	cr_assert_eq(mcfs_etcd_json_i64(j, "deleted", &v), 0);
	cr_assert_eq(v, 5);
	json_decref(j);
	j = load(rec_delete_0);
	cr_assert_eq(mcfs_etcd_json_i64(j, "deleted", &v), 0);
	cr_assert_eq(v, 0);
	json_decref(j);

	j = load(rec_txn_ok);
	cr_assert_eq(mcfs_etcd_json_bool(j, "succeeded", &b), 0);
	cr_assert(b);
	json_decref(j);
	j = load(rec_txn_failed);
	cr_assert_eq(mcfs_etcd_json_bool(j, "succeeded", &b), 0);
	cr_assert_not(b, "missing succeeded is false");
	json_decref(j);
}

Test(etcd, parse_range_malformed)
{
	static const char *const bad[] = {
	    "{\"header\":{\"revision\":\"x\"}}",
	    "{\"header\":{\"revision\":true}}",
	    "{\"kvs\":{}}",
	    "{\"kvs\":[1]}",
	    "{\"kvs\":[{}]}",				  /* no key */
	    "{\"kvs\":[{\"key\":\"Zg\"}]}",		  /* bad base64 */
	    "{\"kvs\":[{\"key\":7}]}",			  /* key not a string */
	    "{\"kvs\":[{\"key\":\"Zg==\",\"value\":1}]}", /* value not a string */
	    "{\"kvs\":[{\"key\":\"Zg==\",\"mod_revision\":\"1e3\"}]}",
	    "{\"kvs\":[{\"key\":\"Zg==\"},{\"key\":\"!\"}]}", /* the second is bad */
	    "{\"more\":\"yes\"}",
	    "{\"count\":[]}",
	};
	struct mcfs_etcd_range r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = load(bad[i]);

		cr_assert_eq(mcfs_etcd_parse_range(j, &r), -EBADMSG, "'%s' accepted", bad[i]);
		cr_assert_eq(r.nkvs, 0);
		cr_assert_null(r.kvs);
		json_decref(j);
	}
	cr_assert_eq(mcfs_etcd_parse_range(NULL, &r), -EBADMSG);
}

Test(etcd, parse_leader)
{
	struct mcfs_etcd_leader l;
	json_t *j;

	j = load(rec_campaign);
	cr_assert_eq(mcfs_etcd_parse_leader(j, "el", &l), 0);
	cr_assert_str_eq(l.name, "el");
	cr_assert_str_eq(l.key, "el/390da2138490981b");
	cr_assert_eq(l.rev, 10);
	cr_assert_eq(l.lease, 4111120239571277851LL);
	cr_assert_null(l.value, "a campaign reply carries no value");
	mcfs_etcd_leader_fini(&l);
	cr_assert_null(l.key);
	mcfs_etcd_leader_fini(&l); /* twice is fine */
	json_decref(j);

	j = load(rec_leader);
	cr_assert_eq(mcfs_etcd_parse_leader(j, NULL, &l), 0);
	cr_assert_str_eq(l.name, "el", "name from the key");
	cr_assert_str_eq(l.key, "el/390da2138490981b");
	cr_assert_eq(l.rev, 10, "rev is the create revision");
	cr_assert_eq(l.lease, 4111120239571277851LL);
	cr_assert_eq(l.value_len, 5);
	cr_assert_str_eq(l.value, "node1");
	mcfs_etcd_leader_fini(&l);
	json_decref(j);

	j = load(rec_put);
	cr_assert_eq(mcfs_etcd_parse_leader(j, "el", &l), -ENOENT);
	json_decref(j);

	static const char *const bad[] = {
	    "{\"leader\":7}",
	    "{\"leader\":{}}",
	    "{\"leader\":{\"key\":\"\"}}",
	    "{\"leader\":{\"key\":\"Zg==\",\"name\":3}}",
	    "{\"leader\":{\"key\":\"Zg==\",\"rev\":\"r\"}}",
	    "{\"kv\":{\"value\":\"Zg==\"}}",
	    "{\"kv\":\"x\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = load(bad[i]);
		cr_assert_eq(mcfs_etcd_parse_leader(j, "el", &l), -EBADMSG, "'%s'", bad[i]);
		cr_assert_null(l.key);
		cr_assert_null(l.name);
		json_decref(j);
	}
}

Test(etcd, stream_split)
{
	const char *p = rec_watch;
	size_t left = strlen(rec_watch), used;
	json_t *res;
	char msg[128];
	int64_t rev;
	bool created;
	int n = 0;

	for (;;) {
		int rc = mcfs_etcd_stream_next(p, left, false, &used, &res, msg, sizeof(msg));

		cr_assert_geq(rc, 0);
		cr_assert_leq(used, left);
		p += used;
		left -= used;
		if (!rc)
			break;
		cr_assert_eq(mcfs_etcd_parse_revision(res, &rev), 0);
		cr_assert_eq(rev, 18 + n);
		cr_assert_eq(mcfs_etcd_json_bool(res, "created", &created), 0);
		cr_assert_eq(created, n == 0);
		if (n == 3) {
			json_t *ev = json_array_get(json_object_get(res, "events"), 0);

			cr_assert_str_eq(json_string_value(json_object_get(ev, "type")), "DELETE");
		}
		json_decref(res);
		n++;
	}
	cr_assert_eq(n, 4);
	cr_assert_eq(left, 0);

	/* a message cut in the middle waits for more, unless the stream ended */
	size_t half = strlen(rec_keepalive) / 2;
	cr_assert_eq(
	    mcfs_etcd_stream_next(rec_keepalive, half, false, &used, &res, msg, sizeof(msg)), 0);
	cr_assert_eq(used, 0);
	cr_assert_null(res);
	cr_assert_eq(
	    mcfs_etcd_stream_next(rec_keepalive, half, true, &used, &res, msg, sizeof(msg)),
	    -EBADMSG);
	cr_assert_eq(used, half);
	/* the last message without its newline, at the end of the stream */
	cr_assert_eq(mcfs_etcd_stream_next(rec_keepalive, strlen(rec_keepalive) - 1, true, &used,
					   &res, msg, sizeof(msg)),
		     1);
	cr_assert_eq(mcfs_etcd_json_i64(res, "TTL", &rev), 0);
	cr_assert_eq(rev, 5);
	json_decref(res);
	/* TTL left out: the lease is gone */
	cr_assert_eq(mcfs_etcd_stream_next(rec_keepalive_gone, strlen(rec_keepalive_gone), true,
					   &used, &res, msg, sizeof(msg)),
		     1);
	cr_assert_eq(mcfs_etcd_json_i64(res, "TTL", &rev), 0);
	cr_assert_eq(rev, 0);
	json_decref(res);

	/* blank lines, an error message, garbage: each consumed, then the next one */
	const char *mixed = "\n\r\n  {\"error\":{\"grpc_code\":11,\"message\":\"compacted\"}}\n"
			    "garbage\n{\"nores\":1}\n{\"result\":{}}\n";
	p = mixed;
	left = strlen(mixed);
	cr_assert_eq(mcfs_etcd_stream_next(p, left, false, &used, &res, msg, sizeof(msg)), -ERANGE);
	cr_assert_str_eq(msg, "compacted");
	p += used, left -= used;
	cr_assert_eq(mcfs_etcd_stream_next(p, left, false, &used, &res, msg, sizeof(msg)),
		     -EBADMSG);
	p += used, left -= used;
	cr_assert_eq(mcfs_etcd_stream_next(p, left, false, &used, &res, msg, sizeof(msg)),
		     -EBADMSG);
	p += used, left -= used;
	cr_assert_eq(mcfs_etcd_stream_next(p, left, false, &used, &res, msg, sizeof(msg)), 1);
	json_decref(res);
	p += used, left -= used;
	cr_assert_eq(left, 0);
	cr_assert_eq(mcfs_etcd_stream_next(p, left, true, &used, &res, msg, sizeof(msg)), 0);

	/* a cancelled watch (compaction) parses too */
	cr_assert_eq(mcfs_etcd_stream_next(rec_watch_compacted, strlen(rec_watch_compacted), false,
					   &used, &res, msg, sizeof(msg)),
		     1);
	json_decref(res);
	cr_assert_eq(mcfs_etcd_stream_next(rec_watch_compacted + used,
					   strlen(rec_watch_compacted) - used, false, &used, &res,
					   msg, sizeof(msg)),
		     1);
	cr_assert_eq(mcfs_etcd_json_bool(res, "canceled", &created), 0);
	cr_assert(created);
	cr_assert_eq(mcfs_etcd_parse_revision(res, &rev), 0);
	cr_assert_eq(rev, 0, "missing revision is 0");
	json_decref(res);
}

/* Every parser on every prefix and on byte-flipped copies of every fixture: no crash, no leak. */
Test(etcd, mutated_replies)
{
	static const char *const fx[] = {
	    rec_grant,	     rec_put,	       rec_range_one,	  rec_range_none,
	    rec_range_page,  rec_delete_5,     rec_keepalive,	  rec_txn_ok,
	    rec_campaign,    rec_leader,       rec_watch,	  rec_watch_compacted,
	    rec_err_badjson, rec_err_noleader, rec_err_compacted, rec_range_empty_value,
	};
	static const char flips[] = "\"{}[]:,0\\=A!\n\x80";
	char buf[2048], msg[64];

	srand(7);
	for (size_t f = 0; f < sizeof(fx) / sizeof(fx[0]); f++) {
		size_t len = strlen(fx[f]);

		cr_assert_lt(len, sizeof(buf));
		for (size_t round = 0; round < len + 200; round++) {
			struct mcfs_etcd_range r;
			struct mcfs_etcd_leader l;
			json_t *j = NULL, *res;
			size_t n = len, used;

			memcpy(buf, fx[f], len);
			if (round < len) {
				n = round; /* every truncation */
			} else {
				for (int k = 0; k < 3; k++)
					buf[rand() % len] = flips[rand() % (sizeof(flips) - 1)];
			}
			for (long st = 200; st <= 500; st += 300)
				if (mcfs_etcd_parse_reply(st, buf, n, &j, msg, sizeof(msg)) == 0)
					break;
			if (j) {
				if (mcfs_etcd_parse_range(j, &r) == 0)
					mcfs_etcd_range_fini(&r);
				if (mcfs_etcd_parse_leader(j, NULL, &l) == 0) {
					cr_assert(l.key && l.name);
					mcfs_etcd_leader_fini(&l);
				}
				json_decref(j);
			}
			for (size_t off = 0; off < n;) {
				int rc = mcfs_etcd_stream_next(buf + off, n - off, true, &used,
							       &res, msg, sizeof(msg));

				if (rc == 1)
					json_decref(res);
				if (!used)
					break;
				off += used;
			}
		}
	}
}

Test(etcd, open_endpoints)
{
	static const char *const ok[] = {
	    "127.0.0.1:2379",
	    "http://127.0.0.1:2379",
	    "http://127.0.0.1:2379/",
	    "https://etcd.example:2379",
	    "a:1, b:2 ,http://c:3",
	    "[::1]:2379",
	    "http://[::1]:2379,localhost:65535",
	};
	static const char *const bad[] = {
	    "",		"127.0.0.1", ":2379",	      "127.0.0.1:",  "h:0",	"h:65536",
	    "h:123456", "h:12a",     "a:1,,b:2",      "a:1,",	     ",a:1",	"ftp://h:1",
	    "http://",	"http://h",  "[::1]",	      "[]:1",	     "[a b]:1", "[::1]2379",
	    "h h:1",	"h/x:1",     "http://h:1/v3", "unix:///sock"};
	struct mcfs_etcd *e;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(mcfs_etcd_open(ok[i], &e), 0, "'%s' refused", ok[i]);
		cr_assert_str_eq(mcfs_etcd_errmsg(e), "");
		mcfs_etcd_close(e);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = (struct mcfs_etcd *)1;
		cr_assert_eq(mcfs_etcd_open(bad[i], &e), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_null(e);
	}
	cr_assert_eq(mcfs_etcd_open(NULL, &e), -EINVAL);
	mcfs_etcd_close(NULL);
}

Test(etcd, bad_arguments)
{
	struct mcfs_etcd *e;
	struct mcfs_etcd_leader l = {0};
	int64_t id;

	cr_assert_eq(mcfs_etcd_open("127.0.0.1:1", &e), 0);
	cr_assert_eq(mcfs_etcd_lease_grant(e, 0, &id), -EINVAL);
	cr_assert_eq(mcfs_etcd_lease_keepalive(e, 0, NULL), -EINVAL);
	cr_assert_eq(mcfs_etcd_lease_revoke(e, 0), -EINVAL);
	cr_assert_eq(mcfs_etcd_put(e, "", "x", 1, 0, NULL), -EINVAL);
	cr_assert_eq(mcfs_etcd_put(e, NULL, "x", 1, 0, NULL), -EINVAL);
	cr_assert_eq(mcfs_etcd_put(e, "k", NULL, 1, 0, NULL), -EINVAL);
	cr_assert_eq(mcfs_etcd_get(e, "", false, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(mcfs_etcd_delete(e, "", false), -EINVAL);
	cr_assert_eq(mcfs_etcd_put_if(e, "g", 0, "k", "v", 1), -EINVAL);
	cr_assert_eq(mcfs_etcd_put_if(e, "", 5, "k", "v", 1), -EINVAL);
	cr_assert_eq(mcfs_etcd_delete_if(e, "g", -1, "k", false), -EINVAL);
	cr_assert_eq(mcfs_etcd_campaign(e, "", 1, "v", 1, 100, &l), -EINVAL);
	cr_assert_eq(mcfs_etcd_campaign(e, "el", 0, "v", 1, 100, &l), -EINVAL);
	cr_assert_eq(mcfs_etcd_leader(e, "", &l), -EINVAL);
	cr_assert_eq(mcfs_etcd_resign(e, &l), -EINVAL, "an empty leader");
	cr_assert_eq(mcfs_etcd_observe(e, "", NULL, 100, &l), -EINVAL);
	mcfs_etcd_close(e);
}

/* ---------------------------------------------------------------------------
 * Fake HTTP servers: canned replies, to test the transport without etcd
 */

struct fake {
	int lfd;
	uint16_t port;
	const char *status; /* "200 OK" */
	const char *body;
	int served;  /* requests answered */
	bool silent; /* accept nothing: connections hang in the backlog */
	pthread_t th;
};

/* A port nobody listens on (bound, then closed). */
static uint16_t free_port(void)
{
	uint16_t port;
	int fd = listen_any(&port);

	close(fd);
	return port;
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		char req[8192], head[256];
		size_t got = 0;
		int fd = accept(f->lfd, NULL, NULL);

		if (fd < 0)
			return NULL;
		/* read the headers and the Content-Length body */
		for (;;) {
			ssize_t r = read(fd, req + got, sizeof(req) - 1 - got);
			char *eoh, *cl;

			if (r <= 0)
				break;
			got += (size_t)r;
			req[got] = 0;
			eoh = strstr(req, "\r\n\r\n");
			if (!eoh)
				continue;
			cl = strcasestr(req, "Content-Length:");
			if (!cl || got >= (size_t)(eoh + 4 - req) + strtoul(cl + 15, NULL, 10))
				break;
		}
		snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
			 "%zu\r\nConnection: close\r\n\r\n",
			 f->status, strlen(f->body));
		/* Counted before the answer goes out: the client may check at once. */
		__atomic_add_fetch(&f->served, 1, __ATOMIC_SEQ_CST);
		if (write(fd, head, strlen(head)) < 0 || write(fd, f->body, strlen(f->body)) < 0)
			perror("fake write");
		close(fd);
	}
}

static void fake_start(struct fake *f, const char *status, const char *body)
{
	memset(f, 0, sizeof(*f));
	f->lfd = listen_any(&f->port);
	f->status = status;
	f->body = body;
	cr_assert_eq(pthread_create(&f->th, NULL, fake_run, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR);
	pthread_join(f->th, NULL);
	close(f->lfd);
}

Test(etcd, fake_garbage_reply)
{
	static const char *const garbage[] = {
	    "garbage", "", "[1,2]", "{\"kvs\":[{\"key\":\"!!\"}]}", "{\"kvs\":7}", "{\"header\":",
	};

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		struct fake f;
		struct mcfs_etcd *e;
		char url[64];
		int n = 0;

		fake_start(&f, "200 OK", garbage[i]);
		snprintf(url, sizeof(url), "127.0.0.1:%u", f.port);
		cr_assert_eq(mcfs_etcd_open(url, &e), 0);
		cr_assert_eq(mcfs_etcd_get(e, "k", true, count_kv, &n, NULL), -EBADMSG, "'%s'",
			     garbage[i]);
		cr_assert_eq(n, 0);
		cr_assert_neq(mcfs_etcd_errmsg(e)[0], 0, "an error says why");
		cr_assert_eq(mcfs_etcd_put(e, "k", "v", 1, 0, NULL),
			     i < 3 || i == 5 ? -EBADMSG : 0);
		mcfs_etcd_close(e);
		fake_stop(&f);
	}
}

Test(etcd, fake_failover)
{
	struct fake down, up;
	struct mcfs_etcd *e;
	char url[128];
	int64_t rev = 0;

	fake_start(&down, "503 Service Unavailable",
		   "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no "
		   "leader\",\"code\":14}");
	fake_start(&up, "200 OK", rec_put);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u,127.0.0.1:%u,127.0.0.1:%u", free_port(),
		 down.port, up.port);
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	cr_assert_eq(mcfs_etcd_put(e, "k", "v", 1, 0, &rev), 0, "%s", mcfs_etcd_errmsg(e));
	cr_assert_eq(rev, 2);
	cr_assert_eq(down.served, 1);
	cr_assert_eq(up.served, 1);
	cr_assert_str_eq(mcfs_etcd_errmsg(e), "");
	/* the endpoint that answered is tried first next time */
	cr_assert_eq(mcfs_etcd_put(e, "k", "v", 1, 0, &rev), 0);
	cr_assert_eq(down.served, 1);
	cr_assert_eq(up.served, 2);
	mcfs_etcd_close(e);
	fake_stop(&up);

	/* every member unavailable: -EAGAIN */
	snprintf(url, sizeof(url), "127.0.0.1:%u", down.port);
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	cr_assert_eq(mcfs_etcd_put(e, "k", "v", 1, 0, &rev), -EAGAIN);
	cr_assert(strstr(mcfs_etcd_errmsg(e), "etcdserver: no leader"), "%s", mcfs_etcd_errmsg(e));
	mcfs_etcd_close(e);
	fake_stop(&down);
}

Test(etcd, fake_errors_not_retried)
{
	struct fake f1, f2;
	struct mcfs_etcd *e;
	struct mcfs_etcd_leader l;
	char url[128];

	/* a definite answer (no leader) is final: the second endpoint is not asked */
	fake_start(&f1, "500 Internal Server Error", rec_err_noleader);
	fake_start(&f2, "200 OK", rec_leader);
	snprintf(url, sizeof(url), "127.0.0.1:%u,127.0.0.1:%u", f1.port, f2.port);
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	cr_assert_eq(mcfs_etcd_leader(e, "el", &l), -ENOENT);
	cr_assert_null(l.key);
	cr_assert_str_eq(strchr(mcfs_etcd_errmsg(e), ' ') + 1, "election: no leader");
	cr_assert_eq(f2.served, 0);
	mcfs_etcd_close(e);
	fake_stop(&f1);
	fake_stop(&f2);

	/* a recorded leader reply through the whole client */
	fake_start(&f1, "200 OK", rec_leader);
	snprintf(url, sizeof(url), "127.0.0.1:%u", f1.port);
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	cr_assert_eq(mcfs_etcd_leader(e, "el", &l), 0);
	cr_assert_str_eq(l.key, "el/390da2138490981b");
	cr_assert_str_eq(l.value, "node1");
	mcfs_etcd_leader_fini(&l);
	mcfs_etcd_close(e);
	fake_stop(&f1);

	/* a plain 404: not an etcd gateway */
	fake_start(&f1, "404 Not Found", rec_err_notfound);
	snprintf(url, sizeof(url), "127.0.0.1:%u", f1.port);
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	cr_assert_eq(mcfs_etcd_delete(e, "k", false), -ENOTSUP);
	mcfs_etcd_close(e);
	fake_stop(&f1);
}

Test(etcd, unreachable)
{
	struct mcfs_etcd *e;
	uint16_t hole_port;
	int hole = listen_any(&hole_port); /* listens, never answers */
	char url[128];
	uint64_t t0;
	int64_t id;
	int n = 0;

	snprintf(url, sizeof(url), "127.0.0.1:%u,127.0.0.1:%u", free_port(), free_port());
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_lease_grant(e, 5, &id), -EIO);
	cr_assert_eq(mcfs_etcd_get(e, "k", false, count_kv, &n, NULL), -EIO);
	cr_assert_lt(mcfs_now_ms() - t0, 1000, "refused connections fail fast");
	cr_assert(strstr(mcfs_etcd_errmsg(e), "127.0.0.1"), "%s", mcfs_etcd_errmsg(e));
	mcfs_etcd_close(e);

	snprintf(url, sizeof(url), "127.0.0.1:%u", hole_port);
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	mcfs_etcd_set_timeout(e, 200);
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_put(e, "k", "v", 1, 0, NULL), -ETIMEDOUT);
	cr_assert_geq(mcfs_now_ms() - t0, 190);
	cr_assert_lt(mcfs_now_ms() - t0, 1500);
	t0 = mcfs_now_ms();
	struct mcfs_etcd_leader l;
	cr_assert_eq(mcfs_etcd_campaign(e, "el", 1, "v", 1, 300, &l), -ETIMEDOUT);
	cr_assert_geq(mcfs_now_ms() - t0, 290);
	cr_assert_lt(mcfs_now_ms() - t0, 1500);
	mcfs_etcd_close(e);
	close(hole);
}

/* ---------------------------------------------------------------------------
 * A real etcd
 */

static void real_init(void)
{
	etcd_start("etcd");
}

static void real_fini(void)
{
	etcd_stop();
}

TestSuite(etcd_real, .init = real_init, .fini = real_fini, .timeout = 30);

static struct mcfs_etcd *real_open(void)
{
	struct mcfs_etcd *e;

	if (!etcd_pid)
		cr_skip_test(ETCD_BIN " is not installed (apt-get install etcd-server)");
	cr_assert_eq(mcfs_etcd_open(etcd_url, &e), 0);
	return e;
}

struct collect {
	int n;
	char keys[64][32];
	char vals[64][32];
	size_t lens[64];
	int64_t revs[64];
	int stop_at; /* return -EINTR at this call (1-based), 0: never */
};

static int collect_kv(void *arg, const char *key, const void *val, size_t len, int64_t mod_rev)
{
	struct collect *c = arg;

	if (c->n >= 64)
		return -E2BIG;
	snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key);
	memcpy(c->vals[c->n], val, len < 31 ? len : 31);
	c->vals[c->n][len < 31 ? len : 31] = 0;
	c->lens[c->n] = len;
	c->revs[c->n] = mod_rev;
	c->n++;
	return c->stop_at && c->n == c->stop_at ? -EINTR : 0;
}

Test(etcd_real, leases_and_keys)
{
	struct mcfs_etcd *e = real_open();
	struct collect c = {0};
	int64_t lease, ttl = 0, rev = 0, rev2 = 0, grev = 0;
	const char bin[] = {'a', 0, 'b', (char)0xff};
	char key[32];

	cr_assert_eq(mcfs_etcd_lease_grant(e, 10, &lease), 0, "%s", mcfs_etcd_errmsg(e));
	cr_assert_neq(lease, 0);
	cr_assert_eq(mcfs_etcd_lease_keepalive(e, lease, &ttl), 0, "%s", mcfs_etcd_errmsg(e));
	cr_assert_eq(ttl, 10);

	/* keys under a lease go with it */
	cr_assert_eq(mcfs_etcd_put(e, "/l/a", "1", 1, lease, &rev), 0);
	cr_assert_eq(mcfs_etcd_put(e, "/l/b", "2", 1, lease, &rev2), 0);
	cr_assert_eq(rev2, rev + 1);
	cr_assert_eq(mcfs_etcd_get(e, "/l/", true, collect_kv, &c, &rev), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(rev, rev2);
	cr_assert_eq(mcfs_etcd_lease_revoke(e, lease), 0);
	cr_assert_eq(mcfs_etcd_lease_revoke(e, lease), -ENOENT);
	cr_assert_eq(mcfs_etcd_lease_keepalive(e, lease, &ttl), -ENOENT);
	cr_assert_eq(mcfs_etcd_put(e, "/l/c", "3", 1, lease, NULL), -ENOENT);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/l/", true, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 0);

	/* values: empty and binary */
	cr_assert_eq(mcfs_etcd_put(e, "/v/empty", NULL, 0, 0, NULL), 0);
	cr_assert_eq(mcfs_etcd_put(e, "/v/bin", bin, sizeof(bin), 0, NULL), 0);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/v/", true, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.keys[0], "/v/bin");
	cr_assert_eq(c.lens[0], sizeof(bin));
	cr_assert(!memcmp(c.vals[0], bin, sizeof(bin)));
	cr_assert_str_eq(c.keys[1], "/v/empty");
	cr_assert_eq(c.lens[1], 0);

	/* pagination: 40 keys read 7 at a time, in order, one snapshot */
	for (int i = 0; i < 40; i++) {
		char val[16];

		snprintf(key, sizeof(key), "/p/%03d", i);
		snprintf(val, sizeof(val), "v%d", i);
		cr_assert_eq(mcfs_etcd_put(e, key, val, strlen(val), 0, &rev), 0);
	}
	cr_assert_eq(mcfs_etcd_put(e, "/p", "not in /p/", 10, 0, NULL), 0);
	cr_assert_eq(mcfs_etcd_put(e, "/p0", "not in /p/", 10, 0, NULL), 0);
	mcfs_etcd_set_page_size(e, 7);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/p/", true, collect_kv, &c, &rev2), 0);
	cr_assert_eq(c.n, 40);
	cr_assert_eq(rev2, rev + 2);
	for (int i = 0; i < 40; i++) {
		char val[16];

		snprintf(key, sizeof(key), "/p/%03d", i);
		snprintf(val, sizeof(val), "v%d", i);
		cr_assert_str_eq(c.keys[i], key);
		cr_assert_str_eq(c.vals[i], val);
		cr_assert_eq(c.revs[i], rev - 39 + i);
	}
	/* the callback stops the listing */
	memset(&c, 0, sizeof(c));
	c.stop_at = 9;
	cr_assert_eq(mcfs_etcd_get(e, "/p/", true, collect_kv, &c, NULL), -EINTR);
	cr_assert_eq(c.n, 9);
	/* a single key; a missing key; the whole keyspace */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/p/007", false, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 1);
	cr_assert_str_eq(c.vals[0], "v7");
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/nope", false, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 0);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "", true, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 44, "40 + /p + /p0 + 2 under /v/");
	mcfs_etcd_set_page_size(e, 0);

	/* deletes */
	cr_assert_eq(mcfs_etcd_delete(e, "/p/000", false), 0);
	cr_assert_eq(mcfs_etcd_delete(e, "/p/000", false), -ENOENT);
	cr_assert_eq(mcfs_etcd_delete(e, "/p/", true), 0);
	cr_assert_eq(mcfs_etcd_delete(e, "/p/", true), -ENOENT);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/p", true, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 2, "/p and /p0 stay");

	/* fenced writes */
	cr_assert_eq(mcfs_etcd_put(e, "/guard", "g", 1, 0, &grev), 0);
	cr_assert_eq(mcfs_etcd_put_if(e, "/guard", grev, "/f/a", "x", 1), 0);
	cr_assert_eq(mcfs_etcd_put_if(e, "/guard", grev + 100, "/f/b", "x", 1), -ECANCELED);
	cr_assert_eq(mcfs_etcd_put(e, "/guard", "g2", 2, 0, NULL), 0, "same create revision");
	cr_assert_eq(mcfs_etcd_put_if(e, "/guard", grev, "/f/c", "x", 1), 0);
	cr_assert_eq(mcfs_etcd_delete_if(e, "/guard", grev + 1, "/f/", true), -ECANCELED);
	cr_assert_eq(mcfs_etcd_put_if(e, "/noguard", grev, "/f/d", "x", 1), -ECANCELED);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/f/", true, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(mcfs_etcd_delete_if(e, "/guard", grev, "/f/", true), 0);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(mcfs_etcd_get(e, "/f/", true, collect_kv, &c, NULL), 0);
	cr_assert_eq(c.n, 0);
	mcfs_etcd_close(e);
}

struct campaigner {
	const char *url;
	int64_t lease;
	const char *val;
	unsigned timeout_ms;
	struct mcfs_etcd_leader l;
	const struct mcfs_etcd_leader *known; /* observe */
	int rc;
	uint64_t done_ms;
	pthread_t th;
};

static void *campaign_run(void *arg)
{
	struct campaigner *c = arg;
	struct mcfs_etcd *e;

	c->rc = mcfs_etcd_open(c->url, &e);
	if (!c->rc)
		c->rc = mcfs_etcd_campaign(e, "el", c->lease, c->val, strlen(c->val), c->timeout_ms,
					   &c->l);
	c->done_ms = mcfs_now_ms();
	mcfs_etcd_close(e);
	return NULL;
}

static void *observe_run(void *arg)
{
	struct campaigner *c = arg;
	struct mcfs_etcd *e;

	c->rc = mcfs_etcd_open(c->url, &e);
	if (!c->rc)
		c->rc = mcfs_etcd_observe(e, "el", c->known, c->timeout_ms, &c->l);
	c->done_ms = mcfs_now_ms();
	mcfs_etcd_close(e);
	return NULL;
}

Test(etcd_real, election)
{
	struct mcfs_etcd *e = real_open();
	struct mcfs_etcd_leader a, a2, cur, old;
	struct campaigner b = {0}, o = {0};
	int64_t la, lb;
	uint64_t t0;
	int n;

	cr_assert_eq(mcfs_etcd_lease_grant(e, 10, &la), 0);
	cr_assert_eq(mcfs_etcd_lease_grant(e, 10, &lb), 0);
	cr_assert_eq(mcfs_etcd_leader(e, "el", &cur), -ENOENT);

	/* A wins at once */
	cr_assert_eq(mcfs_etcd_campaign(e, "el", la, "nodeA", 5, 2000, &a), 0, "%s",
		     mcfs_etcd_errmsg(e));
	cr_assert_str_eq(a.name, "el");
	cr_assert(!strncmp(a.key, "el/", 3), "%s", a.key);
	cr_assert_eq(a.lease, la);
	cr_assert_gt(a.rev, 0);
	cr_assert_str_eq(a.value, "nodeA");
	cr_assert_eq(mcfs_etcd_leader(e, "el", &cur), 0);
	cr_assert_str_eq(cur.key, a.key);
	cr_assert_eq(cur.rev, a.rev);
	cr_assert_str_eq(cur.value, "nodeA");
	mcfs_etcd_leader_fini(&cur);
	/* the fencing token is the leader key's create revision */
	cr_assert_eq(mcfs_etcd_put_if(e, a.key, a.rev, "/meta/x", "1", 1), 0);

	/* campaigning again with the same lease gives the same key back, now with the new value */
	cr_assert_eq(mcfs_etcd_campaign(e, "el", la, "nodeA2", 6, 1000, &a2), 0);
	cr_assert_str_eq(a2.key, a.key);
	cr_assert_eq(a2.rev, a.rev);
	mcfs_etcd_leader_fini(&a2);
	cr_assert_eq(mcfs_etcd_leader(e, "el", &cur), 0);
	cr_assert_str_eq(cur.value, "nodeA2");
	mcfs_etcd_leader_fini(&cur);

	/* B times out, and etcd withdraws its candidate key */
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_campaign(e, "el", lb, "nodeB", 5, 300, &cur), -ETIMEDOUT);
	cr_assert_null(cur.key);
	cr_assert_geq(mcfs_now_ms() - t0, 290);
	cr_assert_lt(mcfs_now_ms() - t0, 1500);
	n = 0;
	cr_assert_eq(mcfs_etcd_get(e, "el/", true, count_kv, &n, NULL), 0);
	cr_assert_eq(n, 1, "only A's key: B's is gone by the time campaign returns");

	/* observe: nothing changes within 300 ms */
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_leader(e, "el", &old), 0);
	cr_assert_eq(mcfs_etcd_observe(e, "el", &old, 300, &cur), -ETIMEDOUT);
	cr_assert_geq(mcfs_now_ms() - t0, 290);
	cr_assert_lt(mcfs_now_ms() - t0, 1500);

	/* B blocks until A resigns; an observer of A sees B */
	b = (struct campaigner){.url = etcd_url, .lease = lb, .val = "nodeB", .timeout_ms = 8000};
	o = (struct campaigner){.url = etcd_url, .known = &old, .timeout_ms = 8000};
	cr_assert_eq(pthread_create(&b.th, NULL, campaign_run, &b), 0);
	cr_assert_eq(pthread_create(&o.th, NULL, observe_run, &o), 0);
	usleep(400000);
	cr_assert_eq(b.done_ms, 0, "B must wait for A");
	cr_assert_eq(o.done_ms, 0, "a queued candidate is no leader change");
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_resign(e, &a), 0);
	pthread_join(b.th, NULL);
	pthread_join(o.th, NULL);
	cr_assert_eq(b.rc, 0, "B: %d", b.rc);
	cr_assert_lt(b.done_ms - t0, 1000, "B elected promptly");
	cr_assert_eq(b.l.lease, lb);
	cr_assert_eq(o.rc, 0, "observer: %d", o.rc);
	cr_assert_lt(o.done_ms - t0, 1000, "observer woken promptly");
	cr_assert_str_eq(o.l.key, b.l.key);
	cr_assert_str_eq(o.l.value, "nodeB");
	mcfs_etcd_leader_fini(&o.l);
	/* A is no longer leader: its fenced writes fail; resigning again is harmless */
	cr_assert_eq(mcfs_etcd_put_if(e, a.key, a.rev, "/meta/x", "2", 1), -ECANCELED);
	cr_assert_eq(mcfs_etcd_resign(e, &a), 0);
	/* observing with A as known returns B at once */
	cr_assert_eq(mcfs_etcd_observe(e, "el", &a, 5000, &cur), 0);
	cr_assert_str_eq(cur.key, b.l.key);
	mcfs_etcd_leader_fini(&cur);

	/* A queues again; B's lease is revoked: A takes over, the observer of B sees it */
	struct campaigner a3 = {.url = etcd_url, .lease = la, .val = "nodeA3", .timeout_ms = 8000};
	o = (struct campaigner){.url = etcd_url, .known = &b.l, .timeout_ms = 8000};
	cr_assert_eq(pthread_create(&a3.th, NULL, campaign_run, &a3), 0);
	usleep(300000);
	cr_assert_eq(pthread_create(&o.th, NULL, observe_run, &o), 0);
	usleep(200000);
	cr_assert_eq(a3.done_ms, 0);
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_lease_revoke(e, lb), 0);
	pthread_join(a3.th, NULL);
	pthread_join(o.th, NULL);
	cr_assert_eq(a3.rc, 0);
	cr_assert_lt(a3.done_ms - t0, 1000);
	cr_assert_eq(o.rc, 0);
	cr_assert_str_eq(o.l.key, a3.l.key);
	cr_assert_str_eq(o.l.value, "nodeA3");
	mcfs_etcd_leader_fini(&o.l);

	/* the leader key deleted with no successor: the observer hears -ENOENT at once */
	o = (struct campaigner){.url = etcd_url, .known = &a3.l, .timeout_ms = 8000};
	cr_assert_eq(pthread_create(&o.th, NULL, observe_run, &o), 0);
	usleep(300000);
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_lease_revoke(e, la), 0);
	pthread_join(o.th, NULL);
	cr_assert_eq(o.rc, -ENOENT);
	cr_assert_lt(o.done_ms - t0, 1000);
	cr_assert_eq(mcfs_etcd_leader(e, "el", &cur), -ENOENT);
	cr_assert_eq(mcfs_etcd_campaign(e, "el", la, "x", 1, 1000, &cur), -ENOENT,
		     "a revoked lease cannot campaign");

	/* with no leader known, observe waits for the first one */
	cr_assert_eq(mcfs_etcd_lease_grant(e, 10, &la), 0);
	o = (struct campaigner){.url = etcd_url, .known = NULL, .timeout_ms = 8000};
	cr_assert_eq(pthread_create(&o.th, NULL, observe_run, &o), 0);
	usleep(300000);
	cr_assert_eq(o.done_ms, 0);
	t0 = mcfs_now_ms();
	cr_assert_eq(mcfs_etcd_campaign(e, "el", la, "nodeC", 5, 2000, &cur), 0);
	pthread_join(o.th, NULL);
	cr_assert_eq(o.rc, 0);
	cr_assert_lt(o.done_ms - t0, 1000);
	cr_assert_str_eq(o.l.key, cur.key);
	cr_assert_str_eq(o.l.value, "nodeC");
	mcfs_etcd_leader_fini(&o.l);
	mcfs_etcd_leader_fini(&cur);

	mcfs_etcd_leader_fini(&a);
	mcfs_etcd_leader_fini(&a3.l);
	mcfs_etcd_leader_fini(&b.l);
	mcfs_etcd_leader_fini(&old);
	mcfs_etcd_close(e);
}

Test(etcd_real, endpoints)
{
	struct mcfs_etcd *e;
	char url[192];
	int64_t rev = 0;
	int n = 0;

	e = real_open();
	mcfs_etcd_close(e);
	/* a dead endpoint first, then the live one with a trailing slash */
	snprintf(url, sizeof(url), "127.0.0.1:%u, %s/", free_port(), etcd_url);
	cr_assert_eq(mcfs_etcd_open(url, &e), 0);
	cr_assert_eq(mcfs_etcd_put(e, "k", "v", 1, 0, &rev), 0, "%s", mcfs_etcd_errmsg(e));
	cr_assert_gt(rev, 0);
	cr_assert_eq(mcfs_etcd_get(e, "k", false, count_kv, &n, NULL), 0);
	cr_assert_eq(n, 1);
	mcfs_etcd_close(e);
}
