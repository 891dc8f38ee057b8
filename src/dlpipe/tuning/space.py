"""The search space: a small YAML/dict of ranges, validated, sampled through an Optuna trial.

The default is the seed notes' Keras Tuner space::

    n_layers: {low: 2, high: 8}                      # hidden layers
    units: {low: 32, high: 512, step: 32}            # per layer (units_0, units_1, ...)
    dropout: {low: 0.0, high: 0.5}
    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
    batch_size: [16, 32, 64, 128]                    # a list is a categorical choice
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlpipe.core.errors import InvalidConfigError, UnsupportedFileError, format_names, suggest

__all__ = ["SearchSpace", "DEFAULT_SPACE", "load_space"]

DEFAULT_SPACE: dict[str, Any] = {
    "n_layers": {"low": 2, "high": 8},
    "units": {"low": 32, "high": 512, "step": 32},
    "dropout": {"low": 0.0, "high": 0.5},
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "batch_size": [16, 32, 64, 128],
}
# keys a space may hold -> where the value goes ("model"/"train" config section)
KNOWN = {
    "n_layers": "model",
    "units": "model",
    "dropout": "model",
    "activation": "model",
    "batch_norm": "model",
    "learning_rate": "train",
    "batch_size": "train",
    "weight_decay": "train",
    "optimizer": "train",
    "momentum": "train",
}


@dataclass(frozen=True)
class _Range:
    name: str
    low: float
    high: float
    step: float | None
    log: bool
    integer: bool

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high


@dataclass
class SearchSpace:
    """Validated ranges and choices; :meth:`sample` draws one configuration from an Optuna trial."""

    ranges: dict[str, _Range | list[Any]]

    def sample(self, trial: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, r in self.ranges.items():
            if name == "units":
                continue
            params[name] = self._suggest(trial, name, r)
        if "units" in self.ranges:
            n = int(params.get("n_layers", 2))
            params["hidden"] = [
                self._suggest(trial, f"units_{i}", self.ranges["units"]) for i in range(n)
            ]
        return params

    @staticmethod
    def _suggest(trial: Any, name: str, r: _Range | list[Any]) -> Any:
        if isinstance(r, list):
            return trial.suggest_categorical(name, r)
        if r.integer:
            return trial.suggest_int(
                name, int(r.low), int(r.high), step=int(r.step or 1), log=r.log
            )
        return trial.suggest_float(name, r.low, r.high, step=r.step, log=r.log)

    def optuna_params(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """A flat config (hidden, dropout, ...) as Optuna parameters, or None if it lies outside the space."""
        out: dict[str, Any] = {}
        for name, r in self.ranges.items():
            if name == "units":
                hidden = config.get("hidden") or []
                if "n_layers" in self.ranges and len(hidden) != out.get("n_layers"):
                    return None
                for i, u in enumerate(hidden):
                    if not _fits(r, u):
                        return None
                    out[f"units_{i}"] = u
                continue
            if name not in config or not _fits(r, config[name]):
                return None
            out[name] = config[name]
        return out


def _fits(r: _Range | list[Any], value: Any) -> bool:
    if isinstance(r, list):
        return value in r
    if not r.contains(value):
        return False
    return (
        r.step is None or abs(((value - r.low) / r.step) - round((value - r.low) / r.step)) < 1e-9
    )


def load_space(space: str | Path | Mapping[str, Any] | None = None) -> SearchSpace:
    """Read and validate a space (a YAML path, a mapping, or None for the default Keras Tuner space)."""
    if space is None:
        raw: Any = DEFAULT_SPACE
    elif isinstance(space, Mapping):
        raw = dict(space)
    else:
        import yaml

        path = Path(space)
        if not path.is_file():
            raise UnsupportedFileError(
                f"search space file {str(path)!r} does not exist; pass a YAML file such as space.yaml."
            )
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidConfigError(
                f"search space {str(path)!r} is not valid YAML ({str(exc).splitlines()[0]}); fix the file."
            ) from None
        if not isinstance(raw, dict) or not raw:
            raise InvalidConfigError(
                f"search space {str(path)!r} must map names to ranges, e.g. `dropout: {{low: 0.0, high: 0.5}}`."
            )
    ranges: dict[str, _Range | list[Any]] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if name not in KNOWN:
            problems.append(
                f"unknown search-space key {name!r}{suggest(str(name), KNOWN)} (known: {format_names(KNOWN)})"
            )
            continue
        if isinstance(value, list):
            if not value:
                problems.append(f"`{name}` has an empty list of choices; list at least one value")
            else:
                ranges[name] = list(value)
            continue
        if not isinstance(value, Mapping) or "low" not in value or "high" not in value:
            problems.append(
                f"`{name}` is {value!r} but must be {{low: ..., high: ...}} (optionally step/log) or a list of choices"
            )
            continue
        low, high = value["low"], value["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            problems.append(f"`{name}` has low={low!r}, high={high!r} but both must be numbers")
            continue
        integer = name in ("n_layers", "units", "batch_size") or (
            isinstance(low, int)
            and isinstance(high, int)
            and "step" not in value
            and not value.get("log")
        )
        if low > high:
            problems.append(
                f"`{name}` has an inverted range: low={low!r} > high={high!r}; swap them"
            )
            continue
        if low == high and not integer:
            problems.append(
                f"`{name}` has an empty range: low == high == {low!r}; widen it or fix the value in the config instead"
            )
            continue
        log = bool(value.get("log", False))
        if log and low <= 0:
            problems.append(f"`{name}` uses log=true but low={low!r}; a log range needs low > 0")
            continue
        step = value.get("step")
        if step is not None and (not isinstance(step, (int, float)) or step <= 0):
            problems.append(f"`{name}` has step={step!r} but the step must be a positive number")
            continue
        ranges[name] = _Range(name, low, high, step, log, integer)
    if "units" in ranges and "n_layers" not in ranges:
        problems.append(
            "`units` needs `n_layers` in the space too (how many hidden layers to size)"
        )
    if problems:
        raise InvalidConfigError("the search space is invalid: " + "; ".join(problems) + ".")
    return SearchSpace(ranges)
