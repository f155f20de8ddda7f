/* SPDX-License-Identifier: MIT */
/*
 * tp_harness.c - the process and channel helpers of tp_harness.h: children
 * forked or exec'd from this binary, their channels, reaping, the remote
 * target server, data patterns.
 */
#include "tp_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A child that outlives this has lost its parent's attention: SIGALRM. */
#define TH_CHILD_ALARM_S 60

/* A copy of every live child, so a failed test (cmocka longjmps out of it,
 * leaving its own struct th_child on a dead stack frame) can still have its
 * children killed and reaped by the next setup or teardown. */
static struct th_child th_live[TH_MAX_CHILDREN];

uint64_t th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void th_child_fail(const char *role, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[child %s pid %d, line %d] ", role, (int)getpid(),
		line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(2);
}

int th_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int th_recv(int fd, void *buf, size_t len, int timeout_ms)
{
	uint64_t deadline = th_now_ms() + (uint64_t)timeout_ms;
	char *p = buf;

	while (len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = -1;
		ssize_t n;

		if (timeout_ms >= 0) {
			uint64_t now = th_now_ms();

			left = now >= deadline ? 0 : (int)(deadline - now);
		}
		n = poll(&pfd, 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		n = recv(fd, p, len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Children are told apart by their channel: a remote pid may equal a local
 * one. */
static void th_forget(const struct th_child *c)
{
	for (int i = 0; i < TH_MAX_CHILDREN; i++)
		if (th_live[i].pid == c->pid && th_live[i].fd == c->fd &&
		    th_live[i].remote == c->remote)
			th_live[i].pid = 0;
}

static int th_free_slot(void)
{
	for (int i = 0; i < TH_MAX_CHILDREN; i++)
		if (!th_live[i].pid)
			return i;
	return -1;
}

/* In a freshly forked child: nothing of the test runner's may leak in. */
static void th_child_prep(pid_t parent, int keep_fd)
{
	static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL,
					 SIGFPE,  SIGSYS, SIGABRT};

	/* The other children's channels must not stay open here, or their
	 * end of file would depend on this child too. */
	for (int i = 0; i < TH_MAX_CHILDREN; i++)
		if (th_live[i].pid && th_live[i].fd != keep_fd)
			close(th_live[i].fd);
	/* cmocka's crash handlers would resume the test runner. */
	for (size_t i = 0; i < sizeof(crash_sigs) / sizeof(*crash_sigs); i++)
		signal(crash_sigs[i], SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(9);
	alarm(TH_CHILD_ALARM_S);
}

int th_spawn(struct th_child *c, const char *role, int (*fn)(int fd, void *arg),
	     void *arg)
{
	pid_t parent = getpid();
	int sv[2], slot = th_free_slot();
	pid_t pid;

	if (slot < 0)
		return -EMFILE;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0) {
		close(sv[0]);
		th_child_prep(parent, -1);
		_exit(fn(sv[1], arg));
	}
	close(sv[1]);
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->fd = sv[0];
	c->role = role;
	th_live[slot] = *c;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Exec'd children and the remote target server.                       */
/* ------------------------------------------------------------------ */

#define TH_ARG_MAX 4096
#define TH_MAGIC 0x74683031u	   /* "th01" */
#define TH_REMOTE_CONNECT_MS 60000 /* the server may still be booting */
#define TH_REMOTE_REPLY_MS 30000
#define TH_SERVE_IDLE_MS 300000 /* no request for this long: give up */
#define TH_SERVE_MAX_KIDS 256

static const struct th_role *th_roles;
static size_t th_n_roles;
static char th_remote_host[256]; /* "" unless RDPS_TEST_REMOTE is set */
static char th_remote_port[16];

enum th_op { TH_OP_SPAWN = 1, TH_OP_KILL, TH_OP_WAIT, TH_OP_BYE };

/* Control messages to and from the server; both ends run the same binary,
 * so host byte order. */
struct th_req {
	uint32_t magic;
	uint32_t op;
	int32_t pid;
	int32_t timeout_ms;
	uint32_t arg_len;
	uint32_t pad;
	char role[32];
};

struct th_rep {
	uint32_t magic;
	int32_t ret; /* 0 or -errno; WAIT: -ETIMEDOUT if it had to be killed */
	int32_t status; /* WAIT: the waitpid status */
	int32_t pid;	/* SPAWN: the child's pid (sent by the child) */
};

static const struct th_role *th_role_find(const char *name)
{
	for (size_t i = 0; i < th_n_roles; i++)
		if (!strcmp(th_roles[i].name, name))
			return &th_roles[i];
	return NULL;
}

const char *th_remote(void)
{
	return th_remote_host[0] ? th_remote_host : NULL;
}

static void th_hex_encode(char *out, const void *buf, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

static int th_hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Decode hex into buf (at most max bytes); the byte count or -1. */
static long th_hex_decode(const char *hex, void *buf, size_t max)
{
	size_t n = strlen(hex);
	uint8_t *p = buf;

	if (n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = th_hex_val(hex[2 * i]),
		    lo = th_hex_val(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

/* The argv of an exec'd child, built before fork (no malloc after it). */
struct th_exec_argv {
	char fd[16];
	char *hex;
	char *argv[6];
};

static int th_exec_argv_make(struct th_exec_argv *e, const char *role, int fd,
			     const void *arg, size_t len)
{
	e->hex = malloc(2 * len + 1);
	if (!e->hex)
		return -ENOMEM;
	th_hex_encode(e->hex, arg, len);
	snprintf(e->fd, sizeof(e->fd), "%d", fd);
	e->argv[0] = (char *)"rdps-test-child";
	e->argv[1] = (char *)"--th-child";
	e->argv[2] = (char *)role;
	e->argv[3] = e->fd;
	e->argv[4] = e->hex;
	e->argv[5] = NULL;
	return 0;
}

/* In a forked child: keep fd across exec and become a fresh process. */
static void th_exec_self(struct th_exec_argv *e, int fd)
	__attribute__((noreturn));
static void th_exec_self(struct th_exec_argv *e, int fd)
{
	static const char msg[] = "th: exec of /proc/self/exe failed\n";
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	execv("/proc/self/exe", e->argv);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

/* Connect to the remote server, retrying while it is not up yet. */
static int th_remote_connect(int timeout_ms)
{
	struct addrinfo hints = {.ai_family = AF_INET,
				 .ai_socktype = SOCK_STREAM};
	uint64_t deadline = th_now_ms() + (uint64_t)timeout_ms;
	struct addrinfo *ai;
	int fd, one = 1, ret;

	ret = getaddrinfo(th_remote_host, th_remote_port, &hints, &ai);
	if (ret)
		return -EINVAL;
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			break;
		}
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			ret = fd;
			break;
		}
		ret = -errno;
		close(fd);
		if ((ret != -ECONNREFUSED && ret != -EHOSTUNREACH &&
		     ret != -ENETUNREACH && ret != -ETIMEDOUT) ||
		    th_now_ms() >= deadline)
			break;
		/* Bounded retry while the server boots, not a handshake. */
		poll(NULL, 0, 100);
	}
	freeaddrinfo(ai);
	return ret;
}

/* One request, one reply, on a fresh connection. */
static int th_remote_call(struct th_req *q, struct th_rep *r, int reply_ms)
{
	int fd = th_remote_connect(TH_REMOTE_CONNECT_MS), ret;

	if (fd < 0)
		return fd;
	q->magic = TH_MAGIC;
	ret = th_send(fd, q, sizeof(*q));
	if (!ret)
		ret = th_recv(fd, r, sizeof(*r), reply_ms);
	if (!ret && r->magic != TH_MAGIC)
		ret = -EPROTO;
	close(fd);
	return ret;
}

static int th_remote_spawn(struct th_child *c, int slot,
			   const struct th_role *r, const void *arg, size_t len)
{
	struct th_req q = {
		.magic = TH_MAGIC, .op = TH_OP_SPAWN, .arg_len = (uint32_t)len};
	struct th_rep rep;
	int fd = th_remote_connect(TH_REMOTE_CONNECT_MS), ret;

	if (fd < 0)
		return fd;
	snprintf(q.role, sizeof(q.role), "%s", r->name);
	ret = th_send(fd, &q, sizeof(q));
	if (!ret && len)
		ret = th_send(fd, arg, len);
	/* The first record on the channel comes from the child itself. */
	if (!ret)
		ret = th_recv(fd, &rep, sizeof(rep), TH_REMOTE_REPLY_MS);
	if (!ret && (rep.magic != TH_MAGIC || rep.ret || rep.pid <= 0))
		ret = rep.ret ? rep.ret : -EPROTO;
	if (ret) {
		close(fd);
		return ret;
	}
	memset(c, 0, sizeof(*c));
	c->pid = rep.pid;
	c->fd = fd;
	c->role = r->name;
	c->remote = 1;
	th_live[slot] = *c;
	return 0;
}

int th_spawn_role(struct th_child *c, const char *role, const void *arg,
		  size_t len)
{
	const struct th_role *r = th_role_find(role);
	struct th_exec_argv e;
	pid_t parent = getpid();
	int sv[2], slot = th_free_slot(), ret;
	pid_t pid;

	if (!r)
		return -ENOENT;
	if (len > TH_ARG_MAX)
		return -E2BIG;
	if (slot < 0)
		return -EMFILE;
	if (r->remote_ok && th_remote())
		return th_remote_spawn(c, slot, r, arg, len);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	ret = th_exec_argv_make(&e, r->name, sv[1], arg, len);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		free(e.hex);
		return ret;
	}
	if (pid == 0) {
		close(sv[0]);
		th_child_prep(parent, -1);
		th_exec_self(&e, sv[1]);
	}
	free(e.hex);
	close(sv[1]);
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->fd = sv[0];
	c->role = r->name;
	th_live[slot] = *c;
	return 0;
}

/* Ask the server to reap a remote child: the waitpid status, or
 * -ETIMEDOUT (it was killed after timeout_ms) / -errno. */
static int th_remote_wait(pid_t pid, int timeout_ms)
{
	struct th_req q = {
		.op = TH_OP_WAIT, .pid = pid, .timeout_ms = timeout_ms};
	struct th_rep r;
	int ret = th_remote_call(&q, &r, timeout_ms + TH_REMOTE_REPLY_MS);

	if (ret)
		return ret;
	return r.ret ? r.ret : r.status;
}

static int th_remote_kill(pid_t pid)
{
	struct th_req q = {.op = TH_OP_KILL, .pid = pid};
	struct th_rep r;
	int ret = th_remote_call(&q, &r, TH_REMOTE_REPLY_MS);

	return ret ? ret : r.ret;
}

int th_remote_bye(void)
{
	struct th_req q = {.op = TH_OP_BYE};
	struct th_rep r;
	int ret = th_remote_call(&q, &r, TH_REMOTE_REPLY_MS);

	return ret ? ret : r.ret;
}

int th_reap(struct th_child *c, int timeout_ms)
{
	uint64_t deadline = th_now_ms() + (uint64_t)timeout_ms;
	int status = 0, ret;
	pid_t r;

	if (c->pid <= 0)
		return -ECHILD;
	if (c->remote) {
		/* Closing first: a child blocked on the channel sees EOF. */
		close(c->fd);
		ret = th_remote_wait(c->pid, timeout_ms);
		goto out;
	}
	for (;;) {
		r = waitpid(c->pid, &status, WNOHANG);
		if (r == c->pid) {
			ret = status;
			break;
		}
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (th_now_ms() >= deadline) {
			kill(c->pid, SIGKILL);
			while (waitpid(c->pid, &status, 0) < 0 &&
			       errno == EINTR)
				;
			ret = -ETIMEDOUT;
			break;
		}
		/* Bounded polling for the exit, not synchronisation. */
		poll(NULL, 0, 1);
	}
	if (c->fd >= 0)
		close(c->fd);
out:
	th_forget(c);
	c->fd = -1;
	c->pid = 0;
	return ret;
}

int th_kill(struct th_child *c)
{
	if (c->pid > 0 && c->remote)
		th_remote_kill(c->pid);
	else if (c->pid > 0)
		kill(c->pid, SIGKILL);
	return th_reap(c, 5000);
}

const char *th_status_str(int status, char *buf, size_t len)
{
	if (status < 0)
		snprintf(buf, len, "not reaped: %s", strerror(-status));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exit code %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "status 0x%x", status);
	return buf;
}

void th_kill_all(void)
{
	for (int i = 0; i < TH_MAX_CHILDREN; i++) {
		if (th_live[i].pid) {
			struct th_child c = th_live[i];

			th_kill(&c);
		}
	}
}

/* ------------------------------------------------------------------ */
/* The child side of exec, the remote server, th_main().               */
/* ------------------------------------------------------------------ */

/* --th-child ROLE FD HEXARG: play the role and exit with its result. */
static void th_child_run(char **argv) __attribute__((noreturn));
static void th_child_run(char **argv)
{
	static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL,
					 SIGFPE,  SIGSYS, SIGABRT};
	static _Alignas(16) uint8_t arg[TH_ARG_MAX];
	const struct th_role *r = th_role_find(argv[2]);
	char *end;
	long fd = strtol(argv[3], &end, 10);

	if (!r || *end || fd < 0 ||
	    th_hex_decode(argv[4], arg, sizeof(arg)) < 0) {
		fprintf(stderr, "th: bad child invocation (role '%s')\n",
			argv[2]);
		_exit(127);
	}
	for (size_t i = 0; i < sizeof(crash_sigs) / sizeof(*crash_sigs); i++)
		signal(crash_sigs[i], SIG_DFL);
	alarm(TH_CHILD_ALARM_S);
	/* _exit: no atexit handlers, no LeakSanitizer pass, as with fork. */
	_exit(r->fn((int)fd, arg));
}

struct th_srv_kid {
	pid_t pid;
	int exited;
	int status;
};

struct th_srv_wait {
	int fd; /* -1: free */
	pid_t pid;
	uint64_t deadline;
	int killed;
};

struct th_srv {
	int lfd, sfd;
	struct th_srv_kid kid[TH_SERVE_MAX_KIDS];
	struct th_srv_wait wait[TH_SERVE_MAX_KIDS];
};

static struct th_srv_kid *th_srv_kid(struct th_srv *s, pid_t pid)
{
	for (int i = 0; i < TH_SERVE_MAX_KIDS; i++)
		if (s->kid[i].pid == pid)
			return &s->kid[i];
	return NULL;
}

static void th_srv_reply(int fd, int ret, int status, pid_t pid)
{
	struct th_rep r = {
		.magic = TH_MAGIC, .ret = ret, .status = status, .pid = pid};

	th_send(fd, &r, sizeof(r));
	close(fd);
}

static void th_srv_spawn(struct th_srv *s, int fd, const struct th_req *q)
{
	static _Alignas(16) uint8_t arg[TH_ARG_MAX];
	struct th_srv_kid *k = th_srv_kid(s, 0);
	const struct th_role *r;
	struct th_exec_argv e;
	sigset_t none;
	pid_t pid;

	r = th_role_find(q->role);
	if (!r || !r->remote_ok || q->arg_len > sizeof(arg) || !k ||
	    th_recv(fd, arg, q->arg_len, TH_REMOTE_REPLY_MS) ||
	    th_exec_argv_make(&e, r->name, fd, arg, q->arg_len)) {
		fprintf(stderr, "th: refusing to spawn '%.32s'\n", q->role);
		th_srv_reply(fd, -EINVAL, 0, 0);
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct th_rep me = {.magic = TH_MAGIC,
				    .pid = (int32_t)getpid()};

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (th_send(fd, &me, sizeof(me)))
			_exit(9);
		th_exec_self(&e, fd);
	}
	if (pid < 0) {
		th_srv_reply(fd, -errno, 0, 0);
		free(e.hex);
		return;
	}
	free(e.hex);
	close(fd);
	k->pid = pid;
	k->exited = 0;
}

/* Answer the waits whose child has exited; kill the overdue ones. */
static void th_srv_waits(struct th_srv *s)
{
	uint64_t now = th_now_ms();

	for (int i = 0; i < TH_SERVE_MAX_KIDS; i++) {
		struct th_srv_wait *w = &s->wait[i];
		struct th_srv_kid *k;

		if (w->fd < 0)
			continue;
		k = th_srv_kid(s, w->pid);
		if (!k) {
			th_srv_reply(w->fd, -ECHILD, 0, 0);
			w->fd = -1;
		} else if (k->exited) {
			th_srv_reply(w->fd, w->killed ? -ETIMEDOUT : 0,
				     k->status, 0);
			w->fd = -1;
			k->pid = 0; /* reported: forget it */
		} else if (!w->killed && now >= w->deadline) {
			kill(w->pid, SIGKILL);
			w->killed = 1;
		}
	}
}

static void th_srv_reap(struct th_srv *s)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct th_srv_kid *k = th_srv_kid(s, pid);

		if (k) {
			k->exited = 1;
			k->status = status;
		}
	}
}

/* BYE or giving up: kill and reap every child; how many were alive. */
static int th_srv_kill_all(struct th_srv *s)
{
	int n = 0, status;

	for (int i = 0; i < TH_SERVE_MAX_KIDS; i++) {
		if (s->kid[i].pid > 0 && !s->kid[i].exited) {
			kill(s->kid[i].pid, SIGKILL);
			while (waitpid(s->kid[i].pid, &status, 0) < 0 &&
			       errno == EINTR)
				;
			n++;
		}
		s->kid[i].pid = 0;
	}
	return n;
}

/*
 * --serve-targets PORT: accept control connections until a BYE; fork+exec
 * a child per SPAWN with that connection as its channel. Exit status 0
 * after a BYE, 1 if no request came for TH_SERVE_IDLE_MS or on errors.
 */
static int th_serve(const char *port)
{
	static struct th_srv s;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_ANY)};
	uint64_t idle_until = th_now_ms() + TH_SERVE_IDLE_MS;
	int one = 1, ret = 1;
	sigset_t chld;

	a.sin_port = htons((uint16_t)atoi(port));
	for (int i = 0; i < TH_SERVE_MAX_KIDS; i++)
		s.wait[i].fd = -1;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	s.sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s.sfd < 0 || s.lfd < 0 ||
	    setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s.lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(s.lfd, 64)) {
		fprintf(stderr, "th: cannot serve on port %s: %s\n", port,
			strerror(errno));
		return 1;
	}
	fprintf(stderr, "th: serving targets on port %s\n", port);
	for (;;) {
		struct pollfd pfd[2] = {{.fd = s.lfd, .events = POLLIN},
					{.fd = s.sfd, .events = POLLIN}};
		uint64_t next = idle_until, now;
		struct th_req q;
		int fd;

		for (int i = 0; i < TH_SERVE_MAX_KIDS; i++)
			if (s.wait[i].fd >= 0 && !s.wait[i].killed &&
			    s.wait[i].deadline < next)
				next = s.wait[i].deadline;
		now = th_now_ms();
		if (poll(pfd, 2, next > now ? (int)(next - now) : 0) < 0 &&
		    errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN)
			th_srv_reap(&s);
		th_srv_waits(&s);
		if (th_now_ms() >= idle_until) {
			fprintf(stderr,
				"th: no request for %d s: the test side is "
				"gone; giving up\n",
				TH_SERVE_IDLE_MS / 1000);
			break;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(s.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		idle_until = th_now_ms() + TH_SERVE_IDLE_MS;
		if (th_recv(fd, &q, sizeof(q), TH_REMOTE_REPLY_MS) ||
		    q.magic != TH_MAGIC) {
			close(fd);
			continue;
		}
		q.role[sizeof(q.role) - 1] = '\0';
		if (q.op == TH_OP_SPAWN) {
			th_srv_spawn(&s, fd, &q);
		} else if (q.op == TH_OP_KILL) {
			struct th_srv_kid *k = th_srv_kid(&s, q.pid);

			if (k && q.pid > 0 && !k->exited)
				kill(q.pid, SIGKILL);
			th_srv_reply(fd, k && q.pid > 0 ? 0 : -ESRCH, 0, 0);
		} else if (q.op == TH_OP_WAIT) {
			int i = 0;

			while (i < TH_SERVE_MAX_KIDS && s.wait[i].fd >= 0)
				i++;
			if (i == TH_SERVE_MAX_KIDS || q.pid <= 0) {
				th_srv_reply(fd, -ENOSPC, 0, 0);
				continue;
			}
			s.wait[i].fd = fd;
			s.wait[i].pid = q.pid;
			s.wait[i].killed = 0;
			s.wait[i].deadline =
				th_now_ms() +
				(uint64_t)(q.timeout_ms > 0 ? q.timeout_ms : 0);
			th_srv_waits(&s);
		} else if (q.op == TH_OP_BYE) {
			int n = th_srv_kill_all(&s);

			if (n)
				fprintf(stderr,
					"th: bye: killed %d child(ren) left "
					"running\n",
					n);
			th_srv_reply(fd, 0, n, 0);
			ret = 0;
			break;
		} else {
			close(fd);
		}
	}
	th_srv_kill_all(&s);
	for (int i = 0; i < TH_SERVE_MAX_KIDS; i++)
		if (s.wait[i].fd >= 0)
			close(s.wait[i].fd);
	close(s.lfd);
	close(s.sfd);
	return ret;
}

void th_main(int argc, char **argv, const struct th_role *roles, size_t n_roles)
{
	const char *rem = getenv("RDPS_TEST_REMOTE");

	th_roles = roles;
	th_n_roles = n_roles;
	if (argc == 5 && !strcmp(argv[1], "--th-child"))
		th_child_run(argv);
	if (argc == 3 && !strcmp(argv[1], "--serve-targets")) {
		fflush(NULL);
		exit(th_serve(argv[2]));
	}
	if (rem && *rem) {
		const char *colon = strrchr(rem, ':');

		if (!colon || colon == rem || !colon[1] ||
		    (size_t)(colon - rem) >= sizeof(th_remote_host) ||
		    strlen(colon + 1) >= sizeof(th_remote_port)) {
			fprintf(stderr,
				"RDPS_TEST_REMOTE='%s' is not HOST:PORT\n",
				rem);
			exit(2);
		}
		memcpy(th_remote_host, rem, (size_t)(colon - rem));
		th_remote_host[colon - rem] = '\0';
		snprintf(th_remote_port, sizeof(th_remote_port), "%s",
			 colon + 1);
	}
}

uint64_t th_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void th_fill(void *buf, size_t len, uint64_t seed, uint64_t pos)
{
	uint8_t *p = buf;
	uint64_t w = 0, wi = UINT64_MAX;

	if (!seed) {
		memset(buf, 0, len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		uint64_t at = pos + i;

		if (at >> 3 != wi) {
			wi = at >> 3;
			w = th_mix(seed * 0x100000001b3ull ^ wi);
		}
		p[i] = (uint8_t)(w >> ((at & 7) * 8));
	}
}

uint64_t th_hash(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

size_t th_first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < len; i++)
		if (x[i] != y[i])
			return i;
	return len;
}
