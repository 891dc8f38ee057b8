"""How `minilm`'s joint head was chosen (issue #19, few labels), on R8's training split only.

Samples of 400 training documents (stratified, ``random_state`` 1..n; the few-label check uses 0),
each scored on the training documents outside it; the test split is not read. MiniLM vectors of every
training document are computed once (truncated at 256 word pieces, as a run does; cached in
``$DLPIPE_CACHE_DIR/text``) and, with ``--chunks``, of every 254-piece chunk of the long ones.
Heads: the logistic head of ``fit_logistic_head`` on the vectors alone (plain, chunk mean, chunk mean
weighted by length) and one logistic regression on the standardised vectors / sqrt(384) (times a
weight) beside the TF-IDF (1-2 grams, sublinear, min_df 2) of scikit-learn's words or of the word
pieces, for a grid of C. Grid entries are ``kind:C:weight``: ``pieces`` or ``words`` (the TF-IDF
part), C, the MiniLM part's weight (0: TF-IDF alone); ``pieceschars:C:weight[:charweight]`` adds
scikit-learn's ``char_wb`` 2-5 grams of the raw text (sublinear, min_df 2, unit norm, times
``charweight``, default 1) beside the word pieces; ``pieceschars256`` the same n-grams of the text
rebuilt from the 256 word pieces the encoder reads (lowercased, truncated: what a bundle sees). For
reference on the same documents: TF-IDF + LinearSVC (C=1), and TF-IDF words + ``char_wb`` 2-5 grams
(each block of unit norm) + LinearSVC at C=1 and with C chosen by 5-fold stratified cross-validated
accuracy on the 400 (0.1..1000; the vectorizers refitted in each fold by a Pipeline).

Run: ``nice -n 5 .venv/bin/python benchmarks/text_few_dev.py --samples 1,2,3,4,5 [--chunks]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
SVC_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def main(argv: list[str] | None = None) -> int:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC
    from threadpoolctl import threadpool_limits

    from dlpipe.data.text import encode_texts, load_tokenizer
    from dlpipe.models.encoders import encode_in_batches, load_minilm
    from dlpipe.pipeline._fit_text import _cached_vectors
    from dlpipe.training.linear_head import fit_logistic_head

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", default="1,2,3,4,5")
    p.add_argument(
        "--grid",
        default="pieces:30:1,pieces:100:1,pieces:300:1,pieces:1000:1,"
        "pieces:3000:1,pieces:10000:1,pieces:100:1.5,pieces:100:0,words:100:1",
    )
    p.add_argument("--chunks", action="store_true", help="also average 254-piece chunks (slow)")
    args = p.parse_args(argv)
    df = pd.read_csv(DATA / "reuters_r8_train.csv.gz")
    texts = df["text"].tolist()
    classes = sorted(df["label"].unique())
    y = df["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    encoder, tok_json = load_minilm()
    tok = load_tokenizer(tok_json)
    ids, _ = encode_texts(tok, texts, 256, special_tokens=True)
    vectors, _, secs = _cached_vectors(encoder, ids)
    print(json.dumps({"vectors_seconds": round(secs, 1)}), flush=True)
    heads = {"trunc": vectors.astype(np.float64)}
    if args.chunks:  # every 254-piece chunk of each document, [CLS] ... [SEP]
        tok.no_truncation()
        rows, owner, lens = [], [], []
        for i, e in enumerate(tok.encode_batch(texts, add_special_tokens=False)):
            for s in range(0, max(1, len(e.ids)), 254):
                rows.append([101, *e.ids[s : s + 254], 102])
                owner.append(i)
                lens.append(len(rows[-1]))
        arr = np.zeros((len(rows), max(lens)), np.int64)
        for k, r in enumerate(rows):
            arr[k, : len(r)] = r
        v = encode_in_batches(encoder, arr)
        mean, weighted = np.zeros_like(heads["trunc"]), np.zeros_like(heads["trunc"])
        np.add.at(mean, np.asarray(owner), v)
        np.add.at(weighted, np.asarray(owner), v * np.asarray(lens)[:, None])
        heads["chunk"] = mean / np.linalg.norm(mean, axis=1, keepdims=True)
        heads["chunk_weighted"] = weighted / np.linalg.norm(weighted, axis=1, keepdims=True)
    pieces = [" ".join(f"t{t}" for t in row[row != 0]) for row in ids]
    # the text of the (truncated) word pieces, [CLS] and [SEP] dropped
    piece_texts = tok.decode_batch(
        [row[row != 0].tolist() for row in ids], skip_special_tokens=True
    )
    x = heads["trunc"]
    for s in [int(v) for v in args.samples.split(",")]:
        small, rest = train_test_split(
            np.arange(len(df)), train_size=400, stratify=y, random_state=s
        )
        res: dict[str, object] = {"sample": s, "scored_on": int(len(rest))}
        with threadpool_limits(1):
            words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
            wt = words.fit_transform([texts[i] for i in small])
            svc = LinearSVC().fit(wt, y[small])
            res["tfidf_linear_svc"] = float(
                (svc.predict(words.transform([texts[i] for i in rest])) == y[rest]).mean()
            )
            small_texts, rest_texts = [texts[i] for i in small], [texts[i] for i in rest]
            t0 = time.perf_counter()
            both = make_pipeline(
                make_union(
                    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                    TfidfVectorizer(
                        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2
                    ),
                ),
                LinearSVC(),
            )
            res["svc_words_chars_c1"] = float(
                (both.fit(small_texts, y[small]).predict(rest_texts) == y[rest]).mean()
            )
            cv = GridSearchCV(
                both,
                {"linearsvc__C": list(SVC_GRID)},
                cv=StratifiedKFold(5, shuffle=True, random_state=0),
                scoring="accuracy",
            ).fit(small_texts, y[small])
            res["svc_words_chars_cv"] = float((cv.predict(rest_texts) == y[rest]).mean())
            res["svc_words_chars_cv_C"] = cv.best_params_["linearsvc__C"]
            res["svc_seconds"] = round(time.perf_counter() - t0, 1)
            for name, h in heads.items():
                fit = fit_logistic_head(h[small], y[small], len(classes), seed=0)
                res[name] = float(((h[rest] @ fit.weight.T + fit.bias).argmax(1) == y[rest]).mean())
            mu, sd = x[small].mean(0), x[small].std(0) + 1e-8
            z = (x - mu) / sd / np.sqrt(x.shape[1])
            chars: dict[str, tuple] = {}  # char_wb blocks of this sample, by source, fitted once
            for cfg in args.grid.split(","):
                kind, c, a, *cw = cfg.split(":")
                on_pieces = kind in ("pieces", "pieceschars", "pieceschars256")
                docs = pieces if on_pieces else texts
                vec = TfidfVectorizer(
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    min_df=2,
                    **({"token_pattern": r"\S+", "lowercase": False} if on_pieces else {}),
                )
                xt = vec.fit_transform([docs[i] for i in small])
                xr = vec.transform([docs[i] for i in rest])
                if kind in ("pieceschars", "pieceschars256"):
                    if kind not in chars:
                        src = texts if kind == "pieceschars" else piece_texts
                        cv_ = TfidfVectorizer(
                            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2
                        )
                        chars[kind] = (
                            cv_.fit_transform([src[i] for i in small]),
                            cv_.transform([src[i] for i in rest]),
                        )
                        res[f"char_features_{kind}"] = chars[kind][0].shape[1]
                    b = float(cw[0]) if cw else 1.0
                    xt = sp.hstack([xt, chars[kind][0] * b]).tocsr()
                    xr = sp.hstack([xr, chars[kind][1] * b]).tocsr()
                if float(a) > 0:
                    xt = sp.hstack([sp.csr_matrix(z[small] * float(a)), xt]).tocsr()
                    xr = sp.hstack([sp.csr_matrix(z[rest] * float(a)), xr]).tocsr()
                lr = LogisticRegression(C=float(c), max_iter=3000).fit(xt, y[small])
                res[f"joint_{cfg}"] = float((lr.predict(xr) == y[rest]).mean())
        res["load"] = round(os.getloadavg()[0], 2)
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
