"""The training paths for time series (forecast) and labelled sequences (sequence classification).

Modelled on ``pipeline/_fit.py``: data -> task -> scaling fitted on the training part only ->
model -> Trainer (windows precomputed as one (N, lookback, F) tensor, so batches are index slices)
-> evaluation beside baselines -> bundle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dlpipe.bundle.bundle import Bundle, make_manifest
from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.core.runtime import seed_everything, set_deterministic
from dlpipe.data.sequences import SequenceDataset
from dlpipe.data.series import (
    SeriesDataset,
    SeriesScaler,
    auto_lookback,
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
from dlpipe.pipeline._callbacks import environment, standard_callbacks, training_record
from dlpipe.pipeline.recipe import LegacyFitter
from dlpipe.pipeline.run import Run
from dlpipe.pipeline.settings import auto_batch_size, auto_epochs
from dlpipe.tasks.forecast import ForecastTask
from dlpipe.training.trainer import TensorData, Trainer, predict_logits

__all__ = ["fit_series", "fit_sequences", "DEFAULT_FORECAST_MODEL", "DEFAULT_SEQUENCE_MODEL"]

DEFAULT_FORECAST_MODEL = "lstm"
DEFAULT_SEQUENCE_MODEL = "cnn1d"
SEQUENCE_FAMILIES = ("rnn", "lstm", "gru", "transformer", "tcn", "cnn1d", "fcn")


def _family(cfg: RunConfig, default: str) -> str:
    family = cfg.model.family
    if family == "mlp":  # the table default: not chosen for a series, so use the series default
        return default
    if family not in SEQUENCE_FAMILIES:
        raise InvalidConfigError(f"model family {family!r} cannot read sequences; choose one of {', '.join(SEQUENCE_FAMILIES)}.")
    return family


def _trainer(cfg: RunConfig, n_train: int, progress: str, has_val: bool, extra: list[Any] | None = None) -> Trainer:
    tc = cfg.train
    if tc.learning_rate == "auto":
        raise InvalidConfigError("`learning_rate='auto'` (the range test) is not available for series yet; pass a number such as 1e-3.")
    batch_size = tc.batch_size if tc.batch_size != "auto" else auto_batch_size(n_train)
    epochs = tc.epochs if tc.epochs != "auto" else auto_epochs(n_train, batch_size)
    callbacks = standard_callbacks(tc, has_val, progress)
    callbacks.extend(extra or [])  # e.g. a tracker or the checkpointer (last: it restores state)
    return Trainer(
        epochs=epochs, batch_size=batch_size, learning_rate=tc.learning_rate,
        optimizer=tc.optimizer, momentum=tc.momentum, nesterov=tc.nesterov,
        weight_decay=tc.weight_decay, clip_grad=tc.clip_grad, seed=cfg.seed,
        device=tc.device, threads=tc.threads, callbacks=callbacks,
    )


def _json_times(index: Any) -> list[Any]:
    return [v.isoformat() if hasattr(v, "isoformat") else (float(v) if isinstance(v, (float, np.floating)) else int(v)) for v in index]


# ---------------------------------------------------------------------------- forecasting
def fit_series(ds: SeriesDataset, cfg: RunConfig, *, progress: str = "auto", extra_callbacks: list[Any] | None = None) -> Run:
    """Train a forecaster on a :class:`SeriesDataset` and score it beside naive baselines."""
    seed_everything(cfg.seed)
    if cfg.train.deterministic:
        set_deterministic(True)
    s = cfg.series
    inputs, targets = ds.input_columns, ds.targets
    task = ForecastTask(targets=targets, horizon=s.horizon, recursive=s.recursive)
    task.check_recursive(inputs)
    n = len(ds.frame)
    lookback = s.lookback if s.lookback != "auto" else auto_lookback(n)
    if not isinstance(lookback, int) or lookback < 1:
        raise InvalidConfigError(f"`lookback` is {lookback!r} but must be a positive integer (rows the model sees) or 'auto'.")
    scaling = cfg.data.scaling if "scaling" in cfg.data.model_fields_set else "minmax"
    if scaling == "l2":
        raise InvalidConfigError("`scaling='l2'` does not apply to a series; pass minmax (the default), standard or none.")
    family = _family(cfg, DEFAULT_FORECAST_MODEL)
    test_fraction = 0.0 if ds.test_frame is not None else cfg.data.test_fraction
    spans = split_series(n, lookback, s.horizon, val_fraction=cfg.data.val_fraction, test_fraction=test_fraction, what=ds.name)
    raw = ds.frame[inputs].to_numpy(np.float64)  # (T, F)
    tidx = [inputs.index(t) for t in targets]
    (a_tr, b_tr), (a_va, b_va), (a_te, b_te) = spans
    scaler = SeriesScaler(scaling).fit(raw[a_tr:b_tr])
    z = scaler.transform(raw)
    mh = task.model_horizon

    def windows(zs: np.ndarray, stride: int) -> TensorData:
        xs, ys, _ = make_windows(zs, zs[:, tidx], lookback, mh, stride)
        return TensorData((torch.from_numpy(xs),), torch.from_numpy(ys))

    train_data = windows(z[a_tr:b_tr], s.stride)
    val_data = windows(z[a_va:b_va], 1)
    spec = {
        "family": family, "n_features": len(inputs), "n_outputs": task.n_outputs, "hidden": list(cfg.model.hidden) if cfg.model.hidden else None,
        "dropout": cfg.model.dropout, "bidirectional": s.bidirectional, "forecast": True, "horizon": mh,
        "target_index": tidx, "residual": s.residual, "relative": s.relative,
    }
    torch.manual_seed(cfg.seed)
    model = build_model(spec)
    has_val = len(val_data) > 0
    trainer = _trainer(cfg, len(train_data), progress, has_val, extra_callbacks)
    history = trainer.fit(model, task.loss_fn(), train_data, val_data if has_val else None)

    # ---- evaluation on the test span, beside the naive baselines, in original units
    if ds.test_frame is not None:
        raw_te = ds.test_frame[inputs].to_numpy(np.float64)
        history_y, offset, times = raw_te[:, tidx], 0, (ds.test_frame[ds.time_column] if ds.time_column else None)
    else:
        raw_te = raw[a_te:b_te]
        history_y, offset, times = raw[:, tidx], a_te, (ds.frame[ds.time_column] if ds.time_column else None)
    x_te, y_te, starts = make_windows(scaler.transform(raw_te), raw_te[:, tidx], lookback, s.horizon, 1)

    def model_fn(batch: np.ndarray) -> np.ndarray:
        return predict_logits(model, [torch.from_numpy(np.ascontiguousarray(batch, np.float32))]).float().cpu().numpy()

    z_pred = roll_forecast(model_fn, x_te, s.horizon, tidx, recursive=s.recursive)  # (N, H, K) scaled
    y_pred = scaler.inverse(z_pred, tidx)
    y_true = y_te.reshape(len(y_te), s.horizon, len(tidx)).astype(np.float64)
    origins = offset + starts + lookback
    train_y = raw[a_tr:b_tr][:, tidx]
    period = s.period or detect_period(train_y[:, 0])
    window = min(lookback, period) if period else lookback
    bases = baseline_forecasts(history_y, origins, s.horizon, period=period, window=window)
    insample = float(np.mean(np.abs(np.diff(train_y, axis=0)))) if len(train_y) > 1 else float("nan")
    test_scores = score_forecast(y_true, y_pred, bases, insample)
    target_times = _json_times(times.iloc[origins].tolist()) if times is not None else origins.tolist()
    arrays = {
        t: {"true": y_true[:, :, k].tolist(), "pred": y_pred[:, :, k].tolist(), **{b: v[:, :, k].tolist() for b, v in bases.items()}}
        for k, t in enumerate(targets)
    }

    resolved = cfg.model_dump()
    resolved["model"].update(family=family, hidden=spec["hidden"])
    resolved["data"]["scaling"] = scaling
    resolved["series"]["lookback"] = lookback
    resolved["train"].update(epochs=trainer.epochs, batch_size=trainer.batch_size, learning_rate=trainer.learning_rate)
    metrics = {
        "dataset": ds.name, "task": "forecast", "target": targets[0], "targets": targets, "inputs": inputs,
        "lookback": lookback, "horizon": s.horizon, "recursive": s.recursive, "period": period,
        "rows": {"train": int(b_tr - a_tr), "val": int(b_va - a_va), "test": int(len(raw_te))},
        "windows": {"train": len(train_data), "val": len(val_data), "test": int(len(y_te))},
        "gaps": int(ds.meta.get("gaps", 0)),
        **training_record(history, model),
        "test": test_scores,
        "test_forecast": {"time": target_times, "targets": arrays},
        "environment": environment(trainer, cfg),
    }
    state = {
        "input_columns": inputs, "targets": targets, "time_column": ds.time_column, "lookback": lookback,
        "horizon": s.horizon, "recursive": s.recursive, "scaler": scaler.state(), "freq": ds.freq, "step": ds.step,
        "strict": s.strict, "period": period, "window": window, "insample_scale": insample,
    }
    manifest = make_manifest(
        kind="series", task=task.to_task_dict(), preprocessor=state, model_spec=spec,
        metrics={"test": {"model": test_scores["model"], "primary_metric": "mase"}},
        baselines={"naive": {}, "seasonal_naive": {"period": period}, "moving_average": {"window": window}},
        reference_statistics={}, feature_names=inputs, config=resolved,
    )
    return Run(config=resolved, history=history, metrics=metrics, bundle=Bundle(manifest, model))


# ---------------------------------------------------------------------------- sequence classification
def fit_sequences(ds: SequenceDataset, cfg: RunConfig, *, progress: str = "auto", extra_callbacks: list[Any] | None = None) -> Run:
    """Train a sequence classifier (default: the FCN) and score it beside majority, logistic and 1-NN."""
    import pandas as pd

    from dlpipe.tasks.task import infer_task

    seed_everything(cfg.seed)
    if cfg.train.deterministic:
        set_deterministic(True)
    asked = cfg.data.task if cfg.data.task in ("binary", "multiclass") else "auto"
    task = infer_task(pd.Series(ds.labels, dtype=object), target="label", task=asked)
    if task.kind == "regression":  # numeric labels with many values: still classes here
        task = infer_task(pd.Series(ds.labels, dtype=object).astype(str), target="label", task=asked)
    codes = task.encode(pd.Series(ds.labels, dtype=object))
    strat = codes.reshape(-1).astype(np.int64)
    family = _family(cfg, DEFAULT_SEQUENCE_MODEL)
    n = len(ds.x)
    if ds.test_x is not None:
        # With an official test set, train on every training case unless a validation share is asked
        # for: UCR training sets are tiny (50 GunPoint cases), and early stopping on a handful of
        # validation cases costs more accuracy than it saves (measured: ItalyPowerDemand 0.945 -> 0.963).
        val_fraction = cfg.data.val_fraction if "val_fraction" in cfg.data.model_fields_set else 0.0
        tr, va, _ = split_indices(n, val_fraction=val_fraction, test_fraction=0.0, seed=cfg.seed, stratify=strat)
        x_te, m_te = ds.test_x, ds.test_mask
        assert m_te is not None and ds.test_labels is not None
        y_te = task.encode(pd.Series(ds.test_labels, dtype=object), what="test label")
    else:
        tr, va, te = split_indices(n, val_fraction=cfg.data.val_fraction, test_fraction=cfg.data.test_fraction, seed=cfg.seed, stratify=strat)
        x_te, m_te, y_te = ds.x[te], ds.mask[te], codes[te]

    def tensors(idx: np.ndarray) -> TensorData:
        return TensorData((torch.from_numpy(ds.x[idx]), torch.from_numpy(ds.mask[idx])), torch.from_numpy(codes[idx]))

    train_data, val_data = tensors(tr), tensors(va)
    spec = {
        "family": family, "n_features": ds.channels, "n_outputs": task.n_outputs, "hidden": list(cfg.model.hidden) if cfg.model.hidden else None,
        "dropout": cfg.model.dropout, "bidirectional": cfg.series.bidirectional, "forecast": False,
    }
    torch.manual_seed(cfg.seed)
    model = build_model(spec)
    has_val = len(val_data) > 0 and not np.array_equal(tr, va)
    trainer = _trainer(cfg, len(train_data), progress, has_val, extra_callbacks)
    class_weights = task.class_weights(codes[tr]) if cfg.train.class_weight == "balanced" else None
    loss_fn = task.loss_fn(class_weights, device=trainer.device)
    history = trainer.fit(model, loss_fn, train_data, val_data if has_val else None, metrics_fn=task.batch_metrics())

    # ---- evaluation beside majority / logistic (stored in the bundle) and 1-NN Euclidean
    length = ds.length
    flat_tr = ds.x[tr].reshape(len(tr), -1).astype(np.float64)
    flat_te = x_te[:, :length].reshape(len(x_te), -1).astype(np.float64)
    y_tr_codes = codes[tr].reshape(-1).astype(np.int64)
    baselines = fit_baselines(task.kind, flat_tr, y_tr_codes, max(task.n_outputs, 2) if task.kind == "multiclass" else 2, cfg.seed)
    logits = predict_logits(model, [torch.from_numpy(x_te), torch.from_numpy(m_te)]).float().cpu().numpy()
    _, proba = task.decode(logits)
    assert proba is not None and task.classes is not None
    y_true = y_te.reshape(-1).astype(np.int64)
    test_scores = score(task.kind, y_true, proba, flat_te, baselines, task.classes)
    nn_idx = ((flat_te[:, None, :] - flat_tr[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)  # (N_test,) nearest training case
    nn_proba = np.eye(len(task.classes))[y_tr_codes[nn_idx]]
    test_scores["baselines"]["1nn_euclidean"] = classification_metrics(y_true, nn_proba, task.classes)
    test_scores["verdict"] = verdict("accuracy", test_scores["model"]["accuracy"], test_scores["baselines"])
    samples = {str(c): np.flatnonzero(y_true == i)[:3].tolist() for i, c in enumerate(task.classes)}

    resolved = cfg.model_dump()
    resolved["model"].update(family=family, hidden=spec["hidden"])
    resolved["train"].update(epochs=trainer.epochs, batch_size=trainer.batch_size, learning_rate=trainer.learning_rate)
    metrics = {
        "dataset": ds.name, "task": task.kind, "target": "label", "classes": task.classes,
        "sequence": {"length": length, "channels": ds.channels, "znorm": ds.znorm},
        "rows": {"train": int(len(tr)), "val": int(len(va)), "test": int(len(y_true))},
        "evaluated_on_training_rows": bool(np.array_equal(tr, va)),
        **training_record(history, model),
        "test": test_scores,
        "test_samples": {"index": samples, "x": {k: x_te[v, :, 0].tolist() for k, v in samples.items()}},
        "environment": environment(trainer, cfg),
    }
    manifest = make_manifest(
        kind="sequence", task=task.to_dict(), preprocessor={"length": length, "channels": ds.channels, "znorm": ds.znorm},
        model_spec=spec, metrics={"test": {"model": test_scores["model"], "primary_metric": "accuracy"}},
        baselines=baselines, reference_statistics={}, feature_names=["x", "mask"], config=resolved,
    )
    extras = {"predictions": class_predictions(y_true, proba, task.classes)}  # for the report's ROC/PR curves
    return Run(config=resolved, history=history, metrics=metrics, bundle=Bundle(manifest, model), extras=extras)


class SeriesRecipe(LegacyFitter):  # TEMPORARY (issue #16): moves onto run_recipe
    kind = "series"
    fitter = staticmethod(fit_series)  # type: ignore[assignment]


class SequenceRecipe(LegacyFitter):  # TEMPORARY (issue #16): moves onto run_recipe
    kind = "sequence"
    fitter = staticmethod(fit_sequences)  # type: ignore[assignment]
