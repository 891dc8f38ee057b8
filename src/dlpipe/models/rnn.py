"""Recurrent networks: RNN (tanh), LSTM and GRU for forecasting and sequence classification."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.models._sequence import SequenceHead, check_spec, masked_mean, relative_inputs
from dlpipe.models.fused import lstm_sequence
from dlpipe.models.registry import register_model

__all__ = ["RecurrentNet"]

_CELLS: dict[str, Any] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}  # RNNBase subclasses


class RecurrentNet(nn.Module):
    """Stacked recurrent layers, then a head on the last step (forecasting) or the masked mean (classification).

    Args:
        spec: ``family`` (rnn, lstm or gru), ``n_features``, ``n_outputs``, ``hidden`` (one size per
            layer; defaults to `[64]`), ``dropout`` (between layers), ``bidirectional``
            (classification only), ``forecast``, ``horizon``, ``target_index``, ``residual``.

    Example:
        >>> m = RecurrentNet({"family": "lstm", "n_features": 1, "n_outputs": 1, "hidden": [8], "forecast": True})
        >>> m(torch.zeros(4, 10, 1)).shape
        torch.Size([4, 1])
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        hidden = check_spec(spec, [64])
        cell = _CELLS[spec.get("family", "lstm")]
        self.bidirectional = bool(spec.get("bidirectional", False))
        self.forecast = bool(spec.get("forecast", False))
        dropout = float(spec.get("dropout", 0.0))
        dirs = 2 if self.bidirectional else 1
        if len(set(hidden)) == 1:  # one cuDNN-style multi-layer module when sizes agree (faster)
            self.layers = nn.ModuleList(
                [
                    cell(
                        int(spec["n_features"]),
                        hidden[0],
                        num_layers=len(hidden),
                        batch_first=True,
                        dropout=dropout if len(hidden) > 1 else 0.0,
                        bidirectional=self.bidirectional,
                    )
                ]
            )
        else:
            widths = [int(spec["n_features"])] + [h * dirs for h in hidden[:-1]]
            self.layers = nn.ModuleList(
                cell(w, h, batch_first=True, bidirectional=self.bidirectional)
                for w, h in zip(widths, hidden)
            )
        self.dropout = nn.Dropout(dropout)
        self.spec = {k: spec.get(k) for k in ("forecast", "relative")}
        self.head = SequenceHead(hidden[-1] * dirs, spec)

    # its LSTM layers go through ``lstm_sequence`` (models/fused.py), which checks each call and may run the
    # compiled kernel, in inference too: loading a bundle builds it beforehand (``warm_kernels``)
    uses_lstm_kernel = True

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = relative_inputs(x, self.spec)  # (B, T, F)
        for i, layer in enumerate(self.layers):
            h = (
                lstm_sequence(layer, h) if isinstance(layer, nn.LSTM) else layer(h)[0]
            )  # (B, T, D * dirs)
            if i < len(self.layers) - 1:
                h = self.dropout(h)
        feats = h[:, -1] if self.forecast else masked_mean(h, mask)
        return self.head(self.dropout(feats), x)


@register_model("rnn")
@register_model("lstm")
@register_model("gru")
def _build(spec: dict[str, Any]) -> nn.Module:
    return RecurrentNet(spec)
