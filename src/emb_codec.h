/* SPDX-License-Identifier: MIT */
/*
 * emb_codec.h - the pure logic of embedding tables that the shard and the
 * worker must agree on bit for bit (ps_proto.h, "Embedding tables"): key
 * placement and bucket hashes, slot and row checksums, initial values, and
 * the decoders of buckets and rows as read from a shard's memory.
 *
 * Pure: no transport, no allocation, no logging, thread-safe. The decoders
 * take remote bytes and their length and trust nothing in them: a corrupt
 * bucket or row is a return value, never a crash (tests/test_emb.c, and
 * the fuzz target tests/fuzz/fuzz_emb.c).
 */
#ifndef RDPS_EMB_CODEC_H
#define RDPS_EMB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "ps_proto.h"

/* The splitmix64 finalizer: a bijection with full avalanche. */
static inline uint64_t ps_emb_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* The shard holding key: mix64(key) mod nshards. */
static inline unsigned ps_emb_shard(uint64_t key, unsigned nshards)
{
	return (unsigned)(ps_emb_mix64(key) % nshards);
}

/* Candidate bucket which (0 or 1) of key among nbuckets (a power of two,
 * >= 2): two hashes independent of each other and of the placement; the
 * second differs from the first. */
static inline uint64_t ps_emb_bucket_of(uint64_t key, int which,
					uint64_t nbuckets)
{
	uint64_t b0 =
		ps_emb_mix64(key ^ 0x6a09e667f3bcc909ull) & (nbuckets - 1);
	uint64_t b1;

	if (!which)
		return b0;
	b1 = ps_emb_mix64(key ^ 0xbb67ae8584caa73bull) & (nbuckets - 1);
	return b1 == b0 ? b0 ^ 1 : b1;
}

/*
 * The version of a row whose insert was undone (srv_emb_uninsert): its
 * head still names the key, sealed with this version, and
 * ps_emb_row_verify() tells it apart (-ESTALE) so a worker that cached
 * the row's place never takes it for the key's row once the key lives in
 * another (ps_proto.h, "Embedding tables"). An update adds 1 to a
 * version; no row is updated 2^64 - 1 times.
 */
#define PS_EMB_VERSION_DEAD UINT64_MAX

/* The meta word of a slot in bucket b mapping key to row. */
static inline uint64_t ps_emb_slot_meta(uint64_t key, uint32_t row, uint64_t b)
{
	uint64_t h = ps_emb_mix64(key ^ ps_emb_mix64(b << 32 | row));

	return PS_EMB_META_VALID | (h >> 33) << 32 | row;
}

/* The check of a row: a 64-bit hash of its key, version and the bytes of
 * its values (len, a multiple of 4). */
uint64_t ps_emb_row_sum(uint64_t key, uint64_t version, const void *vals,
			size_t len);

/* Value j of the initial row of key: 0, or from (seed, key, j) uniform in
 * [-scale, scale) or normal with deviation scale. */
double ps_emb_init_value(uint32_t init, double scale, uint64_t seed,
			 uint64_t key, uint32_t j);

/* The whole initial row of key (dim values of dtype) into dst. */
void ps_emb_init_row(uint32_t init, double scale, uint64_t seed, uint64_t key,
		     uint32_t dim, uint32_t dtype, void *dst);

/*
 * Look key up in bucket number b as read (bytes, len). 1 with *row_out
 * when a slot holds it; 0 when no slot does (absent); -EAGAIN when a slot
 * was caught half written (read it again); -EPROTO when the bytes cannot
 * be a bucket: len is not 64, or a slot that checks out names a row >=
 * capacity. A slot of another key with a bad check also gives -EAGAIN
 * when key is not found: it may be key's slot being written.
 */
int ps_emb_bucket_find(const void *bytes, size_t len, uint64_t b, uint64_t key,
		       uint64_t capacity, uint32_t *row_out);

/*
 * Check a row of key as read (bytes, len): 0 when its head names key and
 * its check matches its version and values; -EAGAIN when the check does
 * not match (caught while the shard rewrote it: read the row again);
 * -ESTALE when the head names another key (the slot that led here was
 * undone and the row reused: look the key up again) or the row is sealed
 * dead (PS_EMB_VERSION_DEAD: its insert was undone); -EPROTO when len is
 * not ps_emb_row_bytes(dim, dtype) or dim or dtype is out of range.
 */
int ps_emb_row_verify(const void *bytes, size_t len, uint64_t key, uint32_t dim,
		      uint32_t dtype);

#endif /* RDPS_EMB_CODEC_H */
