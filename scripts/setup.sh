#!/usr/bin/env bash
# Install what rdps needs on Debian 12 (run as root), skipping apt when all of
# it is already there. Usage: scripts/setup.sh [--test] [--bench] [--soak]
#   (none)   compiler, cmake, pkg-config, rdma-core, hwloc, cmocka
#   --test   also clang (fuzz/clang build), clang-format (style check) and
#            openmpi-bin (mpirun for the ps_mpirun cluster-launch test)
#   --bench  also ucx-utils, iperf3 and perftest (side-by-side benchmarks)
#   --soak   also procps (pgrep finds the shards scripts/soak.sh samples;
#            its leak check is gcc's LeakSanitizer, nothing to install)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libibverbs-dev librdmacm-dev
      libhwloc-dev libcmocka-dev)
for arg in "$@"; do
	case "$arg" in
	--test) pkgs+=(clang clang-format openmpi-bin) ;;
	--bench) pkgs+=(ucx-utils iperf3 perftest) ;;
	--soak) pkgs+=(procps) ;;
	-h|--help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "setup.sh: unknown option '$arg' (use --test, --bench, --soak)" >&2; exit 2 ;;
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
