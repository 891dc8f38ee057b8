"""How fast a ``text_tfidf`` bundle predicts: the character block through ``char_matrix`` (scipy, what
eager calls on CPU use) against the tensor route (what a traced or exported graph computes), side by
side in one process, interleaved rounds, the same documents.

Run: ``nice -n 5 .venv/bin/python benchmarks/text_predict_speed.py --bundle runs/r8/bundle
--data ../shared/data/text/reuters_r8_test.csv.gz --rows 500 --rounds 5``
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
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)

    import dlpipe as dl
    from dlpipe.models import text

    bundle = dl.load_bundle(args.bundle)
    frame = pd.read_csv(args.data).head(args.rows)
    scipy_route = text._scipy_route
    routes = {"char_matrix (scipy)": scipy_route, "tensor route": lambda ids: False}
    seconds: dict[str, list[float]] = {name: [] for name in routes}
    probs: dict[str, np.ndarray] = {}
    print(f"load at start {os.getloadavg()}", flush=True)
    bundle.predict(frame.head(10))  # imports and first-call costs
    for _ in range(args.rounds):
        for name, route in routes.items():
            text._scipy_route = route
            start = time.perf_counter()
            out = bundle.predict(frame)
            seconds[name].append(time.perf_counter() - start)
            probs[name] = out.iloc[:, 1:].to_numpy(float)
    text._scipy_route = scipy_route
    print(
        f"{len(frame)} documents, {args.rounds} interleaved rounds; load at end {os.getloadavg()}"
    )
    for name, s in seconds.items():
        med = statistics.median(s)
        print(
            f"{name:>20}: median {med:.3f} s ({min(s):.3f}-{max(s):.3f}), {len(frame) / med:,.0f} documents/s"
        )
    a, b = probs.values()
    print(f"largest difference in probabilities: {np.abs(a - b).max():.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
