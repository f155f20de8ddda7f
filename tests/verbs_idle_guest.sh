#!/bin/bash
# SPDX-License-Identifier: MIT
#
# verbs_idle_guest.sh SERVER IDLE N JOIN_MS - run inside one rxe-vm VM by
# "rxe_run.sh --script" (ctest ps_flood_verbs_rxe): one rdps-server shard
# (SERVER) listening over verbs on rxe0, then tests/verbs_idle (IDLE) with
# N connections that never complete and a real worker whose own timeout
# is JOIN_MS (see verbs_idle.c for the checks). The shard must then stop
# cleanly on SIGTERM. Its log is printed when anything failed.
set -u

server=$1 idle=$2 n=$3 join_ms=$4
ip=${RXE_IP%/*}
token=490651870
[ -e /sys/class/infiniband/rxe0 ] || { echo "verbs_idle: no rxe0 in the VM"; exit 77; }

dir=$(mktemp -d /tmp/verbs_idle.XXXXXX) || exit 1
spid=
cleanup() {
	[ -z "$spid" ] || { kill -TERM "$spid" 2>/dev/null; wait "$spid"; }
	rm -rf "$dir"
}
trap cleanup EXIT

RDPS_LOG_LEVEL=${VERBS_IDLE_LOG:-warn} "$server" -l "verbs://$ip:0" -i 0 -s 1 -w 1 -t "$token" --report-fd 3 \
	3>"$dir/url" 2>"$dir/server.log" &
spid=$!
end=$((SECONDS + 30))
until [ -s "$dir/url" ] || ! kill -0 "$spid" 2>/dev/null || ((SECONDS >= end)); do
	sleep 0.1
done
url=$(head -1 "$dir/url")
port=${url##*:}
if [ -z "$url" ]; then
	echo "verbs_idle: the shard reported no url" >&2
	cat "$dir/server.log" >&2
	exit 1
fi

echo "verbs_idle: shard up at $url after ${SECONDS}s"
"$idle" "$ip" "$port" "$token" "$n" "$join_ms"
rc=$?
echo "verbs_idle: test done after ${SECONDS}s (exit $rc)"
kill -TERM "$spid"
wait "$spid"
src=$?
spid=
if ((src != 0)); then
	echo "verbs_idle: the shard ended with status $src, want a clean stop" >&2
	rc=1
fi
if ((rc != 0)); then
	echo "verbs_idle: the shard's log:" >&2
	cat "$dir/server.log" >&2
fi
exit "$rc"
