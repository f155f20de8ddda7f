/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the worker client of the parameter server: connects to every
 * shard, pulls with one-sided reads, pushes through sub-slots with
 * write-with-immediate, keeps its clock with fetch-add on shard 0's clock
 * table. The layout and protocol are ps_proto.h's.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ps_proto.h"
#include "pulse.h"
#include "rdps_base.h"
#include "transport.h"

#define WRK_PAGE 4096u
/* Landing spots in the small buffer (more at rdps_cut): */
#define WRK_OWN 5    /* fetch-add of this worker's own clock word */
#define WRK_MAKEUP 6 /* wrk_makeup's compare-swap */
/* wr_id of a push's put_imm: odd, so it never looks like a group pointer. */
#define WRK_WR_PUSH(shard, k) ((((uint64_t)(shard) << 8 | (k)) << 1) | 1)

/* A set of posted operations waited for together (wr_id = its address). */
struct wrk_grp {
	int left;
	int status; /* first failure, enum rdps_tp_status */
	unsigned shard;
};

struct wrk_shard {
	unsigned idx;
	const char *url;
	struct rdps_tp_ep *ep;
	struct rdps_tp_rkey dir_key;
	struct rdps_tp_rkey slots_key;
	struct rdps_tp_rkey clock_key; /* shard 0 only */
	uint64_t slot_bytes;
	unsigned nslots;
	int welcomed;
	uint32_t welcome_status;
	/* Sub-slot ring: the oldest outstanding is head, the next free is
	 * (head + inflight) % nslots. */
	unsigned head, inflight;
	uint8_t put_busy[PS_NSLOTS]; /* put_imm posted, completion not seen */
	char *stage;		     /* nslots * slot_bytes, in ctx->stage */
	int nack_err;		     /* first NACK errno not reported yet */
	int err;		     /* sticky: the endpoint is unusable */
	uint64_t hb_seen, hb_since;  /* its heartbeat, and since when (ns) */
	unsigned hb_ms;		     /* its period (0: no liveness checks) */
	/* The directory-header read in flight (it may outlive the wait
	 * that posted it when the shard does not answer), and its post. */
	struct wrk_grp hdr_grp;
	uint64_t hdr_posted;
};

struct wrk_part {
	uint32_t index; /* in this shard's directory */
	uint64_t lo, hi;
	struct rdps_tp_rkey params;
};

/* A buffer of rdps_buf_alloc(): pulls land in it directly. */
struct wrk_ubuf {
	char *addr;
	size_t len;
	struct rdps_tp_mr *mr;
};

struct rdps_table {
	struct rdps_ctx *ctx;
	struct rdps_table *next;
	char name[RDPS_TABLE_NAME_MAX + 1];
	uint64_t n;
	unsigned esz;
	enum rdps_dtype dtype;
	struct wrk_part *part; /* per shard */
};

struct rdps_ctx {
	char *shards_buf;
	unsigned nshards, workers, rank, slack, k;
	enum rdps_model model;
	uint64_t timeout_ns;
	struct rdps_tp *tp;
	struct wrk_shard *sh;

	void *reply;
	size_t reply_len;
	struct rdps_tp_mr *reply_mr;
	/* 64 B of clock words, then a header per shard for pulls, then
	 * one per shard for heartbeat probes (wrk_hdrs, wrk_probe_hdr). */
	void *small;
	size_t small_len;
	struct rdps_tp_mr *small_mr;
	void *stage; /* push staging: every shard's sub-slots */
	size_t stage_len;
	struct rdps_tp_mr *stage_mr;
	void *bounce; /* pull landing area, grown on demand */
	size_t bounce_len;
	struct rdps_tp_mr *bounce_mr;
	void *scratch; /* sparse bookkeeping, plain heap */
	size_t scratch_len;
	struct wrk_ubuf *ubuf; /* rdps_buf_alloc() buffers, unordered */
	unsigned n_ubuf, cap_ubuf;

	uint64_t clock, barriers, last_arrivals;
	int ready; /* rdps_ctx_create() succeeded */
	/* A wait gave up with operations in flight that point at its
	 * (gone) group: no completion may be dispatched any more. */
	int broken;
	enum rdps_on_loss on_loss;
	unsigned gone_seen; /* shard 0's gone_count as last read */
	/* Bumps the u64 after the welcomes in the reply region. */
	struct rdps_pulse pulse;
	/* A-BSP: the cut word as last read, and its read in flight. */
	uint64_t cut_seen;
	struct wrk_grp cut_grp;
	struct rdps_stats st;
	struct rdps_table *tables;
};

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

/* Completions ----------------------------------------------------------- */

static int wrk_dead(struct rdps_ctx *ctx, struct wrk_shard *sh)
{
	return rdps_set_error(sh->err,
			      "connection to shard %u (%s) is broken: %s; "
			      "check that rdps-server is still running",
			      sh->idx, sh->url,
			      sh->err == -ECONNRESET ? "reset"
						     : "protocol "
						       "error");
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
	default:
		rdps_warn("shard %u: unexpected immediate 0x%x", sh->idx, imm);
		break;
	}
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
		unsigned s = (unsigned)(c->wr_id >> 9);
		unsigned k = (unsigned)(c->wr_id >> 1) & 0xff;

		if (s >= ctx->nshards || k >= PS_NSLOTS)
			return;
		sh = &ctx->sh[s];
		sh->put_busy[k] = 0;
		if (c->status != RDPS_TP_WC_SUCCESS && !sh->err)
			sh->err = c->status == RDPS_TP_WC_CONN_ERR ||
						  c->status ==
							  RDPS_TP_WC_FLUSH_ERR
					  ? -ECONNRESET
					  : -EPROTO;
		return;
	}
	if (c->wr_id) {
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
}

/*
 * Move completions along: wait (up to the deadline) for at least one when
 * block, else only poll. -ETIMEDOUT past the deadline (no message: the
 * caller names what it waited for).
 */
static int wrk_progress(struct rdps_ctx *ctx, uint64_t deadline, int block)
{
	struct rdps_tp_comp comps[32];
	int n;

	/* Completions may point at the groups of waits that gave up. */
	if (ctx->broken)
		return rdps_set_error(ctx->broken,
				      "this context gave up on operations that "
				      "never completed (%s): destroy it and "
				      "start over",
				      strerror(-ctx->broken));

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

static uint64_t wrk_deadline(const struct rdps_ctx *ctx)
{
	return rdps_now_ns() + ctx->timeout_ns;
}

static int wrk_timeout(const struct rdps_ctx *ctx, const char *what)
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
static int wrk_post_wait(struct rdps_ctx *ctx, uint64_t deadline)
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

/* Post with retry while the queues are full. */
#define WRK_POST(ret, ctx, deadline, call)                        \
	do {                                                      \
		for (;;) {                                        \
			(ret) = (call);                           \
			if ((ret) != -EAGAIN)                     \
				break;                            \
			(ret) = wrk_post_wait((ctx), (deadline)); \
			if ((ret) < 0)                            \
				break;                            \
		}                                                 \
	} while (0)

static int wrk_post_fail(struct rdps_ctx *ctx, struct wrk_shard *sh, int ret,
			 const char *what)
{
	if (ret == -ETIMEDOUT)
		return wrk_timeout(ctx, what);
	if (ret == -ENOTCONN || ret == -ECONNRESET) {
		sh->err = -ECONNRESET;
		return wrk_dead(ctx, sh);
	}
	return rdps_set_error(ret, "posting %s to shard %u (%s) failed: %s",
			      what, sh->idx, sh->url, strerror(-ret));
}

static int wrk_probe_all(struct rdps_ctx *ctx, uint64_t deadline);

/*
 * Wait until every operation of g completed; report the first failure.
 * Every 100 ms without a completion, look at every shard's heartbeat: a
 * stopped shard ends the wait with its name, not at the deadline.
 */
static int wrk_grp_wait(struct rdps_ctx *ctx, struct wrk_grp *g,
			uint64_t deadline, const char *what)
{
	int ret;

	/* Transports that complete at post time (shm) need no blocking
	 * wait: one plain poll spares rdps_tp_wait()'s clock readings. */
	if (g->left > 0) {
		ret = wrk_progress(ctx, deadline, 0);
		if (ret < 0)
			return ret;
	}
	while (g->left > 0) {
		uint64_t until = rdps_now_ns() + 100000000ull;

		if (until > deadline)
			until = deadline;
		ret = wrk_progress(ctx, until, 1);
		if (ret == -ETIMEDOUT && until < deadline)
			ret = wrk_probe_all(ctx, deadline);
		else if (ret == -ETIMEDOUT)
			ret = wrk_timeout(ctx, what);
		if (ret < 0) {
			/* Operations still posted point at g: drain them
			 * before g goes out of scope, else nothing may
			 * dispatch completions any more. */
			uint64_t grace = rdps_now_ns() + 1000000000ull;

			/* (A stopped shard will not answer them.) */
			while (g->left > 0 && !ctx->broken &&
			       ret != -EHOSTDOWN &&
			       wrk_progress(ctx, grace, 1) >= 0)
				;
			if (g->left > 0)
				ctx->broken = ret;
			return ret;
		}
	}
	if (g->status) {
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
	return 0;
}

/* Back off between re-reads: spin, then yield, then short sleeps (not in
 * busy polling mode, which may keep the core). */
static void wrk_backoff(struct rdps_ctx *ctx, unsigned attempt)
{
	struct timespec ts = {0, 0};
	unsigned us;

	if (attempt < 4)
		return;
	if (attempt < 16 || ctx->tp->cfg.poll_mode == RDPS_TP_POLL_BUSY) {
		sched_yield();
		return;
	}
	us = 10u << ((attempt - 16) / 4 < 7 ? (attempt - 16) / 4 : 7);
	if (us > 1000)
		us = 1000;
	ts.tv_nsec = (long)us * 1000;
	nanosleep(&ts, NULL);
}

/* Local memory ---------------------------------------------------------- */

static void wrk_mem_put(struct rdps_ctx *ctx, void **addr, size_t *len,
			struct rdps_tp_mr **mr)
{
	if (*mr)
		rdps_tp_mem_dereg(*mr);
	if (*addr)
		rdps_tp_mem_free(ctx->tp, *addr, *len);
	*mr = NULL;
	*addr = NULL;
	*len = 0;
}

static int wrk_mem_get(struct rdps_ctx *ctx, size_t len, unsigned access,
		       void **addr, size_t *len_out, struct rdps_tp_mr **mr,
		       const char *what)
{
	void *p;
	int ret;

	len = (len + WRK_PAGE - 1) / WRK_PAGE * WRK_PAGE;
	ret = rdps_tp_mem_alloc(ctx->tp, len, &p);
	if (ret)
		return rdps_set_error(ret,
				      "allocating %zu bytes for the %s failed: "
				      "%s",
				      len, what, strerror(-ret));
	ret = rdps_tp_mem_reg(ctx->tp, p, len, access, mr);
	if (ret) {
		rdps_tp_mem_free(ctx->tp, p, len);
		return rdps_set_error(ret,
				      "registering %zu bytes for the %s "
				      "failed: %s",
				      len, what, strerror(-ret));
	}
	*addr = p;
	*len_out = len;
	return 0;
}

static int wrk_bounce(struct rdps_ctx *ctx, size_t len)
{
	size_t want = ctx->bounce_len ? ctx->bounce_len : 1u << 16;

	if (len <= ctx->bounce_len)
		return 0;
	while (want < len)
		want *= 2;
	wrk_mem_put(ctx, &ctx->bounce, &ctx->bounce_len, &ctx->bounce_mr);
	return wrk_mem_get(ctx, want, RDPS_TP_ACCESS_LOCAL, &ctx->bounce,
			   &ctx->bounce_len, &ctx->bounce_mr, "pull buffer");
}

static void *wrk_scratch(struct rdps_ctx *ctx, size_t len)
{
	void *p;

	if (len <= ctx->scratch_len)
		return ctx->scratch;
	p = realloc(ctx->scratch, len);
	if (!p) {
		rdps_set_error(-ENOMEM, "out of memory (%zu bytes)", len);
		return NULL;
	}
	ctx->scratch = p;
	ctx->scratch_len = len;
	return p;
}

void *rdps_buf_alloc(struct rdps_ctx *ctx, size_t bytes)
{
	struct wrk_ubuf *u;
	void *addr;
	int ret;

	if (!ctx) {
		rdps_set_error(-EINVAL, "rdps_buf_alloc: null context");
		return NULL;
	}
	if (!bytes || bytes > SIZE_MAX - WRK_PAGE) {
		rdps_set_error(-EINVAL,
			       "rdps_buf_alloc: bad size %zu: 1 byte or more, "
			       "below SIZE_MAX - %u",
			       bytes, WRK_PAGE);
		return NULL;
	}
	if (ctx->n_ubuf == ctx->cap_ubuf) {
		unsigned cap = ctx->cap_ubuf ? ctx->cap_ubuf * 2 : 8;

		u = realloc(ctx->ubuf, cap * sizeof(*u));
		if (!u) {
			rdps_set_error(-ENOMEM, "out of memory");
			return NULL;
		}
		ctx->ubuf = u;
		ctx->cap_ubuf = cap;
	}
	u = &ctx->ubuf[ctx->n_ubuf];
	memset(u, 0, sizeof(*u));
	ret = wrk_mem_get(ctx, bytes, RDPS_TP_ACCESS_LOCAL, &addr, &u->len,
			  &u->mr, "user buffer (rdps_buf_alloc)");
	if (ret)
		return NULL;
	u->addr = addr;
	ctx->n_ubuf++;
	return addr;
}

void rdps_buf_free(struct rdps_ctx *ctx, void *buf)
{
	if (!ctx || !buf)
		return;
	for (unsigned i = 0; i < ctx->n_ubuf; i++) {
		struct wrk_ubuf *u = &ctx->ubuf[i];
		void *addr = u->addr;

		if (addr != buf)
			continue;
		wrk_mem_put(ctx, &addr, &u->len, &u->mr);
		ctx->ubuf[i] = ctx->ubuf[--ctx->n_ubuf];
		return;
	}
	rdps_warn("rdps_buf_free: %p is not a buffer of rdps_buf_alloc() on "
		  "this context; ignored",
		  buf);
}

/* The rdps_buf_alloc() buffer holding [p, p + len), or NULL. */
static const struct wrk_ubuf *wrk_ubuf_find(const struct rdps_ctx *ctx,
					    const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned i = 0; i < ctx->n_ubuf; i++) {
		const struct wrk_ubuf *u = &ctx->ubuf[i];
		uintptr_t b = (uintptr_t)u->addr;

		if (a >= b && len <= u->len && a - b <= u->len - len)
			return u;
	}
	return NULL;
}

/* Sub-slots ------------------------------------------------------------- */

/*
 * A shard's heartbeat as just read in its directory header h: 0 while it
 * moves, else the error for a shard whose count stood still for two of its
 * intervals (stopped or hung: its connection may look fine).
 */
static int wrk_hb_check(struct rdps_ctx *ctx, struct wrk_shard *sh,
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

/* Header landing spots of pulls live in the small buffer after the clock
 * words. */
static struct ps_dir_hdr *wrk_hdrs(struct rdps_ctx *ctx)
{
	return (struct ps_dir_hdr *)((char *)ctx->small + 64);
}

/* Those of heartbeat probes come after: a probe in the middle of a pull
 * must not overwrite the header the pull read before its data (a newer
 * applied_clock would vouch for older data). */
static struct ps_dir_hdr *wrk_probe_hdr(struct rdps_ctx *ctx, unsigned s)
{
	return wrk_hdrs(ctx) + ctx->nshards + s;
}

/*
 * Read shard sh's directory header into its landing spot: *h_out. A shard
 * that leaves the read unanswered for two heartbeats is stopped (over tcp
 * its process serves reads): -EHOSTDOWN. The read then stays posted, and
 * the next call waits for it instead of posting another.
 */
static int wrk_hdr_read(struct rdps_ctx *ctx, struct wrk_shard *sh,
			uint64_t deadline, struct ps_dir_hdr **h_out)
{
	struct ps_dir_hdr *h = wrk_probe_hdr(ctx, sh->idx);
	struct wrk_grp *g = &sh->hdr_grp;
	uint64_t by;
	int ret;

	if (sh->err)
		return wrk_dead(ctx, sh);
	if (!g->left) {
		*g = (struct wrk_grp){0, 0, sh->idx};
		WRK_POST(ret, ctx, deadline,
			 rdps_tp_get(sh->ep, h, sizeof(*h), ctx->small_mr,
				     sh->dir_key.addr, &sh->dir_key,
				     (uintptr_t)g, 0));
		if (ret)
			return wrk_post_fail(ctx, sh, ret, "a directory read");
		g->left = 1;
		sh->hdr_posted = rdps_now_ns();
	}
	by = sh->hb_ms ? sh->hdr_posted + 2ull * sh->hb_ms * 1000000ull
		       : deadline;
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
	*h_out = h;
	/* Done: this only looks at its status. */
	return wrk_grp_wait(ctx, g, deadline, "a directory read");
}

static int wrk_hb_probe(struct rdps_ctx *ctx, struct wrk_shard *sh,
			uint64_t deadline)
{
	struct ps_dir_hdr *h;
	int ret = wrk_hdr_read(ctx, sh, deadline, &h);

	return ret ? ret : wrk_hb_check(ctx, sh, h);
}

static int wrk_probe_all(struct rdps_ctx *ctx, uint64_t deadline)
{
	for (unsigned s = 0; s < ctx->nshards; s++) {
		int ret = wrk_hb_probe(ctx, &ctx->sh[s], deadline);

		if (ret)
			return ret;
	}
	return 0;
}

/* One slice of a wait on shard sh: block for completions up to 100 ms,
 * then look at its heartbeat. -ETIMEDOUT only at the deadline. */
static int wrk_wait_on(struct rdps_ctx *ctx, struct wrk_shard *sh,
		       uint64_t deadline)
{
	uint64_t until = rdps_now_ns() + 100000000ull;
	int ret;

	if (until > deadline)
		until = deadline;
	ret = wrk_progress(ctx, until, 1);
	if (ret == -ETIMEDOUT && until < deadline)
		return wrk_hb_probe(ctx, sh, deadline);
	return ret;
}

/* Wait for a free sub-slot of sh whose staging buffer is idle. */
static int wrk_slot_get(struct rdps_ctx *ctx, struct wrk_shard *sh,
			uint64_t deadline, unsigned *k_out)
{
	unsigned k;
	int ret;

	for (;;) {
		if (sh->err)
			return wrk_dead(ctx, sh);
		k = (sh->head + sh->inflight) % sh->nslots;
		if (sh->inflight < sh->nslots && !sh->put_busy[k])
			break;
		ret = wrk_wait_on(ctx, sh, deadline);
		if (ret == -ETIMEDOUT)
			return rdps_set_error(
				-ETIMEDOUT,
				"timed out waiting for a credit from shard %u "
				"(%s): the shard stopped applying updates",
				sh->idx, sh->url);
		if (ret < 0)
			return ret;
	}
	*k_out = k;
	return 0;
}

/* Send the message staged in sub-slot k (header + payload bytes). */
static int wrk_slot_send(struct rdps_ctx *ctx, struct wrk_shard *sh, unsigned k,
			 uint32_t kind, size_t len, uint64_t deadline)
{
	char *buf = sh->stage + (size_t)k * sh->slot_bytes;
	int ret;

	WRK_POST(ret, ctx, deadline,
		 rdps_tp_put_imm(sh->ep, buf, len, ctx->stage_mr,
				 sh->slots_key.addr + k * sh->slot_bytes,
				 &sh->slots_key, PS_IMM(kind, k),
				 WRK_WR_PUSH(sh->idx, k), 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a message");
	sh->put_busy[k] = 1;
	sh->inflight++;
	return 0;
}

/* Wait until every message sent to the shards in mask got its reply; a
 * NACK becomes the return value. */
static int wrk_slots_drain(struct rdps_ctx *ctx, const uint8_t *mask,
			   uint64_t deadline, const char *what)
{
	int ret = 0;

	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		if (mask && !mask[s])
			continue;
		while (sh->inflight) {
			if (sh->err)
				return wrk_dead(ctx, sh);
			ret = wrk_wait_on(ctx, sh, deadline);
			if (ret == -ETIMEDOUT)
				return rdps_set_error(
					-ETIMEDOUT,
					"timed out waiting for shard %u (%s) "
					"to apply %s",
					sh->idx, sh->url, what);
			if (ret < 0)
				return ret;
		}
	}
	/* Every shard involved may have refused (a table creation goes to
	 * all): clear each, report the first, or a later push inherits it. */
	ret = 0;
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];
		int e = sh->nack_err;

		if ((mask && !mask[s]) || !e)
			continue;
		sh->nack_err = 0;
		if (!ret)
			ret = rdps_set_error(
				-e,
				"shard %u (%s) refused %s: %s (see "
				"the shard's log)",
				sh->idx, sh->url, what, strerror(e));
	}
	return ret;
}

/* Context --------------------------------------------------------------- */

static int wrk_check_cfg(const struct rdps_config *cfg, unsigned *nshards)
{
	struct rdps_url u0, u;
	const char *p, *comma;
	char url[512];
	unsigned n = 0;
	size_t len;
	int ret;

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
	if (cfg->on_worker_loss == RDPS_LOSS_CONTINUE &&
	    rdps_model_in_order(cfg->model))
		return rdps_set_error(-EINVAL,
				      "on_worker_loss continue with model %s: "
				      "its results need every worker's "
				      "updates; use ssp or asp, or resume "
				      "from a checkpoint instead",
				      rdps_model_name(cfg->model));
	for (p = cfg->shards;; p = comma + 1) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (!len || len >= sizeof(url))
			return rdps_set_error(-EINVAL,
					      "bad shard list '%s': shard %u's "
					      "url is %s",
					      cfg->shards, n,
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

static int wrk_connect(struct rdps_ctx *ctx, struct wrk_shard *sh, int ms)
{
	struct ps_whello wh;
	struct ps_lhello lh;
	int ret;

	memset(&wh, 0, sizeof(wh));
	wh.magic_be = rdps_htobe32(PS_MAGIC_WORKER);
	wh.rank_be = __builtin_bswap16((uint16_t)ctx->rank);
	wh.workers_be = __builtin_bswap16((uint16_t)ctx->workers);
	rdps_tp_rkey_pack(ctx->reply_mr, &wh.reply);
	ret = rdps_tp_connect(ctx->tp, sh->url, &wh, sizeof(wh), &sh->ep, ms);
	if (ret)
		return wrk_wrap(ret, "connecting to shard %u", sh->idx);
	sh->ep->user = sh;
	if (sh->ep->peer_priv_len < sizeof(lh))
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) sent %u bytes of hello, "
				      "expected %zu: is it an rdps-server?",
				      sh->idx, sh->url, sh->ep->peer_priv_len,
				      sizeof(lh));
	memcpy(&lh, sh->ep->peer_priv, sizeof(lh));
	if (rdps_be32toh(lh.magic_be) != PS_MAGIC_LISTENER)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) sent a bad hello magic "
				      "0x%x: is it an rdps-server?",
				      sh->idx, sh->url,
				      rdps_be32toh(lh.magic_be));
	if (__builtin_bswap16(lh.shard_be) != sh->idx ||
	    __builtin_bswap16(lh.nshards_be) != ctx->nshards)
		return rdps_set_error(
			-EINVAL,
			"url %s is shard %u of %u but is listed as shard %u of "
			"%u: list the shard urls in shard order",
			sh->url, __builtin_bswap16(lh.shard_be),
			__builtin_bswap16(lh.nshards_be), sh->idx,
			ctx->nshards);
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
	struct ps_welcome w;
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
	memcpy(&w, (char *)ctx->reply + sh->idx * sizeof(w), sizeof(w));
	if (rdps_be32toh(w.status_be))
		return rdps_set_error(-(int)rdps_be32toh(w.status_be),
				      "shard %u (%s) refused this worker: %s",
				      sh->idx, sh->url,
				      strerror((int)rdps_be32toh(w.status_be)));
	sh->nslots = rdps_be32toh(w.nslots_be);
	sh->slot_bytes = rdps_be64toh(w.slot_bytes_be);
	if (sh->nslots < 1 || sh->nslots > PS_NSLOTS ||
	    sh->slot_bytes < sizeof(struct ps_msg) + 64 ||
	    sh->slot_bytes > (1ull << 30))
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) sent a bad welcome (%u "
				      "sub-slots of %llu bytes)",
				      sh->idx, sh->url, sh->nslots,
				      (unsigned long long)sh->slot_bytes);
	ret = rdps_tp_rkey_unpack(sh->ep, &w.slots, &sh->slots_key);
	if (!ret && sh->idx == 0)
		ret = rdps_tp_rkey_unpack(sh->ep, &w.clock, &sh->clock_key);
	if (ret)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) sent a malformed key in "
				      "its welcome",
				      sh->idx, sh->url);
	if (sh->idx == 0 &&
	    sh->clock_key.len < ps_clock_region_len(ctx->workers))
		return rdps_set_error(
			-EPROTO,
			"shard 0 (%s) sent a clock table key of %llu bytes, "
			"expected %llu for %u workers",
			sh->url, (unsigned long long)sh->clock_key.len,
			(unsigned long long)ps_clock_region_len(ctx->workers),
			ctx->workers);
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
		WRK_POST(ret, ctx, deadline,
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
		struct wrk_shard *sh = &ctx->sh[s];
		unsigned model = rdps_be32toh(h[s].model_be);
		unsigned workers = rdps_be32toh(h[s].workers_be);
		unsigned slack = rdps_be32toh(h[s].slack_be);
		unsigned k = rdps_be32toh(h[s].clock_k_be);

		if (rdps_be64toh(h[s].magic_be) != PS_DIR_MAGIC ||
		    rdps_be32toh(h[s].version_be) != PS_PROTO_VERSION)
			return rdps_set_error(-EPROTO,
					      "shard %u (%s): bad directory "
					      "magic or version %u (want %d)",
					      s, sh->url,
					      rdps_be32toh(h[s].version_be),
					      PS_PROTO_VERSION);
		if (workers != ctx->workers)
			return rdps_set_error(-EINVAL,
					      "shard %u (%s) runs a job of %u "
					      "workers, this worker says %u",
					      s, sh->url, workers,
					      ctx->workers);
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
		sh->hb_ms = rdps_be32toh(h[s].heartbeat_ms_be);
		if (s == 0) {
			if (k < ps_clock_k(ctx->slack) || k > PS_CLOCK_K_MAX)
				return rdps_set_error(
					-EPROTO,
					"shard 0 (%s): clock table K %u "
					"invalid for slack %u",
					sh->url, k, ctx->slack);
			ctx->k = k;
		}
	}
	/* A BSP job resumed from checkpoints starts where they left it:
	 * every shard must have resumed at the same clock. */
	if (rdps_model_in_order(ctx->model)) {
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
					ctx->sh[0].url, (unsigned long long)c0,
					s, ctx->sh[s].url,
					(unsigned long long)c);
		}
		ctx->clock = c0;
	}
	return 0;
}

/* Tell every shard this worker leaves on purpose (PS_BYE), so that its
 * closing connection does not count as a death; waits a moment for the
 * messages to go out. */
/* Post one 8-byte operation on the clock table of shard 0 at off into g:
 * fetch-add of add, or a read when add is 0. The result lands in *res (in
 * the small buffer). */
static int wrk_clock_post(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t off,
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

static void wrk_say_bye(struct rdps_ctx *ctx)
{
	uint64_t deadline = rdps_now_ns() + 1000000000ull;
	struct wrk_grp g = {0, 0, 0};

	/* A broken context leaves as if dead: the shards must not take it
	 * for a worker that finished. */
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
				     PS_IMM(PS_BYE, 0), (uintptr_t)&g, 0))
			g.left++;
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

int rdps_ctx_create(const struct rdps_config *cfg, struct rdps_ctx **ctx_out)
{
	struct rdps_tp_cfg tcfg;
	struct rdps_ctx *ctx;
	unsigned nshards;
	uint64_t deadline;
	size_t stage_len = 0;
	char *p;
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
	ctx->nshards = nshards;
	ctx->workers = (unsigned)cfg->workers;
	ctx->rank = (unsigned)cfg->rank;
	ctx->model = cfg->model;
	ctx->slack = cfg->slack;
	ctx->on_loss = cfg->on_worker_loss;
	ctx->timeout_ns =
		(uint64_t)(cfg->timeout_ms ? cfg->timeout_ms : 30000) *
		1000000ull;
	ctx->shards_buf = strdup(cfg->shards);
	ctx->sh = calloc(nshards, sizeof(*ctx->sh));
	if (!ctx->shards_buf || !ctx->sh) {
		ret = rdps_set_error(-ENOMEM, "out of memory");
		goto err;
	}
	p = ctx->shards_buf;
	for (unsigned s = 0; s < nshards; s++) {
		char *comma = strchr(p, ',');

		if (comma)
			*comma = '\0';
		ctx->sh[s].idx = s;
		ctx->sh[s].url = p;
		p = comma ? comma + 1 : p;
	}

	rdps_tp_cfg_default(&tcfg);
	tcfg.poll_mode = cfg->poll_mode == RDPS_POLL_BUSY ? RDPS_TP_POLL_BUSY
			 : cfg->poll_mode == RDPS_POLL_EVENT
				 ? RDPS_TP_POLL_EVENT
				 : RDPS_TP_POLL_ADAPTIVE;
	tcfg.token = cfg->token;
	ret = rdps_tp_open(ctx->sh[0].url, &tcfg, &ctx->tp);
	if (ret) {
		wrk_wrap(ret, "opening the transport for %s", ctx->sh[0].url);
		goto err;
	}
	ret = wrk_mem_get(
		ctx, ps_reply_len(nshards),
		RDPS_TP_ACCESS_REMOTE_WRITE | RDPS_TP_ACCESS_REMOTE_READ,
		&ctx->reply, &ctx->reply_len, &ctx->reply_mr, "reply region");
	if (ret)
		goto err;
	/* Beating before the first shard can look. */
	ret = rdps_pulse_start(
		&ctx->pulse,
		(uint64_t *)((char *)ctx->reply + ps_pulse_off(nshards)),
		PS_PULSE_MS);
	if (ret)
		goto err;
	ret = wrk_mem_get(ctx, 64 + 2 * nshards * sizeof(struct ps_dir_hdr),
			  RDPS_TP_ACCESS_LOCAL, &ctx->small, &ctx->small_len,
			  &ctx->small_mr, "clock buffer");
	if (ret)
		goto err;

	deadline = wrk_deadline(ctx);
	for (unsigned s = 0; s < nshards; s++) {
		int ms = rdps_ms_left(deadline);

		ret = wrk_connect(ctx, &ctx->sh[s], ms ? ms : 1);
		if (ret)
			goto err;
	}
	for (unsigned s = 0; s < nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		while (!sh->welcomed) {
			if (sh->err) {
				ret = wrk_dead(ctx, sh);
				goto err;
			}
			ret = wrk_progress(ctx, deadline, 1);
			if (ret == -ETIMEDOUT) {
				ret = rdps_set_error(
					-ETIMEDOUT,
					"timed out waiting for the welcome of "
					"shard %u (%s)",
					s, sh->url);
				goto err;
			}
			if (ret < 0)
				goto err;
		}
		ret = wrk_welcome(ctx, sh);
		if (ret)
			goto err;
		stage_len += sh->nslots * sh->slot_bytes;
	}
	ret = wrk_mem_get(ctx, stage_len, RDPS_TP_ACCESS_LOCAL, &ctx->stage,
			  &ctx->stage_len, &ctx->stage_mr, "push staging area");
	if (ret)
		goto err;
	p = ctx->stage;
	for (unsigned s = 0; s < nshards; s++) {
		ctx->sh[s].stage = p;
		p += ctx->sh[s].nslots * ctx->sh[s].slot_bytes;
	}
	ret = wrk_check_dirs(ctx);
	if (ret)
		goto err;
	ctx->ready = 1;
	*ctx_out = ctx;
	return 0;
err:
	rdps_ctx_destroy(ctx);
	return ret;
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

/* Tables ---------------------------------------------------------------- */

static const char *const rule_names[] = {"sum", "sgd", "adagrad"};
static const char *const dtype_names[] = {"f32", "f64"};

/* Read every shard's directory and fill t->part from the entry named
 * t->name. */
static int wrk_find_table(struct rdps_ctx *ctx, struct rdps_table *t,
			  enum rdps_rule rule)
{
	size_t dsz = sizeof(struct ps_dir);
	struct wrk_grp g = {0, 0, 0};
	uint64_t deadline = wrk_deadline(ctx);
	int ret;

	ret = wrk_bounce(ctx, ctx->nshards * dsz);
	if (ret)
		return ret;
	memset(ctx->bounce, 0, ctx->nshards * dsz);
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];
		size_t len = dsz < sh->dir_key.len ? dsz : sh->dir_key.len;

		WRK_POST(ret, ctx, deadline,
			 rdps_tp_get(sh->ep, (char *)ctx->bounce + s * dsz, len,
				     ctx->bounce_mr, sh->dir_key.addr,
				     &sh->dir_key, (uintptr_t)&g, 0));
		if (ret) {
			wrk_grp_wait(ctx, &g, deadline, "a directory read");
			return wrk_post_fail(ctx, sh, ret, "a directory read");
		}
		g.left++;
	}
	ret = wrk_grp_wait(ctx, &g, deadline, "the shards' directories");
	if (ret)
		return ret;
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct ps_dir *d =
			(struct ps_dir *)((char *)ctx->bounce + s * dsz);
		struct wrk_shard *sh = &ctx->sh[s];
		struct ps_table_desc *td = NULL;
		uint64_t n, lo, hi, elo, ehi;
		unsigned dtype, r, i;

		for (i = 0; i < PS_MAX_TABLES; i++) {
			if (rdps_be64toh(d->tables[i].ready_be) == 1 &&
			    !strncmp(d->tables[i].name, t->name,
				     sizeof(d->tables[i].name))) {
				td = &d->tables[i];
				break;
			}
		}
		if (!td)
			return rdps_set_error(-EPROTO,
					      "shard %u (%s) acknowledged "
					      "table '%s' but its directory "
					      "does not list it",
					      s, sh->url, t->name);
		n = rdps_be64toh(td->n_be);
		dtype = rdps_be32toh(td->dtype_be);
		r = rdps_be32toh(td->rule_be);
		if (n != t->n)
			return rdps_set_error(-EINVAL,
					      "table '%s' exists with %llu "
					      "elements, not %llu",
					      t->name, (unsigned long long)n,
					      (unsigned long long)t->n);
		if (dtype != (unsigned)t->dtype)
			return rdps_set_error(
				-EINVAL,
				"table '%s' exists with dtype %s, not %s",
				t->name, dtype < 2 ? dtype_names[dtype] : "?",
				dtype_names[t->dtype]);
		if (r != (unsigned)rule)
			return rdps_set_error(
				-EINVAL,
				"table '%s' exists with rule %s, not %s",
				t->name, r < 3 ? rule_names[r] : "?",
				rule_names[rule]);
		lo = rdps_be64toh(td->lo_be);
		hi = rdps_be64toh(td->hi_be);
		ps_shard_range(t->n, ctx->nshards, s, &elo, &ehi);
		if (lo != elo || hi != ehi)
			return rdps_set_error(
				-EPROTO,
				"shard %u (%s) holds [%llu, %llu) of table "
				"'%s', expected [%llu, %llu)",
				s, sh->url, (unsigned long long)lo,
				(unsigned long long)hi, t->name,
				(unsigned long long)elo,
				(unsigned long long)ehi);
		t->part[s].index = i;
		t->part[s].lo = lo;
		t->part[s].hi = hi;
		memset(&t->part[s].params, 0, sizeof(t->part[s].params));
		if (hi > lo) {
			ret = rdps_tp_rkey_unpack(sh->ep, &td->params,
						  &t->part[s].params);
			if (ret || t->part[s].params.len < (hi - lo) * t->esz)
				return rdps_set_error(
					-EPROTO,
					"shard %u (%s): bad params key for "
					"table '%s'",
					s, sh->url, t->name);
		}
	}
	return 0;
}

int rdps_table_open(struct rdps_ctx *ctx, const char *name, uint64_t n,
		    enum rdps_dtype dtype, enum rdps_rule rule, double lr,
		    struct rdps_table **table_out)
{
	struct rdps_table *t;
	uint64_t deadline, bits;
	size_t len;
	int ret;

	if (!ctx || !name || !table_out)
		return rdps_set_error(-EINVAL, "rdps_table_open: null "
					       "argument");
	len = strlen(name);
	if (!len || len > RDPS_TABLE_NAME_MAX)
		return rdps_set_error(-EINVAL,
				      "bad table name '%s': 1 to %d characters",
				      name, RDPS_TABLE_NAME_MAX);
	if (!n)
		return rdps_set_error(-EINVAL, "table '%s': n must be >= 1",
				      name);
	if (dtype > RDPS_DTYPE_F64)
		return rdps_set_error(-EINVAL, "table '%s': unknown dtype %d",
				      name, (int)dtype);
	if (rule > RDPS_RULE_ADAGRAD)
		return rdps_set_error(-EINVAL, "table '%s': unknown rule %d",
				      name, (int)rule);
	t = calloc(1, sizeof(*t));
	if (!t)
		return rdps_set_error(-ENOMEM, "out of memory");
	t->part = calloc(ctx->nshards, sizeof(*t->part));
	if (!t->part) {
		free(t);
		return rdps_set_error(-ENOMEM, "out of memory");
	}
	t->ctx = ctx;
	memcpy(t->name, name, len + 1);
	t->n = n;
	t->dtype = dtype;
	t->esz = ps_dtype_size((uint32_t)dtype);

	deadline = wrk_deadline(ctx);
	memcpy(&bits, &lr, sizeof(bits));
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];
		struct ps_msg *m;
		struct ps_create *c;
		unsigned k;

		ret = wrk_slot_get(ctx, sh, deadline, &k);
		if (ret)
			goto err;
		m = (struct ps_msg *)(sh->stage + (size_t)k * sh->slot_bytes);
		c = (struct ps_create *)(m + 1);
		memset(m, 0, sizeof(*m) + sizeof(*c));
		m->kind_be = rdps_htobe32(PS_CREATE);
		m->clock_be = rdps_htobe64(ctx->clock);
		m->bytes_be = rdps_htobe64(sizeof(*c));
		memcpy(c->name, name, len);
		c->n_be = rdps_htobe64(n);
		c->dtype_be = rdps_htobe32((uint32_t)dtype);
		c->rule_be = rdps_htobe32((uint32_t)rule);
		c->lr_bits_be = rdps_htobe64(bits);
		ret = wrk_slot_send(ctx, sh, k, PS_CREATE,
				    sizeof(*m) + sizeof(*c), deadline);
		if (ret)
			goto err;
	}
	ret = wrk_slots_drain(ctx, NULL, deadline, "the table creation");
	if (ret == -EINVAL) {
		/* Most likely the table exists with other parameters: the
		 * directory names the difference. */
		char why[512];

		snprintf(why, sizeof(why), "%s", rdps_errmsg());
		if (wrk_find_table(ctx, t, rule) != -EINVAL)
			rdps_set_error(ret, "%s", why);
		goto err;
	}
	if (ret)
		goto err;
	ret = wrk_find_table(ctx, t, rule);
	if (ret)
		goto err;
	t->next = ctx->tables;
	ctx->tables = t;
	*table_out = t;
	return 0;
err:
	free(t->part);
	free(t);
	return ret;
}

/* The error for a wait that a lost worker can never end, from shard s's
 * header h; 0 while the shard has lost nobody. */
static int wrk_lost_error(const struct rdps_ctx *ctx, unsigned s,
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

/* Pulls ------------------------------------------------------------------ */

/* The applied clock a pull at this worker's clock needs. */
static uint64_t wrk_need(const struct rdps_ctx *ctx)
{
	switch (ctx->model) {
	case RDPS_MODEL_BSP:
	case RDPS_MODEL_ABSP:
		return ctx->clock;
	default:
		/* SSP needs no applied_clock: a push returns only after its
		 * shard applied it, so once rdps_clock() saw clock c complete
		 * (its slack read) every update of clocks <= c is in. */
		return 0;
	}
}

/* One contiguous read of a pull: bytes [roff, roff+len) of shard s's
 * params into base + boff (the bounce buffer, or the caller's dst when it
 * is an rdps_buf_alloc() buffer). */
struct wrk_run {
	unsigned shard;
	uint64_t roff, len, boff;
};

/*
 * Post the header read and the runs of every shard in want[] (header into
 * hdr[s], runs into base, which lies in mr), wait, and clear want[s] for
 * shards whose applied_clock is fresh enough. Repeats until none is left.
 */
static int wrk_pull_runs(struct rdps_table *t, const struct wrk_run *runs,
			 size_t nruns, uint8_t *want, struct ps_dir_hdr *hdr,
			 char *base, struct rdps_tp_mr *mr)
{
	struct rdps_ctx *ctx = t->ctx;
	uint64_t need = wrk_need(ctx), deadline = wrk_deadline(ctx);
	struct wrk_grp g;
	uint64_t t0 = 0;
	unsigned attempt = 0, fs = 0;
	int ret, left;

	for (;;) {
		size_t r = 0;

		memset(&g, 0, sizeof(g));
		for (unsigned s = 0; s < ctx->nshards; s++) {
			struct wrk_shard *sh = &ctx->sh[s];

			if (!want[s])
				continue;
			if (sh->err)
				return wrk_dead(ctx, sh);
			WRK_POST(ret, ctx, deadline,
				 rdps_tp_get(sh->ep, &hdr[s], sizeof(hdr[s]),
					     ctx->small_mr, sh->dir_key.addr,
					     &sh->dir_key, (uintptr_t)&g, 0));
			if (ret) {
				fs = s;
				goto post_fail;
			}
			g.left++;
		}
		for (r = 0; r < nruns; r++) {
			const struct wrk_run *run = &runs[r];
			struct wrk_part *pt = &t->part[run->shard];

			if (!want[run->shard])
				continue;
			WRK_POST(ret, ctx, deadline,
				 rdps_tp_get(ctx->sh[run->shard].ep,
					     base + run->boff, run->len, mr,
					     pt->params.addr + run->roff,
					     &pt->params, (uintptr_t)&g, 0));
			if (ret) {
				fs = run->shard;
				goto post_fail;
			}
			g.left++;
		}
		ret = wrk_grp_wait(ctx, &g, deadline, "a pull");
		if (ret)
			return ret;
		left = 0;
		for (unsigned s = 0; s < ctx->nshards; s++) {
			if (!want[s])
				continue;
			if (rdps_be64toh(hdr[s].applied_clock_be) >= need) {
				want[s] = 0;
				continue;
			}
			/* BSP: a lost worker's deltas never come. */
			ret = wrk_lost_error(ctx, s, &hdr[s], "this pull");
			if (!ret)
				ret = wrk_hb_check(ctx, &ctx->sh[s], &hdr[s]);
			if (ret)
				return ret;
			left++;
		}
		if (!left)
			break;
		if (!t0)
			t0 = rdps_now_ns();
		if (rdps_now_ns() >= deadline) {
			ctx->st.pull_wait_ns += rdps_now_ns() - t0;
			return rdps_set_error(
				-ETIMEDOUT,
				"timed out waiting for the shards to apply "
				"clock %llu for a pull of table '%s'",
				(unsigned long long)need, t->name);
		}
		wrk_backoff(ctx, attempt++);
	}
	if (t0)
		ctx->st.pull_wait_ns += rdps_now_ns() - t0;
	return 0;
post_fail:
	wrk_grp_wait(ctx, &g, deadline, "a pull");
	return wrk_post_fail(ctx, &ctx->sh[fs], ret, "a pull");
}

/*
 * A round of a counter on the clock table that a wait needs: the counter
 * at off, complete at goal; a worker's own word (words_off + 8 * rank)
 * reaches need once its arrival is counted (ps_proto.h, "Lost workers").
 */
struct wrk_round {
	uint64_t off, goal, words_off, need;
	const char *what; /* "this clock", "the barrier" */
	uint64_t no;	  /* the clock, or the barrier (from 1) */
	int barrier;	  /* a barrier, not a clock */
};

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
	WRK_POST(ret, ctx, deadline,
		 rdps_tp_get(sh->ep, *map_out, map_len, ctx->bounce_mr,
			     sh->dir_key.addr +
				     offsetof(struct ps_dir, gone_map_be),
			     &sh->dir_key, (uintptr_t)&g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a gone-map read");
	g.left++;
	WRK_POST(ret, ctx, deadline,
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
	struct wrk_shard *sh = &ctx->sh[0];
	struct wrk_grp g = {0, 0, 0};
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
	WRK_POST(ret, ctx, deadline,
		 rdps_tp_atomic_cswap(sh->ep, seen, rd->goal, &res[WRK_MAKEUP],
				      ctx->small_mr,
				      sh->clock_key.addr + rd->off,
				      &sh->clock_key, (uintptr_t)&g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a make-up swap");
	g.left = 1;
	ret = wrk_grp_wait(ctx, &g, deadline, "a make-up swap");
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
static int wrk_lost_check(struct rdps_ctx *ctx, unsigned attempt,
			  uint64_t deadline, const struct wrk_round *rd,
			  uint64_t seen)
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

/* [start, start+count) must lie in the table: -ERANGE naming it if not. */
static int wrk_check_range(const struct rdps_table *t, uint64_t start,
			   uint64_t count, const char *what)
{
	if (start > t->n || count > t->n - start)
		return rdps_set_error(-ERANGE,
				      "%s of [%llu, +%llu) outside table '%s' "
				      "of %llu elements",
				      what, (unsigned long long)start,
				      (unsigned long long)count, t->name,
				      (unsigned long long)t->n);
	return 0;
}

int rdps_pull(struct rdps_table *t, uint64_t start, uint64_t count, void *dst)
{
	const struct wrk_ubuf *ub;
	struct rdps_ctx *ctx;
	struct wrk_run *runs;
	uint8_t *want;
	uint64_t off = 0;
	size_t nruns = 0;
	int ret;

	if (!t || (!dst && count))
		return rdps_set_error(-EINVAL, "rdps_pull: null argument");
	ctx = t->ctx;
	ret = wrk_check_range(t, start, count, "pull");
	if (ret)
		return ret;
	if (!count)
		return 0;
	runs = wrk_scratch(ctx, ctx->nshards * (sizeof(*runs) + 1));
	if (!runs)
		return -ENOMEM;
	want = (uint8_t *)(runs + ctx->nshards);
	memset(want, 0, ctx->nshards);
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_part *pt = &t->part[s];
		uint64_t a = start > pt->lo ? start : pt->lo;
		uint64_t b = start + count < pt->hi ? start + count : pt->hi;

		if (a >= b)
			continue;
		runs[nruns].shard = s;
		runs[nruns].roff = (a - pt->lo) * t->esz;
		runs[nruns].len = (b - a) * t->esz;
		runs[nruns].boff = (a - start) * t->esz;
		off += runs[nruns].len;
		want[s] = 1;
		nruns++;
	}
	/* Straight into dst when it is registered (rdps_buf_alloc()); a
	 * stale read is simply read again over it. */
	ub = wrk_ubuf_find(ctx, dst, off);
	if (ub) {
		ret = wrk_pull_runs(t, runs, nruns, want, wrk_hdrs(ctx), dst,
				    ub->mr);
		if (ret)
			return ret;
	} else {
		ret = wrk_bounce(ctx, off);
		if (ret)
			return ret;
		ret = wrk_pull_runs(t, runs, nruns, want, wrk_hdrs(ctx),
				    ctx->bounce, ctx->bounce_mr);
		if (ret)
			return ret;
		memcpy(dst, ctx->bounce, count * t->esz);
	}
	ctx->st.pulls++;
	ctx->st.bytes_pulled += count * t->esz;
	return 0;
}

struct wrk_sidx {
	uint64_t idx;
	uint64_t pos; /* position in the caller's arrays */
};

static int wrk_sidx_cmp(const void *a, const void *b)
{
	const struct wrk_sidx *x = a, *y = b;

	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Shard owning element i (ranges are ordered and cover [0, n)). */
static unsigned wrk_owner(const struct rdps_table *t, unsigned nshards,
			  uint64_t i)
{
	unsigned lo = 0, hi = nshards - 1;

	while (lo < hi) {
		unsigned mid = (lo + hi + 1) / 2;

		if (t->part[mid].lo <= i)
			lo = mid;
		else
			hi = mid - 1;
	}
	/* Skip empty shards that share the bound. */
	while (lo + 1 < nshards && t->part[lo].hi <= i)
		lo++;
	return lo;
}

int rdps_pull_sparse(struct rdps_table *t, const uint64_t *idx, size_t n,
		     void *dst)
{
	struct rdps_ctx *ctx;
	struct wrk_sidx *si;
	struct wrk_run *runs;
	uint64_t *boff;
	uint8_t *want;
	size_t nruns = 0, bytes = 0, need;
	int ret;

	if (!t || (n && (!idx || !dst)))
		return rdps_set_error(-EINVAL, "rdps_pull_sparse: null "
					       "argument");
	ctx = t->ctx;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (idx[i] >= t->n)
			return rdps_set_error(-ERANGE,
					      "sparse pull: index %llu (entry "
					      "%zu) outside table '%s' of %llu "
					      "elements",
					      (unsigned long long)idx[i], i,
					      t->name,
					      (unsigned long long)t->n);
	/* si[n], runs[n] (at most one per index), boff[n], want[S]. */
	need = n * (sizeof(*si) + sizeof(*runs) + sizeof(*boff)) + ctx->nshards;
	si = wrk_scratch(ctx, need);
	if (!si)
		return -ENOMEM;
	runs = (struct wrk_run *)(si + n);
	boff = (uint64_t *)(runs + n);
	want = (uint8_t *)(boff + n);
	memset(want, 0, ctx->nshards);
	for (size_t i = 0; i < n; i++) {
		si[i].idx = idx[i];
		si[i].pos = i;
	}
	qsort(si, n, sizeof(*si), wrk_sidx_cmp);
	/* Coalesce the touched pages of each shard into runs. */
	for (size_t i = 0; i < n; i++) {
		unsigned s = wrk_owner(t, ctx->nshards, si[i].idx);
		struct wrk_part *pt = &t->part[s];
		uint64_t off = (si[i].idx - pt->lo) * t->esz;
		uint64_t pg = off / WRK_PAGE * WRK_PAGE;
		uint64_t end = pg + WRK_PAGE, lim = (pt->hi - pt->lo) * t->esz;
		struct wrk_run *r = nruns ? &runs[nruns - 1] : NULL;

		if (end > lim)
			end = lim;
		if (r && r->shard == s && pg <= r->roff + r->len) {
			if (end > r->roff + r->len) {
				bytes += end - (r->roff + r->len);
				r->len = end - r->roff;
			}
		} else {
			r = &runs[nruns++];
			r->shard = s;
			r->roff = pg;
			r->len = end - pg;
			r->boff = bytes;
			bytes += r->len;
			want[s] = 1;
		}
		boff[si[i].pos] = r->boff + (off - r->roff);
	}
	ret = wrk_bounce(ctx, bytes);
	if (ret)
		return ret;
	ret = wrk_pull_runs(t, runs, nruns, want, wrk_hdrs(ctx), ctx->bounce,
			    ctx->bounce_mr);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++)
		memcpy((char *)dst + i * t->esz, (char *)ctx->bounce + boff[i],
		       t->esz);
	ctx->st.pulls++;
	ctx->st.bytes_pulled += n * t->esz;
	return 0;
}

/* Pushes ----------------------------------------------------------------- */

static void wrk_msg_init(struct ps_msg *m, const struct rdps_table *t,
			 unsigned s, uint32_t flags, uint64_t start,
			 uint64_t count, uint64_t bytes)
{
	memset(m, 0, sizeof(*m));
	m->kind_be = rdps_htobe32(PS_PUSH);
	m->flags_be = rdps_htobe32(flags);
	m->table_be = rdps_htobe32(t->part[s].index);
	m->start_be = rdps_htobe64(start);
	m->count_be = rdps_htobe64(count);
	m->clock_be = rdps_htobe64(t->ctx->clock);
	m->bytes_be = rdps_htobe64(bytes);
}

/* Below this a payload is copied into the header's write instead. */
#define WRK_ZCOPY_MIN 4096

int rdps_push(struct rdps_table *t, uint64_t start, uint64_t count,
	      const void *delta)
{
	const struct wrk_ubuf *ub;
	struct rdps_ctx *ctx;
	uint64_t deadline;
	uint8_t *mask;
	int ret;

	if (!t || (!delta && count))
		return rdps_set_error(-EINVAL, "rdps_push: null argument");
	ctx = t->ctx;
	ret = wrk_check_range(t, start, count, "push");
	if (ret)
		return ret;
	if (!count)
		return 0;
	mask = wrk_scratch(ctx, ctx->nshards);
	if (!mask)
		return -ENOMEM;
	memset(mask, 0, ctx->nshards);
	deadline = wrk_deadline(ctx);
	/* A delta in rdps_buf_alloc() memory goes straight to the slots. */
	ub = wrk_ubuf_find(ctx, delta, count * t->esz);
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];
		struct wrk_part *pt = &t->part[s];
		uint64_t a = start > pt->lo ? start : pt->lo;
		uint64_t b = start + count < pt->hi ? start + count : pt->hi;
		uint64_t chunk =
			(sh->slot_bytes - sizeof(struct ps_msg)) / t->esz;

		while (a < b) {
			uint64_t c = b - a < chunk ? b - a : chunk;
			const char *src =
				(const char *)delta + (a - start) * t->esz;
			size_t len = c * t->esz;
			struct ps_msg *m;
			unsigned k;

			ret = wrk_slot_get(ctx, sh, deadline, &k);
			if (ret)
				return ret;
			m = (struct ps_msg *)(sh->stage +
					      (size_t)k * sh->slot_bytes);
			if (ub && len >= WRK_ZCOPY_MIN) {
				/* Payload first, from the caller's memory;
				 * the header's write-with-immediate after it
				 * on the same endpoint lands last. */
				wrk_msg_init(m, t, s, PS_F_SPLIT, a, c, len);
				WRK_POST(
					ret, ctx, deadline,
					rdps_tp_put(sh->ep, src, len, ub->mr,
						    sh->slots_key.addr +
							    k * sh->slot_bytes +
							    sizeof(*m),
						    &sh->slots_key, 0,
						    RDPS_TP_F_UNSIGNALED));
				if (ret)
					return wrk_post_fail(ctx, sh, ret,
							     "a push payload");
				len = 0;
			} else {
				wrk_msg_init(m, t, s, 0, a, c, len);
				memcpy(m + 1, src, len);
			}
			ret = wrk_slot_send(ctx, sh, k, PS_PUSH,
					    sizeof(*m) + len, deadline);
			if (ret)
				return ret;
			mask[s] = 1;
			a += c;
		}
	}
	ret = wrk_slots_drain(ctx, mask, deadline, "a push");
	if (ret)
		return ret;
	ctx->st.pushes++;
	ctx->st.bytes_pushed += count * t->esz;
	return 0;
}

int rdps_push_sparse(struct rdps_table *t, const uint64_t *idx, size_t n,
		     const void *delta)
{
	struct rdps_ctx *ctx;
	uint64_t deadline;
	uint8_t *mask;
	int ret;

	if (!t || (n && (!idx || !delta)))
		return rdps_set_error(-EINVAL, "rdps_push_sparse: null "
					       "argument");
	ctx = t->ctx;
	for (size_t i = 0; i < n; i++)
		if (idx[i] >= t->n)
			return rdps_set_error(-ERANGE,
					      "sparse push: index %llu (entry "
					      "%zu) outside table '%s' of %llu "
					      "elements",
					      (unsigned long long)idx[i], i,
					      t->name,
					      (unsigned long long)t->n);
	if (!n)
		return 0;
	mask = wrk_scratch(ctx, ctx->nshards);
	if (!mask)
		return -ENOMEM;
	memset(mask, 0, ctx->nshards);
	deadline = wrk_deadline(ctx);
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];
		struct wrk_part *pt = &t->part[s];
		size_t pair = 8 + t->esz;
		uint64_t chunk =
			(sh->slot_bytes - sizeof(struct ps_msg)) / pair;
		struct ps_msg *m = NULL;
		uint64_t c = 0;
		unsigned k = 0;
		size_t i = 0;

		for (;;) {
			int flush = m && (c == chunk || i == n);

			if (flush) {
				wrk_msg_init(m, t, s, PS_F_SPARSE, 0, c,
					     c * pair);
				ret = wrk_slot_send(ctx, sh, k, PS_PUSH,
						    sizeof(*m) + c * pair,
						    deadline);
				if (ret)
					return ret;
				mask[s] = 1;
				m = NULL;
				c = 0;
			}
			if (i == n)
				break;
			if (idx[i] < pt->lo || idx[i] >= pt->hi) {
				i++;
				continue;
			}
			if (!m) {
				ret = wrk_slot_get(ctx, sh, deadline, &k);
				if (ret)
					return ret;
				m = (struct ps_msg *)(sh->stage +
						      (size_t)k *
							      sh->slot_bytes);
			}
			{
				char *p = (char *)(m + 1) + c * pair;
				uint64_t be = rdps_htobe64(idx[i]);

				memcpy(p, &be, 8);
				memcpy(p + 8, (const char *)delta + i * t->esz,
				       t->esz);
			}
			c++;
			i++;
		}
	}
	ret = wrk_slots_drain(ctx, mask, deadline, "a sparse push");
	if (ret)
		return ret;
	ctx->st.pushes++;
	ctx->st.bytes_pushed += n * t->esz;
	return 0;
}

/* Clocks ----------------------------------------------------------------- */

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
	ret = wrk_clock_post(ctx, &g, (t % ctx->k) * 8, 1, &res[0], deadline,
			     "the clock fetch-add");
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
		ret = wrk_clock_post(ctx, &g, (c % ctx->k) * 8, 0, &res[1],
				     deadline, "a clock read");
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
	if (ps_clock_last(res[0], t, ctx->k, ctx->workers))
		ctx->last_arrivals++;
	ctx->clock = t + 1;
	ctx->st.clocks++;
	if (!check)
		goto out;
	if (c == t && ps_clock_last(res[0], t, ctx->k, ctx->workers))
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
		    ps_clock_done(res[1], c, ctx->k, ctx->workers))
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
					      res[1]);
		}
		ret = wrk_clock_op(ctx, (c % ctx->k) * 8, 0, &res[1], deadline,
				   "a clock read");
		if (ret)
			goto out;
		read_posted = 1;
		/* A worker that arrived and then left is no reason to fail:
		 * the read after learning of it decides. */
		if (lost && !ps_clock_done(res[1], c, ctx->k, ctx->workers)) {
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

/* A-BSP ------------------------------------------------------------------ */

/* Landing spots in the small buffer: [0] fetch-add, [1] slack read,
 * [2] barrier, [3] cut compare-swap, [4] cut read, [5] own-word
 * fetch-add, [6] make-up compare-swap (wrk_makeup). */
#define WRK_CUT_SWAP 3
#define WRK_CUT_READ 4

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
		struct wrk_shard *sh = &ctx->sh[0];
		struct wrk_grp g = {0, 0, 0};

		if (expect > ctx->clock) {
			ctx->cut_seen = expect;
			return 0;
		}
		if (sh->err)
			return wrk_dead(ctx, sh);
		WRK_POST(ret, ctx, deadline,
			 rdps_tp_atomic_cswap(
				 sh->ep, expect, ctx->clock + 1,
				 &res[WRK_CUT_SWAP], ctx->small_mr,
				 sh->clock_key.addr +
					 offsetof(struct ps_clock_table, cut),
				 &sh->clock_key, (uintptr_t)&g, 0));
		if (ret)
			return wrk_post_fail(ctx, sh, ret, "the cut");
		g.left = 1;
		ret = wrk_grp_wait(ctx, &g, deadline, "the cut");
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
	ret = wrk_clock_post(ctx, &g, off, 1, &res[2], deadline,
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
	if (res[2] + 1 >= goal)
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
		lost = wrk_lost_check(ctx, attempt, deadline, &rd, res[2]);
		ret = wrk_clock_op(ctx, off, 0, &res[2], deadline,
				   "a barrier read");
		if (ret)
			return ret;
		if (lost && res[2] < goal)
			return lost;
		if (res[2] >= goal)
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
