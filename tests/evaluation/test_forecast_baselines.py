"""ETS baseline forecasts read from one smoothing pass equal statsmodels' per-window forecasts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dlpipe.evaluation.forecast_baselines import ets_forecasts, ets_paths

pytest.importorskip("statsmodels")
from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # noqa: E402

CONFIGS = [
    {"trend": None},
    {"trend": "add"},
    {"trend": "add", "damped_trend": True},
    {"trend": None, "seasonal": "add", "seasonal_periods": 7},
    {"trend": "add", "damped_trend": True, "seasonal": "add", "seasonal_periods": 7},
]


def _series(n: int = 90) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(0)
    return 10 + 0.3 * t + 3 * np.sin(2 * np.pi * t / 7) + rng.normal(size=n)


def _per_window(y, origins, horizon, config, params):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for o in origins:  # what the baseline did before: a results object per window
            model = ETSModel(y[:o], error="add", **config)
            out.append(np.asarray(model.smooth(params).forecast(horizon)))
    return np.array(out)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_paths_from_one_pass_equal_statsmodels_forecast_per_window(config):
    y = _series()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = ETSModel(y[:40], error="add", **config).fit(disp=False).params
    origins = np.array([40, 41, 55, 70, 84])
    got = ets_paths(y[: origins.max()], origins, 6, config, params)
    assert got is not None and got.shape == (5, 6)
    np.testing.assert_allclose(got, _per_window(y, origins, 6, config, params), atol=1e-9)


def test_ets_forecasts_choose_once_and_forecast_every_origin():
    y = _series(120)[:, None]
    origins = np.arange(60, 115)
    fc = ets_forecasts(y, origins, 6, period=7)
    assert fc.shape == (55, 6, 1) and np.isfinite(fc).all()
    # a season of 7 is found: the forecasts track the sine better than the last value does
    truth = np.stack([y[o : o + 6, 0] for o in origins])
    naive = np.repeat(y[origins - 1], 6, axis=1)
    assert np.abs(fc[:, :, 0] - truth).mean() < 0.6 * np.abs(naive - truth).mean()
    # a constant series has no ETS: the naive forecast stands
    flat = ets_forecasts(np.ones((30, 1)), np.array([20, 25]), 3, period=None)
    assert (flat == 1.0).all()
