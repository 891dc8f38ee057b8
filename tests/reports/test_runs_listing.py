"""`dlpipe runs` and `dlpipe compare` read each metric's direction (issue #16, item 5).

Real tiny run folders (a classifier, a regressor, a forecaster) are trained once; copies of them
with hand-edited metrics.json pin the cases: lower-is-better metrics (MASE, MAE, log loss,
reconstruction error) pick the lowest baseline and mark the model ✓ only when it is lower, a tie
is "=" (not a win), a null score is "-", and a comparison of runs scored on different test data
says so instead of "share every setting".
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{kind: run folder} for a binary classifier, a regressor and a forecaster, each one epoch on tiny data."""
    root = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3))
    table = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    out = {}
    cls = table.assign(y=np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"))
    out["binary"] = dl.train(cls, "y", epochs=1, progress="quiet", save=False).save(
        root / "binary", report=False
    )
    reg = table.assign(y=3 * x[:, 0] - x[:, 1])
    out["regression"] = dl.train(reg, "y", epochs=1, progress="quiet", save=False).save(
        root / "regression", report=False
    )
    t = np.arange(60.0)
    series = {"y": 10 + 0.2 * t + np.sin(2 * np.pi * t / 6)}
    out["forecast"] = dl.train(
        series, "y", task="forecast", lookback=6, epochs=1, progress="quiet", save=False
    ).save(root / "forecast", report=False)
    return out


@pytest.fixture
def runs_dir(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    return d


def _copy(src: Path, runs_dir: Path, name: str, edit=None) -> Path:
    """A copy of a run folder; ``edit(metrics)`` changes its metrics.json in place (written as strict JSON)."""
    dst = runs_dir / name
    shutil.copytree(src, dst)
    if edit is not None:
        m = json.loads((dst / "metrics.json").read_text(encoding="utf-8"))
        edit(m)
        (dst / "metrics.json").write_text(json.dumps(m, allow_nan=False), encoding="utf-8")
    return dst


def _set_test(primary, model, baselines):
    def edit(m):
        m["test"].update(
            primary_metric=primary,
            model={**m["test"]["model"], **model},
            baselines={k: {**m["test"]["baselines"].get(k, {}), **v} for k, v in baselines.items()},
        )

    return edit


def _rows(runs_dir):
    return {r["name"]: r for r in dl.list_runs(runs_dir)}


# ------------------------------------------------------------------------------------ dlpipe runs
def test_real_forecast_run_is_ranked_by_lowest_baseline(trained, runs_dir):
    _copy(trained["forecast"], runs_dir, "fc")
    m = json.loads((runs_dir / "fc" / "metrics.json").read_text(encoding="utf-8"))
    base = {k: v["mase"] for k, v in m["test"]["baselines"].items() if v.get("mase") is not None}
    lowest = min(base, key=base.__getitem__)
    row = _rows(runs_dir)["fc"]
    assert row["task"] == "forecast" and row["metric"] == "mase"
    assert row["baseline"] == f"{lowest} {base[lowest]:.4f}"
    model = m["test"]["model"]["mase"]
    assert row["beats_baseline"] == (model < base[lowest] - 1e-9)
    assert row["direction"] == "min" and row["baseline_name"] == lowest


def test_forecast_that_beats_every_baseline_on_mase_is_marked_better(trained, runs_dir, capsys):
    _copy(
        trained["forecast"],
        runs_dir,
        "fc",
        _set_test(
            "mase",
            {"mase": 0.5},
            {
                "naive": {"mase": 1.0},
                "seasonal_naive": {"mase": 0.7},
                "moving_average": {"mase": 1.3},
            },
        ),
    )
    row = _rows(runs_dir)["fc"]
    assert row["baseline"] == "seasonal_naive 0.7000"  # the best (lowest), not the worst (1.3)
    assert row["vs_baseline"] == "better" and row["beats_baseline"] is True
    assert main(["runs", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("fc "))
    assert (
        "mase ↓" in line
        and "0.5000 ✓" in line
        and "seasonal_naive 0.7000" in line
        and "naive 1.0000" not in line
    )


def test_forecast_worse_than_its_best_baseline_is_marked_worse(trained, runs_dir, capsys):
    _copy(
        trained["forecast"],
        runs_dir,
        "fc",
        _set_test(
            "mase",
            {"mase": 0.95},
            {
                "naive": {"mase": 1.0},
                "seasonal_naive": {"mase": 0.6},
                "moving_average": {"mase": 1.3},
            },
        ),
    )
    row = _rows(runs_dir)["fc"]
    assert (
        row["baseline"] == "seasonal_naive 0.6000"
        and row["vs_baseline"] == "worse"
        and row["beats_baseline"] is False
    )
    assert main(["runs", str(runs_dir)]) == 0
    assert "0.9500 ✗" in capsys.readouterr().out


def test_regression_run_ranked_by_mae(trained, runs_dir):
    _copy(
        trained["regression"],
        runs_dir,
        "reg",
        _set_test("mae", {"mae": 0.3}, {"mean": {"mae": 1.0}, "ridge": {"mae": 0.5}}),
    )
    _copy(
        trained["regression"],
        runs_dir,
        "reg-bad",
        _set_test("mae", {"mae": 0.7}, {"mean": {"mae": 1.0}, "ridge": {"mae": 0.5}}),
    )
    rows = _rows(runs_dir)
    assert rows["reg"]["baseline"] == "ridge 0.5000" and rows["reg"]["beats_baseline"] is True
    assert (
        rows["reg-bad"]["baseline"] == "ridge 0.5000" and rows["reg-bad"]["beats_baseline"] is False
    )


def test_default_regression_run_is_listed_by_rmse_lower_is_better(trained, runs_dir, capsys):
    # issue #17: a table regression run's primary metric is RMSE; its best baseline may be a tree ensemble
    assert (
        json.loads((trained["regression"] / "metrics.json").read_text())["test"]["primary_metric"]
        == "rmse"
    )
    trees = {"ridge": {"rmse": 0.6}, "hist_gradient_boosting": {"rmse": 0.4}}
    _copy(trained["regression"], runs_dir, "good", _set_test("rmse", {"rmse": 0.3}, trees))
    _copy(trained["regression"], runs_dir, "bad", _set_test("rmse", {"rmse": 0.5}, trees))
    rows = _rows(runs_dir)
    assert rows["good"]["baseline"] == "hist_gradient_boosting 0.4000"
    assert rows["good"]["vs_baseline"] == "better" and rows["bad"]["vs_baseline"] == "worse"
    assert main(["runs", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "rmse ↓" in out and "0.3000 ✓" in out and "0.5000 ✗" in out


def test_regression_run_by_r2_is_higher_is_better(trained, runs_dir):
    _copy(
        trained["regression"],
        runs_dir,
        "reg",
        _set_test("r2", {"r2": 0.9}, {"mean": {"r2": 0.0}, "ridge": {"r2": 0.8}}),
    )
    row = _rows(runs_dir)["reg"]
    assert row["baseline"] == "ridge 0.8000" and row["beats_baseline"] is True


def test_classification_by_accuracy(trained, runs_dir):
    _copy(
        trained["binary"],
        runs_dir,
        "acc-good",
        _set_test(
            "accuracy",
            {"accuracy": 0.9},
            {"majority": {"accuracy": 0.5}, "logistic": {"accuracy": 0.8}},
        ),
    )
    _copy(
        trained["binary"],
        runs_dir,
        "acc-bad",
        _set_test(
            "accuracy",
            {"accuracy": 0.7},
            {"majority": {"accuracy": 0.5}, "logistic": {"accuracy": 0.8}},
        ),
    )
    rows = _rows(runs_dir)
    assert (
        rows["acc-good"]["baseline"] == "logistic 0.8000"
        and rows["acc-good"]["beats_baseline"] is True
    )
    assert (
        rows["acc-bad"]["baseline"] == "logistic 0.8000"
        and rows["acc-bad"]["beats_baseline"] is False
    )


def test_classification_by_log_loss(trained, runs_dir):
    _copy(
        trained["binary"],
        runs_dir,
        "ll",
        _set_test(
            "log_loss",
            {"log_loss": 0.3},
            {"majority": {"log_loss": 0.69}, "logistic": {"log_loss": 0.4}},
        ),
    )
    row = _rows(runs_dir)["ll"]
    assert row["baseline"] == "logistic 0.4000" and row["beats_baseline"] is True


def test_a_tie_is_not_a_win(trained, runs_dir, capsys):
    _copy(
        trained["binary"],
        runs_dir,
        "tie",
        _set_test(
            "accuracy",
            {"accuracy": 0.8},
            {"majority": {"accuracy": 0.5}, "logistic": {"accuracy": 0.8}},
        ),
    )
    assert main(["runs", str(runs_dir)]) == 0
    assert "0.8000 =" in capsys.readouterr().out
    row = _rows(runs_dir)["tie"]
    assert row["vs_baseline"] == "tie" and row["beats_baseline"] is False


def test_null_baseline_scores_are_skipped(trained, runs_dir):
    _copy(
        trained["forecast"],
        runs_dir,
        "null-base",
        _set_test(
            "mase",
            {"mase": 0.5},
            {
                "naive": {"mase": None},
                "seasonal_naive": {"mase": 0.8},
                "moving_average": {"mase": None},
            },
        ),
    )
    row = _rows(runs_dir)["null-base"]
    assert row["baseline"] == "seasonal_naive 0.8000" and row["beats_baseline"] is True


def test_a_null_model_score_is_a_dash(trained, runs_dir, capsys):
    _copy(
        trained["forecast"],
        runs_dir,
        "null-model",
        _set_test("mase", {"mase": None}, {"naive": {"mase": 1.0}}),
    )
    row = _rows(runs_dir)["null-model"]
    assert row["value"] is None and row["beats_baseline"] is None
    assert main(["runs", str(runs_dir)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("null-model "))
    assert re.search(r"mase(?: ↓)?\s+-\s", line) and "✓" not in line and "✗" not in line


def test_reconstruction_error_is_lower_is_better(runs_dir):
    run = runs_dir / "ae"
    run.mkdir()
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "task": "reconstruction",
                "dataset": "digits",
                "test": {
                    "rows": 30,
                    "primary_metric": "reconstruction_error",
                    "model": {"reconstruction_error": 0.02},
                    "baselines": {
                        "pca": {"reconstruction_error": 0.05},
                        "mean": {"reconstruction_error": 0.4},
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    row = _rows(runs_dir)["ae"]
    assert row["baseline"] == "pca 0.0500" and row["beats_baseline"] is True


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        "not json",
        '{"test": "x"}',
        '{"test": {"primary_metric": "mase", "model": [], "baselines": [1, 2]}}',
        '{"test": {"primary_metric": "mase", "model": {"mase": true}, "baselines": {"naive": "a"}}}',
        '{"test": {"primary_metric": "strange_metric", "model": {"strange_metric": 1.0}, "baselines": {"b": {"strange_metric": 2.0}}}}',
    ],
)
def test_unknown_layouts_give_a_row_of_dashes(runs_dir, content, capsys):
    run = runs_dir / "odd"
    run.mkdir()
    (run / "metrics.json").write_text(content, encoding="utf-8")
    row = _rows(runs_dir)["odd"]
    assert row["beats_baseline"] is None and row["baseline"] == "-"
    assert main(["runs", str(runs_dir)]) == 0
    assert "odd" in capsys.readouterr().out


@pytest.mark.parametrize(
    "manifest",
    ['{"model_spec": {"family": "mlp", "hidden": 64}}', '{"model_spec": "mlp"}', "[1]", "{"],
)
def test_odd_manifests_do_not_break_the_listing(trained, runs_dir, manifest):
    run = _copy(trained["binary"], runs_dir, "odd")
    (run / "bundle" / "manifest.json").write_text(manifest, encoding="utf-8")
    row = _rows(runs_dir)["odd"]
    assert row["model"] in ("mlp", "?") and row["metric"] == "roc_auc"


def test_rl_run_layout_is_listed_by_mean_return(runs_dir):
    run = runs_dir / "cartpole"
    run.mkdir()
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "env_id": "CartPole-v1",
                "algo": "dqn",
                "wall_time_s": 3.0,
                "evaluation": {"mean_return": 180.0},
                "random": {"mean_return": 22.0},
            }
        ),
        encoding="utf-8",
    )
    row = _rows(runs_dir)["cartpole"]
    assert row["task"] == "rl" and row["dataset"] == "CartPole-v1" and row["model"] == "dqn"
    assert (
        row["metric"] == "mean_return"
        and row["baseline"] == "random 22.0000"
        and row["beats_baseline"] is True
    )


# --------------------------------------------------------------------------------- dlpipe compare
def _rows_of(edit_rows):
    def edit(m):
        m["rows"]["test"] = edit_rows

    return edit


def test_compare_warns_when_test_rows_differ(trained, runs_dir, capsys):
    a = _copy(trained["binary"], runs_dir, "a", _rows_of(69))
    b = _copy(trained["binary"], runs_dir, "b", _rows_of(55))
    html = dl.compare_runs([a, b], runs_dir / "cmp.html").read_text(encoding="utf-8")
    assert "scored on different test data" in html and "test rows 69 (a) vs 55 (b)" in html
    assert "share every setting" not in html
    assert main(["compare", str(a), str(b), "-o", str(runs_dir / "c2.html")]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: these runs were scored on different test data (test rows 69 (a) vs 55 (b))" in err
    )


def _sources(test, train_sha="1" * 64):
    def edit(m):
        m["data_sources"] = {
            "train": {"source": "train.csv", "rows": 48, "sha256": train_sha},
            "test": test,
        }

    return edit


def test_compare_reads_data_sources_hash_over_path(trained, runs_dir, capsys):
    same = {"rows": 20, "sha256": "a" * 64}
    a = _copy(trained["binary"], runs_dir, "a", _sources({"source": "data/test.csv", **same}))
    b = _copy(trained["binary"], runs_dir, "b", _sources({"source": "/abs/data/test.csv", **same}))
    c = _copy(
        trained["binary"],
        runs_dir,
        "c",
        _sources({"source": "data/test.csv", "rows": 20, "sha256": "b" * 64}),
    )
    html = dl.compare_runs([a, b], runs_dir / "ab.html").read_text(encoding="utf-8")
    assert (
        "different test data" not in html and "share every setting" in html
    )  # the same bytes under two paths
    assert "aaaaaaaaaaaa" in html and "a separate test file" in html
    html = dl.compare_runs([a, c], runs_dir / "ac.html").read_text(encoding="utf-8")
    assert (
        "scored on different test data (test data sha256 aaaaaaaaaaaa (a) vs bbbbbbbbbbbb (c))"
        in html
    )
    assert "share every setting" not in html
    assert main(["compare", str(a), str(c), "-o", str(runs_dir / "c3.html")]) == 0
    assert "warning: these runs were scored on different test data" in capsys.readouterr().err


def test_compare_of_carved_splits_with_the_same_data_is_quiet(trained, runs_dir, capsys):
    a = _copy(trained["binary"], runs_dir, "a", _sources(None))
    b = _copy(trained["binary"], runs_dir, "b", _sources(None))
    html = dl.compare_runs([a, b], runs_dir / "ab.html").read_text(encoding="utf-8")
    assert "different test data" not in html and "share every setting" in html
    assert "carved from the training data (test_fraction 0.2, seed 0)" in html
    assert main(["compare", str(a), str(b), "-o", str(runs_dir / "c.html")]) == 0
    assert "warning" not in capsys.readouterr().err


def _best_row(html: str) -> list[str]:
    row = next(
        r
        for r in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
        if re.search(r"<t[dh][^>]*>\s*best\s*</t[dh]>", r)
    )
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    ]


def _header(html: str) -> list[str]:
    row = next(r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S) if "best baseline" in r)
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    ]


def test_compare_names_the_better_run_by_direction(trained, runs_dir):
    a = _copy(
        trained["regression"],
        runs_dir,
        "a",
        _set_test("r2", {"mae": 0.3, "rmse": 0.4, "r2": 0.7}, {}),
    )
    b = _copy(
        trained["regression"],
        runs_dir,
        "b",
        _set_test("r2", {"mae": 0.5, "rmse": 0.4, "r2": 0.9}, {}),
    )
    html = dl.compare_runs([a, b], runs_dir / "ab.html").read_text(encoding="utf-8")
    best = dict(zip(_header(html), _best_row(html)))
    assert best["mae ↓"] == "a" and best["r2 ↑"] == "b" and best["rmse ↓"] == "="


def test_compare_of_a_run_scored_on_a_test_file_and_one_on_a_carved_split_warns(tmp_path, capsys):
    """The issue's case: one run scored on the user's test file, one on an internal split of the training data."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.where(x[:, 0] > 0, "p", "n")})
    frame.iloc[:40].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[40:].to_csv(tmp_path / "test.csv", index=False)
    with_file = dl.train(
        str(tmp_path / "train.csv"),
        "y",
        test=str(tmp_path / "test.csv"),
        epochs=1,
        learning_rate=1e-3,
        progress="quiet",
        save=False,
    ).save(tmp_path / "runs" / "file", report=False)
    carved = dl.train(
        str(tmp_path / "train.csv"), "y", epochs=1, learning_rate=1e-3, progress="quiet", save=False
    ).save(tmp_path / "runs" / "carved", report=False)
    html = dl.compare_runs([with_file, carved], tmp_path / "cmp.html").read_text(encoding="utf-8")
    assert "scored on different test data (test rows 20 (file) vs 8 (carved)" in html
    assert "share every setting" not in html
    assert main(["compare", str(with_file), str(carved), "-o", str(tmp_path / "c.html")]) == 0
    assert "warning: these runs were scored on different test data" in capsys.readouterr().err
