"""A temporal convolutional network: residual blocks of dilated causal 1-D convolutions."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.models._sequence import SequenceHead, check_spec, masked_mean, relative_inputs
from dlpipe.models.registry import register_model

__all__ = ["TCN"]


class _CausalBlock(nn.Module):
    """Two dilated causal convolutions (left padding only: step t sees steps <= t) and a residual."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, dilation=dilation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        h = self.drop(F.relu(self.conv1(F.pad(x, (self.pad, 0)))))
        h = self.drop(F.relu(self.conv2(F.pad(h, (self.pad, 0)))))
        return F.relu(h + self.skip(x))


class TCN(nn.Module):
    """Blocks with dilations 1, 2, 4, ... (receptive field 1 + 2 (k - 1) (2^n - 1)), then the head.

    Args:
        spec: ``n_features``, ``n_outputs``, ``hidden`` (channels per block; defaults to `[32, 32, 32, 32]`),
            ``kernel_size`` (defaults to `3`), ``dropout``, ``forecast`` and the forecasting keys.

    Example:
        >>> m = TCN({"n_features": 1, "n_outputs": 2, "hidden": [8, 8]})
        >>> m(torch.zeros(4, 20, 1)).shape
        torch.Size([4, 2])
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        kernel = spec.get("kernel_size", 3)
        extra = (
            []
            if isinstance(kernel, int) and kernel >= 2
            else [f"`kernel_size` is {kernel!r} but must be an integer >= 2"]
        )
        hidden = check_spec(spec, [32, 32, 32, 32], extra=extra)
        widths = [int(spec["n_features"])] + hidden
        dropout = float(spec.get("dropout", 0.0))
        self.blocks = nn.Sequential(
            *(
                _CausalBlock(widths[i], widths[i + 1], kernel, 2**i, dropout)
                for i in range(len(hidden))
            )
        )
        self.forecast = bool(spec.get("forecast", False))
        self.spec = {k: spec.get(k) for k in ("forecast", "relative")}
        self.head = SequenceHead(hidden[-1], spec)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(relative_inputs(x, self.spec).transpose(1, 2)).transpose(
            1, 2
        )  # (B, T, F) -> (B, C, T) for Conv1d -> (B, T, C)
        feats = h[:, -1] if self.forecast else masked_mean(h, mask)
        return self.head(feats, x)


@register_model("tcn")
def _build(spec: dict[str, Any]) -> nn.Module:
    return TCN(spec)
