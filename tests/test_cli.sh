#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_cli.sh RDPS_PERF - rdps-perf's behaviour on bad input, and one short
# real run.
#
# Every error case must: exit non-zero, print nothing on stdout, and print
# exactly one line on stderr that starts with "rdps-perf: " (tools/common.h:
# results to stdout, one-line diagnostics to stderr). Nothing here sleeps:
# the one background server is waited for by reading the line it prints.
set -u

PERF=${1:?usage: test_cli.sh PATH/TO/rdps-perf}
# The library's log level comes from the environment: keep the default.
unset RDPS_LOG_LEVEL

tmp=$(mktemp -d)
srv_pid=
cleanup() {
	if [[ -n $srv_pid ]]; then
		kill "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fails=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# run ARGS...: run rdps-perf with a time limit; sets rc, out, err.
run() {
	timeout 20 "$PERF" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# expect_error NAME PATTERN ARGS...: the error contract, and the one line
# must match the extended regex PATTERN (what the error is about).
expect_error() {
	local name=$1 pattern=$2 lines
	shift 2
	cases=$((cases + 1))
	run "$@"
	lines=$(wc -l <"$tmp/err")
	if ((rc == 0)); then
		fail "$name: exit status 0 for rdps-perf $*"
	fi
	if ((rc >= 124)); then
		fail "$name: exit status $rc (timeout or signal) for rdps-perf $*"
	fi
	if [[ -s $tmp/out ]]; then
		fail "$name: stdout not empty: '$out'"
	fi
	if [[ $lines -ne 1 ]]; then
		fail "$name: $lines lines on stderr, want 1: '$err'"
	elif [[ $err != "rdps-perf: "* ]]; then
		fail "$name: stderr does not start with 'rdps-perf: ': '$err'"
	elif ! [[ $err =~ $pattern ]]; then
		fail "$name: stderr '$err' does not match /$pattern/"
	fi
}

# Options and sizes.
expect_error "unknown op" "operation 'bogus'" -o bogus shm://x
expect_error "memcpy is no op" "operation 'memcpy'" -o memcpy shm://x
expect_error "pingpong is no op" "operation 'pingpong'" -o pingpong shm://x
expect_error "pingpong size" "8-byte" --pingpong -s 16
expect_error "pingpong bandwidth" "latency reference" --pingpong -b 4
expect_error "pingpong with a url" "no URL" --pingpong shm://x
expect_error "bad size 3x" "'3x'" -s 3x shm://x
expect_error "size 0" "'0'.*range" -s 0 shm://x
expect_error "size over 4m" "range" -s 8m shm://x
expect_error "range upside down" "5m\.\.1k" -s 5m..1k shm://x
expect_error "size overflow" "size" -s 99999999999999999999 shm://x
expect_error "empty size" "size" -s "" shm://x
expect_error "atomic size" "8-byte" -o fadd -s 16 shm://x
expect_error "zero iterations" "iteration" -n 0 shm://x
expect_error "bad count" "iteration" -n 12abc shm://x
expect_error "bad poll mode" "poll mode 'spin'" -P spin shm://x
expect_error "bad log level" "log level" -L loud shm://x
expect_error "unknown option" "unknown option" --frobnicate shm://x
expect_error "missing value" "needs a value" shm://x -n
expect_error "missing url" "missing URL"
expect_error "two urls" "unexpected argument" shm://a shm://b
expect_error "two modes" "exclude" --server --local shm://x
expect_error "once without server" "--once" --once shm://x

# URLs.
expect_error "malformed url" "malformed url" tcp://
expect_error "no port" "port" tcp://127.0.0.1
expect_error "bad port" "port|url" tcp://127.0.0.1:99999
expect_error "unknown scheme" "unknown transport" foo://bar:1
expect_error "not a url" "unknown transport" notaurl
expect_error "local, unknown scheme" "unknown transport" --local foo

# The environment.
expect_error "connection refused (tcp)" "nobody listens" -t 5000 \
	tcp://127.0.0.1:1
expect_error "connection refused (shm)" "nobody listens" -t 5000 \
	"shm://rdps-cli-nobody-$$"

# Port in use: a real server holds a port, a second one asks for it.
cases=$((cases + 1))
coproc SRV { exec "$PERF" --server tcp://127.0.0.1:0 2>&1 >/dev/null; }
srv_pid=$SRV_PID
line=
if ! read -r -t 20 -u "${SRV[0]}" line; then
	fail "port in use: the server printed no 'serving on' line"
fi
if [[ $line =~ serving\ on\ tcp://127\.0\.0\.1:([0-9]+) ]]; then
	port=${BASH_REMATCH[1]}
	expect_error "port in use" "in use" --server "tcp://127.0.0.1:$port"
	# and a client can still reach the first server: it was not hurt
	run -o read -s 8 -n 10 -w 0 --csv "tcp://127.0.0.1:$port"
	if ((rc != 0)); then
		fail "server after a refused second listen: client rc $rc: $err"
	fi
else
	fail "port in use: unexpected server line '$line'"
fi
kill "$srv_pid" 2>/dev/null
wait "$srv_pid" 2>/dev/null
srv_pid=

# --help: usage on stdout, nothing on stderr, success.
cases=$((cases + 1))
run --help
if ((rc != 0)); then
	fail "--help: exit status $rc"
fi
if [[ $out != "Usage: rdps-perf"* ]]; then
	fail "--help: stdout does not start with the usage: '${out:0:60}'"
fi
if ! grep -q -- "--size" "$tmp/out"; then
	fail "--help: usage does not list --size"
fi
if [[ -s $tmp/err ]]; then
	fail "--help: stderr not empty: '$err'"
fi

# A real run: a local shm server, fetch-add latency as JSON.
cases=$((cases + 1))
run --local -o fadd -s 8 -n 200 --json shm
if ((rc != 0)); then
	fail "local fadd run: exit status $rc: $err"
fi
if [[ $(wc -l <"$tmp/out") -ne 1 ]]; then
	fail "local fadd run: want one line on stdout, got '$out'"
fi
if ! [[ $out =~ ^\{.*\}$ ]]; then
	fail "local fadd run: not one JSON object: '$out'"
fi
for field in '"transport":"shm"' '"op":"fadd"' '"size":8,' '"iters":200,'; do
	if [[ $out != *"$field"* ]]; then
		fail "local fadd run: no $field in '$out'"
	fi
done
if [[ $out =~ \"median\":([0-9]+(\.[0-9]+)?) ]]; then
	median=${BASH_REMATCH[1]}
	if ! awk -v m="$median" 'BEGIN { exit !(m > 0) }'; then
		fail "local fadd run: median $median is not positive"
	fi
else
	fail "local fadd run: no numeric median in '$out'"
fi

echo "test_cli: $cases cases, $fails failures"
((fails == 0))
