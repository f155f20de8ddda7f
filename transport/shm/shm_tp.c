/* SPDX-License-Identifier: MIT */
/*
 * shm_tp.c - the shm transport instance: it sets up and tears down the
 * heap, the completion queue, the wake fd and the liveness thread, and
 * holds the ops table.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm.h"

static uint32_t shm_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static void shm_fini(struct rdps_tp *tp_)
{
	struct shm_tp *tp = to_shm_tp(tp_);

	/* Joined before the heap goes: the kernel walks the robust list,
	 * which lives in the heap, when the thread exits. */
	shm_live_stop(tp);
	shm_zombies_reap(tp, true);
	free(tp->zombies);
	free(tp->eps);
	shm_mrt_fini(tp);
	shm_heap_fini(tp);
	if (tp->efd >= 0)
		close(tp->efd);
	free(tp->cq);
	free(tp);
}

int shm_asym_fence;

/* Registration is per process and idempotent; a kernel without membarrier
 * (or a seccomp filter) leaves the fence on the hot path. */
static void shm_asym_fence_register(void)
{
	shm_asym_fence = !syscall(
		SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
}

static void shm_asym_fence_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, shm_asym_fence_register);
}

static int shm_init(const struct rdps_tp_cfg *cfg, struct rdps_tp **tp_out)
{
	long page = sysconf(_SC_PAGESIZE);
	struct shm_tp *tp;
	size_t size;
	int ret;

	if (page <= 0)
		page = 4096;
	shm_asym_fence_init();
	if (cfg->shm_heap_size > SIZE_MAX / 2)
		return rdps_set_error(-EINVAL,
				      "shm heap size %zu is too large: lower "
				      "cfg.shm_heap_size",
				      cfg->shm_heap_size);
	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return rdps_set_error(-ENOMEM, "shm: out of memory");
	tp->memfd = tp->efd = tp->live_efd = -1;
	tp->page = (size_t)page;
	tp->tp.cfg = *cfg;
	tp->sq_depth = cfg->sq_depth;
	tp->cq_depth = cfg->cq_depth;
	tp->cq_mask = shm_pow2(cfg->cq_depth) - 1;
	tp->ring_cap = shm_pow2(cfg->sq_depth);
	if (tp->ring_cap < SHM_RING_MIN)
		tp->ring_cap = SHM_RING_MIN;
	tp->cq = calloc((size_t)tp->cq_mask + 1, sizeof(*tp->cq));
	if (!tp->cq) {
		ret = rdps_set_error(-ENOMEM, "shm: out of memory");
		goto err_free;
	}
	size = shm_round_up(cfg->shm_heap_size, tp->page);
	ret = shm_heap_init(tp, size);
	if (ret)
		goto err_free;
	ret = shm_mrt_init(tp);
	if (ret)
		goto err_heap;
	tp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (tp->efd < 0) {
		ret = rdps_set_error(-errno, "shm: eventfd: %s",
				     strerror(errno));
		goto err_mrt;
	}
	ret = shm_live_start(tp);
	if (ret)
		goto err_efd;
	*tp_out = &tp->tp;
	return 0;

err_efd:
	close(tp->efd);
err_mrt:
	shm_mrt_fini(tp);
err_heap:
	shm_heap_fini(tp);
err_free:
	free(tp->cq);
	free(tp);
	return ret;
}

const struct rdps_tp_ops rdps_shm_ops = {
	.size = sizeof(struct rdps_tp_ops),
	.name = "shm",
	.caps = RDPS_TP_CAP_RMA_READ | RDPS_TP_CAP_RMA_WRITE |
		RDPS_TP_CAP_WRITE_IMM | RDPS_TP_CAP_ATOMIC_FADD |
		RDPS_TP_CAP_ATOMIC_CSWAP | RDPS_TP_CAP_INLINE,
	.init = shm_init,
	.fini = shm_fini,
	.listen = shm_listen,
	.listener_url = shm_listener_url,
	.accept = shm_accept,
	.listener_close = shm_listener_close,
	.connect = shm_connect,
	.ep_close = shm_ep_close,
	.mem_alloc = shm_mem_alloc,
	.mem_free = shm_mem_free,
	.mem_reg = shm_mem_reg,
	.mem_reg_ep = shm_mem_reg_ep,
	.mem_dereg = shm_mem_dereg,
	.rkey_pack = shm_rkey_pack,
	.rkey_unpack = shm_rkey_unpack,
	.put = shm_put,
	.put_imm = shm_put_imm,
	.get = shm_get,
	.get_gather = shm_get_gather,
	.atomic_fadd = shm_atomic_fadd,
	.atomic_cswap = shm_atomic_cswap,
	.poll = shm_poll,
	.wait_fd = shm_wait_fd,
	.arm = shm_arm,
};
