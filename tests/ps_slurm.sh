#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_slurm.sh RDPS_RUN PS_WORKER - rdps-run under a faked Slurm: the ranks
# are background processes with SLURM_PROCID/SLURM_NTASKS set by hand, and
# the script waits on each of them (no sleeps). Covers a real job over shm,
# the workers' environment and exit statuses, mismatched ranks, the live
# rendezvous refusing bad lines, and bad usage (exit 2, one line).
set -u

RUN=${1:?usage: ps_slurm.sh RDPS_RUN PS_WORKER}
PSW=${2:?usage: ps_slurm.sh RDPS_RUN PS_WORKER}
. "$(dirname "$0")/ps_run_common.sh"
unset RDPS_LOG_LEVEL RDPS_RANK RDPS_WORKERS RDPS_SHARDS RDPS_ROOT
unset OMPI_COMM_WORLD_RANK OMPI_COMM_WORLD_SIZE SLURM_PROCID SLURM_NTASKS

tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# job N ARGS... : N ranks of "rdps-run ARGS", rank r's output in
# $tmp/out.r and $tmp/err.r, its exit status in rcs[r]. Retried on
# another port if the one picked was taken meanwhile.
job() {
	local n=$1 r try
	shift
	for try in 1 2 3; do
		port=$(pick_port) || {
			echo "no free port found" >&2
			exit 1
		}
		pids=()
		for ((r = 0; r < n; r++)); do
			SLURM_PROCID=$r SLURM_NTASKS=$n \
				RDPS_ROOT=127.0.0.1:$port \
				timeout 50 "$RUN" "$@" >"$tmp/out.$r" 2>"$tmp/err.$r" &
			pids+=($!)
		done
		rcs=()
		for ((r = 0; r < n; r++)); do
			wait "${pids[r]}"
			rcs+=($?)
		done
		pids=()
		grep -q "is in use" "$tmp/err.0" || break
	done
}

# 1. A real job: 1 shard, 3 workers over shm.
job 4 --shards 1 --transport shm -- "$PSW" sum 300 5
[[ ${rcs[*]} == "0 0 0 0" ]] ||
	fail "sum job: exit statuses ${rcs[*]}: $(cat "$tmp"/err.*)"
grep -q '^OK sum: 3 workers x 300 pushes$' "$tmp/out.1" ||
	fail "sum job: worker 0 printed '$(cat "$tmp/out.1")'"

# 2. The workers' environment and exit statuses over tcp; shards exit 0.
envcmd='echo "$RDPS_RANK $RDPS_WORKERS $RDPS_MODEL $RDPS_SLACK $RDPS_TOKEN $RDPS_SHARDS"; exit $((RDPS_RANK + 3))'
job 4 --shards 2 --model ssp --slack 2 -- sh -c "$envcmd"
[[ ${rcs[*]} == "0 0 3 4" ]] || fail "env job: exit statuses ${rcs[*]}, want 0 0 3 4"
tok=
for r in 2 3; do
	read -r rank workers model slack t shards <"$tmp/out.$r"
	[[ $rank == $((r - 2)) && $workers == 2 && $model == ssp && $slack == 2 ]] ||
		fail "env job: rank $r printed '$(cat "$tmp/out.$r")'"
	[[ $t =~ ^[0-9]+$ && ( -z $tok || $t == "$tok" ) ]] || fail "env job: token '$t'"
	tok=$t
	[[ $shards =~ ^tcp://127\.0\.0\.1:[0-9]+,tcp://127\.0\.0\.1:[0-9]+$ ]] ||
		fail "env job: shards '$shards'"
done

# 3. Ranks that disagree on --shards: rank 0 refuses rank 1, the job
# times out on rank 0's side and every rank fails with a reason.
port=$(pick_port)
pids=()
for r in 0 1 2; do
	s=1
	((r == 1)) && s=2
	SLURM_PROCID=$r SLURM_NTASKS=3 RDPS_ROOT=127.0.0.1:$port \
		timeout 50 "$RUN" --timeout 2 --shards $s -- true \
		>"$tmp/out.$r" 2>"$tmp/err.$r" &
	pids+=($!)
done
rcs=()
for r in 0 1 2; do
	wait "${pids[r]}"
	rcs+=($?)
done
pids=()
[[ ${rcs[*]} == "1 1 1" ]] || fail "mismatch: exit statuses ${rcs[*]}, want 1 1 1"
grep -q "same --shards" "$tmp/err.1" || fail "mismatch: rank 1 said '$(cat "$tmp/err.1")'"

# 4. The live rendezvous refuses bad lines with ERR and goes on: the
# worker command itself talks to the root.
probe='for l in "GARBAGE 1" "HELLO 1 2 1 bsp" "PUT 0 tcp://h:1" "HELLO 1 2 1 bsp 0" "$(printf "x%.0s" {1..600})"; do
	exec 3<>/dev/tcp/127.0.0.1/${RDPS_ROOT##*:} || exit 9
	printf "%s\n" "$l" >&3
	IFS= read -r reply <&3
	echo "$reply"
	exec 3>&-
done'
job 2 --shards 1 -- bash -c "$probe"
[[ ${rcs[*]} == "0 0" ]] || fail "probe: exit statuses ${rcs[*]}: $(cat "$tmp"/err.*)"
mapfile -t replies <"$tmp/out.1"
want=("unknown rendezvous request 'GARBAGE'" "takes 5 fields, got 4"
	"say HELLO first" "rank 1 joined twice" "line too long")
for i in 0 1 2 3 4; do
	[[ ${replies[i]:-} == "ERR "*"${want[i]}"* ]] ||
		fail "probe $i: reply '${replies[i]:-}', want ERR ...${want[i]}"
done

# 5. SIGTERM to a worker's rdps-run (what srun and mpirun send on abort)
# reaches its command; the root counts the worker finished and the shard
# stops with 0. The worker says "ready" through a fifo first.
port=$(pick_port)
mkfifo "$tmp/fifo"
SLURM_PROCID=0 SLURM_NTASKS=2 RDPS_ROOT=127.0.0.1:$port \
	timeout 50 "$RUN" -s 1 -- true >"$tmp/out.0" 2>"$tmp/err.0" &
pids=($!)
SLURM_PROCID=1 SLURM_NTASKS=2 RDPS_ROOT=127.0.0.1:$port \
	"$RUN" -s 1 -- sh -c 'echo ready; exec sleep 60' >"$tmp/fifo" 2>"$tmp/err.1" &
pids+=($!)
if read -r -t 20 word <"$tmp/fifo" && [[ $word == ready ]]; then
	kill -TERM "${pids[1]}"
else
	fail "sigterm: the worker did not get ready"
	kill -9 "${pids[1]}"
fi
wait "${pids[1]}"
rc1=$?
wait "${pids[0]}"
rc0=$?
pids=()
[[ $rc0 == 0 && $rc1 == 143 ]] ||
	fail "sigterm: exit statuses $rc0 $rc1, want 0 143: $(cat "$tmp/err.0" "$tmp/err.1")"

# 6. Bad usage: exit 2 and one line on stderr.
usage_err() {
	local name=$1 pattern=$2 rc
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	((rc == 2)) || fail "$name: exit status $rc, want 2"
	[[ $(wc -l <"$tmp/err") == 1 && $(cat "$tmp/err") == "rdps-run: "* &&
		$(cat "$tmp/err") =~ $pattern ]] ||
		fail "$name: stderr '$(cat "$tmp/err")' does not match /$pattern/"
}
usage_err "no root" "RDPS_ROOT" env SLURM_PROCID=0 SLURM_NTASKS=2 "$RUN" -s 1 -- true
usage_err "bad root" "HOST:PORT" env RDPS_ROOT=nohost "$RUN" --rank 0 --size 2 -s 1 -- true
usage_err "no rank" "srun or mpirun" env RDPS_ROOT=127.0.0.1:1 "$RUN" -s 1 -- true
usage_err "half slurm" "SLURM_NTASKS" env RDPS_ROOT=127.0.0.1:1 SLURM_PROCID=0 "$RUN" -s 1 -- true
usage_err "no workers" "cannot have 2 shards" env RDPS_ROOT=127.0.0.1:1 "$RUN" --rank 0 --size 2 -s 2 -- true
usage_err "rank range" "out of range" env RDPS_ROOT=127.0.0.1:1 "$RUN" --rank 2 --size 2 -s 1 -- true
usage_err "no shards" "missing --shards" "$RUN" -- true
usage_err "no command" "missing command" "$RUN" -s 1
usage_err "bad model" "model 'xsp'" "$RUN" -s 1 -m xsp -- true
usage_err "unknown option" "unknown option" "$RUN" --frob -- true
usage_err "bad loss policy" "on-worker-loss 'maybe'" "$RUN" -s 1 --on-worker-loss maybe -- true
usage_err "continue under bsp" "needs --model ssp or asp" "$RUN" -s 1 --on-worker-loss continue -- true
"$RUN" --help >"$tmp/out" 2>"$tmp/err" && grep -q "^Usage: rdps-run" "$tmp/out" ||
	fail "--help"

if ((fails)); then
	echo "ps_slurm: $fails failure(s)" >&2
	exit 1
fi
echo "ps_slurm: all cases passed"
