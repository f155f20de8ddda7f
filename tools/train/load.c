/* SPDX-License-Identifier: MIT */
/* load.c - CPU hogs beside a worker on its own core (load.h). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "load.h"
#include "rng.h"

unsigned trn_load_pick(uint64_t seed, uint64_t k, unsigned workers)
{
	struct trn_rng r;

	trn_rng_seed(&r, seed ^ 0x4c4f4144ull, 1, k);
	return (unsigned)trn_rng_below(&r, workers ? workers : 1);
}

static double load_now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load_stopped(struct trn_load *l)
{
	return __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE);
}

/* Sleep until monotonic time until, in steps of at most 10 ms so that a
 * stop is seen soon. 0, or 1 if stopped. */
static int load_wait(struct trn_load *l, double until)
{
	for (;;) {
		double left = until - load_now(CLOCK_MONOTONIC);
		struct timespec ts;

		if (load_stopped(l))
			return 1;
		if (left <= 0)
			return 0;
		if (left > 0.01)
			left = 0.01;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
}

static void *load_main(void *arg)
{
	struct trn_load *l = arg;
	double t0 = load_now(CLOCK_MONOTONIC);

	for (uint64_t k = 1;; k++) {
		double end, c0;
		volatile uint64_t sink = 0;

		if (load_wait(l, t0 + (double)k * l->t))
			break;
		if (trn_load_pick(l->seed, k, l->workers) != l->rank)
			continue;
		/* The hog: spin on this core for d seconds. */
		c0 = load_now(CLOCK_THREAD_CPUTIME_ID);
		end = load_now(CLOCK_MONOTONIC) + l->d;
		while (!load_stopped(l) && load_now(CLOCK_MONOTONIC) < end)
			for (int i = 0; i < 10000; i++)
				sink = sink * 6364136223846793005ull + 1;
		l->hogs++;
		l->hog_cpu += load_now(CLOCK_THREAD_CPUTIME_ID) - c0;
	}
	return NULL;
}

int trn_load_start(struct trn_load *l, double t, double d, uint64_t seed,
		   unsigned rank, unsigned workers)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	int ret;

	memset(l, 0, sizeof(*l));
	l->cpu = -1;
	l->t = t;
	l->d = d;
	l->seed = seed;
	l->rank = rank;
	l->workers = workers;
	/* Pin first: the controller and the hog inherit the core. */
	if (cpus > 0) {
		CPU_ZERO(&set);
		CPU_SET((int)(rank % (unsigned long)cpus), &set);
		if (!sched_setaffinity(0, sizeof(set), &set))
			l->cpu = (int)(rank % (unsigned long)cpus);
	}
	ret = pthread_create(&l->thread, NULL, load_main, l);
	if (ret)
		return -ret;
	l->running = 1;
	return 0;
}

void trn_load_stop(struct trn_load *l)
{
	if (!l->running)
		return;
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	pthread_join(l->thread, NULL);
	l->running = 0;
}
