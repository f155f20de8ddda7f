/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ratings.c - libFuzzer target over trn_ratings_parse(), rdps-train's
 * loader of ratings text ("USER ITEM RATING [TIMESTAMP]" per line): the
 * bytes of a data file nobody checked.
 *
 * Input: byte 0 picks the size of the error buffer (1, 2, 16 or 256
 * bytes, allocated to exactly that size), the rest is the file's content,
 * handed over in a buffer of exactly its length with no NUL after it: a
 * parser that reads past len (strtod on the raw buffer) is caught by ASan.
 * Each input checks data.h's contract:
 *   - the result is 0 or a negative errno;
 *   - a failure leaves *out zeroed and a NUL-terminated message in err,
 *     "fuzz:LINE:COL: ..." when err has room for it;
 *   - a success has ids 0..TRN_MF_MAX_ID, users and items the largest id
 *     + 1 of each, finite ratings, no more ratings than lines, and
 *     trn_mf_data_free() frees it all (LeakSanitizer).
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
	fuzz_breach("fuzz_ratings", what, size);
}

static void check_ok(const struct trn_mf_data *d, const char *buf, size_t len,
		     size_t size)
{
	uint32_t users = 0, items = 0;
	size_t lines = 1;

	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	if (d->n > lines)
		breach("more ratings than lines", size);
	if (d->n && (!d->user || !d->item || !d->rating))
		breach("ratings without arrays", size);
	for (size_t i = 0; i < d->n; i++) {
		if (d->user[i] > TRN_MF_MAX_ID || d->item[i] > TRN_MF_MAX_ID)
			breach("an id out of range", size);
		if (!isfinite(d->rating[i]))
			breach("a rating that is not finite", size);
		if (d->user[i] + 1 > users)
			users = d->user[i] + 1;
		if (d->item[i] + 1 > items)
			items = d->item[i] + 1;
	}
	if (d->n && (d->users != users || d->items != items))
		breach("users or items is not the largest id + 1", size);
}

static int parse(const char *buf, size_t len, void *out, char *err,
		 size_t errlen)
{
	return trn_ratings_parse(buf, len, "fuzz", out, err, errlen);
}

static void check(const void *out, const char *buf, size_t len, size_t size)
{
	check_ok(out, buf, len, size);
}

static void free_out(void *out)
{
	trn_mf_data_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_loader l = {
		.target = "fuzz_ratings",
		.out_size = sizeof(struct trn_mf_data),
		.parse = parse,
		.check_ok = check,
		.free_out = free_out,
	};

	return fuzz_loader_run(&l, data, size);
}
