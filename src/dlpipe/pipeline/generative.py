"""Using generative bundles: embeddings, anomaly scores and new samples.

- :func:`embed` -- the encoder's output for any input of the training kind;
- :func:`score_anomalies` -- reconstruction error per row / image / window, a threshold from the
  training errors (a percentile, or a contamination rate), and ROC-AUC / precision / recall when the
  input carries the training label column;
- :func:`sample` -- new images or rows from a VAE or GAN bundle; :func:`save_image_grid` writes a PNG.

:func:`detect_generative` recognises the data of the generative tasks (the ``arrays`` kind of
``dlpipe.pipeline.kinds``: ``.npz`` files, image sources, :class:`~dlpipe.data.arrays.ArrayDataset`, tables).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.bundle.bundle import Bundle, load_bundle
from dlpipe.core.config import RunConfig
from dlpipe.core.errors import BundleError, InvalidConfigError, InvalidInputError
from dlpipe.core.files import private_tmp
from dlpipe.tasks.generative import is_generative_task

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "embed",
    "score_anomalies",
    "sample",
    "save_image_grid",
    "generative_info",
    "detect_generative",
]


def detect_generative(data: Any, cfg: RunConfig, test: Any) -> Any:
    """For the generative tasks: image sources (folders, .npz, IDX, via the images loader) and ndarrays
    become an ArrayDataset; tables need no target (a given target is a label kept out of the inputs)."""
    from dlpipe.data.arrays import ArrayDataset, load_npz

    if not is_generative_task(cfg.data.task):
        return None
    if isinstance(data, np.ndarray):
        return ArrayDataset(data)
    from dlpipe.data.images import ImageDataset, is_image_source, load_images

    if isinstance(data, ImageDataset) or is_image_source(data, cfg.image.image_column):
        try:
            ims = (
                data
                if isinstance(data, ImageDataset)
                else load_images(
                    data,
                    labels=cfg.image.labels,
                    image_column=cfg.image.image_column,
                    target=cfg.data.target,
                    image_size=cfg.image.image_size,
                    color=cfg.image.color,
                    resize=cfg.image.resize,
                    name=cfg.name,
                )
            )
        except InvalidInputError:
            if isinstance(data, (str, Path)) and str(data).lower().endswith(".npz"):
                return load_npz(data)  # an .npz with x only (no labels)
            raise
        x = np.asarray(ims.images)
        return ArrayDataset(
            x, ims.labels, name=ims.name, scale=255.0 if x.dtype == np.uint8 else 1.0
        )
    if not isinstance(data, (str, Path)) and not hasattr(data, "columns"):
        return None
    from dlpipe.data import datasets as bundled
    from dlpipe.data.tabular import TabularDataset, read_table

    if (
        isinstance(data, str)
        and not Path(data).exists()
        and data in {d.name for d in bundled.list_datasets()}
    ):
        ds = bundled.load(data)
        return TabularDataset(ds.frame, cfg.data.target or ds.target, name=ds.name)
    frame = read_table(data)
    frame.columns = [str(c) for c in frame.columns]
    target = cfg.data.target or ""
    if target and target not in frame.columns:
        raise InvalidInputError(
            f"label column {target!r} is not in the table; columns are: {', '.join(map(str, frame.columns[:12]))}."
        )
    test_frame = read_table(test, what="test") if test is not None else None
    name = Path(data).stem if isinstance(data, (str, Path)) else "table"
    return TabularDataset(frame, target, name=name, test_frame=test_frame)


def generative_info(
    bundle: Bundle | str | Path, *, need: str = "any", command: str = "this"
) -> tuple[Bundle, dict[str, Any]]:
    """The bundle and its ``generative`` manifest section; a clear error for other bundles."""
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    gen = b.manifest.get("generative")
    if gen is None:
        raise BundleError(
            f"`{command}` needs a generative bundle (an autoencoder, VAE or GAN), but this bundle holds a {b.task.kind} "
            f"{b.manifest['model_spec'].get('family', '?')!r} model; train one with task='reconstruction' or task='generate'."
        )
    if need == "encoder" and gen["model"] == "gan":
        raise BundleError(
            f"`{command}` needs a model with an encoder, but this bundle holds a GAN generator; use an autoencoder or VAE bundle."
        )
    if need == "sampler" and gen["model"] == "autoencoder":
        raise BundleError(
            f"`{command}` needs a model that can sample (a VAE or GAN), but this bundle holds an autoencoder; train with task='generate' and model='vae' or 'gan'."
        )
    return b, gen


def _inputs(b: Bundle, data: Any, with_target: bool) -> tuple[np.ndarray, Any]:
    batch = b.preprocessor.prepare(data, with_target=with_target)
    if len(batch.inputs) > 1:
        raise InvalidInputError(
            "the input has embedded categorical columns, which generative bundles do not use; pass the training columns only."
        )
    return batch.inputs[0], batch.targets


def embed(bundle: Bundle | str | Path, data: Any) -> pd.DataFrame:
    """Latent vectors (columns ``z0 .. z{L-1}``) for raw input of the bundle's kind.

    Example:
        >>> import dlpipe as dl  # doctest: +SKIP
        >>> dl.embed("runs/ae/bundle", "data.csv").shape  # doctest: +SKIP
        (569, 8)
    """
    import pandas as pd

    from dlpipe.pipeline._generative_eval import embed_array

    b, gen = generative_info(bundle, need="encoder", command="embed")
    x, _ = _inputs(b, data, with_target=False)
    z = embed_array(b.model, gen, x)
    return pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])


def score_anomalies(
    bundle: Bundle | str | Path,
    data: Any,
    *,
    contamination: float | None = None,
    threshold_percentile: float | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Anomaly scores (reconstruction errors), flags, and a summary.

    The threshold is the ``threshold_percentile`` of the training errors (default 99), or the
    ``(1 - contamination)`` quantile of them. When the input holds the training label column, the
    summary adds ROC-AUC and precision/recall at the threshold (anomalies: labels not seen in
    training, else the rarest training label).

    Returns:
        A frame with ``score`` and ``anomaly`` (bool) per row, and a dict with the threshold (and metrics).
    """
    import pandas as pd

    from dlpipe.pipeline._generative_eval import errors_of, threshold_from

    if contamination is not None and threshold_percentile is not None:
        raise InvalidConfigError(
            "pass either `contamination` or `threshold_percentile`, not both; they are two ways to set the same threshold."
        )
    if contamination is not None and not 0 < contamination < 0.5:
        raise InvalidConfigError(
            f"`contamination` is {contamination!r} but must be a share of anomalies between 0 and 0.5, e.g. 0.01."
        )
    if threshold_percentile is not None and not 0 < threshold_percentile < 100:
        raise InvalidConfigError(
            f"`threshold_percentile` is {threshold_percentile!r} but must be between 0 and 100, e.g. 99."
        )
    b, gen = generative_info(bundle, need="encoder", command="anomalies")
    x, labels = _inputs(b, data, with_target=True)
    scores = errors_of(b.model, gen, x)
    threshold = threshold_from(
        gen["error_quantiles"], contamination=contamination, percentile=threshold_percentile
    )
    flags = scores > threshold
    out = pd.DataFrame({"score": scores, "anomaly": flags})
    summary: dict[str, Any] = {
        "rows": len(scores),
        "threshold": threshold,
        "flagged": int(flags.sum()),
        "rule": (
            f"contamination {contamination}"
            if contamination is not None
            else f"percentile {threshold_percentile or 99.0}"
        )
        + f" of the {gen.get('threshold_from', 'training errors')}",
    }
    train_labels = gen.get("train_labels")
    if labels is not None and train_labels and labels.notna().all():
        from sklearn.metrics import precision_score, recall_score, roc_auc_score

        from dlpipe.pipeline._generative_eval import anomaly_positives

        y_train = np.repeat(
            np.asarray(train_labels["values"], dtype=object), train_labels["counts"]
        )
        positive, rule = anomaly_positives(y_train, labels.to_numpy(dtype=object))
        if 0 < positive.sum() < len(positive):
            summary.update(
                roc_auc=float(roc_auc_score(positive, scores)),
                precision=float(precision_score(positive, flags, zero_division=0)),
                recall=float(recall_score(positive, flags, zero_division=0)),
                positive=rule,
            )
    return out, summary


def sample(bundle: Bundle | str | Path, n: int = 64, *, seed: int = 0) -> np.ndarray:
    """``n`` new samples from a VAE or GAN bundle: images (n, C, H, W) in [0, 1], or table rows in the
    scaled feature space (n, F)."""
    from dlpipe.pipeline._generative_eval import sample_array

    if not isinstance(n, int) or n < 1:
        raise InvalidConfigError(
            f"`n` is {n!r} but must be a positive number of samples such as 64."
        )
    b, gen = generative_info(bundle, need="sampler", command="sample")
    out = sample_array(b.model, gen, n, seed=seed)
    shape = b.manifest["preprocessor"].get("shape") if b.kind == "arrays" else None
    return out.reshape(n, *shape) if shape else out.reshape(n, -1)


def save_image_grid(images: np.ndarray, path: str | Path, ncol: int | None = None) -> Path:
    """Write images (N, C, H, W) in [0, 1] as one PNG grid (written to a temporary name, then renamed)."""
    import os

    from dlpipe.pipeline._generative_eval import image_grid_png

    arr = np.asarray(images)
    if arr.ndim not in (3, 4):
        raise InvalidInputError(
            f"images have shape {arr.shape} but a grid needs (N, C, H, W) or (N, H, W); table samples cannot be drawn as images."
        )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(p)
    tmp.write_bytes(image_grid_png(arr, ncol=ncol))
    os.replace(tmp, p)
    return p
