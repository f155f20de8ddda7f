#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scale_count.sh RDPS-SCALE - rdps-scale's counted bytes and operations
# against what an iteration must do. One SSP worker (it never waits for
# another, so nothing is read twice), a 4 KiB model of float32 in
# rdps_buf_alloc() memory, 1 and 2 shards, shm and tcp. Per iteration:
#   1 shard:  pull = directory header read (64 B) + the run (4096 B);
#             push = payload put (4096 B, zero copy from 4 KiB up) + the
#             header's write-with-immediate (64 B);
#             clock = fetch-add (8 B) only: a lone worker is the last
#             arrival at every clock, so it knows clock t - slack is
#             complete and reads no counter (done_clock, clock.c):
#             5 operations, 8328 bytes;
#   2 shards: pull = 2 x (64 + 2048 B); push = 2 x (64 + 2048 B) written
#             with the immediate (2 KiB a shard is under the zero-copy
#             4 KiB); clock as above: 7 operations, 8456 bytes.
# Also checks the CSV header another tool reads, that a BSP pull of a
# 1 MiB model does not re-read it while it waits, and that a clock's
# operations per worker do not grow with W.
set -u
scale=${1:?usage: scale_count.sh RDPS-SCALE}
tmp=$(mktemp -d /tmp/rdps-scale-test.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "scale_count: $*" >&2
	exit 1
}

"$scale" -t shm,tcp -m ssp -w 1 -s 1,2 -b 4k -n 20 -T 60 \
	-o "$tmp/s.csv" --svg "$tmp/s.svg" >"$tmp/out" 2>&1 ||
	fail "rdps-scale failed: $(tail -3 "$tmp/out")"
want='transport,model,workers,shards,model_bytes,iters,iter_us_median,iter_us_p99,clock_us_median,shard_cpu_us_per_iter,bytes_per_worker_iter,ops_per_worker_iter,placement'
[ "$(head -1 "$tmp/s.csv")" = "$want" ] || fail "CSV header changed: $(head -1 "$tmp/s.csv")"
[ "$(wc -l <"$tmp/s.csv")" = 5 ] || fail "expected 4 rows: $(cat "$tmp/s.csv")"
grep -q '<polyline' "$tmp/s.svg" || fail "the SVG has no line"
while IFS=, read -r tp model w s b n _ _ _ _ bytes ops _; do
	case $s in
	1) wops=5 wbytes=8328 ;;
	2) wops=7 wbytes=8456 ;;
	esac
	[ "$ops" = "$wops.000" ] ||
		fail "$tp $model $w worker(s) $s shard(s): $ops operations per iteration, expected $wops"
	[ "$bytes" = "$wbytes.0" ] ||
		fail "$tp $model $w worker(s) $s shard(s): $bytes bytes per iteration, expected $wbytes"
	[ "$n" = 20 ] || fail "$tp: $n iterations, expected 20"
done < <(tail -n +2 "$tmp/s.csv")
# --pin: a job that fits the CPUs gets one each, shards first (a shard and
# its one worker sharing a CPU made the cell 1.3-6x slower in some runs).
if [ "$(nproc)" -ge 2 ]; then
	"$scale" -t shm -m ssp -w 1 -s 1 -b 4k -n 20 -T 60 --pin \
		-o "$tmp/p.csv" >"$tmp/out" 2>&1 ||
		fail "rdps-scale --pin failed: $(tail -3 "$tmp/out")"
	place=$(tail -1 "$tmp/p.csv" | cut -d, -f13)
	[ "$place" = pinned-apart ] ||
		fail "--pin 1 worker 1 shard: placement '$place', expected pinned-apart"
	# Without --pin the kernel places them; the CSV says which it chose.
	place=$(tail -1 "$tmp/s.csv" | cut -d, -f13)
	case $place in free-apart | free-shared) ;;
	*) fail "no --pin: placement '$place', expected free-apart or free-shared" ;;
	esac
fi
# A BSP pull of 1 MiB that finds its shard behind waits on headers alone
# and reads the model at most twice (once with the first header, once
# when fresh), whatever the wait: a worker moves at most 3 MiB an
# iteration (two reads and its push) plus headers, with 2 workers waiting
# for each other. (Read again with every header, it moved 4-5.5 MiB.)
"$scale" -t shm -m bsp -w 2 -s 1 -b 1m -n 20 -T 60 -o "$tmp/b.csv" \
	>"$tmp/out" 2>&1 || fail "rdps-scale bsp 1 MiB failed: $(tail -3 "$tmp/out")"
bytes=$(tail -1 "$tmp/b.csv" | cut -d, -f11)
awk -v b="$bytes" 'BEGIN { exit !(b >= 3 * 1048576 / 2 && b <= 3 * 1048576 + 16384) }' ||
	fail "bsp 2 workers 1 MiB: $bytes bytes per iteration, expected at most 3 MiB + 16 KiB"
# Clock operations per worker and iteration do not grow with W (BSP,
# W = 4 and 8, 20 clocks): a waiter's tick is its END, fetch-add and one
# PS_WAIT (its release needs no read; ps_proto.h, "Waking waiters"), the
# completer's its END, fetch-add and PS_DONE; plus, counted with the
# clocks, one barrier (2) over the 20: 3.1; 3.5 leaves room for a few
# waits past 100 ms on a loaded machine (3 reads each, the safety read
# and checks). (Re-reading the word until complete cost 5 to 7.5,
# growing with W.)
"$scale" -t shm -m bsp -w 4,8 -s 1 -b 4k -n 20 -T 60 -o "$tmp/c.csv" \
	>"$tmp/out" 2>&1 || fail "rdps-scale bsp 4,8 workers failed: $(tail -3 "$tmp/out")"
awk '$1 == "shm" && $2 == "bsp" { n++; if ($13 > 3.5) { print "W " $3 ": " $13; bad = 1 } }
	END { exit bad || n != 2 }' "$tmp/out" ||
	fail "bsp clock operations per worker and iteration above 3.5 (or rows missing): $(cat "$tmp/out")"
echo "scale_count: counted operations and bytes as expected"
