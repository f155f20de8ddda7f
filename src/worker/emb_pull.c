/* SPDX-License-Identifier: MIT */
/*
 * emb_pull.c - an embedding pull, one-sided (ps_proto.h, "Embedding
 * tables"): a round of READs of both candidate buckets of every key that
 * needs them, on every shard at once; then a round of READs of the rows
 * found. Keys found nowhere take their initial value here. A bucket or a
 * row caught half written is read again in a later round; the pull is
 * over when every key has its row.
 *
 * The worker's location cache (rdps_emb_cfg.cache) remembers on which row
 * a key was found: a remembered key's row is read in the first round,
 * beside the buckets of the others, so a pull of remembered keys costs
 * one round trip and any pull at most two. A cached place is only a
 * hint: the row read there is checked like any other (ps_emb_row_verify:
 * it names its key, is not sealed dead, and its check matches), and one
 * that is no longer the key's drops the entry and sends the key to the
 * buckets. The shard changes what a row holds only by an update (the
 * same key), an undone insert (the row sealed dead first) and the reuse
 * of an undone row (another key's head): a cached read never returns a
 * row of a key that is not in the table. The cache belongs to the handle,
 * which dies with the context, so a restarted shard or a table created
 * anew never meets an old entry.
 *
 * A round posts one gather READ (transport.h, "Gather READ") per shard
 * and up to RDPS_TP_GATHER_MAX ranges, not one READ per range: on tcp each
 * READ is a request, a response and a completion served by the shard
 * host's CPU, so a pull of n keys cost ~3n of them; now ~3n / 128.
 *
 * Read top-down as a pull runs: the rounds come first, then the loop
 * that chooses the next round, then rdps_emb_pull().
 */
#include "emb_codec.h"
#include "worker.h"

/* A bucket that stays torn this many reads is corrupt, not busy: its
 * slots are written once. */
#define WRK_EMB_TORN_MAX 64

/* Entries per set of the location cache (a power of two, 64 B a set),
 * two candidate sets a key: direct-mapped, 3% of 4096 hot keys in 2^17
 * entries collided, one set of 4 still evicted ~1% of 41,000, and one
 * key missing costs its whole pull the second round trip. */
#define WRK_EMB_WAYS 4

enum wrk_emb_state { WRK_EMB_BUCKETS, WRK_EMB_ROW, WRK_EMB_DONE };

/* What a round read for a key. */
enum wrk_emb_rd { WRK_EMB_RD_NONE, WRK_EMB_RD_BUCKETS, WRK_EMB_RD_ROW };

/* One key of a pull. */
struct wrk_emb_key {
	uint32_t shard;
	uint32_t state; /* enum wrk_emb_state */
	uint32_t row;
	uint16_t torn;	/* bucket reads found torn */
	uint8_t cached; /* row from the location cache, not checked yet */
	uint8_t rd;	/* enum wrk_emb_rd: read this round */
};

/* A pull in progress: keys[n] into dst; buckets land in bk (128 B per
 * key), rows in rw (row_bytes per key), both in ctx->bounce. */
struct wrk_emb_pull {
	struct rdps_emb *e;
	const uint64_t *keys;
	size_t n;
	char *dst;
	struct wrk_emb_key *ks;
	uint32_t *order; /* key indices grouped by shard: order[start[s]..] */
	uint32_t *start; /* nshards + 1 */
	uint8_t *want;	 /* per shard: this round reads some of its keys */
	uint8_t *fresh;	 /* per shard: a header of this pull showed need */
	uint8_t *hdr;	 /* per shard: this round read its header */
	char *bk, *rw;
	uint64_t need, deadline;
};

/* The ranges of one shard gathered for one post, all into ctx->bounce. */
struct wrk_emb_batch {
	unsigned s, k, max;
	uint64_t bytes;
	struct rdps_tp_gather_ent ent[RDPS_TP_GATHER_MAX];
};

/* Post what b holds, one gather READ counted in g (a plain READ for one
 * range). */
static int wrk_emb_flush(struct rdps_ctx *ctx, struct wrk_grp *g,
			 struct wrk_emb_batch *b, uint64_t deadline)
{
	struct rdps_tp_ep *ep = ctx->sh[b->s].ep;
	const struct rdps_tp_gather_ent *e = b->ent;
	int ret;

	if (!b->k)
		return 0;
	if (b->k == 1)
		WRK_POST(ret, ctx, deadline, b->bytes,
			 rdps_tp_get(ep, e->lbuf, e->len, ctx->bounce_mr,
				     e->raddr, e->rkey, (uintptr_t)g, 0));
	else
		WRK_POST(ret, ctx, deadline, b->bytes,
			 rdps_tp_get_gather(ep, e, b->k, ctx->bounce_mr,
					    (uintptr_t)g, 0));
	b->k = 0;
	b->bytes = 0;
	if (ret)
		return wrk_grp_post_fail(ctx, &ctx->sh[b->s], g, ret, deadline,
					 "an embedding pull");
	g->left++;
	return 0;
}

/* Add a READ of len bytes at raddr of key into local dst to b, posting b
 * first when it is full. len is at most a row (wrk_emb_batch_init). */
static int wrk_emb_get(struct rdps_ctx *ctx, struct wrk_grp *g,
		       struct wrk_emb_batch *b, void *dst, uint32_t len,
		       uint64_t raddr, const struct rdps_tp_rkey *key,
		       uint64_t deadline)
{
	int ret;

	if (b->k == b->max || b->bytes + len > RDPS_TP_GATHER_MAX_BYTES) {
		ret = wrk_emb_flush(ctx, g, b, deadline);
		if (ret)
			return ret;
	}
	b->ent[b->k++] = (struct rdps_tp_gather_ent){
		.lbuf = dst, .raddr = raddr, .rkey = key, .len = len};
	b->bytes += len;
	return 0;
}

/* An empty batch for shard s: ranges per gather at most half the send
 * queue (verbs spends a slot per range), so two are in flight at once. */
static void wrk_emb_batch_init(struct rdps_ctx *ctx, struct wrk_emb_batch *b,
			       unsigned s)
{
	unsigned half = ctx->tp->cfg.sq_depth / 2;

	b->s = s;
	b->k = 0;
	b->bytes = 0;
	b->max = half < 1		     ? 1
		 : half < RDPS_TP_GATHER_MAX ? half
					     : RDPS_TP_GATHER_MAX;
}

/* The end of a round: every READ posted in g completed; counted. */
static int wrk_emb_wait(struct rdps_ctx *ctx, struct wrk_grp *g,
			uint64_t deadline)
{
	int ret = wrk_grp_wait(ctx, g, deadline, "an embedding pull");

	if (!ret)
		ctx->st.emb_round_trips++;
	return ret;
}

/* BSP, A-BSP: which shards whose headers this round read show the clock
 * this pull needs (fresh[s], for the rest of the pull: the applied clock
 * never goes back). The others are read again; a lost worker or stopped
 * shard is the error. */
static int wrk_emb_fresh(struct wrk_emb_pull *p)
{
	struct rdps_ctx *ctx = p->e->ctx;
	struct ps_dir_hdr *hdr = wrk_hdrs(ctx);
	int ret;

	for (unsigned s = 0; s < ctx->nshards; s++) {
		if (!p->hdr[s])
			continue;
		if (rdps_be64toh(hdr[s].applied_clock_be) >= p->need) {
			p->fresh[s] = 1;
			continue;
		}
		ret = wrk_lost_error(ctx, s, &hdr[s], "this pull");
		if (!ret)
			ret = wrk_hb_check(ctx, &ctx->sh[s], &hdr[s]);
		if (ret)
			return ret;
	}
	return 0;
}

/* The key i found in neither bucket: its initial value. */
static void wrk_emb_absent(struct wrk_emb_pull *p, size_t i)
{
	const struct rdps_emb_cfg *c = &p->e->cfg;

	ps_emb_init_row((uint32_t)c->init, c->init_scale, c->seed, p->keys[i],
			c->dim, (uint32_t)c->dtype, p->dst + i * p->e->vbytes);
	p->ks[i].state = WRK_EMB_DONE;
	p->e->ctx->st.emb_misses++;
}

/* Decode key i's two buckets as read: on to its row, absent, or read
 * again (torn). -EPROTO for a corrupt bucket. */
static int wrk_emb_decode(struct wrk_emb_pull *p, size_t i)
{
	struct rdps_emb *e = p->e;
	struct wrk_emb_key *k = &p->ks[i];
	struct wrk_emb_part *pt = &e->part[k->shard];
	int r[2];

	for (int c = 0; c < 2; c++) {
		r[c] = ps_emb_bucket_find(
			p->bk + i * 128 + c * 64, 64,
			ps_emb_bucket_of(p->keys[i], c, pt->nbuckets),
			p->keys[i], e->cfg.capacity, &k->row);
		if (r[c] == 1) {
			k->state = WRK_EMB_ROW;
			return 0;
		}
	}
	if (r[0] == -EPROTO || r[1] == -EPROTO ||
	    ((r[0] == -EAGAIN || r[1] == -EAGAIN) &&
	     ++k->torn >= WRK_EMB_TORN_MAX))
		return rdps_set_error(-EPROTO,
				      "embedding table '%s': the index on "
				      "shard %u (%s) is corrupt (a bucket of "
				      "key %llu never checks out)",
				      e->name, k->shard,
				      e->ctx->sh[k->shard].url,
				      (unsigned long long)p->keys[i]);
	if (r[0] == -EAGAIN || r[1] == -EAGAIN) {
		e->ctx->st.emb_torn_retries++;
		return 0;
	}
	wrk_emb_absent(p, i);
	return 0;
}

/* The two candidate sets of key in e's location cache (as the shard's
 * index has two candidate buckets: a set overflows only when both are
 * full); *h_out a hash of key. */
static void wrk_emb_loc_sets(const struct rdps_emb *e, uint64_t key,
			     struct wrk_emb_loc *set[2], uint64_t *h_out)
{
	uint64_t h = ps_emb_mix64(key ^ 0x3c6ef372fe94f82bull);
	uint64_t m = e->loc_mask & ~(uint64_t)(WRK_EMB_WAYS - 1);

	set[0] = &e->loc[h & m];
	set[1] = &e->loc[ps_emb_mix64(h) & m];
	*h_out = h;
}

/* The cache entry of key, or NULL. */
static struct wrk_emb_loc *wrk_emb_loc_find(const struct rdps_emb *e,
					    uint64_t key)
{
	struct wrk_emb_loc *set[2];
	uint64_t h;

	wrk_emb_loc_sets(e, key, set, &h);
	for (int c = 0; c < 2; c++)
		for (unsigned w = 0; w < WRK_EMB_WAYS; w++)
			if (set[c][w].row1 && set[c][w].key == key)
				return &set[c][w];
	return NULL;
}

/* Remember key on row: its entry, else a free one of its two sets, else
 * one its hash picks (a random replacement: no state to keep). */
static void wrk_emb_loc_put(struct rdps_emb *e, uint64_t key, uint32_t row)
{
	struct wrk_emb_loc *set[2], *l = wrk_emb_loc_find(e, key);
	uint64_t h;

	wrk_emb_loc_sets(e, key, set, &h);
	for (int c = 0; c < 2; c++)
		for (unsigned w = 0; !l && w < WRK_EMB_WAYS; w++)
			if (!set[c][w].row1)
				l = &set[c][w];
	if (!l)
		l = &set[h >> 63][(h >> 32) & (WRK_EMB_WAYS - 1)];
	l->key = key;
	l->row1 = row + 1;
}

void wrk_emb_cache_set(struct rdps_emb *e, uint64_t key, uint32_t row)
{
	if (e->loc && row < e->cfg.capacity)
		wrk_emb_loc_put(e, key, row);
}

/* Key i starts where the cache last saw its row, or at its buckets. */
static void wrk_emb_start(struct wrk_emb_pull *p, size_t i)
{
	struct rdps_emb *e = p->e;
	struct wrk_emb_key *k = &p->ks[i];
	const struct wrk_emb_loc *l;

	k->state = WRK_EMB_BUCKETS;
	l = e->loc ? wrk_emb_loc_find(e, p->keys[i]) : NULL;
	if (!l)
		return;
	k->state = WRK_EMB_ROW;
	k->row = l->row1 - 1;
	k->cached = 1;
	e->ctx->st.emb_cache_hits++;
}

/* Key i's row as read: its values out, or read it again (torn), or
 * look the key up again (the row is no longer its: a cached place is
 * dropped). A row found through the buckets is remembered. */
static int wrk_emb_row(struct wrk_emb_pull *p, size_t i)
{
	struct rdps_emb *e = p->e;
	struct rdps_ctx *ctx = e->ctx;
	struct wrk_emb_key *k = &p->ks[i];
	const char *row = p->rw + i * e->row_bytes;
	struct wrk_emb_loc *l;
	int ret;

	ret = ps_emb_row_verify(row, e->row_bytes, p->keys[i], e->cfg.dim,
				(uint32_t)e->cfg.dtype);
	if (ret == -EPROTO)
		return rdps_set_error(ret,
				      "embedding table '%s': bad row size on "
				      "shard %u",
				      e->name, k->shard);
	if (ret == -ESTALE && k->cached) {
		/* The row went to another key or its insert was undone. */
		ctx->st.emb_cache_stale++;
		l = wrk_emb_loc_find(e, p->keys[i]);
		if (l && l->row1 == k->row + 1)
			l->row1 = 0;
		k->cached = 0;
		k->state = WRK_EMB_BUCKETS;
		return 0;
	}
	if (ret) {
		/* Torn: read it again. Another key's: the slot was
		 * undone, look the key up again. */
		ctx->st.emb_torn_retries++;
		if (ret == -ESTALE)
			k->state = WRK_EMB_BUCKETS;
		return 0;
	}
	memcpy(p->dst + i * e->vbytes, row + sizeof(struct ps_emb_row),
	       e->vbytes);
	k->state = WRK_EMB_DONE;
	if (e->loc && !k->cached)
		wrk_emb_loc_put(e, p->keys[i], k->row);
	k->cached = 0;
	return 0;
}

/* Post shard s's READs of this round into b: both candidate buckets of
 * each key looking for its row, the row of each key that knows it. */
static int wrk_emb_post_shard(struct wrk_emb_pull *p, struct wrk_grp *g,
			      struct wrk_emb_batch *b, unsigned s)
{
	struct rdps_emb *e = p->e;
	struct rdps_ctx *ctx = e->ctx;
	struct wrk_emb_part *pt = &e->part[s];
	int ret;

	wrk_emb_batch_init(ctx, b, s);
	for (uint32_t j = p->start[s]; j < p->start[s + 1]; j++) {
		size_t i = p->order[j];
		const struct wrk_emb_key *k = &p->ks[i];

		if (k->rd == WRK_EMB_RD_ROW) {
			ret = wrk_emb_get(ctx, g, b, p->rw + i * e->row_bytes,
					  (uint32_t)e->row_bytes,
					  pt->rows_key.addr +
						  k->row * e->row_bytes,
					  &pt->rows_key, p->deadline);
			if (ret)
				return ret;
			continue;
		}
		for (int c = 0; k->rd == WRK_EMB_RD_BUCKETS && c < 2; c++) {
			uint64_t bk =
				ps_emb_bucket_of(p->keys[i], c, pt->nbuckets);

			ret = wrk_emb_get(ctx, g, b, p->bk + i * 128 + c * 64,
					  64, pt->index_key.addr + bk * 64,
					  &pt->index_key, p->deadline);
			if (ret)
				return ret;
		}
	}
	return wrk_emb_flush(ctx, g, b, p->deadline);
}

/* One round, every shard at once: the header (BSP, A-BSP: until one
 * showed the clock), the buckets of every key looking for its row and
 * the row of every key that knows it (found in a bucket, or cached),
 * then decode what came back. Keys of a shard whose header is not fresh
 * yet stay as they were. */
static int wrk_emb_round(struct wrk_emb_pull *p, struct wrk_grp *g,
			 struct wrk_emb_batch *b)
{
	struct rdps_emb *e = p->e;
	struct rdps_ctx *ctx = e->ctx;
	int ret;

	memset(p->want, 0, ctx->nshards);
	memset(p->hdr, 0, ctx->nshards);
	for (size_t i = 0; i < p->n; i++) {
		struct wrk_emb_key *k = &p->ks[i];

		k->rd = k->state == WRK_EMB_BUCKETS ? WRK_EMB_RD_BUCKETS
			: k->state == WRK_EMB_ROW   ? WRK_EMB_RD_ROW
						    : WRK_EMB_RD_NONE;
		if (k->rd)
			p->want[k->shard] = 1;
	}
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		if (!p->want[s])
			continue;
		if (sh->err)
			return wrk_dead_grp(ctx, sh, g, p->deadline,
					    "an embedding pull");
		if (p->fresh[s])
			continue;
		/* Before the shard's other reads on the same endpoint,
		 * which execute in order. */
		ret = wrk_grp_get(ctx, sh, g, &wrk_hdrs(ctx)[s], ctx->small_mr,
				  sizeof(struct ps_dir_hdr), sh->dir_key.addr,
				  &sh->dir_key, p->deadline,
				  "an embedding pull");
		if (ret)
			return ret;
		p->hdr[s] = 1;
	}
	for (unsigned s = 0; s < ctx->nshards; s++) {
		if (!p->want[s])
			continue;
		ret = wrk_emb_post_shard(p, g, b, s);
		if (ret)
			return ret;
	}
	ret = wrk_emb_wait(ctx, g, p->deadline);
	if (!ret)
		ret = wrk_emb_fresh(p);
	for (size_t i = 0; !ret && i < p->n; i++) {
		const struct wrk_emb_key *k = &p->ks[i];

		if (!k->rd || !p->fresh[k->shard])
			continue;
		ret = k->rd == WRK_EMB_RD_BUCKETS ? wrk_emb_decode(p, i)
						  : wrk_emb_row(p, i);
	}
	return ret;
}

/* How far the pull has to go, a sum that every step of a key lowers: 3
 * per key at a cached row (it may turn out stale: back to its buckets),
 * 2 per key looking for its bucket, 1 per key at a row it found there.
 * *stale_out: keys wait on a shard whose header is not fresh yet. */
static size_t wrk_emb_left(const struct wrk_emb_pull *p, int *stale_out)
{
	size_t left = 0;

	*stale_out = 0;
	for (size_t i = 0; i < p->n; i++) {
		const struct wrk_emb_key *k = &p->ks[i];

		if (k->state == WRK_EMB_DONE)
			continue;
		left += k->state == WRK_EMB_BUCKETS ? 2 : k->cached ? 3 : 1;
		*stale_out |= !p->fresh[k->shard];
	}
	return left;
}

/* Rounds until every key is done. With nothing torn or stale and the
 * shards fresh: two rounds, one when no key is present or every key's
 * place was cached. A round that moved no key on (a stale shard, torn
 * reads) backs off before the next. */
static int wrk_emb_rounds(struct wrk_emb_pull *p)
{
	struct rdps_ctx *ctx = p->e->ctx;
	unsigned attempt = 0;
	uint64_t t0 = 0;
	int stale;
	size_t left = wrk_emb_left(p, &stale), now;
	struct wrk_emb_batch batch;
	int ret;

	while (left) {
		struct wrk_grp g = {0, 0, 0};

		ret = wrk_emb_round(p, &g, &batch);
		if (ret)
			return ret;
		now = wrk_emb_left(p, &stale);
		if (now < left) {
			left = now;
			continue;
		}
		if (!t0)
			t0 = rdps_now_ns();
		if (rdps_now_ns() >= p->deadline) {
			ctx->st.pull_wait_ns += rdps_now_ns() - t0;
			if (stale)
				return rdps_set_error(
					-ETIMEDOUT,
					"embedding table '%s': timed out "
					"waiting for the shards to apply "
					"clock %llu",
					p->e->name,
					(unsigned long long)p->need);
			return rdps_set_error(
				-EPROTO,
				"embedding table '%s': a row never checked "
				"out within the timeout (corrupt, or "
				"rewritten without pause)",
				p->e->name);
		}
		ret = wrk_backoff(ctx, attempt++);
		if (ret) {
			ctx->st.pull_wait_ns += rdps_now_ns() - t0;
			return ret;
		}
	}
	if (t0)
		ctx->st.pull_wait_ns += rdps_now_ns() - t0;
	return 0;
}

int rdps_emb_pull(struct rdps_emb *e, const uint64_t *keys, size_t n, void *dst)
{
	struct wrk_emb_pull p;
	struct rdps_ctx *ctx;
	size_t per;
	int ret;

	if (!e || (n && (!keys || !dst)))
		return rdps_set_error(-EINVAL, "rdps_emb_pull: null argument");
	if (!n)
		return 0;
	ctx = e->ctx;
	per = 128 + e->row_bytes;
	if (n > SIZE_MAX / 2 / per || n > UINT32_MAX)
		return rdps_set_error(
			-EINVAL, "rdps_emb_pull: %zu keys are too many", n);
	memset(&p, 0, sizeof(p));
	p.e = e;
	p.keys = keys;
	p.n = n;
	p.dst = dst;
	p.need = wrk_need(ctx);
	p.deadline = wrk_deadline(ctx);
	ret = wrk_bounce(ctx, n * per);
	if (ret)
		return ret;
	p.bk = ctx->bounce;
	p.rw = p.bk + n * 128;
	p.ks = wrk_scratch(ctx, n * sizeof(*p.ks) + n * sizeof(*p.order) +
					(ctx->nshards + 1) * sizeof(*p.start) +
					3 * ctx->nshards);
	if (!p.ks)
		return -ENOMEM;
	p.order = (uint32_t *)(p.ks + n);
	p.start = p.order + n;
	p.want = (uint8_t *)(p.start + ctx->nshards + 1);
	p.fresh = p.want + ctx->nshards;
	p.hdr = p.fresh + ctx->nshards;
	memset(p.start, 0, (ctx->nshards + 1) * sizeof(*p.start));
	/* SSP and ASP accept any state: every shard is fresh. */
	memset(p.fresh, !p.need, ctx->nshards);
	memset(p.ks, 0, n * sizeof(*p.ks));
	for (size_t i = 0; i < n; i++) {
		p.ks[i].shard = ps_emb_shard(keys[i], ctx->nshards);
		wrk_emb_start(&p, i);
		p.start[p.ks[i].shard + 1]++;
	}
	/* Keys by shard, in their order within each: a gather per shard. */
	for (unsigned s = 0; s < ctx->nshards; s++)
		p.start[s + 1] += p.start[s];
	for (size_t i = 0; i < n; i++)
		p.order[p.start[p.ks[i].shard]++] = (uint32_t)i;
	for (unsigned s = ctx->nshards; s > 0; s--)
		p.start[s] = p.start[s - 1];
	p.start[0] = 0;
	ret = wrk_emb_rounds(&p);
	if (ret)
		return ret;
	ctx->st.emb_pulls++;
	ctx->st.emb_rows_pulled += n;
	ctx->st.bytes_pulled += n * e->vbytes;
	return 0;
}
