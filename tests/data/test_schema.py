import numpy as np
import pandas as pd
import pytest

from dlpipe.core.errors import DataWarning, InvalidInputError
from dlpipe.data.schema import infer_schema


def test_kinds_and_dropped_columns():
    n = 40
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "row": np.arange(n),
            "const": 1.0,
            "price": np.linspace(1, 2, n),
            "rooms": np.tile([1, 2, 3, 4], n // 4),
            "flag": np.tile([True, False], n // 2),
            "city": np.tile(["a", "b", "c", "d"], n // 4),
            "when": pd.date_range("2024-01-01", periods=n, freq="D").astype(str),
            "y": np.tile([0, 1], n // 2),
        }
    )
    with pytest.warns(DataWarning) as record:
        schema = infer_schema(frame, "y")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "price": "numeric",
        "rooms": "categorical",
        "flag": "boolean",
        "city": "categorical",
        "when": "datetime",
    }
    dropped = dict(schema.dropped)
    assert set(dropped) == {"customer_id", "row", "const"}
    text = " ".join(str(w.message) for w in record)
    assert "ID-like" in text and "constant" in text and "datetime" in text


def test_mostly_numeric_text_names_column_and_value():
    values = [str(i) for i in range(30)] + ["n/a"]
    frame = pd.DataFrame({"size": values, "y": [0, 1] * 15 + [0]})
    with pytest.raises(InvalidInputError, match=r"column 'size' is mostly numeric.*'n/a'"):
        infer_schema(frame, "y")


def test_user_overrides_and_unknown_override():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 2, 1, 2], "y": [0, 1, 0, 1]})
    schema = infer_schema(frame, "y", categorical=["a"], drop=["b"])
    assert [c.kind for c in schema.columns] == ["categorical"]
    with pytest.raises(InvalidInputError, match=r"`numeric` names the column 'z'"):
        infer_schema(frame, "y", numeric=["z"])


def test_no_usable_columns():
    with (
        pytest.raises(InvalidInputError, match="no usable feature columns"),
        pytest.warns(DataWarning),
    ):
        infer_schema(pd.DataFrame({"c": [1, 1, 1], "y": [0, 1, 0]}), "y")
