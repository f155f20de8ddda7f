#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_rxe.sh NODES RXE_VM LAUNCH SERVER WORKER SHARE_DIR - parameter-server
# jobs over verbs on real soft-RoCE (rdma_rxe) in rxe-vm VMs.
#   NODES 1: rdps-launch --transport verbs in one VM.
#   NODES 2: the shards in one VM, the workers in the other.
# One VM boot (per node) runs both jobs of ps_rxe_guest.sh: "ps_worker
# sum" (every push applied exactly once) and the BSP job, whose parameters
# must then be bit-identical to the same job's over shm and tcp, run here
# on the host. SHARE_DIR (the build tree, holding the binaries) is shared
# with the VMs. Exit 77 (skipped) when the VMs cannot run (rxe_run.sh).
set -u

[ $# -eq 6 ] || { echo "usage: $0 NODES RXE_VM LAUNCH SERVER WORKER SHARE_DIR" >&2; exit 2; }
nodes=$1 vm=$2 launch=$3 server=$4 worker=$5 share=$6
here=$(dirname "$0")
# The VM work: 1 vCPU per VM with two, and ~0.25 ms a round trip between
# them, hence fewer pushes there.
if [ "$nodes" = 1 ]; then sum_n=${PS_RXE_SUM_N:-500}; else sum_n=${PS_RXE_SUM_N:-150}; fi
iters=${PS_RXE_BSP_ITERS:-20}
# Each try of the VMs; they take 30-60 s on a quiet host and up to 160 s
# at a load of 30 on 2 cores; rxe_run.sh may try twice (ctest: 420 s).
export RDPS_RXE_TIMEOUT=${RDPS_RXE_TIMEOUT:-200}

tmp=$(mktemp -d "$share/ps_rxe.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# The failure-detection tests run in the VM too (one VM: verbs).
cp "$here/ps_fail.sh" "$here/ps_lose.sh" "$tmp/" || exit 1

t0=$SECONDS
bash "$here/rxe_run.sh" "$vm" "$nodes" --script "$here/ps_rxe_guest.sh" \
	"$share" "$launch" "$server" "$worker" "$tmp" "$sum_n" "$iters"
rc=$?
((rc == 77)) && exit 77
echo "ps_rxe: VM part: exit $rc, $((SECONDS - t0)) s"
((rc == 0)) || exit "$rc"

# The last try of rxe_run.sh is the one that counts.
name=$([ "$nodes" = 1 ] && echo verbs.bin || echo verbs2.bin)
verbs=
for f in "$tmp"/try*/"$name"; do [ -s "$f" ] && verbs=$f; done
[ -n "$verbs" ] || { echo "FAIL: the verbs BSP job wrote no parameters" >&2; exit 1; }

fails=0
for tp in shm tcp; do
	s=$([ $tp = shm ] && echo 2 || echo 3)
	if ! "$launch" --timeout 50 -t $tp -s "$s" -w 4 -- "$worker" bsp "$iters" 7 \
		"$tmp/$tp.bin"; then
		echo "FAIL: the BSP job over $tp failed" >&2
		fails=$((fails + 1))
	elif ! cmp "$tmp/$tp.bin" "$verbs"; then
		echo "FAIL: BSP parameters over $tp and verbs ($nodes VM(s)) differ" >&2
		fails=$((fails + 1))
	fi
done
((fails)) && exit 1
echo "ps_rxe: BSP parameters identical over shm, tcp and verbs ($nodes VM(s)," \
	"$(stat -c %s "$verbs") B); $((SECONDS - t0)) s in all"
