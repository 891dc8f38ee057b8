"""Drift per feature: KS (numeric), chi-square (categorical, boolean), PSI; CLI table and HTML page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.monitoring import detect_drift


def _frame(
    n: int = 300, shift: float = 0.0, seed: int = 0, cities=("Seoul", "Paris", "Lima"), p=None
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + shift
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "city": rng.choice(list(cities), n, p=p),
            "flag": rng.choice([True, False], n),
            "y": np.where(x > shift, "a", "b"),
        }
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    run = dl.train(_frame(), "y", epochs=1, progress="quiet", save=False)
    return run.bundle


def test_reference_statistics_carry_a_bounded_sample(bundle):
    ref = bundle.manifest["reference_statistics"]
    assert 0 < len(ref["x"]["sample"]) <= 500
    assert "frequencies" in ref["city"]


def test_same_distribution_does_not_drift(bundle):
    report = detect_drift(bundle, _frame(seed=1))
    assert report.drifted == []
    assert {f.feature: f.test for f in report.features} == {
        "x": "ks",
        "z": "ks",
        "city": "chi2",
        "flag": "chi2",
    }
    assert all(f.psi < 0.2 for f in report.features)  # sampling noise of 300 rows over 10 bins


def test_shifted_numeric_and_categorical_features_drift(bundle):
    new = _frame(seed=2, shift=1.0, p=[0.8, 0.1, 0.1])
    report = detect_drift(bundle, new, level=0.01)
    assert set(report.drifted) == {"x", "city"}
    x = next(f for f in report.features if f.feature == "x")
    assert x.p_value < 1e-6 and x.psi > 0.25


def test_unseen_category_counts_as_drift(bundle):
    new = _frame(seed=3, cities=("Seoul", "Mars"))
    report = detect_drift(bundle, new)
    city = next(f for f in report.features if f.feature == "city")
    assert city.drifted and "<unseen>" in city.bins


def test_ks_against_quantile_bins_when_no_sample():
    ref = {
        "x": {
            "kind": "numeric",
            "count": 100,
            "missing": 0.0,
            "bin_edges": [-3.0, -1.0, 0.0, 1.0, 3.0],
            "bin_counts": [16, 34, 34, 16],
        }
    }
    rng = np.random.default_rng(0)
    assert detect_drift(ref, pd.DataFrame({"x": rng.normal(size=200)})).drifted == []
    assert detect_drift(ref, pd.DataFrame({"x": rng.normal(size=200) + 1})).drifted == ["x"]


def test_bad_input(bundle):
    with pytest.raises(InvalidInputError, match="missing the columns city"):
        detect_drift(bundle, _frame().drop(columns="city"))
    with pytest.raises(InvalidConfigError, match="`level` is 2"):
        detect_drift(bundle, _frame(), level=2)


def test_cli_table_and_html(bundle, tmp_path, capsys):
    from dlpipe.cli import main

    bundle.save(tmp_path / "b")
    _frame(seed=4, shift=1.5).to_csv(tmp_path / "new.csv", index=False)
    assert (
        main(
            [
                "drift",
                str(tmp_path / "b"),
                str(tmp_path / "new.csv"),
                "-o",
                str(tmp_path / "drift.html"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "x                       numeric      ks" in out
        and "YES" in out
        and "features drifted: x" in out
    )
    page = (tmp_path / "drift.html").read_text()
    assert page.count("<img") == 4 and "data:image/png;base64," in page


def test_psi_above_the_large_shift_line_is_drift_even_when_the_test_is_not_significant(bundle):
    """Issue #20: 'no feature drifted' was printed beside PSI 0.32 and 0.27, above the page's own
    'large shift' line (0.25)."""
    report = detect_drift(bundle, _frame(30, shift=0.4, seed=2))
    x = next(f for f in report.features if f.feature == "x")
    assert x.p_value > 0.05 and x.psi > 0.25  # KS cannot tell from 30 rows; PSI says large
    assert x.drifted and x.reason == "psi"
    assert all(f.drifted for f in report.features if f.psi > 0.25)
    text = report.to_text()
    assert "no feature drifted" not in text and "x" in report.drifted and "YES (psi)" in text


def test_too_small_a_sample_is_said(bundle, tmp_path, capsys):
    from dlpipe.cli import main

    small = detect_drift(bundle, _frame(30, seed=5))
    assert small.small_sample and small.rows_needed == 90
    note = small.small_sample_note()
    assert note is not None and note.startswith("30 rows are too few to judge drift")
    assert note in small.to_text() and small.to_dict()["small_sample"] is True
    assert "too few to judge" in small.to_html()
    big = detect_drift(bundle, _frame(300, seed=1))
    assert not big.small_sample and big.small_sample_note() is None
    assert "too few" not in big.to_text() and big.to_dict()["note"] is None
    bundle.save(tmp_path / "b")
    _frame(30, seed=5).to_csv(tmp_path / "few.csv", index=False)
    assert main(["drift", str(tmp_path / "b"), str(tmp_path / "few.csv")]) == 0
    assert "compare at least 90 rows" in capsys.readouterr().out
