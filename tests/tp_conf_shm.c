/* SPDX-License-Identifier: MIT */
/*
 * tp_conf_shm.c - the conformance cases of the shm transport alone,
 * registered in tp_conformance.c's table of conformance_shm.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "tp_conf.h"
#include "transport.h"

void t_shm_reg_outside_heap(void **state)
{
	struct rdps_tp_mr *mr2 = (struct rdps_tp_mr *)(uintptr_t)0x1;
	struct conn c;
	void *heap;
	int ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	conn_open_tp(&c, NULL, 4096);
	heap = malloc(4096);
	CHECK(heap != NULL, "out of memory");
	/* Remote access lives only in the shared heap. */
	rdps_clear_error();
	ret = rdps_tp_mem_reg(c.tp, heap, 4096, RDPS_TP_ACCESS_REMOTE_READ,
			      &mr2);
	if (ret == 0)
		rdps_tp_mem_dereg(mr2);
	CHECK(ret == -EINVAL,
	      "shm: remote-read registration of memory "
	      "not from mem_alloc: %d, expected -EINVAL",
	      ret);
	CHECK(rdps_errmsg()[0] != '\0',
	      "shm: refused registration without a message");
	CHECK(mr2 == (struct rdps_tp_mr *)(uintptr_t)0x1,
	      "a failed mem_reg wrote its out-parameter");
	free(heap);
	conn_close(&c);
}

#define ALL_ACCESS                                                  \
	(RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_WRITE | \
	 RDPS_TP_ACCESS_REMOTE_ATOMIC)

/* One post of t_shm_mixed_order's sequence and what its completion must
 * say (signaled: 0 for an unsignaled post, which must not complete). */
struct mixed_op {
	const char *what;
	int op;	    /* RDPS_TP_OP_WRITE, READ, FADD or CSWAP */
	int region; /* 0: all access; 1: read only */
	uint64_t off;
	size_t len;
	int bad_local; /* local place outside the registration */
	int signaled;
	int status;
};

static int mixed_post(struct conn *c, const struct rdps_tp_rkey *rk,
		      const struct mixed_op *o, uint64_t wr_id, uint64_t *cmp,
		      uint64_t *local_out)
{
	/* The local place: in c's buffer, or past its registration. */
	uint8_t *l = o->bad_local ? c->buf + c->len : c->buf + 256 * wr_id;
	unsigned fl = o->signaled ? 0 : RDPS_TP_F_UNSIGNALED;
	uint64_t raddr = rk->addr + o->off;

	*local_out = (uint64_t)(l - c->buf);
	switch (o->op) {
	case RDPS_TP_OP_WRITE:
		return rdps_tp_put(c->ep, l, o->len, c->mr, raddr, rk, wr_id,
				   fl);
	case RDPS_TP_OP_READ:
		return rdps_tp_get(c->ep, l, o->len, c->mr, raddr, rk, wr_id,
				   fl);
	case RDPS_TP_OP_FADD:
		return rdps_tp_atomic_fadd(c->ep, 5, (uint64_t *)l, c->mr,
					   raddr, rk, wr_id, fl);
	default:
		return rdps_tp_atomic_cswap(c->ep, *cmp, 0x5157u, (uint64_t *)l,
					    c->mr, raddr, rk, wr_id, fl);
	}
}

/*
 * Mixed operations posted back to back on one endpoint, each completing
 * inside its post: completions come in post order, each with its own
 * wr_id, opcode, status and length; an access violation fails its own
 * operation alone (on a key met before, whose check is cached, and on one
 * met for the first time); unsignaled successes do not complete; reads
 * see the writes and atomics posted before them. Twice over, the second
 * time with every key cached. Then -EAGAIN exactly at sq_depth + 1 for
 * reads and atomics too, and posts again once polled.
 */
void t_shm_mixed_order(void **state)
{
	static const struct mixed_op ops[] = {
		{"put 64 B", RDPS_TP_OP_WRITE, 0, 0, 64, 0, 1, 0},
		{"read of the put's first word", RDPS_TP_OP_READ, 0, 0, 8, 0, 1,
		 0},
		{"fetch-add", RDPS_TP_OP_FADD, 0, 512, 8, 0, 1, 0},
		{"read past the end of the read-only region", RDPS_TP_OP_READ,
		 1, 4096 - 4, 8, 0, 1, RDPS_TP_WC_REM_ACCESS_ERR},
		{"compare-swap of the added word", RDPS_TP_OP_CSWAP, 0, 512, 8,
		 0, 1, 0},
		{"fetch-add on the read-only region", RDPS_TP_OP_FADD, 1, 0, 8,
		 0, 1, RDPS_TP_WC_REM_ACCESS_ERR},
		{"read of the swapped word", RDPS_TP_OP_READ, 0, 512, 8, 0, 1,
		 0},
		{"unaligned fetch-add", RDPS_TP_OP_FADD, 0, 4, 8, 0, 1,
		 RDPS_TP_WC_REM_INV_REQ_ERR},
		{"unsignaled put", RDPS_TP_OP_WRITE, 0, 1024, 8, 0, 0, 0},
		{"read of the unsignaled put", RDPS_TP_OP_READ, 0, 1024, 8, 0,
		 1, 0},
		{"read into a place outside the local registration",
		 RDPS_TP_OP_READ, 0, 0, 8, 1, 1, RDPS_TP_WC_LOC_PROT_ERR},
		{"read of the read-only region", RDPS_TP_OP_READ, 1, 64, 8, 0,
		 1, 0},
	};
	const int n_ops = (int)(sizeof(ops) / sizeof(*ops));
	struct rdps_tp_comp comps[64];
	struct rdps_tp_cfg cfg;
	uint64_t local[16], cmp, word, v;
	uint8_t ro[4096];
	int reg[2], sq = 16, n, k, ret, posted;
	struct conn c;
	struct tgt t;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	reg[0] = tgt_alloc(&t, 4096, ALL_ACCESS, 0x31);
	reg[1] = tgt_alloc(&t, 4096, RDPS_TP_ACCESS_REMOTE_READ, 0x32);
	th_fill(ro, sizeof(ro), 0x32, 0);
	tgt_listen(&t);
	tc_cfg(&cfg);
	cfg.sq_depth = (unsigned)sq;
	cfg.cq_depth = 64;
	conn_open_tp(&c, &cfg, 8192);
	conn_connect(&c, &t);

	for (int round = 0; round < 2; round++) {
		th_fill(c.buf, 4096, 0x77 + (uint64_t)round, 0);
		word = tgt_read_u64(&t, reg[0], 512);
		cmp = word + 5;
		for (int i = 0; i < n_ops; i++) {
			ret = mixed_post(&c, &c.rk[reg[ops[i].region]], &ops[i],
					 (uint64_t)i, &cmp, &local[i]);
			CHECK(ret == 0, "round %d, %s: post returned %d", round,
			      ops[i].what, ret);
		}
		tc_wait_comps(c.tp, comps, n_ops - 1, TC_COMP_MS,
			      "the mixed posts");
		n = rdps_tp_poll(c.tp, comps + n_ops - 1, 4);
		CHECK(n == 0,
		      "round %d: %d completions more than signaled "
		      "posts",
		      round, n);
		k = 0;
		for (int i = 0; i < n_ops; i++) {
			if (!ops[i].signaled)
				continue;
			tc_expect_comp(&comps[k], (uint64_t)i, ops[i].op,
				       ops[i].status,
				       ops[i].status ? -1 : (long)ops[i].len,
				       ops[i].what);
			CHECK(comps[k].ep == c.ep,
			      "%s: completion names "
			      "another endpoint",
			      ops[i].what);
			k++;
		}
		/* What the successful ones did, in post order. */
		CHECK(!memcmp(c.buf + local[1], c.buf + local[0], 8),
		      "round %d: the read after the put saw other bytes",
		      round);
		memcpy(&v, c.buf + local[2], 8);
		CHECK(v == word,
		      "round %d: fetch-add returned 0x%" PRIx64
		      ", the word held 0x%" PRIx64,
		      round, v, word);
		memcpy(&v, c.buf + local[4], 8);
		CHECK(v == word + 5,
		      "round %d: compare-swap returned 0x%" PRIx64
		      ", the word held 0x%" PRIx64 " (the fetch-add posted "
		      "before it is not in)",
		      round, v, word + 5);
		memcpy(&v, c.buf + local[6], 8);
		CHECK(v == 0x5157u, "round %d: read after the swap: 0x%" PRIx64,
		      round, v);
		CHECK(!memcmp(c.buf + local[9], c.buf + local[8], 8),
		      "round %d: the read missed the unsignaled put", round);
		CHECK(!memcmp(c.buf + local[11], ro + 64, 8),
		      "round %d: the read of the read-only region is wrong",
		      round);
		CHECK(tgt_read_u64(&t, reg[1], 0) == *(uint64_t *)ro,
		      "round %d: a refused fetch-add changed the region",
		      round);
	}

	/* Backpressure: reads and atomics done in the post still hold a
	 * send-queue slot until their completion is polled. */
	for (posted = 0; posted <= sq; posted++) {
		ret = posted % 2
			      ? rdps_tp_atomic_fadd(
					c.ep, 1,
					(uint64_t *)(c.buf + 8 * posted), c.mr,
					c.rk[reg[0]].addr + 8, &c.rk[reg[0]],
					100 + (uint64_t)posted, 0)
			      : rdps_tp_get(c.ep, c.buf + 8 * posted, 8, c.mr,
					    c.rk[reg[0]].addr, &c.rk[reg[0]],
					    100 + (uint64_t)posted, 0);
		if (ret)
			break;
	}
	CHECK(ret == -EAGAIN && posted == sq,
	      "%d reads and fetch-adds posted without polling on sq_depth "
	      "%d, then %d; expected -EAGAIN at post %d",
	      posted, sq, ret, sq + 1);
	tc_wait_comps(c.tp, comps, posted, TC_COMP_MS,
		      "the posts before -EAGAIN");
	for (int i = 0; i < posted; i++)
		tc_expect_comp(&comps[i], 100 + (uint64_t)i,
			       i % 2 ? RDPS_TP_OP_FADD : RDPS_TP_OP_READ,
			       RDPS_TP_WC_SUCCESS, 8, "post before -EAGAIN");
	ret = rdps_tp_get(c.ep, c.buf, 8, c.mr, c.rk[reg[0]].addr,
			  &c.rk[reg[0]], 200, 0);
	CHECK(ret == 0, "a read after the queue was polled: %d", ret);
	tc_wait_comps(c.tp, comps, 1, TC_COMP_MS, "the read after polling");
	tc_expect_comp(&comps[0], 200, RDPS_TP_OP_READ, RDPS_TP_WC_SUCCESS, 8,
		       "the read after polling");
	conn_close(&c);
	tgt_stop(&t);
}

/* Post op (len bytes for a read or write) on rk at off and return its
 * completion's status. */
static int cache_op(struct conn *c, int op, size_t len,
		    const struct rdps_tp_rkey *rk, uint64_t off, uint64_t wr_id)
{
	struct rdps_tp_comp comp;
	uint64_t *res = (uint64_t *)(c->buf + 4096);
	int ret;

	if (op == RDPS_TP_OP_READ)
		ret = rdps_tp_get(c->ep, c->buf, len, c->mr, rk->addr + off, rk,
				  wr_id, 0);
	else if (op == RDPS_TP_OP_WRITE)
		ret = rdps_tp_put(c->ep, c->buf, len, c->mr, rk->addr + off, rk,
				  wr_id, 0);
	else if (op == RDPS_TP_OP_FADD)
		ret = rdps_tp_atomic_fadd(c->ep, 1, res, c->mr, rk->addr + off,
					  rk, wr_id, 0);
	else
		ret = rdps_tp_atomic_cswap(c->ep, 0, 1, res, c->mr,
					   rk->addr + off, rk, wr_id, 0);
	CHECK(ret == 0, "post of op %d: %d", op, ret);
	tc_wait_comps(c->tp, &comp, 1, TC_COMP_MS, "a key-cache operation");
	CHECK(comp.wr_id == wr_id && comp.opcode == op,
	      "completion wr_id %" PRIu64 " opcode %d, expected %" PRIu64
	      " and %d",
	      comp.wr_id, comp.opcode, wr_id, op);
	return comp.status;
}

/*
 * The initiator's cache of checked keys (shm.h, struct shm_rkey_cache):
 * a key used and cached is refused the moment its region is deregistered
 * and after it is registered again (then the new key works and the old
 * stays refused) on the same endpoint; keys of regions sharing a cache
 * slot, used in turn, each reach their own region. Reads and writes of
 * 8 bytes (the posts' fast path, shm_rma.c) and of 64 (the general path)
 * alike.
 */
void t_shm_key_cache(void **state)
{
	static const struct {
		int op;
		size_t len;
	} ops[] = {{RDPS_TP_OP_READ, 8},  {RDPS_TP_OP_READ, 64},
		   {RDPS_TP_OP_WRITE, 8}, {RDPS_TP_OP_WRITE, 64},
		   {RDPS_TP_OP_FADD, 8},  {RDPS_TP_OP_CSWAP, 8}};
	struct rdps_tp_rkey old, fresh;
	uint8_t want[64];
	int reg[8], st, a = -1, b = -1;
	uint64_t id = 1;
	struct conn c;
	struct tgt t;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	for (int i = 0; i < 8; i++)
		reg[i] = tgt_alloc(&t, 4096, ALL_ACCESS, 0x40 + (uint64_t)i);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, 8192);
	conn_connect(&c, &t);

	/* Cached by use, then revoked. */
	old = c.rk[reg[0]];
	for (size_t i = 0; i < sizeof(ops) / sizeof(*ops); i++) {
		st = cache_op(&c, ops[i].op, ops[i].len, &old, 64, id++);
		CHECK(st == RDPS_TP_WC_SUCCESS,
		      "op %d of %zu B with a live key: %s", ops[i].op,
		      ops[i].len, rdps_tp_status_str(st));
	}
	tgt_dereg(&t, reg[0]);
	for (size_t i = 0; i < sizeof(ops) / sizeof(*ops); i++) {
		st = cache_op(&c, ops[i].op, ops[i].len, &old, 64, id++);
		CHECK(st == RDPS_TP_WC_REM_ACCESS_ERR,
		      "op %d of %zu B with a key used, then deregistered: "
		      "%s, expected a remote access error",
		      ops[i].op, ops[i].len, rdps_tp_status_str(st));
	}
	tgt_reg(&t, reg[0], ALL_ACCESS);
	CHECK(rdps_tp_rkey_unpack(c.ep, &t.wire[reg[0]], &fresh) == 0,
	      "unpack of the new key");
	CHECK(fresh.key != old.key, "the new registration has the old key");
	for (size_t i = 0; i < sizeof(ops) / sizeof(*ops); i++) {
		st = cache_op(&c, ops[i].op, ops[i].len, &old, 64, id++);
		CHECK(st == RDPS_TP_WC_REM_ACCESS_ERR,
		      "op %d of %zu B with the old key after the region "
		      "was registered again: %s",
		      ops[i].op, ops[i].len, rdps_tp_status_str(st));
		st = cache_op(&c, ops[i].op, ops[i].len, &fresh, 64, id++);
		CHECK(st == RDPS_TP_WC_SUCCESS,
		      "op %d of %zu B with the new key: %s", ops[i].op,
		      ops[i].len, rdps_tp_status_str(st));
	}

	/* Two live keys of one cache slot (the low bits of their table
	 * index agree), read in turn. */
	for (int i = 1; i < 8 && b < 0; i++)
		for (int j = i + 1; j < 8 && b < 0; j++)
			if (c.rk[reg[i]].key % 4 == c.rk[reg[j]].key % 4) {
				a = reg[i];
				b = reg[j];
			}
	CHECK(b >= 0, "no two of 7 keys share a cache slot of 4");
	for (int r = 0; r < 6; r++) {
		int x = r % 2 ? b : a;

		st = cache_op(&c, RDPS_TP_OP_READ, r < 2 ? 8 : 64, &c.rk[x],
			      128, id++);
		CHECK(st == RDPS_TP_WC_SUCCESS, "read %d: %s", r,
		      rdps_tp_status_str(st));
		tgt_read(&t, x, 128, want, sizeof(want));
		CHECK(!memcmp(c.buf, want, r < 2 ? 8 : sizeof(want)),
		      "read %d of region %d through a shared cache slot "
		      "returned another region's bytes",
		      r, x);
	}
	conn_close(&c);
	tgt_stop(&t);
}

struct imm_acc {
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *ep;
	int ret;
};

static void *imm_acc_main(void *arg)
{
	struct imm_acc *a = arg;

	a->ret = rdps_tp_accept(a->l, &a->ep, TC_COMP_MS);
	return NULL;
}

/*
 * A receiver that only calls rdps_tp_poll (never waits, so never arms)
 * and has no completion of its own queued still receives each immediate
 * written to it: the poll that finds its completion queue empty looks at
 * the inbound rings. Both ends in this process, the accept on a thread.
 */
void t_shm_imm_busy(void **state)
{
	struct rdps_tp *rx_tp = NULL, *tx_tp = NULL;
	struct rdps_tp_ep *tx_ep = NULL;
	struct rdps_tp_mr *rx_mr = NULL, *tx_mr = NULL;
	struct rdps_tp_rkey_wire w;
	struct rdps_tp_rkey rk;
	struct rdps_tp_comp comps[4];
	struct rdps_tp_cfg cfg;
	struct imm_acc a = {0};
	void *rx_mem = NULL, *tx_mem = NULL;
	char url[256];
	pthread_t th;
	uint64_t end;
	int ret, n;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tc_cfg(&cfg);
	cfg.poll_mode = RDPS_TP_POLL_BUSY;
	CHECK(rdps_tp_open(tc_scheme(), &cfg, &rx_tp) == 0, "open: %s",
	      rdps_errmsg());
	CHECK(rdps_tp_open(tc_scheme(), &cfg, &tx_tp) == 0, "open: %s",
	      rdps_errmsg());
	CHECK(rdps_tp_mem_alloc(rx_tp, 4096, &rx_mem) == 0 &&
		      rdps_tp_mem_reg(rx_tp, rx_mem, 4096,
				      RDPS_TP_ACCESS_REMOTE_WRITE, &rx_mr) == 0,
	      "receiver memory: %s", rdps_errmsg());
	CHECK(rdps_tp_mem_alloc(tx_tp, 4096, &tx_mem) == 0 &&
		      rdps_tp_mem_reg(tx_tp, tx_mem, 4096, RDPS_TP_ACCESS_LOCAL,
				      &tx_mr) == 0,
	      "sender memory: %s", rdps_errmsg());
	tc_fresh_listen_url(url, sizeof(url));
	CHECK(rdps_tp_listen(rx_tp, url, NULL, 0, &a.l) == 0, "listen: %s",
	      rdps_errmsg());
	CHECK(rdps_tp_listener_url(a.l, url, sizeof(url)) == 0, "listener url");
	CHECK(pthread_create(&th, NULL, imm_acc_main, &a) == 0,
	      "accept thread");
	ret = rdps_tp_connect(tx_tp, url, NULL, 0, &tx_ep, TC_COMP_MS);
	pthread_join(th, NULL);
	CHECK(ret == 0 && a.ret == 0, "connect %d, accept %d: %s", ret, a.ret,
	      rdps_errmsg());
	rdps_tp_rkey_pack(rx_mr, &w);
	CHECK(rdps_tp_rkey_unpack(tx_ep, &w, &rk) == 0, "rkey unpack");
	CHECK(rdps_tp_poll(rx_tp, comps, 4) == 0,
	      "the receiver has completions before any post");
	for (uint32_t i = 0; i < 3; i++) {
		ret = rdps_tp_put_imm(tx_ep, tx_mem, 8, tx_mr, rk.addr, &rk,
				      0xb0590000u + i, i, RDPS_TP_F_UNSIGNALED);
		CHECK(ret == 0, "put_imm %u: post returned %d", i, ret);
		end = rdps_now_ns() + (uint64_t)TC_COMP_MS * 1000000ull;
		do
			n = rdps_tp_poll(rx_tp, comps, 4);
		while (n == 0 && rdps_now_ns() < end);
		CHECK(n == 1,
		      "a receiver that only polls got %d completions for "
		      "put_imm %u, expected its RECV_IMM",
		      n, i);
		CHECK(comps[0].opcode == RDPS_TP_OP_RECV_IMM &&
			      comps[0].imm == 0xb0590000u + i &&
			      comps[0].len == 8 && comps[0].ep == a.ep,
		      "RECV_IMM %u: opcode %s imm 0x%x len %u", i,
		      rdps_tp_opcode_str(comps[0].opcode), comps[0].imm,
		      comps[0].len);
	}
	rdps_tp_ep_close(tx_ep);
	rdps_tp_ep_close(a.ep);
	rdps_tp_listener_close(a.l);
	rdps_tp_mem_dereg(tx_mr);
	rdps_tp_mem_dereg(rx_mr);
	rdps_tp_mem_free(tx_tp, tx_mem, 4096);
	rdps_tp_mem_free(rx_tp, rx_mem, 4096);
	CHECK(rdps_tp_close(tx_tp) == 0 && rdps_tp_close(rx_tp) == 0,
	      "close of the two instances");
}
