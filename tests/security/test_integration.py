"""Cases that cross the areas of issue #15: readers of strict JSON, labels drawn as typed, and the
`--overwrite` flag of `dlpipe rl train`."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli.app import main


def test_a_null_metric_in_metrics_json_reads_back_and_summarises(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    frame["y"] = np.where(frame["a"] > 0, "p", "n")
    run = dl.train(frame, "y", epochs=1, progress="quiet", out="r", report=False)
    metrics = json.loads((run.path / "metrics.json").read_text())
    metrics["test"]["model"][metrics["test"]["primary_metric"]] = (
        None  # as strict JSON writes an undefined metric
    )
    (run.path / "metrics.json").write_text(json.dumps(metrics))
    summary = dl.load_run(run.path).summary()
    assert re.search(r"\n  model +nan\n", summary)  # names padded to the longest baseline name


def test_class_labels_with_dollars_are_drawn_as_typed_in_generative_plots():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(64, 4)), columns=list("abcd"))
    frame["y"] = np.where(rng.random(64) > 0.5, "$\\frac{$", "$\\undefinedcmd{$")
    run = dl.train(frame, "y", task="reconstruction", epochs=1, progress="quiet", out="r")
    assert (run.path / "plots" / "anomaly_scores.png").stat().st_size > 1000


@pytest.mark.slow
def test_rl_train_refuses_an_existing_run_without_overwrite_and_replaces_it_with(capsys):
    argv = [
        "rl",
        "train",
        "FrozenLake-v1",
        "--algo",
        "qlearning",
        "--steps",
        "200",
        "--eval-episodes",
        "2",
        "-q",
        "-o",
        "rl",
    ]
    assert main(argv) == 0
    assert main(argv) == 2
    assert "pass `--overwrite`" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
