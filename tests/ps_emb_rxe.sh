#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_emb_rxe.sh RXE_VM LAUNCH WORKER SHARE_DIR - embedding tables over verbs
# on real soft-RoCE (rdma_rxe) in one rxe-vm VM (tests/ps_emb_rxe_guest.sh:
# exactly-once, torn reads, a BSP job), then the same BSP job over shm and
# tcp here on the host: the index and rows of every shard must be
# byte-identical to the verbs run's. SHARE_DIR (the build tree, holding
# the binaries) is shared with the VM. Exit 77 (skipped) when the VMs
# cannot run (rxe_run.sh).
set -u

[ $# -eq 4 ] || { echo "usage: $0 RXE_VM LAUNCH WORKER SHARE_DIR" >&2; exit 2; }
vm=$1 launch=$2 worker=$3 share=$4
here=$(dirname "$0")
iters=${PS_EMB_RXE_ITERS:-10}
export RDPS_RXE_TIMEOUT=${RDPS_RXE_TIMEOUT:-150}

tmp=$(mktemp -d "$share/ps_emb_rxe.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

t0=$SECONDS
bash "$here/rxe_run.sh" "$vm" 1 --script "$here/ps_emb_rxe_guest.sh" \
	"$share" "$launch" "$worker" "$tmp" "$iters"
rc=$?
((rc == 77)) && exit 77
echo "ps_emb_rxe: VM part: exit $rc, $((SECONDS - t0)) s"
((rc == 0)) || exit "$rc"

verbs=
for f in "$tmp"/try*/verbs.bin; do [ -s "$f" ] && verbs=$f; done
[ -n "$verbs" ] || { echo "FAIL: the verbs BSP job wrote nothing" >&2; exit 1; }

fails=0
for tp in shm tcp; do
	if ! "$launch" --timeout 50 -t $tp -s 2 -w 4 -m bsp -- "$worker" bsp \
		"$iters" 7 "$tmp/$tp.bin"; then
		echo "FAIL: the BSP job over $tp failed" >&2
		fails=$((fails + 1))
	elif ! cmp "$tmp/$tp.bin" "$verbs"; then
		echo "FAIL: embedding index and rows over $tp and verbs differ" >&2
		fails=$((fails + 1))
	fi
done
((fails)) && exit 1
echo "ps_emb_rxe: index and rows identical over shm, tcp and verbs" \
	"($(stat -c %s "$verbs") B); $((SECONDS - t0)) s in all"
