/* SPDX-License-Identifier: MIT */
/*
 * emb_lookup.c - the two-sided embedding lookup, the baseline rdps-psbench
 * measures the one-sided pull against (ps_proto.h, PS_F_LOOKUP): keys go
 * to each shard in sub-slot messages, the shard's CPU writes the rows
 * into this worker's landing area and then credits the message.
 */
#include "emb_codec.h"
#include "worker.h"

/* The landing area, registered for the shards' writes, >= len bytes. */
static int wrk_emb_lk_area(struct rdps_ctx *ctx, size_t len)
{
	if (ctx->lk_len >= len)
		return 0;
	wrk_mem_put(ctx, &ctx->lk, &ctx->lk_len, &ctx->lk_mr);
	return wrk_mem_get(ctx, len, RDPS_TP_ACCESS_REMOTE_WRITE, &ctx->lk,
			   &ctx->lk_len, &ctx->lk_mr, "lookup replies");
}

/* Send the c keys ord[a, a + c) (all of shard s) in one message; their
 * rows land at landing offset off. */
static int wrk_emb_lk_send(struct rdps_emb *e, unsigned s, const uint64_t *keys,
			   const uint32_t *ord, size_t a, size_t c, size_t off,
			   uint64_t deadline)
{
	struct rdps_ctx *ctx = e->ctx;
	struct wrk_shard *sh = &ctx->sh[s];
	struct ps_emb_lookup *lk;
	struct ps_msg *m;
	size_t bytes = sizeof(*lk) + c * 8;
	unsigned k;
	int ret;

	ret = wrk_slot_get(ctx, sh, deadline, &k, &m);
	if (ret)
		return ret;
	lk = (struct ps_emb_lookup *)(m + 1);
	wrk_msg_head(m, PS_PUSH, PS_F_EMB | PS_F_LOOKUP, e->part[s].index, c,
		     ctx->clock, bytes);
	memset(lk, 0, sizeof(*lk));
	rdps_tp_rkey_pack(ctx->lk_mr, &lk->dst);
	lk->dst_addr_be = rdps_htobe64((uint64_t)(uintptr_t)ctx->lk + off);
	for (size_t i = 0; i < c; i++) {
		uint64_t be = rdps_htobe64(keys[ord[a + i]]);

		memcpy((char *)(lk + 1) + i * 8, &be, 8);
	}
	return wrk_slot_send(ctx, sh, k, PS_PUSH, sizeof(*m) + bytes, deadline);
}

int wrk_emb_lookup(struct rdps_emb *e, const uint64_t *keys, size_t n,
		   void *dst)
{
	struct rdps_ctx *ctx;
	uint32_t *ord, *start;
	uint8_t *mask;
	uint64_t deadline;
	int ret;

	if (!e || (n && (!keys || !dst)))
		return rdps_set_error(-EINVAL, "wrk_emb_lookup: null argument");
	if (!n)
		return 0;
	ctx = e->ctx;
	if (n > UINT32_MAX / 2)
		return rdps_set_error(-EINVAL, "wrk_emb_lookup: too many keys");
	ret = wrk_emb_lk_area(ctx, n * e->vbytes);
	if (ret)
		return ret;
	ord = wrk_scratch(ctx, (n + 2 * ctx->nshards + 1) * sizeof(*ord) +
				       ctx->nshards);
	if (!ord)
		return -ENOMEM;
	/* Keys by shard, in call order within a shard (counting sort). */
	start = ord + n;
	mask = (uint8_t *)(start + 2 * ctx->nshards + 1);
	memset(start, 0, (2 * ctx->nshards + 1) * sizeof(*start));
	for (size_t i = 0; i < n; i++)
		start[ps_emb_shard(keys[i], ctx->nshards) + 1]++;
	for (unsigned s = 0; s < ctx->nshards; s++)
		start[s + 1] += start[s];
	memcpy(start + ctx->nshards + 1, start, ctx->nshards * sizeof(*start));
	for (size_t i = 0; i < n; i++)
		ord[start[ctx->nshards + 1 +
			  ps_emb_shard(keys[i], ctx->nshards)]++] = (uint32_t)i;
	deadline = wrk_deadline(ctx);
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];
		size_t per = (sh->slot_bytes - sizeof(struct ps_msg) -
			      sizeof(struct ps_emb_lookup)) /
			     8;

		if (per > sh->slot_bytes / e->vbytes)
			per = sh->slot_bytes / e->vbytes;
		mask[s] = start[s] < start[s + 1];
		for (size_t a = start[s]; a < start[s + 1]; a += per) {
			size_t c =
				start[s + 1] - a < per ? start[s + 1] - a : per;

			ret = wrk_emb_lk_send(e, s, keys, ord, a, c,
					      a * e->vbytes, deadline);
			if (ret)
				return ret;
		}
	}
	ret = wrk_slots_drain(ctx, mask, deadline, "an embedding lookup");
	if (ret)
		return ret;
	for (size_t j = 0; j < n; j++)
		memcpy((char *)dst + (size_t)ord[j] * e->vbytes,
		       (char *)ctx->lk + j * e->vbytes, e->vbytes);
	return 0;
}
