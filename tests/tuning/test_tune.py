"""Tuning: a real Optuna study over real training, resumable SQLite, two workers on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidConfigError
from dlpipe.tuning import DEFAULT_SPACE, load_space, tune

SMALL = {"n_layers": {"low": 1, "high": 2}, "units": {"low": 16, "high": 64, "step": 16},
         "learning_rate": {"low": 1e-3, "high": 1e-1, "log": True}, "batch_size": [16, 32]}


def test_default_space_is_keras_tuners():
    assert DEFAULT_SPACE["n_layers"] == {"low": 2, "high": 8} and DEFAULT_SPACE["units"]["step"] == 32
    space = load_space()
    assert space.ranges["learning_rate"].log and space.ranges["dropout"].high == 0.5


@pytest.mark.slow
def test_tune_resumes_and_retrains_the_best_trial(binary_frame, tmp_path):
    out = tmp_path / "tune"
    r = tune(binary_frame, "y", trials=3, space=SMALL, out=out, epochs=3, progress="quiet", retrain=False)
    assert r.summary["complete"] + r.summary["pruned"] == 3 and (out / "study.db").is_file()
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["number"]) == [0, 1, 2] and "param_learning_rate" in trials
    # the same folder resumes the study: one more trial reaches 4, and the best is retrained into a bundle
    r2 = tune(binary_frame, "y", trials=4, space=SMALL, out=out, epochs=3, progress="quiet", report=False)
    assert r2.summary["trials_run_here"] == 1 and len(r2.study.trials) == 4
    assert (out / "best" / "bundle" / "manifest.json").is_file()
    assert r2.best_value <= r2.default_value  # the default config is trial 0, so the best is never worse
    assert json.loads((out / "tuning.json").read_text())["best_trial"] == r2.summary["best_trial"]


def test_bad_search_spaces_are_one_sentence(tmp_path):
    with pytest.raises(InvalidConfigError, match=r"`dropout` has an inverted range: low=0.5 > high=0.1; swap them"):
        load_space({"dropout": {"low": 0.5, "high": 0.1}})
    with pytest.raises(InvalidConfigError, match=r"`learning_rate` has an empty range: low == high == 0.01"):
        load_space({"learning_rate": {"low": 0.01, "high": 0.01}})
    with pytest.raises(InvalidConfigError, match=r"unknown search-space key 'dropuot' \(did you mean `dropout`\?\)"):
        load_space({"dropuot": {"low": 0.0, "high": 0.5}})
    with pytest.raises(InvalidConfigError, match="empty list of choices"):
        load_space({"batch_size": []})
    (tmp_path / "space.yaml").write_text("dropout: {low: 0.5, high: 0.0}\n")
    assert main(["tune", "x.csv", "--space", str(tmp_path / "space.yaml")]) == 2


def test_unreachable_storage_names_the_url_and_the_driver_error(binary_frame, tmp_path):
    with pytest.raises(InvalidConfigError) as err:
        tune(binary_frame, "y", trials=1, space=SMALL, storage="postgresql://me:secret@127.0.0.1:1/nowhere", progress="quiet", out=tmp_path / "t")
    assert not (tmp_path / "t").exists()  # nothing written
    msg = str(err.value)
    assert "cannot reach the study storage 'postgresql+psycopg://me:***@127.0.0.1:1/nowhere'" in msg
    assert "OperationalError" in msg and "secret" not in msg and "\n" not in msg


@pytest.mark.service
@pytest.mark.slow
def test_two_workers_share_one_study_on_postgresql(postgres_url, binary_frame, tmp_path):
    optuna = pytest.importorskip("optuna")
    binary_frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "space.yaml").write_text(json.dumps(SMALL))  # JSON is YAML
    n = 6
    cmd = [sys.executable, "-m", "dlpipe", "tune", str(tmp_path / "data.csv"), "--target", "y", "--trials", str(n),
           "--space", str(tmp_path / "space.yaml"), "--storage", postgres_url, "--study-name", "two-workers",
           "--epochs", "3", "--no-retrain", "--quiet"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    workers = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"w{i}")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    for w, (_out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    storage = optuna.storages.RDBStorage(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        all_trials = optuna.load_study(study_name="two-workers", storage=storage).trials
    finally:
        storage.engine.dispose()  # close the pooled connection before the server stops
    finished = [t for t in all_trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    numbers = [t.number for t in all_trials]
    assert len(finished) == n and len(numbers) == len(set(numbers))
    ran = [json.loads((tmp_path / f"w{i}" / "tuning.json").read_text())["trials_run_here"] for i in range(2)]
    assert sum(ran) >= n and min(ran) >= 1  # both workers did real work on the one study
