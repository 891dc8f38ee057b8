"""Forecast baselines and metrics: naive, seasonal naive, drift, ETS; MAE, RMSE, sMAPE, MASE as in M4.

Every forecast window is scored beside the **naive** forecast ("the next values equal the last one"),
the **seasonal naive** ("equal the value one period earlier", when the period is known or detected),
**drift** (the line from the series' first value to its last, extended) and **ETS** (statsmodels'
exponential smoothing, the trend — none, additive or damped — and season chosen by AICc, refitted at
every origin). Each baseline sees only the rows before the window's origin.

``mase`` is the M4 competition's: a window's MAE divided by the in-sample MAE of the seasonal-naive
forecast (lag ``m``: the period, or 1) on the series' history before the origin, averaged over
windows (over series and windows for many series). ``relative_mae`` is the model's MAE over the
naive forecast's MAE on the same windows. ``windows`` says how many forecast windows a score rests on.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError
from dlpipe.data.series import SeriesAdapter, roll_forecast

__all__ = [
    "detect_period",
    "baseline_forecasts",
    "ets_forecasts",
    "ets_paths",
    "mase_scale",
    "forecast_metrics",
    "score_forecast",
    "forecast_verdict",
    "conformal_quantiles",
    "interval_coverage",
    "LEVELS",
    "ETS_MAX_FITS",
    "ForecastAdapter",
]

LEVELS = (80, 95)  # prediction interval levels (%)
# Series x targets whose ETS is fitted per run (0.1-10 s each on a busy core); beyond, it is left out.
ETS_MAX_FITS = 400


def detect_period(y: np.ndarray, max_period: int | None = None) -> int | None:
    """The lag (>= 2) of the first autocorrelation peak near the highest one, after removing a quadratic trend.

    Example:
        >>> t = np.arange(240.0)
        >>> detect_period(np.sin(2 * np.pi * t / 12) + 0.01 * t)
        12
    """
    y = np.asarray(y, np.float64).reshape(-1)
    t = np.arange(len(y), dtype=np.float64)
    d = (
        y - np.polyval(np.polyfit(t, y, 2), t) if len(y) > 3 else y
    )  # remove the trend, keep the season
    n = len(d)
    if n < 8:
        return None
    max_period = min(max_period or n // 3, n // 2)
    d = d - d.mean()
    denom = float((d * d).sum())
    if denom <= 0 or max_period < 2:
        return None
    acf = np.array([float((d[:-k] * d[k:]).sum()) / denom for k in range(1, max_period + 1)])
    peaks = [
        k
        for k in range(2, max_period + 1)
        if acf[k - 1] > acf[k - 2] and acf[k - 1] >= (acf[k] if k < len(acf) else -np.inf)
    ]
    strong = [k for k in peaks if acf[k - 1] > 0.3]  # below ~0.3 the "season" is noise
    if not strong:
        return None
    top = max(acf[k - 1] for k in strong)
    # multiples of the period peak about as high: take the first peak close to the highest one
    return next(k for k in strong if acf[k - 1] >= 0.9 * top)


def baseline_forecasts(
    history: np.ndarray, origins: np.ndarray, horizon: int, *, period: int | None
) -> dict[str, np.ndarray]:
    """Naive, seasonal-naive (when every origin has a period behind it) and drift forecasts (N, H, K).

    ``history`` is the whole target series (T, K) in original units; a forecast at origin ``o``
    uses only rows before ``o`` (``o >= 1``).

    Example:
        >>> y = np.array([[1.0], [2.0], [3.0], [4.0]])
        >>> b = baseline_forecasts(y, np.array([3]), 2, period=None)
        >>> b["naive"][0, :, 0].tolist(), b["drift"][0, :, 0].tolist()
        ([3.0, 3.0], [4.0, 5.0])
    """
    history = np.asarray(history, np.float64)
    h = np.arange(horizon)
    last = history[origins - 1]  # (N, K)
    out = {"naive": np.repeat(last[:, None, :], horizon, axis=1)}
    if period is not None and len(origins) and np.all(origins - period >= 0):
        back = period * (h // period + 1)  # (H,): one or more periods back, never after the origin
        idx = origins[:, None] + h[None, :] - back[None, :]  # (N, H)
        out["seasonal_naive"] = history[idx]
    steps = np.maximum(origins - 1, 1)[:, None]  # (N, 1)
    slope = (last - history[0][None, :]) / steps  # (N, K): first value to last value
    out["drift"] = last[:, None, :] + (h + 1)[None, :, None] * slope[:, None, :]
    return out


def _ets_configs(n: int, period: int | None) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = [{"trend": None}]
    if n >= 6:  # a trend needs a few points to be estimated at all
        configs += [{"trend": "add"}, {"trend": "add", "damped_trend": True}]
    if period and n >= 2 * period + 2:
        configs += [{**c, "seasonal": "add", "seasonal_periods": period} for c in configs]
    return configs


def _ets_select(y: np.ndarray, period: int | None) -> tuple[dict[str, Any], Any] | None:
    """The ETS configuration of lowest AICc on ``y`` and its fitted parameters (None: nothing fitted)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    if len(y) < 4 or np.ptp(y) == 0:
        return None
    best, best_ic = None, math.inf
    for c in _ets_configs(len(y), period):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter on short series
                res = ETSModel(y, error="add", **c).fit(disp=False)
            ic = float(res.aicc)
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            continue
        if math.isfinite(ic) and ic < best_ic:
            best, best_ic = (c, res.params), ic
    return best


def ets_forecasts(
    history: np.ndarray, origins: np.ndarray, horizon: int, *, period: int | None
) -> np.ndarray:
    """ETS forecasts (N, H, K) in the M4 way for one series: the model (trend none, additive or damped;
    additive season when a period is known) chosen by AICc and fitted on the rows before the first
    origin, then run over the rows before each later origin with those parameters (statsmodels).

    The filter is causal, so one pass over the rows before the last origin gives the states after
    every row; each window's forecast is then read from the states at its origin (level + damped-trend
    sum x trend + the season's last value), what ``ETSModel(y[:o]).smooth(params).forecast(h)`` returns
    (tests/evaluation/test_forecast_baselines.py) without a results object per window: that object
    computes a numerical Hessian, 0.8 s a window on co2's 2,284 weeks (6 of 7 minutes of a run).
    """
    history = np.asarray(history, np.float64)
    origins = np.asarray(origins, np.int64)
    out = np.empty((len(origins), horizon, history.shape[1]))
    if not len(origins):
        return out
    for k in range(history.shape[1]):
        out[:, :, k] = history[origins - 1, k][:, None]  # naive where ETS cannot run
        chosen = _ets_select(history[: origins[0], k], period)
        if chosen is None:
            continue
        fc = ets_paths(history[: origins.max(), k], origins, horizon, *chosen)
        if fc is not None:
            good = np.all(np.isfinite(fc), axis=1)
            out[good, :, k] = fc[good]
    return out


def ets_paths(
    y: np.ndarray, origins: np.ndarray, horizon: int, config: dict[str, Any], params: Any
) -> np.ndarray | None:
    """(N, H) forecasts of the additive-error ETS ``config`` with fixed ``params`` from each origin of
    the 1-D series ``y`` (rows before the origin only): one smoothing pass, then level + trend steps
    (damped: phi + ... + phi^h) + the season's last value, read from the states at each origin. None
    when statsmodels cannot run it."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    h = np.arange(1, horizon + 1)
    params = np.asarray(params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ETSModel(np.asarray(y, np.float64), error="add", **config)
            _, states = model.smooth(params, return_raw=True)
            phi = float(model._internal_params(params)[3])
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
        return None
    states = np.asarray(states, np.float64)
    at = states[origins - 1]  # (N, states): after the last row before each origin
    fc = np.repeat(at[:, :1], horizon, axis=1)  # the level
    col = 1
    if config.get("trend"):
        steps = np.cumsum(phi**h) if config.get("damped_trend") else h.astype(np.float64)
        fc = fc + steps[None, :] * at[:, 1:2]
        col = 2
    if config.get("seasonal"):
        m = int(config["seasonal_periods"])
        back = (origins - 1)[:, None] + h[None, :] - m * ((h[None, :] - 1) // m + 1)
        if back.min() < 0:  # not reached: a season is chosen only on 2 periods + 2 rows
            return None
        fc = fc + states[back, col]
    return fc


def mase_scale(history: np.ndarray, origins: np.ndarray, period: int | None) -> np.ndarray:
    """M4's MASE denominator per window (N, K): mean |y_t - y_{t-m}| over the rows before each origin.

    NaN where the history is not longer than ``m`` or is constant (MASE undefined there).

    Example:
        >>> mase_scale(np.array([[1.0], [3.0], [4.0], [10.0]]), np.array([3, 4]), None).ravel().tolist()
        [1.5, 3.0]
    """
    history = np.asarray(history, np.float64)
    m = period or 1
    diffs = np.abs(history[m:] - history[:-m]) if len(history) > m else history[:0]
    csum = np.vstack([np.zeros((1, history.shape[1])), np.cumsum(diffs, axis=0)])
    count = (origins - m)[:, None].astype(np.float64)  # diffs available before each origin
    idx = np.clip(origins - m, 0, len(diffs))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = csum[idx] / count
    return np.where((count > 0) & (scale > 0), scale, np.nan)


def _nanmean(a: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def forecast_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, naive: np.ndarray, scale: np.ndarray
) -> dict[str, float]:
    """MAE, RMSE, sMAPE (%), M4 MASE (mean over windows and targets), relative MAE vs naive, windows.

    Arrays are (N, H, K); ``scale`` is :func:`mase_scale`'s (N, K).
    """
    y_true, y_pred, naive = (np.asarray(a, np.float64) for a in (y_true, y_pred, naive))
    n = int(len(y_true))
    if n == 0:
        nan = float("nan")
        return {
            "mae": nan,
            "rmse": nan,
            "smape": nan,
            "mase": nan,
            "relative_mae": nan,
            "windows": 0,
        }
    err = y_pred - y_true
    mae = float(np.mean(np.abs(err)))
    naive_mae = float(np.mean(np.abs(naive - y_true)))
    denom = np.abs(y_true) + np.abs(y_pred)
    smape = float(
        np.mean(np.where(denom > 0, 2.0 * np.abs(err) / np.where(denom > 0, denom, 1.0), 0.0))
        * 100.0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        per_window = np.mean(np.abs(err), axis=1) / scale  # (N, K)
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "smape": smape,
        "mase": _nanmean(per_window),
        "relative_mae": mae / naive_mae if naive_mae > 0 else float("nan"),
        "windows": n,
    }


def forecast_verdict(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> str:
    """One plain sentence on whether the model beats naive (and the best baseline), by MASE."""
    windows = int(model.get("windows", 0))
    if windows == 0:
        return "There is no test window, so the model was not tested; pass a `test_fraction` above 0 to score it."
    key = "mase" if np.isfinite(model.get("mase", np.nan)) else "mae"
    on = f" on {windows} test window{'s' if windows != 1 else ''}"
    naive = baselines["naive"][key]
    ranked = {k: v[key] for k, v in baselines.items() if np.isfinite(v.get(key, np.nan))}
    best_name = min(ranked, key=ranked.__getitem__)
    best = ranked[best_name]
    label = key.upper()
    if model[key] < naive:
        tail = (
            f" and every baseline (best: {best_name}, {label} {best:.4g})."
            if model[key] < best
            else f", but not the {best_name} baseline ({label} {best:.4g}); prefer that baseline or tune the model."
        )
        return (
            f"The model beats the naive forecast{on}: {label} {model[key]:.4g} vs {naive:.4g}"
            + tail
        )
    return (
        f"The model does NOT beat the naive forecast{on} ({label} {model[key]:.4g} vs {naive:.4g} for "
        f"'the next values equal the last one'); use the {best_name} baseline, or try a longer lookback, more data or another model."
    )


def score_forecast(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    baselines: dict[str, np.ndarray],
    scale: np.ndarray,
    *,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The test block of metrics.json: model and baselines on the same windows, and the verdict."""
    naive = baselines["naive"]
    base = {name: forecast_metrics(y_true, b, naive, scale) for name, b in baselines.items()}
    model = forecast_metrics(y_true, y_pred, naive, scale)
    return {
        "rows": int(len(y_true)),
        "windows": int(len(y_true)),
        "primary_metric": "mase",
        "model": model,
        "baselines": base,
        "verdict": forecast_verdict(model, base),
        "baseline_notes": list(notes or []),
    }


# ---------------------------------------------------------------------------- intervals
def conformal_quantiles(
    residuals: np.ndarray, rank_levels: dict[int, float] | None = None
) -> tuple[dict[str, list[list[float]]], list[str]]:
    """Split-conformal half-widths per horizon step from out-of-sample residuals (N, H, K) in scale units.

    For level ``a`` the half-width is the ``ceil((n + 1) a)``-th smallest absolute residual of that
    step (n residuals), which covers a new residual with probability >= a when they are exchangeable;
    with too few residuals for that rank the largest is used, with a note. ``rank_levels`` maps a
    nominal level (80) to the level whose rank is taken (83), for errors known not to be exchangeable
    with the future ones (earlier years forecast more easily than later ones).

    Example:
        >>> q, _ = conformal_quantiles(np.arange(1.0, 21.0).reshape(20, 1, 1))
        >>> q["80"], q["95"]
        ([[17.0]], [[20.0]])
    """
    r = np.sort(np.abs(np.asarray(residuals, np.float64)), axis=0)  # (N, H, K)
    n = len(r)
    notes: list[str] = []
    out: dict[str, list[list[float]]] = {}
    if n == 0:
        return out, ["no out-of-sample residuals, so no prediction intervals"]
    for level in LEVELS:
        rank = math.ceil((n + 1) * (rank_levels or {}).get(level, level) / 100.0)
        if rank > n:
            notes.append(
                f"the {level}% interval rests on {n} residuals per step (it needs {math.ceil(100 / (100 - level)) - 1} for its rank), so it is the largest residual seen and may be too narrow"
            )
            rank = n
        out[str(level)] = r[rank - 1].tolist()  # (H, K)
    return out, notes


def interval_coverage(
    y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray, quantiles: dict[str, Any]
) -> dict[str, float]:
    """Share of test points inside each interval (N, H, K arrays; ``scale`` (N, K))."""
    cover: dict[str, float] = {}
    for level, q in quantiles.items():
        half = np.asarray(q, np.float64)[None, :, :] * scale[:, None, :]  # (N, H, K)
        ok = np.isfinite(half)
        inside = np.abs(np.asarray(y_true) - np.asarray(y_pred)) <= half
        cover[level] = float(inside[ok].mean()) if ok.any() else float("nan")
    return cover


class ForecastAdapter(SeriesAdapter):
    """The forecasting bundle's adapter (registered for kind ``series``): the data-side
    :class:`SeriesAdapter` plus scoring every window of a labelled series beside the baselines."""

    def evaluate_bundle(self, bundle: Any, data: Any) -> dict[str, Any]:
        """Score every forecast origin of a labelled series (of every series) beside the baselines."""
        from dlpipe.data.backtest import window_arrays

        st = self._state
        frame = self.read(data)
        lookback, horizon, tidx = int(st["lookback"]), int(st["horizon"]), self.target_index
        sc = st.get("series_column")
        groups = self._groups(frame) if sc else [(None, frame)]
        period = st.get("period")
        trues, preds, scales, bases = [], [], [], {}  # type: ignore[var-annotated]
        for _, rows in groups:
            raw = rows[st["input_columns"]].to_numpy(np.float64)
            first = lookback if len(raw) >= lookback + horizon else 1
            origins = np.arange(first, len(raw) - horizon + 1)
            if not len(origins):
                continue
            scaler = self._series_scaler(rows) if sc else self.scaler
            z = scaler.transform(raw)
            xs, _ = window_arrays(z, z[:, tidx], origins, lookback, horizon)
            zp = roll_forecast(
                lambda a: bundle.outputs([np.ascontiguousarray(a, np.float32)]),
                xs,
                horizon,
                tidx,
                recursive=bool(st["recursive"]),
            )
            history = raw[:, tidx]
            preds.append(scaler.inverse(zp, tidx))
            trues.append(history[origins[:, None] + np.arange(horizon)[None, :]])
            scales.append(mase_scale(history, origins, period))
            for name, b in baseline_forecasts(history, origins, horizon, period=period).items():
                bases.setdefault(name, []).append(b)
        if not trues:
            raise InvalidInputError(
                f"the evaluation series has {len(frame)} rows but one window needs at least 1 + horizon = {horizon + 1} rows; pass a longer labelled series."
            )
        n = len(trues)
        return score_forecast(
            np.concatenate(trues),
            np.concatenate(preds),
            {k: np.concatenate(v) for k, v in bases.items() if len(v) == n},
            np.concatenate(scales),
        )
