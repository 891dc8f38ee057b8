"""The table preprocessor: imputation, scaling and category maps, fitted on the training split only.

Its state is plain JSON (``state()`` / ``from_state``) so a bundle can hold it without pickle.
Output of ``transform``: ``x_num`` (N, F) float32 — scaled numeric columns, missing-indicators and
one-hot blocks — and ``x_cat`` (N, C) int64 codes for high-cardinality columns that the model embeds
(code 0 means "unknown").
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import DataWarning, InvalidInputError, format_names
from dlpipe.data.inputs import PreparedBatch
from dlpipe.data.numbers import check_numbers, check_scaled
from dlpipe.data.schema import Schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TabularPreprocessor", "unseen_categories_message"]

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


class TabularPreprocessor:
    """Turns raw table columns into model inputs with statistics fitted on training rows only.

    Args:
        schema: The inferred column kinds.
        scaling: ``"standard"``, ``"minmax"``, ``"l2"`` (row normalisation) or ``"none"``. Defaults to `"standard"`.
        max_onehot: Categoricals with at most this many categories are one-hot, larger ones embedded. Defaults to `20`.

    Example:
        >>> import pandas as pd
        >>> from dlpipe.data.schema import infer_schema
        >>> df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "c": ["x", "y", "x", "y"], "t": [0, 1, 0, 1]})
        >>> pre = TabularPreprocessor(infer_schema(df, "t")).fit(df)
        >>> x_num, x_cat = pre.transform(df)
        >>> x_num.shape, x_cat.shape
        ((4, 3), (4, 0))
    """

    def __init__(self, schema: Schema, scaling: str = "standard", max_onehot: int = 20) -> None:
        self.schema = schema
        self.scaling = scaling
        self.max_onehot = max_onehot
        self.state_: dict[str, Any] | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        numeric: list[dict[str, Any]] = []
        onehot: list[dict[str, Any]] = []
        embed: list[dict[str, Any]] = []
        for col in self.schema.columns:
            s = frame[col.name]
            if col.kind in ("numeric", "boolean"):
                values = _to_float(s, col.name, col.kind)
                numeric.append(_numeric_stats(col.name, col.kind, values))
            elif col.kind == "datetime":
                parts = _date_parts(s)
                for part, values in parts.items():
                    finite = values[np.isfinite(values)]
                    if len(finite) and finite.std() > 0:
                        numeric.append(
                            _numeric_stats(
                                f"{col.name}.{part}", "datetime", values, source=col.name, part=part
                            )
                        )
            else:
                text = s.astype("string")
                counts = text.dropna().value_counts()
                categories = [str(c) for c in counts.index]
                entry = {
                    "name": col.name,
                    "categories": categories,
                    "mode": categories[0] if categories else "",
                    "indicator": bool(text.isna().any()),
                }
                (onehot if len(categories) <= self.max_onehot else embed).append(entry)
        block = (
            np.column_stack([_impute(_column_values(frame, n), n) for n in numeric])
            if numeric
            else np.zeros((len(frame), 0))
        )
        scale: dict[str, list[float]] = {}
        if self.scaling == "standard" and numeric:
            mean = block.mean(axis=0)
            std = block.std(axis=0)
            scale = {"mean": mean.tolist(), "std": np.where(std > 1e-12, std, 1.0).tolist()}
        elif self.scaling == "minmax" and numeric:
            lo, hi = block.min(axis=0), block.max(axis=0)
            scale = {"min": lo.tolist(), "range": np.where(hi - lo > 1e-12, hi - lo, 1.0).tolist()}
        self.state_ = {
            "scaling": self.scaling,
            "max_onehot": self.max_onehot,
            "numeric": numeric,
            "scale": scale,
            "onehot": onehot,
            "embed": embed,
        }
        return self

    # ------------------------------------------------------------------ applying
    def transform(
        self, frame: pd.DataFrame, *, warn_unknown: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        state = self._require_state()
        self.check_columns(frame)
        n = len(frame)
        blocks: list[np.ndarray] = []
        numeric = state["numeric"]
        if numeric:
            raw = np.column_stack([_column_values(frame, e) for e in numeric])
            missing = np.isnan(raw)
            medians = np.array([e["fill"] for e in numeric])
            unscaled = np.where(missing, medians, raw)
            with np.errstate(
                over="ignore", invalid="ignore"
            ):  # overflow is refused just below, by column and row
                if state["scaling"] == "standard":
                    filled = (unscaled - np.asarray(state["scale"]["mean"])) / np.asarray(
                        state["scale"]["std"]
                    )
                elif state["scaling"] == "minmax":
                    filled = (unscaled - np.asarray(state["scale"]["min"])) / np.asarray(
                        state["scale"]["range"]
                    )
                elif state["scaling"] == "l2":
                    norm = np.linalg.norm(unscaled, axis=1, keepdims=True)
                    filled = unscaled / np.where(norm > 0, norm, 1.0)
                else:
                    filled = unscaled
            check_scaled(filled, unscaled, [e["name"] for e in numeric], frame.index)
            blocks.append(filled)
            ind = [i for i, e in enumerate(numeric) if e["indicator"]]
            if ind:
                blocks.append(missing[:, ind].astype(np.float64))
        unknown: dict[str, tuple[int, Any]] = {}
        for entry in state["onehot"]:
            codes, n_unknown, was_missing = _codes(frame[entry["name"]], entry)
            if n_unknown:
                unknown[entry["name"]] = (n_unknown, _first_unseen(frame[entry["name"]], codes))
            onehot = np.zeros((n, len(entry["categories"])))
            known = codes > 0  # an unseen category sets none of the column's one-hot inputs
            onehot[np.nonzero(known)[0], codes[known] - 1] = 1.0
            blocks.append(onehot)
            if entry["indicator"]:
                blocks.append(was_missing[:, None].astype(np.float64))
        cat_cols = []
        for entry in state["embed"]:
            codes, n_unknown, _ = _codes(frame[entry["name"]], entry)
            if n_unknown:
                unknown[entry["name"]] = (n_unknown, _first_unseen(frame[entry["name"]], codes))
            cat_cols.append(codes)  # code 0: the embedding's "unknown" row
        if unknown and warn_unknown:
            warnings.warn(DataWarning(unseen_categories_message(unknown)), stacklevel=2)
        x_num = (
            np.column_stack(blocks).astype(np.float32) if blocks else np.zeros((n, 0), np.float32)
        )
        x_cat = (
            np.column_stack(cat_cols).astype(np.int64) if cat_cols else np.zeros((n, 0), np.int64)
        )
        return x_num, x_cat

    def check_columns(self, frame: pd.DataFrame) -> None:
        """Raise if input columns are missing; warn once about extra columns (they are ignored)."""
        expected = self.schema.names
        missing = [c for c in expected if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"input is missing the columns {format_names(missing)}; the model was trained on: {format_names(expected)}."
            )
        ignored = {self.schema.target, *(c for c, _ in self.schema.dropped)}
        extra = [c for c in frame.columns if c not in expected and c not in ignored]
        if extra:
            warnings.warn(
                DataWarning(
                    f"ignored columns the model was not trained on: {format_names(extra)}."
                ),
                stacklevel=3,
            )

    # ------------------------------------------------------------------ describing
    @property
    def n_numeric(self) -> int:
        state = self._require_state()
        n = len(state["numeric"]) + sum(1 for e in state["numeric"] if e["indicator"])
        return n + sum(len(e["categories"]) + int(e["indicator"]) for e in state["onehot"])

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes (categories + 1 for "unknown") of the embedded columns."""
        return [len(e["categories"]) + 1 for e in self._require_state()["embed"]]

    @property
    def feature_names(self) -> list[str]:
        state = self._require_state()
        names = [e["name"] for e in state["numeric"]]
        names += [f"{e['name']}.missing" for e in state["numeric"] if e["indicator"]]
        for e in state["onehot"]:
            names += [f"{e['name']}={c}" for c in e["categories"]]
            if e["indicator"]:
                names.append(f"{e['name']}.missing")
        return names

    def state(self) -> dict[str, Any]:
        return {"schema": self.schema.to_dict(), **self._require_state()}

    @property
    def input_names(self) -> list[str]:
        return self.schema.names

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        """Raw rows (DataFrame, list of dicts, CSV/Parquet path) -> model inputs (the bundle's entry)."""
        from dlpipe.data.tabular import read_table

        frame = read_table(data, what="input")
        if len(frame) == 0:
            raise InvalidInputError(
                "input has no rows; pass at least one row with the columns the model was trained on."
            )
        frame.columns = [str(c) for c in frame.columns]
        x_num, x_cat = self.transform(frame)
        inputs = [x_num] + ([x_cat] if x_cat.shape[1] else [])
        target = self.schema.target
        targets = frame[target] if with_target and target in frame.columns else None
        return PreparedBatch(
            inputs=inputs, targets=targets, baseline_features=x_num, index=frame.index
        )

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularPreprocessor:
        pre = cls(Schema.from_dict(state["schema"]), state["scaling"], state["max_onehot"])
        pre.state_ = {k: v for k, v in state.items() if k != "schema"}
        return pre

    def _require_state(self) -> dict[str, Any]:
        if self.state_ is None:
            raise RuntimeError("TabularPreprocessor is not fitted; call fit() first.")
        return self.state_


def reference_statistics(frame: pd.DataFrame, schema: Schema, bins: int = 10) -> dict[str, Any]:
    """Per-feature summaries of the training inputs, kept in the bundle for drift checks."""
    stats: dict[str, Any] = {}
    for col in schema.columns:
        s = frame[col.name]
        entry: dict[str, Any] = {
            "kind": col.kind,
            "count": int(len(s)),
            "missing": float(s.isna().mean()),
        }
        if col.kind in ("numeric", "boolean"):
            values = _to_float(s, col.name, col.kind)
            values = values[np.isfinite(values)]
            if len(values):
                edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
                counts = (
                    np.histogram(values, bins=edges)[0]
                    if len(edges) > 1
                    else np.array([len(values)])
                )
                qs = np.quantile(values, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
                entry.update(
                    mean=float(values.mean()),
                    std=float(values.std()),
                    min=float(values.min()),
                    max=float(values.max()),
                    quantiles=[float(q) for q in qs],
                    bin_edges=[float(e) for e in edges],
                    bin_counts=[int(c) for c in counts],
                    # a bounded, seeded sample for the two-sample KS drift test (dlpipe.monitoring)
                    sample=[
                        float(f"{v:.6g}")
                        for v in np.random.default_rng(0).choice(
                            values, size=min(len(values), 500), replace=False
                        )
                    ],
                )
        elif col.kind == "categorical":
            freq = s.astype("string").fillna("<missing>").value_counts(normalize=True)
            entry["frequencies"] = {str(k): float(v) for k, v in freq.head(200).items()}
        stats[col.name] = entry
    return stats


# ---------------------------------------------------------------------- helpers
def _to_float(s: pd.Series, name: str, kind: str) -> np.ndarray:
    import pandas as pd

    if (
        kind == "boolean"
        and not pd.api.types.is_numeric_dtype(s)
        and not pd.api.types.is_bool_dtype(s)
    ):
        lowered = s.astype("string").str.strip().str.lower()
        out = np.full(len(s), np.nan)
        out[lowered.isin(_TRUE).fillna(False).to_numpy(bool)] = 1.0
        out[lowered.isin(_FALSE).fillna(False).to_numpy(bool)] = 0.0
        return out
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(s, errors="coerce")
    bad = parsed.isna() & s.notna()
    if bad.any():
        example = s[bad].iloc[0]
        raise InvalidInputError(
            f"column {name!r} should be numeric but holds text such as {example!r} in {int(bad.sum())} rows; clean those values or pass numbers."
        )
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


def _date_parts(s: pd.Series) -> dict[str, np.ndarray]:
    import pandas as pd

    d = (
        pd.to_datetime(s, errors="coerce", format="mixed")
        if not pd.api.types.is_datetime64_any_dtype(s)
        else s
    )
    return {
        "year": d.dt.year.to_numpy(np.float64, na_value=np.nan),
        "month": d.dt.month.to_numpy(np.float64, na_value=np.nan),
        "day": d.dt.day.to_numpy(np.float64, na_value=np.nan),
        "weekday": d.dt.day_of_week.to_numpy(np.float64, na_value=np.nan),
        "hour": d.dt.hour.to_numpy(np.float64, na_value=np.nan),
    }


def _numeric_stats(name: str, kind: str, values: np.ndarray, **extra: str) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    if kind == "boolean" and len(finite):
        fill = float(np.round(finite.mean()))  # the most frequent of 0/1
    else:
        fill = float(np.median(finite)) if len(finite) else 0.0
    return {
        "name": name,
        "kind": kind,
        "fill": fill,
        "indicator": bool(len(finite) < len(values)),
        **extra,
    }


def _column_values(frame: pd.DataFrame, entry: dict[str, Any]) -> np.ndarray:
    """One numeric input as float64 with NaN for missing; ±inf and |x| beyond float32 are refused (data/numbers.py)."""
    if entry["kind"] == "datetime":
        return _date_parts(frame[entry["source"]])[entry["part"]]
    values = _to_float(frame[entry["name"]], entry["name"], entry["kind"])
    check_numbers(values, entry["name"], frame.index)
    return values


def _impute(values: np.ndarray, entry: dict[str, Any]) -> np.ndarray:
    return np.where(np.isnan(values), entry["fill"], values)


def unseen_categories_message(unseen: dict[str, tuple[int, Any]]) -> str:
    """The one warning for categories a model never saw in training, shared by ``dlpipe predict``,
    ``Bundle.predict`` and the server: ``{column: (rows, an example value)}`` -> one sentence."""
    parts = [
        f"{name!r} ({rows} row{'' if rows == 1 else 's'}, e.g. {_short(value)})"
        for name, (rows, value) in unseen.items()
    ]
    return (
        "categories not seen in training were treated as unknown (no one-hot column set, or the "
        "embedding's unknown row): " + ", ".join(parts) + "."
    )


def _short(value: Any, limit: int = 40) -> str:
    """``repr`` cut short: a request's value may be megabytes long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


_INT_TEXT = re.compile(r"-?\d+")
_INT_FLOAT_TEXT = re.compile(r"(-?\d+)\.0+")


def _first_unseen(s: pd.Series, codes: np.ndarray) -> Any:
    """The first value that got code 0 (unseen; missing values never do), as the row holds it."""
    return s.iloc[int(np.flatnonzero(codes == 0)[0])]


def _codes(s: pd.Series, entry: dict[str, Any]) -> tuple[np.ndarray, int, np.ndarray]:
    """Codes 1..K for known categories, 0 for unknown; missing values take the training mode.

    An integer-looking category also matches its twin (``"2008"`` / ``"2008.0"``): a column of
    integers read as float because of a gap must not turn every value into "unseen" (the server's
    row encoder and the ONNX graph match the same way).
    """
    lookup = {c: i + 1 for i, c in enumerate(entry["categories"])}
    for c, code in list(lookup.items()):
        text_c = str(c)
        if _INT_TEXT.fullmatch(text_c):
            lookup.setdefault(text_c + ".0", code)
        elif (m := _INT_FLOAT_TEXT.fullmatch(text_c)) is not None:
            lookup.setdefault(m.group(1), code)
    text = s.astype("string")
    was_missing = text.isna().to_numpy(bool)
    text = text.fillna(entry["mode"])
    codes = text.map(lookup).astype("float64").fillna(0).to_numpy(np.int64)
    n_unknown = int(((codes == 0) & ~was_missing).sum())
    return codes, n_unknown, was_missing
