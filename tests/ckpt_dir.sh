#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ckpt_dir.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT] - the checkpoint
# directory. rdps-launch and rdps-server create a missing --checkpoint-dir
# with its parents, and refuse at start, in one line naming it and the
# reason, one they cannot use (a file in the way; --resume from a
# directory that is not there). A checkpoint that cannot be written
# mid-job (the directory replaced by a file: root ignores permissions)
# fails the job at once with a non-zero exit naming the file and the
# reason. Waiting here polls files and process state; nothing sleeps to
# order events.
set -u

LAUNCH=${1:?usage: ckpt_dir.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT]}
SERVER=${2:?usage: ckpt_dir.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT]}
WORKER=${3:?usage: ckpt_dir.sh RDPS_LAUNCH RDPS_SERVER PS_WORKER [TRANSPORT]}
TP=${4:-shm}
unset RDPS_LOG_LEVEL

source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.sh"

launch() {
	"$LAUNCH" --timeout 40 -t "$TP" -s 2 -w 2 "$@"
}

# 1. A missing directory is made, parents too; the job checkpoints there.
launch --checkpoint-dir "$tmp/new/a/b" -- "$WORKER" bsp 5 1 "$tmp/o.bin" \
	>/dev/null 2>"$tmp/new.err" ||
	fail "job with a missing --checkpoint-dir failed: $(tail -3 "$tmp/new.err")"
c=$(ckpt_clock "$tmp/new/a/b/shard-1.ckpt")
[[ $c == 5 ]] || fail "no checkpoint of clock 5 in the created directory ($c)"
ls -A "$tmp/new/a/b" | grep -q probe && fail "a probe file was left behind"

# 2. Refusals at start: exit 2, one line naming the directory and why.
touch "$tmp/file"
refuse() {
	local name=$1 pattern=$2 out rc
	shift 2
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	((rc == 2)) || fail "$name: exit $rc, want 2: $out"
	(($(wc -l <<<"$out") == 1)) || fail "$name: not one line: $out"
	[[ $out =~ $pattern ]] || fail "$name: '$out' does not match /$pattern/"
}
refuse launch-file "checkpoint-dir $tmp/file/ck: a file is in the way" \
	launch --checkpoint-dir "$tmp/file/ck" -- "$WORKER" bsp 5 1 "$tmp/o.bin"
refuse launch-file2 "checkpoint-dir $tmp/file: a file is in the way" \
	launch --checkpoint-dir "$tmp/file" -- "$WORKER" bsp 5 1 "$tmp/o.bin"
refuse server-file "checkpoint-dir $tmp/file/ck: a file is in the way" \
	timeout 10 "$SERVER" --listen "shm://ckdir-$$" --shard 0 --shards 1 \
	--workers 1 --checkpoint-dir "$tmp/file/ck"
refuse resume-missing "checkpoint-dir $tmp/none: cannot resume from it: No such file" \
	launch --checkpoint-dir "$tmp/none" --resume -- "$WORKER" bsp 5 1 "$tmp/o.bin"
[[ -e $tmp/none ]] && fail "--resume created the missing directory"
refuse ssp "checkpoint-dir needs --model bsp or absp" \
	timeout 10 "$SERVER" --listen "shm://ckdir-$$" --shard 0 --shards 1 \
	--workers 1 --model ssp --checkpoint-dir "$tmp/ssp"
[[ -e $tmp/ssp ]] && fail "a refused rdps-server created its directory"

# 3. A checkpoint that cannot be written fails the job, naming the file.
mkdir "$tmp/ck"
launch --checkpoint-dir "$tmp/ck" -- "$WORKER" bsp 100000 1 "$tmp/o.bin" \
	>/dev/null 2>"$tmp/mid.err" &
job_pid=$!
wait_ckpt "$tmp/ck" 0 3
mv "$tmp/ck" "$tmp/ck.old"
touch "$tmp/ck"
wait "$job_pid"
rc=$?
job_pid=
((rc != 0 && rc != 124)) ||
	fail "job exit $rc after its checkpoint directory became a file" \
		"(want a failure before the timeout): $(tail -3 "$tmp/mid.err")"
grep -q "checkpoint of clock [0-9]* cannot be written.*$tmp/ck/shard-[01].ckpt.*\(Not a directory\|No such file\)" \
	"$tmp/mid.err" ||
	fail "no error names the checkpoint file and the reason:" \
		"$(tail -5 "$tmp/mid.err")"
echo "ckpt_dir ($TP): missing directory made, bad ones refused at start," \
	"an unwritable checkpoint failed the job (exit $rc)"
