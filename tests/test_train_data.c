/* SPDX-License-Identifier: MIT */
/*
 * test_train_data.c - rdps-train's data parsers, loaders and generators,
 * the straggler SPEC parser and the SGD steps (tools/train/), as pure
 * logic: no parameter server.
 *
 * Parser errors must be one line "NAME:LINE:COL: what (how)" that points
 * at the offending token, and a failed parse must leave an empty struct.
 * Expected values are worked out by hand from the fixtures in
 * tests/data/train/ and the strings here.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data.h"
#include "lasso.h"
#include "load.h"
#include "model.h"
#include "report.h"
#include "spec.h"
#include "test_check.h"

#ifndef TRAIN_DATA
#error "TRAIN_DATA (the fixture directory) must be defined"
#endif

static char err[512];

static void check_close(double got, double want)
{
	CHECK(fabs(got - want) < 1e-12, "got %.17g, want %.17g", got, want);
}

/* Parse s (as file "mem"): the return code; err holds the message.
 * lr_len: the length of the input when it holds a NUL (0: strlen). */
static size_t lr_len;

static int lr_parse(const char *s, struct trn_lr_data *d)
{
	memset(err, 0, sizeof(err));
	return trn_libsvm_parse(s, lr_len ? lr_len : strlen(s), "mem", d, err,
				sizeof(err));
}

static int mf_parse(const char *s, struct trn_mf_data *d)
{
	memset(err, 0, sizeof(err));
	return trn_ratings_parse(s, strlen(s), "mem", d, err, sizeof(err));
}

/* A failed parse: -EINVAL, the message starts with want (file:line:col
 * and the complaint), is one line, and the output is empty. */
static void lr_bad(const char *in, const char *want)
{
	struct trn_lr_data d;

	memset(&d, 0xab, sizeof(d)); /* the parser must clear it */
	CHECK(lr_parse(in, &d) == -EINVAL, "'%s' parsed", in);
	CHECK(!strncmp(err, want, strlen(want)),
	      "input '%s': error '%s', want it to start with '%s'", in, err,
	      want);
	CHECK(!strchr(err, '\n'), "error '%s' has a newline", err);
	CHECK(strchr(err, '(') != NULL, "error '%s' says no fix", err);
	CHECK(d.n == 0 && d.off == NULL && d.idx == NULL && d.y == NULL,
	      "output not empty after a failed parse of '%s'", in);
	trn_lr_data_free(&d);
}

static void mf_bad(const char *in, const char *want)
{
	struct trn_mf_data d;

	memset(&d, 0xab, sizeof(d));
	CHECK(mf_parse(in, &d) == -EINVAL, "'%s' parsed", in);
	CHECK(!strncmp(err, want, strlen(want)),
	      "input '%s': error '%s', want it to start with '%s'", in, err,
	      want);
	CHECK(!strchr(err, '\n'), "error '%s' has a newline", err);
	CHECK(d.n == 0 && d.user == NULL && d.rating == NULL,
	      "output not empty after a failed parse of '%s'", in);
	trn_mf_data_free(&d);
}

static void test_libsvm_good_file(void **state)
{
	struct trn_lr_data d;
	/* good.libsvm: "+1 1:0.5 3:-2 10:1e-1", "-1 2:1", an empty line, a
	 * comment line, "0 4:0.25 # trailing comment\r", "1.0". */
	static const size_t off[] = {0, 3, 4, 5, 5};
	static const uint32_t idx[] = {1, 3, 10, 2, 4};
	static const float val[] = {0.5f, -2.0f, 0.1f, 1.0f, 0.25f};
	static const float y[] = {1, -1, -1, 1};

	(void)state;
	CHECK(trn_libsvm_load(TRAIN_DATA "/good.libsvm", &d, err,
			      sizeof(err)) == 0,
	      "load failed: %s", err);
	CHECK(d.n == 4, "n %zu, want 4", d.n);
	CHECK(d.nnz == 5, "nnz %zu, want 5", d.nnz);
	CHECK(d.dim == 11, "dim %u, want 11 (largest index 10 + 1)", d.dim);
	for (size_t i = 0; i < 5; i++) {
		CHECK(d.idx[i] == idx[i], "idx[%zu] %u, want %u", i, d.idx[i],
		      idx[i]);
		CHECK(d.val[i] == val[i], "val[%zu] %g, want %g", i, d.val[i],
		      val[i]);
		CHECK(d.off[i] == off[i], "off[%zu] %zu", i, d.off[i]);
	}
	for (size_t i = 0; i < 4; i++)
		CHECK(d.y[i] == y[i], "y[%zu] %g, want %g", i, d.y[i], y[i]);
	trn_lr_data_free(&d);
	trn_lr_data_free(&d); /* twice is fine: it was emptied */
}

static void test_libsvm_bad_file(void **state)
{
	struct trn_lr_data d;
	const char *want = "/bad-order.libsvm:2:8: feature index 2 after 2 ";

	(void)state;
	CHECK(trn_libsvm_load(TRAIN_DATA "/bad-order.libsvm", &d, err,
			      sizeof(err)) == -EINVAL,
	      "bad-order.libsvm loaded");
	CHECK(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
	CHECK(!strncmp(err, TRAIN_DATA, strlen(TRAIN_DATA)),
	      "error '%s' does not name the file", err);
	CHECK(trn_libsvm_load(TRAIN_DATA "/no-such-file", &d, err,
			      sizeof(err)) == -ENOENT,
	      "a missing file loaded");
	CHECK(strstr(err, "no-such-file: cannot open") != NULL,
	      "missing file error '%s'", err);
	trn_lr_data_free(&d);
}

static void test_libsvm_errors(void **state)
{
	(void)state;
	lr_bad("2 1:1\n", "mem:1:1: bad label '2'");
	lr_bad("1 1:1\nfoo 1:1\n", "mem:2:1: bad label 'foo'");
	lr_bad("1 0:1\n", "mem:1:3: bad feature index '0'");
	lr_bad("1 99999999999:1\n", "mem:1:3: bad feature index '99999999999'");
	lr_bad("1 16777217:1\n", "mem:1:3: bad feature index '16777217'");
	lr_bad("1 -3:1\n", "mem:1:3: bad feature index '-3'");
	lr_bad("1 1:abc\n", "mem:1:5: bad value 'abc' of feature 1");
	lr_bad("1 1:nan\n", "mem:1:5: bad value 'nan'");
	lr_bad("1 1:1e999\n", "mem:1:5: bad value '1e999'");
	lr_bad("1 1:\n", "mem:1:5: bad value ''");
	lr_bad("1 1:1 5\n", "mem:1:7: expected INDEX:VALUE, got '5'");
	lr_bad("1 3:1 2:1\n", "mem:1:7: feature index 2 after 3");
	lr_len = 13;
	lr_bad("1 1:1\n1 1:1\0\n", "mem:2:6: unexpected byte 0x00");
	lr_len = 0;
	lr_bad("1\t1:1\t\t2:x", "mem:1:10: bad value 'x'");
	lr_bad("1 qid:3 1:1\n", "mem:1:3: bad feature index 'qid'");
	/* CR-only line ends: text, but one long line; say how to convert. */
	lr_bad("1 1:1\r-1 2:1\r", "mem:1:6: carriage return inside a line: "
				  "the lines end in CR only");
}

/* The length is the limit, not the NUL: "1 1:12345" cut at 7 bytes. */
static void test_libsvm_bounds(void **state)
{
	struct trn_lr_data d;
	char *buf = malloc(7);

	(void)state;
	memcpy(buf, "1 1:123", 7); /* no NUL: ASan sees any overread */
	CHECK(trn_libsvm_parse(buf, 7, "cut", &d, err, sizeof(err)) == 0,
	      "parse failed: %s", err);
	CHECK(d.n == 1 && d.nnz == 1 && d.val[0] == 123.0f, "n %zu nnz %zu",
	      d.n, d.nnz);
	trn_lr_data_free(&d);
	free(buf);
	/* Empty input: no samples, a valid empty set. */
	CHECK(trn_libsvm_parse("", 0, "empty", &d, err, sizeof(err)) == 0,
	      "empty failed");
	CHECK(d.n == 0 && d.dim == 1, "empty: n %zu dim %u", d.n, d.dim);
	trn_lr_data_free(&d);
}

static void test_ratings_good_file(void **state)
{
	struct trn_mf_data d;

	(void)state;
	/* "0 0 4.5", "1 2 3 881250949", "", "# comment",
	 * "2\t1\t-1.25\r". */
	CHECK(trn_ratings_load(TRAIN_DATA "/good.ratings", &d, err,
			       sizeof(err)) == 0,
	      "load failed: %s", err);
	CHECK(d.n == 3, "n %zu", d.n);
	CHECK(d.users == 3 && d.items == 3, "users %u items %u", d.users,
	      d.items);
	CHECK(d.user[0] == 0 && d.item[0] == 0 && d.rating[0] == 4.5f,
	      "rating 0");
	CHECK(d.user[1] == 1 && d.item[1] == 2 && d.rating[1] == 3.0f,
	      "rating 1");
	CHECK(d.user[2] == 2 && d.item[2] == 1 && d.rating[2] == -1.25f,
	      "rating 2");
	trn_mf_data_free(&d);
	CHECK(trn_ratings_load(TRAIN_DATA "/bad-item.ratings", &d, err,
			       sizeof(err)) == -EINVAL,
	      "bad-item.ratings loaded");
	CHECK(strstr(err, "/bad-item.ratings:2:3: bad item id 'x'") != NULL,
	      "error '%s'", err);
}

static void test_ratings_errors(void **state)
{
	(void)state;
	mf_bad("1 2\n", "mem:1:4: missing RATING");
	mf_bad("7\n", "mem:1:2: missing ITEM");
	mf_bad("1 2 3 4 5\n", "mem:1:9: unexpected 5th field '5'");
	mf_bad("4194304 1 1\n", "mem:1:1: bad user id '4194304'");
	mf_bad("1 99999999999999999999999 1\n", "mem:1:3: bad item id");
	mf_bad("1 2 x\n", "mem:1:5: bad rating 'x'");
	mf_bad("1 2 inf\n", "mem:1:5: bad rating 'inf'");
	mf_bad("1 2 3 t\n", "mem:1:7: bad timestamp 't'");
	mf_bad("1 2 3\n-1 2 3\n", "mem:2:1: bad user id '-1'");
	mf_bad("1 2 3\x7f\n", "mem:1:6: unexpected byte 0x7f");
	mf_bad("1 2 3\r4 5 6\r", "mem:1:6: carriage return inside a line");
}

/* A file with no sample (empty, or only comments) is refused by name:
 * an empty buffer is a valid empty set, an empty data file a mistake. */
static void test_empty_files(void **state)
{
	struct trn_lr_data d;
	struct trn_mf_data m;

	(void)state;
	CHECK(trn_libsvm_load(TRAIN_DATA "/comments-only.txt", &d, err,
			      sizeof(err)) == -EINVAL,
	      "a LIBSVM file with no sample loaded");
	CHECK(strstr(err, "comments-only.txt: no samples in it (the file is "
			  "empty") != NULL &&
		      strstr(err, "LABEL INDEX:VALUE"),
	      "empty LIBSVM file: error '%s'", err);
	CHECK(d.n == 0 && d.y == NULL, "output not empty after refusal");
	CHECK(trn_ratings_load(TRAIN_DATA "/comments-only.txt", &m, err,
			       sizeof(err)) == -EINVAL,
	      "a ratings file with no rating loaded");
	CHECK(strstr(err, "comments-only.txt: no ratings in it") != NULL &&
		      strstr(err, "USER ITEM RATING"),
	      "empty ratings file: error '%s'", err);
	CHECK(m.n == 0 && m.user == NULL, "output not empty after refusal");
}

static void test_generators(void **state)
{
	struct trn_lr_gen g = {
		.features = 100, .nnz = 5, .scale = 3, .noise = 0.5, .seed = 7};
	struct trn_mf_gen mg = {
		.users = 30, .items = 20, .rank = 4, .noise = 0.1, .seed = 7};
	struct trn_lr_data a, b;
	struct trn_mf_data ma, mb;
	size_t pos = 0;

	(void)state;
	CHECK(trn_lr_generate(&g, 0, 1000, &a, err, sizeof(err)) == 0, "%s",
	      err);
	/* The same samples whatever range they are asked in. */
	CHECK(trn_lr_generate(&g, 500, 10, &b, err, sizeof(err)) == 0, "%s",
	      err);
	CHECK(a.dim == 101 && b.n == 10 && b.nnz == 50, "dims");
	for (size_t i = 0; i < 10; i++) {
		CHECK(a.y[500 + i] == b.y[i], "label %zu differs", i);
		for (size_t j = 0; j < 5; j++) {
			CHECK(a.idx[a.off[500 + i] + j] == b.idx[b.off[i] + j],
			      "sample %zu feature %zu differs", i, j);
			CHECK(a.val[a.off[500 + i] + j] == b.val[b.off[i] + j],
			      "sample %zu value %zu differs", i, j);
		}
	}
	for (size_t i = 0; i < a.n; i++) {
		pos += a.y[i] > 0;
		for (size_t j = a.off[i] + 1; j < a.off[i + 1]; j++)
			CHECK(a.idx[j] > a.idx[j - 1] && a.idx[j] <= 100,
			      "sample %zu: features not distinct ascending", i);
	}
	CHECK(pos > 350 && pos < 650, "%zu of 1000 labels positive", pos);
	trn_lr_data_free(&a);
	trn_lr_data_free(&b);
	g.nnz = 101;
	CHECK(trn_lr_generate(&g, 0, 1, &a, err, sizeof(err)) == -EINVAL,
	      "nnz above features accepted");

	CHECK(trn_mf_generate(&mg, 0, 200, &ma, err, sizeof(err)) == 0, "%s",
	      err);
	CHECK(trn_mf_generate(&mg, 100, 5, &mb, err, sizeof(err)) == 0, "%s",
	      err);
	for (size_t i = 0; i < 5; i++)
		CHECK(ma.user[100 + i] == mb.user[i] &&
			      ma.item[100 + i] == mb.item[i] &&
			      ma.rating[100 + i] == mb.rating[i],
		      "rating %zu differs", i);
	for (size_t i = 0; i < ma.n; i++)
		CHECK(ma.user[i] < 30 && ma.item[i] < 20, "id out of range");
	trn_mf_data_free(&ma);
	trn_mf_data_free(&mb);
}

static void spec_bad(const char *s, const char *want)
{
	struct trn_spec sp;

	memset(err, 0, sizeof(err));
	CHECK(trn_spec_parse(s, &sp, err, sizeof(err)) == -EINVAL,
	      "spec '%s' parsed", s);
	CHECK(strstr(err, want) != NULL, "spec '%s': error '%s' lacks '%s'", s,
	      err, want);
	CHECK(!strchr(err, '\n'), "error has a newline");
}

/* load:T:D parses, prints back, sets no slowdown factor; its draws
 * pick every worker of the job and only them. */
static void test_spec_load(void **state)
{
	struct trn_spec sp;
	unsigned seen[3] = {0, 0, 0};
	char buf[64];
	double t, d;

	(void)state;
	assert_int_equal(
		trn_spec_parse("load:2:0.5,1:3x", &sp, err, sizeof(err)), 0);
	assert_int_equal(trn_spec_load(&sp, &t, &d), 1);
	CHECK(t == 2 && d == 0.5, "load %g:%g", t, d);
	trn_spec_str(&sp, buf, sizeof(buf));
	CHECK(!strcmp(buf, "load:2:0.5,1:3x"), "'%s'", buf);
	CHECK(trn_spec_factor(&sp, 1, 0, 5) == 1.0 &&
		      trn_spec_factor(&sp, 1, 1, 5) == 3.0,
	      "factors");
	assert_int_equal(trn_spec_check(&sp, 2, err, sizeof(err)), 0);
	assert_int_equal(trn_spec_parse("1:3x", &sp, err, sizeof(err)), 0);
	assert_int_equal(trn_spec_load(&sp, &t, &d), 0);
	spec_bad("load:1:2", "(T is seconds from 0.01 to 3600, D seconds in");
	spec_bad("load:0:0", "(T is seconds");
	spec_bad("load:1", "(T is seconds");
	spec_bad("load:1:x", "(T is seconds");
	for (uint64_t k = 1; k <= 300; k++) {
		unsigned w = trn_load_pick(9, k, 3);

		assert_true(w < 3);
		seen[w]++;
		assert_int_equal(w, trn_load_pick(9, k, 3));
	}
	CHECK(seen[0] > 60 && seen[1] > 60 && seen[2] > 60, "draws %u %u %u",
	      seen[0], seen[1], seen[2]);
}

static void test_spec(void **state)
{
	struct trn_spec sp;
	char buf[128];
	unsigned slow = 0;

	(void)state;
	CHECK(trn_spec_parse("none", &sp, err, sizeof(err)) == 0 && sp.n == 0,
	      "none");
	CHECK(trn_spec_factor(&sp, 1, 0, 0) == 1.0, "none slows");
	CHECK(trn_spec_parse("1:3x", &sp, err, sizeof(err)) == 0, "%s", err);
	CHECK(sp.n == 1 && !sp.item[0].random && sp.item[0].worker == 1 &&
		      sp.item[0].f == 3.0,
	      "1:3x parsed wrong");
	CHECK(trn_spec_factor(&sp, 1, 1, 17) == 3.0, "worker 1 not 3x");
	CHECK(trn_spec_factor(&sp, 1, 0, 17) == 1.0, "worker 0 slowed");
	CHECK(trn_spec_check(&sp, 2, err, sizeof(err)) == 0, "2 workers");
	CHECK(trn_spec_check(&sp, 1, err, sizeof(err)) == -EINVAL,
	      "worker 1 of 1 accepted");
	CHECK(strstr(err, "workers 0 .. 0") != NULL, "check error '%s'", err);

	CHECK(trn_spec_parse("2:1.5x,random:0.25:4x", &sp, err, sizeof(err)) ==
		      0,
	      "%s", err);
	CHECK(sp.n == 2 && sp.item[1].random && sp.item[1].p == 0.25 &&
		      sp.item[1].f == 4.0,
	      "random item parsed wrong");
	trn_spec_str(&sp, buf, sizeof(buf));
	CHECK(!strcmp(buf, "2:1.5x,random:0.25:4x"), "text '%s'", buf);
	/* Random slowdowns: about P of the iterations, the same each time
	 * they are asked, and multiplied with the persistent one. */
	for (uint64_t it = 0; it < 4000; it++) {
		double f = trn_spec_factor(&sp, 9, 2, it);

		CHECK(f == 1.5 || f == 6.0, "factor %g", f);
		CHECK(f == trn_spec_factor(&sp, 9, 2, it), "not repeatable");
		slow += f == 6.0;
	}
	CHECK(slow > 850 && slow < 1150, "%u of 4000 slow, want ~1000", slow);

	spec_bad("", "empty straggler spec");
	spec_bad("1:3", "bad straggler item '1:3' in '1:3' (F is a number "
			"followed by x)");
	spec_bad("x:3x", "bad straggler item 'x:3x'");
	spec_bad("random:0:3x", "(P is a probability in (0, 1])");
	spec_bad("random:1.5:3x", "(P is a probability in (0, 1])");
	spec_bad("random:0.1", "bad straggler item 'random:0.1'");
	spec_bad("1:0.5x", "(F is from 1 to 100)");
	spec_bad("1:101x", "(F is from 1 to 100)");
	spec_bad("1:3x,", "(empty item)");
	spec_bad("1:3x,1:2x", "worker 1 is slowed twice");
	spec_bad("1:3x;2:2x", "bad straggler item");
}

/* The power-law generator: the same stream whatever range is asked,
 * popularity skewed as r^-s, popular ids spread over the range, values 1
 * with binary; a bad exponent refused. */
static void test_generator_zipf(void **state)
{
	struct trn_lr_gen g = {.features = 1000,
			       .nnz = 10,
			       .scale = 3,
			       .noise = 0.5,
			       .zipf = 1.1,
			       .binary = 1,
			       .seed = 7};
	struct trn_mf_gen mg = {.users = 500,
				.items = 400,
				.rank = 4,
				.noise = 0.1,
				.zipf = 1.1,
				.seed = 7};
	struct trn_lr_data a, b;
	struct trn_mf_data ma;
	uint32_t *cnt = calloc(1001, sizeof(*cnt)), top = 0, low = 0;
	uint32_t *uc = calloc(500, sizeof(*uc)), utop = 0;

	(void)state;
	assert_non_null(cnt);
	assert_non_null(uc);
	CHECK(trn_lr_generate(&g, 0, 2000, &a, err, sizeof(err)) == 0, "%s",
	      err);
	CHECK(trn_lr_generate(&g, 1000, 5, &b, err, sizeof(err)) == 0, "%s",
	      err);
	for (size_t i = 0; i < 5 * 10; i++)
		CHECK(a.idx[a.off[1000] + i] == b.idx[i], "pair %zu differs",
		      i);
	for (size_t i = 0; i < a.n; i++)
		for (size_t j = a.off[i]; j < a.off[i + 1]; j++) {
			CHECK(a.val[j] == 1.0f, "binary value %g", a.val[j]);
			CHECK(j == a.off[i] || a.idx[j] > a.idx[j - 1],
			      "sample %zu: features not distinct ascending", i);
			cnt[a.idx[j]]++;
		}
	for (uint32_t f = 1; f <= 1000; f++) {
		if (cnt[f] > top)
			top = cnt[f];
		low += f <= 100 ? cnt[f] : 0;
	}
	/* Rank 1 has weight 1 / sum r^-1.1 (about 1/5.6) per draw, 10
	 * draws a sample: in most samples. Uniform would give 1%. */
	CHECK(top > 1000, "top feature in %u of 2000 samples", top);
	/* Spread: the lowest tenth of the ids is not where the mass is. */
	CHECK(low < 20000 / 3, "ids 1..100 hold %u of 20000", low);
	trn_lr_data_free(&a);
	trn_lr_data_free(&b);
	CHECK(trn_mf_generate(&mg, 0, 5000, &ma, err, sizeof(err)) == 0, "%s",
	      err);
	for (size_t i = 0; i < ma.n; i++) {
		CHECK(ma.user[i] < 500 && ma.item[i] < 400, "id out of range");
		uc[ma.user[i]]++;
	}
	for (uint32_t u = 0; u < 500; u++)
		utop = uc[u] > utop ? uc[u] : utop;
	CHECK(utop > 500, "top user has %u of 5000 ratings", utop);
	trn_mf_data_free(&ma);
	g.zipf = 4.5;
	CHECK(trn_lr_generate(&g, 0, 1, &a, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "bad popularity exponent 4.5"),
	      "zipf 4.5: %s", err);
	free(cnt);
	free(uc);
}

/* One SGD step lowers the loss of the samples it saw, and the delta is
 * exactly the change of the local model. */
static void test_model_steps(void **state)
{
	struct trn_lr_gen g = {
		.features = 50, .nnz = 5, .scale = 3, .noise = 0, .seed = 3};
	struct trn_mf_gen mg = {
		.users = 10, .items = 10, .rank = 3, .noise = 0, .seed = 3};
	struct trn_lr_data d;
	struct trn_mf_data md;
	struct trn_model m;
	uint32_t ids[64];
	uint64_t *idx;
	float *val, *dense;
	double before, after;
	long n;

	(void)state;
	assert_int_equal(trn_lr_generate(&g, 0, 64, &d, err, sizeof(err)), 0);
	assert_int_equal(trn_model_init_lr(&m, d.dim, 0.5), 0);
	for (uint32_t i = 0; i < 64; i++)
		ids[i] = i;
	before = trn_model_loss_lr(&m, NULL, &d);
	CHECK(fabs(before - log(2.0)) < 1e-9, "initial loss %g, want ln 2",
	      before);
	assert_int_equal(trn_model_step_lr(&m, &d, ids, 64), 0);
	after = trn_model_loss_lr(&m, NULL, &d);
	CHECK(after < before, "loss %g -> %g did not drop", before, after);
	idx = malloc(m.n * sizeof(*idx));
	val = malloc(m.n * sizeof(*val));
	dense = malloc(m.n * sizeof(*dense));
	/* 64 samples of 5 features touch most of 51: dense. */
	n = trn_model_take(&m, idx, val, dense);
	CHECK(n == -1, "take gave %ld, want dense (-1)", n);
	for (uint64_t i = 0; i < m.n; i++)
		CHECK(dense[i] == m.w[i], "delta %g != w %g at %llu", dense[i],
		      m.w[i], (unsigned long long)i);
	/* Adagrad from zero: every coordinate's first step is lr x the
	 * sign of its negative gradient, whatever its size. */
	for (uint64_t i = 0; i < m.n; i++)
		CHECK(dense[i] == 0 || fabsf(fabsf(dense[i]) - 0.5f) < 1e-6f,
		      "first step %g at %llu, want 0 or +-0.5", dense[i],
		      (unsigned long long)i);
	CHECK(trn_model_take(&m, idx, val, dense) == 0, "delta not reset");
	/* One sample: sparse, its 5 features and the bias. */
	assert_int_equal(trn_model_step_lr(&m, &d, ids, 1), 0);
	n = trn_model_take(&m, idx, val, dense);
	CHECK(n == 6, "take gave %ld entries, want 6", n);
	free(idx);
	free(val);
	free(dense);
	trn_model_fini(&m);
	trn_lr_data_free(&d);

	assert_int_equal(trn_mf_generate(&mg, 0, 64, &md, err, sizeof(err)), 0);
	assert_int_equal(trn_model_init_mf(&m, 10, 10, 3, 0.05, 0, 0.3, 1), 0);
	before = trn_model_loss_mf(&m, NULL, &md);
	for (int rep = 0; rep < 50; rep++)
		trn_model_step_mf(&m, &md, ids, 64);
	after = trn_model_loss_mf(&m, NULL, &md);
	CHECK(after < before * 0.9, "mf rmse %g -> %g", before, after);
	trn_model_fini(&m);
	trn_mf_data_free(&md);
}

/*
 * Frank-Wolfe on LASSO by hand: A = I (2 x 2), y = (1, 0), m = 2. At
 * x = 0 the residual is (-1, 0), f = 1/4, g = (-1/2, 0), the gap 1/2 t.
 * Radius 1: the atom +e1, q = (1, 0), gamma = 1: x = (1, 0), f = 0, gap
 * 0. Radius 0.5: gamma would be 2, clipped to 1: x = (0.5, 0), residual
 * (-0.5, 0), f = 1/16, g1 = -1/4, gap -1/8 + 1/8 = 0 (the optimum on
 * the ball's boundary).
 */
static void test_lasso_step(void **state)
{
	static const char text[] = "1 1:1\n0 2:1\n";
	struct trn_lr_data d;
	struct trn_lasso p;
	double x[3] = {0, 0, 0}, r[2], q[2];

	(void)state;
	assert_int_equal(trn_libsvm_parse_real(text, strlen(text), "mem", &d,
					       err, sizeof(err)),
			 0);
	assert_int_equal(trn_lasso_init(&p, &d, 1.0), 0);
	check_close(p.f0, 0.25);
	trn_lasso_residual(&p, x, r);
	check_close(r[0], -1);
	check_close(trn_lasso_objective(&p, r), 0.25);
	check_close(trn_lasso_grad(&p, r, 1), -0.5);
	check_close(trn_lasso_grad(&p, r, 2), 0);
	check_close(trn_lasso_gap(&p, x, r), 0.5);
	check_close(trn_lasso_step(&p, x, r, 1, -0.5, q), 1);
	check_close(x[1], 1);
	check_close(x[2], 0);
	check_close(trn_lasso_objective(&p, r), 0);
	check_close(trn_lasso_gap(&p, x, r), 0);
	/* At the optimum no step helps. */
	check_close(trn_lasso_step(&p, x, r, 2, 0, q), 0);
	trn_lasso_fini(&p);

	assert_int_equal(trn_lasso_init(&p, &d, 0.5), 0);
	x[1] = 0;
	trn_lasso_residual(&p, x, r);
	check_close(trn_lasso_step(&p, x, r, 1, -0.5, q), 1);
	check_close(x[1], 0.5);
	check_close(r[0], -0.5);
	check_close(trn_lasso_objective(&p, r), 0.0625);
	check_close(trn_lasso_gap(&p, x, r), 0);
	trn_lasso_fini(&p);
	trn_lr_data_free(&d);
	/* Real targets: a label of 2.5 is fine here, not for lr. */
	assert_int_equal(trn_libsvm_parse_real("2.5 3:1\n", 8, "mem", &d, err,
					       sizeof(err)),
			 0);
	CHECK(d.y[0] == 2.5f && d.dim == 4, "real label %g", d.y[0]);
	trn_lr_data_free(&d);
	CHECK(trn_libsvm_parse_real("inf 3:1\n", 8, "mem", &d, err,
				    sizeof(err)) == -EINVAL &&
		      strstr(err, "mem:1:1: bad label 'inf'"),
	      "%s", err);
}

/* The seed's generated problem: serial Frank-Wolfe (the best atom over
 * all columns each step) takes the gap down 10x in 200 steps, and the
 * objective never rises. */
static void test_lasso_converges(void **state)
{
	struct trn_lasso_gen g = {.samples = 200,
				  .features = 1000,
				  .density = 0.05,
				  .support = 20,
				  .noise = 0.1,
				  .seed = 5};
	struct trn_lr_data d;
	struct trn_lasso p;
	double l1, *x, *r, *q, gap0, f = INFINITY;

	(void)state;
	CHECK(trn_lasso_generate(&g, &d, &l1, err, sizeof(err)) == 0, "%s",
	      err);
	CHECK(d.n == 200 && d.dim == 1001 && d.nnz == 200 * 50, "shape");
	assert_int_equal(trn_lasso_init(&p, &d, l1), 0);
	x = calloc(d.dim, sizeof(*x));
	r = malloc(d.n * sizeof(*r));
	q = malloc(d.n * sizeof(*q));
	assert_true(x && r && q);
	trn_lasso_residual(&p, x, r);
	gap0 = trn_lasso_gap(&p, x, r);
	for (int it = 0; it < 200; it++) {
		uint32_t best = 1;
		double gb = 0, fn;

		for (uint32_t j = 1; j < d.dim; j++) {
			double gj = trn_lasso_grad(&p, r, j);

			if (fabs(gj) > fabs(gb)) {
				gb = gj;
				best = j;
			}
		}
		trn_lasso_step(&p, x, r, best, gb, q);
		fn = trn_lasso_objective(&p, r);
		CHECK(fn <= f + 1e-12, "objective rose %g -> %g at %d", f, fn,
		      it);
		f = fn;
	}
	CHECK(trn_lasso_gap(&p, x, r) < gap0 / 10, "gap %g -> %g", gap0,
	      trn_lasso_gap(&p, x, r));
	free(x);
	free(r);
	free(q);
	trn_lasso_fini(&p);
	trn_lr_data_free(&d);
	g.density = 2;
	CHECK(trn_lasso_generate(&g, &d, NULL, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "bad density 2"),
	      "%s", err);
}

/* A cell that finished but never reached the target loses its claim
 * (it was "not decided", with "nan s" for its time): lasso, a persistent
 * straggler, BSP reaching the target and A-BSP stalling above it. */
static void test_claims_not_reached(void **state)
{
	static double t[3] = {0, 1, 2}, bsp_loss[3] = {1, 0.5, 0.1},
		      absp_loss[3] = {1, 0.6, 0.5};
	static uint64_t clk[3] = {0, 1, 2};
	struct trn_result r[2] = {
		{.workload = "lasso",
		 .stragglers = "1:3x",
		 .model = "BSP",
		 .ok = 1,
		 .n = 3,
		 .t = t,
		 .loss = bsp_loss,
		 .clock = clk},
		{.workload = "lasso",
		 .stragglers = "1:3x",
		 .model = "A-BSP",
		 .ok = 1,
		 .n = 3,
		 .t = t,
		 .loss = absp_loss,
		 .clock = clk},
	};
	char buf[2048] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	(void)state;
	CHECK(f, "fmemopen");
	CHECK(trn_results_score(r, 2, 0.05) == 0, "a run was diverged");
	CHECK(isnan(r[1].ttt) && isfinite(r[0].ttt), "ttt %g %g", r[0].ttt,
	      r[1].ttt);
	trn_report_claims(f, r, 2);
	fclose(f);
	CHECK(strstr(buf, "  does not hold A-BSP faster than BSP, persistent "
			  "straggler (A-BSP: <= 2.36x): lasso, stragglers "
			  "1:3x: A-BSP target not reached, BSP 2 s\n"),
	      "%s", buf);
	CHECK(!strstr(buf, "nan"), "%s", buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libsvm_good_file),
		cmocka_unit_test(test_libsvm_bad_file),
		cmocka_unit_test(test_libsvm_errors),
		cmocka_unit_test(test_libsvm_bounds),
		cmocka_unit_test(test_ratings_good_file),
		cmocka_unit_test(test_ratings_errors),
		cmocka_unit_test(test_empty_files),
		cmocka_unit_test(test_generators),
		cmocka_unit_test(test_generator_zipf),
		cmocka_unit_test(test_spec),
		cmocka_unit_test(test_spec_load),
		cmocka_unit_test(test_model_steps),
		cmocka_unit_test(test_lasso_step),
		cmocka_unit_test(test_lasso_converges),
		cmocka_unit_test(test_claims_not_reached),
	};

	return cmocka_run_group_tests_name("train_data", tests, NULL, NULL);
}
