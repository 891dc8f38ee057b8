"""Small real trainings: each algorithm's loop learns (3x a random policy's return) within a few thousand
steps. These are smoke checks of the loops, not the solve claim: CartPole-v1 solved (greedy mean >= 475
over 100 episodes never used to select) is asserted by tests/rl/test_ppo.py::test_ppo_solves_cartpole_on_fresh_episodes
(and measured for every algorithm by benchmarks/measure_rl.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl import train_agent


def test_qlearning_solves_non_slippery_frozenlake(frozenlake_run):
    m = frozenlake_run.metrics
    assert (
        m["evaluation"]["mean_return"] == 1.0 and m["evaluation"]["episodes"] == 100
    )  # success rate 1.0
    assert m["random"]["mean_return"] < 0.1
    assert m["solved"] and m["solved_at"] is not None and m["steps"] <= 5_000
    assert frozenlake_run.agent.q_table.shape == (16, 4)


def test_qlearning_refuses_continuous_observations():
    with pytest.raises(InvalidConfigError, match="tabular Q-learning needs Discrete observations"):
        train_agent("CartPole-v1", "qlearning", steps=10)


def test_dqn_refuses_continuous_actions():
    with pytest.raises(
        InvalidConfigError,
        match=r"'Pendulum-v1' has a continuous \(Box\) action space; set `algo` to 'a2c'",
    ):
        train_agent("Pendulum-v1", "dqn", steps=10)


def test_unknown_algorithm_and_option_are_named():
    with pytest.raises(InvalidConfigError, match="`algo` is 'dqm' \\(did you mean `dqn`\\?\\)"):
        train_agent("CartPole-v1", "dqm")  # type: ignore[arg-type]
    with pytest.raises(
        InvalidConfigError,
        match="dqn has no option 'learning_rat' \\(did you mean `learning_rate`\\?\\)",
    ):
        train_agent("CartPole-v1", "dqn", learning_rat=1e-3)
    with pytest.raises(InvalidConfigError, match="`steps` is 0"):
        train_agent("CartPole-v1", "dqn", steps=0)


@pytest.mark.slow
def test_dqn_improves_on_cartpole(cartpole_random_mean):
    run = train_agent(
        "CartPole-v1",
        "dqn",
        steps=4_000,
        seed=0,
        eval_episodes=20,
        hidden=[64, 64],
        learning_starts=500,
        train_every=2,
        target_update=250,
        exploration_fraction=0.3,
        eval_every=2_000,
    )
    rows = run.history.rows
    assert {"episode", "return", "length", "steps", "loss", "epsilon"} <= set(rows[-1])
    assert rows[-1]["epsilon"] == pytest.approx(0.05)
    assert np.isfinite(rows[-1]["loss"])
    assert run.metrics["evaluation"]["mean_return"] > 3 * cartpole_random_mean


@pytest.mark.slow
def test_reinforce_improves_on_cartpole(cartpole_random_mean):
    run = train_agent(
        "CartPole-v1", "reinforce", steps=10_000, seed=0, eval_episodes=20, eval_every=5_000
    )
    assert run.metrics["evaluation"]["mean_return"] > 3 * cartpole_random_mean
    first, last = run.history.rows[:20], run.history.rows[-20:]
    assert np.mean([r["return"] for r in last]) > np.mean([r["return"] for r in first])


@pytest.mark.slow
def test_a2c_improves_on_cartpole(cartpole_random_mean):
    run = train_agent(
        "CartPole-v1", "a2c", steps=10_000, seed=0, eval_episodes=20, eval_every=5_000
    )
    assert run.metrics["evaluation"]["mean_return"] > 3 * cartpole_random_mean


def test_a2c_learns_a_gaussian_policy_for_continuous_actions():
    run = train_agent(
        "Pendulum-v1", "a2c", steps=800, seed=0, eval_episodes=2, eval_every=0, n_envs=4
    )
    actions = run.agent.act(np.zeros((5, 3), dtype=np.float32))
    assert actions.shape == (5, 1) and (np.abs(actions) <= 2.0).all()
    assert run.agent.model.continuous and run.metrics["evaluation"]["episodes"] == 2


def test_same_seed_same_training():
    a = train_agent(
        "FrozenLake-v1",
        "qlearning",
        env_kwargs={"is_slippery": True},
        steps=1_500,
        seed=3,
        eval_every=0,
        eval_episodes=5,
    )
    b = train_agent(
        "FrozenLake-v1",
        "qlearning",
        env_kwargs={"is_slippery": True},
        steps=1_500,
        seed=3,
        eval_every=0,
        eval_episodes=5,
    )
    assert np.array_equal(a.agent.q_table, b.agent.q_table)
    assert [r["return"] for r in a.history.rows] == [r["return"] for r in b.history.rows]
