#!/bin/bash
# SPDX-License-Identifier: MIT
#
# rxe_run.sh RXE_VM NODES BINARY SHARE_DIR
# rxe_run.sh RXE_VM NODES --script SCRIPT SHARE_DIR [ARG...]
#
# Runs the verbs conformance suite BINARY over real soft-RoCE (rdma_rxe) in
# QEMU VMs booted by RXE_VM (../shared/rxe-vm/rxe-vm). SHARE_DIR (the build
# tree, holding BINARY) is mounted read-write in the guest at the same path.
#   NODES 1: one VM; targets, peers and the test all on rxe0 there.
#   NODES 2: two VMs; node 1 serves targets (BINARY --serve-targets PORT),
#            node 0 runs the suite with RDPS_TEST_REMOTE=node1:PORT, so the
#            one-sided operations cross the wire. Both exit statuses count.
# With --script, every VM runs the bash SCRIPT (a file on the host; its
# text becomes the VMs' commands) with ARGs as its positional parameters
# instead, in SHARE_DIR; the script tells the nodes apart by $RXE_NODE.
# Exit: the suite's status; 77 (ctest: skipped) with one line saying why
# when this machine cannot run the VMs.
set -u

skip() {
	echo "rxe_run: skipped: $*"
	exit 77
}

usage="usage: $0 RXE_VM NODES BINARY SHARE_DIR
       $0 RXE_VM NODES --script SCRIPT SHARE_DIR [ARG...]"
script=
if [ "${3:-}" = --script ]; then
	[ $# -ge 5 ] || { echo "$usage" >&2; exit 2; }
	vm=$1 nodes=$2 script=$4 share=$5
	shift 5
else
	[ $# -eq 4 ] || { echo "$usage" >&2; exit 2; }
	vm=$1 nodes=$2 bin=$3 share=$4
fi
port=7471
timeout=${RDPS_RXE_TIMEOUT:-200}
cache=${RXE_VM_CACHE:-/var/cache/rxe-vm}

[ "$vm" != none ] || skip "no rxe-vm (expected at ../shared/rxe-vm/rxe-vm beside the source tree; or -DRDPS_RXE_VM=PATH)"
[ -x "$vm" ] || skip "rxe-vm not found at '$vm' (set -DRDPS_RXE_VM=PATH)"
command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 is not installed (run: $vm setup)"
if [ ! -e "$cache/vmlinux" ]; then
	# rxe-vm run builds the cache itself when it can: as root, with the
	# kernel package in the apt lists and the unpacking tools present.
	[ "$(id -u)" = 0 ] || skip "no VM kernel in $cache and not root to build it (run: $vm build)"
	for t in apt-get dpkg-deb depmod cpio xz busybox; do
		command -v $t >/dev/null || [ -x /usr/bin/$t ] ||
			skip "no VM kernel in $cache and no $t to build it (run: $vm setup)"
	done
	apt-cache depends linux-image-amd64 2>/dev/null | grep -q 'Depends: linux-image-[0-9]' ||
		skip "no VM kernel in $cache and linux-image-amd64 is not in the apt lists (run: $vm setup)"
fi
if [ -n "$script" ]; then
	[ -r "$script" ] || { echo "rxe_run: cannot read the script $script" >&2; exit 1; }
	# In a subshell, so that its exit still reaches the status check below.
	cmd="(set -- $(printf '%q ' "$@")
$(cat "$script")
)"
else
	[ -x "$bin" ] || { echo "rxe_run: no test binary at $bin" >&2; exit 1; }
	case $bin in
	"$share"/*) ;;
	*) echo "rxe_run: $bin is not under the shared directory $share" >&2; exit 1 ;;
	esac
	if [ "$nodes" = 1 ]; then
		cmd="RDPS_TEST_ADDR=\${RXE_IP%/*} '$bin'"
	else
		cmd="if [ \"\$RXE_NODE\" = 1 ]; then '$bin' --serve-targets $port;
		     else RDPS_TEST_ADDR=\${RXE_IP%/*} RDPS_TEST_REMOTE=\${RXE_PEER_IP%/*}:$port '$bin'; fi"
	fi
fi
# A suite (or script) that skips inside the VM means rxe did not come up:
# a failure.
cmd="$cmd; rc=\$?; [ \$rc != 77 ] || { echo 'rxe_run: no rxe device in the VM'; rc=1; }; exit \$rc"
cd "$share" || exit 1
# RoCE MTU 4096: a 4 MiB read is 1024 packets instead of 4096, which the
# emulated wire between two VMs carries without drops (with 1024-byte
# packets it drops some, and each loss costs a ~3 s retransmission).
export RXE_VM_MTU=${RXE_VM_MTU:-9000}
log=$(mktemp /tmp/rxe_run.XXXXXX) || exit 1
trap 'rm -f "$log"' EXIT
for try in 1 2; do
	# RXE_RUN_TRY lets a script keep the files of its tries apart.
	"$vm" run -t "$timeout" -n "$nodes" -s "$share" -- "RXE_RUN_TRY=$try; $cmd" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# Under load the emulated virtio-net wire between two QEMUs can stall
	# for good (the guest kernel logs a TX watchdog timeout): that is the
	# VM plumbing, not rdps, so it earns one more try. Any other failure,
	# including a hang of our own, is the result.
	if [ "$try" = 1 ] && { [ "$rc" = 124 ] || [ "$rc" = 125 ]; } &&
		grep -q 'NETDEV WATCHDOG' "$log"; then
		echo "rxe_run: the VMs' emulated wire stalled (virtio-net TX timeout); trying once more"
		continue
	fi
	exit "$rc"
done
