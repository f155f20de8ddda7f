/* SPDX-License-Identifier: MIT */
/*
 * test_stall.c - a wait on the other workers times out only when the job
 * stands still (src/worker/stall.c), with a short timeout_ms:
 *
 * - ASP, a fast worker reaches its final barrier while a live straggler
 *   still has clocks to do, and ends them several timeouts later: both
 *   barriers succeed and the table holds every push (the trainer's "final
 *   barrier" under ASP with a 3x straggler);
 * - a live worker that does nothing (no clock, no barrier) still makes the
 *   other's barrier time out after one timeout, naming it.
 *
 * - the same with three workers under the clock tree (fan-in 2).
 *
 * One shm shard (in a thread) and two workers (threads). The straggler's
 * pauses stand for its work: they make its share outlast the timeout,
 * nothing waits on them.
 */
#include <errno.h>
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

#define TIMEOUT_MS 300
/* The straggler's clocks, each after WORK_MS of "work": together several
 * timeouts. */
#define SLOW_CLOCKS 8
#define WORK_MS 100

static volatile sig_atomic_t stop_server;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int fast_done;
static char url[128];
/* The job: workers (rank 0 fast, the others stragglers unless idle) and
 * the clock's fan-in (0: automatic, flat for so few). */
static int nworkers = 2, fanin;

struct wk {
	int rank, idle; /* idle: a live worker that does nothing */
	int ret_create, ret_start, ret_work, ret_final, ret_pull;
	uint64_t final_ns; /* how long the final barrier took */
	float sum;	   /* the table's element after it */
	char msg[512];
};

static void signal_done(void)
{
	pthread_mutex_lock(&mu);
	fast_done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void wait_done(void)
{
	pthread_mutex_lock(&mu);
	while (!fast_done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void *server_main_fn(void *arg)
{
	struct rdps_server *s = arg;

	return (void *)(intptr_t)rdps_server_run(s, &stop_server);
}

/* One clock: push 1, tick. */
static int one_clock(struct rdps_ctx *ctx, struct rdps_table *t)
{
	float one = 1;
	int ret = rdps_push(t, 0, 1, &one);

	return ret ? ret : rdps_clock(ctx);
}

static void work(struct wk *w, struct rdps_ctx *ctx, struct rdps_table *t)
{
	uint64_t t0;

	if (w->rank == 0) {
		w->ret_work = one_clock(ctx, t);
	} else if (w->idle) {
		wait_done();
	} else {
		for (int i = 0; i < SLOW_CLOCKS && !w->ret_work; i++) {
			struct timespec ts = {0, WORK_MS * 1000000L};

			nanosleep(&ts, NULL);
			w->ret_work = one_clock(ctx, t);
		}
	}
	if (w->ret_work) {
		snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
		return;
	}
	t0 = rdps_now_ns();
	w->ret_final = rdps_barrier(ctx);
	w->final_ns = rdps_now_ns() - t0;
	snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
	if (!w->ret_final)
		w->ret_pull = rdps_pull(t, 0, 1, &w->sum);
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
	cfg.workers = (unsigned)nworkers;
	cfg.clock_fanin = fanin;
	cfg.token = 17;
	cfg.model = RDPS_MODEL_ASP;
	cfg.timeout_ms = TIMEOUT_MS;
	w->ret_create = rdps_ctx_create(&cfg, &ctx);
	if (!w->ret_create)
		w->ret_create = rdps_table_open(ctx, "t", 1, RDPS_DTYPE_F32,
						RDPS_RULE_SUM, 0, &t);
	if (w->ret_create) {
		snprintf(w->msg, sizeof(w->msg), "%s", rdps_errmsg());
	} else {
		w->ret_start = rdps_barrier(ctx);
		if (!w->ret_start)
			work(w, ctx, t);
	}
	if (w->rank == 0)
		signal_done();
	rdps_ctx_destroy(ctx);
	return NULL;
}

/* A job of nworkers workers w[] on one shm shard. */
static void run_job(struct wk *w, const char *tag)
{
	struct rdps_server_cfg scfg;
	struct rdps_server *s = NULL;
	pthread_t st, wt[3];
	void *sret;
	int ret;

	stop_server = 0;
	fast_done = 0;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-%s", (int)getpid(), tag);
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = (unsigned)nworkers;
	scfg.token = 17;
	scfg.model = RDPS_MODEL_ASP;
	ret = rdps_server_create(&scfg, &s);
	CHECK(ret == 0, "rdps_server_create: %s", rdps_errmsg());
	CHECK(pthread_create(&st, NULL, server_main_fn, s) == 0,
	      "server thread");
	for (int i = 0; i < nworkers; i++)
		CHECK(pthread_create(&wt[i], NULL, worker_main, &w[i]) == 0,
		      "worker %d thread", i);
	for (int i = 0; i < nworkers; i++)
		pthread_join(wt[i], NULL);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);
	CHECK((intptr_t)sret == 0, "rdps_server_run failed");
	for (int i = 0; i < nworkers; i++)
		CHECK(!w[i].ret_create && !w[i].ret_start,
		      "worker %d: create %d, start barrier %d: %s", i,
		      w[i].ret_create, w[i].ret_start, w[i].msg);
}

/* The fast worker waits at its final barrier for live stragglers: no
 * timeout, and every push is in. */
static void live_stragglers(const char *tag)
{
	struct wk w[3] = {{.rank = 0}, {.rank = 1}, {.rank = 2}};
	int want = 1 + (nworkers - 1) * SLOW_CLOCKS;

	run_job(w, tag);
	for (int i = 0; i < nworkers; i++) {
		CHECK(w[i].ret_work == 0, "worker %d: clocks: %d: %s", i,
		      w[i].ret_work, w[i].msg);
		CHECK(w[i].ret_final == 0,
		      "worker %d: final barrier %d after %llu ms (timeout "
		      "%d ms): %s",
		      i, w[i].ret_final,
		      (unsigned long long)(w[i].final_ns / 1000000), TIMEOUT_MS,
		      w[i].msg);
		CHECK(w[i].ret_pull == 0, "worker %d: pull %d", i,
		      w[i].ret_pull);
		CHECK(w[i].sum == want, "worker %d: the table holds %g, not %d",
		      i, (double)w[i].sum, want);
	}
	/* The wait did outlast the timeout, or this tested nothing. */
	CHECK(w[0].final_ns > TIMEOUT_MS * 1000000ull,
	      "the fast worker waited %llu ms, not more than the timeout",
	      (unsigned long long)(w[0].final_ns / 1000000));
}

static void test_live_straggler(void **state)
{
	(void)state;
	nworkers = 2;
	fanin = 0;
	live_stragglers("stall-live");
}

/* The same under the clock tree (groups {0, 1} and {2}): the stragglers'
 * ticks move their groups' words, not shard 0's flat table. */
static void test_live_stragglers_tree(void **state)
{
	(void)state;
	nworkers = 3;
	fanin = 2;
	live_stragglers("stall-tree");
	nworkers = 2;
	fanin = 0;
}

/* A live worker that neither ticks nor arrives: the other's barrier
 * still times out, saying nobody moved. */
static void test_idle_worker(void **state)
{
	struct wk w[2] = {{.rank = 0}, {.rank = 1, .idle = 1}};

	(void)state;
	run_job(w, "stall-idle");
	CHECK(w[0].ret_work == 0, "worker 0: clock: %d: %s", w[0].ret_work,
	      w[0].msg);
	CHECK(w[0].ret_final == -ETIMEDOUT,
	      "worker 0: final barrier %d, not -ETIMEDOUT: %s", w[0].ret_final,
	      w[0].msg);
	CHECK(strstr(w[0].msg, "without a clock or barrier of any worker"),
	      "worker 0: message '%s'", w[0].msg);
	CHECK(w[0].final_ns >= TIMEOUT_MS * 1000000ull,
	      "worker 0: timed out after %llu ms, before the timeout",
	      (unsigned long long)(w[0].final_ns / 1000000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_straggler),
		cmocka_unit_test(test_live_stragglers_tree),
		cmocka_unit_test(test_idle_worker),
	};

	return cmocka_run_group_tests_name("stall", tests, NULL, NULL);
}
