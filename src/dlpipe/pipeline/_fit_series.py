"""The recipes for time series (forecast) and labelled sequences (sequence classification).

Both run through :func:`~dlpipe.pipeline.recipe.run_recipe`. A series: a task from the config ->
contiguous train/val/test spans -> a scaler fitted on the training span only -> windows precomputed
as one (N, lookback, F) tensor (batches are index slices) -> a recurrent/convolutional forecaster ->
a rolled forecast of the test span beside the naive, seasonal-naive and moving-average forecasts, in
original units. A set of sequences: classes from the labels -> a stratified split (or every case, with
an official test set) -> a sequence classifier -> scores beside majority, logistic and 1-NN Euclidean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.data.sequences import SequenceDataset
from dlpipe.data.series import (
    SeriesDataset,
    SeriesScaler,
    make_windows,
    roll_forecast,
    split_series,
)
from dlpipe.data.splits import split_indices
from dlpipe.evaluation.baselines import fit_baselines, verdict
from dlpipe.evaluation.forecast_baselines import baseline_forecasts, detect_period, score_forecast
from dlpipe.evaluation.metrics import classification_metrics
from dlpipe.evaluation.scoring import class_predictions, score
from dlpipe.models.registry import build_model
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.pipeline.settings import resolve_lookback
from dlpipe.tasks.forecast import ForecastTask
from dlpipe.training.trainer import TensorData, predict_logits

__all__ = ["SeriesRecipe", "SequenceRecipe", "DEFAULT_FORECAST_MODEL", "DEFAULT_SEQUENCE_MODEL"]

DEFAULT_FORECAST_MODEL = "lstm"
DEFAULT_SEQUENCE_MODEL = "cnn1d"
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


# ---------------------------------------------------------------------------- sequence classification
class SequenceRecipe(Recipe):
    """A sequence classifier (default: the 1-D CNN) scored beside majority, logistic and 1-NN Euclidean."""

    kind = "sequence"

    def prepare(self, ds: SequenceDataset, cfg: RunConfig) -> Prepared:
        import pandas as pd

        from dlpipe.tasks.task import infer_task

        asked = cfg.data.task if cfg.data.task in ("binary", "multiclass") else "auto"
        task = infer_task(pd.Series(ds.labels, dtype=object), target="label", task=asked)
        if task.kind == "regression":  # numeric labels with many values: still classes here
            task = infer_task(
                pd.Series(ds.labels, dtype=object).astype(str), target="label", task=asked
            )
        codes = task.encode(pd.Series(ds.labels, dtype=object))
        strat = codes.reshape(-1).astype(np.int64)
        family = _family(cfg, DEFAULT_SEQUENCE_MODEL)
        n = len(ds.x)
        if ds.test_x is not None:
            # With an official test set, train on every training case unless a validation share is asked
            # for: UCR training sets are tiny (50 GunPoint cases), and early stopping on a handful of
            # validation cases costs more accuracy than it saves (measured: ItalyPowerDemand 0.945 -> 0.963).
            val_fraction = (
                cfg.data.val_fraction if "val_fraction" in cfg.data.model_fields_set else 0.0
            )
            tr, va, _ = split_indices(
                n, val_fraction=val_fraction, test_fraction=0.0, seed=cfg.seed, stratify=strat
            )
            x_te, m_te = ds.test_x, ds.test_mask
            assert m_te is not None and ds.test_labels is not None
            y_te = task.encode(pd.Series(ds.test_labels, dtype=object), what="test label")
        else:
            tr, va, te = split_indices(
                n,
                val_fraction=cfg.data.val_fraction,
                test_fraction=cfg.data.test_fraction,
                seed=cfg.seed,
                stratify=strat,
            )
            x_te, m_te, y_te = ds.x[te], ds.mask[te], codes[te]

        def tensors(idx: np.ndarray) -> TensorData:
            return TensorData(
                (torch.from_numpy(ds.x[idx]), torch.from_numpy(ds.mask[idx])),
                torch.from_numpy(codes[idx]),
            )

        # Nothing to watch without a validation share, or when too few cases to hold any out (tr is va).
        same_rows = bool(np.array_equal(tr, va))
        rows = {"train": int(len(tr)), "val": int(len(va)), "test": int(len(y_te))}
        state = {
            "family": family,
            "tr": tr,
            "codes": codes,
            "x_te": x_te,
            "m_te": m_te,
            "y_te": y_te,
        }
        return Prepared(
            task=task,
            train=tensors(tr),
            val=None if same_rows or not len(va) else tensors(va),
            rows=rows,
            evaluated_on_training_rows=same_rows,
            state=state,
        )

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        mc = ctx.cfg.model
        spec = {
            "family": ctx.prep.state["family"],
            "n_features": ctx.ds.channels,
            "n_outputs": ctx.prep.task.n_outputs,
            "hidden": list(mc.hidden) if mc.hidden else None,
            "dropout": mc.dropout,
            "bidirectional": ctx.cfg.series.bidirectional,
            "forecast": False,
        }
        return build_model(spec), spec

    def evaluate(self, ctx: RunContext) -> Evaluation:
        """The test cases beside majority / logistic (stored in the bundle) and 1-NN Euclidean."""
        st, ds, task, seed = ctx.prep.state, ctx.ds, ctx.prep.task, ctx.cfg.seed
        tr, x_te, m_te = st["tr"], st["x_te"], st["m_te"]
        length = ds.length
        flat_tr = ds.x[tr].reshape(len(tr), -1).astype(np.float64)
        flat_te = x_te[:, :length].reshape(len(x_te), -1).astype(np.float64)
        y_tr_codes = st["codes"][tr].reshape(-1).astype(np.int64)
        baselines = fit_baselines(
            task.kind,
            flat_tr,
            y_tr_codes,
            max(task.n_outputs, 2) if task.kind == "multiclass" else 2,
            seed,
        )
        logits = (
            predict_logits(ctx.model, [torch.from_numpy(x_te), torch.from_numpy(m_te)])
            .float()
            .cpu()
            .numpy()
        )
        _, proba = task.decode(logits)
        assert proba is not None and task.classes is not None
        y_true = st["y_te"].reshape(-1).astype(np.int64)
        metric = "accuracy" if ctx.cfg.data.metric == "auto" else ctx.cfg.data.metric
        test_scores = score(
            task.kind, y_true, proba, flat_te, baselines, task.classes, metric=metric
        )  # sequences keep accuracy as their default; `metric` may choose another
        nn_idx = (
            ((flat_te[:, None, :] - flat_tr[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        )  # (N_test,) nearest training case
        nn_proba = np.eye(len(task.classes))[y_tr_codes[nn_idx]]
        test_scores["baselines"]["1nn_euclidean"] = classification_metrics(
            y_true, nn_proba, task.classes
        )
        test_scores["verdict"] = verdict(
            test_scores["primary_metric"], test_scores["model"], test_scores["baselines"]
        )
        samples = {
            str(c): np.flatnonzero(y_true == i)[:3].tolist() for i, c in enumerate(task.classes)
        }
        manifest = {
            "kind": "sequence",
            "task": task.to_dict(),
            "preprocessor": {"length": length, "channels": ds.channels, "znorm": ds.znorm},
            "baselines": baselines,
            "reference_statistics": {},
            "feature_names": ["x", "mask"],
        }
        return Evaluation(
            test=test_scores,
            manifest=manifest,
            metrics={
                "test_samples": {
                    "index": samples,
                    "x": {k: x_te[v, :, 0].tolist() for k, v in samples.items()},
                }
            },
            extras={
                "predictions": class_predictions(y_true, proba, task.classes)
            },  # for the report's ROC/PR curves
        )

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        _record_model(ctx, resolved)

    def base_metrics(self, ctx: RunContext) -> dict[str, Any]:
        ds, task = ctx.ds, ctx.prep.task
        return {
            "dataset": ds.name,
            "task": task.kind,
            "target": "label",
            "classes": task.classes,
            "sequence": {"length": ds.length, "channels": ds.channels, "znorm": ds.znorm},
        }
