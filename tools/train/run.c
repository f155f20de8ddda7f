/* SPDX-License-Identifier: MIT */
/*
 * run.c - "rdps-train run": one worker of a training job, started by
 * rdps-launch (or srun/mpirun through rdps-run) with the job in RDPS_*.
 *
 * Every worker builds the same data (the generator makes only this
 * worker's share of the training samples; a file is read whole and split
 * by a seeded shuffle) and owns a fixed partition of it. An iteration
 * pulls the model, runs mini-batch SGD over the partition on a local copy
 * and pushes the summed change (sparse or dense, whichever is smaller),
 * then calls rdps_clock(); ctr instead pulls and pushes the rows of each
 * mini-batch (ctr.c). A second table, "stats", holds per worker the
 * samples processed and the seconds spent on them; rank 0 reads it for the
 * progress line and A-BSP reads it to stop after the same number of
 * epoch-equivalents as the other models.
 *
 * A-BSP: the partition is walked by a cursor over a per-pass shuffle.
 * Between mini-batches the worker asks rdps_cut_poll() whether the round
 * was cut; if so it pushes what it has and ends the iteration, and the
 * next one starts at the cursor: its unprocessed samples first. A worker
 * that gets through its whole partition calls rdps_cut().
 *
 * Stragglers and pacing: after each mini-batch the worker sleeps until
 * its wall time in the iteration is pace x F x the CPU time it used, F
 * being the straggler factor of (worker, iteration). pace (default
 * 1.25 x workers / cores, at least 1) makes W workers on fewer cores
 * behave like W machines: each is busy at most 1/pace of the time, so the
 * cores are not oversubscribed and a straggler that sleeps does not give
 * the others a speed they would not have on their own machines.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "ctr.h"
#include "load.h"
#include "rng.h"
#include "train.h"

struct run_opts {
	struct trn_work_opts w;
	struct trn_spec spec;
	char spec_text[256];
	double pace; /* 0: automatic */
	const char *csv;
	const char *save; /* --save-model: rank 0 writes the final model */
	int quiet;
	int check_once;
	enum rdps_poll_mode poll_mode;
};

/* What one worker trains on. */
struct run_data {
	struct trn_lr_data lr_train, lr_test;
	struct trn_mf_data mf_train, mf_test;
	struct trn_ctr_data ctr_train, ctr_test;
	int test_in_train; /* a file's holdout: test ids index the train set */
	uint32_t *part;	   /* this worker's samples (indices into train) */
	size_t npart;
	uint32_t *test_ids; /* NULL: the whole test set */
	size_t ntest;
	uint64_t total; /* training samples of all workers */
};

static void run_usage(FILE *f)
{
	fprintf(f, "Usage: rdps-launch [launch options] -- rdps-train run "
		   "[options]\n"
		   "\n"
		   "One worker of a training job: mini-batch SGD on its "
		   "partition of the data,\n"
		   "the model in an rdps table, the job's consistency model "
		   "from RDPS_MODEL\n"
		   "(bsp, ssp, asp or absp). Rank 0 prints one progress line "
		   "per clock (at most\n"
		   "one a second): clock, held-out loss, samples/s and the "
		   "slowest worker.\n"
		   "\n"
		   "  rdps-launch -w 4 -m absp -- rdps-train run --workload lr "
		   "--stragglers 1:3x\n"
		   "\n");
	trn_work_usage(f);
	fprintf(f, "Run:\n"
		   "  -S, --stragglers=SPEC  slow workers down: W:Fx (worker W "
		   "F times slower),\n"
		   "                         random:P:Fx (each iteration, "
		   "probability P), joined\n"
		   "                         by commas, or none (none);\n"
		   "                         load:T:D: every T s a CPU hog "
		   "for D s on the core\n"
		   "                         of a random worker (workers "
		   "then pinned to cores)\n"
		   "      --pace=X           each worker busy at most 1/X of "
		   "the time, so that W\n"
		   "                         workers on fewer cores act as W "
		   "machines (1.25 x\n"
		   "                         workers / cores, at least 1)\n"
		   "      --csv=FILE         rank 0 appends 'time_s,clock,"
		   "worker,loss' rows\n"
		   "      --check-once       count every sample's processing: "
		   "exactly once per\n"
		   "                         pass over the partition, and the "
		   "shards saw every\n"
		   "                         push; prints one line per worker, "
		   "exit 1 if not\n"
		   "      --save-model=FILE  rank 0 writes the final "
		   "parameters to FILE\n"
		   "                         (float32, host order): a bsp job "
		   "resumed with\n"
		   "                         rdps-launch --resume ends with "
		   "the same bytes;\n"
		   "                         ctr: a text file, the dense part "
		   "and every\n"
		   "                         embedding row by key (see "
		   "tools/train/ctr.h)\n"
		   "  -P, --poll=MODE        worker polling: busy, adaptive or "
		   "event (adaptive)\n"
		   "  -q, --quiet            no progress lines\n"
		   "  -h, --help             this help\n");
}

static int run_parse(int argc, char **argv, struct run_opts *o)
{
	static const struct option long_opts[] = {
		TRN_WORK_LONGOPTS /* the workload options, then ours */
		{"stragglers", required_argument, NULL, 'S'},
		{"pace", required_argument, NULL, 2000},
		{"csv", required_argument, NULL, 2001},
		{"check-once", no_argument, NULL, 2002},
		{"save-model", required_argument, NULL, 2003},
		{"poll", required_argument, NULL, 'P'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum trn_kind kind = TRN_LR;
	char err[512];
	int ch, r;

	memset(o, 0, sizeof(*o));
	trn_prescan_kind(argc, argv, &kind);
	trn_work_defaults(&o->w, kind);
	o->poll_mode = RDPS_POLL_ADAPTIVE;
	snprintf(o->spec_text, sizeof(o->spec_text), "none");
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":W:D:N:b:e:S:P:qh", long_opts,
				 NULL)) != -1) {
		r = trn_work_opt(ch, optarg, &o->w);
		if (r < 0)
			return 2;
		if (r == 0)
			continue;
		switch (ch) {
		case 'S':
			if (trn_spec_parse(optarg, &o->spec, err,
					   sizeof(err))) {
				tool_err("%s", err);
				return 2;
			}
			trn_spec_str(&o->spec, o->spec_text,
				     sizeof(o->spec_text));
			break;
		case 2000:
			if (trn_parse_double(optarg, "pace", 1, 100, &o->pace))
				return 2;
			break;
		case 2001:
			o->csv = optarg;
			break;
		case 2002:
			o->check_once = 1;
			break;
		case 2003:
			o->save = optarg;
			break;
		case 'P': {
			enum rdps_tp_poll_mode pm;

			if (tool_parse_poll(optarg, &pm))
				return 2;
			o->poll_mode = pm == RDPS_TP_POLL_BUSY ? RDPS_POLL_BUSY
				       : pm == RDPS_TP_POLL_EVENT
					       ? RDPS_POLL_EVENT
					       : RDPS_POLL_ADAPTIVE;
			break;
		}
		case 'q':
			o->quiet = 1;
			break;
		case 'h':
			run_usage(stdout);
			return 1;
		case ':':
			tool_err("option '%s' needs a value (see rdps-train "
				 "run --help)",
				 argv[optind - 1]);
			return 2;
		default:
			tool_err("unknown option '%s' (see rdps-train run "
				 "--help)",
				 argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		tool_err("unexpected argument '%s' (see rdps-train run --help)",
			 argv[optind]);
		return 2;
	}
	return trn_work_check(&o->w) ? 2 : 0;
}

uint64_t trn_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void trn_sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull),
			      (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Fisher-Yates with the stream (seed, tag, i). */
static void shuffle(uint32_t *a, size_t n, uint64_t seed, uint64_t tag,
		    uint64_t i)
{
	struct trn_rng r;

	trn_rng_seed(&r, seed, tag, i);
	for (size_t k = n; k > 1; k--) {
		size_t j = (size_t)trn_rng_below(&r, k);
		uint32_t t = a[k - 1];

		a[k - 1] = a[j];
		a[j] = t;
	}
}

static void data_free(struct run_data *d)
{
	trn_lr_data_free(&d->lr_train);
	trn_lr_data_free(&d->lr_test);
	trn_mf_data_free(&d->mf_train);
	trn_mf_data_free(&d->mf_test);
	trn_ctr_data_free(&d->ctr_train);
	trn_ctr_data_free(&d->ctr_test);
	free(d->part);
	free(d->test_ids);
	memset(d, 0, sizeof(*d));
}

/* The [lo, hi) share of rank among workers of n items. */
static void share(uint64_t n, unsigned rank, unsigned workers, uint64_t *lo,
		  uint64_t *hi)
{
	*lo = n * rank / workers;
	*hi = n * (rank + 1) / workers;
}

static int data_build(const struct trn_work_opts *w, unsigned rank,
		      unsigned workers, struct run_data *d)
{
	char err[512];
	uint64_t lo, hi;
	size_t n;
	int ret;

	memset(d, 0, sizeof(*d));
	if (!w->data) {
		/* Only this worker's share of the stream, then the
		 * held-out samples that follow the training ones. */
		share(w->samples, rank, workers, &lo, &hi);
		d->total = w->samples;
		if (w->kind == TRN_LR) {
			struct trn_lr_gen g = w->lrg;

			g.seed = w->seed;
			ret = trn_lr_generate(&g, lo, hi - lo, &d->lr_train,
					      err, sizeof(err));
			if (!ret)
				ret = trn_lr_generate(
					&g, w->samples, w->test_samples,
					&d->lr_test, err, sizeof(err));
		} else if (w->kind == TRN_CTR) {
			struct trn_ctr_gen g = {w->lrg.features, w->lrg.zipf,
						w->lrg.noise, w->seed};

			ret = trn_ctr_generate(&g, lo, hi - lo, &d->ctr_train,
					       err, sizeof(err));
			if (!ret)
				ret = trn_ctr_generate(
					&g, w->samples, w->test_samples,
					&d->ctr_test, err, sizeof(err));
		} else {
			struct trn_mf_gen g = w->mfg;

			g.seed = w->seed;
			ret = trn_mf_generate(&g, lo, hi - lo, &d->mf_train,
					      err, sizeof(err));
			if (!ret)
				ret = trn_mf_generate(
					&g, w->samples, w->test_samples,
					&d->mf_test, err, sizeof(err));
		}
		if (ret) {
			tool_err("generating the data: %s", err);
			return ret;
		}
		d->npart = hi - lo;
		d->part = malloc((d->npart ? d->npart : 1) * sizeof(*d->part));
		if (!d->part)
			return -ENOMEM;
		for (size_t i = 0; i < d->npart; i++)
			d->part[i] = (uint32_t)i;
		return 0;
	}
	if (w->kind == TRN_LR) {
		ret = trn_libsvm_load(w->data, &d->lr_train, err, sizeof(err));
		if (!ret && w->test)
			ret = trn_libsvm_load(w->test, &d->lr_test, err,
					      sizeof(err));
		n = d->lr_train.n;
	} else if (w->kind == TRN_CTR) {
		ret = trn_criteo_load(w->data, &d->ctr_train, err, sizeof(err));
		if (!ret && w->test)
			ret = trn_criteo_load(w->test, &d->ctr_test, err,
					      sizeof(err));
		n = d->ctr_train.n;
	} else {
		ret = trn_ratings_load(w->data, &d->mf_train, err, sizeof(err));
		if (!ret && w->test)
			ret = trn_ratings_load(w->test, &d->mf_test, err,
					       sizeof(err));
		n = d->mf_train.n;
	}
	if (ret) {
		tool_err("%s", err);
		return ret;
	}
	if (n > UINT32_MAX) {
		tool_err("%s: %zu samples, more than rdps-train handles",
			 w->data, n);
		return -EINVAL;
	}
	{
		uint32_t *perm = malloc((n ? n : 1) * sizeof(*perm));
		size_t ntest = w->test ? 0 : (size_t)(w->holdout * (double)n);
		size_t pool;

		if (!perm)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			perm[i] = (uint32_t)i;
		shuffle(perm, n, w->seed, 11, 0);
		if (!w->test && (ntest == 0 || ntest == n)) {
			free(perm);
			tool_err("%s: %zu samples are too few to hold out "
				 "%g of them: give more data or --test FILE",
				 w->data, n, w->holdout);
			return -EINVAL;
		}
		pool = n - ntest;
		if (pool < workers) {
			free(perm);
			tool_err("%s: %zu training samples for %u workers: "
				 "give every worker at least one",
				 w->data, pool, workers);
			return -EINVAL;
		}
		share(pool, rank, workers, &lo, &hi);
		d->total = pool;
		d->npart = hi - lo;
		d->part = malloc(d->npart * sizeof(*d->part));
		if (ntest) {
			d->test_in_train = 1;
			d->ntest = ntest;
			d->test_ids = malloc(ntest * sizeof(*d->test_ids));
		}
		if (!d->part || (ntest && !d->test_ids)) {
			free(perm);
			return -ENOMEM;
		}
		memcpy(d->part, perm + lo, d->npart * sizeof(*d->part));
		if (ntest)
			memcpy(d->test_ids, perm + pool,
			       ntest * sizeof(*d->test_ids));
		free(perm);
	}
	return 0;
}

/* The held-out loss of the model's parameters. */
static double held_out_loss(const struct trn_model *m, const struct run_data *d)
{
	if (!d->test_in_train)
		return m->kind == TRN_LR
			       ? trn_model_loss_lr(m, NULL, &d->lr_test)
			       : trn_model_loss_mf(m, NULL, &d->mf_test);
	/* A holdout inside the training file: score those samples. */
	if (m->kind == TRN_LR) {
		double sum = 0;

		for (size_t k = 0; k < d->ntest; k++) {
			const struct trn_lr_data *t = &d->lr_train;
			size_t i = d->test_ids[k];
			double s = m->w[0], z;

			for (size_t j = t->off[i]; j < t->off[i + 1]; j++)
				s += (double)m->w[t->idx[j]] * t->val[j];
			z = -t->y[i] * s;
			sum += z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
		}
		return sum / (double)d->ntest;
	} else {
		const struct trn_mf_data *t = &d->mf_train;
		uint32_t k = m->row_len;
		double sum = 0;

		for (size_t q = 0; q < d->ntest; q++) {
			size_t i = d->test_ids[q];
			const float *u = m->w + (size_t)t->user[i] * k;
			const float *v =
				m->w + (size_t)(m->users + t->item[i]) * k;
			double e = t->rating[i];

			for (uint32_t f = 0; f < k; f++)
				e -= (double)u[f] * v[f];
			sum += e * e;
		}
		return sqrt(sum / (double)d->ntest);
	}
}

/* One CSV row, written with one write() so that rows never interleave. */
static int csv_row(int fd, double t, uint64_t clock, unsigned worker,
		   double loss)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "%.4f,%" PRIu64 ",%u,%.6f\n", t,
			 clock, worker, loss);

	return write(fd, line, (size_t)n) == n ? 0 : -errno;
}

static double auto_pace(unsigned workers)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double p = cpus > 0 ? 1.25 * workers / (double)cpus : 1;

	return p < 1 ? 1 : p;
}

/* The state of one worker's run. */
struct worker {
	const struct run_opts *o;
	struct rdps_config cfg;
	struct rdps_ctx *ctx;
	struct rdps_table *model_t, *stats_t;
	/* lr: every worker's Adagrad sums (workers x n, PUT), so that they
	 * are checkpointed with the model and a resumed worker steps as the
	 * uninterrupted one would. NULL for the other workloads. */
	struct rdps_table *g2_t;
	uint64_t *g2_idx; /* its sparse push */
	double *g2_val;
	struct trn_model m;
	struct trn_ctr *ctr; /* ctr: its model instead of m */
	double auc;	     /* ctr: of the last held-out evaluation */
	struct run_data d;
	float *pulled; /* rdps_buf_alloc(): the table's values */
	uint64_t *idx; /* sparse push */
	float *val;
	float *dense;
	double *stats;	 /* 2 x workers: samples, busy seconds */
	uint32_t *order; /* the current pass over the partition */
	uint32_t *count; /* --check-once: processings per sample */
	uint32_t *ids;	 /* one mini-batch */
	uint64_t pos;	 /* samples processed in all */
	uint64_t quota;	 /* samples of this whole iteration */
	uint64_t iters, cut_short, cuts_won;
	uint64_t start; /* the clock the shards started at (resumed: > 0) */
	double pace;
	uint64_t t0;
	int csv_fd;
};

/* The held-out loss; ctr's reads its rows from the shards. 0 or 1. */
static int worker_loss(struct worker *wk, double *loss)
{
	const struct run_data *d = &wk->d;

	if (!wk->ctr) {
		*loss = held_out_loss(&wk->m, d);
		return 0;
	}
	if (d->test_in_train)
		return trn_ctr_eval(wk->ctr, &d->ctr_train, d->test_ids,
				    d->ntest, loss, &wk->auc);
	return trn_ctr_eval(wk->ctr, &d->ctr_test, NULL, 0, loss, &wk->auc);
}

static int fail_call(int ret, const char *what)
{
	return tool_fail(ret, what);
}

/* The order of pass number pass: a shuffle of the previous pass's. */
static void pass_shuffle(struct worker *wk, uint64_t pass)
{
	shuffle(wk->order, wk->d.npart, trn_run_seed(&wk->o->w) ^ 0x4f524452ull,
		(uint64_t)wk->cfg.rank, pass);
}

/* The next sample of the cursor; checks exactly-once when asked. */
static int next_sample(struct worker *wk, uint32_t *id_out)
{
	size_t n = wk->d.npart, at = (size_t)(wk->pos % n);
	uint64_t pass = wk->pos / n;

	if (at == 0)
		pass_shuffle(wk, pass);
	if (wk->count) {
		uint32_t k = wk->order[at];

		if (wk->count[k] != pass) {
			tool_err("once: worker %d: sample %u of its partition "
				 "was processed %u times before pass %" PRIu64
				 " (want %" PRIu64 ")",
				 wk->cfg.rank, k, wk->count[k], pass, pass);
			return -EPROTO;
		}
		wk->count[k]++;
	}
	*id_out = wk->d.part[wk->order[at]];
	wk->pos++;
	return 0;
}

/* One iteration's compute: mini-batches until the partition is done or
 * (absp) the round is cut. Fills *done and *busy_s. */
static int iterate(struct worker *wk, double factor, uint64_t *done,
		   double *busy_s)
{
	const struct run_opts *o = wk->o;
	uint64_t n = wk->quota, t_start = rdps_now_ns(), target = 0;
	int absp = wk->cfg.model == RDPS_MODEL_ABSP, ret, cut = 0;

	*done = 0;
	while (*done < n) {
		size_t b = o->w.batch < n - *done ? o->w.batch : n - *done;
		uint64_t c0, el;

		for (size_t k = 0; k < b; k++) {
			ret = next_sample(wk, &wk->ids[k]);
			if (ret)
				return ret;
		}
		c0 = trn_cpu_ns();
		if (wk->ctr) {
			ret = trn_ctr_step(wk->ctr, &wk->d.ctr_train, wk->ids,
					   b);
			if (ret)
				return ret;
		} else if (wk->m.kind == TRN_LR) {
			ret = trn_model_step_lr(&wk->m, &wk->d.lr_train,
						wk->ids, b);
			if (ret) {
				tool_err("out of memory in a mini-batch");
				return ret;
			}
		} else {
			trn_model_step_mf(&wk->m, &wk->d.mf_train, wk->ids, b);
		}
		target += (uint64_t)(wk->pace * factor *
				     (double)(trn_cpu_ns() - c0));
		el = rdps_now_ns() - t_start;
		/* Sleep off the debt in pieces of at least 0.2 ms. */
		if (target > el + 200000)
			trn_sleep_ns(target - el);
		*done += b;
		if (absp && *done < n) {
			rdps_clear_error();
			ret = rdps_cut_poll(wk->ctx);
			if (ret < 0)
				return fail_call(ret, "polling the cut");
			if (ret) {
				cut = 1;
				break;
			}
		}
	}
	*busy_s = (double)(rdps_now_ns() - t_start) / 1e9;
	if (cut)
		wk->cut_short++;
	if (absp && !cut) {
		rdps_clear_error();
		ret = rdps_cut(wk->ctx);
		if (ret < 0)
			return fail_call(ret, "cutting the round");
		wk->cuts_won += (uint64_t)ret;
	}
	return 0;
}

/* The Adagrad sums of the features pushed (n of them in wk->idx; n < 0:
 * all), into this worker's row of the g2 table. */
static int push_g2(struct worker *wk, long n)
{
	uint64_t at = (uint64_t)wk->cfg.rank * wk->m.n;

	if (!wk->g2_t || !n)
		return 0;
	if (n < 0)
		return rdps_push(wk->g2_t, at, wk->m.n, wk->m.g2);
	for (long i = 0; i < n; i++) {
		wk->g2_idx[i] = at + wk->idx[i];
		wk->g2_val[i] = wk->m.g2[wk->idx[i]];
	}
	return rdps_push_sparse(wk->g2_t, wk->g2_idx, (size_t)n, wk->g2_val);
}

static int push_all(struct worker *wk, uint64_t done, double busy_s)
{
	double st[2] = {(double)done, busy_s};
	long n = trn_model_take(&wk->m, wk->idx, wk->val, wk->dense);
	float inv = 1.0f / (float)wk->cfg.workers;
	int ret = 0;

	/* The model moves by the mean of the workers' changes: summing
	 * them would take W steps along every direction that all workers
	 * learn (the bias first), which diverges. */
	for (long i = 0; i < n; i++)
		wk->val[i] *= inv;
	for (uint64_t i = 0; n < 0 && i < wk->m.n; i++)
		wk->dense[i] *= inv;

	rdps_clear_error();
	if (n > 0)
		ret = rdps_push_sparse(wk->model_t, wk->idx, (size_t)n,
				       wk->val);
	else if (n < 0)
		ret = rdps_push(wk->model_t, 0, wk->m.n, wk->dense);
	if (ret)
		return fail_call(ret, "pushing the model delta");
	ret = push_g2(wk, n);
	if (ret)
		return fail_call(ret, "pushing the Adagrad sums");
	ret = rdps_push(wk->stats_t, 2ull * (unsigned)wk->cfg.rank, 2, st);
	if (ret)
		return fail_call(ret, "pushing the stats");
	return 0;
}

static int pull_all(struct worker *wk)
{
	int ret;

	rdps_clear_error();
	ret = rdps_pull(wk->stats_t, 0, 2ull * (unsigned)wk->cfg.workers,
			wk->stats);
	if (!ret && wk->model_t)
		ret = rdps_pull(wk->model_t, 0, wk->m.n, wk->pulled);
	if (ret)
		return fail_call(ret, "pulling the model");
	if (wk->model_t)
		trn_model_set(&wk->m, wk->pulled);
	return 0;
}

/* Rank 0's line: clock, loss, samples/s, the slowest worker. */
static void progress(struct worker *wk, uint64_t clock, double t, double loss,
		     double *last_t, double *last_total, int final)
{
	unsigned w = (unsigned)wk->cfg.workers, slow = 0;
	double total = 0, slow_rate = -1, fast_rate = 0;

	for (unsigned i = 0; i < w; i++) {
		double s = wk->stats[2 * i], b = wk->stats[2 * i + 1];
		double rate = b > 0 ? s / b : 0;

		total += s;
		if (b > 0 && (slow_rate < 0 || rate < slow_rate)) {
			slow_rate = rate;
			slow = i;
		}
		if (rate > fast_rate)
			fast_rate = rate;
	}
	if (!final && t - *last_t < 1.0 && clock != wk->start)
		return;
	if (!wk->o->quiet) {
		printf("%s clock %5" PRIu64 "  %7.2f s  loss %.6f  %9.0f "
		       "samples/s",
		       final ? "final" : "     ", clock, t, loss,
		       t > *last_t ? (total - *last_total) / (t - *last_t)
				   : 0.0);
		if (wk->ctr)
			printf("  auc %.4f", wk->auc);
		if (slow_rate >= 0)
			printf("  slowest w%u %.0f/s (%.2fx the fastest)", slow,
			       slow_rate,
			       fast_rate > 0 ? slow_rate / fast_rate : 0.0);
		printf("\n");
		fflush(stdout);
	}
	*last_t = t;
	*last_total = total;
}

static int worker_setup(struct worker *wk)
{
	const struct run_opts *o = wk->o;
	unsigned w = (unsigned)wk->cfg.workers;
	uint64_t n;
	int ret;

	ret = data_build(&o->w, (unsigned)wk->cfg.rank, w, &wk->d);
	if (ret)
		return ret == -ENOMEM
			       ? (tool_err("out of memory for the data"), 1)
			       : 1;
	if (o->w.kind == TRN_CTR) {
		ret = 0; /* its model is in its tables: trn_ctr_start() */
	} else if (o->w.kind == TRN_LR) {
		uint32_t dim = wk->d.lr_train.dim > wk->d.lr_test.dim
				       ? wk->d.lr_train.dim
				       : wk->d.lr_test.dim;

		if (!o->w.data)
			dim = o->w.lrg.features + 1;
		ret = trn_model_init_lr(&wk->m, dim, o->w.lr);
	} else {
		uint32_t users = wk->d.mf_train.users,
			 items = wk->d.mf_train.items;
		uint32_t rank = o->w.rank ? o->w.rank : o->w.mfg.rank;

		if (wk->d.mf_test.users > users)
			users = wk->d.mf_test.users;
		if (wk->d.mf_test.items > items)
			items = wk->d.mf_test.items;
		if (!o->w.data) {
			users = o->w.mfg.users;
			items = o->w.mfg.items;
		}
		ret = trn_model_init_mf(&wk->m, users ? users : 1,
					items ? items : 1, rank, o->w.lr,
					o->w.l2, o->w.init_sd, o->w.seed);
	}
	if (ret) {
		tool_err("cannot make the model: %s", strerror(-ret));
		return 1;
	}
	n = wk->m.n ? wk->m.n : 1;
	wk->idx = malloc(n * sizeof(*wk->idx));
	wk->val = malloc(n * sizeof(*wk->val));
	wk->dense = malloc(n * sizeof(*wk->dense));
	if (o->w.kind == TRN_LR) {
		wk->g2_idx = malloc(n * sizeof(*wk->g2_idx));
		wk->g2_val = malloc(n * sizeof(*wk->g2_val));
		if (!wk->g2_idx || !wk->g2_val) {
			tool_err("out of memory for a model of %" PRIu64
				 " parameters",
				 n);
			return 1;
		}
	}
	wk->stats = calloc(2 * w, sizeof(*wk->stats));
	wk->order = malloc(wk->d.npart * sizeof(*wk->order));
	wk->ids = malloc(o->w.batch * sizeof(*wk->ids));
	if (o->check_once)
		wk->count = calloc(wk->d.npart, sizeof(*wk->count));
	if (!wk->idx || !wk->val || !wk->dense || !wk->stats || !wk->order ||
	    !wk->ids || (o->check_once && !wk->count)) {
		tool_err("out of memory for a model of %" PRIu64 " parameters",
			 n);
		return 1;
	}
	for (size_t i = 0; i < wk->d.npart; i++)
		wk->order[i] = (uint32_t)i;

	if (!wk->d.npart) {
		tool_err("worker %d has no training samples: give more data "
			 "or fewer workers",
			 wk->cfg.rank);
		return 1;
	}

	rdps_clear_error();
	ret = rdps_ctx_create(&wk->cfg, &wk->ctx);
	if (ret)
		return fail_call(ret, "connecting to the shards");
	if (o->w.kind == TRN_CTR) {
		ret = trn_ctr_start(wk->ctx, &o->w, &wk->cfg, &wk->d.ctr_train,
				    &wk->ctr);
		if (ret)
			return ret;
	}
	rdps_clear_error();
	ret = wk->ctr ? 0
		      : rdps_table_open(wk->ctx, "model", n, RDPS_DTYPE_F32,
					RDPS_RULE_SUM, 0, &wk->model_t);
	if (!ret)
		ret = rdps_table_open(wk->ctx, "stats", 2ull * w,
				      RDPS_DTYPE_F64, RDPS_RULE_SUM, 0,
				      &wk->stats_t);
	if (!ret && o->w.kind == TRN_LR)
		ret = rdps_table_open(wk->ctx, "lr-adagrad", w * n,
				      RDPS_DTYPE_F64, RDPS_RULE_PUT, 0,
				      &wk->g2_t);
	if (ret)
		return fail_call(ret, "opening the tables");
	rdps_clear_error();
	wk->pulled = rdps_buf_alloc(wk->ctx, n * sizeof(float));
	if (!wk->pulled)
		return fail_call(-ENOMEM, "allocating the pull buffer");
	return 0;
}

/* --check-once at the end: every sample once per pass, and the shards
 * counted every sample this worker pushed (no partial push lost or
 * applied twice). */
static int check_once(struct worker *wk)
{
	uint64_t n = wk->d.npart, q = wk->pos / n, r = wk->pos % n, extra = 0;
	double seen = wk->stats[2 * (unsigned)wk->cfg.rank];

	for (uint64_t i = 0; i < n; i++) {
		if (wk->count[i] != q && wk->count[i] != q + 1) {
			tool_err("once: worker %d: sample %" PRIu64 " was "
				 "processed %u times in %" PRIu64 " passes",
				 wk->cfg.rank, i, wk->count[i], q);
			return 1;
		}
		extra += wk->count[i] - q;
	}
	if (extra != r) {
		tool_err("once: worker %d: %" PRIu64 " samples are one pass "
			 "ahead, want %" PRIu64,
			 wk->cfg.rank, extra, r);
		return 1;
	}
	if (seen != (double)wk->pos) {
		tool_err("once: worker %d: the shards counted %.0f samples "
			 "of this worker, it processed %" PRIu64
			 " (a push was lost or applied twice)",
			 wk->cfg.rank, seen, wk->pos);
		return 1;
	}
	printf("once: worker %d: %" PRIu64 " samples in %" PRIu64
	       " iterations (%" PRIu64 " cut short, %" PRIu64
	       " cut by it), %" PRIu64 " whole passes + %" PRIu64 " of %" PRIu64
	       ": every sample once per pass: ok\n",
	       wk->cfg.rank, wk->pos, wk->iters, wk->cut_short, wk->cuts_won, q,
	       r, n);
	fflush(stdout);
	return 0;
}

/* A job resumed from checkpoints: the cursor where the shards' clock left
 * it. The stats table (checkpointed with the model) holds the samples this
 * worker pushed, and replaying the shuffles of the passes begun makes the
 * next sample the one the uninterrupted job took; lr's Adagrad sums come
 * back from their table. */
static int resume_cursor(struct worker *wk)
{
	uint64_t n = wk->d.npart;
	int ret;

	uint64_t done = (uint64_t)wk->stats[2 * (unsigned)wk->cfg.rank];

	wk->pos = done;
	for (uint64_t p = 0; p * n < done; p++)
		pass_shuffle(wk, p);
	for (uint64_t i = 0; wk->count && i < n; i++)
		wk->count[i] = (uint32_t)(done / n);
	for (uint64_t k = 0; wk->count && k < done % n; k++)
		wk->count[wk->order[k]]++;
	/* lr: the Adagrad sums this worker had at that clock. */
	if (!wk->g2_t || !wk->start)
		return 0;
	rdps_clear_error();
	ret = rdps_pull(wk->g2_t, (uint64_t)wk->cfg.rank * wk->m.n, wk->m.n,
			wk->m.g2);
	return ret ? fail_call(ret, "pulling the Adagrad sums") : 0;
}

/* --save-model: the final parameters, as the tables hold them: the
 * dense model's floats, or ctr's text file (ctr.h, trn_ctr_save). */
static int save_model(struct worker *wk, const char *path)
{
	FILE *f = fopen(path, "wb");
	size_t n = (size_t)wk->m.n;
	int bad;

	if (!f) {
		tool_err("cannot open --save-model %s: %s", path,
			 strerror(errno));
		return 1;
	}
	if (wk->ctr) {
		if (trn_ctr_save(wk->ctr, f)) {
			fclose(f);
			return 1;
		}
		bad = ferror(f);
	} else {
		bad = fwrite(wk->pulled, sizeof(float), n, f) != n;
	}
	if (fclose(f) || bad) {
		tool_err("cannot write --save-model %s: %s", path,
			 strerror(errno));
		return 1;
	}
	return 0;
}

static int worker_loop(struct worker *wk)
{
	const struct run_opts *o = wk->o;
	int absp = wk->cfg.model == RDPS_MODEL_ABSP, rank0 = !wk->cfg.rank;
	double budget = (double)o->w.epochs * (double)wk->d.total;
	double last_t = 0, last_total = 0, loss, t;
	uint64_t c;
	int ret;

	rdps_clear_error();
	ret = rdps_barrier(wk->ctx);
	if (ret)
		return fail_call(ret, "the start barrier");
	wk->t0 = rdps_now_ns();
	/* A resumed job goes on at the shards' clock and stops at the
	 * same final clock as an uninterrupted one. */
	wk->start = rdps_clock_now(wk->ctx);
	for (c = wk->start;; c++) {
		double total = 0, busy = 0, factor;
		uint64_t done = 0;
		int stop;

		ret = pull_all(wk);
		if (ret)
			return ret;
		for (int i = 0; i < wk->cfg.workers; i++)
			total += wk->stats[2 * i];
		if (c == wk->start) {
			ret = resume_cursor(wk);
			if (ret)
				return ret;
			last_total = total; /* samples/s of this run only */
		}
		/* Under absp rounds may be partial, so it counts samples;
		 * its pulls see every worker's stats of the same clocks,
		 * so all stop at the same clock. The others process whole
		 * partitions, and stop after as many clocks. */
		stop = absp ? total >= budget
			    : c >= o->w.epochs * o->w.clocks_per_epoch;
		if (rank0) {
			t = (double)(rdps_now_ns() - wk->t0) / 1e9;
			ret = worker_loss(wk, &loss);
			if (ret)
				return ret;
			if (wk->csv_fd >= 0 &&
			    csv_row(wk->csv_fd, t, c, 0, loss))
				tool_err("warning: cannot write %s", o->csv);
			progress(wk, c, t, loss, &last_t, &last_total, 0);
		}
		if (stop)
			break;
		/* Iteration c is slice c mod K of a pass: K clocks of whole
		 * iterations make exactly one pass. */
		{
			uint64_t n = wk->d.npart, k = o->w.clocks_per_epoch;

			wk->quota = n * (c % k + 1) / k - n * (c % k) / k;
		}
		factor = trn_spec_factor(&o->spec, trn_run_seed(&o->w),
					 (unsigned)wk->cfg.rank, c);
		ret = iterate(wk, factor, &done, &busy);
		if (ret)
			return ret < 0 ? 1 : ret;
		ret = push_all(wk, done, busy);
		if (ret)
			return ret;
		rdps_clear_error();
		ret = rdps_clock(wk->ctx);
		if (ret)
			return fail_call(ret, "ending the iteration");
		wk->iters++;
	}
	/* The final model: after everyone's last push. */
	rdps_clear_error();
	ret = rdps_barrier(wk->ctx);
	if (ret)
		return fail_call(ret, "the final barrier");
	ret = pull_all(wk);
	if (ret)
		return ret;
	if (rank0) {
		t = (double)(rdps_now_ns() - wk->t0) / 1e9;
		ret = worker_loss(wk, &loss);
		if (ret)
			return ret;
		if (wk->csv_fd >= 0 && csv_row(wk->csv_fd, t, c, 0, loss))
			tool_err("warning: cannot write %s", o->csv);
		progress(wk, c, t, loss, &last_t, &last_total, 1);
		if (wk->o->save && save_model(wk, wk->o->save))
			return 1;
	}
	if (wk->count)
		return check_once(wk);
	return 0;
}

static int run_job(const struct run_opts *o)
{
	struct worker wk;
	struct trn_load load = {.running = 0};
	double load_t, load_d;
	char err[512];
	int ret, rc = 1;

	memset(&wk, 0, sizeof(wk));
	wk.o = o;
	wk.csv_fd = -1;
	rdps_config_default(&wk.cfg);
	rdps_clear_error();
	ret = rdps_config_from_env(&wk.cfg);
	if (ret)
		return fail_call(ret, "reading the environment");
	if (!wk.cfg.shards) {
		tool_err("RDPS_SHARDS is not set: run under rdps-launch, e.g. "
			 "rdps-launch -w 4 -- rdps-train run --workload lr");
		return 2;
	}
	if (trn_spec_check(&o->spec, (unsigned)wk.cfg.workers, err,
			   sizeof(err))) {
		tool_err("%s", err);
		return 2;
	}
	wk.cfg.poll_mode = o->poll_mode;
	wk.pace = o->pace > 0 ? o->pace : auto_pace((unsigned)wk.cfg.workers);
	if (o->csv && wk.cfg.rank == 0) {
		wk.csv_fd =
			open(o->csv, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			     0644);
		if (wk.csv_fd < 0) {
			tool_err("cannot open --csv %s: %s", o->csv,
				 strerror(errno));
			return 1;
		}
	}
	if (wk.cfg.rank == 0 && !o->quiet) {
		char model[32];

		snprintf(model, sizeof(model), "%s",
			 rdps_model_name(wk.cfg.model));
		if (wk.cfg.model == RDPS_MODEL_SSP)
			snprintf(model, sizeof(model), "ssp slack %u",
				 wk.cfg.slack);
		printf("rdps-train: %s, %d workers, model %s, stragglers %s, "
		       "pace %.2f, %" PRIu64 " epochs\n",
		       trn_kind_name(o->w.kind), wk.cfg.workers, model,
		       o->spec_text, wk.pace, o->w.epochs);
		fflush(stdout);
	}
	if (trn_spec_load(&o->spec, &load_t, &load_d)) {
		ret = trn_load_start(&load, load_t, load_d, trn_run_seed(&o->w),
				     (unsigned)wk.cfg.rank,
				     (unsigned)wk.cfg.workers);
		if (ret) {
			tool_err("cannot start the load:%g:%g hog: %s", load_t,
				 load_d, strerror(-ret));
			rc = 1;
			goto out;
		}
	}
	if (o->w.kind == TRN_LASSO) {
		struct trn_lasso_args la = {
			.cfg = &wk.cfg,
			.w = &o->w,
			.spec = &o->spec,
			.pace = wk.pace,
			.csv_fd = wk.csv_fd,
			.quiet = o->quiet,
			.load = &load,
		};

		rc = trn_lasso_run(&la);
	} else {
		rc = worker_setup(&wk);
		if (!rc) {
			trn_load_bind(&load);
			rc = worker_loop(&wk);
		}
	}
	if (load.running) {
		trn_load_stop(&load);
		trn_load_report(&load, stderr);
	}
out:
	if (wk.csv_fd >= 0)
		close(wk.csv_fd);
	rdps_buf_free(wk.ctx, wk.pulled);
	trn_ctr_close(wk.ctr);
	rdps_ctx_destroy(wk.ctx);
	trn_model_fini(&wk.m);
	data_free(&wk.d);
	free(wk.idx);
	free(wk.val);
	free(wk.dense);
	free(wk.g2_idx);
	free(wk.g2_val);
	free(wk.stats);
	free(wk.order);
	free(wk.count);
	free(wk.ids);
	return rc;
}

int trn_cmd_run(int argc, char **argv)
{
	struct run_opts o;
	int r = run_parse(argc, argv, &o);

	if (r)
		return r == 1 ? 0 : r;
	return run_job(&o);
}
