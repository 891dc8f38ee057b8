"""Sequence classification (issue #18, items 6 and 7): MiniRocket by default, networks watching a
validation split carved from an official training file, and windows of a series split in time order."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.core.errors import InvalidConfigError, InvalidTargetError
from dlpipe.data.sequences import load_sequences


def _bumps(n, seed, length=30):
    rng = np.random.default_rng(seed)
    x = 0.3 * rng.normal(size=(n, length))
    labels = np.array(["early", "late"] * (n // 2))
    for i, lab in enumerate(labels):
        at = 5 if lab == "early" else 20
        x[i, at : at + 4] += 2.0
    return x, labels


def test_minirocket_is_the_default_and_its_bundle_predicts_the_same(tmp_path):
    ds = load_sequences(_bumps(24, 0), test=_bumps(20, 1))
    run = dl.train(ds, progress="quiet", out="seq", report=False)
    m = run.metrics
    assert run.bundle.manifest["model_spec"]["family"] == "minirocket"
    assert m["rows"] == {"train": 24, "val": 0, "test": 20} and m["epochs_run"] == 1
    assert m["minirocket"]["features"] == 9996 and m["minirocket"]["loo_accuracy"] == 1.0
    assert m["test"]["model"]["accuracy"] == 1.0
    files = sorted(p.name for p in Path("seq/bundle").iterdir() if not p.name.startswith("."))
    assert files == ["MODEL_CARD.md", "manifest.json", "weights.safetensors"]  # no pickle anywhere
    b = dl.load_bundle("seq/bundle")
    x_te, y_te = _bumps(20, 1)
    pred = b.predict(x_te)
    assert pred["prediction"].tolist() == y_te.tolist()
    saved = pd.read_csv("seq/predictions.csv")
    np.testing.assert_allclose(pred["proba_late"], saved["proba_late"], atol=1e-6)
    # MiniRocket counts signs (no gradient): its steps are scored by occlusion, and the bump decides
    assert m["attributions"]["method"] == "occlusion" and m["attributions"]["rows"] == 6
    e = dl.explain(b, x_te[:2])
    assert e.method == "occlusion" and list(e.items["predicted"]) == ["early", "late"]
    assert 4 <= int(np.argmax(e.attributions[0].sum(axis=1))) <= 9  # the bump at steps 5-8
    assert 19 <= int(np.argmax(e.attributions[1].sum(axis=1))) <= 24  # at steps 20-23


def test_minirocket_refuses_balanced_class_weights():
    ds = load_sequences(_bumps(24, 0))
    with pytest.raises(InvalidConfigError, match="class_weight: balanced.*minirocket"):
        dl.train(ds, class_weight="balanced", progress="quiet", out="r", report=False)


def test_a_network_on_an_official_split_watches_a_validation_share_only_when_it_is_large_enough():
    # 250 training cases: 20% (50 cases) is held out and watched (early stopping, best epoch kept).
    big = dl.train(
        load_sequences(_bumps(250, 0), test=_bumps(10, 1)),
        model={"family": "cnn1d", "hidden": [4]},
        epochs=2,
        progress="quiet",
        out="net-big",
        report=False,
    )
    assert big.metrics["rows"] == {"train": 200, "val": 50, "test": 10}
    assert "val_loss" in big.history.records[-1] and big.metrics["best_epoch"] is not None
    # 30 cases: a 6-case split would decide early stopping by chance (UCR ArrowHead: 0.408 against
    # 0.857 test accuracy, docs/series.md), so every case trains and the rate decays to the last epoch.
    ds = load_sequences(_bumps(30, 0), test=_bumps(10, 1))
    run = dl.train(
        ds,
        model={"family": "cnn1d", "hidden": [4]},
        epochs=3,
        progress="quiet",
        out="net",
        report=False,
    )
    m = run.metrics
    assert m["rows"]["val"] == 0 and m["rows"]["train"] == 30 and m["rows"]["test"] == 10
    assert "val_loss" not in run.history.records[-1] and m["epochs_run"] == 3
    lrs = [r["lr"] for r in run.history.records]
    assert lrs[0] > lrs[1] > lrs[2]  # the cosine schedule, not a constant rate
    asked = dl.train(
        ds,
        model={"family": "cnn1d", "hidden": [4]},
        val_fraction=0.2,
        epochs=2,
        progress="quiet",
        out="net-asked",
        report=False,
    )
    assert asked.metrics["rows"]["val"] == 6  # the user's share is kept whatever its size
    att = m["attributions"]  # a network: integrated gradients over the steps, which add up
    assert att["method"] == "integrated_gradients" and att["completeness_error"] <= 0.01
    e = dl.explain("net/bundle", _bumps(2, 3)[0])
    assert e.method == "integrated_gradients" and e.completeness_error <= 0.01
    files = e.save("net-explained")
    assert [f.name for f in files] == ["items.csv", "attributions.csv"]
    steps = pd.read_csv(files[1])
    assert list(steps.columns) == ["name", "step", "attribution", "channel_0"] and len(steps) == 60


def test_time_ordered_split_keeps_order_and_gaps():
    from dlpipe.pipeline._fit_sequences import time_ordered_split

    tr, va, te = time_ordered_split(20, 0.2, 0.25, gap=1)
    assert tr.max() < va.min() - 1 and va.max() < te.min() - 1 and te[-1] == 19
    with pytest.raises(InvalidConfigError, match="cannot be split"):
        time_ordered_split(3, 0.4, 0.4, gap=1)


def _prices(n=120, seed=0):
    rng = np.random.default_rng(seed)
    price = 100 + np.cumsum(rng.normal(size=n))
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "close": price,
            "volume": rng.random(n),
        }
    )
    return frame.sample(frac=1, random_state=1).reset_index(
        drop=True
    )  # the time column orders them


def test_windows_of_a_series_train_in_time_order_and_predict_per_window():
    frame = _prices()
    run = dl.train(
        frame,
        task="binary",
        time_column="date",
        lookback=8,
        target="close",
        progress="quiet",
        out="win",
        report=False,
    )
    m = run.metrics
    # 120 rows -> 113 windows, the last without a next value: 112 labelled; 20% test, 1 dropped as a gap
    assert m["windows"]["split"] == "time-ordered" and m["windows"]["lookback"] == 8
    assert m["windows"]["label"] == {"mode": "direction", "column": "close"}
    assert m["rows"] == {"train": 89, "val": 0, "test": 22}
    assert m["windows"]["test_from"].startswith("2021-04-0") and m["windows"]["test_to"].startswith(
        "2021-04-29"
    )
    assert set(m["classes"]) == {"down", "up"}
    b = dl.load_bundle("win/bundle")
    pred = b.predict(frame)
    assert len(pred) == 113 and list(pred.columns)[:2] == ["date", "prediction"]
    assert pred["date"].is_monotonic_increasing  # the last window predicts the step after the data
    ev = b.evaluate(frame.iloc[:60])
    assert ev["rows"] == 52  # 60 rows -> 53 windows, the last has no next value to score


def test_windows_with_a_label_column_and_refusals():
    frame = _prices(90)
    frame["regime"] = np.where(frame["volume"] > 0.5, "high", "low")
    run = dl.train(
        frame,
        task="multiclass",
        time_column="date",
        lookback=5,
        target="regime",
        model={"family": "minirocket"},
        progress="quiet",
        out="lab",
        report=False,
    )
    assert run.metrics["windows"]["label"] == {"mode": "column", "column": "regime"}
    assert run.metrics["windows"]["inputs"] == ["close", "volume"]
    with pytest.raises(InvalidTargetError, match="multiclass.*needs a label column.*task='binary'"):
        dl.train(
            frame, task="multiclass", time_column="date", target="close", out="x", report=False
        )


def test_cli_windows_train_and_predict_to_stdout(tmp_path, capsys):
    from dlpipe.cli import main

    _prices(80).to_csv(tmp_path / "prices.csv", index=False)
    args = ["train", str(tmp_path / "prices.csv"), "--task", "binary", "--time-column", "date"]
    args += ["--lookback", "6", "-t", "close", "--out", str(tmp_path / "r"), "-q", "--no-report"]
    assert main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert (
        main(["predict", str(tmp_path / "r" / "bundle"), str(tmp_path / "prices.csv"), "-o", "-"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "date,prediction,proba_down,proba_up" and len(lines) == 1 + 75
    assert lines[-1].startswith("2021-03-21")


@pytest.mark.slow
def test_default_reaches_minirocket_accuracy_on_ucr():
    from tests.conftest import shared_data

    for name, reference in (("GunPoint", 0.9933), ("ItalyPowerDemand", 0.9631)):
        run = dl.train(
            str(shared_data("ucr", f"{name}_TRAIN.ts")),
            test=str(shared_data("ucr", f"{name}_TEST.ts")),
            progress="quiet",
            out=name,
            report=False,
        )
        assert run.metrics["test"]["model"]["accuracy"] >= reference - 1e-4, name
        # the default network needed 736 s and 317 s here; MiniRocket fits in ~0.1 s (aeon ~0.3 s)
        assert run.metrics["minirocket"]["fit_seconds"] < 10, name


def test_which_numeric_column_is_a_label_and_which_a_series():
    from dlpipe.data.sequences import load_windows

    t = pd.DataFrame({"day": range(40), "price": [float((i * 7) % 11) for i in range(40)]})
    ds = load_windows(t, time_column="day", lookback=5)  # 11 integer values: a series for binary
    assert ds.meta["windows"]["label"] == {"mode": "direction", "column": "price"}
    assert ds.x.shape == (35, 5, 1) and ds.labels[:3].tolist() == ["down", "up", "down"]
    t["flag"] = np.arange(40) % 2  # two values: a binary label column, not an input
    ds = load_windows(t, time_column="day", lookback=5, target="flag")
    assert ds.meta["windows"]["label"]["mode"] == "column" and ds.meta["windows"]["inputs"] == [
        "price"
    ]
    ds = load_windows(t, time_column="day", lookback=5, target="price", task="multiclass")
    assert ds.meta["windows"]["label"]["mode"] == "column" and len(set(ds.labels)) == 11
