// SPDX-License-Identifier: Apache-2.0
/*
 * The etcd v3 client: JSON requests to etcd 3.4's gRPC gateway over libcurl,
 * replies parsed with jansson. One libcurl easy handle per client keeps the
 * connection to the endpoint in use alive between calls; long calls
 * (campaign, watch) get the caller's deadline instead of the per-request
 * timeout. Everything that comes back from the network goes through the
 * parsers at the top of this file, which treat it as untrusted.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "meta/etcd.h"
#include "meta/etcd_i.h"

#define ETCD_DEFAULT_TIMEOUT_MS 2000u
#define ETCD_DEFAULT_PAGE	1000u
#define ETCD_MAX_REPLY		(256u << 20)
#define ETCD_ERRMSG		256

struct mcfs_etcd {
	char **urls; /* "http://host:port", no trailing slash */
	size_t nurls;
	size_t cur; /* the endpoint that answered last */
	unsigned timeout_ms;
	unsigned page;
	bool connected; /* the last request was sent to a server */
	CURL *curl;
	struct curl_slist *hdrs;
	char errmsg[ETCD_ERRMSG];
};

/* ---------------------------------------------------------------------------
 * Pure parsers
 */

int mcfs_etcd_parse_i64(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = false;
	uint64_t v = 0;

	if (!s)
		return -EBADMSG;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (!*p)
		return -EBADMSG;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EBADMSG;
		if (v > (UINT64_MAX - 9) / 10)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -EBADMSG;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > INT64_MAX)
			return -EBADMSG;
		*out = (int64_t)v;
	}
	return 0;
}

int mcfs_etcd_json_i64(const json_t *obj, const char *field, int64_t *out)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, field) : NULL;

	if (!json_is_object(obj))
		return -EBADMSG;
	if (!v || json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		/* an embedded NUL would hide junk from the text parser */
		if (strlen(json_string_value(v)) != json_string_length(v))
			return -EBADMSG;
		return mcfs_etcd_parse_i64(json_string_value(v), out);
	}
	return -EBADMSG;
}

int mcfs_etcd_json_bool(const json_t *obj, const char *field, bool *out)
{
	const json_t *v;

	if (!json_is_object(obj))
		return -EBADMSG;
	v = json_object_get(obj, field);
	if (!v || json_is_null(v)) {
		*out = false;
		return 0;
	}
	if (!json_is_boolean(v))
		return -EBADMSG;
	*out = json_is_true(v);
	return 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *mcfs_etcd_b64_encode(const void *src, size_t len)
{
	const uint8_t *s = src;
	size_t olen, i, o = 0;
	char *out;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	olen = (len + 2) / 3 * 4;
	out = malloc(olen + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int mcfs_etcd_b64_decode(const char *src, size_t slen, uint8_t **out, size_t *outlen)
{
	size_t pad = 0, n, i, o = 0;
	uint8_t *buf;

	if (!src || slen % 4)
		return -EINVAL;
	if (slen && src[slen - 1] == '=')
		pad = slen >= 2 && src[slen - 2] == '=' ? 2 : 1;
	n = slen / 4 * 3 - pad;
	buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < slen; i += 4) {
		bool last = i + 4 == slen;
		int a = b64_val(src[i]), b = b64_val(src[i + 1]);
		int c = last && pad == 2 ? 0 : b64_val(src[i + 2]);
		int d = last && pad >= 1 ? 0 : b64_val(src[i + 3]);
		uint32_t v;

		if (a < 0 || b < 0 || c < 0 || d < 0)
			goto out_bad;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		buf[o++] = (uint8_t)(v >> 16);
		if (last && pad == 2) {
			if (v & 0xffff) /* non-canonical: bits past the data */
				goto out_bad;
			break;
		}
		buf[o++] = (uint8_t)(v >> 8);
		if (last && pad == 1) {
			if (v & 0xff)
				goto out_bad;
			break;
		}
		buf[o++] = (uint8_t)v;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;

out_bad:
	free(buf);
	return -EINVAL;
}

int mcfs_etcd_grpc_errno(int code, const char *msg)
{
	switch (code) {
	case 0:
		return 0;
	case 1: /* Canceled */
		return -ECANCELED;
	case 2: /* Unknown: the election service reports its errors with it */
		if (msg && (strstr(msg, "no leader") || strstr(msg, "lease not found") ||
			    strstr(msg, "session expired")))
			return -ENOENT;
		if (msg && strstr(msg, "not leader"))
			return -EPERM;
		return -EIO;
	case 3: /* InvalidArgument */
		return -EINVAL;
	case 4: /* DeadlineExceeded */
		return -ETIMEDOUT;
	case 5: /* NotFound */
		return -ENOENT;
	case 6: /* AlreadyExists */
		return -EEXIST;
	case 7: /* PermissionDenied */
	case 9: /* FailedPrecondition */
		return -EPERM;
	case 8: /* ResourceExhausted */
		return -ENOSPC;
	case 10: /* Aborted */
	case 14: /* Unavailable */
		return -EAGAIN;
	case 11: /* OutOfRange: compacted / future revision */
		return -ERANGE;
	case 12: /* Unimplemented */
		return -ENOTSUP;
	case 16: /* Unauthenticated */
		return -EACCES;
	default: /* 13 Internal, 15 DataLoss, unknown codes */
		return -EIO;
	}
}

static int http_errno(long status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
		return -EACCES;
	case 403:
	case 412:
		return -EPERM;
	case 404:
		return -ENOENT;
	case 409:
	case 503:
		return -EAGAIN;
	case 429:
		return -ENOSPC;
	case 499:
		return -ECANCELED;
	case 501:
		return -ENOTSUP;
	case 504:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* Copy text into msg, printable ASCII only, up to the first line end. */
static void copy_msg(char *msg, size_t msgsz, const char *text, size_t len)
{
	size_t o = 0;

	if (!msg || !msgsz)
		return;
	for (size_t i = 0; i < len && o + 1 < msgsz; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\n' || c == '\r')
			break;
		msg[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	msg[o] = '\0';
}

/* The error of a parsed JSON object, or 1 when it is not an error object. */
static int json_error(const json_t *root, long http_status, char *msg, size_t msgsz)
{
	const json_t *err = json_object_get(root, "error");
	const json_t *m = NULL;
	int64_t code = 0;

	if (!err)
		return 1;
	if (json_is_object(err)) {
		/* grpc-gateway's stream error: {"grpc_code","http_code","message","http_status"} */
		m = json_object_get(err, "message");
		if (mcfs_etcd_json_i64(err, "grpc_code", &code))
			code = 0;
		if (!code) {
			int64_t hc = 0;

			if (mcfs_etcd_json_i64(err, "http_code", &hc) == 0 && hc > 0 && hc < 1000)
				http_status = (long)hc;
		}
	} else if (json_is_string(err)) {
		m = json_object_get(root, "message");
		if (!json_is_string(m))
			m = err;
		if (mcfs_etcd_json_i64(root, "code", &code))
			code = 0;
	} else {
		return 1;
	}
	if (json_is_string(m))
		copy_msg(msg, msgsz, json_string_value(m), json_string_length(m));
	else
		copy_msg(msg, msgsz, "error without a message", 23);
	if (code > 0 && code < 64)
		return mcfs_etcd_grpc_errno((int)code,
					    json_is_string(m) ? json_string_value(m) : NULL);
	if (http_status != 200)
		return http_errno(http_status);
	return -EIO;
}

int mcfs_etcd_parse_error(long http_status, const char *body, size_t len, char *msg, size_t msgsz)
{
	json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	int rc = 1;

	if (json_is_object(root))
		rc = json_error(root, http_status, msg, msgsz);
	json_decref(root);
	if (rc <= 0)
		return rc;
	/* not the gateway's JSON: a proxy, another server, a path it does not serve */
	if (body && len) {
		char tmp[ETCD_ERRMSG];

		copy_msg(tmp, sizeof(tmp), body, len);
		if (msg && msgsz)
			snprintf(msg, msgsz, "HTTP %ld: %s", http_status, tmp);
	} else if (msg && msgsz) {
		snprintf(msg, msgsz, "HTTP %ld with no body", http_status);
	}
	switch (http_status) {
	case 404:
		return -ENOTSUP; /* not an etcd v3 gateway */
	case 200:
		return -EBADMSG;
	default:
		return http_status >= 500 ? http_errno(http_status) : -EBADMSG;
	}
}

int mcfs_etcd_parse_reply(long http_status, const char *body, size_t len, json_t **out, char *msg,
			  size_t msgsz)
{
	json_t *root;
	json_error_t jerr;
	int rc;

	*out = NULL;
	if (http_status != 200)
		return mcfs_etcd_parse_error(http_status, body, len, msg, msgsz);
	root = body ? json_loadb(body, len, 0, &jerr) : NULL;
	if (!json_is_object(root)) {
		if (root)
			copy_msg(msg, msgsz, "reply is not a JSON object", 26);
		else if (msg && msgsz)
			snprintf(msg, msgsz, "bad JSON in reply: %s", body ? jerr.text : "no body");
		json_decref(root);
		return -EBADMSG;
	}
	/* LeaseGrantResponse has a string "error" of its own next to its header */
	if (!json_object_get(root, "header")) {
		rc = json_error(root, http_status, msg, msgsz);
		if (rc <= 0) {
			json_decref(root);
			return rc;
		}
	}
	*out = root;
	return 0;
}

/* A base64 member that must be a string (missing: empty). */
static int json_b64(const json_t *obj, const char *field, bool required, uint8_t **out,
		    size_t *outlen)
{
	const json_t *v = json_object_get(obj, field);
	int rc;

	if (!v || json_is_null(v)) {
		if (required)
			return -EBADMSG;
		*out = calloc(1, 1);
		*outlen = 0;
		return *out ? 0 : -ENOMEM;
	}
	if (!json_is_string(v))
		return -EBADMSG;
	rc = mcfs_etcd_b64_decode(json_string_value(v), json_string_length(v), out, outlen);
	return rc == -EINVAL ? -EBADMSG : rc;
}

void mcfs_etcd_kv_fini(struct mcfs_etcd_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->val);
	memset(kv, 0, sizeof(*kv));
}

int mcfs_etcd_parse_kv(const json_t *kv, struct mcfs_etcd_kv *out)
{
	uint8_t *key = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(kv))
		return -EBADMSG;
	rc = json_b64(kv, "key", true, &key, &out->key_len);
	if (rc)
		goto out_fail;
	out->key = (char *)key;
	rc = json_b64(kv, "value", false, &out->val, &out->val_len);
	if (rc)
		goto out_fail;
	rc = mcfs_etcd_json_i64(kv, "create_revision", &out->create_rev);
	if (!rc)
		rc = mcfs_etcd_json_i64(kv, "mod_revision", &out->mod_rev);
	if (!rc)
		rc = mcfs_etcd_json_i64(kv, "version", &out->version);
	if (!rc)
		rc = mcfs_etcd_json_i64(kv, "lease", &out->lease);
	if (rc)
		goto out_fail;
	return 0;

out_fail:
	mcfs_etcd_kv_fini(out);
	return rc;
}

int mcfs_etcd_parse_revision(const json_t *reply, int64_t *rev)
{
	const json_t *h = json_is_object(reply) ? json_object_get(reply, "header") : NULL;

	*rev = 0;
	if (!json_is_object(reply))
		return -EBADMSG;
	if (!h)
		return 0;
	return mcfs_etcd_json_i64(h, "revision", rev);
}

void mcfs_etcd_range_fini(struct mcfs_etcd_range *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nkvs; i++)
		mcfs_etcd_kv_fini(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

int mcfs_etcd_parse_range(const json_t *reply, struct mcfs_etcd_range *out)
{
	const json_t *kvs;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = mcfs_etcd_parse_revision(reply, &out->revision);
	if (!rc)
		rc = mcfs_etcd_json_i64(reply, "count", &out->count);
	if (!rc)
		rc = mcfs_etcd_json_bool(reply, "more", &out->more);
	if (rc)
		return rc;
	kvs = json_object_get(reply, "kvs");
	if (!kvs || json_is_null(kvs))
		return 0;
	if (!json_is_array(kvs))
		return -EBADMSG;
	n = json_array_size(kvs);
	if (!n)
		return 0;
	out->kvs = calloc(n, sizeof(*out->kvs));
	if (!out->kvs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		rc = mcfs_etcd_parse_kv(json_array_get(kvs, i), &out->kvs[i]);
		if (rc) {
			mcfs_etcd_range_fini(out);
			return rc;
		}
		out->nkvs = i + 1;
	}
	return 0;
}

void mcfs_etcd_leader_fini(struct mcfs_etcd_leader *l)
{
	if (!l)
		return;
	free(l->name);
	free(l->key);
	free(l->value);
	memset(l, 0, sizeof(*l));
}

int mcfs_etcd_parse_leader(const json_t *reply, const char *election, struct mcfs_etcd_leader *out)
{
	const json_t *lk, *kvj;
	uint8_t *p = NULL;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(reply))
		return -EBADMSG;
	lk = json_object_get(reply, "leader");
	kvj = json_object_get(reply, "kv");
	if (lk && !json_is_null(lk)) {
		if (!json_is_object(lk))
			return -EBADMSG;
		rc = json_b64(lk, "key", true, &p, &n);
		if (rc)
			goto out_fail;
		out->key = (char *)p;
		if (json_object_get(lk, "name")) {
			rc = json_b64(lk, "name", true, &p, &n);
			if (rc)
				goto out_fail;
			out->name = (char *)p;
		}
		rc = mcfs_etcd_json_i64(lk, "rev", &out->rev);
		if (!rc)
			rc = mcfs_etcd_json_i64(lk, "lease", &out->lease);
		if (rc)
			goto out_fail;
	} else if (kvj && !json_is_null(kvj)) {
		struct mcfs_etcd_kv kv;

		rc = mcfs_etcd_parse_kv(kvj, &kv);
		if (rc)
			return rc;
		out->key = kv.key;
		out->rev = kv.create_rev;
		out->lease = kv.lease;
		if (kv.val_len) {
			out->value = kv.val;
			out->value_len = kv.val_len;
		} else {
			free(kv.val);
		}
	} else {
		return -ENOENT;
	}
	if (!out->key[0]) {
		rc = -EBADMSG;
		goto out_fail;
	}
	if (!out->name) {
		const char *slash = strrchr(out->key, '/');

		if (election)
			out->name = strdup(election);
		else
			out->name = strndup(out->key, slash ? (size_t)(slash - out->key) : 0);
		if (!out->name) {
			rc = -ENOMEM;
			goto out_fail;
		}
	}
	return 0;

out_fail:
	mcfs_etcd_leader_fini(out);
	return rc;
}

int mcfs_etcd_stream_next(const char *buf, size_t len, bool eof, size_t *used, json_t **result,
			  char *msg, size_t msgsz)
{
	size_t i = 0, end, next;
	const char *nl;
	json_t *root, *res;
	int rc;

	*result = NULL;
	while (i < len && (buf[i] == '\n' || buf[i] == '\r' || buf[i] == ' ' || buf[i] == '\t'))
		i++;
	*used = i;
	if (i == len)
		return 0;
	nl = memchr(buf + i, '\n', len - i);
	if (nl) {
		end = (size_t)(nl - buf);
		next = end + 1;
	} else if (eof) {
		end = next = len;
	} else {
		return 0;
	}
	*used = next;
	root = json_loadb(buf + i, end - i, 0, NULL);
	if (!json_is_object(root)) {
		copy_msg(msg, msgsz, "bad JSON message in stream", 26);
		json_decref(root);
		return -EBADMSG;
	}
	res = json_object_get(root, "result");
	if (json_is_object(res)) {
		*result = json_incref(res);
		json_decref(root);
		return 1;
	}
	rc = json_error(root, 200, msg, msgsz);
	json_decref(root);
	if (rc > 0) {
		copy_msg(msg, msgsz, "stream message without result", 29);
		return -EBADMSG;
	}
	return rc;
}

/* ---------------------------------------------------------------------------
 * Endpoints and transport
 */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void seterr(struct mcfs_etcd *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void seterr(struct mcfs_etcd *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->errmsg, sizeof(e->errmsg), fmt, ap);
	va_end(ap);
}

/* One endpoint "[scheme://]host:port[/]" into a malloc'ed "scheme://host:port". */
static int parse_endpoint(const char *s, size_t len, char **out)
{
	const char *scheme = "http://", *host, *end = s + len, *port;
	size_t hlen;
	unsigned long pv = 0;
	char *url;

	while (len && end[-1] == '/')
		end--, len--;
	if (len > 7 && !strncmp(s, "http://", 7)) {
		s += 7;
	} else if (len > 8 && !strncmp(s, "https://", 8)) {
		scheme = "https://";
		s += 8;
	} else if (memmem(s, len, "://", 3)) {
		return -EINVAL; /* another scheme */
	}
	host = s;
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));

		if (!rb || rb == host + 1 || rb + 1 >= end || rb[1] != ':')
			return -EINVAL;
		port = rb + 2;
		hlen = (size_t)(rb + 1 - host);
		for (const char *p = host + 1; p < rb; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return -EINVAL;
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));

		if (!colon || colon == host)
			return -EINVAL;
		port = colon + 1;
		hlen = (size_t)(colon - host);
		for (const char *p = host; p < colon; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
				return -EINVAL;
	}
	if (hlen > 255 || port >= end || end - port > 5)
		return -EINVAL;
	for (const char *p = port; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		pv = pv * 10 + (unsigned long)(*p - '0');
	}
	if (pv == 0 || pv > 65535)
		return -EINVAL;
	if (asprintf(&url, "%s%.*s:%lu", scheme, (int)hlen, host, pv) < 0)
		return -ENOMEM;
	*out = url;
	return 0;
}

int mcfs_etcd_open(const char *urls, struct mcfs_etcd **out)
{
	struct mcfs_etcd *e;
	const char *p;
	size_t n = 1;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!urls || !*urls) {
		mcfs_err("etcd: no endpoint given");
		return -EINVAL;
	}
	for (p = urls; *p; p++)
		n += *p == ',';
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		mcfs_err("etcd: libcurl init failed: %s", curl_easy_strerror(curl_init_rc));
		return -ENOMEM;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->urls = calloc(n, sizeof(*e->urls));
	if (!e->urls) {
		rc = -ENOMEM;
		goto out_free;
	}
	e->timeout_ms = ETCD_DEFAULT_TIMEOUT_MS;
	e->page = ETCD_DEFAULT_PAGE;
	for (p = urls;;) {
		const char *c = strchr(p, ',');
		const char *end = c ? c : p + strlen(p);
		const char *a = p, *b = end;

		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		rc = a < b ? parse_endpoint(a, (size_t)(b - a), &e->urls[e->nurls]) : -EINVAL;
		if (rc == -EINVAL)
			mcfs_err("etcd: bad endpoint '%.*s' in '%s': expected http://HOST:PORT or "
				 "HOST:PORT, comma-separated",
				 (int)(b - a), a, urls);
		if (rc)
			goto out_free;
		e->nurls++;
		if (!c)
			break;
		p = c + 1;
	}
	e->curl = curl_easy_init();
	e->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (e->hdrs) {
		/* no "Expect: 100-continue" round trip on larger bodies */
		struct curl_slist *h = curl_slist_append(e->hdrs, "Expect:");

		if (h) {
			e->hdrs = h;
		} else {
			curl_slist_free_all(e->hdrs);
			e->hdrs = NULL;
		}
	}
	if (!e->curl || !e->hdrs) {
		rc = -ENOMEM;
		goto out_free;
	}
	*out = e;
	return 0;

out_free:
	mcfs_etcd_close(e);
	return rc;
}

void mcfs_etcd_close(struct mcfs_etcd *e)
{
	if (!e)
		return;
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->hdrs);
	for (size_t i = 0; i < e->nurls; i++)
		free(e->urls[i]);
	free(e->urls);
	free(e);
}

void mcfs_etcd_set_timeout(struct mcfs_etcd *e, unsigned ms)
{
	e->timeout_ms = ms ? ms : ETCD_DEFAULT_TIMEOUT_MS;
}

void mcfs_etcd_set_page_size(struct mcfs_etcd *e, unsigned keys)
{
	e->page = keys ? keys : ETCD_DEFAULT_PAGE;
}

const char *mcfs_etcd_errmsg(const struct mcfs_etcd *e)
{
	return e ? e->errmsg : "no etcd client";
}

/* The reply of one request; streams are fed to hook as they arrive. */
struct xfer {
	CURL *curl;
	char *data; /* NUL-terminated */
	size_t len;
	size_t cap;
	bool too_big;
	bool oom;
	/*
	 * Called on each chunk of a 200 reply: 0 goes on, anything else stops
	 * the transfer and becomes the request's result.
	 */
	int (*hook)(struct xfer *x);
	size_t scanned; /* bytes of data the hook has consumed */
	bool stopped;
	int hook_rc;
};

static size_t on_write(char *p, size_t sz, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = sz * nmemb;

	if (n > ETCD_MAX_REPLY || x->len + n > ETCD_MAX_REPLY) {
		x->too_big = true;
		return 0;
	}
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		char *d;

		while (cap < x->len + n + 1)
			cap *= 2;
		d = realloc(x->data, cap);
		if (!d) {
			x->oom = true;
			return 0;
		}
		x->data = d;
		x->cap = cap;
	}
	memcpy(x->data + x->len, p, n);
	x->len += n;
	x->data[x->len] = '\0';
	if (x->hook) {
		long status = 0;
		int rc;

		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			rc = x->hook(x);
			if (rc) {
				x->stopped = true;
				x->hook_rc = rc;
				return 0;
			}
		}
	}
	return n;
}

static void xfer_fini(struct xfer *x)
{
	free(x->data);
	memset(x, 0, sizeof(*x));
}

enum {
	REQ_LONG = 1, /* the timeout is the caller's deadline: no retry elsewhere once it passes */
};

/*
 * POST body to path on each endpoint in turn, starting with the last good
 * one. 0 with x holding a 200 reply; the hook's result when it stopped the
 * transfer; otherwise a negative errno (the server's error, or the last
 * transport failure when no endpoint answered).
 */
static int request(struct mcfs_etcd *e, const char *path, const char *body, unsigned timeout_ms,
		   unsigned flags, struct xfer *x)
{
	uint64_t deadline = mcfs_now_ms() + timeout_ms;
	int err = -EIO;

	e->errmsg[0] = '\0';
	for (size_t i = 0; i < e->nurls; i++) {
		size_t idx = (e->cur + i) % e->nurls;
		char url[512];
		long status = 0, tmo = timeout_ms;
		CURLcode cc;

		if (flags & REQ_LONG) {
			uint64_t now = mcfs_now_ms();

			if (now >= deadline) {
				err = -ETIMEDOUT;
				break;
			}
			tmo = (long)(deadline - now);
		}
		snprintf(url, sizeof(url), "%s%s", e->urls[idx], path);
		x->curl = e->curl;
		x->len = 0;
		x->scanned = 0;
		x->too_big = x->oom = x->stopped = false;
		x->hook_rc = 0;
		curl_easy_reset(e->curl);
		curl_easy_setopt(e->curl, CURLOPT_URL, url);
		curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e->curl, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->hdrs);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, x);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, tmo > 0 ? tmo : 1L);
		curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)(e->timeout_ms < (unsigned long)tmo ? e->timeout_ms : tmo));
		cc = curl_easy_perform(e->curl);
		{
			long sent = 0;

			e->connected =
			    curl_easy_getinfo(e->curl, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK &&
			    sent > 0;
		}
		if (x->stopped) {
			e->cur = idx;
			if (x->hook_rc >= 0)
				e->errmsg[0] = '\0';
			return x->hook_rc;
		}
		if (x->too_big) {
			seterr(e, "%s: reply larger than %u bytes", url, ETCD_MAX_REPLY);
			return -EMSGSIZE;
		}
		if (x->oom || cc == CURLE_OUT_OF_MEMORY) {
			seterr(e, "%s: out of memory", url);
			return -ENOMEM;
		}
		if (cc != CURLE_OK) {
			err = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
			seterr(e, "%s: %s", url, curl_easy_strerror(cc));
			mcfs_debug("etcd: %s", e->errmsg);
			if (err == -ETIMEDOUT && (flags & REQ_LONG) &&
			    mcfs_now_ms() + 5 >= deadline)
				break;
			continue;
		}
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			e->cur = idx;
			e->errmsg[0] = '\0';
			return 0;
		}
		{
			char msg[ETCD_ERRMSG - 64];

			err = mcfs_etcd_parse_error(status, x->data, x->len, msg, sizeof(msg));
			seterr(e, "%s: %s", url, msg);
		}
		if (status == 503) {
			/* this member cannot serve (no quorum, stopping): ask another */
			mcfs_debug("etcd: %s", e->errmsg);
			continue;
		}
		e->cur = idx;
		return err;
	}
	return err;
}

/* request() then the reply's JSON object in *out. */
static int call(struct mcfs_etcd *e, const char *path, json_t *req, json_t **out)
{
	struct xfer x = {0};
	char *body = json_dumps(req, JSON_COMPACT);
	int rc;

	*out = NULL;
	if (!body)
		return -ENOMEM;
	rc = request(e, path, body, e->timeout_ms, 0, &x);
	free(body);
	if (!rc) {
		char msg[ETCD_ERRMSG - 64];

		rc = mcfs_etcd_parse_reply(200, x.data, x.len, out, msg, sizeof(msg));
		if (rc)
			seterr(e, "%s: %s", path, msg);
	}
	xfer_fini(&x);
	return rc;
}

/* ---------------------------------------------------------------------------
 * Request building
 */

static int set_i64(json_t *o, const char *field, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_object_set_new(o, field, json_string(s)) ? -ENOMEM : 0;
}

static int set_b64(json_t *o, const char *field, const void *p, size_t len)
{
	char *s = mcfs_etcd_b64_encode(p, len);
	int rc;

	if (!s)
		return -ENOMEM;
	rc = json_object_set_new(o, field, json_string(s)) ? -ENOMEM : 0;
	free(s);
	return rc;
}

/* The smallest key above every key that starts with key[0..len): etcd's prefix range end. */
static int prefix_end(const char *key, size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t *end = malloc(len ? len : 1);

	if (!end)
		return -ENOMEM;
	memcpy(end, key, len);
	while (len && end[len - 1] == 0xff)
		len--;
	if (!len) {
		end[0] = 0; /* "\0": to the end of the keyspace */
		*outlen = 1;
	} else {
		end[len - 1]++;
		*outlen = len;
	}
	*out = end;
	return 0;
}

/* key and, for a prefix, range_end. */
static int set_range(json_t *o, const char *key, bool prefix)
{
	size_t klen = strlen(key);
	uint8_t *end;
	size_t elen;
	int rc;

	if (!prefix)
		return set_b64(o, "key", key, klen);
	/* an empty key is not allowed: "\0" (the smallest key) stands for it */
	rc = set_b64(o, "key", klen ? key : "", klen ? klen : 1);
	if (rc)
		return rc;
	rc = prefix_end(key, klen, &end, &elen);
	if (rc)
		return rc;
	rc = set_b64(o, "range_end", end, elen);
	free(end);
	return rc;
}

static bool bad_key(const char *key)
{
	return !key || !*key;
}

/* ---------------------------------------------------------------------------
 * Leases and keys
 */

int mcfs_etcd_lease_grant(struct mcfs_etcd *e, unsigned ttl_s, int64_t *lease_id)
{
	json_t *req, *rep = NULL;
	int64_t id = 0;
	int rc;

	if (!e || !lease_id || !ttl_s)
		return -EINVAL;
	req = json_pack("{s:I}", "TTL", (json_int_t)ttl_s);
	if (!req)
		return -ENOMEM;
	rc = call(e, "/v3/lease/grant", req, &rep);
	json_decref(req);
	if (rc)
		return rc;
	rc = mcfs_etcd_json_i64(rep, "ID", &id);
	if (!rc && json_is_string(json_object_get(rep, "error")) &&
	    json_string_length(json_object_get(rep, "error"))) {
		seterr(e, "lease grant: %s", json_string_value(json_object_get(rep, "error")));
		rc = -EIO;
	} else if (!rc && !id) {
		seterr(e, "lease grant: reply without an ID");
		rc = -EBADMSG;
	}
	json_decref(rep);
	if (!rc)
		*lease_id = id;
	return rc;
}

int mcfs_etcd_lease_keepalive(struct mcfs_etcd *e, int64_t lease_id, int64_t *ttl_left)
{
	json_t *req, *res = NULL;
	struct xfer x = {0};
	char *body, msg[ETCD_ERRMSG - 64];
	size_t used;
	int64_t ttl = 0;
	int rc;

	if (!e || !lease_id)
		return -EINVAL;
	req = json_object();
	if (!req || set_i64(req, "ID", lease_id)) {
		json_decref(req);
		return -ENOMEM;
	}
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body)
		return -ENOMEM;
	/* a stream: one reply per request sent, then the server ends it */
	rc = request(e, "/v3/lease/keepalive", body, e->timeout_ms, 0, &x);
	free(body);
	if (rc)
		goto out;
	rc =
	    mcfs_etcd_stream_next(x.data ? x.data : "", x.len, true, &used, &res, msg, sizeof(msg));
	if (rc == 0) {
		seterr(e, "lease keepalive: empty reply");
		rc = -EBADMSG;
	} else if (rc < 0) {
		seterr(e, "lease keepalive: %s", msg);
	} else {
		rc = mcfs_etcd_json_i64(res, "TTL", &ttl);
		if (rc)
			seterr(e, "lease keepalive: bad TTL");
		else if (ttl <= 0) {
			seterr(e, "lease %" PRIx64 " expired", (uint64_t)lease_id);
			rc = -ENOENT;
		}
	}
	json_decref(res);
	if (!rc && ttl_left)
		*ttl_left = ttl;
out:
	xfer_fini(&x);
	return rc;
}

int mcfs_etcd_lease_revoke(struct mcfs_etcd *e, int64_t lease_id)
{
	json_t *req, *rep = NULL;
	int rc;

	if (!e || !lease_id)
		return -EINVAL;
	req = json_object();
	if (!req || set_i64(req, "ID", lease_id)) {
		json_decref(req);
		return -ENOMEM;
	}
	rc = call(e, "/v3/lease/revoke", req, &rep);
	json_decref(req);
	json_decref(rep);
	return rc;
}

static int put_req(const char *key, const void *val, size_t len, int64_t lease_id, json_t **out)
{
	json_t *req = json_object();
	int rc;

	*out = NULL;
	if (!req)
		return -ENOMEM;
	rc = set_b64(req, "key", key, strlen(key));
	if (!rc && len)
		rc = set_b64(req, "value", val, len);
	if (!rc && lease_id)
		rc = set_i64(req, "lease", lease_id);
	if (rc) {
		json_decref(req);
		return rc;
	}
	*out = req;
	return 0;
}

int mcfs_etcd_put(struct mcfs_etcd *e, const char *key, const void *val, size_t len,
		  int64_t lease_id, int64_t *revision)
{
	json_t *req, *rep = NULL;
	int64_t rev = 0;
	int rc;

	if (!e || bad_key(key) || (len && !val))
		return -EINVAL;
	rc = put_req(key, val, len, lease_id, &req);
	if (rc)
		return rc;
	rc = call(e, "/v3/kv/put", req, &rep);
	json_decref(req);
	if (!rc)
		rc = mcfs_etcd_parse_revision(rep, &rev);
	json_decref(rep);
	if (!rc && revision)
		*revision = rev;
	return rc;
}

int mcfs_etcd_get(struct mcfs_etcd *e, const char *key, bool prefix, mcfs_etcd_kv_fn fn, void *arg,
		  int64_t *revision)
{
	uint8_t *from = NULL, *end = NULL;
	size_t from_len, end_len = 0;
	int64_t snap = 0;
	int rc;

	if (!e || !key || (!prefix && !*key) || !fn)
		return -EINVAL;
	from_len = strlen(key);
	from = malloc(from_len ? from_len : 1);
	if (!from)
		return -ENOMEM;
	if (from_len) {
		memcpy(from, key, from_len);
	} else {
		from[0] = 0;
		from_len = 1;
	}
	if (prefix) {
		rc = prefix_end(key, strlen(key), &end, &end_len);
		if (rc)
			goto out;
	}
	for (;;) {
		struct mcfs_etcd_range r;
		json_t *req = json_object(), *rep = NULL;
		const struct mcfs_etcd_kv *last;

		rc = req ? set_b64(req, "key", from, from_len) : -ENOMEM;
		if (!rc && end)
			rc = set_b64(req, "range_end", end, end_len);
		if (!rc && end)
			rc = set_i64(req, "limit", e->page);
		if (!rc && snap)
			rc = set_i64(req, "revision", snap);
		if (!rc)
			rc = call(e, "/v3/kv/range", req, &rep);
		json_decref(req);
		if (rc)
			goto out;
		rc = mcfs_etcd_parse_range(rep, &r);
		json_decref(rep);
		if (rc) {
			seterr(e, "range: malformed reply");
			goto out;
		}
		if (!snap) {
			snap = r.revision;
			if (revision)
				*revision = snap;
		}
		for (size_t i = 0; i < r.nkvs && !rc; i++)
			rc =
			    fn(arg, r.kvs[i].key, r.kvs[i].val, r.kvs[i].val_len, r.kvs[i].mod_rev);
		if (rc || !prefix || !r.more) {
			mcfs_etcd_range_fini(&r);
			goto out;
		}
		if (!r.nkvs || !snap) {
			seterr(e, "range: 'more' without keys or revision");
			mcfs_etcd_range_fini(&r);
			rc = -EBADMSG;
			goto out;
		}
		/* next page: from just past the last key */
		last = &r.kvs[r.nkvs - 1];
		free(from);
		from = malloc(last->key_len + 1);
		if (!from) {
			mcfs_etcd_range_fini(&r);
			rc = -ENOMEM;
			goto out;
		}
		memcpy(from, last->key, last->key_len);
		from[last->key_len] = 0;
		from_len = last->key_len + 1;
		mcfs_etcd_range_fini(&r);
	}
out:
	free(from);
	free(end);
	return rc;
}

int mcfs_etcd_delete(struct mcfs_etcd *e, const char *key, bool prefix)
{
	json_t *req, *rep = NULL;
	int64_t deleted = 0;
	int rc;

	if (!e || !key || (!prefix && !*key))
		return -EINVAL;
	req = json_object();
	if (!req)
		return -ENOMEM;
	rc = set_range(req, key, prefix);
	if (!rc)
		rc = call(e, "/v3/kv/deleterange", req, &rep);
	json_decref(req);
	if (!rc)
		rc = mcfs_etcd_json_i64(rep, "deleted", &deleted);
	json_decref(rep);
	if (!rc && !deleted) {
		seterr(e, "delete: no key '%s'%s", key, prefix ? " (prefix)" : "");
		rc = -ENOENT;
	}
	return rc;
}

/* A txn doing op (request_put / request_delete_range) if guard_key's create revision is rev. */
static int guarded(struct mcfs_etcd *e, const char *guard_key, int64_t rev, const char *op,
		   json_t *opreq)
{
	json_t *req, *cmp, *rep = NULL;
	bool ok = false;
	int rc;

	cmp = json_pack("{s:s,s:s}", "target", "CREATE", "result", "EQUAL");
	req = json_pack("{s:[o],s:[{s:o}]}", "compare", cmp, "success", op, opreq);
	if (!req)
		return -ENOMEM;
	rc = set_b64(cmp, "key", guard_key, strlen(guard_key));
	if (!rc)
		rc = set_i64(cmp, "create_revision", rev);
	if (!rc)
		rc = call(e, "/v3/kv/txn", req, &rep);
	json_decref(req);
	if (!rc)
		rc = mcfs_etcd_json_bool(rep, "succeeded", &ok);
	json_decref(rep);
	if (!rc && !ok) {
		seterr(e, "guard '%s' at revision %" PRId64 " failed", guard_key, rev);
		rc = -ECANCELED;
	}
	return rc;
}

int mcfs_etcd_put_if(struct mcfs_etcd *e, const char *guard_key, int64_t guard_create_rev,
		     const char *key, const void *val, size_t len)
{
	json_t *op;
	int rc;

	if (!e || bad_key(guard_key) || guard_create_rev <= 0 || bad_key(key) || (len && !val))
		return -EINVAL;
	rc = put_req(key, val, len, 0, &op);
	if (rc)
		return rc;
	return guarded(e, guard_key, guard_create_rev, "request_put", op);
}

int mcfs_etcd_delete_if(struct mcfs_etcd *e, const char *guard_key, int64_t guard_create_rev,
			const char *key, bool prefix)
{
	json_t *op;
	int rc;

	if (!e || bad_key(guard_key) || guard_create_rev <= 0 || !key || (!prefix && !*key))
		return -EINVAL;
	op = json_object();
	if (!op)
		return -ENOMEM;
	rc = set_range(op, key, prefix);
	if (rc) {
		json_decref(op);
		return rc;
	}
	return guarded(e, guard_key, guard_create_rev, "request_delete_range", op);
}

/* ---------------------------------------------------------------------------
 * Elections
 */

static int count_key(void *arg, const char *key, const void *val, size_t len, int64_t mod_rev)
{
	(void)key, (void)val, (void)len, (void)mod_rev;
	(*(int *)arg)++;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/*
 * After a campaign timed out etcd withdraws the candidate key
 * ("<election>/<lease in hex>", as concurrency.Election names it) in the
 * background: the cancelled campaign resigns. Wait for that, briefly: a new
 * campaign racing with it would reuse the key just before it is deleted and
 * then believe itself elected on a key that is gone. The key stays when the
 * election was won just as the reply was lost; the next campaign then gets it
 * back at once.
 */
static void wait_withdrawn(struct mcfs_etcd *e, const char *election, int64_t lease_id)
{
	uint64_t end = mcfs_now_ms() + (e->timeout_ms < 1000 ? e->timeout_ms : 1000);
	char *key;

	if (asprintf(&key, "%s/%" PRIx64, election, (uint64_t)lease_id) < 0)
		return;
	for (;;) {
		int n = 0;

		if (mcfs_etcd_get(e, key, false, count_key, &n, NULL) || !n)
			break;
		if (mcfs_now_ms() >= end)
			break;
		sleep_ms(20);
	}
	free(key);
}

int mcfs_etcd_campaign(struct mcfs_etcd *e, const char *election, int64_t lease_id, const void *val,
		       size_t len, unsigned timeout_ms, struct mcfs_etcd_leader *out)
{
	json_t *req, *rep = NULL;
	struct xfer x = {0};
	char *body, msg[ETCD_ERRMSG - 64] = "";
	int rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!e || bad_key(election) || !lease_id || (len && !val) || !out)
		return -EINVAL;
	req = json_object();
	rc = req ? set_b64(req, "name", election, strlen(election)) : -ENOMEM;
	if (!rc)
		rc = set_i64(req, "lease", lease_id);
	if (!rc)
		rc = set_b64(req, "value", val, len);
	body = rc ? NULL : json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body)
		return rc ? rc : -ENOMEM;
	/* etcd blocks the call until elected; the client's deadline ends it (and the candidacy) */
	rc = request(e, "/v3/election/campaign", body, timeout_ms ? timeout_ms : e->timeout_ms,
		     REQ_LONG, &x);
	free(body);
	if (!rc)
		rc = mcfs_etcd_parse_reply(200, x.data, x.len, &rep, msg, sizeof(msg));
	if (!rc) {
		rc = mcfs_etcd_parse_leader(rep, election, out);
		if (rc == -ENOENT)
			rc = -EBADMSG; /* a campaign reply always names the leader */
		if (rc)
			snprintf(msg, sizeof(msg), "malformed campaign reply");
	}
	if (rc == -ETIMEDOUT) {
		if (e->connected)
			wait_withdrawn(e, election, lease_id);
		seterr(e, "campaign for '%s': not elected in time", election);
	} else if (rc && rc != -ETIMEDOUT && !e->errmsg[0])
		seterr(e, "campaign: %s", msg);
	if (!rc && len) {
		out->value = malloc(len + 1);
		if (!out->value) {
			mcfs_etcd_leader_fini(out);
			rc = -ENOMEM;
		} else {
			memcpy(out->value, val, len);
			((char *)out->value)[len] = '\0';
			out->value_len = len;
		}
	}
	json_decref(rep);
	xfer_fini(&x);
	return rc;
}

int mcfs_etcd_leader(struct mcfs_etcd *e, const char *election, struct mcfs_etcd_leader *out)
{
	json_t *req, *rep = NULL;
	int rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!e || bad_key(election) || !out)
		return -EINVAL;
	req = json_object();
	rc = req ? set_b64(req, "name", election, strlen(election)) : -ENOMEM;
	if (!rc)
		rc = call(e, "/v3/election/leader", req, &rep);
	json_decref(req);
	if (!rc) {
		rc = mcfs_etcd_parse_leader(rep, election, out);
		if (rc)
			seterr(e, "leader: malformed reply");
	}
	json_decref(rep);
	return rc;
}

int mcfs_etcd_resign(struct mcfs_etcd *e, const struct mcfs_etcd_leader *l)
{
	json_t *req, *lk, *rep = NULL;
	int rc;

	if (!e || !l || bad_key(l->name) || bad_key(l->key) || l->rev <= 0)
		return -EINVAL;
	lk = json_object();
	req = json_pack("{s:o}", "leader", lk);
	if (!req)
		return -ENOMEM;
	rc = set_b64(lk, "name", l->name, strlen(l->name));
	if (!rc)
		rc = set_b64(lk, "key", l->key, strlen(l->key));
	if (!rc)
		rc = set_i64(lk, "rev", l->rev);
	if (!rc)
		rc = set_i64(lk, "lease", l->lease);
	if (!rc)
		rc = call(e, "/v3/election/resign", req, &rep);
	json_decref(req);
	json_decref(rep);
	return rc;
}

/*
 * The leader as etcd's concurrency.Election defines it: the key under
 * "<election>/" with the lowest create revision. *rev gets the revision the
 * answer is valid at. 0 or -ENOENT (no candidate).
 */
static int leader_now(struct mcfs_etcd *e, const char *election, struct mcfs_etcd_leader *out,
		      int64_t *rev)
{
	struct mcfs_etcd_range r;
	json_t *req, *rep = NULL;
	char *pfx;
	int rc;

	memset(out, 0, sizeof(*out));
	if (asprintf(&pfx, "%s/", election) < 0)
		return -ENOMEM;
	req = json_pack("{s:s,s:s,s:s}", "limit", "1", "sort_order", "ASCEND", "sort_target",
			"CREATE");
	rc = req ? set_range(req, pfx, true) : -ENOMEM;
	if (!rc)
		rc = call(e, "/v3/kv/range", req, &rep);
	json_decref(req);
	free(pfx);
	if (rc)
		return rc;
	rc = mcfs_etcd_parse_range(rep, &r);
	json_decref(rep);
	if (rc) {
		seterr(e, "range: malformed reply");
		return rc;
	}
	*rev = r.revision;
	if (!r.nkvs) {
		rc = -ENOENT;
	} else {
		struct mcfs_etcd_kv *kv = &r.kvs[0];

		out->name = strdup(election);
		if (!out->name) {
			rc = -ENOMEM;
		} else {
			out->key = kv->key;
			out->rev = kv->create_rev;
			out->lease = kv->lease;
			kv->key = NULL;
			if (kv->val_len) {
				out->value = kv->val;
				out->value_len = kv->val_len;
				kv->val = NULL;
			}
		}
	}
	mcfs_etcd_range_fini(&r);
	return rc;
}

static bool same_leader(const struct mcfs_etcd_leader *a, const struct mcfs_etcd_leader *b)
{
	return a->key && b->key && !strcmp(a->key, b->key) && a->rev == b->rev &&
	       a->value_len == b->value_len &&
	       (!a->value_len || !memcmp(a->value, b->value, a->value_len));
}

/* Watch hook: stop at the first event, or when the watch is cancelled (compaction). */
static int watch_hook(struct xfer *x)
{
	for (;;) {
		json_t *res = NULL;
		size_t used;
		bool canceled = false;
		const json_t *ev;
		int rc;

		rc = mcfs_etcd_stream_next(x->data + x->scanned, x->len - x->scanned, false, &used,
					   &res, NULL, 0);
		x->scanned += used;
		if (rc <= 0)
			return rc;
		ev = json_object_get(res, "events");
		if (mcfs_etcd_json_bool(res, "canceled", &canceled) || canceled ||
		    json_array_size(ev) > 0) {
			json_decref(res);
			return 1;
		}
		json_decref(res); /* created, progress */
	}
}

int mcfs_etcd_observe(struct mcfs_etcd *e, const char *election,
		      const struct mcfs_etcd_leader *known, unsigned timeout_ms,
		      struct mcfs_etcd_leader *out)
{
	uint64_t deadline = mcfs_now_ms() + timeout_ms;
	bool known_any = known && known->key;
	char *pfx = NULL;
	int rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!e || bad_key(election) || !out)
		return -EINVAL;
	if (asprintf(&pfx, "%s/", election) < 0)
		return -ENOMEM;
	for (;;) {
		struct mcfs_etcd_leader cur;
		int64_t rev = 0;
		uint64_t now;
		json_t *cr, *req;
		struct xfer x = {0};
		char *body;

		rc = leader_now(e, election, &cur, &rev);
		if (rc && rc != -ENOENT)
			break;
		if (!rc && !(known_any && same_leader(known, &cur))) {
			*out = cur;
			break;
		}
		mcfs_etcd_leader_fini(&cur);
		if (rc == -ENOENT && known_any) {
			seterr(e, "election '%s' has no leader", election);
			break;
		}
		now = mcfs_now_ms();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		/* wait for any change under the election's prefix after what we saw */
		cr = json_object();
		req = json_pack("{s:o}", "create_request", cr);
		rc = req ? set_range(cr, pfx, true) : -ENOMEM;
		if (!rc)
			rc = set_i64(cr, "start_revision", rev + 1);
		body = rc ? NULL : json_dumps(req, JSON_COMPACT);
		json_decref(req);
		if (!body) {
			if (!rc)
				rc = -ENOMEM;
			break;
		}
		x.hook = watch_hook;
		rc = request(e, "/v3/watch", body, (unsigned)(deadline - now), REQ_LONG, &x);
		free(body);
		xfer_fini(&x);
		if (rc < 0) {
			if (!e->errmsg[0])
				seterr(e, "watch on '%s': %s", pfx, strerror(-rc));
			break;
		}
		/* 1: something changed; 0: the stream ended. Either way, look again. */
		if (rc == 0) {
			now = mcfs_now_ms();
			sleep_ms(now + 50 < deadline
				     ? 50
				     : (unsigned)(deadline > now ? deadline - now : 0));
		}
	}
	free(pfx);
	if (rc == -ETIMEDOUT)
		seterr(e, "election '%s': no leader change in %u ms", election, timeout_ms);
	return rc;
}
