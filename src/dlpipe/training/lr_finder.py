"""``--lr auto``: Smith's learning-rate range test.

The rate grows exponentially from ``start`` to ``end`` over ``steps`` mini-batches on a throw-away
copy of the weights; the chosen rate is a tenth of the one at the smoothed loss minimum (the usual
safe pick, left of the valley). The curve is kept for the report.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from dlpipe.training.trainer import LossFn, TensorData, Trainer

__all__ = ["LRFinderResult", "find_learning_rate"]


@dataclass
class LRFinderResult:
    learning_rate: float
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def find_learning_rate(
    trainer: Trainer,
    model: nn.Module,
    loss_fn: LossFn,
    train: TensorData,
    *,
    start: float = 1e-6,
    end: float = 1.0,
    steps: int = 100,
    beta: float = 0.9,
) -> LRFinderResult:
    """Run the range test with ``trainer``'s optimiser settings; ``model`` itself is left untouched."""
    probe = copy.deepcopy(model).to(trainer.device)
    probe.train()
    opt = trainer.make_optimizer(probe)
    data = train.to(trainer.device)
    n = len(data)
    bs = min(trainer.batch_size, n)
    gen = torch.Generator().manual_seed(trainer.seed)
    factor = (end / start) ** (1 / max(steps - 1, 1))
    losses = torch.zeros(steps, device=trainer.device)
    lrs = []
    perm = torch.randperm(n, generator=gen).to(trainer.device)
    pos = 0
    for i in range(steps):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=gen).to(trainer.device), 0
        idx = perm[pos : pos + bs]
        pos += bs
        xb = [t[idx] for t in data.inputs]
        if data.transform is not None:
            xb = data.transform(xb, True)
        opt.lr = start * factor**i
        lrs.append(opt.lr)
        loss = loss_fn(probe(*xb), data.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[i] = loss.detach()
    raw = losses.tolist()  # one host sync for the whole test
    smoothed, avg = [], 0.0
    for i, value in enumerate(raw):
        if not math.isfinite(value):
            break
        avg = beta * avg + (1 - beta) * value
        smoothed.append(avg / (1 - beta ** (i + 1)))
        if i > 10 and smoothed[-1] > 4 * min(smoothed):
            break
    best = min(range(len(smoothed)), key=smoothed.__getitem__) if smoothed else 0
    chosen = max(lrs[best] / 10, start)
    return LRFinderResult(learning_rate=float(chosen), lrs=lrs[: len(smoothed)], losses=smoothed)
