#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_once.sh RDPS_LAUNCH RDPS_TRAIN TRANSPORT - A-BSP processes every
# sample exactly once per pass over a worker's partition, under random
# delays, on TRANSPORT (shm, tcp; tests/train_rxe.sh runs it over verbs).
#
# Each job runs "rdps-train run --check-once": every worker counts each
# sample's processings (a sample must have been processed exactly p times
# when pass p reaches it), and at the end compares the samples the shards
# counted for it (its stats pushes, partial rounds included) with its own
# count. A worker prints "once: worker W: ... ok" or fails the job. Here we
# check the job, every worker's line, and that rounds really were cut
# (else nothing was tested): at least one worker was cut short, and no
# round had two winners (the cut counts of all workers add up to at most
# the rounds). The delays are random:P:Fx stragglers (seeded, so a failure
# can be re-run), plus one persistent straggler.
set -u

LAUNCH=${1:?usage: train_once.sh RDPS_LAUNCH RDPS_TRAIN TRANSPORT}
TRAIN=${2:?}
TP=${3:?}
ADDR=${TRAIN_ONCE_ADDR:-127.0.0.1}
unset RDPS_LOG_LEVEL

. "$(dirname "$0")/train_lib.sh" # $tmp, fail, job

# job NAME MODEL WORKERS ARGS...: run it, check the once lines; sets
# $cut_short and $cut_won (sums over the workers) and $iters (worker 0).
job() {
	local name=$1 model=$2 w=$3 out=$tmp/$1.out line n=0
	shift 3
	timeout 100 "$LAUNCH" --timeout 90 -t "$TP" -a "$ADDR" -s 2 -w "$w" \
		-m "$model" -- "$TRAIN" run --check-once -q --pace 1 "$@" \
		>"$out" 2>"$tmp/$name.err"
	rc=$?
	cut_short=0 cut_won=0 iters=0
	if ((rc != 0)); then
		fail "$name: exit $rc: $(grep -v '^rdps-launch: [0-9]' "$tmp/$name.err" | tail -3)"
		return
	fi
	for ((r = 0; r < w; r++)); do
		line=$(grep "^once: worker $r: " "$out")
		if [[ ! $line =~ \ in\ ([0-9]+)\ iterations\ \(([0-9]+)\ cut\ short,\ ([0-9]+)\ cut\ by\ it\).*every\ sample\ once\ per\ pass:\ ok$ ]]; then
			fail "$name: worker $r: no 'ok' line: '$line'"
			continue
		fi
		((r == 0)) && iters=${BASH_REMATCH[1]}
		cut_short=$((cut_short + BASH_REMATCH[2]))
		cut_won=$((cut_won + BASH_REMATCH[3]))
		n=$((n + 1))
	done
	echo "train_once[$TP] $name: $n workers ok, $iters rounds, $cut_short cut short, $cut_won cuts"
}

lr=(--workload lr --samples 24000 --test-samples 500 --features 400
	--nnz 8 --batch 40 --epochs 4 --clocks-per-epoch 3)
mf=(--workload mf --samples 30000 --test-samples 500 --users 200
	--items 200 --true-rank 4 --batch 40 --epochs 4 --clocks-per-epoch 3)

seeds="1 2"
[[ -n ${TRAIN_ONCE_QUICK:-} ]] && seeds=1
for seed in $seeds; do
	job "absp-lr-$seed" absp 4 "${lr[@]}" --seed $seed \
		--stragglers 1:2x,random:0.3:4x
	((cut_short > 0)) || fail "absp-lr-$seed: no round was cut short: nothing tested"
	((cut_won >= 1 && cut_won <= iters)) ||
		fail "absp-lr-$seed: $cut_won cuts in $iters rounds (one winner a round at most)"
done
# A persistent 2x straggler as in the lr jobs: with random delays alone,
# a tcp run could end with no worker still busy when the cut came (1 run
# in 5-25 under load), and then nothing was tested.
# Whether a round is cut short is up to the scheduler (the newcomer's
# fresh root, with CI beside it, once saw 12 cuts and nobody cut short):
# a run that tested nothing is run again with the next seed, up to 3
# runs; each run's once lines are checked all the same.
for seed in 1 2 3; do
	job absp-mf absp 3 "${mf[@]}" --seed $seed \
		--stragglers 1:2x,random:0.5:3x
	((cut_short > 0)) && break
	echo "train_once[$TP] absp-mf: seed $seed cut nobody short; next seed"
done
((cut_short > 0)) || fail "absp-mf: no round was cut short in 3 runs: nothing tested"
((cut_won >= 1 && cut_won <= iters)) ||
	fail "absp-mf: $cut_won cuts in $iters rounds"
# The other models never cut: whole passes, one per 3 clocks. In the rxe
# VM (TRAIN_ONCE_QUICK, slow emulated CPUs) the A-BSP jobs are enough.
if [[ -n ${TRAIN_ONCE_QUICK:-} ]]; then
	((fails)) && exit 1
	echo "train_once[$TP]: all jobs passed"
	exit 0
fi
job bsp-lr bsp 3 "${lr[@]}" --stragglers random:0.3:4x
((cut_short == 0 && cut_won == 0 && iters == 12)) ||
	fail "bsp-lr: $cut_short cut short, $cut_won cuts, $iters rounds; want 0, 0, 12"
job ssp-lr ssp 3 "${lr[@]}" --stragglers random:0.3:4x
((iters == 12)) || fail "ssp-lr: $iters rounds, want 12"

if ((fails)); then
	echo "train_once[$TP]: $fails failure(s)" >&2
	exit 1
fi
echo "train_once[$TP]: all jobs passed"
