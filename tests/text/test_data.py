"""Text inputs: detection of a free-text column, folders of .txt, .csv.gz, and the bad-input sentences."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from dlpipe.cli.app import main
from dlpipe.core.config import build_config
from dlpipe.core.errors import InvalidInputError, UnsupportedFileError
from dlpipe.data.schema import free_text_reason
from dlpipe.data.text import MAX_DOCUMENT_CHARS, detect_text, load_text

from .conftest import documents, write_folder


def test_free_text_rule_separates_documents_from_categories():
    docs = documents(30)["text"]
    assert free_text_reason(docs).startswith("free text: median")
    assert free_text_reason(pd.Series(["red", "green", "blue"] * 10)) is None  # short, repeating
    assert (
        free_text_reason(
            pd.Series([f"same long sentence of many words {i % 3}" for i in range(30)])
        )
        is None
    )
    assert free_text_reason(pd.Series(range(30))) is None


def test_csv_with_a_text_column_is_claimed_and_listed_as_text(tmp_path: Path):
    frame = documents(30)
    frame["city"] = ["a", "b"] * 15  # a categorical column beside the text: read beside it
    frame.to_csv("d.csv", index=False)
    ds = detect_text("d.csv", build_config(), None)
    assert ds is not None and ds.kind == "text" and len(ds.texts) == 30 and ds.target == "label"
    assert ds.schema is not None
    rows = ds.schema.describe()
    assert rows[0][:2] == ("text", "text") and "free text" in rows[0][2]
    assert rows[1][:2] == ("city", "categorical")
    numeric = pd.DataFrame({"a": range(30), "y": [0, 1] * 15})
    numeric.to_csv("n.csv", index=False)
    assert detect_text("n.csv", build_config(), None) is None  # an ordinary table stays a table


def test_gzip_csv_and_folder_of_txt(tmp_path: Path):
    frame = documents(30)
    with gzip.open("d.csv.gz", "wt", encoding="utf-8") as fh:
        frame.to_csv(fh, index=False)
    ds = load_text("d.csv.gz")
    assert ds.texts == frame["text"].tolist() and ds.name == "d"
    write_folder(tmp_path / "docs", frame)
    folder = detect_text(tmp_path / "docs", build_config(), None)
    assert folder is not None and sorted(set(folder.labels)) == ["food", "money", "sport"]
    assert len(folder.texts) == 30


def test_bad_documents_are_one_sentence(tmp_path: Path):
    frame = documents(30)
    frame.loc[4, "text"] = "   "
    with pytest.raises(
        InvalidInputError, match=r"row 6 of the DataFrame \(column 'text'\) is an empty text"
    ):
        load_text(frame)
    big = documents(30)
    big.loc[2, "text"] = "word " * (MAX_DOCUMENT_CHARS // 5 + 10)
    with pytest.raises(
        InvalidInputError, match=r"row 4 .* characters long, more than the 1,000,000"
    ):
        load_text(big)
    one = documents(30).assign(label="sport")
    with pytest.raises(InvalidInputError, match=r"one class \('sport'\) in 30 documents"):
        load_text(one)


def test_bad_files_are_one_sentence(tmp_path: Path):
    root = write_folder(tmp_path / "docs", documents(12))
    (root / "sport" / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(
        UnsupportedFileError, match=r"latin1.txt' is not UTF-8 text \(byte 0xe9 at offset 3\)"
    ):
        load_text(root)
    (root / "sport" / "latin1.txt").write_bytes(b"a" * (5 * 1024 * 1024))  # a 5 MB document
    with pytest.raises(
        InvalidInputError, match=r"latin1.txt' is 5.2 MB, more than the 1,000,000 characters"
    ):
        load_text(root)
    with gzip.open("bad.csv.gz", "wb") as fh:
        fh.write(b"text,label\n" + "caf\xe9 ".encode("latin-1") * 20 + b",a\n")
    with pytest.raises(UnsupportedFileError, match=r"bad.csv.gz' is not UTF-8 text"):
        load_text("bad.csv.gz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("empty", "is an empty text"),
        ("huge", "is 5.2 MB"),
        ("latin1", "is not UTF-8 text"),
        ("one_class", "has one class"),
    ],
)
def test_cli_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, capsys, change: str, message: str
):
    frame = documents(24)
    root = write_folder(
        tmp_path / "docs", frame if change != "one_class" else frame.assign(label="sport")
    )
    target = root / "sport" / "doc0.txt"
    if change == "empty":
        target.write_text("", encoding="utf-8")
    elif change == "huge":
        target.write_bytes(b"a " * (5 * 512 * 1024))  # 5 MB
    elif change == "latin1":
        target.write_bytes("na\xefve text".encode("latin-1"))
    assert main(["train", str(root), "--out", "run", "-q", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not Path("run").exists() and not list(Path(".").glob(".run*"))  # nothing half-written
