/* SPDX-License-Identifier: MIT */
/* data.c - parsers, loaders and generators of rdps-train's data. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_CLOEXEC; also when built alone (fuzz targets) */
#endif
#include <errno.h>
#include <float.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "rng.h"

#define LOAD_MAX (1ull << 30)

/* A scan over the lines of one input. */
struct scan {
	const char *buf, *name;
	size_t len;
	size_t pos;    /* start of the next line */
	size_t ls, le; /* current line [ls, le), comment and \r cut */
	size_t tok;    /* start of the current token */
	size_t cur;    /* where the next token search starts */
	unsigned long line;
	char *err;
	size_t errlen;
};

static void scan_init(struct scan *s, const char *buf, size_t len,
		      const char *name, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->buf = buf;
	s->len = buf ? len : 0;
	s->name = name ? name : "input";
	s->err = err;
	s->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
}

static int scan_fail(struct scan *s, size_t at, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int scan_fail(struct scan *s, size_t at, int ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!s->err || !s->errlen)
		return ret;
	n = snprintf(s->err, s->errlen, "%s:%lu:%zu: ", s->name, s->line,
		     at - s->ls + 1);
	if (n < 0 || (size_t)n >= s->errlen)
		return ret;
	va_start(ap, fmt);
	vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ret;
}

/*
 * Advance to the next line that holds something; 1 if there is one, 0 at
 * the end. A byte that cannot be in a text line (NUL and other controls
 * except tab) is reported here, so tokens are printable.
 */
static int scan_line(struct scan *s, int *ret)
{
	*ret = 0;
	while (s->pos < s->len) {
		const char *nl = memchr(s->buf + s->pos, '\n', s->len - s->pos);
		size_t end = nl ? (size_t)(nl - s->buf) : s->len, i;

		s->line++;
		s->ls = s->pos;
		s->le = end;
		s->pos = nl ? end + 1 : s->len;
		if (s->le > s->ls && s->buf[s->le - 1] == '\r')
			s->le--;
		for (i = s->ls; i < s->le; i++) {
			unsigned char c = (unsigned char)s->buf[i];

			if (c == '#') {
				s->le = i;
				break;
			}
			if (c == '\r') {
				/* Text all the same: say how to convert. */
				*ret = scan_fail(
					s, i, -EINVAL,
					"carriage return inside a line: "
					"the lines end in CR only (old "
					"Mac text; convert them to LF, "
					"e.g. tr '\\r' '\\n' <in >out)");
				return 0;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				*ret = scan_fail(s, i, -EINVAL,
						 "unexpected byte 0x%02x (the "
						 "input must be plain text)",
						 c);
				return 0;
			}
		}
		s->cur = s->ls;
		while (s->cur < s->le &&
		       (s->buf[s->cur] == ' ' || s->buf[s->cur] == '\t'))
			s->cur++;
		if (s->cur < s->le)
			return 1;
	}
	return 0;
}

/* The next token of the line: its length (0 at the end of the line);
 * s->tok is where it starts. */
static size_t scan_token(struct scan *s)
{
	size_t a, b;

	while (s->cur < s->le &&
	       (s->buf[s->cur] == ' ' || s->buf[s->cur] == '\t'))
		s->cur++;
	a = b = s->cur;
	while (b < s->le && s->buf[b] != ' ' && s->buf[b] != '\t')
		b++;
	s->tok = a;
	s->cur = b;
	return b - a;
}

/* Copy at most 24 bytes of a token for a message, "..." if cut. */
static const char *shown(const char *p, size_t n, char *out, size_t outlen)
{
	size_t k = n > 24 ? 24 : n;

	if (k >= outlen)
		k = outlen - 4;
	memcpy(out, p, k);
	strcpy(out + k, n > k ? "..." : "");
	return out;
}

/* Parse a finite number of the whole token p[0..n); 0 or -EINVAL. */
static int parse_num(const char *p, size_t n, double *v)
{
	char tmp[TRN_TOKEN_MAX + 1];
	char *end;

	if (!n || n > TRN_TOKEN_MAX)
		return -EINVAL;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	/* strtod takes hex, inf and nan: data files hold decimals. */
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789+-.eE", tmp[i]))
			return -EINVAL;
	errno = 0;
	*v = strtod(tmp, &end);
	/* Values are stored as float: beyond FLT_MAX they would be inf. */
	if (*end || !isfinite(*v) || (errno == ERANGE && fabs(*v) > 1) ||
	    fabs(*v) > FLT_MAX)
		return -EINVAL;
	return 0;
}

/* Parse a whole number p[0..n) no larger than max: 0 or -EINVAL. */
static int parse_whole(const char *p, size_t n, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';

		if (d > 9 || x > (max - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/* Grow an array to hold at least want entries of size sz. */
static int grow(void **p, size_t *cap, size_t want, size_t sz)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (want <= *cap)
		return 0;
	while (c < want) {
		if (c > SIZE_MAX / 2 / sz)
			return -ENOMEM;
		c *= 2;
	}
	q = realloc(*p, c * sz);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

void trn_lr_data_free(struct trn_lr_data *d)
{
	if (!d)
		return;
	free(d->off);
	free(d->idx);
	free(d->val);
	free(d->y);
	memset(d, 0, sizeof(*d));
}

void trn_mf_data_free(struct trn_mf_data *d)
{
	if (!d)
		return;
	free(d->user);
	free(d->item);
	free(d->rating);
	memset(d, 0, sizeof(*d));
}

/* Room for one more sample of up to k non-zeros. */
static int lr_reserve(struct trn_lr_data *d, size_t k)
{
	size_t cn = d->cap_n, cz = d->cap_nnz;
	int ret;

	if (d->n + 2 > cn) {
		ret = grow((void **)&d->off, &cn, d->n + 2, sizeof(*d->off));
		if (ret)
			return ret;
		cn = d->cap_n;
		ret = grow((void **)&d->y, &cn, d->n + 2, sizeof(*d->y));
		if (ret)
			return ret;
		d->cap_n = cn;
	}
	if (d->nnz + k > cz) {
		ret = grow((void **)&d->idx, &cz, d->nnz + k, sizeof(*d->idx));
		if (ret)
			return ret;
		cz = d->cap_nnz;
		ret = grow((void **)&d->val, &cz, d->nnz + k, sizeof(*d->val));
		if (ret)
			return ret;
		d->cap_nnz = cz;
	}
	return 0;
}

/* Make an empty data set valid (off[0] = 0, dim 1). */
static int lr_start(struct trn_lr_data *d)
{
	memset(d, 0, sizeof(*d));
	if (lr_reserve(d, 0))
		return -ENOMEM;
	d->off[0] = 0;
	d->dim = 1;
	return 0;
}

/* real: any finite label (regression), else 1, +1, -1 or 0. */
static int libsvm_parse(const char *buf, size_t len, const char *name, int real,
			struct trn_lr_data *out, char *err, size_t errlen)
{
	struct trn_lr_data d;
	struct scan s;
	char show[32];
	int ret;

	scan_init(&s, buf, len, name, err, errlen);
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (lr_start(&d))
		return scan_fail(&s, 0, -ENOMEM, "out of memory");
	while (scan_line(&s, &ret)) {
		size_t n = scan_token(&s);
		uint64_t prev = 0;
		double v;

		if (parse_num(buf + s.tok, n, &v) ||
		    (!real && v != 1 && v != -1 && v != 0) ||
		    (real && fabs(v) > FLT_MAX)) {
			ret = scan_fail(
				&s, s.tok, -EINVAL,
				real ? "bad label '%s' (a line starts with "
				       "its target, a finite number)"
				     : "bad label '%s' (a line starts with "
				       "the label 1, +1, -1 or 0)",
				shown(buf + s.tok, n, show, sizeof(show)));
			goto fail;
		}
		/* Every feature token takes at least 4 bytes ("1:1 "). */
		if (lr_reserve(&d, (s.le - s.cur) / 4 + 1)) {
			ret = scan_fail(&s, s.tok, -ENOMEM,
					"out of memory after %zu samples", d.n);
			goto fail;
		}
		d.y[d.n] = real ? (float)v : v > 0 ? 1.0f : -1.0f;
		while ((n = scan_token(&s))) {
			const char *p = buf + s.tok;
			const char *colon = memchr(p, ':', n);
			size_t ni = colon ? (size_t)(colon - p) : 0;
			uint64_t ix;
			double x;

			if (!colon) {
				ret = scan_fail(
					&s, s.tok, -EINVAL,
					"expected INDEX:VALUE, got "
					"'%s' (write features as "
					"index:value, e.g. 7:0.5)",
					shown(p, n, show, sizeof(show)));
				goto fail;
			}
			if (parse_whole(p, ni, TRN_LR_MAX_FEATURE, &ix) ||
			    ix == 0) {
				ret = scan_fail(
					&s, s.tok, -EINVAL,
					"bad feature index '%s' (use a whole "
					"number from 1 to %u)",
					shown(p, ni, show, sizeof(show)),
					TRN_LR_MAX_FEATURE);
				goto fail;
			}
			if (ix <= prev) {
				ret = scan_fail(&s, s.tok, -EINVAL,
						"feature index %llu after %llu "
						"(sort each line's features "
						"by index, each index once)",
						(unsigned long long)ix,
						(unsigned long long)prev);
				goto fail;
			}
			if (parse_num(colon + 1, n - ni - 1, &x)) {
				ret = scan_fail(&s, s.tok + ni + 1, -EINVAL,
						"bad value '%s' of feature "
						"%llu (use a finite decimal "
						"number, e.g. 0.5 or 1e-3)",
						shown(colon + 1, n - ni - 1,
						      show, sizeof(show)),
						(unsigned long long)ix);
				goto fail;
			}
			prev = ix;
			d.idx[d.nnz] = (uint32_t)ix;
			d.val[d.nnz] = (float)x;
			d.nnz++;
			if (ix + 1 > d.dim)
				d.dim = (uint32_t)(ix + 1);
		}
		d.n++;
		d.off[d.n] = d.nnz;
	}
	if (ret)
		goto fail;
	*out = d;
	return 0;
fail:
	trn_lr_data_free(&d);
	return ret;
}

static int mf_reserve(struct trn_mf_data *d, size_t want)
{
	size_t c;
	int ret;

	if (want <= d->cap)
		return 0;
	c = d->cap;
	ret = grow((void **)&d->user, &c, want, sizeof(*d->user));
	if (ret)
		return ret;
	c = d->cap;
	ret = grow((void **)&d->item, &c, want, sizeof(*d->item));
	if (ret)
		return ret;
	c = d->cap;
	ret = grow((void **)&d->rating, &c, want, sizeof(*d->rating));
	if (ret)
		return ret;
	d->cap = c;
	return 0;
}

int trn_ratings_parse(const char *buf, size_t len, const char *name,
		      struct trn_mf_data *out, char *err, size_t errlen)
{
	static const char *const fields[] = {"USER", "ITEM", "RATING"};
	struct trn_mf_data d;
	struct scan s;
	char show[32];
	int ret;

	scan_init(&s, buf, len, name, err, errlen);
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	while (scan_line(&s, &ret)) {
		uint64_t id[2], ts;
		double r = 0;
		size_t n;

		if (mf_reserve(&d, d.n + 1)) {
			ret = scan_fail(&s, s.cur, -ENOMEM,
					"out of memory after %zu ratings", d.n);
			goto fail;
		}
		for (int f = 0; f < 3; f++) {
			n = scan_token(&s);
			if (!n) {
				ret = scan_fail(&s, s.cur, -EINVAL,
						"missing %s (a line is USER "
						"ITEM RATING [TIMESTAMP])",
						fields[f]);
				goto fail;
			}
			if (f < 2 && parse_whole(buf + s.tok, n, TRN_MF_MAX_ID,
						 &id[f])) {
				ret = scan_fail(&s, s.tok, -EINVAL,
						"bad %s id '%s' (use a whole "
						"number from 0 to %u)",
						f ? "item" : "user",
						shown(buf + s.tok, n, show,
						      sizeof(show)),
						TRN_MF_MAX_ID);
				goto fail;
			}
			if (f == 2 && parse_num(buf + s.tok, n, &r)) {
				ret = scan_fail(&s, s.tok, -EINVAL,
						"bad rating '%s' (use a finite "
						"decimal number, e.g. 4 or "
						"3.5)",
						shown(buf + s.tok, n, show,
						      sizeof(show)));
				goto fail;
			}
		}
		n = scan_token(&s);
		if (n && parse_whole(buf + s.tok, n, UINT64_MAX, &ts)) {
			ret = scan_fail(
				&s, s.tok, -EINVAL,
				"bad timestamp '%s' (the optional "
				"4th field is a whole number)",
				shown(buf + s.tok, n, show, sizeof(show)));
			goto fail;
		}
		if (n && (n = scan_token(&s))) {
			ret = scan_fail(
				&s, s.tok, -EINVAL,
				"unexpected 5th field '%s' (a line is "
				"USER ITEM RATING [TIMESTAMP])",
				shown(buf + s.tok, n, show, sizeof(show)));
			goto fail;
		}
		d.user[d.n] = (uint32_t)id[0];
		d.item[d.n] = (uint32_t)id[1];
		d.rating[d.n] = (float)r;
		if (id[0] + 1 > d.users)
			d.users = (uint32_t)(id[0] + 1);
		if (id[1] + 1 > d.items)
			d.items = (uint32_t)(id[1] + 1);
		d.n++;
	}
	if (ret)
		goto fail;
	*out = d;
	return 0;
fail:
	trn_mf_data_free(&d);
	return ret;
}

/* Read a whole file (at most LOAD_MAX bytes) into *buf_out (malloc). */
static int read_file(const char *path, char **buf_out, size_t *len_out,
		     char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	char *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s (check the path)",
			 path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
			 "%s: not a regular file (give a data "
			 "file)",
			 path);
		close(fd);
		return -EINVAL;
	}
	if ((unsigned long long)st.st_size > LOAD_MAX) {
		snprintf(err, errlen,
			 "%s: %lld bytes, more than the %llu rdps-train "
			 "reads (split the data set)",
			 path, (long long)st.st_size, LOAD_MAX);
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory for %lld bytes", path,
			 (long long)st.st_size);
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "%s: read failed: %s", path,
				 n < 0 ? strerror(-ret) : "file shrank");
			free(buf);
			close(fd);
			return ret;
		}
		got += (size_t)n;
	}
	close(fd);
	*buf_out = buf;
	*len_out = got;
	return 0;
}

/* A file that parses to nothing is a mistake (a wrong path, a failed
 * export), not a data set: say so before someone divides by its size. */
static int no_samples(const char *path, const char *what, const char *line,
		      char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "%s: no %s in it (the file is empty or has only blank and "
		 "comment lines): give lines of %s",
		 path, what, line);
	return -EINVAL;
}

int trn_libsvm_parse(const char *buf, size_t len, const char *name,
		     struct trn_lr_data *out, char *err, size_t errlen)
{
	return libsvm_parse(buf, len, name, 0, out, err, errlen);
}

int trn_libsvm_parse_real(const char *buf, size_t len, const char *name,
			  struct trn_lr_data *out, char *err, size_t errlen)
{
	return libsvm_parse(buf, len, name, 1, out, err, errlen);
}

static int libsvm_load(const char *path, int real, struct trn_lr_data *out,
		       char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = read_file(path, &buf, &len, err, errlen);
	if (ret)
		return ret;
	ret = libsvm_parse(buf, len, path, real, out, err, errlen);
	free(buf);
	if (!ret && !out->n) {
		trn_lr_data_free(out);
		ret = no_samples(path, "samples", "'LABEL INDEX:VALUE ...'",
				 err, errlen);
	}
	return ret;
}

int trn_libsvm_load(const char *path, struct trn_lr_data *out, char *err,
		    size_t errlen)
{
	return libsvm_load(path, 0, out, err, errlen);
}

int trn_libsvm_load_real(const char *path, struct trn_lr_data *out, char *err,
			 size_t errlen)
{
	return libsvm_load(path, 1, out, err, errlen);
}

int trn_ratings_load(const char *path, struct trn_mf_data *out, char *err,
		     size_t errlen)
{
	char *buf;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = read_file(path, &buf, &len, err, errlen);
	if (ret)
		return ret;
	ret = trn_ratings_parse(buf, len, path, out, err, errlen);
	free(buf);
	if (!ret && !out->n) {
		trn_mf_data_free(out);
		ret = no_samples(path, "ratings",
				 "'USER ITEM RATING [TIMESTAMP]'", err, errlen);
	}
	return ret;
}

/* Generators ------------------------------------------------------------- */

static int gen_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int gen_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* Stream tags of trn_rng_seed(seed, tag, i). */
enum {
	GEN_LR_W = 1,
	GEN_LR_X,
	GEN_MF_U,
	GEN_MF_V,
	GEN_MF_R,
	GEN_POP_LR,
	GEN_POP_USER,
	GEN_POP_ITEM,
	GEN_LASSO_X,
	GEN_LASSO_A
};

#define GEN_NNZ_MAX 4096u

/* Popularity of n ids: uniform (cdf NULL) or a power law (data.h). */
struct gen_pop {
	double *cdf; /* n cumulative weights of ranks 1 .. n */
	uint64_t n, a, c;
};

static uint64_t gen_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static int gen_pop_init(struct gen_pop *p, uint64_t n, double s, uint64_t seed,
			uint64_t tag)
{
	struct trn_rng r;
	double sum = 0;

	memset(p, 0, sizeof(*p));
	p->n = n;
	if (s == 0)
		return 0;
	p->cdf = malloc(n * sizeof(*p->cdf));
	if (!p->cdf)
		return -ENOMEM;
	for (uint64_t k = 0; k < n; k++) {
		sum += pow((double)(k + 1), -s);
		p->cdf[k] = sum;
	}
	/* rank -> (rank x a + c) mod n is a bijection when gcd(a, n) = 1. */
	trn_rng_seed(&r, seed, tag, 0);
	p->a = 1 + trn_rng_below(&r, n);
	while (gen_gcd(p->a, n) != 1)
		p->a++;
	p->c = trn_rng_below(&r, n);
	return 0;
}

/* One id in [0, n); uniform draws stay those of the plain generator. */
static uint64_t gen_pop_draw(const struct gen_pop *p, struct trn_rng *r)
{
	double u;
	uint64_t lo = 0, hi;

	if (!p->cdf)
		return trn_rng_below(r, p->n);
	u = trn_rng_unif(r) * p->cdf[p->n - 1];
	hi = p->n - 1;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;

		if (p->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return (uint64_t)(((unsigned __int128)lo * p->a + p->c) % p->n);
}

/* Insert f into the ascending pick[0..k) unless it is there: 1 if
 * inserted, 0 if a duplicate. */
static uint32_t gen_insert(uint32_t *pick, uint32_t k, uint32_t f)
{
	uint32_t lo = 0, hi = k;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (pick[mid] < f)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < k && pick[lo] == f)
		return 0;
	memmove(pick + lo + 1, pick + lo, (k - lo) * sizeof(*pick));
	pick[lo] = f;
	return 1;
}

static int gen_zipf_bad(double s)
{
	return !(s >= 0 && s <= TRN_ZIPF_MAX);
}

int trn_lr_generate(const struct trn_lr_gen *g, uint64_t first, size_t count,
		    struct trn_lr_data *out, char *err, size_t errlen)
{
	struct trn_lr_data d;
	struct gen_pop pop;
	uint32_t *pick = NULL;
	double *w = NULL, xs;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!g->features || g->features > TRN_LR_MAX_FEATURE)
		return gen_fail(err, errlen, -EINVAL,
				"bad feature count %u: use 1 .. %u",
				g->features, TRN_LR_MAX_FEATURE);
	if (!g->nnz || g->nnz > g->features || g->nnz > GEN_NNZ_MAX)
		return gen_fail(err, errlen, -EINVAL,
				"bad non-zeros per sample %u: use 1 .. %u "
				"(and at most the feature count)",
				g->nnz, GEN_NNZ_MAX);
	if (!(g->scale > 0) || !(g->noise >= 0) || !isfinite(g->noise) ||
	    !isfinite(g->scale))
		return gen_fail(err, errlen, -EINVAL,
				"bad scale or noise: scale > 0, noise >= 0");
	if (gen_zipf_bad(g->zipf))
		return gen_fail(err, errlen, -EINVAL,
				"bad popularity exponent %g: use 0 (uniform) "
				".. %g",
				g->zipf, TRN_ZIPF_MAX);
	if (count > SIZE_MAX / 2 / g->nnz)
		return gen_fail(err, errlen, -ENOMEM, "too many samples");
	if (lr_start(&d))
		return gen_fail(err, errlen, -ENOMEM, "out of memory");
	if (gen_pop_init(&pop, g->features, g->zipf, g->seed, GEN_POP_LR)) {
		trn_lr_data_free(&d);
		return gen_fail(err, errlen, -ENOMEM, "out of memory");
	}
	w = malloc(((size_t)g->features + 1) * sizeof(*w));
	pick = malloc(g->nnz * sizeof(*pick));
	if (!w || !pick || lr_reserve(&d, count * g->nnz))
		goto fail;
	{
		size_t cn = d.cap_n;

		if (grow((void **)&d.off, &cn, count + 1, sizeof(*d.off)))
			goto fail;
		cn = d.cap_n;
		if (grow((void **)&d.y, &cn, count + 1, sizeof(*d.y)))
			goto fail;
		d.cap_n = cn;
	}
	w[0] = 0;
	for (uint32_t j = 1; j <= g->features; j++) {
		struct trn_rng r;

		trn_rng_seed(&r, g->seed, GEN_LR_W, j);
		w[j] = g->scale * trn_rng_normal(&r);
	}
	xs = 1.0 / sqrt((double)g->nnz);
	for (size_t i = 0; i < count; i++) {
		struct trn_rng r;
		double m = 0;
		uint32_t k = 0, tries = 0;

		trn_rng_seed(&r, g->seed, GEN_LR_X, first + i);
		/* nnz distinct features, kept sorted by insertion. */
		while (k < g->nnz) {
			uint32_t f =
				1 +
				(uint32_t)(tries++ < 64 * g->nnz
						   ? gen_pop_draw(&pop, &r)
						   : trn_rng_below(
							     &r, g->features));

			k += gen_insert(pick, k, f);
		}
		for (k = 0; k < g->nnz; k++) {
			float v = (float)(trn_rng_u64(&r) >> 63 ? xs : -xs);

			if (g->binary)
				v = (float)xs;
			d.idx[d.nnz + k] = pick[k];
			d.val[d.nnz + k] = g->binary ? 1.0f : v;
			m += w[pick[k]] * v;
		}
		m += g->noise * trn_rng_normal(&r);
		d.y[i] = m > 0 ? 1.0f : -1.0f;
		d.nnz += g->nnz;
		d.off[i + 1] = d.nnz;
		d.n++;
	}
	d.dim = g->features + 1;
	free(w);
	free(pick);
	free(pop.cdf);
	*out = d;
	return 0;
fail:
	free(w);
	free(pick);
	free(pop.cdf);
	trn_lr_data_free(&d);
	return gen_fail(err, errlen, ret, "out of memory for %zu samples",
			count);
}

/* Row i of a hidden factor matrix, from its own stream. */
static void mf_row(uint64_t seed, int tag, uint32_t i, uint32_t rank,
		   float *row)
{
	struct trn_rng r;
	double s = 1.0 / sqrt(sqrt((double)rank));

	trn_rng_seed(&r, seed, (uint64_t)tag, i);
	for (uint32_t f = 0; f < rank; f++)
		row[f] = (float)(s * trn_rng_normal(&r));
}

int trn_mf_generate(const struct trn_mf_gen *g, uint64_t first, size_t count,
		    struct trn_mf_data *out, char *err, size_t errlen)
{
	struct trn_mf_data d;
	struct gen_pop pu = {0}, pi = {0};
	float *u = NULL, *v = NULL;

	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if (!g->users || !g->items || g->users - 1 > TRN_MF_MAX_ID ||
	    g->items - 1 > TRN_MF_MAX_ID)
		return gen_fail(err, errlen, -EINVAL,
				"bad user or item count %u, %u: use 1 .. %u",
				g->users, g->items, TRN_MF_MAX_ID + 1);
	if (!g->rank || g->rank > 256)
		return gen_fail(err, errlen, -EINVAL,
				"bad rank %u: use 1 .. 256", g->rank);
	if (!(g->noise >= 0) || !isfinite(g->noise))
		return gen_fail(err, errlen, -EINVAL,
				"bad noise: use a number >= 0");
	if (gen_zipf_bad(g->zipf))
		return gen_fail(err, errlen, -EINVAL,
				"bad popularity exponent %g: use 0 (uniform) "
				".. %g",
				g->zipf, TRN_ZIPF_MAX);
	if (((uint64_t)g->users + g->items) * g->rank > (1ull << 26))
		return gen_fail(err, errlen, -EINVAL,
				"(users + items) x rank = %llu is more than "
				"2^26: use fewer users, items or a lower rank",
				((unsigned long long)g->users + g->items) *
					g->rank);
	u = malloc((size_t)g->users * g->rank * sizeof(*u));
	v = malloc((size_t)g->items * g->rank * sizeof(*v));
	if (!u || !v || mf_reserve(&d, count ? count : 1) ||
	    gen_pop_init(&pu, g->users, g->zipf, g->seed, GEN_POP_USER) ||
	    gen_pop_init(&pi, g->items, g->zipf, g->seed, GEN_POP_ITEM))
		goto fail;
	for (uint32_t i = 0; i < g->users; i++)
		mf_row(g->seed, GEN_MF_U, i, g->rank, u + (size_t)i * g->rank);
	for (uint32_t i = 0; i < g->items; i++)
		mf_row(g->seed, GEN_MF_V, i, g->rank, v + (size_t)i * g->rank);
	for (size_t i = 0; i < count; i++) {
		struct trn_rng r;
		uint32_t a, b;
		double dot = 0;

		trn_rng_seed(&r, g->seed, GEN_MF_R, first + i);
		a = (uint32_t)gen_pop_draw(&pu, &r);
		b = (uint32_t)gen_pop_draw(&pi, &r);
		for (uint32_t f = 0; f < g->rank; f++)
			dot += (double)u[(size_t)a * g->rank + f] *
			       v[(size_t)b * g->rank + f];
		d.user[i] = a;
		d.item[i] = b;
		d.rating[i] = (float)(dot + g->noise * trn_rng_normal(&r));
	}
	d.n = count;
	d.users = g->users;
	d.items = g->items;
	free(u);
	free(v);
	free(pu.cdf);
	free(pi.cdf);
	*out = d;
	return 0;
fail:
	free(u);
	free(v);
	free(pu.cdf);
	free(pi.cdf);
	trn_mf_data_free(&d);
	return gen_fail(err, errlen, -ENOMEM, "out of memory for %zu ratings",
			count);
}

int trn_lasso_generate(const struct trn_lasso_gen *g, struct trn_lr_data *out,
		       double *l1_out, char *err, size_t errlen)
{
	struct trn_lr_data d;
	uint32_t *pick = NULL, per_row;
	double *xs = NULL, l1 = 0;

	memset(out, 0, sizeof(*out));
	if (!g->samples || g->samples > TRN_LASSO_MAX_SAMPLES || !g->features ||
	    g->features > TRN_LASSO_MAX_FEATURES)
		return gen_fail(err, errlen, -EINVAL,
				"bad lasso size %u x %u: use 1 .. %u samples "
				"and 1 .. %u features",
				g->samples, g->features, TRN_LASSO_MAX_SAMPLES,
				TRN_LASSO_MAX_FEATURES);
	if (!(g->density >= 1e-4 && g->density <= 1))
		return gen_fail(err, errlen, -EINVAL,
				"bad density %g: use 1e-4 .. 1", g->density);
	if (!g->support || g->support > g->features)
		return gen_fail(err, errlen, -EINVAL,
				"bad support %u: use 1 .. the feature count %u",
				g->support, g->features);
	if (!(g->noise >= 0) || !isfinite(g->noise))
		return gen_fail(err, errlen, -EINVAL,
				"bad noise: use a number >= 0");
	per_row = (uint32_t)lround(g->density * g->features);
	if (!per_row)
		per_row = 1;
	if (lr_start(&d))
		return gen_fail(err, errlen, -ENOMEM, "out of memory");
	xs = calloc((size_t)g->features + 1, sizeof(*xs));
	pick = malloc(per_row * sizeof(*pick));
	if (!xs || !pick || lr_reserve(&d, (size_t)g->samples * per_row))
		goto fail;
	{
		size_t cn = d.cap_n;

		if (grow((void **)&d.off, &cn, (size_t)g->samples + 1,
			 sizeof(*d.off)))
			goto fail;
		cn = d.cap_n;
		if (grow((void **)&d.y, &cn, (size_t)g->samples + 1,
			 sizeof(*d.y)))
			goto fail;
		d.cap_n = cn;
	}
	/* The hidden x*: support distinct features, N(0, 1) values. */
	{
		struct trn_rng r;
		uint32_t k = 0;

		trn_rng_seed(&r, g->seed, GEN_LASSO_X, 0);
		while (k < g->support) {
			uint32_t f =
				1 + (uint32_t)trn_rng_below(&r, g->features);

			if (xs[f] != 0)
				continue;
			xs[f] = trn_rng_normal(&r);
			if (xs[f] == 0)
				continue;
			l1 += fabs(xs[f]);
			k++;
		}
	}
	for (uint32_t i = 0; i < g->samples; i++) {
		struct trn_rng r;
		double b = 0;
		uint32_t k = 0;

		trn_rng_seed(&r, g->seed, GEN_LASSO_A, i);
		while (k < per_row) {
			uint32_t f =
				1 + (uint32_t)trn_rng_below(&r, g->features);

			k += gen_insert(pick, k, f);
		}
		for (k = 0; k < per_row; k++) {
			float v = (float)trn_rng_normal(&r);

			d.idx[d.nnz + k] = pick[k];
			d.val[d.nnz + k] = v;
			b += (double)v * xs[pick[k]];
		}
		d.y[i] = (float)(b + g->noise * trn_rng_normal(&r));
		d.nnz += per_row;
		d.off[i + 1] = d.nnz;
		d.n++;
	}
	d.dim = g->features + 1;
	free(xs);
	free(pick);
	*out = d;
	if (l1_out)
		*l1_out = l1;
	return 0;
fail:
	free(xs);
	free(pick);
	trn_lr_data_free(&d);
	return gen_fail(err, errlen, -ENOMEM, "out of memory for %u samples",
			g->samples);
}
