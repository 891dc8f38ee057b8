"""`dlpipe runs` and `dlpipe compare` in the terminal: direction-aware marks and the different-data warning (issue #16, item 5)."""

from __future__ import annotations

import json

from dlpipe.cli import main


def _run(folder, test, **extra):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(
        json.dumps({"task": "forecast", "dataset": "s", "test": test, **extra}), encoding="utf-8"
    )
    return folder


def _forecast(mase, rows=24):
    return {
        "rows": rows,
        "primary_metric": "mase",
        "model": {"mase": mase, "mae": mase},
        "baselines": {
            "naive": {"mase": 1.0, "mae": 1.0},
            "seasonal_naive": {"mase": 0.7, "mae": 0.7},
            "moving_average": {"mase": 1.4, "mae": 1.4},
        },
    }


def test_runs_marks_lower_is_better_metrics_the_right_way(tmp_path, capsys):
    _run(tmp_path / "runs" / "good", _forecast(0.5))
    _run(tmp_path / "runs" / "bad", _forecast(0.9))
    _run(tmp_path / "runs" / "even", _forecast(0.7))
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    lines = {
        ln.split()[0]: ln
        for ln in out.splitlines()
        if ln.split() and ln.split()[0] in ("good", "bad", "even")
    }
    assert (
        "0.5000 ✓" in lines["good"] and "0.9000 ✗" in lines["bad"] and "0.7000 =" in lines["even"]
    )
    assert all("seasonal_naive 0.7000" in ln and "mase ↓" in ln for ln in lines.values())
    assert "= ties it (not a win)" in out and "↓ lower is better" in out


def test_compare_warns_on_stderr_when_test_rows_differ(tmp_path, capsys):
    a = _run(tmp_path / "runs" / "a", _forecast(0.5), rows={"train": 72, "val": 24, "test": 69})
    b = _run(tmp_path / "runs" / "b", _forecast(0.6), rows={"train": 72, "val": 24, "test": 55})
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "cmp.html")]) == 0
    captured = capsys.readouterr()
    assert "comparison: " in captured.out
    assert (
        "warning: these runs were scored on different test data (test rows 69 (a) vs 55 (b))"
        in captured.err
    )
    page = (tmp_path / "cmp.html").read_text(encoding="utf-8")
    assert "share every setting" not in page and "not comparable" in page


def test_compare_is_quiet_when_runs_share_their_test_data(tmp_path, capsys):
    a = _run(tmp_path / "runs" / "a", _forecast(0.5), rows={"test": 24})
    b = _run(tmp_path / "runs" / "b", _forecast(0.6), rows={"test": 24})
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "cmp.html")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert "share every setting" in (tmp_path / "cmp.html").read_text(encoding="utf-8")
