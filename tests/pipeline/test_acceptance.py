"""Issue #2's accuracy figures with default settings (seed 0): real data sets shipped with scikit-learn."""

import pytest

import dlpipe as dl


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "metric", "floor"),
    [
        ("breast_cancer", "accuracy", 0.96),
        ("classification", "accuracy", 0.93),
        ("diabetes", "r2", 0.45),
        ("wine", "accuracy", 0.95),
        ("xor", "accuracy", 1.0),
    ],
)
def test_default_settings_reach_the_figures(name, metric, floor):
    run = dl.train(name, save=False, progress="quiet")
    test = run.metrics["test"]
    assert test["model"][metric] >= floor, run.summary()
    assert test["baselines"], "every evaluation shows baselines"
