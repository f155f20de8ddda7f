/* SPDX-License-Identifier: MIT */
/*
 * tp_conf_shm.c - the conformance cases of the shm transport alone,
 * registered in tp_conformance.c's table of conformance_shm.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "tp_conf.h"
#include "transport.h"

void t_shm_reg_outside_heap(void **state)
{
	struct rdps_tp_mr *mr2 = (struct rdps_tp_mr *)(uintptr_t)0x1;
	struct conn c;
	void *heap;
	int ret;

	(void)state;
	TC_REQUIRE_TRANSPORT();
	conn_open_tp(&c, NULL, 4096);
	heap = malloc(4096);
	CHECK(heap != NULL, "out of memory");
	/* Remote access lives only in the shared heap. */
	rdps_clear_error();
	ret = rdps_tp_mem_reg(c.tp, heap, 4096, RDPS_TP_ACCESS_REMOTE_READ,
			      &mr2);
	if (ret == 0)
		rdps_tp_mem_dereg(mr2);
	CHECK(ret == -EINVAL,
	      "shm: remote-read registration of memory "
	      "not from mem_alloc: %d, expected -EINVAL",
	      ret);
	CHECK(rdps_errmsg()[0] != '\0',
	      "shm: refused registration without a message");
	CHECK(mr2 == (struct rdps_tp_mr *)(uintptr_t)0x1,
	      "a failed mem_reg wrote its out-parameter");
	free(heap);
	conn_close(&c);
}
