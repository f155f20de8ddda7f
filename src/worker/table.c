/* SPDX-License-Identifier: MIT */
/*
 * table.c - tables: rdps_table_open() creates a table on every shard
 * (or finds it) and learns each shard's part from its directory.
 */
#include <stdio.h>
#include <stdlib.h>

#include "worker.h"

static const char *const rule_names[] = {"sum", "sgd", "adagrad", "put",
					 "put-if-better"};
static const char *const dtype_names[] = {"f32", "f64"};

/* Fill shard s's part of t from its directory d, from the entry named
 * t->name, after checking it against t and the rule. */
static int wrk_match_part(struct rdps_ctx *ctx, struct rdps_table *t,
			  unsigned s, const struct ps_dir *d,
			  enum rdps_rule rule)
{
	struct wrk_part *pt = &t->part[s];
	struct wrk_shard *sh = &ctx->sh[s];
	const struct ps_table_desc *td = NULL;
	uint64_t n, lo, hi, elo, ehi;
	unsigned dtype, r, i;
	int ret;

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
			-EINVAL, "table '%s' exists with dtype %s, not %s",
			t->name, dtype < 2 ? dtype_names[dtype] : "?",
			dtype_names[t->dtype]);
	if (r != (unsigned)rule)
		return rdps_set_error(
			-EINVAL, "table '%s' exists with rule %s, not %s",
			t->name, r < 5 ? rule_names[r] : "?", rule_names[rule]);
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
			(unsigned long long)elo, (unsigned long long)ehi);
	pt->index = i;
	pt->lo = lo;
	pt->hi = hi;
	memset(&pt->params, 0, sizeof(pt->params));
	if (hi > lo) {
		ret = rdps_tp_rkey_unpack(sh->ep, &td->params, &pt->params);
		if (ret || pt->params.len < (hi - lo) * t->esz)
			return rdps_set_error(
				-EPROTO,
				"shard %u (%s): bad params key for "
				"table '%s'",
				s, sh->url, t->name);
	}
	return 0;
}

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

		WRK_POST(ret, ctx, deadline, len,
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
		ret = wrk_match_part(
			ctx, t, s,
			(struct ps_dir *)((char *)ctx->bounce + s * dsz), rule);
		if (ret)
			return ret;
	}
	return 0;
}

/* Stage the creation of table t (rule, learning rate bits) in a sub-slot
 * of sh and send it. */
static int wrk_send_create(struct rdps_table *t, struct wrk_shard *sh,
			   enum rdps_rule rule, uint64_t bits,
			   uint64_t deadline)
{
	struct rdps_ctx *ctx = t->ctx;
	struct ps_msg *m;
	struct ps_create *c;
	unsigned k;
	int ret;

	ret = wrk_slot_get(ctx, sh, deadline, &k, &m);
	if (ret)
		return ret;
	c = (struct ps_create *)(m + 1);
	memset(m, 0, sizeof(*m) + sizeof(*c));
	m->kind_be = rdps_htobe32(PS_CREATE);
	m->clock_be = rdps_htobe64(ctx->clock);
	m->bytes_be = rdps_htobe64(sizeof(*c));
	memcpy(c->name, t->name, strlen(t->name));
	c->n_be = rdps_htobe64(t->n);
	c->dtype_be = rdps_htobe32((uint32_t)t->dtype);
	c->rule_be = rdps_htobe32((uint32_t)rule);
	c->lr_bits_be = rdps_htobe64(bits);
	return wrk_slot_send(ctx, sh, k, PS_CREATE, sizeof(*m) + sizeof(*c),
			     deadline);
}

/* Create t on every shard and wait for their answers; a shard that has
 * it already checks its parameters. */
static int wrk_create_all(struct rdps_table *t, enum rdps_rule rule, double lr)
{
	struct rdps_ctx *ctx = t->ctx;
	uint64_t deadline = wrk_deadline(ctx), bits;
	int ret;

	memcpy(&bits, &lr, sizeof(bits));
	for (unsigned s = 0; s < ctx->nshards; s++) {
		ret = wrk_send_create(t, &ctx->sh[s], rule, bits, deadline);
		if (ret)
			return ret;
	}
	ret = wrk_slots_drain(ctx, NULL, deadline, "the table creation");
	if (ret == -EINVAL) {
		/* Most likely the table exists with other parameters: the
		 * directory names the difference. */
		char why[512];

		snprintf(why, sizeof(why), "%s", rdps_errmsg());
		if (wrk_find_table(ctx, t, rule) != -EINVAL)
			rdps_set_error(ret, "%s", why);
	}
	return ret;
}

/* The arguments of rdps_table_open() (name of len characters). */
static int wrk_table_args(const char *name, size_t len, uint64_t n,
			  enum rdps_dtype dtype, enum rdps_rule rule)
{
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
	if (rule > RDPS_RULE_PUT_IF_BETTER)
		return rdps_set_error(-EINVAL, "table '%s': unknown rule %d",
				      name, (int)rule);
	return 0;
}

int rdps_table_open(struct rdps_ctx *ctx, const char *name, uint64_t n,
		    enum rdps_dtype dtype, enum rdps_rule rule, double lr,
		    struct rdps_table **table_out)
{
	struct rdps_table *t;
	size_t len;
	int ret;

	if (!ctx || !name || !table_out)
		return rdps_set_error(-EINVAL, "rdps_table_open: null "
					       "argument");
	len = strlen(name);
	ret = wrk_table_args(name, len, n, dtype, rule);
	if (ret)
		return ret;
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
	ret = wrk_create_all(t, rule, lr);
	if (!ret)
		ret = wrk_find_table(ctx, t, rule);
	if (ret) {
		free(t->part);
		free(t);
		return ret;
	}
	t->next = ctx->tables;
	ctx->tables = t;
	*table_out = t;
	return 0;
}

int wrk_check_range(const struct rdps_table *t, uint64_t start, uint64_t count,
		    const char *what)
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

int wrk_check_idx(const struct rdps_table *t, const uint64_t *idx, size_t n,
		  const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (idx[i] >= t->n)
			return rdps_set_error(-ERANGE,
					      "%s: index %llu (entry %zu) "
					      "outside table '%s' of %llu "
					      "elements",
					      what, (unsigned long long)idx[i],
					      i, t->name,
					      (unsigned long long)t->n);
	return 0;
}
