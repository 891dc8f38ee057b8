"""Acceptance figures for forecasting and sequence classification, with default settings.

Forecasting: series that statsmodels ships (no downloads): sunspots (yearly), co2 (weekly, with
missing weeks interpolated), nile (yearly). Default settings (LSTM, lookback auto, horizon 1,
min-max scaling per fit, time-ordered 60/20/20 spans, rolling-origin windows); the test windows are
scored beside the naive, seasonal-naive, drift and ETS forecasts by M4's MASE, with the 80%/95%
intervals' coverage. Many series: benchmarks/m1_suite.py.

Sequence classification: GunPoint and ItalyPowerDemand from ../shared/data/ucr with their official
train/test splits, default settings (FCN), beside the published 1-NN DTW (learned window) and ROCKET.

    .venv/bin/python benchmarks/measure_series.py [--only forecast|classify] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dlpipe as dl

UCR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucr"
PUBLISHED = {
    "GunPoint": (0.9133, 1.000),
    "ItalyPowerDemand": (0.9553, 0.9696),
}  # (1-NN DTW learned window, ROCKET)


def statsmodels_series():
    import statsmodels.api as sm

    sun = sm.datasets.sunspots.load_pandas().data  # YEAR, SUNACTIVITY
    co2 = (
        sm.datasets.co2.load_pandas().data.rename_axis("date").reset_index()
    )  # date, co2 (59 NaNs)
    nile = sm.datasets.nile.load_pandas().data  # year, volume
    return [
        ("sunspots", sun, "SUNACTIVITY", "YEAR"),
        ("co2", co2, "co2", "date"),
        ("nile", nile, "volume", "year"),
    ]


def macro_frame():
    """The seed notes' multi-feature exercise (Open/High/Low/Volume -> Close, lookback 30) on a shipped
    series: quarterly US realcons/realinv/realgovt/realdpi -> realgdp (statsmodels macrodata, 203 rows)."""
    import pandas as pd
    import statsmodels.api as sm

    d = sm.datasets.macrodata.load_pandas().data
    d["date"] = pd.PeriodIndex.from_fields(
        year=d["year"].astype(int), quarter=d["quarter"].astype(int), freq="Q"
    ).to_timestamp()
    return d[["date", "realcons", "realinv", "realgovt", "realdpi", "realgdp"]]


def _row(name: str, m: dict, seconds: float) -> str:
    test, b = m["test"], m["test"]["baselines"]

    def mase(key: str) -> str:
        return f"{b[key]['mase']:.3f}" if key in b else "-"

    cov = test.get("coverage") or {}
    return (
        f"| {name} | {sum(m['rows'].values())} | {m['lookback']} | {test['windows']} | {test['model']['mase']:.3f} | "
        f"{mase('naive')} | {mase('seasonal_naive')} ({m['period']}) | {mase('drift')} | {mase('ets')} | "
        f"{cov.get('80', float('nan')):.2f} / {cov.get('95', float('nan')):.2f} | {seconds:.0f} s, best epoch {m['best_epoch']} |"
    )


def forecast(threads: int | None) -> None:
    print(
        "| series | rows | lookback | test windows | model MASE | naive | seasonal naive (period) | drift | ETS | 80% / 95% coverage | time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, frame, target, time_column in statsmodels_series():
        t0 = time.perf_counter()
        run = dl.train(
            frame,
            target,
            task="forecast",
            time_column=time_column,
            progress="quiet",
            save=False,
            name=name,
            threads=threads,
        )
        print(_row(name, run.metrics, time.perf_counter() - t0))


def forecast_multi(threads: int | None) -> None:
    t0 = time.perf_counter()
    run = dl.train(
        macro_frame(),
        "realgdp",
        task="forecast",
        time_column="date",
        features=["realcons", "realinv", "realgovt", "realdpi"],
        lookback=30,
        progress="quiet",
        save=False,
        name="macrodata",
        threads=threads,
    )
    print(
        _row("macrodata realgdp <- 4 features + own history", run.metrics, time.perf_counter() - t0)
    )


def classify(threads: int | None) -> None:
    print(
        "| data set | train/test | model test accuracy | 1-NN Euclidean | logistic | 1-NN DTW (published) | ROCKET (published) | time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (dtw, rocket) in PUBLISHED.items():
        t0 = time.perf_counter()
        run = dl.train(
            str(UCR / f"{name}_TRAIN.ts"),
            test=str(UCR / f"{name}_TEST.ts"),
            progress="quiet",
            save=False,
            threads=threads,
        )
        m = run.metrics
        acc = m["test"]["model"]["accuracy"]
        b = m["test"]["baselines"]
        mark = ">=" if acc >= dtw else "<"
        print(
            f"| {name} | {m['rows']['train'] + m['rows']['val']}/{m['rows']['test']} | {acc:.4f} ({mark} DTW) | {b['1nn_euclidean']['accuracy']:.4f} | "
            f"{b['logistic']['accuracy']:.4f} | {dtw:.4f} | {rocket:.4f} | {time.perf_counter() - t0:.0f} s, {m['epochs_run']} epochs |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["forecast", "classify"])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.only in (None, "forecast"):
        forecast(args.threads)
        forecast_multi(args.threads)
    if args.only in (None, "classify"):
        classify(args.threads)


if __name__ == "__main__":
    main()
