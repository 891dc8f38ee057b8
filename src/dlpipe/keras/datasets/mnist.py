"""MNIST from its IDX files (or Keras' ``mnist.npz``) already on this machine; never downloaded.

``load_data(path=None)`` looks in ``path`` (a folder with the four IDX files, gzipped or not, or an
``mnist.npz``), else in ``$DLPIPE_DATASETS/mnist`` (default ``~/.cache/dlpipe/datasets/mnist``), else
in Keras' cache ``~/.keras/datasets/mnist.npz``. It returns Keras' arrays:
``(x_train, y_train), (x_test, y_test)`` with uint8 images of shape (N, 28, 28) and uint8 labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core.errors import UnsupportedFileError
from dlpipe.keras.datasets._files import cache_dir, candidates, read_npz

__all__ = ["load_data"]

_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def load_data(
    path: str | Path | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)``: 60,000 + 10,000 uint8 digits (N, 28, 28) and their labels."""
    from dlpipe.data.arrays import read_idx

    for place in candidates("mnist", path, "mnist.npz"):
        if place.is_file():
            arrays = read_npz(place, tuple(_FILES))
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
        if place.is_dir():
            found = {k: _idx(place, stem) for k, stem in _FILES.items()}
            if all(found.values()):
                a = {k: read_idx(p) for k, p in found.items() if p is not None}
                return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])
            if path is not None:
                missing = [_FILES[k] + ".gz" for k, p in found.items() if p is None]
                raise UnsupportedFileError(
                    f"folder {str(place)!r} lacks the MNIST files {missing}; put the four IDX files (train-images-idx3-ubyte.gz, "
                    "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) there."
                )
    where = (
        repr(str(path))
        if path is not None
        else f"{str(cache_dir('mnist'))!r} or ~/.keras/datasets/mnist.npz"
    )
    raise UnsupportedFileError(
        f"MNIST was not found in {where} and dlpipe never downloads data; copy the four IDX files "
        f"(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
        f"into {str(cache_dir('mnist'))!r} (or set DLPIPE_DATASETS), or pass load_data(path=<folder or mnist.npz>)."
    )
