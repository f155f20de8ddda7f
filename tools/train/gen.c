/* SPDX-License-Identifier: MIT */
/*
 * gen.c - "rdps-train gen": write the seeded synthetic data of a workload
 * as the text that "run --data" reads (LIBSVM for lr, "user item rating"
 * for mf, Criteo TSV for ctr): the training samples, and with --test-out
 * the held-out ones.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ctr.h"
#include "train.h"

static void gen_usage(FILE *f)
{
	fprintf(f, "Usage: rdps-train gen [options] -o FILE\n"
		   "\n"
		   "Write the generator's data set as text: LIBSVM lines "
		   "(lr), \"user item\n"
		   "rating\" lines (mf) or Criteo TSV (ctr), as rdps-train "
		   "run --data reads\n"
		   "them.\n"
		   "\n");
	trn_work_usage(f);
	fprintf(f, "Output:\n"
		   "  -o, --out=FILE        the training samples\n"
		   "      --test-out=FILE   also the held-out samples\n"
		   "  -h, --help            this help\n");
}

/* real: the labels as numbers (lasso's targets), else +1 / -1. */
static int write_lr(const char *path, const struct trn_lr_data *d, int real)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		tool_err("cannot create %s: %s", path, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (real)
			fprintf(f, "%.9g", d->y[i]);
		else
			fprintf(f, "%s", d->y[i] > 0 ? "+1" : "-1");
		for (size_t j = d->off[i]; j < d->off[i + 1]; j++)
			fprintf(f, " %u:%.9g", d->idx[j], d->val[j]);
		fputc('\n', f);
	}
	if (fclose(f)) {
		tool_err("writing %s: %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

static int write_mf(const char *path, const struct trn_mf_data *d)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		tool_err("cannot create %s: %s", path, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "%u %u %.9g\n", d->user[i], d->item[i],
			d->rating[i]);
	if (fclose(f)) {
		tool_err("writing %s: %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

/* first/count of the stream to path. */
static int gen_one(const struct trn_work_opts *w, uint64_t first,
		   uint64_t count, const char *path)
{
	char err[256];
	int rc;

	if (w->kind == TRN_LASSO) {
		struct trn_lasso_gen g = w->lag;
		struct trn_lr_data d;

		g.samples = (uint32_t)count;
		g.features = w->lrg.features;
		g.noise = w->lrg.noise;
		g.seed = w->seed;
		if (trn_lasso_generate(&g, &d, NULL, err, sizeof(err))) {
			tool_err("%s", err);
			return 1;
		}
		rc = write_lr(path, &d, 1);
		trn_lr_data_free(&d);
	} else if (w->kind == TRN_LR) {
		struct trn_lr_gen g = w->lrg;
		struct trn_lr_data d;

		g.seed = w->seed;
		if (trn_lr_generate(&g, first, count, &d, err, sizeof(err))) {
			tool_err("%s", err);
			return 1;
		}
		rc = write_lr(path, &d, 0);
		trn_lr_data_free(&d);
	} else if (w->kind == TRN_CTR) {
		struct trn_ctr_gen g = {w->lrg.features, w->lrg.zipf,
					w->lrg.noise, w->seed};
		FILE *f = fopen(path, "w");

		if (!f) {
			tool_err("cannot create %s: %s", path, strerror(errno));
			return 1;
		}
		rc = trn_ctr_write(&g, first, count, f, err, sizeof(err));
		if (rc)
			tool_err("%s", err);
		if (fclose(f) && !rc) {
			tool_err("writing %s: %s", path, strerror(errno));
			rc = 1;
		}
		return rc ? 1 : 0;
	} else {
		struct trn_mf_gen g = w->mfg;
		struct trn_mf_data d;

		g.seed = w->seed;
		if (trn_mf_generate(&g, first, count, &d, err, sizeof(err))) {
			tool_err("%s", err);
			return 1;
		}
		rc = write_mf(path, &d);
		trn_mf_data_free(&d);
	}
	return rc;
}

int trn_cmd_gen(int argc, char **argv)
{
	static const struct option long_opts[] = {
		TRN_WORK_LONGOPTS /* the workload options, then ours */
		{"out", required_argument, NULL, 'o'},
		{"test-out", required_argument, NULL, 3000},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct trn_work_opts w;
	enum trn_kind kind = TRN_LR;
	const char *out = NULL, *test_out = NULL;
	int ch, r;

	trn_prescan_kind(argc, argv, &kind);
	trn_work_defaults(&w, kind);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":W:D:N:b:e:o:h", long_opts,
				 NULL)) != -1) {
		r = trn_work_opt(ch, optarg, &w);
		if (r < 0)
			return 2;
		if (r == 0)
			continue;
		switch (ch) {
		case 'o':
			out = optarg;
			break;
		case 3000:
			test_out = optarg;
			break;
		case 'h':
			gen_usage(stdout);
			return 0;
		case ':':
			tool_err("option '%s' needs a value (see rdps-train "
				 "gen --help)",
				 argv[optind - 1]);
			return 2;
		default:
			tool_err("unknown option '%s' (see rdps-train gen "
				 "--help)",
				 argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		tool_err("unexpected argument '%s' (see rdps-train gen --help)",
			 argv[optind]);
		return 2;
	}
	if (!out) {
		tool_err("where to? give -o FILE (see rdps-train gen --help)");
		return 2;
	}
	if (w.data) {
		tool_err("gen writes generated data: drop --data");
		return 2;
	}
	if (trn_work_check(&w))
		return 2;
	if (gen_one(&w, 0, w.samples, out))
		return 1;
	if (test_out && w.kind == TRN_LASSO) {
		tool_err("--test-out: lasso has no held-out set; drop it");
		return 2;
	}
	if (test_out && gen_one(&w, w.samples, w.test_samples, test_out))
		return 1;
	return 0;
}
