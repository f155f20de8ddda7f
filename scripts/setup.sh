#!/usr/bin/env bash
# Install what rdps needs on Debian 12 (run as root), skipping apt when all of
# it is already there.
# Usage: scripts/setup.sh [--test] [--python] [--bench] [--soak]
#   (none)   compiler, cmake, pkg-config, rdma-core, hwloc, cmocka
#   --test   also clang (fuzz/clang build), clang-format (style check),
#            openmpi-bin (mpirun for the ps_mpirun cluster-launch test) and
#            all of --python (the py_* tests)
#   --python Debian's python3-dev, python3-numpy (the rdps package),
#            python3-pytest, python3-sklearn and python3-torch (its tests and
#            examples; torch is about 600 MB and 2 minutes, once)
#   --bench  also ucx-utils, iperf3 and perftest (side-by-side benchmarks),
#            git, libzmq3-dev, libprotobuf-dev and protobuf-compiler
#            (scripts/bench-pslite.sh builds ps-lite against them)
#   --soak   also procps (pgrep finds the shards scripts/soak.sh samples;
#            its leak check is gcc's LeakSanitizer, nothing to install)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libibverbs-dev librdmacm-dev
      libhwloc-dev libcmocka-dev)
python=(python3-dev python3-numpy python3-pytest python3-sklearn python3-torch)
for arg in "$@"; do
	case "$arg" in
	--test) pkgs+=(clang clang-format openmpi-bin "${python[@]}") ;;
	--python) pkgs+=("${python[@]}") ;;
	--bench) pkgs+=(ucx-utils iperf3 perftest git libzmq3-dev libprotobuf-dev
			 protobuf-compiler) ;;
	--soak) pkgs+=(procps) ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "setup.sh: unknown option '$arg' (use --test, --python, --bench, --soak)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "setup.sh: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "setup.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
