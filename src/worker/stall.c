/* SPDX-License-Identifier: MIT */
/*
 * stall.c - when a wait on the other workers (a clock's slack, a barrier)
 * times out: only once the whole job stood still for a timeout.
 *
 * Why not a plain deadline: under ASP a worker 3 times slower than the
 * others ends tens of seconds after they reach their final barrier, and
 * a slow but live straggler must not fail the job. A dead or stopped one
 * is found by its pulse (wrk_lost_check), not by the clock. Workers all
 * stuck in waits that can never end (a program that skips a barrier) still
 * time out, as nobody moves.
 *
 * Moving is a clock tick or a barrier arrival anywhere in the job: the sum
 * of shard 0's arrive[] and barrier counters, which only grow (the make-up
 * of a lost worker raises them too). It is read once when the wait drags
 * on (WRK_STALL_FROM re-reads, about a millisecond: a wait that short
 * costs nothing more) and again at each deadline; a sum that moved gives
 * the wait a new deadline.
 */
#include "worker.h"

#define WRK_STALL_FROM 16

static int wrk_stall_read(struct rdps_ctx *ctx, uint64_t deadline,
			  uint64_t *sum_out)
{
	size_t len = offsetof(struct ps_clock_table, cut); /* arrive, barrier */
	struct wrk_shard *sh = &ctx->sh[0];
	struct wrk_grp g = {0, 0, 0};
	uint64_t sum = 0;
	int ret = wrk_bounce(ctx, len);

	if (ret)
		return ret;
	if (sh->err)
		return wrk_dead(ctx, sh);
	WRK_POST(ret, ctx, deadline, len,
		 rdps_tp_get(sh->ep, ctx->bounce, len, ctx->bounce_mr,
			     sh->clock_key.addr, &sh->clock_key, (uintptr_t)&g,
			     0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a clock-table read");
	g.left = 1;
	ret = wrk_grp_wait(ctx, &g, deadline, "a clock-table read");
	if (ret)
		return ret;
	for (size_t i = 0; i < len / 8; i++)
		sum += ((const uint64_t *)ctx->bounce)[i];
	*sum_out = sum;
	return 0;
}

int wrk_stall_check(struct rdps_ctx *ctx, struct wrk_stall *st,
		    unsigned attempt, uint64_t *deadline)
{
	int due = rdps_now_ns() >= *deadline, ret;
	uint64_t sum = 0;

	if (!due && (st->have || attempt < WRK_STALL_FROM))
		return 0;
	ret = wrk_stall_read(ctx, *deadline, &sum);
	if (ret)
		return ret;
	if (due && st->have && sum == st->sum)
		return 1;
	/* A deadline that came before the first reading (a timeout of a
	 * millisecond) gets one more period to compare against. */
	if (due)
		*deadline = rdps_now_ns() + ctx->timeout_ns;
	st->sum = sum;
	st->have = 1;
	return 0;
}
