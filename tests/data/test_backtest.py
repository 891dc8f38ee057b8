"""Rolling-origin plans, padded windows, M4's MASE, drift/seasonal naive, conformal half-widths, .tsf reading."""

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.core.errors import InvalidInputError
from dlpipe.data.backtest import interval_scale, plan_backtest, window_arrays
from dlpipe.data.tsf import read_tsf
from dlpipe.evaluation.forecast_baselines import (
    baseline_forecasts,
    conformal_quantiles,
    forecast_metrics,
    mase_scale,
)
from tests.pipeline.test_series_backtest import _TSF


# ---------------------------------------------------------------------------- the plan
def test_every_origin_that_fits_is_a_window_and_inputs_may_reach_back():
    (plan,), notes = plan_backtest([120], 12, 12, val_fraction=0.2, test_fraction=0.2)
    assert (plan.train_end, plan.val_end) == (72, 96) and notes == []
    assert plan.origins("test", 12).tolist() == list(range(96, 109))  # 13 windows, not 1
    assert len(plan.origins("val", 12)) == 13 and plan.origins("train", 12)[0] == 12


def test_a_long_horizon_drops_validation_then_refuses_only_when_nothing_can_train():
    (plan,), notes = plan_backtest([108], 36, 10, val_fraction=0.2, test_fraction=0.2)
    assert plan.val_end == plan.train_end == 72 and len(plan.origins("test", 36)) == 1
    assert "no validation span" in notes[0]
    # the other refusals: a 100-year series 14 ahead, a 221-point one 67 ahead (auto lookbacks)
    for n, horizon, lookback in ((100, 14, 10), (221, 67, 22)):
        (plan,), _ = plan_backtest([n], horizon, lookback, val_fraction=0.2, test_fraction=0.2)
        assert len(plan.origins("train", horizon)) >= 1 and len(plan.origins("test", horizon)) >= 1
    with pytest.raises(InvalidInputError, match=r"has 8 rows .* needs at least 11 rows"):
        plan_backtest([8], 5, 4, val_fraction=0.2, test_fraction=0.2)


def test_short_series_windows_are_padded_with_the_first_value():
    z = np.arange(1.0, 5.0)[:, None]
    x, y = window_arrays(z, z, np.array([1, 2]), lookback=3, horizon=2)
    assert x[:, :, 0].tolist() == [[1, 1, 1], [1, 1, 2]] and y.tolist() == [[2, 3], [3, 4]]


# ---------------------------------------------------------------------------- baselines and metrics
def test_mase_is_m4s_scaled_by_the_in_sample_seasonal_naive_error():
    history = np.array([10.0, 12, 11, 13, 20, 22])[:, None]
    scale = mase_scale(history, np.array([4]), None)  # |12-10|,|11-12|,|13-11| -> 5/3
    assert scale[0, 0] == pytest.approx(5 / 3)
    y_true = history[4:6][None]  # (1, 2, 1)
    y_pred = np.full((1, 2, 1), 13.0)
    m = forecast_metrics(y_true, y_pred, y_pred, scale)
    # a MAE of 8 over an in-sample scale of 5/3, not a ratio to the naive MAE on the same window (1.0)
    assert m["mase"] == pytest.approx(8 / (5 / 3)) and m["relative_mae"] == pytest.approx(1.0)
    assert mase_scale(history, np.array([5]), 2)[0, 0] == pytest.approx((1 + 1 + 9) / 3)


def test_drift_and_seasonal_naive_use_only_rows_before_the_origin():
    y = np.arange(24.0)[:, None] + np.tile([0.0, 5.0, 0.0, 5.0], 6)[:, None]
    b = baseline_forecasts(y, np.array([20]), 3, period=4)
    assert b["seasonal_naive"][0, :, 0].tolist() == y[16:19, 0].tolist()
    assert b["drift"][0, :, 0].tolist() == pytest.approx(
        y[19, 0] + np.arange(1, 4) * (y[19, 0] - y[0, 0]) / 19
    )


def test_conformal_quantiles_need_enough_residuals_for_their_rank():
    q, notes = conformal_quantiles(np.arange(1.0, 6.0).reshape(5, 1, 1))
    assert q["95"] == [[5.0]] and "rests on 5 residuals" in notes[0]


def test_conformal_quantiles_take_the_rank_of_the_level_they_are_told():
    r = np.arange(1.0, 21.0).reshape(20, 1, 1)
    assert conformal_quantiles(r)[0]["80"] == [[17.0]]  # ceil(21 * 0.80) = 17
    assert conformal_quantiles(r, {80: 90.0})[0]["80"] == [[19.0]]  # ceil(21 * 0.90) = 19
    assert conformal_quantiles(r, {80: 90.0})[0]["95"] == [[20.0]]  # levels not named: unchanged


def test_tsf_files_are_read_as_a_long_table_with_their_horizon(tmp_path):
    path = tmp_path / "toy.tsf"
    path.write_text(_TSF)
    data = read_tsf(path)
    assert data.horizon == 3 and data.frequency == "yearly" and data.period is None
    assert len(data.frame) == 22 and data.frame["time"].iloc[0] == pd.Timestamp("1990-01-01")
    ds = dl.load_series(path)
    assert ds.series_column == "series" and [k for k, _ in ds.groups()] == ["A", "B"]
    bad = tmp_path / "bad.tsf"
    bad.write_text(_TSF.replace("A:1990-01-01 00-00-00:1,2", "A:1,2"))
    with pytest.raises(
        InvalidInputError,
        match=r"line 10: the line has 1 attribute fields but the header declares 2",
    ):
        read_tsf(bad)


def test_interval_scale_is_the_recent_step_size_then_the_whole_history():
    y = np.array([100.0, 102.0, 101.0, 0.0, 0.0, 0.0, 0.0, 5.0])[:, None]
    scale = interval_scale(y, np.array([3, 7, 8, 1]), lookback=3)[:, 0]
    assert scale[0] == pytest.approx((2 + 1) / 2)  # the steps inside the last 3 rows, not the level
    assert scale[1] == pytest.approx((2 + 1 + 101 + 0 + 0 + 0) / 6)  # a flat window: every step
    assert scale[2] == pytest.approx(5 / 2)
    assert np.isnan(scale[3])  # one row: no step to measure


def test_bad_many_series_input_is_one_sentence(tmp_path):
    frame = pd.DataFrame({"id": ["a"] * 5 + ["b"] * 5, "y": np.arange(10.0)})
    with pytest.raises(
        InvalidInputError, match=r"series column 'ids' not found .*did you mean `id`"
    ):
        dl.load_series(frame, "y", series_column="ids")
    with pytest.raises(
        InvalidInputError, match=r"a separate `test` file is not used with many series"
    ):
        dl.load_series(frame, "y", series_column="id", test=frame)
    empty = tmp_path / "empty.tsf"
    empty.write_text("@relation x\n@attribute series_name string\n")
    with pytest.raises(InvalidInputError, match=r"no '@data' line was found"):
        read_tsf(empty)


def test_cli_unknown_series_column_exits_2_and_writes_nothing(tmp_path, capsys):
    from dlpipe.cli.app import main

    pd.DataFrame({"id": ["a"] * 30, "y": np.arange(30.0)}).to_csv(tmp_path / "s.csv", index=False)
    code = main(
        [
            "train",
            str(tmp_path / "s.csv"),
            "--task",
            "forecast",
            "-t",
            "y",
            "--series-column",
            "idd",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "series column 'idd' not found" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
