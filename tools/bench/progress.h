/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The progress bar: one line on stdout, redrawn five times a second by a
 * ticker thread, only when stdout is a terminal (the caller decides with
 * bench_progress_enable()). Workers only add to an atomic counter.
 */
#ifndef MCFS_BENCH_PROGRESS_H
#define MCFS_BENCH_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

/* Off by default; while off, every other call is a no-op. */
void bench_progress_enable(bool on);

/*
 * Starts a bar labelled label (copied) for total units of work, or, with
 * duration_ns > 0, for that much time (then units are counted as ops and
 * shown next to the bar). One bar at a time. 0 or -errno.
 */
int bench_progress_start(const char *label, uint64_t total, uint64_t duration_ns);
/* Thread-safe. */
void bench_progress_add(uint64_t n);
/* Stops the ticker and erases the line, so the summary starts clean. */
void bench_progress_stop(void);

#endif
