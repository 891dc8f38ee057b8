"""metrics.json has one typed shape for every kind of run (issue #16): RunRecord parses each kind's record."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dlpipe as dl
from dlpipe.data.arrays import ArrayDataset, load_digits_images
from dlpipe.pipeline.record import RunRecord, read_record

Q = {"progress": "quiet", "save": False}


def _digits(n: int = 200) -> ArrayDataset:
    d = load_digits_images()
    return ArrayDataset(d.x[:n], d.y[:n], name="digits")


KINDS = {
    "table": lambda: dl.train("iris", epochs=2, **Q),
    "regression": lambda: dl.train("iris", "petal length (cm)", epochs=2, **Q),
    # a 13-step season: the ETS baseline's seasonal fits on sin(t / 5) (a 31-step season) took ~8 s
    "forecast": lambda: dl.train(
        {"y": np.sin(np.arange(200) / 2.0)}, "y", task="forecast", lookback=8, epochs=2, **Q
    ),
    "sequence": lambda: dl.train(
        "../shared/data/ucr/ItalyPowerDemand_TRAIN.ts",
        test="../shared/data/ucr/ItalyPowerDemand_TEST.ts",
        epochs=2,
        **Q,
    ),
    "autoencoder": lambda: dl.train(
        _digits(),
        task="reconstruction",
        model={"family": "autoencoder", "latent": 2},
        epochs=2,
        **Q,
    ),
    "gan": lambda: dl.train(_digits(128), task="generate", model={"family": "gan"}, epochs=1, **Q),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_writes_the_same_record(kind, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(
        Path(__file__).resolve().parents[2]
    )  # ../shared/data is relative to the project
    run = KINDS[kind]()
    record = run.record
    assert record.test.verdict and record.test.primary_metric and record.test.model
    assert record.rows and record.epochs_run and record.n_parameters
    assert record.environment["seed"] == 0 and record.environment["torch"]
    assert record.data_sources is not None and record.data_sources["train"] is not None
    assert record.origin == "python"


@pytest.mark.slow
def test_an_rl_run_writes_the_same_record(tmp_path):
    from dlpipe.rl import train_agent

    train_agent(
        "FrozenLake-v1",
        "qlearning",
        steps=300,
        seed=0,
        eval_every=0,
        eval_episodes=3,
        out=tmp_path / "lake",
        env_kwargs={"is_slippery": False},
        report=False,
    )
    record = read_record(tmp_path / "lake")
    assert record.task == "reinforcement" and record.epochs_run is None
    assert set(record.test.baselines) == {"random"} and record.test.primary_metric == "mean_return"


def test_the_schema_is_json_schema_and_refuses_a_record_without_a_test_part():
    schema = RunRecord.model_json_schema()
    assert {"dataset", "task", "rows", "test", "environment"} <= set(schema["required"])
    json.dumps(schema)
    with pytest.raises(ValueError, match="test"):
        RunRecord.model_validate(
            {"dataset": "d", "task": "binary", "rows": {"train": 1}, "environment": {}}
        )
