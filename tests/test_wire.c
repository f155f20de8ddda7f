/* SPDX-License-Identifier: MIT */
/*
 * test_wire.c - the tcp transport's wire codec (transport/tcp/tcp_wire.c)
 * through the four functions tcp.h declares, with no socket and no
 * transport instance.
 *
 * Expected bytes are built here by hand from the layout comments in tcp.h
 * (big-endian fields at fixed offsets), never by the encoder under test,
 * so an encoder and a decoder that agree on a wrong layout still fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tcp/tcp.h"
#include "test_check.h"

/* Hand-made big-endian layout ------------------------------------------ */

static void be16_at(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32_at(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void be64_at(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* A header laid out as tcp.h documents it. */
static void hdr_by_hand(uint8_t *p, const struct rdps_tcp_msg *m)
{
	memset(p, 0, RDPS_TCP_HDR_LEN);
	p[0] = RDPS_TCP_MAGIC;
	p[1] = m->type;
	p[2] = m->status;
	p[3] = 0;
	be32_at(p + 4, m->len);
	be64_at(p + 8, m->seq);
	be64_at(p + 16, m->raddr);
	be32_at(p + 24, m->rkey);
	be32_at(p + 28, m->imm);
	be64_at(p + 32, m->op1);
	be64_at(p + 40, m->op2);
}

static void hello_by_hand(uint8_t *p, const struct rdps_tcp_hello *h)
{
	memset(p, 0, RDPS_TCP_HELLO_LEN);
	be32_at(p, RDPS_TCP_HELLO_MAGIC);
	be16_at(p + 4, h->version);
	p[6] = h->kind;
	p[7] = h->reason;
	be64_at(p + 8, h->token);
	be32_at(p + 16, h->priv_len);
	memcpy(p + 24, h->priv,
	       h->priv_len < RDPS_TP_PRIV_MAX ? h->priv_len : RDPS_TP_PRIV_MAX);
}

/* A message whose every field has different bytes, so a field decoded
 * from the wrong offset or with the wrong width shows. */
static struct rdps_tcp_msg msg_of(uint8_t type, uint8_t status, uint32_t len)
{
	struct rdps_tcp_msg m = {
		.type = type,
		.status = status,
		.len = len,
		.seq = 0x0102030405060708ull,
		.raddr = 0x1112131415161718ull,
		.rkey = 0x21222324u,
		.imm = 0x31323334u,
		.op1 = 0x4142434445464748ull,
		.op2 = 0x5152535455565758ull,
	};

	if (type == RDPS_TCP_REQ_READ)
		m.op1 = 0x3fedcba9u; /* a read length must stay <= 1 GiB */
	return m;
}

static void check_msg_eq(const struct rdps_tcp_msg *a,
			 const struct rdps_tcp_msg *b, const char *what)
{
	CHECK(a->type == b->type, "%s: type 0x%x, want 0x%x", what, a->type,
	      b->type);
	CHECK(a->status == b->status, "%s: status %u, want %u", what, a->status,
	      b->status);
	CHECK(a->len == b->len, "%s: len %u, want %u", what, a->len, b->len);
	CHECK(a->seq == b->seq, "%s: seq 0x%llx, want 0x%llx", what,
	      (unsigned long long)a->seq, (unsigned long long)b->seq);
	CHECK(a->raddr == b->raddr, "%s: raddr 0x%llx, want 0x%llx", what,
	      (unsigned long long)a->raddr, (unsigned long long)b->raddr);
	CHECK(a->rkey == b->rkey, "%s: rkey 0x%x, want 0x%x", what, a->rkey,
	      b->rkey);
	CHECK(a->imm == b->imm, "%s: imm 0x%x, want 0x%x", what, a->imm,
	      b->imm);
	CHECK(a->op1 == b->op1, "%s: op1 0x%llx, want 0x%llx", what,
	      (unsigned long long)a->op1, (unsigned long long)b->op1);
	CHECK(a->op2 == b->op2, "%s: op2 0x%llx, want 0x%llx", what,
	      (unsigned long long)a->op2, (unsigned long long)b->op2);
}

/* Decode buf expecting -EPROTO with a reason, and out left untouched. */
static void expect_proto(const uint8_t *buf, size_t len, const char *what)
{
	struct rdps_tcp_msg out, sentinel;
	const char *why = NULL;
	int ret;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	out = sentinel;
	ret = rdps_tcp_wire_decode(buf, len, &out, &why);
	CHECK(ret == -EPROTO, "%s: decode returned %d, want -EPROTO", what,
	      ret);
	CHECK(why && *why, "%s: -EPROTO without a reason", what);
	CHECK(!memcmp(&out, &sentinel, sizeof(out)),
	      "%s: out written on failure", what);
}

static void expect_ok(const uint8_t *buf, size_t len,
		      const struct rdps_tcp_msg *want, const char *what)
{
	struct rdps_tcp_msg out;
	const char *why = "(none)";
	int ret;

	memset(&out, 0x5a, sizeof(out));
	ret = rdps_tcp_wire_decode(buf, len, &out, &why);
	CHECK(ret == 0, "%s: decode returned %d (%s), want 0", what, ret, why);
	check_msg_eq(&out, want, what);
}

/* Headers ---------------------------------------------------------------- */

static const uint8_t req_types[] = {
	RDPS_TCP_REQ_READ, RDPS_TCP_REQ_WRITE, RDPS_TCP_REQ_WRITE_IMM,
	RDPS_TCP_REQ_FADD, RDPS_TCP_REQ_CSWAP,
};

/* Requests that may carry a payload. */
static int carries_payload(uint8_t type)
{
	return type == RDPS_TCP_REQ_WRITE || type == RDPS_TCP_REQ_WRITE_IMM;
}

static void t_encode_layout(void **state)
{
	uint8_t got[RDPS_TCP_HDR_LEN + 8], want[RDPS_TCP_HDR_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(req_types); i++) {
		struct rdps_tcp_msg m =
			msg_of(req_types[i], 0,
			       carries_payload(req_types[i]) ? 0x00abcdefu : 0);

		/* The encoder writes exactly 48 bytes: the guard stays. */
		memset(got, 0xee, sizeof(got));
		rdps_tcp_wire_encode(&m, got);
		hdr_by_hand(want, &m);
		for (size_t b = 0; b < RDPS_TCP_HDR_LEN; b++)
			CHECK(got[b] == want[b],
			      "type %u: byte %zu is 0x%02x, want 0x%02x",
			      req_types[i], b, got[b], want[b]);
		for (size_t b = RDPS_TCP_HDR_LEN; b < sizeof(got); b++)
			CHECK(got[b] == 0xee, "encoder wrote past 48 bytes");
	}
}

static void t_roundtrip_requests(void **state)
{
	uint8_t buf[RDPS_TCP_HDR_LEN];
	char what[64];

	(void)state;
	for (size_t i = 0; i < sizeof(req_types); i++) {
		uint8_t t = req_types[i];
		struct rdps_tcp_msg m =
			msg_of(t, 0, carries_payload(t) ? 4096 : 0);

		snprintf(what, sizeof(what), "request type %u", t);
		rdps_tcp_wire_encode(&m, buf);
		expect_ok(buf, sizeof(buf), &m, what);
		/* And a hand-made one, independent of the encoder. */
		hdr_by_hand(buf, &m);
		expect_ok(buf, sizeof(buf), &m, what);
	}
}

static void t_roundtrip_responses(void **state)
{
	static const uint8_t ok_status[] = {
		RDPS_TP_WC_SUCCESS,
		RDPS_TP_WC_REM_ACCESS_ERR,
		RDPS_TP_WC_REM_INV_REQ_ERR,
		RDPS_TP_WC_GENERAL_ERR,
	};
	uint8_t buf[RDPS_TCP_HDR_LEN];
	char what[64];

	(void)state;
	for (size_t i = 0; i < sizeof(req_types); i++) {
		for (size_t s = 0; s < sizeof(ok_status); s++) {
			uint8_t t = req_types[i] | RDPS_TCP_RESP;
			struct rdps_tcp_msg m = msg_of(t, ok_status[s], 0);

			snprintf(what, sizeof(what), "response 0x%x status %u",
				 t, ok_status[s]);
			rdps_tcp_wire_encode(&m, buf);
			expect_ok(buf, sizeof(buf), &m, what);
		}
	}
	/* A successful read response carries the data. */
	{
		struct rdps_tcp_msg m =
			msg_of(RDPS_TCP_REQ_READ | RDPS_TCP_RESP, 0, 12345);

		rdps_tcp_wire_encode(&m, buf);
		expect_ok(buf, sizeof(buf), &m, "read response with data");
	}
	/* Extremes of every field survive. */
	{
		struct rdps_tcp_msg m = {
			.type = RDPS_TCP_REQ_WRITE,
			.len = RDPS_TCP_MAX_MSG,
			.seq = UINT64_MAX,
			.raddr = UINT64_MAX,
			.rkey = UINT32_MAX,
			.imm = UINT32_MAX,
			.op1 = UINT64_MAX,
			.op2 = UINT64_MAX,
		};

		rdps_tcp_wire_encode(&m, buf);
		expect_ok(buf, sizeof(buf), &m, "all ones");
		memset(&m, 0, sizeof(m));
		m.type = RDPS_TCP_REQ_FADD;
		rdps_tcp_wire_encode(&m, buf);
		expect_ok(buf, sizeof(buf), &m, "all zeros");
	}
}

static void t_decode_reads_one_header(void **state)
{
	uint8_t buf[RDPS_TCP_HDR_LEN + 100];
	struct rdps_tcp_msg m = msg_of(RDPS_TCP_REQ_WRITE, 0, 100);

	(void)state;
	/* Payload bytes after the header are none of the decoder's business,
	 * even when they look like garbage. */
	memset(buf, 0xff, sizeof(buf));
	rdps_tcp_wire_encode(&m, buf);
	expect_ok(buf, sizeof(buf), &m, "header followed by payload");
}

static void t_truncated(void **state)
{
	uint8_t buf[RDPS_TCP_HDR_LEN];
	struct rdps_tcp_msg m = msg_of(RDPS_TCP_REQ_CSWAP, 0, 0), out, sentinel;
	const char *why = NULL;

	(void)state;
	rdps_tcp_wire_encode(&m, buf);
	memset(&sentinel, 0xa5, sizeof(sentinel));
	for (size_t len = 0; len < RDPS_TCP_HDR_LEN; len++) {
		int ret;

		out = sentinel;
		ret = rdps_tcp_wire_decode(buf, len, &out, &why);
		CHECK(ret == -EAGAIN, "%zu of 48 bytes: %d, want -EAGAIN", len,
		      ret);
		CHECK(!memcmp(&out, &sentinel, sizeof(out)),
		      "%zu bytes: out written", len);
	}
	/* Short and corrupt is still only short: nothing is read yet. */
	buf[0] = 0;
	CHECK(rdps_tcp_wire_decode(buf, 47, &out, &why) == -EAGAIN,
	      "47 corrupt bytes must be -EAGAIN");
}

static void t_bad_magic(void **state)
{
	uint8_t buf[RDPS_TCP_HDR_LEN];
	struct rdps_tcp_msg m = msg_of(RDPS_TCP_REQ_WRITE, 0, 8);
	static const uint8_t bad[] = {0x00, 0xd6, 0xd8, 0x57, 0xff};

	(void)state;
	for (size_t i = 0; i < sizeof(bad); i++) {
		hdr_by_hand(buf, &m);
		buf[0] = bad[i];
		expect_proto(buf, sizeof(buf), "bad magic");
	}
}

static void t_bad_type(void **state)
{
	static const uint8_t bad[] = {
		0x00,
		0x07,
		0x08,
		0x40,
		0x41,
		0x7f,
		RDPS_TCP_RESP,
		RDPS_TCP_RESP | 0x07,
		RDPS_TCP_RESP | 0x41,
		0xff,
	};
	uint8_t buf[RDPS_TCP_HDR_LEN];
	char what[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad); i++) {
		struct rdps_tcp_msg m = msg_of(bad[i], 0, 0);

		m.op1 = 8;
		hdr_by_hand(buf, &m);
		snprintf(what, sizeof(what), "type 0x%02x", bad[i]);
		expect_proto(buf, sizeof(buf), what);
	}
}

static void t_reserved(void **state)
{
	uint8_t buf[RDPS_TCP_HDR_LEN];
	struct rdps_tcp_msg m = msg_of(RDPS_TCP_REQ_FADD, 0, 0);

	(void)state;
	for (unsigned v = 1; v < 256; v <<= 1) {
		hdr_by_hand(buf, &m);
		buf[3] = (uint8_t)v;
		expect_proto(buf, sizeof(buf), "nonzero reserved byte");
	}
}

static void t_oversize(void **state)
{
	uint8_t buf[RDPS_TCP_HDR_LEN];
	struct rdps_tcp_msg m;

	(void)state;
	/* Payload length: the limit is allowed, one more is not. */
	m = msg_of(RDPS_TCP_REQ_WRITE, 0, RDPS_TCP_MAX_MSG);
	hdr_by_hand(buf, &m);
	expect_ok(buf, sizeof(buf), &m, "write of exactly 1 GiB");
	m.len = RDPS_TCP_MAX_MSG + 1;
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "write of 1 GiB + 1");
	m.len = UINT32_MAX;
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "write of 4 GiB - 1");

	m = msg_of(RDPS_TCP_REQ_READ | RDPS_TCP_RESP, 0, RDPS_TCP_MAX_MSG + 1);
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "read response of 1 GiB + 1");

	/* Read length travels in op1 and has the same cap. */
	m = msg_of(RDPS_TCP_REQ_READ, 0, 0);
	m.op1 = RDPS_TCP_MAX_MSG;
	hdr_by_hand(buf, &m);
	expect_ok(buf, sizeof(buf), &m, "read of exactly 1 GiB");
	m.op1 = RDPS_TCP_MAX_MSG + 1ull;
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "read of 1 GiB + 1");
	m.op1 = 1ull << 32; /* would wrap to 0 in a 32-bit length */
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "read of 4 GiB");
}

static void t_inconsistent(void **state)
{
	static const uint8_t never_sent[] = {
		RDPS_TP_WC_CONN_ERR, RDPS_TP_WC_FLUSH_ERR,
		RDPS_TP_WC_LOC_PROT_ERR, RDPS_TP_WC_GENERAL_ERR + 1, 0xff};
	uint8_t buf[RDPS_TCP_HDR_LEN];
	struct rdps_tcp_msg m;

	(void)state;
	/* A request never has a status. */
	for (size_t i = 0; i < sizeof(req_types); i++) {
		m = msg_of(req_types[i], RDPS_TP_WC_REM_ACCESS_ERR, 0);
		hdr_by_hand(buf, &m);
		expect_proto(buf, sizeof(buf), "request with a status");
	}
	/* Only writes carry data. */
	m = msg_of(RDPS_TCP_REQ_READ, 0, 8);
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "read request with a payload");
	m = msg_of(RDPS_TCP_REQ_FADD, 0, 8);
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "fadd request with a payload");
	m = msg_of(RDPS_TCP_REQ_CSWAP, 0, 1);
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "cswap request with a payload");
	/* Responses: only target-decided statuses cross the wire. */
	for (size_t i = 0; i < sizeof(never_sent); i++) {
		m = msg_of(RDPS_TCP_REQ_WRITE | RDPS_TCP_RESP, never_sent[i],
			   0);
		hdr_by_hand(buf, &m);
		expect_proto(buf, sizeof(buf), "response with a local status");
	}
	/* Only a successful read response has data. */
	m = msg_of(RDPS_TCP_REQ_READ | RDPS_TCP_RESP, RDPS_TP_WC_REM_ACCESS_ERR,
		   8);
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "failed read response with data");
	m = msg_of(RDPS_TCP_REQ_WRITE | RDPS_TCP_RESP, 0, 8);
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "write response with data");
	m = msg_of(RDPS_TCP_REQ_FADD | RDPS_TCP_RESP, 0, 8);
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "fadd response with data");
}

static void t_unaligned(void **state)
{
	uint8_t raw[RDPS_TCP_HDR_LEN + 8];
	struct rdps_tcp_msg m = msg_of(RDPS_TCP_REQ_CSWAP, 0, 0);

	(void)state;
	/* Headers sit at any offset of a receive buffer. */
	for (size_t off = 1; off < 8; off++) {
		rdps_tcp_wire_encode(&m, raw + off);
		expect_ok(raw + off, RDPS_TCP_HDR_LEN, &m, "unaligned");
	}
}

/* Handshake -------------------------------------------------------------- */

static struct rdps_tcp_hello hello_of(uint8_t kind, uint32_t priv_len)
{
	struct rdps_tcp_hello h = {
		.version = RDPS_TP_PROTO_VERSION,
		.kind = kind,
		.reason = kind == RDPS_TCP_REJECT ? RDPS_TCP_REJ_TOKEN : 0,
		.token = 0x8182838485868788ull,
		.priv_len = priv_len,
	};

	for (uint32_t i = 0; i < RDPS_TP_PRIV_MAX; i++)
		h.priv[i] = i < priv_len ? (uint8_t)(0xc0 + i) : 0;
	return h;
}

static void check_hello_eq(const struct rdps_tcp_hello *a,
			   const struct rdps_tcp_hello *b, const char *what)
{
	CHECK(a->version == b->version, "%s: version %u, want %u", what,
	      a->version, b->version);
	CHECK(a->kind == b->kind, "%s: kind %u, want %u", what, a->kind,
	      b->kind);
	CHECK(a->reason == b->reason, "%s: reason %u, want %u", what, a->reason,
	      b->reason);
	CHECK(a->token == b->token, "%s: token 0x%llx, want 0x%llx", what,
	      (unsigned long long)a->token, (unsigned long long)b->token);
	CHECK(a->priv_len == b->priv_len, "%s: priv_len %u, want %u", what,
	      a->priv_len, b->priv_len);
	CHECK(!memcmp(a->priv, b->priv, b->priv_len), "%s: priv differs", what);
}

static void expect_hello_proto(const uint8_t *buf, size_t len, const char *what)
{
	struct rdps_tcp_hello out, sentinel;
	const char *why = NULL;
	int ret;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	out = sentinel;
	ret = rdps_tcp_hello_decode(buf, len, &out, &why);
	CHECK(ret == -EPROTO, "%s: hello decode returned %d, want -EPROTO",
	      what, ret);
	CHECK(why && *why, "%s: -EPROTO without a reason", what);
	CHECK(!memcmp(&out, &sentinel, sizeof(out)),
	      "%s: out written on failure", what);
}

/* Gather READ: header limits, then descriptors by hand ----------------- */

static void t_gather_header(void **state)
{
	struct {
		uint32_t len;
		uint64_t op1;
		const char *what;
	} bad[] = {
		{0, 64, "no descriptors"},
		{20, 64, "ragged descriptors"},
		{RDPS_TCP_RANGE_LEN * (RDPS_TP_GATHER_MAX + 1), 64,
		 "one range too many"},
		{32, 0, "total 0"},
		{32, RDPS_TP_GATHER_MAX_BYTES + 1ull, "total over the limit"},
	};
	uint8_t buf[RDPS_TCP_HDR_LEN];
	struct rdps_tcp_msg m = msg_of(RDPS_TCP_REQ_GATHER, 0, 32);

	(void)state;
	m.op1 = RDPS_TP_GATHER_MAX_BYTES;
	hdr_by_hand(buf, &m);
	expect_ok(buf, sizeof(buf), &m, "gather request");
	m = msg_of(RDPS_TCP_RESP | RDPS_TCP_REQ_GATHER, 0, 4096);
	hdr_by_hand(buf, &m);
	expect_ok(buf, sizeof(buf), &m, "gather response with its data");
	m.status = RDPS_TP_WC_REM_ACCESS_ERR;
	hdr_by_hand(buf, &m);
	expect_proto(buf, sizeof(buf), "failed gather response with data");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = msg_of(RDPS_TCP_REQ_GATHER, 0, bad[i].len);
		m.op1 = bad[i].op1;
		hdr_by_hand(buf, &m);
		expect_proto(buf, sizeof(buf), bad[i].what);
	}
}

static void desc_by_hand(uint8_t *p, uint64_t raddr, uint32_t rkey,
			 uint32_t len)
{
	be64_at(p, raddr);
	be32_at(p + 8, rkey);
	be32_at(p + 12, len);
}

static void expect_gather_proto(const uint8_t *buf, size_t len, uint64_t total,
				const char *what)
{
	static struct rdps_tcp_range out[RDPS_TP_GATHER_MAX];
	const char *why = NULL;
	int k = rdps_tcp_gather_decode(buf, len, total, out, &why);

	CHECK(k == -EPROTO, "%s: decode returned %d, want -EPROTO", what, k);
	CHECK(why && *why, "%s: -EPROTO without a reason", what);
}

static void t_gather_desc(void **state)
{
	static uint8_t buf[(RDPS_TP_GATHER_MAX + 1) * RDPS_TCP_RANGE_LEN];
	static struct rdps_tcp_range out[RDPS_TP_GATHER_MAX];
	struct rdps_tcp_range in[2] = {
		{0x1112131415161718ull, 0x21222324u, 0x31},
		{0x4142434445464748ull, 0x51525354u, 0x0f},
	};
	uint8_t enc[2 * RDPS_TCP_RANGE_LEN];
	const char *why = NULL;
	int k;

	(void)state;
	desc_by_hand(buf, in[0].raddr, in[0].rkey, in[0].len);
	desc_by_hand(buf + 16, in[1].raddr, in[1].rkey, in[1].len);
	rdps_tcp_gather_encode(in, 2, enc);
	CHECK(!memcmp(enc, buf, sizeof(enc)),
	      "gather descriptors encode off the layout in tcp.h");
	k = rdps_tcp_gather_decode(buf, 32, 0x40, out, &why);
	CHECK(k == 2, "two descriptors decoded as %d (%s)", k, why ? why : "");
	for (int i = 0; i < 2; i++)
		CHECK(out[i].raddr == in[i].raddr &&
			      out[i].rkey == in[i].rkey &&
			      out[i].len == in[i].len,
		      "descriptor %d decoded wrong", i);

	expect_gather_proto(buf, 32, 0x41, "lengths not adding up");
	expect_gather_proto(buf, 31, 0x40, "ragged list");
	expect_gather_proto(buf, 0, 0, "empty list");
	desc_by_hand(buf + 16, 0x1000, 1, 0);
	expect_gather_proto(buf, 32, 0x31, "a range of length 0");
	/* Two lengths near 2^32 whose sum wraps a 32-bit counter to the
	 * total; and the same total at its 64-bit value, over the limit. */
	desc_by_hand(buf, 0x1000, 1, 0xffffffffu);
	desc_by_hand(buf + 16, 0x2000, 1, 0xffffffffu);
	expect_gather_proto(buf, 32, 0xfffffffeu, "lengths that wrap");
	expect_gather_proto(buf, 32, 0x1fffffffeull, "sum over the limit");
	for (unsigned i = 0; i <= RDPS_TP_GATHER_MAX; i++)
		desc_by_hand(buf + i * RDPS_TCP_RANGE_LEN, 0x1000, 1, 1);
	k = rdps_tcp_gather_decode(buf, RDPS_TP_GATHER_MAX * RDPS_TCP_RANGE_LEN,
				   RDPS_TP_GATHER_MAX, out, &why);
	CHECK(k == (int)RDPS_TP_GATHER_MAX, "the most ranges decoded as %d", k);
	expect_gather_proto(buf, sizeof(buf), RDPS_TP_GATHER_MAX + 1,
			    "one range too many");
}

static void t_hello_layout_roundtrip(void **state)
{
	static const uint8_t kinds[] = {RDPS_TCP_HELLO, RDPS_TCP_ACCEPT,
					RDPS_TCP_REJECT};
	uint8_t got[RDPS_TCP_HELLO_LEN + 8], want[RDPS_TCP_HELLO_LEN];
	char what[64];

	(void)state;
	for (size_t k = 0; k < sizeof(kinds); k++) {
		for (uint32_t n = 0; n <= RDPS_TP_PRIV_MAX; n++) {
			struct rdps_tcp_hello h = hello_of(kinds[k], n), out;
			const char *why = "(none)";
			int ret;

			snprintf(what, sizeof(what), "kind %u priv_len %u",
				 kinds[k], n);
			memset(got, 0xee, sizeof(got));
			rdps_tcp_hello_encode(&h, got);
			hello_by_hand(want, &h);
			for (size_t b = 0; b < RDPS_TCP_HELLO_LEN; b++)
				CHECK(got[b] == want[b],
				      "%s: byte %zu is 0x%02x, want 0x%02x",
				      what, b, got[b], want[b]);
			for (size_t b = RDPS_TCP_HELLO_LEN; b < sizeof(got);
			     b++)
				CHECK(got[b] == 0xee,
				      "%s: encoder wrote past 56 bytes", what);
			memset(&out, 0x5a, sizeof(out));
			ret = rdps_tcp_hello_decode(got, RDPS_TCP_HELLO_LEN,
						    &out, &why);
			CHECK(ret == 0, "%s: decode %d (%s)", what, ret, why);
			check_hello_eq(&out, &h, what);
		}
	}
}

static void t_hello_encode_clamps_priv(void **state)
{
	struct rdps_tcp_hello h = hello_of(RDPS_TCP_HELLO, RDPS_TP_PRIV_MAX);
	uint8_t buf[RDPS_TCP_HELLO_LEN + 8];
	struct rdps_tcp_hello out;
	const char *why = "";

	(void)state;
	/* An oversize priv_len must neither overrun the 56 bytes nor go on
	 * the wire (the decoder would refuse it). */
	h.priv_len = 1000;
	memset(buf, 0xee, sizeof(buf));
	rdps_tcp_hello_encode(&h, buf);
	CHECK(buf[RDPS_TCP_HELLO_LEN] == 0xee, "encoder wrote past 56 bytes");
	CHECK(rdps_tcp_hello_decode(buf, RDPS_TCP_HELLO_LEN, &out, &why) == 0,
	      "clamped hello does not decode: %s", why);
	CHECK(out.priv_len == RDPS_TP_PRIV_MAX, "priv_len %u, want 32",
	      out.priv_len);
}

static void t_hello_truncated(void **state)
{
	struct rdps_tcp_hello h = hello_of(RDPS_TCP_HELLO, 5), out, sentinel;
	uint8_t buf[RDPS_TCP_HELLO_LEN];
	const char *why = NULL;

	(void)state;
	rdps_tcp_hello_encode(&h, buf);
	memset(&sentinel, 0xa5, sizeof(sentinel));
	for (size_t len = 0; len < RDPS_TCP_HELLO_LEN; len++) {
		int ret;

		out = sentinel;
		ret = rdps_tcp_hello_decode(buf, len, &out, &why);
		CHECK(ret == -EAGAIN, "%zu of 56 bytes: %d, want -EAGAIN", len,
		      ret);
		CHECK(!memcmp(&out, &sentinel, sizeof(out)),
		      "%zu bytes: out written", len);
	}
	/* A 48-byte message header is not a hello. */
	CHECK(rdps_tcp_hello_decode(buf, RDPS_TCP_HDR_LEN, &out, &why) ==
		      -EAGAIN,
	      "48 bytes must be -EAGAIN");
}

static void t_hello_bad(void **state)
{
	struct rdps_tcp_hello h = hello_of(RDPS_TCP_HELLO, 4);
	uint8_t buf[RDPS_TCP_HELLO_LEN];
	static const uint8_t bad_kinds[] = {0, RDPS_TCP_REJECT + 1, 0x80, 0xff};
	static const uint32_t bad_priv[] = {RDPS_TP_PRIV_MAX + 1, 0x100,
					    0x80000000u, UINT32_MAX};

	(void)state;
	/* Magic: every byte of it matters. */
	for (int b = 0; b < 4; b++) {
		hello_by_hand(buf, &h);
		buf[b] ^= 0x20;
		expect_hello_proto(buf, sizeof(buf), "bad hello magic");
	}
	/* The data-path magic is not a hello. */
	hello_by_hand(buf, &h);
	buf[0] = RDPS_TCP_MAGIC;
	expect_hello_proto(buf, sizeof(buf), "header magic in a hello");
	for (size_t i = 0; i < sizeof(bad_kinds); i++) {
		hello_by_hand(buf, &h);
		buf[6] = bad_kinds[i];
		expect_hello_proto(buf, sizeof(buf), "unknown hello kind");
	}
	for (size_t i = 0; i < sizeof(bad_priv) / sizeof(*bad_priv); i++) {
		hello_by_hand(buf, &h);
		be32_at(buf + 16, bad_priv[i]);
		expect_hello_proto(buf, sizeof(buf), "priv_len over 32");
	}
}

static void t_hello_other_version(void **state)
{
	static const uint16_t versions[] = {0, RDPS_TP_PROTO_VERSION + 1,
					    0x0100, UINT16_MAX};
	uint8_t buf[RDPS_TCP_HELLO_LEN];

	(void)state;
	/* tcp.h: "a version other than ours decodes fine: the caller
	 * decides" - so the listener can answer REJECT/VERSION instead of
	 * MALFORMED, and the connector can name both versions. The refusal
	 * itself is tested end to end in test_handshake. */
	for (size_t i = 0; i < sizeof(versions) / sizeof(*versions); i++) {
		struct rdps_tcp_hello h = hello_of(RDPS_TCP_HELLO, 3), out;
		const char *why = "";
		int ret;

		h.version = versions[i];
		hello_by_hand(buf, &h);
		ret = rdps_tcp_hello_decode(buf, sizeof(buf), &out, &why);
		CHECK(ret == 0, "version %u: decode %d (%s)", versions[i], ret,
		      why);
		CHECK(out.version == versions[i], "version %u decoded as %u",
		      versions[i], out.version);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_encode_layout),
		cmocka_unit_test(t_roundtrip_requests),
		cmocka_unit_test(t_roundtrip_responses),
		cmocka_unit_test(t_decode_reads_one_header),
		cmocka_unit_test(t_truncated),
		cmocka_unit_test(t_bad_magic),
		cmocka_unit_test(t_bad_type),
		cmocka_unit_test(t_reserved),
		cmocka_unit_test(t_oversize),
		cmocka_unit_test(t_inconsistent),
		cmocka_unit_test(t_unaligned),
		cmocka_unit_test(t_gather_header),
		cmocka_unit_test(t_gather_desc),
		cmocka_unit_test(t_hello_layout_roundtrip),
		cmocka_unit_test(t_hello_encode_clamps_priv),
		cmocka_unit_test(t_hello_truncated),
		cmocka_unit_test(t_hello_bad),
		cmocka_unit_test(t_hello_other_version),
	};

	return cmocka_run_group_tests_name("tcp wire codec", tests, NULL, NULL);
}
