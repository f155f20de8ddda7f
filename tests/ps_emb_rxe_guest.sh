#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_emb_rxe_guest.sh LAUNCH WORKER DIR ITERS - embedding-table jobs over
# verbs on soft-RoCE, run inside one rxe-vm VM by "rxe_run.sh --script"
# (tests/ps_emb_rxe.sh starts it and checks DIR). WORKER is
# tests/emb_worker: "once" (exactly-once apply, 3 workers, bsp), "torn"
# (a reader racing the shard's rewrites, asp), "cache" (the location
# cache's stale places, 1 worker, asp) and "bsp ITERS" (4 workers),
# whose raw index and rows go to DIR/verbs.bin for the host to compare with
# the same job over shm and tcp.
set -u

launch=$1 worker=$2 dir=$3 iters=$4
ip=${RXE_IP%/*}

[ -e /sys/class/infiniband/rxe0 ] || { echo "ps_emb_rxe: no rxe0 in the VM"; exit 77; }
# rxe_run.sh may try twice: keep the outputs of the tries apart.
dir=$dir/try${RXE_RUN_TRY:-1}
mkdir -p "$dir" || exit 1

fails=0
job() {
	local name=$1 s=$2 w=$3 m=$4 t0=$SECONDS rc
	shift 4
	"$launch" --timeout 60 -t verbs -a "$ip" -s "$s" -w "$w" -m "$m" -- \
		"$worker" "$@"
	rc=$?
	echo "ps_emb_rxe: job $name (verbs, $s shards, $w workers): exit $rc, $((SECONDS - t0)) s"
	((rc == 0)) || fails=$((fails + 1))
}

job once 2 3 bsp once 20 1
job torn 1 2 asp torn 5000
job cache 1 1 asp cache
job bsp 2 4 bsp bsp "$iters" 5 "$dir/verbs.bin"
exit $((fails ? 1 : 0))
