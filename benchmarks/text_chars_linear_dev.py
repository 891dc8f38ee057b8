"""Do character n-grams help TF-IDF + LinearSVC on the development cuts? (issue #19, a cheap check
before trying them inside ``text_tfidf``.) Training files only: the same cuts as
``benchmarks/text_tfidf_dev.py`` (``train_test_split(test_size=0.2, random_state=s)``, stratified).

Per cut, LinearSVC (C=1) on: ``word`` (TF-IDF word 1-2 grams, sublinear: the run's baseline), ``both``
(that beside scikit-learn's ``char_wb`` 2-5 grams of the raw text, min_df 2, each part of unit norm),
and ``both_v`` (the character part built only from the words ``text_tfidf`` can see: ``\\b\\w\\w+\\b``,
lowercased, seen twice in the 80%; a word new to the 80% is ``[UNK]`` to the network and has no
n-grams).

``--cheap``: also ``both_v`` variants named ``c<lo><hi>_df<t>_w<w>``: the seen words' ``lo``-``hi`` grams,
only of words in at most ``t`` training documents of the 80% (0: every seen word), the character part
times ``w`` (each cheaper than ``both_v``: fewer n-grams per document; ``--cheap-set`` picks them).

Run: ``nice -n 5 .venv/bin/python benchmarks/text_chars_linear_dev.py --set r8 --splits 0,1,2,3,4,5,6,7,8,9``
"""

from __future__ import annotations

import argparse
import collections
import functools
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
SETS = {"r8": "reuters_r8", "20ng": "20newsgroups"}
_WORD = re.compile(r"(?u)\b\w\w+\b")


def main(argv: list[str] | None = None) -> int:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import train_test_split
    from sklearn.svm import LinearSVC
    from threadpoolctl import threadpool_limits

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", default="r8", choices=sorted(SETS))
    p.add_argument("--splits", default="0,1,2")
    p.add_argument(
        "--cheap",
        nargs="*",
        default=[],
        help="lo,hi,max_df,weight per variant, e.g. 3,5,0,1 2,5,10,1 2,5,0,0.5",
    )
    args = p.parse_args(argv)
    train = pd.read_csv(DATA / f"{SETS[args.set]}_train.csv.gz")
    for s in (int(x) for x in args.splits.split(",")):
        part, rest = train_test_split(train, test_size=0.2, stratify=train["label"], random_state=s)
        t0 = time.perf_counter()
        counts: collections.Counter[str] = collections.Counter()
        for t in part["text"]:
            counts.update(_WORD.findall(t.lower()))
        seen = {w for w, c in counts.items() if c >= 2}
        docs: collections.Counter[str] = collections.Counter()
        for t in part["text"]:
            docs.update(set(_WORD.findall(t.lower())))

        def grams(
            text: str,
            seen: set[str] = seen,
            docs: collections.Counter[str] = docs,
            lo: int = 2,
            hi: int = 5,
            max_df: int = 0,
        ) -> list[str]:
            out = []
            for w in _WORD.findall(text.lower()):
                if w in seen and (not max_df or docs[w] <= max_df):
                    padded = f" {w} "
                    out += [
                        padded[k : k + n]
                        for n in range(lo, hi + 1)
                        for k in range(len(padded) - n + 1)
                    ]
            return out

        word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        raw = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
        seen_chars = TfidfVectorizer(analyzer=grams, sublinear_tf=True, min_df=2)
        w_tr, w_te = word.fit_transform(part["text"]), word.transform(rest["text"])
        feats = {"word": (w_tr, w_te)}
        for name, vec in (("both", raw), ("both_v", seen_chars)):
            c_tr, c_te = vec.fit_transform(part["text"]), vec.transform(rest["text"])
            feats[name] = (sp.hstack([w_tr, c_tr]).tocsr(), sp.hstack([w_te, c_te]).tocsr())
        for spec in args.cheap:
            lo, hi, max_df, weight = (float(x) for x in spec.split(","))
            vec = TfidfVectorizer(
                analyzer=functools.partial(grams, lo=int(lo), hi=int(hi), max_df=int(max_df)),
                sublinear_tf=True,
                min_df=2,
            )
            c_tr, c_te = vec.fit_transform(part["text"]), vec.transform(rest["text"])
            name = f"c{int(lo)}{int(hi)}_df{int(max_df)}_w{weight:g}"
            feats[name] = (
                sp.hstack([w_tr, weight * c_tr]).tocsr(),
                sp.hstack([w_te, weight * c_te]).tocsr(),
            )
        acc = {}
        with threadpool_limits(1):
            for name, (a, b) in feats.items():
                svc = LinearSVC().fit(a, part["label"])
                acc[name] = round(float(np.mean(svc.predict(b) == rest["label"].to_numpy())), 4)
        print(args.set, s, acc, f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
