"""Keras' small helpers: ``to_categorical`` and ``set_random_seed``."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError

__all__ = ["to_categorical", "set_random_seed"]


def to_categorical(y: Any, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels (n,) -> one-hot float32 (n, num_classes)."""
    codes = np.asarray(y).reshape(-1)
    if codes.size and (codes.min() < 0 or not np.all(np.equal(np.mod(codes, 1), 0))):
        raise InvalidInputError(
            "`to_categorical` needs integer class labels >= 0; encode the labels first, e.g. with np.unique(y, return_inverse=True)."
        )
    codes = codes.astype(np.int64)
    n = int(num_classes if num_classes is not None else (codes.max() + 1 if codes.size else 0))
    if codes.size and codes.max() >= n:
        raise InvalidInputError(
            f"`y` holds class {int(codes.max())} but `num_classes` is {n}; pass num_classes > {int(codes.max())}."
        )
    return np.eye(n, dtype=np.float32)[codes]


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (weights and batch order follow from it)."""
    from dlpipe.core.runtime import seed_everything

    seed_everything(seed)
