/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How mcfs-bench reports: human units for the summary lines (GB/s are
 * 10^9 bytes a second; sizes are powers of 1024), phase lines with their
 * latency quantiles, ratio lines against a --compare directory, and the
 * JSON document: a root with the run's settings, per-target sections, and
 * a flat "phases" list that tools/plot-bench.sh draws.
 */
#ifndef MCFS_BENCH_REPORT_H
#define MCFS_BENCH_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/bench/stats.h"

/* "850 ns", "412 us", "1.20 ms", "2.31 s" */
void bench_report_fmt_ns(char *out, size_t outsz, uint64_t ns);
/* "4 KiB", "1 MiB", "1.50 GiB" */
void bench_report_fmt_bytes(char *out, size_t outsz, uint64_t bytes);

/*
 * One summary line of a phase: "  write+close  2.31 GB/s  2203 ops/s
 * p50 412 us  p99 1.10 ms  p999 2.30 ms", GB/s only when it moved bytes.
 */
void bench_report_phase_line(FILE *f, const char *indent, const struct bench_phase *p);

/*
 * A ratio line "  ratio write+close (A / B): 0.62x GB/s, 0.62x ops/s,
 * latency p50 1.61x p99 1.20x" of phase a against phase b.
 */
void bench_report_ratio_line(FILE *f, const struct bench_phase *a, const struct bench_phase *b);

/* a / b as JSON, or JSON null when b is 0. New reference. */
json_t *bench_report_ratio_json(double a, double b);

/* {"p50": us, "p99": us, "p999": us, "mean": us, "min": us, "max": us}. New reference. */
json_t *bench_report_lat_json(const struct bench_hist *h);
/*
 * {"ops", "bytes", "errors", "seconds", "gbps", "ops_per_s", "latency_us"}.
 * New reference.
 */
json_t *bench_report_phase_json(const struct bench_phase *p);
/*
 * The ratios of a against b: {"gbps", "ops_per_s", "p50", "p99", "p999"}.
 * New reference.
 */
json_t *bench_report_phase_ratio_json(const struct bench_phase *a, const struct bench_phase *b);

/*
 * The fuse module's wake_here parameter: "Y" or "N", NULL where this kernel
 * has none.
 */
const char *bench_report_fuse_wake_here(void);

/* Under a summary's first line: kernel settings the figures depend on (if any). */
void bench_report_host_line(FILE *f);

/*
 * The root object every subcommand starts from: tool, version, command,
 * seed, start time, fuse_wake_here (true, false, or null where the kernel
 * has no such setting), and an empty "phases" list. New reference; NULL on
 * ENOMEM.
 */
json_t *bench_report_root(const char *command, uint64_t seed);
/*
 * Appends {"target": target, "phase": name, "gbps", "ops_per_s",
 * "latency_us"} to root's "phases" list, what plot-bench.sh reads. 0 or
 * -ENOMEM.
 */
int bench_report_add_plot_row(json_t *root, const char *target, const struct bench_phase *p);

/* Writes root to path ("-" is stdout), indented. 0 or -errno. */
int bench_report_write(const char *path, json_t *root);

/* json_object_set_new() that tolerates a NULL value (allocation failure): ignored. */
void bench_report_set(json_t *obj, const char *key, json_t *value);

#endif
