/* SPDX-License-Identifier: MIT */
/*
 * emb_push.c - an embedding push: the keys sorted by shard and key, the
 * rows of one key summed in call order, and each shard's {be64 key; dim
 * values} pairs sent through its sub-slots (PS_PUSH with PS_F_EMB); then
 * every shard's credit, or its NACK (ENOSPC: the table is full).
 *
 * Read top-down as a push runs.
 */
#include <stdio.h>
#include <stdlib.h>

#include "emb_codec.h"
#include "worker.h"

/* One key of a push, sorted by (shard, key, position in the call). */
struct wrk_emb_ent {
	uint64_t key;
	uint32_t shard;
	uint32_t idx;
};

static int wrk_emb_ent_cmp(const void *a_, const void *b_)
{
	const struct wrk_emb_ent *a = a_, *b = b_;

	if (a->shard != b->shard)
		return a->shard < b->shard ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* dst += src: dim values of the dtype, any alignment. */
static void wrk_emb_add(const struct rdps_emb *e, char *dst, const char *src)
{
	for (unsigned j = 0; j < e->cfg.dim; j++) {
		if (e->cfg.dtype == RDPS_DTYPE_F64) {
			double a, b;

			memcpy(&a, dst + 8 * j, 8);
			memcpy(&b, src + 8 * j, 8);
			a += b;
			memcpy(dst + 8 * j, &a, 8);
		} else {
			float a, b;

			memcpy(&a, dst + 4 * j, 4);
			memcpy(&b, src + 4 * j, 4);
			a += b;
			memcpy(dst + 4 * j, &a, 4);
		}
	}
}

/* Send the message of c pairs staged in sub-slot k of shard s. */
static int wrk_emb_send(struct rdps_emb *e, unsigned s, unsigned k, size_t c,
			uint64_t deadline)
{
	struct rdps_ctx *ctx = e->ctx;
	struct wrk_shard *sh = &ctx->sh[s];
	struct ps_msg *m = wrk_slot_msg(sh, k);
	size_t bytes = c * (8 + e->vbytes);

	wrk_msg_head(m, PS_PUSH, PS_F_EMB, e->part[s].index, c, ctx->clock,
		     bytes);
	return wrk_slot_send(ctx, sh, k, PS_PUSH, sizeof(*m) + bytes, deadline);
}

/*
 * Stage and send the entries ent[a, b) (all of shard s, sorted): one pair
 * per distinct key, its rows summed in call order, as many pairs per
 * sub-slot as fit. Adds the pairs sent to *rows.
 */
static int wrk_emb_push_shard(struct rdps_emb *e, unsigned s,
			      const struct wrk_emb_ent *ent, size_t a, size_t b,
			      const char *grads, uint64_t deadline,
			      uint64_t *rows)
{
	struct rdps_ctx *ctx = e->ctx;
	struct wrk_shard *sh = &ctx->sh[s];
	size_t pair = 8 + e->vbytes;
	size_t chunk = (sh->slot_bytes - sizeof(struct ps_msg)) / pair, c = 0;
	struct ps_msg *m;
	char *p = NULL;
	unsigned k = 0;
	int ret;

	for (size_t i = a; i < b; i++) {
		const char *g = grads + (size_t)ent[i].idx * e->vbytes;
		uint64_t be;

		if (p && i > a && ent[i].key == ent[i - 1].key) {
			wrk_emb_add(e, p + (c - 1) * pair + 8, g);
			continue;
		}
		if (p && c == chunk) {
			ret = wrk_emb_send(e, s, k, c, deadline);
			if (ret)
				return ret;
			*rows += c;
			p = NULL;
		}
		if (!p) {
			ret = wrk_slot_get(ctx, sh, deadline, &k, &m);
			if (ret)
				return ret;
			p = (char *)(m + 1);
			c = 0;
		}
		be = rdps_htobe64(ent[i].key);
		memcpy(p + c * pair, &be, 8);
		memcpy(p + c * pair + 8, g, e->vbytes);
		c++;
	}
	if (!p)
		return 0;
	ret = wrk_emb_send(e, s, k, c, deadline);
	if (!ret)
		*rows += c;
	return ret;
}

int rdps_emb_push(struct rdps_emb *e, const uint64_t *keys, size_t n,
		  const void *grads)
{
	struct wrk_emb_ent *ent;
	struct rdps_ctx *ctx;
	uint64_t deadline, rows = 0;
	uint8_t *mask;
	size_t a = 0;
	int ret;

	if (!e || (n && (!keys || !grads)))
		return rdps_set_error(-EINVAL, "rdps_emb_push: null argument");
	if (!n)
		return 0;
	ctx = e->ctx;
	if (n > UINT32_MAX || n > SIZE_MAX / 2 / sizeof(*ent))
		return rdps_set_error(-EINVAL,
				      "rdps_emb_push: %zu keys are too many "
				      "for one call",
				      n);
	ent = wrk_scratch(ctx, n * sizeof(*ent) + ctx->nshards);
	if (!ent)
		return -ENOMEM;
	mask = (uint8_t *)(ent + n);
	memset(mask, 0, ctx->nshards);
	for (size_t i = 0; i < n; i++) {
		ent[i].key = keys[i];
		ent[i].shard = ps_emb_shard(keys[i], ctx->nshards);
		ent[i].idx = (uint32_t)i;
	}
	qsort(ent, n, sizeof(*ent), wrk_emb_ent_cmp);
	deadline = wrk_deadline(ctx);
	while (a < n) {
		unsigned s = ent[a].shard;
		size_t b = a;

		while (b < n && ent[b].shard == s)
			b++;
		mask[s] = 1;
		ret = wrk_emb_push_shard(e, s, ent, a, b, grads, deadline,
					 &rows);
		if (ret)
			return ret;
		a = b;
	}
	ret = wrk_slots_drain(ctx, mask, deadline, "an embedding push");
	if (ret == -ENOSPC) {
		char why[512];

		snprintf(why, sizeof(why), "%s", rdps_errmsg());
		return rdps_set_error(ret,
				      "embedding table '%s' is full: it holds "
				      "%llu rows per shard (open it with a "
				      "larger capacity); %s",
				      e->name,
				      (unsigned long long)e->cfg.capacity, why);
	}
	if (ret)
		return ret;
	ctx->st.emb_pushes++;
	ctx->st.emb_rows_pushed += rows;
	ctx->st.bytes_pushed += rows * e->vbytes;
	return 0;
}
