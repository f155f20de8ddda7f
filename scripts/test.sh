#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, then
#   1. gcc, warnings as errors: build + ctest (verbs over rxe in a VM when
#      ../shared/rxe-vm is there)
#   2. gcc, ASan+UBSan: build + ctest
#   3. clang, warnings as errors, without rdma-core (RDPS_TRANSPORT_VERBS=OFF): build
#   4. clang-format check of every C file
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

step "gcc -Werror: build and test"
cmake -S . -B "$base-gcc" -DRDPS_WERROR=ON >/dev/null
cmake --build "$base-gcc" -j"$jobs"
(cd "$base-gcc" && ctest --output-on-failure -j"$jobs")

step "gcc ASan+UBSan: build and test"
cmake -S . -B "$base-asan" -DRDPS_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
	-DRDPS_SANITIZER=address,undefined >/dev/null
cmake --build "$base-asan" -j"$jobs"
(cd "$base-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure -j"$jobs")

step "clang -Werror, no rdma-core: build"
CC=clang cmake -S . -B "$base-clang" -DRDPS_WERROR=ON \
	-DRDPS_TRANSPORT_VERBS=OFF >/dev/null
cmake --build "$base-clang" -j"$jobs"

step "clang-format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include transport tools tests -name '*.[ch]')
clang-format --dry-run --Werror $files

step "all passed"
