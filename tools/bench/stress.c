// SPDX-License-Identifier: Apache-2.0
/*
 * A put writes a temp name and renames it over the key (commit by rename),
 * or with --inplace rewrites the key itself (O_TRUNC): then the check is
 * that the store publishes a file whole at close, which tmpfs does not
 * promise, so --inplace on tmpfs reports torn reads by design. An empty
 * file is allowed with --inplace: the name exists from its create on, on
 * the writing node, before any byte is written (POSIX); so is a stat()
 * there that finds the size written so far (one inode, one size per node),
 * while a read must still see the file empty or whole. ENOENT is
 * an expected answer to get, stat, unlink and rename: other threads remove
 * keys all the time.
 *
 * A version is (writer thread + 1) << 40 | the writer's sequence number;
 * each writer publishes its last issued sequence before it writes, so a
 * reader can tell a version that was never written (a corrupt header that
 * still checks) from a real one.
 */
#include "tools/bench/stress.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
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

#define CMD	     "stress"
#define MAX_THREADS  256
#define MAX_MESSAGES 10
#define SEQ_BITS     40
#define IO_SIZE	     (128u << 10)

enum stress_op { OP_PUT, OP_GET, OP_STAT, OP_UNLINK, OP_RENAME, NOPS };
static const char *const op_names[NOPS] = {"put", "get", "stat", "unlink", "rename"};

/* What a read or a stat can find wrong. */
enum bad { BAD_TORN, BAD_CORRUPT, BAD_SHORT, BAD_KEY, BAD_UNISSUED, BAD_SIZE, NBAD };
static const char *const bad_names[NBAD] = {"torn",	 "corrupt",  "short",
					    "wrong_key", "unissued", "bad_size"};

struct stress_conf {
	struct bench_common co;
	const char *dirs_arg; /* --dirs, borrowed from argv */
	int threads;
	uint64_t duration_ns;
	uint64_t keys;
	uint64_t min_size;
	uint64_t max_size;
	bool inplace;
	unsigned weight[NOPS];
};

struct stress {
	const struct stress_conf *c;
	struct bench_pool pool;
	/*
	 * The run directory in each of the directories stressed: thread t
	 * works in runs[t % nruns]. Mounts of one cache share one directory,
	 * so their threads race on the same keys through different nodes.
	 */
	char (*runs)[PATH_MAX];
	int nruns;
	uint64_t deadline_ns;
	atomic_uint_fast64_t *issued; /* c->threads: last sequence each writer issued */
	atomic_uint_fast64_t bad[NBAD];
	atomic_uint_fast64_t empty;    /* --inplace: files found empty, being created */
	atomic_uint_fast64_t partial;  /* --inplace: stat() sizes below --min-size, being written */
	atomic_uint_fast64_t verified; /* reads that checked out */
	atomic_uint_fast64_t verified_bytes;
	atomic_int messages;
	struct bench_phase (*per_thread)[NOPS]; /* c->threads rows */
	uint64_t (*absent)[NOPS];		/* c->threads rows: ENOENT answers */
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mcfs-bench stress --dir DIR [options]\n"
	    "Threads mixing put, get, stat, unlink and rename over shared keys; every byte read\n"
	    "is checked to be one writer's complete content (else a \"torn\" error). Exits 1 on\n"
	    "any mismatch or unexpected error.\n"
	    "  --dir DIR          directory to stress (a run directory is made inside it)\n"
	    "  --dirs D1,D2,...   spread the threads round-robin over these directories\n"
	    "                     instead: mounts of one shared cache, one per node\n"
	    "  --threads T        threads (default 4)\n"
	    "  --duration TIME    how long (10s, 500ms, 2m; default 5s)\n"
	    "  --keys N           keys shared by all threads (default 16)\n"
	    "  --min-size SIZE    smallest value, at least 64 (default 64)\n"
	    "  --max-size SIZE    largest value (default 64K)\n"
	    "  --mix LIST         weights, e.g. put=30,get=40,stat=10,unlink=10,rename=10\n"
	    "                     (the default)\n"
	    "  --inplace          puts rewrite the key in place (O_TRUNC) instead of a temp\n"
	    "                     file + rename: checks publish-at-close (a file found\n"
	    "                     empty, just created, is allowed); tmpfs fails "
	    "it\n" BENCH_COMMON_HELP);
}

static void say(struct stress *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct stress *s, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	if (atomic_fetch_add(&s->messages, 1) >= MAX_MESSAGES)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bench_cli_err(CMD, "%s", msg);
}

static const char *run_of(const struct stress *s, int tid)
{
	return s->runs[tid % s->nruns];
}

static void key_path(const char *run, uint64_t k, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/k%04llu", run, (unsigned long long)k);
}

/* Checks a read's bytes; counts and reports what is wrong. true when fine. */
static bool check_read(struct stress *s, const char *path, const uint8_t *buf, size_t n)
{
	struct bench_blob_hdr h;
	size_t bad_at = 0;
	enum bad b = NBAD;
	char why[128];

	/* An in-place put creates the name empty before it writes: POSIX, not a tear. */
	if (n == 0 && s->c->inplace) {
		atomic_fetch_add(&s->empty, 1);
		return true;
	}
	switch (bench_blob_check(&s->pool, buf, n, BENCH_BLOB_ANY_KEY, &h, &bad_at)) {
	case BENCH_BLOB_OK: {
		uint64_t w = (h.version >> SEQ_BITS), seq = h.version & ((1ull << SEQ_BITS) - 1);

		if (h.key >= s->c->keys)
			b = BAD_KEY;
		else if (w < 1 || w > (uint64_t)s->c->threads || seq < 1 ||
			 seq > atomic_load(&s->issued[w - 1]))
			b = BAD_UNISSUED;
		break;
	}
	case BENCH_BLOB_SHORT:
		b = BAD_SHORT;
		break;
	case BENCH_BLOB_TORN:
		b = BAD_TORN;
		break;
	case BENCH_BLOB_WRONG_KEY: /* cannot happen with BENCH_BLOB_ANY_KEY */
	case BENCH_BLOB_CORRUPT:
		b = BAD_CORRUPT;
		break;
	}
	if (b == NBAD) {
		atomic_fetch_add(&s->verified, 1);
		atomic_fetch_add(&s->verified_bytes, n);
		return true;
	}
	atomic_fetch_add(&s->bad[b], 1);
	if (b == BAD_TORN)
		snprintf(why, sizeof(why),
			 "torn: %zu bytes, header of writer %llu seq %llu (%llu bytes), first bad "
			 "byte at %zu",
			 n, (unsigned long long)(h.version >> SEQ_BITS),
			 (unsigned long long)(h.version & ((1ull << SEQ_BITS) - 1)),
			 (unsigned long long)h.len, bad_at);
	else
		snprintf(why, sizeof(why), "%s (%zu bytes)", bad_names[b], n);
	say(s, "verify %s: %s", path, why);
	return false;
}

static enum stress_op pick_op(const struct stress_conf *c, uint64_t *rng)
{
	unsigned total = 0, r;

	for (int i = 0; i < NOPS; i++)
		total += c->weight[i];
	r = (unsigned)bench_rand_below(rng, total);
	for (int i = 0; i < NOPS; i++) {
		if (r < c->weight[i])
			return (enum stress_op)i;
		r -= c->weight[i];
	}
	return OP_GET;
}

static void stress_worker(void *arg, int tid)
{
	struct stress *s = arg;
	const struct stress_conf *c = s->c;
	struct bench_phase *ph = s->per_thread[tid];
	uint64_t *absent = s->absent[tid];
	uint64_t rng = c->co.seed ^ ((uint64_t)(tid + 1) * 0x9e3779b97f4a7c15ull), seq = 0;
	const char *run = run_of(s, tid);
	uint8_t *buf = malloc(c->max_size + 1);
	char path[PATH_MAX + 32], other[PATH_MAX + 32];

	if (!buf) {
		ph[OP_GET].errors++;
		say(s, "out of memory");
		return;
	}
	while (!bench_cli_stop && bench_now_ns() < s->deadline_ns) {
		enum stress_op op = pick_op(c, &rng);
		uint64_t k = bench_rand_below(&rng, c->keys), t0, lat;
		const char *step = op_names[op];
		int ret = 0;

		key_path(run, k, path, sizeof(path));
		switch (op) {
		case OP_PUT: {
			uint64_t len =
			    c->min_size + bench_rand_below(&rng, c->max_size - c->min_size + 1);

			seq++;
			atomic_store(&s->issued[tid], seq);
			bench_blob_fill(&s->pool, k, ((uint64_t)(tid + 1) << SEQ_BITS) | seq, buf,
					len);
			t0 = bench_now_ns();
			if (c->inplace) {
				ret = bench_fs_write_file(path, buf, len, IO_SIZE);
			} else {
				snprintf(other, sizeof(other), "%s/.t%d.%llu", run, tid,
					 (unsigned long long)seq);
				ret = bench_fs_write_file(other, buf, len, IO_SIZE);
				if (ret) {
					step = "put (write of the temp file)";
				} else if (rename(other, path)) {
					ret = -errno;
					step = "put (rename of the temp file)";
				}
				if (ret)
					unlink(other);
			}
			lat = bench_now_ns() - t0;
			if (!ret)
				ph[op].bytes += len;
			break;
		}
		case OP_GET: {
			t0 = bench_now_ns();
			ssize_t n = bench_fs_read_file(path, buf, c->max_size + 1, IO_SIZE);
			lat = bench_now_ns() - t0;
			if (n < 0) {
				ret = (int)n;
				break;
			}
			check_read(s, path, buf, (size_t)n);
			ph[op].bytes += (uint64_t)n;
			break;
		}
		case OP_STAT: {
			struct stat st;

			t0 = bench_now_ns();
			ret = stat(path, &st) ? -errno : 0;
			lat = bench_now_ns() - t0;
			if (!ret && S_ISREG(st.st_mode) && st.st_size == 0 && c->inplace) {
				atomic_fetch_add(&s->empty, 1);
			} else if (!ret && S_ISREG(st.st_mode) && c->inplace &&
				   (uint64_t)st.st_size < c->min_size) {
				atomic_fetch_add(&s->partial, 1);
			} else if (!ret &&
				   (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < c->min_size ||
				    (uint64_t)st.st_size > c->max_size)) {
				char why[64];

				snprintf(why, sizeof(why), "stat: size %lld, mode 0%o",
					 (long long)st.st_size, (unsigned)st.st_mode);
				atomic_fetch_add(&s->bad[BAD_SIZE], 1);
				say(s, "verify %s: %s", path, why);
			}
			break;
		}
		case OP_UNLINK:
			t0 = bench_now_ns();
			ret = unlink(path) ? -errno : 0;
			lat = bench_now_ns() - t0;
			break;
		case OP_RENAME:
		default: {
			uint64_t k2 = bench_rand_below(&rng, c->keys);

			key_path(run, k2, other, sizeof(other));
			t0 = bench_now_ns();
			ret = rename(path, other) ? -errno : 0;
			lat = bench_now_ns() - t0;
			break;
		}
		}
		if (ret == -ENOENT && op != OP_PUT) {
			absent[op]++;
		} else if (ret) {
			ph[op].errors++;
			say(s, "%s %s%s%s: %s", step, path, op == OP_RENAME ? " -> " : "",
			    op == OP_RENAME ? other : "", strerror(-ret));
			continue;
		}
		ph[op].ops++;
		bench_hist_add(&ph[op].lat, lat);
		bench_progress_add(1);
	}
	free(buf);
}

/* After the run: every key left must still read back as one writer's blob. */
static void final_sweep(struct stress *s)
{
	uint8_t *buf = malloc(s->c->max_size + 1);
	char path[PATH_MAX + 32];

	if (!buf)
		return;
	for (int r = 0; r < s->nruns; r++) {
		for (uint64_t k = 0; k < s->c->keys; k++) {
			key_path(s->runs[r], k, path, sizeof(path));
			ssize_t n = bench_fs_read_file(path, buf, s->c->max_size + 1, IO_SIZE);

			if (n >= 0)
				check_read(s, path, buf, (size_t)n);
			else if (n != -ENOENT)
				say(s, "final read %s: %s", path, strerror((int)-n));
		}
	}
	free(buf);
}

static int parse_mix(const char *arg, unsigned *weight)
{
	char *dup = strdup(arg), *tok, *save = NULL;
	unsigned total = 0;
	int ret = 0;

	if (!dup)
		return -ENOMEM;
	memset(weight, 0, NOPS * sizeof(*weight));
	for (tok = strtok_r(dup, ",", &save); tok && !ret; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t v;
		int i;

		ret = -EINVAL;
		if (!eq)
			break;
		*eq = 0;
		for (i = 0; i < NOPS; i++)
			if (!strcmp(tok, op_names[i]))
				break;
		if (i == NOPS || bench_cli_parse_u64(eq + 1, 0, 1000000, &v))
			break;
		weight[i] = (unsigned)v;
		total += (unsigned)v;
		ret = 0;
	}
	free(dup);
	return ret ? ret : total ? 0 : -EINVAL;
}

static int parse(int argc, char **argv, struct stress_conf *c)
{
	enum {
		O_THREADS = BENCH_OPT_FIRST_OWN,
		O_DIRS,
		O_DURATION,
		O_KEYS,
		O_MIN,
		O_MAX,
		O_MIX,
		O_INPLACE
	};
	static const struct option lo[] = {
	    BENCH_COMMON_OPTIONS,
	    {"dirs", required_argument, NULL, O_DIRS},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"duration", required_argument, NULL, O_DURATION},
	    {"keys", required_argument, NULL, O_KEYS},
	    {"min-size", required_argument, NULL, O_MIN},
	    {"max-size", required_argument, NULL, O_MAX},
	    {"mix", required_argument, NULL, O_MIX},
	    {"inplace", no_argument, NULL, O_INPLACE},
	    {NULL, 0, NULL, 0},
	};
	static const unsigned def_weight[NOPS] = {30, 40, 10, 10, 10};
	uint64_t v;
	int opt, r;

	memset(c, 0, sizeof(*c));
	bench_cli_common_init(&c->co);
	c->threads = 4;
	c->duration_ns = 5000000000ull;
	c->keys = 16;
	c->min_size = BENCH_BLOB_HDR_LEN;
	c->max_size = 64 << 10;
	memcpy(c->weight, def_weight, sizeof(def_weight));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		r = bench_cli_common(CMD, opt, optarg, &c->co);
		if (r < 0)
			return BENCH_EXIT_USAGE;
		if (r > 0)
			continue;
		switch (opt) {
		case O_THREADS:
			if (bench_cli_parse_u64(optarg, 1, MAX_THREADS, &v))
				return bench_cli_usage(CMD, "--threads '%s': want 1 to %d", optarg,
						       MAX_THREADS);
			c->threads = (int)v;
			break;
		case O_DURATION:
			if (bench_cli_parse_duration(optarg, &c->duration_ns))
				return bench_cli_usage(CMD, "--duration '%s': want e.g. 10s, 500ms",
						       optarg);
			break;
		case O_KEYS:
			if (bench_cli_parse_u64(optarg, 1, 1000000, &c->keys))
				return bench_cli_usage(CMD, "--keys '%s': want 1 to 1000000",
						       optarg);
			break;
		case O_MIN:
			if (bench_cli_parse_size(optarg, BENCH_BLOB_HDR_LEN, 1ull << 30,
						 &c->min_size))
				return bench_cli_usage(CMD, "--min-size '%s': want 64 to 1G",
						       optarg);
			break;
		case O_MAX:
			if (bench_cli_parse_size(optarg, BENCH_BLOB_HDR_LEN, 1ull << 30,
						 &c->max_size))
				return bench_cli_usage(CMD, "--max-size '%s': want 64 to 1G",
						       optarg);
			break;
		case O_MIX:
			if (parse_mix(optarg, c->weight))
				return bench_cli_usage(CMD,
						       "--mix '%s': want OP=WEIGHT,... with OP one "
						       "of put, get, stat, unlink, rename",
						       optarg);
			break;
		case O_INPLACE:
			c->inplace = true;
			break;
		case O_DIRS:
			c->dirs_arg = optarg;
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
	if (!c->co.dir == !c->dirs_arg)
		return bench_cli_usage(CMD, "give either --dir DIR or --dirs D1,D2,...");
	if (c->min_size > c->max_size)
		return bench_cli_usage(CMD, "--min-size is larger than --max-size");
	return 0;
}

int bench_stress_main(int argc, char **argv)
{
	struct stress_conf c;
	struct stress s;
	struct bench_phase tot[NOPS], all;
	uint64_t absent[NOPS] = {0}, nbad = 0, errors = 0, wall = 0;
	char tag[64], lo[32], hi[32], *dup = NULL;
	const char *dirs[BENCH_MAX_DIRS];
	int ret, ndirs, made = 0, code = BENCH_EXIT_FAIL;

	ret = parse(argc, argv, &c);
	if (ret)
		return ret < 0 ? BENCH_EXIT_OK : ret;
	ndirs = bench_cli_dirs(CMD, c.co.dir, c.dirs_arg, dirs, &dup);
	if (ndirs < 0)
		return -ndirs;
	memset(&s, 0, sizeof(s));
	s.c = &c;
	s.nruns = ndirs;
	if (bench_pool_init(&s.pool, c.co.seed, c.max_size - BENCH_BLOB_HDR_LEN)) {
		free(dup);
		goto out_nomem;
	}
	s.issued = calloc((size_t)c.threads, sizeof(*s.issued));
	s.per_thread = calloc((size_t)c.threads, sizeof(*s.per_thread));
	s.absent = calloc((size_t)c.threads, sizeof(*s.absent));
	s.runs = calloc((size_t)ndirs, sizeof(*s.runs));
	if (!s.issued || !s.per_thread || !s.absent || !s.runs)
		goto out_free_nomem;
	for (int t = 0; t < c.threads; t++)
		for (int op = 0; op < NOPS; op++)
			bench_phase_init(&s.per_thread[t][op], op_names[op]);
	bench_progress_enable(!c.co.quiet && isatty(STDOUT_FILENO));
	bench_cli_catch_signals();
	bench_cli_tag(&c.co, tag, sizeof(tag));
	for (; made < ndirs; made++) {
		/* The first mount makes the run directory; the others may already see it. */
		ret = bench_fs_make_rundir(dirs[made], CMD, tag, made > 0, s.runs[made],
					   sizeof(s.runs[made]));
		if (ret) {
			bench_cli_err(CMD, "cannot create a run directory in %s: %s", dirs[made],
				      strerror(-ret));
			goto out_rmdir;
		}
	}

	bench_report_fmt_bytes(lo, sizeof(lo), c.min_size);
	bench_report_fmt_bytes(hi, sizeof(hi), c.max_size);
	if (!c.co.quiet)
		printf(
		    "mcfs-bench stress: %d thread(s) x %.1f s over %llu keys of %s to %s, puts %s, "
		    "seed %llu\n",
		    c.threads, (double)c.duration_ns / 1e9, (unsigned long long)c.keys, lo, hi,
		    c.inplace ? "in place" : "by temp file + rename",
		    (unsigned long long)c.co.seed);
	if (!c.co.quiet)
		bench_report_host_line(stdout);
	bench_progress_start("stress", 0, c.duration_ns);
	s.deadline_ns = bench_now_ns() + c.duration_ns;
	ret = bench_par_run(c.threads, stress_worker, &s, &wall);
	bench_progress_stop();
	if (ret) {
		bench_cli_err(CMD, "cannot start %d threads: %s", c.threads, strerror(-ret));
		goto out_rmdir;
	}
	final_sweep(&s);

	bench_phase_init(&all, "all");
	for (int op = 0; op < NOPS; op++) {
		bench_phase_init(&tot[op], op_names[op]);
		for (int t = 0; t < c.threads; t++) {
			bench_phase_merge(&tot[op], &s.per_thread[t][op]);
			absent[op] += s.absent[t][op];
		}
		tot[op].seconds = (double)wall / 1e9;
		bench_phase_merge(&all, &tot[op]);
		errors += tot[op].errors;
	}
	all.seconds = (double)wall / 1e9;
	for (int b = 0; b < NBAD; b++)
		nbad += atomic_load(&s.bad[b]);
	bool ok = !errors && !nbad && !bench_cli_stop;

	if (!c.co.quiet) {
		printf("  %.0f ops/s (%llu ops in %.2f s), %llu error(s), %llu mismatch(es)\n",
		       bench_phase_ops_per_s(&all), (unsigned long long)all.ops, all.seconds,
		       (unsigned long long)errors, (unsigned long long)nbad);
		for (int op = 0; op < NOPS; op++) {
			bench_report_phase_line(stdout, "    ", &tot[op]);
			if (absent[op])
				printf("      (%llu found no file: ENOENT)\n",
				       (unsigned long long)absent[op]);
		}
		printf("  verified %llu reads (%.1f MB):",
		       (unsigned long long)atomic_load(&s.verified),
		       (double)atomic_load(&s.verified_bytes) / 1e6);
		for (int b = 0; b < NBAD; b++)
			printf(" %s %llu%s", bad_names[b],
			       (unsigned long long)atomic_load(&s.bad[b]),
			       b + 1 < NBAD ? "," : "\n");
		if (c.inplace)
			printf("  %llu read(s) or stat(s) found a file empty: created, not yet "
			       "written (allowed with --inplace)\n",
			       (unsigned long long)atomic_load(&s.empty));
		if (c.inplace && atomic_load(&s.partial))
			printf(
			    "  %llu stat(s) found a file partly written: the writing node's size "
			    "so far (allowed with --inplace)\n",
			    (unsigned long long)atomic_load(&s.partial));
		if (!ok)
			printf("  %s\n", nbad ? "VERIFY FAILED" : "FAILED");
	}
	if (c.co.json) {
		json_t *root = bench_report_root(CMD, c.co.seed);
		json_t *conf = json_object(), *ops = json_object(), *bad = json_object();

		json_t *jd = json_array();

		for (int i = 0; i < ndirs; i++)
			json_array_append_new(jd, json_string(dirs[i]));
		bench_report_set(conf, "dir", json_string(dirs[0]));
		bench_report_set(conf, "dirs", jd);
		bench_report_set(conf, "threads", json_integer(c.threads));
		bench_report_set(conf, "duration_s", json_real((double)c.duration_ns / 1e9));
		bench_report_set(conf, "keys", json_integer((json_int_t)c.keys));
		bench_report_set(conf, "min_size", json_integer((json_int_t)c.min_size));
		bench_report_set(conf, "max_size", json_integer((json_int_t)c.max_size));
		bench_report_set(conf, "inplace", json_boolean(c.inplace));
		for (int op = 0; op < NOPS; op++) {
			json_t *p = bench_report_phase_json(&tot[op]);

			bench_report_set(p, "absent", json_integer((json_int_t)absent[op]));
			bench_report_set(ops, op_names[op], p);
			if (root)
				bench_report_add_plot_row(root, dirs[0], &tot[op]);
		}
		for (int b = 0; b < NBAD; b++)
			bench_report_set(bad, bad_names[b],
					 json_integer((json_int_t)atomic_load(&s.bad[b])));
		bench_report_set(root, "config", conf);
		bench_report_set(root, "ops", json_integer((json_int_t)all.ops));
		bench_report_set(root, "ops_per_s", json_real(bench_phase_ops_per_s(&all)));
		bench_report_set(root, "seconds", json_real(all.seconds));
		bench_report_set(root, "errors", json_integer((json_int_t)errors));
		bench_report_set(root, "mismatches", json_integer((json_int_t)nbad));
		bench_report_set(root, "mismatch_kinds", bad);
		bench_report_set(root, "empty", json_integer((json_int_t)atomic_load(&s.empty)));
		bench_report_set(root, "partial",
				 json_integer((json_int_t)atomic_load(&s.partial)));
		bench_report_set(root, "verified_reads",
				 json_integer((json_int_t)atomic_load(&s.verified)));
		bench_report_set(root, "per_op", ops);
		bench_report_set(root, "ok", json_boolean(ok));
		int w = root ? bench_report_write(c.co.json, root) : -ENOMEM;

		json_decref(root);
		if (w) {
			bench_cli_err(CMD, "cannot write %s: %s", c.co.json, strerror(-w));
			ok = false;
		}
	}
	if (bench_cli_stop)
		bench_cli_err(CMD, "interrupted");
	code = ok ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;

out_rmdir:
	/* Mounts of one cache share the run directory: the first removal takes it all. */
	for (int i = 0; i < made; i++) {
		if (c.co.keep) {
			if (!c.co.quiet)
				printf("  kept %s\n", s.runs[i]);
		} else if ((ret = bench_fs_rmtree(s.runs[i])) && ret != -ENOENT) {
			bench_cli_err(CMD, "cannot remove %s: %s", s.runs[i], strerror(-ret));
		}
	}
	free(s.runs);
	free(s.absent);
	free(s.per_thread);
	free(s.issued);
	bench_pool_fini(&s.pool);
	free(dup);
	return code;

out_free_nomem:
	free(s.runs);
	free(s.absent);
	free(s.per_thread);
	free(s.issued);
	bench_pool_fini(&s.pool);
	free(dup);
out_nomem:
	bench_cli_err(CMD, "out of memory");
	return BENCH_EXIT_FAIL;
}
