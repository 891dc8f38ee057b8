"""Value iteration on a known MDP: the environment's own transition model, no episodes played.

Gymnasium's toy-text environments (FrozenLake, Taxi, CliffWalking) expose their model as
``env.unwrapped.P[s][a] = [(probability, next_state, reward, terminated), ...]``. It is read once
into arrays, then the Bellman optimality update

    Q(s, a) = sum_{s'} p(s' | s, a) * (r + gamma * V(s') * (1 - terminated)),    V(s) = max_a Q(s, a)

is swept over every state until the largest change of V is below ``theta`` (or ``steps`` sweeps).
The greedy policy of the final Q-table is the agent (saved like a Q-learning agent: a Q-table).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl.agent import Agent
from dlpipe.rl.envs import EnvInfo, make_env
from dlpipe.rl.rollout import EpisodeLog, TrainResult

__all__ = ["train_value_iteration", "transition_model", "value_iteration"]


def transition_model(info: EnvInfo) -> tuple[np.ndarray, np.ndarray]:
    """The known MDP of ``info``'s environment as arrays: (continuation (S, A, S), expected reward (S, A)).

    ``continuation[s, a, s']`` is the probability of moving to s' without the episode ending there
    (an ending transition contributes its reward but no future value).
    """
    if info.obs["type"] != "discrete" or not info.discrete_actions:
        raise InvalidConfigError(
            f"value iteration needs Discrete states and actions, but {info.env_id!r} has {info.obs['type']} observations "
            f"and {info.action['type']} actions; set `algo` to 'dqn' or 'ppo'."
        )
    env = make_env(info.env_id, info.env_kwargs)
    try:
        model = getattr(env.unwrapped, "P", None)
    finally:
        env.close()
    if not isinstance(model, dict):
        raise InvalidConfigError(
            f"value iteration needs the environment's transition model (`env.unwrapped.P`, as FrozenLake, Taxi and "
            f"CliffWalking have), but {info.env_id!r} has none; set `algo` to 'qlearning', which learns from episodes."
        )
    n_s, n_a = info.obs_dim, info.n_actions
    cont = np.zeros((n_s, n_a, n_s))
    reward = np.zeros((n_s, n_a))
    for s in range(n_s):
        for a in range(n_a):
            for p, s2, r, done in model[s][a]:
                reward[s, a] += p * r
                if not done:
                    cont[s, a, s2] += p
    return cont, reward


def value_iteration(
    cont: np.ndarray, reward: np.ndarray, gamma: float, theta: float, max_sweeps: int
) -> tuple[np.ndarray, int, float]:
    """Sweep the Bellman optimality update; returns (Q (S, A), sweeps done, last largest change of V).

    Example:
        >>> cont = np.array([[[0.0, 1.0]], [[0.0, 0.0]]])  # state 0 -> state 1 -> the end
        >>> q, sweeps, delta = value_iteration(cont, np.array([[1.0], [2.0]]), 0.5, 1e-9, 100)
        >>> q.ravel().tolist(), sweeps
        ([2.0, 2.0], 3)
    """
    v = np.zeros(reward.shape[0])
    q = reward.copy()
    delta, sweeps = float("inf"), 0
    while sweeps < max_sweeps:
        q = reward + gamma * cont @ v  # (S, A, S) @ (S,) -> (S, A)
        v_new = q.max(axis=1)
        delta = float(np.abs(v_new - v).max())
        v = v_new
        sweeps += 1
        if delta < theta:
            break
    return q, sweeps, delta


def train_value_iteration(
    info: EnvInfo,
    *,
    steps: int = 1_000,
    seed: int = 0,
    gamma: float = 0.99,
    theta: float = 1e-10,
) -> TrainResult:
    """Plan with value iteration on the environment's known model; ``steps`` caps the sweeps over the states."""
    if not 0.0 <= gamma < 1.0:
        raise InvalidConfigError(
            f"`gamma` is {gamma!r} but value iteration needs it in [0, 1) to converge; pass e.g. 0.99."
        )
    if not theta > 0.0:
        raise InvalidConfigError(f"`theta` is {theta!r} but must be positive, e.g. 1e-10.")
    started = time.perf_counter()
    cont, reward = transition_model(info)
    q, sweeps, delta = value_iteration(cont, reward, gamma, theta, steps)
    config: dict[str, Any] = {"steps": steps, "seed": seed, "gamma": gamma, "theta": theta}
    agent = Agent(
        info,
        "value_iteration",
        {"family": "q-table", "n_states": info.obs_dim, "n_actions": info.n_actions},
        q_table=q,
        config=config,
    )
    return TrainResult(
        agent,
        EpisodeLog(),
        [],
        0,  # no environment steps: the model is read, not sampled
        time.perf_counter() - started,
        extra={"sweeps": sweeps, "converged": bool(delta < theta), "last_delta": delta},
    )
