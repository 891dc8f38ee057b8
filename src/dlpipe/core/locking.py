"""One writer per output path: an OS lock on a small file beside the path, held while dlpipe writes it.

The lock of ``runs/x`` is the file ``runs/.x.lock``, locked with ``fcntl.flock`` (POSIX). The kernel
releases it when its process ends, however it ends (``kill -9`` too), so "no live process holds the
lock" is exact, not a guess from ages or process ids: whatever a previous writer left beside the path
(a half-written ``.x.tmp-*`` folder, a checkpoint folder) is known to be stale once the lock is ours.
The holder writes its process id into the file, so a refused writer can say who holds it.

The file is deleted when the lock is released; a process that opened the old file just before that
checks, once it holds a lock, that the path still names the file it locked, and starts over if not.

Windows has no ``flock``: there the lock is a no-op (TODO(#15): ``msvcrt.locking``), so two writers
of one path are not kept apart, while every other check (the marker, the existing-path checks) holds.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from dlpipe.core.errors import DlpipeError

__all__ = ["OutputBusyError", "OutputLock", "lock_path"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_GUARD = threading.Lock()
_HELD: dict[str, OutputLock] = {}  # lock file -> the lock this process holds on it


class OutputBusyError(DlpipeError, BlockingIOError):
    """Another live process (or thread) is writing the same output path; ``owner`` says which ("process id 1234")."""

    owner = "process id unknown"


def lock_path(path: str | Path) -> Path:
    """The lock file of an output path: ``<parent>/.<name>.lock``."""
    p = Path(path)
    return p.parent / f".{p.name}.lock"


class OutputLock:
    """An exclusive, re-entrant (per thread) lock on an output path, held by this process.

    Args:
        path: The output path (a run folder, a bundle...); its parent folder must exist.
        what: How messages name the path, e.g. ``"`out`"``. Defaults to `"`path`"`.
        shown: The path messages show, when it is not ``path`` (a checkpoint folder locked by its run
            folder's lock). Defaults to ``path``.

    Example:
        >>> import tempfile
        >>> with OutputLock(tempfile.mkdtemp() + "/run") as lock:
        ...     lock.held
        True
    """

    def __init__(
        self, path: str | Path, what: str = "`path`", *, shown: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        self.what = what
        self.shown = str(shown if shown is not None else path)
        self.file = lock_path(self.path)
        self._key = os.path.abspath(self.file)
        self._fd: int | None = None
        self._depth = 0
        self._thread = 0
        self._outer: OutputLock | None = (
            None  # the lock object that really holds the OS lock (re-entry)
        )

    @property
    def held(self) -> bool:
        return self._outer is not None or self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; returns True on the first (outermost) acquisition by this process.

        Raises:
            OutputBusyError: another process or thread holds it (the message names its process id).
        """
        me = threading.get_ident()
        with _GUARD:
            holder = _HELD.get(self._key)
            if holder is not None:
                if holder._thread != me:
                    busy = OutputBusyError(
                        f"{self.what} {self.shown!r} is being written by another thread of this process "
                        f"(pid {os.getpid()}); wait for it to finish, or pick another path."
                    )
                    busy.owner = f"process id {os.getpid()}"
                    raise busy
                holder._depth += 1
                self._outer = holder
                return False
            if fcntl is not None:
                self._fd = _lock_file(self.file, self)
            self._depth, self._thread = 1, me
            _HELD[self._key] = self
            return True

    def release(self) -> None:
        with _GUARD:
            if self._outer is not None:
                self._outer._depth -= 1
                self._outer = None
                return
            if self._depth == 0:
                return
            self._depth -= 1
            if self._depth:
                return
            _HELD.pop(self._key, None)
            if self._fd is not None:
                try:
                    os.unlink(self.file)  # while still locked: see the module docstring
                except OSError:
                    pass
                os.close(self._fd)  # releases the flock
                self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_file(file: Path, lock: OutputLock) -> int:
    """Open, lock (without waiting) and stamp the lock file; the fd keeps the lock."""
    for _ in range(100):
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            busy = OutputBusyError(
                f"{lock.what} {lock.shown!r} is being written by another dlpipe process ({owner}); "
                "wait for it to finish, or pick another path."
            )
            busy.owner = owner
            raise busy from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(file))
        except FileNotFoundError:
            same = False
        if (
            not same
        ):  # the holder released and deleted the file after we opened it: take the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid()}).encode())
        return fd
    raise OutputBusyError(
        f"{lock.what} {lock.shown!r} could not be locked (its lock file {str(file)!r} kept changing); try again."
    )


def _read_owner(fd: int) -> str:
    pid = None
    for _ in range(5):  # the holder stamps its pid just after locking: give it a moment
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            pid = json.loads(os.read(fd, 4096) or b"{}").get("pid")
        except (OSError, ValueError, AttributeError):
            pid = None
        if isinstance(pid, int):
            return f"process id {pid}"
        time.sleep(0.02)
    return "process id unknown"
