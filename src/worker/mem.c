/* SPDX-License-Identifier: MIT */
/*
 * mem.c - a worker's local memory: registered buffers (reply region,
 * small buffer, push staging, pull landing area), rdps_buf_alloc() and the
 * scratch of one operation.
 */
#include <stdlib.h>

#include "worker.h"

void wrk_mem_put(struct rdps_ctx *ctx, void **addr, size_t *len,
		 struct rdps_tp_mr **mr)
{
	if (*mr)
		rdps_tp_mem_dereg(*mr);
	if (*addr)
		rdps_tp_mem_free(ctx->tp, *addr, *len);
	*mr = NULL;
	*addr = NULL;
	*len = 0;
}

int wrk_mem_get(struct rdps_ctx *ctx, size_t len, unsigned access, void **addr,
		size_t *len_out, struct rdps_tp_mr **mr, const char *what)
{
	void *p;
	int ret;

	len = (len + WRK_PAGE - 1) / WRK_PAGE * WRK_PAGE;
	ret = rdps_tp_mem_alloc(ctx->tp, len, &p);
	if (ret)
		return rdps_set_error(ret,
				      "allocating %zu bytes for the %s failed: "
				      "%s",
				      len, what, strerror(-ret));
	ret = rdps_tp_mem_reg(ctx->tp, p, len, access, mr);
	if (ret) {
		rdps_tp_mem_free(ctx->tp, p, len);
		return rdps_set_error(ret,
				      "registering %zu bytes for the %s "
				      "failed: %s",
				      len, what, strerror(-ret));
	}
	*addr = p;
	*len_out = len;
	return 0;
}

int wrk_bounce(struct rdps_ctx *ctx, size_t len)
{
	size_t want = ctx->bounce_len ? ctx->bounce_len : 1u << 16;

	if (len <= ctx->bounce_len)
		return 0;
	while (want < len)
		want *= 2;
	wrk_mem_put(ctx, &ctx->bounce, &ctx->bounce_len, &ctx->bounce_mr);
	return wrk_mem_get(ctx, want, RDPS_TP_ACCESS_LOCAL, &ctx->bounce,
			   &ctx->bounce_len, &ctx->bounce_mr, "pull buffer");
}

void *wrk_scratch(struct rdps_ctx *ctx, size_t len)
{
	void *p;

	if (len <= ctx->scratch_len)
		return ctx->scratch;
	p = realloc(ctx->scratch, len);
	if (!p) {
		rdps_set_error(-ENOMEM, "out of memory (%zu bytes)", len);
		return NULL;
	}
	ctx->scratch = p;
	ctx->scratch_len = len;
	return p;
}

void *rdps_buf_alloc(struct rdps_ctx *ctx, size_t bytes)
{
	struct wrk_ubuf *u;
	void *addr;
	int ret;

	if (!ctx) {
		rdps_set_error(-EINVAL, "rdps_buf_alloc: null context");
		return NULL;
	}
	if (!bytes || bytes > SIZE_MAX - WRK_PAGE) {
		rdps_set_error(-EINVAL,
			       "rdps_buf_alloc: bad size %zu: 1 byte or more, "
			       "below SIZE_MAX - %u",
			       bytes, WRK_PAGE);
		return NULL;
	}
	if (ctx->n_ubuf == ctx->cap_ubuf) {
		unsigned cap = ctx->cap_ubuf ? ctx->cap_ubuf * 2 : 8;

		u = realloc(ctx->ubuf, cap * sizeof(*u));
		if (!u) {
			rdps_set_error(-ENOMEM, "out of memory");
			return NULL;
		}
		ctx->ubuf = u;
		ctx->cap_ubuf = cap;
	}
	u = &ctx->ubuf[ctx->n_ubuf];
	memset(u, 0, sizeof(*u));
	ret = wrk_mem_get(ctx, bytes, RDPS_TP_ACCESS_LOCAL, &addr, &u->len,
			  &u->mr, "user buffer (rdps_buf_alloc)");
	if (ret)
		return NULL;
	u->addr = addr;
	ctx->n_ubuf++;
	return addr;
}

void rdps_buf_free(struct rdps_ctx *ctx, void *buf)
{
	if (!ctx || !buf)
		return;
	for (unsigned i = 0; i < ctx->n_ubuf; i++) {
		struct wrk_ubuf *u = &ctx->ubuf[i];
		void *addr = u->addr;

		if (addr != buf)
			continue;
		wrk_mem_put(ctx, &addr, &u->len, &u->mr);
		ctx->ubuf[i] = ctx->ubuf[--ctx->n_ubuf];
		return;
	}
	rdps_warn("rdps_buf_free: %p is not a buffer of rdps_buf_alloc() on "
		  "this context; ignored",
		  buf);
}
