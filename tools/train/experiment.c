/* SPDX-License-Identifier: MIT */
/*
 * experiment.c - "rdps-train experiment": BSP, SSP (slack 1 and 3), ASP
 * and A-BSP on each workload and straggler spec, one rdps-launch job per
 * run (the rdps-launch next to this binary), one after the other. Rank 0
 * of each job appends its loss curve to a file; the runs are then scored
 * against their group's BSP run and written out as CSV, SVG and JSON, and
 * the table goes to stdout. Progress goes to stderr.
 *
 * The comparison: every model processes the same number of
 * epoch-equivalents (the same samples in all), each job gets the same
 * workers, shards and pace. The target loss of a group is
 * bsp_final + frac x (bsp_initial - bsp_final); a BSP run is the same on
 * every transport and with any stragglers (deterministic), so the target
 * only depends on the workload and its options.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobopts.h"
#include "report.h"
#include "spawn.h"
#include "train.h"

#define MAX_SPECS 8
#define MAX_ARGS 96

struct model_def {
	const char *name; /* in the table and JSON */
	const char *launch;
	unsigned slack;
};

static const struct model_def models_all[] = {
	{"BSP", "bsp", 0}, {"SSP1", "ssp", 1},	 {"SSP3", "ssp", 3},
	{"ASP", "asp", 0}, {"A-BSP", "absp", 0},
};
#define N_MODELS (sizeof(models_all) / sizeof(models_all[0]))

struct exp_opts {
	int kinds[TRN_NKINDS]; /* lr, mf, lasso, ctr: 1 if run */
	int kinds_given;
	char specs[MAX_SPECS][256];
	unsigned nspecs;
	int models[N_MODELS];
	struct job_opts job; /* workers, shards, transport, addr */
	const char *out, *json;
	double frac, pace;
	uint64_t run_timeout;
	uint64_t repeats; /* runs of every cell, repeats 0 .. repeats - 1 */
	int keep_going;	  /* exit 0 even if a run diverged */
	struct trn_work_opts work[TRN_NKINDS];
	/* work options as given, checked on probe, re-applied to each
	 * workload */
	struct trn_work_opts probe;
	int wopt[MAX_ARGS];
	const char *warg[MAX_ARGS];
	unsigned nwopt;
};

static void exp_head(FILE *f)
{
	fprintf(f, "Usage: rdps-train experiment [--workload lr|mf|lasso|ctr] "
		   "[--stragglers SPEC]\n"
		   "                             [--transport URL-SCHEME] "
		   "[--json FILE] [options]\n"
		   "\n"
		   "Train with BSP, SSP (slack 1 and 3), ASP and A-BSP, each "
		   "as one rdps-launch\n"
		   "job, for every workload and straggler spec given (default: "
		   "lr, mf and\n"
		   "lasso; ctr when named; stragglers 1:3x, random:0.1:3x and "
		   "load:1:0.5).\n"
		   "Every model processes the same epoch-equivalents (lasso: "
		   "supersteps).\n"
		   "Writes DIR/experiment.csv\n"
		   "(workload, stragglers, model, time_s, clock, worker, loss, "
		   "gap: lasso's\n"
		   "duality gap), DIR/experiment.svg (loss against wall time, "
		   "one chart per\n"
		   "workload and stragglers, every model on it; lasso also its "
		   "gap), the JSON rows\n"
		   "{workload, stragglers, model, time_to_target_s, "
		   "speedup_vs_bsp, final_loss,\n"
		   "verdict} with --json, and prints the table. Target loss: "
		   "BSP final + FRAC x\n"
		   "(BSP initial - BSP final). A run whose loss turns NaN or "
		   "inf, or ends not\n"
		   "below where it started, is \"diverged\": reported, never "
		   "ranked (no time to\n"
		   "target, no speedup), and the exit status is 1 unless "
		   "--keep-going.\n"
		   "\n");
}

static void exp_tail(FILE *f)
{
	fputc('\n', f);
	trn_work_usage(f);
}

static int parse_models(const char *s, int *on)
{
	char buf[256], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf) || !*s)
		goto bad;
	strcpy(buf, s);
	memset(on, 0, N_MODELS * sizeof(*on));
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		if (!strcasecmp(tok, "a-bsp"))
			strcpy(tok, "absp");
		for (i = 0; i < N_MODELS; i++) {
			char low[8];
			size_t k;

			for (k = 0; models_all[i].name[k] && k < 7; k++)
				low[k] = (char)(models_all[i].name[k] | 0x20);
			low[k] = '\0';
			if (!strcasecmp(tok, low) ||
			    (i == 4 && !strcasecmp(tok, "absp")))
				break;
		}
		if (i == N_MODELS)
			goto bad;
		on[i] = 1;
	}
	on[0] = 1;
	return 0;
bad:
	tool_err("bad model list '%s': use names among bsp, ssp1, ssp3, asp "
		 "and absp, joined by commas",
		 s);
	return -EINVAL;
}

static int set_workload(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;
	enum trn_kind k;

	if (trn_parse_kind(arg, &k))
		return -EINVAL;
	if (!o->kinds_given)
		memset(o->kinds, 0, sizeof(o->kinds));
	o->kinds_given = 1;
	o->kinds[k] = 1;
	return 0;
}

static int set_stragglers(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;
	struct trn_spec sp;
	char err[512];

	if (trn_spec_parse(arg, &sp, err, sizeof(err))) {
		tool_err("%s", err);
		return -EINVAL;
	}
	if (o->nspecs == MAX_SPECS) {
		tool_err("too many --stragglers: at most %d", MAX_SPECS);
		return -EINVAL;
	}
	trn_spec_str(&sp, o->specs[o->nspecs], sizeof(o->specs[0]));
	o->nspecs++;
	return 0;
}

static int set_models(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	return parse_models(arg, o->models);
}

static int set_frac(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	return trn_parse_double(arg, "target fraction", 0, 0.99, &o->frac);
}

static int set_pace(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	return trn_parse_double(arg, "pace", 1, 100, &o->pace);
}

static int set_out(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	o->out = arg;
	return 0;
}

static int set_json(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	o->json = arg;
	return 0;
}

static int set_run_timeout(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	return tool_parse_count(arg, "run timeout", 1, 86400, &o->run_timeout);
}

static int set_repeats(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	return tool_parse_count(arg, "repeat count", 1, 20, &o->repeats);
}

static int set_keep_going(void *ctx, const char *arg)
{
	struct exp_opts *o = ctx;

	(void)arg;
	o->keep_going = 1;
	return 0;
}

/* The first two come before the job options in the help, the rest after. */
static const struct tool_opt exp_table[] = {
	{.name = "workload",
	 .key = 'W',
	 .arg = "lr|mf|lasso",
	 .help = "only this workload; may be repeated",
	 .def = "all three",
	 .set = set_workload},
	{.name = "stragglers",
	 .key = 'S',
	 .arg = "SPEC",
	 .help = "straggler spec, may be repeated: W:Fx, random:P:Fx, "
		 "load:T:D, joined by commas, or none",
	 .set = set_stragglers},
	{.name = "models",
	 .key = 'm',
	 .arg = "LIST",
	 .help = "among bsp,ssp1,ssp3,asp,absp",
	 .def = "all; bsp always runs",
	 .set = set_models},
	{.name = "target-frac",
	 .arg = "F",
	 .help = "target loss fraction",
	 .def = "0.05",
	 .set = set_frac},
	{.name = "pace",
	 .arg = "X",
	 .help = "workers' pace (see rdps-train run --help)",
	 .set = set_pace},
	{.name = "out",
	 .key = 'o',
	 .arg = "DIR",
	 .help = "output directory",
	 .def = "rdps-train-out",
	 .set = set_out},
	{.name = "json",
	 .key = 'j',
	 .arg = "FILE",
	 .help = "also write the rows as JSON",
	 .set = set_json},
	{.name = "run-timeout",
	 .arg = "S",
	 .help = "stop a run after S seconds",
	 .def = "600",
	 .set = set_run_timeout},
	{.name = "repeats",
	 .key = 'R',
	 .arg = "R",
	 .help = "runs of every (workload, stragglers, model) cell, with "
		 "other sample orders and straggler draws (--repeat); the "
		 "table shows their median and range",
	 .def = "3",
	 .set = set_repeats},
	{.name = "keep-going",
	 .help = "exit 0 even if a run diverged (its verdict is still "
		 "reported)",
	 .set = set_keep_going},
};

/* A workload option (TRN_WORK_LONGOPTS): checked now, applied per
 * workload once all are parsed. */
static int exp_work_opt(void *ctx, int key, const char *arg)
{
	struct exp_opts *o = ctx;

	if (trn_work_opt(key, arg, &o->probe))
		return -EINVAL;
	if (o->nwopt == MAX_ARGS) {
		tool_err("too many options");
		return -EINVAL;
	}
	o->wopt[o->nwopt] = key;
	o->warg[o->nwopt++] = arg;
	return 0;
}

static int exp_parse(int argc, char **argv, struct exp_opts *o)
{
	static const struct option work_all[] = {TRN_WORK_LONGOPTS};
	/* --workload picks the workloads here (exp_table); the others are
	 * the workload options. */
	struct option work[RDPS_ARRAY_SIZE(work_all) - 1];
	const struct tool_optset sets[] = {
		TOOL_OPTSET(exp_table, 2, o),
		job_optset(&o->job, JOB_TOOL_EXPERIMENT),
		TOOL_OPTSET(exp_table + 2, RDPS_ARRAY_SIZE(exp_table) - 2, o),
		{.ctx = o,
		 .raw = work,
		 .nraw = RDPS_ARRAY_SIZE(work),
		 .raw_set = exp_work_opt},
	};
	const struct tool_cmd cmd = {
		.name = "rdps-train experiment",
		.head = exp_head,
		.title = "Experiment:",
		.tail = exp_tail,
		.sets = sets,
		.nsets = RDPS_ARRAY_SIZE(sets),
	};
	size_t nwork = 0;
	char err[512];
	int ret;

	for (size_t i = 0; i < RDPS_ARRAY_SIZE(work_all); i++)
		if (work_all[i].val != 'W')
			work[nwork++] = work_all[i];
	assert(nwork == RDPS_ARRAY_SIZE(work));
	memset(o, 0, sizeof(*o));
	job_opts_init(&o->job);
	o->job.transport = "shm";
	o->job.addr = "127.0.0.1";
	o->job.workers = 4;
	o->job.workers_max = 256;
	o->job.shards = 1;
	o->job.shards_max = 64;
	o->out = "rdps-train-out";
	o->frac = 0.05;
	o->run_timeout = 600;
	o->repeats = 3;
	for (size_t i = 0; i < N_MODELS; i++)
		o->models[i] = 1;
	trn_work_defaults(&o->probe, TRN_LR);
	ret = tool_opts_parse(&cmd, argc, argv);
	if (ret)
		return ret > 0 ? 1 : 2;
	if (optind < argc) {
		tool_err("unexpected argument '%s' (see rdps-train experiment "
			 "--help)",
			 argv[optind]);
		return 2;
	}
	/* ctr only when asked: the default demo keeps its length. */
	if (!o->kinds_given)
		for (int k = 0; k < TRN_NKINDS; k++)
			o->kinds[k] = k != TRN_CTR;
	if (o->kinds[TRN_LASSO] && o->job.shards != 1) {
		tool_err(
			"--workload lasso runs on one shard, not %u: drop "
			"--shards, or pick the other workloads with --workload",
			o->job.shards);
		return 2;
	}
	if (!o->nspecs) {
		/* The three kinds the claims are about: a persistent
		 * straggler, transient ones, real contention. */
		snprintf(o->specs[0], sizeof(o->specs[0]), "1:3x");
		snprintf(o->specs[1], sizeof(o->specs[1]), "random:0.1:3x");
		snprintf(o->specs[2], sizeof(o->specs[2]), "load:1:0.5");
		o->nspecs = 3;
	}
	for (unsigned i = 0; i < o->nspecs; i++) {
		struct trn_spec sp;

		trn_spec_parse(o->specs[i], &sp, err, sizeof(err));
		if (trn_spec_check(&sp, o->job.workers, err, sizeof(err))) {
			tool_err("%s", err);
			return 2;
		}
	}
	for (int k = 0; k < TRN_NKINDS; k++) {
		trn_work_defaults(&o->work[k], (enum trn_kind)k);
		for (unsigned i = 0; i < o->nwopt; i++)
			trn_work_opt(o->wopt[i], o->warg[i], &o->work[k]);
		if (o->kinds[k] && trn_work_check(&o->work[k]))
			return 2;
	}
	if (o->work[0].data && o->kinds[TRN_LR] + o->kinds[TRN_MF] +
					       o->kinds[TRN_LASSO] +
					       o->kinds[TRN_CTR] >
				       1) {
		tool_err("--data names one workload's file: add --workload lr, "
			 "mf or ctr");
		return 2;
	}
	return 0;
}

/* Run argv with stdout and stderr into log; its exit code (128 + signal
 * when killed), or -1 if it could not start. */
static int spawn(const char *const *argv, const char *log)
{
	struct tool_spawn sp = {
		.path = argv[0],
		.argv = (char *const *)argv,
		.keep_fd = -1,
	};
	int status;
	pid_t pid;

	sp.out_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (sp.out_fd < 0) {
		tool_err("cannot create %s: %s", log, strerror(errno));
		return -1;
	}
	pid = tool_spawn(&sp);
	close(sp.out_fd);
	if (pid < 0 || tool_wait(pid, &status))
		return -1;
	return tool_status_code(status);
}

/* The last line of a log, for a failed run. */
static void last_line(const char *log, char *buf, size_t len)
{
	FILE *f = fopen(log, "r");
	char line[512];

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n')
			snprintf(buf, len, "%s", line);
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/* A file name from a spec: "1:3x,random:0.1:3x" -> "1-3x+random-0.1-3x". */
static void spec_file(const char *spec, char *buf, size_t len)
{
	size_t i;

	for (i = 0; spec[i] && i + 1 < len; i++)
		buf[i] = spec[i] == ':' ? '-' : spec[i] == ',' ? '+' : spec[i];
	buf[i] = '\0';
}

static int run_one(const struct exp_opts *o, const char *launch,
		   const char *self, enum trn_kind k, const char *spec,
		   const struct model_def *md, const char *dir,
		   struct trn_result *res, int idx, int total)
{
	struct trn_work_opts w = o->work[k];
	const char *argv[MAX_ARGS + 48];
	char buf[4096], workers_s[16], shards_s[16], slack_s[16], timeout_s[24];
	char pace_s[32], sname[300], csv[PATH_MAX], log[PATH_MAX], err[512];
	char hb_s[16];
	uint64_t t0;
	int n = 0, m, rc;

	spec_file(spec, sname, sizeof(sname));
	w.repeat = (uint32_t)res->rep;
	if ((size_t)snprintf(csv, sizeof(csv), "%s/%s-%s-%s-r%d.csv", dir,
			     trn_kind_name(k), sname, md->name,
			     res->rep) >= sizeof(csv) ||
	    (size_t)snprintf(log, sizeof(log), "%s/%s-%s-%s-r%d.log", dir,
			     trn_kind_name(k), sname, md->name,
			     res->rep) >= sizeof(log)) {
		tool_err("--out directory name too long");
		return -1;
	}
	unlink(csv);
	snprintf(workers_s, sizeof(workers_s), "%u", o->job.workers);
	snprintf(shards_s, sizeof(shards_s), "%u", o->job.shards);
	snprintf(slack_s, sizeof(slack_s), "%u", md->slack);
	snprintf(timeout_s, sizeof(timeout_s), "%" PRIu64, o->run_timeout);
	argv[n++] = launch;
	argv[n++] = "--timeout";
	argv[n++] = timeout_s;
	argv[n++] = "-w";
	argv[n++] = workers_s;
	argv[n++] = "-s";
	argv[n++] = shards_s;
	argv[n++] = "-t";
	argv[n++] = o->job.transport;
	if (strcmp(o->job.transport, "shm")) {
		argv[n++] = "-a";
		argv[n++] = o->job.addr;
	}
	if (o->job.heartbeat_given) {
		/* A loaded machine can hold a worker's pulse back for a
		 * second: a longer period keeps the run. */
		snprintf(hb_s, sizeof(hb_s), "%u", o->job.heartbeat_ms);
		argv[n++] = "--heartbeat-ms";
		argv[n++] = hb_s;
	}
	argv[n++] = "-m";
	argv[n++] = md->launch;
	if (md->slack) {
		argv[n++] = "-k";
		argv[n++] = slack_s;
	}
	argv[n++] = "--";
	argv[n++] = self;
	argv[n++] = "run";
	m = trn_work_argv(&w, argv + n, MAX_ARGS, buf, sizeof(buf));
	if (m < 0) {
		tool_err("options too long");
		return -1;
	}
	n += m;
	argv[n++] = "--stragglers";
	argv[n++] = spec;
	argv[n++] = "--csv";
	argv[n++] = csv;
	if (o->pace > 0) {
		snprintf(pace_s, sizeof(pace_s), "%.17g", o->pace);
		argv[n++] = "--pace";
		argv[n++] = pace_s;
	}
	argv[n] = NULL;

	fprintf(stderr, "[%d/%d] %s, stragglers %s, %s, repeat %d ...", idx,
		total, trn_kind_name(k), spec, md->name, res->rep);
	t0 = rdps_now_ns();
	rc = spawn(argv, log);
	res->run_s = (double)(rdps_now_ns() - t0) / 1e9;
	if (rc == 0 && !trn_result_load(res, csv, err, sizeof(err)) && res->n) {
		res->ok = 1;
		fprintf(stderr,
			" %.1f s, %" PRIu64 " clocks, final loss %.6f\n",
			res->run_s, res->clock[res->n - 1],
			res->loss[res->n - 1]);
		return 0;
	}
	last_line(log, err, sizeof(err));
	fprintf(stderr, " FAILED after %.1f s (exit %d): %s (log: %s)\n",
		res->run_s, rc, err, log);
	return -1;
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s", dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int trn_cmd_experiment(int argc, char **argv)
{
	struct exp_opts o;
	struct trn_result *res;
	char launch[PATH_MAX], self[PATH_MAX], runs[PATH_MAX], path[PATH_MAX];
	char title[512];
	int total = 0, idx = 0, group = 0, fails = 0, r, rc = 0;
	size_t diverged;
	uint64_t t0 = rdps_now_ns();

	r = exp_parse(argc, argv, &o);
	if (r)
		return r == 1 ? 0 : r;
	if (tool_sibling("rdps-launch", launch, sizeof(launch)) ||
	    tool_sibling(NULL, self, sizeof(self)))
		return 1;
	snprintf(runs, sizeof(runs), "%s/runs", o.out);
	r = mkdir_p(runs);
	if (r) {
		tool_err("cannot create %s: %s (give --out DIR)", runs,
			 strerror(-r));
		return 1;
	}
	for (int k = 0; k < TRN_NKINDS; k++)
		for (size_t m = 0; m < N_MODELS; m++)
			total += o.kinds[k] && o.models[m]
					 ? (int)(o.nspecs * o.repeats)
					 : 0;
	res = calloc((size_t)total, sizeof(*res));
	if (!res) {
		tool_err("out of memory");
		return 1;
	}
	fprintf(stderr,
		"rdps-train experiment: %d runs; %u workers, %u shard(s), "
		"%s; logs in %s\n",
		total, o.job.workers, o.job.shards, o.job.transport, runs);
	for (int k = 0; k < TRN_NKINDS; k++) {
		if (!o.kinds[k])
			continue;
		for (unsigned s = 0; s < o.nspecs; s++, group++) {
			for (size_t m = 0; m < N_MODELS; m++) {
				if (!o.models[m])
					continue;
				for (int rep = 0; rep < (int)o.repeats; rep++) {
					struct trn_result *x = &res[idx];

					x->workload =
						trn_kind_name((enum trn_kind)k);
					x->stragglers = o.specs[s];
					x->model = models_all[m].name;
					x->group = group;
					x->rep = rep;
					idx++;
					if (run_one(&o, launch, self,
						    (enum trn_kind)k,
						    o.specs[s], &models_all[m],
						    runs, x, idx, total))
						fails++;
				}
			}
		}
	}
	diverged = trn_results_score(res, (size_t)total, o.frac);

	snprintf(title, sizeof(title),
		 "rdps-train: loss against wall time; %u workers, %u shard(s), "
		 "%s; dashed: target%s",
		 o.job.workers, o.job.shards, o.job.transport,
		 o.repeats > 1 ? "; faint: repeats after the first" : "");
	snprintf(path, sizeof(path), "%s/experiment.csv", o.out);
	r = trn_report_csv(path, res, (size_t)total);
	if (r) {
		tool_err("cannot write %s: %s", path, strerror(-r));
		rc = 1;
	}
	snprintf(path, sizeof(path), "%s/experiment.svg", o.out);
	r = trn_report_svg(path, res, (size_t)total, title);
	if (r) {
		tool_err("cannot write %s: %s", path, strerror(-r));
		rc = 1;
	}
	if (o.json) {
		r = trn_report_json(o.json, res, (size_t)total);
		if (r) {
			tool_err("cannot write %s: %s", o.json, strerror(-r));
			rc = 1;
		}
	}
	printf("rdps-train experiment: %u workers, %u shard(s), transport "
	       "%s, pace %s\n",
	       o.job.workers, o.job.shards, o.job.transport,
	       o.pace > 0 ? "given" : "1.25 x workers / cores");
	for (int k = 0; k < TRN_NKINDS; k++)
		if (o.kinds[k] && k == TRN_LASSO)
			printf("lasso: every model runs %" PRIu64
			       " Frank-Wolfe supersteps (clocks)%s; loss is "
			       "the "
			       "objective, the duality gap is in the CSV and "
			       "the plot\n",
			       o.work[k].epochs * o.work[k].clocks_per_epoch,
			       o.work[k].data ? "" : ", generated data");
		else if (o.kinds[k])
			printf("%s: every model processes %" PRIu64
			       " epoch-equivalents (%" PRIu64
			       " clocks of whole iterations)%s\n",
			       trn_kind_name((enum trn_kind)k),
			       o.work[k].epochs,
			       o.work[k].epochs * o.work[k].clocks_per_epoch,
			       o.work[k].data ? "" : ", generated data");
	printf("target loss = BSP final + %g x (BSP initial - BSP final); "
	       "time to target is the first evaluation (rank 0, every "
	       "clock) at or below it\n",
	       o.frac);
	trn_report_table(stdout, res, (size_t)total);
	trn_report_claims(stdout, res, (size_t)total);
	printf("\ncurves: %s/experiment.csv  plot: %s/experiment.svg%s%s\n",
	       o.out, o.out, o.json ? "  json: " : "", o.json ? o.json : "");
	fflush(stdout);
	fprintf(stderr, "rdps-train experiment: %d runs in %.0f s%s\n", total,
		(double)(rdps_now_ns() - t0) / 1e9,
		fails ? ", some FAILED (see above)" : "");
	if (diverged)
		tool_err("%zu run(s) diverged (verdict in the table): lower "
			 "--lr%s",
			 diverged,
			 o.keep_going ? ""
				      : ", or give --keep-going to exit 0");
	for (int i = 0; i < total; i++)
		trn_result_free(&res[i]);
	free(res);
	return fails || (diverged && !o.keep_going) ? 1 : rc;
}
