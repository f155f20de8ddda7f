/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c - write, check and read shard checkpoints (checkpoint.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
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
	for (unsigned i = 0; !ret && i < c->ntables; i++) {
		const struct ckpt_table *t = &c->t[i];

		ret = put(fd, path, t->params, table_bytes(t), &h);
		if (!ret && t->acc)
			ret = put(fd, path, t->acc, table_bytes(t), &h);
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

int ckpt_parse(const void *buf, size_t len, const char *name, struct ckpt *c)
{
	const unsigned char *b = buf;
	struct ckpt_file_hdr fh;
	uint64_t off, sum_be, h;
	unsigned nt;

	memset(c, 0, sizeof(*c));
	if (len < sizeof(fh) + 8)
		return BAD("checkpoint %s: %zu bytes is too short to be one "
			   "(truncated? delete it to start afresh)",
			   name, len);
	memcpy(&fh, b, sizeof(fh));
	if (memcmp(fh.magic, CKPT_MAGIC, sizeof(fh.magic)))
		return BAD("checkpoint %s: not an rdps checkpoint (bad magic)",
			   name);
	if (rdps_be32toh(fh.version_be) != CKPT_VERSION)
		return BAD("checkpoint %s: format version %u, this rdps reads "
			   "%u",
			   name, rdps_be32toh(fh.version_be), CKPT_VERSION);
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
