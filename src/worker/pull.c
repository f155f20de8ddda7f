/* SPDX-License-Identifier: MIT */
/*
 * pull.c - pulls: one-sided reads of each shard's part of a table, with
 * its directory header, until every shard applied what the model needs.
 *
 * Read top-down as a pull runs: a dense or sparse pull first plans its
 * reads (runs), then wrk_pull_runs() posts each shard's header read and
 * runs together, waits, and reads again the shards whose applied_clock is
 * not yet what the model needs. The steps come before their caller, in
 * call order.
 */
#include <stdlib.h>

#include "worker.h"

/* One contiguous read of a pull: bytes [roff, roff+len) of shard s's
 * params into base + boff (the bounce buffer, or the caller's dst when it
 * is an rdps_buf_alloc() buffer). */
struct wrk_run {
	unsigned shard;
	uint64_t roff, len, boff;
};

/* The reads of one pull: runs[nruns] into base (which lies in mr), from
 * the shards with want[s] set: WRK_WANT_HDR while s's applied_clock is
 * not known to be fresh, WRK_WANT_RUNS once a header-only read showed it
 * fresh but its runs are still to read; 0 once s is done. */
#define WRK_WANT_HDR 1
#define WRK_WANT_RUNS 2
struct wrk_pull {
	const struct wrk_run *runs;
	size_t nruns;
	uint8_t *want;
	char *base;
	struct rdps_tp_mr *mr;
};

uint64_t wrk_need(const struct rdps_ctx *ctx)
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

/* Post the directory-header read of every shard not yet known fresh into
 * g (header of shard s into hdr[s]). */
static int wrk_pull_post_hdrs(struct rdps_ctx *ctx, const struct wrk_pull *p,
			      struct ps_dir_hdr *hdr, struct wrk_grp *g,
			      uint64_t deadline)
{
	int ret;

	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		if (p->want[s] != WRK_WANT_HDR)
			continue;
		if (sh->err)
			return wrk_dead_grp(ctx, sh, g, deadline, "a pull");
		WRK_POST(ret, ctx, deadline, sizeof(hdr[s]),
			 rdps_tp_get(sh->ep, &hdr[s], sizeof(hdr[s]),
				     ctx->small_mr, sh->dir_key.addr,
				     &sh->dir_key, (uintptr_t)g, 0));
		if (ret)
			return wrk_grp_post_fail(ctx, sh, g, ret, deadline,
						 "a pull");
		g->left++;
	}
	return 0;
}

/* Post the runs of every shard whose want[s] is in mask (a bit per
 * WRK_WANT_*) into g, after its header read if any. */
static int wrk_pull_post_runs(struct rdps_table *t, const struct wrk_pull *p,
			      unsigned mask, struct wrk_grp *g,
			      uint64_t deadline)
{
	struct rdps_ctx *ctx = t->ctx;
	int ret;

	for (size_t r = 0; r < p->nruns; r++) {
		const struct wrk_run *run = &p->runs[r];
		struct wrk_part *pt = &t->part[run->shard];

		if (!(p->want[run->shard] & mask))
			continue;
		WRK_POST(ret, ctx, deadline, run->len,
			 rdps_tp_get(ctx->sh[run->shard].ep,
				     p->base + run->boff, run->len, p->mr,
				     pt->params.addr + run->roff, &pt->params,
				     (uintptr_t)g, 0));
		if (ret)
			return wrk_grp_post_fail(ctx, &ctx->sh[run->shard], g,
						 ret, deadline, "a pull");
		g->left++;
	}
	return 0;
}

/*
 * After a round whose runs were posted for the shards with want[s] in
 * mask: a shard whose runs were read is done (want[s] 0) if it was known
 * fresh (WRK_WANT_RUNS) or its header read with them shows applied_clock
 * >= need; a fresh header without its runs makes the shard want them
 * (WRK_WANT_RUNS). Sets *stale when a header was not fresh. How many
 * shards are left, or the error of a lost worker or a stopped shard
 * among them.
 */
static int wrk_pull_fresh(struct rdps_ctx *ctx, const struct wrk_pull *p,
			  const struct ps_dir_hdr *hdr, uint64_t need,
			  unsigned mask, int *stale)
{
	int ret, left = 0;

	*stale = 0;
	for (unsigned s = 0; s < ctx->nshards; s++) {
		if (p->want[s] == WRK_WANT_RUNS && (mask & WRK_WANT_RUNS))
			p->want[s] = 0;
		if (p->want[s] != WRK_WANT_HDR)
			continue;
		if (rdps_be64toh(hdr[s].applied_clock_be) >= need) {
			p->want[s] = mask & WRK_WANT_HDR ? 0 : WRK_WANT_RUNS;
			left += p->want[s] != 0;
			continue;
		}
		*stale = 1;
		/* BSP: a lost worker's deltas never come. */
		ret = wrk_lost_error(ctx, s, &hdr[s], "this pull");
		if (!ret)
			ret = wrk_hb_check(ctx, &ctx->sh[s], &hdr[s]);
		if (ret)
			return ret;
		left++;
	}
	return left;
}

/* Runs of this many bytes or more are not read again with every header
 * while their shard is behind: only its header is, then the runs once. */
#define WRK_REREAD_MAX 65536

/*
 * Post the header read and the runs of every wanted shard, wait, and clear
 * want[s] for shards whose applied_clock is fresh enough. Repeats (with
 * back-off) until none is left; the time spent repeating counts as
 * pull_wait_ns. The first round reads headers and runs together (one
 * round trip when the shards are fresh, as they mostly are); the rounds
 * after it read the runs again only when they are small: a large pull
 * waits on headers alone and then reads its runs once, so the bytes it
 * moves do not grow with how long it waits (BSP: for the slowest worker).
 */
static int wrk_pull_runs(struct rdps_table *t, const struct wrk_pull *p)
{
	struct rdps_ctx *ctx = t->ctx;
	uint64_t need = wrk_need(ctx), deadline = wrk_deadline(ctx);
	struct ps_dir_hdr *hdr = wrk_hdrs(ctx);
	unsigned attempt = 0, mask = WRK_WANT_HDR | WRK_WANT_RUNS;
	struct wrk_grp g;
	uint64_t t0 = 0, bytes = 0;
	int ret, stale = 0;

	for (size_t r = 0; r < p->nruns; r++)
		bytes += p->runs[r].len;
	for (;;) {
		memset(&g, 0, sizeof(g));
		ret = wrk_pull_post_hdrs(ctx, p, hdr, &g, deadline);
		if (!ret)
			ret = wrk_pull_post_runs(t, p, mask, &g, deadline);
		if (!ret)
			ret = wrk_grp_wait(ctx, &g, deadline, "a pull");
		if (!ret)
			ret = wrk_pull_fresh(ctx, p, hdr, need, mask, &stale);
		if (ret <= 0)
			break;
		if (bytes >= WRK_REREAD_MAX)
			mask = WRK_WANT_RUNS;
		/* Only runs of fresh shards left: read them now. */
		if (!stale)
			continue;
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
		ret = wrk_backoff(ctx, attempt++);
		if (ret) {
			ctx->st.pull_wait_ns += rdps_now_ns() - t0;
			return ret;
		}
	}
	if (ret)
		return ret;
	if (t0)
		ctx->st.pull_wait_ns += rdps_now_ns() - t0;
	return 0;
}

/* Pull through the bounce buffer (grown to bytes): the caller copies out
 * of ctx->bounce. */
static int wrk_pull_bounce(struct rdps_table *t, struct wrk_pull *p,
			   uint64_t bytes)
{
	struct rdps_ctx *ctx = t->ctx;
	int ret = wrk_bounce(ctx, bytes);

	if (ret)
		return ret;
	p->base = ctx->bounce;
	p->mr = ctx->bounce_mr;
	return wrk_pull_runs(t, p);
}

/* Dense pull: one run per shard that holds part of [start, start+count),
 * landing at its offset in the destination. Returns the bytes to read. */
static uint64_t wrk_dense_plan(const struct rdps_table *t, uint64_t start,
			       uint64_t count, struct wrk_run *runs,
			       uint8_t *want, size_t *nruns_out)
{
	uint64_t off = 0;
	size_t nruns = 0;

	for (unsigned s = 0; s < t->ctx->nshards; s++) {
		const struct wrk_part *pt = &t->part[s];
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
	*nruns_out = nruns;
	return off;
}

int rdps_pull(struct rdps_table *t, uint64_t start, uint64_t count, void *dst)
{
	const struct wrk_ubuf *ub;
	struct rdps_ctx *ctx;
	struct wrk_run *runs;
	struct wrk_pull p;
	uint64_t off;
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
	p.runs = runs;
	p.want = (uint8_t *)(runs + ctx->nshards);
	memset(p.want, 0, ctx->nshards);
	off = wrk_dense_plan(t, start, count, runs, p.want, &p.nruns);
	/* Straight into dst when it is registered (rdps_buf_alloc()); a
	 * stale read is simply read again over it. */
	ub = wrk_ubuf_find(ctx, dst, off);
	if (ub) {
		p.base = dst;
		p.mr = ub->mr;
		ret = wrk_pull_runs(t, &p);
		if (ret)
			return ret;
	} else {
		ret = wrk_pull_bounce(t, &p, off);
		if (ret)
			return ret;
		memcpy(dst, ctx->bounce, count * t->esz);
	}
	ctx->st.pulls++;
	ctx->st.bytes_pulled += count * t->esz;
	return 0;
}

/* Sparse pulls ------------------------------------------------------------ */

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

/*
 * Sparse pull of the n indices in si (sorted): coalesce the touched pages
 * of each shard into runs, and note where index si[i].pos lands in the
 * bounce buffer (boff[pos]). Returns the bytes to read.
 */
static size_t wrk_sparse_plan(const struct rdps_table *t,
			      const struct wrk_sidx *si, size_t n,
			      struct wrk_run *runs, uint64_t *boff,
			      uint8_t *want, size_t *nruns_out)
{
	size_t nruns = 0, bytes = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned s = wrk_owner(t, t->ctx->nshards, si[i].idx);
		const struct wrk_part *pt = &t->part[s];
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
	*nruns_out = nruns;
	return bytes;
}

int rdps_pull_sparse(struct rdps_table *t, const uint64_t *idx, size_t n,
		     void *dst)
{
	struct rdps_ctx *ctx;
	struct wrk_sidx *si;
	struct wrk_run *runs;
	struct wrk_pull p;
	uint64_t *boff;
	size_t bytes, need;
	int ret;

	if (!t || (n && (!idx || !dst)))
		return rdps_set_error(-EINVAL, "rdps_pull_sparse: null "
					       "argument");
	ctx = t->ctx;
	if (!n)
		return 0;
	ret = wrk_check_idx(t, idx, n, "sparse pull");
	if (ret)
		return ret;
	/* si[n], runs[n] (at most one per index), boff[n], want[S]. */
	need = n * (sizeof(*si) + sizeof(*runs) + sizeof(*boff)) + ctx->nshards;
	si = wrk_scratch(ctx, need);
	if (!si)
		return -ENOMEM;
	runs = (struct wrk_run *)(si + n);
	boff = (uint64_t *)(runs + n);
	p.runs = runs;
	p.want = (uint8_t *)(boff + n);
	memset(p.want, 0, ctx->nshards);
	for (size_t i = 0; i < n; i++) {
		si[i].idx = idx[i];
		si[i].pos = i;
	}
	qsort(si, n, sizeof(*si), wrk_sidx_cmp);
	bytes = wrk_sparse_plan(t, si, n, runs, boff, p.want, &p.nruns);
	ret = wrk_pull_bounce(t, &p, bytes);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++)
		memcpy((char *)dst + i * t->esz, (char *)ctx->bounce + boff[i],
		       t->esz);
	ctx->st.pulls++;
	ctx->st.bytes_pulled += n * t->esz;
	return 0;
}
