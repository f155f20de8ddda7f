/* SPDX-License-Identifier: MIT */
/*
 * emb_lookup.c - the two-sided embedding lookup (PS_F_LOOKUP, ps_proto.h):
 * the worker sends keys, this shard's CPU finds their rows and puts the
 * values back. Not how rdps pulls (that is one-sided, emb_pull.c on the
 * worker): the design of ps-lite and BytePS, kept so that rdps-psbench
 * can measure the one-sided pull against it on the same transport,
 * including while this CPU is busy applying pushes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "emb_codec.h"
#include "server/server_impl.h"

void srv_emb_lookup_free(struct rdps_server *s)
{
	size_t len = PS_NSLOTS * s->slot_bytes;

	if (!s->lk_buf)
		return;
	for (unsigned w = 0; w < s->cfg.workers; w++)
		srv_region_free(s, &s->lk_buf[w], len, &s->lk_mr[w]);
	free(s->lk_buf);
	free(s->lk_mr);
	s->lk_buf = NULL;
	s->lk_mr = NULL;
}

/* Worker w's lookup buffer, allocated on first use: NULL on failure. */
static unsigned char *srv_emb_lookup_buf(struct srv_worker *w)
{
	struct rdps_server *s = w->s;

	if (!s->lk_buf) {
		s->lk_buf = calloc(s->cfg.workers, sizeof(*s->lk_buf));
		s->lk_mr = calloc(s->cfg.workers, sizeof(*s->lk_mr));
		if (!s->lk_buf || !s->lk_mr) {
			free(s->lk_buf);
			free(s->lk_mr);
			s->lk_buf = NULL;
			s->lk_mr = NULL;
			return NULL;
		}
	}
	if (!s->lk_buf[w->rank] &&
	    srv_region_new(s, PS_NSLOTS * s->slot_bytes, RDPS_TP_ACCESS_LOCAL,
			   &s->lk_buf[w->rank], &s->lk_mr[w->rank]))
		return NULL;
	return s->lk_buf[w->rank];
}

int srv_emb_lookup(struct srv_worker *w, struct srv_emb *t,
		   const struct ps_msg *m, const unsigned char *payload)
{
	struct rdps_server *s = w->s;
	uint64_t count = rdps_be64toh(m->count_be);
	uint64_t bytes = rdps_be64toh(m->bytes_be);
	size_t k = (size_t)(payload - sizeof(*m) -
			    (const unsigned char *)w->slots) /
		   s->slot_bytes;
	struct ps_emb_lookup lk;
	struct rdps_tp_rkey dst;
	unsigned char *out;
	int ret;

	if (bytes < sizeof(lk) || count > (bytes - sizeof(lk)) / 8 ||
	    bytes != sizeof(lk) + count * 8 ||
	    count * t->vbytes > s->slot_bytes) {
		rdps_warn(
			"worker %u: lookup in embedding table '%s' of %" PRIu64
			" keys in %" PRIu64 " bytes: refused",
			w->rank, t->name, count, bytes);
		return -EINVAL;
	}
	memcpy(&lk, payload, sizeof(lk));
	ret = rdps_tp_rkey_unpack(w->ep, &lk.dst, &dst);
	if (ret) {
		rdps_warn("worker %u: lookup with a bad destination key: "
			  "refused",
			  w->rank);
		return -EINVAL;
	}
	out = srv_emb_lookup_buf(w);
	if (!out) {
		rdps_err("worker %u: no memory for lookups", w->rank);
		return -ENOMEM;
	}
	out += k * s->slot_bytes;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t key;
		int64_t r;

		memcpy(&key, payload + sizeof(lk) + i * 8, 8);
		key = rdps_be64toh(key);
		r = srv_emb_find(t, key);
		if (r >= 0)
			memcpy(out + i * t->vbytes,
			       t->rows + (size_t)r * t->row_bytes +
				       sizeof(struct ps_emb_row),
			       t->vbytes);
		else
			ps_emb_init_row(t->init, t->scale, t->seed, key, t->dim,
					t->dtype, out + i * t->vbytes);
	}
	if (!count)
		return 0;
	/* The rows go first; the credit the caller queues next follows on
	 * the same endpoint, so they are in place when it arrives. */
	ret = rdps_tp_put(w->ep, out, count * t->vbytes, s->lk_mr[w->rank],
			  rdps_be64toh(lk.dst_addr_be), &dst,
			  SRV_WR(SRV_WR_REPLY, w->rank), 0);
	if (ret) {
		rdps_warn("worker %u: lookup reply not posted: %s", w->rank,
			  strerror(-ret));
		return ret == -EAGAIN ? -EBUSY : ret;
	}
	return 0;
}
