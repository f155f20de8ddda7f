/* SPDX-License-Identifier: MIT */
/*
 * rdps_scale.c - rdps-scale, how an iteration's cost grows with workers and
 * shards. For each cell of a grid (transport x consistency model x workers
 * x shards x model size) it runs one rdps-launch job whose workers are this
 * program (--worker): each pulls the whole model, pushes a delta of it and
 * ticks its clock, iters times, then ticks alone iters times (the clock's
 * own cost). Per cell:
 *
 *   iter_us_median, iter_us_p99  over every worker's iterations;
 *   clock_us_median              over every worker's clock-only iterations;
 *   shard_cpu_us_per_iter        CPU time of all the shard processes (every
 *                                thread, /proc/PID/task/TID/schedstat) while
 *                                the workers iterated, over iters;
 *   bytes_per_worker_iter,       the worker's own counts (rdps_stats
 *   ops_per_worker_iter          remote_bytes, remote_ops), averaged over
 *                                the workers: counted, not estimated.
 *
 * Results: a CSV (-o), an aligned table on stdout with the clock's
 * operations per tick and the shards' CPU per MiB received beside them,
 * and an SVG (--svg) of iteration time against workers. Rank 0 finds the
 * shards as its launcher's children named rdps-server, so this measures
 * local jobs only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "rdps/rdps.h"
#include "spawn.h"

#define SCALE_MAX 16	    /* entries of each list */
#define SCALE_SHARDS_MAX 64 /* the largest -s */

struct opts {
	const char *tps[SCALE_MAX];
	enum rdps_model models[SCALE_MAX];
	size_t workers[SCALE_MAX], shards[SCALE_MAX], bytes[SCALE_MAX];
	size_t ntp, nmodel, nworkers, nshards, nbytes;
	uint64_t iters;
	const char *poll;
	const char *csv, *svg;
	unsigned timeout_s;
	int pin;
};

/* What one worker leaves in its file (DIR/RANK) after its job. */
struct wrk_out {
	uint64_t iters;
	uint64_t ops, bytes;		 /* during the full iterations */
	uint64_t clock_ops, clock_bytes; /* during the clock-only ones */
	uint64_t shard_cpu_ns;		 /* rank 0 only */
	/* Rank 0 only: whether scale_pin placed the job, and whether rank
	 * 0 was on shard 0's CPU when the iterations ended (1), on another
	 * (0), or either is unknown (-1). */
	int32_t pinned, same_cpu;
	/* then iters doubles (us) of full iterations, iters of clocks */
};

struct cell {
	const char *tp;
	enum rdps_model model;
	unsigned workers, shards;
	size_t bytes;
	uint64_t iters;
	double iter_med, iter_p99, clock_med, cpu_us, bytes_wi, ops_wi;
	double clock_ops;
	int pinned, same_cpu; /* rank 0's, see struct wrk_out */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdps-scale [options]\n"
		"Iterations (pull the model, push a delta, clock) of local "
		"jobs over a grid.\n"
		"  -t, --transports=LIST  shm,tcp (shm,tcp)\n"
		"  -m, --models=LIST      bsp,ssp,absp (bsp,ssp,absp)\n"
		"  -w, --workers=LIST     1,2,4,8,16 (1,2,4,8,16)\n"
		"  -s, --shards=LIST      1,2,4 (1,2,4)\n"
		"  -b, --bytes=LIST       model sizes, e.g. 4k,1m (4k,1m)\n"
		"  -n, --iters=N          iterations per worker for models up "
		"to 64 KiB (200);\n"
		"                         larger models do N/8, at least 20\n"
		"  -P, --poll=MODE        busy, adaptive or event (adaptive)\n"
		"  -o, --csv=FILE         write the CSV to FILE\n"
		"      --svg=FILE         write the plot to FILE\n"
		"  -T, --timeout=SEC      per job (300)\n"
		"      --pin              a job whose shards and workers fit "
		"the allowed CPUs:\n"
		"                         each process on its own CPU (shards "
		"first); else,\n"
		"                         and without --pin, where the kernel "
		"puts them\n"
		"  -h, --help\n");
}

static int parse_list(const char *s, const char *what, size_t min, size_t max,
		      size_t *v, size_t *n)
{
	if (tool_parse_sizes(s, min, max, v, SCALE_MAX, n)) {
		tool_err("bad %s list '%s': use e.g. 1,2,4", what, s);
		return -EINVAL;
	}
	return 0;
}

static int parse_names(char *s, struct opts *o, int models)
{
	size_t *n = models ? &o->nmodel : &o->ntp;

	*n = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		if (*n == SCALE_MAX) {
			tool_err("too many entries: at most %d", SCALE_MAX);
			return -EINVAL;
		}
		if (models) {
			if (tool_parse_model(tok, &o->models[*n]))
				return -EINVAL;
			if (o->models[*n] == RDPS_MODEL_ASP) {
				tool_err("asp has no iteration to wait for: "
					 "use bsp, ssp or absp");
				return -EINVAL;
			}
		} else {
			if (tool_check_transport(tok))
				return -EINVAL;
			o->tps[*n] = tok;
		}
		(*n)++;
	}
	if (!*n) {
		tool_err("empty %s list", models ? "model" : "transport");
		return -EINVAL;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"transports", required_argument, NULL, 't'},
		{"models", required_argument, NULL, 'm'},
		{"workers", required_argument, NULL, 'w'},
		{"shards", required_argument, NULL, 's'},
		{"bytes", required_argument, NULL, 'b'},
		{"iters", required_argument, NULL, 'n'},
		{"poll", required_argument, NULL, 'P'},
		{"csv", required_argument, NULL, 'o'},
		{"svg", required_argument, NULL, 'S'},
		{"timeout", required_argument, NULL, 'T'},
		{"pin", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	static char tps[] = "shm,tcp", models[] = "bsp,ssp,absp";
	enum rdps_tp_poll_mode pm;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->iters = 200;
	o->poll = "adaptive";
	o->timeout_s = 300;
	if (parse_names(tps, o, 0) || parse_names(models, o, 1) ||
	    parse_list("1,2,4,8,16", "workers", 1, 1024, o->workers,
		       &o->nworkers) ||
	    parse_list("1,2,4", "shards", 1, 64, o->shards, &o->nshards) ||
	    parse_list("4k,1m", "bytes", 4, 1ull << 30, o->bytes, &o->nbytes))
		return -EINVAL;
	while ((c = getopt_long(argc, argv, "t:m:w:s:b:n:P:o:T:h", lo, NULL)) !=
	       -1) {
		switch (c) {
		case 't':
			if (parse_names(optarg, o, 0))
				return -EINVAL;
			break;
		case 'm':
			if (parse_names(optarg, o, 1))
				return -EINVAL;
			break;
		case 'w':
			if (parse_list(optarg, "workers", 1, 1024, o->workers,
				       &o->nworkers))
				return -EINVAL;
			break;
		case 's':
			if (parse_list(optarg, "shards", 1, 64, o->shards,
				       &o->nshards))
				return -EINVAL;
			break;
		case 'b':
			if (parse_list(optarg, "bytes", 4, 1ull << 30, o->bytes,
				       &o->nbytes))
				return -EINVAL;
			break;
		case 'n':
			if (tool_parse_count(optarg, "iterations", 1, 100000000,
					     &o->iters))
				return -EINVAL;
			break;
		case 'P':
			if (tool_parse_poll(optarg, &pm))
				return -EINVAL;
			o->poll = optarg;
			break;
		case 'o':
			o->csv = optarg;
			break;
		case 'S':
			o->svg = optarg;
			break;
		case 'T':
			if (tool_parse_count(optarg, "timeout", 1, 86400, &v))
				return -EINVAL;
			o->timeout_s = (unsigned)v;
			break;
		case 'p':
			o->pin = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		tool_err("unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* ---- worker side ---------------------------------------------------- */

/* Nanoseconds on a CPU of every thread of pid (schedstat's first field). */
static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[128];
	uint64_t sum = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat",
			 (int)pid, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f))
			sum += strtoull(buf, NULL, 10);
		fclose(f);
	}
	closedir(d);
	return sum;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

/* The rdps-server children of our launcher, in the order they were
 * started (shard 0 first: rdps-launch starts them in order, so by pid);
 * returns how many (at most max). */
static size_t shard_pids(pid_t *pids, size_t max)
{
	pid_t pp = getppid();
	char path[64], comm[32], list[4096];
	size_t n = 0;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pp,
		 (int)pp);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(list, sizeof(list), f))
		list[0] = 0;
	fclose(f);
	for (p = strtok(list, " \n"); p && n < max; p = strtok(NULL, " \n")) {
		snprintf(path, sizeof(path), "/proc/%.16s/comm", p);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    !strncmp(comm, "rdps-server", 11))
			pids[n++] = (pid_t)atoi(p);
		fclose(f);
	}
	qsort(pids, n, sizeof(*pids), cmp_pid);
	return n;
}

/* CPU time of every rdps-server child of our launcher, in ns. */
static uint64_t shards_cpu_ns(void)
{
	pid_t pids[SCALE_SHARDS_MAX];
	size_t n = shard_pids(pids, SCALE_SHARDS_MAX);
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += proc_cpu_ns(pids[i]);
	return sum;
}

/*
 * --pin: where the kernel puts a shard and a worker that wake each other
 * decides a one-worker cell's speed. On 2 cores, the same cell ran at one of
 * two speeds from run to run (tcp bsp 1x1: 35 us or 200-260 us an
 * iteration; shm ssp 1x1: 3-4 or 24-50 us): in every slow run the shard
 * and the worker shared a CPU (one spinning while the other waited for the
 * core, or both asleep behind other load), in every fast one they ran on
 * two; a wake-up pulls the woken process to its waker's CPU, so a run that
 * starts together stays together. Pinned apart, the cell ran fast every
 * time. So with --pin, when the job's processes fit (shards + workers <=
 * allowed CPUs), shard i gets the i-th allowed CPU (every thread) and
 * worker r the (shards + r)-th; else they run where the kernel puts them.
 * Returns 1 if pinned.
 */
static int scale_pin(unsigned rank, unsigned workers, unsigned shards)
{
	int cpus[CPU_SETSIZE], ncpu = 0;
	pid_t pids[SCALE_SHARDS_MAX];
	cpu_set_t all, one;
	size_t n;

	if (sched_getaffinity(0, sizeof(all), &all))
		return 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all))
			cpus[ncpu++] = c;
	if (workers + shards > (unsigned)ncpu)
		return 0;
	CPU_ZERO(&one);
	CPU_SET(cpus[shards + rank], &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		return 0;
	if (rank)
		return 1;
	n = shard_pids(pids, SCALE_SHARDS_MAX);
	for (size_t i = 0; i < n && i < shards; i++) {
		char path[64];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)pids[i]);
		d = opendir(path);
		if (!d)
			return 0;
		CPU_ZERO(&one);
		CPU_SET(cpus[i], &one);
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				sched_setaffinity((pid_t)atoi(de->d_name),
						  sizeof(one), &one);
		closedir(d);
	}
	return n == shards;
}

/* The CPU pid's main thread last ran on (field 39 of /proc/PID/stat), or
 * -1. */
static int proc_last_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	int field = 2, cpu = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	/* The name (field 2) may hold spaces: count from its ')'. */
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	for (; p && *p; p++) {
		if (*p != ' ')
			continue;
		if (++field == 39) {
			cpu = atoi(p + 1);
			break;
		}
	}
	return cpu;
}

static double us_since(uint64_t t0)
{
	return (double)(rdps_now_ns() - t0) / 1e3;
}

/* The iterations of one worker; its figures into DIR/RANK. */
static int worker_run(const char *dir, size_t bytes, uint64_t iters, int pin)
{
	struct rdps_stats s0, s1, s2;
	struct rdps_config cfg;
	struct rdps_ctx *ctx = NULL;
	struct rdps_table *t;
	struct wrk_out out;
	uint64_t n = bytes / 4, warm = iters / 10 + 2, cpu0 = 0;
	double *us = NULL;
	float *dst, *delta;
	char path[PATH_MAX];
	int ret, rc = 1, pinned = 0;
	FILE *f;

	rdps_config_default(&cfg);
	rdps_clear_error();
	ret = rdps_config_from_env(&cfg);
	if (ret)
		return tool_fail(ret, "reading the environment");
	rdps_clear_error();
	ret = rdps_ctx_create(&cfg, &ctx);
	if (ret)
		return tool_fail(ret, "connecting to the shards");
	/* Connected: every shard is up, with its threads. The warm-up
	 * iterations run after the move. */
	if (pin) {
		unsigned nsh = 1;

		for (const char *p = cfg.shards; p && *p; p++)
			nsh += *p == ',';
		pinned = scale_pin((unsigned)cfg.rank, (unsigned)cfg.workers,
				   nsh);
	}
	rdps_clear_error();
	ret = rdps_table_open(ctx, "scale", n, RDPS_DTYPE_F32, RDPS_RULE_SUM, 0,
			      &t);
	if (ret) {
		rc = tool_fail(ret, "opening the table");
		goto out;
	}
	/* Registered memory: the zero-copy paths, as a tuned job has. */
	dst = rdps_buf_alloc(ctx, n * 4);
	delta = rdps_buf_alloc(ctx, n * 4);
	us = calloc(2 * iters, sizeof(*us));
	if (!dst || !delta || !us) {
		tool_err("out of memory for a %zu-byte model", bytes);
		goto out;
	}
	for (uint64_t i = 0; i < n; i++)
		delta[i] = 1.0f / 1024;
	rdps_clear_error();
	for (uint64_t i = 0; i < warm && !ret; i++) {
		ret = rdps_pull(t, 0, n, dst);
		ret = ret ? ret : rdps_push(t, 0, n, delta);
		ret = ret ? ret : rdps_clock(ctx);
	}
	/* Rank 0 reads the shards' CPU before the barrier: nobody starts
	 * iterating until it arrived. */
	if (!ret && cfg.rank == 0)
		cpu0 = shards_cpu_ns();
	ret = ret ? ret : rdps_barrier(ctx);
	rdps_ctx_stats(ctx, &s0);
	for (uint64_t i = 0; i < iters && !ret; i++) {
		uint64_t t0 = rdps_now_ns();

		ret = rdps_pull(t, 0, n, dst);
		ret = ret ? ret : rdps_push(t, 0, n, delta);
		ret = ret ? ret : rdps_clock(ctx);
		us[i] = us_since(t0);
	}
	rdps_ctx_stats(ctx, &s1);
	memset(&out, 0, sizeof(out));
	out.pinned = pinned;
	out.same_cpu = -1;
	if (cfg.rank == 0) {
		pid_t shard0;
		int mine = sched_getcpu(), theirs = -1;

		if (shard_pids(&shard0, 1) == 1)
			theirs = proc_last_cpu(shard0);
		if (mine >= 0 && theirs >= 0)
			out.same_cpu = mine == theirs;
	}
	ret = ret ? ret : rdps_barrier(ctx);
	if (!ret && cfg.rank == 0)
		out.shard_cpu_ns = shards_cpu_ns() - cpu0;
	for (uint64_t i = 0; i < iters && !ret; i++) {
		uint64_t t0 = rdps_now_ns();

		ret = rdps_clock(ctx);
		us[iters + i] = us_since(t0);
	}
	rdps_ctx_stats(ctx, &s2);
	if (ret) {
		rc = tool_fail(ret, "iterating");
		goto out;
	}
	out.iters = iters;
	out.ops = s1.remote_ops - s0.remote_ops;
	out.bytes = s1.remote_bytes - s0.remote_bytes;
	out.clock_ops = s2.remote_ops - s1.remote_ops;
	out.clock_bytes = s2.remote_bytes - s1.remote_bytes;
	snprintf(path, sizeof(path), "%s/%d", dir, cfg.rank);
	f = fopen(path, "w");
	if (!f || fwrite(&out, sizeof(out), 1, f) != 1 ||
	    fwrite(us, sizeof(*us), 2 * iters, f) != 2 * iters) {
		tool_err("cannot write '%s': %s", path, strerror(errno));
		if (f)
			fclose(f);
		goto out;
	}
	rc = fclose(f) ? 1 : 0;
	/* Meet the others once everyone wrote (a BSP clock-only tick may
	 * still be waited for by a slower worker), then check that the
	 * pulls saw every delta: sums of 1/1024 are exact in float32. */
	rdps_clear_error();
	ret = rdps_barrier(ctx);
	ret = ret ? ret : rdps_pull(t, 0, n, dst);
	if (ret) {
		rc = tool_fail(ret, "the last barrier and pull");
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		double want = (double)(warm + iters) * cfg.workers / 1024;

		if (dst[i] != (float)want) {
			tool_err("element %llu is %g after the job, expected "
				 "%g: a delta was lost or a pull was stale",
				 (unsigned long long)i, dst[i], want);
			rc = 1;
			break;
		}
	}
out:
	free(us);
	rdps_ctx_destroy(ctx);
	return rc;
}

/* ---- driver side ---------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank quantile q of v[0..n) (sorted). */
static double quantile(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n + 0.999999);

	return v[i ? i - 1 : 0];
}

/* Read the workers' files of one cell in dir into c. */
static int cell_collect(struct cell *c, const char *dir)
{
	size_t n = (size_t)c->workers * c->iters, got = 0;
	double *iter = calloc(n, sizeof(double));
	double *clk = calloc(n, sizeof(double));
	double ops = 0, bytes = 0, cops = 0;
	uint64_t cpu = 0;
	int rc = -EIO;

	for (unsigned r = 0; iter && clk && r < c->workers; r++) {
		char path[PATH_MAX];
		struct wrk_out w;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%u", dir, r);
		f = fopen(path, "r");
		if (!f || fread(&w, sizeof(w), 1, f) != 1 ||
		    w.iters != c->iters ||
		    fread(iter + got, sizeof(double), w.iters, f) != w.iters ||
		    fread(clk + got, sizeof(double), w.iters, f) != w.iters) {
			tool_err("worker %u of the job left no figures", r);
			if (f)
				fclose(f);
			goto out;
		}
		fclose(f);
		unlink(path);
		got += w.iters;
		ops += (double)w.ops;
		bytes += (double)w.bytes;
		cops += (double)w.clock_ops;
		cpu += w.shard_cpu_ns;
		if (r == 0) {
			c->pinned = w.pinned;
			c->same_cpu = w.same_cpu;
		}
	}
	if (!iter || !clk)
		goto out;
	qsort(iter, n, sizeof(double), cmp_double);
	qsort(clk, n, sizeof(double), cmp_double);
	c->iter_med = quantile(iter, n, 0.5);
	c->iter_p99 = quantile(iter, n, 0.99);
	c->clock_med = quantile(clk, n, 0.5);
	c->ops_wi = ops / (double)n;
	c->bytes_wi = bytes / (double)n;
	c->clock_ops = cops / (double)n;
	c->cpu_us = (double)cpu / 1e3 / (double)c->iters;
	rc = 0;
out:
	free(iter);
	free(clk);
	return rc;
}

/* The job running now, and a stop asked for by SIGINT or SIGTERM: the job
 * is told to stop, and the grid ends once it has, leaving nothing. */
static volatile pid_t scale_job;
static volatile sig_atomic_t scale_stop;

static void scale_on_signal(int sig)
{
	scale_stop = sig;
	if (scale_job > 0)
		kill(scale_job, SIGTERM);
}

/* One job: rdps-launch with this program as its workers. */
static int cell_run(const struct opts *o, struct cell *c, const char *dir)
{
	char launch[PATH_MAX], self[PATH_MAX], s[16], w[16], b[32], n[32];
	char to[16], log[PATH_MAX + 8];
	const char *argv[] = {launch,
			      "-t",
			      c->tp,
			      "-s",
			      s,
			      "-w",
			      w,
			      "-m",
			      rdps_model_name(c->model),
			      "-P",
			      o->poll,
			      "-T",
			      to,
			      "--",
			      self,
			      "--worker",
			      dir,
			      b,
			      n,
			      o->pin ? "pin" : "free",
			      NULL};
	/* (exec takes char *const[]; nothing writes to them) */
	struct tool_spawn sp = {.path = launch,
				.argv = (char *const *)argv,
				.keep_fd = -1,
				.out_fd = -1,
				.die_with_parent = 1};
	int status, fd;
	pid_t pid;

	if (tool_sibling("rdps-launch", launch, sizeof(launch)) ||
	    tool_self(self, sizeof(self), 0))
		return -ENOENT;
	snprintf(s, sizeof(s), "%u", c->shards);
	snprintf(w, sizeof(w), "%u", c->workers);
	snprintf(b, sizeof(b), "%zu", c->bytes);
	snprintf(n, sizeof(n), "%llu", (unsigned long long)c->iters);
	snprintf(to, sizeof(to), "%u", o->timeout_s);
	snprintf(log, sizeof(log), "%s/log", dir);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		tool_err("cannot write '%s': %s", log, strerror(errno));
		return -errno;
	}
	sp.out_fd = fd;
	pid = tool_spawn(&sp);
	close(fd);
	scale_job = pid;
	if (pid > 0 && scale_stop)
		kill(pid, SIGTERM);
	if (pid < 0 || tool_wait(pid, &status)) {
		scale_job = 0;
		unlink(log);
		return -ECHILD;
	}
	scale_job = 0;
	if (scale_stop) {
		for (unsigned r = 0; r < c->workers; r++) {
			char path[PATH_MAX];

			snprintf(path, sizeof(path), "%s/%u", dir, r);
			unlink(path);
		}
		unlink(log);
		return -EINTR;
	}
	if (tool_status_code(status) == 0 && !cell_collect(c, dir)) {
		unlink(log);
		return 0;
	}
	{
		char line[512] = "", last[512] = "";
		FILE *f = fopen(log, "r");

		while (f && fgets(line, sizeof(line), f))
			snprintf(last, sizeof(last), "%s", line);
		if (f)
			fclose(f);
		last[strcspn(last, "\n")] = 0;
		tool_err("%s %s %u workers %u shards %zu B failed: %s", c->tp,
			 rdps_model_name(c->model), c->workers, c->shards,
			 c->bytes, last[0] ? last : "no output");
	}
	unlink(log);
	return -EIO;
}

static const char csv_head[] =
	"transport,model,workers,shards,model_bytes,iters,iter_us_median,"
	"iter_us_p99,clock_us_median,shard_cpu_us_per_iter,"
	"bytes_per_worker_iter,ops_per_worker_iter,placement";

/* How the job's processes were placed: pinned by --pin or free, and
 * whether worker 0 ended on shard 0's CPU. */
static const char *placement(const struct cell *c)
{
	static const char *const names[2][3] = {
		{"free-unknown", "free-apart", "free-shared"},
		{"pinned-unknown", "pinned-apart", "pinned-shared"}};

	return names[c->pinned ? 1 : 0][c->same_cpu + 1];
}

static void csv_row(FILE *f, const struct cell *c)
{
	fprintf(f, "%s,%s,%u,%u,%zu,%llu,%.3f,%.3f,%.3f,%.3f,%.1f,%.3f,%s\n",
		c->tp, rdps_model_name(c->model), c->workers, c->shards,
		c->bytes, (unsigned long long)c->iters, c->iter_med,
		c->iter_p99, c->clock_med, c->cpu_us, c->bytes_wi, c->ops_wi,
		placement(c));
}

static void table_head(void)
{
	printf("%-4s %-5s %3s %3s %8s %6s %10s %10s %9s %9s %12s %7s %6s "
	       "%9s %s\n",
	       "tp", "model", "W", "S", "bytes", "iters", "iter_med",
	       "iter_p99", "clock_med", "shard_cpu", "bytes/w/it", "ops/w/it",
	       "clk_op", "cpu_us/MiB", "placement");
	fflush(stdout);
}

static void table_row(const struct cell *c)
{
	/* What the shards receive per iteration: every worker's push. */
	double mib_in = (double)c->workers * (double)c->bytes / 1048576.0;

	printf("%-4s %-5s %3u %3u %8zu %6llu %10.2f %10.2f %9.2f %9.2f %12.0f "
	       "%7.2f %6.2f %9.1f %s\n",
	       c->tp, rdps_model_name(c->model), c->workers, c->shards,
	       c->bytes, (unsigned long long)c->iters, c->iter_med, c->iter_p99,
	       c->clock_med, c->cpu_us, c->bytes_wi, c->ops_wi, c->clock_ops,
	       c->cpu_us / mib_in, placement(c));
	fflush(stdout);
}

/* The power of ten at or below v > 0. */
static double pow10_floor(double v)
{
	return pow(10, floor(log10(v)));
}

/* Where v lies between lo and hi on a log scale, 0..1. */
static double log_ratio(double v, double lo, double hi)
{
	return hi > lo ? log(v / lo) / log(hi / lo) : 0;
}

/*
 * The SVG: one panel per transport and consistency model, iteration time
 * (log scale) against workers (log scale), one line per shards x model
 * size.
 */
static int svg_write(const char *path, const struct opts *o,
		     const struct cell *cells, size_t ncells)
{
	const char *colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
				"#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
	const double pw = 300, ph = 220, ml = 60, mt = 40, gap = 70;
	double lo = 1e300, hi = 0, wmax = 1;
	FILE *f = fopen(path, "w");

	if (!f) {
		tool_err("cannot write '%s': %s", path, strerror(errno));
		return -errno;
	}
	for (size_t i = 0; i < ncells; i++) {
		if (cells[i].iter_med <= 0)
			continue;
		lo = cells[i].iter_med < lo ? cells[i].iter_med : lo;
		hi = cells[i].iter_med > hi ? cells[i].iter_med : hi;
		wmax = cells[i].workers > wmax ? cells[i].workers : wmax;
	}
	if (hi <= 0) {
		lo = 1;
		hi = 10;
	}
	lo = pow10_floor(lo);
	hi = lo * 10 > hi ? lo * 10 : hi;
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
		"height=\"%.0f\" font-family=\"sans-serif\" font-size=\"11\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"10\" y=\"18\" font-size=\"14\">rdps-scale: "
		"iteration time (us, median, log) against workers (log); one "
		"line per shards x model size</text>\n",
		ml + (double)o->nmodel * (pw + gap) + 160,
		mt + (double)o->ntp * (ph + gap));
	for (size_t ti = 0; ti < o->ntp; ti++) {
		for (size_t mi = 0; mi < o->nmodel; mi++) {
			double x0 = ml + (double)mi * (pw + gap);
			double y0 = mt + (double)ti * (ph + gap);
			size_t line = 0;

			fprintf(f,
				"<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" "
				"height=\"%.0f\" fill=\"none\" "
				"stroke=\"#999\"/>\n<text x=\"%.0f\" "
				"y=\"%.0f\">%s %s</text>\n",
				x0, y0, pw, ph, x0, y0 - 4, o->tps[ti],
				rdps_model_name(o->models[mi]));
			fprintf(f,
				"<text x=\"%.0f\" y=\"%.0f\" "
				"text-anchor=\"end\">%.3g</text>\n<text "
				"x=\"%.0f\" y=\"%.0f\" "
				"text-anchor=\"end\">%.3g</text>\n"
				"<text x=\"%.0f\" y=\"%.0f\">1</text><text "
				"x=\"%.0f\" y=\"%.0f\" "
				"text-anchor=\"end\">%.0f workers</text>\n",
				x0 - 3, y0 + ph, lo, x0 - 3, y0 + 10, hi, x0,
				y0 + ph + 13, x0 + pw, y0 + ph + 13, wmax);
			for (size_t si = 0; si < o->nshards; si++) {
				for (size_t bi = 0; bi < o->nbytes; bi++) {
					const char *col = colors[line++ % 8];
					int first = 1;

					for (size_t i = 0; i < ncells; i++) {
						const struct cell *c =
							&cells[i];
						double x, y;

						if (c->tp != o->tps[ti] ||
						    c->model != o->models[mi] ||
						    c->shards !=
							    o->shards[si] ||
						    c->bytes != o->bytes[bi] ||
						    c->iter_med <= 0)
							continue;
						x = x0 +
						    pw * log_ratio(c->workers,
								   1, wmax);
						y = y0 + ph -
						    ph * log_ratio(c->iter_med,
								   lo, hi);
						fprintf(f, "%s%.1f,%.1f",
							first ? "<polyline "
								"fill=\"none\" "
								"points=\""
							      : " ",
							x, y);
						first = 0;
					}
					if (!first)
						fprintf(f,
							"\" stroke=\"%s\" "
							"stroke-width=\"2\"/>"
							"\n",
							col);
					if (ti == 0 && mi + 1 == o->nmodel)
						fprintf(f,
							"<text x=\"%.0f\" "
							"y=\"%.0f\" "
							"fill=\"%s\">S=%zu, "
							"%zu B</text>\n",
							x0 + pw + 10,
							y0 + 12.0 * (double)line,
							col, o->shards[si],
							o->bytes[bi]);
				}
			}
		}
	}
	fprintf(f, "</svg>\n");
	return fclose(f) ? -EIO : 0;
}

/* Iterations of a cell: -n for models up to 64 KiB, n/8 (>= 20) above. */
static uint64_t cell_iters(const struct opts *o, size_t bytes)
{
	uint64_t n = o->iters;

	if (bytes > 65536) {
		n /= 8;
		n = n < 20 ? 20 : n;
		n = n > o->iters ? o->iters : n;
	}
	return n;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/rdps-scale.XXXXXX";
	struct cell *cells;
	struct opts o;
	size_t ncells = 0, max;
	FILE *csv = NULL;
	int rc = 0;

	tool_name = "rdps-scale";
	if (argc == 6 && !strcmp(argv[1], "--worker")) {
		uint64_t b, n;

		if (tool_parse_count(argv[3], "model bytes", 4, 1ull << 30,
				     &b) ||
		    tool_parse_count(argv[4], "iterations", 1, 100000000, &n))
			return 2;
		return worker_run(argv[2], (size_t)b, n,
				  !strcmp(argv[5], "pin"));
	}
	if (parse_args(argc, argv, &o))
		return 2;
	max = o.ntp * o.nmodel * o.nworkers * o.nshards * o.nbytes;
	cells = calloc(max, sizeof(*cells));
	if (!cells) {
		tool_err("out of memory");
		return 1;
	}
	if (o.csv) {
		csv = fopen(o.csv, "w");
		if (!csv) {
			tool_err("cannot write '%s': %s", o.csv,
				 strerror(errno));
			free(cells);
			return 2;
		}
		fprintf(csv, "%s\n", csv_head);
	}
	if (!mkdtemp(dir)) {
		tool_err("mkdtemp: %s", strerror(errno));
		rc = 1;
		goto out;
	}
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = scale_on_signal;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	table_head();
	for (size_t ti = 0; ti < o.ntp; ti++)
		for (size_t mi = 0; mi < o.nmodel; mi++)
			for (size_t bi = 0; bi < o.nbytes; bi++)
				for (size_t si = 0; si < o.nshards; si++)
					for (size_t wi = 0; wi < o.nworkers;
					     wi++) {
						struct cell *c = &cells[ncells];

						c->tp = o.tps[ti];
						c->model = o.models[mi];
						c->workers =
							(unsigned)o.workers[wi];
						c->shards =
							(unsigned)o.shards[si];
						c->bytes = o.bytes[bi];
						c->iters = cell_iters(&o,
								      c->bytes);
						if (scale_stop)
							break;
						if (cell_run(&o, c, dir)) {
							rc = 1;
							continue;
						}
						ncells++;
						table_row(c);
						if (csv) {
							csv_row(csv, c);
							fflush(csv);
						}
					}
	rmdir(dir);
	if (scale_stop) {
		tool_err("stopped by signal %d", (int)scale_stop);
		rc = 130;
		goto out;
	}
	if (o.svg && svg_write(o.svg, &o, cells, ncells))
		rc = 1;
out:
	if (csv && fclose(csv)) {
		tool_err("cannot write '%s'", o.csv);
		rc = 1;
	}
	free(cells);
	return rc;
}
