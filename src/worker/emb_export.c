/* SPDX-License-Identifier: MIT */
/*
 * emb_export.c - every row of an embedding table, one-sided
 * (rdps_emb_export): shard by shard, its directory header until it holds
 * this worker's clock (BSP, A-BSP, as a pull waits), then its index in
 * chunks of buckets, then the rows the chunk's slots name. Slots and rows
 * are checked with the decoders a pull uses (src/emb_codec.h), so a torn
 * read is read again and a corrupt bucket or row is an error; the
 * shard's CPU does nothing.
 */
#include "emb_codec.h"
#include "worker.h"

/* Buckets per index READ (64 KiB): a few round trips for a large table. */
#define WRK_EXP_BUCKETS 1024u
/* Bytes of row READs in flight in one round. */
#define WRK_EXP_ROW_BYTES (1u << 20)
/* A chunk whose slots stay torn this many reads is corrupt, not busy: a
 * slot is written once (as in emb_pull.c). */
#define WRK_EXP_TORN_MAX 64

/* A slot found in the index: key's row; done once its row was given to
 * fn or found reused. */
struct wrk_exp_slot {
	uint64_t key;
	uint32_t row;
	uint32_t done;
};

/* An export in progress on shard s: index chunks land in idx, rows in
 * rw (both in ctx->bounce); sl holds the slots of the current chunk. */
struct wrk_exp {
	struct rdps_emb *e;
	int (*fn)(void *arg, uint64_t key, const void *vals);
	void *arg;
	unsigned s;
	uint64_t deadline;
	char *idx, *rw;
	size_t per_round; /* rows read in one round */
	struct wrk_exp_slot *sl;
	size_t nsl;
};

/* READ len bytes at raddr of key on the shard into dst, counted in g. */
static int wrk_exp_get(struct wrk_exp *x, struct wrk_grp *g, void *dst,
		       struct rdps_tp_mr *mr, uint64_t len, uint64_t raddr,
		       struct rdps_tp_rkey *key)
{
	struct rdps_ctx *ctx = x->e->ctx;

	return wrk_grp_get(ctx, &ctx->sh[x->s], g, dst, mr, len, raddr, key,
			   x->deadline, "an embedding export");
}

/* Decode the chunk of nb buckets from b0 as read: its slots into sl.
 * 1 when a slot was caught half written (read the chunk again), 0, or
 * -EPROTO for a corrupt bucket. Each slot is checked by looking its key
 * up in its bucket, as a pull does. */
static int wrk_exp_decode(struct wrk_exp *x, uint64_t b0, size_t nb)
{
	struct rdps_emb *e = x->e;

	x->nsl = 0;
	for (size_t j = 0; j < nb; j++) {
		const char *bk = x->idx + j * 64;

		for (unsigned i = 0; i < PS_EMB_SLOTS; i++) {
			struct ps_emb_slot s;
			uint32_t row;
			uint64_t key;
			int r;

			memcpy(&s, bk + i * sizeof(s), sizeof(s));
			if (!s.meta_be)
				continue;
			key = rdps_be64toh(s.key_be);
			r = ps_emb_bucket_find(bk, 64, b0 + j, key,
					       e->cfg.capacity, &row);
			if (r == -EPROTO)
				return rdps_set_error(
					-EPROTO,
					"embedding table '%s': the index on "
					"shard %u (%s) is corrupt (bucket "
					"%llu names a row beyond its capacity)",
					e->name, x->s, e->ctx->sh[x->s].url,
					(unsigned long long)(b0 + j));
			if (r != 1)
				return 1;
			x->sl[x->nsl].key = key;
			x->sl[x->nsl].row = row;
			x->sl[x->nsl].done = 0;
			x->nsl++;
		}
	}
	return 0;
}

/* Read the chunk of nb buckets from b0 until no slot is torn. */
static int wrk_exp_index(struct wrk_exp *x, uint64_t b0, size_t nb)
{
	struct rdps_ctx *ctx = x->e->ctx;
	struct wrk_emb_part *pt = &x->e->part[x->s];

	for (unsigned attempt = 0;; attempt++) {
		struct wrk_grp g = {0, 0, 0};
		int ret;

		ret = wrk_exp_get(x, &g, x->idx, ctx->bounce_mr, nb * 64,
				  pt->index_key.addr + b0 * 64, &pt->index_key);
		if (!ret)
			ret = wrk_grp_wait(ctx, &g, x->deadline,
					   "an embedding export");
		if (!ret)
			ret = wrk_exp_decode(x, b0, nb);
		if (ret <= 0)
			return ret;
		ctx->st.emb_torn_retries++;
		if (attempt + 1 >= WRK_EXP_TORN_MAX)
			return rdps_set_error(
				-EPROTO,
				"embedding table '%s': the index on shard %u "
				"(%s) is corrupt (a slot of buckets %llu .. "
				"%llu never checks out)",
				x->e->name, x->s, ctx->sh[x->s].url,
				(unsigned long long)b0,
				(unsigned long long)(b0 + nb - 1));
		ret = wrk_backoff(ctx, attempt);
		if (ret)
			return ret;
	}
}

/* Rows sl[i0 .. i1): READ those not done, check each, hand the good ones
 * to fn; a torn row is read again, one whose head names another key was
 * undone and reused (its key left the table): skipped. */
static int wrk_exp_rows(struct wrk_exp *x, size_t i0, size_t i1)
{
	struct rdps_emb *e = x->e;
	struct rdps_ctx *ctx = e->ctx;
	struct wrk_emb_part *pt = &e->part[x->s];

	for (unsigned attempt = 0;; attempt++) {
		struct wrk_grp g = {0, 0, 0};
		size_t left = 0;
		int ret = 0;

		for (size_t i = i0; !ret && i < i1; i++)
			if (!x->sl[i].done)
				ret = wrk_exp_get(
					x, &g, x->rw + (i - i0) * e->row_bytes,
					ctx->bounce_mr, e->row_bytes,
					pt->rows_key.addr +
						x->sl[i].row * e->row_bytes,
					&pt->rows_key);
		if (!ret)
			ret = wrk_grp_wait(ctx, &g, x->deadline,
					   "an embedding export");
		if (ret)
			return ret;
		for (size_t i = i0; i < i1; i++) {
			struct wrk_exp_slot *sl = &x->sl[i];
			const char *row = x->rw + (i - i0) * e->row_bytes;

			if (sl->done)
				continue;
			ret = ps_emb_row_verify(row, e->row_bytes, sl->key,
						e->cfg.dim,
						(uint32_t)e->cfg.dtype);
			if (ret == -EPROTO)
				return rdps_set_error(
					ret,
					"embedding table '%s': bad row size "
					"on shard %u",
					e->name, x->s);
			if (ret == -EAGAIN) {
				left++;
				continue;
			}
			sl->done = 1;
			if (ret)
				continue; /* -ESTALE: reused */
			ret = x->fn(x->arg, sl->key,
				    row + sizeof(struct ps_emb_row));
			if (ret)
				return ret;
		}
		if (!left)
			return 0;
		ctx->st.emb_torn_retries += left;
		if (rdps_now_ns() >= x->deadline)
			return rdps_set_error(
				-EPROTO,
				"embedding table '%s': a row on shard %u "
				"never checked out within the timeout "
				"(corrupt, or rewritten without pause)",
				e->name, x->s);
		ret = wrk_backoff(ctx, attempt);
		if (ret)
			return ret;
	}
}

/* Every row of shard x->s. */
static int wrk_exp_shard(struct wrk_exp *x)
{
	uint64_t nbuckets = x->e->part[x->s].nbuckets;
	int ret;

	x->deadline = wrk_deadline(x->e->ctx);
	ret = wrk_emb_wait_applied(x->e, x->s, x->deadline,
				   "an embedding export");
	for (uint64_t b0 = 0; !ret && b0 < nbuckets; b0 += WRK_EXP_BUCKETS) {
		size_t nb = (size_t)(nbuckets - b0 < WRK_EXP_BUCKETS
					     ? nbuckets - b0
					     : WRK_EXP_BUCKETS);

		x->deadline = wrk_deadline(x->e->ctx);
		ret = wrk_exp_index(x, b0, nb);
		for (size_t i = 0; !ret && i < x->nsl; i += x->per_round)
			ret = wrk_exp_rows(x, i,
					   x->nsl - i < x->per_round
						   ? x->nsl
						   : i + x->per_round);
	}
	return ret;
}

int rdps_emb_export(struct rdps_emb *e,
		    int (*fn)(void *arg, uint64_t key, const void *vals),
		    void *arg)
{
	struct wrk_exp x;
	struct rdps_ctx *ctx;
	int ret;

	if (!e || !fn)
		return rdps_set_error(-EINVAL,
				      "rdps_emb_export: null argument");
	ctx = e->ctx;
	memset(&x, 0, sizeof(x));
	x.e = e;
	x.fn = fn;
	x.arg = arg;
	x.per_round = WRK_EXP_ROW_BYTES / e->row_bytes;
	if (!x.per_round)
		x.per_round = 1;
	ret = wrk_bounce(ctx,
			 WRK_EXP_BUCKETS * 64 + x.per_round * e->row_bytes);
	if (ret)
		return ret;
	x.idx = ctx->bounce;
	x.rw = x.idx + WRK_EXP_BUCKETS * 64;
	x.sl = wrk_scratch(ctx, WRK_EXP_BUCKETS * PS_EMB_SLOTS * sizeof(*x.sl));
	if (!x.sl)
		return -ENOMEM;
	for (x.s = 0; x.s < ctx->nshards; x.s++) {
		ret = wrk_exp_shard(&x);
		if (ret)
			return ret;
	}
	return 0;
}
