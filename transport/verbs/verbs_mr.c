/* SPDX-License-Identifier: MIT */
/*
 * verbs_mr.c - memory registrations and their remote keys.
 *
 * A region for one endpoint's peer (mem_reg_ep) gets its remote rights from
 * a type 2 memory window bound to that endpoint's queue pair, not from a
 * protection domain of its own. Weighed against a PD per endpoint: the
 * window keeps every shared region (parameters, header, clock table) one
 * registration with one key for all peers, where a PD per endpoint would
 * register each of them again in every worker's PD (pinning and address
 * translation again, per worker, and a key per worker where the shard
 * hands one key to all), and the PD would have to be chosen before the
 * queue pair exists, at connect or accept, before anyone knows the
 * endpoint will need a private region. A window costs one allocation and
 * one bind work request, whatever the region's size (measured on rxe in
 * the rxe-vm: ~25 us alloc + ~30 us bind + ~45 us dealloc, against ~145 us
 * for registering 1 MiB and ~6 ms for 256 MiB).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "verbs.h"

/* Longest mem_reg_ep waits for its bind work request to complete. */
#define VERBS_BIND_MS 2000

static int verbs_reg_error(struct verbs_tp *vtp, size_t len, unsigned access,
			   int err)
{
	struct rlimit rl;
	char lim[32] = "unknown";

	if (err == ENOMEM || err == EPERM) {
		if (!getrlimit(RLIMIT_MEMLOCK, &rl)) {
			if (rl.rlim_cur == RLIM_INFINITY)
				snprintf(lim, sizeof(lim), "unlimited");
			else
				snprintf(lim, sizeof(lim), "%llu KiB",
					 (unsigned long long)rl.rlim_cur >> 10);
		}
		return rdps_set_error(-err,
				      "cannot register %zu bytes (%s): the "
				      "locked-memory limit is %s; raise it "
				      "with 'ulimit -l unlimited', a memlock "
				      "line in /etc/security/limits.conf, or "
				      "LimitMEMLOCK=infinity for a systemd "
				      "service",
				      len, strerror(err), lim);
	}
	if (err == EINVAL && (access & RDPS_TP_ACCESS_REMOTE_ATOMIC) &&
	    !vtp->atomic_ok)
		return rdps_set_error(-EOPNOTSUPP,
				      "device %s has no RDMA atomics: register "
				      "without RDPS_TP_ACCESS_REMOTE_ATOMIC",
				      ibv_get_device_name(vtp->ctx->device));
	return rdps_set_error(-err, "cannot register %zu bytes on %s: %s", len,
			      ibv_get_device_name(vtp->ctx->device),
			      strerror(err));
}

/* The ibv_access_flags of the remote rights in access. */
static unsigned verbs_remote_flags(unsigned access)
{
	unsigned flags = 0;

	if (access & RDPS_TP_ACCESS_REMOTE_READ)
		flags |= IBV_ACCESS_REMOTE_READ;
	if (access & RDPS_TP_ACCESS_REMOTE_WRITE)
		flags |= IBV_ACCESS_REMOTE_WRITE;
	if (access & RDPS_TP_ACCESS_REMOTE_ATOMIC)
		flags |= IBV_ACCESS_REMOTE_ATOMIC;
	return flags;
}

int verbs_mem_reg(struct rdps_tp *tp, void *addr, size_t len, unsigned access,
		  struct rdps_tp_mr **mr_out)
{
	struct verbs_tp *vtp = verbs_tp_of(tp);
	struct verbs_mr *vmr;
	int flags = IBV_ACCESS_LOCAL_WRITE | (int)verbs_remote_flags(access);
	int ret;

	if ((access & RDPS_TP_ACCESS_REMOTE_ATOMIC) && !vtp->atomic_ok)
		return rdps_set_error(-EOPNOTSUPP,
				      "device %s has no RDMA atomics: register "
				      "without RDPS_TP_ACCESS_REMOTE_ATOMIC",
				      ibv_get_device_name(vtp->ctx->device));
	vmr = calloc(1, sizeof(*vmr));
	if (!vmr)
		return -ENOMEM;
	vmr->mr = ibv_reg_mr(vtp->pd, addr, len, flags);
	if (!vmr->mr) {
		ret = verbs_reg_error(vtp, len, access, errno);
		goto err_free;
	}
	vmr->rkey = vmr->mr->rkey;
	vmr->base.tp = tp;
	vmr->base.addr = addr;
	vmr->base.len = len;
	vmr->base.access = access;
	*mr_out = &vmr->base;
	return 0;

err_free:
	free(vmr);
	return ret;
}

/*
 * Bind vmr's window to ep's queue pair with the remote rights in access,
 * and wait for the bind to complete (other completions met meanwhile go
 * to the software queue, for poll). 0 with vmr->rkey set, or -errno.
 */
static int verbs_mw_bind(struct verbs_ep *ep, struct verbs_mr *vmr,
			 unsigned access)
{
	struct ibv_send_wr wr, *bad;
	struct timespec ts = {.tv_nsec = 50000};
	uint32_t rkey = ibv_inc_rkey(vmr->mw->rkey);
	uint64_t deadline;
	int ret;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = ep->wrid_base | VERBS_WRID_BIND;
	wr.opcode = IBV_WR_BIND_MW;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.bind_mw.mw = vmr->mw;
	wr.bind_mw.rkey = rkey;
	wr.bind_mw.bind_info.mr = vmr->mr;
	wr.bind_mw.bind_info.addr = (uintptr_t)vmr->base.addr;
	wr.bind_mw.bind_info.length = vmr->base.len;
	wr.bind_mw.bind_info.mw_access_flags = verbs_remote_flags(access);
	ep->bind_done = false;
	ret = ibv_post_send(ep->qp, &wr, &bad);
	if (ret)
		return rdps_set_error(-ret,
				      "qp 0x%x refused to bind a memory "
				      "window: %s",
				      ep->qp->qp_num, strerror(ret));
	deadline = rdps_deadline(VERBS_BIND_MS);
	while (!ep->bind_done) {
		if (verbs_cq_reap(ep->vtp))
			continue;
		if (rdps_now_ns() > deadline) {
			/* In error the queue pair flushes the bind before
			 * the window is freed. */
			verbs_ep_break(ep, false);
			return rdps_set_error(-ETIMEDOUT,
					      "qp 0x%x did not bind a memory "
					      "window within %d ms: the "
					      "device is stuck; the endpoint "
					      "is closed for use",
					      ep->qp->qp_num, VERBS_BIND_MS);
		}
		nanosleep(&ts, NULL);
	}
	if (ep->bind_status == IBV_WC_WR_FLUSH_ERR)
		return rdps_set_error(-ENOTCONN,
				      "endpoint broke while a region was "
				      "registered for it: close it");
	if (ep->bind_status != IBV_WC_SUCCESS)
		return rdps_set_error(-EIO,
				      "qp 0x%x could not bind a memory window "
				      "over %p+%zu: %s; the endpoint is now "
				      "broken",
				      ep->qp->qp_num, vmr->base.addr,
				      vmr->base.len,
				      ibv_wc_status_str(ep->bind_status));
	vmr->rkey = rkey;
	return 0;
}

int verbs_mem_reg_ep(struct rdps_tp_ep *bep, void *addr, size_t len,
		     unsigned access, struct rdps_tp_mr **mr_out)
{
	struct verbs_ep *ep = verbs_ep_of(bep);
	struct verbs_tp *vtp = ep->vtp;
	const char *dev = ibv_get_device_name(vtp->ctx->device);
	struct verbs_mr *vmr;
	int ret;

	/* Nothing remote to limit. */
	if (!access)
		return verbs_mem_reg(bep->tp, addr, len, access, mr_out);
	if (!vtp->mw_ok)
		return rdps_set_error(-EOPNOTSUPP,
				      "device %s has no type 2 memory windows, "
				      "so a region cannot be limited to one "
				      "connection: use a device that has them "
				      "(ibv_devinfo -v lists "
				      "MEM_WINDOW_TYPE_2B), or register the "
				      "region for every peer",
				      dev);
	if (ep->state != VERBS_EP_CONNECTED)
		return rdps_set_error(-ENOTCONN,
				      "endpoint is disconnected: no region "
				      "can be registered for it; close it");
	if ((access & RDPS_TP_ACCESS_REMOTE_ATOMIC) && !vtp->atomic_ok)
		return rdps_set_error(-EOPNOTSUPP,
				      "device %s has no RDMA atomics: register "
				      "without RDPS_TP_ACCESS_REMOTE_ATOMIC",
				      dev);
	vmr = calloc(1, sizeof(*vmr));
	if (!vmr)
		return -ENOMEM;
	vmr->base.tp = bep->tp;
	vmr->base.addr = addr;
	vmr->base.len = len;
	vmr->base.access = access;
	/* Local rights only: the window carries the remote ones. */
	vmr->mr = ibv_reg_mr(vtp->pd, addr, len,
			     IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
	if (!vmr->mr) {
		ret = verbs_reg_error(vtp, len, access, errno);
		goto err_free;
	}
	vmr->mw = ibv_alloc_mw(vtp->pd, IBV_MW_TYPE_2);
	if (!vmr->mw) {
		ret = rdps_set_error(-errno,
				     "cannot allocate a memory window on %s: "
				     "%s",
				     dev, strerror(errno));
		goto err_dereg;
	}
	ret = verbs_mw_bind(ep, vmr, access);
	if (ret)
		goto err_dealloc;
	vmr->ep = ep;
	vmr->ep_next = ep->scoped;
	ep->scoped = vmr;
	*mr_out = &vmr->base;
	return 0;

err_dealloc:
	ibv_dealloc_mw(vmr->mw);
err_dereg:
	ibv_dereg_mr(vmr->mr);
err_free:
	free(vmr);
	return ret;
}

void verbs_mem_dereg(struct rdps_tp_mr *mr)
{
	struct verbs_mr *vmr;
	int ret;

	if (!mr)
		return;
	vmr = verbs_mr_of(mr);
	/* A window must go before the region it is bound to. */
	verbs_ep_unbind(vmr);
	ret = ibv_dereg_mr(vmr->mr);
	if (ret)
		rdps_warn("cannot deregister %p+%zu: %s", mr->addr, mr->len,
			  strerror(ret));
	free(vmr);
}

void verbs_rkey_pack(struct rdps_tp_mr *mr, struct rdps_tp_rkey_wire *w)
{
	rdps_tp_rkey_encode(mr, verbs_mr_of(mr)->rkey, w);
}

/* Any key word: the NIC's rkeys have no structure to check. */
int verbs_rkey_unpack(struct rdps_tp_ep *ep, const struct rdps_tp_rkey_wire *w,
		      struct rdps_tp_rkey *rkey_out)
{
	(void)ep;
	return rdps_tp_rkey_decode("verbs", w, NULL, rkey_out);
}
