/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.h - a shard's parameters at a clock boundary, on disk.
 *
 * One file per shard, DIR/shard-<i>.ckpt, and the one before it,
 * DIR/shard-<i>.ckpt.prev: a job resumes at a clock every shard has (the
 * shards of a BSP job are at most one checkpoint apart). A file is written
 * to DIR/shard-<i>.ckpt.tmp, fsync'ed, the current one renamed to .prev,
 * the new one renamed in place, then DIR fsync'ed: a crash leaves either
 * the old pair or the new one, never a torn file under the final name.
 *
 * Layout (integers big-endian, values in the host's float format like the
 * shard's memory):
 *   struct ckpt_file_hdr
 *   ntables x struct ckpt_file_table
 *   version 2: struct ckpt_file_emb_count, then nemb x struct ckpt_file_emb
 *   per table: params (hi - lo elements), then the Adagrad accumulator
 *   (same size) when has_acc
 *   version 2, per embedding table: its index (nbuckets buckets of 64 B,
 *   as in the shard's memory), its rows 0..nrows-1 (row_bytes each, head
 *   and values as in memory), then the Adagrad state of those rows (dim
 *   values each) when the rule is Adagrad
 *   be64 FNV-1a of every byte before it
 * Version 1 (dense tables only) is still read. Anything else (short,
 * long, bad magic, version, sizes, checksum, an embedding table whose
 * geometry does not follow from its dim and capacity, a slot naming a row
 * that is not there or holds another key, a row failing its check) is
 * refused with a message naming the file and what is wrong.
 */
#ifndef RDPS_CHECKPOINT_H
#define RDPS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_MAGIC "RDPSCKP1"
#define CKPT_VERSION 2u	      /* written; 1 is still read */
#define CKPT_VERSION_DENSE 1u /* before embedding tables */
#define CKPT_MAX_TABLES 64u
#define CKPT_MAX_EMB 16u /* PS_EMB_MAX */

struct ckpt_file_hdr {
	char magic[8];
	uint32_t version_be;
	uint32_t shard_be;
	uint32_t nshards_be;
	uint32_t workers_be;
	uint32_t model_be;
	uint32_t ntables_be;
	uint64_t clock_be;
};
_Static_assert(sizeof(struct ckpt_file_hdr) == 40, "ckpt_file_hdr");

struct ckpt_file_table {
	char name[32];
	uint64_t n_be, lo_be, hi_be;
	uint32_t dtype_be, rule_be;
	uint64_t lr_bits_be;
	uint32_t esize_be, has_acc_be;
};
_Static_assert(sizeof(struct ckpt_file_table) == 80, "ckpt_file_table");

struct ckpt_file_emb_count {
	uint32_t nemb_be;
	uint32_t pad;
};
_Static_assert(sizeof(struct ckpt_file_emb_count) == 8, "ckpt_file_emb_count");

/* An embedding table: its create fields, the directory slot it had, its
 * geometry (checked against dim and capacity) and rows handed out. */
struct ckpt_file_emb {
	char name[32];
	uint32_t slot_be, dim_be, dtype_be, rule_be, init_be;
	uint32_t flags_be; /* CKPT_EMB_OVERFLOWED */
	uint64_t lr_bits_be, scale_bits_be, seed_be;
	uint64_t capacity_be, nbuckets_be, row_bytes_be, nrows_be;
};
_Static_assert(sizeof(struct ckpt_file_emb) == 112, "ckpt_file_emb");

/* The table had found both buckets of a key full (BSP) and refuses
 * pushes: kept across a resume. */
#define CKPT_EMB_OVERFLOWED 1u

/* One table in memory: for writing, params/acc point at the shard's
 * arrays; after ckpt_parse() they point into the parsed buffer. */
struct ckpt_table {
	char name[32];
	uint64_t n, lo, hi;
	uint32_t dtype, rule, esize;
	double lr;
	const void *params; /* (hi - lo) * esize bytes */
	const void *acc;    /* same size, or NULL */
};

/* One embedding table in memory: for writing, index/rows/acc point at
 * the shard's regions; after ckpt_parse() into the parsed buffer. */
struct ckpt_emb {
	char name[32];
	unsigned slot, dim, dtype, rule, init, flags;
	double lr, scale;
	uint64_t seed, capacity, nbuckets, row_bytes, nrows;
	const void *index; /* nbuckets * 64 bytes */
	const void *rows;  /* nrows * row_bytes */
	const void *acc;   /* nrows * dim values (Adagrad), or NULL */
};

struct ckpt {
	unsigned shard, nshards, workers, model;
	uint64_t clock;
	unsigned ntables;
	struct ckpt_table t[CKPT_MAX_TABLES];
	unsigned nemb;
	struct ckpt_emb e[CKPT_MAX_EMB];
};

/* DIR/shard-<shard>.ckpt[.prev] into buf; -ENAMETOOLONG if it does not
 * fit. */
int ckpt_path(char *buf, size_t len, const char *dir, unsigned shard, int prev);

/* Write c as shard c->shard's newest checkpoint in dir (see above). 0 or
 * -errno with rdps_errmsg() naming the file. */
int ckpt_write(const char *dir, const struct ckpt *c);

/* Check and decode a checkpoint image of len bytes (name: for messages).
 * On success c's tables point into buf. -EINVAL (rdps_errmsg says what is
 * wrong) on any malformed or corrupt image. */
int ckpt_parse(const void *buf, size_t len, const char *name, struct ckpt *c);

/* Read and parse a file. *buf_out (free() it) holds what c points into.
 * -ENOENT when it does not exist, -EINVAL when it is refused. */
int ckpt_load(const char *path, void **buf_out, struct ckpt *c);

#endif /* RDPS_CHECKPOINT_H */
