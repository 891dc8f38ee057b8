"""Issue #18 (forecasting), through the public API only (so each test also runs against the code before
the issue, where it fails): rolling-origin backtests on short series, any horizon, refit before the
future, baselines with M4's MASE, conformal intervals, many series with one global model, .tsf files,
plots of the whole series and every step ahead. The new modules' unit tests: tests/data/test_backtest.py."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl

TINY = {"model": {"family": "gru", "hidden": [4]}, "epochs": 2, "progress": "quiet"}


def _monthly(n, seed=0):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    y = 100 + 2 * t + np.cumsum(rng.normal(0, 3, n))  # no season: ETS fits only its 3 trend forms
    return pd.DataFrame({"time": pd.date_range("2000-01-01", periods=n, freq="MS"), "y": y})


# ---------------------------------------------------------------------------- runs
@pytest.mark.slow
def test_108_months_36_ahead_is_forecast_with_a_warning_not_refused():
    with pytest.warns(Warning, match="rests on 1 window"):
        run = dl.train(
            _monthly(108),
            "y",
            task="forecast",
            time_column="time",
            horizon=36,
            save=False,
            **{
                **TINY,
                "model": {"family": "lstm", "hidden": [16]},
            },  # the compiled LSTM kernel's size
        )
    test = run.metrics["test"]
    assert test["windows"] == 1 and test["model"]["windows"] == 1
    assert any("rests on 1 window" in n for n in test["baseline_notes"])
    assert set(test["baselines"]) == {"naive", "drift", "ets"}  # no season in this series
    assert len(run.bundle.predict(_monthly(108))) == 36
    # the LSTM is in the layer table with its parameters (the issue saw only the head's 780 of 17,932)
    table = str(dl.summary(run.bundle))
    assert "LSTM" in table and f"total parameters {run.metrics['n_parameters']:,}" in table
    assert run.metrics["n_parameters"] == 4 * 16 * (1 + 16 + 2) + 16 * 36 + 36


@pytest.mark.slow
def test_backtest_scores_many_windows_and_the_bundle_is_refit_on_the_whole_series():
    frame = _monthly(120)
    run = dl.train(
        frame, "y", task="forecast", time_column="time", horizon=12, lookback=12, save=False, **TINY
    )
    m = run.metrics
    assert m["windows"]["test"] == 13 and m["windows"]["val"] == 13 and m["test"]["windows"] == 13
    # the saved model learned from every row: its scaler spans the whole series, not the first 60%
    scaler = run.bundle.manifest["preprocessor"]["scaler"]
    assert scaler["offset"][0] == pytest.approx(frame["y"].min())
    assert scaler["offset"][0] + scaler["scale"][0] == pytest.approx(frame["y"].max())
    assert m["refit"] == {"enabled": True, "epochs": m["best_epoch"], "bundle_trained_on": "all"}
    # intervals: calibrated on validation windows, checked on the test windows, returned by predict
    cov = m["intervals"]["coverage"]
    assert set(cov) == {"80", "95"} and all(0.0 <= v <= 1.0 for v in cov.values())
    pred = run.bundle.predict(frame)
    assert list(pred.columns) == ["time", "y", "lower_80", "upper_80", "lower_95", "upper_95"]
    assert (pred["lower_95"] <= pred["lower_80"]).all() and (pred["lower_80"] < pred["y"]).all()
    assert (pred["upper_95"] >= pred["upper_80"]).all()
    # predict scales the stored quantiles as training did: the mean step over the last lookback rows
    from dlpipe.data.backtest import interval_scale

    pre = run.bundle.manifest["preprocessor"]
    assert pre["interval_scale"] == "window_step"
    scale = interval_scale(frame[["y"]].to_numpy(), np.array([len(frame)]), pre["lookback"])[0, 0]
    half = np.asarray(pre["interval_quantiles"]["80"])[:, 0] * scale
    np.testing.assert_allclose(pred["upper_80"] - pred["y"], half, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(m["future"][0]["hi80"])[:, 0], pred["upper_80"], rtol=1e-5
    )
    from fastapi.testclient import TestClient

    from dlpipe.serving import create_app

    with TestClient(create_app(run.bundle)) as client:
        rows = frame.assign(time=frame["time"].astype(str)).to_dict("records")
        r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    served = r.json()["predictions"]
    assert len(served) == 12 and served[0]["lower_80"] == pytest.approx(pred["lower_80"].iloc[0])
    no_refit = dl.train(
        frame,
        "y",
        task="forecast",
        time_column="time",
        horizon=12,
        lookback=12,
        refit=False,
        save=False,
        **TINY,
    )
    kept = no_refit.bundle.manifest["preprocessor"]["scaler"]
    assert kept["offset"][0] + kept["scale"][0] == pytest.approx(frame["y"].iloc[:72].max())


def test_test_fraction_zero_scores_the_validation_windows_without_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "Mean of empty slice" was one
        run = dl.train(
            _monthly(60),
            "y",
            task="forecast",
            time_column="time",
            horizon=3,
            lookback=6,
            test_fraction=0.0,
            save=False,
            **TINY,
        )
    test = run.metrics["test"]
    assert test["scored_on"] == "val" and test["windows"] == 10
    assert all(np.isfinite(v) for v in test["model"].values())
    assert any("`test_fraction` is 0" in n for n in test["baseline_notes"])


def _long_table(n_series=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_series):
        n = 20 + 3 * i
        level, slope = rng.uniform(10, 1000), rng.uniform(-2, 5)
        y = level + slope * np.arange(n) * level / 100 + rng.normal(0, level / 50, n)
        rows.append(pd.DataFrame({"id": f"s{i}", "year": np.arange(1950, 1950 + n), "value": y}))
    return pd.concat(rows, ignore_index=True)


def test_many_series_intervals_calibrate_on_validation_and_refits_cut_before_the_test_span():
    # 4 series of 20, 23, 26, 29 rows, horizon 3: 2 + 3 + 3 + 4 validation windows (all the old rule
    # calibrated on); refits cut 1..4 horizons before each test span forecast the origins after
    # their cut whose targets precede the test span: 1 + 3 + 3 + 3 more windows per series
    kw = dict(task="forecast", series_column="id", time_column="year", horizon=3, lookback=6)
    run = dl.train(_long_table(), "value", save=False, **kw, **TINY)
    iv = run.metrics["intervals"]
    assert run.metrics["windows"]["val"] == 12
    assert iv["calibration_windows"] == 12 + 4 * 10
    assert "and errors of 4 refits" in iv["calibration"]
    # with the refits' errors pooled, the 80% and 95% intervals take the 81% and 96% ranks (M1's spans)
    assert (
        iv["rank_levels"] == {"80": 81.0, "95": 96.0} and "81% and 96% ranks" in iv["calibration"]
    )
    # the bands drawn around the test forecasts are the calibrated half-widths, wider at 95%
    arr = run.metrics["test_forecast"]["targets"]["value"]
    lo80, hi80, lo95 = (np.asarray(arr[k]) for k in ("lo80", "hi80", "lo95"))
    assert (lo95 <= lo80).all() and (hi80 > np.asarray(arr["pred"])).all()
    # without refits the test forecasts come from the early-stopped model: its validation errors
    kept = dl.train(_long_table(), "value", save=False, refit=False, **kw, **TINY)
    assert kept.metrics["intervals"]["calibration_windows"] == 12
    assert "rank_levels" not in kept.metrics["intervals"]
    assert (
        kept.metrics["intervals"]["calibration"] == "validation errors of the early-stopped model"
    )


@pytest.mark.slow
def test_many_series_train_one_global_model_and_predict_every_series(tmp_path):
    table = _long_table()
    table.to_csv(tmp_path / "long.csv", index=False)
    run = dl.train(
        str(tmp_path / "long.csv"),
        "value",
        task="forecast",
        series_column="id",
        time_column="year",
        horizon=4,
        model={"family": "nbeats", "hidden": [16]},
        epochs=2,
        progress="quiet",
        out=str(tmp_path / "r"),
    )
    assert run.bundle.manifest["model_spec"]["family"] == "nbeats" and run.metrics["series"] == 4
    assert run.metrics["test"]["windows"] == sum(
        max(4, round(0.2 * (20 + 3 * i))) - 4 + 1 for i in range(4)
    )
    pred = dl.load_bundle(tmp_path / "r" / "bundle").predict(table)
    assert list(pred.columns)[:3] == ["id", "year", "value"] and len(pred) == 4 * 4
    assert pred.groupby("id")["year"].min().tolist() == [1950 + 20 + 3 * i for i in range(4)]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["test_forecast"]["series"][0] == "s0"


_TSF = """# a tiny archive file
@relation toy
@attribute series_name string
@attribute start_timestamp date
@frequency yearly
@horizon 3
@missing false
@equallength false
@data
A:1990-01-01 00-00-00:1,2,3,4,5,6,7,8,9,10,11,12
B:1985-01-01 00-00-00:10,12,11,13,15,14,16,18,17,19
"""


@pytest.mark.slow
def test_a_tsf_file_trains_with_its_horizon_held_out(tmp_path):
    path = tmp_path / "toy.tsf"
    path.write_text(_TSF)
    run = dl.train(
        str(path), model={"family": "nbeats", "hidden": [8]}, epochs=2, progress="quiet", save=False
    )
    assert run.metrics["horizon"] == 3 and run.metrics["test"]["windows"] == 2  # the last 3 of each
    assert run.metrics["rows"]["test"] == 6


def test_report_draws_the_whole_series_every_step_and_the_future_band(tmp_path):
    from dlpipe.reports import build_report

    true = [[float(i + h) for h in range(3)] for i in range(6)]
    metrics = {
        "task": "forecast",
        "test": {
            "primary_metric": "mase",
            "model": {"mae": 0.5, "mase": 0.4, "windows": 6, "coverage_80": 0.83},
            "baselines": {"naive": {"mae": 1.0, "mase": 0.9, "windows": 6}},
            "verdict": "The model beats the naive forecast on 6 test windows.",
        },
        "test_forecast": {
            "time": [f"2020-{m:02d}-01T00:00:00" for m in range(1, 7)],
            "scored_on": "test",
            "targets": {
                "y": {
                    "true": true,
                    "pred": [[v + 0.5 for v in row] for row in true],
                    "naive": [[row[0] - 1] * 3 for row in true],
                    "lo80": [[v - 1 for v in row] for row in true],
                    "hi80": [[v + 1 for v in row] for row in true],
                }
            },
        },
        "series_plot": [
            {
                "series": None,
                "time": [f"{2018 + m // 12}-{m % 12 + 1:02d}-01T00:00:00" for m in range(32)],
                "values": [list(np.arange(32.0))],
                "train_end": 16,
                "val_end": 24,
            }
        ],
        "future": [
            {
                "series": None,
                "pred": [[32.0], [33.0], [34.0]],
                "lo80": [[31.0]] * 3,
                "hi80": [[35.0]] * 3,
            }
        ],
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    for name in ("series_y", "forecast_y", "forecast_error_y"):
        assert (tmp_path / "plots" / f"{name}.png").is_file()
    assert "all 3 steps ahead" in page and "one step ahead" not in page
    assert "windows" in page and "coverage_80" in page  # beside every score, in the table


def test_many_series_train_on_mae_one_series_on_mse_unless_told():
    # many series: MAE (what MASE averages; chosen on M1's development spans); one series keeps MSE
    kw = dict(task="forecast", time_column="year", horizon=3, lookback=6, save=False, **TINY)
    many = dl.train(_long_table(), "value", series_column="id", **kw)
    assert many.bundle.manifest["task"]["loss"] == "mae"
    one = dl.train(_long_table(1), "value", **kw)
    assert one.bundle.manifest["task"]["loss"] == "mse"
    told = dl.train(_long_table(), "value", series_column="id", loss="huber", **kw)
    assert told.bundle.manifest["task"]["loss"] == "huber"
