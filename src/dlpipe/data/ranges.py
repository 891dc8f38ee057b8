"""Rows a model has no business answering confidently: values far outside training, and empty rows.

A table bundle keeps per-column training statistics (``reference_statistics``: min, max, missing
rate, from the training rows only). :func:`flag_rows` marks

- a number more than :data:`FAR` of the training range below the training minimum or above the maximum
  (a bill length of 4,750 mm when training saw 32-60 mm); within that margin a value is plausible
  extrapolation and is not flagged;
- a row whose every input is missing: its prediction is the answer for the training medians and
  most frequent categories and says nothing about the row.

``Bundle.predict`` adds a ``warnings`` column (and one :class:`~dlpipe.core.errors.DataWarning`),
the server a ``warnings`` list in its answer, ``dlpipe drift`` counts both. Pure Python and numpy:
the server calls it on JSON rows without pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FAR", "RowFlags", "flag_rows", "flag_frame", "summarize_flags", "describe_flags"]

FAR = 0.5  # training ranges beyond the training min/max before a value is "far outside"
_MAX_NOTES = 20  # per answer: a request of 10,000 bad rows gets 20 sentences and a count


@dataclass
class RowFlags:
    """Per row, the reasons it is flagged (empty: fine); counts of rows out of range and all missing."""

    reasons: list[list[str]] = field(default_factory=list)
    out_of_range: int = 0
    all_missing: int = 0

    @property
    def any(self) -> bool:
        return bool(self.out_of_range or self.all_missing)

    def column(self) -> list[str]:
        """The ``warnings`` column: reasons joined by "; " (empty string for a fine row)."""
        return ["; ".join(r) for r in self.reasons]


def _bounds(stats: Mapping[str, Any]) -> tuple[float, float] | None:
    lo, hi = stats.get("min"), stats.get("max")
    if not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)):
        return None
    span = float(hi) - float(lo)
    if span <= 0:  # a constant column: allow its own magnitude (or 1) either side
        span = max(abs(float(lo)), 1.0)
    return float(lo) - FAR * span, float(hi) + FAR * span


def _number(value: Any) -> float:
    if value is None or isinstance(value, str) and not value.strip():
        return math.nan
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    try:  # pandas' NA / NaT
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def flag_rows(
    columns: Mapping[str, Sequence[Any] | np.ndarray], reference: Mapping[str, Any], n_rows: int
) -> RowFlags:
    """Flag rows of raw values (``{column: values}``, one entry per input column) against training statistics.

    A column may come as a float array already parsed (NaN: missing; the server's numbers): it is
    checked in one pass, with the same outcome as its values one by one."""
    flags = RowFlags(reasons=[[] for _ in range(n_rows)])
    if not columns or not n_rows:
        return flags
    present = [0] * n_rows
    for name, values in columns.items():
        stats = reference.get(name) or {}
        bounds = _bounds(stats) if stats.get("kind") == "numeric" else None
        if isinstance(values, np.ndarray):
            arr = values.astype(np.float64, copy=False)
            present = (np.asarray(present) + ~np.isnan(arr)).tolist()
            if bounds is not None:
                with np.errstate(invalid="ignore"):
                    far = np.isfinite(arr) & ((arr < bounds[0]) | (arr > bounds[1]))
                for i in np.flatnonzero(far).tolist():
                    flags.reasons[i].append(
                        f"{name!r} = {float(arr[i]):.6g} is far outside the training range "
                        f"[{stats['min']:.6g}, {stats['max']:.6g}]"
                    )
            continue
        for i, v in enumerate(values):
            if _missing(v):
                continue
            present[i] += 1
            if bounds is None:
                continue
            x = _number(v)
            if math.isfinite(x) and not bounds[0] <= x <= bounds[1]:
                flags.reasons[i].append(
                    f"{name!r} = {x:.6g} is far outside the training range "
                    f"[{stats['min']:.6g}, {stats['max']:.6g}]"
                )
    for i in range(n_rows):
        if flags.reasons[i]:
            flags.out_of_range += 1
        if present[i] == 0:
            flags.reasons[i].append("every input is missing")
            flags.all_missing += 1
    return flags


def describe_flags(flags: RowFlags) -> str:
    """One sentence for ``Bundle.predict``'s warning and the CLI."""
    parts = []
    if flags.out_of_range:
        parts.append(
            f"{flags.out_of_range} row{'s have' if flags.out_of_range != 1 else ' has'} values far outside the training range"
        )
    if flags.all_missing:
        parts.append(
            f"{flags.all_missing} row{'s have' if flags.all_missing != 1 else ' has'} every input missing"
        )
    one = sum(1 for r in flags.reasons if r) == 1
    return (
        " and ".join(parts)
        + ("; its prediction is" if one else "; their predictions are")
        + " not backed by training data (see the `warnings` column)."
    )


def flag_frame(frame: Any, names: Sequence[str], reference: Mapping[str, Any]) -> RowFlags:
    """:func:`flag_rows` on a DataFrame's input columns."""
    cols = {n: frame[n].tolist() for n in names if n in frame.columns}
    return flag_rows(cols, reference, len(frame))


def summarize_flags(flags: RowFlags, *, row_offset: int = 0) -> list[str]:
    """Sentences for a response's ``warnings``: one per flagged row (the first 20) and a count of the rest."""
    notes = []
    flagged = [(i, r) for i, r in enumerate(flags.reasons) if r]
    for i, reasons in flagged[:_MAX_NOTES]:
        notes.append(
            f"row {i + row_offset}: {'; '.join(reasons)}, so its prediction is not backed by training data."
        )
    if len(flagged) > _MAX_NOTES:
        notes.append(f"... and {len(flagged) - _MAX_NOTES} more flagged rows.")
    return notes
