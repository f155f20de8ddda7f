/* SPDX-License-Identifier: MIT */
/*
 * tcp_ep.c - tcp connection management: listening, the handshake (version,
 * token, private data), connecting with a deadline, endpoint lifetime.
 *
 * The handshake runs on the caller's thread with non-blocking sockets and
 * poll(), so timeouts are exact and a peer that connects but never speaks
 * holds up neither accept() for other peers nor the progress thread. Once
 * the handshake is done the socket joins the progress thread's epoll set.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp.h"

/* A connected peer gets this long to send its hello (transport.h). */
#define TCP_HELLO_TIMEOUT_MS RDPS_TP_HELLO_MS
/* Connections accepted but still in the handshake (transport.h). */
#define TCP_MAX_PENDING RDPS_TP_MAX_PENDING

struct tcp_pending {
	int fd;
	size_t got;
	uint64_t deadline;
	char peer[64];
	uint8_t buf[RDPS_TCP_HELLO_LEN];
};

struct tcp_listener {
	struct rdps_tp_listener base;
	int fd;
	int wildcard; /* bound to every address: report the host name */
	char host[256];
	uint8_t priv[RDPS_TP_PRIV_MAX];
	uint32_t priv_len;
	int n_pend;
	struct tcp_pending pend[TCP_MAX_PENDING];
};

static void tcp_sockaddr_str(const struct sockaddr *sa, socklen_t len,
			     char *buf, size_t size)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
		 serv);
}

static void tcp_peer_str(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len)) {
		snprintf(buf, size, "?");
		return;
	}
	tcp_sockaddr_str((struct sockaddr *)&ss, len, buf, size);
}

/* Latency first (NODELAY), and notice a peer host that vanished without a
 * FIN within about half a minute instead of never. */
static void tcp_sock_tune(int fd)
{
	int one = 1, idle = 10, intvl = 2, cnt = 5;
	unsigned user_timeout_ms = 30000;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
		   sizeof(user_timeout_ms));
}

/* Endpoints ------------------------------------------------------------- */

struct tcp_ep *tcp_ep_lookup(struct tcp_tp *tp, uint64_t cookie)
{
	uint32_t slot = (uint32_t)cookie, gen = (uint32_t)(cookie >> 32);
	struct tcp_ep *ep;

	if (slot >= tp->n_eps_cap)
		return NULL;
	ep = tp->eps[slot];
	return ep && ep->gen == gen ? ep : NULL;
}

/* ep opens (+1) or closes (-1): keep tp->sole_ep (tcp.h "Direct reads");
 * tp->lock held. */
static void tcp_ep_count(struct tcp_tp *tp, struct tcp_ep *ep, int delta)
{
	/* A second endpoint needs epoll for both. */
	tcp_direct_end(tp);
	tp->n_eps += (uint32_t)delta;
	if (tp->n_eps != 1) {
		tp->sole_ep = NULL;
		return;
	}
	if (delta > 0) {
		tp->sole_ep = ep;
		return;
	}
	for (uint32_t i = 0; i < tp->n_eps_cap; i++)
		if (tp->eps[i])
			tp->sole_ep = tp->eps[i];
}

/* Find a free slot in tp->eps, growing it; tp->lock held. */
static int tcp_ep_slot(struct tcp_tp *tp, uint32_t *slot_out)
{
	struct tcp_ep **n;
	uint32_t ncap;

	for (uint32_t i = 0; i < tp->n_eps_cap; i++) {
		if (!tp->eps[i]) {
			*slot_out = i;
			return 0;
		}
	}
	ncap = tp->n_eps_cap ? tp->n_eps_cap * 2 : 16;
	n = realloc(tp->eps, ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n + tp->n_eps_cap, 0, (ncap - tp->n_eps_cap) * sizeof(*n));
	*slot_out = tp->n_eps_cap;
	tp->eps = n;
	tp->n_eps_cap = ncap;
	return 0;
}

/* Wrap a connected, handshaken socket; takes fd on success only. */
static int tcp_ep_create(struct tcp_tp *tp, int fd, const char *peer,
			 const struct rdps_tcp_hello *h,
			 struct rdps_tp_ep **ep_out)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct tcp_ep *ep;
	int ret;

	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return rdps_set_error(-ENOMEM, "out of memory for an endpoint");
	ep->ops = calloc(tp->sq_depth, sizeof(*ep->ops));
	ep->rxbuf = malloc(TCP_RXBUF_LEN);
	if (!ep->ops || !ep->rxbuf) {
		ret = rdps_set_error(-ENOMEM,
				     "out of memory for an endpoint "
				     "with a %u-deep send queue",
				     tp->sq_depth);
		goto err_free;
	}
	ep->base.tp = &tp->base;
	ep->base.peer_priv_len = h->priv_len;
	memcpy(ep->base.peer_priv, h->priv, h->priv_len);
	ep->tp = tp;
	ep->fd = fd;
	ep->events = EPOLLIN;
	snprintf(ep->peer, sizeof(ep->peer), "%s", peer);

	pthread_mutex_lock(&tp->lock);
	ret = tcp_ep_slot(tp, &ep->slot);
	if (ret) {
		pthread_mutex_unlock(&tp->lock);
		ret = rdps_set_error(ret, "out of memory for the endpoint "
					  "table");
		goto err_free;
	}
	ep->gen = ++tp->ep_gen;
	ev.data.u64 = tcp_ep_cookie(ep);
	if (epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		ret = rdps_set_error(-errno, "tcp: epoll_ctl: %s",
				     strerror(errno));
		pthread_mutex_unlock(&tp->lock);
		goto err_free;
	}
	tp->eps[ep->slot] = ep;
	tcp_ep_count(tp, ep, 1);
	pthread_mutex_unlock(&tp->lock);
	*ep_out = &ep->base;
	return 0;

err_free:
	free(ep->rxbuf);
	free(ep->ops);
	free(ep);
	return ret;
}

/*
 * Before the socket goes, hand it what it takes of the responses still
 * queued, without waiting. They acknowledge requests this side has served
 * and reported: a write-with-immediate's acknowledgement waits in the
 * queue for the user's next post to ride along (tcp_write_done asks for
 * EPOLLOUT instead of sending it), so a user that closes on that very
 * immediate (a goodbye) used to drop it, and the peer saw its last
 * operations fail although they took effect, which an RC queue pair never
 * shows. Our own requests not yet begun stay unsent: they fail here with
 * FLUSH_ERR. Then a FIN, and what the peer sent meanwhile is read away:
 * closing a socket with unread bytes resets the connection, and a reset
 * may discard what was just sent.
 */
static void tcp_ep_close_gently(struct tcp_ep *ep)
{
	struct tcp_txe **pp = &ep->tx_head, *t;
	char sink[4096];
	int reads = 64;

	if (ep->fd < 0 || ep->broken)
		return;
	ep->tx_tail = NULL;
	while ((t = *pp)) {
		if (!t->is_resp && !t->sent) {
			*pp = t->next;
			t->next = NULL;
			t->queued = 0;
			free(t->bounce);
			t->bounce = NULL;
			continue;
		}
		ep->tx_tail = t;
		pp = &t->next;
	}
	/* The endpoint is going: a send that fails now is no news to log. */
	ep->broken = 1;
	if (ep->tx_head)
		tcp_tx_flush(ep);
	shutdown(ep->fd, SHUT_WR);
	while (reads-- && recv(ep->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

void tcp_ep_close(struct rdps_tp_ep *base)
{
	struct tcp_ep *ep = to_tcp_ep(base);
	struct tcp_tp *tp = ep->tp;
	struct tcp_txe *t;

	pthread_mutex_lock(&tp->lock);
	/* Held requests were posted before the close: they go as they
	 * would have without the batching (tcp.h). */
	if (ep->held && !ep->broken && !(ep->events & EPOLLOUT))
		tcp_tx_flush(ep);
	tcp_ep_close_gently(ep);
	tcp_ep_shut(ep, RDPS_TP_WC_FLUSH_ERR, NULL);
	tcp_cq_forget_ep(tp, base);
	tp->eps[ep->slot] = NULL;
	tcp_ep_count(tp, ep, -1);
	if (ep->disc_pending)
		__atomic_store_n(&tp->n_disc, tp->n_disc - 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&tp->lock);

	while ((t = ep->resp_free)) {
		ep->resp_free = t->next;
		free(t);
	}
	free(ep->rxbuf);
	free(ep->ops);
	free(ep);
}

/* Listening ------------------------------------------------------------- */

static int tcp_url(const char *url, int need_port, struct rdps_url *u)
{
	int ret = rdps_url_parse(url, need_port, u);

	if (ret)
		return ret;
	if (strcmp(u->scheme, "tcp"))
		return rdps_set_error(-EINVAL,
				      "url '%s' is not for the tcp "
				      "transport: use tcp://HOST:PORT",
				      url);
	return 0;
}

int tcp_listen(struct rdps_tp *tp, const char *url, const void *priv,
	       size_t priv_len, struct rdps_tp_listener **l_out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct tcp_listener *l;
	struct rdps_url u;
	char port[16];
	int ret, one = 1;

	ret = tcp_url(url, 1, &u);
	if (ret)
		return ret;
	l = calloc(1, sizeof(*l));
	if (!l)
		return rdps_set_error(-ENOMEM, "out of memory for a listener");
	l->fd = -1;
	l->base.tp = tp;
	snprintf(l->host, sizeof(l->host), "%s", u.host);
	l->wildcard = !strcmp(u.host, "*") || !strcmp(u.host, "0.0.0.0") ||
		      !strcmp(u.host, "::");
	if (priv_len)
		memcpy(l->priv, priv, priv_len);
	l->priv_len = (uint32_t)priv_len;

	snprintf(port, sizeof(port), "%d", u.port);
	ret = getaddrinfo(strcmp(u.host, "*") ? u.host : NULL, port, &hints,
			  &ai);
	if (ret) {
		ret = rdps_set_error(-EINVAL,
				     "cannot listen on '%s': host '%s' does "
				     "not resolve (%s); use a local address "
				     "or 0.0.0.0",
				     url, u.host, gai_strerror(ret));
		goto err_free;
	}
	l->fd = socket(ai->ai_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		ret = rdps_set_error(-errno, "tcp: socket: %s",
				     strerror(errno));
		goto err_freeai;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, ai->ai_addr, ai->ai_addrlen)) {
		ret = -errno;
		if (ret == -EADDRINUSE)
			rdps_set_error(ret,
				       "tcp port %d on %s is already in use: "
				       "stop the process holding it or listen "
				       "on another port (port 0 picks a free "
				       "one)",
				       u.port, u.host);
		else if (ret == -EADDRNOTAVAIL)
			rdps_set_error(ret,
				       "cannot listen on %s: not an address "
				       "of this host; use one of its "
				       "addresses or 0.0.0.0",
				       u.host);
		else
			rdps_set_error(ret, "cannot bind tcp %s:%d: %s", u.host,
				       u.port, strerror(-ret));
		goto err_close;
	}
	/* The kernel's own queue before accept: a short one drops the SYN of
	 * a real peer behind a burst of others for a second or more. */
	if (listen(l->fd, SOMAXCONN)) {
		ret = rdps_set_error(-errno, "cannot listen on tcp %s:%d: %s",
				     u.host, u.port, strerror(errno));
		goto err_close;
	}
	freeaddrinfo(ai);
	*l_out = &l->base;
	return 0;

err_close:
	close(l->fd);
err_freeai:
	freeaddrinfo(ai);
err_free:
	free(l);
	return ret;
}

int tcp_listener_url(struct rdps_tp_listener *base, char *buf, size_t len)
{
	struct tcp_listener *l = container_of(base, struct tcp_listener, base);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], serv[NI_MAXSERV];

	if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) ||
	    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, serv, sizeof(serv),
			NI_NUMERICSERV))
		return rdps_set_error(-errno ? -errno : -EINVAL,
				      "tcp: cannot read the listening port");
	snprintf(host, sizeof(host), "%s", l->host);
	/* A wildcard is not connectable: name this host instead. */
	if (l->wildcard && gethostname(host, sizeof(host)))
		snprintf(host, sizeof(host), "127.0.0.1");
	host[sizeof(host) - 1] = '\0';
	return rdps_url_format(buf, len, "tcp", host, (unsigned)atoi(serv));
}

static void tcp_pending_drop(struct tcp_listener *l, int i)
{
	close(l->pend[i].fd);
	l->pend[i] = l->pend[--l->n_pend];
}

static void tcp_send_hello(int fd, uint8_t kind, uint8_t reason, uint64_t token,
			   const void *priv, uint32_t priv_len)
{
	struct rdps_tcp_hello h = {.version = RDPS_TP_PROTO_VERSION,
				   .kind = kind,
				   .reason = reason,
				   .token = token,
				   .priv_len = priv_len};
	uint8_t buf[RDPS_TCP_HELLO_LEN];

	if (priv_len)
		memcpy(h.priv, priv, priv_len);
	rdps_tcp_hello_encode(&h, buf);
	/* A fresh socket's buffer takes 56 bytes; if not, the peer is gone
	 * and finds out on its own. */
	if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(buf))
		rdps_dbg("tcp: handshake reply not sent: %s", strerror(errno));
}

/* A pending peer's hello is complete: 1 and *ep_out if it is let in, 0 if
 * it was refused (and logged). The pending entry is consumed either way. */
static int tcp_pending_finish(struct tcp_listener *l, int i,
			      struct rdps_tp_ep **ep_out)
{
	struct tcp_tp *tp = to_tcp_tp(l->base.tp);
	struct tcp_pending *p = &l->pend[i];
	struct rdps_tcp_hello h;
	const char *why = "";
	int ret;

	if (rdps_tcp_hello_decode(p->buf, p->got, &h, &why)) {
		rdps_err("refused tcp peer %s: %s", p->peer, why);
		tcp_send_hello(p->fd, RDPS_TCP_REJECT, RDPS_TCP_REJ_MALFORMED,
			       0, NULL, 0);
	} else if (h.version != RDPS_TP_PROTO_VERSION) {
		rdps_err("refused tcp peer %s: protocol version %u, ours is %u "
			 "(run the same rdps version on both sides)",
			 p->peer, h.version, RDPS_TP_PROTO_VERSION);
		tcp_send_hello(p->fd, RDPS_TCP_REJECT, RDPS_TCP_REJ_VERSION, 0,
			       NULL, 0);
	} else if (h.kind != RDPS_TCP_HELLO) {
		rdps_err("refused tcp peer %s: handshake out of order",
			 p->peer);
	} else if (h.token != tp->token) {
		rdps_err("refused tcp peer %s: wrong job token (both sides "
			 "must use the same token)",
			 p->peer);
		tcp_send_hello(p->fd, RDPS_TCP_REJECT, RDPS_TCP_REJ_TOKEN, 0,
			       NULL, 0);
	} else {
		tcp_sock_tune(p->fd);
		ret = tcp_ep_create(tp, p->fd, p->peer, &h, ep_out);
		if (!ret) {
			/* The connector learns it is in only from this. */
			tcp_send_hello(p->fd, RDPS_TCP_ACCEPT, 0, tp->token,
				       l->priv, l->priv_len);
			l->pend[i] = l->pend[--l->n_pend];
			return 1;
		}
		rdps_err("dropped tcp peer %s: %s", p->peer, rdps_errmsg());
	}
	tcp_pending_drop(l, i);
	return 0;
}

/* Make room for a new connection: the oldest unfinished handshake goes,
 * told that the listener is busy so that a real peer retries. */
static void tcp_pending_evict(struct tcp_listener *l)
{
	int old = 0;

	for (int i = 1; i < l->n_pend; i++)
		if (l->pend[i].deadline < l->pend[old].deadline)
			old = i;
	rdps_dbg("tcp: %d peers in the handshake; dropped the oldest, %s",
		 l->n_pend, l->pend[old].peer);
	tcp_send_hello(l->pend[old].fd, RDPS_TCP_REJECT, RDPS_TCP_REJ_BUSY, 0,
		       NULL, 0);
	tcp_pending_drop(l, old);
}

static void tcp_accept_new(struct tcp_listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tcp_pending *p;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of descriptors: the connection waiting is
			 * likelier a real peer than the oldest silent one. */
			if ((errno == EMFILE || errno == ENFILE) && l->n_pend) {
				tcp_pending_evict(l);
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				rdps_warn("tcp accept: %s", strerror(errno));
			return;
		}
		if (l->n_pend == TCP_MAX_PENDING)
			tcp_pending_evict(l);
		p = &l->pend[l->n_pend++];
		p->fd = fd;
		p->got = 0;
		p->deadline = rdps_deadline(TCP_HELLO_TIMEOUT_MS);
		tcp_sockaddr_str((struct sockaddr *)&ss, sl, p->peer,
				 sizeof(p->peer));
	}
}

int tcp_accept(struct rdps_tp_listener *base, struct rdps_tp_ep **ep_out,
	       int timeout_ms)
{
	struct tcp_listener *l = container_of(base, struct tcp_listener, base);
	uint64_t deadline = rdps_deadline(timeout_ms);
	struct pollfd pfd[1 + TCP_MAX_PENDING];

	for (;;) {
		uint64_t wake = deadline, now = rdps_now_ns();
		int n_pend = l->n_pend, n;

		pfd[0] = (struct pollfd){.fd = l->fd, .events = POLLIN};
		for (int i = n_pend; i-- > 0;) {
			if (now >= l->pend[i].deadline) {
				rdps_warn("tcp peer %s sent no handshake "
					  "within %d ms; dropped",
					  l->pend[i].peer,
					  TCP_HELLO_TIMEOUT_MS);
				tcp_pending_drop(l, i);
			}
		}
		n_pend = l->n_pend;
		for (int i = 0; i < n_pend; i++) {
			pfd[1 + i] = (struct pollfd){.fd = l->pend[i].fd,
						     .events = POLLIN};
			if (l->pend[i].deadline < wake)
				wake = l->pend[i].deadline;
		}
		n = poll(pfd, (nfds_t)(1 + n_pend),
			 timeout_ms == 0 ? 0 : rdps_ms_left(wake));
		if (n < 0 && errno != EINTR)
			return rdps_set_error(-errno, "tcp accept: poll: %s",
					      strerror(errno));
		/* Highest index first: finishing one moves the last entry
		 * into its place. */
		for (int i = n > 0 ? n_pend : 0; i-- > 0;) {
			struct tcp_pending *p = &l->pend[i];
			ssize_t r;

			if (!pfd[1 + i].revents)
				continue;
			r = recv(p->fd, p->buf + p->got,
				 RDPS_TCP_HELLO_LEN - p->got, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				rdps_dbg("tcp peer %s left during the "
					 "handshake",
					 p->peer);
				tcp_pending_drop(l, i);
				continue;
			}
			p->got += (size_t)r;
			if (p->got == RDPS_TCP_HELLO_LEN &&
			    tcp_pending_finish(l, i, ep_out))
				return 0;
		}
		if (n > 0 && (pfd[0].revents & POLLIN))
			tcp_accept_new(l);
		if (timeout_ms == 0 || rdps_now_ns() >= deadline)
			break;
	}
	return rdps_set_error(-ETIMEDOUT,
			      "no tcp peer completed a connection within %d "
			      "ms",
			      timeout_ms);
}

void tcp_listener_close(struct rdps_tp_listener *base)
{
	struct tcp_listener *l = container_of(base, struct tcp_listener, base);

	while (l->n_pend)
		tcp_pending_drop(l, l->n_pend - 1);
	close(l->fd);
	free(l);
}

/* Connecting ------------------------------------------------------------ */

/* Connect one address by the deadline: fd, or -errno. */
static int tcp_try_connect(const struct addrinfo *a, uint64_t deadline)
{
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, err = 0, n;

	fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	if (!connect(fd, a->ai_addr, a->ai_addrlen))
		return fd;
	if (errno != EINPROGRESS) {
		err = -errno;
		goto err_close;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	do {
		n = poll(&pfd, 1, rdps_ms_left(deadline));
	} while (n < 0 && errno == EINTR);
	if (n == 0) {
		err = -ETIMEDOUT;
		goto err_close;
	}
	if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl)) {
		err = -errno;
		goto err_close;
	}
	if (err) {
		err = -err;
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return err;
}

/* Move exactly len bytes through a non-blocking socket by the deadline:
 * 0, -ETIMEDOUT, -ECONNRESET (peer closed) or another -errno. */
static int tcp_xfer(int fd, void *buf, size_t len, int out, uint64_t deadline)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = {.fd = fd,
				     .events = out ? POLLOUT : POLLIN};
		ssize_t r = out ? send(fd, (uint8_t *)buf + done, len - done,
				       MSG_NOSIGNAL | MSG_DONTWAIT)
				: recv(fd, (uint8_t *)buf + done, len - done,
				       MSG_DONTWAIT);
		int n;

		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		n = poll(&pfd, 1, rdps_ms_left(deadline));
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

static int tcp_handshake(struct tcp_tp *tp, int fd, const char *url,
			 const void *priv, size_t priv_len, uint64_t deadline,
			 int timeout_ms, struct rdps_tcp_hello *h_out)
{
	struct rdps_tcp_hello h = {.version = RDPS_TP_PROTO_VERSION,
				   .kind = RDPS_TCP_HELLO,
				   .token = tp->token,
				   .priv_len = (uint32_t)priv_len};
	uint8_t buf[RDPS_TCP_HELLO_LEN];
	const char *why = "";
	int ret;

	if (priv_len)
		memcpy(h.priv, priv, priv_len);
	rdps_tcp_hello_encode(&h, buf);
	ret = tcp_xfer(fd, buf, sizeof(buf), 1, deadline);
	if (!ret)
		ret = tcp_xfer(fd, buf, sizeof(buf), 0, deadline);
	if (ret == -ETIMEDOUT)
		return rdps_set_error(ret,
				      "%s took the connection but did not "
				      "answer the handshake within %d ms: is "
				      "an rdps server accepting there?",
				      url, timeout_ms);
	if (ret == -ECONNRESET || ret == -EPIPE)
		return rdps_set_error(-ECONNRESET,
				      "%s closed the connection before "
				      "answering our handshake: it was "
				      "stopping, is no rdps tcp listener, or "
				      "dropped us",
				      url);
	if (ret)
		return rdps_set_error(ret, "%s: the handshake failed: %s", url,
				      strerror(-ret));
	if (rdps_tcp_hello_decode(buf, sizeof(buf), &h, &why))
		return rdps_set_error(-EPROTO, "%s is no rdps tcp peer: %s",
				      url, why);
	if (h.kind == RDPS_TCP_REJECT && h.reason == RDPS_TCP_REJ_TOKEN)
		return rdps_set_error(-EACCES,
				      "%s refused our job token: give both "
				      "sides the same token",
				      url);
	if (h.kind == RDPS_TCP_REJECT && h.reason == RDPS_TCP_REJ_VERSION)
		return rdps_set_error(-EPROTO,
				      "%s refused our protocol version %u "
				      "(it speaks %u): run the same rdps "
				      "version on both sides",
				      url, RDPS_TP_PROTO_VERSION, h.version);
	if (h.kind == RDPS_TCP_REJECT && h.reason == RDPS_TCP_REJ_BUSY)
		return rdps_set_error(
			-EBUSY,
			"%s is busy: it holds %d connections "
			"that have not finished their handshake "
			"(idle or hostile peers) and dropped ours "
			"for a newer one",
			url, TCP_MAX_PENDING);
	if (h.kind == RDPS_TCP_REJECT)
		return rdps_set_error(-EPROTO, "%s refused our handshake", url);
	if (h.version != RDPS_TP_PROTO_VERSION)
		return rdps_set_error(-EPROTO,
				      "%s answered with protocol version %u, "
				      "ours is %u: run the same rdps version "
				      "on both sides",
				      url, h.version, RDPS_TP_PROTO_VERSION);
	if (h.kind != RDPS_TCP_ACCEPT)
		return rdps_set_error(
			-EPROTO,
			"%s answered out of order (message kind "
			"%u instead of accept): is it an rdps tcp "
			"listener?",
			url, h.kind);
	/* Both sides check: a listener of another job must not get our
	 * requests (nor serve us its memory) just by saying yes. */
	if (h.token != tp->token)
		return rdps_set_error(-EACCES,
				      "%s accepted us with another job token: "
				      "it serves another job; give both sides "
				      "the same token",
				      url);
	*h_out = h;
	return 0;
}

int tcp_connect(struct rdps_tp *base, const char *url, const void *priv,
		size_t priv_len, struct rdps_tp_ep **ep_out, int timeout_ms)
{
	struct tcp_tp *tp = to_tcp_tp(base);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	uint64_t deadline = rdps_deadline(timeout_ms);
	struct addrinfo *ai, *a;
	struct rdps_tcp_hello h;
	struct rdps_url u;
	char port[16], peer[64];
	int ret, fd = -ECONNREFUSED;

	ret = tcp_url(url, 1, &u);
	if (ret)
		return ret;
	if (u.port == 0)
		return rdps_set_error(-EINVAL,
				      "cannot connect to port 0 in '%s': use "
				      "the port the listener reports",
				      url);
	snprintf(port, sizeof(port), "%d", u.port);
	ret = getaddrinfo(u.host, port, &hints, &ai);
	if (ret)
		return rdps_set_error(-EHOSTUNREACH,
				      "cannot resolve tcp host '%s' (%s): "
				      "check the name or use a numeric "
				      "address",
				      u.host, gai_strerror(ret));
	for (a = ai; a; a = a->ai_next) {
		fd = tcp_try_connect(a, deadline);
		if (fd >= 0 || fd == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(ai);
	if (fd == -ECONNREFUSED)
		return rdps_set_error(fd,
				      "nobody listens on %s: start the "
				      "server first or check host and port",
				      url);
	if (fd == -ETIMEDOUT)
		return rdps_set_error(fd,
				      "no answer from %s within %d ms: check "
				      "the host, the port and firewalls",
				      url, timeout_ms);
	if (fd < 0)
		return rdps_set_error(fd, "cannot connect to %s: %s", url,
				      strerror(-fd));
	tcp_sock_tune(fd);
	ret = tcp_handshake(tp, fd, url, priv, priv_len, deadline, timeout_ms,
			    &h);
	if (ret)
		goto err_close;
	tcp_peer_str(fd, peer, sizeof(peer));
	ret = tcp_ep_create(tp, fd, peer, &h, ep_out);
	if (ret)
		goto err_close;
	return 0;

err_close:
	close(fd);
	return ret;
}
