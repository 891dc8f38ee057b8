"""A default text run's bundle size, load time and test accuracy (issue #19): seed 0, R8 or 20 Newsgroups.

Run it twice, with the code before and after a change (``PYTHONPATH=<worktree>/src``), to compare:

    nice -n 5 .venv/bin/python benchmarks/text_bundle_size.py r8   # or 20ng
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import dlpipe as dl

D = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
name = sys.argv[1]
tr, te = {
    "r8": ("reuters_r8_train.csv.gz", "reuters_r8_test.csv.gz"),
    "20ng": ("20newsgroups_train.csv.gz", "20newsgroups_test.csv.gz"),
}[name]
with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    run = dl.train(str(D / tr), test=str(D / te), out=Path(d) / "run", seed=0, progress="quiet")
    wall = time.perf_counter() - t0
    w = Path(d) / "run" / "bundle" / "weights.safetensors"
    t1 = time.perf_counter()
    b = dl.load_bundle(Path(d) / "run" / "bundle")
    load = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "code": dl.__file__,
                "set": name,
                "accuracy": run.metrics["test"]["model"]["accuracy"],
                "weights_mb": round(w.stat().st_size / 1e6, 1),
                "bundle_mb": round(
                    sum(
                        p.stat().st_size
                        for p in (Path(d) / "run" / "bundle").rglob("*")
                        if p.is_file()
                    )
                    / 1e6,
                    1,
                ),
                "load_s": round(load, 2),
                "wall_s": round(wall, 1),
            }
        ),
        flush=True,
    )
