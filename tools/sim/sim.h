/* SPDX-License-Identifier: MIT */
/*
 * sim.h - rdps-sim's model: per-operation cost profiles and one simulated
 * job (W workers, S shards, a consistency model) driven by them.
 *
 * What is modelled, operation by operation as src/worker/ and src/server/
 * do them (counted the same way):
 *   pull (pull.c)   per round, per shard still wanted: a 64-byte READ of
 *                   its directory header and a READ of its run, all shards
 *                   at once; under BSP/A-BSP a shard whose applied_clock
 *                   (as the header read saw it) is below the worker's
 *                   clock is read again after wrk_backoff();
 *   compute         a given time, times the straggler factor of (worker,
 *                   iteration) from rdps-train's SPEC (tools/train/spec.h);
 *                   A-BSP cuts it into batches with one 8-byte READ of the
 *                   cut word between them (rdps_cut_poll) and a
 *                   compare-swap by the first worker through (rdps_cut);
 *   push (push.c)   per shard, its part of the delta in sub-slot messages
 *                   (1 MiB - 64 bytes of payload each, 4 in flight): from
 *                   rdps_buf_alloc() memory and 4 KiB or more a payload
 *                   WRITE plus the header's write-with-immediate, else one
 *                   write-with-immediate; returns with the last credit;
 *   clock (clock.c) BSP/A-BSP: an END to every shard and the fetch-add of
 *                   arrive[t mod K] on shard 0, posted together; SSP: the
 *                   fetch-add and, when slack > 0 and t >= slack, the read
 *                   of arrive[(t - slack) mod K] beside it; ASP: the
 *                   fetch-add. Then, unless the fetch-add made this worker
 *                   the last (BSP) or the posted read shows the clock done,
 *                   the flat counter's wait ("Waking waiters" in
 *                   ps_proto.h): up to the profile's wait_reads
 *                   re-reads of the counter (8-byte READs, spaced as
 *                   wrk_backoff's first tries: verbs' read phase),
 *                   then one PS_WAIT (a message to shard 0: its
 *                   loop's wake-up and msg_us; with end_waits, BSP and
 *                   A-BSP, none: the END registered the wait), and the
 *                   worker sleeps
 *                   until shard 0's PS_RELEASE; the worker whose
 *                   fetch-add completed the clock sends one PS_DONE (W >
 *                   1, not ASP). Shard 0's loop answers a PS_WAIT at once
 *                   if its words show the clock complete when it handles
 *                   it, else registers it; on a PS_DONE it sends a
 *                   PS_RELEASE to every registered waiter, one after
 *                   another on its CPU (release_us each: the last of k
 *                   pays k), each delivered in write_us and waking its
 *                   waiter (its learned spin, below). So a waiter's
 *                   critical path is the completer's fetch-add, its
 *                   PS_DONE, the shard's loop (its wake-up, competing for
 *                   the cores), the sends before its own, the delivery
 *                   and its own wake-up; no re-read after the PS_WAIT
 *                   (a safety read per 100 ms of waiting is counted).
 *                   With the clock tree, 8-byte READs of the group's
 *                   release word with wrk_clock_backoff() between them
 *                   (two tries at once, four after a sched_yield, then
 *                   sleeps of 10 us doubling every second try up to 1
 *                   ms, past 8 ms an eighth of the wait so far up to 16
 *                   ms; each sleep overshoots by sleep_extra_us), and
 *                   every 16th try a READ of shard 0's directory header
 *                   (wrk_lost_check). With the clock tree (fan-in G > 1,
 *                   sim_cfg.fanin) the fetch-add goes to the worker's
 *                   group's arrival line (group g: shard g mod S), the
 *                   last of a group then adds to the root's (shard 0),
 *                   waited for, the last group's adder then to every
 *                   group's release line, posted together and waited
 *                   for, and waiters read their group's release line as
 *                   above;
 *   shard (server/) one CPU queue per shard: per message a fixed cost, a
 *                   push's bytes applied (SSP, ASP) or staged (BSP/A-BSP,
 *                   srv_pend_add) at a cost per byte, and when the W-th
 *                   END(c) is in, one scan of the W workers' END counts
 *                   (srv_ends_recount) and BSP/A-BSP apply the W pending
 *                   deltas (srv_pend_apply) before applied_clock is
 *                   published.
 * Contention: shard 0's arrival words (the K = slack + 2 in use share one
 * 64-byte line of the clock table) are one hot address, the cut word
 * another; with the tree, each node's arrival line and each group's
 * release line is one: a line's operations are served one at a time, fetch-adds
 * and compare-swaps at the profile's atomics/s on one address, reads at its
 * reads/s, so the tree's waiters' reads delay the fetch-adds they wait
 * for. With the flat counter the hot spot is also shard 0's CPU: per
 * clock W ENDs (BSP), W - 1 PS_WAITs and a PS_DONE at msg_us, and up to
 * W - 1 PS_RELEASEs at release_us. Each
 * host has one link of the profile's bandwidth per direction (a transfer
 * holds the sender's send side and the receiver's receive side); in the
 * host profiles every process is on one host, so all bytes share one
 * memory bus or loopback, and with cores > 0 the copies and the shards'
 * work share that many cores. A shard's CPU is one queue; with op_thread
 * (tcp) one-sided operations are served by a progress thread per shard
 * (on those cores too).
 * Adaptive polling, as transport.c rdps_tp_wait learns it: each waiter
 * (a worker, a shard's loop) has a spin, spin_us at first. A wait spins
 * that long (the whole spin_us every 64th wait, a probe); answered during
 * it, the spin goes back to spin_us; not, the waiter sleeps, pays a
 * wake-up and halves its spin (below 1 us: none, until a probe is
 * answered). So a waiter whose waits are mostly answered within the spin
 * pays almost no wake-ups, and one whose waits mostly outlast it pays one
 * per wait, even for its short waits, until a probe is answered: its
 * expected cost per wait is the wake-up times the share of waits that
 * find its spin run out. Which one a job settles in can depend on where
 * it starts (sleeping makes the next wait longer): such a job is
 * bistable, and the simulation, deterministic, shows one of its states.
 * tcp's serve thread never spins (epoll_wait): a request that finds it
 * idle wakes it. A worker waiting on tcp drives its own sockets: one
 * wake-up per completion, not a progress thread's and then its own.
 * The wake-up: wake_us + wake_per_proc_us x (W + S) up to wake_max_us on
 * an oversubscribed host (its run queue), else wake_free_us; wake_spread
 * of it drawn at random (sim_profile).
 * Oversubscription (one_host, cores > 0, step_us > 0): W workers, S
 * shards, their spins and tcp's serve threads take turns on the cores: a
 * worker that slept or yielded needs a core back (step_us of it) before
 * its next step, a spinning waiter holds one, so whether a spin is
 * answered follows from the queue for the cores. Without step_us the
 * workers run beside the cores, and on an oversubscribed host (cpus,
 * load) no spin is answered.
 *
 * Not modelled: the worker's own CPU for posting and copying beyond the
 * link (shm copies are the link) and beyond step_us, the time slices of
 * workers that never sleep (a worker that is never off its CPU is never
 * queued for one), the workers' own progress threads, the CPU a wake-up
 * costs the woken process, caches and NUMA,
 * packet loss and congestion control, the NIC's message rate beyond the
 * per-address limit, lost workers, checkpoints, embedding tables, sparse
 * pushes, BSP hold-back of early pushes (a pull waits for applied_clock
 * first, so with whole iterations it does not happen), ASP/SSP under
 * on_worker_loss continue (its second fetch-add).
 */
#ifndef RDPS_SIM_H
#define RDPS_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spec.h"

/* Per-operation costs of one transport on one kind of machine. Times in
 * microseconds, unloaded (one operation alone). */
struct sim_profile {
	const char *name;
	const char *source; /* where the figures come from */
	double read_us;	    /* 8-byte READ, whole operation */
	double write_us;    /* 8-byte write-with-immediate, delivery */
	double fadd_us;	    /* fetch-add, whole operation */
	double cas_us;	    /* compare-swap, whole operation */
	double link_gbs;    /* bandwidth of a host's link, GB/s each way */
	int one_host;	    /* every process on one host (shm, loopback) */
	/* one_host: the cores its copies (the link) and the shards' work
	 * share; 0: each shard has a core of its own, copies the link. */
	unsigned cores;
	double apply_ns_per_byte; /* shard CPU per byte applied or staged */
	double msg_us;		  /* shard CPU per message */
	double scan_ns;		  /* shard CPU per worker scanned per clock */
	double atomic_mops;	  /* fetch-adds per second on one address, M */
	double hot_read_mops;	  /* reads per second on one address, M */
	double spin_us; /* adaptive polling: the most a wait spins, learned
			 * below it ("Adaptive polling" above) */
	/* More runnable processes than cores: a wake-up costs wake_us (with
	 * wake_per_proc_us, up to wake_max_us), and without step_us no
	 * spin is answered, so every hand-off to a waiting process pays it. */
	int oversubscribed;
	double wake_us;		 /* ... and the wake-up after it, */
	double wake_per_proc_us; /* plus this per process of the job */
	double yield_us;	 /* a sched_yield() in wrk_backoff */
	double sleep_extra_us;	 /* a nanosleep's overshoot (timer slack) */
	/* cpus > 0: the host's CPUs, and load the other jobs' runnable
	 * tasks on them (the load average). The job runs W + S processes,
	 * each one task, two with op_thread (its progress thread): past
	 * cpus with load, the host is oversubscribed as if the flag were
	 * set; below, a sleeping process wakes on a free CPU in
	 * wake_free_us. cpus 0: only the flag counts. */
	unsigned cpus;
	double load;
	double wake_free_us;
	/* > 0: no wake-up costs more (most of a big job's processes sleep
	 * at any time, so the tasks a wake-up waits behind stop growing). */
	double wake_max_us;
	/* 0 .. 1: that share of each wake-up is drawn from an exponential
	 * distribution of the same mean (the run-queue wait of a woken
	 * process varies), the rest is fixed. 0: every wake-up the same. */
	double wake_spread;
	/* One-sided operations served by a thread of the target (tcp's
	 * progress thread): op_cpu_us each, one at a time per shard, and a
	 * wake-up when it slept (adaptive polling). 0: by the NIC. */
	int op_thread;
	double op_cpu_us;
	/* one_host with cores > 0: a worker's step (a post, a poll, the
	 * return from a wait: system calls and the switch back to the
	 * process) is step_us of CPU on those cores, so W workers take
	 * turns on them; 0: workers run beside the cores for free. */
	double step_us;
	/* Shard 0's CPU per PS_RELEASE it sends (a zero-length put_imm
	 * post: a ring write on shm, a send() on tcp): a PS_DONE's k
	 * waiters are answered one after another, the last after k. */
	double release_us;
	/* The flat wait's read phase (clock.c wrk_clock_reads): re-reads
	 * of the counter, spaced as wrk_backoff's first tries, before the
	 * PS_WAIT (verbs: 6; shm, tcp: 0). */
	unsigned wait_reads;
	/* Flat BSP/A-BSP: an END registers its worker's wait on shard 0
	 * (server/clock.c srv_end_waits: the transports without a read
	 * phase, shm and tcp), so a waiter sends no PS_WAIT. */
	int end_waits;
	const char *fitted; /* parameters fitted to measured iterations */
};

/* The built-in profiles (shm, tcp, rxe, connectx); NULL if unknown. */
const struct sim_profile *sim_profile_find(const char *name);
/* Set one field of p from "FIELD=VALUE" (--set). 0, or -EINVAL with one
 * line in err. */
int sim_profile_set(struct sim_profile *p, const char *kv, char *err,
		    size_t errlen);
/* Every field of p, one FIELD=VALUE a line (the names --set takes). */
void sim_profile_print(FILE *f, const struct sim_profile *p);

/* A field of the profile by the name --set knows: its value (NAN for an
 * unknown name); sim_profile_put() stores v as the field's type
 * (-ENOENT for an unknown name). */
double sim_profile_get(const struct sim_profile *p, const char *name);
int sim_profile_put(struct sim_profile *p, const char *name, double v);
/* Names of the built-in profiles, comma-separated, for messages. */
const char *sim_profile_names(void);
/* The n-th built-in profile, NULL past the last. */
const struct sim_profile *sim_profile_at(unsigned n);

enum sim_model { SIM_BSP, SIM_SSP, SIM_ASP, SIM_ABSP };

struct sim_cfg {
	const struct sim_profile *prof;
	enum sim_model model;
	unsigned workers, shards, slack;
	uint64_t model_bytes; /* the dense table, pulled and pushed whole */
	double compute_us;
	unsigned batches; /* A-BSP: cut polls per iteration's compute */
	uint64_t iters, warmup;
	uint64_t seed;
	struct trn_spec stragglers;
	int clock_only; /* iterations of rdps_clock() alone */
	/* The clock's fan-in, as rdps_config.clock_fanin: 0 automatic
	 * (flat up to 32 workers, then groups of ceil(sqrt(W))), 1 flat,
	 * G the tree. */
	unsigned fanin;
};

struct sim_result {
	double iter_us_median, iter_us_p99;
	double iter_us_mean, iter_us_min, iter_us_max;
	double shard_cpu_us_per_iter; /* mean over the shards */
	double bytes_per_worker_iter, ops_per_worker_iter;
	/* The clock's fetch-adds, reads (of its words), PS_WAITs and
	 * PS_DONEs; not the ENDs (ops_per_worker_iter counts those). */
	double clock_ops_per_worker_iter;
	/* Shard 0's clock line (flat: arrive[]; tree: the root's):
	 * fetch-adds and reads per second over the measured iterations,
	 * and the share of that time the busiest clock line (flat: that
	 * one; tree: the root's or a group's arrival or release line) was
	 * busy (1.0: saturated). */
	double hot_atomics_per_s, hot_reads_per_s, hot_util;
	double sim_us; /* simulated time of the measured iterations */
};

/* Defaults: bsp, 1 worker, 1 shard, 4 KiB, no compute, 10 batches,
 * 50 iterations after 5 of warm-up, seed 1, no stragglers. */
void sim_cfg_default(struct sim_cfg *cfg);
/* Check cfg: 0, or -EINVAL with one line in err. */
int sim_cfg_check(const struct sim_cfg *cfg, char *err, size_t errlen);
/* Simulate cfg (checked) into *res. 0, or -ENOMEM. Deterministic: the
 * same cfg gives the same result. */
int sim_run(const struct sim_cfg *cfg, struct sim_result *res);
/* Simulate cfg into *res and its clock-only twin (no pull, no push) into
 * *clock. 0, or -ENOMEM. */
int sim_run_pair(const struct sim_cfg *cfg, struct sim_result *res,
		 struct sim_result *clock);
/* "bsp", "ssp", "asp", "absp"; parse: -EINVAL if unknown. */
const char *sim_model_name(enum sim_model m);
int sim_model_parse(const char *s, enum sim_model *out);

#endif /* RDPS_SIM_H */
