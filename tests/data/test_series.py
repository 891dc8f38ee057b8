"""Series loading and cleaning, windows, time-ordered splits, scaling, the bundle adapter's checks."""

import numpy as np
import pandas as pd
import pytest

from dlpipe.core.errors import DataWarning, InvalidConfigError, InvalidInputError
from dlpipe.data.series import (
    SeriesAdapter,
    SeriesScaler,
    load_series,
    make_windows,
    roll_forecast,
    split_series,
)


def _dated(n=40, start="2024-01-01"):
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d"),
            "y": np.arange(n, dtype=float),
            "x": np.ones(n),
        }
    )


def test_toy_windows_are_the_seed_case():
    x = np.arange(0, 100.0)[:, None]
    xs, ys, starts = make_windows(x, x, lookback=10, horizon=1)
    assert xs.shape == (90, 10, 1) and ys.shape == (90, 1)
    assert xs[-1, :, 0].tolist() == list(range(89, 99)) and ys[-1, 0] == 99
    assert xs.dtype == np.float32 and xs.flags.c_contiguous


def test_windows_multi_feature_multi_target_horizon_and_stride():
    t = np.arange(20.0)
    x = np.column_stack([t, 10 * t])
    xs, ys, starts = make_windows(x, x, lookback=4, horizon=3, stride=2)
    assert starts.tolist() == list(range(0, 14, 2))
    assert xs.shape == (7, 4, 2) and ys.shape == (7, 6)
    # step-major: (h0: y, 10y), (h1: ...), ...
    assert ys[0].tolist() == [4, 40, 5, 50, 6, 60]


def test_splits_are_in_time_order_and_windows_do_not_straddle():
    spans = split_series(100, 10, 1, val_fraction=0.2, test_fraction=0.2)
    assert spans == [(0, 60), (60, 80), (80, 100)]
    x = np.arange(100.0)[:, None]
    for a, b in spans:
        xs, ys, _ = make_windows(x[a:b], x[a:b], 10, 1)
        assert xs.min() >= a and ys.max() < b


def test_series_too_short_says_how_many_rows_are_needed():
    with pytest.raises(
        InvalidInputError,
        match=r"has 8 rows but one window needs lookback \+ horizon = 10 \+ 2 = 12 rows",
    ):
        split_series(8, 10, 2, val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(
        InvalidInputError, match=r"the validation span .* has 6 rows .* needs about 60 rows"
    ):
        split_series(30, 10, 2, val_fraction=0.2, test_fraction=0.2)


def test_scaler_is_fitted_on_the_training_span_only():
    x = np.arange(100.0)[:, None]
    s = SeriesScaler("minmax").fit(x[:60])
    assert s.transform(x[59:60])[0, 0] == pytest.approx(1.0)
    assert s.transform(x[99:100])[0, 0] > 1.0  # the future is not squeezed into [0, 1]
    assert s.inverse(s.transform(x[90:]), [0]).ravel() == pytest.approx(x[90:].ravel(), abs=1e-4)
    st = SeriesScaler("standard").fit(x[:60])
    assert SeriesScaler.from_state(st.state()).transform(x).tolist() == st.transform(x).tolist()
    with pytest.raises(InvalidConfigError, match="minmax, standard or none"):
        SeriesScaler("l2")


def test_time_column_parsed_frequency_inferred():
    ds = load_series(_dated(), "y", time_column="date")
    assert ds.freq == "D" and ds.input_columns == ["y"]
    ds2 = load_series(_dated(), "y", time_column="date", features="x")
    assert ds2.input_columns == ["x", "y"]


def test_missing_and_unparseable_time_column():
    with pytest.raises(
        InvalidInputError, match=r"time column 'Date' not found .*did you mean `date`"
    ):
        load_series(_dated(), "y", time_column="Date")
    frame = _dated()
    frame.loc[5, "date"] = "not a date"
    with pytest.raises(
        InvalidInputError, match=r"holds 'not a date' \(row 6\), which is not a date or a number"
    ):
        load_series(frame, "y", time_column="date")


def test_unsorted_rows_are_sorted_with_a_warning():
    frame = _dated().iloc[::-1]
    with pytest.warns(DataWarning, match="not in time order; they were sorted"):
        ds = load_series(frame, "y", time_column="date")
    assert ds.frame["y"].tolist() == sorted(ds.frame["y"].tolist())


def test_duplicated_timestamps_name_the_first_one():
    frame = _dated()
    frame.loc[7, "date"] = frame.loc[6, "date"]
    with pytest.raises(
        InvalidInputError, match=r"duplicated timestamps, the first being '2024-01-07T00:00:00'"
    ):
        load_series(frame, "y", time_column="date")


def test_gaps_are_reported():
    frame = _dated().drop(index=[10, 11, 25]).reset_index(drop=True)
    with pytest.warns(
        DataWarning, match=r"regular series with 2 gaps \(the first before '2024-01-13"
    ):
        ds = load_series(frame, "y", time_column="date")
    assert ds.meta["gaps"] == 2


def test_nans_interpolated_with_a_warning_or_refused_when_strict():
    frame = _dated()
    frame.loc[4, "y"] = np.nan
    with pytest.warns(
        DataWarning,
        match=r"1 missing values in .series. \(first in 'y' at row 5\) were filled by linear interpolation",
    ):
        ds = load_series(frame, "y", time_column="date")
    assert ds.frame["y"][4] == pytest.approx(4.0)
    with pytest.raises(
        InvalidInputError,
        match=r"missing value at row 5 .*`strict` refuses NaNs, so fill them or set `strict` to false",
    ):
        load_series(frame, "y", time_column="date", strict=True)


def test_text_values_and_unknown_columns_refused():
    frame = _dated()
    frame["y"] = frame["y"].astype(object)
    frame.loc[3, "y"] = "n/a?"
    with pytest.raises(
        InvalidInputError, match=r"column 'y' .* holds 'n/a\?' \(row 4\), which is not a number"
    ):
        load_series(frame, "y")
    with pytest.raises(InvalidInputError, match=r"feature column 'z' not found"):
        load_series(_dated(), "y", features=["z"])


def _adapter(**over):
    state = {
        "input_columns": ["y"],
        "targets": ["y"],
        "time_column": "date",
        "lookback": 5,
        "horizon": 3,
        "recursive": False,
        "scaler": SeriesScaler("minmax").fit(np.array([[0.0], [10.0]])).state(),
        "freq": "D",
        "step": None,
        "strict": False,
    }
    state.update(over)
    return SeriesAdapter.from_state(state)


def test_adapter_takes_the_last_lookback_rows_and_dates_the_future():
    batch = _adapter().prepare(_dated(12))
    assert batch.inputs[0].shape == (1, 5, 1)
    assert batch.inputs[0][0, :, 0].tolist() == pytest.approx([0.7, 0.8, 0.9, 1.0, 1.1])
    assert [str(t.date()) for t in batch.index] == ["2024-01-13", "2024-01-14", "2024-01-15"]
    numeric = _adapter(time_column="t", freq=None, step=1.0).prepare(
        {"t": np.arange(1700.0, 1712.0), "y": np.arange(12.0)}
    )
    assert numeric.index.tolist() == [1712.0, 1713.0, 1714.0]


def test_predict_input_shorter_than_lookback():
    with pytest.raises(
        InvalidInputError,
        match=r"the input has 3 rows but the model looks back 5 rows; pass at least the last 5 rows",
    ):
        _adapter().prepare(_dated(3))
    with pytest.raises(
        InvalidInputError,
        match=r"the input lacks the columns 'date'|the input lacks the columns date",
    ):
        _adapter().prepare({"y": np.arange(10.0)})


def test_recursive_roll_feeds_predictions_back():
    # a "model" that adds 1 to the last value: recursive forecasts count up
    x = np.arange(5.0, dtype=np.float32).reshape(1, 5, 1)
    out = roll_forecast(lambda w: w[:, -1, :] + 1.0, x, 3, [0], recursive=True)
    assert out.reshape(-1).tolist() == [5.0, 6.0, 7.0]
