/* SPDX-License-Identifier: MIT */
/*
 * verbs_ep.c - an endpoint: one RC queue pair, the ring that maps its send
 * completions back to the caller's posts, its receive pool, and the
 * one-sided posts. The posts take no lock, make no system call of their
 * own and allocate nothing.
 */
#include <stdlib.h>
#include <time.h>

#include "verbs.h"

#define VERBS_INLINE_WANT 64
#define VERBS_RECV_POOL_MAX 64
#define VERBS_MAX_MSG (1u << 31)
/* RNR NAK back-off the target asks for: 0.64 ms. rdma_cm's default of 0
 * means 655 ms, which a slow receive repost would turn into a stall. */
#define VERBS_MIN_RNR_TIMER 12
#define VERBS_DRAIN_MS 2000

static int verbs_ep_index(struct verbs_tp *vtp, struct verbs_ep *ep)
{
	uint32_t i, n;
	struct verbs_ep **eps;
	uint16_t *gen;

	for (i = 0; i < vtp->n_eps_slots; i++) {
		if (!vtp->eps[i])
			goto found;
	}
	if (vtp->n_eps_slots >= VERBS_EP_MAX)
		return rdps_set_error(-EMFILE,
				      "too many verbs endpoints (%u): close "
				      "some",
				      VERBS_EP_MAX);
	n = vtp->n_eps_slots ? 2 * vtp->n_eps_slots : 16;
	if (n > VERBS_EP_MAX)
		n = VERBS_EP_MAX;
	eps = realloc(vtp->eps, n * sizeof(*eps));
	if (!eps)
		return -ENOMEM;
	vtp->eps = eps;
	gen = realloc(vtp->gen, n * sizeof(*gen));
	if (!gen)
		return -ENOMEM;
	vtp->gen = gen;
	for (uint32_t j = vtp->n_eps_slots; j < n; j++) {
		vtp->eps[j] = NULL;
		vtp->gen[j] = 0;
	}
	i = vtp->n_eps_slots;
	vtp->n_eps_slots = n;
found:
	vtp->eps[i] = ep;
	ep->wrid_base = (uint64_t)i << 48 | (uint64_t)vtp->gen[i] << 32;
	return 0;
}

int verbs_ep_alloc(struct verbs_tp *vtp, struct verbs_ep **ep_out)
{
	const struct rdps_tp_cfg *cfg = &vtp->base.cfg;
	struct verbs_ep *ep;
	uint32_t ring = 1;
	int ret;

	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	ep->base.tp = &vtp->base;
	ep->kind = VERBS_OBJ_EP;
	ep->vtp = vtp;
	ep->sq_depth = cfg->sq_depth;
	/* Unsignaled slots are only freed by a later signaled completion,
	 * so signal at least twice per ring even if the caller never does;
	 * such completions are swallowed, not shown. */
	ep->sig_period = cfg->sq_depth / 2 ? cfg->sq_depth / 2 : 1;
	ep->rq_pool = cfg->sq_depth < VERBS_RECV_POOL_MAX ? cfg->sq_depth
							  : VERBS_RECV_POOL_MAX;
	while (ring < cfg->sq_depth)
		ring <<= 1;
	ep->ring = calloc(ring, sizeof(*ep->ring));
	if (!ep->ring) {
		ret = -ENOMEM;
		goto err_free_ep;
	}
	ep->ring_mask = ring - 1;
	ret = verbs_ep_index(vtp, ep);
	if (ret)
		goto err_free_ring;
	*ep_out = ep;
	return 0;

err_free_ring:
	free(ep->ring);
err_free_ep:
	free(ep);
	return ret;
}

static int verbs_qp_modify(struct verbs_ep *ep, struct ibv_qp_attr *attr,
			   int mask, const char *what)
{
	int ret = ibv_modify_qp(ep->qp, attr, mask);

	if (ret)
		return rdps_set_error(-ret, "cannot move qp 0x%x to %s: %s",
				      ep->qp->qp_num, what, strerror(ret));
	return 0;
}

static int verbs_qp_attr(struct verbs_ep *ep, enum ibv_qp_state state,
			 struct ibv_qp_attr *attr, int *mask)
{
	memset(attr, 0, sizeof(*attr));
	attr->qp_state = state;
	if (rdma_init_qp_attr(ep->id, attr, mask))
		return rdps_set_error(-errno,
				      "rdma_cm has no attributes for qp state "
				      "%d: %s",
				      (int)state, strerror(errno));
	return 0;
}

void verbs_ep_repost_recv(struct verbs_ep *ep)
{
	struct ibv_recv_wr wr = {.wr_id = ep->wrid_base | VERBS_WRID_RECV};
	struct ibv_recv_wr *bad;
	int ret;

	if (ep->state != VERBS_EP_CONNECTED && ep->state != VERBS_EP_CONNECTING)
		return;
	/* No buffer: a write-with-immediate consumes a receive but puts its
	 * data where the initiator said. */
	ret = ibv_post_recv(ep->qp, &wr, &bad);
	if (rdps_unlikely(ret)) {
		rdps_warn("qp 0x%x cannot repost a receive: %s", ep->qp->qp_num,
			  strerror(ret));
		return;
	}
	ep->rq_posted++;
}

int verbs_ep_init_qp(struct verbs_ep *ep)
{
	struct verbs_tp *vtp = ep->vtp;
	uint32_t reserve = ep->rq_pool + 2;
	struct ibv_qp_init_attr qia = {
		.send_cq = vtp->cq,
		.recv_cq = vtp->cq,
		.cap = {.max_send_wr = ep->sq_depth + VERBS_SQ_EXTRA,
			.max_recv_wr = ep->rq_pool,
			.max_send_sge = 1,
			.max_recv_sge = 1,
			.max_inline_data = VERBS_INLINE_WANT},
		.qp_type = IBV_QPT_RC,
	};
	struct ibv_qp_attr attr;
	int mask, ret;

	if (ep->id->verbs != vtp->ctx)
		return rdps_set_error(
			-ENODEV,
			"the address resolves to RDMA device %s "
			"but this transport uses %s: set "
			"cfg.dev or use an address of %s",
			ep->id->verbs
				? ibv_get_device_name(ep->id->verbs->device)
				: "(none)",
			ibv_get_device_name(vtp->ctx->device),
			ibv_get_device_name(vtp->ctx->device));
	if (vtp->cq_reserved + reserve + ep->sq_depth > vtp->cq_cap)
		return rdps_set_error(-ENOBUFS,
				      "completion queue depth %u is too small "
				      "for another endpoint (%u entries "
				      "reserved): raise cq_depth",
				      vtp->cq_cap, vtp->cq_reserved);
	ep->qp = ibv_create_qp(vtp->pd, &qia);
	if (!ep->qp && errno == EINVAL) {
		qia.cap.max_inline_data = 0; /* device without inline */
		ep->qp = ibv_create_qp(vtp->pd, &qia);
	}
	if (!ep->qp)
		return rdps_set_error(
			-errno, "cannot create a queue pair on %s: %s",
			ibv_get_device_name(vtp->ctx->device), strerror(errno));
	ep->max_inline = qia.cap.max_inline_data;

	ret = verbs_qp_attr(ep, IBV_QPS_INIT, &attr, &mask);
	if (ret)
		goto err_destroy_qp;
	attr.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
			       IBV_ACCESS_REMOTE_WRITE;
	if (vtp->atomic_ok)
		attr.qp_access_flags |= IBV_ACCESS_REMOTE_ATOMIC;
	mask |= IBV_QP_ACCESS_FLAGS;
	ret = verbs_qp_modify(ep, &attr, mask, "init");
	if (ret)
		goto err_destroy_qp;
	for (uint32_t i = 0; i < ep->rq_pool; i++)
		verbs_ep_repost_recv(ep);
	if (ep->rq_posted != ep->rq_pool) {
		ret = rdps_set_error(-ENOMEM, "cannot post receives on qp 0x%x",
				     ep->qp->qp_num);
		goto err_destroy_qp;
	}
	vtp->cq_reserved += reserve;
	ep->cq_reserved = reserve;
	return 0;

err_destroy_qp:
	ibv_destroy_qp(ep->qp);
	ep->qp = NULL;
	ep->rq_posted = 0;
	return ret;
}

int verbs_ep_qp_ready(struct verbs_ep *ep, uint8_t responder_resources,
		      uint8_t initiator_depth)
{
	const struct rdps_tp_cfg *cfg = &ep->vtp->base.cfg;
	struct ibv_port_attr pattr;
	struct ibv_qp_attr attr;
	int mask, ret;

	ret = verbs_qp_attr(ep, IBV_QPS_RTR, &attr, &mask);
	if (ret)
		return ret;
	/* rdma_cm derives the MTU from the netdev; the port may be lower. */
	if (!ibv_query_port(ep->id->verbs, ep->id->port_num, &pattr) &&
	    pattr.active_mtu < attr.path_mtu)
		attr.path_mtu = pattr.active_mtu;
	/* rdma_cm takes the GID of the bound IP (on RoCEv2 and rxe the
	 * ::ffff:a.b.c.d v2 entry); an explicit index wins. */
	if (cfg->gid_index >= 0)
		attr.ah_attr.grh.sgid_index = (uint8_t)cfg->gid_index;
	attr.max_dest_rd_atomic = responder_resources;
	attr.min_rnr_timer = VERBS_MIN_RNR_TIMER;
	mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	ret = verbs_qp_modify(ep, &attr, mask, "rtr");
	if (ret)
		return ret;
	rdps_dbg("qp 0x%x rtr: mtu %d sgid index %u", ep->qp->qp_num,
		 128 << attr.path_mtu, attr.ah_attr.grh.sgid_index);

	ret = verbs_qp_attr(ep, IBV_QPS_RTS, &attr, &mask);
	if (ret)
		return ret;
	attr.max_rd_atomic = initiator_depth;
	mask |= IBV_QP_MAX_QP_RD_ATOMIC;
	return verbs_qp_modify(ep, &attr, mask, "rts");
}

void verbs_ep_break(struct verbs_ep *ep, bool peer_gone)
{
	struct ibv_qp_attr attr = {.qp_state = IBV_QPS_ERR};

	if (peer_gone)
		ep->peer_gone = true;
	if (ep->state == VERBS_EP_CONNECTED) {
		ep->state = VERBS_EP_BROKEN;
		/* Owed to the user: a DISCONNECT completion (transport.h). */
		ep->disc_pending = true;
		ep->vtp->n_disc++;
	}
	/* In error the device flushes every outstanding request into the
	 * CQ, so callers see a completion for each. */
	if (ep->qp && ibv_modify_qp(ep->qp, &attr, IBV_QP_STATE))
		rdps_warn("cannot move qp 0x%x to error", ep->qp->qp_num);
}

void verbs_ep_disc_clear(struct verbs_ep *ep)
{
	if (!ep->disc_pending)
		return;
	ep->disc_pending = false;
	ep->vtp->n_disc--;
}

/* Take vmr off its endpoint's list and free its window: no queue pair
 * accepts its key any more. */
void verbs_ep_unbind(struct verbs_mr *vmr)
{
	struct verbs_mr **pp;
	int ret;

	if (!vmr->mw)
		return;
	for (pp = &vmr->ep->scoped; *pp; pp = &(*pp)->ep_next) {
		if (*pp == vmr) {
			*pp = vmr->ep_next;
			break;
		}
	}
	ret = ibv_dealloc_mw(vmr->mw);
	if (ret)
		rdps_warn("cannot free the memory window over %p+%zu: %s",
			  vmr->base.addr, vmr->base.len, strerror(ret));
	vmr->mw = NULL;
	vmr->ep = NULL;
	vmr->ep_next = NULL;
}

static void verbs_ep_unbind_all(struct verbs_ep *ep)
{
	while (ep->scoped)
		verbs_ep_unbind(ep->scoped);
}

void verbs_ep_destroy(struct verbs_ep *ep)
{
	struct verbs_tp *vtp;
	uint32_t idx;
	int ret;

	if (!ep)
		return;
	vtp = ep->vtp;
	verbs_ep_disc_clear(ep);
	/* Windows bound to the queue pair go first: their regions lose
	 * remote access and stay registered until mem_dereg. */
	verbs_ep_unbind_all(ep);
	if (ep->qp) {
		ret = ibv_destroy_qp(ep->qp);
		if (ret)
			rdps_warn("cannot destroy qp: %s", strerror(ret));
	}
	if (ep->id)
		rdma_destroy_id(ep->id);
	vtp->cq_reserved -= ep->cq_reserved;
	idx = (uint32_t)(ep->wrid_base >> 48);
	vtp->eps[idx] = NULL;
	vtp->gen[idx]++; /* its completions still in the CQ are now stale */
	free(ep->ring);
	free(ep);
}

static bool verbs_ep_drained(const struct verbs_ep *ep)
{
	return ep->drain_done && !ep->rq_posted;
}

void verbs_ep_close(struct rdps_tp_ep *bep)
{
	struct verbs_ep *ep = verbs_ep_of(bep);
	struct verbs_tp *vtp = ep->vtp;
	struct ibv_send_wr wr = {.wr_id = ep->wrid_base | VERBS_WRID_DRAIN,
				 .opcode = IBV_WR_RDMA_WRITE,
				 .send_flags = IBV_SEND_SIGNALED};
	struct timespec ts = {.tv_nsec = 50000};
	struct ibv_send_wr *bad;
	uint64_t deadline;

	if (!ep->peer_gone && ep->state != VERBS_EP_CONNECTING)
		rdma_disconnect(ep->id); /* tells the peer; errors are moot */
	verbs_ep_break(ep, false);
	verbs_ep_disc_clear(ep); /* closed here: nobody to tell */
	ep->state = VERBS_EP_CLOSING;
	/* A marker after everything else: when it completes, every earlier
	 * request has, including unsignaled ones that raise no completion. */
	if (ibv_post_send(ep->qp, &wr, &bad)) {
		rdps_warn("qp 0x%x: cannot post the drain marker",
			  ep->qp->qp_num);
		ep->drain_done = true;
	}
	deadline = rdps_deadline(VERBS_DRAIN_MS);
	for (;;) {
		verbs_cq_reap(vtp);
		if (verbs_ep_drained(ep))
			break;
		if (rdps_now_ns() > deadline) {
			rdps_warn("qp 0x%x did not flush in %d ms; dropping "
				  "its completions",
				  ep->qp->qp_num, VERBS_DRAIN_MS);
			break;
		}
		nanosleep(&ts, NULL);
	}
	vtp->cq_used -= ep->sq_head - ep->sq_tail;
	verbs_soft_forget_ep(vtp, &ep->base);
	verbs_ep_destroy(ep);
}

/* Posts --------------------------------------------------------------- */

static int verbs_post_dead(struct verbs_ep *ep)
{
	return rdps_set_error(-ENOTCONN,
			      "endpoint is disconnected (%s): close it and "
			      "connect again",
			      ep->peer_gone ? "the peer went away"
					    : "an operation failed, which puts "
					      "a verbs queue pair in error");
}

static int verbs_post_failed(struct verbs_ep *ep, int err)
{
	if (err == ENOMEM)
		return -EAGAIN;
	return rdps_set_error(-err, "qp 0x%x refused a work request: %s",
			      ep->qp->qp_num, strerror(err));
}

static inline bool verbs_full(const struct verbs_ep *ep)
{
	const struct verbs_tp *vtp = ep->vtp;

	return ep->sq_head - ep->sq_tail >= ep->sq_depth ||
	       vtp->cq_used + vtp->cq_reserved >= vtp->cq_cap;
}

/*
 * An error decided at post time, delivered through the software queue.
 * The queue pair stays usable; the completion may overtake completions of
 * operations posted earlier on the endpoint.
 */
static int verbs_post_synth(struct verbs_ep *ep, uint64_t wr_id, uint8_t op,
			    int status)
{
	struct rdps_tp_comp c = {.wr_id = wr_id,
				 .ep = &ep->base,
				 .status = status,
				 .opcode = op};

	if (ep->state != VERBS_EP_CONNECTED)
		return verbs_post_dead(ep);
	if (verbs_full(ep))
		return -EAGAIN;
	verbs_soft_push(ep->vtp, &c);
	return 0;
}

static inline int verbs_post(struct verbs_ep *ep, struct ibv_send_wr *wr,
			     uint64_t wr_id, uint8_t op, uint32_t len,
			     unsigned flags)
{
	struct verbs_slot *s;
	struct ibv_send_wr *bad;
	uint32_t idx;
	int ret;

	if (rdps_unlikely(ep->state != VERBS_EP_CONNECTED))
		return verbs_post_dead(ep);
	if (rdps_unlikely(verbs_full(ep)))
		return -EAGAIN;
	idx = ep->sq_head & ep->ring_mask;
	s = &ep->ring[idx];
	s->wr_id = wr_id;
	s->len = len;
	s->opcode = op;
	s->user_signal = !(flags & RDPS_TP_F_UNSIGNALED);
	s->chain_more = 0;
	s->muted = 0;
	wr->wr_id = ep->wrid_base | idx;
	if (s->user_signal || ++ep->unsig_run >= ep->sig_period) {
		wr->send_flags |= IBV_SEND_SIGNALED;
		ep->unsig_run = 0;
	}
	ret = ibv_post_send(ep->qp, wr, &bad);
	if (rdps_unlikely(ret))
		return verbs_post_failed(ep, ret);
	ep->sq_head++;
	ep->vtp->cq_used++;
	return 0;
}

static inline bool verbs_lbuf_ok(const void *lbuf, size_t len,
				 const struct rdps_tp_mr *lmr)
{
	uintptr_t a = (uintptr_t)lbuf, base;

	if (!lmr)
		return false;
	base = (uintptr_t)lmr->addr;
	return a >= base && len <= lmr->len && a - base <= lmr->len - len;
}

static int verbs_too_big(size_t len)
{
	return rdps_set_error(-EMSGSIZE,
			      "a single operation of %zu bytes is over the "
			      "verbs limit of %u: split it",
			      len, VERBS_MAX_MSG);
}

static inline int verbs_rma(struct verbs_ep *ep, enum ibv_wr_opcode vop,
			    uint8_t op, const void *lbuf, size_t len,
			    struct rdps_tp_mr *lmr, uint64_t raddr,
			    const struct rdps_tp_rkey *rkey, uint32_t imm_be,
			    uint64_t wr_id, unsigned flags)
{
	struct ibv_sge sge;
	struct ibv_send_wr wr;

	if (rdps_unlikely(len > VERBS_MAX_MSG))
		return verbs_too_big(len);
	if (rdps_unlikely(len && !verbs_lbuf_ok(lbuf, len, lmr)))
		return verbs_post_synth(ep, wr_id, op, RDPS_TP_WC_LOC_PROT_ERR);
	wr.next = NULL;
	wr.opcode = vop;
	wr.imm_data = imm_be;
	wr.send_flags = 0;
	if (len) {
		sge.addr = (uintptr_t)lbuf;
		sge.length = (uint32_t)len;
		sge.lkey = verbs_mr_of(lmr)->mr->lkey;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		if (vop != IBV_WR_RDMA_READ && len <= ep->max_inline)
			wr.send_flags = IBV_SEND_INLINE;
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey->key;
	} else {
		wr.sg_list = NULL;
		wr.num_sge = 0;
		wr.wr.rdma.remote_addr = rkey ? raddr : 0;
		wr.wr.rdma.rkey = rkey ? rkey->key : 0;
	}
	return verbs_post(ep, &wr, wr_id, op, (uint32_t)len, flags);
}

int verbs_put(struct rdps_tp_ep *ep, const void *lbuf, size_t len,
	      struct rdps_tp_mr *lmr, uint64_t raddr,
	      const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	return verbs_rma(verbs_ep_of(ep), IBV_WR_RDMA_WRITE, RDPS_TP_OP_WRITE,
			 lbuf, len, lmr, raddr, rkey, 0, wr_id, flags);
}

int verbs_put_imm(struct rdps_tp_ep *ep, const void *lbuf, size_t len,
		  struct rdps_tp_mr *lmr, uint64_t raddr,
		  const struct rdps_tp_rkey *rkey, uint32_t imm, uint64_t wr_id,
		  unsigned flags)
{
	return verbs_rma(verbs_ep_of(ep), IBV_WR_RDMA_WRITE_WITH_IMM,
			 RDPS_TP_OP_WRITE_IMM, lbuf, len, lmr, raddr, rkey,
			 rdps_htobe32(imm), wr_id, flags);
}

int verbs_get(struct rdps_tp_ep *ep, void *lbuf, size_t len,
	      struct rdps_tp_mr *lmr, uint64_t raddr,
	      const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	return verbs_rma(verbs_ep_of(ep), IBV_WR_RDMA_READ, RDPS_TP_OP_READ,
			 lbuf, len, lmr, raddr, rkey, 0, wr_id, flags);
}

/*
 * Gather READ as a chain of k READ work requests posted with one
 * ibv_post_send, only the last signaled (and, as ever, one every
 * sig_period): RC executes and completes a queue pair's work requests in
 * order, so the last one's completion means all landed. A chain rather
 * than one READ with a k-entry SGL, because an SGL scatters one
 * contiguous remote range and the ranges here (hash buckets, rows) are
 * scattered; and k work requests cost k send-queue slots, hence
 * rdps_tp_gather_check() against sq_depth. A failure is reported once,
 * by the first failing READ (verbs_cq.c mutes the rest of the chain).
 */
int verbs_get_gather(struct rdps_tp_ep *ep_,
		     const struct rdps_tp_gather_ent *ents, unsigned k,
		     struct rdps_tp_mr *lmr, uint64_t wr_id, unsigned flags)
{
	struct verbs_ep *ep = verbs_ep_of(ep_);
	struct verbs_tp *vtp = ep->vtp;
	struct ibv_sge sge[RDPS_TP_GATHER_MAX];
	struct ibv_send_wr wr[RDPS_TP_GATHER_MAX], *bad = NULL;
	uint64_t total;
	int ret;

	ret = rdps_tp_gather_check(ents, k, ep->sq_depth, &total);
	if (ret)
		return ret;
	for (unsigned i = 0; i < k; i++)
		if (rdps_unlikely(
			    !verbs_lbuf_ok(ents[i].lbuf, ents[i].len, lmr)))
			return verbs_post_synth(ep, wr_id, RDPS_TP_OP_READ,
						RDPS_TP_WC_LOC_PROT_ERR);
	if (rdps_unlikely(ep->state != VERBS_EP_CONNECTED))
		return verbs_post_dead(ep);
	if (rdps_unlikely(ep->sq_head - ep->sq_tail + k > ep->sq_depth ||
			  vtp->cq_used + vtp->cq_reserved + k > vtp->cq_cap))
		return -EAGAIN;
	for (unsigned i = 0; i < k; i++) {
		uint32_t idx = (ep->sq_head + i) & ep->ring_mask;
		struct verbs_slot *s = &ep->ring[idx];
		bool last = i + 1 == k;

		s->wr_id = wr_id;
		s->len = last ? (uint32_t)total : ents[i].len;
		s->opcode = RDPS_TP_OP_READ;
		s->user_signal = last && !(flags & RDPS_TP_F_UNSIGNALED);
		s->chain_more = !last;
		s->muted = 0;
		sge[i].addr = (uintptr_t)ents[i].lbuf;
		sge[i].length = ents[i].len;
		sge[i].lkey = verbs_mr_of(lmr)->mr->lkey;
		wr[i].wr_id = ep->wrid_base | idx;
		wr[i].next = last ? NULL : &wr[i + 1];
		wr[i].sg_list = &sge[i];
		wr[i].num_sge = 1;
		wr[i].opcode = IBV_WR_RDMA_READ;
		wr[i].send_flags = 0;
		wr[i].wr.rdma.remote_addr = ents[i].raddr;
		wr[i].wr.rdma.rkey = ents[i].rkey->key;
		if (s->user_signal || ++ep->unsig_run >= ep->sig_period) {
			wr[i].send_flags = IBV_SEND_SIGNALED;
			ep->unsig_run = 0;
		}
	}
	ret = ibv_post_send(ep->qp, wr, &bad);
	if (rdps_unlikely(ret)) {
		/* The head of the chain went out: it completes silently, the
		 * caller has its error and no completion. */
		unsigned posted = bad ? (unsigned)(bad - wr) : 0;

		for (unsigned i = 0; i < posted; i++)
			ep->ring[(ep->sq_head + i) & ep->ring_mask].muted = 1;
		ep->sq_head += posted;
		vtp->cq_used += posted;
		return verbs_post_failed(ep, ret);
	}
	ep->sq_head += k;
	vtp->cq_used += k;
	return 0;
}

static inline int verbs_atomic(struct verbs_ep *ep, enum ibv_wr_opcode vop,
			       uint8_t op, uint64_t cmp_add, uint64_t swp,
			       uint64_t *res, struct rdps_tp_mr *res_mr,
			       uint64_t raddr, const struct rdps_tp_rkey *rkey,
			       uint64_t wr_id, unsigned flags)
{
	struct ibv_sge sge;
	struct ibv_send_wr wr;

	if (rdps_unlikely(!ep->atomic_ok))
		return rdps_set_error(-EOPNOTSUPP,
				      "RDMA atomics are not supported by %s: "
				      "use a device with atomic_cap other "
				      "than IBV_ATOMIC_NONE on both sides",
				      ep->vtp->atomic_ok ? "the peer's device"
							 : "this device");
	if (rdps_unlikely(((uintptr_t)res & 7) ||
			  !verbs_lbuf_ok(res, 8, res_mr)))
		return verbs_post_synth(ep, wr_id, op, RDPS_TP_WC_LOC_PROT_ERR);
	/* Devices differ on a misaligned atomic (post error, completion
	 * error, or worse); answer it the same everywhere. */
	if (rdps_unlikely(raddr & 7))
		return verbs_post_synth(ep, wr_id, op,
					RDPS_TP_WC_REM_INV_REQ_ERR);
	sge.addr = (uintptr_t)res;
	sge.length = 8;
	sge.lkey = verbs_mr_of(res_mr)->mr->lkey;
	wr.next = NULL;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = vop;
	wr.send_flags = 0;
	wr.wr.atomic.remote_addr = raddr;
	wr.wr.atomic.compare_add = cmp_add;
	wr.wr.atomic.swap = swp;
	wr.wr.atomic.rkey = rkey->key;
	return verbs_post(ep, &wr, wr_id, op, 8, flags);
}

int verbs_atomic_fadd(struct rdps_tp_ep *ep, uint64_t add, uint64_t *res,
		      struct rdps_tp_mr *res_mr, uint64_t raddr,
		      const struct rdps_tp_rkey *rkey, uint64_t wr_id,
		      unsigned flags)
{
	return verbs_atomic(verbs_ep_of(ep), IBV_WR_ATOMIC_FETCH_AND_ADD,
			    RDPS_TP_OP_FADD, add, 0, res, res_mr, raddr, rkey,
			    wr_id, flags);
}

int verbs_atomic_cswap(struct rdps_tp_ep *ep, uint64_t cmp, uint64_t swp,
		       uint64_t *res, struct rdps_tp_mr *res_mr, uint64_t raddr,
		       const struct rdps_tp_rkey *rkey, uint64_t wr_id,
		       unsigned flags)
{
	return verbs_atomic(verbs_ep_of(ep), IBV_WR_ATOMIC_CMP_AND_SWP,
			    RDPS_TP_OP_CSWAP, cmp, swp, res, res_mr, raddr,
			    rkey, wr_id, flags);
}
