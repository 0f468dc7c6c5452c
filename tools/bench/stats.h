/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Latency and throughput accounting for mcfs-bench: a log-linear histogram
 * of nanosecond samples (fixed size, mergeable across threads, quantiles
 * within 1.6%), and a phase record (ops, bytes, wall time, latencies) that
 * every subcommand reports and turns into JSON.
 */
#ifndef MCFS_BENCH_STATS_H
#define MCFS_BENCH_STATS_H

#include <stdint.h>

/*
 * 64 sub-buckets per power of two: values below 128 ns are exact, larger
 * ones land in a bucket 1/64 of their magnitude wide.
 */
#define BENCH_HIST_SUB_BITS 6
#define BENCH_HIST_BUCKETS  (64 * 59)

struct bench_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns; /* UINT64_MAX while count == 0 */
	uint64_t max_ns;
	uint64_t buckets[BENCH_HIST_BUCKETS];
};

/* One measured phase of a run ("write+close" on one directory, say). */
struct bench_phase {
	const char *name; /* borrowed: a string literal */
	uint64_t ops;
	uint64_t bytes;	 /* payload moved, 0 for metadata phases */
	uint64_t errors; /* operations that failed (not counted in ops) */
	double seconds;	 /* wall time of the phase, summed over rounds */
	struct bench_hist lat;
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

void bench_hist_init(struct bench_hist *h);
void bench_hist_add(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/*
 * The value at quantile q (0..1) in ns: the middle of the bucket holding
 * the ceil(q * count)-th smallest sample, clamped to [min, max]. 0 when
 * the histogram is empty.
 */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);
double bench_hist_mean_ns(const struct bench_hist *h);
/* The bucket a value falls in, and the lowest value of a bucket (for tests). */
unsigned bench_hist_bucket(uint64_t ns);
uint64_t bench_hist_bucket_low(unsigned idx);

void bench_phase_init(struct bench_phase *p, const char *name);
/* Adds src's counts, time and latencies to dst (dst keeps its name). */
void bench_phase_merge(struct bench_phase *dst, const struct bench_phase *src);
/* 10^9 bytes per second, and operations per second; 0 when no time passed. */
double bench_phase_gbps(const struct bench_phase *p);
double bench_phase_ops_per_s(const struct bench_phase *p);

#endif
