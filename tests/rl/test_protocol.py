"""Issue #21: the episodes that stop training and choose the kept weights never score them.

Periodic checks play the selection block (seeds 10000, 10001, ...); the reported figure is played on
the reporting block (seeds 20000, 20001, ...); metrics.json records both."""

from __future__ import annotations

import json

import pytest

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl import evaluate_policy, train_agent
from dlpipe.rl.rollout import EVAL_SEED, SELECTION_SEED


def test_selection_and_report_blocks_are_recorded_and_disjoint(frozenlake_run, tmp_path):
    m = json.loads((tmp_path / "fl" / "metrics.json").read_text())
    sel, rep = m["protocol"]["selection"], m["protocol"]["report"]
    assert (sel["seeds"], rep["seeds"]) == ("10000-10099", "20000-20099")
    assert m["selection"]["seeds"] == "10000-10099" and m["selection"]["steps"] == m["solved_at"]
    assert m["evaluation"]["seed"] == m["test"]["seed"] == EVAL_SEED
    first, last = (int(x) for x in sel["seeds"].split("-"))
    assert last < EVAL_SEED and first == SELECTION_SEED


def test_the_reported_figure_is_played_on_the_fresh_block_only():
    """Slippery FrozenLake: the outcome depends on the episode seeds, so the two blocks give different means."""
    run = train_agent(
        "FrozenLake-v1",
        "qlearning",
        steps=10_000,
        seed=0,
        eval_every=5_000,
        eval_episodes=100,
        report=False,
    )
    m, info = run.metrics, run.agent.info
    fresh = evaluate_policy(info, run.agent.act, 100, EVAL_SEED).mean_return
    seen = evaluate_policy(info, run.agent.act, 100, SELECTION_SEED).mean_return
    assert m["evaluation"]["mean_return"] == fresh and m["test"]["model"]["mean_return"] == fresh
    assert fresh != seen  # same policy, other episodes: the reported figure is not the selection's
    assert m["solved"] == (fresh >= info.reward_threshold)


def test_a_selection_block_that_would_overlap_the_report_block_is_refused():
    from dlpipe.rl import env_info, make_env, random_policy
    from dlpipe.rl.rollout import PeriodicEvaluator

    info = env_info(make_env("CartPole-v1"), "CartPole-v1")
    with pytest.raises(
        InvalidConfigError, match="the selection block holds at most 10,000 episodes"
    ):
        PeriodicEvaluator(info, random_policy(info), 100, episodes=10_001)


def test_the_cli_evaluates_on_the_reporting_block_by_default():
    import inspect

    from dlpipe.cli import rl

    assert inspect.signature(rl.evaluate).parameters["seed"].default == EVAL_SEED
    assert inspect.signature(rl.play).parameters["seed"].default == EVAL_SEED
