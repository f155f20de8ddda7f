/* SPDX-License-Identifier: MIT */
/*
 * rdps_server.c - rdps-server, one parameter server shard. Parses options,
 * then runs the shard of src/server.c until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobopts.h"
#include "ps_proto.h"
#include "server.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void server_head(FILE *f)
{
	fprintf(f,
		"Usage: rdps-server --listen URL --shard I --shards S "
		"--workers W [options]\n"
		"\n"
		"Run shard I of S of a parameter server job with W workers. "
		"URL is\n"
		"shm://NAME, tcp://HOST:PORT or verbs://HOST:PORT (built in: "
		"%s);\n"
		"port 0 picks a free port (see --report-fd).\n"
		"\n",
		rdps_tp_names());
}

static void server_tail(FILE *f)
{
	fprintf(f,
		"\nWith token 0 (the default) it listens on shm or loopback "
		"only: token 0 is no\n"
		"secret, and anyone who reaches a tcp or verbs port could join "
		"the job and\n"
		"read or change its tables. To listen beyond this host give "
		"every shard and\n"
		"worker the same --token (rdps-launch and rdps-run make one "
		"up); the server\n"
		"does not invent one, as the shards and workers of a job must "
		"all share it.\n"
		"\nStops cleanly on SIGINT or SIGTERM. Logs go to stderr.\n");
}

/* Does host name only this machine's loopback (every address it has)? */
static int host_is_loopback(const char *host)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *a;
	int loop = 1;

	if (!strcmp(host, "*") || getaddrinfo(host, NULL, &hints, &ai))
		return 0;
	for (a = ai; a; a = a->ai_next) {
		const struct sockaddr_in *v4 = (const void *)a->ai_addr;
		const struct sockaddr_in6 *v6 = (const void *)a->ai_addr;

		if (a->ai_family == AF_INET)
			loop &= (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
		else if (a->ai_family == AF_INET6)
			loop &= IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
		else
			loop = 0;
	}
	freeaddrinfo(ai);
	return loop;
}

/* Token 0 beyond loopback: refused (--help says why). */
static int check_token(const struct rdps_server_cfg *cfg)
{
	struct rdps_url u;

	if (cfg->token || rdps_url_parse(cfg->url, 0, &u) ||
	    !strcmp(u.scheme, "shm") || host_is_loopback(u.host))
		return 0; /* a malformed url is reported where it is used */
	tool_err("refusing to listen on %s with token 0: anyone who reaches "
		 "it could join the job; give every shard and worker the same "
		 "--token T, or listen on 127.0.0.1",
		 cfg->url);
	return -EINVAL;
}

struct opts {
	struct job_opts job;
	struct rdps_server_cfg cfg; /* the job's options go here at the end */
	int report_fd;
	int have_shard;
};

static int set_listen(void *ctx, const char *arg)
{
	struct opts *o = ctx;

	o->cfg.url = arg;
	return 0;
}

static int set_shard(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	uint64_t v;

	if (tool_parse_count(arg, "shard index", 0, 65534, &v))
		return -EINVAL;
	o->cfg.shard = (unsigned)v;
	o->have_shard = 1;
	return 0;
}

static int set_slot_bytes(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	size_t b;

	if (tool_parse_bytes(arg, RDPS_SERVER_SLOT_MIN, RDPS_SERVER_SLOT_MAX,
			     &b))
		return -EINVAL;
	if (b % 64) {
		tool_err("bad slot size '%s': use a multiple of 64 bytes", arg);
		return -EINVAL;
	}
	o->cfg.slot_bytes = b;
	return 0;
}

static void show_slot_bytes(const void *ctx, char *buf, size_t len)
{
	(void)ctx;
	snprintf(buf, len, ", a multiple of 64 in 4k..1g (%u)",
		 PS_SLOT_BYTES_DEFAULT);
}

static int set_resume(void *ctx, const char *arg)
{
	struct opts *o = ctx;

	o->job.resume = 1;
	if (arg && tool_parse_count(arg, "resume clock", 0, UINT64_MAX - 1,
				    &o->cfg.resume_clock))
		return -EINVAL;
	return 0;
}

static int set_report_fd(void *ctx, const char *arg)
{
	struct opts *o = ctx;
	uint64_t v;

	if (tool_parse_count(arg, "report fd", 0, 65535, &v))
		return -EINVAL;
	o->report_fd = (int)v;
	return 0;
}

static int set_version(void *ctx, const char *arg)
{
	(void)ctx;
	(void)arg;
	printf("rdps-server %s (transports %s)\n", rdps_version(),
	       rdps_tp_names());
	return 1;
}

static const struct tool_opt server_table[] = {
	{.name = "listen",
	 .key = 'l',
	 .arg = "URL",
	 .help = "where workers connect",
	 .def = "required",
	 .set = set_listen},
	{.name = "shard",
	 .key = 'i',
	 .arg = "I",
	 .help = "this shard's index, 0..S-1",
	 .def = "required",
	 .set = set_shard},
	{.name = "slot-bytes",
	 .arg = "B",
	 .help = "bytes per push sub-slot, header included",
	 .show = show_slot_bytes,
	 .set = set_slot_bytes},
	{.name = "resume",
	 .arg = "CLOCK",
	 .arg_optional = 1,
	 .help = "start from the checkpoint in --checkpoint-dir of CLOCK "
		 "(default: the newest); workers start at that clock",
	 .set = set_resume},
	{.name = "report-fd",
	 .arg = "N",
	 .help = "write the listening URL and a newline to fd N",
	 .set = set_report_fd},
	{.name = "version",
	 .key = 'V',
	 .help = "print the version",
	 .set = set_version},
};

/* Returns 0, 1 (help or version printed) or -EINVAL (reported). */
static int parse_args(int argc, char **argv, struct opts *o)
{
	struct tool_optset sets[] = {
		TOOL_OPTSET(server_table, 2,
			    o), /* --listen and --shard first */
		job_optset(&o->job, JOB_TOOL_SERVER),
		TOOL_OPTSET(server_table + 2, RDPS_ARRAY_SIZE(server_table) - 2,
			    o),
	};
	const struct tool_cmd cmd = {
		.name = "rdps-server",
		.head = server_head,
		.tail = server_tail,
		.sets = sets,
		.nsets = RDPS_ARRAY_SIZE(sets),
	};
	struct job_opts *j = &o->job;
	int ret;

	memset(o, 0, sizeof(*o));
	rdps_server_cfg_default(&o->cfg);
	o->report_fd = -1;
	job_opts_init(j);
	j->shards_max = 65535;
	j->shards_required = 1;
	j->workers_max = RDPS_SERVER_WORKERS_MAX;
	j->workers_required = 1;
	ret = tool_opts_parse(&cmd, argc, argv);
	if (ret)
		return ret;
	if (optind < argc) {
		tool_err("unexpected argument '%s': the URL goes with "
			 "--listen",
			 argv[optind]);
		return -EINVAL;
	}
	if (!o->cfg.url) {
		tool_err("missing --listen URL: give e.g. shm://job-s0 or "
			 "tcp://0.0.0.0:7000");
		return -EINVAL;
	}
	if (!o->have_shard || !j->shards_given || !j->workers_given) {
		tool_err("missing %s: every shard needs --shard I --shards S "
			 "--workers W",
			 !o->have_shard	    ? "--shard"
			 : !j->shards_given ? "--shards"
					    : "--workers");
		return -EINVAL;
	}
	if (o->cfg.shard >= j->shards) {
		tool_err("--shard %u is out of range: with --shards %u use "
			 "0..%u",
			 o->cfg.shard, j->shards, j->shards - 1);
		return -EINVAL;
	}
	if (job_opts_check(j) || job_ckpt_dir_ready(j))
		return -EINVAL;
	o->cfg.nshards = j->shards;
	o->cfg.workers = j->workers;
	o->cfg.model = j->model;
	o->cfg.slack = j->slack;
	o->cfg.token = j->token;
	o->cfg.poll_mode = j->poll;
	o->cfg.ckpt_dir = j->ckpt_dir;
	o->cfg.ckpt_every = j->ckpt_every;
	o->cfg.resume = j->resume;
	o->cfg.heartbeat_ms = j->heartbeat_ms;
	return check_token(&o->cfg);
}

int main(int argc, char **argv)
{
	struct rdps_server *s;
	struct sigaction sa;
	struct opts o;
	int ret;

	tool_name = "rdps-server";
	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : 2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rdps_clear_error();
	ret = rdps_server_create(&o.cfg, &s);
	if (ret)
		return tool_fail(ret, o.cfg.url);
	if (o.report_fd >= 0) {
		if (dprintf(o.report_fd, "%s\n", rdps_server_url(s)) < 0)
			tool_err("warning: cannot write the url to fd %d: %s",
				 o.report_fd, strerror(errno));
		close(o.report_fd);
	}
	rdps_clear_error();
	ret = rdps_server_run(s, &stop_flag);
	if (ret)
		ret = tool_fail(ret, "serving");
	rdps_server_destroy(s);
	return ret;
}
