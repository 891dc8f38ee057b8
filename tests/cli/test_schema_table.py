"""`dlpipe train` prints each column's inferred kind and why, in one table (issue #17, item 4)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from dlpipe.cli import main


def _penguins(n: int = 48) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mass = rng.normal(4200, 600, n)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "year": np.tile([2007, 2008, 2009], n // 3),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
            "mass": mass,
            "species": np.where(mass > 4200, "Gentoo", "Adelie"),
        }
    )


def test_train_prints_the_column_table_with_reasons(tmp_path, capsys):
    _penguins().to_csv(tmp_path / "penguins.csv", index=False)
    args = ["train", str(tmp_path / "penguins.csv"), "-t", "species", "--epochs", "1", "-q"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    lines = [re.sub(r"\s{2,}", " | ", line.strip()) for line in out.splitlines()]
    start = lines.index("columns (target 'species')")
    assert lines[start + 1 : start + 6] == [
        "column | kind | why",
        "year | numeric | integers, 3 distinct values over 48 rows",
        "island | categorical | text, 3 values",
        "mass | numeric | numbers, 48 distinct values over 48 rows",
        "id | dropped | ID-like (one value per row)",
    ]
    assert out.index("columns (target") < out.index("run folder:")


def test_a_column_listed_as_categorical_says_so(tmp_path, capsys):
    _penguins().drop(columns="id").to_csv(tmp_path / "p.csv", index=False)
    args = ["train", str(tmp_path / "p.csv"), "-t", "species", "--epochs", "1", "-q"]
    assert main([*args, "--categorical", "year", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"year\s+categorical\s+listed under `categorical`, 3 distinct values", out)
