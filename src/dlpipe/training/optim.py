"""Optimisers over one flat parameter buffer: SGD (momentum, Nesterov), Adam, AdamW, RMSprop.

Why not ``torch.optim``? Two measured costs on a small CPU model (see benchmarks/RESULTS.md):
constructing the first ``torch.optim`` optimiser imports ``torch._dynamo`` (~1.6 s here, more than
the whole training of a small table), and a per-tensor step walks every parameter in Python. Here all
parameters of one dtype/device become views into one flat tensor, their gradients views into one flat
gradient buffer, and a step is a single fused kernel (``torch._fused_adam_`` and friends, the same
kernels ``torch.optim`` uses with ``fused=True``) or a handful of in-place ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError, suggest

__all__ = ["FlatOptimizer", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


@dataclass
class _Group:
    params: list[nn.Parameter]
    flat: torch.Tensor  # all parameters of this group, concatenated
    grad: torch.Tensor  # their gradients, concatenated; param.grad are views into it
    state: dict[str, torch.Tensor]


def _dense(t: torch.Tensor) -> bool:
    """True when ``t`` covers exactly ``numel`` consecutive elements in some dimension order."""
    return (
        t.is_contiguous()
        or t.is_contiguous(memory_format=torch.channels_last)
        or (t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d))
    )


class FlatOptimizer:
    """One optimiser over all of a model's parameters, flattened into a single buffer per dtype/device.

    Args:
        params: The parameters (already on their device). Their ``.data`` and ``.grad`` are re-pointed
            into flat buffers: keep using the module as usual.
        kind: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"``. Defaults to `"adamw"`.
        learning_rate: The step size. Defaults to `1e-3`.
        momentum: SGD/RMSprop momentum. Defaults to `0.0`.
        nesterov: Nesterov momentum for SGD. Defaults to `False`.
        weight_decay: L2 penalty (decoupled for AdamW). Defaults to `0.0`.
        betas: Adam's moment decay rates. Defaults to `(0.9, 0.999)`.
        eps: Numerical floor. Defaults to `1e-8`.

    Example:
        >>> model = nn.Linear(3, 1)
        >>> opt = FlatOptimizer(model.parameters(), "adam", learning_rate=0.1)
        >>> loss = model(torch.ones(4, 3)).pow(2).mean()
        >>> opt.zero_grad(); loss.backward(); opt.step()
        >>> opt.steps
        1
    """

    def __init__(
        self,
        params: Any,
        kind: Literal["sgd", "adam", "adamw", "rmsprop"] = "adamw",
        *,
        learning_rate: float = 1e-3,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        alpha: float = 0.99,
    ) -> None:
        if kind not in OPTIMIZERS:
            raise InvalidConfigError(
                f"`optimizer` is {kind!r}{suggest(kind, OPTIMIZERS)} but must be one of {', '.join(OPTIMIZERS)}."
            )
        if nesterov and (kind != "sgd" or momentum <= 0):
            raise InvalidConfigError(
                "`nesterov=True` needs optimizer='sgd' with `momentum` > 0; set momentum=0.9 or drop nesterov."
            )
        self.kind = kind
        self.lr = float(learning_rate)
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.weight_decay = float(weight_decay)
        self.betas = betas
        self.eps = eps
        self.alpha = alpha
        self.steps = 0
        self.groups: list[_Group] = []
        by_key: dict[tuple[torch.device, torch.dtype], list[nn.Parameter]] = {}
        for p in params:
            if p.requires_grad:
                by_key.setdefault((p.device, p.dtype), []).append(p)
        for plist in by_key.values():
            self.groups.append(self._flatten(plist))

    def _flatten(self, params: list[nn.Parameter]) -> _Group:
        first = params[0]
        flat = torch.empty(sum(p.numel() for p in params), dtype=first.dtype, device=first.device)
        grad = torch.zeros_like(flat)
        offset = 0
        for p in params:
            # Views keep the module's parameters and the flat buffer one and the same memory. A dense
            # parameter keeps its strides (a channels_last conv weight stays channels_last: losing it
            # costs a layout conversion in every convolution); anything else becomes contiguous.
            stride = p.stride() if _dense(p) else torch.empty(p.shape, device="meta").stride()
            view = flat.as_strided(p.shape, stride, offset)
            view.copy_(p.detach())
            p.data = view
            p.grad = grad.as_strided(p.shape, stride, offset)
            offset += p.numel()
        state: dict[str, torch.Tensor] = {
            "step": torch.zeros((), dtype=torch.float32, device=flat.device)
        }
        if self.kind in ("adam", "adamw"):
            state["exp_avg"] = torch.zeros_like(flat)
            state["exp_avg_sq"] = torch.zeros_like(flat)
        elif self.kind == "sgd" and self.momentum > 0:
            state["momentum_buffer"] = torch.zeros_like(flat)
        elif self.kind == "rmsprop":
            state["square_avg"] = torch.zeros_like(flat)
            if self.momentum > 0:
                state["momentum_buffer"] = torch.zeros_like(flat)
        return _Group(params=params, flat=flat, grad=grad, state=state)

    @property
    def n_parameters(self) -> int:
        return sum(g.flat.numel() for g in self.groups)

    def zero_grad(self) -> None:
        for g in self.groups:
            g.grad.zero_()

    def grad_norm_clip_(self, max_norm: float) -> torch.Tensor:
        """Scale gradients so their global L2 norm is at most ``max_norm``; no host sync."""
        device = self.groups[0].grad.device
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g.grad).to(device) for g in self.groups])
        )
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for g in self.groups:
            g.grad.mul_(scale.to(g.grad.device))
        return norm

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for g in self.groups:
            fused = g.flat.device.type in ("cpu", "cuda")
            st = g.state
            if self.kind in ("adam", "adamw"):
                st["step"] += 1
                if fused:
                    op = torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_
                    op(
                        [g.flat],
                        [g.grad],
                        [st["exp_avg"]],
                        [st["exp_avg_sq"]],
                        [],
                        [st["step"]],
                        lr=self.lr,
                        beta1=self.betas[0],
                        beta2=self.betas[1],
                        weight_decay=self.weight_decay,
                        eps=self.eps,
                        amsgrad=False,
                        maximize=False,
                    )
                else:
                    self._adam_plain(g)
            elif self.kind == "sgd":
                self._sgd(g, fused)
            else:
                self._rmsprop(g)

    def _adam_plain(self, g: _Group) -> None:
        b1, b2 = self.betas
        st, grad, t = g.state, g.grad, self.steps
        if self.kind == "adamw":
            g.flat.mul_(1 - self.lr * self.weight_decay)
        elif self.weight_decay:
            grad = grad.add(g.flat, alpha=self.weight_decay)
        st["exp_avg"].lerp_(grad, 1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (st["exp_avg_sq"] / (1 - b2**t)).sqrt_().add_(self.eps)
        g.flat.addcdiv_(st["exp_avg"], denom, value=-self.lr / (1 - b1**t))

    def _sgd(self, g: _Group, fused: bool) -> None:
        st = g.state
        if fused:
            torch._fused_sgd_(
                [g.flat],
                [g.grad],
                [st["momentum_buffer"]] if self.momentum > 0 else [],
                weight_decay=self.weight_decay,
                momentum=self.momentum,
                lr=self.lr,
                dampening=0.0,
                nesterov=self.nesterov,
                maximize=False,
                is_first_step=self.steps == 1,
            )
            return
        grad = g.grad.add(g.flat, alpha=self.weight_decay) if self.weight_decay else g.grad
        if self.momentum > 0:
            buf = st["momentum_buffer"]
            if self.steps == 1:
                buf.copy_(grad)
            else:
                buf.mul_(self.momentum).add_(grad)
            grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
        g.flat.add_(grad, alpha=-self.lr)

    def _rmsprop(self, g: _Group) -> None:
        st = g.state
        grad = g.grad.add(g.flat, alpha=self.weight_decay) if self.weight_decay else g.grad
        sq = st["square_avg"].mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
        avg = sq.sqrt().add_(self.eps)
        if self.momentum > 0:
            buf = st["momentum_buffer"].mul_(self.momentum).addcdiv_(grad, avg)
            g.flat.add_(buf, alpha=-self.lr)
        else:
            g.flat.addcdiv_(grad, avg, value=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lr": self.lr,
            "steps": self.steps,
            "groups": [{k: v.detach().clone() for k, v in g.state.items()} for g in self.groups],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = float(state["lr"])
        self.steps = int(state["steps"])
        for g, saved in zip(self.groups, state["groups"]):
            for k, v in saved.items():
                g.state[k].copy_(v)
