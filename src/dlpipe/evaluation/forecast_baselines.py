"""Forecast baselines and metrics: naive, seasonal naive, moving average; MAE, RMSE, sMAPE, MASE.

Every forecast is scored beside the naive forecast ("the next value equals the last one"), the
seasonal naive ("equals the value one period earlier", period given or detected from the training
span's autocorrelation) and a moving average of the last values. ``mase`` is the model's MAE
divided by the naive forecast's MAE on the same test windows, so ``mase < 1`` means the model beats
naive; ``mase_insample`` is Hyndman's scaling by the training span's one-step naive MAE.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError
from dlpipe.data.series import SeriesAdapter, make_windows, roll_forecast

__all__ = [
    "detect_period",
    "baseline_forecasts",
    "forecast_metrics",
    "score_forecast",
    "forecast_verdict",
    "ForecastAdapter",
]


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
    history: np.ndarray, origins: np.ndarray, horizon: int, *, period: int | None, window: int
) -> dict[str, np.ndarray]:
    """Baseline forecasts (N, H, K) made at each origin (the index of the first forecast row).

    ``history`` is the whole target series (T, K) in original units; a forecast at origin ``o``
    uses only rows before ``o``.
    """
    h = np.arange(horizon)
    last = history[origins - 1]  # (N, K)
    out = {"naive": np.repeat(last[:, None, :], horizon, axis=1)}
    if period is not None and np.all(origins - period >= 0):
        # value one (or more) periods before each target step, never after the origin
        back = period * (h // period + 1)  # (H,)
        idx = origins[:, None] + h[None, :] - back[None, :]  # (N, H)
        out["seasonal_naive"] = history[idx]
    lo = np.maximum(origins - window, 0)
    csum = np.vstack([np.zeros((1, history.shape[1])), np.cumsum(history, axis=0)])
    mean = (csum[origins] - csum[lo]) / (origins - lo)[:, None]
    out["moving_average"] = np.repeat(mean[:, None, :], horizon, axis=1)
    return out


def forecast_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, naive: np.ndarray, insample_scale: float
) -> dict[str, float]:
    """MAE, RMSE, sMAPE (%), MASE vs the naive forecast on the same windows, in-sample MASE."""
    y_true, y_pred, naive = (np.asarray(a, np.float64) for a in (y_true, y_pred, naive))
    err = y_pred - y_true
    mae = float(np.mean(np.abs(err)))
    naive_mae = float(np.mean(np.abs(naive - y_true)))
    denom = np.abs(y_true) + np.abs(y_pred)
    smape = float(
        np.mean(np.where(denom > 0, 2.0 * np.abs(err) / np.where(denom > 0, denom, 1.0), 0.0))
        * 100.0
    )
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "smape": smape,
        "mase": mae / naive_mae if naive_mae > 0 else float("nan"),
        "mase_insample": mae / insample_scale if insample_scale > 0 else float("nan"),
    }


def forecast_verdict(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> str:
    """One plain sentence on whether the model beats naive (and the best baseline), by MAE."""
    naive = baselines["naive"]["mae"]
    best_name = min(baselines, key=lambda k: baselines[k]["mae"])
    best = baselines[best_name]["mae"]
    if model["mae"] < naive:
        tail = (
            f" and every baseline (best: {best_name}, MAE {best:.4g})."
            if model["mae"] < best
            else f", but not the {best_name} baseline (MAE {best:.4g}); prefer that baseline or tune the model."
        )
        return (
            f"The model beats the naive forecast: MASE {model['mase']:.3f} (MAE {model['mae']:.4g} vs {naive:.4g})"
            + tail
        )
    return (
        f"The model does NOT beat the naive forecast (MASE {model['mase']:.3f}: MAE {model['mae']:.4g} vs {naive:.4g} for "
        f"'the next value equals the last one'); use the {best_name} baseline, or try a longer lookback, more data or another model."
    )


def score_forecast(
    y_true: np.ndarray, y_pred: np.ndarray, baselines: dict[str, np.ndarray], insample_scale: float
) -> dict[str, Any]:
    """The test block of metrics.json: model and baselines on the same windows, and the verdict."""
    naive = baselines["naive"]
    base = {
        name: forecast_metrics(y_true, b, naive, insample_scale) for name, b in baselines.items()
    }
    model = forecast_metrics(y_true, y_pred, naive, insample_scale)
    return {
        "rows": int(len(y_true)),
        "primary_metric": "mase",
        "model": model,
        "baselines": base,
        "verdict": forecast_verdict(model, base),
    }


class ForecastAdapter(SeriesAdapter):
    """The forecasting bundle's adapter (registered for kind ``series``): the data-side
    :class:`SeriesAdapter` plus scoring every window of a labelled series beside the baselines."""

    def evaluate_bundle(self, bundle: Any, data: Any) -> dict[str, Any]:
        """Score every window of a labelled series (the rows themselves) beside the naive baselines."""
        st = self._state
        frame = self.read(data)
        lookback, horizon, tidx = int(st["lookback"]), int(st["horizon"]), self.target_index
        raw = frame[st["input_columns"]].to_numpy(np.float64)
        if len(raw) < lookback + horizon:
            raise InvalidInputError(
                f"the evaluation series has {len(raw)} rows but one window needs lookback + horizon = {lookback + horizon} rows; pass a longer labelled series."
            )
        xs, ys, starts = make_windows(
            self.scaler.transform(raw), raw[:, tidx], lookback, horizon, 1
        )
        z = roll_forecast(
            lambda a: bundle.outputs([np.ascontiguousarray(a, np.float32)]),
            xs,
            horizon,
            tidx,
            recursive=bool(st["recursive"]),
        )
        y_pred = self.scaler.inverse(z, tidx)
        y_true = ys.reshape(len(ys), horizon, len(tidx)).astype(np.float64)
        period = st.get("period")
        bases = baseline_forecasts(
            raw[:, tidx],
            starts + lookback,
            horizon,
            period=period,
            window=int(st.get("window") or lookback),
        )
        return score_forecast(
            y_true, y_pred, bases, float(st.get("insample_scale") or float("nan"))
        )
