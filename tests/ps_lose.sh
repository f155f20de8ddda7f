#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_lose.sh RDPS_LAUNCH PS_WORKER TRANSPORT [ADDR] - jobs that lose a
# worker (ps_worker lose: the last of 4 workers kills or stops itself, or
# leaves with rdps_ctx_destroy, at clock 10 of 60; 2 shards):
#   ssp kill, ssp stop, asp kill, ssp leave with --on-worker-loss
#     continue: the job
#     succeeds; the survivors' counts are exact, the lost worker's pushes
#     are in, and each round it missed was made up exactly once (checked by
#     ps_worker); a stopped worker is found by its missing pulse;
#   ssp kill without it: the survivors fail naming the lost worker;
#   bsp leave (the default, fail): the survivors fail saying it left;
#   ssp stop with --heartbeat-ms 2000: found only after two of those
#     periods (4 s), where the default took less.
# The stopped worker is found by the shards after two heartbeats of pulse
# standing still (or its read going unanswered, tcp).
# Each run is bounded by rdps-launch --timeout; a timeout fails the test.
# ADDR: the address for tcp/verbs shards (default 127.0.0.1).
set -u

LAUNCH=${1:?usage: ps_lose.sh RDPS_LAUNCH PS_WORKER TRANSPORT [ADDR]}
WORKER=${2:?usage: ps_lose.sh RDPS_LAUNCH PS_WORKER TRANSPORT [ADDR]}
TP=${3:?usage: ps_lose.sh RDPS_LAUNCH PS_WORKER TRANSPORT [ADDR]}
ADDR=${4:-127.0.0.1}
unset RDPS_LOG_LEVEL

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# run MODEL HOW ON_LOSS [LAUNCH OPTIONS]: one job; sets rc, and the output
# in $tmp/out, err.
run() {
	local m=$1 how=$2 loss=$3
	shift 3
	"$LAUNCH" --timeout 60 -t "$TP" -a "$ADDR" -s 2 -w 4 -m "$m" \
		--on-worker-loss "$loss" "$@" -- "$WORKER" lose 60 10 "$how" \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	((rc != 124)) || fail "$m $how $loss: the job hung until rdps-launch's timeout: $(tail -8 "$tmp/err")"
}

# The milliseconds a shard says worker 3's pulse stood still (or its read
# went unanswered), the largest of the shards'.
still_ms() {
	sed -nE 's/.*worker 3 lost on shard [01]: its pulse (stood still|read got no answer) for ([0-9]+) ms.*/\2/p' \
		"$tmp/err" | sort -n | tail -1
}

for c in "ssp kill" "ssp stop" "asp kill" "ssp leave"; do
	set -- $c
	run "$1" "$2" continue
	((rc == 0)) || fail "$1 $2: the job failed (rc $rc) instead of going on without worker 3: $(tail -8 "$tmp/err")"
	grep -q "^OK lose" "$tmp/out" || fail "$1 $2: rank 0 did not check the result"
	[[ $2 == leave ]] || grep -q "worker 3 .*the job goes on without it" "$tmp/err" ||
		fail "$1 $2: rdps-launch did not name the lost worker"
	if [[ $2 == stop ]]; then
		default_ms=$(still_ms)
		[[ -n $default_ms ]] ||
			fail "$1 stop: no shard found worker 3's pulse missing: $(tail -8 "$tmp/err")"
	fi
	echo "$1 $2, continue: $(cat "$tmp/out")"
done
run ssp stop continue --heartbeat-ms 2000
((rc == 0)) || fail "ssp stop, heartbeat 2000 ms: the job failed (rc $rc): $(tail -8 "$tmp/err")"
ms=$(still_ms)
[[ -n $ms ]] && ((ms >= 4000 && default_ms < 4000)) ||
	fail "ssp stop: worker 3 found after '$ms' ms with --heartbeat-ms 2000 (two periods: 4000), '$default_ms' ms by default"
echo "ssp stop, continue, --heartbeat-ms 2000: found after $ms ms (default: $default_ms ms)"
run ssp kill fail
((rc != 0)) || fail "ssp kill, fail: the job succeeded without worker 3"
grep -Eq "ps_worker [0-2]: .*worker 3 is gone" "$tmp/err" ||
	fail "ssp kill, fail: no survivor named worker 3: $(tail -8 "$tmp/err")"
echo "ssp kill, fail: the survivors named worker 3"
run bsp leave fail
((rc != 0)) || fail "bsp leave, fail: the job succeeded without worker 3's clocks"
grep -Eq "ps_worker [0-2]: .*worker 3 left the job \(rdps_ctx_destroy\) after 10 clocks" "$tmp/err" ||
	fail "bsp leave, fail: no survivor said worker 3 left: $(tail -8 "$tmp/err")"
echo "bsp leave, fail: the survivors said worker 3 left after 10 clocks"
echo "ps_lose ($TP): lost workers made up for, or named"
