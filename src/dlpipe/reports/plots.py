"""Every picture of a report, drawn with matplotlib's object API on the Agg canvas.

Each function returns a :class:`Plot`: PNG bytes, or ``png=None`` and a ``note`` saying in one
sentence why the picture could not be drawn (a 1-row test split, a single class...). Nothing here
raises on odd data: a report shows what it can. matplotlib is imported on first use (~0.5 s).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Plot",
    "new_figure",
    "render",
    "history_plots",
    "lr_finder_plot",
    "class_balance_plot",
    "target_distribution_plot",
    "confusion_plot",
    "roc_plot",
    "pr_plot",
    "calibration_plot",
    "actual_vs_predicted_plot",
    "residuals_plot",
    "first_layer_plot",
    "short_label",
    "integer_epochs",
]

DPI = 90
# Figures are drawn at the page's width and shown at their own pixel size (no browser scaling, so the
# fonts keep their size): 11 in at 90 dpi is 990 px, 81% of the 1,224-px content column a 1280-px
# window gives the report. No figure of a table run is narrower than PAGE_WIDTH * 0.85 (the browser
# test checks every figure is at least 60% of the content width).
PAGE_WIDTH = 11.0
TRAIN, VAL, MARK = "#1f77b4", "#ff7f0e", "#2ca02c"
_STYLE: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 10,
    "legend.frameon": False,
}
_SKIP_KEYS = {"epoch", "loss", "val_loss", "lr", "time"}


@dataclass
class Plot:
    """One picture of the report: ``png`` bytes, or ``None`` with a ``note`` saying why not."""

    name: str
    title: str
    png: bytes | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.png is not None


def new_figure(
    width: float,
    height: float,
    *,
    constrained: bool = False,
    left: float = 0.75,
    right: float = 0.2,
    bottom: float = 0.55,
    top: float = 0.35,
    wspace: float = 0.3,
    hspace: float = 0.45,
) -> Figure:
    """A figure on no GUI backend (the object API never touches pyplot's global state).

    Margins are fixed in inches unless ``constrained``: the constrained layout costs a second full
    draw at save time (measured: about twice the time per figure), so only crowded figures use it.
    """
    from matplotlib.figure import Figure

    if constrained:
        return Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
        hspace=hspace,
    )
    return fig


def render(fig: Figure) -> bytes:
    """The figure as PNG bytes, with mathtext off so names and labels from the user's data are drawn as typed.

    A column, class or category named with two ``$`` (``$\\bad$``) would otherwise be parsed as TeX
    math: a parse error loses the picture (and with it the whole report), a valid one draws other text.
    """
    import matplotlib
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    move_legends_off_data(fig)
    buf = io.BytesIO()
    with matplotlib.rc_context({"text.parse_math": False}):  # tick labels made while drawing
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def legend_covers(ax: Axes) -> int:
    """How many of ``ax``'s data points (scatter points, line vertices, bar tops) its legend's box covers.

    Reference lines (an identity diagonal, a chance line, an epoch marker) are given ``gid="reference"``
    by the functions here and are not data. Measured in display pixels from the figure's own layout
    (the legend's ``loc="best"`` placement included), so no draw is needed.
    """
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle

    legend = ax.get_legend()
    if legend is None or not legend.get_visible():
        return 0
    fig = ax.get_figure(root=True)
    assert fig is not None
    if not hasattr(fig.canvas, "get_renderer"):  # a bare Figure: the Agg canvas savefig uses
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = legend.get_window_extent(renderer)
    points: list[np.ndarray] = []
    for line in ax.get_lines():
        if line.get_gid() != "reference" and line.get_visible():
            xy = np.asarray(line.get_xydata(), dtype=float)
            points.append(line.get_transform().transform(xy[np.isfinite(xy).all(axis=1)]))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_gid() != "reference":
            xy = np.asarray(coll.get_offsets(), dtype=float)
            points.append(coll.get_offset_transform().transform(xy[np.isfinite(xy).all(axis=1)]))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_gid() != "reference":
            b = patch.get_window_extent(renderer)
            points.append(np.array([[b.x0, b.y1], [b.x1, b.y1], [(b.x0 + b.x1) / 2, b.y1]]))
    if not points:
        return 0
    xy = np.concatenate([p.reshape(-1, 2) for p in points])
    inside = (
        (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)
    )
    return int(inside.sum())


def move_legends_off_data(fig: Figure) -> None:
    """A legend drawn inside its axes that covers data points moves where it covers none.

    Called by :func:`render` for every figure, so a legend placed by hand or by ``loc="best"`` never
    hides a point: it goes to the first inside corner that covers none, else beside the axes (the
    functions here leave room on the right where their data can fill the axes).
    """
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or legend.get_bbox_to_anchor() != ax.bbox or not legend_covers(ax):
            continue  # no legend, one anchored outside already, or one on empty space
        for corner in _CORNERS:  # an empty corner inside first (there is room for it there)
            legend.set_loc(corner)
            if not legend_covers(ax):
                break
        else:
            legend.set_loc("upper left")
            legend.set_bbox_to_anchor((1.01, 1.0), transform=ax.transAxes)


_CORNERS: tuple[Any, ...] = (  # Any: matplotlib types the names as a Literal
    "upper right",
    "upper left",
    "lower right",
    "lower left",
    "center right",
    "center left",
)


def _style() -> Any:
    import matplotlib

    return matplotlib.rc_context(_STYLE)  # type: ignore[arg-type]


def _text_inches(labels: Sequence[str], size: float) -> float:
    """Rough width of the longest label (DejaVu Sans averages ~0.6 em per character)."""
    return max((len(t) for t in labels), default=1) * size * 0.6 / 72


def _axes_at(fig: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
    """Axes placed in inches: fixed layout without the constrained layout's second draw."""
    w, h = fig.get_size_inches()
    return fig.add_axes((left / w, bottom / h, width / w, height / h))


def short_label(value: Any, limit: int = 18) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------- training
def history_plots(
    h: dict[str, np.ndarray],
    best_epoch: int | None = None,
    stopped_epoch: int | None = None,
    loss_unit: str = "",
) -> list[Plot]:
    """Loss and each metric per epoch (train vs validation) in one picture, then learning rate and time per epoch.

    ``loss_unit`` labels the loss axis (a regression's loss is on the standardised target, not in
    target units).
    """
    if not h or "loss" not in h and "val_loss" not in h:
        return [
            Plot(
                "history",
                "Loss and metrics per epoch",
                note="no per-epoch history was recorded (history.csv is missing or empty).",
            )
        ]
    n = len(next(iter(h.values())))
    epochs = h.get("epoch", np.arange(1, n + 1, dtype=float))
    names = ["loss"]
    for key in h:
        base = key[4:] if key.startswith("val_") else key
        if key not in _SKIP_KEYS and base not in names:
            names.append(base)
    plots = []
    with _style():
        cols = min(3, len(names))
        rows = math.ceil(len(names) / cols)
        fig = new_figure(PAGE_WIDTH if cols <= 2 else 13.4, 3.4 * rows, left=0.9, wspace=0.28)
        axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
        marker = "o" if n <= 3 else None
        for ax, m in zip(axes, names):
            train, val = h.get(m), h.get(f"val_{m}")
            if train is not None and np.isfinite(train).any():
                ax.plot(epochs, train, color=TRAIN, label="train", marker=marker)
            if val is not None and np.isfinite(val).any():
                ax.plot(epochs, val, color=VAL, label="validation", marker=marker)
            ax.set(title=f"{m} per epoch", xlabel="epoch")
            if m == "loss" and loss_unit:
                ax.set_ylabel(loss_unit)
            integer_epochs(ax)
            _mark_epochs(ax, best_epoch, stopped_epoch)
            ax.legend(loc="best")
        for ax in axes[len(names) :]:
            ax.set_axis_off()
        plots.append(Plot("history", "Loss and metrics per epoch", render(fig)))
    if "lr" in h or "time" in h:
        with _style():
            fig = new_figure(PAGE_WIDTH, 3.0, left=0.9)
            ax1, ax2 = fig.subplots(1, 2)
            if "lr" in h:
                ax1.plot(epochs, h["lr"], color=TRAIN)
                lr = h["lr"][np.isfinite(h["lr"])]
                if len(lr) and np.all(lr > 0) and lr.max() / lr.min() > 20:
                    ax1.set_yscale("log")
                elif len(lr):
                    ax1.set_ylim(0, float(lr.max()) * 1.15 or 1.0)
            ax1.set(title="Learning rate (end of epoch)", xlabel="epoch")
            integer_epochs(ax1)
            integer_epochs(ax2)
            if "time" in h:
                if (
                    n > 30
                ):  # one filled step path instead of hundreds of bar patches (each a draw call)
                    ax2.fill_between(
                        epochs, h["time"], step="mid", color=TRAIN, alpha=0.85, linewidth=0
                    )
                    ax2.set_ylim(bottom=0)
                else:
                    ax2.bar(epochs, h["time"], color=TRAIN, width=0.8)
                ax2.set(
                    title=f"Seconds per epoch (total {np.nansum(h['time']):.2f} s)", xlabel="epoch"
                )
            _mark_epochs(ax1, best_epoch, stopped_epoch, legend=False)
            plots.append(Plot("history_lr_time", "Learning rate and time per epoch", render(fig)))
    return plots


def integer_epochs(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _mark_epochs(ax: Axes, best: int | None, stopped: int | None, legend: bool = True) -> None:
    if best:
        ax.axvline(
            best,
            color=MARK,
            linestyle="--",
            linewidth=1,
            label=f"best epoch {best}" if legend else None,
            gid="reference",
        )
    if stopped and stopped != best:
        ax.axvline(
            stopped,
            color="grey",
            linestyle=":",
            linewidth=1,
            label=f"early stop at {stopped}" if legend else None,
            gid="reference",
        )


def lr_finder_plot(lrs: Sequence[float], losses: Sequence[float], chosen: float | None) -> Plot:
    title = "Learning-rate range test"
    if len(lrs) < 2:
        return Plot("lr_finder", title, note="the range test recorded fewer than 2 points.")
    with _style():
        fig = new_figure(PAGE_WIDTH, 3.4)
        ax = fig.subplots()
        ax.plot(lrs, losses, color=TRAIN)
        ax.set_xscale("log")
        if chosen:
            ax.axvline(
                chosen, color=MARK, linestyle="--", label=f"chosen {chosen:.2g}", gid="reference"
            )
            ax.legend()
        ax.set(title=title, xlabel="learning rate (log)", ylabel="smoothed loss")
        return Plot("lr_finder", title, render(fig))


# ---------------------------------------------------------------------------------------- data
def class_balance_plot(
    classes: Sequence[Any],
    counts: Sequence[int] | None,
    test_counts: Sequence[int] | None,
    counts_label: str = "training data",
) -> Plot:
    """Rows per class: ``counts`` (what the task was inferred from, named by ``counts_label``) beside the
    test split's."""
    title = "Class balance"
    if not classes or (not counts and not test_counts):
        return Plot("class_balance", title, note="no class counts were recorded for this run.")
    k = len(classes)
    labels = [short_label(c) for c in classes]
    with _style():
        tilt = sum(len(t) for t in labels) > 60 or max(map(len, labels)) * k > 70
        bottom = 0.55 + (0.72 * _text_inches(labels, 11) if tilt else 0.15)
        fig = new_figure(
            max(PAGE_WIDTH, min(13.4, 0.45 * k + 3)), 3.0 + bottom, left=0.9, bottom=bottom
        )
        ax = fig.subplots()
        x = np.arange(k)
        width = 0.4 if counts and test_counts else 0.8
        if counts:
            ax.bar(
                x - (width / 2 if test_counts else 0),
                counts,
                width,
                color=TRAIN,
                label=counts_label,
            )
        if test_counts:
            ax.bar(
                x + (width / 2 if counts else 0), test_counts, width, color=VAL, label="test split"
            )
        ax.set_xticks(x, labels, rotation=45 if tilt else 0, ha="right" if tilt else "center")
        top = max(max(counts or [0]), max(test_counts or [0]))
        ax.set(title=title, ylabel="rows", ylim=(0, top * 1.3 + 1))
        ax.legend(loc="upper right", ncols=2)
        return Plot("class_balance", title, render(fig))


def target_distribution_plot(
    y: np.ndarray, mean: float | None, std: float | None, target: str = "target"
) -> Plot:
    title = "Target distribution"
    y = y[np.isfinite(y)]
    if len(y) < 2:
        return Plot(
            "target_distribution",
            title,
            note=f"the test split has {len(y)} value(s); too few for a histogram.",
        )
    with _style():
        fig = new_figure(PAGE_WIDTH, 3.4, left=0.9)
        ax = fig.subplots()
        ax.hist(
            y,
            bins=min(40, max(5, int(math.sqrt(len(y))))),
            color=TRAIN,
            alpha=0.85,
            label="test split",
        )
        if mean is not None and std is not None:
            ax.axvline(
                mean,
                color=MARK,
                linestyle="--",
                label=f"train mean {mean:.3g} (std {std:.3g})",
                gid="reference",
            )
        ax.set(title=title, xlabel=f"{short_label(target, 40)} (target units)", ylabel="test rows")
        ax.legend()
        return Plot("target_distribution", title, render(fig))


# ---------------------------------------------------------------------------------------- evaluation
def confusion_plot(cm: np.ndarray, classes: Sequence[Any]) -> Plot:
    title = "Confusion matrix"
    k = len(classes)
    if cm.size == 0 or cm.sum() == 0:
        return Plot("confusion_matrix", title, note="the test split is empty.")
    labels = [short_label(c, 14) for c in classes]
    side = max(3.2, min(9.0, 0.42 * k + 1.6))
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    tilt = max(map(len, labels)) > 3 and (k > 3 or max(map(len, labels)) > 6)
    text = _text_inches(labels, 11)
    left, bottom, bar = text + 0.55, (0.72 * text if tilt else 0.2) + 0.5, 0.8
    natural = 2 * (left + side + bar) + 0.1
    width = max(PAGE_WIDTH, natural)
    x0 = (width - natural) / 2  # a small matrix is centred on a page-wide canvas
    with _style():
        fig = new_figure(width, bottom + side + 0.45)
        axes = [
            _axes_at(fig, x0 + left + i * (left + side + bar), bottom, side, side) for i in range(2)
        ]
        for n, (ax, mat, sub, fmt) in enumerate(
            ((axes[0], cm, "counts", "d"), (axes[1], norm, "share of each true class", ".2f"))
        ):
            im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=mat.max() if mat.max() > 0 else 1)
            ax.grid(False)
            ax.set_xticks(
                range(k), labels, rotation=45 if tilt else 0, ha="right" if tilt else "center"
            )
            ax.set_yticks(range(k), labels)
            ax.set(title=f"{title}: {sub}", xlabel="predicted", ylabel="true")
            if k <= 20:
                hi = mat.max() / 2 if mat.max() > 0 else 0.5
                for i in range(k):
                    for j in range(k):
                        if k > 4 and mat[i, j] == 0:
                            continue  # empty cells stay blank so the mistakes stand out
                        ax.text(
                            j,
                            i,
                            format(mat[i, j], fmt),
                            ha="center",
                            va="center",
                            fontsize=10 if k <= 10 else 7,
                            color="white" if mat[i, j] > hi else "black",
                        )
            fig.colorbar(
                im,
                cax=_axes_at(
                    fig, x0 + left + n * (left + side + bar) + side + 0.1, bottom, 0.14, side
                ),
            )
        return Plot("confusion_matrix", title, render(fig))


def _curve_targets(
    y: np.ndarray, proba: np.ndarray, classes: Sequence[Any]
) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], list[str]]:
    """(label, is_positive, score) per curve to draw: the positive class for binary, one-vs-rest for multiclass."""
    notes: list[str] = []
    if len(classes) == 2:
        return [(short_label(classes[1]), y == 1, proba[:, 1])], notes
    curves = []
    for i, c in enumerate(classes[:10]):
        pos = y == i
        if pos.all() or not pos.any():
            notes.append(f"class {short_label(c)!s} is absent from the test split")
            continue
        curves.append((short_label(c), pos, proba[:, i]))
    if len(classes) > 10:
        notes.append(f"only the first 10 of {len(classes)} classes are drawn")
    return curves, notes


def _two_classes_note(y: np.ndarray, classes: Sequence[Any], what: str) -> str | None:
    if len(y) < 2:
        return f"the test split has {len(y)} row(s); a {what} needs at least 2."
    present = np.unique(y)
    if len(present) < 2:
        return f"the test split holds a single class ({short_label(classes[int(present[0])]) if len(present) else '-'}); a {what} needs both positives and negatives."
    return None


def _curve_plot(
    key: str,
    title: str,
    what: str,
    y: np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Any],
    draw: Callable[[Any, list[tuple[str, np.ndarray, np.ndarray]], list[str]], None],
) -> Plot:
    """The shared frame of the ROC and precision-recall figures: one curve per class, ``draw`` adds them."""
    skip = _two_classes_note(y, classes, what)
    if skip:
        return Plot(key, title, note=skip)
    curves, notes = _curve_targets(y, proba, classes)
    with _style():
        # square axes on the left, the legend to their right: a curve can pass through any corner
        fig = new_figure(PAGE_WIDTH, 4.6)
        draw(_axes_at(fig, 0.9, 0.65, 3.6, 3.6), curves, notes)
        return Plot(key, title, render(fig), note="; ".join(notes))


def _unit_diagonal(ax: Any, label: str) -> None:
    """The dashed grey diagonal of a unit square (a ROC curve's chance, a calibration curve's ideal),
    marked as a reference line so the legend placement ignores it."""
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label=label, gid="reference")


def roc_plot(y: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> Plot:
    from sklearn.metrics import auc, roc_curve

    title = "ROC curve" if len(classes) == 2 else "ROC curves (one class vs rest)"

    def draw(ax: Any, curves: list[tuple[str, np.ndarray, np.ndarray]], notes: list[str]) -> None:
        for label, pos, s in curves:
            fpr, tpr, _ = roc_curve(pos, s)
            ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
        _unit_diagonal(ax, "chance")
        ax.set(
            title=title,
            xlabel="false positive rate",
            ylabel="true positive rate",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        ax.set_aspect("equal")
        ax.legend(**_LEGEND_RIGHT)

    return _curve_plot("roc", title, "ROC curve", y, proba, classes, draw)


def pr_plot(y: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> Plot:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    title = (
        "Precision-recall curve"
        if len(classes) == 2
        else "Precision-recall curves (one class vs rest)"
    )

    def draw(ax: Any, curves: list[tuple[str, np.ndarray, np.ndarray]], notes: list[str]) -> None:
        for label, pos, s in curves:
            p, r, _ = precision_recall_curve(pos, s)
            line = ax.plot(r, p, label=f"{label} (AP {average_precision_score(pos, s):.3f})")
            if len(curves) <= 3:
                ax.axhline(
                    pos.mean(),
                    color=line[0].get_color(),
                    linestyle=":",
                    linewidth=0.8,
                    gid="reference",
                )
        ax.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(**_LEGEND_RIGHT)
        notes.append(
            "dotted lines: the share of each class (a random model's precision)"
            if len(curves) <= 3
            else "a random model's precision equals each class's share of the rows"
        )

    return _curve_plot("precision_recall", title, "precision-recall curve", y, proba, classes, draw)


# beside the axes, never on them: a curve or a point can lie anywhere inside
_LEGEND_RIGHT: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.04, 1.0)}


def calibration_plot(
    y: np.ndarray, proba: np.ndarray, classes: Sequence[Any], bins: int = 10
) -> Plot:
    """Reliability diagram: predicted probability vs observed frequency (binary: the positive class;
    multiclass: the top class's confidence vs accuracy), with how many rows fall in each bin."""
    title = "Calibration"
    if len(y) < 2:
        return Plot(
            "calibration",
            title,
            note=f"the test split has {len(y)} row(s); a calibration curve needs at least 2.",
        )
    if len(classes) == 2:
        conf, hit, what = proba[:, 1], (y == 1).astype(float), f"P({short_label(classes[1])})"
    else:
        conf, hit, what = (
            proba.max(axis=1),
            (proba.argmax(axis=1) == y).astype(float),
            "confidence of the predicted class",
        )
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    thin = max(3, int(0.01 * len(y)))  # a bin of 1-2 rows says nothing about calibration
    used = counts >= thin
    if not used.any():
        used = counts > 0
    mean_conf = np.bincount(which, conf, bins)[used] / counts[used]
    freq = np.bincount(which, hit, bins)[used] / counts[used]
    ece = float(np.sum(np.abs(freq - mean_conf) * counts[used]) / max(int(counts[used].sum()), 1))
    hidden = int((counts > 0).sum() - used.sum())
    with _style():
        # the curve (square), its legend beside it, then how many rows each bin holds
        fig = new_figure(PAGE_WIDTH, 4.6)
        ax = _axes_at(fig, 0.9, 0.65, 3.6, 3.6)
        hx = _axes_at(fig, 7.0, 0.65, 3.7, 3.6)
        _unit_diagonal(ax, "perfectly calibrated")
        ax.plot(mean_conf, freq, marker="o", color=TRAIN, label=f"model (ECE {ece:.3f})")
        ax.set(
            title=title,
            xlabel=what,
            ylabel="observed frequency" if len(classes) == 2 else "accuracy",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        ax.legend(**_LEGEND_RIGHT)
        hx.bar((edges[:-1] + edges[1:]) / 2, counts, width=1 / bins * 0.9, color=TRAIN, alpha=0.7)
        hx.set(title="Test rows per bin", xlabel=what, ylabel="test rows", xlim=(0, 1))
        note = f"{hidden} bin(s) with fewer than {thin} rows are not drawn" if hidden else ""
        return Plot("calibration", title, render(fig), note=note)


def actual_vs_predicted_plot(y: np.ndarray, pred: np.ndarray, target: str = "target") -> Plot:
    """Test rows' prediction against their truth, in target units; the legend and the errors' summary
    sit beside the square axes, never on the points."""
    title = "Actual vs predicted"
    ok = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    if len(y) < 1:
        return Plot(
            "actual_vs_predicted",
            title,
            note="the test split has no rows with a finite target and prediction.",
        )
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    pad = (hi - lo) * 0.05 or 1.0
    with _style():
        fig = new_figure(PAGE_WIDTH, 5.0)
        ax = _axes_at(fig, 0.95, 0.65, 4.0, 4.0)
        ax.scatter(
            y,
            pred,
            s=12,
            alpha=0.6 if len(y) > 200 else 0.8,
            color=TRAIN,
            edgecolors="none",
            label="test rows",
        )
        ax.plot(
            [lo - pad, hi + pad],
            [lo - pad, hi + pad],
            color="grey",
            linestyle="--",
            linewidth=1,
            label="identity (perfect)",
            gid="reference",
        )
        name = short_label(target, 30)
        ax.set(
            title=title,
            xlabel=f"actual {name} (target units)",
            ylabel=f"predicted {name}",
            xlim=(lo - pad, hi + pad),
            ylim=(lo - pad, hi + pad),
        )
        ax.set_aspect("equal")
        ax.legend(**_LEGEND_RIGHT)
        err = pred - y
        ss = float(((y - y.mean()) ** 2).sum())
        facts = [
            f"{len(y):,} test rows",
            f"MAE  {np.abs(err).mean():.4g}",
            f"RMSE {math.sqrt(float((err**2).mean())):.4g}",
            f"R²   {1 - float((err**2).sum()) / ss:.3f}" if ss > 0 else "R²   n/a",
            f"largest error {np.abs(err).max():.4g}",
            "(errors in target units)",
        ]
        ax.text(1.06, 0.62, "\n".join(facts), transform=ax.transAxes, va="top", family="monospace")
        return Plot("actual_vs_predicted", title, render(fig))


def residuals_plot(y: np.ndarray, pred: np.ndarray) -> Plot:
    title = "Residuals"
    ok = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    if len(y) < 2:
        return Plot(
            "residuals",
            title,
            note=f"the test split has {len(y)} row(s); residual plots need at least 2.",
        )
    res = y - pred
    with _style():
        fig = new_figure(PAGE_WIDTH, 3.6, left=0.9)
        a1, a2 = fig.subplots(1, 2)
        a1.scatter(pred, res, s=12, alpha=0.7, color=TRAIN, edgecolors="none")
        a1.axhline(0, color="grey", linestyle="--", linewidth=1, gid="reference")
        a1.set(
            title="Residual vs predicted",
            xlabel="predicted (target units)",
            ylabel="actual - predicted",
        )
        a2.hist(res, bins=min(40, max(5, int(math.sqrt(len(res))))), color=TRAIN, alpha=0.85)
        a2.axvline(0, color="grey", linestyle="--", linewidth=1, gid="reference")
        a2.set(
            title=f"Residual distribution (mean {res.mean():.3g}, std {res.std():.3g})",
            xlabel="actual - predicted (target units)",
            ylabel="test rows",
        )
        return Plot("residuals", title, render(fig))


# ---------------------------------------------------------------------------------------- model
def first_layer_plot(
    weight: np.ndarray | None, layer_name: str, feature_names: Sequence[str] | None = None
) -> Plot:
    """Heatmap of a dense layer's weights (units x inputs) or a grid of conv filters."""
    title = "First-layer weights"
    if weight is None:
        return Plot(
            "first_layer_weights",
            title,
            note="the model has no dense or convolutional first layer to draw.",
        )
    with _style():
        if weight.ndim == 4:  # conv2d (out, in, kh, kw): one small image per filter
            n = min(64, weight.shape[0])
            cols = min(8, n)
            rows = math.ceil(n / cols)
            fig = new_figure(
                max(PAGE_WIDTH * 0.9, min(1.1 * cols + 0.5, 9.5)),
                1.1 * rows + 0.6,
                left=0.15,
                right=0.15,
                bottom=0.1,
                top=0.45,
                wspace=0.1,
                hspace=0.1,
            )
            axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
            for i, ax in enumerate(axes):
                ax.set_axis_off()
                if i >= n:
                    continue
                w = weight[i]
                if w.shape[0] == 3:  # RGB filters shown in colour, scaled to [0, 1]
                    img = np.transpose(w, (1, 2, 0))
                    img = (img - img.min()) / (np.ptp(img) or 1.0)
                    ax.imshow(img, interpolation="nearest")
                else:
                    v = w.mean(axis=0)
                    m = float(np.abs(v).max()) or 1.0
                    ax.imshow(v, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
            fig.suptitle(f"{title}: {layer_name}, {n} of {weight.shape[0]} filters")
            return Plot("first_layer_weights", title, render(fig))
        w = weight.reshape(weight.shape[0], -1)
        shown = w[:64].T  # (inputs, units): input names read along the y axis
        m = float(np.abs(shown).max()) or 1.0
        k, units = shown.shape
        named = feature_names is not None and len(feature_names) == k and k <= 80
        fs = 10 if k <= 20 else 8 if k <= 40 else 6
        left = (
            _text_inches([short_label(f, 24) for f in feature_names], fs)
            if named and feature_names is not None
            else 0.3
        ) + 0.55
        fig = new_figure(
            max(PAGE_WIDTH, min(13.4, 0.11 * units + 2.0 + left)),
            max(2.4, min(10.0, (0.2 if k <= 30 else 0.12) * min(k, 300) + 1.2)),
            left=left,
            right=0.7,
            bottom=0.55,
            top=0.35,
        )
        ax = fig.subplots()
        im = ax.imshow(
            shown, cmap="RdBu_r", vmin=-m, vmax=m, aspect="auto", interpolation="nearest"
        )
        ax.grid(False)
        if named:
            assert feature_names is not None
            ax.set_yticks(range(k), [short_label(f, 24) for f in feature_names], fontsize=fs)
            ax.set_ylabel("input feature")
        else:
            ax.set_ylabel("input index")
        ax.set_xlabel("unit" + (f" (first 64 of {w.shape[0]})" if w.shape[0] > 64 else ""))
        ax.set_title(f"{title}: {layer_name}, weight {tuple(weight.shape)} (red +, blue -)")
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        return Plot("first_layer_weights", title, render(fig))
