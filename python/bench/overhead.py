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
    /usr/bin/python3 python/bench/overhead.py BUILD_DIR --sizes LIST
                                              [-n ITERS] [-r REPEAT] [-c CASE]
                                              [--raw FILE]

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
Python worker's calls, timed in the extension around the C call alone,
in the same loop as the Python calls, the two in turn; "in process" is
the Python call less that C call, per job, the median over the jobs:
what Python adds, with the copy's own cost taken out in the process
that paid it. "added us" (the Python job less the C job) also holds the
difference between two processes' copies, which at 1 MiB differ from
job to job by a few us either way, in C as in Python.

--sizes LIST (e.g. 128k,256k,512k,768k,1m,1.5m,2m,4m) replaces the cases
by a pull and a push of each size (-c filters them: "pull", "push 1
MiB"), a C job and a Python job each, the sizes in turn, -r rounds, and
prints for each the median added us and in-process us with their least
and greatest over the rounds. --raw FILE writes every job's result as a
JSON line; as root that holds how the copy's 4 KiB pages spread over
the page colours of the core's L2 (own_colours: the caller's array;
peer_colours: the shard's pages this process touched), from
/proc/self/pagemap and the L2 geometry in sysfs: these were the
evidence for README "Python", "Overhead" (the added cost does not
follow the colours).

The Python loops call t.pull(0, n, out=a) and t.push(a) as a training
loop does (an earlier lambda added a Python frame to every call).

pull: dense pull into ctx.array() / rdps_buf_alloc() memory (zero copy);
push: dense push from such memory, model asp (a push returns once
applied); clock: asp (never waits, so both run it in the caller) and bsp
(one worker: never waits on others; with interruptible=True, the
default, the context has a wait check that a wait calls for Ctrl-C, and
with interruptible=False none: a clock that does not wait never calls it,
so the two should cost the same). Run it on an idle machine: a loaded
one times the scheduler.
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


def l2_colours() -> int:
    """Page colours of this core's L2: the bytes of one way (sets times
    line size) over the 4 KiB page, 32 for a 2 MiB 16-way cache; 0 if
    sysfs does not say."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for idx in sorted(os.listdir(base)):
            d = os.path.join(base, idx)

            def rd(f: str) -> str:
                with open(os.path.join(d, f)) as fh:
                    return fh.read().strip()
            if rd("level") == "2":
                return int(rd("number_of_sets")) * \
                    int(rd("coherency_line_size")) // 4096
    except (OSError, ValueError):
        pass
    return 0


def page_colours(addr: int, nbytes: int, colours: int) -> list:
    """Pages of [addr, addr + nbytes) per L2 colour (physical frame
    number modulo colours), from /proc/self/pagemap; pages not present
    are not counted, so a sparse 16 GiB heap costs only its reads. Needs
    root (others read frame 0): all zero then."""
    out = numpy.zeros(colours, numpy.int64)
    first, last = addr // 4096, (addr + nbytes - 1) // 4096
    step = 1 << 19  # pages per read: 4 MiB of pagemap
    try:
        with open("/proc/self/pagemap", "rb") as f:
            for p in range(first, last + 1, step):
                f.seek(p * 8)
                e = numpy.frombuffer(
                    f.read((min(p + step, last + 1) - p) * 8), numpy.uint64)
                pfn = e[(e >> numpy.uint64(63)) == 1] & \
                    numpy.uint64((1 << 55) - 1)
                pfn = pfn[pfn != 0] % numpy.uint64(colours)
                out += numpy.bincount(pfn.astype(numpy.int64),
                                      minlength=colours)
    except OSError:
        pass
    return out.tolist()


def peer_colours(own: int, colours: int) -> list:
    """Pages per L2 colour of the other shm heaps mapped here (the
    shard's), counting only the pages this process touched: its pulls'
    sources or its pushes' destinations, and a few control words."""
    out = [0] * colours
    with open("/proc/self/maps") as f:
        for line in f:
            if "rdps-shm" not in line:
                continue
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if not lo <= own < hi:
                got = page_colours(lo, hi - lo, colours)
                out = [x + y for x, y in zip(out, got)]
    return out


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
        dt = getattr(t._t, "dense_timed", None)  # None in an old -p build
        if test == "pull":
            call = lambda: t.pull(0, n, out=a)  # noqa: E731
        elif test == "push":
            call = lambda: t.push(a)  # noqa: E731
        else:
            call = ctx.clock
        for _ in range(iters // 10):
            call()
        s: list = []
        c: list = []  # the C calls alone, when timed
        if test == "tick":  # batches, as rdps-psbench tick times them
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
            # The Python call and, when the build has the hook, the C call
            # alone (timed in the extension, GIL released) in turn: each
            # follows the other's copy, and both see the same pages and
            # the same moments of the machine, so their difference is what
            # Python adds in this process, which a C job's own pages and
            # moments (its copy differs by a few us at 1 MiB) do not blur.
            if test == "pull":
                for _ in range(iters):
                    t0 = clock()
                    t.pull(0, n, out=a)
                    s.append(clock() - t0)
                    if dt:
                        c.append(dt(True, 0, n, a))
            else:
                for _ in range(iters):
                    t0 = clock()
                    t.push(a)
                    s.append(clock() - t0)
                    if dt:
                        c.append(dt(False, 0, n, a))
        res = {"median_us": statistics.median(s) / 1000}
        if c:
            res["c_call_us"] = statistics.median(c) / 1000
        colours = l2_colours()
        if test != "tick" and nbytes >= 1 << 16 and colours:
            # Where the copy's pages fall in L2: the caller's array and
            # the shard's pages this process touched (the other side).
            own = a.ctypes.data
            res["own_colours"] = page_colours(own, a.nbytes, colours)
            res["peer_colours"] = peer_colours(own, colours)
        print(json.dumps(res))


def job(launch: str, model: str, poll: str, cmd: list) -> dict:
    out = subprocess.run([launch, "-w", "1", "-m", model, "-P", poll,
                          "--"] + cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def parse_bytes(text: str) -> int:
    """65536, 64k or 1m as bytes; -1 if it is none of these."""
    units = {"k": 1 << 10, "m": 1 << 20}
    try:
        if text and text[-1].lower() in units:
            return int(float(text[:-1]) * units[text[-1].lower()])
        return int(text)
    except ValueError:
        return -1


def size_name(nbytes: int) -> str:
    if nbytes >= 1 << 20:
        return f"{nbytes / (1 << 20):g} MiB"
    return f"{nbytes / 1024:g} KiB" if nbytes >= 1024 else f"{nbytes} B"


def spread(xs: list) -> str:
    return f"{statistics.median(xs):6.2f} [{min(xs):5.2f}, {max(xs):5.2f}]"


def sweep(a, launch: str, psbench: str, sizes: list, raw) -> None:
    """--sizes: pull and push of each size, C and Python jobs in turn,
    each round over all sizes, a.r rounds; which of the pair runs first
    alternates by round. "added" pairs each Python job with the C job
    of its round; "in process" is each Python job's call less the C call
    inside it, the two timed in turn in one loop (the same pages, the
    same moments of the machine: no other job's)."""
    rows = [(op, n) for n in sizes for op in ("pull", "push")
            if a.c in f"{op} {size_name(n)}"]
    got: dict = {row: ([], []) for row in rows}
    for r in range(max(a.r, 1)):
        for op, n in rows:
            # Fewer calls above 1 MiB, so that a job stays under a second.
            iters = max(200, min(a.n, a.n * (1 << 20) // n))
            poll = "busy" if op == "pull" else "adaptive"
            cmds = [[psbench, "-j", op, "-n", str(iters), "-P", poll,
                     "-s", str(n)],
                    [sys.executable, os.path.abspath(__file__), "--worker",
                     op, str(n), str(iters), "1", poll, "0"]]
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                res = job(launch, "asp", poll, cmds[i])
                got[(op, n)][i].append(res)
                if raw:
                    res.update(op=op, bytes=n, round=r,
                               kind=("C", "Python")[i])
                    raw.write(json.dumps(res) + "\n")
                    raw.flush()
    print(f"{'call':14} {'C us':>8} {'Python us':>9} "
          f"{'added us: median [min, max]':>28} "
          f"{'in process: median [min, max]':>30}")
    for op, n in rows:
        c, py = got[(op, n)]
        cm = [x["median_us"] for x in c]
        pm = [x["median_us"] for x in py]
        inproc = [x["median_us"] - x["c_call_us"] for x in py
                  if "c_call_us" in x]
        print(f"{op + ' ' + size_name(n):14} {statistics.median(cm):8.1f} "
              f"{statistics.median(pm):9.1f} "
              f"{spread([q - p for p, q in zip(cm, pm)]):>28} "
              f"{spread(inproc) if inproc else '-':>30}", flush=True)


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
    ap.add_argument("--sizes", metavar="LIST",
                    help="instead of the cases: pull and push of each "
                         "size, e.g. 128k,256k,512k,768k,1m,1.5m,2m,4m, "
                         "C and Python in turn, -r rounds; the median "
                         "added us and its spread per size")
    ap.add_argument("--raw", metavar="FILE",
                    help="--sizes: also write every job's result, one "
                         "JSON line each (with, as root, the L2 colours "
                         "of the copy's pages)")
    a = ap.parse_args()
    launch = os.path.join(a.build, "tools", "rdps-launch")
    psbench = os.path.join(a.build, "tools", "rdps-psbench")
    if a.sizes:
        sizes = [parse_bytes(x) for x in a.sizes.split(",")]
        if any(n < 4 or n % 4 or n > 1 << 30 for n in sizes):
            ap.error(f"--sizes {a.sizes}: give bytes, multiples of 4 up "
                     "to 1g, e.g. 128k,1m,1.5m")
        if a.p or a.W != "0":
            ap.error("--sizes: runs without -p and -W")
        if not any(a.c in f"{op} {size_name(n)}" for n in sizes
                   for op in ("pull", "push")):
            ap.error(f"-c {a.c}: no call of --sizes is named so, e.g. "
                     f"'pull' or 'push {size_name(sizes[0])}'")
        if a.raw:
            with open(a.raw, "w") as raw:
                sweep(a, launch, psbench, sizes, raw)
        else:
            sweep(a, launch, psbench, sizes, None)
        return 0
    elif a.raw:
        ap.error("--raw: only with --sizes")
    cases = [c for c in CASES if a.c in c[0]]
    if not cases:
        ap.error(f"-c {a.c}: no case's name contains it; the cases: " +
                 ", ".join(c[0] for c in CASES))
    work = parse_bytes(a.W)
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
    head = (f"{'call':34} {'C us':>9} {'Python us':>10} {'added us':>9} "
            f"{'C call in Python':>16} {'in process':>10}")
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
        line = f"{name:34} {c:9.3f} {py:10.3f} {py - c:9.3f} "
        if inner:
            # Each Python job's calls less the C calls inside it (paired
            # in one loop), the median over the jobs.
            own = [r["median_us"] - r["c_call_us"] for r in runs[1]
                   if "c_call_us" in r]
            line += f"{statistics.median(inner):16.3f} " \
                f"{statistics.median(own):10.3f}"
        else:
            line += f"{'-':>16} {'-':>10}"
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
