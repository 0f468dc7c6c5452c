/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the etcd client (meta/etcd.c) exposed for the unit tests: the
 * pure parsers of the gateway's JSON replies and the base64 codec. None of
 * these talk to a server. Every parser takes untrusted input: a malformed
 * reply is -EBADMSG, never a crash.
 *
 * What the etcd 3.4 gateway sends (verified on etcd 3.4.23):
 *  - bytes fields (keys, values, names) are base64 (padded, standard alphabet);
 *  - int64 fields are JSON strings ("revision":"12");
 *  - fields that are zero, false or empty are left out: missing means 0;
 *  - errors: HTTP non-200 with {"error":"...","message":"...","code":N}, N a
 *    gRPC code (a path it does not know: 404 text/plain "Not Found");
 *  - streams (/v3/watch, /v3/lease/keepalive, /v3/election/observe): one
 *    {"result":{...}} per line, and {"error":{...}} for an error mid-stream.
 */
#ifndef MCFS_ETCD_I_H
#define MCFS_ETCD_I_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/etcd.h"

/* Decimal int64 text ("-12", "0"): 0 or -EBADMSG (empty, junk, overflow). */
int mcfs_etcd_parse_i64(const char *s, int64_t *out);
/*
 * The int64 member field of obj: missing or null is 0; a decimal string or a
 * JSON integer is its value. 0 or -EBADMSG (any other type, junk text).
 */
int mcfs_etcd_json_i64(const json_t *obj, const char *field, int64_t *out);
/* A bool member: missing is false. 0 or -EBADMSG (not a JSON bool). */
int mcfs_etcd_json_bool(const json_t *obj, const char *field, bool *out);

/* Standard base64 with padding. A malloc'ed NUL-terminated string, or NULL (no memory). */
char *mcfs_etcd_b64_encode(const void *src, size_t len);
/*
 * Strict decoding of slen chars: length a multiple of 4, standard alphabet,
 * '=' padding only at the end (at most two), unused bits zero. *out is
 * malloc'ed, *outlen bytes plus a NUL (so text comes out as a C string).
 * 0, -EINVAL (bad input, *out untouched) or -ENOMEM.
 */
int mcfs_etcd_b64_decode(const char *src, size_t slen, uint8_t **out, size_t *outlen);

/* A gRPC status code (and its message, may be NULL) as a negative errno; see etcd.h. */
int mcfs_etcd_grpc_errno(int code, const char *msg);
/*
 * An error reply: http_status with body[0..len). Understands the gateway's
 * {"error","message","code"} and the stream form {"error":{"grpc_code",
 * "message",...}}; otherwise maps the HTTP status. The message (or the body's
 * first line) is copied into msg (msgsz bytes, NUL-terminated; msg may be
 * NULL). Returns the negative errno.
 */
int mcfs_etcd_parse_error(long http_status, const char *body, size_t len, char *msg, size_t msgsz);
/*
 * A whole (non-stream) reply: 0 with *out the JSON object (the caller
 * json_decref()s it) when http_status is 200 and the body is a JSON object
 * that is not an error; else the errno of mcfs_etcd_parse_error, or -EBADMSG.
 */
int mcfs_etcd_parse_reply(long http_status, const char *body, size_t len, json_t **out, char *msg,
			  size_t msgsz);

/* mvccpb.KeyValue, decoded. */
struct mcfs_etcd_kv {
	char *key; /* owned, NUL-terminated */
	size_t key_len;
	uint8_t *val; /* owned, NUL-terminated; "" when the value is empty */
	size_t val_len;
	int64_t create_rev;
	int64_t mod_rev;
	int64_t version;
	int64_t lease;
};

/* A RangeResponse. */
struct mcfs_etcd_range {
	int64_t revision; /* header.revision */
	int64_t count;	  /* keys in the whole range (not just this page) */
	bool more;	  /* more keys past this page */
	size_t nkvs;
	struct mcfs_etcd_kv *kvs; /* owned */
};

/* One KeyValue object. The key is required. 0, -EBADMSG or -ENOMEM; *out zeroed on error. */
int mcfs_etcd_parse_kv(const json_t *kv, struct mcfs_etcd_kv *out);
void mcfs_etcd_kv_fini(struct mcfs_etcd_kv *kv);
/* header.revision of a reply (0 when missing). 0 or -EBADMSG. */
int mcfs_etcd_parse_revision(const json_t *reply, int64_t *rev);
/* A RangeResponse object. 0, -EBADMSG or -ENOMEM; *out zeroed on error. */
int mcfs_etcd_parse_range(const json_t *reply, struct mcfs_etcd_range *out);
void mcfs_etcd_range_fini(struct mcfs_etcd_range *r);
/*
 * A leader from a CampaignResponse {"leader":{name,key,rev,lease}} or a
 * LeaderResponse {"kv":{...}} (then the name is election, or the key up to
 * its last '/' when election is NULL, and rev is the create revision).
 * 0, -ENOENT (neither member), -EBADMSG or -ENOMEM; *out zeroed on error.
 */
int mcfs_etcd_parse_leader(const json_t *reply, const char *election, struct mcfs_etcd_leader *out);

/*
 * The next message of a stream body buf[0..len): messages are one per line;
 * blank lines are skipped. With eof false an unterminated last line is left
 * for later; with eof true it is parsed too. *used gets how many bytes were
 * consumed (also on errors, so a caller can go on past a bad message).
 * Returns 1 with *result the message's "result" object (a new reference),
 * 0 when no complete message is there yet, a negative errno for an
 * {"error":...} message (its text in msg), or -EBADMSG for garbage.
 */
int mcfs_etcd_stream_next(const char *buf, size_t len, bool eof, size_t *used, json_t **result,
			  char *msg, size_t msgsz);

#endif
