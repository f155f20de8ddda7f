/* SPDX-License-Identifier: MIT */
/*
 * test_tools.c - the option parsers and printers of tools/common.c.
 *
 * common.h promises that a parser either succeeds silently or prints one
 * line "<tool>: ..." to stderr and returns -EINVAL without touching its
 * output, so every case captures stderr and checks that as well as the
 * value. Expected values are worked out by hand in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "test_check.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * 1024 * 1024)

/* stderr capture --------------------------------------------------------- */

static char err_text[4096];
static int saved_fd = -1;
static FILE *err_tmp;

static void cap_begin(void)
{
	fflush(stderr);
	err_tmp = tmpfile();
	assert_non_null(err_tmp);
	saved_fd = dup(STDERR_FILENO);
	assert_true(saved_fd >= 0);
	assert_true(dup2(fileno(err_tmp), STDERR_FILENO) >= 0);
}

static const char *cap_end(void)
{
	size_t n;

	fflush(stderr);
	dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);
	saved_fd = -1;
	rewind(err_tmp);
	n = fread(err_text, 1, sizeof(err_text) - 1, err_tmp);
	err_text[n] = '\0';
	fclose(err_tmp);
	err_tmp = NULL;
	return err_text;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* One line, "rdps-test: ...", ending in a newline, mentioning want. */
static void check_one_error(const char *err, const char *want, const char *what)
{
	CHECK(!strncmp(err, "rdps-test: ", 11),
	      "%s: error line does not start with the tool name: '%s'", what,
	      err);
	CHECK(count_lines(err) == 1 && err[strlen(err) - 1] == '\n',
	      "%s: want exactly one line on stderr, got '%s'", what, err);
	if (want)
		CHECK(strstr(err, want), "%s: error '%s' does not mention '%s'",
		      what, err, want);
}

static int group_setup(void **state)
{
	(void)state;
	tool_name = "rdps-test";
	return 0;
}

/* Byte counts ------------------------------------------------------------ */

static void bytes_ok(const char *s, size_t min, size_t max, size_t want)
{
	size_t out = 12345;
	const char *err;
	int ret;

	cap_begin();
	ret = tool_parse_bytes(s, min, max, &out);
	err = cap_end();
	CHECK(ret == 0, "'%s': %d, stderr '%s'", s, ret, err);
	CHECK(out == want, "'%s' parsed as %zu, want %zu", s, out, want);
	CHECK(!*err, "'%s': success printed '%s'", s, err);
}

static void bytes_bad(const char *s, size_t min, size_t max)
{
	size_t out = 12345;
	const char *err;
	int ret;

	cap_begin();
	ret = tool_parse_bytes(s, min, max, &out);
	err = cap_end();
	CHECK(ret == -EINVAL, "'%s' accepted (%d) as %zu", s, ret, out);
	CHECK(out == 12345, "'%s': out written on failure", s);
	check_one_error(err, NULL, s);
}

static void t_bytes(void **state)
{
	(void)state;
	bytes_ok("8", 8, 4 * MiB, 8);
	bytes_ok("64", 8, 4 * MiB, 64);
	bytes_ok("4k", 8, 4 * MiB, 4096); /* 4 * 1024 */
	bytes_ok("4K", 8, 4 * MiB, 4096);
	bytes_ok("1m", 8, 4 * MiB, 1048576);	 /* 1024 * 1024 */
	bytes_ok("4M", 8, 4 * MiB, 4194304);	 /* the upper bound */
	bytes_ok("1g", 1, SIZE_MAX, 1073741824); /* 1024^3 */
	bytes_ok("3G", 1, SIZE_MAX, 3221225472ull);
	bytes_ok("4kb", 8, 4 * MiB, 4096);
	bytes_ok("4KiB", 8, 4 * MiB, 4096);
	bytes_ok("2MiB", 8, 4 * MiB, 2097152);
	bytes_ok("64b", 8, 4 * MiB, 64);
	bytes_ok("64B", 8, 4 * MiB, 64);
	bytes_ok("0008", 8, 4 * MiB, 8); /* leading zeros are decimal */
	/* (2^34 - 1) GiB = 2^64 - 2^30: the largest g multiple in 64 bits */
	bytes_ok("17179869183g", 1, SIZE_MAX, 18446744072635809792ull);
	bytes_ok("18446744073709551615", 1, SIZE_MAX, SIZE_MAX);

	bytes_bad("0", 8, 4 * MiB);	/* below 8 */
	bytes_bad("7", 8, 4 * MiB);	/* below 8 */
	bytes_bad("4097k", 8, 4 * MiB); /* 4 MiB + 1 KiB */
	bytes_bad("5m", 8, 4 * MiB);
	bytes_bad("3x", 8, 4 * MiB);
	bytes_bad("", 8, 4 * MiB);
	bytes_bad("k", 8, 4 * MiB);
	bytes_bad("-8", 8, 4 * MiB);
	bytes_bad("+8", 8, 4 * MiB);
	bytes_bad(" 8", 8, 4 * MiB);
	bytes_bad("8 ", 8, 4 * MiB);
	bytes_bad("1.5k", 8, 4 * MiB);
	bytes_bad("0x10", 8, 4 * MiB);
	bytes_bad("4ib", 8, 4 * MiB); /* "ib" only after a k/m/g */
	bytes_bad("4kk", 8, 4 * MiB);
	bytes_bad("4kbb", 8, 4 * MiB);
	bytes_bad("4t", 1, SIZE_MAX);
	/* 2^64 does not fit: strtoull overflows. */
	bytes_bad("18446744073709551616", 1, SIZE_MAX);
	/* 2^34 GiB = 2^64: overflows in the multiplication. */
	bytes_bad("17179869184g", 1, SIZE_MAX);
	bytes_bad("18446744073709551615k", 1, SIZE_MAX);
}

/* Size lists ------------------------------------------------------------- */

static void sizes_ok(const char *s, size_t min, size_t max, size_t max_n,
		     const size_t *want, size_t want_n)
{
	size_t got[80], n = 999;
	const char *err;
	int ret;

	assert_true(max_n <= 80);
	memset(got, 0, sizeof(got));
	cap_begin();
	ret = tool_parse_sizes(s, min, max, got, max_n, &n);
	err = cap_end();
	CHECK(ret == 0, "'%s': %d, stderr '%s'", s, ret, err);
	CHECK(!*err, "'%s': success printed '%s'", s, err);
	CHECK(n == want_n, "'%s': %zu sizes, want %zu", s, n, want_n);
	for (size_t i = 0; i < want_n; i++)
		CHECK(got[i] == want[i], "'%s': size %zu is %zu, want %zu", s,
		      i, got[i], want[i]);
}

static void sizes_bad(const char *s, size_t min, size_t max, size_t max_n,
		      const char *mention)
{
	size_t got[80], n = 999;
	const char *err;
	int ret;

	assert_true(max_n <= 80);
	cap_begin();
	ret = tool_parse_sizes(s, min, max, got, max_n, &n);
	err = cap_end();
	CHECK(ret == -EINVAL, "'%s' accepted (%d, %zu sizes)", s, ret, n);
	CHECK(n == 999, "'%s': n_out written on failure", s);
	check_one_error(err, mention, s);
}

static void t_sizes_lists(void **state)
{
	static const size_t l1[] = {8, 64, 4096, 1048576};
	static const size_t l2[] = {8};

	(void)state;
	sizes_ok("8,64,4k,1m", 8, 4 * MiB, 64, l1, 4);
	sizes_ok("8", 8, 4 * MiB, 64, l2, 1);
	/* Exactly max_n sizes fit. */
	sizes_ok("8,64,4k,1m", 8, 4 * MiB, 4, l1, 4);
}

static void t_sizes_ranges(void **state)
{
	size_t want[20];
	/* 3, 6, then 12 > 10 is cut to HI: 3 6 10. */
	static const size_t r1[] = {3, 6, 10};
	/* 8 16 32 64, then 128 > 100: 100. */
	static const size_t r2[] = {8, 16, 32, 64, 100};
	static const size_t r3[] = {8, 16, 32, 64, 1024};
	static const size_t r4[] = {64};

	(void)state;
	/* 8..4m doubles 8 * 2^i for i = 0..19: 2^3 .. 2^22, 20 sizes. */
	for (size_t i = 0; i < 20; i++)
		want[i] = (size_t)8 << i;
	sizes_ok("8..4m", 8, 4 * MiB, 64, want, 20);
	/* and fits in exactly 20 slots, not 19 */
	sizes_ok("8..4m", 8, 4 * MiB, 20, want, 20);
	sizes_bad("8..4m", 8, 4 * MiB, 19, "too many");
	sizes_ok("3..10", 1, 4 * MiB, 64, r1, 3);
	sizes_ok("8..100", 8, 4 * MiB, 64, r2, 5);
	sizes_ok("8,16..64,1k", 8, 4 * MiB, 64, r3, 5);
	sizes_ok("64..64", 8, 4 * MiB, 64, r4, 1);
}

static void t_sizes_bad(void **state)
{
	(void)state;
	sizes_bad("0", 8, 4 * MiB, 64, "'0'");
	sizes_bad("3x", 8, 4 * MiB, 64, "'3x'");
	sizes_bad("5m..1k", 8, 4 * MiB, 64, "5m..1k"); /* HI below LO */
	sizes_bad("8..8m", 8, 4 * MiB, 64, NULL);      /* HI over max */
	sizes_bad("4..64", 8, 4 * MiB, 64, NULL);      /* LO under min */
	sizes_bad("", 8, 4 * MiB, 64, NULL);
	sizes_bad("8,", 8, 4 * MiB, 64, NULL);
	sizes_bad(",8", 8, 4 * MiB, 64, NULL);
	sizes_bad("8,,16", 8, 4 * MiB, 64, NULL);
	sizes_bad("8..", 8, 4 * MiB, 64, NULL);
	sizes_bad("..8", 8, 4 * MiB, 64, NULL);
	sizes_bad("8...16", 8, 4 * MiB, 64, NULL);
	sizes_bad("8..16..32", 8, 4 * MiB, 64, NULL);
	sizes_bad("8.16", 8, 4 * MiB, 64, NULL);
	sizes_bad("8;16", 8, 4 * MiB, 64, NULL);
	sizes_bad("8, 16", 8, 4 * MiB, 64, NULL);
	sizes_bad("18446744073709551616", 8, 4 * MiB, 64, NULL);
	sizes_bad("8..17179869184g", 8, SIZE_MAX, 64, NULL);
	/* Too many: 8..1k is 8 sizes. */
	sizes_bad("8..1k", 8, 4 * MiB, 7, "too many");
	sizes_bad("8,16,32", 8, 4 * MiB, 2, "too many");
}

static void t_sizes_long_item(void **state)
{
	static const size_t want16[] = {16};
	static const size_t want8_16k[] = {8, 16 * KiB};
	char s[128];

	(void)state;
	/* 61 zeros and "16" is a valid 63-character item worth 16 ... */
	memset(s, '0', 61);
	strcpy(s + 61, "16");
	sizes_ok(s, 8, 4 * MiB, 64, want16, 1);
	/* ... junk after it makes it bad, however long the item is ... */
	strcpy(s + 63, "zzz");
	sizes_bad(s, 8, 4 * MiB, 64, NULL);
	/* ... and a suffix counts wherever it sits: 0...016k is 16 KiB. */
	snprintf(s, sizeof(s), "8,%061d16k", 0);
	sizes_ok(s, 8, 4 * MiB, 64, want8_16k, 2);
}

/* Counts and names ------------------------------------------------------- */

static void count_ok(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	uint64_t out = 777;
	const char *err;
	int ret;

	cap_begin();
	ret = tool_parse_count(s, "widget count", min, max, &out);
	err = cap_end();
	CHECK(ret == 0 && out == want, "'%s': %d, %llu, want %llu", s, ret,
	      (unsigned long long)out, (unsigned long long)want);
	CHECK(!*err, "'%s': success printed '%s'", s, err);
}

static void count_bad(const char *s, uint64_t min, uint64_t max)
{
	uint64_t out = 777;
	const char *err;
	int ret;

	cap_begin();
	ret = tool_parse_count(s, "widget count", min, max, &out);
	err = cap_end();
	CHECK(ret == -EINVAL, "'%s' accepted as %llu", s,
	      (unsigned long long)out);
	CHECK(out == 777, "'%s': out written on failure", s);
	check_one_error(err, "widget count", s);
}

static void t_counts(void **state)
{
	(void)state;
	count_ok("0", 0, 10, 0);
	count_ok("1", 1, 100000000, 1);
	count_ok("100000000", 1, 100000000, 100000000);
	count_ok("007", 1, 10, 7);
	count_ok("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);

	count_bad("0", 1, 100000000);
	count_bad("100000001", 1, 100000000);
	count_bad("", 0, 10);
	count_bad("-1", 0, UINT64_MAX); /* strtoull would wrap it */
	count_bad("+1", 0, 10);
	count_bad(" 1", 0, 10);
	count_bad("1 ", 0, 10);
	count_bad("1e3", 0, 10000);
	count_bad("0x10", 0, 100);
	count_bad("1k", 0, 100000); /* counts take no suffix */
	count_bad("18446744073709551616", 0, UINT64_MAX);
}

static void t_poll_modes(void **state)
{
	static const struct {
		const char *name;
		enum rdps_tp_poll_mode mode;
	} ok[] = {
		{"busy", RDPS_TP_POLL_BUSY},
		{"adaptive", RDPS_TP_POLL_ADAPTIVE},
		{"event", RDPS_TP_POLL_EVENT},
	};
	static const char *const bad[] = {"",	   "Busy",  "EVENT", "spin",
					  "busy ", "adapt", "eventx"};
	enum rdps_tp_poll_mode m;
	const char *err;
	int ret;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		m = (enum rdps_tp_poll_mode)99;
		cap_begin();
		ret = tool_parse_poll(ok[i].name, &m);
		err = cap_end();
		CHECK(ret == 0 && m == ok[i].mode, "'%s' parsed as %d (%d)",
		      ok[i].name, (int)m, ret);
		CHECK(!*err, "'%s': success printed '%s'", ok[i].name, err);
		CHECK(!strcmp(tool_poll_name(ok[i].mode), ok[i].name),
		      "name of mode %d is '%s'", (int)ok[i].mode,
		      tool_poll_name(ok[i].mode));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		m = RDPS_TP_POLL_EVENT;
		cap_begin();
		ret = tool_parse_poll(bad[i], &m);
		err = cap_end();
		CHECK(ret == -EINVAL, "poll mode '%s' accepted", bad[i]);
		CHECK(m == RDPS_TP_POLL_EVENT, "'%s': out written", bad[i]);
		check_one_error(err, "busy, adaptive or event", bad[i]);
	}
	CHECK(!strcmp(tool_poll_name((enum rdps_tp_poll_mode)3), "?"),
	      "mode 3 has a name");
}

/* Output ----------------------------------------------------------------- */

static int count_char(const char *s, char c)
{
	int n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void t_print_csv_json(void **state)
{
	struct rdps_perf_result r = {
		.op = RDPS_PERF_FADD,
		.size = 8,
		.iters = 200,
		.min_us = 1.5,
		.median_us = 2.25,
		.avg_us = 2.5,
		.stdev_us = 0.5,
		.p99_us = 4,
		.p999_us = 5,
		.max_us = 6,
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	/* CSV: the row has as many columns as the header. */
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	tool_print_header(f, TOOL_FMT_CSV, 0);
	tool_print_row(f, TOOL_FMT_CSV, "shm", &r);
	fclose(f);
	{
		char *nl = strchr(buf, '\n');

		CHECK(nl && count_lines(buf) == 2, "csv: '%s'", buf);
		*nl = '\0';
		CHECK(count_char(buf, ',') == count_char(nl + 1, ','),
		      "csv header '%s' and row '%s' differ in columns", buf,
		      nl + 1);
		CHECK(!strncmp(nl + 1, "shm,fadd,8,200,1.5000,2.2500,", 29),
		      "csv row '%s'", nl + 1);
	}
	free(buf);

	/* JSON: one object per row, nothing else. */
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	tool_print_header(f, TOOL_FMT_JSON, 0);
	tool_print_row(f, TOOL_FMT_JSON, "tcp", &r);
	fclose(f);
	CHECK(count_lines(buf) == 1 && buf[0] == '{' &&
		      !strcmp(buf + strlen(buf) - 2, "}\n"),
	      "json: '%s'", buf);
	CHECK(count_char(buf, '{') == count_char(buf, '}'),
	      "json braces unbalanced: '%s'", buf);
	CHECK(strstr(buf, "\"transport\":\"tcp\"") &&
		      strstr(buf, "\"op\":\"fadd\"") &&
		      strstr(buf, "\"size\":8,") &&
		      strstr(buf, "\"median\":2.2500") &&
		      strstr(buf, "\"p999\":5.0000"),
	      "json fields: '%s'", buf);
	CHECK(!strstr(buf, "batch"),
	      "json: a batch figure printed where none was taken: '%s'", buf);
	free(buf);

	/* The batched figure: the last CSV column and a JSON field, only
	 * where it was taken. */
	r.batch_us = 0.0215;
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	tool_print_header(f, TOOL_FMT_CSV, 0);
	tool_print_row(f, TOOL_FMT_CSV, "shm", &r);
	tool_print_row(f, TOOL_FMT_JSON, "shm", &r);
	fclose(f);
	CHECK(strstr(buf, ",max_us,batch_us\n") &&
		      strstr(buf, ",6.0000,0.0215\n") &&
		      strstr(buf, ",\"max\":6.0000,\"batch\":0.0215}}\n"),
	      "batch figure: '%s'", buf);
	free(buf);
}

/*
 * Processes of one job share stderr (rdps-launch's workers, the shards):
 * a line from tool_err() must reach it whole, never cut by another
 * process's line. TE_PROCS children print TE_LINES lines each into one
 * pipe at once; every line read back must be one of theirs, intact.
 */
#define TE_PROCS 6
#define TE_LINES 400

static void t_err_lines_whole(void **state)
{
	char want[TE_PROCS][64], line[256];
	unsigned got = 0, bad = 0;
	int fd[2];
	FILE *in;

	(void)state;
	assert_int_equal(pipe(fd), 0);
	for (int c = 0; c < TE_PROCS; c++) {
		snprintf(want[c], sizeof(want[c]),
			 "test: child %d says something went wrong", c);
		if (fork() == 0) {
			dup2(fd[1], STDERR_FILENO);
			close(fd[0]);
			tool_name = "test";
			for (int i = 0; i < TE_LINES; i++)
				tool_err("child %d says something went wrong",
					 c);
			_exit(0);
		}
	}
	close(fd[1]);
	in = fdopen(fd[0], "r");
	assert_non_null(in);
	while (fgets(line, sizeof(line), in)) {
		int ok = 0;

		line[strcspn(line, "\n")] = '\0';
		for (int c = 0; c < TE_PROCS && !ok; c++)
			ok = !strcmp(line, want[c]);
		bad += !ok;
		got++;
	}
	fclose(in);
	while (wait(NULL) > 0)
		;
	CHECK(got == TE_PROCS * TE_LINES && bad == 0,
	      "%u lines read (want %u), %u of them cut by another process's",
	      got, TE_PROCS * TE_LINES, bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_bytes),
		cmocka_unit_test(t_sizes_lists),
		cmocka_unit_test(t_sizes_ranges),
		cmocka_unit_test(t_sizes_bad),
		cmocka_unit_test(t_sizes_long_item),
		cmocka_unit_test(t_counts),
		cmocka_unit_test(t_poll_modes),
		cmocka_unit_test(t_print_csv_json),
		cmocka_unit_test(t_err_lines_whole),
	};

	return cmocka_run_group_tests_name("tool parsers", tests, group_setup,
					   NULL);
}
