// SPDX-License-Identifier: Apache-2.0
/*
 * Lines are parsed one at a time with jansson, so a trace of any length
 * costs memory for its ids only. The set of seen ids is a uthash table
 * whose entries come from one array (one per id of the trace), so building
 * it is a single allocation.
 */
#include "tools/bench/trace.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct seen {
	uint64_t id;
	UT_hash_handle hh;
};

static int fail(char *err, size_t errsz, const char *name, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errsz, const char *name, size_t line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errsz)
		snprintf(err, errsz, "%s:%zu: %s", name, line, msg);
	return -EINVAL;
}

/* A JSON number that is a non-negative integer (1.0 counts, 1.5 does not). */
static int get_uint(json_t *v, uint64_t max, uint64_t *out)
{
	double d;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0 || (uint64_t)i > max)
			return -EINVAL;
		*out = (uint64_t)i;
		return 0;
	}
	if (!json_is_real(v))
		return -EINVAL;
	d = json_real_value(v);
	if (!(d >= 0) || d > (double)max || d != (double)(uint64_t)d)
		return -EINVAL;
	*out = (uint64_t)d;
	return 0;
}

static int push_id(struct bench_trace *t, size_t *cap, uint64_t id)
{
	if (t->nids == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4096;
		uint64_t *n = realloc(t->ids, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->ids = n;
		*cap = ncap;
	}
	t->ids[t->nids++] = id;
	return 0;
}

static int push_req(struct bench_trace *t, size_t *cap, const struct bench_req *r)
{
	if (t->nreqs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		struct bench_req *n = realloc(t->reqs, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->reqs = n;
		*cap = ncap;
	}
	t->reqs[t->nreqs++] = *r;
	return 0;
}

static int parse_line(struct bench_trace *t, size_t *idcap, size_t *reqcap, const char *line,
		      size_t len, const char *name, size_t lineno, char *err, size_t errsz)
{
	json_error_t jerr;
	json_t *o, *v, *ids;
	struct bench_req r = {0};
	uint64_t x;
	size_t i, first = t->nids;
	int ret = -EINVAL;

	/* jansson refuses anything but blanks after the value. */
	o = json_loadb(line, len, 0, &jerr);
	if (!o)
		return fail(err, errsz, name, lineno, "not JSON: %s", jerr.text);
	if (!json_is_object(o)) {
		ret = fail(err, errsz, name, lineno, "not a JSON object");
		goto out_decref;
	}
	v = json_object_get(o, "timestamp");
	if (!v || get_uint(v, UINT64_MAX / 2, &r.ts_ms)) {
		ret = fail(err, errsz, name, lineno,
			   "\"timestamp\" must be a non-negative integer (ms)");
		goto out_decref;
	}
	v = json_object_get(o, "input_length");
	if (v) {
		if (get_uint(v, UINT32_MAX, &x)) {
			ret = fail(err, errsz, name, lineno,
				   "\"input_length\" must be a non-negative integer");
			goto out_decref;
		}
		r.input_len = (uint32_t)x;
	}
	v = json_object_get(o, "output_length");
	if (v) {
		if (get_uint(v, UINT32_MAX, &x)) {
			ret = fail(err, errsz, name, lineno,
				   "\"output_length\" must be a non-negative integer");
			goto out_decref;
		}
		r.output_len = (uint32_t)x;
	}
	ids = json_object_get(o, "hash_ids");
	if (!json_is_array(ids)) {
		ret = fail(err, errsz, name, lineno, "\"hash_ids\" must be an array of block ids");
		goto out_decref;
	}
	json_array_foreach(ids, i, v)
	{
		/* UINT64_MAX is kept out: it is BENCH_BLOB_ANY_KEY to the blob checker. */
		if (get_uint(v, UINT64_MAX - 1, &x)) {
			ret = fail(err, errsz, name, lineno,
				   "\"hash_ids\"[%zu] is not a non-negative integer", i);
			goto out_drop_ids;
		}
		ret = push_id(t, idcap, x);
		if (ret)
			goto out_drop_ids;
	}
	r.nblocks = t->nids - first;
	/* ids stays NULL until loading ends: the id array may still move. */
	ret = push_req(t, reqcap, &r);
	if (ret)
		goto out_drop_ids;
	json_decref(o);
	return 0;

out_drop_ids:
	t->nids = first;
out_decref:
	json_decref(o);
	return ret;
}

int bench_trace_parse(FILE *f, const char *name, size_t limit, struct bench_trace **out, char *err,
		      size_t errsz)
{
	struct bench_trace *t;
	char *line = NULL;
	size_t linecap = 0, lineno = 0, idcap = 0, reqcap = 0, off = 0;
	ssize_t n;
	int ret = 0;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	while ((!limit || t->nreqs < limit) && (n = getline(&line, &linecap, f)) >= 0) {
		size_t i = 0;

		lineno++;
		while (i < (size_t)n && strchr(" \t\r\n", line[i]))
			i++;
		if (i == (size_t)n)
			continue;
		ret = parse_line(t, &idcap, &reqcap, line, (size_t)n, name, lineno, err, errsz);
		if (ret)
			goto out_free;
	}
	if (ferror(f)) {
		fail(err, errsz, name, lineno + 1, "read error");
		ret = -EIO;
		goto out_free;
	}
	for (size_t i = 0; i < t->nreqs; i++) {
		t->reqs[i].ids = t->ids + off;
		off += t->reqs[i].nblocks;
	}
	free(line);
	*out = t;
	return 0;

out_free:
	free(line);
	bench_trace_free(t);
	return ret;
}

int bench_trace_load(const char *path, size_t limit, struct bench_trace **out, char *err,
		     size_t errsz)
{
	FILE *f = fopen(path, "r");
	int ret;

	if (!f) {
		ret = -errno;
		if (err && errsz)
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return ret;
	}
	ret = bench_trace_parse(f, path, limit, out, err, errsz);
	fclose(f);
	return ret;
}

void bench_trace_free(struct bench_trace *t)
{
	if (!t)
		return;
	free(t->reqs);
	free(t->ids);
	free(t);
}

int bench_trace_ideal(const struct bench_trace *t, struct bench_hits *out)
{
	struct seen *pool, *set = NULL, *e;
	size_t used = 0;

	memset(out, 0, sizeof(*out));
	pool = calloc(t->nids ? t->nids : 1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	for (size_t i = 0; i < t->nreqs; i++) {
		const struct bench_req *r = &t->reqs[i];
		bool missed = false;

		out->requests++;
		out->blocks += r->nblocks;
		for (size_t j = 0; j < r->nblocks; j++) {
			uint64_t id = r->ids[j];

			HASH_FIND(hh, set, &id, sizeof(id), e);
			if (e && !missed) {
				out->hits++;
				continue;
			}
			missed = true;
			if (!e) {
				e = &pool[used++];
				e->id = id;
				HASH_ADD(hh, set, id, sizeof(e->id), e);
			}
		}
	}
	HASH_CLEAR(hh, set);
	free(pool);
	return 0;
}
