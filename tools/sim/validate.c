/* SPDX-License-Identifier: MIT */
/*
 * validate.c - rdps-sim validate: each row of a measured CSV (rdps-scale's
 * header, SIM_CSV_HEADER) simulated with the same transport profile,
 * model, W, S and model size, no compute; measured against simulated
 * iteration time (median) and clock overhead, with the ratio, and the rows
 * outside the tolerance flagged. Input is checked strictly: a malformed
 * row is one line on stderr naming the file, line and field. rdps-scale's
 * placement column, when the header has it, is read and not used.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"

#define VAL_NFIELDS 12

static const char *const val_names[VAL_NFIELDS] = {"transport",
						   "model",
						   "workers",
						   "shards",
						   "model_bytes",
						   "iters",
						   "iter_us_median",
						   "iter_us_p99",
						   "clock_us_median",
						   "shard_cpu_us_per_iter",
						   "bytes_per_worker_iter",
						   "ops_per_worker_iter"};

static int val_bad(const char *file, unsigned line, unsigned f, const char *v,
		   const char *want)
{
	tool_err("%s:%u: %s '%s' is not %s", file, line, val_names[f], v, want);
	return -EINVAL;
}

/* A number field; empty gives -1 when optional. */
static int val_num(const char *file, unsigned line, unsigned f, const char *v,
		   int optional, double lo, double *out)
{
	char *end;

	if (!*v && optional) {
		*out = -1;
		return 0;
	}
	errno = 0;
	*out = strtod(v, &end);
	if (!*v || *end || errno || !(*out >= lo && *out < 1e15))
		return val_bad(file, line, f, v,
			       lo > 0 ? "a positive number" : "a number >= 0");
	return 0;
}

static int val_count(const char *file, unsigned line, unsigned f, const char *v,
		     uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (!*v || *v == '-' || *end || errno || x < lo || x > hi) {
		char want[64];

		snprintf(want, sizeof(want), "a whole number in %llu .. %llu",
			 (unsigned long long)lo, (unsigned long long)hi);
		return val_bad(file, line, f, v, want);
	}
	*out = x;
	return 0;
}

/* "bsp", "asp", "absp", "ssp" (slack 1, rdps-launch's default), "sspN". */
static int val_model(const char *v, struct sim_row *r)
{
	char *end;

	if (!sim_model_parse(v, &r->model)) {
		r->slack = r->model == SIM_SSP ? 1 : 0;
		return 0;
	}
	if (strncmp(v, "ssp", 3) || !v[3] || v[3] < '0' || v[3] > '9')
		return -EINVAL;
	r->slack = (unsigned)strtoul(v + 3, &end, 10);
	r->model = SIM_SSP;
	return *end || r->slack > 62 ? -EINVAL : 0;
}

/* nfields: the header's, VAL_NFIELDS or one more (rdps-scale's placement,
 * which the simulator does not model: read and ignored). */
static int val_parse(const char *file, unsigned line, char *s, unsigned nfields,
		     struct sim_row *r)
{
	char *f[VAL_NFIELDS + 1];
	unsigned n = 0;
	double d;

	for (char *p = s;; p++) {
		if (n == nfields) {
			tool_err("%s:%u: more than %u fields: rows have the "
				 "%u columns of the header",
				 file, line, nfields, nfields);
			return -EINVAL;
		}
		f[n++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p = 0;
	}
	if (n != nfields) {
		tool_err("%s:%u: %u fields, expected %u (the header's "
			 "columns)",
			 file, line, n, nfields);
		return -EINVAL;
	}
	if (!*f[0] || strlen(f[0]) >= sizeof(r->transport))
		return val_bad(file, line, 0, f[0], "a transport name");
	snprintf(r->transport, sizeof(r->transport), "%s", f[0]);
	if (val_model(f[1], r))
		return val_bad(file, line, 1, f[1],
			       "bsp, ssp, sspN, asp or absp");
	if (val_count(file, line, 2, f[2], 1, 65536, &r->workers) ||
	    val_count(file, line, 3, f[3], 1, 4096, &r->shards) ||
	    val_count(file, line, 4, f[4], 4, (uint64_t)1 << 34, &r->bytes) ||
	    val_count(file, line, 5, f[5], 1, UINT64_MAX, &r->iters) ||
	    val_num(file, line, 6, f[6], 0, 1e-9, &r->iter_us) ||
	    val_num(file, line, 7, f[7], 1, 0, &d) ||
	    val_num(file, line, 8, f[8], 1, 0, &r->clock_us) ||
	    val_num(file, line, 9, f[9], 1, 0, &r->cpu_us) ||
	    val_num(file, line, 10, f[10], 1, 0, &d) ||
	    val_num(file, line, 11, f[11], 1, 0, &r->ops))
		return -EINVAL;
	if (r->bytes % 4 || r->bytes / 4 < r->shards)
		return val_bad(file, line, 4, f[4],
			       "a multiple of 4 with a float per shard");
	return 0;
}

static void val_chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
}

static int val_row_run(const struct sim_opts *o, const struct sim_row *r,
		       FILE *out, unsigned *flagged, double *ratio_out)
{
	struct sim_cfg cfg;
	struct sim_result res, clk;
	double clock_us, ratio;
	int bad;

	sim_row_cfg(&o->cfg, r, &cfg);
	if (sim_run_pair(&cfg, &res, &clk)) {
		tool_err("out of memory simulating %u workers x %u shards",
			 cfg.workers, cfg.shards);
		return -ENOMEM;
	}
	clock_us = clk.iter_us_median;
	ratio = res.iter_us_median / r->iter_us;
	bad = ratio < 1 - o->tolerance || ratio > 1 + o->tolerance;
	*flagged += (unsigned)bad;
	*ratio_out = ratio;
	fprintf(out, "%-4s %-5s %4u %3u %8llu %10.1f %10.1f %6.2f",
		r->transport,
		r->model == SIM_SSP && r->slack != 1 ? "sspN"
						     : sim_model_name(r->model),
		cfg.workers, cfg.shards, (unsigned long long)r->bytes,
		r->iter_us, res.iter_us_median, ratio);
	if (r->clock_us > 0)
		fprintf(out, " %9.2f %9.2f %6.2f", r->clock_us, clock_us,
			clock_us / r->clock_us);
	else
		fprintf(out, " %9s %9.2f %6s", "-", clock_us, "-");
	/* rdps-scale counts every shard process's CPU, the model a
	 * shard's mean. */
	if (r->cpu_us >= 0)
		fprintf(out, " %7.1f", r->cpu_us);
	else
		fprintf(out, " %7s", "-");
	fprintf(out, " %7.1f", res.shard_cpu_us_per_iter * cfg.shards);
	if (r->ops >= 0)
		fprintf(out, " %6.1f", r->ops);
	else
		fprintf(out, " %6s", "-");
	fprintf(out, " %6.1f  %s\n", res.ops_per_worker_iter,
		bad ? "OUTSIDE" : "ok");
	return 0;
}

void sim_row_cfg(const struct sim_cfg *base, const struct sim_row *r,
		 struct sim_cfg *cfg)
{
	*cfg = *base;
	cfg->model = r->model;
	cfg->slack = r->slack;
	cfg->workers = (unsigned)r->workers;
	cfg->shards = (unsigned)r->shards;
	cfg->model_bytes = r->bytes;
	cfg->compute_us = 0;
	cfg->iters = r->iters < 200 ? r->iters : 200;
}

int sim_rows_read(const char *path, const char *transport,
		  struct sim_row **rows, unsigned *nrows, unsigned *skipped)
{
	char buf[1024];
	unsigned line = 1, cap = 0, nfields = VAL_NFIELDS;
	FILE *f = fopen(path, "r");
	int ret = 0;

	if (!f) {
		tool_err("cannot read %s: %s", path, strerror(errno));
		return 2;
	}
	/* Lines starting with '#' are comments (where a file was measured),
	 * before the header and after it. */
	for (;;) {
		if (!fgets(buf, sizeof(buf), f)) {
			tool_err("%s is empty: expected the header '%s'", path,
				 SIM_CSV_HEADER);
			fclose(f);
			return 2;
		}
		if (buf[0] != '#')
			break;
		line++;
	}
	val_chomp(buf);
	if (!strcmp(buf, SIM_CSV_HEADER ",placement"))
		nfields = VAL_NFIELDS + 1;
	else if (strcmp(buf, SIM_CSV_HEADER)) {
		tool_err("%s:%u: not rdps-scale's header: expected '%s'", path,
			 line, SIM_CSV_HEADER);
		fclose(f);
		return 2;
	}
	while (!ret && fgets(buf, sizeof(buf), f)) {
		struct sim_row r;

		line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			tool_err("%s:%u: line longer than %zu bytes", path,
				 line, sizeof(buf) - 1);
			ret = 2;
			break;
		}
		val_chomp(buf);
		if (!*buf || buf[0] == '#')
			continue;
		if (val_parse(path, line, buf, nfields, &r)) {
			ret = 2;
		} else if (strcmp(r.transport, transport)) {
			(*skipped)++;
		} else {
			if (*nrows == cap) {
				struct sim_row *n;

				cap = cap ? 2 * cap : 64;
				n = realloc(*rows, cap * sizeof(*n));
				if (!n) {
					tool_err("out of memory");
					ret = 2;
					break;
				}
				*rows = n;
			}
			(*rows)[(*nrows)++] = r;
		}
	}
	fclose(f);
	if (!ret && !*nrows) {
		tool_err("%s has no rows of transport '%s' (%u of others): "
			 "pick the profile of its transport",
			 path, transport, *skipped);
		ret = 2;
	}
	return ret;
}

/* One group of rows in the summary: its name and whether row r is in it
 * (cpus: the profile's, 0 if it names none). */
struct val_group {
	const char *name;
	int (*in)(const struct sim_row *r, unsigned cpus);
};

static int val_bsp(const struct sim_row *r, unsigned cpus)
{
	(void)cpus;
	return r->model != SIM_SSP;
}

static int val_ssp(const struct sim_row *r, unsigned cpus)
{
	(void)cpus;
	return r->model == SIM_SSP;
}

static int val_s1(const struct sim_row *r, unsigned cpus)
{
	(void)cpus;
	return r->shards == 1;
}

static int val_smore(const struct sim_row *r, unsigned cpus)
{
	(void)cpus;
	return r->shards > 1;
}

static int val_fit(const struct sim_row *r, unsigned cpus)
{
	return cpus && r->workers + r->shards <= cpus;
}

static int val_over(const struct sim_row *r, unsigned cpus)
{
	return cpus && r->workers + r->shards > cpus;
}

static const struct val_group val_groups[] = {
	{"bsp/absp/asp", val_bsp},  {"ssp", val_ssp},
	{"1 shard", val_s1},	    {"2+ shards", val_smore},
	{"W + S <= cpus", val_fit}, {"W + S > cpus", val_over},
};

/* Rows within tolerance and the geometric mean of sim / measured, by
 * cause: the consistency model, one shard or more, processes beyond the
 * host's CPUs or not. */
static void val_summary(const struct sim_opts *o, const struct sim_row *rows,
			const double *ratio, unsigned nrows, FILE *out)
{
	unsigned cpus = o->cfg.prof->cpus;

	fprintf(out, "%-14s %5s %7s %11s\n", "group", "rows", "within",
		"gmean_ratio");
	for (size_t g = 0; g < sizeof(val_groups) / sizeof(val_groups[0]);
	     g++) {
		unsigned n = 0, in = 0;
		double logsum = 0;

		for (unsigned i = 0; i < nrows; i++) {
			if (!val_groups[g].in(&rows[i], cpus))
				continue;
			n++;
			in += fabs(ratio[i] - 1) <= o->tolerance;
			logsum += log(ratio[i]);
		}
		if (n)
			fprintf(out, "%-14s %5u %7u %11.2f\n",
				val_groups[g].name, n, in, exp(logsum / n));
	}
}

int sim_cmd_validate(const struct sim_opts *o, FILE *out)
{
	struct sim_row *rows = NULL;
	unsigned nrows = 0, skipped = 0, flagged = 0;
	double *ratio;
	int ret;

	if (!o->measured) {
		tool_err("validate needs --measured FILE (a CSV with "
			 "rdps-scale's header)");
		return 2;
	}
	ret = sim_rows_read(o->measured, o->cfg.prof->name, &rows, &nrows,
			    &skipped);
	if (ret) {
		free(rows);
		return ret;
	}
	fprintf(out,
		"profile %s: measured (%s) against simulated iterations, "
		"no compute; flagged outside +-%.0f%%\n",
		o->cfg.prof->name, o->measured, o->tolerance * 100);
	fprintf(out,
		"%-4s %-5s %4s %3s %8s %10s %10s %6s %9s %9s %6s %7s %7s "
		"%6s %6s  %s\n",
		"tp", "model", "W", "S", "bytes", "meas_us", "sim_us", "ratio",
		"clk_meas", "clk_sim", "ratio", "cpu_m", "cpu_s", "ops_m",
		"ops_s", "flag");
	ratio = calloc(nrows, sizeof(*ratio));
	if (!ratio) {
		tool_err("out of memory");
		ret = 1;
	}
	for (unsigned i = 0; i < nrows && !ret; i++)
		if (val_row_run(o, &rows[i], out, &flagged, &ratio[i]))
			ret = 1;
	if (!ret)
		fprintf(out,
			"%u of %u rows within %.0f%% (iteration median); %u "
			"rows of other transports skipped\n",
			nrows - flagged, nrows, o->tolerance * 100, skipped);
	if (!ret && nrows > 1)
		val_summary(o, rows, ratio, nrows, out);
	free(ratio);
	free(rows);
	if (ret)
		return ret;
	return o->strict && flagged ? 1 : 0;
}
