"""The recipe for time series (forecast); labelled sequences are in ``_fit_sequences``.

It runs through :func:`~dlpipe.pipeline.recipe.run_recipe`. One series or many (a long table with a
``series_column``, a ``.tsf`` file): a rolling-origin backtest (``dlpipe.data.backtest``: every
origin that fits, targets inside one span) in three fits of the same settings:

1. training windows, early stopping on the validation windows -> the epoch count and the
   validation errors; for many series with refit on, four more fits of that many epochs cut 1..4
   horizons before the test span add their errors on the windows just after their cut; together
   they calibrate the prediction intervals (``_cut_errors``);
2. refit on training + validation windows for that many epochs -> the test windows' forecasts,
   scored beside naive, seasonal naive, drift and ETS, with the intervals' coverage;
3. refit on every window -> the bundle, which forecasts the future (``refit: false`` skips 2 and 3:
   the first model is scored and saved, as before).

Each series has its own scaler, fitted on the rows before the fit's cut-off.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import DataWarning, InvalidConfigError
from dlpipe.data.backtest import (
    SeriesPlan,
    few_windows_note,
    interval_scale,
    plan_backtest,
    window_arrays,
)
from dlpipe.data.series import SeriesDataset, SeriesScaler, roll_forecast
from dlpipe.evaluation.forecast_baselines import (
    ETS_MAX_FITS,
    baseline_forecasts,
    conformal_quantiles,
    detect_period,
    ets_forecasts,
    interval_coverage,
    mase_scale,
    score_forecast,
)
from dlpipe.models.registry import build_model
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.pipeline.settings import resolve_lookback
from dlpipe.tasks.forecast import ForecastTask
from dlpipe.training.trainer import TensorData, predict_logits

__all__ = ["SeriesRecipe", "DEFAULT_FORECAST_MODEL", "DEFAULT_GLOBAL_MODEL", "SEQUENCE_FAMILIES"]

DEFAULT_FORECAST_MODEL = "lstm"
DEFAULT_GLOBAL_MODEL = "nbeats"  # many series: one N-BEATS-style MLP across all of them
SEQUENCE_FAMILIES = ("rnn", "lstm", "gru", "transformer", "tcn", "cnn1d", "fcn")
FORECAST_FAMILIES = (
    *SEQUENCE_FAMILIES,
    "nbeats",
)  # nbeats reads fixed-length windows: forecasting only
_ETS_MAX_WINDOWS = 2000  # ETS forecasts per run at most (~0.01-0.2 s each)
_PLOT_SERIES = 4  # series whose whole history and future metrics.json keeps for the report
# The prediction intervals calibrate on the validation errors pooled with the errors of refits cut
# 1 .. INTERVAL_CUTS horizons before the test span (each forecasting the windows after its cut),
# chosen on development spans of M1 yearly (benchmarks/interval_errors_dev.py, docs/series.md).
INTERVAL_CUTS = 4
# The rank each level takes among those errors: the smallest whose coverage, averaged over five
# development spans of M1 yearly (without its last 6, 9, 12, 15, 18 points; 5 seeds; each span
# weighs the same: it is one draw of the calendar years), reached the level: with the global model
# as trained by default (MAE, Adam at 3e-4) the 81% rank covered 0.808 on average (spans 0.870 to
# 0.720) and the 96% rank 0.957 (0.990 to 0.887). Left out in turn, a span was covered 0.1 point
# short of 80% on average by this criterion, 2.7 short by the level pooling every point
# (benchmarks/interval_errors_dev.py levels, docs/series.md).
INTERVAL_RANK_LEVELS = {80: 81.0, 95: 96.0}


# Many series (one global model): Adam at 3e-4 unless the user gives a rate (M1 yearly's development
# spans, MAE loss, 5 spans x 5 seeds: mean MASE 2.68 at 3e-4, 2.78 at 1e-3, 2.72 at 1e-4).
PANEL_LEARNING_RATE = 3e-4


def _loss(cfg: RunConfig, panel: bool) -> str:
    """The training loss: the user's, else MAE for many series (one global model trained on MSE
    scored MASE 3.25 on M1's development spans against 2.78 on MAE, 5 spans x 5 seeds; a few series
    with large scaled errors steered the squares), MSE for one series (MAE was mixed there: sunspots
    0.739 -> 0.712, nile 0.809 -> 0.837, macrodata 1.009 -> 1.005, seeds 0-2;
    benchmarks/series_one_loss_dev.py)."""
    if cfg.train.loss != "auto":
        return cfg.train.loss
    return "mae" if panel else "mse"


def _family(cfg: RunConfig, default: str) -> str:
    family = cfg.model.family
    if family == "mlp":  # the table default: not chosen for a series, so use the series default
        return default
    if family not in FORECAST_FAMILIES:
        raise InvalidConfigError(
            f"model family {family!r} cannot forecast a series; choose one of {', '.join(FORECAST_FAMILIES)}."
        )
    return family


def _json_times(values: Any) -> list[Any]:
    return [
        v.isoformat()
        if hasattr(v, "isoformat")
        else (float(v) if isinstance(v, (float, np.floating)) else int(v))
        for v in values
    ]


def _record_model(ctx: RunContext, resolved: dict[str, Any]) -> None:
    resolved["model"].update(family=ctx.spec["family"], hidden=ctx.spec["hidden"])


@dataclass
class _One:
    """One series of the run: its raw input columns (T, F), time stamps and backtest plan."""

    name: str | None
    raw: np.ndarray
    times: Any
    plan: SeriesPlan


class SeriesRecipe(Recipe):
    """A forecaster on a :class:`SeriesDataset`, backtested on rolling origins beside its baselines.

    ``auto`` epochs and batch size count training windows; ``lookback: auto`` comes from the series
    length (:func:`~dlpipe.pipeline.settings.resolve_lookback`), or three horizons for many series.
    """

    kind = "series"

    def prepare(self, ds: SeriesDataset, cfg: RunConfig) -> Prepared:
        s = cfg.series
        inputs, targets = ds.input_columns, ds.targets
        horizon = s.horizon
        if "horizon" not in s.model_fields_set and ds.meta.get("horizon"):
            horizon = int(ds.meta["horizon"])  # a .tsf file's own horizon
        panel = ds.series_column is not None
        task = ForecastTask(
            targets=targets, horizon=horizon, recursive=s.recursive, loss=_loss(cfg, panel)
        )
        task.check_recursive(inputs)
        groups = ds.groups()
        if ds.test_frame is not None:  # a separate test file continues the one series
            import pandas as pd

            groups = [(None, pd.concat([ds.frame, ds.test_frame], ignore_index=True))]
        lengths = [len(g) for _, g in groups]
        lookback = resolve_lookback(
            cfg, max(lengths), lengths=lengths if panel else None, horizon=horizon
        )
        scaling = cfg.data.scaling if "scaling" in cfg.data.model_fields_set else "minmax"
        if scaling == "l2":
            raise InvalidConfigError(
                "`scaling='l2'` does not apply to a series; pass minmax (the default), standard or none."
            )
        family = _family(cfg, DEFAULT_GLOBAL_MODEL if panel else DEFAULT_FORECAST_MODEL)
        tsf = (
            "frequency" in ds.meta  # read from a .tsf file (its frequency may be unknown)
            and "test_fraction" not in cfg.data.model_fields_set
        )
        test_rows = (
            len(ds.test_frame)
            if ds.test_frame is not None
            else (horizon if tsf else None)  # the Monash convention: the last horizon held out
        )
        val_fraction = cfg.data.val_fraction
        plans, notes = plan_backtest(
            lengths,
            task.horizon,
            lookback,
            val_fraction=val_fraction,
            test_fraction=cfg.data.test_fraction,
            test_rows=test_rows,
            what=ds.name,
        )
        for note in notes:
            warnings.warn(DataWarning(note), stacklevel=2)
        tidx = [inputs.index(t) for t in targets]
        series = [
            _One(
                name,
                g[inputs].to_numpy(np.float64),
                (g[ds.time_column].reset_index(drop=True) if ds.time_column else None),
                plan,
            )
            for (name, g), plan in zip(groups, plans)
        ]
        period = s.period or ds.period
        if period is None and not panel:
            first = series[0]
            period = detect_period(first.raw[: max(first.plan.train_end, 1), tidx[0]])
        state = {
            "family": family,
            "scaling": scaling,
            "lookback": lookback,
            "tidx": tidx,
            "series": series,
            "period": period,
            "panel": panel,
            "notes": notes,
        }
        train = self.windows(state, "train", "train", task.model_horizon, s.stride)
        val = self.windows(state, "val", "train", task.model_horizon, 1)
        state["val_windows"] = len(val)
        rows = {
            "train": int(sum(o.plan.train_end for o in series)),
            "val": int(sum(o.plan.val_end - o.plan.train_end for o in series)),
            "test": int(sum(o.plan.n - o.plan.val_end for o in series)),
        }
        return Prepared(
            task=task,
            train=train,
            val=val if len(val) else None,
            rows=rows,
            n_train=len(train),
            state=state,
        )

    # ---- windows
    @staticmethod
    def _scaler(st: dict[str, Any], one: _One, cut: str) -> SeriesScaler:
        stop = {"train": one.plan.train_end, "fit": one.plan.val_end, "all": one.plan.n}[cut]
        return SeriesScaler(st["scaling"]).fit(one.raw[: max(stop, 1)])

    def windows(
        self,
        st: dict[str, Any],
        part: str,
        cut: str,
        horizon: int,
        stride: int,
        series: list[_One] | None = None,
    ) -> TensorData:
        """Windows of every series (or of ``series``) for the origins of ``part``, scaled by each
        series' scaler fitted on the rows before ``cut`` (train, fit = train + val, all)."""
        xs, ys = [], []
        for one in st["series"] if series is None else series:
            origins = one.plan.origins(part, horizon, stride)
            if not len(origins):
                continue
            z = self._scaler(st, one, cut).transform(one.raw)
            x, y = window_arrays(z, z[:, st["tidx"]], origins, st["lookback"], horizon)
            xs.append(x)
            ys.append(y)
        f, k = st["series"][0].raw.shape[1], len(st["tidx"])
        x = np.concatenate(xs) if xs else np.zeros((0, st["lookback"], f), np.float32)
        y = np.concatenate(ys) if ys else np.zeros((0, horizon * k), np.float32)
        return TensorData((torch.from_numpy(x),), torch.from_numpy(y))

    def learning_rate_for(self, prep: Prepared | None) -> float | None:
        return PANEL_LEARNING_RATE if prep is not None and prep.state.get("panel") else None

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        st, s, mc, task = ctx.prep.state, ctx.cfg.series, ctx.cfg.model, ctx.prep.task
        spec = {
            "family": st["family"],
            "n_features": len(ctx.ds.input_columns),
            "n_outputs": task.n_outputs,
            "hidden": list(mc.hidden) if mc.hidden else None,
            "dropout": mc.dropout,
            "bidirectional": s.bidirectional,
            "forecast": True,
            "horizon": task.model_horizon,
            "target_index": st["tidx"],
            "residual": s.residual,
            "relative": s.relative,
        }
        if st["family"] == "nbeats":
            spec.update(
                lookback=st["lookback"],
                dropout=0.0 if "dropout" not in mc.model_fields_set else mc.dropout,
            )
        return build_model(spec), spec

    def loss(self, ctx: RunContext) -> Any:
        return ctx.prep.task.loss_fn()  # on scaled values: no class weights

    # ---- forecasts
    def forecasts(
        self,
        ctx: RunContext,
        model: nn.Module,
        part: str,
        cut: str,
        series: list[_One] | None = None,
    ) -> dict[str, Any]:
        """Forecasts of every window of ``part`` (of every series, or of ``series``) in original units,
        with truth, baselines and MASE scales."""
        st, task = ctx.prep.state, ctx.prep.task
        chosen = st["series"] if series is None else series
        horizon, tidx, lookback = task.horizon, st["tidx"], st["lookback"]

        def model_fn(batch: np.ndarray) -> np.ndarray:
            out = predict_logits(model, [torch.from_numpy(np.ascontiguousarray(batch, np.float32))])
            return out.float().cpu().numpy()

        parts: dict[str, list[Any]] = {
            "iscale": [],
            "true": [],
            "pred": [],
            "scale": [],
            "names": [],
            "origins": [],
            "times": [],
        }
        bases: dict[str, list[np.ndarray]] = {}
        for one in chosen:
            origins = one.plan.origins(part, horizon)
            if not len(origins):
                continue
            scaler = self._scaler(st, one, cut)
            z = scaler.transform(one.raw)
            x, _ = window_arrays(z, z[:, tidx], origins, lookback, horizon)
            zp = roll_forecast(model_fn, x, horizon, tidx, recursive=task.recursive)
            history = one.raw[:, tidx]
            steps = origins[:, None] + np.arange(horizon)[None, :]
            parts["pred"].append(scaler.inverse(zp, tidx))
            parts["true"].append(history[steps])  # (N, H, K)
            parts["scale"].append(mase_scale(history, origins, st["period"]))
            parts["iscale"].append(interval_scale(history, origins, lookback))
            parts["names"] += [one.name] * len(origins)
            parts["origins"].append(origins)
            if one.times is not None:
                parts["times"] += _json_times(one.times.iloc[origins].tolist())
            else:
                parts["times"] += origins.tolist()
            for name, b in baseline_forecasts(
                history, origins, horizon, period=st["period"]
            ).items():
                bases.setdefault(name, []).append(b)
        n_series = sum(1 for one in chosen if len(one.plan.origins(part, horizon)))
        out: dict[str, Any] = {
            k: (np.concatenate(v) if v else np.zeros((0, horizon, len(tidx))))
            for k, v in parts.items()
            if k in ("true", "pred")
        }
        for key in ("scale", "iscale"):
            out[key] = np.concatenate(parts[key]) if parts[key] else np.zeros((0, len(tidx)))
        out["names"], out["times"] = parts["names"], parts["times"]
        out["origins"] = (
            np.concatenate(parts["origins"]) if parts["origins"] else np.zeros(0, np.int64)
        )
        # a baseline missing for some series (seasonal naive near the start) is left out everywhere
        out["baselines"] = {
            k: np.concatenate(v) for k, v in bases.items() if len(v) == n_series and v
        }
        return out

    def _ets(self, ctx: RunContext, part: str) -> tuple[np.ndarray | None, str | None]:
        st, task = ctx.prep.state, ctx.prep.task
        scored = [o for o in st["series"] if len(o.plan.origins(part, task.horizon))]
        fits = len(scored) * len(st["tidx"])
        if fits > ETS_MAX_FITS:
            return None, (
                f"ETS was not fitted: {len(scored)} series x {len(st['tidx'])} targets would each need their own fit (the limit is {ETS_MAX_FITS})"
            )
        windows = sum(len(o.plan.origins(part, task.horizon)) for o in scored)
        if windows > _ETS_MAX_WINDOWS:  # each window re-runs the fitted model over its history
            return None, (
                f"ETS was not run: {windows} windows would each re-run it over their history (the limit is {_ETS_MAX_WINDOWS}); pass a smaller `test_fraction` to get it"
            )
        try:
            import statsmodels  # noqa: F401
        except ImportError:
            return (
                None,
                "ETS was not fitted: it needs statsmodels; run `pip install 'dlpipe[forecast]'`",
            )
        pieces = []
        for one in st["series"]:
            origins = one.plan.origins(part, task.horizon)
            if len(origins):
                pieces.append(
                    ets_forecasts(
                        one.raw[:, st["tidx"]], origins, task.horizon, period=st["period"]
                    )
                )
        return (np.concatenate(pieces) if pieces else None), None

    def _refit(
        self,
        ctx: RunContext,
        part: str,
        cut: str,
        epochs: int,
        series: list[_One] | None = None,
    ) -> nn.Module:
        """A fresh model of the same spec trained on ``part``'s windows for ``epochs`` (no early stopping)."""
        torch.manual_seed(ctx.cfg.seed)
        model = build_model(ctx.spec)
        data = self.windows(
            ctx.prep.state, part, cut, ctx.prep.task.model_horizon, ctx.cfg.series.stride, series
        )
        trainer = ctx.make_trainer(epochs=max(1, epochs))
        trainer.fit(model, ctx.loss_fn, data, None)
        model.eval()
        return model

    def _cut_errors(self, ctx: RunContext, epochs: int) -> list[dict[str, Any]]:
        """Forecasts of refits cut ``j`` horizons before the test span (j = 1 .. INTERVAL_CUTS): each is
        trained for ``epochs`` on the windows whose targets precede its cut ``c`` and forecasts the
        origins ``c .. c + horizon - 1`` whose targets precede the test span, as the test refit does
        after its own cut. Their errors were not used to choose anything (unlike the early-stopped
        model's validation errors). Series with fewer than 3 rows before a cut sit that cut out."""
        st, h = ctx.prep.state, ctx.prep.task.horizon
        blocks = []
        for j in range(1, INTERVAL_CUTS + 1):
            chosen = []
            for one in st["series"]:
                c = one.plan.val_end - j * h
                if c < 3:
                    continue
                n = min(one.plan.val_end, c + 2 * h - 1)
                plan = SeriesPlan(n=n, train_end=c, val_end=n, first=one.plan.first)
                chosen.append(replace(one, plan=plan))
            if not chosen or not any(
                len(o.plan.origins("train", ctx.prep.task.model_horizon)) for o in chosen
            ):
                continue
            model = self._refit(ctx, "train", "train", epochs, chosen)
            blocks.append(self.forecasts(ctx, model, "val", "train", chosen))
        return blocks

    def evaluate(self, ctx: RunContext) -> Evaluation:
        """Validation residuals -> refit -> test windows beside the baselines with intervals -> refit on all."""
        st, s, ds, task = ctx.prep.state, ctx.cfg.series, ctx.ds, ctx.prep.task
        horizon = task.horizon
        refit = s.refit
        epochs = int(ctx.history.best_epoch or len(ctx.history))
        first = ctx.model
        val = self.forecasts(ctx, first, "val", "train")
        n_val, n_test = (
            len(val["true"]),
            sum(len(o.plan.origins("test", horizon)) for o in st["series"]),
        )
        # where the model is scored: the test windows, else the validation ones, else the training ones
        scored_on = "test" if n_test else ("val" if n_val else "train")
        if scored_on == "test":
            tested = self._refit(ctx, "fit", "fit", epochs) if (refit and n_val) else first
            test = self.forecasts(ctx, tested, "test", "fit" if (refit and n_val) else "train")
        elif scored_on == "val":
            test = val
        else:
            test = self.forecasts(ctx, first, "train", "train")
        notes = [n.rstrip(".") for n in st["notes"]]
        note = few_windows_note(
            {"test": "test", "val": "validation", "train": "training"}[scored_on], len(test["true"])
        )
        if note:
            warnings.warn(DataWarning(note), stacklevel=2)
            notes.append(note.rstrip("."))
        if scored_on == "val":
            notes.append(
                f"`test_fraction` is 0, so these scores are on the {n_val} validation windows, which also chose the epoch (slightly optimistic)"
            )
        elif scored_on == "train":
            notes.append(
                "there is no validation or test window, so these scores are on the training windows (optimistic)"
            )
        ets, ets_note = self._ets(ctx, scored_on)
        bases = dict(test["baselines"])
        if ets is not None:
            bases["ets"] = ets
        if ets_note:
            notes.append(ets_note)
        test_scores = score_forecast(test["true"], test["pred"], bases, test["scale"], notes=notes)
        test_scores["scored_on"] = scored_on

        # intervals: calibrated on the validation errors (and, for many series, those of refits cut
        # before the test span), checked on the test windows
        def resid(block: dict[str, Any]) -> np.ndarray:
            return (block["true"] - block["pred"]) / block["iscale"][:, None, :]

        # the refits only for many series (where the rule was chosen; on one series it was not
        # measured, and it would double the run's training time)
        cuts = self._cut_errors(ctx, epochs) if (refit and n_val and st["panel"]) else []
        calib = [resid(val)] if n_val else []
        intervals: dict[str, Any] = {"levels": [80, 95]}
        intervals["calibration"] = "validation errors of the early-stopped model"
        if any(len(b["true"]) for b in cuts):
            calib += [resid(b) for b in cuts if len(b["true"])]
            intervals["calibration"] += (
                f" and errors of {sum(1 for b in cuts if len(b['true']))} refits ({epochs} epochs) "
                "cut whole horizons before the test span, on the windows after their cut"
            )
        # the rank levels were chosen with the refits' errors in the pool; without them, plain ranks
        ranks = INTERVAL_RANK_LEVELS if len(calib) > 1 else None
        if ranks:
            intervals["rank_levels"] = {str(k): v for k, v in ranks.items()}
            intervals["calibration"] += (
                "; the 80% and 95% intervals take the errors' 81% and 96% ranks"
                " (chosen on development spans)"
            )
        q_val: dict[str, Any] = {}
        if calib and scored_on == "test":
            q_val, q_notes = conformal_quantiles(_finite(np.concatenate(calib)), ranks)
            intervals["calibration_windows"] = int(sum(len(r) for r in calib))
            intervals["coverage"] = interval_coverage(
                test["true"], test["pred"], test["iscale"], q_val
            )
            intervals["test_windows"] = len(test["true"])
            intervals["notes"] = q_notes
            test_scores["coverage"] = intervals["coverage"]
            for level, share in intervals["coverage"].items():  # a column of the report's table
                test_scores["model"][f"coverage_{level}"] = share
        else:
            intervals["notes"] = [
                "coverage not measured: it needs validation windows (to calibrate) and test windows (to check)"
            ]
        pool = calib + ([resid(test)] if scored_on == "test" else [])
        q_future, _ = (
            conformal_quantiles(_finite(np.concatenate(pool)), ranks) if pool else ({}, [])
        )

        # the bundle: refit on every window with the chosen epochs
        if refit and (n_val or n_test):
            ctx.model = self._refit(ctx, "all", "all", epochs)
            cut = "all"
        else:
            cut = "train"
        future = self.future(ctx, ctx.model, cut, q_future)
        one = st["series"][0]
        final_scaler = self._scaler(st, one, cut)
        arrays = {
            t: {
                "true": test["true"][:, :, k].tolist(),
                "pred": test["pred"][:, :, k].tolist(),
                **{b: v[:, :, k].tolist() for b, v in bases.items()},
                **{
                    f"{side}{lvl}": (
                        test["pred"][:, :, k]
                        + sign * np.asarray(q_val[lvl])[None, :, k] * test["iscale"][:, k : k + 1]
                    ).tolist()
                    for lvl in q_val
                    for side, sign in (("lo", -1.0), ("hi", 1.0))
                },
            }
            for k, t in enumerate(task.targets)
        }
        preprocessor = {
            "input_columns": ds.input_columns,
            "targets": task.targets,
            "time_column": ds.time_column,
            "series_column": ds.series_column,
            "lookback": st["lookback"],
            "horizon": horizon,
            "recursive": s.recursive,
            "scaler": final_scaler.state(),
            "scaling": st["scaling"],
            "freq": ds.freq,
            "step": ds.step,
            "strict": s.strict,
            "period": st["period"],
            "interval_quantiles": q_future,
            "interval_scale": "window_step",  # bundles without it: the larger of |last| and the MASE scale
        }
        manifest = {
            "kind": "series",
            "task": task.to_task_dict(),
            "preprocessor": preprocessor,
            "baselines": {
                "naive": {},
                "seasonal_naive": {"period": st["period"]},
                "drift": {},
            },
            "reference_statistics": {},
            "feature_names": ds.input_columns,
        }
        metrics = {
            "windows": {
                "train": len(ctx.prep.train),
                "val": n_val,
                "test": n_test,
            },
            "series": len(st["series"]),
            "refit": {
                "enabled": bool(refit),
                "epochs": epochs,
                "bundle_trained_on": "all" if cut == "all" else "train",
            },
            "gaps": int(ds.meta.get("gaps", 0)),
            "intervals": intervals,
            "test_forecast": {
                "time": test["times"],
                "series": test["names"] if st["panel"] else None,
                "scored_on": scored_on,
                "targets": arrays,
            },
            "series_plot": self.history_for_plot(st, ds),
            "future": future,
        }
        return Evaluation(test=test_scores, manifest=manifest, metrics=metrics)

    def future(
        self, ctx: RunContext, model: nn.Module, cut: str, quantiles: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The next ``horizon`` values after the end of the first few series, with their intervals."""
        st, task = ctx.prep.state, ctx.prep.task
        out = []
        for one in st["series"][:_PLOT_SERIES]:
            scaler = self._scaler(st, one, cut)
            z = scaler.transform(one.raw)
            x, _ = window_arrays(z, z[:, st["tidx"]], np.array([one.plan.n]), st["lookback"], 0)

            def model_fn(batch: np.ndarray) -> np.ndarray:
                return (
                    predict_logits(
                        model, [torch.from_numpy(np.ascontiguousarray(batch, np.float32))]
                    )
                    .float()
                    .cpu()
                    .numpy()
                )

            zp = roll_forecast(model_fn, x, task.horizon, st["tidx"], recursive=task.recursive)
            pred = scaler.inverse(zp, st["tidx"])[0]  # (H, K)
            scale = interval_scale(one.raw[:, st["tidx"]], np.array([one.plan.n]), st["lookback"])[
                0
            ]
            entry: dict[str, Any] = {"series": one.name, "pred": pred.tolist()}
            for lvl, q in quantiles.items():
                half = np.asarray(q) * scale[None, :]
                entry[f"lo{lvl}"] = (pred - half).tolist()
                entry[f"hi{lvl}"] = (pred + half).tolist()
            out.append(entry)
        return out

    @staticmethod
    def history_for_plot(st: dict[str, Any], ds: SeriesDataset) -> list[dict[str, Any]]:
        """The whole history of the first few series and their span boundaries, for the report."""
        out = []
        for one in st["series"][:_PLOT_SERIES]:
            times = (
                _json_times(one.times.tolist())
                if one.times is not None
                else list(range(one.plan.n))
            )
            out.append(
                {
                    "series": one.name,
                    "time": times,
                    "values": one.raw[:, st["tidx"]].T.tolist(),
                    "train_end": one.plan.train_end,
                    "val_end": one.plan.val_end,
                }
            )
        return out

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        _record_model(ctx, resolved)
        resolved["data"]["scaling"] = ctx.prep.state["scaling"]
        resolved["series"]["lookback"] = ctx.prep.state["lookback"]
        resolved["series"]["horizon"] = ctx.prep.task.horizon

    def base_metrics(self, ctx: RunContext) -> dict[str, Any]:
        s, task = ctx.cfg.series, ctx.prep.task
        return {
            "dataset": ctx.ds.name,
            "task": "forecast",
            "target": task.targets[0],
            "targets": task.targets,
            "inputs": ctx.ds.input_columns,
            "lookback": ctx.prep.state["lookback"],
            "horizon": task.horizon,
            "recursive": s.recursive,
            "period": ctx.prep.state["period"],
        }


def _finite(r: np.ndarray) -> np.ndarray:
    """Residual windows whose scale was defined (a constant history has no MASE scale)."""
    ok = np.all(np.isfinite(r), axis=(1, 2))
    return r[ok]
