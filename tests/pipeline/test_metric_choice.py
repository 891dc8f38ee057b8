"""Issue #17 in a run: a table run's primary metric, its run-only tree baselines with their cost, `metric`."""

import json

import pytest

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.core.errors import InvalidConfigError

FAST = dict(epochs=2, progress="quiet", report=False)
TREES = {"hist_gradient_boosting", "random_forest"}


def test_binary_run_is_judged_on_roc_auc_beside_tree_baselines(binary_frame, tmp_path):
    run = dl.train(binary_frame, "y", out=tmp_path / "r", **FAST)
    test = json.loads((run.path / "metrics.json").read_text())["test"]
    assert test["primary_metric"] == "roc_auc"
    assert set(test["baselines"]) == {"majority", "logistic"} | TREES
    assert set(test["run_only_baselines"]) == TREES
    cost = test["cost_s"]
    assert set(cost) == {"model"} | set(test["baselines"]) and all(v >= 0 for v in cost.values())
    assert cost["hist_gradient_boosting"] > 0 and cost["random_forest"] > 0
    assert "roc_auc" in test["verdict"]
    manifest = json.loads((run.path / "bundle" / "manifest.json").read_text())
    assert set(manifest["baselines"]) == {"majority", "logistic"}  # trees are never stored
    scores = dl.load_bundle(run.path / "bundle").evaluate(binary_frame)
    assert scores["primary_metric"] == "roc_auc" and set(scores["baselines"]) == {
        "majority",
        "logistic",
    }


def test_metric_overrides_the_primary(binary_frame):
    run = dl.train(binary_frame, "y", metric="accuracy", save=False, **FAST)
    assert run.metrics["test"]["primary_metric"] == "accuracy"
    assert run.bundle.evaluate(binary_frame)["primary_metric"] == "accuracy"
    three = binary_frame.assign(y=["a", "b", "c", "d"] * 16)
    run = dl.train(three, "y", save=False, **FAST)
    assert run.metrics["test"]["primary_metric"] == "log_loss"


def test_a_metric_the_task_does_not_score_is_refused_before_training(binary_frame):
    with pytest.raises(InvalidConfigError, match=r"`metric` is 'rmse' but a binary task"):
        dl.train(binary_frame, "y", metric="rmse", save=False, epochs=500, progress="quiet")


def test_cli_metric_flag_and_evaluate_note(binary_frame, tmp_path, capsys):
    csv = tmp_path / "d.csv"
    binary_frame.to_csv(csv, index=False)
    args = [
        "train",
        str(csv),
        "-t",
        "y",
        "--epochs",
        "2",
        "--metric",
        "f1",
        "-o",
        str(tmp_path / "r"),
        "-q",
    ]
    assert main([*args, "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "hist_gradient_boosting" in out and "random_forest" in out and "on f1:" in out
    header = next(line for line in out.splitlines() if "cost s" in line)
    assert header.split()[0] == "f1"  # the chosen primary metric's column first, the cost last
    assert main(["evaluate", str(tmp_path / "r" / "bundle"), str(csv)]) == 0
    out = capsys.readouterr().out
    assert "on f1:" in out and "training run only" in out


def test_a_skipped_forest_is_noted_in_the_run(regression_frame, monkeypatch, tmp_path):
    monkeypatch.setattr("dlpipe.evaluation.baselines.FOREST_MAX_WORK", 1)
    run = dl.train(regression_frame, "y", out=tmp_path / "r", **FAST)
    test = run.metrics["test"]
    assert (
        "random_forest" not in test["baselines"] and "hist_gradient_boosting" in test["baselines"]
    )
    assert test["baseline_notes"][0].startswith("random_forest was not fitted")
