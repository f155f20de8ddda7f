#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_emb_overflow.sh RDPS_LAUNCH EMB_WORKER TRANSPORT - under BSP, a new
# key whose two candidate buckets are both full is found only at clock
# end: what happens is what src/ps_proto.h ("Embedding tables") documents.
# emb_worker overflow checks the worker's side (the update lost, the other
# keys applied, every later push refused with -ENOSPC naming the table
# and its capacity); this script checks the shard logged it, naming the
# table, the key and that the table refuses pushes from then on.
set -u

LAUNCH=${1:?usage: ps_emb_overflow.sh RDPS_LAUNCH EMB_WORKER TRANSPORT}
WORKER=${2:?usage: ps_emb_overflow.sh RDPS_LAUNCH EMB_WORKER TRANSPORT}
TP=${3:?usage: ps_emb_overflow.sh RDPS_LAUNCH EMB_WORKER TRANSPORT}
unset RDPS_LOG_LEVEL

err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$("$LAUNCH" --timeout 40 -t "$TP" -s 1 -w 1 --model bsp -- "$WORKER" \
	overflow 2>"$err") || {
	echo "FAIL: the overflow job failed: $(tail -3 "$err")" >&2
	exit 1
}
key=$(sed -n 's/^OK overflow: key \([0-9]*\) .*/\1/p' <<<"$out")
[[ -n $key ]] || {
	echo "FAIL: the worker did not say OK: $out" >&2
	exit 1
}
grep -q "embedding table 'ovf': both buckets of key $key are full on shard 0: its update of clock [0-9]* is lost; the table refuses pushes from now on" "$err" || {
	echo "FAIL: the shard did not log the overflow of key $key:" >&2
	cat "$err" >&2
	exit 1
}
echo "ps_emb_overflow ($TP): $out; the shard logged it"
