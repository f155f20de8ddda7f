/* SPDX-License-Identifier: MIT */
/*
 * test_push_pieces.c - a large dense push goes to its shard in pieces
 * (src/worker/push.c, wrk_push_piece), so the shard applies one while the
 * next is on its way: counted in the worker's remote operations and
 * bytes (rdps_stats), and the sums checked after every push; where the
 * shard serves two workers, one message per sub-slot as before. One shm
 * shard in a thread, ASP workers (a push returns once applied).
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

struct job {
	struct rdps_server *s;
	struct rdps_ctx *w[2];
	struct rdps_table *t;
	pthread_t st;
};

/* One shm shard in a thread serving workers ASP workers (1 or 2), their
 * contexts, and worker 0's table of N_ELEMS float32. */
static void job_start(struct job *j, unsigned workers, const char *name)
{
	struct rdps_server_cfg scfg;
	struct rdps_config cfg;
	static char url[128];

	memset(j, 0, sizeof(*j));
	stop_server = 0;
	snprintf(url, sizeof(url), "shm://rdps-t-%d-%s", (int)getpid(), name);
	rdps_server_cfg_default(&scfg);
	scfg.url = url;
	scfg.workers = workers;
	scfg.model = RDPS_MODEL_ASP;
	scfg.token = 29;
	CHECK(rdps_server_create(&scfg, &j->s) == 0, "rdps_server_create: %s",
	      rdps_errmsg());
	CHECK(pthread_create(&j->st, NULL, server_main, j->s) == 0,
	      "server thread");
	rdps_config_default(&cfg);
	cfg.shards = url;
	cfg.workers = workers;
	cfg.model = RDPS_MODEL_ASP;
	cfg.token = 29;
	cfg.timeout_ms = 10000;
	for (unsigned r = 0; r < workers; r++) {
		cfg.rank = r;
		CHECK(rdps_ctx_create(&cfg, &j->w[r]) == 0, "worker %u: %s", r,
		      rdps_errmsg());
	}
	CHECK(rdps_table_open(j->w[0], "pieces", N_ELEMS, RDPS_DTYPE_F32,
			      RDPS_RULE_SUM, 0, &j->t) == 0,
	      "table: %s", rdps_errmsg());
}

static void job_stop(struct job *j)
{
	void *sret;

	rdps_ctx_destroy(j->w[1]);
	rdps_ctx_destroy(j->w[0]);
	stop_server = 1;
	pthread_join(j->st, &sret);
	rdps_server_destroy(j->s);
	CHECK(sret == NULL, "server loop: %d", (int)(intptr_t)sret);
}

/* One worker, one shard: pieces. */
static void test_push_pieces(void **state)
{
	const uint64_t hdr = sizeof(struct ps_msg);
	float *reg, *plain, *out;
	struct job j;

	(void)state;
	job_start(&j, 1, "pieces");
	reg = rdps_buf_alloc(j.w[0], N_ELEMS * sizeof(float));
	plain = malloc(N_ELEMS * sizeof(float));
	out = malloc(N_ELEMS * sizeof(float));
	CHECK(reg && plain && out, "buffers");
	for (uint64_t i = 0; i < N_ELEMS; i++)
		reg[i] = plain[i] = 1.0f;

	/* Zero copy: a payload put and a header write-with-immediate per
	 * piece, the header alone counted for the second. */
	push_counted(j.w[0], j.t, reg, N_ELEMS, 2 * PIECES,
		     N_ELEMS * 4 + PIECES * hdr, out, 1.0f,
		     "a 1 MiB push from rdps_buf_alloc() memory");
	/* Staged: one write-with-immediate of header and payload each. */
	push_counted(j.w[0], j.t, plain, N_ELEMS, PIECES,
		     N_ELEMS * 4 + PIECES * hdr, out, 2.0f,
		     "a 1 MiB push from plain memory");
	/* Not a whole number of pieces: 5 within 128 KiB each. */
	push_counted(j.w[0], j.t, plain, N_ELEMS / 2 + 16, 5,
		     (N_ELEMS / 2 + 16) * 4 + 5 * hdr, out, 3.0f,
		     "a 512 KiB + 64 B push from plain memory");
	/* At most one piece: one message, as before. */
	push_counted(j.w[0], j.t, plain, 32768, 1, 32768 * 4 + hdr, out, 4.0f,
		     "a 128 KiB push from plain memory");

	rdps_buf_free(j.w[0], reg);
	free(plain);
	free(out);
	job_stop(&j);
}

/* Two workers on one shard: a sub-slot a message (the shard applies one
 * worker's push while the other's is on its way), so a 1 MiB push is the
 * sub-slot less the header, then the rest. */
static void test_push_whole_when_shared(void **state)
{
	const uint64_t hdr = sizeof(struct ps_msg);
	float *reg, *out;
	struct job j;

	(void)state;
	job_start(&j, 2, "shared");
	reg = rdps_buf_alloc(j.w[0], N_ELEMS * sizeof(float));
	out = malloc(N_ELEMS * sizeof(float));
	CHECK(reg && out, "buffers");
	for (uint64_t i = 0; i < N_ELEMS; i++)
		reg[i] = 1.0f;
	push_counted(j.w[0], j.t, reg, N_ELEMS, 3, N_ELEMS * 4 + 2 * hdr, out,
		     1.0f, "a 1 MiB push of one of two workers");
	rdps_buf_free(j.w[0], reg);
	free(out);
	job_stop(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_pieces),
		cmocka_unit_test(test_push_whole_when_shared),
	};

	return cmocka_run_group_tests_name("push_pieces", tests, NULL, NULL);
}
