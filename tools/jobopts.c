/* SPDX-License-Identifier: MIT */
/* jobopts.c - the table of a job's options and their setters. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobopts.h"
#include "ps_proto.h"
#include "server.h"
#include "spawn.h"

#define JOB_SLACK_MAX (PS_CLOCK_K_MAX - 2)
#define JOB_ALL \
	(JOB_TOOL_LAUNCH | JOB_TOOL_RUN | JOB_TOOL_SERVER | JOB_TOOL_EXPERIMENT)

void job_opts_init(struct job_opts *j)
{
	memset(j, 0, sizeof(*j));
	j->model = RDPS_MODEL_BSP;
	j->poll = RDPS_TP_POLL_ADAPTIVE;
	j->heartbeat_ms = PS_HEARTBEAT_MS;
	j->on_loss = RDPS_LOSS_FAIL;
}

static int job_count(const char *arg, const char *what, uint64_t min,
		     uint64_t max, unsigned *out, int *given)
{
	uint64_t v;

	if (tool_parse_count(arg, what, min, max, &v))
		return -EINVAL;
	*out = (unsigned)v;
	if (given)
		*given = 1;
	return 0;
}

static int set_shards(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	return job_count(arg, "shard count", 1, j->shards_max, &j->shards,
			 &j->shards_given);
}

static void show_shards(const void *ctx, char *buf, size_t len)
{
	const struct job_opts *j = ctx;

	if (j->shards_required)
		snprintf(buf, len, ", 1 .. %u (required)", j->shards_max);
	else
		snprintf(buf, len, ", 1 .. %u (%u)", j->shards_max, j->shards);
}

static int set_workers(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	return job_count(arg, "worker count", 1, j->workers_max, &j->workers,
			 &j->workers_given);
}

static void show_workers(const void *ctx, char *buf, size_t len)
{
	const struct job_opts *j = ctx;

	if (j->workers_required)
		snprintf(buf, len, ", 1 .. %u (required)", j->workers_max);
	else
		snprintf(buf, len, ", 1 .. %u (%u)", j->workers_max,
			 j->workers);
}

static int set_transport(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	if (tool_check_transport(arg))
		return -EINVAL;
	j->transport = arg;
	return 0;
}

static void show_transport(const void *ctx, char *buf, size_t len)
{
	const struct job_opts *j = ctx;

	snprintf(buf, len, " (%s)", j->transport);
}

static int set_addr(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	if (!*arg || strpbrk(arg, "/, ")) {
		tool_err("bad address '%s': give an IP address such as "
			 "127.0.0.1",
			 arg);
		return -EINVAL;
	}
	j->addr = arg;
	return 0;
}

static void show_addr(const void *ctx, char *buf, size_t len)
{
	const struct job_opts *j = ctx;

	snprintf(buf, len, " (%s)",
		 j->addr ? j->addr : "the interface that reaches RDPS_ROOT");
}

static int set_model(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	return tool_parse_model(arg, &j->model);
}

static void show_model(const void *ctx, char *buf, size_t len)
{
	const struct job_opts *j = ctx;

	snprintf(buf, len, " (%s)", rdps_model_name(j->model));
}

static int set_slack(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	return job_count(arg, "slack", 0, JOB_SLACK_MAX, &j->slack,
			 &j->slack_given);
}

static void show_slack(const void *ctx, char *buf, size_t len)
{
	const struct job_opts *j = ctx;

	snprintf(buf, len, ", 0 .. %d (%u)", JOB_SLACK_MAX, j->ssp_slack);
}

static int set_token(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	return tool_parse_count(arg, "token", 0, UINT64_MAX, &j->token);
}

static int set_poll(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	if (tool_parse_poll(arg, &j->poll))
		return -EINVAL;
	j->poll_name = arg;
	return 0;
}

static int set_ckpt_dir(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	if (!*arg) {
		tool_err("empty --checkpoint-dir: name a directory");
		return -EINVAL;
	}
	j->ckpt_dir = arg;
	return 0;
}

static int set_ckpt_every(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	return job_count(arg, "checkpoint interval", 1, 1u << 30,
			 &j->ckpt_every, NULL);
}

static int set_on_loss(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	return tool_parse_on_loss(arg, &j->on_loss);
}

static int set_heartbeat(void *ctx, const char *arg)
{
	struct job_opts *j = ctx;

	if (tool_parse_heartbeat(arg, &j->heartbeat_ms))
		return -EINVAL;
	j->heartbeat_given = 1;
	return 0;
}

static void show_heartbeat(const void *ctx, char *buf, size_t len)
{
	(void)ctx;
	snprintf(buf, len, ", %u .. %u (%u; 0: no checks)",
		 RDPS_SERVER_HEARTBEAT_MIN, RDPS_SERVER_HEARTBEAT_MAX,
		 PS_HEARTBEAT_MS);
}

static int set_log_level(void *ctx, const char *arg)
{
	(void)ctx;
	return tool_set_log_level(arg);
}

/* clang-format off */
static const struct tool_opt job_table[] = {
	{"shards", 's', "N", 0, "server shards", NULL, show_shards,
	 set_shards, JOB_ALL},
	{"workers", 'w', "N", 0, "worker processes", NULL, show_workers,
	 set_workers, JOB_TOOL_LAUNCH | JOB_TOOL_SERVER | JOB_TOOL_EXPERIMENT},
	{"transport", 't', "T", 0, "shm (one node), tcp or verbs", NULL,
	 show_transport, set_transport,
	 JOB_TOOL_LAUNCH | JOB_TOOL_RUN | JOB_TOOL_EXPERIMENT},
	{"addr", 'a', "IP", 0, "tcp, verbs: the address the shards listen on",
	 NULL, show_addr, set_addr,
	 JOB_TOOL_LAUNCH | JOB_TOOL_RUN | JOB_TOOL_EXPERIMENT},
	{"model", 'm', "M", 0, "bsp, ssp, asp or absp", NULL, show_model,
	 set_model, JOB_TOOL_LAUNCH | JOB_TOOL_RUN | JOB_TOOL_SERVER},
	{"slack", 'k', "N", 0, "ssp only: clocks a worker may run ahead", NULL,
	 show_slack, set_slack,
	 JOB_TOOL_LAUNCH | JOB_TOOL_RUN | JOB_TOOL_SERVER},
	/* rdps-server takes no --transport (its URL names it): -t is free. */
	{"token", 't', "T", 0, "job token, the same on every peer", "0", NULL,
	 set_token, JOB_TOOL_SERVER},
	{"poll", 'P', "MODE", 0,
	 "the shards' polling: busy, adaptive or event", "adaptive", NULL,
	 set_poll, JOB_TOOL_LAUNCH | JOB_TOOL_SERVER},
	{"checkpoint-dir", 0, "DIR", 0,
	 "bsp/absp: the shards write their tables to DIR (made if missing) at "
	 "clock boundaries (shard-I.ckpt, and the one before as .prev); a "
	 "checkpoint that cannot be written fails the job", NULL, NULL,
	 set_ckpt_dir, JOB_TOOL_LAUNCH | JOB_TOOL_SERVER},
	{"checkpoint-every", 0, "N", 0, "... every N clocks", "1", NULL,
	 set_ckpt_every, JOB_TOOL_LAUNCH | JOB_TOOL_SERVER},
	{"on-worker-loss", 0, "fail|continue", 0,
	 "ssp/asp: when a worker dies or stops, the others go on without it "
	 "(continue) or fail naming it (fail); under srun or mpirun (env "
	 "RDPS_ON_WORKER_LOSS) the cluster launcher must not kill the job on "
	 "one bad exit", "fail", NULL, set_on_loss,
	 JOB_TOOL_LAUNCH | JOB_TOOL_RUN},
	{"heartbeat-ms", 0, "MS", 0,
	 "the shards' liveness period: a worker or shard still for two is "
	 "lost", NULL, show_heartbeat, set_heartbeat,
	 JOB_TOOL_LAUNCH | JOB_TOOL_RUN | JOB_TOOL_SERVER |
		 JOB_TOOL_EXPERIMENT},
	{"log-level", 'L', "LVL", 0, "error, warn, info, debug or trace",
	 "warn; env RDPS_LOG_LEVEL", NULL, set_log_level,
	 JOB_TOOL_RUN | JOB_TOOL_SERVER},
};
/* clang-format on */

struct tool_optset job_optset(struct job_opts *j, unsigned tool)
{
	return (struct tool_optset){.opts = job_table,
				    .n = RDPS_ARRAY_SIZE(job_table),
				    .ctx = j,
				    .mask = tool};
}

int job_opts_check(struct job_opts *j)
{
	if (j->model == RDPS_MODEL_SSP && !j->slack_given)
		j->slack = j->ssp_slack;
	if (j->slack_given && j->slack && j->model != RDPS_MODEL_SSP) {
		tool_err("--slack %u needs --model ssp (%s has no slack)",
			 j->slack, rdps_model_name(j->model));
		return -EINVAL;
	}
	if (tool_check_on_loss(j->on_loss, j->model))
		return -EINVAL;
	if ((j->resume || j->ckpt_every) && !j->ckpt_dir) {
		tool_err("--resume and --checkpoint-every need "
			 "--checkpoint-dir DIR");
		return -EINVAL;
	}
	if (j->ckpt_dir && !rdps_model_in_order(j->model)) {
		tool_err("--checkpoint-dir needs --model bsp or absp (%s has "
			 "no clock boundary to save at)",
			 rdps_model_name(j->model));
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p: every missing directory of path, 0 or -errno. */
static int job_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0777) && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

int job_ckpt_dir_ready(const struct job_opts *j)
{
	char probe[PATH_MAX];
	struct stat st;
	int fd, ret;

	if (!j->ckpt_dir)
		return 0;
	/* Resuming reads what is there: a missing directory is a typo,
	 * not something to create. */
	ret = j->resume ? 0 : job_mkdir_p(j->ckpt_dir);
	if (!ret && stat(j->ckpt_dir, &st))
		ret = -errno;
	if (!ret && !S_ISDIR(st.st_mode))
		ret = -ENOTDIR;
	if (ret == -ENOTDIR) {
		tool_err("--checkpoint-dir %s: a file is in the way (the path "
			 "or one of its parents is not a directory): name a "
			 "directory",
			 j->ckpt_dir);
		return -EINVAL;
	}
	if (ret) {
		tool_err("--checkpoint-dir %s: %s: %s", j->ckpt_dir,
			 j->resume ? "cannot resume from it"
				   : "cannot create it",
			 strerror(-ret));
		return -EINVAL;
	}
	/* Writable (a read-only mount, another user's directory)? A job
	 * that finds out at its first clock has worked for nothing. */
	snprintf(probe, sizeof(probe), "%s/.rdps-probe-%d", j->ckpt_dir,
		 (int)getpid());
	fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		tool_err("--checkpoint-dir %s: cannot write in it: %s: name a "
			 "writable directory",
			 j->ckpt_dir, strerror(errno));
		return -EINVAL;
	}
	close(fd);
	unlink(probe);
	return 0;
}

/*
 * The Python package of this build (python/rdps beside tools/ in the build
 * tree) first on PYTHONPATH, before what the caller had, so a worker's
 * `import rdps` finds the build that runs the job with no install step.
 * 0 when there is none (an installed tool): PYTHONPATH is left alone.
 */
static int job_env_pythonpath(char *buf, size_t len)
{
	char self[PATH_MAX], pkg[PATH_MAX + 32], *slash;
	const char *old = getenv("PYTHONPATH");

	if (tool_self(self, sizeof(self), 1))
		return 0;
	snprintf(pkg, sizeof(pkg), "%s/../python/rdps/__init__.py", self);
	if (access(pkg, R_OK) || !realpath(pkg, self))
		return 0;
	/* self is now .../python/rdps/__init__.py: keep .../python. */
	for (int i = 0; i < 2 && (slash = strrchr(self, '/')); i++)
		*slash = '\0';
	return (size_t)snprintf(buf, len, "%s%s%s", self,
				old && *old ? ":" : "",
				old && *old ? old : "") < len;
}

void job_env_init(struct job_env *e, const struct job_opts *j, const char *urls,
		  unsigned workers, uint64_t token)
{
	const char *env[] = {
		"RDPS_SHARDS",
		urls,
		"RDPS_RANK",
		e->rank,
		"RDPS_WORKERS",
		e->workers,
		"RDPS_MODEL",
		rdps_model_name(j->model),
		"RDPS_SLACK",
		e->slack,
		"RDPS_TOKEN",
		e->token,
		"RDPS_ON_WORKER_LOSS",
		rdps_on_loss_name(j->on_loss),
		"PYTHONPATH",
		e->pythonpath,
		NULL,
	};

	_Static_assert(sizeof(env) == sizeof(e->env), "job_env.env size");
	memcpy(e->env, env, sizeof(env));
	snprintf(e->rank, sizeof(e->rank), "0");
	snprintf(e->workers, sizeof(e->workers), "%u", workers);
	snprintf(e->slack, sizeof(e->slack), "%u", j->slack);
	snprintf(e->token, sizeof(e->token), "%" PRIu64, token);
	if (!job_env_pythonpath(e->pythonpath, sizeof(e->pythonpath)))
		e->env[14] = NULL;
}

void job_env_rank(struct job_env *e, unsigned rank)
{
	snprintf(e->rank, sizeof(e->rank), "%u", rank);
}
