/* SPDX-License-Identifier: MIT */
/*
 * rdps_run.c - rdps-run, one process of a job placed by a cluster
 * launcher (srun, mpirun). Its rank r of N comes from --rank/--size, Slurm
 * (SLURM_PROCID, SLURM_NTASKS) or Open MPI (OMPI_COMM_WORLD_RANK,
 * OMPI_COMM_WORLD_SIZE). Ranks 0..S-1 serve shard r in this process; the
 * others run the command as worker r-S of N-S with the job's environment.
 * Rank 0 also serves the rendezvous at RDPS_ROOT (src/rendezvous.h).
 *
 * Exit status: a worker's is its command's (128 + signal if killed); a
 * shard's is 0 once every worker finished; 1 when the job failed around
 * it (one line on stderr says why), 2 for bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "jobopts.h"
#include "rendezvous.h"
#include "server.h"
#include "spawn.h"

#define DEF_TIMEOUT_S 60
#define URL_MAX 300

struct opts {
	struct job_opts job;
	unsigned timeout_s;
	int rank, size; /* -1: from the environment */
	const char *root;
	char **cmd;
};

static volatile sig_atomic_t stop_flag; /* this shard */
static volatile sig_atomic_t rdv_stop;	/* rank 0's rendezvous */
static volatile pid_t child_pid;
static volatile sig_atomic_t got_signal;

static void run_head(FILE *f)
{
	fprintf(f, "Usage: rdps-run --shards S [options] -- CMD [ARGS...]\n"
		   "\n"
		   "Run one process of an rdps job placed by srun or mpirun. "
		   "Ranks 0..S-1\n"
		   "serve the shards, the other ranks run CMD as the workers "
		   "with RDPS_SHARDS,\n"
		   "RDPS_RANK, RDPS_WORKERS, RDPS_MODEL, RDPS_SLACK and "
		   "RDPS_TOKEN set.\n"
		   "Rank 0 serves the rendezvous at RDPS_ROOT=HOST:PORT (HOST: "
		   "rank 0's node).\n"
		   "\n");
}

static void run_tail(FILE *f)
{
	fprintf(f, "\n"
		   "Exit status: a worker's is CMD's (128+signal if killed); a "
		   "shard's is 0\n"
		   "when every worker finished; 1 if the job failed; 2 on bad "
		   "usage.\n");
}

static int set_root(void *ctx, const char *arg)
{
	struct opts *o = ctx;

	o->root = arg;
	return 0;
}

static int set_rank(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	uint64_t v;

	if (tool_parse_count(arg, "rank", 0, 1u << 20, &v))
		return -EINVAL;
	o->rank = (int)v;
	return 0;
}

static int set_size(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	uint64_t v;

	if (tool_parse_count(arg, "size", 1, 1u << 20, &v))
		return -EINVAL;
	o->size = (int)v;
	return 0;
}

static int set_timeout(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	uint64_t v;

	if (tool_parse_count(arg, "timeout", 1, 86400, &v))
		return -EINVAL;
	o->timeout_s = (unsigned)v;
	return 0;
}

static const struct tool_opt run_table[] = {
	{.name = "root",
	 .key = 'r',
	 .arg = "HOST:PORT",
	 .help = "the rendezvous",
	 .def = "env RDPS_ROOT",
	 .set = set_root},
	{.name = "rank",
	 .arg = "R",
	 .help = "this process's rank",
	 .def = "env SLURM_PROCID or OMPI_COMM_WORLD_RANK",
	 .set = set_rank},
	{.name = "size",
	 .arg = "N",
	 .help = "processes in the job",
	 .def = "env SLURM_NTASKS or OMPI_COMM_WORLD_SIZE",
	 .set = set_size},
	{.name = "timeout",
	 .arg = "SEC",
	 .help = "every rank must reach the rendezvous within SEC",
	 .def = "60",
	 .set = set_timeout},
};

/* The rank and size not given as options, from Slurm or Open MPI. */
static int find_rank(struct opts *o)
{
	int rank, size, ret;

	rdps_clear_error();
	ret = rdps_cluster_rank(&rank, &size);
	if (ret < 0) {
		tool_err("%s", rdps_errmsg());
		return -EINVAL;
	}
	if (ret > 0 && o->rank < 0)
		o->rank = rank;
	if (ret > 0 && o->size < 0)
		o->size = size;
	if (o->rank < 0 || o->size < 0) {
		tool_err("unknown rank and size: run under srun or mpirun, or "
			 "give --rank and --size");
		return -EINVAL;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	struct tool_optset sets[] = {
		job_optset(&o->job, JOB_TOOL_RUN),
		TOOL_OPTSET(run_table, RDPS_ARRAY_SIZE(run_table), o),
	};
	const struct tool_cmd cmd = {
		.name = "rdps-run",
		.stop_at_cmd = 1,
		.head = run_head,
		.tail = run_tail,
		.sets = sets,
		.nsets = RDPS_ARRAY_SIZE(sets),
	};
	char host[256], port[16];
	int ret;

	memset(o, 0, sizeof(*o));
	job_opts_init(&o->job);
	o->job.shards_max = RDPS_RDV_SHARDS_MAX;
	o->job.shards_required = 1;
	o->job.transport = "tcp";
	o->job.ssp_slack = 1;
	o->rank = o->size = -1;
	o->timeout_s = DEF_TIMEOUT_S;
	o->root = getenv("RDPS_ROOT");
	ret = tool_opts_parse(&cmd, argc, argv);
	if (ret)
		return ret;
	if (!o->job.shards) {
		tool_err("missing --shards S: how many ranks serve shards");
		return -EINVAL;
	}
	if (job_opts_check(&o->job))
		return -EINVAL;
	if (optind >= argc) {
		tool_err("missing command: rdps-run --shards S -- CMD "
			 "[ARGS...]");
		return -EINVAL;
	}
	o->cmd = argv + optind;
	if (!o->root) {
		tool_err("no rendezvous: set RDPS_ROOT=HOST:PORT (rank 0's "
			 "node and a free port) or give --root");
		return -EINVAL;
	}
	if (rdps_rdv_addr_parse(o->root, host, sizeof(host), port,
				sizeof(port))) {
		tool_err("%s", rdps_errmsg());
		return -EINVAL;
	}
	if ((o->rank < 0 || o->size < 0) && find_rank(o))
		return -EINVAL;
	if (o->rank >= o->size) {
		tool_err("rank %d is out of range: the job has %d processes",
			 o->rank, o->size);
		return -EINVAL;
	}
	if ((unsigned)o->size <= o->job.shards ||
	    (unsigned)o->size - o->job.shards > RDPS_RDV_WORKERS_MAX) {
		tool_err("a job of %d processes cannot have %u shards: it "
			 "needs 1 to %d workers besides",
			 o->size, o->job.shards, RDPS_RDV_WORKERS_MAX);
		return -EINVAL;
	}
	return 0;
}

static void on_signal(int sig)
{
	got_signal = 1;
	stop_flag = 1;
	rdv_stop = 1;
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void *rdv_thread(void *arg)
{
	struct rdps_rdv_server *srv = arg;
	int ret;

	ret = rdps_rdv_server_run(srv, &rdv_stop);
	if (ret && ret != -ECANCELED)
		tool_err("rendezvous: %s", rdps_errmsg());
	return NULL;
}

struct watch {
	struct rdps_rdv_client *c;
	int ret;
};

static void *watch_thread(void *arg)
{
	struct watch *w = arg;

	w->ret = rdps_rdv_wait_stop(w->c);
	if (w->ret && !got_signal)
		tool_err("shard: %s", rdps_errmsg());
	stop_flag = 1;
	return NULL;
}

static int run_shard(const struct opts *o, struct rdps_rdv_client *c,
		     uint64_t token)
{
	char url[URL_MAX], addr[256];
	struct rdps_server_cfg cfg;
	struct rdps_server *s;
	struct watch w = {.c = c};
	pthread_t th;
	int ret;

	if (!strcmp(o->job.transport, "shm")) {
		snprintf(url, sizeof(url), "shm://rdps-%016" PRIx64 "-s%d",
			 token, o->rank);
	} else {
		if (o->job.addr)
			snprintf(addr, sizeof(addr), "%s", o->job.addr);
		else if (rdps_rdv_local_addr(c, addr, sizeof(addr)))
			return tool_fail(-EINVAL, "local address");
		snprintf(url, sizeof(url), "%s://%s:0", o->job.transport, addr);
	}
	rdps_server_cfg_default(&cfg);
	cfg.url = url;
	cfg.shard = (unsigned)o->rank;
	cfg.nshards = o->job.shards;
	cfg.workers = (unsigned)o->size - o->job.shards;
	cfg.model = o->job.model;
	cfg.slack = o->job.model == RDPS_MODEL_SSP ? o->job.slack : 0;
	cfg.token = token;
	if (o->job.heartbeat_given)
		cfg.heartbeat_ms = o->job.heartbeat_ms;
	rdps_clear_error();
	ret = rdps_server_create(&cfg, &s);
	if (ret)
		return tool_fail(ret, url);
	rdps_clear_error();
	ret = rdps_rdv_put(c, (unsigned)o->rank, rdps_server_url(s));
	if (ret) {
		rdps_server_destroy(s);
		return tool_fail(ret, "rendezvous");
	}
	if (pthread_create(&th, NULL, watch_thread, &w)) {
		rdps_server_destroy(s);
		tool_err("cannot start a thread");
		return 1;
	}
	rdps_clear_error();
	ret = rdps_server_run(s, &stop_flag);
	if (ret)
		ret = tool_fail(ret, "serving");
	rdps_rdv_shutdown(c);
	pthread_join(th, NULL);
	rdps_server_destroy(s);
	return ret ? ret : w.ret ? 1 : 0;
}

static int run_worker(const struct opts *o, struct rdps_rdv_client *c,
		      uint64_t token)
{
	char urls[RDPS_RDV_SHARDS_MAX * URL_MAX];
	struct job_env env;
	sigset_t sigs, old;
	struct tool_spawn sp = {
		.path = o->cmd[0],
		.argv = o->cmd,
		.search = 1,
		.env = env.env,
		.keep_fd = -1,
		.out_fd = -1,
		.die_with_parent = 1,
		.sigmask = &old,
	};
	int ret, status, code;
	pid_t pid;

	rdps_clear_error();
	ret = rdps_rdv_get(c, o->job.shards, urls, sizeof(urls),
			   (int)o->timeout_s * 1000);
	if (ret)
		return tool_fail(ret, "rendezvous");
	job_env_init(&env, &o->job, urls, (unsigned)o->size - o->job.shards,
		     token);
	job_env_rank(&env, (unsigned)o->rank - o->job.shards);
	/* Signals wait until child_pid is known, so they reach the child. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, &old);
	pid = tool_spawn(&sp);
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		rdps_rdv_done(c, 1);
		return 1;
	}
	child_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (tool_wait(pid, &status))
		status = 1 << 8;
	child_pid = 0;
	code = tool_status_code(status);
	rdps_clear_error();
	ret = rdps_rdv_done(c, (unsigned)code);
	if (ret)
		tool_err("could not report to the rendezvous: %s",
			 rdps_errmsg());
	if (code && WIFSIGNALED(status)) {
		char what[96];

		tool_status_str(status, what, sizeof(what));
		tool_err("worker %u %s", (unsigned)o->rank - o->job.shards,
			 what);
	}
	return code;
}

int main(int argc, char **argv)
{
	struct rdps_rdv_server *srv = NULL;
	struct rdps_rdv_client *c;
	struct sigaction sa;
	pthread_t rdv_th;
	uint64_t token;
	struct opts o;
	int ret, rc;

	tool_name = "rdps-run";
	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : 2;

	signal(SIGPIPE, SIG_IGN);

	if (o.rank == 0) {
		rdps_clear_error();
		ret = rdps_rdv_server_create(
			o.root, (unsigned)o.size, o.job.shards, o.job.model,
			o.job.model == RDPS_MODEL_SSP ? o.job.slack : 0,
			tool_job_token(), (int)o.timeout_s * 1000, &srv);
		if (ret)
			return tool_fail(ret, "rendezvous");
		if (pthread_create(&rdv_th, NULL, rdv_thread, srv)) {
			tool_err("cannot start a thread");
			rdps_rdv_server_destroy(srv);
			return 1;
		}
	}
	rdps_clear_error();
	ret = rdps_rdv_connect(o.root, (int)o.timeout_s * 1000, &c);
	if (!ret) {
		ret = rdps_rdv_hello(c, (unsigned)o.rank, (unsigned)o.size,
				     o.job.shards, o.job.model,
				     o.job.model == RDPS_MODEL_SSP ? o.job.slack
								   : 0,
				     &token);
		if (ret)
			rdps_rdv_close(c);
	}
	if (ret) {
		rc = tool_fail(ret, "rendezvous");
	} else {
		/* Until here SIGINT and SIGTERM simply end the process. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		if ((unsigned)o.rank < o.job.shards)
			rc = run_shard(&o, c, token);
		else
			rc = run_worker(&o, c, token);
		rdps_rdv_close(c);
	}
	if (srv) {
		if (rc)
			rdv_stop = 1;
		pthread_join(rdv_th, NULL);
		rdps_rdv_server_destroy(srv);
	}
	return rc;
}
