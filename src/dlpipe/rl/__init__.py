"""Reinforcement learning on Gymnasium environments: Q-learning, value iteration, DQN, PPO, REINFORCE, A2C.

Gymnasium is optional (``pip install 'dlpipe[rl]'``) and imported only when an environment is made.

Example:
    >>> from dlpipe.rl import train_agent
    >>> run = train_agent("FrozenLake-v1", "qlearning", env_kwargs={"is_slippery": False}, steps=5000)
    >>> run.agent.evaluate(episodes=10)["mean_return"]
    1.0
"""

from __future__ import annotations

from dlpipe.rl.agent import Agent, load_agent
from dlpipe.rl.envs import EnvInfo, env_info, make_env
from dlpipe.rl.rollout import Evaluation, evaluate_policy, random_policy
from dlpipe.rl.train import ALGORITHMS, RLRun, train_agent

__all__ = [
    "Agent",
    "load_agent",
    "EnvInfo",
    "env_info",
    "make_env",
    "Evaluation",
    "evaluate_policy",
    "random_policy",
    "ALGORITHMS",
    "RLRun",
    "train_agent",
]
