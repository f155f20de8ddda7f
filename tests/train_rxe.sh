#!/bin/bash
# SPDX-License-Identifier: MIT
#
# train_rxe.sh RXE_VM RDPS_LAUNCH RDPS_TRAIN SHARE_DIR - train_once.sh over
# verbs on real soft-RoCE (rdma_rxe), in one rxe-vm VM: rdps-launch
# --transport verbs --addr $RXE_IP runs the A-BSP exactly-once jobs there.
# SHARE_DIR (the build tree, holding the binaries) is shared with the VM;
# train_once.sh (and train_lib.sh, which it sources) is copied into it,
# since the VM sees only that directory.
# Exit 77 (skipped) with one line when the VM cannot run (rxe_run.sh).
set -u

[ $# -eq 4 ] || { echo "usage: $0 RXE_VM RDPS_LAUNCH RDPS_TRAIN SHARE_DIR" >&2; exit 2; }
vm=$1 launch=$2 train=$3 share=$4
here=$(cd "$(dirname "$0")" && pwd)
# One try of the VM: a 20 s boot under TCG, then the jobs, slower there.
export RDPS_RXE_TIMEOUT=${RDPS_RXE_TIMEOUT:-300}

tmp=$(mktemp -d "$share/train_rxe.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$here/train_once.sh" "$here/train_lib.sh" "$tmp/" || exit 1
cat >"$tmp/guest.sh" <<'GUEST'
launch=$1 train=$2 dir=$3
[ -e /sys/class/infiniband/rxe0 ] || { echo "train_rxe: no rxe0 in the VM"; exit 77; }
TRAIN_ONCE_ADDR=${RXE_IP%/*} TRAIN_ONCE_QUICK=1 \
	bash "$dir/train_once.sh" "$launch" "$train" verbs
GUEST
t0=$SECONDS
bash "$here/rxe_run.sh" "$vm" 1 --script "$tmp/guest.sh" "$share" \
	"$launch" "$train" "$tmp"
rc=$?
((rc == 77)) && exit 77
echo "train_rxe: exit $rc, $((SECONDS - t0)) s"
exit $rc
