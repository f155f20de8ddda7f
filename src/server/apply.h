/* SPDX-License-Identifier: MIT */
/*
 * apply.h - a shard's update rules (ps_proto.h: SUM, SGD, Adagrad over f32
 * or f64) and the BSP pending deltas they apply at the end of a clock.
 *
 * Pure: plain memory in, plain memory out. No transport, no server, no
 * allocation but the pending buffers', no logging, so tests/test_apply.c
 * checks every rule by hand. Not thread-safe: a slice is changed by one
 * thread at a time (the shard's loop).
 */
#ifndef RDPS_SERVER_APPLY_H
#define RDPS_SERVER_APPLY_H

#include <stddef.h>
#include <stdint.h>

/*
 * The values of one table that a shard holds, [lo, hi) of its elements,
 * and the rule that changes them. Owned by the table (tables.c): params
 * and acc are its memory; the rules only write through them.
 */
struct srv_slice {
	uint32_t dtype; /* PS_DTYPE_F32 or PS_DTYPE_F64 */
	uint32_t rule;	/* PS_RULE_SUM .. PS_RULE_MAX */
	unsigned esize; /* ps_dtype_size(dtype): 4 or 8 bytes */
	double lr;	/* SGD and Adagrad; rounded to dtype when applied */
	uint64_t len;	/* hi - lo: elements held here */
	void *params;	/* len elements */
	void *acc;	/* Adagrad: len sums of squares; NULL otherwise */
};

/*
 * What one worker pushed for the clock being collected (BSP and A-BSP):
 * the sum of its deltas, applied with the others' in worker order once
 * every worker ended the clock, so the result does not depend on the order
 * in which the workers' messages arrived. For the put rules the buffer
 * holds the last value pushed per element instead, followed by len bytes
 * that mark the elements pushed (one allocation, so free(buf) frees all).
 */
struct srv_pend {
	void *buf;	   /* len elements, zero outside [dlo, dhi) (then the
			    * put rules' marks); NULL: nothing pushed yet
			    * (allocated on first add) */
	uint64_t dlo, dhi; /* touched range, slice offsets; empty: dlo >= dhi */
};

/*
 * Apply n values to params [off, off + n) by sl's rule: SUM adds, SGD
 * subtracts lr times the value, Adagrad adds the value's square to acc and
 * subtracts lr times the value over the square root of acc + 1e-8, PUT
 * overwrites, PUT_IF_BETTER overwrites all n if the first value is at
 * most params[off] and leaves them otherwise (rdps.h). The
 * values are stride bytes apart starting at d and need no alignment (the
 * values of sparse pairs sit behind 8-byte indices). The caller checked
 * that [off, off + n) lies within sl->len. Never fails.
 */
void srv_apply(const struct srv_slice *sl, uint64_t off, uint64_t n,
	       const void *d, size_t stride);

/*
 * BSP: add n values (stride bytes apart at d) to the pending delta pd of
 * one worker at slice offsets [off, off + n), and widen its touched range;
 * for the put rules, store them over what the worker pushed before and
 * mark them. The first add allocates pd->buf (sl->len zeroed elements,
 * plus the marks for the put rules). 0, or -ENOMEM with pd unchanged.
 * Release pd->buf with free().
 */
int srv_pend_add(struct srv_pend *pd, const struct srv_slice *sl, uint64_t off,
		 uint64_t n, const void *d, size_t stride);

/*
 * BSP: a clock is complete: apply the pending deltas of workers
 * 0 .. workers - 1 to sl, in that order, each by srv_apply() over its
 * touched range (the put rules: its marked elements; PUT_IF_BETTER as one
 * block keyed by the first of the range), and leave every one empty
 * (zeroed, buffer kept).
 */
void srv_pend_apply(const struct srv_slice *sl, struct srv_pend *pend,
		    unsigned workers);

#endif /* RDPS_SERVER_APPLY_H */
