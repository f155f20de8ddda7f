/* SPDX-License-Identifier: MIT */
/*
 * shm_live.c - liveness of peers. Our own: a thread that holds the heap
 * header's live word on its robust futex list, so the kernel marks the word
 * when this process dies. Theirs: each endpoint compares the peer's live
 * word with the value it saw at the handshake, and the connection socket's
 * hang-up catches peers whose kernel refused a robust list. A broken
 * endpoint owes one DISCONNECT completion. The inbound ring of a closed
 * endpoint is kept as a zombie until its peer's socket is gone, since until
 * then the peer may still write into it.
 */
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm.h"

/* Our liveness ------------------------------------------------------------ */

struct shm_live_arg {
	struct shm_tp *tp;
	sem_t ready;
};

/*
 * The liveness thread only sleeps. Its robust futex list holds the header's
 * live word, so when the process dies (any signal, kill -9 included) the
 * kernel marks the word FUTEX_OWNER_DIED while tearing the thread down,
 * before a parent's waitpid() can return. A thread of its own is needed
 * because the robust list of any other thread belongs to libc.
 */
static void *shm_live_main(void *arg)
{
	struct shm_live_arg *a = arg;
	struct shm_tp *tp = a->tp;
	uint64_t v;

	__atomic_store_n(&tp->hdr->live, (uint32_t)gettid(), __ATOMIC_RELEASE);
	if (syscall(SYS_set_robust_list, &tp->rl_head, sizeof(tp->rl_head)))
		rdps_info("shm: set_robust_list failed (%s): peers will notice "
			  "our death only by socket hang-up",
			  strerror(errno));
	sem_post(&a->ready);
	while (read(tp->live_efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	return NULL;
}

int shm_live_start(struct shm_tp *tp)
{
	struct shm_live_arg a = {.tp = tp};
	struct shm_hdr *hdr = tp->hdr;
	sigset_t all, old;
	pthread_attr_t attr;
	int ret;

	hdr->live_ent.next = &tp->rl_head.list;
	tp->rl_head.list.next = &hdr->live_ent;
	tp->rl_head.futex_offset = (long)(offsetof(struct shm_hdr, live) -
					  offsetof(struct shm_hdr, live_ent));
	tp->rl_head.list_op_pending = NULL;

	tp->live_efd = eventfd(0, EFD_CLOEXEC);
	if (tp->live_efd < 0)
		return rdps_set_error(-errno, "shm: eventfd: %s",
				      strerror(errno));
	if (sem_init(&a.ready, 0, 0)) {
		ret = rdps_set_error(-errno, "shm: sem_init: %s",
				     strerror(errno));
		goto err_close;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	/* The thread must never take the application's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&tp->live_thr, &attr, shm_live_main, &a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret) {
		ret = rdps_set_error(ret, "shm: cannot start a thread: %s",
				     strerror(-ret));
		goto err_sem;
	}
	while (sem_wait(&a.ready) && errno == EINTR)
		;
	sem_destroy(&a.ready);
	tp->live_thr_started = true;
	return 0;

err_sem:
	sem_destroy(&a.ready);
err_close:
	close(tp->live_efd);
	tp->live_efd = -1;
	return ret;
}

void shm_live_stop(struct shm_tp *tp)
{
	uint64_t one = 1;

	if (tp->live_thr_started) {
		if (write(tp->live_efd, &one, sizeof(one)) < 0)
			rdps_warn("shm: cannot stop the liveness thread: %s",
				  strerror(errno));
		else
			pthread_join(tp->live_thr, NULL);
		tp->live_thr_started = false;
	}
	if (tp->live_efd >= 0)
		close(tp->live_efd);
	tp->live_efd = -1;
}

/* Zombies ----------------------------------------------------------------- */

/* True once the peer on fd closed its end or died: it will never write
 * into the ring we gave it again. We never send after the handshake, so
 * any readable state is the end of file. */
static bool shm_sock_gone(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};

	return poll(&pfd, 1, 0) != 0;
}

void shm_zombies_reap(struct shm_tp *tp, bool all)
{
	size_t i = 0;

	while (i < tp->n_zombies) {
		struct shm_zombie *z = &tp->zombies[i];

		if (!all && !shm_sock_gone(z->fd)) {
			i++;
			continue;
		}
		/* On fini the whole heap goes: no need to give back. */
		if (!all)
			shm_heap_release(tp, z->off, z->len, true);
		close(z->fd);
		*z = tp->zombies[--tp->n_zombies];
	}
}

/* Give up the inbound ring of a connection and its socket. */
void shm_ring_retire(struct shm_tp *tp, int fd, size_t off, size_t len,
		     bool peer_done)
{
	struct shm_ring *r = (struct shm_ring *)(tp->heap + off);

	__atomic_store_n(&r->closed, 1, __ATOMIC_RELEASE);
	if (!peer_done && fd >= 0 && !shm_sock_gone(fd)) {
		if (tp->n_zombies == tp->cap_zombies) {
			size_t ncap = tp->cap_zombies ? tp->cap_zombies * 2 : 8;
			struct shm_zombie *nz =
				realloc(tp->zombies, ncap * sizeof(*nz));

			if (!nz) {
				/* Never reusing the ring is always safe. */
				rdps_warn("shm: out of memory: leaking a "
					  "%zu-byte ring",
					  len);
				close(fd);
				return;
			}
			tp->zombies = nz;
			tp->cap_zombies = ncap;
		}
		/* The end of file tells the peer we are gone. */
		shutdown(fd, SHUT_WR);
		tp->zombies[tp->n_zombies++] =
			(struct shm_zombie){.fd = fd, .off = off, .len = len};
		return;
	}
	shm_heap_release(tp, off, len, true);
	if (fd >= 0)
		close(fd);
}

/* Peers' liveness --------------------------------------------------------- */

static void shm_ep_mark_dead(struct shm_ep *ep)
{
	if (ep->dead)
		return;
	ep->dead = true;
	ep->disc_pending = true;
	ep->tp->n_disc++;
	/* A peer closing its end is ordinary; one dying is not. */
	if (__atomic_load_n(&ep->tx->closed, __ATOMIC_RELAXED))
		rdps_info("shm: peer pid %d closed the connection",
			  ep->peer_pid);
	else
		rdps_warn("shm: peer pid %d died", ep->peer_pid);
}

int shm_ep_broken(struct shm_ep *ep)
{
	shm_ep_mark_dead(ep);
	return rdps_set_error(-ENOTCONN,
			      "shm peer pid %d is gone (exited or closed "
			      "the connection): close the endpoint and "
			      "connect again",
			      ep->peer_pid);
}

static void shm_socks_check(struct pollfd *pfd, struct shm_ep **who, int n)
{
	if (poll(pfd, (nfds_t)n, 0) <= 0)
		return;
	for (int k = 0; k < n; k++)
		if (pfd[k].revents)
			shm_ep_mark_dead(who[k]);
}

/*
 * Notice departed peers without a post: liveness words always (plain
 * loads), sockets when asked (one poll() per 64 endpoints), which also
 * catches peers whose kernel refused a robust list.
 */
void shm_check_peers(struct shm_tp *tp, bool sockets)
{
	struct pollfd pfd[64];
	struct shm_ep *who[64];
	int n = 0;

	for (uint32_t i = 0; i < tp->n_eps; i++) {
		struct shm_ep *ep = tp->eps[i];

		if (ep->dead)
			continue;
		if (__atomic_load_n(ep->peer_live, __ATOMIC_RELAXED) !=
			    ep->peer_live_val ||
		    __atomic_load_n(&ep->tx->closed, __ATOMIC_RELAXED)) {
			shm_ep_mark_dead(ep);
			continue;
		}
		if (!sockets)
			continue;
		pfd[n] = (struct pollfd){.fd = ep->fd,
					 .events = POLLIN | POLLRDHUP};
		who[n++] = ep;
		if (n == (int)RDPS_ARRAY_SIZE(pfd)) {
			shm_socks_check(pfd, who, n);
			n = 0;
		}
	}
	if (n)
		shm_socks_check(pfd, who, n);
	if (sockets) {
		shm_zombies_reap(tp, false);
		tp->sock_check_ns = rdps_now_ns();
	}
}
