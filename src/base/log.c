/* SPDX-License-Identifier: MIT */
/* log.c - leveled logging to stderr and per-thread error explanations. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "rdps_base.h"

static int log_level_from_env(void);

int rdps_log_level_cur = -1; /* -1: not read from the environment yet */

static _Thread_local char errmsg_buf[512];

static const char *const level_names[] = {"error", "warn", "info", "debug",
					  "trace"};

const char *rdps_version(void)
{
	return RDPS_VERSION_STRING;
}

int rdps_log_parse_level(const char *s, enum rdps_log_level *level_out)
{
	if (!s || !*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '4' && s[1] == '\0') {
		*level_out = (enum rdps_log_level)(s[0] - '0');
		return 0;
	}
	for (size_t i = 0; i < RDPS_ARRAY_SIZE(level_names); i++) {
		if (!strcasecmp(s, level_names[i])) {
			*level_out = (enum rdps_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void rdps_log_set_level(enum rdps_log_level level)
{
	rdps_log_level_cur = (int)level;
}

static int log_level_from_env(void)
{
	enum rdps_log_level lvl = RDPS_LOG_WARN;
	const char *s = getenv("RDPS_LOG_LEVEL");

	if (s && rdps_log_parse_level(s, &lvl))
		fprintf(stderr,
			"rdps: ignoring RDPS_LOG_LEVEL '%s': use error, warn, "
			"info, debug or trace\n",
			s);
	return (int)lvl;
}

/* Runs before main so the hot-path level check is one compare. */
__attribute__((constructor)) static void log_init(void)
{
	if (rdps_log_level_cur < 0)
		rdps_log_level_cur = log_level_from_env();
}

void rdps_log_emit(enum rdps_log_level lvl, const char *file, int line,
		   const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	const char *base = strrchr(file, '/');

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "rdps[%d] %s %s:%d %s\n", (int)getpid(),
		level_names[lvl], base ? base + 1 : file, line, msg);
}

int rdps_set_error(int ret, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(errmsg_buf, sizeof(errmsg_buf), fmt, ap);
	va_end(ap);
	rdps_dbg("error: %s", errmsg_buf);
	errno = saved;
	return ret;
}

void rdps_clear_error(void)
{
	errmsg_buf[0] = '\0';
}

const char *rdps_errmsg(void)
{
	return errmsg_buf;
}
