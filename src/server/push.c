/* SPDX-License-Identifier: MIT */
/*
 * push.c - one push on the shard: the checks of its header against the
 * table, then the dense range or the sparse pairs applied (apply.c) or, in
 * BSP, added to the worker's pending delta.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "server/server_impl.h"

int srv_push_clock_check(struct srv_worker *w, uint64_t clock, const char *what)
{
	struct rdps_server *s = w->s;

	if (!srv_bsp(s))
		return 0;
	/* A worker may be ahead of this shard by more than one clock: its
	 * own ENDs are in (clock == ends) but another worker's END of an
	 * earlier clock may still wait in a ring polled after this one. Hold
	 * it until applied reaches its clock (see srv_recv). */
	if (clock > s->applied && clock == w->ends)
		return SRV_DEFERRED;
	if (clock != s->applied) {
		rdps_warn("worker %u: bsp push to table '%s' for clock %" PRIu64
			  " while the shard collects clock %" PRIu64
			  ": refused",
			  w->rank, what, clock, s->applied);
		return -EPROTO;
	}
	return 0;
}

/*
 * The header checks that do not depend on the push's shape: its table,
 * its flags and, in BSP, its clock. 0 with *t_out set, SRV_DEFERRED, or
 * -errno.
 */
static int srv_push_check(struct srv_worker *w, const struct ps_msg *m,
			  struct srv_table **t_out)
{
	struct rdps_server *s = w->s;
	uint32_t tix = rdps_be32toh(m->table_be);
	uint32_t flags = rdps_be32toh(m->flags_be);
	uint64_t clock = rdps_be64toh(m->clock_be);
	struct srv_table *t;
	int ret;

	if (tix >= PS_MAX_TABLES || !s->tables[tix].used) {
		rdps_warn("worker %u: push to table %u, which does not exist "
			  "on shard %u: refused",
			  w->rank, tix, s->cfg.shard);
		return -ENOENT;
	}
	t = &s->tables[tix];
	if (flags & ~(PS_F_SPARSE | PS_F_SPLIT)) {
		rdps_warn("worker %u: push to table '%s' with unknown flags "
			  "0x%x: refused",
			  w->rank, t->name, flags);
		return -EINVAL;
	}
	ret = srv_push_clock_check(w, clock, t->name);
	if (ret)
		return ret;
	*t_out = t;
	return 0;
}

/* n values of w at slice offset off of t, esize bytes apart: applied now,
 * or in BSP added to w's pending delta for the end of the clock. */
static int srv_push_values(struct srv_worker *w, struct srv_table *t, bool bsp,
			   uint64_t off, uint64_t n, const void *d)
{
	if (bsp)
		return srv_pend_add(&t->pend[w->rank], &t->sl, off, n, d,
				    t->sl.esize);
	srv_apply(&t->sl, off, n, d, t->sl.esize);
	return 0;
}

/* count values for [start, start + count) of table t. */
static int srv_push_dense(struct srv_worker *w, struct srv_table *t,
			  uint64_t start, uint64_t count, uint64_t bytes,
			  const unsigned char *payload)
{
	if (start < t->lo || start > t->hi || count > t->hi - start ||
	    start + count > t->n) {
		rdps_warn("worker %u: dense push to table '%s' of "
			  "[%" PRIu64 ", +%" PRIu64 ") is outside "
			  "this shard's [%" PRIu64 ", %" PRIu64 "): refused",
			  w->rank, t->name, start, count, t->lo, t->hi);
		return -ERANGE;
	}
	if (bytes != count * t->sl.esize) {
		rdps_warn("worker %u: dense push to table '%s' of "
			  "%" PRIu64 " elements carries %" PRIu64
			  " bytes, not %" PRIu64 ": refused",
			  w->rank, t->name, count, bytes, count * t->sl.esize);
		return -EINVAL;
	}
	if (!count)
		return 0;
	return srv_push_values(w, t, srv_bsp(w->s), start - t->lo, count,
			       payload);
}

/* count pairs {be64 index, value} for table t, all or nothing. */
static int srv_push_sparse(struct srv_worker *w, struct srv_table *t,
			   uint64_t count, uint64_t bytes,
			   const unsigned char *payload)
{
	size_t pair = 8 + t->sl.esize;
	bool bsp = srv_bsp(w->s);
	int ret;

	if (count > bytes || bytes != count * pair) {
		rdps_warn("worker %u: sparse push to table '%s' of %" PRIu64
			  " pairs carries %" PRIu64 " bytes, not %" PRIu64
			  ": refused",
			  w->rank, t->name, count, bytes, count * pair);
		return -EINVAL;
	}
	/* All or nothing: check every index before touching the table. */
	for (uint64_t i = 0; i < count; i++) {
		uint64_t ix;

		memcpy(&ix, payload + i * pair, 8);
		ix = rdps_be64toh(ix);
		if (ix < t->lo || ix >= t->hi) {
			rdps_warn("worker %u: sparse push to table '%s': index "
				  "%" PRIu64 " (pair %" PRIu64
				  ") is outside this shard's [%" PRIu64
				  ", %" PRIu64 "): refused",
				  w->rank, t->name, ix, i, t->lo, t->hi);
			return -ERANGE;
		}
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t ix;

		memcpy(&ix, payload + i * pair, 8);
		ix = rdps_be64toh(ix);
		/* The worker owns the slot until our credit; recheck so a
		 * rewrite under our feet cannot move the store. */
		if (rdps_unlikely(ix < t->lo || ix >= t->hi))
			continue;
		ret = srv_push_values(w, t, bsp, ix - t->lo, 1,
				      payload + i * pair + 8);
		if (ret)
			return ret;
	}
	return 0;
}

int srv_handle_push(struct srv_worker *w, const struct ps_msg *m,
		    const unsigned char *payload)
{
	uint64_t count = rdps_be64toh(m->count_be);
	uint64_t bytes = rdps_be64toh(m->bytes_be);
	struct srv_table *t;
	int ret;

	ret = srv_push_check(w, m, &t);
	if (ret)
		return ret;
	if (rdps_be32toh(m->flags_be) & PS_F_SPARSE)
		return srv_push_sparse(w, t, count, bytes, payload);
	return srv_push_dense(w, t, rdps_be64toh(m->start_be), count, bytes,
			      payload);
}
