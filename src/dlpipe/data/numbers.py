"""The rule for numbers that reach a model: finite, and within what float32 holds.

Models compute in float32, whose largest value is about 3.4e38. A value beyond it (1e308 fits a
float64 but not a float32) overflowed silently before: scaling turned it into inf, the model's
output into NaN, and a prediction was printed anyway. So, wherever raw numbers enter:

- NaN (an empty cell) is *missing*: tables impute it (the training median, plus an indicator).
- ``inf``/``-inf`` is refused: it is not a measurement, and imputing it would hide a bug upstream
  (a division by zero); the message says to empty the cells to have them treated as missing.
- ``|x| > 3.4e38`` is refused, and so is a value that scaling (with the training statistics)
  pushes beyond it.

Each refusal is one sentence naming the column, the first offending row and how many rows.
Rows are counted from 1 below the header, as a spreadsheet would show the data rows. Arrays of
samples (images, windows) have no "missing": NaN is refused there too, by sample.

And on the way out, :func:`check_outputs`: a model output that is NaN or inf is refused (a
prediction is never NaN), naming the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError, NonFiniteOutputError, format_names

__all__ = [
    "FLOAT32_MAX",
    "check_array",
    "check_numbers",
    "check_outputs",
    "check_scaled",
    "row_label",
]

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4028235e38


def row_label(index: Any, position: int) -> str:
    """How a message names a row: ``row 7`` (1-based) for integer indexes, else the index label."""
    if index is None:
        return f"row {position + 1}"
    label = index[position]
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return f"row {int(label) + 1}"
    return f"row {label!r}"


def _where(bad: np.ndarray, index: Any) -> tuple[int, str]:
    rows = np.flatnonzero(bad)
    more = len(rows) - 1
    tail = f" and {more} more row{'s' if more > 1 else ''}" if more else ""
    return int(rows[0]), f"{row_label(index, int(rows[0]))}{tail}"


def check_numbers(
    values: np.ndarray, name: str, index: Any = None, *, what: str = "column", of: str | None = None
) -> None:
    """Refuse ±inf and values beyond float32's range in one column (NaN passes: it means missing).

    Args:
        values: The column as float64, shape (N,).
        name: The column's name, for the message.
        index: Row labels (a pandas index) or None for positions.
        what: What the values are ("column", "target"...). Defaults to `"column"`.
        of: The table's name, when the message should say which. Defaults to `None`.

    Raises:
        InvalidInputError: naming the column, the first offending row and the count.
    """
    with np.errstate(invalid="ignore"):
        infinite = np.isinf(values)
        huge = ~infinite & (np.abs(values) > FLOAT32_MAX)
    subject = f"{what} {name!r}" + (f" of {of!r}" if of else "")
    if infinite.any():
        first, where = _where(infinite, index)
        raise InvalidInputError(
            f"{subject} holds {float(values[first])!r} in {where}; dlpipe does not guess a value for infinities, "
            "so replace them with numbers, or empty those cells to have them treated as missing."
        )
    if huge.any():
        first, where = _where(huge, index)
        raise InvalidInputError(
            f"{subject} holds {float(values[first])!r} in {where}, beyond the ±{FLOAT32_MAX:.3g} that a model's "
            "float32 numbers can hold; fix those values or rescale the column (for example change its unit)."
        )


def check_scaled(scaled: np.ndarray, raw: np.ndarray, names: list[str], index: Any = None) -> None:
    """Refuse values that the fitted scaling pushes beyond float32's range (or to inf/NaN).

    ``scaled`` and ``raw``: (N, F) float64, before and after scaling; ``names``: F column names.
    """
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(scaled) | (np.abs(scaled) > FLOAT32_MAX)
    if not bad.any():
        return
    col = int(np.flatnonzero(bad.any(axis=0))[0])
    first, where = _where(bad[:, col], index)
    raise InvalidInputError(
        f"column {names[col]!r} holds {float(raw[first, col])!r} in {where}, which the training scaling turns into "
        f"{float(scaled[first, col]):.3g}, beyond the ±{FLOAT32_MAX:.3g} that a model's float32 numbers can hold; "
        "check those values, or retrain on data that covers their range."
    )


def check_array(x: np.ndarray, what: str = "`x`") -> None:
    """Refuse NaN, ±inf and values beyond float32 in an array of samples (N, ...); arrays have no "missing"."""
    x = np.asarray(x)
    if x.dtype.kind not in "fc" or x.size == 0:
        return  # integers and bools are finite, and uint8 pixels small
    with np.errstate(invalid="ignore"):
        bad = (~np.isfinite(x) | (np.abs(x) > FLOAT32_MAX)).reshape(len(x), -1)
    if not bad.any():
        return
    samples = np.flatnonzero(bad.any(axis=1))
    value = float(x.reshape(len(x), -1)[samples[0]][bad[samples[0]]][0])
    more = (
        f" and {len(samples) - 1} more sample{'s' if len(samples) > 2 else ''}"
        if len(samples) > 1
        else ""
    )
    raise InvalidInputError(
        f"{what} holds {value!r} in sample {int(samples[0]) + 1}{more}, but samples must be numbers within "
        f"±{FLOAT32_MAX:.3g} (a model computes in float32), not NaN or infinite values; clean or drop those samples."
    )


def check_outputs(outputs: np.ndarray) -> None:
    """Refuse a model's outputs when any row holds NaN or ±inf: such a prediction would be a silent lie.

    ``outputs``: (N,) or (N, K) logits or values, one row per input row.
    """
    out = np.asarray(outputs)
    if out.size == 0 or np.isfinite(out).all():
        return
    bad = ~np.isfinite(out.reshape(len(out), -1)).all(axis=1)
    rows = (np.flatnonzero(bad) + 1).tolist()
    which = f"row {rows[0]}" if len(rows) == 1 else f"rows {format_names(rows, limit=5)}"
    raise NonFiniteOutputError(
        f"the model produced NaN or infinite outputs for {which} ({len(rows)} of {len(out)} rows), so no prediction is given; "
        "its weights or those rows' inputs are broken: check the input values, and retrain the bundle if its weights hold NaN."
    )
