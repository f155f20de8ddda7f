# SPDX-License-Identifier: MIT
#
# ckpt_lib.sh - sourced by the checkpoint job scripts (ps_ckpt.sh,
# train_resume.sh, ckpt_dir.sh): $tmp, a directory removed at exit with
# the background job $job_pid killed; fail(); the clock of a checkpoint;
# waiting for one, and killing a shard once it has it. Waiting polls files
# and process state; nothing sleeps to order events.

tmp=$(mktemp -d)
job_pid=
cleanup() {
	[[ -n $job_pid ]] && kill -9 "$job_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# ckpt_clock FILE: the clock in a checkpoint's header (be64 at byte 32).
ckpt_clock() {
	local hex
	hex=$(od -An -tx1 -j32 -N8 "$1" 2>/dev/null | tr -d ' \n')
	[[ ${#hex} == 16 ]] && echo $((16#$hex))
}

# wait_ckpt DIR SHARD CLOCK: until DIR/shard-SHARD.ckpt is of clock CLOCK
# or later, while the job $job_pid runs; fails if it ends first.
wait_ckpt() {
	local c end=$((SECONDS + 40))
	while :; do
		c=$(ckpt_clock "$1/shard-$2.ckpt")
		[[ -n $c ]] && ((c >= $3)) && return 0
		kill -0 "$job_pid" 2>/dev/null ||
			fail "the job ended before shard $2 checkpointed clock $3"
		((SECONDS < end)) || fail "shard $2 never checkpointed clock $3"
		sleep 0.01
	done
}

# kill_shard_at DIR SHARD SHARDS CLOCK: SIGKILL the rdps-server of shard
# SHARD of SHARDS writing to DIR once it checkpointed CLOCK; then the job
# $job_pid must fail. Sets rc to its exit status.
kill_shard_at() {
	local victim
	wait_ckpt "$1" "$2" "$4"
	victim=$(pgrep -f -- "--shard $2 --shards $3 .*--checkpoint-dir $1")
	[[ -n $victim ]] || fail "cannot find shard $2's rdps-server process"
	kill -9 "$victim"
	wait "$job_pid"
	rc=$?
	job_pid=
	((rc != 0)) || fail "the job succeeded although shard $2 was killed"
}
