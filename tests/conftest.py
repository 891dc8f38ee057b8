"""Shared fixtures: fixed seeds, a temporary working folder, small synthetic tables."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seeds_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the same seeds, in its own folder (run folders land there)."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def binary_frame():
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": rng.choice(["red", "green", "blue"], size=64),
            "d": x[:, 2],
            "y": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"),
        }
    )


@pytest.fixture
def regression_frame():
    import pandas as pd

    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": x[:, 2],
            "y": 3 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=64),
        }
    )


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data, or skip with the reason (a user's clone does not have it)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared/data is only present on the project's machines")
    return path


# report=False: building report.html costs ~1 s per run; tests/reports builds and checks reports.
FAST = {"epochs": 2, "progress": "quiet", "report": False}
os.environ.setdefault("DLPIPE_TEST", "1")
