"""Read a run folder tolerantly: whatever exists is loaded, whatever is missing is listed.

A report must never crash on a run that was interrupted, written by an older dlpipe, or of a kind
this module does not know: every part is optional here, and ``missing`` says what was absent.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError

__all__ = ["RunFolder", "read_run_folder", "is_run_folder", "RUN_FILES"]

# What a run folder holds (any one of the first four makes a folder a run).
RUN_FILES = (
    "metrics.json",
    "history.csv",
    "config.yaml",
    "bundle/manifest.json",
    "predictions.csv",
    "lr_finder.csv",
)


@dataclass
class RunFolder:
    """The parts of one run folder that exist, as plain Python data (no torch needed)."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, list[str]] | None = None
    lr_finder: dict[str, list[float]] | None = None
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        return str(self.metrics.get("kind") or self.manifest.get("kind") or "table")

    @property
    def task(self) -> str:
        return str(
            self.metrics.get("task") or (self.manifest.get("task") or {}).get("kind") or "unknown"
        )

    @property
    def classes(self) -> list[Any] | None:
        classes = self.metrics.get("classes") or (self.manifest.get("task") or {}).get("classes")
        return list(classes) if classes else None

    @property
    def test(self) -> dict[str, Any]:
        test = self.metrics.get("test")
        return test if isinstance(test, dict) else {}

    def history_series(self) -> dict[str, np.ndarray]:
        keys: list[str] = []
        for r in self.history:
            keys.extend(k for k in r if k not in keys)
        return {k: np.array([r.get(k, np.nan) for r in self.history], dtype=float) for k in keys}


def is_run_folder(path: str | Path) -> bool:
    root = Path(path)
    return root.is_dir() and any((root / f).is_file() for f in RUN_FILES[:4])


def read_run_folder(path: str | Path) -> RunFolder:
    """Load what exists of a run folder.

    Raises:
        InvalidInputError: ``path`` is not a folder, or holds none of a run's files.
    """
    root = Path(path)
    if not is_run_folder(root):
        what = (
            "does not exist"
            if not root.exists()
            else ("is a file" if root.is_file() else "holds none of a run's files")
        )
        raise InvalidInputError(
            f"{str(root)!r} {what}, so it is not a dlpipe run folder; a run folder (runs/<name>/, written by "
            "`dlpipe train`) holds metrics.json, history.csv, config.yaml and bundle/; pass one of those folders."
        )
    run = RunFolder(path=root)
    run.metrics = _read_json(run, "metrics.json")
    run.manifest = _read_json(run, "bundle/manifest.json")
    if (root / "config.yaml").is_file():
        try:
            import yaml

            loaded = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8"))
            run.config = loaded if isinstance(loaded, dict) else {}
        except Exception as exc:  # noqa: BLE001 - a damaged file is reported in the page, not raised
            run.problems.append(f"config.yaml could not be read ({type(exc).__name__})")
    else:
        run.missing.append("config.yaml")
    rows = _read_csv(run, "history.csv")
    if rows is not None:
        run.history = [{k: _float(v) for k, v in r.items() if v not in ("", None)} for r in rows]
    rows = _read_csv(run, "predictions.csv")
    if rows is not None and rows:
        run.predictions = {k: [r.get(k, "") for r in rows] for k in rows[0]}
    if (root / "lr_finder.csv").is_file():
        rows = _read_csv(run, "lr_finder.csv")
        if rows:
            run.lr_finder = {
                "lr": [_float(r["lr"]) for r in rows],
                "loss": [_float(r["loss"]) for r in rows],
            }
    return run


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _read_json(run: RunFolder, name: str) -> dict[str, Any]:
    p = run.path / name
    if not p.is_file():
        run.missing.append(name)
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        run.problems.append(f"{name} is not valid JSON ({exc})")
        return {}
    return data if isinstance(data, dict) else {}


def _read_csv(run: RunFolder, name: str) -> list[dict[str, str]] | None:
    p = run.path / name
    if not p.is_file():
        run.missing.append(name)
        return None
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        run.problems.append(f"{name} could not be read ({exc})")
        return None
