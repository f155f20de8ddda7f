/* SPDX-License-Identifier: MIT */
/*
 * test_ps_logic.c - the pure logic of ps_proto.h, no transport: how a table
 * is range-partitioned over the shards (ps_shard_range) and the clock table
 * arithmetic (ps_clock_k, ps_clock_done, ps_clock_last), with values worked
 * out by hand and a simulation of SSP workers against the arrival counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ps_proto.h"

/* Check the partition of n over nshards: contiguous, covers [0, n),
 * interior boundaries 16-aligned, parts balanced to within one alignment
 * step. */
static void check_partition(uint64_t n, unsigned nshards)
{
	uint64_t prev_hi = 0, lo, hi;
	uint64_t ideal = n / nshards;

	for (unsigned s = 0; s < nshards; s++) {
		ps_shard_range(n, nshards, s, &lo, &hi);
		assert_int_equal(lo, prev_hi);
		assert_true(lo <= hi);
		assert_int_equal(lo % PS_ALIGN_ELEMS, 0);
		if (s + 1 < nshards)
			assert_int_equal(hi % PS_ALIGN_ELEMS, 0);
		/* Each part is within 16 elements (plus rounding) of n/S. */
		if (hi - lo > ideal)
			assert_true(hi - lo - ideal <= PS_ALIGN_ELEMS + 1);
		else
			assert_true(ideal - (hi - lo) <= PS_ALIGN_ELEMS + 1);
		prev_hi = hi;
	}
	assert_int_equal(prev_hi, n);
}

static void test_range_covers(void **state)
{
	static const uint64_t ns[] = {0,    1,	  15,	16,	17,	 31,
				      32,   33,	  100,	255,	256,	 1000,
				      1023, 1024, 4097, 100003, 1u << 20};

	(void)state;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		for (unsigned s = 1; s <= 17; s++)
			check_partition(ns[i], s);
	check_partition(1000000007ull, 64);
	check_partition(1000000007ull, 4096);
}

static void expect_range(uint64_t n, unsigned nshards, unsigned s,
			 uint64_t want_lo, uint64_t want_hi)
{
	uint64_t lo = 12345, hi = 67890;

	ps_shard_range(n, nshards, s, &lo, &hi);
	assert_int_equal(lo, want_lo);
	assert_int_equal(hi, want_hi);
}

static void test_range_by_hand(void **state)
{
	(void)state;
	/* 100 / 3: 33 -> 32, 66 -> 64. */
	expect_range(100, 3, 0, 0, 32);
	expect_range(100, 3, 1, 32, 64);
	expect_range(100, 3, 2, 64, 100);
	/* 1000 / 4: 250 -> 240, 500 -> 496, 750 -> 736. */
	expect_range(1000, 4, 0, 0, 240);
	expect_range(1000, 4, 1, 240, 496);
	expect_range(1000, 4, 2, 496, 736);
	expect_range(1000, 4, 3, 736, 1000);
	/* One shard owns everything, aligned or not. */
	expect_range(17, 1, 0, 0, 17);
	expect_range(64, 2, 0, 0, 32);
	expect_range(64, 2, 1, 32, 64);
	/* 40 / 3: 13 -> 0, 26 -> 16: shard 0 owns nothing. */
	expect_range(40, 3, 0, 0, 0);
	expect_range(40, 3, 1, 0, 16);
	expect_range(40, 3, 2, 16, 40);
}

static void test_range_tiny_and_empty(void **state)
{
	(void)state;
	/* 5 elements on 8 shards: everything on the last one. */
	for (unsigned s = 0; s < 7; s++)
		expect_range(5, 8, s, 0, 0);
	expect_range(5, 8, 7, 0, 5);
	/* 15 elements on 2 shards: 7 rounds down to 0. */
	expect_range(15, 2, 0, 0, 0);
	expect_range(15, 2, 1, 0, 15);
	/* n = 0: every shard owns nothing. */
	for (unsigned s = 0; s < 4; s++)
		expect_range(0, 4, s, 0, 0);
	/* A shard index past the end owns nothing at n. */
	expect_range(100, 3, 3, 100, 100);
}

static void test_range_huge(void **state)
{
	const uint64_t max = UINT64_MAX;

	(void)state;
	/* n * s would overflow 64 bits; the 128-bit product must not. */
	expect_range(max, 3, 0, 0, 0x5555555555555550ull);
	expect_range(max, 3, 1, 0x5555555555555550ull, 0xaaaaaaaaaaaaaaa0ull);
	expect_range(max, 3, 2, 0xaaaaaaaaaaaaaaa0ull, max);
	expect_range(max, 2, 0, 0, 0x7ffffffffffffff0ull);
	expect_range(max, 2, 1, 0x7ffffffffffffff0ull, max);
	check_partition(max, 7);
	check_partition(max - 1, 4096);
	check_partition(1ull << 63, 65535);
}

static void test_clock_k(void **state)
{
	(void)state;
	assert_int_equal(ps_clock_k(0), 2);
	assert_int_equal(ps_clock_k(1), 3);
	assert_int_equal(ps_clock_k(62), 64);
	assert_true(ps_clock_k(62) <= PS_CLOCK_K_MAX);
}

static void test_clock_by_hand(void **state)
{
	unsigned k;

	(void)state;
	/* BSP, one worker: K = 2; residue 0 holds clocks 0, 2, 4 ... */
	k = ps_clock_k(0);
	assert_true(ps_clock_done(1, 0, k, 1));
	assert_false(ps_clock_done(0, 0, k, 1));
	assert_false(ps_clock_done(1, 2, k, 1)); /* clock 2 needs 2 */
	assert_true(ps_clock_done(2, 2, k, 1));
	assert_true(ps_clock_last(0, 0, k, 1));
	assert_true(ps_clock_last(0, 1, k, 1));
	assert_true(ps_clock_last(1, 2, k, 1));
	assert_false(ps_clock_last(0, 2, k, 1));

	/* SSP slack 1, four workers: K = 3. Clock c is on arrive[c % 3],
	 * lap c / 3, done at 4 * (lap + 1) arrivals. */
	k = ps_clock_k(1);
	assert_int_equal(k, 3);
	assert_false(ps_clock_done(3, 0, k, 4));
	assert_true(ps_clock_done(4, 0, k, 4));
	assert_true(ps_clock_done(5, 0, k, 4)); /* lap 1 started */
	assert_false(ps_clock_done(4, 3, k, 4));
	assert_false(ps_clock_done(7, 3, k, 4));
	assert_true(ps_clock_done(8, 3, k, 4));
	assert_false(ps_clock_done(7, 5, k, 4));
	assert_true(ps_clock_done(8, 5, k, 4));
	assert_false(ps_clock_done(11, 6, k, 4));
	assert_true(ps_clock_done(12, 6, k, 4));
	assert_true(ps_clock_last(3, 0, k, 4));
	assert_false(ps_clock_last(2, 0, k, 4));
	assert_false(ps_clock_last(4, 0, k, 4));
	assert_false(ps_clock_last(3, 3, k, 4));
	assert_true(ps_clock_last(7, 3, k, 4));
	assert_true(ps_clock_last(7, 4, k, 4));
	assert_true(ps_clock_last(11, 6, k, 4));
	assert_false(ps_clock_last(10, 6, k, 4));

	/* No overflow for large clocks: lap 10^12 with 1000 workers. */
	k = ps_clock_k(3);
	assert_true(ps_clock_done(1000ull * 1000000000001ull,
				  5ull * 1000000000000ull, k, 1000));
	assert_false(ps_clock_done(1000ull * 1000000000001ull - 1,
				   5ull * 1000000000000ull, k, 1000));
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The lowest of v[0..n), and check nobody is more than slack + 1 past
 * it (the staleness bound). */
static uint64_t min_within(const uint64_t *v, unsigned n, unsigned slack)
{
	uint64_t m = v[0];

	for (unsigned j = 1; j < n; j++)
		if (v[j] < m)
			m = v[j];
	for (unsigned j = 0; j < n; j++)
		assert_true(v[j] - m <= slack + 1);
	return m;
}

#define SIM_W_MAX 6

/*
 * W workers with slack s share arrive[K], K = ps_clock_k(s), in a random
 * interleaving. A worker at clock t may finish it (fetch-add) only when
 * its wait check passed (ps_clock_done of t - 1 - s, as rdps_clock does);
 * the check and ps_clock_last must agree with the ground truth (fin[]) at
 * every step, across many laps of the counters.
 */
static void simulate(unsigned workers, unsigned slack, uint64_t seed)
{
	uint64_t arrive[PS_CLOCK_K_MAX] = {0}, fin[SIM_W_MAX] = {0};
	unsigned k = ps_clock_k(slack), lasts = 0;
	uint64_t rng = seed, min_fin;

	for (int step = 0; step < 20000; step++) {
		unsigned w = (unsigned)(splitmix64(&rng) % workers);
		uint64_t t = fin[w], old, c;
		unsigned ahead = 0, truth;

		/* The wait check before iteration t (rdps_clock step 4). */
		if (t >= 1 + slack) {
			c = t - 1 - slack;
			truth = 1;
			for (unsigned j = 0; j < workers; j++)
				truth &= fin[j] > c;
			assert_int_equal(
				ps_clock_done(arrive[c % k], c, k, workers),
				truth);
			if (!truth)
				continue; /* blocked */
		}
		/* Finish clock t. */
		for (unsigned j = 0; j < workers; j++)
			ahead += j != w && fin[j] > t;
		old = arrive[t % k]++;
		assert_int_equal(ps_clock_last(old, t, k, workers),
				 ahead == workers - 1);
		lasts += ps_clock_last(old, t, k, workers);
		fin[w]++;
		/* Nobody ever gets more than slack + 1 clocks ahead. */
		min_within(fin, workers, slack);
	}
	/* Exactly one last arrival per completed clock. */
	min_fin = min_within(fin, workers, slack);
	assert_int_equal(lasts, min_fin);
	assert_true(min_fin > 3 * k); /* the counters went round laps */
}

static void test_clock_simulation(void **state)
{
	(void)state;
	for (unsigned w = 1; w <= SIM_W_MAX; w++)
		for (unsigned s = 0; s <= 4; s++)
			simulate(w, s, 1000 * w + s);
}

/* The fan-in a configuration means (ps_fanin), and the tree's layout. */
static void test_tree_by_hand(void **state)
{
	(void)state;
	/* Automatic: flat up to 32 workers, then ceil(sqrt(W)). */
	assert_int_equal(ps_fanin(0, 1), 1);
	assert_int_equal(ps_fanin(0, 32), 1);
	assert_int_equal(ps_fanin(0, 33), 6);
	assert_int_equal(ps_fanin(0, 64), 8);
	assert_int_equal(ps_fanin(0, 1000), 32);
	assert_int_equal(ps_fanin(0, 1024), 32);
	assert_int_equal(ps_fanin(0, 1025), 33);
	assert_int_equal(ps_fanin(0, 4096), 64);
	/* Given: 1 is flat, and so is one group holding everyone. */
	assert_int_equal(ps_fanin(1, 8), 1);
	assert_int_equal(ps_fanin(3, 8), 3);
	assert_int_equal(ps_fanin(8, 8), 1);
	assert_int_equal(ps_fanin(9, 8), 1);
	assert_int_equal(ps_fanin(2, 2), 1);
	assert_int_equal(ps_fanin(2, 3), 2);
	/* 8 workers in groups of 3: 3, 3, 2 over 2 shards. */
	assert_int_equal(ps_tree_groups(3, 8), 3);
	assert_int_equal(ps_tree_size(3, 8, 0), 3);
	assert_int_equal(ps_tree_size(3, 8, 1), 3);
	assert_int_equal(ps_tree_size(3, 8, 2), 2);
	assert_int_equal(ps_tree_shard(2, 2), 0);
	assert_int_equal(ps_tree_node(2, 2), 2);
	assert_int_equal(ps_tree_node(1, 2), 1);
	/* Node 0 (the root) right after the flat words, 64-B aligned:
	 * 576 + 16 * 8 = 704 bytes of them. */
	assert_int_equal(ps_clock_node_off(8, 0), 704);
	assert_int_equal(ps_clock_node_off(8, 2), 704 + 2 * 576);
	assert_int_equal(ps_clock_node_off(3, 0), 640);
	assert_int_equal(ps_clock_region_len(8, 2), 704 + 3 * 576);
	/* Rounds count from the start clock. */
	assert_int_equal(ps_tree_round(7, 7, 3), 1);
	assert_int_equal(ps_tree_round(9, 7, 3), 1);
	assert_int_equal(ps_tree_round(10, 7, 3), 2);
}

/* Every group of every fan-in from 2 fits in its shard's clock region. */
static void test_tree_fits(void **state)
{
	(void)state;
	for (unsigned w = 1; w <= 300; w += (w < 40 ? 1 : 37))
		for (unsigned s = 1; s <= 70; s += (s < 8 ? 1 : 13))
			for (unsigned g = 2; g < w; g++) {
				unsigned groups = ps_tree_groups(g, w);
				unsigned last = groups - 1;
				uint64_t end = ps_clock_node_off(
					w, ps_tree_node(last, s) + 1);

				/* The last group has the highest node on
				 * its shard. */
				assert_true(end <= ps_clock_region_len(w, s));
				assert_true(ps_tree_shard(last, s) < s);
				assert_true(ps_tree_size(g, w, last) >= 1);
				assert_true(ps_tree_size(g, w, last) <= g);
			}
}

#define TREE_W_MAX 10

/*
 * The clock tree (ps_proto.h "Clock tree", src/worker/clock.c), one
 * remote operation per step in a random interleaving: a tick is the
 * fetch-add on the worker's group's arrive[], then, if that completed the
 * group, the fetch-add on the root's, then, if that completed the root,
 * one fetch-add into each group's release word, in random order among
 * everything else. Before its next tick a worker waits on clock t - s as
 * rdps_clock does: its group's release word >= t - s - c0 + 1 (clocks
 * before the start clock c0 are complete). Checked at every step: a
 * passed wait never comes before every worker arrived at that clock, a
 * group or the root is found complete exactly when all its members
 * arrived, nobody runs more than slack + 1 ahead, and at the end the
 * root completed every clock once and the release words count them.
 */
static void simulate_tree(unsigned workers, unsigned g, unsigned slack,
			  uint64_t c0, uint64_t seed)
{
	struct node {
		uint64_t arrive[PS_CLOCK_K_MAX], release;
	} root, grp[TREE_W_MAX];
	/* Per worker: clocks it arrived at (group fetch-add done), the
	 * clock of its tick in progress, steps left: 1 root, then releases
	 * (bit per group). */
	uint64_t arr[TREE_W_MAX], tick[TREE_W_MAX];
	unsigned root_step[TREE_W_MAX], rel_left[TREE_W_MAX];
	unsigned k = ps_clock_k(slack), groups = ps_tree_groups(g, workers);
	uint64_t rng = seed, completed = 0, min_arr;

	memset(&root, 0, sizeof(root));
	memset(grp, 0, sizeof(grp));
	memset(root_step, 0, sizeof(root_step));
	memset(rel_left, 0, sizeof(rel_left));
	for (unsigned w = 0; w < workers; w++)
		arr[w] = tick[w] = c0;
	for (int step = 0; step < 20000; step++) {
		unsigned w = (unsigned)(splitmix64(&rng) % workers);
		unsigned mine = w / g;
		uint64_t t = tick[w], r = (t - c0) % k, old;
		uint64_t round = ps_tree_round(t, c0, k);

		if (root_step[w]) { /* the group's arrival on the root */
			unsigned all = 1;

			root_step[w] = 0;
			for (unsigned j = 0; j < workers; j++)
				all &= arr[j] > t;
			old = root.arrive[r]++;
			/* Complete only once everyone arrived (the other
			 * way round waits for the last group's climb). */
			if (old + 1 == groups * round) {
				assert_true(all);
				rel_left[w] = (1u << groups) - 1;
				completed++;
			}
			continue;
		}
		if (rel_left[w]) { /* one release, any group */
			unsigned pick = (unsigned)(splitmix64(&rng) % groups);

			while (!(rel_left[w] >> pick & 1))
				pick = (pick + 1) % groups;
			rel_left[w] &= ~(1u << pick);
			grp[pick].release++;
			continue;
		}
		if (arr[w] > t) { /* tick done: the next one's wait */
			tick[w] = ++t;
			r = (t - c0) % k;
			round = ps_tree_round(t, c0, k);
		}
		if (t >= slack && t - slack > c0) {
			uint64_t c = t - slack - 1, truth = 1;
			int released = grp[mine].release >= c - c0 + 1;

			for (unsigned j = 0; j < workers; j++)
				truth &= arr[j] > c;
			/* Released implies arrived; never the other way
			 * round before the release came. */
			if (released)
				assert_true(truth);
			if (!released)
				continue; /* blocked */
		}
		/* Arrive at clock t on the group's word. */
		{
			unsigned all = 1, size = ps_tree_size(g, workers, mine);

			for (unsigned j = mine * g; j < mine * g + size; j++)
				all &= j == w || arr[j] > t;
			old = grp[mine].arrive[r]++;
			assert_int_equal(old + 1 == size * round, all);
			arr[w] = t + 1;
			root_step[w] = old + 1 == size * round;
		}
		min_within(arr, workers, slack);
	}
	/* Let the climbs in progress finish. */
	for (unsigned w = 0; w < workers; w++)
		if (root_step[w]) {
			uint64_t t = tick[w], round = ps_tree_round(t, c0, k);

			completed += root.arrive[(t - c0) % k]++ + 1 ==
				     groups * round;
			root_step[w] = 0;
		}
	min_arr = min_within(arr, workers, slack);
	assert_int_equal(completed, min_arr - c0);
	assert_true(min_arr - c0 > 3 * k); /* the counters went round laps */
	for (unsigned j = 0; j < groups; j++)
		assert_true(grp[j].release <= min_arr - c0);
}

static void test_tree_simulation(void **state)
{
	(void)state;
	for (unsigned w = 3; w <= TREE_W_MAX; w++)
		for (unsigned g = 2; g < w; g++)
			for (unsigned s = 0; s <= 3; s++)
				simulate_tree(w, g, s, (w * 7 + s) % 5 * 11,
					      100000 * w + 100 * g + s);
}

/*
 * Lost workers (ps_proto.h): the same interleaving with the two
 * fetch-adds of a tick as separate steps (arrive[], then the worker's own
 * word), workers that die at any step (also between the two), shard 0
 * publishing each death some steps later, and waiters that make up for
 * the dead as src/worker/loss.c does, one remote operation per step: read the
 * counter (seen), read the dead map, read the words, ps_makeup_wait,
 * compare-swap seen -> goal. Checked at every passed wait: every live
 * worker arrived, and the clock's real arrivals plus what was made up is
 * exactly W. And the live workers never get stuck.
 */
#define SIM_LOSS_CLOCKS 200
enum sim_phase { SIM_RUN, SIM_OWN, SIM_WAIT, SIM_MAP, SIM_WORDS, SIM_CAS };
static unsigned long sim_made_total, sim_died_between;

static void simulate_loss(unsigned workers, unsigned slack, uint64_t seed)
{
	uint64_t arrive[PS_CLOCK_K_MAX] = {0}, fin[SIM_W_MAX] = {0};
	uint64_t words[SIM_W_MAX] = {0}, snap[SIM_W_MAX], seen[SIM_W_MAX];
	uint64_t map = 0, map_snap[SIM_W_MAX], map_be;
	unsigned arrivals[SIM_LOSS_CLOCKS + 8] = {0};
	unsigned made[SIM_LOSS_CLOCKS + 8] = {0};
	int phase[SIM_W_MAX] = {0}, dead[SIM_W_MAX] = {0};
	int publish_in[SIM_W_MAX];
	unsigned k = ps_clock_k(slack), nlive = workers;
	uint64_t rng = seed;
	long step;

	for (unsigned j = 0; j < workers; j++)
		publish_in[j] = -1;
	for (step = 0; step < 4000000; step++) {
		unsigned w = (unsigned)(splitmix64(&rng) % workers), done = 1;
		uint64_t t = fin[w], c = t >= 1 + slack ? t - 1 - slack : 0;
		uint64_t goal = (uint64_t)workers * (c / k + 1);

		for (unsigned j = 0; j < workers; j++) {
			if (publish_in[j] > 0 && !--publish_in[j])
				map |= 1ull << j; /* shard 0 closed it */
			done &= dead[j] || fin[j] >= SIM_LOSS_CLOCKS;
		}
		if (done)
			break;
		/* Now and then a death, at whatever step it is in. */
		if (nlive > 1 && splitmix64(&rng) % 3000 == 0) {
			unsigned d = (unsigned)(splitmix64(&rng) % workers);

			if (!dead[d]) {
				sim_died_between += phase[d] == SIM_OWN;
				dead[d] = 1;
				nlive--;
				publish_in[d] =
					1 + (int)(splitmix64(&rng) % 50);
			}
		}
		if (dead[w] || fin[w] >= SIM_LOSS_CLOCKS)
			continue;
		switch (phase[w]) {
		case SIM_RUN:
			if (t >= 1 + slack &&
			    !ps_clock_done(arrive[c % k], c, k, workers)) {
				seen[w] = arrive[c % k];
				phase[w] = SIM_WAIT;
				break;
			}
			if (t >= 1 + slack) {
				for (unsigned j = 0; j < workers; j++)
					assert_true(dead[j] || fin[j] > c);
				assert_int_equal(arrivals[c] + made[c],
						 workers);
			}
			arrive[t % k]++;
			arrivals[t]++;
			fin[w]++;
			phase[w] = SIM_OWN;
			break;
		case SIM_OWN:
			words[w]++;
			phase[w] = SIM_RUN;
			break;
		case SIM_WAIT:
			seen[w] = arrive[c % k];
			if (ps_clock_done(seen[w], c, k, workers))
				phase[w] = SIM_RUN;
			else if (map)
				phase[w] = SIM_MAP;
			break;
		case SIM_MAP:
			map_snap[w] = map;
			phase[w] = SIM_WORDS;
			break;
		case SIM_WORDS:
			memcpy(snap, words, sizeof(snap));
			map_be = __builtin_bswap64(map_snap[w]);
			phase[w] = ps_makeup_wait(&map_be, snap, workers,
						  c + 1) < 0
					   ? SIM_CAS
					   : SIM_WAIT;
			break;
		case SIM_CAS:
			if (arrive[c % k] == seen[w] && seen[w] < goal) {
				made[c] += (unsigned)(goal - seen[w]);
				sim_made_total += goal - seen[w];
				arrive[c % k] = goal;
			}
			phase[w] = SIM_WAIT;
			break;
		}
	}
	/* Everyone left got through every clock: nobody was stuck. */
	for (unsigned j = 0; j < workers; j++)
		assert_true(dead[j] || fin[j] == SIM_LOSS_CLOCKS);
	assert_true(nlive >= 1);
}

static void test_clock_loss_simulation(void **state)
{
	(void)state;
	for (unsigned w = 2; w <= SIM_W_MAX; w++)
		for (unsigned s = 0; s <= 3; s++)
			for (uint64_t seed = 0; seed < 8; seed++)
				simulate_loss(w, s, 7919 * w + 31 * s + seed);
	/* The runs did lose workers, also between a tick's two
	 * fetch-adds, and made up for them. */
	assert_true(sim_made_total > 100);
	assert_true(sim_died_between > 0);
}

/* The dead map's bits, and who a make-up still waits for. */
static void test_makeup_wait(void **state)
{
	uint64_t map[2] = {0, 0}, words[70] = {0};

	(void)state;
	map[0] = __builtin_bswap64(1ull << 3);
	map[1] = __builtin_bswap64(1ull << (65 - 64));
	assert_true(ps_gone_bit(map, 3));
	assert_false(ps_gone_bit(map, 2));
	assert_true(ps_gone_bit(map, 65));
	assert_false(ps_gone_bit(map, 64));
	for (unsigned w = 0; w < 70; w++)
		words[w] = 5;
	words[3] = 0;  /* dead, never mind */
	words[65] = 1; /* dead too */
	assert_int_equal(ps_makeup_wait(map, words, 70, 5), -1);
	assert_int_equal(ps_makeup_wait(map, words, 70, 6), 0);
	words[64] = 4; /* live and behind */
	assert_int_equal(ps_makeup_wait(map, words, 70, 5), 64);
	assert_int_equal(ps_makeup_wait(map, words, 64, 5), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_covers),
		cmocka_unit_test(test_range_by_hand),
		cmocka_unit_test(test_range_tiny_and_empty),
		cmocka_unit_test(test_range_huge),
		cmocka_unit_test(test_clock_k),
		cmocka_unit_test(test_clock_by_hand),
		cmocka_unit_test(test_clock_simulation),
		cmocka_unit_test(test_tree_by_hand),
		cmocka_unit_test(test_tree_fits),
		cmocka_unit_test(test_tree_simulation),
		cmocka_unit_test(test_clock_loss_simulation),
		cmocka_unit_test(test_makeup_wait),
	};

	return cmocka_run_group_tests_name("ps_logic", tests, NULL, NULL);
}
