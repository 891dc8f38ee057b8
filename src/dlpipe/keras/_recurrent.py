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
from dlpipe.keras._layer import (
    Layer,
    Shape,
    _find,
    _positive,
    _Regularized,
    activation_module,
    check_activation,
)
from dlpipe.keras.regularizers import Regularizer, resolve_regularizer

__all__ = [
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "RecurrentModule",
    "rnn_keras_weights",
    "set_rnn_keras_weights",
]


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


# ---------------------------------------------------------------------- the layers
class _RNN(_Regularized):
    _kind = "rnn"

    def __init__(
        self,
        units: int,
        activation: str | None = "tanh",
        recurrent_activation: str | None = "sigmoid",
        use_bias: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.units = _positive(units, f"`{kind}(units=...)`")
        self.rnn_activation = check_activation(activation, kind)
        self.recurrent_activation = check_activation(recurrent_activation, kind)
        if use_bias is not True:
            raise InvalidConfigError(
                f"`{kind}(use_bias=...)` is {use_bias!r}; dlpipe.keras' recurrent layers always have a bias."
            )
        self.dropout = check_rate(dropout, f"`{kind}(dropout=...)`")
        self.recurrent_dropout = check_rate(recurrent_dropout, f"`{kind}(recurrent_dropout=...)`")
        self.return_sequences = bool(return_sequences)
        self._init_regularizers(kernel_regularizer, bias_regularizer)
        self.recurrent_regularizer = resolve_regularizer(
            recurrent_regularizer, f"{kind}(recurrent_regularizer=...)"
        )

    def get_config(self) -> dict[str, Any]:
        cfg = {
            **self._base_config(),
            "units": self.units,
            "activation": self.rnn_activation,
            "return_sequences": self.return_sequences,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            **self._regularizer_config(),
        }
        if self._kind != "rnn":
            cfg["recurrent_activation"] = self.recurrent_activation
        return cfg

    def _fused(self) -> bool:
        """Whether torch's fused kernel computes exactly this layer (Keras' default activations)."""
        if self.recurrent_dropout > 0:
            return False
        if self._kind == "rnn":
            return self.rnn_activation in ("tanh", "relu")
        return self.rnn_activation == "tanh" and self.recurrent_activation == "sigmoid"

    def build(
        self, shape: Shape, *, fold_activation: bool = False, bidirectional: bool = False
    ) -> tuple[nn.Module, Shape]:
        if len(shape) != 2:
            raise InvalidConfigError(
                f"{type(self).__name__} needs sequences of shape (None, timesteps, features) but got {(None, *shape)}; reshape the data, e.g. x.reshape(n, timesteps, 1)."
            )
        if self._kind == "rnn":
            nonlinearity = self.rnn_activation if self.rnn_activation == "relu" else "tanh"
            rnn: nn.RNNBase = nn.RNN(
                shape[1],
                self.units,
                nonlinearity=nonlinearity,
                batch_first=True,
                bidirectional=bidirectional,
            )
        elif self._kind == "lstm":
            rnn = nn.LSTM(shape[1], self.units, batch_first=True, bidirectional=bidirectional)
        else:
            rnn = nn.GRU(shape[1], self.units, batch_first=True, bidirectional=bidirectional)
        for name, p in rnn.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(p)
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(p)
            else:
                nn.init.zeros_(p)
                if self._kind == "lstm" and name.startswith("bias_ih"):
                    p.data[self.units : 2 * self.units] = 1.0  # Keras' unit_forget_bias
        width = self.units * (2 if bidirectional else 1)
        out = (shape[0], width) if self.return_sequences else (width,)
        module = RecurrentModule(
            rnn,
            self._kind,
            self.return_sequences,
            activation_module(self.rnn_activation),
            activation_module(self.recurrent_activation),
            fused=self._fused(),
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
        )
        return module, out

    def _rnn(self, module: nn.Module) -> nn.RNNBase:
        return _find(module, nn.RNNBase)  # type: ignore[no-any-return]

    def _kernel_and_bias(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        rnn: Any = self._rnn(module)
        return rnn.weight_ih_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0

    def penalty_terms(self) -> list[tuple[Regularizer, torch.Tensor]]:
        if self.module is None:
            return []
        rnn = self._rnn(self.module)
        suffixes = ("", "_reverse") if rnn.bidirectional else ("",)
        terms = []
        for s in suffixes:
            parts = {
                "kernel_regularizer": getattr(rnn, f"weight_ih_l0{s}"),
                "recurrent_regularizer": getattr(rnn, f"weight_hh_l0{s}"),
                "bias_regularizer": getattr(rnn, f"bias_ih_l0{s}") + getattr(rnn, f"bias_hh_l0{s}"),
            }
            terms += [
                (getattr(self, k), t) for k, t in parts.items() if getattr(self, k) is not None
            ]
        return terms

    def _keras_weights(self, module: nn.Module) -> list[np.ndarray]:
        return rnn_keras_weights(self._rnn(module), self._kind)

    def _set_keras_weights(self, module: nn.Module, arrays: list[np.ndarray]) -> None:
        set_rnn_keras_weights(self._rnn(module), self._kind, arrays)


class SimpleRNN(_RNN):
    """A fully connected recurrent layer: ``SimpleRNN(32, activation="relu")`` over (None, timesteps, features)."""

    def __init__(
        self,
        units: int,
        activation: str | None = "tanh",
        use_bias: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            return_sequences=return_sequences,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            **kwargs,
        )


class LSTM(_RNN):
    """Long short-term memory: ``LSTM(50, activation="relu", return_sequences=True, dropout=0.2)``."""

    _kind = "lstm"


class GRU(_RNN):
    """Gated recurrent unit (Keras' reset_after=True form, which is PyTorch's)."""

    _kind = "gru"

    def __init__(self, units: int, reset_after: bool = True, **kwargs: Any) -> None:
        if reset_after is not True:
            raise InvalidConfigError(
                "`GRU(reset_after=False)` is not supported; dlpipe.keras' GRU is Keras' default reset_after=True form."
            )
        super().__init__(units, **kwargs)

    @classmethod
    def _known_keywords(cls) -> list[str]:
        return [*_RNN._known_keywords(), "reset_after"]


class Bidirectional(Layer):
    """Run a recurrent layer both ways and concatenate: ``Bidirectional(LSTM(32, dropout=0.2))``."""

    def __init__(self, layer: _RNN, merge_mode: str = "concat", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(layer, _RNN):
            raise InvalidConfigError(
                f"Bidirectional wraps SimpleRNN, LSTM or GRU, not {type(layer).__name__}."
            )
        if merge_mode != "concat":
            raise InvalidConfigError(
                f"`Bidirectional(merge_mode=...)` is {merge_mode!r}; only 'concat' is supported."
            )
        self.layer = layer

    def get_config(self) -> dict[str, Any]:
        return {
            **self._base_config(),
            "layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()},
        }

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        return self.layer.build(shape, bidirectional=True)

    def penalty_terms(self) -> list[tuple[Regularizer, torch.Tensor]]:
        self.layer.module = self.module
        return self.layer.penalty_terms()

    def _keras_weights(self, module: nn.Module) -> list[np.ndarray]:
        return self.layer._keras_weights(module)

    def _set_keras_weights(self, module: nn.Module, arrays: list[np.ndarray]) -> None:
        self.layer._set_keras_weights(module, arrays)
