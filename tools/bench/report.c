// SPDX-License-Identifier: Apache-2.0
/*
 * Latencies go to JSON in microseconds with fractions, throughput in GB/s
 * (10^9 bytes) and ops/s: the units the performance docs use, so figures
 * are pasted without conversion.
 */
#include "tools/bench/report.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

void bench_report_fmt_ns(char *out, size_t outsz, uint64_t ns)
{
	if (ns < 1000)
		snprintf(out, outsz, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(out, outsz, "%.0f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(out, outsz, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(out, outsz, "%.2f s", (double)ns / 1e9);
}

void bench_report_fmt_bytes(char *out, size_t outsz, uint64_t b)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	double v = (double)b;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(out, outsz, "%.0f %s", v, unit[u]);
	else
		snprintf(out, outsz, "%.2f %s", v, unit[u]);
}

void bench_report_phase_line(FILE *f, const char *indent, const struct bench_phase *p)
{
	char p50[32], p99[32], p999[32], gb[32] = "";

	bench_report_fmt_ns(p50, sizeof(p50), bench_hist_quantile(&p->lat, 0.5));
	bench_report_fmt_ns(p99, sizeof(p99), bench_hist_quantile(&p->lat, 0.99));
	bench_report_fmt_ns(p999, sizeof(p999), bench_hist_quantile(&p->lat, 0.999));
	if (p->bytes)
		snprintf(gb, sizeof(gb), "%7.3f GB/s", bench_phase_gbps(p));
	fprintf(f, "%s%-18s %12s %10.0f ops/s  p50 %9s  p99 %9s  p999 %9s", indent, p->name, gb,
		bench_phase_ops_per_s(p), p50, p99, p999);
	if (p->errors)
		fprintf(f, "  errors %llu", (unsigned long long)p->errors);
	fputc('\n', f);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

void bench_report_ratio_line(FILE *f, const struct bench_phase *a, const struct bench_phase *b)
{
	fprintf(f, "  ratio %-18s", a->name);
	if (a->bytes && b->bytes)
		fprintf(f, " %5.2fx GB/s,", ratio(bench_phase_gbps(a), bench_phase_gbps(b)));
	fprintf(f, " %5.2fx ops/s, latency p50 %.2fx p99 %.2fx p999 %.2fx\n",
		ratio(bench_phase_ops_per_s(a), bench_phase_ops_per_s(b)),
		ratio((double)bench_hist_quantile(&a->lat, 0.5),
		      (double)bench_hist_quantile(&b->lat, 0.5)),
		ratio((double)bench_hist_quantile(&a->lat, 0.99),
		      (double)bench_hist_quantile(&b->lat, 0.99)),
		ratio((double)bench_hist_quantile(&a->lat, 0.999),
		      (double)bench_hist_quantile(&b->lat, 0.999)));
}

void bench_report_set(json_t *obj, const char *key, json_t *value)
{
	if (obj && value)
		json_object_set_new(obj, key, value);
	else
		json_decref(value);
}

json_t *bench_report_ratio_json(double a, double b)
{
	return b > 0 ? json_real(a / b) : json_null();
}

json_t *bench_report_lat_json(const struct bench_hist *h)
{
	json_t *o = json_object();

	bench_report_set(o, "p50", json_real((double)bench_hist_quantile(h, 0.5) / 1e3));
	bench_report_set(o, "p99", json_real((double)bench_hist_quantile(h, 0.99) / 1e3));
	bench_report_set(o, "p999", json_real((double)bench_hist_quantile(h, 0.999) / 1e3));
	bench_report_set(o, "mean", json_real(bench_hist_mean_ns(h) / 1e3));
	bench_report_set(o, "min", json_real(h->count ? (double)h->min_ns / 1e3 : 0));
	bench_report_set(o, "max", json_real((double)h->max_ns / 1e3));
	bench_report_set(o, "samples", json_integer((json_int_t)h->count));
	return o;
}

json_t *bench_report_phase_json(const struct bench_phase *p)
{
	json_t *o = json_object();

	bench_report_set(o, "ops", json_integer((json_int_t)p->ops));
	bench_report_set(o, "bytes", json_integer((json_int_t)p->bytes));
	bench_report_set(o, "errors", json_integer((json_int_t)p->errors));
	bench_report_set(o, "seconds", json_real(p->seconds));
	bench_report_set(o, "gbps", json_real(bench_phase_gbps(p)));
	bench_report_set(o, "ops_per_s", json_real(bench_phase_ops_per_s(p)));
	bench_report_set(o, "latency_us", bench_report_lat_json(&p->lat));
	return o;
}

json_t *bench_report_phase_ratio_json(const struct bench_phase *a, const struct bench_phase *b)
{
	json_t *o = json_object();

	bench_report_set(o, "gbps",
			 bench_report_ratio_json(bench_phase_gbps(a), bench_phase_gbps(b)));
	bench_report_set(
	    o, "ops_per_s",
	    bench_report_ratio_json(bench_phase_ops_per_s(a), bench_phase_ops_per_s(b)));
	bench_report_set(o, "p50",
			 bench_report_ratio_json((double)bench_hist_quantile(&a->lat, 0.5),
						 (double)bench_hist_quantile(&b->lat, 0.5)));
	bench_report_set(o, "p99",
			 bench_report_ratio_json((double)bench_hist_quantile(&a->lat, 0.99),
						 (double)bench_hist_quantile(&b->lat, 0.99)));
	bench_report_set(o, "p999",
			 bench_report_ratio_json((double)bench_hist_quantile(&a->lat, 0.999),
						 (double)bench_hist_quantile(&b->lat, 0.999)));
	return o;
}

/*
 * Small-file figures on a VM depend on the fuse module's wake_here twofold
 * (docs/performance.md), so every run records it.
 */
const char *bench_report_fuse_wake_here(void)
{
	int w = mcfs_fuse_wake_here();

	return w < 0 ? NULL : w ? "Y" : "N";
}

void bench_report_host_line(FILE *f)
{
	const char *w = bench_report_fuse_wake_here();

	if (w)
		fprintf(f, "  kernel: fuse wake_here=%s%s\n", w,
			*w == 'Y' ? " (FUSE requests are served on the caller's CPU)" : "");
}

json_t *bench_report_root(const char *command, uint64_t seed)
{
	const char *wake_here = bench_report_fuse_wake_here();
	json_t *o = json_object();
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	if (!o)
		return NULL;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	bench_report_set(o, "tool", json_string("mcfs-bench"));
	bench_report_set(o, "version", json_string(MCFS_VERSION));
	bench_report_set(o, "command", json_string(command));
	bench_report_set(o, "seed", json_integer((json_int_t)seed));
	bench_report_set(o, "started", json_string(when));
	bench_report_set(o, "fuse_wake_here",
			 wake_here ? json_boolean(*wake_here == 'Y') : json_null());
	bench_report_set(o, "phases", json_array());
	return o;
}

int bench_report_add_plot_row(json_t *root, const char *target, const struct bench_phase *p)
{
	json_t *arr = json_object_get(root, "phases"), *row = json_object();

	if (!arr || !row) {
		json_decref(row);
		return -ENOMEM;
	}
	bench_report_set(row, "target", json_string(target));
	bench_report_set(row, "phase", json_string(p->name));
	bench_report_set(row, "gbps", json_real(bench_phase_gbps(p)));
	bench_report_set(row, "ops_per_s", json_real(bench_phase_ops_per_s(p)));
	bench_report_set(row, "latency_us", bench_report_lat_json(&p->lat));
	return json_array_append_new(arr, row) ? -ENOMEM : 0;
}

int bench_report_write(const char *path, json_t *root)
{
	size_t flags = JSON_INDENT(2) | JSON_REAL_PRECISION(6);

	if (!strcmp(path, "-")) {
		if (json_dumpf(root, stdout, flags))
			return -EIO;
		fputc('\n', stdout);
		return 0;
	}
	errno = 0;
	if (json_dump_file(root, path, flags))
		return errno ? -errno : -EIO;
	return 0;
}
