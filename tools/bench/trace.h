/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KV-cache request traces in the Mooncake FAST'25 format: one JSON object
 * per line, {"timestamp": ms, "input_length": tokens, "output_length":
 * tokens, "hash_ids": [block ids]}, where equal ids are the same KV block
 * (a prefix hash over 512-token blocks). This module loads a trace and
 * does the hit accounting of an unbounded cache: a request reuses the
 * longest prefix of its blocks that the cache holds and adds the rest.
 */
#ifndef MCFS_BENCH_TRACE_H
#define MCFS_BENCH_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct bench_req {
	uint64_t ts_ms; /* arrival, ms from the start of the trace */
	uint32_t input_len;
	uint32_t output_len;
	size_t nblocks;
	const uint64_t *ids; /* nblocks ids; points into the trace's id array */
};

struct bench_trace {
	size_t nreqs;
	struct bench_req *reqs; /* owned */
	size_t nids;
	uint64_t *ids; /* owned: every request's ids, back to back */
};

struct bench_hits {
	uint64_t requests;
	uint64_t blocks;
	uint64_t hits; /* blocks found in the cache (the reused prefixes) */
};

/*
 * Reads at most limit requests (0: all) from f, named name in messages.
 * Blank lines are skipped; timestamp and hash_ids are required, the
 * lengths optional (0). On a malformed line, -EINVAL with "NAME:LINE:
 * what" in err (errsz bytes). On success *out is a new trace, released
 * with bench_trace_free(). 0, -EINVAL, -ENOMEM or -errno of reading.
 */
int bench_trace_parse(FILE *f, const char *name, size_t limit, struct bench_trace **out, char *err,
		      size_t errsz);
/* bench_trace_parse() of the file at path. */
int bench_trace_load(const char *path, size_t limit, struct bench_trace **out, char *err,
		     size_t errsz);
void bench_trace_free(struct bench_trace *t);

/*
 * Hit accounting of an unbounded cache fed with the requests in order:
 * each request's hits are its longest prefix of ids already seen, then all
 * its ids are added. The ideal a replay is held against. 0 or -ENOMEM.
 */
int bench_trace_ideal(const struct bench_trace *t, struct bench_hits *out);

#endif
