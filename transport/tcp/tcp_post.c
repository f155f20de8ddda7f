/* SPDX-License-Identifier: MIT */
/*
 * tcp_post.c - posting one-sided operations on a tcp endpoint. A post
 * takes a slot in the endpoint's FIFO and a reserved completion slot,
 * encodes the header and tries to send at once; what the socket does not
 * take waits in the send queue for the progress thread. Never blocks.
 */
#include <stdlib.h>
#include <sys/epoll.h>

#include "tcp.h"

/* Payloads up to this size are copied when RDPS_TP_F_INLINE asks and the
 * socket could not take them at once. */
#define TCP_INLINE_MAX 256

static int tcp_local_check(struct tcp_tp *tp, const void *buf, size_t len,
			   const struct rdps_tp_mr *lmr)
{
	uintptr_t b = (uintptr_t)buf, a;

	if (!len)
		return RDPS_TP_WC_SUCCESS;
	if (!lmr || lmr->tp != &tp->base || !buf)
		return RDPS_TP_WC_LOC_PROT_ERR;
	a = (uintptr_t)lmr->addr;
	if (b < a || len > lmr->len || b - a > lmr->len - len)
		return RDPS_TP_WC_LOC_PROT_ERR;
	return RDPS_TP_WC_SUCCESS;
}

struct tcp_post_args {
	uint8_t type;
	uint8_t opcode;
	void *lbuf;
	size_t len;
	const struct rdps_tp_mr *lmr;
	uint64_t raddr;
	const struct rdps_tp_rkey *rkey;
	uint32_t imm;
	uint64_t op1, op2;
	uint64_t wr_id;
	unsigned flags;
	/* gather READ: len is the total; its descriptors (the payload) and
	 * local places, both handed over to the op on success; st the
	 * verdict of its local checks */
	uint8_t *desc;
	size_t dlen;
	struct tcp_sg *sg;
	unsigned nsg;
	int st;
};

static int tcp_post(struct tcp_ep *ep, const struct tcp_post_args *a)
{
	struct tcp_tp *tp = ep->tp;
	int is_write = a->type == RDPS_TCP_REQ_WRITE ||
		       a->type == RDPS_TCP_REQ_WRITE_IMM;
	int is_atomic =
		a->type == RDPS_TCP_REQ_FADD || a->type == RDPS_TCP_REQ_CSWAP;
	int is_gather = a->type == RDPS_TCP_REQ_GATHER;
	struct rdps_tcp_msg m;
	struct tcp_op *op;
	int st;

	if (rdps_unlikely(a->len > RDPS_TCP_MAX_MSG))
		return rdps_set_error(-EINVAL,
				      "tcp operation of %zu bytes is over "
				      "the 1 GiB limit: split it",
				      a->len);
	if (rdps_unlikely(!a->rkey && (a->len || is_atomic)))
		return rdps_set_error(-EINVAL, "tcp post without a remote key");
	if (rdps_unlikely(a->flags &
			  ~(unsigned)(RDPS_TP_F_UNSIGNALED | RDPS_TP_F_INLINE)))
		return rdps_set_error(-EINVAL, "unknown post flags 0x%x",
				      a->flags);
	st = is_gather ? a->st : tcp_local_check(tp, a->lbuf, a->len, a->lmr);
	if (is_atomic && ((uintptr_t)a->lbuf & 7))
		st = RDPS_TP_WC_LOC_PROT_ERR;

	pthread_mutex_lock(&tp->lock);
	if (rdps_unlikely(ep->broken)) {
		pthread_mutex_unlock(&tp->lock);
		return -ENOTCONN;
	}
	if (rdps_unlikely(ep->sq_busy >= tp->sq_depth || !tcp_cq_has_room(tp) ||
			  (tcp_type_rd_atomic(a->type) &&
			   ep->rd_out >= RDPS_TP_MAX_RD_ATOMIC))) {
		/* The caller will wait for completions: what it posted
		 * must be on its way. */
		if (ep->held && !(ep->events & EPOLLOUT))
			tcp_tx_flush(ep);
		pthread_mutex_unlock(&tp->lock);
		return -EAGAIN;
	}
	op = &ep->ops[(ep->op_head + ep->op_count) % tp->sq_depth];
	op->wr_id = a->wr_id;
	op->lbuf = a->lbuf;
	op->sg = NULL;
	op->nsg = 0;
	op->len = (uint32_t)(is_atomic ? 8 : a->len);
	op->opcode = a->opcode;
	op->signaled = !(a->flags & RDPS_TP_F_UNSIGNALED);
	op->status = st;
	ep->op_count++;
	ep->sq_busy++;
	tp->cq_resv++;
	if (st != RDPS_TP_WC_SUCCESS) {
		op->type = 0; /* no wire message: fails in post order */
		tcp_op_complete_ready(ep);
		pthread_mutex_unlock(&tp->lock);
		return 0;
	}
	op->type = a->type;
	op->seq = ep->next_seq++;
	op->sg = a->sg;
	op->nsg = a->nsg;
	ep->rd_out += (unsigned)tcp_type_rd_atomic(a->type);
	m = (struct rdps_tcp_msg){
		.type = a->type,
		.len = is_write	   ? (uint32_t)a->len
		       : is_gather ? (uint32_t)a->dlen
				   : 0,
		.seq = op->seq,
		.raddr = a->raddr,
		.rkey = a->rkey ? a->rkey->key : 0,
		.imm = a->imm,
		.op1 = a->type == RDPS_TCP_REQ_READ || is_gather ? a->len
								 : a->op1,
		.op2 = a->op2,
	};
	rdps_tcp_wire_encode(&m, op->txe.hdr);
	op->txe.payload = is_write ? a->lbuf : a->desc;
	op->txe.plen = is_write ? a->len : a->dlen;
	op->txe.bounce = a->desc; /* freed once sent */
	op->txe.is_resp = 0;
	tcp_tx_enqueue(ep, &op->txe);
	if (ep->op_count > 1 && ep->held < TCP_HOLD_MAX) {
		/* An earlier request is unanswered: hold this one (tcp.h,
		 * "Batching"); its response or the next poll sends it. */
		if (!ep->held++)
			__atomic_store_n(&tp->n_held, tp->n_held + 1,
					 __ATOMIC_RELEASE);
	} else if (!(ep->events & EPOLLOUT)) {
		tcp_tx_flush(ep);
	}
	if ((a->flags & RDPS_TP_F_INLINE) && !is_gather && !ep->broken &&
	    op->txe.queued && op->txe.plen && op->txe.plen <= TCP_INLINE_MAX) {
		void *copy = malloc(op->txe.plen);

		/* Without memory the hint is not honoured: lbuf is still
		 * sent correctly if the caller leaves it alone. */
		if (copy) {
			memcpy(copy, op->txe.payload, op->txe.plen);
			op->txe.bounce = copy;
			op->txe.payload = copy;
		}
	}
	pthread_mutex_unlock(&tp->lock);
	return 0;
}

int tcp_put(struct rdps_tp_ep *ep, const void *lbuf, size_t len,
	    struct rdps_tp_mr *lmr, uint64_t raddr,
	    const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct tcp_post_args a = {
		.type = RDPS_TCP_REQ_WRITE,
		.opcode = RDPS_TP_OP_WRITE,
		.lbuf = (void *)(uintptr_t)lbuf,
		.len = len,
		.lmr = lmr,
		.raddr = raddr,
		.rkey = rkey,
		.wr_id = wr_id,
		.flags = flags,
	};

	return tcp_post(to_tcp_ep(ep), &a);
}

int tcp_put_imm(struct rdps_tp_ep *ep, const void *lbuf, size_t len,
		struct rdps_tp_mr *lmr, uint64_t raddr,
		const struct rdps_tp_rkey *rkey, uint32_t imm, uint64_t wr_id,
		unsigned flags)
{
	struct tcp_post_args a = {
		.type = RDPS_TCP_REQ_WRITE_IMM,
		.opcode = RDPS_TP_OP_WRITE_IMM,
		.lbuf = (void *)(uintptr_t)lbuf,
		.len = len,
		.lmr = lmr,
		.raddr = len ? raddr : 0,
		.rkey = len ? rkey : NULL,
		.imm = imm,
		.wr_id = wr_id,
		.flags = flags,
	};

	return tcp_post(to_tcp_ep(ep), &a);
}

int tcp_get(struct rdps_tp_ep *ep, void *lbuf, size_t len,
	    struct rdps_tp_mr *lmr, uint64_t raddr,
	    const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct tcp_post_args a = {
		.type = RDPS_TCP_REQ_READ,
		.opcode = RDPS_TP_OP_READ,
		.lbuf = lbuf,
		.len = len,
		.lmr = lmr,
		.raddr = raddr,
		.rkey = rkey,
		.wr_id = wr_id,
		.flags = flags,
	};

	return tcp_post(to_tcp_ep(ep), &a);
}

/* One request of k descriptors, one response of the k ranges (tcp.h).
 * The descriptors and local places are copied, so ents may go on return. */
int tcp_get_gather(struct rdps_tp_ep *ep, const struct rdps_tp_gather_ent *ents,
		   unsigned k, struct rdps_tp_mr *lmr, uint64_t wr_id,
		   unsigned flags)
{
	struct tcp_ep *tep = to_tcp_ep(ep);
	struct rdps_tcp_range r;
	struct tcp_post_args a = {
		.type = RDPS_TCP_REQ_GATHER,
		.opcode = RDPS_TP_OP_READ,
		.lmr = lmr,
		.wr_id = wr_id,
		.flags = flags,
	};
	uint64_t total;
	int ret;

	ret = rdps_tp_gather_check(ents, k, 0, &total);
	if (ret)
		return ret;
	a.len = total;
	a.rkey = ents[0].rkey;
	for (unsigned i = 0; i < k && !a.st; i++)
		a.st = tcp_local_check(tep->tp, ents[i].lbuf, ents[i].len, lmr);
	if (a.st) /* fails in post order, nothing on the wire */
		return tcp_post(tep, &a);
	a.dlen = (size_t)k * RDPS_TCP_RANGE_LEN;
	a.desc = malloc(a.dlen);
	a.sg = malloc(k * sizeof(*a.sg));
	if (!a.desc || !a.sg) {
		free(a.desc);
		free(a.sg);
		return rdps_set_error(-ENOMEM,
				      "tcp: no memory for a gather "
				      "READ of %u ranges",
				      k);
	}
	a.nsg = k;
	for (unsigned i = 0; i < k; i++) {
		r = (struct rdps_tcp_range){.raddr = ents[i].raddr,
					    .rkey = ents[i].rkey->key,
					    .len = ents[i].len};
		rdps_tcp_gather_encode(&r, 1,
				       a.desc + (size_t)i * RDPS_TCP_RANGE_LEN);
		a.sg[i] = (struct tcp_sg){.dst = ents[i].lbuf,
					  .len = ents[i].len};
	}
	ret = tcp_post(tep, &a);
	if (ret) {
		free(a.desc);
		free(a.sg);
	}
	return ret;
}

int tcp_atomic_fadd(struct rdps_tp_ep *ep, uint64_t add, uint64_t *res,
		    struct rdps_tp_mr *res_mr, uint64_t raddr,
		    const struct rdps_tp_rkey *rkey, uint64_t wr_id,
		    unsigned flags)
{
	struct tcp_post_args a = {
		.type = RDPS_TCP_REQ_FADD,
		.opcode = RDPS_TP_OP_FADD,
		.lbuf = res,
		.len = sizeof(*res),
		.lmr = res_mr,
		.raddr = raddr,
		.rkey = rkey,
		.op1 = add,
		.wr_id = wr_id,
		.flags = flags,
	};

	return tcp_post(to_tcp_ep(ep), &a);
}

int tcp_atomic_cswap(struct rdps_tp_ep *ep, uint64_t cmp, uint64_t swp,
		     uint64_t *res, struct rdps_tp_mr *res_mr, uint64_t raddr,
		     const struct rdps_tp_rkey *rkey, uint64_t wr_id,
		     unsigned flags)
{
	struct tcp_post_args a = {
		.type = RDPS_TCP_REQ_CSWAP,
		.opcode = RDPS_TP_OP_CSWAP,
		.lbuf = res,
		.len = sizeof(*res),
		.lmr = res_mr,
		.raddr = raddr,
		.rkey = rkey,
		.op1 = cmp,
		.op2 = swp,
		.wr_id = wr_id,
		.flags = flags,
	};

	return tcp_post(to_tcp_ep(ep), &a);
}
