/* SPDX-License-Identifier: MIT */
/*
 * tp_harness.h - process and channel helpers for the multi-process
 * transport tests: forked children, socketpair channels with deadlines,
 * reaping with deadlines, data patterns and a hash to compare memory that
 * lives in another process.
 *
 * Children never call cmocka: an assertion there would longjmp into the
 * child's copy of the test runner and go on running the rest of the suite.
 * They report with TH_CHILD_CHECK, which prints one line to stderr and
 * _exit()s with a non-zero code the parent turns into a test failure.
 *
 * Channels are AF_UNIX socketpairs written with MSG_NOSIGNAL, so a dead
 * child shows up as -EPIPE rather than as a SIGPIPE in the test runner.
 */
#ifndef RDPS_TP_HARNESS_H
#define RDPS_TP_HARNESS_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_MAX_CHILDREN 16
/* A child that outlives this has lost its parent's attention: SIGALRM. */
#define TH_CHILD_ALARM_S 60

struct th_child {
	pid_t pid;
	int fd; /* the parent's end of the channel */
	const char *role;
};

/* A copy of every live child, so a failed test (cmocka longjmps out of it,
 * leaving its own struct th_child on a dead stack frame) can still have its
 * children killed and reaped by the next setup or teardown. */
static struct th_child th_live[TH_MAX_CHILDREN];

static inline uint64_t th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* In a child: report what went wrong and leave without running atexit
 * handlers (no LeakSanitizer pass, no flush of the runner's stdout). */
static inline void th_child_fail(const char *role, int line, const char *fmt,
				 ...)
	__attribute__((format(printf, 3, 4), noreturn));
static inline void th_child_fail(const char *role, int line, const char *fmt,
				 ...)
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

#define TH_CHILD_CHECK(role, cond, ...)                               \
	do {                                                          \
		if (!(cond))                                          \
			th_child_fail((role), __LINE__, __VA_ARGS__); \
	} while (0)

/* Send all of buf; 0 or -errno (-EPIPE when the other side is gone). */
static inline int th_send(int fd, const void *buf, size_t len)
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

/* Receive exactly len bytes within timeout_ms (-1: no limit); 0, -ETIMEDOUT,
 * -EPIPE on end of file, or -errno. */
static inline int th_recv(int fd, void *buf, size_t len, int timeout_ms)
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

static inline void th_forget(pid_t pid)
{
	for (int i = 0; i < TH_MAX_CHILDREN; i++)
		if (th_live[i].pid == pid)
			th_live[i].pid = 0;
}

/*
 * Fork a child running fn(fd, arg) with its end of a fresh channel; the
 * child _exit()s with fn's return value. Returns 0 or -errno.
 */
static inline int th_spawn(struct th_child *c, const char *role,
			   int (*fn)(int fd, void *arg), void *arg)
{
	static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL,
					 SIGFPE,  SIGSYS, SIGABRT};
	pid_t parent = getpid();
	int sv[2], slot = -1;
	pid_t pid;

	for (int i = 0; i < TH_MAX_CHILDREN && slot < 0; i++)
		if (!th_live[i].pid)
			slot = i;
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
		/* The other children's channels must not stay open here, or
		 * their end of file would depend on this child too. */
		for (int i = 0; i < TH_MAX_CHILDREN; i++)
			if (th_live[i].pid)
				close(th_live[i].fd);
		close(sv[0]);
		/* cmocka's crash handlers would resume the test runner. */
		for (size_t i = 0; i < sizeof(crash_sigs) / sizeof(*crash_sigs);
		     i++)
			signal(crash_sigs[i], SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(9);
		alarm(TH_CHILD_ALARM_S);
		_exit(fn(sv[1], arg));
	}
	close(sv[1]);
	c->pid = pid;
	c->fd = sv[0];
	c->role = role;
	th_live[slot] = *c;
	return 0;
}

/*
 * Wait up to timeout_ms for the child to exit and reap it; on timeout kill
 * it with SIGKILL first. Returns the waitpid status, or -ETIMEDOUT (child
 * killed) / -errno. Closes the channel.
 */
static inline int th_reap(struct th_child *c, int timeout_ms)
{
	uint64_t deadline = th_now_ms() + (uint64_t)timeout_ms;
	int status = 0, ret;
	pid_t r;

	if (c->pid <= 0)
		return -ECHILD;
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
	th_forget(c->pid);
	c->fd = -1;
	c->pid = 0;
	return ret;
}

/* Kill with SIGKILL and reap (used to kill a peer on purpose). */
static inline int th_kill(struct th_child *c)
{
	if (c->pid > 0)
		kill(c->pid, SIGKILL);
	return th_reap(c, 5000);
}

/* Describe a waitpid status (or th_reap error) in buf. */
static inline const char *th_status_str(int status, char *buf, size_t len)
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

/* Kill and reap every child still alive (after a failed test). */
static inline void th_kill_all(void)
{
	for (int i = 0; i < TH_MAX_CHILDREN; i++) {
		if (th_live[i].pid) {
			struct th_child c = th_live[i];

			th_kill(&c);
		}
	}
}

/* Data patterns: the byte at position pos of a pattern depends only on the
 * seed and pos, so any sub-range can be rebuilt by either process. */
static inline uint64_t th_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Fill buf with bytes [pos, pos+len) of pattern seed; seed 0 is all zero. */
static inline void th_fill(void *buf, size_t len, uint64_t seed, uint64_t pos)
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

/* FNV-1a, 64 bit. */
static inline uint64_t th_hash(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Index of the first byte where a and b differ, or len. */
static inline size_t th_first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < len; i++)
		if (x[i] != y[i])
			return i;
	return len;
}

#endif /* RDPS_TP_HARNESS_H */
