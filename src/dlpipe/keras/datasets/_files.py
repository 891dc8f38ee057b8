"""Where the offline data sets are looked for (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlpipe.core.errors import InvalidInputError, UnsupportedFileError

__all__ = ["cache_dir", "candidates", "read_npz"]


def cache_dir(name: str) -> Path:
    """``$DLPIPE_DATASETS/<name>``, by default ``~/.cache/dlpipe/datasets/<name>``."""
    root = os.environ.get("DLPIPE_DATASETS") or str(Path.home() / ".cache" / "dlpipe" / "datasets")
    return Path(root) / name


def candidates(name: str, path: str | Path | None, keras_file: str) -> list[Path]:
    """The places to look, in order: ``path`` alone when given, else the cache folder and Keras' cache file."""
    if path is not None:
        return [Path(path).expanduser()]
    return [cache_dir(name), Path.home() / ".keras" / "datasets" / keras_file]


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` file (plain arrays only: ``allow_pickle=False``)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise InvalidInputError(
                    f"{str(path)!r} holds the arrays {data.files} but needs {list(keys)}; pass the file Keras distributes."
                )
            return {k: data[k] for k in keys}
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise UnsupportedFileError(
            f"{str(path)!r} could not be read as an .npz file of plain arrays ({exc}); pass the file Keras distributes."
        ) from None
