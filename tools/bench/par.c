// SPDX-License-Identifier: Apache-2.0
/*
 * A gate rather than a pthread barrier: the caller waits until every
 * thread it created is parked, then opens the gate and takes the start
 * time. If a thread cannot be created, the gate opens on "abort" instead,
 * which a barrier of fixed count could not do.
 */
#include "tools/bench/par.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "tools/bench/stats.h"

enum gate { GATE_SHUT, GATE_GO, GATE_ABORT };

struct par {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int parked;	/* protected by lock */
	enum gate gate; /* protected by lock */
	bench_par_fn fn;
	void *ctx;
};

struct par_thread {
	struct par *par;
	pthread_t th;
	int tid;
};

static void *par_main(void *arg)
{
	struct par_thread *t = arg;
	struct par *p = t->par;
	enum gate g;

	pthread_mutex_lock(&p->lock);
	p->parked++;
	pthread_cond_broadcast(&p->cond);
	while (p->gate == GATE_SHUT)
		pthread_cond_wait(&p->cond, &p->lock);
	g = p->gate;
	pthread_mutex_unlock(&p->lock);
	if (g == GATE_GO)
		p->fn(p->ctx, t->tid);
	return NULL;
}

int bench_par_run(int n, bench_par_fn fn, void *ctx, uint64_t *wall_ns)
{
	struct par p = {.lock = PTHREAD_MUTEX_INITIALIZER,
			.cond = PTHREAD_COND_INITIALIZER,
			.gate = GATE_SHUT,
			.fn = fn,
			.ctx = ctx};
	struct par_thread *ts;
	uint64_t t0 = 0;
	int i, ret = 0;

	if (n < 1 || n > 1024)
		return -EINVAL;
	ts = calloc((size_t)n, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		ts[i].par = &p;
		ts[i].tid = i;
		ret = pthread_create(&ts[i].th, NULL, par_main, &ts[i]);
		if (ret)
			break;
	}
	pthread_mutex_lock(&p.lock);
	while (p.parked < i)
		pthread_cond_wait(&p.cond, &p.lock);
	/* The clock starts before the gate opens: a woken thread may finish first. */
	t0 = bench_now_ns();
	p.gate = ret ? GATE_ABORT : GATE_GO;
	pthread_cond_broadcast(&p.cond);
	pthread_mutex_unlock(&p.lock);
	for (int k = 0; k < i; k++)
		pthread_join(ts[k].th, NULL);
	if (wall_ns)
		*wall_ns = bench_now_ns() - t0;
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	free(ts);
	return -ret;
}
