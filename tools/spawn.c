/* SPDX-License-Identifier: MIT */
/* spawn.c - fork and exec with an environment, waiting, signalling. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "spawn.h"

/* In the child: everything between fork and exec. Returns only on error. */
static void spawn_child(const struct tool_spawn *sp, pid_t parent)
{
	sigset_t none;

	/* The parent may catch or ignore these; the program must not. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, sp->sigmask ? sp->sigmask : &none, NULL);
	if (sp->die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The parent died before prctl: nobody would kill us. */
		if (getppid() != parent)
			return;
	}
	/* The fd was made close-on-exec; the child's copy must survive. */
	if (sp->keep_fd >= 0 && fcntl(sp->keep_fd, F_SETFD, 0))
		return;
	if (sp->out_fd >= 0 && (dup2(sp->out_fd, STDOUT_FILENO) < 0 ||
				dup2(sp->out_fd, STDERR_FILENO) < 0))
		return;
	for (const char *const *e = sp->env; e && *e; e += 2)
		if (setenv(e[0], e[1], 1))
			return;
	if (sp->search)
		execvp(sp->path, sp->argv);
	else
		execv(sp->path, sp->argv);
	fprintf(stderr, "%s: cannot run '%s': %s\n", tool_name, sp->path,
		strerror(errno));
}

int tool_self(char *buf, size_t len, int dir)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (dir && slash)
		*slash = '\0';
	return 0;
}

int tool_sibling(const char *name, char *buf, size_t len)
{
	char self[PATH_MAX];
	int ret = tool_self(self, sizeof(self), name != NULL);

	if (ret) {
		tool_err("cannot find myself (/proc/self/exe): %s",
			 strerror(-ret));
		return ret;
	}
	if (!name) {
		snprintf(buf, len, "%s", self);
		return 0;
	}
	if ((size_t)snprintf(buf, len, "%s/%s", self, name) >= len) {
		tool_err("path of %s too long", name);
		return -ENAMETOOLONG;
	}
	if (access(buf, X_OK)) {
		tool_err("cannot run %s: %s (build the %s target)", buf,
			 strerror(errno), name);
		return -ENOENT;
	}
	return 0;
}

pid_t tool_spawn(const struct tool_spawn *sp)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		tool_err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		spawn_child(sp, parent);
		_exit(127);
	}
	return pid;
}

int tool_wait(pid_t pid, int *status_out)
{
	while (waitpid(pid, status_out, 0) < 0) {
		if (errno != EINTR) {
			int ret = -errno;

			tool_err("waitpid: %s", strerror(errno));
			return ret;
		}
	}
	return 0;
}

uint64_t tool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tool_wait_signal(const sigset_t *set, uint64_t deadline)
{
	for (;;) {
		struct timespec ts = {.tv_sec = 1};
		int sig;

		if (deadline) {
			uint64_t now = tool_now_ms(), left;

			if (now >= deadline)
				return 0;
			left = deadline - now;
			if (left < 1000) {
				ts.tv_sec = 0;
				ts.tv_nsec = (long)left * 1000000;
			}
		} else {
			ts.tv_sec = 3600;
		}
		sig = sigtimedwait(set, NULL, &ts);
		if (sig > 0)
			return sig;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

void tool_procs_kill(const struct tool_proc *p, unsigned n, int sig)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i].pid > 0)
			kill(p[i].pid, sig);
}

unsigned tool_procs_live(const struct tool_proc *p, unsigned n)
{
	unsigned c = 0;

	for (unsigned i = 0; i < n; i++)
		c += p[i].pid > 0;
	return c;
}
