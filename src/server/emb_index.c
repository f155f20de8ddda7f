/* SPDX-License-Identifier: MIT */
/*
 * emb_index.c - an embedding table's index and rows on the shard, the only
 * writer of both: find a key, insert one (row first, slot last, so a
 * reader that finds the slot finds a whole row), undo an insert, and apply
 * the rule to a row under its checksum (ps_proto.h, "Embedding tables").
 */
#include <errno.h>
#include <string.h>

#include "emb_codec.h"
#include "server/server_impl.h"

static unsigned char *srv_emb_row(const struct srv_emb *t, uint32_t row)
{
	return t->rows + (size_t)row * t->row_bytes;
}

int64_t srv_emb_find(const struct srv_emb *t, uint64_t key)
{
	for (int c = 0; c < 2; c++) {
		uint64_t b = ps_emb_bucket_of(key, c, t->nbuckets);
		const struct ps_emb_slot *sl = t->index[b].slot;

		for (unsigned i = 0; i < PS_EMB_SLOTS; i++)
			if (sl[i].meta_be && rdps_be64toh(sl[i].key_be) == key)
				return (uint32_t)rdps_be64toh(sl[i].meta_be);
	}
	return -1;
}

/* Write the check of row (key, version) after its values. */
static void srv_emb_seal(struct srv_emb *t, uint32_t row, uint64_t key,
			 uint64_t version)
{
	struct ps_emb_row *h = (struct ps_emb_row *)srv_emb_row(t, row);
	uint64_t sum = ps_emb_row_sum(key, version, h + 1, t->vbytes);

	h->version_be = rdps_htobe64(version);
	__atomic_store_n(&h->check_be, rdps_htobe64(sum), __ATOMIC_RELEASE);
}

/* A free slot in key's less loaded candidate bucket (the first on a
 * tie), or NULL when both are full; *b_out its bucket. */
static struct ps_emb_slot *srv_emb_free_slot(struct srv_emb *t, uint64_t key,
					     uint64_t *b_out)
{
	struct ps_emb_slot *best = NULL;
	unsigned best_used = PS_EMB_SLOTS;

	for (int c = 0; c < 2; c++) {
		uint64_t b = ps_emb_bucket_of(key, c, t->nbuckets);
		struct ps_emb_slot *sl = t->index[b].slot, *fr = NULL;
		unsigned used = 0;

		for (unsigned i = 0; i < PS_EMB_SLOTS; i++) {
			if (sl[i].meta_be)
				used++;
			else if (!fr)
				fr = &sl[i];
		}
		if (fr && used < best_used) {
			best = fr;
			best_used = used;
			*b_out = b;
		}
	}
	return best;
}

int srv_emb_insert(struct srv_emb *t, uint64_t key, uint32_t *row_out)
{
	struct ps_emb_slot *slot;
	struct ps_emb_row *h;
	uint32_t row;
	uint64_t b = 0;

	if (t->nrows >= t->capacity)
		return -ENOSPC;
	slot = srv_emb_free_slot(t, key, &b);
	if (!slot)
		return -ENOSPC;
	row = (uint32_t)t->nrows++;
	h = (struct ps_emb_row *)srv_emb_row(t, row);
	h->key_be = rdps_htobe64(key);
	ps_emb_init_row(t->init, t->scale, t->seed, key, t->dim, t->dtype,
			h + 1);
	srv_emb_seal(t, row, key, 0);
	if (t->acc)
		memset((char *)t->acc + (size_t)row * t->vbytes, 0, t->vbytes);
	/* Row first, then the slot: key, then meta (release), so a reader
	 * that sees a valid meta finds the row in place. */
	__atomic_store_n(&slot->key_be, rdps_htobe64(key), __ATOMIC_RELEASE);
	__atomic_store_n(&slot->meta_be,
			 rdps_htobe64(ps_emb_slot_meta(key, row, b)),
			 __ATOMIC_RELEASE);
	*row_out = row;
	return 0;
}

void srv_emb_uninsert(struct srv_emb *t, uint64_t key)
{
	for (int c = 0; c < 2; c++) {
		uint64_t b = ps_emb_bucket_of(key, c, t->nbuckets);
		struct ps_emb_slot *sl = t->index[b].slot;

		for (unsigned i = 0; i < PS_EMB_SLOTS; i++) {
			uint32_t row;

			if (!sl[i].meta_be || rdps_be64toh(sl[i].key_be) != key)
				continue;
			row = (uint32_t)rdps_be64toh(sl[i].meta_be);
			__atomic_store_n(&sl[i].meta_be, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&sl[i].key_be, 0, __ATOMIC_RELEASE);
			/* Sealed dead before any later insert can run: the
			 * key may come back in another row (rows are handed
			 * out from nrows), and a worker that cached this
			 * row's place (emb_pull.c) must then find it no
			 * longer the key's (-ESTALE) rather than read the
			 * key's initial value here for ever. A reader that
			 * found the slot also looks the key up again. */
			srv_emb_seal(t, row, key, PS_EMB_VERSION_DEAD);
			t->nrows--;
			return;
		}
	}
}

void srv_emb_update(struct srv_emb *t, uint32_t row, const void *grad)
{
	struct ps_emb_row *h = (struct ps_emb_row *)srv_emb_row(t, row);
	struct srv_slice sl = {
		.dtype = t->dtype,
		.rule = t->rule,
		.esize = ps_dtype_size(t->dtype),
		.lr = t->lr,
		.len = t->dim,
		.params = h + 1,
		.acc = t->acc ? (char *)t->acc + (size_t)row * t->vbytes : NULL,
	};

	/* Values in place, then version and check: a reader that catches
	 * any mix of old and new values finds the check wrong. */
	srv_apply(&sl, 0, t->dim, grad, sl.esize);
	srv_emb_seal(t, row, rdps_be64toh(h->key_be),
		     rdps_be64toh(h->version_be) + 1);
}
