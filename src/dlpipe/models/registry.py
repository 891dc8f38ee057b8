"""``build_model(spec)``: a JSON-able spec (family + sizes) to an ``nn.Module``.

The spec is exactly what the bundle stores, so loading a bundle rebuilds the same network
from data alone, never from code in the bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from dlpipe.core.errors import InvalidConfigError, suggest
from dlpipe.models.mlp import ACTIVATIONS, MLP

__all__ = ["build_model", "register_model", "model_families"]

_BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}


def register_model(family: str) -> Callable[[Callable[[dict[str, Any]], nn.Module]], Callable[[dict[str, Any]], nn.Module]]:
    """Decorator: register a builder ``spec -> nn.Module`` under a family name."""

    def deco(fn: Callable[[dict[str, Any]], nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
        _BUILDERS[family] = fn
        return fn

    return deco


def model_families() -> list[str]:
    return sorted(_BUILDERS)


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Build the network a spec describes.

    Example:
        >>> build_model({"family": "mlp", "n_numeric": 4, "n_outputs": 3, "hidden": [8]})(__import__("torch").zeros(2, 4)).shape
        torch.Size([2, 3])
    """
    family = spec.get("family", "mlp")
    if family not in _BUILDERS:
        raise InvalidConfigError(
            f"unknown model family {family!r}{suggest(family, _BUILDERS)}; known families are: {', '.join(model_families())}."
        )
    return _BUILDERS[family](spec)


@register_model("mlp")
def _build_mlp(spec: dict[str, Any]) -> nn.Module:
    hidden = spec.get("hidden") or [64, 32]
    problems = []
    if any((not isinstance(h, int)) or h < 1 for h in hidden):
        problems.append(f"`hidden` is {hidden!r} but must be a list of positive integers such as [64, 32]")
    activation = spec.get("activation", "relu")
    if activation not in ACTIVATIONS:
        problems.append(f"`activation` is {activation!r}{suggest(activation, ACTIVATIONS)} but must be one of {', '.join(ACTIVATIONS)}")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    return MLP(
        n_numeric=int(spec["n_numeric"]),
        n_outputs=int(spec["n_outputs"]),
        hidden=list(hidden),
        activation=activation,
        dropout=float(spec.get("dropout", 0.0)),
        batch_norm=bool(spec.get("batch_norm", False)),
        cardinalities=list(spec.get("cardinalities", [])),
        embedding_dims=spec.get("embedding_dims"),
    )
