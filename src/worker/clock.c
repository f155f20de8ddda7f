/* SPDX-License-Identifier: MIT */
/*
 * clock.c - clocks and barriers: fetch-adds and reads on the clock words
 * (rdps_clock, rdps_barrier); under BSP and A-BSP, an END per shard. The
 * words are shard 0's flat counters, or the clock tree's nodes
 * (ps_proto.h "Clock tree": a group's words on its own shard, the root on
 * shard 0), by the job's fan-in.
 *
 * Read top-down as a tick runs: post the tick (ENDs, fetch-add, own word,
 * slack read), wait for it, climb the tree when this worker completed its
 * group (wrk_tree_up), then, while clock t - slack is not complete: flat,
 * one PS_WAIT and a sleep until shard 0's PS_RELEASE (wrk_word_wait; the
 * completer posts the PS_DONE); tree, read its group's release word again
 * (wrk_slack_wait). The steps come before their caller, in call order.
 */
#include <stdio.h>
#include <time.h>

#include "worker.h"

int wrk_word_post(struct rdps_ctx *ctx, struct wrk_shard *sh, struct wrk_grp *g,
		  uint64_t off, uint64_t add, uint64_t *res, uint64_t deadline,
		  const char *what)
{
	int ret;

	if (sh->err)
		return wrk_dead(ctx, sh);
	if (add)
		WRK_POST(ret, ctx, deadline, 8,
			 rdps_tp_atomic_fadd(sh->ep, add, res, ctx->small_mr,
					     sh->clock_key.addr + off,
					     &sh->clock_key, (uintptr_t)g, 0));
	else
		WRK_POST(ret, ctx, deadline, 8,
			 rdps_tp_get(sh->ep, res, 8, ctx->small_mr,
				     sh->clock_key.addr + off, &sh->clock_key,
				     (uintptr_t)g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, what);
	g->left++;
	return 0;
}

int wrk_clock_post(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t off,
		   uint64_t add, uint64_t *res, uint64_t deadline,
		   const char *what)
{
	return wrk_word_post(ctx, &ctx->sh[0], g, off, add, res, deadline,
			     what);
}

/* One 8-byte operation on shard sh's clock words, waited for. */
static int wrk_clock_op(struct rdps_ctx *ctx, struct wrk_shard *sh,
			uint64_t off, int add, uint64_t *res, uint64_t deadline,
			const char *what)
{
	struct wrk_grp g = {0, 0, 0};
	int ret = wrk_word_post(ctx, sh, &g, off, add, res, deadline, what);

	return ret ? ret : wrk_grp_wait(ctx, &g, deadline, what);
}

int wrk_clock_swap(struct rdps_ctx *ctx, uint64_t off, uint64_t cmp,
		   uint64_t swp, uint64_t *res, uint64_t deadline,
		   const char *what)
{
	struct wrk_shard *sh = &ctx->sh[0];
	struct wrk_grp g = {0, 0, 0};
	int ret;

	if (sh->err)
		return wrk_dead(ctx, sh);
	WRK_POST(ret, ctx, deadline, 8,
		 rdps_tp_atomic_cswap(sh->ep, cmp, swp, res, ctx->small_mr,
				      sh->clock_key.addr + off, &sh->clock_key,
				      (uintptr_t)&g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, what);
	g.left = 1;
	return wrk_grp_wait(ctx, &g, deadline, what);
}

int wrk_clock_join(struct rdps_ctx *ctx, int cfg_fanin)
{
	uint64_t *res = ctx->small;
	uint64_t deadline = wrk_deadline(ctx);
	int ret;

	ctx->clock0 = ctx->clock;
	ctx->done_clock = ctx->clock;
	if (ctx->fanin > 1) {
		ctx->grp = ctx->rank / ctx->fanin;
		ctx->groups = ps_tree_groups(ctx->fanin, ctx->workers);
		ctx->grp_size =
			ps_tree_size(ctx->fanin, ctx->workers, ctx->grp);
		ctx->grp_sh = &ctx->sh[ps_tree_shard(ctx->grp, ctx->nshards)];
		ctx->grp_off = ps_clock_node_off(
			ctx->workers, ps_tree_node(ctx->grp, ctx->nshards));
		ctx->root_off = ps_clock_node_off(ctx->workers, 0);
	}
	/* Workers that count on different words would wait for ever. */
	ret = wrk_clock_swap(ctx, offsetof(struct ps_clock_table, fanin), 0,
			     ctx->fanin, &res[WRK_DISCARD], deadline,
			     "the fan-in swap");
	if (ret)
		return ret;
	if (res[WRK_DISCARD] && res[WRK_DISCARD] != ctx->fanin)
		return rdps_set_error(
			-EINVAL,
			"worker %u counts clocks with fan-in %u (clock_fanin "
			"%d, on_worker_loss %s, %u workers) but the job's "
			"first worker chose %llu: give every worker the same "
			"clock_fanin (RDPS_CLOCK_FANIN) and on_worker_loss",
			ctx->rank, ctx->fanin, cfg_fanin,
			rdps_on_loss_name(ctx->on_loss), ctx->workers,
			(unsigned long long)res[WRK_DISCARD]);
	return 0;
}

int wrk_clock_words(struct rdps_ctx *ctx, unsigned s, uint64_t off, unsigned n,
		    uint64_t *out)
{
	uint64_t deadline = wrk_deadline(ctx);
	struct wrk_shard *sh;
	struct wrk_grp g = {0, 0, 0};
	int ret;

	if (s >= ctx->nshards || n > 64)
		return rdps_set_error(-EINVAL,
				      "wrk_clock_words: shard %u, "
				      "%u words",
				      s, n);
	sh = &ctx->sh[s];
	ret = wrk_bounce(ctx, 8ull * n);
	if (ret)
		return ret;
	if (sh->err)
		return wrk_dead(ctx, sh);
	WRK_POST(ret, ctx, deadline, 8ull * n,
		 rdps_tp_get(sh->ep, ctx->bounce, 8ull * n, ctx->bounce_mr,
			     sh->clock_key.addr + off, &sh->clock_key,
			     (uintptr_t)&g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a clock-word read");
	g.left = 1;
	ret = wrk_grp_wait(ctx, &g, deadline, "a clock-word read");
	if (!ret)
		memcpy(out, ctx->bounce, 8ull * n);
	return ret;
}

/*
 * The clock tree, once this worker's fetch-add on its group's counter at
 * cnt_off (within a node) returned res[slot]: if that completed the group
 * (round: the counter's round, from 1), add the group's arrival to the
 * root's counter; if that completed the root, add 1 to every group's
 * release word at rel_off (when release): all posted together, one round
 * trip. A release therefore follows the completion of every group's
 * counter: a waiter reading its group's release can never see a round
 * before everyone arrived. *done_out: this worker completed the round.
 */
static int wrk_tree_up(struct rdps_ctx *ctx, uint64_t cnt_off, uint64_t round,
		       unsigned slot, uint64_t rel_off, int release,
		       uint64_t deadline, int *done_out)
{
	uint64_t *res = ctx->small;
	struct wrk_grp g = {0, 0, 0};
	int ret = 0;

	*done_out = 0;
	ctx->tree_grp_adds++;
	if (!ctx->tree_tick_max)
		ctx->tree_tick_max = 1;
	if (res[slot] + 1 != (uint64_t)ctx->grp_size * round)
		return 0;
	ret = wrk_clock_op(ctx, &ctx->sh[0], ctx->root_off + cnt_off, 1,
			   &res[slot], deadline, "the clock tree's root");
	if (ret)
		return ret;
	ctx->tree_root_adds++;
	ctx->tree_tick_max = 2;
	if (res[slot] + 1 != (uint64_t)ctx->groups * round)
		return 0;
	*done_out = 1;
	for (unsigned grp = 0; release && grp < ctx->groups; grp++) {
		unsigned s = ps_tree_shard(grp, ctx->nshards);
		uint64_t off = ps_clock_node_off(
			ctx->workers, ps_tree_node(grp, ctx->nshards));

		ret = wrk_word_post(ctx, &ctx->sh[s], &g, off + rel_off, 1,
				    &res[WRK_DISCARD], deadline,
				    "a clock release");
		if (ret)
			break;
		ctx->tree_rel_adds++;
	}
	if (g.left) {
		int wret = wrk_grp_wait(ctx, &g, deadline, "the clock release");

		if (!ret)
			ret = wret;
	}
	return ret;
}

/* Under BSP and A-BSP: an END(t) to every shard, into g. */
static int wrk_clock_ends(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t t,
			  uint64_t deadline)
{
	int ret;

	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		if (sh->err)
			return wrk_dead(ctx, sh);
		WRK_POST(ret, ctx, deadline, 0,
			 rdps_tp_put_imm(sh->ep, NULL, 0, ctx->small_mr, 0,
					 NULL, PS_IMM(PS_END, t & PS_ARG_MASK),
					 (uintptr_t)g, 0));
		if (ret)
			return wrk_post_fail(ctx, sh, ret, "a clock end");
		g->left++;
	}
	return 0;
}

/*
 * What a wait on clock c reads: flat, arrive[c mod K] on shard 0 until
 * all W arrived; tree, this worker's group's release word until clock c
 * was released (clocks count from the job's start, clock0 <= c).
 */
static struct wrk_round wrk_clock_round(const struct rdps_ctx *ctx, uint64_t c)
{
	struct wrk_round rd = {
		.off = c % ctx->k * 8,
		.goal = (uint64_t)ctx->workers * (c / ctx->k + 1),
		.words_off = ps_wclock_off(0),
		.need = c + 1,
		.what = "this clock",
		.no = c,
		.barrier = 0,
		.sh = &ctx->sh[0],
	};

	if (ctx->fanin > 1) {
		rd.off = ctx->grp_off + offsetof(struct ps_clock_node, release);
		rd.goal = c - ctx->clock0 + 1;
		rd.sh = ctx->grp_sh;
	}
	return rd;
}

/*
 * Post the tick of clock t into g: the ENDs (BSP, A-BSP), the fetch-add,
 * this worker's own word (SSP, on_worker_loss continue), and when check
 * and c != t the read of clock c's counter (then *read_posted).
 */
static int wrk_tick_post(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t t,
			 uint64_t c, int check, uint64_t deadline,
			 int *read_posted)
{
	uint64_t *res = ctx->small;
	int ret = 0;

	if (rdps_model_in_order(ctx->model))
		ret = wrk_clock_ends(ctx, g, t, deadline);
	if (ret)
		return ret;
	if (ctx->fanin > 1) {
		ret = wrk_word_post(
			ctx, ctx->grp_sh, g,
			ctx->grp_off + (t - ctx->clock0) % ctx->k * 8, 1,
			&res[WRK_FADD], deadline, "the clock fetch-add");
	} else {
		ret = wrk_clock_post(ctx, g, (t % ctx->k) * 8, 1,
				     &res[WRK_FADD], deadline,
				     "the clock fetch-add");
	}
	if (ret)
		return ret;
	/* After it, on the same endpoint: wclock > t proves our arrival.
	 * (ASP never waits on a clock, so never makes one up.) */
	if (ctx->on_loss == RDPS_LOSS_CONTINUE &&
	    ctx->model == RDPS_MODEL_SSP) {
		ret = wrk_clock_post(ctx, g, ps_wclock_off(ctx->rank), 1,
				     &res[WRK_OWN], deadline,
				     "the clock-word fetch-add");
		if (ret)
			return ret;
	}
	/* Under BSP (c == t) the fetch-add itself says whether we were last;
	 * a read posted beside it could only see the count before it. */
	if (check && c != t && c >= ctx->done_clock) {
		struct wrk_round rd = wrk_clock_round(ctx, c);

		ret = wrk_word_post(ctx, rd.sh, g, rd.off, 0, &res[WRK_SLACK],
				    deadline, "a clock read");
		if (ret)
			return ret;
		*read_posted = 1;
	}
	return 0;
}

/*
 * The error text as a wait found it. A loss check sets its text, but the
 * read after it decides (the lost worker may have arrived first): a wait
 * that then succeeds puts the text back, so rdps_errmsg() never describes
 * a failure that did not happen.
 */
struct wrk_errtext {
	char s[512];
	int saved;
};

static void wrk_err_save(struct wrk_errtext *e)
{
	if (!e->saved)
		snprintf(e->s, sizeof(e->s), "%s", rdps_errmsg());
	e->saved = 1;
}

/* 0, with the text as it was before the first loss check. */
static int wrk_err_restore(const struct wrk_errtext *e)
{
	if (e->saved && strcmp(e->s, rdps_errmsg()))
		rdps_set_error(0, "%s", e->s);
	return 0;
}

/*
 * The back-off before the clock tree wait's attempt-th re-read, its tick
 * begun at t0 (ns). Its waiters read their group's word (the flat
 * counter's once read shard 0's alike), and reads there delay the
 * fetch-adds they wait for, so the count must grow slowly with the wait:
 * wrk_backoff's tries (two at once, four after a yield, then sleeps of 10
 * us doubling every second try up to 1 ms), and past 8 ms a sleep of an
 * eighth of the wait so far (no more than 12.5% late) up to
 * WRK_CLOCK_SLEEP_MAX_NS instead of one per ms. So a wait of T reads about
 * 6 + 2 log2(T / 10 us) times up to 1 ms, once per ms up to 8 ms, 6 more
 * per doubling up to 128 ms, then once per 16 ms: that cap keeps
 * wrk_lost_check's header read (every 16th try) within 256 ms, about the
 * shards' shortest heartbeat interval, the soonest a loss can be known.
 * The fast tries stay: fewer cost a sleep, and the timer's slack (50 us)
 * with it, on every wait longer than a round trip or two (a 1,024-worker
 * clock tree's release, in rdps-sim, 32 to 78 us). tests/
 * test_clock_reads.c holds the count to that.
 */
#define WRK_CLOCK_SLEEP_MAX_NS (16 * 1000000ull)

static int wrk_clock_backoff(struct rdps_ctx *ctx, unsigned attempt,
			     uint64_t t0)
{
	uint64_t want;
	struct timespec ts = {0, 0};
	int ret = wrk_backoff(ctx, attempt);

	/* From try 20 on, wrk_backoff sleeps 1 ms. */
	if (ret || attempt < 20 || ctx->tp->cfg.poll_mode == RDPS_TP_POLL_BUSY)
		return ret;
	want = (rdps_now_ns() - t0) / 8;
	if (want > WRK_CLOCK_SLEEP_MAX_NS)
		want = WRK_CLOCK_SLEEP_MAX_NS;
	if (want <= 1000000)
		return 0;
	ts.tv_nsec = (long)(want - 1000000);
	nanosleep(&ts, NULL);
	return 0;
}

/* The error of a wait on rd that timed out: no worker moved for a whole
 * timeout (wrk_stall_check). */
static int wrk_stall_error(const struct rdps_ctx *ctx,
			   const struct wrk_round *rd)
{
	unsigned long long ms = ctx->timeout_ns / 1000000;

	if (rd->barrier)
		return rdps_set_error(-ETIMEDOUT,
				      "timed out after %llu ms without a clock "
				      "or barrier of any worker in barrier "
				      "%llu: not every worker arrived",
				      ms, (unsigned long long)rd->no);
	return rdps_set_error(-ETIMEDOUT,
			      "timed out after %llu ms without a clock or "
			      "barrier of any worker, waiting for all %u "
			      "workers to finish clock %llu",
			      ms, ctx->workers, (unsigned long long)rd->no);
}

/*
 * The waits on the flat counter (ps_proto.h, "Waking waiters"): once
 * the count seen with the tick (the fetch-add's, or SSP's slack read)
 * says the round is not complete, a bounded read phase (below), then one
 * PS_WAIT to the shard and a sleep on the completion queue (the
 * transport's adaptive or event wait) until its PS_RELEASE, which says
 * the round is complete (the shard read the words) or wakes the waiter
 * to read and check. So a wait costs at most WRK_CLOCK_READS reads and
 * one PS_WAIT however long it lasts and however many wait: the read
 * storm of W waiters on one word, which delayed the fetch-adds they
 * waited for, is gone.
 * The read phase: where a READ costs the shard no CPU
 * (RDPS_TP_CAP_READ_OFFLOAD, verbs: the NIC answers it) while every
 * PS_WAIT and PS_RELEASE costs shard 0's CPU, up to WRK_CLOCK_READS
 * re-reads spaced by wrk_backoff's tries that do not sleep (two at once,
 * four after a yield): a round whose last worker is a round trip or a
 * few behind costs the shard nothing. A sleep's overshoot (the timer's
 * slack, 50 us) would outlast the release it waits for: no more tries.
 * rdps-sim connectx, S = 16, flat, W = 8 / 16 / 32, with 0 / 2 / 4 / 6 /
 * 8 re-reads: BSP clock alone 6.0 / 13.4 / 28.8 us with none, 5.5 / 8.5
 * / 14.9 with 2 or more; iterations of 100 us with half the workers 5%
 * slower at random, at W = 32, 125 us with 6 or 8 against
 * 138 / 134 / 127 with 0 / 2 / 4; with a tenth twice as slow 8 re-reads
 * cost 255 us against 215 (the sleeps of tries 7 and 8 overshoot).
 * None on tcp (the shard's progress thread answers a READ: it costs the
 * shard as a message does) nor on shm (see README "Scale").
 * Every WRK_WAIT_SAFETY_NS (or half the timeout, if shorter) it also
 * reads the word on its own and runs the loss, stall and timeout checks:
 * a shard that stopped answers nothing.
 */
#define WRK_CLOCK_READS 6
#define WRK_WAIT_SAFETY_NS (100 * 1000000ull)
/* wrk_stall_check's attempt: past its first re-reads, so the first round
 * of the safety reads takes the job's reading. */
#define WRK_STALL_LATE (~0u)

/* The flat wait's re-reads before its PS_WAIT on ctx's transport. */
static unsigned wrk_clock_reads(const struct rdps_ctx *ctx)
{
	if (ctx->clock_reads_set)
		return ctx->clock_reads_set - 1;
	return ctx->tp->ops->caps & RDPS_TP_CAP_READ_OFFLOAD ? WRK_CLOCK_READS
							     : 0;
}

/* Does this worker's END(t) register its wait on shard 0 (server/clock.c
 * srv_end_waits: the same rule)? Then its flat clock wait sends no
 * PS_WAIT; the knob of the read phase does not change it. */
static int wrk_end_waits(const struct rdps_ctx *ctx)
{
	return rdps_model_in_order(ctx->model) && ctx->fanin <= 1 &&
	       ctx->workers > 1 &&
	       !(ctx->tp->ops->caps & RDPS_TP_CAP_READ_OFFLOAD);
}

/* A zero-length put_imm of kind(arg) to sh, not waited for (wr_id 0: its
 * completion is dropped; a broken endpoint shows in sh->err). */
static int wrk_imm_post(struct rdps_ctx *ctx, struct wrk_shard *sh,
			unsigned kind, uint32_t arg, uint64_t deadline,
			const char *what)
{
	int ret;

	if (sh->err)
		return wrk_dead(ctx, sh);
	WRK_POST(ret, ctx, deadline, 0,
		 rdps_tp_put_imm(sh->ep, NULL, 0, ctx->small_mr, 0, NULL,
				 PS_IMM(kind, arg), 0, 0));
	return ret ? wrk_post_fail(ctx, sh, ret, what) : 0;
}

/* This worker's fetch-add (or make-up) completed round arg of shard 0's
 * flat counter: tell the shard, which releases its waiters (nobody
 * waits when this worker is the only one). */
static int wrk_done_post(struct rdps_ctx *ctx, uint32_t arg, uint64_t deadline)
{
	if (ctx->workers < 2 || ctx->fanin > 1)
		return 0;
	return wrk_imm_post(ctx, &ctx->sh[0], PS_DONE, arg, deadline,
			    "a clock done");
}

/* Register a wait for round arg on sh: its PS_RELEASE sets sh->woken. */
static int wrk_wait_post(struct rdps_ctx *ctx, struct wrk_shard *sh,
			 uint32_t arg, uint64_t deadline)
{
	sh->wait_arg = arg;
	sh->waiting = 1;
	sh->woken = 0;
	sh->complete = 0;
	return wrk_imm_post(ctx, sh, PS_WAIT, arg, deadline, "a clock wait");
}

/*
 * Sleep on the completion queue until sh's PS_RELEASE came or the time
 * until (ns) is reached; the wait check every RDPS_WAIT_CHECK_MS. 0, or
 * an error (sh broken, interrupted).
 */
static int wrk_release_wait(struct rdps_ctx *ctx, struct wrk_shard *sh,
			    uint64_t until)
{
	int ret;

	if (ctx->wait_check) {
		ret = wrk_wait_check(ctx, 6); /* arms its timer */
		if (ret)
			return ret;
	}
	for (;;) {
		uint64_t now = rdps_now_ns(), slice = until;

		if (sh->woken || now >= until)
			return 0;
		if (sh->err)
			return wrk_dead(ctx, sh);
		if (ctx->wait_check) {
			ret = wrk_wait_check(ctx, 7);
			if (ret)
				return ret;
			if (now + RDPS_WAIT_CHECK_MS * 1000000ull < slice)
				slice = now + RDPS_WAIT_CHECK_MS * 1000000ull;
		}
		ret = wrk_progress(ctx, slice, 1);
		if (ret < 0 && ret != -ETIMEDOUT)
			return ret;
	}
}

/*
 * Wait until round rd (PS_WAIT argument arg) of the flat counter is
 * complete, the counter landing in res[slot]; a value there already
 * (read_posted: the read posted with the tick, or the fetch-add's count)
 * is looked at first; registered: its END registered the wait
 * (wrk_end_waits), so no PS_WAIT is sent. *t0: when the tick began to
 * wait (ns), read here once it has to read again if it had not (0), so
 * the fast path reads no clock.
 */
static int wrk_word_wait(struct rdps_ctx *ctx, const struct wrk_round *rd,
			 uint32_t arg, unsigned slot, int read_posted,
			 int registered, uint64_t *t0, uint64_t deadline)
{
	uint64_t *res = ctx->small, safety, period = WRK_WAIT_SAFETY_NS;
	struct wrk_shard *sh = rd->sh;
	struct wrk_errtext et; /* only .saved set: no 512-byte clear */
	struct wrk_stall stall = {0, 0};
	uint64_t made = ctx->st.made_up;
	unsigned reads = wrk_clock_reads(ctx), attempt = 0;
	int ret, lost = 0, woken, look = 0;

	et.saved = 0;
	for (;;) {
		if (read_posted && res[slot] >= rd->goal)
			return 0;
		if (!*t0)
			*t0 = rdps_now_ns();
		if (read_posted) {
			if (attempt == reads)
				break;
			ret = wrk_backoff(ctx, attempt++);
			if (ret)
				return ret;
		}
		ret = wrk_clock_op(ctx, sh, rd->off, 0, &res[slot], deadline,
				   "a clock read");
		if (ret)
			return ret;
		read_posted = 1;
	}
	if (period > ctx->timeout_ns / 2)
		period = ctx->timeout_ns / 2;
	/* Registered by its END (wrk_end_waits): its release may be in. */
	ret = registered ? 0 : wrk_wait_post(ctx, sh, arg, deadline);
	safety = rdps_now_ns() + period;
	while (!ret) {
		if (!look)
			ret = wrk_release_wait(
				ctx, sh, safety < deadline ? safety : deadline);
		if (ret)
			break;
		look = 0;
		woken = sh->woken;
		/* The shard read the words: no round trip to read them. */
		if (woken && sh->complete) {
			ret = wrk_err_restore(&et);
			break;
		}
		ret = wrk_clock_op(ctx, sh, rd->off, 0, &res[slot], deadline,
				   "a clock read");
		if (ret)
			break;
		if (res[slot] >= rd->goal) {
			ret = wrk_err_restore(&et);
			break;
		}
		/* A worker that arrived and then left is no reason to fail:
		 * the read after learning of it decides. */
		if (lost) {
			ret = lost;
			break;
		}
		/* Woken with the round incomplete (a worker gone, the shard
		 * stopping), or the safety read: the loss checks now. */
		wrk_err_save(&et);
		lost = wrk_lost_check(ctx, 15, deadline, rd, res[slot]);
		if (ctx->st.made_up != made) {
			/* This make-up completed the round: release the
			 * others as its last fetch-add would have. */
			made = ctx->st.made_up;
			ret = wrk_done_post(ctx, arg, deadline);
			look = 1;
			continue;
		}
		if (lost) {
			look = 1;
			continue;
		}
		ret = wrk_stall_check(ctx, &stall, WRK_STALL_LATE, &deadline);
		if (ret > 0)
			ret = wrk_stall_error(ctx, rd);
		if (!ret && woken)
			ret = wrk_wait_post(ctx, sh, arg, deadline);
		safety = rdps_now_ns() + period;
	}
	sh->waiting = 0;
	return ret;
}

/*
 * The clock tree's wait until every worker finished clock c: read its
 * group's release word again, with back-off (wrk_clock_backoff), until it
 * is complete; a read posted with the tick (read_posted) is looked at
 * first. While it drags on, look for lost
 * workers (wrk_lost_check). *t0: when the tick began to wait (ns), read
 * here once it has to read again if it had not (0), so the fast path reads
 * no clock.
 */
static int wrk_slack_wait(struct rdps_ctx *ctx, uint64_t c, int read_posted,
			  uint64_t *t0, uint64_t deadline)
{
	uint64_t *res = ctx->small;
	struct wrk_round rd = wrk_clock_round(ctx, c);
	struct wrk_errtext et; /* only .saved set: no 512-byte clear */
	struct wrk_stall stall = {0, 0};
	unsigned attempt = 0;
	int ret, lost = 0;

	et.saved = 0;
	for (;;) {
		/* Flat: ps_clock_done(); tree: released. */
		if (read_posted && res[WRK_SLACK] >= rd.goal)
			return wrk_err_restore(&et);
		if (!*t0)
			*t0 = rdps_now_ns();
		if (read_posted) {
			ret = wrk_stall_check(ctx, &stall, attempt, &deadline);
			if (ret < 0)
				return ret;
			if (ret)
				return wrk_stall_error(ctx, &rd);
			ret = wrk_clock_backoff(ctx, attempt++, *t0);
			if (ret)
				return ret;
			wrk_err_save(&et);
			lost = wrk_lost_check(ctx, attempt, deadline, &rd,
					      res[WRK_SLACK]);
		}
		ret = wrk_clock_op(ctx, rd.sh, rd.off, 0, &res[WRK_SLACK],
				   deadline, "a clock read");
		if (ret)
			return ret;
		read_posted = 1;
		/* A worker that arrived and then left is no reason to fail:
		 * the read after learning of it decides. */
		if (lost && res[WRK_SLACK] < rd.goal)
			return lost;
	}
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
	int ret, check, read_posted = 0, last;

	if (!ctx)
		return rdps_set_error(-EINVAL, "rdps_clock: null context");
	/* A tick that never waits reads no clock (~20 ns, a third of a
	 * tick on shm): its deadline, of a timeout of seconds, from the
	 * coarse clock; the wait's start (for clock_wait_ns and the
	 * back-off by the wait's length) once it is known to wait. */
	t0 = 0;
	deadline = rdps_now_coarse_ns() + ctx->timeout_ns;
	res = ctx->small;
	/* Before the END that registers this wait: its PS_RELEASE may come
	 * before the fetch-add's answer. */
	if (wrk_end_waits(ctx)) {
		ctx->sh[0].wait_arg = t & PS_WAIT_MASK;
		ctx->sh[0].waiting = 1;
		ctx->sh[0].woken = 0;
		ctx->sh[0].complete = 0;
	}
	/* Clocks before the job's start (a resumed job) are complete. */
	check = ctx->model != RDPS_MODEL_ASP && t >= ctx->slack &&
		t - ctx->slack >= ctx->clock0;
	c = check ? t - ctx->slack : 0;
	ret = wrk_tick_post(ctx, &g, t, c, check, deadline, &read_posted);
	/* One plain poll first (shm completes at post): the time of a tick
	 * that never blocks is not worth two clock readings. */
	if (!ret && g.left)
		ret = wrk_progress(ctx, deadline, 0);
	if (ret < 0) {
		/* Operations already posted point at g. */
		if (g.left)
			wrk_grp_wait(ctx, &g, deadline, "the clock's ends");
		goto out;
	}
	if (g.left)
		t0 = rdps_now_ns();
	ret = wrk_grp_wait(ctx, &g, deadline, "the clock's end and fetch-add");
	if (ret)
		goto out;
	if (ctx->fanin > 1)
		/* ASP never waits: nobody reads a release. */
		ret = wrk_tree_up(
			ctx, (t - ctx->clock0) % ctx->k * 8,
			ps_tree_round(t, ctx->clock0, ctx->k), WRK_FADD,
			offsetof(struct ps_clock_node, release),
			ctx->model != RDPS_MODEL_ASP, deadline, &last);
	else
		last = ps_clock_last(res[WRK_FADD], t, ctx->k, ctx->workers);
	if (ret)
		goto out;
	ctx->last_arrivals += last;
	ctx->clock = t + 1;
	ctx->st.clocks++;
	/* Whoever completed clock t knows every clock up to it is: the
	 * slowest worker of an SSP job never reads a counter. */
	if (last) {
		ctx->done_clock = t + 1;
		/* ASP never waits: nobody to release. */
		if (ctx->model != RDPS_MODEL_ASP)
			ret = wrk_done_post(ctx, t & PS_WAIT_MASK, deadline);
	}
	if (!ret && check && c >= ctx->done_clock) {
		if (ctx->fanin > 1) {
			ret = wrk_slack_wait(ctx, c, read_posted, &t0,
					     deadline);
		} else {
			struct wrk_round rd = wrk_clock_round(ctx, c);

			/* BSP (c == t): the fetch-add's count is a read. */
			if (c == t) {
				res[WRK_SLACK] = res[WRK_FADD] + 1;
				read_posted = 1;
			}
			ret = wrk_word_wait(ctx, &rd, c & PS_WAIT_MASK,
					    WRK_SLACK, read_posted,
					    c == t && wrk_end_waits(ctx), &t0,
					    deadline);
		}
		if (!ret)
			ctx->done_clock = c + 1;
	}
out:
	/* A release of a wait no longer waited for is stale. */
	ctx->sh[0].waiting = 0;
	if (t0)
		ctx->st.clock_wait_ns += rdps_now_ns() - t0;
	return ret;
}

/* The round of this worker's latest barrier: its counter at off of sh's
 * clock region, complete at goal. */
static struct wrk_round wrk_barrier_round(const struct rdps_ctx *ctx,
					  struct wrk_shard *sh, uint64_t off,
					  uint64_t goal)
{
	struct wrk_round rd = {
		.off = off,
		.goal = goal,
		.words_off = ps_wbar_off(ctx->workers, 0),
		.need = ctx->barriers,
		.what = "the barrier",
		.no = ctx->barriers,
		.barrier = 1,
		.sh = sh,
	};

	return rd;
}

/*
 * The clock tree's barrier wait: until all workers arrived at the barrier
 * counted at off (goal), re-reading it with back-off; while it drags on,
 * look for lost workers.
 */
static int wrk_barrier_wait(struct rdps_ctx *ctx, struct wrk_shard *sh,
			    uint64_t off, uint64_t goal, uint64_t deadline)
{
	uint64_t *res = ctx->small;
	struct wrk_round rd = wrk_barrier_round(ctx, sh, off, goal);
	struct wrk_errtext et; /* only .saved set: no 512-byte clear */
	struct wrk_stall stall = {0, 0};
	unsigned attempt = 0;
	int ret, lost;

	et.saved = 0;
	for (;;) {
		ret = wrk_backoff(ctx, attempt++);
		if (ret)
			return ret;
		wrk_err_save(&et);
		lost = wrk_lost_check(ctx, attempt, deadline, &rd,
				      res[WRK_BARRIER]);
		ret = wrk_clock_op(ctx, sh, off, 0, &res[WRK_BARRIER], deadline,
				   "a barrier read");
		if (ret)
			return ret;
		if (lost && res[WRK_BARRIER] < goal)
			return lost;
		if (res[WRK_BARRIER] >= goal)
			return wrk_err_restore(&et);
		ret = wrk_stall_check(ctx, &stall, attempt, &deadline);
		if (ret < 0)
			return ret;
		if (ret)
			return wrk_stall_error(ctx, &rd);
	}
}

int rdps_barrier(struct rdps_ctx *ctx)
{
	uint64_t *res, deadline, goal, t0 = 0;
	uint64_t off = offsetof(struct ps_clock_table, barrier);
	struct wrk_shard *sh;
	struct wrk_grp g = {0, 0, 0};
	struct wrk_round rd;
	uint32_t arg;
	int ret, done;

	if (!ctx)
		return rdps_set_error(-EINVAL, "rdps_barrier: null context");
	deadline = wrk_deadline(ctx);
	res = ctx->small;
	sh = &ctx->sh[0];
	if (ctx->fanin > 1) {
		sh = ctx->grp_sh;
		off = ctx->grp_off + offsetof(struct ps_clock_node, barrier);
	}
	ret = wrk_word_post(ctx, sh, &g, off, 1, &res[WRK_BARRIER], deadline,
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
	if (ctx->fanin > 1) {
		ret = wrk_tree_up(ctx, offsetof(struct ps_clock_node, barrier),
				  ctx->barriers, WRK_BARRIER,
				  offsetof(struct ps_clock_node, bar_release),
				  1, deadline, &done);
		if (ret || done)
			return ret;
		return wrk_barrier_wait(
			ctx, sh,
			ctx->grp_off +
				offsetof(struct ps_clock_node, bar_release),
			ctx->barriers, deadline);
	}
	goal = (uint64_t)ctx->workers * ctx->barriers;
	arg = PS_WAIT_BARRIER | (ctx->barriers & PS_WAIT_MASK);
	if (res[WRK_BARRIER] + 1 >= goal)
		return wrk_done_post(ctx, arg, deadline);
	/* The fetch-add's count is the first read. */
	res[WRK_BARRIER]++;
	rd = wrk_barrier_round(ctx, sh, off, goal);
	return wrk_word_wait(ctx, &rd, arg, WRK_BARRIER, 1, 0, &t0, deadline);
}
