/* SPDX-License-Identifier: MIT */
/*
 * test_tcp_order.c - a tcp target takes the bytes of a peer's reads in
 * the order the peer posted them (transport.h, "Ordering"), even while
 * their responses wait in its send queue.
 *
 * A READ response is sent straight from the registered region, so its
 * bytes are taken when it goes out; a gather READ's response is a copy
 * made when it is served. A READ posted before a gather but still queued
 * behind a full socket used to take its bytes after the gather's. An
 * embedding pull reads a shard's header (its applied clock) and then
 * gathers the buckets the header vouches for: a shard that applied a
 * clock in between gave it the new clock with the old buckets, and a BSP
 * job over tcp came out different from the same job over shm (the
 * train_ctr flake). Here a raw peer that never reads keeps the socket
 * full with a large READ, then posts READ(A), a gather of B and a
 * zero-byte write-with-immediate; once the target polls that immediate
 * (so the gather was served), the test writes B and then A, as a shard
 * applies and then publishes. The peer must not see the new A with the
 * old B.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "tcp/tcp.h"
#include "test_check.h"
#include "transport.h"

#define TOKEN 0x4f52444552544f4bull
/* Far more than loopback's largest send buffer (tcp_wmem, 4 MiB by
 * default) plus the peer's small receive buffer: the response stays
 * queued until the peer reads. */
#define BIG (32u << 20)
#define WAIT_MS 5000

static int port_of(const char *url)
{
	const char *p = strrchr(url, ':');

	assert_non_null(p);
	return atoi(p + 1);
}

static void send_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void send_req(int fd, const struct rdps_tcp_msg *m)
{
	uint8_t hdr[RDPS_TCP_HDR_LEN];

	rdps_tcp_wire_encode(m, hdr);
	send_all(fd, hdr, sizeof(hdr));
}

/* The next response: its header, its payload into buf (cap bytes; a
 * larger one is read and dropped). */
static void recv_resp(int fd, struct rdps_tcp_msg *m, void *buf, size_t cap)
{
	uint8_t hdr[RDPS_TCP_HDR_LEN];
	const char *why = "";
	static uint8_t sink[1 << 16];
	size_t left;

	assert_int_equal(recv(fd, hdr, sizeof(hdr), MSG_WAITALL),
			 (ssize_t)sizeof(hdr));
	CHECK(rdps_tcp_wire_decode(hdr, sizeof(hdr), m, &why) == 0,
	      "the target sent a bad header: %s", why);
	CHECK(m->status == RDPS_TP_WC_SUCCESS, "response of type 0x%x: %s",
	      m->type, rdps_tp_status_str(m->status));
	if (m->len <= cap) {
		if (m->len)
			assert_int_equal(recv(fd, buf, m->len, MSG_WAITALL),
					 (ssize_t)m->len);
		return;
	}
	for (left = m->len; left;) {
		size_t n = left < sizeof(sink) ? left : sizeof(sink);

		assert_int_equal(recv(fd, sink, n, MSG_WAITALL), (ssize_t)n);
		left -= n;
	}
}

/* Connect a raw peer with a small receive buffer; the target accepts. */
static int raw_peer(struct rdps_tp_listener *l, struct rdps_tp_ep **ep_out)
{
	struct rdps_tcp_hello h = {.version = RDPS_TP_PROTO_VERSION,
				   .kind = RDPS_TCP_HELLO,
				   .token = TOKEN};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint8_t buf[RDPS_TCP_HELLO_LEN];
	const char *why = "";
	char url[128];
	struct timeval tv = {.tv_sec = WAIT_MS / 1000};
	int fd, small = 4096;

	assert_int_equal(rdps_tp_listener_url(l, url, sizeof(url)), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)),
		0);
	/* A target that never answers fails a recv, not the ctest timeout. */
	assert_int_equal(
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	sa.sin_port = htons((uint16_t)port_of(url));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	      "connect to %s failed", url);
	rdps_tcp_hello_encode(&h, buf);
	send_all(fd, buf, sizeof(buf));
	CHECK(rdps_tp_accept(l, ep_out, WAIT_MS) == 0, "accept: %s",
	      rdps_errmsg());
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_WAITALL),
			 (ssize_t)sizeof(buf));
	CHECK(rdps_tcp_hello_decode(buf, sizeof(buf), &h, &why) == 0 &&
		      h.kind == RDPS_TCP_ACCEPT,
	      "the target did not accept the raw peer: %s kind %u", why,
	      h.kind);
	return fd;
}

/* A target serving reads at all times (as a shard's), a raw peer on it,
 * and BIG + 4096 bytes registered for reads and atomics. */
struct order_fix {
	struct rdps_tp *tp;
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *ep;
	struct rdps_tp_mr *mr;
	uint8_t *mem;
	uint64_t base;
	uint32_t key;
	int fd;
};

static void fix_open(struct order_fix *f)
{
	struct rdps_tp_rkey_wire w;
	struct rdps_tp_cfg cfg;

	memset(f, 0, sizeof(*f));
	rdps_tp_cfg_default(&cfg);
	cfg.token = TOKEN;
	/* As a shard's: the target's thread serves reads at all times. */
	cfg.serve_thread = 1;
	CHECK(rdps_tp_open("tcp", &cfg, &f->tp) == 0, "open: %s",
	      rdps_errmsg());
	CHECK(rdps_tp_listen(f->tp, "tcp://127.0.0.1:0", NULL, 0, &f->l) == 0,
	      "listen: %s", rdps_errmsg());
	f->fd = raw_peer(f->l, &f->ep);
	f->mem = calloc(1, BIG + 4096);
	assert_non_null(f->mem);
	assert_int_equal(rdps_tp_mem_reg(f->tp, f->mem, BIG + 4096,
					 RDPS_TP_ACCESS_REMOTE_READ |
						 RDPS_TP_ACCESS_REMOTE_ATOMIC,
					 &f->mr),
			 0);
	rdps_tp_rkey_pack(f->mr, &w);
	f->base = rdps_be64toh(w.addr_be);
	f->key = ntohl(w.rkey_be);
	/* seq 0: the large READ that fills the socket; 1: READ(A). */
	send_req(f->fd, &(struct rdps_tcp_msg){.type = RDPS_TCP_REQ_READ,
					       .seq = 0,
					       .raddr = f->base,
					       .rkey = f->key,
					       .op1 = BIG});
	send_req(f->fd, &(struct rdps_tcp_msg){.type = RDPS_TCP_REQ_READ,
					       .seq = 1,
					       .raddr = f->base + BIG,
					       .rkey = f->key,
					       .op1 = 8});
}

/* Post the write-with-immediate of seq and wait until the target polled
 * it: every request before it was served. */
static void fix_fence(struct order_fix *f, uint64_t seq)
{
	struct rdps_tp_comp comp;
	uint64_t deadline;
	int n = 0;

	send_req(f->fd, &(struct rdps_tcp_msg){.type = RDPS_TCP_REQ_WRITE_IMM,
					       .seq = seq,
					       .imm = 7});
	deadline = rdps_deadline(WAIT_MS);
	while (n == 0 && rdps_ms_left(deadline) > 0)
		n = rdps_tp_wait(f->tp, &comp, 1, 100);
	CHECK(n == 1 && comp.opcode == RDPS_TP_OP_RECV_IMM && comp.imm == 7,
	      "want the write-with-immediate's completion, got %d (opcode "
	      "%u)",
	      n, n == 1 ? comp.opcode : 0);
}

/* The large READ's and READ(A)'s responses, A into *a. */
static void fix_recv_reads(struct order_fix *f, uint64_t *a)
{
	struct rdps_tcp_msg m;

	recv_resp(f->fd, &m, NULL, 0);
	CHECK(m.seq == 0 && m.len == BIG, "want the large READ, got seq %llu",
	      (unsigned long long)m.seq);
	recv_resp(f->fd, &m, a, sizeof(*a));
	CHECK(m.seq == 1 && m.len == 8, "want READ(A), got seq %llu",
	      (unsigned long long)m.seq);
}

static void fix_close(struct order_fix *f)
{
	close(f->fd);
	rdps_tp_ep_close(f->ep);
	rdps_tp_mem_dereg(f->mr);
	rdps_tp_listener_close(f->l);
	assert_int_equal(rdps_tp_close(f->tp), 0);
	free(f->mem);
}

static void t_read_before_gather(void **state)
{
	struct order_fix f;
	struct rdps_tcp_range r[2];
	struct rdps_tcp_msg m;
	uint8_t desc[2 * RDPS_TCP_RANGE_LEN];
	uint64_t a = 0, b[2] = {0, 0};

	(void)state;
	fix_open(&f);
	/* seq 2: the gather of B[0], B[1]; 3: a write-with-immediate. */
	for (int i = 0; i < 2; i++)
		r[i] = (struct rdps_tcp_range){.raddr = f.base + BIG + 64 +
							64 * (uint64_t)i,
					       .rkey = f.key,
					       .len = 8};
	rdps_tcp_gather_encode(r, 2, desc);
	send_req(f.fd, &(struct rdps_tcp_msg){.type = RDPS_TCP_REQ_GATHER,
					      .seq = 2,
					      .len = sizeof(desc),
					      .op1 = 16});
	send_all(f.fd, desc, sizeof(desc));
	fix_fence(&f, 3);
	/* The reads and the gather were served. Then B, then A, as a shard
	 * applies, then publishes. */
	__atomic_store_n((uint64_t *)(f.mem + BIG + 64), 1, __ATOMIC_RELEASE);
	__atomic_store_n((uint64_t *)(f.mem + BIG + 128), 1, __ATOMIC_RELEASE);
	__atomic_store_n((uint64_t *)(f.mem + BIG), 1, __ATOMIC_RELEASE);

	fix_recv_reads(&f, &a);
	recv_resp(f.fd, &m, b, sizeof(b));
	CHECK(m.seq == 2 && m.len == 16, "want the gather, got seq %llu",
	      (unsigned long long)m.seq);
	recv_resp(f.fd, &m, NULL, 0);
	CHECK(m.seq == 3, "want the immediate's response, got seq %llu",
	      (unsigned long long)m.seq);
	print_message("READ(A) %llu, then gather B %llu %llu (0: before the "
		      "writes)\n",
		      (unsigned long long)a, (unsigned long long)b[0],
		      (unsigned long long)b[1]);
	CHECK(b[0] == 0 && b[1] == 0,
	      "the gather, served before the immediate was polled, returned "
	      "B written after it (%llu %llu)",
	      (unsigned long long)b[0], (unsigned long long)b[1]);
	CHECK(a == 0,
	      "READ(A), posted before the gather, returned A written after "
	      "the gather was served (the gather got the old B): the target "
	      "took a queued READ's bytes after a later gather's");
	fix_close(&f);
}

/*
 * The same for an atomic: READ(A) queued behind the large READ, then a
 * fetch-add on C (another word). Once the fetch-add was served, A is
 * written, as a party that saw the fetch-add would. READ(A), posted
 * first, must return A from before the fetch-add.
 */
static void t_read_before_atomic(void **state)
{
	struct order_fix f;
	struct rdps_tcp_msg m;
	uint64_t a = 0, c;

	(void)state;
	fix_open(&f);
	send_req(f.fd, &(struct rdps_tcp_msg){.type = RDPS_TCP_REQ_FADD,
					      .seq = 2,
					      .raddr = f.base + BIG + 256,
					      .rkey = f.key,
					      .op1 = 5});
	fix_fence(&f, 3);
	c = __atomic_load_n((uint64_t *)(f.mem + BIG + 256), __ATOMIC_ACQUIRE);
	CHECK(c == 5,
	      "the fetch-add was not served before the immediate "
	      "(C %llu)",
	      (unsigned long long)c);
	__atomic_store_n((uint64_t *)(f.mem + BIG), 1, __ATOMIC_RELEASE);

	fix_recv_reads(&f, &a);
	recv_resp(f.fd, &m, NULL, 0);
	CHECK(m.seq == 2 && m.op1 == 0,
	      "want the fetch-add's response with the old value 0, got seq "
	      "%llu value %llu",
	      (unsigned long long)m.seq, (unsigned long long)m.op1);
	recv_resp(f.fd, &m, NULL, 0);
	CHECK(m.seq == 3, "want the immediate's response, got seq %llu",
	      (unsigned long long)m.seq);
	CHECK(a == 0,
	      "READ(A), posted before the fetch-add, returned A written after "
	      "the fetch-add was served: the target took a queued READ's "
	      "bytes after a later atomic ran");
	fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_read_before_gather),
		cmocka_unit_test(t_read_before_atomic),
	};

	return cmocka_run_group_tests_name("tcp_order", tests, NULL, NULL);
}
