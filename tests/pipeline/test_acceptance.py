"""Issue #2's accuracy figures with default settings (seed 0): real data sets shipped with scikit-learn,
and issue #17's make_classification figure on the seed notes' own call and split."""

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "metric", "floor"),
    [
        ("breast_cancer", "accuracy", 0.95),
        ("diabetes", "r2", 0.45),
        ("wine", "accuracy", 0.95),
    ],
)
def test_default_settings_reach_the_figures(name, metric, floor):
    # breast_cancer with the ensemble default (113 test rows): 0.9646 / 0.9823 / 0.9558 on seeds
    # 0-2, so seed 0's floor sits two rows below its figure (one row = 0.0088)
    run = dl.train(name, save=False, progress="quiet")
    test = run.metrics["test"]
    assert test["model"][metric] >= floor, run.summary()
    assert test["baselines"], "every evaluation shows baselines"


@pytest.mark.slow
def test_xor_is_fitted_and_holds_on_points_it_was_not_trained_on():
    """XOR's four rows are too few to hold any out, so its run scores the rows it trained on (and says
    so): that figure claims only that the default network fits a function no linear model can (the
    logistic baseline scores 0.5). What it learned is checked on rows not used for training: 144 points
    within 0.25 of the four corners, each labelled as its corner (1.0 measured on seed 0)."""
    run = dl.train("xor", save=False, progress="quiet")
    m = run.metrics
    assert m["evaluated_on_training_rows"] is True and m["test"]["rows"] == 4
    assert m["test"]["model"]["accuracy"] == 1.0
    assert m["test"]["baselines"]["logistic"]["accuracy"] <= 0.75
    offsets = np.linspace(-0.25, 0.25, 6)
    near = pd.DataFrame(
        [
            (a + da, b + db, a ^ b)
            for a in (0, 1)
            for b in (0, 1)
            for da in offsets
            for db in offsets
        ],
        columns=["x1", "x2", "y"],
    )
    pred = run.bundle.predict(near[["x1", "x2"]])
    wrong = near[pred["prediction"].astype(int).to_numpy() != near["y"].to_numpy()]
    assert wrong.empty, (
        f"{len(wrong)} of {len(near)} points near the corners misclassified:\n{wrong}"
    )


@pytest.mark.slow
def test_the_seed_notes_make_classification_reaches_093():
    """The notes' call (1,000 rows, 20 features, 10 informative, random_state=42), 80/20 stratified.

    Issue #17 asks >= 0.93 on every seed; measured 0.98 / 0.965 / 0.97 on seeds 0-2
    (benchmarks/tabular_suite.py), a plain MLP 0.96 / 0.935 / 0.95.
    """
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(n_samples=1000, n_features=20, n_informative=10, random_state=42)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(20)]).assign(target=y)
    train, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["target"])
    run = dl.train(train, "target", test=test, save=False, progress="quiet", seed=0)
    assert run.metrics["test"]["model"]["accuracy"] >= 0.95, run.summary()
