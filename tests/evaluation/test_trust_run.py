"""Issue #20 in a table run: metrics.json, the bundle's predictions, the server, drift and the report."""

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import dlpipe as dl
from dlpipe.core.errors import BundleError, DataWarning
from dlpipe.data.ranges import flag_rows
from dlpipe.monitoring.drift import detect_drift
from dlpipe.serving.app import create_app

FAST = {"epochs": 2, "progress": "quiet", "report": False}


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": x[:, 2],
            "y": 3 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=120),
        }
    )
    out = tmp_path_factory.mktemp("trust") / "reg"
    return dl.train(frame, "y", out=out, seed=0, **FAST), frame, out


def test_metrics_hold_intervals_and_explanations(regression_run):
    _, _, out = regression_run
    m = json.loads((out / "metrics.json").read_text())
    iv = m["intervals"]
    assert iv["method"] == "split-conformal" and iv["levels"] == [0.8, 0.9, 0.95]
    assert iv["validation_rows"] == m["rows"]["val"]
    assert all(0 <= c <= 1 for c in iv["test_coverage"])
    assert iv["half_widths"][0] <= iv["half_widths"][1] <= iv["half_widths"][2]
    ex = m["explanations"]
    assert (
        set(ex["permutation"]["features"]) == {"a", "b", "c"}
        and ex["permutation"]["metric"] == "rmse"
    )
    assert set(ex["integrated_gradients"]["mean_abs"]) == {"a", "b", "c"}
    assert ex["seconds"] >= 0 and "calibration" not in m  # a regression has no probabilities


def test_predict_gives_intervals_and_flags_rows_it_cannot_vouch_for(regression_run):
    run, frame, _ = regression_run
    b = run.bundle
    rows = frame.drop(columns="y").head(3).copy()
    plain = b.predict(rows)
    assert [c for c in plain.columns if c != "prediction"] == [
        "lower_80",
        "upper_80",
        "lower_90",
        "upper_90",
        "lower_95",
        "upper_95",
    ]
    assert (plain["lower_80"] < plain["prediction"]).all() and (
        plain["upper_95"] > plain["upper_80"]
    ).all()
    assert "warnings" not in plain.columns
    rows.loc[1, "a"] = 1e4  # far outside the training range
    rows.loc[2, ["a", "b", "c"]] = np.nan  # nothing known
    with pytest.warns(
        DataWarning,
        match="1 row has values far outside the training range and 1 row has every input missing",
    ):
        flagged = b.predict(rows)
    assert flagged["warnings"][0] == ""
    assert flagged["warnings"][1].startswith("'a' = 10000 is far outside the training range [")
    assert flagged["warnings"][2] == "every input is missing"


def test_server_returns_intervals_and_per_row_warnings(regression_run):
    run, frame, _ = regression_run
    client = TestClient(create_app(run.bundle))
    row = frame.drop(columns="y").iloc[0].to_dict()
    r = client.post(
        "/predict", json={"rows": [row, dict(row, b=-5e3), {"a": None, "b": None, "c": None}]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    want = run.bundle.predict(pd.DataFrame([row]))
    p0 = body["predictions"][0]
    assert p0["prediction"] == pytest.approx(want["prediction"][0], rel=1e-5)
    assert p0["intervals"]["90"] == pytest.approx(
        [want["lower_90"][0], want["upper_90"][0]], rel=1e-5
    )
    assert [w.split(":")[0] for w in body["warnings"]] == ["row 1", "row 2"]
    assert "'b' = -5000 is far outside" in body["warnings"][0]
    assert "every input is missing" in body["warnings"][1]
    assert "warnings" not in client.post("/predict", json={"rows": [row]}).json()


def test_drift_counts_the_flagged_rows(regression_run):
    run, frame, _ = regression_run
    new = frame.drop(columns="y").head(30).copy()
    new.loc[0, "c"] = 999.0
    new.loc[1, :] = np.nan
    report = detect_drift(run.bundle, new)
    assert report.out_of_range_rows == 1 and report.all_missing_rows == 1
    assert report.to_dict()["out_of_range_rows"] == 1
    assert "1 row(s) hold values far outside the training range" in report.to_text()


def test_a_value_within_half_a_range_of_training_is_not_flagged():
    ref = {"x": {"kind": "numeric", "min": 0.0, "max": 10.0}, "k": {"kind": "categorical"}}
    flags = flag_rows({"x": [14.9, 15.1, -5.1, None], "k": ["a", "b", None, ""]}, ref, 4)
    assert flags.column() == [
        "",
        "'x' = 15.1 is far outside the training range [0, 10]",
        "'x' = -5.1 is far outside the training range [0, 10]",
        "every input is missing",
    ]
    assert (flags.out_of_range, flags.all_missing) == (2, 1)

    # the server hands plain numeric columns over as the float arrays it parsed: the same flags
    parsed = flag_rows(
        {"x": np.array([14.9, 15.1, -5.1, np.nan]), "k": ["a", "b", None, ""]}, ref, 4
    )
    assert parsed.column() == flags.column()
    assert (parsed.out_of_range, parsed.all_missing) == (2, 1)


@pytest.mark.slow
def test_classifier_bundle_carries_its_temperature_and_the_report_shows_it(binary_frame, tmp_path):
    frame = pd.concat([binary_frame] * 2, ignore_index=True)
    dl.train(frame, "y", out=tmp_path / "clf", seed=0, epochs=2, progress="quiet", report=True)
    m = json.loads((tmp_path / "clf" / "metrics.json").read_text())
    cal = m["calibration"]
    manifest = json.loads((tmp_path / "clf" / "bundle" / "manifest.json").read_text())
    assert manifest["task"]["temperature"] == cal["temperature"] > 0
    assert set(cal["test_ece"]) == {"before", "after"} and cal["reliability"]["before"]["count"]
    # the bundle's probabilities are the calibrated ones
    b = dl.load_bundle(tmp_path / "clf" / "bundle")
    probs = b.predict(frame.drop(columns="y").head(4))["proba_yes"].to_numpy()
    logits = b.outputs(b.preprocessor.prepare(frame.drop(columns="y").head(4)).inputs).reshape(-1)
    assert probs == pytest.approx(1 / (1 + np.exp(-logits / cal["temperature"])))
    page = (tmp_path / "clf" / "report.html").read_text()
    for title in (
        "Which columns the model uses",
        "Calibrated probabilities",
        "Reliability diagram",
    ):
        assert title in page
    # a damaged temperature is refused with one sentence
    manifest["task"]["temperature"] = -1.0
    (tmp_path / "clf" / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError, match="`task.temperature` holds -1.0 .* but must be a finite positive number"
    ):
        dl.load_bundle(tmp_path / "clf" / "bundle")


@pytest.mark.slow
def test_an_image_run_is_calibrated_on_its_validation_images(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    x = rng.integers(0, 80, (90, 16, 16, 3)).astype(np.uint8)
    x[np.arange(90), :, :, y] += 120  # the class is the dominant colour
    run = dl.train((x, y), epochs=2, progress="quiet", save=False)
    cal = run.metrics["calibration"]
    assert cal["validation_rows"] == run.metrics["rows"]["val"] and cal["temperature"] > 0
    assert run.bundle.task.temperature == cal["temperature"]
    proba = run.bundle.predict(x[:3])[[f"proba_{c}" for c in run.bundle.classes]].to_numpy()
    logits = run.bundle.outputs(run.bundle._prepare(x[:3]).inputs) / cal["temperature"]
    want = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert proba == pytest.approx(want, rel=1e-5)


@pytest.mark.slow
def test_a_sequence_network_is_calibrated_on_its_validation_cases():
    from dlpipe.data.sequences import load_sequences
    from tests.pipeline.test_sequence_recipe import _bumps

    ds = load_sequences(_bumps(30, 0), test=_bumps(10, 1))
    run = dl.train(  # 30 cases hold out no split by default (too few); asked for, 6 are watched
        ds,
        model={"family": "cnn1d", "hidden": [4]},
        val_fraction=0.2,
        epochs=3,
        progress="quiet",
        save=False,
    )
    cal = run.metrics["calibration"]
    assert cal["validation_rows"] == 6 and run.bundle.task.temperature == cal["temperature"]
