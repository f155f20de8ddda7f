/* SPDX-License-Identifier: MIT */
/*
 * lasso.c - LASSO by distributed Frank-Wolfe (lasso.h): the math, and
 * one worker of a "rdps-train run --workload lasso" job.
 *
 * The job's state is one f64 table "fw" of 1 + dim values, [key, x],
 * with the keep-if-better rule: key is f(x) - f(0), so the table's
 * initial zeros are the point x = 0 with its own key. Every clock a
 * worker pulls the state, recomputes the residual A x - y from x (x has
 * at most one new non-zero a clock, so this is cheap, and a worker never
 * trusts a residual that a torn or stale read could have made
 * inconsistent with x), scans its columns for the largest |gradient|,
 * steps by line search and pushes [f(x') - f(0), x'] as one block. The
 * shard keeps it only if that key is at most the held one: under BSP the
 * best of the workers' steps wins each clock (they are tried in worker
 * order); under SSP and ASP a step from a stale point lands only if it
 * still improves on what is held, so the objective never rises.
 *
 * A-BSP: a worker scans its columns in chunks and asks between chunks
 * whether the round was cut; if so it steps along the best atom seen so
 * far. Stragglers and pacing as in run.c: after each chunk the worker
 * sleeps until its wall time is pace x factor x its CPU time.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "lasso.h"
#include "load.h"
#include "train.h"

/* Pure math -------------------------------------------------------------- */

int trn_lasso_init(struct trn_lasso *p, const struct trn_lr_data *d,
		   double radius)
{
	size_t *fill;

	memset(p, 0, sizeof(*p));
	if (!d->n || !(radius > 0))
		return -EINVAL;
	p->m = d->n;
	p->dim = d->dim;
	p->radius = radius;
	p->y = d->y;
	p->col_off = calloc((size_t)d->dim + 1, sizeof(*p->col_off));
	p->col_row = malloc((d->nnz ? d->nnz : 1) * sizeof(*p->col_row));
	p->col_val = malloc((d->nnz ? d->nnz : 1) * sizeof(*p->col_val));
	fill = calloc((size_t)d->dim + 1, sizeof(*fill));
	if (!p->col_off || !p->col_row || !p->col_val || !fill) {
		free(fill);
		trn_lasso_fini(p);
		return -ENOMEM;
	}
	for (size_t k = 0; k < d->nnz; k++)
		p->col_off[d->idx[k] + 1]++;
	for (uint32_t j = 0; j < d->dim; j++)
		p->col_off[j + 1] += p->col_off[j];
	for (size_t i = 0; i < d->n; i++)
		for (size_t k = d->off[i]; k < d->off[i + 1]; k++) {
			uint32_t j = d->idx[k];
			size_t at = p->col_off[j] + fill[j]++;

			p->col_row[at] = (uint32_t)i;
			p->col_val[at] = d->val[k];
		}
	free(fill);
	for (size_t i = 0; i < d->n; i++)
		p->f0 += (double)d->y[i] * d->y[i];
	p->f0 /= 2.0 * (double)d->n;
	return 0;
}

void trn_lasso_fini(struct trn_lasso *p)
{
	free(p->col_off);
	free(p->col_row);
	free(p->col_val);
	memset(p, 0, sizeof(*p));
}

void trn_lasso_residual(const struct trn_lasso *p, const double *x, double *r)
{
	for (size_t i = 0; i < p->m; i++)
		r[i] = -(double)p->y[i];
	for (uint32_t j = 1; j < p->dim; j++) {
		if (x[j] == 0)
			continue;
		for (size_t k = p->col_off[j]; k < p->col_off[j + 1]; k++)
			r[p->col_row[k]] += x[j] * p->col_val[k];
	}
}

double trn_lasso_objective(const struct trn_lasso *p, const double *r)
{
	double s = 0;

	for (size_t i = 0; i < p->m; i++)
		s += r[i] * r[i];
	return s / (2.0 * (double)p->m);
}

double trn_lasso_grad(const struct trn_lasso *p, const double *r, uint32_t j)
{
	double s = 0;

	for (size_t k = p->col_off[j]; k < p->col_off[j + 1]; k++)
		s += p->col_val[k] * r[p->col_row[k]];
	return s / (double)p->m;
}

double trn_lasso_gap(const struct trn_lasso *p, const double *x,
		     const double *r)
{
	double gx = 0, gmax = 0;

	for (uint32_t j = 1; j < p->dim; j++) {
		double g = trn_lasso_grad(p, r, j);

		gx += g * x[j];
		if (fabs(g) > gmax)
			gmax = fabs(g);
	}
	return gx + p->radius * gmax;
}

double trn_lasso_step(const struct trn_lasso *p, double *x, double *r,
		      uint32_t j, double gj, double *q)
{
	double s = gj > 0 ? -p->radius : p->radius, rq = 0, qq = 0, gamma;

	if (gj == 0)
		return 0;
	/* The direction in residual space: q = A s - A x = A s - (r + y). */
	for (size_t i = 0; i < p->m; i++)
		q[i] = -(r[i] + (double)p->y[i]);
	for (size_t k = p->col_off[j]; k < p->col_off[j + 1]; k++)
		q[p->col_row[k]] += s * p->col_val[k];
	for (size_t i = 0; i < p->m; i++) {
		rq += r[i] * q[i];
		qq += q[i] * q[i];
	}
	/* f(x + gamma d) = |r + gamma q|^2 / 2m: minimum at -rq / qq. */
	if (!(qq > 0) || !(rq < 0))
		return 0;
	gamma = -rq / qq;
	if (gamma > 1)
		gamma = 1;
	for (uint32_t k = 1; k < p->dim; k++)
		x[k] *= 1 - gamma;
	x[j] += gamma * s;
	for (size_t i = 0; i < p->m; i++)
		r[i] += gamma * q[i];
	return gamma;
}

/* One worker ------------------------------------------------------------- */

/* Columns scanned between two looks at the cut (A-BSP) and the pacing. */
#define LASSO_CHUNK 256u

struct lasso_worker {
	const struct trn_lasso_args *a;
	struct rdps_config cfg;
	struct rdps_ctx *ctx;
	struct rdps_table *t;
	struct trn_lr_data data;
	struct trn_lasso p;
	double *state; /* pulled [key, x] (rdps_buf_alloc) */
	double *prop;  /* pushed [key, x'] (rdps_buf_alloc) */
	double *r, *r2, *q;
	uint32_t jlo, jhi; /* this worker's columns */
	uint32_t jnext;	   /* where the next scan starts (A-BSP: after the
			    * last column a cut round scanned) */
	uint64_t t0;
	double last_print;
};

static int lasso_fail(int ret, const char *what)
{
	return tool_fail(ret, what);
}

static int lasso_data(struct lasso_worker *lw, double *radius)
{
	const struct trn_work_opts *w = lw->a->w;
	char err[512];
	double l1 = 1;
	int ret;

	if (w->data) {
		ret = trn_libsvm_load_real(w->data, &lw->data, err,
					   sizeof(err));
	} else {
		struct trn_lasso_gen g = w->lag;

		g.samples = (uint32_t)w->samples;
		g.features = w->lrg.features;
		g.noise = w->lrg.noise;
		g.seed = w->seed;
		ret = trn_lasso_generate(&g, &lw->data, &l1, err, sizeof(err));
	}
	if (ret) {
		tool_err("%s", err);
		return 1;
	}
	if (lw->data.dim > TRN_LASSO_MAX_FEATURES + 1) {
		tool_err("%s: feature index %u is above %u, the most a lasso "
			 "state can hold as one block",
			 w->data, lw->data.dim - 1, TRN_LASSO_MAX_FEATURES);
		return 1;
	}
	if (lw->data.dim < 2) {
		tool_err("%s: no features: lasso needs at least one column",
			 w->data ? w->data : "the generator");
		return 1;
	}
	/* The generator's radius is ||x*||_1, where the truth lies; a
	 * file's is 1 unless --radius says otherwise. */
	*radius = w->radius > 0 ? w->radius : w->data ? 1.0 : l1;
	return 0;
}

/* Rank 0's evaluation: the objective and duality gap of the state. */
static void lasso_report(struct lasso_worker *lw, uint64_t clock, int final)
{
	const struct trn_lasso_args *a = lw->a;
	double t = (double)(rdps_now_ns() - lw->t0) / 1e9;
	double f = trn_lasso_objective(&lw->p, lw->r);
	double gap = trn_lasso_gap(&lw->p, lw->state + 1, lw->r);
	char line[160];
	int n;

	if (a->csv_fd >= 0) {
		n = snprintf(line, sizeof(line),
			     "%.4f,%" PRIu64 ",0,%.9g,%.9g\n", t, clock, f,
			     gap);
		if (write(a->csv_fd, line, (size_t)n) != n)
			tool_err("warning: cannot write the --csv file");
	}
	if (a->quiet || (!final && clock && t - lw->last_print < 1.0))
		return;
	lw->last_print = t;
	printf("%s clock %5" PRIu64 "  %7.2f s  objective %.6g  duality gap "
	       "%.6g\n",
	       final ? "final" : "     ", clock, t, f, gap);
	fflush(stdout);
}

static int lasso_pull(struct lasso_worker *lw)
{
	int ret;

	rdps_clear_error();
	ret = rdps_pull(lw->t, 0, (uint64_t)lw->p.dim + 1, lw->state);
	if (ret)
		return lasso_fail(ret, "pulling the lasso state");
	trn_lasso_residual(&lw->p, lw->state + 1, lw->r);
	return 0;
}

/* Scan this worker's columns for the largest |gradient| (until cut,
 * under A-BSP), paced. The column in *j_out (0: none) and its gradient.
 * The scan starts at jnext and wraps round: a round that is cut leaves
 * jnext at the first column it did not reach, as lr's worker takes up
 * the samples a cut left. Started at jlo every round, a worker cut each
 * round (a persistent straggler) would never look past the part of its
 * columns it reaches before the cut, and their atoms would never be
 * picked (measured: the objective stalled at 0.40 against BSP's 0.157). */
static int lasso_scan(struct lasso_worker *lw, double factor, uint32_t *j_out,
		      double *g_out)
{
	int absp = lw->cfg.model == RDPS_MODEL_ABSP, ret, cut = 0;
	uint64_t t_start = rdps_now_ns(), target = 0;
	uint32_t ncol = lw->jhi - lw->jlo, done = 0, j = lw->jnext;
	double best = 0;

	*j_out = 0;
	*g_out = 0;
	if (j < lw->jlo || j >= lw->jhi)
		j = lw->jlo;
	while (done < ncol) {
		uint32_t end =
			ncol - done < LASSO_CHUNK ? ncol : done + LASSO_CHUNK;
		uint64_t c0 = trn_cpu_ns(), el;

		for (; done < end; done++) {
			double g = trn_lasso_grad(&lw->p, lw->r, j);

			if (fabs(g) > best) {
				best = fabs(g);
				*j_out = j;
				*g_out = g;
			}
			if (++j == lw->jhi)
				j = lw->jlo;
		}
		target += (uint64_t)(lw->a->pace * factor *
				     (double)(trn_cpu_ns() - c0));
		el = rdps_now_ns() - t_start;
		if (target > el + 200000)
			trn_sleep_ns(target - el);
		if (absp && done < ncol) {
			rdps_clear_error();
			ret = rdps_cut_poll(lw->ctx);
			if (ret < 0)
				return lasso_fail(ret, "polling the cut");
			if (ret) {
				cut = 1;
				break;
			}
		}
	}
	lw->jnext = j;
	if (absp && !cut) {
		rdps_clear_error();
		ret = rdps_cut(lw->ctx);
		if (ret < 0)
			return lasso_fail(ret, "cutting the round");
	}
	return 0;
}

/* Step along column j from the pulled state and push the block. */
static int lasso_propose(struct lasso_worker *lw, uint32_t j, double g)
{
	uint64_t n = (uint64_t)lw->p.dim + 1;
	double gamma;
	int ret;

	memcpy(lw->prop, lw->state, n * sizeof(*lw->prop));
	memcpy(lw->r2, lw->r, lw->p.m * sizeof(*lw->r2));
	gamma = trn_lasso_step(&lw->p, lw->prop + 1, lw->r2, j, g, lw->q);
	if (gamma <= 0)
		return 0; /* no step improves f: nothing to offer */
	lw->prop[0] = trn_lasso_objective(&lw->p, lw->r2) - lw->p.f0;
	rdps_clear_error();
	ret = rdps_push(lw->t, 0, n, lw->prop);
	if (ret)
		return lasso_fail(ret, "pushing the lasso step");
	return 0;
}

static int lasso_setup(struct lasso_worker *lw, double radius)
{
	unsigned w = (unsigned)lw->cfg.workers, rank = (unsigned)lw->cfg.rank;
	uint64_t cols, n;
	int ret;

	ret = trn_lasso_init(&lw->p, &lw->data, radius);
	if (ret) {
		tool_err("cannot set up the lasso problem: %s", strerror(-ret));
		return 1;
	}
	/* Columns 1 .. dim - 1, in contiguous shares. */
	cols = lw->p.dim - 1;
	lw->jlo = 1 + (uint32_t)(cols * rank / w);
	lw->jhi = 1 + (uint32_t)(cols * (rank + 1) / w);
	lw->r = malloc(lw->p.m * sizeof(*lw->r));
	lw->r2 = malloc(lw->p.m * sizeof(*lw->r2));
	lw->q = malloc(lw->p.m * sizeof(*lw->q));
	if (!lw->r || !lw->r2 || !lw->q) {
		tool_err("out of memory for %zu samples", lw->p.m);
		return 1;
	}
	n = (uint64_t)lw->p.dim + 1;
	rdps_clear_error();
	ret = rdps_ctx_create(&lw->cfg, &lw->ctx);
	if (ret)
		return lasso_fail(ret, "connecting to the shards");
	rdps_clear_error();
	ret = rdps_table_open(lw->ctx, "fw", n, RDPS_DTYPE_F64,
			      RDPS_RULE_PUT_IF_BETTER, 0, &lw->t);
	if (ret)
		return lasso_fail(ret, "opening the lasso table");
	lw->state = rdps_buf_alloc(lw->ctx, n * sizeof(double));
	lw->prop = rdps_buf_alloc(lw->ctx, n * sizeof(double));
	if (!lw->state || !lw->prop)
		return lasso_fail(-ENOMEM, "allocating the state buffers");
	return 0;
}

static int lasso_loop(struct lasso_worker *lw)
{
	const struct trn_lasso_args *a = lw->a;
	uint64_t clocks = a->w->epochs * a->w->clocks_per_epoch, c;
	int rank0 = !lw->cfg.rank, ret;

	rdps_clear_error();
	ret = rdps_barrier(lw->ctx);
	if (ret)
		return lasso_fail(ret, "the start barrier");
	lw->t0 = rdps_now_ns();
	for (c = 0;; c++) {
		uint32_t j;
		double g;

		ret = lasso_pull(lw);
		if (ret)
			return ret;
		if (rank0)
			lasso_report(lw, c, 0);
		if (c >= clocks)
			break;
		ret = lasso_scan(lw,
				 trn_spec_factor(a->spec, trn_run_seed(a->w),
						 (unsigned)lw->cfg.rank, c),
				 &j, &g);
		if (!ret && j)
			ret = lasso_propose(lw, j, g);
		if (ret)
			return ret;
		rdps_clear_error();
		ret = rdps_clock(lw->ctx);
		if (ret)
			return lasso_fail(ret, "ending the iteration");
	}
	rdps_clear_error();
	ret = rdps_barrier(lw->ctx);
	if (ret)
		return lasso_fail(ret, "the final barrier");
	ret = lasso_pull(lw);
	if (ret)
		return ret;
	if (rank0)
		lasso_report(lw, c, 1);
	return 0;
}

int trn_lasso_run(const struct trn_lasso_args *a)
{
	struct lasso_worker lw;
	double radius;
	int rc;

	memset(&lw, 0, sizeof(lw));
	lw.a = a;
	lw.cfg = *a->cfg;
	/* RDPS_SHARDS lists the shards' URLs, comma-separated. */
	if (!lw.cfg.shards || strchr(lw.cfg.shards, ',')) {
		tool_err("--workload lasso keeps its state as one "
			 "keep-if-better block, which a shard decides alone: "
			 "run it on one shard (rdps-launch -s 1)");
		return 2;
	}
	rc = lasso_data(&lw, &radius);
	if (!rc)
		rc = lasso_setup(&lw, radius);
	if (!rc) {
		trn_load_bind(a->load);
		rc = lasso_loop(&lw);
	}
	rdps_buf_free(lw.ctx, lw.state);
	rdps_buf_free(lw.ctx, lw.prop);
	rdps_ctx_destroy(lw.ctx);
	trn_lasso_fini(&lw.p);
	trn_lr_data_free(&lw.data);
	free(lw.r);
	free(lw.r2);
	free(lw.q);
	return rc;
}
