"""A text run end to end on tiny documents: the run record, the baseline, the bundle, the report, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidConfigError, InvalidInputError

from .conftest import documents, write_folder


def test_run_record_baselines_and_truncation(text_run):
    run, out = text_run
    m = run.metrics
    assert (
        m["kind"] == "text"
        and m["task"] == "multiclass"
        and m["classes"] == ["food", "money", "sport"]
    )
    assert set(m["test"]["baselines"]) == {"majority", "tfidf_linear_svc"}
    assert m["test"]["model"]["accuracy"] > 0.5  # three topics with disjoint words
    text = m["text"]
    assert text["family"] == "text_bag" and text["truncated_train"] == 0 and text["vocab_size"] > 30
    assert text["documents_per_second"] > 0
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert manifest["kind"] == "text"
    vocab = json.loads(manifest["preprocessor"]["tokenizer"])["model"]["vocab"]
    assert (
        vocab["[PAD]"] == 0 and vocab["[UNK]"] == 1 and "goal" in vocab
    )  # lowercased words of the training split
    schema = manifest["preprocessor"]["schema"]["columns"][0]
    assert schema["kind"] == "text" and schema["reason"].startswith("free text")


def test_report_shows_text_section_with_escaped_mistakes(text_run):
    _, out = text_run
    page = (out / "report.html").read_text(encoding="utf-8")
    assert ">Text<" in page and "documents truncated (train / test)" in page
    assert "<script>alert(" not in page  # a document's text is shown escaped
    mistakes = json.loads((out / "text_mistakes.json").read_text())
    assert mistakes["n_test"] == 12 and len(mistakes["mistakes"]) == min(10, mistakes["n_wrong"])


def test_bundle_predicts_strings_rows_tables_and_folders(text_run, tmp_path: Path):
    _, out = text_run
    bundle = dl.load_bundle(out / "bundle")
    pred = bundle.predict(["the goal of the team and the coach", "bank stock price and profit"])
    assert pred["prediction"].tolist() == ["sport", "money"]
    assert list(pred.columns) == ["prediction", "proba_food", "proba_money", "proba_sport"]
    assert bundle.predict([{"text": "cheese bread soup"}])["prediction"].tolist() == ["food"]
    root = write_folder(tmp_path / "new", documents(9, seed=3))
    scores = bundle.evaluate(root)  # labelled folder: <label>/*.txt
    assert scores["rows"] == 9 and scores["model"]["accuracy"] >= 0.6
    with pytest.raises(InvalidInputError, match="text 1 is an empty text"):
        bundle.predict(["fine words here", "  "])
    with pytest.raises(InvalidInputError, match="has no text column 'text'"):
        bundle.predict([{"body": "cheese"}])


def test_cli_predict_on_a_folder_and_a_csv(text_run, tmp_path: Path, capsys):
    _, out = text_run
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.txt").write_text("goal ball team", encoding="utf-8")
    (flat / "b.txt").write_text("stock market price", encoding="utf-8")
    assert main(["predict", str(out / "bundle"), str(flat), "-o", "p.csv"]) == 0
    import pandas as pd

    got = pd.read_csv("p.csv")
    assert got["prediction"].tolist() == ["sport", "money"]
    documents(6, seed=5).to_csv("new.csv", index=False)
    assert main(["predict", str(out / "bundle"), "new.csv", "-o", "q.csv"]) == 0
    assert len(pd.read_csv("q.csv")) == 6


def test_other_families_train(tmp_path: Path):
    frame = documents(45)
    for family in ("text_rnn", "text_transformer"):
        run = dl.train(
            frame,
            model={"family": family, "hidden": [8]},
            embedding_dim=8,
            epochs=1,
            save=False,
            progress="quiet",
        )
        assert run.metrics["text"]["family"] == family and run.bundle.predict(
            ["ball goal"]
        ).shape == (1, 4)


def test_a_table_family_is_refused():
    with pytest.raises(InvalidConfigError, match="`family` is 'mlp', which does not read text"):
        dl.train(documents(30), model={"family": "mlp"}, epochs=1, save=False, progress="quiet")
