/* SPDX-License-Identifier: MIT */
/* verbs_tp.c - verbs transport instance: device, protection domain, ops. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "verbs.h"

/* First port of ctx that is active, or 0. */
static uint8_t verbs_active_port(struct ibv_context *ctx)
{
	struct ibv_device_attr dattr;
	struct ibv_port_attr pattr;

	if (ibv_query_device(ctx, &dattr))
		return 0;
	for (uint8_t p = 1; p <= dattr.phys_port_cnt; p++) {
		if (!ibv_query_port(ctx, p, &pattr) &&
		    pattr.state == IBV_PORT_ACTIVE)
			return p;
	}
	return 0;
}

/*
 * The context comes from librdmacm's own device list, so cm ids bound to
 * this device report the very same ibv_context and can use our PD and CQ.
 */
static int verbs_pick_device(const char *want, struct ibv_context **ctx_out,
			     uint8_t *port_out)
{
	struct ibv_context **list;
	char names[256] = "";
	int n, ret = 0, found = 0;
	uint8_t port = 0;

	list = rdma_get_devices(&n);
	if (!list && errno == ENODEV)
		n = 0; /* librdmacm's way of saying there is none */
	else if (!list)
		return rdps_set_error(-ENODEV,
				      "cannot list RDMA devices (%s): install "
				      "rdma-core and check /dev/infiniband",
				      strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *name = ibv_get_device_name(list[i]->device);

		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", i ? "," : "", name);
		if (want && strcmp(want, name))
			continue;
		found = 1;
		port = verbs_active_port(list[i]);
		if (port) {
			*ctx_out = list[i];
			*port_out = port;
			goto out_free;
		}
	}
	if (!n)
		ret = rdps_set_error(-ENODEV,
				     "no RDMA device found: load the NIC's "
				     "driver, or add soft-RoCE with 'modprobe "
				     "rdma_rxe; rdma link add rxe0 type rxe "
				     "netdev IFACE'");
	else if (want && !found)
		ret = rdps_set_error(-ENODEV,
				     "RDMA device '%s' not found (devices: "
				     "%s): fix the device name",
				     want, names);
	else
		ret = rdps_set_error(-ENETDOWN,
				     "no active port on RDMA device %s: check "
				     "the link with 'ibv_devinfo'",
				     want ? want : names);
out_free:
	if (list)
		rdma_free_devices(list);
	return ret;
}

static int verbs_check_gid(struct verbs_tp *vtp, int gid_index)
{
	union ibv_gid gid;
	static const uint8_t zero[16];

	if (gid_index < 0)
		return 0;
	if (ibv_query_gid(vtp->ctx, vtp->port_num, gid_index, &gid) ||
	    !memcmp(gid.raw, zero, sizeof(zero)))
		return rdps_set_error(-EINVAL,
				      "gid index %d is not valid on %s port "
				      "%u: list the GIDs with 'ibv_devinfo -v' "
				      "or use -1 for the default",
				      gid_index,
				      ibv_get_device_name(vtp->ctx->device),
				      vtp->port_num);
	return 0;
}

static int verbs_query_caps(struct verbs_tp *vtp, const struct rdps_tp_cfg *cfg)
{
	struct ibv_device_attr attr;
	int ret;

	ret = ibv_query_device(vtp->ctx, &attr);
	if (ret)
		return rdps_set_error(-ret, "cannot query RDMA device %s: %s",
				      ibv_get_device_name(vtp->ctx->device),
				      strerror(ret));
	/* Atomics of an HCA-atomic device are atomic against the same
	 * device's atomics only, which is all the clocks need. */
	vtp->atomic_ok = attr.atomic_cap != IBV_ATOMIC_NONE;
	if (!vtp->atomic_ok)
		rdps_warn("device %s has no RDMA atomics: fetch-add and "
			  "compare-swap will be refused",
			  ibv_get_device_name(vtp->ctx->device));
	/* Type 2 windows are bound to one queue pair: what mem_reg_ep
	 * needs. Both 2A and 2B tie the window to the queue pair. */
	vtp->mw_ok = attr.max_mw > 0 &&
		     (attr.device_cap_flags & (IBV_DEVICE_MEM_WINDOW_TYPE_2A |
					       IBV_DEVICE_MEM_WINDOW_TYPE_2B));
	vtp->max_rd_atom = (uint32_t)attr.max_qp_rd_atom;
	vtp->max_init_rd_atom = (uint32_t)attr.max_qp_init_rd_atom;
	if (cfg->sq_depth + VERBS_SQ_EXTRA > (unsigned)attr.max_qp_wr)
		return rdps_set_error(-EINVAL,
				      "send queue depth %u is over the %d "
				      "work requests device %s allows: lower "
				      "sq_depth",
				      cfg->sq_depth,
				      attr.max_qp_wr - (int)VERBS_SQ_EXTRA,
				      ibv_get_device_name(vtp->ctx->device));
	vtp->cq_cap = cfg->cq_depth;
	if (vtp->cq_cap > (unsigned)attr.max_cqe - 8) {
		rdps_info("cq depth %u clamped to %d, the device maximum",
			  cfg->cq_depth, attr.max_cqe - 8);
		vtp->cq_cap = (uint32_t)attr.max_cqe - 8;
	}
	return 0;
}

static void verbs_place(struct verbs_tp *vtp, const struct rdps_tp_cfg *cfg);

static int verbs_init(const struct rdps_tp_cfg *cfg, struct rdps_tp **tp_out)
{
	struct verbs_tp *vtp;
	int ret;

	vtp = calloc(1, sizeof(*vtp));
	if (!vtp)
		return -ENOMEM;
	vtp->epoll_fd = -1;
	vtp->proto_version = RDPS_TP_PROTO_VERSION;
	ret = verbs_pick_device(cfg->dev, &vtp->ctx, &vtp->port_num);
	if (ret)
		goto err_free;
	ret = verbs_query_caps(vtp, cfg);
	if (ret)
		goto err_free;
	ret = verbs_check_gid(vtp, cfg->gid_index);
	if (ret)
		goto err_free;
	verbs_place(vtp, cfg);
	vtp->pd = ibv_alloc_pd(vtp->ctx);
	if (!vtp->pd) {
		ret = rdps_set_error(-ENOMEM,
				     "cannot allocate a protection domain on "
				     "%s: %s",
				     ibv_get_device_name(vtp->ctx->device),
				     strerror(errno));
		goto err_free;
	}
	vtp->base.cfg = *cfg; /* the CQ and cm code read it before open ends */
	ret = verbs_cq_create(vtp);
	if (ret)
		goto err_dealloc_pd;
	ret = verbs_cm_create(vtp);
	if (ret)
		goto err_destroy_cq;
	rdps_dbg("verbs on %s port %u, atomics %s",
		 ibv_get_device_name(vtp->ctx->device), vtp->port_num,
		 vtp->atomic_ok ? "yes" : "no");
	*tp_out = &vtp->base;
	return 0;

err_destroy_cq:
	verbs_cq_destroy(vtp);
err_dealloc_pd:
	ibv_dealloc_pd(vtp->pd);
err_free:
	rdps_numa_close(vtp->numa);
	free(vtp);
	return ret;
}

static void verbs_fini(struct rdps_tp *tp)
{
	struct verbs_tp *vtp;
	int ret;

	if (!tp)
		return;
	vtp = verbs_tp_of(tp);
	verbs_cm_destroy(vtp);
	verbs_cq_destroy(vtp);
	ret = ibv_dealloc_pd(vtp->pd);
	if (ret)
		rdps_warn("cannot free protection domain: %s", strerror(ret));
	free(vtp->eps);
	free(vtp->gen);
	rdps_numa_close(vtp->numa);
	free(vtp);
}

static size_t verbs_page_round(size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (len + pg - 1) & ~(pg - 1);
}

/*
 * Registered memory and the pollers belong on the NIC's NUMA node
 * (hwloc: the device's local CPUs, or cfg.numa_node / RDPS_NUMA_NODE).
 * Placement is an optimisation: without a topology we go on unplaced.
 */
static void verbs_place(struct verbs_tp *vtp, const struct rdps_tp_cfg *cfg)
{
	const char *nic = ibv_get_device_name(vtp->ctx->device);

	vtp->base.place.node = -1;
	if (rdps_numa_open(NULL, &vtp->numa)) {
		rdps_warn("no numa placement: %s", rdps_errmsg());
		vtp->numa = NULL;
		return;
	}
	if (rdps_numa_choose(vtp->numa, nic, cfg->numa_node,
			     &vtp->base.place)) {
		rdps_warn("no numa placement: %s", rdps_errmsg());
		rdps_numa_close(vtp->numa);
		vtp->numa = NULL;
	}
}

static int verbs_mem_place(struct verbs_tp *vtp, void *addr, size_t len)
{
	return vtp->numa ? rdps_numa_bind_area(vtp->numa, addr, len) : 0;
}

static int verbs_bind_poller(struct rdps_tp *tp)
{
	struct verbs_tp *vtp = verbs_tp_of(tp);

	return vtp->numa ? rdps_numa_bind_thread(vtp->numa) : 0;
}

static int verbs_mem_alloc(struct rdps_tp *tp, size_t len, void **addr_out)
{
	size_t rlen = verbs_page_round(len);
	void *p;
	int ret;

	/* Anonymous mappings are page-aligned and zeroed, and their pages
	 * are not shared with malloc's, which fork() and MADV_DONTFORK
	 * registrations would otherwise trip over. */
	p = mmap(NULL, rlen, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return rdps_set_error(-ENOMEM, "cannot map %zu bytes: %s", len,
				      strerror(errno));
	ret = verbs_mem_place(verbs_tp_of(tp), p, rlen);
	if (ret) {
		munmap(p, rlen);
		return ret;
	}
	*addr_out = p;
	return 0;
}

static void verbs_mem_free(struct rdps_tp *tp, void *addr, size_t len)
{
	(void)tp;
	if (addr && munmap(addr, verbs_page_round(len)))
		rdps_warn("munmap %p: %s", addr, strerror(errno));
}

const struct rdps_tp_ops rdps_verbs_ops = {
	.size = sizeof(struct rdps_tp_ops),
	.name = "verbs",
	.caps = RDPS_TP_CAP_RMA_READ | RDPS_TP_CAP_RMA_WRITE |
		RDPS_TP_CAP_WRITE_IMM | RDPS_TP_CAP_ATOMIC_FADD |
		RDPS_TP_CAP_ATOMIC_CSWAP | RDPS_TP_CAP_INLINE |
		RDPS_TP_CAP_READ_OFFLOAD,
	.init = verbs_init,
	.fini = verbs_fini,
	.listen = verbs_listen,
	.listener_url = verbs_listener_url,
	.accept = verbs_accept,
	.listener_close = verbs_listener_close,
	.connect = verbs_connect,
	.ep_close = verbs_ep_close,
	.bind_poller = verbs_bind_poller,
	.mem_alloc = verbs_mem_alloc,
	.mem_free = verbs_mem_free,
	.mem_reg = verbs_mem_reg,
	.mem_reg_ep = verbs_mem_reg_ep,
	.mem_dereg = verbs_mem_dereg,
	.rkey_pack = verbs_rkey_pack,
	.rkey_unpack = verbs_rkey_unpack,
	.put = verbs_put,
	.put_imm = verbs_put_imm,
	.get = verbs_get,
	.get_gather = verbs_get_gather,
	.atomic_fadd = verbs_atomic_fadd,
	.atomic_cswap = verbs_atomic_cswap,
	.poll = verbs_poll,
	.wait_fd = verbs_wait_fd,
	.arm = verbs_arm,
};
