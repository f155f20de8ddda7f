#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ps_rxe_guest.sh LAUNCH SERVER WORKER DIR SUM_N BSP_ITERS - parameter-server
# jobs over verbs on real soft-RoCE, run inside the rxe-vm VMs by
# "rxe_run.sh --script" (see ps_rxe.sh, which starts it and checks DIR).
# LAUNCH, SERVER, WORKER: rdps-launch, rdps-server, tests/ps_worker. The
# jobs: "ps_worker sum SUM_N" (exactly-once sums, 3 workers),
# "ps_worker bsp BSP_ITERS" (4 workers), whose parameters go to DIR (in
# the shared directory) as verbs.bin (one VM) or verbs2.bin (two VMs),
# then "ps_worker cut 20" (A-BSP cuts, 3 workers) and "ps_worker zcopy 2"
# (pushes from rdps_buf_alloc memory, payload and header in two writes);
# one VM also runs tests/ps_fail.sh and tests/ps_lose.sh over verbs, and
# fails a job of the four that succeeds but warns (or errs) on stderr.
#
# One VM: rdps-launch --transport verbs --addr $RXE_IP runs the jobs, all
# QPs on rxe0.
# Two VMs: node 1 runs the two rdps-server shards of each job on fixed
# ports of its address; node 0 runs the workers with RDPS_SHARDS pointing
# there. They meet through files in DIR (the shared directory is the same
# host directory in both VMs): node 1 writes JOB.s<I> (the shard's URL)
# once shard I listens, node 0 starts the workers when both are there and
# writes JOB.done (its status) when they finished; node 1 then stops its
# shards. A side that cannot go on writes "abort" and exits 1; the other
# side sees it and exits too; each gives up after a deadline, so a dead
# peer fails the run instead of hanging it.
set -u

launch=$1 server=$2 worker=$3 dir=$4 sum_n=$5 bsp_iters=$6
ip=${RXE_IP%/*}
node=${RXE_NODE:-0}
shards=2
wait_s=90 # for the peer's files
# The jobs: name, workers, model, worker arguments (@OUT@: the BSP output).
jobs=("sum 3 bsp sum $sum_n 1" "bsp 4 bsp bsp $bsp_iters 5 @OUT@"
	"cut 3 absp cut 20" "zcopy 3 bsp zcopy 2")

[ -e /sys/class/infiniband/rxe0 ] || { echo "ps_rxe: no rxe0 in the VM"; exit 77; }
# rxe_run.sh may try twice: keep the rendezvous files of the tries apart.
dir=$dir/try${RXE_RUN_TRY:-1}
[ -n "${RXE_PEER_IP:-}" ] || mkdir -p "$dir" || exit 1

fails=0
pids=()
# A warning or error line (rdps log lines read "rdps[PID] warn ...").
noisy='(^|[^a-z])(warn|warning|error)([^a-z]|$)'
note() { echo "ps_rxe[n$node]: $*"; }

# wait_for FILE [PID]: until FILE is non-empty (0); 1 at the deadline; 2 if
# the other node aborted or process PID is gone.
wait_for() {
	local end=$((SECONDS + wait_s))

	while [ ! -s "$1" ]; do
		[ ! -e "$dir/abort" ] || return 2
		[ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 2
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

abort() {
	note "$*"
	echo "$*" >"$dir/abort"
	[ -z "${pids[*]:-}" ] || kill -TERM "${pids[@]}" 2>/dev/null
	wait
	exit 1
}

if [ -z "${RXE_PEER_IP:-}" ]; then
	for j in "${jobs[@]}"; do
		read -ra a <<<"$j"
		name=${a[0]} w=${a[1]} m=${a[2]}
		args=("${a[@]:3}")
		args=("${args[@]//@OUT@/$dir/verbs.bin}")
		t0=$SECONDS
		"$launch" --timeout 60 -t verbs -a "$ip" -s $shards -w "$w" \
			-m "$m" -- "$worker" "${args[@]}" 2>"$dir/$name.err"
		rc=$?
		cat "$dir/$name.err" >&2
		note "job $name (verbs, $shards shards, $w workers): exit $rc, $((SECONDS - t0)) s"
		((rc == 0)) || fails=$((fails + 1))
		# A job that ends normally warns of nothing (tests/ps_quiet.sh
		# checks shm and tcp the same way).
		if ((rc == 0)) && grep -Eiq "$noisy" "$dir/$name.err"; then
			note "job $name succeeded but its stderr has warnings or errors:"
			grep -Ei "$noisy" "$dir/$name.err"
			fails=$((fails + 1))
		fi
	done
	# kill -9 of a worker and of a shard: named, no hang (tests/ps_fail.sh).
	t0=$SECONDS
	PS_FAIL_REPS=1 bash "${dir%/try*}/ps_fail.sh" "$launch" "$worker" verbs "$ip"
	rc=$?
	note "failure detection (verbs): exit $rc, $((SECONDS - t0)) s"
	((rc == 0)) || fails=$((fails + 1))
	# A lost worker: SSP/ASP go on without it (tests/ps_lose.sh).
	t0=$SECONDS
	bash "${dir%/try*}/ps_lose.sh" "$launch" "$worker" verbs "$ip"
	rc=$?
	note "lost workers (verbs): exit $rc, $((SECONDS - t0)) s"
	((rc == 0)) || fails=$((fails + 1))
	exit $((fails ? 1 : 0))
fi

if [ "$node" = 1 ]; then
	mkdir -p "$dir" || exit 1
	tok=1000
	for j in "${jobs[@]}"; do
		read -ra a <<<"$j"
		name=${a[0]} w=${a[1]} m=${a[2]}
		tok=$((tok + 1))
		pids=()
		for ((i = 0; i < shards; i++)); do
			"$server" --listen "verbs://$ip:$((7480 + i))" --shard $i \
				--shards $shards --workers "$w" --model "$m" --token $tok \
				--report-fd 3 3>"$dir/$name.s$i.tmp" &
			pids+=($!)
		done
		# Publish each URL only once complete: rename is atomic.
		for ((i = 0; i < shards; i++)); do
			wait_for "$dir/$name.s$i.tmp" "${pids[i]}" ||
				abort "job $name: shard $i did not start"
			mv "$dir/$name.s$i.tmp" "$dir/$name.s$i"
		done
		wait_for "$dir/$name.done" ||
			abort "job $name: no word from node 0 (done) within $wait_s s"
		kill -TERM "${pids[@]}" 2>/dev/null
		for ((i = 0; i < shards; i++)); do
			wait "${pids[i]}"
			rc=$?
			# 0: stopped cleanly by the SIGTERM above.
			((rc == 0)) || { note "job $name: shard $i exit $rc"; fails=$((fails + 1)); }
		done
	done
	exit $((fails ? 1 : 0))
fi

tok=1000
for j in "${jobs[@]}"; do
	read -ra a <<<"$j"
	name=${a[0]} w=${a[1]} m=${a[2]}
	args=("${a[@]:3}")
	args=("${args[@]//@OUT@/$dir/verbs2.bin}")
	tok=$((tok + 1))
	t0=$SECONDS
	urls=
	for ((i = 0; i < shards; i++)); do
		wait_for "$dir/$name.s$i" ||
			abort "job $name: shard $i on node 1 did not come up within $wait_s s"
		urls=$urls${urls:+,}$(cat "$dir/$name.s$i")
	done
	pids=()
	for ((r = 0; r < w; r++)); do
		RDPS_SHARDS=$urls RDPS_RANK=$r RDPS_WORKERS=$w RDPS_MODEL=$m \
			RDPS_SLACK=0 RDPS_TOKEN=$tok timeout 90 "$worker" "${args[@]}" &
		pids+=($!)
	done
	rc=0
	for p in "${pids[@]}"; do
		wait "$p" || { s=$?; ((rc)) || rc=$s; }
	done
	echo "$rc" >"$dir/$name.done"
	note "job $name (verbs, $shards shards on node 1 at $urls, $w workers here): exit $rc, $((SECONDS - t0)) s"
	((rc == 0)) || fails=$((fails + 1))
done
exit $((fails ? 1 : 0))
