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
    return FastMLPStep(layers, loss_fn)


class FastMLPStep:
    """``step(x, y) -> loss``: forward in training mode, write every parameter's ``.grad``."""

    def __init__(self, layers: list[nn.Module], loss_fn: Any) -> None:
        self.layers = layers
        self.loss_fn = loss_fn
        self.first_linear = next(i for i, m in enumerate(layers) if isinstance(m, nn.Linear))
        self._backward: list[Callable[[torch.Tensor, Any], torch.Tensor]] = []

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        saved: list[Any] = []
        h = x
        for m in self.layers:  # forward, keeping what each backward needs
            if isinstance(m, nn.Linear):
                saved.append(h)
                h = torch.addmm(m.bias, h, m.weight.t()) if m.bias is not None else torch.mm(h, m.weight.t())
            elif isinstance(m, nn.Dropout):
                if m.p > 0:
                    mask = torch.empty_like(h).bernoulli_(1 - m.p).div_(1 - m.p)
                    saved.append(mask)
                    h = h * mask
                else:
                    saved.append(None)
            elif isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid)):
                h = m(h)
                saved.append(h)  # these backward from their output
            else:
                saved.append(h)  # GELU, LeakyReLU, SiLU backward from their input
                h = m(h)
        loss = self.loss_fn(h, y)
        g = self.loss_fn.grad_logits(h, y)  # (B, out)
        for i in range(len(self.layers) - 1, -1, -1):
            m, s = self.layers[i], saved[i]
            if isinstance(m, nn.Linear):
                torch.mm(g.t(), s, out=m.weight.grad)  # (out, B) @ (B, in)
                if m.bias is not None:
                    torch.sum(g, dim=0, out=m.bias.grad)
                if i > self.first_linear:
                    g = torch.mm(g, m.weight)  # (B, out) @ (out, in)
                else:
                    break  # nothing before the first Linear has parameters
            elif isinstance(m, nn.Dropout):
                if s is not None:
                    g = g * s
            elif isinstance(m, nn.ReLU):
                g = torch.ops.aten.threshold_backward(g, s, 0)
            elif isinstance(m, nn.Tanh):
                g = torch.ops.aten.tanh_backward(g, s)
            elif isinstance(m, nn.Sigmoid):
                g = torch.ops.aten.sigmoid_backward(g, s)
            elif isinstance(m, nn.GELU):
                g = torch.ops.aten.gelu_backward(g, s)
            elif isinstance(m, nn.LeakyReLU):
                g = torch.ops.aten.leaky_relu_backward(g, s, m.negative_slope, False)
            elif isinstance(m, nn.SiLU):
                g = torch.ops.aten.silu_backward(g, s)
        return loss
