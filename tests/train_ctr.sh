#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_ctr.sh RDPS_LAUNCH RDPS_TRAIN TRAIN_CTR_DUMP DATA_DIR - the
# click-through workload (rdps-train run --workload ctr), its weights in
# an embedding table:
#  - the Criteo TSV reader on a hand-written fixture (DATA_DIR/ctr-small.tsv:
#    empty fields, upper-case and short hex, negative integers, a "\r\n"
#    line end, an empty line) against values worked out by hand;
#  - malformed lines (field count, label, integer, hexadecimal): one line
#    naming file, line and field, exit 1, from the reader (and for two of
#    them from a job: one distinct line from its workers);
#  - with the default learning rate and small sizes, held-out log-loss
#    ends below 0.8 x its start (the zero model's log 2, BSP's first
#    evaluation) under BSP, SSP, ASP and A-BSP (a straggler, rounds cut,
#    every sample once a pass) on the generator, as a
#    factorization machine under ASP, and under BSP on a TSV file written
#    by "gen --workload ctr";
#  - BSP gives the same losses over shm and tcp, clock for clock over 20
#    clocks, and the same final rows (--save-model); a tcp shard once
#    sent a header READ's bytes after a later gather's, so a pull took
#    the old buckets for the new clock (test_tcp_order);
#  - "experiment --workload ctr" runs it;
#  - no job leaves a process or a /dev/shm entry behind.
# Resuming a ctr job after a shard's kill -9: train_ctr_resume.sh; its
# --save-model: train_ctr_save.sh.
set -u

LAUNCH=${1:?usage: train_ctr.sh RDPS_LAUNCH RDPS_TRAIN TRAIN_CTR_DUMP DATA_DIR}
TRAIN=${2:?}
DUMP=${3:?}
DATA=${4:?}
unset RDPS_LOG_LEVEL RDPS_SHARDS RDPS_RANK RDPS_WORKERS

. "$(dirname "$0")/train_lib.sh" # $tmp, fail, job

# The fixture, worked out by hand: log(1 + 1) = 0.693147, log(1 + 10) =
# 2.397895, log(1 + 3) = 1.386294, log(1 + 1000) = 6.908755, log(1 + 100)
# = 4.615121, to 5 places; -1 gives -log(2); 0 and empty fields give 0
# (not listed); upper-case hex reads as lower, "a" as 0000000a.
cat >"$tmp/want" <<'WANT'
0: y=0 I1=0.69315 I2=-0.69315 I5=2.39790 C1=68fd1e64 C2=80e26c9b C4=0000000a C26=ffffffff
1: y=1 I1=1.38629 I13=6.90875 C13=00000000
2: y=1 I1=4.61512 C7=1234abcd
WANT
if ! "$DUMP" "$DATA/ctr-small.tsv" >"$tmp/got" 2>"$tmp/err"; then
	fail "fixture: reader failed: $(cat "$tmp/err")"
elif ! diff -u "$tmp/want" "$tmp/got" >"$tmp/diff"; then
	fail "fixture: parsed values differ from the hand-worked ones: $(cat "$tmp/diff")"
else
	echo "train_ctr fixture: 3 samples as worked out by hand"
fi

# Malformed lines: line 1 is the fixture's first (good), line 2 is bad.
good=$(head -1 "$DATA/ctr-small.tsv")
# bad NAME LINE PATTERN [job]: with "job", also through a job.
bad() {
	local name=$1 line=$2 pattern=$3 lines
	printf '%s\n%s\n' "$good" "$line" >"$tmp/$name.tsv"
	"$DUMP" "$tmp/$name.tsv" >/dev/null 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	((rc == 1)) || fail "bad $name: reader exit $rc, want 1"
	((lines == 1)) || fail "bad $name: $lines lines: '$(cat "$tmp/err")'"
	grep -q -- "$name.tsv:2: $pattern" "$tmp/err" ||
		fail "bad $name: '$(cat "$tmp/err")' lacks /$name.tsv:2: $pattern/"
	[[ ${4-} == job ]] || return
	# The same line from a job: exit 1, one distinct line.
	job "bad $name" -w 2 -- "$TRAIN" run --workload ctr --data "$tmp/$name.tsv"
	grep -v '^rdps-launch: ' "$tmp/err" | sort -u >"$tmp/err1"
	lines=$(wc -l <"$tmp/err1")
	((rc == 1)) || fail "bad $name: job exit $rc, want 1"
	((lines == 1)) || fail "bad $name: job printed $lines distinct lines: '$(cat "$tmp/err1")'"
	grep -q -- "$name.tsv:2: $pattern" "$tmp/err1" ||
		fail "bad $name: job said '$(cat "$tmp/err1")'"
}
tab=$'\t'
bad fields "${good%"$tab"*}" "39 tab-separated fields, want 40" job
bad fields41 "$good${tab}1" "41 tab-separated fields, want 40"
bad label "2${good#0}" "label '2' is not 0 or 1"
bad label_word "yes${good#0}" "label 'yes' is not 0 or 1"
bad int "$(sed 's/\t10\t/\t1.5\t/' <<<"$good")" \
	"integer field I5 '1.5' is not a whole number"
bad hex "$(sed 's/68fd1e64/68fd1g64/' <<<"$good")" \
	"categorical field C1 '68fd1g64' is not 1 to 8 hexadecimal digits" job
bad hex9 "$(sed 's/68fd1e64/68fd1e640/' <<<"$good")" \
	"categorical field C1 '68fd1e640' is not 1 to 8 hexadecimal digits"
echo "train_ctr bad input: one line each, naming file, line and field"

# converge NAME MODEL ARGS...: a 3-worker job; its final loss (the CSV's
# last row) below 0.8 x log 2, the zero model's loss, which BSP's first
# evaluation must be.
converge() {
	local name=$1 model=$2 csv=$tmp/$1.csv first last auc
	shift 2
	job "$name" -w 3 -m "$model" -- "$TRAIN" run --workload ctr \
		--pace 1 --csv "$csv" "$@"
	if ((rc != 0)); then
		fail "$name: job failed: $(tail -2 "$tmp/err")"
		return
	fi
	first=$(head -1 "$csv" | cut -d, -f4)
	last=$(tail -1 "$csv" | cut -d, -f4)
	auc=$(grep '^final' "$tmp/out" | sed -n 's/.* auc \([0-9.]*\).*/\1/p')
	if [[ $model == bsp ]] && [[ $first != 0.693147 ]]; then
		fail "$name: first loss $first, want log 2 = 0.693147 (the zero model)"
	fi
	if awk -v b="$last" -v a="$auc" 'BEGIN { exit !(b < 0.8 * 0.693147 && a > 0.7) }'; then
		echo "train_ctr $name: loss $first -> $last, auc $auc"
	else
		fail "$name: loss $first -> $last (want below 0.8 x 0.693147), auc '$auc' (want above 0.7)"
	fi
}
small=(--samples 10000 --test-samples 1000 --features 1000)
for m in bsp ssp asp; do
	converge "gen-$m" $m "${small[@]}"
done
# A-BSP with a 3x straggler: rounds are cut between the ctr mini-batches,
# and every sample is still processed once per pass (--check-once).
converge "gen-absp" absp "${small[@]}" --stragglers 1:3x --check-once
grep -q '([1-9][0-9]* cut short' "$tmp/out" ||
	fail "gen-absp: no round was cut: $(grep once: "$tmp/out")"
# The factorization machine (--rank): rows of 1 + rank values.
converge "gen-fm-asp" asp "${small[@]}" --rank 4

# BSP: the same losses over tcp as over shm, clock for clock (the
# shards apply the workers' summed gradients in worker order), and the
# same rows at the end. Every clock's first pulls race the shards' apply
# of the clock before; 20 clocks give a wrong freshness check many
# chances to show.
for t in shm tcp; do
	job "bsp-$t" -s 2 -w 2 -m bsp -t $t -a 127.0.0.1 -- "$TRAIN" run \
		--workload ctr -q --pace 1 --csv "$tmp/bsp-$t.csv" \
		--samples 4000 --features 500 --test-samples 500 --epochs 1 \
		--clocks-per-epoch 20 --save-model "$tmp/bsp-$t.model"
	((rc == 0)) || fail "bsp-$t: job failed: $(tail -2 "$tmp/err")"
done
if cmp -s <(cut -d, -f2,4 "$tmp/bsp-shm.csv") <(cut -d, -f2,4 "$tmp/bsp-tcp.csv"); then
	echo "train_ctr bsp: shm and tcp give the same losses over $(wc -l <"$tmp/bsp-shm.csv") rows"
else
	fail "bsp: shm and tcp losses differ (clock,loss; < shm, > tcp): $(diff <(cut -d, -f2,4 "$tmp/bsp-shm.csv") <(cut -d, -f2,4 "$tmp/bsp-tcp.csv") | head -6 | tr '\n' ' ')"
fi
if ! cmp -s "$tmp/bsp-shm.model" "$tmp/bsp-tcp.model"; then
	fail "bsp: shm and tcp end with different rows (key values; < shm, > tcp): $(diff "$tmp/bsp-shm.model" "$tmp/bsp-tcp.model" | head -6 | tr '\n' ' ')"
fi

# A file in Criteo's layout, written by gen: the reader takes every line,
# and training on it (a tenth held out) converges too.
if "$TRAIN" gen --workload ctr "${small[@]}" -o "$tmp/gen.tsv"; then
	n=$("$DUMP" "$tmp/gen.tsv" | wc -l)
	((n == 10000)) || fail "gen ctr: the reader parsed $n of 10000 lines"
	converge "file-bsp" bsp --data "$tmp/gen.tsv"
else
	fail "gen --workload ctr"
fi

# The experiment chooses it like the other workloads.
"$TRAIN" experiment --workload ctr --models bsp,asp --stragglers none \
	--repeats 1 "${small[@]}" --epochs 1 --pace 1 --out "$tmp/exp" \
	>"$tmp/out" 2>"$tmp/err"
rc=$?
((rc == 0)) || fail "experiment: exit $rc: $(tail -3 "$tmp/err")"
grep -q '^ctr,none,ASP,' "$tmp/exp/experiment.csv" ||
	fail "experiment: no ctr ASP rows in its CSV"
grep -q '^ctr: every model processes 1 epoch' "$tmp/out" ||
	fail "experiment: '$(head -3 "$tmp/out")' does not state the ctr workload"

if ((fails)); then
	echo "train_ctr: $fails failure(s)" >&2
	exit 1
fi
echo "train_ctr: all cases passed"
