/* SPDX-License-Identifier: MIT */
/*
 * shm_ep.c - the endpoint object: built from a finished handshake (the
 * peer's mapped heap, its ring in it, our ring for its immediates), kept in
 * the instance's endpoint table, and closed. Rings come from the heap here;
 * an inbound ring goes back through shm_ring_retire (shm_live.c), which
 * keeps it while the peer may still write into it.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm.h"

static int shm_eps_add(struct shm_tp *tp, struct shm_ep *ep)
{
	if (tp->n_eps == tp->cap_eps) {
		uint32_t ncap = tp->cap_eps ? tp->cap_eps * 2 : 8;
		struct shm_ep **v = realloc(tp->eps, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		tp->eps = v;
		tp->cap_eps = ncap;
	}
	ep->idx = tp->n_eps;
	tp->eps[tp->n_eps++] = ep;
	return 0;
}

/* Build the endpoint; takes p's mapping and wake fd on success. */
int shm_ep_make(struct shm_tp *tp, int fd, struct shm_peer *p, size_t rx_off,
		struct shm_ep **ep_out)
{
	const struct shm_hdr *hdr = p->hdr;
	struct shm_ep *ep;
	uint32_t live;

	live = __atomic_load_n(&hdr->live, __ATOMIC_ACQUIRE);
	if (!live || (live & FUTEX_OWNER_DIED))
		return rdps_set_error(-ECONNRESET,
				      "shm peer pid %u died during the "
				      "handshake: start it again",
				      p->h.pid);
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return rdps_set_error(-ENOMEM, "shm: out of memory");
	ep->ep.tp = &tp->tp;
	ep->tp = tp;
	ep->ep.peer_priv_len = p->h.priv_len;
	memcpy(ep->ep.peer_priv, p->h.priv, p->h.priv_len);
	ep->peer_live = &hdr->live;
	ep->peer_live_val = live;
	ep->peer_sleeping = &hdr->sleeping;
	ep->peer_map = p->map;
	ep->peer_base = p->h.heap_base;
	ep->peer_size = p->h.heap_size;
	ep->peer_data_off = hdr->data_off;
	ep->peer_mrt = (const struct shm_mrt_ent *)(p->map + hdr->mrt_off);
	ep->peer_mrt_max = hdr->mrt_max;
	ep->tx = (struct shm_ring *)(p->map + p->h.ring_off);
	ep->tx_conn = __atomic_load_n(&ep->tx->conn, __ATOMIC_ACQUIRE);
	ep->tx_mask = p->h.ring_cap - 1;
	ep->tx_tail = ep->tx_head = 0;
	ep->rx = (struct shm_ring *)(tp->heap + rx_off);
	ep->rx_mask = tp->ring_cap - 1;
	ep->rx_off = rx_off;
	ep->rx_len = shm_ring_bytes(tp, tp->ring_cap);
	ep->rx_conn = ep->rx->conn;
	ep->fd = fd;
	ep->peer_efd = p->efd;
	ep->peer_pid = (int)p->h.pid;
	if (shm_eps_add(tp, ep)) {
		free(ep);
		return rdps_set_error(-ENOMEM, "shm: out of memory");
	}
	p->map = NULL;
	p->efd = -1;
	*ep_out = ep;
	return 0;
}

int shm_ring_new(struct shm_tp *tp, size_t *off_out)
{
	struct shm_ring *r;
	int ret;

	/* Rings of closed connections come back only here and at fini. */
	shm_zombies_reap(tp, false);
	ret = shm_heap_alloc(tp, shm_ring_bytes(tp, tp->ring_cap), true,
			     off_out);
	if (ret)
		return ret;
	/* Before the hello that hands the ring to the peer. */
	r = (struct shm_ring *)(tp->heap + *off_out);
	__atomic_store_n(&r->conn, ++tp->conn_seq, __ATOMIC_RELEASE);
	return 0;
}

void shm_ep_close(struct rdps_tp_ep *ep_)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	struct shm_tp *tp = ep->tp;
	bool peer_done;

	tp->eps[ep->idx] = tp->eps[--tp->n_eps];
	tp->eps[ep->idx]->idx = ep->idx;
	shm_cq_forget_ep(tp, ep);
	if (ep->disc_pending)
		tp->n_disc--;
	/* A dead peer or one that closed first will not write again. */
	peer_done = __atomic_load_n(ep->peer_live, __ATOMIC_RELAXED) !=
			    ep->peer_live_val ||
		    __atomic_load_n(&ep->tx->closed, __ATOMIC_ACQUIRE);
	shm_ring_retire(tp, ep->fd, ep->rx_off, ep->rx_len, peer_done);
	munmap(ep->peer_map, ep->peer_size);
	close(ep->peer_efd);
	free(ep);
}
