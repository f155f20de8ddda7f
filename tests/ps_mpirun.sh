#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_mpirun.sh RDPS_RUN PS_WORKER - a whole job placed by Open MPI's
# mpirun on this machine: 5 ranks of rdps-run, 2 shards and 3 workers
# running ps_worker's sum check, over tcp and then shm. Exits 77
# (skipped) without mpirun.
set -u

RUN=${1:?usage: ps_mpirun.sh RDPS_RUN PS_WORKER}
PSW=${2:?usage: ps_mpirun.sh RDPS_RUN PS_WORKER}
. "$(dirname "$0")/ps_run_common.sh"

if ! command -v mpirun >/dev/null; then
	echo "skipped: mpirun not found (apt-get install openmpi-bin)"
	exit 77
fi
# mpirun refuses root unless told; harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No network discovery or MPI transports: the ranks never call MPI_Init.
export OMPI_MCA_btl=self OMPI_MCA_rmaps_base_oversubscribe=1
unset RDPS_LOG_LEVEL RDPS_RANK RDPS_WORKERS RDPS_SHARDS

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

job() {
	local name=$1 try
	shift
	for try in 1 2 3; do
		RDPS_ROOT=127.0.0.1:$(pick_port) || {
			echo "no free port found" >&2
			exit 1
		}
		export RDPS_ROOT
		timeout 50 mpirun -np 5 --oversubscribe --bind-to none \
			-x RDPS_ROOT "$RUN" "$@" >"$tmp/out" 2>"$tmp/err"
		rc=$?
		grep -q "is in use" "$tmp/err" || break
	done
	if ((rc != 0)); then
		echo "FAIL: $name: mpirun exit status $rc: $(head -c 2000 "$tmp/err")" >&2
		fails=$((fails + 1))
	elif ! grep -q '^OK sum: 3 workers x 500 pushes$' "$tmp/out"; then
		echo "FAIL: $name: no OK line: $(cat "$tmp/out")" >&2
		fails=$((fails + 1))
	fi
}

job tcp --shards 2 -- "$PSW" sum 500 7
job shm --shards 2 --transport shm -- "$PSW" sum 500 7

if ((fails)); then
	exit 1
fi
echo "ps_mpirun: all cases passed"
