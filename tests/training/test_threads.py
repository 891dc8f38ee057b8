"""The engine's thread count follows the 1-minute load average (one thread on a busy machine), so the
same seed could give other bits on a busier moment; `deterministic=True` pins it (issue #21).

The load average is the one thing faked here (``os.getloadavg``): it cannot be set on a shared machine
without loading it, and Python 3.11 has no setting for ``os.cpu_count`` (``PYTHON_CPU_COUNT`` is 3.13+).
Everything else is a real run.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dlpipe as dl
from dlpipe.training.trainer import TensorData, Trainer

IDLE, BUSY = 0.0, 64.0  # load averages below and above any core count


@pytest.fixture
def two_threads():
    """Two intra-op threads, as torch gives on this 2-core machine: the count an idle machine runs with."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _load(monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (value, value, value))


def _wide_model() -> nn.Module:
    # ~74k parameters x 128 rows: above the engine's one-thread size (2e7 multiply-adds a step)
    return nn.Sequential(
        nn.Linear(32, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU()
    )


def test_the_load_average_changes_the_engines_thread_count(monkeypatch, two_threads):
    x = torch.randn(256, 32)
    picked = {}
    for load in (IDLE, BUSY):
        _load(monkeypatch, load)
        trainer = Trainer(epochs=1, batch_size=128, device="cpu")
        trainer.fit(_wide_model(), F.mse_loss, TensorData((x,), torch.randn(256, 256)))
        picked[load] = trainer.threads_used
    assert picked == {IDLE: 2, BUSY: 1}


@pytest.mark.slow
def test_deterministic_runs_use_one_thread_and_the_same_bits_whatever_the_load(
    monkeypatch, two_threads
):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)  # small: the tree baselines are quick
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["y"] = x[:, :4].sum(axis=1) + 0.1 * rng.normal(size=200)
    runs = {}
    for load in (IDLE, BUSY):
        _load(monkeypatch, load)
        # batch norm: its reductions split across 2 threads sum in another order (measured on this
        # frame: 12 of 16 weight tensors differ, by up to 2.8e-3, after 2 epochs at 1 vs 2 threads)
        runs[load] = dl.train(
            frame,
            "y",
            model={"hidden": [256, 256], "batch_norm": True},
            batch_size=64,  # ~69k parameters x 64 rows: above the one-thread size
            epochs=2,
            learning_rate=1e-3,
            deterministic=True,
            save=False,
            report=False,
            progress="quiet",
        )
    threads = {load: run.metrics["environment"]["torch_threads"] for load, run in runs.items()}
    assert threads == {IDLE: 1, BUSY: 1}
    idle, busy = (runs[load].bundle.model.state_dict() for load in (IDLE, BUSY))
    assert idle.keys() == busy.keys()
    differ = [k for k in idle if not torch.equal(idle[k], busy[k])]
    assert not differ, f"weights differ between an idle and a busy machine: {differ}"
    assert runs[IDLE].metrics["test"]["model"] == runs[BUSY].metrics["test"]["model"]
