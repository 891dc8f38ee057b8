"""A tuning trial runs the table recipe's path: the model `dlpipe train` builds, its settings, its engine."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import dlpipe as dl
from dlpipe.core.config import RunConfig, build_config
from dlpipe.pipeline._fit import TableRecipe
from dlpipe.pipeline.recipe import Prepared, RunContext
from dlpipe.pipeline.train import resolve_dataset
from dlpipe.tuning.study import _trial_config
from dlpipe.tuning.trial import train_trial, trial_model


def _study_data(name: str, **flags: Any) -> tuple[Any, RunConfig, Prepared]:
    """The data set, config and prepared split as dlpipe.tuning.tune makes them."""
    cfg = build_config({}, {"seed": 0, **flags})
    ds = resolve_dataset(name, cfg)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"target": ds.target})})
    return ds, cfg, TableRecipe().prepare(ds, cfg)


@pytest.mark.parametrize(
    ("flags", "params"),
    [
        ({}, {}),
        (
            {},
            {
                "hidden": [48, 16],
                "dropout": 0.3,
                "activation": "gelu",
                "batch_norm": True,
                "learning_rate": 0.01,
            },
        ),
        (
            {"model": {"hidden": [24]}},
            {"hidden": [], "dropout": 0},
        ),  # n_layers 0: the config's sizes, in the trial and the retrain
    ],
)
def test_a_trials_model_is_the_one_the_table_recipe_builds_from_its_config(flags, params):
    _ds, cfg, prepared = _study_data("wine", **flags)
    model, spec = trial_model(cfg, prepared, params)
    # what `dlpipe train` builds from the config the study retrains this trial with
    run_cfg = build_config(_trial_config(cfg, params))
    torch.manual_seed(run_cfg.seed)  # as run_recipe seeds before build
    expected, expected_spec = TableRecipe().build(
        RunContext(ds=None, cfg=run_cfg, progress="quiet", prep=prepared)
    )
    assert spec == expected_spec
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in expected.parameters()
    )
    assert repr(model) == repr(expected)
    for (name, a), (_, b) in zip(model.state_dict().items(), expected.state_dict().items()):
        assert torch.equal(a, b), name  # the same initial weights


@pytest.mark.slow  # trains twice (a trial, then dl.train) and runs the range test twice
def test_a_trial_with_auto_learning_rate_trains_as_dlpipe_train_does():
    import optuna

    ds, cfg, prepared = _study_data("iris", learning_rate="auto", epochs=3)
    params = {
        "hidden": [32, 16],
        "dropout": 0.2,
        "batch_size": 16,
        "optimizer": "sgd",
        "momentum": 0.8,
        "weight_decay": 1e-3,
    }
    trial = optuna.trial.FixedTrial({})
    val_loss, _score, epochs = train_trial(trial, cfg, prepared, params)
    # `learning_rate: auto` is the range test for a table (pipeline/settings.py), not a fixed fallback rate
    assert "learning_rate" in trial.user_attrs, (
        "the trial did not run the range test for `learning_rate: auto`"
    )
    run = dl.train(
        ds, config=_trial_config(cfg, params), save=False, report=False, progress="quiet"
    )
    assert trial.user_attrs["learning_rate"] == pytest.approx(
        run.config["train"]["learning_rate"], rel=1e-12
    )
    assert run.config["train"]["batch_size"] == 16 and run.config["train"]["epochs"] == 3
    # the same network, settings and engine: the same training, epoch for epoch
    assert epochs == len(run.history)
    assert val_loss == pytest.approx(min(r["val_loss"] for r in run.history.records), rel=1e-5)
