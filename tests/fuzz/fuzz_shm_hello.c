/* SPDX-License-Identifier: MIT */
/*
 * fuzz_shm_hello.c - libFuzzer target over what an shm peer sends in the
 * handshake: the hello datagram (shm_hello_parse), the heap geometry it
 * announces (shm_hello_geometry_check), the header of the heap it shares
 * (shm_heap_hdr_check) and the remote keys in its blobs (shm_rkey_unpack).
 *
 * Input: byte 0 holds flags (bit 0: the kernel truncated the datagram;
 * bit 1: the datagram is all the rest of the input, else at most 88
 * bytes of it). Then the datagram; then the peer's heap header (zero
 * padded), then 8 bytes of ring size. The first 24 bytes after byte 0
 * are also a remote key. Each input checks:
 *   - a parsed hello has our magic and version, priv_len <= 32, and came
 *     from an untruncated datagram of exactly 88 bytes; a refused one
 *     left version 0 unless the magic was ours;
 *   - a header accepted for a hello whose geometry passed puts the MR
 *     table [mrt_off, +mrt_max entries) after the header and before
 *     data_off, data_off page-aligned below heap_size, and the ring
 *     [ring_off, +ring_bytes) between data_off and heap_size, all without
 *     wrapping: every later access through the mapping stays inside it;
 *   - an accepted remote key is non-empty and does not wrap.
 * Verdict (fuzz.h): whether shm_hello_parse() accepted the datagram.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "shm/shm.h"

int fuzz_verdict;

#define PAGE 4096u

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_shm_hello", what, size);
}

/* a + b <= lim without wrapping. */
static int fits(uint64_t a, uint64_t b, uint64_t lim)
{
	return a <= lim && b <= lim - a;
}

static void fuzz_hdr(const struct shm_hello *h, const uint8_t *p, size_t n,
		     size_t size)
{
	struct shm_hdr hdr;
	uint64_t ring_bytes = 0, mrt_bytes;

	memset(&hdr, 0, sizeof(hdr));
	memcpy(&hdr, p, n < sizeof(hdr) ? n : sizeof(hdr));
	if (n > sizeof(hdr))
		memcpy(&ring_bytes, p + sizeof(hdr),
		       n - sizeof(hdr) < 8 ? n - sizeof(hdr) : 8);
	if (shm_heap_hdr_check(h, &hdr, PAGE, ring_bytes))
		return;
	mrt_bytes = (uint64_t)hdr.mrt_max * sizeof(struct shm_mrt_ent);
	if (hdr.mrt_off < sizeof(hdr) ||
	    !fits(hdr.mrt_off, mrt_bytes, hdr.data_off))
		breach("hdr: accepted an MR table outside the control area",
		       size);
	if (hdr.data_off % PAGE || hdr.data_off >= h->heap_size)
		breach("hdr: accepted a bad data offset", size);
	if (h->ring_off < hdr.data_off ||
	    !fits(h->ring_off, ring_bytes, h->heap_size))
		breach("hdr: accepted a ring outside the data area", size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shm_hello h;
	struct rdps_tp_rkey_wire w;
	struct rdps_tp_rkey k;
	size_t len;
	int trunc, ret;

	fuzz_verdict = FUZZ_NONE;
	if (!size)
		return 0;
	trunc = data[0] & 1;
	len = size - 1;
	if (!(data[0] & 2) && len > sizeof(h))
		len = sizeof(h);

	memset(&h, 0x5a, sizeof(h));
	ret = shm_hello_parse(data + 1, len, trunc, &h);
	if (ret) {
		fuzz_verdict = FUZZ_REJECT;
		if (ret != -EPROTO)
			breach("hello: failed with something else than -EPROTO",
			       size);
		if (h.version && h.magic != SHM_HELLO_MAGIC)
			breach("hello: a version from a foreign magic", size);
	} else {
		fuzz_verdict = FUZZ_ACCEPT;
		if (h.magic != SHM_HELLO_MAGIC ||
		    h.version != RDPS_TP_PROTO_VERSION)
			breach("hello: accepted a foreign magic or version",
			       size);
		if (trunc || len != sizeof(h))
			breach("hello: accepted a datagram of the wrong size",
			       size);
		if (h.priv_len > RDPS_TP_PRIV_MAX)
			breach("hello: accepted priv_len over 32", size);
		if (!shm_hello_geometry_check(&h, PAGE))
			fuzz_hdr(&h, data + 1 + len, size - 1 - len, size);
	}

	if (size - 1 >= sizeof(w)) {
		memcpy(&w, data + 1, sizeof(w));
		if (!shm_rkey_unpack(NULL, &w, &k) &&
		    (!k.len || k.addr + k.len < k.addr))
			breach("rkey: accepted an empty or wrapping key", size);
	}
	return 0;
}
