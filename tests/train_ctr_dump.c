/* SPDX-License-Identifier: MIT */
/*
 * train_ctr_dump.c - read a Criteo TSV file with rdps-train's reader
 * (tools/train/ctr.c) and print what it parsed, for tests/train_ctr.sh to
 * compare with values worked out by hand:
 *
 *   SAMPLE: y=LABEL I<j>=VALUE ... C<c>=HEX ...
 *
 * one line a sample, listing the integer fields whose value is not 0
 * (%.5f: a float holds about 7 digits) and the categorical fields that
 * are not empty. The categorical value is recovered from the key by
 * inverting its mix here, so the line shows what the key encodes, not
 * what the reader saw. On a reader error: its one line on stderr, exit 1.
 */
#include <inttypes.h>
#include <stdio.h>

#include "ctr.h"

/* The inverse of trn_ctr_key()'s mix (splitmix64's finaliser), step by
 * step: x ^= x >> s is undone by xoring in the shifts s, 2s, ...; a
 * multiplication by an odd constant by its inverse modulo 2^64. */
static uint64_t unmix(uint64_t z)
{
	z ^= z >> 31 ^ z >> 62;
	z *= 0x319642b2d24d8ec3ull;
	z ^= z >> 27 ^ z >> 54;
	z *= 0x96de1b173f119089ull;
	z ^= z >> 30 ^ z >> 60;
	return z;
}

int main(int argc, char **argv)
{
	struct trn_ctr_data d;
	char err[512];

	if (argc != 2) {
		fprintf(stderr, "usage: train_ctr_dump FILE.tsv\n");
		return 2;
	}
	if (trn_criteo_load(argv[1], &d, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t i = 0; i < d.n; i++) {
		printf("%zu: y=%g", i, (double)d.y[i]);
		for (unsigned j = 0; j < TRN_CTR_NINT; j++)
			if (d.num[i * TRN_CTR_NINT + j] != 0)
				printf(" I%u=%.5f", j + 1,
				       (double)d.num[i * TRN_CTR_NINT + j]);
		for (unsigned c = 0; c < TRN_CTR_NCAT; c++) {
			uint64_t w = unmix(d.key[i * TRN_CTR_NCAT + c]);

			if (w >> 33 != c)
				printf(" C%u=field-%" PRIu64 "?", c + 1,
				       w >> 33);
			else if (!(w >> 32 & 1))
				printf(" C%u=%08" PRIx64, c + 1,
				       (uint64_t)(w & 0xffffffffu));
			else if (w & 0xffffffffull)
				printf(" C%u=empty-with-value?", c + 1);
		}
		printf("\n");
	}
	trn_ctr_data_free(&d);
	return 0;
}
