/* SPDX-License-Identifier: MIT */
/*
 * tcp_progress.c - the tcp data path: the send queue, the receive state
 * machine, serving the peer's requests and matching its responses. Every
 * function here runs with tp->lock held, on the progress thread or on a
 * user thread (posts, busy polling).
 */
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tcp.h"

#define TCP_IOV_MAX 64
/* Payload tails at least this long are received straight into their
 * destination; shorter ones ride along with the next headers. */
#define TCP_RX_DIRECT (16 * 1024)
/* Bytes one call may receive before returning to epoll, so one busy
 * connection does not starve the others or hold the lock for long. */
#define TCP_RX_BUDGET (8u << 20)
/* Highest receive low mark (tcp_rx_lowat): what one wake-up waits for. */
#define TCP_RX_LOWAT_MAX (1u << 20)

/*
 * n bytes received toward a completion of this side (tp->base.moved, see
 * rdps_tp_wait): a waiter spins on while they flow. Large payloads (and
 * their headers) of responses and of the peer's writes, those that come
 * in pieces; not small ones, which come whole (a shard's loop spinning on
 * 4 KiB pushes of 4 workers doubled its CPU per iteration), nor a peer's
 * gather descriptors, as a shard's loop must not spin while its thread
 * answers other workers' READs. Bytes sent do not count: a request on its
 * way says nothing of when the peer answers.
 */
static void tcp_rx_moved(struct tcp_ep *ep, size_t n)
{
	struct rdps_tp *base = &ep->tp->base;

	if (ep->rx_msg.len >= TCP_RX_DIRECT &&
	    ep->rx_msg.type != RDPS_TCP_REQ_GATHER)
		__atomic_store_n(&base->moved, base->moved + n,
				 __ATOMIC_RELAXED);
}

void tcp_ep_set_events(struct tcp_ep *ep, uint32_t events)
{
	struct epoll_event ev = {.events = events,
				 .data.u64 = tcp_ep_cookie(ep)};

	if (ep->fd < 0 || ep->events == events)
		return;
	if (ep == ep->tp->direct_ep) {
		/* Out of the set: it goes back with the new events. */
		ep->events = events;
		tcp_direct_end(ep->tp);
		return;
	}
	if (epoll_ctl(ep->tp->epfd, EPOLL_CTL_MOD, ep->fd, &ev))
		rdps_err("tcp %s: epoll_ctl: %s", ep->peer, strerror(errno));
	else
		ep->events = events;
}

/* Interest follows state: no reading while a RECV_IMM waits for room, and
 * EPOLLOUT only while bytes wait for the socket. */
static void tcp_ep_update_events(struct tcp_ep *ep)
{
	tcp_ep_set_events(ep, (ep->rx_state == TCP_RX_STALLED ? 0u : EPOLLIN) |
				      (ep->tx_head ? EPOLLOUT : 0u));
}

/* Completions ------------------------------------------------------------ */

static void tcp_op_finish(struct tcp_ep *ep, int status, struct rdps_tp_ep *who)
{
	struct tcp_tp *tp = ep->tp;
	struct tcp_op *op = &ep->ops[ep->op_head];

	ep->op_head = (ep->op_head + 1) % tp->sq_depth;
	ep->op_count--;
	if (tcp_type_rd_atomic(op->type))
		ep->rd_out--;
	if (ep->rx_sg == op->sg)
		ep->rx_sg = NULL;
	free(op->sg);
	op->sg = NULL;
	tp->cq_resv--;
	if (status != RDPS_TP_WC_SUCCESS || op->signaled) {
		struct rdps_tp_comp c = {
			.wr_id = op->wr_id,
			.ep = who,
			.status = status,
			.opcode = op->opcode,
			.len = status == RDPS_TP_WC_SUCCESS ? op->len : 0,
		};

		tcp_cq_push(tp, &c, ep->unsig_done + 1);
		ep->unsig_done = 0;
	} else {
		ep->unsig_done++;
	}
}

/* Operations that failed at post time complete once all before them have,
 * to keep completions in post order. */
void tcp_op_complete_ready(struct tcp_ep *ep)
{
	while (ep->op_count && !ep->ops[ep->op_head].type)
		tcp_op_finish(ep, ep->ops[ep->op_head].status, &ep->base);
}

static void tcp_ep_flush_ops(struct tcp_ep *ep, int status,
			     struct rdps_tp_ep *who)
{
	while (ep->op_count)
		tcp_op_finish(ep, status, who);
}

/* Send side ------------------------------------------------------------- */

static void tcp_tx_pop(struct tcp_ep *ep)
{
	struct tcp_txe *t = ep->tx_head;

	ep->tx_head = t->next;
	if (!ep->tx_head)
		ep->tx_tail = NULL;
	t->next = NULL;
	t->queued = 0;
	free(t->bounce);
	t->bounce = NULL;
	if (t->is_resp) {
		if (t->rd_atomic)
			ep->rd_served--;
		t->next = ep->resp_free;
		ep->resp_free = t;
		ep->n_resp--;
	}
}

static void tcp_ep_free_tx(struct tcp_ep *ep)
{
	while (ep->tx_head)
		tcp_tx_pop(ep);
}

void tcp_tx_enqueue(struct tcp_ep *ep, struct tcp_txe *t)
{
	t->next = NULL;
	t->sent = 0;
	t->queued = 1;
	if (ep->tx_tail)
		ep->tx_tail->next = t;
	else
		ep->tx_head = t;
	ep->tx_tail = t;
}

/* ep's held requests are about to go (or be dropped): no longer held. */
static void tcp_tx_unhold(struct tcp_ep *ep)
{
	struct tcp_tp *tp = ep->tp;

	if (!ep->held)
		return;
	ep->held = 0;
	__atomic_store_n(&tp->n_held, tp->n_held - 1, __ATOMIC_RELEASE);
}

void tcp_tx_release(struct tcp_tp *tp)
{
	for (uint32_t i = 0; i < tp->n_eps_cap && tp->n_held; i++) {
		struct tcp_ep *ep = tp->eps[i];

		if (!ep || !ep->held)
			continue;
		if (ep->broken || (ep->events & EPOLLOUT))
			tcp_tx_unhold(ep); /* the progress thread sends */
		else
			tcp_tx_flush(ep);
	}
}

/* Send what the socket takes, never blocking; the rest waits for EPOLLOUT.
 * Returns -1 if the endpoint broke. */
int tcp_tx_flush(struct tcp_ep *ep)
{
	struct iovec iov[TCP_IOV_MAX];
	struct msghdr msg = {.msg_iov = iov};

	tcp_tx_unhold(ep);

	while (ep->tx_head) {
		size_t total = 0, left;
		int n = 0;
		ssize_t r;

		for (struct tcp_txe *t = ep->tx_head; t && n <= TCP_IOV_MAX - 2;
		     t = t->next) {
			size_t poff = t->sent > RDPS_TCP_HDR_LEN
					      ? t->sent - RDPS_TCP_HDR_LEN
					      : 0;

			if (t->sent < RDPS_TCP_HDR_LEN) {
				iov[n].iov_base = t->hdr + t->sent;
				iov[n].iov_len = RDPS_TCP_HDR_LEN - t->sent;
				total += iov[n++].iov_len;
			}
			if (t->plen > poff) {
				iov[n].iov_base = (void *)(t->payload + poff);
				iov[n].iov_len = t->plen - poff;
				total += iov[n++].iov_len;
			}
		}
		msg.msg_iovlen = (size_t)n;
		r = sendmsg(ep->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			tcp_ep_fail(ep, RDPS_LOG_WARN, strerror(errno));
			return -1;
		}
		left = (size_t)r;
		while (left) {
			struct tcp_txe *t = ep->tx_head;
			size_t need = RDPS_TCP_HDR_LEN + t->plen - t->sent;

			if (left < need) {
				t->sent += left;
				break;
			}
			left -= need;
			tcp_tx_pop(ep);
		}
		if ((size_t)r < total)
			break; /* the socket is full: wait for EPOLLOUT */
	}
	tcp_ep_update_events(ep);
	return 0;
}

/*
 * Give queued payloads that point into [lo, hi) their own copy. Needed
 * before a region goes away (all: also our own requests' payloads) and
 * before a peer's write or atomic changes memory that a READ response
 * still waiting in our queue must deliver as it was (responses only): the
 * target serves a connection's requests in order.
 */
void tcp_tx_detach(struct tcp_ep *ep, uint64_t lo, uint64_t hi, int all)
{
	for (struct tcp_txe *t = ep->tx_head; t; t = t->next) {
		uint64_t b = (uintptr_t)t->payload;
		void *copy;

		if (!t->plen || t->bounce || (!all && !t->is_resp) || b >= hi ||
		    b + t->plen <= lo)
			continue;
		copy = malloc(t->plen);
		if (!copy) {
			tcp_ep_fail(ep, RDPS_LOG_ERROR,
				    "out of memory copying a queued payload");
			return;
		}
		memcpy(copy, t->payload, t->plen);
		t->bounce = copy;
		t->payload = copy;
	}
}

/* A region is going away: a payload being received into it is drained
 * instead, and its operation fails. */
void tcp_rx_forget(struct tcp_ep *ep, uint64_t lo, uint64_t hi)
{
	uint64_t b = (uintptr_t)ep->rx_dst;

	if (ep->rx_state != TCP_RX_PAYLOAD)
		return;
	if (ep->rx_sg) {
		const struct tcp_op *op = &ep->ops[ep->op_head];
		int hit = 0;

		for (unsigned i = ep->rx_sg_i; i < op->nsg && !hit; i++) {
			b = (uintptr_t)ep->rx_sg[i].dst;
			hit = b < hi && b + ep->rx_sg[i].len > lo;
		}
		if (!hit)
			return;
		ep->rx_sg = NULL;
	} else if (!ep->rx_dst || b >= hi || b + ep->rx_left <= lo) {
		return;
	}
	ep->rx_dst = NULL;
	ep->rx_status = ep->rx_msg.type & RDPS_TCP_RESP
				? RDPS_TP_WC_LOC_PROT_ERR
				: RDPS_TP_WC_REM_ACCESS_ERR;
}

/* Connection loss ---------------------------------------------------------- */

void tcp_ep_shut(struct tcp_ep *ep, int status, struct rdps_tp_ep *who)
{
	struct tcp_tp *tp = ep->tp;

	if (ep == tp->direct_ep)
		tp->direct_ep = NULL; /* out of the set already */
	else if (ep->fd >= 0)
		epoll_ctl(tp->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
	if (ep->fd >= 0) {
		close(ep->fd);
		ep->fd = -1;
	}
	if (ep->rx_state == TCP_RX_STALLED)
		tp->n_stalled--;
	ep->rx_state = TCP_RX_HDR;
	ep->rx_off = ep->rx_len = 0;
	ep->rx_sg = NULL;
	free(ep->rx_gbuf);
	ep->rx_gbuf = NULL;
	tcp_tx_unhold(ep);
	tcp_ep_free_tx(ep);
	tcp_ep_flush_ops(ep, status, who);
}

void tcp_ep_fail(struct tcp_ep *ep, int lvl, const char *why)
{
	struct tcp_tp *tp = ep->tp;

	if (ep->broken)
		return;
	if (!ep->op_count && lvl > RDPS_LOG_ERROR)
		lvl = RDPS_LOG_INFO; /* nothing lost: an orderly goodbye */
	rdps_log(lvl, "tcp connection with %s broken: %s (%u operations fail)",
		 ep->peer, why, ep->op_count);
	ep->broken = 1;
	tcp_ep_shut(ep, RDPS_TP_WC_CONN_ERR, &ep->base);
	/* The user learns it even with nothing outstanding: poll hands out
	 * a DISCONNECT completion (transport.h). */
	ep->disc_pending = 1;
	__atomic_store_n(&tp->n_disc, tp->n_disc + 1, __ATOMIC_RELEASE);
	tcp_cq_wake(tp);
}

/* Serving the peer's requests ------------------------------------------- */

/* owned: payload is a copy the response frees once sent (also if it
 * cannot be queued), or NULL. */
static void tcp_respond(struct tcp_ep *ep, const struct rdps_tcp_msg *req,
			int status, const void *payload, size_t plen,
			uint64_t op1, void *owned)
{
	struct rdps_tcp_msg m = {
		.type = (uint8_t)(req->type | RDPS_TCP_RESP),
		.status = (uint8_t)status,
		.len = (uint32_t)plen,
		.seq = req->seq,
		.op1 = op1,
	};
	int rd_atomic = tcp_type_rd_atomic(req->type);
	struct tcp_txe *t;

	if (ep->n_resp >= TCP_MAX_RESP) {
		free(owned);
		tcp_ep_fail(ep, RDPS_LOG_ERROR,
			    "peer has more requests outstanding than any "
			    "send queue allows");
		return;
	}
	t = ep->resp_free;
	if (t) {
		ep->resp_free = t->next;
	} else {
		t = malloc(sizeof(*t));
		if (!t) {
			free(owned);
			tcp_ep_fail(ep, RDPS_LOG_ERROR,
				    "out of memory for a response");
			return;
		}
	}
	t->payload = payload;
	t->plen = plen;
	t->bounce = owned;
	t->is_resp = 1;
	t->rd_atomic = (uint8_t)rd_atomic;
	rdps_tcp_wire_encode(&m, t->hdr);
	ep->n_resp++;
	ep->rd_served += (unsigned)rd_atomic;
	tcp_tx_enqueue(ep, t);
}

static void tcp_serve_atomic(struct tcp_ep *ep, const struct rdps_tcp_msg *m)
{
	int st = tcp_mr_check(ep, m->rkey, RDPS_TP_ACCESS_REMOTE_ATOMIC,
			      m->raddr, 8);
	uint64_t old = 0;

	if (st == RDPS_TP_WC_SUCCESS) {
		uint64_t *p = (uint64_t *)(uintptr_t)m->raddr;

		/* Every queued READ response takes its bytes now, not
		 * only one of this word: a READ posted before the atomic
		 * must not see what a party that saw the atomic writes
		 * after it (post order, transport.h "Ordering"; as for a
		 * gather). Only responses still queued behind a full
		 * socket are copied. */
		tcp_tx_detach(ep, 0, UINT64_MAX, 0);
		if (ep->broken)
			return;
		if (m->type == RDPS_TCP_REQ_FADD) {
			old = __atomic_fetch_add(p, m->op1, __ATOMIC_SEQ_CST);
		} else {
			old = m->op1;
			/* On failure old becomes the current value; on
			 * success it already is: either way the old one. */
			__atomic_compare_exchange_n(p, &old, m->op2, 0,
						    __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST);
		}
	}
	tcp_respond(ep, m, st, NULL, 0, old, NULL);
}

static void tcp_serve_request(struct tcp_ep *ep, const struct rdps_tcp_msg *m)
{
	int st;

	if (m->seq != ep->peer_seq) {
		tcp_ep_fail(ep, RDPS_LOG_ERROR, "request out of sequence");
		return;
	}
	if (tcp_type_rd_atomic(m->type) &&
	    ep->rd_served >= RDPS_TP_MAX_RD_ATOMIC) {
		/* Its own posts would have got -EAGAIN: a peer past the
		 * bound is flooding us, and each response held costs memory
		 * (a copy of the data once that is written to). Checked
		 * before an atomic changes anything. */
		tcp_ep_fail(
			ep, RDPS_LOG_ERROR,
			"peer has more reads and atomics outstanding "
			"than the " TCP_STR(
				RDPS_TP_MAX_RD_ATOMIC) " allowed "
						       "(RDPS_TP_MAX_RD_ATOMIC)"
						       "; disconnected");
		return;
	}
	ep->peer_seq++;
	ep->rx_msg = *m;
	switch (m->type) {
	case RDPS_TCP_REQ_READ:
		st = tcp_mr_check(ep, m->rkey, RDPS_TP_ACCESS_REMOTE_READ,
				  m->raddr, m->op1);
		if (st == RDPS_TP_WC_SUCCESS)
			tcp_respond(ep, m, st, (void *)(uintptr_t)m->raddr,
				    m->op1, 0, NULL);
		else
			tcp_respond(ep, m, st, NULL, 0, 0, NULL);
		return;
	case RDPS_TCP_REQ_GATHER:
		/* The descriptors first (the header decoder bounded their
		 * length); tcp_serve_gather answers once they are in. */
		ep->rx_gbuf = malloc(m->len);
		if (!ep->rx_gbuf) {
			tcp_ep_fail(ep, RDPS_LOG_ERROR,
				    "out of memory for a gather request");
			return;
		}
		ep->rx_status = RDPS_TP_WC_SUCCESS;
		ep->rx_dst = ep->rx_gbuf;
		ep->rx_left = m->len;
		ep->rx_state = TCP_RX_PAYLOAD;
		return;
	case RDPS_TCP_REQ_WRITE:
	case RDPS_TCP_REQ_WRITE_IMM:
		/* Zero-length writes touch nothing, so no key is checked
		 * (write-with-immediate of 0 bytes is a pure notification). */
		st = m->len ? tcp_mr_check(ep, m->rkey,
					   RDPS_TP_ACCESS_REMOTE_WRITE,
					   m->raddr, m->len)
			    : RDPS_TP_WC_SUCCESS;
		if (st == RDPS_TP_WC_SUCCESS && m->len) {
			tcp_tx_detach(ep, m->raddr, m->raddr + m->len, 0);
			if (ep->broken)
				return;
		}
		ep->rx_status = st;
		ep->rx_dst = st == RDPS_TP_WC_SUCCESS
				     ? (uint8_t *)(uintptr_t)m->raddr
				     : NULL;
		ep->rx_left = m->len;
		ep->rx_state = TCP_RX_PAYLOAD;
		return;
	default:
		tcp_serve_atomic(ep, m);
		return;
	}
}

/*
 * A gather request's descriptors are in: check every range, then copy them
 * all into one response (tcp.h). The copy, not zero copy as for a READ,
 * because one response's payload is one buffer; RDPS_TP_GATHER_MAX_BYTES
 * and RDPS_TP_MAX_RD_ATOMIC bound what a peer makes us hold. Hostile
 * descriptors (ragged, too many, lengths that do not add up) break the
 * connection with the reason logged, as a malformed header does.
 */
static void tcp_serve_gather(struct tcp_ep *ep)
{
	struct rdps_tcp_range r[RDPS_TP_GATHER_MAX];
	const struct rdps_tcp_msg *m = &ep->rx_msg;
	const char *why = "";
	int k, st = RDPS_TP_WC_SUCCESS;
	uint8_t *buf, *p;

	k = rdps_tcp_gather_decode(ep->rx_gbuf, m->len, m->op1, r, &why);
	free(ep->rx_gbuf);
	ep->rx_gbuf = NULL;
	ep->rx_state = TCP_RX_HDR;
	if (k < 0) {
		tcp_ep_fail(ep, RDPS_LOG_ERROR, why);
		return;
	}
	for (int i = 0; i < k && !st; i++)
		st = tcp_mr_check(ep, r[i].rkey, RDPS_TP_ACCESS_REMOTE_READ,
				  r[i].raddr, r[i].len);
	if (st) {
		tcp_respond(ep, m, st, NULL, 0, 0, NULL);
		return;
	}
	/* A READ answered before this gather but still queued sends its
	 * bytes straight from the region, so it would take them after ours:
	 * a reader that checks a header READ first (the shard's applied
	 * clock) and then gathers what the header vouches for would get the
	 * gather's bytes older than the header's. Copy them now, in post
	 * order (transport.h, "Ordering"). */
	tcp_tx_detach(ep, 0, UINT64_MAX, 0);
	if (ep->broken)
		return;
	buf = malloc(m->op1);
	if (!buf) {
		tcp_respond(ep, m, RDPS_TP_WC_GENERAL_ERR, NULL, 0, 0, NULL);
		return;
	}
	p = buf;
	for (int i = 0; i < k; i++) {
		memcpy(p, (const void *)(uintptr_t)r[i].raddr, r[i].len);
		p += r[i].len;
	}
	tcp_respond(ep, m, st, buf, m->op1, 0, buf);
}

/* Returns 0 if the RECV_IMM must wait for room in the completion ring. */
static int tcp_write_done(struct tcp_ep *ep)
{
	struct tcp_tp *tp = ep->tp;
	const struct rdps_tcp_msg *m = &ep->rx_msg;

	if (m->type == RDPS_TCP_REQ_WRITE_IMM &&
	    ep->rx_status == RDPS_TP_WC_SUCCESS) {
		struct rdps_tp_comp c = {
			.ep = &ep->base,
			.status = RDPS_TP_WC_SUCCESS,
			.opcode = RDPS_TP_OP_RECV_IMM,
			.len = m->len,
			.imm = m->imm,
		};

		if (!tcp_cq_has_room_imm(tp)) {
			/* Like an RNR: stop reading this connection until
			 * the user polls, rather than drop the immediate. */
			if (ep->rx_state != TCP_RX_STALLED) {
				ep->rx_state = TCP_RX_STALLED;
				tp->n_stalled++;
				tcp_ep_update_events(ep);
			}
			return 0;
		}
		tcp_cq_push(tp, &c, 0);
	}
	if (ep->rx_state == TCP_RX_STALLED)
		tp->n_stalled--;
	ep->rx_state = TCP_RX_HDR;
	tcp_respond(ep, m, ep->rx_status, NULL, 0, 0, NULL);
	tcp_ep_update_events(ep);
	return 1;
}

/* Matching our responses ----------------------------------------------- */

static void tcp_take_response(struct tcp_ep *ep, const struct rdps_tcp_msg *m)
{
	struct tcp_op *op = &ep->ops[ep->op_head];

	if (!ep->op_count || !op->type || op->txe.queued || m->seq != op->seq ||
	    (m->type & ~RDPS_TCP_RESP) != op->type) {
		tcp_ep_fail(ep, RDPS_LOG_ERROR,
			    "response does not match the oldest outstanding "
			    "request");
		return;
	}
	if ((op->type == RDPS_TCP_REQ_READ ||
	     op->type == RDPS_TCP_REQ_GATHER) &&
	    m->status == RDPS_TP_WC_SUCCESS) {
		if (m->len != op->len) {
			tcp_ep_fail(ep, RDPS_LOG_ERROR,
				    "read response length differs from the "
				    "request");
			return;
		}
		ep->rx_msg = *m;
		ep->rx_status = RDPS_TP_WC_SUCCESS;
		ep->rx_dst = op->sg ? NULL : op->lbuf;
		ep->rx_sg = op->sg;
		ep->rx_sg_i = 0;
		ep->rx_sg_off = 0;
		ep->rx_left = m->len;
		ep->rx_state = TCP_RX_PAYLOAD;
		return;
	}
	if ((op->type == RDPS_TCP_REQ_FADD || op->type == RDPS_TCP_REQ_CSWAP) &&
	    m->status == RDPS_TP_WC_SUCCESS)
		memcpy(op->lbuf, &m->op1, sizeof(m->op1));
	tcp_op_finish(ep, m->status, &ep->base);
	tcp_op_complete_ready(ep);
}

/* Receive side ------------------------------------------------------------- */

static void tcp_payload_done(struct tcp_ep *ep)
{
	if (ep->rx_msg.type & RDPS_TCP_RESP) {
		ep->rx_state = TCP_RX_HDR;
		ep->rx_sg = NULL;
		tcp_op_finish(ep, ep->rx_status, &ep->base);
		tcp_op_complete_ready(ep);
	} else if (ep->rx_msg.type == RDPS_TCP_REQ_GATHER) {
		tcp_serve_gather(ep);
	} else {
		tcp_write_done(ep);
	}
}

/* n payload bytes from the receive buffer to where they go: the gather's
 * places in turn, the destination, or nowhere (drained). */
static void tcp_rx_place(struct tcp_ep *ep, const uint8_t *src, size_t n)
{
	if (ep->rx_sg) {
		while (n) {
			struct tcp_sg *g = &ep->rx_sg[ep->rx_sg_i];
			size_t c = g->len - ep->rx_sg_off;

			if (c > n)
				c = n;
			memcpy(g->dst + ep->rx_sg_off, src, c);
			src += c;
			n -= c;
			ep->rx_sg_off += (uint32_t)c;
			if (ep->rx_sg_off == g->len) {
				ep->rx_sg_i++;
				ep->rx_sg_off = 0;
			}
		}
	} else if (ep->rx_dst) {
		memcpy(ep->rx_dst, src, n);
		ep->rx_dst += n;
	}
}

static void tcp_take_header(struct tcp_ep *ep)
{
	struct rdps_tcp_msg m;
	const char *why = "";

	if (rdps_tcp_wire_decode(ep->rxbuf + ep->rx_off,
				 ep->rx_len - ep->rx_off, &m, &why)) {
		tcp_ep_fail(ep, RDPS_LOG_ERROR, why);
		return;
	}
	ep->rx_off += RDPS_TCP_HDR_LEN;
	if (m.type & RDPS_TCP_RESP)
		tcp_take_response(ep, &m);
	else
		tcp_serve_request(ep, &m);
	/* A payload toward a completion begins: its bytes follow. */
	if (ep->rx_state == TCP_RX_PAYLOAD)
		tcp_rx_moved(ep, RDPS_TCP_HDR_LEN);
}

/* recv() wrapper: > 0 bytes, 0 would block, -1 the endpoint broke. */
static ssize_t tcp_recv(struct tcp_ep *ep, void *buf, size_t len)
{
	ssize_t r;

	do {
		r = recv(ep->fd, buf, len, MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	if (r > 0)
		return r;
	if (r == 0) {
		tcp_ep_fail(ep, RDPS_LOG_WARN, "peer closed the connection");
		return -1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	tcp_ep_fail(ep, RDPS_LOG_WARN, strerror(errno));
	return -1;
}

static void tcp_ep_rx_some(struct tcp_ep *ep)
{
	size_t budget = TCP_RX_BUDGET;
	int drained = 0;
	ssize_t r;

	if (ep->broken)
		return;
	if (ep->rx_state == TCP_RX_STALLED && !tcp_write_done(ep))
		return;
	while (!ep->broken && ep->rx_state != TCP_RX_STALLED) {
		size_t avail = ep->rx_len - ep->rx_off;

		if (ep->rx_state == TCP_RX_HDR) {
			if (avail >= RDPS_TCP_HDR_LEN) {
				tcp_take_header(ep);
				continue;
			}
			/* A short read emptied the socket; epoll is level
			 * triggered and reports what comes later, so a recv
			 * that would only say EAGAIN is saved. */
			if (!budget || drained)
				return;
			if (ep->rx_off) {
				memmove(ep->rxbuf, ep->rxbuf + ep->rx_off,
					avail);
				ep->rx_off = 0;
				ep->rx_len = avail;
			}
			r = tcp_recv(ep, ep->rxbuf + ep->rx_len,
				     TCP_RXBUF_LEN - ep->rx_len);
			if (r <= 0)
				return;
			drained = (size_t)r < TCP_RXBUF_LEN - ep->rx_len;
			ep->rx_len += (size_t)r;
			budget = (size_t)r < budget ? budget - (size_t)r : 0;
			continue;
		}

		/* TCP_RX_PAYLOAD: first what the buffer holds */
		if (avail) {
			size_t n = avail < ep->rx_left ? avail : ep->rx_left;

			tcp_rx_place(ep, ep->rxbuf + ep->rx_off, n);
			tcp_rx_moved(ep, n);
			ep->rx_off += n;
			ep->rx_left -= n;
		}
		if (!ep->rx_left) {
			tcp_payload_done(ep);
			continue;
		}
		ep->rx_off = ep->rx_len = 0;
		if (!budget || drained)
			return;
		if (ep->rx_dst && ep->rx_left >= TCP_RX_DIRECT) {
			r = tcp_recv(ep, ep->rx_dst, ep->rx_left);
			if (r <= 0)
				return;
			drained = (size_t)r < ep->rx_left;
			tcp_rx_moved(ep, (size_t)r);
			ep->rx_dst += r;
			ep->rx_left -= (size_t)r;
		} else {
			r = tcp_recv(ep, ep->rxbuf, TCP_RXBUF_LEN);
			if (r <= 0)
				return;
			drained = (size_t)r < TCP_RXBUF_LEN;
			ep->rx_len = (size_t)r;
		}
		budget = (size_t)r < budget ? budget - (size_t)r : 0;
	}
}

/*
 * A large payload is still to come: let the socket report readable only
 * once it has all arrived (or TCP_RX_LOWAT_MAX of it), not for every
 * piece. Read piece by piece, a 1 MiB READ response on loopback cost the
 * reader a wake-up per piece and the sender a window update to process
 * per piece (one and a half times a whole-response read); and the kernel
 * opens the window to the low mark, so the sender sends it at once.
 * Never more than the message's own rest: later bytes may not come
 * before we answer.
 */
static void tcp_rx_lowat(struct tcp_ep *ep)
{
	unsigned want = 0;
	int v;

	if (ep->broken)
		return;
	if (ep->rx_state == TCP_RX_PAYLOAD && ep->rx_left >= TCP_RX_DIRECT)
		want = ep->rx_left < TCP_RX_LOWAT_MAX ? (unsigned)ep->rx_left
						      : TCP_RX_LOWAT_MAX;
	if (want == ep->rx_lowat)
		return;
	v = want ? (int)want : 1;
	if (setsockopt(ep->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)))
		rdps_dbg("tcp %s: SO_RCVLOWAT %d: %s", ep->peer, v,
			 strerror(errno));
	else
		ep->rx_lowat = want;
}

void tcp_ep_rx(struct tcp_ep *ep)
{
	tcp_ep_rx_some(ep);
	tcp_rx_lowat(ep);
}

void tcp_ep_handle(struct tcp_ep *ep, uint32_t events)
{
	if ((events & EPOLLOUT) && tcp_tx_flush(ep))
		return;
	if (ep->rx_state == TCP_RX_STALLED &&
	    (events & (EPOLLERR | EPOLLHUP))) {
		/* Reading is paused, so the error would be reported again
		 * and again: the connection is gone, give up now. */
		tcp_ep_fail(ep, RDPS_LOG_WARN, "connection reset");
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		tcp_ep_rx(ep);
	/* Responses produced while reading go out in one batch. */
	if (!ep->broken && ep->tx_head && !(ep->events & EPOLLOUT))
		tcp_tx_flush(ep);
}
