# SPDX-License-Identifier: MIT
"""A PyTorch MLP on scikit-learn's bundled handwritten digits, trained by
rdps workers; one line of CSV per round from rank 0: round, wall seconds,
held-out accuracy. Run it as a job (4 workers, the last one 3x slower):

    rdps-launch -w 4 -m bsp  -- /usr/bin/python3 digits_mlp.py --straggler 3
    rdps-launch -w 4 -m absp -- /usr/bin/python3 digits_mlp.py --straggler 3

Each worker trains on its quarter of the 1437 training images with local
SGD; each round it pushes its update (averaged over the workers), clocks
and pulls. Under A-BSP the first worker through its samples cuts the
round and the straggler stops at its next mini-batch, so a round costs
the fast workers' time instead of the straggler's.

--bar ACC --within N: exit 1 unless held-out accuracy reaches ACC by
round N (rank 0 tells; the others exit 0).
"""

import argparse
import sys
import time

import numpy
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import rdps
import rdps.torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--straggler", type=float, default=1.0,
                    help="the last rank is this many times slower")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bar", type=float, default=0.0)
    ap.add_argument("--within", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(numpy.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2,
                                          random_state=a.seed, stratify=y)
    xtr, ytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte, yte = torch.from_numpy(xte), torch.from_numpy(yte)

    with rdps.Context() as ctx:
        model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                    torch.nn.Linear(64, 10))
        params = rdps.torch.ModelTable(ctx, model)
        opt = rdps.torch.Optimizer(params, torch.optim.SGD(
            model.parameters(), lr=a.lr))
        loop = rdps.torch.RoundLoop(ctx, len(ytr), a.batch, seed=a.seed)
        slow = a.straggler if ctx.rank == ctx.workers - 1 else 1.0
        lossf = torch.nn.CrossEntropyLoss()
        t0 = time.monotonic()
        reached = None
        if ctx.rank == 0:
            print("round,seconds,accuracy,samples_rank0", flush=True)
        for r in range(ctx.clock_now, ctx.clock_now + a.rounds):
            for idx in loop.round():
                t = time.monotonic()
                i = torch.from_numpy(idx)
                loss = lossf(model(xtr[i]), ytr[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if slow > 1.0:
                    # The straggler: this mini-batch takes slow times as
                    # long (a slow node, not a synchronisation).
                    time.sleep((slow - 1.0) * (time.monotonic() - t))
            opt.sync()
            if ctx.rank == 0:
                with torch.no_grad():
                    acc = (model(xte).argmax(1) == yte).float().mean().item()
                print(f"{r + 1},{time.monotonic() - t0:.3f},{acc:.4f},"
                      f"{loop.processed}", flush=True)
                if reached is None and acc >= a.bar:
                    reached = r + 1
        if ctx.rank == 0 and a.within:
            if reached is None or reached > a.within:
                print(f"digits_mlp: held-out accuracy {a.bar} not reached "
                      f"within {a.within} rounds", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
