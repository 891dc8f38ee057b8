"""``train_agent``: one entry point over the algorithms, and ``RLRun``, its run folder.

An RL run folder is a run folder like any other (``dlpipe runs``, ``dlpipe report`` and
``dlpipe.load_bundle`` read it):

    runs/<name>/
      config.yaml     the resolved config: env_id, env_kwargs, algo, steps, seed, eval_episodes and every
                      algorithm setting under `options` (`dlpipe rl train --config` reads it back)
      history.csv     one row per training episode (x-axis `episode`): return, length, steps, time_s (+ loss, epsilon)
      evaluations.csv the periodic greedy evaluations: steps, episodes, mean_return
      metrics.json    kind "rl", task "reinforcement", dataset (the env id), `test`: the final greedy evaluation
                      (primary metric mean_return, higher is better) beside the random policy on the same seeds,
                      its verdict; solve threshold, steps to solve, wall time
      report.html     return curve, evaluation vs the random policy, the network, how to reproduce
      bundle/         the policy/Q network (or Q-table) with its manifest (kind "rl")
"""

from __future__ import annotations

import csv
import inspect
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dlpipe.core.errors import InvalidConfigError, suggest
from dlpipe.core.files import atomic_dir, claim_output_dir, report_or_warn, write_json
from dlpipe.core.runtime import seed_everything
from dlpipe.rl.agent import Agent
from dlpipe.rl.envs import env_info, make_env
from dlpipe.rl.rollout import (
    EVAL_SEED,
    SELECTION_SEED,
    EpisodeLog,
    TrainResult,
    one_thread,
    seed_block,
)

__all__ = [
    "train_agent",
    "RLRun",
    "ALGORITHMS",
    "DEFAULT_STEPS",
    "PRIMARY_METRIC",
    "TASK",
    "command_for",
    "read_rl_config",
    "algorithm_options",
    "cli_command",
]

PRIMARY_METRIC = "mean_return"  # higher is better (dlpipe.evaluation.directions)
TASK = "reinforcement"  # metrics.json `task` of every RL run (its `kind` is "rl")
_SCORES = ("mean_return", "std_return", "min_return", "max_return", "mean_length")

# The `dlpipe rl train` command line being run (None for a run made from Python), for metrics.json `command`.
_CLI_COMMAND: ContextVar[str | None] = ContextVar("dlpipe_rl_command", default=None)


@contextmanager
def cli_command(argv: list[str]) -> Iterator[None]:
    """Within this block, runs record ``dlpipe <argv>`` as the command that made them (the CLI sets it)."""
    token = _CLI_COMMAND.set(" ".join(shlex.quote(a) for a in ["dlpipe", *argv]))
    try:
        yield
    finally:
        _CLI_COMMAND.reset(token)


Algorithm = Literal["dqn", "ppo", "reinforce", "a2c", "qlearning", "value_iteration"]
ALGORITHMS = ("dqn", "ppo", "reinforce", "a2c", "qlearning", "value_iteration")
# Environment steps at most; for value_iteration (which plays no episodes) the sweeps over the states.
DEFAULT_STEPS = {
    "dqn": 100_000,
    "ppo": 300_000,
    "reinforce": 300_000,
    "a2c": 300_000,
    "qlearning": 50_000,
    "value_iteration": 1_000,
}


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
    if algo == "ppo":
        from dlpipe.rl.ppo import train_ppo

        return train_ppo
    if algo == "value_iteration":
        from dlpipe.rl.value_iteration import train_value_iteration

        return train_value_iteration
    raise InvalidConfigError(
        f"`algo` is {algo!r}{suggest(algo, ALGORITHMS)} but must be one of {', '.join(ALGORITHMS)}."
    )


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
        import yaml

        with atomic_dir(path, overwrite=overwrite, kind="rl", what="`out`") as tmp:
            (tmp / "config.yaml").write_text(
                yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8"
            )
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
            raise InvalidConfigError(
                "this run was not saved, so it has no folder to write a report into; call run.save(path) first."
            )
        return build_report(self.path, open_browser=open_browser)

    @property
    def bundle(self) -> Agent:
        """The agent (an RL bundle), so ``dlpipe.summary(run)`` describes its network as for any run."""
        return self.agent

    def summary(self) -> str:
        m = self.metrics
        ev = m["evaluation"]
        lines = [
            f"{m['algo']} on {m['env_id']}: {m['steps']:,} env steps in {m['wall_time_s']:.1f} s"
        ]
        sel = m.get("selection")
        if "sweeps" in m:  # value iteration plans on the known model: no episodes, nothing selected
            lines[0] = (
                f"{m['algo']} on {m['env_id']}: {m['sweeps']:,} sweeps of the known model "
                f"({'converged' if m.get('converged') else 'not converged'}, no env steps) in {m['wall_time_s']:.1f} s"
            )
        elif sel:
            lines.append(
                f"selected on {sel['episodes']} greedy episodes (seeds {sel['seeds']}): mean return "
                f"{sel['mean_return']:.2f}, weights of env step {sel['steps']:,} kept"
            )
        else:
            lines.append("no periodic checks (eval_every=0): the last weights are kept")
        lines.append(
            f"reported on {ev['episodes']} fresh greedy episodes (seeds {ev.get('seeds', ev.get('seed'))}), "
            f"never used to select: mean return {ev['mean_return']:.2f} +/- {ev['std_return']:.2f} "
            f"(random policy: {m['random']['mean_return']:.2f})"
        )
        if m.get("reward_threshold") is not None:
            verdict = "solved" if m["solved"] else "not solved"
            when = (
                f"; the selection check passed at env step {m['solved_at']:,}"
                if m.get("solved_at")
                else ""
            )
            lines.append(
                f"solve threshold {m['reward_threshold']:g}: {verdict} on the fresh episodes{when}"
            )
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
    """Train an agent on a Gymnasium environment and evaluate it greedily on fresh fixed seeds.

    Two disjoint blocks of episode seeds: the periodic checks (which stop training and pick the
    kept weights) play episodes seeded 10000, 10001, ...; the reported figure (``metrics["evaluation"]``,
    ``metrics["test"]``, ``metrics["solved"]``) is played on episodes seeded 20000, 20001, ..., which
    selection never saw. ``metrics["protocol"]`` records both.

    Args:
        env_id: A registered Gymnasium id such as ``"CartPole-v1"``.
        algo: ``"dqn"``, ``"ppo"``, ``"reinforce"``, ``"a2c"``, ``"qlearning"`` or ``"value_iteration"``
            (planning on the environment's known model, e.g. FrozenLake). Defaults to `"dqn"`.
        steps: Environment steps to train for at most (training stops once the periodic
            evaluation solves the environment); for value iteration, the sweeps at most.
            Defaults to 100,000 (DQN), 300,000 (PPO, REINFORCE, A2C), 50,000 (Q-learning) or 1,000 sweeps.
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
    allowed = algorithm_options(algo)
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise InvalidConfigError(
            f"{algo} has no option {unknown[0]!r}{suggest(unknown[0], allowed)}; its options are: {', '.join(allowed)}."
        )
    steps = DEFAULT_STEPS[algo] if steps is None else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InvalidConfigError(
            f"`steps` is {steps!r} but must be a positive integer such as {DEFAULT_STEPS[algo]}."
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidConfigError(
            f"`seed` is {seed!r} but must be a non-negative integer such as 0."
        )
    if not isinstance(eval_episodes, int) or isinstance(eval_episodes, bool) or eval_episodes < 1:
        raise InvalidConfigError(
            f"`eval_episodes` is {eval_episodes!r} but must be a positive integer such as 100."
        )
    with ExitStack() as stack:
        if (
            out is not None
        ):  # checked and locked before training, until the folder is renamed into place
            stack.enter_context(claim_output_dir(out, kind="rl", overwrite=overwrite, what="`out`"))
        return _train(
            fn,
            env_id,
            algo,
            steps,
            seed,
            env_kwargs,
            out,
            eval_episodes,
            report,
            overwrite,
            options,
        )


def _train(
    fn: Any,
    env_id: str,
    algo: str,
    steps: int,
    seed: int,
    env_kwargs: dict[str, Any] | None,
    out: str | Path | None,
    eval_episodes: int,
    report: bool,
    overwrite: bool,
    options: dict[str, Any],
) -> RLRun:
    allowed = algorithm_options(algo)
    env = make_env(env_id, env_kwargs)
    info = env_info(env, env_id, env_kwargs)
    env.close()
    seed_everything(seed)
    started = time.perf_counter()
    with one_thread():
        result = fn(info, steps=steps, seed=seed, **options)
        final = result.agent.evaluate(eval_episodes, EVAL_SEED)
    ev = {
        k: v
        for k, v in final.items()
        if k not in ("random", "env_id", "algo", "reward_threshold", "solved")
    }
    ev["seeds"] = seed_block(EVAL_SEED, eval_episodes)
    config = {
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "algo": algo,
        "steps": steps,
        "seed": seed,
        "eval_episodes": eval_episodes,
        "options": {k: v for k, v in result.agent.config.items() if k in allowed},
    }
    metrics = {
        "kind": "rl",
        "task": TASK,
        "dataset": env_id,
        "env_id": env_id,
        "algo": algo,
        "steps": result.steps,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "train_time_s": round(result.wall_time_s, 3),
        "episodes": len(result.log.rows),
        "rows": {"training episodes": len(result.log.rows), "evaluation episodes": ev["episodes"]},
        "reward_threshold": info.reward_threshold,
        "solved_at": result.solved_at,
        "solved": bool(final.get("solved", False)),
        "evaluation": ev,
        "selection": result.selection,
        "protocol": _protocol(result.selection, ev, result.agent.config),
        "random": final["random"],
        "test": _test_record(ev, final["random"]),
        "environment": {"seed": seed, "device": "cpu", "torch_threads": 1},
        "origin": "python" if _CLI_COMMAND.get() is None else "cli",
        **result.extra,
    }
    if _CLI_COMMAND.get() is not None:
        metrics["command"] = _CLI_COMMAND.get()
    result.agent.metrics = metrics
    run = RLRun(result.agent, result.log, result.evaluations, metrics, config)
    if out is not None:
        run.save(out, report=report, overwrite=overwrite)
    return run


def _protocol(
    selection: dict[str, Any] | None, ev: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    """metrics.json `protocol`: which episode seeds chose the weights and which ones scored them (disjoint)."""
    every = options.get("eval_every")
    checks = int(options.get("eval_episodes", 100) or 0) if every else 0
    return {
        "selection": {
            "seeds": seed_block(SELECTION_SEED, checks) if checks else None,
            "episodes": checks,
            "every": every,
            "used_for": "the periodic greedy checks: when to stop training and which weights to keep"
            if every
            else "nothing: no periodic checks ran (eval_every=0, or value iteration, which plays no episodes); "
            "the final weights are kept",
        },
        "report": {
            "seeds": ev["seeds"],
            "episodes": ev["episodes"],
            "used_for": "the reported figure (`evaluation`, `test`, `solved`) only; never seen by selection",
        },
    }


def algorithm_options(algo: str) -> list[str]:
    """The settings ``algo`` takes as ``**options`` (``learning_rate``, ``gamma``, ...)."""
    fn = _algorithm(algo)
    # `eval_episodes` of train_agent is the final evaluation; the algorithms' periodic checks keep their default
    return [
        p
        for p in inspect.signature(fn).parameters
        if p not in ("info", "steps", "seed", "eval_episodes")
    ]


def _test_record(ev: dict[str, Any], random: dict[str, Any]) -> dict[str, Any]:
    """metrics.json `test`, shaped as every run's: the greedy agent and the random policy on the same seeded episodes."""
    from dlpipe.evaluation.baselines import verdict

    model = {k: ev[k] for k in _SCORES if k in ev}
    baselines = {"random": {k: random[k] for k in _SCORES if k in random}}
    return {
        "primary_metric": PRIMARY_METRIC,
        "rows": ev["episodes"],  # one "row" of an RL evaluation is one seeded episode
        "episodes": ev["episodes"],
        "seed": ev.get("seed", EVAL_SEED),
        "model": model,
        "baselines": baselines,
        "verdict": verdict(PRIMARY_METRIC, model[PRIMARY_METRIC], baselines),
    }


def command_for(config: dict[str, Any]) -> str:
    """The ``dlpipe rl train`` command that reruns ``config`` (every setting as a flag).

    Example:
        >>> command_for({"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False}, "algo": "qlearning",
        ...              "steps": 500, "seed": 0, "eval_episodes": 10, "options": {"gamma": 0.9}})
        'dlpipe rl train FrozenLake-v1 --algo qlearning --steps 500 --seed 0 --eval-episodes 10 --env-option is_slippery=false --option gamma=0.9'
    """
    import json

    parts = [
        "dlpipe",
        "rl",
        "train",
        config["env_id"],
        "--algo",
        config["algo"],
        "--steps",
        str(config["steps"]),
        "--seed",
        str(config["seed"]),
        "--eval-episodes",
        str(config["eval_episodes"]),
    ]
    for flag, key in (("--env-option", "env_kwargs"), ("--option", "options")):
        for k, v in (config.get(key) or {}).items():
            parts += [flag, f"{k}={json.dumps(v, separators=(',', ':'))}"]
    return " ".join(shlex.quote(p) for p in parts)


_CONFIG_KEYS = ("env_id", "env_kwargs", "algo", "steps", "seed", "eval_episodes", "options")


def read_rl_config(path: str | Path) -> dict[str, Any]:
    """An RL run's config.yaml (``dlpipe rl train --config``): its keys checked, unknown ones refused with a suggestion.

    Raises:
        InvalidConfigError: the file is missing, not a YAML mapping, or has a key an RL run does not take.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InvalidConfigError(
            f"`config` {str(p)!r} is not a file; pass the config.yaml of an RL run folder (runs/<name>/config.yaml)."
        )
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidConfigError(
            f"`config` {str(p)!r} is not valid YAML ({type(exc).__name__}); pass the config.yaml an RL run wrote."
        ) from None
    if not isinstance(loaded, dict):
        raise InvalidConfigError(
            f"`config` {str(p)!r} holds a {type(loaded).__name__}, not a mapping of settings; pass the config.yaml an RL run wrote."
        )
    unknown = [k for k in loaded if k not in _CONFIG_KEYS]
    if unknown:
        raise InvalidConfigError(
            f"`config` {str(p)!r} has the key {unknown[0]!r}{suggest(str(unknown[0]), _CONFIG_KEYS)}, which an RL run does not take; "
            f"its keys are: {', '.join(_CONFIG_KEYS)}."
        )
    for key in ("env_kwargs", "options"):
        if loaded.get(key) is not None and not isinstance(loaded[key], dict):
            raise InvalidConfigError(
                f"`{key}` in {str(p)!r} is {loaded[key]!r} but must be a mapping of settings such as {{is_slippery: false}}."
            )
    return loaded
