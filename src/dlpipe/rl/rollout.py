"""The rollout core every algorithm shares: greedy evaluation with fixed seeds, the episode log,
and periodic evaluation that keeps the best policy seen.

An *act function* maps a batch of encoded observations (B, D) float32 to B actions (a NumPy
array); agents, SB3 models and random policies all fit it, so they are evaluated the same way.
"""

from __future__ import annotations

import copy
import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.rl.envs import EnvInfo, encode_obs, make_env

__all__ = [
    "ActFn",
    "Evaluation",
    "evaluate_policy",
    "random_policy",
    "EpisodeLog",
    "PeriodicEvaluator",
    "TrainResult",
    "EVAL_SEED",
    "SELECTION_SEED",
    "seed_block",
    "linear_schedule",
    "one_thread",
]

ActFn = Callable[[np.ndarray], np.ndarray]
# Two disjoint blocks of episode seeds (issue #21): the periodic checks that stop training and pick
# the kept weights play episodes SELECTION_SEED + k; the figure a run reports is played on fresh
# episodes EVAL_SEED + k, never used to select. Neither block is a training seed below 10,000.
SELECTION_SEED = 10_000
EVAL_SEED = 20_000
_BLOCK = (
    EVAL_SEED - SELECTION_SEED
)  # the most episodes a selection block can hold before it would overlap
_MAX_STEPS = 10_000  # per episode, for environments registered without a time limit


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the previous count.

    RL networks are small and called once per step: a second intra-op thread only adds
    synchronisation, and on a busy CPU its spin-waits made a DQN update 16x slower (205 ms vs
    12.6 ms measured for a 64x64 MLP, batch 64, with the machine's 2 cores shared).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Evaluation:
    """Returns and lengths of greedy episodes (episode k seeded with ``seed + k``)."""

    returns: np.ndarray
    lengths: np.ndarray
    seed: int

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    def summary(self) -> dict[str, float | int]:
        return {
            "episodes": len(self.returns),
            "mean_return": float(self.returns.mean()),
            "std_return": float(self.returns.std()),
            "min_return": float(self.returns.min()),
            "max_return": float(self.returns.max()),
            "mean_length": float(self.lengths.mean()),
            "seed": self.seed,
        }


def evaluate_policy(
    info: EnvInfo, act: ActFn, episodes: int = 100, seed: int = EVAL_SEED, n_envs: int = 16
) -> Evaluation:
    """Run ``episodes`` episodes with ``act`` (up to ``n_envs`` at once, one batched call per step)."""
    envs = [make_env(info.env_id, info.env_kwargs) for _ in range(min(n_envs, episodes))]
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    limit = info.max_episode_steps or _MAX_STEPS
    slot_episode: list[int] = []
    obs: list[Any] = []
    next_episode = 0
    for env in envs:
        o, _ = env.reset(seed=seed + next_episode)
        env.action_space.seed(seed + next_episode)
        slot_episode.append(next_episode)
        obs.append(o)
        next_episode += 1
    active = list(range(len(envs)))
    try:
        while active:
            actions = act(np.stack([encode_obs(obs[i], info) for i in active]))
            still = []
            for slot, a in zip(active, actions):
                k = slot_episode[slot]
                o, r, term, trunc, _ = envs[slot].step(a)
                returns[k] += r
                lengths[k] += 1
                if term or trunc or lengths[k] >= limit:
                    if next_episode >= episodes:
                        continue
                    k = next_episode
                    next_episode += 1
                    slot_episode[slot] = k
                    o, _ = envs[slot].reset(seed=seed + k)
                obs[slot] = o
                still.append(slot)
            active = still
    finally:
        for env in envs:
            env.close()
    return Evaluation(returns, lengths, seed)


def random_policy(info: EnvInfo, seed: int = 0) -> ActFn:
    """Uniformly random actions: the baseline every evaluation shows beside the agent."""
    rng = np.random.default_rng(seed)

    def act(x: np.ndarray) -> np.ndarray:
        if info.discrete_actions:
            return rng.integers(0, info.n_actions, size=len(x))
        low, high = np.asarray(info.action["low"]), np.asarray(info.action["high"])
        return rng.uniform(low, high, size=(len(x), len(low))).astype(np.float32)

    return act


@dataclass
class EpisodeLog:
    """One row per finished training episode: episode, return, length, steps (+ loss, epsilon, ...)."""

    rows: list[dict[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, episode_return: float, length: int, steps: int, **extra: float) -> None:
        self.rows.append(
            {
                "episode": len(self.rows) + 1,
                "return": float(episode_return),
                "length": int(length),
                "steps": int(steps),
                "time_s": round(time.perf_counter() - self.started, 3),
                **extra,
            }
        )

    def recent_mean(self, n: int = 20) -> float:
        tail = [r["return"] for r in self.rows[-n:]]
        return float(np.mean(tail)) if tail else float("nan")

    def to_csv(self, path: str | Path) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        columns = columns or ["episode", "return", "length", "steps"]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)


class PeriodicEvaluator:
    """Every ``every`` env steps (0: never), evaluate greedily on ``quick`` episodes; keep the best weights.

    When a quick check reaches the solve threshold, the full ``episodes``-episode evaluation decides;
    passing it marks the run solved at that step, so training can stop. The best weights (by the
    longest evaluation, then its mean) are restored at the end. Every check plays the *selection*
    block of episode seeds (``seed`` = SELECTION_SEED by default); a run reports its figure on
    another block (EVAL_SEED), so the episodes that chose the weights never score them.
    """

    def __init__(
        self,
        info: EnvInfo,
        act: ActFn,
        every: int,
        quick: int = 10,
        episodes: int = 100,
        threshold: float | None = None,
        seed: int = SELECTION_SEED,
    ) -> None:
        if max(quick, episodes) > _BLOCK and seed == SELECTION_SEED:
            from dlpipe.core.errors import InvalidConfigError

            raise InvalidConfigError(
                f"`eval_episodes` of the periodic checks is {episodes!r}, but the selection block holds at most {_BLOCK:,} "
                f"episodes (seeds {SELECTION_SEED}-{EVAL_SEED - 1}) before it would overlap the reporting block; pass fewer."
            )
        self.info, self.act, self.every, self.quick, self.episodes = (
            info,
            act,
            max(0, int(every)),
            quick,
            episodes,
        )
        self.threshold = threshold
        self.seed = seed
        self.records: list[dict[str, float]] = []
        self.best_score: tuple[int, float] = (-1, -np.inf)
        self.best_steps: int | None = None
        self.best_state: dict[str, Any] | None = None
        self.solved_at: int | None = None
        self._next = self.every

    def due(self, steps: int) -> bool:
        """True when a check is due at ``steps`` (never when ``every`` is 0: evaluation off)."""
        return self.every > 0 and steps >= self._next

    def evaluate(self, steps: int, state: Callable[[], dict[str, Any]]) -> bool:
        """Run the check at ``steps``; ``state()`` gives the weights to keep if this is the best. True when solved."""
        self._next = steps + self.every
        ev = evaluate_policy(self.info, self.act, self.quick, self.seed)
        n, mean = self.quick, ev.mean_return
        if self.threshold is not None and mean >= self.threshold and self.episodes > self.quick:
            ev = evaluate_policy(self.info, self.act, self.episodes, self.seed)
            n, mean = self.episodes, ev.mean_return
        self.records.append({"steps": steps, "episodes": n, "mean_return": mean})
        if (n, mean) > self.best_score:  # a longer evaluation outranks a shorter one
            self.best_score = (n, mean)
            self.best_steps = steps
            self.best_state = copy.deepcopy(state())
        if self.threshold is not None and n == self.episodes and mean >= self.threshold:
            self.solved_at = steps
            return True
        return False

    def selection(self) -> dict[str, Any] | None:
        """The check that chose the kept weights (None when no check ran), for metrics.json."""
        if self.best_steps is None:
            return None
        n, mean = self.best_score
        return {
            "steps": self.best_steps,
            "episodes": n,
            "mean_return": float(mean),
            "seed": self.seed,
            "seeds": seed_block(self.seed, n),
        }


def seed_block(seed: int, episodes: int) -> str:
    """The episode seeds ``seed`` .. ``seed + episodes - 1`` as text.

    Example:
        >>> seed_block(20_000, 100)
        '20000-20099'
    """
    return f"{seed}-{seed + episodes - 1}" if episodes > 1 else str(seed)


def linear_schedule(start: float, end: float, duration: int) -> Callable[[int], float]:
    """``start`` at step 0, moving linearly to ``end`` at ``duration``, then constant."""
    duration = max(1, int(duration))
    return lambda t: end + (start - end) * max(0.0, 1.0 - t / duration)


@dataclass
class TrainResult:
    """What an algorithm hands back: the agent, the episode log, the periodic evaluations."""

    agent: Any  # dlpipe.rl.agent.Agent (not imported here: agent imports this module)
    log: EpisodeLog
    evaluations: list[dict[str, float]]
    steps: int
    wall_time_s: float
    solved_at: int | None = None
    selection: dict[str, Any] | None = (
        None  # PeriodicEvaluator.selection(): the check that kept the weights
    )
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # algorithm-specific metrics (value iteration: sweeps)

    @classmethod
    def finished(
        cls, agent: Any, log: EpisodeLog, evaluator: PeriodicEvaluator, steps: int, started: float
    ) -> TrainResult:
        """The result of a training loop that ran for ``steps`` since ``started`` (perf_counter)."""
        return cls(
            agent,
            log,
            evaluator.records,
            steps,
            time.perf_counter() - started,
            evaluator.solved_at,
            evaluator.selection(),
        )
