"""``<tuning folder>/report.html``: the tuning run's page, built with the run report's machinery.

Sections: the best trial beside the default config (and the retrained model's test scores beside
its baselines when ``best/`` exists), the trials table (number, state, value, parameters, epochs,
duration), the optimisation history, every trial's validation loss per epoch (where pruning cut
it), Optuna's parameter importances (or a note saying why there are none), and the search space.
Everything is read from the folder (``tuning.json``, ``trials.csv``, ``intermediate.csv``), so
:func:`build_tuning_report` can rebuild the page at any time.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError
from dlpipe.reports.plots import MARK, TRAIN, VAL, Plot, new_figure, render
from dlpipe.reports.sections import Section, Table

__all__ = [
    "build_tuning_report",
    "tuning_sections",
    "history_plot",
    "curves_plot",
    "importance_plot",
]

_PRUNED, _FAILED, _DEFAULT = "#9aa0a6", "#cf222e", "#2ca02c"


def build_tuning_report(folder: str | Path) -> Path:
    """Write ``report.html`` (and ``plots/*.png``) into a ``dlpipe tune`` run folder; return the page's path.

    Raises:
        InvalidInputError: the folder has no ``tuning.json`` / ``trials.csv`` (not a tuning run folder).
    """
    from dlpipe.reports.report import render_page

    path = Path(folder)
    started = time.perf_counter()
    if not (path / "tuning.json").is_file() or not (path / "trials.csv").is_file():
        raise InvalidInputError(
            f"{str(path)!r} is not a tuning run folder (it needs tuning.json and trials.csv); "
            "pass the folder `dlpipe tune` wrote (its `out`)."
        )
    summary = json.loads((path / "tuning.json").read_text(encoding="utf-8"))
    sections = tuning_sections(path, summary)
    best, default = summary.get("best_val_loss"), summary.get("default_val_loss")
    verdict, tone = "", "neutral"
    if isinstance(best, (int, float)) and isinstance(default, (int, float)):
        if best < default:
            verdict, tone = (
                f"The best trial beats the default config on validation loss: {best:.4g} vs {default:.4g}.",
                "good",
            )
        else:
            verdict, tone = (
                f"No trial beat the default config on validation loss ({default:.4g}); the default is the best found.",
                "warn",
            )
    page = render_page(
        title=f"dlpipe tuning report · {path.name}",
        heading=path.name,
        subtitle=f"hyper-parameter search, study {summary.get('study', '?')!r} ({summary.get('pruner', '?')} pruner)",
        verdict=verdict,
        tone=tone,
        sections=sections,
        footer=f"built in {time.perf_counter() - started:.2f} s from {path.resolve()}",
    )
    (path / "plots").mkdir(exist_ok=True)
    for p in (p for s in sections for p in s.plots if p.png is not None):
        (path / "plots" / f"{p.name}.png").write_bytes(p.png)  # type: ignore[arg-type]
    out = path / "report.html"
    tmp = out.with_name(f".report.html.tmp-{uuid.uuid4().hex[:6]}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out


def tuning_sections(path: Path, summary: dict[str, Any]) -> list[Section]:
    import pandas as pd

    trials = pd.read_csv(path / "trials.csv")
    curves = (
        pd.read_csv(path / "intermediate.csv") if (path / "intermediate.csv").is_file() else None
    )
    return [
        s
        for s in (
            _summary_section(path, summary, trials),
            _trials_section(trials, summary),
            _history_section(trials, curves),
            _importance_section(summary),
            _space_section(summary),
        )
        if s.items
    ]


# ---------------------------------------------------------------------------------------- sections
def _summary_section(path: Path, s: dict[str, Any], trials: Any) -> Section:
    sec = Section("summary", "Best trial vs the default config")
    rows: list[list[Any]] = [
        ["best trial", s.get("best_trial"), s.get("best_val_loss"), s.get("best_val_score")]
    ]
    if s.get("default_val_loss") is not None:
        rows.append(
            ["default config (trial 0)", 0, s.get("default_val_loss"), s.get("default_val_score")]
        )
    sec.table(
        Table(
            ["", "trial", "val_loss", "val score (accuracy)"],
            rows,
            caption="validation split (used to pick the trial)",
            highlight=0,
        )
    )
    if s.get("default_val_loss") is None:
        sec.note(
            "the default config is not in this study (it lies outside the search space or its trial did not complete)."
        )
    facts = [
        ["trials requested", s.get("trials_requested")],
        ["complete", s.get("complete")],
        ["pruned", s.get("pruned")],
        ["failed", s.get("failed")],
        ["pruner", s.get("pruner")],
        ["pruner step", s.get("pruner_step")],
        ["storage", s.get("storage")],
        [
            "search time",
            f"{s['search_s']:.1f} s" if isinstance(s.get("search_s"), (int, float)) else None,
        ],
        [
            "time in trials",
            f"{float(trials['seconds'].fillna(0).sum()):.1f} s" if "seconds" in trials else None,
        ],
    ]
    if isinstance(s.get("retrain_s"), (int, float)):
        facts.append(["retraining the best", f"{s['retrain_s']:.1f} s"])
    sec.table(Table(["", ""], [r for r in facts if r[1] is not None], caption="the study"))
    sec.table(
        Table(
            ["parameter", "value"],
            [[k, _short(v)] for k, v in (s.get("best_params") or {}).items()],
            caption="best parameters",
        )
    )
    metrics_file = path / "best" / "metrics.json"
    if metrics_file.is_file():
        test = json.loads(metrics_file.read_text(encoding="utf-8")).get("test") or {}
        model, baselines = test.get("model") or {}, test.get("baselines") or {}
        keys = [
            k
            for k in ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "r2", "mae", "rmse")
            if isinstance(model.get(k), (int, float))
        ]
        if keys:
            table_rows = [["retrained best model"] + [model.get(k) for k in keys]]
            table_rows += [
                [f"baseline: {name}"] + [m.get(k) for k in keys] for name, m in baselines.items()
            ]
            sec.table(
                Table(
                    [""] + keys,
                    table_rows,
                    caption=f"test split ({test.get('rows', '?')} rows, never seen by the search)",
                    highlight=0,
                )
            )
        sec.text(
            "The retrained best model is a normal run folder with its bundle and its own report: best/report.html."
        )
    else:
        sec.note(
            "the best trial was not retrained (`retrain` was off), so there is no bundle or test score yet."
        )
    return sec


def _trials_section(trials: Any, s: dict[str, Any]) -> Section:
    sec = Section("trials", "Trials")
    best = s.get("best_trial")
    params = [c for c in trials.columns if c.startswith("param_")]
    rows, highlight = [], None
    for i, r in enumerate(trials.itertuples(index=False)):
        d = r._asdict()
        label = f"{int(d['number'])}" + (
            " (default)" if bool(d.get("default_config", False)) else ""
        )
        if d["number"] == best:
            highlight, label = i, label + " ★"
        rows.append(
            [
                label,
                d["state"],
                _num(d.get("val_loss")),
                _num(d.get("val_score")),
                _int(d.get("epochs")),
                _num(d.get("seconds")),
                _params_text({c[6:]: d[c] for c in params}),
            ]
        )
    sec.table(
        Table(
            ["trial", "state", "val_loss", "val accuracy", "epochs", "duration s", "parameters"],
            rows,
            caption="every trial (★ best; a pruned trial's value is its last reported validation loss)",
            highlight=highlight,
            collapsed=len(rows) > 60,
        )
    )
    return sec


def _history_section(trials: Any, curves: Any) -> Section:
    sec = Section("history", "Optimisation history")
    sec.plot(history_plot(trials))
    if curves is not None:
        sec.plot(curves_plot(trials, curves))
    else:
        sec.note(
            "missing: intermediate.csv, so the per-epoch curves of the trials cannot be drawn."
        )
    return sec


def _importance_section(s: dict[str, Any]) -> Section:
    sec = Section("importances", "Parameter importances")
    imp = s.get("importances")
    if not imp:
        return sec.note(
            s.get("importances_note") or "parameter importances were not computed for this study."
        )
    sec.plot(importance_plot(imp))
    sec.table(
        Table(
            ["parameter", "importance"],
            [[k, float(v)] for k, v in imp.items()],
            caption="Optuna's get_param_importances over the complete trials",
        )
    )
    if (s.get("complete") or 0) < 10:
        sec.note(
            f"importances from {s.get('complete')} complete trials are rough: read them as hints, not measurements."
        )
    return sec


def _space_section(s: dict[str, Any]) -> Section:
    sec = Section("space", "Search space")
    rows = []
    for name, r in (s.get("search_space") or {}).items():
        if isinstance(r, list):
            rows.append([name, "choice of " + ", ".join(str(v) for v in r), "", "", ""])
        else:
            rows.append(
                [
                    name,
                    "range",
                    r.get("low"),
                    r.get("high"),
                    ("log" if r.get("log") else "")
                    + (f" step {r['step']}" if r.get("step") else ""),
                ]
            )
    if rows:
        sec.table(Table(["parameter", "kind", "low", "high", ""], rows))
    return sec


# ---------------------------------------------------------------------------------------- plots
def history_plot(trials: Any) -> Plot:
    """Each trial's value by trial number (complete, pruned), the best so far, and the default config's line."""
    title = "Optimisation history"
    done = trials[trials["state"].isin(["complete", "pruned"]) & trials["val_loss"].notna()]
    if len(done) == 0:
        return Plot("tuning_history", title, note="no trial finished with a value.")
    with _style():
        fig = new_figure(7.0, 3.4)
        ax = fig.subplots()
        comp, pruned = done[done["state"] == "complete"], done[done["state"] == "pruned"]
        if len(pruned):
            ax.plot(
                pruned["number"],
                pruned["val_loss"],
                "x",
                color=_PRUNED,
                label="pruned (last value)",
            )
        if len(comp):
            ax.plot(comp["number"], comp["val_loss"], "o", color=TRAIN, label="complete")
        if "best_so_far" in trials and trials["best_so_far"].notna().any():
            ax.step(
                trials["number"],
                trials["best_so_far"],
                where="post",
                color=VAL,
                label="best so far",
            )
        default = (
            trials[trials["default_config"].astype(bool)]
            if "default_config" in trials
            else trials.iloc[:0]
        )
        if len(default) and default["val_loss"].notna().any():
            ax.axhline(
                float(default["val_loss"].iloc[0]),
                color=_DEFAULT,
                linestyle="--",
                linewidth=1,
                label="default config",
            )
        _log_if_wide(ax, done["val_loss"].to_numpy(float))
        _integer_ticks(ax)
        ax.set(
            title=title,
            xlabel="trial",
            ylabel="validation loss" + (" (log)" if ax.get_yscale() == "log" else ""),
        )
        ax.legend(loc="best")
        return Plot("tuning_history", title, render(fig))


def curves_plot(trials: Any, curves: Any) -> Plot:
    """Validation loss per epoch of every trial: where the pruner stopped each one."""
    title = "Validation loss per epoch, every trial"
    if len(curves) == 0:
        return Plot("tuning_curves", title, note="no trial reported a validation loss.")
    states = dict(zip(trials["number"], trials["state"]))
    best = (
        trials.loc[trials["state"] == "complete", "val_loss"].idxmin()
        if (trials["state"] == "complete").any()
        else None
    )
    best_number = int(trials.loc[best, "number"]) if best is not None else None
    with _style():
        fig = new_figure(7.0, 3.4)
        ax = fig.subplots()
        labelled: set[str] = set()
        for number, g in curves.groupby("number"):
            state = states.get(number, "?")
            kind = "best" if number == best_number else state
            style = {"best": (VAL, 2.0), "complete": (TRAIN, 1.0), "pruned": (_PRUNED, 0.8)}.get(
                kind, (_FAILED, 0.8)
            )
            ax.plot(
                g["epoch"],
                g["val_loss"],
                color=style[0],
                linewidth=style[1],
                alpha=0.9 if kind != "pruned" else 0.6,
                label=None if kind in labelled else kind,
                zorder=3 if kind == "best" else 2,
            )
            labelled.add(kind)
        _log_if_wide(ax, curves["val_loss"].to_numpy(float))
        _integer_ticks(ax)
        ax.set(
            title=title,
            xlabel="epoch",
            ylabel="validation loss" + (" (log)" if ax.get_yscale() == "log" else ""),
        )
        ax.legend(loc="best")
        return Plot("tuning_curves", title, render(fig))


def importance_plot(importances: dict[str, float]) -> Plot:
    title = "Parameter importances"
    names = list(importances)[::-1]
    if not names:
        return Plot("tuning_importances", title, note="no importances were computed.")
    with _style():
        fig = new_figure(6.0, 0.9 + 0.28 * len(names), left=1.3)
        ax = fig.subplots()
        ax.barh(names, [importances[n] for n in names], color=MARK)
        ax.set(title=title, xlabel="importance (sums to 1)")
        return Plot("tuning_importances", title, render(fig))


def _log_if_wide(ax: Any, values: np.ndarray) -> None:
    """A log axis when the values are positive and span more than a decade (losses of good and bad trials)."""
    v = values[np.isfinite(values)]
    if len(v) and (v > 0).all() and v.max() / v.min() > 10:
        ax.set_yscale("log")


def _integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _style() -> Any:
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.fontsize": 8,
            "legend.frameon": False,
        }
    )


# ---------------------------------------------------------------------------------------- cells
def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _int(v: Any) -> int | None:
    f = _num(v)
    return None if f is None else int(f)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "-".join(str(x) for x in v)
    return str(v)


def _params_text(params: dict[str, Any]) -> str:
    """``hidden 480-512-224, dropout 0.358, learning_rate 0.0016, batch_size 64`` from the flat Optuna parameters."""
    units = [
        (int(k[6:]), v) for k, v in params.items() if k.startswith("units_") and _num(v) is not None
    ]
    parts = []
    if units:
        parts.append("hidden " + "-".join(str(int(v)) for _, v in sorted(units)))
    for k, v in params.items():
        if k.startswith("units_") or k == "n_layers" or _num(v) is None and not isinstance(v, str):
            continue
        f = _num(v)
        parts.append(
            f"{k} {v}"
            if f is None
            else f"{k} {int(f) if f.is_integer() and k != 'dropout' else f'{f:.3g}'}"
        )
    return ", ".join(parts)
