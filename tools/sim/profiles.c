/* SPDX-License-Identifier: MIT */
/*
 * profiles.c - rdps-sim's built-in cost profiles (struct sim_profile).
 *
 * shm and tcp: measured on the 2-core development box (kernel 6.18),
 * loaded by other jobs (load average 13-22 while measuring):
 *   - 8-byte read, write (half a round trip), fetch-add, compare-swap:
 *     medians of `rdps-perf --local shm|tcp -o OP -s 8 -n 5000`
 *     (2026-12-02: shm 0.028 / 0.150 / 0.035 / 0.033 us, tcp 6.7 / 4.0 /
 *     6.3 / 6.5 us);
 *   - link bandwidth: README "Benchmarks" (`scripts/bench.sh --ps`,
 *     2026-12-01, idle box): shm pull 1 MiB over 4 shards 25.0 GB/s (one
 *     memcpy, 25.7 GB/s), tcp pull 1 MiB 3.46 GB/s (rdps-perf 1 MiB read
 *     3.3 GB/s, write 3.45 GB/s, 2026-11-22);
 *   - apply cost: README shm push+apply 1 MiB, 1 shard, 4.5 GB/s, i.e.
 *     233 us per MiB, of which the 1 MiB copy into the slot at 25 GB/s is
 *     42 us: 0.18 ns per byte on the shard's CPU (SUM, float32);
 *   - spin_us: the transport's default adaptive spin (transport.c, 50 us);
 *     sleep_extra_us: Linux's default timer slack (50 us) plus a wake-up;
 *   - cores, wake_us and wake_per_proc_us were fitted by hand (a grid
 *     search, the most rows within 25%) to the whole iterations of a
 *     first measurement with tests/sim_measure.sh on the loaded box, see
 *     `fitted`: the job got about one of the two cores (cores = 1), a
 *     process waiting for another is off its CPU at once (oversubscribed:
 *     cpus = 2 and a load of 16 other tasks, so W + S + load > cpus for
 *     every job), and each hand-off costs a wake-up that grows with the
 *     processes of the job (shm 40 + 5 x (W + S) us, tcp 40 + 10 x (W +
 *     S) us). They describe this box's scheduling under load, not rdps;
 *     tests/data/sim_measured.csv (three runs a cell, taken after the
 *     fit) checks them. On a quiet box `rdps-sim fit` finds other host
 *     terms (tests/data/sim_shm_quiet.profile, sim_tcp_quiet.profile,
 *     fitted to rdps-scale --quick on a quiet box,
 *     tests/data/sim_scale_quick_quiet7.csv, whose first line says
 *     where and when): host load is a profile's parameter (cpus, load,
 *     cores, step_us), not code.
 * rxe: README "Benchmarks", verbs over rxe soft-RoCE in one QEMU VM
 *   (`scripts/bench.sh --rxe`, 2026-11-22): read 28.0 us, write 11.3 us
 *   (half round trip), fetch-add 18.7 us, compare-swap 18.9 us; link and
 *   apply as tcp (rxe runs in the same kernel network stack); atomics are
 *   done by the rxe kernel thread, one at a time.
 * connectx: published figures, not measured here:
 *   - READ ~2 us, fetch-add ~2-3 us, ~2-3 M atomics/s on one address,
 *     100 Gb/s links: the figures of issue 16 and DESIGN.md "Scale", from
 *     Kalia, Kaminsky, Andersen, "Design Guidelines for High Performance
 *     RDMA Systems", USENIX ATC 2016 (atomics on one address serialize in
 *     the NIC at about 2.2-2.7 Mops on ConnectX-3/Connect-IB) and NVIDIA's
 *     perftest latencies for ConnectX-5/6 (ib_read_lat about 1.8-2 us,
 *     ib_write_lat about 1 us, ib_atomic_lat about 2.5 us);
 *   - reads of one address are not locked by the NIC; 30 M/s on one word
 *     is an assumption (a NIC's message rate is 100-200 M/s in all);
 *   - shards busy-poll on their own cores (no wake-up); the apply cost is
 *     this box's 0.18 ns per byte (one core per shard).
 */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const struct sim_profile sim_profiles[] = {
	{
		.name = "shm",
		.source = "rdps-perf --local shm (2026-12-02), README bench "
			  "--ps (2026-12-01)",
		.read_us = 0.028,
		.write_us = 0.150,
		.fadd_us = 0.035,
		.cas_us = 0.033,
		.link_gbs = 25.0,
		.one_host = 1,
		.apply_ns_per_byte = 0.18,
		.msg_us = 0.3,
		.scan_ns = 1.0,
		.atomic_mops = 20.0,
		.hot_read_mops = 50.0,
		.cores = 1,
		.spin_us = 50,
		.cpus = 2,
		.load = 16,
		.wake_us = 40,
		.wake_per_proc_us = 5,
		.yield_us = 5,
		.sleep_extra_us = 55,
		.release_us = 0.2,
		.end_waits = 1,
		.fitted = "cores, oversubscribed, wake_us, wake_per_proc_us",
	},
	{
		.name = "tcp",
		.source = "rdps-perf --local tcp (2026-12-02), README bench "
			  "(2026-11-22, 2026-12-01)",
		.read_us = 6.7,
		.write_us = 4.0,
		.fadd_us = 6.3,
		.cas_us = 6.5,
		.link_gbs = 3.4,
		.one_host = 1,
		.apply_ns_per_byte = 0.18,
		.msg_us = 2.0,
		.scan_ns = 1.0,
		.atomic_mops = 20.0,
		.hot_read_mops = 50.0,
		.cores = 1,
		.spin_us = 50,
		.cpus = 2,
		.load = 16,
		.wake_us = 40,
		.wake_per_proc_us = 10,
		.yield_us = 5,
		.sleep_extra_us = 55,
		.op_thread = 1,
		.op_cpu_us = 2.0,
		.release_us = 2.0,
		.end_waits = 1,
		.fitted = "cores, oversubscribed, wake_us, wake_per_proc_us",
	},
	{
		.name = "rxe",
		.source = "README bench --rxe (2026-11-22), rxe soft-RoCE in "
			  "a QEMU VM",
		.read_us = 28.0,
		.write_us = 11.3,
		.fadd_us = 18.7,
		.cas_us = 18.9,
		.link_gbs = 3.4,
		.one_host = 1,
		.apply_ns_per_byte = 0.18,
		.msg_us = 2.0,
		.scan_ns = 1.0,
		.atomic_mops = 0.1,
		.hot_read_mops = 0.1,
		.cores = 1,
		.spin_us = 50,
		.cpus = 2,
		.load = 16,
		.wake_us = 40,
		.wake_per_proc_us = 10,
		.yield_us = 5,
		.sleep_extra_us = 55,
		.op_thread = 1,
		.op_cpu_us = 2.0,
		.release_us = 2.0,
		.wait_reads = 6,
		.fitted = "none (the box's scheduling as tcp)",
	},
	{
		.name = "connectx",
		.source = "published: ATC'16 RDMA design guidelines, NVIDIA "
			  "perftest figures; issue 16",
		.read_us = 2.0,
		.write_us = 1.0,
		.fadd_us = 2.5,
		.cas_us = 2.5,
		.link_gbs = 12.5,
		.one_host = 0,
		.apply_ns_per_byte = 0.18,
		.msg_us = 0.3,
		.scan_ns = 1.0,
		.atomic_mops = 2.5,
		.hot_read_mops = 30.0,
		.spin_us = 50,
		.wake_us = 0,
		.yield_us = 0.2,
		.sleep_extra_us = 55,
		.release_us = 0.3,
		.wait_reads = 6,
		.fitted = "none",
	},
};

#define SIM_NPROFILES (sizeof(sim_profiles) / sizeof(sim_profiles[0]))

const struct sim_profile *sim_profile_find(const char *name)
{
	for (size_t i = 0; i < SIM_NPROFILES; i++)
		if (!strcmp(sim_profiles[i].name, name))
			return &sim_profiles[i];
	return NULL;
}

const struct sim_profile *sim_profile_at(unsigned n)
{
	return n < SIM_NPROFILES ? &sim_profiles[n] : NULL;
}

const char *sim_profile_names(void)
{
	return "shm, tcp, rxe, connectx";
}

/* The fields --set may change: doubles, or ints (flags) when is_int. */
static const struct {
	const char *name;
	size_t off;
	int is_int;
} sim_fields[] = {
#define SIM_F(f)                                       \
	{                                              \
#f, offsetof(struct sim_profile, f), 0 \
	}
#define SIM_I(f)                                       \
	{                                              \
#f, offsetof(struct sim_profile, f), 1 \
	}
#define SIM_U(f)                                       \
	{                                              \
#f, offsetof(struct sim_profile, f), 2 \
	}
	SIM_F(read_us),
	SIM_F(write_us),
	SIM_F(fadd_us),
	SIM_F(cas_us),
	SIM_F(link_gbs),
	SIM_I(one_host),
	SIM_F(apply_ns_per_byte),
	SIM_F(msg_us),
	SIM_F(scan_ns),
	SIM_F(atomic_mops),
	SIM_F(hot_read_mops),
	SIM_F(spin_us),
	SIM_I(oversubscribed),
	SIM_F(wake_us),
	SIM_F(yield_us),
	SIM_F(sleep_extra_us),
	SIM_I(op_thread),
	SIM_F(op_cpu_us),
	SIM_U(cores),
	SIM_F(wake_per_proc_us),
	SIM_U(cpus),
	SIM_F(load),
	SIM_F(wake_free_us),
	SIM_F(wake_max_us),
	SIM_F(step_us),
	SIM_F(wake_spread),
	SIM_F(release_us),
	SIM_U(wait_reads),
	SIM_I(end_waits),
#undef SIM_F
#undef SIM_I
#undef SIM_U
};

static void sim_field_put(struct sim_profile *p, size_t i, double v)
{
	char *at = (char *)p + sim_fields[i].off;

	if (sim_fields[i].is_int == 2)
		*(unsigned *)at = (unsigned)v;
	else if (sim_fields[i].is_int)
		*(int *)at = v != 0;
	else
		*(double *)at = v;
}

static double sim_field_get(const struct sim_profile *p, size_t i)
{
	const char *at = (const char *)p + sim_fields[i].off;

	if (sim_fields[i].is_int == 2)
		return *(const unsigned *)at;
	if (sim_fields[i].is_int)
		return *(const int *)at;
	return *(const double *)at;
}

static long sim_field_find(const char *name)
{
	for (size_t i = 0; i < sizeof(sim_fields) / sizeof(sim_fields[0]); i++)
		if (!strcmp(sim_fields[i].name, name))
			return (long)i;
	return -1;
}

double sim_profile_get(const struct sim_profile *p, const char *name)
{
	long i = sim_field_find(name);

	return i < 0 ? NAN : sim_field_get(p, (size_t)i);
}

int sim_profile_put(struct sim_profile *p, const char *name, double v)
{
	long i = sim_field_find(name);

	if (i < 0)
		return -ENOENT;
	sim_field_put(p, (size_t)i, v);
	return 0;
}

int sim_profile_set(struct sim_profile *p, const char *kv, char *err,
		    size_t errlen)
{
	const char *eq = strchr(kv, '=');
	char *end;
	double v;

	for (size_t i = 0; eq && i < sizeof(sim_fields) / sizeof(sim_fields[0]);
	     i++) {
		if (strlen(sim_fields[i].name) != (size_t)(eq - kv) ||
		    strncmp(kv, sim_fields[i].name, (size_t)(eq - kv)))
			continue;
		v = strtod(eq + 1, &end);
		if (end == eq + 1 || *end || !(v >= 0 && v < 1e12)) {
			snprintf(err, errlen,
				 "bad value in '%s': use a number >= 0", kv);
			return -EINVAL;
		}
		if ((!strcmp(sim_fields[i].name, "atomic_mops") ||
		     !strcmp(sim_fields[i].name, "hot_read_mops") ||
		     !strcmp(sim_fields[i].name, "link_gbs")) &&
		    v <= 0) {
			snprintf(err, errlen, "%s must be above 0",
				 sim_fields[i].name);
			return -EINVAL;
		}
		if (!strcmp(sim_fields[i].name, "wake_spread") && v > 1) {
			snprintf(err, errlen, "wake_spread must be 0 .. 1");
			return -EINVAL;
		}
		if (sim_fields[i].is_int == 2 && v > 1024) {
			snprintf(err, errlen, "%s must be 0 .. 1024",
				 sim_fields[i].name);
			return -EINVAL;
		}
		sim_field_put(p, i, v);
		return 0;
	}
	snprintf(err, errlen,
		 "bad --set '%s': use FIELD=VALUE with a field of "
		 "'rdps-sim profiles' (read_us, fadd_us, atomic_mops, ...)",
		 kv);
	return -EINVAL;
}

void sim_profile_print(FILE *f, const struct sim_profile *p)
{
	fprintf(f, "%s: %s (fitted: %s)\n", p->name, p->source, p->fitted);
	for (size_t i = 0; i < sizeof(sim_fields) / sizeof(sim_fields[0]);
	     i++) {
		fprintf(f, "  %s=%g\n", sim_fields[i].name,
			sim_field_get(p, i));
	}
}
