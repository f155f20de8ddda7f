/* SPDX-License-Identifier: MIT */
/*
 * verbs_cm.c - connection management over librdmacm: one event channel per
 * instance, listeners, and the private-data handshake (magic, protocol
 * version, job token, the user's blob) of accept and connect.
 *
 * Queue pairs are created and moved through INIT/RTR/RTS here rather than
 * by rdma_cm, so that the path MTU, the GID index and the RNR timer are
 * ours to choose; hence the active side sees CONNECT_RESPONSE and calls
 * rdma_establish itself.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "verbs.h"

#define VERBS_BACKLOG 128
#define VERBS_RESOLVE_MS 5000
#define VERBS_RETRY 7
#define VERBS_RNR_RETRY 7 /* infinite: a busy target is not a dead one */

/* An event copied out so it can be acked before it is handled (acking
 * after rdma_destroy_id would deadlock, and the data dies with the ack). */
struct verbs_cm_ev {
	enum rdma_cm_event_type event;
	int status;
	struct rdma_cm_id *id;
	struct rdma_cm_id *listen_id;
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t pdata_len;
	uint8_t pdata[VERBS_PDATA_MAX];
};

int verbs_cm_create(struct verbs_tp *vtp)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int fl, ret;

	vtp->cm_ch = rdma_create_event_channel();
	if (!vtp->cm_ch)
		return rdps_set_error(-errno,
				      "cannot open the rdma_cm event channel "
				      "(%s): load rdma_ucm and check "
				      "/dev/infiniband/rdma_cm",
				      strerror(errno));
	fl = fcntl(vtp->cm_ch->fd, F_GETFL);
	if (fl < 0 || fcntl(vtp->cm_ch->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		goto err_destroy_channel;
	}
	/* Disconnects wake event-mode waiters too, so a dead peer's
	 * operations are flushed even while the caller sleeps. */
	ev.data.fd = vtp->cm_ch->fd;
	if (epoll_ctl(vtp->epoll_fd, EPOLL_CTL_ADD, vtp->cm_ch->fd, &ev)) {
		ret = -errno;
		goto err_destroy_channel;
	}
	return 0;

err_destroy_channel:
	rdma_destroy_event_channel(vtp->cm_ch);
	return ret;
}

void verbs_cm_destroy(struct verbs_tp *vtp)
{
	rdma_destroy_event_channel(vtp->cm_ch);
}

static void verbs_cm_record(struct verbs_cm_result *r,
			    const struct verbs_cm_ev *e)
{
	r->got = true;
	r->event = e->event;
	r->status = e->status;
	r->responder_resources = e->responder_resources;
	r->initiator_depth = e->initiator_depth;
	r->pdata_len = e->pdata_len;
	memcpy(r->pdata, e->pdata, e->pdata_len);
}

static void verbs_reject(struct verbs_tp *vtp, struct rdma_cm_id *id,
			 int reason);

static struct verbs_conn_req *verbs_req_pop(struct verbs_listener *l)
{
	struct verbs_conn_req *r = l->pending;

	if (r) {
		l->pending = r->next;
		l->n_req--;
	}
	return r;
}

/* Refuse request r for reason (unless its connector is gone) and free it. */
static void verbs_req_drop(struct verbs_listener *l, struct verbs_conn_req *r,
			   int reason)
{
	if (!r->dead)
		verbs_reject(l->vtp, r->id, reason);
	rdma_destroy_id(r->id);
	free(r);
}

static void verbs_cm_on_request(struct verbs_listener *l,
				const struct verbs_cm_ev *e)
{
	struct verbs_conn_req *r, **tail;

	/* Requests wait here only until the next accept(); if the owner
	 * calls none for a while, the oldest goes past the bound. */
	if (l->n_req >= RDPS_TP_MAX_PENDING)
		verbs_req_drop(l, verbs_req_pop(l), VERBS_REJ_BUSY);
	r = calloc(1, sizeof(*r));
	if (!r) {
		rdma_reject(e->id, NULL, 0);
		rdma_destroy_id(e->id);
		return;
	}
	r->id = e->id;
	r->responder_resources = e->responder_resources;
	r->initiator_depth = e->initiator_depth;
	r->pdata_len = e->pdata_len;
	memcpy(r->pdata, e->pdata, e->pdata_len);
	for (tail = &l->pending; *tail; tail = &(*tail)->next)
		;
	*tail = r;
	l->n_req++;
}

static void verbs_cm_on_ep(struct verbs_ep *ep, const struct verbs_cm_ev *e)
{
	bool gone = e->event == RDMA_CM_EVENT_DISCONNECTED ||
		    e->event == RDMA_CM_EVENT_DEVICE_REMOVAL;

	switch (ep->state) {
	case VERBS_EP_CONNECTING:
		if (!ep->cm.got)
			verbs_cm_record(&ep->cm, e);
		else if (gone)
			ep->peer_gone = true;
		break;
	case VERBS_EP_CONNECTED:
		if (gone) {
			rdps_info("qp 0x%x: peer disconnected (%s)",
				  ep->qp->qp_num, rdma_event_str(e->event));
			verbs_ep_break(ep, true);
		}
		break;
	default:
		if (gone)
			ep->peer_gone = true;
		break;
	}
}

static void verbs_cm_dispatch(const struct verbs_cm_ev *e)
{
	enum verbs_obj_kind *kind;
	struct verbs_listener *l;

	if (e->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
		kind = e->listen_id->context;
		verbs_cm_on_request(
			container_of(kind, struct verbs_listener, kind), e);
		return;
	}
	kind = e->id->context;
	if (!kind)
		return;
	if (*kind == VERBS_OBJ_EP) {
		verbs_cm_on_ep(container_of(kind, struct verbs_ep, kind), e);
		return;
	}
	/* A request not accepted yet still has its listener's context; any
	 * event for it means its connector gave up. */
	l = container_of(kind, struct verbs_listener, kind);
	for (struct verbs_conn_req *r = l->pending; r; r = r->next) {
		if (r->id == e->id)
			r->dead = true;
	}
}

int verbs_cm_progress(struct verbs_tp *vtp, int timeout_ms)
{
	struct pollfd pfd = {.fd = vtp->cm_ch->fd, .events = POLLIN};
	struct rdma_cm_event *ev;
	struct verbs_cm_ev e;
	int n = 0;

	if (timeout_ms && poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	while (!rdma_get_cm_event(vtp->cm_ch, &ev)) {
		memset(&e, 0, sizeof(e));
		e.event = ev->event;
		e.status = ev->status;
		e.id = ev->id;
		e.listen_id = ev->listen_id;
		if (ev->id->qp_type != IBV_QPT_UD) {
			e.responder_resources =
				ev->param.conn.responder_resources;
			e.initiator_depth = ev->param.conn.initiator_depth;
			if (ev->param.conn.private_data) {
				e.pdata_len =
					ev->param.conn.private_data_len <
							VERBS_PDATA_MAX
						? ev->param.conn
							  .private_data_len
						: VERBS_PDATA_MAX;
				memcpy(e.pdata, ev->param.conn.private_data,
				       e.pdata_len);
			}
		}
		rdma_ack_cm_event(ev);
		rdps_dbg("cm event %s status %d", rdma_event_str(e.event),
			 e.status);
		verbs_cm_dispatch(&e);
		n++;
	}
	return n;
}

static int verbs_parse(const char *url, int passive, struct rdps_url *u,
		       struct addrinfo **ai_out)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM};
	char port[8];
	int ret;

	ret = rdps_url_parse(url, 1, u);
	if (ret)
		return ret;
	if (strcmp(u->scheme, "verbs"))
		return rdps_set_error(-EINVAL,
				      "url '%s' is not for the verbs "
				      "transport: use verbs://HOST:PORT",
				      url);
	if (!passive && u->port == 0)
		return rdps_set_error(-EINVAL,
				      "cannot connect to port 0 in '%s': use "
				      "the listener's real port",
				      url);
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", u->port);
	ret = getaddrinfo(u->host, port, &hints, ai_out);
	if (ret)
		return rdps_set_error(-EINVAL,
				      "cannot resolve '%s' in '%s': %s",
				      u->host, url, gai_strerror(ret));
	return 0;
}

/* Handshake ------------------------------------------------------------ */

static size_t verbs_hello_fill(struct verbs_tp *vtp, uint8_t *buf, uint8_t kind,
			       uint8_t arg, const void *priv, size_t priv_len)
{
	struct verbs_hello h = {
		.magic_be = rdps_htobe32(VERBS_MAGIC),
		.version = vtp->proto_version,
		.kind = kind,
		.arg = arg,
		.priv_len = (uint8_t)priv_len,
		.token_be = rdps_htobe64(vtp->base.cfg.token),
	};

	memcpy(buf, &h, sizeof(h));
	if (priv_len)
		memcpy(buf + sizeof(h), priv, priv_len);
	return sizeof(h) + priv_len;
}

int verbs_hello_parse(const void *buf, size_t len, uint8_t kind,
		      uint8_t version, uint64_t token,
		      struct verbs_hello *h_out)
{
	struct verbs_hello h;

	if (len < sizeof(h))
		return VERBS_REJ_MALFORMED;
	memcpy(&h, buf, sizeof(h));
	if (rdps_be32toh(h.magic_be) != VERBS_MAGIC || h.kind != kind ||
	    h.priv_len > RDPS_TP_PRIV_MAX || sizeof(h) + h.priv_len > len)
		return VERBS_REJ_MALFORMED;
	if (h.version != version)
		return VERBS_REJ_VERSION;
	if (rdps_be64toh(h.token_be) != token)
		return VERBS_REJ_TOKEN;
	*h_out = h;
	return 0;
}

/* Parse a hello or reply; 0 or an enum verbs_reject_reason. */
static int verbs_hello_check(struct verbs_tp *vtp, const uint8_t *p, size_t n,
			     uint8_t kind, struct verbs_hello *h_out)
{
	return verbs_hello_parse(p, n, kind, vtp->proto_version,
				 vtp->base.cfg.token, h_out);
}

static void verbs_copy_peer_priv(struct verbs_ep *ep, const uint8_t *pdata,
				 const struct verbs_hello *h)
{
	memcpy(ep->base.peer_priv, pdata + sizeof(*h), h->priv_len);
	ep->base.peer_priv_len = h->priv_len;
}

static void verbs_reject(struct verbs_tp *vtp, struct rdma_cm_id *id,
			 int reason)
{
	uint8_t buf[sizeof(struct verbs_hello)];

	verbs_hello_fill(vtp, buf, VERBS_MSG_REJECT, (uint8_t)reason, NULL, 0);
	if (!rdma_reject(id, buf, sizeof(buf)))
		return;
	/* EINVAL: the request is no longer pending, its connector gave up
	 * (timed out) before its event reached us; nothing to refuse. */
	if (errno == EINVAL)
		rdps_dbg("rdma_reject: the connector is gone");
	else
		rdps_warn("rdma_reject: %s", strerror(errno));
}

static const char *verbs_reason_str(int reason)
{
	switch (reason) {
	case VERBS_REJ_VERSION:
		return "protocol version mismatch";
	case VERBS_REJ_TOKEN:
		return "job token mismatch";
	case VERBS_REJ_MALFORMED:
		return "not an rdps verbs handshake";
	case VERBS_REJ_BUSY:
		return "too many unfinished handshakes";
	default:
		return "out of resources";
	}
}

/* Listener ------------------------------------------------------------- */

int verbs_listen(struct rdps_tp *tp, const char *url, const void *priv,
		 size_t priv_len, struct rdps_tp_listener **l_out)
{
	struct verbs_tp *vtp = verbs_tp_of(tp);
	struct verbs_listener *l;
	struct addrinfo *ai;
	struct rdps_url u;
	int ret;

	ret = verbs_parse(url, 1, &u, &ai);
	if (ret)
		return ret;
	l = calloc(1, sizeof(*l));
	if (!l) {
		ret = -ENOMEM;
		goto err_free_ai;
	}
	l->base.tp = tp;
	l->kind = VERBS_OBJ_LISTENER;
	l->vtp = vtp;
	l->priv_len = (uint8_t)priv_len;
	if (priv_len)
		memcpy(l->priv, priv, priv_len);
	snprintf(l->host, sizeof(l->host), "%s", u.host);
	if (rdma_create_id(vtp->cm_ch, &l->id, &l->kind, RDMA_PS_TCP)) {
		ret = rdps_set_error(-errno, "cannot create an rdma_cm id: %s",
				     strerror(errno));
		goto err_free_l;
	}
	if (rdma_bind_addr(l->id, ai->ai_addr)) {
		ret = -errno;
		if (ret == -EADDRINUSE)
			rdps_set_error(ret,
				       "rdma_cm port %d on %s is in use: pick "
				       "another port or 0 for a free one",
				       u.port, u.host);
		else
			rdps_set_error(ret,
				       "cannot bind rdma_cm to %s (%s): use "
				       "the IP of an RDMA-capable interface",
				       url, strerror(-ret));
		goto err_destroy_id;
	}
	if (l->id->verbs && l->id->verbs != vtp->ctx) {
		ret = rdps_set_error(-ENODEV,
				     "%s belongs to RDMA device %s, this "
				     "transport uses %s: set cfg.dev or use "
				     "another address",
				     url,
				     ibv_get_device_name(l->id->verbs->device),
				     ibv_get_device_name(vtp->ctx->device));
		goto err_destroy_id;
	}
	if (rdma_listen(l->id, VERBS_BACKLOG)) {
		ret = rdps_set_error(-errno, "cannot listen on %s: %s", url,
				     strerror(errno));
		goto err_destroy_id;
	}
	freeaddrinfo(ai);
	*l_out = &l->base;
	return 0;

err_destroy_id:
	rdma_destroy_id(l->id);
err_free_l:
	free(l);
err_free_ai:
	freeaddrinfo(ai);
	return ret;
}

int verbs_listener_url(struct rdps_tp_listener *bl, char *buf, size_t len)
{
	struct verbs_listener *l =
		container_of(bl, struct verbs_listener, base);

	return rdps_url_format(buf, len, "verbs", l->host,
			       ntohs(rdma_get_src_port(l->id)));
}

static uint8_t verbs_min8(uint32_t a, uint32_t b)
{
	uint32_t m = a < b ? a : b;

	return (uint8_t)(m > 255 ? 255 : m);
}

/* Wait for an endpoint's next connection event. */
static int verbs_cm_next(struct verbs_ep *ep, uint64_t deadline)
{
	int ms;

	for (;;) {
		if (ep->cm.got) {
			ep->cm.got = false;
			return 0;
		}
		ms = rdps_ms_left(deadline);
		if (!ms)
			return -ETIMEDOUT;
		verbs_cm_progress(ep->vtp, ms);
	}
}

/* Handshakes in progress ---------------------------------------------- */

/*
 * Take handshake i out and destroy its endpoint. No rdma_reject of our
 * own: after rdma_accept the kernel's reply is still outstanding (the
 * connector acknowledged it with an MRA, which stretches its timeout),
 * rdma_reject does not cancel it, and rdma_destroy_id then blocks until
 * it times out, seconds for each peer (seen on rxe). Destroying the id
 * cancels the reply and sends rdma_cm's own reject, without private data;
 * the connector then fails -ECONNRESET (verbs_connect).
 */
static void verbs_hs_drop(struct verbs_listener *l, unsigned i)
{
	struct verbs_ep *ep = l->hs[i].ep;

	l->hs[i] = l->hs[--l->n_hs];
	verbs_ep_destroy(ep);
}

/* Make room for a new handshake: the oldest unfinished one goes. */
static void verbs_hs_evict(struct verbs_listener *l)
{
	unsigned old = 0;

	for (unsigned i = 1; i < l->n_hs; i++)
		if (l->hs[i].deadline < l->hs[old].deadline)
			old = i;
	rdps_dbg("verbs://%s: %u peers in the handshake; dropped the oldest",
		 l->host, l->n_hs);
	verbs_hs_drop(l, old);
}

/*
 * Take one connect request: refuse it, or create its queue pair, send our
 * reply (rdma_accept) and keep it among the handshakes until its
 * connector's ESTABLISHED or its deadline. Never waits. Frees r.
 */
static void verbs_hs_start(struct verbs_listener *l, struct verbs_conn_req *r)
{
	struct verbs_tp *vtp = l->vtp;
	uint8_t buf[VERBS_PDATA_MAX];
	struct rdma_conn_param param = {.retry_count = VERBS_RETRY,
					.rnr_retry_count = VERBS_RNR_RETRY};
	struct verbs_hello h;
	struct verbs_ep *ep;
	int reason, ret;

	if (r->dead) {
		rdma_destroy_id(r->id);
		goto out;
	}
	reason = verbs_hello_check(vtp, r->pdata, r->pdata_len, VERBS_MSG_HELLO,
				   &h);
	if (reason) {
		rdps_warn("refusing a verbs peer: %s",
			  verbs_reason_str(reason));
		verbs_req_drop(l, r, reason);
		return;
	}
	if (l->n_hs == RDPS_TP_MAX_PENDING)
		verbs_hs_evict(l);
	if (verbs_ep_alloc(vtp, &ep)) {
		verbs_req_drop(l, r, VERBS_REJ_RESOURCES);
		return;
	}
	ep->id = r->id; /* the endpoint owns it from here */
	ep->id->context = &ep->kind;
	ep->atomic_ok = vtp->atomic_ok && (h.arg & VERBS_HELLO_ATOMIC);
	verbs_copy_peer_priv(ep, r->pdata, &h);
	/* Each handshake holds a queue pair and its completion-queue room:
	 * when those run out, the oldest handshake goes, not this peer. */
	while ((ret = verbs_ep_init_qp(ep)) &&
	       (ret == -ENOBUFS || ret == -ENOMEM) && l->n_hs)
		verbs_hs_evict(l);
	if (ret)
		goto err_reject;
	param.responder_resources =
		verbs_min8(r->initiator_depth, vtp->max_rd_atom);
	param.initiator_depth =
		verbs_min8(r->responder_resources, vtp->max_init_rd_atom);
	ret = verbs_ep_qp_ready(ep, param.responder_resources,
				param.initiator_depth);
	if (ret)
		goto err_reject;
	param.qp_num = ep->qp->qp_num; /* ours, not rdma_cm's */
	param.private_data = buf;
	param.private_data_len = (uint8_t)verbs_hello_fill(
		vtp, buf, VERBS_MSG_REPLY,
		vtp->atomic_ok ? VERBS_HELLO_ATOMIC : 0, l->priv, l->priv_len);
	if (rdma_accept(ep->id, &param)) {
		rdps_warn("rdma_accept: %s", strerror(errno));
		verbs_ep_destroy(ep);
		goto out;
	}
	l->hs[l->n_hs++] = (struct verbs_hs){
		.ep = ep, .deadline = rdps_deadline(RDPS_TP_HELLO_MS)};
out:
	free(r);
	return;

err_reject:
	rdps_warn("refusing a verbs peer: %s", rdps_errmsg());
	verbs_reject(vtp, ep->id, VERBS_REJ_RESOURCES);
	verbs_ep_destroy(ep);
	free(r);
}

/* Look at every handshake: the failed and the expired are dropped; 0 and
 * *ep_out for one whose connection is established, else -EAGAIN. */
static int verbs_hs_reap(struct verbs_listener *l, struct verbs_ep **ep_out)
{
	uint64_t now = rdps_now_ns();

	/* From the last: a drop moves the last entry, already seen, to i. */
	for (unsigned i = l->n_hs; i-- > 0;) {
		struct verbs_ep *ep = l->hs[i].ep;

		if (ep->cm.got && ep->cm.event == RDMA_CM_EVENT_ESTABLISHED) {
			l->hs[i] = l->hs[--l->n_hs];
			ep->cm.got = false;
			ep->state = VERBS_EP_CONNECTED;
			if (ep->peer_gone)
				verbs_ep_break(ep, true);
			*ep_out = ep;
			return 0;
		}
		if (ep->cm.got) {
			rdps_warn("verbs peer went away during the handshake "
				  "(%s)",
				  rdma_event_str(ep->cm.event));
			verbs_hs_drop(l, i);
		} else if (now >= l->hs[i].deadline) {
			rdps_warn("verbs://%s: dropped a peer that did not "
				  "complete its connection within %d ms",
				  l->host, RDPS_TP_HELLO_MS);
			verbs_hs_drop(l, i);
		}
	}
	return -EAGAIN;
}

/*
 * A state machine, not a wait per peer: every request is answered at once
 * and its handshake then finishes whenever its connector's ESTABLISHED
 * comes, across calls, so a connector that never completes holds up
 * nobody (transport.h, RDPS_TP_HELLO_MS and RDPS_TP_MAX_PENDING).
 */
int verbs_accept(struct rdps_tp_listener *bl, struct rdps_tp_ep **ep_out,
		 int timeout_ms)
{
	struct verbs_listener *l =
		container_of(bl, struct verbs_listener, base);
	uint64_t deadline = rdps_deadline(timeout_ms), wake;
	struct verbs_conn_req *r;
	struct verbs_ep *ep;
	int ms;

	for (;;) {
		verbs_cm_progress(l->vtp, 0);
		while ((r = verbs_req_pop(l)))
			verbs_hs_start(l, r);
		if (!verbs_hs_reap(l, &ep)) {
			*ep_out = &ep->base;
			return 0;
		}
		if (timeout_ms == 0 || rdps_now_ns() >= deadline)
			return -ETIMEDOUT;
		wake = deadline;
		for (unsigned i = 0; i < l->n_hs; i++)
			if (l->hs[i].deadline < wake)
				wake = l->hs[i].deadline;
		ms = rdps_ms_left(wake);
		verbs_cm_progress(l->vtp, ms ? ms : 1);
	}
}

void verbs_listener_close(struct rdps_tp_listener *bl)
{
	struct verbs_listener *l;
	struct verbs_conn_req *r;

	if (!bl)
		return;
	l = container_of(bl, struct verbs_listener, base);
	/* Take in requests still in the channel so none keeps waiting. */
	verbs_cm_progress(l->vtp, 0);
	while ((r = verbs_req_pop(l)))
		verbs_req_drop(l, r, VERBS_REJ_RESOURCES);
	while (l->n_hs)
		verbs_hs_drop(l, l->n_hs - 1);
	rdma_destroy_id(l->id);
	free(l);
}

/* Connect -------------------------------------------------------------- */

static int verbs_connect_failed(struct verbs_ep *ep, const char *url)
{
	const struct verbs_cm_result *c = &ep->cm;
	struct verbs_hello h;

	switch (c->event) {
	case RDMA_CM_EVENT_REJECTED:
		memcpy(&h, c->pdata, sizeof(h));
		if (c->pdata_len < sizeof(h) ||
		    rdps_be32toh(h.magic_be) != VERBS_MAGIC ||
		    h.kind != VERBS_MSG_REJECT)
			return rdps_set_error(-ECONNREFUSED,
					      "nobody listens on %s (rejected, "
					      "reason %d): start the server or "
					      "fix the port",
					      url, c->status);
		if (h.arg == VERBS_REJ_VERSION)
			return rdps_set_error(-EPROTO,
					      "%s speaks rdps verbs protocol "
					      "%u, we speak %u: run the same "
					      "rdps version on both sides",
					      url, h.version,
					      ep->vtp->proto_version);
		if (h.arg == VERBS_REJ_TOKEN)
			return rdps_set_error(-EACCES,
					      "%s refused us: job token "
					      "mismatch; start both sides with "
					      "the same job token",
					      url);
		if (h.arg == VERBS_REJ_MALFORMED)
			return rdps_set_error(-EPROTO,
					      "%s did not understand our "
					      "handshake: check the rdps "
					      "versions",
					      url);
		if (h.arg == VERBS_REJ_BUSY)
			return rdps_set_error(
				-EBUSY,
				"%s is busy: it holds %d connections that "
				"have not finished their handshake (idle or "
				"hostile peers) and dropped ours for a newer "
				"one",
				url, RDPS_TP_MAX_PENDING);
		return rdps_set_error(-ECONNREFUSED,
				      "%s refused us: it is out of resources",
				      url);
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
		if (c->status == -ETIMEDOUT)
			return rdps_set_error(-ETIMEDOUT,
					      "no answer from %s (%s): check "
					      "that the host is up",
					      url, rdma_event_str(c->event));
		return rdps_set_error(
			-EHOSTUNREACH,
			"%s is unreachable over RDMA (%s, %s): "
			"check the address and that an RDMA "
			"interface routes to it",
			url, rdma_event_str(c->event),
			strerror(c->status < 0 ? -c->status : c->status));
	default:
		return rdps_set_error(-ECONNABORTED,
				      "connecting to %s failed: rdma_cm "
				      "event %s, status %d",
				      url, rdma_event_str(c->event), c->status);
	}
}

static int verbs_connect_step(struct verbs_ep *ep, const char *url,
			      enum rdma_cm_event_type want, uint64_t deadline)
{
	int ret = verbs_cm_next(ep, deadline);

	if (ret == -ETIMEDOUT)
		return rdps_set_error(-ETIMEDOUT,
				      "no answer from %s within the timeout: "
				      "check the address and that the server "
				      "runs",
				      url);
	if (ep->cm.event != (int)want)
		return verbs_connect_failed(ep, url);
	return 0;
}

static int verbs_resolve_ms(uint64_t deadline)
{
	int ms = rdps_ms_left(deadline);

	return ms < 0 || ms > VERBS_RESOLVE_MS ? VERBS_RESOLVE_MS : ms ? ms : 1;
}

int verbs_connect(struct rdps_tp *tp, const char *url, const void *priv,
		  size_t priv_len, struct rdps_tp_ep **ep_out, int timeout_ms)
{
	struct verbs_tp *vtp = verbs_tp_of(tp);
	uint64_t deadline = rdps_deadline(timeout_ms);
	uint8_t buf[VERBS_PDATA_MAX];
	struct rdma_conn_param param = {.retry_count = VERBS_RETRY,
					.rnr_retry_count = VERBS_RNR_RETRY};
	struct verbs_hello h;
	struct verbs_ep *ep;
	struct addrinfo *ai;
	struct rdps_url u;
	int ret;

	ret = verbs_parse(url, 0, &u, &ai);
	if (ret)
		return ret;
	ret = verbs_ep_alloc(vtp, &ep);
	if (ret)
		goto err_free_ai;
	if (rdma_create_id(vtp->cm_ch, &ep->id, &ep->kind, RDMA_PS_TCP)) {
		ret = rdps_set_error(-errno, "cannot create an rdma_cm id: %s",
				     strerror(errno));
		goto err_destroy_ep;
	}
	if (rdma_resolve_addr(ep->id, NULL, ai->ai_addr,
			      verbs_resolve_ms(deadline))) {
		ret = rdps_set_error(-errno, "cannot resolve %s: %s", url,
				     strerror(errno));
		goto err_destroy_ep;
	}
	ret = verbs_connect_step(ep, url, RDMA_CM_EVENT_ADDR_RESOLVED,
				 deadline);
	if (ret)
		goto err_destroy_ep;
	if (rdma_resolve_route(ep->id, verbs_resolve_ms(deadline))) {
		ret = rdps_set_error(-errno, "cannot route to %s: %s", url,
				     strerror(errno));
		goto err_destroy_ep;
	}
	ret = verbs_connect_step(ep, url, RDMA_CM_EVENT_ROUTE_RESOLVED,
				 deadline);
	if (ret)
		goto err_destroy_ep;
	ret = verbs_ep_init_qp(ep);
	if (ret)
		goto err_destroy_ep;

	param.responder_resources = verbs_min8(vtp->max_rd_atom, 255);
	param.initiator_depth = verbs_min8(vtp->max_init_rd_atom, 255);
	param.qp_num = ep->qp->qp_num;
	param.private_data = buf;
	param.private_data_len = (uint8_t)verbs_hello_fill(
		vtp, buf, VERBS_MSG_HELLO,
		vtp->atomic_ok ? VERBS_HELLO_ATOMIC : 0, priv, priv_len);
	if (rdma_connect(ep->id, &param)) {
		ret = rdps_set_error(-errno, "cannot connect to %s: %s", url,
				     strerror(errno));
		goto err_destroy_ep;
	}
	ret = verbs_connect_step(ep, url, RDMA_CM_EVENT_CONNECT_RESPONSE,
				 deadline);
	if (ret)
		goto err_destroy_ep;
	ret = verbs_hello_check(vtp, ep->cm.pdata, ep->cm.pdata_len,
				VERBS_MSG_REPLY, &h);
	if (ret) {
		ret = rdps_set_error(ret == VERBS_REJ_TOKEN ? -EACCES : -EPROTO,
				     "%s answered with a bad handshake (%s): "
				     "is it an rdps verbs server of this "
				     "version?",
				     url, verbs_reason_str(ret));
		goto err_reject;
	}
	ep->atomic_ok = vtp->atomic_ok && (h.arg & VERBS_HELLO_ATOMIC);
	ret = verbs_ep_qp_ready(ep, param.responder_resources,
				ep->cm.responder_resources);
	if (ret)
		goto err_reject;
	if (rdma_establish(ep->id)) {
		ret = -errno;
		/* The listener dropped us after its reply: it was busy, or
		 * we took longer than its deadline. Worth a retry. */
		verbs_cm_progress(vtp, 0);
		if (ep->cm.got && ep->cm.event == RDMA_CM_EVENT_REJECTED) {
			ret = rdps_set_error(
				-ECONNRESET,
				"%s dropped our connection before it was "
				"complete: it holds too many unfinished "
				"handshakes (idle or hostile peers), or ours "
				"took longer than %d ms",
				url, RDPS_TP_HELLO_MS);
			goto err_destroy_ep;
		}
		ret = rdps_set_error(ret,
				     "cannot complete connection to "
				     "%s: %s",
				     url, strerror(-ret));
		goto err_reject;
	}
	verbs_copy_peer_priv(ep, ep->cm.pdata, &h);
	ep->state = VERBS_EP_CONNECTED;
	if (ep->peer_gone)
		verbs_ep_break(ep, true);
	freeaddrinfo(ai);
	*ep_out = &ep->base;
	return 0;

err_reject:
	rdma_reject(ep->id, NULL, 0);
err_destroy_ep:
	verbs_ep_destroy(ep);
err_free_ai:
	freeaddrinfo(ai);
	return ret;
}
