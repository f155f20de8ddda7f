/* SPDX-License-Identifier: MIT */
/*
 * shm_heap.c - the shared heap of an shm instance: a sealed, sparse memfd
 * mapped once here and once in every connected peer, with a first-fit
 * allocator whose bookkeeping stays in private memory (peers must not be
 * able to corrupt it).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm.h"

static int ext_grow(struct shm_extent **v, size_t *cap, size_t need)
{
	struct shm_extent *nv;
	size_t ncap;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	nv = realloc(*v, ncap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

int shm_heap_init(struct shm_tp *tp, size_t size)
{
	struct shm_hdr *hdr;
	size_t mrt_off = tp->page;
	size_t data_off = shm_round_up(
		mrt_off + SHM_MRT_MAX * sizeof(struct shm_mrt_ent), tp->page);
	void *map;
	int ret;

	if (size < data_off + ((size_t)4 << 20))
		return rdps_set_error(-EINVAL,
				      "shm heap size %zu is too small: set "
				      "cfg.shm_heap_size to at least %zu",
				      size, data_off + ((size_t)4 << 20));
	tp->memfd = memfd_create("rdps-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (tp->memfd < 0)
		return rdps_set_error(-errno,
				      "shm: memfd_create failed: %s (the shm "
				      "transport needs Linux >= 3.17)",
				      strerror(errno));
	/* memfds are born 0777: reopening one through /proc/PID/fd takes
	 * ptrace rights over us, and the mode is one more lock on that door
	 * for other users. Peers get the descriptor itself, never a path. */
	if (fchmod(tp->memfd, 0600)) {
		ret = rdps_set_error(-errno, "shm: cannot chmod the heap: %s",
				     strerror(errno));
		goto err_close;
	}
	if (ftruncate(tp->memfd, (off_t)size)) {
		ret = rdps_set_error(-errno,
				     "shm: cannot size the heap to %zu bytes: "
				     "%s; lower cfg.shm_heap_size",
				     size, strerror(errno));
		goto err_close;
	}
	/* Peers map the whole file: a later shrink would turn their stray
	 * accesses into SIGBUS, so forbid it for good. */
	if (fcntl(tp->memfd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		ret = rdps_set_error(-errno, "shm: cannot seal the heap: %s",
				     strerror(errno));
		goto err_close;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_NORESERVE, tp->memfd, 0);
	if (map == MAP_FAILED) {
		ret = rdps_set_error(-errno,
				     "shm: cannot map a %zu-byte heap: %s; "
				     "lower cfg.shm_heap_size",
				     size, strerror(errno));
		goto err_close;
	}
	tp->heap = map;
	tp->heap_size = size;
	tp->data_off = data_off;
	tp->hdr = hdr = map;
	tp->mrt = (struct shm_mrt_ent *)(tp->heap + mrt_off);
	hdr->version = SHM_HEAP_VERSION;
	hdr->mrt_max = SHM_MRT_MAX;
	hdr->heap_size = size;
	hdr->mrt_off = mrt_off;
	hdr->data_off = data_off;
	__atomic_store_n(&hdr->magic, SHM_HEAP_MAGIC, __ATOMIC_RELEASE);

	ret = ext_grow(&tp->free_ext, &tp->cap_free, 1);
	if (ret)
		goto err_unmap;
	tp->free_ext[0] = (struct shm_extent){
		.off = data_off, .len = size - data_off, .internal = false};
	tp->n_free = 1;
	tp->free_bytes = size - data_off;
	return 0;

err_unmap:
	munmap(tp->heap, size);
	tp->heap = NULL;
err_close:
	close(tp->memfd);
	tp->memfd = -1;
	return ret;
}

void shm_heap_fini(struct shm_tp *tp)
{
	if (tp->heap)
		munmap(tp->heap, tp->heap_size);
	if (tp->memfd >= 0)
		close(tp->memfd);
	free(tp->free_ext);
	free(tp->used_ext);
	tp->heap = NULL;
	tp->memfd = -1;
}

int shm_heap_alloc(struct shm_tp *tp, size_t len, bool internal,
		   size_t *off_out)
{
	size_t need, i;
	struct shm_extent *f;

	if (len > tp->heap_size)
		goto nomem;
	need = shm_round_up(len, tp->page);
	for (i = 0; i < tp->n_free; i++)
		if (tp->free_ext[i].len >= need)
			break;
	if (i == tp->n_free)
		goto nomem;
	if (ext_grow(&tp->used_ext, &tp->cap_used, tp->n_used + 1))
		return rdps_set_error(-ENOMEM, "shm: out of memory");
	f = &tp->free_ext[i];
	tp->used_ext[tp->n_used++] = (struct shm_extent){
		.off = f->off, .len = need, .internal = internal};
	*off_out = f->off;
	f->off += need;
	f->len -= need;
	if (!f->len) {
		memmove(f, f + 1, (tp->n_free - i - 1) * sizeof(*f));
		tp->n_free--;
	}
	tp->free_bytes -= need;
	return 0;

nomem:
	return rdps_set_error(-ENOMEM,
			      "shm heap has no free block of %zu bytes (heap "
			      "%zu bytes, %zu free): raise cfg.shm_heap_size "
			      "(RDPS_SHM_HEAP_SIZE)",
			      len, tp->heap_size, tp->free_bytes);
}

/* Give pages back and return the block to the free list. The hole reads
 * as zeros, which is what makes mem_alloc's memory zeroed. */
int shm_heap_release(struct shm_tp *tp, size_t off, size_t len, bool internal)
{
	size_t need = shm_round_up(len, tp->page), i, u;
	struct shm_extent *v;

	for (u = 0; u < tp->n_used; u++)
		if (tp->used_ext[u].off == off)
			break;
	if (u == tp->n_used || tp->used_ext[u].len != need ||
	    tp->used_ext[u].internal != internal)
		return -EINVAL;
	if (ext_grow(&tp->free_ext, &tp->cap_free, tp->n_free + 1))
		return -ENOMEM;
	tp->used_ext[u] = tp->used_ext[--tp->n_used];

	if (fallocate(tp->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)need))
		memset(tp->heap + off, 0, need);

	v = tp->free_ext;
	for (i = 0; i < tp->n_free && v[i].off < off; i++)
		;
	memmove(&v[i + 1], &v[i], (tp->n_free - i) * sizeof(*v));
	v[i] = (struct shm_extent){.off = off, .len = need, .internal = false};
	tp->n_free++;
	if (i + 1 < tp->n_free && v[i].off + v[i].len == v[i + 1].off) {
		v[i].len += v[i + 1].len;
		memmove(&v[i + 1], &v[i + 2],
			(tp->n_free - i - 2) * sizeof(*v));
		tp->n_free--;
	}
	if (i > 0 && v[i - 1].off + v[i - 1].len == v[i].off) {
		v[i - 1].len += v[i].len;
		memmove(&v[i], &v[i + 1], (tp->n_free - i - 1) * sizeof(*v));
		tp->n_free--;
	}
	tp->free_bytes += need;
	return 0;
}

bool shm_heap_user_range(struct shm_tp *tp, const uint8_t *p, size_t len)
{
	size_t off;

	if (p < tp->heap || p >= tp->heap + tp->heap_size)
		return false;
	off = (size_t)(p - tp->heap);
	for (size_t u = 0; u < tp->n_used; u++) {
		const struct shm_extent *x = &tp->used_ext[u];

		if (off >= x->off && off - x->off < x->len)
			return !x->internal && len <= x->len - (off - x->off);
	}
	return false;
}

int shm_mem_alloc(struct rdps_tp *tp_, size_t len, void **addr_out)
{
	struct shm_tp *tp = to_shm_tp(tp_);
	size_t off = 0;
	int ret;

	ret = shm_heap_alloc(tp, len, false, &off);
	if (ret)
		return ret;
	*addr_out = tp->heap + off;
	return 0;
}

void shm_mem_free(struct rdps_tp *tp_, void *addr, size_t len)
{
	struct shm_tp *tp = to_shm_tp(tp_);
	uint8_t *p = addr;
	int ret = -EINVAL;

	if (p >= tp->heap + tp->data_off && p < tp->heap + tp->heap_size)
		ret = shm_heap_release(tp, (size_t)(p - tp->heap), len, false);
	if (ret)
		rdps_warn("shm: ignoring mem_free(%p, %zu): %s", addr, len,
			  ret == -EINVAL ? "not a block from mem_alloc of "
					   "that length"
					 : strerror(-ret));
}
