/* SPDX-License-Identifier: MIT */
/*
 * fuzz_emb.c - libFuzzer target over the decoders of embedding tables'
 * remote bytes (src/emb_codec.h): ps_emb_bucket_find() and
 * ps_emb_row_verify(), which a worker runs on whatever a shard's memory
 * held when its READ came back.
 *
 * Input: byte 0 bit 0 picks the decoder (0 bucket, 1 row); bytes 1..8 the
 * key (big-endian); bucket: bytes 9..12 the bucket number, 13..16 the
 * capacity; row: bytes 9..10 dim, byte 11 bit 0 the dtype; the rest is the
 * remote bytes, in a buffer of exactly that length. Besides "no crash"
 * (ASan), each input checks the contract: only the documented results,
 * a found row below the capacity, *row_out untouched unless found.
 * Verdict (fuzz.h): found / checks out is accepted, -EPROTO refused,
 * absent or torn none.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emb_codec.h"
#include "fuzz.h"

int fuzz_verdict;

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_emb", what, size);
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t key;
	uint8_t *buf;
	size_t len;
	int r;

	fuzz_verdict = FUZZ_NONE;
	if (size < 17)
		return 0;
	key = be(data + 1, 8);
	len = size - 17;
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 17, len);
	if (!(data[0] & 1)) {
		uint64_t b = be(data + 9, 4), cap = be(data + 13, 4);
		uint32_t row = 0xdeadbeef;

		r = ps_emb_bucket_find(buf, len, b, key, cap, &row);
		if (r != 1 && r != 0 && r != -EAGAIN && r != -EPROTO)
			breach("bucket: undocumented result", size);
		if (r == 1 && row >= cap)
			breach("bucket: found row past the capacity", size);
		if (r != 1 && row != 0xdeadbeef)
			breach("bucket: row_out written without a find", size);
		fuzz_verdict = r == 1	      ? FUZZ_ACCEPT
			       : r == -EPROTO ? FUZZ_REJECT
					      : FUZZ_NONE;
	} else {
		uint32_t dim = (uint32_t)be(data + 9, 2);
		uint32_t dtype = data[11] & 1;

		r = ps_emb_row_verify(buf, len, key, dim, dtype);
		if (r != 0 && r != -EAGAIN && r != -ESTALE && r != -EPROTO)
			breach("row: undocumented result", size);
		if (r == 0 && len != ps_emb_row_bytes(dim, dtype))
			breach("row: accepted a row of the wrong size", size);
		fuzz_verdict = r == 0	      ? FUZZ_ACCEPT
			       : r == -EPROTO ? FUZZ_REJECT
					      : FUZZ_NONE;
	}
	free(buf);
	return 0;
}
