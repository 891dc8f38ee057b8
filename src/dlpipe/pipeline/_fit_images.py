"""The image training path behind :func:`dlpipe.train` (imports torch; loaded lazily).

prepare (split first, normalisation fitted on the training images) -> model spec (CNN, ResNet, or an
MLP on flattened pixels) -> Trainer on uint8 tensors with a per-batch transform (float, augment,
normalise, channels_last) -> evaluation beside baselines (majority class, logistic regression on
8x8-averaged pixels) -> Bundle(kind="image") -> Run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.bundle.bundle import Bundle, make_manifest
from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.core.runtime import seed_everything, set_deterministic
from dlpipe.data.augment import Augment, parse_augment
from dlpipe.data.images import ImageDataset, ImagePreprocessor, baseline_features
from dlpipe.data.splits import split_indices
from dlpipe.evaluation.baselines import fit_baselines
from dlpipe.evaluation.scoring import score
from dlpipe.models.cnn import default_cnn_spec
from dlpipe.models.registry import build_model
from dlpipe.models.resnet import RESNET_LAYERS, freeze_backbone, load_pretrained
from dlpipe.pipeline._callbacks import environment, standard_callbacks, training_record
from dlpipe.pipeline.recipe import LegacyFitter
from dlpipe.pipeline.run import Run
from dlpipe.pipeline.settings import auto_batch_size
from dlpipe.training.callbacks import (
    Callback,
)
from dlpipe.training.history import History
from dlpipe.training.trainer import TensorData, Trainer, predict_logits

__all__ = ["fit_images", "image_transform", "Autocast", "auto_image_epochs", "BASELINE_ROWS"]

BASELINE_ROWS = 10_000  # the logistic baseline is fitted on at most this many training images


def auto_image_epochs(n_train: int, batch_size: int) -> int:
    """About 4,000 steps, between 8 and 60 epochs; early stopping usually ends sooner."""
    steps = max(1, math.ceil(n_train / batch_size))
    return int(min(60, max(8, math.ceil(4000 / steps))))


class Autocast(nn.Module):
    """Runs the wrapped model under bf16 autocast (CPU or CUDA) and returns float32 logits."""

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.inner = model
        self.dtype = dtype

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=xs[0].device.type, dtype=self.dtype):
            out = self.inner(*xs)
        return out.float()


def image_transform(
    pre: ImagePreprocessor, *, augment: Augment | None = None, channels_last: bool = False, flatten: bool = False,
    generator: torch.Generator | None = None,
) -> Callable[[list[torch.Tensor], bool], list[torch.Tensor]]:
    """The per-batch transform: uint8/float storage -> float32, augment (training only), normalise."""
    scale_np, shift_np = pre.scale_shift()
    cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def transform(xb: list[torch.Tensor], training: bool) -> list[torch.Tensor]:
        x = xb[0]
        dev = x.device
        if dev not in cache:
            cache[dev] = (torch.from_numpy(scale_np).view(1, -1, 1, 1).to(dev), torch.from_numpy(shift_np).view(1, -1, 1, 1).to(dev))
        scale, shift = cache[dev]
        x = x.float()  # (B, C, H, W); a copy for uint8 storage, the same tensor for float32 storage
        if training and augment is not None:
            x = augment(x, generator)  # on raw pixels, so padding is black as in the source images
        x = torch.addcmul(shift, x, scale)  # (x - mean) / std, out of place: storage stays untouched
        if flatten:
            return [x.flatten(1)]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return [x]

    return transform


def _check(cfg: RunConfig, ds: ImageDataset) -> None:
    family = cfg.model.family
    problems = []
    if cfg.image.freeze_backbone and not cfg.image.pretrained:
        problems.append("`freeze_backbone` needs `pretrained` weights (a frozen random backbone learns nothing); set `pretrained` to a weight file")
    if cfg.image.finetune_epochs and not cfg.image.freeze_backbone:
        problems.append("`finetune_epochs` unfreezes a frozen backbone, so it needs `freeze_backbone`; set `freeze_backbone` to true")
    if cfg.image.pretrained and family == "mlp":
        problems.append("`pretrained` weights load into a cnn or resnet model; set `model.family` to 'resnet18' (or 'cnn')")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    if len(ds.images) == 0:
        raise InvalidInputError("the image set is empty; pass a folder, file or arrays holding images.")


def fit_images(ds: ImageDataset, cfg: RunConfig, *, progress: str = "auto", extra_callbacks: list[Callback] | None = None) -> Run:
    import pandas as pd

    from dlpipe.tasks.task import infer_task

    seed_everything(cfg.seed)
    _check(cfg, ds)
    if cfg.train.deterministic:
        set_deterministic(True)
    ic, tc, mc = cfg.image, cfg.train, cfg.model
    family = mc.family if "family" in mc.model_fields_set else "cnn"

    # ---- split first, then fit the normalisation on the training images only
    task = infer_task(pd.Series(list(ds.labels)), target=ds.target, task=cfg.data.task, loss=tc.loss)
    y_all = task.encode(pd.Series(list(ds.labels)))
    strat = y_all.reshape(-1).astype(np.int64)
    if ds.test_images is not None:
        tr, va, _ = split_indices(len(ds.images), val_fraction=cfg.data.val_fraction, test_fraction=0.0, seed=cfg.seed, stratify=strat)
        x_test, y_test = np.asarray(ds.test_images), task.encode(pd.Series(list(ds.test_labels if ds.test_labels is not None else [])), what="test label")
    else:
        tr, va, te = split_indices(len(ds.images), val_fraction=cfg.data.val_fraction, test_fraction=cfg.data.test_fraction, seed=cfg.seed, stratify=strat)
        x_test, y_test = ds.images[te], y_all[te]
    x_train, y_train, x_val, y_val = ds.images[tr], y_all[tr], ds.images[va], y_all[va]
    pre = ImagePreprocessor.fit(x_train, normalize=ic.normalize, mean=ic.mean, std=ic.std, color=ds.color, resize=ds.resize, target=ds.target)
    c, h, w = ds.image_shape
    flatten = family == "mlp"
    pre.flatten = flatten

    # ---- the model
    if family == "cnn":
        spec = default_cnn_spec(c, (h, w), task.n_outputs)
        if ic.channels is not None:
            spec["channels"] = list(ic.channels)
        if ic.kernel_size is not None:
            spec["kernel_size"] = ic.kernel_size
        if ic.padding == "valid":
            spec["padding"] = 0
        for key, name in (("hidden", "dense"), ("dropout", "dropout"), ("batch_norm", "batch_norm"), ("activation", "activation")):
            if key in mc.model_fields_set:
                spec[name] = getattr(mc, key)
    elif family in RESNET_LAYERS:
        spec = {"family": family, "in_channels": c, "n_outputs": task.n_outputs, "image_size": [h, w]}
    elif family == "mlp":
        spec = {"family": "mlp", "n_numeric": c * h * w, "n_outputs": task.n_outputs, "hidden": list(mc.hidden or [128, 64]),
                "activation": mc.activation, "dropout": mc.dropout, "batch_norm": mc.batch_norm, "cardinalities": [], "embedding_dims": []}
    else:
        spec = {"family": family, "in_channels": c, "image_size": [h, w], "n_outputs": task.n_outputs}
    torch.manual_seed(cfg.seed)
    model = build_model(spec)
    not_loaded: list[str] = []
    if ic.pretrained:
        not_loaded = load_pretrained(model, ic.pretrained)
    if ic.freeze_backbone:
        freeze_backbone(model, True)

    # ---- the engine: uint8 tensors in memory (1 byte/pixel), converted per batch
    n_train = len(x_train)
    batch_size = tc.batch_size if tc.batch_size != "auto" else auto_batch_size(n_train)
    epochs = tc.epochs if tc.epochs != "auto" else auto_image_epochs(n_train, batch_size)
    # channels_last: max-pooling and convolutions run several times faster in it on the CPU (measured in
    # benchmarks/cnn_throughput.py; NCHW max-pooling alone was a third of a training step).
    channels_last = (not flatten) and (ic.channels_last if ic.channels_last is not None else True)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    aug = Augment.from_names(parse_augment(ic.augment), (h, w))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    transform = image_transform(pre, augment=aug, channels_last=channels_last, flatten=flatten, generator=gen)
    train_data = TensorData((torch.from_numpy(x_train),), torch.from_numpy(y_train), transform)
    val_data = TensorData((torch.from_numpy(x_val),), torch.from_numpy(y_val), transform)
    fit_model: nn.Module = Autocast(model) if ic.precision == "bf16" else model
    class_weights = task.class_weights(y_train) if tc.class_weight == "balanced" else None
    lr = tc.learning_rate if tc.learning_rate != "auto" else 1e-3
    if tc.learning_rate == "auto":
        raise InvalidConfigError("learning_rate='auto' (the range test) is not available for images yet; pass a number such as 1e-3.")
    has_val = len(val_data) > 0

    threads = tc.threads  # None: the engine picks (one thread on a busy machine or for a small step)

    def make_trainer(n_epochs: int, learning_rate: float, extra: list[Callback]) -> Trainer:
        callbacks = standard_callbacks(tc, has_val, progress, plateau_divisor=4, plateau_default=5)
        return Trainer(
            epochs=n_epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer=tc.optimizer,
            momentum=tc.momentum, nesterov=tc.nesterov, weight_decay=tc.weight_decay, clip_grad=tc.clip_grad,
            seed=cfg.seed, device=tc.device, threads=threads, callbacks=callbacks + extra,
        )

    trainer = make_trainer(epochs, lr, list(extra_callbacks or []))
    loss_fn = task.loss_fn(class_weights, device=trainer.device)
    started = time.perf_counter()
    history = trainer.fit(fit_model, loss_fn, train_data, val_data if has_val else None, metrics_fn=task.batch_metrics())
    finetune: dict[str, Any] = {}
    if ic.finetune_epochs > 0:
        # Unfreeze everything and continue with a lower learning rate (the classic two-phase transfer).
        freeze_backbone(model, False)
        ft_lr = lr * ic.finetune_lr_factor
        ft = make_trainer(ic.finetune_epochs, ft_lr, [])
        ft_hist = ft.fit(fit_model, loss_fn, train_data, val_data if has_val else None, metrics_fn=task.batch_metrics())
        offset = len(history)
        merged = History([*history.records, *({**r, "epoch": r["epoch"] + offset, "phase": 2.0} for r in ft_hist.records)])
        merged.best_epoch = (ft_hist.best_epoch + offset) if ft_hist.best_epoch else history.best_epoch
        merged.stopped_epoch = ft_hist.stopped_epoch
        history = merged
        finetune = {"epochs": len(ft_hist), "learning_rate": ft_lr}
    train_seconds = time.perf_counter() - started
    model.eval()
    if channels_last:
        model = model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]

    # ---- evaluation beside baselines, on the test split
    base_rows = np.random.default_rng(cfg.seed).permutation(n_train)[:BASELINE_ROWS] if n_train > BASELINE_ROWS else np.arange(n_train)
    x_base_train = baseline_features(pre.normalise(x_train[base_rows]))
    y_codes = y_train.reshape(-1).astype(np.int64)
    baselines = fit_baselines(task.kind, x_base_train, y_codes[base_rows], task.n_outputs if task.kind == "multiclass" else 2, cfg.seed)
    eval_transform = image_transform(pre, flatten=flatten)
    logits = predict_logits(model, [torch.from_numpy(x_test)], transform=eval_transform, chunk=1024).float().cpu().numpy()
    _, proba = task.decode(logits)
    assert proba is not None  # image tasks are classification
    x_base_test = baseline_features(pre.normalise(np.asarray(x_test)))
    test_scores = score(task.kind, y_test.reshape(-1).astype(np.int64), proba, x_base_test, baselines, task.classes)

    resolved = cfg.model_dump()
    resolved["model"]["family"] = family
    if family == "cnn":  # the model as built: the default CNN's own sizes, batch norm and dropout, not the MLP defaults
        resolved["model"].update(hidden=list(spec["dense"]), dropout=spec["dropout"], batch_norm=spec["batch_norm"],
                                 activation=spec["activation"])
        resolved["image"].update(channels=list(spec["channels"]), padding="valid" if spec["padding"] in (0, "valid") else "same",
                                 kernel_size=spec["kernel_size"] if isinstance(spec["kernel_size"], int) else None)
    elif family == "mlp":
        resolved["model"]["hidden"] = list(spec["hidden"])
    resolved["train"].update(epochs=epochs, batch_size=batch_size, learning_rate=lr)
    resolved["image"]["channels_last"] = channels_last
    steps_run = sum(math.ceil(n_train / batch_size) for _ in history.records)
    metrics = {
        "dataset": ds.name,
        "task": task.kind,
        "target": task.target,
        "classes": task.classes,
        "rows": {"train": int(n_train), "val": int(len(x_val)), "test": int(len(x_test))},
        "evaluated_on_training_rows": False,
        **training_record(history, model),
        "test": test_scores,
        "image": {
            "shape": [c, h, w], "storage": str(x_train.dtype), "channels_last": channels_last, "precision": ic.precision,
            "augment": list(parse_augment(ic.augment)), "pretrained": ic.pretrained, "not_loaded": not_loaded,
            "freeze_backbone": ic.freeze_backbone, "finetune": finetune, "skipped_files": ds.meta.get("skipped", 0),
            "resized_files": ds.meta.get("resized", 0), "baseline_rows": int(len(base_rows)),
            "train_seconds": round(train_seconds, 3), "images_per_second": round(steps_run * batch_size / max(train_seconds, 1e-9), 1),
        },
        "environment": environment(trainer, cfg),
    }
    manifest = make_manifest(
        kind="image",
        task=task.to_dict(),
        preprocessor=pre.state(),
        model_spec=spec,
        metrics={"test": {"model": test_scores["model"], "primary_metric": test_scores["primary_metric"]}},
        baselines=baselines,
        reference_statistics={"channel_mean": pre.mean, "channel_std": pre.std, "image_size": [h, w]},
        feature_names=["image"],
        config=resolved,
    )
    from dlpipe.reports.images import (
        image_extras,  # test predictions + a sample of test images, for the report
    )

    extras = image_extras(x_test, y_test.reshape(-1).astype(np.int64), proba, task.classes or [])
    return Run(config=resolved, history=history, metrics=metrics, bundle=Bundle(manifest, model), extras=extras)


class ImageRecipe(LegacyFitter):  # TEMPORARY (issue #16): moves onto run_recipe
    kind = "image"
    fitter = staticmethod(fit_images)  # type: ignore[assignment]
