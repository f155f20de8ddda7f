/* SPDX-License-Identifier: MIT */
/*
 * test_perf_stats.c - rdps_perf_stats() and the small pure parts of the
 * perf library (op names, parameter checks, the ping's sequence word).
 *
 * Every expected value is worked out by hand in the comment next to it,
 * from the definitions in perf.h: median is the mean of the middle two for
 * even n; stdev is the sample deviation (divide by n - 1, 0 for n == 1);
 * p99 and p99.9 are nearest-rank: the sample of rank ceil(q * n), 1-based,
 * in sorted order.
 */
#include <math.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "perf.h"
#include "rdps_base.h"
#include "test_check.h"

struct want {
	double min, median, avg, stdev, p99, p999, max;
};

static int near(double got, double want)
{
	return fabs(got - want) <= 1e-12 * (fabs(want) > 1 ? fabs(want) : 1);
}

static void check_stats(double *s, size_t n, const struct want *w,
			const char *what)
{
	struct rdps_perf_result r;

	memset(&r, 0, sizeof(r));
	rdps_perf_stats(s, n, &r);
	CHECK(near(r.min_us, w->min), "%s: min %.15g, want %.15g", what,
	      r.min_us, w->min);
	CHECK(near(r.median_us, w->median), "%s: median %.15g, want %.15g",
	      what, r.median_us, w->median);
	CHECK(near(r.avg_us, w->avg), "%s: avg %.15g, want %.15g", what,
	      r.avg_us, w->avg);
	CHECK(near(r.stdev_us, w->stdev), "%s: stdev %.15g, want %.15g", what,
	      r.stdev_us, w->stdev);
	CHECK(near(r.p99_us, w->p99), "%s: p99 %.15g, want %.15g", what,
	      r.p99_us, w->p99);
	CHECK(near(r.p999_us, w->p999), "%s: p99.9 %.15g, want %.15g", what,
	      r.p999_us, w->p999);
	CHECK(near(r.max_us, w->max), "%s: max %.15g, want %.15g", what,
	      r.max_us, w->max);
}

static void t_one_sample(void **state)
{
	double s[] = {5.25};
	/* Everything is the sample; no spread from one value. */
	struct want w = {5.25, 5.25, 5.25, 0, 5.25, 5.25, 5.25};

	(void)state;
	check_stats(s, 1, &w, "one sample");
}

static void t_odd(void **state)
{
	double s[] = {9, 1, 5, 3, 7};
	/*
	 * Sorted 1 3 5 7 9. Median: the 3rd, 5. Mean 25 / 5 = 5.
	 * Deviations -4 -2 0 2 4, squares 16 4 0 4 16 = 40; / (5 - 1) = 10;
	 * stdev sqrt(10) = 3.1622776601683795.
	 * p99: ceil(0.99 * 5) = ceil(4.95) = rank 5 -> 9; p99.9 likewise.
	 */
	struct want w = {1, 5, 5, 3.1622776601683795, 9, 9, 9};

	(void)state;
	check_stats(s, 5, &w, "odd count");
	/* The samples come back sorted (perf.h: "sorts in place"). */
	for (size_t i = 0; i < 5; i++)
		CHECK(s[i] == (double)(2 * i + 1), "s[%zu] = %g after sort", i,
		      s[i]);
}

static void t_even(void **state)
{
	double s[] = {4, 1, 3, 2};
	/*
	 * Sorted 1 2 3 4. Median (2 + 3) / 2 = 2.5. Mean 10 / 4 = 2.5.
	 * Squares 2.25 0.25 0.25 2.25 = 5; / 3; stdev sqrt(5/3) =
	 * 1.2909944487358056. p99: ceil(3.96) = 4 -> 4.
	 */
	struct want w = {1, 2.5, 2.5, 1.2909944487358056, 4, 4, 4};

	(void)state;
	check_stats(s, 4, &w, "even count");
}

static void t_two_fractional(void **state)
{
	double s[] = {0.75, 0.25};
	/*
	 * Median and mean (0.25 + 0.75) / 2 = 0.5: not truncated to an
	 * integer. Squares 0.0625 + 0.0625 = 0.125, / 1, stdev sqrt(0.125)
	 * = 0.3535533905932738. p99: ceil(1.98) = 2 -> 0.75.
	 */
	struct want w = {0.25, 0.5, 0.5, 0.3535533905932738, 0.75, 0.75, 0.75};

	(void)state;
	check_stats(s, 2, &w, "two fractional samples");
}

static void t_identical(void **state)
{
	double s[7];
	/* Seven equal samples: no spread at all, not a rounding residue. */
	struct want w = {2.5, 2.5, 2.5, 0, 2.5, 2.5, 2.5};
	struct rdps_perf_result r;

	(void)state;
	for (size_t i = 0; i < 7; i++)
		s[i] = 2.5;
	check_stats(s, 7, &w, "identical samples");
	for (size_t i = 0; i < 7; i++)
		s[i] = 0.1; /* not exact in binary: the sum is not 7 * 0.1 */
	rdps_perf_stats(s, 7, &r);
	CHECK(r.stdev_us >= 0 && r.stdev_us < 1e-15,
	      "stdev of identical 0.1s is %g", r.stdev_us);
	CHECK(r.median_us == 0.1 && r.min_us == 0.1 && r.max_us == 0.1,
	      "order statistics of identical samples changed");
}

/* 1..n in a scrambled order (i * 7919 mod n is a permutation for n not a
 * multiple of 7919). */
static double *scrambled(size_t n)
{
	double *s = malloc(n * sizeof(*s));

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		s[i] = (double)((i * 7919) % n + 1);
	return s;
}

static void t_ranks_100(void **state)
{
	double *s = scrambled(100);
	/*
	 * 1..100: median (50 + 51) / 2 = 50.5, mean 5050 / 100 = 50.5.
	 * Sample variance of 1..n is n(n+1)/12 = 100 * 101 / 12 =
	 * 841.6666..., stdev 29.011491975882016.
	 * p99: rank ceil(99) = 99 -> 99 (not the max). p99.9: ceil(99.9) =
	 * 100 -> 100.
	 */
	struct want w = {1, 50.5, 50.5, 29.011491975882016, 99, 100, 100};

	(void)state;
	check_stats(s, 100, &w, "1..100");
	free(s);
}

static void t_ranks_1000(void **state)
{
	double *s = scrambled(1000);
	/*
	 * 1..1000: median 500.5, mean 500.5, variance 1000 * 1001 / 12 =
	 * 83416.666..., stdev 288.8194360957494.
	 * p99: ceil(990) = 990 -> 990; p99.9: ceil(999) = 999 -> 999. Both
	 * land exactly on an integer rank, where an off-by-one shows.
	 */
	struct want w = {1, 500.5, 500.5, 288.8194360957494, 990, 999, 1000};

	(void)state;
	check_stats(s, 1000, &w, "1..1000");
	free(s);
}

static void t_ranks_between(void **state)
{
	double *s = scrambled(250);
	/*
	 * 1..250: median (125 + 126) / 2 = 125.5, mean 125.5, variance
	 * 250 * 251 / 12 = 5229.1666..., stdev 72.31297716638879.
	 * p99: ceil(247.5) = 248 -> 248; p99.9: ceil(249.75) = 250 -> 250.
	 */
	struct want w = {1, 125.5, 125.5, 72.31297716638879, 248, 250, 250};

	(void)state;
	check_stats(s, 250, &w, "1..250");
	free(s);
}

static void t_outlier(void **state)
{
	double s[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1001};
	/*
	 * n = 10: one outlier moves the mean, not the median.
	 * Mean (9 + 1001) / 10 = 101. Deviations: nine of -100, one of 900;
	 * squares 9 * 10000 + 810000 = 900000; / 9 = 100000; stdev
	 * sqrt(1e5) = 316.22776601683796.
	 * p99: ceil(9.9) = 10 -> 1001.
	 */
	struct want w = {1, 1, 101, 316.22776601683796, 1001, 1001, 1001};

	(void)state;
	check_stats(s, 10, &w, "outlier");
}

static void t_op_names(void **state)
{
	static const char *const names[] = {"read", "write",  "fadd",
					    "cas",  "memcpy", "pingpong"};
	enum rdps_perf_op op;

	(void)state;
	for (int i = 0; i < 6; i++) {
		CHECK(!strcmp(rdps_perf_op_name((enum rdps_perf_op)i),
			      names[i]),
		      "name of op %d is %s", i,
		      rdps_perf_op_name((enum rdps_perf_op)i));
		op = (enum rdps_perf_op)99;
		CHECK(rdps_perf_op_parse(names[i], &op) == 0 && (int)op == i,
		      "parse '%s' gave %d", names[i], (int)op);
	}
	CHECK(rdps_perf_op_parse("cswap", &op) == 0 && op == RDPS_PERF_CAS,
	      "cswap is an alias of cas");
	op = RDPS_PERF_WRITE;
	rdps_clear_error();
	CHECK(rdps_perf_op_parse("READ", &op) == -EINVAL,
	      "op names are case-sensitive");
	CHECK(op == RDPS_PERF_WRITE, "out written on failure");
	CHECK(strstr(rdps_errmsg(), "READ"), "errmsg does not name the op: %s",
	      rdps_errmsg());
	CHECK(rdps_perf_op_parse("", &op) == -EINVAL, "empty op accepted");
	CHECK(!strcmp(rdps_perf_op_name((enum rdps_perf_op)42), "?"),
	      "unknown op has a name");
}

static void t_params_check(void **state)
{
	struct rdps_perf_params p;

	(void)state;
	rdps_perf_params_default(&p);
	CHECK(p.op == RDPS_PERF_READ && p.size == 8 && p.iters == 10000 &&
		      p.warmup == 1000 && p.outstanding == 0 &&
		      p.timeout_ms == 10000,
	      "defaults differ from perf.h");
	CHECK(rdps_perf_params_check(&p) == 0, "defaults rejected: %s",
	      rdps_errmsg());

	p.size = RDPS_PERF_MAX_SIZE;
	CHECK(rdps_perf_params_check(&p) == 0, "4 MiB rejected");
	p.size = RDPS_PERF_MAX_SIZE + 1;
	CHECK(rdps_perf_params_check(&p) == -EINVAL, "4 MiB + 1 accepted");
	p.size = RDPS_PERF_MIN_SIZE - 1;
	CHECK(rdps_perf_params_check(&p) == -EINVAL, "7 bytes accepted");

	rdps_perf_params_default(&p);
	p.op = RDPS_PERF_FADD;
	p.size = 16;
	rdps_clear_error();
	CHECK(rdps_perf_params_check(&p) == -EINVAL, "16-byte fadd accepted");
	CHECK(*rdps_errmsg(), "no explanation for a 16-byte fadd");
	p.op = RDPS_PERF_CAS;
	CHECK(rdps_perf_params_check(&p) == -EINVAL, "16-byte cas accepted");
	p.size = 8;
	CHECK(rdps_perf_params_check(&p) == 0, "8-byte cas rejected");
	p.op = RDPS_PERF_PINGPONG;
	CHECK(rdps_perf_params_check(&p) == 0, "8-byte pingpong rejected");
	p.size = 16;
	CHECK(rdps_perf_params_check(&p) == -EINVAL,
	      "16-byte pingpong accepted");
	p.size = 8;
	p.outstanding = 4;
	rdps_clear_error();
	CHECK(rdps_perf_params_check(&p) == -EINVAL,
	      "pingpong with 4 outstanding accepted");
	CHECK(strstr(rdps_errmsg(), "-b"),
	      "the pingpong refusal does not name -b: %s", rdps_errmsg());

	rdps_perf_params_default(&p);
	p.iters = 0;
	CHECK(rdps_perf_params_check(&p) == -EINVAL, "0 iterations accepted");
	rdps_perf_params_default(&p);
	p.timeout_ms = 0;
	CHECK(rdps_perf_params_check(&p) == -EINVAL, "timeout 0 accepted");
	rdps_perf_params_default(&p);
	p.op = (enum rdps_perf_op)17;
	CHECK(rdps_perf_params_check(&p) == -EINVAL, "op 17 accepted");
}

/* The floor reference runs with no connection: every exchange completes
 * (the echo thread answers each sequence value once), the samples are
 * positive and ordered, and a stop request ends it with -EINTR. */
static void t_pingpong_run(void **state)
{
	static volatile sig_atomic_t stop = 1;
	struct rdps_perf_params p;
	struct rdps_perf_result r;
	int ret;

	(void)state;
	rdps_perf_params_default(&p);
	p.op = RDPS_PERF_PINGPONG;
	p.iters = 300;
	p.warmup = 30;
	rdps_clear_error();
	ret = rdps_perf_run(NULL, &p, &r);
	CHECK(ret == 0, "pingpong run: %d (%s)", ret, rdps_errmsg());
	CHECK(r.op == RDPS_PERF_PINGPONG && r.iters == 300 && r.size == 8,
	      "result names op %d, %llu iterations, %zu B", (int)r.op,
	      (unsigned long long)r.iters, r.size);
	CHECK(r.min_us > 0 && r.min_us <= r.median_us &&
		      r.median_us <= r.max_us,
	      "samples min %g median %g max %g", r.min_us, r.median_us,
	      r.max_us);
	p.stop = &stop;
	p.iters = 1000000;
	rdps_clear_error();
	ret = rdps_perf_run(NULL, &p, &r);
	CHECK(ret == -EINTR, "stopped pingpong run returned %d", ret);
}

/*
 * The word as a reader sees it while a write of next over old lands in
 * address order, its first k bytes (the low ones, little-endian) new.
 */
static uint64_t landed(uint64_t old, uint64_t next, unsigned k)
{
	uint8_t o[8], n[8];
	uint64_t v;

	memcpy(o, &old, 8);
	memcpy(n, &next, 8);
	memcpy(o, n, k);
	memcpy(&v, o, 8);
	return v;
}

static void t_ping_word(void **state)
{
	/* Pairs of (size, counter) before and after: the first ping, sizes
	 * that change between pings, counters that carry into higher bytes,
	 * and the wrap from the largest counter back to 1. */
	static const struct {
		size_t size0, size1;
		uint64_t c0;
	} cases[] = {
		{0, 8, 0},
		{0, 4u << 20, 0},
		{8, 8, 1},
		{8, 16, 7},
		{256, 520, 41},
		{8, 4u << 20, 0xff},
		{4u << 20, 8, 0xffff},
		{16, 8, 0xffffff},
		{8, 24, 0xffffffff},
		{8, 8, RDPS_PERF_SEQ_MAX},
	};
	uint64_t prev, next, v;
	size_t size;
	int ret;

	(void)state;
	CHECK(rdps_perf_ping_next(0) == 1, "first counter");
	CHECK(rdps_perf_ping_next(RDPS_PERF_SEQ_MAX) == 1,
	      "counter after the largest is %llu, want 1",
	      (unsigned long long)rdps_perf_ping_next(RDPS_PERF_SEQ_MAX));
	for (size_t i = 0; i < RDPS_ARRAY_SIZE(cases); i++) {
		prev = cases[i].size0 ? rdps_perf_ping_word(cases[i].size0,
							    cases[i].c0)
				      : 0;
		next = rdps_perf_ping_word(cases[i].size1,
					   rdps_perf_ping_next(cases[i].c0));
		/* Every half-landed word is "not yet": neither a ping of
		 * the wrong size nor an error. */
		for (unsigned k = 0; k < 8; k++) {
			v = landed(prev, next, k);
			if (v == next)
				continue;
			size = 12345;
			rdps_clear_error();
			ret = rdps_perf_ping_check(prev, v, &size);
			CHECK(ret == 0,
			      "case %zu: word 0x%016llx with %u of 8 bytes "
			      "landed was taken as a ping (%d, size %zu, %s)",
			      i, (unsigned long long)v, k, ret, size,
			      rdps_errmsg());
		}
		size = 0;
		ret = rdps_perf_ping_check(prev, next, &size);
		CHECK(ret == 1 && size == cases[i].size1,
		      "case %zu: the whole ping gave %d, size %zu, want 1, "
		      "%zu",
		      i, ret, size, cases[i].size1);
		CHECK(rdps_perf_ping_check(next, next, &size) == 0,
		      "case %zu: the same ping taken twice", i);
	}
	/* The next counter with a size out of range is another program. */
	prev = rdps_perf_ping_word(8, 5);
	rdps_clear_error();
	CHECK(rdps_perf_ping_check(prev, rdps_perf_ping_word(4, 6), &size) ==
		      -EPROTO,
	      "a ping of 4 bytes accepted");
	CHECK(strstr(rdps_errmsg(), "4 bytes") &&
		      strstr(rdps_errmsg(), "same rdps-perf"),
	      "errmsg: %s", rdps_errmsg());
	CHECK(rdps_perf_ping_check(prev, rdps_perf_ping_word(5u << 20, 6),
				   &size) == -EPROTO,
	      "a ping of 5 MiB accepted");
	CHECK(rdps_perf_ping_check(prev, rdps_perf_ping_word(4, 9), &size) == 0,
	      "a word with a later counter is not the next ping");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_one_sample),
		cmocka_unit_test(t_odd),
		cmocka_unit_test(t_even),
		cmocka_unit_test(t_two_fractional),
		cmocka_unit_test(t_identical),
		cmocka_unit_test(t_ranks_100),
		cmocka_unit_test(t_ranks_1000),
		cmocka_unit_test(t_ranks_between),
		cmocka_unit_test(t_outlier),
		cmocka_unit_test(t_op_names),
		cmocka_unit_test(t_pingpong_run),
		cmocka_unit_test(t_params_check),
		cmocka_unit_test(t_ping_word),
	};

	return cmocka_run_group_tests_name("perf statistics", tests, NULL,
					   NULL);
}
