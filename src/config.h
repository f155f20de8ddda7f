/* SPDX-License-Identifier: MIT */
/*
 * config.h - private helpers around struct rdps_config (config.c).
 */
#ifndef RDPS_CONFIG_H
#define RDPS_CONFIG_H

#include "rdps/rdps.h"

/* Parse "bsp", "ssp" or "asp" (any case); -EINVAL with rdps_errmsg() if
 * none of them. */
int rdps_model_parse(const char *s, enum rdps_model *model_out);

/*
 * Override fields of cfg from the environment, leaving the others alone:
 * rank/workers from RDPS_RANK/RDPS_WORKERS, else SLURM_PROCID/SLURM_NTASKS,
 * else OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE; shards from RDPS_SHARDS
 * (cfg->shards then points into the environment); model from RDPS_MODEL;
 * slack from RDPS_SLACK; token from RDPS_TOKEN (decimal or 0x hex).
 * -EINVAL with rdps_errmsg() naming the variable if a value is malformed;
 * cfg is changed only on success.
 */
int rdps_config_from_env(struct rdps_config *cfg);

#endif /* RDPS_CONFIG_H */
