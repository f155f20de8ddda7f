/* SPDX-License-Identifier: MIT */
/*
 * tcp_tp.c - tcp transport instance: who drives progress (the progress
 * thread, or a user inside poll: busy polling, or adaptive polling while
 * it spins) and the ops table.
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
/* While the user thread polls the sockets itself, the progress thread keeps
 * off them and checks back this often (ns): busy polling, which never
 * sleeps; adaptive polling, whose user tells the thread when it goes to
 * sleep but not when it leaves to do other work, so a peer's request then
 * waits at most this long for the thread. */
#define TCP_NAP_BUSY_NS 1000000ull
#define TCP_NAP_ADAPTIVE_NS 200000ull

static void tcp_wake_drain(struct tcp_tp *tp)
{
	uint64_t v;

	/* Nonblocking: EAGAIN when a racing reader took it. */
	if (read(tp->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		rdps_dbg("tcp wake eventfd read: %s", strerror(errno));
}

static void tcp_tp_handle(struct tcp_tp *tp, const struct epoll_event *evs,
			  int n)
{
	for (int i = 0; i < n; i++) {
		struct tcp_ep *ep;

		if (evs[i].data.u64 == TCP_WAKE_COOKIE) {
			/* A wake-up meant for a nap that had ended: level
			 * triggered, it would return every epoll_wait. */
			tcp_wake_drain(tp);
			continue;
		}
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

/*
 * Whether the progress thread should nap because the user thread polled the
 * sockets within the last nap. Announces the nap first: with
 * tcp_tp_user_sleeps() clearing last_user_poll before it reads napping
 * (both sequentially consistent), either the user sees the nap and wakes
 * the thread, or the thread sees the cleared time and does not nap.
 */
static int tcp_user_polls(struct tcp_tp *tp)
{
	uint64_t last;

	if (!tp->user_progress)
		return 0;
	__atomic_store_n(&tp->napping, 1, __ATOMIC_SEQ_CST);
	last = __atomic_load_n(&tp->last_user_poll, __ATOMIC_SEQ_CST);
	if (last && rdps_now_ns() - last < tp->nap_ns)
		return 1;
	__atomic_store_n(&tp->napping, 0, __ATOMIC_SEQ_CST);
	return 0;
}

void tcp_tp_user_sleeps(struct tcp_tp *tp)
{
	uint64_t one = 1;

	if (!tp->user_progress)
		return;
	__atomic_store_n(&tp->last_user_poll, 0, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&tp->napping, __ATOMIC_SEQ_CST) &&
	    write(tp->wake_fd, &one, sizeof(one)) < 0)
		rdps_dbg("tcp wake eventfd write: %s", strerror(errno));
}

static void *tcp_progress_thread(void *arg)
{
	struct tcp_tp *tp = arg;
	struct epoll_event evs[TCP_EVENTS_MAX];
	sigset_t all;

	/* Signals belong to the application's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	for (;;) {
		int n;

		if (tcp_user_polls(tp)) {
			/*
			 * A polling user thread serves the sockets: a second
			 * thread woken by every message would only fight it
			 * for the lock and, on a small machine, for the
			 * cores. Nap on the wake fd alone; an adaptive user
			 * going to sleep writes it (tcp_tp_user_sleeps).
			 */
			struct pollfd pfd = {.fd = tp->wake_fd,
					     .events = POLLIN};
			struct timespec ts = {
				.tv_sec = 0,
				.tv_nsec = (long)tp->nap_ns,
			};

			if (ppoll(&pfd, 1, &ts, NULL) > 0)
				tcp_wake_drain(tp);
			__atomic_store_n(&tp->napping, 0, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&tp->stop, __ATOMIC_ACQUIRE))
				break;
			continue;
		}
		n = epoll_wait(tp->epfd, evs, TCP_EVENTS_MAX, -1);
		if (n < 0 && errno != EINTR) {
			rdps_err("tcp progress thread: epoll_wait: %s",
				 strerror(errno));
			break;
		}
		pthread_mutex_lock(&tp->lock);
		if (__atomic_load_n(&tp->stop, __ATOMIC_ACQUIRE)) {
			pthread_mutex_unlock(&tp->lock);
			break;
		}
		tcp_tp_handle(tp, evs, n);
		pthread_mutex_unlock(&tp->lock);
	}
	return NULL;
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
	/* A spinning poller reading its own responses and serving the peer's
	 * requests saves the progress thread's wake-up on the hot path: a
	 * wake-up costs more than the round trip itself when the cores are
	 * busy. Busy polling always spins; adaptive polling spins before it
	 * sleeps, and hands the sockets back to the thread when it does. */
	tp->user_progress = cfg->poll_mode != RDPS_TP_POLL_EVENT;
	tp->nap_ns = cfg->poll_mode == RDPS_TP_POLL_BUSY ? TCP_NAP_BUSY_NS
							 : TCP_NAP_ADAPTIVE_NS;
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
	ret = pthread_create(&tp->thread, NULL, tcp_progress_thread, tp);
	if (ret) {
		ret = rdps_set_error(-ret,
				     "tcp: cannot start the progress "
				     "thread: %s (thread limit?)",
				     strerror(ret));
		goto err_close_wake;
	}
	*tp_out = &tp->base;
	return 0;

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

	if (!tp->user_progress) {
		/* Cheap empty check: the common case while spinning. */
		if (!__atomic_load_n(&tp->cq_used, __ATOMIC_ACQUIRE) &&
		    !__atomic_load_n(&tp->n_disc, __ATOMIC_ACQUIRE))
			return 0;
		pthread_mutex_lock(&tp->lock);
		goto take;
	}
	/* Polling, whether or not the lock is free this time: were only the
	 * polls that got it counted, a progress thread that took it would see
	 * no user, leave its nap for epoll and, woken by every message, keep
	 * taking the lock from the user. */
	__atomic_store_n(&tp->last_user_poll, rdps_now_ns(), __ATOMIC_RELAXED);
	if (pthread_mutex_trylock(&tp->lock) == 0) {
		tcp_tp_progress_events(tp, 0);
	} else {
		/* The progress thread is at work: do not queue behind it
		 * unless there is something to take. */
		if (!__atomic_load_n(&tp->cq_used, __ATOMIC_ACQUIRE) &&
		    !__atomic_load_n(&tp->n_disc, __ATOMIC_ACQUIRE))
			return 0;
		pthread_mutex_lock(&tp->lock);
	}
take:
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
	.atomic_fadd = tcp_atomic_fadd,
	.atomic_cswap = tcp_atomic_cswap,
	.poll = tcp_tp_poll,
	.wait_fd = tcp_cq_wait_fd,
	.arm = tcp_cq_arm,
};
