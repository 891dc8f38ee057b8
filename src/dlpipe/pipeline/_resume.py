"""Checkpoint folders for :func:`dlpipe.train`: where they go, what a run's fingerprint is, resuming."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.training.checkpoint import META_FILE, PARTIAL_SUFFIX, Checkpoint, find_checkpoint

__all__ = ["make_checkpoint", "data_fingerprint"]

# Epochs shorter than this are checkpointed less often; resuming from any epoch is exact anyway.
MIN_INTERVAL_S = 0.25


def data_fingerprint(ds: Any) -> dict[str, Any]:
    """A cheap identity of the training data: name, kind, shape and a hash of the values."""
    info: dict[str, Any] = {"name": getattr(ds, "name", None), "kind": getattr(ds, "kind", None)}
    frame = getattr(ds, "frame", None)
    if frame is not None:
        import pandas as pd

        info["rows"] = int(len(frame))
        info["columns"] = [str(c) for c in frame.columns]
        h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        info["sha256"] = hashlib.sha256(h.tobytes()).hexdigest()[:16]
    return info


def make_checkpoint(
    ds: Any, cfg: RunConfig, *, out: str | Path | None, runs_dir: str | Path, resume: str | Path | None, min_interval: float = MIN_INTERVAL_S
) -> Checkpoint:
    """A :class:`Checkpoint` for a new run (``runs/<name>.partial``) or one resuming ``resume``.

    Raises:
        InvalidConfigError: ``resume`` names a finished run, no checkpoint, or one of another config/data.
    """
    fingerprint = {"config": cfg.model_dump(mode="json"), "data": data_fingerprint(ds)}
    if resume is not None:
        import json

        folder = find_checkpoint(resume)
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8")) if (folder / META_FILE).is_file() else {}
        if out is not None and meta.get("out") and Path(out) != Path(meta["out"]):
            raise InvalidConfigError(
                f"`out` is {str(out)!r} but the run being resumed writes to {meta['out']!r}; drop `out` or pass the same folder."
            )
        return Checkpoint(folder, fingerprint, resume=True, min_interval=min_interval, extra={"out": meta.get("out")})
    if out is not None:
        folder = Path(out).with_name(Path(out).name + PARTIAL_SUFFIX)
    else:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(cfg.name or getattr(ds, "name", None) or "run")).strip("-") or "run"
        folder = Path(runs_dir) / f"{slug}-{datetime.now().strftime('%Y%m%d-%H%M%S')}{PARTIAL_SUFFIX}"
        i = 2
        while folder.exists():
            folder = Path(runs_dir) / f"{slug}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{i}{PARTIAL_SUFFIX}"
            i += 1
    if (folder / "checkpoint.safetensors").exists():
        raise InvalidConfigError(
            f"an interrupted run left a checkpoint in {str(folder)!r}; resume it with `--resume {folder}` or delete that folder."
        )
    return Checkpoint(folder, fingerprint, min_interval=min_interval, extra={"out": str(out) if out is not None else None})
