/* SPDX-License-Identifier: MIT */
/*
 * ps_proto.h - the parameter server's memory layout and protocol, shared by
 * the shard (src/server/) and the worker client (src/worker/). Everything a
 * peer reads or writes remotely is defined here: fixed-size, big-endian fields,
 * sizes checked by _Static_assert. See DESIGN.md for the why.
 *
 * A job: S shards (rdps-server), W workers. Shard 0 also hosts the clock
 * table and the clock tree's root; every shard hosts some of the tree's
 * groups. Every worker connects to every shard (one endpoint each).
 *
 * Connection
 *   listener private data (every shard):  struct ps_lhello (32 B)
 *   connect private data (every worker):  struct ps_whello (32 B)
 *   After accept the shard writes a struct ps_welcome into the worker's
 *   reply region (key from ps_whello) with put_imm, imm PS_IMM(WELCOME,
 *   status). A status other than 0 (wrong rank/worker count/duplicate
 *   rank) is an errno; the shard then closes the endpoint.
 *
 * Shard regions
 *   directory (REMOTE_READ, everyone): struct ps_dir_hdr, then
 *     PS_MAX_TABLES struct ps_table_desc.
 *   params, one per table (REMOTE_READ, everyone): elements [lo, hi) of
 *     the table, dtype-sized, 64-byte aligned.
 *   slots, one per worker (REMOTE_WRITE, that worker only; its key only in
 *     that worker's welcome): PS_NSLOTS sub-slots of slot_bytes each. A
 *     sub-slot holds a struct ps_msg header and its payload.
 *   clock region, every shard (REMOTE_ATOMIC|REMOTE_READ, everyone):
 *     struct ps_clock_table and the wclock[]/wbar[] words (used on shard
 *     0 only), then struct ps_clock_node's of the clock tree
 *     (ps_clock_region_len); no CPU writes it after creation but shard
 *     0's on resume (its flat table only).
 *
 * Worker regions
 *   reply (REMOTE_WRITE|REMOTE_READ, the shards): struct ps_welcome per
 *     shard, at offset shard * sizeof(struct ps_welcome), then the pulse
 *     (ps_pulse_off): a u64 that a thread of the worker bumps every
 *     PS_PULSE_MS. Each shard reads it every heartbeat interval (its
 *     heartbeat_ms: rdps-server --heartbeat-ms, PS_HEARTBEAT_MS by
 *     default, 0 = no liveness checks); a worker whose pulse stands
 *     still (or whose read goes unanswered) for two intervals is stopped
 *     or hung: the shard counts it dead.
 *
 * Messages worker -> shard: the worker writes a ps_msg (+ payload) into a
 * free sub-slot k of its slot region and sends it with ONE put_imm, imm
 * PS_IMM(kind, k); or (PS_F_SPLIT, a push from rdps_buf_alloc() memory)
 * the payload with a put and then the header alone with the put_imm, on
 * the same endpoint, so the payload is in place before the immediate. The shard
 * handles it on the RECV_IMM completion, then returns the sub-slot with a
 * zero-length put_imm: PS_IMM(PS_CREDIT, k) when it was applied,
 * PS_IMM(PS_NACK, errno) when it was refused (bad table, range or size: the
 * shard logs why and keeps serving everyone). A shard handles one worker's
 * messages in order, so either reply frees that worker's oldest outstanding
 * sub-slot. Kinds: PS_PUSH   ps_msg.table, .start, .count, .clock; payload
 * count values (dense) or count pairs {be64 index; value} (PS_F_SPARSE).
 *   PS_CREATE ps_msg.table unused; payload struct ps_create. The shard
 *             creates the table if absent (or checks it matches) and
 *             publishes its ps_table_desc before the CREDIT.
 *   PS_BYE    zero-length put_imm, imm PS_IMM(PS_BYE, 0): the worker is
 *             done and closes (rdps_ctx_destroy). A worker whose
 *             connection ends without one, or whose pulse stops, is
 *             counted dead (dir header dead_count, gone_map), which ends
 *             the waits of the others, or (on_worker_loss continue, SSP
 *             and ASP) lets them go on without it: see "Lost workers".
 *   PS_END    zero-length put_imm, imm PS_IMM(PS_END, clock & PS_ARG_MASK):
 *             this worker finished that clock. No sub-slot, no credit
 *             (its completion at the worker means the shard's transport
 *             has queued it).
 *   PS_WAIT   zero-length put_imm to the shard holding the word waited on
 *             (flat counter: shard 0), imm PS_IMM(PS_WAIT, arg): "wake me
 *             when clock arg is complete" (arg = clock & PS_WAIT_MASK), or
 *             barrier arg (PS_WAIT_BARRIER | barrier & PS_WAIT_MASK,
 *             barriers counted from 1). No sub-slot, no credit: the
 *             answer is one PS_RELEASE. See "Waking waiters".
 *   PS_DONE   zero-length put_imm to the same shard, imm PS_IMM(PS_DONE,
 *             arg as PS_WAIT's): "my fetch-add completed clock arg" (or
 *             my make-up swap did). Fire-and-forget like PS_END.
 * Shard -> worker, besides PS_CREDIT and PS_NACK:
 *   PS_RELEASE zero-length put_imm, imm PS_IMM(PS_RELEASE, arg of the
 *             PS_WAIT it answers): the round waited for is complete by
 *             the shard's clock words; with PS_RELEASE_WAKE, a wake-up to
 *             look again (a worker gone, the shard stopping).
 *
 * Waking waiters (flat counter only; the clock tree's waiters read)
 *   A waiter whose tick showed its round incomplete (the fetch-add's
 *   count, or SSP's slack read) sends one PS_WAIT and sleeps on its
 *   completion queue (where a READ costs the shard no CPU, verbs, after
 *   a bounded read phase: at most a constant number of re-reads, see
 *   worker/clock.c WRK_CLOCK_READS, which may find the round
 *   complete). Under BSP and A-BSP on transports without that read
 *   phase, a clock's PS_END to shard 0 of a flat counter (W > 1) is
 *   also its worker's PS_WAIT for that clock (server/clock.c
 *   srv_end_waits): the waiter sends no PS_WAIT of its own, only one to
 *   register again after a wake-up. A worker's PS_DONE drops its own
 *   registration; an END handled once its clock is complete is answered
 *   at once, as a PS_WAIT would be (for the completer, whose END may be
 *   handled after its fetch-add, a release nobody waits for). A worker
 *   whose fetch-add completed a clock or barrier (ps_clock_last) sends
 *   one PS_DONE when anybody may wait (W > 1; not ASP's clocks). The
 *   shard's CPU takes neither as the truth, only as a trigger: it
 *   evaluates completion from its own clock words (ps_clock_frontier:
 *   the lowest clock not complete; barrier / W + 1 likewise), both
 *   when a PS_WAIT comes (answered at once if complete: so a PS_DONE
 *   handled before the PS_WAIT, on another endpoint, loses nothing, as
 *   the fetch-add it reports had completed before it was sent) and when
 *   a PS_DONE comes (every registered waiter whose round is now
 *   complete is answered). A worker has at most one registration (a new
 *   PS_WAIT or END replaces it), so a PS_WAIT costs O(1) and a PS_DONE
 *   O(waiters). A PS_DONE for a round not complete, or a PS_WAIT far
 *   ahead (the 26-bit argument is unwrapped to the value nearest the
 *   frontier, ps_wait_unwrap), releases nobody early. A worker counted
 *   gone (dead or left) and a shard that stops wake every registered
 *   waiter (PS_RELEASE_WAKE): it reads the word and runs its loss checks
 *   at once. A release without it needs no read: the shard's CPU read
 *   the words, the truth, as the waiter's READ would have (one round trip
 *   less on the waiter's critical path). A waiter also reads the word on
 *   its own every WRK_WAIT_SAFETY_NS (src/worker/clock.c) for its loss,
 *   stall and timeout checks. So a waiting tick costs its fetch-add, ENDs
 *   and one PS_WAIT, the completing tick its fetch-add, ENDs and one
 *   PS_DONE, whatever W and the wait. Per clock, shard 0 handles one
 *   PS_DONE and a PS_WAIT per waiter, and sends a PS_RELEASE per waiter;
 *   a waiter's critical path is: the completer's fetch-add, its PS_DONE,
 *   the shard's loop, the PS_RELEASE.
 *
 * Clocks and consistency (a worker's clock t = iterations it completed)
 *   A push returns only after its shard took it in (SSP/ASP: applied;
 *   BSP/A-BSP: copied into the pending delta), so once the arrival
 *   counter of clock c is complete every update of clocks <= c is in.
 *   rdps_clock() at clock t is one round trip: (1) BSP/A-BSP only:
 *   PS_END(t) to every shard, (2) FETCH_ADD(arrive[t mod K], 1) on shard
 *   0 (with the clock tree: on its group's word, see "Clock tree" below)
 *   and, under SSP, the first READ of (4) are posted together and
 *   waited for together. A faster worker may therefore see clock t
 *   complete and send its next PUSH before our END(t) reached a shard:
 *   see the hold-back below. (3) t = t + 1. (4) BSP/A-BSP/SSP: before
 *   going on, wait until ps_clock_done(c) for c = t - 1 - slack
 *   (nothing to wait for while t - 1 < slack; BSP skips it when the
 *   fetch-add made this worker the last): the flat counter with one
 *   PS_WAIT, answered by a PS_RELEASE (see "Waking waiters"), the clock
 *   tree by re-reading its release word; ASP never waits.
 *   Shard side: BSP and A-BSP copy each PUSH of clock c into that worker's
 *   pending delta (credit at once) and, when the W-th END(c) arrives,
 *   apply the pending deltas in worker order 0..W-1 with the table's
 *   rule, then publish applied_clock = c + 1: deterministic results. A
 *   shard's completion queue is ordered per endpoint only (shm polls its
 *   rings in turn), so a PUSH of a clock > applied_clock from a worker
 *   whose ENDs are all in may come before another worker's END(c): the
 *   shard holds it, and that worker's later messages behind it, until
 *   applied_clock moves. Any other clock mismatch is refused (NACK
 *   EPROTO). SSP and ASP apply a PUSH on arrival and get no END (an END
 *   that comes anyway moves applied_clock to the min over workers).
 *   A pull at clock t posts READ(dir header) then READ(params range) on
 *   the same endpoint (executed in order) and, under BSP/A-BSP, accepts
 *   the data only if applied_clock >= t; otherwise it reads again. SSP
 *   and ASP accept any: SSP's bound comes from (4) and the rule above.
 *
 * Clock tree (rdps_config.clock_fanin: G >= 2, or automatic above
 * PS_FANIN_FLAT_MAX workers; never under on_worker_loss continue)
 *   With the flat counter every worker's fetch-add hits arrive[t mod K]
 *   on shard 0 and every waiter re-reads it: W atomics a clock on one
 *   address (a NIC serves ~2.5 M a second on one address, so 0.4 ms a
 *   clock at W = 1024) plus the waiters' reads on the same line. The
 *   tree splits the workers into ceil(W/G) groups of G consecutive ranks
 *   (the last one smaller). Group g's node (struct ps_clock_node) is
 *   node 1 + g / S of shard g mod S; the root is node 0 of shard 0. A
 *   tick at clock t, rounds counted from the job's start clock c0 (0, or
 *   the clock a BSP job resumed at: the nodes are never reset):
 *   (a) FETCH_ADD(group.arrive[(t - c0) mod K], 1), posted with the ENDs
 *   and SSP's first slack read as before; (b) the worker whose add made
 *   the group complete (old + 1 == size * ((t - c0) / K + 1)) then adds 1
 *   to root.arrive[same residue]; (c) the worker whose add made the root
 *   complete (ceil(W/G) groups) adds 1 to every group's release word, all
 *   posted together, one round trip; it knows clock t complete and does
 *   not wait. A waiter on clock c reads only its group's release word
 *   until it is >= c - c0 + 1: one 8-byte read, as with the flat
 *   counter, and at most G - 1 readers per word. The release is a
 *   fetch-add, not a write: completions of successive clocks may land in
 *   any order, and a count of completed clocks only grows (clock c
 *   complete implies every clock before it is, so a count of n proves
 *   clocks c0 .. c0 + n - 1). A release exists only after the root's
 *   completion, which comes after every group's completion: no waiter is
 *   released before all W arrived. The K ring stays sound for the same
 *   reason as the flat counter's: nobody adds to round n + 1 of a
 *   residue before round n completed (K >= slack + 2). Barriers climb the
 *   same way (node barrier, root barrier, bar_release, rounds from 1).
 *   Per clock the root takes ceil(W/G) fetch-adds, a group word G and one
 *   release; no worker makes more than 2 counter fetch-adds a tick (the
 *   completer also posts the ceil(W/G) releases); the critical path grows
 *   from one round trip to three. ASP posts no release (nobody waits).
 *   A-BSP's cut word stays on shard 0 (one compare-swap per round).
 *   Every worker compare-swaps its fan-in into shard 0's fanin word (0 ->
 *   G, 1 for flat) when it starts and refuses to run on another value, so
 *   the workers of a job count on the same words. Shards size their
 *   regions for any fan-in (room for ceil(W/2) groups) and need not know
 *   it. Under on_worker_loss continue the flat counter is kept: the
 *   make-up below works on it.
 *
 * Lost workers (rdps_config.on_worker_loss = continue; SSP and ASP only)
 *   Shard 0 sets a worker's bit in its gone_map (dead, or left with
 *   PS_BYE) only after it closed the worker's endpoint: from then on
 *   nothing of that worker reaches the clock table. In this mode every
 *   worker also fetch-adds its own word wclock[rank] (SSP only: ASP never
 *   waits on a clock) resp. wbar[rank] right after arrive[] resp.
 *   barrier, on the same endpoint, so wclock[w] > c proves w's arrival at
 *   c is counted. A worker waiting on
 *   clock c that finds gone workers on shard 0 (gone_count) reads
 *   gone_map and wclock[]: once every worker is gone or past c, no other
 *   arrival at round c/K can come, and it raises arrive[c mod K] from the
 *   value v it read to W * (c/K + 1) with one compare-swap. The swap fails
 *   if anything moved since v, which is then read again: so the gone
 *   workers' missing arrivals are made up exactly once, by whichever
 *   waiter gets there first; a dead worker that had arrived (its wclock
 *   fetch-add lost with it) is never counted twice, and a worker that
 *   left after its last clock is never missing. The barrier word is made
 *   up the same way. A dead worker's pushes are whole or absent (a shard
 *   applies a message only once it is complete).
 *
 * Embedding tables (rdps_emb_open; src/emb_codec.h holds the pure logic
 * both sides share: hashes, initial values, checksums, decoders)
 *   Rows of dim values (f32 or f64) addressed by any 64-bit key. A key
 *   lives on shard mix64(key) mod S (the splitmix64 finalizer: sequential
 *   ids spread evenly). Each shard holds, per table, up to capacity rows:
 *   index (REMOTE_READ, everyone): nbuckets (a power of two >= capacity)
 *     struct ps_emb_bucket of 64 B, one READ each. A key has two candidate
 *     buckets, ps_emb_bucket_of(key, 0 / 1, nbuckets), two independent
 *     hashes (the second moved off the first if they collide). A bucket
 *     holds PS_EMB_SLOTS {be64 key; be64 meta} slots; meta = 1 << 63 |
 *     check << 32 | row, where check is 31 bits of a hash of (key, row,
 *     bucket). A slot is written once (key, then meta, release) and never
 *     moved (no cuckoo displacement), so no bucket-wide version is
 *     needed: a slot whose check does not match was read while it was
 *     being written (the READ is not atomic, its words may come from
 *     before and after) and is read again; one that stays wrong, or
 *     names a row >= capacity, is a corrupt bucket: an error, never a
 *     crash. A slot is cleared only to undo the inserts of a message
 *     refused as a whole (SSP, ASP), and the row is then sealed dead
 *     (version PS_EMB_VERSION_DEAD, src/emb_codec.h): a reader that found
 *     the slot, or cached the row's place, finds the row dead or, once it
 *     went to another key, that key, and looks its own up again. With
 *     nbuckets >= capacity the slots are at most 1/4 full, so two
 *     choices of 4 slots almost never overflow; an insert that finds both
 *     candidates full fails like a full table (-ENOSPC; under BSP, found
 *     at clock end, it is logged and the table refuses pushes from then
 *     on).
 *   rows (REMOTE_READ, everyone): capacity rows of ps_emb_row_bytes(dim,
 *     dtype) bytes: struct ps_emb_row (32 B: be64 key, be64 version, be64
 *     check) then the dim values. Rows are handed out in insert order.
 *     check = ps_emb_row_sum(key, version, values): a reader accepts a row
 *     only if its key and check match what it read. We chose a checksum
 *     (Pilaf) over a version per cache line (FaRM): FaRM's check relies on
 *     the NIC writing each cache line of a READ atomically, which tcp
 *     (the target's memcpy) and shm (the initiator's memcpy) do not give;
 *     a checksum over the bytes as read catches any mix of two versions
 *     on every transport, at the price of hashing dim values per row read
 *     (a few ns for dim 64). Adagrad's sums of squares live in the shard's
 *     private memory: workers never read them.
 *   The shard's CPU is the only writer of index and rows. A row update
 *   writes the new values in place, then version + 1 and the new check.
 *   An insert writes the whole row (initial values, version 0, check),
 *   then the slot (key, then meta, release).
 *   Pull of n keys (src/worker/emb_pull.c): round trip 1 READs both
 *   candidate buckets of every key, on every shard, all posted before the
 *   first is awaited (BSP and A-BSP also read the shard's directory
 *   header first on the same endpoint and accept only applied_clock >=
 *   this worker's clock, as dense pulls do); round trip 2 READs the rows
 *   found. A key found in neither bucket is absent: its value is the
 *   initial value ps_emb_init_value(init, scale, seed, key, j), computed
 *   by the worker with the function the shard uses when it inserts the
 *   key, so a pull never inserts and the shard's CPU does nothing for it.
 *   A torn bucket or row is read again (counted in the stats).
 *   Push (src/worker/emb_push.c): the worker sums duplicate keys of one
 *   call, then sends each shard its {be64 key; dim values} pairs through
 *   the sub-slots as PS_PUSH with PS_F_EMB (ps_msg.table: the index in
 *   the directory's emb[] array, .count: pairs). The shard
 *   (src/server/emb_push.c) inserts unseen keys (all of one message or
 *   none: a table at capacity is NACK ENOSPC, which the worker reports
 *   naming the table and its capacity) and applies the table's rule to
 *   each row. BSP and A-BSP: each worker's pairs of the clock are summed
 *   per key (first-seen order) and applied at clock end in worker order
 *   0..W-1, inserts included, so rows and index are identical across runs
 *   and transports; the capacity is reserved at push time so the NACK
 *   still reaches the pushing worker.
 *   Checkpoints hold embedding tables too (src/checkpoint.h).
 *
 * Values on the wire and in shard memory are the host's own float/double
 * representation (all peers of a job are little-endian x86-64 / arm64);
 * indices, counts and header words are big-endian.
 */
#ifndef RDPS_PS_PROTO_H
#define RDPS_PS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "transport.h"

#define PS_MAGIC_LISTENER 0x52445053u	   /* "RDPS" */
#define PS_MAGIC_WORKER 0x52445057u	   /* "RDPW" */
#define PS_DIR_MAGIC 0x7264707364697231ull /* "rdpsdir1" */
#define PS_PROTO_VERSION 6

#define PS_MAX_TABLES 64
#define PS_NSLOTS 4			 /* sub-slots per worker per shard */
#define PS_SLOT_BYTES_DEFAULT (1u << 20) /* per sub-slot, header included */
#define PS_ALIGN_ELEMS 16		 /* shard ranges start 64-B aligned */

/* Immediate: kind in the top 4 bits, argument in the low 28. */
#define PS_ARG_MASK 0x0fffffffu
#define PS_IMM(kind, arg) (((uint32_t)(kind) << 28) | ((arg)&PS_ARG_MASK))
#define PS_IMM_KIND(imm) ((imm) >> 28)
#define PS_IMM_ARG(imm) ((imm)&PS_ARG_MASK)

enum ps_kind {
	PS_PUSH = 1,	 /* worker -> shard, sub-slot k */
	PS_CREATE = 2,	 /* worker -> shard, sub-slot k */
	PS_END = 3,	 /* worker -> shard, clock */
	PS_BYE = 4,	 /* worker -> shard: leaving on purpose */
	PS_WAIT = 5,	 /* worker -> shard: wake me at clock/barrier arg */
	PS_DONE = 6,	 /* worker -> shard: my add completed arg */
	PS_CREDIT = 8,	 /* shard -> worker, sub-slot k handled */
	PS_NACK = 9,	 /* shard -> worker, errno: message refused */
	PS_WELCOME = 10, /* shard -> worker, status (0 or errno) */
	PS_RELEASE = 11, /* shard -> worker, the PS_WAIT's arg */
};

/* PS_WAIT and PS_DONE's argument: a clock, or with PS_WAIT_BARRIER a
 * barrier, in its low 26 bits. A PS_RELEASE carries its PS_WAIT's, with
 * PS_RELEASE_WAKE when it is a wake-up, not a completion. */
#define PS_WAIT_BARRIER (1u << 26)
#define PS_WAIT_MASK (PS_WAIT_BARRIER - 1)
#define PS_RELEASE_WAKE (1u << 27)

/* Listener private data. */
struct ps_lhello {
	uint32_t magic_be; /* PS_MAGIC_LISTENER */
	uint16_t shard_be;
	uint16_t nshards_be;
	struct rdps_tp_rkey_wire dir; /* the directory region */
};
_Static_assert(sizeof(struct ps_lhello) == 32, "ps_lhello");

/* Connect private data. */
struct ps_whello {
	uint32_t magic_be; /* PS_MAGIC_WORKER */
	uint16_t rank_be;
	uint16_t workers_be;
	struct rdps_tp_rkey_wire reply; /* the worker's reply region */
};
_Static_assert(sizeof(struct ps_whello) == 32, "ps_whello");

/* Written by a shard into the worker's reply region after accept. */
struct ps_welcome {
	uint32_t status_be;	/* 0, or a positive errno */
	uint32_t nslots_be;	/* PS_NSLOTS */
	uint64_t slot_bytes_be; /* bytes per sub-slot, header included */
	struct rdps_tp_rkey_wire slots; /* this worker's slot region */
	/* The shard's clock region (ps_clock_region_len): on shard 0 the
	 * flat table (struct ps_clock_table) and the tree's root; on every
	 * shard its groups' nodes (struct ps_clock_node). */
	struct rdps_tp_rkey_wire clock;
};
_Static_assert(sizeof(struct ps_welcome) == 64, "ps_welcome");

enum ps_model_wire {
	PS_MODEL_BSP = 0,
	PS_MODEL_SSP = 1,
	PS_MODEL_ASP = 2,
	PS_MODEL_ABSP = 3,
};

/* The shards' default heartbeat interval (ps_dir_hdr.heartbeat_ms), also
 * the period at which a shard reads every worker's pulse. */
#define PS_HEARTBEAT_MS 500
/* How often a worker bumps its pulse (and a shard its heartbeat): well
 * inside the shortest interval (RDPS_SERVER_HEARTBEAT_MIN, 250 ms). */
#define PS_PULSE_MS (PS_HEARTBEAT_MS / 4)

/* Head of the directory region (64 B). */
struct ps_dir_hdr {
	uint64_t magic_be;   /* PS_DIR_MAGIC */
	uint32_t version_be; /* PS_PROTO_VERSION */
	uint16_t shard_be;
	uint16_t nshards_be;
	uint32_t workers_be;
	uint32_t model_be; /* enum ps_model_wire */
	uint32_t slack_be;
	uint32_t clock_k_be; /* K: residues of the clock table */
	/*
	 * Clocks fully applied on this shard: every worker's updates of
	 * clocks < applied_clock are in the params. Written by the shard CPU
	 * (release, after the params), read by workers before they accept a
	 * pull. Big-endian like the rest.
	 */
	uint64_t applied_clock_be;
	/* Workers this shard lost (connection broken or process gone) and
	 * the rank of the first; workers waiting on a clock read them to
	 * name the dead peer instead of waiting for it. */
	uint32_t dead_count_be;
	uint32_t dead_first_be;
	/* Bumped (native, only a change counts) by a thread of the shard
	 * at least every heartbeat_ms while its process runs: a worker
	 * waiting on a shard whose count stands still for two intervals
	 * reports it stopped or hung. */
	uint64_t heartbeat;
	uint32_t heartbeat_ms_be;
	/* Workers in gone_map: dead, or left (PS_BYE), endpoint closed. */
	uint32_t gone_count_be;
};
_Static_assert(sizeof(struct ps_dir_hdr) == 64, "ps_dir_hdr");

enum ps_dtype_wire { PS_DTYPE_F32 = 0, PS_DTYPE_F64 = 1 };
enum ps_rule_wire {
	PS_RULE_SUM = 0,
	PS_RULE_SGD = 1,
	PS_RULE_ADAGRAD = 2,
	PS_RULE_PUT = 3,	   /* overwrite */
	PS_RULE_PUT_IF_BETTER = 4, /* overwrite a block if its key is lower */
};
#define PS_RULE_MAX PS_RULE_PUT_IF_BETTER

/* One table in the directory (128 B). ready_be is written last (release):
 * 0 = free slot, 1 = the rest is valid. */
struct ps_table_desc {
	uint64_t ready_be;
	char name[32];	/* NUL-terminated, RDPS_TABLE_NAME_MAX chars */
	uint64_t n_be;	/* elements in the whole table */
	uint64_t lo_be; /* this shard's range [lo, hi) */
	uint64_t hi_be;
	uint32_t dtype_be;   /* enum ps_dtype_wire */
	uint32_t rule_be;    /* enum ps_rule_wire */
	uint64_t lr_bits_be; /* the double's bits */
	struct rdps_tp_rkey_wire params;
	uint8_t pad[24];
};
_Static_assert(sizeof(struct ps_table_desc) == 128, "ps_table_desc");

/* Ranks travel as be16 and the dead map has a bit per rank. */
#define PS_WORKERS_MAX 4096u

/* Embedding tables (see "Embedding tables" above) ------------------------ */

#define PS_EMB_MAX 16	    /* embedding tables per job */
#define PS_EMB_SLOTS 4	    /* slots per 64-B bucket */
#define PS_EMB_DIM_MAX 4096 /* values per row */
#define PS_EMB_META_VALID (1ull << 63)

enum ps_emb_init_wire {
	PS_EMB_INIT_ZERO = 0,
	PS_EMB_INIT_UNIFORM = 1, /* uniform in [-scale, scale) */
	PS_EMB_INIT_NORMAL = 2,	 /* normal, mean 0, deviation scale */
};

struct ps_emb_slot {
	uint64_t key_be;
	uint64_t meta_be; /* 0: empty; else VALID | check31 << 32 | row */
};

struct ps_emb_bucket {
	struct ps_emb_slot slot[PS_EMB_SLOTS];
};
_Static_assert(sizeof(struct ps_emb_bucket) == 64, "ps_emb_bucket");

/* Head of a row; the dim values follow. */
struct ps_emb_row {
	uint64_t key_be;
	uint64_t version_be; /* updates applied to the row */
	uint64_t check_be;   /* ps_emb_row_sum(key, version, values) */
	uint64_t pad;
};
_Static_assert(sizeof(struct ps_emb_row) == 32, "ps_emb_row");

/* One embedding table in the directory (192 B). ready_be is written last
 * (release): 0 = free, 1 = the rest is valid. */
struct ps_emb_desc {
	uint64_t ready_be;
	char name[32];
	uint32_t dim_be;
	uint32_t dtype_be; /* enum ps_dtype_wire */
	uint32_t rule_be;  /* enum ps_rule_wire */
	uint32_t init_be;  /* enum ps_emb_init_wire */
	uint64_t lr_bits_be;
	uint64_t seed_be;
	uint64_t scale_bits_be; /* the init's scale, a double's bits */
	uint64_t capacity_be;	/* rows on this shard */
	uint64_t nbuckets_be;	/* a power of two >= capacity */
	uint64_t row_bytes_be;	/* ps_emb_row_bytes(dim, dtype) */
	struct rdps_tp_rkey_wire index;
	struct rdps_tp_rkey_wire rows;
	uint8_t pad[40];
};
_Static_assert(sizeof(struct ps_emb_desc) == 192, "ps_emb_desc");

/* Message flag: a PS_CREATE whose payload is a struct ps_emb_create, or a
 * PS_PUSH of {be64 key; dim values} pairs to embedding table ps_msg.table. */
#define PS_F_EMB 4u

/*
 * With PS_F_EMB on a PS_PUSH: not a push but a two-sided lookup, the
 * design of ps-lite and BytePS, kept as the baseline that rdps-psbench
 * compares the one-sided pull with. Payload: struct ps_emb_lookup, then
 * ps_msg.count be64 keys. The shard's CPU looks each key up (absent keys:
 * their initial value) and writes the count rows' values, one after the
 * other, to dst_addr in the worker's region dst with one put, then sends
 * the credit on the same endpoint, so the rows are in place when the
 * credit arrives. At most slot_bytes of rows per message.
 */
#define PS_F_LOOKUP 8u

struct ps_emb_lookup {
	struct rdps_tp_rkey_wire dst;
	uint64_t dst_addr_be;
	uint64_t pad[4];
};
_Static_assert(sizeof(struct ps_emb_lookup) == 64, "ps_emb_lookup");

/* PS_CREATE payload of an embedding table (PS_F_EMB). */
struct ps_emb_create {
	char name[32];
	uint32_t dim_be;
	uint32_t dtype_be;
	uint32_t rule_be;
	uint32_t init_be;
	uint64_t lr_bits_be;
	uint64_t seed_be;
	uint64_t scale_bits_be;
	uint64_t capacity_be;
	uint64_t pad[2];
};
_Static_assert(sizeof(struct ps_emb_create) == 96, "ps_emb_create");

/* Bytes of one row: its head, then dim values, padded to 8 bytes. */
static inline uint64_t ps_emb_row_bytes(uint32_t dim, uint32_t dtype)
{
	uint64_t v = (uint64_t)dim * (dtype == PS_DTYPE_F64 ? 8 : 4);

	return sizeof(struct ps_emb_row) + (v + 7) / 8 * 8;
}

/* The index's buckets for a capacity: the power of two >= capacity. */
static inline uint64_t ps_emb_nbuckets(uint64_t capacity)
{
	uint64_t nb = 2;

	while (nb < capacity)
		nb <<= 1;
	return nb;
}

/*
 * What the shard's CPU did, for benchmarks and tests: they read it to show
 * that a one-sided pull costs the shard's CPU nothing. handled counts the
 * messages the shard's loop thread has handled (every PS_PUSH, two-sided
 * lookups included, PS_CREATE, PS_END, PS_BYE, PS_WAIT and PS_DONE; one
 * held back for the next clock counts again when replayed); the shard
 * stores it after each. pid and tid name the shard's process and its loop
 * thread, for a reader on the same host (/proc).
 */
struct ps_dir_stats {
	uint64_t handled_be;
	uint32_t pid_be;
	uint32_t tid_be;
	uint64_t pad[6];
};
_Static_assert(sizeof(struct ps_dir_stats) == 64, "ps_dir_stats");

/* The directory region: what a worker reads to find tables. */
struct ps_dir {
	struct ps_dir_hdr hdr;
	struct ps_table_desc tables[PS_MAX_TABLES];
	/* Bit w (word w / 64, bit w % 64, big-endian words): worker w is
	 * gone from this shard (dead, or left with PS_BYE); set after its
	 * endpoint was closed, never cleared. */
	uint64_t gone_map_be[PS_WORKERS_MAX / 64];
	/* Embedding tables, published like tables[] (ready last). */
	struct ps_emb_desc emb[PS_EMB_MAX];
	struct ps_dir_stats stats;
};

/* Header of a message in a sub-slot (64 B), payload right after. */
struct ps_msg {
	uint32_t kind_be;  /* PS_PUSH or PS_CREATE (matches the imm) */
	uint32_t flags_be; /* PS_F_* */
	uint32_t table_be; /* index in this shard's directory */
	uint32_t pad0;
	uint64_t start_be; /* PUSH dense: first element (global index) */
	uint64_t count_be; /* PUSH: elements (dense) or pairs (sparse) */
	uint64_t clock_be; /* PUSH: the worker's clock when pushing */
	uint64_t bytes_be; /* payload bytes following this header */
	uint64_t pad[2];
};
_Static_assert(sizeof(struct ps_msg) == 64, "ps_msg");

#define PS_F_SPARSE 1u
/* The payload came in an earlier write on the same connection; the
 * write-with-immediate carries the header alone. */
#define PS_F_SPLIT 2u

/* PS_CREATE payload. */
struct ps_create {
	char name[32];
	uint64_t n_be;
	uint32_t dtype_be;
	uint32_t rule_be;
	uint64_t lr_bits_be;
	uint64_t pad;
};
_Static_assert(sizeof(struct ps_create) == 64, "ps_create");

/*
 * Clock table (shard 0): arrive[r] counts workers that finished a clock c
 * with c mod K == r; monotonic, changed only by fetch-add (and by the
 * compare-swap that makes up for lost workers). barrier counts
 * rdps_barrier() calls. K >= slack + 2. Right after the struct: wclock[W]
 * then wbar[W] (ps_wclock_off, ps_wbar_off), one word per worker, which
 * it fetch-adds after arrive[] resp. barrier when on_worker_loss is
 * continue; else they stay 0 until it leaves (rdps_ctx_destroy), when it
 * adds its clock and its barrier count once, before PS_BYE: a worker
 * waiting on a round that one never reached can then name it.
 */
#define PS_CLOCK_K_MAX 64
struct ps_clock_table {
	uint64_t arrive[PS_CLOCK_K_MAX];
	uint64_t barrier;
	/* A-BSP: round c is cut once cut > c; raised only by compare-swap
	 * (rdps_cut), read by rdps_cut_poll. */
	uint64_t cut;
	/* The job's clock fan-in (1: the flat arrive[], G: the tree),
	 * set by the first worker's compare-swap from 0; a worker that
	 * finds another value refuses to start (see "Clock tree"). */
	uint64_t fanin;
	uint64_t pad[5];
};
_Static_assert(sizeof(struct ps_clock_table) == 576, "ps_clock_table");

/*
 * A node of the clock tree (every shard's clock region, after the words
 * of ps_clock_table and wclock[]/wbar[]): the root (node 0 of shard 0) or
 * group g's words (node 1 + g / S of shard g mod S). Zero at creation and
 * never written by a CPU, even on resume: workers count rounds from the
 * clock the job started at. arrive[r] counts the group's members (the
 * root: the groups) that finished a clock c with (c - c0) mod K == r;
 * barrier likewise for rdps_barrier(). release and bar_release count the
 * clocks and barriers completed: the worker that completes the root
 * fetch-adds 1 into every group's word.
 */
struct ps_clock_node {
	uint64_t arrive[PS_CLOCK_K_MAX];
	uint64_t barrier;
	uint64_t release;
	uint64_t bar_release;
	uint64_t pad[5];
};
_Static_assert(sizeof(struct ps_clock_node) == 576, "ps_clock_node");

/* Fan-ins: 1 (or >= W) is the flat counter; automatic (0) stays flat up
 * to PS_FANIN_FLAT_MAX workers (see ps_fanin()). */
#define PS_FANIN_MAX PS_WORKERS_MAX
#define PS_FANIN_FLAT_MAX 32

/* --- pure logic shared by both sides ------------------------------- */

/* Offsets of worker w's words in the clock table region, and its size. */
static inline uint64_t ps_wclock_off(unsigned w)
{
	return sizeof(struct ps_clock_table) + 8ull * w;
}

static inline uint64_t ps_wbar_off(unsigned workers, unsigned w)
{
	return sizeof(struct ps_clock_table) + 8ull * (workers + w);
}

/* Offset of node idx of the clock tree in any shard's clock region. */
static inline uint64_t ps_clock_node_off(unsigned workers, unsigned idx)
{
	uint64_t words = sizeof(struct ps_clock_table) + 16ull * workers;

	return (words + 63) / 64 * 64 +
	       (uint64_t)idx * sizeof(struct ps_clock_node);
}

/* Nodes every shard holds: the root's place, then room for its share of
 * the most groups any fan-in makes (ceil(W / 2), fan-in 2). */
static inline unsigned ps_clock_nodes(unsigned workers, unsigned nshards)
{
	unsigned groups = (workers + 1) / 2;

	return 1 + (groups + nshards - 1) / nshards;
}

/* Bytes of every shard's clock region. */
static inline uint64_t ps_clock_region_len(unsigned workers, unsigned nshards)
{
	return ps_clock_node_off(workers, ps_clock_nodes(workers, nshards));
}

/* Offset of the pulse in a worker's reply region, and its size. */
static inline uint64_t ps_pulse_off(unsigned nshards)
{
	return (uint64_t)nshards * 64; /* sizeof(struct ps_welcome) */
}

static inline uint64_t ps_reply_len(unsigned nshards)
{
	return ps_pulse_off(nshards) + 64;
}

static inline int ps_gone_bit(const uint64_t *map_be, unsigned w)
{
	return (int)(__builtin_bswap64(map_be[w / 64]) >> (w % 64) & 1);
}

/*
 * Lost workers: can a round of a counter be made up? Every worker w
 * must be gone in map_be or have a word words[w] >= need (its arrival is
 * counted). Returns -1 when it can, else the lowest rank still awaited.
 */
static inline int ps_makeup_wait(const uint64_t *map_be, const uint64_t *words,
				 unsigned workers, uint64_t need)
{
	for (unsigned w = 0; w < workers; w++)
		if (!ps_gone_bit(map_be, w) && words[w] < need)
			return (int)w;
	return -1;
}

static inline uint64_t ps_align_down(uint64_t x)
{
	return x - x % PS_ALIGN_ELEMS;
}

/* Shard s's range [lo, hi) of an n-element table over S shards: equal
 * parts, boundaries rounded down to PS_ALIGN_ELEMS (64 B of float32); the
 * last shard takes the rest. A shard may own nothing (lo == hi). */
static inline uint64_t ps_shard_bound(uint64_t n, unsigned nshards, unsigned s)
{
	if (s >= nshards)
		return n;
	return ps_align_down((uint64_t)((unsigned __int128)n * s / nshards));
}

static inline void ps_shard_range(uint64_t n, unsigned nshards, unsigned s,
				  uint64_t *lo, uint64_t *hi)
{
	*lo = ps_shard_bound(n, nshards, s);
	*hi = ps_shard_bound(n, nshards, s + 1);
}

/* The clock table's K for a slack: at least slack + 2. */
static inline unsigned ps_clock_k(unsigned slack)
{
	return slack + 2;
}

/* Is clock c complete (all W workers arrived) given arrive[c mod K]? */
static inline int ps_clock_done(uint64_t arrive, uint64_t c, unsigned k,
				unsigned workers)
{
	return arrive >= (uint64_t)workers * (c / k + 1);
}

/* Did the fetch-add that returned old for clock c make this worker the
 * last of the W to arrive? */
static inline int ps_clock_last(uint64_t old, uint64_t c, unsigned k,
				unsigned workers)
{
	return old + 1 == (uint64_t)workers * (c / k + 1);
}

/*
 * The lowest clock not complete by the flat counters arrive[0..k) of
 * workers workers (atomically loaded: they move under the caller): round
 * r of residue i is clock r * k + i, complete once arrive[i] >= W * (r +
 * 1). A clock completes only after every clock before it (a worker
 * arrives at them in order), so every clock below the result is complete.
 */
static inline uint64_t ps_clock_frontier(const uint64_t *arrive, unsigned k,
					 unsigned workers)
{
	uint64_t lo = UINT64_MAX;

	for (unsigned i = 0; i < k; i++) {
		uint64_t a = __atomic_load_n(&arrive[i], __ATOMIC_ACQUIRE);
		uint64_t n = a / workers * k + i;

		if (n < lo)
			lo = n;
	}
	return lo;
}

/* The value nearest ref whose low 26 bits are v (a PS_WAIT's argument):
 * exact for any round within 2^25 of the frontier ref. */
static inline uint64_t ps_wait_unwrap(uint64_t ref, uint32_t v)
{
	const uint64_t span = (uint64_t)PS_WAIT_MASK + 1, half = span / 2;
	uint64_t c = (ref & ~(uint64_t)PS_WAIT_MASK) | (v & PS_WAIT_MASK);

	if (c + half < ref)
		c += span;
	else if (c >= ref + half && c >= span)
		c -= span;
	return c;
}

/*
 * The clock tree (see "Clock tree" above). ps_fanin: the group size a
 * configured fan-in (0 automatic, 1 flat, else G) means for W workers: 1
 * (flat) when W <= PS_FANIN_FLAT_MAX under automatic or when one group
 * would hold everyone, else G; automatic picks the smallest G with G * G
 * >= W, which balances the root's W / G fetch-adds a clock against a
 * group's G.
 */
static inline unsigned ps_fanin(unsigned cfg, unsigned workers)
{
	unsigned g = cfg;

	if (!g) {
		if (workers <= PS_FANIN_FLAT_MAX)
			return 1;
		for (g = 2; g * g < workers; g++)
			;
	}
	return g >= workers ? 1 : g;
}

/* Groups of fan-in g: ceil(W / g); group grp holds ranks [grp * g,
 * grp * g + size), the last one the rest. */
static inline unsigned ps_tree_groups(unsigned g, unsigned workers)
{
	return (workers + g - 1) / g;
}

static inline unsigned ps_tree_size(unsigned g, unsigned workers, unsigned grp)
{
	unsigned left = workers - grp * g;

	return left < g ? left : g;
}

/* The shard and node index that hold group grp's words. */
static inline unsigned ps_tree_shard(unsigned grp, unsigned nshards)
{
	return grp % nshards;
}

static inline unsigned ps_tree_node(unsigned grp, unsigned nshards)
{
	return 1 + grp / nshards;
}

/* Clock c's round (from 1) in its residue (c - c0) mod k of a tree node,
 * counted from the job's start clock c0 <= c: a node of n members is
 * complete at n * ps_tree_round(). */
static inline uint64_t ps_tree_round(uint64_t c, uint64_t c0, unsigned k)
{
	return (c - c0) / k + 1;
}

static inline unsigned ps_dtype_size(uint32_t dtype)
{
	return dtype == PS_DTYPE_F64 ? 8 : 4;
}

/* Parsing the handshake (src/ps_proto.c) -------------------------------
 *
 * Pure functions over bytes a peer sent, for the shard (a worker's hello)
 * and the worker (a shard's hello and welcome), fuzzed by
 * tests/fuzz/fuzz_ps_hello.c. Each takes (buf, len) and trusts nothing in
 * it; on failure it zeroes *out and writes why (NUL-terminated, cut to
 * why_len) as the detail after "shard N (URL) " or "refused a peer: ".
 * Remote keys are passed on in wire form: the caller unpacks them with its
 * transport's rkey_unpack.
 */

/* A worker's hello, as the shard reads it. */
struct ps_whello_info {
	unsigned rank, workers;
	struct rdps_tp_rkey_wire reply; /* its reply region */
};

/* 0, or -EPROTO: not an rdps worker (short, bad magic). */
int ps_whello_parse(const void *buf, size_t len, struct ps_whello_info *out,
		    char *why, size_t why_len);
/* Does a worker of hello h belong to a job of `workers`? 0, or -EINVAL
 * (another worker count, rank out of range): refuse it with EINVAL. */
int ps_whello_fits(const struct ps_whello_info *h, unsigned workers, char *why,
		   size_t why_len);

/* A shard's hello, as a worker reads it. */
struct ps_lhello_info {
	unsigned shard, nshards;
	struct rdps_tp_rkey_wire dir; /* its directory */
};

/* Of the shard listed as shard of nshards: 0, -EPROTO (not an rdps
 * shard), -EINVAL (another shard index or count: listed out of order). */
int ps_lhello_parse(const void *buf, size_t len, unsigned shard,
		    unsigned nshards, struct ps_lhello_info *out, char *why,
		    size_t why_len);

/* A shard's welcome, as a worker reads it. */
struct ps_welcome_info {
	unsigned nslots;
	uint64_t slot_bytes;
	struct rdps_tp_rkey_wire slots, clock;
};

/* Of shard `shard` to a worker of a job of `workers` and `nshards`: 0;
 * -errno (1..4095) when the shard refused the worker with that errno;
 * -EPROTO when the welcome is malformed (status, sub-slots, or a clock
 * region smaller than ps_clock_region_len(workers, nshards)). */
int ps_welcome_parse(const void *buf, size_t len, unsigned shard,
		     unsigned nshards, unsigned workers,
		     struct ps_welcome_info *out, char *why, size_t why_len);

#endif /* RDPS_PS_PROTO_H */
