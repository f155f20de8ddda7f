/* SPDX-License-Identifier: MIT */
/*
 * rdps_train.c - rdps-train: mini-batch SGD training on the parameter
 * server, and the experiment that compares its consistency models.
 *
 *   rdps-launch -w 4 -m absp -- rdps-train run --workload lr
 *   rdps-train experiment --workload lr --stragglers 1:3x --json out.json
 *   rdps-train gen --workload mf -o ratings.txt
 *
 * The subcommands live in tools/train/ (train.h).
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "train/train.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdps-train COMMAND [options]   (COMMAND --help for "
		"its options)\n"
		"\n"
		"Commands:\n"
		"  run         one worker of a training job, under "
		"rdps-launch:\n"
		"                rdps-launch -w 4 -m absp -- rdps-train run "
		"--workload lr\n"
		"  experiment  BSP, SSP (slack 1, 3), ASP and A-BSP with and "
		"without\n"
		"              stragglers: CSV, SVG plot, JSON and a table "
		"of time to\n"
		"              target loss\n"
		"  gen         write a synthetic data set as text\n"
		"\n"
		"Workloads: lr (sparse logistic regression, LIBSVM data) "
		"and mf (matrix\n"
		"factorization, \"user item rating\" data), each with a "
		"seeded generator.\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	tool_name = "rdps-train";
	if (!cmd) {
		tool_err("which command? run, experiment or gen (see "
			 "rdps-train --help)");
		return 2;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return trn_cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "experiment"))
		return trn_cmd_experiment(argc - 1, argv + 1);
	if (!strcmp(cmd, "gen"))
		return trn_cmd_gen(argc - 1, argv + 1);
	tool_err("unknown command '%s': use run, experiment or gen (see "
		 "rdps-train --help)",
		 cmd);
	return 2;
}
