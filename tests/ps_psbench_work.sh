#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_psbench_work.sh RDPS_LAUNCH RDPS_PSBENCH TRANSPORT - rdps-psbench -W
# (a caller's work between calls): a sample is the work and the call less
# the work's median alone, so an 8-byte pull after 8 MiB of reading is
# reported as far less than the reading (without the subtraction it is
# more); -W on a test it does not apply to is one error line.
set -u

usage="usage: ps_psbench_work.sh RDPS_LAUNCH RDPS_PSBENCH shm|tcp"
LAUNCH=${1:?$usage}
PSBENCH=${2:?$usage}
TP=${3:?$usage}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

if "$PSBENCH" -W 64k tick >"$tmp/out" 2>"$tmp/err"; then
	echo "FAIL: rdps-psbench -W 64k tick succeeded" >&2
	fails=$((fails + 1))
elif [[ -s $tmp/out || $(wc -l <"$tmp/err") != 1 ]] ||
	! grep -q -- '-W/--work is for pull, push and round' "$tmp/err"; then
	echo "FAIL: -W with tick: want one error line naming -W, got:" >&2
	cat "$tmp/out" "$tmp/err" >&2
	fails=$((fails + 1))
fi

if ! "$LAUNCH" --timeout 40 -t "$TP" -w 1 -m asp -- "$PSBENCH" -j \
	-W 8m -s 8 -n 300 pull >"$tmp/out" 2>"$tmp/err"; then
	echo "FAIL: rdps-psbench -W 8m pull failed:" >&2
	tail -5 "$tmp/err" >&2
	fails=$((fails + 1))
else
	# median_us is the call; work_us (8 MiB read from its own memory)
	# takes hundreds of us: the call must come out under a quarter of it
	# (it may come out below 0: two medians of a noisy machine).
	line=$(tail -1 "$tmp/out")
	med=$(sed -n 's/.*"median_us":\([-0-9.]*\).*/\1/p' <<<"$line")
	work=$(sed -n 's/.*"work_us":\([-0-9.]*\).*/\1/p' <<<"$line")
	if [[ -z $med || -z $work ]] ||
		! awk -v m="$med" -v w="$work" \
			'BEGIN { exit !(w > 0 && m < w / 4) }'; then
		echo "FAIL: want median_us < work_us / 4: $line" >&2
		fails=$((fails + 1))
	fi
fi

if ((fails)); then
	exit 1
fi
echo "ps_psbench_work: ok"
