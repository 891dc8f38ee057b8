"""Keras metric names as on-device functions ``(outputs, y) -> scalar tensor`` (one host sync per epoch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dlpipe.core.errors import InvalidConfigError, suggest

__all__ = ["METRICS", "resolve_metrics"]

METRICS = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "binary_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "auc": "auc",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "mse": "mse",
    "mean_squared_error": "mse",
}
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _labels(loss: str, y: torch.Tensor, n_out: int) -> torch.Tensor:
    """Targets as a (B, n_out) 0/1 matrix for the threshold metrics."""
    if loss == "sparse_categorical_crossentropy":
        return torch.nn.functional.one_hot(y.reshape(-1).long(), n_out).float()
    return y.float().reshape(y.shape[0], -1)


def _auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # Mann-Whitney U over the flattened scores (ties broken by order: fine for continuous outputs)
    s, t = scores.reshape(-1).float(), labels.reshape(-1).float()
    ranks = torch.empty_like(s)
    ranks[s.argsort()] = torch.arange(1, s.numel() + 1, dtype=s.dtype, device=s.device)
    n_pos = t.sum()
    n_neg = t.numel() - n_pos
    return (ranks[t > 0.5].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg).clamp_min(1)


def resolve_metrics(
    metrics: Any, loss: str, folded: bool, output_activation: str
) -> dict[str, MetricFn]:
    """Metric names (Keras' spelling) to on-device functions of the network's outputs."""
    if metrics is None:
        return {}
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    out: dict[str, MetricFn] = {}
    for raw in names:
        if not isinstance(raw, str) or raw.lower() not in METRICS:
            raise InvalidConfigError(
                f"unknown metric {raw!r}{suggest(str(raw).lower(), METRICS)}; known metrics are: {', '.join(sorted(set(METRICS)))}."
            )
        key = METRICS[raw.lower()]
        out["acc" if raw.lower() == "acc" else key] = _metric(key, loss, folded, output_activation)
    return out


def _metric(key: str, loss: str, folded: bool, act: str) -> MetricFn:
    def probs(z: torch.Tensor) -> torch.Tensor:
        if not folded:
            return z
        return torch.sigmoid(z) if act == "sigmoid" else torch.softmax(z, dim=-1)

    if key in ("mae", "mse"):

        def err(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            d = probs(z) - _labels(loss, y, z.shape[-1]).reshape(z.shape)
            return d.abs().mean() if key == "mae" else (d * d).mean()

        return err
    if key == "accuracy":
        if loss == "binary_crossentropy":
            return lambda z, y: (
                ((probs(z) > 0.5).float() == y.float().reshape(z.shape)).float().mean()
            )
        if loss == "categorical_crossentropy":
            return lambda z, y: (z.argmax(-1) == y.argmax(-1)).float().mean()
        if loss == "sparse_categorical_crossentropy":
            return lambda z, y: (z.argmax(-1) == y.reshape(-1).long()).float().mean()
        return lambda z, y: (z == y.reshape(z.shape)).float().mean()

    def threshold(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = probs(z)
        t = _labels(loss, y, z.shape[-1]).reshape(p.shape)
        if key == "auc":
            return _auc(p, t)
        pred = (p > 0.5).float()
        tp = (pred * t).sum()
        return tp / (pred.sum() if key == "precision" else t.sum()).clamp_min(1e-12)

    return threshold
