import json

import numpy as np
import pandas as pd
import pytest
import yaml

import dlpipe as dl
from dlpipe.core.errors import InvalidConfigError, InvalidTargetError

FAST = dict(epochs=3, progress="quiet", report=False)  # tests/reports builds and checks reports


def test_run_folder_contents(binary_frame, tmp_path):
    run = dl.train(binary_frame, "y", out=tmp_path / "r", **FAST)
    names = sorted(p.name for p in run.path.iterdir())
    assert names == [
        ".dlpipe",
        "bundle",
        "config.yaml",
        "history.csv",
        "metrics.json",
        "predictions.csv",
        "worst_errors.json",
    ]  # FAST: report=False
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert set(metrics["test"]["baselines"]) == {
        "majority",
        "logistic",
        "hist_gradient_boosting",
        "random_forest",
    }
    assert "accuracy" in metrics["test"]["model"] and metrics["test"]["verdict"]
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    assert (
        config["train"]["epochs"] == 3
        and config["train"]["batch_size"] == 32
        and config["model"]["hidden"] == [64, 32]
    )
    assert len(run.history) == 3 and not list(tmp_path.glob(".r.tmp-*"))


def test_default_run_name_under_runs(regression_frame):
    run = dl.train(regression_frame, "y", **FAST)
    assert run.path.parent.name == "runs" and run.path.name.startswith("table-regression-")
    assert set(run.metrics["test"]["baselines"]) == {
        "mean",
        "ridge",
        "hist_gradient_boosting",
        "random_forest",
    }
    assert run.metrics["test"]["primary_metric"] == "rmse"


def test_given_test_file(binary_frame, tmp_path):
    binary_frame.iloc[:48].to_csv(tmp_path / "train.csv", index=False)
    binary_frame.iloc[48:].to_csv(tmp_path / "test.csv", index=False)
    run = dl.train(
        str(tmp_path / "train.csv"), "y", test=str(tmp_path / "test.csv"), save=False, **FAST
    )
    assert (
        run.metrics["rows"]["test"] == 16
        and run.metrics["rows"]["train"] + run.metrics["rows"]["val"] == 48
    )


def test_config_file_and_python_overrides(binary_frame, tmp_path):
    (tmp_path / "run.yaml").write_text(
        "train:\n  epochs: 2\n  batch_size: 8\nmodel:\n  hidden: [5]\n"
    )
    run = dl.train(
        binary_frame, "y", config=tmp_path / "run.yaml", batch_size=16, save=False, progress="quiet"
    )
    assert (
        len(run.history) == 2
        and run.config["train"]["batch_size"] == 16
        and run.config["model"]["hidden"] == [5]
    )


def test_failed_run_leaves_nothing(binary_frame, tmp_path):
    with pytest.raises(InvalidConfigError):
        dl.train(binary_frame, "y", out=tmp_path / "r", monitor="val_nope", **FAST)
    assert not any(tmp_path.iterdir())


def test_early_stopping_on_validation_roc_auc(binary_frame):
    run = dl.train(binary_frame, "y", save=False, monitor="val_roc_auc", **FAST)
    auc = run.history.history["val_roc_auc"]
    assert len(auc) == 3 and all(0.0 <= a <= 1.0 for a in auc)
    # logged only when monitored: the default run's history has no such column
    assert "val_roc_auc" not in dl.train(binary_frame, "y", save=False, **FAST).history.history


def test_single_class_target(binary_frame):
    with pytest.raises(InvalidTargetError, match="single class"):
        dl.train(binary_frame.assign(y="same"), "y", **FAST)


def test_integer_labels_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 2))
    frame = pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "y": np.where(x[:, 0] > 0.5, 7, np.where(x[:, 0] < -0.5, 3, 5)),
        }
    )
    run = dl.train(frame, "y", epochs=60, progress="quiet", out=tmp_path / "r")
    out = dl.load_bundle(run.path / "bundle").predict(frame.drop(columns="y"))
    assert set(out["prediction"]) <= {3, 5, 7} and list(out.columns)[1:] == [
        "proba_3",
        "proba_5",
        "proba_7",
    ]


def test_lr_auto_keeps_its_curve(binary_frame, tmp_path):
    run = dl.train(binary_frame, "y", learning_rate="auto", out=tmp_path / "r", **FAST)
    assert (run.path / "lr_finder.csv").is_file() and run.config["train"]["learning_rate"] > 0


@pytest.mark.parametrize(
    "opts",
    [
        dict(optimizer="sgd", nesterov=True, schedule="cosine"),
        dict(optimizer="rmsprop", schedule="onecycle"),
        dict(class_weight="balanced", batch_norm=True, clip_grad=1.0, scaling="minmax"),
        dict(deterministic=True),
    ],
)
def test_option_combinations_train(binary_frame, opts):
    run = dl.train(binary_frame, "y", save=False, **FAST, **opts)
    assert np.isfinite(run.history.records[-1]["loss"])


def test_a_deterministic_run_leaves_torch_as_it_found_it(binary_frame):
    import torch

    assert not torch.are_deterministic_algorithms_enabled()
    dl.train(binary_frame, "y", save=False, deterministic=True, **FAST)
    # later runs in the same process (an unpooling autoencoder has no deterministic kernel) are unaffected
    assert not torch.are_deterministic_algorithms_enabled()


def test_bundled_dataset_by_name():
    run = dl.train("iris", save=False, **FAST)
    assert run.metrics["task"] == "multiclass" and run.metrics["classes"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]


def test_datetime_and_missing_values_table(tmp_path):
    n = 60
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=n, freq="7D").astype(str),
            "size": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "city": rng.choice(["a", "b", None], size=n),
            "price": rng.normal(size=n),
        }
    )
    run = dl.train(frame, "price", save=False, **FAST)
    names = run.bundle.preprocessor.feature_names
    assert "when.year" in names and "size.missing" in names and "city.missing" in names


def test_a_small_table_is_refitted_on_train_and_validation_rows(
    regression_frame, binary_frame, monkeypatch
):
    from dlpipe.pipeline import _table_eval

    seen, fit = [], _table_eval.fit_baselines
    monkeypatch.setattr(
        _table_eval,
        "fit_baselines",
        lambda kind, x, *a, **k: seen.append(len(x)) or fit(kind, x, *a, **k),
    )
    run = dl.train(regression_frame, "y", save=False, **FAST)
    rows = run.metrics["rows"]
    refit = run.metrics["refit"]
    assert refit["rows"] == rows["train"] + rows["val"]
    assert 1 <= refit["first_fit_epochs"] <= 3 and len(run.history) == 3  # the first fit's history
    # regression's refit trains the epochs early stopping kept; classification's twice as many
    # (TABLE_MODEL_DEFAULTS["refit_epochs"])
    assert refit["epochs"] == refit["first_fit_epochs"]
    # the default regression model below 2,000 rows has the linear path; classification has none
    assert run.bundle.manifest["model_spec"]["skip"] is True
    assert run.bundle.model.skip is not None and run.bundle.model.skip.weight.abs().sum() > 0
    # intervals are placed from the first fit's validation errors (rows the refit trained on)
    assert run.metrics["intervals"]["validation_rows"] == rows["val"]
    assert seen == [rows["train"] + rows["val"]]  # the baselines fit on the refitted model's rows
    cls = dl.train(binary_frame, "y", save=False, **FAST)
    assert "skip" not in cls.bundle.manifest["model_spec"]
    assert cls.metrics["refit"]["epochs"] == 2 * cls.metrics["refit"]["first_fit_epochs"] >= 2
    plain = dl.train(regression_frame, "y", save=False, model={"members": 1}, **FAST)
    assert "skip" not in plain.bundle.manifest["model_spec"]


def test_no_refit_from_the_row_threshold(regression_frame, monkeypatch):
    from dlpipe.pipeline import _fit

    monkeypatch.setitem(_fit.TABLE_MODEL_DEFAULTS, "refit_below", 10)
    run = dl.train(regression_frame, "y", save=False, **FAST)
    assert "refit" not in run.metrics


@pytest.mark.parametrize("name", ["kind", "frame", "target"])
def test_column_named_like_a_dataset_attribute(binary_frame, tmp_path, name):
    # a DataFrame column shows as an attribute; a column named "kind" once made the run look for a
    # recipe of that kind ("no recipe is registered for data of kind <the column>")
    frame = binary_frame.rename(columns={"a": name})
    run = dl.train(frame, "y", out=tmp_path / "r", **FAST)
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    assert config["data"]["target"] == "y"
    predicted = dl.load_bundle(run.path / "bundle").predict(frame.drop(columns="y"))
    assert len(predicted) == len(frame)
