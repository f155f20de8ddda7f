/* SPDX-License-Identifier: MIT */
/*
 * test_clock_reads.c - how many remote operations a BSP clock wait issues
 * as a function of how long it waits (src/worker/clock.c, wrk_slack_wait):
 * the re-reads of the clock word must back off so that their count grows
 * at most logarithmically with the wait up to 128 ms, and by one per 16 ms
 * beyond (a read storm of W waiters on one word delays the fetch-adds
 * they wait for; issue 16).
 *
 * One shm shard in a thread, two workers in threads. Each round both meet
 * at a pthread barrier; worker 1 then ticks D later (the wait being
 * measured, not a synchronisation), worker 0 at once, and worker 0 counts
 * its remote operations over its rdps_clock (rdps_stats.remote_ops, less
 * the END and the fetch-add) against the time it spent in it.
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

static void *late_worker(void *arg)
{
	struct rdps_ctx *ctx = arg;
	intptr_t ret = 0;

	for (unsigned i = 0; delays_us[i]; i++)
		for (unsigned r = 0; r < ROUNDS; r++) {
			struct timespec ts = {
				.tv_sec = delays_us[i] / 1000000,
				.tv_nsec =
					(long)(delays_us[i] % 1000000) * 1000,
			};

			pthread_barrier_wait(&round_start);
			nanosleep(&ts, NULL);
			if (!ret)
				ret = rdps_clock(ctx);
		}
	return (void *)ret;
}

/*
 * The most re-reads a wait of us microseconds may issue: 6 fast tries,
 * then sleeps from 10 us doubling every second try (2 per doubling) up to
 * 1 ms, sleeps of 1 ms up to 8 ms, then a sleep of an eighth of the wait
 * so far (6 tries per doubling) up to 16 ms, then one try per 16 ms; every 16th
 * try reads the shard's header too (wrk_lost_check), and 4 of slack for the
 * stall check and a scheduler that runs the waiter late.
 */
static double reads_bound(double us)
{
	double b = 6, t = us < 10 ? 10 : us;

	b += 2 * log2((t < 1000 ? t : 1000) / 10);
	if (t > 1000)
		b += ((t < 8000 ? t : 8000) - 1000) / 1000;
	if (t > 8000)
		b += 6 * log2((t < 128000 ? t : 128000) / 8000);
	if (t > 128000)
		b += (t - 128000) / 16000;
	return b * 17 / 16 + 4;
}

/* A shard of workers workers under model (slack) in a thread, at url. */
static void server_start(const char *name, unsigned workers,
			 enum rdps_model model, unsigned slack,
			 struct rdps_server **s, pthread_t *st)
{
	struct rdps_server_cfg scfg;

	stop_server = 0;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-%s", (int)getpid(), name);
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = workers;
	scfg.model = model;
	scfg.slack = slack;
	scfg.token = 23;
	CHECK(rdps_server_create(&scfg, s) == 0, "rdps_server_create: %s",
	      rdps_errmsg());
	CHECK(pthread_create(st, NULL, server_main, *s) == 0, "server thread");
}

static void test_reads_per_wait(void **state)
{
	struct rdps_server *s = NULL;
	struct rdps_config cfg;
	struct rdps_ctx *w0 = NULL, *w1 = NULL;
	pthread_t st, lt;
	void *sret, *lret;
	int ret = 0, failed = 0;

	(void)state;
	server_start("clkreads", 2, RDPS_MODEL_BSP, 0, &s, &st);
	cfg_of(&cfg, 0);
	CHECK(rdps_ctx_create(&cfg, &w0) == 0, "worker 0: %s", rdps_errmsg());
	cfg_of(&cfg, 1);
	CHECK(rdps_ctx_create(&cfg, &w1) == 0, "worker 1: %s", rdps_errmsg());
	pthread_barrier_init(&round_start, NULL, 2);
	CHECK(pthread_create(&lt, NULL, late_worker, w1) == 0, "worker 1");

	print_message("%10s %10s %6s %6s\n", "delay_us", "wait_us", "reads",
		      "bound");
	for (unsigned i = 0; delays_us[i]; i++)
		for (unsigned r = 0; r < ROUNDS; r++) {
			struct rdps_stats a, b;
			uint64_t t0;
			double us, reads;

			pthread_barrier_wait(&round_start);
			rdps_ctx_stats(w0, &a);
			t0 = rdps_now_ns();
			if (!ret)
				ret = rdps_clock(w0);
			us = (double)(rdps_now_ns() - t0) / 1e3;
			rdps_ctx_stats(w0, &b);
			/* Less the END and the fetch-add of the tick. */
			reads = (double)(b.remote_ops - a.remote_ops) - 2;
			print_message("%10u %10.0f %6.0f %6.0f\n", delays_us[i],
				      us, reads, reads_bound(us));
			if (reads > reads_bound(us))
				failed = 1;
		}
	pthread_join(lt, &lret);
	pthread_barrier_destroy(&round_start);
	rdps_ctx_destroy(w1);
	rdps_ctx_destroy(w0);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);
	CHECK(ret == 0 && lret == NULL, "a clock failed: %d: %s", ret,
	      rdps_errmsg());
	CHECK(!failed, "a wait issued more re-reads than its bound (above)");
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
		cmocka_unit_test(test_known_done_reads_nothing),
	};

	return cmocka_run_group_tests_name("clock_reads", tests, NULL, NULL);
}
