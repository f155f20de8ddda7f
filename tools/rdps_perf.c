/* SPDX-License-Identifier: MIT */
/*
 * rdps_perf.c - rdps-perf, the perftest-style microbenchmark of the rdps
 * transports. Parses options and prints; the measuring is in src/perf/perf.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define DEF_ITERS 10000
#define DEF_WARMUP 1000
#define DEF_TIMEOUT_MS 10000
#define MAX_SIZES 64
#define OPT_REPORT_FD 0x100 /* internal: --local's server reports here */
#define OPT_PINGPONG 0x101

/* MODE_MEMCPY: a local reference, no transport (o->op says which). */
enum mode { MODE_CLIENT, MODE_SERVER, MODE_LOCAL, MODE_MEMCPY };

struct opts {
	enum mode mode;
	enum rdps_perf_op op;
	size_t sizes[MAX_SIZES];
	size_t n_sizes;
	uint64_t iters, warmup;
	unsigned bw;
	enum tool_fmt fmt;
	enum rdps_tp_poll_mode poll;
	int once;
	int timeout_ms;
	int report_fd; /* -1, or the pipe to --local's client */
	const char *dev;
	const char *log_level;
	const char *url;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdps-perf [options] URL            run against a "
		"server\n"
		"       rdps-perf --server [options] URL   serve clients\n"
		"       rdps-perf --local [options] [SCHEME|URL]\n"
		"                      start a private server (default shm) "
		"and run against it\n"
		"       rdps-perf --memcpy [options]       single-thread "
		"memcpy reference\n"
		"       rdps-perf --pingpong [options]     floor under the "
		"write rows: two\n"
		"                      threads passing 8-byte stores, no "
		"transport\n"
		"\n"
		"URL is shm://NAME, tcp://HOST:PORT or verbs://HOST:PORT "
		"(built in: %s).\n"
		"--local listens on shm://rdps-perf-PID, tcp://127.0.0.1:0 "
		"or verbs://$RDPS_PERF_ADDR:0\n"
		"for a bare scheme; its server is a fresh rdps-perf process.\n"
		"\n"
		"Options:\n"
		"  -o, --op=OP          read, write, fadd or cas (read)\n"
		"  -s, --size=SIZES     sizes like 8,64,4k,1m or a doubling "
		"range 8..4m,\n"
		"                       8 B .. 4 MiB; fadd and cas are 8 only "
		"(8; memcpy 1m)\n"
		"  -n, --iters=N        measured iterations per size (%d)\n"
		"  -w, --warmup=N       warm-up iterations per size (%d)\n"
		"  -b, --bw=N           bandwidth with N operations "
		"outstanding (off: latency)\n"
		"  -c, --csv            CSV output\n"
		"  -j, --json           one JSON object per size\n"
		"  -P, --poll=MODE      busy, adaptive or event (busy)\n"
		"  -t, --timeout=MS     connect and per-operation timeout "
		"(%d)\n"
		"  -d, --dev=DEV        verbs device (first usable)\n"
		"  -S, --server         serve clients one after another until "
		"killed\n"
		"  -1, --once           with --server: exit after one client\n"
		"  -l, --local          start a server process, run, stop it\n"
		"  -m, --memcpy         measure memcpy between two buffers "
		"instead\n"
		"      --pingpong       measure a store ping-pong of two "
		"threads instead\n"
		"  -L, --log-level=LVL  error, warn, info, debug or trace "
		"(warn; env RDPS_LOG_LEVEL)\n"
		"                       env RDPS_PERF_CLOCK=tsc|monotonic "
		"picks the timing clock\n"
		"  -V, --version        print the version\n"
		"  -h, --help           this help\n"
		"\n"
		"Latency is half a round trip for write (ping-pong) and one "
		"whole operation\n"
		"for read, fadd and cas, in microseconds. Results go to "
		"stdout, the rest to stderr.\n",
		rdps_tp_names(), DEF_ITERS, DEF_WARMUP, DEF_TIMEOUT_MS);
}

/* Parse argv into o; returns 0, 1 (help/version printed) or -EINVAL. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option long_opts[] = {
		{"op", required_argument, NULL, 'o'},
		{"size", required_argument, NULL, 's'},
		{"iters", required_argument, NULL, 'n'},
		{"warmup", required_argument, NULL, 'w'},
		{"bw", required_argument, NULL, 'b'},
		{"csv", no_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"poll", required_argument, NULL, 'P'},
		{"timeout", required_argument, NULL, 't'},
		{"dev", required_argument, NULL, 'd'},
		{"server", no_argument, NULL, 'S'},
		{"once", no_argument, NULL, '1'},
		{"local", no_argument, NULL, 'l'},
		{"memcpy", no_argument, NULL, 'm'},
		{"log-level", required_argument, NULL, 'L'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{"report-fd", required_argument, NULL, OPT_REPORT_FD},
		{"pingpong", no_argument, NULL, OPT_PINGPONG},
		{NULL, 0, NULL, 0},
	};
	int ch, sizes_given = 0, op_given = 0, n_modes = 0;
	enum rdps_perf_op ref = RDPS_PERF_MEMCPY;
	uint64_t v;

	memset(o, 0, sizeof(*o));
	o->op = RDPS_PERF_READ;
	o->iters = DEF_ITERS;
	o->warmup = DEF_WARMUP;
	o->poll = RDPS_TP_POLL_BUSY;
	o->timeout_ms = DEF_TIMEOUT_MS;
	o->report_fd = -1;
	o->mode = MODE_CLIENT;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":o:s:n:w:b:cjP:t:d:S1lmL:Vh",
				 long_opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			rdps_clear_error();
			if (rdps_perf_op_parse(optarg, &o->op) ||
			    rdps_perf_op_is_local(o->op)) {
				tool_err("unknown operation '%s': use read, "
					 "write, fadd or cas",
					 optarg);
				return -EINVAL;
			}
			op_given = 1;
			break;
		case 's':
			if (tool_parse_sizes(optarg, RDPS_PERF_MIN_SIZE,
					     RDPS_PERF_MAX_SIZE, o->sizes,
					     MAX_SIZES, &o->n_sizes))
				return -EINVAL;
			sizes_given = 1;
			break;
		case 'n':
			if (tool_parse_count(optarg, "iteration count", 1,
					     100000000, &o->iters))
				return -EINVAL;
			break;
		case 'w':
			if (tool_parse_count(optarg, "warm-up count", 0,
					     100000000, &o->warmup))
				return -EINVAL;
			break;
		case 'b':
			if (tool_parse_count(optarg, "outstanding count", 1,
					     65536, &v))
				return -EINVAL;
			o->bw = (unsigned)v;
			break;
		case 'c':
			o->fmt = TOOL_FMT_CSV;
			break;
		case 'j':
			o->fmt = TOOL_FMT_JSON;
			break;
		case 'P':
			if (tool_parse_poll(optarg, &o->poll))
				return -EINVAL;
			break;
		case 't':
			if (tool_parse_count(optarg, "timeout", 1, 3600000, &v))
				return -EINVAL;
			o->timeout_ms = (int)v;
			break;
		case 'd':
			o->dev = optarg;
			break;
		case 'S':
			o->mode = MODE_SERVER;
			n_modes++;
			break;
		case '1':
			o->once = 1;
			break;
		case 'l':
			o->mode = MODE_LOCAL;
			n_modes++;
			break;
		case 'm':
			o->mode = MODE_MEMCPY;
			ref = RDPS_PERF_MEMCPY;
			n_modes++;
			break;
		case OPT_PINGPONG:
			o->mode = MODE_MEMCPY;
			ref = RDPS_PERF_PINGPONG;
			n_modes++;
			break;
		case 'L':
			if (tool_set_log_level(optarg))
				return -EINVAL;
			o->log_level = optarg;
			break;
		case OPT_REPORT_FD:
			if (tool_parse_count(optarg, "report fd", 0, 65535, &v))
				return -EINVAL;
			o->report_fd = (int)v;
			break;
		case 'V':
			printf("rdps-perf %s (transports %s)\n", rdps_version(),
			       rdps_tp_names());
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			tool_err("option '%s' needs a value (see rdps-perf "
				 "--help)",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			tool_err("unknown option '%s' (see rdps-perf --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (n_modes > 1) {
		tool_err("--server, --local, --memcpy and --pingpong exclude "
			 "each other: pick one");
		return -EINVAL;
	}
	if (optind < argc)
		o->url = argv[optind++];
	if (optind < argc) {
		tool_err("unexpected argument '%s': give one URL",
			 argv[optind]);
		return -EINVAL;
	}
	if (o->mode == MODE_MEMCPY) {
		if (op_given || o->url) {
			tool_err("--%s takes no URL and no -o",
				 rdps_perf_op_name(ref));
			return -EINVAL;
		}
		o->op = ref;
	}
	if (!sizes_given) {
		o->sizes[0] =
			o->op == RDPS_PERF_MEMCPY ? RDPS_PERF_MAX_SIZE / 4 : 8;
		o->n_sizes = 1;
	}
	if (o->op == RDPS_PERF_PINGPONG && o->bw) {
		tool_err("--pingpong is a latency reference: drop -b");
		return -EINVAL;
	}
	if (rdps_perf_op_is_atomic(o->op) || o->op == RDPS_PERF_PINGPONG) {
		for (size_t i = 0; i < o->n_sizes; i++) {
			if (o->sizes[i] != 8) {
				tool_err("%s works on 8-byte words only, not "
					 "%zu bytes: use -s 8",
					 rdps_perf_op_name(o->op), o->sizes[i]);
				return -EINVAL;
			}
		}
	}
	if ((o->mode == MODE_CLIENT || o->mode == MODE_SERVER) && !o->url) {
		tool_err("missing URL: give e.g. shm://NAME or "
			 "tcp://HOST:PORT (see rdps-perf --help)");
		return -EINVAL;
	}
	if (o->once && o->mode != MODE_SERVER) {
		tool_err("--once only goes with --server");
		return -EINVAL;
	}
	if (o->report_fd >= 0 && o->mode != MODE_SERVER) {
		tool_err("--report-fd only goes with --server");
		return -EINVAL;
	}
	return 0;
}

/* Check the URL's scheme and form before touching any transport. For
 * --local, turn a bare scheme into its default URL in buf. */
static int check_url(struct opts *o, char *buf, size_t len)
{
	const struct rdps_tp_ops *ops;
	struct rdps_url u;

	if (o->mode == MODE_MEMCPY)
		return 0;
	if (o->mode == MODE_LOCAL && (!o->url || !strstr(o->url, "://"))) {
		const char *scheme = o->url ? o->url : "shm";

		rdps_clear_error();
		if (!rdps_tp_lookup(scheme))
			return tool_fail(-EINVAL, scheme);
		if (!strcmp(scheme, "shm"))
			snprintf(buf, len, "shm://rdps-perf-%d", (int)getpid());
		else if (!strcmp(scheme, "tcp"))
			snprintf(buf, len, "tcp://127.0.0.1:0");
		else if (!strcmp(scheme, "verbs")) {
			const char *addr = getenv("RDPS_PERF_ADDR");

			if (!addr || !*addr) {
				tool_err(
					"--local verbs needs the IP address of "
					"an RDMA device: set RDPS_PERF_ADDR=IP "
					"or give verbs://IP:0");
				return 1;
			}
			snprintf(buf, len,
				 strchr(addr, ':') ? "verbs://[%s]:0"
						   : "verbs://%s:0",
				 addr);
		} else {
			tool_err("--local has no default URL for %s: give a "
				 "full URL, e.g. %s://HOST:0",
				 scheme, scheme);
			return 1;
		}
		o->url = buf;
	}
	rdps_clear_error();
	ops = rdps_tp_lookup(o->url);
	if (!ops)
		return tool_fail(-EINVAL, o->url);
	if (rdps_url_parse(o->url, strcmp(ops->name, "shm") != 0, &u))
		return tool_fail(-EINVAL, o->url);
	return 0;
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	const struct rdps_perf_params *p = arg;

	tool_err("%s %zu B: %" PRIu64 "/%" PRIu64 " iterations",
		 rdps_perf_op_name(p->op), p->size, done, total);
}

static void describe(const struct opts *o, const char *transport)
{
	static const char *const how[] = {
		"whole operation", "half round trip (ping-pong)",
		"whole operation", "whole operation", "one copy"};

	if (o->op == RDPS_PERF_PINGPONG)
		tool_err("two threads' 8-byte store ping-pong, no transport "
			 "(half round trip), %" PRIu64 " iterations + %" PRIu64
			 " warm-up, clock %s",
			 o->iters, o->warmup, rdps_perf_clock());
	else if (o->mode == MODE_MEMCPY)
		tool_err("single-thread memcpy %s, %" PRIu64
			 " iterations + %" PRIu64 " warm-up",
			 o->bw ? "bandwidth" : "latency (one copy)", o->iters,
			 o->warmup);
	else if (o->bw)
		tool_err("%s %s bandwidth, %u outstanding, %" PRIu64
			 " iterations + %" PRIu64 " warm-up, poll %s",
			 transport, rdps_perf_op_name(o->op), o->bw, o->iters,
			 o->warmup, tool_poll_name(o->poll));
	else
		tool_err("%s %s latency (%s), %" PRIu64 " iterations + %" PRIu64
			 " warm-up, poll %s, clock %s",
			 transport, rdps_perf_op_name(o->op), how[o->op],
			 o->iters, o->warmup, tool_poll_name(o->poll),
			 rdps_perf_clock());
}

/* Measure every size on c (NULL for a local reference) and print the
 * rows. */
static int measure(const struct opts *o, struct rdps_perf_conn *c,
		   const char *transport)
{
	struct rdps_perf_params p;
	struct rdps_perf_result r;
	int ret;

	describe(o, transport);
	tool_print_header(stdout, o->fmt, o->bw > 0);
	for (size_t i = 0; i < o->n_sizes; i++) {
		rdps_perf_params_default(&p);
		p.op = o->op;
		p.size = o->sizes[i];
		p.iters = o->iters;
		p.warmup = o->warmup;
		p.outstanding = o->bw;
		p.timeout_ms = o->timeout_ms;
		p.stop = &stop_flag;
		p.progress = progress;
		p.progress_arg = &p;
		rdps_clear_error();
		ret = rdps_perf_run(c, &p, &r);
		if (ret == -EINTR)
			return 130;
		if (ret)
			return tool_fail(ret, "measuring");
		tool_print_row(stdout, o->fmt, transport, &r);
		fflush(stdout);
	}
	return 0;
}

static int run_client(const struct opts *o, const char *url,
		      const struct rdps_tp_cfg *cfg)
{
	struct rdps_perf_conn *c;
	int rc;

	rdps_clear_error();
	rc = rdps_perf_client_open(url, cfg, o->timeout_ms, &c);
	if (rc)
		return tool_fail(rc, url);
	tool_place(c->tp);
	rc = measure(o, c, c->tp->ops->name);
	rdps_perf_client_close(c);
	return rc;
}

/* Serve clients; with report_fd >= 0 write the URL there once listening
 * (for --local) and serve one client. */
static int run_server(const char *url, const struct rdps_tp_cfg *cfg, int once,
		      int report_fd)
{
	struct rdps_perf_server *s;
	char real[300];
	int ret, rc = 0, errors = 0;

	rdps_clear_error();
	ret = rdps_perf_server_open(url, cfg, &s);
	if (ret)
		return tool_fail(ret, url);
	if (rdps_perf_server_url(s, real, sizeof(real)))
		snprintf(real, sizeof(real), "%s", url);
	if (report_fd >= 0) {
		dprintf(report_fd, "%s\n", real);
		close(report_fd);
	} else {
		tool_err("serving on %s (stop with ctrl-c)", real);
	}
	while (!stop_flag) {
		rdps_clear_error();
		ret = rdps_perf_server_serve_one(s, 200, &stop_flag);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret == -EINTR)
			break;
		if (ret == 0 || ret == -ECONNRESET) {
			errors = 0;
			if (report_fd < 0)
				tool_err("client done%s%s", ret ? ": " : "",
					 ret ? rdps_errmsg() : "");
		} else {
			rc = tool_fail(ret, "serving a client");
			if (++errors == 10) {
				tool_err("giving up after 10 failures in a "
					 "row");
				break;
			}
		}
		if (once)
			break;
	}
	rdps_perf_server_close(s);
	return rc;
}

/* Read the local server's URL line from fd within timeout_ms. */
static int read_url(int fd, char *buf, size_t len, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t got = 0;
	ssize_t n;

	while (got + 1 < len) {
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		got += (size_t)n;
		buf[got] = '\0';
		if (strchr(buf, '\n')) {
			*strchr(buf, '\n') = '\0';
			return 0;
		}
	}
	return -EOVERFLOW;
}

static void reap(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	for (int i = 0; i < 300; i++) { /* up to 3 s, then force */
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/*
 * The child of run_local: become a fresh rdps-perf --server process that
 * reports its URL on report_fd. A fresh image, because librdmacm keeps
 * per-process device state that a forked child must not reuse. If the
 * exec fails, serve from the forked process, which is fine for the
 * software transports. Never returns.
 */
static void exec_server(const struct opts *o, const struct rdps_tp_cfg *cfg,
			int report_fd)
{
	char fd_s[16], timeout_s[16], bw_s[16];
	const char *argv[24];
	int n = 0, rc;

	snprintf(fd_s, sizeof(fd_s), "%d", report_fd);
	snprintf(timeout_s, sizeof(timeout_s), "%d", o->timeout_ms);
	snprintf(bw_s, sizeof(bw_s), "%u", o->bw);
	argv[n++] = "rdps-perf";
	argv[n++] = "--server";
	argv[n++] = "--once";
	argv[n++] = "--report-fd";
	argv[n++] = fd_s;
	argv[n++] = "--poll";
	argv[n++] = tool_poll_name(o->poll);
	argv[n++] = "--timeout";
	argv[n++] = timeout_s;
	if (o->bw) {
		argv[n++] = "--bw";
		argv[n++] = bw_s;
	}
	if (o->dev) {
		argv[n++] = "--dev";
		argv[n++] = o->dev;
	}
	if (o->log_level) {
		argv[n++] = "--log-level";
		argv[n++] = o->log_level;
	}
	argv[n++] = "--";
	argv[n++] = o->url;
	argv[n] = NULL;
	execv("/proc/self/exe", (char *const *)argv);
	if (!strncmp(o->url, "verbs:", 6)) {
		tool_err("cannot start the server (/proc/self/exe): %s",
			 strerror(errno));
		_exit(1);
	}
	tool_name = "rdps-perf server";
	rc = run_server(o->url, cfg, 1, report_fd);
	fflush(NULL);
	_exit(rc);
}

static int run_local(const struct opts *o, const struct rdps_tp_cfg *cfg)
{
	char url[300];
	int fds[2], ret, rc;
	pid_t parent = getpid(), pid;

	if (pipe(fds)) {
		tool_err("pipe: %s", strerror(errno));
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		tool_err("fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return 1;
	}
	if (pid == 0) {
		close(fds[0]);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		exec_server(o, cfg, fds[1]);
	}
	close(fds[1]);
	ret = read_url(fds[0], url, sizeof(url), o->timeout_ms);
	close(fds[0]);
	if (ret) {
		reap(pid);
		tool_err("the local server did not start on %s%s", o->url,
			 ret == -EPIPE ? " (see its error above)"
				       : ": timed out");
		return 1;
	}
	rc = run_client(o, url, cfg);
	reap(pid);
	return rc;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct rdps_tp_cfg cfg;
	struct opts o;
	char url_buf[128];
	int ret;

	tool_name = "rdps-perf";
	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = check_url(&o, url_buf, sizeof(url_buf));
	if (ret)
		return ret;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rdps_tp_cfg_default(&cfg);
	cfg.poll_mode = o.poll;
	cfg.dev = o.dev;
	if (o.bw > cfg.sq_depth)
		cfg.sq_depth = o.bw;
	if (cfg.cq_depth < cfg.sq_depth)
		cfg.cq_depth = cfg.sq_depth;

	switch (o.mode) {
	case MODE_MEMCPY:
		ret = measure(&o, NULL, "local");
		break;
	case MODE_SERVER:
		if (o.report_fd >= 0)
			tool_name = "rdps-perf server";
		ret = run_server(o.url, &cfg, o.once || o.report_fd >= 0,
				 o.report_fd);
		break;
	case MODE_LOCAL:
		ret = run_local(&o, &cfg);
		break;
	default:
		ret = run_client(&o, o.url, &cfg);
		break;
	}
	if (stop_flag && ret == 0 && o.mode != MODE_SERVER)
		ret = 130;
	return ret;
}
