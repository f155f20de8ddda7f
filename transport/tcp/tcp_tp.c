/* SPDX-License-Identifier: MIT */
/*
 * tcp_tp.c - tcp transport instance: who drives progress (a user thread
 * inside poll and asleep on its wait fd, else the progress thread; tcp.h
 * "Progress") and the ops table.
 */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tcp.h"

#define TCP_WAKE_COOKIE UINT64_MAX
#define TCP_EVENTS_MAX 64
/* While a user thread drives the sockets itself, the progress thread keeps
 * off them and checks back this often (ns): also the longest a peer's
 * request waits for the thread once the user stays away from poll. */
#define TCP_NAP_NS 1000000ull
/* While the user sleeps on the sockets the thread naps until kicked, but
 * looks at them this often (ms): a user that armed and then went away
 * without polling must not leave the peer's requests unserved. */
#define TCP_DEEP_NAP_MS 20
/* The longest the thread waits on the epoll set at once (ms): a user that
 * came back to poll takes the bytes that would have woken it, and may take
 * its socket out of the set only once the thread is off it (tcp.h "Direct
 * reads"). */
#define TCP_EPOLL_NAP_MS 20

static void tcp_tp_handle(struct tcp_tp *tp, const struct epoll_event *evs,
			  int n)
{
	for (int i = 0; i < n; i++) {
		struct tcp_ep *ep;

		if (evs[i].data.u64 == TCP_WAKE_COOKIE)
			continue; /* only the progress thread reads it */
		ep = tcp_ep_lookup(tp, evs[i].data.u64);
		if (ep) /* else closed since epoll reported it */
			tcp_ep_handle(ep, evs[i].events);
	}
}

/* Serve whatever epoll reports, with tp->lock held. */
void tcp_tp_progress_events(struct tcp_tp *tp, int timeout_ms)
{
	struct epoll_event evs[TCP_EVENTS_MAX];
	int n = epoll_wait(tp->epfd, evs, TCP_EVENTS_MAX, timeout_ms);

	tcp_tp_handle(tp, evs, n);
}

void tcp_direct_end(struct tcp_tp *tp)
{
	struct tcp_ep *ep = tp->direct_ep;
	struct epoll_event ev;

	if (!ep)
		return;
	tp->direct_ep = NULL;
	ev.events = ep->events;
	ev.data.u64 = tcp_ep_cookie(ep);
	if (epoll_ctl(tp->epfd, EPOLL_CTL_ADD, ep->fd, &ev))
		/* Nobody but a polling user would ever read it again. */
		tcp_ep_fail(ep, RDPS_LOG_ERROR,
			    "cannot watch the socket again");
}

/*
 * A user's poll drives the sockets, tp->lock held: the sole endpoint's by
 * one recv, with no epoll_wait before it, else through epoll (tcp.h
 * "Direct reads"). Only an endpoint that wants EPOLLIN alone and has no
 * receive low mark: one with unsent bytes needs EPOLLOUT, and one whose
 * large payload is coming is read once it is all there.
 */
static void tcp_tp_progress_user(struct tcp_tp *tp)
{
	struct tcp_ep *ep = tp->sole_ep;

	tp->user_polls++;
	if (ep && !ep->broken && ep->events == EPOLLIN && !ep->rx_lowat) {
		if (!tp->direct_ep && !tp->serve_thread && !tp->pt_epoll &&
		    tp->user_polls >= TCP_DIRECT_AFTER &&
		    !epoll_ctl(tp->epfd, EPOLL_CTL_DEL, ep->fd, NULL))
			tp->direct_ep = ep;
		tp->user_direct++;
		tcp_ep_handle(ep, EPOLLIN);
		return;
	}
	/* Out again only after as many polls that could read directly: a
	 * stream of large payloads (each with its low mark) would take two
	 * epoll_ctl calls per payload otherwise. */
	tp->user_polls = 0;
	tcp_direct_end(tp);
	tp->user_epolls++;
	tcp_tp_progress_events(tp, 0);
}

/* Sleep on the stop and kick eventfds for timeout_ms; 1 if kicked (the
 * kick is consumed) or stopped, 0 on timeout. */
static int tcp_nap(struct tcp_tp *tp, int timeout_ms)
{
	struct pollfd pfd[2] = {{.fd = tp->wake_fd, .events = POLLIN},
				{.fd = tp->nap_fd, .events = POLLIN}};
	uint64_t v;

	if (poll(pfd, 2, timeout_ms) <= 0)
		return 0;
	if ((pfd[1].revents & POLLIN) && read(tp->nap_fd, &v, sizeof(v)) < 0 &&
	    errno != EAGAIN)
		rdps_dbg("tcp nap eventfd read: %s", strerror(errno));
	return 1;
}

/*
 * The user woke up from a sleep on its wait fd (tcp_cq_arm): it drives the
 * sockets again, and the progress thread, if it napped until now, must go
 * back to checking when the user leaves. Called by poll.
 */
static void tcp_user_awake(struct tcp_tp *tp)
{
	uint64_t one = 1;

	/* Sequentially consistent, as in the thread's deep nap: either it
	 * sees the user awake or the user sees it asleep. */
	__atomic_store_n(&tp->user_asleep, 0, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&tp->pt_deep, __ATOMIC_SEQ_CST) &&
	    write(tp->nap_fd, &one, sizeof(one)) < 0)
		rdps_dbg("tcp nap eventfd write: %s", strerror(errno));
}

/*
 * Keep off the sockets a user thread drives ("Progress" in tcp.h): nap
 * while it polled within TCP_NAP_NS, and, once a nap is over and the user
 * sleeps on the sockets, until its wake-up kicks (or TCP_DEEP_NAP_MS): so
 * a sleeping user costs no wake-ups here, and one kick at most per nap.
 * Returns 0 when the thread should serve the sockets itself.
 */
static int tcp_keep_off(struct tcp_tp *tp, int *napped)
{
	uint64_t last = __atomic_load_n(&tp->last_user_poll, __ATOMIC_RELAXED);

	if (tp->serve_thread)
		return 0;
	if (__atomic_load_n(&tp->user_asleep, __ATOMIC_RELAXED) && *napped) {
		int kicked = 1;

		__atomic_store_n(&tp->pt_deep, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&tp->user_asleep, __ATOMIC_SEQ_CST))
			kicked = tcp_nap(tp, TCP_DEEP_NAP_MS);
		__atomic_store_n(&tp->pt_deep, 0, __ATOMIC_RELAXED);
		if (!kicked &&
		    __atomic_load_n(&tp->user_asleep, __ATOMIC_RELAXED) &&
		    pthread_mutex_trylock(&tp->lock) == 0) {
			/* A user asleep on the sockets has served what
			 * is pending by now; one that armed and left has
			 * not. */
			tcp_tp_progress_events(tp, 0);
			pthread_mutex_unlock(&tp->lock);
		}
		/* Kicked: the user is back, so nap before napping deep
		 * again (one kick per TCP_NAP_NS at most). */
		*napped = !kicked;
		return 1;
	}
	if (__atomic_load_n(&tp->user_asleep, __ATOMIC_RELAXED) ||
	    (last && rdps_now_ns() - last < TCP_NAP_NS)) {
		/* A second thread woken by every message would only fight
		 * the user for the lock and, on a small machine, for the
		 * cores. */
		tcp_nap(tp, (int)(TCP_NAP_NS / 1000000));
		*napped = 1;
		return 1;
	}
	*napped = 0;
	return 0;
}

static void *tcp_progress_thread(void *arg)
{
	struct tcp_tp *tp = arg;
	struct epoll_event evs[TCP_EVENTS_MAX];
	int napped = 0;
	sigset_t all;

	/* Signals belong to the application's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	for (;;) {
		int n;

		if (__atomic_load_n(&tp->stop, __ATOMIC_ACQUIRE))
			break;
		if (tcp_keep_off(tp, &napped))
			continue;
		if (!tp->serve_thread) {
			/* The user is away: every socket into the set, and
			 * none out while this thread waits on it. */
			pthread_mutex_lock(&tp->lock);
			tp->pt_epoll = 1;
			tcp_direct_end(tp);
			pthread_mutex_unlock(&tp->lock);
		}
		n = epoll_wait(tp->epfd, evs, TCP_EVENTS_MAX,
			       tp->serve_thread ? -1 : TCP_EPOLL_NAP_MS);
		if (n < 0 && errno != EINTR) {
			rdps_err("tcp progress thread: epoll_wait: %s",
				 strerror(errno));
			break;
		}
		pthread_mutex_lock(&tp->lock);
		tp->pt_epoll = 0;
		if (__atomic_load_n(&tp->stop, __ATOMIC_ACQUIRE)) {
			pthread_mutex_unlock(&tp->lock);
			break;
		}
		tcp_tp_handle(tp, evs, n);
		pthread_mutex_unlock(&tp->lock);
	}
	return NULL;
}

/* The user's wait fd: readable when a socket has something to serve or
 * a completion was queued for an armed user. */
static int tcp_user_epoll_init(struct tcp_tp *tp)
{
	struct epoll_event ev = {.events = EPOLLIN};

	tp->user_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (tp->user_epfd < 0)
		return rdps_set_error(-errno,
				      "tcp: epoll_create1: %s (raise the "
				      "open-file limit?)",
				      strerror(errno));
	if (epoll_ctl(tp->user_epfd, EPOLL_CTL_ADD, tp->epfd, &ev) ||
	    epoll_ctl(tp->user_epfd, EPOLL_CTL_ADD, tp->cq_fd, &ev)) {
		int ret = rdps_set_error(-errno, "tcp: epoll_ctl: %s",
					 strerror(errno));

		close(tp->user_epfd);
		return ret;
	}
	return 0;
}

static int tcp_init(const struct rdps_tp_cfg *cfg, struct rdps_tp **tp_out)
{
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = TCP_WAKE_COOKIE};
	struct tcp_tp *tp;
	int ret;

	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return rdps_set_error(-ENOMEM, "out of memory for the tcp "
					       "transport");
	tp->sq_depth = cfg->sq_depth;
	tp->cq_depth = cfg->cq_depth;
	tp->token = cfg->token;
	tp->serve_thread =
		cfg->serve_thread && cfg->poll_mode != RDPS_TP_POLL_BUSY;
	tp->mr_free = TCP_NO_SLOT;
	ret = tcp_cq_init(tp);
	if (ret)
		goto err_free_tp;
	ret = pthread_mutex_init(&tp->lock, NULL);
	if (ret) {
		ret = rdps_set_error(-ret, "tcp: mutex init: %s",
				     strerror(ret));
		goto err_free_cq;
	}
	tp->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (tp->epfd < 0) {
		ret = rdps_set_error(-errno,
				     "tcp: epoll_create1: %s (raise "
				     "the open-file limit?)",
				     strerror(errno));
		goto err_destroy_lock;
	}
	tp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (tp->wake_fd < 0) {
		ret = rdps_set_error(-errno, "tcp: eventfd: %s",
				     strerror(errno));
		goto err_close_ep;
	}
	if (epoll_ctl(tp->epfd, EPOLL_CTL_ADD, tp->wake_fd, &ev)) {
		ret = rdps_set_error(-errno, "tcp: epoll_ctl: %s",
				     strerror(errno));
		goto err_close_wake;
	}
	tp->nap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (tp->nap_fd < 0) {
		ret = rdps_set_error(-errno, "tcp: eventfd: %s",
				     strerror(errno));
		goto err_close_wake;
	}
	ret = tcp_user_epoll_init(tp);
	if (ret)
		goto err_close_nap;
	ret = pthread_create(&tp->thread, NULL, tcp_progress_thread, tp);
	if (ret) {
		ret = rdps_set_error(-ret,
				     "tcp: cannot start the progress "
				     "thread: %s (thread limit?)",
				     strerror(ret));
		goto err_close_user_ep;
	}
	*tp_out = &tp->base;
	return 0;

err_close_user_ep:
	close(tp->user_epfd);
err_close_nap:
	close(tp->nap_fd);
err_close_wake:
	close(tp->wake_fd);
err_close_ep:
	close(tp->epfd);
err_destroy_lock:
	pthread_mutex_destroy(&tp->lock);
err_free_cq:
	tcp_cq_fini(tp);
err_free_tp:
	free(tp);
	return ret;
}

static void tcp_fini(struct rdps_tp *base)
{
	struct tcp_tp *tp = to_tcp_tp(base);
	uint64_t one = 1;

	__atomic_store_n(&tp->stop, 1, __ATOMIC_RELEASE);
	if (write(tp->wake_fd, &one, sizeof(one)) < 0)
		rdps_warn("tcp: cannot wake the progress thread: %s",
			  strerror(errno));
	pthread_join(tp->thread, NULL);
	close(tp->user_epfd);
	close(tp->nap_fd);
	close(tp->wake_fd);
	close(tp->epfd);
	pthread_mutex_destroy(&tp->lock);
	tcp_mr_fini(tp);
	free(tp->eps);
	tcp_cq_fini(tp);
	free(tp);
}

static void tcp_resume_stalled(struct tcp_tp *tp)
{
	for (uint32_t i = 0; i < tp->n_eps_cap && tp->n_stalled; i++) {
		struct tcp_ep *ep = tp->eps[i];

		if (ep && ep->rx_state == TCP_RX_STALLED) {
			tcp_ep_rx(ep);
			if (!ep->broken && ep->tx_head &&
			    !(ep->events & EPOLLOUT))
				tcp_tx_flush(ep);
		}
		if (!tcp_cq_has_room_imm(tp))
			break;
	}
}

int tcp_tp_poll(struct rdps_tp *base, struct rdps_tp_comp *comps, int max)
{
	struct tcp_tp *tp = to_tcp_tp(base);
	int n = 0;

	if (__atomic_load_n(&tp->user_asleep, __ATOMIC_RELAXED))
		tcp_user_awake(tp);
	if (__atomic_load_n(&tp->n_held, __ATOMIC_ACQUIRE)) {
		/* Requests posted since the last poll go out together. */
		pthread_mutex_lock(&tp->lock);
		tcp_tx_release(tp);
		pthread_mutex_unlock(&tp->lock);
	}
	/* Whoever needs the bytes reads them ("Progress" in tcp.h). */
	if (pthread_mutex_trylock(&tp->lock) == 0) {
		/* Awake: what this poll queues needs no eventfd write. */
		tp->armed = 0;
		tcp_tp_progress_user(tp);
		__atomic_store_n(&tp->last_user_poll, rdps_now_ns(),
				 __ATOMIC_RELAXED);
	} else {
		/* The progress thread is at work: do not queue behind it
		 * unless there is something to take. */
		if (!__atomic_load_n(&tp->cq_used, __ATOMIC_ACQUIRE) &&
		    !__atomic_load_n(&tp->n_disc, __ATOMIC_ACQUIRE))
			return 0;
		pthread_mutex_lock(&tp->lock);
	}
	n = tcp_cq_take(tp, comps, max);
	if (n && tp->n_stalled)
		tcp_resume_stalled(tp);
	pthread_mutex_unlock(&tp->lock);
	return n;
}

const struct rdps_tp_ops rdps_tcp_ops = {
	.size = sizeof(struct rdps_tp_ops),
	.name = "tcp",
	.caps = RDPS_TP_CAP_RMA_READ | RDPS_TP_CAP_RMA_WRITE |
		RDPS_TP_CAP_WRITE_IMM | RDPS_TP_CAP_ATOMIC_FADD |
		RDPS_TP_CAP_ATOMIC_CSWAP | RDPS_TP_CAP_INLINE,
	.init = tcp_init,
	.fini = tcp_fini,
	.listen = tcp_listen,
	.listener_url = tcp_listener_url,
	.accept = tcp_accept,
	.listener_close = tcp_listener_close,
	.connect = tcp_connect,
	.ep_close = tcp_ep_close,
	.mem_alloc = tcp_mem_alloc,
	.mem_free = tcp_mem_free,
	.mem_reg = tcp_mem_reg,
	.mem_reg_ep = tcp_mem_reg_ep,
	.mem_dereg = tcp_mem_dereg,
	.rkey_pack = tcp_rkey_pack,
	.rkey_unpack = tcp_rkey_unpack,
	.put = tcp_put,
	.put_imm = tcp_put_imm,
	.get = tcp_get,
	.get_gather = tcp_get_gather,
	.atomic_fadd = tcp_atomic_fadd,
	.atomic_cswap = tcp_atomic_cswap,
	.poll = tcp_tp_poll,
	.wait_fd = tcp_cq_wait_fd,
	.arm = tcp_cq_arm,
};
