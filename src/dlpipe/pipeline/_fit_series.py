"""The recipe for time series (forecast); labelled sequences are in ``_fit_sequences``.

It runs through :func:`~dlpipe.pipeline.recipe.run_recipe`. A series: a task from the config ->
contiguous train/val/test spans -> a scaler fitted on the training span only -> windows precomputed
as one (N, lookback, F) tensor (batches are index slices) -> a recurrent/convolutional forecaster ->
a rolled forecast of the test span beside the naive, seasonal-naive and moving-average forecasts, in
original units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.data.series import (
    SeriesDataset,
    SeriesScaler,
    make_windows,
    roll_forecast,
    split_series,
)
from dlpipe.evaluation.forecast_baselines import baseline_forecasts, detect_period, score_forecast
from dlpipe.models.registry import build_model
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.pipeline.settings import resolve_lookback
from dlpipe.tasks.forecast import ForecastTask
from dlpipe.training.trainer import TensorData, predict_logits

__all__ = ["SeriesRecipe", "DEFAULT_FORECAST_MODEL", "SEQUENCE_FAMILIES"]

DEFAULT_FORECAST_MODEL = "lstm"
SEQUENCE_FAMILIES = ("rnn", "lstm", "gru", "transformer", "tcn", "cnn1d", "fcn")


def _family(cfg: RunConfig, default: str) -> str:
    family = cfg.model.family
    if family == "mlp":  # the table default: not chosen for a series, so use the series default
        return default
    if family not in SEQUENCE_FAMILIES:
        raise InvalidConfigError(
            f"model family {family!r} cannot read sequences; choose one of {', '.join(SEQUENCE_FAMILIES)}."
        )
    return family


def _json_times(index: Any) -> list[Any]:
    return [
        v.isoformat()
        if hasattr(v, "isoformat")
        else (float(v) if isinstance(v, (float, np.floating)) else int(v))
        for v in index
    ]


def _record_model(ctx: RunContext, resolved: dict[str, Any]) -> None:
    resolved["model"].update(family=ctx.spec["family"], hidden=ctx.spec["hidden"])


# ---------------------------------------------------------------------------- forecasting
class SeriesRecipe(Recipe):
    """A forecaster on a :class:`SeriesDataset`, scored on the test span beside naive baselines.

    ``auto`` epochs and batch size count training windows; ``lookback: auto`` comes from the series
    length (:func:`~dlpipe.pipeline.settings.resolve_lookback`).
    """

    kind = "series"

    def prepare(self, ds: SeriesDataset, cfg: RunConfig) -> Prepared:
        s = cfg.series
        inputs, targets = ds.input_columns, ds.targets
        task = ForecastTask(targets=targets, horizon=s.horizon, recursive=s.recursive)
        task.check_recursive(inputs)
        n = len(ds.frame)
        lookback = resolve_lookback(cfg, n)
        scaling = cfg.data.scaling if "scaling" in cfg.data.model_fields_set else "minmax"
        if scaling == "l2":
            raise InvalidConfigError(
                "`scaling='l2'` does not apply to a series; pass minmax (the default), standard or none."
            )
        family = _family(cfg, DEFAULT_FORECAST_MODEL)
        test_fraction = 0.0 if ds.test_frame is not None else cfg.data.test_fraction
        spans = split_series(
            n,
            lookback,
            s.horizon,
            val_fraction=cfg.data.val_fraction,
            test_fraction=test_fraction,
            what=ds.name,
        )
        raw = ds.frame[inputs].to_numpy(np.float64)  # (T, F)
        tidx = [inputs.index(t) for t in targets]
        (a_tr, b_tr), (a_va, b_va), (a_te, b_te) = spans
        scaler = SeriesScaler(scaling).fit(raw[a_tr:b_tr])
        z = scaler.transform(raw)

        def windows(zs: np.ndarray, stride: int) -> TensorData:
            xs, ys, _ = make_windows(zs, zs[:, tidx], lookback, task.model_horizon, stride)
            return TensorData((torch.from_numpy(xs),), torch.from_numpy(ys))

        train, val = windows(z[a_tr:b_tr], s.stride), windows(z[a_va:b_va], 1)
        if ds.test_frame is not None:
            raw_te = ds.test_frame[inputs].to_numpy(np.float64)
            history_y, offset, times = (
                raw_te[:, tidx],
                0,
                (ds.test_frame[ds.time_column] if ds.time_column else None),
            )
        else:
            raw_te = raw[a_te:b_te]
            history_y, offset, times = (
                raw[:, tidx],
                a_te,
                (ds.frame[ds.time_column] if ds.time_column else None),
            )
        # The baselines' statistics come from the training span only, like the scaler.
        train_y = raw[a_tr:b_tr][:, tidx]
        period = s.period or detect_period(train_y[:, 0])
        state = {
            "family": family,
            "scaling": scaling,
            "lookback": lookback,
            "tidx": tidx,
            "scaler": scaler,
            "raw_te": raw_te,
            "history_y": history_y,
            "offset": offset,
            "times": times,
            "period": period,
            "val_windows": len(val),
            "window": min(lookback, period) if period else lookback,
            "insample": float(np.mean(np.abs(np.diff(train_y, axis=0))))
            if len(train_y) > 1
            else float("nan"),
        }
        rows = {"train": int(b_tr - a_tr), "val": int(b_va - a_va), "test": int(len(raw_te))}
        return Prepared(task=task, train=train, val=val, rows=rows, n_train=len(train), state=state)

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
        return build_model(spec), spec

    def loss(self, ctx: RunContext) -> Any:
        return ctx.prep.task.loss_fn()  # MSE on scaled values: no class weights

    def evaluate(self, ctx: RunContext) -> Evaluation:
        """The test span rolled forward, beside the naive baselines, in original units."""
        st, s, ds, task = ctx.prep.state, ctx.cfg.series, ctx.ds, ctx.prep.task
        tidx, lookback, scaler, raw_te, model = (
            st["tidx"],
            st["lookback"],
            st["scaler"],
            st["raw_te"],
            ctx.model,
        )
        x_te, y_te, starts = make_windows(
            scaler.transform(raw_te), raw_te[:, tidx], lookback, s.horizon, 1
        )

        def model_fn(batch: np.ndarray) -> np.ndarray:
            return (
                predict_logits(model, [torch.from_numpy(np.ascontiguousarray(batch, np.float32))])
                .float()
                .cpu()
                .numpy()
            )

        z_pred = roll_forecast(
            model_fn, x_te, s.horizon, tidx, recursive=s.recursive
        )  # (N, H, K) scaled
        y_pred = scaler.inverse(z_pred, tidx)
        y_true = y_te.reshape(len(y_te), s.horizon, len(tidx)).astype(np.float64)
        origins = st["offset"] + starts + lookback
        period, window = st["period"], st["window"]
        bases = baseline_forecasts(
            st["history_y"], origins, s.horizon, period=period, window=window
        )
        test_scores = score_forecast(y_true, y_pred, bases, st["insample"])
        times = st["times"]
        target_times = (
            _json_times(times.iloc[origins].tolist()) if times is not None else origins.tolist()
        )
        arrays = {
            t: {
                "true": y_true[:, :, k].tolist(),
                "pred": y_pred[:, :, k].tolist(),
                **{b: v[:, :, k].tolist() for b, v in bases.items()},
            }
            for k, t in enumerate(task.targets)
        }
        preprocessor = {
            "input_columns": ds.input_columns,
            "targets": task.targets,
            "time_column": ds.time_column,
            "lookback": lookback,
            "horizon": s.horizon,
            "recursive": s.recursive,
            "scaler": scaler.state(),
            "freq": ds.freq,
            "step": ds.step,
            "strict": s.strict,
            "period": period,
            "window": window,
            "insample_scale": st["insample"],
        }
        manifest = {
            "kind": "series",
            "task": task.to_task_dict(),
            "preprocessor": preprocessor,
            "baselines": {
                "naive": {},
                "seasonal_naive": {"period": period},
                "moving_average": {"window": window},
            },
            "reference_statistics": {},
            "feature_names": ds.input_columns,
        }
        metrics = {
            "windows": {
                "train": len(ctx.prep.train),
                "val": st["val_windows"],
                "test": int(len(y_te)),
            },
            "gaps": int(ds.meta.get("gaps", 0)),
            "test_forecast": {"time": target_times, "targets": arrays},
        }
        return Evaluation(test=test_scores, manifest=manifest, metrics=metrics)

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        _record_model(ctx, resolved)
        resolved["data"]["scaling"] = ctx.prep.state["scaling"]
        resolved["series"]["lookback"] = ctx.prep.state["lookback"]

    def base_metrics(self, ctx: RunContext) -> dict[str, Any]:
        s, task = ctx.cfg.series, ctx.prep.task
        return {
            "dataset": ctx.ds.name,
            "task": "forecast",
            "target": task.targets[0],
            "targets": task.targets,
            "inputs": ctx.ds.input_columns,
            "lookback": ctx.prep.state["lookback"],
            "horizon": s.horizon,
            "recursive": s.recursive,
            "period": ctx.prep.state["period"],
        }
