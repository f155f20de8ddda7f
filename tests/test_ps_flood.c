/* SPDX-License-Identifier: MIT */
/*
 * test_ps_flood.c - a shard against peers that want to lock it up or make
 * it hold memory, each case with a real shard (src/server.h) in a forked
 * child and hand-made peers in the test process:
 *
 *   tcp_idle_1000, shm_idle_200: that many connections that never send a
 *   hello, then a real worker (rdps_ctx_create) must still join within its
 *   own timeout (JOIN_MS, far above the time a join takes; before the
 *   listeners served handshakes together and pushed out the oldest, tcp
 *   closed the worker's connection at once and shm spent 100 ms on each
 *   idle one). The time the join took is printed;
 *
 *   tcp_read_flood: a peer that joined as a worker by the tcp wire format
 *   (tcp/tcp.h) queues 65,535 reads of the clock table without reading one
 *   response, then a fetch-add on it: the shard must disconnect it
 *   (RDPS_TP_MAX_RD_ATOMIC) and grow by less than 16 MiB (VmRSS);
 *
 *   tcp_refused_closed: a peer refused for a bad rank that never answers
 *   its refusal is closed within a handshake deadline (RDPS_TP_HELLO_MS);
 *
 *   tcp_busy_named: a listener that is always saturated (a hand-made one
 *   answering every hello with "busy") makes the worker try again until
 *   its timeout and then say that the shard is busy, not that it might be
 *   no rdps listener.
 *
 * Children are forked before the test process opens a transport instance
 * (tp_conformance.c's rule) and report by exit status.
 */
#include <arpa/inet.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ps_proto.h"
#include "rdps_base.h"
#include "server.h"
#include "test_check.h"
#include "transport.h"
#ifdef RDPS_TRANSPORT_TCP
#include "tcp/tcp.h"
#endif

#define TOKEN 0x464c4f4f44544f4bull /* "FLOODTOK" */
/* The worker's own timeout: a join takes milliseconds, and it is below
 * the 5 s a silent peer could hold the old tcp listener. */
#define JOIN_MS 3000
#define WAIT_MS 10000 /* any single expected event */
#define N_READS 65535u
#define RSS_MAX_GROWTH_KB (16u * 1024)

struct shard {
	pid_t pid;
	char url[300];
};

static volatile sig_atomic_t shard_stop_flag;
/* The shard of the running case, killed by the teardown if a failed
 * check left it running. */
static pid_t shard_pid;

static void shard_on_term(int sig)
{
	(void)sig;
	shard_stop_flag = 1;
}

/* The shard child: serve url until SIGTERM; exit 0 if it stopped cleanly. */
static void shard_main(const char *url, unsigned heartbeat_ms, int report)
{
	struct rdps_server_cfg cfg;
	struct rdps_server *s;
	struct sigaction sa;
	int ret;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = shard_on_term;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rdps_server_cfg_default(&cfg);
	cfg.url = url;
	cfg.token = TOKEN;
	cfg.heartbeat_ms = heartbeat_ms;
	if (rdps_server_create(&cfg, &s)) {
		fprintf(stderr, "flood shard: %s\n", rdps_errmsg());
		_exit(3);
	}
	if (dprintf(report, "%s\n", rdps_server_url(s)) < 0)
		_exit(4);
	close(report);
	ret = rdps_server_run(s, &shard_stop_flag);
	if (ret)
		fprintf(stderr, "flood shard: %s\n", rdps_errmsg());
	rdps_server_destroy(s);
	_exit(ret ? 1 : 0);
}

static void shard_start(struct shard *sh, const char *url,
			unsigned heartbeat_ms)
{
	struct pollfd pfd;
	size_t got = 0;
	int p[2];

	assert_int_equal(pipe(p), 0);
	sh->pid = fork();
	assert_true(sh->pid >= 0);
	if (sh->pid == 0) {
		close(p[0]);
		shard_main(url, heartbeat_ms, p[1]);
	}
	shard_pid = sh->pid;
	close(p[1]);
	pfd = (struct pollfd){.fd = p[0], .events = POLLIN};
	while (got < sizeof(sh->url) - 1 && poll(&pfd, 1, WAIT_MS) == 1) {
		ssize_t r =
			read(p[0], sh->url + got, sizeof(sh->url) - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
		if (sh->url[got - 1] == '\n')
			break;
	}
	close(p[0]);
	sh->url[got] = '\0';
	CHECK(got > 1 && sh->url[got - 1] == '\n',
	      "the shard reported no url within %d ms", WAIT_MS);
	sh->url[got - 1] = '\0';
}

/* Stop the shard: it must have survived everything and stop cleanly. */
static void shard_stop(struct shard *sh)
{
	int st = 0;

	kill(sh->pid, SIGTERM);
	assert_int_equal(waitpid(sh->pid, &st, 0), sh->pid);
	shard_pid = 0;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the shard ended with status 0x%x, want a clean exit", st);
}

/* The shard's resident memory in KiB (VmRSS). */
static long shard_rss_kb(const struct shard *sh)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)sh->pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Enough descriptors for n idle connections and the rest. */
static void nofile_at_least(rlim_t n)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= n)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n)
		skip(); /* the hard limit is the machine's to raise */
	rl.rlim_cur = n;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Join as worker 0 of 1: 0 or -errno; *ms_out the time it took. */
static int worker_join(const char *url, double *ms_out)
{
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;
	uint64_t t0;
	int ret;

	rdps_config_default(&cfg);
	cfg.shards = url;
	cfg.rank = 0;
	cfg.workers = 1;
	cfg.token = TOKEN;
	cfg.timeout_ms = JOIN_MS;
	t0 = rdps_now_ns();
	ret = rdps_ctx_create(&cfg, &ctx);
	*ms_out = (double)(rdps_now_ns() - t0) / 1e6;
	if (ret)
		print_error("worker join: %s\n", rdps_errmsg());
	rdps_ctx_destroy(ctx);
	return ret;
}

/* Has the other end closed (or reset) fd within ms? Reads nothing. */
static int hung_up_within(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};

	if (poll(&pfd, 1, ms) != 1)
		return 0;
	return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* A real worker joins shard sh past the n idle connections fds, which
 * are then closed, and the shard is stopped. */
static void join_past_idle(struct shard *sh, int *fds, unsigned n)
{
	double ms = 0;
	int ret = worker_join(sh->url, &ms);

	print_message("%.3s: a worker's join past %u idle connections took "
		      "%.1f ms (%s)\n",
		      sh->url, n, ms, ret ? "failed" : "joined");
	CHECK(ret == 0,
	      "the worker did not join past %u idle connections within its "
	      "%d ms: %s",
	      n, JOIN_MS, strerror(-ret));
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	shard_stop(sh);
}

#ifdef RDPS_TRANSPORT_TCP

#define TCP_IDLE 1000u

static int tcp_port_of(const char *url)
{
	const char *colon = strrchr(url, ':');

	assert_non_null(colon);
	return atoi(colon + 1);
}

static int raw_tcp_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	      "connect to port %d: %s", port, strerror(errno));
	return fd;
}

static void t_tcp_idle_1000(void **state)
{
	static int fds[TCP_IDLE];
	struct shard sh;
	int port;

	(void)state;
	nofile_at_least(TCP_IDLE + 256);
	shard_start(&sh, "tcp://127.0.0.1:0", PS_HEARTBEAT_MS);
	port = tcp_port_of(sh.url);
	for (unsigned i = 0; i < TCP_IDLE; i++)
		fds[i] = raw_tcp_connect(port);
	join_past_idle(&sh, fds, TCP_IDLE);
}

/* Speak the tcp handshake as a worker of rank/workers; returns the fd. */
static int fake_worker(const struct shard *sh, unsigned rank, unsigned workers)
{
	struct rdps_tcp_hello h = {.version = RDPS_TP_PROTO_VERSION,
				   .kind = RDPS_TCP_HELLO,
				   .token = TOKEN,
				   .priv_len = sizeof(struct ps_whello)};
	struct ps_whello wh = {
		.magic_be = htonl(PS_MAGIC_WORKER),
		.rank_be = htons((uint16_t)rank),
		.workers_be = htons((uint16_t)workers),
		/* a reply region the shard writes to (we only read it) */
		.reply = {.addr_be = rdps_htobe64(0x10000),
			  .len_be = rdps_htobe64(4096),
			  .rkey_be = htonl(0x10001)},
	};
	uint8_t buf[RDPS_TCP_HELLO_LEN];
	const char *why = "";
	int fd = raw_tcp_connect(tcp_port_of(sh->url));

	memcpy(h.priv, &wh, sizeof(wh));
	rdps_tcp_hello_encode(&h, buf);
	assert_int_equal(send(fd, buf, sizeof(buf), MSG_NOSIGNAL),
			 (ssize_t)sizeof(buf));
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_WAITALL),
			 (ssize_t)sizeof(buf));
	CHECK(rdps_tcp_hello_decode(buf, sizeof(buf), &h, &why) == 0 &&
		      h.kind == RDPS_TCP_ACCEPT,
	      "the shard did not accept the fake worker: %s kind %u", why,
	      h.kind);
	return fd;
}

/* Receive one message the shard sends: its header, and into payload (up
 * to cap bytes) what follows. */
static void recv_msg(int fd, struct rdps_tcp_msg *m, void *payload, size_t cap)
{
	uint8_t hdr[RDPS_TCP_HDR_LEN];
	const char *why = "";

	assert_int_equal(recv(fd, hdr, sizeof(hdr), MSG_WAITALL),
			 (ssize_t)sizeof(hdr));
	CHECK(rdps_tcp_wire_decode(hdr, sizeof(hdr), m, &why) == 0,
	      "the shard sent a bad header: %s", why);
	CHECK(m->len <= cap, "a payload of %u bytes, want at most %zu", m->len,
	      cap);
	if (m->len)
		assert_int_equal(recv(fd, payload, m->len, MSG_WAITALL),
				 (ssize_t)m->len);
}

/* Send len bytes unless the shard hangs up first: 0 all sent, 1 not. */
static int send_or_hangup(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t r = send(fd, buf + done, len - done,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			return 1; /* reset or closed */
		/* Room comes as the shard reads; none for this long means
		 * it stopped reading us. */
		if (poll(&pfd, 1, WAIT_MS) != 1 ||
		    (pfd.revents & (POLLERR | POLLHUP)))
			return 1;
	}
	return 0;
}

static void t_tcp_read_flood(void **state)
{
	struct rdps_tcp_msg m, req;
	struct ps_welcome wel;
	struct shard sh;
	uint64_t addr, len;
	uint32_t rkey;
	uint8_t *flood, resp[RDPS_TCP_HDR_LEN];
	long rss0, rss1;
	int fd, hung;

	(void)state;
	/* No pulse reads of the fake worker: only the flood may end it. */
	shard_start(&sh, "tcp://127.0.0.1:0", 0);
	fd = fake_worker(&sh, 0, 1);
	recv_msg(fd, &m, &wel, sizeof(wel));
	CHECK(m.type == RDPS_TCP_REQ_WRITE_IMM && m.len == sizeof(wel),
	      "want the welcome (a write with immediate of %zu bytes), got "
	      "type %u of %u bytes",
	      sizeof(wel), m.type, m.len);
	CHECK(wel.status_be == 0, "the shard refused the fake worker: %u",
	      ntohl(wel.status_be));
	req = (struct rdps_tcp_msg){.type = RDPS_TCP_RESP | m.type,
				    .seq = m.seq};
	rdps_tcp_wire_encode(&req, resp);
	assert_int_equal(send(fd, resp, sizeof(resp), MSG_NOSIGNAL),
			 (ssize_t)sizeof(resp));
	addr = rdps_be64toh(wel.clock.addr_be);
	len = rdps_be64toh(wel.clock.len_be);
	rkey = ntohl(wel.clock.rkey_be);
	CHECK(len >= 8, "clock table of %llu bytes", (unsigned long long)len);

	/* 65,535 reads of the whole clock table, then a fetch-add on it
	 * (which a shard holding the read responses must copy for each). */
	flood = malloc((size_t)(N_READS + 1) * RDPS_TCP_HDR_LEN);
	assert_non_null(flood);
	for (uint32_t i = 0; i <= N_READS; i++) {
		req = (struct rdps_tcp_msg){.type = RDPS_TCP_REQ_READ,
					    .seq = i,
					    .raddr = addr,
					    .rkey = rkey,
					    .op1 = len};
		if (i == N_READS) {
			req.type = RDPS_TCP_REQ_FADD;
			req.op1 = 1;
		}
		rdps_tcp_wire_encode(&req,
				     flood + (size_t)i * RDPS_TCP_HDR_LEN);
	}
	rss0 = shard_rss_kb(&sh);
	send_or_hangup(fd, flood, (size_t)(N_READS + 1) * RDPS_TCP_HDR_LEN);
	free(flood);
	hung = hung_up_within(fd, WAIT_MS);
	rss1 = shard_rss_kb(&sh);
	print_message("tcp read flood: shard VmRSS %ld kB before, %ld kB "
		      "after (+%ld kB); flooding peer %s\n",
		      rss0, rss1, rss1 - rss0,
		      hung ? "disconnected" : "still connected");
	CHECK(hung, "the shard kept the flooding peer connected for %d ms",
	      WAIT_MS);
	CHECK(rss1 - rss0 < RSS_MAX_GROWTH_KB,
	      "the shard grew by %ld kB under the flood, want under %u kB",
	      rss1 - rss0, RSS_MAX_GROWTH_KB);
	close(fd);
	shard_stop(&sh);
}

static void t_tcp_refused_closed(void **state)
{
	struct shard sh;
	uint64_t t0;
	double ms;
	int fd, hung;

	(void)state;
	shard_start(&sh, "tcp://127.0.0.1:0", PS_HEARTBEAT_MS);
	/* Rank 5 of 1: refused, with a welcome write it never answers. */
	t0 = rdps_now_ns();
	fd = fake_worker(&sh, 5, 1);
	hung = hung_up_within(fd, WAIT_MS);
	ms = (double)(rdps_now_ns() - t0) / 1e6;
	print_message("tcp: a refused peer that ignores its refusal was "
		      "%s after %.0f ms\n",
		      hung ? "closed" : "still connected", ms);
	CHECK(hung,
	      "a refused peer that never answers kept its connection "
	      "for %d ms (deadline %d ms)",
	      WAIT_MS, RDPS_TP_HELLO_MS);
	close(fd);
	shard_stop(&sh);
}

/* A listener that answers every connection with a busy refusal. */
static void busy_listener_main(int lfd)
{
	for (;;) {
		struct rdps_tcp_hello h = {.version = RDPS_TP_PROTO_VERSION,
					   .kind = RDPS_TCP_REJECT,
					   .reason = RDPS_TCP_REJ_BUSY};
		uint8_t buf[RDPS_TCP_HELLO_LEN];
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(errno == EINTR ? 0 : 5);
		rdps_tcp_hello_encode(&h, buf);
		if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(buf))
			_exit(6);
		close(fd);
	}
}

static void t_tcp_busy_named(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;
	char url[64];
	int lfd, ret;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	shard_pid = fork();
	assert_true(shard_pid >= 0);
	if (shard_pid == 0)
		busy_listener_main(lfd);
	close(lfd);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", ntohs(sa.sin_port));

	rdps_config_default(&cfg);
	cfg.shards = url;
	cfg.rank = 0;
	cfg.workers = 1;
	cfg.token = TOKEN;
	cfg.timeout_ms = 1000;
	ret = rdps_ctx_create(&cfg, &ctx);
	print_message("worker against a saturated listener: %s\n",
		      rdps_errmsg());
	CHECK(ret == -EBUSY, "want -EBUSY after the timeout, got %d", ret);
	CHECK(strstr(rdps_errmsg(), "busy") &&
		      strstr(rdps_errmsg(), "gave up after") &&
		      !strstr(rdps_errmsg(), "listener?"),
	      "the error does not say the shard is busy and that we tried "
	      "again: %s",
	      rdps_errmsg());
	rdps_ctx_destroy(ctx);
}

#else

static void t_tcp_busy_named(void **state)
{
	(void)state;
	skip();
}

static void t_tcp_idle_1000(void **state)
{
	(void)state;
	skip();
}

static void t_tcp_read_flood(void **state)
{
	(void)state;
	skip();
}

static void t_tcp_refused_closed(void **state)
{
	(void)state;
	skip();
}

#endif /* RDPS_TRANSPORT_TCP */

#ifdef RDPS_TRANSPORT_SHM

#define SHM_IDLE 200u

/* A raw connection to shm listener name (abstract "\0rdps-shm/NAME"). */
static int raw_shm_connect(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
			 "rdps-shm/%s", name);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				  (size_t)n)) == 0,
	      "connect to shm://%s: %s", name, strerror(errno));
	return fd;
}

static void t_shm_idle_200(void **state)
{
	static int fds[SHM_IDLE];
	char url[64], name[48];
	struct shard sh;

	(void)state;
	nofile_at_least(SHM_IDLE + 256);
	snprintf(name, sizeof(name), "rdps-flood-%d", (int)getpid());
	snprintf(url, sizeof(url), "shm://%s", name);
	shard_start(&sh, url, PS_HEARTBEAT_MS);
	for (unsigned i = 0; i < SHM_IDLE; i++)
		fds[i] = raw_shm_connect(name);
	join_past_idle(&sh, fds, SHM_IDLE);
}

#else

static void t_shm_idle_200(void **state)
{
	(void)state;
	skip();
}

#endif /* RDPS_TRANSPORT_SHM */

static int case_teardown(void **state)
{
	(void)state;
	if (shard_pid > 0) {
		kill(shard_pid, SIGKILL);
		waitpid(shard_pid, NULL, 0);
		shard_pid = 0;
	}
	return 0;
}

#define FLOOD_TEST(f) cmocka_unit_test_teardown(f, case_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FLOOD_TEST(t_tcp_idle_1000),  FLOOD_TEST(t_shm_idle_200),
		FLOOD_TEST(t_tcp_read_flood), FLOOD_TEST(t_tcp_refused_closed),
		FLOOD_TEST(t_tcp_busy_named),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("ps_flood", tests, NULL, NULL);
}
