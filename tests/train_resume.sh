#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_resume.sh RDPS_LAUNCH TRANSPORT - rdps-train resumes where the
# shards' checkpoints left it. A BSP training job (rdps-train is the
# binary next to rdps-launch) runs with checkpoints; once shard 1 has
# checkpointed clock KILL_AT it is killed with SIGKILL. Resumed with
# rdps-launch --resume, the job must go on at the resumed clock (its first
# progress line shows that clock and no samples of its own yet), stop at
# the same final clock as an uninterrupted job, and save the uninterrupted
# job's parameters byte for byte. Resuming the finished job again must do
# no clock: the checkpoints stay as they are. Waiting here polls files and
# process state; nothing sleeps to order events.
set -u

LAUNCH=${1:?usage: train_resume.sh RDPS_LAUNCH [TRANSPORT]}
TP=${2:-shm}
TRAIN=$(dirname "$LAUNCH")/rdps-train
EPOCHS=40
K=5
FINAL=$((EPOCHS * K))
KILL_AT=10
unset RDPS_LOG_LEVEL

source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.sh"
mkdir "$tmp/ref" "$tmp/ck"

# train CKPT-DIR SAVE [LAUNCH-OPTIONS]: one job of 2 shards, 2 workers.
train() {
	local dir=$1 save=$2
	shift 2
	"$LAUNCH" --timeout 100 -t "$TP" -s 2 -w 2 --checkpoint-dir "$dir" \
		"$@" -- "$TRAIN" run --samples 4000 --features 500 --nnz 40 \
		--epochs $EPOCHS --clocks-per-epoch $K --save-model "$save"
}

# 1. The reference: uninterrupted.
train "$tmp/ref" "$tmp/ref.bin" >"$tmp/ref.out" 2>"$tmp/ref.err" ||
	fail "reference job failed: $(tail -3 "$tmp/ref.err")"
c=$(ckpt_clock "$tmp/ref/shard-0.ckpt")
[[ $c == "$FINAL" ]] || fail "the reference job ended at clock $c, want $FINAL"

# 2. SIGKILL shard 1 once it saved clock KILL_AT.
train "$tmp/ck" "$tmp/out.bin" >/dev/null 2>"$tmp/killed.err" &
job_pid=$!
kill_shard_at "$tmp/ck" 1 2 $KILL_AT
[[ -e $tmp/out.bin ]] && fail "the killed job saved final parameters"

# 3. Resume: on from the resumed clock to the same final clock and bytes.
train "$tmp/ck" "$tmp/out.bin" --resume >"$tmp/resume.out" \
	2>"$tmp/resume.err" ||
	fail "resumed job failed: $(tail -3 "$tmp/resume.err")"
at=$(sed -n 's/.*resuming at clock \([0-9]*\).*/\1/p' "$tmp/resume.err")
[[ -n $at ]] && ((at >= KILL_AT - 1 && at < FINAL)) ||
	fail "resumed at clock '$at', want $((KILL_AT - 1))..$((FINAL - 1))"
first=$(grep -m1 ' clock ' "$tmp/resume.out")
[[ $first =~ ^\ +clock\ +$at\ .*\ 0\ samples/s ]] ||
	fail "first progress line after resuming at $at: '$first'" \
		"(want clock $at and 0 samples/s: none processed yet)"
grep -q "^final clock *$FINAL " "$tmp/resume.out" ||
	fail "the resumed job did not end at clock $FINAL:" \
		"$(tail -1 "$tmp/resume.out")"
for s in 0 1; do
	c=$(ckpt_clock "$tmp/ck/shard-$s.ckpt")
	[[ $c == "$FINAL" ]] ||
		fail "shard $s's checkpoint is of clock $c after resuming, want $FINAL"
done
cmp -s "$tmp/ref.bin" "$tmp/out.bin" ||
	fail "resumed parameters differ from the uninterrupted run's"

# 4. Resuming the finished job does no clock.
cp "$tmp/ck/shard-0.ckpt" "$tmp/ck/shard-1.ckpt" "$tmp"
train "$tmp/ck" "$tmp/again.bin" --resume >"$tmp/again.out" \
	2>"$tmp/again.err" ||
	fail "resuming the finished job failed: $(tail -3 "$tmp/again.err")"
grep -q "^final clock *$FINAL " "$tmp/again.out" ||
	fail "the finished job resumed did not stay at clock $FINAL:" \
		"$(tail -1 "$tmp/again.out")"
for s in 0 1; do
	cmp -s "$tmp/shard-$s.ckpt" "$tmp/ck/shard-$s.ckpt" ||
		fail "resuming the finished job changed shard $s's checkpoint" \
			"(clock $(ckpt_clock "$tmp/ck/shard-$s.ckpt"))"
done
cmp -s "$tmp/ref.bin" "$tmp/again.bin" ||
	fail "the finished job resumed saved other parameters"
echo "train_resume ($TP): killed shard 1 at clock >= $KILL_AT, resumed at" \
	"$at, ended at $FINAL with the uninterrupted run's parameters;" \
	"the finished job resumed did no clock"
