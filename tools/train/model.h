/* SPDX-License-Identifier: MIT */
/*
 * model.h - the two workloads of rdps-train as mini-batch SGD on a local
 * copy of the model, with the delta since the last push kept aside:
 *
 *   lr  sparse logistic regression: dim weights (weight 0 the bias), loss
 *       the mean log-loss log(1 + exp(-y w.x)) on held-out samples,
 *       mini-batch steps by per-coordinate Adagrad;
 *   mf  matrix factorization: (users + items) x rank factors, user rows
 *       first, loss the RMSE of u.v against held-out ratings. SGD with L2
 *       regularisation l2.
 *
 * The parameter server table holds the change from a seeded initial point
 * that every worker computes itself (zeros for lr), so the table can start
 * at 0 as rdps tables do. Deltas from all workers are summed (SUM rule).
 *
 * A trn_model is used by one thread.
 */
#ifndef RDPS_TRAIN_MODEL_H
#define RDPS_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"

/* The workloads; TRN_LASSO is Frank-Wolfe, not SGD (lasso.h); TRN_CTR
 * keeps its model in an embedding table, not in a trn_model (ctr.h). */
enum trn_kind { TRN_LR = 0, TRN_MF, TRN_LASSO, TRN_CTR };
#define TRN_NKINDS 4

struct trn_model {
	enum trn_kind kind;
	uint64_t n;	  /* parameters */
	uint32_t row_len; /* parameters per row: 1 (lr) or rank (mf) */
	uint32_t rows;	  /* n / row_len */
	uint32_t users;	  /* mf: item rows start here */
	double lr, l2;
	float *w;	   /* local model */
	float *init;	   /* initial point (NULL: zeros) */
	float *delta;	   /* change since the last trn_model_take() */
	uint8_t *mark;	   /* rows touched since then */
	uint32_t *touched; /* their list */
	uint32_t ntouched;
	double *margin; /* lr: per-sample scratch of a batch */
	size_t margin_cap;
	double *g2;	   /* lr: Adagrad's summed squared gradients */
	double *grad;	   /* lr: the batch gradient (scratch) */
	uint8_t *bmark;	   /* lr: features in the batch (scratch) */
	uint32_t *batch_f; /* lr: their list */
};

/* lr over dim features; mf over users x items with rank (init N(0,
 * init_sd) from seed). -ENOMEM or -EINVAL. */
int trn_model_init_lr(struct trn_model *m, uint32_t dim, double lr);
int trn_model_init_mf(struct trn_model *m, uint32_t users, uint32_t items,
		      uint32_t rank, double lr, double l2, double init_sd,
		      uint64_t seed);
void trn_model_fini(struct trn_model *m);

/* w = init + table, where table holds the pulled values. */
void trn_model_set(struct trn_model *m, const float *table);

/* One mini-batch over samples ids[0..b) of d (lr) or ratings (mf),
 * updating w and delta. lr: the gradient at the batch's start, summed over
 * the batch for the features and averaged for the bias, applied by
 * per-coordinate Adagrad (w_f -= lr g_f / sqrt(sum of g_f^2 over this
 * worker's batches)), so no step exceeds lr whatever a feature's
 * popularity (-ENOMEM for its scratch); mf: one SGD step per rating. */
int trn_model_step_lr(struct trn_model *m, const struct trn_lr_data *d,
		      const uint32_t *ids, size_t b);
void trn_model_step_mf(struct trn_model *m, const struct trn_mf_data *d,
		       const uint32_t *ids, size_t b);

/* Held-out loss of parameters w (the local model if NULL). */
double trn_model_loss_lr(const struct trn_model *m, const float *w,
			 const struct trn_lr_data *d);
double trn_model_loss_mf(const struct trn_model *m, const float *w,
			 const struct trn_mf_data *d);

/*
 * Hand over the delta and reset it: if it touches few parameters, fills
 * idx/val (room for n entries each) and returns the count (sparse); if
 * it touches more than a third of them, copies all n into dense and
 * returns -1. 0 means nothing to push.
 */
long trn_model_take(struct trn_model *m, uint64_t *idx, float *val,
		    float *dense);

#endif /* RDPS_TRAIN_MODEL_H */
