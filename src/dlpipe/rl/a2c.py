"""Advantage actor-critic (A2C): ``n_envs`` environments stepped together for ``n_steps`` steps,
n-step bootstrapped returns R_t = r_t + gamma * R_{t+1} (R_n = V(s_n)), the loss
-log pi(a|s) * (R - V(s)) + value_coef * (R - V(s))^2 - entropy_coef * H(pi), one update per rollout.

Discrete actions use a categorical policy; continuous (Box) actions a Gaussian with a learned
log standard deviation, the sampled action clipped to the bounds only when sent to the environment.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from dlpipe.rl.actor_critic import ActorCriticSetup
from dlpipe.rl.envs import EnvInfo
from dlpipe.rl.rollout import TrainResult

__all__ = ["train_a2c"]


def train_a2c(
    info: EnvInfo,
    *,
    steps: int = 300_000,
    seed: int = 0,
    hidden: list[int] | tuple[int, ...] = (64, 64),
    learning_rate: float = 1e-3,
    gamma: float = 0.99,
    n_envs: int = 8,
    n_steps: int = 8,
    entropy_coef: float = 0.0,
    value_coef: float = 0.5,
    max_grad_norm: float = 0.5,
    normalize_advantage: bool = True,
    eval_every: int = 10_000,
    eval_episodes: int = 100,
    stop_when_solved: bool = True,
) -> TrainResult:
    """Train an actor-critic with synchronous n-step advantage updates."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    config: dict[str, Any] = {k: v for k, v in locals().items() if k in _CONFIG_KEYS}
    config["hidden"] = list(hidden)
    continuous = not info.discrete_actions
    run = ActorCriticSetup.create(
        info,
        "a2c",
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
    x = torch.from_numpy(pool.observations())
    t, last_loss = 0, float("nan")
    while t < steps:
        xs, acts, rews, dones = [], [], [], []
        ended = False
        for _ in range(n_steps):
            with torch.no_grad():
                a = model.distribution(x).sample()  # (E,) or (E, A)
            a_np = a.numpy()
            env_a = (
                np.clip(a_np, low, high).reshape(n_envs, *info.action["shape"])
                if continuous
                else a_np
            )
            x_next, r, term, trunc, final, finished = pool.step(env_a)
            if (
                trunc.any()
            ):  # a time limit is not a terminal state: fold V(final state) into the reward
                cut = np.flatnonzero(trunc & ~term)
                if len(cut):
                    with torch.no_grad():
                        r[cut] += gamma * model.value(torch.from_numpy(final[cut])).numpy()
            xs.append(x)
            acts.append(a)
            rews.append(torch.from_numpy(r))
            dones.append(torch.from_numpy((term | trunc).astype(np.float32)))
            x = torch.from_numpy(x_next)
            t += n_envs
            for ret, length in finished:
                log.add(ret, length, t, loss=last_loss)
                ended = True
        with torch.no_grad():
            ret_t = model.value(x)  # (E,) bootstrap from the state after the rollout
        returns = []
        for r_k, d_k in zip(reversed(rews), reversed(dones)):
            ret_t = r_k + gamma * ret_t * (1.0 - d_k)
            returns.append(ret_t)
        returns.reverse()
        obs_b = torch.cat(xs)  # (n_steps * E, D)
        act_b = torch.cat(acts)
        ret_b = torch.cat(returns)
        dist = model.distribution(obs_b)
        logp, entropy = dist.log_prob(act_b), dist.entropy()
        if continuous:
            logp, entropy = logp.sum(-1), entropy.sum(-1)
        v = model.value(obs_b)
        adv = ret_b - v.detach()
        if normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        loss = (
            -(logp * adv).mean() + value_coef * F.mse_loss(v, ret_b) - entropy_coef * entropy.mean()
        )
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in optimizers:
            opt.grad_norm_clip_(max_grad_norm)
            opt.step()
        if ended:
            last_loss = float(loss.detach())  # a sync only when an episode ended in this rollout
        if evaluator.due(t) and evaluator.evaluate(t, model.state_dict) and stop_when_solved:
            break
    pool.close()
    from dlpipe.rl.dqn import _keep_best

    _keep_best(evaluator, model, t)
    return TrainResult.finished(agent, log, evaluator, t, started)


_CONFIG_KEYS = {
    "steps",
    "seed",
    "learning_rate",
    "gamma",
    "n_envs",
    "n_steps",
    "entropy_coef",
    "value_coef",
    "max_grad_norm",
    "normalize_advantage",
    "eval_every",
    "eval_episodes",
    "stop_when_solved",
}
