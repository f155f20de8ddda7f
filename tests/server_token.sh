#!/bin/bash
# SPDX-License-Identifier: MIT
#
# server_token.sh RDPS_SERVER - rdps-server refuses to listen beyond
# loopback with token 0 (the default): exit 2 and one line naming --token,
# before any socket is opened. With a token it listens there, and on
# loopback or shm token 0 is fine. A server that starts reports its URL on
# --report-fd (read, no sleeps), is stopped with SIGTERM and must exit 0.
set -u

SERVER=${1:?usage: server_token.sh PATH/TO/rdps-server}
unset RDPS_LOG_LEVEL

tmp=$(mktemp -d)
pid=
cleanup() {
	[[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

job=(--shard 0 --shards 1 --workers 1)

refused() {
	local url=$1 rc lines
	timeout 10 "$SERVER" --listen "$url" "${job[@]}" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	((rc == 2)) || fail "$url with token 0: exit $rc, want 2"
	((lines == 1)) || fail "$url with token 0: $lines lines on stderr, want 1"
	grep -q -- "--token" "$tmp/err" ||
		fail "$url with token 0: the error does not name --token: $(cat "$tmp/err")"
}

# Starts, reports its URL, stops on SIGTERM with exit 0.
serves() {
	local url=$1 line rc
	shift
	coproc SRV { exec "$SERVER" --listen "$url" "${job[@]}" "$@" \
		--report-fd 3 3>&1 >/dev/null 2>"$tmp/err"; }
	pid=$SRV_PID
	if ! read -r -t 10 line <&"${SRV[0]}"; then
		fail "$url $*: no url reported: $(cat "$tmp/err")"
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		pid=
		return
	fi
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	pid=
	((rc == 0)) || fail "$url $*: exit $rc after SIGTERM, want 0"
	[[ -n $line ]] || fail "$url $*: empty url reported"
}

refused "tcp://0.0.0.0:0"
refused "tcp://*:0"
refused "tcp://[::]:0"
refused "verbs://0.0.0.0:0"
refused "tcp://192.0.2.1:0"

serves "tcp://127.0.0.1:0"
serves "tcp://localhost:0"
serves "tcp://0.0.0.0:0" --token 7
serves "shm://rdps-token-test-$$"

exit $((fails ? 1 : 0))
