/* SPDX-License-Identifier: MIT */
/*
 * config.c - worker configuration: defaults and the environment.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <strings.h>

#include "config.h"
#include "ps_proto.h"
#include "rdps_base.h"

void rdps_config_default(struct rdps_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->shards = NULL;
	cfg->rank = 0;
	cfg->workers = 1;
	cfg->model = RDPS_MODEL_BSP;
	cfg->slack = 0;
	cfg->token = 0;
	cfg->poll_mode = RDPS_POLL_ADAPTIVE;
	cfg->timeout_ms = 30000;
	cfg->clock_fanin = 0; /* automatic */
}

static const char *const model_names[] = {"bsp", "ssp", "asp", "absp"};

const char *rdps_model_name(unsigned model)
{
	return model < RDPS_ARRAY_SIZE(model_names) ? model_names[model] : "?";
}

int rdps_model_parse(const char *s, enum rdps_model *model_out)
{
	for (unsigned i = 0; s && i < RDPS_ARRAY_SIZE(model_names); i++) {
		if (!strcasecmp(s, model_names[i])) {
			*model_out = (enum rdps_model)i;
			return 0;
		}
	}
	return rdps_set_error(-EINVAL,
			      "unknown consistency model '%s': use bsp, ssp, "
			      "asp or absp",
			      s ? s : "(null)");
}

int rdps_on_loss_parse(const char *s, enum rdps_on_loss *out)
{
	if (s && !strcasecmp(s, "fail"))
		*out = RDPS_LOSS_FAIL;
	else if (s && !strcasecmp(s, "continue"))
		*out = RDPS_LOSS_CONTINUE;
	else
		return rdps_set_error(-EINVAL,
				      "unknown on-worker-loss '%s': use fail "
				      "or continue",
				      s ? s : "(null)");
	return 0;
}

const char *rdps_on_loss_name(unsigned v)
{
	return v == RDPS_LOSS_CONTINUE ? "continue" : "fail";
}

/* Parse an unsigned decimal or 0x-hex number of the whole string. */
static int parse_u64(const char *s, int allow_hex, uint64_t *v_out)
{
	unsigned long long v;
	char *end;
	int base = 10;

	while (isspace((unsigned char)*s))
		s++;
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		/* strtoull would take a second "0x" too. */
		if (!isxdigit((unsigned char)*s) ||
		    (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
			return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || end == s)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -EINVAL;
	*v_out = v;
	return 0;
}

static int env_int(const char *name, long max, int *set, long *v_out)
{
	const char *s = getenv(name);
	uint64_t v;

	*set = 0;
	if (!s)
		return 0;
	if (parse_u64(s, 0, &v) || v > (uint64_t)max)
		return rdps_set_error(-EINVAL,
				      "bad %s '%s': expected a whole number "
				      "from 0 to %ld",
				      name, s, max);
	*set = 1;
	*v_out = (long)v;
	return 0;
}

/* One launcher's rank/size pair; both or neither must be set. */
static int env_pair(const char *rname, const char *sname, int *found, int *rank,
		    int *size)
{
	int rset, sset, ret;
	long r = 0, s = 0;

	ret = env_int(rname, INT_MAX, &rset, &r);
	if (ret)
		return ret;
	ret = env_int(sname, INT_MAX, &sset, &s);
	if (ret)
		return ret;
	*found = rset || sset;
	if (!*found)
		return 0;
	if (rset != sset)
		return rdps_set_error(-EINVAL,
				      "%s is set but %s is not: set both "
				      "(rank and worker count)",
				      rset ? rname : sname,
				      rset ? sname : rname);
	if (s < 1)
		return rdps_set_error(-EINVAL,
				      "bad %s '%ld': need at least 1 worker",
				      sname, s);
	if (r >= s)
		return rdps_set_error(-EINVAL,
				      "bad %s '%ld': must be below %s (%ld)",
				      rname, r, sname, s);
	*rank = (int)r;
	*size = (int)s;
	return 0;
}

int rdps_cluster_rank(int *rank_out, int *size_out)
{
	static const char *const pairs[][2] = {
		{"SLURM_PROCID", "SLURM_NTASKS"},
		{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
	};
	int found, ret;

	for (unsigned i = 0; i < RDPS_ARRAY_SIZE(pairs); i++) {
		ret = env_pair(pairs[i][0], pairs[i][1], &found, rank_out,
			       size_out);
		if (ret || found)
			return ret ? ret : 1;
	}
	return 0;
}

int rdps_config_from_env(struct rdps_config *cfg)
{
	struct rdps_config tmp = *cfg;
	const char *s;
	uint64_t v;
	int found = 0, set, ret;
	long slack, fanin;

	/* Ours first: rdps-launch and rdps-run set them over the cluster's. */
	ret = env_pair("RDPS_RANK", "RDPS_WORKERS", &found, &tmp.rank,
		       &tmp.workers);
	if (!ret && !found)
		ret = rdps_cluster_rank(&tmp.rank, &tmp.workers);
	if (ret < 0)
		return ret;
	s = getenv("RDPS_SHARDS");
	if (s) {
		if (!*s)
			return rdps_set_error(-EINVAL,
					      "RDPS_SHARDS is empty: give the "
					      "shard urls, comma-separated");
		tmp.shards = s;
	}
	s = getenv("RDPS_MODEL");
	if (s && rdps_model_parse(s, &tmp.model))
		return rdps_set_error(-EINVAL,
				      "bad RDPS_MODEL '%s': use bsp, ssp, asp "
				      "or absp",
				      s);
	ret = env_int("RDPS_SLACK", PS_CLOCK_K_MAX - 2, &set, &slack);
	if (ret)
		return ret;
	if (set)
		tmp.slack = (unsigned)slack;
	s = getenv("RDPS_TOKEN");
	if (s) {
		if (parse_u64(s, 1, &v))
			return rdps_set_error(-EINVAL,
					      "bad RDPS_TOKEN '%s': expected "
					      "a decimal or 0x-hex 64-bit "
					      "number",
					      s);
		tmp.token = v;
	}
	s = getenv("RDPS_ON_WORKER_LOSS");
	if (s && rdps_on_loss_parse(s, &tmp.on_worker_loss))
		return rdps_set_error(-EINVAL,
				      "bad RDPS_ON_WORKER_LOSS '%s': use fail "
				      "or continue",
				      s);
	ret = env_int("RDPS_CLOCK_FANIN", PS_FANIN_MAX, &set, &fanin);
	if (ret)
		return ret;
	if (set)
		tmp.clock_fanin = (int)fanin;
	*cfg = tmp;
	return 0;
}
