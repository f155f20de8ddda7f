/* SPDX-License-Identifier: MIT */
/*
 * cut.c - A-BSP cuts: a compare-swap on the cut word of shard 0's clock
 * table (rdps_cut), and its non-blocking read (rdps_cut_poll).
 */
#include "worker.h"

static int wrk_absp_only(const struct rdps_ctx *ctx, const char *fn)
{
	if (!ctx)
		return rdps_set_error(-EINVAL, "%s: null context", fn);
	if (ctx->model != RDPS_MODEL_ABSP)
		return rdps_set_error(-EINVAL,
				      "%s: the job runs model %s; cuts exist "
				      "only under absp",
				      fn, rdps_model_name(ctx->model));
	return 0;
}

/* Take in a finished cut read; report its failure once. */
static int wrk_cut_reap(struct rdps_ctx *ctx)
{
	uint64_t *res = ctx->small;
	struct wrk_grp *g = &ctx->cut_grp;
	int st;

	if (g->left)
		return 0;
	st = g->status;
	g->status = 0;
	if (st) {
		struct wrk_shard *sh = &ctx->sh[0];

		if (st == RDPS_TP_WC_CONN_ERR || st == RDPS_TP_WC_FLUSH_ERR) {
			sh->err = -ECONNRESET;
			return wrk_dead(ctx, sh);
		}
		return rdps_set_error(-EPROTO,
				      "reading the cut word on shard 0 (%s) "
				      "failed: %s",
				      sh->url, rdps_tp_status_str(st));
	}
	if (res[WRK_CUT_READ] > ctx->cut_seen)
		ctx->cut_seen = res[WRK_CUT_READ];
	return 0;
}

int rdps_cut(struct rdps_ctx *ctx)
{
	uint64_t *res, deadline, expect;
	int ret = wrk_absp_only(ctx, "rdps_cut");

	if (ret)
		return ret;
	res = ctx->small;
	deadline = wrk_deadline(ctx);
	/* Round c is cut once the word is above c; it only grows. */
	expect = ctx->cut_seen < ctx->clock ? ctx->cut_seen : ctx->clock;
	for (;;) {
		if (expect > ctx->clock) {
			ctx->cut_seen = expect;
			return 0;
		}
		ret = wrk_clock_swap(ctx, offsetof(struct ps_clock_table, cut),
				     expect, ctx->clock + 1, &res[WRK_CUT_SWAP],
				     deadline, "the cut");
		if (ret)
			return ret;
		if (res[WRK_CUT_SWAP] == expect) {
			ctx->cut_seen = ctx->clock + 1;
			ctx->st.cuts++;
			return 1;
		}
		expect = res[WRK_CUT_SWAP];
	}
}

int rdps_cut_poll(struct rdps_ctx *ctx)
{
	struct wrk_shard *sh;
	int ret = wrk_absp_only(ctx, "rdps_cut_poll");

	if (ret)
		return ret;
	if (ctx->broken) /* its read below goes out without WRK_POST */
		return wrk_broken_err(ctx);
	sh = &ctx->sh[0];
	if (ctx->cut_grp.left) {
		ret = wrk_progress(ctx, 0, 0);
		if (ret < 0)
			return ret;
	}
	if (ctx->cut_seen > ctx->clock)
		return 1;
	if (ctx->cut_grp.left)
		return 0;
	ret = wrk_cut_reap(ctx);
	if (ret)
		return ret;
	if (ctx->cut_seen > ctx->clock)
		return 1;
	if (sh->err)
		return wrk_dead(ctx, sh);
	/* Post the next read; a full queue just means: not now. */
	ret = rdps_tp_get(sh->ep, &((uint64_t *)ctx->small)[WRK_CUT_READ], 8,
			  ctx->small_mr,
			  sh->clock_key.addr +
				  offsetof(struct ps_clock_table, cut),
			  &sh->clock_key, (uintptr_t)&ctx->cut_grp, 0);
	if (ret == -EAGAIN)
		return 0;
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a cut read");
	wrk_count_op(ctx, 8);
	ctx->cut_grp.left = 1;
	/* shm completes at post: take it in now. */
	ret = wrk_progress(ctx, 0, 0);
	if (ret < 0)
		return ret;
	if (!ctx->cut_grp.left) {
		ret = wrk_cut_reap(ctx);
		if (ret)
			return ret;
	}
	return ctx->cut_seen > ctx->clock;
}
