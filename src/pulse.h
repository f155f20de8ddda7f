/* SPDX-License-Identifier: MIT */
/*
 * pulse.h - a thread that bumps a counter in memory every few
 * milliseconds, proof to remote readers that the process runs (private
 * API). A worker's pulse sits in its reply region and the shards read it;
 * a shard's heartbeat sits in its directory header and the workers read
 * it (ps_proto.h). Only a change matters to the readers, so the counter
 * is a plain native u64.
 *
 * The thread blocks every signal (the application's handlers run on its
 * own threads) and sleeps on a condition variable, so stopping it is
 * immediate.
 */
#ifndef RDPS_PULSE_H
#define RDPS_PULSE_H

#include <pthread.h>
#include <stdint.h>

struct rdps_pulse {
	uint64_t *word;
	unsigned ms;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int on, stop;
};

/* Start bumping *word (relaxed atomic increments) now and every ms
 * milliseconds. 0, or -errno with rdps_errmsg(). */
int rdps_pulse_start(struct rdps_pulse *p, uint64_t *word, unsigned ms);

/* Stop and join the thread; a pulse never started (zeroed) is fine. */
void rdps_pulse_stop(struct rdps_pulse *p);

#endif /* RDPS_PULSE_H */
