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
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "rendezvous.h"
#include "server.h"

#define OPT_TIMEOUT 0x100
#define OPT_ON_LOSS 0x101
#define OPT_HEARTBEAT 0x102
#define DEF_TIMEOUT_S 60
#define URL_MAX 300

struct opts {
	unsigned shards, slack, timeout_s;
	int rank, size; /* -1: from the environment */
	const char *transport, *addr, *root;
	enum rdps_model model;
	enum rdps_on_loss on_loss;
	unsigned heartbeat_ms;
	int slack_given, heartbeat_given;
	char **cmd;
};

static volatile sig_atomic_t stop_flag; /* this shard */
static volatile sig_atomic_t rdv_stop;	/* rank 0's rendezvous */
static volatile pid_t child_pid;
static volatile sig_atomic_t got_signal;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdps-run --shards S [options] -- CMD [ARGS...]\n"
		"\n"
		"Run one process of an rdps job placed by srun or mpirun. "
		"Ranks 0..S-1\n"
		"serve the shards, the other ranks run CMD as the workers "
		"with RDPS_SHARDS,\n"
		"RDPS_RANK, RDPS_WORKERS, RDPS_MODEL, RDPS_SLACK and "
		"RDPS_TOKEN set.\n"
		"Rank 0 serves the rendezvous at RDPS_ROOT=HOST:PORT (HOST: "
		"rank 0's node).\n"
		"\n"
		"Options:\n"
		"  -s, --shards=S       shard ranks, 1 .. %d (required)\n"
		"  -t, --transport=T    shm (one node), tcp or verbs (tcp)\n"
		"  -a, --addr=IP        tcp, verbs: address this shard listens "
		"on (the\n"
		"                       interface that reaches RDPS_ROOT)\n"
		"  -m, --model=M        bsp, ssp, asp or absp (bsp)\n"
		"  -k, --slack=N        ssp only: clocks a worker may run "
		"ahead (1)\n"
		"  -r, --root=HOST:PORT the rendezvous (env RDPS_ROOT)\n"
		"      --rank=R         this process's rank (env SLURM_PROCID "
		"or\n"
		"                       OMPI_COMM_WORLD_RANK)\n"
		"      --size=N         processes in the job (env SLURM_NTASKS "
		"or\n"
		"                       OMPI_COMM_WORLD_SIZE)\n"
		"      --timeout=SEC    every rank must reach the rendezvous "
		"within SEC (%d)\n"
		"      --on-worker-loss=fail|continue\n"
		"                       ssp/asp: when a worker dies or stops, "
		"the others go\n"
		"                       on without it (RDPS_ON_WORKER_LOSS; "
		"the cluster\n"
		"                       launcher must not kill the job on one "
		"bad exit)\n"
		"      --heartbeat-ms=MS  shards: liveness period, a peer "
		"still "
		"for two is\n"
		"                       lost (500; 0: no checks)\n"
		"  -L, --log-level=LVL  error, warn, info, debug or trace "
		"(warn)\n"
		"  -h, --help           this help\n"
		"\n"
		"Exit status: a worker's is CMD's (128+signal if killed); a "
		"shard's is 0\n"
		"when every worker finished; 1 if the job failed; 2 on bad "
		"usage.\n",
		RDPS_RDV_SHARDS_MAX, DEF_TIMEOUT_S);
}

/* A rank/size pair from the environment: 1 found, 0 absent, -1 bad. */
static int env_pair(const char *rname, const char *sname, struct opts *o)
{
	const char *r = getenv(rname), *s = getenv(sname);
	uint64_t rv, sv;

	if (!r && !s)
		return 0;
	if (!r || !s) {
		tool_err("%s is set but %s is not", r ? rname : sname,
			 r ? sname : rname);
		return -1;
	}
	if (tool_parse_count(r, rname, 0, 1u << 20, &rv) ||
	    tool_parse_count(s, sname, 1, 1u << 20, &sv))
		return -1;
	if (o->rank < 0)
		o->rank = (int)rv;
	if (o->size < 0)
		o->size = (int)sv;
	return 1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_RANK = 0x200, OPT_SIZE };
	static const struct option long_opts[] = {
		{"shards", required_argument, NULL, 's'},
		{"transport", required_argument, NULL, 't'},
		{"addr", required_argument, NULL, 'a'},
		{"model", required_argument, NULL, 'm'},
		{"slack", required_argument, NULL, 'k'},
		{"root", required_argument, NULL, 'r'},
		{"rank", required_argument, NULL, OPT_RANK},
		{"size", required_argument, NULL, OPT_SIZE},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"on-worker-loss", required_argument, NULL, OPT_ON_LOSS},
		{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
		{"log-level", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char host[256], port[16];
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->rank = o->size = -1;
	o->transport = "tcp";
	o->model = RDPS_MODEL_BSP;
	o->timeout_s = DEF_TIMEOUT_S;
	o->root = getenv("RDPS_ROOT");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:s:t:a:m:k:r:L:h", long_opts,
				 NULL)) != -1) {
		switch (ch) {
		case 's':
			if (tool_parse_count(optarg, "shard count", 1,
					     RDPS_RDV_SHARDS_MAX, &v))
				return -EINVAL;
			o->shards = (unsigned)v;
			break;
		case 't':
			if (tool_check_transport(optarg))
				return -EINVAL;
			o->transport = optarg;
			break;
		case 'a':
			if (!*optarg || strpbrk(optarg, "/, ")) {
				tool_err("bad address '%s': give an IP "
					 "address such as 10.0.0.1",
					 optarg);
				return -EINVAL;
			}
			o->addr = optarg;
			break;
		case 'm':
			if (tool_parse_model(optarg, &o->model))
				return -EINVAL;
			break;
		case 'k':
			if (tool_parse_count(optarg, "slack", 0,
					     RDPS_RDV_SLACK_MAX, &v))
				return -EINVAL;
			o->slack = (unsigned)v;
			o->slack_given = 1;
			break;
		case 'r':
			o->root = optarg;
			break;
		case OPT_RANK:
			if (tool_parse_count(optarg, "rank", 0, 1u << 20, &v))
				return -EINVAL;
			o->rank = (int)v;
			break;
		case OPT_SIZE:
			if (tool_parse_count(optarg, "size", 1, 1u << 20, &v))
				return -EINVAL;
			o->size = (int)v;
			break;
		case OPT_TIMEOUT:
			if (tool_parse_count(optarg, "timeout", 1, 86400, &v))
				return -EINVAL;
			o->timeout_s = (unsigned)v;
			break;
		case OPT_ON_LOSS:
			if (tool_parse_on_loss(optarg, &o->on_loss))
				return -EINVAL;
			break;
		case OPT_HEARTBEAT:
			if (tool_parse_heartbeat(optarg, &o->heartbeat_ms))
				return -EINVAL;
			o->heartbeat_given = 1;
			break;
		case 'L':
			if (tool_set_log_level(optarg))
				return -EINVAL;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			tool_err("option '%s' needs a value (see rdps-run "
				 "--help)",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			tool_err("unknown option '%s' (see rdps-run --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (!o->shards) {
		tool_err("missing --shards S: how many ranks serve shards");
		return -EINVAL;
	}
	if (o->model == RDPS_MODEL_SSP && !o->slack_given)
		o->slack = 1;
	if (o->slack_given && o->slack && o->model != RDPS_MODEL_SSP) {
		tool_err("--slack %u needs --model ssp", o->slack);
		return -EINVAL;
	}
	if (tool_check_on_loss(o->on_loss, o->model))
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
	if (o->rank < 0 || o->size < 0) {
		int r = env_pair("SLURM_PROCID", "SLURM_NTASKS", o);

		if (r == 0)
			r = env_pair("OMPI_COMM_WORLD_RANK",
				     "OMPI_COMM_WORLD_SIZE", o);
		if (r < 0)
			return -EINVAL;
		if (o->rank < 0 || o->size < 0) {
			tool_err("unknown rank and size: run under srun or "
				 "mpirun, or give --rank and --size");
			return -EINVAL;
		}
	}
	if (o->rank >= o->size) {
		tool_err("rank %d is out of range: the job has %d processes",
			 o->rank, o->size);
		return -EINVAL;
	}
	if ((unsigned)o->size <= o->shards ||
	    (unsigned)o->size - o->shards > RDPS_RDV_WORKERS_MAX) {
		tool_err("a job of %d processes cannot have %u shards: it "
			 "needs 1 to %d workers besides",
			 o->size, o->shards, RDPS_RDV_WORKERS_MAX);
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

	if (!strcmp(o->transport, "shm")) {
		snprintf(url, sizeof(url), "shm://rdps-%016" PRIx64 "-s%d",
			 token, o->rank);
	} else {
		if (o->addr)
			snprintf(addr, sizeof(addr), "%s", o->addr);
		else if (rdps_rdv_local_addr(c, addr, sizeof(addr)))
			return tool_fail(-EINVAL, "local address");
		snprintf(url, sizeof(url), "%s://%s:0", o->transport, addr);
	}
	rdps_server_cfg_default(&cfg);
	cfg.url = url;
	cfg.shard = (unsigned)o->rank;
	cfg.nshards = o->shards;
	cfg.workers = (unsigned)o->size - o->shards;
	cfg.model = o->model;
	cfg.slack = o->model == RDPS_MODEL_SSP ? o->slack : 0;
	cfg.token = token;
	if (o->heartbeat_given)
		cfg.heartbeat_ms = o->heartbeat_ms;
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

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static int run_worker(const struct opts *o, struct rdps_rdv_client *c,
		      uint64_t token)
{
	char urls[RDPS_RDV_SHARDS_MAX * URL_MAX], s[32];
	unsigned workers = (unsigned)o->size - o->shards;
	pid_t parent = getpid(), pid;
	sigset_t sigs, old;
	int ret, status, code;

	rdps_clear_error();
	ret = rdps_rdv_get(c, o->shards, urls, sizeof(urls),
			   (int)o->timeout_s * 1000);
	if (ret)
		return tool_fail(ret, "rendezvous");
	/* Signals wait until child_pid is known, so they reach the child. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, &old);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		tool_err("fork: %s", strerror(errno));
		rdps_rdv_done(c, 1);
		return 1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		snprintf(s, sizeof(s), "%u", (unsigned)o->rank - o->shards);
		if (setenv("RDPS_SHARDS", urls, 1) || setenv("RDPS_RANK", s, 1))
			_exit(127);
		snprintf(s, sizeof(s), "%u", workers);
		if (setenv("RDPS_WORKERS", s, 1) ||
		    setenv("RDPS_MODEL", rdps_model_name(o->model), 1))
			_exit(127);
		snprintf(s, sizeof(s), "%u", o->slack);
		if (setenv("RDPS_SLACK", s, 1))
			_exit(127);
		snprintf(s, sizeof(s), "%" PRIu64, token);
		if (setenv("RDPS_TOKEN", s, 1) ||
		    setenv("RDPS_ON_WORKER_LOSS", rdps_on_loss_name(o->on_loss),
			   1))
			_exit(127);
		execvp(o->cmd[0], o->cmd);
		fprintf(stderr, "rdps-run: cannot run '%s': %s\n", o->cmd[0],
			strerror(errno));
		_exit(127);
	}
	child_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			tool_err("waitpid: %s", strerror(errno));
			status = 1 << 8;
			break;
		}
	}
	child_pid = 0;
	code = status_code(status);
	rdps_clear_error();
	ret = rdps_rdv_done(c, (unsigned)code);
	if (ret)
		tool_err("could not report to the rendezvous: %s",
			 rdps_errmsg());
	if (code && WIFSIGNALED(status))
		tool_err("worker %u was killed by signal %d (%s)",
			 (unsigned)o->rank - o->shards, WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	return code;
}

static uint64_t job_token(void)
{
	uint64_t t = 0;

	if (getrandom(&t, sizeof(t), 0) != sizeof(t))
		t = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^
		    rdps_now_ns();
	return t ? t : 1;
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
			o.root, (unsigned)o.size, o.shards, o.model,
			o.model == RDPS_MODEL_SSP ? o.slack : 0, job_token(),
			(int)o.timeout_s * 1000, &srv);
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
				     o.shards, o.model,
				     o.model == RDPS_MODEL_SSP ? o.slack : 0,
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
		if ((unsigned)o.rank < o.shards)
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
