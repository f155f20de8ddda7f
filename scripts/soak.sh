#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Soak test (not in CI): one long shm job of rdps-launch, 16 workers and 4
# shards by default, running tests/ps_worker's soak mode (random dense and
# sparse pushes with random pauses, in BSP epochs, until the time is up),
# all built with AddressSanitizer. At the end it checks
#   - the exactly-once sum: rank 0 regenerates every worker's pushes and
#     compares every element of the table exactly ("OK sum");
#   - memory growth: each shard's RSS (VmRSS from /proc), sampled during
#     the run, from the first sample after warm-up to the last;
#   - leaks: LeakSanitizer runs when each shard and worker exits (shards
#     stop cleanly on the launcher's SIGTERM); any report fails the run.
# Prints a progress line per sample.
#
# Usage: scripts/soak.sh [options]
#   -m, --minutes=M         run time, may be fractional (3)
#   -w, --workers=N         workers (16)
#   -s, --shards=N          shards (4)
#   -d, --delay-us=US       longest random pause before a push (2000)
#       --model=M           bsp, ssp or absp (bsp)
#   -i, --interval=S        seconds between RSS samples (10)
#   -g, --max-growth-mb=MB  fail if a shard's RSS grew more after warm-up
#                           (16)
#   -b, --build=DIR         ASan build tree (${RDPS_BUILD_DIR:-build}-soak)
#   -o, --output=FILE       also write the report as markdown to FILE
#   -h, --help              this text
# Samples go to DIR/soak/rss.csv, the job's output to DIR/soak/job.out and
# job.err, sanitizer reports to DIR/soak/asan.PID.
# Exit status: 0 if all three checks passed, 1 if one failed, 2 for bad
# usage. Needs procps (pgrep): scripts/setup.sh --soak.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

usage() { awk 'NR > 3 && /^#/ { sub(/^# ?/, ""); print; next } NR > 3 { exit }' "$0"; }

minutes=3
workers=16
shards=4
delay_us=2000
model=bsp
interval=10
max_growth_mb=16
build=${RDPS_BUILD_DIR:-build}-soak
out=
while [ $# -gt 0 ]; do
	case "$1" in
	-m | --minutes) minutes=${2:?}; shift ;;
	--minutes=*) minutes=${1#*=} ;;
	-w | --workers) workers=${2:?}; shift ;;
	--workers=*) workers=${1#*=} ;;
	-s | --shards) shards=${2:?}; shift ;;
	--shards=*) shards=${1#*=} ;;
	-d | --delay-us) delay_us=${2:?}; shift ;;
	--delay-us=*) delay_us=${1#*=} ;;
	--model) model=${2:?}; shift ;;
	--model=*) model=${1#*=} ;;
	-i | --interval) interval=${2:?}; shift ;;
	--interval=*) interval=${1#*=} ;;
	-g | --max-growth-mb) max_growth_mb=${2:?}; shift ;;
	--max-growth-mb=*) max_growth_mb=${1#*=} ;;
	-b | --build) build=${2:?}; shift ;;
	--build=*) build=${1#*=} ;;
	-o | --output) out=${2:?}; shift ;;
	--output=*) out=${1#*=} ;;
	-h | --help) usage; exit 0 ;;
	*) echo "soak.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
bad() { echo "soak.sh: $*" >&2; exit 2; }
[[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || bad "bad --minutes '$minutes'"
secs=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 0.5 }')
[ "$secs" -ge 1 ] || bad "--minutes '$minutes' is under a second"
for v in workers shards delay_us interval max_growth_mb; do
	[[ ${!v} =~ ^[0-9]+$ ]] || bad "bad --${v//_/-} '${!v}'"
done
[ "$workers" -ge 1 ] && [ "$shards" -ge 1 ] && [ "$interval" -ge 1 ] ||
	bad "workers, shards and interval must be at least 1"
case "$model" in bsp | ssp | absp) ;; *) bad "bad --model '$model': bsp, ssp or absp" ;; esac
command -v pgrep >/dev/null || { echo "soak.sh: pgrep not found: scripts/setup.sh --soak" >&2; exit 1; }

echo "soak.sh: building rdps-launch, rdps-server and ps_worker with ASan in $build" >&2
mkdir -p "$build"
cmake -S "$src" -B "$build" -DRDPS_SANITIZER=address \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/soak-cmake.log" 2>&1 ||
	{ echo "soak.sh: cmake failed, see $build/soak-cmake.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" --target rdps-launch rdps-server ps_worker \
	>"$build/soak-build.log" 2>&1 ||
	{ echo "soak.sh: build failed, see $build/soak-build.log" >&2; tail -20 "$build/soak-build.log" >&2; exit 1; }

dir=$build/soak
rm -rf "$dir"
mkdir -p "$dir"
seed=$(( $(date +%s) % 100000 ))
# Leaks are reported (LeakSanitizer, at each process's exit) into
# asan.PID files; a small quarantine keeps freed memory out of the RSS.
export ASAN_OPTIONS="detect_leaks=1:log_path=$dir/asan:quarantine_size_mb=16"
cmd=("$build/tools/rdps-launch" -s "$shards" -w "$workers" --model "$model"
	--timeout $((secs + 600)) -- "$build/tests/ps_worker" soak "$secs" "$seed" "$delay_us")
echo "soak.sh: ${cmd[*]}" >&2
start=$(date +%s)
"${cmd[@]}" >"$dir/job.out" 2>"$dir/job.err" &
lpid=$!

# The shards: rdps-server children of the launcher.
spids=()
for _ in $(seq 1 300); do
	mapfile -t spids < <(pgrep -P "$lpid" -x rdps-server || true)
	[ ${#spids[@]} -ge "$shards" ] && break
	kill -0 "$lpid" 2>/dev/null || break
	sleep 0.1
done
[ ${#spids[@]} -eq "$shards" ] ||
	echo "soak.sh: found ${#spids[@]} of $shards shards; RSS figures cover those" >&2

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
echo "t_s,${spids[*]/#/shard_pid_}" | tr ' ' ',' >"$dir/rss.csv"
next=$start
while kill -0 "$lpid" 2>/dev/null; do
	now=$(date +%s)
	if [ "$now" -ge "$next" ]; then
		row="$((now - start))"
		line=""
		for p in "${spids[@]}"; do
			r=$(rss_kb "$p")
			row+=",${r:-}"
			if [ -n "$r" ]; then line+=" $((r / 1024))"; else line+=" gone"; fi
		done
		echo "$row" >>"$dir/rss.csv"
		prog=$(grep '^soak:' "$dir/job.out" | tail -1 || true)
		printf 'soak.sh: %4ds/%ds  shard RSS MB:%s  %s\n' "$((now - start))" "$secs" "$line" "$prog" >&2
		next=$((next + interval))
	fi
	sleep 1
done
rc=0
wait "$lpid" || rc=$?
elapsed=$(( $(date +%s) - start ))

# Checks ------------------------------------------------------------------
fail=0
sum_line=$(grep '^OK sum' "$dir/job.out" || true)
pushes=$(sed -n 's/^soak: done after .* s, \([0-9]*\) pushes per worker$/\1/p' "$dir/job.out")
if [ "$rc" -eq 0 ] && [ -n "$sum_line" ]; then
	sum_res="PASS ($sum_line)"
else
	sum_res="FAIL (rdps-launch exit $rc; see $dir/job.err)"
	fail=1
fi

# Growth from the first sample after warm-up (a tenth of the run, at
# least one interval) to the last sample a shard was alive for.
warm=$(( secs / 10 > interval ? secs / 10 : interval ))
rss_rows=()
max_growth_kb=0
for i in "${!spids[@]}"; do
	col=$((i + 2))
	read -r first last peak n < <(awk -F, -v c="$col" -v w="$warm" '
		NR > 1 && $c != "" {
			if (f == "" && $1 >= w) f = $c
			l = $c; if ($c > m) m = $c; n++
		}
		END { if (f == "") f = l; print f + 0, l + 0, m + 0, n + 0 }' "$dir/rss.csv")
	g=$((last - first))
	[ "$g" -gt "$max_growth_kb" ] && max_growth_kb=$g
	rss_rows+=("$i|${spids[$i]}|$n|$((first / 1024)).$(((first % 1024) * 10 / 1024))|$((last / 1024)).$(((last % 1024) * 10 / 1024))|$((peak / 1024)).$(((peak % 1024) * 10 / 1024))|$g")
done
if [ ${#spids[@]} -eq 0 ]; then
	rss_res="FAIL (no shard found to sample)"
	fail=1
elif [ "$max_growth_kb" -gt $((max_growth_mb * 1024)) ]; then
	rss_res="FAIL (a shard grew $max_growth_kb KiB after warm-up, limit $max_growth_mb MiB)"
	fail=1
else
	rss_res="PASS (largest growth after warm-up ${max_growth_kb} KiB, limit $max_growth_mb MiB)"
fi

reports=$(find "$dir" -maxdepth 1 -name 'asan.*' -type f | sort)
if [ -n "$reports" ]; then
	leak_res="FAIL ($(grep -l 'LeakSanitizer' $reports | wc -l) leak and $(grep -L 'LeakSanitizer' $reports | wc -l) other sanitizer reports: $(echo $reports))"
	fail=1
elif grep -q 'did not stop within' "$dir/job.err"; then
	leak_res="FAIL (a process was SIGKILLed, so it was never leak-checked)"
	fail=1
else
	leak_res="PASS (no LeakSanitizer or ASan report from $shards shards and $workers workers)"
fi

report() {
	local md=$1
	if [ "$md" = 1 ]; then
		echo "# rdps soak: $(date -u +%Y-%m-%dT%H:%MZ)"
		echo
		echo "Command: \`scripts/soak.sh --minutes $minutes -w $workers -s $shards -d $delay_us --model $model\`"
		echo
	fi
	echo "job:      $workers workers, $shards shards, shm, $model, pauses 0..${delay_us} us, seed $seed"
	echo "duration: ${elapsed}s (asked ${secs}s), ${pushes:-?} pushes per worker"
	echo "sum:      $sum_res"
	echo "rss:      $rss_res"
	echo "leaks:    $leak_res"
	echo
	if [ "$md" = 1 ]; then
		echo "| shard | pid | samples | RSS after warm-up (MiB) | RSS at end (MiB) | peak (MiB) | growth (KiB) |"
		echo "|---|---|---|---|---|---|---|"
		for r in "${rss_rows[@]}"; do echo "| ${r//|/ | } |"; done
	else
		printf '%-5s %8s %7s %17s %10s %9s %12s\n' shard pid samples "warm RSS MiB" "end MiB" "peak MiB" "growth KiB"
		for r in "${rss_rows[@]}"; do
			IFS='|' read -r -a f <<<"$r"
			printf '%-5s %8s %7s %17s %10s %9s %12s\n' "${f[@]}"
		done
	fi
}
report 0
[ -z "$out" ] || { report 1 >"$out"; echo "soak.sh: markdown report in $out" >&2; }
exit $fail
