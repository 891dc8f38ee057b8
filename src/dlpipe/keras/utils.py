"""Keras' small helpers: ``to_categorical``, ``set_random_seed``, ``clear_session`` and ``plot_model``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError
from dlpipe.core.files import private_tmp

__all__ = ["to_categorical", "set_random_seed", "clear_session", "plot_model"]


def to_categorical(y: Any, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels (n,) -> one-hot float32 (n, num_classes)."""
    codes = np.asarray(y).reshape(-1)
    if codes.size and (codes.min() < 0 or not np.all(np.equal(np.mod(codes, 1), 0))):
        raise InvalidInputError(
            "`to_categorical` needs integer class labels >= 0; encode the labels first, e.g. with np.unique(y, return_inverse=True)."
        )
    codes = codes.astype(np.int64)
    n = int(num_classes if num_classes is not None else (codes.max() + 1 if codes.size else 0))
    if codes.size and codes.max() >= n:
        raise InvalidInputError(
            f"`y` holds class {int(codes.max())} but `num_classes` is {n}; pass num_classes > {int(codes.max())}."
        )
    return np.eye(n, dtype=np.float32)[codes]


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (weights and batch order follow from it)."""
    from dlpipe.core.runtime import seed_everything

    seed_everything(seed)


def clear_session() -> None:
    """Restart Keras' layer-name counters (the next ``Dense`` is ``dense`` again), as ``keras.backend.clear_session``."""
    from dlpipe.keras._layer import clear_names

    clear_names()


def plot_model(
    model: Any,
    to_file: str | Path = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    **unknown: Any,
) -> Path:
    """Draw the model's layers and their connections into a PNG, as Keras' ``plot_model`` (no graphviz needed).

    Each box is one layer (``name (Type)``, with its output shape when ``show_shapes``); arrows follow
    the data, top to bottom (``rankdir="TB"``) or left to right (``"LR"``). Returns the file's path.
    """
    from dlpipe.keras._layer import unknown_keywords

    if unknown:
        raise unknown_keywords(
            "`plot_model`",
            unknown,
            [
                "model",
                "to_file",
                "show_shapes",
                "show_dtype",
                "show_layer_names",
                "rankdir",
                "expand_nested",
                "dpi",
                "show_layer_activations",
                "show_trainable",
            ],
        )
    from dlpipe.keras.model import Model

    if not isinstance(model, Model):
        raise InvalidInputError(
            f"`plot_model` draws dlpipe.keras models, not {type(model).__name__}; for other networks use dlpipe.plot_model."
        )
    if rankdir not in ("TB", "LR"):
        raise InvalidInputError(f"`rankdir` is {rankdir!r} but must be 'TB' or 'LR'.")
    model._require_built("plot_model")
    out = Path(to_file)
    if out.suffix.lower() not in (".png", ""):
        raise InvalidInputError(
            f"`to_file` is {str(to_file)!r}; plot_model writes PNG files, so end the name with .png."
        )
    if out.suffix == "":
        out = out.with_suffix(".png")
    if out.exists() or out.is_symlink():
        ours = False
        if out.is_file() and not out.is_symlink():
            try:
                with out.open("rb") as fh:
                    ours = fh.read(8) == b"\x89PNG\r\n\x1a\n"
            except OSError:
                ours = False
        if not ours:
            raise InvalidInputError(
                f"`to_file` {str(out)!r} exists and is not a PNG image; plot_model replaces only PNG files, so pass another path."
            )
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    by_name = {layer.name: layer for layer in model.layers}
    nodes = [(n, "InputLayer", s) for n, s in model._inputs]
    nodes += [(k, type(by_name[k]).__name__, model._shapes[k]) for k, _ in model._plan]
    depth = {n: 0 for n, _ in model._inputs}
    for key, sources in model._plan:
        depth[key] = 1 + max(depth[s] for s in sources)
    rows: dict[int, list[str]] = {}
    for name, _, _ in nodes:
        rows.setdefault(depth[name], []).append(name)

    def label(name: str, kind: str, shape: Any) -> str:
        text = f"{name} ({kind})" if show_layer_names else kind
        layer = by_name.get(name)
        if show_layer_activations and layer is not None and layer.activation != "linear":
            text += f"\nactivation: {layer.activation}"
        if show_shapes:
            text += f"\noutput: {(None, *shape)}"
        return text

    pos: dict[str, tuple[float, float]] = {}
    for d, names in rows.items():
        for i, name in enumerate(names):
            along = (i - (len(names) - 1) / 2) * 3.4
            pos[name] = (along, -d * 1.4) if rankdir == "TB" else (d * 3.8, -along * 0.45)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    fig_w = max(4.0, (max(xs) - min(xs)) / 1.4 + 3.5)
    fig_h = max(2.0, (max(ys) - min(ys)) / 1.4 + 1.4)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.set_axis_off()
    bw, bh = 3.0, 1.0 if show_shapes or show_layer_activations else 0.6
    for name, kind, shape in nodes:
        x, y = pos[name]
        ax.add_patch(
            FancyBboxPatch(
                (x - bw / 2, y - bh / 2),
                bw,
                bh,
                boxstyle="round,pad=0.05",
                facecolor="#e8eef7" if kind != "InputLayer" else "#f3f3f3",
                edgecolor="#3c5a8a",
            )
        )
        ax.text(x, y, label(name, kind, shape), ha="center", va="center", fontsize=7)
    for key, sources in model._plan:
        for s in sources:
            (x0, y0), (x1, y1) = pos[s], pos[key]
            start = (x0, y0 - bh / 2) if rankdir == "TB" else (x0 + bw / 2, y0)
            end = (x1, y1 + bh / 2) if rankdir == "TB" else (x1 - bw / 2, y1)
            ax.add_patch(
                FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color="#333333")
            )
    ax.set_xlim(min(xs) - bw, max(xs) + bw)
    ax.set_ylim(min(ys) - bh, max(ys) + bh)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(out)
    try:
        fig.savefig(tmp, dpi=min(int(dpi), 300), bbox_inches="tight", format="png")
        tmp.replace(out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
