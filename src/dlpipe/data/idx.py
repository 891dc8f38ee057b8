"""Image arrays from files: IDX (MNIST's format, gzip or plain) and NPZ, and channel-layout detection."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.core.errors import DataWarning, InvalidInputError, UnsupportedFileError, format_names

__all__ = ["read_idx", "read_npz_images", "to_nchw", "NPZ_KEYS"]

_IDX_DTYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# (images, labels, test images, test labels) key conventions, first match wins.
NPZ_KEYS: list[tuple[str, str, str | None, str | None]] = [
    ("x_train", "y_train", "x_test", "y_test"),
    ("X_train", "y_train", "X_test", "y_test"),
    ("train_images", "train_labels", "test_images", "test_labels"),
    ("data", "targets", None, None),
    ("images", "labels", None, None),
    ("x", "y", None, None),
    ("X", "y", None, None),
]


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain, detected from its bytes) into an array of its stored dtype.

    Raises:
        UnsupportedFileError: the file is missing, truncated, or its magic number is not IDX.
    """
    p = Path(path)
    if not p.is_file():
        raise UnsupportedFileError(
            f"IDX file {str(p)!r} does not exist; pass the path of e.g. train-images-idx3-ubyte.gz."
        )
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise UnsupportedFileError(
                f"IDX file {str(p)!r} is a damaged gzip file ({exc}); download or copy it again."
            ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        magic = raw[:4].hex() if raw else "(empty file)"
        raise UnsupportedFileError(
            f"{str(p)!r} has the magic number {magic} but an IDX file starts with 0000 then a type byte (08 for uint8) and "
            "the number of dimensions (e.g. 00000803 for images); pass an MNIST-style IDX file."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != need:
        raise UnsupportedFileError(
            f"IDX file {str(p)!r} declares shape {tuple(dims)} ({need} bytes of data) but holds {len(raw) - header}; the file is truncated or damaged."
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )


def read_npz_images(
    path: str | Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(images, labels, test images or None, test labels or None) from an NPZ with known key names."""
    p = Path(path)
    if not p.is_file():
        raise UnsupportedFileError(
            f"NPZ file {str(p)!r} does not exist; pass the path of an .npz file."
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise UnsupportedFileError(
            f"{str(p)!r} could not be read as NPZ without pickle ({exc}); save it with np.savez of plain arrays."
        ) from None
    for xk, yk, xtk, ytk in NPZ_KEYS:
        if xk in arrays and yk in arrays:
            has_test = xtk is not None and ytk is not None and xtk in arrays and ytk in arrays
            return (
                arrays[xk],
                arrays[yk],
                arrays[xtk] if has_test else None,
                arrays[ytk] if has_test else None,
            )  # type: ignore[index]
    conventions = "; ".join(f"{a}/{b}" + (f"/{c}/{d}" if c else "") for a, b, c, d in NPZ_KEYS[:5])
    raise InvalidInputError(
        f"NPZ file {str(p)!r} has the keys {format_names(sorted(arrays)) or '(none)'} but no recognisable image/label pair; "
        f"save the arrays under one of: {conventions}."
    )


def to_nchw(images: Any, *, what: str = "images", channels: int | None = None) -> np.ndarray:
    """A batch of images as (N, C, H, W), detecting HW, HWC and CHW layouts per image.

    ``channels`` (from a trained bundle) resolves layouts that would otherwise be ambiguous.

    Raises:
        InvalidInputError: the layout cannot be told apart (e.g. (N, 3, 3, 3)) or the rank is wrong.

    Example:
        >>> to_nchw(np.zeros((5, 28, 28))).shape, to_nchw(np.zeros((5, 32, 32, 3))).shape
        ((5, 1, 28, 28), (5, 3, 32, 32))
    """
    x = np.asarray(images)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InvalidInputError(
            f"{what} have dtype {x.dtype} but numeric pixel values were expected; pass a numeric array."
        )
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1] or x.shape[1] < 4:
            raise InvalidInputError(
                f"{what} have shape {x.shape}: flat rows of {x.shape[1]} pixels are not a square image; reshape them to (N, H, W) or (N, H, W, C)."
            )
        warnings.warn(
            DataWarning(
                f"{what} are flat rows of {x.shape[1]} pixels; read as {side}x{side} single-channel images."
            ),
            stacklevel=2,
        )
        return x.reshape(len(x), 1, side, side)
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise InvalidInputError(
            f"{what} have shape {x.shape} but (N, H, W), (N, H, W, C) or (N, C, H, W) was expected."
        )
    small = (1, 2, 3, 4)
    first, last = x.shape[1] in small, x.shape[3] in small
    if channels is not None and first and last and x.shape[1] != x.shape[3]:
        first, last = x.shape[1] == channels, x.shape[3] == channels
    if first and last:
        raise InvalidInputError(
            f"{what} have shape {x.shape}: the channel axis could be axis 1 (CHW) or axis 3 (HWC); "
            "transpose them to (N, H, W, C) with images larger than 4x4, or pass (N, C, H, W) with an unambiguous size."
        )
    if last:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if first:
        return x
    raise InvalidInputError(
        f"{what} have shape {x.shape} but neither axis 1 nor axis 3 is a channel axis of 1-4 channels; "
        "pass (N, H, W), (N, H, W, C) or (N, C, H, W)."
    )
