"""Column kinds of a table: numeric, boolean, categorical, datetime; ID-like and constant columns dropped.

Each column's kind comes with a short reason (``ColumnInfo.reason``; ``Schema.dropped`` holds the
reasons for dropped columns), so ``dlpipe train`` and the report can show why. The rules, in order:
a user's ``categorical``/``numeric``/``drop`` lists; one value (or none) -> dropped; bool dtype ->
boolean; datetime dtype or ISO-date text -> datetime; numbers: a unique-per-row integer range or an
ID-named column -> dropped, 0/1 -> boolean, anything else numeric (integers included: a year or a
count keeps its order and later values still make sense; list integer codes under ``categorical``);
text: all numbers -> numeric, unique per row -> dropped, otherwise categorical.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from dlpipe.core.errors import DataWarning, InvalidInputError, format_names, suggest
from dlpipe.data.numbers import check_numbers

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnInfo", "Schema", "infer_schema", "free_text_reason"]

# `text` is given only by the text kind (dlpipe.data.text), which claims tables holding free text
# (free_text_reason) before they reach the table recipe; infer_schema never returns it.
Kind = Literal["numeric", "boolean", "categorical", "datetime", "text"]
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?")
_ID_NAME_RE = re.compile(r"(^|_)(id|uuid|index|key)$|^id_|^unnamed: ?0$", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnInfo:
    """One input column: its name, inferred kind, the dtype it arrived with and why it got that kind.

    ``reason`` is empty for schemas saved before reasons were recorded.
    """

    name: str
    kind: Kind
    dtype: str
    n_unique: int
    missing: int
    reason: str = ""


@dataclass(frozen=True)
class Schema:
    """The input columns a model uses (in order), the target, and what was dropped and why."""

    columns: tuple[ColumnInfo, ...]
    target: str
    dropped: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def of_kind(self, kind: Kind) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "columns": [asdict(c) for c in self.columns],
            "dropped": [list(d) for d in self.dropped],
        }

    def describe(self) -> list[tuple[str, str, str]]:
        """``(column, kind, reason)`` for every feature column, dropped ones last with kind ``"dropped"``."""
        rows = [(c.name, str(c.kind), c.reason) for c in self.columns]
        return rows + [(name, "dropped", why) for name, why in self.dropped]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        fields = set(ColumnInfo.__dataclass_fields__)
        return cls(
            # keys a newer version may add are ignored; a missing `reason` (older bundles) is ""
            columns=tuple(
                ColumnInfo(**{k: v for k, v in c.items() if k in fields}) for c in data["columns"]
            ),
            target=data["target"],
            dropped=tuple((a, b) for a, b in data.get("dropped", [])),
        )


def _time_column(frame: pd.DataFrame, target: str, dropped: list[str]) -> str | None:
    """The dropped column that holds dates when the target is numeric (a series read as a table), else None."""
    import pandas as pd

    if target not in frame.columns or not pd.api.types.is_numeric_dtype(frame[target]):
        return None
    for col in dropped:
        s = frame[col].dropna()
        if len(s) < 2:
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            return col
        if pd.api.types.is_numeric_dtype(s) or not all(isinstance(v, str) for v in s.head(50)):
            continue
        sample = s.head(200).astype(str)
        if not sample.str.contains(r"\d").all():
            continue
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed.notna().mean() >= 0.9:
            return col
    return None


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    *,
    categorical: list[str] | tuple[str, ...] = (),
    numeric: list[str] | tuple[str, ...] = (),
    drop: list[str] | tuple[str, ...] = (),
) -> Schema:
    """Infer each feature column's kind from its values; user lists override the inference.

    Raises:
        InvalidInputError: a column named in ``categorical``/``numeric``/``drop`` does not exist, or
            a mostly-numeric text column holds non-numeric values.
    """
    import pandas as pd

    features = [c for c in frame.columns if c != target]
    for arg, names in (("categorical", categorical), ("numeric", numeric), ("drop", drop)):
        for col in names:
            if col not in features:
                raise InvalidInputError(
                    f"`{arg}` names the column {col!r}, which is not a feature{suggest(col, features)}; features are: {format_names(features)}."
                )
    columns: list[ColumnInfo] = []
    dropped: list[tuple[str, str]] = [(c, "asked to drop") for c in drop]
    n_rows = len(frame)
    for col in features:
        if col in drop:
            continue
        s = frame[col]
        missing = int(s.isna().sum())
        non_null = s.dropna()
        n_unique = int(non_null.nunique())
        dtype = str(s.dtype)
        if n_unique <= 1 and col not in categorical and col not in numeric:
            dropped.append((col, "constant" if n_unique == 1 else "empty"))
            continue
        values = _plural(n_unique, "distinct value")
        if col in categorical:
            kind: Kind = "categorical"
            reason = f"listed under `categorical`, {values}"
        elif col in numeric:
            if not pd.api.types.is_numeric_dtype(s):
                _check_mostly_numeric(col, non_null, force=True)
            kind = "numeric"
            reason = "listed under `numeric`"
        elif pd.api.types.is_bool_dtype(s):
            kind, reason = "boolean", "true/false values"
        elif pd.api.types.is_datetime64_any_dtype(s):
            kind, reason = "datetime", "dates"
        elif pd.api.types.is_numeric_dtype(s):
            is_int = pd.api.types.is_integer_dtype(s) or bool((non_null == non_null.round()).all())
            if is_int and _looks_like_id(col, non_null, n_rows, n_unique):
                dropped.append((col, "ID-like (one value per row)"))
                continue
            if is_int and n_unique == 2 and set(non_null.unique()) <= {0, 1}:
                kind, reason = "boolean", "0/1 values"
            else:
                # Integers stay numeric (years, counts, ratings keep their order, and a later year is
                # still a number); integer codes are categorical only when the user lists them.
                kind = "numeric"
                reason = f"{'integers' if is_int else 'numbers'}, {values} over {n_rows} rows"
        else:
            text = non_null.astype(str)
            if _check_mostly_numeric(col, text):
                kind, reason = "numeric", f"numbers written as text, {values}"
            elif len(text) and text.head(50).str.match(_DATE_RE).mean() >= 0.9:
                kind, reason = "datetime", "text holding dates (YYYY-MM-DD)"
            elif n_unique == n_rows and n_rows >= 20:
                dropped.append((col, "ID-like (one value per row)"))
                continue
            else:
                kind, reason = "categorical", f"text, {_plural(n_unique, 'value')}"
        if missing:
            reason += f"; {missing} missing"
        columns.append(
            ColumnInfo(
                name=col, kind=kind, dtype=dtype, n_unique=n_unique, missing=missing, reason=reason
            )
        )
    auto_dropped = [(c, why) for c, why in dropped if why != "asked to drop"]
    if auto_dropped:
        warnings.warn(
            DataWarning(
                "dropped columns: " + ", ".join(f"{c!r} ({why})" for c, why in auto_dropped) + "."
            ),
            stacklevel=2,
        )
    dates = [c.name for c in columns if c.kind == "datetime"]
    if dates:
        warnings.warn(
            DataWarning(
                f"datetime columns {format_names(dates)} are turned into numeric parts (year, month, day, weekday, hour)."
            ),
            stacklevel=2,
        )
    _check_numbers(frame, [c.name for c in columns if c.kind == "numeric"], target)
    if not columns:
        time_column = _time_column(frame, target, [c for c, _ in dropped])
        if time_column is not None:
            raise InvalidInputError(
                f"no usable feature columns are left (dropped: {format_names(c for c, _ in dropped)}), but {time_column!r} holds dates and {target!r} numbers, which is a series: "
                f"set `task` to 'forecast' and `time_column` to {time_column!r} to forecast it, or add informative columns besides the target."
            )
        raise InvalidInputError(
            f"no usable feature columns are left (dropped: {format_names(c for c, _ in dropped) or 'none'}); the table needs at least one informative column besides the target."
        )
    return Schema(columns=tuple(columns), target=target, dropped=tuple(dropped))


def free_text_reason(values: pd.Series) -> str | None:
    """Why a column holds free text (long, mostly unique strings), or None when it does not.

    The rule: strings (not numbers) whose median length is at least 5 words and 30 characters, and at
    least half of them distinct (categories repeat; documents, reviews and messages rarely do).
    """
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    non_null = values.dropna()
    if len(non_null) < 2 or not all(isinstance(v, str) for v in non_null.head(200)):
        return None
    text = non_null.astype(str)
    chars = float(text.str.len().median())
    words = float(text.str.count(r"\S+").median())
    distinct = int(text.nunique()) / len(text)
    if words < 5 or chars < 30 or distinct < 0.5:
        return None
    return f"free text: median {words:.0f} words, {distinct:.0%} of {len(text):,} values distinct"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _check_numbers(frame: pd.DataFrame, names: list[str], target: str) -> None:
    """±inf and values beyond float32 in the whole table, before any split, so that the message gives
    the first such row of the file (data/numbers.py holds the rule; preprocessing checks again)."""
    import numpy as np
    import pandas as pd

    for name in names:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        check_numbers(values, name, frame.index)
    y = frame[target] if target in frame.columns else None  # generative fitters may have no target
    if y is not None and pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        check_numbers(
            y.to_numpy(dtype=np.float64, na_value=np.nan), target, frame.index, what="target"
        )


def _looks_like_id(col: str, values: pd.Series, n_rows: int, n_unique: int) -> bool:
    if n_unique != n_rows or n_rows < 20:
        return False
    if _ID_NAME_RE.search(col):
        return True
    # A consecutive integer range (0..n-1, 1..n) is a row number, not a measurement.
    lo, hi = values.min(), values.max()
    return bool(hi - lo == n_rows - 1)


def _check_mostly_numeric(col: str, text: pd.Series, force: bool = False) -> bool:
    """True if every value parses as a number; raise if most (≥90%) but not all do."""
    import pandas as pd

    if len(text) == 0:
        return False
    parsed = pd.to_numeric(text, errors="coerce")
    bad = parsed.isna()
    share = 1.0 - float(bad.mean())
    if share == 1.0:
        return True
    if share >= 0.9 or force:
        example = text[bad].iloc[0]
        raise InvalidInputError(
            f"column {col!r} is mostly numeric ({share:.0%} of values) but holds non-numeric text such as {example!r} "
            f"in {int(bad.sum())} rows; clean those values, or list the column under `categorical` to treat it as text."
        )
    return False
