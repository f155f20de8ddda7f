/* SPDX-License-Identifier: MIT */
/*
 * emb_push.c - a push to an embedding table on the shard: {be64 key; dim
 * values} pairs. SSP and ASP insert the message's unseen keys (all or
 * none) and apply the rule to each row at once; BSP and A-BSP sum each
 * worker's rows of the clock per key and apply the sums at clock end in
 * worker order, so rows and index come out the same on every run. The
 * maps that hold those sums keep first-seen order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "emb_codec.h"
#include "server/server_impl.h"

/* Key -> entry maps ------------------------------------------------------- */

void srv_emb_map_free(struct srv_emb_map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->hix);
	m->keys = NULL;
	m->vals = NULL;
	m->hix = NULL;
	m->n = m->cap = m->hcap = 0;
}

/* The hash slot of key in m: its entry's or the free one to take. */
static size_t srv_emb_map_pos(const struct srv_emb_map *m, uint64_t key)
{
	size_t h = (size_t)ps_emb_mix64(key) & (m->hcap - 1);

	while (m->hix[h] && m->keys[m->hix[h] - 1] != key)
		h = (h + 1) & (m->hcap - 1);
	return h;
}

/* Rebuild the hash of m's first n entries with hcap slots. */
static int srv_emb_map_rehash(struct srv_emb_map *m, size_t hcap)
{
	uint32_t *hix = calloc(hcap, sizeof(*hix));

	if (!hix)
		return -ENOMEM;
	free(m->hix);
	m->hix = hix;
	m->hcap = hcap;
	for (size_t i = 0; i < m->n; i++)
		m->hix[srv_emb_map_pos(m, m->keys[i])] = (uint32_t)(i + 1);
	return 0;
}

/* Room for one more entry. */
static int srv_emb_map_grow(struct srv_emb_map *m)
{
	size_t cap = m->cap ? 2 * m->cap : 64;
	uint64_t *keys;
	unsigned char *vals;

	if (m->n < m->cap)
		return 0;
	keys = realloc(m->keys, cap * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	m->keys = keys;
	if (m->vbytes) {
		vals = realloc(m->vals, cap * m->vbytes);
		if (!vals)
			return -ENOMEM;
		m->vals = vals;
	}
	m->cap = cap;
	return srv_emb_map_rehash(m, 2 * cap);
}

/* Entry of key in m, or -1. */
static int64_t srv_emb_map_get(const struct srv_emb_map *m, uint64_t key)
{
	size_t h;

	if (!m->n)
		return -1;
	h = srv_emb_map_pos(m, key);
	return m->hix[h] ? (int64_t)m->hix[h] - 1 : -1;
}

/* Entry of key in m, added (values zeroed) if absent. -ENOMEM. */
static int64_t srv_emb_map_add(struct srv_emb_map *m, uint64_t key)
{
	int64_t e = srv_emb_map_get(m, key);
	int ret;

	if (e >= 0)
		return e;
	ret = srv_emb_map_grow(m);
	if (ret)
		return ret;
	e = (int64_t)m->n++;
	m->keys[e] = key;
	if (m->vbytes)
		memset(m->vals + (size_t)e * m->vbytes, 0, m->vbytes);
	m->hix[srv_emb_map_pos(m, key)] = (uint32_t)(e + 1);
	return e;
}

/* Forget entries n and after (a refused message's). */
static void srv_emb_map_cut(struct srv_emb_map *m, size_t n)
{
	if (n >= m->n)
		return;
	m->n = n;
	memset(m->hix, 0, m->hcap * sizeof(*m->hix));
	for (size_t i = 0; i < n; i++)
		m->hix[srv_emb_map_pos(m, m->keys[i])] = (uint32_t)(i + 1);
}

/* Pushes ------------------------------------------------------------------ */

/* dst += src, dim values of dtype, any alignment. */
static void srv_emb_add(const struct srv_emb *t, void *dst, const void *src)
{
	struct srv_slice sl = {
		.dtype = t->dtype,
		.rule = PS_RULE_SUM,
		.esize = ps_dtype_size(t->dtype),
		.len = t->dim,
		.params = dst,
	};

	srv_apply(&sl, 0, t->dim, src, sl.esize);
}

static uint64_t srv_emb_key(const unsigned char *pair)
{
	uint64_t k;

	memcpy(&k, pair, 8);
	return rdps_be64toh(k);
}

static int srv_emb_full(struct srv_worker *w, const struct srv_emb *t,
			const char *why)
{
	rdps_warn("worker %u: push to embedding table '%s' refused: %s "
		  "(capacity %" PRIu64 " rows on shard %u)",
		  w->rank, t->name, why, t->capacity, w->s->cfg.shard);
	return -ENOSPC;
}

/* SSP, ASP: insert the unseen keys of all count pairs or none, then
 * apply each pair's row. */
static int srv_emb_push_now(struct srv_worker *w, struct srv_emb *t,
			    const unsigned char *pl, uint64_t count,
			    size_t pair)
{
	uint64_t nrows0 = t->nrows;
	uint32_t row;
	int ret = 0;
	uint64_t i;

	for (i = 0; i < count; i++) {
		uint64_t key = srv_emb_key(pl + i * pair);

		if (srv_emb_find(t, key) >= 0)
			continue;
		ret = srv_emb_insert(t, key, &row);
		if (ret)
			break;
	}
	if (ret) {
		/* Undo this message's inserts, newest first. */
		while (i-- > 0 && t->nrows > nrows0) {
			uint64_t key = srv_emb_key(pl + i * pair);
			int64_t r = srv_emb_find(t, key);

			if (r >= 0 && (uint64_t)r == t->nrows - 1)
				srv_emb_uninsert(t, key);
		}
		return srv_emb_full(w, t,
				    t->nrows >= t->capacity
					    ? "the table is full"
					    : "both buckets of a key are full");
	}
	for (i = 0; i < count; i++) {
		int64_t r = srv_emb_find(t, srv_emb_key(pl + i * pair));

		if (rdps_likely(r >= 0))
			srv_emb_update(t, (uint32_t)r, pl + i * pair + 8);
	}
	return 0;
}

/* BSP: reserve rows for the unseen keys (all or none), then add every
 * pair's row to w's sum for the clock. */
static int srv_emb_push_later(struct srv_worker *w, struct srv_emb *t,
			      const unsigned char *pl, uint64_t count,
			      size_t pair)
{
	struct srv_emb_map *pd = &t->pend[w->rank];
	size_t res0 = t->reserved.n;
	int64_t e;

	for (uint64_t i = 0; i < count; i++) {
		uint64_t key = srv_emb_key(pl + i * pair);

		if (srv_emb_find(t, key) >= 0 ||
		    srv_emb_map_get(&t->reserved, key) >= 0)
			continue;
		if (t->nrows + t->reserved.n >= t->capacity) {
			srv_emb_map_cut(&t->reserved, res0);
			return srv_emb_full(w, t, "the table is full");
		}
		e = srv_emb_map_add(&t->reserved, key);
		if (e < 0) {
			srv_emb_map_cut(&t->reserved, res0);
			return (int)e;
		}
	}
	for (uint64_t i = 0; i < count; i++) {
		e = srv_emb_map_add(pd, srv_emb_key(pl + i * pair));
		if (e < 0) {
			rdps_err("worker %u: out of memory summing a push to "
				 "embedding table '%s'",
				 w->rank, t->name);
			return (int)e;
		}
		srv_emb_add(t, pd->vals + (size_t)e * pd->vbytes,
			    pl + i * pair + 8);
	}
	return 0;
}

int srv_emb_handle_push(struct srv_worker *w, const struct ps_msg *m,
			const unsigned char *payload)
{
	struct rdps_server *s = w->s;
	uint32_t tix = rdps_be32toh(m->table_be);
	uint32_t flags = rdps_be32toh(m->flags_be);
	uint64_t count = rdps_be64toh(m->count_be);
	uint64_t bytes = rdps_be64toh(m->bytes_be);
	struct srv_emb *t;
	size_t pair;
	int ret;

	if (tix >= PS_EMB_MAX || !s->emb[tix].used) {
		rdps_warn("worker %u: push to embedding table %u, which does "
			  "not exist on shard %u: refused",
			  w->rank, tix, s->cfg.shard);
		return -ENOENT;
	}
	t = &s->emb[tix];
	if (flags & PS_F_LOOKUP)
		return srv_emb_lookup(w, t, m, payload);
	if (flags & ~(PS_F_EMB | PS_F_SPLIT)) {
		rdps_warn("worker %u: push to embedding table '%s' with "
			  "unknown flags 0x%x: refused",
			  w->rank, t->name, flags);
		return -EINVAL;
	}
	pair = 8 + t->vbytes;
	if (count > bytes || bytes != count * pair) {
		rdps_warn("worker %u: push to embedding table '%s' of %" PRIu64
			  " rows carries %" PRIu64 " bytes, not %" PRIu64
			  ": refused",
			  w->rank, t->name, count, bytes, count * pair);
		return -EINVAL;
	}
	if (t->overflowed)
		return srv_emb_full(w, t,
				    "an earlier clock found both buckets of "
				    "a key full");
	ret = srv_push_clock_check(w, rdps_be64toh(m->clock_be), t->name);
	if (ret)
		return ret;
	if (srv_bsp(s))
		return srv_emb_push_later(w, t, payload, count, pair);
	return srv_emb_push_now(w, t, payload, count, pair);
}

/* BSP: apply one table's sums, workers 0..W-1, each in first-seen order. */
static void srv_emb_apply_table(struct rdps_server *s, struct srv_emb *t)
{
	for (unsigned w = 0; w < s->cfg.workers; w++) {
		struct srv_emb_map *pd = &t->pend[w];

		for (size_t i = 0; i < pd->n; i++) {
			uint64_t key = pd->keys[i];
			int64_t r = srv_emb_find(t, key);
			uint32_t row;

			if (r < 0) {
				if (srv_emb_insert(t, key, &row)) {
					/* Rows were reserved, so both
					 * buckets are full: refuse from now
					 * on rather than drop silently. */
					rdps_err("embedding table '%s': both "
						 "buckets of key %" PRIu64
						 " are full on shard %u: its "
						 "update of clock %" PRIu64
						 " is lost; the table refuses "
						 "pushes from now on",
						 t->name, key, s->cfg.shard,
						 s->applied);
					t->overflowed = true;
					continue;
				}
				r = row;
			}
			srv_emb_update(t, (uint32_t)r,
				       pd->vals + i * pd->vbytes);
		}
		srv_emb_map_cut(pd, 0);
	}
	srv_emb_map_cut(&t->reserved, 0);
}

void srv_emb_apply_pending(struct rdps_server *s)
{
	for (unsigned i = 0; i < PS_EMB_MAX; i++)
		if (s->emb[i].used && s->emb[i].pend)
			srv_emb_apply_table(s, &s->emb[i]);
}
