"""Settings of ``text_tfidf`` (the default text family, issue #19) compared on training documents only.

For each split seed ``s``, R8's (or 20 Newsgroups') *training* file is cut in two, stratified
(``train_test_split(test_size=0.2, random_state=s)``): a run trains on the 80% (``dl.train(part,
test=rest, seed=s)``) and is scored on the 20% it never saw. The test split is not read. Every variant
of a split sees the same documents, so variants are compared split by split; TF-IDF + LinearSVC (C=1)
fitted in the same run on the same documents is the reference.

A variant is ``name=key:value,key:value`` with keys ``words`` (1: tokens are runs of 2+ word
characters, ``TFIDF_WORDS_ONLY``; 0: words and punctuation runs), ``val`` (``val_fraction``; with 0
every training document trains for the fixed epochs), ``epochs``, ``hidden``, ``dropout``,
``mindf`` (``TFIDF_MIN_DF``: documents a word or pair must be in), ``pairs``
(``TFIDF_MAX_BIGRAMS``), ``tokmin`` (the tokenizer's ``min_frequency``), ``skip`` (1: a linear path from the TF-IDF vector
to the logits beside the hidden layer, ``TFIDF_SKIP``), ``skipscale`` (its logits' factor: with
Adam, its learning rate's), ``b1`` / ``b2`` (the first layer's lazy Adam betas, ``TFIDF_BETAS``), ``wd`` (the engine's ``weight_decay``, on the layers after the first), ``chars`` (25: character 2-5 grams of the words beside them, ``TFIDF_CHARS``; 0: none), ``chardf``
(with ``chars``: n-grams only for the words in at most that many training documents), ``charw`` (the
character block's weight beside the words', ``TFIDF_CHAR_WEIGHT``), ``ls`` (label smoothing of the training loss,
``TFIDF_SMOOTHING``), ``batch`` (the batch size), ``pairw`` (the word pairs' IDF times this), ``lr``, ``cos`` (1: a cosine decay of the rate to the last epoch) and ``members`` (that many runs, seeds ``s``, ``s + 100``, ..., their probabilities averaged).
On the first (sparse) layer, which the engine's ``weight_decay`` does not reach: ``l1wd`` (a decoupled
weight decay, AdamW-style, on the rows a step moves: each is multiplied by ``1 - lr * l1wd`` after the
lazy Adam's step) and ``maxnorm`` (a row of a step's n-grams whose L2 norm exceeds this is scaled
down to it). ``nb`` (NBSVM-style inputs, Wang & Manning 2012, for several classes, ``TFIDF_NB``):
each feature's IDF times ``max_c r_c`` to the power ``nb`` (``r_c``: the one-vs-rest log-count ratio
of class ``c`` on binary document counts with smoothing ``nbalpha``, default 1, negatives 0,
``models.text.nb_ratios``; a floor ``nbfloor``, default 0, keeps features that favour no class),
fitted on the training documents (0: off; without the key, ``TFIDF_NB``'s default, power 1.5 and
floor 1). Each row records the trained first layer's row norms (``row_norm``: median, 90th, 99th
percentile, max).

``--blend-c 10,30,100``: each run's network also averaged with a logistic regression (scikit-learn,
L-BFGS, those C) fitted on the network's own TF-IDF vectors of the 80%, weights 0.2-0.6 (key ``C<C>w<w>``;
``gC...``: log-probabilities averaged; ``lr<C>``: the logistic regression alone), in the row's ``blend``.

Run: ``nice -n 5 .venv/bin/python benchmarks/text_tfidf_dev.py --set r8 --splits 0,1,2
--variants "new=words:1,val:0" "old=words:0,val:0.1"``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
SETS = {"r8": "reuters_r8", "20ng": "20newsgroups"}
DEFAULTS: dict[str, Any] = {}


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def parse_variant(text: str) -> tuple[str, dict[str, float]]:
    name, _, body = text.partition("=")
    out = {}
    for part in filter(None, body.split(",")):
        k, _, v = part.partition(":")
        out[k] = float(v)
    return name, out


BLEND_C: list[float] = []
BLEND_W = (0.2, 0.3, 0.4, 0.5, 0.6)


def _blends(
    bundle: Any,
    part: Path,
    texts: list[str],
    truth: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
) -> dict[str, float]:
    """The network's probabilities averaged with a logistic regression's (scikit-learn, L-BFGS) fitted on
    the network's own TF-IDF vectors of the 80%: accuracy on the 20% per C and weight ``w`` of the
    logistic part (``lr<C>``: the logistic regression alone; ``g``: logits summed instead of probabilities)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from dlpipe.pipeline._fit_text import _tfidf_matrix

    train = pd.read_csv(part)
    model = bundle.model.eval()
    x_tr = _tfidf_matrix(model, bundle._prepare(train["text"].tolist()).inputs[0])
    x_te = _tfidf_matrix(model, bundle._prepare(texts).inputs[0])
    y_tr = train["label"].astype(str).to_numpy()
    out: dict[str, float] = {}
    cls = np.asarray(classes)
    logp_net = np.log(np.clip(proba, 1e-12, 1))
    for c in BLEND_C:
        t0 = time.perf_counter()
        with threadpool_limits(1):
            lr = LogisticRegression(C=c, max_iter=1000).fit(x_tr, y_tr)
        order = [list(lr.classes_).index(k) for k in classes]
        p = lr.predict_proba(x_te)[:, order]
        out[f"lr{c:g}"] = round(float((cls[p.argmax(1)] == truth).mean()), 4)
        for w in BLEND_W:
            mix = (1 - w) * proba + w * p
            out[f"C{c:g}w{w:g}"] = round(float((cls[mix.argmax(1)] == truth).mean()), 4)
            g = (1 - w) * logp_net + w * np.log(np.clip(p, 1e-12, 1))
            out[f"gC{c:g}w{w:g}"] = round(float((cls[g.argmax(1)] == truth).mean()), 4)
        out[f"lr{c:g}_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _char_options(text_models: Any, max_df: int) -> None:
    """Cheaper character n-grams (with ``chars``): ``chardf`` t > 0 gives n-grams only to the words in at
    most t training documents (their n-grams' document counts from those words only). The model's
    token ids are first cut to the tokens whose word has n-grams (the same features and weights as the
    product's ``occurrences``, a test here checked it; far fewer slots to sort when few words have
    n-grams)."""
    import torch

    DEFAULTS.setdefault("char_vocabulary", text_models.char_vocabulary)
    DEFAULTS.setdefault("occurrences", text_models.TextTfidf.occurrences)

    def char_vocabulary(ids: Any, words: list[str], **k: Any) -> dict[str, Any]:
        if max_df:
            ids = np.asarray(ids, np.int64)
            df = np.zeros(len(words), np.int64)
            for row in ids:
                df[np.unique(row)] += 1
            words = [w if df[i] <= max_df else "" for i, w in enumerate(words)]
        return DEFAULTS["char_vocabulary"](ids, words, **k)  # type: ignore[no-any-return]

    def occurrences(self: Any, ids: Any, *chars: Any) -> Any:
        if chars:  # the character block computed beforehand (a training run's batches)
            return DEFAULTS["occurrences"](self, ids, *chars)
        f, w, real = self._weigh(self.ngrams(ids))
        if self.word_chars is None:
            return f, w, real
        ids = self._cut(ids)
        has = (self.word_chars[ids, 0] != 0) & (ids != 0)  # (B, T): tokens with n-grams
        k = max(1, int(has.sum(1).max()))
        order = (~has).to(torch.int8).argsort(dim=1, stable=True)[:, :k]
        keep = ids.gather(1, order) * has.gather(1, order)
        fc, wc, rc = self._weigh(self.word_chars[keep].flatten(1), once=True)
        wc = wc * self.char_weight  # ``charw``: TFIDF_CHAR_WEIGHT
        return torch.cat([f, fc], 1), torch.cat([w, wc], 1), torch.cat([real, rc], 1)

    text_models.char_vocabulary = char_vocabulary
    text_models.TextTfidf.occurrences = occurrences


def _sparse_step(l1wd: float, maxnorm: float) -> None:
    """``l1wd`` / ``maxnorm``: after the lazy Adam's step, the first layer's rows of the batch's n-grams
    decay (times ``1 - lr * l1wd``) and are capped at L2 norm ``maxnorm`` (0: neither)."""
    import torch

    from dlpipe.pipeline import _fit_text

    DEFAULTS.setdefault("step", _fit_text.NgramOptimizer.step)

    @torch.no_grad()
    def step(self: Any) -> None:
        grads = [p.grad for p in self.sparse]
        DEFAULTS["step"](self)
        for p, g in zip(self.sparse[:1], grads[:1], strict=True):  # the first layer (not ``skip``)
            if g is None:
                continue
            rows = g.coalesce().indices()[0]
            w = p[rows]
            if l1wd:
                w.mul_(1 - self.lr * l1wd)
            if maxnorm:
                w.mul_((maxnorm / w.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0))
            p[rows] = w

    _fit_text.NgramOptimizer.step = DEFAULTS["step"] if not (l1wd or maxnorm) else step  # type: ignore[method-assign]


def run_variant(
    name: str, opts: dict[str, float], part: Path, rest: pd.DataFrame, split: int, work: Path
) -> dict[str, Any]:
    import dlpipe as dl
    from dlpipe.data.text import fit_tokenizer
    from dlpipe.pipeline import _fit_text

    DEFAULTS.setdefault("min_df", _fit_text.TFIDF_MIN_DF)
    DEFAULTS.setdefault("max_bigrams", _fit_text.TFIDF_MAX_BIGRAMS)

    _fit_text.TFIDF_WORDS_ONLY = bool(opts.get("words", 1))
    _fit_text.TFIDF_SKIP = bool(opts.get("skip", 0))
    _fit_text.TFIDF_SKIP_SCALE = float(opts.get("skipscale", 1.0))
    # the first layer's lazy Adam: beta2 (b2) and beta1 (b1)
    _fit_text.TFIDF_BETAS = (float(opts.get("b1", 0.9)), float(opts.get("b2", 0.999)))
    DEFAULTS.setdefault("chars", _fit_text.TFIDF_CHARS)  # type: ignore[arg-type]
    if "chars" in opts:  # chars:25 = character 2-5 grams, chars:0 = none
        c = int(opts["chars"])
        _fit_text.TFIDF_CHARS = (c // 10, c % 10) if c else None
    else:
        _fit_text.TFIDF_CHARS = DEFAULTS["chars"]  # type: ignore[assignment]
    DEFAULTS.setdefault("smoothing", _fit_text.TFIDF_SMOOTHING)
    # label smoothing of the training steps
    _fit_text.TFIDF_SMOOTHING = float(opts.get("ls", DEFAULTS["smoothing"]))
    _fit_text.TFIDF_MIN_DF = int(opts.get("mindf", DEFAULTS["min_df"]))
    _fit_text.TFIDF_MAX_BIGRAMS = int(opts.get("pairs", DEFAULTS["max_bigrams"]))
    # the word tokenizer's min_frequency (2: a word seen once is [UNK])
    _fit_text.fit_tokenizer = functools.partial(
        fit_tokenizer, min_frequency=int(opts.get("tokmin", 2))
    )
    # the word pairs' IDF times ``pairw`` (their weight beside the words' in the one L2-normalised vector)
    import dlpipe.models.text as text_models

    DEFAULTS.setdefault("ngram_vocabulary", text_models.ngram_vocabulary)
    pairw = float(opts.get("pairw", 1.0))

    def vocabulary(*a: Any, **k: Any) -> dict[str, Any]:
        out = DEFAULTS["ngram_vocabulary"](*a, **k)
        out["idf"][1 + out["n_words"] :] *= pairw
        return out  # type: ignore[no-any-return]

    text_models.ngram_vocabulary = vocabulary  # type: ignore[assignment]
    DEFAULTS.setdefault("char_weight", _fit_text.TFIDF_CHAR_WEIGHT)
    _fit_text.TFIDF_CHAR_WEIGHT = float(opts.get("charw", DEFAULTS["char_weight"]))
    _char_options(text_models, int(opts.get("chardf", 0)))
    _sparse_step(float(opts.get("l1wd", 0.0)), float(opts.get("maxnorm", 0.0)))
    DEFAULTS.setdefault("nb", _fit_text.TFIDF_NB)
    # NBSVM-style inputs: the ratios (at least ``nbfloor``) to the power ``nb``; nb:0 = off
    if "nb" in opts:
        _fit_text.TFIDF_NB = (opts["nb"], float(opts.get("nbfloor", 0.0))) if opts["nb"] else None
    else:
        _fit_text.TFIDF_NB = DEFAULTS["nb"]
    DEFAULTS.setdefault("nb_ratios", text_models.nb_ratios)
    text_models.nb_ratios = functools.partial(  # type: ignore[assignment]
        DEFAULTS["nb_ratios"], alpha=float(opts.get("nbalpha", 1.0))
    )
    kw: dict[str, Any] = {}
    if "val" in opts:
        kw["val_fraction"] = opts["val"]
    if "epochs" in opts:
        kw["epochs"] = int(opts["epochs"])
    if "lr" in opts:
        kw["learning_rate"] = opts["lr"]
    if "batch" in opts:
        kw["batch_size"] = int(opts["batch"])
    if "dropout" in opts:
        kw["dropout"] = opts["dropout"]
    if "wd" in opts:  # the engine's weight_decay: the dense layers only (the lazy Adam has none)
        kw["weight_decay"] = opts["wd"]
    if opts.get("cos"):
        kw["schedule"] = "cosine"
    model: dict[str, Any] = {"family": "text_tfidf"}
    if "hidden" in opts:
        model["hidden"] = [int(opts["hidden"])]
    texts = rest["text"].tolist()
    t0 = time.perf_counter()
    probas, members = [], []
    for k in range(int(opts.get("members", 1))):
        run = dl.train(
            str(part),
            test=str(work / "rest.csv"),
            seed=split + 100 * k,
            model=model,
            save=False,
            progress="quiet",
            **kw,
        )
        m = run.metrics
        members.append(
            {
                "accuracy": m["test"]["model"]["accuracy"],
                "epochs_run": m["epochs_run"],
                "best_epoch": m["best_epoch"],
            }
        )
        pred = run.bundle.predict(texts)
        cols = [c for c in pred.columns if c.startswith("proba_")]
        probas.append(pred[cols].to_numpy())
        classes = [c[len("proba_") :] for c in cols]
    mean = np.mean(probas, axis=0)
    truth = rest["label"].astype(str).to_numpy()
    acc = float((np.asarray(classes)[mean.argmax(axis=1)] == truth).mean())
    blend = _blends(run.bundle, part, texts, truth, mean, classes) if BLEND_C else None
    norms = run.bundle.model.embed.weight.detach().norm(dim=1)[1:].numpy()
    return {
        "variant": name,
        **opts,
        "split": split,
        "accuracy": round(acc, 4),
        "members": members,
        "tfidf_linear_svc": m["test"]["baselines"]["tfidf_linear_svc"]["accuracy"],
        "train_documents": m["rows"]["train"],
        "val_documents": m["rows"]["val"],
        "held_out": len(rest),
        "vocab_size": m["text"]["vocab_size"],
        "word_pairs": m["text"]["ngrams"]["word_pairs"],
        "char_features": m["text"]["ngrams"].get("characters", {}).get("features", 0),
        "train_seconds": m["text"]["train_seconds"],
        "row_norm": [round(float(v), 3) for v in np.quantile(norms, [0.5, 0.9, 0.99, 1.0])],
        **({"nb": m["text"]["ngrams"]["nb"]} if "nb" in m["text"]["ngrams"] else {}),
        **({"blend": blend} if blend is not None else {}),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "load": _load(),
    }


def main(argv: list[str] | None = None) -> int:
    from sklearn.model_selection import train_test_split

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", default="r8", choices=sorted(SETS))
    p.add_argument("--splits", default="0,1,2")
    p.add_argument("--variants", nargs="+", default=["new=words:1,val:0", "old=words:0,val:0.1"])
    p.add_argument("--out", default=None, help="append every row as a JSON line here")
    p.add_argument(
        "--blend-c",
        default="",
        help="comma-separated C values: also score the network averaged with a logistic regression on its TF-IDF vectors",
    )
    args = p.parse_args(argv)
    BLEND_C[:] = [float(c) for c in args.blend_c.split(",") if c]
    train = pd.read_csv(DATA / f"{SETS[args.set]}_train.csv.gz")
    variants = [parse_variant(v) for v in args.variants]
    rows = []
    for split in [int(s) for s in args.splits.split(",")]:
        part, rest = train_test_split(
            train, test_size=0.2, stratify=train["label"], random_state=split
        )
        work = Path(tempfile.mkdtemp(prefix="tfidf-dev-"))
        part.to_csv(work / "part.csv", index=False)
        rest.to_csv(work / "rest.csv", index=False)
        for name, opts in variants:
            row = {"set": args.set, **run_variant(name, opts, work / "part.csv", rest, split, work)}
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
    for name, _ in variants:
        acc = [r["accuracy"] for r in rows if r["variant"] == name]
        svc = [r["tfidf_linear_svc"] for r in rows if r["variant"] == name]
        print(
            f"{name}: {np.mean(acc):.4f} over {len(acc)} splits ({', '.join(f'{a:.4f}' for a in acc)}); "
            f"TF-IDF + LinearSVC {np.mean(svc):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
