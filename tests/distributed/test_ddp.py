"""Multi-process training through torch's elastic launcher (real processes, gloo on CPU)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.training import TensorData, Trainer
from dlpipe.training.trainer import _local_rows

DLPIPE = [sys.executable, "-m", "dlpipe"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _table(path: Path, n: int = 640) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    frame["y"] = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    frame.to_csv(path, index=False)
    return path


def test_local_rows_split_a_batch_exactly():
    rows = [_local_rows(10, 15, 2, r) for r in range(2)]
    assert rows == [(10, 13, 0.6), (13, 15, 0.4)]
    assert _local_rows(0, 32, 1, 0) == (0, 32, 1.0)


@pytest.mark.service
@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    data = _table(tmp_path / "d.csv")
    common = [
        "train",
        str(data),
        "-t",
        "y",
        "--epochs",
        "4",
        "--dropout",
        "0",
        "-q",
        "--no-checkpoint",
    ]
    # the one-process reference runs the same CLI in this process: one interpreter fewer to start
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    two = subprocess.run(
        [
            *DLPIPE,
            *common,
            "--out",
            str(tmp_path / "two"),
            "--nproc",
            "2",
            "--master-port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr
    a = load_file(str(tmp_path / "one" / "bundle" / "weights.safetensors"))
    b = load_file(str(tmp_path / "two" / "bundle" / "weights.safetensors"))
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff <= 1e-5, diff
    frame = pd.read_csv(data).drop(columns="y")
    p1 = dl.load_bundle(tmp_path / "one" / "bundle").predict(frame)["prediction"]
    p2 = dl.load_bundle(tmp_path / "two" / "bundle").predict(frame)["prediction"]
    assert (p1 == p2).all()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


@pytest.mark.service
@pytest.mark.slow
def test_killed_rank_ends_the_job_cleanly(tmp_path):
    data = _table(tmp_path / "d.csv", n=4000)
    proc = subprocess.Popen(
        [
            *DLPIPE,
            "train",
            str(data),
            "-t",
            "y",
            "--epochs",
            "100000",
            "--patience",
            "0",
            "-q",
            "--no-checkpoint",
            "--out",
            str(tmp_path / "run"),
            "--nproc",
            "2",
            "--master-port",
            str(_free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim = None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline:  # find rank 1 once it is training
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                b"RANK=1" in env
                and f"{tmp_path}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
            ):
                victim = int(pid)
        time.sleep(0.5)
    assert victim is not None, "rank 1 never started"
    time.sleep(8)  # let it get into the training loop
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    _, err = proc.communicate(timeout=90)
    assert time.time() - killed_at < 60
    assert proc.returncode == 1
    assert "rank 1 of 2 was killed by signal SIGKILL" in err and "no bundle was written" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.service
def test_port_in_use_suggests_master_port(tmp_path):
    data = _table(tmp_path / "d.csv", n=64)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [*DLPIPE, "train", str(data), "-t", "y", "--nproc", "2", "--master-port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert (
        f"port {port} on 127.0.0.1 is already in use" in proc.stderr
        and "pass a free one as `--master-port`" in proc.stderr
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.service
@pytest.mark.slow
def test_more_ranks_than_cores_warns_and_finishes(tmp_path):
    data = _table(tmp_path / "d.csv", n=96)
    n = (os.cpu_count() or 1) + 1
    proc = subprocess.run(
        [
            *DLPIPE,
            "train",
            str(data),
            "-t",
            "y",
            "--epochs",
            "1",
            "-q",
            "--no-checkpoint",
            "--no-report",  # a distributed run's report is checked in test_two_processes_match_one
            "--out",
            str(tmp_path / "r"),
            "--nproc",
            str(n),
            "--master-port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"warning: `--nproc` is {n}, more than this machine's" in proc.stderr
    assert (tmp_path / "r" / "bundle" / "manifest.json").is_file()


def test_single_process_path_unchanged_by_distributed_code():
    # world size 1: the engine must not touch torch.distributed at all
    x = torch.randn(40, 3)
    y = (x[:, :1] > 0).float()
    t = Trainer(epochs=2, batch_size=8, device="cpu")
    h = t.fit(
        torch.nn.Linear(3, 1),
        torch.nn.functional.binary_cross_entropy_with_logits,
        TensorData((x,), y),
    )
    assert len(h) == 2 and not torch.distributed.is_initialized()
