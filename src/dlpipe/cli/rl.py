"""``dlpipe rl train|evaluate|play``: thin commands over dlpipe.rl (torch and gymnasium load inside them)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

rl_app = typer.Typer(
    help="Reinforcement learning on Gymnasium environments (DQN, PPO, REINFORCE, A2C, Q-learning, value iteration).",
    no_args_is_help=True,
)


def _pairs(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``["is_slippery=false", "hidden=[64,64]"]`` -> ``{"is_slippery": False, "hidden": [64, 64]}`` (values read as JSON when they parse)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            from dlpipe.core.errors import InvalidConfigError

            raise InvalidConfigError(
                f"`{flag}` is {item!r} but must look like KEY=VALUE, e.g. {flag} is_slippery=false."
            )
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@rl_app.command("train")
def train(
    env_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[ENV]",
            help="A Gymnasium id such as CartPole-v1 or FrozenLake-v1 (or from --config).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="An RL run's config.yaml: every setting of that run (flags given here override it).",
        ),
    ] = None,
    algo: Annotated[
        str | None,
        typer.Option(
            help="dqn, ppo, reinforce, a2c, qlearning or value_iteration (a known MDP such as FrozenLake; default dqn)."
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Environment steps at most (default: 100k dqn, 300k ppo/reinforce/a2c, 50k qlearning); "
            "for value_iteration the sweeps at most (default 1000)."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for the environments, action sampling and torch (default 0)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder (default runs/<env>-<algo>-<time>)."),
    ] = None,
    env_option: Annotated[
        list[str] | None,
        typer.Option(
            "--env-option",
            help="KEY=VALUE passed to gymnasium.make, e.g. is_slippery=false (repeatable).",
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", help="KEY=VALUE algorithm setting, e.g. learning_rate=5e-4 (repeatable)."
        ),
    ] = None,
    eval_episodes: Annotated[
        int | None,
        typer.Option(
            help="Greedy episodes of the reported evaluation, on fresh seeds 20000, 20001, ... that never "
            "chose the weights (default 100)."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the run folder.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an existing RL run folder that dlpipe wrote at --out."
        ),
    ] = False,
) -> None:
    """Train an agent, evaluate it greedily on fixed seeds, save the run folder with its bundle.

    Periodic checks (which stop training and pick the kept weights) play episodes seeded 10000, 10001, ...;
    the reported figure is played on fresh episodes seeded 20000, 20001, ...; the output names both.
    """
    from dlpipe.cli.app import _STATE
    from dlpipe.core.errors import InvalidConfigError
    from dlpipe.rl import train_agent
    from dlpipe.rl.train import cli_command, read_rl_config

    cfg = read_rl_config(config) if config is not None else {}
    env_id = env_id or cfg.get("env_id")
    if not env_id or not isinstance(env_id, str):
        raise InvalidConfigError(
            f"the environment is {env_id!r}; pass ENV (e.g. `dlpipe rl train CartPole-v1`) or --config with an RL run's config.yaml."
        )
    algo = algo or cfg.get("algo") or "dqn"
    env_kwargs = {**(cfg.get("env_kwargs") or {}), **_pairs(env_option, "--env-option")}
    options = {**(cfg.get("options") or {}), **_pairs(option, "--option")}
    path = (
        out
        or Path("runs")
        / f"{env_id.replace('/', '_')}-{algo}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    argv = _STATE.get("argv") or ["rl", "train", *([env_id] if env_id else [])]
    with cli_command(list(argv)):
        run = train_agent(
            env_id,
            algo,  # type: ignore[arg-type]
            steps=steps if steps is not None else cfg.get("steps"),  # type: ignore[arg-type]
            seed=seed if seed is not None else cfg.get("seed", 0),
            env_kwargs=env_kwargs,
            eval_episodes=eval_episodes
            if eval_episodes is not None
            else cfg.get("eval_episodes", 100),
            out=path,
            overwrite=overwrite,
            **options,
        )
    if not quiet:
        typer.echo(run.summary())
    typer.echo(f"run folder: {run.path}")


@rl_app.command("evaluate")
def evaluate(
    bundle: Annotated[
        Path,
        typer.Argument(
            help="An RL run folder (runs/<name>) or its bundle folder (runs/<name>/bundle)."
        ),
    ],
    episodes: Annotated[int, typer.Option(help="Greedy episodes, seeded 20000, 20001, ...")] = 100,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the first episode (default: the reporting block 20000, never used by training's checks)."
        ),
    ] = 20_000,  # dlpipe.rl.rollout.EVAL_SEED (not imported: this module loads without torch)
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run greedy episodes with fixed seeds, beside a random policy on the same seeds."""
    from dlpipe.rl import load_agent

    result = load_agent(bundle).evaluate(episodes, seed)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"{result['algo']} on {result['env_id']}, {result['episodes']} greedy episodes (seeds {seed}-{seed + result['episodes'] - 1})"
    )
    typer.echo(f"{'policy':<8}{'mean':>10}{'std':>10}{'min':>10}{'max':>10}{'length':>10}")
    for name, r in (("agent", result), ("random", result["random"])):
        typer.echo(
            f"{name:<8}"
            + "".join(
                f"{r[k]:>10.2f}"
                for k in ("mean_return", "std_return", "min_return", "max_return", "mean_length")
            )
        )
    if "solved" in result:
        typer.echo(
            f"solve threshold {result['reward_threshold']}: {'solved' if result['solved'] else 'not solved'}"
        )


@rl_app.command("play")
def play(
    bundle: Annotated[
        Path,
        typer.Argument(
            help="An RL run folder (runs/<name>) or its bundle folder (runs/<name>/bundle)."
        ),
    ],
    episodes: Annotated[int, typer.Option(help="Episodes to record.")] = 3,
    output: Annotated[Path, typer.Option("--output", "-o", help="The GIF to write.")] = Path(
        "play.gif"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the first episode.")] = 20_000,
    fps: Annotated[int, typer.Option(help="Frames per second of the GIF.")] = 30,
) -> None:
    """Render greedy episodes to an animated GIF."""
    from dlpipe.rl import load_agent

    typer.echo(f"wrote {load_agent(bundle).play(output, episodes=episodes, seed=seed, fps=fps)}")
