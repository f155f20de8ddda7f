# SPDX-License-Identifier: MIT
"""rdps-train's lr workload (sparse logistic regression, BSP) in numpy,
step for step as tools/train/ does it, so on the same data and seed its
held-out loss matches the C trainer's:

    rdps-train gen --samples 4000 --test-samples 1000 --features 500 \\
        --nnz 10 -o train.svm --test-out test.svm
    rdps-launch -w 4 -- rdps-train run --data train.svm --test test.svm \\
        --epochs 3 --batch 50 --csv c.csv
    rdps-launch -w 4 -- /usr/bin/python3 lr_numpy.py train.svm test.svm \\
        --epochs 3 --batch 50

The same seeded streams (tools/train/rng.h) pick each worker's partition
and the order of every pass; an iteration (1/K of the partition) runs
mini-batch steps on the pulled model (features' gradients summed over the
batch, the bias's averaged; each coordinate stepped by per-coordinate
Adagrad: lr * g / sqrt(sum of its squared gradients), the sums kept by
the worker for the whole run), pushes the change divided by the workers
and clocks. Rank 0 prints "clock,loss" each clock; --expect LOSS exits 1
unless the final loss is within --tol (1e-6) of LOSS.
"""
import argparse
import sys

import numpy

import rdps

M64 = (1 << 64) - 1


class Rng:
    """xoshiro256** seeded by splitmix64 from (seed, a, b), as rng.h."""

    def __init__(self, seed: int, a: int, b: int) -> None:
        x = (seed ^ (a * 0xd1342543de82ef95 & M64)
             ^ ((b * 0x2545f4914f6cdd1d + 0x632be59bd9b4e019) & M64))
        self.s = []
        for _ in range(4):
            x = (x + 0x9e3779b97f4a7c15) & M64
            z = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
            self.s.append(z ^ (z >> 31))

    def below(self, n: int) -> int:
        s = self.s
        x = (s[1] * 5) & M64
        res = ((((x << 7) | (x >> 57)) & M64) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & M64
        return (res * n) >> 64


def shuffle(a: list, seed: int, tag: int, i: int) -> None:
    r = Rng(seed, tag, i)
    for k in range(len(a), 1, -1):
        j = r.below(k)
        a[k - 1], a[j] = a[j], a[k - 1]


def load(path: str):
    """LIBSVM with nnz features on every line: (idx, val, y) arrays."""
    idx, val, y = [], [], []
    for line in open(path):
        f = line.split()
        y.append(float(f[0]))
        idx.append([int(p.split(":")[0]) for p in f[1:]])
        val.append([float(p.split(":")[1]) for p in f[1:]])
    return (numpy.array(idx), numpy.array(val, numpy.float32),
            numpy.array(y, numpy.float32))


def margins(w, idx, val):
    s = w[0].astype(numpy.float64) * numpy.ones(len(idx))
    for j in range(idx.shape[1]):  # in order, as the C loop adds them
        s = s + w[idx[:, j]].astype(numpy.float64) * val[:, j]
    return s


def loss(w, test) -> float:
    z = -test[2] * margins(w, test[0], test[1])
    return float(numpy.mean(numpy.where(z > 0, z + numpy.log1p(
        numpy.exp(-numpy.abs(z))), numpy.log1p(numpy.exp(-numpy.abs(z))))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--clocks-per-epoch", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect", type=float)
    ap.add_argument("--tol", type=float, default=1e-6)
    a = ap.parse_args()
    tr, te = load(a.train), load(a.test)
    n = max(int(tr[0].max()), int(te[0].max())) + 1
    with rdps.Context() as ctx:
        W, K = ctx.workers, a.clocks_per_epoch
        perm = list(range(len(tr[2])))
        shuffle(perm, a.seed, 11, 0)
        lo, hi = len(perm) * ctx.rank // W, len(perm) * (ctx.rank + 1) // W
        part, order, pos = perm[lo:hi], list(range(hi - lo)), 0
        table = ctx.table("model", n)
        w, delta = ctx.array(n), numpy.zeros(n, numpy.float32)
        g2 = numpy.zeros(n)  # Adagrad's summed squared gradients
        ctx.barrier()
        for c in range(a.epochs * K):
            table.pull(out=w)
            if ctx.rank == 0:
                print(f"{c},{loss(w, te):.6f}", flush=True)
            quota = len(part) * (c % K + 1) // K - len(part) * (c % K) // K
            for done in range(0, quota, a.batch):
                ids = []
                for _ in range(min(a.batch, quota - done)):
                    if pos % len(part) == 0:
                        shuffle(order, a.seed ^ 0x4f524452, ctx.rank,
                                pos // len(part))
                    ids.append(part[order[pos % len(part)]])
                    pos += 1
                idx, val, y = tr[0][ids], tr[1][ids], tr[2][ids]
                s = margins(w, idx, val)
                sig = numpy.where(s >= 0, 1 / (1 + numpy.exp(-s)),
                                  numpy.exp(s) / (1 + numpy.exp(s)))
                m = sig - (y > 0)
                g = numpy.zeros(n)  # double sums in the C order
                numpy.add.at(g, numpy.zeros(len(ids), int), m / len(ids))
                numpy.add.at(g, idx.reshape(-1),
                             (m[:, None] * val).reshape(-1))
                f = numpy.unique(numpy.concatenate(([0], idx.reshape(-1))))
                f = f[g[f] != 0]
                g2[f] += g[f] * g[f]
                u = (-a.lr * g[f] / numpy.sqrt(g2[f] + 1e-12)).astype(
                    numpy.float32)
                w[f] += u
                delta[f] += u
            table.push(delta * numpy.float32(1.0 / W))
            delta[:] = 0
            ctx.clock()
        table.pull(out=w)
        final = loss(w, te)
        if ctx.rank == 0:
            print(f"{a.epochs * K},{final:.6f}", flush=True)
            if a.expect is not None and abs(final - a.expect) > a.tol:
                print(f"lr_numpy: final loss {final:.6f}, the C trainer's "
                      f"{a.expect:.6f}: more than {a.tol} apart",
                      file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
