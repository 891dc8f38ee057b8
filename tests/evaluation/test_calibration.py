"""Temperature scaling, ECE and reliability bins (dlpipe.evaluation.calibration), and where T is applied."""

import numpy as np
import pytest

from dlpipe.evaluation.calibration import (
    calibration_record,
    expected_calibration_error,
    fit_temperature,
    probabilities,
    reliability_bins,
)
from dlpipe.tasks.task import Task


def _overconfident(n, scale, seed=0, classes=3):
    """Logits whose true log-odds are the logits / scale: T = scale is the right temperature."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1.5, size=(n, classes))
    p = np.exp(true) / np.exp(true).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(classes, p=row) for row in p])
    return true * scale, y


def test_temperature_recovers_the_overconfidence_and_lowers_ece():
    logits, y = _overconfident(4000, 3.0)
    t, before, after = fit_temperature(logits, y)
    assert 2.6 < t < 3.4 and after < before
    ece_before = expected_calibration_error(probabilities(logits), y)
    ece_after = expected_calibration_error(probabilities(logits, t), y)
    assert ece_after < ece_before / 3


def test_temperature_stays_one_when_every_validation_row_is_right():
    # all right: the log loss falls without limit as T -> 0, which would print p = 1.0 everywhere
    logits = np.array([[-3.0], [3.0], [-2.0], [4.0]])
    t, before, after = fit_temperature(logits, np.array([0, 1, 0, 1]))
    assert t == 1.0 and before == after


def test_temperature_stays_one_on_too_few_validation_rows():
    logits, y = _overconfident(150, 3.0, seed=2)  # clearly overconfident, but 150 rows
    t, before, after = fit_temperature(logits, y)
    assert t == 1.0 and before == after
    assert 2.0 < fit_temperature(logits, y, min_rows=0)[0] < 4.5  # the guard, not the fit, said no
    rec = calibration_record(logits, y, logits, y)
    assert not rec["applied"] and rec["note"].startswith(
        "not fitted: 150 validation rows are too few"
    )


def test_temperature_never_sharpens_below_one_half():
    logits, y = _overconfident(3000, 0.2, seed=1)  # underconfident by 5x
    t, _, _ = fit_temperature(logits, y)
    assert t == pytest.approx(0.5, abs=1e-6)


def test_ece_and_reliability_bins_by_hand():
    proba = np.array([[0.1, 0.9], [0.1, 0.9], [0.7, 0.3], [0.7, 0.3]])
    y = np.array([1, 0, 0, 0])
    r = reliability_bins(proba, y, bins=10)
    assert r["count"] == [2.0, 2.0]
    assert r["confidence"] == pytest.approx([0.7, 0.9]) and r["accuracy"] == [1.0, 0.5]
    assert expected_calibration_error(proba, y, bins=10) == pytest.approx((2 * 0.3 + 2 * 0.4) / 4)


def test_record_says_why_nothing_was_fitted():
    logits, y = _overconfident(200, 2.0)
    rec = calibration_record(
        logits[:100], y[:100], logits[100:], y[100:], enabled=False, reason="tiny"
    )
    assert rec["temperature"] == 1.0 and not rec["applied"] and rec["note"] == "tiny"
    assert rec["test_ece"]["before"] == rec["test_ece"]["after"]


def test_task_decode_applies_the_temperature_but_never_changes_labels():
    logits = np.array([[2.0, 0.0, -1.0], [0.1, 0.3, 0.2]])
    plain = Task(kind="multiclass", target="y", classes=["a", "b", "c"])
    warm = Task(kind="multiclass", target="y", classes=["a", "b", "c"], temperature=2.0)
    labels, p1 = plain.decode(logits)
    labels2, p2 = warm.decode(logits)
    assert list(labels) == list(labels2) == ["a", "b"]
    assert p2 == pytest.approx(probabilities(logits, 2.0)) and p2[0, 0] < p1[0, 0]
    binary = Task(kind="binary", target="y", classes=[0, 1], temperature=4.0)
    assert binary.decode(np.array([[4.0]]))[1][0, 1] == pytest.approx(1 / (1 + np.exp(-1.0)))
