/* SPDX-License-Identifier: MIT */
/*
 * server.c - one parameter server shard: the event loop that accepts
 * workers, applies their pushes and publishes clocks. The layout and the
 * protocol are ps_proto.h's; comments here say why, not what.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config.h"
#include "ps_proto.h"
#include "pulse.h"
#include "rdps_base.h"
#include "server.h"

_Static_assert(RDPS_SERVER_WORKERS_MAX <= PS_WORKERS_MAX,
	       "the gone map needs a bit per worker");

#define SRV_POLL_BATCH 32
#define SRV_REJECT_MAX 16     /* refused peers waiting for their welcome */
#define SRV_RING 16	      /* replies queued per worker (>= NSLOTS + 1) */
#define SRV_HOLD 64	      /* messages held back per worker (BSP) */
#define SRV_DEFERRED 1	      /* handle_push: hold the message back */
#define SRV_WAIT_MS_JOINING 5 /* wait slice while workers are missing */
#define SRV_WAIT_MS_FULL 100  /* wait slice once everyone is connected */
#define SRV_ACCEPT_EVERY_NS (20 * 1000000ull)

/* wr_id of the shard's own posts: kind in the top 32 bits, index below. */
enum srv_wr {
	SRV_WR_REPLY = 1,  /* credit, nack or welcome to worker idx */
	SRV_WR_REJECT = 2, /* refusing welcome to rejects[idx] */
	SRV_WR_PULSE = 3,  /* read of worker idx's pulse */
};
#define SRV_WR(kind, idx) (((uint64_t)(kind) << 32) | (uint32_t)(idx))

/* A queued reply: an immediate, and whether it carries the welcome. */
#define SRV_RING_WELCOME (1ull << 32)

enum srv_wstate { SRV_W_NONE = 0, SRV_W_LIVE, SRV_W_DEAD, SRV_W_LEFT };

struct srv_worker {
	struct rdps_server *s;
	unsigned rank;
	enum srv_wstate state;
	struct rdps_tp_ep *ep;
	struct rdps_tp_rkey reply; /* its reply region */
	void *slots;		   /* PS_NSLOTS * slot_bytes */
	size_t slots_len;
	struct rdps_tp_mr *slots_mr;
	uint64_t ends; /* PS_END messages seen = its next clock */
	uint64_t ring[SRV_RING];
	unsigned ring_head, ring_tail; /* replies not yet posted */
	bool stall_logged;
	bool gone_published; /* in gone_map (its endpoint is closed) */
	/* Its pulse: reads in flight, the value last seen and since when,
	 * when the read in flight was posted (ns). has_pulse: its reply
	 * region holds one. */
	bool has_pulse, pulse_busy;
	uint64_t pulse_seen, pulse_since, pulse_posted;
	/* BSP: received messages held back, in order: {imm, len}. */
	uint64_t hold[SRV_HOLD];
	unsigned hold_head, hold_tail;
};

/* A peer refused at accept: it gets a welcome with an errno, then is
 * closed once that write completed. */
struct srv_reject {
	struct rdps_tp_ep *ep;
	bool posted;
};

/* What one worker pushed for the clock being collected (BSP). */
struct srv_pend {
	void *buf;	   /* hi - lo elements, zero outside [dlo, dhi) */
	uint64_t dlo, dhi; /* touched range, shard-local offsets */
};

struct srv_table {
	bool used;
	char name[32];
	uint64_t n, lo, hi;
	uint32_t dtype, rule;
	unsigned esize;
	double lr;
	void *params;
	size_t params_len;
	struct rdps_tp_mr *params_mr;
	void *acc;	       /* Adagrad: sum of squares, hi - lo elements */
	struct srv_pend *pend; /* BSP: one per worker */
};

struct rdps_server {
	struct rdps_server_cfg cfg;
	char url[300];
	size_t slot_bytes;
	struct rdps_tp *tp;
	struct rdps_tp_listener *lst;
	struct ps_dir *dir;
	size_t dir_len;
	struct rdps_tp_mr *dir_mr;
	struct ps_clock_table *clk;
	size_t clk_len;
	struct rdps_tp_mr *clk_mr;
	struct rdps_tp_rkey_wire clk_wire;
	/* Welcome sources: one per worker, then one per reject; then a
	 * pulse landing spot (u64) per worker (srv_pulses). */
	struct ps_welcome *wel;
	size_t wel_len;
	struct rdps_tp_mr *wel_mr;
	struct srv_worker *w;
	struct srv_reject rejects[SRV_REJECT_MAX];
	struct srv_table tables[PS_MAX_TABLES];
	uint64_t applied;	   /* published applied_clock */
	bool replay;		   /* applied moved: retry held-back messages */
	unsigned live, dead, left; /* left: said PS_BYE */
	struct rdps_pulse heartbeat; /* bumps dir->hdr.heartbeat */
	uint64_t pulse_next_ns;	     /* next round of pulse reads */
	uint64_t pulse_last_ns;	     /* when the last round ran */
	/* Endpoints to close once the completions in hand are handled:
	 * a batch may still hold completions that point at them. */
	struct rdps_tp_ep **doomed;
	unsigned n_doomed, cap_doomed;
	uint64_t last_accept_ns;
	unsigned backlog; /* workers with replies not yet posted */
	bool bsp_stuck_logged;
	int fatal;
	struct rdps_server_stats st;
};

static inline uint16_t rdps_htobe16_(unsigned v)
{
	return __builtin_bswap16((uint16_t)v);
}
#define rdps_be16toh_ rdps_htobe16_

static const char *const rule_names[] = {"sum", "sgd", "adagrad"};

void rdps_server_cfg_default(struct rdps_server_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nshards = 1;
	cfg->workers = 1;
	cfg->model = RDPS_MODEL_BSP;
	cfg->poll_mode = RDPS_TP_POLL_ADAPTIVE;
	cfg->slot_bytes = PS_SLOT_BYTES_DEFAULT;
	cfg->resume_clock = RDPS_SERVER_RESUME_NEWEST;
	cfg->heartbeat_ms = PS_HEARTBEAT_MS;
}

static size_t round_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

/* Memory ---------------------------------------------------------------- */

static int region_new(struct rdps_server *s, size_t len, unsigned access,
		      void **addr_out, struct rdps_tp_mr **mr_out)
{
	void *addr;
	int ret;

	ret = rdps_tp_mem_alloc(s->tp, len, &addr);
	if (ret)
		return ret;
	ret = rdps_tp_mem_reg(s->tp, addr, len, access, mr_out);
	if (ret) {
		rdps_tp_mem_free(s->tp, addr, len);
		return ret;
	}
	*addr_out = addr;
	return 0;
}

static void region_free(struct rdps_server *s, void **addr, size_t len,
			struct rdps_tp_mr **mr)
{
	if (*mr)
		rdps_tp_mem_dereg(*mr);
	if (*addr)
		rdps_tp_mem_free(s->tp, *addr, len);
	*mr = NULL;
	*addr = NULL;
}

/* Clocks ---------------------------------------------------------------- */

/* BSP and A-BSP close clocks alike: deltas applied in worker order. */
static bool srv_bsp(const struct rdps_server *s)
{
	return rdps_model_in_order(s->cfg.model);
}

static uint64_t *srv_pulses(struct rdps_server *s)
{
	return (uint64_t *)(s->wel + s->cfg.workers + SRV_REJECT_MAX);
}

static void publish_applied(struct rdps_server *s, uint64_t c)
{
	s->applied = c;
	s->st.applied_clock = c;
	/* Release: a worker that reads this value (and then the params on
	 * the same endpoint) sees every update of the clocks below c. */
	__atomic_store_n(&s->dir->hdr.applied_clock_be, rdps_htobe64(c),
			 __ATOMIC_RELEASE);
}

/* Update rules ---------------------------------------------------------- */

/*
 * dst[i] += src[i] for dense deltas, 32 bytes at a time with the compiler's
 * vector extension: -O2 leaves the plain loop scalar (it needs a scalar
 * tail). Element-wise IEEE adds, so results are those of the plain loop.
 * memcpy keeps the loads and stores free of alignment assumptions.
 */
#define DEFINE_ADD(sfx, type)                                         \
	typedef type vec_##sfx __attribute__((vector_size(32)));      \
	static void add_##sfx(type *dst, const type *src, uint64_t n) \
	{                                                             \
		const uint64_t w = sizeof(vec_##sfx) / sizeof(type);  \
		uint64_t i = 0;                                       \
		vec_##sfx a, b;                                       \
                                                                      \
		for (; i + w <= n; i += w) {                          \
			memcpy(&a, dst + i, sizeof(a));               \
			memcpy(&b, src + i, sizeof(b));               \
			a += b;                                       \
			memcpy(dst + i, &a, sizeof(a));               \
		}                                                     \
		for (; i < n; i++)                                    \
			dst[i] += src[i];                             \
	}

DEFINE_ADD(f32, float)
DEFINE_ADD(f64, double)

/* d may be unaligned (sparse pairs), so values are copied out. */
#define DEFINE_APPLY(sfx, type, sqrtfn)                                        \
	static void apply_##sfx(struct srv_table *t, uint64_t off, uint64_t n, \
				const void *d_, size_t stride)                 \
	{                                                                      \
		type *p = (type *)t->params + off;                             \
		type *acc = t->acc ? (type *)t->acc + off : NULL;              \
		const unsigned char *d = d_;                                   \
		const type lr = (type)t->lr;                                   \
		type v;                                                        \
                                                                               \
		switch (t->rule) {                                             \
		case PS_RULE_SUM:                                              \
			if (stride == sizeof(type)) {                          \
				add_##sfx(p, d_, n);                           \
				return;                                        \
			}                                                      \
			for (uint64_t i = 0; i < n; i++) {                     \
				memcpy(&v, d + i * stride, sizeof(v));         \
				p[i] += v;                                     \
			}                                                      \
			return;                                                \
		case PS_RULE_SGD:                                              \
			for (uint64_t i = 0; i < n; i++) {                     \
				memcpy(&v, d + i * stride, sizeof(v));         \
				p[i] -= lr * v;                                \
			}                                                      \
			return;                                                \
		case PS_RULE_ADAGRAD:                                          \
			for (uint64_t i = 0; i < n; i++) {                     \
				memcpy(&v, d + i * stride, sizeof(v));         \
				acc[i] += v * v;                               \
				p[i] -= lr * v / sqrtfn(acc[i] + (type)1e-8);  \
			}                                                      \
			return;                                                \
		}                                                              \
	}                                                                      \
                                                                               \
	static void accum_##sfx(type *dst, const void *d_, uint64_t n,         \
				size_t stride)                                 \
	{                                                                      \
		const unsigned char *d = d_;                                   \
		type v;                                                        \
                                                                               \
		if (stride == sizeof(type)) {                                  \
			add_##sfx(dst, d_, n);                                 \
			return;                                                \
		}                                                              \
		for (uint64_t i = 0; i < n; i++) {                             \
			memcpy(&v, d + i * stride, sizeof(v));                 \
			dst[i] += v;                                           \
		}                                                              \
	}

DEFINE_APPLY(f32, float, sqrtf)
DEFINE_APPLY(f64, double, sqrt)

/* Apply n values (stride bytes apart) to params [off, off+n). */
static void table_apply(struct srv_table *t, uint64_t off, uint64_t n,
			const void *d, size_t stride)
{
	if (t->dtype == PS_DTYPE_F64)
		apply_f64(t, off, n, d, stride);
	else
		apply_f32(t, off, n, d, stride);
}

/* BSP: add n values to worker w's pending delta at [off, off+n). */
static int table_accum(struct rdps_server *s, struct srv_table *t, unsigned w,
		       uint64_t off, uint64_t n, const void *d, size_t stride)
{
	struct srv_pend *pd = &t->pend[w];

	if (!pd->buf) {
		pd->buf = calloc(t->hi - t->lo, t->esize);
		if (!pd->buf)
			return -ENOMEM;
		pd->dlo = t->hi - t->lo;
		pd->dhi = 0;
	}
	if (t->dtype == PS_DTYPE_F64)
		accum_f64((double *)pd->buf + off, d, n, stride);
	else
		accum_f32((float *)pd->buf + off, d, n, stride);
	if (off < pd->dlo)
		pd->dlo = off;
	if (off + n > pd->dhi)
		pd->dhi = off + n;
	return 0;
}

/* BSP: every END(c) is in: apply the pending deltas in worker order. */
static void bsp_apply_pending(struct rdps_server *s)
{
	for (unsigned i = 0; i < PS_MAX_TABLES; i++) {
		struct srv_table *t = &s->tables[i];

		if (!t->used || !t->pend)
			continue;
		for (unsigned w = 0; w < s->cfg.workers; w++) {
			struct srv_pend *pd = &t->pend[w];
			unsigned char *b = pd->buf;

			if (!b || pd->dlo >= pd->dhi)
				continue;
			b += pd->dlo * t->esize;
			table_apply(t, pd->dlo, pd->dhi - pd->dlo, b, t->esize);
			memset(b, 0, (pd->dhi - pd->dlo) * t->esize);
			pd->dlo = t->hi - t->lo;
			pd->dhi = 0;
		}
	}
}

/* Tables ---------------------------------------------------------------- */

static void table_free(struct rdps_server *s, struct srv_table *t)
{
	if (t->pend) {
		for (unsigned w = 0; w < s->cfg.workers; w++)
			free(t->pend[w].buf);
		free(t->pend);
	}
	free(t->acc);
	region_free(s, &t->params, t->params_len, &t->params_mr);
	memset(t, 0, sizeof(*t));
}

static struct srv_table *table_find(struct rdps_server *s, const char *name)
{
	for (unsigned i = 0; i < PS_MAX_TABLES; i++)
		if (s->tables[i].used && !strcmp(s->tables[i].name, name))
			return &s->tables[i];
	return NULL;
}

/* A new table; its descriptor is published (ready) only by
 * table_publish(), once its values are in place. */
static int table_create(struct rdps_server *s, const char *name, uint64_t n,
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
	t->dtype = dtype;
	t->rule = rule;
	t->lr = lr;
	t->esize = ps_dtype_size(dtype);
	ps_shard_range(n, s->cfg.nshards, s->cfg.shard, &t->lo, &t->hi);
	t->params_len = round_up((t->hi - t->lo) * t->esize, 64);
	if (!t->params_len)
		t->params_len = 64;
	ret = region_new(s, t->params_len, RDPS_TP_ACCESS_REMOTE_READ,
			 &t->params, &t->params_mr);
	if (ret)
		goto err;
	if (rule == PS_RULE_ADAGRAD && t->hi > t->lo) {
		t->acc = calloc(t->hi - t->lo, t->esize);
		if (!t->acc) {
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
	table_free(s, t);
	return ret;
}

static void table_publish(struct rdps_server *s, struct srv_table *t)
{
	unsigned idx = (unsigned)(t - s->tables);
	struct ps_table_desc *desc = &s->dir->tables[idx];
	uint64_t lr_bits;

	memcpy(&lr_bits, &t->lr, sizeof(lr_bits));
	memcpy(desc->name, t->name, sizeof(desc->name));
	desc->n_be = rdps_htobe64(t->n);
	desc->lo_be = rdps_htobe64(t->lo);
	desc->hi_be = rdps_htobe64(t->hi);
	desc->dtype_be = rdps_htobe32(t->dtype);
	desc->rule_be = rdps_htobe32(t->rule);
	desc->lr_bits_be = rdps_htobe64(lr_bits);
	rdps_tp_rkey_pack(t->params_mr, &desc->params);
	__atomic_store_n(&desc->ready_be, rdps_htobe64(1), __ATOMIC_RELEASE);
	s->st.tables++;
	rdps_info("table '%s' (index %u): n %" PRIu64 " %s %s lr %g, this "
		  "shard holds [%" PRIu64 ", %" PRIu64 ")",
		  t->name, idx, t->n, t->dtype ? "f64" : "f32",
		  rule_names[t->rule], t->lr, t->lo, t->hi);
}

static int handle_create(struct srv_worker *w, const struct ps_msg *m,
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
	    rule > PS_RULE_ADAGRAD || !isfinite(lr)) {
		rdps_warn("worker %u: create table '%s' with n %" PRIu64
			  " dtype %u rule %u lr %g: refused (n must be > 0, "
			  "dtype 0..1, rule 0..2, lr finite)",
			  w->rank, c.name, n, dtype, rule, lr);
		return -EINVAL;
	}
	t = table_find(s, c.name);
	if (t) {
		if (t->n != n || t->dtype != dtype || t->rule != rule) {
			rdps_warn("worker %u: table '%s' exists with n %" PRIu64
				  " %s %s, asked for n %" PRIu64 " %s %s: "
				  "refused",
				  w->rank, c.name, t->n,
				  t->dtype ? "f64" : "f32", rule_names[t->rule],
				  n, dtype ? "f64" : "f32", rule_names[rule]);
			return -EINVAL;
		}
		return 0;
	}
	ret = table_create(s, c.name, n, dtype, rule, lr, &t);
	if (!ret)
		table_publish(s, t);
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

/* Pushes ---------------------------------------------------------------- */

static int handle_push(struct srv_worker *w, const struct ps_msg *m,
		       const unsigned char *payload)
{
	struct rdps_server *s = w->s;
	uint32_t tix = rdps_be32toh(m->table_be);
	uint32_t flags = rdps_be32toh(m->flags_be);
	uint64_t start = rdps_be64toh(m->start_be);
	uint64_t count = rdps_be64toh(m->count_be);
	uint64_t clock = rdps_be64toh(m->clock_be);
	uint64_t bytes = rdps_be64toh(m->bytes_be);
	bool bsp = srv_bsp(s);
	struct srv_table *t;
	size_t pair;
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
	/* A worker may be ahead of this shard by more than one clock: its
	 * own ENDs are in (clock == ends) but another worker's END of an
	 * earlier clock may still wait in a ring polled after this one. Hold
	 * it until applied reaches its clock (see handle_comp). */
	if (bsp && clock > s->applied && clock == w->ends)
		return SRV_DEFERRED;
	if (bsp && clock != s->applied) {
		rdps_warn("worker %u: bsp push to table '%s' for clock %" PRIu64
			  " while the shard collects clock %" PRIu64
			  ": refused",
			  w->rank, t->name, clock, s->applied);
		return -EPROTO;
	}
	if (!(flags & PS_F_SPARSE)) {
		if (start < t->lo || start > t->hi || count > t->hi - start ||
		    start + count > t->n) {
			rdps_warn("worker %u: dense push to table '%s' of "
				  "[%" PRIu64 ", +%" PRIu64 ") is outside "
				  "this shard's [%" PRIu64 ", %" PRIu64
				  "): refused",
				  w->rank, t->name, start, count, t->lo, t->hi);
			return -ERANGE;
		}
		if (bytes != count * t->esize) {
			rdps_warn("worker %u: dense push to table '%s' of "
				  "%" PRIu64 " elements carries %" PRIu64
				  " bytes, not %" PRIu64 ": refused",
				  w->rank, t->name, count, bytes,
				  count * t->esize);
			return -EINVAL;
		}
		if (!count)
			return 0;
		if (bsp)
			return table_accum(s, t, w->rank, start - t->lo, count,
					   payload, t->esize);
		table_apply(t, start - t->lo, count, payload, t->esize);
		return 0;
	}

	pair = 8 + t->esize;
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
		if (bsp) {
			ret = table_accum(s, t, w->rank, ix - t->lo, 1,
					  payload + i * pair + 8, t->esize);
			if (ret)
				return ret;
		} else {
			table_apply(t, ix - t->lo, 1, payload + i * pair + 8,
				    t->esize);
		}
	}
	return 0;
}

/* Worker lifecycle -------------------------------------------------------- */

/* Close ep after the current batch of completions (ep->user is cleared
 * now, so the rest of the batch ignores it). */
static void ep_close_later(struct rdps_server *s, struct rdps_tp_ep *ep)
{
	ep->user = NULL;
	if (s->n_doomed == s->cap_doomed) {
		unsigned cap = s->cap_doomed ? 2 * s->cap_doomed : 16;
		struct rdps_tp_ep **d = realloc(s->doomed, cap * sizeof(*d));

		if (!d) {
			/* Leak the endpoint rather than free it under a
			 * pending completion; it closes with the transport. */
			rdps_err("shard %u: out of memory closing an endpoint",
				 s->cfg.shard);
			return;
		}
		s->doomed = d;
		s->cap_doomed = cap;
	}
	s->doomed[s->n_doomed++] = ep;
}

/*
 * Close the doomed endpoints, then publish the workers that died with
 * them: only now can nothing of theirs reach our memory any more (an
 * operation still queued in the transport dies with the endpoint), which
 * is what lets the others make up for their clocks (ps_proto.h).
 */
static void ep_close_doomed(struct rdps_server *s)
{
	struct ps_dir_hdr *h = &s->dir->hdr;
	unsigned dead = rdps_be32toh(h->dead_count_be);
	unsigned gone = rdps_be32toh(h->gone_count_be);

	for (unsigned i = 0; i < s->n_doomed; i++)
		rdps_tp_ep_close(s->doomed[i]);
	s->n_doomed = 0;
	for (unsigned r = 0; r < s->cfg.workers && gone < s->dead + s->left;
	     r++) {
		struct srv_worker *w = &s->w[r];
		uint64_t *m = &s->dir->gone_map_be[r / 64];

		if ((w->state != SRV_W_DEAD && w->state != SRV_W_LEFT) ||
		    w->gone_published)
			continue;
		w->gone_published = true;
		__atomic_store_n(
			m, rdps_htobe64(rdps_be64toh(*m) | 1ull << r % 64),
			__ATOMIC_RELEASE);
		__atomic_store_n(&h->gone_count_be, rdps_htobe32(++gone),
				 __ATOMIC_RELEASE);
		if (w->state != SRV_W_DEAD)
			continue;
		if (!dead++)
			h->dead_first_be = rdps_htobe32(r);
		__atomic_store_n(&h->dead_count_be, rdps_htobe32(dead),
				 __ATOMIC_RELEASE);
	}
}

/* Close w's endpoint and free its slots; drop its pending BSP deltas
 * unless it left on purpose (they still count for the clock). */
static void worker_release(struct srv_worker *w, bool drop_pending)
{
	struct rdps_server *s = w->s;

	if (w->ep) {
		ep_close_later(s, w->ep);
		w->ep = NULL;
	}
	region_free(s, &w->slots, w->slots_len, &w->slots_mr);
	if (drop_pending && srv_bsp(s)) {
		/* Its pending deltas of the clock being collected die with
		 * it: the clock cannot complete anyway. */
		for (unsigned i = 0; i < PS_MAX_TABLES; i++) {
			struct srv_table *t = &s->tables[i];

			if (t->used && t->pend) {
				free(t->pend[w->rank].buf);
				t->pend[w->rank].buf = NULL;
			}
		}
	}
	if (w->ring_head != w->ring_tail)
		s->backlog--;
	w->ring_head = w->ring_tail = 0;
	w->hold_head = w->hold_tail = 0;
}

/* BSP cannot complete a clock without every worker: say so once, when a
 * live worker has gone past a dead one. */
static void bsp_check_stuck(struct rdps_server *s)
{
	if (!srv_bsp(s) || !s->dead || s->bsp_stuck_logged)
		return;
	for (unsigned r = 0; r < s->cfg.workers; r++) {
		struct srv_worker *d = &s->w[r];

		if (d->state != SRV_W_DEAD)
			continue;
		for (unsigned q = 0; q < s->cfg.workers; q++) {
			if (s->w[q].state == SRV_W_LIVE &&
			    s->w[q].ends > d->ends) {
				rdps_err("bsp: clock %" PRIu64
					 " can never complete on shard %u: "
					 "worker %u is gone (restart the job)",
					 d->ends, s->cfg.shard, r);
				s->bsp_stuck_logged = true;
				return;
			}
		}
	}
}

static void worker_dead(struct srv_worker *w, const char *why)
{
	struct rdps_server *s = w->s;

	if (w->state != SRV_W_LIVE)
		return;
	if (srv_bsp(s))
		rdps_warn("worker %u lost on shard %u (%" PRIu64
			  " clocks ended here): %s; endpoint closed",
			  w->rank, s->cfg.shard, w->ends, why);
	else
		rdps_warn("worker %u lost on shard %u: %s; endpoint closed",
			  w->rank, s->cfg.shard, why);
	w->state = SRV_W_DEAD;
	s->live--;
	s->dead++;
	s->st.workers_live = s->live;
	s->st.workers_dead = s->dead;
	worker_release(w, true);
	bsp_check_stuck(s);
}

/* The worker said PS_BYE: it is done, not dead. */
static void worker_left(struct srv_worker *w)
{
	struct rdps_server *s = w->s;

	if (w->state != SRV_W_LIVE)
		return;
	rdps_info("worker %u left shard %u", w->rank, s->cfg.shard);
	w->state = SRV_W_LEFT;
	s->live--;
	s->left++;
	s->st.workers_live = s->live;
	worker_release(w, false);
}

/*
 * Every heartbeat interval, read each live worker's pulse (ps_proto.h). A
 * worker whose pulse stood still, or whose read went unanswered (tcp: its
 * process is stopped), for two intervals is stopped or hung: counted dead
 * like one whose connection broke. A shard that was itself away longer
 * than half an interval past a round (a long checkpoint) has seen nothing
 * and starts over.
 */
static void srv_pulse(struct rdps_server *s)
{
	uint64_t now = rdps_now_ns(), period = s->cfg.heartbeat_ms * 1000000ull;
	/* Rounds run within a loop slice (100 ms) of their time. */
	bool away = s->pulse_last_ns && now - s->pulse_last_ns > period * 3 / 2;

	if (!period || now < s->pulse_next_ns)
		return;
	s->pulse_next_ns = now + period;
	s->pulse_last_ns = now;
	for (unsigned r = 0; r < s->cfg.workers; r++) {
		struct srv_worker *w = &s->w[r];
		char why[128];
		int ret;

		if (w->state != SRV_W_LIVE || !w->has_pulse)
			continue;
		if (away) {
			w->pulse_since = now;
			w->pulse_posted = now;
		}
		if (w->pulse_busy) {
			if (now - w->pulse_posted <= 2 * period)
				continue;
			snprintf(why, sizeof(why),
				 "its pulse read got no answer for %llu ms: "
				 "the process is stopped or hung",
				 (unsigned long long)((now - w->pulse_posted) /
						      1000000));
			worker_dead(w, why);
			continue;
		}
		ret = rdps_tp_get(w->ep, &srv_pulses(s)[r], 8, s->wel_mr,
				  w->reply.addr + ps_pulse_off(s->cfg.nshards),
				  &w->reply, SRV_WR(SRV_WR_PULSE, r), 0);
		if (ret == -EAGAIN)
			continue; /* queues full: next round */
		if (ret) {
			snprintf(why, sizeof(why), "pulse read not posted: %s",
				 strerror(-ret));
			worker_dead(w, why);
			continue;
		}
		w->pulse_busy = true;
		w->pulse_posted = now;
	}
}

/* A pulse read of w came back with v. */
static void srv_pulse_seen(struct srv_worker *w, uint64_t v)
{
	uint64_t now = rdps_now_ns();
	unsigned ms = w->s->cfg.heartbeat_ms;
	char why[128];

	w->pulse_busy = false;
	if (v != w->pulse_seen || !w->pulse_since) {
		w->pulse_seen = v;
		w->pulse_since = now;
		return;
	}
	if (now - w->pulse_since <= 2 * ms * 1000000ull)
		return;
	snprintf(why, sizeof(why),
		 "its pulse stood still for %llu ms (two heartbeats are %u "
		 "ms): the process is stopped or hung",
		 (unsigned long long)((now - w->pulse_since) / 1000000),
		 2 * ms);
	worker_dead(w, why);
}

/* Post queued replies in order until the transport pushes back. */
static void worker_flush(struct srv_worker *w)
{
	struct rdps_server *s = w->s;

	while (w->state == SRV_W_LIVE && w->ring_head != w->ring_tail) {
		uint64_t e = w->ring[w->ring_head % SRV_RING];
		uint64_t wr = SRV_WR(SRV_WR_REPLY, w->rank);
		int ret;

		if (e & SRV_RING_WELCOME)
			ret = rdps_tp_put_imm(
				w->ep, &s->wel[w->rank],
				sizeof(struct ps_welcome), s->wel_mr,
				w->reply.addr +
					s->cfg.shard *
						sizeof(struct ps_welcome),
				&w->reply, (uint32_t)e, wr, 0);
		else
			ret = rdps_tp_put_imm(w->ep, NULL, 0, NULL, 0, NULL,
					      (uint32_t)e, wr, 0);
		if (ret == -EAGAIN) {
			if (!w->stall_logged)
				rdps_dbg("worker %u: replies wait for room",
					 w->rank);
			w->stall_logged = true;
			return;
		}
		if (ret) {
			char why[96];

			snprintf(why, sizeof(why), "reply not posted: %s",
				 strerror(-ret));
			worker_dead(w, why);
			return;
		}
		w->ring_head++;
		if (w->ring_head == w->ring_tail)
			s->backlog--;
	}
}

static void worker_reply(struct srv_worker *w, uint64_t e)
{
	if (w->ring_tail - w->ring_head >= SRV_RING) {
		worker_dead(w, "more messages outstanding than sub-slots");
		return;
	}
	if (w->ring_head == w->ring_tail)
		w->s->backlog++;
	w->ring[w->ring_tail++ % SRV_RING] = e;
	worker_flush(w);
}

/* Accepting ------------------------------------------------------------- */

static void reject(struct rdps_server *s, struct rdps_tp_ep *ep,
		   const struct rdps_tp_rkey *reply, int status)
{
	unsigned i;
	struct ps_welcome *wm;
	int ret;

	for (i = 0; i < SRV_REJECT_MAX && s->rejects[i].ep; i++)
		;
	if (i == SRV_REJECT_MAX || !reply) {
		rdps_tp_ep_close(ep);
		return;
	}
	wm = &s->wel[s->cfg.workers + i];
	memset(wm, 0, sizeof(*wm));
	wm->status_be = rdps_htobe32((uint32_t)status);
	wm->nslots_be = rdps_htobe32(PS_NSLOTS);
	ret = rdps_tp_put_imm(ep, wm, sizeof(*wm), s->wel_mr,
			      reply->addr +
				      s->cfg.shard * sizeof(struct ps_welcome),
			      reply, PS_IMM(PS_WELCOME, (uint32_t)status),
			      SRV_WR(SRV_WR_REJECT, i), 0);
	if (ret) {
		rdps_tp_ep_close(ep);
		return;
	}
	ep->user = NULL;
	s->rejects[i].ep = ep;
	s->rejects[i].posted = true;
}

static void accept_one(struct rdps_server *s, struct rdps_tp_ep *ep)
{
	struct ps_whello h;
	struct rdps_tp_rkey reply;
	struct srv_worker *w;
	struct ps_welcome *wm;
	unsigned rank, workers;
	int ret, status = 0;

	ep->user = NULL;
	if (ep->peer_priv_len < sizeof(h)) {
		rdps_warn("shard %u: refused a peer that sent %u bytes of "
			  "hello, not %zu: not an rdps worker?",
			  s->cfg.shard, ep->peer_priv_len, sizeof(h));
		rdps_tp_ep_close(ep);
		return;
	}
	memcpy(&h, ep->peer_priv, sizeof(h));
	if (rdps_be32toh(h.magic_be) != PS_MAGIC_WORKER) {
		rdps_warn("shard %u: refused a peer with hello magic 0x%08x: "
			  "not an rdps worker",
			  s->cfg.shard, rdps_be32toh(h.magic_be));
		rdps_tp_ep_close(ep);
		return;
	}
	if (rdps_tp_rkey_unpack(ep, &h.reply, &reply)) {
		rdps_warn("shard %u: refused a worker with a malformed reply "
			  "key",
			  s->cfg.shard);
		rdps_tp_ep_close(ep);
		return;
	}
	rank = rdps_be16toh_(h.rank_be);
	workers = rdps_be16toh_(h.workers_be);
	if (workers != s->cfg.workers) {
		rdps_warn("shard %u: refused worker %u: it counts %u workers, "
			  "this shard %u (start everyone with the same count)",
			  s->cfg.shard, rank, workers, s->cfg.workers);
		status = EINVAL;
	} else if (rank >= s->cfg.workers) {
		rdps_warn("shard %u: refused worker rank %u: ranks are 0..%u",
			  s->cfg.shard, rank, s->cfg.workers - 1);
		status = EINVAL;
	} else if (s->w[rank].state != SRV_W_NONE) {
		rdps_warn("shard %u: refused a second worker with rank %u "
			  "(%s)",
			  s->cfg.shard, rank,
			  s->w[rank].state == SRV_W_LIVE
				  ? "already connected"
				  : "it was lost before");
		status = EEXIST;
	}
	if (status) {
		reject(s, ep, &reply, status);
		return;
	}

	w = &s->w[rank];
	w->slots_len = (size_t)PS_NSLOTS * s->slot_bytes;
	/* Least privilege: the slots take this worker's writes alone (its
	 * endpoint's), another worker's writes with their key fail. */
	ret = rdps_tp_mem_alloc(s->tp, w->slots_len, &w->slots);
	if (!ret) {
		ret = rdps_tp_mem_reg_ep(ep, w->slots, w->slots_len,
					 RDPS_TP_ACCESS_REMOTE_WRITE,
					 &w->slots_mr);
		if (ret == -EOPNOTSUPP) {
			rdps_warn("shard %u: %s; worker %u's slots take "
				  "writes from any worker",
				  s->cfg.shard, rdps_errmsg(), rank);
			ret = rdps_tp_mem_reg(s->tp, w->slots, w->slots_len,
					      RDPS_TP_ACCESS_REMOTE_WRITE,
					      &w->slots_mr);
		}
		if (ret)
			region_free(s, &w->slots, w->slots_len, &w->slots_mr);
	}
	if (ret) {
		rdps_err("shard %u: no slot memory for worker %u (%zu bytes): "
			 "%s",
			 s->cfg.shard, rank, w->slots_len, strerror(-ret));
		reject(s, ep, &reply, ENOMEM);
		return;
	}
	w->ep = ep;
	w->reply = reply;
	w->state = SRV_W_LIVE;
	/* Workers before protocol 3 have no pulse after their welcomes. */
	w->has_pulse = reply.len >= ps_reply_len(s->cfg.nshards);
	w->pulse_busy = false;
	w->pulse_since = 0;
	w->ring_head = w->ring_tail = 0;
	ep->user = w;
	s->live++;
	s->st.workers_live = s->live;

	wm = &s->wel[rank];
	memset(wm, 0, sizeof(*wm));
	wm->status_be = 0;
	wm->nslots_be = rdps_htobe32(PS_NSLOTS);
	wm->slot_bytes_be = rdps_htobe64(s->slot_bytes);
	rdps_tp_rkey_pack(w->slots_mr, &wm->slots);
	if (s->clk_mr)
		wm->clock = s->clk_wire;
	rdps_info("shard %u: worker %u connected (%u of %u)", s->cfg.shard,
		  rank, s->live, s->cfg.workers);
	worker_reply(w, SRV_RING_WELCOME | PS_IMM(PS_WELCOME, 0));
}

static int accept_all(struct rdps_server *s, int timeout_ms)
{
	struct rdps_tp_ep *ep;
	int ret;

	s->last_accept_ns = rdps_now_ns();
	for (;;) {
		ret = rdps_tp_accept(s->lst, &ep, timeout_ms);
		if (ret == -ETIMEDOUT || ret == -EAGAIN || ret == -EINTR)
			return 0;
		if (ret == -ECONNREFUSED || ret == -ECONNABORTED ||
		    ret == -EPROTO || ret == -EACCES || ret == -ENOBUFS) {
			timeout_ms = 0; /* one peer failed; others may wait */
			continue;
		}
		if (ret)
			return ret;
		accept_one(s, ep);
		timeout_ms = 0;
	}
}

/* Completions ----------------------------------------------------------- */

/* Checkpoints ----------------------------------------------------------- */

/* Write the tables as of applied clock c when c is due. Before c is
 * published, so no worker runs past a clock this shard could not resume
 * at: shards of a job are at most one checkpoint apart. A failure is
 * logged and the job goes on (the previous checkpoint stays). */
static void srv_checkpoint(struct rdps_server *s, uint64_t c)
{
	unsigned every = s->cfg.ckpt_every ? s->cfg.ckpt_every : 1;
	struct ckpt *ck;
	uint64_t t0;
	int ret;

	if (!s->cfg.ckpt_dir || c % every)
		return;
	ck = calloc(1, sizeof(*ck));
	if (!ck) {
		rdps_err("shard %u: no memory for the checkpoint of clock "
			 "%" PRIu64,
			 s->cfg.shard, c);
		return;
	}
	ck->shard = s->cfg.shard;
	ck->nshards = s->cfg.nshards;
	ck->workers = s->cfg.workers;
	ck->model = (unsigned)s->cfg.model;
	ck->clock = c;
	for (unsigned i = 0; i < PS_MAX_TABLES; i++) {
		const struct srv_table *t = &s->tables[i];
		struct ckpt_table *ct;

		if (!t->used)
			continue;
		ct = &ck->t[ck->ntables++];
		memcpy(ct->name, t->name, sizeof(ct->name));
		ct->n = t->n;
		ct->lo = t->lo;
		ct->hi = t->hi;
		ct->dtype = t->dtype;
		ct->rule = t->rule;
		ct->esize = t->esize;
		ct->lr = t->lr;
		ct->params = t->params;
		ct->acc = t->acc;
	}
	t0 = rdps_now_ns();
	ret = ckpt_write(s->cfg.ckpt_dir, ck);
	if (ret)
		rdps_err("shard %u: checkpoint of clock %" PRIu64
			 " failed, the last good one stays: %s",
			 s->cfg.shard, c, rdps_errmsg());
	else
		rdps_dbg("shard %u: checkpoint of clock %" PRIu64
			 " (%u tables) written in %.1f ms",
			 s->cfg.shard, c, ck->ntables,
			 (double)(rdps_now_ns() - t0) / 1e6);
	free(ck);
}

/* Load the checkpoint to resume from into s (tables, applied clock, clock
 * table on shard 0). */
static int srv_resume(struct rdps_server *s)
{
	const struct rdps_server_cfg *cfg = &s->cfg;
	char path[2][4096];
	void *buf[2] = {NULL, NULL};
	struct ckpt *ck[2] = {NULL, NULL};
	int pick = -1, ret = 0, rets[2];

	for (int i = 0; i < 2; i++) {
		ck[i] = calloc(1, sizeof(*ck[i]));
		if (!ck[i]) {
			ret = rdps_set_error(-ENOMEM, "out of memory");
			goto out;
		}
		ret = ckpt_path(path[i], sizeof(path[i]), cfg->ckpt_dir,
				cfg->shard, i);
		if (ret)
			goto out;
		rets[i] = ckpt_load(path[i], &buf[i], ck[i]);
		if (rets[i] && rets[i] != -ENOENT) {
			/* A corrupt newest file may still leave .prev. */
			rdps_warn("shard %u: %s", cfg->shard, rdps_errmsg());
		}
	}
	for (int i = 0; i < 2; i++) {
		if (rets[i])
			continue;
		if (cfg->resume_clock == RDPS_SERVER_RESUME_NEWEST
			    ? pick < 0 || ck[i]->clock > ck[pick]->clock
			    : ck[i]->clock == cfg->resume_clock)
			pick = i;
	}
	if (pick < 0) {
		if (cfg->resume_clock == RDPS_SERVER_RESUME_NEWEST)
			ret = rdps_set_error(-ENOENT,
					     "no usable checkpoint of shard %u "
					     "in %s (see the messages above; "
					     "start without resume to begin "
					     "afresh)",
					     cfg->shard, cfg->ckpt_dir);
		else
			ret = rdps_set_error(-ENOENT,
					     "shard %u has no checkpoint of "
					     "clock %" PRIu64 " in %s",
					     cfg->shard, cfg->resume_clock,
					     cfg->ckpt_dir);
		goto out;
	}
	{
		const struct ckpt *c = ck[pick];

		if (c->shard != cfg->shard || c->nshards != cfg->nshards ||
		    c->workers != cfg->workers ||
		    c->model != (unsigned)cfg->model) {
			ret = rdps_set_error(
				-EINVAL,
				"checkpoint %s is of shard %u of %u, %u "
				"workers, model %s; this shard is %u of %u, "
				"%u workers, model %s: resume with the job's "
				"own layout",
				path[pick], c->shard, c->nshards, c->workers,
				rdps_model_name(c->model), cfg->shard,
				cfg->nshards, cfg->workers,
				rdps_model_name(cfg->model));
			goto out;
		}
		for (unsigned i = 0; i < c->ntables; i++) {
			const struct ckpt_table *ct = &c->t[i];
			struct srv_table *t;
			uint64_t lo, hi;

			ps_shard_range(ct->n, cfg->nshards, cfg->shard, &lo,
				       &hi);
			if (ct->dtype > PS_DTYPE_F64 ||
			    ct->rule > PS_RULE_ADAGRAD || lo != ct->lo ||
			    hi != ct->hi ||
			    ct->esize != ps_dtype_size(ct->dtype) ||
			    !ct->acc !=
				    (ct->rule != PS_RULE_ADAGRAD || lo == hi) ||
			    table_find(s, ct->name)) {
				ret = rdps_set_error(
					-EINVAL,
					"checkpoint %s: table '%s' does not "
					"fit this shard (range, type, rule or "
					"a duplicate name)",
					path[pick], ct->name);
				goto out;
			}
			ret = table_create(s, ct->name, ct->n, ct->dtype,
					   ct->rule, ct->lr, &t);
			if (ret) {
				rdps_set_error(ret,
					       "cannot create table '%s' of "
					       "checkpoint %s: %s",
					       ct->name, path[pick],
					       strerror(-ret));
				goto out;
			}
			memcpy(t->params, ct->params, (hi - lo) * t->esize);
			if (t->acc)
				memcpy(t->acc, ct->acc, (hi - lo) * t->esize);
			table_publish(s, t);
		}
		/* The clock table as the job left clock c: W arrivals at
		 * every clock below c, no barrier, round c not cut. */
		if (s->clk) {
			unsigned k = ps_clock_k(cfg->slack);

			for (unsigned r = 0; r < k; r++)
				s->clk->arrive[r] =
					(uint64_t)cfg->workers *
					(c->clock / k + (r < c->clock % k));
			s->clk->barrier = 0;
			s->clk->cut = c->clock;
			/* wclock[] and wbar[] (ps_wclock_off) stay 0: only
			 * the clocks a worker finishes from here count. */
		}
		for (unsigned r = 0; r < cfg->workers; r++)
			s->w[r].ends = c->clock;
		publish_applied(s, c->clock);
		rdps_info("shard %u: resumed at clock %" PRIu64
			  " from %s (%u tables)",
			  cfg->shard, c->clock, path[pick], c->ntables);
	}
out:
	for (int i = 0; i < 2; i++) {
		free(buf[i]);
		free(ck[i]);
	}
	return ret;
}

static void handle_end(struct srv_worker *w, uint32_t arg)
{
	struct rdps_server *s = w->s;
	uint64_t lo = UINT64_MAX;

	if ((w->ends & PS_ARG_MASK) != arg)
		rdps_warn("worker %u: end of clock %u, expected clock %" PRIu64
			  " (counted as that)",
			  w->rank, arg, w->ends);
	w->ends++;
	s->st.ends++;
	for (unsigned r = 0; r < s->cfg.workers; r++)
		if (s->w[r].ends < lo)
			lo = s->w[r].ends;
	if (lo > s->applied) {
		/* In BSP lo moves by one: every END(applied) is in. */
		if (srv_bsp(s)) {
			bsp_apply_pending(s);
			srv_checkpoint(s, lo);
		}
		publish_applied(s, lo);
		s->replay = true;
	}
	bsp_check_stuck(s);
}

/* Returns true when the message must be held back (BSP, next clock). */
static bool handle_msg(struct srv_worker *w, uint32_t kind, uint32_t k,
		       uint32_t len)
{
	struct rdps_server *s = w->s;
	const unsigned char *slot;
	struct ps_msg m;
	uint64_t bytes;
	int ret;

	if (k >= PS_NSLOTS) {
		rdps_warn("worker %u: message in sub-slot %u, there are %d: "
			  "refused",
			  w->rank, k, PS_NSLOTS);
		ret = -EINVAL;
		goto reply;
	}
	slot = (const unsigned char *)w->slots + (size_t)k * s->slot_bytes;
	memcpy(&m, slot, sizeof(m));
	bytes = rdps_be64toh(m.bytes_be);
	if (rdps_be32toh(m.kind_be) != kind) {
		rdps_warn("worker %u: sub-slot %u holds a message of kind %u "
			  "but the immediate says %u: refused",
			  w->rank, k, rdps_be32toh(m.kind_be), kind);
		ret = -EINVAL;
		goto reply;
	}
	if (bytes > s->slot_bytes - sizeof(m)) {
		rdps_warn("worker %u: message in sub-slot %u claims %" PRIu64
			  " payload bytes, a sub-slot holds %zu: refused",
			  w->rank, k, bytes, s->slot_bytes - sizeof(m));
		ret = -EMSGSIZE;
		goto reply;
	}
	/* Header and payload in one write, or (PS_F_SPLIT) the payload in
	 * an earlier write on this connection, placed before this one. */
	if (len < sizeof(m) + bytes &&
	    !((rdps_be32toh(m.flags_be) & PS_F_SPLIT) && len >= sizeof(m))) {
		rdps_warn("worker %u: message in sub-slot %u claims %" PRIu64
			  " payload bytes but only %u bytes came with it "
			  "(header and payload go in one write): refused",
			  w->rank, k, bytes, len);
		ret = -EINVAL;
		goto reply;
	}
	if (kind == PS_CREATE) {
		s->st.creates++;
		ret = handle_create(w, &m, slot + sizeof(m));
	} else {
		ret = handle_push(w, &m, slot + sizeof(m));
		if (ret == SRV_DEFERRED)
			return true;
		s->st.pushes++;
	}
reply:
	if (ret) {
		s->st.nacks++;
		worker_reply(w, PS_IMM(PS_NACK, (uint32_t)-ret));
	} else {
		worker_reply(w, PS_IMM(PS_CREDIT, k));
	}
	return false;
}

/* Handle one message of w; true if it has to wait for the next clock. */
static bool dispatch(struct srv_worker *w, uint32_t imm, uint32_t len)
{
	switch (PS_IMM_KIND(imm)) {
	case PS_END:
		handle_end(w, PS_IMM_ARG(imm));
		return false;
	case PS_BYE:
		worker_left(w);
		return false;
	case PS_PUSH:
	case PS_CREATE:
		return handle_msg(w, PS_IMM_KIND(imm), PS_IMM_ARG(imm), len);
	default:
		rdps_warn("worker %u: unknown message kind %u (immediate "
			  "0x%08x): ignored",
			  w->rank, PS_IMM_KIND(imm), imm);
		return false;
	}
}

static void hold_push(struct srv_worker *w, uint32_t imm, uint32_t len)
{
	if (w->hold_tail - w->hold_head >= SRV_HOLD) {
		worker_dead(w, "too many messages held back for the next "
			       "clock");
		return;
	}
	w->hold[w->hold_tail++ % SRV_HOLD] = (uint64_t)imm << 32 | len;
}

/* Applied moved on: handle held-back messages, in each worker's order. */
static void replay_held(struct rdps_server *s)
{
	while (s->replay) {
		s->replay = false;
		for (unsigned r = 0; r < s->cfg.workers; r++) {
			struct srv_worker *w = &s->w[r];

			while (w->state == SRV_W_LIVE &&
			       w->hold_head != w->hold_tail) {
				uint64_t e = w->hold[w->hold_head % SRV_HOLD];

				if (dispatch(w, (uint32_t)(e >> 32),
					     (uint32_t)e))
					break;
				w->hold_head++;
			}
		}
	}
}

static void handle_comp(struct rdps_server *s, const struct rdps_tp_comp *c)
{
	struct srv_worker *w;
	char why[96];

	if (c->opcode == RDPS_TP_OP_DISCONNECT) {
		w = c->ep ? c->ep->user : NULL;
		if (w && w->state == SRV_W_LIVE)
			worker_dead(w, "connection lost (the worker exited "
				       "or died)");
		return;
	}
	if (c->opcode != RDPS_TP_OP_RECV_IMM) {
		uint32_t kind = (uint32_t)(c->wr_id >> 32);
		uint32_t idx = (uint32_t)c->wr_id;

		if (kind == SRV_WR_REJECT && idx < SRV_REJECT_MAX) {
			if (s->rejects[idx].ep)
				ep_close_later(s, s->rejects[idx].ep);
			s->rejects[idx].ep = NULL;
			return;
		}
		if (idx >= s->cfg.workers)
			return;
		w = &s->w[idx];
		if (kind == SRV_WR_PULSE && w->state == SRV_W_LIVE &&
		    (!c->ep || c->ep == w->ep)) {
			if (c->status == RDPS_TP_WC_SUCCESS) {
				srv_pulse_seen(w, srv_pulses(s)[idx]);
			} else {
				snprintf(why, sizeof(why),
					 "pulse read failed: %s",
					 rdps_tp_status_str(c->status));
				worker_dead(w, why);
			}
			return;
		}
		if (kind != SRV_WR_REPLY)
			return;
		if (c->status != RDPS_TP_WC_SUCCESS && w->state == SRV_W_LIVE &&
		    (!c->ep || c->ep == w->ep)) {
			snprintf(why, sizeof(why), "reply failed: %s",
				 rdps_tp_status_str(c->status));
			worker_dead(w, why);
		}
		return;
	}
	if (!c->ep || !c->ep->user)
		return; /* closed or refused: nothing to serve */
	w = c->ep->user;
	if (w->state != SRV_W_LIVE)
		return;
	if (c->status != RDPS_TP_WC_SUCCESS) {
		snprintf(why, sizeof(why), "receive failed: %s",
			 rdps_tp_status_str(c->status));
		worker_dead(w, why);
		return;
	}
	/*
	 * BSP: a push of clock applied + 1 from a worker that has sent all
	 * its ENDs up to there is legitimate: the other workers' END(applied)
	 * are already in our transport (the worker saw the clock complete),
	 * but the completion queue is not FIFO across endpoints (shm polls
	 * its rings in turn). Hold it, and everything after it from that
	 * worker, until applied moves.
	 */
	if (w->hold_head != w->hold_tail || dispatch(w, c->imm, c->len))
		hold_push(w, c->imm, c->len);
	if (s->replay)
		replay_held(s);
}

/* Loop ------------------------------------------------------------------ */

int rdps_server_run(struct rdps_server *s, const volatile sig_atomic_t *stop)
{
	struct rdps_tp_comp comps[SRV_POLL_BATCH];
	int n, ret, wait_ms;

	while (!(stop && *stop)) {
		srv_pulse(s);
		if (s->live == 0 &&
		    s->live + s->dead + s->left < s->cfg.workers) {
			/* Nothing to serve: sleep in accept itself. */
			ret = accept_all(s, SRV_WAIT_MS_JOINING * 10);
			wait_ms = 0;
		} else if (s->live + s->dead + s->left < s->cfg.workers ||
			   rdps_now_ns() - s->last_accept_ns >=
				   SRV_ACCEPT_EVERY_NS) {
			ret = accept_all(s, 0);
			wait_ms = s->live + s->dead + s->left < s->cfg.workers
					  ? SRV_WAIT_MS_JOINING
					  : SRV_WAIT_MS_FULL;
		} else {
			ret = 0;
			wait_ms = SRV_WAIT_MS_FULL;
		}
		if (ret) {
			return rdps_set_error(ret,
					      "shard %u: accepting on %s "
					      "failed: %s",
					      s->cfg.shard, s->url,
					      strerror(-ret));
		}
		for (unsigned r = 0; s->backlog && r < s->cfg.workers; r++)
			if (s->w[r].ring_head != s->w[r].ring_tail)
				worker_flush(&s->w[r]);
		/* No completion in hand here: close what died meanwhile. */
		ep_close_doomed(s);
		n = rdps_tp_wait(s->tp, comps, SRV_POLL_BATCH, wait_ms);
		if (n < 0) {
			return rdps_set_error(n,
					      "shard %u: waiting for "
					      "completions failed: %s",
					      s->cfg.shard, strerror(-n));
		}
		while (n > 0) {
			for (int i = 0; i < n; i++)
				handle_comp(s, &comps[i]);
			ep_close_doomed(s);
			/* Drain what came meanwhile before waiting again. */
			n = rdps_tp_poll(s->tp, comps, SRV_POLL_BATCH);
			if (n < 0)
				return rdps_set_error(n,
						      "shard %u: polling "
						      "failed: %s",
						      s->cfg.shard,
						      strerror(-n));
			if (stop && *stop)
				break;
		}
	}
	return 0;
}

/* Create and destroy ----------------------------------------------------- */

static int check_cfg(const struct rdps_server_cfg *cfg)
{
	if (!cfg->url || !*cfg->url)
		return rdps_set_error(-EINVAL,
				      "no listen url: give e.g. "
				      "shm://job-s0 or tcp://0.0.0.0:7000");
	if (cfg->nshards < 1 || cfg->nshards > 65535)
		return rdps_set_error(-EINVAL,
				      "shard count %u is out of range: use "
				      "1..65535",
				      cfg->nshards);
	if (cfg->shard >= cfg->nshards)
		return rdps_set_error(-EINVAL,
				      "shard index %u is out of range: with %u "
				      "shards use 0..%u",
				      cfg->shard, cfg->nshards,
				      cfg->nshards - 1);
	if (cfg->workers < 1 || cfg->workers > RDPS_SERVER_WORKERS_MAX)
		return rdps_set_error(-EINVAL,
				      "worker count %u is out of range: use "
				      "1..%u",
				      cfg->workers, RDPS_SERVER_WORKERS_MAX);
	if ((unsigned)cfg->model >= RDPS_MODEL_COUNT)
		return rdps_set_error(
			-EINVAL, "unknown model %d: use bsp, ssp, asp or absp",
			(int)cfg->model);
	if (rdps_model_in_order(cfg->model) && cfg->slack)
		return rdps_set_error(-EINVAL,
				      "%s has no slack (got %u): use the ssp "
				      "model for a slack",
				      rdps_model_name(cfg->model), cfg->slack);
	if (cfg->ckpt_dir && !rdps_model_in_order(cfg->model))
		return rdps_set_error(-EINVAL,
				      "checkpoints need model bsp or absp: "
				      "under %s a shard has no clock boundary "
				      "to save at",
				      rdps_model_name(cfg->model));
	if (cfg->resume && !cfg->ckpt_dir)
		return rdps_set_error(-EINVAL,
				      "resume needs a checkpoint directory");
	if (ps_clock_k(cfg->slack) > PS_CLOCK_K_MAX)
		return rdps_set_error(-EINVAL,
				      "slack %u is too large: at most %d",
				      cfg->slack, PS_CLOCK_K_MAX - 2);
	if (cfg->slot_bytes &&
	    (cfg->slot_bytes < RDPS_SERVER_SLOT_MIN ||
	     cfg->slot_bytes > RDPS_SERVER_SLOT_MAX || cfg->slot_bytes % 64))
		return rdps_set_error(-EINVAL,
				      "slot size %zu is not valid: use a "
				      "multiple of 64 from %u to %u bytes",
				      cfg->slot_bytes, RDPS_SERVER_SLOT_MIN,
				      RDPS_SERVER_SLOT_MAX);
	if (cfg->heartbeat_ms &&
	    (cfg->heartbeat_ms < RDPS_SERVER_HEARTBEAT_MIN ||
	     cfg->heartbeat_ms > RDPS_SERVER_HEARTBEAT_MAX))
		return rdps_set_error(-EINVAL,
				      "heartbeat %u ms is out of range: use "
				      "%u..%u ms, or 0 for no liveness checks",
				      cfg->heartbeat_ms,
				      RDPS_SERVER_HEARTBEAT_MIN,
				      RDPS_SERVER_HEARTBEAT_MAX);
	return 0;
}

int rdps_server_create(const struct rdps_server_cfg *cfg,
		       struct rdps_server **server_out)
{
	struct rdps_tp_cfg tcfg;
	struct rdps_server *s;
	struct ps_lhello lh;
	struct ps_dir_hdr *h;
	int ret;

	ret = check_cfg(cfg);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return rdps_set_error(-ENOMEM, "out of memory");
	s->cfg = *cfg;
	s->cfg.url = NULL; /* the caller's string; we keep s->url */
	s->slot_bytes =
		cfg->slot_bytes ? cfg->slot_bytes : PS_SLOT_BYTES_DEFAULT;
	s->w = calloc(cfg->workers, sizeof(*s->w));
	if (!s->w) {
		ret = rdps_set_error(-ENOMEM, "out of memory");
		goto err_free;
	}
	for (unsigned r = 0; r < cfg->workers; r++) {
		s->w[r].s = s;
		s->w[r].rank = r;
	}

	rdps_tp_cfg_default(&tcfg);
	tcfg.poll_mode = cfg->poll_mode;
	tcfg.token = cfg->token;
	ret = rdps_tp_open(cfg->url, &tcfg, &s->tp);
	if (ret)
		goto err_free;

	s->dir_len = round_up(sizeof(struct ps_dir), 4096);
	ret = region_new(s, s->dir_len, RDPS_TP_ACCESS_REMOTE_READ,
			 (void **)&s->dir, &s->dir_mr);
	if (ret) {
		rdps_set_error(ret, "cannot register the directory: %s",
			       strerror(-ret));
		goto err_close_tp;
	}
	h = &s->dir->hdr;
	h->magic_be = rdps_htobe64(PS_DIR_MAGIC);
	h->version_be = rdps_htobe32(PS_PROTO_VERSION);
	h->shard_be = rdps_htobe16_(cfg->shard);
	h->nshards_be = rdps_htobe16_(cfg->nshards);
	h->workers_be = rdps_htobe32(cfg->workers);
	h->model_be = rdps_htobe32((uint32_t)cfg->model);
	h->slack_be = rdps_htobe32(cfg->slack);
	h->clock_k_be = rdps_htobe32(ps_clock_k(cfg->slack));
	h->heartbeat_ms_be = rdps_htobe32(cfg->heartbeat_ms);
	publish_applied(s, 0);
	/* A thread, not the loop: a long checkpoint write is no hang. */
	ret = rdps_pulse_start(&s->heartbeat, &h->heartbeat, PS_PULSE_MS);
	if (ret)
		goto err_free_regions;

	if (cfg->shard == 0) {
		s->clk_len = round_up(ps_clock_region_len(cfg->workers), 4096);
		ret = region_new(s, s->clk_len,
				 RDPS_TP_ACCESS_REMOTE_ATOMIC |
					 RDPS_TP_ACCESS_REMOTE_READ,
				 (void **)&s->clk, &s->clk_mr);
		if (ret) {
			rdps_set_error(ret,
				       "cannot register the clock table: %s",
				       strerror(-ret));
			goto err_free_regions;
		}
		rdps_tp_rkey_pack(s->clk_mr, &s->clk_wire);
	}
	if (cfg->resume) {
		ret = srv_resume(s);
		if (ret)
			goto err_free_regions;
	}

	s->wel_len = round_up((cfg->workers + SRV_REJECT_MAX) *
					      sizeof(struct ps_welcome) +
				      8ull * cfg->workers,
			      4096);
	ret = region_new(s, s->wel_len, RDPS_TP_ACCESS_LOCAL, (void **)&s->wel,
			 &s->wel_mr);
	if (ret) {
		rdps_set_error(ret, "cannot register welcome buffers: %s",
			       strerror(-ret));
		goto err_free_regions;
	}

	memset(&lh, 0, sizeof(lh));
	lh.magic_be = rdps_htobe32(PS_MAGIC_LISTENER);
	lh.shard_be = rdps_htobe16_(cfg->shard);
	lh.nshards_be = rdps_htobe16_(cfg->nshards);
	rdps_tp_rkey_pack(s->dir_mr, &lh.dir);
	ret = rdps_tp_listen(s->tp, cfg->url, &lh, sizeof(lh), &s->lst);
	if (ret)
		goto err_free_regions;
	if (rdps_tp_listener_url(s->lst, s->url, sizeof(s->url)))
		snprintf(s->url, sizeof(s->url), "%s", cfg->url);
	rdps_info("shard %u of %u listening on %s: %u workers, %s slack %u, "
		  "%zu-byte sub-slots",
		  cfg->shard, cfg->nshards, s->url, cfg->workers,
		  rdps_model_name(cfg->model), cfg->slack, s->slot_bytes);
	*server_out = s;
	return 0;

err_free_regions:
	rdps_pulse_stop(&s->heartbeat);
	for (unsigned i = 0; i < PS_MAX_TABLES; i++)
		if (s->tables[i].used)
			table_free(s, &s->tables[i]);
	region_free(s, (void **)&s->wel, s->wel_len, &s->wel_mr);
	region_free(s, (void **)&s->clk, s->clk_len, &s->clk_mr);
	region_free(s, (void **)&s->dir, s->dir_len, &s->dir_mr);
err_close_tp:
	rdps_tp_close(s->tp);
err_free:
	free(s->w);
	free(s);
	return ret;
}

const char *rdps_server_url(const struct rdps_server *s)
{
	return s->url;
}

void rdps_server_stats(const struct rdps_server *s,
		       struct rdps_server_stats *out)
{
	*out = s->st;
}

void rdps_server_destroy(struct rdps_server *s)
{
	int ret;

	if (!s)
		return;
	if (s->lst)
		rdps_tp_listener_close(s->lst);
	for (unsigned i = 0; i < SRV_REJECT_MAX; i++)
		if (s->rejects[i].ep)
			rdps_tp_ep_close(s->rejects[i].ep);
	for (unsigned r = 0; r < s->cfg.workers; r++)
		worker_release(&s->w[r], true);
	ep_close_doomed(s);
	free(s->doomed);
	rdps_pulse_stop(&s->heartbeat);
	for (unsigned i = 0; i < PS_MAX_TABLES; i++)
		if (s->tables[i].used)
			table_free(s, &s->tables[i]);
	region_free(s, (void **)&s->wel, s->wel_len, &s->wel_mr);
	region_free(s, (void **)&s->clk, s->clk_len, &s->clk_mr);
	region_free(s, (void **)&s->dir, s->dir_len, &s->dir_mr);
	ret = rdps_tp_close(s->tp);
	if (ret)
		rdps_warn("shard %u: transport not closed: %s", s->cfg.shard,
			  strerror(-ret));
	free(s->w);
	free(s);
}
