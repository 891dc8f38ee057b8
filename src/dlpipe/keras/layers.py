"""Keras-style layers: JSON-configured descriptions that build PyTorch modules for a known input shape.

Shapes follow Keras (channels-last images ``(H, W, C)``, sequences ``(T, F)``); each layer's
module converts to PyTorch's layout internally, so ``Flatten`` after ``Conv2D`` gives the same
feature order as Keras. Weights start as Keras starts them (Glorot-uniform kernels, zero biases,
orthogonal recurrent kernels, LSTM forget-gate bias 1), are named as Keras names them (``dense``,
``dense_1``, ``conv2d``...) and ``get_weights``/``set_weights`` use Keras' layout (a Dense kernel is
``(inputs, units)``, a Conv2D kernel ``(kh, kw, in, out)``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import DlpipeError, InvalidConfigError, format_names, suggest
from dlpipe.keras._layer import (
    ACTIVATIONS,
    Input,
    KerasTensor,
    Layer,
    Shape,
    _copy,
    _find,
    _glorot,
    _positive,
    _Regularized,
    _with_activation,
    activation_module,
    check_activation,
)
from dlpipe.keras._merge import (
    Add,
    Average,
    Concatenate,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    multiply,
    subtract,
)
from dlpipe.keras._recurrent import GRU, LSTM, Bidirectional, SimpleRNN

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
    "Concatenate",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "concatenate",
    "add",
    "subtract",
    "multiply",
    "average",
    "ACTIVATIONS",
    "activation_module",
    "layer_from_config",
    "LAYERS",
]


class Dense(_Regularized):
    """A fully connected layer on the last axis: ``Dense(64, activation="relu", kernel_regularizer=regularizers.l2(0.001))``."""

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_initializers(kernel_initializer, bias_initializer)
        self.units = _positive(units, "`Dense(units=...)`")
        self.activation = check_activation(activation, "Dense")
        self.use_bias = bool(use_bias)
        self._init_regularizers(kernel_regularizer, bias_regularizer)

    def get_config(self) -> dict[str, Any]:
        return {
            **self._base_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            **self._regularizer_config(),
        }

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        core = nn.Linear(shape[-1], self.units, bias=self.use_bias)
        _glorot(core, self.kernel_initializer, self.bias_initializer)
        return _with_activation(core, self.activation, fold_activation), (*shape[:-1], self.units)

    def _kernel_and_bias(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        lin = _find(module, nn.Linear)
        return lin.weight, lin.bias

    def _keras_weights(self, module: nn.Module) -> list[np.ndarray]:
        lin = _find(module, nn.Linear)
        out = [lin.weight.detach().cpu().numpy().T.copy()]  # (units, in) -> Keras' (in, units)
        return out + ([lin.bias.detach().cpu().numpy().copy()] if lin.bias is not None else [])

    def _set_keras_weights(self, module: nn.Module, arrays: list[np.ndarray]) -> None:
        lin = _find(module, nn.Linear)
        _copy(lin.weight, arrays[0].T)
        if lin.bias is not None:
            _copy(lin.bias, arrays[1])


class Activation(Layer):
    """An activation on its own: ``Activation("softmax")``."""

    def __init__(self, activation: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = check_activation(activation, "Activation")

    def get_config(self) -> dict[str, Any]:
        return {**self._base_config(), "activation": self.activation}

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
        return {**self._base_config(), "rate": self.rate}

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
        return self.bn(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, C) <-> (B, C, H, W)


class BatchNormalization(Layer):
    """Normalise the last axis with batch statistics (Keras' momentum 0.99 = PyTorch's 0.01)."""

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**self._base_config(), "momentum": self.momentum, "epsilon": self.epsilon}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        if len(shape) > 3:
            raise InvalidConfigError(
                f"BatchNormalization got input shape {(None, *shape)} but supports 2-D to 4-D inputs."
            )
        return _LastAxisBatchNorm(shape[-1], len(shape), 1.0 - self.momentum, self.epsilon), shape

    def _keras_weights(self, module: nn.Module) -> list[np.ndarray]:
        bn = _find(module, nn.modules.batchnorm._BatchNorm)
        return [
            t.detach().cpu().numpy().copy()
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)
        ]

    def _set_keras_weights(self, module: nn.Module, arrays: list[np.ndarray]) -> None:
        bn = _find(module, nn.modules.batchnorm._BatchNorm)
        for t, a in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), arrays):
            _copy(t, a)


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class Flatten(Layer):
    """Flatten everything but the batch axis (channels-last order, as Keras)."""

    def get_config(self) -> dict[str, Any]:
        return self._base_config()

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


class Conv2D(_Regularized):
    """A 2-D convolution over channels-last images: ``Conv2D(32, (3, 3), activation="relu")``."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_initializers(kernel_initializer, bias_initializer)
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
        self.use_bias = bool(use_bias)
        self._init_regularizers(kernel_regularizer, bias_regularizer)

    def get_config(self) -> dict[str, Any]:
        return {
            **self._base_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "activation": self.activation,
            "use_bias": self.use_bias,
            **self._regularizer_config(),
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
        _glorot(conv, self.kernel_initializer, self.bias_initializer)
        return _with_activation(_ChannelsLast(conv), self.activation, fold_activation), out

    def _kernel_and_bias(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        conv = _find(module, nn.Conv2d)
        return conv.weight, conv.bias

    def _keras_weights(self, module: nn.Module) -> list[np.ndarray]:
        conv = _find(module, nn.Conv2d)
        # (out, in, kh, kw) -> Keras' (kh, kw, in, out)
        out = [conv.weight.detach().cpu().numpy().transpose(2, 3, 1, 0).copy()]
        return out + ([conv.bias.detach().cpu().numpy().copy()] if conv.bias is not None else [])

    def _set_keras_weights(self, module: nn.Module, arrays: list[np.ndarray]) -> None:
        conv = _find(module, nn.Conv2d)
        _copy(conv.weight, arrays[0].transpose(3, 2, 0, 1))
        if conv.bias is not None:
            _copy(conv.bias, arrays[1])


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
        return {
            **self._base_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
        }

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
        return {**self._base_config(), "input_dim": self.vocab, "output_dim": self.output_dim}

    def build(self, shape: Shape, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        return _Embedding(self.vocab, self.output_dim), (*shape, self.output_dim)

    def _keras_weights(self, module: nn.Module) -> list[np.ndarray]:
        return [_find(module, nn.Embedding).weight.detach().cpu().numpy().copy()]

    def _set_keras_weights(self, module: nn.Module, arrays: list[np.ndarray]) -> None:
        _copy(_find(module, nn.Embedding).weight, arrays[0])


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
        Concatenate,
        Add,
        Subtract,
        Multiply,
        Average,
    )
}


def layer_from_config(item: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``{"class_name": ..., "config": {...}}`` (data only, never code)."""
    name = item.get("class_name")
    if name not in LAYERS:
        raise InvalidConfigError(
            f"unknown layer {name!r}{suggest(str(name), LAYERS)}; known layers are: {format_names(LAYERS, limit=30)}."
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
        f"dlpipe.keras.layers has no layer {name!r}{suggest(name, [*LAYERS, 'Input'])}; known layers are: Input, {format_names(LAYERS, limit=30)}."
    )
