/* SPDX-License-Identifier: MIT */
/*
 * push.c - pushes: deltas cut into sub-slot messages per shard, sent with
 * write-with-immediate, then waited for until every shard applied them.
 *
 * Read top-down as a push runs: for each shard, take a sub-slot
 * (slot.c), stage a chunk of the delta in it and send it; then wait for
 * every shard's credits (wrk_slots_drain). The steps come before their
 * caller, in call order.
 */
#include "worker.h"

/* Below this a payload is copied into the header's write instead. */
#define WRK_ZCOPY_MIN 4096

/*
 * Where a shard serves at most one worker (workers <= shards), that
 * worker's part of a dense push goes in pieces of at most this many bytes,
 * so that the shard applies one while the next is on its way: in one
 * sub-slot message a 1 MiB push was the transfer (shm: the worker's copy)
 * and then the apply, one after the other, and on two cores the shard read
 * the whole megabyte from the other core's cache. shm, 1 MiB, one shard on
 * 2 cores: 216-246 us in one message, 84-86 us in 128 KiB pieces with the
 * worker and the shard on different cores; 164 against 125-137 us on the
 * same core. A shard that serves several workers is already applying one
 * worker's push while another's is on its way, and pieces only add
 * wake-ups: a credit per piece wakes its worker, which preempts the shard
 * (4 workers, one shard: 4.3 sleeps a push against 1.5, 650-750 us against
 * 512; 8 workers 1.5x slower).
 */
#define WRK_PUSH_PIECE (128u << 10)

static void wrk_msg_init(struct ps_msg *m, const struct rdps_table *t,
			 unsigned s, uint32_t flags, uint64_t start,
			 uint64_t count, uint64_t bytes)
{
	wrk_msg_head(m, PS_PUSH, flags, t->part[s].index, count, t->ctx->clock,
		     bytes);
	m->start_be = rdps_htobe64(start);
}

/*
 * Send elements [a, a+c) of a dense push to shard s, from src, in one
 * sub-slot message. ub: the rdps_buf_alloc() buffer holding the delta, or
 * NULL.
 */
static int wrk_push_chunk(struct rdps_table *t, unsigned s,
			  const struct wrk_ubuf *ub, const char *src,
			  uint64_t a, uint64_t c, uint64_t deadline)
{
	struct rdps_ctx *ctx = t->ctx;
	struct wrk_shard *sh = &ctx->sh[s];
	size_t len = c * t->esz;
	struct ps_msg *m;
	unsigned k;
	int ret;

	ret = wrk_slot_get(ctx, sh, deadline, &k, &m);
	if (ret)
		return ret;
	if (ub && len >= WRK_ZCOPY_MIN) {
		/* Payload first, from the caller's memory; the header's
		 * write-with-immediate after it on the same endpoint lands
		 * last. */
		wrk_msg_init(m, t, s, PS_F_SPLIT, a, c, len);
		WRK_POST(ret, ctx, deadline, len,
			 rdps_tp_put(sh->ep, src, len, ub->mr,
				     sh->slots_key.addr + k * sh->slot_bytes +
					     sizeof(*m),
				     &sh->slots_key, 0, RDPS_TP_F_UNSIGNALED));
		if (ret)
			return wrk_post_fail(ctx, sh, ret, "a push payload");
		len = 0;
	} else {
		wrk_msg_init(m, t, s, 0, a, c, len);
		memcpy(m + 1, src, len);
	}
	return wrk_slot_send(ctx, sh, k, PS_PUSH, sizeof(*m) + len, deadline);
}

/* Elements per message for n elements of esz bytes to sh: a sub-slot's
 * worth, or where a shard serves at most one worker, pieces of equal size,
 * whole 64-byte lines where the shard's part has them, at most
 * WRK_PUSH_PIECE bytes unless one element is larger. */
static uint64_t wrk_push_piece(const struct rdps_ctx *ctx,
			       const struct wrk_shard *sh, size_t esz,
			       uint64_t n)
{
	uint64_t room = (sh->slot_bytes - sizeof(struct ps_msg)) / esz;
	uint64_t max = WRK_PUSH_PIECE / esz, pieces, c;

	if (ctx->workers > ctx->nshards)
		return room;
	if (max > room)
		max = room;
	if (!max)
		max = 1;
	if (n <= max)
		return n ? n : 1;
	pieces = (n + max - 1) / max;
	c = (n + pieces - 1) / pieces;
	c = (c + PS_ALIGN_ELEMS - 1) / PS_ALIGN_ELEMS * PS_ALIGN_ELEMS;
	return c < max ? c : max;
}

/* Send shard s's part of a dense push of [start, start+count), in pieces
 * of wrk_push_piece() elements, one sub-slot message each. 1 if it sent any, 0
 * if none, or an error. */
static int wrk_push_shard(struct rdps_table *t, unsigned s, uint64_t start,
			  uint64_t count, const void *delta,
			  const struct wrk_ubuf *ub, uint64_t deadline)
{
	struct wrk_shard *sh = &t->ctx->sh[s];
	struct wrk_part *pt = &t->part[s];
	uint64_t a = start > pt->lo ? start : pt->lo;
	uint64_t b = start + count < pt->hi ? start + count : pt->hi;
	uint64_t chunk = wrk_push_piece(t->ctx, sh, t->esz, b > a ? b - a : 0);
	int ret, sent = 0;

	while (a < b) {
		uint64_t c = b - a < chunk ? b - a : chunk;
		const char *src = (const char *)delta + (a - start) * t->esz;

		ret = wrk_push_chunk(t, s, ub, src, a, c, deadline);
		if (ret)
			return ret;
		sent = 1;
		a += c;
	}
	return sent;
}

/* A zeroed byte per shard in the scratch: the shards a push sent to. */
static uint8_t *wrk_push_mask(struct rdps_ctx *ctx)
{
	uint8_t *mask = wrk_scratch(ctx, ctx->nshards);

	if (mask)
		memset(mask, 0, ctx->nshards);
	return mask;
}

/* Wait until the shards in mask applied the push (what), then count its
 * bytes. */
static int wrk_push_end(struct rdps_ctx *ctx, const uint8_t *mask,
			uint64_t deadline, const char *what, uint64_t bytes)
{
	int ret = wrk_slots_drain(ctx, mask, deadline, what);

	if (ret)
		return ret;
	ctx->st.pushes++;
	ctx->st.bytes_pushed += bytes;
	return 0;
}

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
	mask = wrk_push_mask(ctx);
	if (!mask)
		return -ENOMEM;
	deadline = wrk_deadline(ctx);
	/* A delta in rdps_buf_alloc() memory goes straight to the slots. */
	ub = wrk_ubuf_find(ctx, delta, count * t->esz);
	for (unsigned s = 0; s < ctx->nshards; s++) {
		ret = wrk_push_shard(t, s, start, count, delta, ub, deadline);
		if (ret < 0)
			return ret;
		mask[s] = (uint8_t)ret;
	}
	return wrk_push_end(ctx, mask, deadline, "a push", count * t->esz);
}

/* Sparse pushes ----------------------------------------------------------- */

/*
 * Send shard s's entries of a sparse push (the indices in its range, each
 * as a big-endian index followed by its delta), as many per sub-slot as
 * fit. 1 if it sent any, 0 if none, or an error.
 */
static int wrk_push_sparse_shard(struct rdps_table *t, unsigned s,
				 const uint64_t *idx, size_t n,
				 const void *delta, uint64_t deadline)
{
	struct rdps_ctx *ctx = t->ctx;
	struct wrk_shard *sh = &ctx->sh[s];
	struct wrk_part *pt = &t->part[s];
	size_t pair = 8 + t->esz, i = 0;
	uint64_t chunk = (sh->slot_bytes - sizeof(struct ps_msg)) / pair;
	struct ps_msg *m = NULL;
	uint64_t c = 0;
	unsigned k = 0;
	int ret, sent = 0;

	for (;;) {
		if (m && (c == chunk || i == n)) {
			wrk_msg_init(m, t, s, PS_F_SPARSE, 0, c, c * pair);
			ret = wrk_slot_send(ctx, sh, k, PS_PUSH,
					    sizeof(*m) + c * pair, deadline);
			if (ret)
				return ret;
			sent = 1;
			m = NULL;
			c = 0;
		}
		if (i == n)
			return sent;
		if (idx[i] < pt->lo || idx[i] >= pt->hi) {
			i++;
			continue;
		}
		if (!m) {
			ret = wrk_slot_get(ctx, sh, deadline, &k, &m);
			if (ret)
				return ret;
		}
		{
			char *p = (char *)(m + 1) + c * pair;
			uint64_t be = rdps_htobe64(idx[i]);

			memcpy(p, &be, 8);
			memcpy(p + 8, (const char *)delta + i * t->esz, t->esz);
		}
		c++;
		i++;
	}
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
	ret = wrk_check_idx(t, idx, n, "sparse push");
	if (ret)
		return ret;
	if (!n)
		return 0;
	mask = wrk_push_mask(ctx);
	if (!mask)
		return -ENOMEM;
	deadline = wrk_deadline(ctx);
	for (unsigned s = 0; s < ctx->nshards; s++) {
		ret = wrk_push_sparse_shard(t, s, idx, n, delta, deadline);
		if (ret < 0)
			return ret;
		mask[s] = (uint8_t)ret;
	}
	return wrk_push_end(ctx, mask, deadline, "a sparse push", n * t->esz);
}
