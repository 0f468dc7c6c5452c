/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running one phase of a benchmark on N threads that start together, and
 * timing it from the common start to the last thread's end, so thread
 * creation is never part of a measurement.
 */
#ifndef MCFS_BENCH_PAR_H
#define MCFS_BENCH_PAR_H

#include <stdint.h>

/* The body of a phase: called once per thread with tid in [0, n). */
typedef void (*bench_par_fn)(void *ctx, int tid);

/*
 * Runs fn(ctx, tid) on n threads (1 <= n <= 1024) released by one barrier;
 * *wall_ns (may be NULL) is the time from the release to the last return.
 * 0 or -errno when a thread could not be created (then nothing ran).
 */
int bench_par_run(int n, bench_par_fn fn, void *ctx, uint64_t *wall_ns);

#endif
