/* SPDX-License-Identifier: MIT */
/*
 * job_worker.h - what the test workers of whole jobs (ps_worker.c,
 * emb_worker.c) share: CHECK() for a library call that must succeed, and
 * argument and allocation helpers that end the worker on failure. Each
 * worker defines fail() itself (its name in the message, its own
 * clean-up): print one line to stderr and _exit(1).
 */
#ifndef RDPS_TESTS_JOB_WORKER_H
#define RDPS_TESTS_JOB_WORKER_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdps/rdps.h"

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

/* A library call that must succeed. */
#define CHECK(call)                                                   \
	do {                                                          \
		int ret_ = (call);                                    \
		if (ret_ < 0)                                         \
			fail("line %d: %s: %s (%s)", __LINE__, #call, \
			     strerror(-ret_), rdps_errmsg());         \
	} while (0)

/* A whole number argument (decimal or 0x hex), else fail naming what. */
static inline uint64_t arg_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		fail("bad %s '%s'", what, s);
	return v;
}

/* calloc that fails the worker when out of memory (n 0: one element). */
static inline void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		fail("out of memory");
	return p;
}

#endif /* RDPS_TESTS_JOB_WORKER_H */
