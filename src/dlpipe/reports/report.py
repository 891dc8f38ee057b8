"""``runs/<name>/report.html``: one self-contained page that answers "is this model any good, and why".

Built from the run folder alone (so ``dlpipe report runs/<name>`` can rebuild it at any time): every
picture is a PNG under ``plots/`` and is also inlined as base64, the page has no script and fetches
nothing. Sections: verdict, data, model, training, evaluation, sections other kinds register
(:func:`dlpipe.reports.register_section`), environment. What a run lacks is marked missing.
"""

from __future__ import annotations

import base64
import html
import math
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.reports.folder import RunFolder, read_run_folder
from dlpipe.reports.plots import (
    PAGE_WIDTH,
    Plot,
    actual_vs_predicted_plot,
    calibration_plot,
    class_balance_plot,
    confusion_plot,
    first_layer_plot,
    history_plots,
    lr_finder_plot,
    pr_plot,
    residuals_plot,
    roc_plot,
    target_distribution_plot,
)
from dlpipe.reports.sections import Section, Table, extra_sections, replaced_sections

if TYPE_CHECKING:
    from dlpipe.bundle.bundle import Bundle

__all__ = ["build_report", "render_page", "reproduce", "verdict_tone"]

_METRIC_ORDER = (
    "accuracy",
    "f1",
    "f1_macro",
    "precision",
    "recall",
    "roc_auc",
    "log_loss",
    "r2",
    "mae",
    "rmse",
    "pearson",
    "mase",
)


def build_report(run: Any, *, bundle: Bundle | None = None, open_browser: bool = False) -> Path:
    """Write ``report.html`` and ``plots/*.png`` into a run folder and return the page's path.

    Args:
        run: A run folder path, or a :class:`dlpipe.Run` that was saved.
        bundle: The run's bundle when already in memory (saves loading it again).
        open_browser: Open the page in the default browser afterwards. Defaults to `False`.

    Raises:
        InvalidInputError: the folder is not a run folder (the message says what one holds).
    """
    path = getattr(run, "path", run)
    if path is None:
        from dlpipe.core.errors import InvalidInputError

        raise InvalidInputError(
            "this Run was not saved, so it has no folder to write a report into; call run.save(path) first."
        )
    started = time.perf_counter()
    folder = read_run_folder(path)
    sections = collect_sections(folder, bundle)
    page = render_page(
        title=f"dlpipe report · {folder.name}",
        heading=folder.name,
        subtitle=_subtitle(folder),
        verdict=folder.test.get("verdict", ""),
        tone=verdict_tone(folder.test.get("verdict", "")),
        banner=_banner(folder),
        sections=sections,
        footer=f"built in {time.perf_counter() - started:.2f} s from {folder.path.resolve()}",
    )
    out = folder.path / "report.html"
    # sections with ids "pictures..." show files already in plots/: never rewritten (nor deleted) by a report
    _write_plots(
        folder.path / "plots",
        [p for s in sections if not s.id.startswith("pictures") for p in s.plots],
    )
    tmp = out.with_name(f".report.html.tmp-{uuid.uuid4().hex[:6]}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    if open_browser:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())
    return out


def collect_sections(folder: RunFolder, bundle: Bundle | None = None) -> list[Section]:
    # A kind's own sections may stand in for standard ones (an RL run has no test split or epochs):
    # those are not built at all, so no per-epoch figure or "no test evaluation" note is drawn for it.
    skip = replaced_sections(folder.kind)
    appendix = Section("appendix", "Appendix: pictures that say little about this run")
    builders = [
        ("verdict", lambda: _verdict_section(folder)),
        ("data", lambda: _data_section(folder)),
        ("model", lambda: _model_section(folder, bundle, appendix)),
        ("training", lambda: _training_section(folder, appendix)),
        ("evaluation", lambda: _evaluation_section(folder, appendix)),
    ]
    sections = [build() for sid, build in builders if sid not in skip]
    sections.extend(extra_sections(folder))
    if appendix.items:
        sections.append(appendix)
    other = _other_pictures(
        folder, {p.name for s in sections if s.id.startswith("pictures") for p in s.plots}
    )
    if other is not None:
        sections.append(other)
    if "environment" not in skip:
        sections.append(_environment_section(folder))
    return [s for s in sections if s.items]


# ---------------------------------------------------------------------------------------- page
def render_page(
    *,
    title: str,
    heading: str,
    subtitle: str,
    sections: list[Section],
    verdict: str = "",
    tone: str = "neutral",
    banner: list[str] | None = None,
    footer: str = "",
) -> str:
    import jinja2

    # Autoescape on for every template and string: names, labels, values, paths and messages are the
    # user's (a column may be named `</script><script>...`); nothing here is marked safe.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dlpipe.reports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    env.filters["cell"] = _cell
    env.filters["figwidth"] = figure_width
    return env.get_template("report.html").render(
        title=title,
        heading=heading,
        subtitle=subtitle,
        sections=sections,
        verdict=verdict,
        tone=tone,
        banner=banner or [],
        footer=footer,
    )


# The content column at a 1280-px window: main's max-width 1280 minus 2 x 28 px padding.
CONTENT_PX = 1224
MIN_FIGURE_SHARE = 0.62  # no figure narrower than this share of the content column


def figure_width(png: bytes) -> float:
    """A figure's width on the page, in % of the content column: its own pixel width (so its fonts keep
    their size), at least 62% (a narrow picture from any part of dlpipe is widened), at most 100%."""
    width = int.from_bytes(png[16:20], "big") if png[:8] == b"\x89PNG\r\n\x1a\n" else 0
    share = min(1.0, max(MIN_FIGURE_SHARE, width / CONTENT_PX))
    return round(100 * share, 1)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "n/a"
        return f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4g}"
    return str(value)


def verdict_tone(verdict: str) -> str:
    """The tone of the verdict's first outcome word (the primary metric's; later clauses name other metrics)."""
    found = {
        tone: verdict.find(word)
        for word, tone in (("beats", "good"), ("loses", "bad"), ("ties", "warn"))
    }
    first = [(i, tone) for tone, i in found.items() if i >= 0]
    return min(first)[1] if first else "neutral"


def _subtitle(f: RunFolder) -> str:
    parts = [f.task, f"on {f.metrics.get('dataset', '?')}"]
    if f.metrics.get("target"):
        parts.append(f"target {f.metrics['target']!r}")
    if f.kind != "table":
        parts.append(f"({f.kind})")
    return " ".join(parts)


def _banner(f: RunFolder) -> list[str]:
    out = []
    expected = ["metrics.json", "history.csv", "bundle/manifest.json"]
    if f.task in ("binary", "multiclass", "regression"):
        expected.append("predictions.csv")
    essential = [m for m in f.missing if m in expected]
    if essential:
        out.append(
            f"This run folder lacks {', '.join(essential)}; the parts that depend on them are marked missing below."
        )
    if not f.test and f.metrics:
        out.append(
            "This run has no test evaluation (it may have been interrupted before evaluation)."
        )
    out.extend(f.problems)
    if f.metrics.get("evaluated_on_training_rows"):
        out.append(
            "The data set was too small to hold rows out: the scores below were measured on the training rows and are optimistic."
        )
    return out


_OWN = ".report-plots"  # the names of the PNGs the report wrote (other files in plots/ belong to others)


def _write_plots(folder: Path, plots: list[Plot]) -> None:
    """Write the report's PNGs into plots/, replacing only the ones a previous report wrote there."""
    folder.mkdir(parents=True, exist_ok=True)
    own = folder / _OWN
    if own.is_file():
        for name in own.read_text(encoding="utf-8").split():
            # only a plain PNG name inside plots/: an edited list ("../data.csv", "/home/...") removes nothing
            if Path(name).name == name and name.endswith(".png") and not name.startswith("."):
                (folder / name).unlink(missing_ok=True)
    seen: dict[str, int] = {}
    written = []
    for p in plots:
        if p.png is None:
            continue
        n = seen.get(p.name, 0)
        seen[p.name] = n + 1
        name = f"{p.name}.png" if n == 0 else f"{p.name}_{n + 1}.png"
        (folder / name).write_bytes(p.png)
        written.append(name)
    own.write_text("\n".join(written) + "\n", encoding="utf-8")


def _other_pictures(f: RunFolder, shown: set[str] | None = None) -> Section | None:
    """PNGs that other parts of dlpipe put in plots/ (samples, embeddings...) and no section showed yet, as they are."""
    folder = f.path / "plots"
    if not folder.is_dir():
        return None
    own = (
        set((folder / _OWN).read_text(encoding="utf-8").split())
        if (folder / _OWN).is_file()
        else set()
    )
    found = sorted(
        p
        for p in folder.glob("*.png")
        if p.name not in own and p.name != "history.png" and p.stem not in (shown or set())
    )
    if not found:
        return None
    s = Section("pictures", "More pictures")
    for p in found[:40]:
        s.plot(Plot(p.stem, p.stem.replace("_", " "), p.read_bytes()))
    return s


# ---------------------------------------------------------------------------------------- sections
def _verdict_section(f: RunFolder) -> Section:
    s = Section("verdict", "Model vs baselines")
    test = f.test
    if not test.get("model"):
        return s.note(
            "missing: no test metrics (metrics.json has no `test` part), so the model cannot be compared with its baselines."
        )
    s.table(_scores_table(test))
    rows = test.get("rows")
    s.text(
        f"Scores on the test split ({rows} rows), which played no part in training or model selection. "
        f"The primary metric is {test.get('primary_metric', '?')}; the baselines were fitted on the same training rows."
    )
    for note in test.get("baseline_notes") or []:
        s.note(str(note) + ".")
    run_only = [str(n) for n in test.get("run_only_baselines") or []]
    if run_only:
        s.note(
            f"{', '.join(run_only)}: scikit-learn defaults, scored in this run only. The bundle keeps the baselines "
            "that are plain numbers (majority/mean, logistic/ridge), so `dlpipe evaluate` on new data shows those; "
            "a tree ensemble has no JSON form and a bundle never holds a pickle."
        )
    return s


def _scores_table(test: dict[str, Any]) -> Table:
    model = test.get("model", {})
    keys = [k for k in _METRIC_ORDER if k in model and not isinstance(model[k], (list, dict))]
    keys += [
        k
        for k, v in model.items()
        if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    primary = test.get("primary_metric")
    if primary in keys:  # the primary metric's column first
        keys.insert(0, keys.pop(keys.index(primary)))
    cost = test.get("cost_s") if isinstance(test.get("cost_s"), dict) else None
    cols = [""] + [f"{k} ★" if k == primary else k for k in keys] + (["cost (s)"] if cost else [])
    tail = (lambda name: [cost.get(name)]) if cost else (lambda name: [])
    rows = [["model"] + [model.get(k) for k in keys] + tail("model")]
    for name, m in (test.get("baselines") or {}).items():
        rows.append([f"baseline: {name}"] + [m.get(k) for k in keys] + tail(name))
    caption = "★ primary metric"
    if cost:
        caption += (
            "; cost: seconds to fit and predict the test rows (the model: its training epochs)"
        )
    return Table(cols, rows, caption=caption, highlight=0)


def _data_section(f: RunFolder) -> Section:
    s = Section("data", "Data")
    split_rows = f.metrics.get("rows")
    if isinstance(split_rows, dict) and split_rows:
        s.table(
            Table(
                ["split", "rows"], [[k, v] for k, v in split_rows.items()], caption="rows per split"
            )
        )
    else:
        s.note("missing: rows per split (metrics.json has no `rows`).")
    schema = (f.manifest.get("preprocessor") or {}).get("schema") or {}
    cols = schema.get("columns") or []
    if cols:
        # the table `dlpipe train` prints, with the dtype and counts beside; dropped columns last
        rows = [
            [
                c.get("name"),
                c.get("kind"),
                c.get("reason") or "-",  # bundles before reasons were recorded have none
                c.get("dtype"),
                c.get("n_unique"),
                c.get("missing"),
            ]
            for c in cols
        ]
        dropped = [d for d in schema.get("dropped") or [] if isinstance(d, list) and len(d) == 2]
        rows += [[name, "dropped", why, None, None, None] for name, why in dropped]
        s.table(
            Table(
                ["column", "kind", "why", "dtype", "unique values", "missing values"],
                rows,
                caption=f"{len(cols)} input columns and their inferred kinds"
                + (f", {len(dropped)} dropped" if dropped else "")
                + f" (target {schema.get('target')!r})",
                collapsed=len(rows) > 12,
            )
        )
    elif f.kind == "table":
        s.note("missing: the column schema (bundle/manifest.json is absent).")
    task = f.manifest.get("task") or {}
    classes = f.classes
    if classes:
        y, _, note = _classification_predictions(f)
        test_counts = np.bincount(y, minlength=len(classes)).tolist() if y is not None else None
        s.plot(
            class_balance_plot(
                classes,
                task.get("class_counts") or None,
                test_counts,
                counts_label=_counts_label(f),
            )
        )
        counts = task.get("class_counts")
        if counts and min(counts) > 0 and max(counts) / min(counts) >= 3:
            s.text(
                f"The classes are imbalanced ({max(counts) / min(counts):.1f}:1); accuracy alone flatters a model that favours "
                "the large class, so read the per-class report and consider class_weight='balanced'."
            )
    elif f.task == "regression":
        y, _ = _regression_predictions(f)
        if y is not None:
            s.plot(
                target_distribution_plot(
                    y,
                    task.get("y_mean"),
                    task.get("y_std"),
                    str(f.metrics.get("target") or "target"),
                )
            )
        else:
            s.note("missing: the target distribution (predictions.csv is absent).")
    return s


def _counts_label(f: RunFolder) -> str:
    """What the task's class counts were taken from: the training data as given, before the split
    (it holds the test rows too unless a separate test file was passed)."""
    sources = f.metrics.get("data_sources") or {}
    if isinstance(sources, dict) and sources.get("test"):
        return "training file (train + validation rows)"
    return "all rows given to train (before the split)"


def _model_section(f: RunFolder, bundle: Bundle | None, appendix: Section) -> Section:
    s = Section("model", "Model")
    if bundle is None:
        if not (f.path / "bundle" / "manifest.json").is_file():
            return s.note("missing: bundle/ is absent, so the network cannot be described.")
        try:
            from dlpipe.bundle.bundle import load_bundle

            bundle = load_bundle(f.path / "bundle")
        except Exception as exc:  # noqa: BLE001 - a damaged bundle is said in the page
            return s.note(
                f"the bundle could not be loaded, so the network cannot be described: {exc}"
            )
    from dlpipe.reports.summary import first_layer_weight, model_diagram, summary

    info = summary(bundle)
    s.text(
        f"{info.model_name}: {info.total_params:,} parameters ({info.trainable_params:,} trainable)"
        + (
            f", about {info.mult_adds // max(info.input_shapes[0][0] if info.input_shapes and info.input_shapes[0] else 1, 1):,} multiply-adds per row."
            if info.mult_adds
            else "."
        )
    )
    rows = [
        [r["layer"], r["type"], r["output_shape"], r["params"], r["trainable"]]
        for r in info.table()
    ]
    s.table(
        Table(
            ["layer", "type", "output shape", "parameters", "trainable"],
            rows,
            caption="layers (N = batch)",
            collapsed=len(rows) > 25,
        )
    )
    if info.note:
        s.note(info.note)
    # the layer table above says the same in less room
    appendix.plot(model_diagram(info, min_width=PAGE_WIDTH))
    first = first_layer_weight(bundle.model, info.leaves or None)
    names = bundle.manifest.get("feature_names")
    # raw weights say little to a data scientist (the explanations section says which columns matter)
    appendix.plot(
        first_layer_plot(
            first[1] if first else None,
            first[0] if first else "",
            names if isinstance(names, list) else None,
        )
    )
    return s


def _loss_unit(f: RunFolder) -> tuple[str, str]:
    """The loss axis' unit and a sentence under the figure: a regression's loss is on the standardised
    target, not in target units."""
    loss = str((f.config.get("train") or {}).get("loss") or "loss")
    if f.task == "regression":
        y_std = (f.manifest.get("task") or {}).get("y_std")
        if not isinstance(y_std, (int, float)):
            return "standardised units", ""
        return "standardised units", (
            f"The loss ({loss}) is measured on the standardised target, (target - mean) / {y_std:.4g}: "
            f"for the squared error, RMSE in target units = {y_std:.4g} x the square root of the loss."
        )
    if f.task in ("binary", "multiclass"):
        return "nats per row", "The loss is the cross-entropy in nats per row (0 is perfect)."
    return "", ""


def _training_section(f: RunFolder, appendix: Section) -> Section:
    s = Section("training", "Training")
    tc = f.config.get("train") or {}
    facts = [
        ["epochs run", f.metrics.get("epochs_run", len(f.history) or None)],
        ["best epoch", f.metrics.get("best_epoch")],
        ["stopped early at", f.metrics.get("stopped_epoch") or "did not stop early"],
    ]
    for k in (
        "epochs",
        "batch_size",
        "learning_rate",
        "optimizer",
        "schedule",
        "patience",
        "weight_decay",
    ):
        if k in tc:
            facts.append([k.replace("_", " "), tc[k]])
    s.table(Table(["", ""], facts, caption="training settings (resolved)"))
    if not f.history:
        s.note(
            "missing: history.csv, so there are no per-epoch curves (the run may have stopped before its first epoch ended)."
        )
    else:
        unit, unit_note = _loss_unit(f)
        for p in history_plots(
            f.history_series(),
            f.metrics.get("best_epoch"),
            f.metrics.get("stopped_epoch"),
            loss_unit=unit,
        ):
            if p.name == "history" and unit_note and p.ok:
                p.note = unit_note
            # the learning rate and seconds per epoch are the machine's story, not the model's
            (appendix if p.name == "history_lr_time" else s).plot(p)
    if f.lr_finder:
        chosen = (
            tc.get("learning_rate") if isinstance(tc.get("learning_rate"), (int, float)) else None
        )
        s.plot(lr_finder_plot(f.lr_finder["lr"], f.lr_finder["loss"], chosen))
    return s


def _classification_predictions(f: RunFolder) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(true class codes, probabilities (N, C), note) from predictions.csv."""
    pred, classes = f.predictions, f.classes
    if not pred or not classes or "y_true" not in pred:
        return None, None, "predictions.csv is absent"
    index = {str(c): i for i, c in enumerate(classes)}
    codes = np.array([index.get(v, -1) for v in pred["y_true"]], dtype=np.int64)
    pcols = [k for k in pred if k.startswith("proba_")]
    proba = None
    if len(pcols) == len(classes):
        proba = np.array([[_num(v) for v in pred[k]] for k in pcols], dtype=float).T
    keep = codes >= 0
    if proba is not None:
        keep &= np.isfinite(proba).all(axis=1)
    note = "" if keep.all() else f"{int((~keep).sum())} test rows with unknown labels were left out"
    return codes[keep], (proba[keep] if proba is not None else None), note


def _regression_predictions(f: RunFolder) -> tuple[np.ndarray | None, np.ndarray | None]:
    pred = f.predictions
    if not pred or "y_true" not in pred or "prediction" not in pred:
        return None, None
    return np.array([_num(v) for v in pred["y_true"]]), np.array(
        [_num(v) for v in pred["prediction"]]
    )


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _evaluation_section(f: RunFolder, appendix: Section) -> Section:
    s = Section("evaluation", "Evaluation on the test split")
    model = f.test.get("model") or {}
    if f.task in ("binary", "multiclass") and f.classes:
        classes = f.classes
        y, proba, note = _classification_predictions(f)
        if note and y is not None:
            s.note(note + ".")
        cm = np.asarray(model.get("confusion_matrix") or [], dtype=np.int64)
        if cm.size == 0 and y is not None and proba is not None:
            cm = np.zeros((len(classes), len(classes)), np.int64)
            np.add.at(cm, (y, proba.argmax(axis=1)), 1)
        if cm.size:
            s.plot(confusion_plot(cm, classes))
        else:
            s.note("missing: the confusion matrix (no test metrics and no predictions.csv).")
        if y is None or proba is None:
            s.note(
                "missing: ROC, precision-recall and calibration curves need predictions.csv with class probabilities."
            )
        else:
            accuracy = model.get("accuracy")
            near_perfect = isinstance(accuracy, (int, float)) and accuracy >= _NEAR_PERFECT
            where = appendix if near_perfect else s
            if near_perfect:
                s.note(
                    f"At {accuracy:.1%} test accuracy the ROC, precision-recall and calibration curves hug "
                    "their corners and say little; they are in the appendix."
                )
            where.plot(roc_plot(y, proba, classes)).plot(pr_plot(y, proba, classes)).plot(
                calibration_plot(y, proba, classes)
            )
        per_class = model.get("per_class") or {}
        if per_class:
            rows = [
                [c, v.get("precision"), v.get("recall"), v.get("f1"), v.get("support")]
                for c, v in per_class.items()
            ]
            s.table(
                Table(
                    ["class", "precision", "recall", "F1", "support"],
                    rows,
                    caption="per-class report (test split)",
                    collapsed=len(rows) > 20,
                )
            )
    elif f.task == "regression":
        y, pred = _regression_predictions(f)
        if y is None or pred is None:
            s.note("missing: actual-vs-predicted and residual plots need predictions.csv.")
        else:
            target = str(f.metrics.get("target") or "target")
            s.plot(actual_vs_predicted_plot(y, pred, target)).plot(residuals_plot(y, pred))
    elif not model:
        s.note(f"missing: no test evaluation was recorded for this {f.task} run.")
    if not model and f.task in ("binary", "multiclass", "regression"):
        s.note("missing: test metrics (the run may have been interrupted before evaluation).")
    worst = worst_errors_table(f)
    if worst is not None:
        s.table(worst)
    return s


_NEAR_PERFECT = 0.99  # test accuracy from which the ROC/PR/calibration curves move to the appendix
_WORST_INPUTS = 8  # input columns shown beside each worst error (the most important first)


def worst_errors_table(f: RunFolder) -> Table | None:
    """The test rows the model got most wrong, with their inputs as given (``worst_errors.json``, written
    by a table run): truth, prediction, the score that ranks them, and the most important input columns."""
    import json

    path = f.path / "worst_errors.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        columns, rows = list(doc["columns"]), list(doc["rows"])
    except (ValueError, KeyError, TypeError):
        return None
    if not rows:
        return Table([""], [["The model got every test row right."]], caption="worst errors")
    perm = ((f.metrics.get("explanations") or {}).get("permutation") or {}).get("features") or {}
    ranked = sorted(
        range(len(columns)), key=lambda i: -float((perm.get(columns[i]) or {}).get("mean", 0.0))
    )[:_WORST_INPUTS]
    header = ["test row", "truth", "prediction", str(doc.get("score", "score"))]
    header += [str(columns[i]) for i in ranked]
    body = [
        [r.get("row"), r.get("truth"), r.get("prediction"), r.get("score")]
        + [(r.get("inputs") or [None] * len(columns))[i] for i in ranked]
        for r in rows
    ]
    shown = (
        f"; {len(ranked)} of {len(columns)} input columns, the most important first"
        if len(columns) > len(ranked)
        else ""
    )
    return Table(
        header,
        body,
        caption=f"The {len(rows)} worst errors ({doc.get('errors', '?')} wrong of {doc.get('test_rows', '?')} test rows), inputs as given{shown}"
        if f.task != "regression"
        else f"The {len(rows)} largest errors of {doc.get('test_rows', '?')} test rows, inputs as given{shown}",
        collapsed=False,
    )


def _environment_section(f: RunFolder) -> Section:
    s = Section("environment", "Environment and how to reproduce")
    env = dict(f.metrics.get("environment") or {})
    versions = f.manifest.get("versions") or {}
    rows: list[list[Any]] = [[f"{k} version", v] for k, v in versions.items()]
    for k in ("device", "torch_threads", "cpu_count", "seed"):
        if k in env:
            rows.append([k.replace("_", " "), env.pop(k)])
    rows += [[k.replace("_", " "), v] for k, v in env.items() if k not in versions]
    if "wall_time_s" in f.metrics:
        rows.append(["wall time (train + evaluate)", f"{f.metrics['wall_time_s']:.2f} s"])
    if "seed" not in (r[0] for r in rows) and "seed" in f.config:
        rows.append(["seed", f.config["seed"]])
    if rows:
        s.table(Table(["", ""], rows))
    else:
        s.note("missing: environment details (metrics.json has no `environment`).")
    if f.metrics.get("command"):
        s.text("The command that made this run:")
        s.code(str(f.metrics["command"]))
    if f.config:
        how, text = reproduce(f.metrics, f.path / "config.yaml")
        s.text(
            "To reproduce it (config.yaml has every resolved setting written out):"
            if how == "command"
            else "This run was made from Python; to reproduce it (config.yaml has every resolved setting written out):"
        )
        s.code(text)
        import yaml

        s.code(
            yaml.safe_dump(f.config, sort_keys=False), folded="the resolved config (config.yaml)"
        )
    else:
        s.note("missing: config.yaml, so the exact settings of this run are unknown.")
    return s


def reproduce(metrics: dict[str, Any], config_path: Path) -> tuple[str, str]:
    """How to rerun a run: ``("command", "dlpipe train DATA [--test TEST] --config ...")`` for a run made
    by the CLI (``dlpipe rl train --config ...`` for an RL run), ``("python", snippet)`` for one made from Python or from objects (a DataFrame cannot be
    named on a command line). Reads metrics.json's ``data_sources`` (older records: ``data_source``).
    """
    if (
        metrics.get("kind") == "rl"
    ):  # an environment is named, never passed as an object: the command always works
        return "command", " ".join(
            _quote(p) for p in ["dlpipe", "rl", "train", "--config", str(config_path)]
        )
    sources = metrics.get("data_sources") or {
        "train": {"source": metrics.get("data_source")},
        "test": None,
    }
    train, test = sources.get("train") or {}, sources.get("test")
    train_src = train.get("source")
    test_src = test.get("source") if isinstance(test, dict) else None
    if isinstance(test_src, str) and test_src.endswith(" (test split)"):
        test, test_src = (
            None,
            None,
        )  # a bundled data set's own test split: naming the data set brings it back
    objects = [
        (name, info)
        for name, info, src in (("train", train, train_src), ("test", test, test_src))
        if info is not None and _is_object(src)
    ]
    config = str(config_path)
    made_by_cli = metrics.get("origin", "cli" if metrics.get("command") else "python") == "cli"
    if made_by_cli and not objects:
        parts = (
            ["dlpipe", "train", str(train_src)]
            + (["--test", str(test_src)] if test_src else [])
            + ["--config", config]
        )
        if metrics.get("world_size"):
            parts += ["--nproc", str(metrics["world_size"])]
        return "command", " ".join(_quote(p) for p in parts)
    lines = ["import dlpipe as dl", ""]
    for name, info in objects:
        rows, sha, what = info.get("rows"), info.get("sha256"), info.get("source") or "an object"
        lines.append(
            f"# the {name} data was {'a DataFrame' if what == 'DataFrame' else what}"
            f"{f' of {rows:,} rows' if isinstance(rows, int) else ''}{f' (sha256 {sha[:16]}...)' if sha else ''}:"
            f" pass the same data as {name}_data"
        )
    names = {name for name, _ in objects}
    data = "train_data" if "train" in names else repr(str(train_src))
    test_arg = (
        ", test=test_data" if "test" in names else (f", test={str(test_src)!r}" if test_src else "")
    )
    lines.append(f"run = dl.train({data}{test_arg}, config={config!r})")
    return "python", "\n".join(lines)


def _is_object(source: Any) -> bool:
    """A data source passed as an object (``"DataFrame"``, ``"<ImageDataset>"``), not a path or data set name."""
    return not isinstance(source, str) or source == "DataFrame" or source.startswith("<")


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def escape(text: str) -> str:
    return html.escape(text)
