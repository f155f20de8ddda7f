/* SPDX-License-Identifier: MIT */
/* spec.c - the straggler SPEC parser (grammar in spec.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "spec.h"

#define SPEC_HOW                                                           \
	"write W:Fx (worker W is F times slower, e.g. 1:3x), random:P:Fx " \
	"(each iteration each worker is F times slower with probability "  \
	"P, e.g. random:0.1:3x), load:T:D (every T s a CPU hog for D s "   \
	"beside a random worker, e.g. load:2:1) or none; join several "    \
	"with commas"

/* A number filling [p, p + n) exactly. */
static int num(const char *p, size_t n, double *v)
{
	char tmp[32], *end;

	if (!n || n >= sizeof(tmp) || strspn(p, "0123456789.eE+-") < n)
		return -EINVAL;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	*v = strtod(tmp, &end);
	return *end || !isfinite(*v) ? -EINVAL : 0;
}

/* "Fx": a factor from 1 to TRN_SPEC_FMAX. */
static int factor(const char *p, size_t n, double *f)
{
	if (n < 2 || p[n - 1] != 'x' || num(p, n - 1, f))
		return -EINVAL;
	return *f >= 1 && *f <= TRN_SPEC_FMAX ? 0 : -ERANGE;
}

static int item_fail(const char *s, const char *p, size_t n, const char *why,
		     char *err, size_t errlen)
{
	snprintf(err, errlen, "bad straggler item '%.*s' in '%s'%s: %s",
		 (int)(n > 40 ? 40 : n), p, s, why, SPEC_HOW);
	return -EINVAL;
}

static int parse_item(const char *s, const char *p, size_t n,
		      struct trn_spec_item *it, char *err, size_t errlen)
{
	const char *c1 = memchr(p, ':', n), *c2;
	size_t k;
	int r;

	memset(it, 0, sizeof(*it));
	if (!c1)
		return item_fail(s, p, n, "", err, errlen);
	k = (size_t)(c1 - p);
	if (k == 4 && !memcmp(p, "load", 4)) {
		const char *q = c1 + 1;
		size_t rest = n - k - 1;

		c2 = memchr(q, ':', rest);
		it->load = 1;
		if (!c2 || num(q, (size_t)(c2 - q), &it->t) ||
		    num(c2 + 1, rest - (size_t)(c2 - q) - 1, &it->d) ||
		    !(it->t >= 0.01 && it->t <= 3600) || !(it->d > 0) ||
		    it->d > it->t)
			return item_fail(s, p, n,
					 " (T is seconds from 0.01 to 3600, "
					 "D seconds in (0, T])",
					 err, errlen);
		return 0;
	}
	if (k == 6 && !memcmp(p, "random", 6)) {
		const char *q = c1 + 1;
		size_t rest = n - k - 1;

		c2 = memchr(q, ':', rest);
		if (!c2)
			return item_fail(s, p, n, "", err, errlen);
		it->random = 1;
		if (num(q, (size_t)(c2 - q), &it->p) || !(it->p > 0) ||
		    it->p > 1)
			return item_fail(s, p, n,
					 " (P is a probability in (0, 1])", err,
					 errlen);
		r = factor(c2 + 1, rest - (size_t)(c2 - q) - 1, &it->f);
	} else {
		unsigned long w = 0;

		if (!k || k > 6 || strspn(p, "0123456789") < k)
			return item_fail(s, p, n, " (W is a worker rank)", err,
					 errlen);
		for (size_t i = 0; i < k; i++)
			w = w * 10 + (unsigned long)(p[i] - '0');
		it->worker = (unsigned)w;
		r = factor(c1 + 1, n - k - 1, &it->f);
	}
	if (r == -ERANGE)
		return item_fail(s, p, n, " (F is from 1 to 100)", err, errlen);
	if (r)
		return item_fail(s, p, n, " (F is a number followed by x)", err,
				 errlen);
	return 0;
}

int trn_spec_parse(const char *s, struct trn_spec *out, char *err,
		   size_t errlen)
{
	struct trn_spec sp;
	const char *p = s;

	memset(&sp, 0, sizeof(sp));
	if (!s || !*s) {
		snprintf(err, errlen, "empty straggler spec: %s", SPEC_HOW);
		return -EINVAL;
	}
	if (!strcmp(s, "none")) {
		*out = sp;
		return 0;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		struct trn_spec_item *it = &sp.item[sp.n];

		if (sp.n == TRN_SPEC_MAX) {
			snprintf(err, errlen,
				 "too many straggler items in '%s': at most %d",
				 s, TRN_SPEC_MAX);
			return -EINVAL;
		}
		if (!n)
			return item_fail(s, p, n, " (empty item)", err, errlen);
		if (parse_item(s, p, n, it, err, errlen))
			return -EINVAL;
		for (unsigned i = 0; i < sp.n; i++) {
			if (it->load && sp.item[i].load) {
				snprintf(err, errlen,
					 "two load items in '%s': give one "
					 "load:T:D",
					 s);
				return -EINVAL;
			}
			if (!it->random && !it->load && !sp.item[i].random &&
			    !sp.item[i].load &&
			    sp.item[i].worker == it->worker) {
				snprintf(err, errlen,
					 "worker %u is slowed twice in '%s': "
					 "give each worker one W:Fx",
					 it->worker, s);
				return -EINVAL;
			}
		}
		sp.n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = sp;
	return 0;
}

int trn_spec_check(const struct trn_spec *sp, unsigned workers, char *err,
		   size_t errlen)
{
	for (unsigned i = 0; i < sp->n; i++) {
		if (!sp->item[i].random && !sp->item[i].load &&
		    sp->item[i].worker >= workers) {
			snprintf(err, errlen,
				 "straggler %u:%gx names worker %u, but the "
				 "job has workers 0 .. %u: pick one of those",
				 sp->item[i].worker, sp->item[i].f,
				 sp->item[i].worker, workers - 1);
			return -EINVAL;
		}
	}
	return 0;
}

double trn_spec_factor(const struct trn_spec *sp, uint64_t seed,
		       unsigned worker, uint64_t iter)
{
	double f = 1.0;

	for (unsigned i = 0; i < sp->n; i++) {
		const struct trn_spec_item *it = &sp->item[i];

		if (it->load) {
			continue; /* real contention, not a factor */
		} else if (!it->random) {
			if (it->worker == worker)
				f *= it->f;
		} else {
			struct trn_rng r;

			trn_rng_seed(&r, seed ^ 0x5354524147ull, i,
				     ((uint64_t)worker << 40) ^ iter);
			if (trn_rng_unif(&r) < it->p)
				f *= it->f;
		}
	}
	return f;
}

int trn_spec_load(const struct trn_spec *sp, double *t_out, double *d_out)
{
	for (unsigned i = 0; i < sp->n; i++)
		if (sp->item[i].load) {
			*t_out = sp->item[i].t;
			*d_out = sp->item[i].d;
			return 1;
		}
	return 0;
}

void trn_spec_str(const struct trn_spec *sp, char *buf, size_t len)
{
	size_t used = 0;

	if (!len)
		return;
	buf[0] = '\0';
	if (!sp->n) {
		snprintf(buf, len, "none");
		return;
	}
	for (unsigned i = 0; i < sp->n && used < len; i++) {
		const struct trn_spec_item *it = &sp->item[i];
		int n;

		if (it->load)
			n = snprintf(buf + used, len - used, "%sload:%g:%g",
				     i ? "," : "", it->t, it->d);
		else if (it->random)
			n = snprintf(buf + used, len - used, "%srandom:%g:%gx",
				     i ? "," : "", it->p, it->f);
		else
			n = snprintf(buf + used, len - used, "%s%u:%gx",
				     i ? "," : "", it->worker, it->f);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
