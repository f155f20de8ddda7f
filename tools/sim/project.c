/* SPDX-License-Identifier: MIT */
/*
 * project.c - rdps-sim project: the grid W = 64 .. 1024 x S = 1 .. 64 x
 * {bsp, ssp, absp} x {no stragglers, transient stragglers}, simulated with
 * one profile (connectx by default): a CSV of every cell, an SVG of
 * iteration time and of the load on shard 0's clock word, and tables on
 * stdout.
 */
#include <errno.h>
#include <math.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"

static const unsigned proj_w[] = {64, 128, 256, 512, 1024};
static const unsigned proj_s[] = {1, 2, 4, 8, 16, 32, 64};
static const enum sim_model proj_m[] = {SIM_BSP, SIM_SSP, SIM_ABSP};
static const char *const proj_strag[] = {"none", "random:0.02:3x"};
#define PROJ_SSP_SLACK 3

#define PROJ_NW (sizeof(proj_w) / sizeof(proj_w[0]))
#define PROJ_NS (sizeof(proj_s) / sizeof(proj_s[0]))
#define PROJ_NM (sizeof(proj_m) / sizeof(proj_m[0]))
#define PROJ_NX 2

struct proj_cell {
	int done;
	struct sim_result r;
	struct sim_result clk; /* the clock alone */
};

static size_t proj_idx(size_t m, size_t x, size_t w, size_t s)
{
	return ((m * PROJ_NX + x) * PROJ_NW + w) * PROJ_NS + s;
}

static int proj_skip(const struct sim_opts *o, size_t w, size_t s)
{
	if (!o->quick)
		return 0;
	return !(w == 0 || w == PROJ_NW - 1) || !(s == 0 || s == PROJ_NS - 1);
}

/* --- the SVG ------------------------------------------------------------ */

#define SVG_PW 300 /* panel */
#define SVG_PH 230
#define SVG_ML 58
#define SVG_MT 36

static const char *const svg_colors[] = {"#1f77b4", "#d62728", "#2ca02c",
					 "#9467bd", "#ff7f0e", "#8c564b",
					 "#17becf"};

struct svg_panel {
	double x0;	 /* left edge of the panel */
	double ylo, yhi; /* log10 range */
	const char *title, *ylabel;
};

static double svg_x(const struct svg_panel *p, size_t wi)
{
	return p->x0 + SVG_ML + (double)wi * (SVG_PW - 20) / (PROJ_NW - 1);
}

static double svg_y(const struct svg_panel *p, double v)
{
	double l = log10(v > 0 ? v : 1e-9);

	if (l < p->ylo)
		l = p->ylo;
	if (l > p->yhi)
		l = p->yhi;
	return SVG_MT + SVG_PH - (l - p->ylo) / (p->yhi - p->ylo) * SVG_PH;
}

static void svg_axes(FILE *f, const struct svg_panel *p)
{
	fprintf(f,
		"<text x='%.0f' y='20' font-size='13' "
		"font-weight='bold'>%s</text>\n",
		p->x0 + SVG_ML, p->title);
	fprintf(f,
		"<rect x='%.0f' y='%d' width='%d' height='%d' fill='none' "
		"stroke='#888'/>\n",
		p->x0 + SVG_ML - 10, SVG_MT, SVG_PW, SVG_PH);
	for (int e = (int)ceil(p->ylo); e <= (int)floor(p->yhi); e++) {
		double y = svg_y(p, pow(10, e));

		fprintf(f,
			"<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' "
			"stroke='#eee'/><text x='%.0f' y='%.1f' "
			"font-size='10' text-anchor='end'>1e%d</text>\n",
			p->x0 + SVG_ML - 10, p->x0 + SVG_ML - 10 + SVG_PW, y, y,
			p->x0 + SVG_ML - 13, y + 3, e);
	}
	for (size_t i = 0; i < PROJ_NW; i++)
		fprintf(f,
			"<text x='%.1f' y='%d' font-size='10' "
			"text-anchor='middle'>%u</text>\n",
			svg_x(p, i), SVG_MT + SVG_PH + 14, proj_w[i]);
	fprintf(f,
		"<text x='%.0f' y='%d' font-size='11' "
		"text-anchor='middle'>workers W</text>\n",
		p->x0 + SVG_ML + (SVG_PW - 20) / 2.0, SVG_MT + SVG_PH + 30);
	fprintf(f,
		"<text x='%.0f' y='%d' font-size='11' "
		"transform='rotate(-90 %.0f %d)' "
		"text-anchor='middle'>%s</text>\n",
		p->x0 + 14, SVG_MT + SVG_PH / 2, p->x0 + 14,
		SVG_MT + SVG_PH / 2, p->ylabel);
}

static void svg_line(FILE *f, const struct svg_panel *p, const double *v,
		     const char *color, int dashed, const char *label, int li)
{
	fprintf(f,
		"<polyline fill='none' stroke='%s' stroke-width='2'%s "
		"points='",
		color, dashed ? " stroke-dasharray='5,3'" : "");
	for (size_t i = 0; i < PROJ_NW; i++)
		if (v[i] > 0)
			fprintf(f, "%.1f,%.1f ", svg_x(p, i), svg_y(p, v[i]));
	fprintf(f, "'/>\n");
	fprintf(f,
		"<line x1='%.0f' x2='%.0f' y1='%d' y2='%d' stroke='%s' "
		"stroke-width='2'%s/><text x='%.0f' y='%d' "
		"font-size='10'>%s</text>\n",
		p->x0 + SVG_ML, p->x0 + SVG_ML + 18,
		SVG_MT + SVG_PH + 48 + 13 * li, SVG_MT + SVG_PH + 48 + 13 * li,
		color, dashed ? " stroke-dasharray='5,3'" : "",
		p->x0 + SVG_ML + 22, SVG_MT + SVG_PH + 52 + 13 * li, label);
}

static int proj_svg(const struct sim_opts *o, const struct proj_cell *c,
		    const char *path)
{
	FILE *f = fopen(path, "w");
	struct svg_panel a = {0, 2, 6, "BSP iteration time by shards",
			      "iteration time (us)"};
	struct svg_panel b = {SVG_PW + 80, 2, 6, "S = 64: models, stragglers",
			      "iteration time (us)"};
	struct svg_panel h = {2 * (SVG_PW + 80), 4, 8,
			      "shard 0's clock table, BSP, S = 64",
			      "operations per second"};
	double v[PROJ_NW];
	char label[96];
	int li = 0;

	if (!f) {
		tool_err("cannot write %s: %s", path, strerror(errno));
		return -errno;
	}
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%d' "
		"height='%d' font-family='sans-serif'>\n"
		"<rect width='100%%' height='100%%' fill='white'/>\n",
		3 * (SVG_PW + 80) + 20, SVG_MT + SVG_PH + 150);
	svg_axes(f, &a);
	for (size_t s = 0; s < PROJ_NS; s += 2) {
		for (size_t w = 0; w < PROJ_NW; w++) {
			const struct proj_cell *x = &c[proj_idx(0, 0, w, s)];

			v[w] = x->done ? x->r.iter_us_median : 0;
		}
		snprintf(label, sizeof(label), "S = %u", proj_s[s]);
		svg_line(f, &a, v, svg_colors[li % 7], 0, label, li);
		li++;
	}
	svg_axes(f, &b);
	li = 0;
	for (size_t m = 0; m < PROJ_NM; m++)
		for (size_t x = 0; x < PROJ_NX; x++) {
			for (size_t w = 0; w < PROJ_NW; w++) {
				const struct proj_cell *e =
					&c[proj_idx(m, x, w, PROJ_NS - 1)];

				v[w] = e->done ? e->r.iter_us_median : 0;
			}
			snprintf(label, sizeof(label), "%s%s, %s",
				 sim_model_name(proj_m[m]),
				 proj_m[m] == SIM_SSP ? "3" : "",
				 proj_strag[x]);
			svg_line(f, &b, v, svg_colors[m], (int)x, label, li++);
		}
	svg_axes(f, &h);
	for (int k = 0; k < 5; k++) {
		static const char *const names[] = {
			"fetch-adds/s, whole iterations",
			"reads/s, whole iterations",
			"fetch-adds/s, the clock alone",
			"reads/s, the clock alone",
			"atomics/s limit on one address"};

		for (size_t w = 0; w < PROJ_NW; w++) {
			const struct proj_cell *e =
				&c[proj_idx(0, 0, w, PROJ_NS - 1)];
			const double lim = o->cfg.prof->atomic_mops * 1e6;
			const double val[] = {e->r.hot_atomics_per_s,
					      e->r.hot_reads_per_s,
					      e->clk.hot_atomics_per_s,
					      e->clk.hot_reads_per_s, lim};

			v[w] = e->done ? val[k] : 0;
		}
		svg_line(f, &h, v, svg_colors[k + 2],
			 k == 1 || k == 3 || k == 4, names[k], k);
	}
	fprintf(f,
		"<text x='10' y='%d' font-size='10'>rdps-sim project "
		"--profile %s: %llu-byte model pulled and pushed whole, "
		"%.0f us compute per iteration, ssp slack %d, stragglers "
		"%s</text>\n</svg>\n",
		SVG_MT + SVG_PH + 140, o->cfg.prof->name,
		(unsigned long long)o->cfg.model_bytes, o->cfg.compute_us,
		PROJ_SSP_SLACK, proj_strag[1]);
	if (fclose(f)) {
		tool_err("cannot write %s: %s", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* --- the grid ----------------------------------------------------------- */

static int proj_csv(const struct sim_opts *o, const struct proj_cell *c,
		    const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		tool_err("cannot write %s: %s", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "profile,model,slack,stragglers,workers,shards,model_bytes,"
		   "compute_us,iter_us_median,iter_us_p99,clock_us_median,"
		   "shard0_atomics_per_s,shard0_reads_per_s,clock_word_util,"
		   "clock_alone_atomics_per_s,clock_alone_reads_per_s,"
		   "clock_alone_word_util,atomic_limit_per_s,"
		   "shard_cpu_us_per_iter,ops_per_worker_iter,"
		   "clock_ops_per_worker_iter\n");
	for (size_t m = 0; m < PROJ_NM; m++)
		for (size_t x = 0; x < PROJ_NX; x++)
			for (size_t w = 0; w < PROJ_NW; w++)
				for (size_t s = 0; s < PROJ_NS; s++) {
					const struct proj_cell *e =
						&c[proj_idx(m, x, w, s)];

					if (!e->done)
						continue;
					fprintf(f,
						"%s,%s,%d,%s,%u,%u,%llu,%.1f,"
						"%.1f,%.1f,%.2f,%.0f,%.0f,%.4f,"
						"%.0f,%.0f,%.4f,%.0f,%.1f,%.2f,"
						"%.2f\n",
						o->cfg.prof->name,
						sim_model_name(proj_m[m]),
						proj_m[m] == SIM_SSP
							? PROJ_SSP_SLACK
							: 0,
						proj_strag[x], proj_w[w],
						proj_s[s],
						(unsigned long long)
							o->cfg.model_bytes,
						o->cfg.compute_us,
						e->r.iter_us_median,
						e->r.iter_us_p99,
						e->clk.iter_us_median,
						e->r.hot_atomics_per_s,
						e->r.hot_reads_per_s,
						e->r.hot_util,
						e->clk.hot_atomics_per_s,
						e->clk.hot_reads_per_s,
						e->clk.hot_util,
						o->cfg.prof->atomic_mops * 1e6,
						e->r.shard_cpu_us_per_iter,
						e->r.ops_per_worker_iter,
						e->r.clock_ops_per_worker_iter);
				}
	if (fclose(f)) {
		tool_err("cannot write %s: %s", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

static void proj_table(const struct sim_opts *o, const struct proj_cell *c,
		       FILE *out)
{
	for (size_t m = 0; m < PROJ_NM; m++)
		for (size_t x = 0; x < PROJ_NX; x++) {
			fprintf(out,
				"\n%s%s, stragglers %s: iteration ms "
				"(median) by W (rows) and S (columns)\n",
				sim_model_name(proj_m[m]),
				proj_m[m] == SIM_SSP ? "(slack 3)" : "",
				proj_strag[x]);
			fprintf(out, "%6s", "W\\S");
			for (size_t s = 0; s < PROJ_NS; s++)
				if (!proj_skip(o, 0, s))
					fprintf(out, " %8u", proj_s[s]);
			fprintf(out, "\n");
			for (size_t w = 0; w < PROJ_NW; w++) {
				if (proj_skip(o, w, 0))
					continue;
				fprintf(out, "%6u", proj_w[w]);
				for (size_t s = 0; s < PROJ_NS; s++)
					if (!proj_skip(o, w, s))
						fprintf(out, " %8.2f",
							c[proj_idx(m, x, w, s)]
									.r
									.iter_us_median /
								1e3);
				fprintf(out, "\n");
			}
		}
	fprintf(out, "\nshard 0's clock table, bsp, no stragglers: in whole "
		     "iterations, fetch-adds/s, reads/s, the line's "
		     "utilisation and clock operations per worker and "
		     "iteration; the clock alone (no pull, push or compute): "
		     "its time and the line's utilisation\n");
	fprintf(out, "%6s %4s %10s %10s %6s %8s %10s %6s\n", "W", "S", "fadd/s",
		"reads/s", "util", "clk_ops", "clock_us", "util");
	for (size_t w = 0; w < PROJ_NW; w++)
		for (size_t s = 0; s < PROJ_NS; s += PROJ_NS - 1) {
			const struct proj_cell *e = &c[proj_idx(0, 0, w, s)];

			if (!e->done)
				continue;
			fprintf(out,
				"%6u %4u %10.0f %10.0f %6.3f %8.1f %10.1f "
				"%6.3f\n",
				proj_w[w], proj_s[s], e->r.hot_atomics_per_s,
				e->r.hot_reads_per_s, e->r.hot_util,
				e->r.clock_ops_per_worker_iter,
				e->clk.iter_us_median, e->clk.hot_util);
		}
}

int sim_cmd_project(const struct sim_opts *o, FILE *out)
{
	size_t n = PROJ_NM * PROJ_NX * PROJ_NW * PROJ_NS;
	struct proj_cell *c = calloc(n, sizeof(*c));
	char path[4096];
	int ret = 0;

	if (!c) {
		tool_err("out of memory");
		return 1;
	}
	if (o->out_dir && access(o->out_dir, W_OK)) {
		tool_err("cannot write to %s: %s (make the directory first)",
			 o->out_dir, strerror(errno));
		free(c);
		return 2;
	}
	fprintf(out,
		"rdps-sim project --profile %s: %llu-byte model, %.0f us "
		"compute, %llu iterations (+%llu warm-up) per cell\n",
		o->cfg.prof->name, (unsigned long long)o->cfg.model_bytes,
		o->cfg.compute_us, (unsigned long long)o->cfg.iters,
		(unsigned long long)o->cfg.warmup);
	for (size_t m = 0; m < PROJ_NM && !ret; m++)
		for (size_t x = 0; x < PROJ_NX && !ret; x++)
			for (size_t w = 0; w < PROJ_NW && !ret; w++)
				for (size_t s = 0; s < PROJ_NS && !ret; s++) {
					struct proj_cell *e =
						&c[proj_idx(m, x, w, s)];
					struct sim_cfg cfg = o->cfg;
					char err[256];

					if (proj_skip(o, w, s))
						continue;
					cfg.model = proj_m[m];
					cfg.slack = proj_m[m] == SIM_SSP
							    ? PROJ_SSP_SLACK
							    : 0;
					cfg.workers = proj_w[w];
					cfg.shards = proj_s[s];
					trn_spec_parse(proj_strag[x],
						       &cfg.stragglers, err,
						       sizeof(err));
					if (sim_cfg_check(&cfg, err,
							  sizeof(err))) {
						tool_err("%s", err);
						ret = 2;
					} else if (sim_run_pair(&cfg, &e->r,
								&e->clk)) {
						tool_err("out of memory");
						ret = 1;
					}
					e->done = !ret;
				}
	if (!ret)
		proj_table(o, c, out);
	if (!ret && o->out_dir) {
		snprintf(path, sizeof(path), "%s/projection.csv", o->out_dir);
		ret = proj_csv(o, c, path) ? 1 : 0;
		if (!ret) {
			snprintf(path, sizeof(path), "%s/projection.svg",
				 o->out_dir);
			ret = proj_svg(o, c, path) ? 1 : 0;
		}
		if (!ret)
			fprintf(out,
				"\nwrote %s/projection.csv and "
				"%s/projection.svg\n",
				o->out_dir, o->out_dir);
	}
	free(c);
	return ret;
}
