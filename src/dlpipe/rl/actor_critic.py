"""What A2C and REINFORCE share: the actor-critic network, its optimisers, the agent, the evaluator,
the episode log and the environment pool, set up the same way for both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlpipe.rl.agent import Agent
from dlpipe.rl.envs import EnvInfo, EnvPool
from dlpipe.rl.networks import ActorCritic
from dlpipe.rl.rollout import EpisodeLog, PeriodicEvaluator
from dlpipe.training.optim import FlatOptimizer

__all__ = ["ActorCriticSetup"]


@dataclass
class ActorCriticSetup:
    model: ActorCritic
    optimizers: list[FlatOptimizer]
    agent: Agent
    evaluator: PeriodicEvaluator
    log: EpisodeLog
    pool: EnvPool
    low: (
        np.ndarray
    )  # action bounds (continuous actions are clipped to them when sent to the environment)
    high: np.ndarray

    @classmethod
    def create(
        cls,
        info: EnvInfo,
        algorithm: str,
        config: dict[str, Any],
        *,
        seed: int,
        n_envs: int,
        eval_every: int,
        eval_episodes: int,
    ) -> ActorCriticSetup:
        hidden = list(config["hidden"])
        continuous = not info.discrete_actions
        model = ActorCritic(info.obs_dim, info.n_actions, hidden, continuous=continuous)
        # The engine's fused Adam (no torch._dynamo import); actor and critic each get their own.
        optimizers = [
            FlatOptimizer(group, "adam", learning_rate=config["learning_rate"])
            for group in model.parameter_groups()
        ]
        spec = {
            "family": "rl-actor-critic",
            "obs_dim": info.obs_dim,
            "n_actions": info.n_actions,
            "hidden": hidden,
            "continuous": continuous,
        }
        agent = Agent(info, algorithm, spec, model=model, config=config)
        evaluator = PeriodicEvaluator(
            info, agent.act, eval_every, episodes=eval_episodes, threshold=info.reward_threshold
        )
        return cls(
            model,
            optimizers,
            agent,
            evaluator,
            EpisodeLog(),
            EnvPool(info.env_id, n_envs, seed, info.env_kwargs),
            np.asarray(info.action.get("low", [-np.inf]), dtype=np.float32),
            np.asarray(info.action.get("high", [np.inf]), dtype=np.float32),
        )
