"""Tiny synthetic documents (three topics, 60 rows) and one trained text run shared by a module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tokenizers  # noqa: F401  (installed by `make test`: a missing install fails, it is not skipped)

TOPICS = {
    "sport": "ball goal team match score player coach league win".split(),
    "money": "bank stock price market share profit loss trade dollar".split(),
    "food": "bread cheese apple soup cook taste dinner salad sugar".split(),
}
COMMON = "the a of and to in is it that with for on".split()


def documents(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = list(TOPICS)[i % 3]
        words = rng.choice(TOPICS[label] + COMMON, size=int(rng.integers(8, 25)))
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def write_folder(root: Path, frame: pd.DataFrame) -> Path:
    for i, row in frame.iterrows():
        d = root / str(row["label"])
        d.mkdir(parents=True, exist_ok=True)
        (d / f"doc{i}.txt").write_text(str(row["text"]), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory):
    import dlpipe as dl

    root = tmp_path_factory.mktemp("textrun")
    frame = documents(60)
    frame.loc[0, "text"] = "<script>alert('x')</script> " + frame.loc[0, "text"]
    frame.to_csv(root / "docs.csv", index=False)
    run = dl.train(str(root / "docs.csv"), out=root / "run", epochs=3, progress="quiet", seed=0)
    return run, root / "run"
