/* SPDX-License-Identifier: MIT */
/*
 * rdps_psbench.c - rdps-psbench, benchmarks of the parameter server's
 * worker calls, run as a worker of a job started by rdps-launch:
 *
 *   rdps-launch -s 4 -w 1 -- rdps-psbench pull --size 1m
 *
 * Tests (one result line each, on stdout; progress on stderr):
 *   pull   dense rdps_pull of SIZE bytes of float32 over every shard into
 *          a buffer of rdps_buf_alloc() (the zero-copy path: each shard's
 *          range is read straight into it), against a single-thread
 *          memcpy of SIZE bytes in this process;
 *   tick   rdps_clock() when it does not block (one worker, or a slack
 *          larger than the run), timed in batches of -b calls;
 *   push   dense rdps_push of SIZE bytes of float32 deltas, SUM rule, from
 *          rdps_buf_alloc() memory (the zero-copy path). With
 *          ssp and asp a push returns after every shard's credit, which a
 *          shard sends after it applied the delta: the time is push +
 *          apply. bsp only stages deltas until the clock, so push refuses
 *          bsp. The sum is checked with a pull at the end;
 *   round  an 8-byte (-s) push then a pull of the same elements, each
 *          waited for;
 *   emb    rdps_emb_pull of --keys keys of --dim float32 values from an
 *          embedding table filled with 65536 keys: keys/s, latency, and
 *          the round trips per pull counted by the library (and the
 *          share of keys read at a place the location cache held;
 *          -C: without the cache). With more
 *          than one worker (asp) the others push gradient rows for
 *          random keys all along: the shards are busy applying while
 *          rank 0 pulls. Also what the pull phase cost the shards'
 *          CPUs: messages their loop threads handled (a counter each
 *          shard publishes in its directory) and, for shards on this
 *          host, the CPU time of their loop threads and processes
 *          (/proc; the tcp transport's thread, which serves READs as a
 *          NIC would, is in the process's).
 * Every worker of the job measures; rank 0 prints.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "rdps/rdps.h"
#include "worker/worker.h" /* wrk_emb_lookup, wrk_shard_stats */

enum test { T_PULL, T_TICK, T_PUSH, T_ROUND, T_EMB };

static const char *const test_names[] = {"pull", "tick", "push", "round",
					 "emb"};

struct opts {
	enum test test;
	size_t size; /* 0: the test's default */
	uint64_t iters, warmup, batch;
	int iters_given, warmup_given, batch_given;
	enum rdps_poll_mode poll_mode;
	int json;
	const char *table;
	uint64_t keys, dim; /* emb */
	int two_sided;	    /* emb: the baseline lookup instead */
	int no_cache;	    /* emb: no location cache (rdps_emb_cfg.cache) */
	size_t work;	    /* pull, push: bytes read between calls */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdps-launch [launch options] -- rdps-psbench [options] "
		"TEST\n"
		"\n"
		"Measure parameter server calls as a worker of an rdps-launch "
		"job (it\n"
		"reads RDPS_SHARDS, RDPS_RANK, RDPS_WORKERS, RDPS_MODEL, "
		"RDPS_SLACK,\n"
		"RDPS_TOKEN). Rank 0 prints one result line.\n"
		"\n"
		"Tests:\n"
		"  pull    dense pull of SIZE bytes of float32 (1m) into an "
		"rdps_buf_alloc()\n"
		"          buffer (zero-copy), median GB/s, next to a "
		"1-thread memcpy of\n"
		"          SIZE bytes in this process\n"
		"  tick    rdps_clock() that does not block (run it with one "
		"worker),\n"
		"          median us per call over batches of -b calls\n"
		"  push    dense push of SIZE bytes of float32 deltas (1m), "
		"SUM rule,\n"
		"          returned = applied (needs -m ssp or asp), median "
		"GB/s\n"
		"  round   push then pull of SIZE bytes (8), each waited for, "
		"median us\n"
		"  emb     embedding pull of --keys keys of --dim float32 "
		"(64, 16) from\n"
		"          65536 keys: keys/s, median us, round trips per "
		"pull; other\n"
		"          workers (asp) keep the shards busy with pushes\n"
		"\n"
		"Options:\n"
		"  -s, --size=SIZE      bytes, a multiple of 4 (pull, push: "
		"1m; round: 8)\n"
		"  -n, --iters=N        measured iterations (pull, push: "
		"2000; tick,\n"
		"                       round: 10000)\n"
		"  -w, --warmup=N       warm-up iterations (n/10)\n"
		"  -b, --batch=N        tick, round: calls per timed sample "
		"(tick 100,\n"
		"                       round 1)\n"
		"  -P, --poll=MODE      worker polling: busy, adaptive or "
		"event (adaptive)\n"
		"  -T, --table=NAME     table name (psbench-TEST)\n"
		"  -k, --keys=N         emb: keys per pull (64)\n"
		"  -d, --dim=N          emb: values per row (16)\n"
		"  -W, --work=BYTES     pull, push, round: read BYTES of this "
		"process's own memory\n"
		"                       before each call, as a caller with "
		"that working\n"
		"                       set does; each sample is the work "
		"and the call\n"
		"                       less the work's median alone (0)\n"
		"  -2, --two-sided      emb: the two-sided lookup (the "
		"shard's CPU finds\n"
		"                       the rows and writes them back) "
		"instead\n"
		"  -C, --no-cache       emb: one-sided without the location "
		"cache\n"
		"                       (RDPS_EMB_CACHE=0|1, when set, "
		"decides)\n"
		"  -j, --json           one JSON object instead of a text "
		"line\n"
		"  -h, --help           this help\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option long_opts[] = {
		{"size", required_argument, NULL, 's'},
		{"iters", required_argument, NULL, 'n'},
		{"warmup", required_argument, NULL, 'w'},
		{"batch", required_argument, NULL, 'b'},
		{"poll", required_argument, NULL, 'P'},
		{"table", required_argument, NULL, 'T'},
		{"json", no_argument, NULL, 'j'},
		{"keys", required_argument, NULL, 'k'},
		{"dim", required_argument, NULL, 'd'},
		{"two-sided", no_argument, NULL, '2'},
		{"no-cache", no_argument, NULL, 'C'},
		{"work", required_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum rdps_tp_poll_mode pm;
	unsigned i;
	int ch;

	memset(o, 0, sizeof(*o));
	o->poll_mode = RDPS_POLL_ADAPTIVE;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":s:n:w:b:P:T:k:d:W:2Cjh",
				 long_opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (tool_parse_bytes(optarg, 4, 1u << 30, &o->size))
				return -EINVAL;
			if (o->size % 4) {
				tool_err("bad size '%s': use a multiple of 4 "
					 "bytes (float32 elements)",
					 optarg);
				return -EINVAL;
			}
			break;
		case 'n':
			if (tool_parse_count(optarg, "iteration count", 1,
					     100000000, &o->iters))
				return -EINVAL;
			o->iters_given = 1;
			break;
		case 'w':
			if (tool_parse_count(optarg, "warm-up count", 0,
					     100000000, &o->warmup))
				return -EINVAL;
			o->warmup_given = 1;
			break;
		case 'b':
			if (tool_parse_count(optarg, "batch", 1, 1000000,
					     &o->batch))
				return -EINVAL;
			o->batch_given = 1;
			break;
		case 'P':
			if (tool_parse_poll(optarg, &pm))
				return -EINVAL;
			o->poll_mode = pm == RDPS_TP_POLL_BUSY ? RDPS_POLL_BUSY
				       : pm == RDPS_TP_POLL_EVENT
					       ? RDPS_POLL_EVENT
					       : RDPS_POLL_ADAPTIVE;
			break;
		case 'T':
			if (!*optarg || strlen(optarg) > RDPS_TABLE_NAME_MAX) {
				tool_err("bad table name '%s': use 1 to %d "
					 "characters",
					 optarg, RDPS_TABLE_NAME_MAX);
				return -EINVAL;
			}
			o->table = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case '2':
			o->two_sided = 1;
			break;
		case 'C':
			o->no_cache = 1;
			break;
		case 'k':
			if (tool_parse_count(optarg, "key count", 1, 65536,
					     &o->keys))
				return -EINVAL;
			break;
		case 'd':
			if (tool_parse_count(optarg, "dim", 1, 4096, &o->dim))
				return -EINVAL;
			break;
		case 'W':
			if (tool_parse_bytes(optarg, 0, 1u << 30, &o->work))
				return -EINVAL;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			tool_err("option '%s' needs a value (see -h)",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			tool_err("unknown option '%s' (see -h)",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		tool_err(optind >= argc ? "which test? pull, tick, push, "
					  "round or emb (see -h)"
					: "one test at a time (see -h)");
		return -EINVAL;
	}
	for (i = 0; i < RDPS_ARRAY_SIZE(test_names); i++)
		if (!strcmp(argv[optind], test_names[i]))
			break;
	if (i == RDPS_ARRAY_SIZE(test_names)) {
		tool_err("unknown test '%s': use pull, tick, push, round or "
			 "emb",
			 argv[optind]);
		return -EINVAL;
	}
	o->test = (enum test)i;
	if (!o->size)
		o->size = o->test == T_ROUND ? 8 : 1u << 20;
	if (!o->iters_given)
		o->iters =
			o->test == T_PULL || o->test == T_PUSH ? 2000 : 10000;
	if (!o->warmup_given)
		o->warmup = o->iters / 10;
	if (!o->batch_given)
		o->batch = o->test == T_TICK ? 100 : 1;
	if (o->work && (o->test == T_TICK || o->test == T_EMB)) {
		tool_err("-W/--work is for pull, push and round: drop it for "
			 "%s",
			 test_names[o->test]);
		return -EINVAL;
	}
	if (!o->keys)
		o->keys = 64;
	if (!o->dim)
		o->dim = 16;
	return 0;
}

/* What was measured, for printing. */
struct result {
	struct rdps_perf_result r; /* latency fields per call, us */
	double gbps;		   /* pull, push: size / median */
	int has_ref;
	struct rdps_perf_result ref; /* pull: memcpy */
	double ref_gbps;
	double work_us; /* -W: the work's median alone, taken off each sample */
	int checked;	/* push: the final sum matched */
	double rtt_per_pull, torn_per_pull, kps; /* emb */
	int cache;	  /* emb: the handle has a location cache */
	double hit_ratio; /* emb: keys read at a cached place / keys */
	/* emb, during the pull phase: messages the shards' loop threads
	 * handled; CPU ms of those threads and of the shard processes (-1:
	 * a shard not on this host). */
	uint64_t shard_msgs;
	double shard_loop_ms, shard_proc_ms;
};

/* The transport scheme of the first shard URL ("shm", "tcp", ...). */
static void scheme_of(const char *shards, char *buf, size_t len)
{
	size_t n = strcspn(shards ? shards : "", ":");

	if (!shards || !shards[n] || n >= len)
		n = 0;
	memcpy(buf, shards ? shards : "", n);
	buf[n] = 0;
	if (!n)
		snprintf(buf, len, "?");
}

static double *samples_alloc(uint64_t n)
{
	double *s = malloc(n * sizeof(*s));

	if (!s)
		tool_err("out of memory for %llu samples",
			 (unsigned long long)n);
	return s;
}

/* Touch every page so page faults stay out of the timings. */
static void *buf_alloc(size_t len, int c)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len ? len : 64)) {
		tool_err("out of memory for %zu bytes", len);
		return NULL;
	}
	memset(p, c, len);
	return p;
}

/* Where the caller's work (-W) leaves its sum, so it is not elided. */
static volatile uint64_t work_sink;

/* The reference: memcpy through a volatile pointer, never elided. */
static void *(*volatile memcpy_fn)(void *, const void *, size_t) = memcpy;

static int run_memcpy(const struct opts *o, struct result *res)
{
	void *src = buf_alloc(o->size, 1), *dst = buf_alloc(o->size, 2);
	double *s = samples_alloc(o->iters);
	uint64_t t0;
	int ret = 1;

	if (!src || !dst || !s)
		goto out;
	for (uint64_t i = 0; i < o->warmup; i++)
		memcpy_fn(dst, src, o->size);
	for (uint64_t i = 0; i < o->iters; i++) {
		t0 = rdps_now_ns();
		memcpy_fn(dst, src, o->size);
		s[i] = (rdps_now_ns() - t0) / 1e3;
	}
	rdps_perf_stats(s, o->iters, &res->ref);
	res->ref_gbps = res->ref.median_us > 0
				? o->size / (res->ref.median_us * 1e3)
				: 0;
	res->has_ref = 1;
	ret = 0;
out:
	free(src);
	free(dst);
	free(s);
	return ret;
}

/* Time iters calls (after warmup) of one step, batch calls per sample. */
typedef int (*step_fn)(struct rdps_ctx *ctx, struct rdps_table *t,
		       const struct opts *o, void *a, void *b);

/* The caller's work (-W): read one word of every cache line of buf. */
static void work_read(const uint64_t *buf, size_t len)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < len / 8; i += 8)
		sum += ((const volatile uint64_t *)buf)[i];
	work_sink = sum;
}

/*
 * The median time of the caller's work alone (-W), warm: what every
 * sample of the work and the call together is then reduced by, so that a
 * row shows what the call adds to a loop that does the work, including
 * the refill of the work's memory that the call evicted.
 */
static double work_alone(const struct opts *o, const uint64_t *buf)
{
	double *s = samples_alloc(o->iters), med;
	struct rdps_perf_result r;
	uint64_t t0;

	if (!s)
		return -1;
	for (uint64_t i = 0; i < o->warmup + o->iters; i++) {
		t0 = rdps_now_ns();
		work_read(buf, o->work);
		if (i >= o->warmup)
			s[i - o->warmup] = (rdps_now_ns() - t0) / 1e3;
	}
	rdps_perf_stats(s, o->iters, &r);
	med = r.median_us;
	free(s);
	return med;
}

static int timed(struct rdps_ctx *ctx, struct rdps_table *t,
		 const struct opts *o, step_fn fn, void *a, void *b,
		 const char *what, struct result *res)
{
	uint64_t n = (o->iters + o->batch - 1) / o->batch, t0, last;
	double *s = samples_alloc(n), work_us = 0;
	uint64_t *work = NULL;
	int ret;

	if (!s)
		return 1;
	if (o->work) {
		work = buf_alloc(o->work, 1);
		work_us = work ? work_alone(o, work) : -1;
		if (work_us < 0) {
			free(work);
			free(s);
			return 1;
		}
	}
	for (uint64_t i = 0; i < o->warmup; i++) {
		rdps_clear_error();
		if (work)
			work_read(work, o->work);
		ret = fn(ctx, t, o, a, b);
		if (ret) {
			free(work);
			free(s);
			return tool_fail(ret, what);
		}
	}
	rdps_clear_error();
	last = rdps_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		t0 = rdps_now_ns();
		if (work)
			work_read(work, o->work);
		for (uint64_t j = 0; j < o->batch; j++) {
			ret = fn(ctx, t, o, a, b);
			if (ret) {
				free(work);
				free(s);
				return tool_fail(ret, what);
			}
		}
		s[i] = ((rdps_now_ns() - t0) / 1e3 - work_us) / o->batch;
		if (t0 - last > 1000000000ull) {
			fprintf(stderr, "%s: %s %llu/%llu\n", tool_name,
				test_names[o->test],
				(unsigned long long)(i * o->batch),
				(unsigned long long)o->iters);
			last = t0;
		}
	}
	rdps_perf_stats(s, n, &res->r);
	res->r.iters = n * o->batch;
	res->r.size = o->size;
	res->gbps =
		res->r.median_us > 0 ? o->size / (res->r.median_us * 1e3) : 0;
	res->work_us = work_us;
	free(work);
	free(s);
	return 0;
}

static int step_pull(struct rdps_ctx *ctx, struct rdps_table *t,
		     const struct opts *o, void *dst, void *unused)
{
	return rdps_pull(t, 0, o->size / 4, dst);
}

static int step_push(struct rdps_ctx *ctx, struct rdps_table *t,
		     const struct opts *o, void *delta, void *unused)
{
	return rdps_push(t, 0, o->size / 4, delta);
}

static int step_tick(struct rdps_ctx *ctx, struct rdps_table *t,
		     const struct opts *o, void *a, void *b)
{
	return rdps_clock(ctx);
}

static int step_round(struct rdps_ctx *ctx, struct rdps_table *t,
		      const struct opts *o, void *delta, void *dst)
{
	int ret = rdps_push(t, 0, o->size / 4, delta);

	return ret ? ret : rdps_pull(t, 0, o->size / 4, dst);
}

/* emb ------------------------------------------------------------------- */

#define EMB_POOL 65536u /* keys in the table */
#define EMB_SETS 64	/* distinct key sets pulled in turn */

/* The pool's key i: spread over 64 bits like hashed feature ids. */
static uint64_t emb_key(uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull;
}

struct emb_bench {
	struct rdps_emb *e;
	uint64_t *keys; /* EMB_SETS sets of o->keys keys */
	uint64_t next;
};

static int step_emb(struct rdps_ctx *ctx, struct rdps_table *t,
		    const struct opts *o, void *bench, void *dst)
{
	struct emb_bench *eb = bench;
	const uint64_t *k = eb->keys + (eb->next++ % EMB_SETS) * o->keys;

	if (o->two_sided)
		return wrk_emb_lookup(eb->e, k, o->keys, dst);
	return rdps_emb_pull(eb->e, k, o->keys, dst);
}

/* Fill the table: every key of the pool once (rank 0). */
static int emb_fill(struct emb_bench *eb, const struct opts *o)
{
	uint64_t keys[1024];
	float *g = calloc(1024 * o->dim, sizeof(float));
	int ret = 0;

	if (!g)
		return -ENOMEM;
	for (uint64_t a = 0; a < EMB_POOL && !ret; a += 1024) {
		for (unsigned i = 0; i < 1024; i++)
			keys[i] = emb_key(a + i);
		ret = rdps_emb_push(eb->e, keys, 1024, g);
	}
	free(g);
	return ret;
}

/* Ranks > 0 under asp: push 64 random rows at a time until rank 0 says
 * stop (a 1 in the dense table t, read every 16 pushes). */
static int emb_busy(struct rdps_ctx *ctx, struct rdps_table *t,
		    struct emb_bench *eb, const struct opts *o)
{
	uint64_t keys[64], s = 0x5eed, pushes = 0;
	float *g = calloc(64 * o->dim, sizeof(float)), stop = 0;
	int ret = 0;

	if (!g)
		return -ENOMEM;
	for (uint64_t i = 0; i < 64 * o->dim; i++)
		g[i] = 1e-3f;
	while (!ret && stop == 0) {
		for (unsigned i = 0; i < 64; i++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			keys[i] = emb_key((s >> 33) % EMB_POOL);
		}
		ret = rdps_emb_push(eb->e, keys, 64, g);
		if (!ret && ++pushes % 16 == 0)
			ret = rdps_pull(t, 0, 1, &stop);
	}
	free(g);
	fprintf(stderr, "%s: rank busy: %llu pushes of 64 rows\n", tool_name,
		(unsigned long long)pushes);
	return ret;
}

/* CPU time of task tid of process pid (tid 0: the whole process) in ms,
 * or -1 when there is no such task here. */
static double proc_cpu_ms(uint32_t pid, uint32_t tid)
{
	double ms;

	return tool_proc_stat((int)pid, (int)tid, NULL, &ms) ? -1 : ms;
}

/* What the shards' CPUs did so far: messages, loop thread and process
 * CPU ms (summed; -1 if any shard is not on this host). */
struct shard_cost {
	uint64_t msgs;
	double loop_ms, proc_ms;
};

static int shard_cost(struct rdps_ctx *ctx, struct shard_cost *c)
{
	struct wrk_shard_stats st;

	memset(c, 0, sizeof(*c));
	for (unsigned s = 0; s < ctx->nshards; s++) {
		int ret = wrk_shard_stats(ctx, s, &st);
		double l, p;

		if (ret)
			return ret;
		c->msgs += st.handled;
		l = proc_cpu_ms(st.pid, st.tid);
		p = proc_cpu_ms(st.pid, 0);
		c->loop_ms = l < 0 || c->loop_ms < 0 ? -1 : c->loop_ms + l;
		c->proc_ms = p < 0 || c->proc_ms < 0 ? -1 : c->proc_ms + p;
	}
	return 0;
}

static double ms_diff(double a, double b)
{
	return a < 0 || b < 0 ? -1 : b - a;
}

static int run_emb(struct rdps_ctx *ctx, struct rdps_table *t,
		   const struct opts *o, const struct rdps_config *cfg,
		   struct result *res)
{
	struct rdps_emb_cfg ec;
	struct emb_bench eb = {0};
	struct rdps_stats st0, st1;
	struct shard_cost c0, c1;
	float one = 1.0f, *dst = NULL;
	uint64_t s = 1;
	int ret, rc = 1;

	rdps_emb_cfg_default(&ec);
	ec.dim = (unsigned)o->dim;
	ec.capacity = EMB_POOL;
	ec.cache = !o->no_cache;
	rdps_clear_error();
	ret = rdps_emb_open(ctx, o->table ? o->table : "psbench-emb", &ec,
			    &eb.e);
	if (ret)
		return tool_fail(ret, "opening the embedding table");
	if (cfg->rank == 0 && (ret = emb_fill(&eb, o)))
		return tool_fail(ret, "filling the embedding table");
	ret = rdps_barrier(ctx);
	if (ret)
		return tool_fail(ret, "barrier");
	if (cfg->rank != 0) {
		ret = cfg->model == RDPS_MODEL_ASP ? emb_busy(ctx, t, &eb, o)
						   : 0;
		if (ret)
			return tool_fail(ret, "busy pushes");
		ret = rdps_barrier(ctx);
		return ret ? tool_fail(ret, "barrier") : 0;
	}
	eb.keys = calloc(EMB_SETS * o->keys, sizeof(*eb.keys));
	dst = calloc(o->keys * o->dim, sizeof(float));
	if (!eb.keys || !dst) {
		tool_err("out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < EMB_SETS * o->keys; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		eb.keys[i] = emb_key((s >> 33) % EMB_POOL);
	}
	ret = shard_cost(ctx, &c0);
	if (ret) {
		tool_fail(ret, "reading the shards' statistics");
		goto out;
	}
	rdps_ctx_stats(ctx, &st0);
	rc = timed(ctx, t, o, step_emb, &eb, dst, "embedding pull", res);
	rdps_ctx_stats(ctx, &st1);
	if (!rc && (ret = shard_cost(ctx, &c1)))
		rc = tool_fail(ret, "reading the shards' statistics");
	if (!rc) {
		res->shard_msgs = c1.msgs - c0.msgs;
		res->shard_loop_ms = ms_diff(c0.loop_ms, c1.loop_ms);
		res->shard_proc_ms = ms_diff(c0.proc_ms, c1.proc_ms);
	}
	if (!rc) {
		double pulls = (double)(st1.emb_pulls - st0.emb_pulls);

		/* The two-sided lookup is one message and its credit per
		 * shard, all in flight together: one round trip, by
		 * construction (the library counts only one-sided pulls). */
		res->rtt_per_pull =
			o->two_sided
				? 1.0
				: (st1.emb_round_trips - st0.emb_round_trips) /
					  pulls;
		res->cache = !o->two_sided && eb.e->cfg.cache;
		res->hit_ratio =
			o->two_sided
				? 0.0
				: (st1.emb_cache_hits - st0.emb_cache_hits) /
					  (pulls * (double)o->keys);
		res->torn_per_pull = o->two_sided ? 0.0
						  : (st1.emb_torn_retries -
						     st0.emb_torn_retries) /
							    pulls;
		res->kps = res->r.median_us > 0
				   ? o->keys / (res->r.median_us * 1e-6)
				   : 0;
		if (st1.emb_misses != st0.emb_misses) {
			tool_err("emb: %llu keys of the filled table read as "
				 "absent",
				 (unsigned long long)(st1.emb_misses -
						      st0.emb_misses));
			rc = 1;
		}
	}
	/* Tell the busy ranks to stop, then meet them. */
	ret = rdps_push(t, 0, 1, &one);
	if (!ret)
		ret = rdps_barrier(ctx);
	if (ret && !rc)
		rc = tool_fail(ret, "stopping the busy workers");
out:
	free(eb.keys);
	free(dst);
	return rc;
}

/* push: each of the job's workers added warmup + iters ones to every
 * element; pull them back once everyone is done. */
static int check_sum(struct rdps_ctx *ctx, struct rdps_table *t,
		     const struct opts *o, int workers, float *dst)
{
	double want = (double)(o->warmup + o->iters) * workers;
	uint64_t n = o->size / 4;
	int ret;

	rdps_clear_error();
	ret = rdps_barrier(ctx);
	if (ret)
		return tool_fail(ret, "barrier");
	ret = rdps_pull(t, 0, n, dst);
	if (ret)
		return tool_fail(ret, "checking pull");
	for (uint64_t i = 0; i < n; i++) {
		if (fabs(dst[i] - want) > 0.5) {
			tool_err("push check: element %llu is %g, expected "
				 "%g: deltas were lost",
				 (unsigned long long)i, dst[i], want);
			return 1;
		}
	}
	return 0;
}

static unsigned count_shards(const char *shards)
{
	unsigned n = 1;

	for (; *shards; shards++)
		n += *shards == ',';
	return n;
}

static void print_result(const struct opts *o, const struct rdps_config *cfg,
			 const char *scheme, const struct result *res)
{
	const char *model = rdps_model_name(cfg->model);
	int bw = o->test == T_PULL || o->test == T_PUSH;
	size_t bytes = o->test == T_TICK ? 0 : o->size; /* tick moves none */

	if (o->test == T_EMB) {
		printf(o->json ? "{\"test\":\"emb\",\"transport\":\"%s\","
				 "\"shards\":%u,\"workers\":%d,\"model\":"
				 "\"%s\",\"lookup\":\"%s\",\"keys\":%llu,"
				 "\"dim\":%llu,"
				 "\"median_us\":%.4f,\"p99_us\":%.4f,"
				 "\"keys_per_s\":%.0f,\"round_trips\":%.3f,"
				 "\"torn\":%.4f,\"cache_hits\":%.4f,"
				 "\"shard_msgs\":%llu,"
				 "\"shard_loop_cpu_ms\":%.0f,"
				 "\"shard_cpu_ms\":%.0f}\n"
			       : "emb   %-4s %u shard(s) %d worker(s) %s %s  "
				 "keys "
				 "%5llu dim %3llu  median %9.4f us  p99 "
				 "%9.4f us  %11.0f keys/s  %.3f round "
				 "trips/pull  %.4f torn/pull  %.4f cached  "
				 "shards: %llu "
				 "msgs, loop thread %.0f ms, process %.0f ms "
				 "CPU\n",
		       scheme, count_shards(cfg->shards), cfg->workers, model,
		       o->two_sided ? "two-sided"
		       : res->cache ? "one-sided+cache"
				    : "one-sided",
		       (unsigned long long)o->keys, (unsigned long long)o->dim,
		       res->r.median_us, res->r.p99_us, res->kps,
		       res->rtt_per_pull, res->torn_per_pull, res->hit_ratio,
		       (unsigned long long)res->shard_msgs, res->shard_loop_ms,
		       res->shard_proc_ms);
		return;
	}
	if (o->json) {
		printf("{\"test\":\"%s\",\"transport\":\"%s\",\"shards\":%u,"
		       "\"workers\":%d,\"model\":\"%s\",\"slack\":%u,"
		       "\"bytes\":%zu,\"iters\":%llu,\"batch\":%llu,"
		       "\"min_us\":%.4f,\"median_us\":%.4f,\"avg_us\":%.4f,"
		       "\"p99_us\":%.4f,\"max_us\":%.4f",
		       test_names[o->test], scheme, count_shards(cfg->shards),
		       cfg->workers, model, cfg->slack, bytes,
		       (unsigned long long)res->r.iters,
		       (unsigned long long)o->batch, res->r.min_us,
		       res->r.median_us, res->r.avg_us, res->r.p99_us,
		       res->r.max_us);
		if (bw)
			printf(",\"gbps\":%.4f", res->gbps);
		if (o->test == T_PULL)
			printf(",\"dst\":\"rdps_buf_alloc\"");
		if (o->test == T_PUSH)
			printf(",\"src\":\"rdps_buf_alloc\"");
		if (res->has_ref)
			printf(",\"ref\":\"memcpy\",\"ref_median_us\":%.4f,"
			       "\"ref_gbps\":%.4f,\"ratio\":%.4f",
			       res->ref.median_us, res->ref_gbps,
			       res->ref_gbps > 0 ? res->gbps / res->ref_gbps
						 : 0);
		if (o->test == T_PUSH)
			printf(",\"applied\":true,\"checked\":%s",
			       res->checked ? "true" : "false");
		if (o->work)
			printf(",\"work_bytes\":%zu,\"work_us\":%.4f", o->work,
			       res->work_us);
		printf("}\n");
		return;
	}
	printf("%-5s %-4s %7zu B  median %9.4f us", test_names[o->test], scheme,
	       bytes, res->r.median_us);
	if (bw)
		printf("  %8.4f GB/s", res->gbps);
	printf("  min %.4f  p99 %.4f  (%u shard(s), %d worker(s), %s, "
	       "%llu iters",
	       res->r.min_us, res->r.p99_us, count_shards(cfg->shards),
	       cfg->workers, model, (unsigned long long)res->r.iters);
	if (o->batch > 1)
		printf(" in batches of %llu", (unsigned long long)o->batch);
	if (o->work)
		printf(", after %zu B of work taking %.4f us alone", o->work,
		       res->work_us);
	printf(")");
	if (o->test == T_PULL)
		printf("  dst rdps_buf_alloc");
	if (res->has_ref)
		printf("  memcpy %.4f GB/s  ratio %.2f", res->ref_gbps,
		       res->ref_gbps > 0 ? res->gbps / res->ref_gbps : 0);
	printf("\n");
}

int main(int argc, char **argv)
{
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;
	struct rdps_table *t = NULL;
	struct result res;
	struct opts o;
	char scheme[16], name[RDPS_TABLE_NAME_MAX + 1];
	void *a = NULL, *b = NULL;
	uint64_t n;
	int ret, rc = 1;

	tool_name = "rdps-psbench";
	if (parse_args(argc, argv, &o))
		return 2;
	memset(&res, 0, sizeof(res));
	rdps_config_default(&cfg);
	rdps_clear_error();
	ret = rdps_config_from_env(&cfg);
	if (ret)
		return tool_fail(ret, "reading the environment");
	if (!cfg.shards) {
		tool_err("RDPS_SHARDS is not set: run under rdps-launch, e.g. "
			 "rdps-launch -s 4 -w 1 -- rdps-psbench pull");
		return 2;
	}
	cfg.poll_mode = o.poll_mode;
	scheme_of(cfg.shards, scheme, sizeof(scheme));
	if (o.test == T_PUSH && cfg.model == RDPS_MODEL_BSP) {
		tool_err("push times applied deltas, and bsp applies them only "
			 "at the clock: run it with rdps-launch -m ssp or asp");
		return 2;
	}
	if (o.test == T_TICK && cfg.model != RDPS_MODEL_ASP &&
	    cfg.workers > 1 &&
	    (cfg.model == RDPS_MODEL_BSP || cfg.slack < o.warmup + o.iters + 1))
		fprintf(stderr,
			"%s: warning: tick with %d workers may block on the "
			"others; the issue's tick is one worker's\n",
			tool_name, cfg.workers);

	/* The reference first, while nothing else of ours runs. */
	if (o.test == T_PULL && cfg.rank == 0 && run_memcpy(&o, &res))
		return 1;

	rdps_clear_error();
	ret = rdps_ctx_create(&cfg, &ctx);
	if (ret)
		return tool_fail(ret, "connecting to the shards");
	if (o.table)
		snprintf(name, sizeof(name), "%s", o.table);
	else
		snprintf(name, sizeof(name), "psbench-%s", test_names[o.test]);
	n = o.size / 4;
	if (o.test == T_ROUND || o.test == T_TICK)
		n = n < 262144 ? 262144 : n;
	if (o.test == T_EMB)
		n = 16; /* the busy workers' stop flag */
	rdps_clear_error();
	ret = rdps_table_open(ctx, name, n, RDPS_DTYPE_F32, RDPS_RULE_SUM, 0,
			      &t);
	if (ret) {
		rc = tool_fail(ret, "opening the table");
		goto out;
	}
	if (o.test == T_PUSH) {
		/* Registered memory: the push's zero-copy path. */
		rdps_clear_error();
		a = rdps_buf_alloc(ctx, o.size);
		if (!a)
			tool_err("rdps_buf_alloc of %zu bytes failed: %s",
				 o.size, rdps_errmsg());
	} else {
		a = buf_alloc(o.size, 0);
	}
	if (o.test == T_PULL) {
		/* Registered memory: the pull's zero-copy path. */
		rdps_clear_error();
		b = rdps_buf_alloc(ctx, o.size);
		if (!b) {
			tool_err("rdps_buf_alloc of %zu bytes failed: %s",
				 o.size, rdps_errmsg());
			goto out;
		}
	} else {
		b = buf_alloc(o.size, 0);
	}
	if (!a || !b)
		goto out;
	for (uint64_t i = 0; i < o.size / 4; i++)
		((float *)a)[i] = 1.0f;
	rdps_clear_error();
	ret = rdps_barrier(ctx);
	if (ret) {
		rc = tool_fail(ret, "barrier");
		goto out;
	}
	switch (o.test) {
	case T_PULL:
		rc = timed(ctx, t, &o, step_pull, b, NULL, "pull", &res);
		break;
	case T_PUSH:
		rc = timed(ctx, t, &o, step_push, a, NULL, "push", &res);
		if (!rc) {
			rc = check_sum(ctx, t, &o, cfg.workers, b);
			res.checked = !rc;
		}
		break;
	case T_TICK:
		rc = timed(ctx, t, &o, step_tick, NULL, NULL, "clock", &res);
		break;
	case T_ROUND:
		rc = timed(ctx, t, &o, step_round, a, b, "push then pull",
			   &res);
		break;
	case T_EMB:
		rc = run_emb(ctx, t, &o, &cfg, &res);
		break;
	}
	if (rc)
		goto out;
	if (cfg.rank == 0) {
		print_result(&o, &cfg, scheme, &res);
		fflush(stdout);
	}
	rc = 0;
out:
	if (o.test == T_PUSH)
		rdps_buf_free(ctx, a);
	else
		free(a);
	if (o.test == T_PULL)
		rdps_buf_free(ctx, b);
	else
		free(b);
	rdps_ctx_destroy(ctx);
	return rc;
}
