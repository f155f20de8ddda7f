/* SPDX-License-Identifier: MIT */
/*
 * mem.c - the shard's registered regions: transport memory allocated and
 * registered in one step (directory, clock table, values, welcomes) and
 * freed in one step (those and the workers' sub-slots).
 */
#include "server/server_impl.h"

int srv_region_new(struct rdps_server *s, size_t len, unsigned access,
		   void **addr_out, struct rdps_tp_mr **mr_out)
{
	void *addr;
	int ret;

	ret = rdps_tp_mem_alloc(s->tp, len, &addr);
	if (ret)
		return ret;
	ret = rdps_tp_mem_reg(s->tp, addr, len, access, mr_out);
	if (ret) {
		rdps_tp_mem_free(s->tp, addr, len);
		return ret;
	}
	*addr_out = addr;
	return 0;
}

void srv_region_free(struct rdps_server *s, void **addr, size_t len,
		     struct rdps_tp_mr **mr)
{
	if (*mr)
		rdps_tp_mem_dereg(*mr);
	if (*addr)
		rdps_tp_mem_free(s->tp, *addr, len);
	*mr = NULL;
	*addr = NULL;
}
