"""Value iteration on FrozenLake's known model: the optimal policy, refusals, CLI, bundle round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl import load_agent, train_agent
from dlpipe.rl.value_iteration import value_iteration

# The optimal actions of slippery 4x4 FrozenLake with gamma 0.99 (0 left, 1 down, 2 right, 3 up),
# for the states that are neither holes (5, 7, 11, 12) nor the goal (15).
OPTIMAL = {0: 0, 1: 3, 2: 3, 3: 3, 4: 0, 6: 0, 8: 3, 9: 1, 10: 0, 13: 2, 14: 1}


def test_value_iteration_finds_the_optimal_slippery_frozenlake_policy():
    run = train_agent("FrozenLake-v1", "value_iteration")
    policy = run.agent.q_table.argmax(axis=1)
    assert {s: int(policy[s]) for s in OPTIMAL} == OPTIMAL
    m = run.metrics
    assert m["converged"] and m["sweeps"] < 1_000 and m["steps"] == 0 and m["selection"] is None
    assert (
        m["evaluation"]["mean_return"] > 0.5 > m["random"]["mean_return"]
    )  # optimum ~0.74, random ~0.02
    # V(0) of the optimal policy, from the known model: about 0.54 with gamma 0.99
    assert run.agent.q_table[0].max() == pytest.approx(0.542, abs=0.005)


def test_value_iteration_stops_at_the_sweep_cap_and_on_a_tiny_mdp():
    cont = np.array([[[0.0, 1.0]], [[0.0, 0.0]]])  # 0 -> 1 -> end, rewards 1 then 2
    q, sweeps, delta = value_iteration(cont, np.array([[1.0], [2.0]]), 0.5, 1e-12, 1)
    assert sweeps == 1 and q.ravel().tolist() == [1.0, 2.0] and delta == 2.0
    run = train_agent("FrozenLake-v1", "value_iteration", steps=3)
    assert run.metrics["sweeps"] == 3 and not run.metrics["converged"]


def test_value_iteration_refuses_envs_without_a_known_model():
    with pytest.raises(
        InvalidConfigError,
        match="value iteration needs Discrete states and actions, but 'CartPole-v1'",
    ):
        train_agent("CartPole-v1", "value_iteration")
    with pytest.raises(
        InvalidConfigError, match=r"`gamma` is 1.0 but value iteration needs it in \[0, 1\)"
    ):
        train_agent("FrozenLake-v1", "value_iteration", gamma=1.0)


def test_value_iteration_refuses_a_discrete_env_without_P(norender_env_id):
    with pytest.raises(
        InvalidConfigError, match=r"needs the environment's transition model \(`env.unwrapped.P`"
    ):
        train_agent(norender_env_id, "value_iteration")


def test_cli_value_iteration_saves_a_bundle_that_loads(tmp_path, capsys):
    out = tmp_path / "vi"
    code = main(
        [
            "rl",
            "train",
            "FrozenLake-v1",
            "--algo",
            "value_iteration",
            "--env-option",
            "is_slippery=false",
            "-o",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "sweeps of the known model (converged, no env steps)" in text
    assert "mean return 1.00" in text and "seeds 20000-20099" in text
    agent = load_agent(out)
    assert agent.algo == "value_iteration" and agent.evaluate(episodes=5)["mean_return"] == 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sweeps"] == 7 and metrics["protocol"]["selection"]["seeds"] is None
    assert metrics["protocol"]["report"]["seeds"] == "20000-20099"
