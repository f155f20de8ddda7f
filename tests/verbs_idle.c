/* SPDX-License-Identifier: MIT */
/*
 * verbs_idle.c - a verbs shard against connectors that never complete
 * their connection, on a real RDMA device (soft-RoCE in the rxe-vm VM,
 * tests/verbs_idle_guest.sh). Not a cmocka binary: it prints what went
 * wrong on stderr and exits 1.
 *
 *   verbs_idle HOST PORT TOKEN N JOIN_MS
 *
 * 1. N rdma_cm connections to the shard at verbs://HOST:PORT, each with a
 *    good transport hello (the job's TOKEN) in its connect request, none
 *    ever established: the connector reads the shard's reply
 *    (CONNECT_RESPONSE) and never calls rdma_establish, as a peer that
 *    stalls or dies mid-handshake does. The shard must answer all N
 *    within one handshake deadline (it answers each at once; a listener
 *    that waits for each connection in turn answers one per deadline).
 * 2. While those still wait, a real worker (rdps_ctx_create, its own
 *    timeout JOIN_MS) joins as worker 0 of 1 and does a job: pushes into a
 *    SUM table over 3 clocks, the pulled sums checked exactly.
 * 3. The shard must then drop the N at their deadline: each connector
 *    sees its connection rejected (REJECTED after the reply; rdma_cm's own
 *    reject, see verbs_cm.c, verbs_hs_drop).
 * Prints one line: the time the join took and what the N saw.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/rdma_cma.h>

#include "rdps/rdps.h"
#include "rdps_base.h"
#include "verbs/verbs.h"

#define IDLE_MAX 64
#define STEP_MS 10000 /* any single expected cm event */
#define N_ELEMS 1024
#define CLOCKS 3

/* What became of each idle connection. */
enum idle_state {
	IDLE_NEW,
	IDLE_ROUTED,
	IDLE_ANSWERED,
	IDLE_DROPPED,
	IDLE_OTHER
};

static struct rdma_event_channel *ch;
static struct rdma_cm_id *ids[IDLE_MAX];
static enum idle_state st[IDLE_MAX];
static int n_idle;

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "verbs_idle: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (int i = 0; i < n_idle; i++)
		if (ids[i])
			rdma_destroy_id(ids[i]);
	if (ch)
		rdma_destroy_event_channel(ch);
	exit(1);
}

static int idle_index(const struct rdma_cm_id *id)
{
	for (int i = 0; i < n_idle; i++)
		if (ids[i] == id)
			return i;
	return -1;
}

static int count(enum idle_state s)
{
	int n = 0;

	for (int i = 0; i < n_idle; i++)
		n += st[i] == s;
	return n;
}

/* The connect request of idle connection i: our hello, no queue pair of
 * ours (the shard only needs a number to aim its own at). */
static void idle_connect(int i, uint64_t token)
{
	struct verbs_hello h = {
		.magic_be = rdps_htobe32(VERBS_MAGIC),
		.version = RDPS_TP_PROTO_VERSION,
		.kind = VERBS_MSG_HELLO,
		.token_be = rdps_htobe64(token),
	};
	struct rdma_conn_param p = {
		.private_data = &h,
		.private_data_len = sizeof(h),
		.responder_resources = 1,
		.initiator_depth = 1,
		.retry_count = 7,
		.rnr_retry_count = 7,
		.qp_num = 0x100u + (uint32_t)i,
	};

	if (rdma_connect(ids[i], &p))
		fail("rdma_connect %d: %s", i, strerror(errno));
}

/* Handle cm events until every idle connection is answered (and, with
 * settled, refused or failed too) or ms pass. */
static void idle_progress(bool settled, uint64_t token, int ms)
{
	uint64_t end = rdps_deadline(ms);
	struct pollfd pfd = {.fd = ch->fd, .events = POLLIN};
	struct rdma_cm_event *ev;

	while (count(IDLE_NEW) + count(IDLE_ROUTED) +
		       (settled ? count(IDLE_ANSWERED) : 0) >
	       0) {
		int left = rdps_ms_left(end), i;

		if (!left || poll(&pfd, 1, left) <= 0)
			return;
		if (rdma_get_cm_event(ch, &ev))
			continue;
		i = idle_index(ev->id);
		if (i < 0) {
			rdma_ack_cm_event(ev);
			continue;
		}
		switch (ev->event) {
		case RDMA_CM_EVENT_ADDR_RESOLVED:
			if (rdma_resolve_route(ev->id, STEP_MS))
				st[i] = IDLE_OTHER;
			break;
		case RDMA_CM_EVENT_ROUTE_RESOLVED:
			st[i] = IDLE_ROUTED;
			idle_connect(i, token);
			break;
		case RDMA_CM_EVENT_CONNECT_RESPONSE:
			/* Never rdma_establish: the shard waits for us. */
			st[i] = IDLE_ANSWERED;
			break;
		case RDMA_CM_EVENT_REJECTED:
			st[i] = st[i] == IDLE_ANSWERED ? IDLE_DROPPED
						       : IDLE_OTHER;
			break;
		default:
			fprintf(stderr, "verbs_idle: connection %d: %s (%d)\n",
				i, rdma_event_str(ev->event), ev->status);
			st[i] = IDLE_OTHER;
			break;
		}
		rdma_ack_cm_event(ev);
	}
}

/* A worker's whole job: 0, or 1 with the reason on stderr. */
static int worker_job(const char *url, uint64_t token, int join_ms,
		      double *join_ms_out)
{
	static double delta[N_ELEMS], got[N_ELEMS];
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;
	struct rdps_table *t;
	uint64_t t0;
	int ret;

	rdps_config_default(&cfg);
	cfg.shards = url;
	cfg.rank = 0;
	cfg.workers = 1;
	cfg.token = token;
	cfg.timeout_ms = join_ms;
	t0 = rdps_now_ns();
	ret = rdps_ctx_create(&cfg, &ctx);
	*join_ms_out = (double)(rdps_now_ns() - t0) / 1e6;
	if (ret) {
		fprintf(stderr, "verbs_idle: the worker did not join: %s\n",
			rdps_errmsg());
		return 1;
	}
	ret = rdps_table_open(ctx, "idle", N_ELEMS, RDPS_DTYPE_F64,
			      RDPS_RULE_SUM, 0, &t);
	for (int c = 0; !ret && c < CLOCKS; c++) {
		for (int i = 0; i < N_ELEMS; i++)
			delta[i] = (double)(i + c);
		ret = rdps_push(t, 0, N_ELEMS, delta);
		if (!ret)
			ret = rdps_clock(ctx);
	}
	if (!ret)
		ret = rdps_pull(t, 0, N_ELEMS, got);
	if (ret) {
		fprintf(stderr, "verbs_idle: the worker's job failed: %s\n",
			rdps_errmsg());
		rdps_ctx_destroy(ctx);
		return 1;
	}
	rdps_ctx_destroy(ctx);
	for (int i = 0; i < N_ELEMS; i++) {
		double want = (double)(CLOCKS * i + CLOCKS * (CLOCKS - 1) / 2);

		if (got[i] != want) {
			fprintf(stderr,
				"verbs_idle: element %d is %g after the job, "
				"want %g\n",
				i, got[i], want);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	char url[300];
	uint64_t token;
	int join_ms, ret, answered;
	double joined;

	if (argc != 6) {
		fprintf(stderr, "usage: %s HOST PORT TOKEN N JOIN_MS\n",
			argv[0]);
		return 2;
	}
	token = strtoull(argv[3], NULL, 0);
	n_idle = atoi(argv[4]);
	join_ms = atoi(argv[5]);
	if (n_idle < 1 || n_idle > IDLE_MAX || join_ms < 1)
		fail("N must be 1..%d and JOIN_MS positive", IDLE_MAX);
	snprintf(url, sizeof(url), "verbs://%s:%s", argv[1], argv[2]);
	ret = getaddrinfo(argv[1], argv[2], &hints, &ai);
	if (ret)
		fail("cannot resolve %s: %s", argv[1], gai_strerror(ret));
	ch = rdma_create_event_channel();
	if (!ch)
		fail("rdma_create_event_channel: %s", strerror(errno));

	/* 1. N connections the shard answers and that never complete. */
	for (int i = 0; i < n_idle; i++) {
		if (rdma_create_id(ch, &ids[i], NULL, RDMA_PS_TCP))
			fail("rdma_create_id: %s", strerror(errno));
		if (rdma_resolve_addr(ids[i], NULL, ai->ai_addr, STEP_MS))
			fail("rdma_resolve_addr: %s", strerror(errno));
	}
	freeaddrinfo(ai);
	idle_progress(false, token, RDPS_TP_HELLO_MS);
	answered = count(IDLE_ANSWERED);
	if (answered != n_idle)
		fprintf(stderr,
			"verbs_idle: the shard answered %d of %d connect "
			"requests within one handshake deadline (%d ms; %d "
			"dropped, %d other): it waits for each connection in "
			"turn\n",
			answered, n_idle, RDPS_TP_HELLO_MS, count(IDLE_DROPPED),
			count(IDLE_OTHER));

	/* 2. A real worker joins and works while they wait. */
	if (worker_job(url, token, join_ms, &joined))
		fail("with %d connections in the handshake (%d still "
		     "waiting)",
		     n_idle, count(IDLE_ANSWERED));

	if (answered != n_idle)
		fail("the idle connections were not all answered at once");

	/* 3. The shard drops them at their deadline. */
	idle_progress(true, token, RDPS_TP_HELLO_MS + STEP_MS);
	if (count(IDLE_DROPPED) != n_idle)
		fail("%d of %d idle connections were dropped by the shard (%d "
		     "still waiting, %d other)",
		     count(IDLE_DROPPED), n_idle, count(IDLE_ANSWERED),
		     count(IDLE_OTHER));
	printf("verbs_idle: %d connections answered at once and never "
	       "completed; a worker joined in %.0f ms and did its job; all %d "
	       "were dropped at their deadline\n",
	       n_idle, joined, n_idle);
	for (int i = 0; i < n_idle; i++)
		rdma_destroy_id(ids[i]);
	rdma_destroy_event_channel(ch);
	return 0;
}
