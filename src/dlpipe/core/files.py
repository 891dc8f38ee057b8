"""Atomic folders and files: write under a temporary name, rename when complete."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_dir", "cache_dir", "json_default", "report_or_warn", "write_json"]


def cache_dir(kind: str) -> Path:
    """dlpipe's cache folder for ``kind`` (decoded images, compiled kernels): ``$DLPIPE_CACHE_DIR`` or ~/.cache/dlpipe."""
    return Path(os.environ.get("DLPIPE_CACHE_DIR") or Path.home() / ".cache" / "dlpipe") / kind


@contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path``, on error it is removed.

    An interrupted write therefore never leaves a folder at ``path`` that looks complete.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(str(final))
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def json_default(obj: Any) -> Any:
    """Make NumPy scalars/arrays and paths JSON-able."""
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2, default=json_default, allow_nan=True) + "\n", encoding="utf-8")


def report_or_warn(build: Callable[[], object], run_path: Path) -> None:
    """Build a saved run's report; a failure warns instead of raising, since the run itself is safe on disk."""
    try:
        build()
    except Exception as exc:  # noqa: BLE001 - a failed report must not lose a trained, saved run
        import warnings

        from dlpipe.core.errors import DlpipeWarning

        warnings.warn(f"the run was saved but its report could not be built ({type(exc).__name__}: {exc}); "
                      f"rebuild it with `dlpipe report {run_path}`.", DlpipeWarning, stacklevel=3)
