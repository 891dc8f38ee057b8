"""Keras-style layers: JSON-configured descriptions that build PyTorch modules for a known input shape.

Shapes follow Keras (channels-last images ``(H, W, C)``, sequences ``(T, F)``); each layer's
module converts to PyTorch's layout internally, so ``Flatten`` after ``Conv2D`` gives the same
feature order as Keras. Weights start as Keras starts them (Glorot-uniform kernels, zero biases,
orthogonal recurrent kernels, LSTM forget-gate bias 1), are named as Keras names them (``dense``,
``dense_1``, ``conv2d``...) and ``get_weights``/``set_weights`` use Keras' layout (a Dense kernel is
``(inputs, units)``, a Conv2D kernel ``(kh, kw, in, out)``).
"""

from __future__ import annotations

import abc
import inspect
import math
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import DlpipeError, InvalidConfigError, format_names, suggest
from dlpipe.keras._recurrent import (
    RecurrentModule,
    check_rate,
    rnn_keras_weights,
    set_rnn_keras_weights,
)
from dlpipe.keras.regularizers import Regularizer, resolve_regularizer

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

Shape = tuple[int, ...]

ACTIVATIONS: dict[str, Any] = {
    "linear": None,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,  # Keras 3's relu6(x + 3) / 6
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


def to_snake_case(name: str) -> str:
    """Keras' rule for default layer names: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_NAME_COUNTS: dict[str, int] = {}


def unique_name(base: str) -> str:
    """``base``, then ``base_1``, ``base_2``... in this process (Keras' counter; ``utils.clear_session`` resets it)."""
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def clear_names() -> None:
    _NAME_COUNTS.clear()


def unknown_keywords(where: str, unknown: dict[str, Any], known: list[str]) -> InvalidConfigError:
    """One sentence for keyword arguments a function does not take, with the closest known name."""
    parts = [f"`{k}`{suggest(k, known)}" for k in unknown]
    noun = "argument" if len(parts) == 1 else "arguments"
    return InvalidConfigError(
        f"{where} got the unknown keyword {noun} {', '.join(parts)}; it takes: {format_names(known, limit=40)}."
    )


class KerasTensor:
    """A symbolic tensor of the functional API: a shape, the layer that produced it and its inputs."""

    def __init__(
        self,
        shape: Shape,
        layer: Layer | None = None,
        parents: list[KerasTensor] | None = None,
        name: str | None = None,
    ) -> None:
        self.shape = (None, *shape)
        self.layer = layer
        self.parents = parents or []
        self.name = name if layer is None else layer.name

    @property
    def parent(self) -> KerasTensor | None:
        return self.parents[0] if self.parents else None

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape} name={self.name!r}>"


def Input(  # noqa: N802 - Keras' name
    shape: tuple[int, ...] | list[int] | int | None = None,
    name: str | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    **unknown: Any,
) -> KerasTensor:
    """The model's input (without the batch axis), e.g. ``Input(shape=(20,))`` or ``Input(shape=(28, 28, 1))``."""
    if unknown:
        raise unknown_keywords("`Input`", unknown, ["shape", "name", "batch_size", "dtype"])
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if not dims or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in dims):
        raise InvalidConfigError(
            f"`Input(shape=...)` is {shape!r} but must be a tuple of positive integers such as (20,) or (28, 28, 1)."
        )
    return KerasTensor(dims, name=name or unique_name("input_layer"))  # type: ignore[arg-type]


_BASE_KWARGS = [
    "name",
    "input_shape",
    "input_dim",
    "dtype",
    "trainable",
    "batch_input_shape",
    "activity_regularizer",
]


class Layer(abc.ABC):
    """Base class: a name, a JSON config, and ``build(input_shape) -> (module, output_shape)``.

    After its model is built, ``get_weights()``/``set_weights()`` read and write the layer's weights in
    Keras' layout (numpy arrays).
    """

    n_inputs = 1  # merge layers take several

    def __init__(
        self,
        name: str | None = None,
        input_shape: Any = None,
        input_dim: int | None = None,
        dtype: Any = None,
        trainable: bool = True,
        batch_input_shape: Any = None,
        activity_regularizer: Any = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise unknown_keywords(f"`{type(self).__name__}`", unknown, self._known_keywords())
        if trainable is not True:
            raise InvalidConfigError(
                f"`{type(self).__name__}(trainable=...)` is {trainable!r}; dlpipe.keras trains every layer, so leave it True."
            )
        if dtype not in (None, "float32", torch.float32, np.float32):
            raise InvalidConfigError(
                f"`{type(self).__name__}(dtype=...)` is {dtype!r}; dlpipe.keras computes in float32, so leave it out."
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidConfigError(
                f"`{type(self).__name__}(name=...)` is {name!r} but must be a non-empty string."
            )
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self.input_shape: Shape | None = None
        if input_shape is not None:
            self.input_shape = tuple(input_shape)
        elif batch_input_shape is not None:
            self.input_shape = tuple(batch_input_shape)[1:]
        elif input_dim is not None:
            self.input_shape = (int(input_dim),)
        self.activation = "linear"
        self.activity_regularizer = resolve_regularizer(
            activity_regularizer, f"{type(self).__name__}(activity_regularizer=...)"
        )
        self.module: nn.Module | None = None  # set when a model builds the layer

    @classmethod
    def _known_keywords(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters
        own = [n for n, p in params.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        return own + [k for k in _BASE_KWARGS if k not in own]

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The layer's arguments as JSON (what `save` writes)."""

    def _base_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.name}
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = self.activity_regularizer.get_config()
        return cfg

    @abc.abstractmethod
    def build(self, shape: Any, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        """The torch module for an input of ``shape`` and the output shape."""

    def __call__(self, x: Any) -> KerasTensor:
        inputs = list(x) if isinstance(x, (list, tuple)) else [x]
        if not inputs or not all(isinstance(t, KerasTensor) for t in inputs):
            got = type(x).__name__ if not inputs else type(inputs[0]).__name__
            raise InvalidConfigError(
                f"layer {self.name!r} was called on {got}; in the functional API call layers on Input(...) or on another layer's output, and use model.predict(x) for arrays."
            )
        if self.n_inputs == 1 and len(inputs) != 1:
            raise InvalidConfigError(
                f"layer {self.name!r} takes one input but was called on {len(inputs)}; merge them first with layers.concatenate([...]) or layers.add([...])."
            )
        shapes: Any = [tuple(t.shape[1:]) for t in inputs]
        _, out = self.build(shapes if self.n_inputs != 1 else shapes[0])
        return KerasTensor(out, self, inputs)

    # ------------------------------------------------------------------ weights
    def _require_module(self, what: str) -> nn.Module:
        if self.module is None:
            raise InvalidConfigError(
                f"`{self.name}.{what}()` needs the layer's weights, which exist once its model is built; give the model an Input(shape=...) (or input_shape= on the first layer), or call fit() first."
            )
        return self.module

    def _keras_weights(self, module: nn.Module) -> list[np.ndarray]:
        return []

    def _set_keras_weights(self, module: nn.Module, arrays: list[np.ndarray]) -> None:
        return None

    def get_weights(self) -> list[np.ndarray]:
        """The layer's weights as numpy arrays in Keras' layout (a Dense layer: ``[kernel (in, units), bias (units,)]``)."""
        return self._keras_weights(self._require_module("get_weights"))

    def set_weights(self, weights: list[Any]) -> None:
        """Replace the weights with arrays of the shapes :meth:`get_weights` returns."""
        module = self._require_module("set_weights")
        current = self._keras_weights(module)
        arrays = [np.asarray(w, dtype=np.float32) for w in weights]
        want = [tuple(a.shape) for a in current]
        got = [tuple(a.shape) for a in arrays]
        if want != got:
            raise InvalidConfigError(
                f"`{self.name}.set_weights()` got {len(arrays)} arrays of shapes {got} but the layer has {len(current)} of shapes {want}; pass arrays shaped as get_weights() returns them."
            )
        self._set_keras_weights(module, arrays)

    @property
    def weights(self) -> list[np.ndarray]:
        return self.get_weights()

    # ------------------------------------------------------------------ penalties
    def penalty_terms(self) -> list[tuple[Regularizer, torch.Tensor]]:
        """``(regularizer, weight)`` pairs added to the loss (kernel/bias/recurrent regularizers)."""
        return []

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k not in ("name",))
        return f"{type(self).__name__}({args})"


def _with_activation(core: nn.Module, activation: str, fold: bool) -> nn.Module:
    act = None if fold else activation_module(activation)
    return core if act is None else nn.Sequential(core, act)


def _find(module: nn.Module, kind: type[nn.Module]) -> Any:
    return next(m for m in module.modules() if isinstance(m, kind))


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


def _copy(p: torch.Tensor, value: np.ndarray) -> None:
    with torch.no_grad():
        p.copy_(torch.as_tensor(np.ascontiguousarray(value), dtype=p.dtype))


class _Regularized(Layer):
    """A layer with a kernel and a bias that may carry Keras regularizers."""

    def _init_regularizers(self, kernel: Any, bias: Any) -> None:
        kind = type(self).__name__
        self.kernel_regularizer = resolve_regularizer(kernel, f"{kind}(kernel_regularizer=...)")
        self.bias_regularizer = resolve_regularizer(bias, f"{kind}(bias_regularizer=...)")

    def _regularizer_config(self) -> dict[str, Any]:
        out = {}
        for key in ("kernel_regularizer", "bias_regularizer", "recurrent_regularizer"):
            reg = getattr(self, key, None)
            if reg is not None:
                out[key] = reg.get_config()
        return out

    def _kernel_and_bias(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def penalty_terms(self) -> list[tuple[Regularizer, torch.Tensor]]:
        if self.module is None:
            return []
        kernel, bias = self._kernel_and_bias(self.module)
        terms = []
        if self.kernel_regularizer is not None:
            terms.append((self.kernel_regularizer, kernel))
        if self.bias_regularizer is not None and bias is not None:
            terms.append((self.bias_regularizer, bias))
        return terms


class Dense(_Regularized):
    """A fully connected layer on the last axis: ``Dense(64, activation="relu", kernel_regularizer=regularizers.l2(0.001))``."""

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        _glorot(core)
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
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
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
        _glorot(conv)
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


# ---------------------------------------------------------------------- merging (functional API)
class _MergeModule(nn.Module):
    def __init__(self, op: str, axis: int) -> None:
        super().__init__()
        self.op, self.axis = op, axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op == "concatenate":
            return torch.cat(xs, dim=self.axis)
        if self.op == "subtract":
            return xs[0] - xs[1]
        out = xs[0]
        for x in xs[1:]:
            out = out * x if self.op == "multiply" else out + x
        return out / len(xs) if self.op == "average" else out


class _Merge(Layer):
    n_inputs = 2  # two or more
    _op = "add"

    def get_config(self) -> dict[str, Any]:
        return self._base_config()

    def _check(self, shapes: list[Shape]) -> None:
        if not isinstance(shapes, list) or len(shapes) < 2:
            raise InvalidConfigError(
                f"{type(self).__name__} {self.name!r} merges a list of at least two tensors; call it as layers.{type(self).__name__}()([a, b])."
            )
        if self._op == "subtract" and len(shapes) != 2:
            raise InvalidConfigError(
                f"Subtract {self.name!r} takes exactly two tensors but got {len(shapes)}."
            )

    def build(self, shape: Any, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        self._check(shape)
        if any(s != shape[0] for s in shape):
            raise InvalidConfigError(
                f"{type(self).__name__} {self.name!r} needs inputs of one shape but got {[(None, *s) for s in shape]}; use layers.concatenate to join tensors of different widths."
            )
        return _MergeModule(self._op, -1), shape[0]


class Add(_Merge):
    """Sum of tensors of one shape: ``layers.Add()([a, b])`` or ``layers.add([a, b])``."""


class Subtract(_Merge):
    """``a - b``: ``layers.subtract([a, b])``."""

    _op = "subtract"


class Multiply(_Merge):
    """Element-wise product: ``layers.multiply([a, b])``."""

    _op = "multiply"


class Average(_Merge):
    """Element-wise mean: ``layers.average([a, b])``."""

    _op = "average"


class Concatenate(_Merge):
    """Join tensors along ``axis`` (the last by default): ``layers.concatenate([a, b])``."""

    _op = "concatenate"

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, int) or isinstance(axis, bool) or axis == 0:
            raise InvalidConfigError(
                f"`Concatenate(axis=...)` is {axis!r} but must be a non-zero integer (axis 0 is the batch)."
            )
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return {**self._base_config(), "axis": self.axis}

    def build(self, shape: Any, *, fold_activation: bool = False) -> tuple[nn.Module, Shape]:
        self._check(shape)
        rank = len(shape[0])
        axis = self.axis if self.axis > 0 else rank + 1 + self.axis  # counted with the batch axis
        if any(len(s) != rank for s in shape) or not 1 <= axis <= rank:
            raise InvalidConfigError(
                f"Concatenate {self.name!r} cannot join {[(None, *s) for s in shape]} on axis {self.axis}; the inputs need the same rank."
            )
        others = [tuple(d for i, d in enumerate(s) if i != axis - 1) for s in shape]
        if any(o != others[0] for o in others):
            raise InvalidConfigError(
                f"Concatenate {self.name!r} cannot join {[(None, *s) for s in shape]} on axis {self.axis}; all other axes must match."
            )
        out = list(shape[0])
        out[axis - 1] = sum(s[axis - 1] for s in shape)
        return _MergeModule("concatenate", axis), tuple(out)


def concatenate(inputs: list[KerasTensor], axis: int = -1, **kwargs: Any) -> KerasTensor:
    """Functional form of :class:`Concatenate`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of :class:`Add`."""
    return Add(**kwargs)(inputs)


def subtract(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of :class:`Subtract`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of :class:`Multiply`."""
    return Multiply(**kwargs)(inputs)


def average(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of :class:`Average`."""
    return Average(**kwargs)(inputs)


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
