"""The TF-IDF n-gram network (`text_tfidf`): its TF-IDF vector is scikit-learn's, only the batch's n-gram
rows move in a step, and a run trains, saves, reloads and exports it."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import dlpipe as dl
from dlpipe.export import export_bundle
from dlpipe.models.registry import build_model
from dlpipe.models.text import TextTfidf, ngram_vocabulary

from .conftest import documents


def _model(ids: np.ndarray, vocab_size: int, **kw) -> tuple[TextTfidf, dict]:
    vocab = ngram_vocabulary(ids, vocab_size, min_df=1, **kw)
    n = len(vocab["idf"])
    m = TextTfidf(
        vocab_size,
        2,
        n_features=n,
        table_sizes=(len(vocab["keys1"]), len(vocab["keys2"])),
        hidden=0,
    )
    m.load_vocabulary(vocab)
    return m, vocab


def test_the_document_vector_is_scikit_learns_sublinear_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(0)
    vocab_size = 12
    ids = np.zeros((40, 30), np.int64)  # padded at the end, words 1..11 (1 = unknown word)
    for i in range(len(ids)):
        n = int(rng.integers(2, 30))
        ids[i, :n] = rng.integers(1, vocab_size, n)
    m, vocab = _model(ids, vocab_size)
    n_feat = len(vocab["idf"])
    # first layer = identity: the layer's output is the TF-IDF vector itself
    m.embed = torch.nn.EmbeddingBag(n_feat, n_feat, mode="sum", _weight=torch.eye(n_feat))
    m.bias = torch.nn.Parameter(torch.zeros(n_feat))
    with torch.no_grad():
        ours = m.features(torch.from_numpy(ids)).numpy()[:, 1:]

    def grams(row: np.ndarray) -> list[str]:  # the same features, as scikit-learn's analyzer
        row = row[row != 0].tolist()
        return [str(w) for w in row] + [f"{a}_{b}" for a, b in zip(row, row[1:], strict=False)]

    names = {str(w): f for w, f in enumerate(vocab["word_feature"]) if f}
    names.update(
        {
            f"{k // vocab_size}_{k % vocab_size}": f
            for keys, feats in (("keys1", "feat1"), ("keys2", "feat2"))
            for k, f in zip(vocab[keys], vocab[feats], strict=True)
            if k >= 0
        }
    )
    assert vocab["dropped"] == 0 and len(names) == n_feat - 1
    vec = TfidfVectorizer(
        analyzer=grams, sublinear_tf=True, vocabulary={k: f - 1 for k, f in names.items()}
    )
    theirs = vec.fit_transform(list(ids)).toarray()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # the sparse matrix the joint head of `minilm` fits on is the same vector
    from dlpipe.pipeline._fit_text import _tfidf_matrix

    np.testing.assert_allclose(_tfidf_matrix(m, ids).toarray()[:, 1:], theirs, atol=1e-6)
    # a word pair outside the vocabulary is no feature (the hash tables compare keys)
    unseen = torch.tensor([[vocab_size - 1, vocab_size - 1, vocab_size - 1]])
    pairs = m.ngrams(unseen)[0, 3:]
    seen_pair = (vocab_size - 1) * vocab_size + vocab_size - 1 in set(vocab["keys1"]) | set(
        vocab["keys2"]
    )
    assert bool((pairs != 0).all()) == seen_pair


def test_a_step_moves_only_the_rows_of_the_batchs_ngrams():
    from dlpipe.pipeline._fit_text import NgramOptimizer
    from dlpipe.training.trainer import Trainer

    ids = np.array([[2, 3, 4, 0], [5, 6, 0, 0], [7, 8, 9, 2]], np.int64)
    m, vocab = _model(ids, 10)
    before = m.embed.weight.detach().clone()
    opt = NgramOptimizer(Trainer(learning_rate=0.1, optimizer="adam"), m)
    x = torch.from_numpy(ids[:1])
    loss = m(x).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    moved = (m.embed.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    used = sorted(set(m.ngrams(x)[0].tolist()) - {0})
    assert moved == used and len(used) == 5  # 3 words and 2 pairs of the first document
    # Adam's first step: each coordinate moves by the rate against its gradient's sign
    grad = m.embed.weight.grad.to_dense()[used]
    delta = (m.embed.weight.detach() - before)[used]
    torch.testing.assert_close(delta, -0.1 * torch.sign(grad), atol=1e-5, rtol=0)
    assert float(opt.moments[0]["step"]) == 1.0
    state = opt.state_dict()  # a checkpoint holds the lazy moments beside the engine's groups
    assert len(state["groups"]) == len(opt.dense.groups) + 1


def test_a_run_trains_reloads_and_exports(tmp_path: Path, monkeypatch):
    run, bundle = _train_with(tmp_path, monkeypatch, epochs=4)
    text = run.metrics["text"]
    assert text["family"] == "text_tfidf" and text["ngrams"]["words"] > 20
    # every training document trains for the fixed epochs: no validation split, no early stopping,
    # and the recorded schedule is the constant rate the run had (nothing to watch for a plateau)
    assert run.metrics["rows"]["val"] == 0 and run.metrics["epochs_run"] == 4
    assert run.metrics["best_epoch"] is None and run.metrics["val"] == {}
    resolved = run.bundle.manifest["config"]
    assert resolved["data"]["val_fraction"] == 0.0 and resolved["train"]["schedule"] == "none"
    assert run.metrics["attributions"]["method"] == "occlusion"
    assert text["label_smoothing"] == 0.0  # TFIDF_SMOOTHING: off (docs/text.md)
    assert text["ngrams"]["nb"] == {"power": 1.5, "floor": 1.0}  # TFIDF_NB: on (docs/text.md)
    docs = ("cheese soup and bread", "the coach and the team and the ball", "profit and loss")
    assert bundle.predict(list(docs))["prediction"].tolist() == ["food", "sport", "money"]
    _check_reload_and_export(run, bundle, tmp_path, docs)


def test_val_fraction_brings_back_early_stopping_and_words_skip_punctuation():
    frame = documents(60)
    frame.loc[0, "text"] = "a goal, the <b>team</b>! " + frame.loc[0, "text"]
    run = dl.train(
        frame,
        model={"family": "text_tfidf"},
        epochs=3,
        val_fraction=0.2,
        save=False,
        progress="quiet",
        seed=0,
    )
    m = run.metrics
    assert m["rows"]["val"] > 0 and m["best_epoch"] in (1, 2, 3) and "loss" in m["val"]
    assert run.bundle.manifest["config"]["train"]["schedule"] == "plateau"
    # tokens are runs of 2+ word characters (scikit-learn's token pattern): no punctuation, no "a"
    tok = run.bundle.preprocessor.tokenizer
    assert tok.encode("A goal, the <b>team</b>!").tokens == ["goal", "the", "team"]


def test_text_tfidf_beside_table_columns(tmp_path: Path):
    frame = documents(48)
    frame["region"] = ["north", "south"] * (len(frame) // 2)
    run = dl.train(
        frame, model={"family": "text_tfidf"}, epochs=2, save=False, progress="quiet", seed=0
    )
    assert run.metrics["text"]["family"] == "text_tfidf"
    assert run.metrics["text"]["table_columns"] == ["region"]
    assert run.bundle.predict(frame.head(3)).shape[0] == 3


@pytest.mark.parametrize("bad", [{"table_sizes": [5]}, {"table_sizes": None}])
def test_a_spec_without_two_table_sizes_is_refused(bad):
    from dlpipe.core.errors import InvalidConfigError
    from dlpipe.models.registry import build_model

    spec = {"family": "text_tfidf", "vocab_size": 10, "n_outputs": 2, "n_features": 5, **bad}
    with pytest.raises(InvalidConfigError, match="needs `table_sizes`, two positive integers"):
        build_model(spec)


def _pair(vocab_size: int = 10, **kw) -> tuple[TextTfidf, TextTfidf]:
    """The same network without and with the linear path (same seed: the same first weights)."""
    ids = np.array([[2, 3, 4, 0], [5, 6, 0, 0], [7, 8, 9, 2]], np.int64)
    vocab = ngram_vocabulary(ids, vocab_size, min_df=1)
    models = []
    for skip in (False, True):
        torch.manual_seed(0)
        m = TextTfidf(
            vocab_size,
            3,
            n_features=len(vocab["idf"]),
            table_sizes=(len(vocab["keys1"]), len(vocab["keys2"])),
            hidden=4,
            skip=skip,
            **kw,
        )
        m.load_vocabulary(vocab)
        models.append(m.eval())
    return models[0], models[1]


def test_the_linear_path_starts_at_zero_and_its_gradient_reaches_the_batchs_ngrams():
    from dlpipe.pipeline._fit_text import NgramOptimizer
    from dlpipe.training.trainer import Trainer

    plain, wide = _pair()
    x = torch.tensor([[2, 3, 4, 0], [5, 6, 0, 0]])
    assert plain.skip is None and wide.skip is not None
    assert wide.skip.weight.shape == (wide.embed.weight.shape[0], 3)
    # zero-initialised: the untrained network computes what the plain one does
    with torch.no_grad():
        torch.testing.assert_close(wide(x), plain(x), rtol=0, atol=0)
    assert wide(x).shape == (2, 3)
    # the gradient of the logits reaches the path's rows of the batch's n-grams (sparse), and one
    # lazy Adam step moves those rows only
    opt = NgramOptimizer(Trainer(learning_rate=0.1, optimizer="adam"), wide)
    assert len(opt.sparse) == 2 and opt.sparse[1] is wide.skip.weight
    wide.train()
    opt.zero_grad()
    wide(x[:1]).logsumexp(1).sum().backward()
    grad = wide.skip.weight.grad
    assert grad is not None and grad.is_sparse
    used = sorted(set(wide.ngrams(x[:1])[0].tolist()) - {0})
    assert sorted(set(grad.coalesce().indices()[0].tolist())) == used
    opt.step()
    moved = (wide.skip.weight.detach() != 0).any(dim=1).nonzero().flatten().tolist()
    assert moved == used and len(used) == 5  # 3 words and 2 pairs of the first document
    with torch.no_grad():  # the path now adds to the logits: its bag's output times skip_scale
        wide.eval().skip_scale = 0.0
        deep = wide(x[:1])
        wide.skip_scale = 1.0
        path = wide(x[:1]) - deep
        assert path.abs().max() > 0
        wide.skip_scale = 3.0
        torch.testing.assert_close(wide(x[:1]) - deep, 3.0 * path, rtol=1e-4, atol=1e-6)
    assert len(opt.state_dict()["groups"]) == len(opt.dense.groups) + 2


def test_a_spec_without_skip_builds_the_plain_network_and_skip_needs_a_hidden_layer():
    from dlpipe.core.errors import InvalidConfigError
    from dlpipe.models.registry import build_model

    spec = {
        "family": "text_tfidf",
        "vocab_size": 10,
        "n_outputs": 2,
        "n_features": 5,
        "table_sizes": [5, 7],
        "hidden": 4,
    }
    assert build_model(spec).skip is None  # a bundle from before the key
    assert build_model({**spec, "skip": True}).skip is not None
    with pytest.raises(
        InvalidConfigError, match="`skip` .* needs a hidden layer but `hidden` is 0"
    ):
        build_model({**spec, "skip": True, "hidden": 0})  # linear already


def _train_with(
    tmp_path: Path, monkeypatch, epochs: int = 3, **switches: object
) -> tuple[Any, Any]:
    """A text_tfidf run of ``epochs`` with ``_fit_text``'s module switches set; (run, reloaded bundle)."""
    from dlpipe.pipeline import _fit_text

    for name, value in switches.items():
        monkeypatch.setattr(_fit_text, name, value)
    run = dl.train(
        documents(60),
        model={"family": "text_tfidf"},
        out=tmp_path / "run",
        epochs=epochs,
        progress="quiet",
        seed=0,
    )
    assert run.metrics["test"]["model"]["accuracy"] >= 0.9
    return run, dl.load_bundle(tmp_path / "run" / "bundle")


def _check_reload_and_export(
    run: Any,
    bundle: Any,
    tmp_path: Path,
    docs: tuple[str, ...] = ("cheese soup and bread", "the coach and the team and the ball"),
) -> None:
    """The reloaded bundle predicts ``docs`` as the run's did, and its TorchScript export matches it."""
    np.testing.assert_allclose(
        bundle.predict(list(docs)).filter(like="proba_").to_numpy(),
        run.bundle.predict(list(docs)).filter(like="proba_").to_numpy(),
        atol=1e-6,
    )
    out = export_bundle(bundle, tmp_path / "m.pt", format="torchscript")
    assert out.parity["max_abs_diff"] < 1e-5


def test_a_run_with_the_linear_path_saves_it_and_reloads_it(tmp_path: Path, monkeypatch):
    run, bundle = _train_with(tmp_path, monkeypatch, TFIDF_SKIP=True, TFIDF_SKIP_SCALE=10.0)
    spec = bundle.manifest["model_spec"]
    assert spec["skip"] is True and spec["skip_scale"] == 10.0 and bundle.model.skip_scale == 10.0
    assert bundle.model.skip is not None and bool(bundle.model.skip.weight.abs().sum() > 0)
    _check_reload_and_export(run, bundle, tmp_path)


def test_the_character_ngram_vector_is_scikit_learns_char_wb_of_the_words():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from dlpipe.models.text import char_vocabulary
    from dlpipe.pipeline._fit_text import _tfidf_matrix

    docs = ["the cat sat on the mat", "the dog ate the cat food", "cat and dog", "dogs eat food"]
    words = ["[PAD]", "[UNK]"] + sorted({w for d in docs for w in d.split()})
    index = {w: i for i, w in enumerate(words)}
    ids = np.zeros((len(docs), 8), np.int64)
    for r, d in enumerate(docs):
        ids[r, : len(d.split())] = [index[w] for w in d.split()]
    vocab = ngram_vocabulary(ids, len(words), min_df=1)
    n_words = len(vocab["idf"])
    chars = char_vocabulary(ids, words, first=n_words, min_df=1)
    m = TextTfidf(
        len(words),
        2,
        n_features=n_words + chars["n_chars"],
        table_sizes=(len(vocab["keys1"]), len(vocab["keys2"])),
        hidden=0,
        char_slots=chars["word_chars"].shape[1],
    )
    m.load_vocabulary(vocab, chars)
    x = _tfidf_matrix(m, ids).toarray()
    plain, _ = _model(ids, len(words))  # the words' and pairs' part is unchanged
    np.testing.assert_allclose(x[:, :n_words], _tfidf_matrix(plain, ids).toarray(), atol=1e-6)
    ref = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    theirs = ref.fit_transform(docs)
    ours = x[:, n_words:]
    assert ours.shape[1] == theirs.shape[1]  # every n-gram of the words (min_df 1)
    for r in range(len(docs)):  # each document: the same values, unit norm
        np.testing.assert_allclose(
            np.sort(ours[r][ours[r] > 0]), np.sort(theirs[r].data), atol=1e-6
        )
    # " cat " holds " c", "ca", "at", "t ", " ca", "cat", "at ", " cat", "cat ", " cat ": 10 slots
    assert (chars["word_chars"][index["cat"]] != 0).sum() == 10
    # an n-gram of words in fewer than min_df documents is no feature
    few = char_vocabulary(ids, words, first=n_words, min_df=2)
    assert 0 < few["n_chars"] < chars["n_chars"]
    # `char_weight` scales the character vector alone (a spec without the key: 1, as before)
    spec = {
        "family": "text_tfidf",
        "vocab_size": len(words),
        "n_outputs": 2,
        "n_features": n_words + chars["n_chars"],
        "table_sizes": [len(vocab["keys1"]), len(vocab["keys2"])],
        "hidden": 0,
        "char_slots": int(chars["word_chars"].shape[1]),
    }
    assert build_model(spec).char_weight == 1.0
    half = build_model({**spec, "char_weight": 0.5})
    half.load_vocabulary(vocab, chars)
    y = _tfidf_matrix(half, ids).toarray()
    np.testing.assert_allclose(y[:, :n_words], x[:, :n_words], atol=1e-6)
    np.testing.assert_allclose(y[:, n_words:], 0.5 * ours, atol=1e-6)


def test_the_character_block_computed_once_is_the_one_the_model_computes_from_token_ids():
    """A training run hands each batch its documents' rows of `char_matrix` (computed once) instead of
    recomputing the character n-grams from token ids every epoch: the same vector, the same logits."""
    from dlpipe.models.text import char_matrix, char_vocabulary
    from dlpipe.pipeline._fit_text import CharBags, _tfidf_matrix

    rng = np.random.default_rng(0)
    n_words = 60
    words = ["[PAD]", "[UNK]"] + [
        "".join(rng.choice(list("abcdefg"), int(rng.integers(1, 9)))) for _ in range(n_words - 2)
    ]
    ids = np.zeros((40, 30), np.int64)
    for r in range(1, 40):  # row 0: an empty document
        k = int(rng.integers(1, 30))
        ids[r, :k] = rng.integers(1, n_words, k)  # [UNK] (1) included: no n-grams
    vocab = ngram_vocabulary(ids, n_words)
    chars = char_vocabulary(ids, words, first=len(vocab["idf"]), ngram_range=(3, 5))
    m = TextTfidf(
        n_words,
        3,
        n_features=len(vocab["idf"]) + chars["n_chars"],
        table_sizes=(len(vocab["keys1"]), len(vocab["keys2"])),
        hidden=8,
        char_slots=chars["word_chars"].shape[1],
        char_weight=0.5,
    ).eval()
    m.load_vocabulary(vocab, chars)
    block = char_matrix(
        ids, chars["word_chars"], np.concatenate([vocab["idf"], chars["idf"]]), weight=0.5
    )
    first = len(vocab["idf"])
    np.testing.assert_allclose(
        block.toarray()[:, first:], _tfidf_matrix(m, ids).toarray()[:, first:], atol=1e-6
    )
    assert block[0].nnz == 0 and np.allclose(np.sqrt(block.multiply(block).sum(1))[1:], 0.5)
    t = torch.from_numpy(ids)
    rows = torch.tensor([5, 0, 17, 3])  # any documents, in any order
    batch = CharBags(block)([t[rows], rows], True)
    assert len(batch) == 3 and batch[1].shape == batch[2].shape
    torch.testing.assert_close(m(*batch), m(t[rows]), atol=1e-6, rtol=0)
    # on CPU, eager calls compute the block with char_matrix too; a traced or exported graph
    # computes it from token ids with tensor operations: the same logits
    with warnings.catch_warnings():  # as the exporter's TorchScript: deprecation and tracer notices
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(m, (t,), check_trace=False)
    torch.testing.assert_close(traced(t), m(t), atol=1e-6, rtol=0)
    torch.testing.assert_close(traced(t[rows]), m(*batch), atol=1e-6, rtol=0)
    # the words x n-grams matrix an eager call builds is kept, until the vocabulary is written again
    kept = m._word_gram()
    assert m._word_gram() is kept
    before = m(t)
    other = chars["word_chars"].copy()
    other[[2, 3]] = other[[3, 2]]  # two words swap their n-grams
    with torch.no_grad():
        m.word_chars.copy_(torch.from_numpy(other))  # what loading weights does: in place
    assert m._word_gram() is not kept
    after = m(t)
    assert not torch.allclose(after, before)
    m.word_chars = None  # type: ignore[assignment]
    m.register_buffer("word_chars", torch.from_numpy(other))
    torch.testing.assert_close(m(t), after, atol=1e-6, rtol=0)  # a fresh vocabulary: the same


def test_the_training_bags_sparse_gradient_is_the_embedding_bags():
    """A training step's first-layer gradient (one sparse product over the batch's distinct rows) is
    torch's own EmbeddingBag gradient: rows repeated within and across documents, an empty document."""
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(50, 6, mode="sum", sparse=True)
    f = torch.tensor([3, 3, 7, 0, 7, 9, 9, 9, 3, 49], dtype=torch.int64)
    w = torch.rand(10)
    offsets = torch.tensor([0, 4, 4, 8])  # document 1 is empty
    upstream = torch.randn(4, 6)
    theirs = torch.autograd.grad(
        (bag(f, offsets, per_sample_weights=w) * upstream).sum(), bag.weight
    )
    from dlpipe.models.text import _bag_sum

    out = _bag_sum(bag, f, offsets, w)
    torch.testing.assert_close(out, bag(f, offsets, per_sample_weights=w))
    (ours,) = torch.autograd.grad((out * upstream).sum(), bag.weight)
    assert ours.is_sparse and ours.is_coalesced() and ours._nnz() == 5  # rows 0, 3, 7, 9, 49
    torch.testing.assert_close(ours.to_dense(), theirs[0].to_dense())
    with torch.no_grad():  # outside training steps: torch's own bag
        torch.testing.assert_close(_bag_sum(bag, f, offsets, w), out.detach())


def test_a_run_with_character_ngrams_saves_and_reloads_them(tmp_path: Path, monkeypatch):
    run, bundle = _train_with(tmp_path, monkeypatch, TFIDF_CHARS=(3, 5), TFIDF_CHAR_WEIGHT=0.5)
    chars = run.metrics["text"]["ngrams"]["characters"]
    assert chars["ngram_range"] == [3, 5] and chars["features"] > 50 and chars["weight"] == 0.5
    spec = bundle.manifest["model_spec"]
    assert spec["char_slots"] == chars["per_word"] and bundle.model.word_chars is not None
    assert spec["char_weight"] == 0.5 and bundle.model.char_weight == 0.5
    assert spec["n_features"] == bundle.model.embed.weight.shape[0]
    _check_reload_and_export(run, bundle, tmp_path)


def test_the_label_smoothing_switch_smooths_training_steps_only(tmp_path: Path, monkeypatch):
    from dlpipe.pipeline._fit_text import _SmoothedCrossEntropy

    torch.manual_seed(0)
    logits, y = torch.randn(5, 3, requires_grad=True), torch.tensor([0, 1, 2, 1, 0])
    loss = _SmoothedCrossEntropy(0.1)
    target = torch.full((5, 3), 0.1 / 3)  # 0.9 + 0.1 / 3 on the class, 0.1 / 3 on the others
    target[torch.arange(5), y] += 0.9
    expected = -(target * torch.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(loss(logits, y), expected)
    with torch.no_grad():  # a validation loss: the plain log loss
        torch.testing.assert_close(loss(logits, y), torch.nn.functional.cross_entropy(logits, y))
    run, _ = _train_with(tmp_path, monkeypatch, TFIDF_SMOOTHING=0.1)
    assert run.metrics["text"]["label_smoothing"] == 0.1


def test_nb_ratios_are_the_largest_one_vs_rest_log_count_ratio_of_each_feature():
    from dlpipe.models.text import nb_ratios

    rng = np.random.default_rng(1)
    vocab_size = 9
    ids = np.zeros((30, 8), np.int64)  # padded at the end
    for i in range(len(ids)):
        n = int(rng.integers(1, 8))
        ids[i, :n] = rng.integers(1, vocab_size, n)
    y = rng.integers(0, 3, len(ids))
    vocab = ngram_vocabulary(ids, vocab_size, min_df=1)
    pair_feature = {
        int(k): int(f)
        for keys, feats in (("keys1", "feat1"), ("keys2", "feat2"))
        for k, f in zip(vocab[keys], vocab[feats], strict=True)
        if k >= 0
    }
    has = np.zeros((len(ids), len(vocab["idf"])), bool)  # documents x features: contains it
    for i, row in enumerate(ids):
        row = row[row != 0]
        for w in row:
            has[i, vocab["word_feature"][w]] = True
        for a, b in zip(row, row[1:], strict=False):
            has[i, pair_feature[int(a) * vocab_size + int(b)]] = True
    has[:, 0] = False
    expected = np.zeros(has.shape[1])  # negatives to 0
    for c in range(3):  # smoothing 1, each side's counts normalised to sum 1
        p, q = 1.0 + has[y == c].sum(0), 1.0 + has[y != c].sum(0)
        expected = np.maximum(expected, np.log(p / p.sum()) - np.log(q / q.sum()))
    expected[0] = 0.0
    np.testing.assert_allclose(nb_ratios(ids, y, vocab), expected, rtol=1e-12, atol=1e-12)


def test_nb_weighted_inputs_scale_the_idf_buffer_and_can_be_switched_off(
    tmp_path: Path, monkeypatch
):
    on, bundle = _train_with(tmp_path / "on", monkeypatch, TFIDF_NB=(2.0, 1.0))
    assert on.metrics["text"]["ngrams"]["nb"] == {"power": 2.0, "floor": 1.0}
    _check_reload_and_export(on, bundle, tmp_path)
    off, plain = _train_with(tmp_path / "off", monkeypatch, TFIDF_NB=None)
    assert "nb" not in off.metrics["text"]["ngrams"]
    # the same vocabulary; with floor 1 every feature's IDF is at least the plain one
    ratio = bundle.model.idf[1:] / plain.model.idf[1:]
    assert bool((ratio >= 1 - 1e-6).all()) and float(ratio.max()) > 1.5


def test_a_small_training_set_gets_enough_steps():
    from dlpipe.pipeline._fit_text import TFIDF_EPOCHS, TFIDF_MIN_STEPS, TfidfTextRecipe

    recipe = TfidfTextRecipe()
    batch = recipe.auto_batch_size(400)  # 50: 8 steps an epoch
    assert recipe.auto_epochs(400, batch) == math.ceil(TFIDF_MIN_STEPS / 8) == 38
    assert recipe.auto_epochs(5485, recipe.auto_batch_size(5485)) == TFIDF_EPOCHS  # R8: as before
    assert recipe.auto_epochs(11293, recipe.auto_batch_size(11293)) == TFIDF_EPOCHS
