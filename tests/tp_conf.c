/* SPDX-License-Identifier: MIT */
/*
 * tp_conf.c - the test side of the conformance fixtures (tp_conf.h): the
 * transport under test, the commands to a target process and their
 * answers, the test process's own connections, completions, peer children.
 * The target process itself is tests/tp_target.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#ifdef RDPS_TRANSPORT_VERBS
#include <infiniband/verbs.h>
#endif

#include "rdps_base.h"
#include "test_check.h"
#include "tp_conf.h"

static const char *const tcmd_names[] = {
	"?",	 "hello",    "listen",	  "accept",    "alloc",
	"reg",	 "dereg",    "fill",	  "hash",      "read",
	"watch", "imm_wait", "close_eps", "disc_wait", "exit",
};

/* The transport under test: tc_init() sets it before anything runs. */
static const char *tc_scheme_name = "";

void tc_init(const char *scheme)
{
	tc_scheme_name = scheme;
}

const char *tc_scheme(void)
{
	return tc_scheme_name;
}

int tc_is_scheme(const char *s)
{
	return !strcmp(tc_scheme_name, s);
}

volatile sig_atomic_t tc_sigpipe_seen;

static void on_sigpipe(int sig)
{
	(void)sig;
	tc_sigpipe_seen = 1;
}

const char *tc_test_host(void)
{
	const char *h = getenv("RDPS_TEST_ADDR");

	return h && *h ? h : "127.0.0.1";
}

const char *tc_target_host(void)
{
	return th_remote() ? th_remote() : tc_test_host();
}

void tc_cfg(struct rdps_tp_cfg *cfg)
{
	rdps_tp_cfg_default(cfg);
	cfg->token = TC_TOKEN;
	cfg->shm_heap_size = TC_HEAP_SIZE;
}

void tc_fresh_url_at(const char *host, char *buf, size_t len)
{
	static int seq;

	if (tc_is_scheme("shm"))
		snprintf(buf, len, "shm://rdps-t-%d-%d", (int)getpid(), seq++);
	else
		snprintf(buf, len, "%s://%.180s:0", tc_scheme_name, host);
}

void tc_fresh_listen_url(char *buf, size_t len)
{
	tc_fresh_url_at(tc_test_host(), buf, len);
}

const char *tc_cannot_run(void)
{
#ifdef RDPS_TRANSPORT_VERBS
	if (tc_is_scheme("verbs")) {
		int n = 0;
		struct ibv_device **list = ibv_get_device_list(&n);

		if (list)
			ibv_free_device_list(list);
		if (!list || n == 0)
			return "no RDMA device (ibv_get_device_list found "
			       "none); load rdma_rxe to run the verbs suite";
	}
#endif
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The test side of a target.                                          */
/* ------------------------------------------------------------------ */

static void tgt_send(struct tgt *t, struct tmsg *m)
{
	int ret = th_send(t->ch.fd, m, sizeof(*m));

	CHECK(ret == 0, "sending '%s' to the target failed: %s",
	      tcmd_names[m->cmd], strerror(-ret));
}

/* Receive the reply to cmd (and plen bytes of payload into payload). */
static void tgt_recv(struct tgt *t, uint32_t cmd, struct tmsg *m, void *payload,
		     size_t plen)
{
	char why[96];
	int ret = th_recv(t->ch.fd, m, sizeof(*m), TC_REPLY_MS);

	if (ret == -EPIPE) {
		int st = th_reap(&t->ch, 2000);

		CHECK(0,
		      "the target died while handling '%s' (%s); see its "
		      "stderr above",
		      tcmd_names[cmd], th_status_str(st, why, sizeof(why)));
	}
	CHECK(ret == 0,
	      "no answer from the target to '%s' within %d ms (%s): it is "
	      "stuck in a transport call",
	      tcmd_names[cmd], TC_REPLY_MS, strerror(-ret));
	CHECK(m->cmd == cmd, "target answered '%s' to '%s'",
	      m->cmd < T_EXIT + 1 ? tcmd_names[m->cmd] : "?", tcmd_names[cmd]);
	if (plen) {
		ret = th_recv(t->ch.fd, payload, plen, TC_REPLY_MS);
		CHECK(ret == 0, "short payload for '%s': %s", tcmd_names[cmd],
		      strerror(-ret));
	}
}

void tgt_call(struct tgt *t, struct tmsg *m)
{
	uint32_t cmd = m->cmd;

	tgt_send(t, m);
	tgt_recv(t, cmd, m, NULL, 0);
}

void tgt_start(struct tgt *t, const struct rdps_tp_cfg *cfg)
{
	struct rdps_tp_cfg def;
	struct tmsg m;
	int ret;

	memset(t, 0, sizeof(*t));
	if (!cfg)
		tc_cfg(&def);
	else
		def = *cfg;
	/* The configuration travels as bytes to a fresh process. */
	CHECK(def.dev == NULL, "a target's cfg.dev cannot be passed on");
	ret = th_spawn_role(&t->ch, "target", &def, sizeof(def));
	CHECK(ret == 0, "start of the target failed: %s", strerror(-ret));
	tgt_recv(t, T_HELLO, &m, NULL, 0);
	CHECK(m.ret == 0,
	      "the target could not open the %s transport: %d "
	      "(%s)",
	      tc_scheme_name, m.ret, m.err);
}

/* Tell the target to exit; it must release everything cleanly. */
void tgt_stop(struct tgt *t)
{
	struct tmsg m = {.cmd = T_EXIT};
	char why[96];
	int st;

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target shutdown: %d (%s)", m.ret, m.err);
	st = th_reap(&t->ch, 10000);
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "target did not exit cleanly: %s",
	      th_status_str(st, why, sizeof(why)));
}

void tgt_listen_priv(struct tgt *t, const void *priv, size_t len)
{
	struct tmsg m = {.cmd = T_LISTEN, .priv_len = (uint32_t)len};
	size_t n = strlen(tc_scheme_name);

	tc_fresh_url_at(tc_target_host(), m.url, sizeof(m.url));
	if (len)
		memcpy(m.priv, priv, len);
	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: listen: %d (%s)", m.ret, m.err);
	CHECK(!strncmp(m.url, tc_scheme_name, n) &&
		      !strncmp(m.url + n, "://", 3),
	      "listener_url gave '%s', not a %s URL", m.url, tc_scheme_name);
	if (!tc_is_scheme("shm")) {
		struct rdps_url u;

		CHECK(rdps_url_parse(m.url, 1, &u) == 0 && u.port > 0,
		      "listener_url gave '%s': not HOST:PORT with the real "
		      "port",
		      m.url);
	}
	snprintf(t->url, sizeof(t->url), "%s", m.url);
}

void tgt_listen(struct tgt *t)
{
	tgt_listen_priv(t, NULL, 0);
}

void tgt_accept_begin(struct tgt *t, int n, int timeout_ms)
{
	struct tmsg m = {
		.cmd = T_ACCEPT, .a = (uint64_t)n, .b = (uint64_t)timeout_ms};

	tgt_send(t, &m);
}

/* The answer to tgt_accept_begin(); m gets ret, c (count) and priv. */
void tgt_accept_end(struct tgt *t, struct tmsg *m)
{
	tgt_recv(t, T_ACCEPT, m, NULL, 0);
}

int tgt_alloc(struct tgt *t, size_t len, unsigned access, uint64_t seed)
{
	struct tmsg m = {.cmd = T_ALLOC, .a = len, .b = seed, .access = access};

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: alloc+reg of %zu B: %d (%s)", len, m.ret,
	      m.err);
	CHECK(m.idx < T_MAX_REG, "bad region index %u", m.idx);
	t->wire[m.idx] = m.wire;
	t->addr[m.idx] = m.c;
	t->len[m.idx] = len;
	t->n_reg = (int)m.idx + 1;
	return (int)m.idx;
}

void tgt_dereg(struct tgt *t, int idx)
{
	struct tmsg m = {.cmd = T_DEREG, .idx = (uint32_t)idx};

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: dereg: %d (%s)", m.ret, m.err);
}

/* Register region idx again; its new key replaces t->wire[idx]. */
void tgt_reg(struct tgt *t, int idx, unsigned access)
{
	struct tmsg m = {.cmd = T_REG, .idx = (uint32_t)idx, .access = access};

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: reg again: %d (%s)", m.ret, m.err);
	t->wire[idx] = m.wire;
}

/* Register region idx again, for the peer of the target's endpoint ep (in
 * accept order) alone; its new key replaces t->wire[idx]. */
void tgt_reg_ep(struct tgt *t, int idx, unsigned access, int ep)
{
	struct tmsg m = {.cmd = T_REG,
			 .idx = (uint32_t)idx,
			 .access = access,
			 .a = (uint64_t)ep + 1};

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: mem_reg_ep for endpoint %d: %d (%s)", ep,
	      m.ret, m.err);
	t->wire[idx] = m.wire;
}

void tgt_fill(struct tgt *t, int idx, uint64_t off, uint64_t len, uint64_t seed)
{
	struct tmsg m = {.cmd = T_FILL,
			 .idx = (uint32_t)idx,
			 .a = off,
			 .b = len,
			 .c = seed};

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: fill: %d (%s)", m.ret, m.err);
}

uint64_t tgt_hash(struct tgt *t, int idx, uint64_t off, uint64_t len)
{
	struct tmsg m = {
		.cmd = T_HASH, .idx = (uint32_t)idx, .a = off, .b = len};

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: hash: %d (%s)", m.ret, m.err);
	return m.c;
}

void tgt_read(struct tgt *t, int idx, uint64_t off, void *buf, size_t len)
{
	struct tmsg m = {
		.cmd = T_READ, .idx = (uint32_t)idx, .a = off, .b = len};

	tgt_send(t, &m);
	tgt_recv(t, T_READ, &m, NULL, 0);
	CHECK(m.ret == 0, "target: read: %d (%s)", m.ret, m.err);
	CHECK(th_recv(t->ch.fd, buf, len, TC_REPLY_MS) == 0,
	      "short read payload");
}

uint64_t tgt_read_u64(struct tgt *t, int idx, uint64_t off)
{
	uint64_t v;

	tgt_read(t, idx, off, &v, sizeof(v));
	return v;
}

void tgt_watch(struct tgt *t, int idx, uint64_t off, uint64_t len)
{
	struct tmsg m = {
		.cmd = T_WATCH, .idx = (uint32_t)idx, .a = off, .b = len};

	tgt_call(t, &m);
	CHECK(m.ret == 0, "target: watch: %d (%s)", m.ret, m.err);
}

/* Up to n RECV_IMM records the target saw within timeout_ms. */
int tgt_imm_wait(struct tgt *t, struct imm_rec *recs, int n, int timeout_ms)
{
	struct tmsg m = {
		.cmd = T_IMM_WAIT, .a = (uint64_t)n, .b = (uint64_t)timeout_ms};

	tgt_send(t, &m);
	tgt_recv(t, T_IMM_WAIT, &m, NULL, 0);
	CHECK(m.ret >= 0 && m.ret <= n, "target: imm_wait: %d (%s)", m.ret,
	      m.err);
	if (m.ret)
		CHECK(th_recv(t->ch.fd, recs, (size_t)m.ret * sizeof(*recs),
			      TC_REPLY_MS) == 0,
		      "short imm_wait payload");
	return m.ret;
}

/*
 * The target's region idx must equal shadow. On a difference, bisect with
 * hashes to the first differing byte and say where it is.
 */
void tgt_expect_region(struct tgt *t, int idx, const uint8_t *shadow,
		       size_t len, const char *what)
{
	uint8_t got[64];
	size_t lo = 0, n = len, d;

	if (tgt_hash(t, idx, 0, len) == th_hash(shadow, len))
		return;
	while (n > sizeof(got)) {
		size_t half = n / 2;

		if (tgt_hash(t, idx, lo, half) != th_hash(shadow + lo, half)) {
			n = half;
		} else {
			lo += half;
			n -= half;
		}
	}
	tgt_read(t, idx, lo, got, n);
	d = th_first_diff(got, shadow + lo, n);
	CHECK(d == n,
	      "%s: the target's region %d (%zu B) differs from what "
	      "was expected first at offset %zu: byte 0x%02x, expected "
	      "0x%02x",
	      what, idx, len, lo + d, got[d], shadow[lo + d]);
	CHECK(0, "%s: the target's region %d changed while it was compared",
	      what, idx);
}

/* ------------------------------------------------------------------ */
/* The test process's own side of a connection.                        */
/* ------------------------------------------------------------------ */

void conn_open_tp(struct conn *c, const struct rdps_tp_cfg *cfg, size_t buf_len)
{
	struct rdps_tp_cfg def;
	int ret;

	memset(c, 0, sizeof(*c));
	if (!cfg) {
		tc_cfg(&def);
		cfg = &def;
	}
	ret = rdps_tp_open(tc_scheme_name, cfg, &c->tp);
	CHECK(ret == 0, "open %s: %d (%s)", tc_scheme_name, ret, rdps_errmsg());
	c->len = buf_len;
	ret = rdps_tp_mem_alloc(c->tp, buf_len, (void **)&c->buf);
	CHECK(ret == 0, "mem_alloc %zu: %d (%s)", buf_len, ret, rdps_errmsg());
	ret = rdps_tp_mem_reg(c->tp, c->buf, buf_len, RDPS_TP_ACCESS_LOCAL,
			      &c->mr);
	CHECK(ret == 0, "mem_reg: %d (%s)", ret, rdps_errmsg());
}

/* Connect c to t (the target accepts), and unpack all the target's keys. */
void conn_connect_priv(struct conn *c, struct tgt *t, const void *priv,
		       size_t priv_len, struct tmsg *accept_out)
{
	struct tmsg m;
	int ret;

	tgt_accept_begin(t, 1, TC_CONNECT_MS);
	ret = rdps_tp_connect(c->tp, t->url, priv, priv_len, &c->ep,
			      TC_CONNECT_MS);
	tgt_accept_end(t, &m);
	CHECK(ret == 0, "connect to %s: %d (%s)", t->url, ret, rdps_errmsg());
	CHECK(m.ret == 0 && m.c == 1,
	      "target: accept: %d (%s), %" PRIu64 " accepted", m.ret, m.err,
	      m.c);
	CHECK(c->ep && c->ep->tp == c->tp, "connect gave a bad endpoint");
	for (int i = 0; i < t->n_reg; i++) {
		ret = rdps_tp_rkey_unpack(c->ep, &t->wire[i], &c->rk[i]);
		CHECK(ret == 0, "rkey_unpack of region %d: %d (%s)", i, ret,
		      rdps_errmsg());
	}
	if (accept_out)
		*accept_out = m;
}

void conn_connect(struct conn *c, struct tgt *t)
{
	conn_connect_priv(c, t, NULL, 0, NULL);
}

void conn_close(struct conn *c)
{
	int ret;

	rdps_tp_ep_close(c->ep);
	c->ep = NULL;
	rdps_tp_mem_dereg(c->mr);
	rdps_tp_mem_free(c->tp, c->buf, c->len);
	ret = rdps_tp_close(c->tp);
	CHECK(ret == 0, "rdps_tp_close after releasing everything: %d", ret);
}

/* Collect exactly n completions within timeout_ms. */
void tc_wait_comps(struct rdps_tp *tp, struct rdps_tp_comp *out, int n,
		   int timeout_ms, const char *what)
{
	uint64_t deadline = th_now_ms() + (uint64_t)timeout_ms;
	int got = 0;

	while (got < n) {
		uint64_t now = th_now_ms();
		int r;

		if (now >= deadline)
			break;
		r = rdps_tp_wait(tp, out + got, n - got, (int)(deadline - now));
		CHECK(r >= 0, "%s: rdps_tp_wait returned %d (%s)", what, r,
		      strerror(-r));
		got += r;
	}
	CHECK(got == n, "%s: %d of %d completions arrived within %d ms", what,
	      got, n, timeout_ms);
}

void tc_expect_comp(const struct rdps_tp_comp *c, uint64_t wr_id, int opcode,
		    int status, long len, const char *what)
{
	CHECK(c->wr_id == wr_id,
	      "%s: completion has wr_id %" PRIu64 ", expected %" PRIu64
	      " (completions come in post order)",
	      what, c->wr_id, wr_id);
	CHECK(c->status == status, "%s: status '%s' (%d), expected '%s'", what,
	      rdps_tp_status_str(c->status), c->status,
	      rdps_tp_status_str(status));
	CHECK(c->opcode == opcode, "%s: opcode %s, expected %s", what,
	      rdps_tp_opcode_str(c->opcode), rdps_tp_opcode_str(opcode));
	if (len >= 0)
		CHECK(c->len == (uint32_t)len, "%s: len %u, expected %ld", what,
		      c->len, len);
}

/* Post one op and expect its single completion. */
void tc_put_sync(struct conn *c, const void *lbuf, size_t len, uint64_t raddr,
		 const struct rdps_tp_rkey *rk, const char *what)
{
	struct rdps_tp_comp comp;
	int ret = rdps_tp_put(c->ep, lbuf, len, c->mr, raddr, rk, 1, 0);

	CHECK(ret == 0, "%s: put: %d", what, ret);
	tc_wait_comps(c->tp, &comp, 1, TC_COMP_MS, what);
	tc_expect_comp(&comp, 1, RDPS_TP_OP_WRITE, RDPS_TP_WC_SUCCESS,
		       (long)len, what);
}

void tc_get_sync(struct conn *c, void *lbuf, size_t len, uint64_t raddr,
		 const struct rdps_tp_rkey *rk, const char *what)
{
	struct rdps_tp_comp comp;
	int ret = rdps_tp_get(c->ep, lbuf, len, c->mr, raddr, rk, 2, 0);

	CHECK(ret == 0, "%s: get: %d", what, ret);
	tc_wait_comps(c->tp, &comp, 1, TC_COMP_MS, what);
	tc_expect_comp(&comp, 2, RDPS_TP_OP_READ, RDPS_TP_WC_SUCCESS, (long)len,
		       what);
}

/* In the test process and in every exec'd child (a target reports a
 * SIGPIPE at T_EXIT). */
void tc_catch_sigpipe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

int tc_group_setup(void **state)
{
	(void)state;
	return 0;
}

int tc_case_setup(void **state)
{
	(void)state;
	th_kill_all();
	tc_sigpipe_seen = 0;
	rdps_clear_error();
	return 0;
}

int tc_case_teardown(void **state)
{
	(void)state;
	th_kill_all();
	return 0;
}

int tc_group_teardown(void **state)
{
	(void)state;
	th_kill_all();
	return 0;
}

/* ------------------------------------------------------------------ */
/* Peer children.                                                      */
/* ------------------------------------------------------------------ */

void peer_open(struct peer *p, const struct peer_arg *a, size_t n_res)
{
	struct rdps_tp_cfg cfg;
	int ret;

	tc_cfg(&cfg);
	ret = rdps_tp_open(tc_scheme_name, &cfg, &p->tp);
	TH_CHILD_CHECK(p->role, ret == 0, "open: %d (%s)", ret, rdps_errmsg());
	ret = rdps_tp_connect(p->tp, a->url, NULL, 0, &p->ep, TC_CONNECT_MS);
	TH_CHILD_CHECK(p->role, ret == 0, "connect to %s: %d (%s)", a->url, ret,
		       rdps_errmsg());
	ret = rdps_tp_rkey_unpack(p->ep, &a->wire, &p->rk);
	TH_CHILD_CHECK(p->role, ret == 0, "rkey_unpack: %d", ret);
	p->res_len = n_res * sizeof(uint64_t);
	ret = rdps_tp_mem_alloc(p->tp, p->res_len, (void **)&p->res);
	TH_CHILD_CHECK(p->role, ret == 0, "mem_alloc: %d", ret);
	ret = rdps_tp_mem_reg(p->tp, p->res, p->res_len, RDPS_TP_ACCESS_LOCAL,
			      &p->mr);
	TH_CHILD_CHECK(p->role, ret == 0, "mem_reg: %d", ret);
}

int peer_close(struct peer *p)
{
	rdps_tp_ep_close(p->ep);
	rdps_tp_mem_dereg(p->mr);
	rdps_tp_mem_free(p->tp, p->res, p->res_len);
	if (rdps_tp_close(p->tp))
		th_child_fail(p->role, __LINE__, "rdps_tp_close failed");
	return 0;
}

/* Receive from a child; if it died, say how. */
void tc_kid_recv(struct th_child *k, void *buf, size_t len, int timeout_ms,
		 const char *what)
{
	char why[96];
	int ret = th_recv(k->fd, buf, len, timeout_ms);

	if (ret) {
		int st = th_reap(k, 2000);

		CHECK(0,
		      "%s: %s pid %d sent nothing (%s); it %s (see its "
		      "stderr above)",
		      what, k->role, (int)k->pid, strerror(-ret),
		      th_status_str(st, why, sizeof(why)));
	}
}

void tc_kid_reap_ok(struct th_child *k)
{
	char why[96];
	const char *role = k->role;
	int st = th_reap(k, 10000);

	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s did not finish cleanly: %s", role,
	      th_status_str(st, why, sizeof(why)));
}

/* Spawn n peers (after the target is listening); they connect at once. */
void tc_spawn_peers(struct tgt *t, int idx, struct th_child *kids,
		    struct peer_arg *args, int n, const char *role, int n_ops)
{
	struct tmsg m;

	tgt_accept_begin(t, n, 2 * TC_CONNECT_MS);
	for (int p = 0; p < n; p++) {
		int ret;

		args[p].id = p;
		args[p].n_ops = n_ops;
		snprintf(args[p].url, sizeof(args[p].url), "%s", t->url);
		args[p].wire = t->wire[idx];
		ret = th_spawn_role(&kids[p], role, &args[p], sizeof(args[p]));
		CHECK(ret == 0, "start of %s %d: %s", role, p, strerror(-ret));
	}
	tgt_accept_end(t, &m);
	CHECK(m.ret == 0 && m.c == (uint64_t)n,
	      "target accepted %" PRIu64 " of %d peers: %d (%s)", m.c, n, m.ret,
	      m.err);
	for (int p = 0; p < n; p++) {
		char r = 0;

		tc_kid_recv(&kids[p], &r, 1, TC_REPLY_MS, "connect");
		CHECK(r == 'R', "%s %d: bad ready byte", role, p);
	}
}
