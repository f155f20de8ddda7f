#!/bin/sh
# SPDX-License-Identifier: MIT
# sim_cli.sh RDPS_SIM DATA_DIR - rdps-sim's command line: the same seed
# gives the same output and another seed another; bad input is one line
# on stderr and exit status 2; validate reads rdps-scale's CSV and flags
# what is outside the tolerance; project writes its CSV and SVG.
set -u
sim=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# One line on stderr containing $1, nothing on stdout, status 2.
bad() {
	want=$1
	shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
	n=$(wc -l <"$tmp/err")
	if [ "$st" -ne 2 ] || [ "$n" -ne 1 ] || [ -s "$tmp/out" ] ||
		! grep -q -- "$want" "$tmp/err"; then
		fail "$*: status $st, $n stderr lines, want one with '$want':"
		cat "$tmp/err" >&2
	fi
}

# Determinism: the same seed, the same bytes; another seed, other ones.
seeded() {
	"$sim" run -p connectx -w 64 -s 4 -m ssp -b 64k -c 200 \
		-S random:0.2:3x -n 20 --seed "$1"
}
seeded 7 >"$tmp/a" || fail "run failed"
seeded 7 >"$tmp/b" || fail "run failed"
seeded 8 >"$tmp/c" || fail "run failed"
cmp -s "$tmp/a" "$tmp/b" || fail "seed 7 gave two outputs"
cmp -s "$tmp/a" "$tmp/c" && fail "seeds 7 and 8 gave the same output"

# W = 1, S = 1, BSP, 1 MiB on connectx: pull (READ 2 us + 1 MiB at 12.5
# GB/s) + push + tick, no wait: the simulated iteration is at least the
# two transfers, 2 x 83.9 us, and the clock alone one fetch-add (2.5 us).
"$sim" run -p connectx -b 1m >"$tmp/one" || fail "run failed"
awk -F, 'NR == 2 && !($10 >= 167.7 && $10 < 800) { exit 1 }' "$tmp/one" ||
	fail "1 MiB iteration: $(sed -n 2p "$tmp/one")"
"$sim" run -p connectx --clock-only >"$tmp/clk" || fail "run failed"
awk -F, 'NR == 2 && ($10 < 2.499 || $10 > 2.501) { exit 1 }' "$tmp/clk" ||
	fail "clock alone: $(sed -n 2p "$tmp/clk")"

bad "bad workers '0'" "$sim" run -w 0
bad "unknown profile 'ib'" "$sim" run -p ib
bad "unknown model" "$sim" run -m lsp
bad "unknown command" "$sim" simulate
bad "slack is for ssp" "$sim" run -m bsp -k 2
bad "straggler 5:3x" "$sim" run -w 2 -S 5:3x
bad "bad --set" "$sim" run --set nosuch=1
bad "needs --measured" "$sim" validate -p shm
bad "cannot read" "$sim" validate --measured "$tmp/none.csv" -p shm

hdr=$(head -1 "$data/sim_measured.csv")
printf 'transport,model,workers\nshm,bsp,1\n' >"$tmp/h.csv"
bad "not rdps-scale's header" "$sim" validate --measured "$tmp/h.csv"
printf '%s\nshm,bsp,0,1,4096,10,5.0,,,,,\n' "$hdr" >"$tmp/w0.csv"
bad "w0.csv:2: workers '0'" "$sim" validate --measured "$tmp/w0.csv"
printf '%s\nshm,bsp,1,1,4096,10,5.0\n' "$hdr" >"$tmp/short.csv"
bad "short.csv:2: 7 fields" "$sim" validate --measured "$tmp/short.csv"
printf '%s\nshm,bsp,1,1,4096,10,fast,,,,,\n' "$hdr" >"$tmp/num.csv"
bad "num.csv:2: iter_us_median 'fast'" "$sim" validate --measured "$tmp/num.csv"
printf '%s\ntcp,bsp,1,1,4096,10,5.0,,,,,\n' "$hdr" >"$tmp/tcp.csv"
bad "no rows of transport 'shm'" "$sim" validate --measured "$tmp/tcp.csv" -p shm

# validate: a row measured at the simulated time is within, one at twice
# it is flagged, and --strict then fails.
us=$("$sim" run -p connectx -w 2 -s 2 -b 64k -n 200 | awk -F, 'NR == 2 { print $10 }')
twice=$(awk -v u="$us" 'BEGIN { print 2 * u }')
printf '%s\nconnectx,bsp,2,2,65536,200,%s,,,,,\nconnectx,bsp,2,2,65536,200,%s,,,,,\n' \
	"$hdr" "$us" "$twice" >"$tmp/v.csv"
"$sim" validate --measured "$tmp/v.csv" -p connectx >"$tmp/vout" ||
	fail "validate failed"
[ "$(grep -c ' ok$' "$tmp/vout")" -eq 1 ] || fail "no row within: $(cat "$tmp/vout")"
[ "$(grep -c ' OUTSIDE$' "$tmp/vout")" -eq 1 ] || fail "no row flagged: $(cat "$tmp/vout")"
grep -q '^1 of 2 rows within 25%' "$tmp/vout" || fail "summary: $(tail -1 "$tmp/vout")"
"$sim" validate --measured "$tmp/v.csv" -p connectx --strict >/dev/null
[ $? -eq 1 ] || fail "--strict did not fail on a flagged row"

# The reference measurements parse, one line per row of the transport.
for tp in shm tcp; do
	"$sim" validate --measured "$data/sim_measured.csv" -p "$tp" >"$tmp/ref" ||
		fail "validate $tp of the reference failed"
	rows=$(grep -c "^$tp," "$data/sim_measured.csv")
	got=$(grep -c "^$tp " "$tmp/ref")
	[ "$rows" -eq "$got" ] || fail "$tp: $rows rows, $got lines"
done

# project --quick: 3 models x 2 straggler specs x 2 W x 2 S.
"$sim" project --quick -n 5 --warmup 1 --out "$tmp" >"$tmp/pout" || fail "project failed"
[ "$(wc -l <"$tmp/projection.csv")" -eq 25 ] ||
	fail "projection.csv: $(wc -l <"$tmp/projection.csv") lines"
head -c 4 "$tmp/projection.svg" | grep -q '<svg' || fail "projection.svg"
bad "cannot write to" "$sim" project --quick --out "$tmp/no/such/dir"

[ "$fails" -eq 0 ] && echo "sim_cli: all checks passed"
exit $((fails != 0))
