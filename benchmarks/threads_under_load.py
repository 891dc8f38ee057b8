"""The engine's thread rule beside other jobs: ``free_cores`` (since 2026-12-07) against the rule before
(every core until the load average reached the core count), interleaved rounds of one table run
(a plain MLP wide enough that the engine wants every core on an idle machine).

Meant for a machine where another job holds part of the cores (start one beside it, e.g. a second
benchmark); on an idle machine both rules pick the same count. Prints each run's seconds and threads.

Run: ``nice -n 5 .venv/bin/python benchmarks/threads_under_load.py --rounds 2``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--columns", type=int, default=100)
    ap.add_argument(
        "--hidden", default="512,512", help="hidden sizes: enough work per step for threads"
    )
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args(argv)

    import pandas as pd
    from sklearn.datasets import make_classification

    import dlpipe as dl
    from dlpipe.core import runtime
    from dlpipe.training import trainer

    x, y = make_classification(args.rows, args.columns, n_informative=20, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]).assign(target=y)
    free_cores = runtime.free_cores
    rules = {
        "free_cores": free_cores,
        "before": lambda: 1 if runtime.machine_busy() else (os.cpu_count() or 1),
    }
    seconds: dict[str, list[float]] = {name: [] for name in rules}
    for r in range(args.rounds):
        for name, rule in rules.items():
            runtime.free_cores = trainer.free_cores = rule  # type: ignore[assignment]
            load = os.getloadavg()[0]
            start = time.perf_counter()
            run = dl.train(
                dl.load_table(frame, target="target"),
                model={"hidden": [int(h) for h in args.hidden.split(",")], "members": 1},
                epochs=args.epochs,
                progress="quiet",
                save=False,
            )
            seconds[name].append(time.perf_counter() - start)
            threads = run.metrics.get("environment", {}).get("torch_threads")
            print(
                f"round {r} {name}: {seconds[name][-1]:.1f} s, {threads} threads, load {load:.2f}"
            )
    for name, values in seconds.items():
        print(
            f"{name}: median {statistics.median(values):.1f} s (range {min(values):.1f}-{max(values):.1f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
