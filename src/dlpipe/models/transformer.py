"""A Transformer encoder over time steps, with sinusoidal positional encoding."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from dlpipe.models._sequence import SequenceHead, check_spec, masked_mean, relative_inputs
from dlpipe.models.registry import register_model

__all__ = ["SequenceTransformer", "positional_encoding"]


def positional_encoding(
    length: int, width: int, device: torch.device | None = None
) -> torch.Tensor:
    """The sinusoidal table of "Attention is all you need": (length, width)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width)
    )
    pe = torch.zeros(length, width, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : width // 2]
    return pe


class SequenceTransformer(nn.Module):
    """Linear(F -> d) + positional encoding -> encoder layers -> head (last step or masked mean).

    Args:
        spec: ``n_features``, ``n_outputs``, ``hidden`` (``[d] * layers``; defaults to `[64, 64]`),
            ``heads`` (defaults to `4`), ``dropout``, ``forecast`` and the forecasting keys.

    Example:
        >>> m = SequenceTransformer({"n_features": 2, "n_outputs": 3, "hidden": [16], "heads": 2})
        >>> m(torch.zeros(4, 12, 2)).shape
        torch.Size([4, 3])
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        heads = spec.get("heads", 4)
        hidden = spec.get("hidden") or [64, 64]
        extra = []
        if (
            not isinstance(heads, int)
            or heads < 1
            or (
                isinstance(hidden, list)
                and hidden
                and isinstance(hidden[0], int)
                and hidden[0] % heads
            )
        ):
            extra.append(
                f"`heads` is {heads!r} but must be a positive integer that divides the width {hidden[0] if hidden else '?'}"
            )
        hidden = check_spec(spec, [64, 64], extra=extra)
        if len(set(hidden)) != 1:
            from dlpipe.core.errors import InvalidConfigError

            raise InvalidConfigError(
                f"`hidden` is {hidden!r} but a transformer's layers share one width; pass e.g. [64, 64] (width 64, 2 layers)."
            )
        d = hidden[0]
        self.forecast = bool(spec.get("forecast", False))
        self.embed = nn.Linear(int(spec["n_features"]), d)
        dropout = float(spec.get("dropout", 0.0))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d, heads, dim_feedforward=2 * d, dropout=dropout, batch_first=True
            )
            for _ in hidden
        )
        self.spec = {k: spec.get(k) for k in ("forecast", "relative")}
        self.head = SequenceHead(d, spec)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.embed(relative_inputs(x, self.spec))  # (B, T, d)
        h = h + positional_encoding(h.shape[1], h.shape[2], h.device)
        padding = (mask < 0.5) if mask is not None else None  # True = ignore this step
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=padding)
        feats = h[:, -1] if self.forecast else masked_mean(h, mask)
        return self.head(feats, x)


@register_model("transformer")
def _build(spec: dict[str, Any]) -> nn.Module:
    return SequenceTransformer(spec)
