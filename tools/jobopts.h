/* SPDX-License-Identifier: MIT */
/*
 * jobopts.h - the options of a parameter server job (shards, workers,
 * transport, model, slack, token, polling, checkpoints, loss policy,
 * heartbeat, log level) as one table (opts.h), taken by rdps-launch,
 * rdps-run, rdps-server and rdps-train experiment. Each entry names the
 * tools that take it, so a flag added here with every JOB_TOOL_* bit
 * appears in each of them, with its help line.
 */
#ifndef RDPS_TOOLS_JOBOPTS_H
#define RDPS_TOOLS_JOBOPTS_H

#include <limits.h>
#include <stdint.h>

#include "common.h"
#include "config.h"
#include "opts.h"

/* Which tool parses: the mask of job_optset(). */
#define JOB_TOOL_LAUNCH 0x1u
#define JOB_TOOL_RUN 0x2u
#define JOB_TOOL_SERVER 0x4u
#define JOB_TOOL_EXPERIMENT 0x8u

struct job_opts {
	/* Set by the tool before parsing: limits, and what the help shows. */
	unsigned shards_max, workers_max;
	int shards_required, workers_required;
	unsigned ssp_slack; /* slack of --model ssp without --slack */

	/* Defaults set by the tool, then the options. */
	unsigned shards, workers, slack;
	int shards_given, workers_given, slack_given;
	const char *transport; /* shm, tcp or verbs */
	const char *addr;      /* IP the shards listen on; NULL: find one */
	enum rdps_model model;
	uint64_t token;
	enum rdps_tp_poll_mode poll;
	const char *poll_name; /* as given; NULL: not given */
	const char *ckpt_dir;
	unsigned ckpt_every; /* 0: not given */
	int resume;	     /* set by the tool's own --resume */
	enum rdps_on_loss on_loss;
	unsigned heartbeat_ms;
	int heartbeat_given;
};

/* Zero everything but the defaults every tool shares (model bsp, adaptive
 * polling, heartbeat PS_HEARTBEAT_MS, loss policy fail). */
void job_opts_init(struct job_opts *j);

/* The table's entries taken by tool (a JOB_TOOL_* bit), parsing into j. */
struct tool_optset job_optset(struct job_opts *j, unsigned tool);

/*
 * The checks across options once all are parsed: the ssp slack default,
 * --slack only with ssp, --on-worker-loss continue only with ssp or asp,
 * --resume and --checkpoint-every only with --checkpoint-dir, which only
 * bsp and absp take. 0 or
 * -EINVAL after one line on stderr.
 */
int job_opts_check(struct job_opts *j);

/*
 * --checkpoint-dir ready to write in: created with its parents (mkdir -p)
 * unless --resume (which needs it there), a directory, and writable. 0 or
 * -EINVAL after one line on stderr naming the directory and the reason.
 */
int job_ckpt_dir_ready(const struct job_opts *j);

/*
 * A worker's environment, which rdps_config_from_env() reads: RDPS_SHARDS
 * (urls, kept by pointer), RDPS_RANK, RDPS_WORKERS, RDPS_MODEL, RDPS_SLACK,
 * RDPS_TOKEN and RDPS_ON_WORKER_LOSS as name, value pairs in env, for
 * struct tool_spawn; and PYTHONPATH with this build's python/ (the rdps
 * package) prepended, when the tool runs from a build tree that has it.
 * Set the rank with job_env_rank() per worker.
 */
struct job_env {
	char rank[16], workers[16], slack[16], token[32];
	char pythonpath[2 * PATH_MAX];
	const char *env[17];
};
void job_env_init(struct job_env *e, const struct job_opts *j, const char *urls,
		  unsigned workers, uint64_t token);
void job_env_rank(struct job_env *e, unsigned rank);

#endif /* RDPS_TOOLS_JOBOPTS_H */
