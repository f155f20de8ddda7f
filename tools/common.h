/* SPDX-License-Identifier: MIT */
/*
 * common.h - helpers shared by the rdps command-line tools: reporting
 * errors in one line, parsing the shared options (sizes, counts, poll mode,
 * log level) and printing results as a table, CSV or JSON lines.
 *
 * Tools print results to stdout and everything else to stderr. Parsers
 * print their own one-line error ("<tool>: bad size 'x': use ...") and
 * return -EINVAL, so a tool only has to exit.
 */
#ifndef RDPS_TOOLS_COMMON_H
#define RDPS_TOOLS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "perf.h"
#include "rdps_base.h"

/* The tool's name for messages; set it first thing in main(). */
extern const char *tool_name;

/* Print "<tool>: <message>" and a newline to stderr. */
void tool_err(const char *fmt, ...) RDPS_PRINTF(1, 2);
/*
 * Report a failed library call: rdps_errmsg() if the library recorded an
 * explanation, else "<what>: <strerror(-ret)>". Returns 1, an exit code.
 * Call rdps_clear_error() before the call whose failure this reports.
 */
int tool_fail(int ret, const char *what);

/* 0 if s is a transport scheme this build knows (shm, tcp, verbs), else
 * one line on stderr and -EINVAL. */
int tool_check_transport(const char *s);

/* Parse a consistency model name (rdps_model_parse), or print one line on
 * stderr and return -EINVAL. */
int tool_parse_model(const char *s, enum rdps_model *model_out);

/* --on-worker-loss: parse "fail" or "continue" into *out, and check it
 * against the model (continue needs ssp or asp); else one line on stderr
 * and -EINVAL. */
int tool_parse_on_loss(const char *s, enum rdps_on_loss *out);
int tool_check_on_loss(enum rdps_on_loss loss, enum rdps_model model);

/* --heartbeat-ms: 0 (no liveness checks) or RDPS_SERVER_HEARTBEAT_MIN ..
 * _MAX milliseconds; else one line on stderr and -EINVAL. */
int tool_parse_heartbeat(const char *s, unsigned *ms_out);

/* A random job token, never 0 (getrandom, else the pid and the clocks). */
uint64_t tool_job_token(void);

/* A wait status as an exit code: the code, or 128 + the signal. */
int tool_status_code(int status);
/* A wait status as text: "exited with status N" or "was killed by signal
 * N (Name)". */
void tool_status_str(int status, char *buf, size_t len);

/* From /proc/PID/stat (tid non-zero: /proc/PID/task/TID/stat): the task's
 * state letter and its CPU time (user + system) in ms, each where its
 * pointer is not NULL. 0, or -1 when there is no such task here. */
int tool_proc_stat(int pid, int tid, char *state, double *cpu_ms);
/* Is process pid stopped (SIGSTOP, a debugger), from /proc/PID/stat? 0
 * also when it cannot be read. */
int tool_proc_stopped(int pid);

/* Bind the calling thread where the transport placed its pollers (verbs:
 * the NIC's NUMA node) and say where on stderr; a failure is a warning. */
void tool_place(struct rdps_tp *tp);

/*
 * Parse a byte count: digits with an optional binary suffix k, m or g
 * (either case, optionally followed by "b", "ib" or "iB"), within
 * [min, max].
 */
int tool_parse_bytes(const char *s, size_t min, size_t max, size_t *out);
/*
 * Parse a size list: comma-separated items, each a size or a range
 * "LO..HI" that doubles from LO up to HI (HI included even when not a
 * power-of-two step). At most max_n sizes, each within [min, max].
 */
int tool_parse_sizes(const char *s, size_t min, size_t max, size_t *sizes,
		     size_t max_n, size_t *n_out);
/* Parse a plain decimal count within [min, max]; what names it. */
int tool_parse_count(const char *s, const char *what, uint64_t min,
		     uint64_t max, uint64_t *out);
/* "busy", "adaptive" or "event". */
int tool_parse_poll(const char *s, enum rdps_tp_poll_mode *out);
const char *tool_poll_name(enum rdps_tp_poll_mode mode);
/* Parse a log level name or digit and apply it. */
int tool_set_log_level(const char *s);

/* Result output. */
enum tool_fmt {
	TOOL_FMT_TABLE = 0, /* aligned columns for people */
	TOOL_FMT_CSV,	    /* a header line, then comma-separated rows */
	TOOL_FMT_JSON,	    /* one JSON object per row, no header */
};

/*
 * Header: latency columns are bytes, iters, min, median, avg, stdev,
 * p99, p99.9, max in microseconds; bandwidth columns (bw != 0) are bytes,
 * iters, outstanding, GB/s (1e9 B/s) and million operations per second.
 */
void tool_print_header(FILE *f, enum tool_fmt fmt, int bw);
/* One row; transport names it in CSV and JSON ("shm", "tcp", "local"). */
void tool_print_row(FILE *f, enum tool_fmt fmt, const char *transport,
		    const struct rdps_perf_result *r);

#endif /* RDPS_TOOLS_COMMON_H */
