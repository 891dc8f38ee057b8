"""A small real table bundle (numeric with gaps, one-hot and embedded categories, a boolean), trained once."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest


def deploy_frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    income = rng.normal(50, 20, n)
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "city": rng.choice(["Seoul", "Paris", "Lima"], n),
            "shop": rng.choice([f"s{i:02d}" for i in range(30)], n),  # > max_onehot: embedded
            "member": rng.choice([True, False], n),
        }
    )
    frame.loc[::11, "income"] = np.nan
    frame["y"] = np.where(age + np.nan_to_num(income, nan=50) / 2 > 65, "yes", "no")
    return frame


@pytest.fixture(scope="session")
def table_bundle(tmp_path_factory):
    import dlpipe as dl

    root = tmp_path_factory.mktemp("serving")
    # no report: the serving tests read the bundle only (a table run's report is tested in tests/reports/)
    run = dl.train(deploy_frame(), "y", epochs=3, progress="quiet", out=root / "run", report=False)
    return run.path / "bundle"


@pytest.fixture(scope="session")
def rows():
    frame = deploy_frame().drop(columns="y").head(6)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.fixture(scope="session")
def make_client():
    """make_client(app) -> a TestClient (imported quietly: starlette deprecates its httpx-based client)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient
