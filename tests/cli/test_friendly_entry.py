"""Issue #18, item 8: a series read as a table says how to forecast it, `predict -o -` prints, and the
help names every input kind."""

from pathlib import Path

import numpy as np
import pandas as pd

from dlpipe.cli import main


def _write_ts(path: Path, n: int, seed: int) -> None:
    """A .ts file of two classes (a bump early or late in 30 steps)."""
    rng = np.random.default_rng(seed)
    lines = ["@problemName toy", "@univariate true", "@classLabel true a b", "@data"]
    for i in range(n):
        x = 0.3 * rng.normal(size=30)
        at = 5 if i % 2 == 0 else 20
        x[at : at + 4] += 2.0
        lines.append(",".join(f"{v:.4f}" for v in x) + (":a" if i % 2 == 0 else ":b"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_date_and_a_number_suggest_forecasting(tmp_path, capsys):
    months = pd.date_range("2000-01-01", periods=60, freq="MS").strftime("%Y-%m")
    pd.DataFrame({"time": months, "passengers": np.arange(60) * 1.5 + 100}).to_csv(
        tmp_path / "airline.csv", index=False
    )
    code = main(["train", str(tmp_path / "airline.csv"), "--out", str(tmp_path / "r"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert (
        "set `--task` to 'forecast' and `--time-column` to 'time'" in err and "'passengers'" in err
    )
    assert not (tmp_path / "r").exists()


def test_a_table_without_dates_keeps_the_plain_message(tmp_path, capsys):
    pd.DataFrame({"id": [f"u{i}" for i in range(40)], "y": np.arange(40.0)}).to_csv(
        tmp_path / "t.csv", index=False
    )
    code = main(["train", str(tmp_path / "t.csv"), "-t", "y", "--out", str(tmp_path / "r"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "no usable feature columns are left" in err and "forecast" not in err


def test_predict_to_dash_prints_and_writes_no_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_ts(tmp_path / "toy_TRAIN.ts", 24, 0)
    _write_ts(tmp_path / "toy_TEST.ts", 10, 1)
    args = ["train", "toy_TRAIN.ts", "--test", "toy_TEST.ts", "--out", "run", "-q", "--no-report"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["predict", "run/bundle", "toy_TEST.ts", "-o", "-"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("prediction,") and len(lines) == 11
    assert [ln.split(",")[0] for ln in lines[1:]] == ["a", "b"] * 5
    assert not (tmp_path / "-").exists()


def test_help_names_every_input_kind(capsys):
    for args in (["--help"], ["train", "--help"]):
        try:
            main(args)
        except SystemExit:
            pass
        text = " ".join(capsys.readouterr().out.split())
        for kind in (".tsf", ".ts", ".npz", "IDX", "folder", "Parquet"):
            assert kind in text, (args, kind)
