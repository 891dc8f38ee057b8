"""Issue #16 item 4: the run record reproduces the run (data sources, versions, a command or snippet that reruns it)."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import dlpipe as dl
from dlpipe.cli.app import main


@pytest.fixture
def split_files(tmp_path: Path) -> tuple[Path, Path]:
    """A 40-row training file and a separate 20-row test file."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    frame = pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] + x[:, 1] > 0).astype(int)}
    )
    frame.iloc[:40].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[40:].to_csv(tmp_path / "test.csv", index=False)
    return Path("train.csv"), Path("test.csv")


def _metrics(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))


def _same_scores(a: dict, b: dict) -> None:
    for key, value in a["test"]["model"].items():
        if isinstance(value, float):
            assert b["test"]["model"][key] == pytest.approx(value, abs=1e-6), key
    assert a["test"]["verdict"] == b["test"]["verdict"]
    assert a["rows"] == b["rows"]


def reproduce(metrics: dict, config: Path) -> tuple[str, str]:
    from dlpipe.reports.report import reproduce as shown  # what the report's "To reproduce" shows

    return shown(metrics, config)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_run_records_sources_and_its_shown_command_reproduces_it(split_files, capsys):
    train, test = split_files
    assert (
        main(
            [
                "train",
                str(train),
                "--target",
                "y",
                "--test",
                str(test),
                "--epochs",
                "2",
                "--lr",
                "auto",
                "--out",
                "r1",
                "-q",
            ]
        )
        == 0
    )
    first = _metrics("r1")
    assert first["data_sources"] == {
        "train": {"source": "train.csv", "rows": 40, "sha256": _sha(train)},
        "test": {"source": "test.csv", "rows": 20, "sha256": _sha(test)},
    }
    assert first["origin"] == "cli" and first["command"].startswith(
        "dlpipe train train.csv --target y --test test.csv"
    )
    how, command = reproduce(first, Path("r1") / "config.yaml")
    assert (how, command) == (
        "command",
        "dlpipe train train.csv --test test.csv --config r1/config.yaml",
    )
    assert "dlpipe train train.csv --test test.csv --config" in (
        Path("r1") / "report.html"
    ).read_text(encoding="utf-8")
    assert main([*shlex.split(command)[1:], "--out", "r2", "-q", "--no-report"]) == 0
    second = _metrics("r2")
    _same_scores(first, second)  # same test file (20 rows), not a 20% split of the training file
    assert second["data_sources"] == first["data_sources"]
    assert yaml.safe_load(Path("r2/config.yaml").read_text()) == yaml.safe_load(
        Path("r1/config.yaml").read_text()
    )


def test_python_run_from_files_shows_a_snippet_that_reproduces_it(split_files):
    train, test = split_files
    run = dl.train(str(train), "y", test=str(test), epochs=2, out="p1", progress="quiet")
    assert run.metrics["origin"] == "python" and "command" not in run.metrics
    how, snippet = reproduce(run.metrics, Path("p1") / "config.yaml")
    assert how == "python"
    assert (
        snippet.splitlines()[-1]
        == "run = dl.train('train.csv', test='test.csv', config='p1/config.yaml')"
    )
    assert "dlpipe train" not in (Path("p1") / "report.html").read_text(encoding="utf-8")
    scope: dict = {}
    exec(snippet, scope)  # the snippet exactly as the report shows it
    _same_scores(run.metrics, scope["run"].metrics)


def test_python_run_from_frames_names_no_file_and_says_pass_the_frame(split_files):
    train, test = split_files
    train_frame, test_frame = pd.read_csv(train), pd.read_csv(test)
    run = dl.train(train_frame, "y", test=test_frame, epochs=2, out="f1", progress="quiet")
    sources = run.metrics["data_sources"]
    expected = hashlib.sha256(
        pd.util.hash_pandas_object(train_frame, index=True).to_numpy().tobytes()
    ).hexdigest()
    assert sources["train"] == {"source": "DataFrame", "rows": 40, "sha256": expected}
    assert sources["test"]["source"] == "DataFrame" and sources["test"]["rows"] == 20
    how, snippet = reproduce(run.metrics, Path("f1") / "config.yaml")
    assert how == "python" and "dlpipe train" not in snippet
    assert "# the train data was a DataFrame of 40 rows (sha256 " in snippet
    assert (
        snippet.splitlines()[-1]
        == "run = dl.train(train_data, test=test_data, config='f1/config.yaml')"
    )
    page = (Path("f1") / "report.html").read_text(encoding="utf-8")
    assert "dlpipe train table" not in page and "dlpipe train DataFrame" not in page
    scope = {"train_data": train_frame, "test_data": test_frame}
    exec(snippet, scope)
    _same_scores(run.metrics, scope["run"].metrics)


def test_test_split_carved_from_the_data_is_recorded_as_null(split_files):
    train, _ = split_files
    run = dl.train(str(train), "y", epochs=1, save=False, progress="quiet")
    assert run.metrics["data_sources"]["test"] is None
    assert run.metrics["data_sources"]["train"]["rows"] == 40


def test_environment_records_seed_and_versions(split_files):
    train, _ = split_files
    run = dl.train(str(train), "y", epochs=1, seed=3, save=False, progress="quiet")
    env = run.metrics["environment"]
    assert env["seed"] == 3
    assert {"python", "torch", "dlpipe", "numpy", "pandas", "sklearn"} <= set(env)
    assert env["dlpipe"] == dl.__version__ and env["pandas"] == pd.__version__


def test_default_cnn_config_shows_the_model_built_and_reproduces_it():
    from dlpipe.data.images import ImageDataset

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(40, 1, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 2
    run = dl.train(ImageDataset(x, y), epochs=1, out="img", progress="quiet")
    spec = run.bundle.manifest["model_spec"]
    saved = yaml.safe_load(Path("img/config.yaml").read_text(encoding="utf-8"))
    assert spec["batch_norm"] is True and saved["model"]["batch_norm"] is True
    assert saved["model"]["hidden"] == spec["dense"] == [128]
    assert (
        saved["model"]["dropout"] == spec["dropout"]
        and saved["image"]["channels"] == spec["channels"]
    )
    again = dl.train(ImageDataset(x, y), config="img/config.yaml", save=False, progress="quiet")
    assert again.bundle.manifest["model_spec"] == spec
    _same_scores(run.metrics, again.metrics)


def test_a_named_table_object_is_not_shown_as_a_file_name(split_files):
    from dlpipe.data.tabular import TabularDataset

    frame = pd.read_csv(split_files[0])
    run = dl.train(
        TabularDataset(frame, "y", name="boston_train"), epochs=1, save=False, progress="quiet"
    )
    assert run.metrics["data_sources"]["train"]["source"] == "DataFrame"
    how, snippet = reproduce(run.metrics, Path("r/config.yaml"))
    assert (
        how == "python"
        and "boston_train" not in snippet
        and "dl.train(train_data, config=" in snippet
    )
