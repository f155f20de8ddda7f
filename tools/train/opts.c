/* SPDX-License-Identifier: MIT */
/* opts.c - the workload options shared by rdps-train run and experiment. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ctr.h"
#include "train.h"

void trn_work_defaults(struct trn_work_opts *w, enum trn_kind kind)
{
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	w->holdout = 0.1;
	w->seed = 1;
	w->epochs = 10;
	w->batch = 100;
	w->lrg.features = 5000;
	w->lrg.nnz = 40;
	w->lrg.scale = 3.0;
	w->lrg.noise = 1.0;
	w->mfg.users = 4000;
	w->mfg.items = 4000;
	w->mfg.rank = 10;
	w->mfg.noise = 0.1;
	w->lag.density = 0.01;
	w->lag.support = 100;
	if (kind == TRN_LASSO) {
		/* The seed's generated problems (1000 x 10000, density up
		 * to 0.1) made 10 x 2 times larger, 10M non-zeros: there a
		 * superstep takes a millisecond, and time to target would be
		 * a fraction of a second. One clock is one Frank-Wolfe
		 * superstep. */
		w->samples = 10000;
		w->lrg.features = 20000;
		w->lag.density = 0.05;
		w->lrg.noise = 0.1;
		w->epochs = 200;
		w->clocks_per_epoch = 1;
	} else if (kind == TRN_LR) {
		/* Sized so that BSP needs over 20 clocks and several seconds
		 * to the experiment's target on 2 cores, with any straggler
		 * spec: measured, 40 of 80 clocks (uniform) and 29 (--zipf
		 * 1.1). At 400,000 samples of 40 among 5,000 features it took
		 * 25 to 31 clocks of under 0.05 s, one to three seconds: a
		 * scheduler hiccup moved a speedup by a third. More samples
		 * alone reach the target in fewer clocks; more features and
		 * non-zeros make the problem harder and each clock longer. */
		w->samples = 800000;
		w->lrg.features = 20000;
		w->lrg.nnz = 100;
		w->test_samples = 5000;
		w->lr = 0.5;
		w->clocks_per_epoch = 8;
	} else if (kind == TRN_CTR) {
		/* Criteo-like: 26 fields of 10000 ids each, power-law. */
		w->samples = 100000;
		w->test_samples = 5000;
		w->lrg.features = 10000;
		w->lrg.zipf = 1.1;
		w->lrg.noise = 0.5;
		w->lr = 0.05;
		w->epochs = 3;
		w->clocks_per_epoch = 5;
		w->init_sd = 0.01;
	} else {
		w->samples = 2000000;
		w->test_samples = 20000;
		w->lr = 0.05;
		w->l2 = 0.01;
		w->clocks_per_epoch = 10;
	}
	if (kind != TRN_CTR)
		w->init_sd = 0.1;
}

int trn_parse_kind(const char *s, enum trn_kind *out)
{
	if (!strcmp(s, "lr")) {
		*out = TRN_LR;
		return 0;
	}
	if (!strcmp(s, "mf")) {
		*out = TRN_MF;
		return 0;
	}
	if (!strcmp(s, "lasso")) {
		*out = TRN_LASSO;
		return 0;
	}
	if (!strcmp(s, "ctr")) {
		*out = TRN_CTR;
		return 0;
	}
	tool_err("unknown workload '%s': use lr (sparse logistic regression), "
		 "mf (matrix factorization), lasso (Frank-Wolfe) or ctr "
		 "(click-through, embedding tables)",
		 s);
	return -EINVAL;
}

const char *trn_kind_name(enum trn_kind kind)
{
	return kind == TRN_LR	 ? "lr"
	       : kind == TRN_MF	 ? "mf"
	       : kind == TRN_CTR ? "ctr"
				 : "lasso";
}

void trn_prescan_kind(int argc, char **argv, enum trn_kind *out)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		enum trn_kind k;

		if (!strcmp(a, "--"))
			break;
		if (!strncmp(a, "--workload=", 11))
			v = a + 11;
		else if (!strcmp(a, "--workload") || !strcmp(a, "-W"))
			v = i + 1 < argc ? argv[i + 1] : NULL;
		else if (!strncmp(a, "-W", 2))
			v = a + 2;
		if (v && !strcmp(v, "lr"))
			k = TRN_LR;
		else if (v && !strcmp(v, "mf"))
			k = TRN_MF;
		else if (v && !strcmp(v, "lasso"))
			k = TRN_LASSO;
		else if (v && !strcmp(v, "ctr"))
			k = TRN_CTR;
		else
			continue;
		*out = k;
	}
}

uint64_t trn_run_seed(const struct trn_work_opts *w)
{
	/* Repeat 0 keeps --seed: the runs of before repeats existed. */
	return w->seed ^ ((uint64_t)w->repeat * 0x9e3779b97f4a7c15ull);
}

int trn_parse_double(const char *s, const char *what, double lo, double hi,
		     double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
		tool_err("bad %s '%s': use a number from %g to %g", what, s, lo,
			 hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int count_u32(const char *s, const char *what, uint64_t lo, uint64_t hi,
		     uint32_t *out)
{
	uint64_t v;

	if (tool_parse_count(s, what, lo, hi, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int trn_work_opt(int opt, const char *arg, struct trn_work_opts *w)
{
	double d;

	switch (opt) {
	case 'W':
		/* trn_prescan_kind() already set the workload's defaults. */
		return trn_parse_kind(arg, &w->kind);
	case 'D':
		w->data = arg;
		return 0;
	case 1000:
		w->test = arg;
		return 0;
	case 1001:
		return trn_parse_double(arg, "holdout fraction", 0.001, 0.9,
					&w->holdout);
	case 'N':
		return tool_parse_count(arg, "sample count", 1, 100000000,
					&w->samples);
	case 1002:
		return tool_parse_count(arg, "held-out sample count", 1,
					10000000, &w->test_samples);
	case 1003:
		return count_u32(arg, "feature count", 1, TRN_LR_MAX_FEATURE,
				 &w->lrg.features);
	case 1004:
		return count_u32(arg, "non-zeros per sample", 1, 4096,
				 &w->lrg.nnz);
	case 1005:
		if (trn_parse_double(arg, "noise", 0, 1e6, &d))
			return -EINVAL;
		w->lrg.noise = w->mfg.noise = d;
		return 0;
	case 1006:
		return count_u32(arg, "user count", 1, TRN_MF_MAX_ID + 1ull,
				 &w->mfg.users);
	case 1007:
		return count_u32(arg, "item count", 1, TRN_MF_MAX_ID + 1ull,
				 &w->mfg.items);
	case 1008:
		return count_u32(arg, "rank", 1, 256, &w->rank);
	case 1012:
		return count_u32(arg, "true rank", 1, 256, &w->mfg.rank);
	case 1009:
		return trn_parse_double(arg, "learning rate", 1e-9, 1e3,
					&w->lr);
	case 1010:
		return trn_parse_double(arg, "l2 regularisation", 0, 1e3,
					&w->l2);
	case 'b':
		return count_u32(arg, "mini-batch size", 1, 1000000, &w->batch);
	case 'e':
		return tool_parse_count(arg, "epoch count", 1, 100000,
					&w->epochs);
	case 1011:
		return tool_parse_count(arg, "seed", 0, UINT64_MAX, &w->seed);
	case 1013:
		return count_u32(arg, "clocks per epoch", 1, 100000,
				 &w->clocks_per_epoch);
	case 1014:
		if (trn_parse_double(arg, "popularity exponent --zipf", 0,
				     TRN_ZIPF_MAX, &d))
			return -EINVAL;
		w->lrg.zipf = w->mfg.zipf = d;
		return 0;
	case 1015:
		w->lrg.binary = 1;
		return 0;
	case 1016:
		return trn_parse_double(arg, "lasso density", 1e-4, 1,
					&w->lag.density);
	case 1017:
		return count_u32(arg, "lasso support", 1,
				 TRN_LASSO_MAX_FEATURES, &w->lag.support);
	case 1018:
		return trn_parse_double(arg, "L1 radius", 1e-9, 1e9,
					&w->radius);
	case 1019:
		return count_u32(arg, "repeat index", 0, 1000, &w->repeat);
	default:
		return 1;
	}
}

int trn_work_check(const struct trn_work_opts *w)
{
	if (w->kind == TRN_LASSO && w->test) {
		tool_err("--test: lasso minimises its objective on --data "
			 "itself; drop --test");
		return -EINVAL;
	}
	if (w->test && !w->data) {
		tool_err("--test needs --data (the generator makes its own "
			 "held-out samples)");
		return -EINVAL;
	}
	if (!w->data && w->kind == TRN_LR && w->lrg.nnz > w->lrg.features) {
		tool_err("--nnz %u is more than --features %u: a sample has "
			 "at most every feature once",
			 w->lrg.nnz, w->lrg.features);
		return -EINVAL;
	}
	if (!w->data && w->kind == TRN_LASSO &&
	    (w->samples > TRN_LASSO_MAX_SAMPLES ||
	     w->lrg.features > TRN_LASSO_MAX_FEATURES ||
	     w->lag.support > w->lrg.features)) {
		tool_err("lasso generator: --samples %" PRIu64
			 " (at most %u), --features %u (at most %u), "
			 "--support %u (at most --features): lower the one "
			 "out of range",
			 w->samples, TRN_LASSO_MAX_SAMPLES, w->lrg.features,
			 TRN_LASSO_MAX_FEATURES, w->lag.support);
		return -EINVAL;
	}
	if (w->kind == TRN_CTR && w->rank > TRN_CTR_MAX_RANK) {
		tool_err("--rank %u: the ctr factorization machine's rank is "
			 "at most %u",
			 w->rank, TRN_CTR_MAX_RANK);
		return -EINVAL;
	}
	if (!w->data && w->kind == TRN_MF &&
	    ((uint64_t)w->mfg.users + w->mfg.items) *
			    (w->rank ? w->rank : w->mfg.rank) >
		    (1ull << 26)) {
		tool_err("(--users + --items) x --rank is more than 2^26 "
			 "parameters: use fewer users, items or a lower "
			 "rank");
		return -EINVAL;
	}
	return 0;
}

void trn_work_usage(FILE *f)
{
	struct trn_work_opts l, m, a, c;

	trn_work_defaults(&c, TRN_CTR);
	trn_work_defaults(&l, TRN_LR);
	trn_work_defaults(&m, TRN_MF);
	trn_work_defaults(&a, TRN_LASSO);
	fprintf(f,
		"Workload and data:\n"
		"  -W, --workload=lr|mf|lasso|ctr  sparse logistic "
		"regression, matrix\n"
		"                        factorization, LASSO by Frank-Wolfe "
		"or click-through\n"
		"                        over embedding tables (lr); it sets "
		"the defaults below\n"
		"  -D, --data=FILE       training data: LIBSVM text (lr; lasso "
		"with real\n"
		"                        targets) or \"user item rating\" "
		"lines "
		"(mf), Criteo TSV\n"
		"                        (ctr); default: the seeded "
		"generator\n"
		"      --test=FILE       held-out data (default: --holdout of "
		"--data)\n"
		"      --holdout=FRAC    fraction of --data held out (%g)\n"
		"  -N, --samples=N       generator: training samples or "
		"ratings (lr %" PRIu64 ",\n"
		"                        mf %" PRIu64 ", ctr %" PRIu64 ")\n"
		"      --test-samples=N  generator: held-out ones (lr %" PRIu64
		", mf %" PRIu64 ",\n"
		"                        ctr %" PRIu64 ")\n"
		"      --features=N      lr generator: features (%u); ctr: "
		"ids per\n"
		"                        categorical field (%u)\n"
		"      --nnz=N           lr generator: non-zeros per sample "
		"(%u)\n"
		"      --noise=X         generator noise: lr label noise "
		"(%g), mf rating\n"
		"                        noise (%g)\n"
		"      --zipf=S          generator: power-law popularity of "
		"lr features and\n"
		"                        mf users and items, rank r drawn "
		"as r^-S, as in real\n"
		"                        sparse data (0: uniform)\n"
		"      --binary          lr generator: feature values 1, as "
		"in Dorothea or\n"
		"                        Criteo (+-1/sqrt(nnz))\n"
		"Lasso (min |Ax - y|^2 / 2m, |x|_1 <= radius; one clock is one "
		"Frank-Wolfe\n"
		"superstep, --epochs x --clocks-per-epoch of them: %" PRIu64
		"):\n"
		"  -N, --features, --noise  the generator's rows (%" PRIu64
		"), columns (%u)\n"
		"                        and target noise (%g)\n"
		"      --density=X       generator: non-zeros of A per entry "
		"(%g)\n"
		"      --support=N       generator: non-zeros of the hidden "
		"x* (%u)\n"
		"      --radius=T        L1 radius (generator: |x*|_1, a file: "
		"1)\n"
		"      --users=N, --items=N  mf generator (%u, %u)\n"
		"      --true-rank=N     mf generator: rank of the hidden "
		"factors (%u)\n"
		"      --rank=N          mf model rank (the true rank); ctr: "
		"factorization\n"
		"                        machine rank (0: logistic "
		"regression)\n"
		"      --seed=N          seed of data, partitions, "
		"stragglers (%" PRIu64 ")\n"
		"      --repeat=K        repeat K of a run: other sample "
		"orders and straggler\n"
		"                        draws, the same data (0)\n"
		"SGD:\n"
		"      --lr=X            learning rate (lr %g, mf %g)\n"
		"      --l2=X            mf L2 regularisation (%g)\n"
		"  -b, --batch=N         mini-batch size (%u)\n"
		"  -e, --epochs=N        epoch-equivalents to train: every "
		"model processes\n"
		"                        N x the training samples (%" PRIu64
		")\n"
		"      --clocks-per-epoch=K  an iteration (one clock) is 1/K "
		"of a worker's\n"
		"                        partition (lr %u, mf %u)\n",
		l.holdout, l.samples, m.samples, c.samples, l.test_samples,
		m.test_samples, c.test_samples, l.lrg.features, c.lrg.features,
		l.lrg.nnz, l.lrg.noise, m.mfg.noise,
		a.epochs * a.clocks_per_epoch, a.samples, a.lrg.features,
		a.lrg.noise, a.lag.density, a.lag.support, m.mfg.users,
		m.mfg.items, m.mfg.rank, l.seed, l.lr, m.lr, m.l2, l.batch,
		l.epochs, l.clocks_per_epoch, m.clocks_per_epoch);
}

int trn_work_argv(const struct trn_work_opts *w, const char **argv, int max,
		  char *buf, size_t buflen)
{
	size_t used = 0;
	int n = 0;

/* Append "--name" and its printf-formatted value. */
#define ARG(name, ...)                                                 \
	do {                                                           \
		int k_;                                                \
		if (n + 2 > max)                                       \
			return -ENOSPC;                                \
		argv[n++] = name;                                      \
		k_ = snprintf(buf + used, buflen - used, __VA_ARGS__); \
		if (k_ < 0 || (size_t)k_ >= buflen - used)             \
			return -ENOSPC;                                \
		argv[n++] = buf + used;                                \
		used += (size_t)k_ + 1;                                \
	} while (0)

	ARG("--workload", "%s", trn_kind_name(w->kind));
	if (w->data) {
		ARG("--data", "%s", w->data);
		if (w->test)
			ARG("--test", "%s", w->test);
		else
			ARG("--holdout", "%.17g", w->holdout);
	} else {
		ARG("--samples", "%" PRIu64, w->samples);
		if (w->kind != TRN_LASSO)
			ARG("--test-samples", "%" PRIu64, w->test_samples);
		if (w->kind == TRN_LASSO) {
			ARG("--features", "%u", w->lrg.features);
			ARG("--noise", "%.17g", w->lrg.noise);
			ARG("--density", "%.17g", w->lag.density);
			ARG("--support", "%u", w->lag.support);
		} else if (w->kind == TRN_CTR) {
			ARG("--features", "%u", w->lrg.features);
			ARG("--noise", "%.17g", w->lrg.noise);
			ARG("--zipf", "%.17g", w->lrg.zipf);
		} else if (w->kind == TRN_LR) {
			ARG("--features", "%u", w->lrg.features);
			ARG("--nnz", "%u", w->lrg.nnz);
			ARG("--noise", "%.17g", w->lrg.noise);
			ARG("--zipf", "%.17g", w->lrg.zipf);
			if (w->lrg.binary && n + 1 > max)
				return -ENOSPC;
			if (w->lrg.binary)
				argv[n++] = "--binary";
		} else {
			ARG("--users", "%u", w->mfg.users);
			ARG("--items", "%u", w->mfg.items);
			ARG("--true-rank", "%u", w->mfg.rank);
			ARG("--noise", "%.17g", w->mfg.noise);
			ARG("--zipf", "%.17g", w->mfg.zipf);
		}
	}
	if (w->rank)
		ARG("--rank", "%u", w->rank);
	if (w->radius > 0)
		ARG("--radius", "%.17g", w->radius);
	if (w->kind != TRN_LASSO)
		ARG("--lr", "%.17g", w->lr);
	ARG("--l2", "%.17g", w->l2);
	ARG("--batch", "%u", w->batch);
	ARG("--epochs", "%" PRIu64, w->epochs);
	ARG("--seed", "%" PRIu64, w->seed);
	if (w->repeat)
		ARG("--repeat", "%u", w->repeat);
	ARG("--clocks-per-epoch", "%u", w->clocks_per_epoch);
#undef ARG
	return n;
}
