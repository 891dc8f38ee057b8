"""How far to trust a table run, in the report: explanations, calibration and prediction intervals.

Reads metrics.json's ``explanations`` (permutation importance with its spread, mean absolute
integrated-gradients attributions), ``calibration`` (temperature, ECE and log loss before/after,
reliability bins) and ``intervals`` (split-conformal half-widths and test coverage), as
``pipeline/_table_eval.py`` writes them (docs/trust.md). A run without them gets no section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.reports.plots import TRAIN, VAL, Plot, new_figure, render, short_label
from dlpipe.reports.sections import Section, Table

if TYPE_CHECKING:
    from dlpipe.reports.folder import RunFolder

__all__ = ["sections"]

_TOP = 20  # columns shown in the importance chart
_STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "legend.fontsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def sections(run: RunFolder) -> list[Section]:
    out = []
    ex = run.metrics.get("explanations")
    if isinstance(ex, dict) and (ex.get("permutation") or ex.get("integrated_gradients")):
        out.append(_explanations(ex))
    cal = run.metrics.get("calibration")
    if isinstance(cal, dict) and cal.get("test_ece"):
        out.append(_calibration(cal))
    iv = run.metrics.get("intervals")
    if isinstance(iv, dict):
        out.append(_intervals(iv))
    return out


def _f(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if isinstance(v, (int, float)) and np.isfinite(v) else "n/a"


# ---------------------------------------------------------------------- explanations
def _explanations(ex: dict[str, Any]) -> Section:
    s = Section("explanations", "Which columns the model uses")
    perm = ex.get("permutation") or {}
    ig = ex.get("integrated_gradients") or {}
    feats = perm.get("features") or {}
    mean_abs = ig.get("mean_abs") or {}
    names = list(feats) or list(mean_abs)
    if feats:
        names.sort(key=lambda n: -float(feats[n]["mean"]))
    elif mean_abs:
        names.sort(key=lambda n: -float(mean_abs[n]))
    if feats:
        s.plot(_importance_plot(names[:_TOP], feats, perm.get("metric", "score")))
        s.text(
            f"Permutation importance on the test split: how much the {perm.get('metric')} gets worse when one "
            f"column's values are shuffled across {perm.get('rows')} rows, mean and standard deviation over "
            f"{perm.get('repeats')} shuffles (a one-hot block, missing indicator or embedding moves with its "
            "column). Near zero or below: the model does not rely on that column, or another column carries "
            "the same information."
        )
    elif perm.get("note"):
        s.note(f"permutation importance {perm['note']}.")
    rows = [
        [
            n,
            _f(feats[n]["mean"]) if n in feats else "",
            _f(feats[n]["std"], 2) if n in feats else "",
            _f(mean_abs.get(n)),
        ]
        for n in names
    ]
    s.table(
        Table(
            ["column", f"permutation ({perm.get('metric', '')})", "± std", "|IG| mean"],
            rows,
            caption=(
                f"Integrated gradients: mean absolute attribution to the {ig.get('output', 'output')} over "
                f"{ig.get('rows', 0)} test rows ({ig.get('steps', 0)} trapezoid steps from the training mean; "
                f"attributions add up to output minus baseline output within "
                f"{100 * float(ig.get('completeness_error') or 0):.2g}%). Embedded categorical columns keep "
                "their codes along the path, so their attribution is 0."
            )
            if ig
            else "",
            collapsed=len(rows) > _TOP,
        )
    )
    if ex.get("seconds") is not None:
        s.note(
            f"calibration, intervals and explanations took {float(ex['seconds']):.2f} s in this run."
        )
    return s


def _importance_plot(names: list[str], feats: dict[str, Any], metric: str) -> Plot:
    import matplotlib

    title = "Permutation importance (test split)"
    labels = [short_label(n, 28) for n in names]
    means = np.array([float(feats[n]["mean"]) for n in names])
    stds = np.array([float(feats[n]["std"]) for n in names])
    with matplotlib.rc_context(_STYLE):  # type: ignore[arg-type]
        height = 1.2 + 0.32 * len(names)
        left = 0.3 + 0.075 * max((len(t) for t in labels), default=4)
        fig = new_figure(11.0, height, left=left, bottom=0.7, top=0.45)
        ax = fig.subplots()
        y = np.arange(len(names))[::-1]
        ax.barh(y, means, xerr=stds, color=TRAIN, ecolor="#444444", capsize=3)
        ax.set_yticks(y, labels)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set(
            title=title, xlabel=f"drop in {metric} when the column is shuffled (higher: more used)"
        )
        return Plot("permutation_importance", title, render(fig))


# ---------------------------------------------------------------------- calibration
def _calibration(cal: dict[str, Any]) -> Section:
    s = Section("calibration", "Calibrated probabilities")
    ece, ll = cal.get("test_ece") or {}, cal.get("test_log_loss") or {}
    t = float(cal.get("temperature", 1.0))
    if cal.get("applied"):
        s.text(
            f"Temperature scaling: the logits are divided by T = {t:.3g}, fitted on the {cal.get('validation_rows')} "
            "validation rows (it lowered their log loss). Predictions, the server and the exported model "
            "give these calibrated probabilities; labels are unchanged."
            + (
                " T > 1: the network was overconfident."
                if t > 1
                else " T < 1: the network was underconfident."
            )
        )
    else:
        s.text(
            "Temperature scaling was not applied ("
            + str(cal.get("note") or "it did not lower the validation log loss")
            + "); the probabilities are the network's own."
        )
    s.table(
        Table(
            ["test split", "before", "after"],
            [
                [
                    f"ECE (top label, {cal.get('ece_bins', 15)} bins)",
                    _f(ece.get("before")),
                    _f(ece.get("after")),
                ],
                ["log loss", _f(ll.get("before")), _f(ll.get("after"))],
            ],
            caption="ECE: the row-weighted mean gap between confidence and accuracy; lower is better.",
        )
    )
    s.plot(_reliability_plot(cal.get("reliability") or {}, bool(cal.get("applied"))))
    return s


def _reliability_plot(rel: dict[str, Any], applied: bool) -> Plot:
    import matplotlib

    title = "Reliability diagram (test split)"
    before, after = rel.get("before") or {}, rel.get("after") or {}
    if not before.get("confidence"):
        return Plot("reliability", title, note="the test split has no rows to draw.")
    with matplotlib.rc_context(_STYLE):  # type: ignore[arg-type]
        fig = new_figure(11.0, 4.6, left=0.9, right=3.0, bottom=0.7)
        ax = fig.subplots()
        ax.plot(
            [0, 1],
            [0, 1],
            color="#888888",
            linestyle="--",
            linewidth=1,
            label="perfectly calibrated",
        )
        for r, colour, label in (
            (before, VAL, "before scaling"),
            *([(after, TRAIN, "after scaling")] if applied else []),
        ):
            conf, acc, n = (
                np.asarray(r.get(k) or [], dtype=float) for k in ("confidence", "accuracy", "count")
            )
            ax.plot(conf, acc, color=colour, marker="o", linewidth=1.4, label=label)
            ax.scatter(conf, acc, s=12 + 120 * n / max(n.max(), 1), color=colour, alpha=0.35)
        ax.set(
            title=title,
            xlabel="confidence (probability of the predicted class)",
            ylabel="accuracy in the bin",
            xlim=(0, 1.02),
            ylim=(0, 1.02),
        )
        # outside the axes: a legend inside would sit on the points near the diagonal's ends
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        return Plot("reliability", title, render(fig))


# ---------------------------------------------------------------------- intervals
def _intervals(iv: dict[str, Any]) -> Section:
    s = Section("intervals", "Prediction intervals")
    if not iv.get("levels"):
        s.note(str(iv.get("note") or "no intervals were computed for this run."))
        return s
    rows = []
    for level, h, c in zip(
        iv["levels"], iv.get("half_widths") or [], iv.get("test_coverage") or []
    ):
        rows.append(
            [
                f"{100 * float(level):g}%",
                "n/a (too few validation rows)" if h is None else f"± {_f(h)}",
                _f(c, 3) if c is not None else "n/a",
            ]
        )
    s.table(
        Table(
            ["level", "interval (target units)", "test coverage"],
            rows,
            caption=(
                f"Split-conformal intervals from the absolute residuals of {iv.get('validation_rows')} validation "
                "rows: each prediction ± the half-width; test coverage is the share of test rows whose truth "
                "falls inside (it should be close to the level). The width is the same for every row."
            ),
        )
    )
    return s
