"""Record the per-window errors of default M1 yearly runs once, then compare interval rules offline (issue #18).

``record``: one default ``dl.train`` per seed on M1 yearly with the last ``--drop`` points of every
series removed (``--drop 6`` and ``--drop 12`` are the development spans; ``--drop 0`` is M1 itself,
whose last 6 points are the reported held-out ones). For each window of the run it writes, to
``OUT/drop{d}_seed{s}.json``: the truth, the model's forecast and the naive/drift baselines of the
validation windows (early-stopped model), the test windows (refit on training + validation) and a
*cross-validation* fit (the same epochs, trained on windows whose targets end one horizon before the
validation span, forecasting that horizon and the validation span: errors of a model not selected on
them), with each window's series, origin and the series' history, so any scale can be computed
offline. With ``--ets`` it also writes statsmodels ETS's own 80%/95% prediction intervals on the test
windows (context only).

With ``--cuts K`` it also records K *rolling* refits (the same epochs) cut 1..K horizons before the
test span, each forecasting the ``horizon`` origins from its cut whose targets precede the test span
(what ``dlpipe.pipeline._fit_series`` now does with K = 4). ``--skip-ets`` leaves out the run's ETS
baseline (it changes no error of the model, only the baseline table; the run is ~3x faster).

``levels`` (chose the rank levels, 2026-12-07): the chosen pool of errors at rank levels 0.76-0.97,
the coverage of every held-out point of the given spans pooled, the mean of the spans' coverages and
each span's; then, each span left out in turn, how far from nominal the left-out span lands with the
level chosen on the others by either criterion. The smallest level whose mean over the development
spans (6, 9, 12, 15, 18) reaches the nominal one is the product's ``INTERVAL_RANK_LEVELS`` (each span
is one draw of the calendar years, so each weighs the same: pooled by points, the level covered the
left-out span 2.7 points short of 80% on average; by the mean over spans 0.1 short).

``evaluate``: reads those files and prints each interval rule's test coverage per span and seed, and
ranks the rules by the mean |coverage - nominal| over 80% and 95% and over the development spans
(drops 6 and 12); ``--show-heldout`` then adds drop 0 (M1's reported held-out points). ``ets``:
statsmodels ETS's own interval coverage on a span's last 6 points (no network; seed-independent).

    nice -n 5 .venv/bin/python benchmarks/interval_errors_dev.py record --drop 6 --seeds 0 1 2 --cuts 4 --skip-ets --out OUT
    nice -n 5 .venv/bin/python benchmarks/interval_errors_dev.py record --drop 12 --seeds 0 1 2 --cuts 4 --skip-ets --out OUT
    .venv/bin/python benchmarks/interval_errors_dev.py evaluate --out OUT --drops 6 12 [--show-heldout]
    for d in 6 9 12 15 18; do nice -n 5 .venv/bin/python benchmarks/interval_errors_dev.py record \
        --drop $d --seeds 0 1 2 3 4 --cuts 6 --skip-ets --out OUT; done
    .venv/bin/python benchmarks/interval_errors_dev.py levels --out OUT --drops 6 9 12 15 18
    nice -n 5 .venv/bin/python benchmarks/interval_errors_dev.py ets --drop 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from interval_scale_dev import HORIZON, M1  # this folder's sibling script
from interval_scale_dev import truncated_m1 as _truncated_m1

import dlpipe as dl
from dlpipe.data.backtest import SeriesPlan
from dlpipe.pipeline._fit_series import SeriesRecipe


def truncated_m1(path: Path, drop: int, min_left: int = 2 * HORIZON + 1) -> tuple[str, int]:
    """The .tsf text of M1 yearly without the last ``drop`` points of each series (short ones left out);
    M1 itself when ``drop`` is 0."""
    if drop == 0:
        return str(M1), 181
    return _truncated_m1(path, drop, min_left)


def _block(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "true": b["true"][:, :, 0].tolist(),
        "pred": b["pred"][:, :, 0].tolist(),
        "naive": b["baselines"]["naive"][:, :, 0].tolist(),
        "drift": b["baselines"]["drift"][:, :, 0].tolist(),
        "names": list(b["names"]),
        "origins": b["origins"].tolist(),
    }


def _ets_intervals(state: dict[str, Any], horizon: int) -> dict[str, Any]:
    """statsmodels ETS (AICc over none/additive/damped trend, as the run's ETS baseline) on the rows
    before each series' test origin: its point forecast and 80%/95% prediction intervals."""
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    from dlpipe.evaluation.forecast_baselines import _ets_select

    out: dict[str, list[Any]] = {"names": [], "origins": [], "pred": [], "lo80": [], "hi80": []}
    out.update(lo95=[], hi95=[])
    for one in state["series"]:
        for o in one.plan.origins("test", horizon):
            y = one.raw[:o, state["tidx"][0]]
            chosen = _ets_select(y, state["period"])
            if chosen is None:
                continue
            config, params = chosen
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = ETSModel(pd.Series(y), error="add", **config).smooth(params)
                    pr = res.get_prediction(start=len(y), end=len(y) + horizon - 1)
                    f80 = pr.summary_frame(alpha=0.2)
                    f95 = pr.summary_frame(alpha=0.05)
            except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
                continue
            out["names"].append(one.name)
            out["origins"].append(int(o))
            out["pred"].append(np.asarray(f80["mean"], float).tolist())
            out["lo80"].append(np.asarray(f80["pi_lower"], float).tolist())
            out["hi80"].append(np.asarray(f80["pi_upper"], float).tolist())
            out["lo95"].append(np.asarray(f95["pi_lower"], float).tolist())
            out["hi95"].append(np.asarray(f95["pi_upper"], float).tolist())
    return out


def record_one(
    path: str, seed: int, ets: bool, cuts: int = 0, skip_ets: bool = False, **options: Any
) -> dict[str, Any]:
    calls: list[tuple[str, dict[str, Any]]] = []
    original_fc, original_ev = SeriesRecipe.forecasts, SeriesRecipe.evaluate
    original_ets = SeriesRecipe._ets
    extra: dict[str, Any] = {}

    def recording(
        self: SeriesRecipe, ctx: Any, model: Any, part: str, cut: str, series: Any = None
    ) -> dict[str, Any]:
        out = original_fc(self, ctx, model, part, cut, series)
        if series is None:  # the product's own refits before the test span pass their series
            calls.append((part, out))
        return out

    def evaluating(self: SeriesRecipe, ctx: Any) -> Any:
        st, h = ctx.prep.state, ctx.prep.task.horizon
        epochs = int(ctx.history.best_epoch or len(ctx.history))
        saved = st["series"]
        extra["series"] = {
            str(o.name): o.raw[:, st["tidx"][0]].tolist() for o in saved
        }  # histories for offline scales
        extra["lookback"], extra["epochs"] = st["lookback"], epochs
        st["series"] = [
            dataclasses.replace(
                o,
                plan=SeriesPlan(
                    n=o.plan.val_end,
                    train_end=max(o.plan.train_end - h, 0),
                    val_end=o.plan.val_end,
                    first=o.plan.first,
                ),
            )
            for o in saved
        ]
        t0 = time.perf_counter()
        try:
            m0 = self._refit(ctx, "train", "train", epochs)
            extra["cv"] = _block(original_fc(self, ctx, m0, "val", "train"))
        finally:
            st["series"] = saved
        extra["cv_seconds"] = round(time.perf_counter() - t0, 1)
        # rolling cuts: a model trained on the targets before val_end - j * horizon forecasts the
        # `horizon` origins from that cut on (each cut a different stretch of calendar time)
        extra["cuts"] = []
        for j in range(1, cuts + 1):
            chosen = []
            for o in saved:
                c = o.plan.val_end - j * h
                if (
                    c < 3
                ):  # too little history before the cut to forecast from (as the validation span)
                    continue
                n = min(o.plan.val_end, c + 2 * h - 1)  # targets before the test span only
                chosen.append(
                    dataclasses.replace(
                        o, plan=SeriesPlan(n=n, train_end=c, val_end=n, first=o.plan.first)
                    )
                )
            mh = ctx.prep.task.model_horizon
            if not any(len(o.plan.origins("train", mh)) for o in chosen):
                break  # no series has a training window before this cut (as the product skips it)
            st["series"] = chosen
            try:
                mj = self._refit(ctx, "train", "train", epochs)
                extra["cuts"].append(_block(original_fc(self, ctx, mj, "val", "train")))
            finally:
                st["series"] = saved
        if ets:
            extra["ets"] = _ets_intervals(st, h)
        return original_ev(self, ctx)

    SeriesRecipe.forecasts = recording  # type: ignore[method-assign]  # records, changes nothing
    SeriesRecipe.evaluate = evaluating  # type: ignore[method-assign]
    if (
        skip_ets
    ):  # the run's ETS baseline only changes the baseline table, not the model or its errors
        SeriesRecipe._ets = lambda self, ctx, part: (None, "skipped")  # type: ignore[method-assign]
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = dl.train(path, seed=seed, progress="quiet", save=False, **options)
    finally:
        SeriesRecipe.forecasts, SeriesRecipe.evaluate = original_fc, original_ev  # type: ignore[method-assign]
        SeriesRecipe._ets = original_ets  # type: ignore[method-assign]
    val = next(o for p, o in calls if p == "val")
    test = next(o for p, o in calls if p == "test")
    return {
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "load": os.getloadavg()[0],
        "mase": run.metrics["test"]["model"]["mase"],
        "product_coverage": run.metrics["intervals"].get("coverage"),
        "val": _block(val),
        "test": _block(test),
        **extra,
    }


# ---------------------------------------------------------------------------- offline rules
def _window_step(h: np.ndarray, o: int, lookback: int) -> float:
    steps = np.abs(np.diff(h[:o]))
    rec = steps[max(0, o - lookback) :]
    s = rec.mean() if len(rec) and rec.mean() > 0 else (steps.mean() if len(steps) else 0.0)
    return float(s) if s > 0 else math.nan


def _scaled(
    run: dict[str, Any], key: str, pred: str = "pred", scale: str = "window"
) -> tuple[np.ndarray, np.ndarray]:
    b = run[key]
    fn = SCALES[scale]
    sc = np.array(
        [
            fn(np.asarray(run["series"][str(n)]), o, run["lookback"])
            for n, o in zip(b["names"], b["origins"])
        ]
    )
    err = (np.asarray(b["true"]) - np.asarray(b[pred])) / sc[:, None]
    return err, sc


SCALES = {
    "window": _window_step,
    "last6": lambda h, o, lb: _window_step(h, o, HORIZON),
    "max(window, last6)": lambda h, o, lb: max(_window_step(h, o, lb), _window_step(h, o, HORIZON)),
    "whole": lambda h, o, lb: _window_step(h, o, 10**6),
    "max(window, whole)": lambda h, o, lb: max(_window_step(h, o, lb), _window_step(h, o, 10**6)),
}


def _q(r: np.ndarray, level: float) -> np.ndarray:
    """Split-conformal half-width per step: the ceil((n + 1) level)-th smallest |r| (the largest if short)."""
    r = np.sort(np.abs(r[np.all(np.isfinite(r), axis=1)]), axis=0)
    n = len(r)
    return r[min(n, math.ceil((n + 1) * level)) - 1]


def _pick(run: dict[str, Any], key: str, last: bool) -> np.ndarray:
    """Per series, the window with the latest (``last``) or earliest origin of block ``key``."""
    b = run[key]
    best: dict[str, int] = {}
    for i, (n, o) in enumerate(zip(b["names"], b["origins"])):
        j = best.get(str(n))
        if j is None or (o > b["origins"][j] if last else o < b["origins"][j]):
            best[str(n)] = i
    return np.array(sorted(best.values()))


def rules(run: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """Half-widths in scale units (per level, per step) under each candidate rule."""
    val, _ = _scaled(run, "val")
    cv, _ = _scaled(run, "cv")
    vn, _ = _scaled(run, "val", "naive")
    val_last = val[_pick(run, "val", True)]
    cv_cut = cv[_pick(run, "cv", False)]
    out: dict[str, dict[str, np.ndarray]] = {}
    for lv in (0.8, 0.95):
        k = str(int(lv * 100))
        out.setdefault("val (current)", {})[k] = _q(val, lv)
        out.setdefault("cv fit", {})[k] = _q(cv, lv)
        out.setdefault("val + cv pooled", {})[k] = _q(np.concatenate([val, cv]), lv)
        out.setdefault("max(val, cv)", {})[k] = np.maximum(_q(val, lv), _q(cv, lv))
        # model errors inflated by the naive forecast's out-of-sample/in-sample ratio? (naive: no fit)
        out.setdefault("val naive errors", {})[k] = _q(vn, lv)
        out.setdefault("max(val, val naive)", {})[k] = np.maximum(_q(val, lv), _q(vn, lv))
        out.setdefault("val, latest window per series", {})[k] = _q(val_last, lv)
        out.setdefault("cv, window at its cut per series", {})[k] = _q(cv_cut, lv)
        out.setdefault("val + cv at cut", {})[k] = _q(np.concatenate([val, cv_cut]), lv)
    if run.get("cuts"):
        blocks = [dict(run, val=c) for c in run["cuts"]]
        cut_err = [_scaled(b, "val")[0] for b in blocks]
        cut_at = [e[_pick(b, "val", False)] for e, b in zip(cut_err, blocks)]
        for kk in (1, 2, 4):
            if len(cut_err) < kk:
                continue
            allc = np.concatenate(cut_err[:kk])
            atc = np.concatenate(cut_at[:kk])
            for lv in (0.8, 0.95):
                k = str(int(lv * 100))
                out.setdefault(f"{kk} rolling cuts, all windows", {})[k] = _q(allc, lv)
                out.setdefault(f"{kk} rolling cuts, window at the cut", {})[k] = _q(atc, lv)
                out.setdefault(f"val + {kk} rolling cuts", {})[k] = _q(
                    np.concatenate([val, allc]), lv
                )
                out.setdefault(f"val + {kk} rolling cuts at the cut", {})[k] = _q(
                    np.concatenate([val, atc]), lv
                )
        # Calendar shocks hit every series in the same years, so errors pool across series but not
        # across periods: treat each calibration block (a period) as one draw and take the largest
        # per-period quantile (the conformal rank over K periods: ceil((K + 1) level) >= K here).
        for kk in (2, 4, 6):
            if len(cut_err) < kk:
                continue
            for lv in (0.8, 0.95):
                k = str(int(lv * 100))
                per = [_q(e, lv) for e in cut_err[:kk]]
                out.setdefault(f"max over {kk} cut periods", {})[k] = np.max(per, axis=0)
                out.setdefault(f"max over val and {kk} cut periods", {})[k] = np.max(
                    per + [_q(val, lv)], axis=0
                )
                out.setdefault(f"val + {kk} rolling cuts (pooled)", {})[k] = _q(
                    np.concatenate([val, *cut_err[:kk]]), lv
                )
    for sc in SCALES:
        if sc != "window":
            v, _ = _scaled(run, "val", scale=sc)
            out[f"val, scale {sc}"] = {str(int(lv * 100)): _q(v, lv) for lv in (0.8, 0.95)}
            if len(run.get("cuts") or []) >= 4:
                cs = [_scaled(dict(run, val=c), "val", scale=sc)[0] for c in run["cuts"][:4]]
                out[f"val + 4 rolling cuts, scale {sc}"] = {
                    str(int(lv * 100)): _q(np.concatenate([v, *cs]), lv) for lv in (0.8, 0.95)
                }
    return out


def coverage(
    run: dict[str, Any], q: dict[str, np.ndarray], scale: str = "window"
) -> dict[str, float]:
    err, _ = _scaled(run, "test", scale=scale)
    ok = np.all(np.isfinite(err), axis=1)
    return {k: float((np.abs(err[ok]) <= v[None, :]).mean()) for k, v in q.items()}


def ets_coverage(run: dict[str, Any]) -> dict[str, float] | None:
    e = run.get("ets")
    if not e:
        return None
    truth = {
        (str(n), o): t
        for n, o, t in zip(run["test"]["names"], run["test"]["origins"], run["test"]["true"])
    }
    y = np.array([truth[(str(n), o)] for n, o in zip(e["names"], e["origins"])])
    return {
        lv: float(((y >= np.asarray(e[f"lo{lv}"])) & (y <= np.asarray(e[f"hi{lv}"]))).mean())
        for lv in ("80", "95")
    }


SCORES: dict[str, list[float]] = {}
WORST: dict[str, list[float]] = {}  # per span: the larger |coverage - nominal| of 80% and 95%


def evaluate(out: Path, drops: list[int]) -> None:
    for drop in drops:
        files = sorted(out.glob(f"drop{drop}_seed*.json"))
        if not files:
            continue
        runs = [json.loads(f.read_text()) for f in files]
        print(
            f"\n## drop {drop} ({'M1 held-out' if drop == 0 else 'development span'}): seeds "
            + ", ".join(str(r["seed"]) for r in runs)
            + "; MASE "
            + ", ".join(f"{r['mase']:.3f}" for r in runs)
            + "; product coverage "
            + ", ".join(str(r.get("product_coverage")) for r in runs)
        )
        names = list(rules(runs[0]))
        print("| rule | 80% per seed | 80% mean | 95% per seed | 95% mean |")
        print("|---|---|---|---|---|")
        for name in names:
            sc = name.split("scale ", 1)[1] if "scale " in name else "window"
            c = [coverage(r, rules(r)[name], sc) for r in runs]
            c80, c95 = [x["80"] for x in c], [x["95"] for x in c]
            SCORES.setdefault(name, []).append(
                (abs(np.mean(c80) - 0.8) + abs(np.mean(c95) - 0.95)) / 2
            )
            WORST.setdefault(name, []).append(
                max(abs(np.mean(c80) - 0.8), abs(np.mean(c95) - 0.95))
            )
            print(
                f"| {name} | {', '.join(f'{v:.3f}' for v in c80)} | {np.mean(c80):.3f} "
                f"| {', '.join(f'{v:.3f}' for v in c95)} | {np.mean(c95):.3f} |"
            )
        for r in runs:
            e = ets_coverage(r)
            if e:
                print(
                    f"statsmodels ETS's own intervals (seed-independent): 80% {e['80']:.3f}, 95% {e['95']:.3f}"
                )
                break


def rank_levels(out: Path, drops: list[int]) -> None:
    """The chosen pool (validation + 4 rolling cuts) at other rank levels: the coverage of every held-out
    point of the spans ``drops`` pooled (each span weighs by its points), their mean over spans (each
    weighs the same), per span, and each criterion's leave-one-span-out miss."""
    levels = [round(x, 2) for x in np.arange(0.76, 0.905, 0.01)] + [0.93, 0.94, 0.95, 0.96, 0.97]
    inside: dict[float, list[np.ndarray]] = {lv: [] for lv in levels}
    per: dict[tuple[int, float], list[float]] = {}
    count = dict.fromkeys(drops, 0)
    for drop in drops:
        for f in sorted(out.glob(f"drop{drop}_seed*.json")):
            run = json.loads(f.read_text())
            val, _ = _scaled(run, "val")
            cuts = [_scaled(dict(run, val=c), "val")[0] for c in run["cuts"][:4]]
            pool = np.concatenate([val, *cuts])
            err, _ = _scaled(run, "test")
            err = np.abs(err[np.all(np.isfinite(err), axis=1)])
            count[drop] += err.size
            for lv in levels:
                hit = (err <= _q(pool, lv)[None, :]).ravel()
                inside[lv].append(hit)
                per.setdefault((drop, lv), []).append(float(hit.mean()))
    print(
        "| rank level | all points of the spans | mean over spans | "
        + " | ".join(f"drop {d}" for d in drops)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(drops))
    span = {lv: np.array([np.mean(per[(d, lv)]) for d in drops]) for lv in levels}
    size = np.array([count[d] for d in drops], float)  # held-out points of each span, all seeds
    for lv in levels:
        cells = " | ".join(f"{v:.3f}" for v in span[lv])
        print(
            f"| {lv:.2f} | {np.concatenate(inside[lv]).mean():.3f} | {span[lv].mean():.3f} | {cells} |"
        )

    # Which criterion picks a level that holds on a span it did not see: each span left out in turn,
    # the level chosen on the others (the smallest reaching nominal), scored on the left-out span.
    def smallest(agg: Any, keep: list[int], nominal: float) -> float:
        """The smallest level whose coverage over the spans ``keep``, aggregated, reaches nominal."""
        return next((x for x in levels if agg(span[x][keep], keep) >= nominal), levels[-1])

    every = list(range(len(drops)))
    for nominal in (0.80, 0.95):
        for name, agg in (
            ("all points pooled", lambda v, k: np.average(v, weights=size[k])),
            ("mean over spans", lambda v, k: float(np.mean(v))),
        ):
            m = np.array(
                [
                    span[smallest(agg, [k for k in every if k != out_k], nominal)][out_k] - nominal
                    for out_k in every
                ]
            )
            print(
                f"{nominal:.0%} by {name}: leave-one-span-out coverage - nominal "
                + ", ".join(f"{v:+.3f}" for v in m)
                + f" (mean {m.mean():+.3f}, mean |.| {np.abs(m).mean():.3f}); "
                + f"on all spans: {smallest(agg, every, nominal):.2f}"
            )


def ets_only(drop: int) -> dict[str, float]:
    """statsmodels ETS's own 80%/95% interval coverage on the last 6 points of each series of M1
    without its last ``drop`` points (no network is trained; seed-independent)."""
    from types import SimpleNamespace

    series, data = [], False
    for line in M1.read_text().splitlines():
        if not data:
            data = line.strip().lower() == "@data"
            continue
        if line.strip():
            name, _, values = line.split(":", 2)
            vals = np.array([float(v) for v in values.split(",")])
            vals = vals[: len(vals) - drop]
            if drop == 0 or len(vals) >= 2 * HORIZON + 1:
                series.append((name, vals))
    state = {
        "tidx": [0],
        "period": None,
        "series": [
            SimpleNamespace(
                name=n,
                raw=v[:, None],
                plan=SeriesPlan(
                    n=len(v), train_end=len(v) - HORIZON, val_end=len(v) - HORIZON, first=1
                ),
            )
            for n, v in series
        ],
    }
    e = _ets_intervals(state, HORIZON)
    truth = {n: v[-HORIZON:] for n, v in series}
    y = np.array([truth[n] for n in e["names"]])
    return {
        lv: float(((y >= np.asarray(e[f"lo{lv}"])) & (y <= np.asarray(e[f"hi{lv}"]))).mean())
        for lv in ("80", "95")
    } | {"series": len(e["names"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("action", choices=["record", "evaluate", "levels", "ets"])
    p.add_argument("--drop", type=int, default=6)
    p.add_argument("--drops", type=int, nargs="+", default=[6, 12])
    p.add_argument("--show-heldout", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--ets", action="store_true", help="also record ETS's own intervals (first seed)"
    )
    p.add_argument("--out", default="runs/interval_errors")
    p.add_argument(
        "--cuts", type=int, default=0, help="rolling-origin refits to record (see above)"
    )
    p.add_argument("--skip-ets", action="store_true", help="skip the run's ETS baseline (faster)")
    p.add_argument(
        "--options", default="{}", help="extra dl.train keyword arguments as JSON (smoke runs)"
    )
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.action == "ets":
        print(f"drop {args.drop}: statsmodels ETS's own interval coverage {ets_only(args.drop)}")
        return
    if args.action == "levels":
        rank_levels(out, args.drops)
        return
    if args.action == "evaluate":
        evaluate(out, args.drops)
        print("\nmean |coverage - nominal| over 80% and 95%, averaged over the spans", args.drops)
        ranked = sorted(SCORES, key=lambda k: np.mean(SCORES[k]))
        for k in ranked:
            print(
                f"  {k}: {np.mean(SCORES[k]):.3f} ("
                + ", ".join(f"{v:.3f}" for v in SCORES[k])
                + ")"
            )
        print(f"chosen on the development spans by the mean: {ranked[0]}")
        print(
            "\nthe acceptance's form: the worst |coverage - nominal| over both levels and every span"
        )
        worst = sorted(WORST, key=lambda k: (max(WORST[k]), np.mean(SCORES[k])))
        for k in worst:
            print(f"  {k}: {max(WORST[k]):.3f} (" + ", ".join(f"{v:.3f}" for v in WORST[k]) + ")")
        print(f"chosen on the development spans by the worst span: {worst[0]}")
        if args.show_heldout:
            evaluate(out, [0])
        return
    with tempfile.TemporaryDirectory() as tmp:
        path, kept = truncated_m1(Path(tmp) / f"m1_minus{args.drop}.tsf", args.drop)
        print(f"M1 yearly without each series' last {args.drop} points: {kept} series", flush=True)
        for i, seed in enumerate(args.seeds):
            r = record_one(
                path,
                seed,
                args.ets and i == 0,
                args.cuts,
                args.skip_ets,
                **json.loads(args.options),
            )
            (out / f"drop{args.drop}_seed{seed}.json").write_text(json.dumps(r))
            print(
                f"seed {seed}: MASE {r['mase']:.3f}, {r['seconds']} s (cv fit {r['cv_seconds']} s), "
                f"load {r['load']:.1f}, product coverage {r['product_coverage']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
