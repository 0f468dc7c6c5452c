// SPDX-License-Identifier: Apache-2.0
/*
 * Shared option handling. Messages name the subcommand and say what to do,
 * because the user reads them, not a log collector.
 */
#include "tools/bench/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tools/bench/fs.h"

volatile sig_atomic_t bench_cli_stop;

void bench_cli_common_init(struct bench_common *co)
{
	struct timespec ts;

	memset(co, 0, sizeof(*co));
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Only needs to differ between runs; it is printed so a run can be repeated. */
	co->seed =
	    ((uint64_t)ts.tv_nsec * 1000003u) ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	co->seed &= 0xffffffffffffull;
}

static void vmsg(const char *cmd, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "mcfs-bench%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", msg);
}

int bench_cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'mcfs-bench %s --help'.\n", cmd ? cmd : "");
	return BENCH_EXIT_USAGE;
}

void bench_cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, fmt, ap);
	va_end(ap);
}

int bench_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int bench_cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (mcfs_parse_size(s, &v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int bench_cli_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v <= 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int bench_cli_parse_duration(const char *s, uint64_t *out_ns)
{
	uint64_t ms;

	if (mcfs_parse_duration_ms(s, &ms) || ms == 0)
		return -EINVAL;
	*out_ns = ms * 1000000u;
	return 0;
}

int bench_cli_common(const char *cmd, int opt, const char *arg, struct bench_common *co)
{
	switch (opt) {
	case BENCH_OPT_DIR:
		co->dir = arg;
		return 1;
	case BENCH_OPT_JSON:
		co->json = arg;
		return 1;
	case BENCH_OPT_SEED:
		if (bench_cli_parse_u64(arg, 0, UINT64_MAX - 1, &co->seed)) {
			bench_cli_err(cmd, "--seed '%s' is not a non-negative integer", arg);
			return -EINVAL;
		}
		return 1;
	case BENCH_OPT_QUIET:
		co->quiet = true;
		return 1;
	case BENCH_OPT_KEEP:
		co->keep = true;
		return 1;
	case BENCH_OPT_HELP:
		co->help = true;
		return 1;
	}
	return 0;
}

int bench_cli_dirs(const char *cmd, const char *dir, const char *dirs_arg, const char **dirs,
		   char **dup)
{
	char *save = NULL;
	int n = 0;

	*dup = NULL;
	if (!dirs_arg) {
		dirs[n++] = dir;
	} else {
		*dup = strdup(dirs_arg);
		if (!*dup) {
			bench_cli_err(cmd, "out of memory");
			return -BENCH_EXIT_FAIL;
		}
		for (char *tok = strtok_r(*dup, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			if (n == BENCH_MAX_DIRS) {
				n = 0;
				break;
			}
			dirs[n++] = tok;
		}
		if (!n) {
			free(*dup);
			*dup = NULL;
			return -bench_cli_usage(cmd,
						"--dirs '%s': want 1 to %d comma-separated "
						"directories",
						dirs_arg, BENCH_MAX_DIRS);
		}
	}
	for (int i = 0; i < n; i++) {
		if (!bench_fs_is_dir(dirs[i])) {
			bench_cli_err(cmd, "%s is not a directory: give an existing directory",
				      dirs[i]);
			free(*dup);
			*dup = NULL;
			return -BENCH_EXIT_USAGE;
		}
	}
	return n;
}

void bench_cli_tag(const struct bench_common *co, char *out, size_t outsz)
{
	snprintf(out, outsz, "%ld-%08llx", (long)getpid(),
		 (unsigned long long)(co->seed & 0xffffffffu));
}

static void on_signal(int sig)
{
	(void)sig;
	bench_cli_stop = 1;
}

void bench_cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART needed: every I/O loop retries EINTR itself. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
