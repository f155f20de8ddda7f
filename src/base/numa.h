/* SPDX-License-Identifier: MIT */
/*
 * numa.h - NUMA placement with hwloc: completion pollers are bound near the
 * NIC and registered memory is allocated on the NIC's NUMA node.
 *
 * Policy (rdps_numa_choose), first match wins:
 *   1. an explicit node (flag, or RDPS_NUMA_NODE in the environment);
 *   2. the NUMA node closest to the named NIC (hwloc's OpenFabrics OS
 *      device of that name, e.g. "mlx5_0" or "rxe0");
 *   3. the node of the CPUs the process is bound to now (first node);
 *   4. node 0 / the whole machine.
 * The topology is the machine's own, or one loaded from an XML file or a
 * synthetic description (for tests, or RDPS_NUMA_TOPOLOGY=FILE).
 *
 * Without hwloc (RDPS_WITH_HWLOC off) every function succeeds and does
 * nothing: node -1, plain page-aligned allocation, no binding.
 *
 * Not thread-safe: open, choose and close from one thread; bind_thread and
 * alloc may be called from any thread after choose.
 */
#ifndef RDPS_NUMA_H
#define RDPS_NUMA_H

#include <stddef.h>

struct rdps_numa;

enum rdps_numa_reason {
	RDPS_NUMA_NONE = 0, /* no topology information (no hwloc) */
	RDPS_NUMA_OVERRIDE, /* explicit node */
	RDPS_NUMA_NIC,	    /* the named NIC's node */
	RDPS_NUMA_PROCESS,  /* the process's current binding */
	RDPS_NUMA_DEFAULT,  /* nothing better known */
};

struct rdps_numa_choice {
	int node; /* NUMA node OS index, -1 unknown */
	enum rdps_numa_reason reason;
	char cpus[128]; /* the CPUs pollers bind to, as a list */
};

/*
 * Load a topology. source: NULL = this machine (or RDPS_NUMA_TOPOLOGY if
 * set), a path ending in ".xml", or a synthetic description such as
 * "pack:2 [numa] core:2 pu:1". -EINVAL with rdps_errmsg() if it can't load.
 */
int rdps_numa_open(const char *source, struct rdps_numa **numa_out);
void rdps_numa_close(struct rdps_numa *numa);

/*
 * Choose the place. nic: device name or NULL; node: explicit node or -1
 * (then RDPS_NUMA_NODE is consulted). An explicit node that doesn't exist
 * is -EINVAL naming the nodes that do; a NIC not in the topology falls
 * back to rule 3 with a warning. The choice is logged at info level.
 */
int rdps_numa_choose(struct rdps_numa *numa, const char *nic, int node,
		     struct rdps_numa_choice *choice_out);

/* Bind the calling thread to the chosen CPUs (0, or -errno). */
int rdps_numa_bind_thread(struct rdps_numa *numa);

/* Page-aligned, zeroed memory on the chosen node (falls back to any node
 * with a debug log if binding memory is not supported). */
void *rdps_numa_alloc(struct rdps_numa *numa, size_t len);
void rdps_numa_free(struct rdps_numa *numa, void *addr, size_t len);

/* Bind the pages of [addr, addr+len), not yet touched, to the chosen node
 * (memory the caller mapped itself). 0, or -errno with rdps_errmsg(). */
int rdps_numa_bind_area(struct rdps_numa *numa, void *addr, size_t len);

const char *rdps_numa_reason_str(enum rdps_numa_reason reason);

#endif /* RDPS_NUMA_H */
