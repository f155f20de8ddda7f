/* SPDX-License-Identifier: MIT */
/*
 * emb_worker.c - the test worker of whole jobs with embedding tables,
 * started by rdps-launch like tests/ps_worker.c (rows "emb ..." of
 * tests/ps_matrix.cmake). Prints what went wrong on stderr, prefixed with
 * its rank, and exits 1; rank 0 prints "OK ..." when the job's check
 * passed.
 *
 * Modes (argv[1]):
 *   once N SEED     every worker pushes N calls of 64 power-law keys
 *                   (duplicates within a call included) to a float64 SUM
 *                   table; rank 0 regenerates every worker's keys and
 *                   checks each row exactly (applied once per push, the
 *                   duplicates summed), that never-pushed keys read as
 *                   their initial value (misses counted), that a
 *                   pull costs 2 round trips (1 when no key is present),
 *                   that the two-sided baseline (wrk_emb_lookup)
 *                   returns the same rows, and that pulls leave every
 *                   shard's count of handled messages (ps_dir_stats)
 *                   where it was while the lookup moves it.
 *   torn N          2 workers, asp: rank 1 pushes +1 to every value of 4
 *                   hot rows (dim 64) N times; rank 0 pulls them while
 *                   that runs, until it has seen N, and fails on any row
 *                   whose values differ (a torn row).
 *   full            1 shard: a table of capacity 8 refuses a push that
 *                   would overflow it, all or nothing, with an error
 *                   naming the table and its capacity; bad opens refused.
 *   overflow        bsp, 1 worker, 1 shard: 8 keys fill both candidate
 *                   buckets of a 9th (capacity 16); its push is accepted
 *                   (rows remain), its update is lost at clock end (the
 *                   shard logs it), the others' applied, and every later
 *                   push to the table is refused with -ENOSPC naming the
 *                   table and its capacity (ps_proto.h documents this).
 *   cache           1 worker, 1 shard, any model: the location cache.
 *                   A pull of a remembered key is 1 round trip (the
 *                   first 2) and sees every clock's update; under SSP
 *                   and ASP, places a pull racing a refused push would
 *                   have remembered (rows whose inserts were undone, then
 *                   reused or the key back in another row) read as the
 *                   key's true value, never the row's new key's, each
 *                   counted stale; off by cfg.cache and RDPS_EMB_CACHE.
 *   bsp ITERS SEED OUT
 *                   Adagrad, normal initial values, uneven delays from
 *                   SEED; rank 0 writes every shard's raw index and rows
 *                   to OUT (tests/ps_emb_bsp.sh compares runs).
 *
 * Delays (usleep) simulate uneven work; they never order anything.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emb_codec.h"
#include "job_worker.h"
#include "rdps/rdps.h"
#include "worker/worker.h"

static struct rdps_config cfg;

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "emb_worker %d: ", cfg.rank);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(NULL);
	_exit(1);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return ps_emb_mix64(*s);
}

/* A power-law id: log-uniform over 1 .. 2^span, spread over 64 bits
 * (and now and then the edge keys 0 and ~0). */
static uint64_t plaw_key(uint64_t *s, unsigned span)
{
	uint64_t r = rng_next(s);
	double u = (double)(r >> 11) * 0x1p-53;
	uint64_t id;

	if ((r & 1023) == 0)
		return (r >> 10) & 1 ? UINT64_MAX : 0;
	id = (uint64_t)exp2(u * span);
	return id * 0x9e3779b97f4a7c15ull + 1;
}

/* Messages handled by every shard's loop thread so far (ps_dir_stats). */
static uint64_t shards_handled(struct rdps_ctx *ctx)
{
	struct wrk_shard_stats st;
	uint64_t n = 0;

	for (unsigned s = 0; s < ctx->nshards; s++) {
		CHECK(wrk_shard_stats(ctx, s, &st));
		n += st.handled;
	}
	return n;
}

/* --- once ---------------------------------------------------------------- */

#define ONCE_KEYS 64
#define ONCE_DIM 3
#define ONCE_SPAN 12

/* Worker w's call it: its keys and gradient rows (exact in float64). */
static void once_gen(uint64_t seed, unsigned w, uint64_t it, uint64_t *keys,
		     double *g)
{
	uint64_t s = seed * 1000003 + w * 7919 + it * 104729;

	for (unsigned i = 0; i < ONCE_KEYS; i++) {
		keys[i] = plaw_key(&s, ONCE_SPAN);
		g[i * ONCE_DIM] = 1.0;
		g[i * ONCE_DIM + 1] = w + 1.0;
		g[i * ONCE_DIM + 2] = (double)(keys[i] & 0xff);
	}
}

struct once_want {
	uint64_t key;
	double v[ONCE_DIM];
};

static int once_cmp(const void *a_, const void *b_)
{
	const struct once_want *a = a_, *b = b_;

	return a->key < b->key ? -1 : a->key > b->key;
}

static int mode_once(struct rdps_ctx *ctx, int argc, char **argv)
{
	struct rdps_emb_cfg ec;
	struct rdps_emb *e;
	uint64_t n, seed, keys[ONCE_KEYS];
	double g[ONCE_KEYS * ONCE_DIM];
	struct once_want *want;
	size_t nw = 0, m = 0;
	struct rdps_stats st0, st1;
	uint64_t h0, h1, rt;
	unsigned gmax;

	if (argc != 4)
		fail("usage: once N SEED");
	n = arg_u64(argv[2], "N");
	seed = arg_u64(argv[3], "SEED");
	rdps_emb_cfg_default(&ec);
	ec.dim = ONCE_DIM;
	ec.dtype = RDPS_DTYPE_F64;
	ec.rule = RDPS_RULE_SUM;
	ec.capacity = 8192;
	CHECK(rdps_emb_open(ctx, "once", &ec, &e));
	for (uint64_t it = 0; it < n; it++) {
		once_gen(seed, (unsigned)cfg.rank, it, keys, g);
		CHECK(rdps_emb_push(e, keys, ONCE_KEYS, g));
		if (cfg.model != RDPS_MODEL_ASP && it % 4 == 3)
			CHECK(rdps_clock(ctx));
	}
	CHECK(rdps_clock(ctx));
	CHECK(rdps_barrier(ctx));
	if (cfg.rank != 0) {
		CHECK(rdps_barrier(ctx));
		return 0;
	}
	want = xcalloc(n * ONCE_KEYS * (size_t)cfg.workers, sizeof(*want));
	for (int w = 0; w < cfg.workers; w++)
		for (uint64_t it = 0; it < n; it++) {
			once_gen(seed, (unsigned)w, it, keys, g);
			for (unsigned i = 0; i < ONCE_KEYS; i++) {
				want[nw].key = keys[i];
				memcpy(want[nw].v, g + i * ONCE_DIM,
				       sizeof(want[nw].v));
				nw++;
			}
		}
	qsort(want, nw, sizeof(*want), once_cmp);
	for (size_t i = 0; i < nw; i++) {
		if (m && want[m - 1].key == want[i].key) {
			for (int j = 0; j < ONCE_DIM; j++)
				want[m - 1].v[j] += want[i].v[j];
			continue;
		}
		want[m++] = want[i];
	}
	{
		uint64_t *k = xcalloc(m, 8);
		double *got = xcalloc(m * ONCE_DIM, sizeof(double));

		for (size_t i = 0; i < m; i++)
			k[i] = want[i].key;
		rdps_ctx_stats(ctx, &st0);
		CHECK(rdps_emb_pull(e, k, m, got));
		rdps_ctx_stats(ctx, &st1);
		for (size_t i = 0; i < m; i++)
			for (int j = 0; j < ONCE_DIM; j++)
				if (got[i * ONCE_DIM + j] != want[i].v[j])
					fail("key %" PRIu64 " value %d: %g, "
					     "want %g",
					     k[i], j, got[i * ONCE_DIM + j],
					     want[i].v[j]);
		if (st1.emb_misses != st0.emb_misses)
			fail("%" PRIu64 " pushed keys read as absent",
			     st1.emb_misses - st0.emb_misses);
		/* The two-sided baseline returns the same rows, and costs
		 * each shard's CPU messages (at least one per shard: the
		 * counter below is alive). */
		h0 = shards_handled(ctx);
		{
			double *two = xcalloc(m * ONCE_DIM, sizeof(double));

			CHECK(wrk_emb_lookup(e, k, m, two));
			if (memcmp(two, got, m * ONCE_DIM * sizeof(double)))
				fail("the two-sided lookup differs from the "
				     "pull");
			free(two);
		}
		h1 = shards_handled(ctx);
		if (h1 - h0 < ctx->nshards)
			fail("a two-sided lookup of %zu keys: the shards "
			     "counted %" PRIu64 " messages, want >= %u",
			     m, h1 - h0, ctx->nshards);
		/* Round trips, counted on a pull of data known fresh: the
		 * first pull may have read a header before the shards
		 * published the clock and gone round again (21 rounds once
		 * under load), which is waiting, not the lookup's cost. */
		rdps_ctx_stats(ctx, &st0);
		CHECK(rdps_emb_pull(e, k, m, got));
		rdps_ctx_stats(ctx, &st1);
		/* Every message of the job is handled by now (pushes are
		 * credited after, clocks closed before the first pull saw
		 * them): a pull is no work for any shard's loop thread. */
		h0 = shards_handled(ctx);
		if (h0 != h1)
			fail("the shards handled %" PRIu64 " messages during "
			     "a pull-only phase",
			     h0 - h1);
		/* 2: buckets, then rows; 1 when the location cache held
		 * every key's row (it is direct-mapped: some collide). */
		rt = st1.emb_cache_hits - st0.emb_cache_hits == m ? 1 : 2;
		if (st1.emb_torn_retries == st0.emb_torn_retries &&
		    st1.emb_round_trips - st0.emb_round_trips != rt)
			fail("a pull of %zu keys (%" PRIu64 " cached) took "
			     "%" PRIu64 " round trips, want %" PRIu64,
			     m, st1.emb_cache_hits - st0.emb_cache_hits,
			     st1.emb_round_trips - st0.emb_round_trips, rt);
		if (st1.emb_cache_stale != st0.emb_cache_stale)
			fail("%" PRIu64 " cached rows stale with no push "
			     "refused",
			     st1.emb_cache_stale - st0.emb_cache_stale);
		/* Each round is one gather READ per shard of up to half
		 * the send queue's ranges (plus a header READ under BSP),
		 * not a READ per bucket and per row (3 per key). */
		gmax = ctx->tp->cfg.sq_depth / 2 < RDPS_TP_GATHER_MAX
			       ? ctx->tp->cfg.sq_depth / 2
			       : RDPS_TP_GATHER_MAX;
		if (st1.emb_torn_retries == st0.emb_torn_retries &&
		    st1.remote_ops - st0.remote_ops >
			    2 * (2 * ctx->nshards + 2 * m / gmax + 1))
			fail("a pull of %zu keys on %u shards posted %" PRIu64
			     " operations: not a gather per shard and round",
			     m, ctx->nshards, st1.remote_ops - st0.remote_ops);
		/* Keys never pushed: 0 (init zero), one round trip. */
		for (size_t i = 0; i < m && i < 100; i++)
			k[i] = 0x5eed000000000000ull + i * 2 + 1;
		rdps_ctx_stats(ctx, &st0);
		CHECK(rdps_emb_pull(e, k, m < 100 ? m : 100, got));
		rdps_ctx_stats(ctx, &st1);
		for (size_t i = 0; i < (m < 100 ? m : 100) * ONCE_DIM; i++)
			if (got[i] != 0.0)
				fail("a never-pushed key reads %g", got[i]);
		if (st1.emb_misses - st0.emb_misses != (m < 100 ? m : 100) ||
		    st1.emb_round_trips - st0.emb_round_trips != 1)
			fail("absent keys: %" PRIu64 " misses, %" PRIu64
			     " round trips",
			     st1.emb_misses - st0.emb_misses,
			     st1.emb_round_trips - st0.emb_round_trips);
		if (shards_handled(ctx) != h0)
			fail("the shards handled %" PRIu64 " messages during "
			     "a pull of absent keys",
			     shards_handled(ctx) - h0);
		printf("OK once: %zu distinct keys of %zu pushed rows exact, "
		       "%" PRIu64 " rows pushed here\n",
		       m, nw, st1.emb_rows_pushed);
		free(k);
		free(got);
	}
	free(want);
	CHECK(rdps_barrier(ctx));
	return 0;
}

/* --- torn ---------------------------------------------------------------- */

#define TORN_DIM 64
#define TORN_HOT 4

static int mode_torn(struct rdps_ctx *ctx, int argc, char **argv)
{
	static const uint64_t hot[TORN_HOT] = {11, 22, 33, 44};
	float g[TORN_HOT * TORN_DIM], got[TORN_HOT * TORN_DIM];
	struct rdps_emb_cfg ec;
	struct rdps_emb *e;
	struct rdps_stats st;
	uint64_t n, pulls = 0;
	float seen = 0;

	if (argc != 3)
		fail("usage: torn N");
	if (cfg.workers != 2 || cfg.model != RDPS_MODEL_ASP)
		fail("torn mode needs 2 workers and the asp model");
	n = arg_u64(argv[2], "N");
	rdps_emb_cfg_default(&ec);
	ec.dim = TORN_DIM;
	ec.rule = RDPS_RULE_SUM;
	ec.capacity = 64;
	CHECK(rdps_emb_open(ctx, "torn", &ec, &e));
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 1) {
		for (size_t i = 0; i < TORN_HOT * TORN_DIM; i++)
			g[i] = 1.0f;
		for (uint64_t it = 0; it < n; it++)
			CHECK(rdps_emb_push(e, hot, TORN_HOT, g));
		CHECK(rdps_barrier(ctx));
		return 0;
	}
	while (seen < (float)n) {
		CHECK(rdps_emb_pull(e, hot, TORN_HOT, got));
		pulls++;
		for (unsigned r = 0; r < TORN_HOT; r++) {
			const float *row = got + r * TORN_DIM;

			for (unsigned j = 1; j < TORN_DIM; j++)
				if (row[j] != row[0])
					fail("pull %" PRIu64
					     ": torn row of key "
					     "%" PRIu64
					     ": value 0 is %g, value "
					     "%u is %g",
					     pulls, hot[r], row[0], j, row[j]);
			if (row[0] > (float)n || row[0] < 0)
				fail("key %" PRIu64 " reads %g of %" PRIu64,
				     hot[r], row[0], n);
		}
		seen = got[0];
	}
	rdps_ctx_stats(ctx, &st);
	CHECK(rdps_barrier(ctx));
	printf("OK torn: %" PRIu64 " pulls raced %" PRIu64 " pushes, no torn "
	       "row returned (%" PRIu64 " torn reads read again)\n",
	       pulls, n, st.emb_torn_retries);
	return 0;
}

/* --- full ---------------------------------------------------------------- */

static int mode_full(struct rdps_ctx *ctx, int argc, char **argv)
{
	struct rdps_emb_cfg ec, bad;
	struct rdps_emb *e, *e2;
	uint64_t keys[20];
	float g[20 * 4], got[20 * 4];
	int ret;

	(void)argv;
	if (argc != 2 || cfg.workers != 1)
		fail("usage: full (one worker, one shard)");
	rdps_emb_cfg_default(&ec);
	ec.dim = 4;
	ec.rule = RDPS_RULE_SUM;
	ec.capacity = 8;
	CHECK(rdps_emb_open(ctx, "full8", &ec, &e));
	bad = ec;
	bad.dim = 5;
	ret = rdps_emb_open(ctx, "full8", &bad, &e2);
	if (ret != -EINVAL || !strstr(rdps_errmsg(), "full8"))
		fail("reopen with another dim: %d (%s)", ret, rdps_errmsg());
	bad.dim = 0;
	if (rdps_emb_open(ctx, "zero", &bad, &e2) != -EINVAL ||
	    !strstr(rdps_errmsg(), "dim 0"))
		fail("dim 0 accepted or not named: %s", rdps_errmsg());
	for (unsigned i = 0; i < 20; i++)
		keys[i] = 1000 + i;
	for (unsigned i = 0; i < 20 * 4; i++)
		g[i] = 1.0f;
	/* 20 new keys into 8 rows: refused whole. */
	ret = rdps_emb_push(e, keys, 20, g);
	if (ret != -ENOSPC || !strstr(rdps_errmsg(), "'full8'") ||
	    !strstr(rdps_errmsg(), "8 rows per shard"))
		fail("overflowing push: %d (%s)", ret, rdps_errmsg());
	fprintf(stderr, "emb_worker 0: expected error: %s\n", rdps_errmsg());
	CHECK(rdps_clock(ctx));
	CHECK(rdps_emb_pull(e, keys, 20, got));
	for (unsigned i = 0; i < 20 * 4; i++)
		if (got[i] != 0.0f)
			fail("a refused push was applied in part");
	/* 8 fit; a 9th new key does not; an old one still does. */
	CHECK(rdps_emb_push(e, keys, 8, g));
	CHECK(rdps_clock(ctx));
	ret = rdps_emb_push(e, keys + 8, 1, g);
	if (ret != -ENOSPC)
		fail("9th key into 8 rows: %d", ret);
	CHECK(rdps_emb_push(e, keys, 1, g));
	CHECK(rdps_clock(ctx));
	CHECK(rdps_emb_pull(e, keys, 9, got));
	if (got[0] != 2.0f || got[4] != 1.0f || got[7 * 4] != 1.0f ||
	    got[8 * 4] != 0.0f)
		fail("after the refusals: %g %g %g %g", got[0], got[4], got[28],
		     got[32]);
	printf("OK full: overflow refused whole, naming table and capacity\n");
	return 0;
}

/* --- overflow ------------------------------------------------------------ */

#define OVF_CAP 16 /* 16 buckets */

/* The n-th key from start whose two candidate buckets are 0 and 1. */
static uint64_t ovf_key(uint64_t *next)
{
	for (;; (*next)++) {
		uint64_t b0 = ps_emb_bucket_of(*next, 0, OVF_CAP);
		uint64_t b1 = ps_emb_bucket_of(*next, 1, OVF_CAP);

		if (b0 <= 1 && b1 <= 1)
			return (*next)++;
	}
}

static int mode_overflow(struct rdps_ctx *ctx, int argc, char **argv)
{
	uint64_t keys[PS_EMB_SLOTS * 2 + 2], next = 1, other;
	float g[(PS_EMB_SLOTS * 2 + 2) * 2], got[(PS_EMB_SLOTS * 2 + 2) * 2];
	const unsigned nfill = PS_EMB_SLOTS * 2;
	struct rdps_emb_cfg ec;
	struct rdps_emb *e;
	int ret;

	(void)argv;
	if (argc != 2 || cfg.workers != 1 || cfg.model != RDPS_MODEL_BSP ||
	    ctx->nshards != 1)
		fail("usage: overflow (bsp, one worker, one shard)");
	rdps_emb_cfg_default(&ec);
	ec.dim = 2;
	ec.rule = RDPS_RULE_SUM;
	ec.capacity = OVF_CAP;
	CHECK(rdps_emb_open(ctx, "ovf", &ec, &e));
	/* nfill keys fill buckets 0 and 1; one more has no slot left;
	 * `other` lands elsewhere. */
	for (unsigned i = 0; i <= nfill; i++)
		keys[i] = ovf_key(&next);
	for (other = next;; other++) {
		uint64_t b0 = ps_emb_bucket_of(other, 0, OVF_CAP);
		uint64_t b1 = ps_emb_bucket_of(other, 1, OVF_CAP);

		if (b0 > 1 && b1 > 1)
			break;
	}
	keys[nfill + 1] = other;
	for (unsigned i = 0; i < (nfill + 2) * 2; i++)
		g[i] = 1.0f;
	CHECK(rdps_emb_push(e, keys, nfill, g));
	CHECK(rdps_clock(ctx));
	/* Under BSP a push only reserves rows (16 - 8 left): accepted. The
	 * insert fails at clock end, where no worker can be told. */
	ret = rdps_emb_push(e, keys + nfill, 2, g);
	if (ret)
		fail("the push of the key with both buckets full was refused "
		     "at push time: %d (%s)",
		     ret, rdps_errmsg());
	CHECK(rdps_clock(ctx));
	CHECK(rdps_emb_pull(e, keys, nfill + 2, got));
	for (unsigned i = 0; i < nfill + 2; i++) {
		float want = i == nfill ? 0.0f : 1.0f;

		if (got[2 * i] != want || got[2 * i + 1] != want)
			fail("key %u of %u (%" PRIu64 ") reads %g, want %g "
			     "(the overflowing key's update is lost, the "
			     "others applied)",
			     i, nfill + 2, keys[i], got[2 * i], want);
	}
	/* From then on every push to the table is refused, even of a key
	 * it holds, naming the table and its capacity. */
	ret = rdps_emb_push(e, keys, 1, g);
	if (ret != -ENOSPC || !strstr(rdps_errmsg(), "'ovf'") ||
	    !strstr(rdps_errmsg(), "16 rows per shard"))
		fail("a push after the overflow: %d (%s), want -ENOSPC naming "
		     "'ovf' and 16 rows per shard",
		     ret, rdps_errmsg());
	CHECK(rdps_clock(ctx));
	CHECK(rdps_emb_pull(e, keys, 1, got));
	if (got[0] != 1.0f)
		fail("the refused push was applied: %g", got[0]);
	printf("OK overflow: key %" PRIu64 " found both buckets full, its "
	       "update lost, later pushes refused\n",
	       keys[nfill]);
	return 0;
}

/* --- bsp ----------------------------------------------------------------- */

#define BSP_DIM 8
#define BSP_KEYS 32

static void bsp_dump(struct rdps_emb *e, const char *out)
{
	size_t cap = (size_t)1 << 24, len;
	char *buf = xcalloc(cap, 1);
	FILE *f = fopen(out, "wb");

	if (!f)
		fail("cannot write %s", out);
	for (unsigned s = 0; s < e->ctx->nshards; s++) {
		for (int rows = 0; rows < 2; rows++) {
			CHECK(wrk_emb_read_raw(e, s, rows, buf, cap, &len));
			if (fwrite(buf, 1, len, f) != len)
				fail("short write to %s", out);
		}
	}
	if (fclose(f))
		fail("cannot write %s", out);
	free(buf);
}

static int mode_bsp(struct rdps_ctx *ctx, int argc, char **argv)
{
	float got[BSP_KEYS * BSP_DIM], g[BSP_KEYS * BSP_DIM];
	uint64_t keys[BSP_KEYS], iters, seed, ks, ds;
	struct rdps_emb_cfg ec;
	struct rdps_emb *e;

	if (argc != 5)
		fail("usage: bsp ITERS SEED OUT");
	if (cfg.model != RDPS_MODEL_BSP)
		fail("bsp mode needs the bsp model");
	iters = arg_u64(argv[2], "ITERS");
	seed = arg_u64(argv[3], "SEED");
	ds = seed * 31 + (uint64_t)cfg.rank;
	rdps_emb_cfg_default(&ec);
	ec.dim = BSP_DIM;
	ec.rule = RDPS_RULE_ADAGRAD;
	ec.lr = 0.05;
	ec.init = RDPS_EMB_INIT_NORMAL;
	ec.init_scale = 0.1;
	ec.seed = 42;
	ec.capacity = 1024;
	CHECK(rdps_emb_open(ctx, "bspemb", &ec, &e));
	for (uint64_t it = rdps_clock_now(ctx); it < iters; it++) {
		ks = 77 + (uint64_t)cfg.rank * 1009 + it * 31;
		for (unsigned i = 0; i < BSP_KEYS; i++)
			keys[i] = plaw_key(&ks, 9);
		usleep((useconds_t)(rng_next(&ds) % 2000));
		CHECK(rdps_emb_pull(e, keys, BSP_KEYS, got));
		for (unsigned i = 0; i < BSP_KEYS * BSP_DIM; i++)
			g[i] = 0.5f * got[i] + 0.01f * (float)(i % 7);
		CHECK(rdps_emb_push(e, keys, BSP_KEYS, g));
		CHECK(rdps_clock(ctx));
	}
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0)
		bsp_dump(e, argv[4]);
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0)
		printf("OK bsp: %" PRIu64 " clocks\n", iters);
	return 0;
}

/* --- cache --------------------------------------------------------------- */

#define CACHE_DIM 4

struct cache_cost {
	uint64_t rtt, hits, stale;
};

/* Pull keys[0..n) once all this worker pushed is applied (so the round
 * trips are the pull's, not a wait for the clock); what it cost. */
static void cache_pull(struct rdps_emb *e, const uint64_t *keys, size_t n,
		       double *got, struct cache_cost *c)
{
	struct rdps_ctx *ctx = e->ctx;
	struct rdps_stats a, b;

	CHECK(wrk_emb_wait_applied(e, 0, wrk_deadline(ctx), "a test"));
	rdps_ctx_stats(ctx, &a);
	CHECK(rdps_emb_pull(e, keys, n, got));
	rdps_ctx_stats(ctx, &b);
	if (b.emb_torn_retries != a.emb_torn_retries)
		fail("a torn read with nothing rewriting the rows");
	c->rtt = b.emb_round_trips - a.emb_round_trips;
	c->hits = b.emb_cache_hits - a.emb_cache_hits;
	c->stale = b.emb_cache_stale - a.emb_cache_stale;
}

/* got (one row) must be key's initial row after pushes of 1 each,
 * exactly (added one at a time, as the shard does). */
static void cache_want(const char *what, const struct rdps_emb_cfg *ec,
		       uint64_t key, unsigned pushes, const double *got)
{
	double w[CACHE_DIM];

	ps_emb_init_row(PS_EMB_INIT_UNIFORM, ec->init_scale, ec->seed, key,
			CACHE_DIM, PS_DTYPE_F64, w);
	for (int j = 0; j < CACHE_DIM; j++) {
		for (unsigned i = 0; i < pushes; i++)
			w[j] += 1.0;
		if (got[j] != w[j])
			fail("%s: key %" PRIu64 " value %d is %.17g, want "
			     "%.17g (initial after %u pushes of 1)",
			     what, key, j, got[j], w[j], pushes);
	}
}

static void cache_cost_is(const char *what, const struct cache_cost *c,
			  uint64_t rtt, uint64_t hits, uint64_t stale)
{
	if (c->rtt != rtt || c->hits != hits || c->stale != stale)
		fail("%s: %" PRIu64 " round trips, %" PRIu64 " cache hits, "
		     "%" PRIu64 " stale; want %" PRIu64 ", %" PRIu64
		     ", %" PRIu64,
		     what, c->rtt, c->hits, c->stale, rtt, hits, stale);
}

static void cache_push(struct rdps_emb *e, const uint64_t *keys, size_t n,
		       const double *g)
{
	CHECK(rdps_emb_push(e, keys, n, g));
	CHECK(rdps_clock(e->ctx));
}

/* The location cache: 1 round trip for remembered keys; a remembered row
 * that is no longer the key's (the refused push's undone inserts, the
 * row reused) never read as the key's; off by cfg and by environment. */
static int mode_cache(struct rdps_ctx *ctx, int argc, char **argv)
{
	const uint64_t k1 = 101, k2 = 202, k3 = 303, k4 = 606;
	const uint64_t five[5] = {k2, k3, 404, 505, k4}, mix[3] = {k1, k3, k4};
	double g[5 * CACHE_DIM], got[5 * CACHE_DIM];
	struct rdps_emb_cfg ec;
	struct rdps_emb *e, *off;
	struct cache_cost c;
	int ret;

	(void)argv;
	if (argc != 2 || cfg.workers != 1 || ctx->nshards != 1)
		fail("usage: cache (one worker, one shard)");
	rdps_emb_cfg_default(&ec);
	ec.dim = CACHE_DIM;
	ec.dtype = RDPS_DTYPE_F64;
	ec.rule = RDPS_RULE_SUM;
	ec.capacity = 4;
	ec.init = RDPS_EMB_INIT_UNIFORM;
	ec.init_scale = 1;
	CHECK(rdps_emb_open(ctx, "cache4", &ec, &e));
	for (int i = 0; i < 5 * CACHE_DIM; i++)
		g[i] = 1.0;
	/* k1 on row 0: found through the buckets, then remembered. */
	cache_push(e, &k1, 1, g);
	cache_pull(e, &k1, 1, got, &c);
	cache_cost_is("first pull", &c, 2, 0, 0);
	cache_want("first pull", &ec, k1, 1, got);
	/* Every clock's update seen through the cached place (BSP: the
	 * header read with the row). */
	for (int it = 0; it < 10; it++) {
		cache_push(e, &k1, 1, g);
		cache_pull(e, &k1, 1, got, &c);
		cache_cost_is("a cached pull", &c, 1, 1, 0);
		cache_want("a cached pull", &ec, k1, (unsigned)it + 2, got);
	}
	if (cfg.model == RDPS_MODEL_SSP || cfg.model == RDPS_MODEL_ASP) {
		/* k2, k3, 404 take rows 1-3, 505 finds none: all undone. */
		ret = rdps_emb_push(e, five, 5, g);
		if (ret != -ENOSPC)
			fail("5 new keys into 3 rows: %d", ret);
		/* A pull racing that push saw k3's slot: row 2. */
		wrk_emb_cache_set(e, k3, 2);
		cache_pull(e, &k3, 1, got, &c);
		cache_cost_is("an undone row", &c, 2, 1, 1);
		cache_want("an undone row", &ec, k3, 0, got);
		/* k3 comes back on row 1; row 2 still has its head. */
		cache_push(e, &k3, 1, g);
		wrk_emb_cache_set(e, k3, 2);
		cache_pull(e, &k3, 1, got, &c);
		cache_cost_is("back in another row", &c, 3, 1, 1);
		cache_want("back in another row", &ec, k3, 1, got);
		/* Row 2 goes to k4: k3 there reads k3, never k4. */
		cache_push(e, &k4, 1, g);
		wrk_emb_cache_set(e, k3, 2);
		cache_pull(e, &k3, 1, got, &c);
		cache_cost_is("a reused row", &c, 3, 1, 1);
		cache_want("a reused row", &ec, k3, 1, got);
		/* k2, never in the table, at k3's row: absent. */
		wrk_emb_cache_set(e, k2, 1);
		cache_pull(e, &k2, 1, got, &c);
		cache_cost_is("another key's row", &c, 2, 1, 1);
		cache_want("another key's row", &ec, k2, 0, got);
		/* Mixed: k1 and k3 cached, k4 not yet. */
		cache_pull(e, mix, 3, got, &c);
		cache_cost_is("mixed", &c, 2, 2, 0);
		cache_pull(e, mix, 3, got, &c);
		cache_cost_is("all cached", &c, 1, 3, 0);
		cache_want("all cached", &ec, k1, 11, got);
		cache_want("all cached", &ec, k3, 1, got + CACHE_DIM);
		cache_want("all cached", &ec, k4, 1, got + 2 * CACHE_DIM);
	}
	/* Off: a handle of the same table without a cache; the environment
	 * turns it on, or is refused when malformed. */
	ec.cache = 0;
	CHECK(rdps_emb_open(ctx, "cache4", &ec, &off));
	for (int i = 0; i < 2; i++) {
		cache_pull(off, &k1, 1, got, &c);
		cache_cost_is("cache off", &c, 2, 0, 0);
		cache_want("cache off", &ec, k1, 11, got);
	}
	ec.cache = 2;
	ret = rdps_emb_open(ctx, "cache4", &ec, &off);
	if (ret != -EINVAL || !strstr(rdps_errmsg(), "cache 2"))
		fail("cache 2: %d (%s)", ret, rdps_errmsg());
	ec.cache = 0;
	setenv("RDPS_EMB_CACHE", "1", 1);
	CHECK(rdps_emb_open(ctx, "cache4", &ec, &off));
	cache_pull(off, &k1, 1, got, &c);
	cache_pull(off, &k1, 1, got, &c);
	cache_cost_is("RDPS_EMB_CACHE=1", &c, 1, 1, 0);
	setenv("RDPS_EMB_CACHE", "on", 1);
	ret = rdps_emb_open(ctx, "cache4", &ec, &off);
	if (ret != -EINVAL || !strstr(rdps_errmsg(), "RDPS_EMB_CACHE 'on'"))
		fail("RDPS_EMB_CACHE=on: %d (%s)", ret, rdps_errmsg());
	unsetenv("RDPS_EMB_CACHE");
	printf("OK cache: remembered rows read in one round trip, stale ones "
	       "never returned\n");
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct rdps_ctx *ctx, int argc, char **argv);
} modes[] = {
	{"once", mode_once}, {"torn", mode_torn},	  {"full", mode_full},
	{"bsp", mode_bsp},   {"overflow", mode_overflow}, {"cache", mode_cache},
};

int main(int argc, char **argv)
{
	struct rdps_ctx *ctx;
	size_t i;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rdps_config_default(&cfg);
	if (rdps_config_from_env(&cfg))
		fail("config from the environment: %s", rdps_errmsg());
	for (i = 0; argc >= 2 && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			break;
	if (argc < 2 || i == sizeof(modes) / sizeof(modes[0]))
		fail("usage: emb_worker once|torn|full|overflow|bsp|cache "
		     "ARGS...");
	CHECK(rdps_ctx_create(&cfg, &ctx));
	rc = modes[i].run(ctx, argc, argv);
	rdps_ctx_destroy(ctx);
	return rc;
}
