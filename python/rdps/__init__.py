# SPDX-License-Identifier: MIT
"""rdps: a parameter server over one-sided RDMA, from Python.

A job is shards (rdps-server processes) holding named tables of float32 or
float64, and workers that pull parameters, push deltas or gradients and
clock at the end of each iteration. Start one with rdps-launch, which sets
each worker's environment and puts this package on PYTHONPATH::

    rdps-launch -w 4 -m bsp -- /usr/bin/python3 train.py

and in train.py::

    import numpy, rdps
    with rdps.Context() as ctx:            # from the environment
        w = ctx.table("w", 1000)           # float32, rule "sum"
        buf = ctx.array(1000)              # registered memory: zero copy
        for it in range(ctx.clock_now, 100):
            w.pull(out=buf)                # lands straight in buf
            w.push(numpy.ones(1000, numpy.float32))
            ctx.clock()                    # BSP: waits for the others

Consistency models: "bsp", "ssp" (with slack), "asp", "absp" (A-BSP: a
round can be cut by the first worker to finish, ctx.cut() / ctx.cut_poll()).
Update rules of a table: "sum" (param += delta), "sgd" (param -= lr *
delta), "adagrad". rdps.torch keeps a torch model's parameters in a table.

Embedding tables (ctx.emb_table) hold rows of dim values addressed by
64-bit keys, for click-through and recommendation models::

    emb = ctx.emb_table("user", 16, rule="sgd", lr=0.05, init="normal")
    keys = numpy.array([17, 3, 17], numpy.uint64)  # hashed feature ids
    rows = emb.pull(keys)                  # (3, 16); absent: initial rows
    emb.push(keys, grads)                  # (3, 16); repeats are summed
    keys, rows = emb.export()              # every row the shards hold

Errors raise rdps.Error, an OSError whose errno is the C call's and whose
strerror is rdps_errmsg()'s text. Wrong arguments (dtype, shape, range,
a closed context) raise TypeError or ValueError (rdps.Error EBADF for a
closed context) before any C call, naming the argument.

Blocking calls release the GIL and run in the calling thread. Ctrl-C
during a wait of clock(), barrier() or a pull for the other workers
raises KeyboardInterrupt within a few WAIT_SLICE_MS: once the wait has
slept that long, the C library calls the context's wait check
(rdps_ctx_set_wait_check) every WAIT_SLICE_MS, which takes the GIL and
runs the signal handlers; an exception they raise ends the C call. A call
that does not wait never runs the check and costs what it costs from C,
plus about 0.1 to 0.3 microseconds. The interrupted call's tick (or
barrier arrival) counts, the context is then closed (its C context
destroyed at once, or when its last array dies; the shards see the
worker leave) and every later call raises rdps.Error EINTR.
Context(interruptible=False) sets no check: Ctrl-C then takes effect when
the wait ends (the peers arrive, a lost peer is detected within two
heartbeats, or timeout_ms passes). Signal handlers run in the main
thread only, so only a wait there is interrupted. A context is used from
one thread at a time (rdps.Error EBUSY otherwise).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy

from . import _rdps

__all__ = ["Context", "Table", "EmbTable", "Error", "MODELS", "RULES",
           "EMB_RULES", "EMB_INITS", "POLL_MODES", "ON_WORKER_LOSS",
           "WAIT_SLICE_MS"]

Error = _rdps.Error
WAIT_SLICE_MS: int = _rdps.WAIT_SLICE_MS

#: consistency models, as enum rdps_model
MODELS: Dict[str, int] = {"bsp": 0, "ssp": 1, "asp": 2, "absp": 3}
#: update rules of a table, as enum rdps_rule
RULES: Dict[str, int] = {"sum": 0, "sgd": 1, "adagrad": 2}
#: update rules of an embedding table (Adagrad keeps per-row state)
EMB_RULES: Dict[str, int] = RULES
#: initial rows of an embedding table, as enum rdps_emb_init
EMB_INITS: Dict[str, int] = {"zero": 0, "uniform": 1, "normal": 2}
#: most values per row of an embedding table
EMB_DIM_MAX = 4096
#: how a worker waits for completions, as enum rdps_poll_mode
POLL_MODES: Dict[str, int] = {"busy": 0, "adaptive": 1, "event": 2}
#: what a wait does when a worker of the job is lost, as enum rdps_on_loss
ON_WORKER_LOSS: Dict[str, int] = {"fail": 0, "continue": 1}

_DTYPES = {numpy.dtype(numpy.float32): 0, numpy.dtype(numpy.float64): 1}
_IDX = numpy.dtype(numpy.uint64)
_NDARRAY = numpy.ndarray

Shape = Union[int, Sequence[int]]


def _enum(arg: str, value: Union[str, int, None], names: Dict[str, int]) -> int:
    if value is None:
        return -1
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"{arg}: '{value}' is not one of "
                             f"{', '.join(names)}")
        return names[value]
    if isinstance(value, int) and value in names.values():
        return value
    raise ValueError(f"{arg}: {value!r} is not one of {', '.join(names)}")


def _int(arg: str, value: Optional[int], lo: int, hi: int) -> int:
    if value is None:
        return -1
    if not isinstance(value, (int, numpy.integer)) or isinstance(value, bool):
        raise TypeError(f"{arg}: an int is needed, not "
                        f"{type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{arg}: {value} is out of range {lo} .. {hi}")
    return int(value)


def _dtype(value: Any) -> numpy.dtype:
    try:
        dt = numpy.dtype(value)
    except TypeError:
        raise TypeError(f"dtype: {value!r} is not a dtype (float32 or "
                        "float64)") from None
    if dt not in _DTYPES:
        raise TypeError(f"dtype: {dt} is not supported (float32 or "
                        "float64)")
    return dt


class Context:
    """A worker's connection to every shard of a job (struct rdps_ctx).

    With no arguments the configuration comes from the environment that
    rdps-launch and rdps-run set (RDPS_SHARDS, RDPS_RANK, RDPS_WORKERS,
    RDPS_MODEL, RDPS_SLACK, RDPS_TOKEN, RDPS_ON_WORKER_LOSS; or Slurm's and
    Open MPI's rank variables). Keyword arguments override it, named as
    the fields of struct rdps_config:

    shards: "shm://job-s0,shm://job-s1" or "tcp://h1:7000,...", in order
    rank, workers: this worker and the job's count
    model: "bsp", "ssp", "asp" or "absp"; slack: SSP's clocks of slack
    token: the job token; poll_mode: "busy", "adaptive" or "event"
    timeout_ms: the connect and wait limit (0: 30000)
    on_worker_loss: "fail" or "continue" (SSP and ASP)
    clock_fanin: how the clock counts arrivals: 0 automatic (flat up to
      32 workers, then groups of ceil(sqrt(W))), 1 flat, G (2 .. 4096)
      groups of G; the same on every worker (RDPS_CLOCK_FANIN)
    from_env: False to ignore the environment
    interruptible: False sets no wait check: Ctrl-C then takes effect only
      when a wait ends (see help(rdps))

    A context manager: ``with rdps.Context() as ctx:`` closes it.
    Raises rdps.Error when the shards cannot be reached or refuse.
    """

    def __init__(self, *, shards: Optional[str] = None,
                 rank: Optional[int] = None, workers: Optional[int] = None,
                 model: Union[str, int, None] = None,
                 slack: Optional[int] = None, token: Optional[int] = None,
                 poll_mode: Union[str, int, None] = None,
                 timeout_ms: Optional[int] = None,
                 on_worker_loss: Union[str, int, None] = None,
                 clock_fanin: Optional[int] = None,
                 from_env: bool = True,
                 interruptible: bool = True) -> None:
        if shards is not None and not isinstance(shards, str):
            raise TypeError("shards: a string of comma-separated URLs is "
                            "needed")
        if token is not None:
            _int("token", token, 0, 2**64 - 1)
        self._c = _rdps.Ctx(
            shards, _int("rank", rank, 0, 2**31 - 1),
            _int("workers", workers, 1, 2**31 - 1),
            _enum("model", model, MODELS), _int("slack", slack, 0, 2**32 - 1),
            None if token is None else int(token),
            _enum("poll_mode", poll_mode, POLL_MODES),
            _int("timeout_ms", timeout_ms, 0, 2**31 - 1),
            _enum("on_worker_loss", on_worker_loss, ON_WORKER_LOSS),
            _int("clock_fanin", clock_fanin, 0, 4096),
            bool(from_env), bool(interruptible))

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"clock {self.clock_now}"
        return f"<rdps.Context rank {self.rank} of {self.workers}, {state}>"

    def close(self) -> None:
        """End the context: every later call raises rdps.Error EBADF.

        The connections and memory are released once no array of
        ctx.array() is left (they stay valid until then). Idempotent.
        """
        self._c.close()

    @property
    def closed(self) -> bool:
        """True once closed (or interrupted in a wait)."""
        return self._c.closed

    @property
    def rank(self) -> int:
        """This worker, 0 .. workers - 1."""
        return self._c.rank

    @property
    def workers(self) -> int:
        """The job's number of workers."""
        return self._c.workers

    @property
    def model(self) -> str:
        """The consistency model: "bsp", "ssp", "asp" or "absp"."""
        return {v: k for k, v in MODELS.items()}[self._c.model]

    @property
    def clock_now(self) -> int:
        """Iterations this worker completed (rdps_clock_now()); a job
        resumed from checkpoints starts at their clock: begin the loop
        here."""
        return self._c.clock_now()

    def table(self, name: str, n: int, dtype: Any = numpy.float32,
              rule: str = "sum", lr: float = 0.0) -> "Table":
        """Create table `name` of `n` elements, or open it if it exists
        (then n, dtype and rule must match). dtype float32 or float64;
        rule "sum" (param += delta), "sgd" (param -= lr * delta) or
        "adagrad"; lr for sgd and adagrad. Initial values are 0."""
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 31:
            raise ValueError(f"name: {name!r} must be a string of 1 .. 31 "
                             "bytes")
        n = _int("n", n, 1, 2**63 - 1)
        dt = _dtype(dtype)
        r = _enum("rule", rule, RULES)
        if not isinstance(lr, (int, float)) or not lr >= 0:
            raise ValueError(f"lr: {lr!r} must be a number >= 0")
        t = self._c.table_open(Table, name, n, _DTYPES[dt], r, float(lr), dt)
        t.ctx = self
        t.name = name
        return t

    def array(self, shape: Shape, dtype: Any = numpy.float32) -> numpy.ndarray:
        """A zeroed numpy array over registered memory (rdps_buf_alloc()).

        A dense pull whose `out` is such an array (or a contiguous slice
        of one) is the C zero-copy pull: the shards' data lands in it with
        no staging copy. The array keeps its context's memory alive; use
        torch.from_numpy() on it to back a tensor. Allocate once, reuse.
        """
        dt = _dtype(dtype)
        shape_t = (shape,) if isinstance(shape, (int, numpy.integer)) \
            else tuple(shape)
        count = 1
        for i, d in enumerate(shape_t):
            _int(f"shape[{i}]", d, 1, 2**62)
            count *= int(d)
        buf = self._c.buf_alloc(count * dt.itemsize)
        return numpy.frombuffer(buf, dtype=dt, count=count).reshape(shape_t)

    def clock(self) -> None:
        """End this iteration (rdps_clock): flush, then block as the model
        requires (BSP: until every worker finished it; SSP: until none is
        more than slack behind; ASP: never). Releases the GIL; Ctrl-C
        interrupts it (see help(rdps))."""
        self._c.clock()

    def barrier(self) -> None:
        """Block until every worker called barrier() as often."""
        self._c.barrier()

    def cut(self) -> bool:
        """A-BSP: this worker finished its part of the round: cut it.
        True if this call cut the round, False if another worker had."""
        return self._c.cut()

    def cut_poll(self) -> bool:
        """A-BSP: has this round been cut? Never waits (one read is kept
        in flight), so call it between mini-batches."""
        return self._c.cut_poll()

    def emb_table(self, name: str, dim: int, dtype: Any = numpy.float32,
                  rule: str = "sum", lr: float = 0.0,
                  capacity: int = 65536, init: str = "zero",
                  init_scale: float = 0.01, seed: int = 1) -> "EmbTable":
        """Create embedding table `name`, or open it if it exists (then
        every argument must match): rows of `dim` values (1 .. 4096) of
        `dtype` (float32 or float64) addressed by 64-bit keys (hashed
        feature ids). rule "sum" (row += grad), "sgd" (row -= lr * grad)
        or "adagrad" (per-row state); capacity: rows each shard can hold
        (1 .. 2**31; a push beyond it raises rdps.Error ENOSPC naming the
        table); init: the row of a key never pushed, "zero", "uniform" in
        [-init_scale, init_scale) or "normal" with deviation init_scale,
        a function of (seed, key) only, the same on every worker and
        shard. Embedding tables have their own name space."""
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 31:
            raise ValueError(f"name: {name!r} must be a string of 1 .. 31 "
                             "bytes")
        dim = _int("dim", dim, 1, EMB_DIM_MAX)
        dt = _dtype(dtype)
        r = _enum("rule", rule, EMB_RULES)
        if not isinstance(lr, (int, float)) or not 0 <= lr < float("inf"):
            raise ValueError(f"lr: {lr!r} must be a finite number >= 0")
        capacity = _int("capacity", capacity, 1, 2**31)
        i = _enum("init", init, EMB_INITS)
        if not isinstance(init_scale, (int, float)) or \
                not 0 <= init_scale < float("inf"):
            raise ValueError(f"init_scale: {init_scale!r} must be a finite "
                             "number >= 0")
        seed = _int("seed", seed, 0, 2**64 - 1)
        return EmbTable(self, self._c.emb_open(
            name, dim, _DTYPES[dt], r, float(lr), capacity, i,
            float(init_scale), seed), name, dim, dt)

    def stats(self) -> Dict[str, int]:
        """Counters of this worker: pulls, pushes, clocks, bytes_pulled,
        bytes_pushed, clock_wait_ns, pull_wait_ns, cuts, made_up; and of
        its embedding tables together: emb_pulls, emb_pushes,
        emb_rows_pulled, emb_rows_pushed, emb_misses (keys a pull found
        in no bucket: their initial value), emb_torn_retries (re-reads of
        a row the shard was rewriting), emb_round_trips, emb_cache_hits
        and emb_cache_stale (keys read at a remembered place, and of those
        found moved); remote_ops and remote_bytes (transport operations
        posted to the shards and the bytes they moved)."""
        return self._c.stats()


def _vec(arg: str, a: Any, dt: numpy.dtype, writable: bool) -> numpy.ndarray:
    if not isinstance(a, numpy.ndarray):
        raise TypeError(f"{arg}: a numpy array is needed, not "
                        f"{type(a).__name__}")
    if a.dtype != dt:
        raise TypeError(f"{arg}: dtype {a.dtype} does not match the "
                        f"table's {dt}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{arg}: the array must be C-contiguous "
                         "(numpy.ascontiguousarray)")
    if writable and not a.flags.writeable:
        raise ValueError(f"{arg}: the array is read-only")
    return a


class Table(_rdps.Table):
    """A table of the job (struct rdps_table), from Context.table().

    `name`, `n` (elements) and `dtype` are attributes. Dense calls take
    [start, start + count); sparse calls take indices (uint64, or any
    integer array in range) and one value per index.

    pull() and push() run their plain calls (an array from ctx.array()
    or a slice of it, of the table's dtype; int start and count in
    range) in C, with no Python frame (_rdps.fast_dense); any other call
    runs the Python method below, which checks it.
    """

    __slots__ = ("ctx", "name")

    @property
    def _t(self) -> "Table":
        return self  # the C table's calls (dense, dense_timed, sparse)

    def __repr__(self) -> str:
        return f"<rdps.Table {self.name!r} n {self.n} {self.dtype}>"

    def _range(self, start: int, count: Optional[int]) -> Tuple[int, int]:
        if start.__class__ is not int:
            start = _int("start", start, 0, self.n - 1)
        if count is None:
            count = self.n - start
        elif count.__class__ is not int:
            count = _int("count", count, 0, self.n)
        if not (0 <= start and 0 <= count and start + count <= self.n):
            raise ValueError(f"start {start} count {count}: out of the "
                             f"table's range 0 .. {self.n}")
        return start, count

    def _idx(self, idx: Any) -> numpy.ndarray:
        if not isinstance(idx, numpy.ndarray):
            raise TypeError(f"idx: a numpy array of indices is needed, not "
                            f"{type(idx).__name__}")
        if idx.dtype != _IDX:
            if idx.dtype.kind not in "iu":
                raise TypeError(f"idx: dtype {idx.dtype} is not an integer "
                                "type")
            if idx.size and (idx.min() < 0):
                raise ValueError("idx: negative index")
            idx = idx.astype(_IDX)
        idx = numpy.ascontiguousarray(idx).reshape(-1)
        if idx.size and int(idx.max()) >= self.n:
            raise ValueError(f"idx: index {int(idx.max())} is out of the "
                             f"table's range 0 .. {self.n - 1}")
        return idx

    def pull(self, start: int = 0, count: Optional[int] = None,
             out: Optional[numpy.ndarray] = None) -> numpy.ndarray:
        """Read [start, start + count) (count None: to the end), waiting
        until the shards hold what the model requires for this worker's
        clock. Returns `out`, filled in place (a C-contiguous array of the
        table's dtype and count elements; from ctx.array() the pull is
        zero copy), or a new array. Releases the GIL."""
        start, count = self._range(start, count)
        if out is None:
            out = numpy.empty(count, self.dtype)
        elif out.__class__ is not _NDARRAY or out.dtype is not self.dtype:
            _vec("out", out, self.dtype, True)
        # Contiguous, writable and count elements: checked by dense(),
        # in the buffer request it makes anyway (ValueError naming out).
        self.dense(True, start, count, out)
        return out

    pull = _rdps.fast_dense(pull, True)

    def push(self, delta: numpy.ndarray, start: int = 0) -> None:
        """Send delta for [start, start + delta.size) (a contiguous array of
        the table's dtype). Returns once the shards have it; the table's
        rule applies it. Releases the GIL."""
        if delta.__class__ is not _NDARRAY or delta.dtype is not self.dtype:
            _vec("delta", delta, self.dtype, False)
        start, count = self._range(start, delta.size)
        self.dense(False, start, count, delta)

    push = _rdps.fast_dense(push, False)

    def pull_sparse(self, idx: numpy.ndarray,
                    out: Optional[numpy.ndarray] = None) -> numpy.ndarray:
        """out[i] = param[idx[i]]; returns out (or a new array)."""
        idx = self._idx(idx)
        if out is None:
            out = numpy.empty(idx.size, self.dtype)
        else:
            _vec("out", out, self.dtype, True)
            if out.size != idx.size:
                raise ValueError(f"out: {out.size} elements for {idx.size} "
                                 "indices")
        self.sparse(True, idx, out)
        return out

    def push_sparse(self, idx: numpy.ndarray, delta: numpy.ndarray) -> None:
        """Send delta[i] for param[idx[i]]."""
        idx = self._idx(idx)
        _vec("delta", delta, self.dtype, False)
        if delta.size != idx.size:
            raise ValueError(f"delta: {delta.size} values for {idx.size} "
                             "indices")
        self.sparse(False, idx, delta)



def _keys(keys: Any) -> numpy.ndarray:
    if not isinstance(keys, numpy.ndarray):
        raise TypeError(f"keys: a numpy array of uint64 is needed, not "
                        f"{type(keys).__name__}")
    if keys.dtype != _IDX:
        raise TypeError(f"keys: dtype {keys.dtype} is not uint64 "
                        "(keys.astype(numpy.uint64))")
    if keys.ndim != 1:
        raise ValueError(f"keys: {keys.ndim} dimensions, one is needed")
    if not keys.flags.c_contiguous:  # a view: 8 bytes a key to copy
        keys = numpy.ascontiguousarray(keys)
    return keys


class EmbTable:
    """An embedding table of the job (struct rdps_emb), from
    Context.emb_table(): rows of `dim` values of `dtype` addressed by
    64-bit keys.

    A pull reads rows with one-sided reads only (two round trips for any
    number of keys, no work for the shards' CPUs); a key never pushed
    reads as its initial value and is not inserted. A push sends gradient
    rows; the shards insert unseen keys and apply the rule. The
    consistency model is the context's. `name`, `dim` and `dtype` are
    attributes.
    """

    __slots__ = ("ctx", "_e", "name", "dim", "dtype")

    def __init__(self, ctx: Context, e: Any, name: str, dim: int,
                 dtype: numpy.dtype) -> None:
        self.ctx = ctx
        self._e = e
        self.name = name
        self.dim = dim
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<rdps.EmbTable {self.name!r} dim {self.dim} {self.dtype}>"

    def _rows(self, arg: str, a: Any, n: int, writable: bool) -> None:
        if a.__class__ is not _NDARRAY or a.dtype is not self.dtype:
            _vec(arg, a, self.dtype, writable)
        if a.shape != (n, self.dim):
            raise ValueError(f"{arg}: shape {a.shape}, ({n}, {self.dim}) "
                             "is needed (one row per key)")

    def pull(self, keys: numpy.ndarray,
             out: Optional[numpy.ndarray] = None) -> numpy.ndarray:
        """Read the rows of `keys` (a 1-D uint64 array; keys may repeat,
        in any order): returns `out` filled in place (a C-contiguous
        (len(keys), dim) array of the table's dtype, e.g. from
        ctx.array(): the rows land in it with no copy in Python), or a
        new array. Waits, as Table.pull does, until the shards hold what
        the model requires for this worker's clock. A row caught while
        the shard rewrote it is read again: a torn row is never returned.
        Releases the GIL."""
        keys = _keys(keys)
        n = keys.shape[0]
        if out is None:
            out = numpy.empty((n, self.dim), self.dtype)
        else:
            self._rows("out", out, n, True)
        self._e.rows(True, keys, out)
        return out

    def push(self, keys: numpy.ndarray, grads: numpy.ndarray) -> None:
        """Send gradient rows: grads[i] (a C-contiguous (len(keys), dim)
        array of the table's dtype) for keys[i]. Rows of the same key in
        one call are summed first. Returns once every shard took its rows
        in; raises rdps.Error ENOSPC when a shard's part of the table is
        full (nothing of that shard's rows is applied). Releases the
        GIL."""
        keys = _keys(keys)
        self._rows("grads", grads, keys.shape[0], False)
        self._e.rows(False, keys, grads)

    def export(self) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """Every row the shards hold, read one-sided (rdps_emb_export(): no
        work for the shards' CPU): (keys, rows), keys a uint64 array in
        ascending order and rows the (len(keys), dim) array of their
        values. Waits first, as pull() does, until the shards hold what
        the model requires for this worker's clock; each row is checked
        as a pull checks it. Export when no worker pushes (after
        ctx.barrier() at the end of a job) for the table at one clock.
        Releases the GIL."""
        k, v, n = self._e.export()
        keys = numpy.frombuffer(k, dtype=_IDX, count=n)
        rows = numpy.frombuffer(v, dtype=self.dtype,
                                count=n * self.dim).reshape(n, self.dim)
        order = numpy.argsort(keys, kind="stable")
        return keys[order], rows[order]

    def stats(self) -> Dict[str, int]:
        """The embedding counters of ctx.stats() (pulls, pushes, rows
        pulled and pushed, misses, torn re-reads, round trips, cache hits
        and stale cache entries), without
        the emb_ prefix. They count every embedding table of the context
        together: the C API keeps them per context."""
        return {k[4:]: v for k, v in self.ctx.stats().items()
                if k.startswith("emb_")}
