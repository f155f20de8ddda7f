/* SPDX-License-Identifier: MIT */
/* time.c - the monotonic clock and deadlines every layer waits with. */
#include <time.h>

#include "rdps_base.h"

uint64_t rdps_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rdps_now_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rdps_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX
			      : rdps_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

int rdps_ms_left(uint64_t deadline)
{
	uint64_t now, ms;

	if (deadline == UINT64_MAX)
		return -1;
	now = rdps_now_ns();
	if (now >= deadline)
		return 0;
	ms = (deadline - now + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}
