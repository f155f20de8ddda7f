/* SPDX-License-Identifier: MIT */
/* report.c - CSV, JSON, SVG and the table of rdps-train experiment. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "spec.h"

void trn_result_free(struct trn_result *r)
{
	free(r->t);
	free(r->loss);
	free(r->gap);
	free(r->clock);
	r->t = r->loss = r->gap = NULL;
	r->clock = NULL;
	r->n = 0;
}

static int grow_d(double **a, size_t n)
{
	double *p = realloc(*a, n * sizeof(*p));

	if (!p)
		return -ENOMEM;
	*a = p;
	return 0;
}

static int grow_u64(uint64_t **a, size_t n)
{
	uint64_t *p = realloc(*a, n * sizeof(*p));

	if (!p)
		return -ENOMEM;
	*a = p;
	return 0;
}

int trn_result_load(struct trn_result *r, const char *path, char *err,
		    size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t cap = 0;
	unsigned long ln = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		double t, loss, gap;
		unsigned long long c;
		unsigned w;
		int k = sscanf(line, "%lf,%llu,%u,%lf,%lf", &t, &c, &w, &loss,
			       &gap);

		ln++;
		if ((k != 4 && k != 5) || !isfinite(t) ||
		    (r->n && (k == 5) != !!r->gap)) {
			snprintf(err, errlen,
				 "%s:%lu: not a 'time_s,clock,worker,loss"
				 "[,gap]' row like the others",
				 path, ln);
			fclose(f);
			return -EPROTO;
		}
		if (r->n == cap) {
			size_t nc = cap ? cap * 2 : 256;

			if (grow_d(&r->t, nc) || grow_d(&r->loss, nc) ||
			    (k == 5 && grow_d(&r->gap, nc)) ||
			    grow_u64(&r->clock, nc)) {
				snprintf(err, errlen, "out of memory");
				fclose(f);
				return -ENOMEM;
			}
			cap = nc;
		}
		r->t[r->n] = t;
		r->loss[r->n] = loss;
		if (k == 5)
			r->gap[r->n] = gap;
		r->clock[r->n] = c;
		r->n++;
	}
	fclose(f);
	return 0;
}

const char *trn_result_verdict(const struct trn_result *r)
{
	return !r->ok ? "failed" : r->diverged ? "diverged" : "ok";
}

/*
 * Any loss NaN or inf, or the last not below the initial one: the lower
 * of the run's first evaluation and its group's BSP's (an ASP run's first
 * evaluation may come after other workers' pushes; BSP's first is the
 * model's starting point, the same for every model of the group).
 */
static int result_diverged(const struct trn_result *r,
			   const struct trn_result *all, size_t n)
{
	double initial;

	if (!r->n)
		return 0;
	initial = r->loss[0];
	for (size_t j = 0; j < n; j++)
		if (all[j].group == r->group && !strcmp(all[j].model, "BSP") &&
		    all[j].ok && all[j].n && all[j].loss[0] < initial)
			initial = all[j].loss[0];
	for (size_t k = 0; k < r->n; k++)
		if (!isfinite(r->loss[k]))
			return 1;
	return !(r->loss[r->n - 1] < initial);
}

/* The group's BSP run if it finished and converged. */
static const struct trn_result *group_bsp(const struct trn_result *r, size_t n,
					  int group)
{
	for (size_t j = 0; j < n; j++)
		if (r[j].group == group && !strcmp(r[j].model, "BSP") &&
		    r[j].ok && r[j].n && !r[j].diverged)
			return &r[j];
	return NULL;
}

size_t trn_results_score(struct trn_result *r, size_t n, double frac)
{
	size_t diverged = 0;

	for (size_t i = 0; i < n; i++) {
		r[i].target = r[i].ttt = r[i].speedup = r[i].final = NAN;
		r[i].diverged = r[i].ok && result_diverged(&r[i], r, n);
		diverged += (size_t)r[i].diverged;
		if (r[i].ok && r[i].n)
			r[i].final = r[i].loss[r[i].n - 1];
	}
	for (size_t i = 0; i < n; i++) {
		const struct trn_result *bsp = group_bsp(r, n, r[i].group);
		double target;

		if (!bsp)
			continue;
		target = bsp->final + frac * (bsp->loss[0] - bsp->final);
		r[i].target = target;
		if (!r[i].ok || r[i].diverged)
			continue;
		for (size_t k = 0; k < r[i].n; k++) {
			if (r[i].loss[k] <= target) {
				r[i].ttt = r[i].t[k];
				break;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct trn_result *bsp = group_bsp(r, n, r[i].group);

		if (bsp && isfinite(bsp->ttt) && isfinite(r[i].ttt) &&
		    r[i].ttt > 0)
			r[i].speedup = bsp->ttt / r[i].ttt;
	}
	return diverged;
}

/* A CSV field: quoted when it holds a comma (straggler specs do). */
static void csv_field(FILE *f, const char *s)
{
	if (strchr(s, ',') || strchr(s, '"')) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
}

int trn_report_csv(const char *path, const struct trn_result *r, size_t n)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "workload,stragglers,model,time_s,clock,worker,loss,gap,"
		   "repeat\n");
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < r[i].n; k++) {
			fprintf(f, "%s,", r[i].workload);
			csv_field(f, r[i].stragglers);
			fprintf(f, ",%s,%.4f,%" PRIu64 ",0,%.9g,", r[i].model,
				r[i].t[k], r[i].clock[k], r[i].loss[k]);
			if (r[i].gap)
				fprintf(f, "%.9g", r[i].gap[k]);
			fprintf(f, ",%d\n", r[i].rep);
		}
	}
	return fclose(f) ? -errno : 0;
}

static void json_num(FILE *f, double v, int prec)
{
	if (isfinite(v))
		fprintf(f, "%.*f", prec, v);
	else
		fputs("null", f);
}

/* The runs of one (group, model) cell: their median and range. */
struct cell {
	int nrun, nreach; /* runs; runs that reached the target */
	int failed, diverged;
	double ttt_med, ttt_min, ttt_max, fin_med, fin_min, fin_max;
	double run_s; /* wall time of all its runs */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median, min and max of v[0..k) (sorted here); NaN when k is 0. */
static void spread(double *v, int k, double *med, double *lo, double *hi)
{
	*med = *lo = *hi = NAN;
	if (!k)
		return;
	qsort(v, (size_t)k, sizeof(*v), cmp_double);
	*lo = v[0];
	*hi = v[k - 1];
	*med = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

static void cell_of(const struct trn_result *r, size_t n, int group,
		    const char *model, struct cell *c)
{
	double ttt[64], fin[64];
	int nf = 0;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		if (r[i].group != group || strcmp(r[i].model, model) ||
		    c->nrun == 64)
			continue;
		c->nrun++;
		c->run_s += r[i].run_s;
		c->failed |= !r[i].ok;
		c->diverged |= r[i].diverged;
		if (isfinite(r[i].ttt))
			ttt[c->nreach++] = r[i].ttt;
		if (isfinite(r[i].final))
			fin[nf++] = r[i].final;
	}
	spread(ttt, c->nreach, &c->ttt_med, &c->ttt_min, &c->ttt_max);
	spread(fin, nf, &c->fin_med, &c->fin_min, &c->fin_max);
	/* A failed or diverged cell is reported, not ranked. */
	if (c->failed || c->diverged)
		c->ttt_med = c->ttt_min = c->ttt_max = NAN;
}

static const char *cell_verdict(const struct cell *c)
{
	return c->failed ? "failed" : c->diverged ? "diverged" : "ok";
}

/* BSP's median time to target over the model's: NaN unless both are. */
static double cell_speedup(const struct trn_result *r, size_t n, int group,
			   const struct cell *c)
{
	struct cell b;

	cell_of(r, n, group, "BSP", &b);
	if (!isfinite(b.ttt_med) || !isfinite(c->ttt_med) || !(c->ttt_med > 0))
		return NAN;
	return b.ttt_med / c->ttt_med;
}

/* Is r[i] the first run of its cell (the one that speaks for it)? */
static int cell_first(const struct trn_result *r, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (r[j].group == r[i].group && !strcmp(r[j].model, r[i].model))
			return 0;
	return 1;
}

static void json_range(FILE *f, const char *name, double lo, double hi,
		       int prec)
{
	fprintf(f, ", \"%s\": [", name);
	json_num(f, lo, prec);
	fputs(", ", f);
	json_num(f, hi, prec);
	fputc(']', f);
}

int trn_report_json(const char *path, const struct trn_result *r, size_t n)
{
	FILE *f = fopen(path, "w");
	int rows = 0;

	if (!f)
		return -errno;
	fprintf(f, "[");
	for (size_t i = 0; i < n; i++) {
		struct cell c;

		if (!cell_first(r, i))
			continue;
		cell_of(r, n, r[i].group, r[i].model, &c);
		/* Spec texts are [0-9a-z:.,]: nothing to escape. */
		fprintf(f,
			"%s\n  {\"workload\": \"%s\", \"stragglers\": \"%s\", "
			"\"model\": \"%s\", \"repeats\": %d, "
			"\"time_to_target_s\": ",
			rows++ ? "," : "", r[i].workload, r[i].stragglers,
			r[i].model, c.nrun);
		json_num(f, c.ttt_med, 4);
		json_range(f, "time_to_target_s_range", c.ttt_min, c.ttt_max,
			   4);
		fprintf(f, ", \"speedup_vs_bsp\": ");
		json_num(f, cell_speedup(r, n, r[i].group, &c), 4);
		fprintf(f, ", \"final_loss\": ");
		json_num(f, c.fin_med, 6);
		json_range(f, "final_loss_range", c.fin_min, c.fin_max, 6);
		fprintf(f, ", \"verdict\": \"%s\"", cell_verdict(&c));
		if (c.diverged && !c.failed)
			fprintf(f, ", \"hint\": \"lower --lr\"");
		fprintf(f, "}");
	}
	fprintf(f, "\n]\n");
	return fclose(f) ? -errno : 0;
}

static void fmt_num(char *buf, size_t len, double v, int prec, const char *unit)
{
	if (isfinite(v))
		snprintf(buf, len, "%s%.*f%s",
			 *unit == '%' && v >= 0 ? "+" : "", prec, v, unit);
	else
		snprintf(buf, len, "-");
}

/* "median [min, max]", or the median alone for one run. */
static void fmt_spread(char *buf, size_t len, double med, double lo, double hi,
		       int prec, int nrun)
{
	if (!isfinite(med))
		snprintf(buf, len, "-");
	else if (nrun < 2)
		snprintf(buf, len, "%.*f", prec, med);
	else
		snprintf(buf, len, "%.*f [%.*f, %.*f]", prec, med, prec, lo,
			 prec, hi);
}

void trn_report_table(FILE *f, const struct trn_result *r, size_t n)
{
	int group = -1;

	for (size_t i = 0; i < n; i++) {
		char ttt[64], sp[32], fin[80], vs[32];
		struct cell c, b;

		if (!cell_first(r, i))
			continue;
		if (r[i].group != group) {
			group = r[i].group;
			fprintf(f, "\n%s, stragglers %s: target loss ",
				r[i].workload, r[i].stragglers);
			if (isfinite(r[i].target))
				fprintf(f, "%.6f", r[i].target);
			else
				fprintf(f, "- (no converged BSP run)");
			fprintf(f,
				"; median [min, max] of the repeats\n%-6s %22s "
				"%8s %32s %8s %7s  %s\n",
				"model", "time_to_target_s", "speedup",
				"final_loss", "vs_bsp", "run_s", "verdict");
		}
		cell_of(r, n, group, r[i].model, &c);
		cell_of(r, n, group, "BSP", &b);
		fmt_spread(ttt, sizeof(ttt), c.ttt_med, c.ttt_min, c.ttt_max, 2,
			   c.nrun);
		if (isfinite(c.ttt_med) && c.nreach < c.nrun)
			snprintf(ttt + strlen(ttt), sizeof(ttt) - strlen(ttt),
				 " %d/%d", c.nreach, c.nrun);
		fmt_num(sp, sizeof(sp), cell_speedup(r, n, group, &c), 2, "x");
		fmt_spread(fin, sizeof(fin), c.fin_med, c.fin_min, c.fin_max, 6,
			   c.nrun);
		vs[0] = '\0';
		if (!c.diverged && !b.diverged && isfinite(b.fin_med))
			fmt_num(vs, sizeof(vs),
				100.0 * (c.fin_med - b.fin_med) / b.fin_med, 2,
				"%");
		fprintf(f, "%-6s %22s %8s %32s %8s %7.1f  %s%s\n", r[i].model,
			ttt, sp, fin, vs[0] ? vs : "-", c.run_s,
			cell_verdict(&c),
			c.diverged && !c.failed ? " (lower --lr)" : "");
	}
}

/* Claims ---------------------------------------------------------------- */

enum { SPEC_NONE, SPEC_PERSISTENT, SPEC_TRANSIENT };

/* A spec with a W:Fx item is persistent; one of random: or load: items
 * only is transient. */
static int spec_kind(const char *text)
{
	struct trn_spec sp;
	char err[256];
	int transient = 0;

	if (trn_spec_parse(text, &sp, err, sizeof(err)))
		return SPEC_NONE;
	for (unsigned i = 0; i < sp.n; i++) {
		if (!sp.item[i].random && !sp.item[i].load)
			return SPEC_PERSISTENT;
		transient = 1;
	}
	return transient ? SPEC_TRANSIENT : SPEC_NONE;
}

/* The cell's median time to target if it was ranked: infinite if none
 * of its runs reached the target (it loses to any that did), NaN if it
 * failed, diverged or did not run. */
static double cell_ttt(const struct trn_result *r, size_t n, int group,
		       const char *model)
{
	struct cell c;

	cell_of(r, n, group, model, &c);
	if (!c.nrun || c.failed || c.diverged)
		return NAN;
	return c.nreach ? c.ttt_med : INFINITY;
}

/* A cell_ttt() value as a claim line prints it. */
static const char *claim_ttt(double t, char *buf, size_t len)
{
	if (isnan(t))
		return "-";
	if (isinf(t))
		return "target not reached";
	snprintf(buf, len, "%.3g s", t);
	return buf;
}

static void claim_line(FILE *f, int holds, const char *claim,
		       const struct trn_result *g, const char *numbers)
{
	fprintf(f, "  %-13s %s: %s, stragglers %s: %s\n",
		holds < 0 ? "not decided"
		: holds	  ? "holds"
			  : "does not hold",
		claim, g->workload, g->stragglers, numbers);
}

void trn_report_claims(FILE *f, const struct trn_result *r, size_t n)
{
	static const char *const what[3] = {
		"A-BSP faster than BSP, persistent straggler (A-BSP: <= 2.36x)",
		"A-BSP faster than SSP and ASP, gradient descent (A-BSP paper)",
		"SSP faster than BSP, transient stragglers (Flink seed)",
	};
	int tested[3] = {0, 0, 0};

	fprintf(f, "\nclaims, from the medians above (time to target):\n");
	for (size_t i = 0; i < n; i++) {
		int g = r[i].group, kind = spec_kind(r[i].stragglers);
		int gd = strcmp(r[i].workload, "lasso") != 0;
		double bsp = cell_ttt(r, n, g, "BSP");
		double absp = cell_ttt(r, n, g, "A-BSP");
		double ssp1 = cell_ttt(r, n, g, "SSP1");
		double ssp3 = cell_ttt(r, n, g, "SSP3");
		double asp = cell_ttt(r, n, g, "ASP");
		char num[200], t1[24], t2[24], t3[24], t4[24];

		if (i && r[i - 1].group == g)
			continue; /* one look per group */
		if (kind == SPEC_PERSISTENT) {
			snprintf(num, sizeof(num), "A-BSP %s, BSP %s",
				 claim_ttt(absp, t1, sizeof(t1)),
				 claim_ttt(bsp, t2, sizeof(t2)));
			if (isfinite(absp) && isfinite(bsp))
				snprintf(num + strlen(num),
					 sizeof(num) - strlen(num), ": %.2fx",
					 bsp / absp);
			claim_line(f,
				   isnan(absp) || isnan(bsp) ? -1 : absp < bsp,
				   what[0], &r[i], num);
			tested[0] = 1;
		}
		if (kind != SPEC_NONE && gd) {
			double best = fmin(fmin(ssp1, ssp3), asp);

			snprintf(num, sizeof(num),
				 "A-BSP %s, SSP1 %s, SSP3 %s, ASP %s",
				 claim_ttt(absp, t1, sizeof(t1)),
				 claim_ttt(ssp1, t2, sizeof(t2)),
				 claim_ttt(ssp3, t3, sizeof(t3)),
				 claim_ttt(asp, t4, sizeof(t4)));
			claim_line(f,
				   isnan(absp) || isnan(ssp1) || isnan(ssp3) ||
						   isnan(asp)
					   ? -1
					   : absp < best,
				   what[1], &r[i], num);
			tested[1] = 1;
		}
		if (kind == SPEC_TRANSIENT) {
			double best = fmin(ssp1, ssp3);

			snprintf(num, sizeof(num), "SSP1 %s, SSP3 %s, BSP %s",
				 claim_ttt(ssp1, t1, sizeof(t1)),
				 claim_ttt(ssp3, t2, sizeof(t2)),
				 claim_ttt(bsp, t3, sizeof(t3)));
			claim_line(f,
				   isnan(bsp) || (isnan(ssp1) && isnan(ssp3))
					   ? -1
					   : best < bsp,
				   what[2], &r[i], num);
			tested[2] = 1;
		}
	}
	for (int k = 0; k < 3; k++)
		if (!tested[k])
			fprintf(f, "  %-13s %s: no run of that kind\n",
				"not tested", what[k]);
}

/* SVG ------------------------------------------------------------------- */

static const char *const colors[] = {"#1f77b4", "#d62728", "#ff7f0e",
				     "#2ca02c", "#9467bd", "#8c564b",
				     "#e377c2", "#7f7f7f"};

/* A "nice" tick step (1, 2 or 5 x 10^k) for about n ticks over span. */
static double tick_step(double span, int n)
{
	double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;

	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

/* What the legend adds to a cell's model name. */
static const char *legend_note(const struct cell *c)
{
	return c->failed     ? " (failed)"
	       : c->diverged ? " (diverged: lower --lr)"
			     : "";
}

/* The curve a panel draws: the loss, or lasso's duality gap. */
static const double *panel_vals(const struct trn_result *r, int gap)
{
	return gap ? r->gap : r->loss;
}

/* One chart at (x0, y0) of w x h for the runs of group g: their losses,
 * or (gap) their duality gaps. */
static void svg_panel(FILE *f, const struct trn_result *r, size_t n, int g,
		      int gap, double x0, double y0, double w, double h)
{
	const double ml = 62, mr = 22, mt = 28, mb = 42;
	double px = x0 + ml, py = y0 + mt, pw = w - ml - mr, ph = h - mt - mb;
	double tmax = 0, lmin = INFINITY, lmax = -INFINITY, st, sl,
	       target = NAN;
	const struct trn_result *first = NULL;
	int legend = 0, all_diverged = 1;
	size_t lab, lab_max = 0;
	struct cell cl;
	double lx;

	for (size_t i = 0; i < n; i++)
		if (r[i].group == g && !r[i].diverged)
			all_diverged = 0;

	for (size_t i = 0; i < n; i++) {
		if (r[i].group != g)
			continue;
		if (!first)
			first = &r[i];
		if (!gap)
			target = r[i].target;
		cell_of(r, n, g, r[i].model, &cl);
		lab = strlen(r[i].model) + strlen(legend_note(&cl));
		if (lab > lab_max)
			lab_max = lab;
		for (size_t k = 0; k < r[i].n; k++) {
			if (r[i].t[k] > tmax)
				tmax = r[i].t[k];
			/* A diverged curve is drawn clipped: its losses do
			 * not set the scale unless every run diverged. */
			if (r[i].diverged && !all_diverged)
				continue;
			if (panel_vals(&r[i], gap) &&
			    isfinite(panel_vals(&r[i], gap)[k])) {
				lmin = fmin(lmin, panel_vals(&r[i], gap)[k]);
				lmax = fmax(lmax, panel_vals(&r[i], gap)[k]);
			}
		}
	}
	if (!first)
		return;
	if (!(tmax > 0))
		tmax = 1;
	if (!(lmax > lmin)) {
		lmin = isfinite(lmin) ? lmin - 0.5 : 0;
		lmax = lmin + 1;
	}
	/* The legend's line, then its text: about 6.5 px a character. */
	lx = px + pw - 28 - 6.5 * (double)lab_max;
	st = tick_step(tmax, 6);
	tmax = ceil(tmax / st) * st;
	sl = tick_step(lmax - lmin, 5);
	lmin = floor(lmin / sl) * sl;
	lmax = ceil(lmax / sl) * sl;

#define SX(t) (px + (t) / tmax * pw)
#define SY(l) (py + ph - ((l)-lmin) / (lmax - lmin) * ph)
	fprintf(f,
		"<g>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" "
		"text-anchor=\"middle\">",
		x0 + w / 2, y0 + 18);
	xml_text(f, first->workload);
	fprintf(f, ", stragglers ");
	xml_text(f, first->stragglers);
	fprintf(f, "%s</text>\n", gap ? ": duality gap" : "");
	fprintf(f,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		"fill=\"none\" stroke=\"#000\"/>\n",
		px, py, pw, ph);
	for (double t = 0; t <= tmax + st / 2; t += st) {
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
			"font-size=\"11\" text-anchor=\"middle\">%g</text>\n",
			SX(t), py, SX(t), py + ph, SX(t), py + ph + 14, t);
	}
	for (double l = lmin; l <= lmax + sl / 2; l += sl) {
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
			"font-size=\"11\" text-anchor=\"end\">%.3g</text>\n",
			px, SY(l), px + pw, SY(l), px - 4, SY(l) + 4, l);
	}
	fprintf(f,
		"<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
		"text-anchor=\"middle\">wall time (s)</text>\n"
		"<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
		"text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">"
		"%s</text>\n",
		px + pw / 2, py + ph + 32, x0 + 14, py + ph / 2, x0 + 14,
		py + ph / 2,
		gap				    ? "duality gap"
		: !strcmp(first->workload, "lasso") ? "objective"
						    : "held-out loss");
	if (isfinite(target) && target >= lmin && target <= lmax)
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#000\" stroke-dasharray=\"4 3\"/>\n"
			"<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
			"text-anchor=\"end\">target</text>\n",
			px, SY(target), px + pw, SY(target), px + pw - 2,
			SY(target) - 3);
	for (size_t i = 0; i < n; i++) {
		const char *c;

		if (r[i].group != g)
			continue;
		/* Repeats share their cell's colour, drawn lighter: the
		 * spread of the curves shows the spread of the runs. */
		if (!cell_first(r, i))
			legend--;
		c = colors[legend % 8];
		if (r[i].n && panel_vals(&r[i], gap)) {
			const double *v = panel_vals(&r[i], gap);

			fprintf(f,
				"<polyline fill=\"none\" stroke=\"%s\" "
				"stroke-width=\"%s\" stroke-opacity=\"%s\" "
				"points=\"",
				c, r[i].rep ? "1" : "1.5",
				r[i].rep ? "0.45" : "1");
			for (size_t k = 0; k < r[i].n; k++)
				if (isfinite(v[k]))
					fprintf(f, "%s%.1f,%.1f", k ? " " : "",
						SX(r[i].t[k]),
						SY(fmin(fmax(v[k], lmin),
							lmax)));
			fprintf(f, "\"/>\n");
		}
		legend++;
		if (!cell_first(r, i))
			continue;
		cell_of(r, n, g, r[i].model, &cl);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"%s\" stroke-width=\"2\"/>\n<text x=\"%.1f\" "
			"y=\"%.1f\" font-size=\"11\">%s%s</text>\n",
			lx, py + 12 + 14 * (legend - 1), lx + 18,
			py + 12 + 14 * (legend - 1), c, lx + 22,
			py + 16 + 14 * (legend - 1), r[i].model,
			legend_note(&cl));
	}
	fprintf(f, "</g>\n");
#undef SX
#undef SY
}

int trn_report_svg(const char *path, const struct trn_result *r, size_t n,
		   const char *title)
{
	const double pw = 460, ph = 320;
	int groups = 0, panels, cols, rows, p = 0;
	double width;
	char *has_gap;
	FILE *f;

	for (size_t i = 0; i < n; i++)
		if (r[i].group + 1 > groups)
			groups = r[i].group + 1;
	has_gap = calloc((size_t)groups + 1, 1);
	if (!has_gap)
		return -ENOMEM;
	panels = groups;
	for (size_t i = 0; i < n; i++)
		if (r[i].gap && !has_gap[r[i].group]) {
			has_gap[r[i].group] = 1;
			panels++;
		}
	cols = panels < 3 ? (panels ? panels : 1) : 3;
	rows = (panels + cols - 1) / cols;
	/* Wide enough for the title (about 7 px a character at 13 px):
	 * one panel alone is narrower than it. */
	width = fmax(cols * pw, 20 + 7.0 * (double)strlen(title));
	if (!rows)
		rows = 1;
	f = fopen(path, "w");
	if (!f) {
		free(has_gap);
		return -errno;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
		"height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		"font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
		"<text x=\"10\" y=\"20\" font-size=\"13\">",
		width, rows * ph + 30, width, rows * ph + 30);
	xml_text(f, title);
	fprintf(f, "</text>\n");
	for (int g = 0; g < groups; g++)
		for (int gap = 0; gap <= has_gap[g]; gap++, p++)
			svg_panel(f, r, n, g, gap, (p % cols) * pw,
				  30 + (p / cols) * ph, pw, ph);
	free(has_gap);
	fprintf(f, "</svg>\n");
	return fclose(f) ? -errno : 0;
}
