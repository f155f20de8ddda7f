/* SPDX-License-Identifier: MIT */
/*
 * rdps_base.h - the bottom layer (src/base/): logging, per-thread error
 * text, time and deadlines, byte order. Every other layer includes it;
 * it includes nothing of theirs (only the public rdps.h, for the log
 * levels and rdps_errmsg()). NUMA placement is numa.h beside it.
 */
#ifndef RDPS_BASE_H
#define RDPS_BASE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "rdps/rdps.h"

#if defined(__GNUC__)
#define RDPS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define rdps_likely(x) __builtin_expect(!!(x), 1)
#define rdps_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define RDPS_PRINTF(a, b)
#define rdps_likely(x) (x)
#define rdps_unlikely(x) (x)
#endif

#define RDPS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

extern int rdps_log_level_cur;

void rdps_log_emit(enum rdps_log_level lvl, const char *file, int line,
		   const char *fmt, ...) RDPS_PRINTF(4, 5);

/*
 * rdps_log(lvl, fmt, ...): checks the level before formatting and keeps
 * errno. Debug and trace compile out unless RDPS_DEBUG is defined.
 * Messages are lowercase, without '='.
 */
#define rdps_log(lvl, ...)                                                     \
	do {                                                                   \
		if ((lvl) <= rdps_log_level_cur &&                             \
		    ((lvl) <= RDPS_LOG_INFO || RDPS_DEBUG_ENABLED)) {          \
			int rdps_log_errno_ = errno;                           \
			rdps_log_emit((lvl), __FILE__, __LINE__, __VA_ARGS__); \
			errno = rdps_log_errno_;                               \
		}                                                              \
	} while (0)

#ifdef RDPS_DEBUG
#define RDPS_DEBUG_ENABLED 1
#else
#define RDPS_DEBUG_ENABLED 0
#endif

#define rdps_err(...) rdps_log(RDPS_LOG_ERROR, __VA_ARGS__)
#define rdps_warn(...) rdps_log(RDPS_LOG_WARN, __VA_ARGS__)
#define rdps_info(...) rdps_log(RDPS_LOG_INFO, __VA_ARGS__)
#define rdps_dbg(...) rdps_log(RDPS_LOG_DEBUG, __VA_ARGS__)

/*
 * Record the calling thread's error explanation (what was wrong and how to
 * fix it, one line) and return ret, so callers write
 *	return rdps_set_error(-EINVAL, "bad url '%s': ...", url);
 * The message is also logged at debug level.
 */
int rdps_set_error(int ret, const char *fmt, ...) RDPS_PRINTF(2, 3);
/* Forget the calling thread's error explanation. */
void rdps_clear_error(void);

/* Monotonic clock in nanoseconds. */
uint64_t rdps_now_ns(void);
/* The same clock as of the kernel's last tick: never ahead of
 * rdps_now_ns(), at most a tick (1-10 ms) behind, and no clock read (a
 * third of rdps_now_ns()'s ~20 ns). For the deadline of a long timeout on
 * a fast path, which may then fire up to a tick early; never to measure. */
uint64_t rdps_now_coarse_ns(void);

/* The rdps_now_ns() value timeout_ms from now; UINT64_MAX (never) for a
 * negative timeout_ms. */
uint64_t rdps_deadline(int timeout_ms);

/* Milliseconds left until deadline, rounded up, for poll(2) and
 * rdps_tp_wait(): 0 once it has passed, -1 for UINT64_MAX (never). */
int rdps_ms_left(uint64_t deadline);

static inline uint64_t rdps_htobe64(uint64_t v)
{
	return __builtin_bswap64(v);
}
#define rdps_be64toh rdps_htobe64
static inline uint32_t rdps_htobe32(uint32_t v)
{
	return __builtin_bswap32(v);
}
#define rdps_be32toh rdps_htobe32

#endif /* RDPS_BASE_H */
