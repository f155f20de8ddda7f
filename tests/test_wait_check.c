/* SPDX-License-Identifier: MIT */
/*
 * test_wait_check.c - rdps_ctx_set_wait_check(): a blocked rdps_clock()
 * ends with -EINTR soon after its check asks to stop, and the context is
 * then as rdps.h says: the tick is counted (rdps_clock_now() has it, and
 * the other worker's clock completes on it), every later call fails with
 * -EINTR without sending anything, and rdps_ctx_destroy() leaves cleanly
 * (the other worker hears that it left, not that it died). A clock that
 * does not wait never calls its check.
 *
 * One shm shard (in a thread) and two BSP workers (threads). Worker 0
 * ticks alone and blocks; its check stops it at the third call. Only
 * then does worker 1 tick.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "rdps/rdps.h"
#include "rdps_base.h"
#include "server.h"
#include "test_check.h"

/* Far below the timeout: the clock ended by the check, not by it. */
#define TIMEOUT_MS 20000
#define STOP_BOUND_NS 1000000000ull
#define STOP_AT 3

static volatile sig_atomic_t stop_server;
static int w0_out, w0_gone;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char url[128];

static void *server_main(void *arg)
{
	struct rdps_server *s = arg;

	return (void *)(intptr_t)rdps_server_run(s, &stop_server);
}

struct wk {
	int rank, ret_create, ret_barrier, ret_clock;
	int checks;	     /* calls of its check */
	uint64_t stopped_ns; /* when the check first returned non-zero */
	uint64_t returned_ns;
	uint64_t clock_now; /* rdps_clock_now() after the clock */
	int ret_again[3];   /* clock, barrier, pull after -EINTR */
	uint64_t ops_before, ops_after;
	int ret_last; /* worker 1: the barrier after worker 0 left */
	char msg[512], msg_again[512], msg_last[512];
};

static int check_fn(void *arg)
{
	struct wk *w = arg;

	if (++w->checks < STOP_AT)
		return 0;
	if (!w->stopped_ns)
		w->stopped_ns = rdps_now_ns();
	return 7;
}

static void signal_flag(int *flag)
{
	pthread_mutex_lock(&mu);
	*flag = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void wait_flag(const int *flag)
{
	pthread_mutex_lock(&mu);
	while (!*flag)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void worker0(struct wk *w, struct rdps_ctx *ctx, struct rdps_table *t)
{
	struct rdps_stats st;
	float v[4];

	rdps_ctx_set_wait_check(ctx, check_fn, w);
	w->ret_clock = rdps_clock(ctx);
	w->returned_ns = rdps_now_ns();
	snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
	w->clock_now = rdps_clock_now(ctx);
	rdps_ctx_stats(ctx, &st);
	w->ops_before = st.remote_ops;
	w->ret_again[0] = rdps_clock(ctx);
	snprintf(w->msg_again, sizeof(w->msg_again), "%s", rdps_errmsg());
	w->ret_again[1] = rdps_barrier(ctx);
	w->ret_again[2] = rdps_pull(t, 0, 4, v);
	rdps_ctx_stats(ctx, &st);
	w->ops_after = st.remote_ops;
	signal_flag(&w0_out);
}

static void worker1(struct wk *w, struct rdps_ctx *ctx)
{
	wait_flag(&w0_out);
	rdps_ctx_set_wait_check(ctx, check_fn, w);
	/* Worker 0's tick is counted: this one is the last, never waits. */
	w->ret_clock = rdps_clock(ctx);
	snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
	w->clock_now = rdps_clock_now(ctx);
	wait_flag(&w0_gone);
	rdps_ctx_set_wait_check(ctx, NULL, NULL);
	w->ret_last = rdps_barrier(ctx);
	snprintf(w->msg_last, sizeof(w->msg_last), "%s", rdps_errmsg());
}

static void *worker_main(void *arg)
{
	struct wk *w = arg;
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;
	struct rdps_table *t = NULL;

	rdps_config_default(&cfg);
	cfg.shards = url;
	cfg.rank = w->rank;
	cfg.workers = 2;
	cfg.token = 13;
	cfg.model = RDPS_MODEL_BSP;
	cfg.timeout_ms = TIMEOUT_MS;
	w->ret_create = rdps_ctx_create(&cfg, &ctx);
	if (!w->ret_create)
		w->ret_create = rdps_table_open(ctx, "t", 4, RDPS_DTYPE_F32,
						RDPS_RULE_SUM, 0, &t);
	if (w->ret_create) {
		snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
		signal_flag(w->rank ? &w0_gone : &w0_out);
		rdps_ctx_destroy(ctx);
		return NULL;
	}
	/* Both connected before worker 0 ticks alone. */
	w->ret_barrier = rdps_barrier(ctx);
	if (w->rank == 0) {
		worker0(w, ctx, t);
		rdps_ctx_destroy(ctx);
		signal_flag(&w0_gone);
	} else {
		worker1(w, ctx);
		rdps_ctx_destroy(ctx);
	}
	return NULL;
}

static void test_check_interrupts_clock(void **state)
{
	struct rdps_server_cfg scfg;
	struct rdps_server *s = NULL;
	struct wk w[2] = {{.rank = 0}, {.rank = 1}};
	pthread_t st, wt[2];
	void *sret;
	int ret;

	(void)state;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-waitcheck", (int)getpid());
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = 2;
	scfg.token = 13;
	scfg.model = RDPS_MODEL_BSP;
	ret = rdps_server_create(&scfg, &s);
	CHECK(ret == 0, "rdps_server_create: %s", rdps_errmsg());
	CHECK(pthread_create(&st, NULL, server_main, s) == 0, "server thread");
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&wt[i], NULL, worker_main, &w[i]) == 0,
		      "worker %d thread", i);
	for (int i = 0; i < 2; i++)
		pthread_join(wt[i], NULL);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);

	for (int i = 0; i < 2; i++) {
		CHECK(w[i].ret_create == 0, "worker %d: create: %s", i,
		      w[i].msg);
		CHECK(w[i].ret_barrier == 0, "worker %d: barrier %d", i,
		      w[i].ret_barrier);
	}
	/* Worker 0: interrupted, promptly, with the text saying so. */
	CHECK(w[0].ret_clock == -EINTR,
	      "worker 0: rdps_clock %d (%s), not "
	      "-EINTR",
	      w[0].ret_clock, w[0].msg);
	CHECK(w[0].checks == STOP_AT,
	      "worker 0: check called %d times, "
	      "expected %d (stop at the first non-zero)",
	      w[0].checks, STOP_AT);
	CHECK(w[0].returned_ns - w[0].stopped_ns < STOP_BOUND_NS,
	      "worker 0: rdps_clock returned %llu ms after its check asked "
	      "to stop",
	      (unsigned long long)((w[0].returned_ns - w[0].stopped_ns) /
				   1000000));
	CHECK(strstr(w[0].msg, "interrupted"), "worker 0: message '%s'",
	      w[0].msg);
	/* The tick is counted. */
	CHECK(w[0].clock_now == 1, "worker 0: rdps_clock_now %llu, not 1",
	      (unsigned long long)w[0].clock_now);
	/* Every later call refused, nothing sent. */
	for (int i = 0; i < 3; i++)
		CHECK(w[0].ret_again[i] == -EINTR,
		      "worker 0: call %d after the interrupt returned %d, not "
		      "-EINTR",
		      i, w[0].ret_again[i]);
	CHECK(strstr(w[0].msg_again, "interrupted"),
	      "worker 0: later message '%s'", w[0].msg_again);
	CHECK(w[0].ops_after == w[0].ops_before,
	      "worker 0: %llu remote operations after the interrupt",
	      (unsigned long long)(w[0].ops_after - w[0].ops_before));
	/* Worker 1: clock 0 completes on worker 0's tick, with no wait and
	 * so no check. */
	CHECK(w[1].ret_clock == 0, "worker 1: rdps_clock %d: %s",
	      w[1].ret_clock, w[1].msg);
	CHECK(w[1].clock_now == 1, "worker 1: rdps_clock_now %llu",
	      (unsigned long long)w[1].clock_now);
	CHECK(w[1].checks == 0,
	      "worker 1: a clock that did not wait called its check %d "
	      "times",
	      w[1].checks);
	/* Worker 0 said bye: it left, it did not die. */
	CHECK(w[1].ret_last == -EPIPE && strstr(w[1].msg_last, "left the job"),
	      "worker 1: barrier after worker 0 left: %d '%s', expected "
	      "-EPIPE naming a departure",
	      w[1].ret_last, w[1].msg_last);
	CHECK((intptr_t)sret == 0, "rdps_server_run failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_interrupts_clock),
	};

	return cmocka_run_group_tests_name("wait_check", tests, NULL, NULL);
}
