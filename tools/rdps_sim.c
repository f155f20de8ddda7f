/* SPDX-License-Identifier: MIT */
/*
 * rdps_sim.c - rdps-sim: BSP, SSP, ASP and A-BSP iterations of W workers
 * and S shards simulated from per-operation costs (tools/sim/sim.h says
 * what is modelled and what is not; tools/sim/profiles.c holds the costs
 * and their sources). No transport, no network: a run is a function of
 * its options and seed.
 *
 *   rdps-sim run -p connectx -w 256 -s 16 -m bsp --bytes 1m
 *   rdps-sim validate --measured tests/data/sim_measured.csv -p shm
 *   rdps-sim fit --measured A.csv -p shm --out shm.profile
 *   rdps-sim validate --measured B.csv -p shm.profile
 *   rdps-sim project -p connectx --out docs
 *   rdps-sim profiles
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sim/cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdps-sim run [options]       one simulated job, one "
		"CSV row\n"
		"       rdps-sim validate --measured FILE [options]\n"
		"                                   measured iterations "
		"(rdps-scale's CSV)\n"
		"                                   against the simulation, "
		"row by row\n"
		"       rdps-sim fit --measured FILE [-p shm|tcp] [--out "
		"PROFILE]\n"
		"                                   the profile's host terms "
		"fitted to a\n"
		"                                   measured CSV; prints the "
		"profile\n"
		"       rdps-sim project [options]   W = 64 .. 1024, S = 1 .. "
		"64: CSV, SVG, table\n"
		"       rdps-sim profiles [-p NAME]  the built-in cost "
		"profiles, every\n"
		"                                   field (FIELD=VALUE, as "
		"--set takes)\n"
		"\n"
		"Options:\n"
		"  -p, --profile=NAME    costs: shm, tcp, rxe or connectx "
		"(shm; project:\n"
		"                        connectx), or a file fit --out "
		"wrote (a name\n"
		"                        with '/' or '.')\n"
		"  -w, --workers=N       workers, 1 .. 65536 (1)\n"
		"  -s, --shards=N        shards, 1 .. 4096 (1)\n"
		"  -m, --model=M         bsp, ssp, asp or absp (bsp)\n"
		"  -k, --slack=N         ssp: clocks ahead, 0 .. 62 (1 under "
		"ssp)\n"
		"  -F, --fanin=G         the clock's fan-in, as "
		"rdps_config.clock_fanin:\n"
		"                        0 automatic (flat up to 32 workers, "
		"then\n"
		"                        groups of ceil(sqrt(W))), 1 flat, G "
		"groups of\n"
		"                        G (2 .. 4096) (0)\n"
		"  -b, --bytes=SIZE      the dense model, pulled and pushed "
		"whole (4k;\n"
		"                        project: 1m)\n"
		"  -c, --compute-us=US   compute per iteration (0; project: "
		"1000)\n"
		"      --batches=N       absp: cut polls per iteration's "
		"compute (10)\n"
		"  -S, --stragglers=SPEC W:Fx (worker W F times slower), "
		"random:P:Fx, none\n"
		"  -n, --iters=N         measured iterations (50; project: "
		"20)\n"
		"      --warmup=N        iterations before them (5)\n"
		"      --seed=N          seed of the random stragglers (1)\n"
		"      --clock-only      iterations of the clock alone\n"
		"      --measured=FILE   validate: the measured CSV\n"
		"      --tolerance=X     validate: flag |sim/measured - 1| > X "
		"(0.25)\n"
		"                        (a row's model: bsp, asp, absp, ssp "
		"(slack 1,\n"
		"                        rdps-launch's default) or sspN)\n"
		"      --strict          validate: exit 1 if a row is "
		"flagged\n"
		"  -o, --out=DIR         project: write DIR/projection.csv "
		"and\n"
		"                        DIR/projection.svg; fit: write the "
		"profile to\n"
		"                        the file DIR\n"
		"      --quick           project: W = 64, 1024 and S = 1, 64 "
		"only\n"
		"      --set FIELD=VALUE change a cost of the profile (after "
		"-p; fields:\n"
		"                        rdps-sim profiles), e.g. --set "
		"atomic_mops=3\n"
		"  -h, --help            this help\n");
}

enum {
	OPT_BATCHES = 256,
	OPT_WARMUP,
	OPT_SEED,
	OPT_CLOCK_ONLY,
	OPT_MEASURED,
	OPT_TOL,
	OPT_STRICT,
	OPT_QUICK,
	OPT_SET,
};

/* The chosen profile, as --set changes it. */
static struct sim_profile sim_prof;

static const struct option sim_longopts[] = {
	{"profile", required_argument, NULL, 'p'},
	{"workers", required_argument, NULL, 'w'},
	{"shards", required_argument, NULL, 's'},
	{"model", required_argument, NULL, 'm'},
	{"slack", required_argument, NULL, 'k'},
	{"fanin", required_argument, NULL, 'F'},
	{"bytes", required_argument, NULL, 'b'},
	{"compute-us", required_argument, NULL, 'c'},
	{"batches", required_argument, NULL, OPT_BATCHES},
	{"stragglers", required_argument, NULL, 'S'},
	{"iters", required_argument, NULL, 'n'},
	{"warmup", required_argument, NULL, OPT_WARMUP},
	{"seed", required_argument, NULL, OPT_SEED},
	{"clock-only", no_argument, NULL, OPT_CLOCK_ONLY},
	{"measured", required_argument, NULL, OPT_MEASURED},
	{"tolerance", required_argument, NULL, OPT_TOL},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"out", required_argument, NULL, 'o'},
	{"quick", no_argument, NULL, OPT_QUICK},
	{"set", required_argument, NULL, OPT_SET},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* A number in [lo, hi] for option what. */
static int sim_parse_double(const char *s, const char *what, double lo,
			    double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= lo && v <= hi)) {
		tool_err("bad %s '%s': use a number in %g .. %g", what, s, lo,
			 hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int sim_opt(struct sim_opts *o, int key, const char *arg,
		   int *slack_given)
{
	struct sim_cfg *c = &o->cfg;
	char err[256];
	uint64_t v;
	double ld;
	size_t b;

	switch (key) {
	case 'p':
		if (o->nset) {
			tool_err("give --profile before --set");
			return -EINVAL;
		}
		o->profile_given = 1;
		/* Built-in names have neither: a path to a profile file. */
		if (strchr(arg, '/') || strchr(arg, '.'))
			return sim_profile_read(arg, &sim_prof);
		if (!sim_profile_find(arg)) {
			tool_err("unknown profile '%s': use one of %s, or a "
				 "file fit --out wrote",
				 arg, sim_profile_names());
			return -EINVAL;
		}
		sim_prof = *sim_profile_find(arg);
		return 0;
	case OPT_SET:
		if (sim_profile_set(&sim_prof, arg, err, sizeof(err))) {
			tool_err("%s", err);
			return -EINVAL;
		}
		o->nset++;
		return 0;
	case 'w':
	case 's':
		if (tool_parse_count(arg, key == 'w' ? "workers" : "shards", 1,
				     key == 'w' ? 65536 : 4096, &v))
			return -EINVAL;
		*(key == 'w' ? &c->workers : &c->shards) = (unsigned)v;
		return 0;
	case 'm':
		if (sim_model_parse(arg, &c->model)) {
			tool_err("unknown model '%s': use bsp, ssp, asp or "
				 "absp",
				 arg);
			return -EINVAL;
		}
		return 0;
	case 'k':
		if (tool_parse_count(arg, "slack", 0, 62, &v))
			return -EINVAL;
		c->slack = (unsigned)v;
		*slack_given = 1;
		return 0;
	case 'F':
		if (tool_parse_count(arg, "fan-in", 0, 4096, &v))
			return -EINVAL;
		c->fanin = (unsigned)v;
		return 0;
	case 'b':
		if (tool_parse_bytes(arg, 4, (size_t)1 << 34, &b))
			return -EINVAL;
		c->model_bytes = b;
		return 0;
	case 'c':
		return sim_parse_double(arg, "compute time (us)", 0, 1e8,
					&c->compute_us);
	case OPT_BATCHES:
		if (tool_parse_count(arg, "batches", 1, 10000, &v))
			return -EINVAL;
		c->batches = (unsigned)v;
		return 0;
	case 'S':
		if (trn_spec_parse(arg, &c->stragglers, err, sizeof(err))) {
			tool_err("%s", err);
			return -EINVAL;
		}
		if (trn_spec_load(&c->stragglers, &ld, &ld)) {
			tool_err(
				"stragglers '%s': load:T:D needs real workers: "
				"use W:Fx or random:P:Fx",
				arg);
			return -EINVAL;
		}
		return 0;
	case 'n':
		if (tool_parse_count(arg, "iterations", 1, 100000, &v))
			return -EINVAL;
		c->iters = v;
		return 0;
	case OPT_WARMUP:
		if (tool_parse_count(arg, "warm-up iterations", 0, 100000, &v))
			return -EINVAL;
		c->warmup = v;
		return 0;
	case OPT_SEED:
		return tool_parse_count(arg, "seed", 0, UINT64_MAX, &c->seed);
	case OPT_CLOCK_ONLY:
		c->clock_only = 1;
		return 0;
	case OPT_MEASURED:
		o->measured = arg;
		return 0;
	case OPT_TOL:
		return sim_parse_double(arg, "tolerance", 0, 10, &o->tolerance);
	case OPT_STRICT:
		o->strict = 1;
		return 0;
	case 'o':
		o->out_dir = arg;
		return 0;
	case OPT_QUICK:
		o->quick = 1;
		return 0;
	}
	return -EINVAL;
}

static int sim_cmd_run(const struct sim_opts *o, FILE *out)
{
	struct sim_result r;
	char spec[128];
	int ret = sim_run(&o->cfg, &r);

	if (ret) {
		tool_err("out of memory for %u workers x %u shards",
			 o->cfg.workers, o->cfg.shards);
		return 1;
	}
	trn_spec_str(&o->cfg.stragglers, spec, sizeof(spec));
	fprintf(out, "profile,model,slack,workers,shards,model_bytes,"
		     "compute_us,stragglers,iters,iter_us_median,iter_us_p99,"
		     "iter_us_mean,shard_cpu_us_per_iter,bytes_per_worker_iter,"
		     "ops_per_worker_iter,clock_ops_per_worker_iter,"
		     "shard0_atomics_per_s,shard0_reads_per_s,"
		     "clock_word_util\n");
	fprintf(out,
		"%s,%s,%u,%u,%u,%llu,%.3f,%s,%llu,%.3f,%.3f,%.3f,%.3f,%.0f,"
		"%.3f,%.3f,%.0f,%.0f,%.4f\n",
		o->cfg.prof->name, sim_model_name(o->cfg.model), o->cfg.slack,
		o->cfg.workers, o->cfg.shards,
		(unsigned long long)o->cfg.model_bytes, o->cfg.compute_us, spec,
		(unsigned long long)o->cfg.iters, r.iter_us_median,
		r.iter_us_p99, r.iter_us_mean, r.shard_cpu_us_per_iter,
		r.bytes_per_worker_iter, r.ops_per_worker_iter,
		r.clock_ops_per_worker_iter, r.hot_atomics_per_s,
		r.hot_reads_per_s, r.hot_util);
	return 0;
}

/* Every built-in profile, or with -p only that one (after --set). */
static int sim_cmd_profiles(const struct sim_opts *o, FILE *out)
{
	const struct sim_profile *p;

	if (o->profile_given) {
		sim_profile_print(out, o->cfg.prof);
		return 0;
	}
	for (unsigned i = 0; (p = sim_profile_at(i)); i++)
		sim_profile_print(out, p);
	return 0;
}

int main(int argc, char **argv)
{
	struct sim_opts o;
	const char *cmd;
	int key, slack_given = 0, project;
	char err[256];

	tool_name = "rdps-sim";
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	project = !strcmp(cmd, "project");
	if (strcmp(cmd, "run") && strcmp(cmd, "validate") && !project &&
	    strcmp(cmd, "profiles") && strcmp(cmd, "fit")) {
		tool_err(
			"unknown command '%s': use run, validate, fit, project "
			"or profiles (rdps-sim -h)",
			cmd);
		return 2;
	}
	memset(&o, 0, sizeof(o));
	sim_cfg_default(&o.cfg);
	o.tolerance = 0.25;
	sim_prof = *sim_profile_find(project ? "connectx" : "shm");
	o.cfg.prof = &sim_prof;
	if (project) {
		o.cfg.model_bytes = 1 << 20;
		o.cfg.compute_us = 1000;
		o.cfg.iters = 20;
		o.cfg.warmup = 3;
	}
	optind = 2;
	opterr = 0;
	while ((key = getopt_long(argc, argv, ":p:w:s:m:k:F:b:c:S:n:o:h",
				  sim_longopts, NULL)) != -1) {
		if (key == 'h') {
			usage(stdout);
			return 0;
		}
		if (key == '?' || key == ':') {
			tool_err("%s option '%s' (rdps-sim -h)",
				 key == ':' ? "missing argument to" : "unknown",
				 argv[optind - 1]);
			return 2;
		}
		if (sim_opt(&o, key, optarg, &slack_given))
			return 2;
	}
	if (optind < argc) {
		tool_err("unexpected argument '%s' (rdps-sim -h)",
			 argv[optind]);
		return 2;
	}
	if (o.cfg.model == SIM_SSP && !slack_given)
		o.cfg.slack = 1; /* rdps-launch's default */
	if (!strcmp(cmd, "profiles"))
		return sim_cmd_profiles(&o, stdout);
	if (!strcmp(cmd, "validate"))
		return sim_cmd_validate(&o, stdout);
	if (!strcmp(cmd, "fit"))
		return sim_cmd_fit(&o, stdout);
	if (sim_cfg_check(&o.cfg, err, sizeof(err))) {
		tool_err("%s", err);
		return 2;
	}
	return project ? sim_cmd_project(&o, stdout) : sim_cmd_run(&o, stdout);
}
