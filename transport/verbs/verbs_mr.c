/* SPDX-License-Identifier: MIT */
/* verbs_mr.c - memory registrations and their remote keys. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "verbs.h"

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

int verbs_mem_reg(struct rdps_tp *tp, void *addr, size_t len, unsigned access,
		  struct rdps_tp_mr **mr_out)
{
	struct verbs_tp *vtp = verbs_tp_of(tp);
	struct verbs_mr *vmr;
	int flags = IBV_ACCESS_LOCAL_WRITE;
	int ret;

	if ((access & RDPS_TP_ACCESS_REMOTE_ATOMIC) && !vtp->atomic_ok)
		return rdps_set_error(-EOPNOTSUPP,
				      "device %s has no RDMA atomics: register "
				      "without RDPS_TP_ACCESS_REMOTE_ATOMIC",
				      ibv_get_device_name(vtp->ctx->device));
	if (access & RDPS_TP_ACCESS_REMOTE_READ)
		flags |= IBV_ACCESS_REMOTE_READ;
	if (access & RDPS_TP_ACCESS_REMOTE_WRITE)
		flags |= IBV_ACCESS_REMOTE_WRITE;
	if (access & RDPS_TP_ACCESS_REMOTE_ATOMIC)
		flags |= IBV_ACCESS_REMOTE_ATOMIC;
	vmr = calloc(1, sizeof(*vmr));
	if (!vmr)
		return -ENOMEM;
	vmr->mr = ibv_reg_mr(vtp->pd, addr, len, flags);
	if (!vmr->mr) {
		ret = verbs_reg_error(vtp, len, access, errno);
		goto err_free;
	}
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

void verbs_mem_dereg(struct rdps_tp_mr *mr)
{
	struct verbs_mr *vmr;
	int ret;

	if (!mr)
		return;
	vmr = verbs_mr_of(mr);
	ret = ibv_dereg_mr(vmr->mr);
	if (ret)
		rdps_warn("cannot deregister %p+%zu: %s", mr->addr, mr->len,
			  strerror(ret));
	free(vmr);
}

void verbs_rkey_pack(struct rdps_tp_mr *mr, struct rdps_tp_rkey_wire *w)
{
	struct verbs_mr *vmr = verbs_mr_of(mr);

	w->addr_be = rdps_htobe64((uint64_t)(uintptr_t)mr->addr);
	w->len_be = rdps_htobe64((uint64_t)mr->len);
	w->rkey_be = rdps_htobe32(vmr->mr->rkey);
	w->pad = 0;
}

int verbs_rkey_unpack(struct rdps_tp_ep *ep, const struct rdps_tp_rkey_wire *w,
		      struct rdps_tp_rkey *rkey_out)
{
	uint64_t addr = rdps_be64toh(w->addr_be);
	uint64_t len = rdps_be64toh(w->len_be);

	(void)ep;
	if (w->pad || !len || addr + len < addr)
		return rdps_set_error(-EINVAL,
				      "malformed remote key (addr 0x%llx len "
				      "%llu): the peer sent a corrupt key",
				      (unsigned long long)addr,
				      (unsigned long long)len);
	rkey_out->addr = addr;
	rkey_out->len = len;
	rkey_out->key = rdps_be32toh(w->rkey_be);
	rkey_out->pad = 0;
	rkey_out->priv = 0;
	return 0;
}
