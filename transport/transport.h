/* SPDX-License-Identifier: MIT */
/*
 * transport.h - the private one-sided transport contract of rdps.
 *
 * Every transport (verbs, shm, tcp) fills one struct rdps_tp_ops and gives
 * the parameter server the same model, which is the model of RDMA verbs on a
 * reliable-connected queue pair:
 *
 *   - a transport instance (struct rdps_tp) owns one completion queue;
 *   - endpoints (struct rdps_tp_ep) are connections to one peer each, made
 *     with listen/accept or connect on a URL whose scheme names the
 *     transport: "shm://NAME", "tcp://HOST:PORT", "verbs://HOST:PORT";
 *   - memory is registered with access flags; a registration has a remote
 *     key that packs into a fixed 24-byte big-endian wire form, which the
 *     peer unpacks against its endpoint;
 *   - a registration serves every connected peer (mem_reg) or the peer of
 *     one endpoint alone (mem_reg_ep, least privilege);
 *   - one-sided operations (read, write, write-with-immediate, fetch-add,
 *     compare-swap) are posted on an endpoint and never block; each
 *     produces one completion in the initiator's queue, unless posted
 *     unsignaled and successful;
 *   - write-with-immediate also produces a RECV_IMM completion at the
 *     target carrying the 32-bit immediate;
 *   - per-operation failures arrive as a completion status, never as a
 *     crash, a hang or a silently dropped operation.
 *
 * Threads: a transport instance is thread-compatible, not thread-safe. The
 * caller serialises all calls on one instance and its endpoints, listeners
 * and registrations (like a UCX worker in single-thread mode). Transports
 * may run internal progress threads; those never call back into user code.
 *
 * Errors: functions return 0 (or a count >= 0) on success and a negative
 * errno on failure. Out-parameters are set only on success. Where an error
 * comes from bad input or the environment, the function also records a
 * one-line explanation (what was wrong and how to fix it) that
 * rdps_errmsg() returns; tools print that line.
 *
 * Ordering: operations posted on one endpoint are executed at the target in
 * post order and complete in post order (RC semantics). A completion of a
 * write means the data is visible in the target's memory; a completion of
 * a read or atomic means the result is in the local buffer.
 */
#ifndef RDPS_TRANSPORT_H
#define RDPS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "numa.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RDPS_TP_PROTO_VERSION 1

/*
 * Reads and atomics one endpoint may have outstanding at a time, as an RC
 * QP's max_rd_atomic bounds them: what a target holds for one peer (its
 * responses not yet sent, and their copies) is bounded by this, not by
 * what the peer chooses to send. tcp enforces it on both sides: a post of
 * a read or atomic beyond it gets -EAGAIN (poll, retry), and a target
 * disconnects a peer that has more outstanding, with the reason logged
 * (the peer then sees RDPS_TP_WC_CONN_ERR). verbs queues such posts in
 * the NIC (the device's own max_rd_atomic) and shm serves every operation
 * in the post, so neither returns -EAGAIN for it.
 */
#define RDPS_TP_MAX_RD_ATOMIC 128

/*
 * Handshakes at listeners: a connected peer that has not finished its
 * handshake (sent its hello) gets this long before it is dropped, and a
 * listener holds at most RDPS_TP_MAX_PENDING of them, all served at once
 * (none waits for another's hello); a connection beyond that bound pushes
 * out the oldest, which is told the listener is busy (connect then fails
 * with -EBUSY; a caller may retry). So peers that never speak keep nobody
 * out: to push out a real peer they must open RDPS_TP_MAX_PENDING new
 * connections while its hello is on its way.
 */
#define RDPS_TP_HELLO_MS 2000
#define RDPS_TP_MAX_PENDING 256

/* Remote access rights of a registration (local access is always granted). */
enum rdps_tp_access {
	RDPS_TP_ACCESS_LOCAL = 0,
	RDPS_TP_ACCESS_REMOTE_READ = 1u << 0,
	RDPS_TP_ACCESS_REMOTE_WRITE = 1u << 1,
	RDPS_TP_ACCESS_REMOTE_ATOMIC = 1u << 2,
};

/* Capabilities a transport advertises in ops->caps. */
enum rdps_tp_cap {
	RDPS_TP_CAP_RMA_READ = 1u << 0,
	RDPS_TP_CAP_RMA_WRITE = 1u << 1,
	RDPS_TP_CAP_WRITE_IMM = 1u << 2,
	RDPS_TP_CAP_ATOMIC_FADD = 1u << 3,
	RDPS_TP_CAP_ATOMIC_CSWAP = 1u << 4,
	RDPS_TP_CAP_INLINE = 1u << 5,
	/* A READ costs the target's processes no CPU and the initiator
	 * only its post and poll: the NIC serves it (verbs). Not shm (the
	 * initiator's CPU copies) nor tcp (the target's progress thread
	 * answers). */
	RDPS_TP_CAP_READ_OFFLOAD = 1u << 6,
};

/* Opcode of a completion. */
enum rdps_tp_opcode {
	RDPS_TP_OP_READ = 1,
	RDPS_TP_OP_WRITE,
	RDPS_TP_OP_WRITE_IMM,
	RDPS_TP_OP_FADD,
	RDPS_TP_OP_CSWAP,
	RDPS_TP_OP_RECV_IMM, /* at the target of a write-with-immediate */
	/* The endpoint broke: its peer closed the connection, exited or
	 * died, or the connection failed. Exactly one per endpoint, wr_id 0,
	 * status RDPS_TP_WC_CONN_ERR, delivered even to an endpoint nobody
	 * posts on (a shard learns that an idle worker died), within the
	 * transport's liveness check (shm: a few polls or one arm; tcp: the
	 * socket's end; verbs: the rdmacm DISCONNECTED event). Flushed
	 * completions of operations still outstanding may come before or
	 * after it. None after the endpoint is closed locally. */
	RDPS_TP_OP_DISCONNECT,
};

/* Status of a completion; only SUCCESS means the operation took effect. */
enum rdps_tp_status {
	RDPS_TP_WC_SUCCESS = 0,
	/* Unknown or revoked key, access the region was not registered for,
	 * or a range outside the region. Target memory is untouched. */
	RDPS_TP_WC_REM_ACCESS_ERR,
	/* Malformed request, e.g. an atomic on an address not 8-aligned.
	 * Target memory is untouched. */
	RDPS_TP_WC_REM_INV_REQ_ERR,
	/* The connection broke (peer died, network down, retries exceeded)
	 * before the operation was known to complete; its effect at the
	 * target is unknown. */
	RDPS_TP_WC_CONN_ERR,
	/* The local endpoint was closed with the operation outstanding. */
	RDPS_TP_WC_FLUSH_ERR,
	/* The local buffer is not inside the given local registration. */
	RDPS_TP_WC_LOC_PROT_ERR,
	/* Any other failure (the transport logs the detail). */
	RDPS_TP_WC_GENERAL_ERR,
};

/* Flags of a post. */
enum rdps_tp_post_flag {
	/* No completion on success (selective signaling); a failure still
	 * produces a completion. Every sq_depth-th operation on an endpoint
	 * must be signaled, as with verbs. */
	RDPS_TP_F_UNSIGNALED = 1u << 0,
	/* Hint: the payload is small, copy it at post time so the caller may
	 * reuse lbuf immediately (verbs IBV_SEND_INLINE). Transports that
	 * always copy or always complete inline may ignore it. */
	RDPS_TP_F_INLINE = 1u << 1,
};

/* How rdps_tp_wait() waits for completions. */
enum rdps_tp_poll_mode {
	RDPS_TP_POLL_BUSY = 0, /* spin on poll(): lowest latency, a full core */
	RDPS_TP_POLL_ADAPTIVE, /* spin up to spin_us while spinning pays
				* (rdps_tp_wait), then sleep on the wait fd */
	RDPS_TP_POLL_EVENT,    /* sleep on the wait fd at once */
};

/* Configuration of a transport instance; rdps_tp_cfg_default() fills it. */
struct rdps_tp_cfg {
	enum rdps_tp_poll_mode poll_mode;
	unsigned spin_us;  /* adaptive: spin at most this long, then sleep */
	uint64_t token;	   /* job token: peers with another are refused */
	unsigned sq_depth; /* outstanding ops per endpoint before -EAGAIN */
	/* Completions held before posts get -EAGAIN. A transport may set
	 * part of it aside per endpoint (verbs: the receives of
	 * write-with-immediate and a close marker); then posts get -EAGAIN
	 * once the completions held plus the set-aside entries reach
	 * cq_depth; connect fails with -ENOBUFS when another endpoint's
	 * share does not fit, and accept refuses such a peer (it gets
	 * -ECONNREFUSED) and keeps waiting. */
	unsigned cq_depth;
	size_t shm_heap_size; /* shm: virtual size of the shared heap */
	const char *dev;      /* verbs: device name, NULL = first usable */
	int gid_index;	      /* verbs: -1 = first IPv4-mapped RoCEv2 GID */
	int numa_node;	      /* -1: near the NIC (else RDPS_NUMA_NODE) */
	/* tcp, adaptive and event polling: the progress thread serves the
	 * peers' one-sided requests at all times, as a NIC would, and a
	 * user asleep in rdps_tp_wait() sleeps on its completions only, so
	 * a target whose thread must not answer READs (a shard) is not even
	 * woken by them; a user's poll still reads the sockets while it
	 * spins. The price: a message that finds the user asleep costs two
	 * wake-ups (thread, then user) rather than one. 0 (default): the
	 * user sleeps on the sockets and the thread keeps off them ("Progress"
	 * in tcp/tcp.h). Other transports ignore it. */
	int serve_thread;
};

/* Fixed-size wire form of a remote key: all fields big-endian. */
struct rdps_tp_rkey_wire {
	uint64_t addr_be;
	uint64_t len_be;
	uint32_t rkey_be;
	uint32_t pad; /* zero */
};
_Static_assert(sizeof(struct rdps_tp_rkey_wire) == 24, "rkey wire form");

/* An unpacked remote key: a plain value, valid for the endpoint it was
 * unpacked against, needing no destroy. */
struct rdps_tp_rkey {
	uint64_t addr; /* target virtual address of the region's first byte */
	uint64_t len;
	uint32_t key;
	uint32_t pad;
	uint64_t priv; /* transport's own use */
};

/* One completion. */
struct rdps_tp_comp {
	uint64_t wr_id;	       /* the post's wr_id; 0 for RECV_IMM */
	struct rdps_tp_ep *ep; /* endpoint; NULL once it has been closed */
	int32_t status;	       /* enum rdps_tp_status */
	uint8_t opcode;	       /* enum rdps_tp_opcode */
	uint8_t pad[3];
	uint32_t len; /* bytes moved (RECV_IMM: bytes written with it) */
	uint32_t imm; /* RECV_IMM: the immediate, host order */
};

/* The DISCONNECT completion of a broken endpoint (for transports). */
static inline struct rdps_tp_comp rdps_tp_disconnect_comp(struct rdps_tp_ep *ep)
{
	return (struct rdps_tp_comp){
		.ep = ep,
		.status = RDPS_TP_WC_CONN_ERR,
		.opcode = RDPS_TP_OP_DISCONNECT,
	};
}

struct rdps_tp_ops;

/* Generic objects; each transport embeds them first in its own structs and
 * gets back with container_of. */
struct rdps_tp {
	const struct rdps_tp_ops *ops;
	struct rdps_tp_cfg cfg;
	int n_ep;  /* open endpoints, kept by the generic layer */
	int n_mr;  /* live registrations, kept by the generic layer */
	int n_lst; /* open listeners, kept by the generic layer */
	/* Where pollers and registered memory belong (verbs: the NIC's NUMA
	 * node); reason RDPS_NUMA_NONE where the transport has no say. */
	struct rdps_numa_choice place;
	/* Adaptive polling's spin as learned by rdps_tp_wait() (ns), and its
	 * waits so far; touched only by the (serialised) polling caller. */
	uint64_t spin_ns;
	unsigned spin_waits;
	/* Bytes received toward this side's completions so far: payloads
	 * of responses to its operations and of the peers' writes. Kept by
	 * transports that move an operation in pieces (tcp; others leave it
	 * 0), read by rdps_tp_wait(), which spins on while it grows;
	 * atomic. */
	uint64_t moved;
	/* Times rdps_tp_wait() slept on the wait fd, for tests; touched
	 * only by the polling caller. */
	uint64_t wait_sleeps;
};

struct rdps_tp_listener {
	struct rdps_tp *tp;
};

#define RDPS_TP_PRIV_MAX 32

struct rdps_tp_ep {
	struct rdps_tp *tp;
	void *user; /* free for the caller */
	/* Private data the peer sent in its handshake (connect: the
	 * listener's reply blob; accept: the connector's blob), filled by
	 * the transport before the endpoint is returned. */
	uint8_t peer_priv[RDPS_TP_PRIV_MAX];
	uint32_t peer_priv_len;
};

struct rdps_tp_mr {
	struct rdps_tp *tp;
	void *addr;
	size_t len;
	unsigned access; /* enum rdps_tp_access bits */
};

/*
 * Op signatures. Each transport declares its ops with these types
 * ("rdps_tp_put_fn shm_put;") instead of restating the prototypes, and
 * struct rdps_tp_ops holds pointers to them.
 */

/* Lifecycle ------------------------------------------------------------ */

/* Create an instance with a validated copy of cfg. The transport allocates
 * its own struct and returns the embedded rdps_tp. */
typedef int rdps_tp_init_fn(const struct rdps_tp_cfg *cfg,
			    struct rdps_tp **tp_out);
/* Destroy an instance with no endpoints, listeners or registrations left
 * (the generic layer checks, returning -EBUSY). */
typedef void rdps_tp_fini_fn(struct rdps_tp *tp);

/* Start listening on url (its scheme is this transport's). Every
 * connecting peer gets priv (at most RDPS_TP_PRIV_MAX bytes, copied) in its
 * ep->peer_priv: the place for the keys a server hands out, as rdmacm
 * private data. Port 0 picks a free port; listener_url() tells the real
 * address. -EADDRINUSE if taken, -EINVAL for a malformed URL. */
typedef int rdps_tp_listen_fn(struct rdps_tp *tp, const char *url,
			      const void *priv, size_t priv_len,
			      struct rdps_tp_listener **l_out);
/* Write the listener's connectable URL into buf (NUL-terminated). */
typedef int rdps_tp_listener_url_fn(struct rdps_tp_listener *l, char *buf,
				    size_t len);
/* Wait up to timeout_ms (-1 forever, 0 poll) for one peer, do the
 * handshake (protocol version, token) and return its endpoint. -ETIMEDOUT
 * if none came; a peer failing the handshake is refused and logged, and
 * accept keeps waiting. */
typedef int rdps_tp_accept_fn(struct rdps_tp_listener *l,
			      struct rdps_tp_ep **ep_out, int timeout_ms);
typedef void rdps_tp_listener_close_fn(struct rdps_tp_listener *l);

/* Connect to url within timeout_ms, sending priv (at most RDPS_TP_PRIV_MAX
 * bytes) to the accepting side's ep->peer_priv. -ECONNREFUSED (nobody
 * listens), -ETIMEDOUT, -EPROTO (protocol version mismatch), -EACCES
 * (token mismatch), -EINVAL (malformed URL), -ENOBUFS (cq_depth has no
 * room for another endpoint, see cfg), -EBUSY (the listener dropped us
 * for newer connections, RDPS_TP_MAX_PENDING) or -ECONNRESET (it closed
 * the connection before answering): both worth a retry. */
typedef int rdps_tp_connect_fn(struct rdps_tp *tp, const char *url,
			       const void *priv, size_t priv_len,
			       struct rdps_tp_ep **ep_out, int timeout_ms);
/* Close an endpoint. Outstanding operations complete with
 * RDPS_TP_WC_FLUSH_ERR and ep == NULL in the completion. */
typedef void rdps_tp_ep_close_fn(struct rdps_tp_ep *ep);

/* Memory --------------------------------------------------------------- */

/* Allocate len bytes (page-aligned, zeroed) that can be registered for
 * remote access: on shm this memory lives in the shared heap (remote access
 * to other memory is refused), on verbs on the NIC's NUMA node. */
typedef int rdps_tp_mem_alloc_fn(struct rdps_tp *tp, size_t len,
				 void **addr_out);
typedef void rdps_tp_mem_free_fn(struct rdps_tp *tp, void *addr, size_t len);
/* Register [addr, addr+len) with access bits. The memory must stay valid
 * until mem_dereg. */
typedef int rdps_tp_mem_reg_fn(struct rdps_tp *tp, void *addr, size_t len,
			       unsigned access, struct rdps_tp_mr **mr_out);
/*
 * Register [addr, addr+len) like mem_reg, but for remote access by ep's
 * peer alone: least privilege, e.g. one worker's update slot. The key works
 * for operations arriving through ep only; the same key used through any
 * other endpoint of this instance (another worker that learnt or guessed
 * it) fails with RDPS_TP_WC_REM_ACCESS_ERR at that initiator, target memory
 * untouched. After ep_close the region has no remote access at all but
 * stays registered (locally usable, for any endpoint) until mem_dereg:
 * close and deregister in either order. The key is one of tp's, so
 * rkey_pack, mem_dereg and the stale-key rule apply as for mem_reg.
 *
 * Blocks briefly (verbs: binds a memory window with one work request on
 * ep's queue pair and waits for its completion; completions of other
 * operations met meanwhile are kept for poll). Errors as mem_reg, plus
 * -ENOTCONN when ep is broken and -EOPNOTSUPP when the device cannot scope
 * a key to a connection (verbs without type 2 memory windows);
 * rdps_errmsg() says which.
 *
 * Who enforces it: verbs, the NIC (a type 2 memory window bound to ep's
 * queue pair: the responder refuses the key on any other queue pair); tcp,
 * the target's progress thread (the key's endpoint is checked on every
 * request); shm, the initiator's own library against the target's MR
 * table: that stops a wrong key from a correct peer but not a hostile
 * process, which maps the whole heap (see shm.h).
 */
typedef int rdps_tp_mem_reg_ep_fn(struct rdps_tp_ep *ep, void *addr, size_t len,
				  unsigned access, struct rdps_tp_mr **mr_out);
/* Deregister: later remote operations with its key fail with
 * RDPS_TP_WC_REM_ACCESS_ERR, also after the same memory is registered
 * again (a new key). */
typedef void rdps_tp_mem_dereg_fn(struct rdps_tp_mr *mr);
/* Pack the remote key of mr (never fails for a live mr). Transports
 * implement it with rdps_tp_rkey_encode(). */
typedef void rdps_tp_rkey_pack_fn(struct rdps_tp_mr *mr,
				  struct rdps_tp_rkey_wire *w);
/* Unpack a peer's key for use on ep; -EINVAL if malformed. The key is not
 * checked against the peer here: that happens per operation at the
 * target, as on a NIC. Transports implement it with rdps_tp_rkey_decode();
 * ep may be NULL there (the fuzzers pass none). */
typedef int rdps_tp_rkey_unpack_fn(struct rdps_tp_ep *ep,
				   const struct rdps_tp_rkey_wire *w,
				   struct rdps_tp_rkey *rkey_out);

/* One-sided operations ---------------------------------------------------
 * lbuf must lie in lmr (any registration, local access suffices). raddr is
 * the target's virtual address, inside rkey's region. Return 0 when
 * posted, -EAGAIN when sq_depth operations are outstanding on ep (a read
 * or atomic also: RDPS_TP_MAX_RD_ATOMIC of them, tcp) or the
 * completion queue is full (poll, retry); an operation is outstanding
 * until its completion is polled, an unsignaled one until a later
 * completion of the same endpoint is, as with a verbs send queue;
 * -ENOTCONN when the endpoint is known to be broken. */
typedef int rdps_tp_put_fn(struct rdps_tp_ep *ep, const void *lbuf, size_t len,
			   struct rdps_tp_mr *lmr, uint64_t raddr,
			   const struct rdps_tp_rkey *rkey, uint64_t wr_id,
			   unsigned flags);
/* Write, then deliver imm to the target as a RECV_IMM completion. len may
 * be 0 (then raddr and rkey are not used). */
typedef int rdps_tp_put_imm_fn(struct rdps_tp_ep *ep, const void *lbuf,
			       size_t len, struct rdps_tp_mr *lmr,
			       uint64_t raddr, const struct rdps_tp_rkey *rkey,
			       uint32_t imm, uint64_t wr_id, unsigned flags);
typedef int rdps_tp_get_fn(struct rdps_tp_ep *ep, void *lbuf, size_t len,
			   struct rdps_tp_mr *lmr, uint64_t raddr,
			   const struct rdps_tp_rkey *rkey, uint64_t wr_id,
			   unsigned flags);
/* *res gets the old value; res must be 8-aligned inside res_mr. */
typedef int rdps_tp_atomic_fadd_fn(struct rdps_tp_ep *ep, uint64_t add,
				   uint64_t *res, struct rdps_tp_mr *res_mr,
				   uint64_t raddr,
				   const struct rdps_tp_rkey *rkey,
				   uint64_t wr_id, unsigned flags);
typedef int rdps_tp_atomic_cswap_fn(struct rdps_tp_ep *ep, uint64_t cmp,
				    uint64_t swp, uint64_t *res,
				    struct rdps_tp_mr *res_mr, uint64_t raddr,
				    const struct rdps_tp_rkey *rkey,
				    uint64_t wr_id, unsigned flags);

/*
 * Gather READ: one operation that reads k remote ranges of ep's peer into
 * k local places and completes once, with opcode RDPS_TP_OP_READ and len
 * the sum of the ranges' lengths. The ranges may name one remote key or
 * several (all unpacked against ep); ents[] and the keys it points to are
 * read during the call only, so the caller may reuse them on return. Every
 * lbuf must lie in lmr. Never blocks.
 *
 * Limits: 1 <= k <= RDPS_TP_GATHER_MAX, every len >= 1 and their sum at
 * most RDPS_TP_GATHER_MAX_BYTES; else -EINVAL, nothing posted, and
 * rdps_errmsg() names the limit. Send-queue room: one slot on tcp and shm
 * (and one of tcp's RDPS_TP_MAX_RD_ATOMIC), k slots on verbs and in the
 * generic fallback, so there k above sq_depth is -EINVAL too; -EAGAIN and
 * -ENOTCONN as for get.
 *
 * Errors: a range outside its registration, without remote read access or
 * with a revoked key fails the whole gather with one completion whose
 * status is the first failing range's (RDPS_TP_WC_REM_ACCESS_ERR); a local
 * place outside lmr fails it with RDPS_TP_WC_LOC_PROT_ERR. tcp and shm
 * check every range before moving a byte, so the local places stay
 * untouched; on verbs ranges before the failing one may have landed, and,
 * as for any failed READ there, the queue pair goes into error (the
 * endpoint breaks). Target memory is never touched.
 *
 * Ordering: one operation in the endpoint's post order, like a READ; the
 * ranges among themselves are read in no promised order, and the result
 * is not one atomic snapshot (tcp copies them one after another at the
 * target): a caller that needs consistency checks each range, as with k
 * separate READs. tcp holds a copy of the ranges at the target until the
 * response is sent, which RDPS_TP_GATHER_MAX_BYTES bounds per operation.
 *
 * Transports without a native version (ops->get_gather NULL) get
 * rdps_tp_get_gather_fallback(): k READs posted back to back, the first
 * k-1 unsignaled. It completes once on success (len: the last range's);
 * on a failure each failed
 * READ reports its own error completion with wr_id, and a negative return
 * after some were posted leaves those in flight (they land in their
 * places until a later completion of ep is polled). The built-in
 * transports (shm, tcp, verbs) are native and complete exactly once.
 */
#define RDPS_TP_GATHER_MAX 256u
#define RDPS_TP_GATHER_MAX_BYTES (256u * 1024)

/* One range of a gather READ. */
struct rdps_tp_gather_ent {
	void *lbuf;			 /* local place, inside lmr */
	uint64_t raddr;			 /* remote address, inside *rkey */
	const struct rdps_tp_rkey *rkey; /* unpacked against ep */
	uint32_t len;			 /* bytes, >= 1 */
	uint32_t pad;
};

typedef int rdps_tp_get_gather_fn(struct rdps_tp_ep *ep,
				  const struct rdps_tp_gather_ent *ents,
				  unsigned k, struct rdps_tp_mr *lmr,
				  uint64_t wr_id, unsigned flags);

/* Completions ---------------------------------------------------------- */

/* Move up to max completions into comps without blocking; returns how
 * many. Also drives progress for transports that need it. */
typedef int rdps_tp_poll_fn(struct rdps_tp *tp, struct rdps_tp_comp *comps,
			    int max);
/* A file descriptor that becomes readable after arm() when a new
 * completion may be available (eventfd, completion channel). */
typedef int rdps_tp_wait_fd_fn(struct rdps_tp *tp);
/* Arm the wait fd: 0 if armed (sleep on it), -EAGAIN if completions are
 * already pending (poll instead). Also clears a past wake-up. */
typedef int rdps_tp_arm_fn(struct rdps_tp *tp);

/* Bind the calling thread to tp->place (0 or -errno). */
typedef int rdps_tp_bind_poller_fn(struct rdps_tp *tp);

/*
 * The ops table. Mandatory: everything but the ones marked optional;
 * missing optional ops point at rdps_tp_no_* stubs (-EOPNOTSUPP). The
 * contract of each op is at its _fn type above.
 */
struct rdps_tp_ops {
	size_t size;	  /* sizeof(struct rdps_tp_ops), first */
	const char *name; /* URL scheme: "shm", "tcp", "verbs" */
	unsigned caps;	  /* enum rdps_tp_cap bits */

	/* Lifecycle */
	rdps_tp_init_fn *init;
	rdps_tp_fini_fn *fini;
	rdps_tp_listen_fn *listen;
	rdps_tp_listener_url_fn *listener_url;
	rdps_tp_accept_fn *accept;
	rdps_tp_listener_close_fn *listener_close;
	rdps_tp_connect_fn *connect;
	rdps_tp_ep_close_fn *ep_close;

	/* Memory */
	rdps_tp_mem_alloc_fn *mem_alloc;
	rdps_tp_mem_free_fn *mem_free;
	rdps_tp_mem_reg_fn *mem_reg;
	rdps_tp_mem_reg_ep_fn *mem_reg_ep;
	rdps_tp_mem_dereg_fn *mem_dereg;
	rdps_tp_rkey_pack_fn *rkey_pack;
	rdps_tp_rkey_unpack_fn *rkey_unpack;

	/* One-sided operations */
	rdps_tp_put_fn *put;
	rdps_tp_put_imm_fn *put_imm;
	rdps_tp_get_fn *get;
	rdps_tp_atomic_fadd_fn *atomic_fadd;
	rdps_tp_atomic_cswap_fn *atomic_cswap;

	/* Completions */
	rdps_tp_poll_fn *poll;
	rdps_tp_wait_fd_fn *wait_fd;
	rdps_tp_arm_fn *arm;

	rdps_tp_bind_poller_fn *bind_poller; /* optional */
	rdps_tp_get_gather_fn *get_gather;   /* optional: NULL, the fallback */
};

/* Registry and generic layer (transport.c) ---------------------------- */

/* Defaults: adaptive polling, 50 us spin, sq 256, cq 8192, 16 GiB heap. */
void rdps_tp_cfg_default(struct rdps_tp_cfg *cfg);

/* Find a transport by URL ("tcp://h:p") or bare scheme ("tcp"). NULL and
 * rdps_errmsg() set if unknown or not built in. */
const struct rdps_tp_ops *rdps_tp_lookup(const char *url_or_scheme);
/* Names of the built-in transports, comma-separated ("shm,tcp,verbs"). */
const char *rdps_tp_names(void);

int rdps_tp_open(const char *url_or_scheme, const struct rdps_tp_cfg *cfg,
		 struct rdps_tp **tp_out);
/* -EBUSY while endpoints, listeners or registrations are alive. */
int rdps_tp_close(struct rdps_tp *tp);

int rdps_tp_listen(struct rdps_tp *tp, const char *url, const void *priv,
		   size_t priv_len, struct rdps_tp_listener **l_out);
int rdps_tp_listener_url(struct rdps_tp_listener *l, char *buf, size_t len);
int rdps_tp_accept(struct rdps_tp_listener *l, struct rdps_tp_ep **ep_out,
		   int timeout_ms);
void rdps_tp_listener_close(struct rdps_tp_listener *l);
int rdps_tp_connect(struct rdps_tp *tp, const char *url, const void *priv,
		    size_t priv_len, struct rdps_tp_ep **ep_out,
		    int timeout_ms);
void rdps_tp_ep_close(struct rdps_tp_ep *ep);

int rdps_tp_mem_alloc(struct rdps_tp *tp, size_t len, void **addr_out);
void rdps_tp_mem_free(struct rdps_tp *tp, void *addr, size_t len);
int rdps_tp_mem_reg(struct rdps_tp *tp, void *addr, size_t len, unsigned access,
		    struct rdps_tp_mr **mr_out);
/* A registration for ep's peer alone (ops->mem_reg_ep); it counts as one
 * of ep->tp's registrations. */
int rdps_tp_mem_reg_ep(struct rdps_tp_ep *ep, void *addr, size_t len,
		       unsigned access, struct rdps_tp_mr **mr_out);
void rdps_tp_mem_dereg(struct rdps_tp_mr *mr);

/*
 * Wait for at least one completion and move up to max of them into comps,
 * following cfg.poll_mode. timeout_ms: -1 forever, 0 just poll. Returns the
 * count, 0 on timeout, or -errno. Adaptive: spins for the learned spin,
 * and on for spin_us after any growth of tp->moved, then sleeps on the
 * wait fd (each sleep counted in tp->wait_sleeps).
 */
int rdps_tp_wait(struct rdps_tp *tp, struct rdps_tp_comp *comps, int max,
		 int timeout_ms);

/* Bind the calling (polling) thread to tp->place, where the transport
 * chose one (verbs: the NIC's NUMA node); 0 and nothing done elsewhere. */
int rdps_tp_bind_poller(struct rdps_tp *tp);

const char *rdps_tp_status_str(int status);
const char *rdps_tp_opcode_str(int opcode);

/* Hot-path wrappers: plain calls through the ops table. */
static inline void rdps_tp_rkey_pack(struct rdps_tp_mr *mr,
				     struct rdps_tp_rkey_wire *w)
{
	mr->tp->ops->rkey_pack(mr, w);
}

static inline int rdps_tp_rkey_unpack(struct rdps_tp_ep *ep,
				      const struct rdps_tp_rkey_wire *w,
				      struct rdps_tp_rkey *rkey_out)
{
	return ep->tp->ops->rkey_unpack(ep, w, rkey_out);
}

static inline int rdps_tp_put(struct rdps_tp_ep *ep, const void *lbuf,
			      size_t len, struct rdps_tp_mr *lmr,
			      uint64_t raddr, const struct rdps_tp_rkey *rkey,
			      uint64_t wr_id, unsigned flags)
{
	return ep->tp->ops->put(ep, lbuf, len, lmr, raddr, rkey, wr_id, flags);
}

static inline int rdps_tp_put_imm(struct rdps_tp_ep *ep, const void *lbuf,
				  size_t len, struct rdps_tp_mr *lmr,
				  uint64_t raddr,
				  const struct rdps_tp_rkey *rkey, uint32_t imm,
				  uint64_t wr_id, unsigned flags)
{
	return ep->tp->ops->put_imm(ep, lbuf, len, lmr, raddr, rkey, imm, wr_id,
				    flags);
}

static inline int rdps_tp_get(struct rdps_tp_ep *ep, void *lbuf, size_t len,
			      struct rdps_tp_mr *lmr, uint64_t raddr,
			      const struct rdps_tp_rkey *rkey, uint64_t wr_id,
			      unsigned flags)
{
	return ep->tp->ops->get(ep, lbuf, len, lmr, raddr, rkey, wr_id, flags);
}

/* For transports: the limits of a gather READ (at rdps_tp_get_gather_fn):
 * 0 and the sum of the lengths in *total, or -EINVAL with rdps_errmsg()
 * naming the limit. sq_depth: a transport that takes k send-queue slots
 * passes its depth (k above it is refused), one that takes a single slot
 * passes 0. */
int rdps_tp_gather_check(const struct rdps_tp_gather_ent *ents, unsigned k,
			 unsigned sq_depth, uint64_t *total);
rdps_tp_get_gather_fn rdps_tp_get_gather_fallback;

static inline int rdps_tp_get_gather(struct rdps_tp_ep *ep,
				     const struct rdps_tp_gather_ent *ents,
				     unsigned k, struct rdps_tp_mr *lmr,
				     uint64_t wr_id, unsigned flags)
{
	rdps_tp_get_gather_fn *fn = ep->tp->ops->get_gather;

	return (fn ? fn : rdps_tp_get_gather_fallback)(ep, ents, k, lmr, wr_id,
						       flags);
}

static inline int rdps_tp_atomic_fadd(struct rdps_tp_ep *ep, uint64_t add,
				      uint64_t *res, struct rdps_tp_mr *res_mr,
				      uint64_t raddr,
				      const struct rdps_tp_rkey *rkey,
				      uint64_t wr_id, unsigned flags)
{
	return ep->tp->ops->atomic_fadd(ep, add, res, res_mr, raddr, rkey,
					wr_id, flags);
}

static inline int rdps_tp_atomic_cswap(struct rdps_tp_ep *ep, uint64_t cmp,
				       uint64_t swp, uint64_t *res,
				       struct rdps_tp_mr *res_mr,
				       uint64_t raddr,
				       const struct rdps_tp_rkey *rkey,
				       uint64_t wr_id, unsigned flags)
{
	return ep->tp->ops->atomic_cswap(ep, cmp, swp, res, res_mr, raddr, rkey,
					 wr_id, flags);
}

static inline int rdps_tp_poll(struct rdps_tp *tp, struct rdps_tp_comp *comps,
			       int max)
{
	return tp->ops->poll(tp, comps, max);
}

/* Helpers for transports ---------------------------------------------- */

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))
#endif

/* Stubs for optional ops. */
rdps_tp_listener_url_fn rdps_tp_no_listener_url;

/*
 * The remote-key codec, one for all transports; each transport's
 * rkey_pack and rkey_unpack are these with what is its own.
 *
 * rdps_tp_rkey_encode: the wire form of mr's region with key, the 32-bit
 * key word the transport hands out for it (verbs: the NIC's rkey; shm and
 * tcp: their table index and generation).
 *
 * rdps_tp_rkey_decode: validate w and unpack it. -EINVAL, *rkey_out
 * untouched and rdps_errmsg() naming the bad field when w has a non-zero
 * pad, a length of 0 or a region that wraps around the address space, or
 * when check (may be NULL: every key word is acceptable) refuses the key
 * word. tp_name names the transport in that message.
 */
void rdps_tp_rkey_encode(const struct rdps_tp_mr *mr, uint32_t key,
			 struct rdps_tp_rkey_wire *w);
/* Hook of rdps_tp_rkey_decode: NULL if key can be one this transport hands
 * out, else what is wrong with it (a static string). */
typedef const char *rdps_tp_rkey_check_fn(uint32_t key);
int rdps_tp_rkey_decode(const char *tp_name, const struct rdps_tp_rkey_wire *w,
			rdps_tp_rkey_check_fn *check,
			struct rdps_tp_rkey *rkey_out);

/*
 * Check a remote access against a registration the way a NIC does:
 * returns RDPS_TP_WC_SUCCESS, RDPS_TP_WC_REM_ACCESS_ERR (access bit
 * missing, range outside [base, base+rlen)) or RDPS_TP_WC_REM_INV_REQ_ERR
 * (atomic not 8-aligned). need is one RDPS_TP_ACCESS_REMOTE_* bit.
 */
static inline int rdps_tp_check_access(uint64_t base, uint64_t rlen,
				       unsigned access, unsigned need,
				       uint64_t raddr, uint64_t len)
{
	/* Inline: shm runs it inside every post, where a call (and the
	 * registers it makes the caller save) cost more than the check. */
	if (!(access & need))
		return RDPS_TP_WC_REM_ACCESS_ERR;
	if (need == RDPS_TP_ACCESS_REMOTE_ATOMIC && (raddr & 7))
		return RDPS_TP_WC_REM_INV_REQ_ERR;
	if (raddr < base || len > rlen || raddr - base > rlen - len)
		return RDPS_TP_WC_REM_ACCESS_ERR;
	return RDPS_TP_WC_SUCCESS;
}

/* Parsed URL: scheme://host:port or scheme://name. */
struct rdps_url {
	char scheme[16];
	char host[256]; /* or the shm name */
	int port;	/* -1 if none */
};
/* Parse url; -EINVAL with rdps_errmsg() naming what is wrong. need_port
 * makes a missing port an error. */
int rdps_url_parse(const char *url, int need_port, struct rdps_url *url_out);
/* Format scheme://host:port into buf (IPv6 hosts in brackets); -ENOSPC
 * with rdps_errmsg() if buf is too small. */
int rdps_url_format(char *buf, size_t len, const char *scheme, const char *host,
		    unsigned port);

#ifdef __cplusplus
}
#endif
#endif /* RDPS_TRANSPORT_H */
