/* SPDX-License-Identifier: MIT */
/* test_numa.c - the NUMA placement policy on synthetic hwloc topologies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "numa.h"
#include "rdps_base.h"

#ifndef RDPS_TEST_DATA
#error "RDPS_TEST_DATA must name tests/data"
#endif

/* Two packages, one NUMA node each; mlx5_0 hangs off package 1. */
static const char *const nic_xml = RDPS_TEST_DATA "/two-numa-nic.xml";

static struct rdps_numa *open_or_fail(const char *src)
{
	struct rdps_numa *numa = NULL;

	assert_int_equal(rdps_numa_open(src, &numa), 0);
	assert_non_null(numa);
	return numa;
}

static int setup(void **state)
{
	unsetenv("RDPS_NUMA_NODE");
	unsetenv("RDPS_NUMA_TOPOLOGY");
	return 0;
}

static void nic_picks_its_node(void **state)
{
	struct rdps_numa *numa = open_or_fail(nic_xml);
	struct rdps_numa_choice c;

	assert_int_equal(rdps_numa_choose(numa, "mlx5_0", -1, &c), 0);
	assert_int_equal(c.reason, RDPS_NUMA_NIC);
	assert_int_equal(c.node, 1);
	assert_string_equal(c.cpus, "2-3");
	rdps_numa_close(numa);
}

static void override_beats_nic(void **state)
{
	struct rdps_numa *numa = open_or_fail(nic_xml);
	struct rdps_numa_choice c;

	assert_int_equal(rdps_numa_choose(numa, "mlx5_0", 0, &c), 0);
	assert_int_equal(c.reason, RDPS_NUMA_OVERRIDE);
	assert_int_equal(c.node, 0);
	assert_string_equal(c.cpus, "0-1");
	rdps_numa_close(numa);
}

static void env_override(void **state)
{
	struct rdps_numa *numa = open_or_fail(nic_xml);
	struct rdps_numa_choice c;

	setenv("RDPS_NUMA_NODE", "1", 1);
	assert_int_equal(rdps_numa_choose(numa, NULL, -1, &c), 0);
	assert_int_equal(c.reason, RDPS_NUMA_OVERRIDE);
	assert_int_equal(c.node, 1);
	setenv("RDPS_NUMA_NODE", "one", 1);
	assert_int_equal(rdps_numa_choose(numa, NULL, -1, &c), -EINVAL);
	assert_non_null(strstr(rdps_errmsg(), "RDPS_NUMA_NODE"));
	unsetenv("RDPS_NUMA_NODE");
	rdps_numa_close(numa);
}

static void missing_node_is_an_error(void **state)
{
	struct rdps_numa *numa = open_or_fail(nic_xml);
	struct rdps_numa_choice c = {.node = 42};

	assert_int_equal(rdps_numa_choose(numa, NULL, 7, &c), -EINVAL);
	assert_non_null(strstr(rdps_errmsg(), "numa node 7"));
	assert_non_null(strstr(rdps_errmsg(), "0,1"));
	assert_int_equal(c.node, 42); /* out-param untouched on failure */
	rdps_numa_close(numa);
}

static void unknown_nic_falls_back(void **state)
{
	struct rdps_numa *numa = open_or_fail(nic_xml);
	struct rdps_numa_choice c;

	assert_int_equal(rdps_numa_choose(numa, "rxe7", -1, &c), 0);
	assert_int_not_equal(c.reason, RDPS_NUMA_NIC);
	assert_true(c.node == 0 || c.node == 1);
	rdps_numa_close(numa);
}

static void four_nodes_synthetic(void **state)
{
	/* 2 packages x 2 NUMA nodes x 2 cores: node 3 owns PUs 6-7. */
	struct rdps_numa *numa =
		open_or_fail("pack:2 group:2 [numa] core:2 pu:1");
	struct rdps_numa_choice c;

	assert_int_equal(rdps_numa_choose(numa, NULL, 3, &c), 0);
	assert_int_equal(c.node, 3);
	assert_string_equal(c.cpus, "6-7");
	assert_int_equal(rdps_numa_choose(numa, NULL, 4, &c), -EINVAL);
	rdps_numa_close(numa);
}

static void bad_sources(void **state)
{
	struct rdps_numa *numa = NULL;

	assert_int_equal(rdps_numa_open("pack:banana", &numa), -EINVAL);
	assert_null(numa);
	assert_non_null(strstr(rdps_errmsg(), "synthetic"));
	assert_int_equal(rdps_numa_open("/nonexistent/topo.xml", &numa),
			 -EINVAL);
	assert_null(numa);
	assert_non_null(strstr(rdps_errmsg(), "/nonexistent/topo.xml"));
}

static void alloc_on_chosen_node(void **state)
{
	struct rdps_numa *numa = open_or_fail(NULL); /* this machine */
	struct rdps_numa_choice c;
	unsigned char *p;

	assert_int_equal(rdps_numa_choose(numa, NULL, -1, &c), 0);
	assert_true(c.node >= 0);
	p = rdps_numa_alloc(numa, 1 << 20);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 4096, 0);
	for (size_t i = 0; i < (1 << 20); i += 4096)
		assert_int_equal(p[i], 0);
	assert_int_equal(rdps_numa_bind_thread(numa), 0);
	rdps_numa_free(numa, p, 1 << 20);
	rdps_numa_close(numa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(nic_picks_its_node, setup),
		cmocka_unit_test_setup(override_beats_nic, setup),
		cmocka_unit_test_setup(env_override, setup),
		cmocka_unit_test_setup(missing_node_is_an_error, setup),
		cmocka_unit_test_setup(unknown_nic_falls_back, setup),
		cmocka_unit_test_setup(four_nodes_synthetic, setup),
		cmocka_unit_test_setup(bad_sources, setup),
		cmocka_unit_test_setup(alloc_on_chosen_node, setup),
	};

	return cmocka_run_group_tests_name("numa", tests, NULL, NULL);
}
