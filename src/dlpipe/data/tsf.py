"""The Monash forecasting archive's ``.tsf`` format -> one long table (series, time, value).

A ``.tsf`` file is a header of ``#`` comments and ``@`` lines (``@attribute name type`` in the order
the attributes prefix each data line, ``@frequency``, ``@horizon``, ``@missing``, ``@equallength``),
then ``@data`` and one series per line: ``attr1:attr2:...:v1,v2,v3`` with ``?`` for a missing value.
Timestamps are built from a ``start_timestamp`` attribute and the frequency when both are there,
otherwise the time column is the step number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TsfData", "read_tsf", "FREQUENCIES"]

# Monash frequency -> (pandas frequency, season length used by seasonal naive and MASE).
FREQUENCIES: dict[str, tuple[str, int]] = {
    "yearly": ("YS", 1),
    "quarterly": ("QS", 4),
    "monthly": ("MS", 12),
    "weekly": ("W", 1),
    "daily": ("D", 7),
    "hourly": ("h", 24),
    "half_hourly": ("30min", 48),
    "minutely": ("min", 60),
    "10_minutes": ("10min", 144),
    "4_seconds": ("4s", 1),
}


@dataclass
class TsfData:
    """A parsed .tsf file: ``frame`` has the columns ``series``, ``time`` and ``value``."""

    frame: pd.DataFrame
    frequency: str | None = None
    horizon: int | None = None
    attributes: list[str] = field(default_factory=list)

    @property
    def period(self) -> int | None:
        if self.frequency is None or self.frequency not in FREQUENCIES:
            return None
        m = FREQUENCIES[self.frequency][1]
        return m if m > 1 else None


def _bad(path: Any, line_no: int, what: str) -> InvalidInputError:
    return InvalidInputError(
        f".tsf file {str(path)!r} line {line_no}: {what}; a .tsf file needs '@attribute' lines, '@data', then one 'attr:...:v1,v2,...' line per series (the Monash archive's format)."
    )


def read_tsf(path: str | Path) -> TsfData:
    """Read a Monash ``.tsf`` file into a long table.

    Raises:
        InvalidInputError: a file without ``@data``, a data line whose attribute count does not match,
            or a value that is not a number or ``?``, naming the line.
    """
    import pandas as pd

    attrs: list[tuple[str, str]] = []
    frequency: str | None = None
    horizon: int | None = None
    names: list[str] = []
    starts: list[Any] = []
    values: list[np.ndarray] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise _bad(path, line_no, f"{line[:40]!r} comes before '@data'")
                head, _, rest = line.partition(" ")
                head = head.lower()
                if head == "@attribute":
                    parts = rest.split()
                    if len(parts) != 2:
                        raise _bad(path, line_no, "an '@attribute' line needs a name and a type")
                    attrs.append((parts[0], parts[1]))
                elif head == "@frequency":
                    frequency = rest.strip()
                elif head == "@horizon":
                    try:
                        horizon = int(rest.strip())
                    except ValueError:
                        raise _bad(
                            path, line_no, f"'@horizon' is {rest.strip()!r}, not an integer"
                        ) from None
                elif head == "@data":
                    in_data = True
                continue
            fields = line.split(":")
            if len(fields) != len(attrs) + 1:
                raise _bad(
                    path,
                    line_no,
                    f"the line has {len(fields) - 1} attribute fields but the header declares {len(attrs)}",
                )
            series_values = []
            for token in fields[-1].split(","):
                token = token.strip()
                if token == "?":
                    series_values.append(np.nan)
                    continue
                try:
                    series_values.append(float(token))
                except ValueError:
                    raise _bad(
                        path, line_no, f"the value {token!r} is not a number or '?'"
                    ) from None
            record = dict(zip([a for a, _ in attrs], fields[:-1]))
            names.append(record.get("series_name", f"series_{len(names) + 1}"))
            starts.append(record.get("start_timestamp"))
            values.append(np.asarray(series_values, np.float64))
    if not in_data:
        raise _bad(path, 0, "no '@data' line was found")
    if not values:
        raise _bad(path, 0, "'@data' is followed by no series")
    freq = FREQUENCIES.get(frequency or "", (None, 1))[0]
    times: list[Any] = []
    for start, v in zip(starts, values):
        if start is None or freq is None:
            break
        try:
            times.append(pd.date_range(pd.Timestamp(start[:10]), periods=len(v), freq=freq))
        except (ValueError, OverflowError):
            break
    if len(times) != len(values):  # one unreadable start: every series counts steps instead
        times = [np.arange(len(v)) for v in values]
    pieces = [
        pd.DataFrame({"series": name, "time": t, "value": v})
        for name, t, v in zip(names, times, values)
    ]
    frame = pd.concat(pieces, ignore_index=True)
    return TsfData(
        frame=frame, frequency=frequency, horizon=horizon, attributes=[a for a, _ in attrs]
    )
