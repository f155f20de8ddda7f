/* SPDX-License-Identifier: MIT */
/*
 * test_transport.c - the generic transport layer without a peer: URL
 * parsing, the registry, the NIC-style access check, configuration checks
 * and the -EBUSY bookkeeping of rdps_tp_open/rdps_tp_close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdps_base.h"
#include "test_check.h"
#include "transport.h"

/* Expected result of one rdps_url_parse() call. */
struct url_case {
	const char *url;
	int need_port;
	const char *scheme;
	const char *host;
	int port;
};

static void test_url_parse_good(void **state)
{
	static const struct url_case cases[] = {
		{"tcp://127.0.0.1:5", 1, "tcp", "127.0.0.1", 5},
		{"tcp://[::1]:5", 1, "tcp", "::1", 5},
		{"tcp://[fe80::1%eth0]:4791", 1, "tcp", "fe80::1%eth0", 4791},
		{"tcp://node-7.example:65535", 1, "tcp", "node-7.example",
		 65535},
		{"verbs://10.0.0.2:0", 1, "verbs", "10.0.0.2", 0},
		{"shm://rdps-job-1", 0, "shm", "rdps-job-1", -1},
		{"tcp://[::1]", 0, "tcp", "::1", -1},
		/* 15 characters: the longest scheme that fits. */
		{"abcdefghijklmno://h:1", 1, "abcdefghijklmno", "h", 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct url_case *c = &cases[i];
		struct rdps_url u;
		int ret;

		memset(&u, 0x5a, sizeof(u));
		ret = rdps_url_parse(c->url, c->need_port, &u);
		CHECK(ret == 0, "'%s' (need_port %d): returned %d (%s)", c->url,
		      c->need_port, ret, rdps_errmsg());
		CHECK(!strcmp(u.scheme, c->scheme),
		      "'%s': scheme '%.16s', expected '%s'", c->url, u.scheme,
		      c->scheme);
		CHECK(!strcmp(u.host, c->host),
		      "'%s': host '%.256s', expected '%s'", c->url, u.host,
		      c->host);
		CHECK(u.port == c->port, "'%s': port %d, expected %d", c->url,
		      u.port, c->port);
	}
}

static void test_url_parse_bad(void **state)
{
	static const struct {
		const char *url;
		int need_port;
		const char *what;
	} cases[] = {
		{"tcp://host", 1, "missing port"},
		{"tcp://[::1]", 1, "missing port after an IPv6 address"},
		{"tcp://host:70000", 1, "port 70000"},
		{"tcp://host:-1", 1, "negative port"},
		{"tcp://host:", 1, "empty port"},
		{"tcp://host:12ab", 1, "port with junk"},
		{"tcp://:5", 1, "empty host"},
		{"tcp://[]:5", 1, "empty IPv6 host"},
		{"tcp://[::1:5", 1, "missing ']'"},
		{"tcp://[::1]x:5", 1, "junk after ']'"},
		{"tcp://", 0, "nothing after ://"},
		{"tcp:/host:5", 1, "one slash"},
		{"host:5", 1, "no scheme"},
		{"://host:5", 1, "empty scheme"},
		{"junk", 0, "junk"},
		{"", 0, "empty string"},
		{"tcp://a b:5", 1, "space in host"},
		{"shm://a/b", 0, "slash in a name"},
		{"abcdefghijklmnop://h:1", 1, "16-character scheme"},
		{"averyveryverylongscheme://h:1", 1, "scheme too long"},
		{"tcp://host: 7000", 1, "space before the port"},
		{"tcp://host:+7000", 1, "sign before the port"},
		{"tcp://host:007000", 1, "six digits of port"},
		{"tcp://127.0.0.1:7000/extra?x=1", 1, "path and query"},
		{"tcp://127.0.0.1:7000#x", 1, "fragment"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct rdps_url u;
		int ret;

		rdps_clear_error();
		ret = rdps_url_parse(cases[i].url, cases[i].need_port, &u);
		CHECK(ret == -EINVAL,
		      "%s '%s' (need_port %d): returned %d, expected -EINVAL "
		      "(%d)",
		      cases[i].what, cases[i].url, cases[i].need_port, ret,
		      -EINVAL);
		CHECK(rdps_errmsg()[0] != '\0',
		      "%s '%s': -EINVAL but rdps_errmsg() is empty",
		      cases[i].what, cases[i].url);
	}
	rdps_clear_error();
	CHECK(rdps_url_parse(NULL, 0, &(struct rdps_url){0}) == -EINVAL,
	      "a NULL url is not refused");
	CHECK(rdps_errmsg()[0] != '\0', "NULL url: rdps_errmsg() is empty");
}

/* Each refusal names what is wrong, not a neighbour of it. */
static void test_url_parse_messages(void **state)
{
	static const struct {
		const char *url;
		const char *want, *not_want;
	} cases[] = {
		{"tcp://127.0.0.1:7000/extra?x=1",
		 "'/extra?x=1' after the address: an rdps url has no path",
		 "port"},
		{"tcp://host: 7000", "port ' 7000' is not a number", NULL},
		{"tcp://host:+7000", "port '+7000' is not a number", NULL},
		{"tcp://host:70000", "port '70000' is not a number 0..65535",
		 NULL},
		{"verbs://", "nothing after '://'", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct rdps_url u;

		rdps_clear_error();
		CHECK(rdps_url_parse(cases[i].url, 1, &u) == -EINVAL,
		      "'%s' accepted", cases[i].url);
		CHECK(strstr(rdps_errmsg(), cases[i].want) != NULL,
		      "'%s': message '%s' lacks '%s'", cases[i].url,
		      rdps_errmsg(), cases[i].want);
		CHECK(!cases[i].not_want ||
			      !strstr(rdps_errmsg(), cases[i].not_want),
		      "'%s': message '%s' blames the %s", cases[i].url,
		      rdps_errmsg(), cases[i].not_want);
	}
}

/* A malformed url is refused as such before the transport opens: a
 * device or socket error would send the user looking for the wrong
 * thing (rdps-server -l verbs:// said no RDMA device). */
static void test_open_malformed_url(void **state)
{
	static const char *const urls[] = {"verbs://", "tcp://", "shm://",
					   "tcp://h:1/x"};

	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(*urls); i++) {
		struct rdps_tp *tp = NULL;
		int ret;

		if (!rdps_tp_lookup(urls[i]) &&
		    strstr(rdps_errmsg(), "not built into"))
			continue;
		rdps_clear_error();
		ret = rdps_tp_open(urls[i], NULL, &tp);
		CHECK(ret == -EINVAL && !tp,
		      "rdps_tp_open('%s') returned %d, want -EINVAL", urls[i],
		      ret);
		CHECK(strstr(rdps_errmsg(), "malformed url") != NULL,
		      "rdps_tp_open('%s'): '%s' does not call the url "
		      "malformed",
		      urls[i], rdps_errmsg());
		if (tp)
			rdps_tp_close(tp);
	}
}

/* transport.h: "Out-parameters are set only on success." */
static void test_url_parse_keeps_out_on_error(void **state)
{
	struct rdps_url u, before;

	(void)state;
	memset(&u, 0x5a, sizeof(u));
	before = u;
	CHECK(rdps_url_parse("tcp://host:70000", 1, &u) == -EINVAL,
	      "port 70000 accepted");
	CHECK(!memcmp(&u, &before, sizeof(u)),
	      "rdps_url_parse() changed its out-parameter on failure (scheme "
	      "now '%.16s', port %d); transport.h says out-parameters are set "
	      "only on success",
	      u.scheme, u.port);
}

static void test_lookup(void **state)
{
	const struct rdps_tp_ops *ops = NULL;
	const char *names = rdps_tp_names();

	(void)state;
	(void)ops;
	CHECK(names != NULL, "rdps_tp_names() returned NULL");
#ifdef RDPS_TRANSPORT_SHM
	ops = rdps_tp_lookup("shm");
	CHECK(ops != NULL, "lookup of 'shm' failed: %s", rdps_errmsg());
	CHECK(!strcmp(ops->name, "shm"), "lookup of 'shm' gave '%s'",
	      ops->name);
	CHECK(ops->size == sizeof(*ops), "shm ops size %zu, expected %zu",
	      ops->size, sizeof(*ops));
	ops = rdps_tp_lookup("shm://some-name");
	CHECK(ops && !strcmp(ops->name, "shm"),
	      "lookup of 'shm://some-name' did not give shm");
	CHECK(strstr(names, "shm") != NULL, "names '%s' lack shm", names);
#endif
#ifdef RDPS_TRANSPORT_TCP
	ops = rdps_tp_lookup("tcp://h:1");
	CHECK(ops != NULL, "lookup of 'tcp://h:1' failed: %s", rdps_errmsg());
	CHECK(!strcmp(ops->name, "tcp"), "lookup of 'tcp://h:1' gave '%s'",
	      ops->name);
	CHECK(ops->size == sizeof(*ops), "tcp ops size %zu, expected %zu",
	      ops->size, sizeof(*ops));
	CHECK(strstr(names, "tcp") != NULL, "names '%s' lack tcp", names);
#endif
#ifndef RDPS_TRANSPORT_VERBS
	rdps_clear_error();
	CHECK(rdps_tp_lookup("verbs://h:1") == NULL,
	      "verbs is not built in but lookup found it");
	CHECK(strstr(rdps_errmsg(), "RDPS_TRANSPORT_VERBS") != NULL,
	      "lookup of a known scheme that is not built in should say how "
	      "to build it; got '%s'",
	      rdps_errmsg());
#endif

	rdps_clear_error();
	CHECK(rdps_tp_lookup("foo://x") == NULL, "'foo://x' found a transport");
	CHECK(strstr(rdps_errmsg(), "shm") && strstr(rdps_errmsg(), "tcp") &&
		      strstr(rdps_errmsg(), "verbs"),
	      "unknown scheme: message should name the valid schemes, got '%s'",
	      rdps_errmsg());
	rdps_clear_error();
	CHECK(rdps_tp_lookup("shmx://x") == NULL,
	      "'shmx://x' matched a transport by prefix");
	CHECK(rdps_errmsg()[0] != '\0', "'shmx://x': no message");
	rdps_clear_error();
	CHECK(rdps_tp_lookup("") == NULL, "empty url found a transport");
	CHECK(rdps_errmsg()[0] != '\0', "empty url: no message");
	rdps_clear_error();
	CHECK(rdps_tp_lookup(NULL) == NULL, "NULL url found a transport");
	CHECK(rdps_errmsg()[0] != '\0', "NULL url: no message");
}

static void test_check_access(void **state)
{
	const uint64_t base = 0x10000, rlen = 4096;
	const unsigned rw =
		RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_WRITE;
	const unsigned all = rw | RDPS_TP_ACCESS_REMOTE_ATOMIC;
	static const struct {
		const char *what;
		uint64_t base, rlen;
		unsigned access, need;
		uint64_t raddr, len;
		int expect;
	} cases[] = {
		{"write to read-only", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_READ, RDPS_TP_ACCESS_REMOTE_WRITE,
		 0x10000, 8, RDPS_TP_WC_REM_ACCESS_ERR},
		{"read of write-only", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_WRITE, RDPS_TP_ACCESS_REMOTE_READ,
		 0x10000, 8, RDPS_TP_WC_REM_ACCESS_ERR},
		{"atomic without the atomic bit", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_READ | RDPS_TP_ACCESS_REMOTE_WRITE,
		 RDPS_TP_ACCESS_REMOTE_ATOMIC, 0x10000, 8,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"local-only region", 0x10000, 4096, RDPS_TP_ACCESS_LOCAL,
		 RDPS_TP_ACCESS_REMOTE_READ, 0x10000, 8,
		 RDPS_TP_WC_REM_ACCESS_ERR},
		{"one byte below base", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_READ, RDPS_TP_ACCESS_REMOTE_READ, 0xffff,
		 8, RDPS_TP_WC_REM_ACCESS_ERR},
		{"far below base", 0x10000, 4096, RDPS_TP_ACCESS_REMOTE_READ,
		 RDPS_TP_ACCESS_REMOTE_READ, 0, 8, RDPS_TP_WC_REM_ACCESS_ERR},
		{"ending one byte past the end", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_READ, RDPS_TP_ACCESS_REMOTE_READ,
		 0x10000 + 4096 - 7, 8, RDPS_TP_WC_REM_ACCESS_ERR},
		{"starting at the end", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_READ, RDPS_TP_ACCESS_REMOTE_READ,
		 0x10000 + 4096, 1, RDPS_TP_WC_REM_ACCESS_ERR},
		{"longer than the region", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_READ, RDPS_TP_ACCESS_REMOTE_READ,
		 0x10000, 4097, RDPS_TP_WC_REM_ACCESS_ERR},
		{"raddr+len wraps around", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_WRITE, RDPS_TP_ACCESS_REMOTE_WRITE,
		 0x10000 + 8, UINT64_MAX - 4, RDPS_TP_WC_REM_ACCESS_ERR},
		{"len UINT64_MAX at base", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_WRITE, RDPS_TP_ACCESS_REMOTE_WRITE,
		 0x10000, UINT64_MAX, RDPS_TP_WC_REM_ACCESS_ERR},
		{"atomic 4 bytes off alignment", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_ATOMIC, RDPS_TP_ACCESS_REMOTE_ATOMIC,
		 0x10004, 8, RDPS_TP_WC_REM_INV_REQ_ERR},
		{"atomic 1 byte off alignment", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_ATOMIC, RDPS_TP_ACCESS_REMOTE_ATOMIC,
		 0x10001, 8, RDPS_TP_WC_REM_INV_REQ_ERR},
		{"exact fit", 0x10000, 4096, RDPS_TP_ACCESS_REMOTE_READ,
		 RDPS_TP_ACCESS_REMOTE_READ, 0x10000, 4096, RDPS_TP_WC_SUCCESS},
		{"last byte", 0x10000, 4096, RDPS_TP_ACCESS_REMOTE_WRITE,
		 RDPS_TP_ACCESS_REMOTE_WRITE, 0x10000 + 4095, 1,
		 RDPS_TP_WC_SUCCESS},
		{"last atomic word", 0x10000, 4096,
		 RDPS_TP_ACCESS_REMOTE_ATOMIC, RDPS_TP_ACCESS_REMOTE_ATOMIC,
		 0x10000 + 4088, 8, RDPS_TP_WC_SUCCESS},
		{"region ending at the top of the address space",
		 UINT64_MAX - 15, 16, RDPS_TP_ACCESS_REMOTE_READ,
		 RDPS_TP_ACCESS_REMOTE_READ, UINT64_MAX - 7, 8,
		 RDPS_TP_WC_SUCCESS},
		{"past the top of the address space", UINT64_MAX - 15, 16,
		 RDPS_TP_ACCESS_REMOTE_READ, RDPS_TP_ACCESS_REMOTE_READ,
		 UINT64_MAX - 7, 9, RDPS_TP_WC_REM_ACCESS_ERR},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int got = rdps_tp_check_access(cases[i].base, cases[i].rlen,
					       cases[i].access, cases[i].need,
					       cases[i].raddr, cases[i].len);

		CHECK(got == cases[i].expect,
		      "%s (base 0x%" PRIx64 " rlen %" PRIu64
		      " access 0x%x need "
		      "0x%x raddr 0x%" PRIx64 " len %" PRIu64 "): got %s, "
		      "expected %s",
		      cases[i].what, cases[i].base, cases[i].rlen,
		      cases[i].access, cases[i].need, cases[i].raddr,
		      cases[i].len, rdps_tp_status_str(got),
		      rdps_tp_status_str(cases[i].expect));
	}
	/* Every access kind succeeds when its bit is there. */
	CHECK(rdps_tp_check_access(base, rlen, all, RDPS_TP_ACCESS_REMOTE_READ,
				   base + 100, 8) == RDPS_TP_WC_SUCCESS,
	      "read with all bits refused");
	CHECK(rdps_tp_check_access(base, rlen, all, RDPS_TP_ACCESS_REMOTE_WRITE,
				   base + 100, 8) == RDPS_TP_WC_SUCCESS,
	      "write with all bits refused");
	CHECK(rdps_tp_check_access(base, rlen, all,
				   RDPS_TP_ACCESS_REMOTE_ATOMIC, base + 104,
				   8) == RDPS_TP_WC_SUCCESS,
	      "aligned atomic with all bits refused");
	/* Unaligned plain reads and writes are fine. */
	CHECK(rdps_tp_check_access(base, rlen, rw, RDPS_TP_ACCESS_REMOTE_WRITE,
				   base + 3, 5) == RDPS_TP_WC_SUCCESS,
	      "unaligned write refused");
}

static void test_cfg_default(void **state)
{
	struct rdps_tp_cfg cfg;

	(void)state;
	memset(&cfg, 0xff, sizeof(cfg));
	rdps_tp_cfg_default(&cfg);
	/* The values transport.h documents for rdps_tp_cfg_default(). */
	CHECK(cfg.poll_mode == RDPS_TP_POLL_ADAPTIVE, "poll mode %d",
	      (int)cfg.poll_mode);
	CHECK(cfg.spin_us == 50, "spin_us %u", cfg.spin_us);
	CHECK(cfg.sq_depth == 256, "sq_depth %u", cfg.sq_depth);
	CHECK(cfg.cq_depth == 8192, "cq_depth %u", cfg.cq_depth);
	CHECK(cfg.shm_heap_size == (size_t)16 << 30, "shm_heap_size %zu",
	      cfg.shm_heap_size);
	CHECK(cfg.token == 0, "token %" PRIu64, cfg.token);
	CHECK(cfg.dev == NULL, "dev not NULL");
	CHECK(cfg.gid_index == -1, "gid_index %d", cfg.gid_index);
}

/* The first transport built in, or NULL (then the tests needing one skip). */
static const char *any_scheme(void)
{
#if defined(RDPS_TRANSPORT_SHM)
	return "shm";
#elif defined(RDPS_TRANSPORT_TCP)
	return "tcp";
#else
	return NULL;
#endif
}

static void small_cfg(struct rdps_tp_cfg *cfg)
{
	rdps_tp_cfg_default(cfg);
	cfg->shm_heap_size = (size_t)64 << 20;
}

static void test_open_bad_cfg(void **state)
{
	const char *scheme = any_scheme();
	struct rdps_tp *tp = (struct rdps_tp *)(uintptr_t)0x1;
	struct rdps_tp_cfg cfg;
	int ret;

	(void)state;
	if (!scheme) {
		print_message("skipped: no shm or tcp transport built in\n");
		skip();
		return;
	}

	small_cfg(&cfg);
	cfg.sq_depth = 0;
	rdps_clear_error();
	ret = rdps_tp_open(scheme, &cfg, &tp);
	CHECK(ret == -EINVAL, "sq_depth 0: returned %d", ret);
	CHECK(rdps_errmsg()[0], "sq_depth 0: no message");
	CHECK(tp == (struct rdps_tp *)(uintptr_t)0x1,
	      "sq_depth 0: tp_out was written on failure");

	small_cfg(&cfg);
	cfg.sq_depth = 64;
	cfg.cq_depth = 63;
	rdps_clear_error();
	ret = rdps_tp_open(scheme, &cfg, &tp);
	CHECK(ret == -EINVAL, "cq_depth 63 < sq_depth 64: returned %d", ret);
	CHECK(rdps_errmsg()[0], "cq_depth < sq_depth: no message");

	small_cfg(&cfg);
	cfg.sq_depth = 65537;
	cfg.cq_depth = 1u << 20;
	ret = rdps_tp_open(scheme, &cfg, &tp);
	CHECK(ret == -EINVAL, "sq_depth 65537: returned %d", ret);

	small_cfg(&cfg);
	cfg.cq_depth = (1u << 22) + 1;
	ret = rdps_tp_open(scheme, &cfg, &tp);
	CHECK(ret == -EINVAL, "cq_depth 2^22+1: returned %d", ret);

	small_cfg(&cfg);
	cfg.poll_mode = (enum rdps_tp_poll_mode)7;
	rdps_clear_error();
	ret = rdps_tp_open(scheme, &cfg, &tp);
	CHECK(ret == -EINVAL, "poll mode 7: returned %d", ret);
	CHECK(rdps_errmsg()[0], "poll mode 7: no message");

	small_cfg(&cfg);
	rdps_clear_error();
	ret = rdps_tp_open("foo://x", &cfg, &tp);
	CHECK(ret == -EINVAL, "unknown scheme: returned %d", ret);
	CHECK(rdps_errmsg()[0], "unknown scheme: no message");
	CHECK(tp == (struct rdps_tp *)(uintptr_t)0x1,
	      "tp_out was written on failure");

	/* The edges of the valid ranges open. */
	small_cfg(&cfg);
	cfg.sq_depth = 1;
	cfg.cq_depth = 1;
	ret = rdps_tp_open(scheme, &cfg, &tp);
	CHECK(ret == 0, "sq_depth 1 cq_depth 1 refused: %d (%s)", ret,
	      rdps_errmsg());
	CHECK(rdps_tp_close(tp) == 0, "close of an empty transport failed");
}

static void test_close_busy(void **state)
{
	const char *scheme = any_scheme();
	struct rdps_tp_listener *l;
	struct rdps_tp_mr *mr;
	struct rdps_tp_cfg cfg;
	struct rdps_tp *tp;
	char url[128];
	void *mem;
	int ret;

	(void)state;
	if (!scheme) {
		print_message("skipped: no shm or tcp transport built in\n");
		skip();
		return;
	}
	small_cfg(&cfg);
	ret = rdps_tp_open(scheme, &cfg, &tp);
	CHECK(ret == 0, "open %s: %d (%s)", scheme, ret, rdps_errmsg());
	ret = rdps_tp_mem_alloc(tp, 8192, &mem);
	CHECK(ret == 0, "mem_alloc: %d (%s)", ret, rdps_errmsg());
	ret = rdps_tp_mem_reg(tp, mem, 8192, RDPS_TP_ACCESS_REMOTE_READ, &mr);
	CHECK(ret == 0, "mem_reg: %d (%s)", ret, rdps_errmsg());

	ret = rdps_tp_close(tp);
	CHECK(ret == -EBUSY, "close with a live registration: returned %d",
	      ret);
	rdps_tp_mem_dereg(mr);

	/* The generic layer refuses bad registrations itself. */
	ret = rdps_tp_mem_reg(tp, mem, 0, RDPS_TP_ACCESS_REMOTE_READ, &mr);
	CHECK(ret == -EINVAL, "registration of 0 bytes: returned %d", ret);
	ret = rdps_tp_mem_reg(tp, mem, 8192, 1u << 7, &mr);
	CHECK(ret == -EINVAL, "unknown access bit: returned %d", ret);
	ret = rdps_tp_mem_alloc(tp, 0, &mem);
	CHECK(ret == -EINVAL, "mem_alloc of 0 bytes: returned %d", ret);

	/* A live listener also keeps the transport busy. */
	if (!strcmp(scheme, "shm"))
		snprintf(url, sizeof(url), "shm://rdps-t-%d-busy",
			 (int)getpid());
	else
		snprintf(url, sizeof(url), "%s://127.0.0.1:0", scheme);
	ret = rdps_tp_listen(tp, url, NULL, 0, &l);
	CHECK(ret == 0, "listen on %s: %d (%s)", url, ret, rdps_errmsg());
	ret = rdps_tp_close(tp);
	CHECK(ret == -EBUSY, "close with a live listener: returned %d", ret);
	rdps_tp_listener_close(l);

	/* Private data over the 32-byte limit is refused. */
	{
		uint8_t big[RDPS_TP_PRIV_MAX + 1] = {0};

		rdps_clear_error();
		ret = rdps_tp_listen(tp, url, big, sizeof(big), &l);
		CHECK(ret == -EINVAL, "listen with 33 B private data: %d", ret);
		CHECK(rdps_errmsg()[0], "33 B private data: no message");
	}

	rdps_tp_mem_free(tp, mem, 8192);
	ret = rdps_tp_close(tp);
	CHECK(ret == 0, "close after everything was released: %d", ret);
}

/* The gather READ's limits, checked before any transport sees it. */
static void test_gather_check(void **state)
{
	static struct rdps_tp_gather_ent e[RDPS_TP_GATHER_MAX + 1];
	struct rdps_tp_rkey rk = {.addr = 4096, .len = 1u << 20, .key = 7};
	uint64_t total = 12345;
	int ret;

	(void)state;
	for (unsigned i = 0; i <= RDPS_TP_GATHER_MAX; i++)
		e[i] = (struct rdps_tp_gather_ent){
			.raddr = 4096, .rkey = &rk, .len = 1000};
	ret = rdps_tp_gather_check(e, RDPS_TP_GATHER_MAX, 0, &total);
	CHECK(ret == 0 && total == RDPS_TP_GATHER_MAX * 1000ull,
	      "the most ranges: %d, total %" PRIu64, ret, total);
	total = 12345;
	ret = rdps_tp_gather_check(e, RDPS_TP_GATHER_MAX + 1, 0, &total);
	CHECK(ret == -EINVAL && strstr(rdps_errmsg(), "ranges") &&
		      total == 12345,
	      "one range too many: %d (%s)", ret, rdps_errmsg());
	ret = rdps_tp_gather_check(e, 0, 0, &total);
	CHECK(ret == -EINVAL, "no range: %d", ret);
	ret = rdps_tp_gather_check(NULL, 1, 0, &total);
	CHECK(ret == -EINVAL, "no array: %d", ret);
	/* A transport that spends a send-queue slot per range. */
	ret = rdps_tp_gather_check(e, 17, 16, &total);
	CHECK(ret == -EINVAL && strstr(rdps_errmsg(), "sq_depth 16"),
	      "17 ranges on a queue of 16: %d (%s)", ret, rdps_errmsg());
	ret = rdps_tp_gather_check(e, 16, 16, &total);
	CHECK(ret == 0, "16 ranges on a queue of 16: %d", ret);
	e[3].rkey = NULL;
	ret = rdps_tp_gather_check(e, 5, 0, &total);
	CHECK(ret == -EINVAL && strstr(rdps_errmsg(), "range 3"),
	      "a range without a key: %d (%s)", ret, rdps_errmsg());
	e[3].rkey = &rk;
	e[0].len = e[1].len = 0xffffffffu;
	ret = rdps_tp_gather_check(e, 2, 0, &total);
	CHECK(ret == -EINVAL && strstr(rdps_errmsg(), "byte limit"),
	      "two ranges of 4 GiB - 1: %d (%s)", ret, rdps_errmsg());
	e[0].len = RDPS_TP_GATHER_MAX_BYTES - 1;
	e[1].len = 1;
	ret = rdps_tp_gather_check(e, 2, 0, &total);
	CHECK(ret == 0 && total == RDPS_TP_GATHER_MAX_BYTES,
	      "exactly the byte limit: %d", ret);
	e[1].len = 2;
	ret = rdps_tp_gather_check(e, 2, 0, &total);
	CHECK(ret == -EINVAL, "a byte over the limit: %d", ret);
}

static void test_strings(void **state)
{
	(void)state;
	for (int s = RDPS_TP_WC_SUCCESS; s <= RDPS_TP_WC_GENERAL_ERR; s++) {
		const char *a = rdps_tp_status_str(s);

		CHECK(a && a[0], "status %d has no name", s);
		for (int t = RDPS_TP_WC_SUCCESS; t < s; t++)
			CHECK(strcmp(a, rdps_tp_status_str(t)),
			      "statuses %d and %d share the name '%s'", s, t,
			      a);
	}
	CHECK(rdps_tp_status_str(1000) != NULL, "unknown status gives NULL");
	for (int o = RDPS_TP_OP_READ; o <= RDPS_TP_OP_RECV_IMM; o++) {
		const char *a = rdps_tp_opcode_str(o);

		CHECK(a && a[0] && strcmp(a, "?"), "opcode %d has no name", o);
		for (int p = RDPS_TP_OP_READ; p < o; p++)
			CHECK(strcmp(a, rdps_tp_opcode_str(p)),
			      "opcodes %d and %d share the name '%s'", o, p, a);
	}
	CHECK(rdps_tp_opcode_str(0) != NULL, "opcode 0 gives NULL");
	CHECK(rdps_tp_opcode_str(-1) != NULL, "opcode -1 gives NULL");
	CHECK(rdps_tp_opcode_str(99) != NULL, "opcode 99 gives NULL");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse_good),
		cmocka_unit_test(test_url_parse_bad),
		cmocka_unit_test(test_url_parse_keeps_out_on_error),
		cmocka_unit_test(test_url_parse_messages),
		cmocka_unit_test(test_open_malformed_url),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_check_access),
		cmocka_unit_test(test_cfg_default),
		cmocka_unit_test(test_open_bad_cfg),
		cmocka_unit_test(test_close_busy),
		cmocka_unit_test(test_gather_check),
		cmocka_unit_test(test_strings),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("test_transport", tests, NULL, NULL);
}
