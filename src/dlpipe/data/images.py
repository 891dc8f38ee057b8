"""Images: folders of files, a CSV with an image column, NPZ and IDX arrays -> (N, C, H, W) arrays.

Decoding is done once: PIL opens each file, converts it to ``L`` (grey) or ``RGB``, resizes it to one
size, and the decoded set is cached as NPZ keyed by the files (path, size, mtime) and the settings, so
a second run does not decode again. Unreadable files are skipped and listed in one warning
(``strict=True`` makes them an error). :class:`ImagePreprocessor` is the bundle's input adapter: it
applies the same decoding and the per-channel normalisation (fitted on the training split) at predict.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import DataWarning, InvalidInputError, UnsupportedFileError, format_names
from dlpipe.core.files import cache_dir
from dlpipe.data.idx import read_idx, read_npz_images, to_nchw
from dlpipe.data.inputs import PreparedBatch

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IMAGE_SUFFIXES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageDataset",
    "ImagePreprocessor",
    "load_images",
    "load_image_folder",
    "expand_image_paths",
    "is_image_source",
    "detect_image_dataset",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_CACHE_VERSION = 1
_BASELINE_SIDE = 8


@dataclass
class ImageDataset:
    """Images as an (N, C, H, W) array (uint8 when the pixels fit, else float32) with their labels.

    Args:
        images: (N, C, H, W) pixels.
        labels: N labels (class names from folders, or the array's values).
        name: A short name for run folders. Defaults to `"images"`.
        test_images: A held-out test set; then ``images`` is split into train/validation only. Defaults to `None`.
        test_labels: Its labels. Defaults to `None`.
        color: ``"L"``/``"RGB"`` for decoded files, ``None`` for arrays. Defaults to `None`.
        paths: The source file of each image (folders/CSV). Defaults to `None`.

    Example:
        >>> ds = ImageDataset(np.zeros((4, 1, 8, 8), np.uint8), np.array([0, 1, 0, 1]))
        >>> ds.image_shape
        (1, 8, 8)
    """

    images: np.ndarray
    labels: np.ndarray
    name: str = "images"
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    color: str | None = None
    paths: list[str] | None = None
    target: str = "label"
    resize: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "image"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        test = f", test={len(self.test_images)}" if self.test_images is not None else ""
        return f"ImageDataset(name={self.name!r}, images={len(self.images)}, shape={self.image_shape}, classes={len(set(self.labels.tolist()))}{test})"


# ---------------------------------------------------------------------------------------- sources


def is_image_source(data: Any, image_column: str | None = None) -> bool:
    """Is ``data`` something :func:`load_images` reads (a folder of class folders, .npz, IDX, CSV + image column)?"""
    if isinstance(data, ImageDataset):
        return True
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and all(isinstance(a, np.ndarray) for a in data)
        and np.asarray(data[0]).ndim >= 3
    ):
        return True
    if not isinstance(data, (str, Path)):
        return False
    p = Path(data)
    if p.is_dir():
        # photos/<class>/*.png: claim folders of folders (an empty one too, to say what is missing)
        entries = [e for e in p.iterdir() if not e.name.startswith(".")]
        return all(e.is_dir() for e in entries) or any(
            e.suffix.lower() in IMAGE_SUFFIXES for e in entries
        )
    name = p.name.lower()
    if (
        name.endswith(".npz")
        or "idx" in name
        and ("ubyte" in name or name.endswith((".idx", ".gz")))
    ):
        return True
    return image_column is not None and name.endswith((".csv", ".tsv"))


def detect_image_dataset(data: Any, cfg: Any, test: Any = None) -> ImageDataset | None:
    """The ``dl.train`` detector: an :class:`ImageDataset` when ``data`` is an image source, else None."""
    ic = cfg.image
    if cfg.data.task not in ("auto", "binary", "multiclass") or not is_image_source(
        data, ic.image_column
    ):
        return None
    if isinstance(data, (str, Path)) and str(data).lower().endswith(".npz"):
        try:
            x = read_npz_images(data)[0]
        except InvalidInputError:
            with np.load(data, allow_pickle=False) as z:
                if "x" in z.files:
                    return None  # images without labels: the generative arrays kind reads those
            raise
        if np.asarray(x).ndim < 3:
            return None
    return load_images(
        data,
        labels=ic.labels,
        image_column=ic.image_column,
        target=cfg.data.target,
        image_size=ic.image_size,
        color=ic.color,
        resize=ic.resize,
        strict=ic.strict,
        cache=ic.cache,
        test=test,
        name=cfg.name,
    )


def load_images(
    source: Any,
    *,
    labels: str | Path | None = None,
    image_column: str | None = None,
    target: str | None = None,
    image_size: int | tuple[int, int] | list[int] | None = None,
    color: str = "auto",
    resize: bool = True,
    strict: bool = False,
    cache: bool = True,
    test: Any = None,
    name: str | None = None,
) -> ImageDataset:
    """Read images from a folder of class folders, a CSV with an image column, an .npz or IDX files.

    Args:
        source: ``photos/`` (``photos/<class>/*.png``), ``labels.csv`` (with ``image_column`` and
            ``target``), ``mnist.npz``, an IDX images file (with ``labels``), or ``(images, labels)`` arrays.
        labels: The IDX labels file for an IDX images file. Defaults to `None`.
        image_column: The CSV column holding image paths (relative to the CSV's folder). Defaults to `None`.
        target: The CSV label column. Defaults to `"label"`.
        image_size: Resize decoded files to this (height, width) or side. Defaults to the most common size.
        color: ``"auto"`` (grey when every file is grey), ``"grey"`` or ``"rgb"``. Defaults to `"auto"`.
        resize: Allow resizing files of differing sizes; ``False`` makes mixed sizes an error. Defaults to `True`.
        strict: Unreadable files are an error instead of a warning. Defaults to `False`.
        cache: Cache decoded folders/CSVs as NPZ. Defaults to `True`.
        test: A separate test set in any of the same forms. Defaults to `None`.
        name: A short name for run folders. Defaults to the source's name.
    """
    opts = dict(image_size=image_size, color=color, resize=resize, strict=strict, cache=cache)
    if isinstance(source, ImageDataset):
        ds = source
    elif isinstance(source, tuple) and len(source) == 2:
        ds = ImageDataset(
            _storage(to_nchw(source[0])), np.asarray(source[1]).reshape(-1), name=name or "arrays"
        )
    else:
        p = Path(source)
        lower = p.name.lower()
        if p.is_dir():
            ds = load_image_folder(p, **opts)  # type: ignore[arg-type]
        elif not p.exists():
            raise UnsupportedFileError(
                f"image source {str(p)!r} does not exist; pass a folder of class folders, an .npz, an IDX file or a CSV."
            )
        elif lower.endswith(".npz"):
            x, y, xt, yt = read_npz_images(p)
            ds = ImageDataset(
                _storage(to_nchw(x, what=f"images in {p.name}")),
                np.asarray(y).reshape(-1),
                name=p.stem,
            )
            if xt is not None:
                ds.test_images, ds.test_labels = (
                    _storage(to_nchw(xt, what=f"test images in {p.name}")),
                    np.asarray(yt).reshape(-1),
                )
        elif lower.endswith((".csv", ".tsv")):
            if image_column is None:
                raise InvalidInputError(
                    f"{str(p)!r} is a table; to train on the images it lists, pass `image_column` naming its path column."
                )
            ds = _load_image_csv(p, image_column, target or "label", **opts)  # type: ignore[arg-type]
        else:
            if labels is None:
                raise InvalidInputError(
                    f"{str(p)!r} is read as IDX images but no labels file was given; pass `labels`, the IDX labels file (e.g. train-labels-idx1-ubyte.gz)."
                )
            x, y = read_idx(p), read_idx(labels)
            if x.ndim < 3:
                raise InvalidInputError(
                    f"IDX file {str(p)!r} holds an array of shape {x.shape}, not images; pass the images file as the data and the labels file as `labels`."
                )
            if len(x) != len(y):
                raise InvalidInputError(
                    f"IDX images {str(p)!r} hold {len(x)} images but labels {str(labels)!r} hold {len(y)}; pass the matching labels file."
                )
            ds = ImageDataset(
                _storage(to_nchw(x)),
                y.reshape(-1),
                name=p.name.split("-")[0].split(".")[0] or "idx",
            )
    if name:
        ds.name = name
    if len(ds.images) != len(ds.labels):
        raise InvalidInputError(
            f"there are {len(ds.images)} images but {len(ds.labels)} labels; pass one label per image."
        )
    if test is not None:
        if (
            isinstance(test, tuple)
            and len(test) == 2
            and all(isinstance(t, (str, Path)) for t in test)
        ):
            t = load_images(test[0], labels=test[1])  # (IDX images, IDX labels)
        else:
            t = load_images(test, labels=None, image_column=image_column, target=target, **opts)  # type: ignore[arg-type]
        ds.test_images, ds.test_labels = t.images, t.labels
    if ds.test_images is not None and ds.test_images.shape[1:] != ds.images.shape[1:]:
        raise InvalidInputError(
            f"test images have shape {ds.test_images.shape[1:]} but training images {ds.images.shape[1:]}; pass test images of the same size and channels."
        )
    return ds


def _storage(x: np.ndarray) -> np.ndarray:
    """uint8 when every pixel is an integer in 0..255 (1 byte per pixel in memory), else float32."""
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.bool_):
        if x.size == 0 or (x.min() >= 0 and x.max() <= 255):
            return np.ascontiguousarray(x, dtype=np.uint8)
    return np.ascontiguousarray(x, dtype=np.float32)


def _size_pair(image_size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise InvalidInputError(
            f"`image_size` is {image_size!r} but must be a positive integer or [height, width] such as [80, 80]."
        )
    return (int(pair[0]), int(pair[1]))


def _color_mode(color: str) -> str | None:
    modes = {"auto": None, "grey": "L", "gray": "L", "l": "L", "rgb": "RGB"}
    if str(color).lower() not in modes:
        raise InvalidInputError(f"`color` is {color!r} but must be 'auto', 'grey' or 'rgb'.")
    return modes[str(color).lower()]


def load_image_folder(
    folder: str | Path,
    *,
    image_size: int | tuple[int, int] | list[int] | None = None,
    color: str = "auto",
    resize: bool = True,
    strict: bool = False,
    cache: bool = True,
) -> ImageDataset:
    """``folder/<class>/*.png|jpg|bmp|webp`` -> an :class:`ImageDataset` labelled by folder name."""
    root = Path(folder)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files: list[Path] = []
    labels: list[str] = []
    for c in classes:
        found = sorted(
            f for f in (root / c).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
        )
        files += found
        labels += [c] * len(found)
    used = sorted(set(labels))
    if not files:
        raise InvalidInputError(
            f"folder {str(root)!r} holds no images in class folders; lay it out as {root.name}/<class>/<image>.png "
            f"(one folder per class, files ending in {', '.join(IMAGE_SUFFIXES[:5])})."
        )
    if len(used) < 2:
        raise InvalidInputError(
            f"folder {str(root)!r} has images of a single class ({used[0]!r}); a classifier needs at least two class folders, "
            f"so add a folder per class next to {used[0]!r}."
        )
    return _decode_files(
        files,
        np.asarray(labels, dtype=object),
        name=root.name,
        size=_size_pair(image_size),
        mode=_color_mode(color),
        resize=resize,
        strict=strict,
        cache=cache,
    )


def _load_image_csv(path: Path, image_column: str, target: str, **opts: Any) -> ImageDataset:
    import pandas as pd

    frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    for col in (image_column, target):
        if col not in frame.columns:
            raise InvalidInputError(
                f"column {col!r} not found in {str(path)!r}; columns are: {format_names(frame.columns)}."
            )
    frame = frame.dropna(subset=[image_column, target])
    files = [
        p if p.is_absolute() else path.parent / p
        for p in (Path(str(v)) for v in frame[image_column])
    ]
    ds = _decode_files(
        files,
        frame[target].to_numpy(dtype=object),
        name=path.stem,
        size=_size_pair(opts["image_size"]),
        mode=_color_mode(opts["color"]),
        resize=opts["resize"],
        strict=opts["strict"],
        cache=opts["cache"],
    )
    ds.target = target
    return ds


def _cache_dir() -> Path:
    return cache_dir("images")


def _cache_key(files: list[Path], labels: np.ndarray, settings: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps({"v": _CACHE_VERSION, **settings}, sort_keys=True).encode())
    for f, lab in zip(files, labels.tolist()):
        try:
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}|{lab}\n".encode())
        except OSError:
            h.update(f"{f}|missing|{lab}\n".encode())
    return h.hexdigest()[:32]


def _decode_files(
    files: list[Path],
    labels: np.ndarray,
    *,
    name: str,
    size: tuple[int, int] | None,
    mode: str | None,
    resize: bool,
    strict: bool,
    cache: bool,
) -> ImageDataset:
    settings = {"size": size, "mode": mode, "resize": resize}
    cached = _cache_dir() / f"{_cache_key(files, labels, settings)}.npz" if cache else None
    if cached is not None and cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as z:
                images, keep = z["images"], z["keep"]
                skipped = [
                    (str(a), str(b))
                    for a, b in zip(z["skipped_paths"].tolist(), z["skipped_reasons"].tolist())
                ]
                used_mode, resized = str(z["mode"]), int(z["resized"])
        except (OSError, ValueError, KeyError):
            cached_ok = False  # a damaged cache entry is rebuilt below
        else:
            cached_ok = True
        if cached_ok:
            _report(skipped, resized, images.shape[2:], strict)
            return ImageDataset(
                images,
                labels[keep],
                name=name,
                color=used_mode,
                paths=[str(files[i]) for i in keep],
                resize=resize,
                meta={"skipped": len(skipped), "resized": resized, "cache": str(cached)},
            )
    images, keep, skipped, used_mode, resized = decode_paths(
        files, size=size, mode=mode, resize=resize
    )
    _report(skipped, resized, images.shape[2:], strict)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            images=images,
            keep=np.asarray(keep, np.int64),
            mode=np.asarray(used_mode),
            resized=np.asarray(resized),
            skipped_paths=np.asarray([s[0] for s in skipped], dtype=str),
            skipped_reasons=np.asarray([s[1] for s in skipped], dtype=str),
        )
        os.replace(tmp, cached)
    return ImageDataset(
        images,
        labels[np.asarray(keep, np.int64)],
        name=name,
        color=used_mode,
        paths=[str(files[i]) for i in keep],
        resize=resize,
        meta={
            "skipped": len(skipped),
            "resized": resized,
            "cache": str(cached) if cached else None,
        },
    )


def _report(
    skipped: list[tuple[str, str]], resized: int, size: tuple[int, ...], strict: bool
) -> None:
    if skipped:
        names = format_names([Path(p).name for p, _ in skipped], limit=5)
        if strict:
            raise InvalidInputError(
                f"{len(skipped)} image file(s) could not be read ({names}; first: {skipped[0][1]}); remove or fix them, or set `strict` to false to skip them."
            )
        warnings.warn(
            DataWarning(
                f"skipped {len(skipped)} unreadable image file(s): {names} (first: {skipped[0][1]})."
            ),
            stacklevel=3,
        )
    if resized:
        warnings.warn(
            DataWarning(
                f"resized {resized} image(s) of other sizes to {size[0]}x{size[1]} (height x width)."
            ),
            stacklevel=3,
        )


def decode_paths(
    files: list[Path],
    *,
    size: tuple[int, int] | None,
    mode: str | None,
    resize: bool = True,
) -> tuple[np.ndarray, list[int], list[tuple[str, str]], str, int]:
    """Decode files to (N, C, H, W) uint8; returns (images, kept indices, skipped (path, reason), mode, resized count)."""
    from PIL import Image, UnidentifiedImageError

    heads: list[tuple[int, str, tuple[int, int]]] = []
    skipped: list[tuple[str, str]] = []
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                heads.append((i, im.mode, (im.height, im.width)))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            skipped.append((str(f), _reason(exc)))
    if not heads:
        raise InvalidInputError(
            f"none of the {len(files)} image file(s) could be read (first: {skipped[0][0]}: {skipped[0][1]}); check that they are images."
        )
    used_mode = mode or ("L" if all(m in _GREY_MODES for _, m, _ in heads) else "RGB")
    sizes = Counter(s for _, _, s in heads)
    if not resize:
        wanted = size or heads[0][2]
        odd = next((h for h in heads if h[2] != wanted), None)
        if odd is not None:
            where = (
                f"{files[heads[0][0]].name!r} is {wanted[0]}x{wanted[1]} and "
                if heads[0][2] == wanted
                else f"`image_size` is {wanted[0]}x{wanted[1]} but "
            )
            raise InvalidInputError(
                f"images differ in size but resizing is off: {where}{files[odd[0]].name!r} is {odd[2][0]}x{odd[2][1]}; "
                "set `resize` to true to resize them to one size."
            )
    target = size or sizes.most_common(1)[0][0]
    channels = 1 if used_mode == "L" else 3
    out = np.empty((len(heads), channels, target[0], target[1]), np.uint8)
    keep: list[int] = []
    resized = 0
    for i, _, s in heads:
        try:
            with Image.open(files[i]) as opened:
                img = opened.convert(used_mode)
                if s != target:
                    img = img.resize((target[1], target[0]), Image.Resampling.BILINEAR)
                    resized += 1
                arr = np.asarray(img, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:
            skipped.append((str(files[i]), _reason(exc)))
            continue
        out[len(keep)] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        keep.append(i)
    if not keep:
        raise InvalidInputError(
            f"none of the {len(files)} image file(s) could be decoded (first: {skipped[0][0]}: {skipped[0][1]}); check that they are images."
        )
    return out[: len(keep)], keep, skipped, used_mode, resized


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def expand_image_paths(sources: Any) -> list[Path]:
    """Paths and folders (searched recursively for image files) -> a sorted list of image files."""
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
            )
            if not found:
                raise InvalidInputError(
                    f"folder {str(p)!r} holds no image files ({', '.join(IMAGE_SUFFIXES[:5])}, ...); pass image files or a folder of them."
                )
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise UnsupportedFileError(
                f"image {str(p)!r} does not exist; pass image files or folders of them."
            )
    return out


# ---------------------------------------------------------------------------------------- adapter


class ImagePreprocessor:
    """The bundle's input adapter for images: decoding, resizing and per-channel normalisation.

    Its state is plain JSON (channels, size, colour mode, mean/std per channel). ``prepare`` accepts
    file paths, folders, PIL images, or arrays (HW, HWC, CHW or batches of them).

    Args:
        channels: Image channels the model expects.
        image_size: (height, width) the model expects.
        mean: Per-channel mean, in stored pixel units (0..255 for decoded files).
        std: Per-channel standard deviation, in the same units.
        color: ``"L"``/``"RGB"`` when trained from files, ``None`` for arrays. Defaults to `None`.
        resize: Resize inputs of another size (else an error). Defaults to `True`.
        target: The label's name. Defaults to `"label"`.
        file_scale: Factor from decoded file pixels (0..255) to training units (1/255 for 0..1 arrays). Defaults to `1.0`.

    Example:
        >>> pre = ImagePreprocessor.fit(np.full((4, 1, 8, 8), 100, np.uint8))
        >>> pre.prepare(np.full((8, 8), 100, np.uint8)).inputs[0].shape
        (1, 1, 8, 8)
    """

    def __init__(
        self,
        channels: int,
        image_size: tuple[int, int] | list[int],
        mean: list[float],
        std: list[float],
        *,
        color: str | None = None,
        resize: bool = True,
        target: str = "label",
        file_scale: float = 1.0,
        flatten: bool = False,
    ) -> None:
        self.channels = int(channels)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.mean = [float(m) for m in mean]
        self.std = [float(s) if s > 1e-8 else 1.0 for s in std]
        self.color = color
        self.resize = resize
        self.target = target
        self.file_scale = float(file_scale)
        self.flatten = flatten  # an MLP on pixels takes (N, C*H*W)

    @classmethod
    def fit(
        cls,
        train_images: np.ndarray,
        *,
        normalize: str = "train",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        color: str | None = None,
        resize: bool = True,
        target: str = "label",
    ) -> ImagePreprocessor:
        """Per-channel mean/std from the training images (``normalize="imagenet"``/``"none"``, or given values)."""
        c = int(train_images.shape[1])
        is_unit = (
            train_images.dtype != np.uint8
            and train_images.size > 0
            and float(train_images.max()) <= 1.0 + 1e-6
        )
        file_scale = 1.0 / 255.0 if is_unit else 1.0
        if mean is not None or std is not None:
            if mean is None or std is None or len(mean) != c or len(std) != c:
                raise InvalidInputError(
                    f"`mean` {mean!r} and `std` {std!r} must both be given with one value per channel ({c})."
                )
            m, s = list(mean), list(std)
        elif normalize == "imagenet":
            if c != 3:
                raise InvalidInputError(
                    f"normalize='imagenet' needs 3-channel images but these have {c}; use normalize='train'."
                )
            m, s = [v * file_scale for v in IMAGENET_MEAN], [v * file_scale for v in IMAGENET_STD]
        elif normalize == "none":
            m, s = [0.0] * c, [1.0] * c
        elif normalize == "train":
            m, s = _channel_stats(train_images)
        else:
            raise InvalidInputError(
                f"`normalize` is {normalize!r} but must be 'train', 'imagenet' or 'none'."
            )
        return cls(
            c,
            train_images.shape[2:],
            m,
            s,
            color=color,
            resize=resize,
            target=target,
            file_scale=file_scale,
        )

    # -------------------------------------------------------------- adapter protocol
    @property
    def input_names(self) -> list[str]:
        return ["image"]

    def state(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "image_size": list(self.image_size),
            "mean": self.mean,
            "std": self.std,
            "color": self.color,
            "resize": self.resize,
            "target": self.target,
            "file_scale": self.file_scale,
            "flatten": self.flatten,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImagePreprocessor:
        return cls(
            state["channels"],
            state["image_size"],
            state["mean"],
            state["std"],
            color=state.get("color"),
            resize=state.get("resize", True),
            target=state.get("target", "label"),
            file_scale=state.get("file_scale", 1.0),
            flatten=state.get("flatten", False),
        )

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        targets: pd.Series | None = None
        index: Any = None
        if with_target:
            import pandas as pd

            if isinstance(data, ImageDataset):
                raw, targets = data.images, pd.Series(list(data.labels))
            elif isinstance(data, tuple) and len(data) == 2:
                raw, targets = data[0], pd.Series(list(np.asarray(data[1]).reshape(-1)))
            elif isinstance(data, (str, Path)) and Path(data).is_dir():
                ds = load_image_folder(
                    data,
                    image_size=self.image_size,
                    color="grey" if self.channels == 1 else "rgb",
                    cache=False,
                )
                raw, targets, index = (
                    ds.images.astype(np.float32) * self.file_scale,
                    pd.Series(list(ds.labels)),
                    ds.paths,
                )
            else:
                raise InvalidInputError(
                    "labelled images must be a folder of class folders, an ImageDataset or an (images, labels) pair."
                )
            raw = self.load(raw) if not isinstance(data, (str, Path)) else raw
        else:
            raw = self.load(data)
        x = self.normalise(raw)
        model_input = x.reshape(len(x), -1) if self.flatten else x
        return PreparedBatch(
            inputs=[model_input],
            targets=targets,
            baseline_features=baseline_features(x),
            index=index,
        )

    # -------------------------------------------------------------- helpers
    def normalise(self, raw: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return ((raw.astype(np.float32) - mean) / std).astype(np.float32)

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) per channel with ``x * scale + shift`` == ``(x - mean) / std``."""
        std = np.asarray(self.std, np.float32)
        return 1.0 / std, -np.asarray(self.mean, np.float32) / std

    def load(self, data: Any) -> np.ndarray:
        """Raw input -> (N, C, H, W) float32 in training units, converted and resized to what the model expects."""
        from PIL import Image

        if isinstance(data, np.ndarray) or (
            hasattr(data, "__array__") and not isinstance(data, Image.Image)
        ):
            return self._fit_array(np.asarray(data))
        items = [data] if isinstance(data, (str, Path, Image.Image)) else list(data)
        if items and all(isinstance(i, np.ndarray) for i in items):
            return np.concatenate([self._fit_array(np.asarray(i)) for i in items])
        out, converted = [], 0
        mode = self.color or ("L" if self.channels == 1 else "RGB")
        expanded: list[Any] = []
        for item in items:
            expanded += [item] if isinstance(item, Image.Image) else expand_image_paths(item)
        for item in expanded:
            try:
                im = item if isinstance(item, Image.Image) else Image.open(item)
                im.load()
            except (OSError, ValueError, SyntaxError) as exc:
                raise InvalidInputError(
                    f"image {str(item)!r} could not be read ({_reason(exc)}); pass a readable image file."
                ) from None
            if (im.mode in _GREY_MODES) != (mode == "L"):
                converted += 1
            im = im.convert(mode)
            if (im.height, im.width) != self.image_size:
                if not self.resize:
                    raise InvalidInputError(
                        f"image {getattr(im, 'filename', '') or 'given'} is {im.height}x{im.width} but the model was trained on "
                        f"{self.image_size[0]}x{self.image_size[1]} without resizing; resize it first."
                    )
                im = im.resize((self.image_size[1], self.image_size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) * self.file_scale
            out.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        if not out:
            raise InvalidInputError(
                "no images were given to predict; pass image files, folders, PIL images or arrays."
            )
        if converted:
            warnings.warn(
                DataWarning(
                    f"converted {converted} image(s) to {mode} ({self.channels} channel(s)) as in training."
                ),
                stacklevel=3,
            )
        return np.stack(out)

    def _fit_array(self, arr: np.ndarray) -> np.ndarray:
        h, w = self.image_size
        one_chw = arr.ndim == 3 and arr.shape[0] == self.channels and arr.shape[1:] == (h, w)
        one_hwc = (
            arr.ndim == 3
            and arr.shape[2] in (1, 3, 4)
            and (arr.shape[:2] == (h, w) or arr.shape[2] == self.channels)
        )
        if arr.ndim == 2 or one_chw or (one_hwc and arr.shape[0] != self.channels):
            arr = arr[None]  # one image (a 3-D array otherwise is a batch of grey images)
        x = to_nchw(arr, what="images to predict", channels=self.channels).astype(np.float32)
        if x.shape[1] != self.channels:
            warnings.warn(
                DataWarning(
                    f"images to predict have {x.shape[1]} channel(s) but the model was trained on {self.channels}; converted."
                ),
                stacklevel=4,
            )
            if self.channels == 1:
                weights = np.array([0.299, 0.587, 0.114, 0.0], np.float32)[: x.shape[1]]
                x = (x * (weights / weights.sum()).reshape(1, -1, 1, 1)).sum(axis=1, keepdims=True)
            else:
                x = np.repeat(x[:, :1], self.channels, axis=1)
        if x.shape[2:] != (h, w):
            if not self.resize:
                raise InvalidInputError(
                    f"images to predict are {x.shape[2]}x{x.shape[3]} but the model was trained on {h}x{w} without resizing; resize them first."
                )
            import torch
            import torch.nn.functional as F

            x = F.interpolate(
                torch.from_numpy(x),
                size=(h, w),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            ).numpy()
        return x


def _channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean/std in float64, in chunks (never a float copy of the whole set)."""
    c = images.shape[1]
    total, sq, n = np.zeros(c), np.zeros(c), 0
    for s in range(0, len(images), 4096):
        chunk = images[s : s + 4096].astype(np.float64)
        total += chunk.sum(axis=(0, 2, 3))
        sq += (chunk**2).sum(axis=(0, 2, 3))
        n += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    mean = total / max(n, 1)
    std = np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0.0))
    return mean.tolist(), std.tolist()


def baseline_features(x: np.ndarray) -> np.ndarray:
    """Normalised images averaged down to at most 8x8 per channel and flattened: the logistic baseline's input."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[2:]
    side = (min(h, _BASELINE_SIDE), min(w, _BASELINE_SIDE))
    out = []
    for s in range(0, len(x), 8192):
        t = torch.from_numpy(np.ascontiguousarray(x[s : s + 8192], dtype=np.float32))
        out.append(F.adaptive_avg_pool2d(t, side).flatten(1).numpy())
    return np.concatenate(out) if out else np.zeros((0, x.shape[1] * side[0] * side[1]), np.float32)
