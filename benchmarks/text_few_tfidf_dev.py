"""The default ``text_tfidf`` with few documents (issue #19): epochs and batch size on development samples.

Samples of 400 (``--size``) R8 training documents (stratified, ``random_state`` 1..n; the few-label check uses 0),
each scored on 2,000 other training documents (stratified, the same seed); the test split is not read.
A variant is ``name=epochs:E,batch:B`` (``auto`` keeps the default). TF-IDF + LinearSVC with C chosen
by 5-fold CV on the 400 (the run's own baseline at this size) is printed beside.

Run: ``nice -n 5 .venv/bin/python benchmarks/text_few_tfidf_dev.py --samples 1,2,3,4,5
--variants "base=epochs:auto,batch:auto" "e20=epochs:20,batch:auto"``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"


def main(argv: list[str] | None = None) -> int:
    from sklearn.model_selection import train_test_split

    import dlpipe as dl
    from dlpipe.pipeline._fit_text import svc_strength, tfidf_linear_baseline

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", default="1,2,3,4,5")
    p.add_argument("--size", type=int, default=400, help="training documents per sample")
    p.add_argument("--variants", nargs="+", default=["base=epochs:auto,batch:auto"])
    args = p.parse_args(argv)
    df = pd.read_csv(DATA / "reuters_r8_train.csv.gz")
    results: dict[str, list[float]] = {}
    for s in (int(x) for x in args.samples.split(",")):
        small, rest = train_test_split(
            df, train_size=args.size, stratify=df["label"], random_state=s
        )
        held, _ = train_test_split(rest, train_size=2000, stratify=rest["label"], random_state=s)
        classes = sorted(df["label"].unique())
        code = {c: i for i, c in enumerate(classes)}
        y_small = small["label"].map(code).to_numpy()
        setting = svc_strength(small["text"].tolist(), y_small)
        svc = tfidf_linear_baseline(
            small["text"].tolist(), y_small, held["text"].tolist(), len(classes), c=setting["C"]
        )
        acc = float((svc.argmax(1) == held["label"].map(code).to_numpy()).mean())
        results.setdefault("svc_cv", []).append(acc)
        print(json.dumps({"sample": s, "variant": "svc_cv", "C": setting["C"], "accuracy": acc}))
        for spec in args.variants:
            name, _, body = spec.partition("=")
            opts = dict(kv.split(":") for kv in body.split(",") if kv)
            kw = {k: (v if v == "auto" else int(v)) for k, v in opts.items()}
            with tempfile.TemporaryDirectory() as d:
                small.to_csv(Path(d) / "small.csv", index=False)
                t0 = time.perf_counter()
                run = dl.train(
                    str(Path(d) / "small.csv"),
                    out=Path(d) / "run",
                    seed=0,
                    progress="quiet",
                    report=False,
                    epochs=kw.get("epochs", "auto"),
                    batch_size=kw.get("batch", "auto"),
                )
                secs = time.perf_counter() - t0
                pred = run.bundle.predict(held["text"].tolist())["prediction"].astype(str)
                acc = float((pred.to_numpy() == held["label"].astype(str).to_numpy()).mean())
            results.setdefault(name, []).append(acc)
            row = {
                "sample": s,
                "variant": name,
                "accuracy": acc,
                "epochs": run.metrics.get("epochs_run"),
                "seconds": round(secs, 1),
            }
            print(json.dumps(row), flush=True)
    base = results.get(args.variants[0].partition("=")[0])
    for name, accs in results.items():
        diff = (
            ""
            if base is None
            else f"  vs first variant {np.mean(accs) - np.mean(base):+.4f}, better on {sum(a > b for a, b in zip(accs, base))} of {len(accs)}"
        )
        print(
            f"{name:12s} mean {statistics.mean(accs):.4f}  ({', '.join(f'{a:.4f}' for a in accs)}){diff}"
        )
    print(f"load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
