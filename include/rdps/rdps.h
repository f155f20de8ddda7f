/* SPDX-License-Identifier: MIT */
/*
 * rdps.h - public API of rdps, a parameter server whose data path is
 * one-sided RDMA. Users of this header need no rdma-core headers.
 *
 * Conventions: functions return 0 (or a count >= 0) on success and a
 * negative errno on failure; out-parameters (named *_out) are set only on
 * success. After a failure, rdps_errmsg() gives a one-line explanation of
 * what was wrong and how to fix it, for the calling thread.
 */
#ifndef RDPS_RDPS_H
#define RDPS_RDPS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RDPS_VERSION_MAJOR 0
#define RDPS_VERSION_MINOR 1
#define RDPS_VERSION_PATCH 0
#define RDPS_VERSION_STRING "0.1.0"

/* Version of the library actually linked. */
const char *rdps_version(void);

/*
 * The last error explanation recorded on this thread, or "" if none. The
 * string stays valid until the next rdps call on this thread.
 */
const char *rdps_errmsg(void);

/* Log levels; the level comes from RDPS_LOG_LEVEL (name or number) or
 * rdps_log_set_level(). Logs go to stderr, never to stdout. */
enum rdps_log_level {
	RDPS_LOG_ERROR = 0,
	RDPS_LOG_WARN,
	RDPS_LOG_INFO,
	RDPS_LOG_DEBUG,
	RDPS_LOG_TRACE,
};

void rdps_log_set_level(enum rdps_log_level level);
/* Parse "error|warn|info|debug|trace" or a digit; -EINVAL if neither. */
int rdps_log_parse_level(const char *s, enum rdps_log_level *level_out);

#ifdef __cplusplus
}
#endif
#endif /* RDPS_RDPS_H */
