/* SPDX-License-Identifier: MIT */
/*
 * test_push_pieces.c - a large dense push goes to its shard in pieces
 * (src/worker/push.c, wrk_push_piece), so the shard applies one while the
 * next is on its way: counted in the worker's remote operations and
 * bytes (rdps_stats), and the sums checked after every push. One shm
 * shard in a thread, one ASP worker (a push returns once applied).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "ps_proto.h"
#include "rdps/rdps.h"
#include "server.h"
#include "test_check.h"

#define N_ELEMS (1u << 18) /* 1 MiB of float32 */
#define PIECES 8	   /* of 128 KiB */

static volatile sig_atomic_t stop_server;

static void *server_main(void *arg)
{
	return (void *)(intptr_t)rdps_server_run(arg, &stop_server);
}

/* Push n elements from src; check what it posted against ops and bytes,
 * and that every element now holds want. */
static void push_counted(struct rdps_ctx *w, struct rdps_table *t,
			 const float *src, uint64_t n, uint64_t ops,
			 uint64_t bytes, float *out, float want,
			 const char *what)
{
	struct rdps_stats a, b;

	rdps_ctx_stats(w, &a);
	CHECK(rdps_push(t, 0, n, src) == 0, "%s: %s", what, rdps_errmsg());
	rdps_ctx_stats(w, &b);
	CHECK(b.remote_ops - a.remote_ops == ops,
	      "%s posted %llu remote operations, want %llu", what,
	      (unsigned long long)(b.remote_ops - a.remote_ops),
	      (unsigned long long)ops);
	CHECK(b.remote_bytes - a.remote_bytes == bytes,
	      "%s moved %llu bytes, want %llu", what,
	      (unsigned long long)(b.remote_bytes - a.remote_bytes),
	      (unsigned long long)bytes);
	CHECK(rdps_pull(t, 0, n, out) == 0, "pull: %s", rdps_errmsg());
	for (uint64_t i = 0; i < n; i++)
		CHECK(out[i] == want, "%s: element %llu is %g, want %g", what,
		      (unsigned long long)i, out[i], want);
}

static void test_push_pieces(void **state)
{
	const uint64_t hdr = sizeof(struct ps_msg);
	struct rdps_server_cfg scfg;
	struct rdps_server *s = NULL;
	struct rdps_table *t = NULL;
	struct rdps_config cfg;
	struct rdps_ctx *w = NULL;
	float *reg, *plain, *out;
	char url[128];
	pthread_t st;
	void *sret;

	(void)state;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-pieces", (int)getpid());
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = 1;
	scfg.model = RDPS_MODEL_ASP;
	scfg.token = 29;
	CHECK(rdps_server_create(&scfg, &s) == 0, "rdps_server_create: %s",
	      rdps_errmsg());
	CHECK(pthread_create(&st, NULL, server_main, s) == 0, "server thread");
	rdps_config_default(&cfg);
	cfg.shards = url;
	cfg.workers = 1;
	cfg.model = RDPS_MODEL_ASP;
	cfg.token = 29;
	cfg.timeout_ms = 10000;
	CHECK(rdps_ctx_create(&cfg, &w) == 0, "worker: %s", rdps_errmsg());
	CHECK(rdps_table_open(w, "pieces", N_ELEMS, RDPS_DTYPE_F32,
			      RDPS_RULE_SUM, 0, &t) == 0,
	      "table: %s", rdps_errmsg());
	reg = rdps_buf_alloc(w, N_ELEMS * sizeof(float));
	plain = malloc(N_ELEMS * sizeof(float));
	out = malloc(N_ELEMS * sizeof(float));
	CHECK(reg && plain && out, "buffers");
	for (uint64_t i = 0; i < N_ELEMS; i++)
		reg[i] = plain[i] = 1.0f;

	/* Zero copy: a payload put and a header write-with-immediate per
	 * piece, the header alone counted for the second. */
	push_counted(w, t, reg, N_ELEMS, 2 * PIECES, N_ELEMS * 4 + PIECES * hdr,
		     out, 1.0f, "a 1 MiB push from rdps_buf_alloc() memory");
	/* Staged: one write-with-immediate of header and payload each. */
	push_counted(w, t, plain, N_ELEMS, PIECES, N_ELEMS * 4 + PIECES * hdr,
		     out, 2.0f, "a 1 MiB push from plain memory");
	/* Not a whole number of pieces: 5 within 128 KiB each. */
	push_counted(w, t, plain, N_ELEMS / 2 + 16, 5,
		     (N_ELEMS / 2 + 16) * 4 + 5 * hdr, out, 3.0f,
		     "a 512 KiB + 64 B push from plain memory");
	/* At most one piece: one message, as before. */
	push_counted(w, t, plain, 32768, 1, 32768 * 4 + hdr, out, 4.0f,
		     "a 128 KiB push from plain memory");

	rdps_buf_free(w, reg);
	free(plain);
	free(out);
	rdps_ctx_destroy(w);
	stop_server = 1;
	pthread_join(st, &sret);
	rdps_server_destroy(s);
	CHECK(sret == NULL, "server loop: %d", (int)(intptr_t)sret);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_pieces),
	};

	return cmocka_run_group_tests_name("push_pieces", tests, NULL, NULL);
}
