"""How the temperature-scaling guard was chosen (issue #20): guards compared on development tables only.

The acceptance tables (breast_cancer, wine, digits, caravan) are not used here. For each development
table and seed, one default ``dl.train`` run; its validation and test logits are captured where the run
fits its temperature, and every guard is then applied to the same logits:

- ``none``: the fit alone (any fall of the validation log loss; T in [0.5, 55]; no sharpening when every
  validation row is right), i.e. ``fit_temperature(..., min_rows=0)``;
- ``min_rows_N``: the fit only with at least N validation rows (dlpipe's default: 200);
- ``crossfit_se1``: 2-fold x 5 split-half cross-fitting on the validation rows, kept when the held-out
  per-row gain exceeds one standard error;
- ``bootstrap95``: kept when the 95% bootstrap interval (50 resamples) of log T excludes 0;
- ``prior100``: MAP with a Gaussian prior on log T worth 100 pseudo-rows;
- ``no_sharpen``: T clipped at 1.

Per guard: mean change of test ECE and log loss, how many runs got worse, the worst change, and how
often a temperature was applied.

    nice -n 5 .venv/bin/python benchmarks/calibration_guard.py --seeds 0,1,2,3,4 --cache /tmp/cal-logits
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.evaluation import calibration as C

SHARED = Path(os.environ.get("DLPIPE_SHARED_DATA", "/work/shared/data/tabular"))


def tables() -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None, str]]:
    from sklearn import datasets

    def made(n: int, sep: float, k: int, seed: int, inf: int = 5) -> Any:
        x, y = datasets.make_classification(
            n_samples=n,
            n_features=12,
            n_informative=inf,
            n_redundant=2,
            n_classes=k,
            class_sep=sep,
            random_state=seed,
        )
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        frame["y"] = y
        return frame, None, "y"

    out: dict[str, Any] = {"iris": (datasets.load_iris(as_frame=True).frame, None, "target")}
    out["mc200_sep2_k3"] = made(200, 2.0, 3, 1)
    out["mc180_sep3_k3"] = made(180, 3.0, 3, 2)
    out["mc400_sep1_k2"] = made(400, 1.0, 2, 3)
    out["mc600_sep1.5_k5"] = made(600, 1.5, 5, 5, inf=6)
    out["mc1500_sep1_k4"] = made(1500, 1.0, 4, 4)
    x, y = datasets.make_moons(300, noise=0.25, random_state=6)
    moons = pd.DataFrame(x, columns=["a", "b"])
    moons["y"] = y
    out["moons300"] = (moons, None, "y")
    for name, target in (("oj", "Purchase"), ("default", "default")):
        df = pd.read_csv(SHARED / f"{name}.csv")
        train = df[df["split"] == "train"].drop(columns="split").reset_index(drop=True)
        test = df[df["split"] == "test"].drop(columns="split").reset_index(drop=True)
        out[name] = (train, test, target)
    return out


def capture(name: str, seed: int, cache: Path) -> dict[str, np.ndarray]:
    """The run's validation and test logits and labels (cached as .npz)."""
    path = cache / f"{name}-{seed}.npz"
    if not path.is_file():
        import dlpipe as dl
        import dlpipe.pipeline._table_eval as table_eval

        seen: dict[str, np.ndarray] = {}
        real = table_eval.calibration_record

        def keep(vl: Any, yv: Any, tl: Any, yt: Any, **kw: Any) -> Any:
            seen.update(vl=vl, yv=yv, tl=tl, yt=yt)
            return real(vl, yv, tl, yt, **kw)

        table_eval.calibration_record = keep  # type: ignore[assignment]
        try:
            frame, test, target = tables()[name]
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                dl.train(
                    frame,
                    target=target,
                    test=test,
                    seed=seed,
                    out=Path(tmp) / "run",
                    progress="none",
                    report=False,
                )
            print(
                f"{name}-{seed}: {time.perf_counter() - t0:.1f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        finally:
            table_eval.calibration_record = real  # type: ignore[assignment]
        np.savez(path, **seen)
    with np.load(path) as z:
        return {k: z[k] for k in ("vl", "yv", "tl", "yt")}


Guard = Callable[[np.ndarray, np.ndarray], float]


def _fit(vl: np.ndarray, yv: np.ndarray) -> float:
    return C.fit_temperature(vl, yv, min_rows=0)[0]


def min_rows(n: int) -> Guard:
    return lambda vl, yv: C.fit_temperature(vl, yv, min_rows=n)[0]


def crossfit(k: float, folds: int = 2, reps: int = 5) -> Guard:
    def guard(vl: np.ndarray, yv: np.ndarray) -> float:
        t = _fit(vl, yv)
        if t == 1.0:
            return t
        n = len(yv)
        rng = np.random.default_rng(0)
        gain = np.zeros(n)
        for _ in range(reps):
            parts = np.array_split(rng.permutation(n), folds)
            for i, held in enumerate(parts):
                fit_on = np.concatenate([p for j, p in enumerate(parts) if j != i])
                tk = _fit(vl[fit_on], yv[fit_on])
                gain[held] += C._row_nll(C.probabilities(vl[held]), yv[held]) - C._row_nll(
                    C.probabilities(vl[held], tk), yv[held]
                )
        gain /= reps
        return t if gain.mean() > k * gain.std(ddof=1) / math.sqrt(n) else 1.0

    return guard


def bootstrap(level: float = 0.95, resamples: int = 50) -> Guard:
    def guard(vl: np.ndarray, yv: np.ndarray) -> float:
        t = _fit(vl, yv)
        if t == 1.0:
            return t
        rng = np.random.default_rng(0)
        logs = [
            math.log(_fit(vl[i], yv[i]))
            for i in (rng.integers(0, len(yv), len(yv)) for _ in range(resamples))
        ]
        lo, hi = np.quantile(logs, [(1 - level) / 2, (1 + level) / 2])
        return t if lo > 0 or hi < 0 else 1.0

    return guard


def prior(pseudo_rows: float) -> Guard:
    grid = np.linspace(-4.0, math.log(2.0), 801)

    def guard(vl: np.ndarray, yv: np.ndarray) -> float:
        cost = [len(yv) * C._nll(vl, yv, s) + pseudo_rows * s * s / 2 for s in grid]
        log_s = float(grid[int(np.argmin(cost))])
        if (C.probabilities(vl).argmax(axis=1) == yv).all():
            log_s = min(log_s, 0.0)
        return math.exp(-log_s)

    return guard


GUARDS: dict[str, Guard] = {
    "none": _fit,
    "min_rows_100": min_rows(100),
    "min_rows_200": min_rows(200),
    "crossfit_se1": crossfit(1.0),
    "bootstrap95": bootstrap(0.95),
    "prior100": prior(100.0),
    "no_sharpen": lambda vl, yv: max(_fit(vl, yv), 1.0),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(tables()))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--cache", default=None, help="keep the captured logits here (.npz per run)")
    args = ap.parse_args()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="cal-logits-"))
    cache.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[tuple[float, float, float]]] = {g: [] for g in GUARDS}
    for name in args.tables.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            z = capture(name, seed, cache)
            vl, yv = z["vl"].astype(np.float64), z["yv"].astype(np.int64)
            tl, yt = z["tl"].astype(np.float64), z["yt"].astype(np.int64)
            p0 = C.probabilities(tl)
            e0, l0 = C.expected_calibration_error(p0, yt), C.log_loss(p0, yt)
            for g, guard in GUARDS.items():
                t = guard(vl, yv)
                p = C.probabilities(tl, t)
                d_ece = C.expected_calibration_error(p, yt) - e0
                results[g].append((d_ece, C.log_loss(p, yt) - l0, t))
    print(
        f"{'guard':14s} {'mean dECE':>10s} {'ECE worse':>9s} {'worst dECE':>10s} "
        f"{'mean dLL':>9s} {'LL worse':>8s} {'worst dLL':>9s} {'applied':>8s}"
    )
    for g, rows in results.items():
        a = np.array(rows)
        print(
            f"{g:14s} {a[:, 0].mean():+10.4f} {int((a[:, 0] > 1e-12).sum()):9d} {a[:, 0].max():+10.4f} "
            f"{a[:, 1].mean():+9.4f} {int((a[:, 1] > 1e-12).sum()):8d} {a[:, 1].max():+9.4f} "
            f"{int((a[:, 2] != 1.0).sum()):>4d}/{len(a)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
