// SPDX-License-Identifier: Apache-2.0
/*
 * mcfs-bench: KV-cache workload emulation and stress over any directory,
 * with plain POSIX I/O, so that an mcfs mount and a tmpfs directory are
 * measured by the same code in the same run.
 *
 *   mcfs-bench seq     large objects: write+close, open+read+close, verified
 *   mcfs-bench small   4 KiB files: create, stat, read, readdir, unlink rates
 *   mcfs-bench trace   replay of a Mooncake (FAST'25) KV-cache request trace
 *   mcfs-bench stress  racing put/get/stat/unlink/rename, every byte checked
 *
 * Exit status: 0 ok, 1 runtime failure or verification mismatch, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "tools/bench/cli.h"
#include "tools/bench/replay.h"
#include "tools/bench/seq.h"
#include "tools/bench/small.h"
#include "tools/bench/stress.h"

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *what;
} commands[] = {
    {"seq", bench_seq_main, "large files: write+close and open+read+close GB/s, latencies"},
    {"small", bench_small_main,
     "small files: create+write+close, stat, open+read+close, readdir, "
     "unlink rates"},
    {"trace", bench_replay_main,
     "replay a Mooncake KV-cache trace: hit rate, blocks/s, time to "
     "first block"},
    {"stress", bench_stress_main,
     "racing put/get/stat/unlink/rename over shared keys, every "
     "byte verified"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mcfs-bench COMMAND --dir DIR [options]\n"
		   "KV-cache workload emulation and stress over any directory.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
	fprintf(f, "\n'mcfs-bench COMMAND --help' lists a command's options. Every command takes\n"
		   "--dir, --json FILE, --seed N, --quiet and --keep.\n"
		   "Exit status: 0 ok, 1 runtime failure or verification mismatch, 2 usage.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return BENCH_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return BENCH_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("mcfs-bench %s\n", MCFS_VERSION);
		return BENCH_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	return bench_cli_usage(NULL, "unknown command '%s': want seq, small, trace or stress",
			       argv[1]);
}
