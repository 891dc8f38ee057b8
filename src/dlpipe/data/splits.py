"""Seeded train/validation/test splits, stratified for classification."""

from __future__ import annotations

import warnings

import numpy as np

from dlpipe.core.errors import DataWarning

__all__ = ["split_indices", "MIN_ROWS_TO_SPLIT"]

MIN_ROWS_TO_SPLIT = 20


def split_indices(
    n: int,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return sorted index arrays (train, val, test) for ``n`` rows.

    With ``stratify`` (class codes), each class is split in the same proportions. Fewer than
    :data:`MIN_ROWS_TO_SPLIT` rows cannot be held out honestly: every split is then the whole table,
    and a warning says so (the XOR table of four rows is the classic case).

    Example:
        >>> tr, va, te = split_indices(10 * 10, val_fraction=0.2, test_fraction=0.2, seed=0)
        >>> len(tr), len(va), len(te)
        (60, 20, 20)
    """
    everything = np.arange(n)
    if n < MIN_ROWS_TO_SPLIT:
        warnings.warn(
            DataWarning(
                f"only {n} rows: too few to hold out validation and test rows, so the model is trained, "
                "validated and tested on the same rows (the scores say nothing about new data)."
            ),
            stacklevel=2,
        )
        return everything, everything, everything
    rng = np.random.default_rng(seed)
    groups = (
        [everything]
        if stratify is None
        else [np.flatnonzero(stratify == c) for c in np.unique(stratify)]
    )
    train, val, test = [], [], []
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        # Keep at least one row of each class in training whenever the class has one to spare.
        if n_test + n_val >= len(idx):
            n_test = min(n_test, max(len(idx) - 1, 0) // 2)
            n_val = min(n_val, max(len(idx) - 1 - n_test, 0))
        test.append(idx[:n_test])
        val.append(idx[n_test : n_test + n_val])
        train.append(idx[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in (train, val, test))  # type: ignore[return-value]
