"""Real headless Chromium opens the report and the comparison page from disk (make test installs it)."""

from pathlib import Path

import pytest

from dlpipe.reports import build_report, compare_runs

from .chromium import Chromium, chromium_path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_path() is None,
        reason="chromium is not installed; `make services` (scripts/test-services.sh) installs it",
    ),
]


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


def _assert_clean(result: dict, min_images: int) -> None:
    assert result["console_errors"] == [] and result["exceptions"] == []
    assert result["broken_images"] == [] and result["images"] >= min_images
    assert result["off_machine"] == [] and result["failed"] == []


def test_reports_open_cleanly_in_chromium(make_run, browser):
    for kind in ("binary", "regression"):
        path = make_run(kind)
        result = browser.inspect(path / "report.html", ARTIFACTS / f"report-{kind}.png")
        _assert_clean(result, min_images=6)
        assert result["title"].startswith("dlpipe report")
        assert (ARTIFACTS / f"report-{kind}.png").stat().st_size > 20_000


def test_incomplete_run_and_comparison_open_cleanly(make_run, browser):
    a, b = make_run("binary"), make_run("multiclass")
    (a / "predictions.csv").unlink()
    result = browser.inspect(build_report(a), ARTIFACTS / "report-incomplete.png")
    _assert_clean(result, min_images=3)
    page = compare_runs([a, b], ARTIFACTS / "compare.html")
    result = browser.inspect(page, ARTIFACTS / "compare.png")
    _assert_clean(result, min_images=2)


def test_the_checker_sees_broken_images_and_script_errors(tmp_path, browser):
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="missing.png" alt="gone"><script>console.error("boom"); undefinedFn();</script></body></html>'
    )
    result = browser.inspect(page)
    assert result["broken_images"] == ["gone"]
    assert any("boom" in e for e in result["console_errors"]) and result["exceptions"]
