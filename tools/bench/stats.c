// SPDX-License-Identifier: Apache-2.0
/*
 * The histogram is HdrHistogram's idea cut to what a benchmark report
 * needs: one array of counters indexed by (exponent, top 6 bits of the
 * mantissa), so recording is a few instructions and a merge is a loop of
 * additions, whatever the number of samples.
 */
#include "tools/bench/stats.h"

#include <math.h>
#include <string.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned bench_hist_bucket(uint64_t ns)
{
	unsigned shift;

	if (ns < (2u << BENCH_HIST_SUB_BITS))
		return (unsigned)ns;
	/* ns >> shift lies in [64, 128): the top 7 bits, the first always 1. */
	shift = (unsigned)(63 - __builtin_clzll(ns)) - BENCH_HIST_SUB_BITS;
	return (shift << BENCH_HIST_SUB_BITS) + (unsigned)(ns >> shift);
}

uint64_t bench_hist_bucket_low(unsigned idx)
{
	unsigned shift;
	uint64_t mant;

	if (idx < (2u << BENCH_HIST_SUB_BITS))
		return idx;
	shift = (idx >> BENCH_HIST_SUB_BITS) - 1;
	mant = idx - ((uint64_t)shift << BENCH_HIST_SUB_BITS);
	return mant << shift;
}

static uint64_t bucket_high(unsigned idx)
{
	return idx + 1 < BENCH_HIST_BUCKETS ? bench_hist_bucket_low(idx + 1) - 1 : UINT64_MAX;
}

void bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

void bench_hist_add(struct bench_hist *h, uint64_t ns)
{
	h->buckets[bench_hist_bucket(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0, lo, hi, v;

	if (!h->count)
		return 0;
	if (q <= 0)
		return h->min_ns;
	if (q >= 1)
		return h->max_ns;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen < rank)
			continue;
		lo = bench_hist_bucket_low(i);
		hi = bucket_high(i);
		v = lo + (hi - lo) / 2;
		if (v < h->min_ns)
			v = h->min_ns;
		if (v > h->max_ns)
			v = h->max_ns;
		return v;
	}
	return h->max_ns;
}

double bench_hist_mean_ns(const struct bench_hist *h)
{
	return h->count ? (double)h->sum_ns / (double)h->count : 0;
}

void bench_phase_init(struct bench_phase *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->name = name;
	bench_hist_init(&p->lat);
}

void bench_phase_merge(struct bench_phase *dst, const struct bench_phase *src)
{
	dst->ops += src->ops;
	dst->bytes += src->bytes;
	dst->errors += src->errors;
	dst->seconds += src->seconds;
	bench_hist_merge(&dst->lat, &src->lat);
}

double bench_phase_gbps(const struct bench_phase *p)
{
	return p->seconds > 0 ? (double)p->bytes / p->seconds / 1e9 : 0;
}

double bench_phase_ops_per_s(const struct bench_phase *p)
{
	return p->seconds > 0 ? (double)p->ops / p->seconds : 0;
}
