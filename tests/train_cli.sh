#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_cli.sh RDPS_LAUNCH RDPS_TRAIN - rdps-train's command line: bad
# usage anywhere (exit 2, one line naming what and how to fix it), --help
# of every subcommand, a malformed data file (exit 1, file:line:col), a
# job trained from a generated file, and a small experiment whose CSV, SVG
# and JSON are checked for their shape (not for timings: that is the
# experiment's own table, not a test).
set -u

LAUNCH=${1:?usage: train_cli.sh RDPS_LAUNCH RDPS_TRAIN}
TRAIN=${2:?}
unset RDPS_LOG_LEVEL RDPS_SHARDS RDPS_RANK RDPS_WORKERS

. "$(dirname "$0")/train_lib.sh" # $tmp, fail, job

run() {
	timeout 120 "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# usage NAME PATTERN ARGS...: exit 2, nothing on stdout, one line on
# stderr starting "rdps-train: " and matching PATTERN.
usage() {
	local name=$1 pattern=$2 lines
	shift 2
	run "$TRAIN" "$@"
	lines=$(wc -l <"$tmp/err")
	((rc == 2)) || fail "$name: exit $rc, want 2 (rdps-train $*)"
	[[ -s $tmp/out ]] && fail "$name: stdout not empty: '$out'"
	if ((lines != 1)); then
		fail "$name: $lines lines on stderr, want 1: '$err'"
	elif [[ $err != "rdps-train: "* ]]; then
		fail "$name: stderr does not start with 'rdps-train: ': '$err'"
	elif ! [[ $err =~ $pattern ]]; then
		fail "$name: stderr '$err' does not match /$pattern/"
	fi
}

usage "no command" "which command" 
usage "bad command" "unknown command 'train'" train
usage "bad workload" "unknown workload 'svm'" run --workload svm
usage "bad spec" "bad straggler item '1:3' in '1:3'.*W:Fx" run --stragglers 1:3
usage "bad random spec" "P is a probability" run --stragglers random:2:3x
usage "twice" "worker 1 is slowed twice" run --stragglers 1:2x,1:3x
usage "bad batch" "bad mini-batch size '0'" run --batch 0
usage "bad lr" "bad learning rate 'fast'" run --lr fast
usage "bad option" "unknown option '--frobnicate'" run --frobnicate
usage "missing value" "needs a value" run --epochs
usage "stray argument" "unexpected argument 'extra'" run extra
usage "nnz > features" "--nnz 50 is more than --features 10" run --features 10 --nnz 50
usage "test without data" "--test needs --data" run --test x
usage "no job" "RDPS_SHARDS is not set.*rdps-launch" run
usage "exp bad spec" "bad straggler item" experiment --stragglers 2:x
usage "exp spec worker" "names worker 7.*workers 0 .. 3" experiment --stragglers 7:2x
usage "exp bad model" "bad model list 'bsp,fast'" experiment --models bsp,fast
usage "exp bad transport" "unknown transport 'rdma'" experiment --transport rdma
usage "exp data both" "add --workload" experiment --data x.txt
usage "gen no out" "give -o FILE" gen
usage "exp repeats" "bad repeat count .0.: use a whole number in 1 .. 20" experiment --repeats 0
usage "exp lasso shards" "--workload lasso runs on one shard, not 3" experiment -s 3

for cmd in "" run experiment gen; do
	run "$TRAIN" $cmd --help
	((rc == 0)) || fail "$cmd --help: exit $rc"
	[[ $out == Usage:* ]] || fail "$cmd --help: no usage on stdout"
	[[ -s $tmp/err ]] && fail "$cmd --help: stderr '$err'"
done
grep -q -- "--stragglers" <("$TRAIN" run --help) || fail "run --help lacks --stragglers"
grep -q -- "--json" <("$TRAIN" experiment --help) || fail "experiment --help lacks --json"

# A worker's spec naming a worker the job lacks: exit 2 through the
# launcher, with the reason.
run "$LAUNCH" -w 2 -- "$TRAIN" run --stragglers 5:2x
((rc == 2)) || fail "spec worker 5 of 2: exit $rc, want 2"
[[ $err =~ "names worker 5, but the job has workers 0 .. 1" ]] || fail "spec worker 5: '$err'"

usage "bad load" "bad straggler item 'load:1:2'.*D seconds in" run --stragglers load:1:2
usage "two loads" "two load items" run --stragglers load:1:0.5,load:2:1
usage "exp heartbeat" "heartbeat 10 ms is too short" experiment --heartbeat-ms 10
usage "bad zipf" "bad popularity exponent --zipf '5'" run --zipf 5

# Stragglers from real contention: every 0.05 s one worker's core gets a
# CPU hog for 0.03 s. Every worker reports the CPU it is bound to, where
# it and its hog were seen running (the same CPU), and its hogs; the hogs
# ran (CPU burnt) and the job still trains. Only the training thread and
# the hog are bound (2 of the threads): the library's pulse stays free to
# run elsewhere. The hog is a thread of the worker: once the launcher has
# returned, no worker process is left.
run "$LAUNCH" -w 3 -m bsp -- "$TRAIN" run --samples 60000 --features 500 \
	--nnz 40 --test-samples 500 --epochs 6 --stragglers load:0.05:0.03
((rc == 0)) || fail "load: exit $rc: $err"
hogs=0 cpu=0
for r in 0 1 2; do
	line=$(grep "^rdps-train: load: worker $r " <<<"$err")
	if [[ $line =~ \(pid\ ([0-9]+)\)\ on\ CPU\ ([0-9]+),\ ran\ on\ ([0-9]+),\ ([0-9]+)\ of\ ([0-9]+)\ threads\ bound\ to\ it:\ ([0-9]+)\ hogs\ of\ 0.03\ s,\ ran\ on\ ([0-9]+|-),\ ([0-9.]+)\ s\ CPU$ ]]; then
		pid=${BASH_REMATCH[1]} bound=${BASH_REMATCH[2]}
		((BASH_REMATCH[3] == bound)) ||
			fail "load: worker $r bound to CPU $bound ran on ${BASH_REMATCH[3]}"
		((BASH_REMATCH[4] == 2 && BASH_REMATCH[5] > 2)) || (($(nproc) == 1)) ||
			fail "load: worker $r: ${BASH_REMATCH[4]} of ${BASH_REMATCH[5]} threads bound, want the trainer and the hog"
		((BASH_REMATCH[6] == 0)) || [[ ${BASH_REMATCH[7]} == "$bound" ]] ||
			fail "load: worker $r on CPU $bound, its hog on ${BASH_REMATCH[7]}"
		hogs=$((hogs + BASH_REMATCH[6]))
		cpu=$(awk -v a="$cpu" -v b="${BASH_REMATCH[8]}" 'BEGIN { print a + b }')
		[[ ! -d /proc/$pid ]] || fail "load: worker $r (pid $pid) still there after the job"
	else
		fail "load: worker $r: no load line: '$line'"
	fi
done
final=$(grep '^final clock' <<<"$out")
echo "train_cli load: $hogs hogs, $cpu s CPU; $final"
((hogs >= 3)) || fail "load: $hogs hogs in the whole job, want at least 3"
awk -v c="$cpu" 'BEGIN { exit !(c > 0.01) }' || fail "load: the hogs burnt $cpu s CPU"
[[ $final =~ loss\ 0\.[0-5] ]] || fail "load: did not train: '$final'"

# A malformed data file: exit 1, file:line:col.
printf '+1 1:1 2:1\n-1 3:x\n' >"$tmp/bad.libsvm"
run "$LAUNCH" -w 1 -- "$TRAIN" run --data "$tmp/bad.libsvm"
((rc == 1)) || fail "bad data: exit $rc, want 1"
[[ $err =~ "bad.libsvm:2:6: bad value 'x' of feature 3" ]] || fail "bad data: '$err'"
# An empty file and CR-only line ends: named, with the fix.
: >"$tmp/empty.libsvm"
run "$LAUNCH" -w 1 -- "$TRAIN" run --data "$tmp/empty.libsvm"
((rc == 1)) || fail "empty data: exit $rc, want 1"
[[ $err =~ "empty.libsvm: no samples in it (the file is empty" ]] || fail "empty data: '$err'"
printf '+1 1:1\r-1 2:1\r' >"$tmp/cr.libsvm"
run "$LAUNCH" -w 1 -- "$TRAIN" run --data "$tmp/cr.libsvm"
((rc == 1)) || fail "CR-only data: exit $rc, want 1"
[[ $err =~ "cr.libsvm:1:7: carriage return inside a line: the lines end in CR only" ]] ||
	fail "CR-only data: '$err'"

# gen, then train from the file (held-out part of it), two workers.
run "$TRAIN" gen --workload lr --samples 3000 --features 100 --nnz 5 \
	-o "$tmp/lr.txt" --test-out "$tmp/lr-test.txt"
((rc == 0)) || fail "gen: exit $rc: $err"
[[ $(wc -l <"$tmp/lr.txt") == 3000 ]] || fail "gen: $(wc -l <"$tmp/lr.txt") lines, want 3000"
run "$LAUNCH" -w 2 -m absp -- "$TRAIN" run --data "$tmp/lr.txt" --pace 1 --epochs 3
((rc == 0)) || fail "run --data: exit $rc: $err"
final=$(grep '^final clock' "$tmp/out")
[[ $final =~ loss\ ([0-9.]+) ]] || fail "run --data: no final line: '$out'"
awk -v l="${BASH_REMATCH[1]:-1}" 'BEGIN { exit !(l < 0.69) }' ||
	fail "run --data: final loss ${BASH_REMATCH[1]:-?} not below ln 2"
run "$TRAIN" gen --workload mf --samples 2000 --users 50 --items 40 -o "$tmp/mf.txt"
run "$LAUNCH" -w 2 -m ssp -- "$TRAIN" run --workload mf --data "$tmp/mf.txt" --pace 1 -q --csv "$tmp/mf.csv"
((rc == 0)) || fail "mf run --data: exit $rc: $err"
[[ $(wc -l <"$tmp/mf.csv") -ge 2 ]] || fail "mf run: csv '$(cat "$tmp/mf.csv")'"

# A small experiment, each cell repeated twice: its outputs' shape.
run "$TRAIN" experiment --workload lr --stragglers 1:2x --samples 6000 \
	--features 200 --nnz 8 --test-samples 300 --epochs 2 --pace 1 \
	--repeats 2 --out "$tmp/exp" --json "$tmp/exp.json"
((rc == 0)) || fail "experiment: exit $rc: $err"
for m in BSP SSP1 SSP3 ASP A-BSP; do
	grep -q "^$m " "$tmp/out" || fail "experiment: no table row for $m"
done
[[ $out =~ target\ loss ]] || fail "experiment: table states no target"
# The claims block: a persistent straggler (1:2x) tests the two A-BSP
# claims on lr; no transient spec, so the SSP claim is not tested.
claim_re='^  (holds|does not hold|not decided) +'
grep -Eq "$claim_re""A-BSP faster than BSP, persistent straggler .*: lr, stragglers 1:2x: A-BSP [0-9.e-]+ s, BSP [0-9.e-]+ s: [0-9.]+x$" <<<"$out" ||
	fail "experiment: no A-BSP vs BSP claim: '$out'"
grep -Eq "$claim_re""A-BSP faster than SSP and ASP, gradient descent .*: lr, stragglers 1:2x: A-BSP " <<<"$out" ||
	fail "experiment: no A-BSP vs SSP/ASP claim"
grep -Eq "^  not tested +SSP faster than BSP, transient stragglers .*: no run of that kind$" <<<"$out" ||
	fail "experiment: the SSP claim is not 'not tested'"
python3 - "$tmp/exp.json" <<'PY' || fail "experiment: JSON rows wrong"
import json, math, sys
rows = json.load(open(sys.argv[1]))
assert [r["model"] for r in rows] == ["BSP", "SSP1", "SSP3", "ASP", "A-BSP"], rows
for r in rows:
    assert set(r) == {"workload", "stragglers", "model", "repeats",
                      "time_to_target_s", "time_to_target_s_range",
                      "speedup_vs_bsp", "final_loss", "final_loss_range",
                      "verdict"}, r
    assert r["verdict"] == "ok" and r["repeats"] == 2, r
    lo, hi = r["final_loss_range"]
    assert lo <= r["final_loss"] <= hi, r
    if r["time_to_target_s"] is not None:
        lo, hi = r["time_to_target_s_range"]
        assert lo <= r["time_to_target_s"] <= hi, r
    assert r["workload"] == "lr" and r["stragglers"] == "1:2x", r
    assert isinstance(r["final_loss"], float) and 0 < r["final_loss"] < 1, r
assert rows[0]["speedup_vs_bsp"] == 1.0, rows[0]
PY
head -1 "$tmp/exp/experiment.csv" | grep -qx "workload,stragglers,model,time_s,clock,worker,loss,gap,repeat" ||
	fail "experiment: csv header '$(head -1 "$tmp/exp/experiment.csv")'"
for m in BSP SSP1 SSP3 ASP A-BSP; do
	for rep in 0 1; do
		grep -q "^lr,1:2x,$m,.*,$rep\$" "$tmp/exp/experiment.csv" ||
			fail "experiment: no csv rows of $m repeat $rep"
	done
	grep -Eq "^$m +[0-9.]+( \[[0-9.]+, [0-9.]+\])? .* [0-9.]+ \[[0-9.]+, [0-9.]+\] " "$tmp/out" ||
		fail "experiment: $m's row shows no median [min, max]"
done
[[ $(grep -c '<polyline' "$tmp/exp/experiment.svg") == 10 ]] ||
	fail "experiment: svg has $(grep -c '<polyline' "$tmp/exp/experiment.svg") curves, want 10"
[[ $(grep -c 'stroke-width="2"/>' "$tmp/exp/experiment.svg") == 5 ]] ||
	fail "experiment: svg legend is not one entry per model"
grep -q '</svg>' "$tmp/exp/experiment.svg" || fail "experiment: svg not closed"

# A run that diverges is reported, not ranked: a learning rate of 1000
# sends the loss far above ln 2. Verdict in the table, the JSON and the
# SVG legend, no time to target or speedup, exit 1 unless --keep-going.
div_args=(experiment --workload lr --stragglers none --models bsp,asp
	--samples 6000 --features 200 --nnz 8 --test-samples 300 --epochs 2
	--pace 1 --lr 1000 --repeats 1 --out "$tmp/div" --json "$tmp/div.json")
run "$TRAIN" "${div_args[@]}"
((rc == 1)) || fail "diverged experiment: exit $rc, want 1"
[[ $err =~ "rdps-train: 2 run(s) diverged (verdict in the table): lower --lr, or give --keep-going" ]] ||
	fail "diverged experiment: stderr '$err'"
for m in BSP ASP; do
	[[ $out =~ $m\ +-\ +-\ +[0-9.]+\ +-\ +[0-9.]+\ +diverged\ \(lower\ --lr\) ]] ||
		fail "diverged experiment: no diverged row for $m: '$out'"
done
python3 - "$tmp/div.json" <<'PY' || fail "diverged experiment: JSON rows wrong"
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["model"] for r in rows] == ["BSP", "ASP"], rows
for r in rows:
    assert r["verdict"] == "diverged" and r["hint"] == "lower --lr", r
    assert r["speedup_vs_bsp"] is None and r["time_to_target_s"] is None, r
    assert r["final_loss"] > 0.7, r
PY
[[ $(grep -c '(diverged: lower --lr)</text>' "$tmp/div/experiment.svg") == 2 ]] ||
	fail "diverged experiment: svg legend does not mark both runs"
# One panel: the SVG is still wide enough for its title (7 px a char).
svg_w=$(grep -o '<svg [^>]*width="[0-9]*"' "$tmp/div/experiment.svg" | grep -o '[0-9]*"$' | tr -d '"')
title=$(grep -o '<text x="10" y="20" font-size="13">[^<]*' "$tmp/div/experiment.svg" | sed 's/.*>//')
((${svg_w:-0} >= 7 * ${#title})) ||
	fail "diverged experiment: svg ${svg_w:-?} px wide for a title of ${#title} chars"
run "$TRAIN" "${div_args[@]}" --keep-going
((rc == 0)) || fail "diverged experiment --keep-going: exit $rc, want 0"

if ((fails)); then
	echo "train_cli: $fails failure(s)" >&2
	exit 1
fi
echo "train_cli: all cases passed"
