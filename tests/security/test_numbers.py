"""Silently wrong numbers (issue #15, item 5, and the number cases of item 7).

A value beyond what float32 holds (1e308), ±inf, NaN model outputs, bare ``NaN`` in JSON files, an
all-missing target and a model too large for the machine: each ends with one sentence and exit 2
(or a DlpipeError in the API), never a NaN prediction with exit 0. NaN in an input cell stays
"missing" (imputed). The rule is in src/dlpipe/data/numbers.py and docs/security.md.

The server's responses are covered in tests/serving; bundles with NaN weights elsewhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlpipe.cli.app import main
from dlpipe.core.errors import DlpipeError


def _no_constants(name: str) -> None:
    raise AssertionError(f"bare {name} in a JSON file")


def _strict_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constants)


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "y": np.where(a + b > 0, "malignant", "benign")})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run, shared by the predict/evaluate cases (they only read it)."""
    import dlpipe as dl

    root = tmp_path_factory.mktemp("numbers")
    run = dl.train(
        _frame(), target="y", epochs=2, out=root / "run", progress="quiet", report=False, hidden=[8]
    )
    return Path(run.path) / "bundle"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ----------------------------------------------------------------------------- 1e308 and inf in inputs
def test_predict_with_1e308_is_refused_naming_column_and_row(bundle, capsys):
    rows = _frame(3).drop(columns="y")
    rows.loc[1, "a"] = 1e308
    rows.to_csv("rows.csv", index=False)
    rc, out, err = _run(["predict", str(bundle), "rows.csv"], capsys)
    assert rc == 2
    assert out == ""  # no prediction printed, not even for the good rows
    assert _one_error_line(err) == (
        "error: column 'a' holds 1e+308 in row 2, beyond the ±3.4e+38 that a model's float32 numbers can hold; "
        "fix those values or rescale the column (for example change its unit)."
    )


def test_predict_with_inf_is_refused_with_a_count(bundle, capsys):
    rows = _frame(5).drop(columns="y")
    rows.loc[[1, 3], "b"] = [np.inf, -np.inf]
    rows.to_csv("rows.csv", index=False)
    rc, out, err = _run(["predict", str(bundle), "rows.csv"], capsys)
    assert rc == 2 and out == ""
    assert (
        "error: column 'b' holds inf in row 2 and 1 more row; dlpipe does not guess a value for infinities"
        in _one_error_line(err)
    )


def test_predict_with_an_empty_cell_still_imputes_it(bundle, capsys):
    rows = _frame(3).drop(columns="y")
    rows.loc[1, "a"] = np.nan
    rows.to_csv("rows.csv", index=False)
    rc, out, err = _run(["predict", str(bundle), "rows.csv"], capsys)
    assert rc == 0, err
    preds = pd.read_csv(__import__("io").StringIO(out))
    assert (
        len(preds) == 3 and np.isfinite(preds[["proba_benign", "proba_malignant"]].to_numpy()).all()
    )


def test_predict_api_never_returns_nan_probabilities(bundle):
    import dlpipe as dl

    rows = _frame(3).drop(columns="y")
    rows.loc[2, "b"] = -1e308
    with pytest.raises(DlpipeError, match=r"^column 'b' holds -1e\+308 in row 3, beyond"):
        dl.load_bundle(bundle).predict(rows)


def test_a_value_that_scaling_overflows_is_refused(capsys):
    """3e38 fits float32, but scaled by a training std of ~1e-3 it does not."""
    from dlpipe.data.preprocessing import TabularPreprocessor
    from dlpipe.data.schema import infer_schema

    train = pd.DataFrame({"a": np.linspace(0, 0.01, 30), "y": [0, 1] * 15})
    pre = TabularPreprocessor(infer_schema(train, "y")).fit(train)
    rows = pd.DataFrame({"a": [0.005, 3e38]})
    with pytest.raises(
        DlpipeError,
        match=r"^column 'a' holds 3e\+38 in row 2, which the training scaling turns into 1\.0\d*e\+41, beyond",
    ):
        pre.transform(rows)


def test_evaluate_with_1e308_is_refused(bundle, capsys):
    rows = _frame(6)
    rows.loc[4, "b"] = 1e308
    rows.to_csv("labelled.csv", index=False)
    rc, out, err = _run(["evaluate", str(bundle), "labelled.csv", "-o", "scores.json"], capsys)
    assert rc == 2 and not Path("scores.json").exists()
    assert _one_error_line(err).startswith("error: column 'b' holds 1e+308 in row 5, beyond")


def test_train_with_1e308_names_the_column_and_row_and_writes_nothing(capsys):
    frame = _frame()
    frame.loc[5, "a"] = 1e308
    frame.to_csv("data.csv", index=False)
    rc, out, err = _run(["train", "data.csv", "-t", "y", "-o", "out", "--epochs", "1"], capsys)
    assert rc == 2
    assert _one_error_line(err).startswith(
        "error: column 'a' holds 1e+308 in row 6, beyond the ±3.4e+38"
    )
    assert sorted(p.name for p in Path(".").iterdir()) == ["data.csv"]  # no out/, no out.partial/


def test_train_with_a_1e308_target_is_refused(capsys):
    frame = _frame()
    frame["y"] = frame["a"] * 3 + frame["b"]
    frame.loc[7, "y"] = 1e308
    frame.to_csv("data.csv", index=False)
    rc, out, err = _run(["train", "data.csv", "-t", "y", "-o", "out", "--epochs", "1"], capsys)
    assert rc == 2
    assert _one_error_line(err).startswith("error: target 'y' holds 1e+308 in row 8, beyond")
    assert sorted(p.name for p in Path(".").iterdir()) == ["data.csv"]


def test_train_with_inf_is_refused_naming_the_first_row_of_the_file(capsys):
    """Decided: ±inf is refused, not imputed (it hides a division by zero upstream); empty cells are missing."""
    frame = _frame()
    frame.loc[[3, 7], "b"] = np.inf
    frame.to_csv("data.csv", index=False)
    rc, out, err = _run(["train", "data.csv", "-t", "y", "-o", "out", "--epochs", "1"], capsys)
    assert rc == 2
    assert _one_error_line(err) == (
        "error: column 'b' holds inf in row 4 and 1 more row; dlpipe does not guess a value for infinities, "
        "so replace them with numbers, or empty those cells to have them treated as missing."
    )


def test_row_numbers_stay_those_of_the_file_after_rows_without_target_are_dropped():
    import dlpipe as dl

    frame = _frame()
    frame.loc[2, "y"] = None  # dropped with a warning
    frame.loc[9, "a"] = 1e300
    with (
        pytest.warns(UserWarning, match="dropped 1 rows"),
        pytest.raises(DlpipeError, match=r"^column 'a' holds 1e\+300 in row 10, "),
    ):
        dl.train(frame, target="y", epochs=1, save=False, progress="quiet")


# ----------------------------------------------------------------------------- outputs are never NaN
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_decode_refuses_non_finite_outputs(kind):
    from dlpipe.tasks.task import Task

    classes = {"binary": ["a", "b"], "multiclass": ["a", "b", "c"], "regression": None}[kind]
    task = Task(kind=kind, target="y", classes=classes)
    width = 3 if kind == "multiclass" else 1
    logits = np.zeros((4, width), np.float32)
    logits[1, 0], logits[3, -1] = np.nan, np.inf
    with pytest.raises(
        DlpipeError,
        match=r"^the model produced NaN or infinite outputs for rows 2, 4 \(2 of 4 rows\), so no prediction is given;",
    ) as info:
        task.decode(logits)
    assert type(info.value).__name__ == "NonFiniteOutputError" and isinstance(
        info.value, ValueError
    )


def test_a_bundle_whose_model_outputs_nan_predicts_nothing(bundle, capsys, monkeypatch):
    import dlpipe as dl

    b = dl.load_bundle(bundle)
    monkeypatch.setattr(
        type(b), "outputs", lambda self, inputs: np.full((len(inputs[0]), 1), np.nan, np.float32)
    )
    with pytest.raises(
        DlpipeError,
        match=r"^the model produced NaN or infinite outputs for rows 1, 2, 3 \(3 of 3 rows\)",
    ):
        b.predict(_frame(3).drop(columns="y"))


def test_forecast_outputs_are_checked_too():
    from dlpipe.data.series import roll_forecast

    x = np.zeros((2, 4, 1), np.float32)
    with pytest.raises(DlpipeError, match=r"for row 2 \(1 of 2 rows\)"):
        roll_forecast(lambda a: np.array([[1.0, 2.0], [np.nan, 0.0]]), x, 2, [0], recursive=False)


# ----------------------------------------------------------------------------- strict JSON
def test_write_json_writes_null_for_nan_and_inf(tmp_path):
    from dlpipe.core.files import write_json

    write_json(
        tmp_path / "m.json",
        {
            "r2": float("nan"),
            "x": [np.float32("inf"), -math.inf, 1.5],
            "n": np.float64("nan"),
            "ok": np.arange(2),
        },
    )
    assert _strict_json(tmp_path / "m.json") == {
        "r2": None,
        "x": [None, None, 1.5],
        "n": None,
        "ok": [0, 1],
    }


def test_evaluate_output_json_is_strict_when_a_metric_is_undefined(bundle, capsys):
    """Every row of one class: ROC-AUC is undefined (NaN in memory, shown as nan), null in the file."""
    rows = _frame(30)
    rows = rows[rows["y"] == "benign"]
    rows.to_csv("one_class.csv", index=False)
    rc, out, err = _run(["evaluate", str(bundle), "one_class.csv", "-o", "scores.json"], capsys)
    assert rc == 0, err
    scores = _strict_json(Path("scores.json"))
    assert scores["model"]["roc_auc"] is None and isinstance(scores["model"]["accuracy"], float)


def test_run_metrics_json_and_manifest_are_strict_json(capsys):
    """A test file of one class makes ROC-AUC undefined in metrics.json (bare NaN before)."""
    import dlpipe as dl

    frame = _frame(60)
    test = _frame(40, seed=1)
    run = dl.train(
        frame,
        target="y",
        test=test[test["y"] == "benign"],
        epochs=1,
        out="run",
        progress="quiet",
        report=False,
        hidden=[8],
    )
    metrics = _strict_json(Path(run.path) / "metrics.json")
    assert metrics["test"]["model"]["roc_auc"] is None
    _strict_json(Path(run.path) / "bundle" / "manifest.json")
    assert math.isnan(run.metrics["test"]["model"]["roc_auc"])  # in memory it stays NaN


# ----------------------------------------------------------------------------- raw exceptions before
def test_evaluate_with_an_all_missing_target_is_one_sentence(bundle, capsys):
    rows = _frame(6)
    rows["y"] = np.nan
    rows.to_csv("unlabelled.csv", index=False)
    rc, out, err = _run(["evaluate", str(bundle), "unlabelled.csv"], capsys)
    assert rc == 2
    assert _one_error_line(err) == (
        "error: there are no labelled rows to score: the target is empty in every row; "
        "fill in the target column, or use predict for unlabelled rows."
    )


def test_a_model_that_cannot_fit_in_memory_is_refused_before_allocating(capsys, monkeypatch):
    """`--hidden 100000,100000`: 1e10 parameters (the default ensemble: 32 heads). Available memory is pinned so the sentence is exact,
    and the model small enough that the old code (which has no check) trains it instead of allocating 40 GB."""
    import dlpipe.models.registry as registry

    monkeypatch.setattr(registry, "available_memory", lambda: 10_000_000, raising=False)
    _frame().to_csv("data.csv", index=False)
    rc, out, err = _run(
        ["train", "data.csv", "-t", "y", "-o", "out", "--epochs", "1", "--hidden", "1000,1000"],
        capsys,
    )
    assert rc == 2
    assert _one_error_line(err) == (
        "error: the mlp model with `--hidden` [1000, 1000] has 1,036,032 parameters and needs about 17 MB of memory "
        "to train (weights, gradients and optimizer state), but only 10 MB is available; "
        "use a smaller model (fewer or narrower layers) or a machine with more memory."
    )
    assert sorted(p.name for p in Path(".").iterdir()) == ["data.csv"]


def test_the_memory_check_counts_1e10_parameters_without_allocating(monkeypatch):
    from dlpipe.models import registry

    monkeypatch.setattr(registry, "available_memory", lambda: 16 * 10**9)
    spec = {"family": "mlp", "n_numeric": 2, "n_outputs": 1, "hidden": [100000, 100000]}
    with pytest.raises(
        DlpipeError,
        match=r"has 10,000,500,001 parameters and needs about 160\.0 GB of memory to train .* only 16\.0 GB is available",
    ):
        registry.build_model(spec)
    with pytest.raises(
        DlpipeError, match=r"needs about 40\.0 GB of memory for its weights, but only 16\.0 GB"
    ):
        registry.build_model(spec, for_training=False)


def test_the_memory_check_draws_no_random_numbers():
    import torch

    from dlpipe.models import build_model

    spec = {"family": "mlp", "n_numeric": 3, "n_outputs": 1, "hidden": [4]}
    torch.manual_seed(0)
    a = build_model(spec).state_dict()
    torch.manual_seed(0)
    from dlpipe.models.mlp import MLP

    b = MLP(n_numeric=3, n_outputs=1, hidden=[4]).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
