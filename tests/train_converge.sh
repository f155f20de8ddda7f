#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_converge.sh RDPS_LAUNCH RDPS_TRAIN - the trainers converge with
# their default learning rates on power-law data, under every consistency
# model. The data is made here by "rdps-train gen --zipf": lr on binary
# features whose popularity follows r^-1.1 (a few features in most
# samples, as in Criteo or kdd: plain SGD at the old default diverged on
# such data), mf with power-law users and items. Each job's held-out loss
# at the end must be below 0.8 x the starting one: BSP's first evaluation
# (the model before any push; under SSP and ASP rank 0's first
# evaluation may already see other workers' pushes).
set -u

LAUNCH=${1:?usage: train_converge.sh RDPS_LAUNCH RDPS_TRAIN}
TRAIN=${2:?}
unset RDPS_LOG_LEVEL RDPS_SHARDS RDPS_RANK RDPS_WORKERS

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
start=1
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# converge NAME MODEL ARGS...: a 3-worker job; its last loss against
# $start (set from the first evaluation of the bsp job, run first).
converge() {
	local name=$1 model=$2 csv=$tmp/$1.csv first last
	shift 2
	if ! timeout 100 "$LAUNCH" --timeout 90 -w 3 -m "$model" -- "$TRAIN" \
		run -q --pace 1 --csv "$csv" "$@" >"$tmp/out" 2>"$tmp/err"; then
		fail "$name: job failed: $(tail -2 "$tmp/err")"
		return
	fi
	[[ $model == bsp ]] && start=$(head -1 "$csv" | cut -d, -f4)
	first=$start
	last=$(tail -1 "$csv" | cut -d, -f4)
	if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.8 * a) }'; then
		echo "train_converge $name: loss $first -> $last"
	else
		fail "$name: loss $first -> $last, want below 0.8 x $first"
	fi
}

"$TRAIN" gen --workload lr --zipf 1.1 --binary --samples 20000 \
	--features 5000 --nnz 20 --test-samples 1000 -o "$tmp/lr.txt" \
	--test-out "$tmp/lr-test.txt" || fail "gen lr"
# The data is power-law: the most popular feature is in most samples.
top=$(cut -d' ' -f2- "$tmp/lr.txt" | tr ' ' '\n' | cut -d: -f1 | sort |
	uniq -c | sort -rn | head -1 | awk '{ print $1 }')
((top > 10000)) || fail "gen --zipf: top feature in $top of 20000 samples"
for m in bsp ssp asp absp; do
	converge "lr-$m" $m --data "$tmp/lr.txt" --test "$tmp/lr-test.txt" \
		--epochs 3
done
for m in bsp ssp asp absp; do
	converge "mf-$m" $m --workload mf --zipf 1.1 --samples 100000 \
		--users 1000 --items 800 --test-samples 5000 --epochs 3
done

if ((fails)); then
	echo "train_converge: $fails failure(s)" >&2
	exit 1
fi
echo "train_converge: all cases passed"
