# SPDX-License-Identifier: MIT
"""Why a 1 MiB call costs Python more than an 8 B one: the same small
calls timed warm and right after a large copy, in one worker process, so
that the copy is the only thing that differs (README "Python",
"Overhead"):

    /usr/bin/python3 python/bench/refill.py BUILD_DIR [-n ITERS] [-r ROUNDS]

Each row is a step run untimed before every timed call: nothing, a 1 MiB
rdps pull into ctx.array() (a memcpy out of the shard's segment), the
same pull followed by a numpy sum of the pulled array (how a training
loop uses what it pulled), a 1 MiB numpy copy between two arrays of
this process (no rdps), a 4 MiB one, or a read of 1 MiB that stays in
the cache. The first column is the step itself (timed in a run of its
own); the others are the timed call: an 8 B Table.pull(); the same
pull's C call alone (timed inside the extension, GIL released); and an
empty Python function call. The rounds take the steps in turn; medians
in us. If the copies (with or without rdps) make all three slower and
the read does not, what a large call adds is the refill of the caches
the copy evicted, in whatever code runs next: the interpreter's,
numpy's and the library's.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def worker(iters: int, rounds: int) -> None:
    import numpy
    import rdps

    mib = 1 << 20
    n = mib // 4
    with rdps.Context(poll_mode="busy") as ctx:
        t = ctx.table("refill", n)
        a = ctx.array(n)
        a[:] = 1.0
        t.push(a)
        small = ctx.array(2)
        x, y = numpy.ones(n, numpy.float32), numpy.empty(n, numpy.float32)
        x4, y4 = numpy.ones(4 * n, numpy.float32), numpy.empty(4 * n,
                                                               numpy.float32)
        dt, clock = t._t.dense_timed, time.perf_counter_ns

        def nothing() -> None:
            return None

        steps = {
            "nothing": nothing,
            "rdps pull 1 MiB": lambda: t.pull(0, n, out=a),
            "rdps pull 1 MiB, numpy sum": lambda: (t.pull(0, n, out=a),
                                                   a.sum()),
            "numpy copy 1 MiB": lambda: numpy.copyto(y, x),
            "numpy copy 4 MiB": lambda: numpy.copyto(y4, x4),
            "read 1 MiB (sum)": lambda: x.sum(),
        }
        res: dict = {}
        for _ in range(rounds):
            for name, step in steps.items():
                own, pull, c_call, empty = res.setdefault(
                    name, ([], [], [], []))
                for _ in range(iters):
                    # The step's own time, in a run of its own, so that
                    # nothing but the step comes before the timed calls.
                    t0 = clock()
                    step()
                    own.append(clock() - t0)
                    step()
                    t0 = clock()
                    t.pull(0, 2, out=small)
                    pull.append(clock() - t0)
                    step()
                    c_call.append(dt(True, 0, 2, small))
                    step()
                    t0 = clock()
                    nothing()
                    empty.append(clock() - t0)
        print(f"{'untimed step before each call':30} {'the step':>9} "
              f"{'8 B pull':>9} {'its C call':>10} {'empty call':>10}")
        for name, cols in res.items():
            print(f"{name:30} " + " ".join(
                f"{statistics.median(c) / 1000:{w}.3f}"
                for c, w in zip(cols, (9, 9, 10, 10))))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(
        description="small calls warm and after a large copy (see the "
                    "module's doc)")
    ap.add_argument("build", help="the build folder (tools/, python/)")
    ap.add_argument("-n", type=int, default=200,
                    help="timed calls per step and round (200)")
    ap.add_argument("-r", type=int, default=5, metavar="ROUNDS",
                    help="rounds over the steps (5)")
    a = ap.parse_args()
    if a.n < 1 or a.r < 1:
        ap.error("-n and -r: give at least 1")
    launch = os.path.join(a.build, "tools", "rdps-launch")
    if not os.access(launch, os.X_OK):
        ap.error(f"{a.build}: no tools/rdps-launch there (a build folder)")
    out = subprocess.run([launch, "-w", "1", "-m", "asp", "-P", "busy", "--",
                          sys.executable, os.path.abspath(__file__),
                          "--worker", str(a.n), str(a.r)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=True, text=True).stdout
    print(out, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
