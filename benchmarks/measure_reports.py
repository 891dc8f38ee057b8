"""Report build time and size on bundled data sets (binary, 10-class, regression).

    .venv/bin/python benchmarks/measure_reports.py [--out runs-bench] [--epochs 60]

Trains one run per data set (report=False), then times ``build_report`` on the folder in a process
where torch/sklearn are already imported (as at the end of ``dl.train``) and, separately, the
`dlpipe report` command end to end. Prints one line per data set; wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import dlpipe as dl
from dlpipe.reports.report import build_report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs-bench")
    ap.add_argument("--epochs", type=int, default=60)
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for name in ("breast_cancer", "digits", "diabetes"):
        run = dl.train(name, epochs=args.epochs, progress="quiet", save=False)
        path = run.save(out / name, report=False)
        build_report(
            path
        )  # warm: matplotlib's first import and font cache are paid once per process
        walls, cpus = [], []
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time()
            page = build_report(path, bundle=run.bundle)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        t = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "dlpipe"), "report", str(path)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cli = time.perf_counter() - t
        rows.append(
            (
                name,
                run.metrics["task"],
                len(run.metrics.get("classes") or []),
                min(walls),
                min(cpus),
                cli,
                page.stat().st_size / 1e6,
            )
        )
    print(
        f"{'data set':<14}{'task':<12}{'classes':>8}{'build s':>9}{'cpu s':>8}{'cli s':>8}{'html MB':>9}"
    )
    for r in rows:
        print(f"{r[0]:<14}{r[1]:<12}{r[2]:>8}{r[3]:>9.2f}{r[4]:>8.2f}{r[5]:>8.2f}{r[6]:>9.2f}")


if __name__ == "__main__":
    main()
