/* SPDX-License-Identifier: MIT */
/*
 * wait.c - completions and waiting: each completion to its group,
 * sub-slot or shard; progress with a deadline; posts that retry while the
 * queues are full; the errors of timeouts and broken connections.
 */
#include <sched.h>
#include <time.h>

#include "worker.h"

int wrk_dead(struct rdps_ctx *ctx, struct wrk_shard *sh)
{
	return rdps_set_error(sh->err,
			      "connection to shard %u (%s) is broken: %s; "
			      "check that rdps-server is still running",
			      sh->idx, sh->url,
			      sh->err == -ECONNRESET ? "reset"
						     : "protocol "
						       "error");
}

int wrk_dead_grp(struct rdps_ctx *ctx, struct wrk_shard *sh, struct wrk_grp *g,
		 uint64_t deadline, const char *what)
{
	if (g->left)
		wrk_grp_wait(ctx, g, deadline, what);
	return wrk_dead(ctx, sh);
}

static void wrk_recv_imm(struct rdps_ctx *ctx, struct wrk_shard *sh,
			 uint32_t imm)
{
	unsigned kind = PS_IMM_KIND(imm), arg = PS_IMM_ARG(imm);

	switch (kind) {
	case PS_WELCOME:
		sh->welcomed = 1;
		sh->welcome_status = arg;
		break;
	case PS_CREDIT:
	case PS_NACK:
		if (!sh->inflight) {
			rdps_warn("shard %u: stray %s (no sub-slot "
				  "outstanding)",
				  sh->idx,
				  kind == PS_CREDIT ? "credit" : "nack");
			break;
		}
		if (kind == PS_CREDIT && arg != sh->head)
			rdps_warn("shard %u: credit for sub-slot %u, expected "
				  "%u",
				  sh->idx, arg, sh->head);
		if (kind == PS_NACK && !sh->nack_err)
			sh->nack_err = arg ? (int)arg : EPROTO;
		sh->head = (sh->head + 1) % sh->nslots;
		sh->inflight--;
		break;
	case PS_RELEASE:
		/* One of an earlier wait (ended by its own read) is stale:
		 * only the wait registered now is woken. */
		if (sh->waiting && (arg & ~PS_RELEASE_WAKE) == sh->wait_arg) {
			sh->woken = 1;
			sh->complete = !(arg & PS_RELEASE_WAKE);
		}
		break;
	default:
		rdps_warn("shard %u: unexpected immediate 0x%x", sh->idx, imm);
		break;
	}
}

/* A push's put_imm completed (wr_id WRK_WR_PUSH): the staging buffer of
 * its sub-slot is idle again. */
static void wrk_put_done(struct rdps_ctx *ctx, const struct rdps_tp_comp *c)
{
	unsigned s = (unsigned)(c->wr_id >> 9);
	unsigned k = (unsigned)(c->wr_id >> 1) & 0xff;
	struct wrk_shard *sh;

	if (s >= ctx->nshards || k >= PS_NSLOTS)
		return;
	sh = &ctx->sh[s];
	sh->put_busy[k] = 0;
	if (c->status != RDPS_TP_WC_SUCCESS && !sh->err)
		sh->err = c->status == RDPS_TP_WC_CONN_ERR ||
					  c->status == RDPS_TP_WC_FLUSH_ERR
				  ? -ECONNRESET
				  : -EPROTO;
}

/* An operation of the group whose address is wr_id completed (on the
 * endpoint of sh, if known). */
static void wrk_grp_done(struct wrk_shard *sh, const struct rdps_tp_comp *c)
{
	struct wrk_grp *g = (struct wrk_grp *)(uintptr_t)c->wr_id;

	g->left--;
	if (c->status != RDPS_TP_WC_SUCCESS && !g->status) {
		g->status = c->status;
		g->shard = sh ? sh->idx : g->shard;
	}
	if (sh &&
	    (c->status == RDPS_TP_WC_CONN_ERR ||
	     c->status == RDPS_TP_WC_FLUSH_ERR) &&
	    !sh->err)
		sh->err = -ECONNRESET;
}

static void wrk_dispatch(struct rdps_ctx *ctx, const struct rdps_tp_comp *c)
{
	struct wrk_shard *sh = c->ep ? c->ep->user : NULL;

	if (c->opcode == RDPS_TP_OP_DISCONNECT) {
		if (sh && !sh->err)
			sh->err = -ECONNRESET;
		return;
	}
	if (c->opcode == RDPS_TP_OP_RECV_IMM) {
		if (!sh)
			return;
		if (c->status != RDPS_TP_WC_SUCCESS) {
			if (!sh->err)
				sh->err = -ECONNRESET;
			return;
		}
		wrk_recv_imm(ctx, sh, c->imm);
		return;
	}
	if (c->wr_id & 1) {
		wrk_put_done(ctx, c);
		return;
	}
	if (c->wr_id)
		wrk_grp_done(sh, c);
}

int wrk_broken_err(const struct rdps_ctx *ctx)
{
	if (ctx->broken == -EINTR)
		return rdps_set_error(-EINTR,
				      "this context was interrupted in a wait "
				      "(its wait check asked to stop): destroy "
				      "it");
	return rdps_set_error(ctx->broken,
			      "this context gave up on operations that "
			      "never completed (%s): destroy it and start over",
			      strerror(-ctx->broken));
}

int wrk_progress(struct rdps_ctx *ctx, uint64_t deadline, int block)
{
	struct rdps_tp_comp comps[32];
	int n;

	/* Completions may point at the groups of waits that gave up. */
	if (ctx->broken)
		return wrk_broken_err(ctx);

	if (block) {
		/* Past the deadline still polls once: what completed counts. */
		n = rdps_tp_wait(ctx->tp, comps, RDPS_ARRAY_SIZE(comps),
				 rdps_ms_left(deadline));
	} else {
		n = rdps_tp_poll(ctx->tp, comps, RDPS_ARRAY_SIZE(comps));
	}
	if (n < 0)
		return rdps_set_error(n, "waiting for completions failed: %s",
				      strerror(-n));
	for (int i = 0; i < n; i++)
		wrk_dispatch(ctx, &comps[i]);
	if (!n && block && rdps_now_ns() >= deadline)
		return -ETIMEDOUT;
	return n;
}

int wrk_timeout(const struct rdps_ctx *ctx, const char *what)
{
	return rdps_set_error(-ETIMEDOUT,
			      "timed out after %llu ms waiting for %s; raise "
			      "timeout_ms or check the shards and the other "
			      "workers",
			      (unsigned long long)(ctx->timeout_ns / 1000000),
			      what);
}

/*
 * A post said -EAGAIN: make room. A full send or completion queue empties
 * as completions are reaped, but a full immediate ring (shm) empties when
 * the peer consumes it, which completes nothing here: so wait at most
 * WRK_POST_WAIT_NS for a completion before the caller retries the post.
 * 0 to retry, -ETIMEDOUT past the deadline, or another error.
 */
#define WRK_POST_WAIT_NS 1000000ull
int wrk_post_wait(struct rdps_ctx *ctx, uint64_t deadline)
{
	uint64_t now = rdps_now_ns();
	uint64_t until = now + WRK_POST_WAIT_NS;
	int ret;

	if (until > deadline)
		until = deadline;
	ret = wrk_progress(ctx, until, 1);
	if (ret == -ETIMEDOUT && until < deadline)
		return 0;
	return ret < 0 ? ret : 0;
}

int wrk_post_fail(struct rdps_ctx *ctx, struct wrk_shard *sh, int ret,
		  const char *what)
{
	if (ctx->broken)
		return ret; /* wrk_broken_err() said why */
	if (ret == -ETIMEDOUT)
		return wrk_timeout(ctx, what);
	if (ret == -ENOTCONN || ret == -ECONNRESET) {
		sh->err = -ECONNRESET;
		return wrk_dead(ctx, sh);
	}
	return rdps_set_error(ret, "posting %s to shard %u (%s) failed: %s",
			      what, sh->idx, sh->url, strerror(-ret));
}

int wrk_grp_get(struct rdps_ctx *ctx, struct wrk_shard *sh, struct wrk_grp *g,
		void *dst, struct rdps_tp_mr *mr, uint64_t len, uint64_t raddr,
		struct rdps_tp_rkey *key, uint64_t deadline, const char *what)
{
	int ret;

	if (sh->err)
		return wrk_dead_grp(ctx, sh, g, deadline, what);
	WRK_POST(
		ret, ctx, deadline, len,
		rdps_tp_get(sh->ep, dst, len, mr, raddr, key, (uintptr_t)g, 0));
	if (ret)
		return wrk_grp_post_fail(ctx, sh, g, ret, deadline, what);
	g->left++;
	return 0;
}

int wrk_grp_post_fail(struct rdps_ctx *ctx, struct wrk_shard *sh,
		      struct wrk_grp *g, int ret, uint64_t deadline,
		      const char *what)
{
	if (g->left)
		wrk_grp_wait(ctx, g, deadline, what);
	return wrk_post_fail(ctx, sh, ret, what);
}

/*
 * A wait on g gave up with ret. Operations still posted point at g: drain
 * them before g goes out of scope, else nothing may dispatch completions
 * any more. Returns ret.
 */
static int wrk_grp_abandon(struct rdps_ctx *ctx, struct wrk_grp *g, int ret)
{
	uint64_t grace = rdps_now_ns() + 1000000000ull;

	/* (A stopped shard will not answer them.) */
	while (g->left > 0 && !ctx->broken && ret != -EHOSTDOWN &&
	       wrk_progress(ctx, grace, 1) >= 0)
		;
	if (g->left > 0)
		ctx->broken = ret;
	return ret;
}

/* The error of the first failed operation of the completed group g. */
static int wrk_grp_status(struct rdps_ctx *ctx, const struct wrk_grp *g,
			  const char *what)
{
	struct wrk_shard *sh = &ctx->sh[g->shard];

	if (g->status == RDPS_TP_WC_CONN_ERR ||
	    g->status == RDPS_TP_WC_FLUSH_ERR) {
		sh->err = -ECONNRESET;
		return wrk_dead(ctx, sh);
	}
	return rdps_set_error(-EPROTO,
			      "%s on shard %u (%s) failed: %s "
			      "(stale or wrong remote key?)",
			      what, sh->idx, sh->url,
			      rdps_tp_status_str(g->status));
}

int wrk_grp_wait(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t deadline,
		 const char *what)
{
	int ret;

	/* Transports that complete at post time (shm) need no blocking
	 * wait: one plain poll spares rdps_tp_wait()'s clock readings. */
	if (g->left > 0) {
		ret = wrk_progress(ctx, deadline, 0);
		if (ret < 0)
			return ret;
	}
	/* Slices of 100 ms: between them, the shards' heartbeats. */
	while (g->left > 0) {
		uint64_t until = rdps_now_ns() + 100000000ull;

		if (until > deadline)
			until = deadline;
		ret = wrk_progress(ctx, until, 1);
		if (ret == -ETIMEDOUT && until < deadline)
			ret = wrk_probe_all(ctx, deadline);
		else if (ret == -ETIMEDOUT)
			ret = wrk_timeout(ctx, what);
		if (ret < 0)
			return wrk_grp_abandon(ctx, g, ret);
	}
	return g->status ? wrk_grp_status(ctx, g, what) : 0;
}

/*
 * Back off between re-reads: spin, then yield, then sleeps that double
 * every second try up to 1 ms (busy polling mode only yields: it may keep
 * the core). W workers waiting for one clock word on shard 0 all re-read
 * it: the sooner the sleeps start and grow, the fewer reads a wait costs
 * (about 6 + 2 log2(wait / 10 us)) and the less they delay the fetch-adds
 * and ENDs being waited for, which on 2 cores share the CPU with them.
 */
#define WRK_CHECK_NS (RDPS_WAIT_CHECK_MS * 1000000ull)

/*
 * The wait check, from the first sleep of a wait on (attempt 6): that one
 * only arms the timer, so a wait that ends within RDPS_WAIT_CHECK_MS of
 * sleeping never calls it, and the fast path (no sleep) never reads the
 * time for it.
 */
int wrk_wait_check(struct rdps_ctx *ctx, unsigned attempt)
{
	uint64_t now = rdps_now_ns();
	int ret;

	if (attempt > 6 && now < ctx->wait_check_at)
		return 0;
	ctx->wait_check_at = now + WRK_CHECK_NS;
	if (attempt == 6)
		return 0;
	ret = ctx->wait_check(ctx->wait_check_arg);
	if (!ret)
		return 0;
	/* The caller has nothing in flight: destroy may still say bye. */
	ctx->broken = -EINTR;
	return rdps_set_error(-EINTR,
			      "interrupted while waiting for the other "
			      "workers: the wait check returned %d; the "
			      "context is unusable now, destroy it",
			      ret);
}

int wrk_backoff(struct rdps_ctx *ctx, unsigned attempt)
{
	struct timespec ts = {0, 0};
	unsigned us, step;
	int ret;

	if (attempt < 2)
		return 0;
	if (attempt >= 6 && ctx->wait_check) {
		ret = wrk_wait_check(ctx, attempt);
		if (ret)
			return ret;
	}
	if (attempt < 6 || ctx->tp->cfg.poll_mode == RDPS_TP_POLL_BUSY) {
		sched_yield();
		return 0;
	}
	step = (attempt - 6) / 2;
	us = 10u << (step < 7 ? step : 7);
	if (us > 1000)
		us = 1000;
	ts.tv_nsec = (long)us * 1000;
	nanosleep(&ts, NULL);
	return 0;
}

int rdps_ctx_set_wait_check(struct rdps_ctx *ctx, int (*check)(void *arg),
			    void *arg)
{
	if (!ctx)
		return rdps_set_error(-EINVAL,
				      "rdps_ctx_set_wait_check: null context");
	ctx->wait_check = check;
	ctx->wait_check_arg = arg;
	return 0;
}
