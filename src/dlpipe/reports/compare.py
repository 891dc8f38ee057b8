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
from dlpipe.evaluation.directions import best_score, compare_scores, is_score, metric_direction
from dlpipe.reports.folder import RunFolder, is_run_folder, read_run_folder
from dlpipe.reports.plots import MARK, Plot, integer_epochs, new_figure, render
from dlpipe.reports.sections import Section, Table

__all__ = [
    "list_runs",
    "compare_runs",
    "comparison_warnings",
    "evaluation_data",
    "plot_history",
    "run_row",
]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_metrics(folder: Path) -> dict[str, Any]:
    try:
        return _dict(json.loads((folder / "metrics.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _headline(metrics: dict[str, Any]) -> tuple[str | None, Any, dict[str, Any]]:
    """``(primary metric, the model's value, {baseline: value})`` of a run's metrics.json, or ``(None, None, {})``.

    Reads the ``test`` block every fitter writes (``primary_metric``, ``model``, ``baselines``);
    an RL run without one is read from its final greedy ``evaluation`` beside the ``random`` policy.
    """
    test = _dict(metrics.get("test"))
    metric = test.get("primary_metric")
    if isinstance(metric, str) and metric:
        base = {str(n): _dict(m).get(metric) for n, m in _dict(test.get("baselines")).items()}
        return metric, _dict(test.get("model")).get(metric), base
    evaluation = _dict(metrics.get("evaluation"))
    if "mean_return" in evaluation:
        random = _dict(metrics.get("random")).get("mean_return")
        return (
            "mean_return",
            evaluation.get("mean_return"),
            ({"random": random} if "random" in metrics else {}),
        )
    return None, None, {}


def run_row(folder: Path) -> dict[str, Any]:
    """One line of the runs index, read from metrics.json and the bundle manifest only (fast).

    ``baseline`` is the best baseline by the primary metric's direction (lowest MAE, MASE, log
    loss or reconstruction error; highest accuracy, ROC-AUC or R²); ``vs_baseline`` is
    ``"better"``, ``"tie"`` (within 1e-9, not a win) or ``"worse"``, and ``beats_baseline`` is
    ``True`` only for ``"better"``. Both are ``None`` when there is nothing to compare: no primary
    metric, a null (non-finite) score, no scored baseline, or a metric of unknown direction.
    """
    metrics = _read_metrics(folder)
    metric, value, baselines = _headline(metrics)
    value = float(value) if is_score(value) else None
    best = best_score(metric, baselines) if metric else None
    outcome = (
        compare_scores(metric, value, best[1]) if metric and best and value is not None else None
    )
    family = None
    manifest = folder / "bundle" / "manifest.json"
    if manifest.is_file():
        try:
            spec = _dict(_dict(json.loads(manifest.read_text(encoding="utf-8"))).get("model_spec"))
            family = spec.get("family")
            if family and isinstance(spec.get("hidden"), list) and spec["hidden"]:
                family = f"{family} {'-'.join(str(h) for h in spec['hidden'])}"
        except (OSError, ValueError):
            pass
    rl = "env_id" in metrics
    if rl and family is None:
        family = metrics.get("algo")
    stat = folder / "metrics.json" if (folder / "metrics.json").is_file() else folder
    return {
        "name": folder.name,
        "path": str(folder),
        "task": metrics.get("task") or ("rl" if rl else "?"),
        "dataset": metrics.get("dataset") or (metrics.get("env_id") if rl else None) or "?",
        "model": str(family) if family else "?",
        "metric": metric or "-",
        "direction": metric_direction(metric) if metric else None,
        "value": value,
        "baseline": f"{best[0]} {best[1]:.4f}" if best else "-",
        "baseline_name": best[0] if best else None,
        "baseline_value": best[1] if best else None,
        "vs_baseline": outcome,
        "beats_baseline": None if outcome is None else outcome == "better",
        "epochs": metrics.get("epochs_run"),
        "time_s": metrics.get("wall_time_s"),
        "report": (folder / "report.html").is_file(),
        "modified": stat.stat().st_mtime,
    }


def list_runs(runs_dir: str | Path = "runs") -> list[dict[str, Any]]:
    """Every run folder under ``runs_dir``, oldest first: task, model, key metric, best baseline, time.

    Raises:
        InvalidInputError: ``runs_dir`` does not exist.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise InvalidInputError(
            f"runs folder {str(root)!r} does not exist; train a model first (`dlpipe train ...`) or pass the folder that holds your run folders as `runs_dir`."
        )
    rows = [
        run_row(p)
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and is_run_folder(p)
    ]
    return sorted(rows, key=lambda r: r["modified"])


def _resolve_run(run: Any) -> RunFolder:
    if isinstance(run, RunFolder):
        return run
    path = getattr(run, "path", run)
    if path is None:
        raise InvalidInputError(
            "this Run was not saved, so it has no folder; call run.save(path) first."
        )
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
    with matplotlib.rc_context(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 7}
    ):
        fig = new_figure(6.0, 3.4)
        ax = fig.subplots()
        drawn = False
        for i, (r, label) in enumerate(zip(runs, labels)):
            h = r.history_series()
            epochs = h.get("epoch", np.arange(1, len(r.history) + 1))
            colour = f"C{i % 10}"
            if name in h:
                ax.plot(
                    epochs,
                    h[name],
                    color=colour,
                    linestyle="--" if name != "lr" else "-",
                    label=f"{label} train" if name != "lr" else label,
                )
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
        return Plot(
            f"compare_{name}",
            title,
            render(fig) if drawn else None,
            note="" if drawn else "no run recorded it.",
        )


def evaluation_data(
    metrics: dict[str, Any], config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The identity of the rows a run was scored on: ``source``, ``rows``, ``sha256`` and ``split``.

    Read from metrics.json's ``data_sources`` when the run recorded it (``test`` null means the
    test split was carved from the training data, so its identity is the training file's plus the
    split's fraction and seed); older runs fall back to ``rows.test``, ``data_source`` and
    ``dataset``. A value that was not recorded is ``None``.
    """
    config = _dict(config)
    sources = _dict(metrics.get("data_sources"))
    given, train = sources.get("test"), _dict(sources.get("train"))
    split_rows = _dict(metrics.get("rows")).get("test")
    if split_rows is None:
        split_rows = _dict(metrics.get("test")).get("rows")
    if isinstance(given, dict):
        rows = given.get("rows") if given.get("rows") is not None else split_rows
        return {
            "source": given.get("source"),
            "rows": rows,
            "sha256": given.get("sha256"),
            "split": "a separate test file",
        }
    source = train.get("source") or metrics.get("data_source") or metrics.get("dataset")
    split = None
    if sources:  # recorded: the test split was carved from the training data
        fraction, seed = _dict(config.get("data")).get("test_fraction"), config.get("seed")
        split = "carved from the training data" + (
            f" (test_fraction {fraction}, seed {seed})"
            if fraction is not None and seed is not None
            else ""
        )
    return {
        "source": source,
        "rows": split_rows,
        "sha256": train.get("sha256") if sources else None,
        "split": split,
    }


def _data_differences(ids: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[str]:
    """What differs between the runs' evaluation data, one phrase per field; a field not recorded by every run is not compared."""
    out = []
    fields = ["rows", "split"]
    hashed = all(i["sha256"] for i in ids)
    fields += (
        ["sha256"] if hashed else ["source"]
    )  # the same bytes under two paths are the same data
    for key in fields:
        values = [i[key] for i in ids]
        if (
            all(v is not None for v in values)
            and len({json.dumps(v, default=str) for v in values}) > 1
        ):
            shown = [str(v)[:12] if key == "sha256" else str(v) for v in values]
            name = {
                "rows": "test rows",
                "split": "test split",
                "sha256": "test data sha256",
                "source": "test data",
            }[key]
            out.append(f"{name} " + " vs ".join(f"{v} ({lab})" for v, lab in zip(shown, labels)))
    return out


def comparison_warnings(runs: Sequence[Any]) -> list[str]:
    """Sentences that warn what makes these runs' scores not comparable: different tasks or different test data.

    Raises:
        InvalidInputError: a path is not a run folder.
    """
    folders = [_resolve_run(r) for r in runs]
    return _warnings(folders, _labels(folders))


def _warnings(folders: Sequence[RunFolder], labels: Sequence[str]) -> list[str]:
    out = []
    tasks = {str(f.task) for f in folders}
    if len(tasks) > 1:
        out.append(
            f"these runs solve different tasks ({', '.join(sorted(tasks))}); their scores are not comparable."
        )
    diffs = _data_differences([evaluation_data(f.metrics, f.config) for f in folders], labels)
    if diffs:
        out.append(
            f"these runs were scored on different test data ({'; '.join(diffs)}); their scores are not comparable, "
            "so score them on the same test file (`test`) before choosing one."
        )
    train = [_dict(_dict(f.metrics.get("data_sources")).get("train")) for f in folders]
    key = (
        "sha256"
        if all(t.get("sha256") for t in train)
        else "source"
        if all(t.get("source") for t in train)
        else None
    )
    trained = (
        {str(t[key]) for t in train} if key else {str(f.metrics.get("dataset")) for f in folders}
    )
    if len(trained) > 1:
        names = sorted(
            {str(t.get("source") or f.metrics.get("dataset")) for t, f in zip(train, folders)}
        )
        names = names if len(names) > 1 else [f"{names[0]}, with different contents (sha256)"]
        out.append(
            f"these runs were trained on different data ({', '.join(names)}); compare scores with care."
        )
    return out


def _best_runs(
    keys: Sequence[str], scores: Sequence[dict[str, Any]], labels: Sequence[str], comparable: bool
) -> list[str]:
    """Per metric, the label of the run that scores best by its direction ("=" when the best tie, "-" when unknown)."""
    if not comparable:
        return ["not comparable"] * len(keys)
    out = []
    for k in keys:
        values = {lab: s.get(k) for lab, s in zip(labels, scores)}
        best = best_score(k, values)
        if best is None:
            out.append("-")
            continue
        tied = [
            lab
            for lab, v in values.items()
            if is_score(v) and compare_scores(k, v, best[1]) == "tie"
        ]
        out.append("=" if len(tied) > 1 else best[0])
    return out


def _arrow(metric: str) -> str:
    direction = metric_direction(metric)
    return f"{metric} {'↑' if direction == 'max' else '↓'}" if direction else metric


def compare_runs(runs: Sequence[Any], out: str | Path | None = None) -> Path:
    """An HTML page comparing runs: metric table, the data each was scored on, overlaid curves, settings that differ.

    The page warns when the runs solve different tasks or were scored on different test data
    (rows, source or sha256 differ); the "best" row names the better run per metric by the
    metric's direction (↑ higher is better, ↓ lower), and says "not comparable" when the test data differ.

    Args:
        runs: Two or more run folders (paths or saved :class:`dlpipe.Run` objects).
        out: Where to write the page. Defaults to ``<parent of the first run>/compare-<a>-vs-<b>.html``.
    """
    from dlpipe.reports.report import _METRIC_ORDER, render_page

    if len(runs) < 2:
        raise InvalidInputError(
            f"compare needs at least 2 run folders but got {len(runs)}; pass two or more paths such as runs/a runs/b."
        )
    started = time.perf_counter()
    folders = [_resolve_run(r) for r in runs]
    labels = _labels(folders)
    table = Section("metrics", "Test scores")
    scores = [_dict(f.test.get("model")) for f in folders]
    present = {
        k
        for m in scores
        for k, v in m.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    keys = [k for k in _METRIC_ORDER if k in present]
    keys += sorted(present - set(keys))
    warnings = _warnings(folders, labels)
    ids = [evaluation_data(f.metrics, f.config) for f in folders]
    comparable = not _data_differences(ids, labels) and len({str(f.task) for f in folders}) == 1
    rows = []
    for f, label, m in zip(folders, labels, scores):
        row = run_row(f.path)
        primary = row["metric"] if row["metric"] == "-" else _arrow(row["metric"])
        rows.append(
            [
                label,
                f.task,
                row["model"],
                primary,
                *(m.get(k) for k in keys),
                row["baseline"],
                f.metrics.get("epochs_run"),
                f.metrics.get("n_parameters"),
                f.metrics.get("wall_time_s"),
            ]
        )
    rows.append(["best", "", "", "", *_best_runs(keys, scores, labels, comparable), "", "", "", ""])
    table.table(
        Table(
            [
                "run",
                "task",
                "model",
                "primary",
                *(_arrow(k) for k in keys),
                "best baseline",
                "epochs",
                "parameters",
                "wall time s",
            ],
            rows,
            caption="test split scores of each run's model; ↑ higher is better, ↓ lower is better; "
            "the last row names the better run per metric (= a tie)",
        )
    )
    table.table(
        Table(
            ["run", "test data", "test rows", "sha256", "test split"],
            [
                [label, i["source"], i["rows"], (i["sha256"] or "-")[:12], i["split"] or "-"]
                for label, i in zip(labels, ids)
            ],
            caption="the data each run was scored on (- not recorded by that run)",
        )
    )
    for w in warnings:
        table.note(w)
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
    diff_keys = sorted(
        {k for d in flat for k in d if len({json.dumps(x.get(k), default=str) for x in flat}) > 1}
    )
    if diff_keys:
        settings.table(
            Table(["setting", *labels], [[k, *(_show(d.get(k)) for d in flat)] for k in diff_keys])
        )
    elif comparable:
        settings.text("The runs share every setting in config.yaml.")
    else:
        settings.text(
            "No setting in config.yaml differs, but the runs were not scored on the same test data or task "
            "(see Test scores), so their scores differ for that reason, not for a setting."
        )
    page = render_page(
        title="dlpipe comparison · " + " vs ".join(labels),
        heading="Comparison: " + " vs ".join(labels),
        subtitle=", ".join(str(f.path) for f in folders),
        sections=[table, curves, settings],
        footer=f"built in {time.perf_counter() - started:.2f} s",
    )
    target = (
        Path(out)
        if out is not None
        else folders[0].path.parent / f"compare-{folders[0].name}-vs-{folders[1].name}.html"
    )
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
        raise InvalidInputError(
            f"run {str(folder.path)!r} has no history.csv, so there is no history to plot; it may have been interrupted before its first epoch."
        )
    names = [n for n in _history_axes([folder])]
    epochs = h.get("epoch", np.arange(1, len(folder.history) + 1))
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    best = folder.metrics.get("best_epoch")
    with matplotlib.rc_context(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8}
    ):
        fig = new_figure(4.2 * cols, 3.0 * rows)
        axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
        for ax, name in zip(axes, names):
            if name in h:
                ax.plot(epochs, h[name], label="train" if name != "lr" else "learning rate")
            if f"val_{name}" in h:
                ax.plot(epochs, h[f"val_{name}"], label="validation")
            if best:
                ax.axvline(
                    best, color=MARK, linestyle="--", linewidth=1, label=f"best epoch {best}"
                )
            if name == "lr" and np.all(h["lr"] > 0):
                ax.set_yscale("log")
            ax.set(title=name, xlabel="epoch")
            integer_epochs(ax)
            ax.legend()
        for ax in axes[len(names) :]:
            ax.set_axis_off()
        fig.suptitle(folder.name)
        png = render(fig)
    target = Path(path) if path is not None else folder.path / "plots" / "history.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)
    return target
