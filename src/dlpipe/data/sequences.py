"""Labelled sequences for classification: the UCR/UEA layouts, padding with masks, z-normalisation.

Readers:

- ``.ts`` (sktime/UEA): ``@`` header lines, then one case per line, dimensions separated by ``:``
  and the class label last (``1.0,2.0,3.0:4.0,5.0,6.0:label``); ``?`` is a missing value.
- ``.tsv`` / ``.txt`` / ``.csv`` (UCR 2018): one case per line, the label first, then the values
  (tab-, comma- or space-separated); trailing ``NaN`` marks a shorter series.

Sequences of different lengths are padded with zeros at the end to the longest one, and a mask
(1 = real step, 0 = padding) travels beside them so pooling ignores the padding.

Windows of one series (:func:`load_windows`) are labelled sequences too: a table ordered by its time
column becomes every window of ``lookback`` rows, labelled by a column at the window's last row or by
the direction of the target's next value (``up``/``down``); the recipe then splits them in time order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import InvalidInputError, UnsupportedFileError
from dlpipe.data.inputs import PreparedBatch

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SequenceDataset",
    "SequenceAdapter",
    "load_sequences",
    "read_sequences",
    "pad_sequences",
    "znormalize",
    "detect_sequences",
    "load_windows",
    "WindowAdapter",
]

_MAX_LABEL_VALUES = (
    20  # an integer column with at most this many values is a label column, not a series
)

_SUFFIXES = (".ts", ".tsv", ".txt", ".csv")


@dataclass
class SequenceDataset:
    """Padded sequences ``x`` (N, T, C), their ``mask`` (N, T) and ``labels`` (N,), and an optional test set.

    Example:
        >>> ds = load_sequences(([[1.0, 2.0, 3.0], [3.0, 2.0]], ["a", "b"]))
        >>> ds.x.shape, ds.mask.tolist()
        ((2, 3, 1), [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    """

    x: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    name: str = "sequences"
    test_x: np.ndarray | None = None
    test_mask: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    znorm: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "sequence"
    target = "label"

    @property
    def length(self) -> int:
        return int(self.x.shape[1])

    @property
    def channels(self) -> int:
        return int(self.x.shape[2])

    def __repr__(self) -> str:
        test = f", test={len(self.test_x)}" if self.test_x is not None else ""
        return f"SequenceDataset(name={self.name!r}, n={len(self.x)}, length={self.length}, channels={self.channels}{test})"


def read_sequences(path: str | Path) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Read a .ts or UCR .tsv/.txt file into a list of (T_i, C) arrays and labels (None when unlabelled)."""
    p = Path(path)
    if not p.is_file():
        raise UnsupportedFileError(f"sequence file {str(p)!r} does not exist; check the path.")
    if p.suffix.lower() not in _SUFFIXES:
        raise UnsupportedFileError(
            f"sequence file {str(p)!r} has the unsupported type {p.suffix!r}; pass a UCR/UEA file ending in {', '.join(_SUFFIXES)}."
        )
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise UnsupportedFileError(
            f"sequence file {str(p)!r} is empty; pass a file with one sequence per line."
        )
    if p.suffix.lower() == ".ts":
        return _read_ts(text, str(p))
    return _read_ucr(text, str(p))


def _read_ts(text: str, where: str) -> tuple[list[np.ndarray], np.ndarray | None]:
    header: dict[str, str] = {}
    seqs: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise UnsupportedFileError(
                    f"line {lineno} of {where!r} is {line[:40]!r} before `@data`; a .ts file starts with `@` header lines, so check the file."
                )
            key, _, value = line[1:].partition(" ")
            header[key.lower()] = value.strip()
            if key.lower() == "data":
                in_data = True
                if header.get("timestamps", "false").lower() == "true":
                    raise UnsupportedFileError(
                        f"{where!r} uses `@timeStamps true`, which dlpipe does not read; export the values without timestamps."
                    )
            continue
        has_label = header.get("classlabel", "false").split(" ")[0].lower() == "true"
        parts = line.split(":")
        if has_label:
            labels.append(parts[-1].strip())
            parts = parts[:-1]
        dims = []
        for part in parts:
            try:
                dims.append(
                    np.array(
                        [
                            float("nan") if v.strip() == "?" else float(v)
                            for v in part.split(",")
                            if v.strip()
                        ],
                        np.float64,
                    )
                )
            except ValueError:
                raise UnsupportedFileError(
                    f"line {lineno} of {where!r} holds a value that is not a number; check the file's `@data` section."
                ) from None
        length = max(len(d) for d in dims)
        case = np.full((length, len(dims)), np.nan)
        for c, d in enumerate(dims):
            case[: len(d), c] = d
        seqs.append(case)
    if not seqs:
        raise UnsupportedFileError(
            f"{where!r} has no cases after `@data`; pass a .ts file with data lines."
        )
    return seqs, (np.asarray(labels, dtype=object) if labels else None)


def _read_ucr(text: str, where: str) -> tuple[list[np.ndarray], np.ndarray | None]:
    seqs: list[np.ndarray] = []
    labels: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        fields = [f for f in re.split(r"[\t, ]+", line) if f]
        try:
            values = np.array([float(v) for v in fields[1:]], np.float64)
        except ValueError:
            raise UnsupportedFileError(
                f"line {lineno} of {where!r} holds a value that is not a number; a UCR file has the label first and then numbers on each line."
            ) from None
        labels.append(_label_text(fields[0]))
        seqs.append(values[:, None])
    return seqs, np.asarray(labels, dtype=object)


def _label_text(value: str) -> str:
    try:
        f = float(value)
        return str(int(f)) if f.is_integer() else value
    except ValueError:
        return value


def pad_sequences(
    seqs: list[np.ndarray], length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(T_i, C) arrays -> zero-padded (N, T, C) float32 and a (N, T) float32 mask; trailing NaNs count as padding.

    Interior NaNs are filled by linear interpolation within the sequence.
    """
    trimmed = []
    for s in seqs:
        s = np.asarray(s, np.float64)
        s = s[:, None] if s.ndim == 1 else s
        valid = ~np.isnan(s).all(axis=1)
        end = int(np.flatnonzero(valid)[-1]) + 1 if valid.any() else 0
        s = s[:end]
        if np.isnan(s).any():
            for c in range(s.shape[1]):
                col = s[:, c]
                bad = np.isnan(col)
                if bad.all():
                    col[:] = 0.0
                elif bad.any():
                    col[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), col[~bad])
        trimmed.append(s)
    channels = {s.shape[1] for s in trimmed}
    if len(channels) > 1:
        raise InvalidInputError(
            f"the sequences have different numbers of channels ({sorted(channels)}); every case needs the same dimensions."
        )
    longest = max((len(s) for s in trimmed), default=0)
    if longest == 0:
        raise InvalidInputError("every sequence is empty; pass sequences with at least one value.")
    t = max(longest, length or 0)
    c = channels.pop()
    x = np.zeros((len(trimmed), t, c), np.float32)
    mask = np.zeros((len(trimmed), t), np.float32)
    for i, s in enumerate(trimmed):
        x[i, : len(s)] = s
        mask[i, : len(s)] = 1.0
    return x, mask


def znormalize(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per series and channel: subtract the mean and divide by the std over the real (unmasked) steps."""
    m = mask[:, :, None]
    n = np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    mean = (x * m).sum(axis=1, keepdims=True) / n
    std = np.sqrt((((x - mean) * m) ** 2).sum(axis=1, keepdims=True) / n)
    return (((x - mean) / np.where(std > 1e-8, std, 1.0)) * m).astype(np.float32)


def _as_cases(data: Any, what: str) -> tuple[list[np.ndarray], np.ndarray | None, str]:
    if isinstance(data, (str, Path)):
        seqs, labels = read_sequences(data)
        return seqs, labels, Path(data).stem.replace("_TRAIN", "").replace("_TEST", "")
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
        seqs = list(x) if not isinstance(x, np.ndarray) else [x[i] for i in range(len(x))]
        labels = np.asarray(
            [_label_text(str(v)) for v in np.asarray(y, dtype=object).tolist()], dtype=object
        )
        if len(labels) != len(seqs):
            raise InvalidInputError(
                f"{what} has {len(seqs)} sequences but {len(labels)} labels; pass one label per sequence."
            )
        return [np.asarray(s, np.float64) for s in seqs], labels, "sequences"
    if isinstance(data, (np.ndarray, list)):
        return [np.asarray(s, np.float64) for s in data], None, "sequences"
    raise InvalidInputError(
        f"{what} is a {type(data).__name__}, but a .ts/.tsv/.txt path, an (x, labels) tuple or an array of sequences was expected."
    )


def load_sequences(
    data: Any, *, test: Any = None, znorm: bool = False, name: str | None = None
) -> SequenceDataset:
    """Load labelled sequences (UCR/UEA file or ``(x, labels)``), pad them, optionally z-normalise each.

    Args:
        data: A .ts / .tsv / .txt path, or an ``(x, labels)`` tuple (x: (N, T), (N, T, C) or a list of arrays).
        test: The official test set, in the same form. Defaults to `None` (held out from ``data``).
        znorm: Z-normalise each series (mean 0, std 1 per channel). Defaults to `False`.
        name: For run folders. Defaults to the file stem.
    """
    seqs, labels, stem = _as_cases(data, "data")
    if labels is None:
        raise InvalidInputError(
            f"{str(data)!r} has no class labels; sequence classification needs a label per case (`@classLabel true` or a label first on each line)."
        )
    x, mask = pad_sequences(seqs)
    test_x = test_mask = test_labels = None
    if test is not None:
        tseqs, test_labels, _ = _as_cases(test, "test")
        if test_labels is None:
            raise InvalidInputError(
                "the test sequences have no class labels; pass a labelled test file."
            )
        test_x, test_mask = pad_sequences(tseqs, length=x.shape[1])
        if test_x.shape[2] != x.shape[2]:
            raise InvalidInputError(
                f"the test sequences have {test_x.shape[2]} channels but the training ones {x.shape[2]}; pass the matching test file."
            )
        if test_x.shape[1] > x.shape[1]:
            x = np.pad(x, ((0, 0), (0, test_x.shape[1] - x.shape[1]), (0, 0)))
            mask = np.pad(mask, ((0, 0), (0, test_x.shape[1] - mask.shape[1])))
        if znorm:
            test_x = znormalize(test_x, test_mask)
    if znorm:
        x = znormalize(x, mask)
    return SequenceDataset(
        x=x,
        mask=mask,
        labels=labels,
        name=name or stem,
        test_x=test_x,
        test_mask=test_mask,
        test_labels=test_labels,
        znorm=znorm,
    )


class SequenceAdapter:
    """How a sequence-classification bundle reads raw input: files or arrays -> padded x and mask."""

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = dict(state)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SequenceAdapter:
        if "windows" in state:
            return WindowAdapter(state)
        return cls(state)

    def state(self) -> dict[str, Any]:
        return dict(self._state)

    @property
    def input_names(self) -> list[str]:
        return ["x", "mask"]

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        import pandas as pd

        if isinstance(data, np.ndarray) and data.ndim == 1:
            data = data[None]
        seqs, labels, _ = _as_cases(data, "input")
        length, channels = int(self._state["length"]), int(self._state["channels"])
        x, mask = pad_sequences(seqs, length=length)
        if x.shape[2] != channels:
            raise InvalidInputError(
                f"the input sequences have {x.shape[2]} channels but the model reads {channels}; pass sequences with {channels} channel(s)."
            )
        if self._state.get("znorm"):
            x = znormalize(x, mask)
        base = x[:, :length].reshape(len(x), -1).astype(np.float64)
        targets: pd.Series | None = (
            pd.Series(labels, dtype=object) if (with_target and labels is not None) else None
        )
        return PreparedBatch(inputs=[x, mask], targets=targets, baseline_features=base)


def detect_sequences(data: Any, cfg: Any, test: Any) -> SequenceDataset | None:
    """The train-time detector: a .ts file, or ``task="sequence-classification"``; and windows of a series:
    ``task`` binary/multiclass on a table with a ``time_column`` or a ``lookback`` given."""
    task = cfg.data.task
    is_ts = isinstance(data, (str, Path)) and Path(data).suffix.lower() == ".ts"
    s = cfg.series
    windows_asked = s.time_column is not None or "lookback" in s.model_fields_set
    if task in ("binary", "multiclass") and windows_asked and not is_ts and _is_table(data):
        return load_windows(
            data,
            target=cfg.data.target,
            time_column=s.time_column,
            lookback=s.lookback if isinstance(s.lookback, int) else None,  # None: `auto`
            features=s.features or None,
            test=test,
            task=task,
            strict=s.strict,
            name=cfg.name,
        )
    if task not in ("sequence-classification", "sequence") and not (
        is_ts and task in ("auto", "binary", "multiclass")
    ):
        return None
    return load_sequences(data, test=test, znorm=cfg.series.znorm)


# ------------------------------------------------------------------------------ windows of a series
def _is_table(data: Any) -> bool:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return True
    return isinstance(data, (str, Path)) and Path(data).suffix.lower() in (
        ".csv",
        ".tsv",
        ".txt",
        ".parquet",
        ".pq",
    )


def _sorted_table(data: Any, time_column: str | None, what: str) -> pd.DataFrame:
    """The table read and put in time order (stable; the time column is parsed and checked later)."""
    import warnings

    import pandas as pd

    from dlpipe.data.tabular import read_table

    frame = read_table(data, what=what)
    frame.columns = [str(c) for c in frame.columns]
    if time_column is None or time_column not in frame.columns:
        return frame.reset_index(drop=True)
    raw = frame[time_column]
    if pd.api.types.is_numeric_dtype(raw):
        parsed = pd.to_numeric(raw, errors="coerce")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # pandas warns when it guesses a date format per element
            parsed = pd.to_datetime(raw, errors="coerce")
    order = np.argsort(parsed.to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _window_plan(
    frame: pd.DataFrame,
    target: str | None,
    time_column: str | None,
    features: list[str] | None,
    task: str,
    name: str,
) -> dict[str, Any]:
    """Which columns the windows read and how each window is labelled (a column, or the next value's direction)."""
    import pandas as pd

    from dlpipe.core.errors import InvalidTargetError, suggest

    cols = [c for c in frame.columns if c != time_column]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(frame[c])]
    if target is None:
        if not numeric:
            raise InvalidTargetError(
                f"{name!r} has no numeric column whose next value's direction could be the label; pass `target` naming a label column or a numeric column."
            )
        target = numeric[-1]
    if target not in frame.columns:
        raise InvalidInputError(
            f"target column {target!r} not found in {name!r}{suggest(target, list(frame.columns))}; columns are: {', '.join(map(repr, frame.columns))}."
        )
    col = frame[target]
    values = col.dropna()
    # A numeric column is a label column when it could hold the task's classes: two values for binary,
    # at most _MAX_LABEL_VALUES integers for multiclass; any other numeric column is a series whose
    # next value's direction is the label.
    is_label = not pd.api.types.is_numeric_dtype(col) or (
        values.nunique() <= 2
        if task == "binary"
        else bool(np.all(np.mod(values.to_numpy(np.float64), 1) == 0))
        and values.nunique() <= _MAX_LABEL_VALUES
    )
    if not is_label and task == "multiclass":
        raise InvalidTargetError(
            f"`task='multiclass'` on windows of {name!r} needs a label column, but {target!r} holds {values.nunique()} distinct numbers; pass `target` naming a column of classes, or task='binary' for the direction (up/down) of {target!r}'s next value."
        )
    mode = "column" if is_label else "direction"
    if features:
        inputs = list(features) + (
            [target] if mode == "direction" and target not in features else []
        )
    else:
        inputs = [c for c in numeric if c != target or mode == "direction"]
    for c in inputs:
        if c not in frame.columns:
            raise InvalidInputError(
                f"feature column {c!r} not found in {name!r}{suggest(c, list(frame.columns))}; columns are: {', '.join(map(repr, frame.columns))}."
            )
    if not inputs:
        raise InvalidInputError(
            f"windows of {name!r} have no numeric input column besides the label {target!r}; add numeric columns or pass `features`."
        )
    return {"time_column": time_column, "inputs": inputs, "label": {"mode": mode, "column": target}}


def _windows_of(
    frame: pd.DataFrame,
    plan: dict[str, Any],
    lookback: int,
    *,
    strict: bool,
    what: str,
    labelled: bool,
) -> tuple[np.ndarray, np.ndarray | None, list[Any], int]:
    """(N, lookback, F) windows ending at each row from ``lookback - 1`` on, their labels (None when the
    table cannot label them) and end times; the last count says how many windows have a label."""
    from dlpipe.data.series import clean_series

    time_column, inputs, label = plan["time_column"], plan["inputs"], plan["label"]
    cleaned, _, _, _ = clean_series(frame, inputs, time_column, strict=strict, what=what)
    values = cleaned[inputs].to_numpy(np.float32)  # (T, F)
    n_rows = len(values)
    if n_rows < lookback + (1 if label["mode"] == "direction" and labelled else 0):
        raise InvalidInputError(
            f"{what!r} has {n_rows} rows but a window needs `lookback` = {lookback} rows"
            + (
                " and one more for the next value's direction"
                if label["mode"] == "direction" and labelled
                else ""
            )
            + "; pass a longer series or a smaller `lookback`."
        )
    starts = np.arange(n_rows - lookback + 1)
    x = values[starts[:, None] + np.arange(lookback)[None, :]]  # (N, lookback, F)
    ends = starts + lookback - 1
    times = cleaned[time_column].iloc[ends].tolist() if time_column is not None else ends.tolist()
    labels: np.ndarray | None = None
    n_labelled = 0
    if labelled:
        if label["mode"] == "column":
            if label["column"] not in frame.columns:
                raise InvalidInputError(
                    f"{what!r} has no label column {label['column']!r}; pass a table with the training columns."
                )
            raw = frame[label["column"]].iloc[ends].tolist()
            labels = np.asarray([_label_text(str(v)) for v in raw], dtype=object)
            n_labelled = len(labels)
        else:
            target = cleaned[label["column"]].to_numpy(np.float64)
            nxt = ends[:-1]
            labels = np.asarray(np.where(target[nxt + 1] > target[nxt], "up", "down"), dtype=object)
            n_labelled = len(labels)  # the last window's next value is not known yet
    return x, labels, times, n_labelled


def load_windows(
    data: Any,
    *,
    target: str | None = None,
    time_column: str | None = None,
    lookback: int | None = None,
    features: list[str] | None = None,
    test: Any = None,
    task: str = "binary",
    strict: bool = False,
    name: str | None = None,
) -> SequenceDataset:
    """Windows of one series, labelled, as a :class:`SequenceDataset` the recipe splits in time order.

    Args:
        data: A table (CSV/TSV/Parquet path or DataFrame), ordered by ``time_column``.
        target: The label: a column of classes (the label of the window ending at that row), or a numeric
            column whose next value's direction (``up`` if it rises, else ``down``) labels each window.
            Defaults to the last numeric column (its direction).
        time_column: Column of dates or numbers ordering the rows. Defaults to the row order.
        lookback: Rows per window. Defaults to `None`: the series rule of ``lookback: auto``
            (:func:`~dlpipe.data.series.auto_lookback`, a tenth of the series, 2 to 30).
        features: Input columns. Defaults to every numeric column but a label column (with a direction
            label, the target's own history is an input).
        test: A later stretch of the same series, windowed the same way. Defaults to `None`.
        task: ``binary`` or ``multiclass``. Defaults to `"binary"`.
        strict: Refuse NaNs instead of interpolating them. Defaults to `False`.
        name: For run folders. Defaults to the file stem.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"day": range(40), "price": [float((i * 7) % 11) for i in range(40)]})
        >>> ds = load_windows(t, time_column="day", lookback=5)
        >>> ds.x.shape, ds.labels[:3].tolist(), ds.meta["windows"]["label"]
        ((35, 5, 1), ['down', 'up', 'down'], {'mode': 'direction', 'column': 'price'})
    """
    from dlpipe.data.series import auto_lookback

    stem = Path(data).stem if isinstance(data, (str, Path)) else "series"
    name = name or stem
    frame = _sorted_table(data, time_column, "data")
    if time_column is not None and time_column not in frame.columns:
        from dlpipe.core.errors import suggest

        raise InvalidInputError(
            f"time column {time_column!r} not found in {name!r}{suggest(time_column, list(frame.columns))}; columns are: {', '.join(map(repr, frame.columns))}."
        )
    plan = _window_plan(frame, target, time_column, features, task, name)
    size = auto_lookback(len(frame)) if lookback is None else lookback
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InvalidInputError(
            f"`lookback` is {lookback!r} but must be a positive integer (rows per window) or 'auto'."
        )
    x, labels, times, n = _windows_of(frame, plan, size, strict=strict, what=name, labelled=True)
    assert labels is not None
    x, times = x[:n], times[:n]
    test_x = test_mask = test_labels = None
    test_times: list[Any] = []
    if test is not None:
        tframe = _sorted_table(test, time_column, "test")
        tx, tl, test_times, tn = _windows_of(
            tframe, plan, size, strict=strict, what="test", labelled=True
        )
        assert tl is not None
        test_x, test_labels, test_times = tx[:tn], tl, test_times[:tn]
        test_mask = np.ones(test_x.shape[:2], np.float32)
    plan["lookback"] = size
    return SequenceDataset(
        x=x,
        mask=np.ones(x.shape[:2], np.float32),
        labels=labels,
        name=name,
        test_x=test_x,
        test_mask=test_mask,
        test_labels=test_labels,
        meta={"windows": plan, "times": times, "test_times": test_times},
    )


class WindowAdapter(SequenceAdapter):
    """How a bundle trained on windows of a series reads a table: every window of ``lookback`` rows,
    scaled with the training statistics; ``predict`` gives one row per window, with its last time."""

    def _read(self, data: Any, labelled: bool) -> tuple[np.ndarray, np.ndarray | None, list[Any]]:
        import pandas as pd

        plan = self._state["windows"]
        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = pd.DataFrame(data)
        frame = _sorted_table(data, plan["time_column"], "input")
        missing = [
            c
            for c in plan["inputs"] + ([plan["time_column"]] if plan["time_column"] else [])
            if c not in frame.columns
        ]
        if missing:
            raise InvalidInputError(
                f"the input table lacks the columns {', '.join(map(repr, missing))}; pass rows with the training columns {', '.join(map(repr, plan['inputs']))}."
            )
        x, labels, times, n = _windows_of(
            frame, plan, int(plan["lookback"]), strict=False, what="input", labelled=labelled
        )
        mean = np.asarray(self._state["mean"], np.float32)
        std = np.asarray(self._state["std"], np.float32)
        x = (x - mean) / std
        if labelled and labels is not None:
            return x[:n], labels, times[:n]
        return x, None, times

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        import pandas as pd

        x, labels, times = self._read(data, with_target)
        mask = np.ones(x.shape[:2], np.float32)
        targets = pd.Series(labels, dtype=object) if labels is not None else None
        return PreparedBatch(
            inputs=[x, mask],
            targets=targets,
            baseline_features=x.reshape(len(x), -1).astype(np.float64),
            index=times,
        )

    def predict_bundle(self, bundle: Any, data: Any) -> pd.DataFrame:
        """One row per window: its last time, the predicted label (for a direction: of the next value) and
        class probabilities."""
        import pandas as pd

        batch = self.prepare(data)
        labels, proba = bundle.task.decode(bundle.outputs(batch.inputs))
        plan = self._state["windows"]
        out = pd.DataFrame({plan["time_column"] or "row": batch.index, "prediction": labels})
        if proba is not None and bundle.task.classes is not None:
            for i, c in enumerate(bundle.task.classes):
                out[f"proba_{c}"] = proba[:, i]
        return out
