/* SPDX-License-Identifier: MIT */
/*
 * perf.h - the measurement library behind rdps-perf (private API).
 *
 * The library owns everything that touches the clock or the transport:
 * opening a benchmark server or client, the buffer layout both sides agree
 * on, the timed loops and the statistics. It never prints and never exits;
 * tools (tools/rdps_perf.c) parse options and print what it returns, as
 * UCX splits src/tools/perf/lib from perftest.c.
 *
 * Method (the one of perftest and ucx_perftest):
 *   - read, fadd, cas latency: the time of one whole operation, from post
 *     to its completion, one operation in flight (ucp_get, ucp_fadd);
 *   - write latency: half a round trip of a ping-pong (ib_write_lat,
 *     ucp_put_lat). The client writes a message whose last 8 bytes carry a
 *     sequence value into the end of the server's region; the server spins
 *     on its own memory until that value appears, then writes the same
 *     message back into the end of the client's region, where the client
 *     spins for it;
 *   - bandwidth (outstanding > 0): keep that many operations posted, all
 *     signaled, and divide the bytes moved by the elapsed time.
 * Times are taken once per iteration with the TSC where it runs at a
 * constant rate (calibrated against CLOCK_MONOTONIC), else with
 * rdps_now_ns(); see rdps_perf_clock(). They are kept per iteration in
 * double microseconds, so the statistics never truncate. Nothing else on
 * the measured path reads the clock more than once in 1024 iterations or
 * spins: in a virtual machine clock_gettime() can be a system call.
 * In busy poll mode neither side calls rdps_tp_wait().
 *
 * Buffer layout (RDPS_PERF_REGION = R bytes, page-aligned):
 *   server region, R bytes, registered READ|WRITE|ATOMIC:
 *     [0, MAX_SIZE)       target of read and write bandwidth and of reads;
 *     [MAX_SIZE, +8)      the atomic word (fadd, cas);
 *     [R - 8, R)          the write ping-pong sequence word: a ping of size
 *                         S lands at [R - S, R).
 *   client region, 2R bytes, registered READ|WRITE:
 *     [0, R)              receive area: the server's echo of S bytes lands
 *                         at [R - S, R), its sequence word at R - 8;
 *     [R, 2R)             send area: source of writes, destination of
 *                         reads and atomic results.
 * The server hands its packed remote key to every client as listener
 * private data; the client sends its own as connect private data. A
 * sequence value is (counter << 24) | size, the counter counting pings on
 * the connection from 1, so the server learns each ping's size. The
 * server spins on the word while it lands, and a write lands in address
 * order but not all at once: rxe copies it with a byte-wise memcpy (rep
 * movsb) that a reader on another CPU can see half done, low bytes new and
 * high bytes old (perftest, for the same reason, polls the last byte). So
 * the counter sits in the high bytes, which land last: a word that shows
 * the next counter is whole, size included (rdps_perf_ping_check()).
 *
 * The server also watches for the end of a client: the client announces it
 * with a zero-length write-with-immediate RDPS_PERF_IMM_BYE; a client that
 * died is found by an 8-byte read probe the server posts after a second
 * without pings, which then fails.
 *
 * Threads: one thread per server or client object, as for the transport.
 * Errors: 0 or a negative errno; on failures of input or environment the
 * library (or the transport under it) records a one-line explanation that
 * rdps_errmsg() returns.
 */
#ifndef RDPS_PERF_H
#define RDPS_PERF_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

#define RDPS_PERF_MIN_SIZE 8u
#define RDPS_PERF_MAX_SIZE (4u << 20)
#define RDPS_PERF_REGION (RDPS_PERF_MAX_SIZE + 4096u)
#define RDPS_PERF_ATOMIC_OFF RDPS_PERF_MAX_SIZE
#define RDPS_PERF_IMM_BYE 0x72647073u /* "rdps" */
/* Sequence value of a ping: counter in the top 40 bits, size below. */
#define RDPS_PERF_SEQ_SIZE_BITS 24
#define RDPS_PERF_SEQ_MAX ((1ull << (64 - RDPS_PERF_SEQ_SIZE_BITS)) - 1)

/* The batched figure (struct rdps_perf_result.batch_us): operations per
 * clock reading, and the per-operation median below which it is taken. */
#define RDPS_PERF_BATCH 64u
#define RDPS_PERF_BATCH_BELOW_US 0.1

enum rdps_perf_op {
	RDPS_PERF_READ = 0,
	RDPS_PERF_WRITE,
	RDPS_PERF_FADD,
	RDPS_PERF_CAS,
	RDPS_PERF_MEMCPY, /* local reference: memcpy between two buffers */
	/* local reference, the floor under a write ping-pong: two threads
	 * passing a sequence value back and forth, each with one plain
	 * 8-byte store into the other's cache line and a spin on its own;
	 * no transport. Half the round trip, as RDPS_PERF_WRITE. */
	RDPS_PERF_PINGPONG,
};

/* "read", "write", "fadd", "cas", "memcpy", "pingpong". */
const char *rdps_perf_op_name(enum rdps_perf_op op);
/* Parse an op name ("cswap" is accepted for cas); -EINVAL with
 * rdps_errmsg() set if unknown. */
int rdps_perf_op_parse(const char *s, enum rdps_perf_op *op_out);
/* Whether op only works on 8-byte words. */
static inline int rdps_perf_op_is_atomic(enum rdps_perf_op op)
{
	return op == RDPS_PERF_FADD || op == RDPS_PERF_CAS;
}

/* Whether op is a local reference, run with no connection. */
static inline int rdps_perf_op_is_local(enum rdps_perf_op op)
{
	return op == RDPS_PERF_MEMCPY || op == RDPS_PERF_PINGPONG;
}

/*
 * Called from inside a run, at most about once a second, so a tool can
 * show progress (on stderr). done counts the measured iterations finished
 * so far out of total; warm-up is not counted.
 */
typedef void (*rdps_perf_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* One measurement: one op at one size. */
struct rdps_perf_params {
	enum rdps_perf_op op;
	size_t size;	      /* bytes, RDPS_PERF_MIN_SIZE .. MAX_SIZE */
	uint64_t iters;	      /* measured iterations, >= 1 */
	uint64_t warmup;      /* iterations run first and not measured */
	unsigned outstanding; /* 0: latency; N: bandwidth, N in flight */
	int timeout_ms;	      /* give up on one operation after this */
	/* Optional: set (from a signal handler) to stop the run; it then
	 * returns -EINTR. */
	const volatile sig_atomic_t *stop;
	rdps_perf_progress_fn progress; /* optional */
	void *progress_arg;
};

/*
 * The timing clock, calibrated on first use (about 20 ms): "tsc",
 * "tsc (constant rate, virtual machine)", "tsc (forced)" or "monotonic".
 * Environment RDPS_PERF_CLOCK=tsc|monotonic overrides the choice.
 */
const char *rdps_perf_clock(void);

/* Fill defaults: read, 8 B, 10000 iterations, 1000 warm-up, latency,
 * 10 s timeout. */
void rdps_perf_params_default(struct rdps_perf_params *p);
/* Check p for op and size limits; -EINVAL with rdps_errmsg() set. */
int rdps_perf_params_check(const struct rdps_perf_params *p);

/*
 * Result of one measurement. Latency fields are microseconds, filled in
 * latency mode (and for memcpy); bandwidth fields are filled in both
 * modes (in latency mode from the serial run).
 */
struct rdps_perf_result {
	enum rdps_perf_op op;
	size_t size;
	uint64_t iters;
	unsigned outstanding;
	double min_us, median_us, avg_us, stdev_us, p99_us, p999_us, max_us;
	/* read, fadd, cas latency whose median is under
	 * RDPS_PERF_BATCH_BELOW_US: the median over batches of
	 * RDPS_PERF_BATCH operations, each batch timed as a whole, divided
	 * by RDPS_PERF_BATCH (a second pass of iters operations after the
	 * measured one); else 0 */
	double batch_us;
	double elapsed_s; /* measured part only */
	double bw_gbps;	  /* 1e9 bytes per second */
	double mops;	  /* million operations per second */
};

/*
 * Statistics of n >= 1 samples in microseconds into r's latency fields:
 * min, median (mean of the middle two for even n), mean, sample standard
 * deviation (0 for n == 1), nearest-rank p99 and p99.9, max. Sorts samples
 * in place.
 */
void rdps_perf_stats(double *samples, size_t n, struct rdps_perf_result *r);

/*
 * The write ping-pong's sequence word (Buffer layout above). Pure
 * functions, no connection needed.
 *   rdps_perf_ping_next: the counter after counter: 1 .. RDPS_PERF_SEQ_MAX,
 *   then 1 again (0 means no ping yet).
 *   rdps_perf_ping_word: the word of a ping of size bytes with counter.
 *   rdps_perf_ping_check: whether v, read from the word on the server
 *   while prev was the last ping answered (0 before the first), is the
 *   next ping, whole: 1 and its size in *size_out; 0 if not (yet): the
 *   old word or one still landing; -EPROTO with rdps_errmsg() set if it is
 *   the next ping but names a size out of range (another rdps-perf).
 */
uint64_t rdps_perf_ping_next(uint64_t counter);
uint64_t rdps_perf_ping_word(size_t size, uint64_t counter);
int rdps_perf_ping_check(uint64_t prev, uint64_t v, size_t *size_out);

/* One side of a benchmark connection. Fields are for reading. */
struct rdps_perf_conn {
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;	  /* NULL on a server with no client */
	struct rdps_tp_mr *mr;	  /* the local region (layout above) */
	uint8_t *buf;		  /* its first byte */
	size_t len;		  /* R (server) or 2R (client) */
	struct rdps_tp_rkey peer; /* the peer's region, unpacked on ep */
	uint64_t seq;		  /* ping counter on this connection */
	unsigned unsignaled;	  /* unsignaled posts since a signaled one */
};

/* Benchmark client ---------------------------------------------------- */

/*
 * Open a transport for url's scheme with cfg (NULL: defaults), allocate
 * and register the client region, connect to the rdps-perf server at url
 * within timeout_ms and unpack its key. Everything is undone on failure.
 * The transport's errors pass through (-ECONNREFUSED, -EINVAL, ...);
 * -EPROTO if the peer is not an rdps-perf server.
 */
int rdps_perf_client_open(const char *url, const struct rdps_tp_cfg *cfg,
			  int timeout_ms, struct rdps_perf_conn **c_out);
/* Tell the server goodbye (best effort), close and free; NULL is fine. */
void rdps_perf_client_close(struct rdps_perf_conn *c);

/*
 * Run one measurement (p checked with rdps_perf_params_check) and fill
 * res_out. -ENOMEM, -EINTR (stopped), -ETIMEDOUT (no completion or echo
 * within p->timeout_ms), -EIO (an operation completed with an error),
 * -EOPNOTSUPP (the transport lacks the op), or a post's error; each with
 * rdps_errmsg() set. The local references (rdps_perf_op_is_local) need
 * no connection: c may be NULL; RDPS_PERF_PINGPONG starts and joins one
 * thread of its own.
 */
int rdps_perf_run(struct rdps_perf_conn *c, const struct rdps_perf_params *p,
		  struct rdps_perf_result *res_out);

/* Benchmark server ---------------------------------------------------- */

struct rdps_perf_server;

/*
 * Open a transport for url with cfg (NULL: defaults), allocate and
 * register the server region and listen on url with its packed key as
 * private data. -EADDRINUSE, -EINVAL (malformed url) etc. from the
 * transport. Everything is undone on failure.
 */
int rdps_perf_server_open(const char *url, const struct rdps_tp_cfg *cfg,
			  struct rdps_perf_server **s_out);
/* The connectable URL (with the real port after port 0). */
int rdps_perf_server_url(struct rdps_perf_server *s, char *buf, size_t len);
/* The transport's name ("shm", "tcp", ...). */
const char *rdps_perf_server_transport(struct rdps_perf_server *s);

/*
 * Wait up to timeout_ms for one client and take part in its write
 * ping-pong until it says goodbye (0), disappears (-ECONNRESET) or *stop
 * becomes non-zero (-EINTR); then close its endpoint. -ETIMEDOUT if no
 * client came; -EPROTO if the client sent no valid key (it is closed).
 * stop may be NULL.
 */
int rdps_perf_server_serve_one(struct rdps_perf_server *s, int timeout_ms,
			       const volatile sig_atomic_t *stop);
/* Close the listener and free everything; NULL is fine. */
void rdps_perf_server_close(struct rdps_perf_server *s);

#endif /* RDPS_PERF_H */
