"""``MODEL_CARD.md``: what a bundle is for and how far to trust it, in words, written beside its manifest.

A model card (Mitchell et al., 2019) for the person who receives a bundle folder: the data it learned
from, its test scores beside the baselines, calibration, interval coverage, intended use and
limitations. Written from the manifest alone by every ``save`` (a table run adds the figures only its
evaluation knows under the manifest's ``card`` key, see :func:`card_facts`).

The card is documentation only: loading a bundle never opens it (the loaders read ``manifest.json``
and the safetensors weights), so editing or deleting it changes nothing. Every name that comes from
the user's data (columns, classes, the target) is written inside a Markdown code span, with backticks,
table pipes and line breaks neutralised, so a column named ``<script>`` is shown, never rendered.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["MODEL_CARD", "card_facts", "model_card", "write_model_card"]

MODEL_CARD = "MODEL_CARD.md"
_MAX_COLUMNS = 40  # input columns listed; the rest are counted
_SCORES = ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "rmse", "mae", "r2")


def card_facts(test: dict[str, Any], trust: dict[str, Any], rows: dict[str, int]) -> dict[str, Any]:
    """The manifest's ``card``: a table run's test scores with its baselines, calibration and interval
    coverage, and rows per split (plain JSON numbers; the rest of the card comes from the manifest)."""

    def scalars(m: Any) -> dict[str, float]:
        if not isinstance(m, dict):
            return {}
        return {k: float(v) for k, v in m.items() if k in _SCORES and _number(v)}

    cal = trust.get("calibration") or {}
    iv = trust.get("intervals") or {}
    facts: dict[str, Any] = {
        "rows": {str(k): int(v) for k, v in rows.items()},
        "primary_metric": test.get("primary_metric"),
        "model": scalars(test.get("model")),
        "baselines": {str(k): scalars(v) for k, v in (test.get("baselines") or {}).items()},
        "verdict": str(test.get("verdict") or ""),
        "run_only_baselines": [str(n) for n in test.get("run_only_baselines") or []],
    }
    if cal:
        facts["calibration"] = {
            "temperature": cal.get("temperature"),
            "applied": bool(cal.get("applied")),
            "validation_rows": cal.get("validation_rows"),
            "test_ece": cal.get("test_ece"),
            "test_log_loss": cal.get("test_log_loss"),
            "note": cal.get("note", ""),
        }
    if iv:
        facts["intervals"] = {
            k: iv.get(k) for k in ("levels", "half_widths", "test_coverage", "validation_rows")
        }
    return facts


def write_model_card(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``folder/MODEL_CARD.md`` from ``manifest`` (called inside a save's temporary folder)."""
    (folder / MODEL_CARD).write_text(model_card(manifest), encoding="utf-8")


def model_card(manifest: dict[str, Any]) -> str:
    """The card's Markdown text for a bundle ``manifest`` (any kind; what the manifest lacks is said)."""
    task = _dict(manifest.get("task"))
    facts = _dict(manifest.get("card"))
    kind = str(task.get("kind") or manifest.get("kind") or "model")
    target = task.get("target")
    schema = _dict(_dict(manifest.get("preprocessor")).get("schema"))
    spec = _dict(manifest.get("model_spec"))
    versions = _dict(manifest.get("versions"))
    lines = [
        f"# Model card: {_code(target) if target else 'a'} {kind} model",
        "",
        f"Written by dlpipe {versions.get('dlpipe', '?')} when this bundle was saved. The numbers below "
        "are from the run that trained it; nothing in this file is read when the bundle is loaded.",
        "",
        "## Model",
        "",
        f"- Task: {kind}" + (f", predicting {_code(target)}" if target else "") + ".",
        f"- Network: {_code(spec.get('family') or manifest.get('kind') or 'unknown')}"
        + (f", hidden layers {spec['hidden']}" if isinstance(spec.get("hidden"), list) else "")
        + ".",
        "- Files: `manifest.json` (JSON) and `weights.safetensors` (raw tensors); no pickle, and loading "
        "runs no code from the bundle.",
    ]
    lines += ["", "## Data", ""] + _data(task, schema, facts, manifest)
    lines += ["", "## Metrics on the test split, beside the baselines", ""] + _metrics(
        facts, manifest
    )
    lines += ["", "## Calibration", ""] + _calibration(task, facts)
    lines += ["", "## Prediction intervals", ""] + _intervals(kind, facts, manifest)
    lines += ["", "## Intended use", ""] + _intended(kind, target)
    lines += ["", "## Limitations", ""] + _limitations(kind, task, facts)
    lines += ["", "## How to use it", ""]
    lines += [
        "```",
        "dlpipe predict BUNDLE new_rows.csv -o predictions.csv   # adds a `warnings` column for rows outside training",
        "dlpipe evaluate BUNDLE labelled_rows.csv                 # scores it (and the stored baselines) on new data",
        "dlpipe serve BUNDLE                                      # an HTTP API with /docs",
        "```",
        "",
    ]
    return "\n".join(lines)


def _data(
    task: dict[str, Any], schema: dict[str, Any], facts: dict[str, Any], manifest: dict[str, Any]
) -> list[str]:
    out = []
    rows = _dict(facts.get("rows"))
    if rows:
        out.append(
            "- Rows per split: "
            + ", ".join(f"{k} {int(v):,}" for k, v in rows.items() if _number(v))
            + " (the test rows played no part in training or model selection)."
        )
    columns = [c for c in schema.get("columns") or [] if isinstance(c, dict)]
    if columns:
        shown = ", ".join(
            f"{_code(c.get('name'))} ({c.get('kind', '?')})" for c in columns[:_MAX_COLUMNS]
        )
        more = (
            f", and {len(columns) - _MAX_COLUMNS} more (see manifest.json)"
            if len(columns) > _MAX_COLUMNS
            else ""
        )
        out.append(f"- {len(columns)} input columns: {shown}{more}.")
    dropped = [d for d in schema.get("dropped") or [] if isinstance(d, list) and len(d) == 2]
    if dropped:
        out.append(
            "- Dropped: " + "; ".join(f"{_code(n)} ({_text(why)})" for n, why in dropped) + "."
        )
    classes, counts = task.get("classes"), task.get("class_counts")
    if isinstance(classes, list) and classes:
        if isinstance(counts, list) and len(counts) == len(classes) and all(map(_number, counts)):
            pairs = ", ".join(f"{_code(c)} {int(n):,}" for c, n in zip(classes[:30], counts[:30]))
            out.append(f"- Classes and their rows in the training data: {pairs}.")
        else:
            out.append(f"- Classes: {', '.join(_code(c) for c in classes[:30])}.")
    if manifest.get("reference_statistics"):
        out.append(
            "- The training rows' range and missing rate of every column are stored, so predictions "
            "flag rows far outside them."
        )
    return out or ["Not recorded in this bundle."]


def _metrics(facts: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    model = _dict(facts.get("model"))
    baselines = {k: _dict(v) for k, v in _dict(facts.get("baselines")).items()}
    if not model:  # a bundle saved by another kind of run: the manifest's own scores
        model = {
            k: float(v)
            for k, v in _dict(_dict(manifest.get("metrics")).get("test")).get("model", {}).items()
            if k in _SCORES and _number(v)
        }
    if not model:
        return ["No test scores were recorded in this bundle."]
    primary = facts.get("primary_metric") or _dict(_dict(manifest.get("metrics")).get("test")).get(
        "primary_metric"
    )
    keys = [k for k in _SCORES if k in model]
    head = ["", "model"] + [f"baseline: {_text(n)}" for n in baselines]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in keys:
        name = f"**{k}** (primary)" if k == primary else k
        cells = [_num(model.get(k))] + [_num(b.get(k)) for b in baselines.values()]
        out.append("| " + " | ".join([name, *cells]) + " |")
    run_only = [n for n in facts.get("run_only_baselines") or [] if n in baselines]
    if run_only:
        out += [
            "",
            f"{', '.join(_text(n) for n in run_only)}: scikit-learn defaults fitted in the training run "
            "only (a tree ensemble has no JSON form, and a bundle holds no pickle); `dlpipe evaluate` "
            "scores the model and the other baselines on new data.",
        ]
    if facts.get("verdict"):
        out += ["", _text(facts["verdict"])]
    return out


def _calibration(task: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    if task.get("kind") not in ("binary", "multiclass"):
        return ["Not applicable: this model does not output class probabilities."]
    cal = _dict(facts.get("calibration"))
    t = task.get("temperature", 1.0)
    out = [
        f"- Temperature: {_num(t)} (the logits are divided by it before the softmax; labels never change)."
    ]
    if cal:
        ece, ll = _dict(cal.get("test_ece")), _dict(cal.get("test_log_loss"))
        out.append(
            f"- Test ECE (top label, 15 bins) {_num(ece.get('before'))} before, {_num(ece.get('after'))} "
            f"after; test log loss {_num(ll.get('before'))} before, {_num(ll.get('after'))} after."
        )
        if cal.get("note"):
            out.append(f"- {_text(cal['note'])}.")
    return out


def _forecast_intervals(manifest: dict[str, Any]) -> list[str]:
    pre = _dict(manifest.get("preprocessor"))
    quantiles = _dict(pre.get("interval_quantiles"))
    if not quantiles:
        return ["None: the run had no backtest windows to measure its errors on."]
    model = _dict(_dict(_dict(manifest.get("metrics")).get("test")).get("model"))
    out = ["| level | share of the test windows' points inside |", "|---|---|"]
    for level in quantiles:
        if str(
            level
        ).isdigit():  # the manifest's own keys ("80", "95"); anything else is not a level
            out.append(f"| {int(level)}% | {_num(model.get(f'coverage_{level}'))} |")
    windows = model.get("windows")
    return out + [
        "",
        "Split conformal per horizon step, from the backtest windows' errors, each scaled by its "
        f"window's recent movement ({_code(pre.get('interval_scale', '?'))}); `dlpipe predict` returns "
        "`lower_<level>` and `upper_<level>` beside every forecast"
        + (f"; coverage measured on {windows} test windows." if _number(windows) else "."),
    ]


def _intervals(kind: str, facts: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    if kind == "forecast" or _dict(_dict(manifest.get("preprocessor")).get("interval_quantiles")):
        return _forecast_intervals(manifest)
    if kind != "regression":
        return ["Not applicable: intervals are given for regression and forecasts only."]
    iv = _dict(facts.get("intervals")) or _dict(manifest.get("intervals"))
    levels = iv.get("levels") or []
    if not levels:
        return ["None: the run held out no validation rows to measure its errors on."]
    widths = iv.get("half_widths") or [None] * len(levels)
    coverage = iv.get("test_coverage") or [None] * len(levels)
    out = ["| level | prediction ± (target units) | share of test rows inside |", "|---|---|---|"]
    for lv, h, c in zip(levels, widths, coverage):
        out.append(f"| {_num(100 * lv if _number(lv) else None, '.0f')}% | {_num(h)} | {_num(c)} |")
    out += [
        "",
        f"Split conformal, from the absolute errors of {iv.get('validation_rows', '?')} validation rows; "
        "the same width for every row.",
    ]
    return out


def _intended(kind: str, target: Any) -> list[str]:
    what = f"{_code(target)}" if target else "the target"
    return [
        f"Predicting {what} ({kind}) for new rows drawn from the same population as the training data: the "
        "same columns, with values in the ranges it saw. A starting point to compare against the baselines "
        "above, not a decision on its own about people, money or safety without review by someone who "
        "knows the data."
    ]


def _limitations(kind: str, task: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    out = [
        "- Trained on one data set: it has not been checked on data from another time, place or source.",
        "- No fairness or subgroup analysis was made; scores may differ across groups of rows.",
        "- Rows far outside the training ranges, or with every input missing, are flagged but still "
        "predicted; treat their predictions as guesses.",
    ]
    rows = _dict(facts.get("rows"))
    test_rows = rows.get("test")
    if isinstance(test_rows, int) and test_rows < 200:
        out.append(
            f"- The test split has {test_rows} rows, so its scores are uncertain by a few points."
        )
    verdict = str(facts.get("verdict") or "")
    if "loses" in verdict or "ties" in verdict:
        out.append("- It does not beat its best baseline on the primary metric (see Metrics).")
    counts = task.get("class_counts")
    if isinstance(counts, list) and counts and all(map(_number, counts)) and min(counts) > 0:
        if max(counts) / min(counts) >= 3:
            out.append(
                f"- The classes are imbalanced ({max(counts) / min(counts):.1f}:1); accuracy flatters "
                "a model that favours the large class."
            )
    if kind == "regression":
        out.append(
            "- Intervals have one width for every row: they do not say which rows are harder."
        )
    return out


# ---------------------------------------------------------------------- text helpers
def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: Any, fmt: str = ".4g") -> str:
    return format(v, fmt) if _number(v) else "n/a"


def _code(value: Any, limit: int = 80) -> str:
    """A user's name as a Markdown code span: shown as typed, never read as HTML or Markdown."""
    text = " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`" if text else "`(empty)`"


def _text(value: Any) -> str:
    """Prose that may hold user names (a verdict, a reason): HTML and table characters escaped."""
    text = " ".join(str(value).split())
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        text = text.replace(a, b)
    return text
