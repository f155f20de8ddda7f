/* SPDX-License-Identifier: MIT */
/*
 * slot.c - sub-slots: the ring of message slots a worker holds on each
 * shard; take one, send the message staged in it, wait for the credits.
 */
#include "worker.h"

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
int wrk_slot_get(struct rdps_ctx *ctx, struct wrk_shard *sh, uint64_t deadline,
		 unsigned *k_out, struct ps_msg **msg_out)
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
	*msg_out = wrk_slot_msg(sh, k);
	return 0;
}

/* Send the message staged in sub-slot k (header + payload bytes). */
int wrk_slot_send(struct rdps_ctx *ctx, struct wrk_shard *sh, unsigned k,
		  uint32_t kind, size_t len, uint64_t deadline)
{
	char *buf = (char *)wrk_slot_msg(sh, k);
	int ret;

	WRK_POST(ret, ctx, deadline, len,
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

void wrk_msg_head(struct ps_msg *m, uint32_t kind, uint32_t flags,
		  uint32_t table, uint64_t count, uint64_t clock,
		  uint64_t bytes)
{
	memset(m, 0, sizeof(*m));
	m->kind_be = rdps_htobe32(kind);
	m->flags_be = rdps_htobe32(flags);
	m->table_be = rdps_htobe32(table);
	m->count_be = rdps_htobe64(count);
	m->clock_be = rdps_htobe64(clock);
	m->bytes_be = rdps_htobe64(bytes);
}

/* Wait until every message sent to the shards in mask got its reply; a
 * NACK becomes the return value. */
int wrk_slots_drain(struct rdps_ctx *ctx, const uint8_t *mask,
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
