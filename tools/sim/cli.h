/* SPDX-License-Identifier: MIT */
/*
 * cli.h - rdps-sim's subcommands (tools/rdps_sim.c parses the shared
 * options; validate.c, fit.c and project.c hold the reports). Each returns
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

/* One row of a measured CSV (SIM_CSV_HEADER): the cell and its times. */
struct sim_row {
	char transport[32];
	enum sim_model model;
	unsigned slack;
	uint64_t workers, shards, bytes, iters;
	/* clock_us, cpu_us (every shard's), ops: < 0 if empty */
	double iter_us, clock_us, cpu_us, ops;
};

/* Read every row of transport from the CSV at path into *rows (malloc'd,
 * the caller frees; *nrows of them, *skipped of other transports). Every
 * row is checked first, so bad input prints nothing but its error: one
 * line on stderr naming the file, line and column. 0, or 2 on bad input
 * or no row of transport. */
int sim_rows_read(const char *path, const char *transport,
		  struct sim_row **rows, unsigned *nrows, unsigned *skipped);
/* base with r's cell: model, slack, W, S, model size, no compute, r's
 * iterations up to 200. */
void sim_row_cfg(const struct sim_cfg *base, const struct sim_row *r,
		 struct sim_cfg *cfg);

struct sim_opts {
	struct sim_cfg cfg; /* run; the base of validate and project */
	const char *measured;
	const char *out_dir; /* project: a directory; fit: a file */
	double tolerance;
	int strict;
	int quick; /* project: a smaller grid (tests) */
	int nset;  /* --set given */
	int profile_given;
};

/* The sum over rows of log(simulated / measured)^2 of the iteration
 * median, each capped at log(2)^2, with profile p (base's other
 * settings), and the rows within tol.
 * 0 or -ENOMEM. */
int sim_fit_score(const struct sim_profile *p, const struct sim_cfg *base,
		  const struct sim_row *rows, unsigned nrows, double tol,
		  double *sse_out, unsigned *within_out);
/* Fit p's host terms (fit.c fit_terms: wake_us, wake_per_proc_us, cores,
 * wake_free_us, load, msg_us, wake_max_us, step_us, op_cpu_us,
 * wake_spread, release_us) to rows, in place; cpus 0 becomes 2
 * and the oversubscribed flag is cleared (load decides). 0 or -ENOMEM. */
int sim_fit(struct sim_profile *p, const struct sim_cfg *base,
	    const struct sim_row *rows, unsigned nrows, unsigned *passes_out);
/* Read a profile file (sim_profile_print's form, as fit --out writes
 * it: "NAME: SOURCE (fitted: TERMS)" naming a built-in profile, then
 * FIELD=VALUE lines) into *p. Its source and fitted strings live in
 * static storage until the next call. 0, or -EINVAL with one line on
 * stderr naming the file and line. */
int sim_profile_read(const char *path, struct sim_profile *p);

int sim_cmd_fit(const struct sim_opts *o, FILE *out);
int sim_cmd_validate(const struct sim_opts *o, FILE *out);
int sim_cmd_project(const struct sim_opts *o, FILE *out);

#endif /* RDPS_SIM_CLI_H */
