/* SPDX-License-Identifier: MIT */
/*
 * tp_conf_tcp.c - the conformance cases of the tcp transport alone,
 * registered in tp_conformance.c's table of conformance_tcp.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "tp_conf.h"
#include "transport.h"

#include "tcp/tcp.h"

/*
 * RDPS_TP_MAX_RD_ATOMIC from both sides: with a send queue twice as deep,
 * reads posted without polling to a target that answers none (stopped
 * with SIGSTOP, so no response can free a read early) get -EAGAIN after
 * exactly that many, and once it runs again all of them complete (the
 * target, which disconnects a peer past the bound, takes a peer that
 * keeps to it); then a stream of reads and fetch-adds that meets -EAGAIN,
 * polls and retries all completes.
 */
void t_tcp_rd_atomic_bound(void **state)
{
	const int bound = RDPS_TP_MAX_RD_ATOMIC, total = 1000;
	struct rdps_tp_comp comps[64];
	struct rdps_tp_cfg cfg;
	int posted, done, n, idx, ret = 0;
	uint64_t deadline;
	struct conn c;
	struct tgt t;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, 4096,
			RDPS_TP_ACCESS_REMOTE_READ |
				RDPS_TP_ACCESS_REMOTE_ATOMIC,
			0x1234);
	tgt_listen(&t);
	tc_cfg(&cfg);
	cfg.sq_depth = 2u * (unsigned)bound;
	cfg.cq_depth = 4u * (unsigned)bound;
	conn_open_tp(&c, &cfg, (size_t)2 * bound * 8);
	conn_connect(&c, &t);

	if (!t.ch.remote) {
		int st;

		/* SIGSTOP takes effect after kill() returns: a target still
		 * running could answer a few reads and let more than the
		 * bound be posted. Wait until the kernel reports it stopped. */
		kill(t.ch.pid, SIGSTOP);
		CHECK(waitpid(t.ch.pid, &st, WUNTRACED) == t.ch.pid &&
			      WIFSTOPPED(st),
		      "the target (pid %d) did not stop", (int)t.ch.pid);
	}
	for (posted = 0; posted < 2 * bound; posted++) {
		ret = rdps_tp_get(c.ep, c.buf + (size_t)posted * 8, 8, c.mr,
				  c.rk[idx].addr, &c.rk[idx], (uint64_t)posted,
				  0);
		if (ret)
			break;
	}
	if (!t.ch.remote)
		kill(t.ch.pid, SIGCONT);
	CHECK(t.ch.remote || (ret == -EAGAIN && posted == bound),
	      "reads posted without polling: %d before %d, want %d before "
	      "-EAGAIN (RDPS_TP_MAX_RD_ATOMIC)",
	      posted, ret, bound);
	done = 0;
	while (done < posted) {
		int want = posted - done < 64 ? posted - done : 64;

		tc_wait_comps(c.tp, comps, want, TC_COMP_MS,
			      "the reads up to the bound");
		for (int i = 0; i < want; i++, done++)
			tc_expect_comp(&comps[i], (uint64_t)done,
				       RDPS_TP_OP_READ, RDPS_TP_WC_SUCCESS, 8,
				       "read up to the bound");
	}

	deadline = th_now_ms() + 20000;
	posted = done = 0;
	while (done < total && th_now_ms() < deadline) {
		while (posted < total) {
			uint64_t *res =
				(uint64_t *)(void *)(c.buf + (posted % 64) * 8);

			ret = posted % 2
				      ? rdps_tp_atomic_fadd(
						c.ep, 1, res, c.mr,
						c.rk[idx].addr + 8, &c.rk[idx],
						1000 + (uint64_t)posted, 0)
				      : rdps_tp_get(c.ep, res, 8, c.mr,
						    c.rk[idx].addr, &c.rk[idx],
						    1000 + (uint64_t)posted, 0);
			if (ret == -EAGAIN)
				break;
			CHECK(ret == 0, "stream op %d: %d", posted, ret);
			posted++;
		}
		n = rdps_tp_wait(c.tp, comps, 64, TC_COMP_MS);
		CHECK(n > 0, "stream: no completion within %d ms (%d done)",
		      TC_COMP_MS, done);
		for (int i = 0; i < n; i++, done++)
			tc_expect_comp(&comps[i], 1000 + (uint64_t)done,
				       done % 2 ? RDPS_TP_OP_FADD
						: RDPS_TP_OP_READ,
				       RDPS_TP_WC_SUCCESS, -1, "stream op");
	}
	CHECK(done == total, "stream: %d of %d operations completed", done,
	      total);
	conn_close(&c);
	tgt_stop(&t);
}

/*
 * Batching (transport/tcp/tcp.h): a write posted while an earlier one is
 * unanswered is held rather than sent by a syscall of its own; it must
 * still reach the target although this process never polls or arms (the
 * earlier write's response sends it). The target's memory is watched over
 * its channel; then both completions arrive in order.
 */
void t_tcp_held_flush(void **state)
{
	struct rdps_tp_comp comps[2];
	uint64_t a = 0x1111aaaa2222bbbbull, b = 0x3333cccc4444ddddull;
	uint64_t deadline, got = 0;
	struct conn c;
	struct tgt t;
	int idx;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(
		&t, 4096,
		RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_WRITE, 0x77);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 64);
	conn_connect(&c, &t);
	memcpy(c.buf, &a, 8);
	memcpy(c.buf + 8, &b, 8);
	CHECK(rdps_tp_put(c.ep, c.buf, 8, c.mr, c.rk[idx].addr, &c.rk[idx], 1,
			  0) == 0,
	      "first put: %s", rdps_errmsg());
	CHECK(rdps_tp_put(c.ep, c.buf + 8, 8, c.mr, c.rk[idx].addr + 8,
			  &c.rk[idx], 2, 0) == 0,
	      "second put: %s", rdps_errmsg());
	deadline = th_now_ms() + TC_COMP_MS;
	while (got != b && th_now_ms() < deadline)
		got = tgt_read_u64(&t, idx, 8);
	CHECK(got == b,
	      "the second put never reached the target without a poll "
	      "(bytes 8..15 are 0x%llx)",
	      (unsigned long long)got);
	CHECK(tgt_read_u64(&t, idx, 0) == a, "the first put is not there");
	tc_wait_comps(c.tp, comps, 2, TC_COMP_MS, "the two puts");
	tc_expect_comp(&comps[0], 1, RDPS_TP_OP_WRITE, RDPS_TP_WC_SUCCESS, 8,
		       "first put");
	tc_expect_comp(&comps[1], 2, RDPS_TP_OP_WRITE, RDPS_TP_WC_SUCCESS, 8,
		       "second put");
	conn_close(&c);
	tgt_stop(&t);
}

/* --- Who drives the sockets (tcp.h "Progress") ------------------------- */

#define PAIR_LEN 4096

/* Two tcp instances of this process, connected: own has a region the peer
 * reads and writes (with immediate); the peer's buffer is local. */
struct tcp_pair {
	struct rdps_tp *own, *peer;
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *own_ep, *peer_ep;
	uint64_t *region, *buf;
	struct rdps_tp_mr *region_mr, *buf_mr;
	struct rdps_tp_rkey rk;
	int accept_ret;
};

static void *pair_accept(void *arg)
{
	struct tcp_pair *p = arg;

	p->accept_ret = rdps_tp_accept(p->l, &p->own_ep, TC_CONNECT_MS);
	return NULL;
}

static void pair_open(struct tcp_pair *p, const struct rdps_tp_cfg *own_cfg)
{
	struct rdps_tp_rkey_wire w;
	struct rdps_tp_cfg cfg;
	char url[200];
	pthread_t th;
	void *mem;
	int ret;

	memset(p, 0, sizeof(*p));
	tc_cfg(&cfg);
	cfg.poll_mode = RDPS_TP_POLL_EVENT; /* spins nobody else's core */
	CHECK(rdps_tp_open("tcp", own_cfg, &p->own) == 0, "open: %s",
	      rdps_errmsg());
	CHECK(rdps_tp_open("tcp", &cfg, &p->peer) == 0, "open: %s",
	      rdps_errmsg());
	tc_fresh_listen_url(url, sizeof(url));
	CHECK(rdps_tp_listen(p->own, url, NULL, 0, &p->l) == 0, "listen: %s",
	      rdps_errmsg());
	CHECK(rdps_tp_listener_url(p->l, url, sizeof(url)) == 0,
	      "listener_url: %s", rdps_errmsg());
	CHECK(pthread_create(&th, NULL, pair_accept, p) == 0,
	      "cannot start the accepting thread");
	ret = rdps_tp_connect(p->peer, url, NULL, 0, &p->peer_ep,
			      TC_CONNECT_MS);
	pthread_join(th, NULL);
	CHECK(ret == 0 && p->accept_ret == 0, "connect %d (%s), accept %d", ret,
	      rdps_errmsg(), p->accept_ret);
	CHECK(rdps_tp_mem_alloc(p->own, PAIR_LEN, &mem) == 0, "mem_alloc: %s",
	      rdps_errmsg());
	p->region = mem;
	for (unsigned i = 0; i < PAIR_LEN / 8; i++)
		p->region[i] = 0x5eed0000ull + i;
	CHECK(rdps_tp_mem_reg(p->own, p->region, PAIR_LEN,
			      RDPS_TP_ACCESS_REMOTE_READ |
				      RDPS_TP_ACCESS_REMOTE_WRITE,
			      &p->region_mr) == 0,
	      "mem_reg: %s", rdps_errmsg());
	rdps_tp_rkey_pack(p->region_mr, &w);
	CHECK(rdps_tp_rkey_unpack(p->peer_ep, &w, &p->rk) == 0,
	      "rkey_unpack: %s", rdps_errmsg());
	CHECK(rdps_tp_mem_alloc(p->peer, PAIR_LEN, &mem) == 0, "mem_alloc: %s",
	      rdps_errmsg());
	p->buf = mem;
	CHECK(rdps_tp_mem_reg(p->peer, p->buf, PAIR_LEN, RDPS_TP_ACCESS_LOCAL,
			      &p->buf_mr) == 0,
	      "mem_reg: %s", rdps_errmsg());
}

static void pair_close(struct tcp_pair *p)
{
	rdps_tp_ep_close(p->peer_ep);
	rdps_tp_ep_close(p->own_ep);
	rdps_tp_listener_close(p->l);
	rdps_tp_mem_dereg(p->buf_mr);
	rdps_tp_mem_dereg(p->region_mr);
	rdps_tp_mem_free(p->peer, p->buf, PAIR_LEN);
	rdps_tp_mem_free(p->own, p->region, PAIR_LEN);
	CHECK(rdps_tp_close(p->peer) == 0, "close: %s", rdps_errmsg());
	CHECK(rdps_tp_close(p->own) == 0, "close: %s", rdps_errmsg());
}

/* The peer's op wr_id completes, successfully, within TC_COMP_MS. */
static void pair_peer_done(struct tcp_pair *p, uint64_t wr_id, int opcode,
			   const char *what)
{
	struct rdps_tp_comp c;

	tc_wait_comps(p->peer, &c, 1, TC_COMP_MS, what);
	tc_expect_comp(&c, wr_id, opcode, RDPS_TP_WC_SUCCESS, -1, what);
}

/* n reads by the peer of own's region, each checked. */
static void pair_reads(struct tcp_pair *p, int n, const char *what)
{
	for (int i = 0; i < n; i++) {
		unsigned w = (unsigned)(i * 37) % (PAIR_LEN / 8);

		p->buf[0] = 0;
		CHECK(rdps_tp_get(p->peer_ep, p->buf, 8, p->buf_mr,
				  p->rk.addr + w * 8u, &p->rk,
				  100 + (unsigned)i, 0) == 0,
		      "%s: get: %s", what, rdps_errmsg());
		pair_peer_done(p, 100 + (unsigned)i, RDPS_TP_OP_READ, what);
		CHECK(p->buf[0] == 0x5eed0000ull + w,
		      "%s: read %d of word %u gave 0x%llx", what, i, w,
		      (unsigned long long)p->buf[0]);
	}
}

/* A write-with-immediate of 8 bytes from the peer, imm, completed. */
static void pair_send_imm(struct tcp_pair *p, uint32_t imm)
{
	p->buf[0] = imm;
	CHECK(rdps_tp_put_imm(p->peer_ep, p->buf, 8, p->buf_mr,
			      p->rk.addr + PAIR_LEN - 8, &p->rk, imm, 7,
			      0) == 0,
	      "put_imm: %s", rdps_errmsg());
	pair_peer_done(p, 7, RDPS_TP_OP_WRITE_IMM, "put_imm");
}

#define WAITER_MAX 160

struct own_waiter {
	struct tcp_pair *p;
	int n;	 /* RECV_IMMs to collect, <= WAITER_MAX */
	int got; /* atomic: collected so far */
	int tid; /* atomic: the thread's id, once running */
	int err; /* a wait failed or timed out */
	/* per immediate, in order: its value, the learned spin after its
	 * wait (own->spin_ns) and the thread's CPU time since it started */
	uint32_t imm[WAITER_MAX];
	uint64_t spin_ns[WAITER_MAX];
	uint64_t cpu_ns[WAITER_MAX];
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* own's application thread: rdps_tp_wait() until n RECV_IMMs came. */
static void *own_wait_thread(void *arg)
{
	struct own_waiter *w = arg;
	uint64_t cpu0 = thread_cpu_ns();

	__atomic_store_n(&w->tid, (int)gettid(), __ATOMIC_RELEASE);
	while (__atomic_load_n(&w->got, __ATOMIC_RELAXED) < w->n) {
		struct rdps_tp_comp c;
		int n = rdps_tp_wait(w->p->own, &c, 1, TC_COMP_MS);

		if (n != 1 || c.opcode != RDPS_TP_OP_RECV_IMM ||
		    c.status != RDPS_TP_WC_SUCCESS) {
			w->err = n < 0 ? n : -ETIMEDOUT;
			break;
		}
		w->imm[w->got] = c.imm;
		w->spin_ns[w->got] = w->p->own->spin_ns;
		w->cpu_ns[w->got] = thread_cpu_ns() - cpu0;
		__atomic_store_n(&w->got, w->got + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Thread tid of this process is asleep (state S in /proc). */
static int thread_sleeps(int tid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold anything */
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Wait (yielding, with a deadline) until cond(w) holds. */
static void waiter_until(struct own_waiter *w, int got, int asleep,
			 const char *what)
{
	uint64_t deadline = th_now_ms() + TC_COMP_MS;
	int tid;

	for (;;) {
		tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&w->got, __ATOMIC_ACQUIRE) >= got && tid &&
		    (!asleep || thread_sleeps(tid)))
			return;
		CHECK(!w->err && th_now_ms() < deadline,
		      "%s: the waiting thread has %d of %d immediates "
		      "(error %d)",
		      what, __atomic_load_n(&w->got, __ATOMIC_ACQUIRE), got,
		      w->err);
		sched_yield();
	}
}

/* Open p with adaptive polling (and serve_thread as given); n READs of
 * the owner's memory while a thread of it waits for one immediate, then
 * the immediate imm, which ends that wait (w: the waiter's record). */
static void reads_while_owner_waits(struct tcp_pair *p, struct own_waiter *w,
				    int serve_thread, int n, uint32_t imm)
{
	struct rdps_tp_cfg cfg;
	pthread_t th;

	tc_cfg(&cfg);
	cfg.poll_mode = RDPS_TP_POLL_ADAPTIVE;
	cfg.serve_thread = serve_thread;
	pair_open(p, &cfg);
	w->p = p;
	CHECK(pthread_create(&th, NULL, own_wait_thread, w) == 0,
	      "cannot start the waiting thread");
	waiter_until(w, 0, 1, "before the reads");
	pair_reads(p, n, "reads while the owner waits");
	pair_send_imm(p, imm);
	waiter_until(w, 1, 0, "the immediate");
	pthread_join(th, NULL);
	CHECK(!w->err && w->imm[0] == imm,
	      "the owner's wait gave error %d, imm 0x%x", w->err, w->imm[0]);
}

/*
 * A peer's reads of this process's memory complete, and its write with
 * immediate ends the owner's wait, whoever serves the sockets: the owner's
 * application thread asleep in an adaptive rdps_tp_wait() (it reads the
 * sockets itself, and the progress thread keeps off), the owner away after
 * a poll (the progress thread takes over within TCP_NAP_NS), or the owner
 * armed and then never polling again (the progress thread's nap until the
 * user's wake-up has a bound): one-sided service never depends on the
 * application.
 */
void t_tcp_user_drives(void **state)
{
	struct own_waiter w = {.n = 1};
	struct rdps_tp_comp c;
	struct tcp_pair p;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	reads_while_owner_waits(&p, &w, 0, 20, 0xab1e);

	CHECK(rdps_tp_poll(p.own, &c, 1) == 0, "a completion nobody posted");
	pair_reads(&p, 20, "reads after the owner's last poll");

	CHECK(p.own->ops->arm(p.own) == 0, "arm: %s", rdps_errmsg());
	pair_reads(&p, 5, "reads while the owner is armed and gone");
	CHECK(rdps_tp_poll(p.own, &c, 1) == 0, "a completion nobody posted");
	pair_close(&p);
}

/* The socket of ep is in its instance's epoll set (tp->lock held): a
 * modification to the events it has succeeds only then. */
static int direct_in_set(struct tcp_ep *ep)
{
	struct epoll_event ev = {.events = ep->events,
				 .data.u64 = tcp_ep_cookie(ep)};

	return epoll_ctl(ep->tp->epfd, EPOLL_CTL_MOD, ep->fd, &ev) == 0;
}

/* tp's direct endpoint, and whether ep's socket is in the epoll set. */
static struct tcp_ep *direct_state(struct tcp_tp *tp, struct tcp_ep *ep,
				   int *in_set)
{
	struct tcp_ep *d;

	pthread_mutex_lock(&tp->lock);
	d = tp->direct_ep;
	*in_set = direct_in_set(ep);
	pthread_mutex_unlock(&tp->lock);
	return d;
}

/*
 * Direct reads (tcp.h): a user polling its one endpoint takes the bytes of
 * 200 READ responses with no epoll_wait at all, and after
 * TCP_DIRECT_AFTER polls the socket is out of the epoll set. Arming puts
 * it back: a user asleep on its wait fd is woken by the next responses.
 * The owner of the region read going direct and then away from poll puts
 * it back too: its progress thread serves the next READs.
 */
void t_tcp_direct_reads(void **state)
{
	struct tcp_tp *pt, *ot;
	struct tcp_ep *pep, *oep;
	uint64_t epolls, direct, deadline;
	struct rdps_tp_comp c;
	struct rdps_tp_cfg cfg;
	struct tcp_pair p;
	int in_set, n;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tc_cfg(&cfg);
	pair_open(&p, &cfg);
	pt = to_tcp_tp(p.peer);
	ot = to_tcp_tp(p.own);
	pep = to_tcp_ep(p.peer_ep);
	oep = to_tcp_ep(p.own_ep);

	pthread_mutex_lock(&pt->lock);
	epolls = pt->user_epolls;
	direct = pt->user_direct;
	pthread_mutex_unlock(&pt->lock);
	for (int i = 0; i < 200; i++) {
		unsigned w = (unsigned)(i * 37) % (PAIR_LEN / 8);

		CHECK(rdps_tp_get(p.peer_ep, p.buf, 8, p.buf_mr,
				  p.rk.addr + w * 8u, &p.rk, 300 + (unsigned)i,
				  0) == 0,
		      "get: %s", rdps_errmsg());
		deadline = th_now_ms() + TC_COMP_MS;
		while ((n = rdps_tp_poll(p.peer, &c, 1)) == 0)
			CHECK(th_now_ms() < deadline, "read %d: no completion",
			      i);
		CHECK(n == 1, "poll: %d", n);
		tc_expect_comp(&c, 300 + (unsigned)i, RDPS_TP_OP_READ,
			       RDPS_TP_WC_SUCCESS, 8, "busy-polled read");
		CHECK(p.buf[0] == 0x5eed0000ull + w, "read %d gave 0x%llx", i,
		      (unsigned long long)p.buf[0]);
	}
	pthread_mutex_lock(&pt->lock);
	epolls = pt->user_epolls - epolls;
	direct = pt->user_direct - direct;
	pthread_mutex_unlock(&pt->lock);
	CHECK(epolls == 0 && direct >= 200,
	      "200 busy-polled reads on one endpoint: %llu epoll_waits, %llu "
	      "direct reads of the socket (want none, >= 200)",
	      (unsigned long long)epolls, (unsigned long long)direct);
	CHECK(direct_state(pt, pep, &in_set) == pep && !in_set,
	      "after %llu polls the socket is still in the epoll set",
	      (unsigned long long)direct);

	CHECK(p.peer->ops->arm(p.peer) == 0, "arm: %s", rdps_errmsg());
	CHECK(!direct_state(pt, pep, &in_set) && in_set,
	      "armed to sleep, the socket is not back in the epoll set");
	pair_reads(&p, 5, "reads waited for asleep on the wait fd");

	/* The owner polls until its socket leaves the set, answering a
	 * read meanwhile, then goes away. */
	CHECK(rdps_tp_get(p.peer_ep, p.buf, 8, p.buf_mr, p.rk.addr, &p.rk, 9,
			  0) == 0,
	      "get: %s", rdps_errmsg());
	deadline = th_now_ms() + TC_COMP_MS;
	while (direct_state(ot, oep, &in_set) != oep || in_set) {
		CHECK(rdps_tp_poll(p.own, &c, 1) == 0,
		      "the owner got a completion nobody posted");
		CHECK(th_now_ms() < deadline,
		      "a polling owner's socket never left the epoll set");
	}
	pair_peer_done(&p, 9, RDPS_TP_OP_READ, "read while the owner polls");
	pair_reads(&p, 20, "reads after the direct owner went away");
	CHECK(!direct_state(ot, oep, &in_set) && in_set,
	      "the owner's progress thread serves with the socket out of "
	      "its epoll set");
	pair_close(&p);
}

/*
 * rdps_tp_cfg.serve_thread (a shard's instance): the progress thread alone
 * answers a peer's one-sided requests while the owner sleeps, and the owner
 * is not even woken by them; it sleeps on its completions. Over 2000 READs
 * served while it waits for one immediate, its thread burns less than a
 * millisecond of CPU (woken by each request, as without serve_thread, it
 * burns several).
 */
void t_tcp_serve_thread(void **state)
{
	struct own_waiter w = {.n = 1};
	struct tcp_pair p;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	reads_while_owner_waits(&p, &w, 1, 2000, 0x5e7e);
	CHECK(w.cpu_ns[0] < 1000000ull,
	      "the owner's thread burnt %llu us while the progress thread "
	      "served 2000 reads: it was woken by them",
	      (unsigned long long)(w.cpu_ns[0] / 1000));
	pair_close(&p);
}

/*
 * Adaptive polling spins only while spinning pays (transport.c): a wait
 * that times out after spinning halves the spin; an owner whose
 * immediates come only once it sleeps stops spinning, so over 32
 * wake-ups its thread burns far less CPU than 32 spins of spin_us (5 ms);
 * then waits answered during their spin (the probe every 64th wait spins
 * in full) give back the whole spin.
 */
void t_tcp_spin_learns(void **state)
{
	const int n_slow = 32;
	struct own_waiter w = {.n = WAITER_MAX};
	struct rdps_tp_comp c;
	struct rdps_tp_cfg cfg;
	struct tcp_pair p;
	uint64_t full;
	pthread_t th;
	int i, back = -1;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tc_cfg(&cfg);
	cfg.poll_mode = RDPS_TP_POLL_ADAPTIVE;
	cfg.spin_us = 5000;
	full = (uint64_t)cfg.spin_us * 1000ull;
	pair_open(&p, &cfg);
	w.p = &p;
	/* A wait that spins in vain, sleeps and times out learns too. */
	CHECK(rdps_tp_wait(p.own, &c, 1, 30) == 0, "a completion from nowhere");
	CHECK(p.own->spin_ns == full / 2,
	      "after a wait that timed out the spin is %llu ns, not %llu",
	      (unsigned long long)p.own->spin_ns,
	      (unsigned long long)(full / 2));
	CHECK(pthread_create(&th, NULL, own_wait_thread, &w) == 0,
	      "cannot start the waiting thread");
	for (i = 0; i < n_slow; i++) {
		waiter_until(&w, i, 1, "a slow immediate");
		pair_send_imm(&p, (uint32_t)i);
	}
	/* Then at once: a probe's spin catches one of them, unless each
	 * came before that wait's first poll (hence two probes' worth). */
	for (; i < WAITER_MAX; i++) {
		waiter_until(&w, i, 0, "a fast immediate");
		if (back < 0 && i > n_slow && w.spin_ns[i - 1] == full)
			back = i - 1;
		pair_send_imm(&p, (uint32_t)i);
	}
	pthread_join(th, NULL);
	CHECK(!w.err, "the owner's wait failed: %d", w.err);
	for (i = 0; i < WAITER_MAX; i++)
		CHECK(w.imm[i] == (uint32_t)i, "immediate %d is 0x%x", i,
		      w.imm[i]);
	CHECK(w.spin_ns[n_slow - 1] == 0,
	      "after %d waits answered only once the waiter slept, "
	      "adaptive polling still spins %llu ns",
	      n_slow, (unsigned long long)w.spin_ns[n_slow - 1]);
	CHECK(w.cpu_ns[n_slow - 1] < (uint64_t)n_slow * full / 4,
	      "the waiting thread burnt %llu us over %d wake-ups with a "
	      "spin of %u us: it kept spinning in vain",
	      (unsigned long long)(w.cpu_ns[n_slow - 1] / 1000), n_slow,
	      cfg.spin_us);
	CHECK(back >= 0 || w.spin_ns[WAITER_MAX - 1] == full,
	      "%d waits answered at once never gave back the full spin "
	      "(%llu ns, not %llu)",
	      WAITER_MAX - n_slow,
	      (unsigned long long)w.spin_ns[WAITER_MAX - 1],
	      (unsigned long long)full);
	pair_close(&p);
}

/* --- A large write arriving in pieces --------------------------------- */

#define RAW_LEN (1u << 20)
#define RAW_PIECE (64u * 1024)
#define RAW_IMM 0x9ece

/*
 * own (a tcp instance of this process) with a RAW_LEN region, and a raw
 * socket connected to it that speaks the wire format itself, so a test
 * decides how a message's bytes arrive.
 */
struct raw_pair {
	struct tcp_pair p; /* p.own, p.l, p.own_ep, p.region, p.region_mr */
	int fd;
	uint64_t addr;
	uint32_t key;
	uint8_t *data; /* RAW_LEN bytes the write carries */
	uint64_t seq;  /* the next request's number */
};

static void *raw_accept(void *arg)
{
	struct tcp_pair *p = arg;

	p->accept_ret = rdps_tp_accept(p->l, &p->own_ep, TC_CONNECT_MS);
	return NULL;
}

static void raw_open(struct raw_pair *r, const struct rdps_tp_cfg *cfg)
{
	struct rdps_tcp_hello h = {.version = RDPS_TP_PROTO_VERSION,
				   .kind = RDPS_TCP_HELLO,
				   .token = cfg->token};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct rdps_tp_rkey_wire w;
	uint8_t buf[RDPS_TCP_HELLO_LEN];
	const char *why = "";
	char url[200], *colon;
	pthread_t th;
	void *mem;

	memset(r, 0, sizeof(*r));
	CHECK(rdps_tp_open("tcp", cfg, &r->p.own) == 0, "open: %s",
	      rdps_errmsg());
	snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
	CHECK(rdps_tp_listen(r->p.own, url, NULL, 0, &r->p.l) == 0,
	      "listen: %s", rdps_errmsg());
	CHECK(rdps_tp_listener_url(r->p.l, url, sizeof(url)) == 0,
	      "listener_url: %s", rdps_errmsg());
	colon = strrchr(url, ':');
	CHECK(colon != NULL, "no port in %s", url);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(pthread_create(&th, NULL, raw_accept, &r->p) == 0,
	      "cannot start the accepting thread");
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(r->fd >= 0 &&
		      connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	      "raw connect to %s: %s", url, strerror(errno));
	rdps_tcp_hello_encode(&h, buf);
	CHECK(send(r->fd, buf, sizeof(buf), MSG_NOSIGNAL) == sizeof(buf) &&
		      recv(r->fd, buf, sizeof(buf), MSG_WAITALL) == sizeof(buf),
	      "raw handshake: %s", strerror(errno));
	pthread_join(th, NULL);
	CHECK(rdps_tcp_hello_decode(buf, sizeof(buf), &h, &why) == 0 &&
		      h.kind == RDPS_TCP_ACCEPT && r->p.accept_ret == 0,
	      "the raw peer was not accepted (%s, kind %u, accept %d)", why,
	      h.kind, r->p.accept_ret);
	CHECK(rdps_tp_mem_alloc(r->p.own, RAW_LEN, &mem) == 0, "mem_alloc: %s",
	      rdps_errmsg());
	r->p.region = mem;
	CHECK(rdps_tp_mem_reg(r->p.own, mem, RAW_LEN,
			      RDPS_TP_ACCESS_REMOTE_WRITE,
			      &r->p.region_mr) == 0,
	      "mem_reg: %s", rdps_errmsg());
	rdps_tp_rkey_pack(r->p.region_mr, &w);
	r->addr = rdps_be64toh(w.addr_be);
	r->key = rdps_be32toh(w.rkey_be);
	r->data = malloc(RAW_LEN);
	CHECK(r->data != NULL, "out of memory");
	for (unsigned i = 0; i < RAW_LEN; i++)
		r->data[i] = (uint8_t)(i * 7 + i / 4096);
}

static void raw_close(struct raw_pair *r)
{
	close(r->fd);
	free(r->data);
	rdps_tp_ep_close(r->p.own_ep);
	rdps_tp_listener_close(r->p.l);
	rdps_tp_mem_dereg(r->p.region_mr);
	rdps_tp_mem_free(r->p.own, r->p.region, RAW_LEN);
	CHECK(rdps_tp_close(r->p.own) == 0, "close: %s", rdps_errmsg());
}

static void raw_send(struct raw_pair *r, const void *buf, size_t len)
{
	CHECK(send(r->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len,
	      "raw send of %zu bytes: %s", len, strerror(errno));
}

/* The header of a write with immediate of len bytes (the payload
 * follows: RAW_LEN bytes of r->data, or len bytes of zeros). */
static void raw_write_begin(struct raw_pair *r, uint32_t len, uint32_t imm)
{
	struct rdps_tcp_msg m = {.type = RDPS_TCP_REQ_WRITE_IMM,
				 .len = len,
				 .seq = r->seq++,
				 .raddr = r->addr,
				 .rkey = r->key,
				 .imm = imm};
	uint8_t hdr[RDPS_TCP_HDR_LEN];

	rdps_tcp_wire_encode(&m, hdr);
	raw_send(r, hdr, sizeof(hdr));
}

/* The write's payload, piece by piece. */
static void raw_write_payload(struct raw_pair *r)
{
	for (unsigned off = 0; off < RAW_LEN; off += RAW_PIECE)
		raw_send(r, r->data + off, RAW_PIECE);
}

/*
 * Wait (with a deadline) until own read the header of the write and went
 * on: bytes moved, and the socket's receive low mark set to the payload
 * (tcp_rx_lowat, at the end of that read) by whoever read it (the waiter,
 * or the progress thread looking in while it sleeps).
 */
static void raw_header_taken(struct raw_pair *r)
{
	int fd = to_tcp_ep(r->p.own_ep)->fd, lowat = 0;
	uint64_t deadline = th_now_ms() + TC_COMP_MS;
	socklen_t sl = sizeof(lowat);

	for (;;) {
		CHECK(getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &sl) == 0,
		      "getsockopt: %s", strerror(errno));
		if (lowat == RAW_LEN &&
		    __atomic_load_n(&r->p.own->moved, __ATOMIC_RELAXED))
			return;
		CHECK(th_now_ms() < deadline,
		      "with the header of a %u-byte write sent, %llu bytes "
		      "moved and the receive low mark is %d, not the payload "
		      "length: the reader would be woken by every piece",
		      RAW_LEN,
		      (unsigned long long)__atomic_load_n(&r->p.own->moved,
							  __ATOMIC_RELAXED),
		      lowat);
	}
}

/* w's wait ended with the write's immediate, which delivered the data. */
static void raw_write_done(struct raw_pair *r, struct own_waiter *w,
			   pthread_t th)
{
	waiter_until(w, w->n, 0, "the write's immediate");
	pthread_join(th, NULL);
	CHECK(!w->err && w->imm[w->n - 1] == RAW_IMM,
	      "the owner's wait gave error %d, imm 0x%x", w->err,
	      w->imm[w->n - 1]);
	CHECK(memcmp(r->p.region, r->data, RAW_LEN) == 0,
	      "the write's bytes did not all land");
}

/*
 * A waiter whose completion is on its way does not sleep until it is all
 * in (rdps_tp_wait spins on while bytes move): one whose learned spin is
 * nothing sleeps at once, is woken by the header of a 1 MiB write with
 * immediate, and then spins (a window of spin_us, 200 ms here, from the
 * last bytes moved) while the payload comes in pieces: no sleep from the
 * header on. A waiter that went back to sleep after a wake-up with no
 * completion sleeps once more. (A first small write gets the progress
 * thread off the sockets, as the user drives them from then on.)
 */
void t_tcp_spin_while_moving(void **state)
{
	struct own_waiter w = {.n = 2};
	uint8_t zeros[8] = {0};
	struct rdps_tp_cfg cfg;
	struct raw_pair r;
	uint64_t sleeps;
	pthread_t th;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tc_cfg(&cfg);
	cfg.poll_mode = RDPS_TP_POLL_ADAPTIVE;
	cfg.spin_us = 200000;
	raw_open(&r, &cfg);
	r.p.own->spin_ns = 0; /* as learned where spins ran out */
	w.p = &r.p;
	CHECK(pthread_create(&th, NULL, own_wait_thread, &w) == 0,
	      "cannot start the waiting thread");
	waiter_until(&w, 0, 1, "before the writes");
	raw_write_begin(&r, sizeof(zeros), RAW_IMM - 1);
	raw_send(&r, zeros, sizeof(zeros));
	waiter_until(&w, 1, 1, "after the small write");
	sleeps = __atomic_load_n(&r.p.own->wait_sleeps, __ATOMIC_RELAXED);
	raw_write_begin(&r, RAW_LEN, RAW_IMM);
	raw_header_taken(&r);
	raw_write_payload(&r);
	raw_write_done(&r, &w, th);
	CHECK(r.p.own->wait_sleeps == sleeps,
	      "the waiter slept %llu more times for a write whose bytes kept "
	      "coming: it slept before they were all in",
	      (unsigned long long)(r.p.own->wait_sleeps - sleeps));
	raw_close(&r);
}

/*
 * Once a large payload's header is in, its socket reports readable only
 * when the whole payload has come (SO_RCVLOWAT), not for every piece: with
 * the header of a 1 MiB write in, the low mark is 1 MiB; a waiter polling
 * by events sleeps at most twice (before the header, before the payload
 * sent in pieces); the mark is back to 1 after the write.
 */
void t_tcp_rx_lowat(void **state)
{
	struct own_waiter w = {.n = 1};
	struct rdps_tp_cfg cfg;
	struct raw_pair r;
	socklen_t sl = sizeof(int);
	int fd, lowat = 0;
	pthread_t th;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tc_cfg(&cfg);
	cfg.poll_mode = RDPS_TP_POLL_EVENT;
	raw_open(&r, &cfg);
	fd = to_tcp_ep(r.p.own_ep)->fd;
	w.p = &r.p;
	CHECK(pthread_create(&th, NULL, own_wait_thread, &w) == 0,
	      "cannot start the waiting thread");
	waiter_until(&w, 0, 1, "before the write");
	raw_write_begin(&r, RAW_LEN, RAW_IMM);
	raw_header_taken(&r);
	waiter_until(&w, 0, 1, "after the header");
	raw_write_payload(&r);
	raw_write_done(&r, &w, th);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &sl) == 0 &&
		      lowat == 1,
	      "after the write the receive low mark is %d, not 1", lowat);
	CHECK(r.p.own->wait_sleeps <= 2,
	      "the waiter slept %llu times for a header and its payload",
	      (unsigned long long)r.p.own->wait_sleeps);
	raw_close(&r);
}
