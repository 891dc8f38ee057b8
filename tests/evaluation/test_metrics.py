import numpy as np
import pytest

from dlpipe.evaluation import (
    classification_metrics,
    fit_baselines,
    predict_baseline,
    regression_metrics,
    score,
    verdict,
)


def test_regression_metrics_values():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["mae"] == pytest.approx(1 / 3) and m["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert m["r2"] == pytest.approx(0.5) and 0.9 < m["pearson"] <= 1


def test_classification_metrics_binary_and_multiclass():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = classification_metrics(y, proba, ["no", "yes"])
    assert m["accuracy"] == 0.75 and m["recall"] == 0.5 and m["precision"] == 1.0
    assert m["confusion_matrix"] == [[2, 0], [1, 1]] and set(m["per_class"]) == {"no", "yes"}
    y3 = np.array([0, 1, 2, 2])
    p3 = np.eye(3)[[0, 1, 2, 1]] * 0.8 + 0.2 / 3
    m3 = classification_metrics(y3, p3, ["a", "b", "c"])
    # one-vs-rest AUCs by hand: class a 1, class b 2.5/3 (one tie), class c 3/4 (two ties); macro mean
    assert m3["accuracy"] == 0.75 and "f1" not in m3
    assert m3["roc_auc"] == pytest.approx((1 + 2.5 / 3 + 3 / 4) / 3)


def test_absent_class_gives_nan_auc_not_a_crash():
    m = classification_metrics(np.array([0, 0]), np.array([[0.9, 0.1], [0.8, 0.2]]), [0, 1])
    assert np.isnan(m["roc_auc"])


def test_baselines_are_json_numbers_and_predict():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    params = fit_baselines("binary", x, y, n_classes=2)
    assert set(params) == {"majority", "logistic"}
    proba = predict_baseline("logistic", params["logistic"], x)
    assert (proba.argmax(1) == y).mean() > 0.9
    reg = fit_baselines("regression", x, 2 * x[:, 1] + 1)
    np.testing.assert_allclose(
        predict_baseline("ridge", reg["ridge"], x), 2 * x[:, 1] + 1, atol=0.3
    )


def test_verdict_says_lose_in_words():
    assert "loses to its best baseline (ridge)" in verdict(
        "r2", 0.2, {"mean": {"r2": 0.0}, "ridge": {"r2": 0.5}}
    )
    assert "beats" in verdict("accuracy", 0.9, {"majority": {"accuracy": 0.5}})


def test_score_puts_model_and_baselines_side_by_side():
    x = np.zeros((4, 1))
    out = score(
        "regression",
        np.array([1.0, 2, 3, 4]),
        np.array([1.0, 2, 3, 4]),
        x,
        {"mean": {"value": 2.5}},
    )
    assert (
        out["model"]["r2"] == 1.0
        and out["baselines"]["mean"]["r2"] == 0.0
        and "beats" in out["verdict"]
    )
