/* SPDX-License-Identifier: MIT */
/*
 * emb_table.c - a shard's embedding tables: creating one (its index and
 * row regions, Adagrad state, BSP sums), publishing its descriptor in the
 * directory, and the PS_CREATE message that asks for one (PS_F_EMB).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "server/server_impl.h"

void srv_emb_free(struct rdps_server *s, struct srv_emb *t)
{
	if (t->pend) {
		for (unsigned w = 0; w < s->cfg.workers; w++)
			srv_emb_map_free(&t->pend[w]);
		free(t->pend);
	}
	srv_emb_map_free(&t->reserved);
	free(t->acc);
	srv_region_free(s, (void **)&t->index, t->index_len, &t->index_mr);
	srv_region_free(s, (void **)&t->rows, t->rows_len, &t->rows_mr);
	memset(t, 0, sizeof(*t));
}

static struct srv_emb *srv_emb_find_table(struct rdps_server *s,
					  const char *name)
{
	for (unsigned i = 0; i < PS_EMB_MAX; i++)
		if (s->emb[i].used && !strcmp(s->emb[i].name, name))
			return &s->emb[i];
	return NULL;
}

/* The fields of a create, decoded. */
struct srv_emb_args {
	const char *name;
	uint32_t dim, dtype, rule, init;
	double lr, scale;
	uint64_t seed, capacity;
};

/* Create table a in the free directory slot idx. */
static int srv_emb_create(struct rdps_server *s, const struct srv_emb_args *a,
			  unsigned idx, struct srv_emb **t_out)
{
	struct srv_emb *t;
	int ret;

	t = &s->emb[idx];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", a->name);
	t->dim = a->dim;
	t->dtype = a->dtype;
	t->rule = a->rule;
	t->init = a->init;
	t->lr = a->lr;
	t->scale = a->scale;
	t->seed = a->seed;
	t->capacity = a->capacity;
	t->nbuckets = ps_emb_nbuckets(a->capacity);
	t->row_bytes = ps_emb_row_bytes(a->dim, a->dtype);
	t->vbytes = (size_t)a->dim * ps_dtype_size(a->dtype);
	t->index_len = t->nbuckets * sizeof(struct ps_emb_bucket);
	t->rows_len = srv_round_up(t->capacity * t->row_bytes, 64);
	ret = srv_region_new(s, t->index_len, RDPS_TP_ACCESS_REMOTE_READ,
			     (void **)&t->index, &t->index_mr);
	if (!ret)
		ret = srv_region_new(s, t->rows_len, RDPS_TP_ACCESS_REMOTE_READ,
				     (void **)&t->rows, &t->rows_mr);
	if (ret)
		goto err;
	ret = -ENOMEM;
	if (a->rule == PS_RULE_ADAGRAD) {
		t->acc = calloc(t->capacity, t->vbytes);
		if (!t->acc)
			goto err;
	}
	if (srv_bsp(s)) {
		t->pend = calloc(s->cfg.workers, sizeof(*t->pend));
		if (!t->pend)
			goto err;
		for (unsigned w = 0; w < s->cfg.workers; w++)
			t->pend[w].vbytes = t->vbytes;
	}
	t->used = true;
	*t_out = t;
	return 0;

err:
	srv_emb_free(s, t);
	return ret;
}

static void srv_emb_publish(struct rdps_server *s, struct srv_emb *t)
{
	unsigned idx = (unsigned)(t - s->emb);
	struct ps_emb_desc *d = &s->dir->emb[idx];
	uint64_t bits;

	memcpy(d->name, t->name, sizeof(d->name));
	d->dim_be = rdps_htobe32(t->dim);
	d->dtype_be = rdps_htobe32(t->dtype);
	d->rule_be = rdps_htobe32(t->rule);
	d->init_be = rdps_htobe32(t->init);
	memcpy(&bits, &t->lr, 8);
	d->lr_bits_be = rdps_htobe64(bits);
	memcpy(&bits, &t->scale, 8);
	d->scale_bits_be = rdps_htobe64(bits);
	d->seed_be = rdps_htobe64(t->seed);
	d->capacity_be = rdps_htobe64(t->capacity);
	d->nbuckets_be = rdps_htobe64(t->nbuckets);
	d->row_bytes_be = rdps_htobe64(t->row_bytes);
	rdps_tp_rkey_pack(t->index_mr, &d->index);
	rdps_tp_rkey_pack(t->rows_mr, &d->rows);
	__atomic_store_n(&d->ready_be, rdps_htobe64(1), __ATOMIC_RELEASE);
	rdps_info("embedding table '%s' (index %u): dim %u %s rule %u lr %g, "
		  "capacity %" PRIu64 " rows, %" PRIu64 " buckets",
		  t->name, idx, t->dim, t->dtype ? "f64" : "f32", t->rule,
		  t->lr, t->capacity, t->nbuckets);
}

/* Decode and check a create payload into a. 0 or -EINVAL (logged). */
static int srv_emb_decode(struct srv_worker *w, const struct ps_emb_create *c,
			  struct srv_emb_args *a)
{
	uint64_t bits;

	if (!memchr(c->name, '\0', sizeof(c->name)) || !c->name[0]) {
		rdps_warn("worker %u: embedding create with an empty or "
			  "unterminated name: refused",
			  w->rank);
		return -EINVAL;
	}
	a->name = c->name;
	a->dim = rdps_be32toh(c->dim_be);
	a->dtype = rdps_be32toh(c->dtype_be);
	a->rule = rdps_be32toh(c->rule_be);
	a->init = rdps_be32toh(c->init_be);
	bits = rdps_be64toh(c->lr_bits_be);
	memcpy(&a->lr, &bits, 8);
	bits = rdps_be64toh(c->scale_bits_be);
	memcpy(&a->scale, &bits, 8);
	a->seed = rdps_be64toh(c->seed_be);
	a->capacity = rdps_be64toh(c->capacity_be);
	/* Rows are numbered in 32 bits (slot meta); the arena must fit. */
	if (!a->dim || a->dim > PS_EMB_DIM_MAX || a->dtype > PS_DTYPE_F64 ||
	    a->rule > PS_RULE_ADAGRAD || a->init > PS_EMB_INIT_NORMAL ||
	    !isfinite(a->lr) || !isfinite(a->scale) || a->scale < 0 ||
	    !a->capacity || a->capacity > (1ull << 31)) {
		rdps_warn("worker %u: embedding table '%s' with dim %u dtype "
			  "%u rule %u init %u lr %g scale %g capacity %" PRIu64
			  ": refused (dim 1..%d, capacity 1..2^31, lr and "
			  "scale finite)",
			  w->rank, a->name, a->dim, a->dtype, a->rule, a->init,
			  a->lr, a->scale, a->capacity, PS_EMB_DIM_MAX);
		return -EINVAL;
	}
	return 0;
}

static bool srv_emb_same(const struct srv_emb *t, const struct srv_emb_args *a)
{
	return t->dim == a->dim && t->dtype == a->dtype && t->rule == a->rule &&
	       t->init == a->init && t->lr == a->lr && t->scale == a->scale &&
	       t->seed == a->seed && t->capacity == a->capacity;
}

int srv_emb_handle_create(struct srv_worker *w, const struct ps_msg *m,
			  const void *payload)
{
	struct rdps_server *s = w->s;
	struct ps_emb_create c;
	struct srv_emb_args a;
	struct srv_emb *t;
	unsigned idx;
	int ret;

	if (rdps_be64toh(m->bytes_be) != sizeof(c)) {
		rdps_warn("worker %u: embedding create with %" PRIu64
			  " payload bytes, not %zu: refused",
			  w->rank, rdps_be64toh(m->bytes_be), sizeof(c));
		return -EINVAL;
	}
	memcpy(&c, payload, sizeof(c));
	ret = srv_emb_decode(w, &c, &a);
	if (ret)
		return ret;
	t = srv_emb_find_table(s, a.name);
	if (t) {
		if (srv_emb_same(t, &a))
			return 0;
		rdps_warn("worker %u: embedding table '%s' exists with dim %u "
			  "capacity %" PRIu64 " (or another field differs), "
			  "asked for dim %u capacity %" PRIu64 ": refused",
			  w->rank, a.name, t->dim, t->capacity, a.dim,
			  a.capacity);
		return -EINVAL;
	}
	for (idx = 0; idx < PS_EMB_MAX && s->emb[idx].used; idx++)
		;
	ret = idx < PS_EMB_MAX ? srv_emb_create(s, &a, idx, &t) : -ENOSPC;
	if (!ret) {
		s->st.tables++;
		srv_emb_publish(s, t);
	} else if (ret == -ENOSPC) {
		rdps_warn("worker %u: embedding table '%s' refused: all %d in "
			  "use",
			  w->rank, a.name, PS_EMB_MAX);
	} else {
		rdps_err("worker %u: cannot create embedding table '%s' of "
			 "%" PRIu64 " rows: %s",
			 w->rank, a.name, a.capacity, strerror(-ret));
	}
	return ret;
}

int srv_emb_restore(struct rdps_server *s, const struct ckpt_emb *ce,
		    const char *path)
{
	struct srv_emb_args a = {
		.name = ce->name,
		.dim = ce->dim,
		.dtype = ce->dtype,
		.rule = ce->rule,
		.init = ce->init,
		.lr = ce->lr,
		.scale = ce->scale,
		.seed = ce->seed,
		.capacity = ce->capacity,
	};
	struct srv_emb *t;
	int ret;

	/* ckpt_parse() checked the geometry and the index; the slot must
	 * be free here so workers find the table where it was. */
	if (ce->slot >= PS_EMB_MAX || s->emb[ce->slot].used ||
	    srv_emb_find_table(s, ce->name))
		return rdps_set_error(-EINVAL,
				      "checkpoint %s: embedding table '%s' "
				      "does not fit this shard (slot %u taken "
				      "or a duplicate name)",
				      path, ce->name, ce->slot);
	ret = srv_emb_create(s, &a, ce->slot, &t);
	if (ret)
		return rdps_set_error(ret,
				      "cannot create embedding table '%s' of "
				      "checkpoint %s: %s",
				      ce->name, path, strerror(-ret));
	memcpy(t->index, ce->index, t->index_len);
	memcpy(t->rows, ce->rows, ce->nrows * t->row_bytes);
	if (t->acc && ce->acc)
		memcpy(t->acc, ce->acc, ce->nrows * t->vbytes);
	t->nrows = ce->nrows;
	t->overflowed = ce->flags & CKPT_EMB_OVERFLOWED;
	s->st.tables++;
	srv_emb_publish(s, t);
	return 0;
}

void srv_emb_to_ckpt(const struct rdps_server *s, struct ckpt *c)
{
	for (unsigned i = 0; i < PS_EMB_MAX; i++) {
		const struct srv_emb *t = &s->emb[i];
		struct ckpt_emb *ce;

		if (!t->used)
			continue;
		ce = &c->e[c->nemb++];
		memcpy(ce->name, t->name, sizeof(ce->name));
		ce->slot = i;
		ce->dim = t->dim;
		ce->dtype = t->dtype;
		ce->rule = t->rule;
		ce->init = t->init;
		ce->flags = t->overflowed ? CKPT_EMB_OVERFLOWED : 0;
		ce->lr = t->lr;
		ce->scale = t->scale;
		ce->seed = t->seed;
		ce->capacity = t->capacity;
		ce->nbuckets = t->nbuckets;
		ce->row_bytes = t->row_bytes;
		ce->nrows = t->nrows;
		ce->index = t->index;
		ce->rows = t->rows;
		ce->acc = t->acc;
	}
}
