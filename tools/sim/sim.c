/* SPDX-License-Identifier: MIT */
/*
 * sim.c - rdps-sim's discrete-event model of a job (sim.h says what is
 * modelled and what is not). Each worker is a state machine stepped in
 * time order from one event heap; an operation it posts reserves the
 * queues it crosses (links, a clock-table word, a shard's CPU) when it is
 * posted, first come first served, and schedules the worker's next step
 * at its completion. No randomness but the straggler draws of
 * trn_spec_factor(seed, worker, iteration), so a run is a function of its
 * configuration.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define SIM_INF 1e300
#define SIM_NONE (~0u)
#define SIM_SAFETY_US 100000.0	  /* clock.c WRK_WAIT_SAFETY_NS */
#define SIM_HDR_BYTES 64	  /* struct ps_dir_hdr */
#define SIM_MSG_BYTES 64	  /* struct ps_msg */
#define SIM_SLOT_BYTES (1u << 20) /* PS_SLOT_BYTES_DEFAULT */
#define SIM_NSLOTS 4		  /* PS_NSLOTS */
#define SIM_ZCOPY_MIN 4096	  /* push.c WRK_ZCOPY_MIN */

/* One first-come-first-served server. */
struct sim_q {
	double free;
	double busy; /* service time of the measured iterations */
};

enum sim_phase {
	PH_PULL,       /* post a pull round */
	PH_PULL_DONE,  /* the round completed: fresh, or read again */
	PH_BATCH,      /* A-BSP: a batch of compute ended */
	PH_PUSH,       /* post the push */
	PH_CLOCK,      /* post the tick */
	PH_CLOCK_DONE, /* the tick completed: wait or not */
	PH_READ,       /* post a read of the clock word (after back-off) */
	PH_READ_DONE,  /* the read completed */
	PH_CLIMB,      /* clock tree: the root's add or the releases done */
	PH_RELEASED,   /* flat: shard 0's PS_RELEASE woke the waiter */
	PH_PARKED,     /* flat: PS_WAIT sent, no event until the release */
	PH_FINISHED
};

/* A waiter's learned spin (transport.c rdps_tp_wait, adaptive): the spin
 * its next wait may burn before it sleeps, and its waits so far. */
struct sim_spin {
	double us;
	uint64_t waits;
};

struct sim_worker {
	enum sim_phase ph;
	int off_core; /* slept or yielded: its next step needs a core */
	int on_core;  /* ... and got it (sim_step) */
	struct sim_spin spin;
	uint64_t it; /* the iteration, and the clock it ends */
	double start;
	unsigned attempt, batch;
	int read_posted, last;
	int climb;    /* clock tree: 1 the root's add, 2 the releases posted */
	uint64_t val; /* the last read of arrive[c] (count for clock c) */
	uint64_t c;   /* the clock waited for */
	double batch_us;
	double wait0;	/* when its clock wait began */
	double end0;	/* when shard 0 handled its last END */
	unsigned wnext; /* flat: the next waiter registered on its clock */
	uint8_t *want;	/* pull: shards still to read */
	uint8_t *stale_hdr;
};

struct sim_ev {
	double t;
	uint64_t seq;
	unsigned w;
};

struct sim {
	const struct sim_cfg *cfg;
	const struct sim_profile *p;
	unsigned W, S;
	double wake;   /* a wake-up: sim_host() */
	int oversub;   /* more runnable tasks than CPUs: sim_host() */
	uint64_t n_it; /* warmup + iters */
	struct sim_worker *w;
	struct sim_ev *heap;
	size_t nheap, capheap;
	uint64_t seq;
	struct sim_q *tx, *rx;	   /* per host: workers, then shards */
	struct sim_q bus;	   /* one_host: the one shared link */
	struct sim_q *pool;	   /* cores: the host's CPUs, shared */
	struct sim_q *cpu;	   /* per shard */
	struct sim_q *prog;	   /* per shard: op_thread's thread */
	struct sim_spin *cpu_spin; /* per shard: its loop's waits */
	struct sim_q hot; /* shard 0's arrival words (one cache line) */
	/* The clock tree (fan-in G > 1): arrival lines, [0] the root on
	 * shard 0, [1 + g] group g's on shard g mod S; release lines [g];
	 * group g's arrivals [g][t], the root's [t], releases [g]. */
	unsigned G, groups;
	struct sim_q *node_q, *rel_q;
	uint64_t *grp_arrived, *root_arrived, *released;
	struct sim_q cut_line; /* shard 0's A-BSP cut word (another) */
	double *pub;	       /* [s][t]: applied_clock = t + 1 published */
	uint32_t *ends;	       /* [s][t] */
	uint64_t *arrived;     /* [t]: fetch-adds executed */
	/* Waking waiters (flat counter): [t] when the W-th fetch-add of
	 * clock t was served (the shard's words show it complete), when
	 * shard 0 handled its PS_DONE, and the waiters registered on it
	 * (newest first, through sim_worker.wnext, up to SIM_NONE); clocks
	 * below rel_next were released. */
	double *complete_at, *done_at;
	unsigned *wait_head;
	uint64_t rel_next;
	double *cut;	       /* [t]: when the round was cut */
	uint64_t *shard_bytes; /* [s]: its part of the table */
	double *samples;
	uint64_t nsamples;
	double win_start, win_end;
	uint64_t ops, clock_ops, hot_atomics, hot_reads;
	double cpu_busy;
	uint64_t now_it; /* the iteration of the worker stepping */
	uint64_t rng;	 /* sim_wake()'s generator */
};

static const char *const sim_model_names[] = {"bsp", "ssp", "asp", "absp"};

const char *sim_model_name(enum sim_model m)
{
	return sim_model_names[m];
}

int sim_model_parse(const char *s, enum sim_model *out)
{
	for (unsigned i = 0; i < 4; i++)
		if (!strcmp(s, sim_model_names[i])) {
			*out = (enum sim_model)i;
			return 0;
		}
	return -EINVAL;
}

/* The fan-in the library runs with (ps_proto.h ps_fanin: automatic is
 * flat up to 32 workers, then the smallest G with G * G >= W; one group
 * of everyone is flat). */
static unsigned sim_fanin(unsigned cfg, unsigned workers)
{
	unsigned g = cfg;

	if (!g) {
		if (workers <= 32)
			return 1;
		for (g = 2; g * g < workers; g++)
			;
	}
	return g >= workers ? 1 : g;
}

void sim_cfg_default(struct sim_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->prof = sim_profile_find("shm");
	cfg->model = SIM_BSP;
	cfg->workers = 1;
	cfg->shards = 1;
	cfg->model_bytes = 4096;
	cfg->batches = 10;
	cfg->iters = 50;
	cfg->warmup = 5;
	cfg->seed = 1;
}

int sim_cfg_check(const struct sim_cfg *cfg, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (!cfg->prof)
		bad = "no profile: give --profile with one of the built-in "
		      "names";
	else if (cfg->workers < 1 || cfg->workers > 65536)
		bad = "workers must be 1 .. 65536";
	else if (cfg->shards < 1 || cfg->shards > 4096)
		bad = "shards must be 1 .. 4096";
	else if (cfg->model_bytes % 4)
		bad = "model bytes must be a multiple of 4 (float32)";
	else if (cfg->model_bytes / 4 < cfg->shards && !cfg->clock_only)
		bad = "the model must have at least one float per shard";
	else if (cfg->iters < 1 || cfg->iters > 100000)
		bad = "iterations must be 1 .. 100000";
	else if (cfg->batches < 1 || cfg->batches > 10000)
		bad = "batches must be 1 .. 10000";
	else if (cfg->slack > 62)
		bad = "slack must be 0 .. 62";
	else if (cfg->slack && cfg->model != SIM_SSP)
		bad = "slack is for ssp only";
	else if (!(cfg->compute_us >= 0 && cfg->compute_us < 1e9))
		bad = "compute time must be 0 .. 1e9 us";
	if (bad) {
		snprintf(err, errlen, "%s", bad);
		return -EINVAL;
	}
	if (trn_spec_check(&cfg->stragglers, cfg->workers, err, errlen))
		return -EINVAL;
	return 0;
}

/* --- queues and operations ------------------------------------------- */

static int sim_measured(const struct sim *s, uint64_t t)
{
	return t >= s->cfg->warmup;
}

static double q_serve(struct sim_q *q, double at, double svc, int count)
{
	double start = at > q->free ? at : q->free;

	q->free = start + svc;
	if (count)
		q->busy += svc;
	return q->free;
}

/*
 * One wait of idle us (from its first poll to its completion) by a waiter
 * with learned spin sp, as rdps_tp_wait (adaptive) does it: the wait spins
 * sp->us (the whole spin_us every SIM_SPIN_PROBE-th wait), and is answered
 * during the spin or sleeps and pays the wake-up. Answered puts the spin
 * back to spin_us, slept halves it (below 1 us: none; no spin, nothing to
 * learn). Where the processes take turns on the host's cores
 * (sim_on_cores) a spin holds a core, so whether the answer comes in time
 * follows from the queue for the cores; elsewhere, on an oversubscribed
 * host no spin is answered (the peer needs the core the spinner holds).
 * Returns the wake-up paid (0: answered); *burn: the CPU the spin burnt.
 */
#define SIM_SPIN_PROBE 64

/*
 * One wake-up: s->wake on average. A woken process waits for a CPU behind
 * whatever the scheduler runs first, so with wake_spread > 0 that share of
 * it is drawn from an exponential distribution (a memoryless run-queue
 * wait) of the same mean: BSP then waits for the slowest of W draws, and
 * workers fall out of step as they do on a busy host. The draws come from
 * one generator seeded by cfg->seed, in event order: deterministic.
 */
static double sim_wake(struct sim *s)
{
	double spread = s->p->wake_spread, u;
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	if (spread <= 0)
		return s->wake;
	/* splitmix64 */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	u = ((double)(z >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
	return s->wake * (1 - spread) - s->wake * spread * log(u);
}

/* Workers, shards and their spins take turns on the host's cores. */
static int sim_on_cores(const struct sim *s)
{
	return s->p->one_host && s->p->cores && s->p->step_us > 0;
}

static double sim_spin_wait(struct sim *s, struct sim_spin *sp, double idle,
			    double *burn)
{
	double full = s->p->spin_us,
	       cur = ++sp->waits % SIM_SPIN_PROBE ? sp->us : full;

	*burn = 0;
	if (idle <= 0 || s->wake <= 0)
		return 0; /* done at the first poll, or nothing to save */
	if ((sim_on_cores(s) || !s->oversub) && idle <= cur) {
		*burn = idle;
		sp->us = full;
		return 0;
	}
	*burn = cur;
	if (cur > 0)
		sp->us = sp->us / 2 < 1 ? 0 : sp->us / 2;
	return sim_wake(s);
}

/* Work of svc on the shared cores (profile cores > 0): the core that
 * frees first takes it. */
static double pool_serve(struct sim *s, double at, double svc, int count)
{
	unsigned best = 0;

	for (unsigned i = 1; i < s->p->cores; i++)
		if (s->pool[i].free < s->pool[best].free)
			best = i;
	return q_serve(&s->pool[best], at, svc, count);
}

/* A shard's CPU: its loop waits for a message with a learned spin
 * (sim_spin_wait), and the spin it burnt counts as its CPU. */
static double sim_cpu(struct sim *s, unsigned sh, double at, double svc,
		      uint64_t t)
{
	struct sim_q *q = &s->cpu[sh];
	double burn;

	at += sim_spin_wait(s, &s->cpu_spin[sh], at - q->free, &burn);
	if (burn > 0 && sim_on_cores(s))
		pool_serve(s, q->free, burn, 0);
	if (sim_measured(s, t))
		s->cpu_busy += svc + burn;
	if (s->p->cores) {
		/* The shard's own order, then a core of the host. */
		double start = at > q->free ? at : q->free;

		q->free = pool_serve(s, start, svc, 0);
		return q->free;
	}
	return q_serve(q, at, svc, sim_measured(s, t));
}

/* A one-sided operation reaching shard sh at at: when it is served (by
 * the NIC at once, or by the shard's progress thread, op_thread). */
static double sim_target(struct sim *s, unsigned sh, double at)
{
	struct sim_q *q = &s->prog[sh];

	if (!s->p->op_thread)
		return at;
	/* tcp's serve thread sleeps in epoll_wait, with no spin: a request
	 * that finds it idle wakes it. */
	if (at > q->free && s->wake > 0)
		at += sim_wake(s);
	/* The thread is the shard process's: its CPU is the shard's. */
	if (sim_measured(s, s->now_it))
		s->cpu_busy += s->p->op_cpu_us;
	if (s->p->cores) {
		/* The thread's own order, then a core of the host. */
		double start = at > q->free ? at : q->free;

		q->free = pool_serve(s, start, s->p->op_cpu_us, 0);
		return q->free;
	}
	return q_serve(q, at, s->p->op_cpu_us, 0);
}

/* bytes from host a to host b, starting at or after at: when the last
 * byte left. Workers are hosts 0..W-1, shards W..W+S-1. */
static double sim_xfer(struct sim *s, unsigned a, unsigned b, double at,
		       uint64_t bytes)
{
	double dur = (double)bytes / (s->p->link_gbs * 1e3);
	double start = at;

	if (s->p->one_host && s->p->cores)
		return pool_serve(s, at, dur, 0);
	if (s->p->one_host)
		return q_serve(&s->bus, at, dur, 0);
	if (s->tx[a].free > start)
		start = s->tx[a].free;
	if (s->rx[b].free > start)
		start = s->rx[b].free;
	s->tx[a].free = s->rx[b].free = start + dur;
	return start + dur;
}

static double sim_half(double whole, double svc)
{
	return whole > svc ? (whole - svc) / 2 : 0;
}

/* A READ of bytes from shard sh by worker w at time at: its completion;
 * *exec: when the shard's memory was read. */
static double sim_read(struct sim *s, unsigned w, unsigned sh, double at,
		       uint64_t bytes, double *exec)
{
	double ow =
		sim_half(s->p->read_us, s->p->op_thread ? s->p->op_cpu_us : 0);

	*exec = sim_target(s, sh, at + ow);
	return sim_xfer(s, s->W + sh, w, *exec, bytes) + ow;
}

enum sim_op { SIM_OP_READ, SIM_OP_FADD, SIM_OP_CAS };

/* An operation on a word of shard 0's clock table: an arrival word (the
 * K = slack + 2 in use share one 64-byte line) or, cut, the A-BSP cut
 * word (on a line of its own). The NIC serves a line one operation at a
 * time: each is one hot address. Its completion; *exec: when the word
 * was served. */
static double sim_word_on(struct sim *s, struct sim_q *q, unsigned sh,
			  enum sim_op op, double at, uint64_t t, double *exec)
{
	double svc = 1.0 / (op != SIM_OP_READ ? s->p->atomic_mops
					      : s->p->hot_read_mops);
	double whole = op == SIM_OP_FADD  ? s->p->fadd_us
		       : op == SIM_OP_CAS ? s->p->cas_us
					  : s->p->read_us;
	double ow =
		sim_half(whole, svc + (s->p->op_thread ? s->p->op_cpu_us : 0));

	*exec = q_serve(q, sim_target(s, sh, at + ow), svc, sim_measured(s, t));
	return *exec + ow;
}

static double sim_word(struct sim *s, int cut, enum sim_op op, double at,
		       uint64_t t, double *exec)
{
	return sim_word_on(s, cut ? &s->cut_line : &s->hot, 0, op, at, t, exec);
}

/* Where worker w's clock waits read: flat, shard 0's arrival line; tree,
 * its group's release line. */
static double sim_wait_read(struct sim *s, unsigned w, double at, uint64_t t)
{
	double exec;
	unsigned g;

	if (s->G < 2)
		return sim_word(s, 0, SIM_OP_READ, at, t, &exec);
	g = w / s->G;
	return sim_word_on(s, &s->rel_q[g], g % s->S, SIM_OP_READ, at, t,
			   &exec);
}

/* What that read sees: flat, the arrivals at clock c (done at W); tree,
 * whether c was released (done at W, so the checks stay one). */
static uint64_t sim_wait_val(const struct sim *s, unsigned w, uint64_t c)
{
	if (s->G < 2)
		return s->arrived[c];
	return s->released[w / s->G] > c ? s->W : 0;
}

/* A worker w's wait from now until done, for what another process sends
 * (remote: a credit; with op_thread, every completion): its learned spin
 * (sim_spin_wait) decides whether it pays the wake-up, and on the host's
 * cores (cores > 0, step_us > 0) the spin holds one. */
static double sim_wait(struct sim *s, unsigned w, double now, double done,
		       int remote)
{
	double burn, wake;

	if (!remote)
		return done;
	wake = sim_spin_wait(s, &s->w[w].spin, done - now, &burn);
	if (burn > 0 && sim_on_cores(s))
		pool_serve(s, now, burn, 0);
	s->w[w].off_core |= wake > 0;
	return done + wake;
}

/* wrk_backoff(attempt) in microseconds (adaptive polling): two tries at
 * once, four after a sched_yield, then sleeps of 10 us doubling every
 * second try up to 1 ms, each overshooting by sleep_extra_us. */
static double sim_backoff(const struct sim_profile *p, unsigned a)
{
	unsigned sh;
	double us;

	if (a < 2)
		return 0;
	if (a < 6)
		return p->yield_us;
	sh = (a - 6) / 2 < 7 ? (a - 6) / 2 : 7;
	us = (double)(10u << sh);
	if (us > 1000)
		us = 1000;
	return us + p->sleep_extra_us;
}

/* The clock wait's back-off (clock.c wrk_clock_backoff) before its
 * a-th re-read, waited us into the wait: sim_backoff's, and past 8 ms an
 * eighth of the wait so far, up to 16 ms. */
static double sim_clock_backoff(const struct sim_profile *p, unsigned a,
				double waited)
{
	double us = sim_backoff(p, a);

	if (a >= 20 && waited / 8 > 1000)
		us += (waited / 8 < 16000 ? waited / 8 : 16000) - 1000;
	return us;
}

/* --- the event heap ---------------------------------------------------- */

static int ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void sim_at(struct sim *s, unsigned w, double t, enum sim_phase ph)
{
	size_t i = s->nheap++;

	s->w[w].ph = ph;
	s->heap[i] = (struct sim_ev){t, s->seq++, w};
	while (i && ev_less(&s->heap[i], &s->heap[(i - 1) / 2])) {
		struct sim_ev tmp = s->heap[i];

		s->heap[i] = s->heap[(i - 1) / 2];
		s->heap[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

static struct sim_ev sim_pop(struct sim *s)
{
	struct sim_ev top = s->heap[0];
	size_t i = 0;

	s->heap[0] = s->heap[--s->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->nheap && ev_less(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->nheap && ev_less(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct sim_ev tmp = s->heap[i];

		s->heap[i] = s->heap[m];
		s->heap[m] = tmp;
		i = m;
	}
	return top;
}

/* --- a worker's steps -------------------------------------------------- */

static void sim_count(struct sim *s, uint64_t t, uint64_t ops)
{
	if (sim_measured(s, t))
		s->ops += ops;
}

/* Start iteration it of worker w at now (or finish). */
static void sim_iter_start(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];

	if (wk->it == s->n_it) {
		wk->ph = PH_FINISHED;
		if (now > s->win_end)
			s->win_end = now;
		return;
	}
	wk->start = now;
	if (wk->it == s->cfg->warmup && now < s->win_start)
		s->win_start = now;
	if (s->cfg->clock_only) {
		sim_at(s, w, now, PH_CLOCK);
		return;
	}
	memset(wk->want, 1, s->S);
	wk->attempt = 0;
	sim_at(s, w, now, PH_PULL);
}

static void sim_iter_end(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];

	if (sim_measured(s, wk->it))
		s->samples[s->nsamples++] = now - wk->start;
	wk->it++;
	sim_iter_start(s, w, now);
}

/* One pull round: the header and the run of every shard still wanted. */
static void sim_pull(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	uint64_t need = s->cfg->model == SIM_BSP || s->cfg->model == SIM_ABSP
				? wk->it
				: 0;
	double done = now;

	for (unsigned sh = 0; sh < s->S; sh++) {
		double exec, c;

		if (!wk->want[sh])
			continue;
		c = sim_read(s, w, sh, now, SIM_HDR_BYTES, &exec);
		/* The header says applied_clock as of its read. */
		wk->stale_hdr[sh] =
			need && s->pub[sh * s->n_it + need - 1] > exec;
		if (c > done)
			done = c;
		c = sim_read(s, w, sh, now, s->shard_bytes[sh], &exec);
		if (c > done)
			done = c;
		sim_count(s, wk->it, 2);
	}
	sim_at(s, w, sim_wait(s, w, now, done, s->p->op_thread), PH_PULL_DONE);
}

static void sim_pull_done(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	int left = 0;

	for (unsigned sh = 0; sh < s->S; sh++) {
		if (wk->want[sh] && !wk->stale_hdr[sh])
			wk->want[sh] = 0;
		left += wk->want[sh];
	}
	if (left) {
		double d = sim_backoff(s->p, wk->attempt++);

		wk->off_core |= d > 0;
		sim_at(s, w, now + d, PH_PULL);
		return;
	}
	/* Compute. */
	double f =
		trn_spec_factor(&s->cfg->stragglers, s->cfg->seed, w, wk->it);
	double us = s->cfg->compute_us * f;

	if (s->cfg->model == SIM_ABSP && us > 0) {
		wk->batch = 0;
		wk->batch_us = us / s->cfg->batches;
		sim_at(s, w, now + wk->batch_us, PH_BATCH);
		return;
	}
	if (s->cfg->model == SIM_ABSP) {
		/* No compute: one rdps_cut_poll(), its read not waited for. */
		double exec;

		sim_word(s, 1, SIM_OP_READ, now, wk->it, &exec);
		sim_count(s, wk->it, 1);
	}
	sim_at(s, w, now + us, PH_PUSH);
}

/* A-BSP: batch wk->batch ended at now. */
static void sim_batch(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	double exec, c;

	wk->batch++;
	if (wk->batch == s->cfg->batches) {
		/* Through the whole partition: rdps_cut's compare-swap. */
		c = sim_word(s, 1, SIM_OP_CAS, now, wk->it, &exec);
		if (s->cut[wk->it] > exec)
			s->cut[wk->it] = exec;
		sim_count(s, wk->it, 1);
		sim_at(s, w, sim_wait(s, w, now, c, s->p->op_thread), PH_PUSH);
		return;
	}
	/* rdps_cut_poll: a read posted at the last boundary saw the cut. */
	if (s->cut[wk->it] + s->p->read_us <= now) {
		sim_at(s, w, now, PH_PUSH);
		return;
	}
	sim_word(s, 1, SIM_OP_READ, now, wk->it, &exec);
	sim_count(s, wk->it, 1);
	sim_at(s, w, now + wk->batch_us, PH_BATCH);
}

/* A message of bytes (header included) from w lands on shard sh: when
 * the shard has handled it (svc on its CPU). */
static double sim_msg(struct sim *s, unsigned w, unsigned sh, double at,
		      uint64_t bytes, double svc, uint64_t t)
{
	double land = sim_xfer(s, w, s->W + sh, at, bytes) + s->p->write_us;

	return sim_cpu(s, sh, land, svc, t);
}

static void sim_push(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	const uint64_t pay = SIM_SLOT_BYTES - SIM_MSG_BYTES;
	double done = now;
	double credit[SIM_NSLOTS];

	for (unsigned sh = 0; sh < s->S; sh++) {
		uint64_t left = s->shard_bytes[sh];

		for (uint64_t k = 0; left; k++) {
			uint64_t len = left < pay ? left : pay;
			double at =
				k < SIM_NSLOTS ? now : credit[k % SIM_NSLOTS];
			double svc =
				s->p->msg_us +
				(double)len * s->p->apply_ns_per_byte / 1e3;
			double h = sim_msg(s, w, sh, at, SIM_MSG_BYTES + len,
					   svc, wk->it);

			credit[k % SIM_NSLOTS] = h + s->p->write_us;
			if (credit[k % SIM_NSLOTS] > done)
				done = credit[k % SIM_NSLOTS];
			/* Zero copy: the payload's WRITE, then the header. */
			sim_count(s, wk->it, len >= SIM_ZCOPY_MIN ? 2 : 1);
			left -= len;
		}
	}
	sim_at(s, w, sim_wait(s, w, now, done, 1), PH_CLOCK);
}

/* END(t) of worker w handled by shard sh at done: the W-th closes t. */
static void sim_end(struct sim *s, unsigned sh, double done, uint64_t t)
{
	uint32_t *e = &s->ends[sh * s->n_it + t];

	if (++*e < s->W)
		return;
	/*
	 * srv_ends_recount: once every worker's END passed the applied
	 * clock, one scan of the W workers for the lowest count; then
	 * srv_pend_apply: the W pending deltas, in worker order.
	 */
	done = sim_cpu(s, sh, done,
		       (double)s->W * s->p->scan_ns / 1e3 +
			       (double)s->W * (double)s->shard_bytes[sh] *
				       s->p->apply_ns_per_byte / 1e3,
		       t);
	s->pub[sh * s->n_it + t] = done;
}

static int sim_in_order(const struct sim *s)
{
	return s->cfg->model == SIM_BSP || s->cfg->model == SIM_ABSP;
}

static void sim_clock(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	uint64_t t = wk->it;
	double done = now, exec, c;

	if (sim_in_order(s)) {
		for (unsigned sh = 0; sh < s->S; sh++) {
			double h = sim_msg(s, w, sh, now, 0, s->p->msg_us, t);

			if (!sh)
				wk->end0 = h;
			sim_end(s, sh, h, t);
			/* The write-with-immediate completes when acked. */
			if (now + 2 * s->p->write_us > done)
				done = now + 2 * s->p->write_us;
		}
		sim_count(s, t, s->S);
	}
	if (s->G > 1) {
		/* Tree: the group's word on its shard; the last of the
		 * group climbs at PH_CLIMB. */
		unsigned g = w / s->G, size = s->W - g * s->G;
		uint64_t *ga = &s->grp_arrived[g * s->n_it + t];

		size = size < s->G ? size : s->G;
		c = sim_word_on(s, &s->node_q[1 + g], g % s->S, SIM_OP_FADD,
				now, t, &exec);
		wk->climb = ++*ga == size;
		wk->last = 0;
		s->arrived[t]++;
		s->clock_ops += sim_measured(s, t);
	} else {
		c = sim_word(s, 0, SIM_OP_FADD, now, t, &exec);
		wk->last = s->arrived[t] + 1 == s->W;
		s->arrived[t]++;
		if (wk->last)
			s->complete_at[t] = exec;
		if (sim_measured(s, t)) {
			s->hot_atomics++;
			s->clock_ops++;
		}
	}
	sim_count(s, t, 1);
	if (c > done)
		done = c;
	wk->read_posted = 0;
	wk->c = s->cfg->model == SIM_SSP && t >= s->cfg->slack
			? t - s->cfg->slack
			: t;
	if (s->cfg->model == SIM_SSP && s->cfg->slack && t >= s->cfg->slack) {
		c = sim_wait_read(s, w, now, t);
		wk->val = sim_wait_val(s, w, wk->c);
		wk->read_posted = 1;
		if (sim_measured(s, t)) {
			s->hot_reads += s->G < 2;
			s->clock_ops++;
		}
		sim_count(s, t, 1);
		if (c > done)
			done = c;
	}
	sim_at(s, w, sim_wait(s, w, now, done, s->p->op_thread), PH_CLOCK_DONE);
}

/* wrk_slack_wait: done, or back off and read again. */
static void sim_slack_next(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];

	if (wk->read_posted && wk->val >= s->W) {
		sim_iter_end(s, w, now);
		return;
	}
	if (!wk->read_posted) {
		sim_at(s, w, now, PH_READ);
		return;
	}
	double d = sim_clock_backoff(s->p, wk->attempt++, now - wk->wait0);

	wk->off_core |= d > 0;

	if (wk->attempt % 16 == 15) {
		/* wrk_lost_check: shard 0's directory header, waited for. */
		double exec,
			c = sim_read(s, w, 0, now + d, SIM_HDR_BYTES, &exec);

		sim_count(s, wk->it, 1);
		sim_at(s, w, sim_wait(s, w, now + d, c, s->p->op_thread),
		       PH_READ);
		return;
	}
	sim_at(s, w, now + d, PH_READ);
}

/*
 * Clock tree (clock.c wrk_tree_up): the worker that completed its group
 * adds to the root on shard 0, waited for; the one that completed the
 * root adds to every group's release word, all posted together (not under
 * ASP), waited for; it then knows clock t complete. Returns 1 when it
 * posted something (PH_CLIMB comes back here).
 */
static int sim_climb(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	uint64_t t = wk->it;
	double done = now, exec, c;

	if (wk->climb != 1)
		return 0;
	wk->climb = 2;
	c = sim_word_on(s, &s->node_q[0], 0, SIM_OP_FADD, now, t, &exec);
	sim_count(s, t, 1);
	if (sim_measured(s, t)) {
		s->hot_atomics++;
		s->clock_ops++;
	}
	done = c;
	if (++s->root_arrived[t] == s->groups) {
		double rel = done;

		wk->last = 1;
		/* Posted together: one round trip, the last completion. */
		for (unsigned g = 0; s->cfg->model != SIM_ASP && g < s->groups;
		     g++) {
			c = sim_word_on(s, &s->rel_q[g], g % s->S, SIM_OP_FADD,
					done, t, &exec);
			s->released[g]++;
			sim_count(s, t, 1);
			s->clock_ops += sim_measured(s, t);
			rel = c > rel ? c : rel;
		}
		done = rel;
	}
	sim_at(s, w, sim_wait(s, w, now, done, s->p->op_thread), PH_CLIMB);
	return 1;
}

/*
 * Shard 0's PS_RELEASE to waiter w, its loop having found w's round
 * complete at at: the send on the shard's CPU (release_us, after the
 * sends before it), the delivery, and the waiter's wake-up (its learned
 * spin, from when it began to wait). The safety reads of a long wait
 * (one per SIM_SAFETY_US) are counted.
 */
static void sim_release(struct sim *s, unsigned w, double at)
{
	struct sim_worker *wk = &s->w[w];
	double sent = sim_cpu(s, 0, at, s->p->release_us, wk->it);
	double land = sent + s->p->write_us;
	uint64_t safety = (uint64_t)((land - wk->wait0) / SIM_SAFETY_US);

	sim_count(s, wk->it, safety);
	if (sim_measured(s, wk->it)) {
		s->clock_ops += safety;
		s->hot_reads += safety;
	}
	sim_at(s, w, sim_wait(s, w, wk->wait0, land, 1), PH_RELEASED);
}

/*
 * PS_DONE of clock t from worker w (its fetch-add completed t), posted at
 * now: shard 0's loop handles it (its wake-up, msg_us) and answers every
 * waiter registered on a clock up to t, one after another.
 */
static void sim_done_post(struct sim *s, unsigned w, double now, uint64_t t)
{
	double at = sim_msg(s, w, 0, now, 0, s->p->msg_us, t);

	sim_count(s, t, 1);
	s->clock_ops += sim_measured(s, t);
	for (; s->rel_next <= t; s->rel_next++) {
		uint64_t c = s->rel_next;

		unsigned first = s->wait_head[c];

		s->done_at[c] = at;
		if (first == SIM_NONE)
			continue;
		/* srv_handle_done: waiters[0] first, the last registered
		 * moved into its place, and so on: the first to register,
		 * then the others newest first. */
		while (s->w[first].wnext != SIM_NONE)
			first = s->w[first].wnext;
		sim_release(s, first, at);
		for (unsigned v = s->wait_head[c]; v != first;
		     v = s->w[v].wnext)
			sim_release(s, v, at);
		s->wait_head[c] = SIM_NONE;
	}
}

/* An END registers its worker's wait on shard 0 (server/clock.c
 * srv_end_waits): flat, BSP or A-BSP, W > 1, the profile's end_waits. */
static int sim_end_waits(const struct sim *s)
{
	return s->G < 2 && sim_in_order(s) && s->W > 1 && s->p->end_waits;
}

/*
 * Worker w's PS_WAIT for clock c, posted at now: shard 0's loop handles
 * it (msg_us) and answers at once if its words show c complete by then,
 * or if a PS_DONE of c was handled (the order the events are simulated
 * in is not quite the order the shard sees them); else the waiter is
 * registered and sleeps until a PS_DONE (sim_done_post).
 */
static void sim_wait_post(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	uint64_t c = wk->c;
	double at = wk->end0;

	/* Registered by its END: no message of its own. */
	if (!sim_end_waits(s)) {
		at = sim_msg(s, w, 0, now, 0, s->p->msg_us, wk->it);
		sim_count(s, wk->it, 1);
		s->clock_ops += sim_measured(s, wk->it);
	}
	wk->wait0 = now;
	wk->ph = PH_PARKED;
	if (s->complete_at[c] <= at || s->done_at[c] < SIM_INF) {
		sim_release(s, w,
			    at > s->done_at[c] || s->done_at[c] >= SIM_INF
				    ? at
				    : s->done_at[c]);
		return;
	}
	wk->wnext = s->wait_head[c];
	s->wait_head[c] = w;
}

/* The flat wait (clock.c wrk_word_wait): done, or its read phase's next
 * re-read after wrk_backoff(attempt), or past wait_reads of them, the
 * PS_WAIT. */
static void sim_flat_next(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	double d;

	if (wk->read_posted && wk->val >= s->W) {
		sim_iter_end(s, w, now);
		return;
	}
	if (wk->attempt >= s->p->wait_reads) {
		sim_wait_post(s, w, now);
		return;
	}
	d = sim_backoff(s->p, wk->attempt++);
	wk->off_core |= d > 0;
	sim_at(s, w, now + d, PH_READ);
}

static void sim_clock_done(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	uint64_t t = wk->it;
	int check = s->cfg->model != SIM_ASP && t >= s->cfg->slack;

	if (sim_climb(s, w, now))
		return;
	/* Flat: whoever completed clock t tells shard 0 (nobody waits
	 * alone or under ASP). */
	if (s->G < 2 && wk->last && s->W > 1 && s->cfg->model != SIM_ASP) {
		/* Its own END, handled after its fetch-add completed the
		 * clock, was answered at once: a release nobody waits for. */
		if (sim_end_waits(s) && wk->end0 >= s->complete_at[t])
			sim_cpu(s, 0, wk->end0, s->p->release_us, t);
		sim_done_post(s, w, now, t);
	}
	/* Whoever completed clock t knows every clock up to it is. */
	if (!check || wk->last) {
		sim_iter_end(s, w, now);
		return;
	}
	wk->attempt = 0;
	wk->wait0 = now;
	if (s->G > 1) {
		sim_slack_next(s, w, now);
		return;
	}
	/* Flat: the fetch-add's count (BSP) or the slack read posted with
	 * it says whether c is complete; if not, the read phase, then one
	 * PS_WAIT. */
	if (wk->c != t && wk->read_posted && wk->val >= s->W) {
		sim_iter_end(s, w, now);
		return;
	}
	sim_flat_next(s, w, now);
}

static void sim_read_post(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];
	double c;

	c = sim_wait_read(s, w, now, wk->it);
	wk->val = sim_wait_val(s, w, wk->c);
	if (sim_measured(s, wk->it)) {
		s->hot_reads += s->G < 2;
		s->clock_ops++;
	}
	sim_count(s, wk->it, 1);
	sim_at(s, w, sim_wait(s, w, now, c, s->p->op_thread), PH_READ_DONE);
}

/*
 * Worker w's step at now. On one host with its cores shared (cores > 0,
 * step_us > 0) a worker that slept or yielded needs a core back: its step
 * happens once a core has run step_us of it (the switch back to it), so W
 * workers on C cores take turns. Steps that follow one another on the CPU
 * (a wait answered during its spin) are free.
 */
static void sim_step(struct sim *s, unsigned w, double now)
{
	struct sim_worker *wk = &s->w[w];

	if (wk->ph != PH_FINISHED && wk->off_core && !wk->on_core &&
	    sim_on_cores(s)) {
		wk->on_core = 1;
		sim_at(s, w, pool_serve(s, now, s->p->step_us, 0), wk->ph);
		return;
	}
	if (wk->on_core)
		wk->on_core = wk->off_core = 0;
	s->now_it = wk->it;
	switch (wk->ph) {
	case PH_PULL:
		sim_pull(s, w, now);
		break;
	case PH_PULL_DONE:
		sim_pull_done(s, w, now);
		break;
	case PH_BATCH:
		sim_batch(s, w, now);
		break;
	case PH_PUSH:
		sim_push(s, w, now);
		break;
	case PH_CLOCK:
		sim_clock(s, w, now);
		break;
	case PH_CLOCK_DONE:
	case PH_CLIMB:
		sim_clock_done(s, w, now);
		break;
	case PH_READ:
		sim_read_post(s, w, now);
		break;
	case PH_READ_DONE:
		s->w[w].read_posted = 1;
		if (s->G < 2)
			sim_flat_next(s, w, now);
		else
			sim_slack_next(s, w, now);
		break;
	case PH_RELEASED:
		sim_iter_end(s, w, now);
		break;
	case PH_PARKED:
	case PH_FINISHED:
		break;
	}
}

/* --- the run ----------------------------------------------------------- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void sim_free(struct sim *s)
{
	if (s->w)
		for (unsigned i = 0; i < s->W; i++)
			free(s->w[i].want);
	free(s->w);
	free(s->heap);
	free(s->tx);
	free(s->rx);
	free(s->cpu);
	free(s->prog);
	free(s->cpu_spin);
	free(s->pool);
	free(s->pub);
	free(s->ends);
	free(s->arrived);
	free(s->complete_at);
	free(s->done_at);
	free(s->wait_head);
	free(s->node_q);
	free(s->rel_q);
	free(s->grp_arrived);
	free(s->root_arrived);
	free(s->released);
	free(s->cut);
	free(s->shard_bytes);
	free(s->samples);
}

static int sim_alloc(struct sim *s)
{
	size_t hosts = (size_t)s->W + s->S, ps = (size_t)s->S * s->n_it;

	s->w = calloc(s->W, sizeof(*s->w));
	s->capheap = (size_t)s->W + 1;
	s->heap = calloc(s->capheap, sizeof(*s->heap));
	s->tx = calloc(hosts, sizeof(*s->tx));
	s->rx = calloc(hosts, sizeof(*s->rx));
	s->cpu = calloc(s->S, sizeof(*s->cpu));
	s->prog = calloc(s->S, sizeof(*s->prog));
	s->cpu_spin = calloc(s->S, sizeof(*s->cpu_spin));
	s->pool = calloc(s->p->cores + 1, sizeof(*s->pool));
	s->pub = malloc(ps * sizeof(*s->pub));
	s->ends = calloc(ps, sizeof(*s->ends));
	s->arrived = calloc(s->n_it, sizeof(*s->arrived));
	s->complete_at = malloc(s->n_it * sizeof(*s->complete_at));
	s->done_at = malloc(s->n_it * sizeof(*s->done_at));
	s->wait_head = malloc(s->n_it * sizeof(*s->wait_head));
	if (s->G > 1) {
		s->node_q = calloc(s->groups + 1, sizeof(*s->node_q));
		s->rel_q = calloc(s->groups, sizeof(*s->rel_q));
		s->grp_arrived = calloc((size_t)s->groups * s->n_it,
					sizeof(*s->grp_arrived));
		s->root_arrived = calloc(s->n_it, sizeof(*s->root_arrived));
		s->released = calloc(s->groups, sizeof(*s->released));
		if (!s->node_q || !s->rel_q || !s->grp_arrived ||
		    !s->root_arrived || !s->released)
			return -ENOMEM;
	}
	s->cut = malloc(s->n_it * sizeof(*s->cut));
	s->shard_bytes = calloc(s->S, sizeof(*s->shard_bytes));
	s->samples = malloc((size_t)s->W * s->cfg->iters * sizeof(*s->samples));
	if (!s->w || !s->heap || !s->tx || !s->rx || !s->cpu || !s->prog ||
	    !s->cpu_spin || !s->pool || !s->pub || !s->ends || !s->arrived ||
	    !s->cut || !s->shard_bytes || !s->samples || !s->complete_at ||
	    !s->done_at || !s->wait_head)
		return -ENOMEM;
	for (unsigned i = 0; i < s->W; i++) {
		s->w[i].want = calloc(2, s->S);
		if (!s->w[i].want)
			return -ENOMEM;
		s->w[i].stale_hdr = s->w[i].want + s->S;
		s->w[i].spin.us = s->p->spin_us;
	}
	/* Every shard and progress thread starts asleep (adaptive). */
	for (unsigned i = 0; i < s->S; i++) {
		s->cpu[i].free = s->prog[i].free = -SIM_INF;
		s->cpu_spin[i].us = s->p->spin_us;
	}
	for (size_t i = 0; i < ps; i++)
		s->pub[i] = SIM_INF;
	for (uint64_t i = 0; i < s->n_it; i++) {
		s->cut[i] = s->complete_at[i] = s->done_at[i] = SIM_INF;
		s->wait_head[i] = SIM_NONE;
	}
	return 0;
}

/* The host as the job finds it (sim_profile's cpus, load): oversubscribed
 * or not, and what a wake-up costs then. */
static void sim_host(struct sim *s)
{
	const struct sim_profile *p = s->p;
	double tasks = (double)(s->W + s->S) * (p->op_thread ? 2 : 1);

	s->oversub =
		p->oversubscribed || (p->cpus && tasks + p->load > p->cpus);
	s->wake = p->wake_us + p->wake_per_proc_us * (s->W + s->S);
	if (p->wake_max_us > 0 && s->wake > p->wake_max_us)
		s->wake = p->wake_max_us;
	if (p->cpus && !s->oversub)
		s->wake = p->wake_free_us;
}

int sim_run(const struct sim_cfg *cfg, struct sim_result *res)
{
	struct sim s;
	uint64_t n = cfg->clock_only ? 0 : cfg->model_bytes / 4;
	int ret;

	memset(&s, 0, sizeof(s));
	memset(res, 0, sizeof(*res));
	s.cfg = cfg;
	s.p = cfg->prof;
	s.W = cfg->workers;
	s.S = cfg->shards;
	s.n_it = cfg->warmup + cfg->iters;
	s.rng = cfg->seed;
	sim_host(&s);
	s.win_start = SIM_INF;
	s.G = sim_fanin(cfg->fanin, s.W);
	s.groups = s.G > 1 ? (s.W + s.G - 1) / s.G : 0;
	ret = sim_alloc(&s);
	if (ret) {
		sim_free(&s);
		return ret;
	}
	/* ps_shard_bound without the page alignment: an even split. */
	for (unsigned sh = 0; sh < s.S; sh++)
		s.shard_bytes[sh] = 4 * (n * (sh + 1) / s.S - n * sh / s.S);
	for (unsigned w = 0; w < s.W; w++)
		sim_iter_start(&s, w, 0);
	while (s.nheap) {
		struct sim_ev ev = sim_pop(&s);

		sim_step(&s, ev.w, ev.t);
	}
	qsort(s.samples, s.nsamples, sizeof(*s.samples), cmp_dbl);
	if (s.nsamples) {
		double sum = 0;

		for (uint64_t i = 0; i < s.nsamples; i++)
			sum += s.samples[i];
		res->iter_us_mean = sum / (double)s.nsamples;
		res->iter_us_min = s.samples[0];
		res->iter_us_max = s.samples[s.nsamples - 1];
		res->iter_us_median = s.nsamples % 2
					      ? s.samples[s.nsamples / 2]
					      : (s.samples[s.nsamples / 2 - 1] +
						 s.samples[s.nsamples / 2]) /
							2;
		res->iter_us_p99 =
			s.samples[(uint64_t)(0.99 * (double)(s.nsamples - 1))];
	}
	double per = (double)s.W * (double)cfg->iters;

	res->sim_us = s.win_end - s.win_start;
	res->ops_per_worker_iter = (double)s.ops / per;
	res->clock_ops_per_worker_iter = (double)s.clock_ops / per;
	res->bytes_per_worker_iter = 2.0 * (double)n * 4;
	res->shard_cpu_us_per_iter = s.cpu_busy / s.S / (double)cfg->iters;
	if (res->sim_us > 0) {
		res->hot_atomics_per_s =
			(double)s.hot_atomics / res->sim_us * 1e6;
		res->hot_reads_per_s = (double)s.hot_reads / res->sim_us * 1e6;
		res->hot_util = s.hot.busy / res->sim_us;
		/* Tree: the busiest clock line, root or group. */
		for (unsigned i = 0; s.G > 1 && i <= s.groups; i++) {
			double u = s.node_q[i].busy / res->sim_us;

			if (i == 0 || u > res->hot_util)
				res->hot_util = u;
			if (i < s.groups &&
			    s.rel_q[i].busy / res->sim_us > res->hot_util)
				res->hot_util = s.rel_q[i].busy / res->sim_us;
		}
	}
	sim_free(&s);
	return 0;
}

int sim_run_pair(const struct sim_cfg *cfg, struct sim_result *res,
		 struct sim_result *clock)
{
	struct sim_cfg cc = *cfg;
	int ret = sim_run(cfg, res);

	if (ret)
		return ret;
	cc.clock_only = 1;
	return sim_run(&cc, clock);
}
