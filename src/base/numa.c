/* SPDX-License-Identifier: MIT */
/* numa.c - NUMA placement policy on hwloc (see numa.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "numa.h"
#include "rdps_base.h"

#ifdef RDPS_WITH_HWLOC
#include <hwloc.h>
#include <hwloc/linux.h>
#endif

struct rdps_numa {
#ifdef RDPS_WITH_HWLOC
	hwloc_topology_t topo;
	hwloc_bitmap_t cpuset;	/* chosen CPUs */
	hwloc_bitmap_t nodeset; /* chosen memory node */
	int live; /* the running machine, not a saved or synthetic one */
#endif
	struct rdps_numa_choice choice;
	int chosen;
};

const char *rdps_numa_reason_str(enum rdps_numa_reason reason)
{
	switch (reason) {
	case RDPS_NUMA_OVERRIDE:
		return "explicit node";
	case RDPS_NUMA_NIC:
		return "nic locality";
	case RDPS_NUMA_PROCESS:
		return "process binding";
	case RDPS_NUMA_DEFAULT:
		return "default";
	default:
		return "no topology";
	}
}

static int env_node(int node)
{
	const char *s;
	char *end;
	long v;

	if (node >= 0)
		return node;
	s = getenv("RDPS_NUMA_NODE");
	if (!s || !*s)
		return -1;
	v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 4095)
		return -2;
	return (int)v;
}

#ifdef RDPS_WITH_HWLOC

int rdps_numa_open(const char *source, struct rdps_numa **numa_out)
{
	struct rdps_numa *numa;
	const char *env = getenv("RDPS_NUMA_TOPOLOGY");
	size_t n;
	int ret = -EINVAL;

	if (!source && env && *env)
		source = env;
	numa = calloc(1, sizeof(*numa));
	if (!numa)
		return -ENOMEM;
	if (hwloc_topology_init(&numa->topo)) {
		ret = rdps_set_error(-ENOMEM, "hwloc: cannot initialise a "
					      "topology");
		goto err_free;
	}
	if (source) {
		n = strlen(source);
		if (n > 4 && !strcmp(source + n - 4, ".xml")) {
			/* A saved topology names the NIC as an OS device
			 * under its PCI parent: keep I/O objects. The live
			 * machine is asked through sysfs instead, which spares
			 * a slow PCI scan at every start. */
			hwloc_topology_set_io_types_filter(
				numa->topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
			if (hwloc_topology_set_xml(numa->topo, source)) {
				ret = rdps_set_error(
					-EINVAL,
					"cannot read hwloc topology xml '%s': "
					"%s",
					source, strerror(errno));
				goto err_destroy;
			}
		} else if (hwloc_topology_set_synthetic(numa->topo, source)) {
			ret = rdps_set_error(-EINVAL,
					     "bad synthetic topology '%s': use "
					     "e.g. 'pack:2 [numa] core:2 pu:1' "
					     "or a path ending in .xml",
					     source);
			goto err_destroy;
		}
	}
	if (hwloc_topology_load(numa->topo)) {
		ret = rdps_set_error(-EINVAL,
				     "hwloc cannot load topology "
				     "'%s': %s",
				     source ? source : "this machine",
				     strerror(errno));
		goto err_destroy;
	}
	numa->cpuset = hwloc_bitmap_alloc();
	numa->nodeset = hwloc_bitmap_alloc();
	if (!numa->cpuset || !numa->nodeset) {
		ret = -ENOMEM;
		goto err_bitmaps;
	}
	numa->choice.node = -1;
	numa->live = !source;
	*numa_out = numa;
	return 0;

err_bitmaps:
	hwloc_bitmap_free(numa->cpuset);
	hwloc_bitmap_free(numa->nodeset);
err_destroy:
	hwloc_topology_destroy(numa->topo);
err_free:
	free(numa);
	return ret;
}

void rdps_numa_close(struct rdps_numa *numa)
{
	if (!numa)
		return;
	hwloc_bitmap_free(numa->cpuset);
	hwloc_bitmap_free(numa->nodeset);
	hwloc_topology_destroy(numa->topo);
	free(numa);
}

/* Pick the first NUMA node whose memory is local to cpus; set outputs. */
static void place_on_cpus(struct rdps_numa *numa, hwloc_const_cpuset_t cpus)
{
	hwloc_obj_t node = NULL;

	while ((node = hwloc_get_next_obj_by_type(
			numa->topo, HWLOC_OBJ_NUMANODE, node)) != NULL) {
		if (hwloc_bitmap_intersects(node->cpuset, cpus))
			break;
	}
	if (!node)
		node = hwloc_get_obj_by_type(numa->topo, HWLOC_OBJ_NUMANODE, 0);
	if (cpus != numa->cpuset)
		hwloc_bitmap_copy(numa->cpuset, cpus);
	hwloc_bitmap_zero(numa->nodeset);
	if (node) {
		hwloc_bitmap_set(numa->nodeset, node->os_index);
		numa->choice.node = (int)node->os_index;
	} else {
		numa->choice.node = -1;
	}
}

/* The CPUs close to the NIC into cpus; -ENOENT if the NIC is unknown. */
static int nic_cpus(struct rdps_numa *numa, const char *nic,
		    hwloc_bitmap_t cpus)
{
	hwloc_obj_t os = NULL;
	char path[256];

	if (numa->live) {
		snprintf(path, sizeof(path),
			 "/sys/class/infiniband/%s/device/local_cpus", nic);
		if (hwloc_linux_read_path_as_cpumask(path, cpus) ||
		    hwloc_bitmap_iszero(cpus))
			return -ENOENT;
		hwloc_bitmap_and(
			cpus, cpus,
			hwloc_topology_get_topology_cpuset(numa->topo));
		return hwloc_bitmap_iszero(cpus) ? -ENOENT : 0;
	}

	while ((os = hwloc_get_next_osdev(numa->topo, os)) != NULL) {
		if (os->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS &&
		    os->name && !strcmp(os->name, nic)) {
			os = hwloc_get_non_io_ancestor_obj(numa->topo, os);
			hwloc_bitmap_copy(cpus, os->cpuset);
			return 0;
		}
	}
	return -ENOENT;
}

static void node_list(struct rdps_numa *numa, char *buf, size_t len)
{
	hwloc_obj_t node = NULL;
	size_t off = 0;

	buf[0] = '\0';
	while ((node = hwloc_get_next_obj_by_type(
			numa->topo, HWLOC_OBJ_NUMANODE, node)) != NULL &&
	       off + 8 < len) {
		off += (size_t)snprintf(buf + off, len - off, "%s%u",
					off ? "," : "", node->os_index);
	}
}

int rdps_numa_choose(struct rdps_numa *numa, const char *nic, int node,
		     struct rdps_numa_choice *choice_out)
{
	hwloc_obj_t obj;
	hwloc_bitmap_t bound;
	char nodes[64];

	node = env_node(node);
	if (node == -2)
		return rdps_set_error(-EINVAL, "RDPS_NUMA_NODE must be a node "
					       "number such as 0");
	memset(&numa->choice, 0, sizeof(numa->choice));
	if (node >= 0) {
		obj = hwloc_get_numanode_obj_by_os_index(numa->topo,
							 (unsigned)node);
		if (!obj) {
			node_list(numa, nodes, sizeof(nodes));
			return rdps_set_error(-EINVAL,
					      "numa node %d does not exist on "
					      "this machine (nodes: %s)",
					      node, nodes);
		}
		place_on_cpus(numa, obj->cpuset);
		numa->choice.reason = RDPS_NUMA_OVERRIDE;
		goto done;
	}
	if (nic && *nic) {
		if (!nic_cpus(numa, nic, numa->cpuset)) {
			place_on_cpus(numa, numa->cpuset);
			numa->choice.reason = RDPS_NUMA_NIC;
			goto done;
		}
		/* Virtual devices (rxe) have no PCI locality: not worth a
		 * warning, the process binding is the right answer. */
		rdps_info("nic %s has no locality in the hwloc topology, "
			  "placing by process binding",
			  nic);
	}
	bound = hwloc_bitmap_alloc();
	if (bound &&
	    !hwloc_get_cpubind(numa->topo, bound, HWLOC_CPUBIND_PROCESS) &&
	    !hwloc_bitmap_iszero(bound) &&
	    !hwloc_bitmap_isincluded(
		    hwloc_topology_get_topology_cpuset(numa->topo), bound)) {
		place_on_cpus(numa, bound);
		numa->choice.reason = RDPS_NUMA_PROCESS;
	} else {
		place_on_cpus(numa,
			      hwloc_topology_get_topology_cpuset(numa->topo));
		numa->choice.reason = RDPS_NUMA_DEFAULT;
	}
	hwloc_bitmap_free(bound);
done:
	hwloc_bitmap_list_snprintf(numa->choice.cpus, sizeof(numa->choice.cpus),
				   numa->cpuset);
	numa->chosen = 1;
	rdps_info("numa placement: node %d cpus %s (%s%s%s)", numa->choice.node,
		  numa->choice.cpus, rdps_numa_reason_str(numa->choice.reason),
		  numa->choice.reason == RDPS_NUMA_NIC ? " of " : "",
		  numa->choice.reason == RDPS_NUMA_NIC ? nic : "");
	*choice_out = numa->choice;
	return 0;
}

int rdps_numa_bind_thread(struct rdps_numa *numa)
{
	if (!numa->chosen)
		return -EINVAL;
	if (hwloc_set_cpubind(numa->topo, numa->cpuset, HWLOC_CPUBIND_THREAD))
		return rdps_set_error(-errno,
				      "cannot bind thread to cpus %s: %s",
				      numa->choice.cpus, strerror(errno));
	return 0;
}

void *rdps_numa_alloc(struct rdps_numa *numa, size_t len)
{
	void *p = NULL;

	if (numa->chosen && !hwloc_bitmap_iszero(numa->nodeset))
		p = hwloc_alloc_membind(numa->topo, len, numa->nodeset,
					HWLOC_MEMBIND_BIND,
					HWLOC_MEMBIND_BYNODESET);
	if (!p) {
		rdps_dbg("numa: binding %zu bytes failed, plain allocation",
			 len);
		p = hwloc_alloc(numa->topo, len);
	}
	if (p)
		memset(p, 0, len);
	return p;
}

void rdps_numa_free(struct rdps_numa *numa, void *addr, size_t len)
{
	if (addr)
		hwloc_free(numa->topo, addr, len);
}

int rdps_numa_bind_area(struct rdps_numa *numa, void *addr, size_t len)
{
	if (!numa->chosen || hwloc_bitmap_iszero(numa->nodeset))
		return 0;
	if (hwloc_set_area_membind(numa->topo, addr, len, numa->nodeset,
				   HWLOC_MEMBIND_BIND,
				   HWLOC_MEMBIND_BYNODESET)) {
		/* Not fatal: memory then lands where it is first touched. */
		rdps_dbg("numa: cannot bind %zu bytes to node %d: %s", len,
			 numa->choice.node, strerror(errno));
	}
	return 0;
}

#else /* !RDPS_WITH_HWLOC */

int rdps_numa_open(const char *source, struct rdps_numa **numa_out)
{
	struct rdps_numa *numa = calloc(1, sizeof(*numa));

	if (!numa)
		return -ENOMEM;
	numa->choice.node = -1;
	*numa_out = numa;
	return 0;
}

void rdps_numa_close(struct rdps_numa *numa)
{
	free(numa);
}

int rdps_numa_choose(struct rdps_numa *numa, const char *nic, int node,
		     struct rdps_numa_choice *choice_out)
{
	if (env_node(node) >= 0)
		rdps_warn("built without hwloc: ignoring numa node %d",
			  env_node(node));
	numa->chosen = 1;
	*choice_out = numa->choice;
	return 0;
}

int rdps_numa_bind_thread(struct rdps_numa *numa)
{
	return 0;
}

void *rdps_numa_alloc(struct rdps_numa *numa, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void rdps_numa_free(struct rdps_numa *numa, void *addr, size_t len)
{
	if (addr)
		munmap(addr, len);
}

int rdps_numa_bind_area(struct rdps_numa *numa, void *addr, size_t len)
{
	return 0;
}

#endif
