/* SPDX-License-Identifier: MIT */
/*
 * fit.c - rdps-sim fit: the host terms of a profile (the wake-ups: their
 * base, growth per process, ceiling and random share, and on a CPU left
 * free; the cores the job gets and a worker's turn on them; the load of
 * other jobs; the shard's cost per message, per PS_RELEASE it sends and
 * its serve thread's per one-sided operation) fitted to one measured CSV, and
 * the profile files that carry the result to `validate -p FILE`. The
 * per-operation and per-byte costs stay the profile's measured ones.
 *
 * The fit is least squares on log time: it minimises the sum over the
 * rows of log(simulated / measured)^2 of the iteration median, so a row
 * 2x too slow weighs as much as one 2x too fast, and a 5 us row as much
 * as a 5 ms one; a row off by more than 2x counts as 2x (truncated), so
 * a bistable row (sim.h, adaptive polling) measured in its other state
 * does not pull every other row off. The search is coordinate descent over
 * fixed grids: each pass tries every value of one block of terms (wake_us,
 * wake_per_proc_us and cores together, as they trade against each other;
 * cores and step_us together; then each other term alone) with the others
 * held, and keeps the best; passes repeat until one changes nothing. One
 * descent runs for each number of cores, held fixed, and the one with the
 * most rows within 25% wins (then the least sum). No randomness: the same
 * file and base profile give the same profile.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"

#define FIT_MAX_PASSES 12
#define FIT_LOSS_CAP 0.693 /* log(2) */

/* One fitted term (a field of struct sim_profile by name) and the values
 * it may take. */
struct fit_term {
	const char *name;
	const double *grid;
	unsigned n;
};

static const double fit_wake[] = {0,  10,  20,	30,  40,  50,  60,  70,	 80,
				  90, 100, 120, 140, 160, 180, 200, 250, 300};
static const double fit_slope[] = {0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20};
static const double fit_free[] = {0, 2, 5, 10, 20, 40};
static const double fit_max[] = {0, 50, 75, 100, 125, 150, 200, 300};
static const double fit_cores[] = {1, 2, 3, 4};
static const double fit_load[] = {0, 0.5, 1, 2, 4, 8, 16};
static const double fit_msg[] = {0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6};
static const double fit_step[] = {0, 0.5, 1, 2, 3, 5, 8, 12, 20, 30};
static const double fit_op_cpu[] = {0.5, 1, 2, 3, 5, 8, 12, 20};
static const double fit_spread[] = {0, 0.25, 0.5, 0.75, 1};
static const double fit_release[] = {0.1, 0.2, 0.5, 1, 2, 3, 5, 8};

#define FIT_N(a) (unsigned)(sizeof(a) / sizeof(a[0]))
#define FIT_T(f, g)             \
	{                       \
#f, g, FIT_N(g) \
	}

/* The first FIT_JOINT are searched together, then the cores again with
 * the next, a worker's turn on them (fit_pass). */
static const struct fit_term fit_terms[] = {
	FIT_T(wake_us, fit_wake),	FIT_T(wake_per_proc_us, fit_slope),
	FIT_T(cores, fit_cores),	FIT_T(step_us, fit_step),
	FIT_T(wake_free_us, fit_free),	FIT_T(load, fit_load),
	FIT_T(msg_us, fit_msg),		FIT_T(wake_max_us, fit_max),
	FIT_T(op_cpu_us, fit_op_cpu),	FIT_T(wake_spread, fit_spread),
	FIT_T(release_us, fit_release),
};

#define FIT_JOINT 3

#define FIT_NTERMS FIT_N(fit_terms)

static double fit_get(const struct sim_profile *p, const struct fit_term *t)
{
	return sim_profile_get(p, t->name);
}

static void fit_put(struct sim_profile *p, const struct fit_term *t, double v)
{
	sim_profile_put(p, t->name, v);
}

int sim_fit_score(const struct sim_profile *p, const struct sim_cfg *base,
		  const struct sim_row *rows, unsigned nrows, double tol,
		  double *sse_out, unsigned *within_out)
{
	struct sim_cfg cfg;
	struct sim_result res;
	double sse = 0;
	unsigned within = 0;

	for (unsigned i = 0; i < nrows; i++) {
		double l;

		sim_row_cfg(base, &rows[i], &cfg);
		cfg.prof = p;
		if (sim_run(&cfg, &res))
			return -ENOMEM;
		/* Truncated: a row off by more than FIT_LOSS_CAP weighs as
		 * one off by that much, so no single row (a bistable one,
		 * sim.h) bends the terms away from all the others. */
		l = fabs(log(res.iter_us_median / rows[i].iter_us));
		l = l < FIT_LOSS_CAP ? l : FIT_LOSS_CAP;
		sse += l * l;
		within += fabs(res.iter_us_median / rows[i].iter_us - 1) <= tol;
	}
	*sse_out = sse;
	*within_out = within;
	return 0;
}

/* q scored; kept in *p if its sum is below *best. */
static int fit_try(struct sim_profile *p, const struct sim_profile *q,
		   const struct sim_cfg *base, const struct sim_row *rows,
		   unsigned nrows, double *best, int *changed)
{
	unsigned within;
	double sse;

	if (sim_fit_score(q, base, rows, nrows, 0.25, &sse, &within))
		return -ENOMEM;
	if (sse < *best - 1e-9) {
		*best = sse;
		*p = *q;
		*changed = 1;
	}
	return 0;
}

/* One pass of the descent: the first FIT_JOINT terms over their joint
 * grid (the wake-up's base and slope trade against each other, and both
 * against the cores the copies and shards get), the cores and a worker's
 * turn on them (step_us) over theirs (more cores and longer turns trade
 * too), then each other term over its own grid, keeping the best sum;
 * *changed if a term moved. */
/* Whether the descent may try cores value v: no more than the host's
 * CPUs, and the one it started from (sim_fit tries each in turn). */
static int fit_cores_ok(const struct sim_profile *p, double v)
{
	return v <= p->cpus && v == p->cores;
}

static int fit_pass(struct sim_profile *p, const struct sim_cfg *base,
		    const struct sim_row *rows, unsigned nrows, double *best,
		    int *changed)
{
	const struct fit_term *t = fit_terms;
	struct sim_profile q = *p;

	for (unsigned a = 0; a < t[0].n; a++)
		for (unsigned b = 0; b < t[1].n; b++)
			for (unsigned c = 0; c < t[2].n; c++) {
				if (!fit_cores_ok(p, t[2].grid[c]))
					continue;
				fit_put(&q, &t[0], t[0].grid[a]);
				fit_put(&q, &t[1], t[1].grid[b]);
				fit_put(&q, &t[2], t[2].grid[c]);
				if (fit_try(p, &q, base, rows, nrows, best,
					    changed))
					return -ENOMEM;
			}
	q = *p;
	for (unsigned c = 0; c < t[2].n; c++)
		for (unsigned d = 0;
		     fit_cores_ok(p, t[2].grid[c]) && d < t[FIT_JOINT].n; d++) {
			fit_put(&q, &t[2], t[2].grid[c]);
			fit_put(&q, &t[FIT_JOINT], t[FIT_JOINT].grid[d]);
			if (fit_try(p, &q, base, rows, nrows, best, changed))
				return -ENOMEM;
		}
	for (unsigned k = FIT_JOINT + 1; k < FIT_NTERMS; k++) {
		q = *p;
		for (unsigned a = 0; a < t[k].n; a++) {
			fit_put(&q, &t[k], t[k].grid[a]);
			if (fit_try(p, &q, base, rows, nrows, best, changed))
				return -ENOMEM;
		}
	}
	return 0;
}

/* The descent from p (in place) until a pass changes nothing: its sum in
 * *best. */
static int fit_descend(struct sim_profile *p, const struct sim_cfg *base,
		       const struct sim_row *rows, unsigned nrows, double *best,
		       unsigned *within, unsigned *passes)
{
	unsigned pass;
	int changed = 1, ret;

	ret = sim_fit_score(p, base, rows, nrows, 0.25, best, within);
	for (pass = 0; !ret && changed && pass < FIT_MAX_PASSES; pass++) {
		changed = 0;
		ret = fit_pass(p, base, rows, nrows, best, &changed);
	}
	*passes += pass;
	return ret ? ret
		   : sim_fit_score(p, base, rows, nrows, 0.25, best, within);
}

int sim_fit(struct sim_profile *p, const struct sim_cfg *base,
	    const struct sim_row *rows, unsigned nrows, unsigned *passes_out)
{
	struct sim_profile best_p, q;
	double best = INFINITY, sse;
	unsigned best_in = 0, in;
	int ret = 0;

	/* Host terms only count with cpus set (sim.h): a box of 2 unless
	 * the base names one. */
	if (!p->cpus)
		p->cpus = 2;
	p->oversubscribed = 0;
	*passes_out = 0;
	/*
	 * One descent for each number of cores, held while the others move:
	 * a descent moves one block of terms at a time and, free to change
	 * the cores, settles where another count with other wake-ups and
	 * turns fits better (shm on the quiet box: 1 core, rms 0.377, 6
	 * rows within 25%; held at 2: 0.372, 9). Of the descents, the one
	 * with the most rows within 25%, the target, wins; then the least
	 * sum (tcp there: 9 rows at 1 core, rms 0.313; 7 at 2, 0.290).
	 */
	best_p = *p;
	for (unsigned c = 0;
	     !ret && c < FIT_N(fit_cores) && fit_cores[c] <= p->cpus; c++) {
		q = *p;
		fit_put(&q, &fit_terms[2], fit_cores[c]);
		ret = fit_descend(&q, base, rows, nrows, &sse, &in, passes_out);
		if (!ret &&
		    (in > best_in || (in == best_in && sse < best - 1e-9))) {
			best = sse;
			best_in = in;
			best_p = q;
		}
	}
	if (!ret)
		*p = best_p;
	return ret;
}

/* --- profile files ------------------------------------------------------ */

static char fit_source[512], fit_fitted[256];

int sim_profile_read(const char *path, struct sim_profile *p)
{
	char buf[512], err[256];
	const struct sim_profile *base;
	unsigned line = 1;
	char *colon, *tag;
	FILE *f = fopen(path, "r");

	if (!f) {
		tool_err("cannot read profile %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (!fgets(buf, sizeof(buf), f) || !(colon = strstr(buf, ": "))) {
		tool_err("%s:1: expected 'NAME: SOURCE (fitted: TERMS)', as "
			 "rdps-sim fit --out writes",
			 path);
		fclose(f);
		return -EINVAL;
	}
	*colon = 0;
	base = sim_profile_find(buf);
	if (!base) {
		tool_err("%s:1: unknown profile '%s': use one of %s", path, buf,
			 sim_profile_names());
		fclose(f);
		return -EINVAL;
	}
	*p = *base;
	colon[2 + strcspn(colon + 2, "\r\n")] = 0;
	tag = strstr(colon + 2, " (fitted: ");
	if (tag && tag[strlen(tag) - 1] == ')') {
		snprintf(fit_fitted, sizeof(fit_fitted), "%.*s",
			 (int)(strlen(tag) - 11), tag + 10);
		*tag = 0;
		p->fitted = fit_fitted;
	}
	snprintf(fit_source, sizeof(fit_source), "%s (file %s)", colon + 2,
		 path);
	p->source = fit_source;
	while (fgets(buf, sizeof(buf), f)) {
		char *s = buf + strspn(buf, " \t");

		line++;
		s[strcspn(s, "\r\n")] = 0;
		if (!*s || *s == '#')
			continue;
		if (sim_profile_set(p, s, err, sizeof(err))) {
			tool_err("%s:%u: %s", path, line, err);
			fclose(f);
			return -EINVAL;
		}
	}
	fclose(f);
	return 0;
}

/* --- the command --------------------------------------------------------- */

/* Term k of p over its grid, the others held: 1 if every value gives the
 * same sum (the rows cannot tell them apart; the value kept is the
 * base's), 0 if not, -ENOMEM. */
static int fit_undetermined(const struct sim_profile *p,
			    const struct sim_cfg *base,
			    const struct sim_row *rows, unsigned nrows,
			    unsigned k)
{
	const struct fit_term *t = &fit_terms[k];
	struct sim_profile q = *p;
	double lo = INFINITY, hi = -INFINITY, sse;
	unsigned within;

	for (unsigned a = 0; a < t->n; a++) {
		if (!strcmp(t->name, "cores") && t->grid[a] > p->cpus)
			continue;
		fit_put(&q, t, t->grid[a]);
		if (sim_fit_score(&q, base, rows, nrows, 0.25, &sse, &within))
			return -ENOMEM;
		lo = sse < lo ? sse : lo;
		hi = sse > hi ? sse : hi;
	}
	return hi - lo < 1e-9;
}

/* "# name=value ..." of the fitted terms, "(any)" after those the rows
 * do not determine. 0 or -ENOMEM. */
static int fit_print_terms(FILE *out, const struct sim_profile *p,
			   const struct sim_cfg *base,
			   const struct sim_row *rows, unsigned nrows)
{
	fprintf(out, "#");
	for (unsigned k = 0; k < FIT_NTERMS; k++) {
		int u = fit_undetermined(p, base, rows, nrows, k);

		if (u < 0)
			return u;
		fprintf(out, " %s=%g%s", fit_terms[k].name,
			fit_get(p, &fit_terms[k]), u ? " (any)" : "");
	}
	fprintf(out, "\n");
	return 0;
}

/* The profile into the file at path. 0 or 2 (one line on stderr). */
static int fit_write(const char *path, const struct sim_profile *p)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		tool_err("cannot write to %s: %s", path, strerror(errno));
		return 2;
	}
	sim_profile_print(f, p);
	if (fclose(f)) {
		tool_err("cannot write to %s: %s", path, strerror(errno));
		return 2;
	}
	return 0;
}

int sim_cmd_fit(const struct sim_opts *o, FILE *out)
{
	struct sim_row *rows = NULL;
	unsigned nrows = 0, skipped = 0, w0, w1, passes;
	struct sim_profile p = *o->cfg.prof;
	char src[512], terms[256] = "";
	double s0, s1;
	int ret;

	if (!o->measured) {
		tool_err("fit needs --measured FILE (a CSV with rdps-scale's "
			 "header)");
		return 2;
	}
	if (!p.one_host) {
		tool_err("profile '%s' has no host terms to fit (one_host=0): "
			 "fit shm, tcp or rxe",
			 p.name);
		return 2;
	}
	ret = sim_rows_read(o->measured, p.name, &rows, &nrows, &skipped);
	if (ret) {
		free(rows);
		return ret;
	}
	if (sim_fit_score(&p, &o->cfg, rows, nrows, o->tolerance, &s0, &w0) ||
	    sim_fit(&p, &o->cfg, rows, nrows, &passes) ||
	    sim_fit_score(&p, &o->cfg, rows, nrows, o->tolerance, &s1, &w1))
		goto err_nomem;
	snprintf(src, sizeof(src), "%s; host terms fitted to %s (%u rows)",
		 o->cfg.prof->source, o->measured, nrows);
	p.source = src;
	for (unsigned k = 0; k < FIT_NTERMS; k++)
		snprintf(terms + strlen(terms), sizeof(terms) - strlen(terms),
			 "%s%s", k ? ", " : "", fit_terms[k].name);
	p.fitted = terms;
	fprintf(out,
		"# fit of %s to %s: %u rows, %u passes; rms log error (each "
		"row's capped at 2x) %.3f -> %.3f, rows within %.0f%% %u -> "
		"%u\n",
		o->cfg.prof->name, o->measured, nrows, passes, sqrt(s0 / nrows),
		sqrt(s1 / nrows), o->tolerance * 100, w0, w1);
	if (fit_print_terms(out, &p, &o->cfg, rows, nrows))
		goto err_nomem;
	free(rows);
	sim_profile_print(out, &p);
	return o->out_dir ? fit_write(o->out_dir, &p) : 0;

err_nomem:
	tool_err("out of memory simulating the rows of %s", o->measured);
	free(rows);
	return 1;
}
