/* SPDX-License-Identifier: MIT */
/*
 * spec.h - the straggler SPEC of rdps-train, one grammar everywhere:
 *
 *   none           no stragglers
 *   W:Fx           worker W is persistently F times slower (1:3x)
 *   random:P:Fx    every worker, every iteration, with probability P, runs
 *                  F times slower for that iteration (random:0.1:3x)
 *   load:T:D       real contention, not sleep: every T seconds a CPU hog
 *                  runs for D seconds beside one worker drawn at random,
 *                  on that worker's core (load.c; load:2:1)
 *
 * Several items are joined by commas ("1:3x,random:0.05:2x"); the factors
 * that apply to a worker's iteration multiply. F is a number from 1 to 100
 * followed by "x"; P is in (0, 1]; W is a worker rank. Which iterations
 * are slow is a function of (seed, worker, iteration) only, so a run is
 * reproducible and every model of an experiment meets the same delays.
 */
#ifndef RDPS_TRAIN_SPEC_H
#define RDPS_TRAIN_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define TRN_SPEC_MAX 16
#define TRN_SPEC_FMAX 100.0

struct trn_spec_item {
	int random; /* 1: random:P:Fx, 0: W:Fx (or load) */
	int load;   /* 1: load:T:D (t, d in seconds) */
	double t, d;
	unsigned worker; /* W:Fx */
	double p;	 /* random: probability */
	double f;	 /* slowdown factor, >= 1 */
};

struct trn_spec {
	unsigned n; /* 0: none */
	struct trn_spec_item item[TRN_SPEC_MAX];
};

/*
 * Parse s into *out. 0, or -EINVAL with one line in err naming the bad
 * item and the grammar. *out is set only on success.
 */
int trn_spec_parse(const char *s, struct trn_spec *out, char *err,
		   size_t errlen);
/* -EINVAL (err: which) if a W:Fx names a worker >= workers. */
int trn_spec_check(const struct trn_spec *sp, unsigned workers, char *err,
		   size_t errlen);
/* The slowdown of (worker, iteration): the product of the items that
 * apply, 1.0 if none. */
double trn_spec_factor(const struct trn_spec *sp, uint64_t seed,
		       unsigned worker, uint64_t iter);
/* load:T:D of sp: 1 with *t_out and *d_out set, 0 if none. */
int trn_spec_load(const struct trn_spec *sp, double *t_out, double *d_out);
/* The canonical text of sp ("none", "1:3x,random:0.1:3x"). */
void trn_spec_str(const struct trn_spec *sp, char *buf, size_t len);

#endif /* RDPS_TRAIN_SPEC_H */
