/* SPDX-License-Identifier: MIT */
/*
 * loss.c - lost and departed workers: a wait that one of them can never
 * end fails with its name, or, on_worker_loss continue, is made up for.
 */
#include "worker.h"

/* The error for a wait that a lost worker can never end, from shard s's
 * header h; 0 while the shard has lost nobody. */
int wrk_lost_error(const struct rdps_ctx *ctx, unsigned s,
		   const struct ps_dir_hdr *h, const char *what)
{
	uint32_t n = rdps_be32toh(h->dead_count_be);

	if (!n)
		return 0;
	return rdps_set_error(-EPIPE,
			      "%s cannot complete: worker %u is gone%s (shard "
			      "%u lost its connection or its pulse: the "
			      "process exited, died or stopped); restart the "
			      "job%s",
			      what, rdps_be32toh(h->dead_first_be),
			      n > 1 ? ", and others" : "", s,
			      rdps_model_in_order(ctx->model)
				      ? " (rdps-launch --resume continues "
					"from the last checkpoint)"
				      : "");
}

/*
 * Read shard 0's gone map and the workers' own words of round rd's kind
 * into the bounce buffer: *map_out (big-endian words), *words_out.
 */
static int wrk_read_gone(struct rdps_ctx *ctx, const struct wrk_round *rd,
			 uint64_t deadline, uint64_t **map_out,
			 uint64_t **words_out)
{
	struct wrk_shard *sh = &ctx->sh[0];
	size_t map_len = (ctx->workers + 63) / 64 * 8;
	struct wrk_grp g = {0, 0, 0};
	int ret;

	ret = wrk_bounce(ctx, map_len + 8ull * ctx->workers);
	if (ret)
		return ret;
	*map_out = ctx->bounce;
	*words_out = (uint64_t *)((char *)ctx->bounce + map_len);
	if (sh->err)
		return wrk_dead(ctx, sh);
	WRK_POST(ret, ctx, deadline, map_len,
		 rdps_tp_get(sh->ep, *map_out, map_len, ctx->bounce_mr,
			     sh->dir_key.addr +
				     offsetof(struct ps_dir, gone_map_be),
			     &sh->dir_key, (uintptr_t)&g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a gone-map read");
	g.left++;
	WRK_POST(ret, ctx, deadline, 8ull * ctx->workers,
		 rdps_tp_get(sh->ep, *words_out, 8ull * ctx->workers,
			     ctx->bounce_mr, sh->clock_key.addr + rd->words_off,
			     &sh->clock_key, (uintptr_t)&g, 0));
	if (ret) {
		wrk_grp_wait(ctx, &g, deadline, "a gone-map read");
		return wrk_post_fail(ctx, sh, ret, "a clock-word read");
	}
	g.left++;
	return wrk_grp_wait(ctx, &g, deadline, "the gone workers' words");
}

/*
 * Default (fail) mode, shard 0 has gone workers but lost none: one that
 * left (rdps_ctx_destroy) before round rd, its words show, ends the wait
 * with its name. 0 while none did.
 */
static int wrk_left_error(struct rdps_ctx *ctx, const struct wrk_round *rd,
			  uint64_t deadline)
{
	uint64_t *map, *words;
	int ret = wrk_read_gone(ctx, rd, deadline, &map, &words);

	if (ret)
		return ret;
	for (unsigned w = 0; w < ctx->workers; w++) {
		if (!ps_gone_bit(map, w) || words[w] >= rd->need)
			continue;
		return rdps_set_error(
			-EPIPE,
			"%s cannot complete: worker %u left the job "
			"(rdps_ctx_destroy) after %llu %s; see its own output "
			"for why",
			rd->what, w, (unsigned long long)words[w],
			rd->barrier ? "barriers" : "clocks");
	}
	return 0;
}

/*
 * on_worker_loss continue, shard 0 has gone workers: once every worker is
 * gone or counted in round rd (wrk_read_gone), raise the counter from
 * seen to the goal with one compare-swap (a failed swap means it moved:
 * the caller reads again). 0 either way, or an error.
 */
static int wrk_makeup(struct rdps_ctx *ctx, const struct wrk_round *rd,
		      uint64_t seen, uint64_t deadline)
{
	uint64_t *res = ctx->small, *map, *words;
	int ret, who;

	if (seen >= rd->goal)
		return 0;
	ret = wrk_read_gone(ctx, rd, deadline, &map, &words);
	if (ret)
		return ret;
	who = ps_makeup_wait(map, words, ctx->workers, rd->need);
	if (who >= 0)
		return 0; /* a live worker is still on its way */
	/* The flat counter on shard 0: the tree is not used in this mode. */
	ret = wrk_clock_swap(ctx, rd->off, seen, rd->goal, &res[WRK_MAKEUP],
			     deadline, "a make-up swap");
	if (ret)
		return ret;
	if (res[WRK_MAKEUP] == seen) {
		if (!ctx->st.made_up)
			rdps_warn("worker %u: going on without the lost "
				  "worker(s) (on_worker_loss continue): made "
				  "up their arrival at %s %llu",
				  ctx->rank, rd->barrier ? "barrier" : "clock",
				  (unsigned long long)rd->no);
		ctx->st.made_up++;
	}
	return 0;
}

/*
 * While a wait on round rd drags on, ask shard 0 (every worker's peer)
 * whether it lost a worker the wait depends on: an error naming it, or,
 * on_worker_loss continue, make up for it. seen: the counter as last read.
 */
int wrk_lost_check(struct rdps_ctx *ctx, unsigned attempt, uint64_t deadline,
		   const struct wrk_round *rd, uint64_t seen)
{
	struct wrk_shard *sh = &ctx->sh[0];
	struct ps_dir_hdr *h;
	int ret;

	if (attempt % 16 == 15) {
		ret = wrk_hdr_read(ctx, sh, deadline, &h);
		if (ret)
			return ret;
		ret = wrk_hb_check(ctx, sh, h);
		if (ret)
			return ret;
		ctx->gone_seen = rdps_be32toh(h->gone_count_be);
		if (ctx->on_loss != RDPS_LOSS_CONTINUE) {
			ret = wrk_lost_error(ctx, 0, h, rd->what);
			if (ret || !ctx->gone_seen)
				return ret;
			return wrk_left_error(ctx, rd, deadline);
		}
	}
	/* Once a worker is gone for good, any round may need making up:
	 * no need to look at the header first. */
	if (ctx->on_loss == RDPS_LOSS_CONTINUE && ctx->gone_seen)
		return wrk_makeup(ctx, rd, seen, deadline);
	return 0;
}
