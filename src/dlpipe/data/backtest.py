"""Rolling-origin backtests: where each series is cut into training, validation and test forecast origins.

A forecast made at origin ``o`` reads the rows before ``o`` and predicts rows ``o .. o + horizon - 1``.
The *targets* of a window lie inside one span; its *inputs* may reach back into earlier spans (they
are known at the origin), and a series shorter than the lookback is padded on the left with its
first value, so a 15-point yearly series still gives windows. Every origin that fits is used, so a
short test span with a long horizon gives few windows (with a warning) rather than a refusal::

    rows:     |--------- train ---------|---- val ----|---- test ----|
    origins:        o ... (stride)        o o o o ...   o o o o ...     (targets inside the span)

Spans per series: ``test`` holds ``max(horizon, round(test_fraction * T))`` rows (``test_rows`` when
given, e.g. a .tsf file's horizon), ``val`` likewise; when no training window is left, the
validation span is dropped, then the test span shrinks to one horizon, then the series is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlpipe.core.errors import InvalidInputError

__all__ = [
    "FEW_WINDOWS",
    "SeriesPlan",
    "plan_backtest",
    "window_arrays",
    "few_windows_note",
    "interval_scale",
]

# Below this many windows a score is reported with a warning: with overlapping windows a handful of
# them is close to one observation of the forecast error.
FEW_WINDOWS = 10


@dataclass(frozen=True)
class SeriesPlan:
    """One series' cut: training targets in ``[0, train_end)``, validation in ``[train_end, val_end)``,
    test in ``[val_end, n)``.

    Example:
        >>> p = SeriesPlan(n=30, train_end=18, val_end=24, first=4)
        >>> p.origins("train", horizon=3).tolist()[:3], p.origins("test", horizon=3).tolist()
        ([4, 5, 6], [24, 25, 26, 27])
    """

    n: int
    train_end: int
    val_end: int
    first: (
        int  # the first training origin (lookback when the series is long, else 1: padded windows)
    )

    def origins(self, part: str, horizon: int, stride: int = 1) -> np.ndarray:
        """Forecast origins whose targets lie in ``part``: train, val, test, fit (train+val) or all."""
        start, stop = {
            "train": (self.first, self.train_end),
            "val": (self.train_end, self.val_end),
            "test": (self.val_end, self.n),
            "fit": (self.first, self.val_end),
            "all": (self.first, self.n),
        }[part]
        step = stride if part in ("train", "fit", "all") else 1
        return np.arange(max(start, 1), stop - horizon + 1, step, dtype=np.int64)


def _first_origin(train_rows: int, horizon: int, lookback: int) -> int:
    full = train_rows - horizon - lookback + 1  # windows whose inputs are all observed
    return lookback if full >= lookback else 1


def plan_backtest(
    lengths: list[int],
    horizon: int,
    lookback: int,
    *,
    val_fraction: float,
    test_fraction: float,
    test_rows: int | None = None,
    what: str = "series",
) -> tuple[list[SeriesPlan], list[str]]:
    """Cut each series into spans (see the module docstring); returns the plans and notes for the user.

    Raises:
        InvalidInputError: when no series is long enough for one training window (``horizon + 1`` rows),
            naming the rows needed.
    """

    def cut(n: int, with_val: bool, shrink_test: bool) -> SeriesPlan:
        if test_rows is not None:
            n_te = test_rows
        else:
            n_te = 0 if test_fraction <= 0 else max(horizon, round(test_fraction * n))
        if shrink_test and n_te:
            n_te = horizon
        n_va = 0 if (val_fraction <= 0 or not with_val) else max(horizon, round(val_fraction * n))
        train_end = max(n - n_te - n_va, 0)
        return SeriesPlan(
            n, train_end, train_end + n_va, _first_origin(train_end, horizon, lookback)
        )

    def count(plans: list[SeriesPlan], part: str) -> int:
        return sum(len(p.origins(part, horizon)) for p in plans)

    notes: list[str] = []
    plans = [cut(n, True, False) for n in lengths]
    if count(plans, "train") == 0 and count(plans, "val") > 0:
        plans = [cut(n, False, False) for n in lengths]
        notes.append(
            f"no training window is left before the validation span with horizon {horizon}, so there is no validation span: early stopping is off and the epochs are fixed; pass a smaller `horizon` or a longer series to get one."
        )
    if count(plans, "train") == 0 and count(plans, "test") > 0:
        plans = [cut(n, False, True) for n in lengths]
    if count(plans, "train") == 0:
        longest = max(lengths) if lengths else 0
        need = horizon + 1 + (horizon if test_fraction > 0 or test_rows else 0)
        raise InvalidInputError(
            f"{what!r} has {longest} rows in its longest series but forecasting {horizon} steps ahead needs at least {need} rows (one training window of 1 + {horizon} rows"
            + (f", then {horizon} rows to test on)" if need > horizon + 1 else ")")
            + "; pass a longer series or a smaller `horizon`."
        )
    return plans, notes


def window_arrays(
    z: np.ndarray, target: np.ndarray, origins: np.ndarray, lookback: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, lookback, F) and targets (N, horizon * K) step-major for forecasts made at ``origins``.

    Rows before the series' start are its first row repeated (left padding).

    Example:
        >>> z = np.arange(5.0)[:, None]
        >>> x, y = window_arrays(z, z, np.array([2]), lookback=3, horizon=2)
        >>> x[0, :, 0].tolist(), y.tolist()
        ([0.0, 0.0, 1.0], [[2.0, 3.0]])
    """
    padded = np.concatenate([np.repeat(z[:1], lookback, axis=0), z], axis=0)  # (L + T, F)
    rows = (
        origins[:, None] + np.arange(lookback)[None, :]
    )  # padded rows o .. o+L-1 = real o-L .. o-1
    x = padded[rows].astype(np.float32)  # (N, L, F)
    k = target.shape[1]
    if len(origins) and int(origins.max()) + horizon > len(target):
        raise ValueError("a window's targets run past the series")  # internal invariant
    steps = origins[:, None] + np.arange(horizon)[None, :]  # (N, H)
    y = (
        target[steps].reshape(len(origins), horizon * k).astype(np.float32)
        if len(origins)
        else np.zeros((0, horizon * k), np.float32)
    )
    return x, y


def few_windows_note(part: str, windows: int, threshold: int = FEW_WINDOWS) -> str | None:
    """A warning when a score rests on fewer than ``threshold`` windows, or None."""
    if windows >= threshold:
        return None
    if windows == 0:
        return f"the {part} span holds no forecast window, so there is no {part} score."
    return (
        f"the {part} score rests on {windows} window{'s' if windows != 1 else ''} (fewer than {threshold}); "
        "overlapping windows of one series are close to a single observation of the error, so read it as indicative "
        "and prefer a longer series, a shorter `horizon` or a larger `test_fraction`."
    )


def interval_scale(history: np.ndarray, origins: np.ndarray, lookback: int) -> np.ndarray:
    """The prediction intervals' scale per window (N, K): the mean absolute step over the ``lookback``
    rows before each origin (the window a forecaster reads), else over all rows before it when those
    are flat; NaN for a constant history.

    Errors divided by it pool across series of any size. Chosen over the larger of |last value| and
    the M4 MASE scale, the MASE scale alone and |last value| by the coverage of a default run's
    intervals on development data (M1 yearly without the points reported on;
    ``benchmarks/interval_scale_dev.py``, docs/series.md).

    Example:
        >>> y = np.array([[0.0], [0.0], [0.0], [1.0], [3.0], [3.0], [3.0]])
        >>> interval_scale(y, np.array([5, 7]), lookback=3).ravel().tolist()
        [1.5, 0.5]
    """
    history = np.asarray(history, np.float64)  # (T, K)
    steps = np.abs(np.diff(history, axis=0))  # (T - 1, K): steps[i] = |y[i + 1] - y[i]|
    csum = np.vstack([np.zeros((1, history.shape[1])), np.cumsum(steps, axis=0)])
    hi = np.clip(np.asarray(origins) - 1, 0, len(steps))  # steps whose both rows precede the origin
    lo = np.minimum(np.clip(np.asarray(origins) - lookback, 0, None), hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        recent = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
        whole = csum[hi] / hi[:, None]
    scale = np.where(recent > 0, recent, whole)
    return np.where(scale > 0, scale, np.nan)
