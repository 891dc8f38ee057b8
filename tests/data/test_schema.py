import json

import numpy as np
import pandas as pd
import pytest

from dlpipe.core.errors import DataWarning, InvalidInputError
from dlpipe.data.schema import Schema, infer_schema


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
        "rooms": "numeric",  # integers stay numeric; codes are listed under `categorical`
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


def _penguin_like(n: int = 48) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "year": np.tile([2007, 2008, 2009], n // 3),
            "species": np.tile(["Adelie", "Gentoo", "Chinstrap"], n // 3),
            "mass": np.linspace(3000, 6000, n),
            "male": np.tile([0, 1], n // 2),
            "y": np.tile([0, 1], n // 2),
        }
    )


def test_every_column_has_a_reason_from_the_inference():
    with pytest.warns(DataWarning, match="ID-like"):
        schema = infer_schema(_penguin_like(), "y")
    assert schema.describe() == [
        ("year", "numeric", "integers, 3 distinct values over 48 rows"),
        ("species", "categorical", "text, 3 values"),
        ("mass", "numeric", "numbers, 48 distinct values over 48 rows"),
        ("male", "boolean", "0/1 values"),
        ("id", "dropped", "ID-like (one value per row)"),
    ]


def test_a_year_like_integer_column_is_numeric_unless_listed_as_categorical():
    frame = _penguin_like().drop(columns="id")
    assert {c.name: c.kind for c in infer_schema(frame, "y").columns}["year"] == "numeric"
    schema = infer_schema(frame, "y", categorical=["year"])
    info = {c.name: c for c in schema.columns}["year"]
    assert info.kind == "categorical"
    assert info.reason == "listed under `categorical`, 3 distinct values"


def test_missing_values_are_in_the_reason():
    frame = _penguin_like().drop(columns="id")
    frame.loc[:4, "species"] = None
    info = {c.name: c for c in infer_schema(frame, "y").columns}["species"]
    assert info.reason == "text, 3 values; 5 missing"


def test_reasons_survive_json_and_old_schemas_without_them_still_load():
    schema = infer_schema(_penguin_like().drop(columns="id"), "y")
    again = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    old = schema.to_dict()
    for c in old["columns"]:
        del c["reason"]  # a bundle saved before reasons were recorded
    loaded = Schema.from_dict(old)
    assert loaded.names == schema.names
    assert {r for _, _, r in loaded.describe()} == {""}
