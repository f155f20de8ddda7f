/* SPDX-License-Identifier: MIT */
/*
 * rendezvous.c - the job rendezvous of cluster launches: the line protocol,
 * the root's job bookkeeping and server, and the client (rendezvous.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rdps_base.h"
#include "config.h"
#include "rendezvous.h"

#define STOP_GRACE_MS 10000
#define DEF_HELLO_TIMEOUT_MS 60000

/* Protocol ------------------------------------------------------------ */

static const struct {
	const char *name;
	enum rdps_rdv_op op;
	unsigned nfields; /* after the name; ERR: free text */
} ops[] = {
	{"HELLO", RDPS_RDV_HELLO, 5}, {"WELCOME", RDPS_RDV_WELCOME, 1},
	{"PUT", RDPS_RDV_PUT, 2},     {"OK", RDPS_RDV_OK, 0},
	{"GET", RDPS_RDV_GET, 0},     {"SHARD", RDPS_RDV_SHARD, 2},
	{"END", RDPS_RDV_END, 0},     {"DONE", RDPS_RDV_DONE, 1},
	{"STOP", RDPS_RDV_STOP, 0},   {"ERR", RDPS_RDV_ERR, 0},
};

/* A plain decimal number without sign or leading zeros, at most max. */
static int parse_num(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 20 || (len > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int check_url(const char *s, size_t len)
{
	const char *sep = memmem(s, len, "://", 3);

	if (!len || len >= RDPS_RDV_TEXT_MAX || !sep || sep == s ||
	    sep + 3 == s + len || memchr(s, ',', len))
		return -EINVAL;
	return 0;
}

int rdps_rdv_parse(const char *line, size_t len, struct rdps_rdv_msg *out)
{
	const char *f[6];
	size_t flen[6];
	unsigned nf = 0, k;
	struct rdps_rdv_msg m;
	uint64_t v[5];
	size_t i, start = 0;

	if (len >= RDPS_RDV_LINE_MAX)
		return rdps_set_error(-EMSGSIZE,
				      "rendezvous line of %zu bytes: at most "
				      "%d are allowed",
				      len, RDPS_RDV_LINE_MAX - 1);
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e)
			return rdps_set_error(
				-EINVAL,
				"rendezvous line with byte 0x%02x "
				"at %zu: only printable ascii "
				"is allowed",
				(unsigned char)line[i], i);
	if (!len)
		return rdps_set_error(-EINVAL, "empty rendezvous line");
	memset(&m, 0, sizeof(m));
	/* ERR carries free text. */
	if (len >= 4 && !memcmp(line, "ERR ", 4)) {
		if (len - 4 >= RDPS_RDV_TEXT_MAX)
			return rdps_set_error(-EMSGSIZE,
					      "rendezvous error text too long");
		m.op = RDPS_RDV_ERR;
		memcpy(m.text, line + 4, len - 4);
		*out = m;
		return 0;
	}
	for (i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (i == start)
			return rdps_set_error(-EINVAL,
					      "rendezvous line '%.*s': empty "
					      "field at %zu (one space between "
					      "fields)",
					      (int)len, line, i);
		if (nf == RDPS_ARRAY_SIZE(f))
			return rdps_set_error(
				-EINVAL,
				"rendezvous line '%.*s': too many "
				"fields",
				(int)len, line);
		f[nf] = line + start;
		flen[nf++] = i - start;
		start = i + 1;
	}
	for (k = 0; k < RDPS_ARRAY_SIZE(ops); k++)
		if (strlen(ops[k].name) == flen[0] &&
		    !memcmp(ops[k].name, f[0], flen[0]))
			break;
	if (k == RDPS_ARRAY_SIZE(ops) || ops[k].op == RDPS_RDV_ERR)
		return rdps_set_error(-EINVAL,
				      "unknown rendezvous request '%.*s'",
				      (int)flen[0], f[0]);
	if (nf - 1 != ops[k].nfields)
		return rdps_set_error(-EINVAL,
				      "rendezvous %s takes %u field%s, got %u",
				      ops[k].name, ops[k].nfields,
				      ops[k].nfields == 1 ? "" : "s", nf - 1);
	m.op = ops[k].op;
	switch (m.op) {
	case RDPS_RDV_HELLO:
		if (parse_num(f[1], flen[1],
			      RDPS_RDV_SHARDS_MAX + RDPS_RDV_WORKERS_MAX - 1,
			      &v[0]) ||
		    parse_num(f[2], flen[2],
			      RDPS_RDV_SHARDS_MAX + RDPS_RDV_WORKERS_MAX,
			      &v[1]) ||
		    parse_num(f[3], flen[3], RDPS_RDV_SHARDS_MAX, &v[2]) ||
		    parse_num(f[5], flen[5], RDPS_RDV_SLACK_MAX, &v[4]))
			return rdps_set_error(-EINVAL,
					      "bad rendezvous HELLO '%.*s': "
					      "want HELLO RANK SIZE SHARDS "
					      "MODEL SLACK",
					      (int)len, line);
		for (v[3] = 0; v[3] < RDPS_MODEL_COUNT; v[3]++)
			if (strlen(rdps_model_name(v[3])) == flen[4] &&
			    !memcmp(rdps_model_name(v[3]), f[4], flen[4]))
				break;
		if (v[3] == RDPS_MODEL_COUNT)
			return rdps_set_error(-EINVAL,
					      "bad rendezvous HELLO model "
					      "'%.*s': bsp, ssp, asp or absp",
					      (int)flen[4], f[4]);
		m.rank = (unsigned)v[0];
		m.size = (unsigned)v[1];
		m.shards = (unsigned)v[2];
		m.model = (enum rdps_model)v[3];
		m.slack = (unsigned)v[4];
		break;
	case RDPS_RDV_WELCOME:
		if (parse_num(f[1], flen[1], UINT64_MAX, &m.token))
			return rdps_set_error(-EINVAL,
					      "bad rendezvous token '%.*s'",
					      (int)flen[1], f[1]);
		break;
	case RDPS_RDV_PUT:
	case RDPS_RDV_SHARD:
		if (parse_num(f[1], flen[1], RDPS_RDV_SHARDS_MAX - 1, &v[0]))
			return rdps_set_error(-EINVAL,
					      "bad rendezvous shard index "
					      "'%.*s': 0 to %d",
					      (int)flen[1], f[1],
					      RDPS_RDV_SHARDS_MAX - 1);
		if (check_url(f[2], flen[2]))
			return rdps_set_error(-EINVAL,
					      "bad rendezvous url '%.*s': want "
					      "SCHEME://ADDRESS without commas",
					      (int)flen[2], f[2]);
		m.index = (unsigned)v[0];
		memcpy(m.text, f[2], flen[2]);
		break;
	case RDPS_RDV_DONE:
		if (parse_num(f[1], flen[1], 255, &v[0]))
			return rdps_set_error(-EINVAL,
					      "bad rendezvous exit status "
					      "'%.*s': 0 to 255",
					      (int)flen[1], f[1]);
		m.status = (unsigned)v[0];
		break;
	default:
		break;
	}
	*out = m;
	return 0;
}

int rdps_rdv_format(const struct rdps_rdv_msg *m, char *buf, size_t len)
{
	int n;

	switch (m->op) {
	case RDPS_RDV_HELLO:
		if ((unsigned)m->model >= RDPS_MODEL_COUNT)
			return -EINVAL;
		n = snprintf(buf, len, "HELLO %u %u %u %s %u\n", m->rank,
			     m->size, m->shards, rdps_model_name(m->model),
			     m->slack);
		break;
	case RDPS_RDV_WELCOME:
		n = snprintf(buf, len, "WELCOME %" PRIu64 "\n", m->token);
		break;
	case RDPS_RDV_PUT:
	case RDPS_RDV_SHARD:
		n = snprintf(buf, len, "%s %u %s\n",
			     m->op == RDPS_RDV_PUT ? "PUT" : "SHARD", m->index,
			     m->text);
		break;
	case RDPS_RDV_DONE:
		n = snprintf(buf, len, "DONE %u\n", m->status);
		break;
	case RDPS_RDV_ERR:
		n = snprintf(buf, len, "ERR %s\n", m->text);
		break;
	case RDPS_RDV_OK:
	case RDPS_RDV_GET:
	case RDPS_RDV_END:
	case RDPS_RDV_STOP:
		n = snprintf(buf, len, "%s\n", ops[m->op - 1].name);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= len || n >= RDPS_RDV_LINE_MAX)
		return -EMSGSIZE;
	return n;
}

int rdps_rdv_addr_parse(const char *s, char *host, size_t hlen, char *port,
			size_t plen)
{
	const char *colon, *h = s;
	size_t hl;
	uint64_t p;

	if (!s || !*s)
		goto bad;
	colon = strrchr(s, ':');
	if (!colon)
		goto bad;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			goto bad;
		h = s + 1;
		hl -= 2;
	} else if (memchr(s, ':', hl)) {
		goto bad; /* bare IPv6 */
	}
	if (!hl || hl >= hlen ||
	    parse_num(colon + 1, strlen(colon + 1), 65535, &p) || !p ||
	    strlen(colon + 1) >= plen)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
bad:
	return rdps_set_error(-EINVAL,
			      "bad rendezvous address '%s': want HOST:PORT "
			      "(or [IPV6]:PORT) with a port of 1 to 65535",
			      s ? s : "(null)");
}

/* The job ------------------------------------------------------------- */

int rdps_rdv_job_init(struct rdps_rdv_job *job, unsigned size, unsigned shards,
		      enum rdps_model model, unsigned slack, uint64_t token)
{
	memset(job, 0, sizeof(*job));
	if (shards < 1 || shards > RDPS_RDV_SHARDS_MAX || size <= shards ||
	    size - shards > RDPS_RDV_WORKERS_MAX)
		return rdps_set_error(-EINVAL,
				      "a job of %u ranks cannot have %u "
				      "shards: use 1 to %d shards and 1 to %d "
				      "workers",
				      size, shards, RDPS_RDV_SHARDS_MAX,
				      RDPS_RDV_WORKERS_MAX);
	if ((unsigned)model >= RDPS_MODEL_COUNT || slack > RDPS_RDV_SLACK_MAX)
		return rdps_set_error(-EINVAL, "bad model or slack");
	job->size = size;
	job->shards = shards;
	job->model = model;
	job->slack = slack;
	job->token = token;
	job->said_hello = calloc(size, 1);
	job->finished = calloc(size, 1);
	job->urls = calloc(shards, sizeof(*job->urls));
	if (!job->said_hello || !job->finished || !job->urls) {
		rdps_rdv_job_fini(job);
		return rdps_set_error(-ENOMEM, "out of memory");
	}
	return 0;
}

void rdps_rdv_job_fini(struct rdps_rdv_job *job)
{
	free(job->said_hello);
	free(job->finished);
	free(job->urls);
	memset(job, 0, sizeof(*job));
}

int rdps_rdv_job_hello(struct rdps_rdv_job *job, const struct rdps_rdv_msg *m)
{
	if (m->op != RDPS_RDV_HELLO)
		return rdps_set_error(-EINVAL, "say HELLO first");
	if (m->size != job->size || m->shards != job->shards)
		return rdps_set_error(-EINVAL,
				      "rank %u sees %u ranks and %u shards, "
				      "rank 0 sees %u and %u: run every rank "
				      "with the same --shards in one job",
				      m->rank, m->size, m->shards, job->size,
				      job->shards);
	if (m->model != job->model || m->slack != job->slack)
		return rdps_set_error(-EINVAL,
				      "rank %u uses model %s slack %u, rank 0 "
				      "%s slack %u: give every rank the same "
				      "--model and --slack",
				      m->rank, rdps_model_name(m->model),
				      m->slack, rdps_model_name(job->model),
				      job->slack);
	if (m->rank >= job->size)
		return rdps_set_error(-EINVAL, "rank %u is out of range 0..%u",
				      m->rank, job->size - 1);
	if (job->said_hello[m->rank])
		return rdps_set_error(-EEXIST,
				      "rank %u joined twice: two processes "
				      "have the same rank",
				      m->rank);
	job->said_hello[m->rank] = 1;
	job->hellos++;
	return 0;
}

int rdps_rdv_job_put(struct rdps_rdv_job *job, unsigned rank,
		     const struct rdps_rdv_msg *m)
{
	if (m->op != RDPS_RDV_PUT)
		return -EINVAL;
	if (rank >= job->shards)
		return rdps_set_error(-EINVAL,
				      "rank %u is a worker, not a shard: only "
				      "ranks 0..%u register urls",
				      rank, job->shards - 1);
	if (m->index != rank)
		return rdps_set_error(-EINVAL,
				      "rank %u registered shard %u: a shard "
				      "registers its own rank",
				      rank, m->index);
	if (job->urls[rank][0])
		return rdps_set_error(-EEXIST, "shard %u registered twice",
				      rank);
	if (check_url(m->text, strlen(m->text)))
		return rdps_set_error(-EINVAL, "bad url of shard %u", rank);
	strcpy(job->urls[rank], m->text);
	job->puts++;
	return 0;
}

int rdps_rdv_job_done(struct rdps_rdv_job *job, unsigned rank, unsigned status,
		      int lost)
{
	if (rank < job->shards || rank >= job->size)
		return rdps_set_error(-EINVAL,
				      "rank %u is not a worker: workers are "
				      "ranks %u..%u",
				      rank, job->shards, job->size - 1);
	if (job->finished[rank])
		return rdps_set_error(-EEXIST, "rank %u finished twice", rank);
	job->finished[rank] = 1;
	job->dones++;
	if (status || lost)
		job->failed++;
	return 0;
}

/* Sockets ------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	return rdps_now_ns() / 1000000u;
}

static int send_line(int fd, const struct rdps_rdv_msg *m)
{
	char buf[RDPS_RDV_LINE_MAX];
	int n = rdps_rdv_format(m, buf, sizeof(buf));
	size_t off = 0;

	if (n < 0)
		return n;
	while (off < (size_t)n) {
		ssize_t w = send(fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	return 0;
}

static void send_simple(int fd, enum rdps_rdv_op op)
{
	struct rdps_rdv_msg m = {.op = op};

	send_line(fd, &m);
}

static void send_err(int fd, const char *text)
{
	struct rdps_rdv_msg m = {.op = RDPS_RDV_ERR};

	snprintf(m.text, sizeof(m.text), "%s", text && *text ? text : "error");
	send_line(fd, &m);
}

/*
 * Take one complete line out of buf (len bytes held) into line; returns
 * its length (without '\n'), -EAGAIN if none yet, -EMSGSIZE if the buffer
 * is full without one.
 */
static ssize_t take_line(char *buf, size_t *len, char *line)
{
	char *nl = memchr(buf, '\n', *len);
	size_t n;

	if (!nl)
		return *len >= RDPS_RDV_LINE_MAX ? -EMSGSIZE : -EAGAIN;
	n = (size_t)(nl - buf);
	memcpy(line, buf, n);
	line[n] = '\0';
	memmove(buf, nl + 1, *len - n - 1);
	*len -= n + 1;
	return (ssize_t)n;
}

/* The server ---------------------------------------------------------- */

struct conn {
	int fd;
	int rank; /* -1 until HELLO */
	int get_pending, finished;
	size_t inlen;
	char in[RDPS_RDV_LINE_MAX];
};

struct rdps_rdv_server {
	int lfd;
	int hello_timeout_ms;
	struct rdps_rdv_job job;
	struct conn *conns;
	unsigned nconns, maxconns;
	int stop_sent;
	int lost_shard; /* 1 + a shard rank that left unregistered */
};

int rdps_rdv_server_create(const char *addr, unsigned size, unsigned shards,
			   enum rdps_model model, unsigned slack,
			   uint64_t token, int hello_timeout_ms,
			   struct rdps_rdv_server **srv_out)
{
	char host[256], port[16];
	struct rdps_rdv_server *srv;
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	int ret, one = 1, zero = 0;

	ret = rdps_rdv_addr_parse(addr, host, sizeof(host), port, sizeof(port));
	if (ret)
		return ret;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return rdps_set_error(-ENOMEM, "out of memory");
	ret = rdps_rdv_job_init(&srv->job, size, shards, model, slack, token);
	if (ret) {
		free(srv);
		return ret;
	}
	srv->hello_timeout_ms =
		hello_timeout_ms > 0 ? hello_timeout_ms : DEF_HELLO_TIMEOUT_MS;
	srv->maxconns = size + 16;
	srv->conns = calloc(srv->maxconns, sizeof(*srv->conns));
	if (!srv->conns) {
		ret = rdps_set_error(-ENOMEM, "out of memory");
		goto fail;
	}
	/* Every interface (dual stack if possible): the host part of the
	 * address is what the other ranks connect to. */
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	a6.sin6_port = htons((uint16_t)atoi(port));
	a6.sin6_addr = in6addr_any;
	srv->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->lfd >= 0) {
		setsockopt(srv->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
			   sizeof(zero));
		setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
			   sizeof(one));
		if (bind(srv->lfd, (struct sockaddr *)&a6, sizeof(a6))) {
			ret = -errno;
			close(srv->lfd);
			srv->lfd = -1;
			if (ret == -EADDRINUSE)
				goto inuse;
		}
	}
	if (srv->lfd < 0) {
		memset(&a4, 0, sizeof(a4));
		a4.sin_family = AF_INET;
		a4.sin_port = a6.sin6_port;
		a4.sin_addr.s_addr = htonl(INADDR_ANY);
		srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (srv->lfd < 0) {
			ret = rdps_set_error(-errno, "rendezvous socket: %s",
					     strerror(errno));
			goto fail;
		}
		setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
			   sizeof(one));
		if (bind(srv->lfd, (struct sockaddr *)&a4, sizeof(a4))) {
			ret = -errno;
			if (ret == -EADDRINUSE)
				goto inuse;
			ret = rdps_set_error(ret,
					     "cannot listen on rendezvous port "
					     "%s: %s",
					     port, strerror(-ret));
			goto fail;
		}
	}
	if (listen(srv->lfd, 128)) {
		ret = rdps_set_error(-errno, "rendezvous listen: %s",
				     strerror(errno));
		goto fail;
	}
	*srv_out = srv;
	return 0;
inuse:
	ret = rdps_set_error(-EADDRINUSE,
			     "rendezvous port %s is in use on rank 0's host: "
			     "pick another RDPS_ROOT port",
			     port);
fail:
	rdps_rdv_server_destroy(srv);
	return ret;
}

unsigned rdps_rdv_server_failed(const struct rdps_rdv_server *srv)
{
	return srv->job.failed;
}

void rdps_rdv_server_destroy(struct rdps_rdv_server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->nconns; i++)
		close(srv->conns[i].fd);
	if (srv->lfd >= 0)
		close(srv->lfd);
	rdps_rdv_job_fini(&srv->job);
	free(srv->conns);
	free(srv);
}

static void drop(struct rdps_rdv_server *srv, unsigned i, const char *why)
{
	struct conn *c = &srv->conns[i];
	struct rdps_rdv_job *job = &srv->job;

	if (c->rank >= (int)job->shards && !c->finished) {
		rdps_warn("rendezvous: worker rank %d lost (%s)", c->rank, why);
		rdps_rdv_job_done(job, (unsigned)c->rank, 255, 1);
	} else if (c->rank >= 0 && c->rank < (int)job->shards &&
		   !srv->stop_sent) {
		rdps_warn("rendezvous: shard rank %d left before the job "
			  "ended (%s)",
			  c->rank, why);
		/* Before registering: the workers would wait in vain. */
		if (!job->urls[c->rank][0])
			srv->lost_shard = c->rank + 1;
	}
	close(c->fd);
	*c = srv->conns[--srv->nconns];
}

static void send_urls(struct rdps_rdv_server *srv, struct conn *c)
{
	for (unsigned s = 0; s < srv->job.shards; s++) {
		struct rdps_rdv_msg m = {.op = RDPS_RDV_SHARD, .index = s};

		strcpy(m.text, srv->job.urls[s]);
		send_line(c->fd, &m);
	}
	send_simple(c->fd, RDPS_RDV_END);
	c->get_pending = 0;
}

/* Workers get the urls once every rank joined and every shard
 * registered: a job with a missing or mismatched rank never starts. */
static void answer_gets(struct rdps_rdv_server *srv)
{
	if (!rdps_rdv_job_all_put(&srv->job) || srv->job.hellos < srv->job.size)
		return;
	for (unsigned i = 0; i < srv->nconns; i++)
		if (srv->conns[i].get_pending)
			send_urls(srv, &srv->conns[i]);
}

/* Handle one line; returns 0 to keep the connection, else -errno (an ERR
 * has been sent). */
static int handle(struct rdps_rdv_server *srv, struct conn *c, const char *line,
		  size_t len)
{
	struct rdps_rdv_job *job = &srv->job;
	struct rdps_rdv_msg m;
	int ret;

	rdps_clear_error();
	ret = rdps_rdv_parse(line, len, &m);
	if (!ret && c->rank < 0) {
		ret = rdps_rdv_job_hello(job, &m);
		if (!ret) {
			struct rdps_rdv_msg w = {.op = RDPS_RDV_WELCOME,
						 .token = job->token};

			c->rank = (int)m.rank;
			ret = send_line(c->fd, &w);
			answer_gets(srv);
			return ret;
		}
	} else if (!ret) {
		switch (m.op) {
		case RDPS_RDV_PUT:
			ret = rdps_rdv_job_put(job, (unsigned)c->rank, &m);
			if (ret)
				break;
			send_simple(c->fd, RDPS_RDV_OK);
			answer_gets(srv);
			return 0;
		case RDPS_RDV_GET:
			if (c->rank < (int)job->shards) {
				ret = rdps_set_error(-EINVAL,
						     "rank %d is a shard: only "
						     "workers GET",
						     c->rank);
				break;
			}
			c->get_pending = 1;
			answer_gets(srv);
			return 0;
		case RDPS_RDV_DONE:
			ret = rdps_rdv_job_done(job, (unsigned)c->rank,
						m.status, 0);
			if (ret)
				break;
			c->finished = 1;
			if (m.status)
				rdps_warn("rendezvous: worker rank %d failed "
					  "with status %u",
					  c->rank, m.status);
			send_simple(c->fd, RDPS_RDV_OK);
			return 0;
		default:
			ret = rdps_set_error(-EINVAL,
					     "rendezvous request '%.*s' is not "
					     "allowed here",
					     (int)len, line);
		}
	}
	if (!ret)
		return 0;
	rdps_warn("rendezvous: refused a client: %s", rdps_errmsg());
	send_err(c->fd, rdps_errmsg());
	return ret;
}

/* Read what c has; returns 0 to keep it, else the reason to drop it. */
static const char *serve_conn(struct rdps_rdv_server *srv, struct conn *c)
{
	char line[RDPS_RDV_LINE_MAX];
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return NULL;
	if (n < 0)
		return "connection broken";
	if (n == 0)
		return "connection closed";
	c->inlen += (size_t)n;
	for (;;) {
		ssize_t len = take_line(c->in, &c->inlen, line);

		if (len == -EAGAIN)
			return NULL;
		if (len == -EMSGSIZE) {
			send_err(c->fd, "line too long");
			return "line too long";
		}
		if (handle(srv, c, line, (size_t)len))
			return "refused";
	}
}

static void err_all(struct rdps_rdv_server *srv, const char *text)
{
	for (unsigned i = 0; i < srv->nconns; i++)
		send_err(srv->conns[i].fd, text);
}

int rdps_rdv_server_run(struct rdps_rdv_server *srv,
			const volatile sig_atomic_t *stop)
{
	uint64_t deadline = now_ms() + (uint64_t)srv->hello_timeout_ms;
	uint64_t stop_deadline = 0;
	struct pollfd *pfd;
	int ret = 0;

	pfd = calloc(srv->maxconns + 1, sizeof(*pfd));
	if (!pfd)
		return rdps_set_error(-ENOMEM, "out of memory");
	for (;;) {
		unsigned n, shards_open = 0;
		int r;

		if (stop && *stop) {
			err_all(srv, "rank 0 stopped or failed: see its error");
			ret = rdps_set_error(-ECANCELED, "rendezvous stopped");
			break;
		}
		if (!srv->stop_sent && rdps_rdv_job_all_done(&srv->job)) {
			for (unsigned i = 0; i < srv->nconns; i++)
				if (srv->conns[i].rank >= 0 &&
				    srv->conns[i].rank < (int)srv->job.shards)
					send_simple(srv->conns[i].fd,
						    RDPS_RDV_STOP);
			srv->stop_sent = 1;
			stop_deadline = now_ms() + STOP_GRACE_MS;
		}
		for (unsigned i = 0; i < srv->nconns; i++)
			shards_open +=
				srv->conns[i].rank >= 0 &&
				srv->conns[i].rank < (int)srv->job.shards;
		if (srv->stop_sent && !shards_open)
			break;
		if (srv->stop_sent && now_ms() > stop_deadline) {
			rdps_warn("rendezvous: %u shard%s did not leave after "
				  "STOP",
				  shards_open, shards_open == 1 ? "" : "s");
			break;
		}
		if (srv->lost_shard) {
			ret = rdps_set_error(-ECONNABORTED,
					     "shard rank %d failed before it "
					     "registered: see its error",
					     srv->lost_shard - 1);
			err_all(srv, rdps_errmsg());
			break;
		}
		if (srv->job.hellos < srv->job.size && now_ms() > deadline) {
			ret = rdps_set_error(-ETIMEDOUT,
					     "only %u of %u ranks reached the "
					     "rendezvous within %d ms: check "
					     "RDPS_ROOT and the job size",
					     srv->job.hellos, srv->job.size,
					     srv->hello_timeout_ms);
			err_all(srv, rdps_errmsg());
			break;
		}
		pfd[0].fd = srv->lfd;
		pfd[0].events = POLLIN;
		for (n = 0; n < srv->nconns; n++) {
			pfd[n + 1].fd = srv->conns[n].fd;
			pfd[n + 1].events = POLLIN;
			pfd[n + 1].revents = 0;
		}
		r = poll(pfd, n + 1, 100);
		if (r < 0 && errno != EINTR) {
			ret = rdps_set_error(-errno, "rendezvous poll: %s",
					     strerror(errno));
			break;
		}
		if (r <= 0)
			continue;
		/* Connections first, from the end: drop() moves the last. */
		for (unsigned i = n; i-- > 0;) {
			const char *why;

			if (!pfd[i + 1].revents)
				continue;
			why = serve_conn(srv, &srv->conns[i]);
			if (why)
				drop(srv, i, why);
		}
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
			int one = 1;

			if (fd < 0)
				continue;
			if (srv->nconns == srv->maxconns) {
				send_err(fd, "too many connections");
				close(fd);
				continue;
			}
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			srv->conns[srv->nconns] =
				(struct conn){.fd = fd, .rank = -1};
			srv->nconns++;
		}
	}
	free(pfd);
	return ret;
}

/* The client ---------------------------------------------------------- */

struct rdps_rdv_client {
	int fd;
	size_t inlen;
	char in[RDPS_RDV_LINE_MAX];
	char addr[300];
};

int rdps_rdv_connect(const char *addr, int timeout_ms,
		     struct rdps_rdv_client **c_out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char host[256], port[16];
	uint64_t deadline =
		now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 60000);
	unsigned backoff = 10;
	int ret, last = 0;

	ret = rdps_rdv_addr_parse(addr, host, sizeof(host), port, sizeof(port));
	if (ret)
		return ret;
	for (;;) {
		ret = getaddrinfo(host, port, &hints, &res);
		if (ret && ret != EAI_AGAIN)
			return rdps_set_error(-EHOSTUNREACH,
					      "rendezvous host '%s': %s", host,
					      gai_strerror(ret));
		for (ai = ret ? NULL : res; ai; ai = ai->ai_next) {
			struct timeval tv = {.tv_sec = 5};
			int fd = socket(ai->ai_family,
					ai->ai_socktype | SOCK_CLOEXEC,
					ai->ai_protocol);
			int one = 1;

			if (fd < 0)
				continue;
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				   sizeof(tv));
			if (connect(fd, ai->ai_addr, ai->ai_addrlen)) {
				last = errno;
				close(fd);
				continue;
			}
			tv.tv_sec = 0;
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				   sizeof(tv));
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			freeaddrinfo(res);
			*c_out = calloc(1, sizeof(**c_out));
			if (!*c_out) {
				close(fd);
				return rdps_set_error(-ENOMEM, "out of memory");
			}
			(*c_out)->fd = fd;
			snprintf((*c_out)->addr, sizeof((*c_out)->addr), "%s",
				 addr);
			return 0;
		}
		if (!ret)
			freeaddrinfo(res);
		if (now_ms() + backoff > deadline)
			break;
		/* Retry: rank 0 may simply not be listening yet. */
		usleep(backoff * 1000u);
		if (backoff < 500)
			backoff *= 2;
	}
	return rdps_set_error(-ETIMEDOUT,
			      "cannot reach the rendezvous at %s within %d "
			      "ms (%s): is rank 0 running and RDPS_ROOT "
			      "right?",
			      addr, timeout_ms,
			      last ? strerror(last) : "name lookup failed");
}

int rdps_rdv_local_addr(const struct rdps_rdv_client *c, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl))
		return rdps_set_error(-errno, "getsockname: %s",
				      strerror(errno));
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip,
			  sizeof(ip));
		snprintf(buf, len, "%s", ip);
		return 0;
	}
	if (IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
		inet_ntop(AF_INET,
			  &((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[12],
			  ip, sizeof(ip));
		snprintf(buf, len, "%s", ip);
		return 0;
	}
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
		  sizeof(ip));
	snprintf(buf, len, "[%s]", ip);
	return 0;
}

/* Read one message; timeout_ms < 0 waits for ever. -ETIMEDOUT,
 * -ECONNRESET, -EMSGSIZE, -EINVAL (garbage). */
static int read_msg(struct rdps_rdv_client *c, struct rdps_rdv_msg *m,
		    int timeout_ms)
{
	uint64_t deadline =
		now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	char line[RDPS_RDV_LINE_MAX];

	for (;;) {
		ssize_t len = take_line(c->in, &c->inlen, line);
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int wait = -1, r;

		if (len >= 0)
			return rdps_rdv_parse(line, (size_t)len, m);
		if (len == -EMSGSIZE)
			return rdps_set_error(
				-EMSGSIZE,
				"the rendezvous at %s sent a line "
				"that is too long",
				c->addr);
		if (timeout_ms >= 0) {
			uint64_t now = now_ms();

			if (now >= deadline)
				return rdps_set_error(-ETIMEDOUT,
						      "no answer from the "
						      "rendezvous at %s within "
						      "%d ms",
						      c->addr, timeout_ms);
			wait = (int)(deadline - now);
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			continue;
		len = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen,
			   0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			return rdps_set_error(-ECONNRESET,
					      "the rendezvous at %s closed the "
					      "connection (rank 0 is gone)",
					      c->addr);
		c->inlen += (size_t)len;
	}
}

/* Wait for a reply of op; ERR from the root becomes -ECANCELED. */
static int expect(struct rdps_rdv_client *c, enum rdps_rdv_op op,
		  struct rdps_rdv_msg *m, int timeout_ms)
{
	int ret = read_msg(c, m, timeout_ms);

	if (ret)
		return ret;
	if (m->op == RDPS_RDV_ERR)
		return rdps_set_error(-ECANCELED, "rank 0 refused: %s",
				      m->text);
	if (m->op != op)
		return rdps_set_error(-EPROTO,
				      "unexpected reply from the rendezvous "
				      "at %s (op %d, want %d)",
				      c->addr, (int)m->op, (int)op);
	return 0;
}

static int request(struct rdps_rdv_client *c, const struct rdps_rdv_msg *m)
{
	int ret = send_line(c->fd, m);

	if (ret)
		return rdps_set_error(ret,
				      "cannot talk to the rendezvous at %s: "
				      "%s",
				      c->addr, strerror(-ret));
	return 0;
}

int rdps_rdv_hello(struct rdps_rdv_client *c, unsigned rank, unsigned size,
		   unsigned shards, enum rdps_model model, unsigned slack,
		   uint64_t *token_out)
{
	struct rdps_rdv_msg m = {.op = RDPS_RDV_HELLO,
				 .rank = rank,
				 .size = size,
				 .shards = shards,
				 .model = model,
				 .slack = slack};
	int ret = request(c, &m);

	if (!ret)
		ret = expect(c, RDPS_RDV_WELCOME, &m, 60000);
	if (!ret)
		*token_out = m.token;
	return ret;
}

int rdps_rdv_put(struct rdps_rdv_client *c, unsigned index, const char *url)
{
	struct rdps_rdv_msg m = {.op = RDPS_RDV_PUT, .index = index};
	int ret;

	if (strlen(url) >= sizeof(m.text))
		return rdps_set_error(-EMSGSIZE, "url too long: %s", url);
	strcpy(m.text, url);
	ret = request(c, &m);
	if (!ret)
		ret = expect(c, RDPS_RDV_OK, &m, 60000);
	return ret;
}

int rdps_rdv_get(struct rdps_rdv_client *c, unsigned shards, char *buf,
		 size_t len, int timeout_ms)
{
	struct rdps_rdv_msg m = {.op = RDPS_RDV_GET};
	size_t used = 0;
	int ret = request(c, &m);

	for (unsigned s = 0; !ret && s < shards; s++) {
		size_t ul;

		ret = expect(c, RDPS_RDV_SHARD, &m, timeout_ms);
		if (ret)
			return ret;
		if (m.index != s)
			return rdps_set_error(-EPROTO,
					      "the rendezvous sent shard %u "
					      "where %u was due",
					      m.index, s);
		ul = strlen(m.text);
		if (used + ul + 2 > len)
			return rdps_set_error(-EMSGSIZE,
					      "shard urls do not fit");
		if (s)
			buf[used++] = ',';
		memcpy(buf + used, m.text, ul + 1);
		used += ul;
	}
	if (!ret)
		ret = expect(c, RDPS_RDV_END, &m, timeout_ms);
	return ret;
}

int rdps_rdv_done(struct rdps_rdv_client *c, unsigned status)
{
	struct rdps_rdv_msg m = {.op = RDPS_RDV_DONE,
				 .status = status > 255 ? 255 : status};
	int ret = request(c, &m);

	if (!ret)
		ret = expect(c, RDPS_RDV_OK, &m, 60000);
	return ret;
}

int rdps_rdv_wait_stop(struct rdps_rdv_client *c)
{
	struct rdps_rdv_msg m;

	return expect(c, RDPS_RDV_STOP, &m, -1);
}

void rdps_rdv_shutdown(struct rdps_rdv_client *c)
{
	shutdown(c->fd, SHUT_RDWR);
}

void rdps_rdv_close(struct rdps_rdv_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}
