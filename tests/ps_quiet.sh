#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_quiet.sh RDPS_LAUNCH PS_WORKER RDPS_PSBENCH TRANSPORT - a job that ends
# normally prints no warning and no error: clean jobs (ps_worker sum and
# ssp, rdps-psbench round and pull with busy and adaptive polling on both
# sides) run on TRANSPORT, and any line of their whole stderr (launcher,
# shards, workers) that says warn or error fails the test. Over tcp the
# shard's close used to lose the acknowledgements of a leaving worker's
# last operations, so every such job warned "peer closed the connection
# (N operations fail)" although it succeeded. Each job runs twice: the
# ordering at close is a race.
set -u

usage="usage: ps_quiet.sh RDPS_LAUNCH PS_WORKER RDPS_PSBENCH shm|tcp|verbs"
LAUNCH=${1:?$usage}
WORKER=${2:?$usage}
PSBENCH=${3:?$usage}
TP=${4:?$usage}
shift 4
# Extra launcher options (the rxe guest passes --addr).
EXTRA=("$@")
ROUNDS=${PS_QUIET_ROUNDS:-2}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fails=0
jobs=0
# job NAME LAUNCH-OPTIONS -- CMD...: run it, check its exit and its stderr.
job() {
	local name=$1 err
	shift
	err=$tmp/$name.err
	jobs=$((jobs + 1))
	if ! "$LAUNCH" --timeout 40 -t "$TP" ${EXTRA[@]+"${EXTRA[@]}"} "$@" \
		>"$tmp/$name.out" 2>"$err"; then
		echo "FAIL: job $name ($*) failed:" >&2
		tail -5 "$err" >&2
		fails=$((fails + 1))
		return
	fi
	# rdps log lines read "rdps[PID] warn file:line ..."; tools and the
	# launcher say "error" or "warning" in their own words.
	if grep -Eiq '(^|[^a-z])(warn|warning|error)([^a-z]|$)' "$err"; then
		echo "FAIL: job $name ($*) succeeded but its stderr has" \
			"warnings or errors:" >&2
		grep -Ei '(^|[^a-z])(warn|warning|error)([^a-z]|$)' "$err" >&2
		fails=$((fails + 1))
	fi
}

for r in $(seq 1 "$ROUNDS"); do
	job "sum-$r" -s 2 -w 3 -m bsp -- "$WORKER" sum 200 "$r"
	job "ssp-$r" -s 2 -w 3 -m ssp -k 2 -- "$WORKER" ssp 20 "$r"
	job "round-busy-$r" -w 1 -m ssp -P busy -- "$PSBENCH" -P busy \
		-n 200 round
	job "pull-busy-$r" -w 1 -m ssp -P busy -- "$PSBENCH" -P busy \
		-n 100 -s 64k pull
	job "round-adaptive-$r" -w 1 -m ssp -- "$PSBENCH" -n 200 round
	job "pull-adaptive-$r" -s 2 -w 2 -m ssp -- "$PSBENCH" -n 100 \
		-s 64k pull
done
((fails)) && exit 1
echo "ps_quiet $TP: $jobs clean jobs, no warning or error on stderr"
