"""Tabular Q-learning: an epsilon-greedy behaviour policy and the one-step TD update

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_a' Q(s', a') * (1 - terminated) - Q(s, a))

for environments whose observations and actions are both Discrete (FrozenLake, Taxi, CliffWalking).
"""

from __future__ import annotations

import time

import numpy as np

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl.agent import Agent
from dlpipe.rl.envs import EnvInfo, make_env
from dlpipe.rl.rollout import EpisodeLog, PeriodicEvaluator, TrainResult, linear_schedule

__all__ = ["train_qlearning"]


def train_qlearning(
    info: EnvInfo,
    *,
    steps: int = 50_000,
    seed: int = 0,
    learning_rate: float = 0.1,
    gamma: float = 0.99,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    exploration_fraction: float = 0.5,
    eval_every: int = 2_000,
    eval_episodes: int = 100,
    stop_when_solved: bool = True,
) -> TrainResult:
    """Learn a Q-table; ``learning_rate`` is the TD step size alpha."""
    if info.obs["type"] != "discrete" or not info.discrete_actions:
        raise InvalidConfigError(
            f"tabular Q-learning needs Discrete observations and actions, but {info.env_id!r} has {info.obs['type']} observations and {info.action['type']} actions; set `algo` to 'dqn', 'a2c' or 'reinforce'."
        )
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_states, n_actions = info.obs_dim, info.n_actions
    q = np.zeros((n_states, n_actions))
    epsilon = linear_schedule(epsilon_start, epsilon_end, int(exploration_fraction * steps))
    config = {
        "steps": steps,
        "seed": seed,
        "learning_rate": learning_rate,
        "gamma": gamma,
        "epsilon_start": epsilon_start,
        "epsilon_end": epsilon_end,
        "exploration_fraction": exploration_fraction,
        "eval_every": eval_every,
        "eval_episodes": eval_episodes,
        "stop_when_solved": stop_when_solved,
    }
    agent = Agent(
        info,
        "qlearning",
        {"family": "q-table", "n_states": n_states, "n_actions": n_actions},
        q_table=q,
        config=config,
    )
    evaluator = PeriodicEvaluator(
        info, agent.act, eval_every, episodes=eval_episodes, threshold=info.reward_threshold
    )
    log = EpisodeLog()
    env = make_env(info.env_id, info.env_kwargs)
    s, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    ep_return, ep_len, t = 0.0, 0, 0
    for t in range(1, steps + 1):
        eps = epsilon(t)
        row = q[s]
        if rng.random() < eps:
            a = int(rng.integers(n_actions))
        else:  # ties broken at random, or an all-zero table would always pick action 0
            a = int(rng.choice(np.flatnonzero(row == row.max())))
        s2, r, term, trunc, _ = env.step(a)
        target = r + (0.0 if term else gamma * q[s2].max())
        q[s, a] += learning_rate * (target - q[s, a])
        ep_return += float(r)
        ep_len += 1
        if term or trunc:
            log.add(ep_return, ep_len, t, epsilon=round(eps, 4))
            s, _ = env.reset()
            ep_return, ep_len = 0.0, 0
        else:
            s = s2
        if evaluator.due(t) and evaluator.evaluate(t, lambda: {"q": q.copy()}) and stop_when_solved:
            break
    env.close()
    if evaluator.every and evaluator.best_state is not None and evaluator.solved_at is None:
        evaluator.evaluate(t, lambda: {"q": q.copy()})
    if evaluator.best_state is not None:
        q[:] = evaluator.best_state["q"]
    return TrainResult.finished(agent, log, evaluator, t, started)
