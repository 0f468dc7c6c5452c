/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mcfs-bench small: the metadata-bound side of a KV cache. COUNT files of
 * 4 KiB in one directory: create+write+close, stat, open+read+close
 * (verified), readdir and unlink rates and latencies, optionally against
 * a reference directory in alternating rounds.
 */
#ifndef MCFS_BENCH_SMALL_H
#define MCFS_BENCH_SMALL_H

/* The subcommand; argv[0] is "small". Returns a BENCH_EXIT_* code. */
int bench_small_main(int argc, char **argv);

#endif
