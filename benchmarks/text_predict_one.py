"""One document at a time through a ``text_tfidf`` bundle (what a served request costs): the words x
n-grams matrix kept by the model (since 2026-12-08) against building it on every call (before), side by
side in one process, interleaved rounds, the same documents.

Run: ``nice -n 5 .venv/bin/python benchmarks/text_predict_one.py --bundle runs/r8/bundle
--data ../shared/data/text/reuters_r8_test.csv.gz --docs 100 --rounds 5``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True, help="a text_tfidf bundle with character n-grams")
    ap.add_argument("--data", required=True, help="a CSV with the bundle's text column")
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)

    import dlpipe as dl

    bundle = dl.load_bundle(args.bundle)
    docs = pd.read_csv(args.data)["text"].head(args.docs).tolist()
    model = bundle.model

    def kept() -> None:
        pass

    def rebuilt() -> None:
        model.__dict__.pop("_word_gram_kept", None)  # as every call did before

    modes = {"matrix kept": kept, "matrix built per call": rebuilt}
    ms: dict[str, list[float]] = {name: [] for name in modes}
    probs: dict[str, list[np.ndarray]] = {name: [] for name in modes}
    print(f"load at start {os.getloadavg()}", flush=True)
    bundle.predict(docs[:2])  # imports and first-call costs
    for _ in range(args.rounds):
        for name, before in modes.items():
            per_doc = []
            out = []
            for d in docs:
                before()
                t0 = time.perf_counter()
                p = bundle.predict([d])
                per_doc.append(time.perf_counter() - t0)
                out.append(p.filter(like="proba_").to_numpy())
            ms[name].append(1000 * statistics.median(per_doc))
            probs[name] = out
    a, b = (np.concatenate(probs[n]) for n in modes)
    for name in modes:
        v = ms[name]
        print(
            f"{name:24s} median {statistics.median(v):7.2f} ms a document "
            f"(rounds {min(v):.2f}-{max(v):.2f})"
        )
    base, new = (statistics.median(ms[n]) for n in ("matrix built per call", "matrix kept"))
    print(f"speed-up {base / new:.2f}x; largest probability difference {np.abs(a - b).max():.2e}")
    print(f"load at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
