"""Keras loss names mapped onto losses computed on logits.

``binary_crossentropy`` after a ``sigmoid`` last layer and the two categorical cross-entropies after
a ``softmax`` last layer are computed with PyTorch's logits-based losses: the model trains on the
last layer's pre-activation output and the activation is applied only in ``predict``, so there is
never a double activation and no ``log(0)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from dlpipe.core.errors import InvalidConfigError, format_names, suggest

__all__ = [
    "Loss",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "Huber",
    "resolve_loss",
    "LOSSES",
]


@dataclass
class Loss:
    """A loss by Keras name; ``from_logits=True`` means the last layer has no activation."""

    name: str = "mse"
    from_logits: bool = False

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "from_logits": self.from_logits}


def BinaryCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802 - Keras' names
    return Loss("binary_crossentropy", from_logits)


def CategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802
    return Loss("categorical_crossentropy", from_logits)


def SparseCategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802
    return Loss("sparse_categorical_crossentropy", from_logits)


def MeanSquaredError() -> Loss:  # noqa: N802
    return Loss("mse")


def MeanAbsoluteError() -> Loss:  # noqa: N802
    return Loss("mae")


def Huber() -> Loss:  # noqa: N802
    return Loss("huber")


LOSSES = {
    "binary_crossentropy": "binary_crossentropy",
    "bce": "binary_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "cce": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "mse": "mse",
    "mean_squared_error": "mse",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "huber": "huber",
    "huber_loss": "huber",
}
_FOLDS = {
    "binary_crossentropy": "sigmoid",
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
}


def resolve_loss(loss: Any) -> Loss:
    if isinstance(loss, Loss):
        key = loss.name
        from_logits = loss.from_logits
    elif isinstance(loss, str):
        key, from_logits = loss.lower(), False
    else:
        raise InvalidConfigError(
            f"`loss` is {loss!r} but must be a loss name such as 'binary_crossentropy' or a dlpipe.keras.losses object."
        )
    if key not in LOSSES:
        raise InvalidConfigError(
            f"unknown loss {loss!r}{suggest(key, LOSSES)}; known losses are: {format_names(sorted(set(LOSSES)), limit=20)}."
        )
    return Loss(LOSSES[key], from_logits)


def folded_activation(loss: Loss, last_activation: str, last_units: int, last_layer: str) -> bool:
    """Whether the last layer's activation is folded into the loss; raise when the pair does not fit."""
    want = _FOLDS.get(loss.name)
    if want is None:
        return False
    if loss.from_logits:
        if last_activation != "linear":
            raise InvalidConfigError(
                f"loss {loss.name!r} with from_logits=True expects a last layer without activation but the last layer is {last_layer}; drop the activation or use from_logits=False."
            )
        return False
    if last_activation == want and not (want == "softmax" and last_units < 2):
        return True
    if loss.name == "binary_crossentropy":
        hint = (
            "use loss='categorical_crossentropy' (one-hot labels) or 'sparse_categorical_crossentropy' (integer labels)"
            if last_activation == "softmax"
            else "end the model with Dense(1, activation='sigmoid') or pass losses.BinaryCrossentropy(from_logits=True)"
        )
        expected = "activation='sigmoid' (a probability per output)"
    else:
        hint = (
            "use loss='binary_crossentropy' with Dense(1, activation='sigmoid') for two classes"
            if last_activation == "sigmoid" or last_units < 2
            else "end the model with Dense(n_classes, activation='softmax') or pass from_logits=True"
        )
        expected = "activation='softmax' over 2 or more units"
    raise InvalidConfigError(
        f"loss {loss.name!r} expects a last layer with {expected} but the last layer is {last_layer}; {hint}."
    )


def loss_function(loss: Loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss on the network's output (logits when the activation is folded)."""
    if loss.name == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits
    if loss.name == "categorical_crossentropy":
        return F.cross_entropy  # float one-hot (or soft) targets
    if loss.name == "sparse_categorical_crossentropy":
        return lambda z, y: F.cross_entropy(z, y.long())
    if loss.name == "mae":
        return F.l1_loss
    if loss.name == "huber":
        return F.huber_loss
    return F.mse_loss
