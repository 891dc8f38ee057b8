"""Prediction intervals for regression: split conformal from the validation rows' residuals.

For a level ``1 - alpha`` the half-width is the ``ceil((n + 1)(1 - alpha))``-th smallest absolute
residual ``|y - prediction|`` of the ``n`` validation rows (Lei et al., 2018): when validation and
new rows are exchangeable, ``prediction ± half-width`` holds the truth with probability at least
``1 - alpha`` (and below ``1 - alpha + 1/(n + 1)``). The width is the same for every row. With too
few validation rows for a level (``n < 1/alpha - 1``) that level has no interval (``None``).

The validation rows also chose the early-stopping epoch, which makes their residuals a little
smaller than fresh rows' would be; the test coverage in metrics.json shows what this costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["LEVELS", "conformal_half_widths", "interval_coverage", "interval_columns"]

LEVELS: tuple[float, ...] = (0.8, 0.9, 0.95)


def conformal_half_widths(
    residuals: np.ndarray, levels: Sequence[float] = LEVELS
) -> list[float | None]:
    """Half-widths (target units) of the split-conformal intervals at ``levels`` from absolute residuals.

    Example:
        >>> conformal_half_widths(np.arange(1.0, 100.0), [0.8, 0.9])
        [80.0, 90.0]
    """
    r = np.sort(np.abs(np.asarray(residuals, dtype=np.float64).reshape(-1)))
    r = r[np.isfinite(r)]
    n = len(r)
    out: list[float | None] = []
    for level in levels:
        k = math.ceil((n + 1) * level - 1e-9)  # 1e-9: (n + 1) * 0.9 may round up past an integer
        out.append(float(r[k - 1]) if 1 <= k <= n else None)
    return out


def interval_coverage(
    y: np.ndarray, prediction: np.ndarray, half_widths: Sequence[float | None]
) -> list[float | None]:
    """The share of rows whose truth lies inside ``prediction ± half_width``, per level."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    err = np.abs(y - np.asarray(prediction, dtype=np.float64).reshape(-1))
    return [float((err <= h).mean()) if h is not None and len(y) else None for h in half_widths]


def interval_columns(prediction: np.ndarray, intervals: dict[str, Any]) -> dict[str, np.ndarray]:
    """``lower_<pct>`` / ``upper_<pct>`` columns for the levels a bundle stores (``manifest["intervals"]``)."""
    out: dict[str, np.ndarray] = {}
    if not intervals.get("levels"):
        return out
    pred = np.asarray(prediction, dtype=np.float64).reshape(-1)
    for level, h in zip(intervals.get("levels") or [], intervals.get("half_widths") or []):
        if h is None:
            continue
        pct = f"{100 * float(level):g}"
        out[f"lower_{pct}"] = pred - float(h)
        out[f"upper_{pct}"] = pred + float(h)
    return out
