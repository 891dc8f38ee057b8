"""Forecast runs in the report: the test span with the model's forecast beside its baselines.

Reads ``metrics.json["test_forecast"]`` (``time`` and, per target, ``true``/``pred`` and one array per
baseline, each (windows, horizon)) as the series fitter writes it; draws the first step ahead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.reports.plots import TRAIN, VAL, Plot, new_figure, render, short_label
from dlpipe.reports.sections import Section

if TYPE_CHECKING:
    from dlpipe.reports.folder import RunFolder

__all__ = ["sections"]


def sections(run: RunFolder) -> list[Section]:
    fc = run.metrics.get("test_forecast")
    if not isinstance(fc, dict) or not fc.get("targets"):
        return []
    s = Section("forecast", "Forecast on the test span")
    for target, arrays in list(fc["targets"].items())[:4]:
        s.plot(_span(target, fc.get("time") or [], arrays))
    s.text(
        "One step ahead: each point is forecast from the window of values just before it; the baselines "
        "(naive: the last value; seasonal naive: the value one period back) see the same windows."
    )
    return [s]


def _span(target: str, times: list[Any], arrays: dict[str, Any]) -> Plot:
    import matplotlib

    name = f"forecast_{target}"
    title = f"{short_label(target, 30)}: test span, one step ahead"
    true = np.asarray(arrays.get("true") or [], dtype=float)
    if true.size == 0:
        return Plot(name, title, note="the test span is empty.")
    first = true.reshape(len(true), -1)[:, 0]
    x = np.arange(len(first))
    with matplotlib.rc_context(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8}
    ):
        fig = new_figure(9.0, 3.4)
        ax = fig.subplots()
        ax.plot(x, first, color="black", linewidth=1.4, label="actual")
        pred = np.asarray(arrays.get("pred") or [], dtype=float)
        if pred.size:
            ax.plot(x, pred.reshape(len(pred), -1)[:, 0], color=TRAIN, linewidth=1.2, label="model")
        colours = [VAL, "#2ca02c", "#9467bd", "#8c564b"]
        for i, (b, v) in enumerate((k, v) for k, v in arrays.items() if k not in ("true", "pred")):
            arr = np.asarray(v, dtype=float)
            if arr.size == len(first) * (arr.size // max(len(first), 1)) and arr.size:
                ax.plot(
                    x,
                    arr.reshape(len(arr), -1)[:, 0],
                    color=colours[i % len(colours)],
                    linewidth=0.9,
                    linestyle="--",
                    label=b,
                )
        if times and len(times) == len(first):
            ticks = np.linspace(0, len(first) - 1, min(6, len(first))).astype(int)
            ax.set_xticks(ticks, [short_label(times[t], 19) for t in ticks])
        ax.set(title=title, xlabel="time" if times else "window", ylabel=short_label(target, 20))
        ax.legend(loc="best")
        return Plot(name, title, render(fig))
