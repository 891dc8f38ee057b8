"""Start-up and end-to-end wall time on a small table, side by side in one run.

(a) the seed notes' whole PyTorch script on breast_cancer (benchmarks/seed_breast_cancer.py:
    imports, sklearn split + scaler, MLP, Adam, 10 epochs of a DataLoader loop, test accuracy);
(b) `dlpipe train breast_cancer` end to end: load, schema, split, preprocessing, training with early
    stopping, evaluation, logistic/majority baselines, bundle, run folder, HTML report with plots;
    and the same with --no-report (the issue's list: train, evaluate, baselines, bundle);
(c) `dlpipe --help`.

Each is a fresh process (what a user waits for), alternated, median of --repeats with the range;
the load average at the start and the end.

    .venv/bin/python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def wall(cmd: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    load_start = os.getloadavg()
    cmds = {
        "seed script (breast_cancer)": [sys.executable, str(HERE / "seed_breast_cancer.py")],
        "dlpipe train breast_cancer": [str(BIN / "dlpipe"), "train", "breast_cancer", "-q"],
        "dlpipe train ... --no-report": [
            str(BIN / "dlpipe"),
            "train",
            "breast_cancer",
            "-q",
            "--no-report",
        ],
        "dlpipe --help": [str(BIN / "dlpipe"), "--help"],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    with tempfile.TemporaryDirectory() as tmp:
        for _name, cmd in cmds.items():  # warm the file cache once
            wall(cmd, tmp)
        for _ in range(args.repeats):
            for name, cmd in cmds.items():
                times[name].append(wall(cmd, tmp))
    seed = statistics.median(times["seed script (breast_cancer)"])
    print(f"{'command':<32}{'median s':>10}{'min s':>8}{'max s':>8}{'vs seed':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<32}{med:>10.2f}{min(ts):>8.2f}{max(ts):>8.2f}{med / seed:>9.2f}")
    print(f"load average (1, 5, 15 min) at start {load_start}, at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
