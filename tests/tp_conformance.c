/* SPDX-License-Identifier: MIT */
/*
 * tp_conformance.c - the transport conformance suite: the cases every
 * transport must pass, and the case table. Built once per transport with
 * TP_SCHEME naming it ("shm", "tcp", "verbs") and TP_CASES_<SCHEME>
 * defined; a transport's own cases are in tp_conf_<scheme>.c beside this
 * file and registered in the same table. The fixtures (the target process,
 * connections, peer children) are tests/tp_conf.h.
 *
 * Every child is a fresh process: fork, then exec of this binary with the
 * role to play (tp_harness.h th_spawn_role). On verbs that is required:
 * librdmacm keeps device contexts process-wide, and a merely forked child
 * would create its queue pairs on the parent's inherited uverbs file.
 *
 * Run one case: ./conformance_tcp t_fadd_many_peers (a cmocka filter; '*'
 * works). RDPS_TEST_ADDR overrides 127.0.0.1 for tcp and verbs.
 *
 * Two hosts: run "conformance_verbs --serve-targets PORT" on the target
 * host, then the suite with RDPS_TEST_REMOTE=TARGET_IP:PORT (and
 * RDPS_TEST_ADDR=LOCAL_IP): targets run there, peers and the test here.
 * The suite tells the server to exit when it ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "tp_conf.h"
#include "transport.h"

#ifndef TP_SCHEME
#error "build with -DTP_SCHEME=\"shm\" (or \"tcp\", \"verbs\")"
#endif

#define RW (RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_WRITE)
#define ALL_ACCESS (RW | RDPS_TP_ACCESS_REMOTE_ATOMIC)

/* put/get round trips from 8 B to 4 MiB, checked at both sides. */
static void t_put_get_sizes(void **state)
{
	static const struct {
		size_t len, off;
	} io[] = {
		{8, 3},		  {64, 4096 - 32}, /* crosses a page */
		{4096, 8193},	  {65536, 100000}, {1u << 20, (1u << 20) + 5},
		{4u << 20, 4096}, /* ends exactly at the region's end */
	};
	const size_t rlen = (4u << 20) + 4096;
	struct rdps_tp_comp comp;
	struct conn c;
	static uint8_t shadow[(4u << 20) + 4096];
	struct tgt t;
	char what[96];
	int idx;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, rlen, RW, 0x1111);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, (4u << 20) + 128);
	conn_connect(&c, &t);
	th_fill(shadow, rlen, 0x1111, 0);

	for (size_t i = 0; i < sizeof(io) / sizeof(*io); i++) {
		const size_t len = io[i].len, off = io[i].off;
		const uint64_t raddr = c.rk[idx].addr + off;
		/* A lost packet of a large transfer on a slow, lossy wire
		 * (two emulated hosts) costs a retransmission timeout: give
		 * 1 s more per 256 KiB. */
		const int big_ms = TC_COMP_MS + (int)(len >> 18) * 1000;
		uint64_t t0 = th_now_ms();
		uint8_t *lbuf = c.buf + 1; /* an unaligned local address */
		size_t d;
		int ret;

		snprintf(what, sizeof(what), "put of %zu B at offset %zu", len,
			 off);
		th_fill(lbuf, len, 0x100 + i, 0);
		ret = rdps_tp_put(c.ep, lbuf, len, c.mr, raddr, &c.rk[idx],
				  100 + i, 0);
		CHECK(ret == 0, "%s: post returned %d", what, ret);
		tc_wait_comps(c.tp, &comp, 1, big_ms, what);
		tc_expect_comp(&comp, 100 + i, RDPS_TP_OP_WRITE,
			       RDPS_TP_WC_SUCCESS, (long)len, what);
		CHECK(comp.ep == c.ep,
		      "%s: completion names endpoint %p, "
		      "not %p",
		      what, (void *)comp.ep, (void *)c.ep);
		th_fill(shadow + off, len, 0x100 + i, 0);
		tgt_expect_region(&t, idx, shadow, rlen, what);

		snprintf(what, sizeof(what), "get of %zu B at offset %zu", len,
			 off);
		tgt_fill(&t, idx, off, len, 0x200 + i);
		th_fill(shadow + off, len, 0x200 + i, off);
		memset(c.buf, 0xa5, len + 65);
		ret = rdps_tp_get(c.ep, lbuf, len, c.mr, raddr, &c.rk[idx],
				  200 + i, 0);
		CHECK(ret == 0, "%s: post returned %d", what, ret);
		tc_wait_comps(c.tp, &comp, 1, big_ms, what);
		tc_expect_comp(&comp, 200 + i, RDPS_TP_OP_READ,
			       RDPS_TP_WC_SUCCESS, (long)len, what);
		if (len >= (1u << 20))
			print_message("%zu B: put and get in %" PRIu64 " ms\n",
				      len, th_now_ms() - t0);
		d = th_first_diff(lbuf, shadow + off, len);
		CHECK(d == len,
		      "%s: local byte %zu is 0x%02x, the target has "
		      "0x%02x",
		      what, d, d < len ? lbuf[d] : 0,
		      d < len ? shadow[off + d] : 0);
		CHECK(c.buf[0] == 0xa5,
		      "%s: the byte before the local buffer "
		      "was written",
		      what);
		for (size_t k = 0; k < 64; k++)
			CHECK(lbuf[len + k] == 0xa5,
			      "%s: local byte %zu past "
			      "the end was written",
			      what, k);
	}
	tgt_expect_region(&t, idx, shadow, rlen, "after all round trips");
	conn_close(&c);
	tgt_stop(&t);
}

/* The wire form of keys, unpacking, malformed keys, a new key per reg. */
static void t_rkey_wire(void **state)
{
	struct rdps_tp_rkey rk, before;
	struct rdps_tp_rkey_wire w;
	struct conn c;
	struct tgt t;
	uint32_t old_key;
	int a, b, ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	a = tgt_alloc(&t, 12288, RW, 0);
	b = tgt_alloc(&t, 4096, RDPS_TP_ACCESS_REMOTE_ATOMIC, 0);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 4096);
	conn_connect(&c, &t);
	for (int i = a; i <= b; i++) {
		const struct rdps_tp_rkey_wire *wi = &t.wire[i];

		CHECK(rdps_be64toh(wi->addr_be) == t.addr[i],
		      "region %d: wire addr 0x%" PRIx64 ", mr addr 0x%" PRIx64
		      " (big-endian?)",
		      i, rdps_be64toh(wi->addr_be), t.addr[i]);
		CHECK(rdps_be64toh(wi->len_be) == t.len[i],
		      "region %d: wire len %" PRIu64 ", expected %zu", i,
		      rdps_be64toh(wi->len_be), t.len[i]);
		CHECK(wi->pad == 0, "region %d: wire pad 0x%x, not zero", i,
		      wi->pad);
		CHECK(c.rk[i].addr == t.addr[i] && c.rk[i].len == t.len[i],
		      "region %d: unpacked addr 0x%" PRIx64 " len %" PRIu64
		      ", expected 0x%" PRIx64 " %zu",
		      i, c.rk[i].addr, c.rk[i].len, t.addr[i], t.len[i]);
		CHECK(c.rk[i].key == rdps_be32toh(wi->rkey_be),
		      "region %d: unpacked key 0x%x, wire key 0x%x", i,
		      c.rk[i].key, rdps_be32toh(wi->rkey_be));
	}
	CHECK(c.rk[a].key != c.rk[b].key, "two live regions share key 0x%x",
	      c.rk[a].key);

	/* Malformed wire forms are refused, rk untouched. */
	memset(&rk, 0x5a, sizeof(rk));
	before = rk;
	w = t.wire[a];
	w.pad = rdps_htobe32(1);
	ret = rdps_tp_rkey_unpack(c.ep, &w, &rk);
	CHECK(ret == -EINVAL,
	      "unpack of a key with a non-zero pad: %d, "
	      "expected -EINVAL",
	      ret);
	w = t.wire[a];
	w.len_be = 0;
	ret = rdps_tp_rkey_unpack(c.ep, &w, &rk);
	CHECK(ret == -EINVAL,
	      "unpack of a key of length 0: %d, expected "
	      "-EINVAL (no registration has 0 bytes, so the key is "
	      "malformed)",
	      ret);
	w = t.wire[a];
	w.addr_be = rdps_htobe64(UINT64_MAX - 100);
	ret = rdps_tp_rkey_unpack(c.ep, &w, &rk);
	CHECK(ret == -EINVAL,
	      "unpack of a key whose addr+len wraps: %d, "
	      "expected -EINVAL",
	      ret);
	CHECK(!memcmp(&rk, &before, sizeof(rk)),
	      "a failed rkey_unpack wrote its out-parameter");

	/* Registering the same memory again gives a new key. */
	old_key = c.rk[b].key;
	tgt_dereg(&t, b);
	tgt_reg(&t, b, RDPS_TP_ACCESS_REMOTE_ATOMIC);
	ret = rdps_tp_rkey_unpack(c.ep, &t.wire[b], &rk);
	CHECK(ret == 0, "unpack of the new key: %d", ret);
	CHECK(rk.key != old_key,
	      "re-registration reused key 0x%x; "
	      "transport.h: the old key must keep failing, so a new key is "
	      "needed",
	      old_key);
	conn_close(&c);
	tgt_stop(&t);
}

/* Private data travels both ways in the handshake. */
static void t_private_data(void **state)
{
	uint8_t lpriv[RDPS_TP_PRIV_MAX], cpriv[24];
	struct rdps_tp_ep *ep2;
	struct conn c;
	struct tgt t;
	struct tmsg m;
	int ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	th_fill(lpriv, sizeof(lpriv), 0x77, 0);
	th_fill(cpriv, sizeof(cpriv), 0x78, 0);
	tgt_start(&t, NULL);
	tgt_listen_priv(&t, lpriv, sizeof(lpriv));
	conn_open_tp(&c, NULL, 4096);
	conn_connect_priv(&c, &t, cpriv, sizeof(cpriv), &m);
	CHECK(c.ep->peer_priv_len == sizeof(lpriv),
	      "connector got %u B of the listener's private data, sent %zu",
	      c.ep->peer_priv_len, sizeof(lpriv));
	CHECK(!memcmp(c.ep->peer_priv, lpriv, sizeof(lpriv)),
	      "the listener's private data arrived changed");
	CHECK(m.priv_len == sizeof(cpriv),
	      "acceptor got %u B of the connector's private data, sent %zu",
	      m.priv_len, sizeof(cpriv));
	CHECK(!memcmp(m.priv, cpriv, sizeof(cpriv)),
	      "the connector's private data arrived changed");

	/* A second connection from the same instance, without data. */
	tgt_accept_begin(&t, 1, TC_CONNECT_MS);
	ret = rdps_tp_connect(c.tp, t.url, NULL, 0, &ep2, TC_CONNECT_MS);
	tgt_accept_end(&t, &m);
	CHECK(ret == 0, "second connect: %d (%s)", ret, rdps_errmsg());
	CHECK(m.ret == 0 && m.c == 1, "target: second accept: %d (%s)", m.ret,
	      m.err);
	CHECK(m.priv_len == 0, "acceptor got %u B of private data, none sent",
	      m.priv_len);
	CHECK(ep2->peer_priv_len == sizeof(lpriv) &&
		      !memcmp(ep2->peer_priv, lpriv, sizeof(lpriv)),
	      "second connector: listener private data missing or changed");
	rdps_tp_ep_close(ep2);
	conn_close(&c);
	tgt_stop(&t);
}

/* An endpoint that only receives learns that its peer left: one
 * DISCONNECT completion for that endpoint, none for the one still open. */
static void t_disconnect_notice(void **state)
{
	struct rdps_tp_ep *ep2;
	struct conn c;
	struct tgt t;
	struct tmsg m;
	int ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 4096);
	conn_connect(&c, &t);
	tgt_accept_begin(&t, 1, TC_CONNECT_MS);
	ret = rdps_tp_connect(c.tp, t.url, NULL, 0, &ep2, TC_CONNECT_MS);
	tgt_accept_end(&t, &m);
	CHECK(ret == 0, "second connect: %d (%s)", ret, rdps_errmsg());
	CHECK(m.ret == 0 && m.c == 1, "target: second accept: %d (%s)", m.ret,
	      m.err);
	rdps_tp_ep_close(ep2);
	m = (struct tmsg){.cmd = T_DISC_WAIT, .a = 1, .b = 10000};
	tgt_call(&t, &m);
	CHECK(m.ret == 1,
	      "the target polled %d DISCONNECT completions within 10 s of "
	      "its peer closing one of two connections, want 1",
	      m.ret);
	/* The open connection stays quiet: still one after a while. */
	m = (struct tmsg){.cmd = T_DISC_WAIT, .a = 2, .b = 300};
	tgt_call(&t, &m);
	CHECK(m.ret == 1,
	      "%d DISCONNECT completions with one connection still open, "
	      "want 1",
	      m.ret);
	conn_close(&c);
	m = (struct tmsg){.cmd = T_DISC_WAIT, .a = 2, .b = 10000};
	tgt_call(&t, &m);
	CHECK(m.ret == 2,
	      "%d DISCONNECT completions after both peers left, want 2", m.ret);
	tgt_stop(&t);
}

/* write-with-immediate: RECV_IMM at the target, data already there. */
static void t_write_imm(void **state)
{
	static const struct {
		size_t len;
		uint32_t imm;
	} io[] = {{0, 0xffffffffu}, {0, 0}, {64, 0x12345678u}};
	const size_t woff = 128, wlen = 4096;
	struct rdps_tp_comp comps[3];
	struct imm_rec recs[3];
	static uint8_t shadow[65536];
	struct conn c;
	struct tgt t;
	int idx, ret, n;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, 65536, RW, 0x2222);
	tgt_watch(&t, idx, woff, wlen);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 65536);
	conn_connect(&c, &t);
	th_fill(shadow, sizeof(shadow), 0x2222, 0);

	th_fill(c.buf, wlen, 0x2345, 0);
	ret = rdps_tp_put_imm(c.ep, c.buf, wlen, c.mr, c.rk[idx].addr + woff,
			      &c.rk[idx], 0xc0ffee01u, 7, 0);
	CHECK(ret == 0, "put_imm of 4 KiB: post returned %d", ret);
	tc_wait_comps(c.tp, comps, 1, TC_COMP_MS, "put_imm of 4 KiB");
	tc_expect_comp(&comps[0], 7, RDPS_TP_OP_WRITE_IMM, RDPS_TP_WC_SUCCESS,
		       (long)wlen, "put_imm of 4 KiB");
	n = tgt_imm_wait(&t, recs, 1, TC_COMP_MS);
	CHECK(n == 1, "the target saw no RECV_IMM completion within %d ms",
	      TC_COMP_MS);
	CHECK(recs[0].opcode == RDPS_TP_OP_RECV_IMM &&
		      recs[0].status == RDPS_TP_WC_SUCCESS,
	      "target completion: opcode %s status %s",
	      rdps_tp_opcode_str(recs[0].opcode),
	      rdps_tp_status_str(recs[0].status));
	CHECK(recs[0].imm == 0xc0ffee01u, "RECV_IMM imm 0x%x, sent 0xc0ffee01",
	      recs[0].imm);
	CHECK(recs[0].len == wlen, "RECV_IMM len %u, wrote %zu", recs[0].len,
	      wlen);
	CHECK(recs[0].ep_ok, "RECV_IMM completion does not name the target's "
			     "endpoint");
	CHECK(recs[0].hash == th_hash(c.buf, wlen),
	      "the written data was not all visible at the target when its "
	      "RECV_IMM completion was polled");
	memcpy(shadow + woff, c.buf, wlen);

	/* Zero-length ones carry only the immediate (raddr is not used),
	 * and immediates arrive in post order. The target may poll all
	 * three completions at once, so only the last one's view of memory
	 * is known: everything written. */
	for (int i = 0; i < 3; i++) {
		uint64_t raddr = io[i].len ? c.rk[idx].addr + woff : 0;

		th_fill(c.buf, io[i].len, 0x300 + (uint64_t)i, 0);
		memcpy(shadow + woff, c.buf, io[i].len);
		ret = rdps_tp_put_imm(c.ep, c.buf, io[i].len, c.mr, raddr,
				      &c.rk[idx], io[i].imm, 10 + (uint64_t)i,
				      0);
		CHECK(ret == 0, "put_imm %d (len %zu): post returned %d", i,
		      io[i].len, ret);
	}
	tc_wait_comps(c.tp, comps, 3, TC_COMP_MS, "three put_imm");
	for (int i = 0; i < 3; i++)
		tc_expect_comp(
			&comps[i], 10 + (uint64_t)i, RDPS_TP_OP_WRITE_IMM,
			RDPS_TP_WC_SUCCESS, (long)io[i].len,
			io[i].len ? "put_imm of 64 B" : "put_imm of 0 B");
	n = tgt_imm_wait(&t, recs, 3, TC_COMP_MS);
	CHECK(n == 3, "the target saw %d of 3 RECV_IMM completions", n);
	for (int i = 0; i < 3; i++) {
		CHECK(recs[i].imm == io[i].imm,
		      "RECV_IMM %d: imm 0x%x, expected 0x%x (post order)", i,
		      recs[i].imm, io[i].imm);
		CHECK(recs[i].len == io[i].len,
		      "RECV_IMM %d: len %u, expected "
		      "%zu",
		      i, recs[i].len, io[i].len);
		CHECK(recs[i].status == RDPS_TP_WC_SUCCESS,
		      "RECV_IMM %d: status %s", i,
		      rdps_tp_status_str(recs[i].status));
	}
	CHECK(recs[2].hash == th_hash(shadow + woff, wlen),
	      "the 64 B written with the last immediate were not visible at "
	      "the target when its RECV_IMM completion was polled");
	tgt_expect_region(&t, idx, shadow, sizeof(shadow), "after put_imm");
	conn_close(&c);
	tgt_stop(&t);
}

#define N_PEERS 4
#define N_FADD 5000
#define N_ROUNDS 40
#define WORD_OFF 64

static uint64_t fadd_value(int peer, int i)
{
	return (uint64_t)peer * N_FADD + (uint64_t)i + 1;
}

static int peer_fadd_main(int fd, void *arg)
{
	const struct peer_arg *a = arg;
	struct peer p = {.role = "fadd peer"};
	int posted = 0, done = 0;
	char go = 0;

	peer_open(&p, a, (size_t)a->n_ops);
	TH_CHILD_CHECK(p.role, th_send(fd, "R", 1) == 0, "channel broken");
	TH_CHILD_CHECK(p.role,
		       th_recv(fd, &go, 1, TC_REPLY_MS) == 0 && go == 'G',
		       "no go from the test");
	while (done < a->n_ops) {
		struct rdps_tp_comp comps[64];
		int n;

		while (posted < a->n_ops && posted - done < 32) {
			int ret = rdps_tp_atomic_fadd(
				p.ep, fadd_value(a->id, posted), &p.res[posted],
				p.mr, p.rk.addr + WORD_OFF, &p.rk,
				(uint64_t)posted, 0);

			if (ret == -EAGAIN)
				break;
			TH_CHILD_CHECK(p.role, ret == 0,
				       "fadd %d: post returned %d", posted,
				       ret);
			posted++;
		}
		n = rdps_tp_wait(p.tp, comps, 64, TC_COMP_MS);
		TH_CHILD_CHECK(p.role, n > 0,
			       "no fadd completion within %d ms (%d posted, "
			       "%d done): %d",
			       TC_COMP_MS, posted, done, n);
		for (int i = 0; i < n; i++, done++) {
			TH_CHILD_CHECK(p.role,
				       comps[i].status == RDPS_TP_WC_SUCCESS &&
					       comps[i].opcode ==
						       RDPS_TP_OP_FADD,
				       "fadd %" PRIu64 ": status %s opcode %s",
				       comps[i].wr_id,
				       rdps_tp_status_str(comps[i].status),
				       rdps_tp_opcode_str(comps[i].opcode));
			TH_CHILD_CHECK(p.role, comps[i].wr_id == (uint64_t)done,
				       "fadd completion wr_id %" PRIu64
				       ", expected %d (post order)",
				       comps[i].wr_id, done);
		}
	}
	TH_CHILD_CHECK(p.role, th_send(fd, p.res, p.res_len) == 0,
		       "channel broken");
	return peer_close(&p);
}

struct fadd_pair {
	uint64_t old, add;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct fadd_pair *x = a, *y = b;

	return x->old < y->old ? -1 : x->old > y->old;
}

/* concurrent fetch-adds from several processes sum exactly. */
static void t_fadd_many_peers(void **state)
{
	struct th_child kids[N_PEERS];
	struct peer_arg args[N_PEERS];
	static struct fadd_pair pairs[N_PEERS * N_FADD];
	static uint64_t olds[N_FADD];
	uint64_t expect = 0, total = 0;
	uint8_t shadow[4096];
	struct tgt t;
	int idx;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, sizeof(shadow), ALL_ACCESS, 0x3333);
	tgt_fill(&t, idx, WORD_OFF, 8, 0);
	th_fill(shadow, sizeof(shadow), 0x3333, 0);
	tgt_listen(&t);
	tc_spawn_peers(&t, idx, kids, args, N_PEERS, "fadd peer", N_FADD);
	for (int p = 0; p < N_PEERS; p++)
		CHECK(th_send(kids[p].fd, "G", 1) == 0, "peer %d gone", p);

	for (int p = 0; p < N_PEERS; p++) {
		tc_kid_recv(&kids[p], olds, N_FADD * sizeof(*olds), 60000,
			    "fetch-add results");
		for (int i = 0; i < N_FADD; i++) {
			pairs[p * N_FADD + i].old = olds[i];
			pairs[p * N_FADD + i].add = fadd_value(p, i);
			total += fadd_value(p, i);
		}
	}
	for (int p = 0; p < N_PEERS; p++)
		tc_kid_reap_ok(&kids[p]);

	/* Sorted by old value, every add must start where the previous one
	 * ended: none lost, none applied twice, none torn. */
	qsort(pairs, N_PEERS * N_FADD, sizeof(*pairs), pair_cmp);
	for (int k = 0; k < N_PEERS * N_FADD; k++) {
		CHECK(pairs[k].old == expect,
		      "fetch-add results do not chain: after %d adds summing "
		      "to %" PRIu64 " the next returned old value is %" PRIu64
		      " (an add was lost, applied twice or torn)",
		      k, expect, pairs[k].old);
		expect += pairs[k].add;
	}
	CHECK(expect == total, "sum mismatch");
	CHECK(tgt_read_u64(&t, idx, WORD_OFF) == total,
	      "the counter holds %" PRIu64 " after %d fetch-adds summing to "
	      "%" PRIu64,
	      tgt_read_u64(&t, idx, WORD_OFF), N_PEERS * N_FADD, total);
	memcpy(shadow + WORD_OFF, &total, 8);
	tgt_expect_region(&t, idx, shadow, sizeof(shadow),
			  "bytes around the counter");
	tgt_stop(&t);
}

struct cswap_round {
	uint32_t round; /* UINT32_MAX: stop */
	uint32_t pad;
	uint64_t cmp; /* the word's value when the round starts */
};

struct cswap_answer {
	uint64_t old;
	int32_t status;
	int32_t pad;
};

/* Every peer swaps in its own value, so a swap that happened without a
 * match would show up in the losers' old values and in the word. */
static uint64_t cswap_value(uint32_t round, int peer)
{
	return ((uint64_t)(round + 1) << 32) | (uint64_t)(peer + 1);
}

static int peer_cswap_main(int fd, void *arg)
{
	const struct peer_arg *a = arg;
	struct peer p = {.role = "cswap peer"};

	peer_open(&p, a, 1);
	TH_CHILD_CHECK(p.role, th_send(fd, "R", 1) == 0, "channel broken");
	for (;;) {
		struct cswap_answer out = {0};
		struct cswap_round r;
		struct rdps_tp_comp comp;
		uint64_t deadline;
		int ret, n = 0;

		TH_CHILD_CHECK(p.role,
			       th_recv(fd, &r, sizeof(r), TC_REPLY_MS) == 0,
			       "no round from the test");
		if (r.round == UINT32_MAX)
			break;
		*p.res = UINT64_MAX;
		ret = rdps_tp_atomic_cswap(
			p.ep, r.cmp, cswap_value(r.round, a->id), p.res, p.mr,
			p.rk.addr + WORD_OFF, &p.rk, r.round, 0);
		TH_CHILD_CHECK(p.role, ret == 0,
			       "cswap round %u: post returned %d", r.round,
			       ret);
		deadline = th_now_ms() + TC_COMP_MS;
		while (n == 0 && th_now_ms() < deadline)
			n = rdps_tp_wait(p.tp, &comp, 1, TC_COMP_MS);
		TH_CHILD_CHECK(p.role, n == 1,
			       "cswap round %u: no completion (%d)", r.round,
			       n);
		TH_CHILD_CHECK(p.role,
			       comp.wr_id == r.round &&
				       comp.opcode == RDPS_TP_OP_CSWAP,
			       "cswap round %u: completion wr_id %" PRIu64
			       " opcode %s",
			       r.round, comp.wr_id,
			       rdps_tp_opcode_str(comp.opcode));
		out.old = *p.res;
		out.status = comp.status;
		TH_CHILD_CHECK(p.role, th_send(fd, &out, sizeof(out)) == 0,
			       "channel broken");
	}
	return peer_close(&p);
}

/* compare-swap races: exactly one winner per round, and the losers'
 * swaps leave no trace. */
static void t_cswap_race(void **state)
{
	struct th_child kids[N_PEERS];
	struct peer_arg args[N_PEERS];
	uint8_t shadow[4096];
	uint64_t word = 0;
	int wins[N_PEERS] = {0};
	struct tgt t;
	int idx;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, sizeof(shadow), ALL_ACCESS, 0x4444);
	tgt_fill(&t, idx, WORD_OFF, 8, 0);
	th_fill(shadow, sizeof(shadow), 0x4444, 0);
	tgt_listen(&t);
	tc_spawn_peers(&t, idx, kids, args, N_PEERS, "cswap peer", 0);
	for (uint32_t r = 0; r < N_ROUNDS; r++) {
		struct cswap_round msg = {.round = r, .cmp = word};
		struct cswap_answer ans[N_PEERS];
		int winner = -1, winners = 0;

		for (int p = 0; p < N_PEERS; p++)
			CHECK(th_send(kids[p].fd, &msg, sizeof(msg)) == 0,
			      "peer %d gone", p);
		for (int p = 0; p < N_PEERS; p++) {
			tc_kid_recv(&kids[p], &ans[p], sizeof(ans[p]),
				    TC_REPLY_MS, "compare-swap round");
			CHECK(ans[p].status == RDPS_TP_WC_SUCCESS,
			      "round %u peer %d: status %s", r, p,
			      rdps_tp_status_str(ans[p].status));
			if (ans[p].old == word) {
				winners++;
				winner = p;
			}
		}
		CHECK(winners == 1,
		      "round %u: %d peers saw the expected value 0x%" PRIx64
		      " (won); olds 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64
		      " 0x%" PRIx64,
		      r, winners, word, ans[0].old, ans[1].old, ans[2].old,
		      ans[3].old);
		wins[winner]++;
		word = cswap_value(r, winner);
		for (int p = 0; p < N_PEERS; p++)
			CHECK(p == winner || ans[p].old == word,
			      "round %u: peer %d lost but saw 0x%" PRIx64
			      ", not the winner's (peer %d) value 0x%" PRIx64
			      ": a compare-swap that did not match still "
			      "swapped",
			      r, p, ans[p].old, winner, word);
	}
	for (int p = 0; p < N_PEERS; p++) {
		struct cswap_round stop = {.round = UINT32_MAX};

		CHECK(th_send(kids[p].fd, &stop, sizeof(stop)) == 0,
		      "peer %d gone", p);
	}
	for (int p = 0; p < N_PEERS; p++)
		tc_kid_reap_ok(&kids[p]);
	print_message("cswap wins per peer: %d %d %d %d\n", wins[0], wins[1],
		      wins[2], wins[3]);
	memcpy(shadow + WORD_OFF, &word, 8);
	tgt_expect_region(&t, idx, shadow, sizeof(shadow),
			  "the word after all rounds");
	tgt_stop(&t);
}

enum vop { V_PUT, V_GET, V_FADD, V_CSWAP };
enum vkey { K_LIVE, K_STALE, K_RANDOM };
enum vreg { R_RO, R_WO, R_RW, R_AT, R_ST, R_COUNT };

static const char *const vop_names[] = {"put", "get", "fetch-add",
					"compare-swap"};

/* access violations: an error completion, target memory untouched. */
static void t_access_violations(void **state)
{
	static const struct {
		const char *what;
		int phase; /* 0; 1: R_ST deregistered; 2: registered again */
		enum vop op;
		enum vreg reg;
		int64_t off;
		size_t len;
		enum vkey key;
		int expect;
	} cases[] = {
		{"write to a read-only region", 0, V_PUT, R_RO, 0, 64, K_LIVE,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"read of a write-only region", 0, V_GET, R_WO, 0, 64, K_LIVE,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"fetch-add on a region without atomic access", 0, V_FADD, R_RW,
		 0, 8, K_LIVE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"compare-swap on a region without atomic access", 0, V_CSWAP,
		 R_RW, 8, 8, K_LIVE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"write starting inside, ending past the end", 0, V_PUT, R_RW,
		 4096 - 32, 64, K_LIVE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"read starting inside, ending past the end", 0, V_GET, R_RW,
		 4096 - 32, 64, K_LIVE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"write starting before the base", 0, V_PUT, R_RW, -32, 64,
		 K_LIVE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"read starting before the base", 0, V_GET, R_RW, -16, 8,
		 K_LIVE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"fetch-add just past the end", 0, V_FADD, R_AT, 4096, 8,
		 K_LIVE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"fetch-add before the base", 0, V_FADD, R_AT, -8, 8, K_LIVE,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"unaligned fetch-add", 0, V_FADD, R_AT, 4, 8, K_LIVE,
		 RDPS_TP_WC_REM_INV_REQ_ERR},
		{"unaligned compare-swap", 0, V_CSWAP, R_AT, 12, 8, K_LIVE,
		 RDPS_TP_WC_REM_INV_REQ_ERR},
		{"write with an unknown key", 0, V_PUT, R_AT, 0, 64, K_RANDOM,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"read with an unknown key", 0, V_GET, R_AT, 0, 64, K_RANDOM,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"fetch-add with an unknown key", 0, V_FADD, R_AT, 0, 8,
		 K_RANDOM, RDPS_TP_WC_REM_ACCESS_ERR},
		{"write with a deregistered key", 1, V_PUT, R_ST, 0, 64,
		 K_STALE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"read with a deregistered key", 1, V_GET, R_ST, 0, 64, K_STALE,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"fetch-add with a deregistered key", 1, V_FADD, R_ST, 8, 8,
		 K_STALE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"write with the old key after the memory was registered "
		 "again",
		 2, V_PUT, R_ST, 0, 64, K_STALE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"read with the old key after the memory was registered "
		 "again",
		 2, V_GET, R_ST, 64, 64, K_STALE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"fetch-add with the old key after the memory was registered "
		 "again",
		 2, V_FADD, R_ST, 16, 8, K_STALE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"compare-swap with the old key after the memory was "
		 "registered again",
		 2, V_CSWAP, R_ST, 24, 8, K_STALE, RDPS_TP_WC_REM_ACCESS_ERR},
		{"write with the new key (control)", 2, V_PUT, R_ST, 256, 64,
		 K_LIVE, RDPS_TP_WC_SUCCESS},
		{"read with the new key (control)", 2, V_GET, R_ST, 384, 64,
		 K_LIVE, RDPS_TP_WC_SUCCESS},
		{"fetch-add with the new key (control)", 2, V_FADD, R_ST, 512,
		 8, K_LIVE, RDPS_TP_WC_SUCCESS},
	};
	static const unsigned access[R_COUNT] = {RDPS_TP_ACCESS_REMOTE_READ,
						 RDPS_TP_ACCESS_REMOTE_WRITE,
						 RW, ALL_ACCESS, ALL_ACCESS};
	struct rdps_tp_rkey_wire stale;
	uint8_t shadow[R_COUNT][4096];
	uint32_t random_key;
	struct conn c;
	struct tgt t;
	int phase = 0, reg[R_COUNT];

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	for (int r = 0; r < R_COUNT; r++) {
		reg[r] = tgt_alloc(&t, 4096, access[r], 0xa0 + (uint64_t)r);
		th_fill(shadow[r], 4096, 0xa0 + (uint64_t)r, 0);
	}
	stale = t.wire[reg[R_ST]];
	/* A key no region of the target has. */
	random_key = (uint32_t)th_mix((uint64_t)getpid() ^ th_now_ms());
	for (int again = 1; again;) {
		again = 0;
		for (int r = 0; r < R_COUNT; r++)
			if (random_key ==
			    rdps_be32toh(t.wire[reg[r]].rkey_be)) {
				random_key = (uint32_t)th_mix(random_key);
				again = 1;
			}
	}
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 4096);

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct rdps_tp_rkey_wire w;
		struct rdps_tp_rkey rk;
		struct rdps_tp_comp comp;
		uint64_t raddr, cmp = 0;
		int r = reg[cases[i].reg], ret;

		if (cases[i].phase != phase) {
			phase = cases[i].phase;
			if (phase == 1)
				tgt_dereg(&t, reg[R_ST]);
			else
				tgt_reg(&t, reg[R_ST], ALL_ACCESS);
		}
		/* A fresh connection per case: on verbs an error completion
		 * puts the queue pair in the error state. */
		conn_connect(&c, &t);
		w = cases[i].key == K_STALE ? stale : t.wire[r];
		if (cases[i].key == K_RANDOM)
			w.rkey_be = rdps_htobe32(random_key);
		ret = rdps_tp_rkey_unpack(c.ep, &w, &rk);
		CHECK(ret == 0,
		      "%s: rkey_unpack: %d (keys are checked at the "
		      "target, per operation)",
		      cases[i].what, ret);
		raddr = rk.addr + (uint64_t)cases[i].off;
		th_fill(c.buf, 64, 0xbad, 0);
		if (cases[i].off >= 0 && cases[i].off + 8 <= 4096)
			memcpy(&cmp, shadow[cases[i].reg] + cases[i].off, 8);
		switch (cases[i].op) {
		case V_PUT:
			ret = rdps_tp_put(c.ep, c.buf, cases[i].len, c.mr,
					  raddr, &rk, 50 + i, 0);
			break;
		case V_GET:
			ret = rdps_tp_get(c.ep, c.buf + 1024, cases[i].len,
					  c.mr, raddr, &rk, 50 + i, 0);
			break;
		case V_FADD:
			ret = rdps_tp_atomic_fadd(c.ep, 1, (uint64_t *)c.buf,
						  c.mr, raddr, &rk, 50 + i, 0);
			break;
		default:
			/* cmp is the current value: a cswap let through
			 * would change the memory. */
			ret = rdps_tp_atomic_cswap(c.ep, cmp, ~cmp,
						   (uint64_t *)c.buf, c.mr,
						   raddr, &rk, 50 + i, 0);
			break;
		}
		CHECK(ret == 0,
		      "%s: the %s post returned %d; the contract "
		      "wants 0 and an error completion",
		      cases[i].what, vop_names[cases[i].op], ret);
		tc_wait_comps(c.tp, &comp, 1, TC_COMP_MS, cases[i].what);
		CHECK(comp.wr_id == 50 + i, "%s: completion wr_id %" PRIu64,
		      cases[i].what, comp.wr_id);
		CHECK(comp.status == cases[i].expect,
		      "%s: %s completed with '%s', expected '%s'",
		      cases[i].what, vop_names[cases[i].op],
		      rdps_tp_status_str(comp.status),
		      rdps_tp_status_str(cases[i].expect));
		if (cases[i].expect == RDPS_TP_WC_SUCCESS) {
			uint8_t *sh = shadow[cases[i].reg] + cases[i].off;
			uint64_t old, res;

			if (cases[i].op == V_PUT) {
				memcpy(sh, c.buf, cases[i].len);
			} else if (cases[i].op == V_GET) {
				CHECK(!memcmp(c.buf + 1024, sh, cases[i].len),
				      "%s: the read returned other bytes than "
				      "the region holds",
				      cases[i].what);
			} else {
				memcpy(&old, sh, 8);
				memcpy(&res, c.buf, 8);
				CHECK(res == old,
				      "%s: returned 0x%" PRIx64 ", the word "
				      "held 0x%" PRIx64,
				      cases[i].what, res, old);
				old += 1;
				memcpy(sh, &old, 8);
			}
		}
		rdps_tp_ep_close(c.ep);
		c.ep = NULL;
		for (int k = 0; k < R_COUNT; k++)
			tgt_expect_region(&t, reg[k], shadow[k], 4096,
					  cases[i].what);
	}
	conn_close(&c);
	tgt_stop(&t);
}

/*
 * 5b. least privilege: a region registered for one endpoint's peer alone
 * (mem_reg_ep). Through another endpoint of the same target its key is
 * refused for every operation, target memory untouched; through its own
 * endpoint everything works; an old key of it is refused after the memory
 * was registered again, through the very endpoint it was made for.
 */
enum eop { E_PUT, E_PUT_IMM, E_GET, E_FADD, E_CSWAP, E_COUNT };

static const char *const eop_names[E_COUNT] = {
	"put", "put with immediate", "get", "fetch-add", "compare-swap"};

#define EPR_LEN 4096
#define EPR_SEED 0x5c0

/* Post op on c at off of the region rk names and expect one completion
 * with status st. A write sends 64 bytes of pattern, a read lands at
 * c->buf + 1024; cmp is the compare-swap's compare value. */
static void ep_op(struct conn *c, enum eop op, const struct rdps_tp_rkey *rk,
		  uint64_t off, uint64_t cmp, int st, const char *what)
{
	static const uint8_t rdps_op[E_COUNT] = {
		RDPS_TP_OP_WRITE, RDPS_TP_OP_WRITE_IMM, RDPS_TP_OP_READ,
		RDPS_TP_OP_FADD, RDPS_TP_OP_CSWAP};
	const size_t len = op <= E_GET ? 64 : 8;
	uint64_t raddr = rk->addr + off;
	struct rdps_tp_comp comp;
	int ret;

	th_fill(c->buf, 64, 0x5eed + off, 0);
	switch (op) {
	case E_PUT:
		ret = rdps_tp_put(c->ep, c->buf, len, c->mr, raddr, rk, 7, 0);
		break;
	case E_PUT_IMM:
		ret = rdps_tp_put_imm(c->ep, c->buf, len, c->mr, raddr, rk,
				      0xe9, 7, 0);
		break;
	case E_GET:
		ret = rdps_tp_get(c->ep, c->buf + 1024, len, c->mr, raddr, rk,
				  7, 0);
		break;
	case E_FADD:
		ret = rdps_tp_atomic_fadd(c->ep, 3, (uint64_t *)c->buf, c->mr,
					  raddr, rk, 7, 0);
		break;
	default:
		ret = rdps_tp_atomic_cswap(c->ep, cmp, ~cmp, (uint64_t *)c->buf,
					   c->mr, raddr, rk, 7, 0);
		break;
	}
	CHECK(ret == 0, "%s: the %s post returned %d (%s)", what, eop_names[op],
	      ret, rdps_errmsg());
	tc_wait_comps(c->tp, &comp, 1, TC_COMP_MS, what);
	tc_expect_comp(&comp, 7, rdps_op[op], st,
		       st == RDPS_TP_WC_SUCCESS ? (long)len : -1, what);
}

/* What a successful ep_op() did to the region's shadow (the bytes at
 * off); a read and the atomics' old values are checked against it. */
static void ep_op_shadow(struct conn *c, enum eop op, uint8_t *shadow,
			 uint64_t off, const char *what)
{
	uint64_t old, res;

	if (op == E_PUT || op == E_PUT_IMM) {
		memcpy(shadow + off, c->buf, 64);
		return;
	}
	if (op == E_GET) {
		CHECK(!memcmp(c->buf + 1024, shadow + off, 64),
		      "%s: the read returned other bytes than the region "
		      "holds",
		      what);
		return;
	}
	memcpy(&old, shadow + off, 8);
	memcpy(&res, c->buf, 8);
	CHECK(res == old,
	      "%s: %s returned 0x%" PRIx64 ", the word held 0x%" PRIx64, what,
	      eop_names[op], res, old);
	old = op == E_FADD ? old + 3 : ~old;
	memcpy(shadow + off, &old, 8);
}

static void t_ep_regions(void **state)
{
	uint8_t shadow[EPR_LEN];
	struct rdps_tp_rkey_wire old_wire;
	struct rdps_tp_rkey rk;
	struct imm_rec rec;
	struct conn a, b;
	struct tgt t;
	char what[160];
	int idx, shared, n_acc = 0, a_ep, ret;
	uint64_t cmp;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, EPR_LEN, RDPS_TP_ACCESS_LOCAL, EPR_SEED);
	/* A region of every peer: the control that b's endpoint works. */
	shared = tgt_alloc(&t, EPR_LEN, RW, EPR_SEED + 1);
	th_fill(shadow, EPR_LEN, EPR_SEED, 0);
	tgt_listen(&t);
	conn_open_tp(&a, NULL, EPR_LEN);
	conn_open_tp(&b, NULL, EPR_LEN);
	conn_connect(&a, &t);
	a_ep = n_acc++;
	tgt_dereg(&t, idx);
	tgt_reg_ep(&t, idx, ALL_ACCESS, a_ep);

	/* Another endpoint with a's key: refused, memory untouched. A fresh
	 * connection per operation: on verbs the error breaks the queue
	 * pair. */
	for (int op = 0; op < E_COUNT; op++) {
		conn_connect(&b, &t);
		n_acc++;
		snprintf(what, sizeof(what),
			 "%s through another endpoint with the key of a "
			 "region registered for one endpoint's peer",
			 eop_names[op]);
		tc_put_sync(&b, b.buf, 64, b.rk[shared].addr + 64 * op,
			    &b.rk[shared], "put to a region of every peer");
		memcpy(&cmp, shadow + 8 * op, 8);
		ep_op(&b, (enum eop)op, &b.rk[idx], op <= E_GET ? 128 : 8 * op,
		      cmp, RDPS_TP_WC_REM_ACCESS_ERR, what);
		rdps_tp_ep_close(b.ep);
		b.ep = NULL;
		tgt_expect_region(&t, idx, shadow, EPR_LEN, what);
	}
	CHECK(tgt_imm_wait(&t, &rec, 1, 0) == 0,
	      "a refused put with immediate raised a RECV_IMM at the target");

	/* Its own endpoint: everything works; a read through it sees the
	 * region unchanged by the refused operations above. */
	ret = rdps_tp_rkey_unpack(a.ep, &t.wire[idx], &a.rk[idx]);
	CHECK(ret == 0, "rkey_unpack: %d (%s)", ret, rdps_errmsg());
	tc_get_sync(&a, a.buf, EPR_LEN, a.rk[idx].addr, &a.rk[idx],
		    "read of the whole region through its endpoint");
	CHECK(!memcmp(a.buf, shadow, EPR_LEN),
	      "the region read through its own endpoint differs from what "
	      "it held: a refused operation changed it");
	for (int op = 0; op < E_COUNT; op++) {
		uint64_t off = op <= E_GET ? 256 + 64 * (uint64_t)op
					   : 8 * (uint64_t)op;

		snprintf(what, sizeof(what),
			 "%s through the endpoint the region is registered "
			 "for",
			 eop_names[op]);
		memcpy(&cmp, shadow + off, 8);
		ep_op(&a, (enum eop)op, &a.rk[idx], off, cmp,
		      RDPS_TP_WC_SUCCESS, what);
		ep_op_shadow(&a, (enum eop)op, shadow, off, what);
	}
	CHECK(tgt_imm_wait(&t, &rec, 1, TC_COMP_MS) == 1 && rec.ep_ok &&
		      rec.imm == 0xe9 && rec.len == 64,
	      "the put with immediate through the region's endpoint raised "
	      "no RECV_IMM of 64 bytes with immediate 0xe9 at the target");
	tgt_expect_region(&t, idx, shadow, EPR_LEN,
			  "after the operations through its endpoint");

	/* Registered again for the same endpoint: the new key works, the
	 * old one is refused there too. One round per kind of operation,
	 * each on a fresh connection (the refusal breaks a verbs one). */
	for (int op = 0; op < E_COUNT; op++) {
		uint64_t off = op <= E_GET ? 1024 + 64 * (uint64_t)op
					   : 8 * (uint64_t)op;

		if (op) {
			rdps_tp_ep_close(a.ep);
			a.ep = NULL;
			conn_connect(&a, &t);
			a_ep = n_acc++;
			tgt_dereg(&t, idx);
			tgt_reg_ep(&t, idx, ALL_ACCESS, a_ep);
		}
		old_wire = t.wire[idx];
		tgt_dereg(&t, idx);
		tgt_reg_ep(&t, idx, ALL_ACCESS, a_ep);
		ret = rdps_tp_rkey_unpack(a.ep, &t.wire[idx], &a.rk[idx]);
		CHECK(ret == 0, "rkey_unpack: %d (%s)", ret, rdps_errmsg());
		snprintf(what, sizeof(what),
			 "%s with the new key after the region was "
			 "registered again for its endpoint",
			 eop_names[op]);
		memcpy(&cmp, shadow + off, 8);
		ep_op(&a, (enum eop)op, &a.rk[idx], off, cmp,
		      RDPS_TP_WC_SUCCESS, what);
		ep_op_shadow(&a, (enum eop)op, shadow, off, what);
		ret = rdps_tp_rkey_unpack(a.ep, &old_wire, &rk);
		CHECK(ret == 0, "rkey_unpack of the old key: %d (%s)", ret,
		      rdps_errmsg());
		snprintf(what, sizeof(what),
			 "%s with the old key, through the same endpoint, "
			 "after the region was registered again",
			 eop_names[op]);
		memcpy(&cmp, shadow + off, 8);
		ep_op(&a, (enum eop)op, &rk, off, cmp,
		      RDPS_TP_WC_REM_ACCESS_ERR, what);
		tgt_expect_region(&t, idx, shadow, EPR_LEN, what);
	}
	conn_close(&a);
	conn_close(&b);
	/* The target closes its endpoints with the region still
	 * registered for one of them, then deregisters it. */
	tgt_stop(&t);
}

/* A URL nobody listens on. */
static void unused_url(char *buf, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int s;

	if (tc_is_scheme("shm")) {
		snprintf(buf, len, "shm://rdps-t-%d-nobody", (int)getpid());
		return;
	}
	/* A port the kernel just handed out and that is closed again. */
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0, "socket: %s", strerror(errno));
	CHECK(inet_pton(AF_INET, tc_test_host(), &a.sin_addr) == 1,
	      "RDPS_TEST_ADDR '%s' is not an IPv4 address", tc_test_host());
	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		      getsockname(s, (struct sockaddr *)&a, &alen) == 0,
	      "bind: %s", strerror(errno));
	close(s);
	snprintf(buf, len, "%s://%s:%u", TP_SCHEME, tc_test_host(),
		 (unsigned)ntohs(a.sin_port));
}

/* connect to nobody: -ECONNREFUSED, a message, no endpoint. */
static void t_connect_refused(void **state)
{
	struct rdps_tp_ep *ep = (struct rdps_tp_ep *)(uintptr_t)0x1;
	char url[200];
	struct conn c;
	int ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	unused_url(url, sizeof(url));
	conn_open_tp(&c, NULL, 4096);
	rdps_clear_error();
	ret = rdps_tp_connect(c.tp, url, NULL, 0, &ep, TC_CONNECT_MS);
	CHECK(ret == -ECONNREFUSED,
	      "connect to %s where nobody listens: %d "
	      "(%s), expected -ECONNREFUSED",
	      url, ret, rdps_errmsg());
	CHECK(rdps_errmsg()[0] != '\0',
	      "refused connect left rdps_errmsg() empty");
	CHECK(ep == (struct rdps_tp_ep *)(uintptr_t)0x1,
	      "a failed connect wrote its out-parameter");

	/* A malformed URL of this scheme. */
	snprintf(url, sizeof(url), "%s://", TP_SCHEME);
	rdps_clear_error();
	ret = rdps_tp_connect(c.tp, url, NULL, 0, &ep, TC_CONNECT_MS);
	CHECK(ret == -EINVAL, "connect to '%s': %d, expected -EINVAL", url,
	      ret);
	CHECK(rdps_errmsg()[0] != '\0', "malformed URL: no message");
	conn_close(&c);
}

/* a listener that never answers: -ETIMEDOUT within the timeout. */
static void t_connect_timeout(void **state)
{
	const int timeout = 500;
	struct rdps_tp_ep *ep = NULL;
	uint64_t t0, el;
	char url[200];
	struct conn c;
	struct tgt t;
	int ret, s = -1;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	memset(&t, 0, sizeof(t));
	if (tc_is_scheme("tcp")) {
		/* A plain socket that listens and never accepts: the kernel
		 * completes the TCP handshake, the rdps hello never gets an
		 * answer. */
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t alen = sizeof(a);

		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(s >= 0, "socket: %s", strerror(errno));
		inet_pton(AF_INET, tc_test_host(), &a.sin_addr);
		CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
			      listen(s, 4) == 0 &&
			      getsockname(s, (struct sockaddr *)&a, &alen) == 0,
		      "listen socket: %s", strerror(errno));
		snprintf(url, sizeof(url), "tcp://%s:%u", tc_test_host(),
			 (unsigned)ntohs(a.sin_port));
	} else {
		/* A target that listens but never calls accept. */
		tgt_start(&t, NULL);
		tgt_listen(&t);
		snprintf(url, sizeof(url), "%s", t.url);
	}
	conn_open_tp(&c, NULL, 4096);
	rdps_clear_error();
	t0 = th_now_ms();
	ret = rdps_tp_connect(c.tp, url, NULL, 0, &ep, timeout);
	el = th_now_ms() - t0;
	if (ret == 0)
		rdps_tp_ep_close(ep);
	CHECK(ret == -ETIMEDOUT,
	      "connect to %s, %s, with a %d ms timeout: "
	      "%d (%s) after %" PRIu64 " ms, expected -ETIMEDOUT",
	      url,
	      s >= 0 ? "a socket that never accepts"
		     : "a listener that never calls accept",
	      timeout, ret, rdps_errmsg(), el);
	CHECK(el >= (uint64_t)timeout * 8 / 10 &&
		      el <= (uint64_t)timeout + 2500,
	      "connect timed out after %" PRIu64 " ms with a %d ms timeout", el,
	      timeout);
	CHECK(rdps_errmsg()[0] != '\0', "timed-out connect: no message");
	conn_close(&c);
	if (s >= 0)
		close(s);
	else
		tgt_stop(&t);
}

/* listening on a name or port in use: -EADDRINUSE. */
static void t_listen_in_use(void **state)
{
	struct rdps_tp_listener *l = (struct rdps_tp_listener *)(uintptr_t)0x1;
	struct rdps_tp_listener *mine;
	char url[200];
	struct conn c;
	struct tgt t;
	int ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 4096);

	/* In use by another process (of this host: a remote target's
	 * address is not ours to listen on). */
	if (th_remote()) {
		print_message("remote target: the in-use-by-another-process "
			      "part is not run\n");
	} else {
		rdps_clear_error();
		ret = rdps_tp_listen(c.tp, t.url, NULL, 0, &l);
		CHECK(ret == -EADDRINUSE,
		      "listen on %s, where the target listens: %d "
		      "(%s), expected -EADDRINUSE",
		      t.url, ret, rdps_errmsg());
		CHECK(rdps_errmsg()[0] != '\0', "address in use: no message");
		CHECK(l == (struct rdps_tp_listener *)(uintptr_t)0x1,
		      "a failed listen wrote its out-parameter");
	}

	/* In use by this same instance. */
	tc_fresh_listen_url(url, sizeof(url));
	ret = rdps_tp_listen(c.tp, url, NULL, 0, &mine);
	CHECK(ret == 0, "listen on %s: %d (%s)", url, ret, rdps_errmsg());
	ret = rdps_tp_listener_url(mine, url, sizeof(url));
	CHECK(ret == 0, "listener_url: %d", ret);
	ret = rdps_tp_listen(c.tp, url, NULL, 0, &l);
	CHECK(ret == -EADDRINUSE,
	      "second listen on %s in one instance: %d, "
	      "expected -EADDRINUSE",
	      url, ret);
	rdps_tp_listener_close(mine);

	/* Once closed, the name or port can be listened on again. */
	ret = rdps_tp_listen(c.tp, url, NULL, 0, &mine);
	CHECK(ret == 0, "listen on %s after its listener was closed: %d (%s)",
	      url, ret, rdps_errmsg());
	rdps_tp_listener_close(mine);
	conn_close(&c);
	tgt_stop(&t);
}

/* a peer with another job token is refused; accept goes on waiting. */
static void t_token_mismatch(void **state)
{
	struct rdps_tp_ep *ep = (struct rdps_tp_ep *)(uintptr_t)0x1;
	struct rdps_tp_cfg cfg;
	struct conn bad, good;
	struct tmsg m;
	struct tgt t;
	int ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	tgt_alloc(&t, 4096, RW, 0);
	tgt_listen(&t);
	tc_cfg(&cfg);
	cfg.token = TC_TOKEN ^ 0xff00;
	conn_open_tp(&bad, &cfg, 4096);
	conn_open_tp(&good, NULL, 4096);

	tgt_accept_begin(&t, 1, 2 * TC_CONNECT_MS);
	rdps_clear_error();
	ret = rdps_tp_connect(bad.tp, t.url, NULL, 0, &ep, TC_CONNECT_MS);
	CHECK(ret == -EACCES,
	      "connect with token 0x%" PRIx64 " to a "
	      "listener with token 0x%" PRIx64 ": %d (%s), expected -EACCES",
	      cfg.token, (uint64_t)TC_TOKEN, ret, rdps_errmsg());
	CHECK(rdps_errmsg()[0] != '\0', "token mismatch: no message");
	CHECK(ep == (struct rdps_tp_ep *)(uintptr_t)0x1,
	      "a refused connect wrote its out-parameter");
	ret = rdps_tp_connect(good.tp, t.url, NULL, 0, &good.ep, TC_CONNECT_MS);
	tgt_accept_end(&t, &m);
	CHECK(ret == 0,
	      "connect with the right token after a refused one: "
	      "%d (%s)",
	      ret, rdps_errmsg());
	CHECK(m.ret == 0 && m.c == 1,
	      "target: accept after refusing a bad token: %d (%s); accept "
	      "must refuse the bad peer and keep waiting",
	      m.ret, m.err);
	ret = rdps_tp_rkey_unpack(good.ep, &t.wire[0], &good.rk[0]);
	CHECK(ret == 0, "unpack: %d", ret);
	th_fill(good.buf, 64, 0x99, 0);
	tc_put_sync(&good, good.buf, 64, good.rk[0].addr, &good.rk[0],
		    "put on the accepted connection");
	conn_close(&bad);
	conn_close(&good);
	tgt_stop(&t);
}

/* protocol version mismatch. */
static void t_proto_version_mismatch(void **state)
{
	(void)state;
	print_message(
		"skipped: a protocol version mismatch cannot be produced "
		"through the transport API (the version is compiled in)\n");
	skip();
}

/* the target is killed with operations outstanding. */
static void t_peer_killed(void **state)
{
	const size_t chunk = 65536;
	const int window = 16;
	struct rdps_tp_comp comps[32];
	int outstanding = 0, posted = 0, ok_after = 0, errors = 0, disc = 0;
	int failed = 0, enotconn = 0, last_ret = 0, idx, ret, st;
	char why[96];
	struct conn c;
	struct tgt t;
	uint64_t deadline;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, 1u << 20, RW, 0x8888);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, (size_t)window * chunk);
	conn_connect(&c, &t);

	for (int i = 0; i < window; i++, posted++, outstanding++) {
		ret = rdps_tp_get(c.ep, c.buf + (size_t)i * chunk, chunk, c.mr,
				  c.rk[idx].addr + (size_t)i * chunk,
				  &c.rk[idx], (uint64_t)posted, 0);
		CHECK(ret == 0, "get %d before the kill: %d", i, ret);
	}
	st = th_kill(&t.ch);
	CHECK(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	      "target was not killed: %s", th_status_str(st, why, sizeof(why)));

	/* Keep the pipe full until the failure shows, then drain. */
	deadline = th_now_ms() + 10000;
	while (th_now_ms() < deadline && (!failed || outstanding)) {
		int n;

		if (!failed && outstanding < window) {
			size_t slot = (size_t)(posted % window);

			ret = rdps_tp_get(c.ep, c.buf + slot * chunk, chunk,
					  c.mr, c.rk[idx].addr + slot * chunk,
					  &c.rk[idx], (uint64_t)posted, 0);
			last_ret = ret;
			if (ret == 0) {
				posted++;
				outstanding++;
			} else if (ret == -ENOTCONN) {
				failed = enotconn = 1;
			} else {
				CHECK(ret == -EAGAIN,
				      "get after the peer died returned %d; "
				      "allowed: 0, -EAGAIN, -ENOTCONN",
				      ret);
			}
		}
		n = rdps_tp_wait(c.tp, comps, 32, 10);
		CHECK(n >= 0, "rdps_tp_wait after the peer died: %d", n);
		for (int i = 0; i < n; i++) {
			CHECK(comps[i].ep == c.ep,
			      "completion names endpoint "
			      "%p, not %p",
			      (void *)comps[i].ep, (void *)c.ep);
			if (comps[i].opcode == RDPS_TP_OP_DISCONNECT) {
				CHECK(++disc == 1 && !comps[i].wr_id &&
					      comps[i].status ==
						      RDPS_TP_WC_CONN_ERR,
				      "DISCONNECT %d, wr_id %" PRIu64
				      ", status %s: want one, wr_id 0, "
				      "connection lost",
				      disc, comps[i].wr_id,
				      rdps_tp_status_str(comps[i].status));
				failed = 1;
				continue;
			}
			outstanding--;
			if (comps[i].status == RDPS_TP_WC_SUCCESS) {
				CHECK(!failed,
				      "get %" PRIu64 " completed successfully "
				      "after an earlier one failed with the "
				      "connection",
				      comps[i].wr_id);
				ok_after++;
				continue;
			}
			CHECK(comps[i].status == RDPS_TP_WC_CONN_ERR ||
				      comps[i].status == RDPS_TP_WC_FLUSH_ERR,
			      "get %" PRIu64 " on a dead connection completed "
			      "with '%s'; expected connection lost or flushed",
			      comps[i].wr_id,
			      rdps_tp_status_str(comps[i].status));
			failed = 1;
			errors++;
		}
	}
	CHECK(failed,
	      "no failure observed within 10 s of killing the target: "
	      "%d gets completed successfully after the kill, the last post "
	      "returned %d",
	      ok_after, last_ret);
	CHECK(outstanding == 0,
	      "%d of the gets outstanding when the peer "
	      "died never completed within 10 s (%d error completions)",
	      outstanding, errors);

	/* Later posts fail: -ENOTCONN, or an error completion. */
	ret = rdps_tp_get(c.ep, c.buf, 64, c.mr, c.rk[idx].addr, &c.rk[idx],
			  999, 0);
	if (ret == 0) {
		tc_wait_comps(c.tp, comps, 1, TC_COMP_MS,
			      "a get on a connection known to be broken");
		CHECK(comps[0].status != RDPS_TP_WC_SUCCESS,
		      "a get on a connection known to be broken succeeded");
	} else {
		CHECK(ret == -ENOTCONN,
		      "a get on a connection known to be "
		      "broken returned %d, expected -ENOTCONN",
		      ret);
	}
	print_message("after the kill: %d ok, %d error completions, %s\n",
		      ok_after, errors,
		      enotconn ? "-ENOTCONN seen" : "no -ENOTCONN");
	CHECK(!tc_sigpipe_seen,
	      "the transport raised SIGPIPE writing to the dead "
	      "peer (send without MSG_NOSIGNAL); a default handler would have "
	      "killed the application");
	conn_close(&c);
}

/* -EAGAIN once sq_depth operations are outstanding, then recovery. */
static void t_eagain_backpressure(void **state)
{
	const int sq = 16, total = 400;
	struct rdps_tp_comp comps[64];
	struct rdps_tp_cfg cfg;
	int posted = 0, done = 0, n, idx, ret = 0;
	uint8_t shadow[8192];
	uint64_t deadline;
	struct conn c;
	struct tgt t;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, sizeof(shadow), RW, 0);
	memset(shadow, 0, sizeof(shadow));
	tgt_listen(&t);
	tc_cfg(&cfg);
	cfg.sq_depth = (unsigned)sq;
	cfg.cq_depth = 64;
	conn_open_tp(&c, &cfg, sizeof(shadow));
	conn_connect(&c, &t);
	th_fill(c.buf, sizeof(shadow), 0x9999, 0);

	/* An operation is outstanding until its completion is polled (as
	 * with verbs): without polling, post sq + 1 must see -EAGAIN. */
	for (posted = 0; posted <= sq; posted++) {
		ret = rdps_tp_put(c.ep, c.buf + posted * 8, 8, c.mr,
				  c.rk[idx].addr + (uint64_t)posted * 8,
				  &c.rk[idx], (uint64_t)posted, 0);
		if (ret)
			break;
	}
	CHECK(ret == -EAGAIN,
	      "%d posts without polling all returned 0 with sq_depth %d; "
	      "expected -EAGAIN by post %d (an operation stays outstanding "
	      "until its completion is polled)",
	      posted, sq, sq + 1);
	CHECK(posted >= 1, "the very first post returned -EAGAIN");
	tc_wait_comps(c.tp, comps, posted, TC_COMP_MS,
		      "the posts before -EAGAIN");
	for (int i = 0; i < posted; i++)
		tc_expect_comp(&comps[i], (uint64_t)i, RDPS_TP_OP_WRITE,
			       RDPS_TP_WC_SUCCESS, 8, "put before -EAGAIN");
	n = rdps_tp_wait(c.tp, comps, 64, 50);
	CHECK(n == 0,
	      "%d completions more than posts: the post that "
	      "returned -EAGAIN was carried out anyway",
	      n);
	memcpy(shadow, c.buf, (size_t)posted * 8);

	/* A stream of posts that meets -EAGAIN and polls, then retries. */
	deadline = th_now_ms() + 20000;
	posted = done = 0;
	while (done < total && th_now_ms() < deadline) {
		while (posted < total) {
			size_t off = 1024 + (size_t)posted * 8;

			ret = rdps_tp_put(c.ep, c.buf + off, 8, c.mr,
					  c.rk[idx].addr + off, &c.rk[idx],
					  1000 + (uint64_t)posted, 0);
			if (ret == -EAGAIN)
				break;
			CHECK(ret == 0, "stream put %d: %d", posted, ret);
			posted++;
		}
		n = rdps_tp_wait(c.tp, comps, 64, TC_COMP_MS);
		CHECK(n > 0,
		      "stream: no completion within %d ms (%d posted, "
		      "%d done): %d",
		      TC_COMP_MS, posted, done, n);
		for (int i = 0; i < n; i++, done++)
			tc_expect_comp(&comps[i], 1000 + (uint64_t)done,
				       RDPS_TP_OP_WRITE, RDPS_TP_WC_SUCCESS, 8,
				       "stream put");
	}
	CHECK(done == total, "stream: %d of %d puts completed", done, total);
	memcpy(shadow + 1024, c.buf + 1024, (size_t)total * 8);
	tgt_expect_region(&t, idx, shadow, sizeof(shadow), "after the stream");
	conn_close(&c);

	/* A full completion queue stops posts on every endpoint instead of
	 * losing a completion. Endpoints are connected one at a time and
	 * each is posted to until -EAGAIN; once a post on an endpoint whose
	 * send queue still has room gets -EAGAIN, the completion queue is
	 * full. cq_depth is the smallest power of 2 from 8 that holds an
	 * endpoint: transport.h lets a transport set part of it aside per
	 * endpoint (verbs: receives and a close marker), and connect then
	 * says -ENOBUFS. One accept serves the probing connects. */
	{
		struct rdps_tp_ep *eps[8];
		int n_eps = 0, blocked = -1, k = 0;
		struct tmsg m;

		cfg.sq_depth = 8;
		tgt_accept_begin(&t, 1, TC_CONNECT_MS);
		for (cfg.cq_depth = 8;; cfg.cq_depth *= 2) {
			conn_open_tp(&c, &cfg, 4096);
			rdps_clear_error();
			ret = rdps_tp_connect(c.tp, t.url, NULL, 0, &c.ep,
					      TC_CONNECT_MS);
			if (ret != -ENOBUFS || cfg.cq_depth >= 1024)
				break;
			conn_close(&c);
		}
		tgt_accept_end(&t, &m);
		CHECK(ret == 0 && m.ret == 0,
		      "connect with sq_depth 8, cq_depth %u: %d (%s) / "
		      "accept %d (%s)",
		      cfg.cq_depth, ret, rdps_errmsg(), m.ret, m.err);
		CHECK(rdps_tp_rkey_unpack(c.ep, &t.wire[idx], &c.rk[idx]) == 0,
		      "unpack");
		eps[n_eps++] = c.ep;
		posted = 0;
		for (;;) {
			struct rdps_tp_ep *ep = eps[n_eps - 1];

			for (k = 0; k <= 8; k++, posted++) {
				ret = rdps_tp_put(ep, c.buf, 8, c.mr,
						  c.rk[idx].addr + 4000,
						  &c.rk[idx], (uint64_t)posted,
						  0);
				if (ret)
					break;
			}
			CHECK(ret == -EAGAIN,
			      "cq_depth %u: endpoint %d took %d posts "
			      "(sq_depth "
			      "8) without polling, then returned %d",
			      cfg.cq_depth, n_eps - 1, k, ret);
			if (k < 8) {
				blocked = n_eps - 1;
				break;
			}
			CHECK(n_eps < 8,
			      "cq_depth %u: %d unpolled completions on %d "
			      "endpoints and the completion queue is still "
			      "not full",
			      cfg.cq_depth, posted, n_eps);
			tgt_accept_begin(&t, 1, TC_CONNECT_MS);
			ret = rdps_tp_connect(c.tp, t.url, NULL, 0, &ep,
					      TC_CONNECT_MS);
			tgt_accept_end(&t, &m);
			CHECK(ret == 0 && m.ret == 0,
			      "cq_depth %u, %d completions unpolled: connect "
			      "of endpoint %d: %d (%s) / accept %d (%s); if "
			      "the "
			      "transport sets cq entries aside per endpoint, "
			      "the queue must fill before the next endpoint "
			      "no longer fits",
			      cfg.cq_depth, posted, n_eps, ret, rdps_errmsg(),
			      m.ret, m.err);
			eps[n_eps++] = ep;
		}
		print_message("cq_depth %u: full after %d completions, on "
			      "endpoint %d\n",
			      cfg.cq_depth, posted, blocked);
		tc_wait_comps(c.tp, comps, posted, TC_COMP_MS,
			      "the puts that filled the completion queue");
		for (int i = 0; i < posted; i++)
			CHECK(comps[i].status == RDPS_TP_WC_SUCCESS &&
				      comps[i].wr_id < (uint64_t)posted,
			      "completion %d: status %s, wr_id %" PRIu64, i,
			      rdps_tp_status_str(comps[i].status),
			      comps[i].wr_id);
		ret = rdps_tp_put(eps[blocked], c.buf, 8, c.mr,
				  c.rk[idx].addr + 4000, &c.rk[idx], 100, 0);
		CHECK(ret == 0, "post after the queue was drained: %d", ret);
		tc_wait_comps(c.tp, comps, 1, TC_COMP_MS,
			      "the put after the drain");
		tc_expect_comp(&comps[0], 100, RDPS_TP_OP_WRITE,
			       RDPS_TP_WC_SUCCESS, 8,
			       "the put after the drain");
		CHECK(comps[0].ep == eps[blocked],
		      "completion names the wrong endpoint");
		for (int i = 1; i < n_eps; i++)
			rdps_tp_ep_close(eps[i]);
	}
	conn_close(&c);
	tgt_stop(&t);
}

/* N unsignaled puts and one signaled: one completion, all data. */
static void t_selective_signaling(void **state)
{
	const int n_unsig = 12;
	const size_t len = 256;
	struct rdps_tp_comp comps[4];
	uint8_t shadow[8192];
	struct conn c;
	struct tgt t;
	int idx, ret, n;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, sizeof(shadow), RW, 0xaaaa);
	th_fill(shadow, sizeof(shadow), 0xaaaa, 0);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, sizeof(shadow));
	conn_connect(&c, &t);
	th_fill(c.buf, sizeof(shadow), 0xabab, 0);
	for (int i = 0; i <= n_unsig; i++) {
		size_t off = (size_t)i * (len + 64);

		ret = rdps_tp_put(c.ep, c.buf + off, len, c.mr,
				  c.rk[idx].addr + off, &c.rk[idx], (uint64_t)i,
				  i < n_unsig ? RDPS_TP_F_UNSIGNALED : 0);
		CHECK(ret == 0, "put %d: %d", i, ret);
		memcpy(shadow + off, c.buf + off, len);
	}
	tc_wait_comps(c.tp, comps, 1, TC_COMP_MS, "the signaled put");
	tc_expect_comp(&comps[0], (uint64_t)n_unsig, RDPS_TP_OP_WRITE,
		       RDPS_TP_WC_SUCCESS, (long)len,
		       "the signaled put after unsignaled ones");
	n = rdps_tp_wait(c.tp, comps, 4, 100);
	CHECK(n == 0,
	      "%d completions beyond the one signaled put (first "
	      "wr_id %" PRIu64 "): unsignaled successful puts must not "
	      "complete",
	      n, n > 0 ? comps[0].wr_id : 0);
	tgt_expect_region(&t, idx, shadow, sizeof(shadow),
			  "data of unsignaled puts");
	conn_close(&c);
	tgt_stop(&t);
}

/* ep_close with operations outstanding: flushed or completed. */
static void t_ep_close_outstanding(void **state)
{
	const int n_ops = 32;
	const size_t chunk = 32768;
	struct rdps_tp_comp comps[64];
	int seen[64] = {0}, got = 0, flushed = 0, idx, ret;
	uint64_t deadline;
	struct conn c;
	struct tgt t;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, (size_t)n_ops * chunk, RW, 0xcccc);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, (size_t)n_ops * chunk);
	conn_connect(&c, &t);
	th_fill(c.buf, (size_t)n_ops * chunk, 0xcdcd, 0);
	for (int i = 0; i < n_ops; i++) {
		size_t off = (size_t)i * chunk;

		if (i % 2)
			ret = rdps_tp_get(c.ep, c.buf + off, chunk, c.mr,
					  c.rk[idx].addr + off, &c.rk[idx],
					  (uint64_t)i, 0);
		else
			ret = rdps_tp_put(c.ep, c.buf + off, chunk, c.mr,
					  c.rk[idx].addr + off, &c.rk[idx],
					  (uint64_t)i, 0);
		CHECK(ret == 0, "op %d: %d", i, ret);
	}
	rdps_tp_ep_close(c.ep);
	c.ep = NULL;

	deadline = th_now_ms() + TC_COMP_MS;
	while (got < n_ops && th_now_ms() < deadline) {
		int n = rdps_tp_wait(c.tp, comps, 64, 50);

		CHECK(n >= 0, "rdps_tp_wait after ep_close: %d", n);
		for (int i = 0; i < n; i++, got++) {
			uint64_t id = comps[i].wr_id;

			CHECK(id < (uint64_t)n_ops && !seen[id],
			      "after ep_close: completion with wr_id %" PRIu64
			      " (unknown or repeated)",
			      id);
			seen[id] = 1;
			CHECK(comps[i].ep == NULL,
			      "completion of op %" PRIu64 " polled after "
			      "ep_close names endpoint %p; transport.h: NULL "
			      "once it has been closed",
			      id, (void *)comps[i].ep);
			CHECK(comps[i].status == RDPS_TP_WC_SUCCESS ||
				      comps[i].status == RDPS_TP_WC_FLUSH_ERR,
			      "op %" PRIu64 " after ep_close: status '%s', "
			      "expected success or flushed",
			      id, rdps_tp_status_str(comps[i].status));
			CHECK(comps[i].opcode == (id % 2 ? RDPS_TP_OP_READ
							 : RDPS_TP_OP_WRITE),
			      "op %" PRIu64 ": opcode %s", id,
			      rdps_tp_opcode_str(comps[i].opcode));
			flushed += comps[i].status == RDPS_TP_WC_FLUSH_ERR;
		}
	}
	CHECK(got == n_ops,
	      "after ep_close only %d of %d outstanding ops "
	      "produced a completion within %d ms (transport.h: they complete "
	      "with FLUSH_ERR)",
	      got, n_ops, TC_COMP_MS);
	print_message("ep_close: %d of %d ops flushed\n", flushed, n_ops);

	/* The instance and the target both carry on. */
	conn_connect(&c, &t);
	th_fill(c.buf, 4096, 0xcece, 0);
	tc_put_sync(&c, c.buf, 4096, c.rk[idx].addr, &c.rk[idx],
		    "put on a new connection after ep_close");
	memset(c.buf + 4096, 0, 4096);
	tc_get_sync(&c, c.buf + 4096, 4096, c.rk[idx].addr, &c.rk[idx],
		    "get on a new connection after ep_close");
	CHECK(!memcmp(c.buf, c.buf + 4096, 4096),
	      "round trip after ep_close: data differs");
	CHECK(!tc_sigpipe_seen, "the transport raised SIGPIPE");
	conn_close(&c);
	tgt_stop(&t);
}

/* rdps_tp_wait returns completions in busy, adaptive and event mode. */
static void t_poll_modes(void **state)
{
	static const struct {
		enum rdps_tp_poll_mode mode;
		const char *name;
	} modes[] = {
		{RDPS_TP_POLL_BUSY, "busy"},
		{RDPS_TP_POLL_ADAPTIVE, "adaptive"},
		{RDPS_TP_POLL_EVENT, "event"},
	};

	(void)state;
	TC_REQUIRE_TRANSPORT();
	for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
		struct rdps_tp_comp comp[4];
		struct imm_rec rec;
		struct rdps_tp_cfg cfg;
		char what[64];
		uint64_t t0, el;
		struct conn c;
		struct tgt t;
		int idx, n, ret;

		tc_cfg(&cfg);
		cfg.poll_mode = modes[i].mode;
		cfg.spin_us = 20;
		tgt_start(&t, &cfg);
		idx = tgt_alloc(&t, 4096, RW, 0);
		tgt_listen(&t);
		conn_open_tp(&c, &cfg, 4096);
		conn_connect(&c, &t);

		/* Nothing outstanding: a timeout, not an error. */
		t0 = th_now_ms();
		n = rdps_tp_wait(c.tp, comp, 4, 30);
		el = th_now_ms() - t0;
		CHECK(n == 0,
		      "%s mode: wait with nothing outstanding returned "
		      "%d",
		      modes[i].name, n);
		CHECK(el >= 25 && el < 2000,
		      "%s mode: a 30 ms wait took %" PRIu64 " ms",
		      modes[i].name, el);

		snprintf(what, sizeof(what), "%s mode: put", modes[i].name);
		th_fill(c.buf, 64, 0x1200 + i, 0);
		tc_put_sync(&c, c.buf, 64, c.rk[idx].addr, &c.rk[idx], what);
		snprintf(what, sizeof(what), "%s mode: get", modes[i].name);
		tc_get_sync(&c, c.buf + 64, 64, c.rk[idx].addr, &c.rk[idx],
			    what);
		CHECK(!memcmp(c.buf, c.buf + 64, 64), "%s mode: data differs",
		      modes[i].name);

		/* The target waits in the same mode for a RECV_IMM. */
		ret = rdps_tp_put_imm(c.ep, c.buf, 8, c.mr, c.rk[idx].addr,
				      &c.rk[idx], 0xe0 + (uint32_t)i, 3, 0);
		CHECK(ret == 0, "%s mode: put_imm: %d", modes[i].name, ret);
		snprintf(what, sizeof(what), "%s mode: put_imm", modes[i].name);
		tc_wait_comps(c.tp, comp, 1, TC_COMP_MS, what);
		tc_expect_comp(&comp[0], 3, RDPS_TP_OP_WRITE_IMM,
			       RDPS_TP_WC_SUCCESS, 8, what);
		n = tgt_imm_wait(&t, &rec, 1, TC_COMP_MS);
		CHECK(n == 1 && rec.imm == 0xe0 + (uint32_t)i,
		      "%s mode: the target's wait gave %d RECV_IMM (imm 0x%x)",
		      modes[i].name, n, n ? rec.imm : 0);
		conn_close(&c);
		tgt_stop(&t);
	}
}

/* registration lifecycle and -EBUSY of a transport with live objects. */
static void t_lifecycle(void **state)
{
	struct rdps_tp_mr *mr;
	struct rdps_tp_listener *l;
	char url[200];
	struct conn c;
	struct tgt t;
	void *mem, *heap;
	int idx, ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	idx = tgt_alloc(&t, 16384, RW, 0);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 4096);

	/* mem_alloc: page-aligned and zeroed. */
	ret = rdps_tp_mem_alloc(c.tp, 8192, &mem);
	CHECK(ret == 0, "mem_alloc: %d (%s)", ret, rdps_errmsg());
	CHECK((uintptr_t)mem % (uintptr_t)sysconf(_SC_PAGESIZE) == 0,
	      "mem_alloc gave %p, not page-aligned", mem);
	for (size_t i = 0; i < 8192; i++)
		CHECK(((uint8_t *)mem)[i] == 0,
		      "mem_alloc memory not zeroed at byte %zu", i);

	/* Live registration, listener and endpoint each keep it busy. */
	ret = rdps_tp_mem_reg(c.tp, mem, 8192, RW, &mr);
	CHECK(ret == 0, "mem_reg: %d (%s)", ret, rdps_errmsg());
	CHECK(mr->addr == mem && mr->len == 8192 && mr->access == RW &&
		      mr->tp == c.tp,
	      "mr fields: addr %p len %zu access 0x%x", mr->addr, mr->len,
	      mr->access);
	rdps_tp_mem_dereg(c.mr);
	ret = rdps_tp_close(c.tp);
	CHECK(ret == -EBUSY, "close with a live registration: %d", ret);
	tc_fresh_listen_url(url, sizeof(url));
	ret = rdps_tp_listen(c.tp, url, NULL, 0, &l);
	CHECK(ret == 0, "listen: %d (%s)", ret, rdps_errmsg());
	rdps_tp_mem_dereg(mr);
	ret = rdps_tp_close(c.tp);
	CHECK(ret == -EBUSY, "close with a live listener: %d", ret);
	rdps_tp_listener_close(l);
	ret = rdps_tp_mem_reg(c.tp, c.buf, c.len, RDPS_TP_ACCESS_LOCAL, &c.mr);
	CHECK(ret == 0, "mem_reg: %d", ret);
	conn_connect(&c, &t);
	rdps_tp_mem_dereg(c.mr);
	ret = rdps_tp_close(c.tp);
	CHECK(ret == -EBUSY, "close with a live endpoint: %d", ret);

	/* reg/dereg cycles: each new registration works as a source. */
	for (int cycle = 0; cycle < 3; cycle++) {
		char what[64];

		ret = rdps_tp_mem_reg(c.tp, mem, 8192, RDPS_TP_ACCESS_LOCAL,
				      &mr);
		CHECK(ret == 0, "cycle %d: mem_reg: %d", cycle, ret);
		th_fill(mem, 512, 0x500 + (uint64_t)cycle, 0);
		snprintf(what, sizeof(what), "put from registration cycle %d",
			 cycle);
		c.mr = mr;
		tc_put_sync(&c, mem, 512,
			    c.rk[idx].addr + 512u * (unsigned)cycle, &c.rk[idx],
			    what);
		CHECK(tgt_hash(&t, idx, 512u * (unsigned)cycle, 512) ==
			      th_hash(mem, 512),
		      "%s: target data differs", what);
		rdps_tp_mem_dereg(mr);
	}

	/* Local-only registration of ordinary heap memory works for lbuf. */
	heap = malloc(4096);
	CHECK(heap != NULL, "out of memory");
	ret = rdps_tp_mem_reg(c.tp, heap, 4096, RDPS_TP_ACCESS_LOCAL, &c.mr);
	CHECK(ret == 0, "local registration of malloc()ed memory: %d (%s)", ret,
	      rdps_errmsg());
	th_fill(heap, 2048, 0x600, 0);
	tc_put_sync(&c, heap, 2048, c.rk[idx].addr + 4096, &c.rk[idx],
		    "put from malloc()ed memory");
	tc_get_sync(&c, (uint8_t *)heap + 2048, 2048, c.rk[idx].addr + 4096,
		    &c.rk[idx], "get into malloc()ed memory");
	CHECK(!memcmp(heap, (uint8_t *)heap + 2048, 2048),
	      "round trip through malloc()ed memory differs");
	rdps_tp_mem_dereg(c.mr);

	free(heap);

	rdps_tp_ep_close(c.ep);
	c.ep = NULL;
	rdps_tp_mem_free(c.tp, mem, 8192);
	ret = rdps_tp_mem_reg(c.tp, c.buf, c.len, RDPS_TP_ACCESS_LOCAL, &c.mr);
	CHECK(ret == 0, "mem_reg: %d", ret);
	conn_close(&c);
	tgt_stop(&t);
}

#define CASE(f) \
	cmocka_unit_test_setup_teardown(f, tc_case_setup, tc_case_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		CASE(t_put_get_sizes),
		CASE(t_rkey_wire),
		CASE(t_private_data),
		CASE(t_disconnect_notice),
		CASE(t_write_imm),
		CASE(t_fadd_many_peers),
		CASE(t_cswap_race),
		CASE(t_access_violations),
		CASE(t_ep_regions),
		CASE(t_connect_refused),
		CASE(t_connect_timeout),
		CASE(t_listen_in_use),
		CASE(t_token_mismatch),
		CASE(t_proto_version_mismatch),
		CASE(t_peer_killed),
		CASE(t_eagain_backpressure),
		CASE(t_selective_signaling),
		CASE(t_ep_close_outstanding),
		CASE(t_poll_modes),
		CASE(t_lifecycle),
		CASE(t_gather_read),
		CASE(t_gather_bad),
	/* One transport's own cases, beside this file: tp_conf_<scheme>.c. */
#ifdef TP_CASES_SHM
		CASE(t_shm_reg_outside_heap),
		CASE(t_shm_mixed_order),
		CASE(t_shm_key_cache),
		CASE(t_shm_imm_busy),
#endif
#ifdef TP_CASES_TCP
		CASE(t_tcp_rd_atomic_bound),
		CASE(t_tcp_held_flush),
		CASE(t_tcp_user_drives),
		CASE(t_tcp_spin_learns),
		CASE(t_tcp_serve_thread),
		CASE(t_tcp_spin_while_moving),
		CASE(t_tcp_rx_lowat),
		CASE(t_tcp_direct_reads),
#endif
	};

	static const struct th_role roles[] = {
		{"target", tc_target_main, 1},
		{"fadd peer", peer_fadd_main, 0},
		{"cswap peer", peer_cswap_main, 0},
	};
	const char *why;
	int ret, bye;

	tc_init(TP_SCHEME);
	tc_catch_sigpipe();
	/* An exec'd child or the target server never comes back. */
	th_main(argc, argv, roles, sizeof(roles) / sizeof(*roles));
	why = tc_cannot_run();
	if (why) {
		/* 77: ctest's SKIP_RETURN_CODE, so no device is not a pass. */
		printf("conformance_%s: skipped: %s\n", TP_SCHEME, why);
		return 77;
	}
	/* argv[1]: a cmocka test name filter, e.g. "t_fadd*". */
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	ret = cmocka_run_group_tests_name("conformance_" TP_SCHEME, tests,
					  tc_group_setup, tc_group_teardown);
	if (th_remote()) {
		bye = th_remote_bye();
		if (bye) {
			fprintf(stderr,
				"the target server at %s did not take the "
				"bye: %s\n",
				th_remote(), strerror(-bye));
			ret = ret ? ret : 1;
		}
	}
	return ret;
}
