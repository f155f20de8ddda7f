/* SPDX-License-Identifier: MIT */
/*
 * server.h - one parameter server shard (private API; rdps-server is its
 * command-line front end). Implemented in src/server/, whose files
 * server/server_impl.h lists.
 *
 * A shard listens on one URL, accepts the job's W workers, owns the
 * elements [lo, hi) of every table (ps_shard_range) and applies the deltas
 * the workers push, following the layout and protocol of ps_proto.h to the
 * letter. Shard 0 also hosts the clock table, which only workers' atomics
 * change.
 *
 * Threads: a server is used from one thread; rdps_server_run() is its
 * event loop. The library never prints to stdout and never exits: errors
 * are returned as -errno with rdps_errmsg() explaining them, and the loop
 * logs what happens to individual workers (rdps_log).
 */
#ifndef RDPS_SERVER_H
#define RDPS_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "rdps/rdps.h"
#include "transport.h"

#define RDPS_SERVER_SLOT_MIN 4096u	/* smallest sub-slot, bytes */
#define RDPS_SERVER_SLOT_MAX (1u << 30) /* largest sub-slot, bytes */
#define RDPS_SERVER_WORKERS_MAX 4096u	/* ranks travel as be16 */

struct rdps_server;

struct rdps_server_cfg {
	const char *url;  /* where to listen: shm://NAME, tcp://HOST:PORT */
	unsigned shard;	  /* this shard, 0 .. nshards-1 */
	unsigned nshards; /* S */
	unsigned workers; /* W */
	enum rdps_model model;
	unsigned slack; /* SSP only; must be 0 for BSP, ignored by ASP */
	uint64_t token; /* job token, the same on every peer */
	enum rdps_tp_poll_mode poll_mode;
	/* Bytes per sub-slot, the ps_msg header included (welcome's
	 * slot_bytes); a multiple of 64 within [SLOT_MIN, SLOT_MAX].
	 * 0: PS_SLOT_BYTES_DEFAULT. */
	size_t slot_bytes;
	/* Checkpoints (BSP and A-BSP only): with ckpt_dir set, the shard
	 * writes its tables to ckpt_dir (checkpoint.h) whenever its
	 * applied_clock reaches a multiple of ckpt_every (0: 1), before
	 * publishing it. resume: start from the checkpoint of resume_clock
	 * (RDPS_SERVER_RESUME_NEWEST: the newer of the two kept) instead of
	 * empty tables; workers then start at that clock. */
	const char *ckpt_dir;
	unsigned ckpt_every;
	int resume;
	uint64_t resume_clock;
	/* Liveness (ps_proto.h): the period of the shard's heartbeat as
	 * published to workers and of its reads of every worker's pulse;
	 * a peer still for two periods is stopped or hung. 0: no liveness
	 * checks (a stopped peer is then caught by the operation timeout).
	 * Default PS_HEARTBEAT_MS (500). */
	unsigned heartbeat_ms;
};
#define RDPS_SERVER_HEARTBEAT_MIN 250	 /* ms; pulses come every 125 */
#define RDPS_SERVER_HEARTBEAT_MAX 600000 /* ms */
#define RDPS_SERVER_RESUME_NEWEST UINT64_MAX

/* Defaults: shard 0 of 1, 1 worker, BSP, adaptive polling, default slots;
 * url NULL (must be set). */
void rdps_server_cfg_default(struct rdps_server_cfg *cfg);

/*
 * Validate cfg, open the transport named by the URL's scheme, allocate and
 * register the directory (and on shard 0 the clock table) and start
 * listening. Does not block waiting for workers. -EINVAL (bad cfg, with
 * rdps_errmsg()), -EADDRINUSE, -ENOMEM, or the transport's error.
 */
int rdps_server_create(const struct rdps_server_cfg *cfg,
		       struct rdps_server **server_out);

/* The URL workers connect to (the real port when the cfg said port 0).
 * Valid until rdps_server_destroy(). */
const char *rdps_server_url(const struct rdps_server *s);

/*
 * Serve: accept workers, handle their messages, apply updates and publish
 * clocks until *stop becomes non-zero (checked at least every 100 ms; a
 * signal handler may set it), a fatal transport error or a checkpoint
 * that cannot be written (the clock it was for is not published). Returns
 * 0 when stopped, else -errno (rdps_errmsg() says why). A misbehaving or dead
 * worker is never fatal: it is logged and refused or dropped. stop may be
 * NULL (then only a fatal error ends the loop). May be called again after
 * it returned 0.
 */
int rdps_server_run(struct rdps_server *s, const volatile sig_atomic_t *stop);

/* Counters for tests and logs. */
struct rdps_server_stats {
	uint64_t pushes, creates, ends, nacks;
	/* PS_WAIT and PS_DONE handled, PS_RELEASE sent (ps_proto.h,
	 * "Waking waiters"). */
	uint64_t waits, dones, releases;
	uint64_t handled; /* every message (ps_proto.h, struct ps_dir_stats) */
	uint64_t applied_clock; /* as published in the directory */
	unsigned workers_live, workers_dead;
	unsigned tables;
};
void rdps_server_stats(const struct rdps_server *s,
		       struct rdps_server_stats *out);

/* Close every endpoint, deregister and free everything; NULL is fine. */
void rdps_server_destroy(struct rdps_server *s);

#endif /* RDPS_SERVER_H */
