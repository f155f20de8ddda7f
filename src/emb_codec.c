/* SPDX-License-Identifier: MIT */
/*
 * emb_codec.c - embedding tables' shared pure logic (emb_codec.h).
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "emb_codec.h"
#include "rdps_base.h"

uint64_t ps_emb_row_sum(uint64_t key, uint64_t version, const void *vals,
			size_t len)
{
	const unsigned char *p = vals;
	uint64_t h = ps_emb_mix64(key) ^ ps_emb_mix64(version + len);
	size_t i = 0;

	/* Multiply-rotate per word: any change of any word changes the
	 * result (not adversarial, only torn reads to catch). */
	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h = h << 29 | h >> 35;
	}
	if (i < len) {
		uint32_t w;

		memcpy(&w, p + i, 4);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
	}
	return ps_emb_mix64(h);
}

/* A uniform double in (0, 1] from (seed, key, j, stream). */
static double emb_unit(uint64_t seed, uint64_t key, uint32_t j, unsigned stream)
{
	uint64_t x =
		ps_emb_mix64(seed ^ ps_emb_mix64(key + 0x3c6ef372fe94f82bull));

	x = ps_emb_mix64(x +
			 ((uint64_t)j << 1 | stream) * 0x9e3779b97f4a7c15ull);
	return ((double)(x >> 11) + 1.0) * 0x1p-53;
}

double ps_emb_init_value(uint32_t init, double scale, uint64_t seed,
			 uint64_t key, uint32_t j)
{
	double u1, u2;

	switch (init) {
	case PS_EMB_INIT_UNIFORM:
		return scale * (2.0 * emb_unit(seed, key, j, 0) - 1.0);
	case PS_EMB_INIT_NORMAL:
		/* Box-Muller; u1 in (0, 1] keeps the log finite. */
		u1 = emb_unit(seed, key, j, 0);
		u2 = emb_unit(seed, key, j, 1);
		return scale * sqrt(-2.0 * log(u1)) *
		       cos(6.283185307179586 * u2);
	default:
		return 0.0;
	}
}

void ps_emb_init_row(uint32_t init, double scale, uint64_t seed, uint64_t key,
		     uint32_t dim, uint32_t dtype, void *dst)
{
	for (uint32_t j = 0; j < dim; j++) {
		double v = ps_emb_init_value(init, scale, seed, key, j);

		if (dtype == PS_DTYPE_F64) {
			memcpy((char *)dst + 8 * (size_t)j, &v, 8);
		} else {
			float f = (float)v;

			memcpy((char *)dst + 4 * (size_t)j, &f, 4);
		}
	}
}

int ps_emb_bucket_find(const void *bytes, size_t len, uint64_t b, uint64_t key,
		       uint64_t capacity, uint32_t *row_out)
{
	const struct ps_emb_slot *sl = bytes;
	int torn = 0;

	if (len != sizeof(struct ps_emb_bucket))
		return -EPROTO;
	for (unsigned i = 0; i < PS_EMB_SLOTS; i++) {
		struct ps_emb_slot s;
		uint64_t k, meta;
		uint32_t row;

		memcpy(&s, &sl[i], sizeof(s));
		meta = rdps_be64toh(s.meta_be);
		if (!meta)
			continue;
		k = rdps_be64toh(s.key_be);
		row = (uint32_t)meta;
		if (meta != ps_emb_slot_meta(k, row, b)) {
			torn = 1;
			continue;
		}
		if (row >= capacity)
			return -EPROTO;
		if (k == key) {
			*row_out = row;
			return 1;
		}
	}
	return torn ? -EAGAIN : 0;
}

int ps_emb_row_verify(const void *bytes, size_t len, uint64_t key, uint32_t dim,
		      uint32_t dtype)
{
	struct ps_emb_row h;

	if (!dim || dim > PS_EMB_DIM_MAX || dtype > PS_DTYPE_F64 ||
	    len != ps_emb_row_bytes(dim, dtype))
		return -EPROTO;
	memcpy(&h, bytes, sizeof(h));
	if (rdps_be64toh(h.key_be) != key)
		return -ESTALE;
	if (rdps_be64toh(h.check_be) !=
	    ps_emb_row_sum(key, rdps_be64toh(h.version_be),
			   (const char *)bytes + sizeof(h),
			   (size_t)dim * ps_dtype_size(dtype)))
		return -EAGAIN;
	/* Checked first: only a whole dead seal counts as dead. */
	if (rdps_be64toh(h.version_be) == PS_EMB_VERSION_DEAD)
		return -ESTALE;
	return 0;
}
