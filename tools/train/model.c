/* SPDX-License-Identifier: MIT */
/* model.c - SGD steps and held-out losses of the rdps-train workloads. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "rng.h"

static int model_alloc(struct trn_model *m)
{
	m->w = calloc(m->n, sizeof(*m->w));
	m->delta = calloc(m->n, sizeof(*m->delta));
	m->mark = calloc(m->rows, 1);
	m->touched = malloc(m->rows * sizeof(*m->touched));
	if (!m->w || !m->delta || !m->mark || !m->touched) {
		trn_model_fini(m);
		return -ENOMEM;
	}
	return 0;
}

int trn_model_init_lr(struct trn_model *m, uint32_t dim, double lr)
{
	memset(m, 0, sizeof(*m));
	if (!dim)
		return -EINVAL;
	m->kind = TRN_LR;
	m->n = dim;
	m->row_len = 1;
	m->rows = dim;
	m->lr = lr;
	if (model_alloc(m))
		return -ENOMEM;
	m->g2 = calloc(dim, sizeof(*m->g2));
	m->grad = malloc(dim * sizeof(*m->grad));
	m->bmark = calloc(dim, 1);
	m->batch_f = malloc(dim * sizeof(*m->batch_f));
	if (!m->g2 || !m->grad || !m->bmark || !m->batch_f) {
		trn_model_fini(m);
		return -ENOMEM;
	}
	return 0;
}

int trn_model_init_mf(struct trn_model *m, uint32_t users, uint32_t items,
		      uint32_t rank, double lr, double l2, double init_sd,
		      uint64_t seed)
{
	uint64_t rows = (uint64_t)users + items;

	memset(m, 0, sizeof(*m));
	if (!users || !items || !rank || rows * rank > (1ull << 28))
		return -EINVAL;
	m->kind = TRN_MF;
	m->n = rows * rank;
	m->row_len = rank;
	m->rows = (uint32_t)rows;
	m->users = users;
	m->lr = lr;
	m->l2 = l2;
	if (model_alloc(m))
		return -ENOMEM;
	m->init = malloc(m->n * sizeof(*m->init));
	if (!m->init) {
		trn_model_fini(m);
		return -ENOMEM;
	}
	for (uint32_t r = 0; r < m->rows; r++) {
		struct trn_rng g;

		trn_rng_seed(&g, seed ^ 0x494e4954ull, 7, r);
		for (uint32_t f = 0; f < rank; f++)
			m->init[(size_t)r * rank + f] =
				(float)(init_sd * trn_rng_normal(&g));
	}
	memcpy(m->w, m->init, m->n * sizeof(*m->w));
	return 0;
}

void trn_model_fini(struct trn_model *m)
{
	free(m->w);
	free(m->init);
	free(m->delta);
	free(m->mark);
	free(m->touched);
	free(m->margin);
	free(m->g2);
	free(m->grad);
	free(m->bmark);
	free(m->batch_f);
	memset(m, 0, sizeof(*m));
}

void trn_model_set(struct trn_model *m, const float *table)
{
	if (!m->init) {
		memcpy(m->w, table, m->n * sizeof(*m->w));
		return;
	}
	for (uint64_t i = 0; i < m->n; i++)
		m->w[i] = m->init[i] + table[i];
}

static inline void touch(struct trn_model *m, uint32_t row)
{
	if (!m->mark[row]) {
		m->mark[row] = 1;
		m->touched[m->ntouched++] = row;
	}
}

static inline double sigmoid(double x)
{
	return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

int trn_model_step_lr(struct trn_model *m, const struct trn_lr_data *d,
		      const uint32_t *ids, size_t b)
{
	float *w = m->w, *dl = m->delta;
	double *g = m->grad;
	uint32_t nb = 0;

	if (!b)
		return 0;
	if (b > m->margin_cap) {
		double *p = realloc(m->margin, b * sizeof(*p));

		if (!p)
			return -ENOMEM;
		m->margin = p;
		m->margin_cap = b;
	}
	/* The gradient at the batch's starting point. */
	for (size_t k = 0; k < b; k++) {
		size_t i = ids[k];
		double s = w[0];

		for (size_t j = d->off[i]; j < d->off[i + 1]; j++)
			s += (double)w[d->idx[j]] * d->val[j];
		m->margin[k] = sigmoid(s) - (d->y[i] > 0);
	}
	/* Summed per feature, averaged for the bias (in every sample);
	 * a feature's first contribution lists it. */
	g[0] = 0;
	m->batch_f[nb++] = 0;
	for (size_t k = 0; k < b; k++) {
		size_t i = ids[k];

		g[0] += m->margin[k] / (double)b;
		for (size_t j = d->off[i]; j < d->off[i + 1]; j++) {
			uint32_t f = d->idx[j];

			if (!m->bmark[f]) {
				m->bmark[f] = 1;
				g[f] = 0;
				m->batch_f[nb++] = f;
			}
			g[f] += m->margin[k] * d->val[j];
		}
	}
	/* Adagrad per coordinate: a feature in most samples gets a batch
	 * gradient up to b times a rare one's, and one learning rate for
	 * both either diverges on the first or crawls on the second
	 * (power-law data). Dividing by the root of the feature's summed
	 * squared gradients makes every step at most lr. */
	for (uint32_t q = 0; q < nb; q++) {
		uint32_t f = m->batch_f[q];
		double gf = g[f];
		float u;

		m->bmark[f] = 0;
		if (gf == 0)
			continue;
		m->g2[f] += gf * gf;
		u = (float)(-m->lr * gf / sqrt(m->g2[f] + 1e-12));
		w[f] += u;
		dl[f] += u;
		touch(m, f);
	}
	return 0;
}

void trn_model_step_mf(struct trn_model *m, const struct trn_mf_data *d,
		       const uint32_t *ids, size_t b)
{
	uint32_t k = m->row_len;
	float lr = (float)m->lr, l2 = (float)m->l2;

	for (size_t q = 0; q < b; q++) {
		size_t i = ids[q];
		uint32_t ru = d->user[i], rv = m->users + d->item[i];
		float *u = m->w + (size_t)ru * k, *v = m->w + (size_t)rv * k;
		float *du = m->delta + (size_t)ru * k;
		float *dv = m->delta + (size_t)rv * k;
		float e = d->rating[i];

		for (uint32_t f = 0; f < k; f++)
			e -= u[f] * v[f];
		for (uint32_t f = 0; f < k; f++) {
			float a = lr * (e * v[f] - l2 * u[f]);
			float c = lr * (e * u[f] - l2 * v[f]);

			u[f] += a;
			v[f] += c;
			du[f] += a;
			dv[f] += c;
		}
		touch(m, ru);
		touch(m, rv);
	}
}

double trn_model_loss_lr(const struct trn_model *m, const float *w,
			 const struct trn_lr_data *d)
{
	double sum = 0;

	if (!w)
		w = m->w;
	if (!d->n)
		return 0;
	for (size_t i = 0; i < d->n; i++) {
		double s = w[0], z;

		for (size_t j = d->off[i]; j < d->off[i + 1]; j++)
			if (d->idx[j] < m->n)
				s += (double)w[d->idx[j]] * d->val[j];
		z = -d->y[i] * s;
		/* log(1 + e^z) without overflow. */
		sum += z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
	}
	return sum / (double)d->n;
}

double trn_model_loss_mf(const struct trn_model *m, const float *w,
			 const struct trn_mf_data *d)
{
	uint32_t k = m->row_len;
	double sum = 0;

	if (!w)
		w = m->w;
	if (!d->n)
		return 0;
	for (size_t i = 0; i < d->n; i++) {
		const float *u, *v;
		double e = d->rating[i];

		if (d->user[i] >= m->users || m->users + d->item[i] >= m->rows)
			continue; /* unknown to the model: not scored */
		u = w + (size_t)d->user[i] * k;
		v = w + (size_t)(m->users + d->item[i]) * k;
		for (uint32_t f = 0; f < k; f++)
			e -= (double)u[f] * v[f];
		sum += e * e;
	}
	return sqrt(sum / (double)d->n);
}

long trn_model_take(struct trn_model *m, uint64_t *idx, float *val,
		    float *dense)
{
	uint32_t k = m->row_len;
	long n = 0;

	if (!m->ntouched)
		return 0;
	if ((uint64_t)m->ntouched * 3 > m->rows) {
		memcpy(dense, m->delta, m->n * sizeof(*dense));
		memset(m->delta, 0, m->n * sizeof(*m->delta));
		memset(m->mark, 0, m->rows);
		m->ntouched = 0;
		return -1;
	}
	for (uint32_t t = 0; t < m->ntouched; t++) {
		uint32_t r = m->touched[t];

		for (uint32_t f = 0; f < k; f++) {
			size_t e = (size_t)r * k + f;

			idx[n] = e;
			val[n] = m->delta[e];
			m->delta[e] = 0;
			n++;
		}
		m->mark[r] = 0;
	}
	m->ntouched = 0;
	return n;
}
