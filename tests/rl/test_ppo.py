"""PPO: GAE against a hand-computed case, option checks, a bundle round trip, and the acceptance claim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl import load_agent, train_agent
from dlpipe.rl.ppo import gae


def test_gae_matches_the_recursion_and_stops_at_episode_ends():
    r = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]])  # (T, E)
    v = torch.tensor([[0.5, 0.1], [1.0, 0.2], [1.5, 0.3]])
    d = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # env 0's episode ends at t = 1
    last = torch.tensor([2.0, 0.4])
    gamma, lam = 0.9, 0.8
    adv = gae(r, v, d, last, gamma, lam)
    # env 0: t = 2 bootstraps from `last`; t = 1 ends the episode; t = 0 chains into t = 1
    d2 = 3.0 + 0.9 * 2.0 - 1.5
    d1 = 2.0 - 1.0
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    assert adv[:, 0].tolist() == pytest.approx([d0 + gamma * lam * d1, d1, d2])
    # env 1: one unbroken episode, lambda = 0.8 weights the later errors
    e2 = 1.0 + 0.9 * 0.4 - 0.3
    e1 = 1.0 + 0.9 * 0.3 - 0.2
    e0 = 0.0 + 0.9 * 0.2 - 0.1
    assert adv[:, 1].tolist() == pytest.approx(
        [e0 + gamma * lam * (e1 + gamma * lam * e2), e1 + gamma * lam * e2, e2]
    )


def test_bad_ppo_options_are_named_in_one_sentence():
    with pytest.raises(
        InvalidConfigError,
        match=r"`clip_range` is 1.5 but must be in \(0, 1\), e.g. 0.2; `n_epochs` is 0 but must be a positive integer",
    ):
        train_agent("CartPole-v1", "ppo", steps=64, clip_range=1.5, n_epochs=0)
    with pytest.raises(
        InvalidConfigError, match=r"ppo has no option 'n_epoch' \(did you mean `n_epochs`\?\)"
    ):
        train_agent("CartPole-v1", "ppo", steps=64, n_epoch=3)


def test_ppo_bundle_round_trip_gives_the_same_actions(tmp_path):
    run = train_agent(
        "CartPole-v1",
        "ppo",
        steps=512,
        seed=2,
        eval_every=0,
        eval_episodes=2,
        out=tmp_path / "cp",
        report=False,
    )
    assert run.metrics["selection"] is None and run.metrics["steps"] == 512
    assert np.isfinite([r["loss"] for r in run.history.rows[-3:]]).all()
    agent = load_agent(tmp_path / "cp")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    assert agent.algo == "ppo" and np.array_equal(agent.act(x), run.agent.act(x))
    assert agent.config["clip_range"] == 0.2 and agent.config["gae_lambda"] == 0.8
    saved = [p.name for p in (tmp_path / "cp" / "bundle").iterdir() if not p.name.startswith(".")]
    assert sorted(saved) == [
        "MODEL_CARD.md",
        "manifest.json",
        "weights.safetensors",
    ]  # JSON + safetensors, no pickle


def test_ppo_learns_a_gaussian_policy_for_continuous_actions():
    run = train_agent(
        "Pendulum-v1",
        "ppo",
        steps=256,
        seed=0,
        eval_episodes=1,
        eval_every=0,
        n_envs=2,
        n_steps=64,
        batch_size=64,
    )
    actions = run.agent.act(np.zeros((5, 3), dtype=np.float32))
    assert actions.shape == (5, 1) and (np.abs(actions) <= 2.0).all()


@pytest.mark.slow
def test_ppo_solves_cartpole_on_fresh_episodes():
    """The acceptance claim itself (issue #22): greedy mean >= 475 over 100 episodes whose seeds never chose
    the weights. Seed 0 with the default settings passes its selection check at 20,480 env steps (~10 s
    of CPU); the 40,000-step budget (the claim allows 300,000) keeps a broken PPO's failure cheap too."""
    run = train_agent("CartPole-v1", "ppo", seed=0, steps=40_000)
    m = run.metrics
    assert m["protocol"]["selection"]["seeds"] == "10000-10099"
    assert m["evaluation"]["seeds"] == "20000-20099" and m["evaluation"]["episodes"] == 100
    assert m["evaluation"]["mean_return"] >= 475.0 and m["solved"]
    assert m["solved_at"] is not None and m["steps"] <= 40_000
