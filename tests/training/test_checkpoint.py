"""Crash-safe training: a resumed fit ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.training import Callback, EarlyStopping, ReduceLROnPlateau, TensorData, Trainer
from dlpipe.training.checkpoint import CHECKPOINT_FILE, Checkpoint, find_checkpoint, read_checkpoint


class _Crash(Callback):
    checkpoint_state = False  # a test device, not part of the training state

    def __init__(self, at: int) -> None:
        self.at = at

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.at:
            raise KeyboardInterrupt  # after the checkpoint of this epoch (the checkpoint runs first)


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, :1] - x[:, 1:2] > 0).float()
    return TensorData((x[:160],), y[:160]), TensorData((x[160:],), y[160:])


def _fit(directory: Path, *, resume: bool, crash_at: int | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    callbacks = [EarlyStopping(patience=50), ReduceLROnPlateau(patience=2)]
    ckpt = Checkpoint(directory, {"config": {"a": 1}}, resume=resume)
    callbacks.append(ckpt)
    if crash_at is not None:
        callbacks.append(_Crash(crash_at))
    trainer = Trainer(epochs=12, batch_size=16, seed=3, device="cpu", callbacks=callbacks)
    train, val = _data()
    trainer.fit(model, nn.functional.binary_cross_entropy_with_logits, train, val)
    return model


def test_resume_after_a_crash_gives_the_same_weights(tmp_path):
    whole = _fit(tmp_path / "whole", resume=False)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "crashed", resume=False, crash_at=5)
    _, state = read_checkpoint(tmp_path / "crashed")
    assert state["epoch"] == 5 and not state["finished"]
    resumed = _fit(tmp_path / "crashed", resume=True)
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k


def test_resume_refuses_another_config(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "c", resume=False, crash_at=2)
    model = nn.Linear(6, 1)
    trainer = Trainer(
        epochs=3,
        batch_size=16,
        device="cpu",
        callbacks=[Checkpoint(tmp_path / "c", {"config": {"a": 2}}, resume=True)],
    )
    train, _ = _data()
    with pytest.raises(
        InvalidConfigError, match=r"another config or data \(`config.a` was 1, now 2\)"
    ):
        trainer.fit(model, nn.functional.binary_cross_entropy_with_logits, train)


def test_find_checkpoint_messages(tmp_path):
    with pytest.raises(InvalidConfigError, match="no checkpoint was found"):
        find_checkpoint(tmp_path / "nothing")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "metrics.json").write_text("{}")
    with pytest.raises(InvalidConfigError, match="finished run folder; there is nothing to resume"):
        find_checkpoint(tmp_path / "done")


def _table(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["c"] = rng.choice(["a", "b", "c"], n)
    frame["y"] = np.where(x[:, 0] - x[:, 1] + 0.5 * rng.normal(size=n) > 0, "yes", "no")
    return frame


def _weights(bundle: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(bundle / "weights.safetensors"))


ARGS = [
    "--target",
    "y",
    "--epochs",
    "12",  # the run is killed once epoch 3 is checkpointed; 9 more epochs leave it time to be
    "--batch-size",
    "16",
    "--hidden",
    "32,32",
    "--dropout",
    "0.2",
    "--patience",
    "100",
    "--seed",
    "7",
    "--quiet",
]


@pytest.mark.service
@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    from dlpipe.cli import main

    _table(2000).to_csv(tmp_path / "data.csv", index=False)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(tmp_path / "stderr.txt", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlpipe", "train", "data.csv", *ARGS, "-o", "runs/crash"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    partial = tmp_path / "runs" / "crash.partial"
    killed_at = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (partial / CHECKPOINT_FILE).is_file():
                try:
                    epoch = read_checkpoint(partial)[1]["epoch"]
                except Exception:  # noqa: BLE001 - never half a file (atomic rename), but be patient
                    epoch = 0
                if epoch >= 3:
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
        f"the training finished or failed before it could be killed: {(tmp_path / 'stderr.txt').read_text()[-500:]}"
    )
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "runs" / "crash").exists()
    state = read_checkpoint(partial)[1]
    assert 3 <= state["epoch"] < 12 and not state["finished"]

    monkeypatch.chdir(tmp_path)
    assert main(["train", "data.csv", *ARGS, "--resume", "runs/crash.partial"]) == 0
    assert main(["train", "data.csv", *ARGS, "-o", "runs/whole", "--no-checkpoint"]) == 0
    assert not partial.exists()
    a, b = (
        _weights(tmp_path / "runs" / "crash" / "bundle"),
        _weights(tmp_path / "runs" / "whole" / "bundle"),
    )
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_cli_resume_errors(tmp_path, capsys, monkeypatch):
    from dlpipe.cli import main

    _table(200).to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)  # restored after the test
    (tmp_path / "runs" / "done" / "bundle").mkdir(parents=True)
    (tmp_path / "runs" / "done" / "metrics.json").write_text("{}")
    assert (
        main(
            [
                "train",
                "data.csv",
                "--target",
                "y",
                "--epochs",
                "2",
                "--resume",
                "runs/done",
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ")
        and "finished run folder; there is nothing to resume" in err
        and "Traceback" not in err
    )


def test_a_checkpoint_of_the_last_epoch_resumes_to_the_same_end(tmp_path):
    # a crash after the last epoch but before the run folder was written: resuming runs no epoch
    whole = _fit(tmp_path / "w", resume=False)
    assert read_checkpoint(tmp_path / "w")[1]["finished"]
    again = _fit(tmp_path / "w", resume=True)
    for (k, a), (_, b) in zip(whole.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
