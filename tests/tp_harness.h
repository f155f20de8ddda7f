/* SPDX-License-Identifier: MIT */
/*
 * tp_harness.h - process and channel helpers for the multi-process
 * transport tests (library tp_harness, tests/tp_harness.c): forked or
 * exec'd children, socketpair channels with deadlines, reaping with
 * deadlines, children on another host, data patterns and a hash to compare
 * memory that lives in another process. No cmocka in here: children use it
 * too.
 *
 * Children never call cmocka: an assertion there would longjmp into the
 * child's copy of the test runner and go on running the rest of the suite.
 * They report with TH_CHILD_CHECK, which prints one line to stderr and
 * _exit()s with a non-zero code the parent turns into a test failure.
 *
 * Channels are AF_UNIX socketpairs written with MSG_NOSIGNAL, so a dead
 * child shows up as -EPIPE rather than as a SIGPIPE in the test runner.
 *
 * Two ways to start a child:
 *   th_spawn(c, role, fn, arg)   fork only: the child runs fn on a copy of
 *                                the parent. Only for children that do not
 *                                touch RDMA: librdmacm keeps its device
 *                                contexts process-wide, so a forked child
 *                                would create its queue pairs on the
 *                                parent's uverbs file (they outlive the
 *                                child, and the parent's state is shared).
 *   th_spawn_role(c, role, arg, len)
 *                                fork + exec of /proc/self/exe: a fresh
 *                                process runs the role named in the table
 *                                given to th_main(), with a copy of the
 *                                len-byte plain struct arg (no pointers).
 * The binary's main() calls th_main(argc, argv, roles, n) first; it runs
 * the role of an exec'd child (--th-child ROLE FD HEXARG) and the target
 * server (--serve-targets PORT) and returns only for a normal test run.
 *
 * Remote children: with RDPS_TEST_REMOTE=HOST:PORT, th_spawn_role() of a
 * role marked remote_ok asks the server started on HOST with
 * "--serve-targets PORT" to fork+exec the role there, with the TCP
 * connection as its channel (the same byte stream as the socketpair).
 * Killing and reaping go through the server (kill, wait); th_remote_bye()
 * at the end of the run makes the server exit.
 *
 * Threads: none. The harness keeps one process-wide list of live children
 * (at most TH_MAX_CHILDREN) and is called from the test's main thread only.
 */
#ifndef RDPS_TP_HARNESS_H
#define RDPS_TP_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TH_MAX_CHILDREN 16

struct th_child {
	pid_t pid; /* on the remote host if remote */
	int fd;	   /* the parent's end of the channel */
	const char *role;
	int remote; /* runs under the RDPS_TEST_REMOTE server */
};

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t th_now_ms(void);

/* In a child: report what went wrong (one line on stderr, with role and
 * line) and _exit(2) without running atexit handlers (no LeakSanitizer
 * pass, no flush of the runner's stdout). */
void th_child_fail(const char *role, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

#define TH_CHILD_CHECK(role, cond, ...)                               \
	do {                                                          \
		if (!(cond))                                          \
			th_child_fail((role), __LINE__, __VA_ARGS__); \
	} while (0)

/* Send all of buf; 0 or -errno (-EPIPE when the other side is gone). */
int th_send(int fd, const void *buf, size_t len);

/* Receive exactly len bytes within timeout_ms (-1: no limit); 0, -ETIMEDOUT,
 * -EPIPE on end of file, or -errno. */
int th_recv(int fd, void *buf, size_t len, int timeout_ms);

/*
 * Fork a child running fn(fd, arg) with its end of a fresh channel; the
 * child _exit()s with fn's return value. Fills *c (the parent's end of the
 * channel, owned by the harness until th_reap). Returns 0, -EMFILE with
 * TH_MAX_CHILDREN alive, or -errno. Not for children that touch RDMA.
 */
int th_spawn(struct th_child *c, const char *role, int (*fn)(int fd, void *arg),
	     void *arg);

typedef int (*th_role_fn)(int fd, void *arg);

/* A role an exec'd child can play: main() passes the table to th_main(),
 * which keeps the pointer (the table must outlive the run). */
struct th_role {
	const char *name;
	th_role_fn fn;
	int remote_ok; /* may run on the RDPS_TEST_REMOTE host */
};

/*
 * Start a child playing role (from the table given to th_main()) in a
 * fresh process: fork, then exec of this binary, which runs the role's fn
 * with its end of the channel and a copy of the len bytes at arg (at most
 * 4096). Roles marked remote_ok run on the RDPS_TEST_REMOTE host when that
 * is set. Returns 0, -ENOENT (no such role), -E2BIG, -EMFILE or -errno.
 */
int th_spawn_role(struct th_child *c, const char *role, const void *arg,
		  size_t len);

/* The RDPS_TEST_REMOTE host this run's targets live on, or NULL. */
const char *th_remote(void);

/* End of the run: the remote server kills what is left and exits. 0 or
 * -errno. */
int th_remote_bye(void);

/*
 * Wait up to timeout_ms for the child to exit and reap it; on timeout kill
 * it with SIGKILL first. Returns the waitpid status, or -ETIMEDOUT (child
 * killed) / -ECHILD (no child) / -errno. Closes the channel and clears *c.
 */
int th_reap(struct th_child *c, int timeout_ms);

/* Kill with SIGKILL and reap (used to kill a peer on purpose); as
 * th_reap. */
int th_kill(struct th_child *c);

/* Describe a waitpid status (or th_reap error) in buf; returns buf. */
const char *th_status_str(int status, char *buf, size_t len);

/* Kill and reap every child still alive, also those whose struct th_child
 * was on the stack of a test that failed (cmocka longjmps out of it): call
 * from each case's setup and teardown. */
void th_kill_all(void);

/*
 * Call first in main(). Remembers the role table, reads RDPS_TEST_REMOTE
 * (HOST:PORT; exit(2) with a message if malformed), runs an exec'd child's
 * role or the target server (neither returns), and returns for a normal
 * test run.
 */
void th_main(int argc, char **argv, const struct th_role *roles,
	     size_t n_roles);

/* Data patterns: the byte at position pos of a pattern depends only on the
 * seed and pos, so any sub-range can be rebuilt by either process. */

/* A 64-bit mixing function (splitmix64's finaliser). */
uint64_t th_mix(uint64_t x);

/* Fill buf with bytes [pos, pos+len) of pattern seed; seed 0 is all zero. */
void th_fill(void *buf, size_t len, uint64_t seed, uint64_t pos);

/* FNV-1a, 64 bit. */
uint64_t th_hash(const void *buf, size_t len);

/* Index of the first byte where a and b differ, or len. */
size_t th_first_diff(const void *a, const void *b, size_t len);

#endif /* RDPS_TP_HARNESS_H */
