"""The Boston housing prices from Keras' ``boston_housing.npz`` already on this machine; never downloaded.

``load_data(path=None, test_split=0.2, seed=113)`` reads the file (arrays ``x`` (506, 13) and ``y``)
from ``path``, ``$DLPIPE_DATASETS/boston_housing/boston_housing.npz`` or Keras' cache
``~/.keras/datasets/boston_housing.npz``, and splits it as Keras does (a seeded shuffle, the last
``test_split`` share for testing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core.errors import InvalidConfigError, UnsupportedFileError
from dlpipe.keras.datasets._files import cache_dir, candidates, read_npz

__all__ = ["load_data"]


def load_data(
    path: str | Path | None = None, test_split: float = 0.2, seed: int = 113
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)`` split as Keras splits it."""
    if not 0 <= test_split < 1:
        raise InvalidConfigError(f"`test_split` is {test_split!r} but must be in [0, 1).")
    for place in candidates("boston_housing", path, "boston_housing.npz"):
        file = place / "boston_housing.npz" if place.is_dir() else place
        if file.is_file():
            arrays = read_npz(file, ("x", "y"))
            x, y = arrays["x"], arrays["y"]
            rng = np.random.RandomState(seed)
            order = np.arange(len(x))
            rng.shuffle(order)
            x, y = x[order], y[order]
            cut = int(len(x) * (1 - test_split))
            return (x[:cut], y[:cut]), (x[cut:], y[cut:])
    raise UnsupportedFileError(
        "the Boston housing data set was not found and dlpipe never downloads data (it is also no longer shipped by "
        f"scikit-learn); copy Keras' boston_housing.npz (arrays x and y) into {str(cache_dir('boston_housing'))!r}, or pass load_data(path=<file>)."
    )
