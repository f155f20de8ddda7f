/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ps_hello.c - libFuzzer target over the parameter server's handshake
 * as a peer sends it (src/ps_proto.c): a worker's hello at the shard
 * (ps_whello_parse, then ps_whello_fits), a shard's hello and welcome at
 * the worker (ps_lhello_parse, ps_welcome_parse).
 *
 * Input: byte 0 picks the parser (0 worker hello, 1 shard hello, 2
 * welcome; modulo 3); byte 1 the job's worker count minus one (1..256);
 * byte 2 the shard index (low 4 bits) and, for the shard hello and the
 * welcome, the shard count beyond it (high 4 bits: nshards = shard + 1 +
 * that); byte 3 the
 * size of the reason buffer (0, 1, 16 or 200 bytes, allocated to exactly
 * that); the rest is the message, in a buffer of exactly its length.
 * Each input checks:
 *   - the return is 0 or a negative errno the header names (a welcome's
 *     refusal: -1..-4095), never positive;
 *   - a failure zeroes the output and leaves a NUL-terminated reason;
 *   - a worker hello accepted and fitting has our magic and a rank below
 *     the worker count it states, which is the job's;
 *   - a shard hello accepted is of the shard and count asked for;
 *   - a welcome accepted has 1..PS_NSLOTS sub-slots of a size the worker
 *     can hold a message in, and a clock region large enough for the
 *     job's workers and shards.
 * Verdict (fuzz.h): whether the parser picked accepted the message (the
 * worker hello: parsed and fitting the job).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ps_proto.h"
#include "rdps_base.h"

int fuzz_verdict;

#define HDR 4

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_ps_hello", what, size);
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The common contract of a failure: out zeroed, a terminated reason. */
static void check_fail(const void *out, size_t out_len, const char *why,
		       size_t why_len, size_t size)
{
	if (!all_zero(out, out_len))
		breach("failed without zeroing its output", size);
	if (why_len && !memchr(why, '\0', why_len))
		breach("failed without a NUL-terminated reason", size);
}

static unsigned be16_at(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static int run_whello(const uint8_t *buf, size_t len, unsigned workers,
		      char *why, size_t why_len, size_t size)
{
	struct ps_whello_info h;
	uint32_t magic = 0;
	int ret;

	memset(&h, 0x5a, sizeof(h)); /* the parser must not trust it */
	ret = ps_whello_parse(buf, len, &h, why, why_len);
	if (ret) {
		if (ret != -EPROTO)
			breach("worker hello: refused with another errno",
			       size);
		check_fail(&h, sizeof(h), why, why_len, size);
		return ret;
	}
	if (len >= sizeof(magic))
		memcpy(&magic, buf, sizeof(magic));
	if (len < sizeof(struct ps_whello) ||
	    rdps_be32toh(magic) != PS_MAGIC_WORKER)
		breach("worker hello: accepted a short one or a foreign magic",
		       size);
	if (h.rank != be16_at(buf + 4) || h.workers != be16_at(buf + 6))
		breach("worker hello: rank or count differs from the wire",
		       size);
	ret = ps_whello_fits(&h, workers, why, why_len);
	if (ret && ret != -EINVAL)
		breach("worker hello: misfit with another errno", size);
	if (ret && why_len && !memchr(why, '\0', why_len))
		breach("worker hello: misfit without a terminated reason",
		       size);
	if (!ret && (h.workers != workers || h.rank >= workers))
		breach("worker hello: let in a rank outside the job", size);
	return ret;
}

static int run_lhello(const uint8_t *buf, size_t len, unsigned shard,
		      unsigned nshards, char *why, size_t why_len, size_t size)
{
	struct ps_lhello_info h;
	int ret;

	memset(&h, 0x5a, sizeof(h));
	ret = ps_lhello_parse(buf, len, shard, nshards, &h, why, why_len);
	if (ret) {
		if (ret != -EPROTO && ret != -EINVAL)
			breach("shard hello: refused with another errno", size);
		check_fail(&h, sizeof(h), why, why_len, size);
		return ret;
	}
	if (len < sizeof(struct ps_lhello) || h.shard != shard ||
	    h.nshards != nshards)
		breach("shard hello: accepted a short one or another shard",
		       size);
	return 0;
}

static int run_welcome(const uint8_t *buf, size_t len, unsigned shard,
		       unsigned nshards, unsigned workers, char *why,
		       size_t why_len, size_t size)
{
	struct ps_welcome_info w;
	int ret;

	memset(&w, 0x5a, sizeof(w));
	ret = ps_welcome_parse(buf, len, shard, nshards, workers, &w, why,
			       why_len);
	if (ret) {
		if (ret < -4095)
			breach("welcome: refused with no errno", size);
		check_fail(&w, sizeof(w), why, why_len, size);
		return ret;
	}
	if (len < sizeof(struct ps_welcome) || w.nslots < 1 ||
	    w.nslots > PS_NSLOTS || w.slot_bytes < sizeof(struct ps_msg) + 64 ||
	    w.slot_bytes > (1ull << 30))
		breach("welcome: accepted sub-slots the worker cannot use",
		       size);
	if (rdps_be64toh(w.clock.len_be) <
	    ps_clock_region_len(workers, nshards))
		breach("welcome: accepted a clock region too small for the job",
		       size);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t why_lens[] = {0, 1, 16, 200};
	unsigned workers, shard, nshards;
	size_t why_len, len;
	uint8_t *buf;
	char *why;
	int ret;

	fuzz_verdict = FUZZ_NONE;
	if (size < HDR)
		return 0;
	workers = 1u + data[1];
	shard = data[2] & 0xfu;
	nshards = shard + 1u + (data[2] >> 4);
	why_len = why_lens[data[3] % 4];
	len = size - HDR;
	buf = malloc(len ? len : 1);
	why = malloc(why_len ? why_len : 1);
	if (!buf || !why)
		goto out;
	memcpy(buf, data + HDR, len);
	memset(why, 0x5a, why_len ? why_len : 1);

	switch (data[0] % 3) {
	case 0:
		ret = run_whello(buf, len, workers, why, why_len, size);
		break;
	case 1:
		ret = run_lhello(buf, len, shard, nshards, why, why_len, size);
		break;
	default:
		ret = run_welcome(buf, len, shard, nshards, workers, why,
				  why_len, size);
		break;
	}
	if (ret > 0)
		breach("returned a positive value", size);
	fuzz_verdict = ret ? FUZZ_REJECT : FUZZ_ACCEPT;
out:
	free(why);
	free(buf);
	return 0;
}
