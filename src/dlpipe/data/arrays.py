"""In-memory arrays as a data kind: images (N, C, H, W) and sequence windows (N, T, F).

``ArrayDataset`` is what the generative fitters train on when the data is not a table: sklearn's
8x8 digits (:func:`load_digits_images`), MNIST from its IDX files (:func:`load_mnist`), an ``.npz``
file with an ``x`` (and optional ``y``) array, or any array you hold. ``ArrayAdapter`` is the bundle
side: it scales raw arrays the same way and checks their shape (JSON state, no code).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dlpipe.core.errors import InvalidInputError, UnsupportedFileError
from dlpipe.data.inputs import PreparedBatch
from dlpipe.data.numbers import check_array

__all__ = [
    "ArrayDataset",
    "ArrayAdapter",
    "load_digits_images",
    "load_mnist",
    "read_idx",
    "load_npz",
]

Modality = Literal["image", "sequence"]


@dataclass
class ArrayDataset:
    """Images (N, C, H, W) or windows (N, T, F) as float32, with optional labels.

    Args:
        x: The samples; images are divided by ``scale`` so pixels land in [0, 1].
        y: Labels (used to colour embeddings and to score anomalies), or None. Defaults to `None`.
        name: A short name for run folders. Defaults to `"arrays"`.
        modality: ``"image"`` or ``"sequence"``. Defaults to `"image"`.
        scale: What raw pixel values are divided by (16 for sklearn digits, 255 for 8-bit images). Defaults to `1.0`.

    Example:
        >>> ds = ArrayDataset(np.zeros((4, 1, 8, 8)), np.arange(4), scale=16.0)
        >>> ds.sample_shape, ds.x.dtype
        ((1, 8, 8), dtype('float32'))
    """

    x: np.ndarray
    y: np.ndarray | None = None
    name: str = "arrays"
    modality: Modality = "image"
    scale: float = 1.0
    target: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "arrays"

    def __post_init__(self) -> None:
        x = np.asarray(self.x)
        if x.ndim == 3 and self.modality == "image":
            x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
        want = 4 if self.modality == "image" else 3
        if x.ndim != want:
            layout = "(N, C, H, W) or (N, H, W)" if self.modality == "image" else "(N, T, F)"
            raise InvalidInputError(
                f"`x` has shape {x.shape} but {self.modality} arrays must be {layout}; reshape the array."
            )
        if len(x) == 0:
            raise InvalidInputError("`x` holds no samples; pass at least one.")
        if not self.meta.get("allow_nonfinite"):
            check_array(x / self.scale if self.scale != 1.0 and x.dtype.kind == "f" else x)
        self.x = (
            (x.astype(np.float32) / np.float32(self.scale))
            if self.scale != 1.0
            else x.astype(np.float32)
        )
        if self.y is not None:
            self.y = np.asarray(self.y)
            if len(self.y) != len(self.x):
                raise InvalidInputError(
                    f"`y` has {len(self.y)} labels but `x` has {len(self.x)} samples; pass one label per sample."
                )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    def __repr__(self) -> str:
        return f"ArrayDataset(name={self.name!r}, modality={self.modality!r}, x={self.x.shape}, labels={self.y is not None})"


def load_digits_images() -> ArrayDataset:
    """sklearn's 1,797 handwritten 8x8 digits as images in [0, 1] (raw values 0..16), labels 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return ArrayDataset(bunch.images[:, None], bunch.target, name="digits", scale=16.0)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST's format, optionally gzipped): a magic number, the dims, raw uint8 data."""
    p = Path(path)
    if not p.is_file():
        raise UnsupportedFileError(f"IDX file {str(p)!r} does not exist; check the path.")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UnsupportedFileError(
            f"{str(p)!r} is not an IDX file of unsigned bytes (bad magic number); pass an MNIST-style .idx or .idx.gz file."
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UnsupportedFileError(
            f"IDX file {str(p)!r} holds {data.size} values but its header says {dims}; the file is truncated."
        )
    return data.reshape(dims)


def load_mnist(
    folder: str | Path, split: Literal["train", "t10k"] = "train", limit: int | None = None
) -> ArrayDataset:
    """MNIST images (N, 1, 28, 28) in [0, 1] and labels from ``<folder>/<split>-images-idx3-ubyte.gz``."""
    root = Path(folder)
    x = read_idx(root / f"{split}-images-idx3-ubyte.gz")
    y = read_idx(root / f"{split}-labels-idx1-ubyte.gz")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return ArrayDataset(x[:, None], y.astype(np.int64), name=f"mnist-{split}", scale=255.0)


def load_npz(path: str | Path, modality: Modality = "image") -> ArrayDataset:
    """An ``.npz`` with ``x`` (and optional ``y``); uint8 images are divided by 255."""
    p = Path(path)
    if not p.is_file():
        raise UnsupportedFileError(f"array file {str(p)!r} does not exist; check the path.")
    with np.load(p, allow_pickle=False) as data:
        if "x" not in data.files:
            raise InvalidInputError(
                f"{str(p)!r} holds the arrays {', '.join(data.files) or 'none'} but needs one named 'x' (and optionally 'y'); save it with np.savez(path, x=..., y=...)."
            )
        x = data["x"]
        y = data["y"] if "y" in data.files else None
    return ArrayDataset(
        x, y, name=p.stem, modality=modality, scale=255.0 if x.dtype == np.uint8 else 1.0
    )


class ArrayAdapter:
    """Bundle input adapter for ``kind="arrays"``: raw arrays -> scaled float32 of the trained shape."""

    def __init__(self, shape: list[int], modality: str = "image", scale: float = 1.0) -> None:
        self.shape, self.modality, self.scale = [int(s) for s in shape], modality, float(scale)

    @property
    def input_names(self) -> list[str]:
        return ["x"]

    def state(self) -> dict[str, Any]:
        return {"shape": self.shape, "modality": self.modality, "scale": self.scale}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ArrayAdapter:
        return cls(state["shape"], state.get("modality", "image"), state.get("scale", 1.0))

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        """An :class:`ArrayDataset`, an ``.npz`` path or a raw array (scaled by the training scale)."""
        import pandas as pd

        y: Any = None
        if isinstance(data, (str, Path)):
            raw = load_npz(data, self.modality)  # type: ignore[arg-type]
            # the training scale applies to the file's raw values, whatever their dtype
            data, y = raw.x * np.float32(raw.scale), raw.y
        if isinstance(data, ArrayDataset):
            x, y = data.x, data.y
        else:
            raw_x = np.asarray(data)
            check_array(
                raw_x / self.scale if self.scale != 1.0 and raw_x.dtype.kind == "f" else raw_x,
                "the input",
            )
            x = raw_x.astype(np.float32) / np.float32(self.scale)
            if x.ndim == len(self.shape) and self.modality == "image":
                x = x[:, None]
        if tuple(x.shape[1:]) != tuple(self.shape):
            raise InvalidInputError(
                f"input samples have shape {tuple(x.shape[1:])} but the model was trained on {tuple(self.shape)}; pass arrays of the training shape."
            )
        targets = pd.Series(y) if with_target and y is not None else None
        return PreparedBatch(
            inputs=[np.ascontiguousarray(x, dtype=np.float32)],
            targets=targets,
            baseline_features=x.reshape(len(x), -1),
        )
