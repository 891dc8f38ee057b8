"""Deep Q-learning (DQN): a replay buffer of preallocated tensors, a target network (hard copies
every ``target_update`` steps, or Polyak averaging with ``tau`` < 1), an epsilon schedule, the Huber
loss, and the double-DQN target (the online network picks a', the target network values it).

Defaults are settings known to solve CartPole-v1 within 100,000 steps.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch.nn import functional as F

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl.agent import Agent
from dlpipe.rl.envs import EnvInfo, encode_obs, make_env
from dlpipe.rl.networks import QNetwork
from dlpipe.rl.rollout import EpisodeLog, PeriodicEvaluator, TrainResult, linear_schedule
from dlpipe.training.optim import FlatOptimizer

__all__ = ["train_dqn", "ReplayBuffer"]


class ReplayBuffer:
    """A ring buffer of transitions held in preallocated tensors; sampling is one index gather."""

    def __init__(self, capacity: int, obs_dim: int, generator: torch.Generator) -> None:
        self.obs = torch.zeros((capacity, obs_dim))
        self.next_obs = torch.zeros((capacity, obs_dim))
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity)
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.generator = generator

    def add(
        self,
        obs: torch.Tensor,
        action: int,
        reward: float,
        next_obs: torch.Tensor,
        terminated: bool,
    ) -> None:
        i = self.pos
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(self.size, (batch_size,), generator=self.generator)
        return (
            self.obs[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_obs[idx],
            self.terminated[idx],
        )


def train_dqn(
    info: EnvInfo,
    *,
    steps: int = 100_000,
    seed: int = 0,
    hidden: list[int] | tuple[int, ...] = (128, 128),
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    buffer_size: int = 50_000,
    learning_starts: int = 1_000,
    gamma: float = 0.99,
    train_every: int = 1,
    target_update: int = 500,
    tau: float = 1.0,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    exploration_fraction: float = 0.1,
    double: bool = True,
    max_grad_norm: float = 10.0,
    eval_every: int = 5_000,
    eval_episodes: int = 100,
    stop_when_solved: bool = True,
) -> TrainResult:
    """Train a Q-network with DQN; ``tau`` = 1 copies the weights every ``target_update`` steps, ``tau`` < 1 averages every step."""
    if not info.discrete_actions:
        raise InvalidConfigError(
            f"DQN picks the action with the highest value among a finite set, but {info.env_id!r} has a continuous (Box) action space; set `algo` to 'a2c', which learns a Gaussian policy."
        )
    if not 0.0 < tau <= 1.0:
        raise InvalidConfigError(
            f"`tau` is {tau!r} but must be in (0, 1]; pass 1.0 for hard target updates or e.g. 0.005 for soft ones."
        )
    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    q = QNetwork(info.obs_dim, info.n_actions, list(hidden))
    # The engine's fused Adam over one flat buffer (torch.optim would import torch._dynamo: seconds).
    optimizer = FlatOptimizer(q.parameters(), "adam", learning_rate=learning_rate)
    target = copy.deepcopy(q).requires_grad_(False)
    buffer = ReplayBuffer(buffer_size, info.obs_dim, torch.Generator().manual_seed(seed))
    epsilon = linear_schedule(epsilon_start, epsilon_end, int(exploration_fraction * steps))
    config = {k: v for k, v in locals().items() if k in _CONFIG_KEYS}
    config["hidden"] = list(hidden)
    spec = {
        "family": "rl-q",
        "obs_dim": info.obs_dim,
        "n_actions": info.n_actions,
        "hidden": list(hidden),
    }
    agent = Agent(info, "dqn", spec, model=q, config=config)
    evaluator = PeriodicEvaluator(
        info, agent.act, eval_every, episodes=eval_episodes, threshold=info.reward_threshold
    )
    log = EpisodeLog()

    env = make_env(info.env_id, info.env_kwargs)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    x = torch.from_numpy(encode_obs(obs, info))
    loss_sum, n_updates = torch.zeros(()), 0
    ep_return, ep_len, t = 0.0, 0, 0
    for t in range(1, steps + 1):
        eps = epsilon(t)
        if rng.random() < eps:
            action = int(rng.integers(info.n_actions))
        else:
            with torch.no_grad():
                action = int(q(x[None]).argmax())  # sync: the environment needs a Python int
        obs, reward, term, trunc, _ = env.step(action)
        x_next = torch.from_numpy(encode_obs(obs, info))
        # Truncation (a time limit) is not a terminal state: the target still bootstraps from x_next.
        buffer.add(x, action, float(reward), x_next, term)
        ep_return += float(reward)
        ep_len += 1
        if term or trunc:
            loss = (
                (loss_sum / n_updates).item() if n_updates else float("nan")
            )  # one sync per episode
            log.add(ep_return, ep_len, t, loss=loss, epsilon=round(eps, 4))
            loss_sum, n_updates = torch.zeros(()), 0
            obs, _ = env.reset()
            x = torch.from_numpy(encode_obs(obs, info))
            ep_return, ep_len = 0.0, 0
        else:
            x = x_next

        if t >= learning_starts and t % train_every == 0:
            s, a, r, s2, done = buffer.sample(batch_size)  # (B, D), (B,), (B,), (B, D), (B,)
            with torch.no_grad():
                if double:
                    a2 = q(s2).argmax(dim=1, keepdim=True)
                    q_next = target(s2).gather(1, a2).squeeze(1)
                else:
                    q_next = target(s2).max(dim=1).values
                y = r + gamma * (1.0 - done) * q_next
            q_sa = q(s).gather(1, a[:, None]).squeeze(1)
            loss_t = F.smooth_l1_loss(q_sa, y)
            optimizer.zero_grad()
            loss_t.backward()
            optimizer.grad_norm_clip_(max_grad_norm)  # no host sync
            optimizer.step()
            loss_sum += loss_t.detach()
            n_updates += 1
            if tau < 1.0:
                with torch.no_grad():
                    torch._foreach_lerp_(list(target.parameters()), list(q.parameters()), tau)
        if tau >= 1.0 and t % target_update == 0:
            target.load_state_dict(q.state_dict())
        if evaluator.due(t) and evaluator.evaluate(t, q.state_dict) and stop_when_solved:
            break
    env.close()
    _keep_best(evaluator, q, t)
    return TrainResult.finished(agent, log, evaluator, t, started)


def _keep_best(evaluator: PeriodicEvaluator, model: torch.nn.Module, t: int) -> None:
    """Score the final weights too, then restore the best weights any evaluation saw."""
    if (
        evaluator.every
        and evaluator.solved_at is None
        and (not evaluator.records or evaluator.records[-1]["steps"] != t)
    ):
        evaluator.evaluate(t, model.state_dict)
    if evaluator.best_state is not None:
        model.load_state_dict(evaluator.best_state)
    model.eval()


_CONFIG_KEYS = {
    "steps",
    "seed",
    "learning_rate",
    "batch_size",
    "buffer_size",
    "learning_starts",
    "gamma",
    "train_every",
    "target_update",
    "tau",
    "epsilon_start",
    "epsilon_end",
    "exploration_fraction",
    "double",
    "max_grad_norm",
    "eval_every",
    "eval_episodes",
    "stop_when_solved",
}
