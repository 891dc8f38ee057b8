"""Keras-style layers: JSON-configured descriptions that build PyTorch modules for a known input shape.

Shapes follow Keras (channels-last images ``(H, W, C)``, sequences ``(T, F)``); each layer's
module converts to PyTorch's layout internally, so ``Flatten`` after ``Conv2D`` gives the same
feature order as Keras. Weights start as Keras starts them (Glorot-uniform kernels, zero biases,
orthogonal recurrent kernels, LSTM forget-gate bias 1).
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import DlpipeError, InvalidConfigError, format_names, suggest

__all__ = [
    "Layer",
    "Input",
    "KerasTensor",
    "Dense",
    "Activation",
    "Dropout",
    "BatchNormalization",
    "Flatten",
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "Embedding",
    "ACTIVATIONS",
    "activation_module",
    "layer_from_config",
    "LAYERS",
]

Shape = tuple[int, ...]

ACTIVATIONS: dict[str, Any] = {
    "linear": None,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


def check_activation(name: Any, where: str) -> str:
    key = "linear" if name is None else name
    if not isinstance(key, str) or key not in ACTIVATIONS:
        raise InvalidConfigError(
            f"{where} got activation {name!r}{suggest(str(name), ACTIVATIONS)}; known activations are: {', '.join(ACTIVATIONS)}."
        )
    return key


def activation_module(name: str) -> nn.Module | None:
    factory = ACTIVATIONS[name]
    return None if factory is None else factory()


class KerasTensor:
    """A symbolic tensor of the functional API: a shape and the layer that produced it."""

    def __init__(
        self, shape: Shape, layer: Layer | None = None, parent: KerasTensor | None = None
    ) -> None:
        self.shape = (None, *shape)
        self.layer = layer
        self.parent = parent

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}>"


def Input(shape: tuple[int, ...] | list[int], name: str | None = None) -> KerasTensor:  # noqa: N802 - Keras' name
    """The model's input (without the batch axis), e.g. ``Input(shape=(20,))`` or ``Input(shape=(28, 28, 1))``."""
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if not dims or any(not isinstance(d, int) or d < 1 for d in dims):
        raise InvalidConfigError(
            f"`Input(shape=...)` is {shape!r} but must be a tuple of positive integers such as (20,) or (28, 28, 1)."
        )
    return KerasTensor(dims)


class Layer(abc.ABC):
    """Base class: a name, a JSON config, and ``build(input_shape) -> (module, output_shape)``."""

    _counts: dict[str, int] = {}

    def __init__(
        self, name: str | None = None, input_shape: Any = None, input_dim: int | None = None
    ) -> None:
        kind = type(self).__name__
        base = "".join(
            "_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(kind)
        )
        Layer._counts[base] = Layer._counts.get(base, 0) + 1
        self.name = name or (
            base if Layer._counts[base] == 1 else f"{base}_{Layer._counts[base] - 1}"
        )
        self.input_shape: Shape | None = None
        if input_shape is not None:
            self.input_shape = tuple(input_shape)
        elif input_dim is not None:
            self.input_shape = (int(input_dim),)
        self.activation = "linear"

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The layer's arguments as JSON (what `save` writes)."""

    @abc.abstractmethod
    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        """The torch module for an input of ``shape`` and the output shape."""

    def __call__(self, x: KerasTensor) -> KerasTensor:
        if not isinstance(x, KerasTensor):
            raise InvalidConfigError(
                f"layer {self.name!r} was called on {type(x).__name__}; in the functional API call layers on Input(...) or on another layer's output, and use model.predict(x) for arrays."
            )
        _, out = self.build(tuple(x.shape[1:]))  # type: ignore[arg-type]
        return KerasTensor(out, self, x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k not in ("name",))
        return f"{type(self).__name__}({args})"


def _with_activation(core: nn.Module, activation: str, fold: bool) -> nn.Module:
    act = None if fold else activation_module(activation)
    return core if act is None else nn.Sequential(core, act)


def _glorot(m: nn.Module) -> None:
    for name, p in m.named_parameters():
        if "bias" in name:
            nn.init.zeros_(p)
        elif p.dim() >= 2:
            nn.init.xavier_uniform_(p)


def _positive(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidConfigError(f"{what} is {value!r} but must be a positive integer.")
    return value


class Dense(Layer):
    """A fully connected layer on the last axis: ``Dense(64, activation="relu")``."""

    def __init__(
        self, units: int, activation: str | None = None, use_bias: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.units = _positive(units, "`Dense(units=...)`")
        self.activation = check_activation(activation, "Dense")
        self.use_bias = use_bias

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
        }

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        core = nn.Linear(shape[-1], self.units, bias=self.use_bias)
        _glorot(core)
        return _with_activation(core, self.activation, fold_activation), (*shape[:-1], self.units)


class Activation(Layer):
    """An activation on its own: ``Activation("softmax")``."""

    def __init__(self, activation: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = check_activation(activation, "Activation")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "activation": self.activation}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        return _with_activation(nn.Identity(), self.activation, fold_activation), shape


class Dropout(Layer):
    """Zero a ``rate`` share of the inputs during training."""

    def __init__(self, rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (isinstance(rate, (int, float)) and 0 <= rate < 1):
            raise InvalidConfigError(f"`Dropout(rate=...)` is {rate!r} but must be in [0, 1).")
        self.rate = float(rate)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "rate": self.rate}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        return nn.Dropout(self.rate), shape


class _LastAxisBatchNorm(nn.Module):
    def __init__(self, n: int, ndim: int, momentum: float, eps: float) -> None:
        super().__init__()
        self.bn = (nn.BatchNorm2d if ndim == 3 else nn.BatchNorm1d)(n, momentum=momentum, eps=eps)
        self.ndim = ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ndim == 1:
            return self.bn(x)
        if self.ndim == 2:
            return self.bn(x.transpose(1, 2)).transpose(1, 2)  # (B, T, F) -> (B, F, T) and back
        return self.bn(x.permute(0, 3, 1, 2)).permute(
            0, 2, 3, 1
        )  # (B, H, W, C) -> (B, C, H, W) and back


class BatchNormalization(Layer):
    """Normalise the last axis with batch statistics (Keras' momentum 0.99 = PyTorch's 0.01)."""

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "momentum": self.momentum, "epsilon": self.epsilon}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        if len(shape) > 3:
            raise InvalidConfigError(
                f"BatchNormalization got input shape {(None, *shape)} but supports 2-D to 4-D inputs."
            )
        return _LastAxisBatchNorm(shape[-1], len(shape), 1.0 - self.momentum, self.epsilon), shape


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class Flatten(Layer):
    """Flatten everything but the batch axis (channels-last order, as Keras)."""

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        return _Flatten(), (math.prod(shape),)


def _pair(v: Any, what: str) -> tuple[int, int]:
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or any(not isinstance(p, int) or p < 1 for p in pair):
        raise InvalidConfigError(
            f"{what} is {v!r} but must be a positive integer or a pair such as (3, 3)."
        )
    return pair  # type: ignore[return-value]


def _image(shape: Shape, layer: str) -> None:
    if len(shape) != 3:
        raise InvalidConfigError(
            f"{layer} needs channels-last images of shape (None, height, width, channels) but got {(None, *shape)}; reshape the data, e.g. x.reshape(-1, 28, 28, 1)."
        )


class _ChannelsLast(nn.Module):
    """Run a channels-first PyTorch op on a channels-last tensor."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, C) <-> (B, C, H, W)


def _out_len(n: int, k: int, s: int, padding: str) -> int:
    return math.ceil(n / s) if padding == "same" else (n - k) // s + 1


class Conv2D(Layer):
    """A 2-D convolution over channels-last images: ``Conv2D(32, (3, 3), activation="relu")``."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        activation: str | None = None,
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = _positive(filters, "`Conv2D(filters=...)`")
        self.kernel_size = _pair(kernel_size, "`Conv2D(kernel_size=...)`")
        self.strides = _pair(strides, "`Conv2D(strides=...)`")
        if padding not in ("valid", "same"):
            raise InvalidConfigError(
                f"`Conv2D(padding=...)` is {padding!r} but must be 'valid' or 'same'."
            )
        if padding == "same" and self.strides != (1, 1):
            raise InvalidConfigError(
                "`Conv2D(padding='same')` is supported with strides=1 only; use padding='valid' or a pooling layer to downsample."
            )
        self.padding = padding
        self.activation = check_activation(activation, "Conv2D")
        self.use_bias = use_bias

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "activation": self.activation,
            "use_bias": self.use_bias,
        }

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        _image(shape, "Conv2D")
        h, w, c = shape
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        out = (_out_len(h, kh, sh, self.padding), _out_len(w, kw, sw, self.padding), self.filters)
        if out[0] < 1 or out[1] < 1:
            raise InvalidConfigError(
                f"Conv2D {self.name!r} with kernel {self.kernel_size} does not fit its input {(None, *shape)}; use a smaller kernel or padding='same'."
            )
        conv = nn.Conv2d(
            c,
            self.filters,
            self.kernel_size,
            self.strides,
            padding=self.padding,
            bias=self.use_bias,
        )
        _glorot(conv)
        return _with_activation(_ChannelsLast(conv), self.activation, fold_activation), out


class _Pool(Layer):
    _op: type[nn.Module]

    def __init__(
        self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, f"`{type(self).__name__}(pool_size=...)`")
        self.strides = (
            _pair(strides, f"`{type(self).__name__}(strides=...)`")
            if strides is not None
            else self.pool_size
        )
        if padding != "valid":
            raise InvalidConfigError(
                f"`{type(self).__name__}(padding=...)` is {padding!r}; only 'valid' is supported."
            )

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "pool_size": list(self.pool_size), "strides": list(self.strides)}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        _image(shape, type(self).__name__)
        h, w, c = shape
        out = (
            _out_len(h, self.pool_size[0], self.strides[0], "valid"),
            _out_len(w, self.pool_size[1], self.strides[1], "valid"),
            c,
        )
        if out[0] < 1 or out[1] < 1:
            raise InvalidConfigError(
                f"{type(self).__name__} {self.name!r} with pool {self.pool_size} does not fit its input {(None, *shape)}; use a smaller pool_size."
            )
        return _ChannelsLast(self._op(self.pool_size, self.strides)), out


class MaxPooling2D(_Pool):
    """Max over ``pool_size`` windows of channels-last images."""

    _op = nn.MaxPool2d


class AveragePooling2D(_Pool):
    """Mean over ``pool_size`` windows of channels-last images."""

    _op = nn.AvgPool2d


class _Recurrent(nn.Module):
    def __init__(self, rnn: nn.RNNBase, return_sequences: bool) -> None:
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (B, T, D * units)
        if self.return_sequences:
            return out
        if not self.rnn.bidirectional:
            return out[:, -1]
        u = self.rnn.hidden_size
        # forward direction's last step, backward direction's last step (which is time 0)
        return torch.cat([out[:, -1, :u], out[:, 0, u:]], dim=1)


class _RNN(Layer):
    _kind = "rnn"

    def __init__(
        self, units: int, activation: str = "tanh", return_sequences: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.units = _positive(units, f"`{type(self).__name__}(units=...)`")
        self.rnn_activation = check_activation(activation, type(self).__name__)
        if self._kind == "rnn" and self.rnn_activation not in ("tanh", "relu"):
            raise InvalidConfigError(
                f"SimpleRNN supports activation 'tanh' or 'relu', not {activation!r}."
            )
        if self._kind != "rnn" and self.rnn_activation != "tanh":
            raise InvalidConfigError(
                f"{type(self).__name__} supports activation 'tanh' only, not {activation!r}."
            )
        self.return_sequences = bool(return_sequences)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "activation": self.rnn_activation,
            "return_sequences": self.return_sequences,
        }

    def build(
        self, shape: Shape, *, fold_activation: bool = False, bidirectional: bool = False
    ) -> tuple[nn.Module, Shape]:
        if len(shape) != 2:
            raise InvalidConfigError(
                f"{type(self).__name__} needs sequences of shape (None, timesteps, features) but got {(None, *shape)}; reshape the data, e.g. x.reshape(n, timesteps, 1)."
            )
        if self._kind == "rnn":
            rnn: nn.RNNBase = nn.RNN(
                shape[1],
                self.units,
                nonlinearity=self.rnn_activation,
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
        return _Recurrent(rnn, self.return_sequences), out


class SimpleRNN(_RNN):
    """A fully connected recurrent layer: ``SimpleRNN(32)`` over (None, timesteps, features)."""


class LSTM(_RNN):
    """Long short-term memory: ``LSTM(50, return_sequences=True)``."""

    _kind = "lstm"


class GRU(_RNN):
    """Gated recurrent unit (Keras' reset_after=True form, which is PyTorch's)."""

    _kind = "gru"


class Bidirectional(Layer):
    """Run a recurrent layer both ways and concatenate: ``Bidirectional(LSTM(32))``."""

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
            "name": self.name,
            "layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()},
        }

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        return self.layer.build(shape, bidirectional=True)


class _Embedding(nn.Module):
    def __init__(self, n: int, d: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(n, d)
        nn.init.uniform_(self.emb.weight, -0.05, 0.05)  # Keras' default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x.long())


class Embedding(Layer):
    """Integer ids to dense vectors: ``Embedding(input_dim=1000, output_dim=16)``."""

    def __init__(self, input_dim: int, output_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocab = _positive(input_dim, "`Embedding(input_dim=...)`")
        self.output_dim = _positive(output_dim, "`Embedding(output_dim=...)`")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "input_dim": self.vocab, "output_dim": self.output_dim}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        return _Embedding(self.vocab, self.output_dim), (*shape, self.output_dim)


LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        Dense,
        Activation,
        Dropout,
        BatchNormalization,
        Flatten,
        Conv2D,
        MaxPooling2D,
        AveragePooling2D,
        SimpleRNN,
        LSTM,
        GRU,
        Bidirectional,
        Embedding,
    )
}


def layer_from_config(item: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``{"class_name": ..., "config": {...}}`` (data only, never code)."""
    name = item.get("class_name")
    if name not in LAYERS:
        raise InvalidConfigError(
            f"unknown layer {name!r}{suggest(str(name), LAYERS)}; known layers are: {format_names(LAYERS)}."
        )
    config = dict(item.get("config", {}))
    if name == "Bidirectional":
        config["layer"] = layer_from_config(config["layer"])
    return LAYERS[name](**config)


class UnknownLayerError(DlpipeError, AttributeError):
    """``layers.<Name>`` where no such layer exists."""


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnknownLayerError(
        f"dlpipe.keras.layers has no layer {name!r}{suggest(name, [*LAYERS, 'Input'])}; known layers are: Input, {format_names(LAYERS, limit=20)}."
    )
