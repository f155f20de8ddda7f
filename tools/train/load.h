/* SPDX-License-Identifier: MIT */
/*
 * load.h - stragglers from real contention (SPEC load:T:D, spec.h), as in
 * the Frank-Wolfe seed's experiments, where "stress -c 1" ran on a random
 * host every t seconds: here every T seconds of a worker's run, the worker
 * drawn for that tick runs a CPU hog for D seconds on its own core.
 *
 * The hog is a thread of the worker process, not a child process: it
 * spins on the core the worker is pinned to (sched_setaffinity, rank mod
 * the online CPUs), so the worker gets about half of its core while it
 * runs, and it cannot outlive the worker (the process takes it along,
 * whatever way it ends). trn_load_stop() ends and joins it.
 *
 * One trn_load per worker process; start and stop from the same thread.
 */
#ifndef RDPS_TRAIN_LOAD_H
#define RDPS_TRAIN_LOAD_H

#include <pthread.h>
#include <stdint.h>

struct trn_load {
	int running;   /* the controller thread exists */
	int cpu;       /* the core the worker is pinned to; -1: not pinned */
	double t, d;   /* tick and hog length, s */
	uint64_t seed; /* the draws */
	unsigned rank, workers;
	pthread_t thread;
	int stop;	/* set by trn_load_stop (atomic) */
	unsigned hogs;	/* ticks this worker hogged */
	double hog_cpu; /* CPU seconds the hog burnt */
};

/* The worker that hogs at tick k (k >= 1) of a job of workers. Pure. */
unsigned trn_load_pick(uint64_t seed, uint64_t k, unsigned workers);

/* Pin the calling thread (and so the threads it starts after this) to
 * core rank mod CPUs, then start the controller for ticks of t seconds
 * and hogs of d seconds. 0 or a negative errno (l unchanged but for
 * cpu; nothing to stop). */
int trn_load_start(struct trn_load *l, double t, double d, uint64_t seed,
		   unsigned rank, unsigned workers);
/* End the hog if it runs, join the controller; hogs and hog_cpu stay. */
void trn_load_stop(struct trn_load *l);

#endif /* RDPS_TRAIN_LOAD_H */
