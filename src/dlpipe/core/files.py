"""Output paths: write under a temporary name, rename when complete; replace only dlpipe's own folders.

Every folder dlpipe writes (a run, a bundle, an ensemble, a tuning folder...) holds a marker file,
``.dlpipe`` (JSON: ``format``, ``kind``, ``dlpipe`` version), written first. :func:`atomic_dir` replaces
an existing folder only when it carries that marker with the same ``kind`` and the caller asked for it
(``overwrite=True``); a file, a symbolic link, a folder without the marker or a marked folder without
``overwrite`` get one sentence and are left untouched. An empty folder is used. While it writes, the
process holds the output path's lock (:mod:`dlpipe.core.locking`), so a second writer is refused and
any ``.<name>.tmp-*`` / ``.<name>.old-*`` folder found beside the path is a dead writer's leftover:
it is removed, with a warning that says so.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from dlpipe.core.errors import DlpipeError, DlpipeWarning
from dlpipe.core.locking import OutputBusyError, OutputLock

__all__ = [
    "MARKER",
    "OutputBusyError",
    "OutputExistsError",
    "OutputPathError",
    "atomic_dir",
    "atomic_file",
    "cache_dir",
    "check_output_dir",
    "check_output_file",
    "check_parent_writable",
    "claim_output_dir",
    "json_default",
    "read_marker",
    "report_or_warn",
    "write_json",
    "write_marker",
]

MARKER = ".dlpipe"
_LEFTOVER = r"\.{name}\.(?:tmp|old)-[0-9a-f]{{8}}"


class OutputPathError(DlpipeError, OSError):
    """An output path cannot be written: it names ``.``/``..``/the root, or the OS refused (permissions, not a folder...)."""


class OutputExistsError(OutputPathError, FileExistsError):
    """The output path exists and dlpipe may not replace it (not its own folder, or ``overwrite`` was not given)."""


def cache_dir(kind: str) -> Path:
    """dlpipe's cache folder for ``kind`` (decoded images, compiled kernels): ``$DLPIPE_CACHE_DIR`` or ~/.cache/dlpipe."""
    return Path(os.environ.get("DLPIPE_CACHE_DIR") or Path.home() / ".cache" / "dlpipe") / kind


# ---------------------------------------------------------------------- the marker
def write_marker(folder: str | Path, kind: str) -> None:
    """Mark ``folder`` as written by dlpipe (a folder of ``kind``: run, bundle, ensemble, tune, rl...)."""
    from dlpipe import __version__

    text = json.dumps({"format": "dlpipe-folder", "kind": kind, "dlpipe": __version__}) + "\n"
    Path(folder, MARKER).write_text(text, encoding="utf-8")


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a folder dlpipe wrote, or None (no marker, or not dlpipe's)."""
    f = Path(folder, MARKER)
    try:
        data = (
            json.loads(f.read_text(encoding="utf-8"))
            if f.is_file() and not f.is_symlink()
            else None
        )
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if (
        isinstance(data, dict)
        and data.get("format") == "dlpipe-folder"
        and isinstance(data.get("kind"), str)
    ):
        return data
    return None


# ---------------------------------------------------------------------- checks
def _check_name(
    path: Path, what: str, example: str = "the name of a new folder, such as 'runs/my-run'"
) -> None:
    if path.name in ("", ".", ".."):
        raise OutputPathError(
            f"{what} {str(path)!r} names the current folder, a parent folder or the root, which dlpipe never writes into "
            f"or replaces; pass {example}."
        )


def _os_error(what: str, path: Path, exc: OSError) -> OutputPathError:
    """One sentence for an OS refusal: the path, the OS reason and the errno name."""
    name = errno.errorcode.get(exc.errno or 0, "")
    reason = f"{exc.strerror or exc}{f' ({name})' if name else ''}"
    where = f" at {str(exc.filename)!r}" if exc.filename and str(exc.filename) != str(path) else ""
    return OutputPathError(
        f"cannot write {what} {str(path)!r}: {reason}{where}; pick a location you can write to."
    )


def check_output_dir(
    path: str | Path, *, kind: str, overwrite: bool = False, what: str = "`path`"
) -> Literal["absent", "empty", "replace"]:
    """What writing the folder ``path`` would do: create it, fill an empty folder, or replace dlpipe's own folder.

    Raises:
        OutputPathError: ``path`` is ``.``, ``..``, the root or a symbolic link.
        OutputExistsError: ``path`` is a file, a non-empty folder without dlpipe's marker, a dlpipe folder of
            another kind, or a dlpipe folder of this kind while ``overwrite`` is False.
    """
    p = Path(path)
    _check_name(p, what)
    if p.is_symlink():
        raise OutputExistsError(
            f"{what} {str(p)!r} is a symbolic link, which dlpipe never replaces; pass the name of a new folder."
        )
    try:
        if not p.exists():
            return "absent"
        if not p.is_dir():
            raise OutputExistsError(
                f"{what} {str(p)!r} is an existing file, not a folder, and dlpipe never replaces it; pass the name of a new folder, such as 'runs/my-run'."
            )
        entries = sorted(e.name for e in p.iterdir())
    except OSError as exc:
        if isinstance(exc, DlpipeError):
            raise
        raise _os_error(what, p, exc) from None
    if not entries:
        return "empty"
    marker = read_marker(p)
    if marker is None:
        shown = ", ".join(repr(e) for e in entries[:2]) + (", ..." if len(entries) > 2 else "")
        raise OutputExistsError(
            f"{what} {str(p)!r} is a folder that dlpipe did not write (it holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {shown}); "
            "dlpipe replaces only its own folders, so pass the name of a new or empty folder."
        )
    if marker["kind"] != kind:
        raise OutputExistsError(
            f"{what} {str(p)!r} is a dlpipe {marker['kind']} folder, not {'an' if kind[:1] in 'aeiou' else 'a'} {kind} folder; dlpipe replaces a folder only with one of "
            "the same kind, so pass another path."
        )
    if not overwrite:
        raise OutputExistsError(
            f"{what} {str(p)!r} already exists (a dlpipe {kind} folder); set `overwrite` to true to replace it, "
            "or pick another path."
        )
    return "replace"


def check_parent_writable(path: str | Path, what: str = "`path`") -> None:
    """Check, creating nothing, that ``path``'s parents exist or can be created (a fail-fast check before long work)."""
    p = Path(path)
    _check_name(p, what)
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(
            f"cannot write {what} {str(p)!r}: {str(parent)!r} is a file, not a folder (Not a directory (ENOTDIR)); pick a location inside a folder."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"cannot write {what} {str(p)!r}: Permission denied (EACCES) at {str(parent)!r}; pick a location you can write to."
        )


def _make_parents(path: Path, what: str) -> list[Path]:
    """Create the parents of ``path``; return those this call created (deepest last)."""
    missing = []
    parent = path.parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        for d in reversed(missing):
            d.mkdir()
    except (
        FileExistsError
    ) as exc:  # a file where a folder must be (mkdir's own error says "File exists")
        raise OutputPathError(
            f"cannot write {what} {str(path)!r}: {str(exc.filename)!r} is a file, not a folder (Not a directory (ENOTDIR)); pick a location inside a folder."
        ) from None
    except OSError as exc:
        raise _os_error(what, path, exc) from None
    if not path.parent.is_dir():
        raise OutputPathError(
            f"cannot write {what} {str(path)!r}: {str(path.parent)!r} is a file, not a folder (Not a directory (ENOTDIR)); pick a location inside a folder."
        )
    return list(reversed(missing))


def _clean_leftovers(path: Path) -> None:
    """Remove ``.<name>.tmp-*``/``.<name>.old-*`` folders beside ``path`` (call with its lock held: their writer is dead)."""
    pattern = re.compile(_LEFTOVER.format(name=re.escape(path.name)))
    try:
        found = [
            p
            for p in path.parent.iterdir()
            if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
        ]
    except OSError:
        return
    removed = []
    for p in found:
        if read_marker(p) is None and any(p.iterdir()):
            continue  # not dlpipe's: leave it alone
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p.name)
    if removed:
        warnings.warn(
            DlpipeWarning(
                f"removed {', '.join(map(repr, removed))} from {str(path.parent)!r}: "
                f"unfinished temporary folder(s) of an earlier write of {path.name!r} that was killed (no live process held its lock)."
            ),
            stacklevel=4,
        )


@contextmanager
def claim_output_dir(
    path: str | Path, *, kind: str, overwrite: bool = False, what: str = "`path`"
) -> Iterator[str]:
    """Hold ``path``'s lock for the ``with`` block after checking it may be written (fail fast, before long work).

    Parents are created; a stale leftover of a killed writer beside ``path`` is removed (with a warning).
    If the block raises, parents this call created are removed again when empty. Yields what
    :func:`check_output_dir` found: ``"absent"``, ``"empty"`` or ``"replace"``.

    Raises:
        OutputBusyError: another live process is writing ``path``.
        OutputPathError, OutputExistsError: as :func:`check_output_dir`, or the OS refused.
    """
    p = Path(path)
    _check_name(p, what)
    created = _make_parents(p, what)
    lock = OutputLock(p, what)
    try:
        try:
            first = lock.acquire()
        except OutputBusyError:
            raise
        except OSError as exc:
            raise _os_error(what, p, exc) from None
        state = check_output_dir(p, kind=kind, overwrite=overwrite, what=what)
        if first:
            _clean_leftovers(p)
        yield state
    except BaseException:
        lock.release()
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                break
        raise
    lock.release()


@contextmanager
def atomic_dir(
    path: str | Path, *, overwrite: bool = False, kind: str = "bundle", what: str = "`path`"
) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it becomes ``path``, on error it is removed.

    An interrupted write therefore never leaves a folder at ``path`` that looks complete. The folder is
    marked as a dlpipe ``kind`` folder (run, bundle, ensemble, rl, keras...; a bundle unless said); an
    existing ``path`` is replaced only if it is dlpipe's folder of the same kind and ``overwrite`` is True
    (checked before writing and again at the rename), while this process holds ``path``'s lock.

    Raises:
        OutputBusyError: another live process is writing ``path``.
        OutputExistsError: ``path`` exists and may not be replaced (see :func:`check_output_dir`).
        OutputPathError: ``path`` is ``.``/``..``/the root, or the OS refused a write (the reason and errno name).
    """
    final = Path(path)
    with claim_output_dir(final, kind=kind, overwrite=overwrite, what=what):
        tmp = private_tmp(final)
        try:
            tmp.mkdir()
            write_marker(tmp, kind)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _os_error(what, final, exc) from None
        try:
            yield tmp
            state = check_output_dir(final, kind=kind, overwrite=overwrite, what=what)
            _swap(tmp, final, state)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if (
                isinstance(exc, OSError)
                and not isinstance(exc, DlpipeError)
                and exc.errno is not None
            ):
                raise _os_error(what, final, exc) from exc
            raise


def _swap(tmp: Path, final: Path, state: str) -> None:
    if state == "empty":
        final.rmdir()  # an empty folder is used; on POSIX a rename over it would do too, not on Windows
    if state != "replace":
        os.replace(tmp, final)
        return
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------- single files
def check_output_file(path: str | Path, what: str = "`path`") -> Path:
    """Check that ``path`` can be written as a file: not a folder, not ``.``, its folder exists (not created)."""
    p = Path(path)
    _check_name(p, what, "a file name, such as 'predictions.csv'")
    if p.is_dir():
        raise OutputExistsError(
            f"{what} {str(p)!r} is a folder; pass a file name, such as {str(p / 'predictions.csv')!r}."
        )
    parent = p.parent
    if not parent.exists():
        raise OutputPathError(
            f"cannot write {what} {str(p)!r}: its folder {str(parent)!r} does not exist (No such file or directory (ENOENT)); "
            "create the folder first or pick another path."
        )
    if not parent.is_dir():
        raise OutputPathError(
            f"cannot write {what} {str(p)!r}: {str(parent)!r} is a file, not a folder (Not a directory (ENOTDIR)); pick a path inside a folder."
        )
    return p


def private_tmp(path: str | Path) -> Path:
    """A temporary name beside ``path`` that no other writer (another process, a user's own file) has:
    ``.<name>.tmp-<8 hex>``. Write there, then ``os.replace`` it onto ``path``."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_file(path: str | Path, what: str = "`path`") -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; on success it replaces ``path``, on error it is removed."""
    final = check_output_file(path, what)
    tmp = private_tmp(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, DlpipeError) and exc.errno is not None:
            raise _os_error(what, final, exc) from exc
        raise


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
    """Write ``data`` as strict JSON: NaN and ±inf become ``null`` (bare ``NaN`` is not JSON, and
    strict parsers such as JavaScript's ``JSON.parse`` reject the whole file). Readers treat ``null``
    as "not available" (an undefined ROC-AUC when a class is absent, R² of one row)."""
    import math

    def strict(obj: Any) -> Any:
        if isinstance(obj, float):  # np.float64 too: it subclasses float
            return obj if math.isfinite(obj) else None
        if isinstance(obj, dict):
            return {k: strict(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [strict(v) for v in obj]
        if isinstance(obj, (str, int, bool)) or obj is None:
            return obj
        try:
            return strict(json_default(obj))  # NumPy scalars and arrays, paths
        except TypeError:
            return obj  # json.dumps' default names the type it cannot write

    text = json.dumps(strict(data), indent=2, default=json_default, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def report_or_warn(build: Callable[[], object], run_path: Path) -> None:
    """Build a saved run's report; a failure warns instead of raising, since the run itself is safe on disk."""
    try:
        build()
    except Exception as exc:  # noqa: BLE001 - a failed report must not lose a trained, saved run
        import warnings

        from dlpipe.core.errors import DlpipeWarning

        warnings.warn(
            f"the run was saved but its report could not be built ({type(exc).__name__}: {exc}); "
            f"rebuild it with `dlpipe report {run_path}`.",
            DlpipeWarning,
            stacklevel=3,
        )
