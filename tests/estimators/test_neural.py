"""The scikit-learn estimators: the contract suite, and the compositions users build with them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_wine, make_regression
from sklearn.ensemble import RandomForestClassifier, StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from dlpipe.core.errors import InvalidConfigError, InvalidTargetError
from dlpipe.sklearn import NeuralClassifier, NeuralRegressor

# Checks that cannot pass, with the reason (also listed in docs/sklearn.md).
_SGD_WEIGHTS = (
    "minibatch SGD with shuffling: weighting a row by 2 is not the same optimisation path as "
    "repeating it, so the fitted networks differ (they agree in expectation, not to 1e-7)"
)
EXPECTED_FAILED = {"check_sample_weight_equivalence_on_dense_data": _SGD_WEIGHTS}


@parametrize_with_checks(
    [
        NeuralClassifier(epochs=20, hidden=(16,), learning_rate=0.01),
        NeuralRegressor(epochs=20, hidden=(16,), learning_rate=0.01),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_contract(estimator, check):
    check(estimator)


def _cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X.astype(np.float32), y


@pytest.mark.slow
def test_pipeline_cross_val_score_beats_majority():
    X, y = _cancer()
    scores = cross_val_score(
        make_pipeline(StandardScaler(), NeuralClassifier(hidden=(64, 32), epochs=30)), X, y, cv=3
    )
    assert scores.mean() > 0.93  # majority class is 0.63


@pytest.mark.slow
def test_grid_search_voting_and_stacking():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    grid = GridSearchCV(
        NeuralClassifier(epochs=20),
        {"hidden": [(16,), (32, 16)], "optimizer__learning_rate": [1e-2]},
        cv=2,
    )
    grid.fit(X, y)
    assert grid.best_params_["optimizer__learning_rate"] == 1e-2 and grid.best_score_ > 0.85
    vote = VotingClassifier(
        [
            ("nn", NeuralClassifier(epochs=20)),
            ("rf", RandomForestClassifier(n_estimators=20, random_state=0)),
        ],
        voting="soft",
    )
    assert cross_val_score(vote, X, y, cv=3).mean() > 0.85
    stack = StackingClassifier(
        [
            ("nn", NeuralClassifier(epochs=20)),
            ("rf", RandomForestClassifier(n_estimators=20, random_state=0)),
        ],
        final_estimator=LogisticRegression(),
        cv=3,
    )
    assert stack.fit(X, y).score(X, y) > 0.9


def test_params_clone_nested_and_learned_attributes():
    est = NeuralClassifier(hidden=(8,), epochs=3)
    est.set_params(optimizer__weight_decay=0.01, module__dropout=0.1)
    assert est.get_params()["weight_decay"] == 0.01 and est.dropout == 0.1
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "model_")
    X = np.random.default_rng(0).normal(size=(40, 5))
    y = np.array(["cat", "dog"] * 20)
    est.fit(X, y)
    assert (
        list(est.classes_) == ["cat", "dog"] and est.n_features_in_ == 5 and len(est.history_) == 3
    )
    assert est.predict_proba(X).shape == (40, 2) and set(est.predict(X)) <= {"cat", "dog"}


def test_sample_weight_changes_the_fit():
    X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    w = np.where(np.arange(60) < 30, 1.0, 0.0)
    a = NeuralRegressor(epochs=5).fit(X, y).predict(X)
    b = NeuralRegressor(epochs=5).fit(X, y, sample_weight=w).predict(X)
    assert not np.allclose(a, b)


def test_regressor_multi_output_and_r2():
    X, y = make_regression(n_samples=64, n_features=4, n_targets=2, random_state=0, noise=1.0)
    est = NeuralRegressor(epochs=60, learning_rate=1e-2).fit(X, y)
    assert est.predict(X).shape == (64, 2) and est.score(X, y) > 0.8


def test_bad_arguments_raise_one_sentence_in_fit():
    X = np.zeros((10, 2))
    y = np.array([0, 1] * 5)
    est = NeuralClassifier(
        hidden=(0,), optimizer="adan", activation="rellu"
    )  # __init__ accepts anything
    with pytest.raises(
        InvalidConfigError,
        match=r"`hidden` is \(0,\).*`activation` is 'rellu' \(did you mean `relu`\?\).*`optimizer` is 'adan' \(did you mean `adam`\?\)",
    ):
        est.fit(X, y)
    with pytest.raises(InvalidConfigError, match=r"optimizer__momentun.*did you mean `momentum`"):
        NeuralClassifier().set_params(optimizer__momentun=0.5)
    with pytest.raises(InvalidTargetError, match="one class only"):
        NeuralClassifier(epochs=1).fit(X, np.zeros(10))
    with pytest.raises(ValueError, match="features"):
        NeuralClassifier(epochs=1).fit(X, y).predict(np.zeros((2, 3)))


@pytest.mark.parametrize(
    "name",
    ["dlpipe.sklearn", "dlpipe.estimators", "dlpipe.keras", "dlpipe.tuning", "dlpipe.ensembles"],
)
def test_front_door_names_resolve(name):
    import importlib

    module = importlib.import_module(name)
    assert module.__all__ and all(getattr(module, attr) is not None for attr in module.__all__)
