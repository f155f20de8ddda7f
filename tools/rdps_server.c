/* SPDX-License-Identifier: MIT */
/*
 * rdps_server.c - rdps-server, one parameter server shard. Parses options,
 * then runs the shard of src/server.c until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "ps_proto.h"
#include "server.h"

#define OPT_REPORT_FD 0x100
#define OPT_SLOT_BYTES 0x101
#define OPT_CKPT_DIR 0x102
#define OPT_CKPT_EVERY 0x103
#define OPT_RESUME 0x104
#define OPT_HEARTBEAT 0x105

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
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
		"\n"
		"Options:\n"
		"  -l, --listen=URL     where workers connect (required)\n"
		"  -i, --shard=I        this shard's index, 0..S-1 (required)\n"
		"  -s, --shards=S       number of shards in the job "
		"(required)\n"
		"  -w, --workers=W      number of workers in the job, 1..%u "
		"(required)\n"
		"  -m, --model=MODEL    bsp, ssp, asp or absp (bsp)\n"
		"  -k, --slack=N        ssp: clocks a worker may run ahead, "
		"0..%d (0)\n"
		"  -t, --token=T        job token, the same on every peer "
		"(0)\n"
		"  -P, --poll=MODE      busy, adaptive or event (adaptive)\n"
		"      --slot-bytes=B   bytes per push sub-slot, header "
		"included, a multiple\n"
		"                       of 64 in 4k..1g (%u)\n"
		"      --checkpoint-dir=DIR  bsp/absp: write this shard's "
		"tables to DIR at clock\n"
		"                       boundaries (shard-I.ckpt, and the one "
		"before as .prev)\n"
		"      --checkpoint-every=N  every N clocks (1)\n"
		"      --resume[=CLOCK] start from the checkpoint in "
		"--checkpoint-dir of CLOCK\n"
		"                       (default: the newest); workers start "
		"at that clock\n"
		"  -L, --log-level=LVL  error, warn, info, debug or trace "
		"(warn; env RDPS_LOG_LEVEL)\n"
		"      --heartbeat-ms=MS  liveness period: a worker still for "
		"two "
		"is lost,\n"
		"                       %u..%u, 0: no checks (%u)\n"
		"      --report-fd=N    write the listening URL and a newline "
		"to fd N\n"
		"  -V, --version        print the version\n"
		"  -h, --help           this help\n"
		"\n"
		"Stops cleanly on SIGINT or SIGTERM. Logs go to stderr.\n",
		rdps_tp_names(), RDPS_SERVER_WORKERS_MAX, PS_CLOCK_K_MAX - 2,
		PS_SLOT_BYTES_DEFAULT, RDPS_SERVER_HEARTBEAT_MIN,
		RDPS_SERVER_HEARTBEAT_MAX, PS_HEARTBEAT_MS);
}

struct opts {
	struct rdps_server_cfg cfg;
	int report_fd;
	int have_shard, have_shards, have_workers, have_slack;
};

/* Returns 0, 1 (help or version printed) or -EINVAL (reported). */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option long_opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"shard", required_argument, NULL, 'i'},
		{"shards", required_argument, NULL, 's'},
		{"workers", required_argument, NULL, 'w'},
		{"model", required_argument, NULL, 'm'},
		{"slack", required_argument, NULL, 'k'},
		{"token", required_argument, NULL, 't'},
		{"poll", required_argument, NULL, 'P'},
		{"slot-bytes", required_argument, NULL, OPT_SLOT_BYTES},
		{"checkpoint-dir", required_argument, NULL, OPT_CKPT_DIR},
		{"checkpoint-every", required_argument, NULL, OPT_CKPT_EVERY},
		{"resume", optional_argument, NULL, OPT_RESUME},
		{"log-level", required_argument, NULL, 'L'},
		{"report-fd", required_argument, NULL, OPT_REPORT_FD},
		{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	size_t b;
	int ch;

	memset(o, 0, sizeof(*o));
	rdps_server_cfg_default(&o->cfg);
	o->report_fd = -1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":l:i:s:w:m:k:t:P:L:Vh", long_opts,
				 NULL)) != -1) {
		switch (ch) {
		case 'l':
			o->cfg.url = optarg;
			break;
		case 'i':
			if (tool_parse_count(optarg, "shard index", 0, 65534,
					     &v))
				return -EINVAL;
			o->cfg.shard = (unsigned)v;
			o->have_shard = 1;
			break;
		case 's':
			if (tool_parse_count(optarg, "shard count", 1, 65535,
					     &v))
				return -EINVAL;
			o->cfg.nshards = (unsigned)v;
			o->have_shards = 1;
			break;
		case 'w':
			if (tool_parse_count(optarg, "worker count", 1,
					     RDPS_SERVER_WORKERS_MAX, &v))
				return -EINVAL;
			o->cfg.workers = (unsigned)v;
			o->have_workers = 1;
			break;
		case 'm':
			if (tool_parse_model(optarg, &o->cfg.model))
				return -EINVAL;
			break;
		case 'k':
			if (tool_parse_count(optarg, "slack", 0,
					     PS_CLOCK_K_MAX - 2, &v))
				return -EINVAL;
			o->cfg.slack = (unsigned)v;
			o->have_slack = 1;
			break;
		case 't':
			if (tool_parse_count(optarg, "token", 0, UINT64_MAX,
					     &v))
				return -EINVAL;
			o->cfg.token = v;
			break;
		case 'P':
			if (tool_parse_poll(optarg, &o->cfg.poll_mode))
				return -EINVAL;
			break;
		case OPT_SLOT_BYTES:
			if (tool_parse_bytes(optarg, RDPS_SERVER_SLOT_MIN,
					     RDPS_SERVER_SLOT_MAX, &b))
				return -EINVAL;
			if (b % 64) {
				tool_err("bad slot size '%s': use a multiple "
					 "of 64 bytes",
					 optarg);
				return -EINVAL;
			}
			o->cfg.slot_bytes = b;
			break;
		case OPT_CKPT_DIR:
			if (!*optarg) {
				tool_err("empty --checkpoint-dir: name a "
					 "directory");
				return -EINVAL;
			}
			o->cfg.ckpt_dir = optarg;
			break;
		case OPT_CKPT_EVERY:
			if (tool_parse_count(optarg, "checkpoint interval", 1,
					     1u << 30, &v))
				return -EINVAL;
			o->cfg.ckpt_every = (unsigned)v;
			break;
		case OPT_RESUME:
			o->cfg.resume = 1;
			if (optarg && tool_parse_count(optarg, "resume clock",
						       0, UINT64_MAX - 1,
						       &o->cfg.resume_clock))
				return -EINVAL;
			break;
		case 'L':
			if (tool_set_log_level(optarg))
				return -EINVAL;
			break;
		case OPT_HEARTBEAT:
			if (tool_parse_heartbeat(optarg, &o->cfg.heartbeat_ms))
				return -EINVAL;
			break;
		case OPT_REPORT_FD:
			if (tool_parse_count(optarg, "report fd", 0, 65535, &v))
				return -EINVAL;
			o->report_fd = (int)v;
			break;
		case 'V':
			printf("rdps-server %s (transports %s)\n",
			       rdps_version(), rdps_tp_names());
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			tool_err("option '%s' needs a value (see rdps-server "
				 "--help)",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			tool_err("unknown option '%s' (see rdps-server --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
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
	if (!o->have_shard || !o->have_shards || !o->have_workers) {
		tool_err("missing %s: every shard needs --shard I --shards S "
			 "--workers W",
			 !o->have_shard	   ? "--shard"
			 : !o->have_shards ? "--shards"
					   : "--workers");
		return -EINVAL;
	}
	if (o->cfg.shard >= o->cfg.nshards) {
		tool_err("--shard %u is out of range: with --shards %u use "
			 "0..%u",
			 o->cfg.shard, o->cfg.nshards, o->cfg.nshards - 1);
		return -EINVAL;
	}
	if ((o->cfg.resume || o->cfg.ckpt_every) && !o->cfg.ckpt_dir) {
		tool_err("--resume and --checkpoint-every need "
			 "--checkpoint-dir DIR");
		return -EINVAL;
	}
	if (o->have_slack && o->cfg.model != RDPS_MODEL_SSP) {
		tool_err("--slack only goes with --model ssp");
		return -EINVAL;
	}
	return 0;
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
