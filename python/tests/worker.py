# SPDX-License-Identifier: MIT
"""Workers of the Python job tests, one mode per argument:

sum: every worker pushes rank + 1 (dense, then sparse) for ROUNDS clocks;
     each round every worker pulls and checks the exact sum of all pushes
     so far: every push applied exactly once.
emb: embedding tables. Every worker pushes rows for overlapping keys
     (key i by the ranks r with i % (r + 1) == 0, each key twice per call)
     for ROUNDS clocks and checks every row's exact sum each round: every
     push applied once, duplicates of a call summed; keys never pushed
     read as 0. A uniform-init table: an absent key reads as the same
     initial row on every pull and rank, in [-scale, scale), and after
     one push of 1 per worker reads as that row plus workers: the shard
     inserted the key at the row the workers computed. export() of both
     tables gives exactly the keys pushed, sorted, with the pulled rows.
export_torn: export() while another worker rewrites the rows never
     returns a torn row (see mode_export_torn).
interrupt MARKER CALL: rank 0 blocks in CALL (clock, barrier or pull) and
     SIGINT arrives: KeyboardInterrupt must come out of it, then the
     context is unusable (rdps.Error EINTR) and closed. clock and barrier
     block because rank 1 never calls them; a BSP pull blocks on the
     shard's applied clock because rank 1 stopped the shard (SIGSTOP)
     after both clocked, so neither END is applied (the clocks themselves
     are fetch-adds on shm: no shard CPU). No sleep synchronizes: rank 0
     writes MARKER.blocking (its pid) right before the call; rank 1 waits
     for it, then for rank 0's thread to sleep (/proc state S: in the
     wait, which backs off) and signals it; rank 0 writes MARKER.done once
     it checked the context, and rank 1 leaves then, resuming the shard
     first. Without a working interrupt rank 0 would sit in the call until
     its timeout (or the stopped shard's heartbeat) and fail with
     rdps.Error instead of KeyboardInterrupt. Run it with -m bsp and a
     long --heartbeat-ms.
"""
import errno
import os
import signal
import sys
import time
from typing import Callable

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


def emb_key(i: int) -> int:
    """Key i spread over 64 bits, as hashed feature ids are."""
    return (i + 1) * 0x9E3779B97F4A7C15 % 2**64


def mode_emb() -> None:
    dim, nkeys = 8, 300
    with rdps.Context() as ctx:
        w, rank = ctx.workers, ctx.rank
        e = ctx.emb_table("sums", dim, capacity=4096)
        ids = numpy.arange(nkeys)
        keys = numpy.array([emb_key(i) for i in ids], numpy.uint64)
        mine = ids[ids % (rank + 1) == 0]
        twice = numpy.concatenate([keys[mine], keys[mine]])
        row = (rank + 1) * numpy.arange(1, dim + 1, dtype=numpy.float32)
        grads = numpy.tile(row, (twice.size, 1))
        per = numpy.zeros((nkeys, dim))  # one round's sum per key
        for r in range(w):
            per[ids % (r + 1) == 0] += 2 * (r + 1) * numpy.arange(1, dim + 1)
        absent = numpy.array([emb_key(i) for i in range(10**6, 10**6 + 16)],
                             numpy.uint64)
        out = ctx.array((nkeys, dim))
        for rnd in range(ROUNDS):
            e.push(twice, grads)
            ctx.clock()
            got = e.pull(keys, out=out)
            check(got is out, "pull(out=) did not return out")
            bad = numpy.flatnonzero((got != per * (rnd + 1)).any(axis=1))
            check(bad.size == 0, f"rank {rank} round {rnd}: rows of ids "
                  f"{bad[:4]} are {got[bad[:1]]}, not "
                  f"{per[bad[:1]] * (rnd + 1)}")
            check(not e.pull(absent).any(), "an absent key is not 0")
        st = e.stats()
        check(st["pushes"] == ROUNDS and st["misses"] >= 16 * ROUNDS and
              st["rows_pushed"] == ROUNDS * mine.size, f"stats {st}")
        # export(): exactly the keys pushed (rank 0 pushes every id), in
        # key order, each with its row; absent keys are not in it.
        ctx.barrier()
        xk, xr = e.export()
        order = numpy.argsort(keys)
        check(xk.size == nkeys and bool((xk == keys[order]).all()),
              f"rank {rank}: export() gave {xk.size} keys, not the "
              f"{nkeys} pushed")
        check(bool((xr == per[order] * ROUNDS).all()) and
              xr.dtype == numpy.float32 and xr.shape == (nkeys, dim),
              f"rank {rank}: exported rows differ from the pushed sums")

        scale = 0.5
        u = ctx.emb_table("init", dim, dtype=numpy.float64, init="uniform",
                          init_scale=scale, seed=7)
        fresh = numpy.array([emb_key(i) for i in range(5000, 5064)],
                            numpy.uint64)
        v0 = u.pull(fresh)
        check(bool((v0 >= -scale).all() and (v0 < scale).all()) and
              bool((v0 != 0).any()), f"initial rows {v0[:1]}")
        check(bool((u.pull(fresh[::-1]) == v0[::-1]).all()),
              "an absent key's initial row differs between pulls")
        ctx.barrier()  # every rank read the rows before any push
        u.push(fresh, numpy.ones((fresh.size, dim)))
        ctx.clock()
        got = u.pull(fresh)
        check(bool(numpy.allclose(got, v0 + w, rtol=0, atol=1e-9)),
              f"rank {rank}: pushed rows {got[:1]} != initial {v0[:1]} + "
              f"{w}: the shard's initial row is not the worker's")
        xk, xr = u.export()
        order = numpy.argsort(fresh)
        check(xk.size == fresh.size and bool((xk == fresh[order]).all())
              and bool((xr == got[order]).all())
              and xr.dtype == numpy.float64,
              f"rank {rank}: export() of the uniform table differs from "
              "its pulled rows")


def mode_export_torn() -> None:
    """Rank 0 exports while rank 1 keeps rewriting every row (asp): each
    exported row must be whole, all its values the same count of pushes,
    never a mix of two versions. Rank 0 goes on until it read a row torn
    (and read it again, counted) TORN times, at most MAX exports: the
    race was hit, not just run (with the row check removed, a torn row
    comes out)."""
    dim, nkeys, torn, most = 1024, 32, 3, 20000
    with rdps.Context() as ctx:
        e = ctx.emb_table("torn", dim, capacity=256)
        stop = ctx.table("stop", 1)
        keys = numpy.array([emb_key(i) for i in range(nkeys)], numpy.uint64)
        ones = numpy.ones((nkeys, dim), numpy.float32)
        if ctx.rank == 1:
            e.push(keys, ones)
            ctx.barrier()
            pushes = 1
            while not stop.pull()[0]:
                e.push(keys, ones)
                pushes += 1
            ctx.barrier()
            print(f"worker.py export_torn: {pushes} pushes", file=sys.stderr)
            return
        ctx.barrier()  # every key is in
        i = 0
        while e.stats()["torn_retries"] < torn and i < most:
            i += 1
            xk, xr = e.export()
            check(xk.size == nkeys, f"export {i}: {xk.size} keys")
            whole = (xr == xr[:, :1]).all(axis=1)
            if not whole.all():
                check(False, f"export {i}: a torn row: key "
                      f"{xk[~whole][0]} holds "
                      f"{numpy.unique(xr[~whole][0])}")
        stop.push(numpy.ones(1, numpy.float32))
        ctx.barrier()
        print(f"worker.py export_torn: {i} exports, torn reads "
              f"read again: {e.stats()['torn_retries']}", file=sys.stderr)


def wait_for(what: str, cond: Callable[[], bool], deadline: float) -> None:
    """Poll cond() (a visible state of another process) until true."""
    while not cond():
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        time.sleep(0.001)


def proc_state(pid: int) -> str:
    """The state letter of /proc/PID/stat (R, S, T, ...), '' if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def shard_pid(url: str) -> int:
    """This job's rdps-server that listens on url."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if url.encode() in argv and b"--listen" in argv:
                return int(d)
    check(False, f"no rdps-server listens on {url}")
    return 0


def mode_interrupt(marker: str, call: str) -> None:
    blocking, done = marker + ".blocking", marker + ".done"
    ctx = rdps.Context(timeout_ms=20000)
    t = ctx.table("intr", N)
    deadline = time.monotonic() + 15
    if ctx.rank != 0:
        shard = 0
        try:
            if call == "pull":
                ctx.barrier()  # rank 0 opened the table: stop the shard
                shard = shard_pid(os.environ["RDPS_SHARDS"].split(",")[0])
                os.kill(shard, signal.SIGSTOP)
                wait_for("the shard to stop",
                         lambda: proc_state(shard) == "T", deadline)
                ctx.clock()  # both arrive; the shard applies neither END
            wait_for(blocking, lambda: os.path.exists(blocking), deadline)
            with open(blocking) as f:
                pid = int(f.read())
            wait_for(f"rank 0 to sleep in {call}()",
                     lambda: proc_state(pid) == "S", deadline)
            os.kill(pid, signal.SIGINT)
            wait_for(done, lambda: os.path.exists(done), deadline)
        finally:
            if shard:
                os.kill(shard, signal.SIGCONT)
        os.unlink(done)
        os._exit(0)  # leave without the calls rank 0 waits for
    if call == "pull":
        ctx.barrier()
        ctx.clock()
    with open(blocking + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(blocking + ".tmp", blocking)
    try:
        if call == "pull":
            t.pull()
        else:
            getattr(ctx, call)()
        check(False, f"{call}() returned although it had to wait")
    except KeyboardInterrupt:
        pass
    finally:
        os.unlink(blocking)
        open(done, "w").close()
    check(ctx.closed, "the context is not closed after the interrupt")
    try:
        t.pull()
        check(False, "pull() worked on an interrupted context")
    except rdps.Error as e:
        check(e.errno == errno.EINTR, f"errno {e.errno}, not EINTR")
    try:
        ctx.clock()
        check(False, "clock() worked on an interrupted context")
    except rdps.Error as e:
        check(e.errno == errno.EINTR, f"errno {e.errno}, not EINTR")
    ctx.close()


if __name__ == "__main__":
    if sys.argv[1] == "sum":
        mode_sum()
    elif sys.argv[1] == "emb":
        mode_emb()
    elif sys.argv[1] == "export_torn":
        mode_export_torn()
    else:
        mode_interrupt(sys.argv[2], sys.argv[3])
