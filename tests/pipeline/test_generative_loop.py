"""Generative runs train in the engine's one loop: a GAN run gets the run's callbacks, checkpoints,
progress and `--resume`; autoencoders get momentum/nesterov from the config (issue #16, item 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.core.errors import InvalidConfigError
from dlpipe.data.arrays import ArrayDataset, load_digits_images
from dlpipe.training import Callback
from dlpipe.training.checkpoint import CHECKPOINT_FILE, read_checkpoint

QUIET = {"progress": "quiet"}
DLPIPE = str(Path(sys.executable).with_name("dlpipe"))


@pytest.fixture(scope="module")
def digits_small():
    ds = load_digits_images()
    return ArrayDataset(ds.x[:200], ds.y[:200], name="digits200")


class _Spy(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.logs: list[dict[str, float]] = []
        self.checkpoint = None

    def on_fit_start(self, trainer):
        self.calls.append("fit_start")

    def on_epoch_end(self, trainer, epoch, logs):
        self.calls.append(f"epoch {epoch}")
        self.logs.append(dict(logs))

    def on_fit_end(self, trainer, logs):
        self.calls.append("fit_end")
        partial = Path("runs/g.partial")
        if (partial / CHECKPOINT_FILE).is_file():
            self.checkpoint = read_checkpoint(partial, tensors=False)[1]


def test_a_callback_receives_every_epoch_of_a_gan_run_with_its_losses(digits_small):
    spy = _Spy()
    run = dl.train(
        digits_small,
        task="generate",
        model={"family": "gan", "latent": 4},
        epochs=2,
        save=False,
        callbacks=[spy],
        **QUIET,
    )
    assert spy.calls == ["fit_start", "epoch 1", "epoch 2", "fit_end"]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "loss", "lr"} <= set(spy.logs[0])
    assert [r["g_loss"] for r in run.history.records] == [log["g_loss"] for log in spy.logs]


def test_a_gan_run_with_checkpoint_writes_one_and_removes_it_once_saved(digits_small):
    spy = _Spy()
    run = dl.train(
        digits_small,
        task="generate",
        model={"family": "gan", "latent": 4},
        epochs=2,
        out="runs/g",
        checkpoint=True,
        callbacks=[spy],
        **QUIET,
    )
    assert spy.checkpoint is not None, "no checkpoint was written during the GAN run"
    assert (
        spy.checkpoint["epoch"] == 2
        and spy.checkpoint["finished"]
        and len(spy.checkpoint["history"]) == 2
    )
    assert run.path is not None and (run.path / "bundle" / "weights.safetensors").is_file()
    assert not Path("runs/g.partial").exists()


def test_a_gan_run_shows_progress(digits_small, capsys):
    dl.train(
        digits_small,
        task="generate",
        model={"family": "gan", "latent": 4},
        epochs=2,
        save=False,
        progress="plain",
    )
    err = capsys.readouterr().err
    assert "epoch 1/2  d_loss " in err and "g_loss " in err and "trained 2 epochs in" in err


def test_an_autoencoder_uses_the_configured_momentum_and_nesterov():
    frame = dl.datasets.load("breast_cancer").frame.head(120)
    args = {
        "task": "reconstruction",
        "model": {"family": "autoencoder", "latent": 4},
        "epochs": 2,
        "save": False,
        "optimizer": "sgd",
        **QUIET,
    }
    slow = dl.train(frame, "target", momentum=0.0, **args).history.records[-1]["loss"]
    fast = dl.train(frame, "target", momentum=0.9, **args).history.records[-1]["loss"]
    assert slow != fast  # the momentum reaches the optimiser
    with pytest.raises(
        InvalidConfigError, match="`nesterov=True` needs optimizer='sgd' with `momentum` > 0"
    ):
        dl.train(frame, "target", **{**args, "optimizer": "adamw"}, nesterov=True)


def _weights(bundle: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(bundle / "weights.safetensors"))


ARGS = [
    "--task",
    "generate",
    "--model",
    "gan",
    "--epochs",
    "8",  # killed once epoch 2 is checkpointed: 6 more epochs leave it time to be
    "--batch-size",
    "32",
    "--seed",
    "7",
    "--quiet",
    "--no-report",
]


@pytest.mark.service
@pytest.mark.slow
def test_kill_9_a_gan_run_then_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    ds = load_digits_images()
    np.savez(tmp_path / "d.npz", x=(ds.x[:800] * 255).astype(np.uint8), y=ds.y[:800])
    log = open(tmp_path / "stderr.txt", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [DLPIPE, "train", "d.npz", *ARGS, "-o", "runs/crash"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    partial = tmp_path / "runs" / "crash.partial"
    killed_at = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (partial / CHECKPOINT_FILE).is_file():
                epoch = read_checkpoint(partial, tensors=False)[1][
                    "epoch"
                ]  # never half a file (atomic rename)
                if epoch >= 2:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_at = epoch
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(timeout=30)
        log.close()
    assert killed_at is not None, (
        f"the GAN run finished or failed before it could be killed: {(tmp_path / 'stderr.txt').read_text()[-500:]}"
    )
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "runs" / "crash").exists()
    state = read_checkpoint(partial)[1]
    assert 2 <= state["epoch"] < 8 and not state["finished"]

    # the resumed and the uninterrupted runs go through the same CLI in this process (as in
    # tests/training/test_checkpoint.py): two fewer interpreters to start
    monkeypatch.chdir(tmp_path)
    assert main(["train", "d.npz", *ARGS, "--resume", "runs/crash.partial"]) == 0
    assert main(["train", "d.npz", *ARGS, "-o", "runs/whole", "--no-checkpoint"]) == 0
    assert not partial.exists()
    a, b = (
        _weights(tmp_path / "runs" / "crash" / "bundle"),
        _weights(tmp_path / "runs" / "whole" / "bundle"),
    )
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.equal(a[k], b[k]), k
    history = (tmp_path / "runs" / "crash" / "history.csv").read_text().splitlines()
    assert (
        len(history) == 9
        and history[1:]
        and (tmp_path / "runs" / "crash" / "plots" / "samples_epoch_0001.png").is_file()
    )


class _Crash(Callback):
    checkpoint_state = False  # a test device, not part of the training state

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt  # before this epoch's checkpoint (the checkpoint runs last): resumes from epoch 1


def test_a_resumed_vae_run_keeps_the_sample_grids_of_the_epochs_before_the_crash(digits_small):
    args = {"task": "generate", "model": {"family": "vae", "latent": 2}, "epochs": 3, **QUIET}
    with pytest.raises(KeyboardInterrupt):
        dl.train(digits_small, out="runs/v", checkpoint=True, callbacks=[_Crash()], **args)
    assert read_checkpoint("runs/v.partial", tensors=False)[1]["epoch"] == 1
    resumed = dl.train(digits_small, resume="runs/v.partial", callbacks=[], **args)
    whole = dl.train(digits_small, save=False, **args)
    assert [k for k in resumed.extras["files"] if k.startswith("plots/samples_epoch")] == [
        "plots/samples_epoch_0001.png",
        "plots/samples_epoch_0002.png",
        "plots/samples_epoch_0003.png",
    ]
    for (k, a), (_, b) in zip(
        resumed.bundle.model.state_dict().items(), whole.bundle.model.state_dict().items()
    ):
        assert torch.equal(a, b), k
