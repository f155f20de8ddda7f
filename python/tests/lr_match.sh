#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The numpy lr trainer (python/examples/lr_numpy.py) against rdps-train on
# the same generated data and seed, 4 BSP workers: its final held-out loss
# must be within 1e-6 of the C trainer's (they print 6 decimals).
# Usage: lr_match.sh BUILD_TOOLS_DIR PYTHON
set -euo pipefail
tools=$1 py=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$tools/rdps-train" gen --samples 4000 --test-samples 1000 --features 500 \
	--nnz 10 -o "$tmp/train.svm" --test-out "$tmp/test.svm"
train=(--epochs 3 --batch 50 --clocks-per-epoch 5)
bash "$here/run_job.sh" "$tools/rdps-launch" -w 4 -T 100 -- "$tools/rdps-train" \
	run --data "$tmp/train.svm" --test "$tmp/test.svm" "${train[@]}" -q \
	--csv "$tmp/c.csv"
want=$(tail -1 "$tmp/c.csv" | cut -d, -f4)
echo "lr_match: rdps-train final held-out loss $want"
bash "$here/run_job.sh" "$tools/rdps-launch" -w 4 -T 100 -- "$py" \
	"$here/../examples/lr_numpy.py" "$tmp/train.svm" "$tmp/test.svm" \
	"${train[@]}" --expect "$want" --tol 1e-6
