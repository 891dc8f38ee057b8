"""Autoencoders, VAEs and GANs on the one run path: ``learning_rate: auto`` runs the range test for one
loss (autoencoder, VAE) and means DCGAN's 2e-4 for a GAN; the run record of a generative run."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import dlpipe as dl
from dlpipe.core.config import build_config
from dlpipe.data.tabular import TabularDataset
from dlpipe.pipeline.recipe import recipe_for
from dlpipe.pipeline.settings import resolve_settings

QUIET = {"progress": "quiet"}


def _table(n=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 2))
    return pd.DataFrame(
        np.hstack([base, base @ rng.normal(size=(2, 4))]), columns=[f"f{i}" for i in range(6)]
    )


def test_autoencoder_learning_rate_auto_runs_the_range_test_and_records_the_rate():
    run = dl.train(
        _table(),
        task="reconstruction",
        model={"family": "autoencoder", "latent": 2},
        epochs=1,
        learning_rate="auto",
        out="ae",
        **QUIET,
    )
    chosen = run.extras["lr_finder"]["chosen"]
    assert chosen != 1e-3 and 1e-6 <= chosen <= 1.0  # auto used to mean 1e-3 without a test
    assert run.config["train"]["learning_rate"] == chosen == run.history.records[0]["lr"]
    assert yaml.safe_load(Path("ae/config.yaml").read_text())["train"][
        "learning_rate"
    ] == pytest.approx(chosen)
    curve = Path("ae/lr_finder.csv").read_text().splitlines()
    assert len(curve) > 10
    assert {"device", "torch", "dlpipe", "seed"} <= set(
        run.metrics["environment"]
    )  # the common environment record


@pytest.mark.slow
def test_vae_learning_rate_auto_runs_the_range_test_on_the_elbo():
    run = dl.train(
        _table(),
        task="generate",
        model={"family": "vae", "latent": 2, "hidden": [8]},
        epochs=1,
        learning_rate="auto",
        save=False,
        **QUIET,
    )
    assert run.config["train"]["learning_rate"] == run.extras["lr_finder"]["chosen"]
    assert {"val_elbo", "kl_weight"} <= set(run.history.records[0])


def test_gan_learning_rate_auto_is_dcgans_without_a_range_test():
    frame = _table()
    cfg = build_config(
        {"data": {"task": "generate"}, "model": {"family": "gan"}, "learning_rate": "auto"}
    )
    recipe = recipe_for(TabularDataset(frame, None, name="t"), cfg)
    settings = resolve_settings(cfg, recipe, 64)
    assert (
        settings.learning_rate,
        settings.find_learning_rate,
        settings.batch_size,
        settings.epochs,
    ) == (2e-4, False, 64, 100)
    run = dl.train(
        frame,
        task="generate",
        model={"family": "gan", "latent": 2, "hidden": [8]},
        epochs=1,
        learning_rate="auto",
        save=False,
        **QUIET,
    )
    assert run.config["train"]["learning_rate"] == 2e-4 == run.history.records[0]["lr"]
    assert "lr_finder" not in run.extras
    assert run.metrics["model_family"] == "gan" and {"d_loss", "g_loss"} <= set(
        run.history.records[0]
    )
