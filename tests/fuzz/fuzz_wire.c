/* SPDX-License-Identifier: MIT */
/*
 * fuzz_wire.c - libFuzzer target over the tcp transport's decoders,
 * rdps_tcp_wire_decode() and rdps_tcp_hello_decode(), which see every byte
 * a peer sends before anything else does, rdps_tcp_gather_decode(), which
 * reads a gather READ's range descriptors, and tcp_rkey_unpack(), which
 * reads the remote keys peers hand out inside their handshake blobs.
 *
 * Besides "no crash, no out-of-bounds read" (ASan), each input checks the
 * decoders' contract and aborts on a breach:
 *   - -EAGAIN exactly when the input is shorter than the message;
 *   - -EPROTO always with a reason string;
 *   - an accepted header obeys every limit tcp.h states and re-encodes to
 *     the very bytes it was decoded from (nothing is lost or invented);
 *   - accepted gather descriptors (the input past its first 8 bytes, those
 *     being the request's total) are 1..RDPS_TP_GATHER_MAX, none empty,
 *     adding up to the total, within RDPS_TP_GATHER_MAX_BYTES, and
 *     re-encode to the same bytes;
 *   - an accepted hello has priv_len <= 32 and re-encodes to the same
 *     magic, version, kind, reason, token, priv_len and private data;
 *   - an accepted remote key has a nonzero length, does not wrap around
 *     the address space and carries a nonzero generation (key >> 16).
 * Verdict (fuzz.h): accepted when the header or the hello decoder accepts
 * the input at offset 0, refused when neither does and one of them says
 * -EPROTO (the other may want more bytes).
 * Built with clang -fsanitize=fuzzer,address under RDPS_FUZZ; replay.c
 * feeds the seed corpus through the same function in ordinary builds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tcp/tcp.h"

int fuzz_verdict;

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_wire", what, size);
}

static int fuzz_header(const uint8_t *data, size_t size)
{
	struct rdps_tcp_msg m;
	uint8_t again[RDPS_TCP_HDR_LEN];
	const char *why = NULL;
	unsigned req;
	int ret;

	ret = rdps_tcp_wire_decode(data, size, &m, &why);
	if (ret == -EAGAIN) {
		if (size >= RDPS_TCP_HDR_LEN)
			breach("header: -EAGAIN on a full header", size);
		return ret;
	}
	if (size < RDPS_TCP_HDR_LEN)
		breach("header: decoded a short buffer", size);
	if (ret == -EPROTO) {
		if (!why || !*why)
			breach("header: -EPROTO without a reason", size);
		return ret;
	}
	if (ret != 0)
		breach("header: unexpected return value", size);

	req = m.type & ~(unsigned)RDPS_TCP_RESP;
	if (req < RDPS_TCP_REQ_READ || req > RDPS_TCP_REQ_GATHER)
		breach("header: accepted an unknown type", size);
	if (m.len > RDPS_TCP_MAX_MSG)
		breach("header: accepted a payload over 1 GiB", size);
	if (!(m.type & RDPS_TCP_RESP)) {
		if (m.status)
			breach("header: accepted a request with a status",
			       size);
		if (m.len && req != RDPS_TCP_REQ_WRITE &&
		    req != RDPS_TCP_REQ_WRITE_IMM && req != RDPS_TCP_REQ_GATHER)
			breach("header: accepted a payload on a request "
			       "without one",
			       size);
		if (req == RDPS_TCP_REQ_READ && m.op1 > RDPS_TCP_MAX_MSG)
			breach("header: accepted a read over 1 GiB", size);
		if (req == RDPS_TCP_REQ_GATHER &&
		    (!m.len || m.len % RDPS_TCP_RANGE_LEN ||
		     m.len / RDPS_TCP_RANGE_LEN > RDPS_TP_GATHER_MAX ||
		     !m.op1 || m.op1 > RDPS_TP_GATHER_MAX_BYTES))
			breach("header: accepted a gather request over its "
			       "limits",
			       size);
	} else if (m.len &&
		   ((req != RDPS_TCP_REQ_READ && req != RDPS_TCP_REQ_GATHER) ||
		    m.status)) {
		breach("header: accepted a payload on a response without one",
		       size);
	}
	rdps_tcp_wire_encode(&m, again);
	if (memcmp(again, data, RDPS_TCP_HDR_LEN))
		breach("header: re-encoding differs from the input", size);
	return 0;
}

static int fuzz_hello(const uint8_t *data, size_t size)
{
	struct rdps_tcp_hello h;
	uint8_t again[RDPS_TCP_HELLO_LEN];
	const char *why = NULL;
	int ret;

	ret = rdps_tcp_hello_decode(data, size, &h, &why);
	if (ret == -EAGAIN) {
		if (size >= RDPS_TCP_HELLO_LEN)
			breach("hello: -EAGAIN on a full hello", size);
		return ret;
	}
	if (size < RDPS_TCP_HELLO_LEN)
		breach("hello: decoded a short buffer", size);
	if (ret == -EPROTO) {
		if (!why || !*why)
			breach("hello: -EPROTO without a reason", size);
		return ret;
	}
	if (ret != 0)
		breach("hello: unexpected return value", size);
	if (h.priv_len > RDPS_TP_PRIV_MAX)
		breach("hello: accepted priv_len over 32", size);
	if (h.kind < RDPS_TCP_HELLO || h.kind > RDPS_TCP_REJECT)
		breach("hello: accepted an unknown kind", size);
	rdps_tcp_hello_encode(&h, again);
	/* Bytes 20..23 (zero on the wire) and the priv bytes past priv_len
	 * are not carried by struct rdps_tcp_hello. */
	if (memcmp(again, data, 20) ||
	    memcmp(again + 24, data + 24, h.priv_len))
		breach("hello: re-encoding differs from the input", size);
	return 0;
}

static void fuzz_gather(const uint8_t *data, size_t size)
{
	static struct rdps_tcp_range r[RDPS_TP_GATHER_MAX];
	static uint8_t again[RDPS_TP_GATHER_MAX * RDPS_TCP_RANGE_LEN];
	const char *why = NULL;
	uint64_t total = 0, sum = 0;
	int k;

	if (size < 8)
		return;
	for (int i = 0; i < 8; i++)
		total = total << 8 | data[i];
	k = rdps_tcp_gather_decode(data + 8, size - 8, total, r, &why);
	if (k < 0) {
		if (k != -EPROTO || !why || !*why)
			breach("gather: refused without -EPROTO and a reason",
			       size);
		return;
	}
	if (!k || (unsigned)k > RDPS_TP_GATHER_MAX ||
	    (size_t)k * RDPS_TCP_RANGE_LEN != size - 8)
		breach("gather: accepted a bad descriptor count", size);
	for (int i = 0; i < k; i++) {
		if (!r[i].len)
			breach("gather: accepted an empty range", size);
		sum += r[i].len;
	}
	if (sum != total || sum > RDPS_TP_GATHER_MAX_BYTES)
		breach("gather: accepted lengths that do not add up", size);
	rdps_tcp_gather_encode(r, (unsigned)k, again);
	if (memcmp(again, data + 8, size - 8))
		breach("gather: re-encoding differs from the input", size);
}

static void fuzz_rkey(const uint8_t *data, size_t size)
{
	struct rdps_tp_rkey_wire w;
	struct rdps_tp_rkey k;

	if (size < sizeof(w))
		return;
	memcpy(&w, data, sizeof(w));
	if (tcp_rkey_unpack(NULL, &w, &k))
		return;
	if (!k.len || k.addr + k.len < k.addr || !(k.key >> 16))
		breach("rkey: accepted a key that is empty, wraps or has "
		       "generation 0",
		       size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int hdr = fuzz_header(data, size);
	int hello = fuzz_hello(data, size);

	if (!hdr || !hello)
		fuzz_verdict = FUZZ_ACCEPT;
	else if (hdr == -EPROTO || hello == -EPROTO)
		fuzz_verdict = FUZZ_REJECT;
	else
		fuzz_verdict = FUZZ_NONE;
	fuzz_rkey(data, size);
	fuzz_gather(data, size);
	/* A stream holds several headers back to back: the second one
	 * starts at an arbitrary, usually unaligned, offset. */
	if (size > RDPS_TCP_HDR_LEN) {
		fuzz_header(data + RDPS_TCP_HDR_LEN, size - RDPS_TCP_HDR_LEN);
		fuzz_hello(data + 1, size - 1);
	}
	return 0;
}
