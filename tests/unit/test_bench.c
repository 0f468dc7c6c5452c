// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of mcfs-bench's own logic (tools/bench/): the latency
 * histogram, verifiable blobs (a corrupted byte, a torn mix of two
 * writers, a short file are all caught), trace parsing with its
 * "FILE:LINE:" errors, the hit accounting of a small hand-computed trace
 * (ideal and replayed on a temp directory, over one and two directories),
 * and the replay catching a corrupted block. No timing is asserted except
 * that --speed waits at least as long as the trace says.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/bench/blob.h"
#include "tools/bench/cli.h"
#include "tools/bench/fs.h"
#include "tools/bench/replay.h"
#include "tools/bench/stats.h"
#include "tools/bench/trace.h"

/* ---- histogram ---------------------------------------------------------- */

Test(bench_hist, buckets_are_ordered_and_tight)
{
	uint64_t prev = 0;

	for (uint64_t v = 0; v < 1000000; v += 1 + v / 50) {
		unsigned b = bench_hist_bucket(v);

		cr_assert_lt(b, BENCH_HIST_BUCKETS);
		cr_assert_leq(bench_hist_bucket_low(b), v, "v %llu", (unsigned long long)v);
		cr_assert_geq(b, prev);
		/* The bucket is at most 1/64 of the value wide. */
		cr_assert_leq(v - bench_hist_bucket_low(b), v / 64 + 1);
		prev = b;
	}
	cr_assert_lt(bench_hist_bucket(UINT64_MAX), BENCH_HIST_BUCKETS);
	for (unsigned b = 0; b < 200; b++)
		cr_assert_eq(bench_hist_bucket(bench_hist_bucket_low(b)), b);
}

Test(bench_hist, quantiles_and_merge)
{
	struct bench_hist a, b;

	bench_hist_init(&a);
	bench_hist_init(&b);
	cr_assert_eq(bench_hist_quantile(&a, 0.5), 0);
	/* 1..10000 us, split over two histograms as two threads would. */
	for (uint64_t us = 1; us <= 10000; us++)
		bench_hist_add(us % 2 ? &a : &b, us * 1000);
	bench_hist_merge(&a, &b);
	cr_assert_eq(a.count, 10000);
	cr_assert_eq(a.min_ns, 1000);
	cr_assert_eq(a.max_ns, 10000000);
	double p50 = (double)bench_hist_quantile(&a, 0.5),
	       p99 = (double)bench_hist_quantile(&a, 0.99);
	cr_assert(p50 > 5000e3 * 0.98 && p50 < 5000e3 * 1.02, "p50 %f", p50);
	cr_assert(p99 > 9900e3 * 0.98 && p99 < 9900e3 * 1.02, "p99 %f", p99);
	cr_assert_eq(bench_hist_quantile(&a, 1), 10000000);
	cr_assert_float_eq(bench_hist_mean_ns(&a), 5000.5e3, 1);
}

/* ---- blobs -------------------------------------------------------------- */

static struct bench_pool pool;

static void pool_setup(void)
{
	cr_assert_eq(bench_pool_init(&pool, 42, 1 << 20), 0);
}

static void pool_teardown(void)
{
	bench_pool_fini(&pool);
}

TestSuite(bench_blob, .init = pool_setup, .fini = pool_teardown);

Test(bench_blob, roundtrip_every_size)
{
	static const size_t sizes[] = {64, 65, 100, 4096, 65536, (1 << 20) + 64};
	struct bench_blob_hdr h;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *b = malloc(sizes[i]);

		cr_assert_eq(bench_blob_fill(&pool, 7, 3, b, sizes[i]), 0);
		cr_assert_eq(bench_blob_check(&pool, b, sizes[i], 7, &h, NULL), BENCH_BLOB_OK);
		cr_assert_eq(h.key, 7);
		cr_assert_eq(h.version, 3);
		cr_assert_eq(h.len, sizes[i]);
		free(b);
	}
	uint8_t small[63];
	cr_assert_eq(bench_blob_fill(&pool, 1, 1, small, sizeof(small)), -EINVAL);
	/* The pool is 1 MiB + 1 MiB of slack: a 3 MiB body does not fit. */
	uint8_t *big = malloc(3 << 20);
	cr_assert_eq(bench_blob_fill(&pool, 1, 1, big, 3 << 20), -EINVAL, "body larger than pool");
	free(big);
}

Test(bench_blob, every_corrupted_byte_is_caught)
{
	enum { LEN = 4096 };
	uint8_t b[LEN];
	size_t bad;

	cr_assert_eq(bench_blob_fill(&pool, 9, 1, b, LEN), 0);
	/* One flipped bit anywhere: header bytes fail the checksum, body bytes the compare. */
	for (size_t at = 0; at < LEN; at += (at < 64 ? 1 : 97)) {
		b[at] ^= 0x10;
		enum bench_blob_verdict v = bench_blob_check(&pool, b, LEN, 9, NULL, &bad);
		if (at < BENCH_BLOB_HDR_LEN) {
			cr_assert_eq(v, BENCH_BLOB_CORRUPT, "byte %zu", at);
		} else {
			cr_assert_eq(v, BENCH_BLOB_TORN, "byte %zu", at);
			cr_assert_eq(bad, at);
		}
		b[at] ^= 0x10;
	}
	cr_assert_eq(bench_blob_check(&pool, b, LEN, 9, NULL, NULL), BENCH_BLOB_OK);
	b[LEN - 1] ^= 1;
	cr_assert_eq(bench_blob_check(&pool, b, LEN, 9, NULL, &bad), BENCH_BLOB_TORN);
	cr_assert_eq(bad, LEN - 1);
}

Test(bench_blob, torn_short_long_foreign)
{
	enum { LEN = 8192 };
	uint8_t a[LEN], b[LEN], mix[LEN];
	struct bench_pool other;
	size_t bad;

	cr_assert_eq(bench_blob_fill(&pool, 5, 1, a, LEN), 0);
	cr_assert_eq(bench_blob_fill(&pool, 5, 2, b, LEN), 0);
	/* Two writers of one key, the second half of the file from the other: torn. */
	memcpy(mix, a, LEN / 2);
	memcpy(mix + LEN / 2, b + LEN / 2, LEN / 2);
	cr_assert_eq(bench_blob_check(&pool, mix, LEN, 5, NULL, &bad), BENCH_BLOB_TORN);
	cr_assert_leq(bad, LEN / 2);
	/* A header of b on a's body. */
	memcpy(mix, b, 64);
	memcpy(mix + 64, a + 64, LEN - 64);
	cr_assert_eq(bench_blob_check(&pool, mix, LEN, 5, NULL, NULL), BENCH_BLOB_TORN);
	/* Truncated (a reader saw a write in progress), then shorter than a header. */
	cr_assert_eq(bench_blob_check(&pool, a, LEN - 1, 5, NULL, &bad), BENCH_BLOB_TORN);
	cr_assert_eq(bad, LEN - 1);
	cr_assert_eq(bench_blob_check(&pool, a, 63, 5, NULL, NULL), BENCH_BLOB_SHORT);
	cr_assert_eq(bench_blob_check(&pool, a, 0, 5, NULL, NULL), BENCH_BLOB_SHORT);
	/* Longer than written: the tail of a previous, longer version. */
	uint8_t longer[LEN + 10];
	memcpy(longer, a, LEN);
	memset(longer + LEN, 0xab, 10);
	cr_assert_eq(bench_blob_check(&pool, longer, LEN + 10, 5, NULL, &bad), BENCH_BLOB_TORN);
	cr_assert_eq(bad, LEN);
	/* The right blob under another key's name. */
	cr_assert_eq(bench_blob_check(&pool, a, LEN, 6, NULL, NULL), BENCH_BLOB_WRONG_KEY);
	cr_assert_eq(bench_blob_check(&pool, a, LEN, BENCH_BLOB_ANY_KEY, NULL, NULL),
		     BENCH_BLOB_OK);
	/* Written with another seed: not ours. */
	cr_assert_eq(bench_pool_init(&other, 43, LEN), 0);
	cr_assert_eq(bench_blob_check(&other, a, LEN, 5, NULL, NULL), BENCH_BLOB_CORRUPT);
	bench_pool_fini(&other);
	cr_assert_str_eq(bench_blob_verdict_str(BENCH_BLOB_TORN), "torn");
}

/* ---- trace parsing ------------------------------------------------------ */

static int parse_str(const char *text, size_t limit, struct bench_trace **t, char *err,
		     size_t errsz)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int ret;

	cr_assert_not_null(f);
	ret = bench_trace_parse(f, "t.jsonl", limit, t, err, errsz);
	fclose(f);
	return ret;
}

Test(bench_trace, parse_fields)
{
	const char *text =
	    "{\"timestamp\": 0, \"input_length\": 1024, \"output_length\": 5, \"hash_ids\": [0, "
	    "1]}\n"
	    "\n"
	    "  {\"timestamp\": 27.0, \"hash_ids\": [0, 2, 3], \"extra\": \"ignored\"}\r\n"
	    "{\"timestamp\": 1000, \"input_length\": 10, \"hash_ids\": []}";
	struct bench_trace *t;
	char err[256];

	cr_assert_eq(parse_str(text, 0, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t->nreqs, 3);
	cr_assert_eq(t->nids, 5);
	cr_assert_eq(t->reqs[0].ts_ms, 0);
	cr_assert_eq(t->reqs[0].input_len, 1024);
	cr_assert_eq(t->reqs[0].output_len, 5);
	cr_assert_eq(t->reqs[0].nblocks, 2);
	cr_assert_eq(t->reqs[0].ids[1], 1);
	cr_assert_eq(t->reqs[1].ts_ms, 27);
	cr_assert_eq(t->reqs[1].output_len, 0);
	cr_assert_eq(t->reqs[1].nblocks, 3);
	cr_assert_eq(t->reqs[1].ids[0], 0);
	cr_assert_eq(t->reqs[1].ids[2], 3);
	cr_assert_eq(t->reqs[2].ts_ms, 1000);
	cr_assert_eq(t->reqs[2].nblocks, 0);
	bench_trace_free(t);

	cr_assert_eq(parse_str(text, 2, &t, err, sizeof(err)), 0);
	cr_assert_eq(t->nreqs, 2, "--limit 2");
	cr_assert_eq(t->nids, 5);
	bench_trace_free(t);

	cr_assert_eq(parse_str("", 0, &t, err, sizeof(err)), 0);
	cr_assert_eq(t->nreqs, 0);
	bench_trace_free(t);
}

Test(bench_trace, parse_errors_name_the_line)
{
	static const struct {
		const char *text;
		const char *want;
	} bad[] = {
	    {"{\"timestamp\": 0, \"hash_ids\": [1]}\nnot json\n", "t.jsonl:2: not JSON"},
	    {"[1, 2]\n", "t.jsonl:1: not a JSON object"},
	    {"{\"hash_ids\": [1]}\n", "t.jsonl:1: \"timestamp\""},
	    {"{\"timestamp\": -1, \"hash_ids\": [1]}\n", "t.jsonl:1: \"timestamp\""},
	    {"{\"timestamp\": 1}\n", "t.jsonl:1: \"hash_ids\""},
	    {"{\"timestamp\": 1, \"hash_ids\": 5}\n", "t.jsonl:1: \"hash_ids\""},
	    {"\n\n{\"timestamp\": 1, \"hash_ids\": [1, -2]}\n", "t.jsonl:3: \"hash_ids\"[1]"},
	    {"{\"timestamp\": 1, \"hash_ids\": [1.5]}\n", "t.jsonl:1: \"hash_ids\"[0]"},
	    {"{\"timestamp\": 1, \"hash_ids\": [\"a\"]}\n", "t.jsonl:1: \"hash_ids\"[0]"},
	    {"{\"timestamp\": 1, \"input_length\": \"x\", \"hash_ids\": []}\n",
	     "t.jsonl:1: \"input_length\""},
	    {"{\"timestamp\": 1, \"hash_ids\": []} trailing\n", "t.jsonl:1: not JSON"},
	};
	struct bench_trace *t = NULL;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		cr_assert_eq(parse_str(bad[i].text, 0, &t, err, sizeof(err)), -EINVAL, "case %zu",
			     i);
		cr_assert(!strncmp(err, bad[i].want, strlen(bad[i].want)), "case %zu: '%s'", i,
			  err);
	}
	cr_assert_eq(bench_trace_load("/nonexistent/trace.jsonl", 0, &t, err, sizeof(err)),
		     -ENOENT);
}

/* ---- hit accounting ----------------------------------------------------- */

/*
 * Hand-computed, one cache, requests in order:
 *   r0 [1 2 3]    nothing cached: 0 hits, writes 1 2 3
 *   r1 [1 2 4]    1 2 hit, 4 missed: 2 hits, writes 4
 *   r2 [1 5 3]    1 hits, 5 misses; 3 is cached but after the first miss, so
 *                 it is written again (prefix reuse): 1 hit, writes 5 3
 *   r3 [1 2 4 6]  3 hits, writes 6
 *   r4 []         nothing
 * 13 blocks, 6 hits, 7 writes.
 */
static const char hand_trace[] = "{\"timestamp\": 0, \"hash_ids\": [1, 2, 3]}\n"
				 "{\"timestamp\": 0, \"hash_ids\": [1, 2, 4]}\n"
				 "{\"timestamp\": 40, \"hash_ids\": [1, 5, 3]}\n"
				 "{\"timestamp\": 60, \"hash_ids\": [1, 2, 4, 6]}\n"
				 "{\"timestamp\": 100, \"hash_ids\": []}\n";

Test(bench_trace, ideal_hand_computed)
{
	struct bench_trace *t;
	struct bench_hits h;
	char err[256];

	cr_assert_eq(parse_str(hand_trace, 0, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(bench_trace_ideal(t, &h), 0);
	cr_assert_eq(h.requests, 5);
	cr_assert_eq(h.blocks, 13);
	cr_assert_eq(h.hits, 6);
	bench_trace_free(t);

	/* An id seen only after a miss in its own request is not a hit either. */
	cr_assert_eq(
	    parse_str("{\"timestamp\": 0, \"hash_ids\": [7, 7, 7]}\n", 0, &t, err, sizeof(err)), 0);
	cr_assert_eq(bench_trace_ideal(t, &h), 0);
	cr_assert_eq(h.hits, 0);
	bench_trace_free(t);
}

/* A replay on fresh temp directories; the test removes them. */
struct replay_env {
	char root[64];
	char dirs[2][PATH_MAX];
	const char *dir_ptrs[2];
	struct bench_pool pool;
	struct bench_trace *t;
};

static void env_init(struct replay_env *e, const char *trace, int ndirs)
{
	char err[256];

	snprintf(e->root, sizeof(e->root), "/tmp/mcfs-test-bench.XXXXXX");
	cr_assert_not_null(mkdtemp(e->root));
	for (int i = 0; i < ndirs; i++) {
		snprintf(e->dirs[i], sizeof(e->dirs[i]), "%s/d%d", e->root, i);
		cr_assert_eq(bench_fs_mkdir(e->dirs[i]), 0);
		cr_assert_eq(bench_replay_prepare(e->dirs[i]), 0);
		e->dir_ptrs[i] = e->dirs[i];
	}
	cr_assert_eq(bench_pool_init(&e->pool, 1234, 4096), 0);
	cr_assert_eq(parse_str(trace, 0, &e->t, err, sizeof(err)), 0, "%s", err);
}

static void env_fini(struct replay_env *e)
{
	bench_trace_free(e->t);
	bench_pool_fini(&e->pool);
	cr_assert_eq(bench_fs_rmtree(e->root), 0);
	cr_assert_eq(access(e->root, F_OK), -1, "temp dir left behind");
}

static struct bench_replay_conf conf_for(struct replay_env *e, int ndirs)
{
	return (struct bench_replay_conf){.dirs = e->dir_ptrs,
					  .ndirs = ndirs,
					  .block_bytes = 1000,
					  .threads = 1,
					  .io = 300,
					  .pool = &e->pool,
					  .max_messages = 0};
}

Test(bench_replay, hits_match_hand_computed)
{
	struct replay_env e;
	struct bench_replay_result r;
	struct bench_replay_conf c;
	char path[PATH_MAX + 64];
	struct stat st;

	env_init(&e, hand_trace, 1);
	c = conf_for(&e, 1);
	cr_assert_eq(bench_replay_run(&c, e.t, &r), 0);
	cr_assert_eq(r.requests, 5);
	cr_assert_eq(r.blocks, 13);
	cr_assert_eq(r.hits, 6);
	cr_assert_eq(r.writes, 7);
	cr_assert_eq(r.errors, 0);
	cr_assert_eq(r.mismatches, 0);
	cr_assert_eq(r.read.bytes, 6 * 1000);
	cr_assert_eq(r.write.bytes, 7 * 1000);
	cr_assert_eq(r.ttfb.lat.count, 4, "one first block per non-empty request");
	cr_assert_eq(r.request.lat.count, 5);
	/* The naming the serving stacks use: <dir>/<id % 256 in hex>/<id>.kv, no temp left. */
	for (uint64_t id = 1; id <= 6; id++) {
		bench_replay_block_path(path, sizeof(path), e.dirs[0], id);
		cr_assert_eq(stat(path, &st), 0, "%s", path);
		cr_assert_eq(st.st_size, 1000);
	}
	bench_replay_block_path(path, sizeof(path), e.dirs[0], 300);
	cr_assert_str_eq(path + strlen(e.dirs[0]), "/2c/300.kv");
	snprintf(path, sizeof(path), "%s/01", e.dirs[0]);
	cr_assert_eq(rmdir(path), -1, "01/ should hold 1.kv only");
	env_fini(&e);
}

Test(bench_replay, two_dirs_are_two_caches_unless_shared)
{
	struct replay_env e;
	struct bench_replay_result r;
	struct bench_replay_conf c;

	/*
	 * Round robin: d0 gets r0 [1 2 3], r2 [1 5 3], r4 []; d1 gets r1 [1 2 4],
	 * r3 [1 2 4 6]. d0: 1 hit (1 in r2); d1: 3 hits (r3). Two unshared caches: 4.
	 */
	env_init(&e, hand_trace, 2);
	c = conf_for(&e, 2);
	cr_assert_eq(bench_replay_run(&c, e.t, &r), 0);
	cr_assert_eq(r.blocks, 13);
	cr_assert_eq(r.hits, 4);
	cr_assert_eq(r.writes, 9);
	env_fini(&e);

	/* The same directory twice (one shared cache seen by two nodes): the ideal. */
	env_init(&e, hand_trace, 1);
	e.dir_ptrs[1] = e.dirs[0];
	c = conf_for(&e, 2);
	cr_assert_eq(bench_replay_run(&c, e.t, &r), 0);
	cr_assert_eq(r.hits, 6);
	env_fini(&e);
}

Test(bench_replay, corrupted_block_is_a_mismatch_and_rewritten)
{
	struct replay_env e;
	struct bench_replay_result r;
	struct bench_replay_conf c;
	char path[PATH_MAX + 64];
	int fd;

	env_init(&e, "{\"timestamp\": 0, \"hash_ids\": [1, 2]}\n", 1);
	c = conf_for(&e, 1);
	cr_assert_eq(bench_replay_run(&c, e.t, &r), 0);
	cr_assert_eq(r.writes, 2);
	/* Flip one byte in the middle of block 1's body. */
	bench_replay_block_path(path, sizeof(path), e.dirs[0], 1);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "\xff", 1, 500), 1);
	close(fd);
	cr_assert_eq(bench_replay_run(&c, e.t, &r), 0);
	cr_assert_eq(r.mismatches, 1);
	cr_assert_eq(r.hits, 0, "a bad block is no hit, and what follows it is written");
	cr_assert_eq(r.writes, 2);
	/* Rewritten: the next replay hits both. */
	cr_assert_eq(bench_replay_run(&c, e.t, &r), 0);
	cr_assert_eq(r.mismatches, 0);
	cr_assert_eq(r.hits, 2);
	env_fini(&e);
}

Test(bench_replay, speed_follows_timestamps)
{
	struct replay_env e;
	struct bench_replay_result r;
	struct bench_replay_conf c;

	/* The last request is due at 100 ms / 2 = 50 ms: the replay cannot end sooner. */
	env_init(&e, hand_trace, 1);
	c = conf_for(&e, 1);
	c.speed = 2;
	c.threads = 3;
	cr_assert_eq(bench_replay_run(&c, e.t, &r), 0);
	cr_assert_geq(r.seconds, 0.050);
	cr_assert_eq(r.requests, 5);
	cr_assert_eq(r.errors, 0);
	env_fini(&e);
}

/* ---- file helpers and option values ------------------------------------ */

Test(bench_fs, write_read_rmtree)
{
	char root[] = "/tmp/mcfs-test-bench.XXXXXX", path[PATH_MAX], tmp[PATH_MAX];
	char buf[100];
	const char data[] = "0123456789abcdef";

	cr_assert_not_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/sub", root);
	cr_assert_eq(bench_fs_mkdir(path), 0);
	cr_assert_eq(bench_fs_mkdir(path), 0, "EEXIST is fine");
	snprintf(path, sizeof(path), "%s/sub/f", root);
	snprintf(tmp, sizeof(tmp), "%s/sub/.f.tmp", root);
	cr_assert_eq(bench_fs_commit_file(tmp, path, data, 16, 3), 0);
	cr_assert_eq(access(tmp, F_OK), -1);
	cr_assert_eq(bench_fs_read_file(path, buf, sizeof(buf), 5), 16);
	cr_assert_eq(memcmp(buf, data, 16), 0);
	cr_assert_eq(bench_fs_read_file(path, buf, 10, 4), 10, "capped at cap");
	snprintf(path, sizeof(path), "%s/sub/missing", root);
	cr_assert_eq(bench_fs_read_file(path, buf, sizeof(buf), 5), -ENOENT);
	snprintf(tmp, sizeof(tmp), "%s/nodir/x", root);
	cr_assert_eq(bench_fs_commit_file(tmp, path, data, 16, 16), -ENOENT);
	cr_assert_eq(bench_fs_make_rundir(root, "seq", "1-2", false, path, sizeof(path)), 0);
	cr_assert_eq(bench_fs_make_rundir(root, "seq", "1-2", false, path, sizeof(path)), -EEXIST);
	cr_assert_eq(bench_fs_make_rundir(root, "seq", "1-2", true, path, sizeof(path)), 0);
	cr_assert(bench_fs_is_dir(path));
	cr_assert_eq(bench_fs_rmtree(root), 0);
	cr_assert_eq(access(root, F_OK), -1);
	cr_assert_eq(bench_fs_rmtree(root), 0, "a missing tree is fine");
}

Test(bench_cli, values)
{
	uint64_t v;
	double d;

	cr_assert_eq(bench_cli_parse_u64("12", 1, 100, &v), 0);
	cr_assert_eq(v, 12);
	cr_assert_eq(bench_cli_parse_u64("0", 1, 100, &v), -EINVAL);
	cr_assert_eq(bench_cli_parse_u64("101", 1, 100, &v), -EINVAL);
	cr_assert_eq(bench_cli_parse_u64("-1", 0, 100, &v), -EINVAL);
	cr_assert_eq(bench_cli_parse_u64("1x", 0, 100, &v), -EINVAL);
	cr_assert_eq(bench_cli_parse_size("16M", 64, 1ull << 32, &v), 0);
	cr_assert_eq(v, 16 << 20);
	cr_assert_eq(bench_cli_parse_size("63", 64, 1ull << 32, &v), -EINVAL);
	cr_assert_eq(bench_cli_parse_double("2.5", &d), 0);
	cr_assert_float_eq(d, 2.5, 1e-12);
	cr_assert_eq(bench_cli_parse_double("0", &d), -EINVAL);
	cr_assert_eq(bench_cli_parse_double("nan", &d), -EINVAL);
	cr_assert_eq(bench_cli_parse_duration("500ms", &v), 0);
	cr_assert_eq(v, 500000000);
	cr_assert_eq(bench_cli_parse_duration("0", &v), -EINVAL);
}
