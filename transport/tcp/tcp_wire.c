/* SPDX-License-Identifier: MIT */
/*
 * tcp_wire.c - codec of the tcp transport's headers and handshake. Pure
 * functions over (buf, len) so a fuzzer can drive the decoders directly.
 */
#include <string.h>

#include "tcp.h"

_Static_assert(RDPS_TCP_HDR_LEN == 48, "tcp header size");
_Static_assert(RDPS_TCP_HELLO_LEN == 24 + RDPS_TP_PRIV_MAX, "hello size");
_Static_assert(RDPS_TCP_MAX_MSG <= UINT32_MAX, "len field is 32-bit");

static void put_be64(uint8_t *p, uint64_t v)
{
	v = rdps_htobe64(v);
	memcpy(p, &v, 8);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	v = rdps_htobe32(v);
	memcpy(p, &v, 4);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return rdps_be64toh(v);
}

static uint32_t get_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return rdps_be32toh(v);
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void rdps_tcp_wire_encode(const struct rdps_tcp_msg *m, void *buf)
{
	uint8_t *p = buf;

	p[0] = RDPS_TCP_MAGIC;
	p[1] = m->type;
	p[2] = m->status;
	p[3] = 0;
	put_be32(p + 4, m->len);
	put_be64(p + 8, m->seq);
	put_be64(p + 16, m->raddr);
	put_be32(p + 24, m->rkey);
	put_be32(p + 28, m->imm);
	put_be64(p + 32, m->op1);
	put_be64(p + 40, m->op2);
}

static int status_ok_on_wire(unsigned s)
{
	/* Only what a target can decide; connection and local errors are
	 * never sent. */
	return s == RDPS_TP_WC_SUCCESS || s == RDPS_TP_WC_REM_ACCESS_ERR ||
	       s == RDPS_TP_WC_REM_INV_REQ_ERR || s == RDPS_TP_WC_GENERAL_ERR;
}

int rdps_tcp_wire_decode(const void *buf, size_t len, struct rdps_tcp_msg *out,
			 const char **why)
{
	const uint8_t *p = buf;
	struct rdps_tcp_msg m;
	unsigned req;

	if (len < RDPS_TCP_HDR_LEN)
		return -EAGAIN;
	if (p[0] != RDPS_TCP_MAGIC) {
		*why = "bad magic byte (not an rdps tcp stream or out of sync)";
		return -EPROTO;
	}
	if (p[3] != 0) {
		*why = "nonzero reserved byte";
		return -EPROTO;
	}
	m.type = p[1];
	m.status = p[2];
	m.len = get_be32(p + 4);
	m.seq = get_be64(p + 8);
	m.raddr = get_be64(p + 16);
	m.rkey = get_be32(p + 24);
	m.imm = get_be32(p + 28);
	m.op1 = get_be64(p + 32);
	m.op2 = get_be64(p + 40);

	req = m.type & ~(unsigned)RDPS_TCP_RESP;
	if (req < RDPS_TCP_REQ_READ || req > RDPS_TCP_REQ_GATHER) {
		*why = "unknown message type";
		return -EPROTO;
	}
	if (m.len > RDPS_TCP_MAX_MSG) {
		*why = "payload length over the 1 GiB message limit";
		return -EPROTO;
	}
	if (!(m.type & RDPS_TCP_RESP)) {
		if (m.status) {
			*why = "request with a status";
			return -EPROTO;
		}
		switch (req) {
		case RDPS_TCP_REQ_READ:
			if (m.len) {
				*why = "read request with a payload";
				return -EPROTO;
			}
			if (m.op1 > RDPS_TCP_MAX_MSG) {
				*why = "read length over the 1 GiB limit";
				return -EPROTO;
			}
			break;
		case RDPS_TCP_REQ_FADD:
		case RDPS_TCP_REQ_CSWAP:
			if (m.len) {
				*why = "atomic request with a payload";
				return -EPROTO;
			}
			break;
		case RDPS_TCP_REQ_GATHER:
			if (!m.len || m.len % RDPS_TCP_RANGE_LEN ||
			    m.len / RDPS_TCP_RANGE_LEN > RDPS_TP_GATHER_MAX) {
				*why = "gather request with a descriptor list "
				       "that is empty, ragged or over "
				       "RDPS_TP_GATHER_MAX ranges";
				return -EPROTO;
			}
			if (!m.op1 || m.op1 > RDPS_TP_GATHER_MAX_BYTES) {
				*why = "gather length over "
				       "RDPS_TP_GATHER_MAX_BYTES";
				return -EPROTO;
			}
			break;
		default:
			break;
		}
	} else {
		if (!status_ok_on_wire(m.status)) {
			*why = "response with an unknown status";
			return -EPROTO;
		}
		if (m.len &&
		    ((req != RDPS_TCP_REQ_READ && req != RDPS_TCP_REQ_GATHER) ||
		     m.status)) {
			*why = "payload on a response that has none";
			return -EPROTO;
		}
	}
	*out = m;
	return 0;
}

void rdps_tcp_gather_encode(const struct rdps_tcp_range *r, unsigned k,
			    void *buf)
{
	uint8_t *p = buf;

	for (unsigned i = 0; i < k; i++, p += RDPS_TCP_RANGE_LEN) {
		put_be64(p, r[i].raddr);
		put_be32(p + 8, r[i].rkey);
		put_be32(p + 12, r[i].len);
	}
}

int rdps_tcp_gather_decode(const void *buf, size_t len, uint64_t total,
			   struct rdps_tcp_range *out, const char **why)
{
	const uint8_t *p = buf;
	uint64_t sum = 0;
	size_t k = len / RDPS_TCP_RANGE_LEN;

	if (!k || len % RDPS_TCP_RANGE_LEN || k > RDPS_TP_GATHER_MAX) {
		*why = "gather request with a descriptor list that is empty, "
		       "ragged or over RDPS_TP_GATHER_MAX ranges";
		return -EPROTO;
	}
	for (size_t i = 0; i < k; i++, p += RDPS_TCP_RANGE_LEN) {
		out[i].raddr = get_be64(p);
		out[i].rkey = get_be32(p + 8);
		out[i].len = get_be32(p + 12);
		if (!out[i].len) {
			*why = "gather range of length 0";
			return -EPROTO;
		}
		/* At most RDPS_TP_GATHER_MAX 32-bit lengths: no wrap. */
		sum += out[i].len;
	}
	if (sum != total || sum > RDPS_TP_GATHER_MAX_BYTES) {
		*why = "gather ranges whose lengths do not add up to the "
		       "request's, or over RDPS_TP_GATHER_MAX_BYTES";
		return -EPROTO;
	}
	return (int)k;
}

void rdps_tcp_hello_encode(const struct rdps_tcp_hello *h, void *buf)
{
	uint8_t *p = buf;
	uint32_t n =
		h->priv_len > RDPS_TP_PRIV_MAX ? RDPS_TP_PRIV_MAX : h->priv_len;

	memset(p, 0, RDPS_TCP_HELLO_LEN);
	put_be32(p, RDPS_TCP_HELLO_MAGIC);
	put_be16(p + 4, h->version);
	p[6] = h->kind;
	p[7] = h->reason;
	put_be64(p + 8, h->token);
	put_be32(p + 16, n);
	memcpy(p + 24, h->priv, n);
}

int rdps_tcp_hello_decode(const void *buf, size_t len,
			  struct rdps_tcp_hello *out, const char **why)
{
	const uint8_t *p = buf;
	struct rdps_tcp_hello h;

	if (len < RDPS_TCP_HELLO_LEN)
		return -EAGAIN;
	if (get_be32(p) != RDPS_TCP_HELLO_MAGIC) {
		*why = "bad handshake magic (not an rdps tcp peer)";
		return -EPROTO;
	}
	memset(&h, 0, sizeof(h));
	h.version = get_be16(p + 4);
	h.kind = p[6];
	h.reason = p[7];
	h.token = get_be64(p + 8);
	h.priv_len = get_be32(p + 16);
	if (h.kind < RDPS_TCP_HELLO || h.kind > RDPS_TCP_REJECT) {
		*why = "unknown handshake message kind";
		return -EPROTO;
	}
	if (h.priv_len > RDPS_TP_PRIV_MAX) {
		*why = "handshake private data over 32 bytes";
		return -EPROTO;
	}
	memcpy(h.priv, p + 24, h.priv_len);
	*out = h;
	return 0;
}
