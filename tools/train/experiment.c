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
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "report.h"
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
	int kinds[2]; /* lr, mf: 1 if run */
	char specs[MAX_SPECS][256];
	unsigned nspecs;
	int models[N_MODELS];
	const char *transport, *addr, *out, *json;
	unsigned workers, shards;
	double frac, pace;
	uint64_t run_timeout;
	struct trn_work_opts work[2];
	/* work options as given, re-applied to each workload */
	int wopt[MAX_ARGS];
	const char *warg[MAX_ARGS];
	unsigned nwopt;
};

static void exp_usage(FILE *f)
{
	fprintf(f, "Usage: rdps-train experiment [--workload lr|mf] "
		   "[--stragglers SPEC]\n"
		   "                             [--transport URL-SCHEME] "
		   "[--json FILE] [options]\n"
		   "\n"
		   "Train with BSP, SSP (slack 1 and 3), ASP and A-BSP, each "
		   "as one rdps-launch\n"
		   "job, for every workload and straggler spec given (default: "
		   "both workloads;\n"
		   "stragglers none, 1:3x and random:0.1:3x). Every model "
		   "processes the same\n"
		   "epoch-equivalents. Writes DIR/experiment.csv (workload, "
		   "stragglers, model,\n"
		   "time_s, clock, worker, loss), DIR/experiment.svg (loss "
		   "against wall time,\n"
		   "one chart per workload and stragglers, every model on it), "
		   "the JSON rows\n"
		   "{workload, stragglers, model, time_to_target_s, "
		   "speedup_vs_bsp, final_loss}\n"
		   "with --json, and prints the table. Target loss: BSP final "
		   "+ FRAC x (BSP\n"
		   "initial - BSP final).\n"
		   "\n"
		   "Experiment:\n"
		   "  -W, --workload=lr|mf  only this workload (both); may be "
		   "repeated\n"
		   "  -S, --stragglers=SPEC straggler spec, may be repeated: "
		   "W:Fx, random:P:Fx,\n"
		   "                        joined by commas, or none\n"
		   "  -t, --transport=T     shm, tcp or verbs (shm)\n"
		   "  -a, --addr=IP         tcp, verbs: the shards' address "
		   "(127.0.0.1)\n"
		   "  -w, --workers=N       workers per job (4)\n"
		   "  -s, --shards=N        shards per job (1)\n"
		   "  -m, --models=LIST     among bsp,ssp1,ssp3,asp,absp (all; "
		   "bsp always runs)\n"
		   "      --target-frac=F   target loss fraction (0.05)\n"
		   "      --pace=X          workers' pace (see rdps-train run "
		   "--help)\n"
		   "  -o, --out=DIR         output directory (rdps-train-out)\n"
		   "  -j, --json=FILE       also write the rows as JSON\n"
		   "      --run-timeout=S   stop a run after S seconds (600)\n"
		   "  -h, --help            this help\n"
		   "\n");
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

static int exp_parse(int argc, char **argv, struct exp_opts *o)
{
	static const struct option long_opts[] = {
		TRN_WORK_LONGOPTS /* the workload options, then ours */
		{"stragglers", required_argument, NULL, 'S'},
		{"transport", required_argument, NULL, 't'},
		{"addr", required_argument, NULL, 'a'},
		{"workers", required_argument, NULL, 'w'},
		{"shards", required_argument, NULL, 's'},
		{"models", required_argument, NULL, 'm'},
		{"target-frac", required_argument, NULL, 4000},
		{"pace", required_argument, NULL, 4001},
		{"out", required_argument, NULL, 'o'},
		{"json", required_argument, NULL, 'j'},
		{"run-timeout", required_argument, NULL, 4002},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct trn_work_opts probe;
	int ch, kinds_given = 0, r;
	char err[512];
	uint64_t v;

	memset(o, 0, sizeof(*o));
	o->transport = "shm";
	o->addr = "127.0.0.1";
	o->out = "rdps-train-out";
	o->workers = 4;
	o->shards = 1;
	o->frac = 0.05;
	o->run_timeout = 600;
	for (size_t i = 0; i < N_MODELS; i++)
		o->models[i] = 1;
	trn_work_defaults(&probe, TRN_LR);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":W:D:N:b:e:S:t:a:w:s:m:o:j:h",
				 long_opts, NULL)) != -1) {
		if (ch == 'W') {
			enum trn_kind k;

			if (trn_parse_kind(optarg, &k))
				return 2;
			if (!kinds_given)
				o->kinds[0] = o->kinds[1] = 0;
			kinds_given = 1;
			o->kinds[k] = 1;
			continue;
		}
		/* Checked now, applied per workload below. */
		r = trn_work_opt(ch, optarg, &probe);
		if (r < 0)
			return 2;
		if (r == 0) {
			if (o->nwopt == MAX_ARGS) {
				tool_err("too many options");
				return 2;
			}
			o->wopt[o->nwopt] = ch;
			o->warg[o->nwopt++] = optarg;
			continue;
		}
		switch (ch) {
		case 'S': {
			struct trn_spec sp;

			if (trn_spec_parse(optarg, &sp, err, sizeof(err))) {
				tool_err("%s", err);
				return 2;
			}
			if (o->nspecs == MAX_SPECS) {
				tool_err("too many --stragglers: at most %d",
					 MAX_SPECS);
				return 2;
			}
			trn_spec_str(&sp, o->specs[o->nspecs],
				     sizeof(o->specs[0]));
			o->nspecs++;
			break;
		}
		case 't':
			if (tool_check_transport(optarg))
				return 2;
			o->transport = optarg;
			break;
		case 'a':
			o->addr = optarg;
			break;
		case 'w':
			if (tool_parse_count(optarg, "worker count", 1, 256,
					     &v))
				return 2;
			o->workers = (unsigned)v;
			break;
		case 's':
			if (tool_parse_count(optarg, "shard count", 1, 64, &v))
				return 2;
			o->shards = (unsigned)v;
			break;
		case 'm':
			if (parse_models(optarg, o->models))
				return 2;
			break;
		case 4000:
			if (trn_parse_double(optarg, "target fraction", 0, 0.99,
					     &o->frac))
				return 2;
			break;
		case 4001:
			if (trn_parse_double(optarg, "pace", 1, 100, &o->pace))
				return 2;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'j':
			o->json = optarg;
			break;
		case 4002:
			if (tool_parse_count(optarg, "run timeout", 1, 86400,
					     &o->run_timeout))
				return 2;
			break;
		case 'h':
			exp_usage(stdout);
			return 1;
		case ':':
			tool_err("option '%s' needs a value (see rdps-train "
				 "experiment --help)",
				 argv[optind - 1]);
			return 2;
		default:
			tool_err("unknown option '%s' (see rdps-train "
				 "experiment --help)",
				 argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		tool_err("unexpected argument '%s' (see rdps-train experiment "
			 "--help)",
			 argv[optind]);
		return 2;
	}
	if (!kinds_given)
		o->kinds[0] = o->kinds[1] = 1;
	if (!o->nspecs) {
		snprintf(o->specs[0], sizeof(o->specs[0]), "none");
		snprintf(o->specs[1], sizeof(o->specs[1]), "1:3x");
		snprintf(o->specs[2], sizeof(o->specs[2]), "random:0.1:3x");
		o->nspecs = 3;
	}
	for (unsigned i = 0; i < o->nspecs; i++) {
		struct trn_spec sp;

		trn_spec_parse(o->specs[i], &sp, err, sizeof(err));
		if (trn_spec_check(&sp, o->workers, err, sizeof(err))) {
			tool_err("%s", err);
			return 2;
		}
	}
	for (int k = 0; k < 2; k++) {
		trn_work_defaults(&o->work[k], (enum trn_kind)k);
		for (unsigned i = 0; i < o->nwopt; i++)
			trn_work_opt(o->wopt[i], o->warg[i], &o->work[k]);
		if (o->kinds[k] && trn_work_check(&o->work[k]))
			return 2;
	}
	if (o->work[0].data && o->kinds[0] && o->kinds[1]) {
		tool_err("--data names one workload's file: add --workload lr "
			 "or --workload mf");
		return 2;
	}
	return 0;
}

/* A binary next to this one. */
static int sibling(const char *name, char *buf, size_t len)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0) {
		tool_err("cannot find myself (/proc/self/exe): %s",
			 strerror(errno));
		return -errno;
	}
	self[n] = '\0';
	if (!name) {
		snprintf(buf, len, "%s", self);
		return 0;
	}
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/%s", self, name) >= len)
		return -ENAMETOOLONG;
	if (access(buf, X_OK)) {
		tool_err("cannot run %s: %s (build the %s target)", buf,
			 strerror(errno), name);
		return -ENOENT;
	}
	return 0;
}

/* Run argv with stdout and stderr into log; its exit code (128 + signal
 * when killed), or -1 if it could not start. */
static int spawn(const char *const *argv, const char *log)
{
	int fd, status;
	pid_t pid;

	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		tool_err("cannot create %s: %s", log, strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		tool_err("fork: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (pid == 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
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
	const char *argv[MAX_ARGS + 48];
	char buf[4096], workers_s[16], shards_s[16], slack_s[16], timeout_s[24];
	char pace_s[32], sname[300], csv[PATH_MAX], log[PATH_MAX], err[512];
	uint64_t t0;
	int n = 0, m, rc;

	spec_file(spec, sname, sizeof(sname));
	if ((size_t)snprintf(csv, sizeof(csv), "%s/%s-%s-%s.csv", dir,
			     trn_kind_name(k), sname,
			     md->name) >= sizeof(csv) ||
	    (size_t)snprintf(log, sizeof(log), "%s/%s-%s-%s.log", dir,
			     trn_kind_name(k), sname,
			     md->name) >= sizeof(log)) {
		tool_err("--out directory name too long");
		return -1;
	}
	unlink(csv);
	snprintf(workers_s, sizeof(workers_s), "%u", o->workers);
	snprintf(shards_s, sizeof(shards_s), "%u", o->shards);
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
	argv[n++] = o->transport;
	if (strcmp(o->transport, "shm")) {
		argv[n++] = "-a";
		argv[n++] = o->addr;
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
	m = trn_work_argv(&o->work[k], argv + n, MAX_ARGS, buf, sizeof(buf));
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

	fprintf(stderr, "[%d/%d] %s, stragglers %s, %s ...", idx, total,
		trn_kind_name(k), spec, md->name);
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
	uint64_t t0 = rdps_now_ns();

	r = exp_parse(argc, argv, &o);
	if (r)
		return r == 1 ? 0 : r;
	if (sibling("rdps-launch", launch, sizeof(launch)) ||
	    sibling(NULL, self, sizeof(self)))
		return 1;
	snprintf(runs, sizeof(runs), "%s/runs", o.out);
	r = mkdir_p(runs);
	if (r) {
		tool_err("cannot create %s: %s (give --out DIR)", runs,
			 strerror(-r));
		return 1;
	}
	for (int k = 0; k < 2; k++)
		for (size_t m = 0; m < N_MODELS; m++)
			total += o.kinds[k] && o.models[m] ? (int)o.nspecs : 0;
	res = calloc((size_t)total, sizeof(*res));
	if (!res) {
		tool_err("out of memory");
		return 1;
	}
	fprintf(stderr,
		"rdps-train experiment: %d runs; %u workers, %u shard(s), "
		"%s; logs in %s\n",
		total, o.workers, o.shards, o.transport, runs);
	for (int k = 0; k < 2; k++) {
		if (!o.kinds[k])
			continue;
		for (unsigned s = 0; s < o.nspecs; s++, group++) {
			for (size_t m = 0; m < N_MODELS; m++) {
				struct trn_result *x = &res[idx];

				if (!o.models[m])
					continue;
				x->workload = trn_kind_name((enum trn_kind)k);
				x->stragglers = o.specs[s];
				x->model = models_all[m].name;
				x->group = group;
				idx++;
				if (run_one(&o, launch, self, (enum trn_kind)k,
					    o.specs[s], &models_all[m], runs, x,
					    idx, total))
					fails++;
			}
		}
	}
	trn_results_score(res, (size_t)total, o.frac);

	snprintf(title, sizeof(title),
		 "rdps-train: held-out loss against wall time; %u workers, %u "
		 "shard(s), %s; every model %" PRIu64
		 " epoch-equivalents; dashed: target",
		 o.workers, o.shards, o.transport,
		 o.kinds[0] ? o.work[0].epochs : o.work[1].epochs);
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
	       o.workers, o.shards, o.transport,
	       o.pace > 0 ? "given" : "1.25 x workers / cores");
	for (int k = 0; k < 2; k++)
		if (o.kinds[k])
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
	printf("\ncurves: %s/experiment.csv  plot: %s/experiment.svg%s%s\n",
	       o.out, o.out, o.json ? "  json: " : "", o.json ? o.json : "");
	fflush(stdout);
	fprintf(stderr, "rdps-train experiment: %d runs in %.0f s%s\n", total,
		(double)(rdps_now_ns() - t0) / 1e9,
		fails ? ", some FAILED (see above)" : "");
	for (int i = 0; i < total; i++)
		trn_result_free(&res[i]);
	free(res);
	return fails ? 1 : rc;
}
