/* SPDX-License-Identifier: MIT */
/*
 * spawn.h - starting and reaping child processes for rdps-launch, rdps-run
 * and rdps-train experiment: fork and exec with the job's environment,
 * waiting for children and signals with a deadline, signalling a group of
 * children. Exit statuses as codes and text are in common.h
 * (tool_status_code, tool_status_str).
 */
#ifndef RDPS_TOOLS_SPAWN_H
#define RDPS_TOOLS_SPAWN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tool_spawn {
	const char *path;	 /* the program */
	char *const *argv;	 /* its argv, NULL-terminated */
	int search;		 /* look path up in PATH (execvp) */
	const char *const *env;	 /* name, value, ..., NULL: set in the child */
	int keep_fd;		 /* kept open across exec; -1: none */
	int out_fd;		 /* the child's stdout and stderr; -1: ours */
	int die_with_parent;	 /* SIGKILL when the caller dies */
	const sigset_t *sigmask; /* the child's signal mask; NULL: empty */
};

/*
 * Fork and exec sp->path. The child gets SIGINT, SIGTERM and SIGPIPE at
 * their defaults; when it cannot set up or exec it prints "<tool>: cannot
 * run 'PATH': why" and exits 127. Returns the pid, or -1 after one line on
 * stderr (fork failed).
 */
pid_t tool_spawn(const struct tool_spawn *sp);

/* This program's path (dir: the folder it is in) into buf, quietly; 0 or
 * -errno. */
int tool_self(char *buf, size_t len, int dir);

/* The path of the program name next to this one (NULL: this one) into
 * buf; 0, or -errno after one line on stderr (e.g. it was not built). */
int tool_sibling(const char *name, char *buf, size_t len);

/* Wait for pid to end (retrying on EINTR): 0 with its status, or -errno
 * after one line on stderr. */
int tool_wait(pid_t pid, int *status_out);

/* Milliseconds of CLOCK_MONOTONIC, for the deadlines below. */
uint64_t tool_now_ms(void);

/*
 * Wait for one of the signals in set (blocked by the caller) or the
 * deadline in tool_now_ms() time (0: none), whichever comes first. Returns
 * the signal, 0 on the deadline, or -errno.
 */
int tool_wait_signal(const sigset_t *set, uint64_t deadline);

/* Children of a job; pid 0 once reaped, status then its wait status. */
struct tool_proc {
	pid_t pid;
	int status;
};

/* Send sig to each child still there; how many are still there. */
void tool_procs_kill(const struct tool_proc *p, unsigned n, int sig);
unsigned tool_procs_live(const struct tool_proc *p, unsigned n);

#endif /* RDPS_TOOLS_SPAWN_H */
