"""A text run end to end on tiny documents: the run record, the baseline, the bundle, the report, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.export import export_bundle
from dlpipe.pipeline._fit_text import SVC_C_GRID, svc_strength
from tests.conftest import shared_data

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
    assert (
        text["family"] == "text_tfidf" and text["truncated_train"] == 0 and text["vocab_size"] > 30
    )
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
    runs = {}
    for family in ("text_rnn", "text_transformer"):
        run = runs[family] = dl.train(
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
        info = run.metrics["attributions"]  # integrated gradients on the token embeddings add up
        assert info["method"] == "integrated_gradients" and info["completeness_error"] <= 0.01
    rnn = runs["text_rnn"]
    # torch.export fixes the GRU's length: refused before anything is written (ONNX/TorchScript work)
    with pytest.raises(
        InvalidInputError, match="a text_rnn bundle exports to ONNX or TorchScript but not 'pt2'"
    ):
        export_bundle(rnn.bundle, tmp_path / "m.pt2", format="pt2")
    assert not list(tmp_path.iterdir())


def test_a_table_family_is_refused():
    with pytest.raises(InvalidConfigError, match="`family` is 'mlp', which does not read text"):
        dl.train(documents(30), model={"family": "mlp"}, epochs=1, save=False, progress="quiet")


def test_report_shows_token_attributions_across_classes_escaped(text_run, tmp_path: Path):
    import shutil

    from dlpipe.reports import read_run_folder
    from dlpipe.reports.attributions import text_section
    from dlpipe.reports.report import render_page

    run, out = text_run
    info = run.metrics["attributions"]
    assert info["method"] == "occlusion" and info["rows"] == 6  # the bag has no per-token tensor
    docs = json.loads((out / "token_attributions.json").read_text())["documents"]
    assert {d["true"] for d in docs} == {
        "food",
        "money",
        "sport",
    }  # across classes, not the first rows
    assert all(
        len(d["tokens"]) >= 8 and all(isinstance(v, float) for _, v in d["tokens"]) for d in docs
    )
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="token-attributions"' in page and page.count('<div class="tokens">') == 6
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    docs[0]["tokens"][0] = ["<script>alert(1)</script>", 0.5]  # a token as a document could hold it
    (copy / "token_attributions.json").write_text(json.dumps({"documents": docs}))
    page = render_page(
        title="t", heading="h", subtitle="s", sections=text_section(read_run_folder(copy))
    )
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_explain_scores_each_token_of_new_documents(text_run, tmp_path: Path, capsys):
    _, out = text_run
    e = dl.explain(out / "bundle", ["the goal of the <b>team</b>", "bank stock price"])
    assert (
        e.kind == "text"
        and e.method == "occlusion"
        and list(e.items["predicted"]) == ["sport", "money"]
    )
    # the default (text_tfidf) reads words of 2+ characters: the tags' "<", "b", ">" are not tokens
    assert e.tokens[0] == ["the", "goal", "of", "the", "team"]
    goal = e.attributions[0][1]
    assert goal > e.attributions[0][0]  # the topic word counts more for 'sport' than 'the'
    assert len(e.attributions[0]) == len(e.tokens[0]) and np.isnan(e.completeness_error)
    page = e.to_html()
    assert "<b>" not in page
    assert main(["explain", str(out / "bundle"), str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    documents(4, seed=7).to_csv(tmp_path / "new.csv", index=False)
    assert (
        main(
            ["explain", str(out / "bundle"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "ex")]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == [
        ".dlpipe",
        "items.csv",
        "tokens.csv",
        "tokens.html",
    ]
    assert "for:" in capsys.readouterr().out


def test_baseline_svc_strength_is_chosen_by_cross_validation(text_run):
    run, _ = text_run
    test = run.metrics["test"]
    setting = test["baseline_settings"]["tfidf_linear_svc"]
    cv = setting["cv_accuracy"]
    assert setting["folds"] == 5 and set(cv) == {f"{c:g}" for c in SVC_C_GRID}
    best = max(cv.values())
    assert cv[f"{setting['C']:g}"] == best  # the best C, the smallest of a tie
    assert all(a < best for c, a in cv.items() if float(c) < setting["C"])
    assert f"C={setting['C']:g}, chosen by 5-fold cross-validation" in test["baseline_notes"][0]


def test_baseline_svc_strength_on_400_reuters_documents_and_its_limits(monkeypatch):
    from sklearn.model_selection import train_test_split

    from dlpipe.pipeline import _fit_text

    train = pd.read_csv(shared_data("text", "reuters_r8_train.csv.gz"))
    small, _ = train_test_split(train, train_size=400, stratify=train["label"], random_state=0)
    texts, y = small["text"].tolist(), small["label"].astype("category").cat.codes.to_numpy()
    setting = svc_strength(texts, y)  # the few-label check's documents: C=1 under-fits them
    assert setting["C"] == 30.0 and setting["cv_accuracy"]["1"] < setting["cv_accuracy"]["30"]
    monkeypatch.setattr(_fit_text, "SVC_TUNE_MAX_DOCS", 399)
    assert svc_strength(texts, y) == {"C": 1.0}  # many documents: the published C=1
    assert svc_strength(["a b", "c d", "e f"], np.array([0, 0, 1])) == {"C": 1.0}  # a class of one


def test_first_layer_is_stored_at_float16_and_predicts_what_the_run_evaluated(text_run):
    from safetensors import safe_open

    run, out = text_run
    assert run.metrics["text"]["float16_weights"] == ["embed.weight"]
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert manifest["weights"]["stored_float16"] == ["embed.weight"]
    with safe_open(str(out / "bundle" / "weights.safetensors"), "pt") as f:
        assert f.get_slice("embed.weight").get_dtype() == "F16"
        assert f.get_slice("head.1.weight").get_dtype() == "F32"  # small: as it was
        for name in manifest["weights"].get("stored_int32", []):  # token and n-gram ids
            assert f.get_slice(name).get_dtype() == "I32"
    docs = documents(30, seed=5)["text"].tolist()
    loaded = dl.load_bundle(out / "bundle")
    assert loaded.model.embed.weight.dtype == torch.float32  # read back into the model's float32
    assert loaded.model.word_feature.dtype == torch.int64
    pd.testing.assert_frame_equal(loaded.predict(docs), run.bundle.predict(docs))
