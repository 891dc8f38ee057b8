"""MODEL_CARD.md (bundle/card.py): user names cannot inject markup, any manifest gives a card
(issue #20, item 5). The card of a real saved bundle, and that loading never reads it, are checked in
tests/reports/test_layout.py on the report tests' runs (no training here)."""

from __future__ import annotations

import re

from dlpipe.bundle.card import model_card

HOSTILE = "</script><img src=x onerror=alert(1)>|`x`\nnext"


def _outside_code(text: str) -> str:
    """The card with fenced blocks and code spans removed: what a Markdown renderer would interpret."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def test_user_names_stay_inside_code_spans():
    manifest = {
        "kind": "table",
        "task": {
            "kind": "binary",
            "target": HOSTILE,
            "classes": [HOSTILE, "no"],
            "class_counts": [3, 9],
        },
        "preprocessor": {
            "schema": {
                "columns": [{"name": HOSTILE, "kind": "numeric"}],
                "dropped": [[HOSTILE, HOSTILE]],
            }
        },
        "card": {
            "rows": {"train": 10, "val": 2, "test": 3},
            "primary_metric": "roc_auc",
            "model": {"roc_auc": 0.9},
            "baselines": {HOSTILE: {"roc_auc": 0.5}},
            "verdict": HOSTILE,
            "calibration": {"temperature": 1.0, "note": HOSTILE},
        },
    }
    card = model_card(manifest)
    assert card.count("onerror") >= 5  # every place names it ...
    bare = _outside_code(card)
    assert "<" not in bare.replace("&lt;", "")  # ... but never where Markdown reads HTML
    assert (
        "next" not in card.split("## Model")[0].split("\n", 1)[1]
    )  # a newline in a name cannot start a line
    table = [ln for ln in card.splitlines() if ln.startswith("| **roc_auc**")][0]
    assert (
        len(re.findall(r"(?<!\\)\|", table)) == 4
    )  # the pipe in the baseline's name does not add a column


def test_a_bare_manifest_still_gives_a_card():
    card = model_card({"kind": "rl", "versions": {"dlpipe": "0"}})
    assert "No test scores were recorded" in card and "## Limitations" in card
    assert "Not applicable" in card


def test_a_forecast_card_gives_its_intervals_and_their_coverage():
    manifest = {
        "kind": "series",
        "task": {"kind": "forecast", "target": "y"},
        "preprocessor": {
            "interval_quantiles": {"80": [[2.1], [2.7]], "95": [[2.6], [3.1]]},
            "interval_scale": "window_step",
        },
        "metrics": {"test": {"model": {"coverage_80": 0.79, "coverage_95": 0.94, "windows": 12}}},
    }
    text = model_card(manifest)
    section = text.split("## Prediction intervals")[1].split("## Intended use")[0]
    assert "| 80% | 0.79 |" in section and "| 95% | 0.94 |" in section
    assert "12 test windows" in section and "Not applicable" not in section
