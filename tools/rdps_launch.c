/* SPDX-License-Identifier: MIT */
/*
 * rdps_launch.c - rdps-launch, starts a whole local job: S rdps-server
 * shards (the binary next to this one) and W worker processes running the
 * given command with the job's environment (RDPS_SHARDS, RDPS_RANK,
 * RDPS_WORKERS, RDPS_MODEL, RDPS_SLACK, RDPS_TOKEN, RDPS_ON_WORKER_LOSS).
 *
 * Exit status: 0 when every worker exited 0 (with --on-worker-loss
 * continue: when the workers that were not lost did); else the first
 * failing worker's status (128 + signal if it was killed), and it is named
 * on stderr. 124 on --timeout, 128 + signal when interrupted, 1 when a shard
 * failed on its own, 2 for bad usage.
 *
 * Children get PR_SET_PDEATHSIG, so a killed launcher takes its job down.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common.h"
#include "config.h"

#define MAX_SHARDS 256
#define MAX_WORKERS 1024
#define DEF_SHARDS 1
#define DEF_WORKERS 2
#define DEF_SSP_SLACK 1
#define START_TIMEOUT_MS 30000 /* a shard must report its URL by then */
#define GRACE_MS 3000	       /* SIGTERM, then SIGKILL after this */
/* After the first failure, the others may still report why they cannot go
 * on (e.g. which peer died) before they are stopped. */
#define FAIL_GRACE_MS 5000
#define URL_MAX 256

struct opts {
	unsigned shards, workers;
	const char *transport; /* shm, tcp or verbs */
	enum rdps_model model;
	const char *poll; /* the shards' polling mode, NULL: theirs */
	unsigned slack;
	int slack_given;
	const char *addr;
	unsigned timeout_s; /* 0: none */
	const char *ckpt_dir;
	unsigned ckpt_every;
	int resume;
	uint64_t resume_clock; /* found by resume_clock() */
	enum rdps_on_loss on_loss;
	const char *heartbeat; /* --heartbeat-ms for the shards, checked */
	char **cmd;
};

#define OPT_CKPT_DIR 0x100
#define OPT_CKPT_EVERY 0x101
#define OPT_RESUME 0x102
#define OPT_ON_LOSS 0x103
#define OPT_HEARTBEAT 0x104

struct proc {
	pid_t pid; /* 0 once reaped */
	int status;
};

static struct proc servers[MAX_SHARDS];
static struct proc workers[MAX_WORKERS];
static unsigned n_servers, n_workers;
/* --on-worker-loss continue: failed workers do not fail the job. */
static int go_on;
static unsigned n_lost, n_ok;
static int lost_code = -1;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdps-launch [options] -- CMD [ARGS...]\n"
		"\n"
		"Start a local rdps job: SHARDS rdps-server processes (the "
		"one next to\n"
		"rdps-launch), then WORKERS processes running CMD with "
		"RDPS_SHARDS,\n"
		"RDPS_RANK, RDPS_WORKERS, RDPS_MODEL, RDPS_SLACK and "
		"RDPS_TOKEN set.\n"
		"\n"
		"Options:\n"
		"  -s, --shards=N       server shards, 1 .. %d (%d)\n"
		"  -w, --workers=N      worker processes, 1 .. %d (%d)\n"
		"  -t, --transport=T    shm, tcp or verbs (shm)\n"
		"  -m, --model=M        bsp, ssp, asp or absp (bsp)\n"
		"  -k, --slack=N        ssp only: clocks a worker may run "
		"ahead (%d)\n"
		"  -a, --addr=IP        tcp and verbs: address the shards "
		"listen on\n"
		"                       (127.0.0.1)\n"
		"  -P, --poll=MODE      the shards' polling: busy, adaptive "
		"or event\n"
		"                       (adaptive)\n"
		"  -T, --timeout=SEC    kill the job after SEC seconds (0: "
		"never) (0)\n"
		"      --checkpoint-dir=DIR  bsp/absp: the shards checkpoint "
		"their tables in DIR\n"
		"      --checkpoint-every=N  ... every N clocks (1)\n"
		"      --resume         start from the newest clock every "
		"shard has a\n"
		"                       checkpoint of in --checkpoint-dir; "
		"workers start there\n"
		"      --on-worker-loss=fail|continue\n"
		"                       ssp/asp: when a worker dies or stops, "
		"the others go\n"
		"                       on without it (continue) or fail "
		"naming it (fail)\n"
		"      --heartbeat-ms=MS  the shards' liveness period: a "
		"worker "
		"or shard\n"
		"                       still for two is lost (500; 0: no "
		"checks)\n"
		"  -h, --help           this help\n"
		"\n"
		"Exit status: 0 if every worker succeeded, else the first "
		"failing worker's\n"
		"status (128+signal if killed); 124 on timeout; 2 on bad "
		"usage. SIGINT and\n"
		"SIGTERM are forwarded to the job. When a worker fails, the "
		"others get 5 s\n"
		"to finish or say why they cannot (e.g. which peer died), then "
		"the job is\n"
		"stopped; with --on-worker-loss continue they go on, and the "
		"job succeeds\n"
		"if the workers that were not lost do. Diagnostics go to "
		"stderr.\n",
		MAX_SHARDS, DEF_SHARDS, MAX_WORKERS, DEF_WORKERS,
		DEF_SSP_SLACK);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option long_opts[] = {
		{"shards", required_argument, NULL, 's'},
		{"workers", required_argument, NULL, 'w'},
		{"transport", required_argument, NULL, 't'},
		{"model", required_argument, NULL, 'm'},
		{"slack", required_argument, NULL, 'k'},
		{"addr", required_argument, NULL, 'a'},
		{"timeout", required_argument, NULL, 'T'},
		{"poll", required_argument, NULL, 'P'},
		{"checkpoint-dir", required_argument, NULL, OPT_CKPT_DIR},
		{"checkpoint-every", required_argument, NULL, OPT_CKPT_EVERY},
		{"resume", no_argument, NULL, OPT_RESUME},
		{"on-worker-loss", required_argument, NULL, OPT_ON_LOSS},
		{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->shards = DEF_SHARDS;
	o->workers = DEF_WORKERS;
	o->transport = "shm";
	o->model = RDPS_MODEL_BSP;
	o->addr = "127.0.0.1";

	opterr = 0;
	/* "+": stop at the first non-option, the command is not ours. */
	while ((ch = getopt_long(argc, argv, "+:s:w:t:m:k:a:P:T:h", long_opts,
				 NULL)) != -1) {
		switch (ch) {
		case 's':
			if (tool_parse_count(optarg, "shard count", 1,
					     MAX_SHARDS, &v))
				return -EINVAL;
			o->shards = (unsigned)v;
			break;
		case 'w':
			if (tool_parse_count(optarg, "worker count", 1,
					     MAX_WORKERS, &v))
				return -EINVAL;
			o->workers = (unsigned)v;
			break;
		case 't':
			if (tool_check_transport(optarg))
				return -EINVAL;
			o->transport = optarg;
			break;
		case 'm':
			if (tool_parse_model(optarg, &o->model))
				return -EINVAL;
			break;
		case 'k':
			if (tool_parse_count(optarg, "slack", 0, 62, &v))
				return -EINVAL;
			o->slack = (unsigned)v;
			o->slack_given = 1;
			break;
		case 'a':
			if (!*optarg || strpbrk(optarg, "/, ")) {
				tool_err("bad address '%s': give an IP "
					 "address such as 127.0.0.1",
					 optarg);
				return -EINVAL;
			}
			o->addr = optarg;
			break;
		case 'P': {
			enum rdps_tp_poll_mode pm;

			if (tool_parse_poll(optarg, &pm))
				return -EINVAL;
			o->poll = optarg;
			break;
		}
		case 'T':
			if (tool_parse_count(optarg, "timeout", 0, 86400 * 7,
					     &v))
				return -EINVAL;
			o->timeout_s = (unsigned)v;
			break;
		case OPT_CKPT_DIR:
			if (!*optarg) {
				tool_err("empty --checkpoint-dir: name a "
					 "directory");
				return -EINVAL;
			}
			o->ckpt_dir = optarg;
			break;
		case OPT_CKPT_EVERY:
			if (tool_parse_count(optarg, "checkpoint interval", 1,
					     1u << 30, &v))
				return -EINVAL;
			o->ckpt_every = (unsigned)v;
			break;
		case OPT_RESUME:
			o->resume = 1;
			break;
		case OPT_ON_LOSS:
			if (tool_parse_on_loss(optarg, &o->on_loss))
				return -EINVAL;
			break;
		case OPT_HEARTBEAT: {
			unsigned ms;

			if (tool_parse_heartbeat(optarg, &ms))
				return -EINVAL;
			o->heartbeat = optarg;
			break;
		}
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			tool_err("option '%s' needs a value (see rdps-launch "
				 "--help)",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			tool_err("unknown option '%s' (see rdps-launch "
				 "--help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (o->model == RDPS_MODEL_SSP && !o->slack_given)
		o->slack = DEF_SSP_SLACK;
	if (o->slack_given && o->slack && o->model != RDPS_MODEL_SSP) {
		tool_err("--slack %u needs --model ssp (%s has no slack)",
			 o->slack, rdps_model_name(o->model));
		return -EINVAL;
	}
	if (tool_check_on_loss(o->on_loss, o->model))
		return -EINVAL;
	if ((o->resume || o->ckpt_every) && !o->ckpt_dir) {
		tool_err("--resume and --checkpoint-every need "
			 "--checkpoint-dir DIR");
		return -EINVAL;
	}
	if (o->ckpt_dir && !rdps_model_in_order(o->model)) {
		tool_err("--checkpoint-dir needs --model bsp or absp (%s has "
			 "no clock boundary to save at)",
			 rdps_model_name(o->model));
		return -EINVAL;
	}
	if (optind >= argc) {
		tool_err("missing command: rdps-launch [options] -- CMD "
			 "[ARGS...]");
		return -EINVAL;
	}
	o->cmd = argv + optind;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A status as an exit code: the code, or 128 + the signal. */
static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static void status_str(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d",
			 status_code(status));
}

/* The rdps-server next to this binary. */
static int server_path(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0) {
		tool_err("cannot find myself (/proc/self/exe): %s",
			 strerror(errno));
		return -errno;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/rdps-server", self) >= len) {
		tool_err("path of rdps-server too long");
		return -ENAMETOOLONG;
	}
	if (access(buf, X_OK)) {
		tool_err("cannot run %s: %s (build the rdps-server target)",
			 buf, strerror(errno));
		return -ENOENT;
	}
	return 0;
}

/* In a child before exec: die with the launcher, default signals. */
static void child_prep(pid_t parent)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
}

/*
 * --resume: the newest clock of which every shard has a checkpoint (each
 * keeps its newest two). 0 with o->resume_clock set, or -1 (reported).
 */
static int find_resume_clock(struct opts *o)
{
	uint64_t have[MAX_SHARDS][2], best = UINT64_MAX;
	struct ckpt *ck = calloc(1, sizeof(*ck));

	if (!ck) {
		tool_err("out of memory");
		return -1;
	}
	/* Each file read (and checked) once: its clock, or none. */
	for (unsigned i = 0; i < o->shards; i++) {
		for (int p = 0; p < 2; p++) {
			char path[PATH_MAX];
			void *buf = NULL;

			have[i][p] = UINT64_MAX;
			if (!ckpt_path(path, sizeof(path), o->ckpt_dir, i, p) &&
			    !ckpt_load(path, &buf, ck))
				have[i][p] = ck->clock;
			free(buf);
		}
	}
	free(ck);
	/* Candidates: shard 0's clocks; the newest every other shard has. */
	for (int c0 = 0; c0 < 2; c0++) {
		uint64_t clock = have[0][c0];
		unsigned i = 1;

		while (clock != UINT64_MAX && i < o->shards &&
		       (have[i][0] == clock || have[i][1] == clock))
			i++;
		if (clock != UINT64_MAX && i == o->shards &&
		    (best == UINT64_MAX || clock > best))
			best = clock;
	}
	if (best == UINT64_MAX) {
		tool_err("--resume: %s in %s (start without --resume to "
			 "begin afresh)",
			 have[0][0] != UINT64_MAX || have[0][1] != UINT64_MAX
				 ? "no clock has a checkpoint of every shard"
				 : "no usable checkpoint of shard 0",
			 o->ckpt_dir);
		return -1;
	}
	o->resume_clock = best;
	tool_err("resuming at clock %" PRIu64 " from %s", best, o->ckpt_dir);
	return 0;
}

static pid_t start_server(const char *path, const struct opts *o,
			  unsigned shard, uint64_t token, int report_fd)
{
	char url[URL_MAX], shard_s[16], shards_s[16], workers_s[16],
		slack_s[16], token_s[32], fd_s[16], every_s[16], resume_s[48];
	const char *argv[32];
	pid_t parent = getpid(), pid;
	int n = 0;

	if (!strcmp(o->transport, "shm"))
		snprintf(url, sizeof(url), "shm://rdps-%d-s%u", (int)parent,
			 shard);
	else
		snprintf(url, sizeof(url), "%s://%s:0", o->transport, o->addr);
	snprintf(shard_s, sizeof(shard_s), "%u", shard);
	snprintf(shards_s, sizeof(shards_s), "%u", o->shards);
	snprintf(workers_s, sizeof(workers_s), "%u", o->workers);
	snprintf(slack_s, sizeof(slack_s), "%u", o->slack);
	snprintf(token_s, sizeof(token_s), "%" PRIu64, token);
	snprintf(fd_s, sizeof(fd_s), "%d", report_fd);
	argv[n++] = "rdps-server";
	argv[n++] = "--listen";
	argv[n++] = url;
	argv[n++] = "--shard";
	argv[n++] = shard_s;
	argv[n++] = "--shards";
	argv[n++] = shards_s;
	argv[n++] = "--workers";
	argv[n++] = workers_s;
	argv[n++] = "--model";
	argv[n++] = rdps_model_name(o->model);
	if (o->model == RDPS_MODEL_SSP) {
		argv[n++] = "--slack";
		argv[n++] = slack_s;
	}
	argv[n++] = "--token";
	argv[n++] = token_s;
	argv[n++] = "--report-fd";
	argv[n++] = fd_s;
	if (o->poll) {
		argv[n++] = "--poll";
		argv[n++] = o->poll;
	}
	if (o->ckpt_dir) {
		argv[n++] = "--checkpoint-dir";
		argv[n++] = o->ckpt_dir;
		snprintf(every_s, sizeof(every_s), "%u",
			 o->ckpt_every ? o->ckpt_every : 1);
		argv[n++] = "--checkpoint-every";
		argv[n++] = every_s;
	}
	if (o->resume) {
		snprintf(resume_s, sizeof(resume_s), "--resume=%" PRIu64,
			 o->resume_clock);
		argv[n++] = resume_s;
	}
	if (o->heartbeat) {
		argv[n++] = "--heartbeat-ms";
		argv[n++] = o->heartbeat;
	}
	argv[n] = NULL;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		tool_err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		child_prep(parent);
		/* The pipe was made close-on-exec; this end must survive. */
		if (fcntl(report_fd, F_SETFD, 0))
			_exit(127);
		execv(path, (char *const *)argv);
		fprintf(stderr, "rdps-launch: cannot run %s: %s\n", path,
			strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Read one line (the shard's URL) from fd within the deadline. 0, -EPIPE
 * (the shard closed it: it died), -ETIMEDOUT or -EOVERFLOW. */
static int read_url(int fd, char *buf, size_t len, uint64_t deadline)
{
	size_t got = 0;

	buf[0] = '\0';
	while (got < len - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		ssize_t n;
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
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
			return buf[0] ? 0 : -EPROTO;
		}
	}
	return -EOVERFLOW;
}

static void kill_all(struct proc *p, unsigned n, int sig)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i].pid > 0)
			kill(p[i].pid, sig);
}

static unsigned live(const struct proc *p, unsigned n)
{
	unsigned c = 0;

	for (unsigned i = 0; i < n; i++)
		c += p[i].pid > 0;
	return c;
}

/* Record a reaped child; returns its slot or -1. */
static int note_exit(pid_t pid, int status, int *is_worker)
{
	for (unsigned i = 0; i < n_workers; i++)
		if (workers[i].pid == pid) {
			workers[i].pid = 0;
			workers[i].status = status;
			*is_worker = 1;
			return (int)i;
		}
	for (unsigned i = 0; i < n_servers; i++)
		if (servers[i].pid == pid) {
			servers[i].pid = 0;
			servers[i].status = status;
			*is_worker = 0;
			return (int)i;
		}
	return -1;
}

/*
 * Wait for events: a child exits (SIGCHLD), SIGINT/SIGTERM arrive, or the
 * deadline (0: none) passes. The signals are blocked; sigtimedwait picks
 * them up. Returns the signal, or 0 on timeout.
 */
static int wait_event(const sigset_t *set, uint64_t deadline)
{
	for (;;) {
		struct timespec ts = {.tv_sec = 1};
		int sig;

		if (deadline) {
			uint64_t now = now_ms(), left;

			if (now >= deadline)
				return 0;
			left = deadline - now;
			if (left < 1000) {
				ts.tv_sec = 0;
				ts.tv_nsec = (long)left * 1000000;
			}
		} else {
			ts.tv_sec = 3600;
		}
		sig = sigtimedwait(set, NULL, &ts);
		if (sig > 0)
			return sig;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

/* Reap every child that has exited; report it. Returns the exit code to
 * use if this round decided the outcome, else -1. */
static int reap_some(int *first_fail, int stopping)
{
	char what[96];
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int is_worker, i = note_exit(pid, status, &is_worker);

		if (i < 0)
			continue;
		if (is_worker) {
			n_ok += status == 0;
			if (status == 0 || stopping)
				continue;
			/* Every failure is named: a crash after the first
			 * failure is news too. */
			status_str(status, what, sizeof(what));
			if (go_on) {
				tool_err("worker %d %s: the job goes on "
					 "without it (--on-worker-loss "
					 "continue)",
					 i, what);
				if (lost_code < 0)
					lost_code = status_code(status);
				/* Nobody left to go on: that fails. */
				if (++n_lost == n_workers && *first_fail < 0)
					*first_fail = lost_code;
				continue;
			}
			tool_err("worker %d %s", i, what);
			if (*first_fail < 0)
				*first_fail = status_code(status);
		} else if (!stopping && live(workers, n_workers)) {
			status_str(status, what, sizeof(what));
			tool_err("server %d (shard %d) %s while workers "
				 "were running",
				 i, i, what);
			if (*first_fail < 0)
				*first_fail =
					status == 0 ? 1 : status_code(status);
		}
	}
	return *first_fail;
}

/* Are all the workers still there stopped (and is there one)? */
static int leftovers_stopped(void)
{
	if (!live(workers, n_workers))
		return 0;
	for (unsigned i = 0; i < n_workers; i++)
		if (workers[i].pid > 0 && !tool_proc_stopped(workers[i].pid))
			return 0;
	return 1;
}

/*
 * --on-worker-loss continue: once some workers finished and every worker
 * still there is stopped, nobody will ever wake them for this job (the
 * shards counted them lost): kill them, so they are reaped as lost.
 */
static void kill_stopped_leftovers(void)
{
	if (!go_on || !n_ok || !leftovers_stopped())
		return;
	for (unsigned i = 0; i < n_workers; i++) {
		if (workers[i].pid <= 0)
			continue;
		tool_err("worker %u is stopped and the others are done: "
			 "killing it",
			 i);
		kill(workers[i].pid, SIGKILL);
	}
}

/* SIGTERM everyone left, SIGKILL after the grace period, reap all. */
static void stop_all(const sigset_t *set)
{
	uint64_t deadline = now_ms() + GRACE_MS;
	int dummy = 0, killed = 0;

	kill_all(workers, n_workers, SIGTERM);
	kill_all(servers, n_servers, SIGTERM);
	/* A stopped process gets its SIGTERM only once it runs. */
	kill_all(workers, n_workers, SIGCONT);
	kill_all(servers, n_servers, SIGCONT);
	while (live(workers, n_workers) || live(servers, n_servers)) {
		int sig;

		reap_some(&dummy, 1);
		if (!live(workers, n_workers) && !live(servers, n_servers))
			break;
		sig = wait_event(set, killed ? 0 : deadline);
		if (sig == 0 && !killed) {
			tool_err("job did not stop within %d ms: SIGKILL",
				 GRACE_MS);
			kill_all(workers, n_workers, SIGKILL);
			kill_all(servers, n_servers, SIGKILL);
			killed = 1;
		}
	}
}

static int start_servers(const struct opts *o, uint64_t token, char *urls,
			 size_t urls_len)
{
	char path[PATH_MAX], url[URL_MAX];
	int fds[MAX_SHARDS];
	uint64_t deadline;
	size_t used = 0;
	int ret = 0;

	if (server_path(path, sizeof(path)))
		return -1;
	for (unsigned i = 0; i < o->shards; i++)
		fds[i] = -1;
	for (unsigned i = 0; i < o->shards; i++) {
		int p[2];

		if (pipe2(p, O_CLOEXEC)) {
			tool_err("pipe: %s", strerror(errno));
			ret = -1;
			goto out;
		}
		servers[i].pid = start_server(path, o, i, token, p[1]);
		close(p[1]);
		fds[i] = p[0];
		if (servers[i].pid < 0) {
			servers[i].pid = 0;
			ret = -1;
			goto out;
		}
		n_servers = i + 1;
	}
	deadline = now_ms() + START_TIMEOUT_MS;
	for (unsigned i = 0; i < o->shards; i++) {
		int r = read_url(fds[i], url, sizeof(url), deadline);

		if (r) {
			tool_err("shard %u did not report its url: %s", i,
				 r == -EPIPE	   ? "it exited (see its error "
						     "above)"
				 : r == -ETIMEDOUT ? "timed out"
						   : strerror(-r));
			ret = -1;
			goto out;
		}
		if (used + strlen(url) + 2 > urls_len) {
			tool_err("shard urls too long");
			ret = -1;
			goto out;
		}
		used += (size_t)sprintf(urls + used, "%s%s", i ? "," : "", url);
	}
	tool_err("%u shard%s on %s", o->shards, o->shards == 1 ? "" : "s",
		 urls);
out:
	for (unsigned i = 0; i < o->shards; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

static int start_workers(const struct opts *o, uint64_t token, const char *urls)
{
	char rank_s[16], workers_s[16], slack_s[16], token_s[32];
	pid_t parent = getpid();

	snprintf(workers_s, sizeof(workers_s), "%u", o->workers);
	snprintf(slack_s, sizeof(slack_s), "%u", o->slack);
	snprintf(token_s, sizeof(token_s), "%" PRIu64, token);
	fflush(NULL);
	for (unsigned i = 0; i < o->workers; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			tool_err("fork: %s", strerror(errno));
			return -1;
		}
		if (pid == 0) {
			child_prep(parent);
			snprintf(rank_s, sizeof(rank_s), "%u", i);
			if (setenv("RDPS_SHARDS", urls, 1) ||
			    setenv("RDPS_RANK", rank_s, 1) ||
			    setenv("RDPS_WORKERS", workers_s, 1) ||
			    setenv("RDPS_MODEL", rdps_model_name(o->model),
				   1) ||
			    setenv("RDPS_SLACK", slack_s, 1) ||
			    setenv("RDPS_TOKEN", token_s, 1) ||
			    setenv("RDPS_ON_WORKER_LOSS",
				   rdps_on_loss_name(o->on_loss), 1))
				_exit(127);
			execvp(o->cmd[0], o->cmd);
			fprintf(stderr, "rdps-launch: cannot run '%s': %s\n",
				o->cmd[0], strerror(errno));
			_exit(127);
		}
		workers[i].pid = pid;
		n_workers = i + 1;
	}
	return 0;
}

static uint64_t job_token(void)
{
	uint64_t t = 0;

	if (getrandom(&t, sizeof(t), 0) != sizeof(t))
		t = ((uint64_t)getpid() << 32) ^ now_ms() ^
		    (uint64_t)time(NULL);
	return t ? t : 1;
}

int main(int argc, char **argv)
{
	char urls[MAX_SHARDS * URL_MAX];
	struct opts o;
	sigset_t set;
	uint64_t deadline = 0, fail_deadline = 0, token;
	int ret, rc = -1;

	tool_name = "rdps-launch";
	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : 2;

	/* Every event is taken with sigtimedwait: no handler races. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o.timeout_s)
		deadline = now_ms() + (uint64_t)o.timeout_s * 1000u;
	token = job_token();
	go_on = o.on_loss == RDPS_LOSS_CONTINUE;
	if (o.resume && find_resume_clock(&o))
		return 1;
	if (start_servers(&o, token, urls, sizeof(urls))) {
		stop_all(&set);
		return 1;
	}
	if (start_workers(&o, token, urls)) {
		stop_all(&set);
		return 1;
	}
	tool_err("%u worker%s running '%s' (model %s, slack %u%s)", o.workers,
		 o.workers == 1 ? "" : "s", o.cmd[0], rdps_model_name(o.model),
		 o.slack, go_on ? ", going on without lost workers" : "");

	while (live(workers, n_workers)) {
		uint64_t until = deadline;
		int sig;

		if (reap_some(&rc, 0) >= 0 && !fail_deadline)
			fail_deadline = now_ms() + FAIL_GRACE_MS;
		if (!live(workers, n_workers))
			break;
		if (fail_deadline && (!until || fail_deadline < until))
			until = fail_deadline;
		kill_stopped_leftovers();
		/* After a failure, stopped workers will not say more. */
		if (fail_deadline && leftovers_stopped())
			break;
		/* Look again for stopped leftovers in a while. */
		if (((go_on && n_ok) || fail_deadline) &&
		    (!until || now_ms() + 500 < until))
			until = now_ms() + 500;
		sig = wait_event(&set, until);
		if (sig == 0 && until != deadline && until != fail_deadline)
			continue;
		if (sig == 0 && fail_deadline && now_ms() >= fail_deadline)
			break; /* the rest are stopped below */
		if (sig == 0) {
			tool_err("timed out after %u s: stopping the job",
				 o.timeout_s);
			rc = 124;
			break;
		}
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
			tool_err("got %s: stopping the job", strsignal(sig));
			/* Forward it first, so the job sees the real one. */
			kill_all(workers, n_workers, sig);
			kill_all(servers, n_servers, sig);
			rc = 128 + sig;
			break;
		}
	}
	if (rc < 0)
		reap_some(&rc, 0);
	stop_all(&set);
	if (rc < 0)
		rc = 0;
	if (rc == 0 && n_lost)
		tool_err("%u of %u workers succeeded; %u lost (the job went on "
			 "without them)",
			 o.workers - n_lost, o.workers, n_lost);
	else if (rc == 0)
		tool_err("all %u workers succeeded", o.workers);
	return rc;
}
