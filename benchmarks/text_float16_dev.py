"""The default text network's first layer rounded to float16 vs float32, on development cuts (issue #19).

A cut is ``train_test_split(test_size=0.2, stratify=label, random_state=cut)`` of the training split
(the test split is not read). The run trains on the 80% with the rounding switched off (float32
bundle); the script predicts the 20% with that network, then with its first layer rounded to float16
as a default run now does, and prints both accuracies, how often the two predict the same class and
the largest probability difference.

    nice -n 5 .venv/bin/python benchmarks/text_float16_dev.py r8 0,1,2   # or 20ng 0
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

import dlpipe as dl
from dlpipe.pipeline import _fit_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
FILES = {"r8": "reuters_r8_train.csv.gz", "20ng": "20newsgroups_train.csv.gz"}


def main() -> None:
    name, cuts = sys.argv[1], [int(c) for c in sys.argv[2].split(",")]
    df = pd.read_csv(DATA / FILES[name])
    _fit_text.round_to_float16 = lambda model: []  # the float32 network, as before 2026-12-08
    for cut in cuts:
        part, rest = train_test_split(df, test_size=0.2, random_state=cut, stratify=df["label"])
        with tempfile.TemporaryDirectory() as d:
            part.to_csv(Path(d) / "part.csv", index=False)
            dl.train(
                str(Path(d) / "part.csv"),
                out=Path(d) / "run",
                seed=0,
                progress="quiet",
                report=False,
            )
            bundle = dl.load_bundle(Path(d) / "run" / "bundle")
            texts, truth = rest["text"].tolist(), rest["label"].astype(str).to_numpy()
            p32 = bundle.predict(texts)
            weight = bundle.model.embed.weight
            with torch.no_grad():
                weight.copy_(weight.half().float())
            p16 = bundle.predict(texts)
            cols = [c for c in p32.columns if c.startswith("proba_")]
            row = {
                "set": name,
                "cut": cut,
                "accuracy_float32": float(
                    (p32["prediction"].astype(str).to_numpy() == truth).mean()
                ),
                "accuracy_float16": float(
                    (p16["prediction"].astype(str).to_numpy() == truth).mean()
                ),
                "same_class": float(
                    (p32["prediction"].to_numpy() == p16["prediction"].to_numpy()).mean()
                ),
                "max_proba_diff": float(np.abs(p32[cols].to_numpy() - p16[cols].to_numpy()).max()),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
