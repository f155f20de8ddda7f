/* SPDX-License-Identifier: MIT */
/*
 * ctr.c - the click-through workload (ctr.h): keys, the Criteo TSV
 * reader, the generator, and one worker's model over an embedding table.
 *
 * A mini-batch pulls each distinct key once: popular ids are in most
 * samples of a power-law batch, so the distinct keys are far fewer than
 * batch x 26, and a pull costs per key read. The gradient is pushed as
 * it is (no local step): the shards' Adagrad bounds every step by lr
 * whatever a key's popularity, and under BSP a worker's pushes of one
 * clock are summed into one step per worker, as the dense lr workload's
 * deltas are.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ctr.h"
#include "data.h"
#include "rdps/rdps.h"
#include "rng.h"
#include "train.h"

/* Keys and values ------------------------------------------------------ */

uint64_t trn_ctr_key(unsigned field, int present, uint32_t value)
{
	/* Field and value side by side, then splitmix64's finaliser: each
	 * of its steps is invertible, so distinct words stay distinct. */
	uint64_t z = (uint64_t)field << 33 | (uint64_t)!present << 32 |
		     (present ? value : 0);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

float trn_ctr_int_value(int64_t x)
{
	/* Counts span orders of magnitude: their logarithm keeps one
	 * large count from swamping the score. */
	if (x > 0)
		return (float)log1p((double)x);
	if (x < 0)
		return (float)-log1p(-(double)x);
	return 0;
}

void trn_ctr_data_free(struct trn_ctr_data *d)
{
	free(d->y);
	free(d->num);
	free(d->key);
	memset(d, 0, sizeof(*d));
}

/* Room for one more sample. */
static int ctr_reserve(struct trn_ctr_data *d)
{
	size_t cap = d->cap ? 2 * d->cap : 1024;
	float *y, *num;
	uint64_t *key;

	if (d->n < d->cap)
		return 0;
	y = realloc(d->y, cap * sizeof(*y));
	if (y)
		d->y = y;
	num = realloc(d->num, cap * TRN_CTR_NINT * sizeof(*num));
	if (num)
		d->num = num;
	key = realloc(d->key, cap * TRN_CTR_NCAT * sizeof(*key));
	if (key)
		d->key = key;
	if (!y || !num || !key)
		return -ENOMEM;
	d->cap = cap;
	return 0;
}

/* The reader ----------------------------------------------------------- */

static int ctr_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	RDPS_PRINTF(4, 5);
static int ctr_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

/* A field as shown in an error: at most 24 bytes, non-printing ones '?'. */
static const char *ctr_shown(const char *p, size_t n, char *out)
{
	size_t k = n < 24 ? n : 24;

	for (size_t i = 0; i < k; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
	strcpy(out + k, n > k ? "..." : "");
	return out;
}

static int ctr_int(const char *p, size_t n, int64_t *v)
{
	uint64_t x = 0;
	int neg = n && p[0] == '-';
	size_t i = (size_t)neg;

	if (i == n)
		return -EINVAL;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || x > (INT64_MAX - 9) / 10)
			return -EINVAL;
		x = x * 10 + (uint64_t)(p[i] - '0');
	}
	*v = neg ? -(int64_t)x : (int64_t)x;
	return 0;
}

static int ctr_hex(const char *p, size_t n, uint32_t *v)
{
	uint32_t x = 0;

	if (!n || n > 8)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
			     : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
			     : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
						    : 16;

		if (d == 16)
			return -EINVAL;
		x = x << 4 | d;
	}
	*v = x;
	return 0;
}

/* One line (no line end) into sample d->n. */
static int ctr_line(const char *p, size_t len, const char *path, uint64_t line,
		    struct trn_ctr_data *d, char *err, size_t errlen)
{
	const char *f[40];
	size_t fl[40], nf = 0, start = 0;
	char s[32];
	float *num;
	uint64_t *key;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '\t')
			continue;
		if (nf < 40) {
			f[nf] = p + start;
			fl[nf] = i - start;
		}
		nf++;
		start = i + 1;
	}
	if (nf != 40)
		return ctr_fail(err, errlen, -EINVAL,
				"%s:%" PRIu64
				": %zu tab-separated fields, want "
				"40 (label, 13 integers, 26 hexadecimal "
				"categories; empty fields stay)",
				path, line, nf);
	if (fl[0] != 1 || (f[0][0] != '0' && f[0][0] != '1'))
		return ctr_fail(err, errlen, -EINVAL,
				"%s:%" PRIu64 ": label '%s' is not 0 or 1 (a "
				"line starts with its click label)",
				path, line, ctr_shown(f[0], fl[0], s));
	if (ctr_reserve(d))
		return ctr_fail(err, errlen, -ENOMEM,
				"%s:%" PRIu64 ": out of memory", path, line);
	num = d->num + d->n * TRN_CTR_NINT;
	key = d->key + d->n * TRN_CTR_NCAT;
	for (unsigned j = 0; j < TRN_CTR_NINT; j++) {
		int64_t x = 0;

		if (fl[1 + j] && ctr_int(f[1 + j], fl[1 + j], &x))
			return ctr_fail(err, errlen, -EINVAL,
					"%s:%" PRIu64 ": integer field I%u "
					"'%s' is not a whole number (decimal "
					"digits, optional '-', or empty)",
					path, line, j + 1,
					ctr_shown(f[1 + j], fl[1 + j], s));
		num[j] = trn_ctr_int_value(x);
	}
	for (unsigned c = 0; c < TRN_CTR_NCAT; c++) {
		const char *q = f[1 + TRN_CTR_NINT + c];
		size_t n = fl[1 + TRN_CTR_NINT + c];
		uint32_t v = 0;

		if (n && ctr_hex(q, n, &v))
			return ctr_fail(err, errlen, -EINVAL,
					"%s:%" PRIu64 ": categorical field C%u "
					"'%s' is not 1 to 8 hexadecimal digits "
					"(or empty)",
					path, line, c + 1, ctr_shown(q, n, s));
		key[c] = trn_ctr_key(c, n != 0, v);
	}
	d->y[d->n++] = (float)(f[0][0] - '0');
	return 0;
}

int trn_criteo_load(const char *path, struct trn_ctr_data *out, char *err,
		    size_t errlen)
{
	struct trn_ctr_data d = {0};
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	uint64_t line = 0;
	ssize_t n;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!fp)
		return ctr_fail(err, errlen, -errno,
				"%s: %s (give a Criteo TSV file with --data)",
				path, strerror(errno));
	while ((n = getline(&buf, &cap, fp)) >= 0) {
		size_t len = (size_t)n;

		line++;
		if (len && buf[len - 1] == '\n')
			len--;
		if (len && buf[len - 1] == '\r')
			len--;
		if (!len)
			continue;
		ret = ctr_line(buf, len, path, line, &d, err, errlen);
		if (ret)
			break;
	}
	if (!ret && ferror(fp))
		ret = ctr_fail(err, errlen, -EIO, "%s: cannot read: %s", path,
			       strerror(errno));
	if (!ret && !d.n)
		ret = ctr_fail(err, errlen, -EINVAL,
			       "%s: no sample (want lines of 40 tab-separated "
			       "fields: label, 13 integers, 26 categories)",
			       path);
	free(buf);
	fclose(fp);
	if (ret) {
		trn_ctr_data_free(&d);
		return ret;
	}
	*out = d;
	return 0;
}

/* The generator -------------------------------------------------------- */

/* Stream tags of trn_rng_seed(seed, tag, i); apart from data.c's. */
enum { CTR_GEN_SAMPLE = 101, CTR_GEN_INT_W, CTR_GEN_KEY_W };

/* A rank in [1, n] with density r^-s on [1, n + 1), by inverting the
 * continuous law's distribution (no table of n weights). */
static uint64_t ctr_power_rank(struct trn_rng *r, uint64_t n, double s)
{
	double u = trn_rng_unif(r), top = (double)n + 1, x;

	if (s == 0)
		return 1 + trn_rng_below(r, n);
	if (fabs(s - 1) < 1e-9)
		x = exp(u * log(top));
	else
		x = pow(1 + u * (pow(top, 1 - s) - 1), 1 / (1 - s));
	return x < 1 ? 1 : x >= top ? n : (uint64_t)x;
}

static double ctr_key_weight(uint64_t seed, uint64_t key)
{
	struct trn_rng r;

	trn_rng_seed(&r, seed, CTR_GEN_KEY_W, key);
	return 0.5 * trn_rng_normal(&r);
}

/* One generated line as the TSV holds it; has_* 0: the field is empty. */
struct ctr_raw {
	int64_t x[TRN_CTR_NINT];
	uint32_t v[TRN_CTR_NCAT];
	uint8_t has_x[TRN_CTR_NINT], has_v[TRN_CTR_NCAT];
	int y;
};

static int ctr_gen_check(const struct trn_ctr_gen *g, char *err, size_t errlen)
{
	if (!g->vocab)
		return ctr_fail(err, errlen, -EINVAL,
				"ctr generator: 0 ids per field: give "
				"--features 1 or more");
	if (!(g->zipf >= 0 && g->zipf <= TRN_ZIPF_MAX) || !(g->noise >= 0))
		return ctr_fail(err, errlen, -EINVAL,
				"ctr generator: zipf %g (0 .. %g) or noise %g "
				"(>= 0) out of range",
				g->zipf, TRN_ZIPF_MAX, g->noise);
	return 0;
}

/* The integer fields' hidden weights. */
static void ctr_gen_int_w(const struct trn_ctr_gen *g, double *u)
{
	struct trn_rng r;

	for (unsigned j = 0; j < TRN_CTR_NINT; j++) {
		trn_rng_seed(&r, g->seed, CTR_GEN_INT_W, j);
		u[j] = 0.3 * trn_rng_normal(&r);
	}
}

/* Sample i of the stream; u from ctr_gen_int_w(). */
static void ctr_gen_raw(const struct trn_ctr_gen *g, const double *u,
			uint64_t i, struct ctr_raw *s)
{
	struct trn_rng r;
	double z = -1;

	trn_rng_seed(&r, g->seed, CTR_GEN_SAMPLE, i);
	for (unsigned j = 0; j < TRN_CTR_NINT; j++) {
		s->x[j] = (int64_t)exp(2 * trn_rng_normal(&r));
		s->has_x[j] = trn_rng_unif(&r) >= 0.1;
		if (s->has_x[j])
			z += u[j] * trn_ctr_int_value(s->x[j]);
	}
	for (unsigned c = 0; c < TRN_CTR_NCAT; c++) {
		s->v[c] = (uint32_t)(ctr_power_rank(&r, g->vocab, g->zipf) - 1);
		s->has_v[c] = trn_rng_unif(&r) >= 0.05;
		z += ctr_key_weight(g->seed,
				    trn_ctr_key(c, s->has_v[c], s->v[c]));
	}
	z += g->noise * trn_rng_normal(&r);
	s->y = z > 0;
}

int trn_ctr_generate(const struct trn_ctr_gen *g, uint64_t first, size_t count,
		     struct trn_ctr_data *out, char *err, size_t errlen)
{
	struct trn_ctr_data d = {0};
	double u[TRN_CTR_NINT];
	struct ctr_raw s;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = ctr_gen_check(g, err, errlen);
	if (ret)
		return ret;
	ctr_gen_int_w(g, u);
	for (size_t i = 0; i < count; i++) {
		float *num;
		uint64_t *key;

		if (ctr_reserve(&d)) {
			trn_ctr_data_free(&d);
			return ctr_fail(err, errlen, -ENOMEM,
					"ctr generator: out of memory for "
					"%zu samples",
					count);
		}
		ctr_gen_raw(g, u, first + i, &s);
		num = d.num + d.n * TRN_CTR_NINT;
		key = d.key + d.n * TRN_CTR_NCAT;
		for (unsigned j = 0; j < TRN_CTR_NINT; j++)
			num[j] = s.has_x[j] ? trn_ctr_int_value(s.x[j]) : 0;
		for (unsigned c = 0; c < TRN_CTR_NCAT; c++)
			key[c] = trn_ctr_key(c, s.has_v[c], s.v[c]);
		d.y[d.n++] = (float)s.y;
	}
	*out = d;
	return 0;
}

int trn_ctr_write(const struct trn_ctr_gen *g, uint64_t first, uint64_t count,
		  FILE *f, char *err, size_t errlen)
{
	double u[TRN_CTR_NINT];
	struct ctr_raw s;
	int ret = ctr_gen_check(g, err, errlen);

	if (ret)
		return ret;
	ctr_gen_int_w(g, u);
	for (uint64_t i = 0; i < count; i++) {
		ctr_gen_raw(g, u, first + i, &s);
		fprintf(f, "%d", s.y);
		for (unsigned j = 0; j < TRN_CTR_NINT; j++)
			if (s.has_x[j])
				fprintf(f, "\t%" PRId64, s.x[j]);
			else
				fputc('\t', f);
		for (unsigned c = 0; c < TRN_CTR_NCAT; c++)
			if (s.has_v[c])
				fprintf(f, "\t%08x", s.v[c]);
			else
				fputc('\t', f);
		fputc('\n', f);
	}
	return 0;
}

/* Distinct keys: an open-addressing set --------------------------------- */

struct ctr_set {
	uint64_t *key;
	uint32_t *at; /* index into the distinct list; UINT32_MAX: empty */
	size_t mask;
};

/* Room for n keys at most half full. */
static int ctr_set_init(struct ctr_set *s, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	if (s->mask + 1 != cap) {
		free(s->key);
		free(s->at);
		s->key = malloc(cap * sizeof(*s->key));
		s->at = malloc(cap * sizeof(*s->at));
		if (!s->key || !s->at) {
			s->mask = 0;
			return -ENOMEM;
		}
		s->mask = cap - 1;
	}
	memset(s->at, 0xff, (s->mask + 1) * sizeof(*s->at));
	return 0;
}

static void ctr_set_free(struct ctr_set *s)
{
	free(s->key);
	free(s->at);
	memset(s, 0, sizeof(*s));
}

/* The index of key in list[0..*n), appending it if new. */
static uint32_t ctr_set_add(struct ctr_set *s, uint64_t key, uint64_t *list,
			    uint32_t *n)
{
	size_t h = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & s->mask;

	while (s->at[h] != UINT32_MAX) {
		if (s->key[h] == key)
			return s->at[h];
		h = (h + 1) & s->mask;
	}
	s->key[h] = key;
	s->at[h] = *n;
	if (list)
		list[*n] = key;
	return (*n)++;
}

long long trn_ctr_distinct(const struct trn_ctr_data *d)
{
	struct ctr_set s = {0};
	size_t m = d->n * TRN_CTR_NCAT;
	uint32_t n = 0;

	if (m >= UINT32_MAX / 2 || ctr_set_init(&s, m)) {
		ctr_set_free(&s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m; i++)
		ctr_set_add(&s, d->key[i], NULL, &n);
	ctr_set_free(&s);
	return n;
}

/* The model ------------------------------------------------------------ */

struct trn_ctr {
	struct rdps_emb *emb;
	struct rdps_table *dense;
	unsigned rank, dim;
	float dw[TRN_CTR_NDENSE]; /* the dense part as pulled */
	float dg[TRN_CTR_NDENSE]; /* its gradient */
	struct ctr_set set;
	size_t cap;	/* samples the buffers below hold */
	uint64_t *keys; /* the distinct keys of a batch */
	uint32_t *slot; /* per (sample, field): its index in keys */
	float *rows;	/* their rows */
	float *grads;	/* their gradient rows */
	double *sum;	/* FM: sum of a sample's factors */
	struct ctr_scored *scored;
};

struct ctr_scored {
	double score;
	float y;
};

/* Buffers for n samples. */
static int ctr_grow(struct trn_ctr *c, size_t n)
{
	size_t k = n * TRN_CTR_NCAT;

	if (n <= c->cap)
		return 0;
	free(c->keys);
	free(c->slot);
	free(c->rows);
	free(c->grads);
	free(c->scored);
	c->keys = malloc(k * sizeof(*c->keys));
	c->slot = malloc(k * sizeof(*c->slot));
	c->rows = malloc(k * c->dim * sizeof(*c->rows));
	c->grads = malloc(k * c->dim * sizeof(*c->grads));
	c->scored = malloc(n * sizeof(*c->scored));
	if (!c->keys || !c->slot || !c->rows || !c->grads || !c->scored) {
		c->cap = 0;
		return -ENOMEM;
	}
	c->cap = n;
	return 0;
}

int trn_ctr_open(struct rdps_ctx *ctx, const struct trn_ctr_cfg *cfg,
		 struct trn_ctr **out)
{
	struct trn_ctr *c = calloc(1, sizeof(*c));
	struct rdps_emb_cfg ec;
	int ret;

	if (!c || cfg->rank > TRN_CTR_MAX_RANK)
		goto nomem;
	c->rank = cfg->rank;
	c->dim = 1 + cfg->rank;
	c->sum = calloc(c->dim, sizeof(*c->sum));
	if (!c->sum || ctr_grow(c, cfg->batch ? cfg->batch : 1))
		goto nomem;
	rdps_emb_cfg_default(&ec);
	ec.dim = c->dim;
	ec.dtype = RDPS_DTYPE_F32;
	ec.rule = RDPS_RULE_ADAGRAD;
	ec.lr = cfg->lr;
	ec.capacity = cfg->capacity;
	/* Logistic regression starts at 0; the FM's factors must not (a
	 * pair's gradient is the other factors). */
	ec.init = cfg->rank ? RDPS_EMB_INIT_NORMAL : RDPS_EMB_INIT_ZERO;
	ec.init_scale = cfg->rank ? cfg->init_sd : ec.init_scale;
	ec.seed = cfg->seed;
	rdps_clear_error();
	ret = rdps_emb_open(ctx, "ctr-emb", &ec, &c->emb);
	if (!ret)
		ret = rdps_table_open(ctx, "ctr-dense", TRN_CTR_NDENSE,
				      RDPS_DTYPE_F32, RDPS_RULE_ADAGRAD,
				      cfg->lr, &c->dense);
	if (ret) {
		trn_ctr_close(c);
		return tool_fail(ret, "opening the ctr tables");
	}
	*out = c;
	return 0;
nomem:
	trn_ctr_close(c);
	tool_err("out of memory for the ctr model (batch %u, rank %u)",
		 cfg->batch, cfg->rank);
	return 1;
}

void trn_ctr_close(struct trn_ctr *c)
{
	/* The tables belong to the context. */
	if (!c)
		return;
	ctr_set_free(&c->set);
	free(c->keys);
	free(c->slot);
	free(c->rows);
	free(c->grads);
	free(c->sum);
	free(c->scored);
	free(c);
}

/* Pull the dense part and the rows of the distinct keys of ids[0..n)
 * (all of d if ids is NULL); slot then maps (sample, field) to a row. */
static int ctr_pull(struct trn_ctr *c, const struct trn_ctr_data *d,
		    const uint32_t *ids, size_t n, uint32_t *nkeys)
{
	int ret;

	*nkeys = 0;
	if (ctr_grow(c, n) || ctr_set_init(&c->set, n * TRN_CTR_NCAT)) {
		tool_err("out of memory for %zu ctr samples", n);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		const uint64_t *k = d->key + (ids ? ids[i] : i) * TRN_CTR_NCAT;

		for (unsigned f = 0; f < TRN_CTR_NCAT; f++)
			c->slot[i * TRN_CTR_NCAT + f] =
				ctr_set_add(&c->set, k[f], c->keys, nkeys);
	}
	rdps_clear_error();
	ret = rdps_pull(c->dense, 0, TRN_CTR_NDENSE, c->dw);
	if (ret)
		return tool_fail(ret, "pulling the ctr dense weights");
	rdps_clear_error();
	ret = rdps_emb_pull(c->emb, c->keys, *nkeys, c->rows);
	if (ret)
		return tool_fail(ret, "pulling the ctr embedding rows");
	return 0;
}

/* The score of sample i (row slots s, integers x); FM: c->sum ends as
 * the sum of its factors. */
static double ctr_score(struct trn_ctr *c, const uint32_t *s, const float *x)
{
	double z = c->dw[0], sq = 0;

	for (unsigned j = 0; j < TRN_CTR_NINT; j++)
		z += (double)c->dw[1 + j] * x[j];
	for (unsigned k = 0; k < c->rank; k++)
		c->sum[k] = 0;
	for (unsigned f = 0; f < TRN_CTR_NCAT; f++) {
		const float *row = c->rows + (size_t)s[f] * c->dim;

		z += row[0];
		for (unsigned k = 0; k < c->rank; k++) {
			c->sum[k] += row[1 + k];
			sq += (double)row[1 + k] * row[1 + k];
		}
	}
	/* sum over pairs f < g of <v_f, v_g> = (|sum v|^2 - sum |v|^2) / 2 */
	for (unsigned k = 0; k < c->rank; k++)
		z += 0.5 * c->sum[k] * c->sum[k];
	return z - 0.5 * sq;
}

static double ctr_sigmoid(double z)
{
	return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
}

int trn_ctr_step(struct trn_ctr *c, const struct trn_ctr_data *d,
		 const uint32_t *ids, size_t b)
{
	uint32_t nk;
	int ret;

	if (!b)
		return 0;
	ret = ctr_pull(c, d, ids, b, &nk);
	if (ret)
		return ret;
	memset(c->grads, 0, (size_t)nk * c->dim * sizeof(*c->grads));
	memset(c->dg, 0, sizeof(c->dg));
	for (size_t i = 0; i < b; i++) {
		const uint32_t *s = c->slot + i * TRN_CTR_NCAT;
		const float *x = d->num + (size_t)ids[i] * TRN_CTR_NINT;
		double z = ctr_score(c, s, x);
		/* d(log-loss)/d(score), for the batch's mean */
		float g = (float)((ctr_sigmoid(z) - d->y[ids[i]]) / (double)b);

		c->dg[0] += g;
		for (unsigned j = 0; j < TRN_CTR_NINT; j++)
			c->dg[1 + j] += g * x[j];
		for (unsigned f = 0; f < TRN_CTR_NCAT; f++) {
			float *gr = c->grads + (size_t)s[f] * c->dim;
			const float *row = c->rows + (size_t)s[f] * c->dim;

			gr[0] += g;
			for (unsigned k = 0; k < c->rank; k++)
				gr[1 + k] +=
					g * (float)(c->sum[k] - row[1 + k]);
		}
	}
	rdps_clear_error();
	ret = rdps_emb_push(c->emb, c->keys, nk, c->grads);
	if (ret)
		return tool_fail(ret, "pushing the ctr gradient rows");
	rdps_clear_error();
	ret = rdps_push(c->dense, 0, TRN_CTR_NDENSE, c->dg);
	if (ret)
		return tool_fail(ret, "pushing the ctr dense gradient");
	return 0;
}

static int ctr_by_score(const void *a, const void *b)
{
	double x = ((const struct ctr_scored *)a)->score,
	       y = ((const struct ctr_scored *)b)->score;

	return (x > y) - (x < y);
}

/* The AUC of n scored samples: the Mann-Whitney rank sum of the
 * positives, ties given their mean rank. Sorts s. */
static double ctr_auc(struct ctr_scored *s, size_t n)
{
	double pos = 0, rank_sum = 0;

	qsort(s, n, sizeof(*s), ctr_by_score);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		double p = 0;

		while (j < n && s[j].score == s[i].score)
			p += s[j++].y;
		/* ranks i + 1 .. j, mean (i + 1 + j) / 2 */
		rank_sum += p * (double)(i + 1 + j) / 2;
		pos += p;
		i = j;
	}
	if (pos == 0 || pos == (double)n)
		return 0.5;
	return (rank_sum - pos * (pos + 1) / 2) / (pos * ((double)n - pos));
}

int trn_ctr_eval(struct trn_ctr *c, const struct trn_ctr_data *d,
		 const uint32_t *ids, size_t n, double *loss_out,
		 double *auc_out)
{
	double sum = 0;
	uint32_t nk;
	int ret;

	if (!ids)
		n = d->n;
	ret = ctr_pull(c, d, ids, n, &nk);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		size_t at = ids ? ids[i] : i;
		double z = ctr_score(c, c->slot + i * TRN_CTR_NCAT,
				     d->num + at * TRN_CTR_NINT);

		/* log(1 + exp(-z)) for a click, log(1 + exp(z)) if not */
		sum += log1p(exp(-fabs(z))) + (z > 0 ? z : 0) - d->y[at] * z;
		c->scored[i].score = z;
		c->scored[i].y = d->y[at];
	}
	*loss_out = n ? sum / (double)n : 0;
	*auc_out = ctr_auc(c->scored, n);
	return 0;
}

int trn_ctr_start(struct rdps_ctx *ctx, const struct trn_work_opts *w,
		  const struct rdps_config *cfg,
		  const struct trn_ctr_data *train, struct trn_ctr **out)
{
	struct trn_ctr_cfg cc = {
		.rank = w->rank,
		.lr = w->lr,
		.init_sd = w->init_sd,
		.seed = w->seed,
		.batch = w->batch,
	};
	long long keys = (long long)TRN_CTR_NCAT * (w->lrg.features + 1ll);
	unsigned shards = 1;

	for (const char *p = cfg->shards; p && *p; p++)
		shards += *p == ',';
	if (w->data)
		keys = trn_ctr_distinct(train);
	if (keys < 0) {
		tool_err("out of memory counting the keys of %s", w->data);
		return 1;
	}
	/* A hash spreads the keys: a quarter more than the mean share,
	 * and room for small tables' unevenness. */
	cc.capacity =
		(uint64_t)keys / shards + (uint64_t)keys / shards / 4 + 1024;
	return trn_ctr_open(ctx, &cc, out);
}

/* The rows rdps_emb_export() hands over: keys and their values. */
struct ctr_export {
	uint64_t *keys;
	float *vals;
	size_t n, cap;
	unsigned dim;
	int nomem;
};

static int ctr_export_row(void *arg, uint64_t key, const void *vals)
{
	struct ctr_export *x = arg;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 4096;
		uint64_t *k = realloc(x->keys, cap * sizeof(*k));
		float *v;

		if (k)
			x->keys = k;
		v = k ? realloc(x->vals, cap * x->dim * sizeof(*v)) : NULL;
		if (!v) {
			x->nomem = 1;
			return -ENOMEM;
		}
		x->vals = v;
		x->cap = cap;
	}
	x->keys[x->n] = key;
	memcpy(x->vals + x->n * x->dim, vals, x->dim * sizeof(float));
	x->n++;
	return 0;
}

/* Row indices in ascending order of their keys (keys are distinct). */
static const uint64_t *ctr_sort_keys;

static int ctr_key_cmp(const void *a, const void *b)
{
	uint64_t x = ctr_sort_keys[*(const size_t *)a];
	uint64_t y = ctr_sort_keys[*(const size_t *)b];

	return x < y ? -1 : x > y;
}

int trn_ctr_save(struct trn_ctr *c, FILE *f)
{
	struct ctr_export x = {NULL, NULL, 0, 0, c->dim, 0};
	float dense[TRN_CTR_NDENSE];
	size_t *order = NULL;
	int ret, rc = 1;

	rdps_clear_error();
	ret = rdps_pull(c->dense, 0, TRN_CTR_NDENSE, dense);
	if (ret) {
		tool_fail(ret, "pulling the dense part to save it");
		goto out;
	}
	rdps_clear_error();
	ret = rdps_emb_export(c->emb, ctr_export_row, &x);
	if (x.nomem) {
		tool_err("out of memory for the %zu rows to save", x.n);
		goto out;
	}
	if (ret) {
		tool_fail(ret, "exporting the embedding rows to save them");
		goto out;
	}
	order = malloc((x.n ? x.n : 1) * sizeof(*order));
	if (!order) {
		tool_err("out of memory for the %zu rows to save", x.n);
		goto out;
	}
	for (size_t i = 0; i < x.n; i++)
		order[i] = i;
	ctr_sort_keys = x.keys;
	qsort(order, x.n, sizeof(*order), ctr_key_cmp);
	fprintf(f, "rdps-ctr-model 1\nrank %u dim %u rows %zu\ndense", c->rank,
		c->dim, x.n);
	for (unsigned j = 0; j < TRN_CTR_NDENSE; j++)
		fprintf(f, " %.9g", (double)dense[j]);
	fputc('\n', f);
	for (size_t i = 0; i < x.n; i++) {
		const float *v = x.vals + order[i] * c->dim;

		fprintf(f, "%016" PRIx64, x.keys[order[i]]);
		for (unsigned j = 0; j < c->dim; j++)
			fprintf(f, " %.9g", (double)v[j]);
		fputc('\n', f);
	}
	rc = 0;
out:
	free(order);
	free(x.keys);
	free(x.vals);
	return rc;
}
