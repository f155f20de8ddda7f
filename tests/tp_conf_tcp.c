/* SPDX-License-Identifier: MIT */
/*
 * tp_conf_tcp.c - the conformance cases of the tcp transport alone,
 * registered in tp_conformance.c's table of conformance_tcp.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "tp_conf.h"
#include "transport.h"

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
