/* SPDX-License-Identifier: MIT */
/*
 * accept.c - accepting peers: a worker's hello checked, its slots
 * registered and its welcome queued; a refused peer gets a welcome with an
 * errno and is closed once that is written, or after one handshake
 * deadline (RDPS_TP_HELLO_MS) if the write does not complete.
 */
#include <errno.h>
#include <string.h>

#include "server/server_impl.h"

static void srv_refuse(struct rdps_server *s, struct rdps_tp_ep *ep,
		       const struct rdps_tp_rkey *reply, int status)
{
	unsigned i;
	struct ps_welcome *wm;
	int ret;

	for (i = 0;
	     i < SRV_REJECT_MAX && (s->rejects[i].ep || s->rejects[i].closing);
	     i++)
		;
	if (i == SRV_REJECT_MAX || !reply) {
		rdps_tp_ep_close(ep);
		return;
	}
	wm = &s->wel[s->cfg.workers + i];
	memset(wm, 0, sizeof(*wm));
	wm->status_be = rdps_htobe32((uint32_t)status);
	wm->nslots_be = rdps_htobe32(PS_NSLOTS);
	ret = rdps_tp_put_imm(ep, wm, sizeof(*wm), s->wel_mr,
			      reply->addr +
				      s->cfg.shard * sizeof(struct ps_welcome),
			      reply, PS_IMM(PS_WELCOME, (uint32_t)status),
			      SRV_WR(SRV_WR_REJECT, i), 0);
	if (ret) {
		rdps_tp_ep_close(ep);
		return;
	}
	ep->user = NULL;
	s->rejects[i].ep = ep;
	s->rejects[i].deadline = rdps_deadline(RDPS_TP_HELLO_MS);
}

void srv_reject_sent(struct rdps_server *s, unsigned idx)
{
	if (s->rejects[idx].ep)
		srv_ep_close_later(s, s->rejects[idx].ep);
	s->rejects[idx].ep = NULL;
	s->rejects[idx].closing = false;
}

/* A refused peer whose refusal is not written by its deadline does not
 * take it (over tcp a write completes when the peer answers): close it,
 * or it would keep an endpoint and the memory behind it as long as it
 * likes. The slot stays taken until the write's flush completion. */
static void srv_reject_expire(struct rdps_server *s)
{
	uint64_t now = rdps_now_ns();

	for (unsigned i = 0; i < SRV_REJECT_MAX; i++) {
		struct srv_reject *r = &s->rejects[i];

		if (!r->ep || now < r->deadline)
			continue;
		rdps_warn("shard %u: closed a refused peer that did not take "
			  "its refusal within %d ms",
			  s->cfg.shard, RDPS_TP_HELLO_MS);
		srv_ep_close_later(s, r->ep);
		r->ep = NULL;
		r->closing = true;
	}
}

/* A peer's hello: 0 with it in *h and its reply region in *reply, or
 * -EPROTO when the peer is no rdps worker (ep is then closed). */
static int srv_hello_read(struct rdps_server *s, struct rdps_tp_ep *ep,
			  struct ps_whello_info *h, struct rdps_tp_rkey *reply)
{
	char why[160];

	if (ps_whello_parse(ep->peer_priv, ep->peer_priv_len, h, why,
			    sizeof(why))) {
		rdps_warn("shard %u: refused a peer that %s", s->cfg.shard,
			  why);
		rdps_tp_ep_close(ep);
		return -EPROTO;
	}
	if (rdps_tp_rkey_unpack(ep, &h->reply, reply)) {
		rdps_warn("shard %u: refused a worker with a malformed reply "
			  "key",
			  s->cfg.shard);
		rdps_tp_ep_close(ep);
		return -EPROTO;
	}
	return 0;
}

/* Whether the job has room for the worker of hello h: 0, or the errno
 * its refusing welcome carries. */
static int srv_hello_status(struct rdps_server *s,
			    const struct ps_whello_info *h)
{
	char why[160];

	if (ps_whello_fits(h, s->cfg.workers, why, sizeof(why))) {
		rdps_warn("shard %u: refused %s", s->cfg.shard, why);
		return EINVAL;
	}
	if (s->w[h->rank].state != SRV_W_NONE) {
		rdps_warn("shard %u: refused a second worker with rank %u "
			  "(%s)",
			  s->cfg.shard, h->rank,
			  s->w[h->rank].state == SRV_W_LIVE
				  ? "already connected"
				  : "it was lost before");
		return EEXIST;
	}
	return 0;
}

/* Allocate and register w's sub-slots for the writes of ep. 0 or -errno
 * (logged) with nothing held. */
static int srv_slots_new(struct rdps_server *s, struct srv_worker *w,
			 struct rdps_tp_ep *ep)
{
	int ret;

	w->slots_len = (size_t)PS_NSLOTS * s->slot_bytes;
	/* Least privilege: the slots take this worker's writes alone (its
	 * endpoint's), another worker's writes with their key fail. */
	ret = rdps_tp_mem_alloc(s->tp, w->slots_len, &w->slots);
	if (!ret) {
		ret = rdps_tp_mem_reg_ep(ep, w->slots, w->slots_len,
					 RDPS_TP_ACCESS_REMOTE_WRITE,
					 &w->slots_mr);
		if (ret == -EOPNOTSUPP) {
			rdps_warn("shard %u: %s; worker %u's slots take "
				  "writes from any worker",
				  s->cfg.shard, rdps_errmsg(), w->rank);
			ret = rdps_tp_mem_reg(s->tp, w->slots, w->slots_len,
					      RDPS_TP_ACCESS_REMOTE_WRITE,
					      &w->slots_mr);
		}
		if (ret)
			srv_region_free(s, &w->slots, w->slots_len,
					&w->slots_mr);
	}
	if (ret)
		rdps_err("shard %u: no slot memory for worker %u (%zu bytes): "
			 "%s",
			 s->cfg.shard, w->rank, w->slots_len, strerror(-ret));
	return ret;
}

/* w, with its slots, is live on ep: count it and queue its welcome. */
static void srv_welcome(struct rdps_server *s, struct srv_worker *w,
			struct rdps_tp_ep *ep, const struct rdps_tp_rkey *reply)
{
	struct ps_welcome *wm;

	w->ep = ep;
	w->reply = *reply;
	w->state = SRV_W_LIVE;
	/* Workers before protocol 3 have no pulse after their welcomes. */
	w->has_pulse = reply->len >= ps_reply_len(s->cfg.nshards);
	w->pulse_busy = false;
	w->pulse_since = 0;
	w->ring_head = w->ring_tail = 0;
	ep->user = w;
	s->live++;
	s->st.workers_live = s->live;

	wm = &s->wel[w->rank];
	memset(wm, 0, sizeof(*wm));
	wm->status_be = 0;
	wm->nslots_be = rdps_htobe32(PS_NSLOTS);
	wm->slot_bytes_be = rdps_htobe64(s->slot_bytes);
	rdps_tp_rkey_pack(w->slots_mr, &wm->slots);
	if (s->clk_mr)
		wm->clock = s->clk_wire;
	rdps_info("shard %u: worker %u connected (%u of %u)", s->cfg.shard,
		  w->rank, s->live, s->cfg.workers);
	srv_worker_reply(w, SRV_RING_WELCOME | PS_IMM(PS_WELCOME, 0));
}

static void srv_accept_one(struct rdps_server *s, struct rdps_tp_ep *ep)
{
	struct ps_whello_info h;
	struct rdps_tp_rkey reply;
	struct srv_worker *w;
	int status;

	ep->user = NULL;
	if (srv_hello_read(s, ep, &h, &reply))
		return;
	status = srv_hello_status(s, &h);
	if (status) {
		srv_refuse(s, ep, &reply, status);
		return;
	}
	w = &s->w[h.rank];
	if (srv_slots_new(s, w, ep)) {
		srv_refuse(s, ep, &reply, ENOMEM);
		return;
	}
	srv_welcome(s, w, ep, &reply);
}

int srv_accept_all(struct rdps_server *s, int timeout_ms)
{
	struct rdps_tp_ep *ep;
	int ret;

	s->last_accept_ns = rdps_now_ns();
	srv_reject_expire(s);
	for (;;) {
		ret = rdps_tp_accept(s->lst, &ep, timeout_ms);
		if (ret == -ETIMEDOUT || ret == -EAGAIN || ret == -EINTR)
			return 0;
		if (ret == -ECONNREFUSED || ret == -ECONNABORTED ||
		    ret == -EPROTO || ret == -EACCES || ret == -ENOBUFS) {
			timeout_ms = 0; /* one peer failed; others may wait */
			continue;
		}
		if (ret)
			return ret;
		srv_accept_one(s, ep);
		timeout_ms = 0;
	}
}
