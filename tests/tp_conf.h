/* SPDX-License-Identifier: MIT */
/*
 * tp_conf.h - the fixtures of the transport conformance suite (library
 * tp_conf: tests/tp_conf.c, the test side; tests/tp_target.c, the target
 * process). The cases are in tests/tp_conformance.c (every transport) and
 * tests/tp_conf_<scheme>.c (one transport's own); each binary is built for
 * one transport and calls tc_init() with its scheme first.
 *
 * Initiators and targets live in separate processes, as in a real job: a
 * case starts a target child (tgt_start) that opens its own transport
 * instance and serves commands (listen, accept, allocate and register
 * regions, hash or read its memory, report write-with-immediate
 * completions) over its channel; the test process (struct conn), or peer
 * children (struct peer), connect to it and post one-sided operations.
 * Processes synchronise only by messages on those channels, never by
 * sleeping; every wait has a deadline, so a transport that hangs fails the
 * case instead of hanging the suite.
 *
 * Order rule: a case starts all its children before it opens its own
 * transport instance, so no child inherits the parent's sockets, mappings
 * or progress threads.
 *
 * Errors: the test-side calls (tgt_*, conn_*, tc_*) check what they do with
 * cmocka (CHECK) and fail the case on any surprise, saying what was being
 * done; they return only on success. Children (the target, peers) never
 * call cmocka: they report with TH_CHILD_CHECK (tp_harness.h).
 * Threads: the test's main thread only.
 */
#ifndef RDPS_TP_CONF_H
#define RDPS_TP_CONF_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_harness.h"
#include "transport.h"

#define TC_TOKEN 0x7e57c0de5eed0001ull
#define TC_CONNECT_MS 5000 /* connect and accept */
#define TC_REPLY_MS 20000  /* a target's answer to one command */
#define TC_COMP_MS 5000	   /* completions of a few operations */
#define TC_HEAP_SIZE (256u << 20)

/* --- The transport under test ----------------------------------------- */

/* Set the scheme ("shm", "tcp", "verbs") every fixture uses; first thing
 * in main(), before th_main() (exec'd children run fixtures too). The
 * string must outlive the run. */
void tc_init(const char *scheme);
const char *tc_scheme(void);
int tc_is_scheme(const char *scheme);

/* This host's address for tcp and verbs: RDPS_TEST_ADDR or 127.0.0.1. */
const char *tc_test_host(void);
/* Where targets listen: this host, or the RDPS_TEST_REMOTE one. */
const char *tc_target_host(void);
/* The default configuration of the suite: job token TC_TOKEN, a shm heap
 * of TC_HEAP_SIZE. */
void tc_cfg(struct rdps_tp_cfg *cfg);
/* A fresh URL to listen on at host (in this process: tc_fresh_listen_url):
 * shm names are unique per process and call, tcp and verbs use port 0. */
void tc_fresh_url_at(const char *host, char *buf, size_t len);
void tc_fresh_listen_url(char *buf, size_t len);

/* Why no case of this transport can run on this machine (verbs without an
 * RDMA device), or NULL. */
const char *tc_cannot_run(void);

/* First in every case: skip it (with the reason) where tc_cannot_run(). */
#define TC_REQUIRE_TRANSPORT()                                \
	do {                                                  \
		const char *why_ = tc_cannot_run();           \
		if (why_) {                                   \
			print_message("skipped: %s\n", why_); \
			skip();                               \
			return;                               \
		}                                             \
	} while (0)

/* Set when this process got a SIGPIPE (tc_catch_sigpipe() installs the
 * handler; tc_case_setup clears it; a target reports it at T_EXIT). */
extern volatile sig_atomic_t tc_sigpipe_seen;
void tc_catch_sigpipe(void);

/* cmocka fixtures: every case runs between tc_case_setup and
 * tc_case_teardown, which kill and reap children a failed case left. */
int tc_group_setup(void **state);
int tc_case_setup(void **state);
int tc_case_teardown(void **state);
int tc_group_teardown(void **state);

/* --- The target: a child process serving commands over its channel ---- */

enum tcmd {
	T_HELLO = 1, /* sent by the target once its transport is open */
	T_LISTEN,    /* url, priv -> url (listener_url) */
	T_ACCEPT,    /* a: count, b: timeout ms -> c: accepted, priv */
	T_ALLOC,     /* a: len, access, b: fill seed -> idx, wire, c: addr */
	T_REG,	     /* idx, access, a: 0 or 1 + endpoint index (mem_reg_ep)
		      * -> wire (register again after T_DEREG) */
	T_DEREG,     /* idx */
	T_FILL,	     /* idx, a: off, b: len, c: seed */
	T_HASH,	     /* idx, a: off, b: len -> c: hash */
	T_READ,	     /* idx, a: off, b: len -> payload of b bytes */
	T_WATCH,     /* idx, a: off, b: len: hash this range at each RECV_IMM */
	T_IMM_WAIT,  /* a: count, b: timeout ms -> ret records as payload */
	T_CLOSE_EPS, /* close every endpoint */
	T_DISC_WAIT, /* a: count, b: timeout ms -> ret: DISCONNECTs polled */
	T_EXIT,	     /* release everything, ret: rdps_tp_close() */
};

/* One command and its answer (the same struct both ways). */
struct tmsg {
	uint32_t cmd;
	int32_t ret;
	uint32_t idx;
	uint32_t access;
	uint64_t a, b, c;
	struct rdps_tp_rkey_wire wire;
	uint32_t priv_len;
	uint8_t priv[RDPS_TP_PRIV_MAX];
	char url[200];
	char err[256]; /* the target's rdps_errmsg() or its own finding */
};

/* One RECV_IMM completion as the target saw it. */
struct imm_rec {
	uint64_t
		hash; /* of the watched range, when the completion was polled */
	uint32_t imm;
	uint32_t len;
	int32_t status;
	uint8_t opcode;
	uint8_t ep_ok; /* comp.ep is one of the target's endpoints */
	uint8_t pad[2];
};

#define T_MAX_REG 8
#define T_MAX_EP 32
#define T_MAX_IMM 256
#define T_MAX_READ (1u << 16)

/* The target role ("target" in the th_role table, remote_ok): arg is the
 * struct rdps_tp_cfg it opens its transport with. */
int tc_target_main(int fd, void *arg);

/* --- The test side of a target ---------------------------------------- */

struct tgt {
	struct th_child ch;
	char url[200];
	int n_reg;
	struct rdps_tp_rkey_wire wire[T_MAX_REG];
	uint64_t addr[T_MAX_REG];
	size_t len[T_MAX_REG];
};

/* Start a target (cfg NULL: tc_cfg()); it has opened its transport when
 * this returns. */
void tgt_start(struct tgt *t, const struct rdps_tp_cfg *cfg);
/* Tell the target to exit: it must release everything (rdps_tp_close 0,
 * no SIGPIPE, nothing unexpected seen) and exit 0. */
void tgt_stop(struct tgt *t);
/* Send m, wait for its answer into m (m->ret is not checked). */
void tgt_call(struct tgt *t, struct tmsg *m);
/* Listen (with private data for the accepted peers); t->url is the
 * listener's URL, with the real port. */
void tgt_listen_priv(struct tgt *t, const void *priv, size_t len);
void tgt_listen(struct tgt *t);
/* Accept n peers within timeout_ms, in the background of the target: the
 * test connects in between, then tgt_accept_end() gets the answer (ret, c:
 * the count accepted, priv). */
void tgt_accept_begin(struct tgt *t, int n, int timeout_ms);
void tgt_accept_end(struct tgt *t, struct tmsg *m);
/* Allocate and register a region of len bytes filled with pattern seed;
 * its index (t->wire, t->addr, t->len hold its key and place). */
int tgt_alloc(struct tgt *t, size_t len, unsigned access, uint64_t seed);
void tgt_dereg(struct tgt *t, int idx);
/* Register region idx again (after tgt_dereg), for every peer or for the
 * peer of the target's endpoint ep (in accept order) alone; its new key
 * replaces t->wire[idx]. */
void tgt_reg(struct tgt *t, int idx, unsigned access);
void tgt_reg_ep(struct tgt *t, int idx, unsigned access, int ep);
/* Fill, hash or read bytes [off, off+len) of region idx. */
void tgt_fill(struct tgt *t, int idx, uint64_t off, uint64_t len,
	      uint64_t seed);
uint64_t tgt_hash(struct tgt *t, int idx, uint64_t off, uint64_t len);
void tgt_read(struct tgt *t, int idx, uint64_t off, void *buf, size_t len);
uint64_t tgt_read_u64(struct tgt *t, int idx, uint64_t off);
/* Hash this range of region idx each time a RECV_IMM is polled. */
void tgt_watch(struct tgt *t, int idx, uint64_t off, uint64_t len);
/* Up to n RECV_IMM records the target saw within timeout_ms. */
int tgt_imm_wait(struct tgt *t, struct imm_rec *recs, int n, int timeout_ms);
/* The target's region idx must equal shadow; on a difference, the first
 * differing byte is named (found by bisecting with hashes). */
void tgt_expect_region(struct tgt *t, int idx, const uint8_t *shadow,
		       size_t len, const char *what);

/* --- The test process's own side of a connection ----------------------- */

struct conn {
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	uint8_t *buf; /* local buffer, registered with local access */
	size_t len;
	struct rdps_tp_mr *mr;
	struct rdps_tp_rkey rk[T_MAX_REG]; /* the target's keys, unpacked */
};

/* Open a transport (cfg NULL: tc_cfg()) with a registered local buffer of
 * buf_len bytes; no endpoint yet. */
void conn_open_tp(struct conn *c, const struct rdps_tp_cfg *cfg,
		  size_t buf_len);
/* Connect c to t (the target accepts), and unpack all the target's keys;
 * accept_out (or NULL) gets the target's answer. */
void conn_connect_priv(struct conn *c, struct tgt *t, const void *priv,
		       size_t priv_len, struct tmsg *accept_out);
void conn_connect(struct conn *c, struct tgt *t);
/* Close the endpoint, free the buffer; rdps_tp_close must then succeed. */
void conn_close(struct conn *c);

/* Collect exactly n completions within timeout_ms. */
void tc_wait_comps(struct rdps_tp *tp, struct rdps_tp_comp *out, int n,
		   int timeout_ms, const char *what);
/* Completion c must be wr_id's, with this opcode, status and (len >= 0)
 * length. */
void tc_expect_comp(const struct rdps_tp_comp *c, uint64_t wr_id, int opcode,
		    int status, long len, const char *what);
/* Post one put (wr_id 1) or get (wr_id 2) from c's buffer registration and
 * expect its single successful completion. */
void tc_put_sync(struct conn *c, const void *lbuf, size_t len, uint64_t raddr,
		 const struct rdps_tp_rkey *rk, const char *what);
void tc_get_sync(struct conn *c, void *lbuf, size_t len, uint64_t raddr,
		 const struct rdps_tp_rkey *rk, const char *what);

/* --- Peer children: other processes connected to one target ------------ */

/* What a peer child gets (a plain struct: it is copied to an exec'd
 * process). */
struct peer_arg {
	int id;
	int n_ops;
	char url[200];
	struct rdps_tp_rkey_wire wire;
};

/* A peer process's side of a connection to the target. */
struct peer {
	const char *role;
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct rdps_tp_rkey rk;
	uint64_t *res;
	size_t res_len;
	struct rdps_tp_mr *mr;
};

/* In a peer child: open the transport, connect to a->url, unpack a->wire
 * and register n_res u64 result slots (p->res); TH_CHILD_CHECK on error. */
void peer_open(struct peer *p, const struct peer_arg *a, size_t n_res);
/* In a peer child: release everything; 0, or th_child_fail. */
int peer_close(struct peer *p);

/* Spawn n peers playing role (after the target is listening), each told
 * the key of region idx and n_ops; they connect at once, the target
 * accepts them all, and each has sent its ready byte 'R' on return. */
void tc_spawn_peers(struct tgt *t, int idx, struct th_child *kids,
		    struct peer_arg *args, int n, const char *role, int n_ops);
/* Receive len bytes from a child within timeout_ms; if it died, fail the
 * case saying how. */
void tc_kid_recv(struct th_child *k, void *buf, size_t len, int timeout_ms,
		 const char *what);
/* Reap a child that must have exited 0. */
void tc_kid_reap_ok(struct th_child *k);

/* --- Cases every transport passes, in files of their own --------------- */

/* tp_conf_gather.c: the gather READ, good and bad. */
void t_gather_read(void **state);
void t_gather_bad(void **state);

/* --- One transport's own cases (tests/tp_conf_<scheme>.c) -------------- */

/* shm: remote access only to memory from mem_alloc (the shared heap). */
void t_shm_reg_outside_heap(void **state);
/* shm: mixed operations done in the post, on one endpoint: order, status
 * of each, backpressure. */
void t_shm_mixed_order(void **state);
/* shm: the initiator's cache of checked keys against deregistration. */
void t_shm_key_cache(void **state);
void t_shm_imm_busy(void **state);
/* tcp: RDPS_TP_MAX_RD_ATOMIC, kept by the initiator, enforced by the target. */
void t_tcp_rd_atomic_bound(void **state);
/* tcp: a request held for batching goes out with no poll of the user. */
void t_tcp_held_flush(void **state);
/* tcp: the peer's one-sided requests are served whether the owner's
 * application thread waits, is away, or armed and gone. */
void t_tcp_user_drives(void **state);
/* Adaptive polling stops spinning in vain and spins again when it pays
 * (on tcp: the waiter's thread CPU over its wake-ups). */
void t_tcp_spin_learns(void **state);
void t_tcp_serve_thread(void **state);
/* tcp: a waiter spins on while its completion's bytes arrive in pieces. */
void t_tcp_spin_while_moving(void **state);
/* tcp: a large payload wakes its reader once it is all in, not per piece. */
void t_tcp_rx_lowat(void **state);
/* tcp: a user polling one endpoint reads its socket with no epoll_wait,
 * the socket out of the epoll set until the user sleeps or goes away. */
void t_tcp_direct_reads(void **state);

#endif /* RDPS_TP_CONF_H */
