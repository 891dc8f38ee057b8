"""RL tests: small real trainings on classic-control and toy-text environments (no downloads)."""

from __future__ import annotations

import gymnasium  # noqa: F401  (installed by `make test`; a missing install fails, it is not skipped)
import numpy as np
import pytest


class NoRenderEnv:
    """A two-state environment that cannot render: one step, reward 1 for action 1."""

    metadata: dict = {"render_modes": []}

    def __new__(
        cls, *args, **kwargs
    ):  # built lazily so that gymnasium is only imported when present
        import gymnasium as gym

        class _Env(gym.Env):
            metadata = {"render_modes": []}

            def __init__(self, render_mode=None):
                self.observation_space = gym.spaces.Discrete(2)
                self.action_space = gym.spaces.Discrete(2)
                self.render_mode = render_mode

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                return 0, {}

            def step(self, action):
                return 1, float(action == 1), True, False, {}

        return _Env(*args, **kwargs)


@pytest.fixture(scope="session")
def norender_env_id() -> str:
    import gymnasium as gym

    env_id = "DlpipeTestNoRender-v0"
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=NoRenderEnv, max_episode_steps=10)
    return env_id


@pytest.fixture
def frozenlake_run(tmp_path):
    from dlpipe.rl import train_agent

    return train_agent(
        "FrozenLake-v1",
        "qlearning",
        env_kwargs={"is_slippery": False},
        steps=5_000,
        seed=0,
        out=tmp_path / "fl",
        report=False,
    )


@pytest.fixture(scope="session")
def cartpole_random_mean() -> float:
    """Mean return of a uniformly random policy on CartPole-v1 (about 22)."""
    from dlpipe.rl import env_info, evaluate_policy, make_env, random_policy

    info = env_info(make_env("CartPole-v1"), "CartPole-v1")
    return float(np.mean(evaluate_policy(info, random_policy(info, 0), 20).returns))
