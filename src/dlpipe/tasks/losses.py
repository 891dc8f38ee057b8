"""Losses on logits that also know their gradient with respect to the logits.

Each is a plain callable ``loss(logits, y) -> scalar`` (what autograd uses), plus
``grad_logits(logits, y) -> dL/dlogits`` so the engine's MLP fast path can skip autograd
(see ``dlpipe.training.fastpath``). The formulas match ``torch.nn.functional`` with
``reduction="mean"``; tests check them against autograd.

An ensemble in training mode (``MLP(members=k)``) returns one output per member, ``(k, B, ...)``:
each loss then is the mean of the members' losses (every member learns on its own, as in TabM).
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F

__all__ = [
    "LogitLoss",
    "MSELoss",
    "MAELoss",
    "HuberLoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "regression_loss",
]


def _members(
    logits: torch.Tensor, y: torch.Tensor, class_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Members' outputs ``(k, B, ...)`` stacked as ``(k * B, ...)`` beside ``y`` repeated k times."""
    if logits.dim() - y.dim() - class_dim != 1:
        return logits, y
    k = logits.shape[0]
    return logits.flatten(0, 1), y.repeat(k, *([1] * (y.dim() - 1)))


class LogitLoss(abc.ABC):
    name = "loss"

    @abc.abstractmethod
    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss over the batch."""

    @abc.abstractmethod
    def grad_logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dLoss/dlogits, the same shape as ``logits``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(LogitLoss):
    name = "mse"

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(*_members(logits, y, 0))

    def grad_logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits - y).mul_(2.0 / logits.numel())


class MAELoss(LogitLoss):
    """Mean absolute error: what MASE averages, so forecasters judged on it train on it."""

    name = "mae"

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(*_members(logits, y, 0))

    def grad_logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits - y).sign_().div_(logits.numel())


class HuberLoss(LogitLoss):
    name = "huber"

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(*_members(logits, y, 0))

    def grad_logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits - y).clamp_(-1.0, 1.0).div_(logits.numel())


class BCEWithLogitsLoss(LogitLoss):
    name = "bce_with_logits"

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        self.pos_weight = pos_weight

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(
            *_members(logits, y, 0), pos_weight=self.pos_weight
        )

    def grad_logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits)
        if self.pos_weight is None:
            return p.sub_(y).div_(logits.numel())
        w = self.pos_weight
        # d/dz of -(w*y*log s + (1-y)*log(1-s)) = (w*y + 1 - y) * s - w*y
        return ((w * y + 1 - y) * p - w * y).div_(logits.numel())


class CrossEntropyLoss(LogitLoss):
    """Cross-entropy on class logits, optionally class-weighted or with label smoothing.

    ``smoothing`` (label smoothing, Szegedy et al. 2016; RealMLP-TD's 0.1) applies to an ensemble's
    training outputs ``(k, B, C)`` only: the targets become ``(1 - smoothing)`` on the class plus
    ``smoothing / C`` on every class. Averaged (eval-mode) logits ``(B, C)``, which the validation
    loss, early stopping and the temperature see, are scored with the plain log loss, so the model
    is chosen on what it is judged on. ``grad_logits`` (the fast path's, a training step's) is smoothed.
    """

    name = "cross_entropy"

    def __init__(self, weight: torch.Tensor | None = None, smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0 or (smoothing and weight is not None):
            raise ValueError(
                f"`smoothing` is {smoothing!r} but must be in [0, 1) and 0 with class weights; "
                "pass a smaller value or drop the weights."
            )
        self.weight = weight
        self.smoothing = float(smoothing)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.smoothing and logits.dim() - y.dim() == 2:  # members' outputs (k, B, C)
            return F.cross_entropy(*_members(logits, y, 1), label_smoothing=self.smoothing)
        return F.cross_entropy(*_members(logits, y, 1), weight=self.weight)

    def grad_logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = torch.softmax(logits, dim=1)  # (B, C)
        if self.smoothing:
            g.sub_(self.smoothing / g.shape[1])
        g[torch.arange(len(y), device=y.device), y] -= 1.0 - self.smoothing
        if self.weight is None:
            return g.div_(len(y))
        w = self.weight[y]  # (B,)
        return g.mul_(w[:, None]).div_(w.sum())


def regression_loss(name: str) -> LogitLoss:
    """The loss a regression or forecast task names: ``mae``, ``huber``, else (``mse``, ``auto``) MSE."""
    return {"mae": MAELoss, "huber": HuberLoss}.get(name, MSELoss)()
