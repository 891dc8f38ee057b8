"""REINFORCE with a learned baseline: whole episodes, reward-to-go returns, and the policy-gradient
loss -log pi(a|s) * (G_t - V(s_t)) with the advantages normalised per update.

Several environments run side by side (one batched forward per step); an update uses the
``episodes_per_update`` episodes that finished first.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from dlpipe.rl.actor_critic import ActorCriticSetup
from dlpipe.rl.envs import EnvInfo
from dlpipe.rl.networks import ActorCritic
from dlpipe.rl.rollout import TrainResult
from dlpipe.training.optim import FlatOptimizer

__all__ = ["train_reinforce", "reward_to_go"]


def reward_to_go(rewards: np.ndarray, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1}, with G_T = ``bootstrap`` (the value of a truncated episode's last state).

    Example:
        >>> reward_to_go(np.array([1.0, 1.0, 1.0]), 0.5).tolist()
        [1.75, 1.5, 1.0]
    """
    out = np.empty(len(rewards), dtype=np.float64)
    g = bootstrap
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        out[t] = g
    return out


def train_reinforce(
    info: EnvInfo,
    *,
    steps: int = 300_000,
    seed: int = 0,
    hidden: list[int] | tuple[int, ...] = (64, 64),
    learning_rate: float = 1e-3,
    gamma: float = 0.99,
    n_envs: int = 8,
    episodes_per_update: int = 8,
    entropy_coef: float = 0.0,
    value_coef: float = 0.5,
    max_grad_norm: float = 1.0,
    eval_every: int = 10_000,
    eval_episodes: int = 100,
    stop_when_solved: bool = True,
) -> TrainResult:
    """Train an actor-critic policy with REINFORCE (the critic is only the baseline)."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    config: dict[str, Any] = {k: v for k, v in locals().items() if k in _CONFIG_KEYS}
    config["hidden"] = list(hidden)
    run = ActorCriticSetup.create(
        info,
        "reinforce",
        config,
        seed=seed,
        n_envs=n_envs,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
    )
    model, optimizers, agent, evaluator, log, pool, low, high = (
        run.model,
        run.optimizers,
        run.agent,
        run.evaluator,
        run.log,
        run.pool,
        run.low,
        run.high,
    )
    # Per running copy: its current episode's observations, actions and rewards.
    traj: list[dict[str, list[Any]]] = [{"x": [], "a": [], "r": []} for _ in range(n_envs)]
    done_eps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
    x = pool.observations()
    t, last_loss = 0, float("nan")
    while t < steps:
        with torch.no_grad():
            actions = model.distribution(torch.from_numpy(x)).sample().numpy()
        env_actions = (
            np.clip(actions, low, high).reshape(len(x), *info.action["shape"])
            if not info.discrete_actions
            else actions
        )
        x_next, rewards, term, trunc, final, finished = pool.step(env_actions)
        t += n_envs
        for i in range(n_envs):
            traj[i]["x"].append(x[i])
            traj[i]["a"].append(actions[i])
            traj[i]["r"].append(rewards[i])
            if term[i] or trunc[i]:
                done_eps.append(
                    (
                        np.stack(traj[i]["x"]),
                        np.stack(traj[i]["a"]),
                        np.asarray(traj[i]["r"]),
                        final[i] if trunc[i] and not term[i] else None,
                    )
                )
                traj[i] = {"x": [], "a": [], "r": []}
        for ret, length in finished:
            log.add(ret, length, t, loss=last_loss)
        x = x_next
        if len(done_eps) >= episodes_per_update:
            last_loss = _update(
                model,
                optimizers,
                done_eps[:episodes_per_update],
                gamma,
                entropy_coef,
                value_coef,
                max_grad_norm,
            )
            del done_eps[:episodes_per_update]
        if evaluator.due(t) and evaluator.evaluate(t, model.state_dict) and stop_when_solved:
            break
    pool.close()
    from dlpipe.rl.dqn import _keep_best

    _keep_best(evaluator, model, t)
    return TrainResult.finished(agent, log, evaluator, t, started)


def _update(
    model: ActorCritic,
    optimizers: list[FlatOptimizer],
    episodes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]],
    gamma: float,
    entropy_coef: float,
    value_coef: float,
    max_grad_norm: float,
) -> float:
    finals = [e[3] for e in episodes if e[3] is not None]
    boot: list[float] = []
    if finals:
        with torch.no_grad():
            boot = model.value(torch.from_numpy(np.stack(finals))).tolist()
    returns = []
    for _, _, rs, fin in episodes:
        returns.append(reward_to_go(rs, gamma, boot.pop(0) if fin is not None else 0.0))
    x = torch.from_numpy(
        np.concatenate([e[0] for e in episodes])
    )  # (N, D): every step of the batch
    a = torch.from_numpy(np.concatenate([e[1] for e in episodes]))
    g = torch.from_numpy(np.concatenate(returns)).float()  # (N,)
    dist = model.distribution(x)
    logp = dist.log_prob(a)
    entropy = dist.entropy()
    if model.continuous:
        logp, entropy = logp.sum(-1), entropy.sum(-1)
    v = model.value(x)
    adv = g - v.detach()
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    loss = -(logp * adv).mean() + value_coef * F.mse_loss(v, g) - entropy_coef * entropy.mean()
    for opt in optimizers:
        opt.zero_grad()
    loss.backward()
    for opt in optimizers:
        opt.grad_norm_clip_(max_grad_norm)
        opt.step()
    return float(loss.detach())  # one sync per update (several episodes)


_CONFIG_KEYS = {
    "steps",
    "seed",
    "learning_rate",
    "gamma",
    "n_envs",
    "episodes_per_update",
    "entropy_coef",
    "value_coef",
    "max_grad_norm",
    "eval_every",
    "eval_episodes",
    "stop_when_solved",
}
