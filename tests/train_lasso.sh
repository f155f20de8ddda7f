#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_lasso.sh RDPS_LAUNCH RDPS_TRAIN - LASSO by distributed Frank-Wolfe
# (rdps-train run --workload lasso) on the seed's generated 1000 x 10000
# problem (the defaults are larger): under BSP and SSP the duality gap
# falls at least 10x in 300 supersteps, under ASP and A-BSP at least 5x
# (A-BSP with a persistent straggler ending near BSP's objective), and
# under BSP the objective never rises (the keep-if-better rule). BSP over
# shm and tcp gives the same objective and gap, digit for digit, every
# clock. A problem read from a LIBSVM file (written by gen) converges
# too. Bad input: one line, non-zero exit.
set -u

LAUNCH=${1:?usage: train_lasso.sh RDPS_LAUNCH RDPS_TRAIN}
TRAIN=${2:?}
unset RDPS_LOG_LEVEL RDPS_SHARDS RDPS_RANK RDPS_WORKERS

. "$(dirname "$0")/train_lib.sh" # $tmp, fail, job

# fw NAME FACTOR LAUNCH-OPTIONS -- RUN-OPTIONS: a 3-worker job on one
# shard; the gap must fall FACTOR times from the starting point's (the
# first evaluation of the first job, a BSP one: under SSP and ASP rank
# 0's first evaluation may already see other workers' steps). Under BSP
# the objective must never rise from one clock to the next (under the
# others a one-sided read may overlap the shard's apply of a step).
fw() {
	local name=$1 factor=$2 csv=$tmp/$1.csv
	local -a lopts=()
	shift 2
	while (($#)) && [[ $1 != -- ]]; do
		lopts+=("$1")
		shift
	done
	shift
	if ! timeout 100 "$LAUNCH" --timeout 90 -s 1 -w 3 "${lopts[@]}" -- \
		"$TRAIN" run --workload lasso -q --pace 1 --csv "$csv" \
		"${seed_problem[@]}" "$@" \
		>"$tmp/out" 2>"$tmp/err"; then
		fail "$name: job failed: $(tail -2 "$tmp/err")"
		return
	fi
	[[ -z $gap0 ]] && gap0=$(head -1 "$csv" | cut -d, -f5)
	mono=0
	[[ " ${lopts[*]} " == *" -m bsp "* ]] && mono=1
	if awk -F, -v f="$factor" -v name="$name" -v g0="$gap0" -v mono=$mono '
		mono && NR > 1 && $4 > obj + 1e-12 { print name ": objective rose at clock " $2 ": " obj " -> " $4; bad = 1 }
		{ obj = $4; g = $5 }
		END {
			printf "train_lasso %s: objective -> %s, gap %s -> %s\n", name, obj, g0, g
			exit bad || !(g < g0 / f)
		}' "$csv"; then
		:
	else
		fail "$name: gap did not fall ${factor}x (or the objective rose)"
	fi
}

# The seed's problem, given here: the defaults are 10 x 2 times larger.
seed_problem=(--samples 1000 --features 10000 --density 0.01 --epochs 300)
gap0=
fw bsp 10 -m bsp --
fw ssp 10 -m ssp -k 2 --
fw asp 5 -m asp --
fw absp 5 -m absp --
fw bsp_tcp 10 -m bsp -t tcp -a 127.0.0.1 --
# A-BSP with a persistent straggler: the straggler is cut every round,
# and its scan must go on where the cut left it, or the columns it never
# reaches are never picked and the objective stalls (it ended 2.5x BSP's
# on the default problem). It must end within 10% of BSP's.
fw absp_straggler 5 -m absp -- --stragglers 1:3x
bsp_f=$(tail -1 "$tmp/bsp.csv" | cut -d, -f4)
absp_f=$(tail -1 "$tmp/absp_straggler.csv" | cut -d, -f4)
awk -v a="$absp_f" -v b="$bsp_f" 'BEGIN { exit !(a <= 1.1 * b) }' ||
	fail "absp with 1:3x: objective $absp_f, more than 1.1 x BSP's $bsp_f"
# BSP: the same numbers over tcp as over shm.
if ! cmp -s <(cut -d, -f2,4,5 "$tmp/bsp.csv") <(cut -d, -f2,4,5 "$tmp/bsp_tcp.csv"); then
	fail "bsp: shm and tcp curves differ"
fi

# A file, as the seed read Dorothea: gen writes LIBSVM with real targets.
"$TRAIN" gen --workload lasso --samples 300 --features 2000 --density 0.02 \
	--support 20 -o "$tmp/lasso.txt" || fail "gen lasso"
gap0=
fw file 10 -m bsp -- --data "$tmp/lasso.txt" --radius 20 --epochs 200

# Bad input: exit 2 (usage) or 1 (data), one line naming what is wrong.
bad() {
	local name=$1 want_rc=$2 pattern=$3 lines
	shift 3
	timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -v '^rdps-launch: ' "$tmp/err" | sort -u >"$tmp/err1"
	lines=$(wc -l <"$tmp/err1")
	((rc == want_rc)) || fail "$name: exit $rc, want $want_rc"
	((lines == 1)) || fail "$name: $lines distinct lines: '$(cat "$tmp/err1")'"
	grep -q -- "$pattern" "$tmp/err1" || fail "$name: '$(cat "$tmp/err1")' lacks /$pattern/"
}
printf '1.5 1:1 2:0.5\nx 3:1\n' >"$tmp/bad.txt"
bad "bad target" 1 "bad.txt:2:1: bad label 'x' (a line starts with its target" \
	"$LAUNCH" -s 1 -w 2 -- "$TRAIN" run --workload lasso --data "$tmp/bad.txt"
printf '1.5 1:1 2:0.5\n2 3:one\n' >"$tmp/bad2.txt"
bad "bad value" 1 "bad2.txt:2:5: bad value 'one' of feature 3" \
	"$LAUNCH" -s 1 -w 2 -- "$TRAIN" run --workload lasso --data "$tmp/bad2.txt"
bad "two shards" 2 "run it on one shard (rdps-launch -s 1)" \
	"$LAUNCH" -s 2 -w 2 -- "$TRAIN" run --workload lasso
bad "density" 2 "bad lasso density '5'" "$TRAIN" run --workload lasso --density 5
bad "support" 2 "support 30000 (at most --features)" \
	"$TRAIN" run --workload lasso --support 30000
bad "radius" 2 "bad L1 radius '-1'" "$TRAIN" run --workload lasso --radius -1
bad "test" 2 "lasso minimises its objective on --data" \
	"$TRAIN" run --workload lasso --data x --test y
bad "gen test-out" 2 "lasso has no held-out set" \
	"$TRAIN" gen --workload lasso -o "$tmp/g.txt" --test-out "$tmp/t.txt"
bad "experiment shards" 2 "--workload lasso runs on one shard, not 2" \
	"$TRAIN" experiment --workload lasso -s 2
# Nothing left running from these jobs.
if pgrep -f "$tmp" >/dev/null; then
	fail "processes left behind"
fi

if ((fails)); then
	echo "train_lasso: $fails failure(s)" >&2
	exit 1
fi
echo "train_lasso: all cases passed"
