"""The pieces the algorithms are built from: replay buffer, reward-to-go, schedules, target updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl import env_info, make_env, train_agent
from dlpipe.rl.dqn import ReplayBuffer, train_dqn
from dlpipe.rl.reinforce import reward_to_go
from dlpipe.rl.report import moving_average
from dlpipe.rl.rollout import linear_schedule


def test_replay_buffer_is_a_ring_of_preallocated_tensors():
    buf = ReplayBuffer(4, 2, torch.Generator().manual_seed(0))
    for i in range(6):
        buf.add(torch.full((2,), float(i)), i % 2, float(i), torch.full((2,), float(i + 1)), i == 5)
    assert buf.size == 4 and buf.pos == 2
    assert buf.rewards.tolist() == [4.0, 5.0, 2.0, 3.0]  # the two oldest were overwritten
    s, a, r, s2, done = buf.sample(16)
    assert s.shape == (16, 2) and a.dtype == torch.long and ((s2 - s) == 1).all()
    assert set(r.tolist()) <= {2.0, 3.0, 4.0, 5.0} and (done == (r == 5.0).float()).all()


def test_reward_to_go_bootstraps_truncated_episodes():
    assert reward_to_go(np.array([1.0, 0.0, 2.0]), 0.5).tolist() == [1.5, 1.0, 2.0]
    assert reward_to_go(np.array([1.0]), 0.9, bootstrap=10.0).tolist() == [10.0]


def test_epsilon_schedule_and_moving_average():
    eps = linear_schedule(1.0, 0.05, 100)
    assert (
        eps(0) == 1.0
        and eps(50) == pytest.approx(0.525)
        and eps(100) == eps(10_000) == pytest.approx(0.05)
    )
    assert moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def test_soft_target_updates_and_tau_check():
    info = env_info(make_env("CartPole-v1"), "CartPole-v1")
    result = train_dqn(
        info,
        steps=300,
        seed=0,
        hidden=[8],
        learning_starts=100,
        tau=0.005,
        eval_every=0,
        double=False,
    )
    assert result.steps == 300 and np.isfinite([r["loss"] for r in result.log.rows[-3:]]).all()
    with pytest.raises(InvalidConfigError, match="`tau` is 0.0 but must be in \\(0, 1\\]"):
        train_agent("CartPole-v1", "dqn", steps=10, tau=0.0)
