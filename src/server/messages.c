/* SPDX-License-Identifier: MIT */
/*
 * messages.c - a worker's message on the shard: the checks of its sub-slot,
 * its dispatch by kind, the credit or nack it earns, BSP's hold-back of
 * messages of a later clock, and the queue of replies. PS_WAIT and
 * PS_DONE go straight to clock.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/server_impl.h"

/*
 * The checks of the message that w's write of len bytes left in sub-slot k
 * (kind from the immediate): 0 with its header in *m and *slot_out at the
 * sub-slot, or -errno for the nack.
 */
static int srv_msg_check(struct srv_worker *w, uint32_t kind, uint32_t k,
			 uint32_t len, struct ps_msg *m,
			 const unsigned char **slot_out)
{
	struct rdps_server *s = w->s;
	const unsigned char *slot;
	uint64_t bytes;

	if (k >= PS_NSLOTS) {
		rdps_warn("worker %u: message in sub-slot %u, there are %d: "
			  "refused",
			  w->rank, k, PS_NSLOTS);
		return -EINVAL;
	}
	slot = (const unsigned char *)w->slots + (size_t)k * s->slot_bytes;
	memcpy(m, slot, sizeof(*m));
	bytes = rdps_be64toh(m->bytes_be);
	if (rdps_be32toh(m->kind_be) != kind) {
		rdps_warn("worker %u: sub-slot %u holds a message of kind %u "
			  "but the immediate says %u: refused",
			  w->rank, k, rdps_be32toh(m->kind_be), kind);
		return -EINVAL;
	}
	if (bytes > s->slot_bytes - sizeof(*m)) {
		rdps_warn("worker %u: message in sub-slot %u claims %" PRIu64
			  " payload bytes, a sub-slot holds %zu: refused",
			  w->rank, k, bytes, s->slot_bytes - sizeof(*m));
		return -EMSGSIZE;
	}
	/* Header and payload in one write, or (PS_F_SPLIT) the payload in
	 * an earlier write on this connection, placed before this one. */
	if (len < sizeof(*m) + bytes &&
	    !((rdps_be32toh(m->flags_be) & PS_F_SPLIT) && len >= sizeof(*m))) {
		rdps_warn("worker %u: message in sub-slot %u claims %" PRIu64
			  " payload bytes but only %u bytes came with it "
			  "(header and payload go in one write): refused",
			  w->rank, k, bytes, len);
		return -EINVAL;
	}
	*slot_out = slot;
	return 0;
}

/* A PS_CREATE or PS_PUSH in sub-slot k: handle it and reply with the
 * sub-slot's credit or a nack. Returns true when the message must be held
 * back (BSP, next clock): then there is no reply yet. */
static bool srv_handle_msg(struct srv_worker *w, uint32_t kind, uint32_t k,
			   uint32_t len)
{
	struct rdps_server *s = w->s;
	const unsigned char *slot;
	struct ps_msg m;
	uint32_t emb;
	int ret;

	ret = srv_msg_check(w, kind, k, len, &m, &slot);
	if (ret)
		goto reply;
	emb = rdps_be32toh(m.flags_be) & PS_F_EMB;
	if (kind == PS_CREATE) {
		s->st.creates++;
		ret = emb ? srv_emb_handle_create(w, &m, slot + sizeof(m))
			  : srv_handle_create(w, &m, slot + sizeof(m));
	} else {
		ret = emb ? srv_emb_handle_push(w, &m, slot + sizeof(m))
			  : srv_handle_push(w, &m, slot + sizeof(m));
		if (ret == SRV_DEFERRED)
			return true;
		s->st.pushes++;
	}
reply:
	if (ret) {
		s->st.nacks++;
		srv_worker_reply(w, PS_IMM(PS_NACK, (uint32_t)-ret));
	} else {
		srv_worker_reply(w, PS_IMM(PS_CREDIT, k));
	}
	return false;
}

static bool srv_dispatch_kind(struct srv_worker *w, uint32_t imm, uint32_t len)
{
	switch (PS_IMM_KIND(imm)) {
	case PS_END:
		srv_handle_end(w, PS_IMM_ARG(imm));
		return false;
	case PS_BYE:
		srv_worker_left(w);
		return false;
	case PS_PUSH:
	case PS_CREATE:
		return srv_handle_msg(w, PS_IMM_KIND(imm), PS_IMM_ARG(imm),
				      len);
	default:
		rdps_warn("worker %u: unknown message kind %u (immediate "
			  "0x%08x): ignored",
			  w->rank, PS_IMM_KIND(imm), imm);
		return false;
	}
}

/*
 * Handle one message of w and count it handled; true if it has to wait
 * for the next clock. A message answered by a reply (a credit, a
 * lookup's rows) is counted before its handling, so that its reply says
 * it is counted; the others after it, so that the count says what they
 * did (an END's registered wait).
 */
static bool srv_dispatch(struct srv_worker *w, uint32_t imm, uint32_t len)
{
	bool held;

	if (PS_IMM_KIND(imm) == PS_PUSH || PS_IMM_KIND(imm) == PS_CREATE) {
		srv_count_handled(w->s);
		return srv_dispatch_kind(w, imm, len);
	}
	held = srv_dispatch_kind(w, imm, len);
	srv_count_handled(w->s);
	return held;
}

static void srv_hold(struct srv_worker *w, uint32_t imm, uint32_t len)
{
	if (w->hold_tail - w->hold_head >= SRV_HOLD) {
		srv_worker_dead(w, "too many messages held back for the next "
				   "clock");
		return;
	}
	w->hold[w->hold_tail++ % SRV_HOLD] = (uint64_t)imm << 32 | len;
}

/* Applied moved on: handle held-back messages, in each worker's order. */
static void srv_replay_held(struct rdps_server *s)
{
	while (s->replay) {
		s->replay = false;
		for (unsigned r = 0; r < s->cfg.workers; r++) {
			struct srv_worker *w = &s->w[r];

			while (w->state == SRV_W_LIVE &&
			       w->hold_head != w->hold_tail) {
				uint64_t e = w->hold[w->hold_head % SRV_HOLD];

				if (srv_dispatch(w, (uint32_t)(e >> 32),
						 (uint32_t)e))
					break;
				w->hold_head++;
			}
		}
	}
}

void srv_recv(struct srv_worker *w, uint32_t imm, uint32_t len)
{
	/* About the clock words alone, never held back: a waiter's answer
	 * must not wait for its pushes of the next clock. */
	if (PS_IMM_KIND(imm) == PS_WAIT || PS_IMM_KIND(imm) == PS_DONE) {
		if (PS_IMM_KIND(imm) == PS_WAIT) {
			srv_handle_wait(w, PS_IMM_ARG(imm));
		} else {
			/* Whoever completed a round waits for nothing
			 * (its END may have registered it). */
			srv_wait_drop(w);
			srv_handle_done(w->s, PS_IMM_ARG(imm));
		}
		srv_count_handled(w->s);
		return;
	}
	/*
	 * BSP: a push of clock applied + 1 from a worker that has sent all
	 * its ENDs up to there is legitimate: the other workers' END(applied)
	 * are already in our transport (the worker saw the clock complete),
	 * but the completion queue is not FIFO across endpoints (shm polls
	 * its rings in turn). Hold it, and everything after it from that
	 * worker, until applied moves.
	 */
	if (w->hold_head != w->hold_tail || srv_dispatch(w, imm, len))
		srv_hold(w, imm, len);
	if (w->s->replay)
		srv_replay_held(w->s);
}

/* Replies ---------------------------------------------------------------- */

/* Post reply e to w: the welcome (a write of its welcome into its reply
 * region) or a bare immediate. 0 or the transport's -errno. */
static int srv_reply_post(struct srv_worker *w, uint64_t e)
{
	struct rdps_server *s = w->s;
	uint64_t wr = SRV_WR(SRV_WR_REPLY, w->rank);

	if (e & SRV_RING_WELCOME)
		return rdps_tp_put_imm(
			w->ep, &s->wel[w->rank], sizeof(struct ps_welcome),
			s->wel_mr,
			w->reply.addr +
				s->cfg.shard * sizeof(struct ps_welcome),
			&w->reply, (uint32_t)e, wr, 0);
	return rdps_tp_put_imm(w->ep, NULL, 0, NULL, 0, NULL, (uint32_t)e, wr,
			       0);
}

void srv_worker_flush(struct srv_worker *w)
{
	struct rdps_server *s = w->s;

	while (w->state == SRV_W_LIVE && w->ring_head != w->ring_tail) {
		uint64_t e = w->ring[w->ring_head % SRV_RING];
		int ret = srv_reply_post(w, e);

		/* A release is not asked for by a message in flight: a worker
		 * leaving (its PS_BYE still queued here) may have closed
		 * already. Dropped; a death shows by its disconnect or pulse.
		 */
		if ((ret == -ENOTCONN || ret == -ECONNRESET || ret == -EPIPE) &&
		    !(e & SRV_RING_WELCOME) &&
		    PS_IMM_KIND((uint32_t)e) == PS_RELEASE)
			ret = 0;
		if (ret == -EAGAIN) {
			if (!w->stall_logged)
				rdps_dbg("worker %u: replies wait for room",
					 w->rank);
			w->stall_logged = true;
			return;
		}
		if (ret) {
			char why[96];

			snprintf(why, sizeof(why), "reply not posted: %s",
				 strerror(-ret));
			srv_worker_dead(w, why);
			return;
		}
		w->ring_head++;
		if (w->ring_head == w->ring_tail)
			s->backlog--;
	}
}

void srv_worker_reply(struct srv_worker *w, uint64_t e)
{
	if (w->ring_tail - w->ring_head >= SRV_RING) {
		srv_worker_dead(w, "more messages outstanding than sub-slots");
		return;
	}
	if (w->ring_head == w->ring_tail)
		w->s->backlog++;
	w->ring[w->ring_tail++ % SRV_RING] = e;
	srv_worker_flush(w);
}
