/* SPDX-License-Identifier: MIT */
/*
 * test_clock_fanin.c - the clock's fan-in (rdps_config.clock_fanin,
 * ps_proto.h "Clock tree") at rdps_ctx_create: a bad value is refused
 * before anything connects, and workers of one job that would count their
 * clocks on different words (another fan-in) are refused with a message
 * naming both values, while one that agrees joins.
 *
 * One shm shard in a thread; the workers connect one after the other
 * from the test's thread (rdps_ctx_create waits for nobody else).
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

static volatile sig_atomic_t stop_server;
static char url[128];

static void *server_main(void *arg)
{
	return (void *)(intptr_t)rdps_server_run(arg, &stop_server);
}

static void cfg_of(struct rdps_config *cfg, int rank, int fanin)
{
	rdps_config_default(cfg);
	cfg->shards = url;
	cfg->rank = rank;
	cfg->workers = 4;
	cfg->token = 13;
	cfg->timeout_ms = 10000;
	cfg->clock_fanin = fanin;
}

static void test_bad_fanin(void **state)
{
	static const int bad[] = {-1, 4097, 1 << 30};
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;
	int ret;

	(void)state;
	/* No shard listens there: the check must come first. */
	snprintf(url, sizeof(url), "shm://rdps-t-%d-nobody", (int)getpid());
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_of(&cfg, 0, bad[i]);
		ret = rdps_ctx_create(&cfg, &ctx);
		CHECK(ret == -EINVAL, "clock_fanin %d: %d, want -EINVAL",
		      bad[i], ret);
		CHECK(strstr(rdps_errmsg(), "bad clock_fanin"),
		      "clock_fanin %d: message '%s'", bad[i], rdps_errmsg());
		CHECK(!ctx, "a context despite the error");
	}
}

static void test_mixed_fanin(void **state)
{
	struct rdps_server_cfg scfg;
	struct rdps_server *s = NULL;
	struct rdps_config cfg;
	struct rdps_ctx *w0 = NULL, *w1 = NULL, *w2 = NULL;
	char msg[512];
	pthread_t st;
	void *sret;
	int ret, ret_auto;

	(void)state;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-fanin", (int)getpid());
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = 4;
	scfg.token = 13;
	CHECK(rdps_server_create(&scfg, &s) == 0, "rdps_server_create: %s",
	      rdps_errmsg());
	CHECK(pthread_create(&st, NULL, server_main, s) == 0, "server thread");

	cfg_of(&cfg, 0, 2);
	CHECK(rdps_ctx_create(&cfg, &w0) == 0, "worker 0, fan-in 2: %s",
	      rdps_errmsg());
	/* Four workers: fan-in 3 makes groups of 3 and 1. */
	cfg_of(&cfg, 1, 3);
	ret = rdps_ctx_create(&cfg, &w1);
	snprintf(msg, sizeof(msg), "%s", rdps_errmsg());
	/* Automatic: flat (1) for 4 workers. A refused rank cannot come
	 * back (the shard saw it), hence a rank each. */
	cfg_of(&cfg, 2, 0);
	ret_auto = rdps_ctx_create(&cfg, &w2);
	rdps_ctx_destroy(w2);
	w2 = NULL;
	/* The same fan-in as worker 0's joins. */
	cfg_of(&cfg, 3, 2);
	CHECK(rdps_ctx_create(&cfg, &w2) == 0, "worker 3, fan-in 2: %s",
	      rdps_errmsg());
	rdps_ctx_destroy(w2);
	rdps_ctx_destroy(w1);
	rdps_ctx_destroy(w0);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);

	CHECK(ret == -EINVAL, "worker 1, fan-in 3: %d, want -EINVAL", ret);
	CHECK(strstr(msg, "fan-in 3 (clock_fanin 3") &&
		      strstr(msg, "first worker chose 2"),
	      "worker 1's message: '%s'", msg);
	CHECK(ret_auto == -EINVAL,
	      "worker 2, automatic (flat): %d, want "
	      "-EINVAL",
	      ret_auto);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_fanin),
		cmocka_unit_test(test_mixed_fanin),
	};

	return cmocka_run_group_tests_name("clock_fanin", tests, NULL, NULL);
}
