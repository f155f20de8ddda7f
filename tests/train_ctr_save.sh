#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_ctr_save.sh RDPS_LAUNCH RDPS_TRAIN - "rdps-train run --workload ctr
# --save-model FILE" (tools/train/ctr.h, trn_ctr_save; the rows come from
# rdps_emb_export, read one-sided):
#  - BSP over shm and over tcp, 2 shards and 2 workers, on the same TSV
#    file: the two model files are byte-identical;
#  - the file holds exactly one row per distinct (field, value) of the
#    training file, counted here by awk (a missing field is a key too),
#    keys ascending and distinct, each line the key and dim values; its
#    header's row count agrees; the dense line holds 14 values;
#  - a factorization machine (--rank 3, asp) writes rows of 4 values;
#  - a file that cannot be written: one line naming it, exit 1;
#  - no job leaves a process or a /dev/shm entry behind.
set -u

LAUNCH=${1:?usage: train_ctr_save.sh RDPS_LAUNCH RDPS_TRAIN}
TRAIN=${2:?}
unset RDPS_LOG_LEVEL RDPS_SHARDS RDPS_RANK RDPS_WORKERS

. "$(dirname "$0")/train_lib.sh" # $tmp, fail, job

# check_model NAME FILE DIM: the layout of ctr.h, one row per distinct
# key of the training file.
check_model() {
	local name=$1 m=$2 dim=$3 rows lines
	if ! head -1 "$m" | grep -qx 'rdps-ctr-model 1'; then
		fail "$name: first line '$(head -1 "$m")'"
		return
	fi
	rows=$(sed -n '2s/^rank [0-9]* dim '"$dim"' rows \([0-9]*\)$/\1/p' "$m")
	lines=$(tail -n +4 "$m" | wc -l)
	[[ $rows == "$want" && $lines == "$want" ]] ||
		fail "$name: header '$(sed -n 2p "$m")', $lines rows; the data has $want distinct keys"
	awk 'NR == 3 && ($1 != "dense" || NF != 15) { exit 1 }' "$m" ||
		fail "$name: dense line '$(sed -n 3p "$m")'"
	tail -n +4 "$m" | awk -v d="$dim" \
		'NF != d + 1 || length($1) != 16 || $1 ~ /[^0-9a-f]/ { exit 1 }' ||
		fail "$name: a row line is not a 16-digit key and $dim values"
	tail -n +4 "$m" | cut -d' ' -f1 | LC_ALL=C sort -c -u 2>/dev/null ||
		fail "$name: keys are not in ascending order, or repeat"
}

if ! "$TRAIN" gen --workload ctr --samples 2000 --features 300 \
	-o "$tmp/train.tsv" 2>"$tmp/err"; then
	fail "gen: $(cat "$tmp/err")"
	exit 1
fi
# Distinct (categorical field, value) pairs; hex compared as numbers
# (leading zeros, case), a missing field its own key ("-": not hex).
want=$(awk -F'\t' '{
	for (i = 15; i <= 40; i++) {
		v = tolower($i)
		if (v == "") v = "-"; else { sub(/^0+/, "", v); v = "x" v }
		seen[i ":" v] = 1
	}
} END { print length(seen) }' "$tmp/train.tsv")

data=(--data "$tmp/train.tsv" --test "$tmp/train.tsv" --epochs 1 --pace 1 -q)
for t in shm tcp; do
	job "bsp-$t" -s 2 -w 2 -m bsp -t $t -a 127.0.0.1 -- "$TRAIN" run \
		--workload ctr "${data[@]}" --save-model "$tmp/bsp-$t.model"
	if ((rc != 0)); then
		fail "bsp-$t: job failed: $(tail -2 "$tmp/err")"
		continue
	fi
	check_model "bsp-$t" "$tmp/bsp-$t.model" 1
done
if cmp -s "$tmp/bsp-shm.model" "$tmp/bsp-tcp.model"; then
	echo "train_ctr_save bsp: shm and tcp write the same $(wc -c <"$tmp/bsp-shm.model") bytes, $want rows"
else
	fail "bsp: the shm and tcp model files differ"
fi

job "fm-asp" -s 2 -w 2 -m asp -- "$TRAIN" run --workload ctr "${data[@]}" \
	--rank 3 --save-model "$tmp/fm.model"
if ((rc != 0)); then
	fail "fm-asp: job failed: $(tail -2 "$tmp/err")"
else
	check_model "fm-asp" "$tmp/fm.model" 4
	echo "train_ctr_save fm: rows of 4 values"
fi

job "unwritable" -w 1 -- "$TRAIN" run --workload ctr "${data[@]}" \
	--save-model "$tmp/no/such/dir/m"
((rc == 1)) && grep -q "cannot open --save-model $tmp/no/such/dir/m" "$tmp/err" ||
	fail "unwritable: exit $rc, '$(grep -v '^rdps-launch' "$tmp/err")'"

if ((fails)); then
	echo "train_ctr_save: $fails failure(s)" >&2
	exit 1
fi
echo "train_ctr_save: all cases passed"
