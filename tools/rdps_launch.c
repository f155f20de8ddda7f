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
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "jobopts.h"
#include "spawn.h"

#define MAX_SHARDS 256
#define MAX_WORKERS 1024
#define DEF_SHARDS 1
#define DEF_WORKERS 2
#define DEF_SSP_SLACK 1
#define START_TIMEOUT_MS 30000 /* a shard must report its URL by then */
/* SIGTERM, then SIGKILL after --grace seconds. An rdps process exits in
 * milliseconds on SIGTERM; what takes longer is an exit check such as
 * LeakSanitizer's, which on a loaded machine took more than the 3 s this
 * once was. Only a process that ignores SIGTERM waits the whole grace. */
#define DEF_GRACE_S 10
#define MAX_GRACE_S 3600
/* After the first failure, the others may still report why they cannot go
 * on (e.g. which peer died) before they are stopped. */
#define FAIL_GRACE_MS 5000
#define URL_MAX 256

struct opts {
	struct job_opts job;
	unsigned timeout_s;    /* 0: none */
	unsigned grace_s;      /* SIGTERM to SIGKILL when stopping */
	uint64_t resume_clock; /* found by find_resume_clock() */
	char **cmd;
};

static struct tool_proc servers[MAX_SHARDS];
static struct tool_proc workers[MAX_WORKERS];
static unsigned n_servers, n_workers;
/* --on-worker-loss continue: failed workers do not fail the job. */
static int go_on;
static unsigned n_lost, n_ok;
static int lost_code = -1;

static void launch_head(FILE *f)
{
	fprintf(f, "Usage: rdps-launch [options] -- CMD [ARGS...]\n"
		   "\n"
		   "Start a local rdps job: SHARDS rdps-server processes (the "
		   "one next to\n"
		   "rdps-launch), then WORKERS processes running CMD with "
		   "RDPS_SHARDS,\n"
		   "RDPS_RANK, RDPS_WORKERS, RDPS_MODEL, RDPS_SLACK and "
		   "RDPS_TOKEN set.\n"
		   "\n");
}

static void launch_tail(FILE *f)
{
	fprintf(f,
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
		"stderr.\n");
}

static int set_timeout(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	uint64_t v;

	if (tool_parse_count(arg, "timeout", 0, 86400 * 7, &v))
		return -EINVAL;
	o->timeout_s = (unsigned)v;
	return 0;
}

static int set_grace(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	uint64_t v;

	if (tool_parse_count(arg, "grace", 0, MAX_GRACE_S, &v))
		return -EINVAL;
	o->grace_s = (unsigned)v;
	return 0;
}

static int set_resume(void *ctx, const char *arg)
{
	struct opts *o = ctx;

	(void)arg;
	o->job.resume = 1;
	return 0;
}

static const struct tool_opt launch_table[] = {
	{.name = "timeout",
	 .key = 'T',
	 .arg = "SEC",
	 .help = "kill the job after SEC seconds (0: never)",
	 .def = "0",
	 .set = set_timeout},
	{.name = "grace",
	 .arg = "SEC",
	 .help = "when stopping the job (a failure, --timeout, a signal), "
		 "SIGKILL what SIGTERM did not end after SEC seconds; raise it "
		 "when exit checks (LeakSanitizer) need longer",
	 .def = "10",
	 .set = set_grace},
	{.name = "resume",
	 .help = "start from the newest clock every shard has a checkpoint of "
		 "in --checkpoint-dir; workers start there",
	 .set = set_resume},
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	struct tool_optset sets[] = {
		job_optset(&o->job, JOB_TOOL_LAUNCH),
		TOOL_OPTSET(launch_table, RDPS_ARRAY_SIZE(launch_table), o),
	};
	const struct tool_cmd cmd = {
		.name = "rdps-launch",
		.stop_at_cmd = 1, /* the command's options are not ours */
		.head = launch_head,
		.tail = launch_tail,
		.sets = sets,
		.nsets = RDPS_ARRAY_SIZE(sets),
	};
	int ret;

	memset(o, 0, sizeof(*o));
	job_opts_init(&o->job);
	o->grace_s = DEF_GRACE_S;
	o->job.shards = DEF_SHARDS;
	o->job.shards_max = MAX_SHARDS;
	o->job.workers = DEF_WORKERS;
	o->job.workers_max = MAX_WORKERS;
	o->job.transport = "shm";
	o->job.addr = "127.0.0.1";
	o->job.ssp_slack = DEF_SSP_SLACK;
	ret = tool_opts_parse(&cmd, argc, argv);
	if (ret)
		return ret;
	if (job_opts_check(&o->job))
		return -EINVAL;
	if (optind >= argc) {
		tool_err("missing command: rdps-launch [options] -- CMD "
			 "[ARGS...]");
		return -EINVAL;
	}
	o->cmd = argv + optind;
	return 0;
}

/* One checkpoint file as --resume sees it. */
struct ck_file {
	uint64_t clock;		  /* UINT64_MAX: not usable */
	char why[PATH_MAX + 256]; /* why not, naming the file */
};

/* Load and check file p of shard i: of this job's layout? */
static void ck_file_read(const struct opts *o, unsigned i, int p,
			 struct ckpt *ck, struct ck_file *f)
{
	char path[PATH_MAX];
	void *buf = NULL;
	int ret;

	f->clock = UINT64_MAX;
	rdps_clear_error();
	ret = ckpt_path(path, sizeof(path), o->job.ckpt_dir, i, p);
	if (!ret)
		ret = ckpt_load(path, &buf, ck);
	if (ret == -ENOENT)
		snprintf(f->why, sizeof(f->why), "%s is not there", path);
	else if (ret)
		snprintf(f->why, sizeof(f->why), "%s", rdps_errmsg());
	else if (ck->shard != i || ck->nshards != o->job.shards ||
		 ck->workers != o->job.workers ||
		 ck->model != (unsigned)o->job.model)
		snprintf(f->why, sizeof(f->why),
			 "%s is of shard %u of %u, %u workers, model %s, not "
			 "of this job (%u shards, %u workers, %s)",
			 path, ck->shard, ck->nshards, ck->workers,
			 rdps_model_name(ck->model), o->job.shards,
			 o->job.workers, rdps_model_name(o->job.model));
	else
		f->clock = ck->clock;
	free(buf);
}

/* No clock common to all shards: the clocks each has, for the message. */
static void ck_list_clocks(const struct opts *o, struct ck_file (*f)[2],
			   char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < o->job.shards && used + 64 < len; i++) {
		int n = snprintf(buf + used, len - used, "%sshard %u has",
				 i ? ", " : "", i);

		used += (size_t)n;
		for (int p = 0; p < 2; p++)
			if (f[i][p].clock != UINT64_MAX)
				used += (size_t)snprintf(
					buf + used, len - used, " %s%" PRIu64,
					p && f[i][0].clock != UINT64_MAX
						? "and "
						: "",
					f[i][p].clock);
		if (i + 1 < o->job.shards && used + 64 >= len)
			snprintf(buf + used, len - used, ", ...");
	}
}

/*
 * --resume: the newest clock of which every shard has a checkpoint (each
 * keeps its newest two). 0 with o->resume_clock set, or -1 (reported: a
 * shard with no usable file names both files and why; no common clock
 * lists each shard's clocks, which only files of different runs give).
 */
static int find_resume_clock(struct opts *o)
{
	struct ck_file(*f)[2] = calloc(o->job.shards, sizeof(*f));
	struct ckpt *ck = calloc(1, sizeof(*ck));
	uint64_t best = UINT64_MAX;
	char list[512];
	int ret = -1;

	if (!f || !ck) {
		tool_err("out of memory");
		goto out;
	}
	/* Each file read (and checked) once: its clock, or why not. */
	for (unsigned i = 0; i < o->job.shards; i++)
		for (int p = 0; p < 2; p++)
			ck_file_read(o, i, p, ck, &f[i][p]);
	for (unsigned i = 0; i < o->job.shards; i++) {
		if (f[i][0].clock != UINT64_MAX || f[i][1].clock != UINT64_MAX)
			continue;
		tool_err("--resume: no usable checkpoint of shard %u: %s; %s "
			 "(restore good copies of them, or start without "
			 "--resume to begin afresh)",
			 i, f[i][0].why, f[i][1].why);
		goto out;
	}
	/* Candidates: shard 0's clocks; the newest every other shard has. */
	for (int c0 = 0; c0 < 2; c0++) {
		uint64_t clock = f[0][c0].clock;
		unsigned i = 1;

		while (clock != UINT64_MAX && i < o->job.shards &&
		       (f[i][0].clock == clock || f[i][1].clock == clock))
			i++;
		if (clock != UINT64_MAX && i == o->job.shards &&
		    (best == UINT64_MAX || clock > best))
			best = clock;
	}
	if (best == UINT64_MAX) {
		ck_list_clocks(o, f, list, sizeof(list));
		tool_err(
			"--resume: no clock has a checkpoint of every shard in "
			"%s: %s; one job's shards are at most one clock apart, "
			"so these files come from different runs (give each "
			"job its own --checkpoint-dir, or start without "
			"--resume)",
			o->job.ckpt_dir, list);
		goto out;
	}
	o->resume_clock = best;
	tool_err("resuming at clock %" PRIu64 " from %s", best,
		 o->job.ckpt_dir);
	ret = 0;
out:
	free(f);
	free(ck);
	return ret;
}

static pid_t start_server(const char *path, const struct opts *o,
			  unsigned shard, uint64_t token, int report_fd)
{
	char url[URL_MAX], shard_s[16], shards_s[16], workers_s[16],
		slack_s[16], token_s[32], fd_s[16], every_s[16], resume_s[48],
		beat_s[16];
	const char *argv[32];
	struct tool_spawn sp = {
		.path = path,
		.argv = (char *const *)argv,
		.keep_fd = report_fd,
		.out_fd = -1,
		.die_with_parent = 1,
	};
	pid_t parent = getpid();
	int n = 0;

	if (!strcmp(o->job.transport, "shm"))
		snprintf(url, sizeof(url), "shm://rdps-%d-s%u", (int)parent,
			 shard);
	else
		snprintf(url, sizeof(url), "%s://%s:0", o->job.transport,
			 o->job.addr);
	snprintf(shard_s, sizeof(shard_s), "%u", shard);
	snprintf(shards_s, sizeof(shards_s), "%u", o->job.shards);
	snprintf(workers_s, sizeof(workers_s), "%u", o->job.workers);
	snprintf(slack_s, sizeof(slack_s), "%u", o->job.slack);
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
	argv[n++] = rdps_model_name(o->job.model);
	if (o->job.model == RDPS_MODEL_SSP) {
		argv[n++] = "--slack";
		argv[n++] = slack_s;
	}
	argv[n++] = "--token";
	argv[n++] = token_s;
	argv[n++] = "--report-fd";
	argv[n++] = fd_s;
	if (o->job.poll_name) {
		argv[n++] = "--poll";
		argv[n++] = o->job.poll_name;
	}
	if (o->job.ckpt_dir) {
		argv[n++] = "--checkpoint-dir";
		argv[n++] = o->job.ckpt_dir;
		snprintf(every_s, sizeof(every_s), "%u",
			 o->job.ckpt_every ? o->job.ckpt_every : 1);
		argv[n++] = "--checkpoint-every";
		argv[n++] = every_s;
	}
	if (o->job.resume) {
		snprintf(resume_s, sizeof(resume_s), "--resume=%" PRIu64,
			 o->resume_clock);
		argv[n++] = resume_s;
	}
	if (o->job.heartbeat_given) {
		snprintf(beat_s, sizeof(beat_s), "%u", o->job.heartbeat_ms);
		argv[n++] = "--heartbeat-ms";
		argv[n++] = beat_s;
	}
	argv[n] = NULL;

	return tool_spawn(&sp);
}

/* Read one line (the shard's URL) from fd within the deadline. 0, -EPIPE
 * (the shard closed it: it died), -ETIMEDOUT or -EOVERFLOW. */
static int read_url(int fd, char *buf, size_t len, uint64_t deadline)
{
	size_t got = 0;

	buf[0] = '\0';
	while (got < len - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = tool_now_ms();
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
			tool_status_str(status, what, sizeof(what));
			if (go_on) {
				tool_err("worker %d %s: the job goes on "
					 "without it (--on-worker-loss "
					 "continue)",
					 i, what);
				if (lost_code < 0)
					lost_code = tool_status_code(status);
				/* Nobody left to go on: that fails. */
				if (++n_lost == n_workers && *first_fail < 0)
					*first_fail = lost_code;
				continue;
			}
			tool_err("worker %d %s", i, what);
			if (*first_fail < 0)
				*first_fail = tool_status_code(status);
		} else if (!stopping && tool_procs_live(workers, n_workers)) {
			tool_status_str(status, what, sizeof(what));
			tool_err("server %d (shard %d) %s while workers "
				 "were running",
				 i, i, what);
			if (*first_fail < 0)
				*first_fail =
					status == 0 ? 1
						    : tool_status_code(status);
		}
	}
	return *first_fail;
}

/* Are all the workers still there stopped (and is there one)? */
static int leftovers_stopped(void)
{
	if (!tool_procs_live(workers, n_workers))
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

/* SIGTERM everyone left, SIGKILL after grace_s, reap all. */
static void stop_all(const sigset_t *set, unsigned grace_s)
{
	uint64_t deadline = tool_now_ms() + 1000ull * grace_s;
	int dummy = 0, killed = 0;

	tool_procs_kill(workers, n_workers, SIGTERM);
	tool_procs_kill(servers, n_servers, SIGTERM);
	/* A stopped process gets its SIGTERM only once it runs. */
	tool_procs_kill(workers, n_workers, SIGCONT);
	tool_procs_kill(servers, n_servers, SIGCONT);
	while (tool_procs_live(workers, n_workers) ||
	       tool_procs_live(servers, n_servers)) {
		int sig;

		reap_some(&dummy, 1);
		if (!tool_procs_live(workers, n_workers) &&
		    !tool_procs_live(servers, n_servers))
			break;
		sig = tool_wait_signal(set, killed ? 0 : deadline);
		if (sig == 0 && !killed) {
			tool_err("job did not stop within %u s of SIGTERM "
				 "(--grace): SIGKILL",
				 grace_s);
			tool_procs_kill(workers, n_workers, SIGKILL);
			tool_procs_kill(servers, n_servers, SIGKILL);
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

	if (tool_sibling("rdps-server", path, sizeof(path)))
		return -1;
	for (unsigned i = 0; i < o->job.shards; i++)
		fds[i] = -1;
	for (unsigned i = 0; i < o->job.shards; i++) {
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
	deadline = tool_now_ms() + START_TIMEOUT_MS;
	for (unsigned i = 0; i < o->job.shards; i++) {
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
	tool_err("%u shard%s on %s", o->job.shards,
		 o->job.shards == 1 ? "" : "s", urls);
out:
	for (unsigned i = 0; i < o->job.shards; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

static int start_workers(const struct opts *o, uint64_t token, const char *urls)
{
	struct job_env env;
	struct tool_spawn sp = {
		.path = o->cmd[0],
		.argv = o->cmd,
		.search = 1,
		.env = env.env,
		.keep_fd = -1,
		.out_fd = -1,
		.die_with_parent = 1,
	};

	job_env_init(&env, &o->job, urls, o->job.workers, token);
	for (unsigned i = 0; i < o->job.workers; i++) {
		pid_t pid;

		job_env_rank(&env, i);
		pid = tool_spawn(&sp);
		if (pid < 0)
			return -1;
		workers[i].pid = pid;
		n_workers = i + 1;
	}
	return 0;
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
		deadline = tool_now_ms() + (uint64_t)o.timeout_s * 1000u;
	token = tool_job_token();
	go_on = o.job.on_loss == RDPS_LOSS_CONTINUE;
	if (job_ckpt_dir_ready(&o.job))
		return 2;
	if (o.job.resume && find_resume_clock(&o))
		return 1;
	if (start_servers(&o, token, urls, sizeof(urls))) {
		stop_all(&set, o.grace_s);
		return 1;
	}
	if (start_workers(&o, token, urls)) {
		stop_all(&set, o.grace_s);
		return 1;
	}
	tool_err("%u worker%s running '%s' (model %s, slack %u%s)",
		 o.job.workers, o.job.workers == 1 ? "" : "s", o.cmd[0],
		 rdps_model_name(o.job.model), o.job.slack,
		 go_on ? ", going on without lost workers" : "");

	while (tool_procs_live(workers, n_workers)) {
		uint64_t until = deadline;
		int sig;

		if (reap_some(&rc, 0) >= 0 && !fail_deadline)
			fail_deadline = tool_now_ms() + FAIL_GRACE_MS;
		if (!tool_procs_live(workers, n_workers))
			break;
		if (fail_deadline && (!until || fail_deadline < until))
			until = fail_deadline;
		kill_stopped_leftovers();
		/* After a failure, stopped workers will not say more. */
		if (fail_deadline && leftovers_stopped())
			break;
		/* Look again for stopped leftovers in a while. */
		if (((go_on && n_ok) || fail_deadline) &&
		    (!until || tool_now_ms() + 500 < until))
			until = tool_now_ms() + 500;
		sig = tool_wait_signal(&set, until);
		if (sig == 0 && until != deadline && until != fail_deadline)
			continue;
		if (sig == 0 && fail_deadline && tool_now_ms() >= fail_deadline)
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
			tool_procs_kill(workers, n_workers, sig);
			tool_procs_kill(servers, n_servers, sig);
			rc = 128 + sig;
			break;
		}
	}
	if (rc < 0)
		reap_some(&rc, 0);
	stop_all(&set, o.grace_s);
	if (rc < 0)
		rc = 0;
	if (rc == 0 && n_lost)
		tool_err("%u of %u workers succeeded; %u lost (the job went on "
			 "without them)",
			 o.job.workers - n_lost, o.job.workers, n_lost);
	else if (rc == 0)
		tool_err("all %u workers succeeded", o.job.workers);
	return rc;
}
