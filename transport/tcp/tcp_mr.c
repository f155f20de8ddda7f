/* SPDX-License-Identifier: MIT */
/*
 * tcp_mr.c - memory registration of the tcp transport. A registration is a
 * slot in a table the progress thread consults for every remote request;
 * its key carries the slot's generation so a key outlives neither its
 * deregistration nor a later registration reusing the slot. A registration
 * of one endpoint's peer also records that endpoint's generation, which
 * every request must arrive on.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tcp.h"

/* From this size on, memory comes straight from mmap: zeroed by the kernel
 * page by page on first touch instead of all at once by memset. */
#define TCP_MMAP_MIN (256u * 1024)

int tcp_mem_alloc(struct rdps_tp *tp, size_t len, void **addr_out)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;
	int ret;

	if (len >= TCP_MMAP_MIN) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return rdps_set_error(-errno,
					      "cannot map %zu bytes for "
					      "registered memory: %s",
					      len, strerror(errno));
		*addr_out = p;
		return 0;
	}
	ret = posix_memalign(&p, page > 0 ? (size_t)page : 4096, len);
	if (ret)
		return rdps_set_error(-ret,
				      "cannot allocate %zu bytes for "
				      "registered memory: %s",
				      len, strerror(ret));
	memset(p, 0, len);
	*addr_out = p;
	return 0;
}

void tcp_mem_free(struct rdps_tp *tp, void *addr, size_t len)
{
	if (len < TCP_MMAP_MIN)
		free(addr);
	else if (munmap(addr, len))
		rdps_warn("tcp: munmap of %zu bytes at %p: %s", len, addr,
			  strerror(errno));
}

static int tcp_mr_grow(struct tcp_tp *tp)
{
	uint32_t ncap = tp->n_mrs_cap ? tp->n_mrs_cap * 2 : 64;
	struct tcp_mr_slot *n;

	if (ncap > TCP_MAX_MRS)
		ncap = TCP_MAX_MRS;
	if (ncap <= tp->n_mrs_cap)
		return rdps_set_error(-ENOSPC,
				      "tcp: all %u registrations in use: "
				      "deregister some or register larger "
				      "regions",
				      TCP_MAX_MRS);
	n = realloc(tp->mrs, ncap * sizeof(*n));
	if (!n)
		return rdps_set_error(-ENOMEM, "out of memory for the tcp "
					       "registration table");
	/* Chain the new slots in index order so keys come out ascending. */
	for (uint32_t i = ncap; i-- > tp->n_mrs_cap;) {
		n[i].mr = NULL;
		n[i].gen = 1;
		n[i].next_free = tp->mr_free;
		tp->mr_free = i;
	}
	tp->mrs = n;
	tp->n_mrs_cap = ncap;
	return 0;
}

/* A registration for every peer (ep NULL) or for ep's alone. */
static int tcp_mr_new(struct tcp_tp *tp, struct tcp_ep *ep, void *addr,
		      size_t len, unsigned access, struct rdps_tp_mr **mr_out)
{
	struct tcp_mr *mr;
	uint32_t idx;
	int ret = 0;

	if ((uintptr_t)addr + len < (uintptr_t)addr)
		return rdps_set_error(-EINVAL,
				      "region %p + %zu wraps the "
				      "address space",
				      addr, len);
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return rdps_set_error(-ENOMEM, "out of memory for a "
					       "registration");
	pthread_mutex_lock(&tp->lock);
	if (ep && ep->broken)
		ret = rdps_set_error(-ENOTCONN,
				     "tcp connection to %s is broken: no "
				     "region can be registered for it; close "
				     "it",
				     ep->peer);
	else if (tp->mr_free == TCP_NO_SLOT)
		ret = tcp_mr_grow(tp);
	if (ret) {
		pthread_mutex_unlock(&tp->lock);
		free(mr);
		return ret;
	}
	idx = tp->mr_free;
	tp->mr_free = tp->mrs[idx].next_free;
	mr->base.tp = &tp->base;
	mr->base.addr = addr;
	mr->base.len = len;
	mr->base.access = access;
	mr->key = (uint32_t)tp->mrs[idx].gen << 16 | idx;
	mr->ep_gen = ep ? ep->gen : 0;
	tp->mrs[idx].mr = mr;
	pthread_mutex_unlock(&tp->lock);
	*mr_out = &mr->base;
	return 0;
}

int tcp_mem_reg(struct rdps_tp *base, void *addr, size_t len, unsigned access,
		struct rdps_tp_mr **mr_out)
{
	return tcp_mr_new(to_tcp_tp(base), NULL, addr, len, access, mr_out);
}

int tcp_mem_reg_ep(struct rdps_tp_ep *ep, void *addr, size_t len,
		   unsigned access, struct rdps_tp_mr **mr_out)
{
	return tcp_mr_new(to_tcp_ep(ep)->tp, to_tcp_ep(ep), addr, len, access,
			  mr_out);
}

void tcp_mem_dereg(struct rdps_tp_mr *base)
{
	struct tcp_tp *tp = to_tcp_tp(base->tp);
	struct tcp_mr *mr = to_tcp_mr(base);
	uint32_t idx = mr->key & 0xffff;
	uint64_t lo = (uintptr_t)base->addr, hi = lo + base->len;

	pthread_mutex_lock(&tp->lock);
	/* The memory may be freed right after we return: nothing queued or
	 * in flight may keep pointing into it. */
	for (uint32_t i = 0; i < tp->n_eps_cap; i++) {
		if (tp->eps[i]) {
			tcp_tx_detach(tp->eps[i], lo, hi, 1);
			tcp_rx_forget(tp->eps[i], lo, hi);
		}
	}
	tp->mrs[idx].mr = NULL;
	/* Generation 0 is never handed out, so a zeroed key never works. */
	tp->mrs[idx].gen = (uint16_t)(tp->mrs[idx].gen + 1);
	if (!tp->mrs[idx].gen)
		tp->mrs[idx].gen = 1;
	tp->mrs[idx].next_free = tp->mr_free;
	tp->mr_free = idx;
	pthread_mutex_unlock(&tp->lock);
	free(mr);
}

void tcp_mr_fini(struct tcp_tp *tp)
{
	free(tp->mrs);
	tp->mrs = NULL;
	tp->n_mrs_cap = 0;
}

void tcp_rkey_pack(struct rdps_tp_mr *base, struct rdps_tp_rkey_wire *w)
{
	rdps_tp_rkey_encode(base, to_tcp_mr(base)->key, w);
}

/* Slot generations start at 1 and skip 0 on wrap-around (tcp_mem_dereg). */
static const char *tcp_rkey_check(uint32_t key)
{
	return key >> 16 ? NULL
			 : "its slot generation is 0, which tcp never hands "
			   "out";
}

int tcp_rkey_unpack(struct rdps_tp_ep *ep, const struct rdps_tp_rkey_wire *w,
		    struct rdps_tp_rkey *rkey_out)
{
	(void)ep;
	return rdps_tp_rkey_decode("tcp", w, tcp_rkey_check, rkey_out);
}
