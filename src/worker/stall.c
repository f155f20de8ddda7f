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
 * of shard 0's arrive[] and barrier counters, or under the clock tree of
 * every group's, which only grow (the make-up of a lost worker raises
 * them too). It is read once when the wait drags
 * on (WRK_STALL_FROM re-reads, about a millisecond: a wait that short
 * costs nothing more) and again at each deadline; a sum that moved gives
 * the wait a new deadline.
 */
#include "worker.h"

#define WRK_STALL_FROM 16

/* Post a READ of len bytes at off of shard s's clock region into the
 * bounce buffer at at. */
static int wrk_stall_post(struct rdps_ctx *ctx, struct wrk_grp *g, unsigned s,
			  uint64_t off, size_t len, size_t at,
			  uint64_t deadline)
{
	struct wrk_shard *sh = &ctx->sh[s];

	return wrk_grp_get(ctx, sh, g, (char *)ctx->bounce + at, ctx->bounce_mr,
			   len, sh->clock_key.addr + off, &sh->clock_key,
			   deadline, "a clock-table read");
}

/* The sum of every arrival and barrier counter of the job: shard 0's
 * flat table, or under the clock tree every group's node (the root only
 * moves when a whole group does), all read at once. */
static int wrk_stall_read(struct rdps_ctx *ctx, uint64_t deadline,
			  uint64_t *sum_out)
{
	size_t flat =
		offsetof(struct ps_clock_table, cut); /* arrive, barrier */
	size_t node = offsetof(struct ps_clock_node, release);
	unsigned n = ctx->fanin > 1 ? ctx->groups : 0;
	size_t len = n ? (size_t)n * node : flat;
	struct wrk_grp g = {0, 0, 0};
	uint64_t sum = 0;
	int ret = wrk_bounce(ctx, len);

	if (ret)
		return ret;
	if (!n)
		ret = wrk_stall_post(ctx, &g, 0, 0, flat, 0, deadline);
	for (unsigned grp = 0; !ret && grp < n; grp++)
		ret = wrk_stall_post(
			ctx, &g, ps_tree_shard(grp, ctx->nshards),
			ps_clock_node_off(ctx->workers,
					  ps_tree_node(grp, ctx->nshards)),
			node, (size_t)grp * node, deadline);
	if (ret)
		return ret;
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
