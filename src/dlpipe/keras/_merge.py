"""Merging layers of the functional API: ``concatenate``, ``add``, ``subtract``, ``multiply``, ``average``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.keras._layer import KerasTensor, Layer, Shape

__all__ = [
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
]


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
