// SPDX-License-Identifier: Apache-2.0
/*
 * Every phase walks all files with T threads (file i to thread i % T),
 * except readdir, where each thread lists the whole directory a few times
 * and an op is one entry returned. Files live in one flat directory, as a
 * batch of KV blocks does.
 */
#include "tools/bench/small.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/bench/blob.h"
#include "tools/bench/cli.h"
#include "tools/bench/fs.h"
#include "tools/bench/par.h"
#include "tools/bench/progress.h"
#include "tools/bench/report.h"
#include "tools/bench/stats.h"

#define CMD	       "small"
#define MAX_ROUNDS     100
#define MAX_THREADS    256
#define MAX_MESSAGES   5
#define READDIR_PASSES 3

enum small_op { OP_CREATE, OP_STAT, OP_READ, OP_READDIR, OP_UNLINK, NOPS };

static const char *const op_names[NOPS] = {"create+write+close", "stat", "open+read+close",
					   "readdir", "unlink"};
static const char *const op_keys[NOPS] = {"create", "stat", "read", "readdir", "unlink"};

struct small_conf {
	struct bench_common co;
	uint64_t size;
	uint64_t count;
	int threads;
	int rounds;
	const char *compare; /* borrowed from argv */
};

struct small_target {
	const char *role;
	const char *dir;
	char run[PATH_MAX];
	struct bench_phase ph[NOPS]; /* summed over rounds */
	double rate[NOPS][MAX_ROUNDS];
	uint64_t mismatches;
};

struct small_phase {
	const struct small_conf *c;
	const struct small_target *t;
	const struct bench_pool *pool;
	enum small_op op;
	uint64_t version;
	struct bench_phase *per_thread; /* c->threads */
	uint8_t **bufs;
	atomic_uint_fast64_t mismatches;
	atomic_int failed;
	atomic_int messages;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mcfs-bench small --dir DIR [options]\n"
		"COUNT small files in one directory: create+write+close, stat, open+read+close\n"
		"(verified), readdir and unlink rates with p50/p99/p999 latencies.\n"
		"  --dir DIR          directory to measure (a run directory is made inside it)\n"
		"  --size SIZE        bytes per file, at least 64 (default 4K)\n"
		"  --count N          files per round (default 2000)\n"
		"  --threads T        threads (default 1)\n"
		"  --compare REF      run the same workload on REF, alternating rounds, and print\n"
		"                     the ratios DIR / REF\n"
		"  --rounds R         rounds per directory (default 3 with --compare, else "
		"1)\n" BENCH_COMMON_HELP);
}

static void note(struct small_phase *ph, const char *fmt, const char *path, const char *why)
{
	if (atomic_fetch_add(&ph->messages, 1) < MAX_MESSAGES)
		bench_cli_err(CMD, fmt, path, why);
}

static void fail(struct small_phase *ph, int err, const char *path)
{
	int expected = 0;

	atomic_compare_exchange_strong(&ph->failed, &expected, err);
	note(ph, "%s: %s", path, strerror(-err));
}

static void mismatch(struct small_phase *ph, const char *path, const char *why)
{
	atomic_fetch_add(&ph->mismatches, 1);
	note(ph, "verify %s: %s", path, why);
}

/* readdir of the whole run directory; returns the entries named f*, or -errno. */
static long list_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	if (!d)
		return -errno;
	errno = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] == 'f')
			n++;
	if (errno) {
		int err = -errno;

		closedir(d);
		return err;
	}
	closedir(d);
	return n;
}

static void small_worker(void *arg, int tid)
{
	struct small_phase *ph = arg;
	const struct small_conf *c = ph->c;
	struct bench_phase *me = &ph->per_thread[tid];
	uint8_t *buf = ph->bufs[tid];
	char path[PATH_MAX + 32];
	uint64_t t0, lat;

	if (ph->op == OP_READDIR) {
		for (int pass = 0; pass < READDIR_PASSES && !bench_cli_stop; pass++) {
			t0 = bench_now_ns();
			long n = list_dir(ph->t->run);
			lat = bench_now_ns() - t0;
			if (n < 0) {
				me->errors++;
				fail(ph, (int)n, ph->t->run);
				return;
			}
			if ((uint64_t)n != c->count) {
				char why[64];

				snprintf(why, sizeof(why), "listed %ld of %llu files", n,
					 (unsigned long long)c->count);
				mismatch(ph, ph->t->run, why);
			}
			me->ops += (uint64_t)n;
			bench_hist_add(&me->lat, lat);
			bench_progress_add(1);
		}
		return;
	}
	for (uint64_t i = (uint64_t)tid; i < c->count; i += (uint64_t)c->threads) {
		int ret = 0;

		if (bench_cli_stop || atomic_load(&ph->failed))
			break;
		snprintf(path, sizeof(path), "%s/f%07llu", ph->t->run, (unsigned long long)i);
		switch (ph->op) {
		case OP_CREATE:
			bench_blob_fill(ph->pool, i, ph->version, buf, c->size);
			t0 = bench_now_ns();
			ret = bench_fs_write_file(path, buf, c->size, c->size);
			lat = bench_now_ns() - t0;
			break;
		case OP_STAT: {
			struct stat st;

			t0 = bench_now_ns();
			ret = stat(path, &st) ? -errno : 0;
			lat = bench_now_ns() - t0;
			if (!ret && (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != c->size)) {
				mismatch(ph, path, "stat: not a regular file of --size bytes");
				continue;
			}
			break;
		}
		case OP_READ: {
			struct bench_blob_hdr h;
			enum bench_blob_verdict v;

			t0 = bench_now_ns();
			ssize_t n = bench_fs_read_file(path, buf, c->size + 1, c->size + 1);
			lat = bench_now_ns() - t0;
			if (n < 0) {
				ret = (int)n;
				break;
			}
			v = bench_blob_check(ph->pool, buf, (size_t)n, i, &h, NULL);
			if (v == BENCH_BLOB_OK && h.version != ph->version)
				v = BENCH_BLOB_WRONG_KEY;
			if (v != BENCH_BLOB_OK) {
				mismatch(ph, path, bench_blob_verdict_str(v));
				continue;
			}
			break;
		}
		case OP_UNLINK:
			t0 = bench_now_ns();
			ret = unlink(path) ? -errno : 0;
			lat = bench_now_ns() - t0;
			break;
		default:
			return;
		}
		if (ret) {
			me->errors++;
			fail(ph, ret, path);
			break;
		}
		me->ops++;
		if (ph->op == OP_CREATE || ph->op == OP_READ)
			me->bytes += c->size;
		bench_hist_add(&me->lat, lat);
		bench_progress_add(1);
	}
}

static int run_phase(const struct small_conf *c, struct small_target *t,
		     const struct bench_pool *pool, uint8_t **bufs, int round, enum small_op op)
{
	struct small_phase ph = {
	    .c = c, .t = t, .pool = pool, .op = op, .version = (uint64_t)round + 1, .bufs = bufs};
	struct bench_phase sum;
	char label[64];
	uint64_t wall = 0;
	int ret;

	ph.per_thread = calloc((size_t)c->threads, sizeof(*ph.per_thread));
	if (!ph.per_thread)
		return -ENOMEM;
	for (int i = 0; i < c->threads; i++)
		bench_phase_init(&ph.per_thread[i], op_names[op]);
	snprintf(label, sizeof(label), "%s %s %d/%d", t->role, op_keys[op], round + 1, c->rounds);
	bench_progress_start(
	    label, op == OP_READDIR ? (uint64_t)c->threads * READDIR_PASSES : c->count, 0);
	ret = bench_par_run(c->threads, small_worker, &ph, &wall);
	bench_progress_stop();
	if (ret) {
		free(ph.per_thread);
		return ret;
	}
	bench_phase_init(&sum, op_names[op]);
	for (int i = 0; i < c->threads; i++)
		bench_phase_merge(&sum, &ph.per_thread[i]);
	sum.seconds = (double)wall / 1e9;
	bench_phase_merge(&t->ph[op], &sum);
	t->rate[op][round] = bench_phase_ops_per_s(&sum);
	t->mismatches += atomic_load(&ph.mismatches);
	free(ph.per_thread);
	if (bench_cli_stop)
		return -EINTR;
	return atomic_load(&ph.failed);
}

static int run_round(const struct small_conf *c, struct small_target *t,
		     const struct bench_pool *pool, uint8_t **bufs, int round)
{
	int ret = 0;

	for (int op = 0; op < NOPS && !ret; op++) {
		/* --keep leaves the last round's files. */
		if (op == OP_UNLINK && c->co.keep && round + 1 == c->rounds)
			break;
		ret = run_phase(c, t, pool, bufs, round, (enum small_op)op);
	}
	if (ret) {
		/* A failed round leaves files: remove them so the next one starts clean. */
		char path[PATH_MAX + 32];

		for (uint64_t i = 0; i < c->count; i++) {
			snprintf(path, sizeof(path), "%s/f%07llu", t->run, (unsigned long long)i);
			unlink(path);
		}
	}
	return ret;
}

static void spread(const double *v, int n, double *lo, double *hi)
{
	*lo = *hi = n ? v[0] : 0;
	for (int i = 1; i < n; i++) {
		if (v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
}

static json_t *rounds_json(const double *v, int n)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

static int parse(int argc, char **argv, struct small_conf *c)
{
	enum { O_SIZE = BENCH_OPT_FIRST_OWN, O_COUNT, O_THREADS, O_COMPARE, O_ROUNDS };
	static const struct option lo[] = {
	    BENCH_COMMON_OPTIONS,
	    {"size", required_argument, NULL, O_SIZE},
	    {"count", required_argument, NULL, O_COUNT},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"compare", required_argument, NULL, O_COMPARE},
	    {"rounds", required_argument, NULL, O_ROUNDS},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int opt, r;

	memset(c, 0, sizeof(*c));
	bench_cli_common_init(&c->co);
	c->size = 4096;
	c->count = 2000;
	c->threads = 1;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		r = bench_cli_common(CMD, opt, optarg, &c->co);
		if (r < 0)
			return BENCH_EXIT_USAGE;
		if (r > 0)
			continue;
		switch (opt) {
		case O_SIZE:
			if (bench_cli_parse_size(optarg, BENCH_BLOB_HDR_LEN, 64 << 20, &c->size))
				return bench_cli_usage(CMD, "--size '%s': want 64 to 64M bytes",
						       optarg);
			break;
		case O_COUNT:
			if (bench_cli_parse_u64(optarg, 1, 10000000, &c->count))
				return bench_cli_usage(CMD, "--count '%s': want 1 to 10000000",
						       optarg);
			break;
		case O_THREADS:
			if (bench_cli_parse_u64(optarg, 1, MAX_THREADS, &v))
				return bench_cli_usage(CMD, "--threads '%s': want 1 to %d", optarg,
						       MAX_THREADS);
			c->threads = (int)v;
			break;
		case O_COMPARE:
			c->compare = optarg;
			break;
		case O_ROUNDS:
			if (bench_cli_parse_u64(optarg, 1, MAX_ROUNDS, &v))
				return bench_cli_usage(CMD, "--rounds '%s': want 1 to %d", optarg,
						       MAX_ROUNDS);
			c->rounds = (int)v;
			break;
		default:
			return bench_cli_usage(CMD, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (c->co.help) {
		usage(stdout);
		return -1;
	}
	if (optind < argc)
		return bench_cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
	if (!c->co.dir)
		return bench_cli_usage(CMD, "--dir is required");
	if (!c->rounds)
		c->rounds = c->compare ? 3 : 1;
	return 0;
}

int bench_small_main(int argc, char **argv)
{
	struct small_conf c;
	struct small_target ts[2];
	struct bench_pool pool = {0};
	uint8_t **bufs = NULL;
	json_t *root;
	char tag[64], sz[32];
	int nt, ret, rc = BENCH_EXIT_FAIL;
	uint64_t mism;

	ret = parse(argc, argv, &c);
	if (ret)
		return ret < 0 ? BENCH_EXIT_OK : ret;
	nt = c.compare ? 2 : 1;
	memset(ts, 0, sizeof(ts));
	ts[0].role = "target";
	ts[0].dir = c.co.dir;
	ts[1].role = "ref";
	ts[1].dir = c.compare;
	for (int i = 0; i < nt; i++) {
		if (!bench_fs_is_dir(ts[i].dir)) {
			bench_cli_err(CMD, "%s is not a directory: give an existing directory",
				      ts[i].dir);
			return BENCH_EXIT_USAGE;
		}
		for (int op = 0; op < NOPS; op++)
			bench_phase_init(&ts[i].ph[op], op_names[op]);
	}
	bench_progress_enable(!c.co.quiet && isatty(STDOUT_FILENO));
	bench_cli_catch_signals();

	if (bench_pool_init(&pool, c.co.seed, c.size - BENCH_BLOB_HDR_LEN))
		goto out_nomem;
	bufs = calloc((size_t)c.threads, sizeof(*bufs));
	if (!bufs)
		goto out_free_pool_nomem;
	for (int i = 0; i < c.threads; i++) {
		bufs[i] = malloc(c.size + 1);
		if (!bufs[i])
			goto out_free_bufs_nomem;
	}
	bench_cli_tag(&c.co, tag, sizeof(tag));
	for (int i = 0; i < nt; i++) {
		ret =
		    bench_fs_make_rundir(ts[i].dir, CMD, tag, false, ts[i].run, sizeof(ts[i].run));
		if (ret) {
			bench_cli_err(CMD, "cannot create a run directory in %s: %s", ts[i].dir,
				      strerror(-ret));
			goto out_rmdirs;
		}
	}

	bench_report_fmt_bytes(sz, sizeof(sz), c.size);
	if (!c.co.quiet)
		printf("mcfs-bench small: %llu files x %s in one directory, %d thread(s), %d "
		       "round(s), seed %llu\n",
		       (unsigned long long)c.count, sz, c.threads, c.rounds,
		       (unsigned long long)c.co.seed);
	if (!c.co.quiet)
		bench_report_host_line(stdout);
	ret = 0;
	for (int r = 0; r < c.rounds && !ret; r++) {
		for (int k = 0; k < nt && !ret; k++) {
			int i = (r & 1) ? nt - 1 - k : k;

			ret = run_round(&c, &ts[i], &pool, bufs, r);
		}
	}
	if (ret == -EINTR)
		bench_cli_err(CMD, "interrupted");
	mism = ts[0].mismatches + ts[1].mismatches;

	if (!c.co.quiet) {
		for (int i = 0; i < nt; i++) {
			printf("  %s %s\n", ts[i].role, ts[i].dir);
			for (int op = 0; op < NOPS; op++)
				bench_report_phase_line(stdout, "    ", &ts[i].ph[op]);
		}
		for (int op = 0; nt == 2 && op < NOPS; op++) {
			double rr[MAX_ROUNDS], lo, hi;

			bench_report_ratio_line(stdout, &ts[0].ph[op], &ts[1].ph[op]);
			if (c.rounds > 1) {
				for (int r = 0; r < c.rounds; r++)
					rr[r] = ts[1].rate[op][r] > 0
						    ? ts[0].rate[op][r] / ts[1].rate[op][r]
						    : 0;
				spread(rr, c.rounds, &lo, &hi);
				printf("    rounds: %.2fx-%.2fx ops/s\n", lo, hi);
			}
		}
		if (mism)
			printf("  VERIFY FAILED: %llu mismatch(es)\n", (unsigned long long)mism);
	}

	root = bench_report_root(CMD, c.co.seed);
	if (root) {
		json_t *conf = json_object(), *targets = json_array();

		bench_report_set(conf, "dir", json_string(c.co.dir));
		bench_report_set(conf, "compare", c.compare ? json_string(c.compare) : json_null());
		bench_report_set(conf, "size", json_integer((json_int_t)c.size));
		bench_report_set(conf, "count", json_integer((json_int_t)c.count));
		bench_report_set(conf, "threads", json_integer(c.threads));
		bench_report_set(conf, "rounds", json_integer(c.rounds));
		bench_report_set(root, "config", conf);
		for (int i = 0; i < nt; i++) {
			json_t *o = json_object();

			bench_report_set(o, "role", json_string(ts[i].role));
			bench_report_set(o, "dir", json_string(ts[i].dir));
			for (int op = 0; op < NOPS; op++) {
				json_t *p = bench_report_phase_json(&ts[i].ph[op]);

				bench_report_set(p, "rounds_ops_per_s",
						 rounds_json(ts[i].rate[op], c.rounds));
				bench_report_set(o, op_keys[op], p);
				bench_report_add_plot_row(root, ts[i].dir, &ts[i].ph[op]);
			}
			bench_report_set(o, "mismatches",
					 json_integer((json_int_t)ts[i].mismatches));
			json_array_append_new(targets, o);
		}
		bench_report_set(root, "targets", targets);
		if (nt == 2) {
			json_t *ratios = json_object();

			for (int op = 0; op < NOPS; op++)
				bench_report_set(
				    ratios, op_keys[op],
				    bench_report_phase_ratio_json(&ts[0].ph[op], &ts[1].ph[op]));
			bench_report_set(root, "ratios", ratios);
		}
		bench_report_set(root, "mismatches", json_integer((json_int_t)mism));
		bench_report_set(root, "ok", json_boolean(!ret && !mism));
	}
	if (c.co.json) {
		int w = root ? bench_report_write(c.co.json, root) : -ENOMEM;

		if (w) {
			bench_cli_err(CMD, "cannot write %s: %s", c.co.json, strerror(-w));
			ret = ret ? ret : w;
		}
	}
	json_decref(root);
	rc = (!ret && !mism) ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;

out_rmdirs:
	for (int i = 0; i < nt; i++) {
		if (!ts[i].run[0])
			continue;
		if (c.co.keep) {
			if (!c.co.quiet)
				printf("  kept %s\n", ts[i].run);
		} else if ((ret = bench_fs_rmtree(ts[i].run))) {
			bench_cli_err(CMD, "cannot remove %s: %s", ts[i].run, strerror(-ret));
		}
	}
	for (int i = 0; i < c.threads; i++)
		free(bufs[i]);
	free(bufs);
	bench_pool_fini(&pool);
	return rc;

out_free_bufs_nomem:
	for (int i = 0; i < c.threads; i++)
		free(bufs[i]);
	free(bufs);
out_free_pool_nomem:
	bench_pool_fini(&pool);
out_nomem:
	bench_cli_err(CMD, "out of memory");
	return BENCH_EXIT_FAIL;
}
