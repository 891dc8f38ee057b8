"""Attributions of image, sequence and text runs in the report (issue #20 item 1, issue #19 item 5).

The recipe computes attributions for a few test inputs picked across the classes
(:mod:`dlpipe.evaluation.attributions`) and stores them in the run folder with the builders here
(``*_attribution_file``: NPZ without pickle, or JSON); the section functions read only those files and
metrics.json's ``attributions``, so ``dlpipe report`` rebuilds them. One section function per kind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.evaluation.attributions import token_colour
from dlpipe.reports.plots import TRAIN, Plot, new_figure, render, short_label
from dlpipe.reports.sections import Section, TokenText

if TYPE_CHECKING:
    from dlpipe.reports.folder import RunFolder

__all__ = [
    "IMAGE_FILE",
    "SEQUENCE_FILE",
    "TEXT_FILE",
    "image_attribution_file",
    "sequence_attribution_file",
    "text_attribution_file",
    "image_section",
    "sequence_section",
    "text_section",
]

IMAGE_FILE = "saliency.npz"
SEQUENCE_FILE = "sequence_attributions.npz"
TEXT_FILE = "token_attributions.json"
_MAX_SIDE = 96  # pixels kept per side in the run folder (larger images are block-summed)
_MAX_TOKENS = 300  # tokens shown per document


def _block_sum(a: np.ndarray, step: int) -> np.ndarray:
    """(..., H, W) -> (..., H // step, W // step) sums of step x step blocks (attributions keep their totals)."""
    if step <= 1:
        return a
    h, w = (a.shape[-2] // step) * step, (a.shape[-1] // step) * step
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // step, step, w // step, step).sum(axis=(-3, -1))


def image_attribution_file(
    images: np.ndarray,
    attributions: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
) -> bytes:
    """NPZ bytes for :data:`IMAGE_FILE`: raw images (n, C, H, W) and their attributions (n, C, H, W) summed
    over channels, both reduced to at most ``_MAX_SIDE`` pixels a side."""
    step = max(1, int(np.ceil(max(images.shape[-2:], default=1) / _MAX_SIDE)))
    pix = images[..., ::step, ::step]
    attr = _block_sum(np.asarray(attributions, np.float64).sum(axis=1), step)
    pix = pix[..., : attr.shape[-2], : attr.shape[-1]]
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        images=np.asarray(pix),
        attributions=attr.astype(np.float32),
        y_true=np.asarray(y_true, np.int64),
        y_pred=np.asarray(y_pred, np.int64),
        confidence=np.asarray(confidence, np.float64),
    )
    return buf.getvalue()


def sequence_attribution_file(
    x: np.ndarray,
    mask: np.ndarray,
    attributions: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
) -> bytes:
    """NPZ bytes for :data:`SEQUENCE_FILE`: cases (n, T, C), their masks (n, T) and attributions (n, T, C)."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        x=np.asarray(x, np.float32),
        mask=np.asarray(mask, np.float32),
        attributions=np.asarray(attributions, np.float32),
        y_true=np.asarray(y_true, np.int64),
        y_pred=np.asarray(y_pred, np.int64),
        confidence=np.asarray(confidence, np.float64),
    )
    return buf.getvalue()


def text_attribution_file(documents: list[dict[str, Any]]) -> bytes:
    """JSON bytes for :data:`TEXT_FILE`: per document ``index``, ``true``, ``predicted``, ``confidence`` and
    ``tokens`` as ``[text, attribution]`` pairs (at most ``_MAX_TOKENS``; ``cut`` when there were more)."""
    docs = []
    for d in documents:
        toks = [[str(t), round(float(v), 6)] for t, v in d["tokens"]]
        docs.append({**d, "tokens": toks[:_MAX_TOKENS], "cut": len(toks) > _MAX_TOKENS})
    return json.dumps({"documents": docs}).encode()


def _info(run: RunFolder) -> dict[str, Any]:
    info = run.metrics.get("attributions")
    return info if isinstance(info, dict) else {}


def _how(info: dict[str, Any], what: str) -> str:
    """One sentence: the method, what is attributed, and completeness."""
    output = info.get("output", "the logit of the predicted class")
    if info.get("method") == "occlusion":
        return (
            f"Occlusion: each {what}'s value is {output} minus the same output with that {what} removed "
            f"({info.get('occluded', 'set to the baseline')}); it needs no gradient, but the parts do not add up to "
            "the output."
        )
    err = info.get("completeness_error")
    err_s = f"{100 * float(err):.2g}%" if isinstance(err, (int, float)) else "n/a"
    return (
        f"Integrated gradients of {output} from {info.get('baseline', 'a baseline')} "
        f"({info.get('steps')} trapezoid steps, more where needed): the parts add up to the output minus the "
        f"baseline's output within {err_s} (the largest gap over these inputs)."
    )


def _seconds(s: Section, info: dict[str, Any]) -> None:
    if isinstance(info.get("seconds"), (int, float)):
        s.note(f"these attributions took {float(info['seconds']):.2f} s in this run.")


def _skipped(s: Section, info: dict[str, Any], file: str) -> list[Section]:
    if info.get("skipped"):
        return [s.note(f"not computed: {info['skipped']}.")]
    return [
        s.note(f"missing: {file} (attributions of a few test inputs) is not in the run folder.")
    ]


def _class_name(classes: Sequence[Any] | None, code: int) -> str:
    return str(classes[code]) if classes and 0 <= code < len(classes) else str(code)


# ---------------------------------------------------------------------- images
def image_section(run: RunFolder) -> list[Section]:
    """Saliency overlays of a few test images across classes: red pixels push the predicted class up, blue down."""
    info = _info(run)
    s = Section("saliency", "Where the model looks")
    path = run.path / IMAGE_FILE
    if not info:
        return []
    if not path.is_file():
        return _skipped(s, info, IMAGE_FILE)
    with np.load(path, allow_pickle=False) as z:
        images, attr = z["images"], z["attributions"]
        y_true, y_pred, conf = z["y_true"], z["y_pred"], z["confidence"]
    s.plot(_overlay_grid(images, attr, y_true, y_pred, conf, run.classes))
    s.text(
        f"{len(images)} test images picked across the classes (a seeded draw, one class after another; not the "
        "first files of a folder). Top: the image, true → predicted class and its probability; below: the same "
        "image in grey with the pixels that raise the predicted class's score in red and those that lower it in "
        "blue (colour strength: the attribution, clipped at its 99th percentile). "
        + _how(info, "pixel")
    )
    _seconds(s, info)
    return [s]


def _overlay_grid(
    images: np.ndarray,
    attr: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    conf: np.ndarray,
    classes: Sequence[Any] | None,
) -> Plot:
    import matplotlib

    from dlpipe.evaluation.attributions import overlay_image

    title = "Integrated-gradients saliency on test images"
    if not len(images):
        return Plot("saliency", title, note="no images to show.")
    cols = min(8, len(images))
    groups = int(np.ceil(len(images) / cols))
    with matplotlib.rc_context({"font.size": 10}):
        cell = 11.0 / cols
        height = groups * (2 * cell + 0.75) + 0.5
        # each pair of rows (image, overlay) sits close; a group's titles need room above it
        fig = new_figure(
            11.0, height, left=0.1, right=0.1, bottom=0.1, top=0.85, wspace=0.08, hspace=0.06
        )
        axes = np.atleast_2d(fig.subplots(2 * groups, cols))
        for ax in axes.reshape(-1):
            ax.set_axis_off()
        for i in range(len(images)):
            r, c = 2 * (i // cols), i % cols
            img = np.asarray(images[i], np.float64)  # (C, H, W)
            img = (img - img.min()) / (np.ptp(img) or 1.0)
            top, bottom = axes[r, c], axes[r + 1, c]
            if img.shape[0] == 1:
                top.imshow(img[0], cmap="gray", interpolation="nearest")
            else:
                top.imshow(np.transpose(img[:3], (1, 2, 0)), interpolation="nearest")
            ok = y_true[i] == y_pred[i]
            top.set_title(
                f"{short_label(_class_name(classes, int(y_true[i])), 10)} → "
                f"{short_label(_class_name(classes, int(y_pred[i])), 10)}\n{conf[i]:.0%}",
                color="#1a7f37" if ok else "#cf222e",
                fontsize=9,
            )
            bottom.imshow(overlay_image(img, attr[i]), interpolation="nearest")
        fig.suptitle(title, fontsize=12, y=1 - 0.15 / height)
        return Plot("saliency", title, render(fig))


# ---------------------------------------------------------------------- sequences
def sequence_section(run: RunFolder) -> list[Section]:
    """Attributions over the time steps of a few test cases across classes."""
    info = _info(run)
    if not info:
        return []
    s = Section("step-attributions", "Which time steps the model uses")
    path = run.path / SEQUENCE_FILE
    if not path.is_file():
        return _skipped(s, info, SEQUENCE_FILE)
    with np.load(path, allow_pickle=False) as z:
        x, mask, attr = z["x"], z["mask"], z["attributions"]
        y_true, y_pred, conf = z["y_true"], z["y_pred"], z["confidence"]
    s.plot(_step_plot(x, mask, attr, y_true, y_pred, conf, run.classes))
    s.text(
        f"{len(x)} test cases picked across the classes. The line is the case as the model reads it (scaled; "
        "the first channels); the bars are each step's attribution summed over channels: red raises the "
        "predicted class's score, blue lowers it. " + _how(info, "step")
    )
    _seconds(s, info)
    return [s]


def _step_plot(
    x: np.ndarray,
    mask: np.ndarray,
    attr: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    conf: np.ndarray,
    classes: Sequence[Any] | None,
) -> Plot:
    import matplotlib

    title = "Attributions over time steps (test cases)"
    if not len(x):
        return Plot("step_attributions", title, note="no cases to show.")
    cols = 2 if len(x) > 1 else 1
    rows = int(np.ceil(len(x) / cols))
    with matplotlib.rc_context({"font.size": 10, "axes.grid": True, "grid.alpha": 0.3}):
        height = 2.3 * rows + 0.8
        fig = new_figure(
            11.0, height, left=0.6, right=0.9, bottom=0.5, top=0.6, wspace=0.45, hspace=0.6
        )
        axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
        for ax in axes[len(x) :]:
            ax.set_axis_off()
        for i in range(len(x)):
            ax = axes[i]
            n = int(mask[i].sum()) or x.shape[1]
            steps = np.arange(n)
            a = attr[i, :n].sum(axis=1)
            twin = ax.twinx()
            twin.bar(steps, a, width=1.0, color=np.where(a >= 0, "#cf222e", "#0969da"), alpha=0.45)
            lim = float(np.abs(a).max()) or 1.0
            twin.set_ylim(-1.1 * lim, 1.1 * lim)
            twin.grid(False)
            twin.set_ylabel("attribution", fontsize=9)
            for ch in range(min(3, x.shape[2])):
                ax.plot(steps, x[i, :n, ch], color=TRAIN if ch == 0 else None, lw=1.3)
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
            ax.set_xlabel("time step")
            ax.set_ylabel("value (scaled)", fontsize=9)
            ok = y_true[i] == y_pred[i]
            ax.set_title(
                f"{short_label(_class_name(classes, int(y_true[i])), 18)} → "
                f"{short_label(_class_name(classes, int(y_pred[i])), 18)} ({conf[i]:.0%})",
                color="#1a7f37" if ok else "#cf222e",
                fontsize=10,
            )
        fig.suptitle(title, fontsize=12, y=1 - 0.15 / height)
        return Plot("step_attributions", title, render(fig))


# ---------------------------------------------------------------------- text
def text_section(run: RunFolder) -> list[Section]:
    """Per-token attributions of a few test documents across classes, each token on its colour (escaped)."""
    info = _info(run)
    if not info:
        return []
    s = Section("token-attributions", "Which words the model uses")
    path = run.path / TEXT_FILE
    if not path.is_file():
        return _skipped(s, info, TEXT_FILE)
    docs = json.loads(path.read_text(encoding="utf-8")).get("documents") or []
    s.text(
        f"{len(docs)} test documents picked across the classes. Each token's background: red raises the "
        "predicted class's score, blue lowers it, stronger for larger attributions (scaled per document). "
        + _how(info, "token")
    )
    for d in docs:
        vals = [float(v) for _, v in d["tokens"]]
        scale = max((abs(v) for v in vals), default=0.0)
        top = list(
            dict.fromkeys(
                str(t) for t, v in sorted(d["tokens"], key=lambda tv: -float(tv[1])) if float(v) > 0
            )
        )[:5]
        caption = (
            f"test document {d['index']}: {d['true']} → {d['predicted']} ({float(d['confidence']):.0%}); "
            f"most for it: {', '.join(top) or 'none'}"
            + (f"; first {_MAX_TOKENS} tokens shown" if d.get("cut") else "")
        )
        s.tokens(
            TokenText(caption, [(str(t), token_colour(float(v), scale)) for t, v in d["tokens"]])
        )
    _seconds(s, info)
    return [s]
