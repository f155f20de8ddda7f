#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, then
#   1. gcc, warnings as errors: build + ctest (verbs over rxe in a VM when
#      ../shared/rxe-vm is there)
#   2. gcc, ASan+UBSan: build + ctest
#   3. clang, warnings as errors, without rdma-core (RDPS_TRANSPORT_VERBS=OFF): build
#   4. clang-format check of every C file
# After each ctest run the suite must have left nothing behind: no rdps file
# in /dev/shm, no abstract socket of rdps, no process of the build tree.
# Build trees go under ${RDPS_BUILD_DIR:-build}-*.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
# Real soft-RoCE for the verbs tests: rxe-vm (shipped beside the project in
# ../shared) boots a kernel with rdma_rxe under QEMU. Without it those tests
# report themselves skipped, with the reason.
rxe_vm=${RDPS_RXE_VM:-../shared/rxe-vm/rxe-vm}
if [ -x "$rxe_vm" ] && ! command -v qemu-system-x86_64 >/dev/null; then
	echo "test.sh: installing QEMU for the rxe-vm verbs tests" >&2
	"$rxe_vm" setup
fi
base=${RDPS_BUILD_DIR:-build}
jobs=$(nproc)
start=$(date +%s)

step() { echo; echo "== $* ($(( $(date +%s) - start ))s)"; }

# What a test run must not leave behind: rdps files in /dev/shm (the shm
# transport's heaps are memfds; tests' boards are named rdps-*), abstract
# unix sockets of rdps (shm listeners bind "@rdps-shm/NAME"), and
# processes of the build tree. leftovers_snapshot records what was there
# before (another job on the machine may hold some); leftovers_check fails
# naming everything new.
rdps_shm_files() { find /dev/shm -maxdepth 1 -name '*rdps*' 2>/dev/null | sort; }
rdps_sockets() { awk '$NF ~ /^@rdps/ { print $NF, $7 }' /proc/net/unix | sort -u; }
# in_tree PID DIR: is the process a program of DIR, or runs one by path?
in_tree() {
	local exe cmd
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
	case "$exe $cmd" in *"$2/"*) return 0 ;; esac
	return 1
}
tree_procs() {
	local p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
		in_tree "$p" "$1" && echo "$p $(tr '\0' ' ' <"/proc/$p/cmdline")"
	done
	return 0 # set -e: a process not of the tree is no error
}
# tree_sockets DIR: the new sockets (stdin: "name inode") that a process
# of DIR holds; a machine shared with other jobs has theirs too.
tree_sockets() {
	local name ino fd pid
	while read -r name ino; do
		for fd in /proc/[0-9]*/fd/*; do
			[ "$(readlink "$fd" 2>/dev/null)" = "socket:[$ino]" ] || continue
			pid=${fd#/proc/}
			pid=${pid%%/*}
			in_tree "$pid" "$1" && echo "$name (pid $pid)"
			break
		done
	done
	return 0
}
leftovers_snapshot() {
	rdps_shm_files >"$1.shm"
	rdps_sockets >"$1.sock"
}
leftovers_check() {
	local snap=$1 dir=$2 bad=0 new
	new=$(rdps_shm_files | comm -13 "$snap.shm" -)
	if [ -n "$new" ]; then
		echo "test.sh: the tests left rdps files in /dev/shm:" $new >&2
		bad=1
	fi
	new=$(rdps_sockets | comm -13 "$snap.sock" - | tree_sockets "$dir")
	if [ -n "$new" ]; then
		echo "test.sh: the tests left abstract sockets:" $new >&2
		bad=1
	fi
	new=$(tree_procs "$dir")
	if [ -n "$new" ]; then
		echo "test.sh: the tests left processes of $dir behind:" >&2
		echo "$new" >&2
		bad=1
	fi
	rm -f "$snap.shm" "$snap.sock"
	return $bad
}
# run_ctest BUILD_DIR [ENV...]: ctest in BUILD_DIR, then the check.
run_ctest() {
	local dir snap
	dir=$(cd "$1" && pwd)
	shift
	snap=$(mktemp)
	leftovers_snapshot "$snap"
	(cd "$dir" && env "$@" ctest --output-on-failure -j"$jobs") || {
		rm -f "$snap" "$snap.shm" "$snap.sock"
		return 1
	}
	leftovers_check "$snap" "$dir" || { rm -f "$snap"; return 1; }
	rm -f "$snap"
}

step "gcc -Werror: build and test"
cmake -S . -B "$base-gcc" -DRDPS_WERROR=ON >/dev/null
cmake --build "$base-gcc" -j"$jobs"
run_ctest "$base-gcc"

step "gcc ASan+UBSan: build and test"
cmake -S . -B "$base-asan" -DRDPS_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
	-DRDPS_SANITIZER=address,undefined >/dev/null
cmake --build "$base-asan" -j"$jobs"
run_ctest "$base-asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

step "clang -Werror, no rdma-core: build"
CC=clang cmake -S . -B "$base-clang" -DRDPS_WERROR=ON \
	-DRDPS_TRANSPORT_VERBS=OFF >/dev/null
cmake --build "$base-clang" -j"$jobs"

step "clang-format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include transport tools tests -name '*.[ch]')
clang-format --dry-run --Werror $files

step "all passed"
