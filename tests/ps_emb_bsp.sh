#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_emb_bsp.sh RDPS_LAUNCH EMB_WORKER - BSP embedding tables are
# deterministic: the same job run twice on shm with different per-worker
# delays and once on tcp must leave byte-identical indexes and rows on
# every shard (rows are handed out in insert order, so any change of
# order shows).
set -u

LAUNCH=${1:?usage: ps_emb_bsp.sh PATH/TO/rdps-launch PATH/TO/emb_worker}
WORKER=${2:?usage: ps_emb_bsp.sh PATH/TO/rdps-launch PATH/TO/emb_worker}
ITERS=${PS_EMB_BSP_ITERS:-15}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fails=0
job() {
	local name=$1
	shift
	if ! "$LAUNCH" --timeout 40 -w 4 -s 2 --model bsp "$@" -- "$WORKER" \
		bsp "$ITERS" "$seed" "$tmp/$name.bin"; then
		echo "FAIL: emb bsp job '$name' ($*) failed" >&2
		fails=$((fails + 1))
	elif [[ ! -s $tmp/$name.bin ]]; then
		echo "FAIL: emb bsp job '$name' wrote nothing" >&2
		fails=$((fails + 1))
	fi
}

seed=1 job shm1 -t shm
seed=2 job shm2 -t shm
seed=3 job tcp -t tcp
((fails)) && exit 1

for other in shm2 tcp; do
	if ! cmp "$tmp/shm1.bin" "$tmp/$other.bin"; then
		echo "FAIL: embedding index and rows of shm1 and $other differ" >&2
		fails=$((fails + 1))
	fi
done
((fails)) && exit 1
echo "ps_emb_bsp: 3 jobs, identical index and rows ($(stat -c %s "$tmp/shm1.bin") B)"
