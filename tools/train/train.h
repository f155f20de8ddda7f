/* SPDX-License-Identifier: MIT */
/*
 * train.h - rdps-train's subcommands and the options they share.
 *
 *   run         one worker of a training job under rdps-launch (run.c)
 *   experiment  the whole comparison of consistency models (experiment.c)
 *   gen         write a synthetic data set as a text file (run.c)
 *
 * Each returns an exit code: 0, 1 (the job failed; one line said why) or 2
 * (bad usage; one line said what and how to fix it).
 */
#ifndef RDPS_TRAIN_TRAIN_H
#define RDPS_TRAIN_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "model.h"
#include "spec.h"

struct rdps_config;
struct trn_load;

/* The workload, its data and its SGD settings (all of run's options that
 * experiment passes on to every worker). */
struct trn_work_opts {
	enum trn_kind kind;
	const char *data; /* training file; NULL: the generator */
	const char *test; /* held-out file; NULL: holdout of data */
	double holdout;	  /* fraction of a data file held out */
	uint64_t samples; /* generator: training samples (ratings) */
	uint64_t test_samples;
	struct trn_lr_gen lrg;
	struct trn_mf_gen mfg;
	/* lasso: density and support here; its samples, features and
	 * noise are samples, lrg.features and lrg.noise */
	struct trn_lasso_gen lag;
	double radius; /* lasso L1 radius t (0: automatic) */
	uint32_t rank; /* mf model rank (0: the generator's) */
	double lr, l2, init_sd;
	uint32_t batch;
	uint64_t epochs;
	uint32_t clocks_per_epoch; /* an iteration is 1/this of a pass */
	uint64_t seed;
	uint32_t repeat; /* a repeat of the run: other sample orders and
			  * straggler draws, the same data */
};

/* The seed of a run's sample order and straggler draws: --seed, moved
 * by --repeat (the data keeps --seed). */
uint64_t trn_run_seed(const struct trn_work_opts *w);

/* Defaults of a workload. */
void trn_work_defaults(struct trn_work_opts *w, enum trn_kind kind);
/* The workload named in argv (--workload/-W, lr when none), so defaults
 * can be set before the options are parsed in order. */
void trn_prescan_kind(int argc, char **argv, enum trn_kind *out);
/* Parse "lr", "mf" or "lasso" (prints the error). */
int trn_parse_kind(const char *s, enum trn_kind *out);
const char *trn_kind_name(enum trn_kind kind);

/*
 * The options of struct trn_work_opts as getopt_long entries: handle one
 * (opt is the long option's val) into w. 1 if opt is not one of them,
 * 0 when parsed, -EINVAL after printing one line.
 */
/* clang-format off */
#define TRN_WORK_LONGOPTS                                    \
	{"workload", required_argument, NULL, 'W'},          \
	{"data", required_argument, NULL, 'D'},              \
	{"test", required_argument, NULL, 1000},             \
	{"holdout", required_argument, NULL, 1001},          \
	{"samples", required_argument, NULL, 'N'},           \
	{"test-samples", required_argument, NULL, 1002},     \
	{"features", required_argument, NULL, 1003},         \
	{"nnz", required_argument, NULL, 1004},              \
	{"noise", required_argument, NULL, 1005},            \
	{"users", required_argument, NULL, 1006},            \
	{"items", required_argument, NULL, 1007},            \
	{"rank", required_argument, NULL, 1008},             \
	{"lr", required_argument, NULL, 1009},               \
	{"l2", required_argument, NULL, 1010},               \
	{"batch", required_argument, NULL, 'b'},             \
	{"epochs", required_argument, NULL, 'e'},            \
	{"seed", required_argument, NULL, 1011},             \
	{"clocks-per-epoch", required_argument, NULL, 1013}, \
	{"true-rank", required_argument, NULL, 1012},        \
	{"zipf", required_argument, NULL, 1014},             \
	{"binary", no_argument, NULL, 1015},                 \
	{"density", required_argument, NULL, 1016},          \
	{"support", required_argument, NULL, 1017},          \
	{"radius", required_argument, NULL, 1018},           \
	{"repeat", required_argument, NULL, 1019},
/* clang-format on */
int trn_work_opt(int opt, const char *arg, struct trn_work_opts *w);
/* Cross-option checks after parsing (prints the error). */
int trn_work_check(const struct trn_work_opts *w);
/* The help text of these options. */
void trn_work_usage(FILE *f);
/* Re-create the options as arguments of "rdps-train run": at most max
 * strings into argv (pointing into buf of buflen); the count or -ENOSPC. */
int trn_work_argv(const struct trn_work_opts *w, const char **argv, int max,
		  char *buf, size_t buflen);

int trn_cmd_run(int argc, char **argv);
int trn_cmd_gen(int argc, char **argv);
int trn_cmd_experiment(int argc, char **argv);

/* One worker of a lasso job (lasso.c): the job's configuration (from
 * the environment), the options, the stragglers, the pace, rank 0's CSV
 * descriptor (-1: none), --quiet and the load:T:D hog. An exit code. */
struct trn_lasso_args {
	const struct rdps_config *cfg;
	const struct trn_work_opts *w;
	const struct trn_spec *spec;
	double pace;
	int csv_fd;
	int quiet;
	struct trn_load *load; /* load:T:D, bound once connected; or NULL */
};
int trn_lasso_run(const struct trn_lasso_args *a);

/* This thread's CPU time, ns; a sleep of ns, resumed after signals. */
uint64_t trn_cpu_ns(void);
void trn_sleep_ns(uint64_t ns);

/* Parse a number within [lo, hi] (what names it); prints the error. */
int trn_parse_double(const char *s, const char *what, double lo, double hi,
		     double *out);

#endif /* RDPS_TRAIN_TRAIN_H */
