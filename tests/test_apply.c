/* SPDX-License-Identifier: MIT */
/*
 * test_apply.c - a shard's update rules and BSP pending deltas
 * (src/server/apply.h), no transport: SUM, SGD, Adagrad, PUT and
 * PUT_IF_BETTER on f32 and f64 against values worked out by hand, values
 * stride bytes apart and unaligned as in sparse pairs, Adagrad's
 * accumulator, and the pending deltas and puts applied in worker order
 * whatever order the pushes arrived in.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ps_proto.h"
#include "server/apply.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct srv_slice slice(uint32_t dtype, uint32_t rule, double lr,
			      void *params, void *acc, uint64_t len)
{
	struct srv_slice sl = {
		.dtype = dtype,
		.rule = rule,
		.esize = ps_dtype_size(dtype),
		.lr = lr,
		.len = len,
		.params = params,
		.acc = acc,
	};

	return sl;
}

/* Element i of an f32 (esize 4) or f64 array, widened. */
static double elem(const void *a, size_t i, size_t esize)
{
	float f;
	double d;

	if (esize == 4) {
		memcpy(&f, (const char *)a + i * 4, 4);
		return f;
	}
	memcpy(&d, (const char *)a + i * 8, 8);
	return d;
}

/* Bit-exact: the rules are plain IEEE arithmetic, and BSP's promise is the
 * same bits on every run. */
static void check_bits(const void *got, const void *want, size_t n,
		       size_t esize)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp((const char *)got + i * esize,
			   (const char *)want + i * esize, esize))
			fail_msg("element %zu: got %.17g, want %.17g", i,
				 elem(got, i, esize), elem(want, i, esize));
}

static void check_f32(const float *got, const float *want, size_t n)
{
	check_bits(got, want, n, sizeof(float));
}

static void check_f64(const double *got, const double *want, size_t n)
{
	check_bits(got, want, n, sizeof(double));
}

static void check_near(double got, double want, double tol)
{
	if (!(fabs(got - want) <= tol))
		fail_msg("got %.17g, want %.17g within %g", got, want, tol);
}

/* SUM, dense: 11 f32 (a 32-byte vector step and a tail of 3) at offset 2
 * of 16; what lies outside [2, 13) stays. */
static void test_sum_f32(void **state)
{
	float p[16] = {-1, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1, -1, -1};
	static const float d[11] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f,
				    0.5f, 0.5f, 0.5f, 0.5f, -0.5f};
	static const float want[16] = {-1,   -1,   0.5f, 1.5f, 2.5f, 3.5f,
				       4.5f, 5.5f, 6.5f, 7.5f, 8.5f, 9.5f,
				       9.5f, -1,   -1,	 -1};
	struct srv_slice sl = slice(PS_DTYPE_F32, PS_RULE_SUM, 0, p, NULL, 16);

	(void)state;
	srv_apply(&sl, 2, 11, d, sizeof(float));
	check_f32(p, want, 16);
}

/* SUM, dense: 5 f64 (a vector step of 4 and a tail of 1) at offset 1. */
static void test_sum_f64(void **state)
{
	double p[6] = {1, 2, 3, 4, 5, 6};
	static const double d[5] = {0.25, -2, 0.0625, 100, -6};
	static const double want[6] = {1, 2.25, 1, 4.0625, 105, 0};
	struct srv_slice sl = slice(PS_DTYPE_F64, PS_RULE_SUM, 0, p, NULL, 6);

	(void)state;
	srv_apply(&sl, 1, 5, d, sizeof(double));
	check_f64(p, want, 6);
}

/* SGD: p -= lr * v. */
static void test_sgd_f32(void **state)
{
	float p[3] = {1, 2, -1};
	static const float d[3] = {2, -4, 1};
	static const float want[3] = {0, 4, -1.5};
	struct srv_slice sl = slice(PS_DTYPE_F32, PS_RULE_SGD, 0.5, p, NULL, 3);

	(void)state;
	srv_apply(&sl, 0, 3, d, sizeof(float));
	check_f32(p, want, 3);
}

static void test_sgd_f64(void **state)
{
	double p[4] = {0, 3, 0, 0};
	static const double d[2] = {8, -0.5};
	static const double want[4] = {0, 1, 0.125, 0};
	struct srv_slice sl =
		slice(PS_DTYPE_F64, PS_RULE_SGD, 0.25, p, NULL, 4);

	(void)state;
	srv_apply(&sl, 1, 2, d, sizeof(double));
	check_f64(p, want, 4);
}

/*
 * Adagrad, lr 0.5, p 1, two steps of 3 then 4: acc 9 then 25; p 1 - 0.5 *
 * 3 / 3 = 0.5, then 0.5 - 0.5 * 4 / 5 = 0.1. In f32 the 1e-8 is below half
 * an ulp of 9 and 25, so those are exact but for 0.4's rounding.
 */
static void test_adagrad_f32(void **state)
{
	float p[2] = {1, 7}, acc[2] = {0, 0};
	const float v1 = 3, v2 = 4;
	struct srv_slice sl =
		slice(PS_DTYPE_F32, PS_RULE_ADAGRAD, 0.5, p, acc, 2);

	(void)state;
	srv_apply(&sl, 0, 1, &v1, sizeof(float));
	assert_true(acc[0] == 9.0f);
	assert_true(p[0] == 0.5f);
	srv_apply(&sl, 0, 1, &v2, sizeof(float));
	assert_true(acc[0] == 25.0f);
	check_near(p[0], 0.1, 1e-7);
	/* The element beside it has neither moved nor accumulated. */
	assert_true(p[1] == 7.0f && acc[1] == 0.0f);
}

/*
 * The same in f64, where the 1e-8 counts: sqrt(9 + 1e-8) = 3 (1 +
 * 5.5556e-10), so p = 1 - 0.5 (1 - 5.5556e-10) = 0.50000000027778; then
 * sqrt(25 + 1e-8) = 5 (1 + 2e-10) and p -= 0.4 (1 - 2e-10), giving
 * 0.10000000035778.
 */
static void test_adagrad_f64(void **state)
{
	double p[1] = {1}, acc[1] = {0};
	const double v1 = 3, v2 = 4;
	struct srv_slice sl =
		slice(PS_DTYPE_F64, PS_RULE_ADAGRAD, 0.5, p, acc, 1);

	(void)state;
	srv_apply(&sl, 0, 1, &v1, sizeof(double));
	assert_true(acc[0] == 9.0);
	check_near(p[0], 0.50000000027778, 1e-13);
	srv_apply(&sl, 0, 1, &v2, sizeof(double));
	assert_true(acc[0] == 25.0);
	check_near(p[0], 0.10000000035778, 1e-13);
}

/* Sparse pairs {be64 index, value}: values 8 + esize bytes apart, the f32
 * ones at no 8-byte alignment. */
static void put_pair(unsigned char *b, size_t stride, unsigned i, const void *v,
		     size_t esize)
{
	memset(b + i * stride, 0xee, 8); /* the index: never read here */
	memcpy(b + i * stride + 8, v, esize);
}

static void test_strided_f32(void **state)
{
	unsigned char pairs[1 + 3 * 12];
	unsigned char *b = pairs + 1; /* odd address: no alignment at all */
	static const float v[3] = {1.5f, -2, 4};
	float p[3] = {10, 20, 30}, q[3] = {10, 20, 30}, a[3] = {0, 0, 0};
	static const float want_sum[3] = {11.5f, 18, 34};
	static const float want_sgd[3] = {9.25f, 21, 28};
	struct srv_slice sum = slice(PS_DTYPE_F32, PS_RULE_SUM, 0, p, NULL, 3);
	struct srv_slice sgd =
		slice(PS_DTYPE_F32, PS_RULE_SGD, 0.5, q, NULL, 3);
	struct srv_slice ada = slice(PS_DTYPE_F32, PS_RULE_ADAGRAD, 1, q, a, 3);

	(void)state;
	for (unsigned i = 0; i < 3; i++)
		put_pair(b, 12, i, &v[i], 4);
	srv_apply(&sum, 0, 3, b + 8, 12);
	check_f32(p, want_sum, 3);
	srv_apply(&sgd, 0, 3, b + 8, 12);
	check_f32(q, want_sgd, 3);
	/* Adagrad reads the same values: acc 2.25, 4, 16. */
	srv_apply(&ada, 0, 3, b + 8, 12);
	assert_true(a[0] == 2.25f && a[1] == 4.0f && a[2] == 16.0f);
}

static void test_strided_f64(void **state)
{
	unsigned char pairs[4 + 2 * 16];
	unsigned char *b = pairs + 4; /* 4-byte but not 8-byte aligned */
	static const double v[2] = {0.125, -3};
	double p[4] = {1, 1, 1, 1};
	static const double want[4] = {1, 1.125, -2, 1};
	struct srv_slice sl = slice(PS_DTYPE_F64, PS_RULE_SUM, 0, p, NULL, 4);

	(void)state;
	for (unsigned i = 0; i < 2; i++)
		put_pair(b, 16, i, &v[i], 8);
	srv_apply(&sl, 1, 2, b + 8, 16);
	check_f64(p, want, 4);
}

/* Pending deltas add up per worker and only the touched range is
 * applied; afterwards they are empty and zeroed. */
static void test_pend_add(void **state)
{
	float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	struct srv_slice sl = slice(PS_DTYPE_F32, PS_RULE_SGD, 2, p, NULL, 8);
	struct srv_pend pd = {NULL, 0, 0};
	static const float d1[2] = {1, 2}, d2[1] = {0.25f};
	unsigned char pair[12];
	const float v = -1;
	static const float want[8] = {0, 0, -2, -4.5f, 0, 0, 2, 0};

	(void)state;
	assert_int_equal(srv_pend_add(&pd, &sl, 2, 2, d1, 4), 0);
	assert_non_null(pd.buf);
	assert_int_equal(pd.dlo, 2);
	assert_int_equal(pd.dhi, 4);
	assert_int_equal(srv_pend_add(&pd, &sl, 3, 1, d2, 4), 0);
	put_pair(pair, 12, 0, &v, 4);
	assert_int_equal(srv_pend_add(&pd, &sl, 6, 1, pair + 8, 12), 0);
	assert_int_equal(pd.dlo, 2);
	assert_int_equal(pd.dhi, 7);
	/* Nothing reaches the values before the clock is complete. */
	for (int i = 0; i < 8; i++)
		assert_true(p[i] == 0.0f);
	srv_pend_apply(&sl, &pd, 1);
	check_f32(p, want, 8);
	assert_true(pd.dlo >= pd.dhi);
	for (int i = 0; i < 8; i++)
		assert_true(((float *)pd.buf)[i] == 0.0f);
	/* Empty: a second apply changes nothing. */
	srv_pend_apply(&sl, &pd, 1);
	check_f32(p, want, 8);
	free(pd.buf);
}

/*
 * Three workers push values whose float sum depends on the order of the
 * adds: in worker order (0 + 1e8 - 1e8) + 1 = 1, while in the arrival
 * order 2, 0, 1 a plain apply gives (0 + 1 + 1e8) - 1e8 = 0, because
 * 1e8 + 1 rounds to 1e8 in f32. Worker 0 pushes its 1e8 in two halves.
 * Every one of the six arrival orders of the workers must give 1.
 */
static const unsigned orders[6][3] = {
	{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0},
};

static void test_pend_order_f32(void **state)
{
	static const float half = 5e7f, big = -1e8f, one = 1;
	static const float want[1] = {1};

	(void)state;
	for (size_t o = 0; o < NELEM(orders); o++) {
		float p[1] = {0};
		struct srv_slice sl =
			slice(PS_DTYPE_F32, PS_RULE_SUM, 0, p, NULL, 1);
		struct srv_pend pend[3] = {{NULL, 0, 0}};

		for (int k = 0; k < 3; k++) {
			unsigned w = orders[o][k];

			if (w == 0) {
				srv_pend_add(&pend[0], &sl, 0, 1, &half, 4);
				srv_pend_add(&pend[0], &sl, 0, 1, &half, 4);
			} else {
				srv_pend_add(&pend[w], &sl, 0, 1,
					     w == 1 ? &big : &one, 4);
			}
		}
		srv_pend_apply(&sl, pend, 3);
		check_f32(p, want, 1);
		for (int w = 0; w < 3; w++)
			free(pend[w].buf);
	}
}

/* The same in f64 with 1e17, whose ulp is 16: 1e17 + 1 is 1e17. */
static void test_pend_order_f64(void **state)
{
	static const double vals[3] = {1e17, -1e17, 1};
	static const double want[2] = {0, 1};

	(void)state;
	for (size_t o = 0; o < NELEM(orders); o++) {
		double p[2] = {0, 0};
		struct srv_slice sl =
			slice(PS_DTYPE_F64, PS_RULE_SUM, 0, p, NULL, 2);
		struct srv_pend pend[3] = {{NULL, 0, 0}};

		for (int k = 0; k < 3; k++) {
			unsigned w = orders[o][k];

			srv_pend_add(&pend[w], &sl, 1, 1, &vals[w], 8);
		}
		srv_pend_apply(&sl, pend, 3);
		check_f64(p, want, 2);
		for (int w = 0; w < 3; w++)
			free(pend[w].buf);
	}
}

/* PUT overwrites, strided values too; PUT_IF_BETTER replaces a block
 * only if its key (first value) is at most the held one, NaN never. */
static void test_put_f32(void **state)
{
	unsigned char pairs[1 + 2 * 12];
	unsigned char *b = pairs + 1;
	float p[4] = {1, 2, 3, 4};
	static const float v[2] = {-7, 0.5f};
	static const float want1[4] = {1, -7, 0.5f, 4};
	static const float want2[4] = {1, -7, -7, 0.5f};
	struct srv_slice sl = slice(PS_DTYPE_F32, PS_RULE_PUT, 0, p, NULL, 4);

	(void)state;
	srv_apply(&sl, 1, 2, v, 4);
	check_f32(p, want1, 4);
	for (unsigned i = 0; i < 2; i++)
		put_pair(b, 12, i, &v[i], 4);
	srv_apply(&sl, 2, 2, b + 8, 12);
	check_f32(p, want2, 4);
}

static void test_put_if_better_f64(void **state)
{
	double p[4] = {0, 10, 20, 30};
	static const double worse[3] = {0.5, 1, 2}, better[3] = {-1, 11, 21};
	static const double tie[2] = {-1, 99}, nan_key[2] = {NAN, 5};
	static const double want1[4] = {-1, 11, 21, 30};
	static const double want2[4] = {-1, 99, 21, 30};
	struct srv_slice sl =
		slice(PS_DTYPE_F64, PS_RULE_PUT_IF_BETTER, 0, p, NULL, 4);
	static const double start[4] = {0, 10, 20, 30};

	(void)state;
	srv_apply(&sl, 0, 3, worse, 8); /* key 0.5 > 0: dropped whole */
	check_f64(p, start, 4);
	srv_apply(&sl, 0, 3, better, 8); /* key -1 <= 0: replaces all 3 */
	check_f64(p, want1, 4);
	srv_apply(&sl, 0, 2, tie, 8); /* -1 <= -1: a tie wins */
	check_f64(p, want2, 4);
	srv_apply(&sl, 0, 2, nan_key, 8);
	check_f64(p, want2, 4);
	srv_apply(&sl, 0, 0, better, 8); /* an empty block: nothing */
	check_f64(p, want2, 4);
}

/*
 * BSP puts land at the clock's end in worker order, whatever the arrival
 * order: worker 0 puts [0, 3) = 1, 2, 3, worker 1 puts element 1 = 20
 * then element 1 again = 21 (its last wins), worker 2 puts element 2 =
 * 30 and element 0 = 40 as sparse pairs. Expected 40, 21, 30, and
 * element 3 (never put) keeps its 9; element 1 keeps worker 1's 21 though
 * it lies inside worker 2's touched range [0, 3), whose buffer holds 0
 * there: only marked elements are put.
 */
static void test_pend_put_order(void **state)
{
	static const float w0[3] = {1, 2, 3}, w1a = 20, w1b = 21;
	static const float w2[2] = {30, 40};
	static const float want[4] = {40, 21, 30, 9};
	unsigned char pair[2 * 12];

	(void)state;
	put_pair(pair, 12, 0, &w2[0], 4);
	put_pair(pair, 12, 1, &w2[1], 4);
	for (size_t o = 0; o < NELEM(orders); o++) {
		float p[4] = {0, 0, 0, 9};
		struct srv_slice sl =
			slice(PS_DTYPE_F32, PS_RULE_PUT, 0, p, NULL, 4);
		struct srv_pend pend[3] = {{NULL, 0, 0}};

		for (int k = 0; k < 3; k++) {
			unsigned w = orders[o][k];

			if (w == 0) {
				srv_pend_add(&pend[0], &sl, 0, 3, w0, 4);
			} else if (w == 1) {
				srv_pend_add(&pend[1], &sl, 1, 1, &w1a, 4);
				srv_pend_add(&pend[1], &sl, 1, 1, &w1b, 4);
			} else {
				srv_pend_add(&pend[2], &sl, 2, 1, pair + 8, 12);
				srv_pend_add(&pend[2], &sl, 0, 1, pair + 20,
					     12);
			}
		}
		for (int i = 0; i < 4; i++)
			assert_true(p[i] == (i == 3 ? 9.0f : 0.0f));
		srv_pend_apply(&sl, pend, 3);
		check_f32(p, want, 4);
		/* Emptied: values and marks zero, a second apply is a no-op. */
		for (int w = 0; w < 3; w++)
			for (int i = 0; i < 4 * 4 + 4; i++)
				assert_int_equal(
					((unsigned char *)pend[w].buf)[i], 0);
		p[1] = 5;
		srv_pend_apply(&sl, pend, 3);
		assert_true(p[1] == 5.0f);
		for (int w = 0; w < 3; w++)
			free(pend[w].buf);
	}
}

/*
 * Keep-if-better under BSP: each worker's clock is one block keyed by its
 * first element, tried in worker order against what the earlier ones
 * left. Held key 0; worker 0 offers key -2 (wins: -2 <= 0), worker 1 key
 * -1 (loses to -2), worker 2 key -3 (wins). Expected: worker 2's block.
 * Worker 2 leaves element 2 unpushed: it keeps worker 0's value.
 */
static void test_pend_put_if_better(void **state)
{
	static const double b0[3] = {-2, 1, 1}, b1[3] = {-1, 2, 2};
	static const double b2[2] = {-3, 3};
	static const double want[3] = {-3, 3, 1};

	(void)state;
	for (size_t o = 0; o < NELEM(orders); o++) {
		double p[3] = {0, 0, 0};
		struct srv_slice sl = slice(PS_DTYPE_F64, PS_RULE_PUT_IF_BETTER,
					    0, p, NULL, 3);
		struct srv_pend pend[3] = {{NULL, 0, 0}};

		for (int k = 0; k < 3; k++) {
			unsigned w = orders[o][k];

			srv_pend_add(&pend[w], &sl, 0, w == 2 ? 2 : 3,
				     w == 0   ? b0
				     : w == 1 ? b1
					      : b2,
				     8);
		}
		srv_pend_apply(&sl, pend, 3);
		check_f64(p, want, 3);
		for (int w = 0; w < 3; w++)
			free(pend[w].buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sum_f32),
		cmocka_unit_test(test_sum_f64),
		cmocka_unit_test(test_sgd_f32),
		cmocka_unit_test(test_sgd_f64),
		cmocka_unit_test(test_adagrad_f32),
		cmocka_unit_test(test_adagrad_f64),
		cmocka_unit_test(test_strided_f32),
		cmocka_unit_test(test_strided_f64),
		cmocka_unit_test(test_pend_add),
		cmocka_unit_test(test_pend_order_f32),
		cmocka_unit_test(test_pend_order_f64),
		cmocka_unit_test(test_put_f32),
		cmocka_unit_test(test_put_if_better_f64),
		cmocka_unit_test(test_pend_put_order),
		cmocka_unit_test(test_pend_put_if_better),
	};

	return cmocka_run_group_tests_name("apply", tests, NULL, NULL);
}
