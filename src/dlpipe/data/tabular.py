"""Reading tables (CSV, TSV, Parquet, DataFrame) into a :class:`TabularDataset`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from dlpipe.core.errors import (
    DataWarning,
    InvalidInputError,
    InvalidTargetError,
    UnsupportedFileError,
    format_names,
    suggest,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TabularDataset", "load_table", "read_table", "TableSource"]

TableSource = Union[str, Path, "pd.DataFrame", list[dict[str, Any]]]
_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class TabularDataset:
    """A table with a named target column, and optionally a separate test table.

    Args:
        frame: Rows used for training and validation (and testing when ``test_frame`` is None).
        target: Name of the target column.
        name: A short name for run folders and reports. Defaults to `"table"`.
        test_frame: A held-out test table with the same columns. Defaults to `None`.

    Example:
        >>> import pandas as pd
        >>> ds = TabularDataset(pd.DataFrame({"x": [1, 2], "y": [0, 1]}), target="y")
        >>> ds.feature_columns
        ['x']
    """

    frame: pd.DataFrame
    target: str
    name: str = "table"
    test_frame: pd.DataFrame | None = None
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "table"

    @property
    def feature_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.target]

    def __repr__(self) -> str:
        test = f", test_rows={len(self.test_frame)}" if self.test_frame is not None else ""
        return (
            f"TabularDataset(name={self.name!r}, rows={len(self.frame)}, "
            f"features={len(self.feature_columns)}, target={self.target!r}{test})"
        )


def read_table(source: TableSource, *, what: str = "data") -> pd.DataFrame:
    """Read a CSV/TSV/Parquet path, a DataFrame or a list of dicts into a DataFrame."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        _check_unique_columns([str(c) for c in source.columns], what)
        return source.copy()
    if isinstance(source, list):
        if not all(isinstance(r, dict) for r in source):
            raise InvalidInputError(
                f"{what} is a list whose items are not all dicts; pass a list of {{column: value}} rows or a DataFrame."
            )
        return pd.DataFrame(source)
    if not isinstance(source, (str, Path)):
        raise InvalidInputError(
            f"{what} is a {type(source).__name__}, but a file path, a pandas DataFrame or a list of row dicts was expected."
        )
    path = Path(source)
    if not path.exists():
        raise UnsupportedFileError(f"{what} file {str(path)!r} does not exist; check the path.")
    if path.is_dir():
        raise UnsupportedFileError(
            f"{what} {str(path)!r} is a folder, but a table file (.csv, .tsv, .parquet) was expected."
        )
    suffix = _table_suffix(path)
    kind = _READERS.get(suffix)
    if kind is None or (kind == "parquet" and path.name.lower().endswith(".gz")):
        raise UnsupportedFileError(
            f"{what} file {str(path)!r} has the unsupported type {suffix or '(no suffix)'!r}; "
            f"save it as one of {', '.join(sorted(_READERS))} (CSV and TSV may be gzip-compressed: .csv.gz)."
        )
    if path.stat().st_size == 0:
        raise UnsupportedFileError(
            f"{what} file {str(path)!r} is empty; pass a file with a header row and data rows."
        )
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if kind == "tsv" else ","
            _check_header(path, sep, what)
            frame = pd.read_csv(path, sep=sep)
            if kind == "csv" and frame.shape[1] == 1:
                frame = _read_other_separator(path, frame, what)
    except InvalidInputError:
        raise  # a duplicate column name: already one sentence
    except pd.errors.EmptyDataError:
        raise UnsupportedFileError(
            f"{what} file {str(path)!r} has no columns; pass a file with a header row and data rows."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedFileError(
            f"{what} file {str(path)!r} could not be read as {kind} ({first}); check that it is a valid {kind} file."
        ) from None
    _check_unique_columns([str(c) for c in frame.columns], f"{what} file {str(path)!r}")
    return frame


def _table_suffix(path: Path) -> str:
    """The table type's suffix: ``.csv`` for ``data.csv`` and for gzip-compressed ``data.csv.gz``."""
    suffixes = [x.lower() for x in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz":
        return suffixes[-2]
    return path.suffix.lower()


def _check_header(path: Path, sep: str, what: str) -> None:
    """Refuse duplicate names in a CSV header: pandas would silently rename the second ``a`` to ``a.1``."""
    import csv
    import gzip

    gz = path.name.lower().endswith(".gz")
    opener = gzip.open if gz else open
    with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as fh:
        header = next(csv.reader(fh, delimiter=sep), [])
    _check_unique_columns(header, f"{what} file {str(path)!r}")


def _check_unique_columns(names: list[str], where: str) -> None:
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, []).append(i + 1)
    dups = {n: p for n, p in positions.items() if len(p) > 1}
    if dups:
        listed = ", ".join(f"{n!r} (columns {', '.join(map(str, p))})" for n, p in dups.items())
        raise InvalidInputError(
            f"{where} has the same column name more than once: {listed}; rename those columns so that each name is unique."
        )


_OTHER_SEPARATORS = (";", "\t", "|")
_DECIMAL_COMMA = r"^\s*[+-]?\d+,\d+\s*$"


def _read_other_separator(path: Path, frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """A .csv that reads as one column whose name holds ';' (or a tab, or '|') is read with that separator, with a warning.

    Files separated by ';' often write decimals with a comma ("1,5"): when every value of a text
    column reads so, the file is read again with ',' as the decimal mark (said in the warning).
    """
    import pandas as pd

    header = str(frame.columns[0])
    counts = {sep: header.count(sep) for sep in _OTHER_SEPARATORS}
    sep = max(counts, key=lambda k: counts[k])
    if counts[sep] == 0:
        return frame
    _check_header(path, sep, what)
    other = pd.read_csv(path, sep=sep)
    if other.shape[1] < 2:
        return frame
    decimal = ""
    text = [c for c in other.columns if not pd.api.types.is_numeric_dtype(other[c])]
    if any(
        other[c].dropna().astype(str).str.match(_DECIMAL_COMMA).all() and other[c].notna().any()
        for c in text
    ):
        other = pd.read_csv(path, sep=sep, decimal=",")
        decimal = " and ',' as the decimal mark"
    warnings.warn(
        DataWarning(
            f"{what} file {str(path)!r} is separated by {sep!r}, not by commas, so it was read with {sep!r} as the separator{decimal}; "
            "save it with commas to silence this warning."
        ),
        stacklevel=3,
    )
    return other


def load_table(
    source: TableSource,
    target: str | None = None,
    *,
    test: TableSource | None = None,
    name: str | None = None,
) -> TabularDataset:
    """Load a table and check its target column.

    Args:
        source: A CSV/TSV/Parquet path, a pandas DataFrame or a list of row dicts.
        target: The column to predict. Defaults to the last column, with a warning.
        test: An optional held-out test table with the same columns. Defaults to `None`.
        name: A short name for run folders. Defaults to the file's stem or `"table"`.

    Example:
        >>> import pandas as pd
        >>> load_table(pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1, 0, 1]}), target="y").target
        'y'
    """
    frame = read_table(source)
    if name is None:
        if isinstance(source, (str, Path)):
            stem = Path(source).stem
            name = (
                Path(stem).stem if str(source).lower().endswith(".gz") else stem
            )  # data.csv.gz -> data
        else:
            name = "table"
    if frame.shape[1] == 0 or len(frame) == 0:
        raise InvalidInputError(
            f"table {name!r} has no rows; pass a table with a header row and at least one data row."
        )
    frame.columns = [str(c) for c in frame.columns]
    _check_unique_columns(list(frame.columns), f"table {name!r}")
    if target is None:
        target = str(frame.columns[-1])
        warnings.warn(
            DataWarning(
                f"no target given; using the last column {target!r} (pass target=... to choose)."
            ),
            stacklevel=2,
        )
    _check_target_column(frame, target, name)
    frame = _drop_missing_target(frame, target, name)
    test_frame = None
    if test is not None:
        test_frame = read_table(test, what="test")
        test_frame.columns = [str(c) for c in test_frame.columns]
        _check_unique_columns(list(test_frame.columns), "the test table")
        _check_target_column(test_frame, target, "test")
        missing = [c for c in frame.columns if c not in test_frame.columns]
        if missing:
            raise InvalidInputError(
                f"the test table lacks the columns {format_names(missing)} that the training table has; pass a test file with the same columns."
            )
        test_frame = _drop_missing_target(test_frame[list(frame.columns)], target, "test")
    return TabularDataset(frame=frame, target=target, name=name, test_frame=test_frame)


def _check_target_column(frame: pd.DataFrame, target: str, name: str) -> None:
    if target not in frame.columns:
        cols = [str(c) for c in frame.columns]
        raise InvalidTargetError(
            f"target column {target!r} not found in {name!r}{suggest(target, cols)}; columns are: {format_names(cols)}."
        )


def _drop_missing_target(frame: pd.DataFrame, target: str, name: str) -> pd.DataFrame:
    missing = frame[target].isna()
    if missing.all():
        raise InvalidTargetError(
            f"target column {target!r} in {name!r} has no values ({len(frame)} rows, all missing); fill in the target or choose another column."
        )
    if missing.any():
        warnings.warn(
            DataWarning(
                f"dropped {int(missing.sum())} rows of {name!r} whose target {target!r} is missing."
            ),
            stacklevel=3,
        )
        # the index is kept, so that messages about later rows still give their row in the file
        frame = frame.loc[~missing]
    return frame
