/* SPDX-License-Identifier: MIT */
/*
 * fuzz_libsvm.c - libFuzzer target over trn_libsvm_parse(), rdps-train's
 * loader of LIBSVM text ("LABEL INDEX:VALUE ..." per line): the bytes of
 * a data file nobody checked.
 *
 * Input: byte 0 picks the size of the error buffer (1, 2, 16 or 256
 * bytes, allocated to exactly that size), the rest is the file's content,
 * handed over in a buffer of exactly its length with no NUL after it: a
 * parser that reads past len (strtod on the raw buffer) is caught by ASan.
 * Each input checks data.h's contract:
 *   - the result is 0 or a negative errno;
 *   - a failure leaves *out zeroed and a NUL-terminated message in err,
 *     "fuzz:LINE:COL: ..." when err has room for it;
 *   - a success is well-formed CSR: off[0] = 0, off[n] = nnz, offsets
 *     ascending; indices 1..TRN_LR_MAX_FEATURE strictly ascending within
 *     a sample and below dim, dim the largest index + 1 (1 if none);
 *     finite values; labels +1 or -1; no more samples than lines and no
 *     more non-zeros than ':' bytes; trn_lr_data_free() frees it all
 *     (LeakSanitizer).
 * Verdict (fuzz.h): whether the file was accepted.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "fuzz.h"

int fuzz_verdict;

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_libsvm", what, size);
}

static size_t count_byte(const char *p, size_t n, char c)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += p[i] == c;
	return k;
}

static void check_ok(const struct trn_lr_data *d, const char *buf, size_t len,
		     size_t size)
{
	uint32_t top = 0;

	if (d->n > count_byte(buf, len, '\n') + 1 ||
	    d->nnz > count_byte(buf, len, ':'))
		breach("more samples or non-zeros than the input holds", size);
	if (d->n && (!d->off || !d->y))
		breach("samples without arrays", size);
	if (d->nnz && (!d->idx || !d->val))
		breach("non-zeros without arrays", size);
	if (d->off && (d->off[0] != 0 || d->off[d->n] != d->nnz))
		breach("offsets do not span the non-zeros", size);
	for (size_t i = 0; i < d->n; i++) {
		if (d->off[i] > d->off[i + 1])
			breach("offsets descend", size);
		if (d->y[i] != 1.0f && d->y[i] != -1.0f)
			breach("a label other than +1 or -1", size);
		for (size_t j = d->off[i]; j < d->off[i + 1]; j++) {
			if (d->idx[j] < 1 || d->idx[j] > TRN_LR_MAX_FEATURE)
				breach("an index out of range", size);
			if (j > d->off[i] && d->idx[j] <= d->idx[j - 1])
				breach("indices not strictly ascending", size);
			if (!isfinite(d->val[j]))
				breach("a value that is not finite", size);
			if (d->idx[j] > top)
				top = d->idx[j];
		}
	}
	if (d->dim != top + 1)
		breach("dim is not the largest index + 1", size);
}

static int parse(const char *buf, size_t len, void *out, char *err,
		 size_t errlen)
{
	return trn_libsvm_parse(buf, len, "fuzz", out, err, errlen);
}

static void check(const void *out, const char *buf, size_t len, size_t size)
{
	check_ok(out, buf, len, size);
}

static void free_out(void *out)
{
	trn_lr_data_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_loader l = {
		.target = "fuzz_libsvm",
		.out_size = sizeof(struct trn_lr_data),
		.parse = parse,
		.check_ok = check,
		.free_out = free_out,
	};

	return fuzz_loader_run(&l, data, size);
}
