"""The recipe for labelled sequences (sequence classification).

Runs through :func:`~dlpipe.pipeline.recipe.run_recipe`: classes from the labels -> a stratified split
-> a sequence classifier -> scores beside majority, logistic and 1-NN Euclidean.

The default classifier is MiniRocket (:mod:`dlpipe.models.minirocket`): fixed random-convolution
features and a ridge head whose penalty is chosen by leave-one-out cross-validation, fitted in closed
form in one "epoch" by :class:`MiniRocketStep`. It needs no validation split, so every training case
(the whole official training file, or everything but the test share) fits it. The networks
(``model.family``: cnn1d, fcn, lstm, ...) stay as options. Given an official train/test pair they watch
a validation split carved from the training cases (early stopping with the best epoch's weights, the
plateau schedule) when it holds at least 50 cases; with fewer training cases every case trains under a
cosine decay to the last epoch (a handful of held-out cases decided early stopping by chance).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.data.sequences import SequenceDataset
from dlpipe.data.splits import split_indices
from dlpipe.evaluation.baselines import fit_baselines, verdict
from dlpipe.evaluation.calibration import calibration_record
from dlpipe.evaluation.metrics import classification_metrics
from dlpipe.evaluation.scoring import class_predictions, score
from dlpipe.models.registry import build_model
from dlpipe.pipeline._attribute import attribute_sequences
from dlpipe.pipeline._fit_series import SEQUENCE_FAMILIES, _record_model
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.training.steps import TrainStep
from dlpipe.training.trainer import TensorData, Trainer, predict_logits

__all__ = ["SequenceRecipe", "MiniRocketRecipe", "MiniRocketStep", "DEFAULT_SEQUENCE_MODEL"]

# Measured on GunPoint and ItalyPowerDemand (benchmarks/ucr_suite.py, docs/series.md): at least the
# networks' accuracy in about a second instead of minutes.
DEFAULT_SEQUENCE_MODEL = "minirocket"
CLASSIFIER_FAMILIES = ("minirocket", *SEQUENCE_FAMILIES)
# The validation share a network holds out of an official training file when none was asked for, and only
# when that share holds at least NETWORK_VAL_MIN_CASES cases (250 training cases); below, every case
# trains and a cosine schedule decays the learning rate to the last epoch, which is kept. Re-checked on
# UCR ArrowHead (36 training cases: a 7-case split stopped training at epochs 2-12, test accuracy 0.408
# against 0.857 with every case and the cosine schedule), BasicMotions and ItalyPowerDemand
# (docs/series.md, benchmarks/recheck_defaults_a.py split).
NETWORK_VAL_FRACTION = 0.2
NETWORK_VAL_MIN_CASES = 50


def time_ordered_split(
    n: int, val_fraction: float, test_fraction: float, *, gap: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows 0..n-1 in time order -> (train, val, test): the last ``test_fraction`` tests, the
    ``val_fraction`` before it validates; ``gap`` windows before each later split are dropped, so no
    training label reads a value the next split's windows end on.

    Example:
        >>> [len(p) for p in time_ordered_split(100, 0.2, 0.2, gap=1)]
        [58, 20, 20]
    """
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if n - n_test - n_val - (gap if n_val else 0) - (gap if n_test else 0) < 1:
        raise InvalidConfigError(
            f"{n} windows cannot be split into training, validation ({val_fraction:g}) and test ({test_fraction:g}) spans in time order; pass a longer series, a smaller `lookback`, or smaller `val_fraction`/`test_fraction`."
        )
    idx = np.arange(n)
    te = idx[n - n_test :] if n_test else idx[:0]
    rest = n - n_test - (gap if n_test else 0)
    va = idx[rest - n_val : rest] if n_val else idx[:0]
    tr = idx[: rest - n_val - (gap if n_val else 0)]
    return tr, va, te


def sequence_family(cfg: RunConfig) -> str:
    """The classifier family for sequences: as asked, or the default when the table default (mlp) is left."""
    family = cfg.model.family
    if family == "mlp":
        return DEFAULT_SEQUENCE_MODEL
    if family not in CLASSIFIER_FAMILIES:
        raise InvalidConfigError(
            f"model family {family!r} cannot classify sequences; choose one of {', '.join(CLASSIFIER_FAMILIES)}."
        )
    return family


class SequenceRecipe(Recipe):
    """A sequence classifier (default: MiniRocket) scored beside majority, logistic and 1-NN Euclidean."""

    kind = "sequence"

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        if sequence_family(cfg) == "minirocket":
            return _MINIROCKET
        return self

    def _val_fraction(self, cfg: RunConfig, official_test: bool, n: int) -> float:
        """The share of training cases watched while training: as asked; else with an official test set
        :data:`NETWORK_VAL_FRACTION` when it holds :data:`NETWORK_VAL_MIN_CASES` cases, none below (a
        handful of held-out cases decides early stopping by chance; :meth:`schedule` then decays the rate)."""
        if "val_fraction" in cfg.data.model_fields_set or not official_test:
            return cfg.data.val_fraction
        if round(n * NETWORK_VAL_FRACTION) < NETWORK_VAL_MIN_CASES:
            return 0.0
        return NETWORK_VAL_FRACTION

    def schedule(self, cfg: RunConfig, has_val: bool = True) -> str:
        """Without a validation split to watch, a cosine decay to the last epoch (the plateau schedule would
        watch nothing and keep the rate high to the end), unless the user named a schedule."""
        if not has_val and "schedule" not in cfg.train.model_fields_set:
            return "cosine"
        return super().schedule(cfg, has_val)

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
        family = sequence_family(cfg)
        n = len(ds.x)
        val_fraction = self._val_fraction(cfg, ds.test_x is not None, n)
        windows = ds.meta.get("windows")
        x_all = ds.x
        if windows is not None:
            # Windows of one series: split in time order (a shuffled split would test on windows that
            # overlap training ones), then scale with the training windows' statistics only.
            test_fraction = 0.0 if ds.test_x is not None else cfg.data.test_fraction
            gap = 1 if windows["label"]["mode"] == "direction" else 0
            tr, va, te = time_ordered_split(n, val_fraction, test_fraction, gap=gap)
            stats = ds.x[tr].reshape(-1, ds.channels).astype(np.float64)
            mean = stats.mean(0).astype(np.float32)
            std = stats.std(0).astype(np.float32)
            std = np.where(std > 1e-8, std, 1.0).astype(np.float32)
            x_all = ((ds.x - mean) / std).astype(np.float32)
            if ds.test_x is not None:
                x_te = ((ds.test_x - mean) / std).astype(np.float32)
                m_te = ds.test_mask
                assert m_te is not None and ds.test_labels is not None
                y_te = task.encode(pd.Series(ds.test_labels, dtype=object), what="test label")
                te_times = list(ds.meta.get("test_times", []))
            else:
                x_te, m_te, y_te = x_all[te], ds.mask[te], codes[te]
                te_times = [ds.meta["times"][i] for i in te]
            window_state = {
                "windows": {k: v for k, v in windows.items()},
                "mean": mean.tolist(),
                "std": std.tolist(),
                "test_times": te_times,
            }
        elif ds.test_x is not None:
            tr, va, _ = split_indices(
                n, val_fraction=val_fraction, test_fraction=0.0, seed=cfg.seed, stratify=strat
            )
            x_te, m_te = ds.test_x, ds.test_mask
            assert m_te is not None and ds.test_labels is not None
            y_te = task.encode(pd.Series(ds.test_labels, dtype=object), what="test label")
            window_state = None
        else:
            tr, va, te = split_indices(
                n,
                val_fraction=val_fraction,
                test_fraction=cfg.data.test_fraction,
                seed=cfg.seed,
                stratify=strat,
            )
            x_te, m_te, y_te = ds.x[te], ds.mask[te], codes[te]
            window_state = None

        def tensors(idx: np.ndarray) -> TensorData:
            return TensorData(
                (torch.from_numpy(x_all[idx]), torch.from_numpy(ds.mask[idx])),
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
            "x_train": x_all[tr],
            "windows": window_state,
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
        flat_tr = st["x_train"].reshape(len(tr), -1).astype(np.float64)
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
        y_true = st["y_te"].reshape(-1).astype(np.int64)
        more: dict[str, Any] = {}
        val = ctx.prep.val  # issue #20: a temperature from the validation cases (docs/trust.md)
        if val is not None and len(val):
            same = ctx.prep.evaluated_on_training_rows
            more["calibration"] = calibration_record(
                predict_logits(ctx.model, list(val.inputs)).float().cpu().numpy(),
                val.y.cpu().numpy().reshape(-1).astype(np.int64),
                logits,
                y_true,
                enabled=not same,
                reason="not fitted: the validation cases are the training cases" if same else "",
            )
            task.temperature = float(more["calibration"]["temperature"])
        _, proba = task.decode(logits)
        assert proba is not None and task.classes is not None
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
        preprocessor: dict[str, Any] = {
            "length": length,
            "channels": ds.channels,
            "znorm": ds.znorm,
        }
        if st.get("windows") is not None:
            ws = st["windows"]
            preprocessor.update(windows=ws["windows"], mean=ws["mean"], std=ws["std"])
            times = ws["test_times"]
            more["windows"] = {
                **{k: v for k, v in ws["windows"].items() if k != "inputs"},
                "inputs": list(ws["windows"]["inputs"]),
                "split": "time-ordered",
                "test_from": str(times[0]) if times else None,
                "test_to": str(times[-1]) if times else None,
            }
        # issue #20: attributions over the steps of a few test cases across classes (for the report)
        more["attributions"], step_files = attribute_sequences(
            ctx.model,
            x_te,
            m_te,
            y_true,
            proba,
            temperature=task.temperature,
            seed=seed,
            occlusion=st["family"] == "minirocket",  # its features count signs: no gradient
        )
        manifest = {
            "kind": "sequence",
            "task": task.to_dict(),
            "preprocessor": preprocessor,
            "baselines": baselines,
            "reference_statistics": {},
            "feature_names": ["x", "mask"],
        }
        return Evaluation(
            test=test_scores,
            manifest=manifest,
            metrics={
                **more,
                "test_samples": {
                    "index": samples,
                    "x": {k: x_te[v, :, 0].tolist() for k, v in samples.items()},
                },
            },
            extras={
                "predictions": class_predictions(y_true, proba, task.classes),  # ROC/PR curves
                "files": step_files,
            },
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


class MiniRocketStep(TrainStep):
    """Fits a :class:`~dlpipe.models.minirocket.MiniRocket` in closed form in the first epoch.

    ``on_fit_start`` keeps the whole training set; the first epoch's start draws the biases, computes
    the features once and fits the ridge head (penalty by leave-one-out) and its temperature. The
    steps then only report the fitted model's training loss, so the engine's loop, history, progress and records are those of
    any run. ``info`` keeps what the fit chose (``alpha``, ``temperature``, ``loo_accuracy``,
    ``fit_seconds``).
    """

    checkpoint_skip = ("info", "_loss", "_train")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.info: dict[str, float] = {}
        self._loss = torch.zeros(())
        self._train: TensorData | None = None

    def on_fit_start(self, trainer: Trainer, train: TensorData) -> None:
        self._train, self.info = train, {}

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        # Fitted in the first epoch (not in on_fit_start), so the epoch's time is the fit's.
        if self.info or self._train is None:
            return
        import time

        from dlpipe.models.minirocket import MiniRocket

        model = trainer.model
        assert isinstance(model, MiniRocket)
        x, mask = self._train.inputs
        t0 = time.perf_counter()
        info = model.fit(x, mask, self._train.y, seed=self.seed)
        info["fit_seconds"] = time.perf_counter() - t0
        self.info = info
        self._loss = torch.tensor(info["loss"], device=x.device)

    def __call__(
        self, trainer: Trainer, inputs: list[torch.Tensor], y: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return {"loss": self._loss}


class MiniRocketRecipe(SequenceRecipe):
    """MiniRocket on labelled sequences: features fixed at build, the head fitted in one closed-form step.

    One epoch of one batch (``auto``); no validation split (the ridge penalty is chosen by leave-one-out
    on the training cases, so every one of them fits it) and no learning rate to search.
    """

    auto_learning_rate = 1e-3  # never used: nothing descends a gradient

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        return self

    def check(self, ds: Any, cfg: RunConfig) -> None:
        if cfg.train.class_weight == "balanced":
            raise InvalidConfigError(
                "`class_weight: balanced` is not supported by the minirocket family (its ridge head weighs "
                "every case alike); drop it, or choose a network with `model.family` (cnn1d, fcn, lstm, ...)."
            )

    def _val_fraction(self, cfg: RunConfig, official_test: bool, n: int) -> float:
        return 0.0

    def schedule(self, cfg: RunConfig, has_val: bool = True) -> str:
        return Recipe.schedule(self, cfg, has_val)  # one closed-form step: no rate to decay

    def auto_batch_size(self, n_train: int) -> int:
        return max(1, n_train)

    def auto_epochs(self, n_train: int, batch_size: int) -> int:
        return 1

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        spec = {
            "family": "minirocket",
            "n_features": ctx.ds.channels,
            "length": ctx.ds.length,
            "n_outputs": ctx.prep.task.n_outputs,
            "num_features": 10_000,
            "max_dilations": 32,
            "hidden": None,
        }
        return build_model(spec), spec

    def step(self, ctx: RunContext) -> TrainStep | None:
        step = MiniRocketStep(ctx.cfg.seed)
        ctx.extras["minirocket_step"] = step
        return step

    def evaluate(self, ctx: RunContext) -> Evaluation:
        ev = super().evaluate(ctx)
        step = ctx.extras.get("minirocket_step")
        if step is not None and step.info:
            ev.metrics["minirocket"] = {
                "features": int(getattr(ctx.model, "n_out_features", 0)),
                **{k: float(v) for k, v in step.info.items() if k != "loss"},
            }
        return ev


_MINIROCKET = MiniRocketRecipe()
