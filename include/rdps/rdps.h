/* SPDX-License-Identifier: MIT */
/*
 * rdps.h - public API of rdps, a parameter server whose data path is
 * one-sided RDMA. Users of this header need no rdma-core headers.
 *
 * Conventions: functions return 0 (or a count >= 0) on success and a
 * negative errno on failure; out-parameters (named *_out) are set only on
 * success. After a failure, rdps_errmsg() gives a one-line explanation of
 * what was wrong and how to fix it, for the calling thread.
 */
#ifndef RDPS_RDPS_H
#define RDPS_RDPS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RDPS_VERSION_MAJOR 0
#define RDPS_VERSION_MINOR 1
#define RDPS_VERSION_PATCH 0
#define RDPS_VERSION_STRING "0.1.0"

/* Version of the library actually linked. */
const char *rdps_version(void);

/*
 * The last error explanation recorded on this thread, or "" if none. The
 * string stays valid until the next rdps call on this thread.
 */
const char *rdps_errmsg(void);

/* Log levels; the level comes from RDPS_LOG_LEVEL (name or number) or
 * rdps_log_set_level(). Logs go to stderr, never to stdout. */
enum rdps_log_level {
	RDPS_LOG_ERROR = 0,
	RDPS_LOG_WARN,
	RDPS_LOG_INFO,
	RDPS_LOG_DEBUG,
	RDPS_LOG_TRACE,
};

void rdps_log_set_level(enum rdps_log_level level);
/* Parse "error|warn|info|debug|trace" or a digit; -EINVAL if neither. */
int rdps_log_parse_level(const char *s, enum rdps_log_level *level_out);

/* The parameter server ------------------------------------------------
 *
 * A job has S server shards (rdps-server processes) and W workers. Each
 * worker makes one context; tables are dense arrays of float32 or float64
 * range-partitioned over the shards. Workers pull with one-sided reads and
 * push deltas with one-sided writes; rdps_clock() ends an iteration and
 * blocks as the consistency model requires.
 *
 * Threads: a context and its tables are used from one thread at a time.
 */

struct rdps_ctx;
struct rdps_table;

enum rdps_model {
	RDPS_MODEL_BSP = 0, /* bulk synchronous: slack 0, deterministic */
	RDPS_MODEL_SSP,	    /* stale synchronous: bounded slack */
	RDPS_MODEL_ASP,	    /* asynchronous: no clock checks */
	RDPS_MODEL_ABSP,    /* aggressive BSP: BSP clocks, rounds can be cut
			     * (rdps_cut) */
};

enum rdps_dtype {
	RDPS_DTYPE_F32 = 0,
	RDPS_DTYPE_F64,
};

enum rdps_rule {
	RDPS_RULE_SUM = 0, /* param += delta */
	RDPS_RULE_SGD,	   /* param -= lr * delta (delta is a gradient) */
	RDPS_RULE_ADAGRAD, /* param -= lr * g / sqrt(eps + sum g^2) */
	/* param = value (overwrite). BSP: a clock's puts land at its end in
	 * worker order, so the highest-ranked writer of an element wins. */
	RDPS_RULE_PUT,
	/* Keep-if-better: a push of [i, i + n) is a block whose first value
	 * is its key; it replaces the n values only if its key is at most
	 * the held param[i] (lower is better; NaN never wins), else it is
	 * dropped whole. Tables start at 0, so keys are measured from the
	 * starting point (e.g. objective - initial objective). A sparse pair
	 * is a block of one. The decision is a shard's, per message: a
	 * block must neither span shards (open such a table on a one-shard
	 * job) nor exceed one push chunk (a 1 MiB sub-slot). BSP: a
	 * worker's pushes of one clock form one block, its touched range,
	 * tried at the clock's end in worker order. */
	RDPS_RULE_PUT_IF_BETTER,
};

#define RDPS_TABLE_NAME_MAX 31

/* How a worker waits for completions. */
enum rdps_poll_mode {
	RDPS_POLL_BUSY = 0, /* spin: lowest latency, a whole core per worker */
	RDPS_POLL_ADAPTIVE, /* spin a little, then sleep (default) */
	RDPS_POLL_EVENT,    /* sleep on the completion channel at once */
};

/* What a wait does once a worker of the job is lost (its process died, or
 * it stopped: no pulse for two heartbeats). */
enum rdps_on_loss {
	RDPS_LOSS_FAIL = 0, /* fail, naming it (default) */
	/* SSP and ASP only: go on without it. Its arrivals are made up
	 * (ps_proto.h), its pushes are in whole or not at all. Costs one
	 * more fetch-add per barrier, and per clock under SSP. */
	RDPS_LOSS_CONTINUE = 1,
};

struct rdps_config {
	/* Shard URLs, comma-separated, in shard order:
	 * "shm://job-s0,shm://job-s1" or "tcp://h1:7000,tcp://h2:7000". */
	const char *shards;
	int rank;    /* this worker, 0 .. workers-1 */
	int workers; /* W */
	enum rdps_model model;
	unsigned slack; /* SSP: clocks a worker may run ahead */
	uint64_t token; /* job token, the same on servers and workers */
	enum rdps_poll_mode poll_mode; /* default RDPS_POLL_ADAPTIVE */
	/* Connect and wait limit; 0: 30000. A wait on the other workers
	 * (rdps_clock, rdps_barrier) fails with -ETIMEDOUT only once no
	 * worker of the job ticked a clock or arrived at a barrier for
	 * timeout_ms: a slow straggler that still ticks never makes it
	 * expire, however far behind; a lost one is named (on_worker_loss). */
	int timeout_ms;
	enum rdps_on_loss on_worker_loss; /* default RDPS_LOSS_FAIL */
	/*
	 * How the clock counts arrivals (the same on every worker of a job,
	 * or the later ones refuse to start). 0: automatic, the flat counter
	 * up to 32 workers, above that a tree of groups of ceil(sqrt(W));
	 * 1: the flat counter (every worker's fetch-add on one word of shard
	 * 0); G >= 2 (at most 4096): a tree, groups of G workers each count
	 * on a word of their own shard and the last of a group adds to the
	 * root, so no word takes more than max(G, W / G) fetch-adds a clock
	 * and a waiter reads only its group's word. Under on_worker_loss
	 * continue the clock stays flat (lost workers are made up there).
	 */
	int clock_fanin;
};

/* Fill cfg with defaults (model BSP, slack 0, adaptive polling, 30 s). */
void rdps_config_default(struct rdps_config *cfg);

/*
 * Override fields of cfg from the environment, leaving the others alone:
 * rank/workers from RDPS_RANK/RDPS_WORKERS, else SLURM_PROCID/SLURM_NTASKS,
 * else OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE; shards from RDPS_SHARDS
 * (cfg->shards then points into the environment); model from RDPS_MODEL;
 * slack from RDPS_SLACK; token from RDPS_TOKEN (decimal or 0x hex);
 * on_worker_loss from RDPS_ON_WORKER_LOSS (fail or continue); clock_fanin
 * from RDPS_CLOCK_FANIN (0 .. 4096).
 * -EINVAL with rdps_errmsg() naming the variable if a value is malformed;
 * cfg is changed only on success.
 */
int rdps_config_from_env(struct rdps_config *cfg);

/* Connect to every shard. -EINVAL (bad config, with rdps_errmsg()),
 * -ECONNREFUSED, -ETIMEDOUT, -EACCES (token), -EPROTO. */
int rdps_ctx_create(const struct rdps_config *cfg, struct rdps_ctx **ctx_out);
/* Close the connections and free, including every buffer of
 * rdps_buf_alloc() not freed yet; NULL is fine. */
void rdps_ctx_destroy(struct rdps_ctx *ctx);

/*
 * A check that lets a blocking wait be interrupted (a Ctrl-C, a shutdown
 * flag): check(arg) is called, on the thread of the waiting call, while
 * rdps_clock(), rdps_barrier(), rdps_pull() or rdps_emb_pull() waits for
 * the other workers, that is while it re-reads a clock counter, the
 * barrier or the shards' applied clock and backs off between reads. The
 * first call comes RDPS_WAIT_CHECK_MS after the wait started to sleep
 * (to yield, under busy polling), then one every RDPS_WAIT_CHECK_MS: a
 * call that does not wait never calls it. Waits for operations already
 * posted (a read, a credit) are not checked: the shards answer those,
 * and a stopped shard is detected by its heartbeat.
 *
 * A non-zero return ends the call with -EINTR (rdps_errmsg() says it was
 * interrupted). The context is then interrupted for good: what the call
 * had done stays done (an interrupted rdps_clock() counted its tick,
 * rdps_clock_now() includes it; an interrupted rdps_barrier() counted its
 * arrival), but every later call fails with -EINTR before it sends
 * anything, except rdps_clock_now(), rdps_ctx_stats() and
 * rdps_ctx_destroy(), which leaves as cleanly as after a finished call
 * (the shards count the worker as departed, not dead). Nothing is left in
 * flight.
 *
 * check NULL removes it. Set it before the waits it should cover, from
 * the thread that uses the context. Returns 0, or -EINVAL for a NULL ctx.
 */
#define RDPS_WAIT_CHECK_MS 2
int rdps_ctx_set_wait_check(struct rdps_ctx *ctx, int (*check)(void *arg),
			    void *arg);

/*
 * A buffer of bytes (rounded up to whole pages) that the context's
 * transport can move data into directly: allocated like the transport's
 * own memory and registered once for local access (verbs: on the NIC's
 * NUMA node). Page-aligned and zeroed. NULL with rdps_errmsg() on failure.
 *
 * A dense rdps_pull() whose [dst, dst + count * element size) lies inside
 * one such buffer reads every shard's range straight into dst and skips
 * the staging copy; pulls into other memory go through a staging buffer
 * and a memcpy. Sparse pulls and pushes always stage (a push's message
 * header must precede its payload), so the buffer is then plain memory.
 * On a failed zero-copy pull dst may hold partial data.
 *
 * Each call registers memory, which is costly on verbs: allocate once
 * and reuse. A buffer serves only the context it came from.
 */
void *rdps_buf_alloc(struct rdps_ctx *ctx, size_t bytes);
/* Free a buffer of rdps_buf_alloc() on the same context; NULL is fine. */
void rdps_buf_free(struct rdps_ctx *ctx, void *buf);

/*
 * Create the table if it does not exist, else open it and check that n,
 * dtype and rule match (-EINVAL naming the difference). lr is the learning
 * rate of SGD and Adagrad (ignored for SUM). Every worker may call it; all
 * get the same table. Initial values are 0.
 */
int rdps_table_open(struct rdps_ctx *ctx, const char *name, uint64_t n,
		    enum rdps_dtype dtype, enum rdps_rule rule, double lr,
		    struct rdps_table **table_out);

/* Dense pull of [start, start+count) into dst (count elements of the
 * table's dtype); waits until the shards hold what the model requires for
 * this worker's clock. -ERANGE out of range. */
int rdps_pull(struct rdps_table *t, uint64_t start, uint64_t count, void *dst);
/* Sparse pull: dst[i] = param[idx[i]]; reads only the touched pages. */
int rdps_pull_sparse(struct rdps_table *t, const uint64_t *idx, size_t n,
		     void *dst);
/* Dense push of a delta for [start, start+count). Returns once the delta
 * is handed to the shards (it is applied by the shard; never lost). */
int rdps_push(struct rdps_table *t, uint64_t start, uint64_t count,
	      const void *delta);
/* Sparse push: delta[i] for param[idx[i]]. */
int rdps_push_sparse(struct rdps_table *t, const uint64_t *idx, size_t n,
		     const void *delta);

/* End this worker's iteration: flush, fetch-add the clock, then block until
 * the model lets the next iteration start (BSP: everyone finished this
 * one; SSP: nobody is more than slack behind; ASP: never blocks). */
int rdps_clock(struct rdps_ctx *ctx);

/* A-BSP (RDPS_MODEL_ABSP; -EINVAL under other models). Clocks close as in
 * BSP, and each round (this worker's clock c) has a cut word on shard 0.
 *
 * rdps_cut(): this worker finished its partition of round c: raise the cut
 * with one compare-swap. Returns 1 if this call cut the round, 0 if another
 * worker already had, or a negative errno.
 *
 * rdps_cut_poll(): has round c been cut? Never waits: returns 1 or 0 as
 * the last completed 8-byte read of the cut word saw it, and keeps one read
 * in flight (posted here, reaped on a later call), so calling it between
 * mini-batches costs no round trip. Negative errno on failure. A worker
 * that sees the cut pushes what it has processed so far and calls
 * rdps_clock(); the cut of round c never carries over to round c + 1. */
int rdps_cut(struct rdps_ctx *ctx);
int rdps_cut_poll(struct rdps_ctx *ctx);

/* Block until every worker has called rdps_barrier() as often. */
int rdps_barrier(struct rdps_ctx *ctx);
/* Read this worker's clock (iterations completed; rdps_clock() is what
 * advances it). A BSP or A-BSP job whose shards resumed from checkpoints
 * (rdps-launch --resume) starts at their clock, not 0: start the iteration
 * loop at rdps_clock_now(). Never blocks, never fails; 0 for NULL. */
uint64_t rdps_clock_now(const struct rdps_ctx *ctx);

struct rdps_stats {
	uint64_t pulls, pushes, clocks;
	uint64_t bytes_pulled, bytes_pushed;
	uint64_t clock_wait_ns; /* time blocked in rdps_clock */
	uint64_t pull_wait_ns;	/* time waiting for fresh enough data */
	uint64_t cuts;		/* A-BSP: rounds this worker cut */
	/* on_worker_loss continue: rounds (clocks, barriers) this worker
	 * completed for lost workers. */
	uint64_t made_up;
	/* Embedding tables (rdps_emb_*): pulls and pushes, rows returned
	 * by pulls (found or initial), rows pushed (after duplicates of a
	 * call were summed), keys a pull found in no bucket (returned as
	 * their initial value), re-reads of a bucket or row caught while
	 * the shard wrote it, and the pulls' round trips (2 per pull with
	 * no re-read, 1 when no key is present or every key's place was
	 * in the location cache). Cache hits: keys whose rows a pull read
	 * straight from the place the cache held (rdps_emb_cfg.cache);
	 * stale: of those, rows found no longer the key's (the entry is
	 * dropped and the key looked up in the buckets, in the same pull). */
	uint64_t emb_pulls, emb_pushes;
	uint64_t emb_rows_pulled, emb_rows_pushed;
	uint64_t emb_misses, emb_torn_retries, emb_round_trips;
	uint64_t emb_cache_hits, emb_cache_stale;
	/* Transport operations this worker posted to the shards (reads,
	 * writes, writes with immediate, atomics), counted as they go in,
	 * and the bytes they move (8 per atomic; 0 for a clock's END): what
	 * its calls cost the network, for benchmarks (rdps-scale). */
	uint64_t remote_ops, remote_bytes;
};
void rdps_ctx_stats(const struct rdps_ctx *ctx, struct rdps_stats *out);

/* Embedding tables -----------------------------------------------------
 *
 * Rows of dim values addressed by arbitrary 64-bit keys (hashed feature
 * ids of click-through and recommendation models), for tables too sparse
 * and too large to index 0..n. A key's row lives on one shard (a hash of
 * the key); workers look rows up with one-sided reads only: a pull of n
 * keys costs two round trips whatever n (buckets, then rows), one when
 * the worker's location cache knows where every key's row lives, and no
 * work for the shard's CPU. A key never pushed reads as its initial value,
 * computed by the worker; a pull never inserts. Pushes insert unseen keys
 * and apply the rule on the shard. The consistency model is the
 * context's, as for dense tables (BSP: identical rows on every run and
 * transport). Shards write them to their checkpoints and resume them like
 * dense tables (--checkpoint-dir, --resume).
 */

struct rdps_emb;

enum rdps_emb_init {
	RDPS_EMB_INIT_ZERO = 0, /* every value 0 */
	RDPS_EMB_INIT_UNIFORM,	/* uniform in [-init_scale, init_scale) */
	RDPS_EMB_INIT_NORMAL,	/* normal, mean 0, deviation init_scale */
};

struct rdps_emb_cfg {
	unsigned dim; /* values per row, 1 .. 4096 */
	enum rdps_dtype dtype;
	enum rdps_rule rule; /* SUM, SGD or ADAGRAD (per-row state) */
	double lr;	     /* SGD and Adagrad */
	uint64_t capacity;   /* rows each shard can hold, >= 1 */
	enum rdps_emb_init init;
	double init_scale;
	/* The initial row of a key is a function of (seed, key) only,
	 * the same on every worker and shard. */
	uint64_t seed;
	/*
	 * This worker's location cache (its own: not part of the table,
	 * workers may differ): 1 on, 0 off. A pull remembers on which row
	 * of its shard each key it found lives and reads a remembered
	 * key's row directly, one round trip instead of two (buckets, then
	 * rows). Sound because a row names its key and is checked as read:
	 * a row that stopped being the key's (its insert undone, the row
	 * reused) is seen as such, the entry dropped and the key looked up
	 * again in the same pull. Keys found absent are not remembered.
	 * Entries: the power of two >= capacity x shards (every row the
	 * table holds), at most RDPS_EMB_CACHE_MAX (16 B each: 4 MiB), in
	 * sets of 4, two candidate sets a key; a key evicts another only
	 * when both are full. The environment variable
	 * RDPS_EMB_CACHE (0 or 1), when set, overrides this field, so a
	 * program can be measured with and without it unchanged.
	 */
	int cache;
};

#define RDPS_EMB_CACHE_MAX (1u << 18) /* entries of a location cache */

/* dim 16, f32, SGD, lr 0.01, capacity 65536, init zero, scale 0.01, seed 1,
 * location cache on. */
void rdps_emb_cfg_default(struct rdps_emb_cfg *cfg);

/*
 * Create the embedding table name (1 .. RDPS_TABLE_NAME_MAX characters,
 * its own name space, apart from dense tables) on every shard, or open it
 * and check that every field of cfg matches (-EINVAL naming the
 * difference). Each shard reserves capacity rows plus an index of about
 * 64 B per row of capacity. -EINVAL for a bad cfg, -ENOSPC when the
 * shards hold their maximum of embedding tables, or for a malformed
 * RDPS_EMB_CACHE. The handle lives until rdps_ctx_destroy().
 */
int rdps_emb_open(struct rdps_ctx *ctx, const char *name,
		  const struct rdps_emb_cfg *cfg, struct rdps_emb **emb_out);

/*
 * Pull the rows of keys[0..n) into dst: n * dim values of the table's
 * dtype, row i at dst + i * dim. Keys may repeat and come in any order.
 * Waits, as rdps_pull() does, until the shards hold what the model
 * requires for this worker's clock. A row caught while the shard rewrote
 * it is read again; a torn row is never returned. dst is plain memory:
 * rows land in a staging buffer and are checked there before the copy
 * (landing in an rdps_buf_alloc() buffer would split each row's READ in
 * two, head and values, and a pull pays per READ, not per byte).
 * -EPROTO when a shard's index or row is corrupt (its bytes never check
 * out), with rdps_errmsg() naming the shard and the key.
 */
int rdps_emb_pull(struct rdps_emb *emb, const uint64_t *keys, size_t n,
		  void *dst);

/*
 * Push gradient rows: grads + i * dim (dim values of the dtype) for
 * keys[i]. Rows of the same key within one call are summed first, in
 * call order. The shards insert unseen keys (at their initial value) and
 * apply the rule to each row. Returns once every shard took its rows in.
 * -ENOSPC when a shard's part of the table is full, naming the table and
 * its capacity (nothing of that shard's message is applied).
 */
int rdps_emb_push(struct rdps_emb *emb, const uint64_t *keys, size_t n,
		  const void *grads);

/*
 * Every row of the table, read one-sided (no work for the shards' CPU):
 * fn(arg, key, vals) once for each key the shards hold, vals its dim
 * values of the table's dtype. Shard by shard (0 .. S-1), each in the
 * order of its index, not of keys: sort them for a deterministic file.
 * Waits first, as rdps_pull() does, until each shard holds what the model
 * requires for this worker's clock (BSP: every push of the clocks before
 * it). Each row is checked as rdps_emb_pull() checks it (a torn slot or
 * row is read again); a row is as the shard held it when read, so for a
 * view of the whole table at one clock, export when no worker pushes
 * (after rdps_barrier() at the end of a job). A key whose insert a shard
 * undid meanwhile (a refused push, SSP and ASP) may be left out.
 *
 * vals is valid only during the call, and fn must not call rdps on the
 * same context. A non-zero return from fn ends the export and is
 * returned as it is. Blocks; 0, fn's return value, or -errno: -EINVAL
 * for a NULL emb or fn, -EPROTO when a shard's index or a row is corrupt
 * (rdps_errmsg() names the shard), the errors of a pull. Memory: about
 * 64 KiB plus 1 MiB of rows (or one row, if larger) of staging.
 */
int rdps_emb_export(struct rdps_emb *emb,
		    int (*fn)(void *arg, uint64_t key, const void *vals),
		    void *arg);

/* The table's dim; 0 for NULL. */
unsigned rdps_emb_dim(const struct rdps_emb *emb);

#ifdef __cplusplus
}
#endif
#endif /* RDPS_RDPS_H */
