/* SPDX-License-Identifier: MIT */
/*
 * ctr.h - the click-through workload of rdps-train ("--workload ctr"):
 * logistic regression (or, with a rank, a factorization machine) over the
 * Criteo display-ad layout, 13 integer fields and 26 categorical ones.
 *
 * Every categorical value becomes a 64-bit key, a bijective mix of
 * (field, value), so two (field, value) pairs never share a key and a
 * key is the same on every worker and run. The weights of the keys live
 * in an rdps embedding table (rdps_emb_*) of rows [w, v_1 .. v_rank]:
 * a mini-batch pulls the rows of its distinct keys, computes the
 * gradient of the mean log-loss and pushes the gradient rows, which the
 * shards apply by Adagrad. The bias and the 13 integer fields' weights
 * live in a dense table of 14 floats, pulled and pushed with the rows.
 *
 *   score = b + sum_j u_j x_j + sum_f w_f
 *           + sum_{f < g} <v_f, v_g>      (rank > 0: the FM's pairs)
 *
 * over integer values x_j and the rows of the 26 keys of a sample. The
 * pairs are over the categorical fields only.
 *
 * Data: a trn_ctr_data holds samples as the model sees them (labels,
 * transformed integers, keys). A trn_ctr_data is used by one thread.
 */
#ifndef RDPS_TRAIN_CTR_H
#define RDPS_TRAIN_CTR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rdps_config;
struct rdps_ctx;
struct trn_work_opts;

#define TRN_CTR_NINT 13
#define TRN_CTR_NCAT 26
/* The dense table: the bias, then one weight per integer field. */
#define TRN_CTR_NDENSE (1 + TRN_CTR_NINT)
/* Largest factorization-machine rank (the row is 1 + rank values). */
#define TRN_CTR_MAX_RANK 64

struct trn_ctr_data {
	size_t n;
	float *y;      /* n labels, 0 or 1 */
	float *num;    /* n x TRN_CTR_NINT transformed integers */
	uint64_t *key; /* n x TRN_CTR_NCAT keys */
	size_t cap;    /* allocated samples (private) */
};

void trn_ctr_data_free(struct trn_ctr_data *d);

/*
 * The key of categorical field (0 .. 25) holding value, or of the field
 * being empty (present 0: value ignored). Distinct (field, present,
 * value) give distinct keys (a bijection of 64-bit words).
 */
uint64_t trn_ctr_key(unsigned field, int present, uint32_t value);
/* An integer field's value as the model sees it: log(1 + x) for x > 0,
 * -log(1 - x) for x < 0, 0 for 0 and for an empty field. */
float trn_ctr_int_value(int64_t x);

/*
 * Criteo's display-ad TSV (train.txt of the Kaggle challenge): one sample
 * a line, 40 fields separated by single tabs: the label (0 or 1), 13
 * integer fields (optional '-', decimal digits, within 64 bits) and 26
 * categorical fields (1 to 8 hexadecimal digits, either case); any field
 * but the label may be empty (missing). A line may end in "\r"; empty
 * lines are skipped. The whole file is kept in memory, about 270 bytes
 * per line (take the first lines of a larger one with head -n).
 * 0 or a negative errno; on failure err holds one line
 * "PATH:LINE: what is wrong (how to fix)" and *out is left empty. A file
 * with no sample is an error too.
 */
int trn_criteo_load(const char *path, struct trn_ctr_data *out, char *err,
		    size_t errlen);

/*
 * Synthetic click logs in the same shape. Categorical field f of sample
 * i (of an endless stream, the same for a seed whatever the range asked)
 * is empty with probability 0.05, else holds id r - 1 of vocab ids, r
 * drawn with density proportional to r^-zipf (a few ids in most samples,
 * as in Criteo; 0: uniform). Integer fields are counts exp(2 N(0, 1))
 * rounded down, empty with probability 0.1. The hidden model: bias -1,
 * integer weights N(0, 0.3^2), a weight N(0, 0.5^2) per key (a function
 * of (seed, key)); the label is 1 when its score plus noise x N(0, 1) is
 * positive. -EINVAL (err says what) or -ENOMEM.
 */
struct trn_ctr_gen {
	uint32_t vocab; /* ids per categorical field, >= 1 */
	double zipf;	/* 0 .. TRN_ZIPF_MAX */
	double noise;	/* >= 0 */
	uint64_t seed;
};
int trn_ctr_generate(const struct trn_ctr_gen *g, uint64_t first, size_t count,
		     struct trn_ctr_data *out, char *err, size_t errlen);
/* The same samples as Criteo TSV lines into f (rdps-train gen): read back
 * by trn_criteo_load() they are what trn_ctr_generate() makes. Write
 * errors are f's (check ferror); -EINVAL as above. */
int trn_ctr_write(const struct trn_ctr_gen *g, uint64_t first, uint64_t count,
		  FILE *f, char *err, size_t errlen);

/* Distinct keys of d (for the embedding table's capacity); -ENOMEM. */
long long trn_ctr_distinct(const struct trn_ctr_data *d);

/* The model of a worker: its tables on the context and its scratch. */
struct trn_ctr;

struct trn_ctr_cfg {
	unsigned rank;	   /* 0: logistic regression; else FM rank */
	double lr;	   /* Adagrad's learning rate, both tables */
	double init_sd;	   /* FM: factors start N(0, init_sd^2) */
	uint64_t capacity; /* embedding rows per shard */
	uint64_t seed;	   /* of the factors' initial values */
	uint32_t batch;	   /* largest mini-batch */
};

/* Open (or create) the tables "ctr-emb" and "ctr-dense" on ctx. Every
 * worker passes the same cfg. 0, or 1 after one line on stderr. */
int trn_ctr_open(struct rdps_ctx *ctx, const struct trn_ctr_cfg *cfg,
		 struct trn_ctr **out);
void trn_ctr_close(struct trn_ctr *c);
/*
 * trn_ctr_open() for a worker of a job with options w, whose training
 * data is train: the capacity fits every key the job can push (the
 * generator's 26 x (vocab + 1); a file's distinct keys, the same for
 * every worker since each reads it whole) spread over cfg's shards.
 * On shards resumed from checkpoints the tables come back with their
 * rows and Adagrad sums: the same options give the same capacity, which
 * the saved table must match.
 */
int trn_ctr_start(struct rdps_ctx *ctx, const struct trn_work_opts *w,
		  const struct rdps_config *cfg,
		  const struct trn_ctr_data *train, struct trn_ctr **out);

/* One mini-batch of samples ids[0..b) of d (b <= cfg.batch): pull the
 * rows and the dense part, push the gradient of the batch's mean
 * log-loss. 0, or 1 after one line on stderr. */
int trn_ctr_step(struct trn_ctr *c, const struct trn_ctr_data *d,
		 const uint32_t *ids, size_t b);

/* Mean log-loss and AUC of the tables' current model on samples ids[0..n)
 * of d (ids NULL: all of d). AUC is 0.5 when one class is absent.
 * 0, or 1 after one line on stderr. */
int trn_ctr_eval(struct trn_ctr *c, const struct trn_ctr_data *d,
		 const uint32_t *ids, size_t n, double *loss_out,
		 double *auc_out);

/*
 * Write the model as the tables hold it to f (rdps-train run --save-model),
 * a text file:
 *
 *   rdps-ctr-model 1
 *   rank R dim D rows N
 *   dense B U1 .. U13            the bias, then the integer fields' weights
 *   KEY V1 .. VD                 N lines, one per row of the embedding
 *                                table (w, then the FM's factors)
 *
 * KEY is 16 lower-case hexadecimal digits, the lines in ascending key
 * order; values are "%.9g" (a float32 read back exactly). The rows come
 * from rdps_emb_export() (one-sided), so the file holds exactly the keys
 * the shards hold; under BSP, the same options give the same bytes on
 * every run and transport. Call it when no worker pushes. 0, or 1 after
 * one line on stderr (write errors are f's: check ferror).
 */
int trn_ctr_save(struct trn_ctr *c, FILE *f);

#endif /* RDPS_TRAIN_CTR_H */
