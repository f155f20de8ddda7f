#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run one rdps-launch job (LAUNCH ARGS...) and check that it left nothing
# behind: no process whose environment names its shards (the shards' URLs
# carry the launcher's pid, shm://rdps-PID-sI), and no /dev/shm entry of
# that name. Exit status: the job's, or 1 for a leftover.
set -u
"$@" &
pid=$!
wait $pid
rc=$?
left=0
for e in /proc/[0-9]*/environ; do
	if grep -qz "^RDPS_SHARDS=shm://rdps-$pid-" "$e" 2>/dev/null; then
		p=${e#/proc/}
		echo "run_job.sh: process ${p%/environ} of the job still runs" >&2
		left=1
	fi
done
for f in /dev/shm/*rdps-"$pid"-*; do
	[ -e "$f" ] && { echo "run_job.sh: $f left behind" >&2; left=1; }
done
[ $rc -ne 0 ] && exit $rc
exit $left
