/* SPDX-License-Identifier: MIT */
/*
 * members.c - worker lifecycle on the shard: endpoints closed after the
 * batch of completions, the publication of workers gone (gone map, dead
 * count), lost and leaving workers, and the pulse reads that find stopped
 * ones.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_impl.h"

/* Close ep after the current batch of completions (ep->user is cleared
 * now, so the rest of the batch ignores it). */
void srv_ep_close_later(struct rdps_server *s, struct rdps_tp_ep *ep)
{
	ep->user = NULL;
	if (s->n_doomed == s->cap_doomed) {
		unsigned cap = s->cap_doomed ? 2 * s->cap_doomed : 16;
		struct rdps_tp_ep **d = realloc(s->doomed, cap * sizeof(*d));

		if (!d) {
			/* Leak the endpoint rather than free it under a
			 * pending completion; it closes with the transport. */
			rdps_err("shard %u: out of memory closing an endpoint",
				 s->cfg.shard);
			return;
		}
		s->doomed = d;
		s->cap_doomed = cap;
	}
	s->doomed[s->n_doomed++] = ep;
}

/*
 * Close the doomed endpoints, then publish the workers that died with
 * them: only now can nothing of theirs reach our memory any more (an
 * operation still queued in the transport dies with the endpoint), which
 * is what lets the others make up for their clocks (ps_proto.h).
 */
void srv_ep_close_doomed(struct rdps_server *s)
{
	struct ps_dir_hdr *h = &s->dir->hdr;
	unsigned dead = rdps_be32toh(h->dead_count_be);
	unsigned gone = rdps_be32toh(h->gone_count_be);

	unsigned gone0 = gone;

	for (unsigned i = 0; i < s->n_doomed; i++)
		rdps_tp_ep_close(s->doomed[i]);
	s->n_doomed = 0;
	for (unsigned r = 0; r < s->cfg.workers && gone < s->dead + s->left;
	     r++) {
		struct srv_worker *w = &s->w[r];
		uint64_t *m = &s->dir->gone_map_be[r / 64];

		if ((w->state != SRV_W_DEAD && w->state != SRV_W_LEFT) ||
		    w->gone_published)
			continue;
		w->gone_published = true;
		__atomic_store_n(
			m, rdps_htobe64(rdps_be64toh(*m) | 1ull << r % 64),
			__ATOMIC_RELEASE);
		__atomic_store_n(&h->gone_count_be, rdps_htobe32(++gone),
				 __ATOMIC_RELEASE);
		if (w->state != SRV_W_DEAD)
			continue;
		if (!dead++)
			h->dead_first_be = rdps_htobe32(r);
		__atomic_store_n(&h->dead_count_be, rdps_htobe32(dead),
				 __ATOMIC_RELEASE);
	}
	/* Published: the waiters look again and run their loss checks now,
	 * not at their next safety read. */
	if (gone != gone0)
		srv_wake_all(s);
}

/* Close w's endpoint and free its slots; drop its pending BSP deltas
 * unless it left on purpose (they still count for the clock). */
void srv_worker_release(struct srv_worker *w, bool drop_pending)
{
	struct rdps_server *s = w->s;

	if (w->ep) {
		srv_ep_close_later(s, w->ep);
		w->ep = NULL;
	}
	srv_region_free(s, &w->slots, w->slots_len, &w->slots_mr);
	srv_wait_drop(w);
	if (drop_pending && srv_bsp(s)) {
		/* Its pending deltas of the clock being collected die with
		 * it: the clock cannot complete anyway. */
		for (unsigned i = 0; i < PS_MAX_TABLES; i++) {
			struct srv_table *t = &s->tables[i];

			if (t->used && t->pend) {
				free(t->pend[w->rank].buf);
				t->pend[w->rank].buf = NULL;
			}
		}
	}
	if (w->ring_head != w->ring_tail)
		s->backlog--;
	w->ring_head = w->ring_tail = 0;
	w->hold_head = w->hold_tail = 0;
}

void srv_worker_dead(struct srv_worker *w, const char *why)
{
	struct rdps_server *s = w->s;

	if (w->state != SRV_W_LIVE)
		return;
	if (srv_bsp(s))
		rdps_warn("worker %u lost on shard %u (%" PRIu64
			  " clocks ended here): %s; endpoint closed",
			  w->rank, s->cfg.shard, w->ends, why);
	else
		rdps_warn("worker %u lost on shard %u: %s; endpoint closed",
			  w->rank, s->cfg.shard, why);
	w->state = SRV_W_DEAD;
	s->live--;
	s->dead++;
	s->st.workers_live = s->live;
	s->st.workers_dead = s->dead;
	srv_worker_release(w, true);
	srv_bsp_check_stuck(s);
}

/* The worker said PS_BYE: it is done, not dead. */
void srv_worker_left(struct srv_worker *w)
{
	struct rdps_server *s = w->s;

	if (w->state != SRV_W_LIVE)
		return;
	rdps_info("worker %u left shard %u", w->rank, s->cfg.shard);
	w->state = SRV_W_LEFT;
	s->live--;
	s->left++;
	s->st.workers_live = s->live;
	srv_worker_release(w, false);
}

/*
 * Every heartbeat interval, read each live worker's pulse (ps_proto.h). A
 * worker whose pulse stood still, or whose read went unanswered (tcp: its
 * process is stopped), for two intervals is stopped or hung: counted dead
 * like one whose connection broke. A shard that was itself away longer
 * than half an interval past a round (a long checkpoint) has seen nothing
 * and starts over.
 */
void srv_pulse(struct rdps_server *s)
{
	uint64_t now = rdps_now_ns(), period = s->cfg.heartbeat_ms * 1000000ull;
	/* Rounds run within a loop slice (100 ms) of their time. */
	bool away = s->pulse_last_ns && now - s->pulse_last_ns > period * 3 / 2;

	if (!period || now < s->pulse_next_ns)
		return;
	s->pulse_next_ns = now + period;
	s->pulse_last_ns = now;
	for (unsigned r = 0; r < s->cfg.workers; r++) {
		struct srv_worker *w = &s->w[r];
		char why[128];
		int ret;

		if (w->state != SRV_W_LIVE || !w->has_pulse)
			continue;
		if (away) {
			w->pulse_since = now;
			w->pulse_posted = now;
		}
		if (w->pulse_busy) {
			if (now - w->pulse_posted <= 2 * period)
				continue;
			snprintf(why, sizeof(why),
				 "its pulse read got no answer for %llu ms: "
				 "the process is stopped or hung",
				 (unsigned long long)((now - w->pulse_posted) /
						      1000000));
			srv_worker_dead(w, why);
			continue;
		}
		ret = rdps_tp_get(w->ep, &srv_pulses(s)[r], 8, s->wel_mr,
				  w->reply.addr + ps_pulse_off(s->cfg.nshards),
				  &w->reply, SRV_WR(SRV_WR_PULSE, r), 0);
		if (ret == -EAGAIN)
			continue; /* queues full: next round */
		if (ret) {
			snprintf(why, sizeof(why), "pulse read not posted: %s",
				 strerror(-ret));
			srv_worker_dead(w, why);
			continue;
		}
		w->pulse_busy = true;
		w->pulse_posted = now;
	}
}

/* A pulse read of w came back with v. */
void srv_pulse_seen(struct srv_worker *w, uint64_t v)
{
	uint64_t now = rdps_now_ns();
	unsigned ms = w->s->cfg.heartbeat_ms;
	char why[128];

	w->pulse_busy = false;
	if (v != w->pulse_seen || !w->pulse_since) {
		w->pulse_seen = v;
		w->pulse_since = now;
		return;
	}
	if (now - w->pulse_since <= 2 * ms * 1000000ull)
		return;
	snprintf(why, sizeof(why),
		 "its pulse stood still for %llu ms (two heartbeats are %u "
		 "ms): the process is stopped or hung",
		 (unsigned long long)((now - w->pulse_since) / 1000000),
		 2 * ms);
	srv_worker_dead(w, why);
}
