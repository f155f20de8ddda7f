/* SPDX-License-Identifier: MIT */
/*
 * test_verbs_mock.c - the verbs transport without an RDMA device.
 *
 * The control path (ibv_* and rdma_* functions the library calls) is
 * replaced at link time with -Wl,--wrap=SYM: every __wrap_SYM below is a
 * fake that allocates a small object, counts it, and can be told to fail.
 * The data path (ibv_post_send, ibv_post_recv, ibv_poll_cq,
 * ibv_req_notify_cq) is static inline in <infiniband/verbs.h> and calls
 * through ctx->ops, so it is faked by a struct ibv_context whose ops point
 * here, with every qp and cq made by the fakes carrying .context = &fake.
 *
 * The fake device is a small model of one RC queue pair's behaviour:
 *   - posted sends wait in the qp until the test completes them
 *     (fake_complete); a successful unsignaled send completes silently;
 *   - an error completion moves the qp to error, which flushes every
 *     outstanding send and receive (IBV_WC_WR_FLUSH_ERR), and so does
 *     ibv_modify_qp(IBV_QPS_ERR); posts on a qp in error flush at once;
 *   - rdma_cm events go through a queue behind an eventfd (the channel's
 *     fd, so poll() on it works): resolve_addr/resolve_route/connect/
 *     accept/disconnect queue the event a real rdma_cm would, as scripted
 *     by the test, and rdma_destroy_id drops the events of the id as the
 *     kernel does.
 * Every test's teardown checks that each kind of object was destroyed as
 * often as it was created and that no file descriptor leaked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_check.h"
#include "verbs/verbs.h"

#define FAKE_WQ 512  /* outstanding sends or receives per fake qp */
#define FAKE_CQ 4096 /* entries of the fake completion queue */
#define FAKE_PDATA 64
#define FAKE_MAX_UNACKED 16
#define FAKE_REQS 512 /* connect requests a test tells apart */
#define TEST_TOKEN 0x70c3a11dull
#define TEST_URL "verbs://127.0.0.1:7471"

/* Kinds of fake objects whose creates and destroys must balance. */
enum fake_res {
	FR_DEVLIST,
	FR_PD,
	FR_COMP_CH,
	FR_CQ,
	FR_CM_CH,
	FR_CM_ID,
	FR_QP,
	FR_MR,
	FR_MW,
	FR_CM_EVENT, /* delivered by rdma_get_cm_event vs acked */
	FR_NUM,
};

static const char *const fake_res_name[FR_NUM] = {
	"device list",
	"pd",
	"completion channel",
	"cq",
	"cm event channel",
	"cm id",
	"qp",
	"mr",
	"mw",
	"cm event (get vs ack)",
};

struct fake_send {
	uint64_t wr_id;
	bool signaled;
};

struct fake_qp {
	struct ibv_qp qp; /* first: the transport sees this */
	struct fake_send sq[FAKE_WQ];
	unsigned sq_head, sq_tail;
	uint64_t rq[FAKE_WQ];
	unsigned rq_head, rq_tail;
	int access; /* qp_access_flags set at INIT */
};

struct fake_ev {
	struct rdma_cm_event ev;
	uint8_t pdata[FAKE_PDATA];
	struct fake_ev *next;
};

struct fake_ch {
	struct rdma_event_channel ch; /* first */
	struct fake_ev *head, **tail;
};

static struct {
	struct ibv_device dev;
	struct ibv_context ctx;

	/* Device list and attributes. */
	int n_devices;	/* rdma_get_devices count */
	int list_errno; /* != 0: rdma_get_devices returns NULL */
	enum ibv_atomic_cap atomic_cap;
	enum ibv_port_state port_state;
	bool mw_ok; /* type 2B memory windows */
	/* How a window bind completes: the fake completes it at once. */
	enum ibv_wc_status bind_status;

	/* Failure injection: errno to fail with, 0 = succeed. */
	int err_alloc_pd, err_comp_ch, err_create_cq, err_cm_ch, err_reg_mr;
	int err_post_send; /* returned once by post_send */

	int made[FR_NUM], freed[FR_NUM];

	/* Completion queue. */
	struct ibv_wc cq[FAKE_CQ];
	unsigned cq_head, cq_tail;

	/* rdma_cm. */
	struct fake_ch *ch; /* the one event channel */
	struct rdma_cm_id *listen_id;
	struct rdma_cm_event *unacked[FAKE_MAX_UNACKED];
	/* What rdma_connect / rdma_accept answer with. */
	enum rdma_cm_event_type connect_event;
	int connect_status;
	uint8_t connect_pdata[FAKE_PDATA];
	uint8_t connect_pdata_len;
	enum rdma_cm_event_type accept_event;
	bool accept_silent; /* the connector never establishes */
	enum rdma_cm_event_type resolve_event; /* rdma_resolve_addr's */
	int resolve_status;

	/* Records. */
	struct fake_qp *last_qp;
	uint32_t next_qp_num;
	int n_post_send;
	struct ibv_send_wr last_wr;
	struct ibv_sge last_sge;
	int last_mr_access;
	int n_bind;
	struct ibv_send_wr last_bind;
	uint32_t last_bind_qp;
	uint8_t sent_pdata[FAKE_PDATA]; /* our hello, from rdma_connect */
	uint8_t sent_pdata_len;
	int n_reject;
	uint8_t reject_pdata[8][FAKE_PDATA]; /* the first 8 */
	uint8_t reject_pdata_len[8];
	int n_reject_why[8]; /* by reason (hello arg), every reject */
	/* Ids of push_request() by number while alive, and the numbers of
	 * those refused as busy, in order. */
	struct rdma_cm_id *req_id[FAKE_REQS];
	int n_reqs;
	int busy_req[FAKE_REQS];
	int n_busy;
	int n_accept;
	int n_disconnect;
	int n_modify_err; /* ibv_modify_qp to IBV_QPS_ERR */
	int fds_before;
} fake;

/* Helpers -------------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static void cq_push(uint64_t wr_id, enum ibv_wc_status st, uint32_t qp_num)
{
	struct ibv_wc *wc;

	assert_true(fake.cq_head - fake.cq_tail < FAKE_CQ);
	wc = &fake.cq[fake.cq_head++ % FAKE_CQ];
	memset(wc, 0, sizeof(*wc));
	wc->wr_id = wr_id;
	wc->status = st;
	/* Only wr_id, status and qp_num are valid in a flushed completion;
	 * a transport reading the opcode of one would be caught. */
	wc->opcode = st == IBV_WC_WR_FLUSH_ERR ? (enum ibv_wc_opcode)0xee
					       : IBV_WC_RDMA_WRITE;
	wc->qp_num = qp_num;
}

/* Flush everything outstanding on q; the qp is in error. */
static void qp_flush(struct fake_qp *q)
{
	while (q->sq_tail != q->sq_head)
		cq_push(q->sq[q->sq_tail++ % FAKE_WQ].wr_id,
			IBV_WC_WR_FLUSH_ERR, q->qp.qp_num);
	while (q->rq_tail != q->rq_head)
		cq_push(q->rq[q->rq_tail++ % FAKE_WQ], IBV_WC_WR_FLUSH_ERR,
			q->qp.qp_num);
}

static void qp_to_error(struct fake_qp *q)
{
	q->qp.state = IBV_QPS_ERR;
	qp_flush(q);
}

/* Complete the oldest outstanding send of the last qp with status st. */
static void fake_complete(enum ibv_wc_status st)
{
	struct fake_qp *q = fake.last_qp;
	struct fake_send *s;

	assert_non_null(q);
	assert_true(q->sq_tail != q->sq_head);
	s = &q->sq[q->sq_tail++ % FAKE_WQ];
	if (st != IBV_WC_SUCCESS || s->signaled)
		cq_push(s->wr_id, st, q->qp.qp_num);
	if (st != IBV_WC_SUCCESS)
		qp_to_error(q);
}

static void ch_wake(struct fake_ch *c)
{
	uint64_t one = 1;

	assert_int_equal(write(c->ch.fd, &one, sizeof(one)), sizeof(one));
}

static void ch_settle(struct fake_ch *c)
{
	uint64_t v;

	if (!c->head && read(c->ch.fd, &v, sizeof(v)) < 0)
		assert_true(errno == EAGAIN);
}

static void ev_push(struct rdma_cm_id *id, struct rdma_cm_id *listen_id,
		    enum rdma_cm_event_type type, int status, const void *pdata,
		    uint8_t pdata_len)
{
	struct fake_ch *c = fake.ch;
	struct fake_ev *e;

	assert_non_null(c);
	assert_true(pdata_len <= FAKE_PDATA);
	e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->ev.id = id;
	e->ev.listen_id = listen_id;
	e->ev.event = type;
	e->ev.status = status;
	e->ev.param.conn.responder_resources = 16;
	e->ev.param.conn.initiator_depth = 16;
	if (pdata_len) {
		memcpy(e->pdata, pdata, pdata_len);
		e->ev.param.conn.private_data = e->pdata;
		e->ev.param.conn.private_data_len = pdata_len;
	}
	*c->tail = e;
	c->tail = &e->next;
	ch_wake(c);
}

static void ch_drop_all(struct fake_ch *c)
{
	struct fake_ev *e;

	while ((e = c->head)) {
		c->head = e->next;
		free(e);
	}
	c->tail = &c->head;
}

static struct rdma_cm_id *id_new(void *context)
{
	struct rdma_cm_id *id = calloc(1, sizeof(*id));

	assert_non_null(id);
	id->channel = &fake.ch->ch;
	id->context = context;
	id->ps = RDMA_PS_TCP;
	id->qp_type = IBV_QPT_RC;
	fake.made[FR_CM_ID]++;
	return id;
}

/* A handshake blob as the transport's peer would send it. */
static uint8_t hello_make(uint8_t *buf, uint8_t kind, uint8_t version,
			  uint8_t arg, uint64_t token, const void *priv,
			  uint8_t priv_len)
{
	struct verbs_hello h = {
		.magic_be = rdps_htobe32(VERBS_MAGIC),
		.version = version,
		.kind = kind,
		.arg = arg,
		.priv_len = priv_len,
		.token_be = rdps_htobe64(token),
	};

	memcpy(buf, &h, sizeof(h));
	if (priv_len)
		memcpy(buf + sizeof(h), priv, priv_len);
	return (uint8_t)(sizeof(h) + priv_len);
}

/* Script rdma_connect's answer. */
static void script_connect(enum rdma_cm_event_type ev, int status,
			   const uint8_t *pdata, uint8_t len)
{
	fake.connect_event = ev;
	fake.connect_status = status;
	if (len)
		memcpy(fake.connect_pdata, pdata, len);
	fake.connect_pdata_len = len;
}

static void script_reply(uint8_t arg, uint64_t token)
{
	uint8_t buf[FAKE_PDATA];
	uint8_t n = hello_make(buf, VERBS_MSG_REPLY, RDPS_TP_PROTO_VERSION, arg,
			       token, "srv", 3);

	script_connect(RDMA_CM_EVENT_CONNECT_RESPONSE, 0, buf, n);
}

static void script_reject(uint8_t reason)
{
	uint8_t buf[FAKE_PDATA];
	uint8_t n = hello_make(buf, VERBS_MSG_REJECT, RDPS_TP_PROTO_VERSION + 1,
			       reason, 0, NULL, 0);

	script_connect(RDMA_CM_EVENT_REJECTED, 28, buf, n);
}

/* Data-path fakes (through ctx->ops) ----------------------------------- */

static int fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
			  struct ibv_send_wr **bad)
{
	struct fake_qp *q = (struct fake_qp *)qp;
	int err;

	fake.n_post_send++;
	if (fake.err_post_send) {
		err = fake.err_post_send;
		fake.err_post_send = 0;
		*bad = wr;
		return err;
	}
	for (; wr; wr = wr->next) {
		if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_ERR) {
			*bad = wr;
			return EINVAL;
		}
		fake.last_wr = *wr;
		if (wr->num_sge)
			fake.last_sge = wr->sg_list[0];
		if (qp->state == IBV_QPS_ERR) {
			cq_push(wr->wr_id, IBV_WC_WR_FLUSH_ERR, qp->qp_num);
			continue;
		}
		if (wr->opcode == IBV_WR_BIND_MW) {
			/* A bind is local work: done at once. */
			fake.n_bind++;
			fake.last_bind = *wr;
			fake.last_bind_qp = qp->qp_num;
			cq_push(wr->wr_id, fake.bind_status, qp->qp_num);
			if (fake.bind_status != IBV_WC_SUCCESS)
				qp_to_error(q);
			continue;
		}
		if (q->sq_head - q->sq_tail >= FAKE_WQ) {
			*bad = wr;
			return ENOMEM;
		}
		q->sq[q->sq_head % FAKE_WQ] = (struct fake_send){
			.wr_id = wr->wr_id,
			.signaled = wr->send_flags & IBV_SEND_SIGNALED,
		};
		q->sq_head++;
	}
	return 0;
}

static struct ibv_mw *fake_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type type)
{
	struct ibv_mw *mw;

	assert_int_equal(type, IBV_MW_TYPE_2);
	mw = calloc(1, sizeof(*mw));
	assert_non_null(mw);
	mw->context = pd->context;
	mw->pd = pd;
	mw->type = type;
	mw->rkey = 0x3000u + (uint32_t)fake.made[FR_MW] * 0x100u;
	fake.made[FR_MW]++;
	return mw;
}

static int fake_dealloc_mw(struct ibv_mw *mw)
{
	assert_non_null(mw);
	free(mw);
	fake.freed[FR_MW]++;
	return 0;
}

static int fake_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
			  struct ibv_recv_wr **bad)
{
	struct fake_qp *q = (struct fake_qp *)qp;

	for (; wr; wr = wr->next) {
		if (qp->state == IBV_QPS_RESET ||
		    q->rq_head - q->rq_tail >= FAKE_WQ) {
			*bad = wr;
			return EINVAL;
		}
		if (qp->state == IBV_QPS_ERR) {
			cq_push(wr->wr_id, IBV_WC_WR_FLUSH_ERR, qp->qp_num);
			continue;
		}
		q->rq[q->rq_head++ % FAKE_WQ] = wr->wr_id;
	}
	return 0;
}

static int fake_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	int got = 0;

	assert_ptr_equal(cq->context, &fake.ctx);
	while (got < n && fake.cq_tail != fake.cq_head)
		wc[got++] = fake.cq[fake.cq_tail++ % FAKE_CQ];
	return got;
}

static int fake_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
	(void)cq;
	(void)solicited_only;
	return 0;
}

/* Control-path fakes (-Wl,--wrap) ---------------------------------------
 * Prototypes first: -Wmissing-prototypes. */
struct ibv_context **__wrap_rdma_get_devices(int *num);
void __wrap_rdma_free_devices(struct ibv_context **list);
const char *__wrap_ibv_get_device_name(struct ibv_device *dev);
int __wrap_ibv_query_device(struct ibv_context *ctx,
			    struct ibv_device_attr *attr);
int __wrap_ibv_query_port(struct ibv_context *ctx, uint8_t port,
			  struct _compat_ibv_port_attr *attr);
int __wrap_ibv_query_gid(struct ibv_context *ctx, uint8_t port, int index,
			 union ibv_gid *gid);
struct ibv_pd *__wrap_ibv_alloc_pd(struct ibv_context *ctx);
int __wrap_ibv_dealloc_pd(struct ibv_pd *pd);
struct ibv_comp_channel *__wrap_ibv_create_comp_channel(struct ibv_context *c);
int __wrap_ibv_destroy_comp_channel(struct ibv_comp_channel *ch);
struct ibv_cq *__wrap_ibv_create_cq(struct ibv_context *ctx, int cqe,
				    void *cq_context,
				    struct ibv_comp_channel *ch, int vec);
int __wrap_ibv_destroy_cq(struct ibv_cq *cq);
int __wrap_ibv_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq,
			    void **cq_context);
void __wrap_ibv_ack_cq_events(struct ibv_cq *cq, unsigned int n);
struct ibv_qp *__wrap_ibv_create_qp(struct ibv_pd *pd,
				    struct ibv_qp_init_attr *attr);
int __wrap_ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);
int __wrap_ibv_destroy_qp(struct ibv_qp *qp);
struct ibv_mr *__wrap_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t len,
				 int access);
struct ibv_mr *__wrap_ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr,
				       size_t len, uint64_t iova,
				       unsigned int access);
int __wrap_ibv_dereg_mr(struct ibv_mr *mr);
struct rdma_event_channel *__wrap_rdma_create_event_channel(void);
void __wrap_rdma_destroy_event_channel(struct rdma_event_channel *ch);
int __wrap_rdma_create_id(struct rdma_event_channel *ch, struct rdma_cm_id **id,
			  void *context, enum rdma_port_space ps);
int __wrap_rdma_destroy_id(struct rdma_cm_id *id);
int __wrap_rdma_get_cm_event(struct rdma_event_channel *ch,
			     struct rdma_cm_event **ev);
int __wrap_rdma_ack_cm_event(struct rdma_cm_event *ev);
int __wrap_rdma_bind_addr(struct rdma_cm_id *id, struct sockaddr *addr);
int __wrap_rdma_listen(struct rdma_cm_id *id, int backlog);
__be16 __wrap_rdma_get_src_port(struct rdma_cm_id *id);
int __wrap_rdma_resolve_addr(struct rdma_cm_id *id, struct sockaddr *src,
			     struct sockaddr *dst, int timeout_ms);
int __wrap_rdma_resolve_route(struct rdma_cm_id *id, int timeout_ms);
int __wrap_rdma_init_qp_attr(struct rdma_cm_id *id, struct ibv_qp_attr *attr,
			     int *mask);
int __wrap_rdma_connect(struct rdma_cm_id *id, struct rdma_conn_param *p);
int __wrap_rdma_establish(struct rdma_cm_id *id);
int __wrap_rdma_accept(struct rdma_cm_id *id, struct rdma_conn_param *p);
int __wrap_rdma_reject(struct rdma_cm_id *id, const void *pdata, uint8_t len);
int __wrap_rdma_disconnect(struct rdma_cm_id *id);

struct ibv_context **__wrap_rdma_get_devices(int *num)
{
	struct ibv_context **list;

	if (fake.list_errno) {
		if (num)
			*num = 0;
		errno = fake.list_errno;
		return NULL;
	}
	list = calloc((size_t)fake.n_devices + 1, sizeof(*list));
	assert_non_null(list);
	for (int i = 0; i < fake.n_devices; i++)
		list[i] = &fake.ctx;
	if (num)
		*num = fake.n_devices;
	fake.made[FR_DEVLIST]++;
	return list;
}

void __wrap_rdma_free_devices(struct ibv_context **list)
{
	if (list)
		fake.freed[FR_DEVLIST]++;
	free(list);
}

const char *__wrap_ibv_get_device_name(struct ibv_device *dev)
{
	assert_ptr_equal(dev, &fake.dev);
	return "fake0";
}

int __wrap_ibv_query_device(struct ibv_context *ctx,
			    struct ibv_device_attr *attr)
{
	assert_ptr_equal(ctx, &fake.ctx);
	memset(attr, 0, sizeof(*attr));
	attr->phys_port_cnt = 1;
	attr->max_qp_wr = 16384;
	attr->max_cqe = 65536;
	attr->max_qp_rd_atom = 16;
	attr->max_qp_init_rd_atom = 16;
	attr->atomic_cap = fake.atomic_cap;
	if (fake.mw_ok) {
		attr->max_mw = 1024;
		attr->device_cap_flags |= IBV_DEVICE_MEM_WINDOW_TYPE_2B;
	}
	return 0;
}

int __wrap_ibv_query_port(struct ibv_context *ctx, uint8_t port,
			  struct _compat_ibv_port_attr *cattr)
{
	/* The inline ___ibv_query_port zeroed a whole ibv_port_attr. */
	struct ibv_port_attr *attr = (struct ibv_port_attr *)cattr;

	assert_ptr_equal(ctx, &fake.ctx);
	if (port != 1)
		return EINVAL;
	attr->state = fake.port_state;
	attr->active_mtu = IBV_MTU_1024;
	attr->max_mtu = IBV_MTU_4096;
	return 0;
}

int __wrap_ibv_query_gid(struct ibv_context *ctx, uint8_t port, int index,
			 union ibv_gid *gid)
{
	(void)ctx;
	(void)port;
	memset(gid, 0, sizeof(*gid));
	if (index == 1)
		gid->raw[15] = 1;
	return 0;
}

struct ibv_pd *__wrap_ibv_alloc_pd(struct ibv_context *ctx)
{
	struct ibv_pd *pd;

	if (fake.err_alloc_pd) {
		errno = fake.err_alloc_pd;
		return NULL;
	}
	pd = calloc(1, sizeof(*pd));
	assert_non_null(pd);
	pd->context = ctx;
	fake.made[FR_PD]++;
	return pd;
}

int __wrap_ibv_dealloc_pd(struct ibv_pd *pd)
{
	assert_non_null(pd);
	fake.freed[FR_PD]++;
	free(pd);
	return 0;
}

struct ibv_comp_channel *__wrap_ibv_create_comp_channel(struct ibv_context *c)
{
	struct ibv_comp_channel *ch;

	if (fake.err_comp_ch) {
		errno = fake.err_comp_ch;
		return NULL;
	}
	ch = calloc(1, sizeof(*ch));
	assert_non_null(ch);
	ch->context = c;
	ch->fd = eventfd(0, EFD_CLOEXEC);
	assert_true(ch->fd >= 0);
	fake.made[FR_COMP_CH]++;
	return ch;
}

int __wrap_ibv_destroy_comp_channel(struct ibv_comp_channel *ch)
{
	assert_non_null(ch);
	close(ch->fd);
	free(ch);
	fake.freed[FR_COMP_CH]++;
	return 0;
}

struct ibv_cq *__wrap_ibv_create_cq(struct ibv_context *ctx, int cqe,
				    void *cq_context,
				    struct ibv_comp_channel *ch, int vec)
{
	struct ibv_cq *cq;

	(void)vec;
	if (fake.err_create_cq) {
		errno = fake.err_create_cq;
		return NULL;
	}
	assert_true(cqe > 0 && cqe <= FAKE_CQ);
	cq = calloc(1, sizeof(*cq));
	assert_non_null(cq);
	cq->context = ctx;
	cq->channel = ch;
	cq->cq_context = cq_context;
	cq->cqe = cqe;
	fake.made[FR_CQ]++;
	return cq;
}

int __wrap_ibv_destroy_cq(struct ibv_cq *cq)
{
	assert_non_null(cq);
	free(cq);
	fake.freed[FR_CQ]++;
	return 0;
}

int __wrap_ibv_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq,
			    void **cq_context)
{
	(void)ch;
	(void)cq;
	(void)cq_context;
	errno = EAGAIN;
	return -1;
}

void __wrap_ibv_ack_cq_events(struct ibv_cq *cq, unsigned int n)
{
	(void)cq;
	(void)n;
}

struct ibv_qp *__wrap_ibv_create_qp(struct ibv_pd *pd,
				    struct ibv_qp_init_attr *attr)
{
	struct fake_qp *q;

	assert_int_equal(attr->qp_type, IBV_QPT_RC);
	assert_true(attr->cap.max_send_wr < FAKE_WQ);
	q = calloc(1, sizeof(*q));
	assert_non_null(q);
	q->qp.context = &fake.ctx;
	q->qp.pd = pd;
	q->qp.send_cq = attr->send_cq;
	q->qp.recv_cq = attr->recv_cq;
	q->qp.qp_num = ++fake.next_qp_num;
	q->qp.state = IBV_QPS_RESET;
	q->qp.qp_type = IBV_QPT_RC;
	fake.last_qp = q;
	fake.made[FR_QP]++;
	return &q->qp;
}

int __wrap_ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask)
{
	struct fake_qp *q = (struct fake_qp *)qp;
	static const enum ibv_qp_state next[] = {
		[IBV_QPS_RESET] = IBV_QPS_INIT,
		[IBV_QPS_INIT] = IBV_QPS_RTR,
		[IBV_QPS_RTR] = IBV_QPS_RTS,
	};

	if (!(mask & IBV_QP_STATE))
		return EINVAL;
	if (attr->qp_state == IBV_QPS_ERR) {
		fake.n_modify_err++;
		qp_to_error(q);
		return 0;
	}
	if (qp->state > IBV_QPS_RTR || next[qp->state] != attr->qp_state)
		return EINVAL;
	if (attr->qp_state == IBV_QPS_INIT && (mask & IBV_QP_ACCESS_FLAGS))
		q->access = (int)attr->qp_access_flags;
	qp->state = attr->qp_state;
	return 0;
}

int __wrap_ibv_destroy_qp(struct ibv_qp *qp)
{
	assert_non_null(qp);
	if (fake.last_qp == (struct fake_qp *)qp)
		fake.last_qp = NULL;
	free(qp);
	fake.freed[FR_QP]++;
	return 0;
}

static struct ibv_mr *fake_reg_mr(struct ibv_pd *pd, void *addr, size_t len,
				  int access)
{
	struct ibv_mr *mr;

	fake.last_mr_access = access;
	if (fake.err_reg_mr) {
		errno = fake.err_reg_mr;
		return NULL;
	}
	mr = calloc(1, sizeof(*mr));
	assert_non_null(mr);
	mr->context = &fake.ctx;
	mr->pd = pd;
	mr->addr = addr;
	mr->length = len;
	mr->lkey = 0x1000u + (uint32_t)fake.made[FR_MR];
	mr->rkey = 0x2000u + (uint32_t)fake.made[FR_MR];
	fake.made[FR_MR]++;
	return mr;
}

struct ibv_mr *__wrap_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t len,
				 int access)
{
	return fake_reg_mr(pd, addr, len, access);
}

struct ibv_mr *__wrap_ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr,
				       size_t len, uint64_t iova,
				       unsigned int access)
{
	assert_int_equal(iova, (uintptr_t)addr);
	return fake_reg_mr(pd, addr, len, (int)access);
}

int __wrap_ibv_dereg_mr(struct ibv_mr *mr)
{
	assert_non_null(mr);
	free(mr);
	fake.freed[FR_MR]++;
	return 0;
}

struct rdma_event_channel *__wrap_rdma_create_event_channel(void)
{
	struct fake_ch *c;

	if (fake.err_cm_ch) {
		errno = fake.err_cm_ch;
		return NULL;
	}
	assert_null(fake.ch);
	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->ch.fd = eventfd(0, EFD_CLOEXEC);
	assert_true(c->ch.fd >= 0);
	c->tail = &c->head;
	fake.ch = c;
	fake.made[FR_CM_CH]++;
	return &c->ch;
}

void __wrap_rdma_destroy_event_channel(struct rdma_event_channel *ch)
{
	struct fake_ch *c = (struct fake_ch *)ch;

	assert_ptr_equal(c, fake.ch);
	ch_drop_all(c);
	close(c->ch.fd);
	free(c);
	fake.ch = NULL;
	fake.freed[FR_CM_CH]++;
}

int __wrap_rdma_create_id(struct rdma_event_channel *ch, struct rdma_cm_id **id,
			  void *context, enum rdma_port_space ps)
{
	assert_ptr_equal(ch, &fake.ch->ch);
	assert_int_equal(ps, RDMA_PS_TCP);
	*id = id_new(context);
	return 0;
}

int __wrap_rdma_destroy_id(struct rdma_cm_id *id)
{
	struct fake_ev **pp, *e;

	assert_non_null(id);
	for (int k = 0; k < fake.n_reqs; k++)
		if (fake.req_id[k] == id)
			fake.req_id[k] = NULL;
	/* librdmacm waits here for every event of the id to be acked: an
	 * unacked one would hang a real process. */
	for (int i = 0; i < FAKE_MAX_UNACKED; i++)
		CHECK(!fake.unacked[i] || fake.unacked[i]->id != id,
		      "rdma_destroy_id with an unacked event (%s): deadlock",
		      rdma_event_str(fake.unacked[i]->event));
	/* The kernel drops the events still queued for it. */
	for (pp = &fake.ch->head; (e = *pp);) {
		if (e->ev.id == id) {
			*pp = e->next;
			free(e);
		} else {
			pp = &e->next;
		}
	}
	fake.ch->tail = &fake.ch->head;
	while (*fake.ch->tail)
		fake.ch->tail = &(*fake.ch->tail)->next;
	ch_settle(fake.ch);
	if (id == fake.listen_id)
		fake.listen_id = NULL;
	free(id);
	fake.freed[FR_CM_ID]++;
	return 0;
}

int __wrap_rdma_get_cm_event(struct rdma_event_channel *ch,
			     struct rdma_cm_event **ev)
{
	struct fake_ch *c = (struct fake_ch *)ch;
	struct fake_ev *e = c->head;
	int i;

	if (!e) {
		errno = EAGAIN;
		return -1;
	}
	for (i = 0; i < FAKE_MAX_UNACKED && fake.unacked[i]; i++)
		;
	assert_true(i < FAKE_MAX_UNACKED);
	c->head = e->next;
	if (!c->head)
		c->tail = &c->head;
	ch_settle(c);
	fake.unacked[i] = &e->ev;
	fake.made[FR_CM_EVENT]++;
	*ev = &e->ev;
	return 0;
}

int __wrap_rdma_ack_cm_event(struct rdma_cm_event *ev)
{
	for (int i = 0; i < FAKE_MAX_UNACKED; i++) {
		if (fake.unacked[i] == ev) {
			fake.unacked[i] = NULL;
			fake.freed[FR_CM_EVENT]++;
			free(container_of(ev, struct fake_ev, ev));
			return 0;
		}
	}
	fail_msg("rdma_ack_cm_event of an event not delivered");
	return -1;
}

int __wrap_rdma_bind_addr(struct rdma_cm_id *id, struct sockaddr *addr)
{
	(void)addr;
	id->verbs = &fake.ctx;
	id->port_num = 1;
	return 0;
}

int __wrap_rdma_listen(struct rdma_cm_id *id, int backlog)
{
	(void)backlog;
	fake.listen_id = id;
	return 0;
}

__be16 __wrap_rdma_get_src_port(struct rdma_cm_id *id)
{
	(void)id;
	return htons(7471);
}

int __wrap_rdma_resolve_addr(struct rdma_cm_id *id, struct sockaddr *src,
			     struct sockaddr *dst, int timeout_ms)
{
	(void)src;
	(void)dst;
	assert_true(timeout_ms > 0);
	id->verbs = &fake.ctx;
	id->port_num = 1;
	ev_push(id, NULL, fake.resolve_event, fake.resolve_status, NULL, 0);
	return 0;
}

int __wrap_rdma_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
	assert_true(timeout_ms > 0);
	ev_push(id, NULL, RDMA_CM_EVENT_ROUTE_RESOLVED, 0, NULL, 0);
	return 0;
}

int __wrap_rdma_init_qp_attr(struct rdma_cm_id *id, struct ibv_qp_attr *attr,
			     int *mask)
{
	(void)id;
	switch (attr->qp_state) {
	case IBV_QPS_INIT:
		*mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
		attr->port_num = 1;
		break;
	case IBV_QPS_RTR:
		*mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
		attr->path_mtu = IBV_MTU_4096;
		break;
	case IBV_QPS_RTS:
		*mask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int __wrap_rdma_connect(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
	assert_true(p->private_data_len <= FAKE_PDATA);
	memcpy(fake.sent_pdata, p->private_data, p->private_data_len);
	fake.sent_pdata_len = p->private_data_len;
	ev_push(id, NULL, fake.connect_event, fake.connect_status,
		fake.connect_pdata, fake.connect_pdata_len);
	return 0;
}

int __wrap_rdma_establish(struct rdma_cm_id *id)
{
	(void)id;
	return 0;
}

int __wrap_rdma_accept(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
	(void)p;
	fake.n_accept++;
	if (!fake.accept_silent)
		ev_push(id, NULL, fake.accept_event, 0, NULL, 0);
	return 0;
}

int __wrap_rdma_reject(struct rdma_cm_id *id, const void *pdata, uint8_t len)
{
	int i = fake.n_reject++;
	struct verbs_hello h;

	assert_true(len <= FAKE_PDATA);
	if (i < 8) {
		if (len)
			memcpy(fake.reject_pdata[i], pdata, len);
		fake.reject_pdata_len[i] = len;
	}
	if (len < sizeof(h))
		return 0;
	memcpy(&h, pdata, sizeof(h));
	if (h.arg < 8)
		fake.n_reject_why[h.arg]++;
	for (int k = 0; h.arg == VERBS_REJ_BUSY && k < fake.n_reqs; k++)
		if (fake.req_id[k] == id)
			fake.busy_req[fake.n_busy++] = k;
	return 0;
}

int __wrap_rdma_disconnect(struct rdma_cm_id *id)
{
	fake.n_disconnect++;
	/* The local side sees DISCONNECTED too, after the peer answers. */
	ev_push(id, NULL, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, 0);
	return 0;
}

/* Fixtures ------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	memset(&fake, 0, sizeof(fake));
	snprintf(fake.dev.name, sizeof(fake.dev.name), "fake0");
	fake.ctx.device = &fake.dev;
	fake.ctx.ops.post_send = fake_post_send;
	fake.ctx.ops.post_recv = fake_post_recv;
	fake.ctx.ops.poll_cq = fake_poll_cq;
	fake.ctx.ops.req_notify_cq = fake_req_notify_cq;
	fake.ctx.ops.alloc_mw = fake_alloc_mw;
	fake.ctx.ops.dealloc_mw = fake_dealloc_mw;
	fake.n_devices = 1;
	fake.atomic_cap = IBV_ATOMIC_HCA;
	fake.port_state = IBV_PORT_ACTIVE;
	fake.accept_event = RDMA_CM_EVENT_ESTABLISHED;
	fake.resolve_event = RDMA_CM_EVENT_ADDR_RESOLVED;
	script_reply(VERBS_HELLO_ATOMIC, TEST_TOKEN);
	fake.fds_before = count_fds();
	rdps_clear_error();
	return 0;
}

static int teardown(void **state)
{
	int fds = count_fds();

	(void)state;
	for (int k = 0; k < FR_NUM; k++)
		CHECK(fake.made[k] == fake.freed[k],
		      "%s: %d created, %d destroyed", fake_res_name[k],
		      fake.made[k], fake.freed[k]);
	CHECK(fds == fake.fds_before, "%d fds open before, %d after",
	      fake.fds_before, fds);
	return 0;
}

static void cfg_test(struct rdps_tp_cfg *cfg)
{
	rdps_tp_cfg_default(cfg);
	cfg->sq_depth = 8;
	cfg->cq_depth = 256;
	cfg->token = TEST_TOKEN;
}

static struct rdps_tp *open_tp(void)
{
	struct rdps_tp_cfg cfg;
	struct rdps_tp *tp = NULL;
	int ret;

	cfg_test(&cfg);
	ret = rdps_tp_open("verbs", &cfg, &tp);
	CHECK(ret == 0, "rdps_tp_open: %d (%s)", ret, rdps_errmsg());
	return tp;
}

static void close_tp(struct rdps_tp *tp)
{
	int ret = rdps_tp_close(tp);

	CHECK(ret == 0, "rdps_tp_close: %d (something left open)", ret);
}

static struct rdps_tp_ep *connect_ep(struct rdps_tp *tp)
{
	struct rdps_tp_ep *ep = NULL;
	int ret;

	ret = rdps_tp_connect(tp, TEST_URL, "cli", 3, &ep, 2000);
	CHECK(ret == 0, "connect: %d (%s)", ret, rdps_errmsg());
	return ep;
}

static bool msg_has(const char *what)
{
	return strstr(rdps_errmsg(), what) != NULL;
}

#define CHECK_MSG(what)                                                  \
	CHECK(msg_has(what), "error message '%s' does not mention '%s'", \
	      rdps_errmsg(), what)

/* Poll until want completions came or two seconds passed. */
static int poll_n(struct rdps_tp *tp, struct rdps_tp_comp *c, int want)
{
	uint64_t end = rdps_now_ns() + 2000000000ull;
	int n = 0, got;

	while (n < want && rdps_now_ns() < end) {
		got = rdps_tp_poll(tp, c + n, want - n);
		CHECK(got >= 0, "poll: %d", got);
		n += got;
	}
	return n;
}

/* The one DISCONNECT completion of a broken endpoint, then nothing. */
static void expect_disconnect(struct rdps_tp *tp, struct rdps_tp_ep *ep)
{
	struct rdps_tp_comp c[8];
	int n = poll_n(tp, c, 1);

	CHECK(n == 1 && c[0].opcode == RDPS_TP_OP_DISCONNECT && c[0].ep == ep &&
		      c[0].wr_id == 0 && c[0].status == RDPS_TP_WC_CONN_ERR,
	      "want one DISCONNECT completion of the broken endpoint, got %d "
	      "(opcode %d, status %s)",
	      n, n ? c[0].opcode : -1,
	      n ? rdps_tp_status_str(c[0].status) : "-");
	assert_int_equal(rdps_tp_poll(tp, c, 8), 0);
}

/* A registered buffer and a remote key to aim at. */
struct bufs {
	uint64_t buf[8];
	struct rdps_tp_mr *mr;
	struct rdps_tp_rkey rkey;
};

static void bufs_reg(struct rdps_tp *tp, struct bufs *b, unsigned access)
{
	int ret = rdps_tp_mem_reg(tp, b->buf, sizeof(b->buf), access, &b->mr);

	CHECK(ret == 0, "mem_reg: %d (%s)", ret, rdps_errmsg());
	b->rkey = (struct rdps_tp_rkey){
		.addr = 0x10000, .len = 4096, .key = 0x77};
}

/* 1. No device --------------------------------------------------------- */

static void test_no_device_empty_list(void **state)
{
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	fake.n_devices = 0;
	ret = rdps_tp_open("verbs", NULL, &tp);
	assert_int_equal(ret, -ENODEV);
	assert_null(tp);
	CHECK_MSG("no RDMA device");
	CHECK_MSG("rdma link add");
	CHECK_MSG("rxe");
}

/*
 * What this very machine does without RDMA: librdmacm finds no
 * /dev/infiniband/rdma_cm and rdma_get_devices() returns NULL with errno
 * ENODEV, not an empty list.
 */
static void test_no_device_no_rdma_cm(void **state)
{
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	fake.list_errno = ENODEV;
	ret = rdps_tp_open("verbs", NULL, &tp);
	assert_int_equal(ret, -ENODEV);
	assert_null(tp);
	CHECK_MSG("no RDMA device");
	CHECK_MSG("rdma link add");
	CHECK_MSG("rxe");
}

static void test_device_not_found_or_down(void **state)
{
	struct rdps_tp_cfg cfg;
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	cfg_test(&cfg);
	cfg.dev = "mlx5_7";
	ret = rdps_tp_open("verbs", &cfg, &tp);
	assert_int_equal(ret, -ENODEV);
	CHECK_MSG("mlx5_7");
	CHECK_MSG("fake0"); /* lists what there is */

	rdps_clear_error();
	fake.port_state = IBV_PORT_DOWN;
	ret = rdps_tp_open("verbs", NULL, &tp);
	assert_int_equal(ret, -ENETDOWN);
	CHECK_MSG("no active port");
	CHECK_MSG("ibv_devinfo");
	assert_null(tp);

	/* A GID index with an empty entry (the fake has only index 1). */
	rdps_clear_error();
	fake.port_state = IBV_PORT_ACTIVE;
	cfg.dev = NULL;
	cfg.gid_index = 3;
	ret = rdps_tp_open("verbs", &cfg, &tp);
	assert_int_equal(ret, -EINVAL);
	CHECK_MSG("gid index 3");
	CHECK_MSG("ibv_devinfo -v");
	assert_null(tp);
	cfg.gid_index = 1;
	ret = rdps_tp_open("verbs", &cfg, &tp);
	assert_int_equal(ret, 0);
	close_tp(tp);
}

/* cfg.dev is matched exactly, so a prefix of a device name is no device. */
static void test_device_name_prefix(void **state)
{
	struct rdps_tp_cfg cfg;
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	cfg_test(&cfg);
	cfg.dev = "fake"; /* the device is fake0, and its port is up */
	ret = rdps_tp_open("verbs", &cfg, &tp);
	assert_null(tp);
	CHECK(ret == -ENODEV, "%d (%s), expected -ENODEV", ret, rdps_errmsg());
	CHECK_MSG("not found");
}

/* 2. Init failures unwind ---------------------------------------------- */

static void test_init_alloc_pd_fails(void **state)
{
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	fake.err_alloc_pd = ENOMEM;
	ret = rdps_tp_open("verbs", NULL, &tp);
	assert_int_equal(ret, -ENOMEM);
	assert_null(tp);
	CHECK_MSG("protection domain");
	CHECK_MSG("fake0");
	assert_int_equal(fake.made[FR_DEVLIST], 1);
	assert_int_equal(fake.made[FR_COMP_CH] + fake.made[FR_CQ], 0);
}

static void test_init_comp_channel_fails(void **state)
{
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	fake.err_comp_ch = EMFILE;
	ret = rdps_tp_open("verbs", NULL, &tp);
	assert_int_equal(ret, -EMFILE);
	assert_null(tp);
	CHECK_MSG("completion channel");
	assert_int_equal(fake.made[FR_PD], 1); /* made, then freed */
}

static void test_init_create_cq_fails(void **state)
{
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	fake.err_create_cq = ENOMEM;
	ret = rdps_tp_open("verbs", NULL, &tp);
	assert_int_equal(ret, -ENOMEM);
	assert_null(tp);
	CHECK_MSG("completion queue");
	CHECK_MSG("cq_depth");
	assert_int_equal(fake.made[FR_COMP_CH], 1);
}

static void test_init_cm_channel_fails(void **state)
{
	struct rdps_tp_cfg cfg;
	struct rdps_tp *tp = NULL;
	int ret;

	(void)state;
	fake.err_cm_ch = ENODEV;
	cfg_test(&cfg);
	ret = rdps_tp_open("verbs", &cfg, &tp);
	assert_int_equal(ret, -ENODEV);
	assert_null(tp);
	CHECK_MSG("rdma_cm");
	CHECK_MSG("rdma_ucm");
	assert_int_equal(fake.made[FR_CQ], 1); /* and the epoll fd: teardown */
}

static void test_open_close_balances(void **state)
{
	struct rdps_tp *tp;

	(void)state;
	tp = open_tp();
	assert_non_null(tp);
	assert_int_equal(fake.made[FR_CQ], 1);
	assert_int_equal(fake.made[FR_CM_CH], 1);
	close_tp(tp);
}

/* 3. Registration under a memlock limit -------------------------------- */

static void test_reg_mr_memlock(void **state)
{
	struct rdps_tp *tp;
	struct rdps_tp_mr *mr = NULL;
	struct rlimit old, low;
	static uint64_t buf[1024];
	int ret;

	(void)state;
	tp = open_tp();
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &old), 0);
	low = old;
	low.rlim_cur = 64 * 1024;
	if (old.rlim_max != RLIM_INFINITY && old.rlim_max < low.rlim_cur)
		low.rlim_cur = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &low), 0);

	fake.err_reg_mr = ENOMEM;
	ret = rdps_tp_mem_reg(tp, buf, sizeof(buf), RDPS_TP_ACCESS_REMOTE_WRITE,
			      &mr);
	assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &old), 0);
	assert_int_equal(ret, -ENOMEM);
	assert_null(mr);
	if (low.rlim_cur == 64 * 1024)
		CHECK_MSG("64 KiB");
	CHECK_MSG("locked-memory limit");
	CHECK_MSG("ulimit -l");

	/* EPERM (no CAP_IPC_LOCK, limit 0) gets the same advice. */
	rdps_clear_error();
	fake.err_reg_mr = EPERM;
	ret = rdps_tp_mem_reg(tp, buf, sizeof(buf), 0, &mr);
	assert_int_equal(ret, -EPERM);
	CHECK_MSG("ulimit -l");

	/* And the happy path passes the right access bits. */
	fake.err_reg_mr = 0;
	ret = rdps_tp_mem_reg(
		tp, buf, sizeof(buf),
		RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_ATOMIC, &mr);
	assert_int_equal(ret, 0);
	assert_int_equal(fake.last_mr_access, IBV_ACCESS_LOCAL_WRITE |
						      IBV_ACCESS_REMOTE_READ |
						      IBV_ACCESS_REMOTE_ATOMIC);
	rdps_tp_mem_dereg(mr);
	close_tp(tp);
}

/* 3b. Regions of one peer (mem_reg_ep): memory windows ----------------- */

static void test_reg_ep_no_windows(void **state)
{
	static uint64_t buf[512];
	struct rdps_tp_mr *mr = NULL;
	struct rdps_tp_ep *ep;
	struct rdps_tp *tp;
	int ret;

	(void)state;
	tp = open_tp();
	ep = connect_ep(tp);
	ret = rdps_tp_mem_reg_ep(ep, buf, sizeof(buf),
				 RDPS_TP_ACCESS_REMOTE_WRITE, &mr);
	assert_int_equal(ret, -EOPNOTSUPP);
	assert_null(mr);
	CHECK_MSG("memory windows");
	CHECK_MSG("fake0");
	assert_int_equal(fake.made[FR_MR], fake.freed[FR_MR]);
	/* Local access only: nothing to limit, no window needed. */
	ret = rdps_tp_mem_reg_ep(ep, buf, sizeof(buf), RDPS_TP_ACCESS_LOCAL,
				 &mr);
	assert_int_equal(ret, 0);
	assert_int_equal(fake.n_bind, 0);
	rdps_tp_mem_dereg(mr);
	rdps_tp_ep_close(ep);
	close_tp(tp);
}

static void test_reg_ep_window(void **state)
{
	static uint64_t buf[512];
	struct rdps_tp_rkey_wire w;
	struct rdps_tp_comp c[2];
	struct rdps_tp_mr *mr = NULL;
	struct rdps_tp_ep *ep;
	struct rdps_tp *tp;
	struct bufs b;
	int ret;

	(void)state;
	fake.mw_ok = true;
	tp = open_tp();
	bufs_reg(tp, &b, 0);
	ep = connect_ep(tp);
	ret = rdps_tp_mem_reg_ep(
		ep, buf, sizeof(buf),
		RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_WRITE, &mr);
	CHECK(ret == 0, "mem_reg_ep: %d (%s)", ret, rdps_errmsg());
	/* The region has local rights only; the window carries the remote
	 * ones, bound on this endpoint's queue pair. */
	assert_int_equal(fake.last_mr_access,
			 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
	assert_int_equal(fake.n_bind, 1);
	assert_int_equal(fake.last_bind_qp, fake.last_qp->qp.qp_num);
	assert_true(fake.last_bind.send_flags & IBV_SEND_SIGNALED);
	assert_int_equal(fake.last_bind.bind_mw.bind_info.mw_access_flags,
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
	assert_int_equal(fake.last_bind.bind_mw.bind_info.addr, (uintptr_t)buf);
	assert_int_equal(fake.last_bind.bind_mw.bind_info.length, sizeof(buf));
	assert_ptr_equal(fake.last_bind.bind_mw.bind_info.mr->addr, buf);
	/* Its key is the window's, as bound. */
	rdps_tp_rkey_pack(mr, &w);
	assert_int_equal(rdps_be32toh(w.rkey_be), fake.last_bind.bind_mw.rkey);
	assert_int_not_equal(rdps_be32toh(w.rkey_be),
			     fake.last_bind.bind_mw.bind_info.mr->rkey);
	assert_int_equal(fake.made[FR_MW] - fake.freed[FR_MW], 1);
	/* Closing the endpoint frees the window before the queue pair;
	 * the region stays registered until mem_dereg. */
	rdps_tp_ep_close(ep);
	assert_int_equal(fake.made[FR_MW], fake.freed[FR_MW]);
	assert_int_equal(fake.made[FR_MR] - fake.freed[FR_MR], 2);
	rdps_tp_mem_dereg(mr);

	/* The other order: deregistered while the endpoint lives. */
	ep = connect_ep(tp);
	ret = rdps_tp_mem_reg_ep(ep, buf, sizeof(buf),
				 RDPS_TP_ACCESS_REMOTE_WRITE, &mr);
	assert_int_equal(ret, 0);
	rdps_tp_mem_dereg(mr);
	assert_int_equal(fake.made[FR_MW], fake.freed[FR_MW]);
	/* Posts are unaffected by the binds: completions as usual. */
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 5, 0);
	assert_int_equal(ret, 0);
	fake_complete(IBV_WC_SUCCESS);
	CHECK(poll_n(tp, c, 1) == 1 && c[0].wr_id == 5 &&
		      c[0].status == RDPS_TP_WC_SUCCESS &&
		      c[0].opcode == RDPS_TP_OP_WRITE,
	      "put after two binds: wr_id %llu status %s opcode %d",
	      (unsigned long long)c[0].wr_id, rdps_tp_status_str(c[0].status),
	      c[0].opcode);

	/* A failed bind: an error naming it, nothing left behind, and the
	 * endpoint is broken like a verbs queue pair after any error. */
	fake.bind_status = IBV_WC_MW_BIND_ERR;
	mr = NULL;
	ret = rdps_tp_mem_reg_ep(ep, buf, sizeof(buf),
				 RDPS_TP_ACCESS_REMOTE_WRITE, &mr);
	assert_int_equal(ret, -EIO);
	assert_null(mr);
	CHECK_MSG("memory window");
	assert_int_equal(fake.made[FR_MW], fake.freed[FR_MW]);
	assert_int_equal(fake.made[FR_MR] - fake.freed[FR_MR], 1);
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 1, 0);
	assert_int_equal(ret, -ENOTCONN);
	ret = rdps_tp_mem_reg_ep(ep, buf, sizeof(buf),
				 RDPS_TP_ACCESS_REMOTE_WRITE, &mr);
	assert_int_equal(ret, -ENOTCONN);
	rdps_tp_ep_close(ep);
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

/* 4. A device without atomics ------------------------------------------ */

static void test_no_atomics_device(void **state)
{
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct rdps_tp_mr *mr = NULL;
	struct rdps_tp_comp c[4];
	struct verbs_hello h;
	struct bufs b;
	int ret, posts;

	(void)state;
	fake.atomic_cap = IBV_ATOMIC_NONE;
	script_reply(0, TEST_TOKEN);
	tp = open_tp();

	ret = rdps_tp_mem_reg(tp, b.buf, sizeof(b.buf),
			      RDPS_TP_ACCESS_REMOTE_ATOMIC, &mr);
	assert_int_equal(ret, -EOPNOTSUPP);
	assert_null(mr);
	CHECK_MSG("no RDMA atomics");
	assert_int_equal(fake.made[FR_MR], 0);

	bufs_reg(tp, &b, RDPS_TP_ACCESS_REMOTE_READ);
	ep = connect_ep(tp);
	assert_non_null(ep);
	/* We told the peer, and the qp grants no remote atomics. */
	memcpy(&h, fake.sent_pdata, sizeof(h));
	assert_int_equal(h.kind, VERBS_MSG_HELLO);
	assert_int_equal(h.arg & VERBS_HELLO_ATOMIC, 0);
	assert_int_equal(fake.last_qp->access & IBV_ACCESS_REMOTE_ATOMIC, 0);

	posts = fake.n_post_send;
	rdps_clear_error();
	ret = rdps_tp_atomic_fadd(ep, 1, &b.buf[0], b.mr, b.rkey.addr, &b.rkey,
				  1, 0);
	assert_int_equal(ret, -EOPNOTSUPP);
	CHECK_MSG("atomics are not supported");
	CHECK_MSG("this device");
	rdps_clear_error();
	ret = rdps_tp_atomic_cswap(ep, 0, 1, &b.buf[0], b.mr, b.rkey.addr,
				   &b.rkey, 2, 0);
	assert_int_equal(ret, -EOPNOTSUPP);
	CHECK_MSG("atomic_cap");
	assert_int_equal(fake.n_post_send, posts); /* nothing reached the qp */
	assert_int_equal(rdps_tp_poll(tp, c, 4), 0); /* and no completion */

	/* put and get still work. */
	ret = rdps_tp_put(ep, &b.buf[1], 8, b.mr, b.rkey.addr, &b.rkey, 3, 0);
	assert_int_equal(ret, 0);
	assert_int_equal(fake.last_wr.opcode, IBV_WR_RDMA_WRITE);
	ret = rdps_tp_get(ep, &b.buf[2], 16, b.mr, b.rkey.addr + 8, &b.rkey, 4,
			  0);
	assert_int_equal(ret, 0);
	assert_int_equal(fake.last_wr.opcode, IBV_WR_RDMA_READ);
	assert_int_equal(fake.last_wr.wr.rdma.rkey, 0x77);
	assert_int_equal(fake.last_wr.wr.rdma.remote_addr, b.rkey.addr + 8);
	assert_int_equal(fake.last_sge.length, 16);
	fake_complete(IBV_WC_SUCCESS);
	fake_complete(IBV_WC_SUCCESS);
	assert_int_equal(poll_n(tp, c, 2), 2);
	assert_int_equal(c[0].wr_id, 3);
	assert_int_equal(c[0].status, RDPS_TP_WC_SUCCESS);
	assert_int_equal(c[0].opcode, RDPS_TP_OP_WRITE);
	assert_int_equal(c[1].wr_id, 4);
	assert_int_equal(c[1].status, RDPS_TP_WC_SUCCESS);
	assert_int_equal(c[1].opcode, RDPS_TP_OP_READ);
	assert_int_equal(c[1].len, 16);

	rdps_tp_ep_close(ep);
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

static void test_peer_without_atomics(void **state)
{
	struct rdps_tp_comp c[4];
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct bufs b;
	int ret, posts;

	(void)state;
	script_reply(0, TEST_TOKEN); /* the listener's device has none */
	tp = open_tp();
	bufs_reg(tp, &b, RDPS_TP_ACCESS_REMOTE_ATOMIC);
	ep = connect_ep(tp);
	assert_true(fake.last_qp->access & IBV_ACCESS_REMOTE_ATOMIC);
	posts = fake.n_post_send;
	ret = rdps_tp_atomic_fadd(ep, 1, &b.buf[0], b.mr, b.rkey.addr, &b.rkey,
				  1, 0);
	assert_int_equal(ret, -EOPNOTSUPP);
	CHECK_MSG("peer");
	assert_int_equal(fake.n_post_send, posts);

	/* With a peer that has them, fetch-add goes out as one. */
	rdps_tp_ep_close(ep);
	script_reply(VERBS_HELLO_ATOMIC, TEST_TOKEN);
	ep = connect_ep(tp);
	ret = rdps_tp_atomic_fadd(ep, 5, &b.buf[0], b.mr, b.rkey.addr, &b.rkey,
				  1, 0);
	assert_int_equal(ret, 0);
	assert_int_equal(fake.last_wr.opcode, IBV_WR_ATOMIC_FETCH_AND_ADD);
	assert_int_equal(fake.last_wr.wr.atomic.compare_add, 5);
	fake_complete(IBV_WC_SUCCESS);
	assert_int_equal(poll_n(tp, c, 1), 1);
	assert_int_equal(c[0].opcode, RDPS_TP_OP_FADD);

	/* Errors decided at post time: a completion, nothing posted, and
	 * the queue pair stays usable. */
	posts = fake.n_post_send;
	ret = rdps_tp_atomic_cswap(ep, 0, 1, &b.buf[0], b.mr, b.rkey.addr + 4,
				   &b.rkey, 21, 0);
	assert_int_equal(ret, 0);
	ret = rdps_tp_atomic_fadd(ep, 1, (uint64_t *)((char *)b.buf + 4), b.mr,
				  b.rkey.addr, &b.rkey, 22, 0);
	assert_int_equal(ret, 0);
	ret = rdps_tp_put(ep, &b.buf[7], 16, b.mr, b.rkey.addr, &b.rkey, 23, 0);
	assert_int_equal(ret, 0);
	assert_int_equal(fake.n_post_send, posts);
	assert_int_equal(poll_n(tp, c, 3), 3);
	assert_int_equal(c[0].wr_id, 21);
	assert_int_equal(c[0].status, RDPS_TP_WC_REM_INV_REQ_ERR);
	assert_int_equal(c[0].opcode, RDPS_TP_OP_CSWAP);
	assert_int_equal(c[1].wr_id, 22);
	assert_int_equal(c[1].status, RDPS_TP_WC_LOC_PROT_ERR);
	assert_int_equal(c[2].wr_id, 23);
	assert_int_equal(c[2].status, RDPS_TP_WC_LOC_PROT_ERR);
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 24, 0);
	assert_int_equal(ret, 0);
	rdps_tp_ep_close(ep);
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

/* 5./6. Error completions and a qp in error ---------------------------- */

struct wc_case {
	enum ibv_wc_status wc;
	int status;
};

static const struct wc_case wc_cases[] = {
	{IBV_WC_REM_ACCESS_ERR, RDPS_TP_WC_REM_ACCESS_ERR},
	{IBV_WC_REM_INV_REQ_ERR, RDPS_TP_WC_REM_INV_REQ_ERR},
	{IBV_WC_RETRY_EXC_ERR, RDPS_TP_WC_CONN_ERR},
	{IBV_WC_RNR_RETRY_EXC_ERR, RDPS_TP_WC_CONN_ERR},
	/* A flush of a live endpoint: its qp died, not closed by us. */
	{IBV_WC_WR_FLUSH_ERR, RDPS_TP_WC_CONN_ERR},
	{IBV_WC_LOC_PROT_ERR, RDPS_TP_WC_LOC_PROT_ERR},
	{IBV_WC_LOC_LEN_ERR, RDPS_TP_WC_GENERAL_ERR},
};

static void test_error_completions(void **state)
{
	struct rdps_tp_comp c[8];
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct bufs b;
	int ret, n;

	(void)state;
	tp = open_tp();
	bufs_reg(tp, &b, RDPS_TP_ACCESS_REMOTE_WRITE);
	for (size_t i = 0; i < RDPS_ARRAY_SIZE(wc_cases); i++) {
		const struct wc_case *k = &wc_cases[i];
		uint64_t id = 0x1000 + i;

		ep = connect_ep(tp);
		/* The failing one unsignaled: a failure completes anyway. */
		ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, id,
				  RDPS_TP_F_UNSIGNALED);
		assert_int_equal(ret, 0);
		ret = rdps_tp_get(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey,
				  id + 0x100, 0);
		assert_int_equal(ret, 0);
		fake_complete(k->wc);
		n = poll_n(tp, c, 2);
		CHECK(n == 2, "%s: %d completions, expected 2",
		      ibv_wc_status_str(k->wc), n);
		CHECK(c[0].wr_id == id && c[0].status == k->status &&
			      c[0].opcode == RDPS_TP_OP_WRITE && c[0].ep == ep,
		      "%s: got wr_id 0x%llx status %s opcode %d, expected "
		      "0x%llx %s write",
		      ibv_wc_status_str(k->wc), (unsigned long long)c[0].wr_id,
		      rdps_tp_status_str(c[0].status), c[0].opcode,
		      (unsigned long long)id, rdps_tp_status_str(k->status));
		/* The get behind it was flushed by the qp going to error. */
		CHECK(c[1].wr_id == id + 0x100 &&
			      c[1].status == RDPS_TP_WC_CONN_ERR &&
			      c[1].opcode == RDPS_TP_OP_READ,
		      "%s: flushed get: wr_id 0x%llx status %s opcode %d",
		      ibv_wc_status_str(k->wc), (unsigned long long)c[1].wr_id,
		      rdps_tp_status_str(c[1].status), c[1].opcode);
		expect_disconnect(tp, ep);
		/* Whatever the error, the queue pair is gone for good. */
		ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 1,
				  0);
		CHECK(ret == -ENOTCONN, "%s: post after it returned %d",
		      ibv_wc_status_str(k->wc), ret);
		rdps_tp_ep_close(ep);
	}
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

static void test_post_after_qp_error(void **state)
{
	struct rdps_tp_comp c[8];
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct bufs b;
	int ret, posts;

	(void)state;
	tp = open_tp();
	bufs_reg(tp, &b, RDPS_TP_ACCESS_REMOTE_ATOMIC);
	ep = connect_ep(tp);
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 1, 0);
	assert_int_equal(ret, 0);
	fake_complete(IBV_WC_REM_ACCESS_ERR);
	assert_int_equal(poll_n(tp, c, 1), 1);
	assert_int_equal(c[0].status, RDPS_TP_WC_REM_ACCESS_ERR);
	assert_true(fake.n_modify_err >= 1); /* the transport knows */

	posts = fake.n_post_send;
	rdps_clear_error();
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 2, 0);
	assert_int_equal(ret, -ENOTCONN);
	CHECK_MSG("disconnected");
	CHECK_MSG("connect again");
	ret = rdps_tp_get(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 3, 0);
	assert_int_equal(ret, -ENOTCONN);
	ret = rdps_tp_put_imm(ep, NULL, 0, NULL, 0, NULL, 9, 4, 0);
	assert_int_equal(ret, -ENOTCONN);
	ret = rdps_tp_atomic_fadd(ep, 1, &b.buf[0], b.mr, b.rkey.addr, &b.rkey,
				  5, 0);
	assert_int_equal(ret, -ENOTCONN);
	/* Errors decided at post time too: no completion for a dead ep. */
	ret = rdps_tp_atomic_cswap(ep, 0, 1, &b.buf[0], b.mr, b.rkey.addr + 3,
				   &b.rkey, 6, 0);
	assert_int_equal(ret, -ENOTCONN);
	assert_int_equal(fake.n_post_send, posts);
	expect_disconnect(tp, ep);
	rdps_tp_ep_close(ep);
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

static void test_peer_disconnect_mid_run(void **state)
{
	struct rdps_tp_comp c[8];
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct verbs_ep *vep;
	struct bufs b;
	int ret;

	(void)state;
	tp = open_tp();
	bufs_reg(tp, &b, RDPS_TP_ACCESS_REMOTE_WRITE);
	ep = connect_ep(tp);
	vep = verbs_ep_of(ep);
	for (uint64_t i = 1; i <= 3; i++) {
		ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, i,
				  0);
		assert_int_equal(ret, 0);
	}
	fake_complete(IBV_WC_SUCCESS);
	ev_push(vep->id, NULL, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, 0);
	/* poll() alone notices it (it looks at rdma_cm now and then). The
	 * DISCONNECT may come before or after the flushed puts. */
	assert_int_equal(poll_n(tp, c, 4), 4);
	{
		int disc = 0, k = 0;

		for (int i = 0; i < 4; i++) {
			if (c[i].opcode == RDPS_TP_OP_DISCONNECT) {
				assert_ptr_equal(c[i].ep, ep);
				assert_int_equal(c[i].status,
						 RDPS_TP_WC_CONN_ERR);
				disc++;
				continue;
			}
			c[k++] = c[i];
		}
		assert_int_equal(disc, 1);
	}
	assert_int_equal(c[0].wr_id, 1);
	assert_int_equal(c[0].status, RDPS_TP_WC_SUCCESS);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(c[i].wr_id, (uint64_t)i + 1);
		assert_int_equal(c[i].status, RDPS_TP_WC_CONN_ERR);
		assert_ptr_equal(c[i].ep, ep);
	}
	assert_int_equal(rdps_tp_poll(tp, c, 8), 0);
	rdps_clear_error();
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 9, 0);
	assert_int_equal(ret, -ENOTCONN);
	CHECK_MSG("peer went away");
	rdps_tp_ep_close(ep);
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

static void test_close_flushes_outstanding(void **state)
{
	struct rdps_tp_comp c[8];
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct bufs b;
	int ret;

	(void)state;
	tp = open_tp();
	bufs_reg(tp, &b, RDPS_TP_ACCESS_REMOTE_WRITE);
	ep = connect_ep(tp);
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 11, 0);
	assert_int_equal(ret, 0);
	ret = rdps_tp_get(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 12, 0);
	assert_int_equal(ret, 0);
	rdps_tp_ep_close(ep);
	assert_int_equal(fake.n_disconnect, 1);
	assert_int_equal(poll_n(tp, c, 2), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(c[i].wr_id, 11 + (uint64_t)i);
		assert_int_equal(c[i].status, RDPS_TP_WC_FLUSH_ERR);
		assert_null(c[i].ep);
	}
	assert_int_equal(rdps_tp_poll(tp, c, 8), 0);
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

static void test_post_send_refused(void **state)
{
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep;
	struct rdps_tp_comp c[2];
	struct bufs b;
	int ret;

	(void)state;
	tp = open_tp();
	bufs_reg(tp, &b, RDPS_TP_ACCESS_REMOTE_WRITE);
	ep = connect_ep(tp);
	fake.err_post_send = ENOMEM; /* send queue full in the provider */
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 1, 0);
	assert_int_equal(ret, -EAGAIN);
	fake.err_post_send = EINVAL;
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 2, 0);
	assert_int_equal(ret, -EINVAL);
	CHECK_MSG("refused a work request");
	/* Neither left a slot behind: the queue drains to nothing. */
	ret = rdps_tp_put(ep, b.buf, 8, b.mr, b.rkey.addr, &b.rkey, 3, 0);
	assert_int_equal(ret, 0);
	fake_complete(IBV_WC_SUCCESS);
	assert_int_equal(poll_n(tp, c, 1), 1);
	assert_int_equal(c[0].wr_id, 3);
	rdps_tp_ep_close(ep);
	rdps_tp_mem_dereg(b.mr);
	close_tp(tp);
}

/* 7. Handshake refusals ------------------------------------------------ */

struct rej_case {
	uint8_t reason; /* 0: a reject without our private data */
	int ret;
	const char *msg;
};

static void test_connect_rejected(void **state)
{
	static const struct rej_case cases[] = {
		{VERBS_REJ_TOKEN, -EACCES, "job token"},
		{VERBS_REJ_VERSION, -EPROTO, "protocol"},
		{VERBS_REJ_MALFORMED, -EPROTO, "handshake"},
		{VERBS_REJ_RESOURCES, -ECONNREFUSED, "out of resources"},
		{0, -ECONNREFUSED, "nobody listens"},
	};
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep = NULL;
	struct verbs_hello h;
	int ret;

	(void)state;
	tp = open_tp();
	for (size_t i = 0; i < RDPS_ARRAY_SIZE(cases); i++) {
		if (cases[i].reason)
			script_reject(cases[i].reason);
		else
			script_connect(RDMA_CM_EVENT_REJECTED, 28, NULL, 0);
		rdps_clear_error();
		ret = rdps_tp_connect(tp, TEST_URL, NULL, 0, &ep, 2000);
		CHECK(ret == cases[i].ret, "reason %u: %d, expected %d (%s)",
		      cases[i].reason, ret, cases[i].ret, rdps_errmsg());
		CHECK_MSG(cases[i].msg);
		CHECK_MSG(TEST_URL);
		assert_null(ep);
		/* Everything the attempt made is gone already. */
		assert_int_equal(fake.made[FR_QP], fake.freed[FR_QP]);
		assert_int_equal(fake.made[FR_CM_ID], fake.freed[FR_CM_ID]);
	}
	/* What we sent: a hello with our token and version. */
	memcpy(&h, fake.sent_pdata, sizeof(h));
	assert_int_equal(rdps_be32toh(h.magic_be), VERBS_MAGIC);
	assert_int_equal(h.kind, VERBS_MSG_HELLO);
	assert_int_equal(h.version, RDPS_TP_PROTO_VERSION);
	assert_int_equal(rdps_be64toh(h.token_be), TEST_TOKEN);
	close_tp(tp);
}

static void test_connect_bad_reply(void **state)
{
	struct rdps_tp *tp;
	struct rdps_tp_ep *ep = NULL;
	uint8_t buf[FAKE_PDATA], n;
	int ret;

	(void)state;
	tp = open_tp();
	script_reply(VERBS_HELLO_ATOMIC, TEST_TOKEN + 1);
	ret = rdps_tp_connect(tp, TEST_URL, NULL, 0, &ep, 2000);
	assert_int_equal(ret, -EACCES);
	CHECK_MSG("job token mismatch");
	assert_int_equal(fake.n_reject, 1); /* the server hears of it */

	n = hello_make(buf, VERBS_MSG_REPLY, RDPS_TP_PROTO_VERSION + 1, 0,
		       TEST_TOKEN, NULL, 0);
	script_connect(RDMA_CM_EVENT_CONNECT_RESPONSE, 0, buf, n);
	rdps_clear_error();
	ret = rdps_tp_connect(tp, TEST_URL, NULL, 0, &ep, 2000);
	assert_int_equal(ret, -EPROTO);
	CHECK_MSG("protocol version mismatch");

	script_connect(RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL, 0);
	rdps_clear_error();
	ret = rdps_tp_connect(tp, TEST_URL, NULL, 0, &ep, 2000);
	assert_int_equal(ret, -ETIMEDOUT);
	CHECK_MSG("no answer");

	fake.resolve_event = RDMA_CM_EVENT_ADDR_ERROR;
	fake.resolve_status = -ENETUNREACH;
	rdps_clear_error();
	ret = rdps_tp_connect(tp, TEST_URL, NULL, 0, &ep, 2000);
	assert_int_equal(ret, -EHOSTUNREACH);
	CHECK_MSG("unreachable over RDMA");
	assert_null(ep);
	close_tp(tp);
}

static void push_request(const uint8_t *pdata, uint8_t len)
{
	struct rdma_cm_id *id;

	assert_non_null(fake.listen_id);
	/* A request's id starts with its listener's context. */
	id = id_new(fake.listen_id->context);
	id->verbs = &fake.ctx;
	id->port_num = 1;
	if (fake.n_reqs < FAKE_REQS)
		fake.req_id[fake.n_reqs++] = id;
	ev_push(id, fake.listen_id, RDMA_CM_EVENT_CONNECT_REQUEST, 0, pdata,
		len);
}

static void test_accept_refuses_bad_hello(void **state)
{
	static const uint8_t garbage[20] = "GET / HTTP/1.1\r\n";
	struct rdps_tp *tp;
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *ep = NULL;
	uint8_t buf[FAKE_PDATA], n;
	struct verbs_hello h;
	int ret;

	(void)state;
	tp = open_tp();
	ret = rdps_tp_listen(tp, "verbs://127.0.0.1:0", "key", 3, &l);
	assert_int_equal(ret, 0);

	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION,
		       VERBS_HELLO_ATOMIC, TEST_TOKEN ^ 1, NULL, 0);
	push_request(buf, n);
	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION + 1,
		       VERBS_HELLO_ATOMIC, TEST_TOKEN, NULL, 0);
	push_request(buf, n);
	push_request(garbage, sizeof(garbage));
	ret = rdps_tp_accept(l, &ep, 100);
	assert_int_equal(ret, -ETIMEDOUT); /* refused all, kept waiting */
	assert_null(ep);
	assert_int_equal(fake.n_reject, 3);
	assert_int_equal(fake.n_accept, 0);
	for (int i = 0; i < 3; i++) {
		static const uint8_t why[] = {VERBS_REJ_TOKEN,
					      VERBS_REJ_VERSION,
					      VERBS_REJ_MALFORMED};

		CHECK(fake.reject_pdata_len[i] >= sizeof(h),
		      "reject %d carries %u bytes", i,
		      fake.reject_pdata_len[i]);
		memcpy(&h, fake.reject_pdata[i], sizeof(h));
		assert_int_equal(rdps_be32toh(h.magic_be), VERBS_MAGIC);
		assert_int_equal(h.kind, VERBS_MSG_REJECT);
		CHECK(h.arg == why[i], "reject %d: reason %u, expected %u", i,
		      h.arg, why[i]);
	}
	/* The three refused ids are gone; only the listener's is left. */
	assert_int_equal(fake.made[FR_CM_ID] - fake.freed[FR_CM_ID], 1);

	/* A bad one then a good one: accept returns the good one. */
	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION, 0,
		       TEST_TOKEN + 7, NULL, 0);
	push_request(buf, n);
	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION,
		       VERBS_HELLO_ATOMIC, TEST_TOKEN, "cli", 3);
	push_request(buf, n);
	ret = rdps_tp_accept(l, &ep, 2000);
	CHECK(ret == 0, "accept: %d (%s)", ret, rdps_errmsg());
	assert_int_equal(fake.n_reject, 4);
	assert_int_equal(fake.n_accept, 1);
	assert_int_equal(ep->peer_priv_len, 3);
	assert_memory_equal(ep->peer_priv, "cli", 3);
	rdps_tp_ep_close(ep);
	rdps_tp_listener_close(l);
	close_tp(tp);
}

static void test_accept_peer_gone(void **state)
{
	struct rdps_tp *tp;
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *ep = NULL;
	uint8_t buf[FAKE_PDATA], n;
	struct rdma_cm_id *id;
	struct verbs_hello h;
	int ret;

	(void)state;
	tp = open_tp();
	ret = rdps_tp_listen(tp, "verbs://127.0.0.1:0", NULL, 0, &l);
	assert_int_equal(ret, 0);
	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION, 0,
		       TEST_TOKEN, NULL, 0);

	/* The connector gives up before accept() looks. */
	push_request(buf, n);
	id = fake.ch->head->ev.id;
	ev_push(id, NULL, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, 0);
	ret = rdps_tp_accept(l, &ep, 50);
	assert_int_equal(ret, -ETIMEDOUT);
	assert_int_equal(fake.n_accept, 0);

	/* The connector goes away during the handshake. */
	fake.accept_event = RDMA_CM_EVENT_REJECTED;
	push_request(buf, n);
	ret = rdps_tp_accept(l, &ep, 50);
	assert_int_equal(ret, -ETIMEDOUT);
	assert_int_equal(fake.n_accept, 1);
	assert_null(ep);
	assert_int_equal(fake.made[FR_QP], fake.freed[FR_QP]);

	/* Closing the listener refuses what still waits. */
	push_request(buf, n);
	fake.n_reject = 0;
	rdps_tp_listener_close(l);
	assert_int_equal(fake.n_reject, 1);
	memcpy(&h, fake.reject_pdata[0], sizeof(h));
	assert_int_equal(h.kind, VERBS_MSG_REJECT);
	assert_int_equal(h.arg, VERBS_REJ_RESOURCES);
	close_tp(tp);
}

/* Queue pairs alive in the fake. */
static int qps_alive(void)
{
	return fake.made[FR_QP] - fake.freed[FR_QP];
}

/* Whether exactly the first `gone` of requests [0, n) were destroyed:
 * the oldest went first. */
static void oldest_gone(int n, int gone)
{
	for (int k = 0; k < n; k++)
		CHECK((fake.req_id[k] == NULL) == (k < gone),
		      "request %d of %d is %s, expected the %d oldest gone", k,
		      n, fake.req_id[k] ? "alive" : "gone", gone);
}

/*
 * Connectors that never complete their connection (rdma_connect, then
 * nothing) hold up no other peer: accept answers every request at once and
 * returns a later peer while they still wait; each is dropped at its own
 * deadline; when their queue pairs fill the completion queue the oldest
 * is pushed out rather than a new peer refused. (Dropped after our reply,
 * they get rdma_cm's own reject when their id is destroyed.)
 */
static void test_accept_half_open(void **state)
{
	struct rdps_tp *tp;
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *ep = NULL, *ep2 = NULL;
	uint8_t buf[FAKE_PDATA], n;
	int ret, fit;
	uint64_t t0;
	double ms;

	(void)state;
	tp = open_tp();
	ret = rdps_tp_listen(tp, "verbs://127.0.0.1:0", NULL, 0, &l);
	assert_int_equal(ret, 0);
	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION, 0,
		       TEST_TOKEN, NULL, 0);
	fake.accept_silent = true;
	for (int i = 0; i < 30; i++)
		push_request(buf, n);
	t0 = rdps_now_ns();
	ret = rdps_tp_accept(l, &ep, 0);
	ms = (double)(rdps_now_ns() - t0) / 1e6;
	assert_int_equal(ret, -ETIMEDOUT);
	CHECK(ms < RDPS_TP_HELLO_MS,
	      "accept(0) took %.0f ms: it waited for a silent peer", ms);
	assert_int_equal(fake.n_accept, 30);
	/* cfg_test's completion queue holds 24 endpoints' reservations: the
	 * oldest made room for the newest. */
	fit = qps_alive();
	CHECK(fit > 0 && fit < 30, "%d queue pairs for 30 handshakes", fit);
	oldest_gone(30, 30 - fit);
	assert_int_equal(fake.n_reject, 0);

	/* A real peer now: returned at once, the silent ones still wait. */
	fake.accept_silent = false;
	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION, 0,
		       TEST_TOKEN, "cli", 3);
	push_request(buf, n);
	t0 = rdps_now_ns();
	ret = rdps_tp_accept(l, &ep, 5000);
	ms = (double)(rdps_now_ns() - t0) / 1e6;
	CHECK(ret == 0, "accept: %d (%s)", ret, rdps_errmsg());
	CHECK(ms < RDPS_TP_HELLO_MS,
	      "accept took %.0f ms: it waited for a silent peer", ms);
	assert_int_equal(ep->peer_priv_len, 3);
	assert_memory_equal(ep->peer_priv, "cli", 3);
	assert_int_equal(qps_alive(), fit); /* one more old one went */
	oldest_gone(30, 31 - fit);

	/* The silent ones are dropped at their deadline; the established
	 * endpoint stays. */
	ret = rdps_tp_accept(l, &ep2, RDPS_TP_HELLO_MS + 500);
	assert_int_equal(ret, -ETIMEDOUT);
	oldest_gone(30, 30);
	assert_int_equal(qps_alive(), 1);
	rdps_tp_ep_close(ep);
	rdps_tp_listener_close(l);
	close_tp(tp);
}

/* At most RDPS_TP_MAX_PENDING handshakes wait (with a completion queue
 * that holds more): past that the oldest go. The same bound holds for
 * requests not looked at yet, whose oldest are refused as busy. */
static void test_accept_pending_bound(void **state)
{
	const int first = 200, more = 100;
	struct rdps_tp_cfg cfg;
	struct rdps_tp *tp = NULL;
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *ep = NULL;
	uint8_t buf[FAKE_PDATA], n;
	int ret, over = first + more - RDPS_TP_MAX_PENDING;

	(void)state;
	cfg_test(&cfg);
	cfg.cq_depth = 4000; /* 10 entries an endpoint */
	ret = rdps_tp_open("verbs", &cfg, &tp);
	CHECK(ret == 0, "rdps_tp_open: %d (%s)", ret, rdps_errmsg());
	ret = rdps_tp_listen(tp, "verbs://127.0.0.1:0", NULL, 0, &l);
	assert_int_equal(ret, 0);
	n = hello_make(buf, VERBS_MSG_HELLO, RDPS_TP_PROTO_VERSION, 0,
		       TEST_TOKEN, NULL, 0);
	fake.accept_silent = true;
	for (int i = 0; i < first; i++)
		push_request(buf, n);
	assert_int_equal(rdps_tp_accept(l, &ep, 0), -ETIMEDOUT);
	assert_int_equal(qps_alive(), first);
	for (int i = 0; i < more; i++)
		push_request(buf, n);
	assert_int_equal(rdps_tp_accept(l, &ep, 0), -ETIMEDOUT);
	assert_int_equal(qps_alive(), RDPS_TP_MAX_PENDING);
	oldest_gone(first + more, over);
	assert_int_equal(fake.n_reject, 0);

	/* Requests in the channel past the bound: the oldest refused, busy,
	 * before any is looked at. */
	fake.n_reqs = 0;
	for (int i = 0; i < RDPS_TP_MAX_PENDING + 10; i++)
		push_request(buf, n);
	rdps_tp_listener_close(l);
	assert_int_equal(fake.n_busy, 10);
	for (int k = 0; k < 10; k++)
		CHECK(fake.busy_req[k] == k,
		      "request %d was refused as busy before an older one",
		      fake.busy_req[k]);
	/* Closing the listener refused the others and dropped every
	 * handshake. */
	assert_int_equal(fake.n_reject_why[VERBS_REJ_RESOURCES],
			 RDPS_TP_MAX_PENDING);
	assert_int_equal(qps_alive(), 0);
	close_tp(tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_no_device_empty_list),
		T(test_no_device_no_rdma_cm),
		T(test_device_not_found_or_down),
		T(test_device_name_prefix),
		T(test_init_alloc_pd_fails),
		T(test_init_comp_channel_fails),
		T(test_init_create_cq_fails),
		T(test_init_cm_channel_fails),
		T(test_open_close_balances),
		T(test_reg_mr_memlock),
		T(test_reg_ep_no_windows),
		T(test_reg_ep_window),
		T(test_no_atomics_device),
		T(test_peer_without_atomics),
		T(test_error_completions),
		T(test_post_after_qp_error),
		T(test_peer_disconnect_mid_run),
		T(test_close_flushes_outstanding),
		T(test_post_send_refused),
		T(test_connect_rejected),
		T(test_connect_bad_reply),
		T(test_accept_refuses_bad_hello),
		T(test_accept_peer_gone),
		T(test_accept_half_open),
		T(test_accept_pending_bound),
#undef T
	};

	return cmocka_run_group_tests_name("verbs_mock", tests, NULL, NULL);
}
