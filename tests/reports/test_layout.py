"""Figures at page width, legends off the data, the worst-errors table and the appendix (issue #20, item 5)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from dlpipe.reports.plots import (
    PAGE_WIDTH,
    actual_vs_predicted_plot,
    legend_covers,
    move_legends_off_data,
    new_figure,
    render,
)
from dlpipe.reports.report import CONTENT_PX, figure_width


def _corners(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Points in every corner, the worst one top-left where the old legend sat."""
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 100, n)
    pred = y + rng.normal(0, 10, n)
    y[:4], pred[:4] = [0, 0, 100, 100], [100, 0, 0, 100]
    return y, pred


def _axes_of(plot_fn, *args):
    """The figure a plot function draws, captured before it is rendered to PNG bytes."""
    import dlpipe.reports.plots as plots

    seen = []
    real = plots.render

    def keep(fig):
        seen.append(fig)
        return real(fig)

    plots.render = keep
    try:
        out = plot_fn(*args)
    finally:
        plots.render = real
    return out, seen[0]


def test_the_check_sees_a_legend_on_points_and_the_renderer_moves_it():
    fig = new_figure(6.0, 4.0)
    ax = fig.subplots()
    ax.scatter([0.05, 0.5], [0.95, 0.5], label="rows")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    assert legend_covers(ax) == 1  # the top-left point is under the legend
    move_legends_off_data(fig)
    assert legend_covers(ax) == 0
    render(fig)  # and the picture is still drawn
    # points in every corner and both sides: no room inside, so the legend goes beside the axes
    fig = new_figure(6.0, 4.0)
    ax = fig.subplots()
    edge = [0.03, 0.5, 0.97]
    ax.scatter([x for x in edge for _ in edge], edge * 3, label="rows")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    move_legends_off_data(fig)
    assert legend_covers(ax) == 0
    renderer = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 > ax.get_window_extent().x1
    # a reference line (identity, chance) is not data: a legend over it stays
    fig = new_figure(6.0, 4.0)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], gid="reference", label="identity")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    assert legend_covers(ax) == 0


def test_actual_vs_predicted_legend_never_covers_a_point():
    y, pred = _corners()
    plot, fig = _axes_of(actual_vs_predicted_plot, y, pred, "price")
    assert plot.ok
    ax = fig.axes[0]
    assert legend_covers(ax) == 0
    legend_box = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend_box.x0 > ax.get_window_extent().x1  # beside the axes, not on them
    assert ax.get_xlabel() == "actual price (target units)"
    assert fig.get_size_inches()[0] == PAGE_WIDTH


def test_figures_are_at_least_sixty_percent_of_the_content_width():
    narrow = render(new_figure(3.0, 2.0))
    wide = render(new_figure(PAGE_WIDTH, 2.0))
    assert figure_width(narrow) == 62.0  # widened
    assert figure_width(wide) == pytest.approx(100 * PAGE_WIDTH * 90 / CONTENT_PX, abs=0.1)


@pytest.mark.slow
def test_report_has_worst_errors_and_an_appendix(make_run):
    path = make_run("regression")
    doc = json.loads((path / "worst_errors.json").read_text())
    assert doc["columns"] == ["a", "b", "c", "d"] and 0 < len(doc["rows"]) <= 20
    errors = [r["score"] for r in doc["rows"]]
    assert errors == sorted(errors, reverse=True)
    assert all(len(r["inputs"]) == 4 for r in doc["rows"])
    page = (path / "report.html").read_text(encoding="utf-8")
    assert "largest errors of" in page and ">Appendix: pictures that say little" in page
    appendix = page[page.index('id="appendix"') :]
    assert (
        'alt="First-layer weights"' in appendix
        and 'alt="Learning rate and time per epoch"' in appendix
    )
    assert "standardised target" in page  # the loss curve's unit
    binary = make_run("binary")
    doc = json.loads((binary / "worst_errors.json").read_text())
    assert all(r["truth"] != r["prediction"] for r in doc["rows"])  # mistakes only


@pytest.mark.slow
def test_saved_bundles_carry_a_model_card_that_loading_never_reads(make_run):
    from dlpipe.bundle.bundle import load_bundle
    from dlpipe.bundle.card import MODEL_CARD

    from .conftest import _frame

    binary = make_run("binary") / "bundle"
    card = (binary / MODEL_CARD).read_text(encoding="utf-8")
    for heading in (
        "## Data",
        "## Metrics on the test split, beside the baselines",
        "## Calibration",
    ):
        assert heading in card
    assert "**roc_auc** (primary)" in card and "baseline: logistic" in card
    assert "Test ECE (top label, 15 bins)" in card
    path = make_run("regression") / "bundle"
    card = (path / MODEL_CARD).read_text(encoding="utf-8")
    assert "## Intended use" in card and "## Limitations" in card
    assert re.search(r"\| 90% \| [0-9.]+ \| [0-9.]+ \|", card)  # interval width and test coverage
    rows = _frame("regression").head(5)
    before = load_bundle(path).predict(rows)["prediction"].to_numpy()
    (path / MODEL_CARD).write_bytes(b"\xff\xfe not text {{ }} <script>")
    assert np.allclose(load_bundle(path).predict(rows)["prediction"].to_numpy(), before)
    (path / MODEL_CARD).unlink()
    assert np.allclose(load_bundle(path).predict(rows)["prediction"].to_numpy(), before)


def test_a_report_removes_only_its_own_pngs_from_plots(tmp_path) -> None:
    """plots/.report-plots lists the PNGs the last report wrote; an edited list naming anything else
    (a path outside plots/, a user's data file) removes nothing."""
    from dlpipe.reports.plots import Plot
    from dlpipe.reports.report import _write_plots

    run = tmp_path / "run"
    plots = run / "plots"
    plots.mkdir(parents=True)
    victim, mine, users = tmp_path / "data.csv", plots / "roc.png", plots / "my_notes.png"
    victim.write_text("a,b\n1,2\n", encoding="utf-8")
    users.write_bytes(b"the user's picture")
    mine.write_bytes(b"old")
    (plots / ".report-plots").write_text(f"roc.png\n../../data.csv\n{victim}\n", encoding="utf-8")
    _write_plots(plots, [Plot(name="loss", title="Loss", png=b"new")])
    assert victim.read_text(encoding="utf-8") == "a,b\n1,2\n"  # outside plots/: untouched
    assert users.read_bytes() == b"the user's picture"  # not in the list: untouched
    assert not mine.exists() and (plots / "loss.png").read_bytes() == b"new"
    assert (plots / ".report-plots").read_text(encoding="utf-8").split() == ["loss.png"]
