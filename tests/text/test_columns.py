"""Text beside table columns: one network reads both (the text branch joins the table inputs); the
schema lists the text column as text; predict, serve and export take such rows; refusals."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.config import build_config
from dlpipe.core.errors import InvalidInputError
from dlpipe.data.text import detect_text
from dlpipe.export import export_bundle

TOPIC = {
    1: "ball goal team match score player coach league win".split(),
    0: "bank stock price market share profit loss trade dollar".split(),
}
COMMON = "the a of and to in is it that with for on".split()


def made(n: int, seed: int = 0) -> pd.DataFrame:
    """'yes' when the note is about sport AND the amount is positive: either alone gets ~3/4 right."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    rows = []
    for i in range(n):
        words = rng.choice(TOPIC[int(a[i])] + COMMON, size=int(rng.integers(8, 20)))
        rows.append(
            {
                "note": " ".join(words),
                "amount": float(2 * b[i] - 1 + 0.3 * rng.normal()),
                "shop": str(rng.choice(["x", "y", "z"])),  # no signal
                "label": "yes" if a[i] and b[i] else "no",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("joint")
    made(160).to_csv(root / "mixed.csv", index=False)
    run = dl.train(str(root / "mixed.csv"), save=False, epochs=8, progress="quiet", seed=0)
    run.bundle.save(root / "bundle")  # what predict and serve load (no report: cheaper)
    return run, root


def test_schema_lists_the_text_column_as_text_beside_the_others():
    ds = detect_text(made(40), build_config(), None)
    assert ds is not None and ds.table_schema is not None
    kinds = {name: kind for name, kind, _ in ds.schema.describe()}
    assert kinds == {"note": "text", "amount": "numeric", "shop": "categorical"}


def test_one_network_reading_both_beats_either_alone(joint_run):
    run, _ = joint_run
    assert run.bundle.manifest["model_spec"]["family"] == "text_tabular"
    test = run.metrics["test"]
    joint = test["model"]["accuracy"]
    text_alone = test["baselines"]["tfidf_linear_svc"]["accuracy"]
    columns_alone = test["baselines"]["logistic"]["accuracy"]
    # the label needs both: each alone is right about 3/4 of the time
    assert joint >= 0.9 and joint > max(text_alone, columns_alone) + 0.1, test


def test_predict_and_serve_rows_with_text_and_columns(joint_run):
    run, root = joint_run
    bundle = dl.load_bundle(root / "bundle")
    rows = [
        {"note": "the goal and the team win", "amount": 1.2, "shop": "x"},
        {"note": "the goal and the team win", "amount": -1.2, "shop": "y"},
        {"note": "the bank and the stock price", "amount": 1.2, "shop": "z"},
    ]
    assert bundle.predict(rows)["prediction"].tolist() == ["yes", "no", "no"]
    with pytest.raises(
        InvalidInputError,
        match=r"reads the text column\(s\) note together with the columns amount, shop",
    ):
        bundle.predict(["the goal and the team"])
    with pytest.raises(
        InvalidInputError,
        match="missing the columns amount; the model was trained on: amount, shop",
    ):
        bundle.predict([{"note": "the goal and the team", "shop": "x"}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from dlpipe.serving import create_app

    client = TestClient(create_app(str(root / "bundle")))
    r = client.post("/predict", json={"rows": rows[:2]})
    assert r.status_code == 200 and [p["prediction"] for p in r.json()["predictions"]] == [
        "yes",
        "no",
    ]
    assert client.post("/predict", json={"rows": [{"note": "goal team"}]}).status_code == 422
    page = client.get("/").text
    assert (
        'textarea id="field-note"' in page and 'type="number" step="any" id="field-amount"' in page
    )


def test_export_with_columns_matches_the_bundle(joint_run, tmp_path: Path):
    run, _ = joint_run
    result = export_bundle(run.bundle, tmp_path / "joint.pt", format="torchscript")
    # checked on other documents (another batch size and length) than the ones traced
    assert result.parity is not None and result.parity["max_abs_diff"] < 1e-5
    side = result.sidecar.read_text()
    assert '"x_num"' in side and '"tokenizer"' in side


def test_a_gzip_table_without_text_trains_as_a_table(tmp_path: Path, capsys):
    # Before: a .csv.gz was read only as text, so a gzipped table was refused ("decompress it").
    frame = made(30).assign(note=lambda f: f["note"].str.split().str[0])  # one word each: no text
    with gzip.open("short.csv.gz", "wt", encoding="utf-8") as fh:
        frame.to_csv(fh, index=False)
    assert (
        main(["train", "short.csv.gz", "--out", "run", "-q", "--epochs", "1", "--no-report"]) == 0
    )
    metrics = json.loads(Path("run/metrics.json").read_text())
    manifest = json.loads(Path("run/bundle/manifest.json").read_text())
    assert manifest["kind"] == "table" and metrics["dataset"] == "short"
    assert main(["predict", "run/bundle", "short.csv.gz", "-o", "p.csv"]) == 0
    assert len(pd.read_csv("p.csv")) == 30


def test_text_data_without_a_text_column_is_one_sentence(tmp_path: Path, capsys):
    frame = made(30).assign(note=lambda f: f["note"].str.split().str[0])  # one word each
    frame.to_csv("short.csv", index=False)
    for argv, fix in (
        (["short.csv", "--model", "text_bag"], "leave `--model` unset (not 'text_bag')"),
    ):
        assert main(["train", *argv, "--out", "run", "-q", "--epochs", "1"]) == 2
        err = capsys.readouterr().err
        assert "has no free-text column (string columns: 'note' median 1 words" in err, err
        assert fix in err and "Traceback" not in err and err.count("\n") == 1
        assert not Path("run").exists() and not list(Path(".").glob(".run*"))


def test_predict_on_a_missing_file_is_one_sentence_not_a_document(joint_run, tmp_path, capsys):
    # Before: a text bundle read the name 'missing.csv' as one document and wrote 1 prediction.
    _, root = joint_run
    assert main(["predict", str(root / "bundle"), "missing.csv", "-o", "out.csv"]) == 2
    err = capsys.readouterr().err
    assert "input 'missing.csv' does not exist; check the path" in err and "Traceback" not in err
    assert not Path("out.csv").exists()
