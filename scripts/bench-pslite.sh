#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench-pslite.sh - rdps over tcp side by side with dmlc/ps-lite (ZeroMQ),
# in one run on this machine. ps-lite is built from its public source,
# unpatched, against Debian's libzmq3-dev and libprotobuf-dev
# (scripts/setup.sh --bench installs them), with scripts/pslite-bench.cc as
# its driver. Each job is one server and one worker on 127.0.0.1 (ps-lite
# adds its scheduler); the runs are interleaved: ps-lite, rdps with busy
# polling, rdps with its default adaptive polling, -r times over. Figures
# are the median over the runs of each run's median:
#
#   round  8 B push then 8 B pull of the same values, each waited for (us)
#   pull   1 MiB of float32 (GB/s)
#   push   1 MiB of float32 deltas added in by the server (SUM) before it
#          answers: push + apply (GB/s)
#
# rdps numbers come from rdps-psbench as the worker of an rdps-launch job
# over tcp (one shard; round and push asp, pull bsp). The table gives each
# rdps figure next to ps-lite's with the factor by which rdps is better
# (above 1: rdps is faster), and for the default polling the targets:
# within 1.5x of busy polling's round, and at least 1.3x ps-lite's
# bandwidth. Exit status 1 if a measurement failed or a target was missed.
# With -c DIR, a second rdps build (e.g. main's) runs in the same
# interleaved runs, right after this one's, and the table adds its figures
# and this build's adaptive figure over it (above 1: this build is better).
set -u

prog=bench-pslite.sh
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${RDPS_BINDIR:-}
cmpdir=
src=${PSLITE_SRC:-https://github.com/dmlc/ps-lite}
work=${PSLITE_BUILD:-/tmp/rdps-pslite}
md_out=
reps=3
bw_iters=1000
lat_iters=5000

usage() {
	cat <<USAGE
Usage: scripts/bench-pslite.sh [options]
  -p DIR    directory with rdps-launch, rdps-psbench and rdps-server
            (\$RDPS_BINDIR, else build/tools)
  -c DIR    the same tools of another rdps build to compare with, run
            beside these in every round (none)
  -s SRC    ps-lite source: a git URL, a local checkout or a bare git
            directory (\$PSLITE_SRC, else $src)
  -b DIR    where ps-lite is cloned and built, kept for the next run
            (\$PSLITE_BUILD, else $work)
  -r N      interleaved runs of each side ($reps)
  -n N      pull and push iterations per run ($bw_iters; warm-up N/10)
  -N N      round iterations per run ($lat_iters; warm-up N/10)
  -o FILE   also write the table as markdown to FILE
  -h        this help
Needs git, cmake, g++, libzmq3-dev, libprotobuf-dev and protobuf-compiler:
scripts/setup.sh --bench
USAGE
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

while getopts "p:c:s:b:r:n:N:o:h" opt; do
	case $opt in
	p) bindir=$OPTARG ;;
	c) cmpdir=$OPTARG ;;
	s) src=$OPTARG ;;
	b) work=$OPTARG ;;
	r) reps=$OPTARG ;;
	n) bw_iters=$OPTARG ;;
	N) lat_iters=$OPTARG ;;
	o) md_out=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument '$1' (see -h)"
for v in "$reps" "$bw_iters" "$lat_iters"; do
	case $v in
	'' | *[!0-9]* | 0) die "bad number '$v': use a positive whole number" ;;
	esac
done

if [ -z "$bindir" ]; then
	for d in "$root/build/tools" /tmp/build-bench/tools; do
		[ -x "$d/rdps-psbench" ] && bindir=$d && break
	done
fi
for b in rdps-launch rdps-psbench rdps-server; do
	[ -n "$bindir" ] && [ -x "$bindir/$b" ] ||
		die "$b not found: build the tools (cmake -S . -B build &&" \
			"cmake --build build) or give -p DIR"
done
if [ -n "$cmpdir" ]; then
	for b in rdps-launch rdps-psbench rdps-server; do
		[ -x "$cmpdir/$b" ] || die "$b not found in '$cmpdir' (-c)"
	done
fi
missing=
for p in libzmq3-dev libprotobuf-dev protobuf-compiler; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed' || missing="$missing $p"
done
for t in git cmake g++; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -z "$missing" ] ||
	die "missing$missing: run scripts/setup.sh --bench as root"
if [ -n "$md_out" ]; then
	: >"$md_out" 2>/dev/null || die "cannot write '$md_out'"
fi

. "$(dirname "$0")/bench-lib.sh"

# Build ps-lite (once; kept in $work) and the driver (whenever it changed).
mkdir -p "$work" || die "cannot create '$work'"
if [ ! -d "$work/src/.git" ]; then
	rm -rf "$work/src"
	echo "$prog: cloning ps-lite from $src" >&2
	git clone -q "$src" "$work/src" >"$tmp/err" 2>&1 ||
		die "git clone $src failed: $(tail -1 "$tmp/err") (give a" \
			"local copy with -s)"
fi
if [ ! -f "$work/build/libpslite.a" ]; then
	echo "$prog: building ps-lite $(git -C "$work/src" rev-parse --short HEAD)" >&2
	{ cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release &&
		cmake --build "$work/build" -j "$(nproc)" --target pslite; } \
		>"$tmp/err" 2>&1 ||
		die "building ps-lite failed: $(grep -m1 -i error "$tmp/err")" \
			"(full log: rerun cmake --build $work/build)"
fi
driver=$work/pslite-bench
if [ ! -x "$driver" ] || [ "$root/scripts/pslite-bench.cc" -nt "$driver" ]; then
	g++ -std=c++14 -O2 -Wall -I"$work/src/include" \
		"$root/scripts/pslite-bench.cc" "$work/build/libpslite.a" \
		-lprotobuf -lzmq -pthread -o "$driver" 2>"$tmp/err" ||
		die "compiling scripts/pslite-bench.cc failed:" \
			"$(grep -m1 error "$tmp/err")"
fi

# pslite: one ps-lite job (scheduler, server, worker) running every test;
# prints the worker's JSON lines.
pslite() {
	local s w c out rc=0
	port=$((port + 1))
	local env=(DMLC_NUM_SERVER=1 DMLC_NUM_WORKER=1 DMLC_PS_ROOT_URI=127.0.0.1
		DMLC_PS_ROOT_PORT="$port" DMLC_NODE_HOST=127.0.0.1)
	env "${env[@]}" DMLC_ROLE=scheduler "$driver" >/dev/null 2>"$tmp/sched" &
	s=$!
	env "${env[@]}" DMLC_ROLE=server "$driver" >/dev/null 2>"$tmp/server" &
	w=$!
	pids+=("$s" "$w")
	out=$(env "${env[@]}" DMLC_ROLE=worker timeout 300 "$driver" \
		-n "$bw_iters" -N "$lat_iters" round pull push 2>"$tmp/err") ||
		rc=$?
	for c in "$s" "$w"; do
		# Both leave after the worker's final barrier.
		timeout 10 tail --pid="$c" -f /dev/null || stop_server "$c"
		wait "$c" 2>/dev/null
	done
	pids=()
	[ $rc = 0 ] || {
		echo "$prog: ps-lite worker failed ($rc): $(tail -1 "$tmp/err")" >&2
		return 1
	}
	echo "$prog: ps-lite: $(echo "$out" | tr '\n' ' ')" >&2
	echo "$out"
}

# psb DIR MODE MODEL TEST [options]: rdps-psbench's JSON line, over tcp,
# one shard, one worker, both polling in MODE, with the tools in DIR.
psb() {
	local dir=$1 mode=$2 m=$3 test=$4 out
	shift 4
	out=$(timeout 300 "$dir/rdps-launch" -t tcp -s 1 -w 1 -m "$m" -T 290 \
		-P "$mode" -- "$dir/rdps-psbench" --json -P "$mode" "$test" "$@" \
		2>"$tmp/err") || {
		echo "$prog: rdps-psbench $test ($mode) failed:" \
			"$(grep -v '^rdps-launch' "$tmp/err" | tail -1)" >&2
		return 1
	}
	out=$(echo "$out" | grep '^{' | tail -1)
	echo "$prog: rdps $mode $test ($dir): $out" >&2
	echo "$out"
}

# median of the numbers on stdin ("" if none).
med() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR)
		printf "%.4f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A res
add() { res[$1]="${res[$1]:-} $2"; }

start=$(date +%s)
echo "$prog: rdps tools in $bindir, ps-lite $(git -C "$work/src" rev-parse --short HEAD), $(nproc) cores" >&2
for _ in $(seq "$reps"); do
	j=$(pslite) && while read -r l; do
		t=$(echo "$l" | sed -n 's/.*"test":"\([a-z]*\)".*/\1/p')
		case $t in
		round) add pl-round "$(jget "$l" median_us)" ;;
		pull | push) add "pl-$t" "$(jget "$l" gbps)" ;;
		esac
	done <<<"$j"
	for side in "" ${cmpdir:+c}; do
		dir=$bindir
		[ -z "$side" ] || dir=$cmpdir
		for mode in busy adaptive; do
			k=$side$mode
			j=$(psb "$dir" $mode asp round -n "$lat_iters") &&
				add "$k-round" "$(jget "$j" median_us)"
			j=$(psb "$dir" $mode bsp pull -n "$bw_iters") &&
				add "$k-pull" "$(jget "$j" gbps)"
			j=$(psb "$dir" $mode asp push -n "$bw_iters") &&
				add "$k-push" "$(jget "$j" gbps)"
		done
	done
done

get() { echo "${res[$1]:-}" | tr ' ' '\n' | grep . | med; }
range() {
	echo "${res[$1]:-}" | tr ' ' '\n' | grep . | sort -g |
		awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi }'
}
# factor A B BETTER: how many times better A is than B.
factor() {
	[ -n "$1" ] && [ -n "$2" ] || return 0
	awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN {
		if (a <= 0 || b <= 0) exit
		printf "%.2f", w == "lower" ? b / a : a / b }'
}
# check VALUE OP BOUND: yes or no.
check() {
	[ -n "$1" ] || { echo -; return; }
	awk -v x="$1" -v o="$2" -v t="$3" 'BEGIN {
		ok = o == "<=" ? x <= t : x >= t; print ok ? "yes" : "no" }'
}

cols="metric|ps-lite|rdps busy|x better|rdps adaptive|x better|target|met"
[ -z "$cmpdir" ] || cols="$cols|-c busy|-c adaptive|adaptive vs -c"
for t in round pull push; do
	case $t in
	round) unit=us better=lower name="round 8 B push+pull" ;;
	pull) unit=GB/s better=higher name="pull 1 MiB" ;;
	push) unit=GB/s better=higher name="push+apply 1 MiB" ;;
	esac
	pl=$(get pl-$t)
	b=$(get busy-$t)
	a=$(get adaptive-$t)
	fb=$(factor "$b" "$pl" $better)
	fa=$(factor "$a" "$pl" $better)
	if [ $t = round ]; then
		# The default's latency against busy polling's.
		slow=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b }')
		tgt="adaptive <= 1.5x busy ($slow)"
		met=$(check "$slow" "<=" 1.5)
	else
		tgt=">= 1.3x ps-lite"
		met=$(check "$fa" ">=" 1.3)
	fi
	[ -n "$pl" ] && [ -n "$b" ] && [ -n "$a" ] || failed=1
	[ "$met" = yes ] || failed=1
	row="$name ($unit)|${pl:-n/a}|${b:-n/a}|${fb:-n/a}|${a:-n/a}|${fa:-n/a}|$tgt|$met"
	if [ -n "$cmpdir" ]; then
		cb=$(get cbusy-$t)
		ca=$(get cadaptive-$t)
		fc=$(factor "$a" "$ca" $better)
		row="$row|${cb:-n/a}|${ca:-n/a}|${fc:-n/a}"
		echo "$prog: $name, -c: busy $(range cbusy-$t)," \
			"adaptive $(range cadaptive-$t)" >&2
	fi
	rows+=("$row")
	echo "$prog: $name: ps-lite $(range pl-$t), busy $(range busy-$t)," \
		"adaptive $(range adaptive-$t)" >&2
done

secs=$(($(date +%s) - start))
cmp_note=
[ -z "$cmpdir" ] || cmp_note=" -c: another rdps build, run right after this \
one in each round; adaptive vs -c: how many times better this build's \
adaptive figure is than the other's."
print_tables "$md_out" "Measured $(date -u +%Y-%m-%d) by \`scripts/bench-pslite.sh\` in \
${secs} s on $(nproc) cores ($(uname -r)); ps-lite \
$(git -C "$work/src" rev-parse --short HEAD) on Debian's libzmq \
$(dpkg-query -W -f '${Version}' libzmq3-dev 2>/dev/null || echo '?'); one \
server and one worker on 127.0.0.1, rdps over tcp; medians of $reps \
interleaved runs (each the median of $lat_iters rounds or $bw_iters \
pulls/pushes). x better: ps-lite's time over rdps's, or rdps's bandwidth \
over ps-lite's.$cmp_note"
echo "$prog: done in ${secs} s" >&2
exit $failed
