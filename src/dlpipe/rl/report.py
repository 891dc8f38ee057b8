"""The RL section of a run report: the final greedy evaluation beside a random policy on the same
seeds, the return curve (raw and moving average, per environment step) with the solve threshold and
the periodic greedy evaluations, loss and epsilon, the environment's spaces and the settings.

Registered for runs of kind "rl" (``dlpipe.reports.sections``), where it stands in for the standard
verdict, data, training and evaluation sections (an RL run has no test split, table or epochs)."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np

from dlpipe.reports.folder import RunFolder
from dlpipe.reports.plots import Plot, new_figure, render
from dlpipe.reports.sections import Section, Table

__all__ = ["sections", "return_curve_plot", "moving_average"]


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start, so it starts at episode 1).

    Example:
        >>> moving_average(np.array([0.0, 2.0, 4.0]), 2).tolist()
        [0.0, 1.0, 3.0]
    """
    c = np.cumsum(np.insert(np.asarray(x, dtype=float), 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def return_curve_plot(
    steps: np.ndarray,
    returns: np.ndarray,
    threshold: float | None,
    evaluations: list[dict[str, float]] | None = None,
    window: int = 20,
) -> Plot:
    title = "Episode return"
    if len(returns) == 0:
        return Plot("rl_returns", title, note="the run finished no training episode.")
    with _style():
        fig = new_figure(7.0, 3.4)
        ax = fig.subplots()
        ax.plot(steps, returns, color="#9ecae1", linewidth=0.8, label="episode return")
        ax.plot(
            steps,
            moving_average(returns, window),
            color="#08519c",
            linewidth=1.8,
            label=f"moving average ({window} episodes)",
        )
        if evaluations:
            ax.plot(
                [e["steps"] for e in evaluations],
                [e["mean_return"] for e in evaluations],
                "o",
                color="#e6550d",
                markersize=4,
                label="greedy evaluation",
            )
        if threshold is not None:
            ax.axhline(
                threshold,
                color="#31a354",
                linestyle="--",
                linewidth=1.2,
                label=f"solve threshold {threshold:g}",
            )
        ax.set(title=title, xlabel="environment steps", ylabel="return")
        ax.legend(loc="best", fontsize=8)
        return Plot("rl_returns", title, render(fig))


def _series_plot(name: str, title: str, steps: np.ndarray, values: np.ndarray, ylabel: str) -> Plot:
    keep = np.isfinite(values)
    if keep.sum() < 2:
        return Plot(name, title, note=f"the run recorded fewer than 2 values of {ylabel}.")
    with _style():
        fig = new_figure(7.0, 2.6)
        ax = fig.subplots()
        ax.plot(steps[keep], values[keep], color="#756bb1", linewidth=1.0)
        ax.set(title=title, xlabel="environment steps", ylabel=ylabel)
        return Plot(name, title, render(fig))


def _style() -> Any:
    import matplotlib

    return matplotlib.rc_context(
        {"axes.spines.top": False, "axes.spines.right": False, "font.size": 9}
    )


def _evaluations(run: RunFolder) -> list[dict[str, float]]:
    path = run.path / "evaluations.csv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def sections(run: RunFolder) -> list[Section]:
    """Sections for a run folder written by ``dlpipe rl train``."""
    section = Section("rl", "Reinforcement learning")
    m = run.metrics
    ev, rnd = m.get("evaluation"), m.get("random")
    if ev and rnd:
        verdict = (m.get("test") or {}).get("verdict")
        if verdict:
            section.text(verdict)
        cols = ["policy", "episodes", "mean return ★", "std", "min", "max", "mean length"]
        keys = ("episodes", "mean_return", "std_return", "min_return", "max_return", "mean_length")
        section.table(
            Table(
                cols,
                [
                    ["agent (greedy)", *(ev.get(k) for k in keys)],
                    ["random", *(rnd.get(k) for k in keys)],
                ],
                caption=f"{m.get('algo')} on {m.get('env_id')}: evaluation vs a uniformly random policy on the same "
                f"{ev.get('episodes')} episodes (seeds from {ev.get('seed')}); ★ primary metric, higher is better",
                highlight=0,
            )
        )
        sel = m.get("selection")
        if sel:
            section.text(
                f"Selected on {sel.get('episodes')} greedy episodes seeded {sel.get('seeds')} (the periodic checks, which "
                f"stopped training and kept the weights of env step {sel.get('steps'):,}: mean return {sel.get('mean_return'):.2f}); "
                f"reported on {ev.get('episodes')} fresh episodes seeded {ev.get('seeds', ev.get('seed'))}, which selection never played."
            )
        threshold = m.get("reward_threshold")
        if threshold is not None:
            verdict = "solved" if m.get("solved") else "not solved"
            when = (
                f"{verdict} on the fresh episodes (the selection check passed at env step {m['solved_at']:,})"
                if m.get("solved_at")
                else f"{verdict} on the fresh episodes"
            )
            section.text(
                f"Solve threshold {threshold:g}: {when}; {m.get('steps') or 0:,} env steps in {m.get('train_time_s') or 0:.1f} s of training."
            )
    else:
        section.note("metrics.json has no final evaluation.")
    h = run.history_series()
    if "return" not in h:
        section.note("history.csv has no episode returns, so there is no return curve.")
    else:
        steps = h.get("steps", np.arange(1, len(h["return"]) + 1))
        section.plot(
            return_curve_plot(steps, h["return"], m.get("reward_threshold"), _evaluations(run))
        )
        if "loss" in h:
            section.plot(
                _series_plot(
                    "rl_loss", "Training loss (mean per episode)", steps, h["loss"], "loss"
                )
            )
        if "epsilon" in h:
            section.plot(
                _series_plot("rl_epsilon", "Exploration rate", steps, h["epsilon"], "epsilon")
            )
    env = run.manifest.get("env")
    if isinstance(env, dict):
        section.table(Table(["", ""], _env_rows(env), caption="the environment"))
    settings = _settings_rows(run)
    if settings:
        section.table(Table(["", ""], settings, caption="training settings (resolved)"))
    cfg = run.config or {}
    if all(k in cfg for k in ("env_id", "algo", "steps", "seed", "eval_episodes")):
        from dlpipe.rl.train import command_for

        section.text(
            "To rerun it: `dlpipe rl train --config` with this run's config.yaml, or the same settings as flags:"
        )
        section.code(command_for(cfg))
    return [section]


def _space(space: Any) -> str:
    if not isinstance(space, dict):
        return "?"
    if space.get("type") == "discrete":
        return f"discrete, {space.get('n')} values"
    return f"box of shape {tuple(space.get('shape') or ())}"


def _env_rows(env: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["id", env.get("env_id")],
        ["observations", _space(env.get("obs"))],
        ["actions", _space(env.get("action"))],
    ]
    for k, v in (env.get("env_kwargs") or {}).items():
        rows.append([f"option {k}", str(v)])
    rows.append(
        [
            "solve threshold",
            env.get("reward_threshold") if env.get("reward_threshold") is not None else "none",
        ]
    )
    rows.append(
        [
            "episode limit (steps)",
            env.get("max_episode_steps") if env.get("max_episode_steps") is not None else "none",
        ]
    )
    return rows


def _settings_rows(run: RunFolder) -> list[list[Any]]:
    """From config.yaml (the algorithm's settings under `options`), else the bundle's record of them."""
    cfg = run.config or {}
    options = (
        cfg.get("options") if isinstance(cfg.get("options"), dict) else run.manifest.get("config")
    )
    options = options if isinstance(options, dict) else {}
    rows: list[list[Any]] = [
        [k.replace("_", " "), cfg[k]]
        for k in ("algo", "steps", "seed", "eval_episodes")
        if k in cfg
    ]
    rows += [
        [k.replace("_", " "), str(v) if isinstance(v, (list, dict)) else v]
        for k, v in options.items()
    ]
    m = run.metrics
    if isinstance(m.get("episodes"), int):
        rows.append(["training episodes run", m["episodes"]])
    return rows
