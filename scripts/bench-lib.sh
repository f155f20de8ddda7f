# SPDX-License-Identifier: MIT
#
# bench-lib.sh - what scripts/bench.sh, bench-ps.sh and bench-pslite.sh share:
# servers killed on exit, iperf3 and memcpy references, result rows with
# ratios against targets, and the plain and markdown tables. Sourced after
# the caller has set prog and perf (the rdps-perf binary).

tmp=$(mktemp -d "/tmp/rdps-$prog.XXXXXX") || {
	echo "$prog: mktemp failed" >&2
	exit 1
}
pids=()
bench_cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	pids=()
	rm -rf "$tmp"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# Ports for the reference servers: spread by pid, away from the others.
port=$((20000 + $$ % 20000))
failed=0
rows=()
cols="metric|rdps|reference|reference name|ratio|better|target|met"

# jget JSON KEY: a number field of a JSON line (rdps-psbench, pslite-bench).
jget() {
	echo "$1" | sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p"
}

# Kill one background server and forget it.
stop_server() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	local keep=() p
	for p in "${pids[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# memcpy_bw ITERS: single-thread memcpy of 1 MiB in GB/s.
memcpy_bw() {
	local out
	out=$("$perf" --memcpy -s 1m -b 1 -n "$1" -w $(($1 / 10)) --csv \
		2>"$tmp/err") || {
		echo "$prog: rdps-perf --memcpy failed: $(tail -1 "$tmp/err")" >&2
		return 1
	}
	echo "$out" | tail -1 | awk -F, '{ printf "%.4f", $6 }'
}

# iperf SECS: iperf3 single stream on 127.0.0.1, receiver GB/s.
iperf() {
	local spid out=""
	port=$((port + 1))
	iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
	spid=$!
	pids+=("$spid")
	# The server needs a moment to listen: retry the client briefly.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		sleep 0.2
		out=$(iperf3 -c 127.0.0.1 -p "$port" -t "$1" -f g \
			2>"$tmp/err") && break
		out=""
		kill -0 "$spid" 2>/dev/null || break
	done
	stop_server "$spid"
	[ -n "$out" ] || {
		echo "$prog: iperf3 failed: $(tail -1 "$tmp/err")" >&2
		return 1
	}
	echo "$out" | awk '/receiver/ {
		for (i = 2; i <= NF; i++) if ($i ~ /bits\/sec/) { v = $(i-1); u = $i }
	} END {
		m = u ~ /^G/ ? 1 : u ~ /^M/ ? 1e-3 : u ~ /^K/ ? 1e-6 : 1e-9
		printf "%.4f", v * m / 8
	}'
}

# row METRIC UNIT RDPS REF REFNAME BETTER TARGET
#   BETTER is "lower" or "higher"; TARGET a ratio bound or "-". An empty
#   RDPS or REF (a failed measurement) shows as n/a and fails the run.
row() {
	local metric=$1 unit=$2 r=$3 ref=$4 name=$5 better=$6 target=$7
	local ratio=n/a met=- tgt=-
	if [ -n "$r" ] && [ -n "$ref" ]; then
		ratio=$(awk -v a="$r" -v b="$ref" \
			'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
		if [ "$target" != "-" ] && [ "$ratio" != n/a ]; then
			met=$(awk -v x="$ratio" -v t="$target" -v b="$better" \
				'BEGIN { ok = b == "lower" ? x <= t : x >= t
					 print ok ? "yes" : "no" }')
		fi
	fi
	[ -n "$r" ] || { r=n/a; failed=1; }
	[ -n "$ref" ] || { ref=n/a; failed=1; }
	[ "$target" = "-" ] || tgt=$([ "$better" = lower ] && echo "<= ${target}x" || echo ">= ${target}x")
	rows+=("$metric ($unit)|$r|$ref|$name|$ratio|$better|$tgt|$met")
	printf '%s: %-34s rdps %-10s %-30s %-10s ratio %s\n' "$prog" "$metric" \
		"$r" "$name" "$ref" "$ratio" >&2
}

# print_tables MD_FILE FOOTNOTE: the rows as an aligned table on stdout
# and, with MD_FILE, as markdown followed by FOOTNOTE.
print_tables() {
	{
		echo "$cols"
		printf '%s\n' "${rows[@]}"
	} | awk -F'|' '
		{ for (i = 1; i <= NF; i++) { c[NR, i] = $i
		  if (length($i) > w[i]) w[i] = length($i) } n = NR; nf = NF }
		END { for (r = 1; r <= n; r++) { line = ""
			for (i = 1; i <= nf; i++)
				line = line (i < nf ? sprintf("%-*s  ", w[i], c[r, i]) : c[r, i])
			print line } }'
	[ -n "$1" ] || return 0
	{
		echo "| ${cols//|/ | } |"
		# Text columns left, numbers right, as cols names them.
		echo "$cols" | awk -F'|' '{ s = "|"
			for (i = 1; i <= NF; i++)
				s = s ($i ~ /^(metric|reference name|better|target|met)$/ ? "---|" : "--:|")
			print s }'
		for r in "${rows[@]}"; do
			echo "| ${r//|/ | } |"
		done
		echo
		echo "$2"
	} >"$1"
	echo "$prog: wrote $1" >&2
}
