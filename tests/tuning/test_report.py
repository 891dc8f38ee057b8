"""The tuning run's report: trials table, optimisation history and parameter importances, opened in real headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidInputError
from dlpipe.tuning import tune
from dlpipe.tuning.report import build_tuning_report
from tests.reports.chromium import Chromium, chromium_path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SMALL = {
    "n_layers": {"low": 1, "high": 2},
    "units": {"low": 16, "high": 64, "step": 16},
    "learning_rate": {"low": 1e-3, "high": 1e-1, "log": True},
    "batch_size": [16, 32],
}

# what a reader sees: the section headings, the trials table's rows and the notes, read from the live DOM
_PROBE = """JSON.stringify({
  headings: [...document.querySelectorAll('section h2')].map(h => h.textContent.trim()),
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  trialRows: [...document.querySelectorAll('#trials tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim())),
  trialHead: [...document.querySelectorAll('#trials thead th')].map(c => c.textContent.trim()),
  figures: [...document.querySelectorAll('section figure img')].map(i => [i.closest('section').id, i.alt, i.naturalWidth]),
  notes: [...document.querySelectorAll('.note')].map(n => n.textContent.trim()),
})"""


def _read_in_browser(browser: Chromium, page: Path, shot: Path) -> dict[str, Any]:
    result = browser.inspect(
        page, shot
    )  # console errors, broken images, requests, full-page screenshot
    cdp = browser.cdp
    target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    start = len(cdp.events)
    cdp.send("Page.enable", session=session)
    cdp.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    cdp.wait_event("Page.loadEventFired", session=session, since=start, timeout=60)
    dom = json.loads(
        cdp.send(
            "Runtime.evaluate", {"expression": _PROBE, "returnByValue": True}, session=session
        )["result"]["value"]
    )
    cdp.send("Target.closeTarget", {"targetId": target})
    return {**result, **dom}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Two small real studies: one with enough complete trials for importances, one with a single trial."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)]).assign(y=y)
    root = tmp_path_factory.mktemp("tuning-reports")
    full = tune(
        frame,
        "y",
        trials=5,
        space=SMALL,
        pruner="none",
        out=root / "full",
        epochs=3,
        progress="quiet",
        retrain=False,
    )
    one = tune(
        frame,
        "y",
        trials=1,
        space=SMALL,
        out=root / "one",
        epochs=2,
        progress="quiet",
        retrain=False,
    )
    return full, one


@pytest.mark.slow
def test_the_tuning_folder_gets_a_report_with_trials_history_and_importances(studies):
    full, one = studies
    assert full.report == full.path / "report.html" and full.report.is_file()
    html = full.report.read_text(encoding="utf-8")
    for title in ("Trials", "Optimisation history", "Parameter importances", "Search space"):
        assert f">{title}</h2>" in html
    assert set(json.loads((full.path / "tuning.json").read_text())["importances"]) >= {
        "learning_rate",
        "batch_size",
    }
    curves = pd.read_csv(full.path / "intermediate.csv")
    assert (
        sorted(curves["number"].unique()) == [0, 1, 2, 3, 4] and curves["epoch"].max() == 3
    )  # epochs 1..3 of every trial
    for name in ("tuning_history", "tuning_curves", "tuning_importances"):
        assert (full.path / "plots" / f"{name}.png").stat().st_size > 5_000
    # `dlpipe report <tuning folder>` rebuilds the page from the folder alone
    full.report.unlink()
    assert main(["report", str(full.path)]) == 0 and ">Trials</h2>" in full.report.read_text(
        encoding="utf-8"
    )
    # one complete trial: the importances section says why it is empty instead of failing
    page = one.report.read_text(encoding="utf-8")
    assert "parameter importances need at least 2 complete trials and this study has 1" in page
    assert "tuning_importances.png" not in [p.name for p in (one.path / "plots").iterdir()]


def test_a_folder_that_is_not_a_tuning_run_is_one_sentence(tmp_path):
    with pytest.raises(
        InvalidInputError,
        match=r"is not a tuning run folder \(it needs tuning.json and trials.csv\); pass the folder",
    ):
        build_tuning_report(tmp_path)


@pytest.mark.service
@pytest.mark.slow
@pytest.mark.skipif(
    chromium_path() is None,
    reason="chromium is not installed; `make services` (scripts/test-services.sh) installs it",
)
def test_the_tuning_report_reads_right_in_chromium(studies):
    full, one = studies
    with Chromium() as browser:
        seen = _read_in_browser(browser, full.report, ARTIFACTS / "tuning-report.png")
        assert (
            seen["console_errors"] == []
            and seen["exceptions"] == []
            and seen["broken_images"] == []
        )
        assert (
            seen["off_machine"] == []
            and seen["failed"] == []
            and seen["title"] == f"dlpipe tuning report · {full.path.name}"
        )
        assert seen["sections"] == ["summary", "trials", "history", "importances", "space"]
        assert seen["trialHead"] == [
            "trial",
            "state",
            "val_loss",
            "val accuracy",
            "epochs",
            "duration s",
            "parameters",
        ]
        rows = seen["trialRows"]
        assert [r[0].split()[0] for r in rows] == ["0", "1", "2", "3", "4"] and rows[0][
            0
        ].startswith("0 (default)")
        assert all(r[1] == "complete" for r in rows) and all(
            r[6].startswith("hidden ") and "learning_rate" in r[6] for r in rows
        )
        assert sum("★" in r[0] for r in rows) == 1 and all(
            float(r[5]) > 0 for r in rows
        )  # the best is starred; durations are real
        drawn = {(section, alt) for section, alt, width in seen["figures"] if width > 100}
        assert drawn >= {
            ("history", "Optimisation history"),
            ("history", "Validation loss per epoch, every trial"),
            ("importances", "Parameter importances"),
        }
        few = _read_in_browser(browser, one.report, ARTIFACTS / "tuning-report-one-trial.png")
        assert (
            few["console_errors"] == []
            and few["broken_images"] == []
            and "importances" in few["sections"]
        )
        assert any("need at least 2 complete trials" in n for n in few["notes"])
        assert ("importances", "Parameter importances") not in {
            (s, a) for s, a, _ in few["figures"]
        }
