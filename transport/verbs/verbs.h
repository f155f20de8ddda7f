/* SPDX-License-Identifier: MIT */
/*
 * verbs.h - private structures of the verbs transport (rdma-core).
 *
 * Objects, one file each:
 *   verbs_tp.c   the instance: device, protection domain, the ops table,
 *                memory allocation;
 *   verbs_cq.c   the one completion queue of an instance, its completion
 *                channel, the software completion queue, poll/arm;
 *   verbs_ep.c   an endpoint: its RC queue pair, send-slot ring, receive
 *                pool and the one-sided posts;
 *   verbs_cm.c   connection management: the rdma_cm event channel, the
 *                private-data handshake, listen/accept/connect;
 *   verbs_mr.c   memory registrations and remote keys.
 *
 * Work request ids. A send or receive posted on a queue pair carries
 *	ep index (16 bits) | ep generation (16 bits) | slot (32 bits)
 * so a completion finds its endpoint with one array load, and a completion
 * left in the CQ by an endpoint that is gone (its generation moved on) is
 * recognised and dropped instead of touching freed memory.
 */
#ifndef RDPS_VERBS_H
#define RDPS_VERBS_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>

#include "rdps_base.h"
#include "transport.h"

#define VERBS_MAGIC 0x52445053u /* "RDPS" */

/* Handshake message kinds (struct verbs_hello.kind). */
enum verbs_msg_kind {
	VERBS_MSG_HELLO = 1, /* connect request: connector -> listener */
	VERBS_MSG_REPLY,     /* accept: listener -> connector */
	VERBS_MSG_REJECT,    /* reject: arg is enum verbs_reject_reason */
};

enum verbs_reject_reason {
	VERBS_REJ_VERSION = 1, /* connector gets -EPROTO */
	VERBS_REJ_TOKEN,       /* connector gets -EACCES */
	VERBS_REJ_MALFORMED,   /* -EPROTO */
	VERBS_REJ_RESOURCES,   /* -ECONNREFUSED */
	/* The listener holds RDPS_TP_MAX_PENDING requests it has not looked
	 * at and pushed ours out for a newer one: -EBUSY, worth a retry. (A
	 * connection dropped after its reply gets rdma_cm's own reject,
	 * without private data: verbs_cm.c, verbs_hs_drop.) */
	VERBS_REJ_BUSY,
};

/* Capability flags in a hello or reply (struct verbs_hello.arg). */
#define VERBS_HELLO_ATOMIC 0x1u

/*
 * Wire header of every handshake private-data blob, followed by up to
 * RDPS_TP_PRIV_MAX bytes of the user's blob. An RC connect request carries
 * at most 56 bytes of private data, so 16 + 32 fits.
 */
struct verbs_hello {
	uint32_t magic_be;
	uint8_t version;
	uint8_t kind;
	uint8_t arg; /* hello/reply: VERBS_HELLO_* flags; reject: reason */
	uint8_t priv_len;
	uint64_t token_be;
};
_Static_assert(sizeof(struct verbs_hello) == 16, "verbs hello wire form");

#define VERBS_PDATA_MAX (sizeof(struct verbs_hello) + RDPS_TP_PRIV_MAX)

/*
 * Parse a hello (kind VERBS_MSG_HELLO) or reply (VERBS_MSG_REPLY) of len
 * bytes of rdmacm private data, expecting our protocol version and job
 * token: 0 with *h_out set (the peer's blob is the priv_len bytes after
 * the header), else an enum verbs_reject_reason. Pure, for the fuzzer
 * (tests/fuzz/fuzz_verbs_hello.c); verbs_cm.c calls it.
 */
int verbs_hello_parse(const void *buf, size_t len, uint8_t kind,
		      uint8_t version, uint64_t token,
		      struct verbs_hello *h_out);

/* What an rdma_cm_id's context points at. */
enum verbs_obj_kind {
	VERBS_OBJ_LISTENER = 1,
	VERBS_OBJ_EP,
};

/* Low 32 bits of a wr_id that is not a send slot. */
#define VERBS_WRID_RECV 0xfffffff0u
#define VERBS_WRID_DRAIN 0xfffffff1u
#define VERBS_WRID_BIND 0xfffffff2u /* a memory window bind, mem_reg_ep */

/* Send queue entries beyond sq_depth: the drain marker of ep_close and the
 * window bind of mem_reg_ep (each waited for, so never more). */
#define VERBS_SQ_EXTRA 2u

#define VERBS_EP_MAX 65535u

enum verbs_ep_state {
	VERBS_EP_CONNECTING = 0,
	VERBS_EP_CONNECTED,
	VERBS_EP_BROKEN,  /* QP in error: peer gone or an operation failed */
	VERBS_EP_CLOSING, /* ep_close is draining it */
};

/* Book-keeping of one posted send work request. */
struct verbs_slot {
	uint64_t wr_id;
	uint32_t len;
	uint8_t opcode;	     /* enum rdps_tp_opcode */
	uint8_t user_signal; /* the caller wants a completion on success */
	/* Gather READ (a chain of READs, verbs_get_gather): more of its
	 * chain follows this one; muted: an earlier one of its chain already
	 * reported the gather's failure, this one reports nothing. */
	uint8_t chain_more;
	uint8_t muted;
};

/* The last connection-setup event seen for an endpoint's cm id. */
struct verbs_cm_result {
	bool got;
	int event; /* enum rdma_cm_event_type */
	int status;
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t pdata_len;
	uint8_t pdata[VERBS_PDATA_MAX];
};

struct verbs_ep {
	struct rdps_tp_ep base;
	enum verbs_obj_kind kind; /* the cm id's context points here */
	struct verbs_tp *vtp;
	struct ibv_qp *qp;
	struct rdma_cm_id *id;
	enum verbs_ep_state state;
	bool peer_gone; /* DISCONNECTED seen: flushes are connection errors */
	bool disc_pending; /* a DISCONNECT completion is owed */
	bool atomic_ok;	   /* both devices do atomics */
	uint32_t max_inline;
	uint64_t wrid_base; /* index and generation, shifted into place */

	/* Send ring: slots [sq_tail, sq_head) are posted and not retired. */
	struct verbs_slot *ring;
	uint32_t ring_mask;
	uint32_t sq_head;
	uint32_t sq_tail;
	uint32_t sq_depth;
	uint32_t unsig_run;  /* unsignaled posts since the last signaled one */
	uint32_t sig_period; /* force a signal this often to free slots */

	/* Registrations of this peer alone (mem_reg_ep): their windows are
	 * bound to qp and die before it. */
	struct verbs_mr *scoped;
	bool bind_done;	 /* the bind work request completed... */
	int bind_status; /* ...with this enum ibv_wc_status */

	uint32_t rq_posted; /* receives posted for write-with-immediate */
	uint32_t rq_pool;
	uint32_t cq_reserved; /* CQ entries held for its receives + drain */
	bool drain_done;

	struct verbs_cm_result cm;
};

/* A connect request waiting for accept(). */
struct verbs_conn_req {
	struct verbs_conn_req *next;
	struct rdma_cm_id *id;
	bool dead; /* the connector went away before accept */
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t pdata_len;
	uint8_t pdata[VERBS_PDATA_MAX];
};

struct verbs_listener {
	struct rdps_tp_listener base;
	enum verbs_obj_kind kind;
	struct verbs_tp *vtp;
	struct rdma_cm_id *id;
	char host[256];
	/* Connect requests not looked at yet (FIFO, at most
	 * RDPS_TP_MAX_PENDING), then handshakes in progress: accepted, our
	 * reply sent, waiting for the connector's ESTABLISHED, each until
	 * its own deadline and none waiting for another (transport.h). */
	struct verbs_conn_req *pending;
	unsigned n_req;
	unsigned n_hs;
	struct verbs_hs {
		struct verbs_ep *ep;
		uint64_t deadline; /* ns: RDPS_TP_HELLO_MS after our reply */
	} hs[RDPS_TP_MAX_PENDING];
	uint8_t priv_len;
	uint8_t priv[RDPS_TP_PRIV_MAX];
};

struct verbs_tp {
	struct rdps_tp base;
	struct ibv_context *ctx; /* owned by librdmacm, never closed here */
	struct ibv_pd *pd;
	struct rdps_numa *numa; /* NIC-local placement; NULL without hwloc */
	struct ibv_comp_channel *comp_ch;
	struct ibv_cq *cq;
	struct rdma_event_channel *cm_ch;
	int epoll_fd; /* the wait fd: completion channel + cm channel */
	uint8_t port_num;
	bool atomic_ok;
	bool mw_ok;	       /* type 2 memory windows: mem_reg_ep */
	uint8_t proto_version; /* RDPS_TP_PROTO_VERSION; tests may change it */
	uint32_t max_rd_atom;
	uint32_t max_init_rd_atom;

	/* CQ accounting: entries that may still appear (posted sends, soft
	 * queue) plus entries reserved by endpoints' receives and drains
	 * never exceed cq_cap, so the hardware CQ cannot overflow. */
	uint32_t cq_cap;
	uint32_t cq_used;
	uint32_t cq_reserved;
	uint32_t cq_unacked; /* completion channel events not acked yet */

	/* Software completion queue, drained by poll() before the CQ:
	 * completions found while draining a closing endpoint, synthetic
	 * errors decided at post time, completions taken by arm(). */
	struct rdps_tp_comp *soft;
	uint32_t soft_mask;
	uint32_t soft_head;
	uint32_t soft_tail;

	/* Endpoints by index, for completions; gen[] outlives each ep. */
	struct verbs_ep **eps;
	uint16_t *gen;
	uint32_t n_eps_slots;
	uint32_t n_disc; /* endpoints with disc_pending */

	uint64_t next_cm_check_ns;
	uint32_t idle_polls;
};

static inline struct verbs_tp *verbs_tp_of(struct rdps_tp *tp)
{
	return container_of(tp, struct verbs_tp, base);
}

static inline struct verbs_ep *verbs_ep_of(struct rdps_tp_ep *ep)
{
	return container_of(ep, struct verbs_ep, base);
}

/* verbs_cq.c */
int verbs_cq_create(struct verbs_tp *vtp);
void verbs_cq_destroy(struct verbs_tp *vtp);
rdps_tp_poll_fn verbs_poll;
rdps_tp_wait_fd_fn verbs_wait_fd;
rdps_tp_arm_fn verbs_arm;
/* Queue a completion in the software queue (space is accounted for). */
void verbs_soft_push(struct verbs_tp *vtp, const struct rdps_tp_comp *c);
/* Completions already queued for a closing endpoint lose their ep pointer,
 * as the contract says, before the endpoint is freed. */
void verbs_soft_forget_ep(struct verbs_tp *vtp, const struct rdps_tp_ep *ep);
/* Move completions from the CQ into the software queue; returns count. */
int verbs_cq_reap(struct verbs_tp *vtp);
int verbs_status_of(enum ibv_wc_status st, const struct verbs_ep *ep);

/* verbs_ep.c */
/* An endpoint without a queue pair yet; it owns ep->id once set. */
int verbs_ep_alloc(struct verbs_tp *vtp, struct verbs_ep **ep_out);
/* Create ep's queue pair on ep->id (address resolved), move it to INIT and
 * post the receive pool. */
int verbs_ep_init_qp(struct verbs_ep *ep);
void verbs_ep_destroy(struct verbs_ep *ep);
int verbs_ep_qp_ready(struct verbs_ep *ep, uint8_t responder_resources,
		      uint8_t initiator_depth);
void verbs_ep_break(struct verbs_ep *ep, bool peer_gone);
/* Take a registration scoped to an endpoint off that endpoint's list and
 * free its memory window: no queue pair accepts its key any more. Nothing
 * done if it has no window (any more). */
void verbs_ep_unbind(struct verbs_mr *vmr);
void verbs_ep_disc_clear(struct verbs_ep *ep);
void verbs_ep_repost_recv(struct verbs_ep *ep);
rdps_tp_ep_close_fn verbs_ep_close;
rdps_tp_put_fn verbs_put;
rdps_tp_put_imm_fn verbs_put_imm;
rdps_tp_get_fn verbs_get;
rdps_tp_get_gather_fn verbs_get_gather;
rdps_tp_atomic_fadd_fn verbs_atomic_fadd;
rdps_tp_atomic_cswap_fn verbs_atomic_cswap;

/* verbs_cm.c */
int verbs_cm_create(struct verbs_tp *vtp);
void verbs_cm_destroy(struct verbs_tp *vtp);
/* Handle every pending cm event; wait up to timeout_ms for the first. */
int verbs_cm_progress(struct verbs_tp *vtp, int timeout_ms);
rdps_tp_listen_fn verbs_listen;
rdps_tp_listener_url_fn verbs_listener_url;
rdps_tp_accept_fn verbs_accept;
rdps_tp_listener_close_fn verbs_listener_close;
rdps_tp_connect_fn verbs_connect;

/* verbs_mr.c */
rdps_tp_mem_reg_fn verbs_mem_reg;
rdps_tp_mem_reg_ep_fn verbs_mem_reg_ep;
rdps_tp_mem_dereg_fn verbs_mem_dereg;
rdps_tp_rkey_pack_fn verbs_rkey_pack;
rdps_tp_rkey_unpack_fn verbs_rkey_unpack;

/*
 * A registration. For every peer (mem_reg) it is one memory region with
 * the remote rights asked for. For one endpoint's peer (mem_reg_ep) the
 * region has local rights only and a type 2 memory window bound to that
 * endpoint's queue pair carries the remote rights: a responder accepts a
 * window's key on the queue pair it is bound to and nowhere else.
 */
struct verbs_mr {
	struct rdps_tp_mr base;
	struct ibv_mr *mr;
	uint32_t rkey;		  /* what rkey_pack hands out */
	struct ibv_mw *mw;	  /* NULL: none, or its endpoint closed */
	struct verbs_ep *ep;	  /* the window's endpoint while bound */
	struct verbs_mr *ep_next; /* in ep->scoped */
};

static inline struct verbs_mr *verbs_mr_of(struct rdps_tp_mr *mr)
{
	return container_of(mr, struct verbs_mr, base);
}

#endif /* RDPS_VERBS_H */
