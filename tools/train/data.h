/* SPDX-License-Identifier: MIT */
/*
 * data.h - the training data of rdps-train: sparse binary-labelled samples
 * for logistic regression (LIBSVM text) and (user, item, rating) triples
 * for matrix factorization, with strict parsers, file loaders and seeded
 * synthetic generators.
 *
 * Parsers take (buf, len) and never read outside it; buf need not be
 * NUL-terminated. They return 0 or a negative errno; on failure err holds
 * one line "NAME:LINE:COL: what is wrong (how to fix)" (LINE and COL count
 * from 1, COL in bytes) and *out is left empty: zeroed, owning nothing.
 * Calling the matching *_free() on it, or on a zero-initialised struct, is
 * always safe. Memory is bounded by the input: at most a few bytes of
 * arrays per input byte, and no id or index beyond the limits below is
 * accepted (a model is sized by the largest one).
 *
 * Not thread-safe per struct; distinct structs are independent.
 */
#ifndef RDPS_TRAIN_DATA_H
#define RDPS_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Largest LIBSVM feature index accepted (the model has index + 1 floats). */
#define TRN_LR_MAX_FEATURE (1u << 24)
/* Largest user or item id accepted in a ratings file. */
#define TRN_MF_MAX_ID ((1u << 22) - 1)
/* Longest number token (label, index, value, id, rating) in bytes. */
#define TRN_TOKEN_MAX 64

/*
 * Logistic regression samples in CSR form. Feature 0 is the bias: it is in
 * no sample's list (LIBSVM indices start at 1) and the model adds it to
 * every margin.
 */
struct trn_lr_data {
	size_t n;      /* samples */
	size_t nnz;    /* non-zeros over all samples */
	uint32_t dim;  /* model size: the largest feature index + 1 (>= 1) */
	size_t *off;   /* n + 1 entries: sample i is [off[i], off[i + 1]) */
	uint32_t *idx; /* nnz feature indices, ascending within a sample */
	float *val;    /* nnz values */
	float *y;      /* n labels, +1 or -1 */
	size_t cap_n, cap_nnz; /* allocated entries (private) */
};

/* Ratings: user[i] rates item[i] with rating[i]. */
struct trn_mf_data {
	size_t n;
	uint32_t users, items; /* the largest id + 1 of each (>= 1 if n) */
	uint32_t *user, *item;
	float *rating;
	size_t cap; /* allocated entries (private) */
};

/*
 * LIBSVM text: one sample a line, "LABEL INDEX:VALUE INDEX:VALUE ...",
 * fields separated by spaces or tabs. LABEL is 1, +1, -1 or 0 (0 means
 * -1; any spelling strtod reads as those values, e.g. 1.0). INDEX is a
 * whole number from 1 to TRN_LR_MAX_FEATURE, strictly ascending within a
 * line; VALUE is a finite number. A line may end in "\r" and in a comment
 * from "#" on; empty and comment-only lines are skipped. NAME names the
 * input in errors.
 */
int trn_libsvm_parse(const char *buf, size_t len, const char *name,
		     struct trn_lr_data *out, char *err, size_t errlen);
/*
 * Ratings text: one rating a line, "USER ITEM RATING [TIMESTAMP]" with
 * spaces or tabs between; USER and ITEM whole numbers from 0 to
 * TRN_MF_MAX_ID, RATING a finite number, TIMESTAMP (ignored) a whole
 * number. "\r" line ends, "#" comments and empty lines as above.
 */
int trn_ratings_parse(const char *buf, size_t len, const char *name,
		      struct trn_mf_data *out, char *err, size_t errlen);

/* LIBSVM text for regression (lasso): the same, but LABEL is the target,
 * any finite number, stored in y. */
int trn_libsvm_parse_real(const char *buf, size_t len, const char *name,
			  struct trn_lr_data *out, char *err, size_t errlen);

/* Read the file at path (at most 1 GiB) and parse it as above; a file
 * that cannot be read gives "PATH: why (how to fix)", and so does one
 * with no sample (-EINVAL: unlike an empty buffer, an empty file is a
 * mistake). */
int trn_libsvm_load(const char *path, struct trn_lr_data *out, char *err,
		    size_t errlen);
int trn_libsvm_load_real(const char *path, struct trn_lr_data *out, char *err,
			 size_t errlen);
int trn_ratings_load(const char *path, struct trn_mf_data *out, char *err,
		     size_t errlen);

void trn_lr_data_free(struct trn_lr_data *d);
void trn_mf_data_free(struct trn_mf_data *d);

/*
 * Synthetic logistic regression: a hidden weight vector w* (N(0, scale^2)
 * over features 1..features, no bias); sample i (of an endless stream,
 * the same for a seed whatever the range asked) has nnz distinct features
 * with values +-1/sqrt(nnz), and label sign(w*.x + noise * N(0, 1)).
 * binary: values 1 as in Dorothea, kdd or Criteo (the label is that of
 * the values +1/sqrt(nnz)).
 *
 * Feature popularity: uniform when zipf is 0; else a power law as in real
 * sparse data (rcv1, news20, Criteo): the feature of popularity rank r
 * (from 1) is drawn with probability proportional to r^-zipf, and ranks
 * are spread over the indices by a seeded affine bijection, so the
 * popular features are not all at the low indices (one shard's range).
 * A sample whose nnz distinct features the power law cannot find in
 * 64 x nnz draws takes the rest uniformly.
 */
#define TRN_ZIPF_MAX 4.0
struct trn_lr_gen {
	uint32_t features; /* 1 .. TRN_LR_MAX_FEATURE */
	uint32_t nnz;	   /* non-zeros per sample, 1 .. features */
	double scale;	   /* spread of w* (> 0) */
	double noise;	   /* label noise (>= 0) */
	double zipf;	   /* popularity exponent, 0 .. TRN_ZIPF_MAX */
	int binary;	   /* values 1 (the label then sees +1/sqrt(nnz)) */
	uint64_t seed;
};
/* Samples [first, first + count) of the stream into *out (emptied first).
 * -EINVAL for bad parameters (err says which), -ENOMEM. */
int trn_lr_generate(const struct trn_lr_gen *g, uint64_t first, size_t count,
		    struct trn_lr_data *out, char *err, size_t errlen);

/*
 * Synthetic matrix factorization: hidden factors U* (users x rank) and V*
 * (items x rank) with N(0, 1/sqrt(rank)) entries; rating i (of an endless
 * stream) is a random (user, item) pair rated U*u.V*v + noise * N(0, 1).
 * The user and the item are uniform when zipf is 0, else drawn by the
 * power law of trn_lr_gen (a few users rate much, a few items are rated
 * much).
 */
struct trn_mf_gen {
	uint32_t users, items; /* 1 .. TRN_MF_MAX_ID + 1 */
	uint32_t rank;	       /* 1 .. 256 */
	double noise;	       /* >= 0 */
	double zipf;	       /* 0 .. TRN_ZIPF_MAX */
	uint64_t seed;
};
int trn_mf_generate(const struct trn_mf_gen *g, uint64_t first, size_t count,
		    struct trn_mf_data *out, char *err, size_t errlen);

/*
 * Synthetic LASSO regression, as in the Frank-Wolfe seed's experiments:
 * a samples x features design A with round(density x features) distinct
 * N(0, 1) entries a row (feature indices from 1, as LIBSVM), a hidden x*
 * with support N(0, 1) non-zeros, and targets y = A x* + noise x N(0, 1).
 * The whole set at once (every worker needs every row: it owns columns).
 * *l1_out, if not NULL, gets ||x*||_1, the natural L1 radius.
 */
#define TRN_LASSO_MAX_SAMPLES 1000000u
/* The state (key and x) is one dense f64 push, which must fit one push
 * chunk (a 1 MiB sub-slot) to be one keep-if-better block. */
#define TRN_LASSO_MAX_FEATURES 120000u
struct trn_lasso_gen {
	uint32_t samples, features;
	double density; /* 1e-4 .. 1 */
	uint32_t support;
	double noise;
	uint64_t seed;
};
int trn_lasso_generate(const struct trn_lasso_gen *g, struct trn_lr_data *out,
		       double *l1_out, char *err, size_t errlen);

#endif /* RDPS_TRAIN_DATA_H */
