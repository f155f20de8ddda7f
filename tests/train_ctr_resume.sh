#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_ctr_resume.sh RDPS_LAUNCH TRANSPORT - the click-through workload
# (rdps-train run --workload ctr, its weights in an embedding table)
# resumes where the shards' checkpoints left it. A BSP ctr job (rdps-train
# is the binary next to rdps-launch) runs with checkpoints; once shard 1
# has checkpointed clock KILL_AT it is killed with SIGKILL. Resumed with
# rdps-launch --resume, the job must go on at the resumed clock (its first
# progress line shows that clock and no samples of its own yet), print the
# uninterrupted job's held-out losses from there on and its final line
# (clock, loss, auc), and end with every shard's model (embedding index,
# rows and Adagrad sums, the dense part) byte for byte the uninterrupted
# job's. Resuming the finished job again must do no clock: the checkpoints
# stay as they are; resuming it with other sizes is refused in one line.
# Waiting here polls files and process state; nothing
# sleeps to order events.
set -u

LAUNCH=${1:?usage: train_ctr_resume.sh RDPS_LAUNCH [TRANSPORT]}
TP=${2:-shm}
TRAIN=$(dirname "$LAUNCH")/rdps-train
EPOCHS=8
K=5
FINAL=$((EPOCHS * K))
KILL_AT=8
unset RDPS_LOG_LEVEL

source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.sh"
mkdir "$tmp/ref" "$tmp/ck"

# train CKPT-DIR CSV [LAUNCH-OPTIONS]: one job of 2 shards, 2 workers.
train() {
	local dir=$1 csv=$2
	shift 2
	"$LAUNCH" --timeout 100 -t "$TP" -a 127.0.0.1 -s 2 -w 2 -m bsp \
		--checkpoint-dir "$dir" "$@" -- "$TRAIN" run --workload ctr \
		--pace 1 --samples 2000 --features 200 --test-samples 300 \
		--epochs $EPOCHS --clocks-per-epoch $K --csv "$csv"
}

# be FILE OFFSET BYTES: the big-endian integer at OFFSET.
be() {
	local hex
	hex=$(od -An -tx1 -j"$2" -N"$3" "$1" | tr -d ' \n')
	echo $((16#$hex))
}

# model FILE OUT: checkpoint FILE with what the run's timing decides
# zeroed: the "stats" table (its busy seconds) and the checksum over it.
# What is left is the header, the tables' descriptions, the ctr tables'
# values and Adagrad sums, and the embedding index and rows (checkpoint.h).
model() {
	local f=$1 out=$2 nt at i d name len size
	cp "$f" "$out"
	nt=$(be "$f" 20 4)
	at=$((40 + nt * 80))
	(($(be "$f" 8 4) >= 2)) && at=$((at + 8 + $(be "$f" "$at" 4) * 112))
	for ((i = 0; i < nt; i++)); do
		d=$((40 + i * 80))
		name=$(dd if="$f" bs=1 skip=$d count=32 2>/dev/null | tr -d '\0')
		len=$((($(be "$f" $((d + 48)) 8) - $(be "$f" $((d + 40)) 8)) *
			$(be "$f" $((d + 72)) 4)))
		(($(be "$f" $((d + 76)) 4))) && len=$((2 * len))
		[[ $name == stats ]] && ((len)) &&
			dd if=/dev/zero of="$out" bs=1 seek=$at count=$len \
				conv=notrunc 2>/dev/null
		at=$((at + len))
	done
	size=$(stat -c %s "$f")
	((at < size - 8)) || fail "$f: no embedding rows after its tables"
	dd if=/dev/zero of="$out" bs=1 seek=$((size - 8)) count=8 \
		conv=notrunc 2>/dev/null
}

# final OUT: the final progress line without its timing (clock, loss, auc).
final() {
	sed -n 's/^final clock *\([0-9]*\) .* loss \([0-9.]*\) .* auc \([0-9.]*\).*/\1 \2 \3/p' "$1"
}

# 1. The reference: uninterrupted.
train "$tmp/ref" "$tmp/ref.csv" >"$tmp/ref.out" 2>"$tmp/ref.err" ||
	fail "reference job failed: $(tail -3 "$tmp/ref.err")"
want=$(final "$tmp/ref.out")
[[ $want == "$FINAL "* ]] ||
	fail "the reference job's final line: '$(tail -1 "$tmp/ref.out")'"
for s in 0 1; do
	c=$(ckpt_clock "$tmp/ref/shard-$s.ckpt")
	[[ $c == "$FINAL" ]] ||
		fail "the reference's shard $s ended at clock $c, want $FINAL"
	model "$tmp/ref/shard-$s.ckpt" "$tmp/ref-$s.model"
done

# 2. SIGKILL shard 1 once it saved clock KILL_AT.
train "$tmp/ck" "$tmp/killed.csv" >"$tmp/killed.out" 2>"$tmp/killed.err" &
job_pid=$!
kill_shard_at "$tmp/ck" 1 2 $KILL_AT
grep -q '^final' "$tmp/killed.out" && fail "the killed job printed a final line"

# 3. Resume: on from the resumed clock to the uninterrupted job's end.
train "$tmp/ck" "$tmp/resume.csv" --resume >"$tmp/resume.out" \
	2>"$tmp/resume.err" ||
	fail "resumed job failed: $(tail -3 "$tmp/resume.err")"
at=$(sed -n 's/.*resuming at clock \([0-9]*\).*/\1/p' "$tmp/resume.err")
[[ -n $at ]] && ((at >= KILL_AT - 1 && at < FINAL)) ||
	fail "resumed at clock '$at', want $((KILL_AT - 1))..$((FINAL - 1))"
first=$(grep -m1 ' clock ' "$tmp/resume.out")
[[ $first =~ ^\ +clock\ +$at\ .*\ 0\ samples/s ]] ||
	fail "first progress line after resuming at $at: '$first'" \
		"(want clock $at and 0 samples/s: none processed yet)"
got=$(final "$tmp/resume.out")
[[ $got == "$want" ]] ||
	fail "resumed final line '$got', the uninterrupted job's '$want'"
# The held-out loss of every clock from the resumed one on (clock, loss).
cmp -s <(awk -F, -v a="$at" '$2 >= a { print $2, $4 }' "$tmp/ref.csv") \
	<(cut -d, -f2,4 --output-delimiter=' ' "$tmp/resume.csv") ||
	fail "resumed losses per clock differ from the uninterrupted job's"
for s in 0 1; do
	c=$(ckpt_clock "$tmp/ck/shard-$s.ckpt")
	[[ $c == "$FINAL" ]] ||
		fail "shard $s's checkpoint is of clock $c after resuming, want $FINAL"
	model "$tmp/ck/shard-$s.ckpt" "$tmp/ck-$s.model"
	cmp -s "$tmp/ref-$s.model" "$tmp/ck-$s.model" ||
		fail "shard $s's model after resuming differs from the" \
			"uninterrupted job's"
done

# 4. Resuming the finished job does no clock.
cp "$tmp/ck/shard-0.ckpt" "$tmp/ck/shard-1.ckpt" "$tmp"
train "$tmp/ck" "$tmp/again.csv" --resume >"$tmp/again.out" \
	2>"$tmp/again.err" ||
	fail "resuming the finished job failed: $(tail -3 "$tmp/again.err")"
got=$(final "$tmp/again.out")
[[ $got == "$want" ]] ||
	fail "the finished job resumed printed '$got', want '$want'"
for s in 0 1; do
	cmp -s "$tmp/shard-$s.ckpt" "$tmp/ck/shard-$s.ckpt" ||
		fail "resuming the finished job changed shard $s's checkpoint" \
			"(clock $(ckpt_clock "$tmp/ck/shard-$s.ckpt"))"
done

# 5. Resumed with other sizes (--features: another table capacity), the
# embedding table is refused in one line naming it, not trained afresh.
mkdir "$tmp/other"
cp "$tmp/ck"/shard-?.ckpt "$tmp/other"
"$LAUNCH" --timeout 100 -t "$TP" -a 127.0.0.1 -s 2 -w 2 -m bsp \
	--checkpoint-dir "$tmp/other" --resume -- "$TRAIN" run --workload ctr \
	-q --pace 1 --samples 2000 --features 300 --test-samples 300 \
	--epochs $((EPOCHS + 1)) --clocks-per-epoch $K >/dev/null \
	2>"$tmp/other.err" && fail "resumed with other --features: succeeded"
grep '^rdps-train: ' "$tmp/other.err" | sort -u >"$tmp/other.err1"
(($(wc -l <"$tmp/other.err1") == 1)) &&
	grep -q "embedding table 'ctr-emb' exists with another" "$tmp/other.err1" ||
	fail "resumed with other --features: '$(cat "$tmp/other.err1")'"
echo "train_ctr_resume ($TP): killed shard 1 at clock >= $KILL_AT, resumed" \
	"at $at, ended at $FINAL with the uninterrupted job's losses" \
	"(final '$want') and model bytes; the finished job resumed did no clock," \
	"with other sizes it was refused"
