/* SPDX-License-Identifier: MIT */
/*
 * test_sim.c - rdps-sim's model (tools/sim/sim.c) on a profile whose costs
 * make iterations computable by hand: READ 2 us, write 1 us one way,
 * fetch-add 3 us, 0.5 us of shard CPU per message, links and clock words
 * fast enough not to matter, no wake-ups, no back-off sleeps beyond the
 * code's own. Each case states the sum it expects.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

static const struct sim_profile unit = {
	.name = "unit",
	.source = "hand-made",
	.read_us = 2,
	.write_us = 1,
	.fadd_us = 3,
	.cas_us = 3,
	.link_gbs = 1e9,
	.msg_us = 0.5,
	.atomic_mops = 1e9,
	.hot_read_mops = 1e9,
	.spin_us = 50,
	.fitted = "none",
};

static void cfg_unit(struct sim_cfg *c, enum sim_model m, unsigned w,
		     unsigned s)
{
	sim_cfg_default(c);
	c->prof = &unit;
	c->model = m;
	c->workers = w;
	c->shards = s;
	c->compute_us = 10;
	c->slack = m == SIM_SSP ? 1 : 0;
}

static void run_ok(const struct sim_cfg *c, struct sim_result *r)
{
	char err[256];

	assert_int_equal(sim_cfg_check(c, err, sizeof(err)), 0);
	assert_int_equal(sim_run(c, r), 0);
}

#define assert_near(a, b)                                                 \
	do {                                                              \
		double a_ = (a), b_ = (b);                                \
		if (fabs(a_ - b_) > 1e-3)                                 \
			fail_msg("%s = %.6f, expected %.6f", #a, a_, b_); \
	} while (0)

/* W = 1, S = 1: pull (2: header and run side by side) + compute (10) +
 * push (write 1 + shard 0.5 + credit 1) + the tick (fetch-add 3; SSP's
 * slack read, 2, beside it) = 17.5, and every iteration the same. Ops:
 * 2 READs, the 4 KiB payload's WRITE and header, (BSP) an END, the
 * fetch-add, (SSP) the slack read. */
static void t_one_worker(void **state)
{
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	cfg_unit(&c, SIM_BSP, 1, 1);
	run_ok(&c, &r);
	assert_near(r.iter_us_min, 17.5);
	assert_near(r.iter_us_max, 17.5);
	assert_near(r.ops_per_worker_iter, 6);
	assert_near(r.clock_ops_per_worker_iter, 1);
	cfg_unit(&c, SIM_SSP, 1, 1);
	run_ok(&c, &r);
	assert_near(r.iter_us_max, 17.5);
	assert_near(r.ops_per_worker_iter, 6);
	assert_near(r.clock_ops_per_worker_iter, 2);
	cfg_unit(&c, SIM_ASP, 1, 1);
	run_ok(&c, &r);
	assert_near(r.iter_us_max, 17.5);
	assert_near(r.ops_per_worker_iter, 5);
}

/*
 * BSP, W = 2, the first iteration: both pushes land on the shard at 13,
 * one after the other (13.5, 14.0; credits at 14.5 and 15.0). Worker 0
 * fetch-adds first (executed at 16), is not the last, and sends one
 * PS_WAIT at 17.5 (lands 18.5, handled 19.0); worker 1's fetch-add
 * (executed 16.5) completed the clock, so the shard answers at once: the
 * PS_RELEASE lands at 20.0. Worker 1 is the last: 2 + 10 + 3 + 3 = 18,
 * and sends a PS_DONE.
 */
static void t_two_workers(void **state)
{
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	cfg_unit(&c, SIM_BSP, 2, 1);
	c.warmup = 0;
	c.iters = 1;
	run_ok(&c, &r);
	assert_near(r.iter_us_max, 20.0);
	assert_near(r.iter_us_min, 18.0);
	/* 2 + 2 + 1 + 1 each, worker 0's PS_WAIT, worker 1's PS_DONE */
	assert_near(r.ops_per_worker_iter, 7);
}

/* Operations counted as the code posts them: S = 2 splits 4 KiB into two
 * 2 KiB runs (a READ each, beside its header) and two pushes below the
 * 4 KiB zero-copy threshold (one write-with-immediate each), an END per
 * shard: 4 + 2 + 2 + 1 = 9. 1 MiB on one shard is two sub-slot messages
 * (1 MiB - 64 of payload, then 64 bytes): 2 + 3 + 1 + 1 = 7. */
static void t_op_count(void **state)
{
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	cfg_unit(&c, SIM_BSP, 1, 2);
	run_ok(&c, &r);
	assert_near(r.ops_per_worker_iter, 9);
	cfg_unit(&c, SIM_BSP, 1, 1);
	c.model_bytes = 1 << 20;
	run_ok(&c, &r);
	assert_near(r.ops_per_worker_iter, 7);
	assert_near(r.bytes_per_worker_iter, 2.0 * (1 << 20));
}

/* A shard's CPU per iteration, BSP, W = 2, 4 KiB at 1 ns a byte: two
 * pushes staged (0.5 + 4.096 each), two ENDs (0.5 each), a PS_WAIT and
 * a PS_DONE (0.5 each), and at the second END the two pending deltas
 * applied (2 x 4.096): 19.384 us. SSP applies each push once and has no
 * END: 9.192, and the PS_DONE of the clock's last worker, 9.692. */
static void t_shard_cpu(void **state)
{
	struct sim_profile p = unit;
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	p.apply_ns_per_byte = 1;
	cfg_unit(&c, SIM_BSP, 2, 1);
	c.prof = &p;
	run_ok(&c, &r);
	assert_near(r.shard_cpu_us_per_iter, 19.384);
	cfg_unit(&c, SIM_SSP, 2, 1);
	c.prof = &p;
	run_ok(&c, &r);
	assert_near(r.shard_cpu_us_per_iter, 9.692);
}

/* BSP waits for the slowest: one worker 3x slower (compute 300) sets
 * every iteration: its own is 2 + 300 + 2.5 + 3 = 307.5 plus the queueing
 * of 4 pushes on one shard (at most 1.5); the others' iterations, which
 * start and end a little later, average to that period. Without it,
 * about 107.5. */
static void t_straggler(void **state)
{
	struct sim_cfg c;
	struct sim_result r, fast;
	char err[256];

	(void)state;
	cfg_unit(&c, SIM_BSP, 4, 1);
	c.compute_us = 100;
	run_ok(&c, &fast);
	assert_true(fast.iter_us_mean < 115);
	assert_int_equal(
		trn_spec_parse("0:3x", &c.stragglers, err, sizeof(err)), 0);
	run_ok(&c, &r);
	assert_true(r.iter_us_median >= 307.5);
	assert_true(r.iter_us_median <= 309.0);
	assert_true(fabs(r.iter_us_mean - 307.5) < 3);
	/* A-BSP cuts the round when the first worker is through: the
	 * straggler no longer sets the pace. */
	c.model = SIM_ABSP;
	run_ok(&c, &r);
	assert_true(r.iter_us_mean < 130);
}

/* The fetch-adds on shard 0 come at W per iteration: the rate is W over
 * the mean iteration time. */
static void t_atomics_rate(void **state)
{
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	cfg_unit(&c, SIM_ASP, 8, 2);
	c.compute_us = 50;
	c.iters = 200;
	run_ok(&c, &r);
	double want = 8 * 1e6 / r.iter_us_mean;

	if (fabs(r.hot_atomics_per_s - want) / want > 0.02)
		fail_msg("atomics/s %.0f, W / iteration %.0f",
			 r.hot_atomics_per_s, want);
}

/* One address serializes: 1000 fetch-adds at 2.5 M/s take 400 us, so a
 * BSP clock of 1000 workers cannot be faster. The flat counter's
 * waiters do not read the word (they send a PS_WAIT): slow reads change
 * nothing. */
/* A BSP clock alone of 1000 workers, 2.5 M atomics/s on one address. */
static void cfg_hot(struct sim_cfg *c, struct sim_profile *p, unsigned shards)
{
	*p = unit;
	p->atomic_mops = 2.5;
	p->hot_read_mops = 50;
	cfg_unit(c, SIM_BSP, 1000, shards);
	c->prof = p;
	c->clock_only = 1;
	c->iters = 10;
}

static void t_hot_word(void **state)
{
	struct sim_profile p;
	struct sim_cfg c;
	struct sim_result r, slow;

	(void)state;
	cfg_hot(&c, &p, 1);
	p.msg_us = 0.01; /* shard 0's CPU not the limit */
	c.fanin = 1;	 /* the flat counter */
	run_ok(&c, &r);
	assert_true(r.iter_us_median >= 400);
	assert_true(r.hot_util > 0.9);
	assert_true(r.hot_reads_per_s == 0);
	p.hot_read_mops = 2.5;
	run_ok(&c, &slow);
	assert_near(slow.iter_us_median, r.iter_us_median);
}

/*
 * Waking waiters: shard 0's CPU per clock of 1000 flat BSP workers
 * (clock alone) is 1000 ENDs, 999 PS_WAITs and one PS_DONE at msg_us
 * (0.5) and 999 PS_RELEASEs at release_us (0.2): 1199.8 us, more than
 * the word's 400, so the clock takes at least that long. Per worker and
 * clock: an END, the fetch-add, a PS_WAIT or the PS_DONE.
 */
static void t_shard_wakes(void **state)
{
	struct sim_profile p;
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	cfg_hot(&c, &p, 1);
	p.release_us = 0.2;
	c.fanin = 1;
	run_ok(&c, &r);
	assert_near(r.shard_cpu_us_per_iter, 1199.8);
	assert_true(r.iter_us_median >= 1199.8);
	assert_near(r.ops_per_worker_iter, 3);
}

/*
 * The last waiter pays the sends before it: BSP, W = 3, worker 2 three
 * times slower (30 us of compute). Workers 0 and 1 register their
 * PS_WAITs (handled 19.0, 19.5); worker 2's fetch-add ends at 37.5, its
 * PS_DONE is handled at 39.0, and the shard sends worker 0's PS_RELEASE
 * (the first registered; 2 us, lands 42.0) then worker 1's (lands 44.0).
 */
static void t_release_order(void **state)
{
	struct sim_profile p = unit;
	struct sim_cfg c;
	struct sim_result r;
	char err[256];

	(void)state;
	p.release_us = 2;
	cfg_unit(&c, SIM_BSP, 3, 1);
	c.prof = &p;
	c.warmup = 0;
	c.iters = 1;
	assert_int_equal(
		trn_spec_parse("2:3x", &c.stragglers, err, sizeof(err)), 0);
	run_ok(&c, &r);
	assert_near(r.iter_us_min, 37.5);
	assert_near(r.iter_us_max, 44.0);
	assert_near(r.iter_us_mean, (37.5 + 42.0 + 44.0) / 3);
}

/* Clock operations per worker and clock, as rdps-scale's clk_op counts
 * them (clock alone): BSP an END per shard, the fetch-add, a PS_WAIT or
 * the PS_DONE (S = 1: 3, S = 2: 4); SSP (slack 1) the fetch-add, the
 * slack read, and a PS_WAIT only when that read shows the clock
 * incomplete, or the PS_DONE: 2 .. 3. */
static void t_clock_ops(void **state)
{
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	for (unsigned s = 1; s <= 2; s++) {
		cfg_unit(&c, SIM_BSP, 4, s);
		c.clock_only = 1;
		run_ok(&c, &r);
		assert_near(r.ops_per_worker_iter, 2 + s);
	}
	cfg_unit(&c, SIM_SSP, 4, 1);
	c.clock_only = 1;
	run_ok(&c, &r);
	assert_true(r.ops_per_worker_iter >= 2);
	assert_true(r.ops_per_worker_iter <= 3);
}

/* The clock tree (automatic for 1000 workers: groups of 32, so 32 of
 * them): the root takes 32 fetch-adds a clock instead of 1000, so the
 * 400 us floor of one address is gone, and no line is near saturation. */
static void t_clock_tree(void **state)
{
	struct sim_profile p;
	struct sim_cfg c;
	struct sim_result flat, tree;

	(void)state;
	cfg_hot(&c, &p, 4);
	c.fanin = 1;
	run_ok(&c, &flat);
	c.fanin = 0;
	run_ok(&c, &tree);
	if (tree.iter_us_median * 4 > flat.iter_us_median)
		fail_msg("tree clock %.1f us, flat %.1f us",
			 tree.iter_us_median, flat.iter_us_median);
	/* The root's line: 32 fetch-adds a clock. */
	if (fabs(tree.hot_atomics_per_s * tree.iter_us_mean / 1e6 - 32) > 1.5)
		fail_msg("root fetch-adds a clock %.2f, want 32",
			 tree.hot_atomics_per_s * tree.iter_us_mean / 1e6);
	assert_true(tree.hot_util < 0.5);
	assert_true(tree.hot_reads_per_s == 0); /* waiters read their group */
}

/* The same configuration gives the same result, bit for bit; another
 * seed draws other random stragglers. */
static void t_deterministic(void **state)
{
	struct sim_cfg c;
	struct sim_result a, b;
	char err[256];

	(void)state;
	cfg_unit(&c, SIM_SSP, 16, 4);
	c.compute_us = 100;
	assert_int_equal(trn_spec_parse("random:0.3:2x", &c.stragglers, err,
					sizeof(err)),
			 0);
	run_ok(&c, &a);
	run_ok(&c, &b);
	assert_memory_equal(&a, &b, sizeof(a));
	c.seed = 2;
	run_ok(&c, &b);
	assert_true(a.iter_us_mean != b.iter_us_mean);
}

/*
 * The host (cpus, load): W = 1 and S = 1 are two tasks on a 2-CPU box.
 * With no load they fit: the shard sleeps only when idle past spin_us
 * (50), and then wakes on a free CPU in wake_free_us (20): with 10 us of
 * compute it never sleeps (17.5, as t_one_worker), with 100 it sleeps
 * every iteration and the push pays one wake-up (107.5 + 20; the
 * worker's own wait for the credit, 22.5, is shorter than its spin). One
 * more task of load oversubscribes the box: every hand-off is a wake-up
 * of wake_us + wake_per_proc_us x (W + S), up to wake_max_us, at the
 * shard and again at the worker waiting for its credit (SSP, 10 us of
 * compute: 17.5 + 2 x 100; with 100 + 50 x 2 capped at 150: 17.5 + 300).
 */
/* p on a 2-CPU box with no load (a wake-up on a free CPU: 20 us) and c
 * one SSP worker and one shard with it. */
static void cfg_box(struct sim_profile *p, struct sim_cfg *c)
{
	*p = unit;
	p->cpus = 2;
	p->wake_free_us = 20;
	cfg_unit(c, SIM_SSP, 1, 1);
	c->prof = p;
}

static void t_host(void **state)
{
	struct sim_profile p;
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	cfg_box(&p, &c);
	p.wake_us = 100;
	run_ok(&c, &r);
	assert_near(r.iter_us_min, 17.5);
	assert_near(r.iter_us_max, 17.5);
	c.compute_us = 100;
	run_ok(&c, &r);
	assert_near(r.iter_us_min, 127.5);
	assert_near(r.iter_us_max, 127.5);
	c.compute_us = 10;
	p.load = 1;
	run_ok(&c, &r);
	assert_near(r.iter_us_min, 217.5);
	assert_near(r.iter_us_max, 217.5);
	p.wake_per_proc_us = 50;
	p.wake_max_us = 150;
	run_ok(&c, &r);
	assert_near(r.iter_us_max, 317.5);
}

/*
 * The learned spin (transport.c rdps_tp_wait): W = 1, S = 1, SSP, 20 us
 * of compute on a 2-CPU box with no load, a wake-up on a free CPU of 20
 * us. The shard's loop waits 27 us between pushes (an iteration of 27.5
 * less its 0.5 of work), within spin_us (50). It starts asleep: its first
 * wait sleeps and halves its spin to 25, and every later one, 27 > 25,
 * sleeps too, halving it to nothing; each of those iterations pays the
 * wake-up (47.5). The 64th wait is a probe of the whole 50 us: answered,
 * so the spin is back to 50 and no later wait sleeps (27.5). Waits 1-63
 * are iterations 0-62: of the measured 5-104, 58 slow and 42 fast. A
 * fixed spin of 50 us would sleep once, in iteration 0, before the
 * measured ones.
 */
static void t_learned_spin(void **state)
{
	struct sim_profile p;
	struct sim_cfg c;
	struct sim_result r;

	(void)state;
	cfg_box(&p, &c);
	c.compute_us = 20;
	c.iters = 100;
	run_ok(&c, &r);
	assert_near(r.iter_us_min, 27.5);
	assert_near(r.iter_us_max, 47.5);
	assert_near(r.iter_us_mean, (58 * 47.5 + 42 * 27.5) / 100);
}

/*
 * The clock tree's re-reads (clock.c wrk_clock_backoff), BSP, W = 4 in
 * groups of 2, worker 3 100x slower (100 ms of compute against 1 ms):
 * the other three wait 99 ms an iteration, reading their group's release
 * word. Their tries: two at once, four after a yield, sleeps of 10, 10,
 * 20, 20, ..., 640, 640 us (14, to 2.5 ms), of 1 ms to 8 ms (about 6),
 * then an eighth of the wait so far (6 per doubling: 22 to 99 ms): about
 * 48, and at most 6 + 2 log2(100) + 7 + 6 log2(99 / 8) = 56. A back-off
 * capped at 1 ms would take over 100. Per clock besides the reads: four
 * group fetch-adds, two on the root, two releases. The flat counter's
 * waiter (W = 2) reads nothing: its fetch-add and its PS_WAIT, or the
 * PS_DONE.
 */
static void t_clock_reads(void **state)
{
	struct sim_cfg c;
	struct sim_result r;
	char err[256];
	double reads;

	(void)state;
	cfg_unit(&c, SIM_BSP, 4, 1);
	c.compute_us = 1000;
	c.fanin = 2;
	assert_int_equal(
		trn_spec_parse("3:100x", &c.stragglers, err, sizeof(err)), 0);
	run_ok(&c, &r);
	reads = (r.clock_ops_per_worker_iter * 4 - 8) / 3;
	assert_true(reads > 40);
	assert_true(reads < 56);
	cfg_unit(&c, SIM_BSP, 2, 1);
	c.compute_us = 1000;
	assert_int_equal(
		trn_spec_parse("1:100x", &c.stragglers, err, sizeof(err)), 0);
	run_ok(&c, &r);
	assert_near(r.clock_ops_per_worker_iter, 2);
}

/*
 * The flat wait's read phase (clock.c wrk_clock_reads, profile
 * wait_reads): BSP, W = 2. Worker 1 100x slower: worker 0 re-reads 6
 * times (the fetch-add's count first), then sends its PS_WAIT: fetch-add,
 * 6 reads, PS_WAIT = 8 operations, and worker 1 its fetch-add and the
 * PS_DONE: 5 a worker, however long the wait (99 ms, under the safety
 * period). Worker 1 1.6x slower (6 us later): the third re-read sees it
 * complete, no PS_WAIT: 4 and 2, 3 a worker. On connectx,
 * 32 workers and 16 shards, the clock alone: the read phase saves shard
 * 0 the 31 PS_WAITs and PS_RELEASEs, and their wake-ups, of every clock.
 */
static void t_flat_read_phase(void **state)
{
	struct sim_profile p = unit;
	struct sim_cfg c;
	struct sim_result r, none;
	/* Worker 1's compute: 1000 us 100x slower, 10 us 1.6x. */
	static const struct {
		double compute_us;
		const char *spec;
		double ops;
	} lag[] = {{1000, "1:100x", 5}, {10, "1:1.6x", 3}};
	char err[256];

	(void)state;
	p.wait_reads = 6;
	for (unsigned i = 0; i < 2; i++) {
		cfg_unit(&c, SIM_BSP, 2, 1);
		c.prof = &p;
		c.compute_us = lag[i].compute_us;
		assert_int_equal(trn_spec_parse(lag[i].spec, &c.stragglers, err,
						sizeof(err)),
				 0);
		run_ok(&c, &r);
		assert_near(r.clock_ops_per_worker_iter, lag[i].ops);
	}

	p = *sim_profile_find("connectx");
	assert_int_equal(p.wait_reads, 6);
	sim_cfg_default(&c);
	c.prof = &p;
	c.workers = 32;
	c.shards = 16;
	c.fanin = 1;
	c.clock_only = 1;
	run_ok(&c, &r);
	p.wait_reads = 0;
	run_ok(&c, &none);
	assert_true(r.iter_us_median < 0.6 * none.iter_us_median);
	assert_true(r.shard_cpu_us_per_iter < none.shard_cpu_us_per_iter);
}

/*
 * END registration (profile end_waits; server/clock.c srv_end_waits):
 * BSP, W = 2, worker 1 100x slower. Worker 0's END registered its wait,
 * so its clock is its fetch-add alone (the END is not a clock op), worker
 * 1's its fetch-add and the PS_DONE: 1.5 a worker against 2, and shard
 * 0 handles one message less a clock (msg_us 0.5).
 */
static void t_end_waits(void **state)
{
	struct sim_profile p = unit;
	struct sim_cfg c;
	struct sim_result r, wait;
	char err[256];

	(void)state;
	cfg_unit(&c, SIM_BSP, 2, 1);
	c.prof = &p;
	c.compute_us = 1000;
	assert_int_equal(
		trn_spec_parse("1:100x", &c.stragglers, err, sizeof(err)), 0);
	run_ok(&c, &wait);
	p.end_waits = 1;
	run_ok(&c, &r);
	assert_near(wait.clock_ops_per_worker_iter, 2);
	assert_near(r.clock_ops_per_worker_iter, 1.5);
	assert_near(wait.shard_cpu_us_per_iter - r.shard_cpu_us_per_iter, 0.5);
	assert_int_equal(sim_profile_find("shm")->end_waits, 1);
	assert_int_equal(sim_profile_find("connectx")->end_waits, 0);
}

static void t_bad_cfg(void **state)
{
	struct sim_cfg c;
	char err[256];

	(void)state;
	cfg_unit(&c, SIM_BSP, 0, 1);
	assert_int_equal(sim_cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "workers"));
	cfg_unit(&c, SIM_BSP, 1, 1);
	c.slack = 2;
	assert_int_equal(sim_cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "slack"));
	cfg_unit(&c, SIM_BSP, 1, 8);
	c.model_bytes = 16;
	assert_int_equal(sim_cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_null(sim_profile_find("infiniband"));
	assert_non_null(sim_profile_find("connectx"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_one_worker),
		cmocka_unit_test(t_two_workers),
		cmocka_unit_test(t_op_count),
		cmocka_unit_test(t_shard_cpu),
		cmocka_unit_test(t_straggler),
		cmocka_unit_test(t_atomics_rate),
		cmocka_unit_test(t_hot_word),
		cmocka_unit_test(t_shard_wakes),
		cmocka_unit_test(t_release_order),
		cmocka_unit_test(t_clock_ops),
		cmocka_unit_test(t_clock_tree),
		cmocka_unit_test(t_deterministic),
		cmocka_unit_test(t_host),
		cmocka_unit_test(t_learned_spin),
		cmocka_unit_test(t_clock_reads),
		cmocka_unit_test(t_flat_read_phase),
		cmocka_unit_test(t_end_waits),
		cmocka_unit_test(t_bad_cfg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
