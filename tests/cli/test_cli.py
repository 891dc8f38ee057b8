import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dlpipe.cli import main


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def csv(binary_frame, tmp_path):
    path = tmp_path / "data.csv"
    binary_frame.to_csv(path, index=False)
    return path


def test_train_predict_evaluate(csv, tmp_path, capsys):
    code, out, err = run_cli(
        ["train", str(csv), "--target", "y", "--epochs", "3", "--out", str(tmp_path / "run"), "-q"],
        capsys,
    )
    assert code == 0, err
    assert "logistic" in out and "majority" in out and "run folder:" in out
    code, out, _ = run_cli(["evaluate", str(tmp_path / "run" / "bundle"), str(csv)], capsys)
    assert code == 0 and "accuracy" in out
    code, out, _ = run_cli(
        ["predict", str(tmp_path / "run" / "bundle"), str(csv), "-o", str(tmp_path / "p.csv")],
        capsys,
    )
    assert code == 0
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["prediction", "proba_no", "proba_yes"] and len(preds) == 64


def test_config_flag(csv, tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("epochs: 2\nhidden: [4]\n")
    code, _, err = run_cli(
        [
            "train",
            str(csv),
            "-t",
            "y",
            "--config",
            str(tmp_path / "run.yaml"),
            "--out",
            str(tmp_path / "r"),
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    assert "hidden:\n  - 4" in (tmp_path / "r" / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--target", "yy"],
            r"error: target column 'yy' not found in 'data' \(did you mean `y`\?\)",
        ),
        (
            ["--target", "y", "--epochs", "many"],
            "error: `--epochs` is 'many' but must be a number or 'auto'",
        ),
        (
            ["--target", "y", "--dropout", "2"],
            r"error: config value `model.dropout` = 2.0 is invalid",
        ),
        (
            ["--target", "y", "--optimizer", "adm"],
            r"error: config value `train.optimizer` = 'adm' is invalid",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(csv, tmp_path, capsys, args, message):
    code, out, err = run_cli(
        ["train", str(csv), "--out", str(tmp_path / "run"), "-q", *args], capsys
    )
    import re

    assert code == 2
    assert re.search(message, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run*"))


def test_bad_files(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    code, _, err = run_cli(["train", str(tmp_path / "empty.csv"), "-t", "y"], capsys)
    assert code == 2 and "is empty" in err
    (tmp_path / "d.json").write_text("{}")
    code, _, err = run_cli(["train", str(tmp_path / "d.json"), "-t", "y"], capsys)
    assert code == 2 and "unsupported type '.json'" in err
    code, _, err = run_cli(["evaluate", str(tmp_path), str(tmp_path / "d.json")], capsys)
    assert code == 2 and "is not a dlpipe bundle" in err
    (tmp_path / "bad.yaml").write_text("epoch: 3\n")
    (tmp_path / "ok.csv").write_text("a,y\n1,0\n2,1\n")
    code, _, err = run_cli(
        ["train", str(tmp_path / "ok.csv"), "-t", "y", "--config", str(tmp_path / "bad.yaml")],
        capsys,
    )
    assert code == 2 and "unknown config key `epoch` (did you mean `epochs`?)" in err


def test_predict_with_missing_columns(csv, tmp_path, capsys):
    run_cli(
        ["train", str(csv), "-t", "y", "--epochs", "2", "--out", str(tmp_path / "run"), "-q"],
        capsys,
    )
    pd.read_csv(csv)[["a", "b"]].to_csv(tmp_path / "few.csv", index=False)
    code, _, err = run_cli(
        [
            "predict",
            str(tmp_path / "run" / "bundle"),
            str(tmp_path / "few.csv"),
            "-o",
            str(tmp_path / "p.csv"),
        ],
        capsys,
    )
    assert code == 2 and "missing the columns c, d" in err and not (tmp_path / "p.csv").exists()


def test_debug_shows_traceback(csv):
    with pytest.raises(Exception, match="not found"):
        main(["--debug", "train", str(csv), "--target", "nope"])


def test_datasets_lists_bundled(capsys):
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    for name in (
        "xor",
        "classification",
        "regression",
        "breast_cancer",
        "iris",
        "wine",
        "digits",
        "diabetes",
    ):
        assert name in out


@pytest.mark.service
def test_help_is_fast_and_imports_no_torch():
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dlpipe", "--help"], capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and "train" in proc.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dlpipe.cli; print('torch' in sys.modules, 'pandas' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "False False"
    assert (
        elapsed < 2.0
    )  # generous for a loaded CI machine; measured ~0.3 s (benchmarks/RESULTS.md)


@pytest.mark.service
def test_console_script_exit_codes(tmp_path):
    exe = Path(sys.executable).parent / "dlpipe"
    proc = subprocess.run(
        [str(exe), "train", str(tmp_path / "missing.csv"), "-t", "y"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("error: ")
        and "Traceback" not in proc.stderr
    )
