"""MLflow tracking against a real `mlflow server` on 127.0.0.1, the local SQLite default, and an unreachable URI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.core.errors import InvalidConfigError
from dlpipe.tracking import MlflowTracker, tracker_from_flag
from dlpipe.tracking.mlflow import TrackingWarning


def _frame(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": rng.choice(["u", "v"], n),
            "y": np.where(x[:, 0] > 0, "p", "q"),
        }
    )


def _client(uri: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=uri)


def _check_logged(tracker: MlflowTracker, uri: str, epochs: int) -> None:
    assert not tracker.disabled and tracker.run_id and tracker.model_version == "dlpipe-y/1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = _client(uri)
        run = client.get_run(tracker.run_id)
        assert run.info.status == "FINISHED"
        assert (
            run.data.params["trainer.epochs"] == str(epochs)
            and "config.train.optimizer" in run.data.params
        )
        assert len(client.get_metric_history(tracker.run_id, "loss")) == epochs
        assert len(client.get_metric_history(tracker.run_id, "val_loss")) == epochs
        assert (
            "test_accuracy" in run.data.metrics and "baseline_majority_accuracy" in run.data.metrics
        )
        top = {a.path for a in client.list_artifacts(tracker.run_id)}
        assert {"metrics.json", "history.csv", "config.yaml", "bundle"} <= top
        assert {a.path for a in client.list_artifacts(tracker.run_id, "bundle")} == {
            "bundle/.dlpipe",
            "bundle/MODEL_CARD.md",
            "bundle/manifest.json",
            "bundle/weights.safetensors",
        }
        version = client.get_model_version("dlpipe-y", "1")
        assert version.run_id == tracker.run_id and version.source.endswith("/bundle")


@pytest.mark.slow
def test_default_local_sqlite_store_beside_the_runs_folder(tmp_path):
    os.chdir(tmp_path)
    tracker = MlflowTracker(runs_dir="runs")
    dl.train(_frame(), "y", epochs=3, progress="quiet", out="runs/a", callbacks=[tracker])
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlartifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()  # the artifact location is set explicitly
    _check_logged(tracker, tracker.tracking_uri, 3)


@pytest.mark.slow
def test_a_gan_run_logs_both_losses_to_the_local_store(tmp_path):
    from dlpipe.data.arrays import ArrayDataset, load_digits_images

    os.chdir(tmp_path)
    ds = load_digits_images()
    tracker = MlflowTracker(runs_dir="runs")
    dl.train(
        ArrayDataset(ds.x[:200], ds.y[:200], name="digits200"),
        task="generate",
        model={"family": "gan", "latent": 4},
        epochs=2,
        progress="quiet",
        out="runs/gan",
        callbacks=[tracker],
    )
    assert tracker.run_id is not None, "the tracker never saw the GAN's training"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = _client(tracker.tracking_uri)
        run = client.get_run(tracker.run_id)
        assert run.info.status == "FINISHED" and run.data.tags["dlpipe.epochs_run"] == "2"
        for name in ("d_loss", "g_loss", "d_real", "d_fake", "loss"):
            assert [m.step for m in client.get_metric_history(tracker.run_id, name)] == [1, 2], name
        assert (
            "test_nn_distance" in run.data.metrics
            and run.data.params["config.model.family"] == "gan"
        )


def test_unreachable_server_warns_once_and_the_run_continues(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    tracker = tracker_from_flag(f"mlflow:http://127.0.0.1:{port}")
    with pytest.warns(
        TrackingWarning, match="the training run continues without tracking"
    ) as caught:
        run = dl.train(
            _frame(), "y", epochs=2, progress="quiet", out=tmp_path / "r", callbacks=[tracker]
        )
    assert len([w for w in caught if issubclass(w.category, TrackingWarning)]) == 1
    assert run.path is not None and (run.path / "bundle" / "manifest.json").is_file()
    assert tracker.disabled and tracker.run_id is None


def test_bad_track_flag():
    with pytest.raises(InvalidConfigError, match="`track` is 'wandb'"):
        tracker_from_flag("wandb")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("mlflow")
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(exe),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        cwd=root,
        # MLflow 3's job runner (a third process, for its GenAI jobs) is not part of tracking; off,
        # the server answers /health ~6 s of CPU sooner
        env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {proc.returncode}: {(root / 'server.log').read_text()[-800:]}"
                )
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer /health within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        # the server's workers live in its process group; stop the group it leads, then the parent
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.service
@pytest.mark.slow
def test_cli_track_against_a_real_mlflow_server(mlflow_server, tmp_path, capsys):
    from dlpipe.cli import main

    os.chdir(tmp_path)
    _frame().to_csv("data.csv", index=False)
    assert (
        main(
            [
                "train",
                "data.csv",
                "--target",
                "y",
                "--epochs",
                "3",
                "-o",
                "runs/t",
                "--quiet",
                "--track",
                f"mlflow:{mlflow_server}",
            ]
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().err
    client = _client(mlflow_server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = client.get_experiment_by_name("dlpipe")
        runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    tracker = MlflowTracker(mlflow_server)
    tracker.run_id, tracker.model_version = runs[0].info.run_id, "dlpipe-y/1"
    _check_logged(tracker, mlflow_server, 3)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.service
@pytest.mark.slow
def test_cli_gan_run_sends_its_losses_to_a_real_mlflow_server(mlflow_server, tmp_path, capsys):
    from dlpipe.cli import main
    from dlpipe.data.arrays import load_digits_images

    os.chdir(tmp_path)
    ds = load_digits_images()
    np.savez("d.npz", x=(ds.x[:200] * 255).astype(np.uint8), y=ds.y[:200])
    track = ["--track", f"mlflow:{mlflow_server}"]
    assert (
        main(
            [
                "train",
                "d.npz",
                "--task",
                "generate",
                "--model",
                "gan",
                "--epochs",
                "2",
                "-o",
                "runs/g",
                "--quiet",
                "--no-report",
                *track,
            ]
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().err
    client = _client(mlflow_server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = client.get_experiment_by_name("dlpipe")
        runs = [
            r
            for r in client.search_runs([exp.experiment_id])
            if r.data.params.get("config.model.family") == "gan"
        ]
        assert len(runs) == 1
        for name in ("d_loss", "g_loss"):
            assert [m.step for m in client.get_metric_history(runs[0].info.run_id, name)] == [
                1,
                2,
            ], name
