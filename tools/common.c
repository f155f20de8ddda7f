/* SPDX-License-Identifier: MIT */
/* common.c - option parsing and result printing shared by the tools. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "server.h"

const char *tool_name = "rdps";

void tool_err(const char *fmt, ...)
{
	/* The whole line in one write: the processes of a job share stderr,
	 * and a line written in pieces (name, text, newline: stderr is
	 * unbuffered) got cut by another process's. One write of at most
	 * PIPE_BUF bytes to a pipe is never interleaved. */
	char line[4096];
	size_t len;
	va_list ap;

	snprintf(line, sizeof(line), "%s: ", tool_name);
	len = strlen(line);
	va_start(ap, fmt);
	vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	len = strlen(line);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

int tool_check_transport(const char *s)
{
	if (!strcmp(s, "shm") || !strcmp(s, "tcp") || !strcmp(s, "verbs"))
		return 0;
	tool_err("unknown transport '%s': use shm, tcp or verbs", s);
	return -EINVAL;
}

int tool_parse_model(const char *s, enum rdps_model *model_out)
{
	int ret = rdps_model_parse(s, model_out);

	if (ret)
		tool_err("%s", rdps_errmsg());
	return ret;
}

int tool_parse_on_loss(const char *s, enum rdps_on_loss *out)
{
	if (!rdps_on_loss_parse(s, out))
		return 0;
	tool_err("bad --on-worker-loss '%s': use fail or continue", s);
	return -EINVAL;
}

int tool_check_on_loss(enum rdps_on_loss loss, enum rdps_model model)
{
	if (loss != RDPS_LOSS_CONTINUE || !rdps_model_in_order(model))
		return 0;
	tool_err("--on-worker-loss continue needs --model ssp or asp (%s "
		 "results need every worker; checkpoint and resume instead)",
		 rdps_model_name(model));
	return -EINVAL;
}

int tool_parse_heartbeat(const char *s, unsigned *ms_out)
{
	uint64_t v;

	if (tool_parse_count(s, "heartbeat", 0, RDPS_SERVER_HEARTBEAT_MAX, &v))
		return -EINVAL;
	if (v && v < RDPS_SERVER_HEARTBEAT_MIN) {
		tool_err("heartbeat %s ms is too short: at least %u ms (or 0 "
			 "for no liveness checks)",
			 s, RDPS_SERVER_HEARTBEAT_MIN);
		return -EINVAL;
	}
	*ms_out = (unsigned)v;
	return 0;
}

uint64_t tool_job_token(void)
{
	uint64_t t = 0;

	if (getrandom(&t, sizeof(t), 0) != sizeof(t))
		t = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^
		    rdps_now_ns();
	return t ? t : 1;
}

int tool_status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

void tool_status_str(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d",
			 tool_status_code(status));
}

int tool_proc_stat(int pid, int tid, char *state, double *cpu_ms)
{
	char path[96], buf[1024], *p;
	unsigned long long ut, st;
	char c;
	FILE *f;
	size_t n;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the name in parentheses (which may hold anything): the
	 * state, fields 4..13, then utime and stime in clock ticks. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1,
			 " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
			 "%llu",
			 &c, &ut, &st) != 3)
		return -1;
	if (state)
		*state = c;
	if (cpu_ms)
		*cpu_ms =
			(double)(ut + st) * 1e3 / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

int tool_proc_stopped(int pid)
{
	char state;

	return !tool_proc_stat(pid, 0, &state, NULL) &&
	       (state == 'T' || state == 't');
}

void tool_place(struct rdps_tp *tp)
{
	int ret = rdps_tp_bind_poller(tp);

	if (ret)
		tool_err("warning: pollers left unbound: %s", rdps_errmsg());
	else if (tp->place.reason != RDPS_NUMA_NONE)
		tool_err("%s pollers on numa node %d, cpus %s (%s)",
			 tp->ops->name, tp->place.node, tp->place.cpus,
			 rdps_numa_reason_str(tp->place.reason));
}

int tool_fail(int ret, const char *what)
{
	const char *msg = rdps_errmsg();

	if (msg && *msg)
		tool_err("%s", msg);
	else
		tool_err("%s: %s", what, strerror(ret < 0 ? -ret : ret));
	return 1;
}

/* Parse one byte count; *end gets the first unparsed character. */
static int parse_bytes_prefix(const char *s, unsigned long long *out,
			      const char **end)
{
	unsigned long long v, mult = 1;
	char *e;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno)
		return -EINVAL;
	switch (*e) {
	case 'k':
	case 'K':
		mult = 1ull << 10;
		e++;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		e++;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		e++;
		break;
	}
	if (mult > 1 && (*e == 'i' || *e == 'I') &&
	    (e[1] == 'b' || e[1] == 'B'))
		e += 2;
	else if (*e == 'b' || *e == 'B')
		e++;
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	*end = e;
	return 0;
}

static void bytes_str(size_t v, char *buf, size_t len)
{
	if (v >= (1u << 20) && !(v % (1u << 20)))
		snprintf(buf, len, "%zu MiB", v >> 20);
	else if (v >= 1024 && !(v % 1024))
		snprintf(buf, len, "%zu KiB", v >> 10);
	else
		snprintf(buf, len, "%zu B", v);
}

/* item is the first len characters of the item, for the message. */
static int bytes_in_range(const char *item, size_t len, unsigned long long v,
			  size_t min, size_t max)
{
	char lo[32], hi[32];

	if (v >= min && v <= max)
		return 0;
	bytes_str(min, lo, sizeof(lo));
	bytes_str(max, hi, sizeof(hi));
	tool_err("size '%.*s' out of range: use %s .. %s", (int)len, item, lo,
		 hi);
	return -EINVAL;
}

int tool_parse_bytes(const char *s, size_t min, size_t max, size_t *out)
{
	unsigned long long v;
	const char *end;

	if (parse_bytes_prefix(s, &v, &end) || *end) {
		tool_err("bad size '%s': use a number with an optional k, m "
			 "or g suffix, e.g. 64, 4k, 1m",
			 s);
		return -EINVAL;
	}
	if (bytes_in_range(s, strlen(s), v, min, max))
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

int tool_parse_sizes(const char *s, size_t min, size_t max, size_t *sizes,
		     size_t max_n, size_t *n_out)
{
	unsigned long long lo, hi;
	const char *p = s, *end;
	size_t n = 0, len;

	if (!*s) {
		tool_err("empty size list: give e.g. -s 8,64,4k or -s 8..4m");
		return -EINVAL;
	}
	for (;;) {
		const char *comma = strchr(p, ',');

		/* Parse in place: an item may be of any length. */
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (parse_bytes_prefix(p, &lo, &end) || end > p + len)
			goto bad;
		hi = lo;
		if (end + 2 <= p + len && end[0] == '.' && end[1] == '.') {
			if (parse_bytes_prefix(end + 2, &hi, &end) || hi < lo)
				goto bad;
		}
		if (end != p + len)
			goto bad;
		if (bytes_in_range(p, len, lo, min, max) ||
		    bytes_in_range(p, len, hi, min, max))
			return -EINVAL;
		for (unsigned long long v = lo;; v *= 2) {
			if (v > hi)
				v = hi;
			if (n == max_n) {
				tool_err("too many sizes in '%s': at most %zu",
					 s, max_n);
				return -EINVAL;
			}
			sizes[n++] = (size_t)v;
			if (v == hi)
				break;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	*n_out = n;
	return 0;
bad:
	tool_err("bad size '%.*s' in '%s': use sizes like 8,64,4k,1m or a "
		 "doubling range like 8..4m",
		 (int)len, p, s);
	return -EINVAL;
}

int tool_parse_count(const char *s, const char *what, uint64_t min,
		     uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v < min ||
	    v > max) {
		tool_err("bad %s '%s': use a whole number in %" PRIu64
			 " .. %" PRIu64,
			 what, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static const char *const poll_names[] = {"busy", "adaptive", "event"};

int tool_parse_poll(const char *s, enum rdps_tp_poll_mode *out)
{
	for (size_t i = 0; i < RDPS_ARRAY_SIZE(poll_names); i++) {
		if (!strcmp(s, poll_names[i])) {
			*out = (enum rdps_tp_poll_mode)i;
			return 0;
		}
	}
	tool_err("bad poll mode '%s': use busy, adaptive or event", s);
	return -EINVAL;
}

const char *tool_poll_name(enum rdps_tp_poll_mode mode)
{
	return (unsigned)mode < RDPS_ARRAY_SIZE(poll_names) ? poll_names[mode]
							    : "?";
}

int tool_set_log_level(const char *s)
{
	enum rdps_log_level lvl;

	if (rdps_log_parse_level(s, &lvl)) {
		tool_err("bad log level '%s': use error, warn, info, debug or "
			 "trace (or 0..4)",
			 s);
		return -EINVAL;
	}
	rdps_log_set_level(lvl);
	return 0;
}

void tool_print_header(FILE *f, enum tool_fmt fmt, int bw)
{
	switch (fmt) {
	case TOOL_FMT_TABLE:
		if (bw)
			fprintf(f, "%10s %10s %11s %10s %10s\n", "bytes",
				"iters", "outstanding", "bw_gbps", "mops");
		else
			fprintf(f,
				"%10s %10s %9s %9s %9s %9s %9s %9s %9s %9s\n",
				"bytes", "iters", "min_us", "median_us",
				"avg_us", "stdev_us", "p99_us", "p99.9_us",
				"max_us", "batch_us");
		break;
	case TOOL_FMT_CSV:
		if (bw)
			fprintf(f, "transport,op,bytes,iters,outstanding,"
				   "bw_gbps,mops\n");
		else
			fprintf(f, "transport,op,bytes,iters,min_us,"
				   "median_us,avg_us,stdev_us,p99_us,"
				   "p99.9_us,max_us,batch_us\n");
		break;
	case TOOL_FMT_JSON:
		break;
	}
}

void tool_print_row(FILE *f, enum tool_fmt fmt, const char *transport,
		    const struct rdps_perf_result *r)
{
	const char *op = rdps_perf_op_name(r->op);
	int bw = r->outstanding > 0;

	switch (fmt) {
	case TOOL_FMT_TABLE:
		if (bw)
			fprintf(f, "%10zu %10" PRIu64 " %11u %10.3f %10.3f\n",
				r->size, r->iters, r->outstanding, r->bw_gbps,
				r->mops);
		else if (r->batch_us > 0)
			fprintf(f,
				"%10zu %10" PRIu64 " %9.3f %9.3f %9.3f %9.3f "
				"%9.3f %9.3f %9.3f %9.4f\n",
				r->size, r->iters, r->min_us, r->median_us,
				r->avg_us, r->stdev_us, r->p99_us, r->p999_us,
				r->max_us, r->batch_us);
		else
			fprintf(f,
				"%10zu %10" PRIu64 " %9.3f %9.3f %9.3f %9.3f "
				"%9.3f %9.3f %9.3f %9s\n",
				r->size, r->iters, r->min_us, r->median_us,
				r->avg_us, r->stdev_us, r->p99_us, r->p999_us,
				r->max_us, "-");
		break;
	case TOOL_FMT_CSV:
		if (bw)
			fprintf(f, "%s,%s,%zu,%" PRIu64 ",%u,%.4f,%.4f\n",
				transport, op, r->size, r->iters,
				r->outstanding, r->bw_gbps, r->mops);
		else {
			fprintf(f,
				"%s,%s,%zu,%" PRIu64
				",%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,",
				transport, op, r->size, r->iters, r->min_us,
				r->median_us, r->avg_us, r->stdev_us, r->p99_us,
				r->p999_us, r->max_us);
			/* Empty where no batched figure was taken. */
			if (r->batch_us > 0)
				fprintf(f, "%.4f", r->batch_us);
			fputc('\n', f);
		}
		break;
	case TOOL_FMT_JSON:
		fprintf(f,
			"{\"transport\":\"%s\",\"op\":\"%s\",\"size\":%zu,"
			"\"iters\":%" PRIu64 ",",
			transport, op, r->size, r->iters);
		if (bw)
			fprintf(f,
				"\"outstanding\":%u,\"bw_gbps\":%.4f,"
				"\"mops\":%.4f}\n",
				r->outstanding, r->bw_gbps, r->mops);
		else
			fprintf(f,
				"\"lat_us\":{\"min\":%.4f,\"median\":%.4f,"
				"\"avg\":%.4f,\"stdev\":%.4f,\"p99\":%.4f,"
				"\"p999\":%.4f,\"max\":%.4f",
				r->min_us, r->median_us, r->avg_us, r->stdev_us,
				r->p99_us, r->p999_us, r->max_us);
		if (!bw && r->batch_us > 0)
			fprintf(f, ",\"batch\":%.4f", r->batch_us);
		if (!bw)
			fputs("}}\n", f);
		break;
	}
}
