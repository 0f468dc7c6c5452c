/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every mcfs-bench subcommand shares on its command line: --dir,
 * --json, --seed, --quiet, --keep, --help; value parsing; exit codes;
 * errors as one line on stderr; and the ^C flag the workers poll so that
 * an interrupted run still removes what it wrote.
 */
#ifndef MCFS_BENCH_CLI_H
#define MCFS_BENCH_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	BENCH_EXIT_OK = 0,
	BENCH_EXIT_FAIL = 1,  /* runtime failure or verification mismatch */
	BENCH_EXIT_USAGE = 2, /* bad command line */
};

/* getopt_long codes of the common options (above any short option). */
enum {
	BENCH_OPT_DIR = 0x100,
	BENCH_OPT_JSON,
	BENCH_OPT_SEED,
	BENCH_OPT_QUIET,
	BENCH_OPT_KEEP,
	BENCH_OPT_HELP,
	BENCH_OPT_FIRST_OWN, /* subcommands number their own options from here */
};

#define BENCH_COMMON_OPTIONS                                                                       \
	{"dir", required_argument, NULL, BENCH_OPT_DIR},                                           \
	    {"json", required_argument, NULL, BENCH_OPT_JSON},                                     \
	    {"seed", required_argument, NULL, BENCH_OPT_SEED},                                     \
	    {"quiet", no_argument, NULL, BENCH_OPT_QUIET},                                         \
	    {"keep", no_argument, NULL, BENCH_OPT_KEEP},                                           \
	{                                                                                          \
		"help", no_argument, NULL, BENCH_OPT_HELP                                          \
	}

#define BENCH_COMMON_HELP                                                                          \
	"  --json FILE        write every figure as JSON to FILE\n"                                \
	"  --seed N           seed of the contents and of random choices (default: random, "       \
	"printed)\n"                                                                               \
	"  --quiet            no summary and no progress bar (errors still go to stderr)\n"        \
	"  --keep             leave the files written (default: remove the run directory)\n"       \
	"  --help             this text\n"

struct bench_common {
	const char *dir;  /* borrowed from argv */
	const char *json; /* borrowed from argv; NULL: no JSON */
	uint64_t seed;
	bool quiet;
	bool keep;
	bool help;
};

/* Set by SIGINT/SIGTERM once bench_cli_catch_signals() ran. */
extern volatile sig_atomic_t bench_cli_stop;

/* Defaults: no dir, no json, a random seed. */
void bench_cli_common_init(struct bench_common *co);
/*
 * Handles one getopt_long result if it is a common option: 1 when it was,
 * 0 when it is not a common option, -EINVAL on a bad value (reported).
 */
int bench_cli_common(const char *cmd, int opt, const char *arg, struct bench_common *co);

/* Prints "mcfs-bench CMD: MESSAGE" and a hint to stderr; returns BENCH_EXIT_USAGE. */
int bench_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "mcfs-bench CMD: MESSAGE" to stderr. */
void bench_cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The most directories --dirs takes. */
#define BENCH_MAX_DIRS 64

/*
 * The directories a run works in: dir (--dir) alone, or the --dirs list
 * "D1,D2,..." split in a copy (*dup, NULL for --dir; the caller frees it),
 * each an existing directory. The count (1..BENCH_MAX_DIRS); else the exit
 * code negated (-BENCH_EXIT_USAGE, -BENCH_EXIT_FAIL), the reason printed
 * and *dup freed.
 */
int bench_cli_dirs(const char *cmd, const char *dir, const char *dirs_arg, const char **dirs,
		   char **dup);

/* Option values: 0 or -EINVAL (nothing printed). */
int bench_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A size with K/M/G/T suffixes (powers of 1024), within [min, max]. */
int bench_cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A positive decimal number ("2.5"). */
int bench_cli_parse_double(const char *s, double *out);
/* "10", "10s", "500ms", "2m" -> ns (at least 1 ms). */
int bench_cli_parse_duration(const char *s, uint64_t *out_ns);

/* A run tag unique to this process and seed: "<pid>-<seed low 32 bits hex>". */
void bench_cli_tag(const struct bench_common *co, char *out, size_t outsz);

/* SIGINT and SIGTERM set bench_cli_stop instead of killing the process. */
void bench_cli_catch_signals(void);

#endif
