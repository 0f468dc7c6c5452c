/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mcfs-bench seq: large-object throughput. N files of S bytes written
 * (open + write + close), read back (open + read + close) and verified,
 * from T threads, optionally against a reference directory in alternating
 * rounds of the same invocation, so the ratio is measured under the same
 * noise.
 */
#ifndef MCFS_BENCH_SEQ_H
#define MCFS_BENCH_SEQ_H

/* The subcommand; argv[0] is "seq". Returns a BENCH_EXIT_* code. */
int bench_seq_main(int argc, char **argv);

#endif
