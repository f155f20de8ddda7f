/* SPDX-License-Identifier: MIT */
/*
 * load.h - stragglers from real contention (SPEC load:T:D, spec.h), as in
 * the Frank-Wolfe seed's experiments, where "stress -c 1" ran on a random
 * host every t seconds: here every T seconds of a worker's run, the worker
 * drawn for that tick runs a CPU hog for D seconds on its own core.
 *
 * The hog is a thread of the worker process, not a child process: the
 * worker's training thread is bound with hwloc to one core (the rank-th
 * core mod the cores, one PU of it) and the hog binds itself to the same
 * one, so the worker gets about half of its core while the hog runs, and
 * the hog cannot outlive the worker (the process takes it along, whatever
 * way it ends). trn_load_stop() ends and joins it. Only those two threads
 * are bound: the library's own (the liveness pulse, transport progress)
 * stay free, or a busy core could hold the pulse back until the shard
 * declares the worker lost. Without hwloc (RDPS_WITH_HWLOC off) the
 * binding is sched_setaffinity to CPU rank mod the online CPUs.
 *
 * Where the threads really ran is measured, not assumed: the hog samples
 * its CPU while it spins, trn_load_stop() the calling thread's, so the
 * report shows a binding that did not hold.
 *
 * One trn_load per worker process; start and stop from the same thread.
 */
#ifndef RDPS_TRAIN_LOAD_H
#define RDPS_TRAIN_LOAD_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

struct trn_load {
	int running;   /* the controller thread exists */
	int cpu;       /* the CPU (OS index) the training thread and the hog
			* are bound to; -1: not bound */
	double t, d;   /* tick and hog length, s */
	uint64_t seed; /* the draws */
	unsigned rank, workers;
	pthread_t thread;
	void *topo;		/* hwloc_topology_t, or NULL */
	void *set;		/* hwloc_bitmap_t of cpu, or NULL */
	int stop;		/* set by trn_load_stop (atomic) */
	unsigned hogs;		/* ticks this worker hogged */
	double hog_cpu;		/* CPU seconds the hog burnt */
	int hog_ran_on;		/* CPU the hog was seen on: -1 never sampled,
				 * -2 more than one */
	int worker_ran_on;	/* CPU of trn_load_stop's caller, -1 unknown */
	unsigned threads;	/* the process's threads at trn_load_bind */
	unsigned threads_bound; /* of them, bound to cpu alone */
};

/* The worker that hogs at tick k (k >= 1) of a job of workers. Pure. */
unsigned trn_load_pick(uint64_t seed, uint64_t k, unsigned workers);

/* Choose the core, rank mod the cores, and start the controller (bound
 * to it) for ticks of t seconds and hogs of d seconds. 0 or a negative
 * errno (nothing to stop). No core known is not an error: cpu stays -1
 * and nothing is bound. */
int trn_load_start(struct trn_load *l, double t, double d, uint64_t seed,
		   unsigned rank, unsigned workers);
/* Bind the calling thread, the one that trains, to the core; call it once
 * the library's threads are started (after rdps_ctx_create), which then
 * keep their own placement. l NULL or not started: nothing. */
void trn_load_bind(struct trn_load *l);
/* End the hog if it runs, join the controller, note where the caller
 * runs (worker_ran_on); hogs, hog_cpu and hog_ran_on stay. */
void trn_load_stop(struct trn_load *l);

/* After trn_load_stop(), one line on f:
 * "rdps-train: load: worker R (pid P) on CPU C, ran on C, B of T threads
 * bound to it: N hogs of D s, ran on C, X s CPU" (B: the training thread
 * and the hog, 2), a CPU printed "-" if unknown (not bound, the hog never
 * ran) and "several" if the hog was seen on more than one. */
void trn_load_report(const struct trn_load *l, FILE *f);

#endif /* RDPS_TRAIN_LOAD_H */
