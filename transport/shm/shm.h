/* SPDX-License-Identifier: MIT */
/*
 * shm.h - private header of the shm transport: processes on one host that
 * reach each other's registered memory through shared mappings.
 *
 * Every transport instance owns one heap: a sealed memfd, sparse, mapped
 * MAP_SHARED|MAP_NORESERVE. Its first pages are the control area
 *
 *	[header page][MR table: SHM_MRT_MAX entries][data ...]
 *
 * and the data part feeds mem_alloc and the per-connection immediate
 * rings. A peer receives the memfd in the handshake and maps the whole
 * heap (the control area read-only), so a one-sided operation is an
 * access check against the target's MR table followed by a memcpy or a
 * CPU atomic into the target's memory, done inside the post; the
 * completion is then queued locally so callers see the verbs model.
 *
 * Ownership of shared words (single writer each):
 *	header, MR table, ring head, ring closed	the heap's owner
 *	header live word				the kernel, on owner
 *death ring tail and entries				the one peer the ring
 *						was allocated for
 *
 * Peer death is seen without a system call: a dedicated sleeping thread
 * of every instance puts the header's live word (holding its thread id) on
 * its robust futex list, and the kernel rewrites the word to
 * FUTEX_OWNER_DIED when that thread dies, before the process counts as
 * exited. Posts compare one cached word and fail with -ENOTCONN.
 *
 * What shm can enforce. Access rights, bounds, revoked keys and regions
 * scoped to one connection (mem_reg_ep: the MR table entry names the
 * connection, by the id the target wrote into that connection's ring) are
 * all checked by the initiator's own library, in shm_remote_check, since
 * no one else sits on the path. That stops a wrong key from a correct
 * peer, a bug or a stale key, exactly as a NIC would. It cannot stop a
 * hostile process of the job: every peer maps the whole data part of the
 * heap read-write, other peers' regions included, and can store to it
 * directly. The boundary against other users and other jobs is the
 * kernel's: the listener is an abstract unix socket, the heap travels only
 * as a descriptor over it after the job token matched, and the memfd is
 * created with mode 0600 and sealed against resizing. Per-peer isolation
 * on one host would need one memfd per scoped region, mapped only by its
 * peer.
 */
#ifndef RDPS_SHM_H
#define RDPS_SHM_H

#include <linux/futex.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rdps_base.h"
#include "transport.h"

#define SHM_HEAP_MAGIC 0x5244505348454150ull /* "RDPSHEAP" */
/* 2: MR table entries name the connection a region is scoped to, and rings
 * carry their connection's id. */
#define SHM_HEAP_VERSION 2
/* Registrations with remote access per instance; the table costs 32 B
 * each, sparse until used. */
#define SHM_MRT_MAX 16384u
#define SHM_KEY_IDX_BITS 14
#define SHM_KEY_IDX_MASK ((1u << SHM_KEY_IDX_BITS) - 1)
#define SHM_KEY_GEN_MAX ((1u << (32 - SHM_KEY_IDX_BITS)) - 1)
/* Largest single transfer, as on RDMA NICs; comp.len is 32 bits. */
#define SHM_MAX_MSG (1ull << 31)
/* Smallest immediate ring; rings grow to the next power of two of
 * sq_depth when that is larger. */
#define SHM_RING_MIN 1024u
#define SHM_RING_MAX (1u << 20)
#define SHM_CACHELINE 64
/* Polls between two checks of the peers' liveness words. */
#define SHM_CHECK_EVERY 1024u
/* Longest a deregistration waits for a peer inside a remote write. */
#define SHM_QUIESCE_NS 1000000000ull
/* Least time between two hang-up checks of the sockets from poll(). */
#define SHM_SOCK_CHECK_NS 100000000ull

struct shm_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t mrt_max;
	uint64_t heap_size;
	uint64_t mrt_off;
	uint64_t data_off;
	_Alignas(SHM_CACHELINE) struct robust_list live_ent;
	uint32_t live;
	_Alignas(SHM_CACHELINE) uint32_t sleeping;
};

/* key is written last on registration and first (to 0) on deregistration:
 * readers use it as a sequence lock over the other fields. */
struct shm_mrt_ent {
	uint32_t key;
	uint32_t access;
	uint64_t addr; /* owner's virtual address */
	uint64_t len;
	/* 0: every peer; else the id of the one connection allowed (its
	 * ring's conn word, see struct shm_ring), from mem_reg_ep */
	uint64_t conn;
};
_Static_assert(sizeof(struct shm_mrt_ent) == 32, "mr table entry");

struct shm_imm {
	uint32_t imm;
	uint32_t len;
};

/* A single-producer single-consumer ring of immediates, allocated in the
 * consumer's heap for one connection. */
struct shm_ring {
	_Alignas(SHM_CACHELINE) uint64_t tail;	 /* producer */
	_Alignas(SHM_CACHELINE) uint64_t head;	 /* consumer */
	_Alignas(SHM_CACHELINE) uint32_t closed; /* consumer, once */
	/* consumer, before the handshake: the connection's id in the
	 * consumer's instance, never reused; the producer reads it once and
	 * names itself with it to regions scoped to one connection */
	uint64_t conn;
	/* producer: nonzero while inside a write or atomic on the consumer,
	 * so that deregistration can wait for it (see shm_quiesce) */
	_Alignas(SHM_CACHELINE) uint32_t busy;
	_Alignas(SHM_CACHELINE) struct shm_imm ent[];
};

/* A completion of a post, queued for poll. Only the fields a post sets,
 * each stored and loaded at its own width: poll reads an entry a few
 * instructions after the post wrote it, while the stores are still in the
 * store buffer, and a load that spans two stores (a 16-byte copy of a
 * whole struct rdps_tp_comp) cannot be forwarded from them and waits for
 * them to retire. */
struct shm_cqe {
	uint64_t wr_id;
	struct rdps_tp_ep *ep; /* NULL once the endpoint is closed */
	int32_t status;
	uint32_t len;
	uint32_t seq; /* ep's post count at this op, retires the sq */
	uint8_t opcode;
};

/* A block of the heap, offsets from the heap start. */
struct shm_extent {
	size_t off;
	size_t len;
	bool internal; /* a ring: never freed through mem_free */
};

/* An inbound ring of a closed endpoint, kept until the peer can no longer
 * write into it (its end of the socket is closed). */
struct shm_zombie {
	int fd;
	size_t off;
	size_t len;
};

/*
 * One checked remote key, cached by the initiator (shm_rma.c,
 * shm_remote_check): what the target's MR table entry said while its key
 * word read key, reduced to what a post needs. Valid for as long as the
 * entry's key word still reads key, which every use checks: the target
 * clears that word before it changes anything else in the entry, and a
 * new registration in the same slot has another generation. (Only after
 * SHM_KEY_GEN_MAX registrations of one slot does a key come back; the
 * table alone would then take a stale key for the new region, too. The
 * cached range stays inside the peer's heap either way.)
 */
struct shm_rkey_cache {
	uint32_t key; /* 0: empty */
	uint32_t access;
	uint64_t lo;	/* allowed target addresses: the region within the */
	uint64_t hi;	/* peer heap's data part, [lo, hi) */
	uint64_t delta; /* raddr + delta: the address in our mapping */
};
/* Entries per endpoint, direct-mapped by the key's table index. */
#define SHM_RKEY_CACHE 4u

struct shm_ep;

struct shm_tp {
	struct rdps_tp tp;
	uint32_t n_disc; /* endpoints with disc_pending */

	/* Completion queue: written by posts, read by poll. */
	struct shm_cqe *cq;
	uint32_t cq_mask;
	uint32_t cq_depth;
	uint32_t cq_head;
	uint32_t cq_tail;
	uint32_t sq_depth;
	uint32_t poll_count;
	bool armed;
	uint64_t sock_check_ns;

	struct shm_ep **eps;
	uint32_t n_eps;
	uint32_t cap_eps;
	uint32_t rx_next; /* first endpoint the next poll scans */
	uint32_t ring_cap;
	uint64_t conn_seq; /* last connection id handed out */

	/* Heap. */
	int memfd;
	uint8_t *heap;
	size_t heap_size;
	size_t data_off;
	size_t page;
	struct shm_hdr *hdr;
	struct shm_mrt_ent *mrt;
	struct shm_extent *free_ext; /* sorted by offset, coalesced */
	size_t n_free;
	size_t cap_free;
	struct shm_extent *used_ext;
	size_t n_used;
	size_t cap_used;
	size_t free_bytes;

	/* Registration table bookkeeping (process-private). */
	uint32_t *mrt_gen;
	uint32_t *mrt_fifo; /* free indexes, oldest first, spreads reuse */
	uint32_t mrt_fifo_head;
	uint32_t mrt_n_free;

	/* Wake-ups and liveness. */
	int efd;      /* wait fd; peers write it after an immediate */
	int live_efd; /* tells the liveness thread to leave */
	pthread_t live_thr;
	bool live_thr_started;
	struct robust_list_head rl_head;

	struct shm_zombie *zombies;
	size_t n_zombies;
	size_t cap_zombies;
};

struct shm_ep {
	struct rdps_tp_ep ep;
	struct shm_tp *tp;
	bool disc_pending; /* a DISCONNECT completion is owed */

	/* Hot: read by every post. */
	bool dead;
	uint32_t peer_live_val;
	const uint32_t *peer_live;
	struct shm_ring *tx; /* in the peer's heap; we produce */
	uint8_t *peer_map;   /* our mapping of the peer's heap */
	uint64_t peer_base;  /* the peer's address of its heap */
	uint64_t peer_size;
	uint64_t peer_data_off;
	const struct shm_mrt_ent *peer_mrt;
	uint32_t peer_mrt_max;
	uint64_t tx_conn; /* our connection's id at the peer (tx->conn) */
	uint32_t sq_posted;
	uint32_t sq_retired;
	uint64_t tx_tail;
	uint64_t tx_head; /* last head seen: refreshed only when full */
	uint32_t tx_mask;
	const uint32_t *peer_sleeping;
	struct shm_rkey_cache rkc[SHM_RKEY_CACHE];

	/* Inbound immediates. */
	struct shm_ring *rx; /* in our heap; the peer produces */
	uint64_t rx_head;
	uint32_t rx_mask;
	size_t rx_off;
	size_t rx_len;
	uint64_t rx_conn; /* the connection's id here (rx->conn) */

	int fd;	      /* the connection socket: handshake, then hang-up */
	int peer_efd; /* the peer's wait fd */
	int peer_pid;
	uint32_t idx; /* in tp->eps */
};

/* A connection accepted whose hello has not come yet. */
struct shm_pending {
	int fd;
	uint64_t deadline; /* ns: dropped then (RDPS_TP_HELLO_MS) */
};

struct shm_listener {
	struct rdps_tp_listener l;
	int fd;
	char name[128];
	uint32_t priv_len;
	uint8_t priv[RDPS_TP_PRIV_MAX];
	/* Handshakes in progress, served together: a silent peer holds up
	 * nobody (transport.h, RDPS_TP_MAX_PENDING). */
	int n_pend;
	struct shm_pending pend[RDPS_TP_MAX_PENDING];
};

struct shm_mr {
	struct rdps_tp_mr mr;
	uint32_t key; /* 0: no remote access */
	uint32_t idx;
};

/*
 * Keeps plain loads (a memcpy from target memory) ahead of the loads that
 * follow. gcc refuses thread fences under -fsanitize=thread, which cannot
 * see other processes' memory anyway; there a compiler barrier suffices
 * for x86, whose loads are not reordered with each other.
 */
#ifdef __SANITIZE_THREAD__
#define shm_rmb() __atomic_signal_fence(__ATOMIC_ACQUIRE)
#else
#define shm_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif

/* 1 when this process is registered for expedited global membarriers, so
 * remote writers may skip their store-load fence (see shm_busy_enter). */
extern int shm_asym_fence;

static inline struct shm_tp *to_shm_tp(struct rdps_tp *tp)
{
	return container_of(tp, struct shm_tp, tp);
}

static inline struct shm_ep *to_shm_ep(struct rdps_tp_ep *ep)
{
	return container_of(ep, struct shm_ep, ep);
}

static inline struct shm_mr *to_shm_mr(struct rdps_tp_mr *mr)
{
	return container_of(mr, struct shm_mr, mr);
}

static inline struct shm_listener *to_shm_listener(struct rdps_tp_listener *l)
{
	return container_of(l, struct shm_listener, l);
}

static inline size_t shm_round_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static inline size_t shm_ring_bytes(struct shm_tp *tp, uint32_t cap)
{
	return shm_round_up(offsetof(struct shm_ring, ent) +
				    (size_t)cap * sizeof(struct shm_imm),
			    tp->page);
}

extern const struct rdps_tp_ops rdps_shm_ops;

/* shm_heap.c */
int shm_heap_init(struct shm_tp *tp, size_t size);
void shm_heap_fini(struct shm_tp *tp);
int shm_heap_alloc(struct shm_tp *tp, size_t len, bool internal,
		   size_t *off_out);
int shm_heap_release(struct shm_tp *tp, size_t off, size_t len, bool internal);
bool shm_heap_user_range(struct shm_tp *tp, const uint8_t *p, size_t len);
rdps_tp_mem_alloc_fn shm_mem_alloc;
rdps_tp_mem_free_fn shm_mem_free;

/* shm_mr.c */
int shm_mrt_init(struct shm_tp *tp);
void shm_mrt_fini(struct shm_tp *tp);
rdps_tp_mem_reg_fn shm_mem_reg;
rdps_tp_mem_reg_ep_fn shm_mem_reg_ep;
rdps_tp_mem_dereg_fn shm_mem_dereg;
rdps_tp_rkey_pack_fn shm_rkey_pack;
rdps_tp_rkey_unpack_fn shm_rkey_unpack;

/* Handshake ------------------------------------------------------------ */

#define SHM_HELLO_MAGIC 0x52445348u /* "RDSH" */

/*
 * Both sides send one. Native byte order: it never leaves the host.
 * magic and version come first and stay there in every future version, so
 * a mismatch is always reported as such.
 */
struct shm_hello {
	uint32_t magic;
	uint32_t version;
	int32_t status; /* reply: 0, or the positive errno refusing the peer */
	uint32_t pid;
	uint64_t token;
	uint64_t heap_base;
	uint64_t heap_size;
	uint64_t ring_off; /* the ring the receiver produces into */
	uint32_t ring_cap;
	uint32_t priv_len;
	uint8_t priv[RDPS_TP_PRIV_MAX];
};
_Static_assert(sizeof(struct shm_hello) == 88, "shm hello");

/*
 * The checks of what a peer sends in the handshake, pure so that a fuzzer
 * can drive them (tests/fuzz/fuzz_shm_hello.c); shm_listen.c applies them.
 *
 * shm_hello_parse: a received datagram of len bytes (trunc: the kernel cut
 * it). 0 with *h the hello; -EPROTO for anything that is not a hello of our
 * version. *h is written either way: zeroed, then magic and version when
 * the magic is ours, so a caller can name the peer's version (0: unknown).
 *
 * shm_hello_geometry_check: the heap and ring sizes the hello announces,
 * before the heap is mapped. shm_heap_hdr_check: the header of the mapped
 * heap against the hello, so that the MR table [mrt_off, +mrt_max entries)
 * and the ring [ring_off, +ring_bytes) lie inside the heap. Both 0 or
 * -EPROTO.
 */
int shm_hello_parse(const void *buf, size_t len, int trunc,
		    struct shm_hello *h);
int shm_hello_geometry_check(const struct shm_hello *h, size_t page);
int shm_heap_hdr_check(const struct shm_hello *h, const struct shm_hdr *hdr,
		       size_t page, uint64_t ring_bytes);

/* shm_listen.c: listeners, the handshake, connect */
rdps_tp_listen_fn shm_listen;
rdps_tp_listener_url_fn shm_listener_url;
rdps_tp_accept_fn shm_accept;
rdps_tp_listener_close_fn shm_listener_close;
rdps_tp_connect_fn shm_connect;

/* shm_ep.c: the endpoint object */

/* The peer's side of a handshake, once received and mapped. */
struct shm_peer {
	struct shm_hello h;
	int memfd;
	int efd;
	uint8_t *map;
	const struct shm_hdr *hdr;
};

/* A new inbound ring in our heap, with a fresh connection id, for the
 * hello that hands it to a peer; *off_out its heap offset. */
int shm_ring_new(struct shm_tp *tp, size_t *off_out);
/* Build the endpoint over fd, p and our ring at rx_off; takes p's mapping
 * and wake fd on success (the caller still owns fd and the ring on
 * failure). -ECONNRESET if the peer died during the handshake. */
int shm_ep_make(struct shm_tp *tp, int fd, struct shm_peer *p, size_t rx_off,
		struct shm_ep **ep_out);
rdps_tp_ep_close_fn shm_ep_close;

/* shm_live.c: liveness of peers and of this process */

/* Start / stop the thread whose robust futex list holds our live word. */
int shm_live_start(struct shm_tp *tp);
void shm_live_stop(struct shm_tp *tp);
/* Mark ep broken (a DISCONNECT completion is owed) and return -ENOTCONN
 * with rdps_errmsg() set, for a post or registration on it. */
int shm_ep_broken(struct shm_ep *ep);
/* Notice departed peers without a post: liveness words always, sockets
 * (and zombie rings) when sockets is set. */
void shm_check_peers(struct shm_tp *tp, bool sockets);
/* Give up an inbound ring and its socket fd (-1: none): at once when
 * peer_done or the peer's end is closed, else kept as a zombie until it
 * is. */
void shm_ring_retire(struct shm_tp *tp, int fd, size_t off, size_t len,
		     bool peer_done);
/* Free the zombie rings whose peers hung up (all: every one, at fini). */
void shm_zombies_reap(struct shm_tp *tp, bool all);

/* shm_rma.c */
rdps_tp_put_fn shm_put;
rdps_tp_put_imm_fn shm_put_imm;
rdps_tp_get_fn shm_get;
rdps_tp_get_gather_fn shm_get_gather;
rdps_tp_atomic_fadd_fn shm_atomic_fadd;
rdps_tp_atomic_cswap_fn shm_atomic_cswap;

/* shm_cq.c */
rdps_tp_poll_fn shm_poll;
rdps_tp_wait_fd_fn shm_wait_fd;
rdps_tp_arm_fn shm_arm;
void shm_cq_forget_ep(struct shm_tp *tp, struct shm_ep *ep);

#endif /* RDPS_SHM_H */
