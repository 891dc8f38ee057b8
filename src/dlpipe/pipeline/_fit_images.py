"""The image recipe behind :func:`dlpipe.train` (imports torch; loaded lazily).

prepare (split first, normalisation fitted on the training images) -> model spec (CNN, ResNet, or an
MLP on flattened pixels) -> the run path's Trainer on uint8 tensors with a per-batch transform (float,
augment, normalise, channels_last) -> an optional fine-tuning phase -> evaluation beside baselines
(majority class, logistic regression on 8x8-averaged pixels) -> Bundle(kind="image").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.data.augment import Augment, parse_augment
from dlpipe.data.images import ImageDataset, ImagePreprocessor, baseline_features
from dlpipe.data.splits import split_indices
from dlpipe.evaluation.baselines import fit_baselines
from dlpipe.evaluation.calibration import calibration_record
from dlpipe.evaluation.scoring import score
from dlpipe.models.cnn import default_cnn_spec
from dlpipe.models.registry import build_model
from dlpipe.models.resnet import RESNET_LAYERS, freeze_backbone, load_pretrained
from dlpipe.pipeline._callbacks import standard_callbacks
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.training.callbacks import Callback
from dlpipe.training.history import History
from dlpipe.training.trainer import TensorData, Trainer, predict_logits

__all__ = ["ImageRecipe", "image_transform", "Autocast", "auto_image_epochs", "BASELINE_ROWS"]

BASELINE_ROWS = 10_000  # the logistic baseline is fitted on at most this many training images


AUTO_STEPS = 1500  # the one-cycle schedule's length in steps when `epochs` is auto (docs/images.md)


def auto_image_epochs(n_train: int, batch_size: int) -> int:
    """About 1,500 steps (one one-cycle schedule), between 4 and 60 epochs.

    Chosen on the validation split carved from MNIST's training files and checked on sklearn's digits
    as an image folder (docs/images.md): 4 epochs for MNIST's 48,000 training images at batch 128,
    45 for 1,078 digits at batch 32."""
    steps = max(1, math.ceil(n_train / batch_size))
    return int(min(60, max(4, math.ceil(AUTO_STEPS / steps))))


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
    pre: ImagePreprocessor,
    *,
    augment: Augment | None = None,
    channels_last: bool = False,
    flatten: bool = False,
    generator: torch.Generator | None = None,
) -> Callable[[list[torch.Tensor], bool], list[torch.Tensor]]:
    """The per-batch transform: uint8/float storage -> float32, augment (training only), normalise."""
    scale_np, shift_np = pre.scale_shift()
    cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def transform(xb: list[torch.Tensor], training: bool) -> list[torch.Tensor]:
        x = xb[0]
        dev = x.device
        if dev not in cache:
            cache[dev] = (
                torch.from_numpy(scale_np).view(1, -1, 1, 1).to(dev),
                torch.from_numpy(shift_np).view(1, -1, 1, 1).to(dev),
            )
        scale, shift = cache[dev]
        x = x.float()  # (B, C, H, W); a copy for uint8 storage, the same tensor for float32 storage
        if training and augment is not None:
            x = augment(x, generator)  # on raw pixels, so padding is black as in the source images
        x = torch.addcmul(
            shift, x, scale
        )  # (x - mean) / std, out of place: storage stays untouched
        if flatten:
            return [x.flatten(1)]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return [x]

    return transform


def _family(cfg: RunConfig) -> str:
    """The model family: a CNN unless one was named (the config's default, an MLP, is for tables)."""
    return cfg.model.family if "family" in cfg.model.model_fields_set else "cnn"


def _model_spec(
    cfg: RunConfig, family: str, shape: tuple[int, int, int], n_outputs: int
) -> dict[str, Any]:
    ic, mc = cfg.image, cfg.model
    c, h, w = shape
    if family == "cnn":
        spec = default_cnn_spec(c, (h, w), n_outputs)
        if ic.channels is not None:
            spec["channels"] = list(ic.channels)
        if ic.kernel_size is not None:
            spec["kernel_size"] = ic.kernel_size
        if ic.padding == "valid":
            spec["padding"] = 0
        for key, name in (
            ("hidden", "dense"),
            ("dropout", "dropout"),
            ("batch_norm", "batch_norm"),
            ("activation", "activation"),
        ):
            if key in mc.model_fields_set:
                spec[name] = getattr(mc, key)
        return spec
    if family in RESNET_LAYERS:
        return {"family": family, "in_channels": c, "n_outputs": n_outputs, "image_size": [h, w]}
    if family == "mlp":
        return {
            "family": "mlp",
            "n_numeric": c * h * w,
            "n_outputs": n_outputs,
            "hidden": list(mc.hidden or [128, 64]),
            "activation": mc.activation,
            "dropout": mc.dropout,
            "batch_norm": mc.batch_norm,
            "cardinalities": [],
            "embedding_dims": [],
        }
    return {"family": family, "in_channels": c, "image_size": [h, w], "n_outputs": n_outputs}


class _FirstPhaseStart(Callback):
    """When the first phase starts: re-seed the augmentation generator (the range test may have drawn from it,
    and a rerun with the chosen rate must see the same crops) and start the training clock."""

    def __init__(self, generator: torch.Generator, seed: int) -> None:
        self.generator, self.seed = generator, seed
        self.started = time.perf_counter()

    def on_fit_start(self, trainer: Trainer) -> None:
        self.generator.manual_seed(self.seed)
        self.started = time.perf_counter()


class ImageRecipe(Recipe):
    """Split first, normalisation fitted on the training images, a CNN/ResNet/MLP trained on uint8 storage
    with a per-batch transform (optionally frozen, then fine-tuned), scored beside the majority class and
    a logistic regression on 8x8-averaged pixels."""

    kind = "image"
    # one-cycle to 3e-3 (AdamW) over the auto epochs unless the user names a schedule or a rate: the
    # batch-norm CNN reaches in ~1,500 steps what the plateau schedule at 1e-3 reached in ~4,000
    # (docs/images.md, "Speed on the CPU")
    default_schedule = "onecycle"
    default_learning_rate = 3e-3
    plateau_divisor = 4
    plateau_default = 5

    def auto_epochs(self, n_train: int, batch_size: int) -> int:
        return auto_image_epochs(n_train, batch_size)

    def check(self, ds: ImageDataset, cfg: RunConfig) -> None:
        ic = cfg.image
        problems = []
        if ic.freeze_backbone and not ic.pretrained:
            problems.append(
                "`freeze_backbone` needs `pretrained` weights (a frozen random backbone learns nothing); set `pretrained` to a weight file"
            )
        if ic.finetune_epochs and not ic.freeze_backbone:
            problems.append(
                "`finetune_epochs` unfreezes a frozen backbone, so it needs `freeze_backbone`; set `freeze_backbone` to true"
            )
        if (
            ic.pretrained and _family(cfg) == "mlp"
        ):  # an unnamed family is the default CNN, which loads weights
            problems.append(
                "`pretrained` weights load into a cnn or resnet model; set `model.family` to 'resnet18' (or 'cnn')"
            )
        if problems:
            raise InvalidConfigError("; ".join(problems) + ".")
        if len(ds.images) == 0:
            raise InvalidInputError(
                "the image set is empty; pass a folder, file or arrays holding images."
            )

    def prepare(self, ds: ImageDataset, cfg: RunConfig) -> Prepared:
        import pandas as pd

        from dlpipe.tasks.task import infer_task

        ic = cfg.image
        # ---- split first, then fit the normalisation on the training images only
        task = infer_task(
            pd.Series(list(ds.labels)), target=ds.target, task=cfg.data.task, loss=cfg.train.loss
        )
        y_all = task.encode(pd.Series(list(ds.labels)))
        strat = y_all.reshape(-1).astype(np.int64)
        if ds.test_images is not None:
            tr, va, _ = split_indices(
                len(ds.images),
                val_fraction=cfg.data.val_fraction,
                test_fraction=0.0,
                seed=cfg.seed,
                stratify=strat,
            )
            test_labels = list(ds.test_labels) if ds.test_labels is not None else []
            x_test, y_test = (
                np.asarray(ds.test_images),
                task.encode(pd.Series(test_labels), what="test label"),
            )
        else:
            tr, va, te = split_indices(
                len(ds.images),
                val_fraction=cfg.data.val_fraction,
                test_fraction=cfg.data.test_fraction,
                seed=cfg.seed,
                stratify=strat,
            )
            x_test, y_test = ds.images[te], y_all[te]
        x_train, y_train, x_val, y_val = ds.images[tr], y_all[tr], ds.images[va], y_all[va]
        pre = ImagePreprocessor.fit(
            x_train,
            normalize=ic.normalize,
            mean=ic.mean,
            std=ic.std,
            color=ds.color,
            resize=ds.resize,
            target=ds.target,
        )
        flatten = _family(cfg) == "mlp"
        pre.flatten = flatten
        # channels_last: max-pooling and convolutions run several times faster in it on the CPU (measured in
        # benchmarks/cnn_throughput.py; NCHW max-pooling alone was a third of a training step).
        channels_last = (not flatten) and (
            ic.channels_last if ic.channels_last is not None else True
        )

        # ---- uint8 tensors in memory (1 byte/pixel), converted per batch
        _, h, w = ds.image_shape
        aug = Augment.from_names(parse_augment(ic.augment), (h, w))
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        transform = image_transform(
            pre, augment=aug, channels_last=channels_last, flatten=flatten, generator=gen
        )
        return Prepared(
            task=task,
            train=TensorData((torch.from_numpy(x_train),), torch.from_numpy(y_train), transform),
            val=TensorData((torch.from_numpy(x_val),), torch.from_numpy(y_val), transform),
            rows={"train": int(len(x_train)), "val": int(len(x_val)), "test": int(len(x_test))},
            state={
                "preprocessor": pre,
                "x_train": x_train,
                "y_train": y_train,
                "x_test": x_test,
                "y_test": y_test,
                "flatten": flatten,
                "channels_last": channels_last,
                "generator": gen,
            },
        )

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        ic = ctx.cfg.image
        spec = _model_spec(ctx.cfg, _family(ctx.cfg), ctx.ds.image_shape, ctx.prep.task.n_outputs)
        model = build_model(spec)
        ctx.extras["not_loaded"] = load_pretrained(model, ic.pretrained) if ic.pretrained else []
        if ic.freeze_backbone:
            freeze_backbone(model, True)
        return model, spec

    def fit_model(self, ctx: RunContext) -> nn.Module:
        model = ctx.model
        if ctx.prep.state["channels_last"]:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return Autocast(model) if ctx.cfg.image.precision == "bf16" else model

    def callbacks(self, ctx: RunContext) -> list[Callback]:
        start = _FirstPhaseStart(ctx.prep.state["generator"], ctx.cfg.seed + 1)
        ctx.extras["clock"] = start
        return [start]

    def after_fit(self, ctx: RunContext) -> History:
        ic, history = ctx.cfg.image, ctx.history
        ctx.extras["finetune"] = {}
        if ic.finetune_epochs <= 0:
            return history
        # Unfreeze everything and continue with a lower learning rate (the classic two-phase transfer).
        freeze_backbone(ctx.model, False)
        ft_lr = ctx.trainer.learning_rate * ic.finetune_lr_factor
        val = ctx.prep.val if ctx.prep.val is not None and len(ctx.prep.val) > 0 else None
        tc = ctx.cfg.train.model_copy(
            update={"monitor": self.monitor(ctx), "schedule": self.schedule(ctx.cfg)}
        )
        callbacks = standard_callbacks(
            tc,
            val is not None,
            ctx.progress,
            plateau_divisor=self.plateau_divisor,
            plateau_default=self.plateau_default,
        )
        ft = ctx.make_trainer(epochs=ic.finetune_epochs, learning_rate=ft_lr, callbacks=callbacks)
        ft_hist = ft.fit(
            ctx.fitted,  # the fine-tuning phase trains the same wrapper
            ctx.loss_fn,
            ctx.prep.train,
            val,
            metrics_fn=self.metrics_fn(ctx),
        )
        offset = len(history)
        merged = History(
            [
                *history.records,
                *({**r, "epoch": r["epoch"] + offset, "phase": 2.0} for r in ft_hist.records),
            ]
        )
        merged.best_epoch = (
            (ft_hist.best_epoch + offset) if ft_hist.best_epoch else history.best_epoch
        )
        merged.stopped_epoch = ft_hist.stopped_epoch
        ctx.extras["finetune"] = {"epochs": len(ft_hist), "learning_rate": ft_lr}
        return merged

    def evaluate(self, ctx: RunContext) -> Evaluation:
        from dlpipe.pipeline._attribute import attribute_images
        from dlpipe.reports.images import image_extras

        train_seconds = time.perf_counter() - ctx.extras["clock"].started
        state, task, cfg, ic = ctx.prep.state, ctx.prep.task, ctx.cfg, ctx.cfg.image
        pre, x_train, y_train, x_test, y_test = (
            state[k] for k in ("preprocessor", "x_train", "y_train", "x_test", "y_test")
        )
        if state["channels_last"]:
            ctx.model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # the bundle's layout
        n_train = len(x_train)
        base_rows = (
            np.random.default_rng(cfg.seed).permutation(n_train)[:BASELINE_ROWS]
            if n_train > BASELINE_ROWS
            else np.arange(n_train)
        )
        x_base_train = baseline_features(pre.normalise(x_train[base_rows]))
        y_codes = y_train.reshape(-1).astype(np.int64)
        baselines = fit_baselines(
            task.kind,
            x_base_train,
            y_codes[base_rows],
            task.n_outputs if task.kind == "multiclass" else 2,
            cfg.seed,
        )
        eval_transform = image_transform(pre, flatten=state["flatten"])
        logits = (
            predict_logits(
                ctx.model, [torch.from_numpy(x_test)], transform=eval_transform, chunk=1024
            )
            .float()
            .cpu()
            .numpy()
        )
        # issue #20: a temperature fitted on the validation images (one more forward pass over them),
        # kept when it lowers their log loss; the bundle's task applies it (docs/trust.md)
        calibration = None
        val = ctx.prep.val
        if val is not None and len(val):
            val_logits = (
                predict_logits(ctx.model, list(val.inputs), transform=eval_transform, chunk=1024)
                .float()
                .cpu()
                .numpy()
            )
            calibration = calibration_record(
                val_logits,
                val.y.cpu().numpy().reshape(-1).astype(np.int64),
                logits,
                y_test.reshape(-1).astype(np.int64),
                enabled=not ctx.prep.evaluated_on_training_rows,
                reason="not fitted: the validation images are the training images"
                if ctx.prep.evaluated_on_training_rows
                else "",
            )
            task.temperature = float(calibration["temperature"])
        _, proba = task.decode(logits)
        assert proba is not None  # image tasks are classification
        x_base_test = baseline_features(pre.normalise(np.asarray(x_test)))
        test_scores = score(
            task.kind,
            y_test.reshape(-1).astype(np.int64),
            proba,
            x_base_test,
            baselines,
            task.classes,
            # images keep accuracy as their default; `metric` may choose another
            metric="accuracy" if cfg.data.metric == "auto" else cfg.data.metric,
        )

        c, h, w = ctx.ds.image_shape
        batch_size = ctx.trainer.batch_size
        steps_run = len(ctx.history) * math.ceil(n_train / batch_size)
        image = {
            "shape": [c, h, w],
            "storage": str(x_train.dtype),
            "channels_last": state["channels_last"],
            "precision": ic.precision,
            "augment": list(parse_augment(ic.augment)),
            "pretrained": ic.pretrained,
            "not_loaded": ctx.extras["not_loaded"],
            "freeze_backbone": ic.freeze_backbone,
            "finetune": ctx.extras["finetune"],
            "skipped_files": ctx.ds.meta.get("skipped", 0),
            "resized_files": ctx.ds.meta.get("resized", 0),
            "baseline_rows": int(len(base_rows)),
            "train_seconds": round(train_seconds, 3),
            "images_per_second": round(steps_run * batch_size / max(train_seconds, 1e-9), 1),
        }
        manifest = {
            "kind": "image",
            "task": task.to_dict(),
            "preprocessor": pre.state(),
            "baselines": baselines,
            "reference_statistics": {
                "channel_mean": pre.mean,
                "channel_std": pre.std,
                "image_size": [h, w],
            },
            "feature_names": ["image"],
        }
        # test predictions + a sample of test images, for the report
        extras = image_extras(
            x_test, y_test.reshape(-1).astype(np.int64), proba, task.classes or []
        )
        metrics: dict[str, Any] = {"image": image}
        if calibration is not None:
            metrics["calibration"] = calibration
        # issue #20: integrated-gradients saliency of a few test images across classes (the report's overlays)
        metrics["attributions"], saliency = attribute_images(
            ctx.model.inner if isinstance(ctx.model, Autocast) else ctx.model,
            x_test,
            y_test.reshape(-1).astype(np.int64),
            proba,
            eval_transform,
            temperature=task.temperature,
            seed=cfg.seed,
        )
        extras["files"].update(saliency)
        return Evaluation(test=test_scores, manifest=manifest, metrics=metrics, extras=extras)

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        spec, family = ctx.spec, _family(ctx.cfg)
        resolved["model"]["family"] = family
        if (
            family == "cnn"
        ):  # the model as built: the default CNN's own sizes, batch norm and dropout, not the MLP defaults
            resolved["model"].update(
                hidden=list(spec["dense"]),
                dropout=spec["dropout"],
                batch_norm=spec["batch_norm"],
                activation=spec["activation"],
            )
            resolved["image"].update(
                channels=list(spec["channels"]),
                padding="valid" if spec["padding"] in (0, "valid") else "same",
                kernel_size=spec["kernel_size"] if isinstance(spec["kernel_size"], int) else None,
            )
        elif family == "mlp":
            resolved["model"]["hidden"] = list(spec["hidden"])
        resolved["image"]["channels_last"] = ctx.prep.state["channels_last"]
