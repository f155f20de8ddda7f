# SPDX-License-Identifier: MIT
"""rdps.torch: a torch.nn.Module's parameters kept in one rdps table.

    model = Net()
    params = rdps.torch.ModelTable(ctx, model)   # params now in rdps memory
    opt = rdps.torch.Optimizer(params, torch.optim.SGD(model.parameters(),
                                                       lr=0.05))
    loop = rdps.torch.RoundLoop(ctx, n_samples, batch_size=32)
    for r in range(ctx.clock_now, rounds):
        for batch in loop.round():               # A-BSP: stops at the cut
            loss = ...; opt.zero_grad(); loss.backward(); opt.step()
        opt.sync()                               # push, clock, pull

ModelTable backs every parameter with a slice of one ctx.array()
(torch.from_numpy shares its memory), so a pull into it, the C zero-copy
pull, updates the model in place. Optimizer pushes either the local
update of a torch optimizer since the last sync (averaged over the
workers, into a "sum" table) or, with no torch optimizer, the gradients
summed since the last sync (into an "sgd" table, whose rule applies
them), then clocks and pulls. It works under every model: BSP
and A-BSP wait at the clock for the round, SSP for the slack, ASP not.
RoundLoop hands out mini-batches of this worker's samples and, under
A-BSP, checks the cut between mini-batches: the first worker through its
samples cuts the round, the others stop at their next mini-batch, and
what they did not process comes first in their next round.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy
import torch

import rdps

__all__ = ["ModelTable", "Optimizer", "RoundLoop"]

_NP = {torch.float32: numpy.float32, torch.float64: numpy.float64}


class ModelTable:
    """The parameters of `model` in table `name` of ctx, backed by one
    ctx.array(): `flat` is that array, each parameter a view of a slice.

    All parameters must share one dtype (float32 or float64). Rank 0's
    initial values become everyone's: the constructor pushes them from
    rank 0, clocks and waits at a barrier, then pulls (so it costs one
    clock). rule and lr are the table's (see Context.table): "sum" (the
    Optimizer pushes local updates) or "sgd" with lr > 0 (it pushes
    gradients; the initial values go in as -values / lr, so they are
    rank 0's up to rounding). "adagrad" cannot take initial values.
    """

    def __init__(self, ctx: rdps.Context, model: torch.nn.Module,
                 name: str = "model", rule: str = "sum",
                 lr: float = 0.0) -> None:
        params = [p for p in model.parameters()]
        if not params:
            raise ValueError("model: it has no parameters")
        dts = {p.dtype for p in params}
        if len(dts) != 1 or next(iter(dts)) not in _NP:
            raise TypeError(f"model: parameters of dtypes {sorted(map(str, dts))}"
                            "; one of float32 or float64 is needed")
        dt = _NP[params[0].dtype]
        if rule not in ("sum", "sgd") or (rule == "sgd" and not lr > 0):
            raise ValueError(f"rule: {rule!r} with lr {lr}: the initial "
                             "values are pushed through the rule, so use "
                             '"sum", or "sgd" with lr > 0')
        self.ctx = ctx
        self.params = params
        self.n = sum(p.numel() for p in params)
        self.table = ctx.table(name, self.n, dtype=dt, rule=rule, lr=lr)
        self.flat = ctx.array(self.n, dtype=dt)
        self.slices = []
        off = 0
        with torch.no_grad():
            for p in params:
                k = p.numel()
                view = torch.from_numpy(self.flat[off:off + k]).view_as(p)
                view.copy_(p)
                p.data = view  # the parameter now lives in rdps memory
                self.slices.append((off, k))
                off += k
        if ctx.rank == 0:
            # Through the table's rule: "sum" adds the values, "sgd"
            # subtracts lr times them (exact up to rounding; every worker
            # pulls the same result).
            self.table.push(self.flat if rule == "sum" else
                            self.flat * self.flat.dtype.type(-1.0 / lr))
        ctx.clock()
        ctx.barrier()
        self.pull()

    def pull(self) -> None:
        """Pull the whole table into the parameters, in place."""
        self.table.pull(out=self.flat)

    def grads(self, out: numpy.ndarray) -> numpy.ndarray:
        """Add every parameter's .grad into out (flat, the table's layout)."""
        for p, (off, k) in zip(self.params, self.slices):
            if p.grad is not None:
                out[off:off + k] += p.grad.detach().reshape(-1).numpy()
        return out


class Optimizer:
    """Pushes what the model learned since the last sync(), then clocks
    and pulls.

    local: a torch optimizer over the model's parameters. step() steps it
    (the parameters move locally); sync() pushes (params - params at the
    last sync) / workers into the "sum" table, so the shards average the
    workers' updates. local None: step() adds the gradients up and sync()
    pushes their sum, which the table's "sgd" rule applies.
    """

    def __init__(self, params: ModelTable,
                 local: Optional[torch.optim.Optimizer] = None) -> None:
        self.p = params
        self.local = local
        self.acc = numpy.zeros_like(params.flat)
        self.base = params.flat.copy()
        self.steps = 0

    def zero_grad(self) -> None:
        """Zero the model's gradients (as torch.optim does)."""
        for p in self.p.params:
            p.grad = None

    def step(self) -> None:
        """One mini-batch's update, local only."""
        if self.local is not None:
            self.local.step()
        else:
            self.p.grads(self.acc)
        self.steps += 1

    def sync(self) -> None:
        """End the round: push, ctx.clock(), pull into the parameters."""
        ctx = self.p.ctx
        if self.local is not None:
            numpy.subtract(self.p.flat, self.base, out=self.acc)
            self.acc *= 1.0 / ctx.workers
        self.p.table.push(self.acc)
        ctx.clock()
        self.p.pull()
        self.acc.fill(0)
        numpy.copyto(self.base, self.p.flat)
        self.steps = 0


class RoundLoop:
    """Mini-batches of this worker's share of n samples, round by round.

    The samples rank, rank + workers, ... are this worker's; each round
    goes through them in a seeded order, batch_size at a time. Under
    A-BSP (model "absp") the cut is polled between mini-batches: once it
    is seen the round ends, and the samples not processed come first in
    the next round; a worker that gets through all of them cuts the round
    itself. Under the other models a round is all of them.
    """

    def __init__(self, ctx: rdps.Context, n: int, batch_size: int,
                 seed: int = 0, absp: Optional[bool] = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size: must be >= 1")
        self.ctx = ctx
        self.bs = batch_size
        self.rng = numpy.random.default_rng(seed + ctx.rank)
        self.order = self.rng.permutation(
            numpy.arange(ctx.rank, n, ctx.workers))
        self.absp = ctx.model == "absp" if absp is None else absp
        self.processed = 0  # samples of the last round
        self.was_cut = False

    def round(self) -> Iterator[numpy.ndarray]:
        """Yield index arrays; stop at the end or (A-BSP) at the cut."""
        done = 0
        self.was_cut = False
        while done < len(self.order):
            if self.absp and done and self.ctx.cut_poll():
                self.was_cut = True
                break
            yield self.order[done:done + self.bs]
            done += self.bs
        done = min(done, len(self.order))
        if self.absp and not self.was_cut:
            self.ctx.cut()
        self.processed = done
        rest, seen = self.order[done:], self.order[:done]
        self.order = numpy.concatenate([rest, self.rng.permutation(seen)])
