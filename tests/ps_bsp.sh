#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_bsp.sh RDPS_LAUNCH PS_WORKER - BSP is deterministic: the same job run
# twice on shm with different per-worker delays and once on tcp (another
# shard count too) must leave bit-identical parameters. Once per update
# rule kind: deltas (SGD), puts (PUT, overlapping ranges: the last worker
# in rank order wins) and keep-if-better blocks (PUT_IF_BETTER; the same
# shard count on tcp, since a block is decided per shard).
set -u

LAUNCH=${1:?usage: ps_bsp.sh PATH/TO/rdps-launch PATH/TO/ps_worker}
WORKER=${2:?usage: ps_bsp.sh PATH/TO/rdps-launch PATH/TO/ps_worker}
ITERS=${PS_BSP_ITERS:-20}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fails=0
job() {
	local name=$1
	shift
	if ! "$LAUNCH" --timeout 50 -w 4 "$@" -- "$WORKER" bsp "$ITERS" \
		"$seed" "$tmp/$name.bin" $rule; then
		echo "FAIL: bsp job '$name' ($*) failed" >&2
		fails=$((fails + 1))
	elif [[ ! -s $tmp/$name.bin ]]; then
		echo "FAIL: bsp job '$name' wrote no parameters" >&2
		fails=$((fails + 1))
	fi
}

for rule in "" put put-if-better; do
	tcp_shards=3
	[[ $rule == put-if-better ]] && tcp_shards=2
	seed=1 job shm1 -s 2 -t shm
	seed=2 job shm2 -s 2 -t shm
	seed=3 job tcp -s $tcp_shards -t tcp
	((fails)) && exit 1

	for other in shm2 tcp; do
		if ! cmp "$tmp/shm1.bin" "$tmp/$other.bin"; then
			echo "FAIL: rule ${rule:-sgd}: parameters of shm1 and $other differ" >&2
			fails=$((fails + 1))
		fi
	done
	((fails)) && exit 1
	echo "ps_bsp: rule ${rule:-sgd}: 3 jobs, identical parameters ($(stat -c %s "$tmp/shm1.bin") B)"
	cp "$tmp/shm1.bin" "$tmp/rule-${rule:-sgd}.bin"
done
# The rules really differ (else the put rows tested nothing new).
if cmp -s "$tmp/rule-put.bin" "$tmp/rule-put-if-better.bin" ||
	cmp -s "$tmp/rule-sgd.bin" "$tmp/rule-put.bin"; then
	echo "FAIL: the rules' parameters are the same" >&2
	exit 1
fi
