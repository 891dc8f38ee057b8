"""What every sequence model shares: the spec checks, the output head and masked pooling.

Spec keys common to the sequence families (``rnn``, ``lstm``, ``gru``, ``transformer``, ``tcn``,
``cnn1d``): ``n_features`` (F), ``n_outputs`` (horizon x targets for forecasting, classes for
classification), ``hidden`` (sizes), ``dropout``, ``forecast`` (True: the window's last step feeds
the head; False: masked mean over time), and for forecasting ``horizon``, ``target_index`` (the
input columns that hold the targets) and ``residual`` (the head predicts the change from the last
observed target value, so an untrained head starts at the naive forecast) and ``relative`` (the
network reads each window minus its last row: level-free inputs, so a trend that leaves the
training span's range does not push the inputs out of it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError

__all__ = ["SequenceHead", "check_spec", "masked_mean", "relative_inputs"]


def check_spec(
    spec: dict[str, Any], default_hidden: list[int], *, extra: list[str] | None = None
) -> list[int]:
    """Validate the common keys (collecting every problem, raising once); return the hidden sizes."""
    problems = list(extra or [])
    hidden = spec.get("hidden") or default_hidden
    if not isinstance(hidden, list) or any((not isinstance(h, int)) or h < 1 for h in hidden):
        problems.append(
            f"`hidden` is {hidden!r} but must be a list of positive integers such as [64]"
        )
    for key in ("n_features", "n_outputs"):
        value = spec.get(key)
        if not isinstance(value, int) or value < 1:
            problems.append(f"`{key}` is {value!r} but must be a positive integer")
    dropout = spec.get("dropout", 0.0)
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        problems.append(f"`dropout` is {dropout!r} but must be in [0, 1)")
    if spec.get("forecast") and spec.get("bidirectional"):
        problems.append(
            "`bidirectional=True` is refused for forecasting because the backward pass would let each step see later steps, which the forecast must not look at; leave it off (it is for sequence classification)"
        )
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    return list(hidden)


def relative_inputs(x: torch.Tensor, spec: dict[str, Any]) -> torch.Tensor:
    """For forecasting with ``relative``: the window minus its last row, (B, T, F) -> (B, T, F)."""
    if spec.get("forecast") and spec.get("relative"):
        return x - x[:, -1:, :]
    return x


def masked_mean(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, D) -> (B, D), averaging only the real steps when a (B, T) mask is given."""
    if mask is None:
        return h.mean(dim=1)
    m = mask.to(h.dtype).unsqueeze(-1)  # (B, T, 1)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class SequenceHead(nn.Module):
    """Linear(width -> n_outputs); for residual forecasting, plus the last observed target value per step."""

    def __init__(self, width: int, spec: dict[str, Any]) -> None:
        super().__init__()
        self.linear = nn.Linear(width, int(spec["n_outputs"]))
        self.forecast = bool(spec.get("forecast", False))
        self.residual = (
            self.forecast and bool(spec.get("residual", False)) and bool(spec.get("target_index"))
        )
        self.horizon = int(spec.get("horizon", 1))
        self.target_index = [int(i) for i in spec.get("target_index", [])]

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(features)  # (B, H * K)
        if self.residual:
            last = x[:, -1, self.target_index]  # (B, K): the naive forecast, repeated per step
            out = out + last.repeat(1, self.horizon)
        return out
