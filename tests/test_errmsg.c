/* SPDX-License-Identifier: MIT */
/*
 * test_errmsg.c - rdps_errmsg() after a wait that recovered. A wait on a
 * clock that drags on asks shard 0 whether a worker it needs was lost
 * (wrk_lost_check); a loss it hears of is no reason to fail when the next
 * read shows the clock complete after all (the lost worker had arrived).
 * The call then succeeds, and must not leave the loss's text behind for
 * the caller to find in rdps_errmsg().
 *
 * One shm shard (in a thread) and two workers (threads). Worker 0 ticks
 * first and waits; wrk_lost_check is wrapped (-Wl,--wrap) so that its
 * first call on worker 0 lets worker 1 tick, waits until worker 1's
 * rdps_clock() returned (the clock is then complete), and reports a loss
 * with its text, as a real check that raced a worker's death would.
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
#include "worker/worker.h"

#define LOSS_TEXT "this clock cannot complete: worker 1 is gone (injected)"

static volatile sig_atomic_t stop_server;
static int go_w1, w1_done, injected;
static pthread_t w0_thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char url[128];

int __real_wrk_lost_check(struct rdps_ctx *ctx, unsigned attempt,
			  uint64_t deadline, const struct wrk_round *rd,
			  uint64_t seen);
int __wrap_wrk_lost_check(struct rdps_ctx *ctx, unsigned attempt,
			  uint64_t deadline, const struct wrk_round *rd,
			  uint64_t seen);

int __wrap_wrk_lost_check(struct rdps_ctx *ctx, unsigned attempt,
			  uint64_t deadline, const struct wrk_round *rd,
			  uint64_t seen)
{
	/* Worker 0's clock wait only: its barrier waits are real. */
	if (!pthread_equal(pthread_self(), w0_thread) || rd->barrier ||
	    injected)
		return __real_wrk_lost_check(ctx, attempt, deadline, rd, seen);
	injected = 1;
	pthread_mutex_lock(&mu);
	go_w1 = 1;
	pthread_cond_broadcast(&cv);
	while (!w1_done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return rdps_set_error(-EPIPE, "%s", LOSS_TEXT);
}

static void *server_main(void *arg)
{
	struct rdps_server *s = arg;

	return (void *)(intptr_t)rdps_server_run(s, &stop_server);
}

struct wk {
	int rank, ret_create, ret_clock, ret_barrier;
	char msg[512];
};

static void *worker_main(void *arg)
{
	struct wk *w = arg;
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;

	rdps_config_default(&cfg);
	cfg.shards = url;
	cfg.rank = w->rank;
	cfg.workers = 2;
	cfg.token = 12;
	cfg.timeout_ms = 20000;
	w->ret_create = rdps_ctx_create(&cfg, &ctx);
	if (w->ret_create) {
		snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
		return NULL;
	}
	/* Both connected before worker 0 ticks alone. */
	w->ret_barrier = rdps_barrier(ctx);
	if (w->rank == 1) {
		pthread_mutex_lock(&mu);
		while (!go_w1)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
	}
	rdps_clear_error();
	w->ret_clock = rdps_clock(ctx);
	snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
	if (w->rank == 1) {
		pthread_mutex_lock(&mu);
		w1_done = 1;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	/* Leave together: a context destroyed early is a departure. */
	rdps_barrier(ctx);
	rdps_ctx_destroy(ctx);
	return NULL;
}

static void test_recovered_wait_clears_text(void **state)
{
	struct rdps_server_cfg scfg;
	struct rdps_server *s = NULL;
	struct wk w[2] = {{.rank = 0}, {.rank = 1}};
	pthread_t st, t1;
	void *sret;
	int ret;

	(void)state;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-errmsg", (int)getpid());
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = 2;
	scfg.token = 12;
	ret = rdps_server_create(&scfg, &s);
	CHECK(ret == 0, "rdps_server_create: %s", rdps_errmsg());
	CHECK(pthread_create(&st, NULL, server_main, s) == 0, "server thread");
	/* Worker 0's thread id must be known before it can wait. */
	pthread_mutex_lock(&mu);
	CHECK(pthread_create(&w0_thread, NULL, worker_main, &w[0]) == 0,
	      "worker 0 thread");
	pthread_mutex_unlock(&mu);
	CHECK(pthread_create(&t1, NULL, worker_main, &w[1]) == 0,
	      "worker 1 thread");
	pthread_join(w0_thread, NULL);
	pthread_join(t1, NULL);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);

	for (int i = 0; i < 2; i++) {
		CHECK(w[i].ret_create == 0, "worker %d: rdps_ctx_create: %s", i,
		      w[i].msg);
		CHECK(w[i].ret_barrier == 0, "worker %d: barrier %d", i,
		      w[i].ret_barrier);
		CHECK(w[i].ret_clock == 0, "worker %d: rdps_clock %d: %s", i,
		      w[i].ret_clock, w[i].msg);
	}
	CHECK(injected, "worker 0 never waited, so nothing was injected");
	CHECK(w[0].msg[0] == '\0',
	      "rdps_clock() succeeded after a recovered loss check but "
	      "rdps_errmsg() still says '%s'",
	      w[0].msg);
	CHECK((intptr_t)sret == 0, "rdps_server_run failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recovered_wait_clears_text),
	};

	return cmocka_run_group_tests_name("errmsg", tests, NULL, NULL);
}
