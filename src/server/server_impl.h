/* SPDX-License-Identifier: MIT */
/*
 * server_impl.h - the private umbrella header of src/server/, one
 * parameter server shard (server.h is its API). The layout and the
 * protocol are ps_proto.h's.
 *
 * The files, one concept each:
 *   apply.c     the update rules and BSP's pending deltas (pure, apply.h)
 *   mem.c       registered regions of the shard
 *   tables.c    creating, describing and publishing tables
 *   push.c      one push: its checks, then apply or (BSP) accumulate
 *   clock.c     ENDs close clocks: BSP's apply, applied_clock publication;
 *               PS_WAIT and PS_DONE: waiters released by the clock words
 *   messages.c  a worker's message: checks, dispatch, BSP hold-back, and
 *               the queue of replies (welcome, credit, nack)
 *   members.c   worker lifecycle: dead, left, endpoint closing, the
 *               lost-worker publication, pulse reads
 *   accept.c    accepting and refusing peers
 *   resume.c    writing checkpoints and resuming from one
 *   loop.c      create, destroy, the event loop and its completions
 *   emb_table.c embedding tables: create, describe, publish; PS_CREATE
 *               with PS_F_EMB
 *   emb_index.c an embedding table's index and rows: find, insert (and
 *               undo), the rule applied to a row under its checksum
 *   emb_push.c  a push to an embedding table: inserts all or nothing and
 *               apply, or (BSP) the per-worker sums applied at clock end
 *   emb_lookup.c  the two-sided lookup, a benchmark baseline
 *
 * Threads: everything here runs on the thread of rdps_server_run() (or
 * create/destroy), except the heartbeat thread, which only bumps
 * dir->hdr.heartbeat (pulse.h). No function here blocks but the loop's
 * wait and checkpoint writes; none prints to stdout.
 */
#ifndef RDPS_SERVER_IMPL_H
#define RDPS_SERVER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ps_proto.h"
#include "pulse.h"
#include "rdps_base.h"
#include "server.h"
#include "server/apply.h"

_Static_assert(RDPS_SERVER_WORKERS_MAX <= PS_WORKERS_MAX,
	       "the gone map needs a bit per worker");

#define SRV_REJECT_MAX 16 /* refused peers waiting for their welcome */
#define SRV_RING 16	  /* replies queued per worker (>= NSLOTS + 2) */
#define SRV_HOLD 64	  /* messages held back per worker (BSP) */
#define SRV_DEFERRED 1	  /* srv_handle_push: hold the message back */

/* wr_id of the shard's own posts: kind in the top 32 bits, index below. */
enum srv_wr {
	SRV_WR_REPLY = 1,  /* credit, nack or welcome to worker idx */
	SRV_WR_REJECT = 2, /* refusing welcome to rejects[idx] */
	SRV_WR_PULSE = 3,  /* read of worker idx's pulse */
};
#define SRV_WR(kind, idx) (((uint64_t)(kind) << 32) | (uint32_t)(idx))

/* A queued reply: an immediate, and whether it carries the welcome. */
#define SRV_RING_WELCOME (1ull << 32)

enum srv_wstate { SRV_W_NONE = 0, SRV_W_LIVE, SRV_W_DEAD, SRV_W_LEFT };

struct srv_worker {
	struct rdps_server *s;
	unsigned rank;
	enum srv_wstate state;
	struct rdps_tp_ep *ep;
	struct rdps_tp_rkey reply; /* its reply region */
	void *slots;		   /* PS_NSLOTS * slot_bytes */
	size_t slots_len;
	struct rdps_tp_mr *slots_mr;
	uint64_t ends; /* PS_END messages seen = its next clock */
	uint64_t ring[SRV_RING];
	unsigned ring_head, ring_tail; /* replies not yet posted */
	bool stall_logged;
	bool gone_published; /* in gone_map (its endpoint is closed) */
	/* Its pulse: reads in flight, the value last seen and since when,
	 * when the read in flight was posted (ns). has_pulse: its reply
	 * region holds one. */
	bool has_pulse, pulse_busy;
	uint64_t pulse_seen, pulse_since, pulse_posted;
	/* BSP: received messages held back, in order: {imm, len}. */
	uint64_t hold[SRV_HOLD];
	unsigned hold_head, hold_tail;
	/* Its PS_WAIT registration (clock.c): the argument to answer with a
	 * PS_RELEASE, and its place in s->waiters. */
	bool waiting;
	uint32_t wait_arg;
	unsigned wait_pos;
};

/* A peer refused at accept: it gets a welcome with an errno, then is
 * closed once that write completed, or at deadline if it has not (a
 * peer that never acknowledges it must not keep its connection). */
struct srv_reject {
	struct rdps_tp_ep *ep;
	uint64_t deadline; /* ns */
	bool closing;	   /* closed at deadline; its write's completion,
			    * a flush, is still to come */
};

struct srv_table {
	bool used;
	char name[32];
	uint64_t n, lo, hi;
	/* Its values [lo, hi) here and their rule (apply.h); sl.params is
	 * registered as params_mr for the workers' reads. */
	struct srv_slice sl;
	size_t params_len;
	struct rdps_tp_mr *params_mr;
	struct srv_pend *pend; /* BSP: one per worker */
};

/*
 * Keys in first-seen order, each with vbytes of values (0: a set), and a
 * hash index over them (hix: entry + 1, 0 = free). Embedding tables' BSP
 * sums and reservations (emb_push.c).
 */
struct srv_emb_map {
	uint64_t *keys;
	unsigned char *vals;
	uint32_t *hix;
	size_t n, cap, hcap, vbytes;
};

/* An embedding table on this shard (ps_proto.h, "Embedding tables"). */
struct srv_emb {
	bool used;
	bool overflowed; /* a BSP insert found both buckets full */
	char name[32];
	uint32_t dim, dtype, rule, init;
	double lr, scale;
	uint64_t seed, capacity, nbuckets, row_bytes;
	size_t vbytes;		     /* dim values */
	struct ps_emb_bucket *index; /* nbuckets, registered */
	size_t index_len;
	struct rdps_tp_mr *index_mr;
	unsigned char *rows; /* capacity rows, registered */
	size_t rows_len;
	struct rdps_tp_mr *rows_mr;
	void *acc;		  /* Adagrad: capacity * dim sums of squares */
	uint64_t nrows;		  /* rows handed out */
	struct srv_emb_map *pend; /* BSP: per worker, key -> summed grads */
	struct srv_emb_map reserved; /* BSP: new keys of the clock */
};

struct rdps_server {
	struct rdps_server_cfg cfg;
	char url[300];
	size_t slot_bytes;
	struct rdps_tp *tp;
	struct rdps_tp_listener *lst;
	struct ps_dir *dir;
	size_t dir_len;
	struct rdps_tp_mr *dir_mr;
	struct ps_clock_table *clk;
	size_t clk_len;
	struct rdps_tp_mr *clk_mr;
	struct rdps_tp_rkey_wire clk_wire;
	/* Welcome sources: one per worker, then one per reject; then a
	 * pulse landing spot (u64) per worker (srv_pulses). */
	struct ps_welcome *wel;
	size_t wel_len;
	struct rdps_tp_mr *wel_mr;
	struct srv_worker *w;
	struct srv_reject rejects[SRV_REJECT_MAX];
	struct srv_table tables[PS_MAX_TABLES];
	struct srv_emb emb[PS_EMB_MAX];
	/* Two-sided lookups (PS_F_LOOKUP): per worker, PS_NSLOTS *
	 * slot_bytes of registered rows to put, allocated on first use. */
	void **lk_buf;
	struct rdps_tp_mr **lk_mr;
	/* Workers whose END count passed ends_at (the applied clock when
	 * they were last counted): a clock closes when all have, so an END
	 * costs O(1), and O(workers) only once per clock (clock.c). */
	unsigned ended;
	uint64_t ends_at;
	/* Ranks of the workers with a PS_WAIT registered (n_waiters of
	 * cfg.workers), unordered: a PS_DONE looks at these alone. */
	unsigned *waiters;
	unsigned n_waiters;
	uint64_t applied;	   /* published applied_clock */
	bool replay;		   /* applied moved: retry held-back messages */
	unsigned live, dead, left; /* left: said PS_BYE */
	struct rdps_pulse heartbeat; /* bumps dir->hdr.heartbeat */
	uint64_t pulse_next_ns;	     /* next round of pulse reads */
	uint64_t pulse_last_ns;	     /* when the last round ran */
	/* Endpoints to close once the completions in hand are handled:
	 * a batch may still hold completions that point at them. */
	struct rdps_tp_ep **doomed;
	unsigned n_doomed, cap_doomed;
	uint64_t last_accept_ns;
	unsigned backlog; /* workers with replies not yet posted */
	bool bsp_stuck_logged;
	/* A checkpoint that could not be written ends the shard:
	 * rdps_server_run() returns ckpt_err with ckpt_msg. */
	int ckpt_err;
	char ckpt_msg[512];
	struct rdps_server_stats st;
};

static inline uint16_t srv_htobe16(unsigned v)
{
	return __builtin_bswap16((uint16_t)v);
}
#define srv_be16toh srv_htobe16

static inline size_t srv_round_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

/* One more message handled by the loop thread: counted, and published in
 * the directory where a benchmark or test reads it (struct ps_dir_stats). */
static inline void srv_count_handled(struct rdps_server *s)
{
	/* Released with what came before it (srv_dispatch: what is
	 * counted when). */
	__atomic_store_n(&s->dir->stats.handled_be,
			 rdps_htobe64(++s->st.handled), __ATOMIC_RELEASE);
}

/* BSP and A-BSP close clocks alike: deltas applied in worker order. */
static inline bool srv_bsp(const struct rdps_server *s)
{
	return rdps_model_in_order(s->cfg.model);
}

/* Where the pulse read of worker r lands: behind the welcome sources. */
static inline uint64_t *srv_pulses(struct rdps_server *s)
{
	return (uint64_t *)(s->wel + s->cfg.workers + SRV_REJECT_MAX);
}

/* mem.c ------------------------------------------------------------------ */

/* Allocate len bytes from the transport and register them with access.
 * 0 and both out-params set, or the transport's -errno with nothing
 * held. */
int srv_region_new(struct rdps_server *s, size_t len, unsigned access,
		   void **addr_out, struct rdps_tp_mr **mr_out);

/* Deregister and free what srv_region_new() gave; NULLs both pointers.
 * Either may already be NULL. */
void srv_region_free(struct rdps_server *s, void **addr, size_t len,
		     struct rdps_tp_mr **mr);

/* tables.c --------------------------------------------------------------- */

/* A new table of n elements holding this shard's range, with zeroed
 * values (and accumulator, and on BSP per-worker pending deltas). Not yet
 * visible to workers: srv_table_publish() does that once its values are
 * in place. 0, -ENOSPC (all PS_MAX_TABLES in use) or -ENOMEM, or the
 * transport's error registering the values. */
int srv_table_create(struct rdps_server *s, const char *name, uint64_t n,
		     uint32_t dtype, uint32_t rule, double lr,
		     struct srv_table **t_out);

/* Write t's descriptor into the directory, ready last (release). */
void srv_table_publish(struct rdps_server *s, struct srv_table *t);

/* The used table called name, or NULL. */
struct srv_table *srv_table_find(struct rdps_server *s, const char *name);

/* Free everything t holds and mark its index unused. */
void srv_table_free(struct rdps_server *s, struct srv_table *t);

/* A PS_CREATE from w (payload: its struct ps_create, m->bytes_be bytes
 * long as checked here): create and publish the table, or accept an
 * identical one. 0 or -errno for the nack (logged here). */
int srv_handle_create(struct srv_worker *w, const struct ps_msg *m,
		      const void *payload);

/* push.c ----------------------------------------------------------------- */

/* A PS_PUSH from w: check it against its table (flags, range, sizes, on
 * BSP its clock), then apply it or add it to w's pending delta. Sparse
 * pushes are all or nothing. 0, SRV_DEFERRED (BSP: a push of a later
 * clock, to hold back until applied reaches it), or -errno for the nack
 * (logged here). payload holds m->bytes_be bytes (checked by the caller
 * against the sub-slot). */
int srv_handle_push(struct srv_worker *w, const struct ps_msg *m,
		    const unsigned char *payload);

/* push.c (BSP clock check, shared with emb_push.c) ---------------------- */

/* BSP/A-BSP: is a push of w at clock fine now (0), to hold back
 * (SRV_DEFERRED), or refused (-EPROTO, logged naming table what)? 0 for
 * the other models. */
int srv_push_clock_check(struct srv_worker *w, uint64_t clock,
			 const char *what);

/* emb_table.c ------------------------------------------------------------ */

/* A PS_CREATE with PS_F_EMB from w: create and publish the embedding
 * table, or accept an identical one. 0 or -errno for the nack (logged). */
int srv_emb_handle_create(struct srv_worker *w, const struct ps_msg *m,
			  const void *payload);

/* Free everything of embedding table t and mark it unused. */
void srv_emb_free(struct rdps_server *s, struct srv_emb *t);

struct ckpt;
struct ckpt_emb;

/* Describe every embedding table into c->e[] (pointing at the shard's
 * index, rows and state) for a checkpoint. */
void srv_emb_to_ckpt(const struct rdps_server *s, struct ckpt *c);

/* Create embedding table ce of checkpoint path (checked by ckpt_parse)
 * in its directory slot with its index, rows and state, and publish it.
 * 0 or -errno with rdps_errmsg(). */
int srv_emb_restore(struct rdps_server *s, const struct ckpt_emb *ce,
		    const char *path);

/* emb_index.c ------------------------------------------------------------ */

/* The row of key in t, or -1. */
int64_t srv_emb_find(const struct srv_emb *t, uint64_t key);

/* Insert key (absent): its row at the initial value, then its slot.
 * 0 with *row_out, or -ENOSPC (no row left, or both buckets full). */
int srv_emb_insert(struct srv_emb *t, uint64_t key, uint32_t *row_out);

/* Undo the insert of key, the last row handed out (a refused message):
 * its slot cleared, its row sealed dead (PS_EMB_VERSION_DEAD). */
void srv_emb_uninsert(struct srv_emb *t, uint64_t key);

/* Apply t's rule with grad (dim values, any alignment) to row, then
 * publish its new version and check. */
void srv_emb_update(struct srv_emb *t, uint32_t row, const void *grad);

/* emb_push.c ------------------------------------------------------------- */

/* A PS_PUSH with PS_F_EMB from w (as srv_handle_push). */
int srv_emb_handle_push(struct srv_worker *w, const struct ps_msg *m,
			const unsigned char *payload);

/* BSP: a clock closed: apply every worker's sums in worker order. */
void srv_emb_apply_pending(struct rdps_server *s);

/* Free a map's memory. */
void srv_emb_map_free(struct srv_emb_map *m);

/* emb_lookup.c ----------------------------------------------------------- */

/* A PS_PUSH with PS_F_EMB | PS_F_LOOKUP in sub-slot k of w: look the keys
 * of embedding table t up and put their rows to the worker. 0 or -errno
 * for the nack (logged). */
int srv_emb_lookup(struct srv_worker *w, struct srv_emb *t,
		   const struct ps_msg *m, const unsigned char *payload);

/* Free the lookup buffers (destroy). */
void srv_emb_lookup_free(struct rdps_server *s);

/* clock.c ---------------------------------------------------------------- */

/* Publish applied_clock c in the directory (release). */
void srv_publish_applied(struct rdps_server *s, uint64_t c);

/* PS_END(arg) from w: count it; once every worker ended a clock, apply
 * the pending deltas (BSP, worker order), checkpoint, publish the clock
 * and set s->replay. */
void srv_handle_end(struct srv_worker *w, uint32_t arg);

/* BSP: log once that a clock can never complete (a worker is dead and a
 * live one went past it). */
void srv_bsp_check_stuck(struct rdps_server *s);

/* PS_WAIT(arg) from w (ps_proto.h, "Waking waiters"): a PS_RELEASE at
 * once if the round is complete by this shard's clock words, else w is
 * registered (replacing its earlier registration). O(1). */
void srv_handle_wait(struct srv_worker *w, uint32_t arg);

/* PS_DONE(arg): answer every registered waiter whose round is complete by
 * the clock words (arg is only logged: never trusted). O(waiters). */
void srv_handle_done(struct rdps_server *s, uint32_t arg);

/* Wake every registered waiter (a PS_RELEASE each, registrations
 * dropped): a worker is gone, or the shard stops. */
void srv_wake_all(struct rdps_server *s);

/* Drop w's registration without an answer (w is gone). */
void srv_wait_drop(struct srv_worker *w);

/* messages.c ------------------------------------------------------------- */

/* A write with immediate imm and len bytes arrived from live worker w:
 * handle it (or hold it back, BSP), then the held-back messages that
 * became due. Replies go through srv_worker_reply(). */
void srv_recv(struct srv_worker *w, uint32_t imm, uint32_t len);

/* Queue the reply e (an immediate, | SRV_RING_WELCOME for the welcome) to
 * w and post what the transport takes. A worker with more replies
 * outstanding than its sub-slots allow is counted dead. */
void srv_worker_reply(struct srv_worker *w, uint64_t e);

/* Post w's queued replies in order until the transport pushes back. */
void srv_worker_flush(struct srv_worker *w);

/* members.c -------------------------------------------------------------- */

/* Close ep after the current batch of completions (ep->user is cleared
 * now, so the rest of the batch ignores it). */
void srv_ep_close_later(struct rdps_server *s, struct rdps_tp_ep *ep);

/* Close the endpoints of srv_ep_close_later() and publish the workers
 * that are gone with them (gone map, dead count). Call only with no
 * completion in hand. */
void srv_ep_close_doomed(struct rdps_server *s);

/* Close w's endpoint (later) and free its slots and queues; with
 * drop_pending also its BSP pending deltas. */
void srv_worker_release(struct srv_worker *w, bool drop_pending);

/* Live worker w is lost (why says how): logged, counted, released. No-op
 * on a worker not live. */
void srv_worker_dead(struct srv_worker *w, const char *why);

/* Live worker w said PS_BYE: done, not dead; its pending deltas stay. */
void srv_worker_left(struct srv_worker *w);

/* When a heartbeat interval has passed, post a read of every live
 * worker's pulse; count dead those still for two intervals. */
void srv_pulse(struct rdps_server *s);

/* The pulse read of w came back with v. */
void srv_pulse_seen(struct srv_worker *w, uint64_t v);

/* accept.c --------------------------------------------------------------- */

/* Accept every peer waiting (the first wait up to timeout_ms): welcome
 * workers, refuse the others. 0, or the listener's fatal -errno. */
int srv_accept_all(struct rdps_server *s, int timeout_ms);

/* The refusing welcome rejects[idx] was written (or flushed): close its
 * endpoint, free its slot. */
void srv_reject_sent(struct rdps_server *s, unsigned idx);

/* resume.c --------------------------------------------------------------- */

/* Write the tables as of applied clock c if a checkpoint is due at c.
 * Blocks on the file system. 0, or -errno after setting s->ckpt_err and
 * s->ckpt_msg (naming the file and the reason): the caller must not
 * publish c, and rdps_server_run() then fails the shard. */
int srv_checkpoint(struct rdps_server *s, uint64_t c);

/* Load the checkpoint cfg asks for: tables, applied clock, every
 * worker's ends, the clock table on shard 0. 0 or -errno with
 * rdps_errmsg(). */
int srv_resume(struct rdps_server *s);

#endif /* RDPS_SERVER_IMPL_H */
