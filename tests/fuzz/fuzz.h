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
#include <string.h>

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

/*
 * The data-loader targets' common input driver. Byte 0 picks the size of
 * the error buffer (1, 2, 16 or 256 bytes, allocated to exactly that), the
 * rest is the file, in a buffer of exactly its length with no NUL after
 * it. parse() fills out (out_size bytes, pre-filled with junk the parser
 * must not trust); the contract checked: 0 or a negative errno; a failure
 * leaves out zeroed and a NUL-terminated message, "fuzz:..." when err has
 * room; a success passes check_ok(); free_out() releases it (LeakSanitizer).
 */
struct fuzz_loader {
	const char *target;
	size_t out_size;
	int (*parse)(const char *buf, size_t len, void *out, char *err,
		     size_t errlen);
	void (*check_ok)(const void *out, const char *buf, size_t len,
			 size_t size);
	void (*free_out)(void *out);
};

static inline int fuzz_loader_run(const struct fuzz_loader *l,
				  const uint8_t *data, size_t size)
{
	static const size_t errlens[] = {1, 2, 16, 256};
	size_t errlen, len;
	char *buf, *err;
	void *out, *zero;
	int ret;

	fuzz_verdict = FUZZ_NONE;
	if (!size)
		return 0;
	errlen = errlens[data[0] % 4];
	len = size - 1;
	buf = malloc(len ? len : 1);
	err = malloc(errlen);
	out = malloc(l->out_size);
	zero = calloc(1, l->out_size);
	if (!buf || !err || !out || !zero)
		goto out;
	memcpy(buf, data + 1, len);
	memset(err, 0x5a, errlen);
	memset(out, 0x5a, l->out_size); /* the parser must not trust it */

	ret = l->parse(buf, len, out, err, errlen);
	if (ret > 0)
		fuzz_breach(l->target, "returned a positive value", size);
	if (ret) {
		fuzz_verdict = FUZZ_REJECT;
		if (memcmp(out, zero, l->out_size))
			fuzz_breach(l->target, "failed without zeroing out",
				    size);
		if (!memchr(err, '\0', errlen))
			fuzz_breach(l->target,
				    "failed without a NUL-terminated message",
				    size);
		if (errlen >= 16 && strncmp(err, "fuzz:", 5))
			fuzz_breach(l->target,
				    "failed without \"NAME:\" in the message",
				    size);
	} else {
		fuzz_verdict = FUZZ_ACCEPT;
		l->check_ok(out, buf, len, size);
	}
	l->free_out(out);
out:
	free(zero);
	free(out);
	free(err);
	free(buf);
	return 0;
}

#endif /* RDPS_FUZZ_H */
