/* SPDX-License-Identifier: MIT */
/* load.c - CPU hogs beside a worker on its own core (load.h). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef RDPS_WITH_HWLOC
#include <hwloc.h>
#endif

#include "load.h"
#include "rng.h"

unsigned trn_load_pick(uint64_t seed, uint64_t k, unsigned workers)
{
	struct trn_rng r;

	trn_rng_seed(&r, seed ^ 0x4c4f4144ull, 1, k);
	return (unsigned)trn_rng_below(&r, workers ? workers : 1);
}

#ifdef RDPS_WITH_HWLOC
/* Choose one PU of core rank mod cores: l->cpu, l->topo and l->set. */
static void load_choose(struct trn_load *l)
{
	hwloc_topology_t topo;
	hwloc_obj_t core;
	hwloc_bitmap_t set;
	int n;

	if (hwloc_topology_init(&topo))
		return;
	if (hwloc_topology_load(topo))
		goto err_topo;
	n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
	if (n <= 0)
		goto err_topo;
	core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE,
				     l->rank % (unsigned)n);
	set = core ? hwloc_bitmap_dup(core->cpuset) : NULL;
	if (!set)
		goto err_topo;
	/* One PU: with SMT, worker and hog on sibling threads would not
	 * share one. */
	hwloc_bitmap_singlify(set);
	l->topo = topo;
	l->set = set;
	l->cpu = hwloc_bitmap_first(set);
	return;
err_topo:
	hwloc_topology_destroy(topo);
}

/* Bind the calling thread (only: HWLOC_CPUBIND_THREAD) to the PU. */
static void load_bind_thread(struct trn_load *l)
{
	if (l->topo)
		hwloc_set_cpubind(l->topo, l->set, HWLOC_CPUBIND_THREAD);
}

/* The CPU the calling thread runs on, -1 unknown. Safe from any thread:
 * the topology is only read once loaded. */
static int load_where(struct trn_load *l)
{
	hwloc_bitmap_t at;
	int cpu = -1;

	if (!l->topo)
		return sched_getcpu();
	at = hwloc_bitmap_alloc();
	if (at &&
	    !hwloc_get_last_cpu_location(l->topo, at, HWLOC_CPUBIND_THREAD))
		cpu = hwloc_bitmap_first(at);
	hwloc_bitmap_free(at);
	return cpu;
}

static void load_unbind(struct trn_load *l)
{
	if (!l->topo)
		return;
	hwloc_bitmap_free(l->set);
	hwloc_topology_destroy(l->topo);
	l->topo = l->set = NULL;
}
#else
static void load_choose(struct trn_load *l)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus > 0)
		l->cpu = (int)(l->rank % (unsigned long)cpus);
}

/* sched_setaffinity(0, ...) binds the calling thread only. */
static void load_bind_thread(struct trn_load *l)
{
	cpu_set_t set;

	if (l->cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(l->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int load_where(struct trn_load *l)
{
	(void)l;
	return sched_getcpu();
}

static void load_unbind(struct trn_load *l)
{
	(void)l;
}
#endif

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

/* Note that the hog ran on cpu (load.h: hog_ran_on). */
static void load_seen(struct trn_load *l, int cpu)
{
	if (l->hog_ran_on == -1)
		l->hog_ran_on = cpu;
	else if (l->hog_ran_on != cpu)
		l->hog_ran_on = -2;
}

static void *load_main(void *arg)
{
	struct trn_load *l = arg;
	double t0 = load_now(CLOCK_MONOTONIC);

	load_bind_thread(l);
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
		while (!load_stopped(l) && load_now(CLOCK_MONOTONIC) < end) {
			for (int i = 0; i < 10000; i++)
				sink = sink * 6364136223846793005ull + 1;
			load_seen(l, load_where(l));
		}
		l->hogs++;
		l->hog_cpu += load_now(CLOCK_THREAD_CPUTIME_ID) - c0;
	}
	return NULL;
}

int trn_load_start(struct trn_load *l, double t, double d, uint64_t seed,
		   unsigned rank, unsigned workers)
{
	int ret;

	memset(l, 0, sizeof(*l));
	l->cpu = -1;
	l->hog_ran_on = -1;
	l->worker_ran_on = -1;
	l->t = t;
	l->d = d;
	l->seed = seed;
	l->rank = rank;
	l->workers = workers;
	load_choose(l);
	ret = pthread_create(&l->thread, NULL, load_main, l);
	if (ret) {
		load_unbind(l);
		return -ret;
	}
	l->running = 1;
	return 0;
}

/* Count the process's threads, and those bound to l->cpu alone. */
static void load_count_threads(struct trn_load *l)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	cpu_set_t set;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid <= 0)
			continue;
		l->threads++;
		if (l->cpu >= 0 && !sched_getaffinity(tid, sizeof(set), &set) &&
		    CPU_COUNT(&set) == 1 && CPU_ISSET(l->cpu, &set))
			l->threads_bound++;
	}
	closedir(dir);
}

void trn_load_bind(struct trn_load *l)
{
	if (!l || !l->running)
		return;
	load_bind_thread(l);
	load_count_threads(l);
}

void trn_load_stop(struct trn_load *l)
{
	if (!l->running)
		return;
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	pthread_join(l->thread, NULL);
	l->running = 0;
	l->worker_ran_on = load_where(l);
	load_unbind(l);
}

/* A CPU as load.h's report prints it. */
static const char *load_cpu_str(int cpu, char *buf, size_t len)
{
	if (cpu == -2)
		return "several";
	if (cpu < 0)
		return "-";
	snprintf(buf, len, "%d", cpu);
	return buf;
}

void trn_load_report(const struct trn_load *l, FILE *f)
{
	char a[16], b[16], c[16];

	fprintf(f,
		"rdps-train: load: worker %u (pid %ld) on CPU %s, ran on %s, "
		"%u of %u threads bound to it: %u hogs of %g s, ran on %s, "
		"%.2f s CPU\n",
		l->rank, (long)getpid(), load_cpu_str(l->cpu, a, sizeof(a)),
		load_cpu_str(l->worker_ran_on, b, sizeof(b)), l->threads_bound,
		l->threads, l->hogs, l->d,
		load_cpu_str(l->hog_ran_on, c, sizeof(c)), l->hog_cpu);
}
