/* SPDX-License-Identifier: MIT */
/*
 * shm_cq.c - completions: the local queue filled by posts, the inbound
 * immediate rings filled by peers, and the eventfd a sleeping waiter is
 * woken through.
 */
#include <unistd.h>

#include "shm.h"

/* Move immediates out of the inbound rings, fairly across endpoints.
 * Out of line: shm_poll reaches it by a tail call, only when a ring's
 * tail moved (shm_rx_any). */
static __attribute__((noinline)) int
shm_rx_poll(struct shm_tp *tp, struct rdps_tp_comp *comps, int max)
{
	uint32_t n_eps = tp->n_eps, start = tp->rx_next;
	int n = 0;

	if (start >= n_eps)
		start = 0;
	for (uint32_t i = 0; i < n_eps && n < max; i++) {
		uint32_t at = start + i < n_eps ? start + i : start + i - n_eps;
		struct shm_ep *ep = tp->eps[at];
		uint64_t head = ep->rx_head, tail;

		tail = __atomic_load_n(&ep->rx->tail, __ATOMIC_ACQUIRE);
		if (tail == head)
			continue;
		if (rdps_unlikely(tail - head > (uint64_t)ep->rx_mask + 1)) {
			/* Only a broken peer moves its tail this way: stop
			 * trusting the ring rather than return garbage. */
			if (!ep->dead)
				rdps_warn("shm: peer pid %d corrupted its "
					  "immediate ring (head %llu tail "
					  "%llu): dropping the connection",
					  ep->peer_pid,
					  (unsigned long long)head,
					  (unsigned long long)tail);
			ep->dead = true;
			ep->rx_head = tail;
			continue;
		}
		for (; head != tail && n < max; head++, n++) {
			const struct shm_imm *s =
				&ep->rx->ent[head & ep->rx_mask];
			struct rdps_tp_comp *c = &comps[n];

			c->wr_id = 0;
			c->ep = &ep->ep;
			c->status = RDPS_TP_WC_SUCCESS;
			c->opcode = RDPS_TP_OP_RECV_IMM;
			c->pad[0] = c->pad[1] = c->pad[2] = 0;
			c->len = s->len;
			c->imm = s->imm;
		}
		ep->rx_head = head;
		__atomic_store_n(&ep->rx->head, head, __ATOMIC_RELEASE);
		tp->rx_next = at + 1;
	}
	return n;
}

/* Whether any inbound ring holds an immediate not yet taken: one load
 * of each ring's tail, no ordering (shm_rx_poll's acquire load is the one
 * that reads the entries). */
static inline bool shm_rx_any(const struct shm_tp *tp)
{
	for (uint32_t i = 0; i < tp->n_eps; i++) {
		const struct shm_ep *ep = tp->eps[i];

		if (__atomic_load_n(&ep->rx->tail, __ATOMIC_RELAXED) !=
		    ep->rx_head)
			return true;
	}
	return false;
}

static bool shm_rx_pending(struct shm_tp *tp)
{
	for (uint32_t i = 0; i < tp->n_eps; i++) {
		struct shm_ep *ep = tp->eps[i];

		if (__atomic_load_n(&ep->rx->tail, __ATOMIC_SEQ_CST) !=
		    ep->rx_head)
			return true;
	}
	return false;
}

/* One DISCONNECT completion per endpoint that broke (transport.h). */
static int shm_disc_poll(struct shm_tp *tp, struct rdps_tp_comp *comps, int max)
{
	int n = 0;

	for (uint32_t i = 0; i < tp->n_eps && n < max && tp->n_disc; i++) {
		struct shm_ep *ep = tp->eps[i];

		if (!ep->disc_pending)
			continue;
		ep->disc_pending = false;
		tp->n_disc--;
		comps[n++] = rdps_tp_disconnect_comp(&ep->ep);
	}
	return n;
}

/*
 * The rare part of a poll that already holds n completions: every
 * SHM_CHECK_EVERY polls a look at the peers (posts notice dead peers by
 * themselves; this is for endpoints nobody posts on, and rate-limits the
 * system calls to a few per second), and the DISCONNECT completions owed.
 * Out of line and reached by a tail call, so that shm_poll saves no
 * registers.
 */
static __attribute__((noinline, cold)) int
shm_poll_rare(struct shm_tp *tp, struct rdps_tp_comp *comps, int n, int max)
{
	if (!(tp->poll_count % SHM_CHECK_EVERY))
		shm_check_peers(tp, rdps_now_ns() - tp->sock_check_ns >=
					    SHM_SOCK_CHECK_NS);
	if (tp->n_disc && n < max)
		n += shm_disc_poll(tp, comps + n, max - n);
	return n;
}

/* shm_poll's rest when an inbound ring has immediates: take them, then
 * the rare part. Out of line for the same reason as shm_poll_rare. */
static __attribute__((noinline)) int
shm_poll_rx(struct shm_tp *tp, struct rdps_tp_comp *comps, int n, int max)
{
	n += shm_rx_poll(tp, comps + n, max - n);
	if (rdps_unlikely(!(tp->poll_count % SHM_CHECK_EVERY) || tp->n_disc))
		return shm_poll_rare(tp, comps, n, max);
	return n;
}

/* shm_poll when the completion queue holds entries or the instance was
 * armed: take them, then the rest. */
static __attribute__((noinline)) int
shm_poll_cq(struct shm_tp *tp, struct rdps_tp_comp *comps, int max)
{
	/* Locals: a store into comps (it has byte fields, which may alias
	 * anything) would otherwise make every loop turn reload them. */
	const struct shm_cqe *cq = tp->cq;
	uint32_t head = tp->cq_head, tail = tp->cq_tail, mask = tp->cq_mask;
	int n = 0;

	if (rdps_unlikely(tp->armed)) {
		tp->armed = false;
		__atomic_store_n(&tp->hdr->sleeping, 0, __ATOMIC_RELAXED);
	}
	for (; head != tail && n < max; head++, n++) {
		const struct shm_cqe *e = &cq[head & mask];
		struct rdps_tp_comp *c = &comps[n];
		struct rdps_tp_ep *ep = e->ep;

		/* Field by field: see struct shm_cqe. */
		c->wr_id = e->wr_id;
		c->ep = ep;
		c->status = e->status;
		c->opcode = e->opcode;
		c->pad[0] = c->pad[1] = c->pad[2] = 0;
		c->len = e->len;
		c->imm = 0;
		if (rdps_likely(ep != NULL))
			to_shm_ep(ep)->sq_retired = e->seq;
	}
	tp->cq_head = head;
	++tp->poll_count;
	if (n < max && shm_rx_any(tp))
		return shm_poll_rx(tp, comps, n, max);
	if (rdps_unlikely(!(tp->poll_count % SHM_CHECK_EVERY) || tp->n_disc))
		return shm_poll_rare(tp, comps, n, max);
	return n;
}

/* A poll that finds nothing, the spinning waiter's case, is a leaf of a
 * few loads; anything found is a tail call. */
int shm_poll(struct rdps_tp *tp_, struct rdps_tp_comp *comps, int max)
{
	struct shm_tp *tp = to_shm_tp(tp_);

	if (tp->cq_head != tp->cq_tail || rdps_unlikely(tp->armed))
		return shm_poll_cq(tp, comps, max);
	++tp->poll_count;
	if (max > 0 && shm_rx_any(tp))
		return shm_poll_rx(tp, comps, 0, max);
	if (rdps_unlikely(!(tp->poll_count % SHM_CHECK_EVERY) || tp->n_disc))
		return shm_poll_rare(tp, comps, 0, max);
	return 0;
}

int shm_wait_fd(struct rdps_tp *tp)
{
	return to_shm_tp(tp)->efd;
}

int shm_arm(struct rdps_tp *tp_)
{
	struct shm_tp *tp = to_shm_tp(tp_);
	uint64_t v;

	/* Non-blocking: one read resets the counter or finds it empty. */
	if (read(tp->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	/* Arming is the slow path: a fine time to notice departed peers
	 * and give back rings they can no longer write. */
	shm_check_peers(tp, true);
	tp->armed = true;
	/* Sequentially consistent store here and loads in shm_rx_pending(),
	 * the reverse in shm_put_imm(): either the producer sees us asleep
	 * or we see its entry. */
	__atomic_store_n(&tp->hdr->sleeping, 1, __ATOMIC_SEQ_CST);
	if (tp->cq_head != tp->cq_tail || tp->n_disc || shm_rx_pending(tp)) {
		tp->armed = false;
		__atomic_store_n(&tp->hdr->sleeping, 0, __ATOMIC_RELAXED);
		return -EAGAIN;
	}
	return 0;
}

void shm_cq_forget_ep(struct shm_tp *tp, struct shm_ep *ep)
{
	for (uint32_t i = tp->cq_head; i != tp->cq_tail; i++) {
		struct shm_cqe *e = &tp->cq[i & tp->cq_mask];

		if (e->ep == &ep->ep)
			e->ep = NULL;
	}
}
