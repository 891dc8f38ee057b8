"""The table recipe: rows and columns to an MLP (imports torch; the CLI loads it lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.data.tabular import TabularDataset
from dlpipe.models.mlp import default_hidden, default_members, embedding_dim
from dlpipe.models.registry import build_model
from dlpipe.pipeline._table_eval import evaluate_table
from dlpipe.pipeline.recipe import Evaluation, Prepared, Recipe, RunContext
from dlpipe.pipeline.train import prepare_table
from dlpipe.tasks.generative import is_generative_task
from dlpipe.training.trainer import TensorData

__all__ = ["TableRecipe"]

# The default table model's choices beyond ModelConfig (issue #17, benchmarks/RESULTS.md): the
# RealMLP-style numeric input layer ("robust_clip"), 3 x 256 layers and piecewise-linear encodings
# ("bins") were measured with benchmarks/tabular_suite.py and are not the default: they lowered
# breast_cancer (tests/pipeline/test_acceptance.py) and make_classification accuracy. Set these
# (and "hidden") here to try them. The ensemble (`members`) is a config key.
TABLE_MODEL_DEFAULTS: dict[str, Any] = {"numeric_input": "none", "bins": 0}


def _tensors(split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> TensorData:
    x_num, x_cat, y = split
    inputs = (torch.from_numpy(x_num),) + ((torch.from_numpy(x_cat),) if x_cat.shape[1] else ())
    return TensorData(inputs, torch.from_numpy(y))


class TableRecipe(Recipe):
    """Schema and task from the data, a preprocessor fitted on the training rows, an MLP with embeddings for
    wide categories, scored beside the majority/mean, logistic/ridge, HistGradientBoosting and a random forest."""

    kind = "table"

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        if is_generative_task(cfg.data.task):  # autoencoders, VAEs, GANs on tables
            from dlpipe.pipeline._fit_generative import GenerativeRecipe

            return GenerativeRecipe()
        return self

    def prepare(self, ds: TabularDataset, cfg: RunConfig) -> Prepared:
        prep = prepare_table(ds, cfg)
        splits = prep["splits"]
        return Prepared(
            task=prep["task"],
            train=_tensors(splits["train"]),
            val=_tensors(splits["val"]),
            rows=prep["split_rows"],
            evaluated_on_training_rows=prep["same_rows"],
            state=prep,
        )

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        pre, mc = ctx.prep.state["preprocessor"], ctx.cfg.model
        cards = pre.cardinalities
        spec = {
            "family": mc.family,
            "n_numeric": pre.n_numeric,
            "n_outputs": ctx.prep.task.n_outputs,
            "hidden": list(mc.hidden) if mc.hidden else self.default_hidden(ctx.prep.rows["train"]),
            "activation": mc.activation,
            "dropout": mc.dropout,
            "batch_norm": mc.batch_norm,
            "cardinalities": cards,
            "embedding_dims": [mc.embedding_dim or embedding_dim(k) for k in cards],
        }
        members = (
            mc.members
            if mc.members != "auto"
            else default_members(ctx.prep.rows["train"], ctx.prep.task.kind)
        )
        if mc.family == "mlp":  # checked by build_model (1 to 256)
            spec["members"] = members
            spec["average"] = {"binary": "sigmoid", "multiclass": "softmax"}.get(
                ctx.prep.task.kind, "mean"
            )
        if mc.family == "mlp" and TABLE_MODEL_DEFAULTS["numeric_input"] != "none":
            spec["numeric_input"] = TABLE_MODEL_DEFAULTS["numeric_input"]
            if TABLE_MODEL_DEFAULTS.get("bins"):
                spec["bins"] = TABLE_MODEL_DEFAULTS["bins"]
        model = build_model(spec)
        # the input layer's statistics come from the training rows only and are saved with the weights
        numeric_input = getattr(model, "numeric_input", None)
        if numeric_input is not None:
            numeric_input.fit(ctx.prep.train.inputs[0])
        return model, spec

    def default_hidden(self, n_train: int) -> list[int]:
        """Hidden sizes when the config gives none."""
        fixed = TABLE_MODEL_DEFAULTS.get("hidden")
        return list(fixed) if fixed else default_hidden(n_train)

    def evaluate(self, ctx: RunContext) -> Evaluation:
        return evaluate_table(ctx)  # beside majority/mean, logistic/ridge and two tree ensembles

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        resolved["model"]["hidden"] = ctx.spec["hidden"]
        if ctx.spec["family"] == "mlp":
            resolved["model"]["members"] = ctx.spec.get("members", 1)
