/* SPDX-License-Identifier: MIT */
/*
 * config.h - private helpers around struct rdps_config (config.c).
 */
#ifndef RDPS_CONFIG_H
#define RDPS_CONFIG_H

#include "rdps/rdps.h"

/* Parse "bsp", "ssp", "asp" or "absp" (any case); -EINVAL with
 * rdps_errmsg() if none of them. */
int rdps_model_parse(const char *s, enum rdps_model *model_out);

/* Models rdps_model_name() names: 0 .. RDPS_MODEL_COUNT-1. */
#define RDPS_MODEL_COUNT 4

/* "bsp", "ssp", "asp" or "absp"; "?" for anything else (e.g. a peer's bad
 * value). */
const char *rdps_model_name(unsigned model);

/* "fail" or "continue" (any case) into *out; -EINVAL with rdps_errmsg(). */
int rdps_on_loss_parse(const char *s, enum rdps_on_loss *out);
const char *rdps_on_loss_name(unsigned v);

/*
 * The rank and size a cluster launcher gave this process: Slurm's
 * SLURM_PROCID and SLURM_NTASKS, else Open MPI's OMPI_COMM_WORLD_RANK and
 * OMPI_COMM_WORLD_SIZE. 1 with *rank_out < *size_out set, 0 when neither
 * launcher set any, or -EINVAL with rdps_errmsg() when a pair is half set
 * or bad (outputs untouched then).
 */
int rdps_cluster_rank(int *rank_out, int *size_out);

/* BSP and A-BSP: a clock closes on every shard at once, deltas applied in
 * worker order (END messages, applied_clock, checkpoints, no slack). */
static inline int rdps_model_in_order(enum rdps_model m)
{
	return m == RDPS_MODEL_BSP || m == RDPS_MODEL_ABSP;
}

/* rdps_config_from_env() is public: see rdps/rdps.h. */

#endif /* RDPS_CONFIG_H */
