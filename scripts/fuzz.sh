#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Build the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang and fuzz each
# for a set time, one after the other, starting from its seed corpus
# (tests/fuzz/corpus/NAME), then print per target: executions, exec/s,
# crashes, corpus size. Not part of CI: the seed corpora are replayed by
# ctest in every build instead.
#
# Usage: scripts/fuzz.sh [options] [TARGET...]
#   -t, --time=SECONDS   fuzzing time per target (60)
#   -b, --build=DIR      clang build tree (${RDPS_BUILD_DIR:-build}-fuzz)
#   -o, --output=FILE    also write the table as markdown to FILE
#   -m, --min-execs=N    count a target that ran fewer executions as failed
#                        (0: no minimum)
#   -h, --help           this text
# TARGET: wire, url, config, rdv, shm_hello, verbs_hello, libsvm, ratings
# (default: every target the build has). New inputs go to
# DIR/fuzz/corpus/NAME (the tree's seeds are never written), crash inputs
# to DIR/fuzz/artifacts/NAME/, libFuzzer's output to DIR/fuzz/NAME.log.
# A target stops at its first crash (crashes is then 1: see the log and
# reproduce with DIR/tests/fuzz/fuzz_NAME ARTIFACT).
# Exit status: 0 if every target ran without a crash (and reached
# --min-execs), 1 otherwise, 2 for bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

usage() { awk 'NR > 3 && /^#/ { sub(/^# ?/, ""); print; next } NR > 3 { exit }' "$0"; }

secs=60
build=${RDPS_BUILD_DIR:-build}-fuzz
out=
min_execs=0
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
	-t | --time) secs=${2:?}; shift ;;
	--time=*) secs=${1#*=} ;;
	-b | --build) build=${2:?}; shift ;;
	--build=*) build=${1#*=} ;;
	-o | --output) out=${2:?}; shift ;;
	--output=*) out=${1#*=} ;;
	-m | --min-execs) min_execs=${2:?}; shift ;;
	--min-execs=*) min_execs=${1#*=} ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) targets+=("$1") ;;
	esac
	shift
done
[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: bad --time '$secs': want whole seconds >= 1" >&2; exit 2; }
[[ $min_execs =~ ^[0-9]+$ ]] || { echo "fuzz.sh: bad --min-execs '$min_execs'" >&2; exit 2; }
command -v clang >/dev/null || { echo "fuzz.sh: clang not found: scripts/setup.sh --test" >&2; exit 1; }

echo "fuzz.sh: configuring and building the fuzz targets in $build" >&2
CC=clang cmake -S "$src" -B "$build" -DRDPS_FUZZ=ON -DRDPS_BUILD_TOOLS=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.cmake.log" 2>&1 ||
	{ echo "fuzz.sh: cmake failed, see $build.cmake.log" >&2; exit 1; }
have=$(cmake --build "$build" --target help | sed -n 's/^\.\.\. fuzz_\([a-z_]*\)$/\1/p' | grep -v '_replay$' || true)
if [ ${#targets[@]} -eq 0 ]; then
	for d in tests/fuzz/corpus/*/; do
		t=$(basename "$d")
		grep -qx "$t" <<<"$have" && targets+=("$t")
	done
fi
for t in "${targets[@]}"; do
	grep -qx "$t" <<<"$have" || { echo "fuzz.sh: no target '$t' in this build (have: $(echo $have))" >&2; exit 2; }
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz targets built" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >"$build.build.log" 2>&1 ||
	{ echo "fuzz.sh: build failed, see $build.build.log" >&2; tail -20 "$build.build.log" >&2; exit 1; }

work=$build/fuzz
mkdir -p "$work"
rows=()
fail=0
for t in "${targets[@]}"; do
	seeds=tests/fuzz/corpus/$t
	corpus=$work/corpus/$t
	art=$work/artifacts/$t
	log=$work/$t.log
	rm -rf "$art"
	mkdir -p "$corpus" "$art"
	nseeds=$(find "$seeds" -maxdepth 1 -type f | wc -l)
	echo "fuzz.sh: $t: ${secs}s from $nseeds seeds" >&2
	rc=0
	"$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$art/" \
		"$corpus" "$seeds" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	# The last status line ("#N DONE cov: C ft: F corp: U/Bb ...").
	corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
	crashes=$(find "$art" -type f | wc -l)
	result=ok
	if [ "$crashes" -gt 0 ] || [ "$rc" -ne 0 ]; then
		result="CRASH (rc $rc): $(find "$art" -type f | head -1)"
		[ "$crashes" -gt 0 ] || crashes=1
		fail=1
	elif [ "${execs:-0}" -lt "$min_execs" ]; then
		result="below $min_execs execs"
		fail=1
	fi
	rows+=("$t|$secs|${execs:-?}|${rate:-?}|$crashes|$nseeds|${corp:-?}|${cov:-?}|$result")
	echo "fuzz.sh: $t: ${execs:-?} execs, ${rate:-?}/s, $crashes crashes, corpus ${corp:-?}: $result" >&2
done

hdr="target|seconds|execs|exec/s|crashes|seeds|corpus (inputs/bytes)|cov (edges)|result"
fmt='%-12s %7s %10s %8s %7s %5s %21s %11s  %s\n'
for r in "$hdr" "${rows[@]}"; do
	IFS='|' read -r -a f <<<"$r"
	# shellcheck disable=SC2059
	printf "$fmt" "${f[@]}"
done
if [ -n "$out" ]; then
	{
		echo "# rdps fuzzing: $(date -u +%Y-%m-%dT%H:%MZ), ${secs}s per target"
		echo
		echo "Command: \`scripts/fuzz.sh -t $secs\` ($(clang --version | head -1), $(nproc) cores)"
		echo
		echo "| ${hdr//|/ | } |"
		echo "|$(sed 's/[^|]*/---/g' <<<"$hdr")|"
		for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
	} >"$out"
	echo "fuzz.sh: markdown table in $out" >&2
fi
exit $fail
