"""Forecasting and sequence classification on the one run path: the range test, the resolved lookback, no validation."""

from pathlib import Path

import numpy as np
import pytest
import yaml

import dlpipe as dl
from dlpipe.data.sequences import load_sequences
from dlpipe.data.series import auto_lookback


def _series(n=80):
    t = np.arange(n)
    return {"y": np.sin(t / 4.0) + t / 50}


def _sequences(n=40, length=16, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    labels = np.array(["up", "down"] * (n // 2))
    return np.where(labels[:, None] == "up", t, 1 - t) + 0.05 * rng.normal(size=(n, length)), labels


def _check_chosen_rate(run):
    chosen = run.extras["lr_finder"]["chosen"]
    assert isinstance(chosen, float) and 1e-6 <= chosen <= 1.0
    assert run.config["train"]["learning_rate"] == chosen


def test_forecast_learning_rate_auto_runs_the_range_test_and_records_the_rate():
    run = dl.train(
        _series(),
        "y",
        task="forecast",
        lookback=6,
        horizon=2,
        epochs=2,
        learning_rate="auto",
        model={"family": "gru", "hidden": [8]},
        progress="quiet",
        save=False,
    )
    _check_chosen_rate(run)
    assert len(run.history) == 2 and np.isfinite(run.metrics["test"]["model"]["mase"])


@pytest.mark.slow
def test_forecast_config_yaml_records_the_chosen_rate():
    run = dl.train(
        _series(),
        "y",
        task="forecast",
        lookback=6,
        epochs=1,
        learning_rate="auto",
        model={"family": "gru", "hidden": [4]},
        progress="quiet",
        out="f",
    )
    config = yaml.safe_load(Path("f/config.yaml").read_text())
    assert config["train"]["learning_rate"] == pytest.approx(run.extras["lr_finder"]["chosen"])


def test_sequence_learning_rate_auto_runs_the_range_test_and_records_the_rate():
    x, labels = _sequences()
    tx, tl = _sequences(10, seed=1)
    run = dl.train(
        load_sequences((x, labels), test=(tx, tl)),
        epochs=2,
        learning_rate="auto",
        model={"family": "cnn1d", "hidden": [8]},
        progress="quiet",
        save=False,
    )
    _check_chosen_rate(run)
    assert len(run.history) == 2 and run.metrics["rows"]["test"] == 10


def test_config_records_the_resolved_lookback_and_auto_settings_count_windows():
    series = _series(80)
    run = dl.train(
        series,
        "y",
        task="forecast",
        lookback="auto",
        horizon=1,
        epochs=1,
        stride=2,
        model={"family": "gru", "hidden": [4]},
        progress="quiet",
        out="r",
    )
    lookback = auto_lookback(80)
    config = yaml.safe_load(Path("r/config.yaml").read_text())
    assert config["series"]["lookback"] == lookback == run.metrics["lookback"] == 8
    assert run.bundle.manifest["preprocessor"]["lookback"] == lookback
    # 48 training rows, windows of 8 + 1 every 2 rows: 20 windows, so `auto` batch size is the small-data 32
    assert (
        run.metrics["windows"]["train"] == (48 - lookback - 1) // 2 + 1
        and config["train"]["batch_size"] == 32
    )


def test_sequences_without_a_validation_share_watch_nothing():
    x, labels = _sequences(12)  # fewer than 20 cases: train, validation and test are the same rows
    run = dl.train(
        load_sequences((x, labels)),
        epochs=2,
        patience=1,
        model={"family": "cnn1d", "hidden": [4]},
        progress="quiet",
        save=False,
    )
    assert run.metrics["evaluated_on_training_rows"] is True and run.metrics["rows"] == {
        "train": 12,
        "val": 12,
        "test": 12,
    }
    assert all("val_loss" not in r for r in run.history.records) and run.metrics["val"] == {}
