"""Choosing the forecast intervals' scale without M1 yearly's held-out points (issue #18).

The conformal intervals pool every series' validation errors divided by a per-window *scale* (see
``dlpipe.evaluation.forecast_baselines.interval_scale``), so the scale decides how the pooled
quantiles transfer from one series to another. This script compares candidate scales on
development data only: M1 yearly with the last 6 points of every series *removed* (``series[:-6]``),
so the run's test span is the 6 points before the reported test span and its validation span is
earlier still. Series left with fewer than 13 points (two horizons + 1) are dropped. The reported
held-out points (M1's last 6) are never read.

For each seed one default ``dl.train`` runs on that truncated file; the validation and test
forecasts it makes (the model's, and the naive and drift baselines') are recorded, and for each
candidate scale the split-conformal half-widths are taken from the validation errors and their
coverage measured on the (development) test windows. The candidate whose model coverage is
closest to nominal (mean |coverage - nominal| over 80% and 95%, averaged over seeds) is chosen.

    nice -n 5 .venv/bin/python benchmarks/interval_scale_dev.py [--seeds 0 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import dlpipe as dl
from dlpipe.evaluation.forecast_baselines import (
    conformal_quantiles,
    interval_coverage,
    mase_scale,
)
from dlpipe.pipeline._fit_series import SeriesRecipe

M1 = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "forecasting"
    / "m1_yearly_dataset.tsf"
)
HORIZON = 6


def truncated_m1(
    path: Path, drop: int = HORIZON, min_left: int = 2 * HORIZON + 1
) -> tuple[str, int]:
    """The .tsf text of M1 yearly without the last ``drop`` points of each series (short ones left out)."""
    out, kept, data = [], 0, False
    for line in M1.read_text().splitlines():
        if not data:
            out.append(line)
            data = line.strip().lower() == "@data"
            continue
        if not line.strip():
            continue
        name, start, values = line.split(":", 2)
        vals = values.split(",")[:-drop]
        if len(vals) >= min_left:
            out.append(f"{name}:{start}:{','.join(vals)}")
            kept += 1
    path.write_text("\n".join(out) + "\n")
    return str(path), kept


def _level(h: np.ndarray, o: np.ndarray, period: int | None, lookback: int) -> np.ndarray:
    last = np.abs(h[o - 1])
    return np.where(last > 0, last, mase_scale(h, o, period))


def _recent(h: np.ndarray, o: np.ndarray, period: int | None, lookback: int) -> np.ndarray:
    # mean |step| over the window the network reads (its own normalisation)
    out = np.full((len(o), h.shape[1]), np.nan)
    for i, oi in enumerate(o):
        seg = h[max(0, oi - lookback) : oi]
        if len(seg) > 1:
            out[i] = np.abs(np.diff(seg, axis=0)).mean(axis=0)
    return out


CANDIDATES = {
    "max(|last|, MASE scale)": lambda h, o, p, lb: np.fmax(np.abs(h[o - 1]), mase_scale(h, o, p)),
    "MASE scale": lambda h, o, p, lb: mase_scale(h, o, p),
    "window step size": _recent,
    "|last|": _level,
}


def _scales(block: dict[str, Any], state: dict[str, Any], name: str) -> np.ndarray:
    by_name = {one.name: one for one in state["series"]}
    out = np.full((len(block["origins"]), len(state["tidx"])), np.nan)
    fn = CANDIDATES[name]
    i = 0
    names = block["names"]
    while i < len(names):
        j = i
        while j < len(names) and names[j] == names[i]:
            j += 1
        one = by_name[names[i]]
        out[i:j] = fn(
            one.raw[:, state["tidx"]], block["origins"][i:j], state["period"], state["lookback"]
        )
        i = j
    out[~(out > 0)] = np.nan
    return out


def _coverage(
    val: dict[str, Any], test: dict[str, Any], vs: np.ndarray, ts: np.ndarray, pred: str
) -> dict[str, float]:
    vp = val["pred"] if pred == "model" else val["baselines"][pred]
    tp = test["pred"] if pred == "model" else test["baselines"][pred]
    r = (val["true"] - vp) / vs[:, None, :]
    r = r[np.all(np.isfinite(r), axis=(1, 2))]
    q, _ = conformal_quantiles(r)
    ok = np.all(np.isfinite(ts), axis=1)
    return interval_coverage(test["true"][ok], tp[ok], ts[ok], q)


def run_once(path: str, seed: int, **options: Any) -> dict[str, Any]:
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    original = SeriesRecipe.forecasts

    def recording(
        self: SeriesRecipe, ctx: Any, model: Any, part: str, cut: str, series: Any = None
    ) -> dict[str, Any]:
        out = original(self, ctx, model, part, cut, series)
        if series is None:  # not the refits cut before the test span, which pass their series
            calls.append((part, out, ctx.prep.state))
        return out

    SeriesRecipe.forecasts = recording  # type: ignore[method-assign]  # records, changes nothing
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = dl.train(path, seed=seed, progress="quiet", save=False, **options)
    finally:
        SeriesRecipe.forecasts = original  # type: ignore[method-assign]
    val = next(o for p, o, _ in calls if p == "val")
    test, state = next((o, s) for p, o, s in calls if p == "test")
    row: dict[str, Any] = {
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "load": os.getloadavg()[0],
        "val_windows": len(val["true"]),
        "test_windows": len(test["true"]),
        "mase": run.metrics["test"]["model"]["mase"],
        "coverage": {},
    }
    for name in CANDIDATES:
        vs, ts = _scales(val, state, name), _scales(test, state, name)
        row["coverage"][name] = {
            pred: _coverage(val, test, vs, ts, pred) for pred in ("model", "naive", "drift")
        }
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--options", default="{}", help="extra dl.train keyword arguments as JSON (smoke runs)"
    )
    p.add_argument("--json", default=None)
    args = p.parse_args()
    options = json.loads(args.options)
    with tempfile.TemporaryDirectory() as tmp:
        path, kept = truncated_m1(Path(tmp) / "m1_yearly_minus6.tsf")
        print(
            f"development data: M1 yearly without each series' last {HORIZON} points, {kept} of 181 series kept"
        )
        rows = []
        for seed in args.seeds:
            r = run_once(path, seed, **options)
            rows.append(r)
            print(
                f"\nseed {seed}: MASE {r['mase']:.3f}, {r['val_windows']} validation / {r['test_windows']} test windows, "
                f"{r['seconds']} s, load {r['load']:.1f}"
            )
            print(
                "| scale | model 80% | model 95% | naive 80% | naive 95% | drift 80% | drift 95% |"
            )
            print("|---|---|---|---|---|---|---|")
            for name, c in r["coverage"].items():
                cells = " | ".join(
                    f"{c[k]['80']:.3f} | {c[k]['95']:.3f}" for k in ("model", "naive", "drift")
                )
                print(f"| {name} | {cells} |", flush=True)
    print(
        f"\nmean over seeds {args.seeds} (model; |error| = mean |coverage - nominal| over 80% and 95%):"
    )
    score = {}
    for name in CANDIDATES:
        c80 = np.mean([r["coverage"][name]["model"]["80"] for r in rows])
        c95 = np.mean([r["coverage"][name]["model"]["95"] for r in rows])
        score[name] = (abs(c80 - 0.80) + abs(c95 - 0.95)) / 2
        print(f"  {name}: 80% {c80:.3f}, 95% {c95:.3f}, |error| {score[name]:.3f}")
    print(f"chosen: {min(score, key=score.__getitem__)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
