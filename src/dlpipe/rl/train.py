"""``train_agent``: one entry point over the four algorithms, and ``RLRun``, its run folder.

    runs/<name>/
      config.json     algorithm, environment, every option written out (enough to reproduce the run)
      history.csv     one row per training episode: episode, return, length, steps, time_s (+ loss, epsilon)
      evaluations.csv the periodic greedy evaluations: steps, episodes, mean_return
      metrics.json    final greedy evaluation beside a random policy, solve threshold, steps to solve, wall time
      bundle/         the policy/Q network (or Q-table) with its manifest (kind "rl")
"""

from __future__ import annotations

import csv
import inspect
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dlpipe.core.errors import InvalidConfigError, suggest
from dlpipe.core.files import atomic_dir, claim_output_dir, report_or_warn, write_json
from dlpipe.core.runtime import seed_everything
from dlpipe.rl.agent import Agent
from dlpipe.rl.envs import env_info, make_env
from dlpipe.rl.rollout import EVAL_SEED, EpisodeLog, TrainResult, one_thread

__all__ = ["train_agent", "RLRun", "ALGORITHMS", "DEFAULT_STEPS"]

Algorithm = Literal["dqn", "reinforce", "a2c", "qlearning"]
ALGORITHMS = ("dqn", "reinforce", "a2c", "qlearning")
DEFAULT_STEPS = {"dqn": 100_000, "reinforce": 300_000, "a2c": 300_000, "qlearning": 50_000}


def _algorithm(algo: str) -> Callable[..., TrainResult]:
    if algo == "dqn":
        from dlpipe.rl.dqn import train_dqn

        return train_dqn
    if algo == "reinforce":
        from dlpipe.rl.reinforce import train_reinforce

        return train_reinforce
    if algo == "a2c":
        from dlpipe.rl.a2c import train_a2c

        return train_a2c
    if algo == "qlearning":
        from dlpipe.rl.qlearning import train_qlearning

        return train_qlearning
    raise InvalidConfigError(f"`algo` is {algo!r}{suggest(algo, ALGORITHMS)} but must be one of {', '.join(ALGORITHMS)}.")


@dataclass
class RLRun:
    """The result of :func:`train_agent`: the agent, its training history and metrics, its folder."""

    agent: Agent
    history: EpisodeLog
    evaluations: list[dict[str, float]]
    metrics: dict[str, Any]
    config: dict[str, Any]
    path: Path | None = None

    def save(self, path: str | Path, report: bool = True, *, overwrite: bool = False) -> Path:
        """Write the run folder atomically and return its path; ``report`` also builds report.html.

        An existing ``path`` is replaced only if it is an earlier dlpipe RL run folder and ``overwrite`` is True.
        """
        with atomic_dir(path, overwrite=overwrite, kind="rl", what="`out`") as tmp:
            write_json(tmp / "config.json", self.config)
            self.history.to_csv(tmp / "history.csv")
            with open(tmp / "evaluations.csv", "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=["steps", "episodes", "mean_return"])
                writer.writeheader()
                writer.writerows(self.evaluations)
            write_json(tmp / "metrics.json", self.metrics)
            self.agent.save(tmp / "bundle")
        self.path = Path(path)
        if report:
            report_or_warn(self.report, self.path)
        return self.path

    def report(self, open_browser: bool = False) -> Path:
        """Build (or rebuild) ``report.html`` in the run folder: return curve with the solve threshold."""
        from dlpipe.reports.report import build_report

        if self.path is None:
            raise InvalidConfigError("this run was not saved, so it has no folder to write a report into; call run.save(path) first.")
        return build_report(self.path)

    def summary(self) -> str:
        m = self.metrics
        ev = m["evaluation"]
        lines = [
            f"{m['algo']} on {m['env_id']}: {m['steps']:,} env steps in {m['wall_time_s']:.1f} s",
            f"greedy mean return {ev['mean_return']:.2f} +/- {ev['std_return']:.2f} over {ev['episodes']} episodes "
            f"(random policy: {m['random']['mean_return']:.2f})",
        ]
        if m.get("reward_threshold") is not None:
            when = f"solved at step {m['solved_at']:,}" if m.get("solved_at") else ("solved" if m["solved"] else "not solved")
            lines.append(f"solve threshold {m['reward_threshold']}: {when}")
        return "\n".join(lines)


def train_agent(
    env_id: str,
    algo: Algorithm = "dqn",
    *,
    steps: int | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    out: str | Path | None = None,
    eval_episodes: int = 100,
    report: bool = True,
    overwrite: bool = False,
    **options: Any,
) -> RLRun:
    """Train an agent on a Gymnasium environment and evaluate it greedily on fixed seeds.

    Args:
        env_id: A registered Gymnasium id such as ``"CartPole-v1"``.
        algo: ``"dqn"``, ``"reinforce"``, ``"a2c"`` or ``"qlearning"``. Defaults to `"dqn"`.
        steps: Environment steps to train for at most (training stops once the periodic
            evaluation solves the environment). Defaults to 100,000 (DQN), 300,000 (REINFORCE,
            A2C) or 50,000 (Q-learning).
        seed: Seeds the environments, action sampling and torch. Defaults to `0`.
        env_kwargs: Options for ``gymnasium.make`` such as ``{"is_slippery": False}``. Defaults to `None`.
        out: Save the run folder there: a new or empty folder (checked and locked before training).
            Defaults to `None` (not saved).
        eval_episodes: Greedy episodes of the final evaluation. Defaults to `100`.
        report: With ``out``, also build ``report.html`` (the return curve). Defaults to `True`.
        overwrite: Replace ``out`` if it is an earlier dlpipe RL run folder (never any other folder). Defaults to `False`.
        **options: Settings of the algorithm (``learning_rate``, ``gamma``, ``hidden``, ...).

    Example:
        >>> run = train_agent("FrozenLake-v1", "qlearning", env_kwargs={"is_slippery": False}, steps=5000)
        >>> run.metrics["evaluation"]["mean_return"]
        1.0
    """
    fn = _algorithm(algo)
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("info", "steps", "seed", "eval_episodes")]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise InvalidConfigError(
            f"{algo} has no option {unknown[0]!r}{suggest(unknown[0], allowed)}; its options are: {', '.join(allowed)}."
        )
    steps = DEFAULT_STEPS[algo] if steps is None else steps
    if not isinstance(steps, int) or steps < 1:
        raise InvalidConfigError(f"`steps` is {steps!r} but must be a positive integer such as {DEFAULT_STEPS[algo]}.")
    with ExitStack() as stack:
        if out is not None:  # checked and locked before training, until the folder is renamed into place
            stack.enter_context(claim_output_dir(out, kind="rl", overwrite=overwrite, what="`out`"))
        return _train(fn, env_id, algo, steps, seed, env_kwargs, out, eval_episodes, report, overwrite, options)


def _train(fn: Any, env_id: str, algo: str, steps: int, seed: int, env_kwargs: dict[str, Any] | None, out: str | Path | None,
           eval_episodes: int, report: bool, overwrite: bool, options: dict[str, Any]) -> RLRun:
    env = make_env(env_id, env_kwargs)
    info = env_info(env, env_id, env_kwargs)
    env.close()
    seed_everything(seed)
    started = time.perf_counter()
    with one_thread():
        result = fn(info, steps=steps, seed=seed, **options)
        final = result.agent.evaluate(eval_episodes, EVAL_SEED)
    metrics = {
        "env_id": env_id,
        "algo": algo,
        "steps": result.steps,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "train_time_s": round(result.wall_time_s, 3),
        "episodes": len(result.log.rows),
        "reward_threshold": info.reward_threshold,
        "solved_at": result.solved_at,
        "solved": bool(final.get("solved", False)),
        "evaluation": {k: v for k, v in final.items() if k not in ("random", "env_id", "algo", "reward_threshold", "solved")},
        "random": final["random"],
    }
    result.agent.metrics = metrics
    config = {"env_id": env_id, "env_kwargs": dict(env_kwargs or {}), "algo": algo, **result.agent.config}
    run = RLRun(result.agent, result.log, result.evaluations, metrics, config)
    if out is not None:
        run.save(out, report=report, overwrite=overwrite)
    return run
