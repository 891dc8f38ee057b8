import pytest

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.core.errors import InvalidInputError


@pytest.mark.slow
def test_runs_index_and_comparison(make_run, tmp_path, capsys):
    a, b = make_run("binary", report=False), make_run("multiclass", report=False)
    runs_dir = a.parent
    rows = dl.list_runs(runs_dir)
    names = {r["name"] for r in rows}
    assert a.name in names and b.name in names
    row = next(r for r in rows if r["name"] == a.name)
    assert row["task"] == "binary" and row["metric"] == "roc_auc" and row["model"].startswith("mlp")
    assert row["baseline"].startswith(
        ("logistic", "majority", "hist_gradient_boosting", "random_forest")
    )
    assert main(["runs", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert a.name in out and "best baseline" in out

    page = dl.compare_runs([a, b], tmp_path / "cmp.html")
    html = page.read_text(encoding="utf-8")
    assert "Test scores" in html and "Training curves" in html and "Settings that differ" in html
    assert "different tasks" in html  # binary vs multiclass are not comparable, and it says so
    assert html.count('<img src="data:image/png;base64,') >= 2
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "c2.html")]) == 0
    assert "comparison: " in capsys.readouterr().out and (tmp_path / "c2.html").is_file()

    hist = dl.plot_history(a, tmp_path / "h.png")
    assert hist.read_bytes()[:4] == b"\x89PNG"


def test_compare_needs_two_runs_and_runs_needs_a_folder(tmp_path, capsys):
    with pytest.raises(InvalidInputError, match="at least 2 run folders"):
        dl.compare_runs([tmp_path])
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "not a dlpipe run folder" in capsys.readouterr().err
