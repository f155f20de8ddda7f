#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sim_measure.sh BUILD_DIR [OUT.csv] [busy] - time whole iterations (pull, push,
# clock; no compute) with tests/sim_iter_worker under rdps-launch for
# W = 1, 2, 4 workers, S = 1, 2 shards, bsp, ssp (slack 1) and absp, shm
# and tcp, 4 KiB and 1 MiB models: the reference points rdps-sim's host
# profiles are checked against (tests/data/sim_measured.csv). Shards in
# adaptive polling (the default), or with "busy" shards and workers in busy
# polling and W, S <= 2 (busy pollers beyond the 2 cores here spin each
# other out). Each cell runs REPEAT times (env, 3), interleaved with the
# other cells; a row gives the median of the runs' medians (over the
# workers), the worst p99. One CSV row per cell, rdps-scale's header;
# columns this worker cannot count are left empty. About 2 min a repeat.
set -euo pipefail
build=${1:?usage: sim_measure.sh BUILD_DIR [OUT.csv]}
out=${2:-/dev/stdout}
poll=${3:-adaptive}
case $poll in
busy) ws="1 2"; ss="1 2"; wbusy=busy ;;
adaptive) ws="1 2 4"; ss="1 2"; wbusy= ;;
*) echo "sim_measure.sh: poll '$poll': use busy or adaptive" >&2; exit 2 ;;
esac
launch=$build/tools/rdps-launch
worker=$build/tests/sim_iter_worker
for f in "$launch" "$worker"; do
	[[ -x $f ]] || { echo "sim_measure.sh: $f missing: build first" >&2; exit 2; }
done
repeat=${REPEAT:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
for ((r = 0; r < repeat; r++)); do
for tp in shm tcp; do
	for model in bsp ssp absp; do
		for w in $ws; do
			for s in $ss; do
				for bytes in 4096 1048576; do
					iters=400
					[[ $bytes -gt 4096 ]] && iters=100
					cell="$tp,$model,$w,$s,$bytes,$iters"
					"$launch" -t "$tp" -m "$model" -w "$w" -s "$s" -T 120 \
						-P "$poll" -- "$worker" "$bytes" "$iters" $wbusy \
						2>/dev/null | awk -v c="$cell" -v w="$w" '
						{ print c, $0 } END { if (NR != w) exit 1 }' \
						>>"$tmp/runs" ||
						{ echo "sim_measure.sh: $cell failed" >&2; exit 1; }
					echo "sim_measure.sh: run $r $cell" >&2
				done
			done
		done
	done
done
done
# Per cell: each run's median over its workers, then the median over the
# runs; the worst p99; the clock and bytes likewise.
{
	echo "transport,model,workers,shards,model_bytes,iters,iter_us_median,iter_us_p99,clock_us_median,shard_cpu_us_per_iter,bytes_per_worker_iter,ops_per_worker_iter"
	awk -v reps="$repeat" '
	function median(a, k,   i, j, t) {
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
			if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	{
		split($1, f, ","); w = f[3]; c = $1
		if (!(c in seen)) { seen[c] = 1; order[++nc] = c }
		k = ++nw[c]; med[c, k] = $3; clk[c, k] = $5; by[c] = $6
		if ($4 > p99[c]) p99[c] = $4
	}
	END {
		for (i = 1; i <= nc; i++) {
			c = order[i]; split(c, f, ","); w = f[3]
			n = 0
			for (r = 0; r < nw[c] / w; r++) {
				for (j = 1; j <= w; j++) { m[j] = med[c, r * w + j]; q[j] = clk[c, r * w + j] }
				rm[++n] = median(m, w); rc[n] = median(q, w)
			}
			printf "%s,%.3f,%.3f,%.3f,,%d,\n", c, median(rm, n), p99[c], median(rc, n), by[c]
		}
	}' "$tmp/runs"
} >"$out"
