/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - what the fuzz targets share with replay.c.
 *
 * Every target defines LLVMFuzzerTestOneInput() and the variable
 * fuzz_verdict, which it sets to what the parser under test said about the
 * input at offset 0: FUZZ_ACCEPT (parsed), FUZZ_REJECT (refused) or
 * FUZZ_NONE (no single verdict, e.g. a short read that wants more bytes).
 * libFuzzer ignores it. replay.c checks it against the seed's file name:
 * a seed named "ok-*" must be accepted, one named "bad-*" refused, so the
 * corpus replay asserts the parsers' verdicts as well as "no crash".
 *
 * A contract breach (a parser accepting what it must refuse, an output
 * outside its stated limits) aborts through fuzz_breach(), which both
 * libFuzzer and ctest report as a crash.
 */
#ifndef RDPS_FUZZ_H
#define RDPS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum fuzz_verdict {
	FUZZ_NONE = 0,
	FUZZ_ACCEPT,
	FUZZ_REJECT,
};

extern int fuzz_verdict;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_breach(const char *target, const char *what,
			       size_t size)
{
	fprintf(stderr, "%s: contract breach on a %zu-byte input: %s\n", target,
		size, what);
	abort();
}

#endif /* RDPS_FUZZ_H */
