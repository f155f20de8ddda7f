/* SPDX-License-Identifier: MIT */
/*
 * test_emb.c - embedding tables without a transport: the shared pure logic
 * (src/emb_codec.h: placement, bucket hashes, initial values, decoders of
 * remote bytes) and the shard's index and rows (src/server/emb_index.c)
 * on plain memory: what the shard writes, the worker's decoders read back;
 * a row torn between two versions, a reused row and corrupt buckets are
 * caught, never returned and never a crash. Embedding tables in
 * checkpoints (src/checkpoint.c): saved and read back byte for byte, and a
 * corrupt or inconsistent image refused with a message saying why.
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
#include <unistd.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "emb_codec.h"
#include "server/server_impl.h"

/* A table of capacity rows of dim f32 on plain memory. */
static struct srv_emb *emb_new(uint64_t capacity, uint32_t dim, uint32_t rule)
{
	struct srv_emb *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->used = true;
	t->dim = dim;
	t->dtype = PS_DTYPE_F32;
	t->rule = rule;
	t->lr = 0.5;
	t->init = PS_EMB_INIT_UNIFORM;
	t->scale = 0.25;
	t->seed = 9;
	t->capacity = capacity;
	t->nbuckets = ps_emb_nbuckets(capacity);
	t->row_bytes = ps_emb_row_bytes(dim, t->dtype);
	t->vbytes = dim * 4;
	t->index = calloc(t->nbuckets, sizeof(*t->index));
	t->rows = calloc(capacity, t->row_bytes);
	assert_non_null(t->index);
	assert_non_null(t->rows);
	if (rule == PS_RULE_ADAGRAD) {
		t->acc = calloc(capacity, t->vbytes);
		assert_non_null(t->acc);
	}
	return t;
}

static void emb_free(struct srv_emb *t)
{
	free(t->index);
	free(t->rows);
	free(t->acc);
	free(t);
}

/* What a worker's pull finds for key in t's memory: 1 and *row, 0. */
static int emb_lookup(const struct srv_emb *t, uint64_t key, uint32_t *row)
{
	for (int c = 0; c < 2; c++) {
		uint64_t b = ps_emb_bucket_of(key, c, t->nbuckets);
		int r = ps_emb_bucket_find(&t->index[b], 64, b, key,
					   t->capacity, row);

		assert_true(r == 0 || r == 1);
		if (r == 1)
			return 1;
	}
	return 0;
}

static void test_placement_even(void **state)
{
	unsigned count[7] = {0};

	(void)state;
	for (uint64_t k = 0; k < 70000; k++)
		count[ps_emb_shard(k, 7)]++;
	for (int s = 0; s < 7; s++)
		assert_in_range(count[s], 9500, 10500);
	for (uint64_t k = 0; k < 10000; k++) {
		uint64_t b0 = ps_emb_bucket_of(k, 0, 64);
		uint64_t b1 = ps_emb_bucket_of(k, 1, 64);

		assert_true(b0 < 64 && b1 < 64 && b0 != b1);
	}
	assert_int_equal(ps_emb_nbuckets(1), 2);
	assert_int_equal(ps_emb_nbuckets(1000), 1024);
}

static void test_init_values(void **state)
{
	double sum = 0, sq = 0;
	float row[5], again[5];

	(void)state;
	assert_true(ps_emb_init_value(PS_EMB_INIT_ZERO, 1, 1, 7, 0) == 0.0);
	for (uint64_t k = 0; k < 20000; k++) {
		double u = ps_emb_init_value(PS_EMB_INIT_UNIFORM, 0.5, 3, k, 1);
		double n = ps_emb_init_value(PS_EMB_INIT_NORMAL, 2.0, 3, k, 1);

		assert_true(u >= -0.5 && u < 0.5);
		assert_true(isfinite(n));
		sum += n;
		sq += n * n;
	}
	assert_true(fabs(sum / 20000) < 0.1);
	assert_true(fabs(sqrt(sq / 20000) - 2.0) < 0.1);
	/* A function of (seed, key, j): the same twice, other with a seed. */
	ps_emb_init_row(PS_EMB_INIT_NORMAL, 1, 5, 77, 5, PS_DTYPE_F32, row);
	ps_emb_init_row(PS_EMB_INIT_NORMAL, 1, 5, 77, 5, PS_DTYPE_F32, again);
	assert_memory_equal(row, again, sizeof(row));
	ps_emb_init_row(PS_EMB_INIT_NORMAL, 1, 6, 77, 5, PS_DTYPE_F32, again);
	assert_memory_not_equal(row, again, sizeof(row));
}

/* The shard's inserts, as the worker's decoders read them back. */
static void test_insert_find(void **state)
{
	struct srv_emb *t = emb_new(500, 3, PS_RULE_SGD);
	unsigned char live[32 + 16], mix[32 + 16];
	const unsigned char *dead;
	uint32_t row;
	float init[3];

	(void)state;
	for (uint64_t k = 0; k < 500; k++) {
		uint64_t key = k * 0x9e3779b97f4a7c15ull;

		assert_int_equal(srv_emb_insert(t, key, &row), 0);
		assert_int_equal(row, k);
	}
	for (uint64_t k = 0; k < 500; k++) {
		uint64_t key = k * 0x9e3779b97f4a7c15ull;
		const unsigned char *r;

		assert_int_equal(srv_emb_find(t, key), k);
		assert_int_equal(emb_lookup(t, key, &row), 1);
		assert_int_equal(row, k);
		r = t->rows + row * t->row_bytes;
		assert_int_equal(ps_emb_row_verify(r, t->row_bytes, key, 3,
						   PS_DTYPE_F32),
				 0);
		/* Inserted at the initial value the worker computes. */
		ps_emb_init_row(t->init, t->scale, t->seed, key, 3,
				PS_DTYPE_F32, init);
		assert_memory_equal(r + 32, init, sizeof(init));
	}
	assert_int_equal(emb_lookup(t, 12345, &row), 0);
	/* Full: no row left. */
	assert_int_equal(srv_emb_insert(t, 12345, &row), -ENOSPC);
	/* An undone insert is gone and frees its row, which no longer
	 * reads as the key's (a worker's cache may still point at it);
	 * its head as read half way through the dead seal is torn. */
	memcpy(live, t->rows + 499 * t->row_bytes, sizeof(live));
	srv_emb_uninsert(t, 499 * 0x9e3779b97f4a7c15ull);
	assert_int_equal(t->nrows, 499);
	assert_int_equal(emb_lookup(t, 499 * 0x9e3779b97f4a7c15ull, &row), 0);
	dead = t->rows + 499 * t->row_bytes;
	assert_int_equal(ps_emb_row_verify(dead, t->row_bytes,
					   499 * 0x9e3779b97f4a7c15ull, 3,
					   PS_DTYPE_F32),
			 -ESTALE);
	memcpy(mix, dead, sizeof(mix));
	memcpy(mix + 16, live + 16, 8); /* new version, old check */
	assert_int_equal(ps_emb_row_verify(mix, t->row_bytes,
					   499 * 0x9e3779b97f4a7c15ull, 3,
					   PS_DTYPE_F32),
			 -EAGAIN);
	memcpy(mix, live, sizeof(mix));
	assert_int_equal(ps_emb_row_verify(mix, t->row_bytes,
					   499 * 0x9e3779b97f4a7c15ull, 3,
					   PS_DTYPE_F32),
			 0);
	/* Reused: the next insert takes the row and seals it live. */
	assert_int_equal(srv_emb_insert(t, 7, &row), 0);
	assert_int_equal(row, 499);
	assert_int_equal(
		ps_emb_row_verify(dead, t->row_bytes, 7, 3, PS_DTYPE_F32), 0);
	emb_free(t);
}

/* A row caught between two versions never checks out; a reused row is
 * told apart (look the key up again). */
static void test_torn_row(void **state)
{
	struct srv_emb *t = emb_new(4, 64, PS_RULE_ADAGRAD);
	size_t rb = t->row_bytes;
	unsigned char *old = malloc(rb), *mix = malloc(rb);
	float g[64];
	uint32_t row;

	(void)state;
	assert_non_null(old);
	assert_non_null(mix);
	for (int j = 0; j < 64; j++)
		g[j] = 0.125f * (float)(j + 1);
	assert_int_equal(srv_emb_insert(t, 42, &row), 0);
	memcpy(old, t->rows, rb);
	srv_emb_update(t, row, g);
	assert_int_equal(ps_emb_row_verify(t->rows, rb, 42, 64, PS_DTYPE_F32),
			 0);
	assert_memory_not_equal(old + 32, t->rows + 32, rb - 32);
	/* Any cut between the old and the new bytes, head from either. */
	for (size_t cut = 32; cut < rb; cut += 4) {
		memcpy(mix, old, rb);
		memcpy(mix + cut, t->rows + cut, rb - cut);
		assert_int_equal(
			ps_emb_row_verify(mix, rb, 42, 64, PS_DTYPE_F32),
			-EAGAIN);
		memcpy(mix, t->rows, rb);
		memcpy(mix + cut, old + cut, rb - cut);
		assert_int_equal(
			ps_emb_row_verify(mix, rb, 42, 64, PS_DTYPE_F32),
			-EAGAIN);
	}
	assert_int_equal(ps_emb_row_verify(t->rows, rb, 43, 64, PS_DTYPE_F32),
			 -ESTALE);
	assert_int_equal(
		ps_emb_row_verify(t->rows, rb - 8, 42, 64, PS_DTYPE_F32),
		-EPROTO);
	assert_int_equal(ps_emb_row_verify(t->rows, rb, 42, 0, PS_DTYPE_F32),
			 -EPROTO);
	free(old);
	free(mix);
	emb_free(t);
}

/* Buckets from remote bytes: half-written slots, corrupt rows, junk. */
static void test_bucket_decode(void **state)
{
	struct ps_emb_bucket bk;
	uint64_t s = 1;
	uint32_t row = 7777;

	(void)state;
	memset(&bk, 0, sizeof(bk));
	bk.slot[2].key_be = rdps_htobe64(99);
	bk.slot[2].meta_be = rdps_htobe64(ps_emb_slot_meta(99, 5, 3));
	assert_int_equal(ps_emb_bucket_find(&bk, 64, 3, 99, 10, &row), 1);
	assert_int_equal(row, 5);
	assert_int_equal(ps_emb_bucket_find(&bk, 64, 3, 98, 10, &row), 0);
	/* The slot read for another bucket does not check out. */
	assert_int_equal(ps_emb_bucket_find(&bk, 64, 4, 99, 10, &row), -EAGAIN);
	/* Key not yet written (meta is): torn, read again. */
	bk.slot[2].key_be = 0;
	assert_int_equal(ps_emb_bucket_find(&bk, 64, 3, 99, 10, &row), -EAGAIN);
	/* A slot that checks out but names a row past the capacity. */
	bk.slot[2].key_be = rdps_htobe64(99);
	assert_int_equal(ps_emb_bucket_find(&bk, 64, 3, 99, 5, &row), -EPROTO);
	assert_int_equal(ps_emb_bucket_find(&bk, 63, 3, 99, 10, &row), -EPROTO);
	/* Junk: only the stated results, a found row within capacity. */
	for (int i = 0; i < 100000; i++) {
		uint64_t w[8];
		int r;

		for (int j = 0; j < 8; j++) {
			s += 0x9e3779b97f4a7c15ull;
			w[j] = ps_emb_mix64(s);
		}
		row = UINT32_MAX;
		r = ps_emb_bucket_find(w, 64, 1, w[0], 1000, &row);
		assert_true(r == 0 || r == -EAGAIN || r == -EPROTO ||
			    (r == 1 && row < 1000));
	}
}

/* --- checkpoints ---------------------------------------------------------- */

/* FNV-1a as checkpoint.h specifies it: an image edited here gets a
 * correct checksum, so the check that refuses it is the one named. */
static void ckpt_resum(unsigned char *b, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len - 8; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	h = rdps_htobe64(h);
	memcpy(b + len - 8, &h, 8);
}

static void ckpt_put64(unsigned char *b, size_t off, uint64_t v)
{
	v = rdps_htobe64(v);
	memcpy(b + off, &v, 8);
}

/* parse(img edited and re-summed) is refused naming why. */
static void ckpt_refused(const unsigned char *img, size_t len, size_t off,
			 uint64_t v64, int width, const char *why)
{
	unsigned char *b = malloc(len);
	struct ckpt *c = calloc(1, sizeof(*c));

	assert_non_null(b);
	assert_non_null(c);
	memcpy(b, img, len);
	if (width == 8) {
		ckpt_put64(b, off, v64);
	} else if (width == 4) {
		uint32_t v = rdps_htobe32((uint32_t)v64);

		memcpy(b + off, &v, 4);
	} else {
		b[off] ^= (unsigned char)v64;
	}
	ckpt_resum(b, len);
	assert_int_equal(ckpt_parse(b, len, "x.ckpt", c), -EINVAL);
	if (!strstr(rdps_errmsg(), why))
		fail_msg("refusal '%s' does not say '%s'", rdps_errmsg(), why);
	free(b);
	free(c);
}

/* An Adagrad table with rows and state, through ckpt_write and
 * ckpt_load; then edited images refused. Offsets: header 40 B, no dense
 * table, the count of embedding tables at 40, its description at 48
 * (capacity at +80, nrows at +104), the index at 160. */
static void test_ckpt_emb(void **state)
{
	struct srv_emb *t = emb_new(100, 5, PS_RULE_ADAGRAD);
	struct rdps_server *s = calloc(1, sizeof(*s));
	struct ckpt *ck = calloc(1, sizeof(*ck)), *rd = calloc(1, sizeof(*rd));
	char dir[] = "/tmp/test_emb_ckpt.XXXXXX", path[4096];
	float g[5] = {1, -2, 0.5f, 3, 0.25f};
	unsigned char *img;
	size_t len, rows_at;
	void *buf;
	uint32_t row;

	(void)state;
	assert_non_null(s);
	assert_non_null(ck);
	assert_non_null(rd);
	snprintf(t->name, sizeof(t->name), "ids");
	for (uint64_t k = 0; k < 40; k++) {
		assert_int_equal(srv_emb_insert(t, k * 7919 + 3, &row), 0);
		srv_emb_update(t, row, g);
		if (k % 3 == 0)
			srv_emb_update(t, row, g);
	}
	s->emb[2] = *t;
	ck->shard = 1;
	ck->nshards = 2;
	ck->workers = 3;
	ck->clock = 17;
	srv_emb_to_ckpt(s, ck);
	assert_int_equal(ck->nemb, 1);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ckpt_write(dir, ck), 0);
	assert_int_equal(ckpt_path(path, sizeof(path), dir, 1, 0), 0);
	assert_int_equal(ckpt_load(path, &buf, rd), 0);
	unlink(path);
	rmdir(dir);
	assert_int_equal(rd->nemb, 1);
	assert_int_equal(rd->clock, 17);
	assert_string_equal(rd->e[0].name, "ids");
	assert_int_equal(rd->e[0].slot, 2);
	assert_int_equal(rd->e[0].nrows, 40);
	assert_int_equal(rd->e[0].capacity, 100);
	assert_true(rd->e[0].lr == t->lr && rd->e[0].scale == t->scale);
	assert_int_equal(rd->e[0].seed, t->seed);
	assert_memory_equal(rd->e[0].index, t->index, t->nbuckets * 64);
	assert_memory_equal(rd->e[0].rows, t->rows, 40 * t->row_bytes);
	assert_non_null(rd->e[0].acc);
	assert_memory_equal(rd->e[0].acc, t->acc, 40 * t->vbytes);

	/* The image as written, edited. */
	img = buf;
	len = 160 + t->nbuckets * 64 + 40 * t->row_bytes + 40 * t->vbytes + 8;
	rows_at = 160 + t->nbuckets * 64;
	ckpt_refused(img, len, 8, 3, 4, "format version 3");
	ckpt_refused(img, len, 48 + 80, 5, 8, "do not give");
	ckpt_refused(img, len, 48 + 104, 41, 8, "needs");
	ckpt_refused(img, len, 48 + 104, 39, 8, "is not a slot of");
	ckpt_refused(img, len, 48 + 36, 0, 4, "out of range");
	ckpt_refused(img, len, rows_at + 32 + 2, 0x40, 1, "fails its check");
	/* The first used slot's row number past nrows, its check redone. */
	for (size_t b = 0; b < t->nbuckets; b++) {
		struct ps_emb_slot *sl = &t->index[b].slot[0];
		uint64_t key = rdps_be64toh(sl->key_be);

		if (!sl->meta_be)
			continue;
		ckpt_refused(img, len, 160 + b * 64 + 8,
			     ps_emb_slot_meta(key, 60, b), 8,
			     "is not a slot of");
		break;
	}
	{
		/* Cut short, its checksum redone: refused, not read past. */
		struct ckpt *c = calloc(1, sizeof(*c));
		unsigned char *b = malloc(len);

		assert_non_null(c);
		assert_non_null(b);
		memcpy(b, img, len);
		ckpt_resum(b, len - 100);
		assert_int_equal(ckpt_parse(b, len - 100, "x.ckpt", c),
				 -EINVAL);
		assert_non_null(strstr(rdps_errmsg(), "needs"));
		/* Version 1 (no embedding section) is still read: its
		 * header (version at 8) and checksum. */
		memcpy(b, img, 40);
		b[8 + 3] = 1;
		ckpt_resum(b, 48);
		assert_int_equal(ckpt_parse(b, 48, "v1.ckpt", c), 0);
		assert_int_equal(c->nemb, 0);
		assert_int_equal(c->clock, 17);
		free(b);
		free(c);
	}
	free(buf);
	free(rd);
	free(ck);
	free(s);
	emb_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placement_even),
		cmocka_unit_test(test_init_values),
		cmocka_unit_test(test_insert_find),
		cmocka_unit_test(test_torn_row),
		cmocka_unit_test(test_bucket_decode),
		cmocka_unit_test(test_ckpt_emb),
	};

	return cmocka_run_group_tests_name("emb", tests, NULL, NULL);
}
