/* SPDX-License-Identifier: MIT */
/*
 * tp_conf_gather.c - the gather READ (transport.h, "Gather READ") in the
 * conformance suite, on every transport: k ranges of two registrations
 * into k scattered local places with one completion, the most ranges one
 * gather takes, post order with a plain READ, the generic fallback, and
 * bad input: limits refused at post time, a range the target must refuse
 * (one completion for the whole gather, target memory untouched, and on
 * tcp and shm the local places too), a local place outside the
 * registration.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "tp_conf.h"
#include "transport.h"

#define G_REGION 65536
#define G_LOCAL (512u * 1024)
#define G_BYTE 0xa5

/* Range i of a k-range gather over regions a and b: length 1..199,
 * alternating regions, remote offsets spread, local places in reverse
 * order with a gap after each (which must stay G_BYTE). */
static void g_plan(struct conn *c, const int reg[2], unsigned k,
		   struct rdps_tp_gather_ent *e, uint64_t *roff)
{
	size_t lo = G_LOCAL;

	for (unsigned i = 0; i < k; i++) {
		uint32_t len = 1 + (uint32_t)((i * 37 + 11) % 199);

		roff[i] = ((uint64_t)i * 251 + 3) % (G_REGION - 200);
		lo -= len + 7;
		e[i] = (struct rdps_tp_gather_ent){
			.lbuf = c->buf + lo,
			.raddr = c->rk[reg[i & 1]].addr + roff[i],
			.rkey = &c->rk[reg[i & 1]],
			.len = len,
		};
	}
}

/* Every place holds its range of shadow[region], every other byte of the
 * local buffer is still G_BYTE. */
static void g_expect(const struct conn *c, const struct rdps_tp_gather_ent *e,
		     const uint64_t *roff, unsigned k,
		     uint8_t (*shadow)[G_REGION], int landed, const char *what)
{
	static uint8_t want[G_LOCAL];
	size_t d;

	memset(want, G_BYTE, sizeof(want));
	for (unsigned i = 0; landed && i < k; i++)
		memcpy(want + ((uint8_t *)e[i].lbuf - c->buf),
		       shadow[i & 1] + roff[i], e[i].len);
	d = th_first_diff(c->buf, want, G_LOCAL);

	CHECK(d == G_LOCAL, "%s: local byte %zu is 0x%02x, want 0x%02x (%s)",
	      what, d, d < G_LOCAL ? c->buf[d] : 0, d < G_LOCAL ? want[d] : 0,
	      landed ? "a range landed wrong or spilled"
		     : "a failed gather wrote a local place");
}

/* Poll for ms and count completions of wr_id (0: of any operation): a
 * gather completes once. */
static int g_count_more(struct rdps_tp *tp, uint64_t wr_id, int ms)
{
	struct rdps_tp_comp comps[16];
	uint64_t end = th_now_ms() + (uint64_t)ms;
	int n = 0;

	while (th_now_ms() < end) {
		int got = rdps_tp_poll(tp, comps, 16);

		for (int i = 0; i < got; i++)
			n += comps[i].wr_id == wr_id ||
			     (!wr_id &&
			      comps[i].opcode != RDPS_TP_OP_DISCONNECT);
	}
	return n;
}

void t_gather_read(void **state)
{
	static uint8_t shadow[2][G_REGION];
	static struct rdps_tp_gather_ent e[RDPS_TP_GATHER_MAX];
	static uint64_t roff[RDPS_TP_GATHER_MAX];
	struct rdps_tp_comp comp[2];
	struct conn c;
	struct tgt t;
	uint64_t total;
	int reg[2], ret;
	unsigned ks[] = {2, 7, RDPS_TP_GATHER_MAX};

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	reg[0] = tgt_alloc(&t, G_REGION, RDPS_TP_ACCESS_REMOTE_READ, 0x6a71);
	reg[1] = tgt_alloc(&t, G_REGION,
			   RDPS_TP_ACCESS_REMOTE_READ |
				   RDPS_TP_ACCESS_REMOTE_WRITE,
			   0x6a72);
	th_fill(shadow[0], G_REGION, 0x6a71, 0);
	th_fill(shadow[1], G_REGION, 0x6a72, 0);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, G_LOCAL);
	conn_connect(&c, &t);

	for (size_t j = 0; j < sizeof(ks) / sizeof(*ks); j++) {
		char what[64];

		snprintf(what, sizeof(what), "gather of %u ranges", ks[j]);
		g_plan(&c, reg, ks[j], e, roff);
		total = 0;
		for (unsigned i = 0; i < ks[j]; i++)
			total += e[i].len;
		memset(c.buf, G_BYTE, G_LOCAL);
		ret = rdps_tp_get_gather(c.ep, e, ks[j], c.mr, 300 + j, 0);
		CHECK(ret == 0, "%s: post returned %d (%s)", what, ret,
		      rdps_errmsg());
		/* ents may be reused once the post returned */
		memset(e, 0, sizeof(e[0]) * ks[j]);
		tc_wait_comps(c.tp, comp, 1, TC_COMP_MS, what);
		tc_expect_comp(comp, 300 + j, RDPS_TP_OP_READ,
			       RDPS_TP_WC_SUCCESS, (long)total, what);
		g_plan(&c, reg, ks[j], e, roff);
		g_expect(&c, e, roff, ks[j], shadow, 1, what);
	}

	/* Post order with the endpoint's other operations. */
	g_plan(&c, reg, 5, e, roff);
	memset(c.buf, G_BYTE, G_LOCAL);
	ret = rdps_tp_get_gather(c.ep, e, 5, c.mr, 401, 0);
	CHECK(ret == 0, "gather before a get: post returned %d", ret);
	ret = rdps_tp_get(c.ep, c.buf, 64, c.mr, c.rk[reg[0]].addr,
			  &c.rk[reg[0]], 402, 0);
	CHECK(ret == 0, "get after a gather: post returned %d", ret);
	tc_wait_comps(c.tp, comp, 2, TC_COMP_MS, "a gather, then a get");
	CHECK(comp[0].wr_id == 401 && comp[1].wr_id == 402,
	      "completions out of post order: %" PRIu64 ", %" PRIu64,
	      comp[0].wr_id, comp[1].wr_id);

	/* The generic fallback, for transports with no native gather:
	 * one completion, its len the last range's. */
	g_plan(&c, reg, 9, e, roff);
	memset(c.buf, G_BYTE, G_LOCAL);
	ret = rdps_tp_get_gather_fallback(c.ep, e, 9, c.mr, 403, 0);
	CHECK(ret == 0, "fallback: post returned %d", ret);
	tc_wait_comps(c.tp, comp, 1, TC_COMP_MS, "fallback gather");
	tc_expect_comp(comp, 403, RDPS_TP_OP_READ, RDPS_TP_WC_SUCCESS,
		       (long)e[8].len, "fallback gather");
	g_expect(&c, e, roff, 9, shadow, 1, "fallback gather");
	CHECK(g_count_more(c.tp, 403, 100) == 0,
	      "fallback gather completed more than once");

	conn_close(&c);
	tgt_stop(&t);
}

void t_gather_bad(void **state)
{
	static uint8_t shadow[2][G_REGION];
	static struct rdps_tp_gather_ent e[RDPS_TP_GATHER_MAX + 1];
	static uint64_t roff[RDPS_TP_GATHER_MAX + 1];
	enum { B_PAST_END, B_BEFORE, B_NO_READ, B_UNKNOWN_KEY, B_LOCAL };
	static const struct {
		const char *what;
		int expect;
	} bad[] = {
		[B_PAST_END] = {"a range ending past its region",
				RDPS_TP_WC_REM_ACCESS_ERR},
		[B_BEFORE] = {"a range starting before its region",
			      RDPS_TP_WC_REM_ACCESS_ERR},
		[B_NO_READ] = {"a range of a region without remote read",
			       RDPS_TP_WC_REM_ACCESS_ERR},
		[B_UNKNOWN_KEY] = {"a range with an unknown key",
				   RDPS_TP_WC_REM_ACCESS_ERR},
		[B_LOCAL] = {"a local place outside the registration",
			     RDPS_TP_WC_LOC_PROT_ERR},
	};
	struct rdps_tp_comp comp;
	struct rdps_tp_rkey odd;
	struct conn c;
	struct tgt t;
	int reg[3], ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	tgt_start(&t, NULL);
	reg[0] = tgt_alloc(&t, G_REGION, RDPS_TP_ACCESS_REMOTE_READ, 0x6b71);
	reg[1] = tgt_alloc(&t, G_REGION, RDPS_TP_ACCESS_REMOTE_READ, 0x6b72);
	reg[2] = tgt_alloc(&t, G_REGION, RDPS_TP_ACCESS_REMOTE_WRITE, 0x6b73);
	th_fill(shadow[0], G_REGION, 0x6b71, 0);
	th_fill(shadow[1], G_REGION, 0x6b72, 0);
	tgt_listen(&t);
	conn_open_tp(&c, NULL, G_LOCAL);
	conn_connect(&c, &t);

	/* Limits: refused at post time, nothing posted. */
	g_plan(&c, reg, RDPS_TP_GATHER_MAX, e, roff);
	e[RDPS_TP_GATHER_MAX] = e[0];
	ret = rdps_tp_get_gather(c.ep, e, 0, c.mr, 500, 0);
	CHECK(ret == -EINVAL && *rdps_errmsg(), "k = 0: returned %d", ret);
	ret = rdps_tp_get_gather(c.ep, e, RDPS_TP_GATHER_MAX + 1, c.mr, 501, 0);
	CHECK(ret == -EINVAL && strstr(rdps_errmsg(), "ranges"),
	      "k over RDPS_TP_GATHER_MAX: returned %d (%s)", ret,
	      rdps_errmsg());
	e[1].len = 0;
	ret = rdps_tp_get_gather(c.ep, e, 3, c.mr, 502, 0);
	CHECK(ret == -EINVAL && strstr(rdps_errmsg(), "length 0"),
	      "a range of 0 bytes: returned %d (%s)", ret, rdps_errmsg());
	e[0].len = e[1].len = RDPS_TP_GATHER_MAX_BYTES / 2;
	e[2].len = 1;
	e[0].lbuf = e[1].lbuf = e[2].lbuf = c.buf;
	ret = rdps_tp_get_gather(c.ep, e, 3, c.mr, 503, 0);
	CHECK(ret == -EINVAL && strstr(rdps_errmsg(), "byte limit"),
	      "a gather over RDPS_TP_GATHER_MAX_BYTES: returned %d (%s)", ret,
	      rdps_errmsg());
	CHECK(g_count_more(c.tp, 0, 100) == 0,
	      "a gather refused at post time completed");

	for (size_t b = 0; b < sizeof(bad) / sizeof(*bad); b++) {
		const unsigned k = 6, at = 3;

		/* A fresh connection per case: on verbs a failed READ puts
		 * the queue pair in error. */
		if (!c.ep)
			conn_connect(&c, &t);
		g_plan(&c, reg, k, e, roff);
		switch (b) {
		case B_PAST_END:
			e[at].raddr = c.rk[reg[1]].addr + G_REGION - 8;
			e[at].len = 9;
			break;
		case B_BEFORE:
			e[at].raddr = c.rk[reg[1]].addr - 1;
			break;
		case B_NO_READ:
			e[at].rkey = &c.rk[reg[2]];
			e[at].raddr = c.rk[reg[2]].addr;
			break;
		case B_UNKNOWN_KEY:
			odd = c.rk[reg[1]];
			odd.key ^= 0x5a5a0000u;
			e[at].rkey = &odd;
			break;
		default:
			e[at].lbuf = c.buf + G_LOCAL - 4;
			e[at].len = 8;
			break;
		}
		memset(c.buf, G_BYTE, G_LOCAL);
		ret = rdps_tp_get_gather(c.ep, e, k, c.mr, 600 + b, 0);
		CHECK(ret == 0,
		      "%s: post returned %d; the contract wants 0 and one "
		      "error completion",
		      bad[b].what, ret);
		tc_wait_comps(c.tp, &comp, 1, TC_COMP_MS, bad[b].what);
		tc_expect_comp(&comp, 600 + b, RDPS_TP_OP_READ, bad[b].expect,
			       -1, bad[b].what);
		CHECK(g_count_more(c.tp, 600 + b, 200) == 0,
		      "%s: the gather completed more than once", bad[b].what);
		if (!tc_is_scheme("verbs"))
			g_expect(&c, e, roff, k, shadow, 0, bad[b].what);
		rdps_tp_ep_close(c.ep);
		c.ep = NULL;
		tgt_expect_region(&t, reg[0], shadow[0], G_REGION, bad[b].what);
		tgt_expect_region(&t, reg[1], shadow[1], G_REGION, bad[b].what);
	}
	conn_close(&c);
	tgt_stop(&t);
}
