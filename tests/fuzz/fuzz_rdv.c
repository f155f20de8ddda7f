/* SPDX-License-Identifier: MIT */
/*
 * fuzz_rdv.c - libFuzzer target over the rendezvous protocol: the line
 * parser rdps_rdv_parse() (every byte a rank or the root sends), the
 * root's job bookkeeping it feeds, and rdps_rdv_addr_parse() (RDPS_ROOT).
 *
 * Input: lines separated by '\n', as on the socket (the first 16 count).
 * Each line goes through rdps_rdv_parse(); each accepted one must survive
 * rdps_rdv_format() and a second parse unchanged, and HELLO, PUT and DONE
 * then drive a job of 6 ranks, 2 shards, model ssp, slack 1 the way the
 * root's server does (PUT and DONE on behalf of the rank of the last
 * accepted HELLO): its counters must never exceed the job's shape, and
 * every registered url must pass the parser's own url check. The first
 * line is also given to rdps_rdv_addr_parse(), whose outputs must be
 * NUL-terminated within their buffers, the port 1..65535.
 * Verdict (fuzz.h): whether rdps_rdv_parse() accepted the first line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rdps/rdps.h"
#include "rendezvous.h"

int fuzz_verdict;

#define JOB_SIZE 6
#define JOB_SHARDS 2
#define MAX_LINES 16

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_rdv", what, size);
}

static void check_roundtrip(const struct rdps_rdv_msg *m, size_t size)
{
	struct rdps_rdv_msg again;
	char buf[RDPS_RDV_LINE_MAX];
	int n = rdps_rdv_format(m, buf, sizeof(buf));

	if (n <= 0 || buf[n - 1] != '\n')
		breach("cannot format what was parsed", size);
	if (rdps_rdv_parse(buf, (size_t)n - 1, &again))
		breach("the formatted line does not parse again", size);
	if (again.op != m->op || again.rank != m->rank ||
	    again.size != m->size || again.shards != m->shards ||
	    again.slack != m->slack || again.model != m->model ||
	    again.token != m->token || again.index != m->index ||
	    again.status != m->status || strcmp(again.text, m->text))
		breach("format and parse do not round-trip", size);
}

static void check_addr(const uint8_t *line, size_t len, size_t size)
{
	char host[64], port[8];
	char *s = malloc(len + 1);
	unsigned long p;

	if (!s)
		return;
	memcpy(s, line, len);
	s[len] = '\0';
	memset(host, 0x5a, sizeof(host));
	memset(port, 0x5a, sizeof(port));
	if (!rdps_rdv_addr_parse(s, host, sizeof(host), port, sizeof(port))) {
		if (!memchr(host, '\0', sizeof(host)) ||
		    !memchr(port, '\0', sizeof(port)) || !host[0])
			breach("addr: host or port not a string", size);
		p = strtoul(port, NULL, 10);
		if (p < 1 || p > 65535)
			breach("addr: port outside 1..65535", size);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rdps_rdv_job job;
	struct rdps_rdv_msg m;
	size_t off = 0;
	int rank = -1;

	fuzz_verdict = FUZZ_NONE;
	if (rdps_rdv_job_init(&job, JOB_SIZE, JOB_SHARDS, RDPS_MODEL_SSP, 1,
			      42))
		breach("job_init failed", size);
	for (int i = 0; i < MAX_LINES && off <= size; i++) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - data) - off : size - off;
		/* Exactly the line's bytes: a read past them is caught. */
		char *line = malloc(len ? len : 1);
		int ret;

		if (!line)
			break;
		memcpy(line, data + off, len);
		if (i == 0)
			check_addr(data, len, size);
		ret = rdps_rdv_parse(line, len, &m);
		free(line);
		if (i == 0)
			fuzz_verdict = ret ? FUZZ_REJECT : FUZZ_ACCEPT;
		if (ret && ret != -EINVAL && ret != -EMSGSIZE)
			breach("failed with something else than -EINVAL or "
			       "-EMSGSIZE",
			       size);
		if (ret && !*rdps_errmsg())
			breach("failed without an rdps_errmsg", size);
		if (!ret) {
			check_roundtrip(&m, size);
			if (m.op == RDPS_RDV_HELLO &&
			    !rdps_rdv_job_hello(&job, &m))
				rank = (int)m.rank;
			else if (m.op == RDPS_RDV_PUT && rank >= 0)
				rdps_rdv_job_put(&job, (unsigned)rank, &m);
			else if (m.op == RDPS_RDV_DONE && rank >= 0)
				rdps_rdv_job_done(&job, (unsigned)rank,
						  m.status, 0);
		}
		if (!nl)
			break;
		off += len + 1;
	}
	if (job.hellos > JOB_SIZE || job.puts > JOB_SHARDS ||
	    job.dones > JOB_SIZE - JOB_SHARDS || job.failed > job.dones)
		breach("job counters beyond the job's shape", size);
	for (unsigned s = 0; s < JOB_SHARDS; s++) {
		const char *u = job.urls[s];

		if (u[0] && (!strstr(u, "://") || strchr(u, ',')))
			breach("job registered a malformed url", size);
	}
	rdps_rdv_job_fini(&job);
	return 0;
}
