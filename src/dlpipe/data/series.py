"""Time series for forecasting: loading, cleaning, time-ordered splits, windows and scaling.

The honest path is the only path: rows are ordered by time, the train / validation / test spans
follow each other in time and every window lies inside one span (it never straddles a boundary),
and the scaler is fitted on the training span only. Predictions are inverse-transformed to the
target's original units.

    rows:    |-------- train --------|--- val ---|--- test ---|
    window:  [ lookback rows ][ horizon rows ]   (slides by `stride` inside one span)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import (
    DataWarning,
    InvalidConfigError,
    InvalidInputError,
    InvalidTargetError,
    format_names,
    suggest,
)
from dlpipe.data.backtest import interval_scale
from dlpipe.data.inputs import PreparedBatch
from dlpipe.data.numbers import check_numbers, check_outputs
from dlpipe.data.tabular import read_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SeriesDataset",
    "SeriesScaler",
    "SeriesAdapter",
    "load_series",
    "make_windows",
    "split_series",
    "detect_series",
    "auto_lookback",
    "roll_forecast",
]


@dataclass
class SeriesDataset:
    """A cleaned, time-ordered series: input columns, target column(s), optional time column.

    The inputs of a window are the ``features`` plus the targets' own history (autoregressive).

    Example:
        >>> import numpy as np
        >>> ds = load_series({"y": np.arange(20.0)}, target="y")
        >>> ds.input_columns, len(ds.frame)
        (['y'], 20)
    """

    frame: pd.DataFrame
    targets: list[str]
    features: list[str] = field(default_factory=list)
    time_column: str | None = None
    name: str = "series"
    test_frame: pd.DataFrame | None = None
    freq: str | None = None
    step: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    series_column: str | None = None
    period: int | None = None  # the season length when the source says it (a .tsf file's frequency)

    kind = "series"

    def groups(self) -> list[tuple[str | None, pd.DataFrame]]:
        """``(name, rows)`` per series, in order of first appearance; one ``(None, frame)`` for a single series."""
        if self.series_column is None:
            return [(None, self.frame)]
        return [
            (str(k), g.reset_index(drop=True))
            for k, g in self.frame.groupby(self.series_column, sort=False)
        ]

    @property
    def target(self) -> str:
        return self.targets[0]

    @property
    def input_columns(self) -> list[str]:
        return list(self.features) + [t for t in self.targets if t not in self.features]

    def __repr__(self) -> str:
        many = f", series={self.frame[self.series_column].nunique()}" if self.series_column else ""
        return f"SeriesDataset(name={self.name!r}, rows={len(self.frame)}{many}, targets={self.targets}, features={self.features}, time_column={self.time_column!r})"


# ---------------------------------------------------------------------------- loading and cleaning
def load_series(
    data: Any,
    target: str | list[str] | None = None,
    *,
    time_column: str | None = None,
    features: list[str] | str | None = None,
    strict: bool = False,
    test: Any = None,
    name: str | None = None,
    series_column: str | None = None,
) -> SeriesDataset:
    """Read a series (CSV/TSV/Parquet/.tsf path, DataFrame, dict of columns or 1-D array) and clean it.

    A long table of many series names each series in ``series_column`` (each is cleaned and ordered on
    its own); a Monash ``.tsf`` file is read as such a table with the columns ``series``, ``time`` and
    ``value``, its frequency giving the season length and its ``@horizon`` the default horizon.

    Args:
        data: The series. A 1-D array becomes one column named ``"y"``.
        target: Column(s) to forecast (comma-separated or a list). Defaults to the last numeric column.
        time_column: Column of timestamps (dates or numbers); rows are ordered by it. Defaults to the row order.
        features: Other input columns (comma-separated or a list). Defaults to `[]` (the target's own history).
        strict: Refuse NaNs instead of interpolating them. Defaults to `False`.
        test: An optional separate test series with the same columns. Defaults to `None`.
        name: Name for run folders. Defaults to the file stem or `"series"`.
        series_column: The column naming each series of a long table. Defaults to `None` (one series).

    Raises:
        InvalidInputError: missing or unparseable time column, duplicated timestamps, non-numeric
            values, NaNs with ``strict=True``.
    """
    import pandas as pd

    meta: dict[str, Any] = {}
    period: int | None = None
    if name is None:
        name = Path(data).stem if isinstance(data, (str, Path)) else "series"
    if isinstance(data, (str, Path)) and str(data).lower().endswith(".tsf"):
        from dlpipe.data.tsf import read_tsf

        tsf = read_tsf(data)
        data, period = tsf.frame, tsf.period
        meta.update(horizon=tsf.horizon, frequency=tsf.frequency)
        series_column, time_column = series_column or "series", time_column or "time"
        target = target or "value"
    if isinstance(data, np.ndarray) and data.ndim == 1:
        data = pd.DataFrame({"y": data})
    elif isinstance(data, dict):
        data = pd.DataFrame(data)
    frame = read_table(data)
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise InvalidInputError(
            f"series {name!r} has no rows; pass a table with a header row and data rows."
        )
    feats = _as_list(features)
    cols = list(frame.columns)
    if target is None:
        numeric = [
            c
            for c in cols
            if c not in (time_column, series_column)
            and c not in feats
            and pd.api.types.is_numeric_dtype(frame[c])
        ]
        if not numeric:
            raise InvalidTargetError(
                f"series {name!r} has no numeric column to forecast; pass target=... naming a numeric column."
            )
        targets = [numeric[-1]]
        if len(numeric) > 1:
            warnings.warn(
                DataWarning(
                    f"no target given; forecasting the last numeric column {targets[0]!r} (pass target=... to choose)."
                ),
                stacklevel=2,
            )
    else:
        targets = _as_list(target)
    for role, names in (("target", targets), ("feature", feats)):
        for c in names:
            if c not in cols:
                raise InvalidInputError(
                    f"{role} column {c!r} not found in {name!r}{suggest(c, cols)}; columns are: {format_names(cols)}."
                )
    if time_column is not None and time_column not in cols:
        raise InvalidInputError(
            f"time column {time_column!r} not found in {name!r}{suggest(time_column, cols)}; columns are: {format_names(cols)}; pass `time_column` naming a column of dates or numbers, or leave it out to use the row order."
        )
    if series_column is not None and series_column not in cols:
        raise InvalidInputError(
            f"series column {series_column!r} not found in {name!r}{suggest(series_column, cols)}; columns are: {format_names(cols)}; pass `series_column` naming the column that says which series a row belongs to."
        )
    inputs = feats + [t for t in targets if t not in feats]
    if series_column is None:
        frame, freq, step, gaps = clean_series(frame, inputs, time_column, strict=strict, what=name)
    else:
        if test is not None:
            raise InvalidInputError(
                f"a separate `test` file is not used with many series (`series_column` {series_column!r}); leave `test` out: the last rows of every series are held out instead."
            )
        parts, freq, step, gaps = [], None, None, 0
        for key, rows in frame.groupby(series_column, sort=False):
            cleaned, freq, step, g = clean_series(
                rows, inputs, time_column, strict=strict, what=f"{name}[{key}]"
            )
            cleaned.insert(0, series_column, key)
            parts.append(cleaned)
            gaps += g
        frame = pd.concat(parts, ignore_index=True)
    test_frame = None
    if test is not None:
        test_raw = read_table(pd.DataFrame(test) if isinstance(test, dict) else test, what="test")
        test_raw.columns = [str(c) for c in test_raw.columns]
        missing = [
            c for c in inputs + ([time_column] if time_column else []) if c not in test_raw.columns
        ]
        if missing:
            raise InvalidInputError(
                f"the test series lacks the columns {format_names(missing)}; pass a test file with the same columns as the training series."
            )
        test_frame, _, _, _ = clean_series(
            test_raw, inputs, time_column, strict=strict, what="test"
        )
    return SeriesDataset(
        frame=frame,
        targets=targets,
        features=feats,
        time_column=time_column,
        name=name,
        test_frame=test_frame,
        freq=freq,
        step=step,
        meta={"gaps": gaps, **meta},
        series_column=series_column,
        period=period,
    )


def clean_series(
    frame: pd.DataFrame,
    columns: list[str],
    time_column: str | None,
    *,
    strict: bool = False,
    what: str = "series",
) -> tuple[pd.DataFrame, str | None, float | None, int]:
    """Parse and order the time column, refuse duplicates, report gaps, make values numeric, fill NaNs.

    Returns the cleaned frame (time column + ``columns``), the inferred pandas frequency (datetimes),
    the numeric step (numeric time) and the number of gaps found.
    """
    import pandas as pd

    keep = ([time_column] if time_column else []) + [c for c in columns if c != time_column]
    frame = frame[keep].reset_index(drop=True)
    freq: str | None = None
    step: float | None = None
    gaps = 0
    if time_column is not None:
        raw = frame[time_column]
        if pd.api.types.is_numeric_dtype(raw):
            parsed = pd.to_numeric(raw, errors="coerce")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # pandas warns when it guesses a date format per element
                parsed = pd.to_datetime(raw, errors="coerce")
        bad = parsed.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInputError(
                f"time column {time_column!r} of {what!r} holds {raw.iloc[i]!r} (row {i + 1}), which is not a date or a number; fix or drop that row, or pass another `time_column`."
            )
        frame[time_column] = parsed
        if not parsed.is_monotonic_increasing:
            warnings.warn(
                DataWarning(
                    f"the rows of {what!r} were not in time order; they were sorted by {time_column!r}."
                ),
                stacklevel=3,
            )
            frame = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
        dup = frame[time_column].duplicated()
        if dup.any():
            first = frame[time_column][dup].iloc[0]
            raise InvalidInputError(
                f"time column {time_column!r} of {what!r} has duplicated timestamps, the first being {_fmt_time(first)!r}; keep one row per timestamp (aggregate or drop duplicates) and try again."
            )
        freq, step, gaps = _regularity(frame[time_column], what)
    values = {}
    for c in columns:
        col = frame[c]
        num = pd.to_numeric(col, errors="coerce")
        text = num.isna() & col.notna()
        if text.any():
            i = int(np.flatnonzero(text.to_numpy())[0])
            raise InvalidInputError(
                f"column {c!r} of {what!r} holds {col.iloc[i]!r} (row {i + 1}), which is not a number; a series needs numeric values, so clean that column."
            )
        values[c] = num.astype(np.float64)
        check_numbers(values[c].to_numpy(), c, of=what)
    numeric = pd.DataFrame(values)
    nan = numeric.isna()
    if nan.to_numpy().any():
        name = str(nan.any().idxmax())
        i = int(np.flatnonzero(nan[name].to_numpy())[0])
        count = int(nan.to_numpy().sum())
        if strict:
            raise InvalidInputError(
                f"column {name!r} of {what!r} has a missing value at row {i + 1} ({count} missing in all); `strict` refuses NaNs, so fill them or set `strict` to false to interpolate them."
            )
        if nan.all().any():
            raise InvalidInputError(
                f"column {name!r} of {what!r} has no values at all; drop it or fill it in."
            )
        warnings.warn(
            DataWarning(
                f"{count} missing values in {what!r} (first in {name!r} at row {i + 1}) were filled by linear interpolation; set `strict` to true to refuse them."
            ),
            stacklevel=3,
        )
        numeric = numeric.interpolate(method="linear", limit_direction="both")
    for c in columns:
        frame[c] = numeric[c].to_numpy()
    return frame, freq, step, gaps


def _regularity(time: pd.Series, what: str) -> tuple[str | None, float | None, int]:
    """Infer the frequency (datetimes) or step (numbers) and report gaps in an otherwise regular series."""
    import pandas as pd

    if len(time) < 3:
        return None, None, 0
    if pd.api.types.is_datetime64_any_dtype(time):
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # pandas 3 announces an offset object instead of a string
            found = pd.infer_freq(pd.DatetimeIndex(time))
        freq = getattr(found, "freqstr", found)
        if freq is not None:
            return freq, None, 0
        diffs = time.diff().dropna()
        typical = diffs.median()
        big = diffs > typical * 1.5
        if big.any() and big.mean() < 0.2:  # mostly regular, with holes
            first = time.iloc[
                int(np.flatnonzero(big.to_numpy())[0]) + 1
            ]  # diffs start at the second row
            warnings.warn(
                DataWarning(
                    f"{what!r} is a regular series with {int(big.sum())} gaps (the first before {_fmt_time(first)!r}); windows across a gap mix distant times, so fill or resample the series if that matters."
                ),
                stacklevel=4,
            )
            return None, None, int(big.sum())
        return None, None, 0
    steps = np.diff(time.to_numpy(np.float64))
    step = float(np.median(steps))
    holes = steps > step * 1.5
    if holes.any() and holes.mean() < 0.2:
        first = time.iloc[int(np.flatnonzero(holes)[0]) + 1]
        warnings.warn(
            DataWarning(
                f"{what!r} is a regular series with {int(holes.sum())} gaps (the first before {first!r}); windows across a gap mix distant times, so fill the series if that matters."
            ),
            stacklevel=4,
        )
    return None, step, int(holes.sum())


def _fmt_time(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


# ---------------------------------------------------------------------------- windows and splits
def auto_lookback(n_rows: int) -> int:
    """A tenth of the series, between 2 and 30 rows."""
    return int(min(30, max(2, n_rows // 10)))


def make_windows(
    x: np.ndarray, y: np.ndarray, lookback: int, horizon: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sliding windows: inputs (N, lookback, F), targets (N, horizon * K) step-major, and each window's start row.

    Example:
        >>> x = np.arange(12.0)[:, None]
        >>> xs, ys, starts = make_windows(x, x, lookback=10, horizon=1)
        >>> xs.shape, ys.ravel().tolist()
        ((2, 10, 1), [10.0, 11.0])
    """
    n = len(x) - lookback - horizon + 1
    if n <= 0:
        return (
            np.zeros((0, lookback, x.shape[1]), np.float32),
            np.zeros((0, horizon * y.shape[1]), np.float32),
            np.zeros(0, np.int64),
        )
    starts = np.arange(0, n, stride, dtype=np.int64)
    view = np.lib.stride_tricks.sliding_window_view(
        x, lookback, axis=0
    )  # (T - L + 1, F, L), no copy
    xs = np.ascontiguousarray(view[starts].transpose(0, 2, 1), dtype=np.float32)  # (N, L, F)
    yv = np.lib.stride_tricks.sliding_window_view(
        y[lookback:], horizon, axis=0
    )  # (T - L - H + 1, K, H)
    ys = np.ascontiguousarray(yv[starts].transpose(0, 2, 1), dtype=np.float32).reshape(
        len(starts), -1
    )
    return xs, ys, starts


def split_series(
    n: int,
    lookback: int,
    horizon: int,
    *,
    val_fraction: float,
    test_fraction: float,
    what: str = "series",
) -> list[tuple[int, int]]:
    """Contiguous (start, stop) row spans for train, val and test, in time order.

    Each span that is not empty must hold at least ``lookback + horizon`` rows (one window).
    """
    need = lookback + horizon
    if n < need:
        raise InvalidInputError(
            f"{what!r} has {n} rows but one window needs lookback + horizon = {lookback} + {horizon} = {need} rows; pass a longer series or a smaller `lookback`/`horizon`."
        )
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    spans = [(0, n - n_val - n_test), (n - n_val - n_test, n - n_test), (n - n_test, n)]
    for (a, b), part, frac in zip(
        spans, ("train", "validation", "test"), (1.0, val_fraction, test_fraction)
    ):
        if (b - a) < need and (frac > 0 or part == "train"):
            share = min(
                f for f in (1 - val_fraction - test_fraction, val_fraction, test_fraction) if f > 0
            )
            rows = math.ceil(need / share)
            raise InvalidInputError(
                f"the {part} span of {what!r} has {b - a} rows but each span needs at least lookback + horizon = {need} rows, so the series needs about {rows} rows (it has {n}); pass a longer series, a smaller `lookback`/`horizon`, or other `val_fraction`/`test_fraction`."
            )
    return spans


# ---------------------------------------------------------------------------- scaling
class SeriesScaler:
    """Per-column min-max (default) or standard scaling, fitted on the training span only.

    Example:
        >>> s = SeriesScaler("minmax").fit(np.array([[0.0], [10.0]]))
        >>> s.transform(np.array([[5.0]])).tolist(), s.inverse(np.array([0.5]), [0]).tolist()
        ([[0.5]], [5.0])
    """

    def __init__(self, method: str = "minmax") -> None:
        if method not in ("minmax", "standard", "none"):
            raise InvalidConfigError(
                f"`scaling` is {method!r} but a series accepts minmax, standard or none."
            )
        self.method = method
        self.offset_: np.ndarray = np.zeros(0)
        self.scale_: np.ndarray = np.ones(0)

    def fit(self, x: np.ndarray) -> SeriesScaler:
        if self.method == "minmax":
            lo, hi = x.min(axis=0), x.max(axis=0)
            self.offset_, self.scale_ = lo, hi - lo
        elif self.method == "standard":
            self.offset_, self.scale_ = x.mean(axis=0), x.std(axis=0)
        else:
            self.offset_, self.scale_ = np.zeros(x.shape[1]), np.ones(x.shape[1])
        self.scale_ = np.where(np.abs(self.scale_) > 1e-12, self.scale_, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.offset_) / self.scale_).astype(np.float32)

    def inverse(self, z: np.ndarray, columns: list[int]) -> np.ndarray:
        """Scaled values of the given columns (last axis) back to original units."""
        return np.asarray(z, np.float64) * self.scale_[columns] + self.offset_[columns]

    def state(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "offset": self.offset_.tolist(),
            "scale": self.scale_.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeriesScaler:
        s = cls(state["method"])
        s.offset_, s.scale_ = (
            np.asarray(state["offset"], np.float64),
            np.asarray(state["scale"], np.float64),
        )
        return s


# ---------------------------------------------------------------------------- the bundle's adapter
class SeriesAdapter:
    """How a forecasting bundle reads raw input: the last ``lookback`` rows -> one scaled window.

    Its state is JSON: columns, time column, lookback, horizon, scaler, frequency, mode.
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = dict(state)
        self.scaler = SeriesScaler.from_state(state["scaler"])

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeriesAdapter:
        return cls(state)

    def state(self) -> dict[str, Any]:
        return dict(self._state)

    @property
    def input_names(self) -> list[str]:
        return list(self._state["input_columns"])

    @property
    def target_index(self) -> list[int]:
        cols = self._state["input_columns"]
        return [cols.index(t) for t in self._state["targets"]]

    def read(self, data: Any, *, with_target: bool = False) -> pd.DataFrame:
        """Raw rows -> a cleaned, time-ordered frame with the input columns (each series on its own)."""
        import pandas as pd

        st = self._state
        sc = st.get("series_column")
        if isinstance(data, (str, Path)) and str(data).lower().endswith(".tsf"):
            from dlpipe.data.tsf import read_tsf

            data = read_tsf(data).frame.rename(
                columns={
                    "series": sc or "series",
                    "time": st["time_column"] or "time",
                    "value": st["targets"][0],
                }
            )
        if isinstance(data, np.ndarray) and data.ndim == 1 and len(st["input_columns"]) == 1:
            data = pd.DataFrame({st["input_columns"][0]: data})
        frame = read_table(pd.DataFrame(data) if isinstance(data, dict) else data, what="input")
        frame.columns = [str(c) for c in frame.columns]
        needed = (
            ([sc] if sc else [])
            + st["input_columns"]
            + ([st["time_column"]] if st["time_column"] else [])
        )
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"the input lacks the columns {format_names(missing)} that the model reads; pass rows with the columns {format_names(needed)}."
            )
        if not sc:
            cleaned, _, _, _ = clean_series(
                frame,
                st["input_columns"],
                st["time_column"],
                strict=st.get("strict", False),
                what="input",
            )
            return cleaned
        parts = []
        for key, rows in frame.groupby(sc, sort=False):
            cleaned, _, _, _ = clean_series(
                rows,
                st["input_columns"],
                st["time_column"],
                strict=st.get("strict", False),
                what=f"input[{key}]",
            )
            cleaned.insert(0, sc, key)
            parts.append(cleaned)
        return pd.concat(parts, ignore_index=True)

    def _window(self, frame: pd.DataFrame, scaler: SeriesScaler) -> np.ndarray:
        """The last ``lookback`` rows scaled, (1, L, F); a shorter history is padded with its first row."""
        from dlpipe.data.backtest import window_arrays

        raw = frame[self._state["input_columns"]].to_numpy(np.float64)
        z = scaler.transform(raw)
        x, _ = window_arrays(z, z, np.array([len(z)]), int(self._state["lookback"]), 0)
        return x

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        frame = self.read(data)
        lookback = int(self._state["lookback"])
        if self._state.get("series_column"):
            xs = [self._window(g, self._series_scaler(g)) for _, g in self._groups(frame)]
            return PreparedBatch(inputs=[np.concatenate(xs)], index=None)
        if len(frame) < lookback:
            raise InvalidInputError(
                f"the input has {len(frame)} rows but the model looks back {lookback} rows; pass at least the last {lookback} rows of the series."
            )
        return PreparedBatch(
            inputs=[self._window(frame, self.scaler)], index=self.future_index(frame)
        )

    def _groups(self, frame: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
        sc = self._state["series_column"]
        return [(k, g.reset_index(drop=True)) for k, g in frame.groupby(sc, sort=False)]

    def _series_scaler(self, rows: pd.DataFrame) -> SeriesScaler:
        """Many series: each is scaled by its own history as given (as at training, per series)."""
        method = self._state.get("scaling") or self._state["scaler"]["method"]
        return SeriesScaler(method).fit(rows[self._state["input_columns"]].to_numpy(np.float64))

    def predict_bundle(self, bundle: Any, data: Any) -> pd.DataFrame:
        """The next ``horizon`` values after the input's last row (of every series), in original units,
        with timestamps and the 80%/95% prediction intervals (``lower_80``, ``upper_80``, ...)."""
        import pandas as pd

        st = self._state
        frame = self.read(data)
        sc = st.get("series_column")
        groups = self._groups(frame) if sc else [(None, frame)]
        tidx = self.target_index
        lookback = int(st["lookback"])
        pieces = []
        for key, rows in groups:
            if not sc and len(rows) < lookback:
                raise InvalidInputError(
                    f"the input has {len(rows)} rows but the model looks back {lookback} rows; pass at least the last {lookback} rows of the series."
                )
            scaler = self._series_scaler(rows) if sc else self.scaler
            z = roll_forecast(
                lambda a: bundle.outputs([np.ascontiguousarray(a, np.float32)]),
                self._window(rows, scaler),
                int(st["horizon"]),
                tidx,
                recursive=bool(st["recursive"]),
            )
            values = scaler.inverse(z[0], tidx)  # (H, K)
            out = pd.DataFrame({st["time_column"] or "step": self.future_index(rows)})
            if sc:
                out.insert(0, sc, key)
            half = self._half_widths(rows)
            for k, t in enumerate(st["targets"]):
                out[t] = values[:, k]
                prefix = "" if len(st["targets"]) == 1 else f"{t}_"
                for level, h in half.items():
                    out[f"{prefix}lower_{level}"] = values[:, k] - h[:, k]
                    out[f"{prefix}upper_{level}"] = values[:, k] + h[:, k]
            pieces.append(out)
        return pd.concat(pieces, ignore_index=True)

    def _half_widths(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """Interval half-widths (H, K) per level: the stored conformal quantiles x the series' scale."""
        st = self._state
        quantiles = st.get("interval_quantiles") or {}
        if not quantiles:
            return {}
        raw = rows[st["targets"]].to_numpy(np.float64)
        if st.get("interval_scale") == "window_step":  # as at training (``interval_scale``)
            scale = interval_scale(raw, np.array([len(raw)]), int(st["lookback"]))[0]
        else:  # bundles saved before: the larger of |last value| and the mean step of lag m
            m = int(st.get("period") or 1)
            steps = np.abs(raw[m:] - raw[:-m]) if len(raw) > m else np.zeros((0, raw.shape[1]))
            mean_step = steps.mean(axis=0) if len(steps) else np.zeros(raw.shape[1])
            scale = np.maximum(np.abs(raw[-1]), mean_step)
            scale = np.where(scale > 0, scale, np.nan)
        return {level: np.asarray(q, np.float64) * scale[None, :] for level, q in quantiles.items()}

    def future_index(self, frame: pd.DataFrame) -> Any:
        """The timestamps of the next ``horizon`` rows (frequency inferred at training), or steps 1..H."""
        import pandas as pd

        st = self._state
        horizon = int(st["horizon"])
        tc = st["time_column"]
        if not tc:
            return np.arange(1, horizon + 1)
        last = frame[tc].iloc[-1]
        if st.get("freq"):
            return pd.date_range(last, periods=horizon + 1, freq=st["freq"])[1:]
        if st.get("step") is not None:
            return last + st["step"] * np.arange(1, horizon + 1)
        if isinstance(last, pd.Timestamp) and len(frame) > 1:
            delta = frame[tc].diff().median()
            return pd.DatetimeIndex([last + delta * (i + 1) for i in range(horizon)])
        return np.arange(1, horizon + 1)


def roll_forecast(
    model_fn: Any, x: np.ndarray, horizon: int, target_index: list[int], *, recursive: bool
) -> np.ndarray:
    """Scaled forecasts (N, horizon, K) from windows x (N, L, F).

    Direct: one call, the network outputs every step. Recursive: a one-step network is called
    ``horizon`` times, each prediction appended as the newest row of the window (every input
    column is a target then, so the whole row is known).
    """
    k = len(target_index)
    if not recursive:
        out = np.asarray(model_fn(x))
        check_outputs(out)  # a forecast is never NaN
        return out.reshape(len(x), horizon, k)
    window = np.array(x, dtype=np.float32, copy=True)
    steps = []
    for _ in range(horizon):
        out = np.asarray(model_fn(window)).reshape(len(x), k)  # (N, K)
        check_outputs(out)
        steps.append(out)
        row = window[:, -1:, :].copy()
        row[:, 0, target_index] = out
        window = np.concatenate([window[:, 1:], row], axis=1)
    return np.stack(steps, axis=1)


def detect_series(data: Any, cfg: Any, test: Any) -> SeriesDataset | None:
    """The train-time detector: ``task="forecast"`` turns a table into a :class:`SeriesDataset`."""
    tsf = isinstance(data, (str, Path)) and str(data).lower().endswith(".tsf")
    if cfg.data.task != "forecast" and not (tsf and cfg.data.task == "auto"):
        return None
    s = cfg.series
    target = cfg.data.target
    return load_series(
        data,
        target,
        time_column=s.time_column,
        features=s.features or None,
        strict=s.strict,
        test=test,
        name=cfg.name,
        series_column=s.series_column,
    )
