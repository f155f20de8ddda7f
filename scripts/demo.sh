#!/usr/bin/env bash
# Quick-start demo: install what is missing, build, then train. First one
# A-BSP job (a shm shard and 4 workers, worker 1 three times slower than
# the others) printing a line per clock, then the experiment that trains
# the same sparse logistic regression with BSP, SSP (slack 1, 3), ASP and
# A-BSP and prints time to target loss, speedup against BSP and final
# loss, with the loss curves plotted in $out/experiment.svg.
#   scripts/demo.sh          small and quick (under a minute on 2 cores)
#   scripts/demo.sh --full   the full experiment at its default sizes: lr,
#                            mf and lasso, stragglers 1:3x, random:0.1:3x
#                            and load:1:0.5, 3 repeats (135 runs: about
#                            an hour on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
full=0
case "${1:-}" in
"") ;;
--full) full=1 ;;
-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
*) echo "demo.sh: unknown option '$1' (use --full)" >&2; exit 2 ;;
esac
./scripts/setup.sh
build=${RDPS_BUILD_DIR:-build}
out=${RDPS_DEMO_OUT:-$build/demo}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
tools=$build/tools
# The demo's data: 100,000 samples of 40 among 5,000 features (an eighth
# of the default samples, each 2.5 times cheaper), 6 epoch-equivalents.
small=(--samples 100000 --features 5000 --nnz 40 --epochs 6)

echo "== rdps $(git describe --always 2>/dev/null || echo) demo: training on the parameter server =="
echo "== one A-BSP job: 4 workers over shm, worker 1 is 3x slower (--stragglers 1:3x) =="
"$tools/rdps-launch" -w 4 -m absp -- "$tools/rdps-train" run --workload lr \
	"${small[@]}" --stragglers 1:3x
if ((full)); then
	echo "== the experiment: every model, every workload, three kinds of stragglers =="
	"$tools/rdps-train" experiment --out "$out" --json "$out/experiment.json"
else
	echo "== the experiment: BSP, SSP1, SSP3, ASP, A-BSP on lr with a 3x straggler =="
	"$tools/rdps-train" experiment --workload lr --stragglers 1:3x \
		"${small[@]}" --out "$out" --json "$out/experiment.json"
fi
echo "== open $out/experiment.svg for the loss curves =="
