"""Forecasting and sequence classification end to end: train, run folder, bundle predict/evaluate, CLI."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.data.sequences import load_sequences


def _dated_csv(path, n=120):
    t = np.arange(n)
    y = 50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12)
    frame = pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
            "y": y,
            "x": np.cos(t),
        }
    )
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.slow
@pytest.mark.parametrize("family", ["rnn", "lstm"])
def test_seed_toy_windows_predict_100(family):
    """The seed notes' exercise: np.arange(0, 100), windows of 10, default settings: the value after 90..99.

    The notes ask for 100 ± 3, which the naive forecast (99) meets without learning anything. On a
    ramp the naive forecast is always exactly one step behind, so the model must beat it by a margin:
    measured test MAE 0.20 (rnn) and 0.008 (lstm) against naive's 1.0 on seed 0 (0.12-0.42 and
    0.008-0.10 over seeds 0-2), and 99.92 for the next value.
    """
    run = dl.train(
        {"y": np.arange(0, 100.0)},
        "y",
        task="forecast",
        lookback=10,
        model={"family": family},
        progress="quiet",
        out="run",
    )
    test = run.metrics["test"]
    assert test["baselines"]["naive"]["mae"] == pytest.approx(1.0)  # the ramp's step
    assert test["model"]["mae"] <= 0.5 * test["baselines"]["naive"]["mae"], test
    assert test["model"]["relative_mae"] <= 0.5
    pred = dl.load_bundle("run/bundle").predict({"y": np.arange(0, 100.0)})
    assert list(pred.columns)[:2] == ["step", "y"]
    assert abs(pred["y"].iloc[0] - 100.0) <= 0.5, pred  # naive says 99: one full step off


@pytest.mark.slow
def test_forecast_run_folder_bundle_and_timestamps(tmp_path):
    frame = _dated_csv(tmp_path / "s.csv")
    dl.train(
        str(tmp_path / "s.csv"),
        "y",
        task="forecast",
        time_column="Date",
        features=["x"],
        lookback=12,
        horizon=3,
        epochs=3,
        progress="quiet",
        out="run",
    )
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["task"] == "forecast" and m["inputs"] == ["x", "y"] and m["horizon"] == 3
    assert (
        set(m["test"]["baselines"]) == {"naive", "seasonal_naive", "drift", "ets"}
        and m["period"] == 12
    )
    assert {"mae", "rmse", "smape", "mase", "relative_mae", "windows"} <= set(m["test"]["model"])
    assert "naive" in m["test"]["verdict"]
    # rolling origins: rows 0..71 train, 72..95 val, 96..119 test; every test origin whose 3 targets
    # lie in the test span (inputs may reach back); the arrays for reports are saved
    assert m["rows"] == {"train": 72, "val": 24, "test": 24} and m["windows"]["test"] == 24 - 3 + 1
    tf = m["test_forecast"]
    assert tf["time"][0] == "2028-01-01T00:00:00" and len(tf["targets"]["y"]["pred"]) == 22
    assert len(tf["targets"]["y"]["true"][0]) == 3
    pred = dl.load_bundle("run/bundle").predict(frame.iloc[-20:])
    assert list(pred.columns)[:2] == ["Date", "y"] and len(pred) == 3
    assert [str(d.date()) for d in pred["Date"]] == ["2030-01-01", "2030-02-01", "2030-03-01"]
    scores = dl.evaluate("run/bundle", frame.iloc[-40:])
    assert scores["rows"] == 40 - 12 - 3 + 1 and "naive" in scores["baselines"]


@pytest.mark.slow
def test_recursive_multi_step_and_refusals(tmp_path):
    # a 13-step season: the ETS baseline's seasonal fits on sin(t / 4) (a 25-step season) took ~5 s
    y = np.sin(np.arange(200) / 2.0)
    run = dl.train(
        {"y": y},
        "y",
        task="forecast",
        lookback=8,
        horizon=4,
        recursive=True,
        epochs=3,
        progress="quiet",
        save=False,
    )
    assert (
        run.bundle.manifest["model_spec"]["n_outputs"] == 1
        and run.metrics["windows"]["test"] == 40 - 4 + 1
    )
    assert len(run.bundle.predict({"y": y})) == 4
    with pytest.raises(
        InvalidConfigError, match=r"`recursive=True` feeds predictions back.*\['x'\]"
    ):
        dl.train(
            {"y": y, "x": y},
            "y",
            task="forecast",
            features=["x"],
            recursive=True,
            progress="quiet",
            save=False,
        )
    with pytest.raises(InvalidConfigError, match="`bidirectional=True` is refused for forecasting"):
        dl.train({"y": y}, "y", task="forecast", bidirectional=True, progress="quiet", save=False)


def test_series_too_short_is_refused_before_training():
    with pytest.raises(
        InvalidInputError, match=r"has 8 rows .* 5 steps ahead needs at least 11 rows"
    ):
        dl.train(
            {"y": np.arange(8.0)}, "y", task="forecast", horizon=5, progress="quiet", save=False
        )


def _toy_sequences(n=40, length=24, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    labels = np.array(["up", "down"] * (n // 2))
    x = np.where(labels[:, None] == "up", t, 1 - t) + 0.05 * rng.normal(size=(n, length))
    return x, labels


@pytest.mark.slow
def test_sequence_classification_runs_and_bundle_predicts(tmp_path):
    x, labels = _toy_sequences()
    tx, tl = _toy_sequences(20, seed=1)
    ds = load_sequences((x, labels), test=(tx, tl))
    run = dl.train(
        ds,
        model={"family": "cnn1d", "hidden": [8, 8]},
        epochs=20,
        batch_size=8,
        progress="quiet",
        out="seq",
    )
    m = run.metrics
    assert m["task"] == "binary" and m["rows"]["test"] == 20
    assert {"majority", "logistic", "1nn_euclidean"} <= set(m["test"]["baselines"])
    assert m["test"]["model"]["accuracy"] >= 0.9
    b = dl.load_bundle("seq/bundle")
    pred = b.predict(tx[:3])
    assert list(pred.columns) == ["prediction", "proba_down", "proba_up"]
    assert pred["prediction"].tolist() == tl[:3].tolist()
    assert b.evaluate((tx, tl))["model"]["accuracy"] == pytest.approx(
        m["test"]["model"]["accuracy"]
    )
    preds = pd.read_csv(
        "seq/predictions.csv"
    )  # the test split, so the report can draw ROC/PR curves
    assert (
        list(preds.columns) == ["y_true", "prediction", "proba_down", "proba_up"]
        and len(preds) == 20
    )
    assert (preds["y_true"] == preds["prediction"]).mean() == pytest.approx(
        m["test"]["model"]["accuracy"]
    )
    html = Path("seq/report.html").read_text(encoding="utf-8")
    assert "ROC" in html and "predictions.csv is absent" not in html


def test_cli_bad_series_input_exits_2_and_writes_nothing(tmp_path, capsys):
    frame = _dated_csv(tmp_path / "s.csv", n=60)
    frame.loc[7, "Date"] = frame.loc[6, "Date"]
    frame.to_csv(tmp_path / "dup.csv", index=False)
    code = main(
        [
            "train",
            str(tmp_path / "dup.csv"),
            "--task",
            "forecast",
            "--time-column",
            "Date",
            "-t",
            "y",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.startswith("error: time column 'Date'")
        and "first being '2020-07-01T00:00:00'" in err
    )
    assert not (tmp_path / "r").exists()
    code = main(
        [
            "train",
            str(tmp_path / "s.csv"),
            "--task",
            "forecast",
            "--time-column",
            "When",
            "-t",
            "y",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    assert code == 2 and "time column 'When' not found" in capsys.readouterr().err
    code = main(
        [
            "train",
            str(tmp_path / "s.csv"),
            "--task",
            "forecast",
            "-t",
            "y",
            "--horizon",
            "5000",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    assert (
        code == 2
        and "needs at least 10001 rows" in capsys.readouterr().err
        and not (tmp_path / "r").exists()
    )
    nan = pd.read_csv(tmp_path / "s.csv")
    nan.loc[10, "y"] = np.nan
    nan.to_csv(tmp_path / "nan.csv", index=False)
    code = main(
        [
            "train",
            str(tmp_path / "nan.csv"),
            "--task",
            "forecast",
            "-t",
            "y",
            "--strict",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    assert (
        code == 2
        and "`--strict` refuses NaNs, so fill them or pass `--no-strict` to interpolate them"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_cli_forecast_train_and_predict(tmp_path, capsys):
    _dated_csv(tmp_path / "s.csv")
    code = main(
        [
            "train",
            str(tmp_path / "s.csv"),
            "--task",
            "forecast",
            "--time-column",
            "Date",
            "-t",
            "y",
            "--features",
            "x",
            "--lookback",
            "12",
            "--horizon",
            "2",
            "--epochs",
            "2",
            "--model",
            "gru",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "naive" in out and "seasonal_naive" in out and "mase" in out
    code = main(["predict", str(tmp_path / "r" / "bundle"), str(tmp_path / "s.csv")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0] == "Date,y,lower_80,upper_80,lower_95,upper_95"
    assert out.splitlines()[1].startswith("2030-01-01")
    short = pd.read_csv(tmp_path / "s.csv").iloc[:5]
    short.to_csv(tmp_path / "short.csv", index=False)
    code = main(["predict", str(tmp_path / "r" / "bundle"), str(tmp_path / "short.csv")])
    assert (
        code == 2
        and "the input has 5 rows but the model looks back 12 rows" in capsys.readouterr().err
    )


@pytest.mark.slow
def test_seed_multi_feature_forecaster_on_a_shipped_series():
    """The stock exercise's shape (four input columns + the target's history -> the target, lookback 30) on statsmodels' macrodata."""
    import statsmodels.api as sm

    d = sm.datasets.macrodata.load_pandas().data
    d["date"] = pd.PeriodIndex.from_fields(
        year=d["year"].astype(int), quarter=d["quarter"].astype(int), freq="Q"
    ).to_timestamp()
    features = ["realcons", "realinv", "realgovt", "realdpi"]
    run = dl.train(
        d[["date", *features, "realgdp"]],
        "realgdp",
        task="forecast",
        time_column="date",
        features=features,
        lookback=30,
        epochs=3,
        progress="quiet",
        save=False,
    )
    assert (
        run.metrics["inputs"] == [*features, "realgdp"]
        and run.bundle.manifest["model_spec"]["n_features"] == 5
    )
    pred = run.bundle.predict(d.tail(30))
    assert str(pred["date"].iloc[0].date()) == "2009-10-01" and np.isfinite(pred["realgdp"]).all()
