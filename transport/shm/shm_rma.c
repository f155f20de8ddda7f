/* SPDX-License-Identifier: MIT */
/*
 * shm_rma.c - the one-sided operations. Each runs to completion inside the
 * post: liveness and queue checks, the local buffer check, the target's
 * MR table check, then memcpy or a CPU atomic on the target's memory
 * through our mapping of its heap. No system call, lock or allocation on
 * this path, except a wake-up write when the target of an immediate
 * sleeps.
 */
#include <unistd.h>

#include "shm.h"

/* Word-sized copies, the common case of parameter-server control words,
 * become one load and store instead of a call into memcpy. */
static inline void shm_copy(void *dst, const void *src, size_t len)
{
	if (len == 8)
		memcpy(dst, src, 8);
	else
		memcpy(dst, src, len);
}

static inline bool shm_peer_gone(const struct shm_ep *ep)
{
	return __atomic_load_n(ep->peer_live, __ATOMIC_RELAXED) !=
		       ep->peer_live_val ||
	       __atomic_load_n(&ep->tx->closed, __ATOMIC_RELAXED);
}

/* Why a post that shm_post_ready() turned down fails: -ENOTCONN (with
 * the endpoint marked broken), -EAGAIN or -EINVAL. Out of line and cold,
 * so that the posts, which reach it only as a tail call, stay leaf
 * functions that save no registers. */
static __attribute__((noinline, cold)) int shm_post_refused(struct shm_ep *ep,
							    size_t len)
{
	if (ep->dead || shm_peer_gone(ep))
		return shm_ep_broken(ep);
	if (len > SHM_MAX_MSG)
		return rdps_set_error(-EINVAL,
				      "shm: a %zu-byte transfer is over the "
				      "%llu-byte limit: split it",
				      len, SHM_MAX_MSG);
	return -EAGAIN;
}

/* Whether a post may run: the endpoint is up, its send queue and the
 * completion queue have room, the length is within the limit. */
static inline bool shm_post_ready(const struct shm_ep *ep, size_t len)
{
	const struct shm_tp *tp = ep->tp;

	return rdps_likely(!ep->dead && !shm_peer_gone(ep) &&
			   ep->sq_posted - ep->sq_retired < tp->sq_depth &&
			   tp->cq_tail - tp->cq_head < tp->cq_depth &&
			   len <= SHM_MAX_MSG);
}

/* Checks that make a post fail without running: 0 or -errno. */
static inline int shm_post_begin(struct shm_ep *ep, size_t len)
{
	if (shm_post_ready(ep, len))
		return 0;
	return shm_post_refused(ep, len);
}

static inline void shm_post_end(struct shm_ep *ep, uint64_t wr_id, int status,
				uint8_t opcode, uint32_t len, unsigned flags)
{
	struct shm_tp *tp = ep->tp;
	struct shm_cqe *e;

	ep->sq_posted++;
	if ((flags & RDPS_TP_F_UNSIGNALED) && !status)
		return;
	e = &tp->cq[tp->cq_tail++ & tp->cq_mask];
	e->wr_id = wr_id;
	e->ep = &ep->ep;
	e->status = status;
	e->len = len;
	e->seq = ep->sq_posted;
	e->opcode = opcode;
}

static inline int shm_local_check(const struct rdps_tp_mr *mr, const void *buf,
				  size_t len)
{
	uintptr_t b = (uintptr_t)buf, a;

	if (rdps_unlikely(!mr))
		return RDPS_TP_WC_LOC_PROT_ERR;
	a = (uintptr_t)mr->addr;
	if (rdps_unlikely(b < a || len > mr->len || b - a > mr->len - len))
		return RDPS_TP_WC_LOC_PROT_ERR;
	return RDPS_TP_WC_SUCCESS;
}

/*
 * The target's side of a NIC: find the key's entry in the target's MR
 * table, read it under its key as a sequence lock, check access, range and
 * (for a region scoped to one connection) that this connection is the
 * one, and translate raddr into our mapping of the target heap. The heap bound
 * is checked independently of the table so that nothing the target wrote
 * can make us touch memory outside the mapping. What passed is kept in
 * the endpoint's key cache (struct shm_rkey_cache), scoped-region and heap
 * checks folded into one range.
 */
static __attribute__((noinline)) int
shm_remote_check_slow(struct shm_ep *ep, const struct rdps_tp_rkey *rkey,
		      unsigned need, uint64_t raddr, uint64_t len,
		      void **ptr_out)
{
	uint32_t key = rkey->key, idx = key & SHM_KEY_IDX_MASK, k;
	struct shm_rkey_cache *c = &ep->rkc[idx % SHM_RKEY_CACHE];
	const struct shm_mrt_ent *e;
	uint64_t base, rlen, off, conn, heap_lo, heap_hi;
	unsigned access;
	int st;

	if (rdps_unlikely(idx >= ep->peer_mrt_max || !key))
		return RDPS_TP_WC_REM_ACCESS_ERR;
	e = &ep->peer_mrt[idx];
	/* Sequentially consistent: pairs with shm_quiesce(). */
	if (rdps_unlikely(__atomic_load_n(&e->key, __ATOMIC_SEQ_CST) != key))
		return RDPS_TP_WC_REM_ACCESS_ERR;
	/* Acquire loads keep the key's second read after them. */
	access = __atomic_load_n(&e->access, __ATOMIC_ACQUIRE);
	base = __atomic_load_n(&e->addr, __ATOMIC_ACQUIRE);
	rlen = __atomic_load_n(&e->len, __ATOMIC_ACQUIRE);
	conn = __atomic_load_n(&e->conn, __ATOMIC_ACQUIRE);
	k = __atomic_load_n(&e->key, __ATOMIC_RELAXED);
	if (rdps_unlikely(k != key))
		return RDPS_TP_WC_REM_ACCESS_ERR;
	if (rdps_unlikely(conn && conn != ep->tx_conn))
		return RDPS_TP_WC_REM_ACCESS_ERR;
	/* The cache entry: the region clipped to the heap's data part. */
	heap_lo = ep->peer_base + ep->peer_data_off;
	heap_hi = ep->peer_base + ep->peer_size;
	if (heap_hi > ep->peer_base) {
		c->key = key;
		c->access = access;
		c->lo = base > heap_lo ? base : heap_lo;
		if (base >= heap_hi || rlen > heap_hi - base)
			c->hi = heap_hi;
		else
			c->hi = base + rlen;
		if (c->hi < c->lo) { /* nothing of it in the heap */
			c->lo = 1;
			c->hi = 0;
		}
		c->delta = (uint64_t)(uintptr_t)ep->peer_map - ep->peer_base;
	}
	st = rdps_tp_check_access(base, rlen, access, need, raddr, len);
	if (rdps_unlikely(st))
		return st;
	off = raddr - ep->peer_base;
	if (rdps_unlikely(raddr < ep->peer_base || off < ep->peer_data_off ||
			  off > ep->peer_size || len > ep->peer_size - off))
		return RDPS_TP_WC_REM_ACCESS_ERR;
	*ptr_out = ep->peer_map + off;
	return RDPS_TP_WC_SUCCESS;
}

/*
 * The posts' fast path: the place in our mapping of [raddr, raddr + len)
 * when key is cached, still the target's, allows need and covers the
 * range; NULL when any of that fails, and the post's general path then
 * checks again in the contract's order and says why. Split so that the
 * common post is a leaf that saves no registers: anything unusual is a
 * tail call.
 */
static inline void *shm_remote_fast(struct shm_ep *ep, uint32_t key,
				    unsigned need, uint64_t raddr, uint64_t len)
{
	const struct shm_rkey_cache *c =
		&ep->rkc[(key & SHM_KEY_IDX_MASK) % SHM_RKEY_CACHE];

	/* Sequentially consistent: pairs with shm_quiesce(). */
	if (c->key != key ||
	    __atomic_load_n(&ep->peer_mrt[key & SHM_KEY_IDX_MASK].key,
			    __ATOMIC_SEQ_CST) != key ||
	    !(c->access & need) ||
	    (need == RDPS_TP_ACCESS_REMOTE_ATOMIC && (raddr & 7)) ||
	    raddr < c->lo || raddr > c->hi || len > c->hi - raddr)
		return NULL;
	return (void *)(uintptr_t)(raddr + c->delta);
}

/* shm_remote_check_slow's contract; a key found in the cache costs one
 * load of the entry's key word and one range check. */
static inline int shm_remote_check(struct shm_ep *ep,
				   const struct rdps_tp_rkey *rkey,
				   unsigned need, uint64_t raddr, uint64_t len,
				   void **ptr_out)
{
	void *p = shm_remote_fast(ep, rkey->key, need, raddr, len);

	if (rdps_unlikely(!p))
		return shm_remote_check_slow(ep, rkey, need, raddr, len,
					     ptr_out);
	*ptr_out = p;
	return RDPS_TP_WC_SUCCESS;
}

/* After reading target memory: was the registration revoked meanwhile? */
static inline bool shm_key_still(const struct shm_ep *ep, uint32_t key)
{
	shm_rmb();
	return __atomic_load_n(&ep->peer_mrt[key & SHM_KEY_IDX_MASK].key,
			       __ATOMIC_RELAXED) == key;
}

/*
 * Brackets a write or atomic into target memory. The target's
 * deregistration clears the key, then waits for busy to drop (as a NIC
 * finishes in-flight DMA before a deregistration returns): an operation
 * either sees the cleared key or is waited for. That needs a store-load
 * fence on both sides; where the kernel offers membarrier(2), the rare
 * deregistration pays for both (shm_quiesce) and the hot path pays none. Reads
 * need no bracket: they re-check the key afterwards.
 */
static inline void shm_busy_enter(struct shm_ep *ep)
{
	if (rdps_likely(shm_asym_fence)) {
		/* The deregistering side's membarrier() supplies the
		 * store-load fence: only the compiler must keep the order. */
		__atomic_store_n(&ep->tx->busy, 1, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	} else {
		__atomic_store_n(&ep->tx->busy, 1, __ATOMIC_SEQ_CST);
	}
}

static inline void shm_busy_exit(struct shm_ep *ep)
{
	__atomic_store_n(&ep->tx->busy, 0, __ATOMIC_RELEASE);
}

/* The word-sized fast path's bracket for a write or atomic: busy raised
 * and the place of [raddr, raddr + 8) in our mapping, or busy dropped
 * again and NULL (the general path then runs, checking everything). */
static inline void *shm_word_enter(struct shm_ep *ep, uint32_t key,
				   unsigned need, uint64_t raddr)
{
	void *p;

	shm_busy_enter(ep);
	p = shm_remote_fast(ep, key, need, raddr, 8);
	if (rdps_unlikely(!p))
		shm_busy_exit(ep);
	return p;
}

/* A put of any length, every check in the contract's order. */
static __attribute__((noinline)) int
shm_put_any(struct rdps_tp_ep *ep_, const void *lbuf, size_t len,
	    struct rdps_tp_mr *lmr, uint64_t raddr,
	    const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	void *dst;
	int ret, st = RDPS_TP_WC_SUCCESS;

	ret = shm_post_begin(ep, len);
	if (rdps_unlikely(ret))
		return ret;
	if (len)
		st = shm_local_check(lmr, lbuf, len);
	if (rdps_likely(!st)) {
		shm_busy_enter(ep);
		st = shm_remote_check(ep, rkey, RDPS_TP_ACCESS_REMOTE_WRITE,
				      raddr, len, &dst);
		if (rdps_likely(!st) && len)
			shm_copy(dst, lbuf, len);
		shm_busy_exit(ep);
	}
	shm_post_end(ep, wr_id, st, RDPS_TP_OP_WRITE, (uint32_t)len, flags);
	return 0;
}

/*
 * Word-sized puts, gets and atomics (the parameter server's clock words,
 * versions and cuts) are the ones whose latency is the post's own cost:
 * with every check passing and the key cached, each is a leaf that saves
 * no registers (the local and cached remote checks, one load and store or
 * CPU atomic, the completion). Anything else (another length, a check
 * failing, a key not cached) takes the general path, a tail call that
 * checks everything again in the contract's order.
 */
int shm_put(struct rdps_tp_ep *ep_, const void *lbuf, size_t len,
	    struct rdps_tp_mr *lmr, uint64_t raddr,
	    const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	void *dst;

	if (rdps_unlikely(len != 8 || !shm_post_ready(ep, 8) ||
			  shm_local_check(lmr, lbuf, 8)))
		return shm_put_any(ep_, lbuf, len, lmr, raddr, rkey, wr_id,
				   flags);
	dst = shm_word_enter(ep, rkey->key, RDPS_TP_ACCESS_REMOTE_WRITE, raddr);
	if (rdps_unlikely(!dst))
		return shm_put_any(ep_, lbuf, len, lmr, raddr, rkey, wr_id,
				   flags);
	memcpy(dst, lbuf, 8);
	shm_busy_exit(ep);
	shm_post_end(ep, wr_id, RDPS_TP_WC_SUCCESS, RDPS_TP_OP_WRITE, 8, flags);
	return 0;
}

static void shm_wake(struct shm_ep *ep)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already huge: the target will wake. */
	if (write(ep->peer_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rdps_dbg("shm: waking peer pid %d failed: %s", ep->peer_pid,
			 strerror(errno));
}

int shm_put_imm(struct rdps_tp_ep *ep_, const void *lbuf, size_t len,
		struct rdps_tp_mr *lmr, uint64_t raddr,
		const struct rdps_tp_rkey *rkey, uint32_t imm, uint64_t wr_id,
		unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	uint64_t tail = ep->tx_tail;
	struct shm_imm *slot;
	void *dst;
	int ret, st = RDPS_TP_WC_SUCCESS;

	ret = shm_post_begin(ep, len);
	if (rdps_unlikely(ret))
		return ret;
	if (rdps_unlikely(tail - ep->tx_head > ep->tx_mask)) {
		ep->tx_head = __atomic_load_n(&ep->tx->head, __ATOMIC_ACQUIRE);
		if (tail - ep->tx_head > ep->tx_mask)
			return -EAGAIN;
	}
	if (len) {
		st = shm_local_check(lmr, lbuf, len);
		if (rdps_likely(!st)) {
			shm_busy_enter(ep);
			st = shm_remote_check(ep, rkey,
					      RDPS_TP_ACCESS_REMOTE_WRITE,
					      raddr, len, &dst);
			if (rdps_likely(!st))
				shm_copy(dst, lbuf, len);
			shm_busy_exit(ep);
		}
	}
	if (rdps_likely(!st)) {
		slot = &ep->tx->ent[tail & ep->tx_mask];
		slot->imm = imm;
		slot->len = (uint32_t)len;
		/* Publishes the data and the entry together; sequentially
		 * consistent against shm_arm(): either the target sees our
		 * tail before sleeping, or we see it sleeping. */
		__atomic_store_n(&ep->tx->tail, tail + 1, __ATOMIC_SEQ_CST);
		ep->tx_tail = tail + 1;
		if (__atomic_load_n(ep->peer_sleeping, __ATOMIC_SEQ_CST))
			shm_wake(ep);
	}
	shm_post_end(ep, wr_id, st, RDPS_TP_OP_WRITE_IMM, (uint32_t)len, flags);
	return 0;
}

/* A get of any length, every check in the contract's order. */
static __attribute__((noinline)) int
shm_get_any(struct rdps_tp_ep *ep_, void *lbuf, size_t len,
	    struct rdps_tp_mr *lmr, uint64_t raddr,
	    const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	void *src;
	int ret, st = RDPS_TP_WC_SUCCESS;

	ret = shm_post_begin(ep, len);
	if (rdps_unlikely(ret))
		return ret;
	if (len)
		st = shm_local_check(lmr, lbuf, len);
	if (rdps_likely(!st))
		st = shm_remote_check(ep, rkey, RDPS_TP_ACCESS_REMOTE_READ,
				      raddr, len, &src);
	if (rdps_likely(!st) && len) {
		shm_copy(lbuf, src, len);
		if (rdps_unlikely(!shm_key_still(ep, rkey->key)))
			st = RDPS_TP_WC_REM_ACCESS_ERR;
	}
	shm_post_end(ep, wr_id, st, RDPS_TP_OP_READ, (uint32_t)len, flags);
	return 0;
}

int shm_get(struct rdps_tp_ep *ep_, void *lbuf, size_t len,
	    struct rdps_tp_mr *lmr, uint64_t raddr,
	    const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	uint32_t key = rkey->key;
	const void *src;

	if (rdps_unlikely(len != 8 || !shm_post_ready(ep, 8) ||
			  shm_local_check(lmr, lbuf, 8)))
		return shm_get_any(ep_, lbuf, len, lmr, raddr, rkey, wr_id,
				   flags);
	src = shm_remote_fast(ep, key, RDPS_TP_ACCESS_REMOTE_READ, raddr, 8);
	if (rdps_unlikely(!src))
		return shm_get_any(ep_, lbuf, len, lmr, raddr, rkey, wr_id,
				   flags);
	memcpy(lbuf, src, 8);
	shm_post_end(ep, wr_id,
		     rdps_likely(shm_key_still(ep, key))
			     ? RDPS_TP_WC_SUCCESS
			     : RDPS_TP_WC_REM_ACCESS_ERR,
		     RDPS_TP_OP_READ, 8, flags);
	return 0;
}

/* All ranges are checked before any is copied, so a bad one leaves the
 * local places untouched (transport.h, "Gather READ"). */
int shm_get_gather(struct rdps_tp_ep *ep_,
		   const struct rdps_tp_gather_ent *ents, unsigned k,
		   struct rdps_tp_mr *lmr, uint64_t wr_id, unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	uint64_t total;
	void *src[RDPS_TP_GATHER_MAX];
	int ret, st = RDPS_TP_WC_SUCCESS;

	ret = rdps_tp_gather_check(ents, k, 0, &total);
	if (rdps_unlikely(ret))
		return ret;
	ret = shm_post_begin(ep, total);
	if (rdps_unlikely(ret))
		return ret;
	for (unsigned i = 0; !st && i < k; i++) {
		st = shm_local_check(lmr, ents[i].lbuf, ents[i].len);
		if (!st)
			st = shm_remote_check(
				ep, ents[i].rkey, RDPS_TP_ACCESS_REMOTE_READ,
				ents[i].raddr, ents[i].len, &src[i]);
	}
	for (unsigned i = 0; !st && i < k; i++) {
		shm_copy(ents[i].lbuf, src[i], ents[i].len);
		if (rdps_unlikely(!shm_key_still(ep, ents[i].rkey->key)))
			st = RDPS_TP_WC_REM_ACCESS_ERR;
	}
	shm_post_end(ep, wr_id, st, RDPS_TP_OP_READ, (uint32_t)total, flags);
	return 0;
}

static inline int shm_res_check(const struct rdps_tp_mr *mr,
				const uint64_t *res)
{
	if (rdps_unlikely((uintptr_t)res & 7))
		return RDPS_TP_WC_LOC_PROT_ERR;
	return shm_local_check(mr, res, sizeof(*res));
}

/* A fetch-add with every check in the contract's order. */
static __attribute__((noinline)) int
shm_fadd_any(struct rdps_tp_ep *ep_, uint64_t add, uint64_t *res,
	     struct rdps_tp_mr *res_mr, uint64_t raddr,
	     const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	void *p;
	int ret, st;

	ret = shm_post_begin(ep, 0);
	if (rdps_unlikely(ret))
		return ret;
	st = shm_res_check(res_mr, res);
	if (rdps_likely(!st)) {
		shm_busy_enter(ep);
		st = shm_remote_check(ep, rkey, RDPS_TP_ACCESS_REMOTE_ATOMIC,
				      raddr, sizeof(uint64_t), &p);
		if (rdps_likely(!st))
			*res = __atomic_fetch_add((uint64_t *)p, add,
						  __ATOMIC_SEQ_CST);
		shm_busy_exit(ep);
	}
	shm_post_end(ep, wr_id, st, RDPS_TP_OP_FADD, sizeof(uint64_t), flags);
	return 0;
}

/* A compare-swap with every check in the contract's order. */
static __attribute__((noinline)) int
shm_cswap_any(struct rdps_tp_ep *ep_, uint64_t cmp, uint64_t swp, uint64_t *res,
	      struct rdps_tp_mr *res_mr, uint64_t raddr,
	      const struct rdps_tp_rkey *rkey, uint64_t wr_id, unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	void *p;
	int ret, st;

	ret = shm_post_begin(ep, 0);
	if (rdps_unlikely(ret))
		return ret;
	st = shm_res_check(res_mr, res);
	if (rdps_likely(!st)) {
		shm_busy_enter(ep);
		st = shm_remote_check(ep, rkey, RDPS_TP_ACCESS_REMOTE_ATOMIC,
				      raddr, sizeof(uint64_t), &p);
		if (rdps_likely(!st)) {
			/* On failure cmp receives the current value: the old
			 * value either way, as a NIC returns it. */
			__atomic_compare_exchange_n((uint64_t *)p, &cmp, swp,
						    false, __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST);
			*res = cmp;
		}
		shm_busy_exit(ep);
	}
	shm_post_end(ep, wr_id, st, RDPS_TP_OP_CSWAP, sizeof(uint64_t), flags);
	return 0;
}

/* The atomics' fast path up to the CPU atomic: the post may run, res is
 * a good local place and the target word passes with its key cached;
 * then busy is raised and the word's place returned, else NULL. */
static inline uint64_t *shm_atomic_enter(struct shm_ep *ep,
					 const struct rdps_tp_mr *res_mr,
					 const uint64_t *res, uint32_t key,
					 uint64_t raddr)
{
	if (rdps_unlikely(!shm_post_ready(ep, 0) || shm_res_check(res_mr, res)))
		return NULL;
	return shm_word_enter(ep, key, RDPS_TP_ACCESS_REMOTE_ATOMIC, raddr);
}

int shm_atomic_fadd(struct rdps_tp_ep *ep_, uint64_t add, uint64_t *res,
		    struct rdps_tp_mr *res_mr, uint64_t raddr,
		    const struct rdps_tp_rkey *rkey, uint64_t wr_id,
		    unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	uint64_t *p;

	p = shm_atomic_enter(ep, res_mr, res, rkey->key, raddr);
	if (rdps_unlikely(!p))
		return shm_fadd_any(ep_, add, res, res_mr, raddr, rkey, wr_id,
				    flags);
	*res = __atomic_fetch_add(p, add, __ATOMIC_SEQ_CST);
	shm_busy_exit(ep);
	shm_post_end(ep, wr_id, RDPS_TP_WC_SUCCESS, RDPS_TP_OP_FADD, 8, flags);
	return 0;
}

int shm_atomic_cswap(struct rdps_tp_ep *ep_, uint64_t cmp, uint64_t swp,
		     uint64_t *res, struct rdps_tp_mr *res_mr, uint64_t raddr,
		     const struct rdps_tp_rkey *rkey, uint64_t wr_id,
		     unsigned flags)
{
	struct shm_ep *ep = to_shm_ep(ep_);
	uint64_t *p;

	p = shm_atomic_enter(ep, res_mr, res, rkey->key, raddr);
	if (rdps_unlikely(!p))
		return shm_cswap_any(ep_, cmp, swp, res, res_mr, raddr, rkey,
				     wr_id, flags);
	/* The old value either way, as a NIC returns it. */
	__atomic_compare_exchange_n(p, &cmp, swp, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	*res = cmp;
	shm_busy_exit(ep);
	shm_post_end(ep, wr_id, RDPS_TP_WC_SUCCESS, RDPS_TP_OP_CSWAP, 8, flags);
	return 0;
}
