"""Issue #17: tree baselines beside the stored ones, the TabArena primary metrics, a verdict that names disagreements."""

import numpy as np
import pytest

from dlpipe.core.errors import InvalidConfigError
from dlpipe.evaluation import fit_tree_baselines, primary_metric, score, verdict


def test_primary_metric_per_task_is_tabarenas_and_can_be_chosen():
    assert primary_metric("binary") == "roc_auc"
    assert primary_metric("multiclass") == "log_loss"
    assert primary_metric("regression") == "rmse"
    assert primary_metric("binary", "accuracy") == "accuracy"
    assert primary_metric("regression", "auto") == "rmse"
    with pytest.raises(InvalidConfigError, match=r"`metric` is 'roc_acu'.*did you mean `roc_auc`"):
        primary_metric("binary", "roc_acu")
    with pytest.raises(InvalidConfigError, match=r"'rmse' but a binary task is scored on"):
        primary_metric("binary", "rmse")


def test_verdict_names_every_metric_where_model_and_best_baseline_disagree():
    model = {"rmse": 3.1, "mae": 2.1, "r2": 0.71}
    baselines = {
        "mean": {"rmse": 6.0, "mae": 5.0, "r2": 0.0},
        "ridge": {"rmse": 3.4, "mae": 2.5, "r2": 0.74},
    }
    text = verdict("rmse", model, baselines)
    assert text.startswith("The model beats its best baseline (ridge) on rmse: 3.1000 vs 3.4000")
    assert "and on mae (2.1000 vs 2.5000)" in text
    assert "but it loses to ridge on r2 (0.7100 vs 0.7400)" in text
    assert "Prefer the baseline" not in text and "\n" not in text  # one paragraph


def test_verdict_loses_on_the_primary_but_names_the_metric_it_wins():
    model = {"roc_auc": 0.88, "log_loss": 0.31, "accuracy": 0.95}
    baselines = {
        "majority": {"roc_auc": 0.5, "log_loss": 0.4, "accuracy": 0.94},
        "hist_gradient_boosting": {"roc_auc": 0.91, "log_loss": 0.29, "accuracy": 0.93},
    }
    text = verdict("roc_auc", model, baselines)
    assert text.startswith(
        "The model loses to its best baseline (hist_gradient_boosting) on roc_auc: 0.8800 vs 0.9100"
    )
    assert "and on log_loss (0.3100 vs 0.2900)" in text
    assert "but it beats hist_gradient_boosting on accuracy (0.9500 vs 0.9300)" in text
    assert text.endswith("Prefer the baseline or tune the model.")


def test_verdict_judges_on_the_next_metric_when_the_primary_is_undefined():
    model = {"roc_auc": float("nan"), "log_loss": 0.2, "accuracy": 1.0}
    baselines = {"majority": {"roc_auc": float("nan"), "log_loss": 0.7, "accuracy": 1.0}}
    text = verdict("roc_auc", model, baselines)
    assert (
        "roc_auc is undefined" in text and "beats its best baseline (majority) on log_loss" in text
    )
    assert "but it only ties majority on accuracy" in text


def test_tree_baselines_fit_score_and_time_themselves():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=64) > 0).astype(int)
    trees = fit_tree_baselines("binary", x[:48], y[:48], x[48:], n_classes=2)
    assert set(trees) == {"hist_gradient_boosting", "random_forest"}
    for t in trees.values():
        assert t.output.shape == (16, 2) and t.seconds > 0
        np.testing.assert_allclose(t.output.sum(axis=1), 1.0)
    out = score(
        "binary",
        y[48:],
        np.column_stack([1 - (x[48:, 0] > 0), x[48:, 0] > 0]).astype(float),
        x[48:],
        {},
        [0, 1],
        run_only={n: t.output for n, t in trees.items()},
    )
    assert out["primary_metric"] == "roc_auc" and set(out["baselines"]) == set(trees)
    reg = fit_tree_baselines("regression", x[:48], 2 * x[:48, 1], x[48:])
    assert reg["random_forest"].output.shape == (16,)
    assert fit_tree_baselines("binary", x[:8], np.zeros(8, dtype=int), x[8:], n_classes=2) == {}


def test_score_takes_a_chosen_metric():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    out = score(
        "binary",
        y,
        proba,
        np.zeros((4, 0)),
        {"majority": {"prior": [0.5, 0.5]}},
        [0, 1],
        metric="accuracy",
    )
    assert out["primary_metric"] == "accuracy" and out["verdict"].startswith("The model beats")


def test_a_forest_too_costly_for_the_run_is_skipped_and_said_so():
    from dlpipe.evaluation.baselines import forest_skip_reason

    assert forest_skip_reason("binary", 6000, 100) is None  # 10 features tried per split
    reason = forest_skip_reason("regression", 6000, 100)  # all 100: measured 91 s on one busy core
    assert reason and reason.startswith("random_forest was not fitted: 6,000 training rows x 100")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3001, 101))
    trees = fit_tree_baselines("regression", x[:3000], x[:3000, 0], x[3000:])
    assert set(trees) == {"hist_gradient_boosting"}
