"""Image runs in the report: a grid of test images with true/predicted labels and a grid of the worst
mistakes. The fitter stores a small sample (``test_images.npz``, at most 64 images, no pickle) and the
test predictions in the run folder through :func:`image_extras`; :func:`sections` draws them."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.evaluation.scoring import class_predictions
from dlpipe.reports.plots import PAGE_WIDTH, Plot, new_figure, render, short_label
from dlpipe.reports.sections import Section

if TYPE_CHECKING:
    from dlpipe.reports.folder import RunFolder

__all__ = ["image_extras", "sections", "SAMPLE_FILE"]

SAMPLE_FILE = "test_images.npz"
_MAX_SIDE = 96


def image_extras(
    x_test: np.ndarray, y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any], n: int = 32
) -> dict[str, Any]:
    """``Run.extras`` for an image classifier: test predictions and a sample of test images.

    ``x_test``: (N, C, H, W) pixels; ``y_true``: class codes; ``proba``: (N, K) probabilities.
    """
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    pred = proba.argmax(axis=1)
    extras: dict[str, Any] = {"predictions": class_predictions(y_true, proba, list(classes))}
    first = across_classes(y_true, n)
    wrong = np.flatnonzero(pred != y_true)
    worst = wrong[np.argsort(-proba[wrong, pred[wrong]])][:n]  # confidently wrong first
    rows = np.concatenate([first, worst]).astype(np.int64)
    images = np.asarray(x_test[rows])
    step = max(1, int(np.ceil(max(images.shape[-2:], default=1) / _MAX_SIDE)))
    images = images[..., ::step, ::step]
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        images=images,
        y_true=y_true[rows],
        y_pred=pred[rows],
        confidence=proba[rows, pred[rows]],
        n_first=np.array(len(first)),
        n_wrong=np.array(len(wrong)),
    )
    extras["files"] = {SAMPLE_FILE: buf.getvalue()}
    return extras


def across_classes(y_true: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` test rows taking the classes in turn (the first row of each class, then the second...),
    so the grid shows every class rather than the first rows of a folder-ordered split."""
    y = np.asarray(y_true).reshape(-1)
    rank = np.zeros(len(y), dtype=np.int64)
    for c in np.unique(y):
        at = np.flatnonzero(y == c)
        rank[at] = np.arange(len(at))
    order = np.lexsort((y, rank))  # by rank within the class, then by class
    return order[:n].astype(np.int64)


def sections(run: RunFolder) -> list[Section]:
    s = Section("images", "Test images")
    path = run.path / SAMPLE_FILE
    if not path.is_file():
        return [
            s.note(f"missing: {SAMPLE_FILE} (a sample of test images) is not in the run folder.")
        ]
    with np.load(path, allow_pickle=False) as z:
        images, y_true, y_pred, conf = z["images"], z["y_true"], z["y_pred"], z["confidence"]
        n_first, n_wrong = int(z["n_first"]), int(z["n_wrong"])
    classes = run.classes or [
        str(i) for i in range(int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1)
    ]
    s.plot(
        _grid(
            "test_images",
            f"{n_first} test images, the classes in turn: true → predicted",
            images[:n_first],
            y_true[:n_first],
            y_pred[:n_first],
            conf[:n_first],
            classes,
        )
    )
    if n_wrong == 0:
        s.text("The model classified every test image correctly.")
    else:
        k = len(images) - n_first
        s.plot(
            _grid(
                "worst_mistakes",
                f"The {k} most confident mistakes (of {n_wrong}): true → predicted",
                images[n_first:],
                y_true[n_first:],
                y_pred[n_first:],
                conf[n_first:],
                classes,
            )
        )
    return [s]


def _grid(
    name: str,
    title: str,
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    conf: np.ndarray,
    classes: Sequence[Any],
) -> Plot:
    import matplotlib

    if len(images) == 0:
        return Plot(name, title, note="no images to show.")
    cols = min(8, len(images))
    rows = int(np.ceil(len(images) / cols))
    with matplotlib.rc_context({"font.size": 9}):
        height = 1.6 * rows + 0.8
        fig = new_figure(
            max(1.35 * cols + 0.2, 0.8 * PAGE_WIDTH),
            height,
            left=0.1,
            right=0.1,
            bottom=0.05,
            top=0.7,
            wspace=0.15,
            hspace=0.45,
        )
        axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
        for i, ax in enumerate(axes):
            ax.set_axis_off()
            if i >= len(images):
                continue
            img = np.asarray(images[i], dtype=np.float32)  # (C, H, W)
            img = (img - img.min()) / (np.ptp(img) or 1.0)
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", interpolation="nearest")
            else:
                ax.imshow(np.transpose(img[:3], (1, 2, 0)), interpolation="nearest")
            ok = y_true[i] == y_pred[i]
            ax.set_title(
                f"{short_label(classes[int(y_true[i])], 9)} → {short_label(classes[int(y_pred[i])], 9)}\n{conf[i]:.0%}",
                color="#1a7f37" if ok else "#cf222e",
                fontsize=9,
            )
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / height)
        return Plot(name, title, render(fig))
