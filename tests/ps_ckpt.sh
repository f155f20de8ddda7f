#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_ckpt.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT] - checkpoint and
# resume. A BSP job (ps_worker bsp) runs with checkpoints; once shard 1
# has checkpointed clock KILL_AT, it is killed with SIGKILL. The job must
# stop with an error naming the lost shard; resumed with --resume it must
# finish, and its final parameters must equal an uninterrupted run's, byte
# for byte. Then rdps-server must refuse a corrupt checkpoint and one of
# another job layout, naming the reason. Waiting here polls files
# and process state; nothing sleeps to order events.
set -u

LAUNCH=${1:?usage: ps_ckpt.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT]}
SERVER=${2:?usage: ps_ckpt.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT]}
WORKER=${3:?usage: ps_ckpt.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT]}
TP=${4:-shm}
ITERS=60
KILL_AT=12
SEED=11
unset RDPS_LOG_LEVEL

source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.sh"

launch() {
	"$LAUNCH" --timeout 50 -t "$TP" -s 2 -w 4 "$@"
}

# 1. The reference: no checkpoints, no failure.
launch -- "$WORKER" bsp $ITERS $SEED "$tmp/ref.bin" >/dev/null 2>"$tmp/ref.err" ||
	fail "reference job failed: $(tail -3 "$tmp/ref.err")"

# 2. With checkpoints; SIGKILL shard 1 once it saved clock KILL_AT.
mkdir "$tmp/ck"
"$LAUNCH" --timeout 50 -t "$TP" -s 2 -w 4 --checkpoint-dir "$tmp/ck" \
	-- "$WORKER" bsp $ITERS $SEED "$tmp/out.bin" >/dev/null \
	2>"$tmp/killed.err" &
job_pid=$!
kill_shard_at "$tmp/ck" 1 2 $KILL_AT
grep -q "shard 1" "$tmp/killed.err" ||
	fail "no error names shard 1: $(tail -3 "$tmp/killed.err")"
[[ -e $tmp/out.bin ]] && fail "the killed job wrote final parameters"

# 3. Resume: the job finishes with the reference's parameters.
launch --checkpoint-dir "$tmp/ck" --resume -- "$WORKER" bsp $ITERS $SEED \
	"$tmp/out.bin" >/dev/null 2>"$tmp/resume.err" ||
	fail "resumed job failed: $(tail -3 "$tmp/resume.err")"
grep -q "resuming at clock" "$tmp/resume.err" ||
	fail "rdps-launch did not say where it resumed"
cmp -s "$tmp/ref.bin" "$tmp/out.bin" ||
	fail "resumed parameters differ from the uninterrupted run's"
at=$(sed -n 's/.*resuming at clock \([0-9]*\).*/\1/p' "$tmp/resume.err")

# 4. Refusals, each one line from rdps-server, which then exits 1.
refuse() {
	local name=$1 pattern=$2 out
	shift 2
	out=$(timeout 10 "$SERVER" --listen "shm://ckpt-$$-$name" --shard 0 \
		--shards 2 --model bsp --checkpoint-dir "$tmp/ck" "$@" 2>&1)
	local rc=$?
	((rc == 1)) || fail "$name: rdps-server exit $rc, want 1: $out"
	[[ $out =~ $pattern ]] || fail "$name: '$out' does not match /$pattern/"
}
refuse layout "4 workers.*this shard is 0 of 2, 3 workers" --workers 3 --resume
refuse noclock "no checkpoint of clock 99999" --workers 4 --resume=99999
c0=$(ckpt_clock "$tmp/ck/shard-0.ckpt")
printf '\x55' | dd of="$tmp/ck/shard-0.ckpt" bs=1 seek=200 conv=notrunc status=none
refuse corrupt "checksum mismatch" --workers 4 --resume="$c0"

# 5. rdps-launch --resume refusals name what is wrong and how to fix it.
launch_refuse() {
	local name=$1 pattern=$2 out rc
	shift 2
	out=$(launch "$@" -- "$WORKER" bsp $ITERS $SEED "$tmp/x.bin" 2>&1 >/dev/null)
	rc=$?
	((rc == 1)) || fail "$name: rdps-launch exit $rc, want 1: $out"
	(($(wc -l <<<"$out") == 1)) || fail "$name: not one line: $out"
	[[ $out =~ $pattern ]] || fail "$name: '$out' does not match /$pattern/"
}
# Files of two runs in one directory: each shard's clocks, and why.
launch --checkpoint-dir "$tmp/other" -- "$WORKER" bsp 3 $SEED "$tmp/o3.bin" \
	>/dev/null 2>"$tmp/other.err" ||
	fail "short job failed: $(tail -3 "$tmp/other.err")"
mkdir "$tmp/mixed"
cp "$tmp/other/shard-0.ckpt" "$tmp/other/shard-0.ckpt.prev" "$tmp/mixed"
cp "$tmp/ck/shard-1.ckpt" "$tmp/ck/shard-1.ckpt.prev" "$tmp/mixed"
launch_refuse mixed "no clock has a checkpoint of every shard in $tmp/mixed: shard 0 has 3 and 2, shard 1 has [0-9]+ and [0-9]+; .*different runs \\(give each job its own --checkpoint-dir" \
	--checkpoint-dir "$tmp/mixed" --resume
# The newest file corrupt (step 4) and the .prev one too: both named.
printf '\x55' | dd of="$tmp/ck/shard-0.ckpt.prev" bs=1 seek=200 conv=notrunc status=none
launch_refuse corrupt2 "no usable checkpoint of shard 0: checkpoint $tmp/ck/shard-0.ckpt: checksum mismatch.*; checkpoint $tmp/ck/shard-0.ckpt.prev: checksum mismatch.*restore good copies" \
	--checkpoint-dir "$tmp/ck" --resume
refuse corrupt2 "no usable checkpoint of shard 0: checkpoint $tmp/ck/shard-0.ckpt: checksum mismatch.*; checkpoint $tmp/ck/shard-0.ckpt.prev: checksum mismatch.*restore good copies" \
	--workers 4 --resume
echo "ps_ckpt ($TP): killed shard 1 once it saved clock >= $KILL_AT, resumed at $at," \
	"parameters identical to the uninterrupted run; bad checkpoints refused," \
	"mixed and corrupt directories named"
