"""Small real runs (trained once per session) that the report tests read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _frame(kind: str, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4))
    frame = pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": rng.choice(["red", "green", "blue"], size=n),
            "d": x[:, 2],
        }
    )
    if kind == "binary":
        frame["y"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    elif kind == "multiclass":
        frame["y"] = np.array(["low", "mid", "high"])[np.digitize(x[:, 0], [-0.5, 0.5])]
    else:
        frame["y"] = 3 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=n)
    return frame


@pytest.fixture(scope="session")
def make_run(tmp_path_factory):
    """make_run(kind) -> a fresh copy of a saved run folder of that kind (trained once per module)."""
    import dlpipe as dl

    cache: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("runs")

    def make(kind: str = "binary", report: bool = True) -> Path:
        key = f"{kind}-{report}"
        if key not in cache:
            run = dl.train(_frame(kind), "y", epochs=3, progress="quiet", save=False)
            cache[key] = run.save(root / key, report=report)
        copy = root / f"copy-{len(list(root.iterdir()))}"
        shutil.copytree(cache[key], copy)
        return copy

    return make
