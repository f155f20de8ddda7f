# SPDX-License-Identifier: MIT
"""The rdps package's API in one worker of a job (ctest py_api runs it
under rdps-launch -w 1 -s 2): zero copy lands in registered memory, and
every error path raises what help(rdps) promises, naming the argument."""
import errno
import time

import numpy
import pytest

import rdps

N = 100


@pytest.fixture(scope="module")
def ctx():
    with rdps.Context() as c:
        yield c


@pytest.fixture(scope="module")
def t(ctx):
    return ctx.table("api", N)


def test_zero_copy_pull_lands_in_registered_memory(ctx, t):
    a = ctx.array(N)
    base = a  # down to the rdps_buf_alloc() buffer under the array
    while not isinstance(base, rdps._rdps.Buffer):
        base = base.base
    lo = base.address()
    t.push(numpy.arange(N, dtype=numpy.float32))
    ctx.clock()
    out = t.pull(out=a)
    assert out is a
    assert lo <= out.ctypes.data and out.ctypes.data + out.nbytes <= lo + len(base)
    assert (a == numpy.arange(N)).all()
    st = ctx.stats()
    assert st["pulls"] >= 1 and st["bytes_pulled"] >= N * 4
    # A pull into part of the buffer is zero copy too, and lands there.
    part = t.pull(10, 20, out=a[50:70])
    assert (part == numpy.arange(10, 30)).all() and (a[50:70] == part).all()


def test_dense_timed_is_dense_with_its_c_time(ctx, t):
    # The overhead benchmark's hook: the same call as dense(), returning
    # the C call's own time (ns), which an outer clock must enclose.
    a = ctx.array(N)
    before = t.pull()
    t0 = time.perf_counter_ns()
    ns = t._t.dense_timed(True, 0, N, a)
    outer = time.perf_counter_ns() - t0
    assert isinstance(ns, int) and 0 < ns <= outer
    assert (a == before).all()
    ns = t._t.dense_timed(False, 0, N, numpy.ones(N, numpy.float32))
    assert isinstance(ns, int) and ns > 0
    ctx.clock()
    assert (t.pull() == before + 1).all()
    with pytest.raises(ValueError, match="out"):
        t._t.dense_timed(True, 0, N, numpy.zeros(N - 1, numpy.float32))


def test_plain_dense_calls_run_in_c_and_others_are_checked(ctx, monkeypatch):
    # pull() and push() run their plain calls in C (_rdps.fast_dense) and
    # give every other call to the Python method. With the Python
    # method's range check made to fail, the plain calls still work (they
    # never reach it) and the others fail in it.
    t = ctx.table("fast", N)
    a, b = ctx.array(N), ctx.array(N)
    b[:] = numpy.arange(N, dtype=numpy.float32)
    t.push(b)
    t.push(delta=b[10:20], start=10)
    ctx.clock()
    want = numpy.arange(N, dtype=numpy.float32)
    want[10:20] *= 2

    def no_range(self, start, count):
        raise RuntimeError("the Python method ran")

    monkeypatch.setattr(rdps.Table, "_range", no_range)
    assert t.pull(0, N, out=a) is a and (a == want).all()
    a[:] = 0
    assert t.pull(out=a) is a and (a == want).all()
    assert (t.pull(start=5, count=10, out=a[:10]) == want[5:15]).all()
    assert (t.pull(N - 3, None, a[:3]) == want[N - 3:]).all()
    for call in (lambda: t.pull(),  # no out: the Python method allocates
                 lambda: t.pull(0, N, numpy.empty(N, numpy.float32)),
                 lambda: t.pull(numpy.int64(0), N, a),  # not an int
                 lambda: t.pull(0, N - 1, a),  # count is not out's size
                 lambda: t.push(b, start=1),  # past the end
                 lambda: t.push(numpy.ones(N, numpy.float32))):  # owns
        with pytest.raises(RuntimeError, match="the Python method ran"):
            call()
    monkeypatch.undo()
    # The same calls, checked, as before: what they do or raise.
    assert (t.pull() == want).all()
    assert (t.pull(0, N, numpy.empty(N, numpy.float32)) == want).all()
    with pytest.raises(ValueError, match="out: 9 elements, the call takes 10"):
        t.pull(0, 10, a[:9])
    with pytest.raises(ValueError, match="out of the table's range"):
        t.push(b, start=1)
    ro = a[:4]
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: the array is read-only"):
        t.pull(0, 4, ro)
    with pytest.raises(TypeError, match="dtype float64"):
        t.pull(0, N, ctx.array(N, numpy.float64))
    with pytest.raises(TypeError):
        t.pull(0, N, a, 4)
    with pytest.raises(TypeError):
        t.pull(0, N, out=a, extra=1)
    assert rdps.Table.pull.__doc__.startswith("Read [start, start + count)")
    assert "start" in str(__import__("inspect").signature(rdps.Table.pull))


def test_read_lines_reads_a_buffer_and_names_a_bad_one():
    # The overhead benchmark's -W work: reads a buffer of any size and
    # alignment, rejects what is not one, naming buf.
    a = numpy.arange(1001, dtype=numpy.uint8)
    assert rdps._rdps.read_lines(a) is None
    assert rdps._rdps.read_lines(a[3:]) is None
    assert rdps._rdps.read_lines(b"") is None
    with pytest.raises(ValueError, match="buf: the array must be C-contig"):
        rdps._rdps.read_lines(a[::2])
    with pytest.raises(TypeError):
        rdps._rdps.read_lines(3)


def test_array_shape_and_dtype(ctx):
    a = ctx.array((3, 4), dtype=numpy.float64)
    assert a.shape == (3, 4) and a.dtype == numpy.float64 and not a.any()
    with pytest.raises(TypeError, match="dtype"):
        ctx.array(4, dtype=numpy.int32)
    with pytest.raises(ValueError, match=r"shape\[1\]"):
        ctx.array((3, 0))


def _readonly(n):
    a = numpy.zeros(n, numpy.float32)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("call, exc, word", [
    (lambda t: t.pull(out=numpy.zeros(N, numpy.float64)), TypeError, "out"),
    (lambda t: t.pull(out=numpy.zeros(N - 1, numpy.float32)), ValueError,
     "out"),
    (lambda t: t.pull(out=numpy.zeros((N, 2), numpy.float32)[:, 0]),
     ValueError, "C-contiguous"),
    (lambda t: t.pull(out=[0.0] * N), TypeError, "out"),
    (lambda t: t.pull(out=_readonly(N)), ValueError, "out: the array is "
     "read-only"),
    (lambda t: t.push(numpy.zeros((N, 2), numpy.float32)[:, 0]), ValueError,
     "delta: the array must be C-contiguous"),
    (lambda t: t.pull(90, 20), ValueError, "range"),
    (lambda t: t.pull(-1), ValueError, "start"),
    (lambda t: t.pull(0, "5"), TypeError, "count"),
    (lambda t: t.push(numpy.zeros(N, numpy.float64)), TypeError, "delta"),
    (lambda t: t.push(numpy.zeros(N, numpy.float32), start=1), ValueError,
     "range"),
    (lambda t: t.push([1.0]), TypeError, "delta"),
    (lambda t: t.pull_sparse(numpy.array([N], numpy.uint64)), ValueError,
     "idx"),
    (lambda t: t.pull_sparse(numpy.array([-1])), ValueError, "idx"),
    (lambda t: t.pull_sparse(numpy.array([0.5])), TypeError, "idx"),
    (lambda t: t.pull_sparse(numpy.array([1, 2], numpy.uint64),
                             out=numpy.zeros(3, numpy.float32)), ValueError,
     "out"),
    (lambda t: t.push_sparse(numpy.array([1, 2], numpy.uint64),
                             numpy.zeros(1, numpy.float32)), ValueError,
     "delta"),
])
def test_bad_arguments_raise_naming_them(t, call, exc, word):
    with pytest.raises(exc, match=word):
        call(t)


def test_bad_table_arguments(ctx):
    for kw, exc, word in [
            (dict(name="", n=1), ValueError, "name"),
            (dict(name="x" * 32, n=1), ValueError, "name"),
            (dict(name="x", n=0), ValueError, "n"),
            (dict(name="x", n=1, dtype=numpy.int64), TypeError, "dtype"),
            (dict(name="x", n=1, rule="max"), ValueError, "rule"),
            (dict(name="x", n=1, lr=-1.0), ValueError, "lr")]:
        with pytest.raises(exc, match=word):
            ctx.table(**kw)


def test_c_errors_raise_rdps_error_with_errmsg(ctx, t):
    # Reopening with another size fails in rdps_table_open: -EINVAL, and
    # rdps_errmsg() names the difference.
    with pytest.raises(rdps.Error) as e:
        ctx.table("api", N + 1)
    assert isinstance(e.value, OSError) and e.value.errno == errno.EINVAL
    assert "api" in e.value.strerror
    # cut() outside A-BSP is -EINVAL from the library.
    with pytest.raises(rdps.Error) as e:
        ctx.cut()
    assert e.value.errno == errno.EINVAL


def test_bad_context_arguments():
    with pytest.raises(ValueError, match="model"):
        rdps.Context(model="fast")
    with pytest.raises(ValueError, match="rank"):
        rdps.Context(rank=-2)
    with pytest.raises(TypeError, match="shards"):
        rdps.Context(shards=5)
    with pytest.raises(ValueError, match="clock_fanin: 5000 is out of range"):
        rdps.Context(clock_fanin=5000)
    with pytest.raises(rdps.Error) as e:  # nothing listens there
        rdps.Context(shards="shm://rdps-py-nobody-s0", rank=0, workers=1,
                     timeout_ms=300)
    assert e.value.errno != 0 and e.value.strerror


@pytest.fixture(scope="module")
def emb(ctx):
    return ctx.emb_table("api-emb", 4, capacity=64)


K3 = numpy.array([5, 6, 7], numpy.uint64)


def test_emb_pull_lands_in_registered_memory(ctx, emb):
    a = ctx.array((3, 4))
    emb.push(K3, numpy.ones((3, 4), numpy.float32))
    ctx.clock()
    assert emb.pull(K3, out=a) is a and (a == 1).all()
    assert emb.pull(K3).shape == (3, 4)
    assert emb.pull(numpy.zeros(0, numpy.uint64)).shape == (0, 4)
    st = emb.stats()
    assert st["pulls"] >= 2 and st["rows_pushed"] >= 3
    # The location cache's counters, and the transport's, reach Python.
    assert st["cache_hits"] >= 3 and st["cache_stale"] == 0
    assert ctx.stats()["remote_ops"] > 0 and ctx.stats()["remote_bytes"] > 0
    assert ctx.stats()["emb_pulls"] == st["pulls"]


def test_emb_export_empty_then_rows(ctx):
    e = ctx.emb_table("api-export", 3, dtype=numpy.float64, capacity=16)
    k, r = e.export()
    assert k.dtype == numpy.uint64 and k.shape == (0,)
    assert r.dtype == numpy.float64 and r.shape == (0, 3)
    keys = numpy.array([2**64 - 1, 0, 77], numpy.uint64)
    e.push(keys, numpy.arange(9, dtype=numpy.float64).reshape(3, 3))
    ctx.clock()
    k, r = e.export()
    assert (k == [0, 77, 2**64 - 1]).all()
    assert (r == [[3, 4, 5], [6, 7, 8], [0, 1, 2]]).all()
    r[0, 0] = -1  # the arrays are the caller's
    assert e.export()[1][0, 0] == 3


@pytest.mark.parametrize("call, exc, word", [
    (lambda e: e.pull([5, 6]), TypeError, "keys"),
    (lambda e: e.pull(numpy.array([5, 6])), TypeError, "keys: dtype int64"),
    (lambda e: e.pull(numpy.zeros((2, 2), numpy.uint64)), ValueError,
     "keys"),
    (lambda e: e.pull(K3, out=numpy.zeros((3, 4), numpy.float64)),
     TypeError, "out"),
    (lambda e: e.pull(K3, out=numpy.zeros((3, 5), numpy.float32)),
     ValueError, "out: shape"),
    (lambda e: e.pull(K3, out=numpy.zeros(12, numpy.float32)), ValueError,
     "out: shape"),
    (lambda e: e.pull(K3, out=_readonly(12).reshape(3, 4)), ValueError,
     "out: the array is read-only"),
    (lambda e: e.pull(K3, out=numpy.zeros((4, 3), numpy.float32).T),
     ValueError, "out"),
    (lambda e: e.push(K3, numpy.zeros((2, 4), numpy.float32)), ValueError,
     "grads: shape"),
    (lambda e: e.push(K3, numpy.zeros((3, 4))), TypeError, "grads"),
    (lambda e: e.push(K3, [[0.0] * 4] * 3), TypeError, "grads"),
    (lambda e: e.push(numpy.array([1.5]), numpy.zeros((1, 4), numpy.float32)),
     TypeError, "keys"),
])
def test_emb_bad_arguments_raise_naming_them(emb, call, exc, word):
    with pytest.raises(exc, match=word):
        call(emb)


def test_emb_bad_table_arguments(ctx):
    for kw, exc, word in [
            (dict(name="", dim=4), ValueError, "name"),
            (dict(name="x" * 32, dim=4), ValueError, "name"),
            (dict(name="x", dim=0), ValueError, "dim"),
            (dict(name="x", dim=4097), ValueError, "dim"),
            (dict(name="x", dim=4.0), TypeError, "dim"),
            (dict(name="x", dim=4, dtype=numpy.int32), TypeError, "dtype"),
            (dict(name="x", dim=4, rule="put"), ValueError, "rule"),
            (dict(name="x", dim=4, lr=-1.0), ValueError, "lr"),
            (dict(name="x", dim=4, lr=float("nan")), ValueError, "lr"),
            (dict(name="x", dim=4, capacity=0), ValueError, "capacity"),
            (dict(name="x", dim=4, init="ones"), ValueError, "init"),
            (dict(name="x", dim=4, init_scale=-1), ValueError, "init_scale"),
            (dict(name="x", dim=4, seed=-1), ValueError, "seed")]:
        with pytest.raises(exc, match=word):
            ctx.emb_table(**kw)


def test_emb_c_errors_raise_rdps_error(ctx, emb):
    # Reopening with another dim fails in rdps_emb_open, naming the table.
    with pytest.raises(rdps.Error) as e:
        ctx.emb_table("api-emb", 8, capacity=64)
    assert e.value.errno == errno.EINVAL and "api-emb" in e.value.strerror
    # A full table: -ENOSPC from the shard, naming the table and capacity.
    full = ctx.emb_table("api-full", 2, capacity=4)
    keys = numpy.arange(1, 65, dtype=numpy.uint64) * 0x9E3779B97F4A7C15
    with pytest.raises(rdps.Error) as e:
        full.push(keys, numpy.ones((64, 2), numpy.float32))
    assert e.value.errno == errno.ENOSPC
    assert "api-full" in e.value.strerror and "4" in e.value.strerror


def test_closed_context_raises_and_keeps_arrays_valid(ctx):
    c = ctx  # last: it closes the module's context
    tt = c.table("closing", 8)
    ee = c.emb_table("closing", 2)
    a = c.array(8)
    c.close()
    c.close()  # idempotent
    assert c.closed
    for call in (c.clock, c.barrier, c.stats, lambda: tt.pull(),
                 lambda: tt.push(numpy.zeros(8, numpy.float32)),
                 lambda: c.array(4), lambda: c.table("x", 1),
                 lambda: ee.pull(K3),
                 lambda: ee.push(K3, numpy.zeros((3, 2), numpy.float32)),
                 ee.stats, ee.export, lambda: c.emb_table("y", 2)):
        with pytest.raises(rdps.Error) as e:
            call()
        assert e.value.errno == errno.EBADF and "closed" in e.value.strerror
    a[:] = 1.0  # still this array's memory until the array goes
    assert a.sum() == 8.0


def test_help_is_useful():
    doc = rdps.__doc__
    for word in ("rdps-launch", "Context", "zero copy", "Ctrl-C", "GIL"):
        assert word.lower() in doc.lower()
    for f in (rdps.Context.table, rdps.Table.pull, rdps.Context.array,
              rdps.Context.clock, rdps.Context.emb_table, rdps.EmbTable.pull,
              rdps.EmbTable.push, rdps.EmbTable.stats):
        assert f.__doc__ and f.__annotations__
