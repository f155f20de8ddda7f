/* SPDX-License-Identifier: MIT */
/*
 * clock.c - closing clocks: a worker's END counts, and once every worker
 * ended a clock, BSP applies the pending deltas in worker order and the
 * shard publishes applied_clock.
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
