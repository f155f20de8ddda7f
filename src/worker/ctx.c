/* SPDX-License-Identifier: MIT */
/*
 * ctx.c - a worker's context: the configuration check, the connection
 * to every shard (hello, welcome, directory check), and its end (PS_BYE,
 * then the endpoints and memory); the clock and stats getters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "worker.h"

/* Prefix the current error explanation (set by a callee) with context. */
static int wrk_wrap(int ret, const char *fmt, ...) RDPS_PRINTF(2, 3);
static int wrk_wrap(int ret, const char *fmt, ...)
{
	char why[512], pre[256];
	va_list ap;

	snprintf(why, sizeof(why), "%s", rdps_errmsg());
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	if (!why[0])
		return rdps_set_error(ret, "%s: %s", pre, strerror(-ret));
	return rdps_set_error(ret, "%s: %s", pre, why);
}

/* The shard list: comma-separated urls of one transport. *nshards_out,
 * their number. */
static int wrk_check_shards(const char *shards, unsigned *nshards)
{
	struct rdps_url u0, u;
	const char *p, *comma;
	char url[512];
	unsigned n = 0;
	size_t len;
	int ret;

	for (p = shards;; p = comma + 1) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (!len || len >= sizeof(url))
			return rdps_set_error(-EINVAL,
					      "bad shard list '%s': shard %u's "
					      "url is %s",
					      shards, n,
					      len ? "too long" : "empty");
		memcpy(url, p, len);
		url[len] = '\0';
		ret = rdps_url_parse(url, 0, n ? &u : &u0);
		if (ret)
			return wrk_wrap(ret, "bad shard %u in the shard list",
					n);
		if (n && strcmp(u.scheme, u0.scheme))
			return rdps_set_error(-EINVAL,
					      "shard %u's url '%s' uses scheme "
					      "'%s' but shard 0 uses '%s': all "
					      "shards must share one transport",
					      n, url, u.scheme, u0.scheme);
		n++;
		if (!comma)
			break;
	}
	if (n > 0xffff)
		return rdps_set_error(-EINVAL, "too many shards (%u)", n);
	*nshards = n;
	return 0;
}

static int wrk_check_cfg(const struct rdps_config *cfg, unsigned *nshards)
{
	if (!cfg->shards || !*cfg->shards)
		return rdps_set_error(-EINVAL,
				      "no shards given: set shards (or "
				      "RDPS_SHARDS) to the shard urls, "
				      "comma-separated");
	if (cfg->workers < 1)
		return rdps_set_error(-EINVAL,
				      "bad worker count %d: need at least 1",
				      cfg->workers);
	if (cfg->workers > 0xffff)
		return rdps_set_error(-EINVAL,
				      "bad worker count %d: at most 65535",
				      cfg->workers);
	if (cfg->rank < 0 || cfg->rank >= cfg->workers)
		return rdps_set_error(-EINVAL,
				      "rank %d out of range: must be 0 .. %d",
				      cfg->rank, cfg->workers - 1);
	if ((unsigned)cfg->model >= RDPS_MODEL_COUNT)
		return rdps_set_error(-EINVAL, "unknown model %d",
				      (int)cfg->model);
	if (rdps_model_in_order(cfg->model) && cfg->slack)
		return rdps_set_error(-EINVAL,
				      "slack %u with model %s: it has slack "
				      "0 (use ssp for bounded slack)",
				      cfg->slack, rdps_model_name(cfg->model));
	if (cfg->slack > PS_CLOCK_K_MAX - 2)
		return rdps_set_error(-EINVAL,
				      "slack %u too large: at most %d (the "
				      "clock table has %d residues)",
				      cfg->slack, PS_CLOCK_K_MAX - 2,
				      PS_CLOCK_K_MAX);
	if ((unsigned)cfg->poll_mode > RDPS_POLL_EVENT)
		return rdps_set_error(-EINVAL,
				      "bad poll_mode %d: RDPS_POLL_BUSY, "
				      "RDPS_POLL_ADAPTIVE or RDPS_POLL_EVENT",
				      (int)cfg->poll_mode);
	if (cfg->timeout_ms < 0)
		return rdps_set_error(-EINVAL,
				      "bad timeout_ms %d: 0 (default) or more",
				      cfg->timeout_ms);
	if (cfg->on_worker_loss != RDPS_LOSS_FAIL &&
	    cfg->on_worker_loss != RDPS_LOSS_CONTINUE)
		return rdps_set_error(-EINVAL,
				      "bad on_worker_loss %d: 0 fail, 1 "
				      "continue",
				      (int)cfg->on_worker_loss);
	if (cfg->clock_fanin < 0 || cfg->clock_fanin > (int)PS_FANIN_MAX)
		return rdps_set_error(-EINVAL,
				      "bad clock_fanin %d: 0 (automatic), 1 "
				      "(one flat counter) or a group size of "
				      "2 .. %u",
				      cfg->clock_fanin, PS_FANIN_MAX);
	if (cfg->on_worker_loss == RDPS_LOSS_CONTINUE &&
	    rdps_model_in_order(cfg->model))
		return rdps_set_error(-EINVAL,
				      "on_worker_loss continue with model %s: "
				      "its results need every worker's "
				      "updates; use ssp or asp, or resume "
				      "from a checkpoint instead",
				      rdps_model_name(cfg->model));
	return wrk_check_shards(cfg->shards, nshards);
}

/* Pauses between connects to a shard that dropped us: from the first to
 * the longest, doubling. */
#define WRK_RETRY_FIRST_NS 5000000ull
#define WRK_RETRY_MAX_NS 500000000ull

/*
 * Connect to sh by the deadline. A shard that dropped our connection for
 * newer ones (-EBUSY: peers that never finish their handshake fill its
 * listener) or closed it before answering (-ECONNRESET) is tried again
 * after a pause that doubles, so a flood of idle connections delays a
 * worker rather than keeping it out; the error of the last try is the one
 * reported.
 */
static int wrk_connect_ep(struct rdps_ctx *ctx, struct wrk_shard *sh,
			  const struct ps_whello *wh, uint64_t deadline)
{
	uint64_t t0 = rdps_now_ns(), pause = WRK_RETRY_FIRST_NS;
	unsigned tries = 0;
	int ret;

	for (;;) {
		int ms = rdps_ms_left(deadline);
		struct timespec ts;

		ret = rdps_tp_connect(ctx->tp, sh->url, wh, sizeof(*wh),
				      &sh->ep, ms ? ms : 1);
		tries++;
		if (!ret || (ret != -EBUSY && ret != -ECONNRESET) ||
		    rdps_now_ns() + pause >= deadline)
			break;
		rdps_dbg("worker %u: shard %u: %s; trying again", ctx->rank,
			 sh->idx, rdps_errmsg());
		ts.tv_sec = (time_t)(pause / 1000000000ull);
		ts.tv_nsec = (long)(pause % 1000000000ull);
		nanosleep(&ts, NULL);
		pause = pause * 2 < WRK_RETRY_MAX_NS ? pause * 2
						     : WRK_RETRY_MAX_NS;
	}
	if (ret && tries > 1)
		return wrk_wrap(
			ret,
			"connecting to shard %u (gave up after %u "
			"tries in %llu ms)",
			sh->idx, tries,
			(unsigned long long)((rdps_now_ns() - t0) / 1000000));
	if (ret)
		return wrk_wrap(ret, "connecting to shard %u", sh->idx);
	if (tries > 1)
		rdps_info("worker %u: connected to shard %u at try %u",
			  ctx->rank, sh->idx, tries);
	return 0;
}

static int wrk_connect(struct rdps_ctx *ctx, struct wrk_shard *sh,
		       uint64_t deadline)
{
	struct ps_lhello_info lh;
	struct ps_whello wh;
	char why[200];
	int ret;

	memset(&wh, 0, sizeof(wh));
	wh.magic_be = rdps_htobe32(PS_MAGIC_WORKER);
	wh.rank_be = __builtin_bswap16((uint16_t)ctx->rank);
	wh.workers_be = __builtin_bswap16((uint16_t)ctx->workers);
	rdps_tp_rkey_pack(ctx->reply_mr, &wh.reply);
	ret = wrk_connect_ep(ctx, sh, &wh, deadline);
	if (ret)
		return ret;
	sh->ep->user = sh;
	ret = ps_lhello_parse(sh->ep->peer_priv, sh->ep->peer_priv_len, sh->idx,
			      ctx->nshards, &lh, why, sizeof(why));
	if (ret)
		return rdps_set_error(ret, "shard %u (%s) %s", sh->idx, sh->url,
				      why);
	ret = rdps_tp_rkey_unpack(sh->ep, &lh.dir, &sh->dir_key);
	if (ret)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) sent a malformed "
				      "directory key",
				      sh->idx, sh->url);
	return 0;
}

static int wrk_welcome(struct rdps_ctx *ctx, struct wrk_shard *sh)
{
	struct ps_welcome_info w;
	char why[200];
	int ret;

	if (sh->welcome_status) {
		int e = (int)sh->welcome_status;

		return rdps_set_error(
			-e,
			"shard %u (%s) refused this worker (rank %u of %u): "
			"%s (%s; the shard's log says why)",
			sh->idx, sh->url, ctx->rank, ctx->workers, strerror(e),
			e == EEXIST ? "another worker has this rank"
			: e == EINVAL
				? "the worker count or rank does not match "
				  "the shard's"
				: "see the shard");
	}
	ret = ps_welcome_parse((char *)ctx->reply +
				       sh->idx * sizeof(struct ps_welcome),
			       sizeof(struct ps_welcome), sh->idx, ctx->nshards,
			       ctx->workers, &w, why, sizeof(why));
	if (ret)
		return rdps_set_error(ret, "shard %u (%s) %s", sh->idx, sh->url,
				      why);
	sh->nslots = w.nslots;
	sh->slot_bytes = w.slot_bytes;
	ret = rdps_tp_rkey_unpack(sh->ep, &w.slots, &sh->slots_key);
	if (!ret)
		ret = rdps_tp_rkey_unpack(sh->ep, &w.clock, &sh->clock_key);
	if (ret)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) sent a malformed key in "
				      "its welcome",
				      sh->idx, sh->url);
	return 0;
}

/* Shard s's directory header h against this worker's job; takes in its
 * heartbeat period and (shard 0) the clock table's K. */
static int wrk_check_dir(struct rdps_ctx *ctx, unsigned s,
			 const struct ps_dir_hdr *h)
{
	struct wrk_shard *sh = &ctx->sh[s];
	unsigned model = rdps_be32toh(h->model_be);
	unsigned workers = rdps_be32toh(h->workers_be);
	unsigned slack = rdps_be32toh(h->slack_be);
	unsigned k = rdps_be32toh(h->clock_k_be);

	if (rdps_be64toh(h->magic_be) != PS_DIR_MAGIC ||
	    rdps_be32toh(h->version_be) != PS_PROTO_VERSION)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s): bad directory "
				      "magic or version %u (want %d)",
				      s, sh->url, rdps_be32toh(h->version_be),
				      PS_PROTO_VERSION);
	if (workers != ctx->workers)
		return rdps_set_error(-EINVAL,
				      "shard %u (%s) runs a job of %u "
				      "workers, this worker says %u",
				      s, sh->url, workers, ctx->workers);
	if (model != (unsigned)ctx->model)
		return rdps_set_error(
			-EINVAL,
			"shard %u (%s) runs model %s, this worker "
			"says %s",
			s, sh->url, rdps_model_name(model),
			rdps_model_name(ctx->model));
	if (slack != ctx->slack)
		return rdps_set_error(-EINVAL,
				      "shard %u (%s) runs slack %u, "
				      "this worker says %u",
				      s, sh->url, slack, ctx->slack);
	sh->hb_ms = rdps_be32toh(h->heartbeat_ms_be);
	if (s == 0) {
		if (k < ps_clock_k(ctx->slack) || k > PS_CLOCK_K_MAX)
			return rdps_set_error(-EPROTO,
					      "shard 0 (%s): clock table K %u "
					      "invalid for slack %u",
					      sh->url, k, ctx->slack);
		ctx->k = k;
	}
	return 0;
}

/* A BSP job resumed from checkpoints starts where they left it: every
 * shard must have resumed at the same clock (h: every shard's header). */
static int wrk_check_start(struct rdps_ctx *ctx, const struct ps_dir_hdr *h)
{
	uint64_t c0 = rdps_be64toh(h[0].applied_clock_be);

	for (unsigned s = 1; s < ctx->nshards; s++) {
		uint64_t c = rdps_be64toh(h[s].applied_clock_be);

		if (c != c0)
			return rdps_set_error(
				-EINVAL,
				"shard 0 (%s) starts at clock %llu, "
				"shard %u (%s) at %llu: resume every "
				"shard at the same clock (rdps-launch "
				"--resume picks the newest common one)",
				ctx->sh[0].url, (unsigned long long)c0, s,
				ctx->sh[s].url, (unsigned long long)c);
	}
	ctx->clock = c0;
	return 0;
}

/* Read every shard's directory header and check it against the config. */
static int wrk_check_dirs(struct rdps_ctx *ctx)
{
	struct ps_dir_hdr *h;
	struct wrk_grp g = {0, 0, 0};
	uint64_t deadline = wrk_deadline(ctx);
	int ret;

	ret = wrk_bounce(ctx, ctx->nshards * sizeof(*h));
	if (ret)
		return ret;
	h = ctx->bounce;
	for (unsigned s = 0; s < ctx->nshards; s++) {
		WRK_POST(ret, ctx, deadline, sizeof(*h),
			 rdps_tp_get(ctx->sh[s].ep, &h[s], sizeof(*h),
				     ctx->bounce_mr, ctx->sh[s].dir_key.addr,
				     &ctx->sh[s].dir_key, (uintptr_t)&g, 0));
		if (ret) {
			wrk_grp_wait(ctx, &g, deadline, "a directory read");
			return wrk_post_fail(ctx, &ctx->sh[s], ret,
					     "a directory read");
		}
		g.left++;
	}
	ret = wrk_grp_wait(ctx, &g, deadline, "the shards' directories");
	if (ret)
		return ret;
	for (unsigned s = 0; s < ctx->nshards; s++) {
		ret = wrk_check_dir(ctx, s, &h[s]);
		if (ret)
			return ret;
	}
	if (rdps_model_in_order(ctx->model))
		return wrk_check_start(ctx, h);
	return 0;
}

/* Tell every shard this worker leaves on purpose (PS_BYE), so that its
 * closing connection does not count as a death; waits a moment for the
 * messages to go out. */
static void wrk_say_bye(struct rdps_ctx *ctx)
{
	uint64_t deadline = rdps_now_ns() + 1000000000ull;
	struct wrk_grp g = {0, 0, 0};

	/* A broken context leaves as if dead: the shards must not take it
	 * for a worker that finished. One the wait check interrupted has
	 * nothing in flight and what it did is done: it leaves cleanly. */
	if (ctx->broken == -EINTR)
		ctx->broken = 0;
	if (!ctx->tp || !ctx->small_mr || ctx->broken)
		return;
	/* Default (fail) mode: leave the clocks and barriers we finished in
	 * our own words (zero until now), before the bye on the same
	 * endpoint; a worker waiting on one we never reach can then say
	 * that we left (wrk_left_error). continue keeps them all along. */
	if (ctx->ready && ctx->on_loss == RDPS_LOSS_FAIL && !ctx->sh[0].err &&
	    (wrk_clock_post(ctx, &g, ps_wclock_off(ctx->rank), ctx->clock,
			    (uint64_t *)ctx->small + WRK_OWN, deadline,
			    "the clock-word fetch-add") ||
	     wrk_clock_post(ctx, &g, ps_wbar_off(ctx->workers, ctx->rank),
			    ctx->barriers, (uint64_t *)ctx->small + WRK_MAKEUP,
			    deadline, "the barrier-word fetch-add")))
		rdps_dbg("worker %u: leaving without our counts: %s", ctx->rank,
			 rdps_errmsg());
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		if (!sh->ep || sh->err || !sh->welcomed || sh->welcome_status)
			continue;
		if (!rdps_tp_put_imm(sh->ep, NULL, 0, ctx->small_mr, 0, NULL,
				     PS_IMM(PS_BYE, 0), (uintptr_t)&g, 0)) {
			wrk_count_op(ctx, 0);
			g.left++;
		}
	}
	while (g.left > 0 && wrk_progress(ctx, deadline, 1) >= 0)
		;
}

void rdps_ctx_destroy(struct rdps_ctx *ctx)
{
	struct rdps_table *t, *next;
	int ret;

	if (!ctx)
		return;
	for (t = ctx->tables; t; t = next) {
		next = t->next;
		free(t->part);
		free(t);
	}
	wrk_emb_free_all(ctx);
	if (ctx->sh) {
		wrk_say_bye(ctx);
		/* After the bye: a shard must not take the silence for a
		 * stopped process. */
		rdps_pulse_stop(&ctx->pulse);
		for (unsigned s = 0; s < ctx->nshards; s++)
			if (ctx->sh[s].ep)
				rdps_tp_ep_close(ctx->sh[s].ep);
	}
	if (ctx->tp) {
		/* Flushed completions of the closed endpoints. */
		struct rdps_tp_comp comps[32];

		while (rdps_tp_poll(ctx->tp, comps, 32) > 0)
			;
		for (unsigned i = 0; i < ctx->n_ubuf; i++) {
			struct wrk_ubuf *u = &ctx->ubuf[i];
			void *addr = u->addr;

			wrk_mem_put(ctx, &addr, &u->len, &u->mr);
		}
		ctx->n_ubuf = 0;
		wrk_mem_put(ctx, &ctx->bounce, &ctx->bounce_len,
			    &ctx->bounce_mr);
		wrk_mem_put(ctx, &ctx->lk, &ctx->lk_len, &ctx->lk_mr);
		wrk_mem_put(ctx, &ctx->stage, &ctx->stage_len, &ctx->stage_mr);
		wrk_mem_put(ctx, &ctx->small, &ctx->small_len, &ctx->small_mr);
		wrk_mem_put(ctx, &ctx->reply, &ctx->reply_len, &ctx->reply_mr);
		ret = rdps_tp_close(ctx->tp);
		if (ret)
			rdps_warn("closing the transport failed: %s",
				  strerror(-ret));
	}
	free(ctx->ubuf);
	free(ctx->scratch);
	free(ctx->sh);
	free(ctx->shards_buf);
	free(ctx);
}

/* Fill a new context from cfg (checked): the job, and each shard's url
 * (pointing into ctx->shards_buf). */
static int wrk_ctx_init(struct rdps_ctx *ctx, const struct rdps_config *cfg,
			unsigned nshards)
{
	char *p;

	ctx->nshards = nshards;
	ctx->workers = (unsigned)cfg->workers;
	ctx->rank = (unsigned)cfg->rank;
	ctx->model = cfg->model;
	ctx->slack = cfg->slack;
	ctx->on_loss = cfg->on_worker_loss;
	/* Lost workers are made up on the flat counter only. */
	ctx->fanin =
		cfg->on_worker_loss == RDPS_LOSS_CONTINUE
			? 1
			: ps_fanin((unsigned)cfg->clock_fanin, ctx->workers);
	ctx->timeout_ns =
		(uint64_t)(cfg->timeout_ms ? cfg->timeout_ms : 30000) *
		1000000ull;
	ctx->shards_buf = strdup(cfg->shards);
	ctx->sh = calloc(nshards, sizeof(*ctx->sh));
	if (!ctx->shards_buf || !ctx->sh)
		return rdps_set_error(-ENOMEM, "out of memory");
	p = ctx->shards_buf;
	for (unsigned s = 0; s < nshards; s++) {
		char *comma = strchr(p, ',');

		if (comma)
			*comma = '\0';
		ctx->sh[s].idx = s;
		ctx->sh[s].url = p;
		p = comma ? comma + 1 : p;
	}
	return 0;
}

/* Open the transport and the memory needed before connecting: the reply
 * region (with the pulse beating in it) and the small buffer. */
static int wrk_ctx_open(struct rdps_ctx *ctx, const struct rdps_config *cfg)
{
	unsigned nshards = ctx->nshards;
	struct rdps_tp_cfg tcfg;
	int ret;

	rdps_tp_cfg_default(&tcfg);
	tcfg.poll_mode = cfg->poll_mode == RDPS_POLL_BUSY ? RDPS_TP_POLL_BUSY
			 : cfg->poll_mode == RDPS_POLL_EVENT
				 ? RDPS_TP_POLL_EVENT
				 : RDPS_TP_POLL_ADAPTIVE;
	tcfg.token = cfg->token;
	ret = rdps_tp_open(ctx->sh[0].url, &tcfg, &ctx->tp);
	if (ret)
		return wrk_wrap(ret, "opening the transport for %s",
				ctx->sh[0].url);
	ret = wrk_mem_get(
		ctx, ps_reply_len(nshards),
		RDPS_TP_ACCESS_REMOTE_WRITE | RDPS_TP_ACCESS_REMOTE_READ,
		&ctx->reply, &ctx->reply_len, &ctx->reply_mr, "reply region");
	if (ret)
		return ret;
	/* Beating before the first shard can look. */
	ret = rdps_pulse_start(
		&ctx->pulse,
		(uint64_t *)((char *)ctx->reply + ps_pulse_off(nshards)),
		PS_PULSE_MS);
	if (ret)
		return ret;
	return wrk_mem_get(ctx, 64 + 2 * nshards * sizeof(struct ps_dir_hdr),
			   RDPS_TP_ACCESS_LOCAL, &ctx->small, &ctx->small_len,
			   &ctx->small_mr, "clock buffer");
}

/* Wait for shard sh's welcome immediate, then take in its welcome. */
static int wrk_await_welcome(struct rdps_ctx *ctx, struct wrk_shard *sh,
			     uint64_t deadline)
{
	int ret;

	while (!sh->welcomed) {
		if (sh->err)
			return wrk_dead(ctx, sh);
		ret = wrk_progress(ctx, deadline, 1);
		if (ret == -ETIMEDOUT)
			return rdps_set_error(-ETIMEDOUT,
					      "timed out waiting for the "
					      "welcome of shard %u (%s)",
					      sh->idx, sh->url);
		if (ret < 0)
			return ret;
	}
	return wrk_welcome(ctx, sh);
}

/* Connect to every shard, then wait for every welcome, in shard order. */
static int wrk_ctx_join(struct rdps_ctx *ctx)
{
	uint64_t deadline = wrk_deadline(ctx);
	int ret;

	for (unsigned s = 0; s < ctx->nshards; s++) {
		ret = wrk_connect(ctx, &ctx->sh[s], deadline);
		if (ret)
			return ret;
	}
	for (unsigned s = 0; s < ctx->nshards; s++) {
		ret = wrk_await_welcome(ctx, &ctx->sh[s], deadline);
		if (ret)
			return ret;
	}
	return 0;
}

/* The push staging area: every shard's sub-slots, as its welcome said. */
static int wrk_stage_init(struct rdps_ctx *ctx)
{
	size_t stage_len = 0;
	char *p;
	int ret;

	for (unsigned s = 0; s < ctx->nshards; s++)
		stage_len += ctx->sh[s].nslots * ctx->sh[s].slot_bytes;
	ret = wrk_mem_get(ctx, stage_len, RDPS_TP_ACCESS_LOCAL, &ctx->stage,
			  &ctx->stage_len, &ctx->stage_mr, "push staging area");
	if (ret)
		return ret;
	p = ctx->stage;
	for (unsigned s = 0; s < ctx->nshards; s++) {
		ctx->sh[s].stage = p;
		p += ctx->sh[s].nslots * ctx->sh[s].slot_bytes;
	}
	return 0;
}

int rdps_ctx_create(const struct rdps_config *cfg, struct rdps_ctx **ctx_out)
{
	struct rdps_ctx *ctx;
	unsigned nshards;
	int ret;

	if (!cfg || !ctx_out)
		return rdps_set_error(-EINVAL, "rdps_ctx_create: null "
					       "argument");
	ret = wrk_check_cfg(cfg, &nshards);
	if (ret)
		return ret;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return rdps_set_error(-ENOMEM, "out of memory");
	ret = wrk_ctx_init(ctx, cfg, nshards);
	if (!ret)
		ret = wrk_ctx_open(ctx, cfg);
	if (!ret)
		ret = wrk_ctx_join(ctx);
	if (!ret)
		ret = wrk_stage_init(ctx);
	if (!ret)
		ret = wrk_check_dirs(ctx);
	if (!ret)
		ret = wrk_clock_join(ctx, cfg->clock_fanin);
	if (ret) {
		rdps_ctx_destroy(ctx);
		return ret;
	}
	ctx->ready = 1;
	*ctx_out = ctx;
	return 0;
}

uint64_t rdps_clock_now(const struct rdps_ctx *ctx)
{
	return ctx ? ctx->clock : 0;
}

void rdps_ctx_stats(const struct rdps_ctx *ctx, struct rdps_stats *out)
{
	if (!out)
		return;
	if (!ctx) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = ctx->st;
}
