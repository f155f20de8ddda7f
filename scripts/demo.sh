#!/usr/bin/env bash
# Quick-start demo: install what is missing, build, then run the embedded
# default job: a local shm server plus rdps-perf measuring one-sided
# read, write, fetch-add and compare-swap latency against it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
build=${RDPS_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "== rdps $(git describe --always 2>/dev/null || echo) demo: one-sided ops over shm (server process + client) =="
for op in write read fadd cas; do
	sizes=8
	[ "$op" = read ] || [ "$op" = write ] && sizes=8,4k,1m
	"$build/tools/rdps-perf" --local -o "$op" -s "$sizes" -n 10000 shm
done
echo "== bandwidth: 1 MiB reads, 16 outstanding =="
"$build/tools/rdps-perf" --local -o read -s 1m -n 2000 --bw 16 shm
