"""Keras optimizers by name or object, mapped onto dlpipe's flat fused optimiser (Keras' defaults kept)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dlpipe.core.errors import InvalidConfigError, suggest

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "RMSprop", "resolve_optimizer"]


@dataclass
class Optimizer:
    kind: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    rho: float = 0.9

    def get_config(self) -> dict[str, Any]:
        return asdict(self)


def Adam(
    learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7
) -> Optimizer:  # noqa: N802
    return Optimizer("adam", learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


def AdamW(
    learning_rate: float = 1e-3,
    weight_decay: float = 0.004,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> Optimizer:  # noqa: N802
    return Optimizer(
        "adamw",
        learning_rate,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
    )


def SGD(learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> Optimizer:  # noqa: N802
    return Optimizer("sgd", learning_rate, momentum=momentum, nesterov=nesterov)


def RMSprop(
    learning_rate: float = 1e-3, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7
) -> Optimizer:  # noqa: N802
    return Optimizer("rmsprop", learning_rate, momentum=momentum, rho=rho, epsilon=epsilon)


_BY_NAME: dict[str, Any] = {"adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop}


def resolve_optimizer(optimizer: Any) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        opt = optimizer
    elif isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        opt = _BY_NAME[optimizer.lower()]()
    elif isinstance(optimizer, dict):
        opt = Optimizer(**optimizer)
    else:
        raise InvalidConfigError(
            f"unknown optimizer {optimizer!r}{suggest(str(optimizer).lower(), _BY_NAME)}; known optimizers are: {', '.join(_BY_NAME)} (by name or as dlpipe.keras.optimizers.Adam(learning_rate=...))."
        )
    if not (isinstance(opt.learning_rate, (int, float)) and opt.learning_rate > 0):
        raise InvalidConfigError(
            f"`learning_rate` is {opt.learning_rate!r} but must be a positive number."
        )
    return opt
