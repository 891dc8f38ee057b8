"""The image recipe on the one run path: the range test for `learning_rate: auto`, config.yaml as built."""

import json

import numpy as np
import pytest
import torch
import yaml

import dlpipe as dl
from dlpipe.data.images import ImageDataset
from dlpipe.models.cnn import default_cnn_spec
from dlpipe.models.registry import build_model

TINY = dict(
    channels=[4, 8],
    model={"family": "cnn", "hidden": [16]},
    epochs=2,
    batch_size=16,
    threads=1,
    progress="quiet",
    schedule="plateau",  # a constant rate within an epoch: the records show the rate chosen
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return ImageDataset(
        (d.images[:64, None] * 15).astype(np.uint8), d.target[:64] % 2, name="digits64"
    )


def test_learning_rate_auto_runs_the_range_test_and_records_the_rate(digits, tmp_path):
    run = dl.train(digits, learning_rate="auto", out=tmp_path / "r", report=False, **TINY)
    chosen = run.extras["lr_finder"]["chosen"]
    assert 1e-6 <= chosen < 1.0 and chosen != 1e-3  # found, not the default
    assert run.config["train"]["learning_rate"] == chosen and run.history.records[0][
        "lr"
    ] == pytest.approx(chosen)
    assert (
        yaml.safe_load((run.path / "config.yaml").read_text())["train"]["learning_rate"] == chosen
    )
    lines = (run.path / "lr_finder.csv").read_text().splitlines()
    assert lines[0] == "lr,loss" and len(lines) > 10
    assert json.loads((run.path / "metrics.json").read_text())["image"]["channels_last"] is True


def test_learning_rate_auto_with_augmentation_reruns_from_its_config(digits):
    # The range test draws crops from the augmentation generator: training must still draw what a rerun
    # with the chosen rate (config.yaml) draws.
    run = dl.train(digits, learning_rate="auto", augment="crop", save=False, **TINY)
    again = dl.train(
        digits,
        learning_rate=run.config["train"]["learning_rate"],
        augment="crop",
        save=False,
        **TINY,
    )
    assert [r["loss"] for r in run.history.records] == [r["loss"] for r in again.history.records]


def test_finetuning_phase_uses_the_found_rate(digits, tmp_path):
    torch.manual_seed(3)
    spec = {**default_cnn_spec(1, (8, 8), 10), "channels": [4, 8], "dense": [16]}
    torch.save(
        build_model(spec).state_dict(), tmp_path / "w.pth"
    )  # a 10-class head: kept new for 2 classes
    run = dl.train(
        digits,
        learning_rate="auto",
        pretrained=str(tmp_path / "w.pth"),
        freeze_backbone=True,
        finetune_epochs=1,
        finetune_lr_factor=0.5,
        save=False,
        **TINY,
    )
    chosen = run.config["train"]["learning_rate"]
    assert run.extras["lr_finder"]["chosen"] == chosen
    assert run.metrics["image"]["finetune"] == {"epochs": 1, "learning_rate": chosen * 0.5}
    assert run.metrics["image"]["not_loaded"] and all(
        k.startswith("classifier.") for k in run.metrics["image"]["not_loaded"]
    )
    assert [r.get("phase") for r in run.history.records] == [None, None, 2.0]
    assert run.history.records[-1]["lr"] == pytest.approx(chosen * 0.5)


def test_pretrained_weights_load_into_the_default_cnn_without_naming_it(digits, tmp_path):
    torch.manual_seed(3)
    torch.save(
        build_model(default_cnn_spec(1, (8, 8), 10)).state_dict(), tmp_path / "w.pth"
    )  # a 10-class head: kept new
    run = dl.train(
        digits,
        pretrained=str(tmp_path / "w.pth"),
        epochs=1,
        threads=1,
        progress="quiet",
        save=False,
    )
    assert run.config["model"]["family"] == "cnn"
    assert run.metrics["image"]["not_loaded"] and all(
        k.startswith("classifier.") for k in run.metrics["image"]["not_loaded"]
    )
    with pytest.raises(ValueError, match="`pretrained` weights load into a cnn or resnet model"):
        dl.train(
            digits,
            model={"family": "mlp"},
            pretrained=str(tmp_path / "w.pth"),
            progress="quiet",
            save=False,
        )


def test_auto_image_epochs_is_one_cycle_of_about_1500_steps():
    from dlpipe.pipeline._fit_images import auto_image_epochs

    assert auto_image_epochs(48_000, 128) == 4  # MNIST's training split at the auto batch size
    assert auto_image_epochs(1_078, 32) == 45  # sklearn's digits (0.6 of 1,797)
    assert auto_image_epochs(80, 32) == 60 and auto_image_epochs(1_000_000, 256) == 4


def test_config_yaml_records_the_default_cnn_as_built(digits, tmp_path):
    run = dl.train(digits, epochs=1, threads=1, progress="quiet", out=tmp_path / "r", report=False)
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    assert (
        config["model"]["family"] == "cnn" and config["model"]["batch_norm"] is True
    )  # the default CNN's, not the MLP default
    assert config["model"]["hidden"] == [128] and config["model"]["dropout"] == 0.25
    assert (
        config["image"]["channels"] == [32, 64]
        and config["image"]["kernel_size"] == 3
        and config["image"]["padding"] == "same"
    )
    assert config["image"]["channels_last"] is True
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in run.bundle.model.modules())
    # the image defaults: one-cycle to 3e-3 unless the user names a schedule or a rate
    assert config["train"]["schedule"] == "onecycle" and config["train"]["learning_rate"] == 3e-3
    assert run.bundle.manifest["model_spec"]["norm_after_pool"] is True
    plain = dl.train(
        digits,
        epochs=1,
        batch_norm=False,
        schedule="plateau",
        threads=1,
        progress="quiet",
        save=False,
    )
    assert plain.config["train"]["schedule"] == "plateau"
    assert plain.config["model"]["batch_norm"] is False
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.bundle.model.modules())
