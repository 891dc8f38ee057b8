import json
import re
import shutil

import pytest

from dlpipe.cli import main
from dlpipe.core.errors import InvalidInputError
from dlpipe.reports import Section, build_report, register_section
from dlpipe.reports import sections as sections_mod


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]*)"', html)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind,expected",
    [
        (
            "binary",
            {
                "class_balance",
                "history",
                "history_lr_time",
                "model_diagram",
                "first_layer_weights",
                "confusion_matrix",
                "roc",
                "precision_recall",
                "calibration",
            },
        ),
        (
            "multiclass",
            {
                "class_balance",
                "confusion_matrix",
                "roc",
                "precision_recall",
                "calibration",
                "first_layer_weights",
            },
        ),
        (
            "regression",
            {"target_distribution", "history", "model_diagram", "actual_vs_predicted", "residuals"},
        ),
    ],
)
def test_train_writes_a_self_contained_report(make_run, kind, expected):
    path = make_run(kind)
    page = (path / "report.html").read_text(encoding="utf-8")
    written = {p.stem for p in (path / "plots").glob("*.png")}
    assert expected <= written
    assert len(_images(page)) == len(written)  # every PNG is also inline
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    assert "<script" not in page
    for section in (
        "Model vs baselines",
        "Data",
        "Model",
        "Training",
        "Evaluation on the test split",
        "Environment",
    ):
        assert f">{section}" in page
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["test"]["verdict"].split(":")[0] in page
    assert (path / "predictions.csv").read_text().splitlines()[0].startswith("y_true,prediction")
    # how to reproduce: this run was made from Python with a DataFrame, so the page gives the dl.train call
    # with the resolved config (a DataFrame cannot be named on a command line)
    assert "dl.train(train_data" in page and "config.yaml" in page and "dlpipe train" not in page


@pytest.mark.slow
def test_rebuild_from_the_folder_alone_matches(make_run, capsys):
    path = make_run("binary")
    (path / "report.html").unlink()
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"report: {path / 'report.html'}"
    assert (path / "report.html").stat().st_size > 10_000


def test_not_a_run_folder_says_what_a_run_holds(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(
        InvalidInputError,
        match="holds none of a run's files.*metrics.json, history.csv, config.yaml and bundle/",
    ):
        build_report(tmp_path)
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_interrupted_run_reports_what_exists(make_run):
    path = make_run("binary", report=False)
    for part in ("metrics.json", "predictions.csv"):
        (path / part).unlink()
    shutil.rmtree(path / "bundle")
    page = build_report(path).read_text(encoding="utf-8")
    assert "lacks metrics.json" in page and "missing: no test metrics" in page
    assert "missing: bundle/ is absent" in page
    assert (path / "plots" / "history.png").is_file()  # what exists is still drawn


def test_history_only_folder(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.9\n")
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "missing: config.yaml" in page and "missing: rows per split" in page


@pytest.mark.slow
def test_single_class_and_one_row_test_split_skip_plots_with_a_note(make_run):
    path = make_run("binary", report=False)
    lines = (path / "predictions.csv").read_text().splitlines()
    header, rows = lines[0], [r for r in lines[1:] if r.startswith("yes,")]
    (path / "predictions.csv").write_text("\n".join([header, *rows]) + "\n")
    page = build_report(path).read_text(encoding="utf-8")
    assert "ROC curve</strong> not drawn: the test split holds a single class (yes)" in page
    assert not (path / "plots" / "roc.png").exists()
    (path / "predictions.csv").write_text("\n".join([header, rows[0]]) + "\n")
    page = build_report(path).read_text(encoding="utf-8")
    assert "the test split has 1 row(s)" in page
    assert (path / "plots" / "confusion_matrix.png").is_file()


@pytest.mark.slow
def test_one_row_regression(make_run):
    path = make_run("regression", report=False)
    lines = (path / "predictions.csv").read_text().splitlines()
    (path / "predictions.csv").write_text("\n".join(lines[:2]) + "\n")
    page = build_report(path).read_text(encoding="utf-8")
    assert "Residuals</strong> not drawn: the test split has 1 row(s)" in page
    assert (path / "plots" / "actual_vs_predicted.png").is_file()


@pytest.mark.slow
def test_sections_hook_and_foreign_pictures(make_run, monkeypatch):
    monkeypatch.setattr(sections_mod, "_PROVIDERS", {})
    path = make_run("binary", report=False)
    (path / "plots").mkdir()
    (path / "plots" / "samples.png").write_bytes(_tiny_png())
    register_section("*", lambda run: Section("extra", "Extra things").text(f"kind is {run.kind}"))
    register_section("table", "json:does_not_exist")
    page = build_report(path).read_text(encoding="utf-8")
    assert "kind is table" in page
    assert "this section could not be built (AttributeError" in page
    assert 'alt="samples"' in page  # a PNG another part of dlpipe put in plots/ is shown
    build_report(path)
    assert (path / "plots" / "samples.png").is_file()  # and never deleted by a rebuild


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_image_run_report_shows_test_images_and_mistakes(tmp_path):
    import numpy as np

    import dlpipe as dl

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=90)
    images = (rng.random((90, 8, 8)) * 60).astype(np.uint8)
    for i, c in enumerate(labels):  # a bright stripe whose row tells the class
        images[i, 2 + 2 * c] = 250
    np.savez(tmp_path / "stripes.npz", images=images, labels=labels)
    run = dl.train(str(tmp_path / "stripes.npz"), epochs=2, progress="quiet", out=tmp_path / "run")
    page = (run.path / "report.html").read_text(encoding="utf-8")
    assert "Test images" in page and "test images, the classes in turn" in page
    with np.load(run.path / "test_images.npz") as z:  # the grid takes the classes in turn
        shown = z["y_true"][: int(z["n_first"])]
    assert sorted(shown[:3].tolist()) == [0, 1, 2] and len(set(shown.tolist())) == 3
    assert (run.path / "plots" / "test_images.png").is_file() and (
        run.path / "plots" / "roc.png"
    ).is_file()
    assert re.search(
        r"\(N, \d+, 8, 8\)", page
    )  # the layer table knows the conv layers' output shapes


def test_forecast_span_from_metrics_alone(tmp_path):
    test_forecast = {
        "time": list(range(5)),
        "targets": {
            "y": {
                "true": [[1.0], [2.0], [3.0], [4.0], [5.0]],
                "pred": [[1.1], [2.1], [2.9], [4.2], [5.1]],
                "naive": [[0.0], [1.0], [2.0], [3.0], [4.0]],
            }
        },
    }
    metrics = {
        "task": "forecast",
        "test": {
            "primary_metric": "mase",
            "model": {"mae": 0.12, "mase": 0.12},
            "baselines": {"naive": {"mae": 1.0, "mase": 1.0}},
            "verdict": "The model beats the naive forecast.",
        },
        "test_forecast": test_forecast,
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "Forecast: the series" in page and (tmp_path / "plots" / "forecast_y.png").is_file()
    assert "lacks predictions.csv" not in page  # a forecast run has no predictions.csv to miss
    assert ">Evaluation on the test split<" not in page  # empty sections are left out


def test_verdict_section_shows_cost_and_says_tree_baselines_are_run_only():
    from dlpipe.reports.report import _scores_table, verdict_tone

    test = {
        "primary_metric": "roc_auc",
        "model": {"roc_auc": 0.9, "accuracy": 0.8},
        "baselines": {"logistic": {"roc_auc": 0.85, "accuracy": 0.82}},
        "cost_s": {"model": 1.5, "logistic": 0.01},
    }
    table = _scores_table(test)
    assert table.columns[-1] == "cost (s)" and table.columns[1] == "roc_auc ★"
    assert table.rows[0][-1] == 1.5 and table.rows[1][-1] == 0.01
    # the tone follows the primary metric's outcome, said first
    assert verdict_tone("The model beats x on roc_auc; but it loses to x on accuracy.") == "good"
    assert verdict_tone("The model loses to x on roc_auc; but it beats x on accuracy.") == "bad"
