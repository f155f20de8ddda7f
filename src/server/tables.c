/* SPDX-License-Identifier: MIT */
/*
 * tables.c - a shard's tables: creating one (its values, accumulator and
 * pending deltas), publishing its descriptor in the directory, and the
 * PS_CREATE message.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_impl.h"

static const char *const srv_rule_names[] = {"sum", "sgd", "adagrad", "put",
					     "put-if-better"};

void srv_table_free(struct rdps_server *s, struct srv_table *t)
{
	if (t->pend) {
		for (unsigned w = 0; w < s->cfg.workers; w++)
			free(t->pend[w].buf);
		free(t->pend);
	}
	free(t->sl.acc);
	srv_region_free(s, &t->sl.params, t->params_len, &t->params_mr);
	memset(t, 0, sizeof(*t));
}

struct srv_table *srv_table_find(struct rdps_server *s, const char *name)
{
	for (unsigned i = 0; i < PS_MAX_TABLES; i++)
		if (s->tables[i].used && !strcmp(s->tables[i].name, name))
			return &s->tables[i];
	return NULL;
}

/* A new table; its descriptor is published (ready) only by
 * srv_table_publish(), once its values are in place. */
int srv_table_create(struct rdps_server *s, const char *name, uint64_t n,
		     uint32_t dtype, uint32_t rule, double lr,
		     struct srv_table **t_out)
{
	struct srv_table *t;
	unsigned idx;
	int ret;

	for (idx = 0; idx < PS_MAX_TABLES && s->tables[idx].used; idx++)
		;
	if (idx == PS_MAX_TABLES)
		return -ENOSPC;
	t = &s->tables[idx];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->n = n;
	t->sl.dtype = dtype;
	t->sl.rule = rule;
	t->sl.lr = lr;
	t->sl.esize = ps_dtype_size(dtype);
	ps_shard_range(n, s->cfg.nshards, s->cfg.shard, &t->lo, &t->hi);
	t->sl.len = t->hi - t->lo;
	t->params_len = srv_round_up((t->hi - t->lo) * t->sl.esize, 64);
	if (!t->params_len)
		t->params_len = 64;
	ret = srv_region_new(s, t->params_len, RDPS_TP_ACCESS_REMOTE_READ,
			     &t->sl.params, &t->params_mr);
	if (ret)
		goto err;
	if (rule == PS_RULE_ADAGRAD && t->hi > t->lo) {
		t->sl.acc = calloc(t->hi - t->lo, t->sl.esize);
		if (!t->sl.acc) {
			ret = -ENOMEM;
			goto err;
		}
	}
	if (srv_bsp(s)) {
		t->pend = calloc(s->cfg.workers, sizeof(*t->pend));
		if (!t->pend) {
			ret = -ENOMEM;
			goto err;
		}
	}
	t->used = true;
	*t_out = t;
	return 0;

err:
	srv_table_free(s, t);
	return ret;
}

void srv_table_publish(struct rdps_server *s, struct srv_table *t)
{
	unsigned idx = (unsigned)(t - s->tables);
	struct ps_table_desc *desc = &s->dir->tables[idx];
	uint64_t lr_bits;

	memcpy(&lr_bits, &t->sl.lr, sizeof(lr_bits));
	memcpy(desc->name, t->name, sizeof(desc->name));
	desc->n_be = rdps_htobe64(t->n);
	desc->lo_be = rdps_htobe64(t->lo);
	desc->hi_be = rdps_htobe64(t->hi);
	desc->dtype_be = rdps_htobe32(t->sl.dtype);
	desc->rule_be = rdps_htobe32(t->sl.rule);
	desc->lr_bits_be = rdps_htobe64(lr_bits);
	rdps_tp_rkey_pack(t->params_mr, &desc->params);
	__atomic_store_n(&desc->ready_be, rdps_htobe64(1), __ATOMIC_RELEASE);
	s->st.tables++;
	rdps_info("table '%s' (index %u): n %" PRIu64 " %s %s lr %g, this "
		  "shard holds [%" PRIu64 ", %" PRIu64 ")",
		  t->name, idx, t->n, t->sl.dtype ? "f64" : "f32",
		  srv_rule_names[t->sl.rule], t->sl.lr, t->lo, t->hi);
}

int srv_handle_create(struct srv_worker *w, const struct ps_msg *m,
		      const void *payload)
{
	struct rdps_server *s = w->s;
	struct ps_create c;
	struct srv_table *t;
	uint64_t n, lr_bits;
	uint32_t dtype, rule;
	double lr;
	int ret;

	if (rdps_be64toh(m->bytes_be) != sizeof(c)) {
		rdps_warn("worker %u: create with %" PRIu64
			  " payload bytes, not %zu: refused",
			  w->rank, rdps_be64toh(m->bytes_be), sizeof(c));
		return -EINVAL;
	}
	memcpy(&c, payload, sizeof(c));
	if (!memchr(c.name, '\0', sizeof(c.name)) || !c.name[0]) {
		rdps_warn("worker %u: create with an empty or unterminated "
			  "table name: refused",
			  w->rank);
		return -EINVAL;
	}
	n = rdps_be64toh(c.n_be);
	dtype = rdps_be32toh(c.dtype_be);
	rule = rdps_be32toh(c.rule_be);
	lr_bits = rdps_be64toh(c.lr_bits_be);
	memcpy(&lr, &lr_bits, sizeof(lr));
	if (n == 0 || n > (UINT64_MAX >> 8) || dtype > PS_DTYPE_F64 ||
	    rule > PS_RULE_MAX || !isfinite(lr)) {
		rdps_warn("worker %u: create table '%s' with n %" PRIu64
			  " dtype %u rule %u lr %g: refused (n must be > 0, "
			  "dtype 0..1, rule 0..4, lr finite)",
			  w->rank, c.name, n, dtype, rule, lr);
		return -EINVAL;
	}
	t = srv_table_find(s, c.name);
	if (t) {
		if (t->n != n || t->sl.dtype != dtype || t->sl.rule != rule) {
			rdps_warn("worker %u: table '%s' exists with n %" PRIu64
				  " %s %s, asked for n %" PRIu64 " %s %s: "
				  "refused",
				  w->rank, c.name, t->n,
				  t->sl.dtype ? "f64" : "f32",
				  srv_rule_names[t->sl.rule], n,
				  dtype ? "f64" : "f32", srv_rule_names[rule]);
			return -EINVAL;
		}
		return 0;
	}
	ret = srv_table_create(s, c.name, n, dtype, rule, lr, &t);
	if (!ret)
		srv_table_publish(s, t);
	else if (ret == -ENOSPC)
		rdps_warn("worker %u: table '%s' refused: all %d tables in "
			  "use",
			  w->rank, c.name, PS_MAX_TABLES);
	else if (ret)
		rdps_err("worker %u: cannot create table '%s' of %" PRIu64
			 " elements: %s",
			 w->rank, c.name, n, strerror(-ret));
	return ret;
}
