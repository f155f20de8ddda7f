/* SPDX-License-Identifier: MIT */
/*
 * verbs_cq.c - the completion queue of a verbs instance, shared by all its
 * queue pairs, and the software queue in front of it.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "verbs.h"

#define VERBS_POLL_BATCH 16
#define VERBS_CM_CHECK_NS 1000000ull
#define VERBS_CM_CHECK_POLLS 256 /* a power of 2 */

static int verbs_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int verbs_cq_create(struct verbs_tp *vtp)
{
	struct epoll_event ev = {.events = EPOLLIN};
	const char *dev = ibv_get_device_name(vtp->ctx->device);
	uint32_t soft = 1;
	int ret;

	/* Room for twice the CQ: receive completions moved here by arm()
	 * or a drain are reposted at once and so are not in cq_cap. */
	while (soft < 2 * vtp->cq_cap)
		soft <<= 1;
	vtp->soft = calloc(soft, sizeof(*vtp->soft));
	if (!vtp->soft)
		return -ENOMEM;
	vtp->soft_mask = soft - 1;
	vtp->comp_ch = ibv_create_comp_channel(vtp->ctx);
	if (!vtp->comp_ch) {
		ret = rdps_set_error(-errno,
				     "cannot create a completion channel on "
				     "%s: %s",
				     dev, strerror(errno));
		goto err_free_soft;
	}
	ret = verbs_set_nonblock(vtp->comp_ch->fd);
	if (ret)
		goto err_destroy_channel;
	/* A few entries over cq_cap for the drain markers of ep_close. */
	vtp->cq = ibv_create_cq(vtp->ctx, (int)vtp->cq_cap + 8, NULL,
				vtp->comp_ch, 0);
	if (!vtp->cq) {
		ret = rdps_set_error(-errno,
				     "cannot create a completion queue of %u "
				     "entries on %s: %s; lower cq_depth",
				     vtp->cq_cap, dev, strerror(errno));
		goto err_destroy_channel;
	}
	vtp->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (vtp->epoll_fd < 0) {
		ret = -errno;
		goto err_destroy_cq;
	}
	ev.data.fd = vtp->comp_ch->fd;
	if (epoll_ctl(vtp->epoll_fd, EPOLL_CTL_ADD, vtp->comp_ch->fd, &ev)) {
		ret = -errno;
		goto err_close_epoll;
	}
	return 0;

err_close_epoll:
	close(vtp->epoll_fd);
	vtp->epoll_fd = -1;
err_destroy_cq:
	ibv_destroy_cq(vtp->cq);
err_destroy_channel:
	ibv_destroy_comp_channel(vtp->comp_ch);
err_free_soft:
	free(vtp->soft);
	return ret;
}

void verbs_cq_destroy(struct verbs_tp *vtp)
{
	int ret;

	if (vtp->cq_unacked)
		ibv_ack_cq_events(vtp->cq, vtp->cq_unacked);
	if (vtp->epoll_fd >= 0)
		close(vtp->epoll_fd);
	ret = ibv_destroy_cq(vtp->cq);
	if (ret)
		rdps_warn("cannot destroy completion queue: %s", strerror(ret));
	ret = ibv_destroy_comp_channel(vtp->comp_ch);
	if (ret)
		rdps_warn("cannot destroy completion channel: %s",
			  strerror(ret));
	free(vtp->soft);
}

void verbs_soft_push(struct verbs_tp *vtp, const struct rdps_tp_comp *c)
{
	if (vtp->soft_head - vtp->soft_tail > vtp->soft_mask) {
		/* Cannot happen while cq_used/cq_reserved are kept right. */
		rdps_err("software completion queue full: completion of "
			 "wr_id 0x%llx lost",
			 (unsigned long long)c->wr_id);
		return;
	}
	vtp->soft[vtp->soft_head++ & vtp->soft_mask] = *c;
	vtp->cq_used++;
}

void verbs_soft_forget_ep(struct verbs_tp *vtp, const struct rdps_tp_ep *ep)
{
	for (uint32_t i = vtp->soft_tail; i != vtp->soft_head; i++) {
		struct rdps_tp_comp *c = &vtp->soft[i & vtp->soft_mask];

		if (c->ep == ep)
			c->ep = NULL;
	}
}

int verbs_status_of(enum ibv_wc_status st, const struct verbs_ep *ep)
{
	switch (st) {
	case IBV_WC_SUCCESS:
		return RDPS_TP_WC_SUCCESS;
	case IBV_WC_REM_ACCESS_ERR:
		return RDPS_TP_WC_REM_ACCESS_ERR;
	case IBV_WC_REM_INV_REQ_ERR:
		return RDPS_TP_WC_REM_INV_REQ_ERR;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return RDPS_TP_WC_CONN_ERR;
	case IBV_WC_WR_FLUSH_ERR:
		/* Flushed because we closed it, or because the queue pair died
		 * (peer gone, or an earlier operation failed: verbs puts the
		 * whole QP in error after one failure). */
		return ep->state == VERBS_EP_CLOSING && !ep->peer_gone
			       ? RDPS_TP_WC_FLUSH_ERR
			       : RDPS_TP_WC_CONN_ERR;
	case IBV_WC_LOC_PROT_ERR:
		return RDPS_TP_WC_LOC_PROT_ERR;
	default:
		return RDPS_TP_WC_GENERAL_ERR;
	}
}

/* A receive completed: a write-with-immediate arrived, or a flush. */
static int verbs_wc_recv(struct verbs_ep *ep, const struct ibv_wc *wc,
			 struct rdps_tp_comp *c)
{
	ep->rq_posted--;
	if (rdps_likely(wc->status == IBV_WC_SUCCESS)) {
		c->wr_id = 0;
		c->ep = ep->state == VERBS_EP_CLOSING ? NULL : &ep->base;
		c->status = RDPS_TP_WC_SUCCESS;
		c->opcode = RDPS_TP_OP_RECV_IMM;
		c->len = wc->byte_len;
		c->imm = rdps_be32toh(wc->imm_data);
		/* Reposted when the user polls it (verbs_deliver): a target
		 * that stops polling makes its peers wait (RNR), instead of
		 * overflowing the software queue. */
		return 1;
	}
	if (wc->status != IBV_WC_WR_FLUSH_ERR) {
		rdps_warn("qp 0x%x receive failed: %s", ep->qp->qp_num,
			  ibv_wc_status_str(wc->status));
		verbs_ep_break(ep, false);
	}
	return 0;
}

/*
 * A send completed. RC completes in order, so every slot before it (posted
 * unsignaled, hence successful) is retired too.
 */
static int verbs_wc_send(struct verbs_ep *ep, uint32_t slot,
			 const struct ibv_wc *wc, struct rdps_tp_comp *c)
{
	const struct verbs_slot *s = &ep->ring[slot];
	uint32_t n = ((slot - ep->sq_tail) & ep->ring_mask) + 1;

	ep->sq_tail += n;
	ep->vtp->cq_used -= n;
	if (rdps_unlikely(s->muted))
		return 0;
	if (rdps_unlikely(wc->status != IBV_WC_SUCCESS && s->chain_more)) {
		/* A gather's failure is reported once: by its first READ
		 * that fails; the rest of its chain only flushes. */
		for (uint32_t i = slot; ep->ring[i].chain_more;) {
			i = (i + 1) & ep->ring_mask;
			ep->ring[i].muted = 1;
		}
	}
	if (rdps_likely(wc->status == IBV_WC_SUCCESS)) {
		if (!s->user_signal)
			return 0;
		c->status = RDPS_TP_WC_SUCCESS;
	} else {
		c->status = verbs_status_of(wc->status, ep);
		if (ep->state == VERBS_EP_CONNECTED) {
			rdps_info("qp 0x%x %s failed: %s; the queue pair is "
				  "now in error",
				  ep->qp->qp_num, rdps_tp_opcode_str(s->opcode),
				  ibv_wc_status_str(wc->status));
			verbs_ep_break(ep, false);
		}
	}
	c->wr_id = s->wr_id;
	c->ep = ep->state == VERBS_EP_CLOSING ? NULL : &ep->base;
	c->opcode = s->opcode;
	c->len = s->len;
	c->imm = 0;
	return 1;
}

/* Translate one work completion; returns 1 if it gave a completion. */
static int verbs_wc_to_comp(struct verbs_tp *vtp, const struct ibv_wc *wc,
			    struct rdps_tp_comp *c)
{
	uint32_t idx = (uint32_t)(wc->wr_id >> 48);
	uint16_t gen = (uint16_t)(wc->wr_id >> 32);
	uint32_t low = (uint32_t)wc->wr_id;
	struct verbs_ep *ep;

	ep = idx < vtp->n_eps_slots ? vtp->eps[idx] : NULL;
	if (rdps_unlikely(!ep || vtp->gen[idx] != gen)) {
		rdps_dbg("dropping completion of a closed endpoint (%s)",
			 ibv_wc_status_str(wc->status));
		return 0;
	}
	if (low == VERBS_WRID_RECV)
		return verbs_wc_recv(ep, wc, c);
	if (rdps_unlikely(low == VERBS_WRID_BIND)) {
		/* mem_reg_ep waits for this; a failed bind also put the queue
		 * pair in error. */
		ep->bind_done = true;
		ep->bind_status = wc->status;
		if (wc->status != IBV_WC_SUCCESS)
			verbs_ep_break(ep, false);
		return 0;
	}
	if (rdps_unlikely(low == VERBS_WRID_DRAIN)) {
		/* Everything posted before the marker has completed; slots
		 * still in the ring were unsignaled and succeeded. */
		vtp->cq_used -= ep->sq_head - ep->sq_tail;
		ep->sq_tail = ep->sq_head;
		ep->drain_done = true;
		return 0;
	}
	return verbs_wc_send(ep, low, wc, c);
}

int verbs_cq_reap(struct verbs_tp *vtp)
{
	struct ibv_wc wc[VERBS_POLL_BATCH];
	struct rdps_tp_comp c;
	int got, total = 0;

	do {
		got = ibv_poll_cq(vtp->cq, VERBS_POLL_BATCH, wc);
		if (got < 0) {
			rdps_err("polling the completion queue failed (%d)",
				 got);
			return total;
		}
		for (int i = 0; i < got; i++) {
			if (verbs_wc_to_comp(vtp, &wc[i], &c))
				verbs_soft_push(vtp, &c);
		}
		total += got;
	} while (got == VERBS_POLL_BATCH);
	return total;
}

/* A completion goes to the user: a receive it consumed can be reposted. */
static inline void verbs_deliver(const struct rdps_tp_comp *c)
{
	if (rdps_unlikely(c->opcode == RDPS_TP_OP_RECV_IMM) && c->ep)
		verbs_ep_repost_recv(verbs_ep_of(c->ep));
}

/* One DISCONNECT completion per endpoint that broke (transport.h). */
static int verbs_disc_poll(struct verbs_tp *vtp, struct rdps_tp_comp *comps,
			   int max)
{
	int n = 0;

	for (uint32_t i = 0; i < vtp->n_eps_slots && vtp->n_disc && n < max;
	     i++) {
		struct verbs_ep *ep = vtp->eps[i];

		if (!ep || !ep->disc_pending)
			continue;
		verbs_ep_disc_clear(ep);
		comps[n++] = rdps_tp_disconnect_comp(&ep->base);
	}
	return n;
}

int verbs_poll(struct rdps_tp *tp, struct rdps_tp_comp *comps, int max)
{
	struct verbs_tp *vtp = verbs_tp_of(tp);
	struct ibv_wc wc[VERBS_POLL_BATCH];
	int n = 0, got, want;
	uint64_t now;

	while (n < max && vtp->soft_tail != vtp->soft_head) {
		comps[n] = vtp->soft[vtp->soft_tail++ & vtp->soft_mask];
		verbs_deliver(&comps[n++]);
		vtp->cq_used--;
	}
	while (n < max) {
		want = max - n < VERBS_POLL_BATCH ? max - n : VERBS_POLL_BATCH;
		got = ibv_poll_cq(vtp->cq, want, wc);
		if (rdps_unlikely(got < 0)) {
			rdps_err("polling the completion queue failed (%d)",
				 got);
			return n ? n : -EIO;
		}
		for (int i = 0; i < got; i++) {
			if (verbs_wc_to_comp(vtp, &wc[i], &comps[n]))
				verbs_deliver(&comps[n++]);
		}
		if (got < want)
			break;
	}
	if (rdps_unlikely(vtp->n_disc) && n < max)
		n += verbs_disc_poll(vtp, comps + n, max - n);
	if (n)
		return n;
	/* Idle: look for disconnects now and then, so a dead peer's
	 * operations flush even if nobody calls accept or connect. Reading
	 * the clock can be a system call (hpet guests), so not every time. */
	if (++vtp->idle_polls & (VERBS_CM_CHECK_POLLS - 1))
		return 0;
	now = rdps_now_ns();
	if (now >= vtp->next_cm_check_ns) {
		vtp->next_cm_check_ns = now + VERBS_CM_CHECK_NS;
		verbs_cm_progress(vtp, 0);
		while (n < max && vtp->soft_tail != vtp->soft_head) {
			comps[n] = vtp->soft[vtp->soft_tail++ & vtp->soft_mask];
			verbs_deliver(&comps[n++]);
			vtp->cq_used--;
		}
		if (vtp->n_disc && n < max)
			n += verbs_disc_poll(vtp, comps + n, max - n);
	}
	return n;
}

int verbs_wait_fd(struct rdps_tp *tp)
{
	return verbs_tp_of(tp)->epoll_fd;
}

int verbs_arm(struct rdps_tp *tp)
{
	struct verbs_tp *vtp = verbs_tp_of(tp);
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	int ret;

	verbs_cm_progress(vtp, 0);
	while (!ibv_get_cq_event(vtp->comp_ch, &ev_cq, &ev_ctx))
		vtp->cq_unacked++;
	/* Acking takes a lock in libibverbs; batch it. */
	if (vtp->cq_unacked) {
		ibv_ack_cq_events(vtp->cq, vtp->cq_unacked);
		vtp->cq_unacked = 0;
	}
	if (vtp->soft_tail != vtp->soft_head || vtp->n_disc)
		return -EAGAIN;
	ret = ibv_req_notify_cq(vtp->cq, 0);
	if (ret)
		return rdps_set_error(-ret,
				      "cannot arm the completion queue: %s",
				      strerror(ret));
	/* Completions that arrived before the arm raise no event: take
	 * them now, or the caller would sleep with work pending. */
	verbs_cq_reap(vtp);
	return vtp->soft_tail != vtp->soft_head ? -EAGAIN : 0;
}
