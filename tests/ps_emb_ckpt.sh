#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_emb_ckpt.sh RDPS_LAUNCH EMB_WORKER [TRANSPORT] - checkpoint and resume
# of embedding tables. A BSP job (emb_worker bsp: Adagrad, normal initial
# values, a pull and a push of power-law keys every clock) runs with
# checkpoints; once shard 1 has checkpointed clock KILL_AT it is killed
# with SIGKILL and the job must fail. Resumed with --resume it must finish
# with every shard's index and rows byte-identical to an uninterrupted
# run's. Waiting polls files and process state; nothing sleeps to order
# events.
set -u

LAUNCH=${1:?usage: ps_emb_ckpt.sh RDPS_LAUNCH EMB_WORKER [TRANSPORT]}
WORKER=${2:?usage: ps_emb_ckpt.sh RDPS_LAUNCH EMB_WORKER [TRANSPORT]}
TP=${3:-shm}
ITERS=150
KILL_AT=12
SEED=5
unset RDPS_LOG_LEVEL

source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.sh"

launch() {
	"$LAUNCH" --timeout 50 -t "$TP" -s 2 -w 4 --model bsp "$@"
}

# 1. The reference: no checkpoints, no failure.
launch -- "$WORKER" bsp $ITERS $SEED "$tmp/ref.bin" >/dev/null \
	2>"$tmp/ref.err" || fail "reference job failed: $(tail -3 "$tmp/ref.err")"

# 2. With checkpoints; SIGKILL shard 1 once it saved clock KILL_AT.
mkdir "$tmp/ck"
launch --checkpoint-dir "$tmp/ck" -- "$WORKER" bsp $ITERS $SEED \
	"$tmp/out.bin" >/dev/null 2>"$tmp/killed.err" &
job_pid=$!
kill_shard_at "$tmp/ck" 1 2 $KILL_AT
[[ -e $tmp/out.bin ]] && fail "the killed job wrote its index and rows"

# 3. Resume: the job finishes with the reference's index and rows.
launch --checkpoint-dir "$tmp/ck" --resume -- "$WORKER" bsp $ITERS $SEED \
	"$tmp/out.bin" >/dev/null 2>"$tmp/resume.err" ||
	fail "resumed job failed: $(tail -3 "$tmp/resume.err")"
at=$(sed -n 's/.*resuming at clock \([0-9]*\).*/\1/p' "$tmp/resume.err")
[[ -n $at ]] || fail "rdps-launch did not say where it resumed"
((at < ITERS)) || fail "resumed at clock $at, after the job's end"
cmp -s "$tmp/ref.bin" "$tmp/out.bin" ||
	fail "resumed index and rows differ from the uninterrupted run's"
echo "ps_emb_ckpt ($TP): killed shard 1 once it saved clock >= $KILL_AT," \
	"resumed at $at, index and rows identical to the uninterrupted run" \
	"($(stat -c %s "$tmp/ref.bin") B)"
