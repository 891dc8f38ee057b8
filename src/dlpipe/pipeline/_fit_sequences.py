"""The recipe for labelled sequences (sequence classification).

Runs through :func:`~dlpipe.pipeline.recipe.run_recipe`: classes from the labels -> a stratified split
(or every case, with an official test set) -> a sequence classifier -> scores beside majority,
logistic and 1-NN Euclidean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.data.sequences import SequenceDataset
from dlpipe.data.splits import split_indices
from dlpipe.evaluation.baselines import fit_baselines, verdict
from dlpipe.evaluation.metrics import classification_metrics
from dlpipe.evaluation.scoring import class_predictions, score
from dlpipe.models.registry import build_model
from dlpipe.pipeline._fit_series import _family, _record_model
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.training.trainer import TensorData, predict_logits

__all__ = ["SequenceRecipe", "DEFAULT_SEQUENCE_MODEL"]

DEFAULT_SEQUENCE_MODEL = "cnn1d"


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
