"""Proximal policy optimisation (PPO, Schulman et al. 2017) with generalised advantage estimation.

Each iteration: ``n_envs`` environments stepped together for ``n_steps`` steps; advantages by GAE,

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   return target R_t = A_t + V(s_t)

then ``n_epochs`` passes over the rollout in shuffled minibatches of ``batch_size``, minimising

    -min(rho * A, clip(rho, 1 - clip_range, 1 + clip_range) * A) + value_coef * (V - R)^2 - entropy_coef * H(pi)

with rho = pi(a|s) / pi_old(a|s). The learning rate and clip range fall linearly to 0 over ``steps``
(``anneal=True``). A time limit is not a terminal state: a truncated episode's reward gets
gamma * V(final state), as in A2C.

Defaults (8 x 32-step rollouts, one minibatch of 256, 20 epochs, learning rate 1e-3, gamma 0.98,
lambda 0.8, no entropy bonus: the RL Zoo's CartPole-v1 settings) solve CartPole-v1; the figures
are in benchmarks/RESULTS.md (`benchmarks/measure_rl.py --algos ppo`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl.actor_critic import ActorCriticSetup
from dlpipe.rl.envs import EnvInfo
from dlpipe.rl.networks import ActorCritic
from dlpipe.rl.rollout import TrainResult

__all__ = ["train_ppo", "gae"]


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimates of a rollout: inputs (T, E), ``last_value`` (E,) -> (T, E).

    ``dones[t]`` marks an episode that ended at step t (so nothing of step t + 1 flows back into it).

    Example:
        >>> r, v, d = torch.ones(3, 1), torch.zeros(3, 1), torch.tensor([[0.0], [1.0], [0.0]])
        >>> gae(r, v, d, torch.zeros(1), gamma=0.5, lam=1.0).squeeze(1).tolist()
        [1.5, 1.0, 1.0]
    """
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    next_value = last_value
    for t in range(len(rewards) - 1, -1, -1):
        keep = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * keep - values[t]
        last = delta + gamma * lam * keep * last
        adv[t] = last
        next_value = values[t]
    return adv


def _act(
    model: ActorCritic, x: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled actions and their log-probabilities for a batch (E, D).

    Discrete policies sample with ``multinomial`` on the softmax: a third of the cost of building a
    ``torch.distributions.Categorical`` (118 vs 536 us per 8-env step, measured), which is most of
    a rollout step on CartPole.
    """
    if model.continuous:
        dist = model.distribution(x)
        a = dist.sample()  # (E, A)
        return a, dist.log_prob(a).sum(-1)
    logp_all = torch.log_softmax(model.actor(x), dim=-1)  # (E, A)
    a = torch.multinomial(logp_all.exp(), 1, generator=generator)  # (E, 1)
    return a.squeeze(1), logp_all.gather(1, a).squeeze(1)


def _log_prob_entropy(
    model: ActorCritic, x: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if model.continuous:
        dist = model.distribution(x)
        return dist.log_prob(a).sum(-1), dist.entropy().sum(-1)
    logp_all = torch.log_softmax(model.actor(x), dim=-1)  # (B, A)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp_all.gather(1, a[:, None]).squeeze(1), entropy


def train_ppo(
    info: EnvInfo,
    *,
    steps: int = 300_000,
    seed: int = 0,
    hidden: list[int] | tuple[int, ...] = (64, 64),
    learning_rate: float = 1e-3,
    gamma: float = 0.98,
    gae_lambda: float = 0.8,
    n_envs: int = 8,
    n_steps: int = 32,
    n_epochs: int = 20,
    batch_size: int = 256,
    clip_range: float = 0.2,
    entropy_coef: float = 0.0,
    value_coef: float = 0.5,
    max_grad_norm: float = 0.5,
    normalize_advantage: bool = True,
    anneal: bool = True,
    eval_every: int = 10_000,
    eval_episodes: int = 100,
    stop_when_solved: bool = True,
) -> TrainResult:
    """Train an actor-critic with PPO's clipped objective; ``anneal`` decays the learning rate and clip range to 0."""
    bad = []
    if not 0.0 < clip_range < 1.0:
        bad.append(f"`clip_range` is {clip_range!r} but must be in (0, 1), e.g. 0.2")
    if not 0.0 <= gae_lambda <= 1.0:
        bad.append(f"`gae_lambda` is {gae_lambda!r} but must be in [0, 1], e.g. 0.95")
    for name, value in (
        ("n_envs", n_envs),
        ("n_steps", n_steps),
        ("n_epochs", n_epochs),
        ("batch_size", batch_size),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            bad.append(f"`{name}` is {value!r} but must be a positive integer")
    if bad:
        raise InvalidConfigError("; ".join(bad) + "; fix the PPO option(s) named.")
    started = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    config: dict[str, Any] = {k: v for k, v in locals().items() if k in _CONFIG_KEYS}
    config["hidden"] = list(hidden)
    continuous = not info.discrete_actions
    run = ActorCriticSetup.create(
        info,
        "ppo",
        config,
        seed=seed,
        n_envs=n_envs,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
    )
    model, optimizers, evaluator, log, pool = (
        run.model,
        run.optimizers,
        run.evaluator,
        run.log,
        run.pool,
    )
    n = n_envs * n_steps
    obs_buf = torch.zeros((n_steps, n_envs, info.obs_dim))
    act_buf = (
        torch.zeros((n_steps, n_envs, info.n_actions))
        if continuous
        else torch.zeros((n_steps, n_envs), dtype=torch.long)
    )
    logp_buf = torch.zeros((n_steps, n_envs))
    val_buf = torch.zeros((n_steps, n_envs))
    rew_buf = torch.zeros((n_steps, n_envs))
    done_buf = torch.zeros((n_steps, n_envs))
    x = torch.from_numpy(pool.observations())
    t, last_loss = 0, float("nan")
    while t < steps:
        fraction = max(0.0, 1.0 - t / steps) if anneal else 1.0
        for opt in optimizers:
            opt.lr = learning_rate * fraction
        clip = clip_range * fraction
        ended = False
        for k in range(n_steps):
            with torch.no_grad():
                a, logp = _act(model, x, generator)
                v = model.value(x)  # (E,)
            a_np = a.numpy()
            env_a = (
                np.clip(a_np, run.low, run.high).reshape(n_envs, *info.action["shape"])
                if continuous
                else a_np
            )
            x_next, r, term, trunc, final, finished = pool.step(env_a)
            cut = np.flatnonzero(trunc & ~term)
            if len(
                cut
            ):  # a time limit is not a terminal state: fold V(final state) into the reward
                with torch.no_grad():
                    r[cut] += gamma * model.value(torch.from_numpy(final[cut])).numpy()
            obs_buf[k], act_buf[k], logp_buf[k], val_buf[k] = x, a, logp, v
            rew_buf[k] = torch.from_numpy(r)
            done_buf[k] = torch.from_numpy((term | trunc).astype(np.float32))
            x = torch.from_numpy(x_next)
            t += n_envs
            for ret, length in finished:
                log.add(ret, length, t, loss=last_loss)
                ended = True
        with torch.no_grad():
            adv = gae(rew_buf, val_buf, done_buf, model.value(x), gamma, gae_lambda)  # (T, E)
        returns = (adv + val_buf).reshape(n)
        loss = _update(
            model,
            optimizers,
            obs_buf.reshape(n, -1),
            act_buf.reshape(n, -1) if continuous else act_buf.reshape(n),
            logp_buf.reshape(n),
            adv.reshape(n),
            returns,
            generator,
            n_epochs=n_epochs,
            batch_size=min(batch_size, n),
            clip=clip,
            entropy_coef=entropy_coef,
            value_coef=value_coef,
            max_grad_norm=max_grad_norm,
            normalize_advantage=normalize_advantage,
        )
        if ended:
            last_loss = float(loss)  # a sync only when an episode ended in this rollout
        if evaluator.due(t) and evaluator.evaluate(t, model.state_dict) and stop_when_solved:
            break
    pool.close()
    from dlpipe.rl.dqn import _keep_best

    _keep_best(evaluator, model, t)
    return TrainResult.finished(run.agent, log, evaluator, t, started)


def _update(
    model: ActorCritic,
    optimizers: list[Any],
    obs: torch.Tensor,
    actions: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    generator: torch.Generator,
    *,
    n_epochs: int,
    batch_size: int,
    clip: float,
    entropy_coef: float,
    value_coef: float,
    max_grad_norm: float,
    normalize_advantage: bool,
) -> torch.Tensor:
    """``n_epochs`` passes of clipped-objective minibatch steps; returns the last minibatch's loss (a device scalar)."""
    n = len(obs)
    loss = torch.zeros(())
    for _ in range(n_epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            logp, entropy = _log_prob_entropy(model, obs[idx], actions[idx])
            adv = advantages[idx]
            if normalize_advantage and len(idx) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            ratio = (logp - old_logp[idx]).exp()
            policy_loss = -torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()
            value_loss = F.mse_loss(model.value(obs[idx]), returns[idx])
            loss = policy_loss + value_coef * value_loss - entropy_coef * entropy.mean()
            for opt in optimizers:
                opt.zero_grad()
            loss.backward()
            for opt in optimizers:
                opt.grad_norm_clip_(max_grad_norm)
                opt.step()
    return loss.detach()


_CONFIG_KEYS = {
    "steps",
    "seed",
    "learning_rate",
    "gamma",
    "gae_lambda",
    "n_envs",
    "n_steps",
    "n_epochs",
    "batch_size",
    "clip_range",
    "entropy_coef",
    "value_coef",
    "max_grad_norm",
    "normalize_advantage",
    "anneal",
    "eval_every",
    "eval_episodes",
    "stop_when_solved",
}
