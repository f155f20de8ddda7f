# SPDX-License-Identifier: MIT
#
# train_lib.sh - sourced by the trainer's test scripts (train_*.sh), after
# they read their arguments (LAUNCH is rdps-launch):
#  - $tmp, a temporary directory removed when the script exits;
#  - fail MESSAGE: prints "FAIL: MESSAGE" on stderr and counts it in
#    $fails (the script exits non-zero when fails > 0);
#  - job NAME ARGS...: rdps-launch ARGS (its stdout in $tmp/out, stderr in
#    $tmp/err, exit status in $rc), then a failure for every process of
#    the job still running or /dev/shm entry left behind (its shards are
#    named rdps-PID-sI).

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

job() {
	local name=$1 pid e f
	shift
	timeout 100 "$LAUNCH" --timeout 90 "$@" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	wait $pid
	rc=$?
	for e in /proc/[0-9]*/environ; do
		if grep -qz "^RDPS_SHARDS=shm://rdps-$pid-" "$e" 2>/dev/null; then
			fail "$name: process ${e#/proc/} of the job still runs"
		fi
	done
	for f in /dev/shm/*rdps-"$pid"-*; do
		[[ -e $f ]] && fail "$name: $f left behind"
	done
}
