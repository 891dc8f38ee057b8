"""Library messages name config keys and Python arguments (`strict`); the CLI shows its flags (`--no-strict`).

:func:`with_flags` rewrites a library message for the command line. The rule:

- A backticked token that is exactly a *known key* and a flag of the command being run becomes that
  flag: `learning_rate` -> `--learning-rate`, `out` -> `--out`. Known keys are every field of
  :class:`~dlpipe.core.config.RunConfig` at every level (section names excluded) plus the Python
  arguments CLI flags set (``_ARGUMENTS``). Flags come from the command itself (click introspection),
  so a key the command has no flag for stays a key (`runs_dir` of ``dlpipe runs``, a positional).
- "set `x` to false" becomes "pass `--no-x`" (the flag's off spelling: `--direct` for `recursive`,
  `--no-retrain` for `retrain`); "set `x` to true" becomes "pass `--x`" for a boolean flag.
- A key whose flag has another name is looked up through ``_RENAMED`` (`family` -> `--model`).
- Everything else is left as it is: dotted keys (`model.dropout`), paths, values, suggestions
  ("did you mean `y`?", which name the same kind of thing as the wrong name), and whole messages
  about config-file keys ("unknown config key `epoch` ...", "config value ..."), whose names are
  what a ``--config`` file must say.

A known, accepted collision: a column, file or option value named exactly like a key that is also a
flag of the command, and written in backticks outside a suggestion, is shown as the flag. Library
messages quote columns and paths with ``!r``, not backticks, so this needs an unusual message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# Python arguments (not config keys) that CLI flags set, by the commands that have them.
_ARGUMENTS = frozenset(
    {
        # dl.train / dlpipe train
        "test",
        "out",
        "overwrite",
        "config",
        "runs_dir",
        "report",
        "checkpoint",
        "resume",
        "nproc",
        "master_port",
        "track",
        # dlpipe rl train, evaluate, play
        "algo",
        "steps",
        "eval_episodes",
        "episodes",
        "fps",
        # export, ensemble, drift, anomalies
        "format",
        "quantize",
        "output",
        "data",
        "method",
        "weights",
        "folds",
        "level",
        "contamination",
        "threshold_percentile",
        # tune
        "trials",
        "timeout",
        "space",
        "storage",
        "study_name",
        "heartbeat",
        "pruner",
        "retrain",
        # serve: run_server's arguments and ServeConfig's fields
        "host",
        "port",
        "workers",
        "api_key_env",
        "batch_window_ms",
        "max_body_mb",
        "header_timeout_s",
        "body_timeout_s",
        "keep_alive_s",
        "max_connections",
        "max_header_kb",
        "drift_window",
    }
)
# A key whose flag has another name -> the CLI parameter that sets it.
_RENAMED = {
    "family": "model",
    "header_timeout_s": "header_timeout",
    "body_timeout_s": "body_timeout",
    "keep_alive_s": "keep_alive_timeout",
}

_SET_BOOL = re.compile(r"\bset `([a-z][a-z0-9_]*)` to (true|false)\b")
_TOKEN = re.compile(r"(?<![\w`])`([a-z][a-z0-9_]*)`(?!`)")
_SUGGESTION = "did you mean "
_ABOUT_CONFIG_KEYS = re.compile(r"\bconfig (?:key|value|section)s?\b")


@lru_cache(maxsize=1)
def known_keys() -> frozenset[str]:
    """Every leaf field name of RunConfig (``epochs``, ``strict``, ``seed``...) and the arguments in ``_ARGUMENTS``."""
    from pydantic import BaseModel

    from dlpipe.core.config import RunConfig

    def leaves(model: type[BaseModel]) -> set[str]:
        out: set[str] = set()
        for name, field in model.model_fields.items():
            kind = field.annotation
            out |= (
                leaves(kind) if isinstance(kind, type) and issubclass(kind, BaseModel) else {name}
            )
        return out

    return frozenset(leaves(RunConfig)) | _ARGUMENTS


def command_of(argv: Sequence[str]) -> tuple[str, ...]:
    """The command path an argv runs (``("rl", "train")``); the root and groups take only value-less flags (--debug)."""
    from typer.main import get_command

    from dlpipe.cli.app import app

    node: Any = get_command(app)
    path: list[str] = []
    for arg in argv:
        if arg.startswith("-"):
            continue
        sub = (getattr(node, "commands", None) or {}).get(arg)
        if sub is None:
            break
        node, path = sub, [*path, arg]
        if not getattr(node, "commands", None):
            break
    return tuple(path)


@lru_cache(maxsize=32)
def flags_of(command: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
    """``(on, off, booleans)`` of a command: key -> its flag, key -> its off flag, keys whose flag is a switch."""
    from typer.main import get_command

    from dlpipe.cli.app import app

    node: Any = get_command(app)
    for name in command:
        node = (getattr(node, "commands", None) or {}).get(name)
        if node is None:
            return {}, {}, frozenset()
    on: dict[str, str] = {}
    off: dict[str, str] = {}
    booleans: set[str] = set()
    by_param: dict[str, str] = {}
    for p in node.params:
        if getattr(p, "param_type_name", "") != "option":
            continue
        long = [o for o in p.opts if o.startswith("--")]
        if not long:
            continue
        key = long[0][2:].replace("-", "_")
        if p.is_flag and not p.secondary_opts and key.startswith("no_"):
            off[key[3:]] = long[0]  # --no-retrain: the off switch of `retrain`
            continue
        for o in long:
            on[o[2:].replace("-", "_")] = o
        by_param[p.name] = long[0]
        if p.is_flag:
            booleans.add(key)
            negative = [o for o in p.secondary_opts if o.startswith("--")]
            if negative:
                off[key] = negative[0]
    for key, param in _RENAMED.items():
        if param in by_param and key not in on:
            on[key] = by_param[param]
    return on, off, frozenset(booleans)


def with_flags(message: str, command: Sequence[str]) -> str:
    """``message`` with the keys it names in backticks shown as ``command``'s flags (the rule in the module docstring)."""
    if "`" not in message or _ABOUT_CONFIG_KEYS.search(message):
        return message
    keys = known_keys()
    on, off, booleans = flags_of(tuple(command))
    if not on and not off:
        return message

    def switch(m: re.Match[str]) -> str:
        key, value = m.group(1), m.group(2)
        if key not in keys:
            return m.group(0)
        if value == "false" and key in off:
            return f"pass `{off[key]}`"
        if value == "true" and key in booleans and key in on:
            return f"pass `{on[key]}`"
        return m.group(0)

    def token(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in keys or key not in on or m.string[: m.start()].endswith(_SUGGESTION):
            return m.group(0)
        return f"`{on[key]}`"

    return _TOKEN.sub(token, _SET_BOOL.sub(switch, message))
