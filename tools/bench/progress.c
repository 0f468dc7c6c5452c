// SPDX-License-Identifier: Apache-2.0
/*
 * One global bar: a benchmark shows one phase at a time, and a global
 * keeps the worker loops free of an extra argument.
 */
#include "tools/bench/progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tools/bench/stats.h"

#define BAR_WIDTH 30

static struct {
	bool enabled;
	bool running; /* protected by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t ticker;
	char label[64];
	uint64_t total;
	uint64_t duration_ns;
	uint64_t start_ns;
	atomic_uint_fast64_t done;
} bar = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

void bench_progress_enable(bool on)
{
	bar.enabled = on;
}

static void draw(void)
{
	uint64_t done = atomic_load(&bar.done), el = bench_now_ns() - bar.start_ns;
	double frac;
	char cells[BAR_WIDTH + 1];
	int fill;

	if (bar.duration_ns)
		frac = (double)el / (double)bar.duration_ns;
	else
		frac = bar.total ? (double)done / (double)bar.total : 0;
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * BAR_WIDTH);
	memset(cells, '#', (size_t)fill);
	memset(cells + fill, '.', (size_t)(BAR_WIDTH - fill));
	cells[BAR_WIDTH] = 0;
	if (bar.duration_ns)
		printf("\r\033[K%-20s [%s] %3d%%  %llu ops  %.1fs", bar.label, cells,
		       (int)(frac * 100), (unsigned long long)done, (double)el / 1e9);
	else
		printf("\r\033[K%-20s [%s] %3d%%  %llu/%llu  %.1fs", bar.label, cells,
		       (int)(frac * 100), (unsigned long long)done, (unsigned long long)bar.total,
		       (double)el / 1e9);
	fflush(stdout);
}

static void *tick(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&bar.lock);
	while (bar.running) {
		draw();
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&bar.cond, &bar.lock, &ts);
	}
	pthread_mutex_unlock(&bar.lock);
	return NULL;
}

int bench_progress_start(const char *label, uint64_t total, uint64_t duration_ns)
{
	int ret;

	if (!bar.enabled)
		return 0;
	snprintf(bar.label, sizeof(bar.label), "%s", label);
	bar.total = total;
	bar.duration_ns = duration_ns;
	bar.start_ns = bench_now_ns();
	atomic_store(&bar.done, 0);
	pthread_mutex_lock(&bar.lock);
	bar.running = true;
	pthread_mutex_unlock(&bar.lock);
	ret = pthread_create(&bar.ticker, NULL, tick, NULL);
	if (ret) {
		bar.running = false;
		return -ret;
	}
	return 0;
}

void bench_progress_add(uint64_t n)
{
	if (bar.enabled)
		atomic_fetch_add_explicit(&bar.done, n, memory_order_relaxed);
}

void bench_progress_stop(void)
{
	bool was;

	if (!bar.enabled)
		return;
	pthread_mutex_lock(&bar.lock);
	was = bar.running;
	bar.running = false;
	pthread_cond_signal(&bar.cond);
	pthread_mutex_unlock(&bar.lock);
	if (!was)
		return;
	pthread_join(bar.ticker, NULL);
	printf("\r\033[K");
	fflush(stdout);
}
