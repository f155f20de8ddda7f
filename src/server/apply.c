/* SPDX-License-Identifier: MIT */
/*
 * apply.c - the update rules and the BSP pending deltas (apply.h). Called
 * on the push path for every dense range and every sparse pair, so the
 * rules are written out once per element type by macro.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ps_proto.h"
#include "server/apply.h"

/*
 * dst[i] += src[i] for dense deltas, 32 bytes at a time with the compiler's
 * vector extension: -O2 leaves the plain loop scalar (it needs a scalar
 * tail). Element-wise IEEE adds, so results are those of the plain loop.
 * memcpy keeps the loads and stores free of alignment assumptions.
 */
#define SRV_DEFINE_ADD(sfx, type)                                         \
	typedef type srv_vec_##sfx __attribute__((vector_size(32)));      \
	static void srv_add_##sfx(type *dst, const type *src, uint64_t n) \
	{                                                                 \
		const uint64_t w = sizeof(srv_vec_##sfx) / sizeof(type);  \
		uint64_t i = 0;                                           \
		srv_vec_##sfx a, b;                                       \
                                                                          \
		for (; i + w <= n; i += w) {                              \
			memcpy(&a, dst + i, sizeof(a));                   \
			memcpy(&b, src + i, sizeof(b));                   \
			a += b;                                           \
			memcpy(dst + i, &a, sizeof(a));                   \
		}                                                         \
		for (; i < n; i++)                                        \
			dst[i] += src[i];                                 \
	}

SRV_DEFINE_ADD(f32, float)
SRV_DEFINE_ADD(f64, double)

/*
 * d may be unaligned (sparse pairs), so values are copied out. SUM is the
 * accumulation of BSP's pending deltas, dst[i] += v, applied to params.
 */
#define SRV_DEFINE_APPLY(sfx, type, sqrtfn)                                    \
	static void srv_accum_##sfx(type *dst, const void *d_, uint64_t n,     \
				    size_t stride)                             \
	{                                                                      \
		const unsigned char *d = d_;                                   \
		type v;                                                        \
                                                                               \
		if (stride == sizeof(type)) {                                  \
			srv_add_##sfx(dst, d_, n);                             \
			return;                                                \
		}                                                              \
		for (uint64_t i = 0; i < n; i++) {                             \
			memcpy(&v, d + i * stride, sizeof(v));                 \
			dst[i] += v;                                           \
		}                                                              \
	}                                                                      \
                                                                               \
	static void srv_apply_##sfx(const struct srv_slice *sl, uint64_t off,  \
				    uint64_t n, const void *d_, size_t stride) \
	{                                                                      \
		type *p = (type *)sl->params + off;                            \
		type *acc = sl->acc ? (type *)sl->acc + off : NULL;            \
		const unsigned char *d = d_;                                   \
		const type lr = (type)sl->lr;                                  \
		type v;                                                        \
                                                                               \
		switch (sl->rule) {                                            \
		case PS_RULE_SUM:                                              \
			srv_accum_##sfx(p, d_, n, stride);                     \
			return;                                                \
		case PS_RULE_SGD:                                              \
			for (uint64_t i = 0; i < n; i++) {                     \
				memcpy(&v, d + i * stride, sizeof(v));         \
				p[i] -= lr * v;                                \
			}                                                      \
			return;                                                \
		case PS_RULE_ADAGRAD:                                          \
			for (uint64_t i = 0; i < n; i++) {                     \
				memcpy(&v, d + i * stride, sizeof(v));         \
				acc[i] += v * v;                               \
				p[i] -= lr * v / sqrtfn(acc[i] + (type)1e-8);  \
			}                                                      \
			return;                                                \
		case PS_RULE_PUT_IF_BETTER:                                    \
			if (!n)                                                \
				return;                                        \
			memcpy(&v, d, sizeof(v));                              \
			if (!(v <= p[0]))                                      \
				return;                                        \
			__attribute__((fallthrough));                          \
		case PS_RULE_PUT:                                              \
			for (uint64_t i = 0; i < n; i++)                       \
				memcpy(&p[i], d + i * stride, sizeof(v));      \
			return;                                                \
		}                                                              \
	}                                                                      \
                                                                               \
	/* The put rules' pending values: the marked ones of [off, off+n). */  \
	static void srv_put_marked_##sfx(const struct srv_slice *sl,           \
					 uint64_t off, uint64_t n,             \
					 const type *b, const uint8_t *mark)   \
	{                                                                      \
		type *p = (type *)sl->params + off;                            \
                                                                               \
		if (sl->rule == PS_RULE_PUT_IF_BETTER && !(b[0] <= p[0]))      \
			return;                                                \
		for (uint64_t i = 0; i < n; i++)                               \
			if (mark[i])                                           \
				p[i] = b[i];                                   \
	}

SRV_DEFINE_APPLY(f32, float, sqrtf)
SRV_DEFINE_APPLY(f64, double, sqrt)

void srv_apply(const struct srv_slice *sl, uint64_t off, uint64_t n,
	       const void *d, size_t stride)
{
	if (sl->dtype == PS_DTYPE_F64)
		srv_apply_f64(sl, off, n, d, stride);
	else
		srv_apply_f32(sl, off, n, d, stride);
}

static bool srv_rule_puts(uint32_t rule)
{
	return rule == PS_RULE_PUT || rule == PS_RULE_PUT_IF_BETTER;
}

int srv_pend_add(struct srv_pend *pd, const struct srv_slice *sl, uint64_t off,
		 uint64_t n, const void *d, size_t stride)
{
	bool puts = srv_rule_puts(sl->rule);

	if (!pd->buf) {
		pd->buf = calloc(sl->len, sl->esize + (puts ? 1 : 0));
		if (!pd->buf)
			return -ENOMEM;
		pd->dlo = sl->len;
		pd->dhi = 0;
	}
	if (puts) {
		unsigned char *b = (unsigned char *)pd->buf + off * sl->esize;
		const unsigned char *src = d;

		for (uint64_t i = 0; i < n; i++)
			memcpy(b + i * sl->esize, src + i * stride, sl->esize);
		memset((unsigned char *)pd->buf + sl->len * sl->esize + off, 1,
		       n);
	} else if (sl->dtype == PS_DTYPE_F64)
		srv_accum_f64((double *)pd->buf + off, d, n, stride);
	else
		srv_accum_f32((float *)pd->buf + off, d, n, stride);
	if (off < pd->dlo)
		pd->dlo = off;
	if (off + n > pd->dhi)
		pd->dhi = off + n;
	return 0;
}

void srv_pend_apply(const struct srv_slice *sl, struct srv_pend *pend,
		    unsigned workers)
{
	for (unsigned w = 0; w < workers; w++) {
		struct srv_pend *pd = &pend[w];
		unsigned char *b = pd->buf;

		if (!b || pd->dlo >= pd->dhi)
			continue;
		b += pd->dlo * sl->esize;
		if (srv_rule_puts(sl->rule)) {
			uint8_t *mark = (uint8_t *)pd->buf +
					sl->len * sl->esize + pd->dlo;

			if (sl->dtype == PS_DTYPE_F64)
				srv_put_marked_f64(sl, pd->dlo,
						   pd->dhi - pd->dlo,
						   (const double *)b, mark);
			else
				srv_put_marked_f32(sl, pd->dlo,
						   pd->dhi - pd->dlo,
						   (const float *)b, mark);
			memset(mark, 0, pd->dhi - pd->dlo);
		} else {
			srv_apply(sl, pd->dlo, pd->dhi - pd->dlo, b, sl->esize);
		}
		memset(b, 0, (pd->dhi - pd->dlo) * sl->esize);
		pd->dlo = sl->len;
		pd->dhi = 0;
	}
}
