/* SPDX-License-Identifier: MIT */
/*
 * cli.h - rdps-sim's subcommands (tools/rdps_sim.c parses the shared
 * options; validate.c and project.c hold the two reports). Each returns
 * the process's exit status (0, 1 on a failed check, 2 on bad input,
 * having printed one line on stderr).
 */
#ifndef RDPS_SIM_CLI_H
#define RDPS_SIM_CLI_H

#include <stdio.h>

#include "sim.h"

/* The header rdps-scale writes, and validate reads. */
#define SIM_CSV_HEADER                                                        \
	"transport,model,workers,shards,model_bytes,iters,iter_us_median,"    \
	"iter_us_p99,clock_us_median,shard_cpu_us_per_iter,bytes_per_worker_" \
	"iter,ops_per_worker_iter"

struct sim_opts {
	struct sim_cfg cfg; /* run; the base of validate and project */
	const char *measured;
	const char *out_dir;
	double tolerance;
	int strict;
	int quick; /* project: a smaller grid (tests) */
	int nset;  /* --set given */
	int profile_given;
};

int sim_cmd_validate(const struct sim_opts *o, FILE *out);
int sim_cmd_project(const struct sim_opts *o, FILE *out);

#endif /* RDPS_SIM_CLI_H */
