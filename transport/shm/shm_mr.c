/* SPDX-License-Identifier: MIT */
/*
 * shm_mr.c - registrations and remote keys. A registration with remote
 * access takes one entry of the MR table in the shared control area, which
 * is what peers check every operation against; the key carries the entry
 * index and a generation, so a key outlives neither its registration nor a
 * later reuse of the entry. A registration for one endpoint's peer also
 * names that connection in its entry (see shm.h for what that can and
 * cannot stop). Deregistration revokes the key and then waits until no
 * peer can still be writing through it (shm_quiesce).
 */
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm.h"

int shm_mrt_init(struct shm_tp *tp)
{
	tp->mrt_gen = calloc(SHM_MRT_MAX, sizeof(*tp->mrt_gen));
	tp->mrt_fifo = calloc(SHM_MRT_MAX, sizeof(*tp->mrt_fifo));
	if (!tp->mrt_gen || !tp->mrt_fifo) {
		shm_mrt_fini(tp);
		return rdps_set_error(-ENOMEM, "shm: out of memory");
	}
	for (uint32_t i = 0; i < SHM_MRT_MAX; i++)
		tp->mrt_fifo[i] = i;
	tp->mrt_fifo_head = 0;
	tp->mrt_n_free = SHM_MRT_MAX;
	return 0;
}

void shm_mrt_fini(struct shm_tp *tp)
{
	free(tp->mrt_gen);
	free(tp->mrt_fifo);
	tp->mrt_gen = NULL;
	tp->mrt_fifo = NULL;
}

/* A registration for every peer (conn 0) or for one connection's. */
static int shm_mr_new(struct shm_tp *tp, uint64_t conn, void *addr, size_t len,
		      unsigned access, struct rdps_tp_mr **mr_out)
{
	uint8_t *p = addr;
	struct shm_mrt_ent *e;
	struct shm_mr *mr;
	uint32_t idx, gen;

	if (access && !shm_heap_user_range(tp, p, len))
		return rdps_set_error(-EINVAL,
				      "shm: remote access needs memory from "
				      "rdps_tp_mem_alloc (%p+%zu is not "
				      "inside one block of the shared heap)",
				      addr, len);
	if (access && !tp->mrt_n_free)
		return rdps_set_error(-ENOMEM,
				      "shm: all %u remote registrations are in "
				      "use: deregister some, or register "
				      "larger regions",
				      SHM_MRT_MAX);
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return rdps_set_error(-ENOMEM, "shm: out of memory");
	mr->mr.tp = &tp->tp;
	mr->mr.addr = addr;
	mr->mr.len = len;
	mr->mr.access = access;
	if (access) {
		idx = tp->mrt_fifo[tp->mrt_fifo_head];
		tp->mrt_fifo_head = (tp->mrt_fifo_head + 1) % SHM_MRT_MAX;
		tp->mrt_n_free--;
		gen = tp->mrt_gen[idx] % SHM_KEY_GEN_MAX + 1;
		tp->mrt_gen[idx] = gen;
		e = &tp->mrt[idx];
		/* Release stores keep the entry's earlier key = 0 ahead of
		 * the new fields, for the readers' sequence check. */
		__atomic_store_n(&e->access, access, __ATOMIC_RELEASE);
		__atomic_store_n(&e->addr, (uint64_t)(uintptr_t)addr,
				 __ATOMIC_RELEASE);
		__atomic_store_n(&e->len, (uint64_t)len, __ATOMIC_RELEASE);
		__atomic_store_n(&e->conn, conn, __ATOMIC_RELEASE);
		mr->idx = idx;
		mr->key = (gen << SHM_KEY_IDX_BITS) | idx;
		__atomic_store_n(&e->key, mr->key, __ATOMIC_RELEASE);
	}
	*mr_out = &mr->mr;
	return 0;
}

int shm_mem_reg(struct rdps_tp *tp, void *addr, size_t len, unsigned access,
		struct rdps_tp_mr **mr_out)
{
	return shm_mr_new(to_shm_tp(tp), 0, addr, len, access, mr_out);
}

int shm_mem_reg_ep(struct rdps_tp_ep *ep_, void *addr, size_t len,
		   unsigned access, struct rdps_tp_mr **mr_out)
{
	struct shm_ep *ep = to_shm_ep(ep_);

	/* After close the connection's id names nobody, so a broken one
	 * could be served; refusing keeps the contract of all transports. */
	if (ep->dead)
		return shm_ep_broken(ep);
	return shm_mr_new(ep->tp, ep->rx_conn, addr, len, access, mr_out);
}

/* Wait until a peer that may be inside a write or atomic on us is out. */
static void shm_quiesce_ring(const struct shm_ring *r, const struct shm_ep *ep)
{
	uint64_t t0 = 0, now;

	while (__atomic_load_n(&r->busy, __ATOMIC_SEQ_CST)) {
		/* A peer that died inside an operation never leaves it. */
		if (ep && __atomic_load_n(ep->peer_live, __ATOMIC_RELAXED) !=
				  ep->peer_live_val)
			return;
		now = rdps_now_ns();
		if (!t0) {
			t0 = now;
		} else if (now - t0 > SHM_QUIESCE_NS) {
			rdps_warn("shm: a peer%s stays inside a remote write "
				  "for over %llu ms (stopped?): deregistering "
				  "anyway",
				  ep ? "" : " of a closed connection",
				  SHM_QUIESCE_NS / 1000000);
			return;
		}
		sched_yield();
	}
}

/*
 * Called after a key was revoked: returns once no peer can still be writing
 * through it. Each connection's busy word is written by its peer alone and
 * read here only, so the hot path shares no cache line with anyone.
 */
static void shm_quiesce(struct shm_tp *tp)
{
	/* Every peer that registered for expedited barriers runs a full
	 * fence now: its busy store is visible to us below, or its key load
	 * comes after our cleared key. */
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) &&
	    shm_asym_fence)
		rdps_warn("shm: membarrier failed: %s", strerror(errno));
	for (uint32_t i = 0; i < tp->n_eps; i++)
		shm_quiesce_ring(tp->eps[i]->rx, tp->eps[i]);
	for (size_t i = 0; i < tp->n_zombies; i++)
		shm_quiesce_ring((const struct shm_ring *)(tp->heap +
							   tp->zombies[i].off),
				 NULL);
}

void shm_mem_dereg(struct rdps_tp_mr *mr_)
{
	struct shm_mr *mr = to_shm_mr(mr_);
	struct shm_tp *tp = to_shm_tp(mr_->tp);

	if (mr->key) {
		__atomic_store_n(&tp->mrt[mr->idx].key, 0, __ATOMIC_SEQ_CST);
		shm_quiesce(tp);
		tp->mrt_fifo[(tp->mrt_fifo_head + tp->mrt_n_free) %
			     SHM_MRT_MAX] = mr->idx;
		tp->mrt_n_free++;
	}
	free(mr);
}

void shm_rkey_pack(struct rdps_tp_mr *mr, struct rdps_tp_rkey_wire *w)
{
	rdps_tp_rkey_encode(mr, to_shm_mr(mr)->key, w);
}

/* Any key word: 0 is the key of a region without remote access, refused
 * per operation like any other that the target's table does not hold. */
int shm_rkey_unpack(struct rdps_tp_ep *ep, const struct rdps_tp_rkey_wire *w,
		    struct rdps_tp_rkey *rkey_out)
{
	(void)ep;
	return rdps_tp_rkey_decode("shm", w, NULL, rkey_out);
}
