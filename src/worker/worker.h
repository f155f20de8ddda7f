/* SPDX-License-Identifier: MIT */
/*
 * worker.h - the private umbrella header of src/worker/, the worker client
 * of the parameter server: connects to every shard, pulls with one-sided
 * reads, pushes through sub-slots with write-with-immediate, keeps its
 * clock with fetch-add on shard 0's clock table. The layout and protocol
 * are ps_proto.h's.
 *
 * One concept per file:
 *   ctx.c    configuration check, connect, welcome, directory check,
 *            destroy (with PS_BYE), stats
 *   mem.c    local memory: registered buffers, rdps_buf_alloc(), scratch
 *   wait.c   completions: dispatch, progress, groups, post with retry,
 *            timeouts, back-off
 *   live.c   shard liveness: heartbeat probes of the directory headers
 *   slot.c   sub-slots: take one, send the message staged in it, wait for
 *            the replies (credits and NACKs)
 *   table.c  rdps_table_open() and the directory lookup of a table
 *   pull.c   dense and sparse pulls
 *   push.c   dense and sparse pushes
 *   clock.c  rdps_clock(), rdps_barrier(), operations on the clock table
 *   loss.c   lost and departed workers: the errors naming them, and the
 *            make-up under on_worker_loss continue
 *   cut.c    A-BSP cuts
 *   emb_table.c  embedding tables: rdps_emb_open(), their directory
 *            entries
 *   emb_pull.c   embedding pulls: buckets, then rows, one-sided
 *   emb_push.c   embedding pushes: duplicates summed, {key, row} pairs
 *   emb_lookup.c the two-sided lookup, a benchmark baseline
 *   emb_export.c every row of a table, one-sided (rdps_emb_export)
 *
 * Threads: a context and its tables belong to one thread at a time; no
 * function here takes a lock. Errors: every int function returns 0 (or a
 * count) or -errno, and sets the error text (rdps_set_error) where the
 * error is first detected; callers pass it up unchanged.
 */
#ifndef RDPS_WORKER_H
#define RDPS_WORKER_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "ps_proto.h"
#include "pulse.h"
#include "rdps_base.h"
#include "transport.h"

#define WRK_PAGE 4096u

/*
 * Landing spots of 8-byte clock-table results in the small buffer
 * (ctx->small, 64 B of them, before the directory headers): each operation
 * kind has its own, so that one posted beside another never overwrites it.
 */
#define WRK_FADD 0     /* rdps_clock's fetch-add on clock t */
#define WRK_SLACK 1    /* rdps_clock's read of clock t - slack */
#define WRK_BARRIER 2  /* rdps_barrier's fetch-add and reads */
#define WRK_CUT_SWAP 3 /* rdps_cut's compare-swap */
#define WRK_CUT_READ 4 /* rdps_cut_poll's read */
#define WRK_OWN 5      /* fetch-add of this worker's own clock word */
#define WRK_MAKEUP 6   /* wrk_makeup's compare-swap */
/* Results nobody reads (the release fetch-adds of the clock tree, many at
 * once), and the fan-in compare-swap at the start. */
#define WRK_DISCARD 7

/* wr_id of a push's put_imm: odd, so it never looks like a group pointer. */
#define WRK_WR_PUSH(shard, k) ((((uint64_t)(shard) << 8 | (k)) << 1) | 1)

/* A set of posted operations waited for together (wr_id = its address). */
struct wrk_grp {
	int left;
	int status; /* first failure, enum rdps_tp_status */
	unsigned shard;
};

struct wrk_shard {
	unsigned idx;
	const char *url;
	struct rdps_tp_ep *ep;
	struct rdps_tp_rkey dir_key;
	struct rdps_tp_rkey slots_key;
	struct rdps_tp_rkey clock_key; /* its clock region */
	uint64_t slot_bytes;
	unsigned nslots;
	int welcomed;
	uint32_t welcome_status;
	/* Sub-slot ring: the oldest outstanding is head, the next free is
	 * (head + inflight) % nslots. */
	unsigned head, inflight;
	uint8_t put_busy[PS_NSLOTS]; /* put_imm posted, completion not seen */
	char *stage;		     /* nslots * slot_bytes, in ctx->stage */
	int nack_err;		     /* first NACK errno not reported yet */
	int err;		     /* sticky: the endpoint is unusable */
	uint64_t hb_seen, hb_since;  /* its heartbeat, and since when (ns) */
	unsigned hb_ms;		     /* its period (0: no liveness checks) */
	/* The directory-header read in flight (it may outlive the wait
	 * that posted it when the shard does not answer), and its post. */
	struct wrk_grp hdr_grp;
	uint64_t hdr_posted;
	/* The PS_WAIT registered here (clock.c, wrk_word_wait): its
	 * argument, whether its PS_RELEASE came (wait.c) and said the round
	 * complete (not a wake-up). */
	uint32_t wait_arg;
	int waiting, woken, complete;
};

struct wrk_part {
	uint32_t index; /* in this shard's directory */
	uint64_t lo, hi;
	struct rdps_tp_rkey params;
};

/* A buffer of rdps_buf_alloc(): pulls land in it directly. */
struct wrk_ubuf {
	char *addr;
	size_t len;
	struct rdps_tp_mr *mr;
};

struct rdps_table {
	struct rdps_ctx *ctx;
	struct rdps_table *next;
	char name[RDPS_TABLE_NAME_MAX + 1];
	uint64_t n;
	unsigned esz;
	enum rdps_dtype dtype;
	struct wrk_part *part; /* per shard */
};

/* Shard s's part of an embedding table, from its directory entry. */
struct wrk_emb_part {
	uint32_t index; /* in the shard's emb[] */
	uint64_t nbuckets;
	struct rdps_tp_rkey index_key, rows_key;
};

/* Where the row of key was last found on its shard (its shard is
 * ps_emb_shard(key)). row1: row + 1, 0 for an empty entry. */
struct wrk_emb_loc {
	uint64_t key;
	uint32_t row1;
	uint32_t pad;
};

struct rdps_emb {
	struct rdps_ctx *ctx;
	struct rdps_emb *next;
	char name[RDPS_TABLE_NAME_MAX + 1];
	struct rdps_emb_cfg cfg;
	size_t vbytes;		   /* dim values */
	uint64_t row_bytes;	   /* ps_emb_row_bytes() */
	struct wrk_emb_part *part; /* per shard */
	/* The location cache (rdps_emb_cfg.cache, emb_pull.c): NULL when
	 * off, else loc_mask + 1 entries in sets of 4, two candidate sets
	 * a key (emb_pull.c). */
	struct wrk_emb_loc *loc;
	uint64_t loc_mask;
};

struct rdps_ctx {
	char *shards_buf;
	unsigned nshards, workers, rank, slack, k;
	enum rdps_model model;
	uint64_t timeout_ns;
	struct rdps_tp *tp;
	struct wrk_shard *sh;

	void *reply;
	size_t reply_len;
	struct rdps_tp_mr *reply_mr;
	/* 64 B of clock words, then a header per shard for pulls, then
	 * one per shard for heartbeat probes (wrk_hdrs, wrk_probe_hdr). */
	void *small;
	size_t small_len;
	struct rdps_tp_mr *small_mr;
	void *stage; /* push staging: every shard's sub-slots */
	size_t stage_len;
	struct rdps_tp_mr *stage_mr;
	void *bounce; /* pull landing area, grown on demand */
	size_t bounce_len;
	struct rdps_tp_mr *bounce_mr;
	void *lk; /* two-sided lookups' landing area (REMOTE_WRITE) */
	size_t lk_len;
	struct rdps_tp_mr *lk_mr;
	void *scratch; /* sparse bookkeeping, plain heap */
	size_t scratch_len;
	struct wrk_ubuf *ubuf; /* rdps_buf_alloc() buffers, unordered */
	unsigned n_ubuf, cap_ubuf;

	uint64_t clock, barriers, last_arrivals;
	/* The clock tree (ps_proto.h "Clock tree"): the fan-in (1: flat),
	 * the clock the job started at (rounds count from it), this
	 * worker's group and where its node lives. */
	unsigned fanin, grp, grp_size, groups;
	uint64_t clock0;
	/* Clocks below done_clock are known complete (this worker saw the
	 * last arrival at one of them, or a read proved it): a slack check
	 * of one needs no read, as the counters only grow. */
	uint64_t done_clock;
	struct wrk_shard *grp_sh;
	uint64_t grp_off, root_off;
	/* For tests: fetch-adds this worker posted on tree nodes: on its
	 * group's words, on the root, into the groups' release words; and
	 * the most counter fetch-adds (group + root) of any one tick. */
	uint64_t tree_grp_adds, tree_root_adds, tree_rel_adds;
	unsigned tree_tick_max;
	/* For tests: 0, the flat wait's read phase as the transport allows
	 * (clock.c wrk_clock_reads); n + 1, n re-reads on any transport. */
	unsigned clock_reads_set;
	int ready; /* rdps_ctx_create() succeeded */
	/* A wait gave up with operations in flight that point at its
	 * (gone) group: no completion may be dispatched any more; or
	 * -EINTR: the wait check interrupted a wait, with nothing in flight
	 * (rdps_ctx_set_wait_check). No post goes out once it is set. */
	int broken;
	/* rdps_ctx_set_wait_check(); when the next call is due. */
	int (*wait_check)(void *arg);
	void *wait_check_arg;
	uint64_t wait_check_at;
	enum rdps_on_loss on_loss;
	unsigned gone_seen; /* shard 0's gone_count as last read */
	/* Bumps the u64 after the welcomes in the reply region. */
	struct rdps_pulse pulse;
	/* A-BSP: the cut word as last read, and its read in flight. */
	uint64_t cut_seen;
	struct wrk_grp cut_grp;
	struct rdps_stats st;
	struct rdps_table *tables;
	struct rdps_emb *embs;
};

/*
 * A round of a counter on the clock table that a wait needs: the counter
 * at off, complete at goal; a worker's own word (words_off + 8 * rank)
 * reaches need once its arrival is counted (ps_proto.h, "Lost workers").
 */
struct wrk_round {
	uint64_t off, goal, words_off, need;
	const char *what; /* "this clock", "the barrier" */
	uint64_t no;	  /* the clock, or the barrier (from 1) */
	int barrier;	  /* a barrier, not a clock */
	/* The shard whose clock region holds the counter at off: shard 0
	 * (flat), or the worker's group's (tree: its release word). */
	struct wrk_shard *sh;
};

/* Hot-path helpers (every operation) ------------------------------------- */

static inline uint64_t wrk_deadline(const struct rdps_ctx *ctx)
{
	return rdps_now_ns() + ctx->timeout_ns;
}

/* Header landing spots of pulls live in the small buffer after the clock
 * words. */
static inline struct ps_dir_hdr *wrk_hdrs(struct rdps_ctx *ctx)
{
	return (struct ps_dir_hdr *)((char *)ctx->small + 64);
}

/* Those of heartbeat probes come after: a probe in the middle of a pull
 * must not overwrite the header the pull read before its data (a newer
 * applied_clock would vouch for older data). */
static inline struct ps_dir_hdr *wrk_probe_hdr(struct rdps_ctx *ctx, unsigned s)
{
	return wrk_hdrs(ctx) + ctx->nshards + s;
}

/* The staging buffer of sub-slot k of sh, where its message is built. */
static inline struct ps_msg *wrk_slot_msg(const struct wrk_shard *sh,
					  unsigned k)
{
	return (struct ps_msg *)(sh->stage + (size_t)k * sh->slot_bytes);
}

/* The rdps_buf_alloc() buffer holding [p, p + len), or NULL. */
static inline const struct wrk_ubuf *wrk_ubuf_find(const struct rdps_ctx *ctx,
						   const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned i = 0; i < ctx->n_ubuf; i++) {
		const struct wrk_ubuf *u = &ctx->ubuf[i];
		uintptr_t b = (uintptr_t)u->addr;

		if (a >= b && len <= u->len && a - b <= u->len - len)
			return u;
	}
	return NULL;
}

/* Completions and waiting (wait.c) -------------------------------------- */

/* The error for shard sh's unusable connection (sh->err is set): sets the
 * text naming the shard and returns sh->err. */
int wrk_dead(struct rdps_ctx *ctx, struct wrk_shard *sh);

/* wrk_dead() for a shard found broken while g holds operations already
 * posted to others (they point at g, often on the caller's stack): waits
 * for them first (a wait that gives up marks the context broken), then
 * the error naming sh. */
int wrk_dead_grp(struct rdps_ctx *ctx, struct wrk_shard *sh, struct wrk_grp *g,
		 uint64_t deadline, const char *what);

/*
 * Move completions along: wait (up to the deadline) for at least one when
 * block, else only poll. Each completion updates its group (wr_id is the
 * group's address), its sub-slot (WRK_WR_PUSH) or its shard (immediates,
 * disconnects). Returns how many it took in, -ETIMEDOUT past the deadline
 * (no message: the caller names what it waited for), or another error.
 * Fails for good once a wait gave up with operations in flight
 * (ctx->broken).
 */
int wrk_progress(struct rdps_ctx *ctx, uint64_t deadline, int block);

/* The -ETIMEDOUT error for a wait on what that reached timeout_ms. */
int wrk_timeout(const struct rdps_ctx *ctx, const char *what);

/* A post said -EAGAIN: make room (for WRK_POST). Blocks at most 1 ms.
 * 0 to retry, -ETIMEDOUT past the deadline, or another error. */
int wrk_post_wait(struct rdps_ctx *ctx, uint64_t deadline);

/* The error for a post of what to sh that failed with ret (WRK_POST):
 * a timeout, a broken connection (marks sh), or the post's own error. */
int wrk_post_fail(struct rdps_ctx *ctx, struct wrk_shard *sh, int ret,
		  const char *what);

/* READ len bytes at raddr of key on shard sh into dst (memory of mr),
 * counted in g; on a broken shard or a failed post, waits for what g
 * already holds before the error (wrk_dead_grp, wrk_grp_post_fail). */
int wrk_grp_get(struct rdps_ctx *ctx, struct wrk_shard *sh, struct wrk_grp *g,
		void *dst, struct rdps_tp_mr *mr, uint64_t len, uint64_t raddr,
		struct rdps_tp_rkey *key, uint64_t deadline, const char *what);

/* wrk_post_fail() for a post that failed while g holds operations already
 * posted (they point at g, often on the caller's stack): waits for them
 * first, as wrk_dead_grp() does. */
int wrk_grp_post_fail(struct rdps_ctx *ctx, struct wrk_shard *sh,
		      struct wrk_grp *g, int ret, uint64_t deadline,
		      const char *what);

/*
 * Block until every operation of g completed; report the first failure
 * (naming what and the shard). Every 100 ms without a completion, look at
 * every shard's heartbeat: a stopped shard ends the wait with its name
 * (-EHOSTDOWN), not at the deadline. On an error with operations of g
 * still posted, drains them for up to 1 s (not from a stopped shard); if
 * some remain, the context is broken (ctx->broken), since they point at g.
 */
int wrk_grp_wait(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t deadline,
		 const char *what);

/* Back off between re-reads, attempt counting from 0: spin twice, yield
 * four times, then sleeps from 10 us doubling every second try up to 1 ms
 * (never sleeps in busy polling mode). From the first sleep (or its yield)
 * on, calls the wait check every RDPS_WAIT_CHECK_MS: -EINTR when it asks
 * to stop (the context is then broken with -EINTR), else 0. Call it only
 * with nothing of the caller's in flight. */
int wrk_backoff(struct rdps_ctx *ctx, unsigned attempt);

/* The wait check (rdps_ctx_set_wait_check) of a wait that sleeps: attempt
 * 6 arms its timer, a later attempt calls it when RDPS_WAIT_CHECK_MS has
 * passed. -EINTR when it asks to stop (the context is then broken), else
 * 0. Call it only with ctx->wait_check set and nothing of the caller's in
 * flight. */
int wrk_wait_check(struct rdps_ctx *ctx, unsigned attempt);

/* The error of a call on a broken context (ctx->broken set). */
int wrk_broken_err(const struct rdps_ctx *ctx);

/* Count one remote operation moving bytes (rdps_stats remote_ops and
 * remote_bytes): every post to a shard goes through here once it is in. */
static inline void wrk_count_op(struct rdps_ctx *ctx, uint64_t bytes)
{
	ctx->st.remote_ops++;
	ctx->st.remote_bytes += bytes;
}

/* Post with retry while the queues are full; a post that went in is
 * counted as one remote operation moving bytes. Nothing is posted on a
 * broken context. */
#define WRK_POST(ret, ctx, deadline, bytes, call)                 \
	do {                                                      \
		for (;;) {                                        \
			if ((ctx)->broken) {                      \
				(ret) = wrk_broken_err(ctx);      \
				break;                            \
			}                                         \
			(ret) = (call);                           \
			if ((ret) != -EAGAIN)                     \
				break;                            \
			(ret) = wrk_post_wait((ctx), (deadline)); \
			if ((ret) < 0)                            \
				break;                            \
		}                                                 \
		if (!(ret))                                       \
			wrk_count_op((ctx), (bytes));             \
	} while (0)

/* Local memory (mem.c) --------------------------------------------------- */

/* Allocate len bytes (rounded up to WRK_PAGE) of transport memory and
 * register them with access: *addr, *len_out, *mr, only on success. The
 * error names what the memory is for. */
int wrk_mem_get(struct rdps_ctx *ctx, size_t len, unsigned access, void **addr,
		size_t *len_out, struct rdps_tp_mr **mr, const char *what);

/* Deregister and free what wrk_mem_get() gave; clears the three. Accepts
 * NULLs. */
void wrk_mem_put(struct rdps_ctx *ctx, void **addr, size_t *len,
		 struct rdps_tp_mr **mr);

/* Make the pull landing area (ctx->bounce, registered) at least len bytes;
 * its content is lost when it grows. */
int wrk_bounce(struct rdps_ctx *ctx, size_t len);

/* Plain heap scratch of at least len bytes for one operation's
 * bookkeeping, owned by ctx (valid until the next call); NULL with the
 * error set when out of memory. */
void *wrk_scratch(struct rdps_ctx *ctx, size_t len);

/* Shard liveness (live.c) ------------------------------------------------- */

/* A shard's heartbeat as just read in its directory header h: 0 while it
 * moves, else -EHOSTDOWN for a shard whose count stood still for two of
 * its intervals (stopped or hung: its connection may look fine). */
int wrk_hb_check(struct rdps_ctx *ctx, struct wrk_shard *sh,
		 const struct ps_dir_hdr *h);

/*
 * Read shard sh's directory header into its probe landing spot
 * (wrk_probe_hdr): *h_out. A shard that leaves the read unanswered for two
 * heartbeats is stopped (over tcp its process serves reads): -EHOSTDOWN.
 * The read then stays posted (sh->hdr_grp), and the next call waits for it
 * instead of posting another.
 */
int wrk_hdr_read(struct rdps_ctx *ctx, struct wrk_shard *sh, uint64_t deadline,
		 struct ps_dir_hdr **h_out);

/* Read shard sh's header and check its heartbeat (both above). */
int wrk_hb_probe(struct rdps_ctx *ctx, struct wrk_shard *sh, uint64_t deadline);

/* wrk_hb_probe() every shard in order; the first error. */
int wrk_probe_all(struct rdps_ctx *ctx, uint64_t deadline);

/* Sub-slots (slot.c) ------------------------------------------------------ */

/* Wait for a free sub-slot of sh whose staging buffer is idle: *k_out,
 * and *msg_out its staging buffer (wrk_slot_msg). The caller stages its
 * message there and must then send it (wrk_slot_send). Checks sh's
 * heartbeat while waiting. */
int wrk_slot_get(struct rdps_ctx *ctx, struct wrk_shard *sh, uint64_t deadline,
		 unsigned *k_out, struct ps_msg **msg_out);

/* Send the message staged in sub-slot k (header + payload, len bytes) with
 * immediate kind; the slot is in flight until the shard's credit or NACK. */
int wrk_slot_send(struct rdps_ctx *ctx, struct wrk_shard *sh, unsigned k,
		  uint32_t kind, size_t len, uint64_t deadline);

/* Fill the header of a message staged in a sub-slot: kind, flags, table
 * index, count, the worker's clock, payload bytes; the rest zero. */
void wrk_msg_head(struct ps_msg *m, uint32_t kind, uint32_t flags,
		  uint32_t table, uint64_t count, uint64_t clock,
		  uint64_t bytes);

/* Wait until every message sent to the shards in mask (NULL: all) got its
 * reply; the first NACK becomes the return value (each shard's is cleared,
 * naming what). */
int wrk_slots_drain(struct rdps_ctx *ctx, const uint8_t *mask,
		    uint64_t deadline, const char *what);

/* Tables (table.c) -------------------------------------------------------- */

/* [start, start+count) must lie in table t: -ERANGE naming what if not. */
int wrk_check_range(const struct rdps_table *t, uint64_t start, uint64_t count,
		    const char *what);

/* Every index idx[0..n) must lie in table t: -ERANGE naming what, the
 * first bad index and its entry if not. */
int wrk_check_idx(const struct rdps_table *t, const uint64_t *idx, size_t n,
		  const char *what);

/* Pulls (pull.c) ----------------------------------------------------------- */

/* The applied clock a pull at this worker's clock needs from a shard's
 * directory header (BSP, A-BSP: the clock; SSP, ASP: 0). */
uint64_t wrk_need(const struct rdps_ctx *ctx);

/* Embedding tables (emb_table.c) ----------------------------------------- */

/* Free every embedding table handle of ctx (rdps_ctx_destroy). */
void wrk_emb_free_all(struct rdps_ctx *ctx);

/* BSP, A-BSP: wait until shard s's header shows this worker's clock
 * applied (SSP, ASP: at once). what names the caller in errors. */
int wrk_emb_wait_applied(struct rdps_emb *e, unsigned s, uint64_t deadline,
			 const char *what);

/* Read shard s's whole index (rows 0) or row region (rows 1) of e into
 * dst (len bytes; -ENOSPC if too small): *len_out bytes, once the shard
 * applied this worker's clock (wrk_emb_wait_applied: a barrier after the
 * last clock does not wait for the shards' apply). For tests that
 * compare layouts (BSP identity) and for diagnostics; blocks. */
int wrk_emb_read_raw(struct rdps_emb *e, unsigned s, int rows, void *dst,
		     size_t len, size_t *len_out);

/* What shard s's CPU did, as it publishes it (ps_proto.h, struct
 * ps_dir_stats): messages handled, its pid and loop thread's tid. One
 * READ of its directory; blocks. For benchmarks and tests that show a
 * pull costs the shard's CPU nothing. */
struct wrk_shard_stats {
	uint64_t handled;
	uint32_t pid, tid;
};
int wrk_shard_stats(struct rdps_ctx *ctx, unsigned s,
		    struct wrk_shard_stats *out);

/* For tests: remember that key's row is row (< capacity) on its shard,
 * as a pull that raced a refused push and saw its slot would have (the
 * only way a cache holds a row that was never the key's for good). A
 * no-op when e has no location cache. */
void wrk_emb_cache_set(struct rdps_emb *e, uint64_t key, uint32_t row);

/*
 * The two-sided lookup (emb_lookup.c, ps_proto.h PS_F_LOOKUP): the rows of
 * keys[0..n) into dst as rdps_emb_pull() gives them, but each shard's CPU
 * looks the keys up and writes the rows back: one message and its credit
 * per shard and slot-full of keys. A baseline for rdps-psbench only (no
 * freshness check, no torn-read check: the shard's CPU copies whole
 * rows). Blocks; 0 or -errno with the error set.
 */
int wrk_emb_lookup(struct rdps_emb *e, const uint64_t *keys, size_t n,
		   void *dst);

/* Clock table (clock.c) --------------------------------------------------- */

/* Post one 8-byte operation on the clock table of shard 0 at off into g
 * (g->left counts it): fetch-add of add, or a read when add is 0. The
 * result lands in *res (in the small buffer). Does not wait. */
int wrk_clock_post(struct rdps_ctx *ctx, struct wrk_grp *g, uint64_t off,
		   uint64_t add, uint64_t *res, uint64_t deadline,
		   const char *what);

/* One compare-swap (cmp -> swp) at off of shard 0's clock table, waited
 * for; the old value lands in *res (in the small buffer). */
int wrk_clock_swap(struct rdps_ctx *ctx, uint64_t off, uint64_t cmp,
		   uint64_t swp, uint64_t *res, uint64_t deadline,
		   const char *what);

/* The same on shard sh's clock region. */
int wrk_word_post(struct rdps_ctx *ctx, struct wrk_shard *sh, struct wrk_grp *g,
		  uint64_t off, uint64_t add, uint64_t *res, uint64_t deadline,
		  const char *what);

/*
 * At the end of rdps_ctx_create (the job's start clock known): settle the
 * clock's fan-in with the other workers (a compare-swap on shard 0's
 * fanin word: -EINVAL naming both values when another worker uses
 * another; cfg_fanin is what this one was given) and find this worker's
 * group node. Blocks for one round trip.
 */
int wrk_clock_join(struct rdps_ctx *ctx, int cfg_fanin);

/* For tests: read n 8-byte words at off of shard s's clock region into
 * out (n <= 64). Blocks. */
int wrk_clock_words(struct rdps_ctx *ctx, unsigned s, uint64_t off, unsigned n,
		    uint64_t *out);

/* Lost workers (loss.c) ---------------------------------------------------- */

/* The -EPIPE error for a wait that a lost worker can never end, from shard
 * s's header h; 0 while the shard has lost nobody. */
int wrk_lost_error(const struct rdps_ctx *ctx, unsigned s,
		   const struct ps_dir_hdr *h, const char *what);

/*
 * While a wait on round rd drags on (attempt counts its re-reads), ask
 * shard 0 (every worker's peer), every 16th attempt, whether it lost a
 * worker the wait depends on: an error naming it, or, on_worker_loss
 * continue, make up for it (one compare-swap raising the counter from
 * seen, the value as last read, to rd->goal). 0 to keep waiting.
 */
int wrk_lost_check(struct rdps_ctx *ctx, unsigned attempt, uint64_t deadline,
		   const struct wrk_round *rd, uint64_t seen);

/*
 * The time limit of a wait on the other workers (stall.c): it expires
 * only once none of them ticked a clock or arrived at a barrier for a
 * whole timeout, so a slow but live straggler never fails the job (a dead
 * or stopped one is found by wrk_lost_check). A wait zeroes one struct
 * wrk_stall and calls wrk_stall_check() at each re-read (attempt counts
 * them): 0 to keep waiting (*deadline may have moved), 1 when nobody
 * moved for a whole timeout (the caller says what timed out), or an error.
 */
struct wrk_stall {
	uint64_t sum; /* shard 0's arrive[] and barrier counters, summed */
	int have;
};

int wrk_stall_check(struct rdps_ctx *ctx, struct wrk_stall *st,
		    unsigned attempt, uint64_t *deadline);

#endif /* RDPS_WORKER_H */
