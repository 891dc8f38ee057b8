import pandas as pd
import pytest

from dlpipe.core.errors import (
    DataWarning,
    InvalidInputError,
    InvalidTargetError,
    UnsupportedFileError,
)
from dlpipe.data.tabular import load_table


def test_csv_parquet_and_frame_load_the_same(tmp_path, binary_frame):
    binary_frame.to_csv(tmp_path / "d.csv", index=False)
    binary_frame.to_parquet(tmp_path / "d.parquet")
    for src in (tmp_path / "d.csv", tmp_path / "d.parquet", binary_frame):
        ds = load_table(src, target="y")
        assert ds.frame.shape == (64, 5) and ds.target == "y"
    assert load_table(tmp_path / "d.csv", target="y").name == "d"


def test_missing_target_suggests_and_lists_columns(binary_frame):
    with pytest.raises(
        InvalidTargetError,
        match=r"target column 'yy' not found.*did you mean `y`.*columns are: a, b, c, d, y",
    ):
        load_table(binary_frame, target="yy")


def test_empty_and_headerless_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UnsupportedFileError, match="is empty"):
        load_table(tmp_path / "empty.csv", target="y")
    (tmp_path / "header.csv").write_text("a,y\n")
    with pytest.raises(InvalidInputError, match="has no rows"):
        load_table(tmp_path / "header.csv", target="y")


def test_unsupported_type_and_missing_file(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFileError, match=r"unsupported type '.xlsx'"):
        load_table(tmp_path / "d.xlsx", target="y")
    with pytest.raises(UnsupportedFileError, match="does not exist"):
        load_table(tmp_path / "nope.csv", target="y")


def test_rows_without_target_are_dropped_with_warning():
    frame = pd.DataFrame({"a": range(5), "y": [1, None, 0, 1, None]})
    with pytest.warns(DataWarning, match="dropped 2 rows"):
        ds = load_table(frame, target="y")
    assert len(ds.frame) == 3


def test_all_targets_missing_is_an_error():
    with pytest.raises(InvalidTargetError, match="has no values"):
        load_table(pd.DataFrame({"a": [1, 2], "y": [None, None]}), target="y")
