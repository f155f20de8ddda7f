/* SPDX-License-Identifier: MIT */
/*
 * pulse.c - the liveness counter thread (pulse.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "pulse.h"
#include "rdps_base.h"

static void *pulse_main(void *arg)
{
	struct rdps_pulse *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		__atomic_fetch_add(p->word, 1, __ATOMIC_RELAXED);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)p->ms * 1000000L;
		while (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int rdps_pulse_start(struct rdps_pulse *p, uint64_t *word, unsigned ms)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int ret;

	memset(p, 0, sizeof(*p));
	p->word = word;
	p->ms = ms;
	if (pthread_condattr_init(&ca))
		return rdps_set_error(-ENOMEM, "out of memory");
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	ret = pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (ret)
		return rdps_set_error(-ret, "cannot create a pulse: %s",
				      strerror(ret));
	pthread_mutex_init(&p->mu, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&p->thr, NULL, pulse_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		return rdps_set_error(-ret, "cannot start a pulse thread: %s",
				      strerror(ret));
	}
	p->on = 1;
	return 0;
}

void rdps_pulse_stop(struct rdps_pulse *p)
{
	if (!p->on)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thr, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	p->on = 0;
}
