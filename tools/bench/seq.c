// SPDX-License-Identifier: Apache-2.0
/*
 * Each round writes every file, reads every file, then removes them
 * (untimed), on the target and then on the reference, in the opposite
 * order on the next round: a machine that slows down halfway through a run
 * then hurts both sides alike. Content is prepared before the clock starts
 * and verified after it stops; the times are of the file system alone.
 */
#include "tools/bench/seq.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/bench/blob.h"
#include "tools/bench/cli.h"
#include "tools/bench/fs.h"
#include "tools/bench/par.h"
#include "tools/bench/progress.h"
#include "tools/bench/report.h"
#include "tools/bench/stats.h"

#define CMD	     "seq"
#define MAX_ROUNDS   100
#define MAX_THREADS  256
#define MAX_MESSAGES 5

struct seq_conf {
	struct bench_common co;
	uint64_t size;
	uint64_t count;
	uint64_t io;
	int threads;
	int rounds;
	const char *compare;  /* borrowed from argv */
	const char *read_dir; /* borrowed from argv */
};

struct seq_target {
	const char *role;	  /* "target" or "ref" */
	const char *dir;	  /* as given */
	char run[PATH_MAX];	  /* where files are written */
	char read_run[PATH_MAX];  /* where they are read back (--read-dir) */
	struct bench_phase write; /* summed over rounds */
	struct bench_phase read;  /* summed over rounds */
	double wgbps[MAX_ROUNDS]; /* per round, for the spread */
	double rgbps[MAX_ROUNDS];
	uint64_t mismatches;
	int errors;
};

/* One phase (write or read) of one round on one target. */
struct seq_phase {
	const struct seq_conf *c;
	const struct seq_target *t;
	const struct bench_pool *pool;
	uint64_t version;
	bool writing;
	struct bench_phase *per_thread; /* c->threads, each owned by its thread */
	uint8_t **bufs;			/* c->threads buffers of size + 1 bytes */
	atomic_uint_fast64_t mismatches;
	atomic_int failed; /* first -errno of an operation, 0 if none */
	atomic_int messages;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mcfs-bench seq --dir DIR [options]\n"
	    "Write COUNT files of SIZE bytes (open+write+close), read them back (open+read+close)\n"
	    "and verify every byte; report GB/s, ops/s and p50/p99/p999 latencies of both.\n"
	    "  --dir DIR          directory to measure (a run directory is made inside it)\n"
	    "  --size SIZE        bytes per file, at least 64 (K/M/G suffixes; default 1M)\n"
	    "  --count N          files per round (default 256)\n"
	    "  --threads T        threads, each taking every T-th file (default 1)\n"
	    "  --io-size SIZE     bytes per read()/write() call (default 1M)\n"
	    "  --compare REF      run the same workload on REF, alternating rounds, and print\n"
	    "                     the ratios DIR / REF (e.g. --compare /dev/shm)\n"
	    "  --rounds R         rounds per directory (default 3 with --compare, else 1)\n"
	    "  --read-dir RDIR    read back through RDIR: the same directory as DIR seen through\n"
	    "                     another mount (a remote node of the same "
	    "cluster)\n" BENCH_COMMON_HELP);
}

static void note_error(struct seq_phase *ph, int err, const char *what, const char *path)
{
	int expected = 0;

	atomic_compare_exchange_strong(&ph->failed, &expected, err);
	if (atomic_fetch_add(&ph->messages, 1) < MAX_MESSAGES)
		bench_cli_err(CMD, "%s %s: %s", what, path, strerror(-err));
}

static void seq_worker(void *arg, int tid)
{
	struct seq_phase *ph = arg;
	const struct seq_conf *c = ph->c;
	struct bench_phase *me = &ph->per_thread[tid];
	uint8_t *buf = ph->bufs[tid];
	char path[PATH_MAX + 32];

	for (uint64_t i = (uint64_t)tid; i < c->count; i += (uint64_t)c->threads) {
		uint64_t t0, lat;

		if (bench_cli_stop || atomic_load(&ph->failed))
			break;
		if (ph->writing) {
			snprintf(path, sizeof(path), "%s/f%06llu", ph->t->run,
				 (unsigned long long)i);
			bench_blob_fill(ph->pool, i, ph->version, buf, c->size);
			t0 = bench_now_ns();
			int ret = bench_fs_write_file(path, buf, c->size, c->io);
			lat = bench_now_ns() - t0;
			if (ret) {
				me->errors++;
				note_error(ph, ret, "write", path);
				break;
			}
		} else {
			struct bench_blob_hdr h;
			enum bench_blob_verdict v;
			size_t bad = 0;

			snprintf(path, sizeof(path), "%s/f%06llu", ph->t->read_run,
				 (unsigned long long)i);
			t0 = bench_now_ns();
			ssize_t n = bench_fs_read_file(path, buf, c->size + 1, c->io);
			lat = bench_now_ns() - t0;
			if (n < 0) {
				me->errors++;
				note_error(ph, (int)n, "read", path);
				break;
			}
			v = bench_blob_check(ph->pool, buf, (size_t)n, i, &h, &bad);
			if (v == BENCH_BLOB_OK && h.version != ph->version)
				v = BENCH_BLOB_WRONG_KEY;
			if (v != BENCH_BLOB_OK) {
				atomic_fetch_add(&ph->mismatches, 1);
				if (atomic_fetch_add(&ph->messages, 1) < MAX_MESSAGES)
					bench_cli_err(
					    CMD,
					    "verify %s: %s (%zd bytes read, first bad byte "
					    "at %zu)",
					    path, bench_blob_verdict_str(v), n, bad);
				continue;
			}
		}
		me->ops++;
		me->bytes += c->size;
		bench_hist_add(&me->lat, lat);
		bench_progress_add(1);
	}
}

static void unlink_worker(void *arg, int tid)
{
	struct seq_phase *ph = arg;
	char path[PATH_MAX + 32];

	for (uint64_t i = (uint64_t)tid; i < ph->c->count; i += (uint64_t)ph->c->threads) {
		snprintf(path, sizeof(path), "%s/f%06llu", ph->t->run, (unsigned long long)i);
		unlink(path);
	}
}

/* One phase on one target; adds into t's totals. 0, or -errno of the first failure. */
static int run_phase(const struct seq_conf *c, struct seq_target *t, const struct bench_pool *pool,
		     uint8_t **bufs, int round, bool writing)
{
	struct seq_phase ph = {.c = c,
			       .t = t,
			       .pool = pool,
			       .version = (uint64_t)round + 1,
			       .writing = writing,
			       .bufs = bufs};
	struct bench_phase sum, *total = writing ? &t->write : &t->read;
	char label[64];
	uint64_t wall = 0;
	int ret;

	ph.per_thread = calloc((size_t)c->threads, sizeof(*ph.per_thread));
	if (!ph.per_thread)
		return -ENOMEM;
	for (int i = 0; i < c->threads; i++)
		bench_phase_init(&ph.per_thread[i], total->name);
	snprintf(label, sizeof(label), "%s %s %d/%d", t->role, writing ? "write" : "read",
		 round + 1, c->rounds);
	bench_progress_start(label, c->count, 0);
	ret = bench_par_run(c->threads, seq_worker, &ph, &wall);
	bench_progress_stop();
	if (ret) {
		free(ph.per_thread);
		return ret;
	}
	bench_phase_init(&sum, total->name);
	for (int i = 0; i < c->threads; i++)
		bench_phase_merge(&sum, &ph.per_thread[i]);
	sum.seconds = (double)wall / 1e9;
	bench_phase_merge(total, &sum);
	(writing ? t->wgbps : t->rgbps)[round] = bench_phase_gbps(&sum);
	t->mismatches += atomic_load(&ph.mismatches);
	free(ph.per_thread);
	if (bench_cli_stop)
		return -EINTR;
	return atomic_load(&ph.failed);
}

static int run_round(const struct seq_conf *c, struct seq_target *t, const struct bench_pool *pool,
		     uint8_t **bufs, int round)
{
	struct seq_phase ph = {.c = c, .t = t};
	int ret;

	ret = run_phase(c, t, pool, bufs, round, true);
	if (!ret)
		ret = run_phase(c, t, pool, bufs, round, false);
	/* --keep leaves the last round's files; earlier rounds must go to make room. */
	if (!c->co.keep || round + 1 < c->rounds)
		bench_par_run(c->threads, unlink_worker, &ph, NULL);
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

static void print_target(const struct seq_conf *c, const struct seq_target *t)
{
	double lo, hi;

	printf("  %s %s%s%s\n", t->role, t->dir,
	       c->read_dir && !strcmp(t->role, "target") ? " -> " : "",
	       c->read_dir && !strcmp(t->role, "target") ? c->read_dir : "");
	bench_report_phase_line(stdout, "    ", &t->write);
	if (c->rounds > 1) {
		spread(t->wgbps, c->rounds, &lo, &hi);
		printf("      rounds: %.3f-%.3f GB/s\n", lo, hi);
	}
	bench_report_phase_line(stdout, "    ", &t->read);
	if (c->rounds > 1) {
		spread(t->rgbps, c->rounds, &lo, &hi);
		printf("      rounds: %.3f-%.3f GB/s\n", lo, hi);
	}
}

static void round_ratios(const double *a, const double *b, int n, double *out)
{
	for (int i = 0; i < n; i++)
		out[i] = b[i] > 0 ? a[i] / b[i] : 0;
}

static json_t *rounds_json(const double *v, int n)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

static json_t *target_json(const struct seq_conf *c, const struct seq_target *t)
{
	json_t *o = json_object(), *w, *r;

	bench_report_set(o, "role", json_string(t->role));
	bench_report_set(o, "dir", json_string(t->dir));
	w = bench_report_phase_json(&t->write);
	bench_report_set(w, "rounds_gbps", rounds_json(t->wgbps, c->rounds));
	r = bench_report_phase_json(&t->read);
	bench_report_set(r, "rounds_gbps", rounds_json(t->rgbps, c->rounds));
	bench_report_set(o, "write", w);
	bench_report_set(o, "read", r);
	bench_report_set(o, "mismatches", json_integer((json_int_t)t->mismatches));
	return o;
}

static int parse(int argc, char **argv, struct seq_conf *c)
{
	enum {
		O_SIZE = BENCH_OPT_FIRST_OWN,
		O_COUNT,
		O_THREADS,
		O_IO,
		O_COMPARE,
		O_ROUNDS,
		O_RDIR
	};
	static const struct option lo[] = {
	    BENCH_COMMON_OPTIONS,
	    {"size", required_argument, NULL, O_SIZE},
	    {"count", required_argument, NULL, O_COUNT},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"io-size", required_argument, NULL, O_IO},
	    {"compare", required_argument, NULL, O_COMPARE},
	    {"rounds", required_argument, NULL, O_ROUNDS},
	    {"read-dir", required_argument, NULL, O_RDIR},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int opt, r;

	memset(c, 0, sizeof(*c));
	bench_cli_common_init(&c->co);
	c->size = 1 << 20;
	c->count = 256;
	c->io = 1 << 20;
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
			if (bench_cli_parse_size(optarg, BENCH_BLOB_HDR_LEN, 1ull << 32, &c->size))
				return bench_cli_usage(CMD, "--size '%s': want 64 to 4G bytes",
						       optarg);
			break;
		case O_COUNT:
			if (bench_cli_parse_u64(optarg, 1, 100000000, &c->count))
				return bench_cli_usage(CMD, "--count '%s': want a positive integer",
						       optarg);
			break;
		case O_THREADS:
			if (bench_cli_parse_u64(optarg, 1, MAX_THREADS, &v))
				return bench_cli_usage(CMD, "--threads '%s': want 1 to %d", optarg,
						       MAX_THREADS);
			c->threads = (int)v;
			break;
		case O_IO:
			if (bench_cli_parse_size(optarg, 1, 1ull << 30, &c->io))
				return bench_cli_usage(CMD, "--io-size '%s': want 1 to 1G bytes",
						       optarg);
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
		case O_RDIR:
			c->read_dir = optarg;
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

int bench_seq_main(int argc, char **argv)
{
	struct seq_conf c;
	struct seq_target ts[2];
	struct bench_pool pool = {0};
	uint8_t **bufs = NULL;
	json_t *root = NULL;
	char tag[64], sz[32], io[32];
	int nt, ret, rc = BENCH_EXIT_FAIL;

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
		bench_phase_init(&ts[i].write, "write+close");
		bench_phase_init(&ts[i].read, "open+read+close");
	}
	if (c.read_dir && !bench_fs_is_dir(c.read_dir)) {
		bench_cli_err(CMD, "--read-dir %s is not a directory", c.read_dir);
		return BENCH_EXIT_USAGE;
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
		memcpy(ts[i].read_run, ts[i].run, sizeof(ts[i].run));
		if (i == 0 && c.read_dir)
			snprintf(ts[i].read_run, sizeof(ts[i].read_run), "%s/mcfs-bench-%s-%s",
				 c.read_dir, CMD, tag);
	}

	bench_report_fmt_bytes(sz, sizeof(sz), c.size);
	bench_report_fmt_bytes(io, sizeof(io), c.io);
	if (!c.co.quiet)
		printf("mcfs-bench seq: %llu files x %s, %d thread(s), %d round(s), io %s, seed "
		       "%llu\n",
		       (unsigned long long)c.count, sz, c.threads, c.rounds, io,
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

	uint64_t mism = ts[0].mismatches + ts[1].mismatches;
	if (!c.co.quiet) {
		for (int i = 0; i < nt; i++)
			print_target(&c, &ts[i]);
		if (nt == 2) {
			double rw[MAX_ROUNDS], rr[MAX_ROUNDS], lo, hi;

			bench_report_ratio_line(stdout, &ts[0].write, &ts[1].write);
			round_ratios(ts[0].wgbps, ts[1].wgbps, c.rounds, rw);
			spread(rw, c.rounds, &lo, &hi);
			if (c.rounds > 1)
				printf("    rounds: %.2fx-%.2fx GB/s\n", lo, hi);
			bench_report_ratio_line(stdout, &ts[0].read, &ts[1].read);
			round_ratios(ts[0].rgbps, ts[1].rgbps, c.rounds, rr);
			spread(rr, c.rounds, &lo, &hi);
			if (c.rounds > 1)
				printf("    rounds: %.2fx-%.2fx GB/s\n", lo, hi);
		}
		if (mism)
			printf("  VERIFY FAILED: %llu file(s) did not read back as written\n",
			       (unsigned long long)mism);
	}

	root = bench_report_root(CMD, c.co.seed);
	if (root) {
		json_t *conf = json_object(), *targets = json_array();

		bench_report_set(conf, "dir", json_string(c.co.dir));
		bench_report_set(conf, "compare", c.compare ? json_string(c.compare) : json_null());
		bench_report_set(conf, "read_dir",
				 c.read_dir ? json_string(c.read_dir) : json_null());
		bench_report_set(conf, "size", json_integer((json_int_t)c.size));
		bench_report_set(conf, "count", json_integer((json_int_t)c.count));
		bench_report_set(conf, "threads", json_integer(c.threads));
		bench_report_set(conf, "rounds", json_integer(c.rounds));
		bench_report_set(conf, "io_size", json_integer((json_int_t)c.io));
		bench_report_set(root, "config", conf);
		for (int i = 0; i < nt; i++) {
			json_array_append_new(targets, target_json(&c, &ts[i]));
			bench_report_add_plot_row(root, ts[i].dir, &ts[i].write);
			bench_report_add_plot_row(root, ts[i].dir, &ts[i].read);
		}
		bench_report_set(root, "targets", targets);
		if (nt == 2) {
			json_t *ratios = json_object();
			double rw[MAX_ROUNDS], rr[MAX_ROUNDS];
			json_t *w = bench_report_phase_ratio_json(&ts[0].write, &ts[1].write);
			json_t *rd = bench_report_phase_ratio_json(&ts[0].read, &ts[1].read);

			round_ratios(ts[0].wgbps, ts[1].wgbps, c.rounds, rw);
			round_ratios(ts[0].rgbps, ts[1].rgbps, c.rounds, rr);
			bench_report_set(w, "rounds_gbps", rounds_json(rw, c.rounds));
			bench_report_set(rd, "rounds_gbps", rounds_json(rr, c.rounds));
			bench_report_set(ratios, "write", w);
			bench_report_set(ratios, "read", rd);
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
	rc = (!ret && !mism) ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
	json_decref(root);

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
	bench_cli_err(CMD, "out of memory for %d buffer(s) of %llu bytes", c.threads,
		      (unsigned long long)c.size);
	return BENCH_EXIT_FAIL;
}
