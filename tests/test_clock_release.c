/* SPDX-License-Identifier: MIT */
/*
 * test_clock_release.c - the shard's side of waking waiters (ps_proto.h,
 * "Waking waiters"; src/server/clock.c): it releases a PS_WAIT only when
 * its own clock words say the round is complete, never on the word of a
 * PS_DONE; a PS_WAIT that comes after the PS_DONE of its round (the race
 * of two endpoints) is answered at once; a worker gone wakes the waiters.
 *
 * One shm shard in a thread (two workers, BSP, K = 2) and two worker
 * contexts in this thread that send raw PS_WAIT and PS_DONE and raw
 * fetch-adds on shard 0's counters. The shard handles each endpoint's
 * messages in order, so when a reply that follows a message is in, a
 * release that message earned would be in too: "no release" is checked
 * after the credit of a table created behind it.
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

static volatile sig_atomic_t stop_server;
static char url[128];

static void *server_main(void *arg)
{
	return (void *)(intptr_t)rdps_server_run(arg, &stop_server);
}

/* A zero-length put_imm of kind(arg) from ctx to shard 0; a PS_WAIT (or
 * under BSP on shm a PS_END) registers it as the worker's wait (its
 * release sets woken). */
static void send_imm(struct rdps_ctx *ctx, unsigned kind, uint32_t arg)
{
	struct wrk_shard *sh = &ctx->sh[0];
	int ret;

	if (kind == PS_WAIT || kind == PS_END) {
		sh->wait_arg = arg;
		sh->waiting = 1;
		sh->woken = 0;
	}
	ret = rdps_tp_put_imm(sh->ep, NULL, 0, ctx->small_mr, 0, NULL,
			      PS_IMM(kind, arg), 0, 0);
	CHECK(ret == 0, "put_imm: %s", strerror(-ret));
}

/* One fetch-add of 1 on arrive[i] of shard 0, from ctx. */
static void arrive(struct rdps_ctx *ctx, unsigned i)
{
	struct wrk_grp g = {0, 0, 0};
	uint64_t deadline = rdps_now_ns() + 5000000000ull;
	int ret = wrk_clock_post(ctx, &g, 8ull * i, 1,
				 (uint64_t *)ctx->small + WRK_DISCARD, deadline,
				 "a test fetch-add");

	if (!ret)
		ret = wrk_grp_wait(ctx, &g, deadline, "a test fetch-add");
	CHECK(ret == 0, "fetch-add: %s", rdps_errmsg());
}

/* Until shard 0 has handled n messages in all (its published count). */
static void handled_until(struct rdps_ctx *ctx, uint64_t n)
{
	struct wrk_shard_stats st = {0, 0, 0};
	uint64_t deadline = rdps_now_ns() + 5000000000ull;

	do {
		CHECK(wrk_shard_stats(ctx, 0, &st) == 0, "stats: %s",
		      rdps_errmsg());
	} while (st.handled < n && rdps_now_ns() < deadline);
	CHECK(st.handled >= n, "the shard handled %llu messages, want %llu",
	      (unsigned long long)st.handled, (unsigned long long)n);
}

static uint64_t handled_now(struct rdps_ctx *ctx)
{
	struct wrk_shard_stats st = {0, 0, 0};

	CHECK(wrk_shard_stats(ctx, 0, &st) == 0, "stats: %s", rdps_errmsg());
	return st.handled;
}

/* Progress ctx until its wait was released (or 5 s): woken. */
static int released(struct rdps_ctx *ctx)
{
	uint64_t deadline = rdps_now_ns() + 5000000000ull;

	while (!ctx->sh[0].woken && rdps_now_ns() < deadline)
		wrk_progress(ctx, deadline, 1);
	return ctx->sh[0].woken;
}

/* w sends PS_WAIT(arg), handled once other's read of the count says so. */
static void registered(struct rdps_ctx *w, struct rdps_ctx *other, uint32_t arg)
{
	uint64_t n = handled_now(other);

	send_imm(w, PS_WAIT, arg);
	handled_until(other, n + 1);
}

/* w sends PS_DONE(arg), handled once its read of the count says so. */
static void told(struct rdps_ctx *w, uint32_t arg)
{
	uint64_t n = handled_now(w);

	send_imm(w, PS_DONE, arg);
	handled_until(w, n + 1);
}

/* ctx's wait is released as complete (not woken), or fail naming what. */
static void released_complete(struct rdps_ctx *ctx, const char *what)
{
	CHECK(released(ctx), "%s: no release", what);
	CHECK(ctx->sh[0].complete, "%s: released as a wake-up, not complete",
	      what);
}

/* Whatever the shard sent ctx before a reply to a message sent now is
 * in: a table created (its credit comes after). */
static void replies_in(struct rdps_ctx *ctx, const char *name)
{
	struct rdps_table *t;

	CHECK(rdps_table_open(ctx, name, 64, RDPS_DTYPE_F32, RDPS_RULE_SUM, 0,
			      &t) == 0,
	      "table %s: %s", name, rdps_errmsg());
}

static void cfg_of(struct rdps_config *cfg, int rank)
{
	rdps_config_default(cfg);
	cfg->shards = url;
	cfg->rank = rank;
	cfg->workers = 2;
	cfg->token = 29;
	cfg->timeout_ms = 10000;
}

/* A shard of two BSP workers in a thread, at an shm url named name, and
 * the two worker contexts. */
static void start_two(const char *name, struct rdps_server **s, pthread_t *st,
		      struct rdps_ctx **w0, struct rdps_ctx **w1)
{
	struct rdps_server_cfg scfg;
	struct rdps_config cfg;

	stop_server = 0;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-%s", (int)getpid(), name);
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = 2;
	scfg.token = 29;
	CHECK(rdps_server_create(&scfg, s) == 0, "rdps_server_create: %s",
	      rdps_errmsg());
	CHECK(pthread_create(st, NULL, server_main, *s) == 0, "server");
	cfg_of(&cfg, 0);
	CHECK(rdps_ctx_create(&cfg, w0) == 0, "worker 0: %s", rdps_errmsg());
	cfg_of(&cfg, 1);
	CHECK(rdps_ctx_create(&cfg, w1) == 0, "worker 1: %s", rdps_errmsg());
}

/* Stop and destroy the shard s (thread st); it must have counted waits
 * PS_WAITs, dones PS_DONEs and releases PS_RELEASEs. */
static void stop_counted(struct rdps_server *s, pthread_t st,
			 unsigned long long waits, unsigned long long dones,
			 unsigned long long releases)
{
	struct rdps_server_stats sst;
	void *sret;

	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_stats(s, &sst);
	rdps_server_destroy(s);
	CHECK(sret == NULL, "server: %s", rdps_errmsg());
	CHECK(sst.waits == waits && sst.dones == dones &&
		      sst.releases == releases,
	      "the shard counted %llu waits, %llu dones, %llu releases; "
	      "want %llu, %llu and %llu",
	      (unsigned long long)sst.waits, (unsigned long long)sst.dones,
	      (unsigned long long)sst.releases, waits, dones, releases);
}

static void test_release_by_the_words(void **state)
{
	struct rdps_server *s = NULL;
	struct rdps_ctx *w0 = NULL, *w1 = NULL;
	pthread_t st;

	(void)state;
	start_two("release", &s, &st, &w0, &w1);

	/* A bare PS_DONE (clock 0 has no arrival): the waiter stays. */
	registered(w0, w1, 0);
	told(w1, 0);
	replies_in(w0, "a");
	CHECK(!w0->sh[0].woken, "released on a PS_DONE of a clock not "
				"complete by the shard's words");

	/* Clock 0 complete, and its PS_DONE, while w0 waits for a clock
	 * far ahead: still no release. (Registered before the words move,
	 * else the wait for clock 0 it replaces would rightly be released.) */
	registered(w0, w1, 1000);
	arrive(w0, 0);
	arrive(w1, 0);
	told(w1, 0);
	replies_in(w0, "b");
	CHECK(!w0->sh[0].woken, "a wait for clock 1000 released when clock 0 "
				"completed");

	/* The race: clock 0's PS_DONE was handled before this PS_WAIT,
	 * which the shard must answer at once from the words. */
	send_imm(w0, PS_WAIT, 0);
	released_complete(w0, "a PS_WAIT for a complete clock (its PS_DONE "
			      "came first)");

	/* Registered first, then completed and told. */
	registered(w0, w1, 1);
	arrive(w1, 1);
	arrive(w0, 1);
	CHECK(!w0->sh[0].woken, "released before any PS_DONE");
	send_imm(w1, PS_DONE, 1);
	released_complete(w0, "clock 1 completed and its PS_DONE handled");

	/* A barrier waits likewise: barrier 1 is complete at 2. */
	registered(w0, w1, PS_WAIT_BARRIER | 1);
	told(w1, PS_WAIT_BARRIER | 1);
	replies_in(w0, "c");
	CHECK(!w0->sh[0].woken, "a barrier released with no arrival");

	/* A worker gone wakes the waiters (clock 2 never completes). */
	registered(w0, w1, 2);
	rdps_ctx_destroy(w1);
	CHECK(released(w0), "a worker left and the waiter was not woken");
	CHECK(!w0->sh[0].complete, "a wake-up said clock 2 was complete");

	rdps_ctx_destroy(w0);
	stop_counted(s, st, 6, 4, 3);
}

/*
 * Under BSP on shm (no read phase) an END(t) registers its worker's wait
 * for clock t on shard 0: released by the PS_DONE once the words say t
 * is complete, with no PS_WAIT; an END that comes after its clock's
 * PS_DONE (the race of two endpoints) is answered at once; the
 * completer's PS_DONE drops its own registration (no release to it).
 */
static void test_end_registers(void **state)
{
	struct rdps_server *s = NULL;
	struct rdps_ctx *w0 = NULL, *w1 = NULL;
	pthread_t st;
	uint64_t n;

	(void)state;
	start_two("endreg", &s, &st, &w0, &w1);

	/* Clock 0: w0's END registers it, w1 completes and tells. The
	 * shard's handled count is the shard's, not the sender's: w0's END
	 * handled first, or the wait below for w1's could be met by w0's,
	 * and w1's END be handled after its fetch-add completed the clock
	 * (then it is answered at once: a third release). */
	n = handled_now(w0);
	send_imm(w0, PS_END, 0);
	handled_until(w0, n + 1);
	arrive(w0, 0);
	replies_in(w0, "a");
	CHECK(!w0->sh[0].woken, "an END released before its clock completed");
	/* Its END handled before its fetch-add (on shm the fetch-add is
	 * done at once, the END when the loop gets to it). */
	n = handled_now(w1);
	send_imm(w1, PS_END, 0);
	handled_until(w1, n + 1);
	arrive(w1, 0);
	told(w1, 0);
	released_complete(w0, "an END's wait, its clock complete and told");
	replies_in(w1, "b");
	CHECK(!w1->sh[0].woken, "the completer got a release of its own clock");

	/* Clock 1: complete and told before w0's END is handled. */
	arrive(w0, 1);
	n = handled_now(w1);
	send_imm(w1, PS_END, 1);
	handled_until(w1, n + 1);
	arrive(w1, 1);
	told(w1, 1);
	send_imm(w0, PS_END, 1);
	released_complete(w0, "an END after its clock's PS_DONE");

	rdps_ctx_destroy(w1);
	rdps_ctx_destroy(w0);
	stop_counted(s, st, 0, 2, 2);
}

/* ps_wait_unwrap and ps_clock_frontier, the shard's reading of a wait. */
static void test_unwrap_frontier(void **state)
{
	uint64_t span = (uint64_t)PS_WAIT_MASK + 1;
	uint64_t arrive[4] = {6, 4, 4, 2}; /* W = 2, K = 4 */

	(void)state;
	/* Residue 3 has one round: clocks 0, 1, 2 (two rounds), 3 (one):
	 * 4, 5, 6 done, 7 not. */
	CHECK(ps_clock_frontier(arrive, 4, 2) == 7, "frontier %llu, want 7",
	      (unsigned long long)ps_clock_frontier(arrive, 4, 2));
	CHECK(ps_wait_unwrap(7, 5) == 5, "unwrap near");
	CHECK(ps_wait_unwrap(span + 3, 1) == span + 1, "unwrap same span");
	CHECK(ps_wait_unwrap(span + 3, PS_WAIT_MASK) == span - 1,
	      "unwrap from below");
	CHECK(ps_wait_unwrap(span - 2, 3) == span + 3, "unwrap into next");
	CHECK(ps_wait_unwrap(0, 1000) == 1000, "unwrap far ahead of 0");
	CHECK(ps_wait_unwrap(0, PS_WAIT_MASK) == PS_WAIT_MASK,
	      "no negative clocks");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unwrap_frontier),
		cmocka_unit_test(test_release_by_the_words),
		cmocka_unit_test(test_end_registers),
	};

	return cmocka_run_group_tests_name("clock_release", tests, NULL, NULL);
}
