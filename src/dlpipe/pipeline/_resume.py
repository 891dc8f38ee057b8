"""Checkpoint folders for :func:`dlpipe.train`: where they go, what a run's fingerprint is, resuming."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import DlpipeWarning, InvalidConfigError, InvalidInputError, RunFailedError
from dlpipe.core.files import OutputExistsError, OutputPathError
from dlpipe.core.locking import OutputBusyError, OutputLock
from dlpipe.training.checkpoint import (
    META_FILE,
    PARTIAL_SUFFIX,
    Checkpoint,
    check_checkpoint,
    find_checkpoint,
    is_checkpoint_folder,
)

__all__ = ["checkpointing", "resume_target", "data_fingerprint"]

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


def resume_target(resume: str | Path, out: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The checkpoint folder ``--resume`` names and its meta.json, checked before any data is read or trained.

    Raises:
        InvalidConfigError: ``resume`` names a finished run or no checkpoint, or ``out`` differs from the run's.
        InvalidInputError: the checkpoint or its meta.json is truncated or damaged.
    """
    import json

    folder = find_checkpoint(resume)
    meta: dict[str, Any] = {}
    if (folder / META_FILE).is_file():
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(
                f"the checkpoint's {str(folder / META_FILE)!r} is damaged ({' '.join(str(exc).split())[:200]}), so the run cannot be resumed from it; "
                "start the run again without `resume` (and set `overwrite` to true to discard this checkpoint)."
            ) from None
    check_checkpoint(folder)
    if out is not None and meta.get("out") and Path(out) != Path(meta["out"]):
        raise InvalidConfigError(
            f"`out` is {str(out)!r} but the run being resumed writes to {meta['out']!r}; drop `out` or pass the same folder."
        )
    return folder, meta


def _base(folder: Path) -> Path:
    """The run folder a checkpoint folder belongs to (``x.partial`` -> ``x``): its lock guards both."""
    name = folder.name
    return (
        folder.with_name(name[: -len(PARTIAL_SUFFIX)])
        if name.endswith(PARTIAL_SUFFIX) and len(name) > len(PARTIAL_SUFFIX)
        else folder
    )


@contextmanager
def checkpointing(
    ds: Any,
    cfg: RunConfig,
    *,
    out: str | Path | None,
    runs_dir: str | Path,
    resume: str | Path | None,
    overwrite: bool = False,
    min_interval: float = MIN_INTERVAL_S,
) -> Iterator[Checkpoint]:
    """A :class:`Checkpoint` for a new run (``<out>.partial``, or ``runs/<name>-<time>.partial``) or one resuming ``resume``.

    The checkpoint folder's run-folder lock is held for the ``with`` block, so no other process writes
    or resumes it meanwhile; a checkpoint folder found at a new run's path was therefore left by a dead
    process: one without a checkpoint file is removed (with a warning), one with a checkpoint is kept for
    ``--resume`` unless ``overwrite`` discards it.

    What is left when the block raises: a :class:`RunFailedError` (a loss that became NaN...) removes the
    checkpoint folder, since the same data and flags fail the same way again; any other error keeps a
    folder that holds a checkpoint (a crash, Ctrl-C, a full disk: ``--resume`` continues it) and removes
    one that holds none yet. A ``kill -9`` runs no code and keeps it.

    Raises:
        InvalidConfigError: ``resume`` names a finished run, no checkpoint, or one of another config/data;
            or an interrupted run's checkpoint is in the way (without ``overwrite``).
        InvalidInputError: the checkpoint to resume is damaged.
        OutputBusyError: another process is writing this run (the message names its process id).
    """
    fingerprint = {"config": cfg.model_dump(mode="json"), "data": data_fingerprint(ds)}
    with ExitStack() as stack:
        if resume is not None:
            folder, meta = resume_target(resume, out)
            stack.enter_context(OutputLock(_base(folder), "`resume`", shown=folder))
            ckpt = Checkpoint(
                folder,
                fingerprint,
                resume=True,
                min_interval=min_interval,
                extra={"out": meta.get("out")},
            )
        else:
            folder = stack.enter_context(_new_folder(out, runs_dir, cfg, ds, overwrite))
            ckpt = Checkpoint(
                folder,
                fingerprint,
                min_interval=min_interval,
                extra={"out": str(out) if out is not None else None},
            )
        try:
            yield ckpt
        except RunFailedError:
            ckpt.remove()
            raise
        except BaseException:
            if not ckpt.has_checkpoint:
                ckpt.remove()
            raise


@contextmanager
def _new_folder(
    out: str | Path | None, runs_dir: str | Path, cfg: RunConfig, ds: Any, overwrite: bool
) -> Iterator[Path]:
    """A checkpoint folder no live process uses, with its run-folder lock held; clears a dead run's leftover."""
    if out is not None:
        base = Path(out)
        with OutputLock(base, "`out`"):
            _clear_leftover(base.with_name(base.name + PARTIAL_SUFFIX), base, overwrite)
            yield base.with_name(base.name + PARTIAL_SUFFIX)
        return
    runs = Path(runs_dir)
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"cannot write `runs_dir` {str(runs)!r}: {exc.strerror or exc}; pick a folder you can write to."
        ) from None
    slug = (
        re.sub(r"[^A-Za-z0-9_.-]+", "-", str(cfg.name or getattr(ds, "name", None) or "run")).strip(
            "-"
        )
        or "run"
    )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        base = runs / (f"{slug}-{stamp}" if i == 1 else f"{slug}-{stamp}-{i}")
        lock = OutputLock(base, "`out`")
        try:
            lock.acquire()
        except OutputBusyError:
            continue  # another run of the same name started in the same second
        folder = base.with_name(base.name + PARTIAL_SUFFIX)
        if folder.exists() or folder.is_symlink() or base.exists():
            lock.release()
            continue
        try:
            yield folder
        finally:
            lock.release()
        return
    raise OutputPathError(
        f"no free checkpoint folder name was found in {str(runs)!r} for {slug!r}; pass `out`."
    )


def _clear_leftover(folder: Path, base: Path, overwrite: bool) -> None:
    """``folder`` (``<out>.partial``) is not in use (we hold its lock): keep, discard or refuse what a dead run left."""
    if not (folder.exists() or folder.is_symlink()):
        return
    if not is_checkpoint_folder(folder):
        raise OutputExistsError(
            f"`out` {str(base)!r} keeps its checkpoints in {str(folder)!r}, which exists but was not written by dlpipe; "
            "move it away, pass another `out`, or set `checkpoint` to false."
        )
    leftover = Checkpoint(folder, {})
    if leftover.has_checkpoint:
        if not overwrite:
            raise InvalidConfigError(
                f"an interrupted run left a checkpoint in {str(folder)!r}; resume it by passing {str(folder)!r} as `resume`, "
                "or set `overwrite` to true to discard it and start afresh."
            )
        leftover.remove()
        warnings.warn(
            DlpipeWarning(
                f"discarded the checkpoint an interrupted run left in {str(folder)!r} (`overwrite` is set)."
            ),
            stacklevel=5,
        )
    else:
        leftover.remove()
        warnings.warn(
            DlpipeWarning(
                f"removed {str(folder)!r}, left by a run that was killed before its first checkpoint (no live process held its lock)."
            ),
            stacklevel=5,
        )
