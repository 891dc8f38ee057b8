"""The MLP fast path: forward and backward of a plain dense stack without autograd.

For a small MLP the step time is dominated by per-op overhead, not arithmetic: on this 2-core
CPU, autograd's graph bookkeeping costs more than the matrix products of a 20-64-32-1 network.
When a model is a plain stack of ``Linear`` / elementwise activation / ``Dropout`` layers and
the loss knows its gradient with respect to the logits (``dlpipe.tasks.losses``), this module
computes the exact same gradients by hand — ``mm``/``addmm`` straight into the flat gradient
buffer of :class:`~dlpipe.training.optim.FlatOptimizer` — and autograd is never involved.
``tests/training/test_fastpath.py`` checks the gradients against autograd.

Anything else (BatchNorm, embeddings, convolutions, custom losses) takes the ordinary autograd path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["make_fast_step", "FastMLPStep"]

_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.SiLU, nn.Identity)


def _plain_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layer list if ``model`` is (or wraps) a plain dense stack; else None."""
    getter = getattr(model, "fast_path_layers", None)
    seq = getter() if callable(getter) else model if isinstance(model, nn.Sequential) else None
    if seq is None:
        return None
    layers = list(seq)
    if not layers or not any(isinstance(m, nn.Linear) for m in layers):
        return None
    for m in layers:
        if isinstance(m, nn.Linear):
            continue
        if isinstance(m, nn.Dropout) or type(m) in _ACTIVATIONS:
            if isinstance(m, nn.GELU) and m.approximate != "none":
                return None
            continue
        return None
    return layers


def make_fast_step(model: nn.Module, loss_fn: Any) -> FastMLPStep | None:
    """A fast step for ``model`` and ``loss_fn``, or None when the autograd path is needed."""
    if not callable(getattr(loss_fn, "grad_logits", None)):
        return None
    layers = _plain_layers(model)
    if layers is None:
        return None
    params = list(model.parameters())
    if any(p.grad is None for p in params) or any(not p.is_contiguous() for p in params):
        return None  # needs FlatOptimizer's persistent .grad views
    getter = getattr(model, "fast_path_members", None)
    members = getter() if callable(getter) else None
    # smoothing applies to members' outputs only: autograd scores a plain net's outputs plainly
    if members is None and float(getattr(loss_fn, "smoothing", 0)):
        return None
    getter = getattr(model, "fast_path_skip", None)
    skip = getter() if callable(getter) else None
    return FastMLPStep(layers, loss_fn, members=members, skip=skip)


_LINEAR, _DROPOUT, _FROM_OUTPUT, _FROM_INPUT = range(4)


class FastMLPStep:
    """``step(x, y) -> loss``: forward in training mode, write every parameter's ``.grad``.

    With ``logits_out`` (a slice of an epoch buffer) the logits are copied there and no loss is
    computed per step: the trainer computes the epoch's loss once over all rows, which is the
    row-weighted mean (Keras' definition) at the cost of one copy per step instead of a loss op.
    """

    def __init__(
        self,
        layers: list[nn.Module],
        loss_fn: Any,
        members: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        skip: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.loss_fn = loss_fn
        # MLP(skip=True): a linear path from the input straight to the logits, added after the stack.
        self.skip = skip
        # An ensemble (MLP(members=k)): the input times each member's signs runs through the shared
        # stack as (k * B, F) rows, then each member's own head (a batched matmul).
        self.members = members
        first = next(i for i, m in enumerate(layers) if isinstance(m, nn.Linear))
        # A compiled plan: (kind, module, backward op) per layer, so the step does no isinstance walks.
        backward_ops: dict[type, Callable[..., torch.Tensor]] = {
            nn.ReLU: lambda g, s, m: torch.ops.aten.threshold_backward(g, s, 0),
            nn.Tanh: lambda g, s, m: torch.ops.aten.tanh_backward(g, s),
            nn.Sigmoid: lambda g, s, m: torch.ops.aten.sigmoid_backward(g, s),
            nn.GELU: lambda g, s, m: torch.ops.aten.gelu_backward(g, s),
            nn.LeakyReLU: lambda g, s, m: torch.ops.aten.leaky_relu_backward(
                g, s, m.negative_slope, False
            ),
            nn.SiLU: lambda g, s, m: torch.ops.aten.silu_backward(g, s),
            nn.Identity: lambda g, s, m: g,
        }
        self.plan: list[tuple[int, Any, Any]] = []  # (kind, module, backward op)
        for m in layers[first:]:  # from the first Linear on; nothing before it has parameters
            if isinstance(m, nn.Linear):
                self.plan.append((_LINEAR, m, None))
            elif isinstance(m, nn.Dropout):
                self.plan.append((_DROPOUT, m, None))
            elif isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid)):
                self.plan.append(
                    (_FROM_OUTPUT, m, backward_ops[type(m)])
                )  # backward from the output
            else:
                self.plan.append(
                    (_FROM_INPUT, m, backward_ops[type(m)])
                )  # GELU, LeakyReLU, SiLU, Identity
        self.prefix = layers[:first]  # only activations/dropout before the first Linear: run as is
        self._rng: np.random.Generator | None = (
            None  # dropout's uniforms on the CPU (see _dropout_mask)
        )

    def _skip_grad(self, g: torch.Tensor, x: torch.Tensor) -> None:
        """Gradients of the linear input-to-output path from the logits' gradient ``g`` (B, out)."""
        assert self.skip is not None
        weight, bias = self.skip
        torch.mm(g.t(), x, out=weight.grad)  # (out, B) @ (B, in)
        torch.sum(g, dim=0, out=bias.grad)

    def _dropout_mask(self, h: torch.Tensor, keep: float) -> torch.Tensor:
        """Inverted-dropout mask: 1/keep with probability ``keep``, else 0.

        On the CPU the uniforms come from numpy's PCG64, seeded from torch's generator at the first
        mask of each epoch (so ``torch.manual_seed`` still fixes every mask, and resuming works): torch's CPU ``bernoulli_`` measured ~4x slower
        (30k values: 560 µs vs 130 µs here), a fifth of a wide tuning trial's step.
        """
        if h.device.type != "cpu" or h.dtype != torch.float32:
            return torch.empty_like(h).bernoulli_(keep).div_(keep)
        if self._rng is None:
            self._rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return (
            torch.from_numpy(self._rng.random(h.shape, dtype=np.float32)).lt_(keep).mul_(1.0 / keep)
        )

    def new_epoch(self) -> None:
        """Reseed dropout's generator from torch's at the epoch's first mask, so a run resumed from an
        epoch checkpoint (which restores torch's RNG state) draws the same masks as an uninterrupted one."""
        self._rng = None

    def logits_buffer(self, rows: int, device: torch.device) -> torch.Tensor | None:
        """An epoch's worth of logits, (rows, outputs); None for an ensemble (its loss is per step)."""
        if self.members is not None:
            return None
        last = next(m for kind, m, _ in reversed(self.plan) if kind == _LINEAR)
        return torch.empty((rows, last.out_features), device=device, dtype=last.weight.dtype)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, logits_out: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        with torch.no_grad():
            return self._step(x, y, logits_out)

    def _step(
        self, x: torch.Tensor, y: torch.Tensor, logits_out: torch.Tensor | None
    ) -> torch.Tensor | None:
        h = x
        if self.members is not None:
            signs, head_w, head_b = self.members
            k, b = signs.shape[0], x.shape[0]
            h = (x.unsqueeze(0) * signs).reshape(k * b, -1)
        for m in self.prefix:
            h = m(h)
        saved: list[Any] = []
        for kind, m, _ in self.plan:  # forward, keeping what each backward needs
            if kind == _LINEAR:
                saved.append(h)
                h = (
                    torch.addmm(m.bias, h, m.weight.t())
                    if m.bias is not None
                    else torch.mm(h, m.weight.t())
                )
            elif kind == _DROPOUT:
                if m.p > 0:
                    mask = self._dropout_mask(h, 1.0 - m.p)
                    saved.append(mask)
                    h = h * mask
                else:
                    saved.append(None)
            elif kind == _FROM_OUTPUT:
                h = m(h)
                saved.append(h)
            else:
                saved.append(h)
                h = m(h)
        if self.members is not None:  # each member's head, then its loss (the mean over members)
            h3 = h.view(k, b, -1)
            out = torch.baddbmm(head_b, h3, head_w)  # (k, B, out)
            if self.skip is not None:
                out = out + torch.addmm(self.skip[1], x, self.skip[0].t())  # + (B, out)
            loss = self.loss_fn(out, y)
            y_rep = y.repeat(k, *([1] * (y.dim() - 1)))
            g3 = self.loss_fn.grad_logits(out.reshape(k * b, -1), y_rep).view(k, b, -1)
            torch.bmm(h3.transpose(1, 2), g3, out=head_w.grad)  # (k, H, B) @ (k, B, out)
            torch.sum(g3, dim=1, keepdim=True, out=head_b.grad)
            if self.skip is not None:
                self._skip_grad(g3.sum(dim=0), x)  # the members share it: their gradients add
            g = torch.bmm(g3, head_w.transpose(1, 2)).reshape(k * b, -1)  # (k * B, H)
        else:
            if self.skip is not None:
                h = torch.addmm(self.skip[1], x, self.skip[0].t()).add_(h)
            if logits_out is None:
                loss = self.loss_fn(h, y)
            else:
                logits_out.copy_(h)
                loss = None
            g = self.loss_fn.grad_logits(h, y)  # (B, out)
            if self.skip is not None:
                self._skip_grad(g, x)
        for i in range(len(self.plan) - 1, -1, -1):
            kind, m, op = self.plan[i]
            s = saved[i]
            if kind == _LINEAR:
                torch.mm(g.t(), s, out=m.weight.grad)  # (out, B) @ (B, in)
                if m.bias is not None:
                    torch.sum(g, dim=0, out=m.bias.grad)
                if i == 0:
                    break
                g = torch.mm(g, m.weight)  # (B, out) @ (out, in)
            elif kind == _DROPOUT:
                if s is not None:
                    g = g * s
            else:
                g = op(g, s, m)
        return loss
