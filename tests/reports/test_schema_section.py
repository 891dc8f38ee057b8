"""The report's Data section shows the column table `dlpipe train` prints: kind and why per column."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd


def test_data_section_shows_each_columns_kind_and_reason(tmp_path):
    import dlpipe as dl

    rng = np.random.default_rng(0)
    n = 48
    frame = pd.DataFrame(
        {
            "row_id": np.arange(n),
            "year": np.tile([2007, 2008, 2009], n // 3),
            "island": rng.choice(["Biscoe", "Dream"], n),
            "mass": rng.normal(4200, 600, n),
        }
    )
    frame["y"] = np.where(frame["mass"] > 4200, "big", "small")
    run = dl.train(frame, "y", epochs=1, progress="quiet", out=tmp_path / "run")
    page = html.unescape((run.path / "report.html").read_text(encoding="utf-8"))
    for text in (
        "integers, 3 distinct values over 48 rows",
        "text, 2 values",
        "ID-like (one value per row)",
        "3 input columns and their inferred kinds, 1 dropped",
    ):
        assert text in page, text
