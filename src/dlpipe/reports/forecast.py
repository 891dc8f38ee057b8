"""Forecast runs in the report: the whole series with its spans and the future, and the test windows.

Reads metrics.json as the series fitter writes it: ``series_plot`` (the history of the first series
with the ends of the training and validation spans), ``future`` (the bundle's forecast after the
last row with its 80%/95% band) and ``test_forecast`` (``time`` of each window's origin and, per
target, ``true``/``pred``/one array per baseline, each (windows, horizon), with ``lo80``... bands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.reports.plots import TRAIN, VAL, Plot, new_figure, render, short_label
from dlpipe.reports.sections import Section

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from dlpipe.reports.folder import RunFolder

__all__ = ["sections"]

_MAX_PATHS = 12  # test windows drawn as whole forecast paths; more are thinned evenly
_BASE_COLOURS = [VAL, "#2ca02c", "#9467bd", "#8c564b"]


def sections(run: RunFolder) -> list[Section]:
    fc = run.metrics.get("test_forecast")
    if not isinstance(fc, dict) or not fc.get("targets"):
        return []
    s = Section("forecast", "Forecast: the series, the test windows and the future")
    history = run.metrics.get("series_plot") or []
    future = run.metrics.get("future") or []
    targets = list(fc["targets"])
    if history:
        for k, target in enumerate(targets[:2]):
            s.plot(_whole(target, k, history[0], future[0] if future else None))
    where = {"test": "test", "val": "validation", "train": "training"}.get(
        str(fc.get("scored_on")), "test"
    )
    for target, arrays in list(fc["targets"].items())[:2]:
        s.plot(_paths(target, fc, arrays, where))
        s.plot(_by_step(target, arrays, where))
    calibration = (run.metrics.get("intervals") or {}).get("calibration") or "validation errors"
    s.text(
        f"Each {where} window is forecast from the rows before its origin, every step of the horizon at once; "
        "the baselines (naive: the last value; seasonal naive: one period back; drift: the line from the first "
        "value to the last; ETS) see the same rows. The band is the 80%/95% conformal interval calibrated "
        f"on the {calibration}."
    )
    return [s]


def _times(values: list[Any]) -> Any:
    """Dates when the values are ISO timestamps (matplotlib then spaces and formats the ticks), else numbers."""
    import pandas as pd

    if values and isinstance(values[0], str):
        try:
            return pd.to_datetime(pd.Series(values)).to_numpy()
        except (ValueError, TypeError):
            return np.arange(len(values))
    return np.asarray(values, dtype=float)


def _date_axis(ax: Axes, x: Any) -> None:
    import matplotlib.dates as mdates

    if np.issubdtype(np.asarray(x).dtype, np.datetime64):
        locator = mdates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _future_x(times: Any, n: int) -> Any:
    if np.issubdtype(np.asarray(times).dtype, np.datetime64) and len(times) > 1:
        step = np.median(np.diff(times))
        return times[-1] + step * np.arange(1, n + 1)
    last = float(times[-1]) if len(times) else 0.0
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    return last + step * np.arange(1, n + 1)


def _whole(target: str, k: int, hist: dict[str, Any], future: dict[str, Any] | None) -> Plot:
    import matplotlib

    name = f"series_{target}"
    label = f" ({short_label(hist.get('series'), 20)})" if hist.get("series") else ""
    title = f"{short_label(target, 30)}{label}: the whole series, its spans and the future"
    values = np.asarray((hist.get("values") or [[]])[k], dtype=float)
    if values.size == 0:
        return Plot(name, title, note="the series is empty.")
    x = _times(hist.get("time") or list(range(len(values))))
    a, b = int(hist.get("train_end", 0)), int(hist.get("val_end", 0))
    with matplotlib.rc_context(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8}
    ):
        fig = new_figure(9.0, 3.4)
        ax = fig.subplots()
        ax.plot(x, values, color="black", linewidth=1.2, label="actual")
        n = len(values)
        for lo, hi, colour, span in (
            (0, a, TRAIN, "train"),
            (a, b, VAL, "validation"),
            (b, n, "#2ca02c", "test"),
        ):
            if hi > lo:
                ax.axvspan(x[lo], x[min(hi, n - 1)], color=colour, alpha=0.08, label=span)
        if future and future.get("pred"):
            pred = np.asarray(future["pred"], dtype=float)[:, k]
            fx = _future_x(x, len(pred))
            ax.plot(fx, pred, color=TRAIN, linewidth=1.4, label="forecast (refit on all rows)")
            for level, alpha in (("95", 0.15), ("80", 0.3)):
                lo_, hi_ = future.get(f"lo{level}"), future.get(f"hi{level}")
                if lo_ and hi_:
                    ax.fill_between(
                        fx,
                        np.asarray(lo_, dtype=float)[:, k],
                        np.asarray(hi_, dtype=float)[:, k],
                        color=TRAIN,
                        alpha=alpha,
                        linewidth=0,
                        label=f"{level}% interval",
                    )
        _date_axis(ax, x)
        ax.set(title=title, ylabel=short_label(target, 20))
        ax.legend(loc="upper left", ncols=2)
        return Plot(name, title, render(fig))


def _paths(target: str, fc: dict[str, Any], arrays: dict[str, Any], where: str) -> Plot:
    import matplotlib

    name = f"forecast_{target}"
    true = np.asarray(arrays.get("true") or [], dtype=float)
    pred = np.asarray(arrays.get("pred") or [], dtype=float)
    horizon = true.shape[1] if true.ndim == 2 else 0
    title = f"{short_label(target, 30)}: {where} windows, all {horizon} steps ahead"
    if true.size == 0 or pred.shape != true.shape:
        return Plot(name, title, note=f"the {where} span holds no forecast window.")
    series = fc.get("series") or [None] * len(true)
    first = [
        i for i, s_ in enumerate(series) if s_ == series[0]
    ]  # one series: the first one's windows
    if len(first) > _MAX_PATHS:
        pick = [first[i] for i in np.linspace(0, len(first) - 1, _MAX_PATHS).astype(int)]
    else:
        pick = first
    starts = _times([fc["time"][i] for i in first]) if fc.get("time") else np.arange(len(first))
    with matplotlib.rc_context(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8}
    ):
        fig = new_figure(9.0, 3.4)
        ax = fig.subplots()
        # the actual values under every window: the first value of each window, then the last window's tail
        idx = {w: j for j, w in enumerate(first)}
        step = (starts[1] - starts[0]) if len(starts) > 1 else 1
        xs_actual = [starts[0] + step * t for t in range(len(first) + horizon - 1)]
        ys_actual = list(true[first, 0]) + list(true[first[-1], 1:])
        ax.plot(xs_actual, ys_actual, color="black", linewidth=1.4, label="actual")
        for n_drawn, w in enumerate(pick):
            xs = [starts[idx[w]] + step * h for h in range(horizon)]
            if "lo80" in arrays and horizon > 1 and w == pick[-1]:  # one band: the last window's
                ax.fill_between(
                    xs,
                    np.asarray(arrays["lo80"], dtype=float)[w],
                    np.asarray(arrays["hi80"], dtype=float)[w],
                    color=TRAIN,
                    alpha=0.2,
                    linewidth=0,
                    label="80% interval (last window)",
                )
            ax.plot(
                xs,
                pred[w],
                color=TRAIN,
                linewidth=1.0,
                marker="." if horizon == 1 else None,
                label="model (each window's path)" if n_drawn == 0 else None,
            )
        _date_axis(ax, np.asarray(xs_actual))
        shown = f"{len(pick)} of {len(first)}" if len(pick) < len(first) else f"{len(first)}"
        ax.set(title=f"{title} ({shown} windows drawn)", ylabel=short_label(target, 20))
        ax.legend(loc="best")
        return Plot(name, title, render(fig))


def _by_step(target: str, arrays: dict[str, Any], where: str) -> Plot:
    import matplotlib

    name = f"forecast_error_{target}"
    title = f"{short_label(target, 30)}: mean absolute error by step ahead ({where} windows)"
    true = np.asarray(arrays.get("true") or [], dtype=float)
    if true.ndim != 2 or true.size == 0:
        return Plot(name, title, note=f"the {where} span holds no forecast window.")
    steps = np.arange(1, true.shape[1] + 1)
    with matplotlib.rc_context(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8}
    ):
        fig = new_figure(9.0, 3.0)
        ax = fig.subplots()
        names = ["pred"] + [
            b for b in arrays if b not in ("true", "pred") and not b.startswith(("lo", "hi"))
        ]
        for i, b in enumerate(names):
            arr = np.asarray(arrays[b], dtype=float)
            if arr.shape != true.shape:
                continue
            mae = np.mean(np.abs(arr - true), axis=0)
            ax.plot(
                steps,
                mae,
                color=TRAIN if b == "pred" else _BASE_COLOURS[(i - 1) % len(_BASE_COLOURS)],
                linewidth=1.6 if b == "pred" else 0.9,
                linestyle="-" if b == "pred" else "--",
                marker="o" if len(steps) < 30 else None,
                markersize=3,
                label="model" if b == "pred" else b,
            )
        ax.set(title=title, xlabel="steps ahead", ylabel="MAE")
        ax.legend(loc="best")
        return Plot(name, title, render(fig))
