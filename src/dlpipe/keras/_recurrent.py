"""Keras' recurrent layers: ``SimpleRNN``, ``LSTM``, ``GRU`` (and their ``Bidirectional`` form).

Keras' semantics: ``activation`` (the candidate and output non-linearity, ``tanh`` by default),
``recurrent_activation`` (the gates, ``sigmoid``), ``dropout`` (on the inputs, one mask per sequence
for every step), ``recurrent_dropout`` (on the carried state, one mask per sequence) and
``return_sequences``. With Keras' default activations and no recurrent dropout the layer runs
PyTorch's fused kernel (and dlpipe's compiled LSTM kernel where it applies): the input-dropout mask is
the same at every step, so it is applied to the whole input sequence before the fused call. Any other
activation (a ``relu`` LSTM, a ``hard_sigmoid`` gate) or a recurrent dropout runs the cell written
below, step by step with autograd, over the same parameters, so both paths share one state_dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError

__all__ = ["RecurrentModule", "rnn_keras_weights", "set_rnn_keras_weights"]


def _rate(value: Any, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise InvalidConfigError(f"{what} is {value!r} but must be a number in [0, 1).")
    return float(value)


def check_rate(value: Any, what: str) -> float:
    return _rate(value, what)


class RecurrentModule(nn.Module):
    """One recurrent layer over (B, T, F), batch first; ``rnn`` holds the parameters in torch's layout."""

    def __init__(
        self,
        rnn: nn.RNNBase,
        kind: str,
        return_sequences: bool,
        activation: nn.Module | None,
        recurrent_activation: nn.Module | None,
        fused: bool,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.rnn = rnn
        self.kind = kind
        self.return_sequences = return_sequences
        self.act = activation if activation is not None else nn.Identity()
        self.ract = recurrent_activation if recurrent_activation is not None else nn.Identity()
        self.fused = fused
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            # one mask per sequence and feature, the same at every step (Keras' input dropout)
            mask = torch.bernoulli(x.new_full((x.shape[0], 1, x.shape[2]), keep)) / keep
            x = x * mask  # (B, T, F)
        if self.fused:
            out, _ = self.rnn(x)  # (B, T, D * units)
        else:
            out = self._unrolled(x)
        if self.return_sequences:
            return out
        if not self.rnn.bidirectional:
            return out[:, -1]
        u = self.rnn.hidden_size
        # forward direction's last step, backward direction's last step (which is time 0)
        return torch.cat([out[:, -1, :u], out[:, 0, u:]], dim=1)

    def _unrolled(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self._direction(x, "")]
        if self.rnn.bidirectional:
            outs.append(self._direction(x.flip(1), "_reverse").flip(1))
        return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]

    def _direction(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        rnn = self.rnn
        w_ih = getattr(rnn, f"weight_ih_l0{suffix}")
        w_hh = getattr(rnn, f"weight_hh_l0{suffix}")
        b_ih = getattr(rnn, f"bias_ih_l0{suffix}", None)
        b_hh = getattr(rnn, f"bias_hh_l0{suffix}", None)
        b, t_len, u = x.shape[0], x.shape[1], rnn.hidden_size
        rec_mask = None
        if self.training and self.recurrent_dropout > 0:
            keep = 1.0 - self.recurrent_dropout
            rec_mask = torch.bernoulli(x.new_full((b, u), keep)) / keep  # one mask per sequence
        h = x.new_zeros(b, u)
        outs: list[torch.Tensor] = []
        if self.kind == "gru":
            xp = torch.nn.functional.linear(x, w_ih, b_ih)  # (B, T, 3u): gates r, z, n
            for t in range(t_len):
                hh = h * rec_mask if rec_mask is not None else h
                hp = torch.nn.functional.linear(hh, w_hh, b_hh)  # (B, 3u)
                xr, xz, xn = xp[:, t].chunk(3, 1)
                hr, hz, hn = hp.chunk(3, 1)
                r = self.ract(xr + hr)
                z = self.ract(xz + hz)
                n = self.act(xn + r * hn)
                h = z * h + (1.0 - z) * n
                outs.append(h)
            return torch.stack(outs, 1)
        bias = None if b_ih is None else b_ih + b_hh
        xp = torch.nn.functional.linear(
            x, w_ih, bias
        )  # (B, T, 4u) for an LSTM, (B, T, u) for an RNN
        if self.kind == "lstm":
            c = x.new_zeros(b, u)
            for t in range(t_len):
                hh = h * rec_mask if rec_mask is not None else h
                gates = torch.addmm(
                    xp[:, t], hh, w_hh.t()
                )  # (B, 4u): i, f, g, o (Keras' i, f, c, o)
                s = self.ract(gates)  # one op for the three gates (g's share is unused)
                g = self.act(gates[:, 2 * u : 3 * u])
                c = torch.addcmul(s[:, u : 2 * u] * c, s[:, :u], g)
                h = s[:, 3 * u :] * self.act(c)
                outs.append(h)
            return torch.stack(outs, 1)
        for t in range(t_len):
            hh = h * rec_mask if rec_mask is not None else h
            h = self.act(torch.addmm(xp[:, t], hh, w_hh.t()))
            outs.append(h)
        return torch.stack(outs, 1)


# Keras orders a GRU's gates z, r, h; PyTorch r, z, n: the same blocks, swapped.
_GRU_ORDER = [1, 0, 2]


def _blocks(a: np.ndarray, order: list[int], axis: int) -> np.ndarray:
    parts = np.split(a, len(order), axis=axis)
    return np.concatenate([parts[i] for i in order], axis=axis)


def rnn_keras_weights(rnn: nn.RNNBase, kind: str) -> list[np.ndarray]:
    """The weights in Keras' layout: per direction ``[kernel (F, G*u), recurrent_kernel (u, G*u), bias]``."""
    out: list[np.ndarray] = []
    for suffix in ("", "_reverse") if rnn.bidirectional else ("",):
        w_ih = getattr(rnn, f"weight_ih_l0{suffix}").detach().cpu().numpy()
        w_hh = getattr(rnn, f"weight_hh_l0{suffix}").detach().cpu().numpy()
        b_ih = getattr(rnn, f"bias_ih_l0{suffix}").detach().cpu().numpy()
        b_hh = getattr(rnn, f"bias_hh_l0{suffix}").detach().cpu().numpy()
        if kind == "gru":
            out += [
                _blocks(w_ih.T, _GRU_ORDER, 1),
                _blocks(w_hh.T, _GRU_ORDER, 1),
                np.stack([_blocks(b_ih, _GRU_ORDER, 0), _blocks(b_hh, _GRU_ORDER, 0)]),
            ]
        else:  # an LSTM's gates are in the same order in both (i, f, c/g, o); Keras has one bias
            out += [w_ih.T.copy(), w_hh.T.copy(), b_ih + b_hh]
    return out


def set_rnn_keras_weights(rnn: nn.RNNBase, kind: str, arrays: list[np.ndarray]) -> None:
    suffixes = ("", "_reverse") if rnn.bidirectional else ("",)
    with torch.no_grad():
        for d, suffix in enumerate(suffixes):
            kernel, recurrent, bias = arrays[3 * d : 3 * d + 3]
            if kind == "gru":
                w_ih, w_hh = _blocks(kernel, _GRU_ORDER, 1).T, _blocks(recurrent, _GRU_ORDER, 1).T
                b_ih, b_hh = _blocks(bias[0], _GRU_ORDER, 0), _blocks(bias[1], _GRU_ORDER, 0)
            else:
                w_ih, w_hh, b_ih, b_hh = kernel.T, recurrent.T, bias, np.zeros_like(bias)
            for name, value in (
                ("weight_ih_l0", w_ih),
                ("weight_hh_l0", w_hh),
                ("bias_ih_l0", b_ih),
                ("bias_hh_l0", b_hh),
            ):
                p = getattr(rnn, name + suffix)
                p.copy_(torch.as_tensor(np.ascontiguousarray(value), dtype=p.dtype))
