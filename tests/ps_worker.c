/* SPDX-License-Identifier: MIT */
/*
 * ps_worker.c - a test worker for whole parameter-server jobs, started by
 * rdps-launch (which sets RDPS_SHARDS, RDPS_RANK, ... ; config.h's
 * rdps_config_from_env reads them). Not a cmocka binary: it prints what
 * went wrong on stderr, prefixed with its rank, and exits 1; rank 0 prints
 * "OK" on stdout when the job's check passed.
 *
 * Modes (argv[1]):
 *   sum N SEED            N random dense and sparse pushes per worker into
 *                         a float64 SUM table; rank 0 checks the final
 *                         values against every worker's regenerated deltas.
 *   soak SECONDS SEED DELAY_US
 *                         the sum job for SECONDS instead of N pushes,
 *                         a random pause of up to DELAY_US before each
 *                         push; same exact check (scripts/soak.sh).
 *   bsp ITERS SEED OUT [RULE]
 *                         deterministic SGD-like float32 job with random
 *                         per-worker delays (from SEED); rank 0 writes the
 *                         final parameters' bytes to OUT. Starts at the
 *                         job's clock (a job resumed from checkpoints).
 *                         RULE put or put-if-better: the table has that
 *                         rule, and each worker puts values derived from
 *                         what it pulled over an overlapping range of its
 *                         own (put) or the whole table (put-if-better),
 *                         so the result depends on the worker order.
 *   ssp ITERS SEED        staleness bound, through the values pulled and
 *                         through the clocks every worker publishes in a
 *                         shared mapping (model and slack from the job).
 *   asp ITERS             one worker stalls until the others finished all
 *                         their clocks: under ASP they must not wait.
 *   badinput              bad table opens and ranges fail with the right
 *                         errno; the job keeps working afterwards.
 *   zcopy N               dense pushes of 1 MiB float32 from
 *                         rdps_buf_alloc() memory (the zero-copy path:
 *                         payload and header in two writes) and from
 *                         plain memory, N of each per worker; rank 0 checks
 *                         every element's exact sum.
 *   lose ITERS AT kill|stop|leave
 *                         a lost worker: the last rank pushes +1 to its
 *                         element in iterations 0..AT, then kills or stops
 *                         itself (SIGKILL/SIGSTOP), or leaves the job
 *                         (rdps_ctx_destroy, exit 0), before finishing
 *                         clock AT. The others push +1 to theirs every
 *                         iteration, check the SSP bound on each other
 *                         and, with RDPS_ON_WORKER_LOSS=continue, must
 *                         finish: final counts exact (ITERS each, AT + 1
 *                         for the lost one), and the rounds made up for it
 *                         counted exactly once (rank 0). Without it they
 *                         fail in rdps_clock naming the lost worker.
 *   stopshard             one worker, tcp: it stops shard 1 (SIGSTOP, found
 *                         by its command line and the job token) in the
 *                         middle of a job; a pull must then fail naming
 *                         shard 1 within a few heartbeats, the next call
 *                         at once (the context gave up on reads that never
 *                         completed), and rdps_ctx_destroy must return;
 *                         then the shard gets SIGCONT.
 *   tree ITERS BARRIERS G the clock's counting words (ps_proto.h "Clock
 *                         tree"): ITERS clocks, then BARRIERS barriers,
 *                         with the fan-in G the job must run with (from
 *                         RDPS_CLOCK_FANIN; 1: the flat counter). Each
 *                         worker checks it made one fetch-add on its
 *                         group's word per tick and at most two counter
 *                         fetch-adds in any tick; rank 0 reads every node
 *                         and the flat table: the root took ceil(W/G)
 *                         fetch-adds a clock and a barrier, each group
 *                         its size, each release word one per clock; the
 *                         flat words none (flat: W a clock, nodes none).
 *   cut ROUNDS            A-BSP cuts: in round c worker c mod W cuts and
 *                         must win; every other worker must see the cut
 *                         by polling, then lose its own rdps_cut; no cut
 *                         carries over to the next round; one winner per
 *                         round, counted in a SUM table.
 *
 * Delays (usleep) here simulate uneven work; they are never used to order
 * anything.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "job_worker.h"
#include "rdps/rdps.h"
#include "worker/worker.h"

static struct rdps_config cfg;
/* The shared clock board's /dev/shm name once this worker opened it. */
static char board_name[64];

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ps_worker %d: ", cfg.rank);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* Rank 0 unlinks the board only when the job passed: a failing job
	 * (on purpose in ps_lose) would leave it in /dev/shm. The others
	 * keep their mappings; the name is gone for good either way. */
	if (board_name[0])
		shm_unlink(board_name);
	fflush(NULL);
	_exit(1);
}

/* A library call that must fail with -err. */
#define EXPECT_ERR(err, call)                                               \
	do {                                                                \
		int ret_ = (call);                                          \
		if (ret_ != -(err))                                         \
			fail("line %d: %s returned %d (%s), want -%s",      \
			     __LINE__, #call, ret_,                         \
			     ret_ < 0 ? strerror(-ret_) : "success", #err); \
		if (!*rdps_errmsg())                                        \
			fail("line %d: %s failed without an rdps_errmsg",   \
			     __LINE__, #call);                              \
	} while (0)

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return splitmix64(s) % n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Every worker finishing the same number of extra clocks makes all earlier
 * pushes visible to a pull: BSP needs none, SSP slack more. */
static void drain(struct rdps_ctx *ctx)
{
	unsigned extra = cfg.model == RDPS_MODEL_SSP ? cfg.slack : 0;

	for (unsigned i = 0; i < extra; i++)
		CHECK(rdps_clock(ctx));
}

/* --- sum ---------------------------------------------------------------- */

#define SUM_N 100003 /* not a multiple of 16: the last shard's tail */
#define SUM_DENSE_MAX 256
#define SUM_SPARSE_MAX 64
#define SUM_CLOCK_EVERY 8

/*
 * One push of a worker's sequence. Deltas are multiples of 1/4 in
 * [-8, 8]: sums of them are exact in float64 whatever the order.
 * Sparse indices are distinct within a push.
 */
struct sum_push {
	int sparse;
	uint64_t start, count;
	uint64_t idx[SUM_SPARSE_MAX];
	double delta[SUM_DENSE_MAX];
};

static void sum_gen(uint64_t *rng, struct sum_push *p)
{
	p->sparse = (int)rnd(rng, 2);
	if (p->sparse) {
		p->count = 1 + rnd(rng, SUM_SPARSE_MAX);
		for (uint64_t i = 0; i < p->count; i++) {
			uint64_t x;
			int dup;

			do {
				x = rnd(rng, SUM_N);
				dup = 0;
				for (uint64_t j = 0; j < i; j++)
					dup |= p->idx[j] == x;
			} while (dup);
			p->idx[i] = x;
		}
	} else {
		p->count = 1 + rnd(rng, SUM_DENSE_MAX);
		p->start = rnd(rng, SUM_N - p->count + 1);
	}
	for (uint64_t i = 0; i < p->count; i++)
		p->delta[i] = ((double)rnd(rng, 65) - 32.0) / 4.0;
}

/*
 * Dense pulls into rdps_buf_alloc() memory (read straight into it) give
 * the same bytes as pulls into malloc memory (staged): the whole table,
 * ranges across and along shard bounds, random ranges at odd byte offsets
 * in the buffer, and a range ending at the buffer's last byte.
 */
#define SUM_ZC_RANGES 64
static void sum_check_zc(struct rdps_ctx *ctx, struct rdps_table *t,
			 const double *final, uint64_t seed)
{
	static const uint64_t fixed[][2] = {
		{0, SUM_N},	{SUM_N - 1, 1},	  {0, 1},
		{33331, 2},	{33333, 33336},	  {49999, 2},
		{50000, 1},	{49990, 50013},	  {66660, 9},
		{1, SUM_N - 2}, {SUM_N - 17, 17},
	};
	const unsigned nfixed = sizeof(fixed) / sizeof(fixed[0]);
	size_t len = SUM_N * sizeof(double) + 128;
	uint64_t rng = seed ^ 0x2c0ffee;
	char *zc, *zc2, *plain;

	zc = rdps_buf_alloc(ctx, len);
	zc2 = rdps_buf_alloc(ctx, 100);
	if (!zc || !zc2)
		fail("rdps_buf_alloc: %s", rdps_errmsg());
	if ((uintptr_t)zc % 4096 || (uintptr_t)zc2 % 4096)
		fail("rdps_buf_alloc: %p or %p is not page-aligned", zc, zc2);
	for (size_t i = 0; i < len; i++)
		if (zc[i])
			fail("rdps_buf_alloc: byte %zu is not zero", i);
	plain = xcalloc(len, 1);
	for (unsigned r = 0; r < nfixed + SUM_ZC_RANGES; r++) {
		uint64_t start, count, boff;

		if (r < nfixed) {
			start = fixed[r][0];
			count = fixed[r][1];
			boff = r % 2 ? 8 * r : r; /* odd and element offsets */
		} else {
			start = rnd(&rng, SUM_N);
			count = 1 + rnd(&rng, SUM_N - start);
			boff = rnd(&rng, 64);
		}
		if (r == nfixed + SUM_ZC_RANGES - 1)
			boff = len - count * sizeof(double); /* at the end */
		memset(zc + boff, 0xa5, count * sizeof(double));
		CHECK(rdps_pull(t, start, count, zc + boff));
		CHECK(rdps_pull(t, start, count, plain + boff));
		if (memcmp(zc + boff, plain + boff, count * sizeof(double)) ||
		    memcmp(zc + boff, final + start, count * sizeof(double)))
			fail("pull of [%" PRIu64 ", +%" PRIu64 ") into "
			     "rdps_buf_alloc memory at +%" PRIu64 " differs "
			     "from the pull into malloc memory",
			     start, count, boff);
	}
	/* A small second buffer, and one left for rdps_ctx_destroy. */
	CHECK(rdps_pull(t, SUM_N - 12, 12, zc2 + 3));
	if (memcmp(zc2 + 3, final + SUM_N - 12, 12 * sizeof(double)))
		fail("pull into a second rdps_buf_alloc buffer differs");
	rdps_buf_free(ctx, zc);
	rdps_buf_free(ctx, NULL);
	free(plain);
}

/*
 * The end of a sum job, every worker having pushed its first n_push of
 * sum_gen(seed + rank): make them visible, then rank 0 (which pulled init
 * before anyone pushed) checks every element exactly, the zero-copy pulls
 * and a sparse pull. Frees init.
 */
static int sum_finish(struct rdps_ctx *ctx, struct rdps_table *t, double *init,
		      uint64_t n_push, uint64_t seed)
{
	struct rdps_stats st;
	struct sum_push p;
	double *final, *want;
	uint64_t rng;

	CHECK(rdps_clock(ctx));
	drain(ctx);
	CHECK(rdps_barrier(ctx));
	rdps_ctx_stats(ctx, &st);
	if (st.pushes < n_push)
		fail("stats: %" PRIu64 " pushes counted, made %" PRIu64,
		     st.pushes, n_push);
	if (cfg.rank != 0) {
		/* Keep the job up until rank 0 has pulled. */
		CHECK(rdps_barrier(ctx));
		return 0;
	}

	want = xcalloc(SUM_N, sizeof(double));
	final = xcalloc(SUM_N, sizeof(double));
	for (int w = 0; w < cfg.workers; w++) {
		rng = seed + (uint64_t)w;
		for (uint64_t i = 0; i < n_push; i++) {
			sum_gen(&rng, &p);
			for (uint64_t j = 0; j < p.count; j++)
				want[p.sparse ? p.idx[j] : p.start + j] +=
					p.delta[j];
		}
	}
	for (int attempt = 0;; attempt++) {
		uint64_t bad = SUM_N;

		CHECK(rdps_pull(t, 0, SUM_N, final));
		for (uint64_t i = 0; i < SUM_N && bad == SUM_N; i++)
			if (final[i] - init[i] != want[i])
				bad = i;
		if (bad == SUM_N)
			break;
		/* ASP promises no freshness: give it time, then fail. */
		if (cfg.model != RDPS_MODEL_ASP || attempt >= 500)
			fail("sum: element %" PRIu64 " is %.17g - %.17g = "
			     "%.17g, want %.17g (%d workers x %" PRIu64
			     " pushes)",
			     bad, final[bad], init[bad], final[bad] - init[bad],
			     want[bad], cfg.workers, n_push);
		usleep(10000);
	}
	sum_check_zc(ctx, t, final, seed);
	/* A sparse pull of a few elements agrees with the dense one. */
	{
		uint64_t idx[4] = {0, SUM_N - 1, SUM_N / 2, 17};
		double v[4];

		CHECK(rdps_pull_sparse(t, idx, 4, v));
		for (int i = 0; i < 4; i++)
			if (v[i] != final[idx[i]])
				fail("sparse pull of %" PRIu64 ": %.17g, dense "
				     "pull said %.17g",
				     idx[i], v[i], final[idx[i]]);
	}
	CHECK(rdps_barrier(ctx));
	printf("OK sum: %d workers x %" PRIu64 " pushes\n", cfg.workers,
	       n_push);
	free(want);
	free(final);
	free(init);
	return 0;
}

static int mode_sum(struct rdps_ctx *ctx, int argc, char **argv)
{
	uint64_t n_push, seed, rng;
	struct rdps_table *t;
	struct sum_push p;
	double *init = NULL;

	if (argc != 4)
		fail("usage: sum N SEED");
	n_push = arg_u64(argv[2], "push count");
	seed = arg_u64(argv[3], "seed");
	CHECK(rdps_table_open(ctx, "sum", SUM_N, RDPS_DTYPE_F64, RDPS_RULE_SUM,
			      0.0, &t));
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0) {
		init = xcalloc(SUM_N, sizeof(double));
		CHECK(rdps_pull(t, 0, SUM_N, init));
	}
	/* Nobody pushes before rank 0 has the initial values. */
	CHECK(rdps_barrier(ctx));

	rng = seed + (uint64_t)cfg.rank;
	for (uint64_t i = 0; i < n_push; i++) {
		sum_gen(&rng, &p);
		if (p.sparse)
			CHECK(rdps_push_sparse(t, p.idx, p.count, p.delta));
		else
			CHECK(rdps_push(t, p.start, p.count, p.delta));
		if (i % SUM_CLOCK_EVERY == SUM_CLOCK_EVERY - 1)
			CHECK(rdps_clock(ctx));
	}
	return sum_finish(ctx, t, init, n_push, seed);
}

/* --- soak --------------------------------------------------------------- */

#define SOAK_EPOCH_CLOCKS 16
#define SOAK_REPORT_NS (10ull * 1000000000u)

/*
 * The sum job for a set time instead of a set count. Workers push in
 * epochs of SOAK_EPOCH_CLOCKS clocks, each push after a random pause of
 * 0..DELAY_US. After every epoch rank 0 raises a stop word (a SUM table
 * of one element) once SECONDS have passed; everyone makes it visible
 * (clock, drain, barrier) and reads it, so all stop after the same epoch
 * with the same push count, and sum_finish() checks the sum exactly as in
 * sum mode. Rank 0 prints a progress line every 10 s. Needs clocks that
 * bound staleness: not ASP.
 */
static int mode_soak(struct rdps_ctx *ctx, int argc, char **argv)
{
	uint64_t seconds, seed, delay_us, rng, pause_rng, n_push = 0;
	uint64_t t0 = now_ns(), next_report = t0 + SOAK_REPORT_NS;
	struct rdps_table *t, *stop_t;
	struct sum_push p;
	double *init = NULL, stop = 0.0, one = 1.0;

	if (argc != 5)
		fail("usage: soak SECONDS SEED DELAY_US");
	if (cfg.model == RDPS_MODEL_ASP)
		fail("soak mode needs clocks that bound staleness: not asp");
	seconds = arg_u64(argv[2], "duration");
	seed = arg_u64(argv[3], "seed");
	delay_us = arg_u64(argv[4], "delay");
	CHECK(rdps_table_open(ctx, "sum", SUM_N, RDPS_DTYPE_F64, RDPS_RULE_SUM,
			      0.0, &t));
	CHECK(rdps_table_open(ctx, "soak_stop", 1, RDPS_DTYPE_F64,
			      RDPS_RULE_SUM, 0.0, &stop_t));
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0) {
		init = xcalloc(SUM_N, sizeof(double));
		CHECK(rdps_pull(t, 0, SUM_N, init));
	}
	CHECK(rdps_barrier(ctx));

	rng = seed + (uint64_t)cfg.rank;
	pause_rng = ~seed - (uint64_t)cfg.rank; /* not from the data's stream */
	while (stop == 0.0) {
		for (unsigned c = 0; c < SOAK_EPOCH_CLOCKS; c++) {
			for (unsigned i = 0; i < SUM_CLOCK_EVERY; i++) {
				if (delay_us)
					usleep((useconds_t)rnd(&pause_rng,
							       delay_us + 1));
				sum_gen(&rng, &p);
				if (p.sparse)
					CHECK(rdps_push_sparse(
						t, p.idx, p.count, p.delta));
				else
					CHECK(rdps_push(t, p.start, p.count,
							p.delta));
				n_push++;
			}
			CHECK(rdps_clock(ctx));
		}
		if (cfg.rank == 0) {
			uint64_t now = now_ns();

			if (now - t0 >= seconds * 1000000000u)
				CHECK(rdps_push(stop_t, 0, 1, &one));
			if (now >= next_report) {
				printf("soak: %" PRIu64 " s, %" PRIu64
				       " pushes per worker\n",
				       (now - t0) / 1000000000u, n_push);
				fflush(stdout);
				next_report += SOAK_REPORT_NS;
			}
		}
		CHECK(rdps_clock(ctx));
		drain(ctx);
		CHECK(rdps_barrier(ctx));
		CHECK(rdps_pull(stop_t, 0, 1, &stop));
	}
	if (cfg.rank == 0) {
		printf("soak: done after %" PRIu64 " s, %" PRIu64
		       " pushes per worker\n",
		       (now_ns() - t0) / 1000000000u, n_push);
		fflush(stdout);
	}
	return sum_finish(ctx, t, init, n_push, seed);
}

/* --- bsp ---------------------------------------------------------------- */

#define BSP_N 4099
#define BSP_DELAY_US 3000

/* The data: a fixed target per worker (never from the delay seed). */
static float bsp_target(int rank, uint64_t i)
{
	uint64_t s = ((uint64_t)rank << 32) ^ i ^ 0x5eedull;

	return (float)((double)(splitmix64(&s) % 2001) / 1000.0 - 1.0);
}

static int mode_bsp(struct rdps_ctx *ctx, int argc, char **argv)
{
	enum rdps_rule rule = RDPS_RULE_SGD;
	uint64_t iters, delay_rng, lo = 0, cnt = BSP_N;
	struct rdps_table *t;
	float *param, *grad;
	FILE *f;

	if (argc != 5 && argc != 6)
		fail("usage: bsp ITERS SEED OUTFILE [put|put-if-better]");
	if (cfg.model != RDPS_MODEL_BSP)
		fail("bsp mode needs the bsp model");
	if (argc == 6 && !strcmp(argv[5], "put"))
		rule = RDPS_RULE_PUT;
	else if (argc == 6 && !strcmp(argv[5], "put-if-better"))
		rule = RDPS_RULE_PUT_IF_BETTER;
	else if (argc == 6)
		fail("bsp: unknown rule '%s'", argv[5]);
	if (rule == RDPS_RULE_PUT) {
		/* Overlapping ranges: worker r puts [r N/8, r N/8 + N/2). */
		lo = (uint64_t)cfg.rank * BSP_N / 8 % BSP_N;
		cnt = BSP_N - lo < BSP_N / 2 ? BSP_N - lo : BSP_N / 2;
	}
	iters = arg_u64(argv[2], "iteration count");
	delay_rng = arg_u64(argv[3], "seed") * 1000003u + (uint64_t)cfg.rank;
	param = xcalloc(BSP_N, sizeof(float));
	grad = xcalloc(BSP_N, sizeof(float));
	CHECK(rdps_table_open(ctx, "w", BSP_N, RDPS_DTYPE_F32, rule, 0.1, &t));
	/* A resumed job starts at its checkpoint's clock. */
	for (uint64_t it = rdps_clock_now(ctx); it < iters; it++) {
		uint64_t idx[8];
		float sg[8];

		CHECK(rdps_pull(t, 0, BSP_N, param));
		/* Gradient of 0.5 * (w - target)^2 plus a nonlinearity, so
		 * the order of float operations matters. */
		for (uint64_t i = 0; i < BSP_N; i++) {
			float d = param[i] - bsp_target(cfg.rank, i);

			grad[i] = d + 0.01f * d * d * d;
			/* A put: the next value itself, below the held one
			 * about half the time (put-if-better's keys). */
			if (rule != RDPS_RULE_SGD)
				grad[i] = param[i] - 0.1f * grad[i] +
					  0.05f * bsp_target(cfg.rank,
							     i + 7 * it);
		}
		usleep((useconds_t)rnd(&delay_rng, BSP_DELAY_US));
		CHECK(rdps_push(t, lo, cnt, grad + lo));
		/* A sparse push too: a few elements chosen by (rank, it). */
		for (int i = 0; i < 8; i++) {
			uint64_t s = it * 8 + (uint64_t)i + 1;

			s ^= (uint64_t)cfg.rank << 40;
			idx[i] = (splitmix64(&s) % (BSP_N / 8)) * 8 +
				 (uint64_t)i;
			sg[i] = param[idx[i]] * 0.5f + (float)cfg.rank;
		}
		CHECK(rdps_push_sparse(t, idx, 8, sg));
		usleep((useconds_t)rnd(&delay_rng, BSP_DELAY_US / 3));
		CHECK(rdps_clock(ctx));
	}
	if (rdps_clock_now(ctx) != iters)
		fail("clock %" PRIu64 " after %" PRIu64 " iterations",
		     rdps_clock_now(ctx), iters);
	CHECK(rdps_pull(t, 0, BSP_N, param));
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0) {
		int nonzero = 0;

		for (uint64_t i = 0; i < BSP_N; i++)
			nonzero += param[i] != 0.0f;
		if (nonzero < BSP_N / 2)
			fail("bsp: only %d of %d parameters moved", nonzero,
			     BSP_N);
		f = fopen(argv[4], "wb");
		if (!f)
			fail("cannot write %s: %s", argv[4], strerror(errno));
		if (fwrite(param, sizeof(float), BSP_N, f) != BSP_N ||
		    fclose(f))
			fail("writing %s: %s", argv[4], strerror(errno));
		printf("OK bsp: %" PRIu64 " iterations, w[0] = %.9g\n", iters,
		       (double)param[0]);
	}
	free(param);
	free(grad);
	return 0;
}

/* --- shared clock board (ssp, asp) ---------------------------------------- */

/*
 * done[j]: the clocks worker j has finished or is finishing, stored
 * before it calls rdps_clock (so before its fetch-add). A mapping of
 * /dev/shm named by the job token, created by whoever comes first.
 */
static volatile uint64_t *board_open(char *name, size_t len)
{
	size_t bytes = (size_t)cfg.workers * sizeof(uint64_t);
	void *p;
	int fd;

	snprintf(name, len, "/rdps-test-board-%016" PRIx64, cfg.token);
	fd = shm_open(name, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		fail("shm_open %s: %s", name, strerror(errno));
	snprintf(board_name, sizeof(board_name), "%s", name);
	if (ftruncate(fd, (off_t)bytes))
		fail("ftruncate %s: %s", name, strerror(errno));
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		fail("mmap %s: %s", name, strerror(errno));
	return p;
}

static uint64_t board_get(volatile uint64_t *b, int j)
{
	return __atomic_load_n(&b[j], __ATOMIC_SEQ_CST);
}

static void board_set(volatile uint64_t *b, int j, uint64_t v)
{
	__atomic_store_n(&b[j], v, __ATOMIC_SEQ_CST);
}

/* --- ssp ---------------------------------------------------------------- */

#define SSP_STRIDE 16 /* element of worker j: j * 16, spread over shards */

static int mode_ssp(struct rdps_ctx *ctx, int argc, char **argv)
{
	uint64_t iters, rng, n, one_idx;
	unsigned s = cfg.model == RDPS_MODEL_BSP ? 0 : cfg.slack;
	volatile uint64_t *board;
	struct rdps_table *t;
	struct rdps_stats st;
	char name[64];
	double *v, one = 1.0;

	if (argc != 4)
		fail("usage: ssp ITERS SEED");
	if (cfg.model == RDPS_MODEL_ASP)
		fail("ssp mode needs the bsp or ssp model");
	if (cfg.workers < 2)
		fail("ssp mode needs at least 2 workers");
	iters = arg_u64(argv[2], "iteration count");
	rng = arg_u64(argv[3], "seed") + (uint64_t)cfg.rank;
	n = (uint64_t)cfg.workers * SSP_STRIDE;
	v = xcalloc(n, sizeof(double));
	board = board_open(name, sizeof(name));
	CHECK(rdps_table_open(ctx, "ssp", n, RDPS_DTYPE_F64, RDPS_RULE_SUM, 0.0,
			      &t));
	one_idx = (uint64_t)cfg.rank * SSP_STRIDE;
	for (uint64_t it = 0; it < iters; it++) {
		uint64_t c = rdps_clock_now(ctx);

		if (c != it)
			fail("clock %" PRIu64 " in iteration %" PRIu64, c, it);
		CHECK(rdps_pull(t, 0, n, v));
		/*
		 * Pulling at clock c: applied_clock >= c - s, so every
		 * worker's pushes of clocks < c - s are in (one each), and
		 * no worker can have pushed in clocks > c + s (it would have
		 * needed this worker's clock c to be complete).
		 */
		for (int j = 0; j < cfg.workers; j++) {
			double x = v[(uint64_t)j * SSP_STRIDE];
			double lo = c > s ? (double)(c - s) : 0.0;
			double hi = (double)(c + s + 1);

			if (j == cfg.rank)
				hi = (double)c; /* our own: at most c */
			if (x < lo || x > hi)
				fail("ssp: at clock %" PRIu64 " (slack %u) "
				     "worker %d's count is %g, want %g .. %g",
				     c, s, j, x, lo, hi);
		}
		/* Worker 0 runs flat out, the others are slow. */
		if (cfg.rank != 0)
			usleep((useconds_t)(500 + rnd(&rng, 2000)));
		CHECK(rdps_push_sparse(t, &one_idx, 1, &one));
		board_set(board, cfg.rank, c + 1);
		CHECK(rdps_clock(ctx));
		c = rdps_clock_now(ctx);
		/* Back from rdps_clock at clock c: clock c - 1 - s is
		 * complete, so everybody has at least started finishing
		 * clock c - 1 - s, i.e. published done >= c - s. */
		for (int j = 0; j < cfg.workers && c > s; j++)
			if (board_get(board, j) < c - s)
				fail("ssp: back from rdps_clock at clock "
				     "%" PRIu64 " (slack %u) while worker %d "
				     "has finished only %" PRIu64 " clocks",
				     c, s, j, board_get(board, j));
	}
	drain(ctx);
	CHECK(rdps_pull(t, 0, n, v));
	for (int j = 0; j < cfg.workers; j++)
		if (v[(uint64_t)j * SSP_STRIDE] != (double)iters)
			fail("ssp: final count of worker %d is %g, want "
			     "%" PRIu64,
			     j, v[(uint64_t)j * SSP_STRIDE], iters);
	rdps_ctx_stats(ctx, &st);
	/* Worker 0 is fast: with more clocks than the slack it must have
	 * been held back at least once. */
	if (cfg.rank == 0 && iters > 4 * (s + 2) && st.clock_wait_ns == 0)
		fail("ssp: the fast worker never waited in rdps_clock over "
		     "%" PRIu64 " clocks (slack %u)",
		     iters, s);
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0) {
		shm_unlink(name);
		printf("OK ssp: %" PRIu64 " clocks, slack %u, fast worker "
		       "waited %.1f ms\n",
		       iters, s, (double)st.clock_wait_ns / 1e6);
	}
	free(v);
	return 0;
}

/* --- lose --------------------------------------------------------------- */

static int mode_lose(struct rdps_ctx *ctx, int argc, char **argv)
{
	int victim = cfg.workers - 1, stop;
	unsigned s = cfg.model == RDPS_MODEL_SSP ? cfg.slack : 0;
	uint64_t iters, at, n, one_idx, rng, made = 0, want;
	volatile uint64_t *board;
	struct rdps_table *t;
	struct rdps_stats st;
	char name[64];
	double *v, one = 1.0;

	if (argc != 5 || (strcmp(argv[4], "kill") && strcmp(argv[4], "stop") &&
			  strcmp(argv[4], "leave")))
		fail("usage: lose ITERS AT kill|stop|leave");
	if (cfg.workers < 2)
		fail("lose mode needs at least 2 workers");
	iters = arg_u64(argv[2], "iteration count");
	at = arg_u64(argv[3], "iteration of the loss");
	if (at >= iters)
		fail("lose: AT (%" PRIu64 ") must be below ITERS (%" PRIu64 ")",
		     at, iters);
	stop = !strcmp(argv[4], "stop");
	rng = 77 + (uint64_t)cfg.rank;
	n = (uint64_t)cfg.workers * SSP_STRIDE;
	v = xcalloc(n, sizeof(double));
	board = board_open(name, sizeof(name));
	CHECK(rdps_table_open(ctx, "lose", n, RDPS_DTYPE_F64, RDPS_RULE_SUM,
			      0.0, &t));
	one_idx = (uint64_t)cfg.rank * SSP_STRIDE;
	for (uint64_t it = 0; it < iters; it++) {
		uint64_t c = rdps_clock_now(ctx);

		CHECK(rdps_pull(t, 0, n, v));
		/* The SSP bound (see ssp mode) still holds among the
		 * workers that are left. */
		for (int j = 0; j < cfg.workers && cfg.model == RDPS_MODEL_SSP;
		     j++) {
			double x = v[(uint64_t)j * SSP_STRIDE];
			double lo = c > s ? (double)(c - s) : 0.0;

			if (j == victim)
				lo = lo < (double)(at + 1) ? lo
							   : (double)(at + 1);
			if (x < lo || x > (double)(c + s + 1))
				fail("lose: at clock %" PRIu64 " worker %d's "
				     "count is %g, want %g .. %g",
				     c, j, x, lo, (double)(c + s + 1));
		}
		CHECK(rdps_push_sparse(t, &one_idx, 1, &one));
		if (cfg.rank == victim && it == at) {
			board_set(board, victim, at + 1);
			fflush(NULL);
			if (!strcmp(argv[4], "leave")) {
				rdps_ctx_destroy(ctx);
				_exit(0);
			}
			raise(stop ? SIGSTOP : SIGKILL);
			/* Woken up after all: the shards dropped us. */
		}
		if (cfg.rank != 0)
			usleep((useconds_t)(200 + rnd(&rng, 800)));
		CHECK(rdps_clock(ctx));
	}
	drain(ctx);
	CHECK(rdps_barrier(ctx));
	rdps_ctx_stats(ctx, &st);
	board_set(board, cfg.rank, st.made_up);
	CHECK(rdps_barrier(ctx));
	CHECK(rdps_pull(t, 0, n, v));
	for (int j = 0; j < cfg.workers; j++) {
		double want_j = j == victim ? (double)(at + 1) : (double)iters;

		if (v[(uint64_t)j * SSP_STRIDE] != want_j)
			fail("lose: final count of worker %d is %g, want %g", j,
			     v[(uint64_t)j * SSP_STRIDE], want_j);
	}
	if (cfg.rank == 0) {
		/* Clocks at..iters-1 lack the lost worker and are waited on
		 * (SSP: up to clock iters - 1 with the drain); ASP waits on
		 * none. Plus the first closing barrier. */
		want = (cfg.model == RDPS_MODEL_SSP ? iters - at : 0) + 1;
		for (int j = 0; j < victim; j++)
			made += board_get(board, j);
		if (made != want)
			fail("lose: the workers made up %" PRIu64 " rounds for "
			     "the lost worker, want exactly %" PRIu64,
			     made, want);
		shm_unlink(name);
		printf("OK lose: %" PRIu64 " clocks, worker %d lost at clock "
		       "%" PRIu64 " (%s), %" PRIu64 " rounds made up\n",
		       iters, victim, at, argv[4], made);
	}
	free(v);
	return 0;
}

/* --- stopshard ---------------------------------------------------------- */

/* The pid of this job's rdps-server for shard s: its command line has
 * "--shard S" and "--token TOKEN". 0 if none. */
static pid_t find_shard(unsigned s)
{
	char want_shard[16], want_tok[32], path[300], buf[4096];
	struct dirent *e;
	pid_t found = 0;
	DIR *d = opendir("/proc");

	snprintf(want_shard, sizeof(want_shard), "%u", s);
	snprintf(want_tok, sizeof(want_tok), "%" PRIu64, cfg.token);
	while (d && (e = readdir(d)) && !found) {
		int fd, shard_ok = 0, tok_ok = 0;
		ssize_t n;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *a = buf, *next; a < buf + n; a = next) {
			next = a + strlen(a) + 1;
			if (next >= buf + n)
				break;
			shard_ok |= !strcmp(a, "--shard") &&
				    !strcmp(next, want_shard);
			tok_ok |= !strcmp(a, "--token") &&
				  !strcmp(next, want_tok);
		}
		if (shard_ok && tok_ok && strstr(buf, "rdps-server"))
			found = (pid_t)atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static int mode_stopshard(struct rdps_ctx *ctx, int argc, char **argv)
{
	enum { N = 4096 };
	struct rdps_table *t;
	float v[N], one[N];
	uint64_t t0, ms;
	pid_t shard;
	int ret;

	(void)argv;
	if (argc != 2)
		fail("usage: stopshard");
	if (cfg.workers != 1 || !strstr(cfg.shards, "tcp://") ||
	    !strchr(cfg.shards, ','))
		fail("stopshard needs one worker and 2+ shards over tcp");
	for (int i = 0; i < N; i++)
		one[i] = 1.0f;
	CHECK(rdps_table_open(ctx, "stop", N, RDPS_DTYPE_F32, RDPS_RULE_SUM,
			      0.0, &t));
	CHECK(rdps_push(t, 0, N, one));
	CHECK(rdps_pull(t, 0, N, v));
	if (v[N - 1] != 1.0f)
		fail("stopshard: pulled %g, want 1", (double)v[N - 1]);
	shard = find_shard(1);
	if (!shard)
		fail("stopshard: cannot find shard 1's rdps-server");
	if (kill(shard, SIGSTOP))
		fail("stopshard: SIGSTOP %d: %s", (int)shard, strerror(errno));
	t0 = now_ns();
	/* SIGSTOP takes effect after kill() returns. */
	while (!tool_proc_stopped(shard)) {
		if (now_ns() - t0 > 5000000000ull)
			fail("stopshard: shard 1 (pid %d) not stopped after 5 "
			     "s",
			     (int)shard);
		sched_yield();
	}
	/* Reads of a stopped tcp shard go unanswered: named, not a 30 s
	 * timeout. */
	t0 = now_ns();
	ret = rdps_pull(t, 0, N, v);
	ms = (now_ns() - t0) / 1000000;
	if (ret != -EHOSTDOWN || !strstr(rdps_errmsg(), "shard 1"))
		fail("stopshard: the pull gave %d (%s), want -EHOSTDOWN naming "
		     "shard 1",
		     ret, rdps_errmsg());
	if (ms > 10000)
		fail("stopshard: the pull took %" PRIu64 " ms to fail", ms);
	/* Its reads are still posted: the context must refuse to go on,
	 * at once, rather than wait again or touch the gone wait. */
	t0 = now_ns();
	ret = rdps_push(t, 0, N, one);
	if (ret >= 0 || !strstr(rdps_errmsg(), "destroy it"))
		fail("stopshard: a push after that gave %d (%s), want the "
		     "context refused",
		     ret, rdps_errmsg());
	if (now_ns() - t0 > 100000000ull)
		fail("stopshard: the refused push took %" PRIu64 " ms",
		     (now_ns() - t0) / 1000000);
	ret = rdps_clock(ctx);
	if (ret >= 0 || !strstr(rdps_errmsg(), "destroy it"))
		fail("stopshard: a clock after that gave %d (%s)", ret,
		     rdps_errmsg());
	rdps_ctx_destroy(ctx);
	kill(shard, SIGCONT);
	printf("OK stopshard: shard 1 named after %" PRIu64 " ms, then "
	       "refused at once\n",
	       ms);
	fflush(NULL);
	_exit(0);
}

/* --- asp ---------------------------------------------------------------- */

#define ASP_N 64
#define ASP_STALL_MIN_NS 200000000ull	/* the staller waits at least this */
#define ASP_STALL_MAX_NS 20000000000ull /* and gives up after this */

static int mode_asp(struct rdps_ctx *ctx, int argc, char **argv)
{
	int staller = cfg.workers - 1;
	volatile uint64_t *board;
	struct rdps_table *t;
	struct rdps_stats st;
	uint64_t iters, t0, stalled = 0;
	double v[ASP_N], d[ASP_N];
	char name[64];

	if (argc != 3)
		fail("usage: asp ITERS");
	if (cfg.model != RDPS_MODEL_ASP)
		fail("asp mode needs the asp model");
	if (cfg.workers < 2)
		fail("asp mode needs at least 2 workers");
	iters = arg_u64(argv[2], "iteration count");
	board = board_open(name, sizeof(name));
	CHECK(rdps_table_open(ctx, "asp", ASP_N, RDPS_DTYPE_F64, RDPS_RULE_SUM,
			      0.0, &t));
	for (int i = 0; i < ASP_N; i++)
		d[i] = 1.0;
	for (uint64_t it = 0; it < iters; it++) {
		CHECK(rdps_pull(t, 0, ASP_N, v));
		CHECK(rdps_push(t, 0, ASP_N, d));
		board_set(board, cfg.rank, it + 1);
		CHECK(rdps_clock(ctx));
		if (cfg.rank != staller || it != 0)
			continue;
		/*
		 * The staller, after one clock: wait (at least 200 ms) until
		 * every other worker has finished all of its clocks. Under
		 * BSP or SSP they could not: this would time out.
		 */
		t0 = now_ns();
		for (;;) {
			int all = 1;

			for (int j = 0; j < cfg.workers; j++)
				if (j != staller && board_get(board, j) < iters)
					all = 0;
			stalled = now_ns() - t0;
			if (all && stalled >= ASP_STALL_MIN_NS)
				break;
			if (stalled > ASP_STALL_MAX_NS)
				fail("asp: the others did not finish %" PRIu64
				     " clocks while worker %d stalled %.1f "
				     "s: their rdps_clock blocks",
				     iters, staller, (double)stalled / 1e9);
			usleep(1000);
		}
	}
	rdps_ctx_stats(ctx, &st);
	if (st.clocks != iters)
		fail("stats: %" PRIu64 " clocks, made %" PRIu64, st.clocks,
		     iters);
	/* The others ran while the staller was away: a clock that waited
	 * for the staller would have blocked for its whole stall, so their
	 * time blocked in rdps_clock stays below it. (A quarter of it, as
	 * before, was a timing bound: 200 tcp clocks on a loaded 2-core box
	 * came to 57 ms in one run of 25.) */
	if (cfg.rank != staller && st.clock_wait_ns >= ASP_STALL_MIN_NS)
		fail("asp: worker %d blocked %.1f ms in rdps_clock; asp "
		     "must not wait",
		     cfg.rank, (double)st.clock_wait_ns / 1e6);
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0) {
		shm_unlink(name);
		printf("OK asp: %" PRIu64 " clocks; worker 0 waited %.3f ms "
		       "in rdps_clock\n",
		       iters, (double)st.clock_wait_ns / 1e6);
	}
	return 0;
}

/* --- badinput ------------------------------------------------------------ */

#define BAD_N 100

static int mode_badinput(struct rdps_ctx *ctx, int argc, char **argv)
{
	static const char long_name[] = "a-table-name-of-32-characters-xx";
	struct rdps_table *t, *t2 = NULL;
	float v[BAD_N + 1], d[BAD_N];
	uint64_t idx[2];
	int n;

	if (argc != 2)
		fail("usage: badinput");
	_Static_assert(sizeof(long_name) - 1 > RDPS_TABLE_NAME_MAX, "name");
	CHECK(rdps_table_open(ctx, "bad", BAD_N, RDPS_DTYPE_F32, RDPS_RULE_SUM,
			      0.0, &t));
	/* The same name with another shape, type or rule. */
	EXPECT_ERR(EINVAL,
		   rdps_table_open(ctx, "bad", BAD_N + 1, RDPS_DTYPE_F32,
				   RDPS_RULE_SUM, 0.0, &t2));
	EXPECT_ERR(EINVAL, rdps_table_open(ctx, "bad", BAD_N, RDPS_DTYPE_F64,
					   RDPS_RULE_SUM, 0.0, &t2));
	EXPECT_ERR(EINVAL, rdps_table_open(ctx, "bad", BAD_N, RDPS_DTYPE_F32,
					   RDPS_RULE_SGD, 0.1, &t2));
	EXPECT_ERR(EINVAL,
		   rdps_table_open(ctx, long_name, BAD_N, RDPS_DTYPE_F32,
				   RDPS_RULE_SUM, 0.0, &t2));
	EXPECT_ERR(EINVAL, rdps_table_open(ctx, "", BAD_N, RDPS_DTYPE_F32,
					   RDPS_RULE_SUM, 0.0, &t2));
	if (t2)
		fail("a failed rdps_table_open set table_out");
	/* Ranges. */
	for (int i = 0; i < BAD_N; i++)
		d[i] = 1.0f;
	EXPECT_ERR(ERANGE, rdps_pull(t, BAD_N - 5, 10, v));
	EXPECT_ERR(ERANGE, rdps_pull(t, BAD_N, 1, v));
	EXPECT_ERR(ERANGE, rdps_pull(t, UINT64_MAX, 2, v));
	EXPECT_ERR(ERANGE, rdps_push(t, BAD_N - 5, 10, d));
	EXPECT_ERR(ERANGE, rdps_push(t, UINT64_MAX - 1, 4, d));
	idx[0] = 3;
	idx[1] = BAD_N;
	EXPECT_ERR(ERANGE, rdps_pull_sparse(t, idx, 2, v));
	EXPECT_ERR(ERANGE, rdps_push_sparse(t, idx, 2, d));
	idx[1] = UINT64_MAX;
	EXPECT_ERR(ERANGE, rdps_push_sparse(t, idx, 2, d));

	/* The job still works: every worker adds 1 everywhere, and once to
	 * element 7 with a sparse push. */
	CHECK(rdps_push(t, 0, BAD_N, d));
	idx[0] = 7;
	CHECK(rdps_push_sparse(t, idx, 1, d));
	CHECK(rdps_clock(ctx));
	drain(ctx);
	CHECK(rdps_barrier(ctx));
	CHECK(rdps_pull(t, 0, BAD_N, v));
	for (int i = 0; i < BAD_N; i++) {
		float want = (float)cfg.workers * (i == 7 ? 2.0f : 1.0f);

		if (v[i] != want)
			fail("badinput: element %d is %g after the bad calls, "
			     "want %g",
			     i, (double)v[i], (double)want);
	}
	/* A second table opens fine, and the first by name again too. */
	CHECK(rdps_table_open(ctx, "bad", BAD_N, RDPS_DTYPE_F32, RDPS_RULE_SUM,
			      0.0, &t2));
	n = rdps_pull(t2, 0, BAD_N, v);
	CHECK(n);
	if (v[7] != 2.0f * (float)cfg.workers)
		fail("badinput: reopened table has %g at 7", (double)v[7]);
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0)
		printf("OK badinput\n");
	return 0;
}

/* --- zcopy ---------------------------------------------------------------- */

#define ZC_N (1u << 18) /* 1 MiB of float32: several sub-slots a shard */

static int mode_zcopy(struct rdps_ctx *ctx, int argc, char **argv)
{
	struct rdps_table *t;
	float *reg, *plain, *got;
	uint64_t n;

	if (argc != 3)
		fail("usage: zcopy N");
	n = arg_u64(argv[2], "push count");
	reg = rdps_buf_alloc(ctx, ZC_N * sizeof(float));
	if (!reg)
		fail("rdps_buf_alloc: %s", rdps_errmsg());
	plain = xcalloc(ZC_N, sizeof(float));
	/* Small whole numbers: every sum is exact in float32. */
	for (uint32_t i = 0; i < ZC_N; i++) {
		reg[i] = (float)((i + (uint32_t)cfg.rank) % 7);
		plain[i] = (float)((i * 3u + (uint32_t)cfg.rank) % 5);
	}
	CHECK(rdps_table_open(ctx, "zcopy", ZC_N, RDPS_DTYPE_F32, RDPS_RULE_SUM,
			      0.0, &t));
	for (uint64_t i = 0; i < n; i++) {
		CHECK(rdps_push(t, 0, ZC_N, reg));
		CHECK(rdps_push(t, 0, ZC_N, plain));
		CHECK(rdps_clock(ctx));
	}
	drain(ctx);
	CHECK(rdps_barrier(ctx));
	if (cfg.rank == 0) {
		got = xcalloc(ZC_N, sizeof(float));
		CHECK(rdps_pull(t, 0, ZC_N, got));
		for (uint32_t i = 0; i < ZC_N; i++) {
			double want = 0;

			for (uint32_t r = 0; r < (uint32_t)cfg.workers; r++)
				want += (double)((i + r) % 7) +
					(double)((i * 3u + r) % 5);
			want *= (double)n;
			if ((double)got[i] != want)
				fail("zcopy: element %u is %g, want %g", i,
				     (double)got[i], want);
		}
		free(got);
		printf("OK zcopy: %d workers x %" PRIu64 " x 2 pushes of "
		       "1 MiB\n",
		       cfg.workers, n);
	}
	CHECK(rdps_barrier(ctx));
	rdps_buf_free(ctx, reg);
	free(plain);
	return 0;
}

/* --- cut (A-BSP) --------------------------------------------------------- */

static int mode_cut(struct rdps_ctx *ctx, int argc, char **argv)
{
	struct rdps_table *t;
	struct rdps_stats st;
	uint64_t rounds, polls = 0;
	double *wins, one = 1.0;

	if (argc != 3)
		fail("usage: cut ROUNDS");
	if (cfg.model != RDPS_MODEL_ABSP)
		fail("cut mode needs the absp model");
	rounds = arg_u64(argv[2], "round count");
	wins = calloc(rounds ? rounds : 1, sizeof(*wins));
	if (!wins)
		fail("out of memory");
	CHECK(rdps_table_open(ctx, "cut", rounds, RDPS_DTYPE_F64, RDPS_RULE_SUM,
			      0.0, &t));
	for (uint64_t c = 0; c < rounds; c++) {
		int cutter = (int)(c % (uint64_t)cfg.workers), r;

		/* Nobody cuts round c before everyone is past this check. */
		r = rdps_cut_poll(ctx);
		CHECK(r);
		if (r)
			fail("round %" PRIu64 ": cut seen before anyone cut "
			     "(a cut carried over?)",
			     c);
		CHECK(rdps_barrier(ctx));
		if (cfg.rank == cutter) {
			r = rdps_cut(ctx);
			CHECK(r);
			if (r != 1)
				fail("round %" PRIu64 ": the first rdps_cut "
				     "returned %d, want 1",
				     c, r);
			CHECK(rdps_push(t, c, 1, &one));
		} else {
			/* Bounded by the test's timeout, not by a sleep. */
			while (!(r = rdps_cut_poll(ctx))) {
				polls++;
				sched_yield(); /* share the VM's vCPUs */
			}
			CHECK(r);
			r = rdps_cut(ctx);
			CHECK(r);
			if (r != 0)
				fail("round %" PRIu64 ": rdps_cut after the "
				     "cut returned %d, want 0",
				     c, r);
		}
		CHECK(rdps_clock(ctx));
	}
	CHECK(rdps_barrier(ctx));
	rdps_ctx_stats(ctx, &st);
	{
		uint64_t want = 0;

		for (uint64_t c = 0; c < rounds; c++)
			want += c % (uint64_t)cfg.workers == (uint64_t)cfg.rank;
		if (st.cuts != want)
			fail("stats: %" PRIu64 " cuts, want %" PRIu64, st.cuts,
			     want);
	}
	if (cfg.rank == 0) {
		CHECK(rdps_pull(t, 0, rounds, wins));
		for (uint64_t c = 0; c < rounds; c++)
			if (wins[c] != 1.0)
				fail("round %" PRIu64 " has %g winners, want 1",
				     c, wins[c]);
		printf("OK cut: %" PRIu64 " rounds, one winner each (%" PRIu64
		       " polls here before a cut)\n",
		       rounds, polls);
	}
	free(wins);
	return 0;
}

/* Read n words at off of shard s's clock region; their sum in *sum. */
static void tree_read(struct rdps_ctx *ctx, unsigned s, uint64_t off,
		      unsigned n, uint64_t *w, uint64_t *sum)
{
	CHECK(wrk_clock_words(ctx, s, off, n, w));
	*sum = 0;
	for (unsigned i = 0; i < n; i++)
		*sum += w[i];
}

/* One node's counters (arrive[] summed, barrier, release, bar_release)
 * against what `members` arrivals per round must have left. */
static void tree_check_node(struct rdps_ctx *ctx, const char *what, unsigned s,
			    uint64_t off, uint64_t members, uint64_t iters,
			    uint64_t bars, int releases)
{
	size_t tail = offsetof(struct ps_clock_node, barrier);
	uint64_t w[64], sum, b[3], unused;

	tree_read(ctx, s, off, ctx->k, w, &sum);
	tree_read(ctx, s, off + tail, 3, b, &unused);
	if (sum != members * iters)
		fail("%s: %" PRIu64 " clock fetch-adds, want %" PRIu64
		     " (%" PRIu64 " a clock)",
		     what, sum, members * iters, members);
	if (b[0] != members * bars)
		fail("%s: %" PRIu64 " barrier fetch-adds, want %" PRIu64, what,
		     b[0], members * bars);
	/* The last barrier's releases may still be on their way. */
	if (releases && (b[1] != iters || b[2] + 1 < bars || b[2] > bars))
		fail("%s: released %" PRIu64 " clocks and %" PRIu64
		     " barriers, want %" PRIu64 " and %" PRIu64,
		     what, b[1], b[2], iters, bars);
}

static int mode_tree(struct rdps_ctx *ctx, int argc, char **argv)
{
	uint64_t iters, bars, want_g, groups, w[64], sum;
	unsigned workers = (unsigned)cfg.workers, S = ctx->nshards;

	if (argc != 5)
		fail("usage: tree ITERS BARRIERS FANIN");
	iters = arg_u64(argv[2], "clock count");
	bars = arg_u64(argv[3], "barrier count");
	want_g = arg_u64(argv[4], "fan-in");
	if (!bars)
		fail("tree mode needs at least one barrier");
	if (ctx->fanin != want_g)
		fail("the job runs fan-in %u, want %" PRIu64, ctx->fanin,
		     want_g);
	for (uint64_t i = 0; i < iters; i++)
		CHECK(rdps_clock(ctx));
	for (uint64_t i = 0; i < bars; i++)
		CHECK(rdps_barrier(ctx));
	if (want_g > 1 && ctx->tree_grp_adds != iters + bars)
		fail("%" PRIu64 " fetch-adds on the group's words, want one "
		     "a tick (%" PRIu64 ")",
		     ctx->tree_grp_adds, iters + bars);
	if (ctx->tree_tick_max > 2)
		fail("%u counter fetch-adds in one tick, want at most 2",
		     ctx->tree_tick_max);
	if (cfg.rank != 0)
		return 0;
	groups = want_g > 1 ? (workers + want_g - 1) / want_g : 0;
	/* The flat table on shard 0: W a clock, or untouched. */
	tree_read(ctx, 0, 0, ctx->k, w, &sum);
	if (sum != (groups ? 0 : workers * iters))
		fail("flat arrive[]: %" PRIu64 " fetch-adds, want %" PRIu64,
		     sum, groups ? 0 : workers * iters);
	tree_check_node(ctx, "the root", 0, ps_clock_node_off(workers, 0),
			groups, iters, bars, 0);
	for (uint64_t g = 0; g < groups; g++) {
		uint64_t size = workers - g * want_g < want_g
					? workers - g * want_g
					: want_g;
		char what[64];

		snprintf(what, sizeof(what), "group %" PRIu64, g);
		tree_check_node(
			ctx, what, (unsigned)(g % S),
			ps_clock_node_off(workers, (unsigned)(1 + g / S)), size,
			iters, bars, 1);
	}
	printf("OK tree: fan-in %" PRIu64 ", %" PRIu64
	       " root fetch-adds a clock for %u workers\n",
	       want_g, groups ? groups : workers, workers);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct rdps_ctx *ctx, int argc, char **argv);
} modes[] = {
	{"sum", mode_sum},	     {"bsp", mode_bsp},
	{"ssp", mode_ssp},	     {"asp", mode_asp},
	{"badinput", mode_badinput}, {"cut", mode_cut},
	{"lose", mode_lose},	     {"stopshard", mode_stopshard},
	{"zcopy", mode_zcopy},	     {"soak", mode_soak},
	{"tree", mode_tree},
};

static void usage_fail(void)
{
	fprintf(stderr, "ps_worker %d: usage: ps_worker", cfg.rank);
	for (size_t i = 0; i < RDPS_ARRAY_SIZE(modes); i++)
		fprintf(stderr, "%c%s", i ? '|' : ' ', modes[i].name);
	fprintf(stderr, " ARGS...\n");
	_exit(1);
}

int main(int argc, char **argv)
{
	struct rdps_ctx *ctx;
	size_t i;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rdps_config_default(&cfg);
	if (rdps_config_from_env(&cfg))
		fail("config from the environment: %s", rdps_errmsg());
	if (argc < 2)
		usage_fail();
	for (i = 0; i < RDPS_ARRAY_SIZE(modes); i++)
		if (!strcmp(argv[1], modes[i].name))
			break;
	if (i == RDPS_ARRAY_SIZE(modes)) {
		fprintf(stderr, "ps_worker %d: unknown mode '%s'\n", cfg.rank,
			argv[1]);
		usage_fail();
	}
	CHECK(rdps_ctx_create(&cfg, &ctx));
	rc = modes[i].run(ctx, argc, argv);
	rdps_ctx_destroy(ctx);
	return rc;
}
