# SPDX-License-Identifier: MIT
"""Workers of the Python job tests, one mode per argument:

sum: every worker pushes rank + 1 (dense, then sparse) for ROUNDS clocks;
     each round every worker pulls and checks the exact sum of all pushes
     so far: every push applied exactly once.
interrupt MARKER: rank 0 blocks in clock() (rank 1 never clocks) and
     SIGINT arrives: KeyboardInterrupt must come out of clock(), then the
     context is unusable (rdps.Error EINTR). Rank 0 creates MARKER; rank 1
     waits for it and leaves. Without a working interrupt rank 0 would sit
     in the clock until its timeout and fail.
"""
import errno
import os
import signal
import sys
import threading
import time

import numpy

import rdps

ROUNDS = 5
N = 1000


def check(cond: bool, what: str) -> None:
    if not cond:
        print(f"worker.py: {what}", file=sys.stderr)
        sys.exit(1)


def mode_sum() -> None:
    with rdps.Context() as ctx:
        w = ctx.workers
        dense = ctx.table("dense", N)
        sparse = ctx.table("sparse", N, dtype=numpy.float64)
        out = ctx.array(N)
        idx = numpy.arange(ctx.rank, N, 7, dtype=numpy.uint64)
        tri = w * (w + 1) // 2
        for r in range(ROUNDS):
            dense.push(numpy.full(N, ctx.rank + 1, numpy.float32))
            sparse.push_sparse(idx, numpy.full(idx.size, ctx.rank + 1.0))
            ctx.clock()
            dense.pull(out=out)
            check(bool((out == tri * (r + 1)).all()),
                  f"rank {ctx.rank} round {r}: dense {out[:4]} != "
                  f"{tri * (r + 1)}")
            want = numpy.zeros(N)
            for k in range(w):
                want[k::7] += (k + 1) * (r + 1)
            got = sparse.pull()
            check(bool((got == want).all()),
                  f"rank {ctx.rank} round {r}: sparse sums differ at "
                  f"{numpy.flatnonzero(got != want)[:4]}")
        st = ctx.stats()
        check(st["clocks"] == ROUNDS and st["pushes"] == 2 * ROUNDS,
              f"stats {st}")


def mode_interrupt(marker: str) -> None:
    ctx = rdps.Context(timeout_ms=20000)
    if ctx.rank != 0:
        while not os.path.exists(marker):
            time.sleep(0.01)
        os.unlink(marker)
        os._exit(0)  # leave without a clock: rank 0 stays blocked
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        ctx.clock()
        check(False, "clock() returned although rank 1 never clocked")
    except KeyboardInterrupt:
        pass
    finally:
        open(marker, "w").close()
    check(ctx.closed, "the context is not closed after the interrupt")
    try:
        ctx.clock()
        check(False, "clock() worked on an interrupted context")
    except rdps.Error as e:
        check(e.errno == errno.EINTR, f"errno {e.errno}, not EINTR")
    ctx.close()


if __name__ == "__main__":
    if sys.argv[1] == "sum":
        mode_sum()
    else:
        mode_interrupt(sys.argv[2])
