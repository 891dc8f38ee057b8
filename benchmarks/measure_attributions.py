"""Completeness and cost of the attributions image, sequence and text runs put in their report (issue #20 item 1).

For seeds 0-2: a CNN on 200 8x8 digits (4 classes), ``cnn1d``, ``lstm`` and MiniRocket on 40 synthetic
30-step cases (a bump early or late), the text bag, GRU and Transformer on 90 synthetic documents of
three topics. Prints each run's ``metrics.json`` ``attributions``: the method, the largest per-input
completeness gap (integrated gradients) and the seconds, with the 1-minute load average.

Run: ``nice -n 5 .venv/bin/python benchmarks/measure_attributions.py`` (about 2 minutes on 2 busy cores).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tests.pipeline.test_sequence_recipe import _bumps  # noqa: E402
from text.conftest import documents  # noqa: E402

import dlpipe as dl  # noqa: E402
from dlpipe.data.images import ImageDataset  # noqa: E402
from dlpipe.data.sequences import load_sequences  # noqa: E402


def main() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = ImageDataset(
        (d.images[:200, None] * 15).astype(np.uint8), d.target[:200] % 4, name="digits200"
    )
    for seed in range(3):
        cases = load_sequences(_bumps(40, seed), test=_bumps(20, seed + 10))
        docs = documents(90, seed=seed)
        text = {"target": "label", "epochs": 3, "embedding_dim": 16}
        runs: list[tuple[str, object, dict[str, object]]] = [
            ("image cnn (8x8 digits)", images, {"epochs": 3}),
            ("sequence cnn1d", cases, {"model": {"family": "cnn1d", "hidden": [8]}, "epochs": 5}),
            ("sequence lstm", cases, {"model": {"family": "lstm", "hidden": [16]}, "epochs": 5}),
            ("sequence minirocket", cases, {}),
            ("text bag", docs, {"target": "label", "epochs": 3}),
            ("text gru", docs, {**text, "model": {"family": "text_rnn", "hidden": [16]}}),
            ("text transformer", docs, {**text, "model": {"family": "text_transformer"}}),
        ]
        for name, data, options in runs:
            a = dl.train(data, seed=seed, progress="quiet", save=False, **options).metrics[
                "attributions"
            ]
            err = a.get("completeness_error")
            gap = f"{100 * err:.3f}%" if err is not None else "-"
            print(
                f"seed {seed}  {name:<24} {a['method']:<21} gap {gap:>8}  {a['seconds']:.3f} s  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
