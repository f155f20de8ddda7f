/* SPDX-License-Identifier: MIT */
/*
 * rendezvous.h - the job rendezvous of cluster launches (private API;
 * rdps-run is its front end).
 *
 * Every process of a job placed by a cluster launcher (srun, mpirun) knows
 * its rank r of N and the address RDPS_ROOT=host:port. Rank 0 serves the
 * rendezvous there; every rank (rank 0 too) connects to it as a client.
 * Ranks 0..S-1 are shards, ranks S..N-1 the workers 0..W-1 (W = N - S).
 *
 * The protocol is lines of printable ASCII ended by '\n', at most
 * RDPS_RDV_LINE_MAX bytes with the newline; fields are separated by one
 * space; numbers are plain decimal. Anything else is refused with an ERR
 * line and the connection is closed.
 *
 *   client -> root                      root -> client
 *   HELLO rank size shards model slack  WELCOME token      (or ERR text)
 *   PUT index url       (shard)         OK
 *   GET                 (worker)        SHARD i url ... (S lines), END
 *   DONE status         (worker)        OK
 *                                       STOP  (to shards, all workers done)
 *                                       ERR text  (any time: job aborted)
 *
 * A shard's PUT index must be its own rank. GET is answered once every
 * rank has said HELLO and every shard has registered. When every worker
 * has sent DONE or closed its connection, the root sends STOP to the
 * shards.
 *
 * The library never prints to stdout and never exits: errors are returned
 * as -errno with rdps_errmsg() explaining them.
 */
#ifndef RDPS_RENDEZVOUS_H
#define RDPS_RENDEZVOUS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "rdps/rdps.h"

#define RDPS_RDV_LINE_MAX 512 /* bytes per line, '\n' included */
#define RDPS_RDV_TEXT_MAX 400 /* a url or an error text, NUL included */
#define RDPS_RDV_SHARDS_MAX 256
#define RDPS_RDV_WORKERS_MAX 4096
#define RDPS_RDV_SLACK_MAX 62

enum rdps_rdv_op {
	RDPS_RDV_HELLO = 1,
	RDPS_RDV_WELCOME,
	RDPS_RDV_PUT,
	RDPS_RDV_OK,
	RDPS_RDV_GET,
	RDPS_RDV_SHARD,
	RDPS_RDV_END,
	RDPS_RDV_DONE,
	RDPS_RDV_STOP,
	RDPS_RDV_ERR,
};

struct rdps_rdv_msg {
	enum rdps_rdv_op op;
	unsigned rank, size, shards, slack; /* HELLO */
	enum rdps_model model;		    /* HELLO */
	uint64_t token;			    /* WELCOME */
	unsigned index;			    /* PUT, SHARD */
	unsigned status;		    /* DONE: an exit code, 0..255 */
	char text[RDPS_RDV_TEXT_MAX];	    /* PUT, SHARD: url; ERR: text */
};

/*
 * Parse one line of len bytes, without its '\n' (embedded NULs, control
 * characters, a '\r', extra or missing fields, numbers out of range are all
 * errors). 0, or -EINVAL / -EMSGSIZE with rdps_errmsg().
 */
int rdps_rdv_parse(const char *line, size_t len, struct rdps_rdv_msg *out);
/* Format m as a line with its '\n' into buf; returns the length or
 * -EMSGSIZE / -EINVAL. */
int rdps_rdv_format(const struct rdps_rdv_msg *m, char *buf, size_t len);

/* Split "host:port" or "[v6]:port" (port 1..65535). 0 or -EINVAL. */
int rdps_rdv_addr_parse(const char *s, char *host, size_t hlen, char *port,
			size_t plen);

/* The job as the root sees it, without sockets (unit-testable). */
struct rdps_rdv_job {
	unsigned size, shards;
	enum rdps_model model;
	unsigned slack;
	uint64_t token;
	unsigned hellos, puts, dones, failed;
	unsigned char *said_hello; /* per rank */
	unsigned char *finished;   /* per rank (workers) */
	char (*urls)[RDPS_RDV_TEXT_MAX];
};

/* -EINVAL (shape) or -ENOMEM. */
int rdps_rdv_job_init(struct rdps_rdv_job *job, unsigned size, unsigned shards,
		      enum rdps_model model, unsigned slack, uint64_t token);
void rdps_rdv_job_fini(struct rdps_rdv_job *job);
/* A HELLO: its job shape must match, its rank not seen before. */
int rdps_rdv_job_hello(struct rdps_rdv_job *job, const struct rdps_rdv_msg *m);
/* A PUT from rank: a shard registering itself, once. */
int rdps_rdv_job_put(struct rdps_rdv_job *job, unsigned rank,
		     const struct rdps_rdv_msg *m);
/* Worker rank finished with status (or its connection closed: lost). */
int rdps_rdv_job_done(struct rdps_rdv_job *job, unsigned rank, unsigned status,
		      int lost);
static inline int rdps_rdv_job_all_put(const struct rdps_rdv_job *job)
{
	return job->puts == job->shards;
}
static inline int rdps_rdv_job_all_done(const struct rdps_rdv_job *job)
{
	return job->dones == job->size - job->shards;
}

/* The root's server. */
struct rdps_rdv_server;

/*
 * Listen on addr ("host:port"; the host may be 0.0.0.0) for a job of size
 * ranks with shards shards. hello_timeout_ms: every rank must have said
 * HELLO by then (0: 60000). -EADDRINUSE, -EINVAL, ...
 */
int rdps_rdv_server_create(const char *addr, unsigned size, unsigned shards,
			   enum rdps_model model, unsigned slack,
			   uint64_t token, int hello_timeout_ms,
			   struct rdps_rdv_server **srv_out);
/*
 * Serve until the job is over: every worker done, STOP sent to every
 * shard and their connections closed (or 10 s passed). Returns 0, or
 * -ETIMEDOUT (a rank never came; ERR sent to all), -ECONNABORTED (a shard
 * left before registering; ERR sent to all) or -ECANCELED (*stop set).
 * Problems of single clients are logged, never fatal.
 */
int rdps_rdv_server_run(struct rdps_rdv_server *srv,
			const volatile sig_atomic_t *stop);
/* Workers that failed or were lost, once run returned. */
unsigned rdps_rdv_server_failed(const struct rdps_rdv_server *srv);
void rdps_rdv_server_destroy(struct rdps_rdv_server *srv);

/* A client: one rank's connection to the root. */
struct rdps_rdv_client;

/* Connect to addr, retrying refused connections until timeout_ms. */
int rdps_rdv_connect(const char *addr, int timeout_ms,
		     struct rdps_rdv_client **c_out);
/* The local address of the connection, numeric ("[...]" for IPv6): the
 * interface that routes to the root. */
int rdps_rdv_local_addr(const struct rdps_rdv_client *c, char *buf, size_t len);
/* HELLO; the job token on success. -EPROTO/-ECONNREFUSED with errmsg. */
int rdps_rdv_hello(struct rdps_rdv_client *c, unsigned rank, unsigned size,
		   unsigned shards, enum rdps_model model, unsigned slack,
		   uint64_t *token_out);
int rdps_rdv_put(struct rdps_rdv_client *c, unsigned index, const char *url);
/* GET: the S urls comma-separated into buf (waits at most timeout_ms). */
int rdps_rdv_get(struct rdps_rdv_client *c, unsigned shards, char *buf,
		 size_t len, int timeout_ms);
int rdps_rdv_done(struct rdps_rdv_client *c, unsigned status);
/* Block until STOP (0), the root's ERR (-ECANCELED) or a closed or broken
 * connection (-ECONNRESET). */
int rdps_rdv_wait_stop(struct rdps_rdv_client *c);
/* Make a blocked rdps_rdv_wait_stop() return (from another thread). */
void rdps_rdv_shutdown(struct rdps_rdv_client *c);
void rdps_rdv_close(struct rdps_rdv_client *c);

#endif /* RDPS_RENDEZVOUS_H */
