/* SPDX-License-Identifier: MIT */
/*
 * tcp_cq.c - the completion ring of a tcp instance, filled by the progress
 * thread (or a polling user) and emptied by poll, and the eventfd a
 * sleeping waiter is woken through.
 */
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tcp.h"

int tcp_cq_init(struct tcp_tp *tp)
{
	tp->cq_fd = -1;
	tp->cq_ring = 2 * tp->cq_depth;
	tp->cq = calloc(tp->cq_ring, sizeof(*tp->cq));
	tp->cq_rel = calloc(tp->cq_ring, sizeof(*tp->cq_rel));
	if (!tp->cq || !tp->cq_rel) {
		tcp_cq_fini(tp);
		return rdps_set_error(-ENOMEM,
				      "out of memory for a %u-entry "
				      "completion queue",
				      tp->cq_depth);
	}
	tp->cq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (tp->cq_fd < 0) {
		int ret = rdps_set_error(-errno, "tcp: eventfd: %s",
					 strerror(errno));

		tcp_cq_fini(tp);
		return ret;
	}
	return 0;
}

void tcp_cq_fini(struct tcp_tp *tp)
{
	if (tp->cq_fd >= 0)
		close(tp->cq_fd);
	tp->cq_fd = -1;
	free(tp->cq);
	free(tp->cq_rel);
	tp->cq = NULL;
	tp->cq_rel = NULL;
}

int tcp_cq_has_room(struct tcp_tp *tp)
{
	return tp->cq_used + tp->cq_resv < tp->cq_depth;
}

/*
 * A peer's immediate may use the ring's second half. Were it held to
 * cq_depth like a post, a ring fully reserved by our own outstanding
 * operations would stall the connection whose later bytes carry the
 * responses that release those reservations: a deadlock. Since posts keep
 * used + reserved <= cq_depth, a stall now implies cq_used > 0, which the
 * user's next poll drains.
 */
int tcp_cq_has_room_imm(struct tcp_tp *tp)
{
	return tp->cq_used + tp->cq_resv < tp->cq_ring;
}

void tcp_cq_wake(struct tcp_tp *tp)
{
	uint64_t one = 1;

	if (!tp->armed)
		return;
	tp->armed = 0;
	/* Cannot fail short of a counter overflow, which a reader resets
	 * long before. */
	if (write(tp->cq_fd, &one, sizeof(one)) < 0)
		rdps_dbg("tcp cq eventfd write: %s", strerror(errno));
}

void tcp_cq_push(struct tcp_tp *tp, const struct rdps_tp_comp *c,
		 uint32_t release)
{
	unsigned idx = (tp->cq_head + tp->cq_used) % tp->cq_ring;

	tp->cq[idx] = *c;
	tp->cq_rel[idx] = release;
	__atomic_store_n(&tp->cq_used, tp->cq_used + 1, __ATOMIC_RELEASE);
	tcp_cq_wake(tp);
}

/* Completions already queued must not point at freed memory. */
void tcp_cq_forget_ep(struct tcp_tp *tp, const struct rdps_tp_ep *ep)
{
	for (unsigned i = 0; i < tp->cq_used; i++) {
		struct rdps_tp_comp *c =
			&tp->cq[(tp->cq_head + i) % tp->cq_ring];

		if (c->ep == ep)
			c->ep = NULL;
	}
}

int tcp_cq_take(struct tcp_tp *tp, struct rdps_tp_comp *comps, int max)
{
	int n = 0;

	while (n < max && tp->cq_used) {
		if (tp->cq_rel[tp->cq_head] && tp->cq[tp->cq_head].ep)
			to_tcp_ep(tp->cq[tp->cq_head].ep)->sq_busy -=
				tp->cq_rel[tp->cq_head];
		comps[n++] = tp->cq[tp->cq_head];
		tp->cq_head = (tp->cq_head + 1) % tp->cq_ring;
		__atomic_store_n(&tp->cq_used, tp->cq_used - 1,
				 __ATOMIC_RELEASE);
	}
	for (uint32_t i = 0; n < max && tp->n_disc && i < tp->n_eps_cap; i++) {
		struct tcp_ep *ep = tp->eps[i];

		if (!ep || !ep->disc_pending)
			continue;
		ep->disc_pending = 0;
		__atomic_store_n(&tp->n_disc, tp->n_disc - 1, __ATOMIC_RELEASE);
		comps[n++] = rdps_tp_disconnect_comp(&ep->base);
	}
	return n;
}

/* Not cq_fd alone: an epoll set over it and the sockets, so that a
 * sleeping user is woken by the bytes it waits for (tcp.h "Progress"). */
int tcp_cq_wait_fd(struct rdps_tp *base)
{
	struct tcp_tp *tp = to_tcp_tp(base);

	return tp->serve_thread ? tp->cq_fd : tp->user_epfd;
}

int tcp_cq_arm(struct rdps_tp *base)
{
	struct tcp_tp *tp = to_tcp_tp(base);
	uint64_t v;
	int ret = 0;

	pthread_mutex_lock(&tp->lock);
	/* Nothing posted stays held while the user sleeps, and its wait
	 * fd sees every socket. */
	tcp_tx_release(tp);
	tcp_direct_end(tp);
	tp->user_polls = 0;
	if (tp->cq_used || tp->n_disc) {
		ret = -EAGAIN;
	} else {
		/* Drop a stale wake-up; nonblocking, so EAGAIN is fine. */
		if (read(tp->cq_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			rdps_dbg("tcp cq eventfd read: %s", strerror(errno));
		tp->armed = 1;
		/* The user sleeps on the sockets: the progress thread may
		 * nap until the user's next poll kicks it. */
		if (!tp->serve_thread)
			__atomic_store_n(&tp->user_asleep, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&tp->lock);
	return ret;
}
