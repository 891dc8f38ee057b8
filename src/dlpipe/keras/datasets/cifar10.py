"""CIFAR-10 from its binary batches already on this machine; never downloaded, never unpickled.

Keras reads the "python version" of CIFAR-10, whose batches are pickles: dlpipe does not load
pickles, so it reads the "binary version" (``cifar-10-binary.tar.gz``, extracted: ``data_batch_1.bin``
... ``data_batch_5.bin`` and ``test_batch.bin``, each record one label byte and 3,072 pixel bytes) from
``path`` or ``$DLPIPE_DATASETS/cifar10`` (default ``~/.cache/dlpipe/datasets/cifar10``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core.errors import UnsupportedFileError
from dlpipe.keras.datasets._files import cache_dir

__all__ = ["load_data"]

_RECORD = 1 + 3 * 32 * 32


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise UnsupportedFileError(
            f"{str(path)!r} is not a CIFAR-10 binary batch ({raw.size} bytes is not a multiple of {_RECORD}); use the binary version's .bin files."
        )
    records = raw.reshape(-1, _RECORD)
    x = (
        records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    )  # (N, C, H, W) -> Keras' (N, H, W, C)
    return np.ascontiguousarray(x), records[:, :1].copy()


def load_data(
    path: str | Path | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 32, 32, 3) and (N, 1) labels, as Keras returns them."""
    folder = Path(path).expanduser() if path is not None else cache_dir("cifar10")
    if (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise UnsupportedFileError(
            f"CIFAR-10 was not found in {str(folder)!r} (missing {missing[0]}) and dlpipe never downloads data; "
            f"extract the binary version (cifar-10-binary.tar.gz from the CIFAR-10 site) into {str(cache_dir('cifar10'))!r} "
            "(or set DLPIPE_DATASETS), or pass load_data(path=<folder with data_batch_1.bin ... test_batch.bin>)."
        )
    train = [_batch(folder / n) for n in names[:5]]
    x_test, y_test = _batch(folder / names[5])
    return (np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])), (
        x_test,
        y_test,
    )
