"""The default table ensemble's label smoothing: small multiclass tables with a fitted temperature."""

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.pipeline import _fit
from dlpipe.pipeline._fit import default_smoothing

FAST = dict(epochs=2, progress="quiet", report=False, save=False)


def test_the_rule_smooths_small_multiclass_tables_with_200_validation_rows():
    assert default_smoothing(1_280, "multiclass", 320) == 0.03
    assert default_smoothing(1_280, "multiclass", 199) == 0.0  # no temperature to take it back
    assert default_smoothing(1_999, "multiclass", 500) == 0.03
    assert default_smoothing(2_000, "multiclass", 500) == 0.0  # not measured from 2,000 rows
    assert default_smoothing(1_280, "binary", 320) == 0.0
    assert default_smoothing(1_280, "regression", 320) == 0.0


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.5, 0.5])
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})


@pytest.fixture
def smoothing_seen(monkeypatch):
    seen: list[float] = []

    class Spy(_fit.CrossEntropyLoss):
        def __init__(self, weight=None, smoothing=0.0):
            seen.append(smoothing)
            super().__init__(weight, smoothing)

    monkeypatch.setattr(_fit, "CrossEntropyLoss", Spy)
    return seen


def test_a_run_with_200_validation_rows_trains_smoothed_and_records_auto(smoothing_seen):
    run = dl.train(_frame(1_100), "y", task="multiclass", **FAST)
    assert run.metrics["rows"]["val"] >= 200 and smoothing_seen == [0.03]
    # the smoothing belongs to the `auto` model: config.yaml asks for it again
    assert run.config["model"]["members"] == "auto"
    proba = run.bundle.predict(_frame(20).drop(columns="y")).filter(like="proba_")
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "rows, options",
    [(300, {}), (1_100, {"model": {"members": 32}}), (1_100, {"class_weight": "balanced"})],
    ids=["few-validation-rows", "members-given", "class-weights"],
)
def test_no_smoothing_without_the_rule(smoothing_seen, rows, options):
    run = dl.train(_frame(rows), "y", task="multiclass", **FAST, **options)
    assert smoothing_seen == []
    assert run.config["model"]["members"] == 32
