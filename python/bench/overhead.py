# SPDX-License-Identifier: MIT
"""What Python adds to a call: pull, push and clock of 8 B and 1 MiB from
Python (the rdps package) against the same calls from C (rdps-psbench),
side by side in one run. Every case is its own one-worker job over shm
(one shard; shard and worker busy-poll, as an adaptive shard that fell
asleep adds a ~100 us wake-up to a push at random; but push 1 MiB polls
adaptively, as two spinning processes starve the shard's apply on a
small machine), medians in microseconds per call:

    /usr/bin/python3 python/bench/overhead.py BUILD_DIR [-n ITERS] [-p OTHER]
                                              [-r REPEAT] [-W BYTES] [-c CASE]

-p OTHER adds a column: the same Python calls with the rdps package of
another build (OTHER/python) or package folder (OTHER holding rdps/), say
a build of main, to compare two versions of the binding in one run.
-r REPEAT runs every job REPEAT times, in turn, and prints the median of
their medians (a loaded machine moves single runs by tens of us at 1 MiB).

-c CASE runs only the cases whose name contains CASE (e.g. -c "pull 1"),
so that one call can be repeated often enough to quote without the
others' jobs.

-W BYTES adds three columns for pull and push: the same calls from C
(rdps-psbench -W) and from Python in loops that, before each call, read
one word of every line of BYTES of the caller's own memory (the same C
loop in both: rdps._rdps.read_lines from Python), each sample less the
work's median alone: what a call adds to a loop that does work, the
refill of the work's memory after the call included.

"C call in Python" (pull, push): the rdps_pull()/rdps_push() inside the
Python worker's calls, timed in the extension around the C call alone:
it matches the C column, so what Python adds is its own call path, and
at 1 MiB that path runs slower than at 8 B (about 3 to 8 us instead of
0.3): the copy has evicted the interpreter's code and data from the
core's 2 MiB L2, which rdps-psbench's few-line C loop does not notice,
and a C loop with a working set of its own (-W) does (README "Python",
"Overhead").

The Python loops call t.pull(0, n, out=a) and t.push(a) as a training
loop does (an earlier lambda added a Python frame to every call).

pull: dense pull into ctx.array() / rdps_buf_alloc() memory (zero copy);
push: dense push from such memory, model asp (a push returns once
applied); clock: asp (never waits, so both run it in the caller) and bsp
(one worker: never waits on others; with interruptible=True, the
default, the context has a wait check that a wait calls for Ctrl-C, and
with interruptible=False none: a clock that does not wait never calls it,
so the two should cost the same). Run it on an idle machine: a loaded one times the
scheduler.
"""
import argparse
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
           poll: str, work: int) -> None:
    import rdps
    from rdps import _rdps
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
        elif work:
            # -W: the caller's work (one word of every line of its own
            # buffer) before each call, as rdps-psbench -W does; a sample
            # is the work and the call less the work's warm median.
            w, rl = numpy.ones(work // 8, numpy.uint64), _rdps.read_lines
            s = []
            for i in range(iters // 10 + iters):
                t0 = clock()
                rl(w)
                if i >= iters // 10:
                    s.append(clock() - t0)
            alone = statistics.median(s)
            s = []
            # The calls as a training loop writes them: no lambda (a
            # Python frame per call, which a C loop does not pay either).
            if test == "pull":
                for _ in range(iters):
                    t0 = clock()
                    rl(w)
                    t.pull(0, n, out=a)
                    s.append(clock() - t0 - alone)
            else:
                for _ in range(iters):
                    t0 = clock()
                    rl(w)
                    t.push(a)
                    s.append(clock() - t0 - alone)
        else:
            s = []
            if test == "pull":
                for _ in range(iters):
                    t0 = clock()
                    t.pull(0, n, out=a)
                    s.append(clock() - t0)
            else:
                for _ in range(iters):
                    t0 = clock()
                    t.push(a)
                    s.append(clock() - t0)
        res = {"median_us": statistics.median(s) / 1000}
        dt = getattr(t._t, "dense_timed", None)  # None in an old -p build
        if test != "tick" and dt and not work:
            # The same loop again (the same work between calls), each
            # sample the C call alone, timed inside the extension with the
            # GIL released: what the call costs in this process.
            pull, c, o = test == "pull", [], []
            for _ in range(iters):
                t0 = clock()
                c.append(dt(pull, 0, n, a))
                o.append(clock() - t0)
            res["c_call_us"] = statistics.median(c) / 1000
        print(json.dumps(res))


def job(launch: str, model: str, poll: str, cmd: list) -> dict:
    out = subprocess.run([launch, "-w", "1", "-m", model, "-P", poll,
                          "--"] + cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
               sys.argv[5] == "1", sys.argv[6], int(sys.argv[7]))
        return 0
    ap = argparse.ArgumentParser(
        description="Python against C per call (see the module's doc)")
    ap.add_argument("build", help="the build folder (tools/, python/)")
    ap.add_argument("-n", type=int, default=2000, help="iterations (2000)")
    ap.add_argument("-r", type=int, default=1, metavar="REPEAT",
                    help="runs of each job, median of them (1)")
    ap.add_argument("-p", metavar="OTHER",
                    help="also time the rdps package of this build or "
                         "package folder")
    ap.add_argument("-W", metavar="BYTES", default="0",
                    help="also time pull and push in loops that read BYTES "
                         "of the caller's own memory before each call, "
                         "from C and from Python (e.g. 256k)")
    ap.add_argument("-c", metavar="CASE", default="",
                    help="only the cases whose name contains CASE, e.g. "
                         "'pull 1' (all)")
    a = ap.parse_args()
    cases = [c for c in CASES if a.c in c[0]]
    if not cases:
        ap.error(f"-c {a.c}: no case's name contains it; the cases: " +
                 ", ".join(c[0] for c in CASES))
    units = {"k": 1 << 10, "m": 1 << 20}
    try:
        work = int(a.W[:-1]) * units[a.W[-1].lower()] \
            if a.W and a.W[-1].lower() in units else int(a.W)
    except ValueError:
        work = -1
    if work < 0 or work > 1 << 30:
        ap.error(f"-W {a.W}: give bytes, e.g. 65536, 64k or 1m")
    iters = a.n
    other = None
    if a.p:
        other = os.path.join(a.p, "python") \
            if os.path.isdir(os.path.join(a.p, "python", "rdps")) else a.p
        if not os.path.isdir(os.path.join(other, "rdps")):
            ap.error(f"-p {a.p}: no rdps package there")
        other = os.path.abspath(other)
    launch = os.path.join(a.build, "tools", "rdps-launch")
    psbench = os.path.join(a.build, "tools", "rdps-psbench")
    head = (f"{'call':34} {'C us':>9} {'Python us':>10} {'added us':>9} "
            f"{'C call in Python':>16}")
    if other:
        head += f" {'-p Python':>10} {'-p added':>9}"
    if work:
        head += f" {'C -W us':>9} {'Python -W':>10} {'added -W':>9}"
    print(head)
    for name, test, nbytes, model, intr, poll in cases:
        c_args = [psbench, "-j", test, "-n", str(iters), "-P", poll]
        if nbytes:
            c_args += ["-s", str(nbytes)]
        py_args = [sys.executable, os.path.abspath(__file__), "--worker",
                   test, str(nbytes), str(iters), "1" if intr else "0", poll]
        # rdps-launch sets PYTHONPATH to its own build's package: env puts
        # the other one in its place for the -p worker.
        cmds = [c_args, py_args + ["0"]]
        if other:
            cmds.append(["env", "PYTHONPATH=" + other] + py_args + ["0"])
        with_work = work and test != "tick"
        if with_work:
            cmds += [c_args + ["-W", str(work)], py_args + [str(work)]]
        runs: list = [[] for _ in cmds]
        for _ in range(max(a.r, 1)):
            for i, cmd in enumerate(cmds):
                runs[i].append(job(launch, model, poll, cmd))
        med = [statistics.median(r["median_us"] for r in rs) for rs in runs]
        c, py = med[0], med[1]
        inner = [r["c_call_us"] for r in runs[1] if "c_call_us" in r]
        line = f"{name:34} {c:9.3f} {py:10.3f} {py - c:9.3f} " + \
            (f"{statistics.median(inner):16.3f}" if inner else f"{'-':>16}")
        if other:
            line += f" {med[2]:10.3f} {med[2] - c:9.3f}"
        if with_work:
            line += f" {med[-2]:9.3f} {med[-1]:10.3f} {med[-1] - med[-2]:9.3f}"
        elif work:
            line += f" {'-':>9} {'-':>10} {'-':>9}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
