"""An RL run writes the same run record as every other run (issue #16, item 3): config.yaml,
metrics.json with a `test` part (mean_return beside the random policy), a report with an RL section
and none of the false "missing" banners, and a bundle that `dlpipe.load_bundle` turns into an agent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidConfigError, InvalidInputError

FALSE_BANNERS = (
    "unknown on ?",  # the subtitle without a task or data set
    "This run has no test evaluation",
    "could not be loaded",  # the bundle, as a model bundle of family 'rl-q' / 'q-table'
    "unknown model family",
    "missing: config.yaml",
    "missing:",  # any other part said to be missing
    "episode per epoch",  # RL history drawn as epochs
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A solved FrozenLake run (non-slippery, Q-learning) saved with its report."""
    from dlpipe.rl import train_agent

    out = tmp_path_factory.mktemp("rl-record") / "lake"
    train_agent(
        "FrozenLake-v1",
        "qlearning",
        env_kwargs={"is_slippery": False},
        steps=3000,
        seed=0,
        eval_episodes=5,
        out=out,
    )
    return out


def test_run_folder_holds_config_yaml_and_a_test_record(lake):
    assert (lake / "config.yaml").is_file() and not (lake / "config.json").exists()
    config = yaml.safe_load((lake / "config.yaml").read_text())
    assert {
        k: config[k] for k in ("env_id", "env_kwargs", "algo", "steps", "seed", "eval_episodes")
    } == {
        "env_id": "FrozenLake-v1",
        "env_kwargs": {"is_slippery": False},
        "algo": "qlearning",
        "steps": 3000,
        "seed": 0,
        "eval_episodes": 5,
    }
    assert (
        config["options"]["learning_rate"] == 0.1 and config["options"]["gamma"] == 0.99
    )  # every algorithm setting
    metrics = json.loads((lake / "metrics.json").read_text())
    assert (metrics["kind"], metrics["task"], metrics["dataset"]) == (
        "rl",
        "reinforcement",
        "FrozenLake-v1",
    )
    test = metrics["test"]
    assert test["primary_metric"] == "mean_return" and test["episodes"] == 5
    assert test["model"]["mean_return"] == 1.0 and test["baselines"]["random"]["mean_return"] == 0.0
    assert test["verdict"].startswith(
        "The model beats its best baseline (random) on mean_return: 1.0000 vs 0.0000"
    )
    header = (lake / "history.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "episode" and "epoch" not in header


def test_report_has_the_rl_section_and_no_false_banners(lake):
    page = (lake / "report.html").read_text()
    for text in FALSE_BANNERS:
        assert text not in page, text
    assert "reinforcement on FrozenLake-v1 (rl)" in page
    assert (
        "Reinforcement learning" in page
        and "evaluation vs a uniformly random policy on the same 5 episodes" in page
    )
    assert (lake / "plots" / "rl_returns.png").is_file()
    assert "Selected on 100 greedy episodes seeded 10000-10099" in page
    assert "reported on 5 fresh episodes seeded 20000-20004, which selection never played" in page
    assert "solved on the fresh episodes (the selection check passed at env step" in page
    assert (
        "QTable (q-table): 64 parameters" in page
    )  # the Model section describes the agent's table


def test_network_agent_report_draws_no_epoch_curves(tmp_path):
    from dlpipe.rl import train_agent

    # a warning while building the report (matplotlib's empty legend on per-epoch plots) fails here: filterwarnings=error
    train_agent(
        "CartPole-v1",
        "dqn",
        steps=300,
        seed=0,
        eval_every=0,
        eval_episodes=2,
        out=tmp_path / "cart",
    )
    page = (tmp_path / "cart" / "report.html").read_text()
    for text in (*FALSE_BANNERS, "per epoch", "epochs run"):
        assert text not in page, text
    assert "QNetwork (rl-q): 17,410 parameters" in page and "dlpipe rl train --config" in page


def test_load_bundle_returns_an_agent_that_acts(lake):
    agent = dl.load_bundle(lake / "bundle")
    table = agent.q_table
    assert agent.predict(0) == table[0].argmax()  # one raw observation -> one action
    assert agent.predict([0, 4, 8]).tolist() == table[[0, 4, 8]].argmax(axis=1).tolist()
    assert agent.evaluate(episodes=3)["mean_return"] == 1.0
    with pytest.raises(
        InvalidInputError,
        match=r"`observations` of shape \(\) do not fit 'FrozenLake-v1', whose observations are an integer state below 16",
    ):
        agent.predict(99)


def test_load_bundle_on_a_network_agent_acts_on_an_observation(tmp_path):
    from dlpipe.rl import train_agent

    run = train_agent(
        "CartPole-v1",
        "a2c",
        steps=200,
        seed=1,
        eval_every=0,
        eval_episodes=2,
        n_envs=2,
        out=tmp_path / "cp",
        report=False,
    )
    agent = dl.load_bundle(tmp_path / "cp" / "bundle")
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert agent.predict(obs).tolist() == run.agent.act(obs).tolist() and agent.predict(obs[0]) in (
        0,
        1,
    )
    with pytest.raises(
        InvalidInputError,
        match=r"`observations` of shape \(5,\) do not fit 'CartPole-v1', whose observations are \(4,\)",
    ):
        agent.predict(np.zeros(5))


def test_runs_listing_shows_the_rl_run_beside_the_random_policy(lake):
    from dlpipe.reports.compare import list_runs

    (row,) = list_runs(lake.parent)
    assert (row["task"], row["dataset"], row["metric"], row["value"]) == (
        "reinforcement",
        "FrozenLake-v1",
        "mean_return",
        1.0,
    )
    assert (
        row["baseline"] == "random 0.0000"
        and row["beats_baseline"] is True
        and row["model"] == "q-table"
    )


def test_cli_reruns_a_run_from_its_config_and_reads_run_folders(lake, tmp_path, capsys):
    assert main(["rl", "train", "--config", str(lake / "config.yaml"), "-o", "again", "-q"]) == 0
    capsys.readouterr()
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test"] == json.loads((lake / "metrics.json").read_text())["test"]
    assert yaml.safe_load((tmp_path / "again" / "config.yaml").read_text()) == yaml.safe_load(
        (lake / "config.yaml").read_text()
    )
    assert again["origin"] == "cli" and again["command"].startswith("dlpipe rl train --config")
    assert (
        main(["rl", "evaluate", "again", "--episodes", "2", "--json"]) == 0
    )  # the run folder, not only its bundle
    assert json.loads(capsys.readouterr().out)["mean_return"] == 1.0


def test_cli_config_errors_are_one_sentence(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("env_id: FrozenLake-v1\nalgo: qlearning\nstep: 10\n")
    assert main(["rl", "train", "--config", "bad.yaml", "-o", "x"]) == 2
    assert (
        "has the key 'step' (did you mean `steps`?), which an RL run does not take"
        in capsys.readouterr().err
    )
    assert main(["rl", "train", "-o", "x"]) == 2
    assert "pass ENV (e.g. `dlpipe rl train CartPole-v1`) or --config" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    from dlpipe.rl import train_agent

    with pytest.raises(
        InvalidConfigError, match="`eval_episodes` is 0 but must be a positive integer"
    ):
        train_agent("FrozenLake-v1", "qlearning", eval_episodes=0)


def test_commands_for_model_bundles_refuse_an_agent_in_one_sentence(lake, tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    sentence = "this bundle is an RL agent (qlearning on 'FrozenLake-v1', kind 'rl'), not a model of a table"
    for argv in (
        ["predict", str(lake / "bundle"), "rows.csv"],
        ["evaluate", str(lake / "bundle"), "rows.csv"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {sentence}") and "Traceback" not in err
    from dlpipe.core.errors import BundleError
    from dlpipe.serving.app import create_app

    with pytest.raises(
        BundleError, match=r"is an RL agent .* use `dlpipe rl evaluate` / `dlpipe rl play`"
    ):
        create_app(lake / "bundle")


def test_report_names_the_rl_command_that_reruns_it(lake):
    page = (lake / "report.html").read_text()
    assert (
        "dlpipe rl train FrozenLake-v1 --algo qlearning --steps 3000 --seed 0 --eval-episodes 5 "
        "--env-option is_slippery=false --option learning_rate=0.1"
    ) in page
