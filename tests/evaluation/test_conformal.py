"""Split-conformal intervals (dlpipe.evaluation.conformal)."""

import numpy as np
import pytest

from dlpipe.evaluation.conformal import conformal_half_widths, interval_columns, interval_coverage


def test_half_width_is_the_conformal_order_statistic():
    r = np.arange(1.0, 20.0)  # n = 19
    # ceil(20 * 0.8) = 16th smallest, ceil(20 * 0.95) = 19th
    assert conformal_half_widths(-r, [0.8, 0.95]) == [16.0, 19.0]


def test_too_few_rows_for_a_level_gives_no_interval():
    assert conformal_half_widths(np.ones(10), [0.8, 0.95]) == [1.0, None]


def test_coverage_on_exchangeable_rows_is_close_to_the_level():
    rng = np.random.default_rng(0)
    resid_val, resid_test = rng.standard_t(3, 2000), rng.standard_t(3, 20000)
    widths = conformal_half_widths(resid_val, [0.8, 0.9, 0.95])
    cover = interval_coverage(resid_test, np.zeros(20000), widths)
    assert cover == pytest.approx([0.8, 0.9, 0.95], abs=0.015)


def test_interval_columns_skip_levels_without_a_width():
    cols = interval_columns(
        np.array([1.0, 2.0]), {"levels": [0.8, 0.95], "half_widths": [0.5, None]}
    )
    assert list(cols) == ["lower_80", "upper_80"]
    assert cols["lower_80"].tolist() == [0.5, 1.5] and cols["upper_80"].tolist() == [1.5, 2.5]
    assert interval_columns(np.array(["a"]), {}) == {}
