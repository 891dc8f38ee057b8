"""JSON rows -> model inputs for table bundles, without pandas, with one clear 422 per bad field.

The encoder is compiled once from the bundle's preprocessor state and reproduces
``TabularPreprocessor.transform`` exactly (same order of blocks, same float64 arithmetic, then
float32), so a served prediction equals ``bundle.predict`` on the same row; a test checks it. It
exists because a single-row request spends most of its time in pandas otherwise (~1-2 ms vs ~50 µs).
Tables with date columns fall back to the preprocessor itself after validation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError, format_names

__all__ = ["RowEncoder"]

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


class RowEncoder:
    """Validates and encodes rows (dicts) for one table preprocessor.

    Args:
        preprocessor: A fitted :class:`~dlpipe.data.preprocessing.TabularPreprocessor`.
    """

    def __init__(self, preprocessor: Any) -> None:
        self.pre = preprocessor
        state = preprocessor.state()
        self.schema = state["schema"]
        self.columns: list[dict[str, Any]] = list(self.schema["columns"])
        self.names = [c["name"] for c in self.columns]
        self._needed = frozenset(self.names)
        self.kinds = {c["name"]: c["kind"] for c in self.columns}
        self.numeric = state["numeric"]
        self.scaling = state["scaling"]
        self.scale = {k: np.asarray(v, dtype=np.float64) for k, v in state["scale"].items()}
        self.fill = np.asarray([e["fill"] for e in self.numeric], dtype=np.float64)
        self.indicator_idx = [i for i, e in enumerate(self.numeric) if e["indicator"]]
        self.onehot = state["onehot"]
        self.embed = state["embed"]
        self.lookup = {e["name"]: {c: i + 1 for i, c in enumerate(e["categories"])} for e in (*self.onehot, *self.embed)}
        self.categories = {e["name"]: list(e["categories"]) for e in (*self.onehot, *self.embed)}
        self.has_dates = any(e["kind"] == "datetime" for e in self.numeric)
        self.width = preprocessor.n_numeric

    # ------------------------------------------------------------------ validation
    def validate(self, rows: Any) -> list[dict[str, Any]]:
        """Check the request's rows; raise :class:`InvalidInputError` naming the first bad field."""
        if not isinstance(rows, list):
            raise InvalidInputError(f"`rows` is a {_json_type(rows)} but must be a list of objects, one per row, e.g. {{\"rows\": [{self.example()}]}}.")
        if not rows:
            raise InvalidInputError("`rows` is empty; send at least one row with the fields " + format_names(self.names) + ".")
        needed = self._needed
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidInputError(f"row {i} is a {_json_type(row)} but must be an object with the fields {format_names(self.names)}.")
            if needed <= row.keys():
                continue
            missing = [n for n in self.names if n not in row]
            if missing:
                raise InvalidInputError(
                    f"row {i} is missing the field {missing[0]!r}"
                    + (f" (and {len(missing) - 1} more: {format_names(missing[1:])})" if len(missing) > 1 else "")
                    + f"; every row needs {format_names(self.names)} (null for an unknown value)."
                )
        return rows

    def example(self) -> str:
        import json

        return json.dumps(self.example_row())

    def example_row(self, reference: dict[str, Any] | None = None) -> dict[str, Any]:
        """A plausible row: medians of numeric columns, the most frequent category."""
        row: dict[str, Any] = {}
        ref = reference or {}
        for c in self.columns:
            name, kind = c["name"], c["kind"]
            stats = ref.get(name, {})
            if kind == "numeric":
                q = stats.get("quantiles")
                row[name] = round(float(q[3]), 4) if q else 0.0
            elif kind == "boolean":
                row[name] = True
            elif kind == "datetime":
                row[name] = "2024-01-01"
            else:
                cats = self.categories.get(name) or [""]
                row[name] = cats[0]
        return row

    # ------------------------------------------------------------------ encoding
    def encode(self, rows: list[dict[str, Any]]) -> list[np.ndarray]:
        """Validated rows -> model inputs ``[x_num]`` or ``[x_num, x_cat]`` exactly as the preprocessor makes them."""
        if self.has_dates:
            self._check_values(rows)
            return list(self.pre.prepare(rows).inputs)
        n = len(rows)
        blocks: list[np.ndarray] = []
        if self.numeric:
            raw = np.empty((n, len(self.numeric)), dtype=np.float64)
            for j, e in enumerate(self.numeric):
                name, kind = e["name"], e["kind"]
                for i, row in enumerate(rows):
                    raw[i, j] = _number(row[name], name, i, kind)
            missing = np.isnan(raw)
            filled = np.where(missing, self.fill, raw)
            if self.scaling == "standard":
                filled = (filled - self.scale["mean"]) / self.scale["std"]
            elif self.scaling == "minmax":
                filled = (filled - self.scale["min"]) / self.scale["range"]
            elif self.scaling == "l2":
                norm = np.linalg.norm(filled, axis=1, keepdims=True)
                filled = filled / np.where(norm > 0, norm, 1.0)
            blocks.append(filled)
            if self.indicator_idx:
                blocks.append(missing[:, self.indicator_idx].astype(np.float64))
        for e in self.onehot:
            codes, was_missing = self._codes(rows, e)
            onehot = np.zeros((n, len(e["categories"])))
            onehot[np.arange(n), codes - 1] = 1.0
            blocks.append(onehot)
            if e["indicator"]:
                blocks.append(was_missing[:, None].astype(np.float64))
        x_num = np.column_stack(blocks).astype(np.float32) if blocks else np.zeros((n, 0), np.float32)
        if not self.embed:
            return [x_num]
        x_cat = np.column_stack([self._codes(rows, e)[0] for e in self.embed]).astype(np.int64)
        return [x_num, x_cat]

    def _codes(self, rows: list[dict[str, Any]], entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        name = entry["name"]
        lookup = self.lookup[name]
        codes = np.empty(len(rows), dtype=np.int64)
        was_missing = np.zeros(len(rows), dtype=bool)
        for i, row in enumerate(rows):
            value = row[name]
            if value is None:
                was_missing[i] = True
                codes[i] = lookup.get(entry["mode"], 0)
                continue
            code = _category(value, lookup)
            if code is None:
                raise InvalidInputError(self._unknown(name, value, i))
            codes[i] = code
        return codes, was_missing

    def _check_values(self, rows: list[dict[str, Any]]) -> None:
        for c in self.columns:
            name, kind = c["name"], c["kind"]
            for i, row in enumerate(rows):
                value = row[name]
                if kind in ("numeric", "boolean"):
                    _number(value, name, i, kind)
                elif kind == "datetime":
                    if value is not None and not isinstance(value, str):
                        raise InvalidInputError(f"field {name!r} of row {i} is {value!r} but must be a date string such as '2024-01-31' (or null).")
                elif value is not None and name in self.lookup and _category(value, self.lookup[name]) is None:
                    raise InvalidInputError(self._unknown(name, value, i))

    def _unknown(self, name: str, value: Any, i: int) -> str:
        return (
            f"field {name!r} of row {i} is {value!r}, a category the model never saw in training; "
            f"use one of {format_names(self.categories[name], limit=10)} (or null for unknown)."
        )


def _number(value: Any, name: str, i: int, kind: str) -> float:
    if value is None:
        return math.nan
    if kind == "boolean":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, (int, float)) and value in (0, 1):
            return float(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return 1.0 if value.strip().lower() in _TRUE else 0.0
        raise InvalidInputError(f"field {name!r} of row {i} is {value!r} but must be true or false (or null).")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInputError(f"field {name!r} of row {i} is {value!r} ({_json_type(value)}) but must be a number (or null).")
    try:
        number = float(value)
    except ValueError:
        raise InvalidInputError(f"field {name!r} of row {i} is {value!r} ({_json_type(value)}) but must be a number (or null).") from None
    return number if math.isfinite(number) else math.nan


def _category(value: Any, lookup: dict[str, int]) -> int | None:
    if isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        text = str(value)
        return lookup.get(text, lookup.get(text.lower()))
    code = lookup.get(str(value))
    if code is None and isinstance(value, float) and value.is_integer():
        code = lookup.get(str(int(value)))
    if code is None and isinstance(value, int):
        code = lookup.get(f"{value}.0")
    return code


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
