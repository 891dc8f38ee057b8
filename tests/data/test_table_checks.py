"""What reading a table refuses or warns about instead of changing silently (issue #15, item 7):
duplicate column names (pandas renamed the second ``a`` to ``a.1``), a CSV separated by ';' (it read as
one column), and non-finite numbers in arrays and series (tables: tests/security/test_numbers.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlpipe.core.errors import DataWarning, InvalidInputError
from dlpipe.data.tabular import load_table, read_table


def test_duplicate_column_names_in_a_csv_are_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,y,b\n1,2,3,0,5\n4,5,6,1,7\n")
    with pytest.raises(
        InvalidInputError,
        match=r"^data file '.*dup\.csv' has the same column name more than once: 'a' \(columns 1, 3\), 'b' \(columns 2, 5\); "
        r"rename those columns so that each name is unique\.$",
    ):
        read_table(path)


def test_duplicate_names_after_turning_them_into_text_are_refused():
    frame = pd.DataFrame([[1, 2, 0], [3, 4, 1]], columns=[1, "1", "y"])
    with pytest.raises(
        InvalidInputError,
        match=r"^data has the same column name more than once: '1' \(columns 1, 2\)",
    ):
        load_table(frame, "y")


def test_a_csv_whose_own_column_is_named_like_a_renamed_duplicate_is_fine(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("a,a.1,y\n1,2,0\n3,4,1\n")
    assert list(read_table(path).columns) == ["a", "a.1", "y"]


def test_a_semicolon_csv_is_read_with_a_warning(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n1.5;2;x\n3.25;4;z\n")
    with pytest.warns(
        DataWarning,
        match=r"^data file '.*semi\.csv' is separated by ';', not by commas, so it was read with ';' as the separator; save it with commas",
    ):
        frame = read_table(path)
    assert list(frame.columns) == ["a", "b", "y"] and frame["a"].tolist() == [1.5, 3.25]


def test_a_semicolon_csv_with_decimal_commas_reads_numbers(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("weight;height;label\n1,5;170;x\n2,25;180;y\n")
    with pytest.warns(DataWarning, match=r"as the separator and ',' as the decimal mark;"):
        frame = read_table(path)
    assert frame["weight"].tolist() == [1.5, 2.25] and frame["height"].tolist() == [170, 180]


def test_a_semicolon_csv_with_duplicate_names_is_refused(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;a;y\n1;2;x\n3;4;z\n")
    with pytest.raises(InvalidInputError, match=r"'a' \(columns 1, 2\)"):
        read_table(path)


def test_a_single_column_csv_without_other_separators_reads_as_before(tmp_path, recwarn):
    path = tmp_path / "one.csv"
    path.write_text("value\n1\n2\n")
    assert list(read_table(path).columns) == ["value"]
    assert not recwarn.list


def test_arrays_with_nan_or_overflow_are_refused_by_sample():
    from dlpipe.data.arrays import ArrayAdapter, ArrayDataset

    x = np.zeros((3, 1, 2, 2))
    x[1, 0, 0, 1] = 1e300
    with pytest.raises(
        InvalidInputError,
        match=r"^`x` holds 1e\+300 in sample 2, but samples must be numbers within ±3\.4e\+38",
    ):
        ArrayDataset(x)
    adapter = ArrayAdapter([1, 2, 2])
    x[1, 0, 0, 1], x[2, 0, 1, 1] = np.nan, np.inf
    with pytest.raises(
        InvalidInputError, match=r"^the input holds nan in sample 2 and 1 more sample, "
    ):
        adapter.prepare(x)


def test_a_series_with_inf_is_refused():
    from dlpipe.data.series import clean_series

    frame = pd.DataFrame({"t": range(6), "y": [1.0, 2.0, np.inf, 4.0, 5.0, 6.0]})
    with pytest.raises(InvalidInputError, match=r"^column 'y' of 'data' holds inf in row 3; "):
        clean_series(frame, ["y"], "t", strict=False, what="data")
