"""Tuning: a real Optuna study over real training, resumable SQLite, two workers on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidConfigError
from dlpipe.tuning import DEFAULT_SPACE, load_space, tune

SMALL = {
    "n_layers": {"low": 1, "high": 2},
    "units": {"low": 16, "high": 64, "step": 16},
    "learning_rate": {"low": 1e-3, "high": 1e-1, "log": True},
    "batch_size": [16, 32],
}


def test_default_space_is_keras_tuners():
    assert (
        DEFAULT_SPACE["n_layers"] == {"low": 2, "high": 8} and DEFAULT_SPACE["units"]["step"] == 32
    )
    space = load_space()
    assert space.ranges["learning_rate"].log and space.ranges["dropout"].high == 0.5


@pytest.mark.slow
def test_tune_resumes_and_retrains_the_best_trial(binary_frame, tmp_path):
    out = tmp_path / "tune"
    r = tune(
        binary_frame, "y", trials=3, space=SMALL, out=out, epochs=3, progress="quiet", retrain=False
    )
    assert r.summary["complete"] + r.summary["pruned"] == 3 and (out / "study.db").is_file()
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["number"]) == [0, 1, 2] and "param_learning_rate" in trials
    # the same folder resumes the study: one more trial reaches 4, and the best is retrained into a bundle
    r2 = tune(
        binary_frame, "y", trials=4, space=SMALL, out=out, epochs=3, progress="quiet", report=False
    )
    assert r2.summary["trials_run_here"] == 1 and len(r2.study.trials) == 4
    assert (out / "best" / "bundle" / "manifest.json").is_file()
    # The default config (trial 0: learning rate 1e-3, 3 epochs) barely moves on these 64 rows
    # (val_loss 0.68); the space's faster rates reach 0.12-0.19 (seed 0). So the search must find a
    # trial other than the default, at most half its loss (a search whose sampled values were not
    # applied, or that returned the default, stays at 0.68).
    trials = pd.read_csv(out / "trials.csv")
    complete = trials[trials["state"] == "complete"]
    best_row = complete.loc[complete["val_loss"].idxmin()]
    table = trials[["number", "val_loss", "default_config", "param_learning_rate"]].to_string()
    assert not best_row["default_config"], f"no trial beat the default config:\n{table}"
    assert r2.summary["best_trial"] == best_row["number"]
    assert r2.best_value == pytest.approx(best_row["val_loss"])
    assert r2.default_value == pytest.approx(
        complete.loc[complete["default_config"], "val_loss"].iloc[0]
    )
    assert r2.best_value <= 0.5 * r2.default_value, (r2.best_value, r2.default_value)
    # the retrained run trains the best trial's parameters
    train_cfg = r2.best_run.config["train"]
    assert train_cfg["learning_rate"] == pytest.approx(best_row["param_learning_rate"])
    assert train_cfg["batch_size"] == best_row["param_batch_size"]
    assert len(r2.best_run.config["model"]["hidden"]) == best_row["param_n_layers"]
    assert json.loads((out / "tuning.json").read_text())["best_trial"] == r2.summary["best_trial"]


def test_bad_search_spaces_are_one_sentence(tmp_path):
    with pytest.raises(
        InvalidConfigError, match=r"`dropout` has an inverted range: low=0.5 > high=0.1; swap them"
    ):
        load_space({"dropout": {"low": 0.5, "high": 0.1}})
    with pytest.raises(
        InvalidConfigError, match=r"`learning_rate` has an empty range: low == high == 0.01"
    ):
        load_space({"learning_rate": {"low": 0.01, "high": 0.01}})
    with pytest.raises(
        InvalidConfigError, match=r"unknown search-space key 'dropuot' \(did you mean `dropout`\?\)"
    ):
        load_space({"dropuot": {"low": 0.0, "high": 0.5}})
    with pytest.raises(InvalidConfigError, match="empty list of choices"):
        load_space({"batch_size": []})
    (tmp_path / "space.yaml").write_text("dropout: {low: 0.5, high: 0.0}\n")
    assert main(["tune", "x.csv", "--space", str(tmp_path / "space.yaml")]) == 2


def test_unreachable_storage_names_the_url_and_the_driver_error(binary_frame, tmp_path):
    with pytest.raises(InvalidConfigError) as err:
        tune(
            binary_frame,
            "y",
            trials=1,
            space=SMALL,
            storage="postgresql://me:secret@127.0.0.1:1/nowhere",
            progress="quiet",
            out=tmp_path / "t",
        )
    assert not (tmp_path / "t").exists()  # nothing written
    msg = str(err.value)
    assert "cannot reach the study storage 'postgresql+psycopg://me:***@127.0.0.1:1/nowhere'" in msg
    assert "OperationalError" in msg and "secret" not in msg and "\n" not in msg


@pytest.mark.service
@pytest.mark.slow
def test_two_workers_share_one_study_on_postgresql(postgres_url, binary_frame, tmp_path):
    import optuna

    binary_frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "space.yaml").write_text(json.dumps(SMALL))  # JSON is YAML
    # trials long enough (40 epochs) that one worker cannot finish the study while the other starts up:
    # at 3 epochs a trial took ~0.1 s and one worker once ran all of them (seen in a clean-clone run)
    n = 8
    cmd = [
        sys.executable,
        "-m",
        "dlpipe",
        "tune",
        str(tmp_path / "data.csv"),
        "--target",
        "y",
        "--trials",
        str(n),
        "--space",
        str(tmp_path / "space.yaml"),
        "--storage",
        postgres_url,
        "--study-name",
        "two-workers",
        "--epochs",
        "40",
        "--no-retrain",
        "--no-report",  # each worker's report is unchecked here (tests/tuning/test_report.py)
        "--quiet",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    workers = [
        subprocess.Popen(
            [*cmd, "--out", str(tmp_path / f"w{i}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=240) for w in workers]
    for w, (_out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    storage = optuna.storages.RDBStorage(
        postgres_url.replace("postgresql://", "postgresql+psycopg://")
    )
    try:
        all_trials = optuna.load_study(study_name="two-workers", storage=storage).trials
    finally:
        storage.engine.dispose()  # close the pooled connection before the server stops
    finished = [
        t
        for t in all_trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    numbers = [t.number for t in all_trials]
    assert len(finished) == n and len(numbers) == len(set(numbers))
    ran = [
        json.loads((tmp_path / f"w{i}" / "tuning.json").read_text())["trials_run_here"]
        for i in range(2)
    ]
    assert sum(ran) >= n and min(ran) >= 1  # both workers did real work on the one study


@pytest.mark.service
@pytest.mark.slow
def test_a_dead_workers_trial_is_failed_by_its_heartbeat_and_rerun(
    postgres_url, binary_frame, tmp_path
):
    import optuna
    import sqlalchemy

    binary_frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "space.yaml").write_text(json.dumps(SMALL))
    (tmp_path / "forever.yaml").write_text(
        "epochs: 100000\npatience: 0\n"
    )  # the dead worker's trial would run for minutes
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    dead = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlpipe",
            "tune",
            str(tmp_path / "data.csv"),
            "--target",
            "y",
            "--trials",
            "3",
            "--space",
            str(tmp_path / "space.yaml"),
            "--config",
            str(tmp_path / "forever.yaml"),
            "--storage",
            postgres_url,
            "--study-name",
            "heartbeat",
            "--heartbeat",
            "1",
            "--pruner",
            "none",
            "--no-retrain",
            "--no-report",
            "--quiet",
            "--out",
            str(tmp_path / "dead"),
        ],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    storage = optuna.storages.RDBStorage(url)
    try:
        deadline = time.monotonic() + 120
        running: list = []
        while not running:  # the worker is training its first trial (and beating) ...
            assert dead.poll() is None, dead.stderr.read() if dead.stderr else ""
            assert time.monotonic() < deadline, "the first worker never started a trial"
            time.sleep(0.3)
            try:
                study = optuna.load_study(study_name="heartbeat", storage=storage)
            except KeyError:
                continue
            running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            if (
                running
            ):  # and it has recorded its first heartbeat (Optuna only fails trials that have one)
                with storage.engine.connect() as db:
                    beats = db.execute(
                        sqlalchemy.text(
                            "SELECT count(*) FROM trial_heartbeats WHERE trial_id = :t"
                        ),
                        {"t": running[0]._trial_id},
                    ).scalar()
                running = running if beats else []
        dead.kill()  # ... when it dies without a word
        dead.wait(timeout=30)
        live = tune(
            binary_frame,
            "y",
            trials=3,
            space=SMALL,
            storage=postgres_url,
            study_name="heartbeat",
            heartbeat=1,
            epochs=3,
            pruner="none",
            out=tmp_path / "live",
            progress="quiet",
            retrain=False,
            report=False,
        )
        trials = optuna.load_study(study_name="heartbeat", storage=storage).trials
    finally:
        if dead.poll() is None:
            dead.kill()
            dead.wait(timeout=30)
        if dead.stderr:
            dead.stderr.close()
        storage.engine.dispose()
    by_number = {t.number: t for t in trials}
    assert len(by_number) == len(trials)  # no trial number twice
    lost = by_number[running[0].number]
    assert (
        lost.state == optuna.trial.TrialState.FAIL
    )  # failed by the live worker once its heartbeat went stale
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE
    # The same parameters: every one the lost trial had sampled before it was killed (it may have been
    # killed part-way through sampling them: 2 of 5 in one run), and, when it was enqueued with fixed
    # ones (trial 0: the default config), exactly those.
    fixed = lost.system_attrs.get("fixed_params")
    sampled = lost.params.items() <= retried[0].params.items()
    assert sampled and retried[0].params == (fixed or retried[0].params), (
        retried[0].params,
        lost.params,
        lost.system_attrs,
    )
    finished = [
        t
        for t in trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    assert (
        len(finished) == 3 and live.summary["failed"] == 1 and live.summary["trials_run_here"] == 3
    )


def test_trials_of_the_default_space_train_on_the_engines_fast_path():
    import optuna

    from dlpipe.core.config import build_config
    from dlpipe.pipeline._fit import TableRecipe
    from dlpipe.pipeline.train import resolve_dataset
    from dlpipe.training.fastpath import make_fast_step
    from dlpipe.training.trainer import Trainer
    from dlpipe.tuning.trial import trial_model

    cfg = build_config({}, {"seed": 0})
    ds = resolve_dataset("breast_cancer", cfg)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"target": ds.target})})
    prepared = TableRecipe().prepare(ds, cfg)
    space = load_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(
        8
    ):  # 2-8 layers, any width, any dropout: always a plain Linear/ReLU/Dropout stack
        params = space.sample(study.ask())
        model, _spec = trial_model(cfg, prepared, params)
        Trainer(epochs=1, batch_size=32).make_optimizer(
            model
        )  # the flat gradient buffer the fast path writes into
        assert make_fast_step(model, prepared.task.loss_fn(None)) is not None, params
        # the hidden layers, then the output layer (the ensemble's heads, MemberHeads)
        layers = [m for m in model.modules() if type(m).__name__ in ("Linear", "MemberHeads")]
        assert len(layers) == len(params["hidden"]) + 1


def test_hyperband_steps_are_training_compute_so_trials_compare_at_equal_cost():
    import optuna

    from dlpipe.tuning.trial import PruningCallback

    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    for cost, expected in (
        (None, [1, 2, 3, 4]),
        (25.0, [25, 50, 75, 100]),
        (0.25, [1, 2, 3, 4]),
        (1.6, [2, 3, 5, 6]),
    ):
        trial = study.ask()
        cb = PruningCallback(trial, cost_per_epoch=cost)
        for epoch in range(1, 5):
            cb.on_epoch_end(None, epoch, {"val_loss": 1.0 / epoch})  # type: ignore[arg-type]
        assert sorted(study.trials[trial.number].intermediate_values) == expected


@pytest.mark.slow
def test_tune_reports_compute_steps_to_hyperband(binary_frame, tmp_path):
    r = tune(
        binary_frame,
        "y",
        trials=3,
        space=SMALL,
        out=tmp_path / "t",
        epochs=3,
        progress="quiet",
        retrain=False,
        report=False,
    )
    curves = pd.read_csv(tmp_path / "t" / "intermediate.csv")
    first = curves[curves["number"] == 0]
    assert list(first["epoch"]) == [1, 2, 3] and list(first["step"]) == [
        10,
        20,
        30,
    ]  # trial 0 is the default network: 10 tenths an epoch
    for t in r.study.trials:  # every other trial's step grows with its network's multiply-adds
        cost = t.user_attrs["cost_per_epoch"]
        steps = sorted(t.intermediate_values)
        assert steps[0] == max(1, round(cost)) and r.summary["pruner_step"].startswith("tenths")
