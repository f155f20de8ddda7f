/* SPDX-License-Identifier: MIT */
/*
 * live.c - shard liveness: a stopped or hung shard is found by its
 * heartbeat in its directory header, read on its own landing spot.
 */
#include "worker.h"

int wrk_hb_check(struct rdps_ctx *ctx, struct wrk_shard *sh,
		 const struct ps_dir_hdr *h)
{
	uint64_t hb = h->heartbeat, now = rdps_now_ns();
	uint64_t ms = rdps_be32toh(h->heartbeat_ms_be);

	(void)ctx;
	if (!sh->hb_since || hb != sh->hb_seen) {
		sh->hb_seen = hb;
		sh->hb_since = now;
		return 0;
	}
	if (!ms || now - sh->hb_since <= 2 * ms * 1000000ull)
		return 0;
	return rdps_set_error(
		-EHOSTDOWN,
		"shard %u (%s) shows no heartbeat for %llu ms "
		"(two intervals are %llu ms): it is stopped or "
		"hung; check the rdps-server process",
		sh->idx, sh->url,
		(unsigned long long)((now - sh->hb_since) / 1000000),
		(unsigned long long)(2 * ms));
}

/* Wait for sh's header read in flight (sh->hdr_grp): the read left
 * unanswered for two heartbeats since its post means a stopped shard. */
static int wrk_hdr_wait(struct rdps_ctx *ctx, struct wrk_shard *sh,
			uint64_t deadline)
{
	struct wrk_grp *g = &sh->hdr_grp;
	uint64_t by = sh->hb_ms ? sh->hdr_posted + 2ull * sh->hb_ms * 1000000ull
				: deadline;
	int ret;

	while (g->left > 0) {
		ret = wrk_progress(ctx, by < deadline ? by : deadline, 1);
		if (ret == -ETIMEDOUT && by < deadline)
			return rdps_set_error(
				-EHOSTDOWN,
				"shard %u (%s) left a directory read "
				"unanswered for %llu ms (two heartbeats): it "
				"is stopped or hung; check the rdps-server "
				"process",
				sh->idx, sh->url,
				(unsigned long long)((rdps_now_ns() -
						      sh->hdr_posted) /
						     1000000));
		if (ret == -ETIMEDOUT)
			return wrk_timeout(ctx, "a directory read");
		if (ret < 0)
			return ret;
	}
	return 0;
}

int wrk_hdr_read(struct rdps_ctx *ctx, struct wrk_shard *sh, uint64_t deadline,
		 struct ps_dir_hdr **h_out)
{
	struct ps_dir_hdr *h = wrk_probe_hdr(ctx, sh->idx);
	struct wrk_grp *g = &sh->hdr_grp;
	int ret;

	if (sh->err)
		return wrk_dead(ctx, sh);
	/* A read still posted by an earlier call is waited for, not
	 * posted again. */
	if (!g->left) {
		*g = (struct wrk_grp){0, 0, sh->idx};
		WRK_POST(ret, ctx, deadline, sizeof(*h),
			 rdps_tp_get(sh->ep, h, sizeof(*h), ctx->small_mr,
				     sh->dir_key.addr, &sh->dir_key,
				     (uintptr_t)g, 0));
		if (ret)
			return wrk_post_fail(ctx, sh, ret, "a directory read");
		g->left = 1;
		sh->hdr_posted = rdps_now_ns();
	}
	ret = wrk_hdr_wait(ctx, sh, deadline);
	if (ret)
		return ret;
	*h_out = h;
	/* Done: this only looks at its status. */
	return wrk_grp_wait(ctx, g, deadline, "a directory read");
}

int wrk_hb_probe(struct rdps_ctx *ctx, struct wrk_shard *sh, uint64_t deadline)
{
	struct ps_dir_hdr *h;
	int ret = wrk_hdr_read(ctx, sh, deadline, &h);

	return ret ? ret : wrk_hb_check(ctx, sh, h);
}

int wrk_probe_all(struct rdps_ctx *ctx, uint64_t deadline)
{
	for (unsigned s = 0; s < ctx->nshards; s++) {
		int ret = wrk_hb_probe(ctx, &ctx->sh[s], deadline);

		if (ret)
			return ret;
	}
	return 0;
}
