"""The fully convolutional network (FCN) of Wang et al. (2017) for time-series classification.

Three blocks of Conv1d -> BatchNorm -> ReLU with 'same' padding (kernels 8, 5, 3), then global
average pooling over the real (unmasked) steps and the head. It is dlpipe's default classifier for
sequences: a strong, fast baseline on the UCR archive.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.models._sequence import SequenceHead, check_spec, masked_mean, relative_inputs
from dlpipe.models.registry import register_model

__all__ = ["FCN"]


class FCN(nn.Module):
    """Conv blocks with 'same' padding, masked global average pooling, head.

    Args:
        spec: ``n_features``, ``n_outputs``, ``hidden`` (channels per block; defaults to `[64, 128, 64]`, half the paper's widths: a quarter of the cost, measured as accurate on GunPoint),
            ``kernel_sizes`` (defaults to `[8, 5, 3]`, cycled), ``dropout`` (before the head).

    Example:
        >>> m = FCN({"n_features": 1, "n_outputs": 3, "hidden": [8, 8]})
        >>> m(torch.zeros(4, 30, 1), torch.ones(4, 30)).shape
        torch.Size([4, 3])
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        kernels = spec.get("kernel_sizes", [8, 5, 3])
        extra = (
            []
            if isinstance(kernels, list)
            and kernels
            and all(isinstance(k, int) and k >= 1 for k in kernels)
            else [
                f"`kernel_sizes` is {kernels!r} but must be a list of positive integers such as [8, 5, 3]"
            ]
        )
        hidden = check_spec(spec, [64, 128, 64], extra=extra)
        widths = [int(spec["n_features"])] + hidden
        layers: list[nn.Module] = []
        for i, c in enumerate(hidden):
            k = kernels[i % len(kernels)]
            # explicit 'same' padding: Conv1d(padding="same") copies the input for even kernels (and warns)
            layers += [
                nn.ConstantPad1d(((k - 1) // 2, k // 2), 0.0),
                nn.Conv1d(widths[i], c, k),
                nn.BatchNorm1d(c),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers)
        self.forecast = bool(spec.get("forecast", False))
        self.dropout = nn.Dropout(float(spec.get("dropout", 0.0)))
        self.spec = {k: spec.get(k) for k in ("forecast", "relative")}
        self.head = SequenceHead(hidden[-1], spec)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x * mask.unsqueeze(-1)  # padding stays zero whatever the scaling did to it
        h = self.body(relative_inputs(x, self.spec).transpose(1, 2)).transpose(
            1, 2
        )  # (B, T, F) -> (B, C, T) for Conv1d -> (B, T, C)
        return self.head(self.dropout(masked_mean(h, mask)), x)


@register_model("cnn1d")
@register_model("fcn")
def _build(spec: dict[str, Any]) -> nn.Module:
    return FCN(spec)
