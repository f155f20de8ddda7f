/* SPDX-License-Identifier: MIT */
/*
 * clock.c - clocks and barriers: fetch-adds and reads on shard 0's clock
 * table (rdps_clock, rdps_barrier); under BSP and A-BSP, an END per shard.
 */
#include "worker.h"

/* Post one 8-byte operation on the clock table of shard 0 at off into g:
 * fetch-add of add, or a read when add is 0. The result lands in *res (in
 * the small buffer). */
int wrk_clock_post(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t off,
		   uint64_t add, uint64_t *res, uint64_t deadline,
		   const char *what)
{
	struct wrk_shard *sh = &ctx->sh[0];
	int ret;

	if (sh->err)
		return wrk_dead(ctx, sh);
	if (add)
		WRK_POST(ret, ctx, deadline,
			 rdps_tp_atomic_fadd(sh->ep, add, res, ctx->small_mr,
					     sh->clock_key.addr + off,
					     &sh->clock_key, (uintptr_t)g, 0));
	else
		WRK_POST(ret, ctx, deadline,
			 rdps_tp_get(sh->ep, res, 8, ctx->small_mr,
				     sh->clock_key.addr + off, &sh->clock_key,
				     (uintptr_t)g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, what);
	g->left++;
	return 0;
}

/* One 8-byte operation on the clock table, waited for. */
static int wrk_clock_op(struct rdps_ctx *ctx, uint64_t off, int add,
			uint64_t *res, uint64_t deadline, const char *what)
{
	struct wrk_grp g = {0, 0, 0};
	int ret = wrk_clock_post(ctx, &g, off, add, res, deadline, what);

	return ret ? ret : wrk_grp_wait(ctx, &g, deadline, what);
}

/*
 * One tick is one round trip. Under SSP and ASP it is the fetch-add on
 * clock t and (SSP) the read of clock t-s's counter, posted together: a
 * push is applied before its credit returns, so the counters alone prove
 * which updates are in, and the shards need no word from the worker.
 * Under BSP and A-BSP the shards apply a clock's deltas together, in
 * worker order, and learn that this worker finished clock t from an
 * END(t), posted beside the fetch-add.
 *
 * The worker need not see its ENDs land before its fetch-add: a shard
 * applies no BSP push ahead of its applied_clock (so a faster worker's
 * next push waits for our END), and a pull checks each shard's
 * applied_clock before it trusts what it read. The counters are
 * monotonic, so a slack read that races the fetch-adds of others can only
 * be too old, and is then read again.
 */
int rdps_clock(struct rdps_ctx *ctx)
{
	uint64_t *res, deadline, t0, c, t = ctx ? ctx->clock : 0;
	struct wrk_grp g = {0, 0, 0};
	struct wrk_round rd;
	unsigned attempt = 0;
	int ret, check, ends, lost = 0, read_posted = 0, waited = 0;

	if (!ctx)
		return rdps_set_error(-EINVAL, "rdps_clock: null context");
	t0 = rdps_now_ns();
	deadline = t0 + ctx->timeout_ns;
	res = ctx->small;
	check = ctx->model != RDPS_MODEL_ASP && t >= ctx->slack;
	c = check ? t - ctx->slack : 0;
	ends = rdps_model_in_order(ctx->model);
	for (unsigned s = 0; ends && s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		if (sh->err) {
			ret = wrk_dead(ctx, sh);
			goto drain;
		}
		WRK_POST(ret, ctx, deadline,
			 rdps_tp_put_imm(sh->ep, NULL, 0, ctx->small_mr, 0,
					 NULL, PS_IMM(PS_END, t & PS_ARG_MASK),
					 (uintptr_t)&g, 0));
		if (ret) {
			ret = wrk_post_fail(ctx, sh, ret, "a clock end");
			goto drain;
		}
		g.left++;
	}
	ret = wrk_clock_post(ctx, &g, (t % ctx->k) * 8, 1, &res[WRK_FADD],
			     deadline, "the clock fetch-add");
	if (ret)
		goto drain;
	/* After it, on the same endpoint: wclock > t proves our arrival.
	 * (ASP never waits on a clock, so never makes one up.) */
	if (ctx->on_loss == RDPS_LOSS_CONTINUE &&
	    ctx->model == RDPS_MODEL_SSP) {
		ret = wrk_clock_post(ctx, &g, ps_wclock_off(ctx->rank), 1,
				     &res[WRK_OWN], deadline,
				     "the clock-word fetch-add");
		if (ret)
			goto drain;
	}
	/* Under BSP (c == t) the fetch-add itself says whether we were last;
	 * a read posted beside it could only see the count before it. */
	if (check && c != t) {
		ret = wrk_clock_post(ctx, &g, (c % ctx->k) * 8, 0,
				     &res[WRK_SLACK], deadline, "a clock read");
		if (ret)
			goto drain;
		read_posted = 1;
	}
	/* One plain poll first (shm completes at post): the time of a tick
	 * that never blocks is not worth two clock readings. */
	if (g.left) {
		ret = wrk_progress(ctx, deadline, 0);
		if (ret < 0)
			goto drain;
	}
	waited = g.left > 0;
	ret = wrk_grp_wait(ctx, &g, deadline, "the clock's end and fetch-add");
	if (ret)
		goto out;
	if (ps_clock_last(res[WRK_FADD], t, ctx->k, ctx->workers))
		ctx->last_arrivals++;
	ctx->clock = t + 1;
	ctx->st.clocks++;
	if (!check)
		goto out;
	if (c == t && ps_clock_last(res[WRK_FADD], t, ctx->k, ctx->workers))
		goto out;
	rd = (struct wrk_round){(c % ctx->k) * 8,
				(uint64_t)ctx->workers * (c / ctx->k + 1),
				ps_wclock_off(0),
				c + 1,
				"this clock",
				c,
				0};
	for (;;) {
		if (read_posted &&
		    ps_clock_done(res[WRK_SLACK], c, ctx->k, ctx->workers))
			break;
		waited = 1;
		if (read_posted) {
			if (rdps_now_ns() >= deadline) {
				ret = rdps_set_error(
					-ETIMEDOUT,
					"timed out after %llu ms waiting for "
					"all %u workers to finish clock %llu",
					(unsigned long long)(ctx->timeout_ns /
							     1000000),
					ctx->workers, (unsigned long long)c);
				goto out;
			}
			wrk_backoff(ctx, attempt++);
			lost = wrk_lost_check(ctx, attempt, deadline, &rd,
					      res[WRK_SLACK]);
		}
		ret = wrk_clock_op(ctx, (c % ctx->k) * 8, 0, &res[WRK_SLACK],
				   deadline, "a clock read");
		if (ret)
			goto out;
		read_posted = 1;
		/* A worker that arrived and then left is no reason to fail:
		 * the read after learning of it decides. */
		if (lost &&
		    !ps_clock_done(res[WRK_SLACK], c, ctx->k, ctx->workers)) {
			ret = lost;
			goto out;
		}
	}
	ret = 0;
	goto out;
drain:
	/* Operations already posted point at g. */
	if (g.left)
		wrk_grp_wait(ctx, &g, deadline, "the clock's ends");
out:
	if (waited || ret)
		ctx->st.clock_wait_ns += rdps_now_ns() - t0;
	return ret;
}

int rdps_barrier(struct rdps_ctx *ctx)
{
	uint64_t *res, deadline, goal;
	uint64_t off = offsetof(struct ps_clock_table, barrier);
	struct wrk_grp g = {0, 0, 0};
	struct wrk_round rd;
	unsigned attempt = 0;
	int ret, lost;

	if (!ctx)
		return rdps_set_error(-EINVAL, "rdps_barrier: null context");
	deadline = wrk_deadline(ctx);
	res = ctx->small;
	ret = wrk_clock_post(ctx, &g, off, 1, &res[WRK_BARRIER], deadline,
			     "the barrier fetch-add");
	if (!ret && ctx->on_loss == RDPS_LOSS_CONTINUE)
		ret = wrk_clock_post(
			ctx, &g, ps_wbar_off(ctx->workers, ctx->rank), 1,
			&res[WRK_OWN], deadline, "the barrier-word fetch-add");
	if (g.left) {
		int wret = wrk_grp_wait(ctx, &g, deadline,
					"the barrier fetch-add");

		if (!ret)
			ret = wret;
	}
	if (ret)
		return ret;
	ctx->barriers++;
	goal = (uint64_t)ctx->workers * ctx->barriers;
	if (res[WRK_BARRIER] + 1 >= goal)
		return 0;
	rd = (struct wrk_round){off,
				goal,
				ps_wbar_off(ctx->workers, 0),
				ctx->barriers,
				"the barrier",
				ctx->barriers,
				1};
	for (;;) {
		wrk_backoff(ctx, attempt++);
		lost = wrk_lost_check(ctx, attempt, deadline, &rd,
				      res[WRK_BARRIER]);
		ret = wrk_clock_op(ctx, off, 0, &res[WRK_BARRIER], deadline,
				   "a barrier read");
		if (ret)
			return ret;
		if (lost && res[WRK_BARRIER] < goal)
			return lost;
		if (res[WRK_BARRIER] >= goal)
			break;
		if (rdps_now_ns() >= deadline)
			return rdps_set_error(
				-ETIMEDOUT,
				"timed out after %llu ms in "
				"barrier %llu: not every worker "
				"arrived",
				(unsigned long long)(ctx->timeout_ns / 1000000),
				(unsigned long long)ctx->barriers);
	}
	return 0;
}
