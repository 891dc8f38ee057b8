"""Errors and warnings that dlpipe raises on purpose.

Every error subclasses :class:`DlpipeError` *and* a built-in exception, so ``except ValueError``
in user code keeps working. A message is one sentence: what was wrong, what was expected, how to
fix it. The CLI prints it as ``error: <message>`` and exits 2 (bad input) or 1 (a failed run).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "DlpipeError",
    "InvalidInputError",
    "InvalidTargetError",
    "InvalidConfigError",
    "UnsupportedFileError",
    "BundleError",
    "RunFailedError",
    "NonFiniteOutputError",
    "MissingDependencyError",
    "DlpipeWarning",
    "DataWarning",
    "suggest",
    "format_names",
]


class DlpipeError(Exception):
    """Base class of every error dlpipe raises on purpose; ``exit_code`` is what the CLI returns."""

    exit_code = 2


class InvalidInputError(DlpipeError, ValueError):
    """The data handed in cannot be used as it is (missing columns, bad values, empty table)."""


class InvalidTargetError(DlpipeError, ValueError):
    """The target column or labels do not fit the task."""


class InvalidConfigError(DlpipeError, ValueError):
    """A configuration key is unknown or a value is out of range."""


class UnsupportedFileError(DlpipeError, ValueError):
    """A file cannot be read: missing, empty, or of a type dlpipe does not read."""


class BundleError(DlpipeError, ValueError):
    """A bundle folder is missing parts, of another format version, or its weights are damaged."""


class RunFailedError(DlpipeError, RuntimeError):
    """Training itself failed (for example the loss became NaN)."""

    exit_code = 1


class NonFiniteOutputError(DlpipeError, ValueError):
    """A model's output was NaN or infinite, so no prediction is given (its weights or inputs are broken)."""


class MissingDependencyError(DlpipeError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class DlpipeWarning(UserWarning):
    """Base class of dlpipe's warnings."""


class DataWarning(DlpipeWarning):
    """Something in the data was changed or dropped on the user's behalf (said in the message)."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean `x`?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def format_names(names: Iterable[object], limit: int = 12) -> str:
    """Join names for a message, eliding the middle of long lists."""
    items = [str(n) for n in names]
    if len(items) > limit:
        return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"
    return ", ".join(items)
