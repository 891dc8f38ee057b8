"""Gymnasium environments: make one by id, read its spaces, seed it, and step several at once.

Gymnasium is an optional dependency (``pip install 'dlpipe[rl]'``), imported only when an
environment is made.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.core.runtime import require

__all__ = ["EnvInfo", "make_env", "env_info", "EnvPool", "encode_obs"]


@dataclass(frozen=True)
class EnvInfo:
    """What an agent needs to know about an environment's spaces (JSON-able, stored in the bundle).

    ``obs`` is ``{"type": "box", "shape": [...]}`` or ``{"type": "discrete", "n": N}`` (one-hot
    encoded for networks); ``action`` is ``{"type": "discrete", "n": N}`` or
    ``{"type": "box", "shape": [...], "low": [...], "high": [...]}``.
    """

    env_id: str
    env_kwargs: dict[str, Any]
    obs: dict[str, Any]
    action: dict[str, Any]
    reward_threshold: float | None = None
    max_episode_steps: int | None = None
    render_modes: list[str] = field(default_factory=list)

    @property
    def obs_dim(self) -> int:
        return (
            int(self.obs["n"])
            if self.obs["type"] == "discrete"
            else int(np.prod(self.obs["shape"]))
        )

    @property
    def discrete_actions(self) -> bool:
        return self.action["type"] == "discrete"

    @property
    def n_actions(self) -> int:
        """Number of discrete actions, or the width of a continuous action."""
        return (
            int(self.action["n"]) if self.discrete_actions else int(np.prod(self.action["shape"]))
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "obs": self.obs,
            "action": self.action,
            "reward_threshold": self.reward_threshold,
            "max_episode_steps": self.max_episode_steps,
            "render_modes": self.render_modes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvInfo:
        return cls(
            env_id=str(d["env_id"]),
            env_kwargs=dict(d.get("env_kwargs") or {}),
            obs=dict(d["obs"]),
            action=dict(d["action"]),
            reward_threshold=d.get("reward_threshold"),
            max_episode_steps=d.get("max_episode_steps"),
            render_modes=list(d.get("render_modes") or []),
        )


def _gym() -> Any:
    return require("gymnasium", extra="rl")


def make_env(
    env_id: str, env_kwargs: dict[str, Any] | None = None, *, render_mode: str | None = None
) -> Any:
    """Make a Gymnasium environment by id, with one clear error for an unknown id.

    Example:
        >>> env = make_env("CartPole-v1")
        >>> env.observation_space.shape
        (4,)
    """
    gym = _gym()
    if not isinstance(env_id, str) or env_id not in gym.registry:
        known = sorted(gym.registry.keys())
        close = difflib.get_close_matches(str(env_id), known, n=5, cutoff=0.5)
        if not close:  # "cartpole" should still find "CartPole-v1"
            low = str(env_id).lower().split("-v")[0]
            close = [k for k in known if low and low in k.lower()][:5]
        hint = (
            f"close matches: {', '.join(close)}"
            if close
            else f"{len(known)} ids are registered, e.g. CartPole-v1, FrozenLake-v1, Pendulum-v1"
        )
        raise InvalidConfigError(
            f"unknown environment id {env_id!r}; pass a registered Gymnasium id ({hint})."
        )
    kwargs = dict(env_kwargs or {})
    try:
        return gym.make(env_id, render_mode=render_mode, **kwargs)
    except TypeError as exc:
        raise InvalidConfigError(
            f"environment {env_id!r} does not accept the options {sorted(kwargs)!r} ({exc}); pass only options its constructor takes."
        ) from None


def _space_dict(space: Any, what: str, env_id: str) -> dict[str, Any]:
    spaces = _gym().spaces
    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            raise InvalidInputError(
                f"the {what} space of {env_id!r} is Discrete starting at {int(space.start)}; dlpipe's agents need Discrete spaces that start at 0."
            )
        return {"type": "discrete", "n": int(space.n)}
    if isinstance(space, spaces.Box):
        d: dict[str, Any] = {"type": "box", "shape": list(space.shape)}
        if what == "action":
            d["low"] = np.asarray(space.low, dtype=np.float64).reshape(-1).tolist()
            d["high"] = np.asarray(space.high, dtype=np.float64).reshape(-1).tolist()
        return d
    raise InvalidInputError(
        f"the {what} space of {env_id!r} is {type(space).__name__}, but dlpipe's agents read Box and Discrete spaces; wrap the environment to flatten it."
    )


def env_info(env: Any, env_id: str, env_kwargs: dict[str, Any] | None = None) -> EnvInfo:
    """Read the observation and action spaces, solve threshold and episode limit of an environment."""
    spec = getattr(env, "spec", None)
    return EnvInfo(
        env_id=env_id,
        env_kwargs=dict(env_kwargs or {}),
        obs=_space_dict(env.observation_space, "observation", env_id),
        action=_space_dict(env.action_space, "action", env_id),
        reward_threshold=None
        if spec is None or spec.reward_threshold is None
        else float(spec.reward_threshold),
        max_episode_steps=None
        if spec is None or spec.max_episode_steps is None
        else int(spec.max_episode_steps),
        render_modes=list(env.metadata.get("render_modes", []) or []),
    )


def encode_obs(obs: Any, info: EnvInfo) -> np.ndarray:
    """One observation or a stack of them as float32 network input: (D,) or (B, D); one-hot for Discrete."""
    if info.obs["type"] == "discrete":
        idx = np.asarray(obs, dtype=np.int64)
        return np.eye(info.obs_dim, dtype=np.float32)[idx]
    arr = np.asarray(obs, dtype=np.float32)
    return arr.reshape(-1) if arr.ndim <= len(info.obs["shape"]) else arr.reshape(arr.shape[0], -1)


class EnvPool:
    """``n`` copies of one environment stepped together, each reset on its own when its episode ends.

    Episode ``k`` of copy ``i`` is seeded from ``seed + i`` once; later resets continue each copy's
    own generator, so a pool is reproducible. ``step`` returns the next observations (after any
    reset), rewards, ``terminated``, ``truncated`` and the final observations of ended episodes
    (for bootstrapping truncated ones).
    """

    def __init__(
        self, env_id: str, n: int, seed: int, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.envs = [make_env(env_id, env_kwargs) for _ in range(n)]
        self.info = env_info(self.envs[0], env_id, env_kwargs)
        self.obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)]
        for i, env in enumerate(self.envs):
            env.action_space.seed(seed + i)
        self.episode_return = np.zeros(n)
        self.episode_length = np.zeros(n, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.envs)

    def observations(self) -> np.ndarray:
        return np.stack([encode_obs(o, self.info) for o in self.obs])

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[float, int]]]:
        """Step every copy; returns (obs, rewards, terminated, truncated, final_obs, finished episodes)."""
        n = len(self.envs)
        rewards = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        final = []
        finished: list[tuple[float, int]] = []
        for i, env in enumerate(self.envs):
            obs, r, term, trunc, _ = env.step(actions[i])
            rewards[i], terminated[i], truncated[i] = r, term, trunc
            final.append(encode_obs(obs, self.info))
            self.episode_return[i] += r
            self.episode_length[i] += 1
            if term or trunc:
                finished.append((float(self.episode_return[i]), int(self.episode_length[i])))
                self.episode_return[i], self.episode_length[i] = 0.0, 0
                obs, _ = env.reset()
            self.obs[i] = obs
        return self.observations(), rewards, terminated, truncated, np.stack(final), finished

    def close(self) -> None:
        for env in self.envs:
            env.close()
