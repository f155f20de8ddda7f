/* SPDX-License-Identifier: MIT */
/*
 * clock.c - closing clocks: a worker's END counts, and once every worker
 * ended a clock, BSP applies the pending deltas in worker order and the
 * shard publishes applied_clock. And the waiters of the flat counter:
 * registered by PS_WAIT, released when the clock words say their round
 * is complete (ps_proto.h, "Waking waiters").
 */
#include <inttypes.h>

#include "server/server_impl.h"

void srv_publish_applied(struct rdps_server *s, uint64_t c)
{
	s->applied = c;
	s->st.applied_clock = c;
	/* Release: a worker that reads this value (and then the params on
	 * the same endpoint) sees every update of the clocks below c. */
	__atomic_store_n(&s->dir->hdr.applied_clock_be, rdps_htobe64(c),
			 __ATOMIC_RELEASE);
}

/* BSP: every END(c) is in: apply the pending deltas in worker order. */
static void srv_bsp_apply_pending(struct rdps_server *s)
{
	for (unsigned i = 0; i < PS_MAX_TABLES; i++) {
		struct srv_table *t = &s->tables[i];

		if (t->used && t->pend)
			srv_pend_apply(&t->sl, t->pend, s->cfg.workers);
	}
	srv_emb_apply_pending(s);
}

/* BSP cannot complete a clock without every worker: say so once, when a
 * live worker has gone past a dead one. */
void srv_bsp_check_stuck(struct rdps_server *s)
{
	if (!srv_bsp(s) || !s->dead || s->bsp_stuck_logged)
		return;
	for (unsigned r = 0; r < s->cfg.workers; r++) {
		struct srv_worker *d = &s->w[r];

		if (d->state != SRV_W_DEAD)
			continue;
		for (unsigned q = 0; q < s->cfg.workers; q++) {
			if (s->w[q].state == SRV_W_LIVE &&
			    s->w[q].ends > d->ends) {
				rdps_err("bsp: clock %" PRIu64
					 " can never complete on shard %u: "
					 "worker %u is gone (restart the job)",
					 d->ends, s->cfg.shard, r);
				s->bsp_stuck_logged = true;
				return;
			}
		}
	}
}

/* Count the workers whose END count passed the applied clock. */
static void srv_ends_recount(struct rdps_server *s)
{
	s->ended = 0;
	s->ends_at = s->applied;
	for (unsigned r = 0; r < s->cfg.workers; r++)
		s->ended += s->w[r].ends > s->applied;
}

static void srv_wait_register(struct srv_worker *w, uint32_t arg);

/*
 * Does an END register its worker's wait for its clock (ps_proto.h
 * "Waking waiters")? On shard 0 of a flat counter with someone to wait
 * for, where the workers have no read phase (the transport's READs cost
 * a CPU: not RDPS_TP_CAP_READ_OFFLOAD), so their PS_WAIT is saved.
 */
static bool srv_end_waits(const struct rdps_server *s)
{
	return s->cfg.shard == 0 && s->cfg.workers > 1 &&
	       __atomic_load_n(&s->clk->fanin, __ATOMIC_RELAXED) <= 1 &&
	       !(s->tp->ops->caps & RDPS_TP_CAP_READ_OFFLOAD);
}

/*
 * An END counts its worker once it passes the applied clock; only when
 * every worker has is the lowest END count looked for. So an END costs
 * O(1) and a clock O(workers) once, not O(workers) per END (O(workers^2)
 * a clock). The count is taken again whenever applied moved (a clock
 * closed, a resume set it).
 */
void srv_handle_end(struct srv_worker *w, uint32_t arg)
{
	struct rdps_server *s = w->s;
	uint64_t lo = UINT64_MAX;

	if ((w->ends & PS_ARG_MASK) != arg)
		rdps_warn("worker %u: end of clock %u, expected clock %" PRIu64
			  " (counted as that)",
			  w->rank, arg, w->ends);
	w->ends++;
	s->st.ends++;
	/* An END of a clock to be waited for is its worker's wait too. */
	if (srv_end_waits(s))
		srv_wait_register(w, arg & PS_WAIT_MASK);
	if (s->ends_at != s->applied)
		srv_ends_recount(s);
	else if (w->ends == s->applied + 1)
		s->ended++;
	if (s->ended < s->cfg.workers) {
		srv_bsp_check_stuck(s);
		return;
	}
	for (unsigned r = 0; r < s->cfg.workers; r++)
		if (s->w[r].ends < lo)
			lo = s->w[r].ends;
	if (lo > s->applied) {
		/* In BSP lo moves by one: every END(applied) is in. */
		if (srv_bsp(s)) {
			srv_bsp_apply_pending(s);
			/* Unsaved, c is not published: the job resumes
			 * at a clock every shard saved. */
			if (srv_checkpoint(s, lo))
				return;
		}
		srv_publish_applied(s, lo);
		s->replay = true;
	}
	srv_bsp_check_stuck(s);
}

/* Waiters ---------------------------------------------------------------- */

/* The lowest clock and barrier not complete by this shard's flat
 * counters, read once for every wait they judge. */
struct srv_fronts {
	uint64_t clock;
	uint64_t barrier;
};

static struct srv_fronts srv_fronts_read(const struct rdps_server *s)
{
	unsigned w = s->cfg.workers;
	struct srv_fronts f;

	f.clock =
		ps_clock_frontier(s->clk->arrive, ps_clock_k(s->cfg.slack), w);
	/* Barriers count from 1: barrier n is complete at W * n. */
	f.barrier = __atomic_load_n(&s->clk->barrier, __ATOMIC_ACQUIRE) / w + 1;
	return f;
}

/*
 * Is the round of PS_WAIT argument arg complete by the fronts f? The
 * truth is the words, never a message: a round far ahead (or a lie)
 * unwraps to a value past the frontier and is not complete.
 */
static bool srv_round_done(const struct srv_fronts *f, uint32_t arg)
{
	uint64_t front = arg & PS_WAIT_BARRIER ? f->barrier : f->clock;

	return ps_wait_unwrap(front, arg) < front;
}

void srv_wait_drop(struct srv_worker *w)
{
	struct rdps_server *s = w->s;
	unsigned last;

	if (!w->waiting)
		return;
	w->waiting = false;
	last = s->waiters[--s->n_waiters];
	s->waiters[w->wait_pos] = last;
	s->w[last].wait_pos = w->wait_pos;
}

static void srv_release(struct srv_worker *w, uint32_t arg)
{
	w->s->st.releases++;
	srv_worker_reply(w, PS_IMM(PS_RELEASE, arg));
}

/* w's wait for the round of arg, in place of any it had: answered at
 * once when complete. */
static void srv_wait_register(struct srv_worker *w, uint32_t arg)
{
	struct rdps_server *s = w->s;
	struct srv_fronts f;

	srv_wait_drop(w);
	/* Not only a trigger for later: a PS_DONE handled before this one
	 * (from another endpoint) found nobody to release. */
	f = srv_fronts_read(s);
	if (srv_round_done(&f, arg)) {
		srv_release(w, arg);
		return;
	}
	w->waiting = true;
	w->wait_arg = arg;
	w->wait_pos = s->n_waiters;
	s->waiters[s->n_waiters++] = w->rank;
}

void srv_handle_wait(struct srv_worker *w, uint32_t arg)
{
	w->s->st.waits++;
	srv_wait_register(w, arg);
}

void srv_handle_done(struct rdps_server *s, uint32_t arg)
{
	/* Read once: a round completed after it has its own PS_DONE to
	 * come (its fetch-add answered before that was sent). */
	struct srv_fronts f = srv_fronts_read(s);
	unsigned i = 0;

	(void)arg;
	s->st.dones++;
	while (i < s->n_waiters) {
		struct srv_worker *w = &s->w[s->waiters[i]];

		if (!srv_round_done(&f, w->wait_arg)) {
			i++;
			continue;
		}
		/* Moves the last waiter to i: look at i again. */
		srv_wait_drop(w);
		srv_release(w, w->wait_arg);
	}
}

void srv_wake_all(struct rdps_server *s)
{
	while (s->n_waiters) {
		struct srv_worker *w = &s->w[s->waiters[0]];

		srv_wait_drop(w);
		srv_release(w, w->wait_arg | PS_RELEASE_WAKE);
	}
}
