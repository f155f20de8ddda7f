/* SPDX-License-Identifier: MIT */
/*
 * tcp.h - private header of the tcp transport.
 *
 * Model: every connection is symmetric. Either side posts requests (READ,
 * WRITE, WRITE_IMM, FADD, CSWAP) and serves the peer's requests against its
 * own registered regions. A per-instance progress thread sleeps in
 * epoll_wait() over all endpoints and a wake eventfd; it never blocks on a
 * socket (all sockets are non-blocking, unsent bytes wait in a per-endpoint
 * queue until EPOLLOUT), so two peers pushing large payloads at each other
 * cannot deadlock.
 *
 * Locking: one mutex per instance (tcp_tp.lock) covers everything the
 * progress thread and the user thread share: endpoint state, the completion
 * ring, the registration table. The contract makes the user serialise its
 * own calls, so the only contention is user vs. progress thread.
 *
 * Ordering: the target serves one connection's requests in stream order and
 * answers in the same order, so the initiator matches every response
 * against the oldest outstanding operation (a FIFO, checked by sequence
 * number) and completions come out in post order.
 *
 * Batching: a request posted while an earlier one of its endpoint is
 * still unanswered is held in the send queue rather than sent by a
 * syscall of its own (up to TCP_HOLD_MAX of them); the held ones go out
 * together at the user's next poll or arm, when the queue reaches that
 * bound, or when the progress thread handles the endpoint's next response,
 * whichever comes first. So a burst of posts costs one sendmsg and the
 * peer one wake-up, not one each, and nothing waits for a poll that may
 * not come: the earlier request's response flushes them.
 *
 * Progress: whoever needs the bytes reads them. A user thread's poll()
 * drives the sockets itself (epoll_wait with no timeout, under a trylock),
 * and its wait fd is an epoll set over the sockets' epoll fd and the
 * completion eventfd, so a user asleep in rdps_tp_wait() is woken by the
 * kernel straight from the socket rather than through the progress
 * thread: one wake-up per message instead of two. The progress thread
 * keeps off the sockets while a user drives them: it naps (TCP_NAP_NS) and
 * checks back while the user polled lately, and naps until kicked (nap_fd)
 * while the user sleeps on them; once the user stays away from poll for
 * TCP_NAP_NS (computing), the thread serves the peer's one-sided requests
 * again, so they never depend on the application polling. A shard's
 * instance (rdps_tp_cfg.serve_thread) differs: its thread never keeps off
 * the sockets and its user sleeps on cq_fd alone, so READs are served
 * while the loop applies updates and never wake the loop.
 *
 * Direct reads: a poll with one endpoint open reads its socket with no
 * epoll_wait first (tcp_tp_progress_user): recv reports the bytes, a
 * hang-up (0) or an error as epoll would have, so the bytes of a response
 * or a request cost one system call to take instead of two, on the path of
 * every round trip. With more endpoints, EPOLLOUT wanted (unsent bytes), a
 * receive low mark set (a large payload: epoll waits for all of it) or
 * reading paused, the poll asks epoll as before. Once the user has polled
 * TCP_DIRECT_AFTER times since it last slept, the socket also leaves the
 * epoll set (tcp_tp.direct_ep): every segment that arrives then costs the
 * sender's softirq no epoll wake-up callbacks (two: the set, and the
 * user's wait fd over it). It goes back before anyone else needs the set:
 * when the user arms to sleep, when the progress thread is to wait on it
 * (the user away), when a second endpoint opens, or when the endpoint
 * needs more than EPOLLIN. While the thread waits on the set
 * (tcp_tp.pt_epoll) the socket stays in, so a thread asleep there never
 * misses requests a user that then goes away leaves unread. Not on a
 * serve_thread instance, whose thread always waits on the set.
 *
 * Large payloads: once the header of one of 16 KiB (TCP_RX_DIRECT) or more
 * is in, the socket's receive low mark (SO_RCVLOWAT) is the rest of it, up
 * to 1 MiB, so whoever sleeps on the socket is woken once when it is all
 * there rather than for every piece, and the kernel opens the receive
 * window to match; its bytes, as they are read, count in rdps_tp.moved, on
 * which an adaptive waiter spins on (tcp_progress.c).
 *
 * Zero copy: a request's payload is sent straight from the caller's buffer
 * and a READ response straight from the registered region (a gather READ's
 * response is one copy of its ranges, see RDPS_TCP_REQ_GATHER); WRITE payloads
 * and READ responses are received straight into their destination once the
 * header is validated. Small messages go through a per-endpoint receive
 * buffer because one recv() for many small messages beats a syscall per
 * field.
 */
#ifndef RDPS_TCP_H
#define RDPS_TCP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "rdps_base.h"
#include "transport.h"

/* Wire format ---------------------------------------------------------- */

/*
 * Every message is a fixed 48-byte header, big-endian, optionally followed
 * by len payload bytes:
 *
 *	off  0  u8   magic (RDPS_TCP_MAGIC)
 *	off  1  u8   type (enum rdps_tcp_type)
 *	off  2  u8   status (responses: enum rdps_tp_status; requests: 0)
 *	off  3  u8   zero
 *	off  4  be32 len: payload bytes that follow the header
 *	off  8  be64 seq: request number on the connection, echoed back
 *	off 16  be64 raddr: target virtual address (requests)
 *	off 24  be32 rkey (requests)
 *	off 28  be32 imm (WRITE_IMM)
 *	off 32  be64 op1: READ length / FADD addend / CSWAP compare /
 *		     atomic response: the old value
 *	off 40  be64 op2: CSWAP swap value
 *
 * Payloads: WRITE and WRITE_IMM requests carry the data; a successful READ
 * response carries exactly the requested bytes; nothing else has one,
 * except the gather READ (transport.h, "Gather READ"): its request carries
 * k range descriptors of RDPS_TCP_RANGE_LEN bytes each,
 *
 *	off  0  be64 raddr
 *	off  8  be32 rkey
 *	off 12  be32 len (>= 1)
 *
 * with op1 the sum of their lengths (at most RDPS_TP_GATHER_MAX_BYTES) and
 * raddr, rkey, imm, op2 zero; its successful response carries the k
 * ranges' bytes back to back, in descriptor order. The target checks every
 * range before copying any: one bad range is the whole response's status.
 */
#define RDPS_TCP_MAGIC 0xd7
#define RDPS_TCP_HDR_LEN 48
/* Largest payload of one message, and of one operation: completion lengths
 * are 32-bit, and a cap keeps a corrupt length from pinning a connection. */
#define RDPS_TCP_MAX_MSG (1u << 30)

enum rdps_tcp_type {
	RDPS_TCP_REQ_READ = 1,
	RDPS_TCP_REQ_WRITE,
	RDPS_TCP_REQ_WRITE_IMM,
	RDPS_TCP_REQ_FADD,
	RDPS_TCP_REQ_CSWAP,
	RDPS_TCP_REQ_GATHER,
	RDPS_TCP_RESP = 0x80, /* or'ed with the request type it answers */
};

/* A decoded header, host order. */
struct rdps_tcp_msg {
	uint8_t type;
	uint8_t status;
	uint32_t len;
	uint64_t seq;
	uint64_t raddr;
	uint32_t rkey;
	uint32_t imm;
	uint64_t op1;
	uint64_t op2;
};

/*
 * Handshake, 56 bytes each way: the connector sends HELLO, the listener
 * answers ACCEPT (with its private data) or REJECT (with a reason) and then
 * closes. Magic and version sit first so any future version can still
 * refuse this one cleanly.
 *
 *	off  0  be32 magic (RDPS_TCP_HELLO_MAGIC)
 *	off  4  be16 version (RDPS_TP_PROTO_VERSION)
 *	off  6  u8   kind (enum rdps_tcp_hello_kind)
 *	off  7  u8   reason (REJECT: enum rdps_tcp_reject)
 *	off  8  be64 token
 *	off 16  be32 priv_len (<= RDPS_TP_PRIV_MAX)
 *	off 20  be32 zero
 *	off 24  u8[32] priv
 */
#define RDPS_TCP_HELLO_MAGIC 0x52445054u /* "RDPT" */
#define RDPS_TCP_HELLO_LEN 56

enum rdps_tcp_hello_kind {
	RDPS_TCP_HELLO = 1,
	RDPS_TCP_ACCEPT,
	RDPS_TCP_REJECT,
};

enum rdps_tcp_reject {
	RDPS_TCP_REJ_NONE = 0,
	RDPS_TCP_REJ_VERSION,
	RDPS_TCP_REJ_TOKEN,
	RDPS_TCP_REJ_MALFORMED,
	/* The listener holds its bound of unfinished handshakes and let a
	 * newer connection push ours out: try again later. */
	RDPS_TCP_REJ_BUSY,
};

struct rdps_tcp_hello {
	uint16_t version;
	uint8_t kind;
	uint8_t reason;
	uint64_t token;
	uint32_t priv_len;
	uint8_t priv[RDPS_TP_PRIV_MAX];
};

/* One range descriptor of a gather READ, host order. */
struct rdps_tcp_range {
	uint64_t raddr;
	uint32_t rkey;
	uint32_t len;
};
#define RDPS_TCP_RANGE_LEN 16

/* Write m as a header into buf (RDPS_TCP_HDR_LEN bytes). */
void rdps_tcp_wire_encode(const struct rdps_tcp_msg *m, void *buf);
/*
 * Decode and validate one header from (buf, len) without trusting any
 * field: 0 and *out filled, -EAGAIN if len < RDPS_TCP_HDR_LEN, -EPROTO if
 * malformed with *why naming the problem (a static string).
 */
int rdps_tcp_wire_decode(const void *buf, size_t len, struct rdps_tcp_msg *out,
			 const char **why);
/* Write k descriptors into buf (k * RDPS_TCP_RANGE_LEN bytes). */
void rdps_tcp_gather_encode(const struct rdps_tcp_range *r, unsigned k,
			    void *buf);
/*
 * Decode the descriptors of a gather request without trusting any field:
 * len is its payload length, total its header's op1. Returns k (1 ..
 * RDPS_TP_GATHER_MAX) with out[0..k) filled, or -EPROTO with *why naming
 * the problem: len not a whole number of descriptors, no descriptor or too
 * many, a zero length, or lengths whose sum is not total or is over
 * RDPS_TP_GATHER_MAX_BYTES. Whether each range lies in a registration is
 * the target's check (tcp_mr_check), not the codec's.
 */
int rdps_tcp_gather_decode(const void *buf, size_t len, uint64_t total,
			   struct rdps_tcp_range *out, const char **why);
void rdps_tcp_hello_encode(const struct rdps_tcp_hello *h, void *buf);
/*
 * Decode a handshake message: 0, -EAGAIN if short, -EPROTO if the magic
 * or layout is wrong (*why says what). A version other than ours decodes
 * fine: the caller decides.
 */
int rdps_tcp_hello_decode(const void *buf, size_t len,
			  struct rdps_tcp_hello *out, const char **why);

/* Objects --------------------------------------------------------------- */

/* One message waiting in an endpoint's send queue. */
struct tcp_txe {
	struct tcp_txe *next;
	const uint8_t *payload; /* registered memory or bounce */
	size_t plen;
	size_t sent;  /* bytes of header + payload already sent */
	void *bounce; /* owned copy of the payload, see tcp_tx_detach() */
	uint8_t is_resp;
	uint8_t rd_atomic; /* a response to a READ or an atomic */
	uint8_t queued;
	uint8_t hdr[RDPS_TCP_HDR_LEN];
};

/* A local place of a gather READ. */
struct tcp_sg {
	uint8_t *dst;
	uint32_t len;
};

/* An operation posted by this side, outstanding until its response. */
struct tcp_op {
	struct tcp_txe txe;
	uint64_t wr_id;
	uint64_t seq;
	void *lbuf;	   /* READ destination / atomic result */
	struct tcp_sg *sg; /* gather READ: its local places (owned), or NULL */
	unsigned nsg;
	uint32_t len;
	uint8_t opcode; /* enum rdps_tp_opcode */
	uint8_t type;	/* enum rdps_tcp_type; 0: failed locally, no wire */
	uint8_t signaled;
	int32_t status; /* for ops that failed locally */
};

enum tcp_rx_state {
	TCP_RX_HDR,	/* collecting a header */
	TCP_RX_PAYLOAD, /* placing (or draining) a payload */
	TCP_RX_STALLED, /* a RECV_IMM waits for room in the completion ring */
};

struct tcp_ep {
	struct rdps_tp_ep base;
	struct tcp_tp *tp;
	int fd;		    /* -1 once broken */
	int disc_pending;   /* a DISCONNECT completion is owed */
	uint32_t slot, gen; /* identity in tcp_tp.eps, for epoll events */
	uint32_t events;    /* epoll mask currently registered */
	int broken;
	char peer[64]; /* "addr:port" for logs */

	/* operations we posted, FIFO ring of tp->sq_depth */
	struct tcp_op *ops;
	unsigned op_head, op_count;
	/* Send-queue slots in use: an operation holds its slot until its
	 * completion is polled (unsignaled ones until a later completion of
	 * the endpoint is), as on a verbs send queue. */
	unsigned sq_busy;
	unsigned held;	     /* requests queued unsent since the last flush */
	unsigned unsig_done; /* unsignaled ops finished since the last push */
	uint64_t next_seq;   /* next request sequence number */
	uint64_t peer_seq;   /* next request sequence expected from the peer */
	/* RDPS_TP_MAX_RD_ATOMIC on both sides: reads and atomics we posted
	 * whose response has not come, and the peer's whose response we
	 * have not sent yet (never more than the peer's rd_out). */
	unsigned rd_out, rd_served;

	/* send queue */
	struct tcp_txe *tx_head, *tx_tail;
	struct tcp_txe *resp_free; /* cache of response entries */
	unsigned n_resp;	   /* response entries alive */

	/* receive side */
	uint8_t *rxbuf;
	size_t rx_off, rx_len; /* unparsed bytes are rxbuf[rx_off, rx_len) */
	enum tcp_rx_state rx_state;
	struct rdps_tcp_msg rx_msg; /* header being served */
	uint8_t *rx_dst;	    /* NULL: drain the payload */
	size_t rx_left;		    /* payload bytes still to come */
	int rx_status;		    /* verdict on the request being served */
	/* A gather response being scattered: rx_sg[rx_sg_i] from byte
	 * rx_sg_off on (rx_dst NULL meanwhile); NULL otherwise. */
	struct tcp_sg *rx_sg;
	unsigned rx_sg_i;
	uint32_t rx_sg_off;
	uint8_t *rx_gbuf;  /* a peer's gather descriptors (owned), or NULL */
	unsigned rx_lowat; /* SO_RCVLOWAT set on fd; 0: the default (1) */
};

struct tcp_mr {
	struct rdps_tp_mr base;
	uint32_t key;
	uint32_t ep_gen; /* 0: every peer; else the tcp_ep.gen it serves */
};

struct tcp_mr_slot {
	struct tcp_mr *mr; /* NULL: free */
	uint16_t gen;
	uint32_t next_free;
};

struct tcp_tp {
	struct rdps_tp base;
	pthread_mutex_t lock;
	pthread_t thread;
	int epfd;
	int wake_fd;   /* eventfd: tells the progress thread to stop */
	int nap_fd;    /* eventfd: ends the progress thread's nap (a kick) */
	int cq_fd;     /* eventfd: completions queued for an armed user */
	int user_epfd; /* the user's wait fd: epoll over epfd and cq_fd */
	/* rdps_tp_cfg.serve_thread outside busy polling: the progress
	 * thread never keeps off the sockets, the user's wait fd is cq_fd */
	int serve_thread;
	int stop;

	/* own copies of the config: the generic layer writes base.cfg after
	 * init while the progress thread already runs */
	unsigned sq_depth, cq_depth;
	unsigned cq_ring; /* 2 * cq_depth, see tcp_cq_has_room_imm() */
	uint64_t token;
	/* Who drives the sockets ("Progress"); atomics, read unlocked. */
	uint64_t last_user_poll; /* ns: when poll() last drove them */
	int user_asleep;	 /* armed: the user sleeps on user_epfd */
	int pt_deep;		 /* the progress thread naps until kicked */

	/* completion ring */
	struct rdps_tp_comp *cq;
	/* per entry: send-queue slots its endpoint gets back when polled */
	uint32_t *cq_rel;
	unsigned cq_head;
	unsigned cq_used; /* read without the lock by poll's fast path */
	unsigned cq_resv; /* slots promised to outstanding operations */
	int armed;
	unsigned n_stalled;
	unsigned n_disc; /* endpoints with disc_pending; read unlocked */
	unsigned n_held; /* endpoints with held requests; read unlocked */

	/* endpoints by slot, for epoll events that may outlive them */
	struct tcp_ep **eps;
	uint32_t n_eps_cap;
	uint32_t ep_gen;
	uint32_t n_eps; /* endpoints open */
	/* The endpoint while exactly one is open, else NULL: a user's poll
	 * reads its socket straight away ("Progress"). */
	struct tcp_ep *sole_ep;
	/* The sole endpoint while its socket is out of epfd ("Direct
	 * reads"), else NULL. */
	struct tcp_ep *direct_ep;
	/* The progress thread waits on (or is about to wait on) epfd: no
	 * socket may leave it. */
	int pt_epoll;
	/* User polls that could read directly since the user last armed or
	 * one could not (TCP_DIRECT_AFTER). */
	uint64_t user_polls;
	/* What a user's polls did to drive the sockets (tests count them):
	 * epoll_wait calls, and reads of the sole endpoint's socket made
	 * without one. */
	uint64_t user_epolls, user_direct;

	/* registrations: rkey = gen << 16 | index */
	struct tcp_mr_slot *mrs;
	uint32_t n_mrs_cap;
	uint32_t mr_free; /* head of the free-slot list, UINT32_MAX: none */
};

/* Polls of the user that could read directly, since it last slept or
 * could not, before the sole endpoint's socket leaves the epoll set
 * ("Direct reads"): a user that polls once or twice per wake-up (event
 * mode) never pays the two epoll_ctl calls, nor does one whose large
 * payloads follow each other. */
#define TCP_DIRECT_AFTER 64u
/* Requests an endpoint holds at most before it sends them: one sendmsg's
 * worth of headers. */
#define TCP_HOLD_MAX 60u
#define TCP_MAX_MRS 65536u
/* Per-endpoint receive buffer for headers and small payloads. */
#define TCP_RXBUF_LEN (64 * 1024)
#define TCP_NO_SLOT UINT32_MAX
/* A peer cannot have more requests outstanding than the largest sq_depth
 * the contract allows; more pending responses means a broken peer. */
#define TCP_MAX_RESP 65536u

#define TCP_STR_(x) #x
#define TCP_STR(x) TCP_STR_(x)

/* Requests that RDPS_TP_MAX_RD_ATOMIC bounds: those answered with data. */
static inline int tcp_type_rd_atomic(uint8_t type)
{
	return type == RDPS_TCP_REQ_READ || type == RDPS_TCP_REQ_FADD ||
	       type == RDPS_TCP_REQ_CSWAP || type == RDPS_TCP_REQ_GATHER;
}

static inline struct tcp_tp *to_tcp_tp(struct rdps_tp *tp)
{
	return container_of(tp, struct tcp_tp, base);
}

static inline struct tcp_ep *to_tcp_ep(struct rdps_tp_ep *ep)
{
	return container_of(ep, struct tcp_ep, base);
}

static inline struct tcp_mr *to_tcp_mr(struct rdps_tp_mr *mr)
{
	return container_of(mr, struct tcp_mr, base);
}

/* An endpoint's epoll cookie: its slot and generation (tcp_ep_lookup). */
static inline uint64_t tcp_ep_cookie(const struct tcp_ep *ep)
{
	return (uint64_t)ep->gen << 32 | ep->slot;
}

/*
 * Validate a remote access arriving on ep against the registration table
 * (tp->lock held): returns an enum rdps_tp_status. Beside the table's
 * layout, and inline, because the progress thread runs it for every
 * request it serves while tcp_mr.c only fills the table.
 */
static inline int tcp_mr_check(const struct tcp_ep *ep, uint32_t key,
			       unsigned need, uint64_t raddr, uint64_t len)
{
	const struct tcp_tp *tp = ep->tp;
	uint32_t idx = key & 0xffff;
	struct tcp_mr *mr;

	if (idx >= tp->n_mrs_cap)
		return RDPS_TP_WC_REM_ACCESS_ERR;
	mr = tp->mrs[idx].mr;
	if (!mr || mr->key != key)
		return RDPS_TP_WC_REM_ACCESS_ERR;
	/* A region of one endpoint's peer: endpoint generations are never
	 * reused, so a closed endpoint's region serves nobody. */
	if (mr->ep_gen && mr->ep_gen != ep->gen)
		return RDPS_TP_WC_REM_ACCESS_ERR;
	return rdps_tp_check_access((uintptr_t)mr->base.addr, mr->base.len,
				    mr->base.access, need, raddr, len);
}

/* tcp_cq.c: the completion ring and the wait fd. */
/* Allocate the ring (2 * cq_depth entries) and the wait fd; fini frees
 * what init got, also after a failed init. */
int tcp_cq_init(struct tcp_tp *tp);
void tcp_cq_fini(struct tcp_tp *tp);
/* The rest with tp->lock held. Room for one more post's completion / for a
 * peer's RECV_IMM. */
int tcp_cq_has_room(struct tcp_tp *tp);
int tcp_cq_has_room_imm(struct tcp_tp *tp);
/* Queue c; release: send-queue slots its endpoint gets back when polled.
 * Wakes an armed waiter (tcp_cq_wake). */
void tcp_cq_push(struct tcp_tp *tp, const struct rdps_tp_comp *c,
		 uint32_t release);
/* Wake an armed waiter: a completion or a DISCONNECT is there to take. */
void tcp_cq_wake(struct tcp_tp *tp);
/* Queued completions of ep, which is being closed, lose their ep. */
void tcp_cq_forget_ep(struct tcp_tp *tp, const struct rdps_tp_ep *ep);
/* Move up to max queued completions, then owed DISCONNECTs, into comps. */
int tcp_cq_take(struct tcp_tp *tp, struct rdps_tp_comp *comps, int max);
rdps_tp_wait_fd_fn tcp_cq_wait_fd;
rdps_tp_arm_fn tcp_cq_arm; /* takes tp->lock */

/* tcp_tp.c: the instance and who drives progress. */
/* Serve whatever epoll reports within timeout_ms, with tp->lock held. */
void tcp_tp_progress_events(struct tcp_tp *tp, int timeout_ms);
/* The direct endpoint's socket goes back into the epoll set with its
 * events ("Direct reads"); with tp->lock held. */
void tcp_direct_end(struct tcp_tp *tp);
rdps_tp_poll_fn tcp_tp_poll;

/* tcp_mr.c */
rdps_tp_mem_alloc_fn tcp_mem_alloc;
rdps_tp_mem_free_fn tcp_mem_free;
rdps_tp_mem_reg_fn tcp_mem_reg;
rdps_tp_mem_reg_ep_fn tcp_mem_reg_ep;
rdps_tp_mem_dereg_fn tcp_mem_dereg;
rdps_tp_rkey_pack_fn tcp_rkey_pack;
rdps_tp_rkey_unpack_fn tcp_rkey_unpack;
void tcp_mr_fini(struct tcp_tp *tp);

/* tcp_ep.c: connection management */
rdps_tp_listen_fn tcp_listen;
rdps_tp_listener_url_fn tcp_listener_url;
rdps_tp_accept_fn tcp_accept;
rdps_tp_listener_close_fn tcp_listener_close;
rdps_tp_connect_fn tcp_connect;
rdps_tp_ep_close_fn tcp_ep_close;
/* Endpoint by epoll cookie, NULL if it has been closed since. */
struct tcp_ep *tcp_ep_lookup(struct tcp_tp *tp, uint64_t cookie);

/* tcp_progress.c: the data path; all with tp->lock held. */
void tcp_ep_handle(struct tcp_ep *ep, uint32_t events);
void tcp_ep_rx(struct tcp_ep *ep);
int tcp_tx_flush(struct tcp_ep *ep);
/* Send the held requests of every endpoint (see "Batching"). */
void tcp_tx_release(struct tcp_tp *tp);
void tcp_tx_enqueue(struct tcp_ep *ep, struct tcp_txe *t);
/* Break the connection: log why at lvl (info if nothing was lost), fail
 * every outstanding operation with RDPS_TP_WC_CONN_ERR. */
void tcp_ep_fail(struct tcp_ep *ep, int lvl, const char *why);
/* Stop all traffic of ep: its socket leaves epoll and is closed, a stalled
 * receive is dropped, queued sends are freed, and every outstanding
 * operation completes with status and ep field who (close: NULL). */
void tcp_ep_shut(struct tcp_ep *ep, int status, struct rdps_tp_ep *who);
void tcp_ep_set_events(struct tcp_ep *ep, uint32_t events);
void tcp_op_complete_ready(struct tcp_ep *ep);
void tcp_tx_detach(struct tcp_ep *ep, uint64_t lo, uint64_t hi, int all);
void tcp_rx_forget(struct tcp_ep *ep, uint64_t lo, uint64_t hi);

/* tcp_post.c: one-sided operations */
rdps_tp_put_fn tcp_put;
rdps_tp_put_imm_fn tcp_put_imm;
rdps_tp_get_fn tcp_get;
rdps_tp_get_gather_fn tcp_get_gather;
rdps_tp_atomic_fadd_fn tcp_atomic_fadd;
rdps_tp_atomic_cswap_fn tcp_atomic_cswap;

#endif /* RDPS_TCP_H */
