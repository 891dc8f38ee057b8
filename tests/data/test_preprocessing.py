import json

import numpy as np
import pandas as pd
import pytest

from dlpipe.core.errors import DataWarning, InvalidInputError
from dlpipe.data.preprocessing import TabularPreprocessor
from dlpipe.data.schema import infer_schema


def _frame():
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 100.0, 200.0],
            "c": ["a", "b", "a", None, "z", "z"],
            "y": [0, 1, 0, 1, 0, 1],
        }
    )


def test_statistics_come_from_training_rows_only():
    frame = _frame()
    schema = infer_schema(frame, "y")
    pre = TabularPreprocessor(schema).fit(frame.iloc[:4])  # train = first 4 rows
    state = pre.state()
    assert state["numeric"][0]["fill"] == 2.0  # median of 1, 2, 4 (the 100/200 test rows ignored)
    assert state["numeric"][0]["indicator"] is True
    assert pytest.approx(state["scale"]["mean"][0]) == np.mean([1, 2, 2, 4])
    assert state["onehot"][0]["categories"] == ["a", "b"]  # 'z' never seen in training


def test_unknown_category_warns_with_count_and_maps_to_zero():
    frame = _frame()
    pre = TabularPreprocessor(infer_schema(frame, "y")).fit(frame.iloc[:4])
    with pytest.warns(DataWarning, match=r"treated as unknown.*'c' \(2 rows, e.g. 'z'\)"):
        x_num, x_cat = pre.transform(frame.iloc[4:])
    names = pre.feature_names
    onehot = x_num[:, [names.index("c=a"), names.index("c=b")]]
    assert (onehot == 0).all()
    assert x_cat.shape == (2, 0)


def test_state_is_json_and_round_trips():
    frame = _frame()
    pre = TabularPreprocessor(infer_schema(frame, "y"), scaling="minmax").fit(frame)
    state = json.loads(json.dumps(pre.state()))
    again = TabularPreprocessor.from_state(state)
    a, _ = pre.transform(frame)
    b, _ = again.transform(frame)
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("scaling", ["standard", "minmax", "l2", "none"])
def test_scalings(scaling):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [4.0, 3.0, 2.0, 10.0], "y": [0, 1, 0, 1]})
    pre = TabularPreprocessor(infer_schema(frame, "y"), scaling=scaling).fit(frame)
    x, _ = pre.transform(frame)
    if scaling == "standard":
        np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-6)
    elif scaling == "minmax":
        assert x.min() == 0 and x.max() == 1
    elif scaling == "l2":
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-6)
    else:
        np.testing.assert_allclose(x, frame[["a", "b"]].to_numpy())


def test_high_cardinality_goes_to_embeddings():
    frame = pd.DataFrame(
        {"k": [f"k{i % 30}" for i in range(90)], "a": np.arange(90) % 7 * 1.5, "y": [0, 1, 2] * 30}
    )
    pre = TabularPreprocessor(infer_schema(frame, "y"), max_onehot=20).fit(frame)
    x_num, x_cat = pre.transform(frame)
    assert x_cat.shape == (90, 1) and x_cat.min() >= 1 and pre.cardinalities == [31]


def test_missing_and_extra_columns_at_predict():
    frame = _frame()
    pre = TabularPreprocessor(infer_schema(frame, "y")).fit(frame)
    with pytest.raises(InvalidInputError, match=r"missing the columns c"):
        pre.transform(frame[["x"]])
    with pytest.warns(DataWarning, match="ignored columns.*extra"):
        pre.transform(frame.assign(extra=1))


def test_text_in_numeric_column_at_predict():
    frame = _frame()
    pre = TabularPreprocessor(infer_schema(frame, "y")).fit(frame)
    bad = frame.astype({"x": object})
    bad.loc[0, "x"] = "ten"
    with pytest.raises(InvalidInputError, match=r"column 'x' should be numeric.*'ten'"):
        pre.transform(bad)
