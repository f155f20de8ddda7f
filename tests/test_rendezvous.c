/* SPDX-License-Identifier: MIT */
/*
 * test_rendezvous.c - the rendezvous line protocol and the root's job
 * bookkeeping (src/rendezvous.h), no sockets: well-formed lines of every
 * kind, malformed ones (fields, numbers, bytes, size), and the job's
 * checks of ranks, shard indexes, duplicates and finished workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "rendezvous.h"

static int parse(const char *line, struct rdps_rdv_msg *m)
{
	rdps_clear_error();
	return rdps_rdv_parse(line, strlen(line), m);
}

static void good_lines(void **state)
{
	struct rdps_rdv_msg m;

	(void)state;
	assert_int_equal(parse("HELLO 3 5 2 ssp 4", &m), 0);
	assert_int_equal(m.op, RDPS_RDV_HELLO);
	assert_int_equal(m.rank, 3);
	assert_int_equal(m.size, 5);
	assert_int_equal(m.shards, 2);
	assert_int_equal(m.model, RDPS_MODEL_SSP);
	assert_int_equal(m.slack, 4);
	assert_int_equal(parse("WELCOME 18446744073709551615", &m), 0);
	assert_true(m.token == UINT64_MAX);
	assert_int_equal(parse("PUT 1 tcp://10.0.0.1:7000", &m), 0);
	assert_int_equal(m.op, RDPS_RDV_PUT);
	assert_int_equal(m.index, 1);
	assert_string_equal(m.text, "tcp://10.0.0.1:7000");
	assert_int_equal(parse("SHARD 0 shm://rdps-1-s0", &m), 0);
	assert_int_equal(m.op, RDPS_RDV_SHARD);
	assert_int_equal(parse("DONE 255", &m), 0);
	assert_int_equal(m.status, 255);
	assert_int_equal(parse("ERR rank 2 joined twice", &m), 0);
	assert_int_equal(m.op, RDPS_RDV_ERR);
	assert_string_equal(m.text, "rank 2 joined twice");
	assert_int_equal(parse("GET", &m), 0);
	assert_int_equal(m.op, RDPS_RDV_GET);
	assert_int_equal(parse("OK", &m), 0);
	assert_int_equal(parse("END", &m), 0);
	assert_int_equal(parse("STOP", &m), 0);
	assert_int_equal(m.op, RDPS_RDV_STOP);
}

/* format then parse gives the message back. */
static void round_trip(void **state)
{
	struct rdps_rdv_msg in = {.op = RDPS_RDV_HELLO,
				  .rank = 7,
				  .size = 9,
				  .shards = 3,
				  .model = RDPS_MODEL_ASP},
			    out;
	char buf[RDPS_RDV_LINE_MAX];
	int n;

	(void)state;
	n = rdps_rdv_format(&in, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen("HELLO 7 9 3 asp 0\n"));
	assert_string_equal(buf, "HELLO 7 9 3 asp 0\n");
	assert_int_equal(rdps_rdv_parse(buf, (size_t)n - 1, &out), 0);
	assert_int_equal(out.rank, 7);
	assert_int_equal(out.model, RDPS_MODEL_ASP);
	in = (struct rdps_rdv_msg){.op = RDPS_RDV_PUT, .index = 2};
	strcpy(in.text, "verbs://[fe80::1]:0");
	n = rdps_rdv_format(&in, buf, sizeof(buf));
	assert_string_equal(buf, "PUT 2 verbs://[fe80::1]:0\n");
	assert_int_equal(rdps_rdv_parse(buf, (size_t)n - 1, &out), 0);
	assert_string_equal(out.text, in.text);
	/* A buffer too small is refused, never overrun. */
	assert_int_equal(rdps_rdv_format(&in, buf, 8), -EMSGSIZE);
}

static void bad_lines(void **state)
{
	static const char *const bad[] = {
		"",
		"hello 0 2 1 bsp 0",		/* case matters */
		"HELLO 0 2 1 bsp",		/* missing field */
		"HELLO 0 2 1 bsp 0 9",		/* extra field */
		"HELLO  0 2 1 bsp 0",		/* empty field */
		"HELLO 0 2 1 bsp 0 ",		/* trailing space */
		" GET",				/* leading space */
		"HELLO -1 2 1 bsp 0",		/* sign */
		"HELLO +1 2 1 bsp 0",		/* sign */
		"HELLO 01 2 1 bsp 0",		/* leading zero */
		"HELLO 0x1 2 1 bsp 0",		/* hex */
		"HELLO 0 2 1 xsp 0",		/* model */
		"HELLO 0 2 1 bsp 63",		/* slack too big */
		"HELLO 0 2 257 bsp 0",		/* too many shards */
		"WELCOME 18446744073709551616", /* u64 overflow */
		"WELCOME 99999999999999999999999",
		"PUT 256 tcp://h:1",	     /* shard index too big */
		"PUT 1 tcp//h:1",	     /* not a url */
		"PUT 1 ://h",		     /* no scheme */
		"PUT 1 tcp://",		     /* no address */
		"PUT 1 tcp://a:1,tcp://b:1", /* a comma splits RDPS_SHARDS */
		"PUT 1",
		"DONE 256",
		"DONE",
		"GET now",
		"STOP 1",
		"ERR",
		"FROB 1",
		"GET\r",
	};
	struct rdps_rdv_msg m;

	(void)state;
	for (unsigned i = 0; i < RDPS_ARRAY_SIZE(bad); i++) {
		int ret = parse(bad[i], &m);

		if (ret != -EINVAL)
			fail_msg("'%s' gave %d, want -EINVAL", bad[i], ret);
		assert_true(*rdps_errmsg() != '\0');
	}
}

static void bad_bytes_and_size(void **state)
{
	char line[2 * RDPS_RDV_LINE_MAX];
	struct rdps_rdv_msg m;

	(void)state;
	/* An embedded NUL, a tab, a high byte. */
	assert_int_equal(rdps_rdv_parse("GET\0X", 5, &m), -EINVAL);
	assert_int_equal(rdps_rdv_parse("DONE\t0", 6, &m), -EINVAL);
	assert_int_equal(rdps_rdv_parse("DONE \xff", 6, &m), -EINVAL);
	/* The longest line allowed parses; one more byte is oversize. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "ERR ", 4);
	assert_int_equal(rdps_rdv_parse(line, RDPS_RDV_TEXT_MAX + 3, &m), 0);
	assert_int_equal(rdps_rdv_parse(line, RDPS_RDV_TEXT_MAX + 4, &m),
			 -EMSGSIZE);
	assert_int_equal(rdps_rdv_parse(line, RDPS_RDV_LINE_MAX, &m),
			 -EMSGSIZE);
	assert_int_equal(rdps_rdv_parse(line, sizeof(line), &m), -EMSGSIZE);
	/* A url as long as the text buffer does not fit. */
	memcpy(line, "PUT 0 tcp://", 12);
	assert_int_equal(rdps_rdv_parse(line, 6 + RDPS_RDV_TEXT_MAX - 1, &m),
			 0);
	assert_int_equal(rdps_rdv_parse(line, 6 + RDPS_RDV_TEXT_MAX, &m),
			 -EINVAL);
}

static void addresses(void **state)
{
	char host[64], port[8];

	(void)state;
	assert_int_equal(rdps_rdv_addr_parse("node1:29500", host, sizeof(host),
					     port, sizeof(port)),
			 0);
	assert_string_equal(host, "node1");
	assert_string_equal(port, "29500");
	assert_int_equal(rdps_rdv_addr_parse("[::1]:1", host, sizeof(host),
					     port, sizeof(port)),
			 0);
	assert_string_equal(host, "::1");
	static const char *const bad[] = {
		"node1",       "node1:",   ":80",     "node1:0",
		"node1:65536", "::1:80",   "[::1]80", "[]:80",
		"node1:8x",    "node1:-1", "",
	};
	for (unsigned i = 0; i < RDPS_ARRAY_SIZE(bad); i++)
		if (rdps_rdv_addr_parse(bad[i], host, sizeof(host), port,
					sizeof(port)) != -EINVAL)
			fail_msg("address '%s' was accepted", bad[i]);
}

static struct rdps_rdv_msg hello(unsigned rank, unsigned size, unsigned shards)
{
	return (struct rdps_rdv_msg){.op = RDPS_RDV_HELLO,
				     .rank = rank,
				     .size = size,
				     .shards = shards};
}

static struct rdps_rdv_msg put(unsigned index, const char *url)
{
	struct rdps_rdv_msg m = {.op = RDPS_RDV_PUT, .index = index};

	strcpy(m.text, url);
	return m;
}

static void job_checks(void **state)
{
	struct rdps_rdv_job job;
	struct rdps_rdv_msg m;

	(void)state;
	/* Shapes without a worker or a shard are refused. */
	assert_int_equal(rdps_rdv_job_init(&job, 2, 2, RDPS_MODEL_BSP, 0, 1),
			 -EINVAL);
	assert_int_equal(rdps_rdv_job_init(&job, 2, 0, RDPS_MODEL_BSP, 0, 1),
			 -EINVAL);
	assert_int_equal(rdps_rdv_job_init(&job, 4, 2, RDPS_MODEL_BSP, 0, 42),
			 0);

	/* HELLO: shape, model, range, duplicates. */
	m = hello(0, 4, 2);
	assert_int_equal(rdps_rdv_job_hello(&job, &m), 0);
	assert_int_equal(rdps_rdv_job_hello(&job, &m), -EEXIST);
	m = hello(1, 5, 2);
	assert_int_equal(rdps_rdv_job_hello(&job, &m), -EINVAL);
	m = hello(1, 4, 1);
	assert_int_equal(rdps_rdv_job_hello(&job, &m), -EINVAL);
	m = hello(1, 4, 2);
	m.model = RDPS_MODEL_SSP;
	assert_int_equal(rdps_rdv_job_hello(&job, &m), -EINVAL);
	m = hello(4, 4, 2);
	assert_int_equal(rdps_rdv_job_hello(&job, &m), -EINVAL);
	for (unsigned r = 1; r < 4; r++) {
		m = hello(r, 4, 2);
		assert_int_equal(rdps_rdv_job_hello(&job, &m), 0);
	}
	assert_int_equal(job.hellos, 4);

	/* PUT: only shards, only their own index, once. */
	m = put(0, "tcp://a:1");
	assert_int_equal(rdps_rdv_job_put(&job, 2, &m), -EINVAL); /* worker */
	assert_int_equal(rdps_rdv_job_put(&job, 1, &m), -EINVAL); /* not own */
	m = put(1, "tcp://b:1");
	assert_int_equal(rdps_rdv_job_put(&job, 1, &m), 0);
	assert_false(rdps_rdv_job_all_put(&job));
	assert_int_equal(rdps_rdv_job_put(&job, 1, &m), -EEXIST);
	m = put(0, "tcp://a:1");
	assert_int_equal(rdps_rdv_job_put(&job, 0, &m), 0);
	assert_true(rdps_rdv_job_all_put(&job));
	assert_string_equal(job.urls[0], "tcp://a:1");
	assert_string_equal(job.urls[1], "tcp://b:1");

	/* DONE: only workers, once; a lost worker counts as failed. */
	assert_int_equal(rdps_rdv_job_done(&job, 0, 0, 0), -EINVAL);
	assert_int_equal(rdps_rdv_job_done(&job, 4, 0, 0), -EINVAL);
	assert_int_equal(rdps_rdv_job_done(&job, 2, 0, 0), 0);
	assert_int_equal(rdps_rdv_job_done(&job, 2, 0, 0), -EEXIST);
	assert_false(rdps_rdv_job_all_done(&job));
	assert_int_equal(rdps_rdv_job_done(&job, 3, 0, 1), 0);
	assert_true(rdps_rdv_job_all_done(&job));
	assert_int_equal(job.failed, 1);
	rdps_rdv_job_fini(&job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_lines),
		cmocka_unit_test(round_trip),
		cmocka_unit_test(bad_lines),
		cmocka_unit_test(bad_bytes_and_size),
		cmocka_unit_test(addresses),
		cmocka_unit_test(job_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
