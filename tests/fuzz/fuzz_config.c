/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer target over rdps_config_from_env() and the
 * value parsers next to it (rdps_model_parse, rdps_log_parse_level): the
 * environment a launcher, a batch system or a user sets.
 *
 * Input: records separated by NUL bytes; a record's first byte picks a
 * variable of vars[] (modulo their count), the rest is its value. Every
 * variable not named is unset, so the input decides which launcher's
 * rank/size pair is present, and empty values are possible. Each input
 * checks:
 *   - failure is -EINVAL with an rdps_errmsg() and leaves cfg untouched;
 *   - success gives 0 <= rank < workers, a known model, slack within the
 *     clock window, shards NULL or the non-empty RDPS_SHARDS itself,
 *     poll_mode and timeout_ms untouched; rank, workers, slack and token
 *     equal what strtoull makes of the variables that were set (rank and
 *     size from the first pair present: RDPS_, SLURM_, OMPI_);
 *     on_worker_loss continue exactly when RDPS_ON_WORKER_LOSS says so.
 * Verdict (fuzz.h): whether rdps_config_from_env() accepted the input.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "fuzz.h"
#include "ps_proto.h"
#include "rdps/rdps.h"

int fuzz_verdict;

enum {
	V_RANK,
	V_WORKERS,
	V_SLURM_RANK,
	V_SLURM_SIZE,
	V_OMPI_RANK,
	V_OMPI_SIZE,
	V_SHARDS,
	V_MODEL,
	V_SLACK,
	V_TOKEN,
	V_LOG_LEVEL, /* not read by rdps_config_from_env: parsed directly */
	V_ON_LOSS,
	V_COUNT,
};

static const char *const vars[V_COUNT] = {
	"RDPS_RANK",	"RDPS_WORKERS",		"SLURM_PROCID",
	"SLURM_NTASKS", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
	"RDPS_SHARDS",	"RDPS_MODEL",		"RDPS_SLACK",
	"RDPS_TOKEN",	"RDPS_LOG_LEVEL",	"RDPS_ON_WORKER_LOSS",
};

#define VAL_MAX 1024

/*
 * putenv() with buffers we own: setenv() keeps every value it ever set,
 * which millions of fuzz inputs would turn into gigabytes.
 */
static char env_buf[V_COUNT][32 + VAL_MAX + 1];
static const char *val[V_COUNT]; /* NULL: unset */

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_config", what, size);
}

static void env_apply(void)
{
	for (int i = 0; i < V_COUNT; i++) {
		if (val[i])
			putenv(env_buf[i]);
		else
			unsetenv(vars[i]);
	}
}

/* The value parse_u64 in config.c must agree with: decimal, or 0x-hex. */
static uint64_t oracle_u64(const char *s, int allow_hex)
{
	while (isspace((unsigned char)*s))
		s++;
	if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return strtoull(s + 2, NULL, 16);
	return strtoull(s, NULL, 10);
}

static void check_ok(const struct rdps_config *before,
		     const struct rdps_config *c, size_t size)
{
	static const int pairs[][2] = {{V_RANK, V_WORKERS},
				       {V_SLURM_RANK, V_SLURM_SIZE},
				       {V_OMPI_RANK, V_OMPI_SIZE}};

	if (c->workers < 1 || c->rank < 0 || c->rank >= c->workers)
		breach("accepted a rank outside 0 .. workers-1", size);
	if ((unsigned)c->model >= RDPS_MODEL_COUNT)
		breach("accepted an unknown model", size);
	if (c->slack > PS_CLOCK_K_MAX - 2)
		breach("accepted a slack beyond the clock window", size);
	if (c->poll_mode != before->poll_mode ||
	    c->timeout_ms != before->timeout_ms)
		breach("changed a field no variable sets", size);
	if (val[V_SHARDS] ? c->shards != getenv("RDPS_SHARDS") || !*c->shards
			  : c->shards != before->shards)
		breach("shards is not RDPS_SHARDS", size);
	for (unsigned i = 0; i < 3; i++) {
		const char *r = val[pairs[i][0]], *s = val[pairs[i][1]];

		if (!r && !s)
			continue;
		if (!r || !s)
			breach("accepted half a rank/size pair", size);
		if ((uint64_t)c->rank != oracle_u64(r, 0) ||
		    (uint64_t)c->workers != oracle_u64(s, 0))
			breach("rank or workers differ from the variables",
			       size);
		break;
	}
	if (val[V_SLACK] && c->slack != oracle_u64(val[V_SLACK], 0))
		breach("slack differs from RDPS_SLACK", size);
	if (val[V_TOKEN] && c->token != oracle_u64(val[V_TOKEN], 1))
		breach("token differs from RDPS_TOKEN", size);
	if (!val[V_TOKEN] && c->token != before->token)
		breach("token changed without RDPS_TOKEN", size);
	if (val[V_ON_LOSS] ? (int)c->on_worker_loss !=
				     !strcasecmp(val[V_ON_LOSS], "continue")
			   : c->on_worker_loss != before->on_worker_loss)
		breach("on_worker_loss differs from RDPS_ON_WORKER_LOSS", size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rdps_config before, c;
	enum rdps_log_level lvl;
	enum rdps_model model;
	size_t i = 0;
	int ret;

	fuzz_verdict = FUZZ_NONE;
	memset(val, 0, sizeof(val));
	while (i < size) {
		const uint8_t *end = memchr(data + i, 0, size - i);
		size_t n = end ? (size_t)(end - data) - i : size - i;
		size_t vlen;
		int v, k;

		if (!n) { /* an empty record */
			i++;
			continue;
		}
		v = data[i] % V_COUNT;
		vlen = n - 1 > VAL_MAX ? VAL_MAX : n - 1;
		k = snprintf(env_buf[v], sizeof(env_buf[v]), "%s=", vars[v]);
		memcpy(env_buf[v] + k, data + i + 1, vlen);
		env_buf[v][k + vlen] = '\0';
		val[v] = env_buf[v] + k;
		i += n + 1;
	}
	env_apply();

	rdps_config_default(&c);
	c.token = 0x0123456789abcdefull; /* tell "kept" from "parsed as 0" */
	before = c;
	ret = rdps_config_from_env(&c);
	if (ret) {
		fuzz_verdict = FUZZ_REJECT;
		if (ret != -EINVAL)
			breach("failed with something else than -EINVAL", size);
		if (!*rdps_errmsg())
			breach("failed without an rdps_errmsg", size);
		if (memcmp(&c, &before, sizeof(c)))
			breach("failed but changed cfg", size);
	} else {
		fuzz_verdict = FUZZ_ACCEPT;
		check_ok(&before, &c, size);
	}

	/* The value parsers on their own, with any string. */
	if (val[V_MODEL] && !rdps_model_parse(val[V_MODEL], &model) &&
	    (unsigned)model >= RDPS_MODEL_COUNT)
		breach("rdps_model_parse accepted an unknown model", size);
	if (val[V_LOG_LEVEL] && !rdps_log_parse_level(val[V_LOG_LEVEL], &lvl) &&
	    ((int)lvl < RDPS_LOG_ERROR || (int)lvl > RDPS_LOG_TRACE))
		breach("rdps_log_parse_level accepted an unknown level", size);
	return 0;
}
