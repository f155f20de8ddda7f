/* SPDX-License-Identifier: MIT */
/*
 * shm_listen.c - making connections: a listener is a SOCK_SEQPACKET unix
 * socket in the abstract namespace ("\0rdps-shm/NAME", gone with its
 * process, so no stale files); the handshake swaps one hello each way with
 * the heap memfd and the wake eventfd attached, and checks everything the
 * peer's hello and heap header claim before the heap is used. After it the
 * socket carries nothing: its hang-up only tells when a peer can no longer
 * write into a ring we gave it (shm_live.c).
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shm.h"

#define SHM_SOCK_PREFIX "rdps-shm/"

static int shm_sockaddr(const char *url, struct sockaddr_un *sa,
			socklen_t *len_out, char *name, size_t name_len)
{
	struct rdps_url u;
	size_t n;
	int ret;

	ret = rdps_url_parse(url, 0, &u);
	if (ret)
		return ret;
	if (strcmp(u.scheme, "shm"))
		return rdps_set_error(-EINVAL,
				      "url '%s' is not an shm url: use "
				      "shm://NAME",
				      url);
	if (u.port >= 0)
		return rdps_set_error(-EINVAL,
				      "shm url '%s' has a port: shm listeners "
				      "have names, use shm://NAME",
				      url);
	n = strlen(u.host);
	if (n + sizeof(SHM_SOCK_PREFIX) > sizeof(sa->sun_path) || n >= name_len)
		return rdps_set_error(
			-EINVAL,
			"shm name '%s' is too long: use at most "
			"%zu characters",
			u.host, sizeof(sa->sun_path) - sizeof(SHM_SOCK_PREFIX));
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* sun_path[0] = '\0': the abstract namespace. */
	memcpy(sa->sun_path + 1, SHM_SOCK_PREFIX, sizeof(SHM_SOCK_PREFIX) - 1);
	memcpy(sa->sun_path + sizeof(SHM_SOCK_PREFIX), u.host, n);
	*len_out = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			       sizeof(SHM_SOCK_PREFIX) - 1 + n);
	memcpy(name, u.host, n + 1);
	return 0;
}

/* Hello exchange ---------------------------------------------------------- */

/*
 * The process at the other end of fd must run as our user (or root):
 * abstract unix sockets have no file mode, so anyone on the host may
 * listen on a free name or connect to ours, and a connector sends its
 * heap with its first message. 0, or -EACCES with *uid_out the peer's uid
 * (-errno if the kernel cannot tell).
 */
static int shm_peer_user_check(int fd, unsigned *uid_out)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return -errno;
	*uid_out = (unsigned)cr.uid;
	return cr.uid == geteuid() || cr.uid == 0 ? 0 : -EACCES;
}

static int shm_send_hello(int fd, const struct shm_hello *h, const int *fds,
			  int nfds)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	struct iovec iov = {.iov_base = (void *)h, .iov_len = sizeof(*h)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm.c.cmsg_level = SOL_SOCKET;
		cm.c.cmsg_type = SCM_RIGHTS;
		cm.c.cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(&cm.c), fds, (size_t)nfds * sizeof(int));
	}
	do {
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*h) ? 0 : -EPROTO;
}

/*
 * Receive one hello by the deadline. 0 with p->h filled and p->memfd,
 * p->efd set to received descriptors or -1; -ETIMEDOUT, -ECONNRESET when
 * the peer hung up, -EPROTO for anything that is not a hello of our
 * version (p->h.version then tells which version, 0 if unknown).
 */
static int shm_recv_hello(int fd, uint64_t deadline, struct shm_peer *p)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cm;
	union {
		struct shm_hello h;
		uint8_t raw[256];
	} in;
	struct iovec iov = {.iov_base = &in, .iov_len = sizeof(in)};
	struct msghdr msg;
	struct cmsghdr *c;
	ssize_t n;
	int ret;

	p->memfd = p->efd = -1;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		ret = poll(&pfd, 1, rdps_ms_left(deadline));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (!ret)
			return -ETIMEDOUT;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		break;
	}
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
			if (i == 0 && p->memfd < 0)
				p->memfd = rfd;
			else if (i == 1 && p->efd < 0)
				p->efd = rfd;
			else
				close(rfd);
		}
	}
	memset(&p->h, 0, sizeof(p->h));
	if (n == 0)
		return -ECONNRESET;
	return shm_hello_parse(&in, (size_t)n, msg.msg_flags & MSG_TRUNC,
			       &p->h);
}

int shm_hello_parse(const void *buf, size_t len, int trunc, struct shm_hello *h)
{
	memset(h, 0, sizeof(*h));
	if (len >= 8)
		memcpy(h, buf, 8);
	if (len < 8 || h->magic != SHM_HELLO_MAGIC) {
		h->version = 0;
		return -EPROTO;
	}
	if (h->version != RDPS_TP_PROTO_VERSION)
		return -EPROTO;
	if (len != sizeof(*h) || trunc)
		return -EPROTO;
	memcpy(h, buf, sizeof(*h));
	if (h->priv_len > RDPS_TP_PRIV_MAX)
		return -EPROTO;
	return 0;
}

static void shm_peer_drop(struct shm_peer *p)
{
	if (p->map)
		munmap(p->map, p->h.heap_size);
	if (p->memfd >= 0)
		close(p->memfd);
	if (p->efd >= 0)
		close(p->efd);
	p->map = NULL;
	p->memfd = p->efd = -1;
}

int shm_hello_geometry_check(const struct shm_hello *h, size_t page)
{
	if (h->heap_size < 2 * page || h->heap_size > SIZE_MAX ||
	    h->heap_base % page || h->ring_cap < 2 ||
	    h->ring_cap > SHM_RING_MAX || (h->ring_cap & (h->ring_cap - 1)))
		return -EPROTO;
	return 0;
}

int shm_heap_hdr_check(const struct shm_hello *h, const struct shm_hdr *hdr,
		       size_t page, uint64_t ring_bytes)
{
	if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != SHM_HEAP_MAGIC ||
	    hdr->version != SHM_HEAP_VERSION ||
	    hdr->heap_size != h->heap_size || hdr->data_off % page ||
	    hdr->data_off >= h->heap_size || hdr->mrt_off < sizeof(*hdr) ||
	    hdr->mrt_max > SHM_MRT_MAX || hdr->mrt_off > hdr->data_off ||
	    /* no mrt_off + size: a huge mrt_off would wrap around */
	    (uint64_t)hdr->mrt_max * sizeof(struct shm_mrt_ent) >
		    hdr->data_off - hdr->mrt_off ||
	    h->ring_off % page || h->ring_off < hdr->data_off ||
	    h->ring_off > h->heap_size ||
	    ring_bytes > h->heap_size - h->ring_off)
		return -EPROTO;
	return 0;
}

/*
 * Map a peer's heap after checking everything its hello and header claim,
 * so that no later access through the mapping can fault. Returns 0 or a
 * negative errno with *why set to a short reason.
 */
static int shm_peer_map(struct shm_tp *tp, struct shm_peer *p, const char **why)
{
	const struct shm_hello *h = &p->h;
	const struct shm_hdr *hdr;
	struct stat st;
	uint64_t ring_bytes;
	int seals;
	void *map;

	if (p->memfd < 0 || p->efd < 0) {
		*why = "no heap or wake descriptor attached";
		return -EPROTO;
	}
	seals = fcntl(p->memfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(p->memfd, &st) ||
	    (uint64_t)st.st_size < h->heap_size) {
		*why = "heap descriptor is not a sealed memfd of the size "
		       "announced";
		return -EPROTO;
	}
	if (shm_hello_geometry_check(h, tp->page)) {
		*why = "bad heap or ring geometry";
		return -EPROTO;
	}
	map = mmap(NULL, h->heap_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_NORESERVE, p->memfd, 0);
	if (map == MAP_FAILED) {
		*why = "cannot map the peer heap (address space?)";
		return -errno;
	}
	p->map = map;
	p->hdr = hdr = map;
	ring_bytes = shm_ring_bytes(tp, h->ring_cap);
	if (shm_heap_hdr_check(h, hdr, tp->page, ring_bytes)) {
		*why = "bad heap header";
		return -EPROTO;
	}
	/* Peers only read the control area: a stray write there faults in
	 * the writer instead of corrupting the owner's registrations. */
	if (mprotect(map, hdr->data_off, PROT_READ)) {
		*why = "cannot protect the peer control area";
		return -errno;
	}
	close(p->memfd);
	p->memfd = -1;
	return 0;
}

static void shm_hello_fill(struct shm_tp *tp, struct shm_hello *h,
			   size_t ring_off, const void *priv, size_t priv_len)
{
	memset(h, 0, sizeof(*h));
	h->magic = SHM_HELLO_MAGIC;
	h->version = RDPS_TP_PROTO_VERSION;
	h->pid = (uint32_t)getpid();
	h->token = tp->tp.cfg.token;
	h->heap_base = (uint64_t)(uintptr_t)tp->heap;
	h->heap_size = tp->heap_size;
	h->ring_off = ring_off;
	h->ring_cap = tp->ring_cap;
	h->priv_len = (uint32_t)priv_len;
	if (priv_len)
		memcpy(h->priv, priv, priv_len);
}

/* Listener ---------------------------------------------------------------- */

int shm_listen(struct rdps_tp *tp, const char *url, const void *priv,
	       size_t priv_len, struct rdps_tp_listener **l_out)
{
	struct shm_listener *l;
	struct sockaddr_un sa;
	socklen_t salen;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return rdps_set_error(-ENOMEM, "shm: out of memory");
	ret = shm_sockaddr(url, &sa, &salen, l->name, sizeof(l->name));
	if (ret)
		goto err_free;
	l->l.tp = tp;
	l->priv_len = (uint32_t)priv_len;
	if (priv_len)
		memcpy(l->priv, priv, priv_len);
	l->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0);
	if (l->fd < 0) {
		ret = rdps_set_error(-errno, "shm: socket: %s",
				     strerror(errno));
		goto err_free;
	}
	if (bind(l->fd, (struct sockaddr *)&sa, salen)) {
		ret = -errno;
		if (ret == -EADDRINUSE)
			rdps_set_error(ret,
				       "shm name '%s' is in use by another "
				       "listener: pick another name",
				       l->name);
		else
			rdps_set_error(ret, "shm: cannot listen on '%s': %s",
				       l->name, strerror(-ret));
		goto err_close;
	}
	if (listen(l->fd, SOMAXCONN)) {
		ret = rdps_set_error(-errno, "shm: listen on '%s': %s", l->name,
				     strerror(errno));
		goto err_close;
	}
	*l_out = &l->l;
	return 0;

err_close:
	close(l->fd);
err_free:
	free(l);
	return ret;
}

int shm_listener_url(struct rdps_tp_listener *l_, char *buf, size_t len)
{
	struct shm_listener *l = to_shm_listener(l_);
	int n = snprintf(buf, len, "shm://%s", l->name);

	if (n < 0 || (size_t)n >= len)
		return rdps_set_error(-ENOSPC,
				      "buffer of %zu bytes too small for the "
				      "listener url: give at least %d",
				      len, n + 1);
	return 0;
}

void shm_listener_close(struct rdps_tp_listener *l_)
{
	struct shm_listener *l = to_shm_listener(l_);

	while (l->n_pend)
		close(l->pend[--l->n_pend].fd);
	close(l->fd);
	free(l);
}

static int shm_refuse(int fd, int err)
{
	struct shm_hello h;

	memset(&h, 0, sizeof(h));
	h.magic = SHM_HELLO_MAGIC;
	h.version = RDPS_TP_PROTO_VERSION;
	h.status = err;
	h.pid = (uint32_t)getpid();
	return shm_send_hello(fd, &h, NULL, 0);
}

/*
 * Handshake on a freshly accepted socket. 0 with *ep_out; 1 when the peer
 * was refused (logged, accept goes on waiting); a negative errno when we
 * cannot serve anyone (out of memory, heap full).
 */
static int shm_accept_one(struct shm_listener *l, int fd, uint64_t deadline,
			  struct shm_ep **ep_out)
{
	struct shm_tp *tp = to_shm_tp(l->l.tp);
	struct shm_peer p = {.memfd = -1, .efd = -1};
	struct shm_hello h;
	const char *why = "";
	int fds[2] = {tp->memfd, tp->efd};
	size_t rx_off = 0;
	unsigned uid = 0;
	int ret;

	ret = shm_peer_user_check(fd, &uid);
	if (ret == -EACCES) {
		rdps_warn("shm://%s: refused a peer running as uid %u (we run "
			  "as uid %u): all shm peers of a job must run as one "
			  "user",
			  l->name, uid, (unsigned)geteuid());
		goto refused;
	}
	if (ret) {
		rdps_warn("shm://%s: dropped a peer whose user cannot be "
			  "told: %s",
			  l->name, strerror(-ret));
		goto refused;
	}
	ret = shm_recv_hello(fd, deadline, &p);
	if (ret == -EPROTO && p.h.version &&
	    p.h.version != RDPS_TP_PROTO_VERSION) {
		rdps_warn("shm://%s: refused a peer speaking protocol "
			  "version %u (we speak %u)",
			  l->name, p.h.version, RDPS_TP_PROTO_VERSION);
		shm_refuse(fd, EPROTO);
		goto refused;
	}
	if (ret) {
		rdps_warn("shm://%s: dropped a peer before its handshake: %s",
			  l->name,
			  ret == -EPROTO ? "not an rdps shm hello"
					 : strerror(-ret));
		goto refused;
	}
	if (p.h.token != tp->tp.cfg.token) {
		rdps_warn("shm://%s: refused peer pid %u: job token mismatch",
			  l->name, p.h.pid);
		shm_refuse(fd, EACCES);
		goto refused;
	}
	ret = shm_peer_map(tp, &p, &why);
	if (ret) {
		rdps_warn("shm://%s: refused peer pid %u: %s", l->name, p.h.pid,
			  why);
		shm_refuse(fd, EPROTO);
		goto refused;
	}
	ret = shm_ring_new(tp, &rx_off);
	if (ret) {
		shm_refuse(fd, ENOMEM);
		goto err_drop;
	}
	shm_hello_fill(tp, &h, rx_off, l->priv, l->priv_len);
	ret = shm_send_hello(fd, &h, fds, 2);
	if (ret) {
		rdps_warn("shm://%s: peer pid %u left during the handshake: "
			  "%s",
			  l->name, p.h.pid, strerror(-ret));
		shm_ring_retire(tp, -1, rx_off,
				shm_ring_bytes(tp, tp->ring_cap), true);
		goto refused;
	}
	ret = shm_ep_make(tp, fd, &p, rx_off, ep_out);
	if (ret) {
		/* The peer has our hello and may write into the ring. */
		shm_ring_retire(tp, fd, rx_off,
				shm_ring_bytes(tp, tp->ring_cap), false);
		shm_peer_drop(&p);
		return ret == -ECONNRESET ? 1 : ret;
	}
	return 0;

refused:
	shm_peer_drop(&p);
	close(fd);
	return 1;
err_drop:
	shm_peer_drop(&p);
	close(fd);
	return ret;
}

/* Pending handshakes --------------------------------------------------- */

static void shm_pending_drop(struct shm_listener *l, int i)
{
	close(l->pend[i].fd);
	l->pend[i] = l->pend[--l->n_pend];
}

/* Make room for a new connection: the oldest unfinished handshake goes,
 * told that the listener is busy so that a real peer retries. */
static void shm_pending_evict(struct shm_listener *l)
{
	int old = 0;

	for (int i = 1; i < l->n_pend; i++)
		if (l->pend[i].deadline < l->pend[old].deadline)
			old = i;
	rdps_dbg("shm://%s: %d peers in the handshake; dropped the oldest",
		 l->name, l->n_pend);
	shm_refuse(l->pend[old].fd, EBUSY);
	shm_pending_drop(l, old);
}

/* Take every connection the kernel holds into the pending set. 0, or a
 * -errno when the listener cannot accept at all. */
static int shm_accept_new(struct shm_listener *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			/* Out of descriptors: the connection waiting is
			 * likelier a real peer than the oldest silent one. */
			if ((errno == EMFILE || errno == ENFILE) && l->n_pend) {
				shm_pending_evict(l);
				continue;
			}
			return rdps_set_error(-errno,
					      "shm://%s: accept: %s (raise "
					      "the open file limit?)",
					      l->name, strerror(errno));
		}
		if (l->n_pend == RDPS_TP_MAX_PENDING)
			shm_pending_evict(l);
		l->pend[l->n_pend++] = (struct shm_pending){
			.fd = fd, .deadline = rdps_deadline(RDPS_TP_HELLO_MS)};
	}
}

/*
 * Every pending connection waits in one poll() with the listener, so each
 * handshake runs when its hello arrives (a connector sends it at once)
 * and none waits for another's: the hello is then read without waiting.
 */
int shm_accept(struct rdps_tp_listener *l_, struct rdps_tp_ep **ep_out,
	       int timeout_ms)
{
	struct shm_listener *l = to_shm_listener(l_);
	uint64_t deadline = rdps_deadline(timeout_ms);
	struct pollfd pfd[1 + RDPS_TP_MAX_PENDING];
	struct shm_ep *ep;
	int ret, n;

	for (;;) {
		uint64_t wake = deadline, now = rdps_now_ns();

		for (int i = l->n_pend; i-- > 0;) {
			if (now >= l->pend[i].deadline) {
				rdps_warn("shm://%s: dropped a peer that sent "
					  "no hello within %d ms",
					  l->name, RDPS_TP_HELLO_MS);
				shm_pending_drop(l, i);
			}
		}
		pfd[0] = (struct pollfd){.fd = l->fd, .events = POLLIN};
		for (int i = 0; i < l->n_pend; i++) {
			pfd[1 + i] = (struct pollfd){.fd = l->pend[i].fd,
						     .events = POLLIN};
			if (l->pend[i].deadline < wake)
				wake = l->pend[i].deadline;
		}
		n = poll(pfd, (nfds_t)(1 + l->n_pend),
			 timeout_ms == 0 ? 0 : rdps_ms_left(wake));
		if (n < 0 && errno != EINTR)
			return rdps_set_error(-errno, "shm: poll: %s",
					      strerror(errno));
		/* Highest index first: taking one moves the last entry into
		 * its place, and that one was looked at already. */
		for (int i = n > 0 ? l->n_pend : 0; i-- > 0;) {
			int fd = l->pend[i].fd;

			if (!pfd[1 + i].revents)
				continue;
			l->pend[i] = l->pend[--l->n_pend];
			ret = shm_accept_one(l, fd, rdps_now_ns(), &ep);
			if (!ret) {
				*ep_out = &ep->ep;
				return 0;
			}
			if (ret < 0)
				return ret;
		}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			ret = shm_accept_new(l);
			if (ret)
				return ret;
		}
		if (timeout_ms == 0 || rdps_now_ns() >= deadline)
			break;
	}
	return rdps_set_error(-ETIMEDOUT,
			      "no peer connected to shm://%s within %d ms",
			      l->name, timeout_ms);
}

/* Connect ----------------------------------------------------------------- */

static int shm_connect_sock(const char *url, uint64_t deadline, char *name,
			    size_t name_len, int *fd_out)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int fd, ret;

	ret = shm_sockaddr(url, &sa, &salen, name, name_len);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return rdps_set_error(-errno, "shm: socket: %s",
				      strerror(errno));
	for (;;) {
		if (!connect(fd, (struct sockaddr *)&sa, salen))
			break;
		ret = -errno;
		if (ret == -EINTR)
			continue;
		if (ret == -EAGAIN) {
			/* The listener's backlog is full: it is alive and
			 * will accept, so wait like a TCP SYN would. */
			struct timespec ts = {0, 1000000};

			if (rdps_ms_left(deadline) == 0) {
				ret = rdps_set_error(-ETIMEDOUT,
						     "shm://%s accepts no "
						     "connection: raise the "
						     "timeout",
						     name);
				goto err_close;
			}
			nanosleep(&ts, NULL);
			continue;
		}
		if (ret == -ECONNREFUSED || ret == -ENOENT)
			ret = rdps_set_error(
				-ECONNREFUSED,
				"nobody listens on shm://%s: start "
				"the server first or fix the name",
				name);
		else
			ret = rdps_set_error(ret, "shm: connect to '%s': %s",
					     name, strerror(-ret));
		goto err_close;
	}
	*fd_out = fd;
	return 0;

err_close:
	close(fd);
	return ret;
}

int shm_connect(struct rdps_tp *tp_, const char *url, const void *priv,
		size_t priv_len, struct rdps_tp_ep **ep_out, int timeout_ms)
{
	struct shm_tp *tp = to_shm_tp(tp_);
	uint64_t deadline = rdps_deadline(timeout_ms);
	struct shm_peer p = {.memfd = -1, .efd = -1};
	int fds[2] = {tp->memfd, tp->efd};
	size_t rx_off = 0, rx_len = shm_ring_bytes(tp, tp->ring_cap);
	const char *why = "";
	struct shm_hello h;
	struct shm_ep *ep;
	char name[128];
	unsigned uid = 0;
	int fd = -1, ret;

	ret = shm_connect_sock(url, deadline, name, sizeof(name), &fd);
	if (ret)
		return ret;
	/* Before our heap leaves with the hello. */
	ret = shm_peer_user_check(fd, &uid);
	if (ret && ret != -EACCES) {
		ret = rdps_set_error(ret,
				     "shm://%s: cannot tell which user serves "
				     "it: %s",
				     name, strerror(-ret));
		goto err_close;
	}
	if (ret) {
		ret = rdps_set_error(-EACCES,
				     "shm://%s is served by uid %u, we run as "
				     "uid %u: refusing to share our memory "
				     "with another user (run the job as one "
				     "user, or pick another name if that one "
				     "was taken)",
				     name, uid, (unsigned)geteuid());
		goto err_close;
	}
	ret = shm_ring_new(tp, &rx_off);
	if (ret)
		goto err_close;
	shm_hello_fill(tp, &h, rx_off, priv, priv_len);
	ret = shm_send_hello(fd, &h, fds, 2);
	if (ret) {
		shm_heap_release(tp, rx_off, rx_len, true);
		ret = rdps_set_error(-ECONNREFUSED,
				     "shm://%s closed the connection: %s", name,
				     strerror(-ret));
		goto err_close;
	}
	ret = shm_recv_hello(fd, deadline, &p);
	if (ret == -EPROTO && p.h.version &&
	    p.h.version != RDPS_TP_PROTO_VERSION) {
		ret = rdps_set_error(-EPROTO,
				     "shm://%s speaks protocol version %u, we "
				     "speak %u: run the same rdps on both "
				     "sides",
				     name, p.h.version, RDPS_TP_PROTO_VERSION);
		goto err_retire;
	}
	if (ret == -EPROTO) {
		ret = rdps_set_error(-EPROTO,
				     "shm://%s answered with no rdps shm "
				     "handshake: check the url",
				     name);
		goto err_retire;
	}
	if (ret == -ETIMEDOUT) {
		ret = rdps_set_error(-ETIMEDOUT,
				     "shm://%s did not accept within %d ms: "
				     "is the server calling accept?",
				     name, timeout_ms);
		goto err_retire;
	}
	if (ret) {
		ret = rdps_set_error(-ECONNRESET,
				     "shm://%s closed the connection before "
				     "answering our handshake (%s): it was "
				     "stopping or dropped us",
				     name, strerror(-ret));
		goto err_retire;
	}
	if (p.h.status) {
		if (p.h.status == EBUSY)
			ret = rdps_set_error(-EBUSY,
					     "shm://%s is busy: it holds %d "
					     "connections that have not sent "
					     "their hello (idle or hostile "
					     "peers) and dropped ours for a "
					     "newer one",
					     name, RDPS_TP_MAX_PENDING);
		else if (p.h.status == EACCES)
			ret = rdps_set_error(-EACCES,
					     "shm://%s refused us: job token "
					     "mismatch; use the same token on "
					     "both sides",
					     name);
		else if (p.h.status == EPROTO)
			ret = rdps_set_error(-EPROTO,
					     "shm://%s refused our handshake "
					     "(protocol mismatch): run the "
					     "same rdps on both sides",
					     name);
		else
			ret = rdps_set_error(-ECONNREFUSED,
					     "shm://%s refused the connection: "
					     "%s",
					     name, strerror(p.h.status));
		goto err_retire;
	}
	if (p.h.token != tp->tp.cfg.token) {
		ret = rdps_set_error(-EACCES,
				     "shm://%s has another job token: use the "
				     "same token on both sides",
				     name);
		goto err_retire;
	}
	ret = shm_peer_map(tp, &p, &why);
	if (ret) {
		ret = rdps_set_error(ret == -EPROTO ? -EPROTO : ret,
				     "shm://%s: unusable peer: %s", name, why);
		goto err_retire;
	}
	ret = shm_ep_make(tp, fd, &p, rx_off, &ep);
	if (ret)
		goto err_retire;
	*ep_out = &ep->ep;
	return 0;

err_retire:
	/* The listener may have our hello and write into the ring. */
	shm_peer_drop(&p);
	shm_ring_retire(tp, fd, rx_off, rx_len, false);
	return ret;
err_close:
	close(fd);
	return ret;
}
