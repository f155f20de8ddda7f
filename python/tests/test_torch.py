# SPDX-License-Identifier: MIT
"""rdps.torch in a 2-worker job (ctest py_torch_api runs this file under
rdps-launch -w 2 in every worker): parameters live in the table's array,
gradients pushed to an "sgd" table are applied once per worker, and
RoundLoop's A-BSP reordering (with a stand-in context, no job needed)."""
import numpy
import pytest
import torch

import rdps
import rdps.torch


@pytest.fixture(scope="module")
def ctx():
    with rdps.Context() as c:
        yield c


def test_parameters_live_in_the_array_and_gradients_apply(ctx):
    torch.manual_seed(ctx.rank)  # rank 0's initial values must win
    m = torch.nn.Linear(3, 2)
    p = rdps.torch.ModelTable(ctx, m, name="grad", rule="sgd", lr=0.1)
    lo, hi = p.flat.ctypes.data, p.flat.ctypes.data + p.flat.nbytes
    for q in m.parameters():
        assert lo <= q.data_ptr() < hi
    torch.manual_seed(0)
    want0 = numpy.concatenate([q.detach().numpy().ravel() for q in
                               torch.nn.Linear(3, 2).parameters()])
    assert numpy.allclose(p.flat, want0, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="rule"):
        rdps.torch.ModelTable(ctx, m, name="ada", rule="adagrad", lr=0.1)
    opt = rdps.torch.Optimizer(p)
    before = p.flat.copy()
    loss = m(torch.ones(4, 3)).sum()
    opt.zero_grad()
    loss.backward()
    g = numpy.concatenate([q.grad.numpy().ravel() for q in m.parameters()])
    opt.step()
    opt.sync()
    # Both workers pushed the same gradient; the shard applied each once.
    assert numpy.allclose(p.flat, before - 0.1 * ctx.workers * g, atol=1e-6)


class _Cut:
    """A stand-in context: the round is cut after `after` polls."""
    rank, workers, model = 0, 1, "absp"

    def __init__(self, after):
        self.after, self.polls, self.cuts = after, 0, 0

    def cut_poll(self):
        self.polls += 1
        return self.polls > self.after

    def cut(self):
        self.cuts += 1
        return True


def test_round_loop_puts_unprocessed_samples_first():
    c = _Cut(after=2)
    loop = rdps.torch.RoundLoop(c, 20, batch_size=4, seed=3)
    first = list(loop.order)
    seen = [i for b in loop.round() for i in b]
    assert loop.was_cut and seen == first[:12] and loop.processed == 12
    assert list(loop.order[:8]) == first[12:]  # the rest comes first
    assert sorted(loop.order) == list(range(20))
    c.after, c.polls = 100, 0  # not cut: the round ends by cutting
    seen = [i for b in loop.round() for i in b]
    assert seen[:8] == first[12:] and sorted(seen) == list(range(20))
    assert c.cuts == 1 and not loop.was_cut
