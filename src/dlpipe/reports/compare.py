"""The runs index (``dlpipe runs``), run comparison (``dlpipe compare``) and ``dl.plot_history``."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError
from dlpipe.reports.folder import RunFolder, is_run_folder, read_run_folder
from dlpipe.reports.plots import MARK, Plot, integer_epochs, new_figure, render
from dlpipe.reports.sections import Section, Table

__all__ = ["list_runs", "compare_runs", "plot_history", "run_row"]


def run_row(folder: Path) -> dict[str, Any]:
    """One line of the runs index, read from metrics.json and config.yaml only (fast)."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = {}
    test = metrics.get("test") or {}
    metric = test.get("primary_metric")
    model_value = (test.get("model") or {}).get(metric) if metric else None
    base = {n: m.get(metric) for n, m in (test.get("baselines") or {}).items() if isinstance(m.get(metric), (int, float))}
    best_base = max(base, key=lambda n: base[n]) if base else None
    family = None
    manifest = folder / "bundle" / "manifest.json"
    if manifest.is_file():
        try:
            spec = json.loads(manifest.read_text(encoding="utf-8")).get("model_spec") or {}
            family = spec.get("family")
            if spec.get("hidden"):
                family = f"{family} {'-'.join(str(h) for h in spec['hidden'])}"
        except (OSError, ValueError):
            pass
    return {
        "name": folder.name,
        "path": str(folder),
        "task": metrics.get("task", "?"),
        "dataset": metrics.get("dataset", "?"),
        "model": family or "?",
        "metric": metric or "-",
        "value": model_value,
        "baseline": f"{best_base} {base[best_base]:.4f}" if best_base else "-",
        "beats_baseline": (model_value > base[best_base]) if best_base and model_value is not None else None,
        "epochs": metrics.get("epochs_run"),
        "time_s": metrics.get("wall_time_s"),
        "report": (folder / "report.html").is_file(),
        "modified": (folder / "metrics.json").stat().st_mtime if (folder / "metrics.json").is_file() else folder.stat().st_mtime,
    }


def list_runs(runs_dir: str | Path = "runs") -> list[dict[str, Any]]:
    """Every run folder under ``runs_dir``, oldest first: task, model, key metric, best baseline, time.

    Raises:
        InvalidInputError: ``runs_dir`` does not exist.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise InvalidInputError(f"runs folder {str(root)!r} does not exist; train a model first (`dlpipe train ...`) or pass `--runs-dir`.")
    rows = [run_row(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_run_folder(p)]
    return sorted(rows, key=lambda r: r["modified"])


def _resolve_run(run: Any) -> RunFolder:
    if isinstance(run, RunFolder):
        return run
    path = getattr(run, "path", run)
    if path is None:
        raise InvalidInputError("this Run was not saved, so it has no folder; call run.save(path) first.")
    return read_run_folder(path)


def _history_axes(runs: Sequence[RunFolder]) -> list[str]:
    names: list[str] = []
    for r in runs:
        for key in r.history_series():
            base = key[4:] if key.startswith("val_") else key
            if base not in ("epoch", "time") and base not in names:
                names.append(base)
    return names


def _overlay(runs: Sequence[RunFolder], name: str, labels: Sequence[str]) -> Plot:
    import matplotlib

    title = f"{name} per epoch"
    with matplotlib.rc_context({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 7}):
        fig = new_figure(6.0, 3.4)
        ax = fig.subplots()
        drawn = False
        for i, (r, label) in enumerate(zip(runs, labels)):
            h = r.history_series()
            epochs = h.get("epoch", np.arange(1, len(r.history) + 1))
            colour = f"C{i % 10}"
            if name in h:
                ax.plot(epochs, h[name], color=colour, linestyle="--" if name != "lr" else "-", label=f"{label} train" if name != "lr" else label)
                drawn = True
            if f"val_{name}" in h:
                ax.plot(epochs, h[f"val_{name}"], color=colour, label=f"{label} validation")
                drawn = True
        if name == "lr" and drawn:
            lo, hi = ax.dataLim.y0, ax.dataLim.y1
            if lo > 0 and hi / lo > 20:
                ax.set_yscale("log")
        ax.set(title=title, xlabel="epoch", ylabel=name)
        integer_epochs(ax)
        if drawn:
            ax.legend(loc="best")
        return Plot(f"compare_{name}", title, render(fig) if drawn else None, note="" if drawn else "no run recorded it.")


def compare_runs(runs: Sequence[Any], out: str | Path | None = None) -> Path:
    """An HTML page comparing runs: metric table, overlaid curves, and the settings that differ.

    Args:
        runs: Two or more run folders (paths or saved :class:`dlpipe.Run` objects).
        out: Where to write the page. Defaults to ``<parent of the first run>/compare-<a>-vs-<b>.html``.
    """
    from dlpipe.reports.report import render_page

    if len(runs) < 2:
        raise InvalidInputError(f"compare needs at least 2 run folders but got {len(runs)}; pass two or more paths such as runs/a runs/b.")
    started = time.perf_counter()
    folders = [_resolve_run(r) for r in runs]
    labels = _labels(folders)
    table = Section("metrics", "Test scores")
    from dlpipe.reports.report import _METRIC_ORDER

    present = {k for f in folders for k, v in (f.test.get("model") or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    keys = [k for k in _METRIC_ORDER if k in present] or sorted(present)
    rows = []
    for f, label in zip(folders, labels):
        row = run_row(f.path)
        rows.append([label, f.task, row["model"], row["metric"], *((f.test.get("model") or {}).get(k) for k in keys), row["baseline"],
                     f.metrics.get("epochs_run"), f.metrics.get("n_parameters"), f.metrics.get("wall_time_s")])
    table.table(Table(["run", "task", "model", "primary", *keys, "best baseline", "epochs", "parameters", "wall time s"], rows,
                      caption="test split scores of each run's model"))
    tasks = {f.task for f in folders}
    if len(tasks) > 1:
        table.note(f"these runs solve different tasks ({', '.join(sorted(tasks))}); their scores are not comparable.")
    datasets = {str(f.metrics.get("dataset")) for f in folders}
    if len(datasets) > 1:
        table.note(f"these runs were trained on different data ({', '.join(sorted(datasets))}); compare scores with care.")
    for f, label in zip(folders, labels):
        if f.test.get("verdict"):
            table.text(f"{label}: {f.test['verdict']}")
    curves = Section("curves", "Training curves")
    names = _history_axes(folders)
    if not names:
        curves.note("missing: none of these runs has a history.csv.")
    for name in names:
        curves.plot(_overlay(folders, name, labels))
    settings = Section("settings", "Settings that differ")
    flat = [_flatten(f.config) for f in folders]
    diff_keys = sorted({k for d in flat for k in d if len({json.dumps(x.get(k), default=str) for x in flat}) > 1})
    if diff_keys:
        settings.table(Table(["setting", *labels], [[k, *(_show(d.get(k)) for d in flat)] for k in diff_keys]))
    else:
        settings.text("The runs share every setting in config.yaml.")
    page = render_page(
        title="dlpipe comparison · " + " vs ".join(labels), heading="Comparison: " + " vs ".join(labels),
        subtitle=", ".join(str(f.path) for f in folders), sections=[table, curves, settings],
        footer=f"built in {time.perf_counter() - started:.2f} s",
    )
    target = Path(out) if out is not None else folders[0].path.parent / f"compare-{folders[0].name}-vs-{folders[1].name}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:6]}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target


def _labels(folders: Sequence[RunFolder]) -> list[str]:
    names = [f.name for f in folders]
    if len(set(names)) < len(names):
        names = [str(f.path) for f in folders]
    return names


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(v: Any) -> Any:
    return "-" if v is None else (", ".join(map(str, v)) if isinstance(v, list) else v)


def plot_history(run: Any, path: str | Path | None = None) -> Path:
    """Loss, each metric and the learning rate per epoch in one picture (Keras' ``plot(history)``).

    Args:
        run: A saved :class:`dlpipe.Run` or a run folder path.
        path: The PNG to write. Defaults to ``<run folder>/plots/history.png``.
    """
    import matplotlib

    folder = _resolve_run(run)
    h = folder.history_series()
    if not h:
        raise InvalidInputError(f"run {str(folder.path)!r} has no history.csv, so there is no history to plot; it may have been interrupted before its first epoch.")
    names = [n for n in _history_axes([folder])]
    epochs = h.get("epoch", np.arange(1, len(folder.history) + 1))
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    best = folder.metrics.get("best_epoch")
    with matplotlib.rc_context({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8}):
        fig = new_figure(4.2 * cols, 3.0 * rows)
        axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
        for ax, name in zip(axes, names):
            if name in h:
                ax.plot(epochs, h[name], label="train" if name != "lr" else "learning rate")
            if f"val_{name}" in h:
                ax.plot(epochs, h[f"val_{name}"], label="validation")
            if best:
                ax.axvline(best, color=MARK, linestyle="--", linewidth=1, label=f"best epoch {best}")
            if name == "lr" and np.all(h["lr"] > 0):
                ax.set_yscale("log")
            ax.set(title=name, xlabel="epoch")
            integer_epochs(ax)
            ax.legend()
        for ax in axes[len(names):]:
            ax.set_axis_off()
        fig.suptitle(folder.name)
        png = render(fig)
    target = Path(path) if path is not None else folder.path / "plots" / "history.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)
    return target
