#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench-rxe.sh - rdps-perf over the verbs transport next to perftest, on
# rxe soft-RoCE inside one rxe-vm (../shared/rxe-vm: QEMU with rdma_rxe,
# running the binaries built on this host). `scripts/bench.sh --rxe ...`
# calls it.
#
# In one VM and one run, for each of write, read, fadd and cas at 8 bytes,
# interleaved (rdps-perf then perftest, the other way round in even rounds,
# so a slow spell of the shared host hits both):
#   rdps-perf --local verbs -o OP -s 8 -n N -w N/10 (RDPS_PERF_ADDR=$RXE_IP)
#   ib_write_lat -s 8 | ib_read_lat -s 8 |
#   ib_atomic_lat -A FETCH_AND_ADD | ib_atomic_lat -A CMP_AND_SWAP,
#     -d $RXE_DEV -x $RXE_GID_INDEX -n N, server and client on $RXE_IP.
# Both run a client and a server that busy-poll: two threads on the VM's
# two vCPUs. Write is half a round trip of a ping-pong on both sides, read
# and atomics one whole operation.
#
# Each row compares rdps-perf's median with perftest's t_typical (also a
# median) as the issue does (target: rdps <= 1.1x perftest); the averages
# (rdps avg, perftest t_avg) are printed next to them. Over the rounds
# each side is summarised the same way: the best (lowest) round by default,
# or the median round with -m median. Every round's numbers go to stderr
# and, with -o, below the markdown table.
#
# Errors are one line on stderr and a non-zero exit; a failed measurement
# shows as n/a and makes the exit status 1. The VM, and with it every
# server, is killed on exit.
set -u

prog=bench-rxe.sh
root=$(cd "$(dirname "$0")/.." && pwd)
perf=${RDPS_PERF:-}
rxe_vm=${RXE_VM:-}
md_out=
iters=5000
rounds=3
summary=best
vm_timeout=
ops="write read fadd cas"

usage() {
	cat <<EOF
Usage: scripts/bench-rxe.sh [options]    (or scripts/bench.sh --rxe [options])
  -p PATH   the rdps-perf binary (\$RDPS_PERF, else build/tools/rdps-perf)
  -o FILE   also write the table as markdown to FILE
  -n N      measured iterations per test, both tools ($iters; rdps warm-up N/10)
  -r N      rounds ($rounds)
  -m HOW    summary over rounds for both tools: best or median ($summary)
  -O OPS    only these operations, comma-separated (write,read,fadd,cas):
            more rounds of the ones in question in the same time
  -V PATH   the rxe-vm script (\$RXE_VM, else ../shared/rxe-vm/rxe-vm)
  -T SEC    VM time limit (default 60 + 120 per round)
  -h        this help
Needs perftest on this host (apt-get install perftest, or scripts/setup.sh
--bench) and a working rxe-vm (rxe-vm setup).
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

while getopts "p:o:n:r:m:O:V:T:h" opt; do
	case $opt in
	p) perf=$OPTARG ;;
	o) md_out=$OPTARG ;;
	n) iters=$OPTARG ;;
	r) rounds=$OPTARG ;;
	m) summary=$OPTARG ;;
	O) ops=${OPTARG//,/ } ;;
	V) rxe_vm=$OPTARG ;;
	T) vm_timeout=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument '$1' (see -h)"
for v in "$iters" "$rounds" ${vm_timeout:+"$vm_timeout"}; do
	case $v in
	'' | *[!0-9]* | 0) die "bad number '$v': use a positive whole number" ;;
	esac
done
[ "$iters" -ge 5 ] || die "-n $iters is too few: perftest needs at least 5"
case $summary in
best | median) ;;
*) die "bad summary '$summary': use -m best or -m median" ;;
esac
[ -n "$ops" ] || die "-O names no operation: use some of write,read,fadd,cas"
for op in $ops; do
	case $op in
	write | read | fadd | cas) ;;
	*) die "unknown operation '$op' in -O: use write, read, fadd or cas" ;;
	esac
done
[ -n "$vm_timeout" ] || vm_timeout=$((60 + 120 * rounds))

if [ -z "$perf" ]; then
	for p in "$root/build/tools/rdps-perf" /tmp/build-bench/tools/rdps-perf \
		/tmp/build-perf/tools/rdps-perf; do
		[ -x "$p" ] && perf=$p && break
	done
fi
if [ -z "$perf" ] || [ ! -x "$perf" ]; then
	die "rdps-perf not found: build it (cmake -S . -B build &&" \
		"cmake --build build) or give -p PATH"
fi
perf=$(realpath "$perf")
"$perf" --version 2>/dev/null | grep -q 'verbs' ||
	die "$perf has no verbs transport: build with rdma-core" \
		"(apt-get install libibverbs-dev librdmacm-dev)"
if [ -z "$rxe_vm" ]; then
	for p in "$root/../shared/rxe-vm/rxe-vm" /work/shared/rxe-vm/rxe-vm; do
		[ -x "$p" ] && rxe_vm=$p && break
	done
fi
{ [ -n "$rxe_vm" ] && [ -x "$rxe_vm" ]; } ||
	die "rxe-vm not found: give -V PATH or set RXE_VM"
missing=
for t in ib_write_lat ib_read_lat ib_atomic_lat; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -z "$missing" ] ||
	die "missing$missing: apt-get install perftest (or scripts/setup.sh --bench)"
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	die "qemu-system-x86_64 missing: run $rxe_vm setup"
if [ -n "$md_out" ]; then
	: >"$md_out" 2>/dev/null || die "cannot write '$md_out'"
	md_out=$(realpath "$md_out")
fi

tmp=$(mktemp -d /tmp/rdps-bench-rxe.XXXXXX) || die "mktemp failed"
vm_pid=
cleanup() {
	if [ -n "$vm_pid" ]; then
		kill "$vm_pid" 2>/dev/null # rxe-vm kills its VM on TERM
		wait "$vm_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The part that runs in the VM. Appends lines to $out:
#   rdps ROUND OP MEDIAN AVG | perftest ROUND OP T_TYPICAL T_AVG
#   | TOOL ROUND OP FAIL message
# and everything the tools print to $log.
cat >"$tmp/guest.sh" <<'GUEST'
set -u
perf=$1 iters=$2 rounds=$3 out=$4 log=$5 ops=$6
warm=$((iters / 10))
dev=(-d "$RXE_DEV" -x "$RXE_GID_INDEX")
port=$((18515 + RANDOM % 1000))
spid=
cleanup() {
	[ -z "$spid" ] || { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export RDPS_PERF_ADDR=$RXE_IP
uname -r >"$out.kernel"

rdps() { # ROUND OP
	local o
	echo "== round $1: rdps-perf $2" >>"$log"
	if o=$(timeout 120 "$perf" --local verbs -d "$RXE_DEV" -o "$2" -s 8 \
		-n "$iters" -w "$warm" --csv 2>>"$log"); then
		echo "$o" >>"$log"
		echo "$o" | tail -1 | awk -F, -v r="$1" -v op="$2" \
			'{ print "rdps", r, op, $6, $7 }' >>"$out"
	else
		echo "rdps $1 $2 FAIL rdps-perf: $(tail -1 "$log")" >>"$out"
	fi
}

listening() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# perftest ROUND OP TOOL [ARGS]: a fresh server per attempt, on a fresh
# port; the client retries while that server lives. An attempt whose
# result is not finite (perftest's clock calibration failed under load:
# t_typical "inf") is repeated too, up to 3 attempts.
perftest() {
	local r=$1 op=$2 tool=$3 o="" res="" end try
	shift 3
	echo "== round $r: $tool $*" >>"$log"
	for try in 1 2 3; do
		port=$((port + 1))
		timeout 120 "$tool" "${dev[@]}" -F -p "$port" -n "$iters" "$@" \
			>>"$log" 2>&1 &
		spid=$!
		end=$((SECONDS + 20))
		until listening "$port" || ! kill -0 "$spid" 2>/dev/null ||
			[ $SECONDS -ge $end ]; do
			sleep 0.1
		done
		while kill -0 "$spid" 2>/dev/null && [ $SECONDS -lt $end ]; do
			o=$(timeout 120 "$tool" "${dev[@]}" -F -p "$port" \
				-n "$iters" "$@" "$RXE_IP" 2>"$log.client") && break
			o=""
			cat "$log.client" >>"$log"
			: >"$log.client"
			sleep 0.3
		done
		cleanup
		spid=
		cat "$log.client" >>"$log" 2>/dev/null
		grep -h 'differs from nominal' "$log.client" 2>/dev/null |
			sed "s/^/round $r $op: $tool: /" >>"$out.warn"
		echo "$o" >>"$log"
		res=$(echo "$o" | awk -v n="$iters" '$2 == n && $1 ~ /^[0-9]+$/ &&
			$5 ~ /^[0-9.]+$/ && $6 ~ /^[0-9.]+$/ { print $5, $6 }')
		[ -z "$res" ] || break
	done
	if [ -n "$res" ]; then
		echo "perftest $r $op $res" >>"$out"
	else
		echo "perftest $r $op FAIL $tool: $(grep -v '^ *$' "$log" | tail -1)" >>"$out"
	fi
}

pt() { # ROUND OP
	case $2 in
	write) perftest "$1" write ib_write_lat -s 8 ;;
	read) perftest "$1" read ib_read_lat -s 8 ;;
	fadd) perftest "$1" fadd ib_atomic_lat -A FETCH_AND_ADD ;;
	cas) perftest "$1" cas ib_atomic_lat -A CMP_AND_SWAP ;;
	esac
}

for r in $(seq 1 "$rounds"); do
	for op in $ops; do
		if [ $((r % 2)) = 1 ]; then
			rdps "$r" "$op"
			pt "$r" "$op"
		else
			pt "$r" "$op"
			rdps "$r" "$op"
		fi
	done
done
GUEST
: >"$tmp/results"

start=$(date +%s)
pt_ver=$(dpkg-query -W -f '${Version}' perftest 2>/dev/null || echo '?')
echo "$prog: rdps-perf $perf, perftest $pt_ver, $rounds rounds x $iters" \
	"iterations in one rxe-vm; host load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
(cd "$tmp" && exec "$rxe_vm" run -t "$vm_timeout" -s "$tmp" \
	-s "$(dirname "$perf")" -- \
	"bash $tmp/guest.sh '$perf' $iters $rounds $tmp/results $tmp/guest.log '$ops'") \
	>"$tmp/vm.out" 2>&1 &
vm_pid=$!
wait "$vm_pid"
vm_rc=$?
vm_pid=
secs=$(($(date +%s) - start))
failed=0
if [ "$vm_rc" != 0 ]; then
	failed=1
	case $vm_rc in
	124) why="timed out after $vm_timeout s (-T)" ;;
	125) why="died" ;;
	*) why="exited with status $vm_rc" ;;
	esac
	echo "$prog: the VM $why: $(grep -v '^ *$' "$tmp/vm.out" | tail -1)" >&2
fi
grep ' FAIL ' "$tmp/results" | while read -r _ r op _ msg; do
	echo "$prog: round $r $op failed: $msg" >&2
done
warns=$(wc -l <"$tmp/results.warn" 2>/dev/null || echo 0)
if [ "$warns" != 0 ]; then
	echo "$prog: perftest used its own sampled TSC rate $warns time(s):" \
		"$(head -1 "$tmp/results.warn")" >&2
fi
if [ "$failed" != 0 ] || grep -q ' FAIL ' "$tmp/results"; then
	keep=/tmp/rdps-bench-rxe.last
	rm -rf "$keep" && mkdir -p "$keep" &&
		cp "$tmp"/guest.log "$tmp"/vm.out "$tmp"/results "$keep"/ 2>/dev/null
	echo "$prog: the VM's logs are in $keep" >&2
fi

# agg TOOL OP FIELD: the summary over rounds of field 4 or 5 ("" if none).
agg() {
	awk -v t="$1" -v op="$2" -v f="$3" -v how="$summary" '
		$1 == t && $3 == op && $4 != "FAIL" { v[n++] = $f + 0 }
		END {
			if (!n) exit
			for (i = 0; i < n; i++)	# insertion sort, n is small
				for (j = i; j > 0 && v[j] < v[j-1]; j--) {
					x = v[j]; v[j] = v[j-1]; v[j-1] = x }
			if (how == "best") m = v[0]
			else m = n % 2 ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2
			printf "%.2f", m
		}' "$tmp/results"
}

# rounds_of TOOL OP FIELD: every round's value, "a / b / c".
rounds_of() {
	awk -v t="$1" -v op="$2" -v f="$3" '
		$1 == t && $3 == op { s = s (s == "" ? "" : " / ") ($4 == "FAIL" ? "fail" : sprintf("%.2f", $f)) }
		END { print s == "" ? "-" : s }' "$tmp/results"
}

rows=()
details=()
for op in $ops; do
	case $op in
	write) ref="ib_write_lat -s 8" how="half RTT" ;;
	read) ref="ib_read_lat -s 8" how="whole op" ;;
	fadd) ref="ib_atomic_lat -A FETCH_AND_ADD" how="whole op" ;;
	cas) ref="ib_atomic_lat -A CMP_AND_SWAP" how="whole op" ;;
	esac
	r=$(agg rdps $op 4)
	ra=$(agg rdps $op 5)
	p=$(agg perftest $op 4)
	pa=$(agg perftest $op 5)
	ratio=n/a met=-
	if [ -n "$r" ] && [ -n "$p" ]; then
		ratio=$(awk -v a="$r" -v b="$p" \
			'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
		[ "$ratio" = n/a ] || met=$(awk -v x="$r" -v b="$p" \
			'BEGIN { print x <= 1.1 * b ? "yes" : "no" }')
	fi
	[ -n "$r" ] || { r=n/a; failed=1; }
	[ -n "$p" ] || { p=n/a; failed=1; }
	rows+=("verbs 8 B $op latency, $how (us)|$r|$p|$ref|$ratio|<= 1.1x|$met|${ra:-n/a}|${pa:-n/a}")
	details+=("$op: rdps median $(rounds_of rdps $op 4); perftest t_typical $(rounds_of perftest $op 4); rdps avg $(rounds_of rdps $op 5); perftest t_avg $(rounds_of perftest $op 5)")
done
clock=$(sed -n 's/^rdps-perf: verbs .*, poll busy, \(clock .*\)$/\1/p' \
	"$tmp/guest.log" 2>/dev/null | sort -u | head -1)
cols="metric|rdps median|perftest t_typical|reference|ratio|target|met|rdps avg|perftest t_avg"

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

if [ -n "$md_out" ]; then
	{
		echo "| ${cols//|/ | } |"
		echo "|---|--:|--:|---|--:|---|---|--:|--:|"
		for r in "${rows[@]}"; do
			echo "| ${r//|/ | } |"
		done
		echo
		echo "Measured $(date -u +%Y-%m-%d) by \`scripts/bench.sh --rxe\` in ${secs} s:" \
			"rxe soft-RoCE in rxe-vm (1 VM, 2 vCPUs, QEMU TCG, guest kernel" \
			"$(cat "$tmp/results.kernel" 2>/dev/null || echo '?')) on a $(nproc)-core shared host" \
			"($(uname -r)); perftest $pt_ver; $rounds rounds, each" \
			"rdps-perf then perftest per op (reversed in even rounds), $iters" \
			"measured iterations each (rdps-perf also $((iters / 10)) warm-up)," \
			"busy polling on both sides; rdps-perf ${clock:-clock ?};" \
			"perftest fell back to its sampled TSC rate in $warns run(s)." \
			"Columns are the $summary of the rounds for both tools;" \
			"ratio is rdps median / perftest t_typical. Latencies in us."
		echo
		echo "Rounds:"
		echo
		for d in "${details[@]}"; do
			echo "- $d"
		done
	} >"$md_out"
	echo "$prog: wrote $md_out" >&2
fi
for d in "${details[@]}"; do
	echo "$prog: $d" >&2
done
echo "$prog: done in ${secs} s ($summary of $rounds rounds)" >&2
exit $failed
