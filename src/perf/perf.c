/* SPDX-License-Identifier: MIT */
/* perf.c - benchmark server, client, timed loops and statistics. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rdps_base.h"
#include "perf.h"

#define PERF_R ((size_t)RDPS_PERF_REGION)
#define PERF_MAX_ITERS 100000000ull
#define PERF_POLL_BATCH 64
#define PERF_WAIT_SLICE_MS 100	    /* check stop and deadline this often */
#define PERF_IDLE_NS 100000000ull   /* server: no ping for 100 ms: idle */
#define PERF_PROBE_NS 1000000000ull /* server: probe an idle client */
#define PERF_REPORT_NS 1000000000ull

/* wr_id classes, in the top byte. */
enum {
	PERF_WR_OP = 1,
	PERF_WR_PING,
	PERF_WR_ECHO,
	PERF_WR_PROBE,
	PERF_WR_BYE,
};
#define PERF_WR(cls, n) (((uint64_t)(cls) << 56) | (n))
#define PERF_WR_CLASS(id) ((unsigned)((id) >> 56))

struct rdps_perf_server {
	struct rdps_perf_conn c;
	struct rdps_tp_listener *lst;
};

/*
 * The timing clock: rdtsc on x86-64 where the TSC runs at a constant
 * rate, which costs about half a clock_gettime() on bare metal (as UCX's
 * ucs_get_time() and perftest's get_cycles()) and far less than one in a
 * virtual machine whose clock source is hpet, where clock_gettime() is a
 * system call of about a microsecond. The TSC is used where CPUID says it
 * is invariant, or under a hypervisor that hides that bit when two
 * calibrations against CLOCK_MONOTONIC agree within 0.1%. Elsewhere, or
 * with RDPS_PERF_CLOCK=monotonic, it is rdps_now_ns(); RDPS_PERF_CLOCK=tsc
 * forces the TSC. The rate is calibrated once per process.
 */
static double tick_ns; /* nanoseconds per tick, 0 until calibrated */
static int use_tsc;
static const char *clock_name = "monotonic";

#if defined(__x86_64__)
#include <cpuid.h>

static int tsc_invariant(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
		return 0;
	__get_cpuid(0x80000007u, &a, &b, &c, &d);
	return !!(d & (1u << 8));
}

static int under_hypervisor(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return !!(c & (1u << 31));
}

static inline uint64_t tsc_read(void)
{
	return __builtin_ia32_rdtsc();
}

static inline uint64_t perf_ticks(void)
{
	return use_tsc ? tsc_read() : rdps_now_ns();
}
#else
static int tsc_invariant(void)
{
	return 0;
}

static int under_hypervisor(void)
{
	return 0;
}

static inline uint64_t tsc_read(void)
{
	return 0;
}

static inline uint64_t perf_ticks(void)
{
	return rdps_now_ns();
}
#endif

/*
 * Read the monotonic clock and the TSC at one instant: the tightest of a
 * few TSC-bracketed readings, so a preemption (of a virtual CPU, too)
 * between the two reads does not skew the calibration.
 */
static void clock_pair(uint64_t *ns, uint64_t *ticks)
{
	uint64_t a, b, n, best = UINT64_MAX;

	for (int i = 0; i < 16; i++) {
		a = tsc_read();
		n = rdps_now_ns();
		b = tsc_read();
		if (b - a < best) {
			best = b - a;
			*ns = n;
			*ticks = a + (b - a) / 2;
		}
	}
}

/* Nanoseconds per TSC tick over a window of window_ns; 0 if unusable. */
static double tsc_calibrate(uint64_t window_ns)
{
	uint64_t n0 = 0, n1 = 0, t0 = 0, t1 = 0;

	clock_pair(&n0, &t0);
	do
		clock_pair(&n1, &t1);
	while (n1 - n0 < window_ns);
	return t1 > t0 ? (double)(n1 - n0) / (double)(t1 - t0) : 0;
}

static void clock_init(void)
{
	const char *env = getenv("RDPS_PERF_CLOCK");
	int force = 0;
	double r1, r2;

	if (tick_ns)
		return;
	tick_ns = 1;
	use_tsc = 0;
	clock_name = "monotonic";
	if (env && !strcmp(env, "monotonic"))
		return;
	if (env && !strcmp(env, "tsc"))
		force = 1;
	else if (env && *env)
		rdps_warn("ignoring RDPS_PERF_CLOCK '%s': use tsc or monotonic",
			  env);
	if (force || tsc_invariant()) {
		/* 20 ms against the monotonic clock: error well under 1e-5. */
		r1 = tsc_calibrate(20000000ull);
		if (r1 > 0) {
			tick_ns = r1;
			use_tsc = 1;
			clock_name = force ? "tsc (forced)" : "tsc";
		}
		return;
	}
	if (!under_hypervisor())
		return;
	/* Three tries: a busy host can stall a virtual CPU mid-window. */
	for (int i = 0; i < 3; i++) {
		r1 = tsc_calibrate(10000000ull);
		r2 = tsc_calibrate(10000000ull);
		if (r1 > 0 && r2 > 0 && fabs(r1 - r2) < 1e-3 * r1) {
			tick_ns = (r1 + r2) / 2;
			use_tsc = 1;
			clock_name = "tsc (constant rate, virtual machine)";
			return;
		}
	}
}

const char *rdps_perf_clock(void)
{
	clock_init();
	return clock_name;
}

static inline double ticks_us(uint64_t ticks)
{
	return (double)ticks * tick_ns / 1e3;
}

static const char *const op_names[] = {"read", "write",	 "fadd",
				       "cas",  "memcpy", "pingpong"};

const char *rdps_perf_op_name(enum rdps_perf_op op)
{
	return (unsigned)op < RDPS_ARRAY_SIZE(op_names) ? op_names[op] : "?";
}

int rdps_perf_op_parse(const char *s, enum rdps_perf_op *op_out)
{
	for (size_t i = 0; s && i < RDPS_ARRAY_SIZE(op_names); i++) {
		if (!strcmp(s, op_names[i])) {
			*op_out = (enum rdps_perf_op)i;
			return 0;
		}
	}
	if (s && !strcmp(s, "cswap")) {
		*op_out = RDPS_PERF_CAS;
		return 0;
	}
	return rdps_set_error(-EINVAL,
			      "unknown operation '%s': use read, write, fadd "
			      "or cas",
			      s ? s : "");
}

void rdps_perf_params_default(struct rdps_perf_params *p)
{
	memset(p, 0, sizeof(*p));
	p->op = RDPS_PERF_READ;
	p->size = 8;
	p->iters = 10000;
	p->warmup = 1000;
	p->timeout_ms = 10000;
}

int rdps_perf_params_check(const struct rdps_perf_params *p)
{
	if ((unsigned)p->op >= RDPS_ARRAY_SIZE(op_names))
		return rdps_set_error(-EINVAL, "unknown operation %d",
				      (int)p->op);
	if ((rdps_perf_op_is_atomic(p->op) || p->op == RDPS_PERF_PINGPONG) &&
	    p->size != 8)
		return rdps_set_error(-EINVAL,
				      "%s works on 8-byte words only, not "
				      "%zu bytes: use -s 8",
				      rdps_perf_op_name(p->op), p->size);
	if (p->size < RDPS_PERF_MIN_SIZE || p->size > RDPS_PERF_MAX_SIZE)
		return rdps_set_error(-EINVAL,
				      "size %zu out of range: use %u bytes .. "
				      "4 MiB",
				      p->size, RDPS_PERF_MIN_SIZE);
	if (p->iters < 1 || p->iters > PERF_MAX_ITERS ||
	    p->warmup > PERF_MAX_ITERS)
		return rdps_set_error(-EINVAL,
				      "iterations %llu (warm-up %llu) out of "
				      "range: use 1 .. %llu",
				      (unsigned long long)p->iters,
				      (unsigned long long)p->warmup,
				      PERF_MAX_ITERS);
	if (p->op == RDPS_PERF_PINGPONG && p->outstanding)
		return rdps_set_error(-EINVAL,
				      "pingpong is a latency reference: it "
				      "takes no operations outstanding (-b)");
	if (p->outstanding > 65536)
		return rdps_set_error(-EINVAL,
				      "%u operations outstanding is too many: "
				      "use 1 .. 65536",
				      p->outstanding);
	if (p->timeout_ms < 1)
		return rdps_set_error(-EINVAL,
				      "timeout %d ms: use a positive number",
				      p->timeout_ms);
	return 0;
}

/* Statistics --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, q in (0, 1]. */
static double percentile(const double *s, size_t n, double q)
{
	size_t rank = (size_t)ceil(q * (double)n);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return s[rank - 1];
}

void rdps_perf_stats(double *s, size_t n, struct rdps_perf_result *r)
{
	double sum = 0, var = 0, avg;

	if (!n) {
		r->min_us = r->median_us = r->avg_us = r->stdev_us = 0;
		r->p99_us = r->p999_us = r->max_us = 0;
		return;
	}
	qsort(s, n, sizeof(*s), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += s[i];
	avg = sum / (double)n;
	for (size_t i = 0; i < n; i++)
		var += (s[i] - avg) * (s[i] - avg);
	r->min_us = s[0];
	r->max_us = s[n - 1];
	r->median_us = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	r->avg_us = avg;
	r->stdev_us = n > 1 ? sqrt(var / (double)(n - 1)) : 0;
	r->p99_us = percentile(s, n, 0.99);
	r->p999_us = percentile(s, n, 0.999);
}

static void result_rate(struct rdps_perf_result *r, double ns)
{
	double sec = ns / 1e9;

	r->elapsed_s = sec;
	if (ns > 0) {
		r->bw_gbps = (double)r->iters * (double)r->size / ns;
		r->mops = (double)r->iters / sec / 1e6;
	}
}

/* Connections: region, completions ----------------------------------- */

static int region_open(struct rdps_tp *tp, size_t len, unsigned access,
		       struct rdps_perf_conn *c)
{
	void *addr;
	int ret;

	rdps_clear_error();
	ret = rdps_tp_mem_alloc(tp, len, &addr);
	if (ret) {
		if (!*rdps_errmsg())
			rdps_set_error(ret,
				       "cannot allocate a %zu-byte %s region: "
				       "%s",
				       len, tp->ops->name, strerror(-ret));
		return ret;
	}
	ret = rdps_tp_mem_reg(tp, addr, len, access, &c->mr);
	if (ret) {
		if (!*rdps_errmsg())
			rdps_set_error(ret,
				       "cannot register a %zu-byte %s region: "
				       "%s",
				       len, tp->ops->name, strerror(-ret));
		rdps_tp_mem_free(tp, addr, len);
		return ret;
	}
	c->buf = addr;
	c->len = len;
	return 0;
}

static void region_close(struct rdps_perf_conn *c)
{
	if (!c->mr)
		return;
	rdps_tp_mem_dereg(c->mr);
	rdps_tp_mem_free(c->tp, c->buf, c->len);
	c->mr = NULL;
	c->buf = NULL;
}

static int comp_error(const struct rdps_tp_comp *comp)
{
	const char *what = rdps_tp_opcode_str(comp->opcode);

	if (comp->status == RDPS_TP_WC_CONN_ERR ||
	    comp->status == RDPS_TP_WC_FLUSH_ERR)
		return rdps_set_error(-ECONNRESET,
				      "the connection broke during a %s (%s): "
				      "is the peer still running?",
				      what, rdps_tp_status_str(comp->status));
	return rdps_set_error(-EIO, "a %s of %u bytes failed: %s", what,
			      comp->len, rdps_tp_status_str(comp->status));
}

static int post_error(int ret, const char *what, size_t size)
{
	if (ret == -ENOTCONN)
		return rdps_set_error(
			ret,
			"the connection is broken (posting a %s): "
			"is the peer still running?",
			what);
	if (ret == -EOPNOTSUPP)
		return rdps_set_error(ret, "this transport does not support %s",
				      what);
	return rdps_set_error(ret, "posting a %s of %zu bytes failed: %s", what,
			      size, strerror(-ret));
}

/*
 * Handle n completions: errors end the run; count finished operations of
 * class cls in *done. A goodbye from the peer sets *bye when bye != NULL.
 */
static int comps_handle(const struct rdps_tp_comp *comps, int n, unsigned cls,
			uint64_t *done, int *bye)
{
	for (int i = 0; i < n; i++) {
		const struct rdps_tp_comp *comp = &comps[i];

		if (comp->status != RDPS_TP_WC_SUCCESS)
			return comp_error(comp);
		if (comp->opcode == RDPS_TP_OP_RECV_IMM) {
			if (bye && comp->imm == RDPS_PERF_IMM_BYE)
				*bye = 1;
			continue;
		}
		if (PERF_WR_CLASS(comp->wr_id) == cls)
			(*done)++;
	}
	return 0;
}

/* Signal one post in every few, as verbs needs within sq_depth. */
static unsigned next_flags(struct rdps_perf_conn *c)
{
	unsigned every = c->tp->cfg.sq_depth / 2;

	if (every > 32)
		every = 32;
	if (++c->unsignaled >= every) {
		c->unsignaled = 0;
		return 0;
	}
	return RDPS_TP_F_UNSIGNALED;
}

static int stopped(const struct rdps_perf_params *p)
{
	return p->stop && *p->stop;
}

static int stop_error(void)
{
	return rdps_set_error(-EINTR, "interrupted");
}

static int timeout_error(const char *what, int ms)
{
	return rdps_set_error(-ETIMEDOUT,
			      "no %s within %d ms: is the peer still running? "
			      "(raise the timeout if it is just slow)",
			      what, ms);
}

/* Client operations ------------------------------------------------- */

static int post_op(struct rdps_perf_conn *c, const struct rdps_perf_params *p,
		   uint64_t wr_id, uint64_t *cas_expect)
{
	uint8_t *lbuf = c->buf + PERF_R; /* send area */
	uint64_t raddr = c->peer.addr;

	switch (p->op) {
	case RDPS_PERF_READ:
		return rdps_tp_get(c->ep, lbuf, p->size, c->mr, raddr, &c->peer,
				   wr_id, 0);
	case RDPS_PERF_WRITE:
		return rdps_tp_put(c->ep, lbuf, p->size, c->mr, raddr, &c->peer,
				   wr_id, 0);
	case RDPS_PERF_FADD:
		return rdps_tp_atomic_fadd(c->ep, 1, (uint64_t *)lbuf, c->mr,
					   raddr + RDPS_PERF_ATOMIC_OFF,
					   &c->peer, wr_id, 0);
	case RDPS_PERF_CAS:
		return rdps_tp_atomic_cswap(c->ep, *cas_expect, *cas_expect + 1,
					    (uint64_t *)lbuf, c->mr,
					    raddr + RDPS_PERF_ATOMIC_OFF,
					    &c->peer, wr_id, 0);
	default:
		return -EINVAL;
	}
}

/* After a cas completed: expect what the word holds now. */
static void cas_update(struct rdps_perf_conn *c, uint64_t *expect)
{
	uint64_t old = *(volatile uint64_t *)(c->buf + PERF_R);

	*expect = old == *expect ? old + 1 : old;
}

/*
 * A deadline that starts on the first slow path, so the fast path takes no
 * clock reading beyond the timing ones.
 */
struct deadline {
	uint64_t at; /* rdps_now_ns() value; 0 until armed */
	int ms;
	unsigned spins;
};

static int deadline_passed(struct deadline *d)
{
	uint64_t now = rdps_now_ns();

	if (!d->at) {
		d->at = now + (uint64_t)d->ms * 1000000ull;
		return 0;
	}
	return now > d->at;
}

/*
 * For retry loops that spin without sleeping: arm at once, then read the
 * clock only once in 1024 calls (it can be a system call in a VM).
 */
static int deadline_spun(struct deadline *d)
{
	if (d->at && ++d->spins % 1024)
		return 0;
	return deadline_passed(d);
}

/*
 * Poll until *done reaches want. Busy mode spins on poll; the others poll
 * once and then let rdps_tp_wait() spin or sleep as configured.
 */
static int wait_done(struct rdps_perf_conn *c, const struct rdps_perf_params *p,
		     uint64_t *done, uint64_t want)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	struct deadline dl = {0, p->timeout_ms, 0};
	int busy = c->tp->cfg.poll_mode == RDPS_TP_POLL_BUSY;
	unsigned spins = 0;
	int n, ret;

	while (*done < want) {
		n = rdps_tp_poll(c->tp, comps, PERF_POLL_BATCH);
		if (!n && busy && ++spins % 4096)
			continue;
		if (!n && !busy)
			n = rdps_tp_wait(c->tp, comps, PERF_POLL_BATCH,
					 PERF_WAIT_SLICE_MS);
		if (n < 0)
			return rdps_set_error(n,
					      "polling completions failed: %s",
					      strerror(-n));
		ret = comps_handle(comps, n, PERF_WR_OP, done, NULL);
		if (ret)
			return ret;
		if (n)
			continue;
		if (stopped(p))
			return stop_error();
		if (deadline_passed(&dl))
			return timeout_error("completion", p->timeout_ms);
	}
	return 0;
}

/* Post, and on -EAGAIN (queue full) poll and retry until the deadline. */
static int post_retry(struct rdps_perf_conn *c,
		      const struct rdps_perf_params *p, uint64_t wr_id,
		      uint64_t *cas_expect, uint64_t *done)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	struct deadline dl = {0, p->timeout_ms, 0};
	int ret, n;

	for (;;) {
		ret = post_op(c, p, wr_id, cas_expect);
		if (ret != -EAGAIN)
			break;
		n = rdps_tp_poll(c->tp, comps, PERF_POLL_BATCH);
		if (n < 0)
			return n;
		ret = comps_handle(comps, n, PERF_WR_OP, done, NULL);
		if (ret)
			return ret;
		if (deadline_spun(&dl))
			return timeout_error("free queue slot", p->timeout_ms);
	}
	return ret ? post_error(ret, rdps_perf_op_name(p->op), p->size) : 0;
}

/* Report progress about once a second; cheap to call every iteration. */
static void maybe_report(const struct rdps_perf_params *p, uint64_t i,
			 uint64_t *last_ns)
{
	uint64_t now;

	if (!p->progress || i <= p->warmup || (i - p->warmup) % 1024)
		return;
	now = rdps_now_ns();
	if (now - *last_ns >= PERF_REPORT_NS) {
		*last_ns = now;
		p->progress(p->progress_arg, i - p->warmup, p->iters);
	}
}

/* post_op for lat_loop_op: the operation a constant, the operands in
 * registers. */
static inline __attribute__((always_inline)) int
lat_post(enum rdps_perf_op op, struct rdps_tp_ep *ep, uint8_t *lbuf,
	 size_t size, struct rdps_tp_mr *mr, uint64_t raddr,
	 const struct rdps_tp_rkey *rk, uint64_t wr_id, uint64_t expect)
{
	if (op == RDPS_PERF_READ)
		return rdps_tp_get(ep, lbuf, size, mr, raddr, rk, wr_id, 0);
	if (op == RDPS_PERF_FADD)
		return rdps_tp_atomic_fadd(ep, 1, (uint64_t *)lbuf, mr,
					   raddr + RDPS_PERF_ATOMIC_OFF, rk,
					   wr_id, 0);
	return rdps_tp_atomic_cswap(ep, expect, expect + 1, (uint64_t *)lbuf,
				    mr, raddr + RDPS_PERF_ATOMIC_OFF, rk, wr_id,
				    0);
}

/*
 * One operation in flight: time post to completion, reading the clock
 * once every `every` operations (1: per operation, as ucx_perftest; more:
 * a batch, timed as a whole). samples (n / every of them, may be NULL)
 * receive the ticks of each timed stretch, not yet divided by every nor
 * in microseconds. *start_out is the clock when the first of the n began.
 *
 * The loop is kept lean because at shm speed (20-30 ns an operation) the
 * harness is a third of what it times: it is compiled once per operation
 * (as ucx_perftest's loops are templates of theirs), keeps its operands
 * in registers, checks the likely case, one completion of the operation
 * just posted, inline and leaves everything else (-EAGAIN, other
 * completions, none yet, errors) to the general helpers.
 */
static inline __attribute__((always_inline)) int
lat_loop_op(enum rdps_perf_op op, struct rdps_perf_conn *c,
	    const struct rdps_perf_params *p, uint64_t first, uint64_t n,
	    unsigned every, double *samples, uint64_t *expect_io,
	    uint64_t *start_out)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	struct rdps_tp_ep *ep = c->ep;
	struct rdps_tp *tp = c->tp;
	struct rdps_tp_mr *mr = c->mr;
	const struct rdps_tp_rkey *rk = &c->peer;
	uint8_t *lbuf = c->buf + PERF_R; /* send area */
	uint64_t raddr = c->peer.addr, size = p->size;
	uint64_t done = first, expect = *expect_io, last = rdps_now_ns();
	uint64_t t0, t1 = perf_ticks(), k = 0;
	unsigned left = every;
	int ret, got;

	*start_out = t1;
	t0 = t1;
	for (uint64_t i = first; i < first + n; i++) {
		uint64_t wr_id = PERF_WR(PERF_WR_OP, i);

		ret = lat_post(op, ep, lbuf, size, mr, raddr, rk, wr_id,
			       expect);
		if (rdps_unlikely(ret)) {
			ret = ret == -EAGAIN
				      ? post_retry(c, p, wr_id, &expect, &done)
				      : post_error(ret, rdps_perf_op_name(op),
						   size);
			if (ret)
				return ret;
		}
		got = rdps_tp_poll(tp, comps, PERF_POLL_BATCH);
		if (rdps_likely(got == 1 && comps[0].wr_id == wr_id &&
				comps[0].status == RDPS_TP_WC_SUCCESS &&
				comps[0].opcode != RDPS_TP_OP_RECV_IMM)) {
			done++;
		} else {
			ret = got < 0 ? rdps_set_error(got,
						       "polling completions "
						       "failed: %s",
						       strerror(-got))
				      : comps_handle(comps, got, PERF_WR_OP,
						     &done, NULL);
			if (!ret)
				ret = wait_done(c, p, &done, i + 1);
			if (ret)
				return ret;
		}
		if (op == RDPS_PERF_CAS)
			cas_update(c, &expect);
		if (--left)
			continue;
		left = every;
		t1 = perf_ticks();
		if (samples)
			samples[k++] = (double)(t1 - t0);
		t0 = t1;
		/* maybe_report's own test, inline; the per-operation pass
		 * only (the batched one runs past p->iters). */
		if (rdps_unlikely(p->progress != NULL) && every == 1 &&
		    i > p->warmup && !((i - p->warmup) % 1024))
			maybe_report(p, i, &last);
	}
	*expect_io = expect;
	return 0;
}

static int lat_loop(struct rdps_perf_conn *c, const struct rdps_perf_params *p,
		    uint64_t first, uint64_t n, unsigned every, double *samples,
		    uint64_t *expect_io, uint64_t *start_out)
{
	switch (p->op) {
	case RDPS_PERF_READ:
		return lat_loop_op(RDPS_PERF_READ, c, p, first, n, every,
				   samples, expect_io, start_out);
	case RDPS_PERF_FADD:
		return lat_loop_op(RDPS_PERF_FADD, c, p, first, n, every,
				   samples, expect_io, start_out);
	default:
		return lat_loop_op(RDPS_PERF_CAS, c, p, first, n, every,
				   samples, expect_io, start_out);
	}
}

/* Per-operation pass (after the warm-up); then, when one operation takes
 * under RDPS_PERF_BATCH_BELOW_US, the batched pass. */
static int run_lat_op(struct rdps_perf_conn *c,
		      const struct rdps_perf_params *p, double *samples,
		      uint64_t *elapsed, struct rdps_perf_result *r)
{
	uint64_t nb = p->iters / RDPS_PERF_BATCH, expect = 0, start, t;
	double *bs;
	int ret;

	if (p->warmup) {
		ret = lat_loop(c, p, 0, p->warmup, 1, NULL, &expect, &start);
		if (ret)
			return ret;
	}
	ret = lat_loop(c, p, p->warmup, p->iters, 1, samples, &expect, &start);
	t = perf_ticks();
	if (ret)
		return ret;
	*elapsed = t - start;
	for (uint64_t i = 0; i < p->iters; i++)
		samples[i] = samples[i] * tick_ns / 1e3;
	rdps_perf_stats(samples, p->iters, r);
	if (!nb || r->median_us >= RDPS_PERF_BATCH_BELOW_US)
		return 0;
	bs = malloc(nb * sizeof(*bs));
	if (!bs)
		return rdps_set_error(-ENOMEM, "cannot allocate %llu samples",
				      (unsigned long long)nb);
	ret = lat_loop(c, p, p->warmup + p->iters, nb * RDPS_PERF_BATCH,
		       RDPS_PERF_BATCH, bs, &expect, &start);
	if (!ret) {
		struct rdps_perf_result b;

		for (uint64_t i = 0; i < nb; i++)
			bs[i] = bs[i] * tick_ns / 1e3 / RDPS_PERF_BATCH;
		rdps_perf_stats(bs, nb, &b);
		r->batch_us = b.median_us;
	}
	free(bs);
	return ret;
}

/*
 * Write ping-pong: put a message whose last word is a fresh sequence value
 * into the end of the server's region, spin on the end of our receive area
 * until the server's echo brings the same value back. Half the round trip
 * is the latency. Completions of our puts are reaped on the way (only
 * every few are signaled).
 */
static int run_lat_write(struct rdps_perf_conn *c,
			 const struct rdps_perf_params *p, double *samples,
			 uint64_t *elapsed)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	const uint64_t *rx = (const uint64_t *)(c->buf + PERF_R - 8);
	uint64_t *tx = (uint64_t *)(c->buf + 2 * PERF_R - 8);
	const uint8_t *src = c->buf + 2 * PERF_R - p->size;
	uint64_t raddr = c->peer.addr + PERF_R - p->size;
	uint64_t total = p->warmup + p->iters, done = 0;
	uint64_t t0, t1 = perf_ticks(), v, start = 0, last = rdps_now_ns();
	struct deadline dl;
	unsigned flags, spins;
	int ret, n;

	for (uint64_t i = 0; i < total; i++) {
		t0 = t1;
		c->seq = rdps_perf_ping_next(c->seq);
		v = rdps_perf_ping_word(p->size, c->seq);
		__atomic_store_n(tx, v, __ATOMIC_RELEASE);
		flags = next_flags(c);
		dl.at = 0;
		dl.ms = p->timeout_ms;
		dl.spins = 0;
		if (i == p->warmup)
			start = t0;
		for (;;) {
			ret = rdps_tp_put(c->ep, src, p->size, c->mr, raddr,
					  &c->peer, PERF_WR(PERF_WR_PING, i),
					  flags);
			if (ret != -EAGAIN)
				break;
			n = rdps_tp_poll(c->tp, comps, PERF_POLL_BATCH);
			ret = n < 0 ? n
				    : comps_handle(comps, n, PERF_WR_PING,
						   &done, NULL);
			if (ret)
				return ret;
			if (deadline_spun(&dl))
				return timeout_error("free queue slot",
						     p->timeout_ms);
		}
		if (ret)
			return post_error(ret, "write", p->size);
		spins = 0;
		while (__atomic_load_n(rx, __ATOMIC_ACQUIRE) != v) {
			n = rdps_tp_poll(c->tp, comps, PERF_POLL_BATCH);
			ret = n < 0 ? n
				    : comps_handle(comps, n, PERF_WR_PING,
						   &done, NULL);
			if (ret)
				return ret;
			if (++spins % 4096)
				continue;
			if (stopped(p))
				return stop_error();
			if (deadline_passed(&dl))
				return timeout_error("echo from the server",
						     p->timeout_ms);
		}
		t1 = perf_ticks();
		if (i >= p->warmup)
			samples[i - p->warmup] = ticks_us(t1 - t0) / 2;
		maybe_report(p, i, &last);
	}
	*elapsed = perf_ticks() - start;
	return 0;
}

/* Keep p->outstanding operations in flight until count have completed. */
static int run_bw_pass(struct rdps_perf_conn *c,
		       const struct rdps_perf_params *p, uint64_t count,
		       int measured, uint64_t *elapsed)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	struct deadline dl = {0, p->timeout_ms, 0};
	uint64_t posted = 0, done = 0, expect = 0, before;
	uint64_t start = perf_ticks(), last = rdps_now_ns();
	int busy = c->tp->cfg.poll_mode == RDPS_TP_POLL_BUSY;
	unsigned spins = 0;
	int ret, n;

	while (done < count) {
		while (posted < count && posted - done < p->outstanding) {
			ret = post_op(c, p, PERF_WR(PERF_WR_OP, posted),
				      &expect);
			if (ret == -EAGAIN)
				break;
			if (ret)
				return post_error(ret, rdps_perf_op_name(p->op),
						  p->size);
			posted++;
		}
		before = done;
		n = rdps_tp_poll(c->tp, comps, PERF_POLL_BATCH);
		if (!n && !busy)
			n = rdps_tp_wait(c->tp, comps, PERF_POLL_BATCH,
					 PERF_WAIT_SLICE_MS);
		if (n < 0)
			return rdps_set_error(n,
					      "polling completions failed: %s",
					      strerror(-n));
		ret = comps_handle(comps, n, PERF_WR_OP, &done, NULL);
		if (ret)
			return ret;
		if (p->op == RDPS_PERF_CAS && n)
			cas_update(c, &expect);
		if (done != before) {
			dl.at = 0;
			if (measured && p->progress &&
			    done / 1024 != before / 1024)
				maybe_report(p, p->warmup + done / 1024 * 1024,
					     &last);
			continue;
		}
		if (busy && ++spins % 4096)
			continue;
		if (stopped(p))
			return stop_error();
		if (deadline_passed(&dl))
			return timeout_error("completion", p->timeout_ms);
	}
	*elapsed = perf_ticks() - start;
	return 0;
}

/* Local reference: memcpy between two buffers of p->size. */
static int run_memcpy(const struct rdps_perf_params *p, double *samples,
		      uint64_t *elapsed)
{
	size_t len = (p->size + 4095) & ~(size_t)4095;
	uint64_t t0, t1, start = 0, last = rdps_now_ns();
	uint8_t *src, *dst;
	int ret = 0;

	src = aligned_alloc(4096, len);
	dst = aligned_alloc(4096, len);
	if (!src || !dst) {
		ret = rdps_set_error(-ENOMEM,
				     "cannot allocate 2 x %zu bytes for memcpy",
				     len);
		goto out;
	}
	memset(src, 0x5a, len);
	memset(dst, 0, len);
	for (uint64_t i = 0; i < p->warmup + p->iters; i++) {
		t0 = perf_ticks();
		if (i == p->warmup)
			start = t0;
		memcpy(dst, src, p->size);
		/* Keep the copy: the compiler must assume dst is read. */
		__asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
		if (samples && i >= p->warmup) {
			t1 = perf_ticks();
			samples[i - p->warmup] = ticks_us(t1 - t0);
		}
		maybe_report(p, i, &last);
		if (stopped(p)) {
			ret = stop_error();
			goto out;
		}
	}
	*elapsed = perf_ticks() - start;
out:
	free(src);
	free(dst);
	return ret;
}

/* RDPS_PERF_PINGPONG's two cache lines, and the echo thread's orders. */
struct pingpong {
	_Alignas(64) uint64_t ping;  /* written by the timing thread */
	_Alignas(64) uint64_t pong;  /* written by the echo thread */
	_Alignas(64) uint64_t total; /* echoes to make */
	int stop;		     /* leave early */
};

static void *pingpong_echo(void *arg)
{
	struct pingpong *pp = arg;

	for (uint64_t i = 1; i <= pp->total; i++) {
		while (__atomic_load_n(&pp->ping, __ATOMIC_ACQUIRE) != i)
			if (__atomic_load_n(&pp->stop, __ATOMIC_RELAXED))
				return NULL;
		__atomic_store_n(&pp->pong, i, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * The floor under run_lat_write: the same timing (a sample is half the
 * ticks between two consecutive echoes) of the same exchange, an 8-byte
 * store into a line the other side spins on, with no transport and no
 * poll between the spins. What is left is the cost of moving a cache line
 * from one core to the other and back, which every ping-pong of writes
 * pays (ucx_perftest's ucp_put_lat as much as rdps-perf's write).
 */
static int run_pingpong(const struct rdps_perf_params *p, double *samples,
			uint64_t *elapsed)
{
	uint64_t total = p->warmup + p->iters, t0, t1, start = 0;
	uint64_t last = rdps_now_ns();
	struct pingpong *pp;
	struct deadline dl;
	pthread_t th;
	unsigned spins;
	int ret = 0;

	pp = aligned_alloc(64, sizeof(*pp));
	if (!pp)
		return rdps_set_error(-ENOMEM, "cannot allocate %zu bytes",
				      sizeof(*pp));
	memset(pp, 0, sizeof(*pp));
	pp->total = total;
	ret = -pthread_create(&th, NULL, pingpong_echo, pp);
	if (ret) {
		free(pp);
		return rdps_set_error(ret, "cannot start the echo thread: %s",
				      strerror(-ret));
	}
	t1 = perf_ticks();
	for (uint64_t i = 0; i < total; i++) {
		t0 = t1;
		if (i == p->warmup)
			start = t0;
		__atomic_store_n(&pp->ping, i + 1, __ATOMIC_RELEASE);
		dl.at = 0;
		dl.ms = p->timeout_ms;
		dl.spins = 0;
		spins = 0;
		while (__atomic_load_n(&pp->pong, __ATOMIC_ACQUIRE) != i + 1) {
			if (++spins % 4096)
				continue;
			if (stopped(p)) {
				ret = stop_error();
				goto out;
			}
			if (deadline_passed(&dl)) {
				ret = timeout_error(
					"echo from the other thread",
					p->timeout_ms);
				goto out;
			}
		}
		t1 = perf_ticks();
		if (i >= p->warmup)
			samples[i - p->warmup] = ticks_us(t1 - t0) / 2;
		maybe_report(p, i, &last);
		/* The echo rarely takes 4096 spins: look here too. */
		if (!(i % 1024) && stopped(p)) {
			ret = stop_error();
			goto out;
		}
	}
	*elapsed = perf_ticks() - start;
out:
	__atomic_store_n(&pp->stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	free(pp);
	return ret;
}

int rdps_perf_run(struct rdps_perf_conn *c, const struct rdps_perf_params *p,
		  struct rdps_perf_result *res_out)
{
	struct rdps_perf_result r;
	double *samples = NULL;
	uint64_t ticks = 0;
	int ret, lat_op = 0;

	ret = rdps_perf_params_check(p);
	if (ret)
		return ret;
	if (!rdps_perf_op_is_local(p->op) && (!c || !c->ep))
		return rdps_set_error(-ENOTCONN, "not connected to a server");
	memset(&r, 0, sizeof(r));
	r.op = p->op;
	r.size = p->size;
	r.iters = p->iters;
	r.outstanding = p->outstanding;
	if (!p->outstanding) {
		samples = malloc(p->iters * sizeof(*samples));
		if (!samples)
			return rdps_set_error(-ENOMEM,
					      "cannot allocate %llu samples: "
					      "use fewer iterations (-n)",
					      (unsigned long long)p->iters);
	}
	clock_init();
	if (p->op == RDPS_PERF_MEMCPY) {
		ret = run_memcpy(p, samples, &ticks);
	} else if (p->op == RDPS_PERF_PINGPONG) {
		ret = run_pingpong(p, samples, &ticks);
	} else if (p->outstanding) {
		ret = p->warmup ? run_bw_pass(c, p, p->warmup, 0, &ticks) : 0;
		if (!ret)
			ret = run_bw_pass(c, p, p->iters, 1, &ticks);
	} else if (p->op == RDPS_PERF_WRITE) {
		ret = run_lat_write(c, p, samples, &ticks);
	} else {
		lat_op = 1;
		ret = run_lat_op(c, p, samples, &ticks, &r);
	}
	if (!ret) {
		/* run_lat_op makes its own statistics. */
		if (samples && !lat_op)
			rdps_perf_stats(samples, p->iters, &r);
		result_rate(&r, ticks_us(ticks) * 1e3);
		*res_out = r;
	}
	free(samples);
	return ret;
}

/* Client ------------------------------------------------------------ */

static int unpack_peer(struct rdps_perf_conn *c, const char *who)
{
	struct rdps_tp_rkey_wire w;
	int ret;

	if (c->ep->peer_priv_len != sizeof(w))
		return rdps_set_error(-EPROTO,
				      "the %s sent %u bytes of private data, "
				      "not an rdps-perf key: run rdps-perf on "
				      "both sides",
				      who, c->ep->peer_priv_len);
	memcpy(&w, c->ep->peer_priv, sizeof(w));
	ret = rdps_tp_rkey_unpack(c->ep, &w, &c->peer);
	if (ret)
		return rdps_set_error(-EPROTO,
				      "the %s sent a malformed key: run "
				      "rdps-perf on both sides",
				      who);
	if (c->peer.len < PERF_R)
		return rdps_set_error(
			-EPROTO,
			"the %s's region has %llu bytes, rdps-perf "
			"needs %zu: run the same rdps-perf version "
			"on both sides",
			who, (unsigned long long)c->peer.len, PERF_R);
	return 0;
}

int rdps_perf_client_open(const char *url, const struct rdps_tp_cfg *cfg,
			  int timeout_ms, struct rdps_perf_conn **c_out)
{
	struct rdps_tp_rkey_wire w;
	struct rdps_perf_conn *c;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return rdps_set_error(-ENOMEM, "out of memory");
	ret = rdps_tp_open(url, cfg, &c->tp);
	if (ret)
		goto err_free;
	ret = region_open(
		c->tp, 2 * PERF_R,
		RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_WRITE, c);
	if (ret)
		goto err_close_tp;
	c->tp->ops->rkey_pack(c->mr, &w);
	rdps_clear_error();
	ret = rdps_tp_connect(c->tp, url, &w, sizeof(w), &c->ep, timeout_ms);
	if (ret) {
		if (!*rdps_errmsg())
			rdps_set_error(ret, "cannot connect to %s: %s%s", url,
				       strerror(-ret),
				       ret == -ECONNREFUSED
					       ? " (is rdps-perf --server "
						 "running there?)"
					       : "");
		goto err_region;
	}
	ret = unpack_peer(c, "server");
	if (ret)
		goto err_ep;
	*c_out = c;
	return 0;

err_ep:
	rdps_tp_ep_close(c->ep);
err_region:
	region_close(c);
err_close_tp:
	rdps_tp_close(c->tp);
err_free:
	free(c);
	return ret;
}

/* Say goodbye so the server moves on at once; best effort. */
static void client_bye(struct rdps_perf_conn *c)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	uint64_t deadline = rdps_now_ns() + 1000000000ull, done = 0;
	int n;

	if (rdps_tp_put_imm(c->ep, c->buf, 0, c->mr, c->peer.addr, &c->peer,
			    RDPS_PERF_IMM_BYE, PERF_WR(PERF_WR_BYE, 0), 0))
		return;
	while (!done && rdps_now_ns() < deadline) {
		n = rdps_tp_wait(c->tp, comps, PERF_POLL_BATCH, 10);
		if (n < 0 || comps_handle(comps, n, PERF_WR_BYE, &done, NULL))
			return;
	}
}

void rdps_perf_client_close(struct rdps_perf_conn *c)
{
	if (!c)
		return;
	if (c->ep) {
		client_bye(c);
		rdps_tp_ep_close(c->ep);
	}
	region_close(c);
	rdps_tp_close(c->tp);
	free(c);
}

/* Server ------------------------------------------------------------ */

int rdps_perf_server_open(const char *url, const struct rdps_tp_cfg *cfg,
			  struct rdps_perf_server **s_out)
{
	struct rdps_tp_rkey_wire w;
	struct rdps_perf_server *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return rdps_set_error(-ENOMEM, "out of memory");
	ret = rdps_tp_open(url, cfg, &s->c.tp);
	if (ret)
		goto err_free;
	ret = region_open(s->c.tp, PERF_R,
			  RDPS_TP_ACCESS_REMOTE_READ |
				  RDPS_TP_ACCESS_REMOTE_WRITE |
				  RDPS_TP_ACCESS_REMOTE_ATOMIC,
			  &s->c);
	if (ret)
		goto err_close_tp;
	s->c.tp->ops->rkey_pack(s->c.mr, &w);
	rdps_clear_error();
	ret = rdps_tp_listen(s->c.tp, url, &w, sizeof(w), &s->lst);
	if (ret) {
		if (!*rdps_errmsg())
			rdps_set_error(ret, "cannot listen on %s: %s%s", url,
				       strerror(-ret),
				       ret == -EADDRINUSE
					       ? " (pick another port, or "
						 "port 0 for any free one)"
					       : "");
		goto err_region;
	}
	*s_out = s;
	return 0;

err_region:
	region_close(&s->c);
err_close_tp:
	rdps_tp_close(s->c.tp);
err_free:
	free(s);
	return ret;
}

int rdps_perf_server_url(struct rdps_perf_server *s, char *buf, size_t len)
{
	return rdps_tp_listener_url(s->lst, buf, len);
}

const char *rdps_perf_server_transport(struct rdps_perf_server *s)
{
	return s->c.tp->ops->name;
}

uint64_t rdps_perf_ping_next(uint64_t counter)
{
	return counter >= RDPS_PERF_SEQ_MAX ? 1 : counter + 1;
}

uint64_t rdps_perf_ping_word(size_t size, uint64_t counter)
{
	return counter << RDPS_PERF_SEQ_SIZE_BITS | (uint64_t)size;
}

int rdps_perf_ping_check(uint64_t prev, uint64_t v, size_t *size_out)
{
	uint64_t want = rdps_perf_ping_next(prev >> RDPS_PERF_SEQ_SIZE_BITS);
	size_t size = (size_t)(v & ((1ull << RDPS_PERF_SEQ_SIZE_BITS) - 1));

	if (v >> RDPS_PERF_SEQ_SIZE_BITS != want)
		return 0;
	if (size < RDPS_PERF_MIN_SIZE || size > RDPS_PERF_MAX_SIZE)
		return rdps_set_error(
			-EPROTO,
			"the client sent a ping of %zu bytes: run "
			"the same rdps-perf on both sides",
			size);
	*size_out = size;
	return 1;
}

/* Echo a ping of size bytes back to the client. */
static int server_echo(struct rdps_perf_conn *c, size_t size)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	struct deadline dl = {0, 10000, 0};
	uint64_t done = 0;
	unsigned flags = next_flags(c);
	int ret, n;

	for (;;) {
		ret = rdps_tp_put(c->ep, c->buf + PERF_R - size, size, c->mr,
				  c->peer.addr + PERF_R - size, &c->peer,
				  PERF_WR(PERF_WR_ECHO, 0), flags);
		if (ret != -EAGAIN)
			break;
		n = rdps_tp_poll(c->tp, comps, PERF_POLL_BATCH);
		ret = n < 0 ? n
			    : comps_handle(comps, n, PERF_WR_ECHO, &done, NULL);
		if (ret)
			return ret;
		if (deadline_spun(&dl))
			return timeout_error("free queue slot", dl.ms);
	}
	return ret ? post_error(ret, "write", size) : 0;
}

static int server_loop(struct rdps_perf_conn *c,
		       const volatile sig_atomic_t *stop)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	const uint64_t *flag = (const uint64_t *)(c->buf + PERF_R - 8);
	uint64_t prev = 0, v, now, last_ping = rdps_now_ns();
	uint64_t last_probe = last_ping, probe_done = 0;
	int busy = c->tp->cfg.poll_mode == RDPS_TP_POLL_BUSY;
	int idle = 0, pinged = 0, probing = 0, bye = 0, ret, n;
	unsigned spins = 0;
	size_t size = 0;

	for (;;) {
		v = __atomic_load_n(flag, __ATOMIC_ACQUIRE);
		ret = v == prev ? 0 : rdps_perf_ping_check(prev, v, &size);
		if (ret < 0)
			return ret;
		if (ret) {
			ret = server_echo(c, size);
			if (ret)
				return ret;
			prev = v;
			pinged = 1;
		}
		/* Idle: let the poll mode decide between spinning and
		 * sleeping; the first ping after idling waits up to 1 ms,
		 * which the client's warm-up absorbs. Busy mode never idles
		 * and spins on poll alone: rdps_tp_wait() would read the
		 * clock while spinning. */
		n = idle ? rdps_tp_wait(c->tp, comps, PERF_POLL_BATCH, 1)
			 : rdps_tp_poll(c->tp, comps, PERF_POLL_BATCH);
		if (n < 0)
			return rdps_set_error(n,
					      "polling completions failed: "
					      "%s",
					      strerror(-n));
		ret = comps_handle(comps, n, PERF_WR_PROBE, &probe_done, &bye);
		if (ret)
			return ret;
		if (bye)
			return 0;
		if (probe_done) {
			probing = 0;
			probe_done = 0;
		}
		if (!idle && ++spins % 1024)
			continue;
		now = rdps_now_ns();
		if (pinged) {
			last_ping = now;
			last_probe = now;
			pinged = 0;
		}
		idle = !busy && now - last_ping > PERF_IDLE_NS;
		if (stop && *stop)
			return rdps_set_error(-EINTR, "interrupted");
		if (probing && now - last_probe > 10 * PERF_PROBE_NS)
			return rdps_set_error(-ECONNRESET,
					      "the client stopped responding");
		if (!probing && now - last_probe > PERF_PROBE_NS) {
			/* Read 8 bytes of the client's receive area into a
			 * scratch word past the atomic one. */
			ret = rdps_tp_get(c->ep,
					  c->buf + RDPS_PERF_ATOMIC_OFF + 64, 8,
					  c->mr, c->peer.addr, &c->peer,
					  PERF_WR(PERF_WR_PROBE, 0), 0);
			if (ret == -ENOTCONN)
				return rdps_set_error(-ECONNRESET,
						      "the client went away");
			if (ret && ret != -EAGAIN)
				return post_error(ret, "probe read", 8);
			probing = !ret;
			last_probe = now;
		}
	}
}

/*
 * After the goodbye, keep the endpoint a moment so the transport can
 * acknowledge it: a transport that drops queued acknowledgements on close
 * would otherwise fail the client's goodbye with a connection error.
 */
static void server_linger(struct rdps_perf_conn *c)
{
	struct rdps_tp_comp comps[PERF_POLL_BATCH];
	uint64_t end = rdps_now_ns() + 20000000ull;

	while (rdps_now_ns() < end)
		if (rdps_tp_wait(c->tp, comps, PERF_POLL_BATCH, 5) < 0)
			break;
}

int rdps_perf_server_serve_one(struct rdps_perf_server *s, int timeout_ms,
			       const volatile sig_atomic_t *stop)
{
	struct rdps_perf_conn *c = &s->c;
	int ret;

	/* Clear the last client's sequence word before accepting: once
	 * accepted, the client may write its first ping before accept
	 * returns here (rdma_cm reports the connection on both sides
	 * independently), and a store after that would erase it, or half
	 * of it. No endpoint is open now, so nothing writes the word. */
	__atomic_store_n((uint64_t *)(c->buf + PERF_R - 8), 0,
			 __ATOMIC_RELEASE);
	rdps_clear_error();
	ret = rdps_tp_accept(s->lst, &c->ep, timeout_ms);
	if (ret) {
		if (ret != -ETIMEDOUT && !*rdps_errmsg())
			rdps_set_error(ret, "accepting a client failed: %s",
				       strerror(-ret));
		return ret;
	}
	ret = unpack_peer(c, "client");
	if (!ret) {
		c->seq = 0;
		c->unsignaled = 0;
		ret = server_loop(c, stop);
	}
	if (!ret)
		server_linger(c);
	rdps_tp_ep_close(c->ep);
	c->ep = NULL;
	return ret;
}

void rdps_perf_server_close(struct rdps_perf_server *s)
{
	if (!s)
		return;
	if (s->c.ep)
		rdps_tp_ep_close(s->c.ep);
	rdps_tp_listener_close(s->lst);
	region_close(&s->c);
	rdps_tp_close(s->c.tp);
	free(s);
}
