/* SPDX-License-Identifier: MIT */
/*
 * test_handshake.c - the connection handshakes of the tcp and shm
 * transports against hand-made peers: a peer speaking another protocol
 * version, and peers sending garbage. The API always sends our own
 * version, so the conformance suite cannot produce these; here raw
 * sockets play the other side.
 *
 *   listener side: the real rdps listener runs in the test process; a raw
 *   socket connects and sends a bad hello; the test drives rdps_tp_accept()
 *   in short slices until the raw socket is answered or closed (no sleeps),
 *   checks the refusal, and then a real rdps peer in a forked child must
 *   still be accepted;
 *
 *   connector side: a raw fake listener in a forked child answers an rdps
 *   connect with a hello of version RDPS_TP_PROTO_VERSION + 1 (or garbage);
 *   rdps_tp_connect() must fail with -EPROTO and an rdps_errmsg() naming
 *   the version, leave no endpoint behind, and close its socket.
 *
 * Also the job token and the user, from the connector's side: a listener
 * answering with another job's token is refused (tcp, shm), and on shm
 * (as root) a listener or peer of another user is refused before any
 * memory changes hands.
 *
 * The tcp hello is built from the layout in tcp/tcp.h. The shm hello is
 * private to transport/shm/ (struct shm_hello in shm.h, native byte order,
 * 88 bytes); its layout is restated here as struct fake_shm_hello, and a
 * change there must be mirrored.
 *
 * Processes follow tp_conformance.c's rule: children are forked before the
 * test process opens a transport instance, and report with
 * TH_CHILD_CHECK, never with cmocka.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <grp.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "tp_harness.h"
#include "transport.h"
#ifdef RDPS_TRANSPORT_TCP
#include "tcp/tcp.h"
#endif

#define TOKEN 0x4853484b54455354ull /* "HSHKTEST" */
#define WAIT_MS 5000		    /* any single expected event */
#define SLICE_MS 20		    /* one accept() slice while driving */
#define CHILD_MS 20000		    /* a child waiting for the parent */
#define HEAP_SIZE (64u << 20)

static const char listener_priv[] = "hs-listener";
static const char peer_priv[] = "hs-good-peer";

static void test_cfg(struct rdps_tp_cfg *cfg)
{
	rdps_tp_cfg_default(cfg);
	cfg->token = TOKEN;
	cfg->shm_heap_size = HEAP_SIZE;
}

/* Does msg mention the number v as a whole number, outside url? The URL
 * carries a port or name that may contain any digit. */
static int mentions_number(const char *msg, const char *url, unsigned v)
{
	char buf[600];
	char *p;

	snprintf(buf, sizeof(buf), "%s", msg);
	while (url && *url && (p = strstr(buf, url)))
		memset(p, ' ', strlen(url));
	for (p = buf; *p;) {
		if (isdigit((unsigned char)*p)) {
			char *end;
			unsigned long n = strtoul(p, &end, 10);

			if (n == v)
				return 1;
			p = end;
		} else {
			p++;
		}
	}
	return 0;
}

/* Open descriptors of this process: equal before and after a case, or
 * the transport leaked one (a refused peer's socket, a received memfd). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void check_fds(int before, const char *what)
{
	int after = count_fds();

	CHECK(after == before, "%s: %d descriptors open before, %d after", what,
	      before, after);
}

/* The good peer (child) ------------------------------------------------ */

struct peer_cmd {
	char url[200];
};

struct peer_rep {
	int32_t ret;
	uint32_t priv_len;
	uint8_t priv[RDPS_TP_PRIV_MAX];
	char err[256];
};

/* Connect to the URL the parent sends, report, hold the endpoint until
 * the parent says done. */
static int good_peer_main(int fd, void *arg)
{
	struct rdps_tp_ep *ep = NULL;
	struct rdps_tp_cfg cfg;
	struct peer_cmd cmd;
	struct peer_rep rep;
	struct rdps_tp *tp;
	char done;
	int ret;

	(void)arg;
	ret = th_recv(fd, &cmd, sizeof(cmd), CHILD_MS);
	TH_CHILD_CHECK("peer", !ret, "no url from the parent: %s",
		       strerror(-ret));
	cmd.url[sizeof(cmd.url) - 1] = '\0';
	test_cfg(&cfg);
	ret = rdps_tp_open(cmd.url, &cfg, &tp);
	TH_CHILD_CHECK("peer", !ret, "open %s: %s", cmd.url, rdps_errmsg());
	memset(&rep, 0, sizeof(rep));
	rep.ret = rdps_tp_connect(tp, cmd.url, peer_priv, sizeof(peer_priv),
				  &ep, WAIT_MS);
	if (!rep.ret) {
		rep.priv_len = ep->peer_priv_len;
		memcpy(rep.priv, ep->peer_priv, sizeof(rep.priv));
	} else {
		snprintf(rep.err, sizeof(rep.err), "%s", rdps_errmsg());
	}
	ret = th_send(fd, &rep, sizeof(rep));
	TH_CHILD_CHECK("peer", !ret, "report: %s", strerror(-ret));
	th_recv(fd, &done, 1, CHILD_MS);
	if (ep)
		rdps_tp_ep_close(ep);
	ret = rdps_tp_close(tp);
	TH_CHILD_CHECK("peer", !ret, "close: %d", ret);
	return 0;
}

static void peer_spawn(struct th_child *c)
{
	int ret = th_spawn(c, "good peer", good_peer_main, NULL);

	CHECK(!ret, "fork the good peer: %s", strerror(-ret));
}

static void reap_ok(struct th_child *c)
{
	char why[128];
	int st = th_reap(c, 10000);

	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s: %s",
	      c->role ? c->role : "?", th_status_str(st, why, sizeof(why)));
}

/*
 * The listener, after whatever came before, accepts a real peer: the
 * first endpoint accept returns is that peer's, with its private data,
 * and the peer got the listener's. Reaps the peer.
 */
static void expect_good_peer_accepted(struct th_child *c,
				      struct rdps_tp_listener *l,
				      const char *url)
{
	struct rdps_tp_ep *ep = NULL;
	struct peer_cmd cmd;
	struct peer_rep rep;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	snprintf(cmd.url, sizeof(cmd.url), "%s", url);
	CHECK(!th_send(c->fd, &cmd, sizeof(cmd)), "good peer is gone");
	rdps_clear_error();
	ret = rdps_tp_accept(l, &ep, WAIT_MS);
	CHECK(ret == 0, "listener no longer accepts a good peer: %d (%s)", ret,
	      rdps_errmsg());
	CHECK(ep->peer_priv_len == sizeof(peer_priv) &&
		      !memcmp(ep->peer_priv, peer_priv, sizeof(peer_priv)),
	      "the endpoint accepted is not the good peer's (priv len %u)",
	      ep->peer_priv_len);
	ret = th_recv(c->fd, &rep, sizeof(rep), WAIT_MS);
	CHECK(!ret, "no report from the good peer: %s", strerror(-ret));
	rep.err[sizeof(rep.err) - 1] = '\0';
	CHECK(rep.ret == 0, "good peer's connect failed: %d (%s)", rep.ret,
	      rep.err);
	CHECK(rep.priv_len == sizeof(listener_priv) &&
		      !memcmp(rep.priv, listener_priv, sizeof(listener_priv)),
	      "good peer got the wrong listener private data");
	rdps_tp_ep_close(ep);
	/* No refused peer turned into an endpoint behind the good one. */
	ep = NULL;
	ret = rdps_tp_accept(l, &ep, 0);
	CHECK(ret == -ETIMEDOUT, "accept found another endpoint: %d", ret);
	CHECK(!th_send(c->fd, "x", 1), "good peer is gone");
	reap_ok(c);
}

/* Raw side helpers ------------------------------------------------------- */

/*
 * Run the listener in short accept() slices until raw fd has something to
 * read: an answer, an end of file or a reset. A refused peer must never
 * become an endpoint.
 */
static void drive_until_answered(struct rdps_tp_listener *l, int fd)
{
	uint64_t deadline = th_now_ms() + WAIT_MS;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		struct rdps_tp_ep *ep = NULL;
		int ret;

		if (poll(&pfd, 1, 0) > 0)
			return;
		CHECK(th_now_ms() < deadline,
		      "listener neither answered nor closed a bad peer "
		      "within %d ms",
		      WAIT_MS);
		ret = rdps_tp_accept(l, &ep, SLICE_MS);
		CHECK(ret == -ETIMEDOUT,
		      "accept returned %d while only a bad peer was there",
		      ret);
	}
}

/*
 * Read everything the other side sends until it closes: the byte count
 * (at most cap; more is a failure) and in *end_out 0 for an end of file or
 * -errno (-ECONNRESET when it closed with our bytes unread).
 */
static size_t raw_drain(int fd, uint8_t *buf, size_t cap, int *end_out)
{
	uint64_t deadline = th_now_ms() + WAIT_MS;
	uint8_t extra[64];
	size_t got = 0;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = th_now_ms();
		ssize_t n;

		if (poll(&pfd, 1,
			 now >= deadline ? 0 : (int)(deadline - now)) <= 0) {
			*end_out = -ETIMEDOUT;
			return got;
		}
		if (got < cap)
			n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
		else
			n = recv(fd, extra, sizeof(extra), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			*end_out = n ? -errno : 0;
			return got;
		}
		CHECK(got < cap, "the listener sent more than %zu bytes", cap);
		got += (size_t)n;
	}
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	th_fill(p, n, seed, 0);
}

#ifdef RDPS_TRANSPORT_TCP

/* tcp ------------------------------------------------------------------- */

static void be16_at(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32_at(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void be64_at(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t be16_of(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32_of(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64_of(const uint8_t *p)
{
	return (uint64_t)be32_of(p) << 32 | be32_of(p + 4);
}

/* A tcp handshake message by hand (tcp.h layout). */
static void tcp_hello_raw(uint8_t *p, uint16_t version, uint8_t kind,
			  uint8_t reason, uint64_t token, uint32_t priv_len)
{
	memset(p, 0, RDPS_TCP_HELLO_LEN);
	be32_at(p, RDPS_TCP_HELLO_MAGIC);
	be16_at(p + 4, version);
	p[6] = kind;
	p[7] = reason;
	be64_at(p + 8, token);
	be32_at(p + 16, priv_len);
	for (uint32_t i = 0; i < priv_len && i < RDPS_TP_PRIV_MAX; i++)
		p[24 + i] = (uint8_t)('a' + i);
}

static int tcp_port_of(const char *url)
{
	const char *c = strrchr(url, ':');

	return c ? atoi(c + 1) : -1;
}

static int raw_tcp_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(!connect(fd, (struct sockaddr *)&sa, sizeof(sa)),
	      "raw connect to port %d: %s", port, strerror(errno));
	return fd;
}

/* A raw listening socket on 127.0.0.1, port into *port_out. */
static int raw_tcp_listen(int *port_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(fd, 4),
	      "raw listen: %s", strerror(errno));
	CHECK(!getsockname(fd, (struct sockaddr *)&sa, &sl), "getsockname");
	*port_out = ntohs(sa.sin_port);
	return fd;
}

struct tcp_side {
	struct rdps_tp *tp;
	struct rdps_tp_listener *l;
	char url[128];
	int port;
};

static void tcp_side_open(struct tcp_side *s)
{
	struct rdps_tp_cfg cfg;
	int ret;

	test_cfg(&cfg);
	ret = rdps_tp_open("tcp", &cfg, &s->tp);
	CHECK(!ret, "open tcp: %s", rdps_errmsg());
	ret = rdps_tp_listen(s->tp, "tcp://127.0.0.1:0", listener_priv,
			     sizeof(listener_priv), &s->l);
	CHECK(!ret, "listen: %s", rdps_errmsg());
	ret = rdps_tp_listener_url(s->l, s->url, sizeof(s->url));
	CHECK(!ret, "listener url: %s", rdps_errmsg());
	s->port = tcp_port_of(s->url);
	CHECK(s->port > 0, "no port in %s", s->url);
}

static void tcp_side_close(struct tcp_side *s)
{
	int ret;

	rdps_tp_listener_close(s->l);
	ret = rdps_tp_close(s->tp);
	CHECK(!ret, "close the listening instance: %d (endpoints left?)", ret);
}

/* Send buf from a fresh raw connection (then half-close if asked), let
 * the listener deal with it, and return what it answered. */
static size_t tcp_bad_peer(struct tcp_side *s, const void *buf, size_t len,
			   int half_close, uint8_t *answer, int *end_out)
{
	int fd = raw_tcp_connect(s->port);
	size_t got;

	if (len)
		CHECK(!th_send(fd, buf, len), "raw send failed");
	if (half_close)
		shutdown(fd, SHUT_WR);
	drive_until_answered(s->l, fd);
	got = raw_drain(fd, answer, RDPS_TCP_HELLO_LEN, end_out);
	close(fd);
	return got;
}

/* The listener refused: closed with no answer, or sent one REJECT. */
static void expect_tcp_refused(size_t got, const uint8_t *answer, int end,
			       const char *what)
{
	CHECK(end == 0 || end == -ECONNRESET,
	      "%s: the listener kept the connection open (%s)", what,
	      strerror(-end));
	if (!got)
		return;
	CHECK(got == RDPS_TCP_HELLO_LEN,
	      "%s: the listener answered %zu bytes, not a hello", what, got);
	CHECK(be32_of(answer) == RDPS_TCP_HELLO_MAGIC, "%s: answer magic",
	      what);
	CHECK(answer[6] == RDPS_TCP_REJECT, "%s: answer kind %u, want REJECT",
	      what, answer[6]);
	CHECK(answer[7] != RDPS_TCP_REJ_NONE, "%s: REJECT without a reason",
	      what);
	CHECK(be64_of(answer + 8) != TOKEN,
	      "%s: a refused peer was told the job token", what);
}

static void t_tcp_listener_refuses_version(void **state)
{
	uint8_t hello[RDPS_TCP_HELLO_LEN], answer[RDPS_TCP_HELLO_LEN];
	struct th_child peer;
	struct tcp_side s;
	int fds;
	size_t got;
	int end;

	(void)state;
	fds = count_fds();
	peer_spawn(&peer);
	tcp_side_open(&s);

	/* Everything right but the version: token, kind, private data. */
	tcp_hello_raw(hello, RDPS_TP_PROTO_VERSION + 1, RDPS_TCP_HELLO, 0,
		      TOKEN, 4);
	got = tcp_bad_peer(&s, hello, sizeof(hello), 0, answer, &end);
	CHECK(got == RDPS_TCP_HELLO_LEN,
	      "a peer of version %u got %zu bytes back, want a REJECT",
	      RDPS_TP_PROTO_VERSION + 1, got);
	CHECK(end == 0, "no clean close after the REJECT: %s", strerror(-end));
	CHECK(be32_of(answer) == RDPS_TCP_HELLO_MAGIC, "bad magic in answer");
	CHECK(answer[6] == RDPS_TCP_REJECT, "answer kind %u, want REJECT",
	      answer[6]);
	CHECK(answer[7] == RDPS_TCP_REJ_VERSION,
	      "reject reason %u, want VERSION (%u)", answer[7],
	      RDPS_TCP_REJ_VERSION);
	/* The REJECT names the version the listener speaks. */
	CHECK(be16_of(answer + 4) == RDPS_TP_PROTO_VERSION,
	      "REJECT carries version %u, want ours %u", be16_of(answer + 4),
	      RDPS_TP_PROTO_VERSION);
	CHECK(be64_of(answer + 8) != TOKEN,
	      "a refused peer was told the job token");

	/* Version 0 as well: a peer too old rather than too new. */
	tcp_hello_raw(hello, 0, RDPS_TCP_HELLO, 0, TOKEN, 0);
	got = tcp_bad_peer(&s, hello, sizeof(hello), 0, answer, &end);
	CHECK(got == RDPS_TCP_HELLO_LEN && answer[6] == RDPS_TCP_REJECT &&
		      answer[7] == RDPS_TCP_REJ_VERSION,
	      "version 0: got %zu bytes, kind %u reason %u", got, answer[6],
	      answer[7]);

	expect_good_peer_accepted(&peer, s.l, s.url);
	tcp_side_close(&s);
	check_fds(fds, "tcp listener");
}

static void t_tcp_listener_survives_garbage(void **state)
{
	uint8_t buf[300], answer[RDPS_TCP_HELLO_LEN];
	struct th_child peer;
	struct tcp_side s;
	int fds;
	size_t got;
	int end;

	(void)state;
	fds = count_fds();
	peer_spawn(&peer);
	tcp_side_open(&s);

	/* 56 random bytes, exactly a hello's worth. */
	fill_random(buf, RDPS_TCP_HELLO_LEN, 0xbad1);
	buf[0] = 0x00; /* never the magic by chance */
	got = tcp_bad_peer(&s, buf, RDPS_TCP_HELLO_LEN, 0, answer, &end);
	expect_tcp_refused(got, answer, end, "56 random bytes");

	/* More garbage than a hello: the rest is never read. */
	fill_random(buf, sizeof(buf), 0xbad2);
	buf[0] = 0x00;
	got = tcp_bad_peer(&s, buf, sizeof(buf), 0, answer, &end);
	expect_tcp_refused(got, answer, end, "300 random bytes");

	/* The start of a valid hello, then the end of the stream. */
	tcp_hello_raw(buf, RDPS_TP_PROTO_VERSION, RDPS_TCP_HELLO, 0, TOKEN, 0);
	got = tcp_bad_peer(&s, buf, 20, 1, answer, &end);
	CHECK(got == 0, "a short hello got %zu bytes of answer", got);
	expect_tcp_refused(got, answer, end, "short hello, then close");

	/* Nothing at all, then the end of the stream. */
	got = tcp_bad_peer(&s, NULL, 0, 1, answer, &end);
	CHECK(got == 0, "an empty connection got %zu bytes of answer", got);
	expect_tcp_refused(got, answer, end, "empty connection");

	/* A valid message of the wrong kind: the listener's own ACCEPT. */
	tcp_hello_raw(buf, RDPS_TP_PROTO_VERSION, RDPS_TCP_ACCEPT, 0, TOKEN, 0);
	got = tcp_bad_peer(&s, buf, RDPS_TCP_HELLO_LEN, 0, answer, &end);
	expect_tcp_refused(got, answer, end, "ACCEPT instead of HELLO");

	/* Right version, malformed private data length. */
	tcp_hello_raw(buf, RDPS_TP_PROTO_VERSION, RDPS_TCP_HELLO, 0, TOKEN, 0);
	be32_at(buf + 16, RDPS_TP_PRIV_MAX + 1);
	got = tcp_bad_peer(&s, buf, RDPS_TCP_HELLO_LEN, 0, answer, &end);
	expect_tcp_refused(got, answer, end, "priv_len 33");

	expect_good_peer_accepted(&peer, s.l, s.url);
	tcp_side_close(&s);
	check_fds(fds, "tcp listener");
}

enum fake_mode {
	FAKE_ACCEPT_NEWER,   /* ACCEPT, version + 1 */
	FAKE_REJECT_VERSION, /* REJECT/VERSION, version + 1 */
	FAKE_GARBAGE,	     /* 56 random bytes */
	FAKE_HANG_UP,	     /* read the hello, close without answering */
	FAKE_HELLO_BACK,     /* a HELLO of our version instead of ACCEPT */
	FAKE_OTHER_TOKEN,    /* ACCEPT of our version, another job token */
};

struct fake_arg {
	int lfd;
	enum fake_mode mode;
};

/* Wait for one connection on lfd within WAIT_MS. */
static int fake_accept(int lfd, const char *role)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	int fd;

	TH_CHILD_CHECK(role, poll(&pfd, 1, WAIT_MS) == 1,
		       "nobody connected to the fake listener");
	fd = accept(lfd, NULL, NULL);
	TH_CHILD_CHECK(role, fd >= 0, "accept: %s", strerror(errno));
	close(lfd);
	return fd;
}

/* A tcp "listener" of the next protocol version, in a child. */
static int fake_tcp_main(int ch, void *arg)
{
	const struct fake_arg *a = arg;
	uint8_t in[RDPS_TCP_HELLO_LEN], out[RDPS_TCP_HELLO_LEN], byte;
	int fd, ret;

	(void)ch;
	fd = fake_accept(a->lfd, "fake tcp listener");
	ret = th_recv(fd, in, sizeof(in), WAIT_MS);
	TH_CHILD_CHECK("fake tcp listener", !ret, "no hello: %s",
		       strerror(-ret));
	/* The connector's hello is well-formed and of our version. */
	TH_CHILD_CHECK("fake tcp listener",
		       be32_of(in) == RDPS_TCP_HELLO_MAGIC &&
			       be16_of(in + 4) == RDPS_TP_PROTO_VERSION &&
			       in[6] == RDPS_TCP_HELLO &&
			       be64_of(in + 8) == TOKEN &&
			       be32_of(in + 16) == sizeof(peer_priv) &&
			       !memcmp(in + 24, peer_priv, sizeof(peer_priv)),
		       "the connector's hello is not what tcp.h describes");
	switch (a->mode) {
	case FAKE_ACCEPT_NEWER:
		tcp_hello_raw(out, RDPS_TP_PROTO_VERSION + 1, RDPS_TCP_ACCEPT,
			      0, TOKEN, 0);
		break;
	case FAKE_REJECT_VERSION:
		tcp_hello_raw(out, RDPS_TP_PROTO_VERSION + 1, RDPS_TCP_REJECT,
			      RDPS_TCP_REJ_VERSION, 0, 0);
		break;
	case FAKE_GARBAGE:
		fill_random(out, sizeof(out), 0xfa4e);
		out[0] = 0;
		break;
	case FAKE_HANG_UP:
		close(fd);
		return 0;
	case FAKE_HELLO_BACK:
		tcp_hello_raw(out, RDPS_TP_PROTO_VERSION, RDPS_TCP_HELLO, 0,
			      TOKEN, 0);
		break;
	case FAKE_OTHER_TOKEN:
		tcp_hello_raw(out, RDPS_TP_PROTO_VERSION, RDPS_TCP_ACCEPT, 0,
			      TOKEN ^ 1, 0);
		break;
	}
	ret = th_send(fd, out, sizeof(out));
	TH_CHILD_CHECK("fake tcp listener", !ret, "send: %s", strerror(-ret));
	/* A connector that gave up must also let go of the socket. */
	ret = th_recv(fd, &byte, 1, WAIT_MS);
	TH_CHILD_CHECK("fake tcp listener", ret == -EPIPE || ret == -ECONNRESET,
		       "the failed connector kept its socket: %s",
		       ret ? strerror(-ret) : "it sent more bytes");
	close(fd);
	return 0;
}

/* Connect to a fake tcp listener in mode; returns connect's result with
 * the message in err. */
static int tcp_connect_fake(enum fake_mode mode, char *url, size_t url_len,
			    char *err, size_t err_len)
{
	struct fake_arg a = {.mode = mode};
	struct rdps_tp_ep *ep = NULL;
	struct rdps_tp_cfg cfg;
	struct th_child fake;
	struct rdps_tp *tp;
	int port, ret, ret2, fds;

	a.lfd = raw_tcp_listen(&port);
	ret = th_spawn(&fake, "fake tcp listener", fake_tcp_main, &a);
	CHECK(!ret, "fork: %s", strerror(-ret));
	close(a.lfd);
	snprintf(url, url_len, "tcp://127.0.0.1:%d", port);

	fds = count_fds();
	test_cfg(&cfg);
	ret = rdps_tp_open("tcp", &cfg, &tp);
	CHECK(!ret, "open tcp: %s", rdps_errmsg());
	rdps_clear_error();
	ret = rdps_tp_connect(tp, url, peer_priv, sizeof(peer_priv), &ep,
			      WAIT_MS);
	snprintf(err, err_len, "%s", rdps_errmsg());
	CHECK(ret != 0, "connected to a fake listener (mode %d)", (int)mode);
	ret2 = rdps_tp_close(tp);
	CHECK(ret2 == 0, "failed connect left the instance busy: %d", ret2);
	check_fds(fds, "tcp connect");
	reap_ok(&fake);
	return ret;
}

static void t_tcp_connect_newer_accept(void **state)
{
	char url[64], err[512];
	int ret;

	(void)state;
	ret = tcp_connect_fake(FAKE_ACCEPT_NEWER, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EPROTO,
	      "connect to a version %u listener: %d, want "
	      "-EPROTO (%s)",
	      RDPS_TP_PROTO_VERSION + 1, ret, err);
	CHECK(strstr(err, "version"), "message does not say 'version': %s",
	      err);
	CHECK(mentions_number(err, url, RDPS_TP_PROTO_VERSION + 1),
	      "message does not name the peer's version %u: %s",
	      RDPS_TP_PROTO_VERSION + 1, err);
}

static void t_tcp_connect_newer_reject(void **state)
{
	char url[64], err[512];
	int ret;

	(void)state;
	ret = tcp_connect_fake(FAKE_REJECT_VERSION, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EPROTO,
	      "REJECT/VERSION from a version %u listener: "
	      "%d, want -EPROTO (%s)",
	      RDPS_TP_PROTO_VERSION + 1, ret, err);
	CHECK(strstr(err, "version"), "message does not say 'version': %s",
	      err);
	CHECK(mentions_number(err, url, RDPS_TP_PROTO_VERSION + 1),
	      "message does not name the peer's version %u: %s",
	      RDPS_TP_PROTO_VERSION + 1, err);
}

static void t_tcp_connect_garbage(void **state)
{
	char url[64], err[512];
	int ret;

	(void)state;
	ret = tcp_connect_fake(FAKE_GARBAGE, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EPROTO, "garbage answer: %d, want -EPROTO (%s)", ret,
	      err);
	CHECK(*err, "no explanation for a garbage answer");

	ret = tcp_connect_fake(FAKE_HANG_UP, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret < 0 && ret != -ETIMEDOUT,
	      "listener hung up in the handshake: %d (%s)", ret, err);
	CHECK(*err, "no explanation for a hang-up in the handshake");
}

/*
 * A peer of our very version answering out of order (a HELLO, as another
 * connector would) is refused, and the explanation must not blame a
 * version mismatch or tell the user to fix one: there is none.
 */
static void t_tcp_connect_wrong_kind(void **state)
{
	char url[64], err[512];
	int ret;

	(void)state;
	ret = tcp_connect_fake(FAKE_HELLO_BACK, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EPROTO, "HELLO instead of ACCEPT: %d, want -EPROTO (%s)",
	      ret, err);
	CHECK(!strstr(err, "same rdps version"),
	      "same version on both sides, yet the message blames the "
	      "version: %s",
	      err);
}

/*
 * A listener of another job that says yes anyway: the connector checks
 * the token of the accept too, so it neither sends requests to nor takes
 * keys from a server of another job.
 */
static void t_tcp_connect_other_token(void **state)
{
	char url[64], err[512];
	int ret;

	(void)state;
	ret = tcp_connect_fake(FAKE_OTHER_TOKEN, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EACCES,
	      "an accept with another job token: %d, want -EACCES (%s)", ret,
	      err);
	CHECK(strstr(err, "token"), "message does not say 'token': %s", err);
}

#endif /* RDPS_TRANSPORT_TCP */

#ifdef RDPS_TRANSPORT_SHM

/* shm ------------------------------------------------------------------- */

#define SHM_HELLO_MAGIC_RAW 0x52445348u /* "RDSH", shm.h */

/* struct shm_hello of transport/shm/shm.h: native byte order. */
struct fake_shm_hello {
	uint32_t magic;
	uint32_t version;
	int32_t status;
	uint32_t pid;
	uint64_t token;
	uint64_t heap_base;
	uint64_t heap_size;
	uint64_t ring_off;
	uint32_t ring_cap;
	uint32_t priv_len;
	uint8_t priv[RDPS_TP_PRIV_MAX];
};
_Static_assert(sizeof(struct fake_shm_hello) == 88, "shm hello layout");

static void shm_name(char *buf, size_t len)
{
	static int seq;

	snprintf(buf, len, "rdps-hs-%d-%d", (int)getpid(), seq++);
}

/* The abstract address shm_listen.c derives from shm://NAME. */
static socklen_t shm_addr(const char *name, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "rdps-shm/%s",
		     name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

static int raw_shm_connect(const char *name)
{
	struct sockaddr_un sa;
	socklen_t sl = shm_addr(name, &sa);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	CHECK(!connect(fd, (struct sockaddr *)&sa, sl),
	      "raw connect to shm://%s: %s", name, strerror(errno));
	return fd;
}

struct shm_side {
	struct rdps_tp *tp;
	struct rdps_tp_listener *l;
	char name[64];
	char url[128];
};

static void shm_side_open(struct shm_side *s)
{
	struct rdps_tp_cfg cfg;
	int ret;

	shm_name(s->name, sizeof(s->name));
	snprintf(s->url, sizeof(s->url), "shm://%s", s->name);
	test_cfg(&cfg);
	ret = rdps_tp_open("shm", &cfg, &s->tp);
	CHECK(!ret, "open shm: %s", rdps_errmsg());
	ret = rdps_tp_listen(s->tp, s->url, listener_priv,
			     sizeof(listener_priv), &s->l);
	CHECK(!ret, "listen on %s: %s", s->url, rdps_errmsg());
}

static void shm_side_close(struct shm_side *s)
{
	int ret;

	rdps_tp_listener_close(s->l);
	ret = rdps_tp_close(s->tp);
	CHECK(!ret, "close the listening instance: %d (endpoints left?)", ret);
}

static size_t shm_bad_peer(struct shm_side *s, const void *buf, size_t len,
			   int half_close, uint8_t *answer, size_t cap,
			   int *end_out)
{
	int fd = raw_shm_connect(s->name);
	size_t got;

	if (len)
		CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len,
		      "raw send: %s", strerror(errno));
	if (half_close)
		shutdown(fd, SHUT_WR);
	drive_until_answered(s->l, fd);
	got = raw_drain(fd, answer, cap, end_out);
	close(fd);
	return got;
}

static void fake_shm_hello_fill(struct fake_shm_hello *h, uint32_t version)
{
	memset(h, 0, sizeof(*h));
	h->magic = SHM_HELLO_MAGIC_RAW;
	h->version = version;
	h->pid = (uint32_t)getpid();
	h->token = TOKEN;
}

static void t_shm_listener_refuses_version(void **state)
{
	struct fake_shm_hello h, ans;
	struct th_child peer;
	struct shm_side s;
	int fds;
	size_t got;
	int end;

	(void)state;
	fds = count_fds();
	peer_spawn(&peer);
	shm_side_open(&s);

	/* The version check comes before any descriptor is needed. */
	fake_shm_hello_fill(&h, RDPS_TP_PROTO_VERSION + 1);
	got = shm_bad_peer(&s, &h, sizeof(h), 0, (uint8_t *)&ans, sizeof(ans),
			   &end);
	CHECK(got == sizeof(ans),
	      "a peer of version %u got %zu bytes back, want a refusal hello",
	      RDPS_TP_PROTO_VERSION + 1, got);
	CHECK(end == 0, "no clean close after the refusal: %s", strerror(-end));
	CHECK(ans.magic == SHM_HELLO_MAGIC_RAW, "refusal magic 0x%x",
	      ans.magic);
	CHECK(ans.version == RDPS_TP_PROTO_VERSION,
	      "refusal carries version %u, want ours %u", ans.version,
	      RDPS_TP_PROTO_VERSION);
	CHECK(ans.status == EPROTO, "refusal status %d, want EPROTO (%d)",
	      ans.status, EPROTO);
	CHECK(ans.token != TOKEN, "a refused peer was told the job token");

	expect_good_peer_accepted(&peer, s.l, s.url);
	shm_side_close(&s);
	check_fds(fds, "shm listener");
}

static void t_shm_listener_survives_garbage(void **state)
{
	struct fake_shm_hello h, ans;
	uint8_t buf[200];
	struct th_child peer;
	struct shm_side s;
	int fds;
	size_t got;
	int end;

	(void)state;
	fds = count_fds();
	peer_spawn(&peer);
	shm_side_open(&s);

	/* Not a hello at all: dropped without an answer. */
	fill_random(buf, 16, 0x5bad);
	buf[0] = 0;
	got = shm_bad_peer(&s, buf, 16, 0, (uint8_t *)&ans, sizeof(ans), &end);
	CHECK(got == 0 && end == 0, "16 random bytes: %zu bytes back, end %d",
	      got, end);
	fill_random(buf, sizeof(buf), 0x5bae);
	buf[0] = 0;
	got = shm_bad_peer(&s, buf, sizeof(buf), 0, (uint8_t *)&ans,
			   sizeof(ans), &end);
	CHECK(got == 0 && end == 0, "200 random bytes: %zu bytes back, end %d",
	      got, end);
	/* Shorter than magic and version. */
	got = shm_bad_peer(&s, "RDSH", 4, 0, (uint8_t *)&ans, sizeof(ans),
			   &end);
	CHECK(got == 0 && end == 0, "4 bytes: %zu bytes back, end %d", got,
	      end);
	/* Right magic and version, cut short. */
	fake_shm_hello_fill(&h, RDPS_TP_PROTO_VERSION);
	got = shm_bad_peer(&s, &h, 40, 0, (uint8_t *)&ans, sizeof(ans), &end);
	CHECK(got == 0 && end == 0, "short hello: %zu bytes back, end %d", got,
	      end);
	/* Connect, say nothing, hang up. */
	got = shm_bad_peer(&s, NULL, 0, 1, (uint8_t *)&ans, sizeof(ans), &end);
	CHECK(got == 0 && end == 0, "empty connection: %zu bytes back, end %d",
	      got, end);
	/* A whole hello of our version, token right, but no heap and wake
	 * descriptors attached: refused as a protocol error. */
	fake_shm_hello_fill(&h, RDPS_TP_PROTO_VERSION);
	h.heap_size = HEAP_SIZE;
	h.ring_cap = 1024;
	got = shm_bad_peer(&s, &h, sizeof(h), 0, (uint8_t *)&ans, sizeof(ans),
			   &end);
	CHECK(got == 0 || (got == sizeof(ans) && ans.status != 0),
	      "hello without descriptors: %zu bytes, status %d", got,
	      got ? ans.status : 0);
	CHECK(end == 0, "hello without descriptors: end %d", end);

	expect_good_peer_accepted(&peer, s.l, s.url);
	shm_side_close(&s);
	check_fds(fds, "shm listener");
}

enum fake_shm_mode {
	FAKE_SHM_NEWER,	      /* a hello of version + 1 */
	FAKE_SHM_GARBAGE,     /* random bytes */
	FAKE_SHM_OTHER_TOKEN, /* a hello of ours with another job token */
};

struct fake_shm_arg {
	int lfd;
	enum fake_shm_mode mode;
};

/* An shm "listener" of the next protocol version, in a child. */
static int fake_shm_main(int ch, void *arg)
{
	const struct fake_shm_arg *a = arg;
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} cm;
	struct fake_shm_hello in, out;
	struct iovec iov = {.iov_base = &in, .iov_len = sizeof(in)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf)};
	struct pollfd pfd;
	struct cmsghdr *c;
	int fd, nfds = 0;
	ssize_t n;
	char byte;

	(void)ch;
	fd = fake_accept(a->lfd, "fake shm listener");
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	TH_CHILD_CHECK("fake shm listener", poll(&pfd, 1, WAIT_MS) == 1,
		       "no hello");
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0;
		     i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
			close(rfd);
			nfds++;
		}
	}
	TH_CHILD_CHECK(
		"fake shm listener",
		n == (ssize_t)sizeof(in) && in.magic == SHM_HELLO_MAGIC_RAW &&
			in.version == RDPS_TP_PROTO_VERSION &&
			in.token == TOKEN && in.priv_len == sizeof(peer_priv),
		"the connector's hello is not an shm hello of ours "
		"(%zd bytes)",
		n);
	TH_CHILD_CHECK("fake shm listener", nfds == 2,
		       "the connector attached %d descriptors, want 2", nfds);
	if (a->mode == FAKE_SHM_GARBAGE) {
		th_fill(&out, sizeof(out), 0x5eed, 0);
		out.magic = 0;
	} else if (a->mode == FAKE_SHM_OTHER_TOKEN) {
		/* Says yes, but serves another job. */
		fake_shm_hello_fill(&out, RDPS_TP_PROTO_VERSION);
		out.token = TOKEN ^ 1;
	} else {
		/* A listener of the next version answers in its own. */
		fake_shm_hello_fill(&out, RDPS_TP_PROTO_VERSION + 1);
	}
	TH_CHILD_CHECK("fake shm listener",
		       send(fd, &out, sizeof(out), MSG_NOSIGNAL) ==
			       (ssize_t)sizeof(out),
		       "send: %s", strerror(errno));
	/* The connector gives up: end of file (it may keep the socket as a
	 * half-closed zombie until its ring is reclaimed). */
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	TH_CHILD_CHECK("fake shm listener", poll(&pfd, 1, WAIT_MS) == 1,
		       "the failed connector never hung up");
	n = recv(fd, &byte, 1, 0);
	TH_CHILD_CHECK("fake shm listener", n <= 0,
		       "the failed connector sent more");
	close(fd);
	return 0;
}

static int shm_connect_fake(enum fake_shm_mode mode, char *url, size_t url_len,
			    char *err, size_t err_len)
{
	struct fake_shm_arg a = {.mode = mode};
	struct rdps_tp_ep *ep = NULL;
	struct rdps_tp_cfg cfg;
	struct sockaddr_un sa;
	struct th_child fake;
	struct rdps_tp *tp;
	char name[64];
	socklen_t sl;
	int ret, ret2, fds;

	shm_name(name, sizeof(name));
	sl = shm_addr(name, &sa);
	a.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(a.lfd >= 0, "socket: %s", strerror(errno));
	CHECK(!bind(a.lfd, (struct sockaddr *)&sa, sl) && !listen(a.lfd, 4),
	      "fake shm listener on %s: %s", name, strerror(errno));
	ret = th_spawn(&fake, "fake shm listener", fake_shm_main, &a);
	CHECK(!ret, "fork: %s", strerror(-ret));
	close(a.lfd);
	snprintf(url, url_len, "shm://%s", name);

	fds = count_fds();
	test_cfg(&cfg);
	ret = rdps_tp_open("shm", &cfg, &tp);
	CHECK(!ret, "open shm: %s", rdps_errmsg());
	rdps_clear_error();
	ret = rdps_tp_connect(tp, url, peer_priv, sizeof(peer_priv), &ep,
			      WAIT_MS);
	snprintf(err, err_len, "%s", rdps_errmsg());
	CHECK(ret != 0, "connected to a fake shm listener");
	ret2 = rdps_tp_close(tp);
	CHECK(ret2 == 0, "failed connect left the instance busy: %d", ret2);
	check_fds(fds, "shm connect");
	reap_ok(&fake);
	return ret;
}

static void t_shm_connect_newer(void **state)
{
	char url[128], err[512];
	int ret;

	(void)state;
	ret = shm_connect_fake(FAKE_SHM_NEWER, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EPROTO,
	      "connect to a version %u listener: %d, want "
	      "-EPROTO (%s)",
	      RDPS_TP_PROTO_VERSION + 1, ret, err);
	CHECK(strstr(err, "version"), "message does not say 'version': %s",
	      err);
	CHECK(mentions_number(err, url, RDPS_TP_PROTO_VERSION + 1),
	      "message does not name the peer's version %u: %s",
	      RDPS_TP_PROTO_VERSION + 1, err);
}

static void t_shm_connect_garbage(void **state)
{
	char url[128], err[512];
	int ret;

	(void)state;
	ret = shm_connect_fake(FAKE_SHM_GARBAGE, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EPROTO, "garbage answer: %d, want -EPROTO (%s)", ret,
	      err);
	CHECK(*err, "no explanation for a garbage answer");
}

/* A listener of another job that says yes anyway is refused by the
 * connector, which checks the token of the answer too. */
static void t_shm_connect_other_token(void **state)
{
	char url[128], err[512];
	int ret;

	(void)state;
	ret = shm_connect_fake(FAKE_SHM_OTHER_TOKEN, url, sizeof(url), err,
			       sizeof(err));
	CHECK(ret == -EACCES,
	      "an answer with another job token: %d, want -EACCES (%s)", ret,
	      err);
	CHECK(strstr(err, "token"), "message does not say 'token': %s", err);
}

/* Another user for the tests below: the classic "nobody". */
#define OTHER_UID 65534u

struct other_user_arg {
	char name[64];
};

static void become_other_user(const char *role)
{
	TH_CHILD_CHECK(role,
		       !setgroups(0, NULL) && !setgid(OTHER_UID) &&
			       !setuid(OTHER_UID),
		       "cannot become uid %u: %s", OTHER_UID, strerror(errno));
}

/* A listener run by another user on the name a job wants (it may take any
 * free abstract name): whoever connects must hang up on it without
 * sending a byte or a descriptor, its heap least of all. */
static int other_user_listener_main(int ch, void *arg)
{
	const struct other_user_arg *a = arg;
	const char *role = "listener of another user";
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} cm;
	uint8_t in[256];
	struct iovec iov = {.iov_base = in, .iov_len = sizeof(in)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf)};
	struct sockaddr_un sa;
	socklen_t sl = shm_addr(a->name, &sa);
	struct pollfd pfd;
	int lfd, fd;
	ssize_t n;

	become_other_user(role);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	TH_CHILD_CHECK(role,
		       lfd >= 0 && !bind(lfd, (struct sockaddr *)&sa, sl) &&
			       !listen(lfd, 4),
		       "listen on shm://%s: %s", a->name, strerror(errno));
	TH_CHILD_CHECK(role, !th_send(ch, "L", 1), "parent gone");
	fd = fake_accept(lfd, role);
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	TH_CHILD_CHECK(role, poll(&pfd, 1, WAIT_MS) == 1,
		       "the connector neither sent nor hung up");
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	TH_CHILD_CHECK(role, n == 0 && !CMSG_FIRSTHDR(&msg),
		       "the connector sent %zd bytes%s to a listener of "
		       "another user",
		       n, CMSG_FIRSTHDR(&msg) ? " and descriptors" : "");
	close(fd);
	return 0;
}

static void t_shm_connect_other_user(void **state)
{
	struct other_user_arg a;
	struct rdps_tp_ep *ep = NULL;
	struct rdps_tp_cfg cfg;
	struct th_child lst;
	struct rdps_tp *tp;
	char url[128], ready;
	int ret;

	(void)state;
	if (geteuid() != 0) {
		print_message("skipped: needs root to run a listener as "
			      "another user\n");
		skip();
		return;
	}
	memset(&a, 0, sizeof(a));
	shm_name(a.name, sizeof(a.name));
	snprintf(url, sizeof(url), "shm://%s", a.name);
	ret = th_spawn(&lst, "listener of another user",
		       other_user_listener_main, &a);
	CHECK(!ret, "fork: %s", strerror(-ret));
	ret = th_recv(lst.fd, &ready, 1, WAIT_MS);
	CHECK(!ret, "the other user's listener did not start: %s",
	      strerror(-ret));
	test_cfg(&cfg);
	ret = rdps_tp_open("shm", &cfg, &tp);
	CHECK(!ret, "open shm: %s", rdps_errmsg());
	rdps_clear_error();
	ret = rdps_tp_connect(tp, url, peer_priv, sizeof(peer_priv), &ep,
			      WAIT_MS);
	CHECK(ret == -EACCES,
	      "connect to a listener of uid %u: %d (%s), want -EACCES",
	      OTHER_UID, ret, rdps_errmsg());
	CHECK(strstr(rdps_errmsg(), "uid"), "message does not name the uid: %s",
	      rdps_errmsg());
	ret = rdps_tp_close(tp);
	CHECK(!ret, "failed connect left the instance busy: %d", ret);
	reap_ok(&lst);
}

struct other_user_rep {
	int32_t got; /* bytes the listener answered with */
	int32_t end; /* 0: end of file; -errno */
};

/* A connector run by another user with a hello right in every byte: the
 * listener drops it unanswered (a same-user peer with this hello and no
 * heap gets a refusal hello back). The name comes over the channel. */
static int other_user_peer_main(int ch, void *arg)
{
	const char *role = "peer of another user";
	struct fake_shm_hello h;
	struct other_user_rep rep = {0};
	struct other_user_arg a;
	struct sockaddr_un sa;
	struct pollfd pfd;
	uint8_t ans[256];
	socklen_t sl;
	ssize_t n;
	int fd, ret;

	(void)arg;
	become_other_user(role);
	ret = th_recv(ch, &a, sizeof(a), CHILD_MS);
	TH_CHILD_CHECK(role, !ret, "no name from the parent: %s",
		       strerror(-ret));
	a.name[sizeof(a.name) - 1] = '\0';
	sl = shm_addr(a.name, &sa);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	TH_CHILD_CHECK(role,
		       fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sl),
		       "connect to shm://%s: %s", a.name, strerror(errno));
	fake_shm_hello_fill(&h, RDPS_TP_PROTO_VERSION);
	h.heap_size = HEAP_SIZE;
	h.ring_cap = 1024;
	/* The listener may hang up before reading it: a broken pipe. */
	n = send(fd, &h, sizeof(h), MSG_NOSIGNAL);
	TH_CHILD_CHECK(role,
		       n == (ssize_t)sizeof(h) || errno == EPIPE ||
			       errno == ECONNRESET,
		       "send: %s", strerror(errno));
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	TH_CHILD_CHECK(role, poll(&pfd, 1, WAIT_MS) == 1,
		       "the listener neither answered nor hung up");
	n = recv(fd, ans, sizeof(ans), 0);
	rep.got = n > 0 ? (int32_t)n : 0;
	rep.end = n < 0 ? -errno : 0;
	close(fd);
	TH_CHILD_CHECK(role, !th_send(ch, &rep, sizeof(rep)), "parent gone");
	return 0;
}

static void t_shm_listener_refuses_other_user(void **state)
{
	struct other_user_arg a;
	struct other_user_rep rep;
	struct th_child peer, other;
	struct shm_side s;
	uint64_t deadline;
	int ret;

	(void)state;
	if (geteuid() != 0) {
		print_message("skipped: needs root to run a peer as another "
			      "user\n");
		skip();
		return;
	}
	peer_spawn(&peer);
	ret = th_spawn(&other, "peer of another user", other_user_peer_main,
		       NULL);
	CHECK(!ret, "fork: %s", strerror(-ret));
	shm_side_open(&s);
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", s.name);
	CHECK(!th_send(other.fd, &a, sizeof(a)), "the other user's peer is "
						 "gone");
	/* Serve in short slices until the peer reports what it got. */
	deadline = th_now_ms() + WAIT_MS;
	for (;;) {
		struct pollfd pfd = {.fd = other.fd, .events = POLLIN};
		struct rdps_tp_ep *ep = NULL;

		if (poll(&pfd, 1, 0) > 0)
			break;
		CHECK(th_now_ms() < deadline,
		      "no report from the other user's peer within %d ms",
		      WAIT_MS);
		ret = rdps_tp_accept(s.l, &ep, SLICE_MS);
		CHECK(ret == -ETIMEDOUT,
		      "accept returned %d with only a peer of another user "
		      "there",
		      ret);
	}
	ret = th_recv(other.fd, &rep, sizeof(rep), WAIT_MS);
	CHECK(!ret, "no report from the other user's peer: %s", strerror(-ret));
	/* A reset: the listener hung up with the hello unread. */
	CHECK(rep.got == 0 && (rep.end == 0 || rep.end == -ECONNRESET),
	      "a peer of uid %u got %d bytes back (end %d): it must be "
	      "dropped unanswered",
	      OTHER_UID, rep.got, rep.end);
	reap_ok(&other);
	expect_good_peer_accepted(&peer, s.l, s.url);
	shm_side_close(&s);
}

#endif /* RDPS_TRANSPORT_SHM */

#ifndef RDPS_TRANSPORT_TCP
static void t_tcp_not_built(void **state)
{
	(void)state;
	skip();
}
#define t_tcp_listener_refuses_version t_tcp_not_built
#define t_tcp_listener_survives_garbage t_tcp_not_built
#define t_tcp_connect_newer_accept t_tcp_not_built
#define t_tcp_connect_newer_reject t_tcp_not_built
#define t_tcp_connect_garbage t_tcp_not_built
#define t_tcp_connect_wrong_kind t_tcp_not_built
#define t_tcp_connect_other_token t_tcp_not_built
#endif
#ifndef RDPS_TRANSPORT_SHM
static void t_shm_not_built(void **state)
{
	(void)state;
	skip();
}
#define t_shm_listener_refuses_version t_shm_not_built
#define t_shm_listener_survives_garbage t_shm_not_built
#define t_shm_connect_newer t_shm_not_built
#define t_shm_connect_garbage t_shm_not_built
#define t_shm_connect_other_token t_shm_not_built
#define t_shm_connect_other_user t_shm_not_built
#define t_shm_listener_refuses_other_user t_shm_not_built
#endif

static int case_setup(void **state)
{
	(void)state;
	th_kill_all();
	return 0;
}

static int case_teardown(void **state)
{
	(void)state;
	th_kill_all();
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	/* Raw sockets write with MSG_NOSIGNAL; this covers the rest. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

#define HS_TEST(f) cmocka_unit_test_setup_teardown(f, case_setup, case_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		HS_TEST(t_tcp_listener_refuses_version),
		HS_TEST(t_tcp_listener_survives_garbage),
		HS_TEST(t_tcp_connect_newer_accept),
		HS_TEST(t_tcp_connect_newer_reject),
		HS_TEST(t_tcp_connect_garbage),
		HS_TEST(t_tcp_connect_wrong_kind),
		HS_TEST(t_tcp_connect_other_token),
		HS_TEST(t_shm_listener_refuses_version),
		HS_TEST(t_shm_listener_survives_garbage),
		HS_TEST(t_shm_connect_newer),
		HS_TEST(t_shm_connect_garbage),
		HS_TEST(t_shm_connect_other_token),
		HS_TEST(t_shm_connect_other_user),
		HS_TEST(t_shm_listener_refuses_other_user),
	};

	return cmocka_run_group_tests_name("handshake", tests, group_setup,
					   NULL);
}
