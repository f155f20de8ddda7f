/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c - write, check and read shard checkpoints (checkpoint.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "emb_codec.h"
#include "rdps_base.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= FNV_PRIME;
	}
	return h;
}

int ckpt_path(char *buf, size_t len, const char *dir, unsigned shard, int prev)
{
	int n = snprintf(buf, len, "%s/shard-%u.ckpt%s", dir, shard,
			 prev ? ".prev" : "");

	if (n < 0 || (size_t)n >= len)
		return rdps_set_error(-ENAMETOOLONG,
				      "checkpoint directory '%s' is too long "
				      "a path",
				      dir);
	return 0;
}

static uint64_t table_bytes(const struct ckpt_table *t)
{
	return (t->hi - t->lo) * t->esize;
}

/* Bytes of an embedding table's index, rows and Adagrad state. */
static uint64_t emb_index_bytes(const struct ckpt_emb *e)
{
	return e->nbuckets * sizeof(struct ps_emb_bucket);
}

static uint64_t emb_rows_bytes(const struct ckpt_emb *e)
{
	return e->nrows * e->row_bytes;
}

static uint64_t emb_acc_bytes(const struct ckpt_emb *e)
{
	return e->rule == PS_RULE_ADAGRAD
		       ? e->nrows * e->dim * ps_dtype_size(e->dtype)
		       : 0;
}

/* write() all of it, accumulating the checksum. */
static int put(int fd, const char *path, const void *p, size_t len, uint64_t *h)
{
	const char *b = p;

	*h = fnv1a(*h, p, len);
	while (len) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return rdps_set_error(-errno,
					      "writing checkpoint %s: %s", path,
					      strerror(errno));
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_emb_descs(int fd, const char *path, const struct ckpt *c,
			   uint64_t *h)
{
	struct ckpt_file_emb_count n = {.nemb_be = rdps_htobe32(c->nemb)};
	int ret = put(fd, path, &n, sizeof(n), h);

	for (unsigned i = 0; !ret && i < c->nemb; i++) {
		const struct ckpt_emb *e = &c->e[i];
		struct ckpt_file_emb fe;
		uint64_t bits;

		memset(&fe, 0, sizeof(fe));
		memcpy(fe.name, e->name, sizeof(fe.name));
		fe.slot_be = rdps_htobe32(e->slot);
		fe.dim_be = rdps_htobe32(e->dim);
		fe.dtype_be = rdps_htobe32(e->dtype);
		fe.rule_be = rdps_htobe32(e->rule);
		fe.init_be = rdps_htobe32(e->init);
		fe.flags_be = rdps_htobe32(e->flags);
		memcpy(&bits, &e->lr, sizeof(bits));
		fe.lr_bits_be = rdps_htobe64(bits);
		memcpy(&bits, &e->scale, sizeof(bits));
		fe.scale_bits_be = rdps_htobe64(bits);
		fe.seed_be = rdps_htobe64(e->seed);
		fe.capacity_be = rdps_htobe64(e->capacity);
		fe.nbuckets_be = rdps_htobe64(e->nbuckets);
		fe.row_bytes_be = rdps_htobe64(e->row_bytes);
		fe.nrows_be = rdps_htobe64(e->nrows);
		ret = put(fd, path, &fe, sizeof(fe), h);
	}
	return ret;
}

static int write_image(int fd, const char *path, const struct ckpt *c)
{
	struct ckpt_file_hdr fh;
	uint64_t h = FNV_OFFSET, sum_be;
	int ret;

	memset(&fh, 0, sizeof(fh));
	memcpy(fh.magic, CKPT_MAGIC, sizeof(fh.magic));
	fh.version_be = rdps_htobe32(CKPT_VERSION);
	fh.shard_be = rdps_htobe32(c->shard);
	fh.nshards_be = rdps_htobe32(c->nshards);
	fh.workers_be = rdps_htobe32(c->workers);
	fh.model_be = rdps_htobe32(c->model);
	fh.ntables_be = rdps_htobe32(c->ntables);
	fh.clock_be = rdps_htobe64(c->clock);
	ret = put(fd, path, &fh, sizeof(fh), &h);
	for (unsigned i = 0; !ret && i < c->ntables; i++) {
		const struct ckpt_table *t = &c->t[i];
		struct ckpt_file_table ft;
		uint64_t bits;

		memset(&ft, 0, sizeof(ft));
		memcpy(ft.name, t->name, sizeof(ft.name));
		ft.n_be = rdps_htobe64(t->n);
		ft.lo_be = rdps_htobe64(t->lo);
		ft.hi_be = rdps_htobe64(t->hi);
		ft.dtype_be = rdps_htobe32(t->dtype);
		ft.rule_be = rdps_htobe32(t->rule);
		memcpy(&bits, &t->lr, sizeof(bits));
		ft.lr_bits_be = rdps_htobe64(bits);
		ft.esize_be = rdps_htobe32(t->esize);
		ft.has_acc_be = rdps_htobe32(t->acc != NULL);
		ret = put(fd, path, &ft, sizeof(ft), &h);
	}
	if (!ret)
		ret = write_emb_descs(fd, path, c, &h);
	for (unsigned i = 0; !ret && i < c->ntables; i++) {
		const struct ckpt_table *t = &c->t[i];

		ret = put(fd, path, t->params, table_bytes(t), &h);
		if (!ret && t->acc)
			ret = put(fd, path, t->acc, table_bytes(t), &h);
	}
	for (unsigned i = 0; !ret && i < c->nemb; i++) {
		const struct ckpt_emb *e = &c->e[i];

		ret = put(fd, path, e->index, emb_index_bytes(e), &h);
		if (!ret)
			ret = put(fd, path, e->rows, emb_rows_bytes(e), &h);
		if (!ret && emb_acc_bytes(e))
			ret = put(fd, path, e->acc, emb_acc_bytes(e), &h);
	}
	if (ret)
		return ret;
	sum_be = rdps_htobe64(h);
	return put(fd, path, &sum_be, sizeof(sum_be), &h);
}

int ckpt_write(const char *dir, const struct ckpt *c)
{
	char cur[4096], prev[4096], tmp[4096 + 8];
	int fd, ret;

	ret = ckpt_path(cur, sizeof(cur), dir, c->shard, 0);
	if (ret)
		return ret;
	ret = ckpt_path(prev, sizeof(prev), dir, c->shard, 1);
	if (ret)
		return ret;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cur);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return rdps_set_error(-errno,
				      "cannot create checkpoint %s: %s (is "
				      "the checkpoint directory there and "
				      "writable?)",
				      tmp, strerror(errno));
	ret = write_image(fd, tmp, c);
	if (!ret && fsync(fd))
		ret = rdps_set_error(-errno, "fsync of checkpoint %s: %s", tmp,
				     strerror(errno));
	if (close(fd) && !ret)
		ret = rdps_set_error(-errno, "closing checkpoint %s: %s", tmp,
				     strerror(errno));
	if (ret) {
		unlink(tmp);
		return ret;
	}
	if (rename(cur, prev) && errno != ENOENT) {
		ret = rdps_set_error(-errno, "cannot rename %s to %s: %s", cur,
				     prev, strerror(errno));
		unlink(tmp);
		return ret;
	}
	if (rename(tmp, cur)) {
		ret = rdps_set_error(-errno, "cannot rename %s to %s: %s", tmp,
				     cur, strerror(errno));
		unlink(tmp);
		return ret;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		ret = fsync(fd) ? -errno : 0;
		close(fd);
		if (ret)
			return rdps_set_error(ret,
					      "fsync of checkpoint directory "
					      "%s: %s",
					      dir, strerror(-ret));
	}
	return 0;
}

#define BAD(...) rdps_set_error(-EINVAL, __VA_ARGS__)

/* Decode and check one embedding table's description. */
static int parse_emb_desc(const struct ckpt_file_emb *fe, unsigned i,
			  const char *name, struct ckpt_emb *e)
{
	uint64_t bits;

	if (!memchr(fe->name, '\0', sizeof(fe->name)) || !fe->name[0])
		return BAD("checkpoint %s: embedding table %u has an empty or "
			   "unterminated name",
			   name, i);
	memcpy(e->name, fe->name, sizeof(e->name));
	e->slot = rdps_be32toh(fe->slot_be);
	e->dim = rdps_be32toh(fe->dim_be);
	e->dtype = rdps_be32toh(fe->dtype_be);
	e->rule = rdps_be32toh(fe->rule_be);
	e->init = rdps_be32toh(fe->init_be);
	e->flags = rdps_be32toh(fe->flags_be);
	bits = rdps_be64toh(fe->lr_bits_be);
	memcpy(&e->lr, &bits, sizeof(bits));
	bits = rdps_be64toh(fe->scale_bits_be);
	memcpy(&e->scale, &bits, sizeof(bits));
	e->seed = rdps_be64toh(fe->seed_be);
	e->capacity = rdps_be64toh(fe->capacity_be);
	e->nbuckets = rdps_be64toh(fe->nbuckets_be);
	e->row_bytes = rdps_be64toh(fe->row_bytes_be);
	e->nrows = rdps_be64toh(fe->nrows_be);
	if (!e->dim || e->dim > PS_EMB_DIM_MAX || e->dtype > PS_DTYPE_F64 ||
	    e->rule > PS_RULE_ADAGRAD || e->init > PS_EMB_INIT_NORMAL ||
	    e->flags & ~CKPT_EMB_OVERFLOWED || e->slot >= CKPT_MAX_EMB ||
	    !e->capacity || e->capacity > (1ull << 31) || !isfinite(e->lr) ||
	    !isfinite(e->scale) || e->scale < 0)
		return BAD("checkpoint %s: embedding table '%s' has dim %u "
			   "dtype %u rule %u init %u capacity %" PRIu64
			   ": out of range (corrupt, or not written by this "
			   "rdps)",
			   name, e->name, e->dim, e->dtype, e->rule, e->init,
			   e->capacity);
	if (e->nbuckets != ps_emb_nbuckets(e->capacity) ||
	    e->row_bytes != ps_emb_row_bytes(e->dim, e->dtype) ||
	    e->nrows > e->capacity)
		return BAD("checkpoint %s: embedding table '%s' has %" PRIu64
			   " buckets, rows of %" PRIu64 " bytes and %" PRIu64
			   " rows used, which dim %u and capacity %" PRIu64
			   " do not give",
			   name, e->name, e->nbuckets, e->row_bytes, e->nrows,
			   e->dim, e->capacity);
	return 0;
}

/* The embedding tables' descriptions at *off (version 2). */
static int parse_emb_descs(const unsigned char *b, uint64_t end, uint64_t *off,
			   const char *name, struct ckpt *c)
{
	struct ckpt_file_emb_count n;
	int ret;

	if (end - *off < sizeof(n))
		return BAD("checkpoint %s: too short for its count of "
			   "embedding tables",
			   name);
	memcpy(&n, b + *off, sizeof(n));
	*off += sizeof(n);
	c->nemb = rdps_be32toh(n.nemb_be);
	if (c->nemb > CKPT_MAX_EMB)
		return BAD("checkpoint %s: %u embedding tables, at most %u",
			   name, c->nemb, CKPT_MAX_EMB);
	if ((end - *off) / sizeof(struct ckpt_file_emb) < c->nemb)
		return BAD("checkpoint %s: too short for its %u embedding "
			   "table descriptions",
			   name, c->nemb);
	for (unsigned i = 0; i < c->nemb; i++) {
		struct ckpt_file_emb fe;

		memcpy(&fe, b + *off, sizeof(fe));
		*off += sizeof(fe);
		ret = parse_emb_desc(&fe, i, name, &c->e[i]);
		if (ret)
			return ret;
		for (unsigned j = 0; j < i; j++)
			if (c->e[j].slot == c->e[i].slot ||
			    !strcmp(c->e[j].name, c->e[i].name))
				return BAD("checkpoint %s: embedding tables "
					   "'%s' and '%s' share a name or a "
					   "slot",
					   name, c->e[j].name, c->e[i].name);
	}
	return 0;
}

/*
 * The index and rows of e as the shard's code assumes them: every used
 * slot is in one of its key's candidate buckets, checks out, and names a
 * row below nrows that holds the same key and passes its check; as many
 * used slots as rows. The shard writes and reads rows by the slots' row
 * numbers, so a bad one is refused here rather than trusted there.
 */
static int check_emb(const struct ckpt_emb *e, const char *name)
{
	const unsigned char *ix = e->index, *rows = e->rows;
	uint64_t used = 0;

	for (uint64_t b = 0; b < e->nbuckets; b++) {
		for (unsigned i = 0; i < PS_EMB_SLOTS; i++) {
			struct ps_emb_slot sl;
			uint64_t key, meta;
			uint32_t row;

			memcpy(&sl,
			       ix + b * sizeof(struct ps_emb_bucket) +
				       i * sizeof(sl),
			       sizeof(sl));
			meta = rdps_be64toh(sl.meta_be);
			key = rdps_be64toh(sl.key_be);
			if (!meta && !key)
				continue;
			row = (uint32_t)meta;
			if (!meta || row >= e->nrows ||
			    meta != ps_emb_slot_meta(key, row, b) ||
			    (b != ps_emb_bucket_of(key, 0, e->nbuckets) &&
			     b != ps_emb_bucket_of(key, 1, e->nbuckets)))
				return BAD(
					"checkpoint %s: embedding table "
					"'%s': slot %u of bucket %" PRIu64
					" is not a slot of one of its %" PRIu64
					" rows (corrupt?)",
					name, e->name, i, b, e->nrows);
			if (ps_emb_row_verify(rows + row * e->row_bytes,
					      e->row_bytes, key, e->dim,
					      e->dtype))
				return BAD("checkpoint %s: embedding table "
					   "'%s': row %u of key %" PRIu64
					   " fails its check (corrupt?)",
					   name, e->name, row, key);
			used++;
		}
	}
	if (used != e->nrows)
		return BAD("checkpoint %s: embedding table '%s' has %" PRIu64
			   " used slots for %" PRIu64 " rows (corrupt?)",
			   name, e->name, used, e->nrows);
	return 0;
}

/* The embedding tables' index, rows and state at *off. */
static int parse_emb_data(const unsigned char *b, uint64_t end, uint64_t *off,
			  const char *name, struct ckpt *c)
{
	for (unsigned i = 0; i < c->nemb; i++) {
		struct ckpt_emb *e = &c->e[i];
		uint64_t ni = emb_index_bytes(e), nr = emb_rows_bytes(e);
		uint64_t na = emb_acc_bytes(e);
		int ret;

		if (end - *off < ni + nr + na)
			return BAD("checkpoint %s: embedding table '%s' needs "
				   "%" PRIu64 " bytes, the file has %" PRIu64
				   " left",
				   name, e->name, ni + nr + na, end - *off);
		e->index = b + *off;
		e->rows = b + *off + ni;
		e->acc = na ? b + *off + ni + nr : NULL;
		*off += ni + nr + na;
		ret = check_emb(e, name);
		if (ret)
			return ret;
	}
	return 0;
}

int ckpt_parse(const void *buf, size_t len, const char *name, struct ckpt *c)
{
	const unsigned char *b = buf;
	struct ckpt_file_hdr fh;
	uint64_t off, sum_be, h;
	unsigned nt, version;
	int ret;

	memset(c, 0, sizeof(*c));
	if (len < sizeof(fh) + 8)
		return BAD("checkpoint %s: %zu bytes is too short to be one "
			   "(truncated? delete it to start afresh)",
			   name, len);
	memcpy(&fh, b, sizeof(fh));
	if (memcmp(fh.magic, CKPT_MAGIC, sizeof(fh.magic)))
		return BAD("checkpoint %s: not an rdps checkpoint (bad magic)",
			   name);
	version = rdps_be32toh(fh.version_be);
	if (version != CKPT_VERSION && version != CKPT_VERSION_DENSE)
		return BAD("checkpoint %s: format version %u, this rdps reads "
			   "%u and %u",
			   name, version, CKPT_VERSION_DENSE, CKPT_VERSION);
	memcpy(&sum_be, b + len - 8, 8);
	h = fnv1a(FNV_OFFSET, b, len - 8);
	if (rdps_be64toh(sum_be) != h)
		return BAD("checkpoint %s: checksum mismatch (corrupt or "
			   "truncated file; resume from the .prev one or "
			   "start afresh)",
			   name);
	nt = rdps_be32toh(fh.ntables_be);
	if (nt > CKPT_MAX_TABLES)
		return BAD("checkpoint %s: %u tables, at most %u", name, nt,
			   CKPT_MAX_TABLES);
	c->shard = rdps_be32toh(fh.shard_be);
	c->nshards = rdps_be32toh(fh.nshards_be);
	c->workers = rdps_be32toh(fh.workers_be);
	c->model = rdps_be32toh(fh.model_be);
	c->clock = rdps_be64toh(fh.clock_be);
	c->ntables = nt;
	off = sizeof(fh);
	if ((len - 8 - off) / sizeof(struct ckpt_file_table) < nt)
		return BAD("checkpoint %s: too short for its %u table "
			   "descriptions",
			   name, nt);
	for (unsigned i = 0; i < nt; i++) {
		struct ckpt_table *t = &c->t[i];
		struct ckpt_file_table ft;
		uint64_t bits;

		memcpy(&ft, b + off, sizeof(ft));
		off += sizeof(ft);
		if (!memchr(ft.name, '\0', sizeof(ft.name)) || !ft.name[0])
			return BAD("checkpoint %s: table %u has an empty or "
				   "unterminated name",
				   name, i);
		memcpy(t->name, ft.name, sizeof(t->name));
		t->n = rdps_be64toh(ft.n_be);
		t->lo = rdps_be64toh(ft.lo_be);
		t->hi = rdps_be64toh(ft.hi_be);
		t->dtype = rdps_be32toh(ft.dtype_be);
		t->rule = rdps_be32toh(ft.rule_be);
		t->esize = rdps_be32toh(ft.esize_be);
		bits = rdps_be64toh(ft.lr_bits_be);
		memcpy(&t->lr, &bits, sizeof(bits));
		if (!t->n || t->n > (UINT64_MAX >> 8) || t->lo > t->hi ||
		    t->hi > t->n || (t->esize != 4 && t->esize != 8) ||
		    rdps_be32toh(ft.has_acc_be) > 1)
			return BAD(
				"checkpoint %s: table '%s' has range [%" PRIu64
				", %" PRIu64 ") of %" PRIu64
				" elements of %u bytes: inconsistent",
				name, t->name, t->lo, t->hi, t->n, t->esize);
		t->acc = rdps_be32toh(ft.has_acc_be) ? t : NULL; /* marker */
	}
	if (version >= 2) {
		ret = parse_emb_descs(b, len - 8, &off, name, c);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < nt; i++) {
		struct ckpt_table *t = &c->t[i];
		uint64_t nb = table_bytes(t), need = t->acc ? 2 * nb : nb;

		if (len - 8 - off < need)
			return BAD("checkpoint %s: table '%s' needs %" PRIu64
				   " bytes of values, the file has %" PRIu64
				   " left",
				   name, t->name, need, len - 8 - off);
		t->params = b + off;
		off += nb;
		if (t->acc) {
			t->acc = b + off;
			off += nb;
		}
	}
	ret = parse_emb_data(b, len - 8, &off, name, c);
	if (ret)
		return ret;
	if (off != len - 8)
		return BAD("checkpoint %s: %" PRIu64 " bytes after the last "
			   "table (not written by this rdps?)",
			   name, len - 8 - off);
	return 0;
}

int ckpt_load(const char *path, void **buf_out, struct ckpt *c)
{
	struct stat st;
	void *buf = NULL;
	size_t got = 0;
	int fd, ret;

	*buf_out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		return rdps_set_error(ret, "cannot open checkpoint %s: %s",
				      path, strerror(-ret));
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return rdps_set_error(
			-EINVAL, "checkpoint %s is not a regular file", path);
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return rdps_set_error(-ENOMEM,
				      "no memory to read checkpoint %s (%lld "
				      "bytes)",
				      path, (long long)st.st_size);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n =
			read(fd, (char *)buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n ? -errno : -EINVAL;
			close(fd);
			free(buf);
			return rdps_set_error(
				ret, "reading checkpoint %s: %s", path,
				n ? strerror(-ret) : "file shrank while read");
		}
		got += (size_t)n;
	}
	close(fd);
	ret = ckpt_parse(buf, got, path, c);
	if (ret) {
		free(buf);
		return ret;
	}
	*buf_out = buf;
	return 0;
}
