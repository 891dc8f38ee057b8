"""The table training path behind :func:`dlpipe.train` (imports torch; the CLI loads it lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dlpipe.bundle.bundle import Bundle, make_manifest
from dlpipe.core.config import RunConfig
from dlpipe.core.runtime import set_deterministic
from dlpipe.data.tabular import TabularDataset
from dlpipe.evaluation.baselines import fit_baselines
from dlpipe.evaluation.scoring import score
from dlpipe.models.mlp import default_hidden, embedding_dim
from dlpipe.models.registry import build_model
from dlpipe.pipeline._callbacks import environment, standard_callbacks, training_record
from dlpipe.pipeline.run import Run
from dlpipe.pipeline.train import auto_batch_size, auto_epochs, prepare_table
from dlpipe.training.callbacks import (
    Callback,
)
from dlpipe.training.lr_finder import find_learning_rate
from dlpipe.training.trainer import TensorData, Trainer, predict_logits

__all__ = ["fit_table"]


def _tensors(split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> TensorData:
    x_num, x_cat, y = split
    inputs = (torch.from_numpy(x_num),) + ((torch.from_numpy(x_cat),) if x_cat.shape[1] else ())
    return TensorData(inputs, torch.from_numpy(y))


def fit_table(ds: TabularDataset, cfg: RunConfig, *, progress: str = "auto", extra_callbacks: list[Callback] | None = None) -> Run:
    if cfg.data.task in ("reconstruction", "generate"):  # autoencoders, VAEs, GANs on tables
        from dlpipe.pipeline._fit_generative import fit_generative

        return fit_generative(ds, cfg, progress=progress, extra_callbacks=extra_callbacks)
    prep = prepare_table(ds, cfg)
    task, pre, splits = prep["task"], prep["preprocessor"], prep["splits"]
    if cfg.train.deterministic:
        set_deterministic(True)
    n_train = prep["split_rows"]["train"]
    cards = pre.cardinalities
    spec = {
        "family": cfg.model.family,
        "n_numeric": pre.n_numeric,
        "n_outputs": task.n_outputs,
        "hidden": list(cfg.model.hidden) if cfg.model.hidden else default_hidden(n_train),
        "activation": cfg.model.activation,
        "dropout": cfg.model.dropout,
        "batch_norm": cfg.model.batch_norm,
        "cardinalities": cards,
        "embedding_dims": [cfg.model.embedding_dim or embedding_dim(k) for k in cards],
    }
    torch.manual_seed(cfg.seed)
    model = build_model(spec)
    tc = cfg.train
    batch_size = tc.batch_size if tc.batch_size != "auto" else auto_batch_size(n_train)
    epochs = tc.epochs if tc.epochs != "auto" else auto_epochs(n_train, batch_size)
    train_data, val_data = _tensors(splits["train"]), _tensors(splits["val"])
    class_weights = task.class_weights(splits["train"][2]) if tc.class_weight == "balanced" else None
    trainer = Trainer(
        epochs=epochs, batch_size=batch_size,
        learning_rate=tc.learning_rate if tc.learning_rate != "auto" else 1e-3,
        optimizer=tc.optimizer, momentum=tc.momentum, nesterov=tc.nesterov,
        weight_decay=tc.weight_decay, clip_grad=tc.clip_grad, seed=cfg.seed,
        device=tc.device, threads=tc.threads,
    )
    loss_fn = task.loss_fn(class_weights, device=trainer.device)
    extras: dict[str, Any] = {}
    if tc.learning_rate == "auto":
        # The range test's dropout draws from the global generator: fork it, so training draws exactly what
        # a rerun with the chosen rate (config.yaml) draws, and the run reproduces from its record.
        cuda = [trainer.device.index or 0] if trainer.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            found = find_learning_rate(trainer, model, loss_fn, train_data)
        trainer.learning_rate = found.learning_rate
        extras["lr_finder"] = {"lrs": found.lrs, "losses": found.losses, "chosen": found.learning_rate}
    has_val = len(val_data) > 0
    callbacks = standard_callbacks(tc, has_val, progress)
    callbacks.extend(extra_callbacks or ())  # tracking, then checkpointing (last: it restores state)
    trainer.callbacks = callbacks
    history = trainer.fit(model, loss_fn, train_data, val_data if has_val else None, metrics_fn=task.batch_metrics())

    # ---- evaluation beside baselines, on the test split
    x_tr, _, y_tr = splits["train"]
    x_te, c_te, y_te = splits["test"]
    if task.kind == "regression":
        y_train_base = y_tr.reshape(-1) * task.y_std + task.y_mean
    else:
        y_train_base = y_tr.reshape(-1).astype(np.int64)
    baselines = fit_baselines(task.kind, x_tr, y_train_base, task.n_outputs if task.kind == "multiclass" else 2, cfg.seed)
    test_inputs = [torch.from_numpy(x_te)] + ([torch.from_numpy(c_te)] if c_te.shape[1] else [])
    logits = predict_logits(model, test_inputs).float().cpu().numpy()
    values, proba = task.decode(logits)
    if task.kind == "regression":
        y_true, output = y_te.reshape(-1) * task.y_std + task.y_mean, values
    else:
        y_true, output = y_te.reshape(-1).astype(np.int64), proba
    test_scores = score(task.kind, y_true, output, x_te, baselines, task.classes)
    extras["predictions"] = {  # the test split's predictions, so the report can be rebuilt from the folder
        "y_true": y_true if task.kind == "regression" else np.asarray(task.classes, dtype=object)[y_true],
        "prediction": values,
        **({f"proba_{c}": proba[:, i] for i, c in enumerate(task.classes or [])} if proba is not None else {}),
    }

    resolved = cfg.model_dump()
    resolved["model"]["hidden"] = spec["hidden"]
    resolved["train"].update(epochs=epochs, batch_size=batch_size, learning_rate=trainer.learning_rate)
    metrics = {
        "dataset": ds.name,
        "task": task.kind,
        "target": task.target,
        "classes": task.classes,
        "rows": prep["split_rows"],
        "evaluated_on_training_rows": prep["same_rows"],
        **training_record(history, model),
        "test": test_scores,
        "environment": environment(trainer, cfg),
    }
    manifest = make_manifest(
        kind="table",
        task=task.to_dict(),
        preprocessor=pre.state(),
        model_spec=spec,
        metrics={"test": {"model": test_scores["model"], "primary_metric": test_scores["primary_metric"]}},
        baselines=baselines,
        reference_statistics=prep["reference"],
        feature_names=pre.feature_names,
        config=resolved,
    )
    return Run(config=resolved, history=history, metrics=metrics, bundle=Bundle(manifest, model), extras=extras)
