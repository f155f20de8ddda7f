/* SPDX-License-Identifier: MIT */
/*
 * test_clock_reads.c - how many remote operations a clock wait issues
 * (src/worker/clock.c, wrk_word_wait): a waiter on the flat counter
 * sends one PS_WAIT and reads nothing (its release says the shard read
 * the word), however long it waits and however many wait; only a
 * wait past the safety period (100 ms) reads again, a few per period. The
 * re-read loop this replaced grew with the log of the wait (44 at 50 ms),
 * and W waiters re-reading one word delayed the fetch-adds they waited
 * for (issue 16). The clock tree's waiters still re-read (wrk_slack_wait):
 * their count must grow at most logarithmically with the wait up to
 * 128 ms, and by one per 16 ms beyond.
 *
 * One shm shard in a thread, workers in threads. Each round all meet at a
 * pthread barrier; the last worker then ticks D later (the wait being
 * measured, not a synchronisation), the others at once, and the waiters
 * count their remote operations over their rdps_clock
 * (rdps_stats.remote_ops) against the time they spent in it.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "rdps/rdps.h"
#include "rdps_base.h"
#include "server.h"
#include "test_check.h"
#include "worker/worker.h"

static volatile sig_atomic_t stop_server;
static char url[128];
static pthread_barrier_t round_start;

/* Worker 1's delay before each tick, in microseconds; 0 ends the list. */
static const unsigned delays_us[] = {200, 2000, 20000, 100000, 0};
#define ROUNDS 2 /* per delay */

static void *server_main(void *arg)
{
	return (void *)(intptr_t)rdps_server_run(arg, &stop_server);
}

static void cfg_of(struct rdps_config *cfg, int rank)
{
	rdps_config_default(cfg);
	cfg->shards = url;
	cfg->rank = rank;
	cfg->workers = 2;
	cfg->token = 23;
	cfg->timeout_ms = 10000;
}

/* Worker 0 counts; the others tick in threads, the last one late. */
struct other_arg {
	struct rdps_ctx *ctx;
	int late;
};

static void *other_worker(void *arg)
{
	struct other_arg *o = arg;
	struct rdps_ctx *ctx = o->ctx;
	intptr_t ret = 0;

	for (unsigned i = 0; delays_us[i]; i++)
		for (unsigned r = 0; r < ROUNDS; r++) {
			unsigned d = o->late ? delays_us[i] : 0;
			struct timespec ts = {
				.tv_sec = d / 1000000,
				.tv_nsec = (long)(d % 1000000) * 1000,
			};

			pthread_barrier_wait(&round_start);
			nanosleep(&ts, NULL);
			if (!ret)
				ret = rdps_clock(ctx);
		}
	return (void *)ret;
}

/*
 * The most reads (and PS_WAITs) a wait of us microseconds may issue: the
 * PS_WAIT; per safety
 * period passed (100 ms), the safety read, shard 0's header (loss check),
 * the stall check's reading once, and the PS_WAIT again after a wake-up.
 * Constant in the wait up to 100 ms.
 */
static double reads_bound(double us)
{
	return 1 + 4 * floor(us / 100000);
}

/*
 * The clock tree's waiters still re-read their group's release word
 * (clock.c, wrk_clock_backoff): 6 fast tries, then sleeps from 10 us
 * doubling every second try (2 per doubling) up to 1 ms, sleeps of 1 ms
 * up to 8 ms, then a sleep of an eighth of the wait so far (6 tries per
 * doubling) up to 16 ms, then one try per 16 ms; every 16th try reads the
 * shard's header too (wrk_lost_check), and 4 of slack for the stall check
 * and a scheduler that runs the waiter late; 1 more for the root's
 * fetch-add when worker 0 completed its group.
 */
static double tree_reads_bound(double us)
{
	double b = 6, t = us < 10 ? 10 : us;

	b += 2 * log2((t < 1000 ? t : 1000) / 10);
	if (t > 1000)
		b += ((t < 8000 ? t : 8000) - 1000) / 1000;
	if (t > 8000)
		b += 6 * log2((t < 128000 ? t : 128000) / 8000);
	if (t > 128000)
		b += (t - 128000) / 16000;
	return b * 17 / 16 + 4 + 1;
}

/* A shard of workers workers under model (slack) in a thread, at url:
 * shm, or tcp on a free port when name is "tcp". */
static void server_start(const char *name, unsigned workers,
			 enum rdps_model model, unsigned slack,
			 struct rdps_server **s, pthread_t *st)
{
	struct rdps_server_cfg scfg;

	stop_server = 0;
	if (!strcmp(name, "tcp"))
		snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
	else
		snprintf(url, sizeof(url), "shm://rdps-t-%d-%s", (int)getpid(),
			 name);
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = workers;
	scfg.model = model;
	scfg.slack = slack;
	scfg.token = 23;
	CHECK(rdps_server_create(&scfg, s) == 0, "rdps_server_create: %s",
	      rdps_errmsg());
	/* tcp: the port the shard got. */
	snprintf(url, sizeof(url), "%s", rdps_server_url(*s));
	CHECK(pthread_create(st, NULL, server_main, *s) == 0, "server thread");
}

/*
 * Worker 0's operations per BSP tick, less its END and fetch-add, while
 * the last of workers workers (fan-in fanin) ticks each delay late:
 * within bound(wait).
 */
static void reads_per_wait(const char *name, unsigned workers, unsigned fanin,
			   double (*bound)(double))
{
	struct rdps_server *s = NULL;
	struct rdps_config cfg;
	struct rdps_ctx *w[3] = {NULL, NULL, NULL};
	struct other_arg o[3];
	pthread_t st, ot[3];
	void *sret, *oret;
	int ret = 0, failed = 0, oerr = 0;

	server_start(name, workers, RDPS_MODEL_BSP, 0, &s, &st);
	for (unsigned r = 0; r < workers; r++) {
		cfg_of(&cfg, (int)r);
		cfg.workers = workers;
		cfg.clock_fanin = fanin;
		CHECK(rdps_ctx_create(&cfg, &w[r]) == 0, "worker %u: %s", r,
		      rdps_errmsg());
	}
	pthread_barrier_init(&round_start, NULL, workers);
	for (unsigned r = 1; r < workers; r++) {
		o[r].ctx = w[r];
		o[r].late = r == workers - 1;
		CHECK(pthread_create(&ot[r], NULL, other_worker, &o[r]) == 0,
		      "worker %u", r);
	}

	print_message("%s: %10s %10s %6s %6s\n", name, "delay_us", "wait_us",
		      "reads", "bound");
	for (unsigned i = 0; delays_us[i]; i++)
		for (unsigned r = 0; r < ROUNDS; r++) {
			struct rdps_stats a, b;
			uint64_t t0;
			double us, reads;

			pthread_barrier_wait(&round_start);
			rdps_ctx_stats(w[0], &a);
			t0 = rdps_now_ns();
			if (!ret)
				ret = rdps_clock(w[0]);
			us = (double)(rdps_now_ns() - t0) / 1e3;
			rdps_ctx_stats(w[0], &b);
			/* Less the END and the fetch-add of the tick. */
			reads = (double)(b.remote_ops - a.remote_ops) - 2;
			print_message("%s: %10u %10.0f %6.0f %6.0f\n", name,
				      delays_us[i], us, reads, bound(us));
			if (reads > bound(us))
				failed = 1;
		}
	for (unsigned r = 1; r < workers; r++) {
		pthread_join(ot[r], &oret);
		oerr |= oret != NULL;
	}
	pthread_barrier_destroy(&round_start);
	for (unsigned r = workers; r-- > 0;)
		rdps_ctx_destroy(w[r]);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);
	CHECK(ret == 0 && !oerr, "a clock failed: %d: %s", ret, rdps_errmsg());
	CHECK(!failed,
	      "%s: a wait issued more operations than its bound "
	      "(above)",
	      name);
}

static void test_reads_per_wait(void **state)
{
	(void)state;
	reads_per_wait("clkreads", 2, 1, reads_bound);
}

/* Three workers in groups of 2: worker 2 alone completes its group and
 * the root, and releases both groups. */
static void test_tree_reads_per_wait(void **state)
{
	(void)state;
	reads_per_wait("treereads", 3, 2, tree_reads_bound);
}

/* W workers, the last of which ticks (or enters the barrier) 50 ms late
 * each round; the others count their operations. */
#define MANY_W 4
#define MANY_ROUNDS 3
#define MANY_LATE_US 50000

struct many_arg {
	struct rdps_ctx *ctx;
	int barrier; /* rdps_barrier instead of rdps_clock */
	int late;
	int ret;
	/* The most operations of one call, less 4 per safety period (100
	 * ms) it lasted (reads_bound), and the fewest of one that lasted
	 * less than a period. */
	int64_t ops_max, ops_min;
};

static pthread_barrier_t many_start;

static void *many_worker(void *arg)
{
	struct many_arg *a = arg;

	for (unsigned r = 0; r < MANY_ROUNDS; r++) {
		struct rdps_stats x, y;
		uint64_t t0;
		int64_t ops, periods;

		pthread_barrier_wait(&many_start);
		if (a->late) {
			struct timespec ts = {0, MANY_LATE_US * 1000L};

			nanosleep(&ts, NULL);
		}
		rdps_ctx_stats(a->ctx, &x);
		t0 = rdps_now_ns();
		if (!a->ret)
			a->ret = a->barrier ? rdps_barrier(a->ctx)
					    : rdps_clock(a->ctx);
		periods = (int64_t)((rdps_now_ns() - t0) / 100000000);
		rdps_ctx_stats(a->ctx, &y);
		ops = (int64_t)(y.remote_ops - x.remote_ops) - 4 * periods;
		if (ops > a->ops_max)
			a->ops_max = ops;
		/* Exact only within a safety period. */
		if (!periods && (!a->ops_min || ops < a->ops_min))
			a->ops_min = ops;
	}
	return NULL;
}

/*
 * MANY_W BSP workers, one 50 ms late each round: a waiter's tick issues
 * its END and fetch-add (the END registered its wait on shard 0, on shm
 * and tcp: no PS_WAIT), the late one's END, fetch-add and PS_DONE; a
 * barrier's waiter its fetch-add and a PS_WAIT, the late one its
 * fetch-add and PS_DONE; and 4 more only per 100 ms a wait on a loaded
 * machine lasts (its safety read and checks). The re-read loop before it
 * issued 44 in a 50 ms wait. With a read phase of reads re-reads
 * (clock.c wrk_clock_reads; verbs has one, shm and tcp none, so the
 * test sets it), a waiter issues reads more: the phase ends long before
 * the late worker comes, and it stays the same however long the wait.
 */
static void many_waiters(int barrier, unsigned reads, int tcp)
{
	struct rdps_server *s = NULL;
	struct rdps_config cfg;
	struct many_arg a[MANY_W];
	pthread_t st, t[MANY_W];
	void *sret;
	int64_t waiter = 2 + (int64_t)reads, last = barrier ? 2 : 3;
	int64_t bound = waiter > last ? waiter : last;

	server_start(tcp       ? "tcp"
		     : barrier ? "manybar"
			       : "manyclk",
		     MANY_W, RDPS_MODEL_BSP, 0, &s, &st);
	for (unsigned r = 0; r < MANY_W; r++) {
		cfg_of(&cfg, (int)r);
		cfg.workers = MANY_W;
		memset(&a[r], 0, sizeof(a[r]));
		a[r].barrier = barrier;
		a[r].late = r == MANY_W - 1;
		CHECK(rdps_ctx_create(&cfg, &a[r].ctx) == 0, "worker %u: %s", r,
		      rdps_errmsg());
		if (reads)
			a[r].ctx->clock_reads_set = reads + 1;
	}
	pthread_barrier_init(&many_start, NULL, MANY_W);
	for (unsigned r = 0; r < MANY_W; r++)
		CHECK(pthread_create(&t[r], NULL, many_worker, &a[r]) == 0,
		      "worker thread");
	for (unsigned r = 0; r < MANY_W; r++)
		pthread_join(t[r], NULL);
	pthread_barrier_destroy(&many_start);
	for (unsigned r = 0; r < MANY_W; r++)
		rdps_ctx_destroy(a[r].ctx);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);
	for (unsigned r = 0; r < MANY_W; r++) {
		print_message("%s worker %u: at most %lld operations a call\n",
			      barrier ? "barrier" : "clock", r,
			      (long long)a[r].ops_max);
		CHECK(a[r].ret == 0, "worker %u failed: %d: %s", r, a[r].ret,
		      rdps_errmsg());
		CHECK(a[r].ops_max <= bound,
		      "%s: worker %u issued %lld operations in one call "
		      "waiting 50 ms for the last worker, want at most %lld",
		      barrier ? "rdps_barrier" : "rdps_clock", r,
		      (long long)a[r].ops_max, (long long)bound);
		CHECK(a[r].late || a[r].ops_min == waiter,
		      "%s: waiter %u issued %lld operations in a 50 ms wait "
		      "with %u re-reads before its PS_WAIT, want %lld",
		      barrier ? "rdps_barrier" : "rdps_clock", r,
		      (long long)a[r].ops_min, reads, (long long)waiter);
	}
}

static void test_waiters_ops_flat(void **state)
{
	(void)state;
	many_waiters(0, 0, 0);
	many_waiters(1, 0, 0);
	many_waiters(0, 6, 0);
	many_waiters(1, 6, 0);
	/* tcp: no read phase (its shard's thread would answer each). */
	many_waiters(0, 0, 1);
}

/*
 * A worker that saw the last arrival at clock t knows every clock up to t
 * is complete, so its SSP slack checks of those clocks read nothing: one
 * SSP worker alone (always last), slack 1, ticks on its fetch-add alone.
 * Reading the counter anyway would double the tick's remote operations.
 */
static void test_known_done_reads_nothing(void **state)
{
	struct rdps_server *s = NULL;
	struct rdps_config cfg;
	struct rdps_ctx *w = NULL;
	struct rdps_stats a, b;
	pthread_t st;
	void *sret;
	int ret = 0;

	(void)state;
	server_start("clkdone", 1, RDPS_MODEL_SSP, 1, &s, &st);
	cfg_of(&cfg, 0);
	cfg.workers = 1;
	cfg.model = RDPS_MODEL_SSP;
	cfg.slack = 1;
	CHECK(rdps_ctx_create(&cfg, &w) == 0, "worker: %s", rdps_errmsg());
	for (unsigned i = 0; i < 2 && !ret; i++)
		ret = rdps_clock(w);
	rdps_ctx_stats(w, &a);
	for (unsigned i = 0; i < 50 && !ret; i++)
		ret = rdps_clock(w);
	rdps_ctx_stats(w, &b);
	rdps_ctx_destroy(w);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);
	CHECK(ret == 0, "a clock failed: %d: %s", ret, rdps_errmsg());
	CHECK(b.remote_ops - a.remote_ops == 50,
	      "50 ticks of a lone SSP worker took %llu remote operations, "
	      "want 50 (the fetch-adds; no slack read)",
	      (unsigned long long)(b.remote_ops - a.remote_ops));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_per_wait),
		cmocka_unit_test(test_tree_reads_per_wait),
		cmocka_unit_test(test_waiters_ops_flat),
		cmocka_unit_test(test_known_done_reads_nothing),
	};

	return cmocka_run_group_tests_name("clock_reads", tests, NULL, NULL);
}
