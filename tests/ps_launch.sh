#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_launch.sh RDPS_LAUNCH - rdps-launch's contract with plain shell
# workers: bad usage (exit 2, one line), the job environment, the exit
# status and name of the first failing worker, --timeout, and SIGTERM
# forwarded to the whole job. Nothing here sleeps to wait: the signal case
# reads the workers' "ready" lines first.
set -u

LAUNCH=${1:?usage: ps_launch.sh PATH/TO/rdps-launch}
unset RDPS_LOG_LEVEL

tmp=$(mktemp -d)
bg_pid=
cleanup() {
	[[ -n $bg_pid ]] && kill -9 "$bg_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

run() {
	timeout 40 "$LAUNCH" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

expect_usage_error() {
	local name=$1 pattern=$2 lines
	shift 2
	run "$@"
	lines=$(wc -l <"$tmp/err")
	((rc == 2)) || fail "$name: exit status $rc, want 2 (rdps-launch $*)"
	[[ -s $tmp/out ]] && fail "$name: stdout not empty: '$out'"
	if ((lines != 1)); then
		fail "$name: $lines lines on stderr, want 1: '$err'"
	elif [[ $err != "rdps-launch: "* ]]; then
		fail "$name: stderr does not start with 'rdps-launch: ': '$err'"
	elif ! [[ $err =~ $pattern ]]; then
		fail "$name: stderr '$err' does not match /$pattern/"
	fi
}

expect_usage_error "zero shards" "shard count" -s 0 -- true
expect_usage_error "bad workers" "worker count" -w 3x -- true
expect_usage_error "bad transport" "transport 'rdma'" -t rdma -- true
expect_usage_error "bad model" "model 'xsp'" -m xsp -- true
expect_usage_error "slack without ssp" "ssp" --slack 2 -- true
expect_usage_error "slack too big" "slack" -m ssp --slack 99 -- true
expect_usage_error "bad timeout" "timeout" --timeout soon -- true
expect_usage_error "bad grace" "grace" --grace 1s -- true
expect_usage_error "grace too long" "grace" --grace 3601 -- true
expect_usage_error "unknown option" "unknown option" --frobnicate -- true
expect_usage_error "missing value" "needs a value" -s
expect_usage_error "missing command" "missing command" -s 1
expect_usage_error "missing command after --" "missing command" --
expect_usage_error "bad loss policy" "on-worker-loss 'maybe'" --on-worker-loss maybe -- true
expect_usage_error "continue under bsp" "needs --model ssp or asp" --on-worker-loss continue -- true
expect_usage_error "continue under absp" "needs --model ssp or asp" -m absp --on-worker-loss continue -- true
expect_usage_error "heartbeat too short" "too short" --heartbeat-ms 100 -- true
expect_usage_error "heartbeat too long" "heartbeat" --heartbeat-ms 9999999 -- true

run --help
((rc == 0)) || fail "--help: exit status $rc"
[[ $out == "Usage: rdps-launch"* ]] || fail "--help: no usage on stdout"
grep -q -- "--workers" "$tmp/out" || fail "--help does not list --workers"
[[ -s $tmp/err ]] && fail "--help: stderr not empty: '$err'"

# The environment of every worker.
envcmd='echo "$RDPS_RANK $RDPS_WORKERS $RDPS_MODEL $RDPS_SLACK $RDPS_TOKEN $RDPS_SHARDS $RDPS_ON_WORKER_LOSS"'
run -s 2 -w 3 -m ssp --slack 3 --on-worker-loss continue -- sh -c "$envcmd"
((rc == 0)) || fail "env job: exit status $rc: $err"
if [[ $(wc -l <"$tmp/out") != 3 ]]; then
	fail "env job: want 3 lines, got '$out'"
else
	sort -n "$tmp/out" >"$tmp/sorted"
	n=0
	token=
	while read -r rank workers model slack tok shards loss; do
		((rank == n)) || fail "env: rank $rank, want $n"
		[[ $workers == 3 && $model == ssp && $slack == 3 ]] ||
			fail "env: '$workers $model $slack', want '3 ssp 3'"
		[[ $tok =~ ^[0-9]+$ && $tok != 0 ]] || fail "env: token '$tok'"
		[[ -z $token || $tok == "$token" ]] ||
			fail "env: tokens differ: $tok vs $token"
		token=$tok
		[[ $shards =~ ^shm://[^,]+-s0,shm://[^,]+-s1$ ]] ||
			fail "env: shards '$shards'"
		[[ $loss == continue ]] || fail "env: on worker loss '$loss'"
		n=$((n + 1))
	done <"$tmp/sorted"
fi
run -s 2 -w 1 -t tcp -- sh -c "$envcmd"
((rc == 0)) || fail "tcp env job: exit status $rc: $err"
[[ $out =~ \ tcp://127\.0\.0\.1:[1-9][0-9]*,tcp://127\.0\.0\.1:[1-9][0-9]*\ fail$ ]] ||
	fail "tcp env job: shards in '$out'"
run -w 1 -- sh -c "$envcmd"
[[ $out =~ ^0\ 1\ bsp\ 0\  ]] || fail "defaults: '$out', want '0 1 bsp 0 ...'"

# Success, and a command that cannot be run.
run -w 2 -- true
((rc == 0)) || fail "true: exit status $rc: $err"
run -w 2 -- /nonexistent/cmd
((rc == 127)) || fail "missing command: exit status $rc, want 127"
[[ $err =~ "cannot run '/nonexistent/cmd'" ]] ||
	fail "missing command: stderr '$err'"

# The first failing worker: its status, its name; the others are killed
# (they would sleep 60 s, beyond the 40 s limit of run).
start=$SECONDS
run -w 3 -- sh -c 'if [ "$RDPS_RANK" = 1 ]; then exit 3; fi; exec sleep 60'
((rc == 3)) || fail "failing worker: exit status $rc, want 3: $err"
[[ $err =~ "rdps-launch: worker 1 exited with status 3" ]] ||
	fail "failing worker: stderr '$err'"
((SECONDS - start < 30)) || fail "failing worker: the job was not stopped"

run -w 2 -- sh -c 'if [ "$RDPS_RANK" = 0 ]; then kill -9 $$; fi; exec sleep 60'
((rc == 137)) || fail "killed worker: exit status $rc, want 137"
[[ $err =~ "worker 0 was killed by signal 9" ]] ||
	fail "killed worker: stderr '$err'"

# --timeout.
run --timeout 1 -w 2 -- sleep 60
((rc == 124)) || fail "timeout: exit status $rc, want 124"
[[ $err =~ "timed out after 1 s" ]] || fail "timeout: stderr '$err'"
# --grace: a worker that ignores SIGTERM (inherited through exec) is
# killed once the grace is over, and the launcher says so.
run --timeout 1 --grace 1 -w 1 -- sh -c 'trap "" TERM; exec sleep 60'
((rc == 124)) || fail "grace: exit status $rc, want 124"
[[ $err =~ "job did not stop within 1 s of SIGTERM (--grace): SIGKILL" ]] ||
	fail "grace: stderr '$err'"

# SIGTERM is forwarded: the workers are gone when the launcher returns.
coproc JOB { exec "$LAUNCH" -w 2 -- sh -c 'echo "ready $$"; exec sleep 60' 2>"$tmp/err"; }
bg_pid=$JOB_PID
pids=()
for i in 1 2; do
	if read -r -t 20 -u "${JOB[0]}" word pid && [[ $word == ready ]]; then
		pids+=("$pid")
	else
		fail "sigterm: worker $i did not report ready"
	fi
done
kill -TERM "$bg_pid"
wait "$bg_pid"
rc=$?
bg_pid=
((rc == 143)) || fail "sigterm: exit status $rc, want 143"
for pid in "${pids[@]}"; do
	kill -0 "$pid" 2>/dev/null && fail "sigterm: worker pid $pid still alive"
done

if ((fails)); then
	echo "ps_launch: $fails failure(s)" >&2
	exit 1
fi
echo "ps_launch: all cases passed"
