// SPDX-License-Identifier: Apache-2.0
/*
 * Workers take requests in trace order from one counter; with --speed a
 * worker sleeps until its request is due, and the request's clock starts
 * at the due time, so time to first block includes the wait for a free
 * worker, as a real queue would. A block that reads back wrong counts as a
 * mismatch (and is rewritten, like a miss): the run then exits 1.
 */
#include "tools/bench/replay.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench/cli.h"
#include "tools/bench/fs.h"
#include "tools/bench/par.h"
#include "tools/bench/progress.h"
#include "tools/bench/report.h"

#define CMD	     "trace"
#define MAX_THREADS  1024
#define DEFAULT_MSGS 5

struct replay {
	const struct bench_replay_conf *c;
	const struct bench_trace *t;
	uint64_t t0_ns;	  /* replay start: request i is due at t0 + (ts_i - ts_0) / speed */
	uint64_t base_ms; /* ts of the first request */
	atomic_size_t next;
	atomic_int messages;
	struct bench_replay_result *per_thread; /* c->threads, each owned by its thread */
};

int bench_replay_block_path(char *out, size_t outsz, const char *dir, uint64_t id)
{
	return snprintf(out, outsz, "%s/%02x/%llu.kv", dir, (unsigned)(id % 256),
			(unsigned long long)id);
}

int bench_replay_prepare(const char *dir)
{
	char path[PATH_MAX];
	int ret;

	for (unsigned i = 0; i < 256; i++) {
		if (snprintf(path, sizeof(path), "%s/%02x", dir, i) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		ret = bench_fs_mkdir(path);
		if (ret)
			return ret;
	}
	return 0;
}

static void result_init(struct bench_replay_result *r)
{
	memset(r, 0, sizeof(*r));
	bench_phase_init(&r->read, "block read");
	bench_phase_init(&r->write, "block write");
	bench_phase_init(&r->ttfb, "first block");
	bench_phase_init(&r->request, "request");
}

static void say(struct replay *rp, const char *fmt, const char *path, const char *why)
{
	if (atomic_fetch_add(&rp->messages, 1) < rp->c->max_messages)
		bench_cli_err(CMD, fmt, path, why);
}

/* Sleeps until the monotonic time due_ns, waking up to notice ^C. */
static void sleep_until(uint64_t due_ns)
{
	uint64_t now;

	while (!bench_cli_stop && (now = bench_now_ns()) < due_ns) {
		uint64_t d = due_ns - now;
		struct timespec ts;

		if (d > 100000000u)
			d = 100000000u;
		ts.tv_sec = (time_t)(d / 1000000000u);
		ts.tv_nsec = (long)(d % 1000000000u);
		nanosleep(&ts, NULL);
	}
}

static void one_request(struct replay *rp, int tid, size_t idx, uint8_t *buf, uint64_t *wseq)
{
	const struct bench_replay_conf *c = rp->c;
	const struct bench_req *q = &rp->t->reqs[idx];
	struct bench_replay_result *me = &rp->per_thread[tid];
	const char *dir = c->dirs[idx % (size_t)c->ndirs];
	char path[PATH_MAX + 64], tmp[PATH_MAX + 96];
	uint64_t start, t0, now;
	bool missed = false, first = true;

	if (c->speed > 0) {
		uint64_t rel = q->ts_ms >= rp->base_ms ? q->ts_ms - rp->base_ms : 0;

		start = rp->t0_ns + (uint64_t)((double)rel * 1e6 / c->speed);
		sleep_until(start);
		if (bench_cli_stop)
			return;
	} else {
		start = bench_now_ns();
	}
	for (size_t j = 0; j < q->nblocks; j++) {
		uint64_t id = q->ids[j];

		bench_replay_block_path(path, sizeof(path), dir, id);
		if (!missed) {
			struct bench_blob_hdr h;
			enum bench_blob_verdict v;
			size_t bad = 0;

			t0 = bench_now_ns();
			ssize_t n = bench_fs_read_file(path, buf, c->block_bytes + 1, c->io);
			now = bench_now_ns();
			if (n == -ENOENT) {
				missed = true;
			} else if (n < 0) {
				me->errors++;
				me->read.errors++;
				say(rp, "read %s: %s", path, strerror((int)-n));
				missed = true;
			} else if ((v = bench_blob_check(c->pool, buf, (size_t)n, id, &h, &bad)) !=
				   BENCH_BLOB_OK) {
				char why[96];

				snprintf(why, sizeof(why), "%s (%zd bytes, first bad byte at %zu)",
					 bench_blob_verdict_str(v), n, bad);
				me->mismatches++;
				say(rp, "verify %s: %s", path, why);
				missed = true;
			} else {
				me->hits++;
				me->read.ops++;
				me->read.bytes += (uint64_t)n;
				bench_hist_add(&me->read.lat, now - t0);
				if (first)
					bench_hist_add(&me->ttfb.lat, now - start);
				first = false;
				continue;
			}
		}
		/* A miss: write the block under a temp name and commit it by rename. */
		uint64_t version = ((uint64_t)(tid + 1) << 40) | ++*wseq;
		snprintf(tmp, sizeof(tmp), "%s/%02x/.%llu.kv.%d.%llu.tmp", dir,
			 (unsigned)(id % 256), (unsigned long long)id, tid,
			 (unsigned long long)*wseq);
		bench_blob_fill(c->pool, id, version, buf, c->block_bytes);
		t0 = bench_now_ns();
		int ret = bench_fs_commit_file(tmp, path, buf, c->block_bytes, c->io);
		now = bench_now_ns();
		if (ret) {
			me->errors++;
			me->write.errors++;
			say(rp, "write %s: %s", path, strerror(-ret));
			continue;
		}
		me->writes++;
		me->write.ops++;
		me->write.bytes += c->block_bytes;
		bench_hist_add(&me->write.lat, now - t0);
		if (first)
			bench_hist_add(&me->ttfb.lat, now - start);
		first = false;
	}
	now = bench_now_ns();
	me->requests++;
	me->blocks += q->nblocks;
	me->request.ops++;
	bench_hist_add(&me->request.lat, now - start);
	if (!first)
		me->ttfb.ops++;
	bench_progress_add(1);
}

static void replay_worker(void *arg, int tid)
{
	struct replay *rp = arg;
	uint8_t *buf = malloc(rp->c->block_bytes + 1);
	uint64_t wseq = 0;
	size_t idx;

	if (!buf) {
		rp->per_thread[tid].errors++;
		say(rp, "%s%s", "", "out of memory for a block buffer");
		return;
	}
	while (!bench_cli_stop && (idx = atomic_fetch_add(&rp->next, 1)) < rp->t->nreqs)
		one_request(rp, tid, idx, buf, &wseq);
	free(buf);
}

int bench_replay_run(const struct bench_replay_conf *c, const struct bench_trace *t,
		     struct bench_replay_result *r)
{
	struct replay rp = {.c = c, .t = t};
	uint64_t wall = 0;
	int ret;

	result_init(r);
	if (c->ndirs < 1 || c->threads < 1 || c->block_bytes < BENCH_BLOB_HDR_LEN ||
	    c->block_bytes - BENCH_BLOB_HDR_LEN > c->pool->len || !c->io)
		return -EINVAL;
	rp.per_thread = calloc((size_t)c->threads, sizeof(*rp.per_thread));
	if (!rp.per_thread)
		return -ENOMEM;
	for (int i = 0; i < c->threads; i++)
		result_init(&rp.per_thread[i]);
	rp.base_ms = t->nreqs ? t->reqs[0].ts_ms : 0;
	rp.t0_ns = bench_now_ns();
	ret = bench_par_run(c->threads, replay_worker, &rp, NULL);
	/* From t0, which due times count from: a --speed replay lasts at least the trace. */
	wall = bench_now_ns() - rp.t0_ns;
	if (!ret) {
		for (int i = 0; i < c->threads; i++) {
			struct bench_replay_result *p = &rp.per_thread[i];

			r->requests += p->requests;
			r->blocks += p->blocks;
			r->hits += p->hits;
			r->writes += p->writes;
			r->errors += p->errors;
			r->mismatches += p->mismatches;
			bench_phase_merge(&r->read, &p->read);
			bench_phase_merge(&r->write, &p->write);
			bench_phase_merge(&r->ttfb, &p->ttfb);
			bench_phase_merge(&r->request, &p->request);
		}
		r->seconds = (double)wall / 1e9;
		r->read.seconds = r->write.seconds = r->ttfb.seconds = r->request.seconds =
		    r->seconds;
	}
	free(rp.per_thread);
	if (ret)
		return ret;
	return bench_cli_stop ? -EINTR : 0;
}

/* ---- the subcommand ---------------------------------------------------- */

struct replay_opts {
	struct bench_common co;
	const char *trace;
	const char *dirs_arg; /* --dirs, borrowed from argv */
	uint64_t block_bytes;
	uint64_t limit;
	uint64_t io;
	double speed;
	int threads;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mcfs-bench trace --dir DIR --trace FILE.jsonl [options]\n"
	    "Replay a Mooncake (FAST'25) KV-cache trace as files <dir>/<id%%256 as 2 "
	    "hex>/<id>.kv:\n"
	    "a request reads its blocks in order while they exist (prefix reuse) and writes the\n"
	    "rest (temp name + rename). Reports the hit rate, the ideal hit rate of an unbounded\n"
	    "cache, blocks/s, bytes/s and time-to-first-block percentiles.\n"
	    "  --dir DIR          directory of the cache (a run directory is made inside it)\n"
	    "  --dirs D1,D2,...   spread requests round-robin over these directories instead:\n"
	    "                     mounts of one shared cache, one per prefill node\n"
	    "  --trace FILE       the trace, one JSON request per line (required)\n"
	    "  --block-bytes B    bytes of KV cache per block file (default 256K)\n"
	    "  --limit N          replay the first N requests only\n"
	    "  --speed X          start requests at their timestamps divided by X (default: all\n"
	    "                     as fast as the threads go)\n"
	    "  --threads T        requests in flight (default 4)\n"
	    "  --io-size SIZE     bytes per read()/write() call (default 1M)\n" BENCH_COMMON_HELP);
}

static int parse(int argc, char **argv, struct replay_opts *o)
{
	enum { O_TRACE = BENCH_OPT_FIRST_OWN, O_DIRS, O_BLOCK, O_LIMIT, O_SPEED, O_THREADS, O_IO };
	static const struct option lo[] = {
	    BENCH_COMMON_OPTIONS,
	    {"trace", required_argument, NULL, O_TRACE},
	    {"dirs", required_argument, NULL, O_DIRS},
	    {"block-bytes", required_argument, NULL, O_BLOCK},
	    {"limit", required_argument, NULL, O_LIMIT},
	    {"speed", required_argument, NULL, O_SPEED},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"io-size", required_argument, NULL, O_IO},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int opt, r;

	memset(o, 0, sizeof(*o));
	bench_cli_common_init(&o->co);
	o->block_bytes = 256 << 10;
	o->io = 1 << 20;
	o->threads = 4;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		r = bench_cli_common(CMD, opt, optarg, &o->co);
		if (r < 0)
			return BENCH_EXIT_USAGE;
		if (r > 0)
			continue;
		switch (opt) {
		case O_TRACE:
			o->trace = optarg;
			break;
		case O_DIRS:
			o->dirs_arg = optarg;
			break;
		case O_BLOCK:
			if (bench_cli_parse_size(optarg, BENCH_BLOB_HDR_LEN, 1ull << 31,
						 &o->block_bytes))
				return bench_cli_usage(CMD, "--block-bytes '%s': want 64 to 2G",
						       optarg);
			break;
		case O_LIMIT:
			if (bench_cli_parse_u64(optarg, 1, UINT64_MAX - 1, &o->limit))
				return bench_cli_usage(CMD, "--limit '%s': want a positive integer",
						       optarg);
			break;
		case O_SPEED:
			if (bench_cli_parse_double(optarg, &o->speed))
				return bench_cli_usage(CMD, "--speed '%s': want a positive number",
						       optarg);
			break;
		case O_THREADS:
			if (bench_cli_parse_u64(optarg, 1, MAX_THREADS, &v))
				return bench_cli_usage(CMD, "--threads '%s': want 1 to %d", optarg,
						       MAX_THREADS);
			o->threads = (int)v;
			break;
		case O_IO:
			if (bench_cli_parse_size(optarg, 1, 1ull << 30, &o->io))
				return bench_cli_usage(CMD, "--io-size '%s': want 1 to 1G", optarg);
			break;
		default:
			return bench_cli_usage(CMD, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (o->co.help) {
		usage(stdout);
		return -1;
	}
	if (optind < argc)
		return bench_cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
	if (!o->trace)
		return bench_cli_usage(CMD, "--trace FILE is required");
	if (!o->co.dir == !o->dirs_arg)
		return bench_cli_usage(CMD, "give either --dir DIR or --dirs D1,D2,...");
	return 0;
}

static void print_summary(const struct replay_opts *o, const struct bench_hits *ideal,
			  const struct bench_replay_result *r)
{
	char bb[32];
	double hr = r->blocks ? (double)r->hits / (double)r->blocks : 0;
	double ih = ideal->blocks ? (double)ideal->hits / (double)ideal->blocks : 0;
	double secs = r->seconds > 0 ? r->seconds : 1e-9;

	bench_report_fmt_bytes(bb, sizeof(bb), o->block_bytes);
	printf("  hit rate %.2f%% (ideal %.2f%% for an unbounded cache): %llu of %llu blocks read, "
	       "%llu written\n",
	       hr * 100, ih * 100, (unsigned long long)r->hits, (unsigned long long)r->blocks,
	       (unsigned long long)r->writes);
	printf("  %.0f blocks/s, %.3f GB/s (read %.3f, write %.3f), %.1f requests/s over %.2f s\n",
	       (double)(r->hits + r->writes) / secs,
	       (double)(r->read.bytes + r->write.bytes) / secs / 1e9, bench_phase_gbps(&r->read),
	       bench_phase_gbps(&r->write), (double)r->requests / secs, r->seconds);
	bench_report_phase_line(stdout, "  ", &r->ttfb);
	bench_report_phase_line(stdout, "  ", &r->request);
	bench_report_phase_line(stdout, "  ", &r->read);
	bench_report_phase_line(stdout, "  ", &r->write);
	if (r->errors || r->mismatches)
		printf("  %s: %llu error(s), %llu mismatch(es)\n",
		       r->mismatches ? "VERIFY FAILED" : "FAILED", (unsigned long long)r->errors,
		       (unsigned long long)r->mismatches);
}

static json_t *result_json(const struct replay_opts *o, const struct bench_trace *t,
			   const char *const *dirs, int ndirs, const struct bench_hits *ideal,
			   const struct bench_replay_result *r, bool ok)
{
	json_t *root = bench_report_root(CMD, o->co.seed), *conf, *jd;
	double secs = r->seconds > 0 ? r->seconds : 0;

	if (!root)
		return NULL;
	conf = json_object();
	jd = json_array();
	for (int i = 0; i < ndirs; i++)
		json_array_append_new(jd, json_string(dirs[i]));
	bench_report_set(conf, "dirs", jd);
	bench_report_set(conf, "trace", json_string(o->trace));
	bench_report_set(conf, "block_bytes", json_integer((json_int_t)o->block_bytes));
	bench_report_set(conf, "limit", json_integer((json_int_t)o->limit));
	bench_report_set(conf, "speed", o->speed > 0 ? json_real(o->speed) : json_null());
	bench_report_set(conf, "threads", json_integer(o->threads));
	bench_report_set(conf, "io_size", json_integer((json_int_t)o->io));
	bench_report_set(root, "config", conf);
	bench_report_set(root, "requests", json_integer((json_int_t)r->requests));
	bench_report_set(root, "trace_requests", json_integer((json_int_t)t->nreqs));
	bench_report_set(root, "blocks", json_integer((json_int_t)r->blocks));
	bench_report_set(root, "hits", json_integer((json_int_t)r->hits));
	bench_report_set(root, "writes", json_integer((json_int_t)r->writes));
	bench_report_set(root, "hit_rate",
			 json_real(r->blocks ? (double)r->hits / (double)r->blocks : 0));
	bench_report_set(
	    root, "ideal_hit_rate",
	    json_real(ideal->blocks ? (double)ideal->hits / (double)ideal->blocks : 0));
	bench_report_set(root, "ideal_hits", json_integer((json_int_t)ideal->hits));
	bench_report_set(root, "seconds", json_real(r->seconds));
	bench_report_set(root, "blocks_per_s",
			 json_real(secs > 0 ? (double)(r->hits + r->writes) / secs : 0));
	bench_report_set(root, "bytes_per_s",
			 json_real(secs > 0 ? (double)(r->read.bytes + r->write.bytes) / secs : 0));
	bench_report_set(root, "requests_per_s",
			 json_real(secs > 0 ? (double)r->requests / secs : 0));
	bench_report_set(root, "ttfb_us", bench_report_lat_json(&r->ttfb.lat));
	bench_report_set(root, "request_us", bench_report_lat_json(&r->request.lat));
	bench_report_set(root, "read", bench_report_phase_json(&r->read));
	bench_report_set(root, "write", bench_report_phase_json(&r->write));
	bench_report_set(root, "errors", json_integer((json_int_t)r->errors));
	bench_report_set(root, "mismatches", json_integer((json_int_t)r->mismatches));
	bench_report_set(root, "ok", json_boolean(ok));
	bench_report_add_plot_row(root, dirs[0], &r->ttfb);
	bench_report_add_plot_row(root, dirs[0], &r->request);
	bench_report_add_plot_row(root, dirs[0], &r->read);
	bench_report_add_plot_row(root, dirs[0], &r->write);
	return root;
}

int bench_replay_main(int argc, char **argv)
{
	struct replay_opts o;
	struct bench_trace *t = NULL;
	struct bench_pool pool = {0};
	struct bench_hits ideal;
	struct bench_replay_result res;
	struct bench_replay_conf rc;
	const char *dirs[BENCH_MAX_DIRS];
	char(*runs)[PATH_MAX] = NULL;
	const char *run_ptrs[BENCH_MAX_DIRS];
	char *dup = NULL, err[512], tag[64], bb[32];
	int ndirs, ret, code = BENCH_EXIT_FAIL;

	ret = parse(argc, argv, &o);
	if (ret)
		return ret < 0 ? BENCH_EXIT_OK : ret;
	ndirs = bench_cli_dirs(CMD, o.co.dir, o.dirs_arg, dirs, &dup);
	if (ndirs < 0)
		return -ndirs;
	ret = bench_trace_load(o.trace, (size_t)o.limit, &t, err, sizeof(err));
	if (ret) {
		bench_cli_err(CMD, "%s", err);
		free(dup);
		return ret == -EINVAL || ret == -ENOENT ? BENCH_EXIT_USAGE : BENCH_EXIT_FAIL;
	}
	ret = bench_trace_ideal(t, &ideal);
	if (ret)
		goto out_free_trace;
	ret = bench_pool_init(&pool, o.co.seed, o.block_bytes - BENCH_BLOB_HDR_LEN);
	if (ret)
		goto out_free_trace;
	runs = calloc((size_t)ndirs, sizeof(*runs));
	if (!runs) {
		ret = -ENOMEM;
		goto out_free_pool;
	}

	bench_progress_enable(!o.co.quiet && isatty(STDOUT_FILENO));
	bench_cli_catch_signals();
	bench_cli_tag(&o.co, tag, sizeof(tag));
	for (int i = 0; i < ndirs; i++) {
		/* The first mount makes the run directory; the others may already see it. */
		ret = bench_fs_make_rundir(dirs[i], CMD, tag, i > 0, runs[i], sizeof(runs[i]));
		if (!ret)
			ret = bench_replay_prepare(runs[i]);
		if (ret) {
			bench_cli_err(CMD, "cannot create the block directories in %s: %s", dirs[i],
				      strerror(-ret));
			goto out_rmdirs;
		}
		run_ptrs[i] = runs[i];
	}

	bench_report_fmt_bytes(bb, sizeof(bb), o.block_bytes);
	if (!o.co.quiet) {
		printf("mcfs-bench trace: %zu requests, %zu blocks of %s from %s, %d thread(s), ",
		       t->nreqs, t->nids, bb, o.trace, o.threads);
		if (o.speed > 0)
			printf("at %gx the trace's pace, ", o.speed);
		else
			printf("as fast as possible, ");
		printf("%d dir(s), seed %llu\n", ndirs, (unsigned long long)o.co.seed);
		bench_report_host_line(stdout);
	}
	rc = (struct bench_replay_conf){.dirs = run_ptrs,
					.ndirs = ndirs,
					.block_bytes = o.block_bytes,
					.threads = o.threads,
					.speed = o.speed,
					.io = o.io,
					.pool = &pool,
					.max_messages = DEFAULT_MSGS};
	bench_progress_start("replay", t->nreqs, 0);
	ret = bench_replay_run(&rc, t, &res);
	bench_progress_stop();
	if (ret == -EINTR) {
		bench_cli_err(CMD, "interrupted after %llu requests",
			      (unsigned long long)res.requests);
	} else if (ret) {
		bench_cli_err(CMD, "cannot run the replay: %s", strerror(-ret));
		goto out_rmdirs;
	}
	bool ok = !ret && !res.errors && !res.mismatches;
	if (!o.co.quiet)
		print_summary(&o, &ideal, &res);
	if (o.co.json) {
		json_t *root = result_json(&o, t, dirs, ndirs, &ideal, &res, ok);
		int w = root ? bench_report_write(o.co.json, root) : -ENOMEM;

		json_decref(root);
		if (w) {
			bench_cli_err(CMD, "cannot write %s: %s", o.co.json, strerror(-w));
			ok = false;
		}
	}
	code = ok ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;

out_rmdirs:
	for (int i = 0; i < ndirs; i++) {
		if (!runs[i][0])
			continue;
		if (o.co.keep) {
			if (!o.co.quiet)
				printf("  kept %s\n", runs[i]);
		} else if ((ret = bench_fs_rmtree(runs[i]))) {
			bench_cli_err(CMD, "cannot remove %s: %s", runs[i], strerror(-ret));
		}
	}
	free(runs);
out_free_pool:
	bench_pool_fini(&pool);
out_free_trace:
	bench_trace_free(t);
	free(dup);
	if (code == BENCH_EXIT_FAIL && ret == -ENOMEM)
		bench_cli_err(CMD, "out of memory");
	return code;
}
