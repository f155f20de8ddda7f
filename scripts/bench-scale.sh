#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench-scale.sh - how an iteration's cost grows with workers and shards:
# runs rdps-scale over the grid of issue 16 (shm and tcp; bsp, ssp, absp;
# 1, 2, 4, 8, 16 workers; 1, 2, 4 shards; 4 KiB and 1 MiB models;
# adaptive polling) and writes scale.csv, scale.svg and the table
# (scale.txt) into the output folder. --quick runs a small grid (shm and
# tcp, bsp and ssp, 1, 4 and 16 workers, 1 and 2 shards, 4 KiB) in about a
# minute. A job whose shards and workers fit the CPUs runs one process per
# CPU (rdps-scale --pin; --no-pin leaves them to the kernel): a one-worker
# cell ran 1.3-6x slower in the runs where the kernel put the shard and the
# worker on one CPU. The CSV's placement column says what each cell had.
# Installs nothing; leaves nothing but the output folder.
set -u

prog=bench-scale.sh
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${RDPS_BINDIR:-$root/build/tools}
out=scale
quick=0
iters=200
poll=adaptive
pin=--pin

usage() {
	cat <<USAGE
Usage: scripts/bench-scale.sh [options]
  --quick   a small grid (about a minute)
  -p DIR    directory with rdps-scale, rdps-launch and rdps-server
            (\$RDPS_BINDIR, else build/tools)
  -o DIR    output folder ($out): scale.csv, scale.svg, scale.txt
  -n N      iterations per worker for the 4 KiB model ($iters; 1 MiB: N/8)
  -P MODE   polling: adaptive or event ($poll)
  --no-pin  let the kernel place every job (default: a job that fits the
            CPUs gets one CPU per process, rdps-scale --pin)
  -h        this help
USAGE
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--no-pin) pin= ;;
	-p) bindir=${2:?}; shift ;;
	-o) out=${2:?}; shift ;;
	-n) iters=${2:?}; shift ;;
	-P) poll=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unexpected argument '$1'" ;;
	esac
	shift
done
case $iters in '' | *[!0-9]* | 0) die "bad -n '$iters': use a positive whole number" ;; esac
case $poll in adaptive | event) ;; *) die "bad -P '$poll': use adaptive or event (16 workers on 2 cores must not spin)" ;; esac
for b in rdps-scale rdps-launch rdps-server; do
	[ -x "$bindir/$b" ] || die "$b not found in $bindir: build the tools" \
		"(cmake -S . -B build && cmake --build build) or give -p DIR"
done
mkdir -p "$out" || die "cannot make '$out'"

if [ $quick = 1 ]; then
	grid=(-t shm,tcp -m bsp,ssp -w 1,4,16 -s 1,2 -b 4k)
	iters=$((iters < 100 ? iters : 100))
else
	grid=(-t shm,tcp -m bsp,ssp,absp -w 1,2,4,8,16 -s 1,2,4 -b 4k,1m)
fi
start=$(date +%s)
echo "$prog: ${grid[*]} -n $iters -P $poll ${pin:-(no pin)}, $(nproc) cores" >&2
"$bindir/rdps-scale" "${grid[@]}" -n "$iters" -P "$poll" $pin \
	-o "$out/scale.csv" --svg "$out/scale.svg" | tee "$out/scale.txt"
rc=${PIPESTATUS[0]}
echo "$prog: done in $(($(date +%s) - start)) s: $out/scale.csv," \
	"$out/scale.svg, $out/scale.txt" >&2
[ "$rc" = 0 ] || die "rdps-scale failed (exit $rc): some cells are missing"
