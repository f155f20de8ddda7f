/* SPDX-License-Identifier: MIT */
/*
 * emb_table.c - embedding tables on the worker: rdps_emb_open() asks every
 * shard to create the table (PS_CREATE with PS_F_EMB) or checks it, then
 * learns each shard's part (its index and row regions) from the
 * directory's emb[] entries.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "emb_codec.h"
#include "worker.h"

void rdps_emb_cfg_default(struct rdps_emb_cfg *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->dim = 16;
	cfg->dtype = RDPS_DTYPE_F32;
	cfg->rule = RDPS_RULE_SGD;
	cfg->lr = 0.01;
	cfg->capacity = 65536;
	cfg->init = RDPS_EMB_INIT_ZERO;
	cfg->init_scale = 0.01;
	cfg->seed = 1;
	cfg->cache = 1;
}

unsigned rdps_emb_dim(const struct rdps_emb *emb)
{
	return emb ? emb->cfg.dim : 0;
}

void wrk_emb_free_all(struct rdps_ctx *ctx)
{
	struct rdps_emb *e, *next;

	for (e = ctx->embs; e; e = next) {
		next = e->next;
		free(e->loc);
		free(e->part);
		free(e);
	}
	ctx->embs = NULL;
}

static int wrk_emb_args(const char *name, size_t len,
			const struct rdps_emb_cfg *c)
{
	if (!len || len > RDPS_TABLE_NAME_MAX)
		return rdps_set_error(-EINVAL,
				      "bad embedding table name '%s': 1 to %d "
				      "characters",
				      name, RDPS_TABLE_NAME_MAX);
	if (!c->dim || c->dim > PS_EMB_DIM_MAX)
		return rdps_set_error(-EINVAL,
				      "embedding table '%s': dim %u, must be "
				      "1 to %d",
				      name, c->dim, PS_EMB_DIM_MAX);
	if (!c->capacity || c->capacity > (1ull << 31))
		return rdps_set_error(-EINVAL,
				      "embedding table '%s': capacity %llu "
				      "rows per shard, must be 1 to 2^31",
				      name, (unsigned long long)c->capacity);
	if (c->dtype > RDPS_DTYPE_F64 || c->rule > RDPS_RULE_ADAGRAD ||
	    c->init > RDPS_EMB_INIT_NORMAL)
		return rdps_set_error(-EINVAL,
				      "embedding table '%s': unknown dtype "
				      "%d, rule %d or init %d",
				      name, (int)c->dtype, (int)c->rule,
				      (int)c->init);
	if (!isfinite(c->lr) || !isfinite(c->init_scale) || c->init_scale < 0)
		return rdps_set_error(-EINVAL,
				      "embedding table '%s': lr %g and "
				      "init_scale %g must be finite, the "
				      "scale >= 0",
				      name, c->lr, c->init_scale);
	if (c->cache != 0 && c->cache != 1)
		return rdps_set_error(-EINVAL,
				      "embedding table '%s': cache %d, must "
				      "be 0 (off) or 1 (on)",
				      name, c->cache);
	return 0;
}

/* Whether e gets a location cache: cfg.cache, unless RDPS_EMB_CACHE says
 * otherwise. 0 or 1, or -EINVAL naming the variable. */
static int wrk_emb_cache_on(const char *name, const struct rdps_emb_cfg *c)
{
	const char *v = getenv("RDPS_EMB_CACHE");

	if (!v)
		return c->cache;
	if (!strcmp(v, "0") || !strcmp(v, "1"))
		return v[0] == '1';
	return rdps_set_error(-EINVAL,
			      "embedding table '%s': bad RDPS_EMB_CACHE '%s': "
			      "use 0 (no location cache) or 1",
			      name, v);
}

/* e's location cache: a power of two >= capacity x shards entries (every
 * row the table can hold), at most RDPS_EMB_CACHE_MAX. calloc'd: pages
 * no key touches cost nothing. */
static int wrk_emb_cache_new(struct rdps_emb *e)
{
	uint64_t want = e->cfg.capacity * e->ctx->nshards, n = 64;

	while (n < want && n < RDPS_EMB_CACHE_MAX)
		n *= 2;
	e->loc = calloc(n, sizeof(*e->loc));
	if (!e->loc)
		return rdps_set_error(-ENOMEM, "out of memory");
	e->loc_mask = n - 1;
	return 0;
}

static int wrk_emb_send_create(struct rdps_emb *e, struct wrk_shard *sh,
			       uint64_t deadline)
{
	struct rdps_ctx *ctx = e->ctx;
	struct ps_emb_create *c;
	struct ps_msg *m;
	uint64_t bits;
	unsigned k;
	int ret;

	ret = wrk_slot_get(ctx, sh, deadline, &k, &m);
	if (ret)
		return ret;
	c = (struct ps_emb_create *)(m + 1);
	wrk_msg_head(m, PS_CREATE, PS_F_EMB, 0, 0, ctx->clock, sizeof(*c));
	memset(c, 0, sizeof(*c));
	memcpy(c->name, e->name, strlen(e->name));
	c->dim_be = rdps_htobe32(e->cfg.dim);
	c->dtype_be = rdps_htobe32((uint32_t)e->cfg.dtype);
	c->rule_be = rdps_htobe32((uint32_t)e->cfg.rule);
	c->init_be = rdps_htobe32((uint32_t)e->cfg.init);
	memcpy(&bits, &e->cfg.lr, 8);
	c->lr_bits_be = rdps_htobe64(bits);
	memcpy(&bits, &e->cfg.init_scale, 8);
	c->scale_bits_be = rdps_htobe64(bits);
	c->seed_be = rdps_htobe64(e->cfg.seed);
	c->capacity_be = rdps_htobe64(e->cfg.capacity);
	return wrk_slot_send(ctx, sh, k, PS_CREATE, sizeof(*m) + sizeof(*c),
			     deadline);
}

/* Shard s's part of e from its directory's emb[] entries (d). */
static int wrk_emb_match(struct rdps_emb *e, unsigned s,
			 const struct ps_emb_desc *d)
{
	struct rdps_ctx *ctx = e->ctx;
	struct wrk_shard *sh = &ctx->sh[s];
	struct wrk_emb_part *pt = &e->part[s];
	const struct ps_emb_desc *ed = NULL;
	uint64_t cap;
	unsigned i;
	int ret;

	for (i = 0; i < PS_EMB_MAX; i++) {
		if (rdps_be64toh(d[i].ready_be) == 1 &&
		    !strncmp(d[i].name, e->name, sizeof(d[i].name))) {
			ed = &d[i];
			break;
		}
	}
	if (!ed)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) acknowledged embedding "
				      "table '%s' but its directory does not "
				      "list it",
				      s, sh->url, e->name);
	cap = rdps_be64toh(ed->capacity_be);
	pt->index = i;
	pt->nbuckets = rdps_be64toh(ed->nbuckets_be);
	if (rdps_be32toh(ed->dim_be) != e->cfg.dim || cap != e->cfg.capacity ||
	    pt->nbuckets != ps_emb_nbuckets(cap) ||
	    rdps_be64toh(ed->row_bytes_be) != e->row_bytes)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s): embedding table '%s' "
				      "is described inconsistently in its "
				      "directory",
				      s, sh->url, e->name);
	ret = rdps_tp_rkey_unpack(sh->ep, &ed->index, &pt->index_key);
	if (!ret)
		ret = rdps_tp_rkey_unpack(sh->ep, &ed->rows, &pt->rows_key);
	if (ret || pt->index_key.len < pt->nbuckets * 64 ||
	    pt->rows_key.len < cap * e->row_bytes)
		return rdps_set_error(-EPROTO,
				      "shard %u (%s): bad region keys for "
				      "embedding table '%s'",
				      s, sh->url, e->name);
	return 0;
}

/* Read every shard's emb[] entries and fill e->part. */
static int wrk_emb_find(struct rdps_emb *e)
{
	struct rdps_ctx *ctx = e->ctx;
	size_t dsz = sizeof(struct ps_emb_desc) * PS_EMB_MAX;
	uint64_t off = offsetof(struct ps_dir, emb);
	uint64_t deadline = wrk_deadline(ctx);
	struct wrk_grp g = {0, 0, 0};
	int ret;

	ret = wrk_bounce(ctx, ctx->nshards * dsz);
	if (ret)
		return ret;
	for (unsigned s = 0; s < ctx->nshards; s++) {
		struct wrk_shard *sh = &ctx->sh[s];

		if (sh->dir_key.len < off + dsz)
			return rdps_set_error(-EPROTO,
					      "shard %u (%s) has no embedding "
					      "tables (an older rdps-server?)",
					      s, sh->url);
		ret = wrk_grp_get(ctx, sh, &g, (char *)ctx->bounce + s * dsz,
				  ctx->bounce_mr, dsz, sh->dir_key.addr + off,
				  &sh->dir_key, deadline, "a directory read");
		if (ret)
			return ret;
	}
	ret = wrk_grp_wait(ctx, &g, deadline, "the shards' directories");
	for (unsigned s = 0; !ret && s < ctx->nshards; s++)
		ret = wrk_emb_match(
			e, s,
			(const struct ps_emb_desc *)((char *)ctx->bounce +
						     s * dsz));
	return ret;
}

int rdps_emb_open(struct rdps_ctx *ctx, const char *name,
		  const struct rdps_emb_cfg *cfg, struct rdps_emb **emb_out)
{
	struct rdps_emb *e;
	uint64_t deadline;
	size_t len;
	int ret, cache;

	if (!ctx || !name || !cfg || !emb_out)
		return rdps_set_error(-EINVAL, "rdps_emb_open: null argument");
	len = strlen(name);
	ret = wrk_emb_args(name, len, cfg);
	if (ret)
		return ret;
	cache = wrk_emb_cache_on(name, cfg);
	if (cache < 0)
		return cache;
	e = calloc(1, sizeof(*e));
	if (!e)
		return rdps_set_error(-ENOMEM, "out of memory");
	e->part = calloc(ctx->nshards, sizeof(*e->part));
	if (!e->part) {
		free(e);
		return rdps_set_error(-ENOMEM, "out of memory");
	}
	e->ctx = ctx;
	memcpy(e->name, name, len + 1);
	e->cfg = *cfg;
	e->vbytes = (size_t)cfg->dim * ps_dtype_size((uint32_t)cfg->dtype);
	e->row_bytes = ps_emb_row_bytes(cfg->dim, (uint32_t)cfg->dtype);
	e->cfg.cache = cache;
	if (cache)
		ret = wrk_emb_cache_new(e);
	deadline = wrk_deadline(ctx);
	for (unsigned s = 0; s < ctx->nshards && !ret; s++)
		ret = wrk_emb_send_create(e, &ctx->sh[s], deadline);
	if (!ret) {
		ret = wrk_slots_drain(ctx, NULL, deadline,
				      "the embedding table creation");
		if (ret == -EINVAL) {
			char why[512];

			snprintf(why, sizeof(why), "%s", rdps_errmsg());
			rdps_set_error(ret,
				       "embedding table '%s' exists with "
				       "another dim, dtype, rule, lr, init, "
				       "seed or capacity (%s)",
				       name, why);
		}
	}
	if (!ret)
		ret = wrk_emb_find(e);
	if (ret) {
		free(e->loc);
		free(e->part);
		free(e);
		return ret;
	}
	e->next = ctx->embs;
	ctx->embs = e;
	*emb_out = e;
	return 0;
}

/* BSP, A-BSP: wait until shard s's header shows this worker's clock
 * applied, so index and rows hold every update of the clocks before
 * (a barrier does not wait for the shards' apply). */
int wrk_emb_wait_applied(struct rdps_emb *e, unsigned s, uint64_t deadline,
			 const char *what)
{
	struct rdps_ctx *ctx = e->ctx;
	struct ps_dir_hdr *hdr = &wrk_hdrs(ctx)[s];
	struct wrk_shard *sh = &ctx->sh[s];
	uint64_t need = wrk_need(ctx);
	unsigned attempt = 0;
	int ret;

	while (need) {
		struct wrk_grp g = {0, 0, 0};

		ret = wrk_grp_get(ctx, sh, &g, hdr, ctx->small_mr, sizeof(*hdr),
				  sh->dir_key.addr, &sh->dir_key, deadline,
				  what);
		if (!ret)
			ret = wrk_grp_wait(ctx, &g, deadline, what);
		if (ret)
			return ret;
		if (rdps_be64toh(hdr->applied_clock_be) >= need)
			return 0;
		ret = wrk_lost_error(ctx, s, hdr, what);
		if (!ret)
			ret = wrk_hb_check(ctx, sh, hdr);
		if (!ret && rdps_now_ns() >= deadline)
			ret = rdps_set_error(-ETIMEDOUT,
					     "embedding table '%s': timed out "
					     "waiting for shard %u to apply "
					     "clock %llu",
					     e->name, s,
					     (unsigned long long)need);
		if (!ret)
			ret = wrk_backoff(ctx, attempt++);
		if (ret)
			return ret;
	}
	return 0;
}

int wrk_emb_read_raw(struct rdps_emb *e, unsigned s, int rows, void *dst,
		     size_t len, size_t *len_out)
{
	struct rdps_ctx *ctx;
	struct wrk_emb_part *pt;
	struct rdps_tp_rkey *key;
	struct wrk_grp g = {0, 0, 0};
	uint64_t deadline;
	size_t want;
	int ret;

	if (!e || s >= e->ctx->nshards || !dst)
		return rdps_set_error(-EINVAL,
				      "wrk_emb_read_raw: bad argument");
	ctx = e->ctx;
	pt = &e->part[s];
	key = rows ? &pt->rows_key : &pt->index_key;
	want = rows ? e->cfg.capacity * e->row_bytes : pt->nbuckets * 64;
	if (len < want)
		return rdps_set_error(-ENOSPC,
				      "wrk_emb_read_raw: %zu bytes "
				      "needed",
				      want);
	deadline = wrk_deadline(ctx);
	ret = wrk_emb_wait_applied(e, s, deadline, "a raw read");
	if (ret)
		return ret;
	ret = wrk_bounce(ctx, want);
	if (ret)
		return ret;
	ret = wrk_grp_get(ctx, &ctx->sh[s], &g, ctx->bounce, ctx->bounce_mr,
			  want, key->addr, key, deadline, "a raw read");
	if (!ret)
		ret = wrk_grp_wait(ctx, &g, deadline, "a raw read");
	if (ret)
		return ret;
	memcpy(dst, ctx->bounce, want);
	*len_out = want;
	return 0;
}

int wrk_shard_stats(struct rdps_ctx *ctx, unsigned s,
		    struct wrk_shard_stats *out)
{
	uint64_t off = offsetof(struct ps_dir, stats), deadline;
	struct wrk_grp g = {0, 0, 0};
	struct ps_dir_stats st;
	struct wrk_shard *sh;
	int ret;

	if (!ctx || s >= ctx->nshards || !out)
		return rdps_set_error(-EINVAL, "wrk_shard_stats: bad argument");
	sh = &ctx->sh[s];
	if (sh->dir_key.len < off + sizeof(st))
		return rdps_set_error(-EPROTO,
				      "shard %u (%s) publishes no statistics "
				      "(an older rdps-server?)",
				      s, sh->url);
	deadline = wrk_deadline(ctx);
	ret = wrk_bounce(ctx, sizeof(st));
	if (ret)
		return ret;
	WRK_POST(ret, ctx, deadline, sizeof(st),
		 rdps_tp_get(sh->ep, ctx->bounce, sizeof(st), ctx->bounce_mr,
			     sh->dir_key.addr + off, &sh->dir_key,
			     (uintptr_t)&g, 0));
	if (ret)
		return wrk_post_fail(ctx, sh, ret, "a statistics read");
	g.left++;
	ret = wrk_grp_wait(ctx, &g, deadline, "a statistics read");
	if (ret)
		return ret;
	memcpy(&st, ctx->bounce, sizeof(st));
	out->handled = rdps_be64toh(st.handled_be);
	out->pid = rdps_be32toh(st.pid_be);
	out->tid = rdps_be32toh(st.tid_be);
	return 0;
}
