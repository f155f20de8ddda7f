/* SPDX-License-Identifier: MIT */
/*
 * sim_iter_worker.c - whole iterations as one worker of an rdps-launch job,
 * to measure the reference points rdps-sim is calibrated against
 * (tests/sim_measure.sh writes tests/data/sim_measured.csv from them):
 *
 *   rdps-launch -w 4 -s 2 -m bsp -- sim_iter_worker BYTES ITERS [busy]
 *
 * Each iteration: a dense pull of the whole table (BYTES of float32) into
 * rdps_buf_alloc() memory, under absp one rdps_cut_poll(), a dense push of
 * a delta of the same size, rdps_clock(). No compute. Then ITERS clock-only
 * iterations (the clock overhead). "busy": the worker polls busily (else
 * adaptive, the default). Prints one line:
 *   rank iter_us_median iter_us_p99 clock_us_median bytes_per_iter
 * Not a test by itself: it checks nothing but that every call succeeds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdps/rdps.h"
#include "base/rdps_base.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, uint64_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(uint64_t)(q * (double)(n - 1))] / 1000.0;
}

static int die(const char *what)
{
	fprintf(stderr, "sim_iter_worker: %s: %s\n", what, rdps_errmsg());
	return 1;
}

int main(int argc, char **argv)
{
	struct rdps_config cfg;
	struct rdps_ctx *ctx;
	struct rdps_table *t;
	struct rdps_stats st0, st1;
	uint64_t bytes, iters, n, *ns, *cns, warm = 20;
	float *buf, *delta;
	double med, p99, cmed;

	if (argc < 3 || argc > 4 || !(bytes = strtoull(argv[1], NULL, 0)) ||
	    !(iters = strtoull(argv[2], NULL, 0)) || bytes % 4 ||
	    (argc == 4 && strcmp(argv[3], "busy"))) {
		fprintf(stderr, "usage: sim_iter_worker BYTES ITERS [busy] "
				"(BYTES a multiple of 4, both > 0)\n");
		return 2;
	}
	n = bytes / 4;
	rdps_config_default(&cfg);
	if (rdps_config_from_env(&cfg))
		return die("config");
	if (argc == 4)
		cfg.poll_mode = RDPS_POLL_BUSY;
	if (rdps_ctx_create(&cfg, &ctx))
		return die("context");
	if (rdps_table_open(ctx, "sim", n, RDPS_DTYPE_F32, RDPS_RULE_SUM, 0,
			    &t))
		return die("table");
	buf = rdps_buf_alloc(ctx, bytes);
	delta = rdps_buf_alloc(ctx, bytes);
	ns = calloc(iters, sizeof(*ns));
	cns = calloc(iters, sizeof(*cns));
	if (!buf || !delta || !ns || !cns)
		return die("memory");
	for (uint64_t i = 0; i < n; i++)
		delta[i] = 1.0f;
	for (uint64_t i = 0; i < warm + iters; i++) {
		uint64_t t0 = rdps_now_ns();

		if (i == warm)
			rdps_ctx_stats(ctx, &st0);
		if (rdps_pull(t, 0, n, buf))
			return die("pull");
		if (cfg.model == RDPS_MODEL_ABSP && rdps_cut_poll(ctx) < 0)
			return die("cut poll");
		if (rdps_push(t, 0, n, delta))
			return die("push");
		if (rdps_clock(ctx))
			return die("clock");
		if (i >= warm)
			ns[i - warm] = rdps_now_ns() - t0;
	}
	rdps_ctx_stats(ctx, &st1);
	for (uint64_t i = 0; i < iters; i++) {
		uint64_t t0 = rdps_now_ns();

		if (rdps_clock(ctx))
			return die("clock");
		cns[i] = rdps_now_ns() - t0;
	}
	med = pct_us(ns, iters, 0.5);
	p99 = pct_us(ns, iters, 0.99);
	cmed = pct_us(cns, iters, 0.5);
	printf("%u %.3f %.3f %.3f %" PRIu64 "\n", cfg.rank, med, p99, cmed,
	       (st1.bytes_pulled + st1.bytes_pushed - st0.bytes_pulled -
		st0.bytes_pushed) /
		       iters);
	fflush(stdout);
	free(ns);
	free(cns);
	rdps_buf_free(ctx, buf);
	rdps_buf_free(ctx, delta);
	rdps_ctx_destroy(ctx);
	return 0;
}
