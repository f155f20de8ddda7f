/* SPDX-License-Identifier: MIT */
/*
 * ps_proto.c - parsing the handshake of ps_proto.h: a worker's hello at the
 * shard, a shard's hello and welcome at the worker. Pure: bytes in, a
 * verdict and a reason out, so the fuzz target needs no transport.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ps_proto.h"
#include "rdps_base.h"

/* A big-endian u16 of the wire, whatever the host's order. */
static unsigned ps_be16(uint16_t v)
{
	uint8_t b[2];

	memcpy(b, &v, sizeof(b));
	return (unsigned)b[0] << 8 | b[1];
}

static int ps_fail(int ret, void *out, size_t out_len, char *why,
		   size_t why_len, const char *fmt, ...) RDPS_PRINTF(6, 7);
static int ps_fail(int ret, void *out, size_t out_len, char *why,
		   size_t why_len, const char *fmt, ...)
{
	va_list ap;

	memset(out, 0, out_len);
	if (why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return ret;
}

int ps_whello_parse(const void *buf, size_t len, struct ps_whello_info *out,
		    char *why, size_t why_len)
{
	struct ps_whello h;

	if (len < sizeof(h))
		return ps_fail(-EPROTO, out, sizeof(*out), why, why_len,
			       "sent %zu bytes of hello, not %zu: not an rdps "
			       "worker?",
			       len, sizeof(h));
	memcpy(&h, buf, sizeof(h));
	if (rdps_be32toh(h.magic_be) != PS_MAGIC_WORKER)
		return ps_fail(-EPROTO, out, sizeof(*out), why, why_len,
			       "sent hello magic 0x%08x: not an rdps worker",
			       rdps_be32toh(h.magic_be));
	out->rank = ps_be16(h.rank_be);
	out->workers = ps_be16(h.workers_be);
	out->reply = h.reply;
	return 0;
}

int ps_whello_fits(const struct ps_whello_info *h, unsigned workers, char *why,
		   size_t why_len)
{
	if (h->workers != workers) {
		if (why_len)
			snprintf(why, why_len,
				 "worker %u: it counts %u workers, this shard "
				 "%u (start everyone with the same count)",
				 h->rank, h->workers, workers);
		return -EINVAL;
	}
	if (h->rank >= workers) {
		if (why_len)
			snprintf(why, why_len,
				 "worker rank %u: ranks are 0..%u", h->rank,
				 workers - 1);
		return -EINVAL;
	}
	return 0;
}

int ps_lhello_parse(const void *buf, size_t len, unsigned shard,
		    unsigned nshards, struct ps_lhello_info *out, char *why,
		    size_t why_len)
{
	struct ps_lhello h;
	unsigned s, n;

	if (len < sizeof(h))
		return ps_fail(-EPROTO, out, sizeof(*out), why, why_len,
			       "sent %zu bytes of hello, expected %zu: is it "
			       "an rdps-server?",
			       len, sizeof(h));
	memcpy(&h, buf, sizeof(h));
	if (rdps_be32toh(h.magic_be) != PS_MAGIC_LISTENER)
		return ps_fail(-EPROTO, out, sizeof(*out), why, why_len,
			       "sent a bad hello magic 0x%x: is it an "
			       "rdps-server?",
			       rdps_be32toh(h.magic_be));
	s = ps_be16(h.shard_be);
	n = ps_be16(h.nshards_be);
	if (s != shard || n != nshards)
		return ps_fail(-EINVAL, out, sizeof(*out), why, why_len,
			       "is shard %u of %u but is listed as shard %u "
			       "of %u: list the shard urls in shard order",
			       s, n, shard, nshards);
	out->shard = s;
	out->nshards = n;
	out->dir = h.dir;
	return 0;
}

int ps_welcome_parse(const void *buf, size_t len, unsigned shard,
		     unsigned nshards, unsigned workers,
		     struct ps_welcome_info *out, char *why, size_t why_len)
{
	struct ps_welcome w;
	uint32_t status;
	uint64_t clock_len, need;

	if (len < sizeof(w))
		return ps_fail(-EPROTO, out, sizeof(*out), why, why_len,
			       "sent a welcome of %zu bytes, not %zu", len,
			       sizeof(w));
	memcpy(&w, buf, sizeof(w));
	status = rdps_be32toh(w.status_be);
	/* A status is an errno; anything else must not become a return
	 * value that reads as success or as another error. */
	if (status > 4095)
		return ps_fail(-EPROTO, out, sizeof(*out), why, why_len,
			       "sent a welcome with status %u, no errno",
			       status);
	if (status)
		return ps_fail(-(int)status, out, sizeof(*out), why, why_len,
			       "refused this worker: %s",
			       strerror((int)status));
	out->nslots = rdps_be32toh(w.nslots_be);
	out->slot_bytes = rdps_be64toh(w.slot_bytes_be);
	if (out->nslots < 1 || out->nslots > PS_NSLOTS ||
	    out->slot_bytes < sizeof(struct ps_msg) + 64 ||
	    out->slot_bytes > (1ull << 30))
		return ps_fail(
			-EPROTO, out, sizeof(*out), why, why_len,
			"sent a bad welcome (%u sub-slots of %llu "
			"bytes)",
			rdps_be32toh(w.nslots_be),
			(unsigned long long)rdps_be64toh(w.slot_bytes_be));
	clock_len = rdps_be64toh(w.clock.len_be);
	/* Every shard holds clock words: shard 0 the flat table and the
	 * tree's root, each shard its share of the tree's groups. */
	need = ps_clock_region_len(workers, nshards ? nshards : 1);
	if (clock_len < need)
		return ps_fail(-EPROTO, out, sizeof(*out), why, why_len,
			       "sent a clock region key of %llu bytes, "
			       "expected %llu for %u workers and %u shards",
			       (unsigned long long)clock_len,
			       (unsigned long long)need, workers, nshards);
	out->slots = w.slots;
	out->clock = w.clock;
	return 0;
}
