"""NeuralClassifier.fit vs skorch's NeuralNetClassifier: same module, data, batch size, epochs, optimiser.

Both train dlpipe's MLP (hidden 64, 32; 3 logits; cross entropy on logits; AdamW lr 1e-3, no weight
decay; batch 32; shuffled) on the same standardised make_classification table. skorch is run twice:
with torch's default thread count (what a user gets) and pinned to one thread (what dlpipe's
engine picks for a model this small), so the ratio is not just a threading effect. Median of
`--repeats` fits each, interleaved, in one run.

    .venv/bin/python benchmarks/sklearn_overhead.py [--rows 2000] [--epochs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from dlpipe.models.mlp import MLP
from dlpipe.sklearn import NeuralClassifier


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from skorch import NeuralNetClassifier

    X, y = make_classification(
        n_samples=args.rows, n_features=20, n_informative=8, n_classes=3, random_state=0
    )
    X = StandardScaler().fit_transform(X).astype(np.float32)
    y = y.astype(np.int64)
    default_threads = torch.get_num_threads()

    def fit_dlpipe() -> float:
        est = NeuralClassifier(
            hidden=(64, 32),
            epochs=args.epochs,
            batch_size=32,
            learning_rate=1e-3,
            optimizer="adamw",
            weight_decay=0.0,
        )
        t = time.perf_counter()
        est.fit(X, y)
        took = time.perf_counter() - t
        assert est.score(X, y) > 0.7
        return took

    def fit_skorch(threads: int) -> float:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        net = NeuralNetClassifier(
            MLP,
            module__n_numeric=20,
            module__n_outputs=3,
            module__hidden=(64, 32),
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=0.0,
            lr=1e-3,
            batch_size=32,
            max_epochs=args.epochs,
            train_split=None,
            iterator_train__shuffle=True,
            verbose=0,
            device="cpu",
        )
        t = time.perf_counter()
        net.fit(X, y)
        took = time.perf_counter() - t
        torch.set_num_threads(default_threads)
        assert (net.predict(X) == y).mean() > 0.7
        return took

    fit_dlpipe(), fit_skorch(default_threads)  # warm-up: imports, first optimiser construction
    ours, sk_default, sk_one = [], [], []
    for _ in range(args.repeats):
        ours.append(fit_dlpipe())
        sk_default.append(fit_skorch(default_threads))
        sk_one.append(fit_skorch(1))
    a, b, c = statistics.median(ours), statistics.median(sk_default), statistics.median(sk_one)
    print(
        f"data {args.rows}x20, 3 classes, MLP(64, 32), batch 32, {args.epochs} epochs, median of {args.repeats}"
    )
    print(f"dlpipe NeuralClassifier.fit            {a:8.3f} s")
    print(
        f"skorch NeuralNetClassifier.fit ({default_threads} thr) {b:8.3f} s   ratio {b / a:5.2f}x"
    )
    print(f"skorch NeuralNetClassifier.fit (1 thr) {c:8.3f} s   ratio {c / a:5.2f}x")


if __name__ == "__main__":
    main()
