/* SPDX-License-Identifier: MIT */
/*
 * lasso.h - LASSO by distributed Frank-Wolfe, the workload of the Flink
 * seed (apache/flink#1102; Tran, Peel, Skhiri, IEEE Big Data 2015):
 *
 *   minimise f(x) = 1/(2m) ||A x - y||^2  subject to  ||x||_1 <= t
 *
 * over an m x d design A (LIBSVM rows: feature j is column j). The atoms
 * of the L1 ball are +-t e_j. A Frank-Wolfe step from x takes the atom
 * s = -t sign(g_j) e_j of the coordinate j with the largest |g_j|, g the
 * gradient A^T (A x - y) / m, and moves to x + gamma (s - x) with gamma
 * in [0, 1] by exact line search (f is quadratic). The duality gap
 * g.x + t max_j |g_j| bounds f(x) - f(x_opt) and is 0 at the optimum.
 *
 * Distributed as in the seed: the columns are partitioned over the
 * workers; each superstep a worker picks the best atom among its own
 * columns, computes the step by line search and publishes the new point
 * through the parameter server, whose keep-if-better rule
 * (RDPS_RULE_PUT_IF_BETTER) keeps it only if its objective is no worse
 * than the one held (lasso.c). This file is the pure math.
 *
 * A trn_lasso borrows the data it was made from; one thread uses it.
 */
#ifndef RDPS_TRAIN_LASSO_H
#define RDPS_TRAIN_LASSO_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"

struct trn_lasso {
	size_t m;	 /* rows (samples) */
	uint32_t dim;	 /* columns + 1: x[0] is unused (LIBSVM from 1) */
	double radius;	 /* t */
	const float *y;	 /* m targets (borrowed) */
	size_t *col_off; /* dim + 1: column j is [col_off[j], col_off[j+1]) */
	uint32_t *col_row;
	float *col_val;
	double f0; /* f(0) = ||y||^2 / (2m) */
};

/* The column form of d (rows: samples, y: targets) for radius t > 0.
 * -ENOMEM or -EINVAL (no rows). */
int trn_lasso_init(struct trn_lasso *p, const struct trn_lr_data *d,
		   double radius);
void trn_lasso_fini(struct trn_lasso *p);

/* r = A x - y (m entries) from x (dim entries, mostly zero). */
void trn_lasso_residual(const struct trn_lasso *p, const double *x, double *r);
/* f from the residual r. */
double trn_lasso_objective(const struct trn_lasso *p, const double *r);
/* g_j = A_j . r / m of column j. */
double trn_lasso_grad(const struct trn_lasso *p, const double *r, uint32_t j);
/* The duality gap at x with residual r: over all columns. */
double trn_lasso_gap(const struct trn_lasso *p, const double *x,
		     const double *r);

/*
 * One Frank-Wolfe step toward the atom of column j (gradient gj): the
 * line search's gamma in [0, 1], then x and r updated in place (q is m
 * doubles of scratch). Returns gamma (0: no step improves f).
 */
double trn_lasso_step(const struct trn_lasso *p, double *x, double *r,
		      uint32_t j, double gj, double *q);

#endif /* RDPS_TRAIN_LASSO_H */
