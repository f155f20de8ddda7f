# SPDX-License-Identifier: MIT
"""What Python adds to a call: pull, push and clock of 8 B and 1 MiB from
Python (the rdps package) against the same calls from C (rdps-psbench),
side by side in one run. Every case is its own one-worker job over shm
(one shard; shard and worker busy-poll, as an adaptive shard that fell
asleep adds a ~100 us wake-up to a push at random; but push 1 MiB polls
adaptively, as two spinning processes starve the shard's apply on a
small machine), medians in microseconds per call:

    /usr/bin/python3 python/bench/overhead.py BUILD_DIR [-n ITERS]

pull: dense pull into ctx.array() / rdps_buf_alloc() memory (zero copy);
push: dense push from such memory, model asp (a push returns once
applied); clock: asp (never waits, so both run it in the caller) and bsp
(one worker: never waits on others; Python hands it to the context's
waiter thread so Ctrl-C can interrupt it, or runs it in the caller with
interruptible=False). Run it on an idle machine: a loaded one times the
scheduler.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy

CASES = [  # name, psbench test, bytes, model, interruptible, polling
    ("pull 8 B", "pull", 8, "asp", True, "busy"),
    ("pull 1 MiB", "pull", 1 << 20, "asp", True, "busy"),
    ("push 8 B", "push", 8, "asp", True, "busy"),
    ("push 1 MiB", "push", 1 << 20, "asp", True, "adaptive"),
    ("clock asp", "tick", 0, "asp", True, "busy"),
    ("clock bsp", "tick", 0, "bsp", True, "busy"),
    ("clock bsp, interruptible=False", "tick", 0, "bsp", False, "busy"),
]


def worker(test: str, nbytes: int, iters: int, interruptible: bool,
           poll: str) -> None:
    import rdps
    with rdps.Context(interruptible=interruptible, poll_mode=poll) as ctx:
        n = max(nbytes // 4, 1)
        t = ctx.table("pybench-" + test, n)
        a = ctx.array(n)
        a[:] = 1.0  # rdps_push skips all-zero pages: push real values
        clock = time.perf_counter_ns
        if test == "pull":
            call = lambda: t.pull(0, n, out=a)  # noqa: E731
        elif test == "push":
            call = lambda: t.push(a)  # noqa: E731
        else:
            call = ctx.clock
        for _ in range(iters // 10):
            call()
        if test == "tick":  # batches, as rdps-psbench tick times them
            s = []
            for _ in range(iters // 100):
                t0 = clock()
                for _ in range(100):
                    call()
                s.append((clock() - t0) / 100)
        else:
            s = []
            for _ in range(iters):
                t0 = clock()
                call()
                s.append(clock() - t0)
        print(json.dumps({"median_us": statistics.median(s) / 1000}))


def job(launch: str, model: str, poll: str, cmd: list) -> float:
    out = subprocess.run([launch, "-w", "1", "-m", model, "-P", poll,
                          "--"] + cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_us"]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
               sys.argv[5] == "1", sys.argv[6])
        return 0
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    build = sys.argv[1]
    iters = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "-n" \
        else 2000
    launch = os.path.join(build, "tools", "rdps-launch")
    psbench = os.path.join(build, "tools", "rdps-psbench")
    print(f"{'call':34} {'C us':>9} {'Python us':>10} {'added us':>9}")
    for name, test, nbytes, model, intr, poll in CASES:
        c_args = [psbench, "-j", test, "-n", str(iters), "-P", poll]
        if nbytes:
            c_args += ["-s", str(nbytes)]
        c = job(launch, model, poll, c_args)
        py = job(launch, model, poll, [
            sys.executable, os.path.abspath(__file__), "--worker", test,
            str(nbytes), str(iters), "1" if intr else "0", poll])
        print(f"{name:34} {c:9.3f} {py:10.3f} {py - c:9.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
