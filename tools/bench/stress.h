/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mcfs-bench stress: T threads mix put, get, stat, unlink and rename over
 * a small set of shared keys for a given time. Every byte read is checked
 * to be exactly one writer's complete blob (blob.h) whose version some
 * writer really issued; a mix of two writers is a "torn" error. Reports
 * ops/s per operation and every error; any mismatch or unexpected errno
 * makes the run fail.
 */
#ifndef MCFS_BENCH_STRESS_H
#define MCFS_BENCH_STRESS_H

/* The subcommand; argv[0] is "stress". Returns a BENCH_EXIT_* code. */
int bench_stress_main(int argc, char **argv);

#endif
