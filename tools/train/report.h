/* SPDX-License-Identifier: MIT */
/*
 * report.h - the outputs of "rdps-train experiment": the loss curves of
 * its runs as CSV, an SVG chart per (workload, stragglers) group with
 * every model on it, the JSON rows other tools read, and the table.
 */
#ifndef RDPS_TRAIN_REPORT_H
#define RDPS_TRAIN_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One run: a model on a workload with a straggler spec. */
struct trn_result {
	const char *workload;	/* "lr", "mf" */
	const char *stragglers; /* canonical spec text, "none" */
	const char *model;	/* "BSP", "SSP1", "SSP3", "ASP", "A-BSP" */
	int group;		/* runs of one (workload, stragglers) */
	int rep;		/* repeat of its (group, model) cell, from 0 */
	int ok;			/* the run finished and wrote its curve */
	size_t n;		/* curve points (rank 0's evaluations) */
	double *t, *loss;
	double *gap; /* lasso: duality gap per point (NULL: none) */
	uint64_t *clock;
	double run_s;	/* wall time of the whole launch */
	double target;	/* the group's target loss (NaN: none) */
	double ttt;	/* time to target, s (NaN: never reached) */
	double speedup; /* BSP's ttt / ttt (NaN: unknown) */
	double final;	/* last loss (NaN: no curve) */
	int diverged;	/* a loss NaN or inf, or the last not below the
			 * initial one: reported, never ranked */
};

/* "ok", "diverged" or "failed" (the run did not finish). */
const char *trn_result_verdict(const struct trn_result *r);

/* Read a run's "time_s,clock,worker,loss[,gap]" file into r (appends;
 * every row has the gap or none does). 0 or a negative errno (err
 * explains). */
int trn_result_load(struct trn_result *r, const char *path, char *err,
		    size_t errlen);
void trn_result_free(struct trn_result *r);

/*
 * Fill diverged, target, ttt, speedup and final of every run of each group
 * from its BSP run: target = bsp_final + frac * (bsp_initial - bsp_final).
 * A diverged run gets no time to target and no speedup; a group whose BSP
 * run diverged or failed gets no target. Returns the diverged runs.
 */
size_t trn_results_score(struct trn_result *r, size_t n, double frac);

int trn_report_csv(const char *path, const struct trn_result *r, size_t n);
int trn_report_json(const char *path, const struct trn_result *r, size_t n);
int trn_report_svg(const char *path, const struct trn_result *r, size_t n,
		   const char *title);
void trn_report_table(FILE *f, const struct trn_result *r, size_t n);
/*
 * The seeds' claims checked against the cells' medians, one line each:
 * "holds", "does not hold" (with the numbers), "not decided" (a cell
 * diverged or failed) or "not tested" (no group of that kind): A-BSP
 * faster than BSP with a persistent straggler (W:Fx), A-BSP faster than
 * SSP and ASP on the gradient-descent workloads (lr, mf) with stragglers,
 * SSP faster than BSP with transient stragglers (random:, load:).
 */
void trn_report_claims(FILE *f, const struct trn_result *r, size_t n);

#endif /* RDPS_TRAIN_REPORT_H */
