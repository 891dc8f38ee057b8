"""The base of every Keras-style layer: its name, its keyword check, its weights in Keras' layout.

Also the symbolic tensors of the functional API (``Input``, ``KerasTensor``), the activations by
name and Keras' naming rule (``Conv2D`` -> ``conv2d``, then ``conv2d_1``...).
"""

from __future__ import annotations

import abc
import inspect
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError, format_names, suggest
from dlpipe.keras.regularizers import Regularizer, resolve_regularizer

__all__ = [
    "ACTIVATIONS",
    "KerasTensor",
    "Input",
    "Layer",
    "Shape",
    "activation_module",
    "check_activation",
    "clear_names",
    "to_snake_case",
    "unique_name",
    "unknown_keywords",
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


# Keras' initializers by name: (distribution, scale, fan) as its VarianceScaling draws them, or a constant.
INITIALIZERS: dict[str, tuple[str, float, str]] = {
    "glorot_uniform": ("uniform", 1.0, "avg"),
    "glorot_normal": ("truncated", 1.0, "avg"),
    "he_uniform": ("uniform", 2.0, "in"),
    "he_normal": ("truncated", 2.0, "in"),
    "lecun_uniform": ("uniform", 1.0, "in"),
    "lecun_normal": ("truncated", 1.0, "in"),
    "random_normal": ("normal", 0.05, "none"),
    "random_uniform": ("uniform_abs", 0.05, "none"),
    "zeros": ("constant", 0.0, "none"),
    "ones": ("constant", 1.0, "none"),
}


def check_initializer(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.lower() not in INITIALIZERS:
        raise InvalidConfigError(
            f"{where} is {value!r}{suggest(str(value).lower(), INITIALIZERS)} but must be one of: {', '.join(INITIALIZERS)}."
        )
    return value.lower()


def initialize(p: torch.Tensor, name: str) -> None:
    """Fill ``p`` as Keras' initializer ``name`` does (fans of a torch weight: dim 1 x receptive field in, dim 0 out)."""
    kind, scale, fan = INITIALIZERS[name]
    with torch.no_grad():
        if kind == "constant":
            p.fill_(scale)
            return
        if kind == "normal":
            p.normal_(0.0, scale)
            return
        if kind == "uniform_abs":
            p.uniform_(-scale, scale)
            return
        receptive = int(np.prod(p.shape[2:])) if p.dim() > 2 else 1
        fan_in = p.shape[1] * receptive if p.dim() >= 2 else p.shape[0]
        fan_out = p.shape[0] * receptive
        n = (fan_in + fan_out) / 2 if fan == "avg" else fan_in
        if kind == "uniform":
            limit = float(np.sqrt(3.0 * scale / n))
            p.uniform_(-limit, limit)
        else:  # Keras' truncated normal: cut at 2 std, std corrected for the cut
            std = float(np.sqrt(scale / n)) / 0.87962566103423978
            nn.init.trunc_normal_(p, 0.0, std, -2 * std, 2 * std)


def _glorot(m: nn.Module, kernel: str = "glorot_uniform", bias: str = "zeros") -> None:
    for name, p in m.named_parameters():
        if "bias" in name:
            initialize(p, bias)
        elif p.dim() >= 2:
            initialize(p, kernel)


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

    def _init_initializers(self, kernel: Any, bias: Any) -> None:
        kind = type(self).__name__
        self.kernel_initializer = check_initializer(kernel, f"`{kind}(kernel_initializer=...)`")
        self.bias_initializer = check_initializer(bias, f"`{kind}(bias_initializer=...)`")

    def _regularizer_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("kernel_initializer", "bias_initializer"):
            value = getattr(self, key, None)
            if value is not None and value != (
                "zeros" if key.startswith("bias") else "glorot_uniform"
            ):
                out[key] = value
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
