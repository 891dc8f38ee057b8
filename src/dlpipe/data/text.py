"""Text for classification: tables with a free-text column, folders of ``.txt`` files per class, and
the word-level tokenizer (Hugging Face ``tokenizers``) a text bundle stores as JSON.

Sources:

- a CSV / TSV / Parquet / ``.csv.gz`` file or a DataFrame with a free-text column (long, mostly unique
  strings: :func:`~dlpipe.data.schema.free_text_reason`) and a label column (``target``, else
  ``label``, else the last column); its other columns (numbers, categories, dates) are read as a table
  beside the text (``table_schema``: inferred as for any table), so one network reads both;
- a folder of class folders, ``docs/<label>/*.txt`` (UTF-8), like image folders.

Text is read as UTF-8 (strictly: a file with other bytes is refused, naming the byte and its offset),
normalised with Unicode NFKC and lowercased by the tokenizer. Every document must hold some text and
be at most :data:`MAX_DOCUMENT_CHARS` characters; anything else is one sentence naming the row or file.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import DataWarning, InvalidInputError, UnsupportedFileError, format_names
from dlpipe.data.inputs import PreparedBatch
from dlpipe.data.schema import ColumnInfo, Schema, free_text_reason

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TextDataset",
    "TextAdapter",
    "load_text",
    "detect_text",
    "find_text_columns",
    "read_text_folder",
    "fit_tokenizer",
    "encode_texts",
    "MAX_DOCUMENT_CHARS",
    "TEXT_FAMILIES",
    "PAD",
    "UNK",
]

MAX_DOCUMENT_CHARS = (
    1_000_000  # ~150k words: far beyond what a model reads (it keeps `max_length` tokens)
)
PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1 in every vocabulary dlpipe trains
# the model families that read text: four trained from scratch, two pretrained (optional packages)
TEXT_FAMILIES = ("text_bag", "text_tfidf", "text_rnn", "text_transformer", "minilm", "glove")
_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".csv.gz", ".tsv.gz")
_PEEK_ROWS = 2000  # rows read to decide whether a CSV holds free text


@dataclass
class TextDataset:
    """Documents and their labels (and an optional separate test set).

    Example:
        >>> ds = load_text((["a long enough first document", "another one"], ["x", "y"]))
        >>> ds.kind, len(ds.texts)
        ('text', 2)
    """

    texts: list[str]
    labels: list[str]
    name: str = "text"
    target: str = "label"
    text_columns: list[str] = field(default_factory=lambda: ["text"])
    test_texts: list[str] | None = None
    test_labels: list[str] | None = None
    schema: Schema | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # table columns beside the text (rows aligned with `texts`), their inferred kinds, and the test rows'
    frame: pd.DataFrame | None = None
    table_schema: Schema | None = None
    test_frame: pd.DataFrame | None = None

    kind = "text"

    def __repr__(self) -> str:
        test = f", test={len(self.test_texts)}" if self.test_texts is not None else ""
        cols = f", columns={self.table_schema.names}" if self.table_schema is not None else ""
        return f"TextDataset(name={self.name!r}, documents={len(self.texts)}, classes={len(set(self.labels))}{cols}{test})"


# ----------------------------------------------------------------------------------- reading
def _is_table_path(p: Path) -> bool:
    return p.name.lower().endswith(_TABLE_SUFFIXES)


def _read_frame(source: Any, *, what: str, nrows: int | None = None) -> pd.DataFrame:
    """A table path (CSV/TSV/Parquet, optionally gzip-compressed CSV/TSV) or a DataFrame -> DataFrame."""
    import pandas as pd

    from dlpipe.data.tabular import read_table

    if isinstance(source, pd.DataFrame):
        return source.copy()
    p = Path(source)
    if not p.name.lower().endswith(".gz") and nrows is None:
        return read_table(p, what=what)
    if not p.is_file():
        raise UnsupportedFileError(f"{what} file {str(p)!r} does not exist; check the path.")
    if p.stat().st_size == 0:
        raise UnsupportedFileError(
            f"{what} file {str(p)!r} is empty; pass a file with a header row and data rows."
        )
    if p.name.lower().endswith((".parquet", ".pq")):
        return read_table(p, what=what)
    sep = "\t" if p.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    try:
        return pd.read_csv(p, sep=sep, nrows=nrows, encoding="utf-8", compression="infer")
    except UnicodeDecodeError as exc:
        raise UnsupportedFileError(
            f"{what} file {str(p)!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start} of the decoded stream); "
            "save it as UTF-8 (for example `iconv -f latin1 -t utf-8`)."
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedFileError(
            f"{what} file {str(p)!r} could not be read as CSV ({first}); check that it is a valid (gzip) CSV file."
        ) from None


def find_text_columns(frame: pd.DataFrame, target: str | None) -> dict[str, str]:
    """``{column: reason}`` for the columns holding free text (long, mostly unique strings)."""
    found = {}
    for col in frame.columns:
        if str(col) == target:
            continue
        reason = free_text_reason(frame[col])
        if reason is not None:
            found[str(col)] = reason
    return found


def no_text_column_message(frame: pd.DataFrame, where: str, target: str | None, fix: str) -> str:
    """The sentence for a table read as text data that holds no free-text column, naming what its
    string columns look like against the rule (:func:`~dlpipe.data.schema.free_text_reason`)."""
    import pandas as pd

    seen = []
    label = target if target is not None else "label"  # the target's values are not documents
    for col in frame.columns:
        values = frame[col].dropna()
        if str(col) == label or pd.api.types.is_numeric_dtype(values) or not len(values):
            continue
        text = values.astype(str)
        words = float(text.str.count(r"\S+").median())
        distinct = int(text.nunique()) / len(text)
        seen.append(f"{str(col)!r} median {words:.0f} words, {distinct:.0%} distinct")
    looks = f" (string columns: {'; '.join(seen[:5])})" if seen else " (it has no string column)"
    return (
        f"{where} has no free-text column{looks}: text data needs a column of documents, strings of a median "
        f"of at least 5 words and 30 characters, at least half of them distinct; its columns are "
        f"{format_names(map(str, frame.columns))}, so {fix}."
    )


def _table_schema(
    frame: pd.DataFrame, columns: list[str], target: str, lists: dict[str, Any]
) -> tuple[Schema | None, tuple[tuple[str, str], ...]]:
    """The kinds of the table columns beside the text (as for any table), or None when none is usable."""
    from dlpipe.data.schema import infer_schema

    if not columns:
        return None, ()
    picked = {
        k: [c for c in lists.get(k) or () if c in columns]
        for k in ("categorical", "numeric", "drop")
    }
    try:
        schema = infer_schema(frame[[*columns, target]], target, **picked)
    except InvalidInputError as exc:
        # infer_schema's refusal when every column was dropped (constant, empty, one value per row):
        # beside text that is no error, the text alone is read. Any other refusal stands.
        if not str(exc).startswith("no usable feature columns"):
            raise
        why = "not informative (constant, empty or one value per row)"
        return None, tuple((c, why) for c in columns)
    return schema, schema.dropped


def _pick_target(frame: pd.DataFrame, target: str | None, text_cols: list[str], where: str) -> str:
    if target is not None:
        if target not in frame.columns:
            raise InvalidInputError(
                f"the target {target!r} is not a column of {where}; its columns are {format_names(map(str, frame.columns))}."
            )
        return target
    if "label" in frame.columns and "label" not in text_cols:
        return "label"
    rest = [str(c) for c in frame.columns if str(c) not in text_cols]
    if not rest:
        raise InvalidInputError(
            f"{where} holds only text columns ({format_names(text_cols)}); add a label column and pass `target`."
        )
    warnings.warn(
        DataWarning(f"no target given; using the column {rest[-1]!r} (pass target=... to choose)."),
        stacklevel=3,
    )
    return rest[-1]


def _check_documents(texts: list[Any], where: list[str]) -> list[str]:
    """Every document is a non-empty string of at most MAX_DOCUMENT_CHARS characters (one sentence otherwise)."""
    out = []
    for i, t in enumerate(texts):
        if t is None or (isinstance(t, float) and np.isnan(t)):
            t = ""
        if not isinstance(t, str):
            t = str(t)
        if not t.strip():
            raise InvalidInputError(
                f"{where[i]} is an empty text; every document needs some words, so remove that row/file or fill it in."
            )
        if len(t) > MAX_DOCUMENT_CHARS:
            raise InvalidInputError(
                f"{where[i]} is {len(t):,} characters long, more than the {MAX_DOCUMENT_CHARS:,} dlpipe reads per document; "
                "split it into smaller documents or cut it (the model reads only its first tokens anyway)."
            )
        out.append(t)
    return out


def _row_names(n: int, col: str, source: str) -> list[str]:
    # row numbers as a spreadsheet shows them: the header is row 1
    return [f"row {i + 2} of {source} (column {col!r})" for i in range(n)]


def _frame_texts(frame: pd.DataFrame, text_cols: list[str], source: str) -> list[str]:
    """The document of each row: the text columns joined by a newline."""
    cols = []
    for col in text_cols:
        cols.append(_check_documents(frame[col].tolist(), _row_names(len(frame), col, source)))
    if len(cols) == 1:
        return cols[0]
    return ["\n".join(parts) for parts in zip(*cols, strict=True)]


def read_text_folder(
    folder: str | Path, *, labelled: bool = True
) -> tuple[list[str], list[str] | None, list[str]]:
    """``folder/<label>/*.txt`` (or ``folder/*.txt`` when not ``labelled``) -> texts, labels, file names.

    Files are decoded as strict UTF-8; a file with other bytes, an empty one or one beyond
    :data:`MAX_DOCUMENT_CHARS` is refused with one sentence naming it.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UnsupportedFileError(f"text folder {str(root)!r} does not exist; check the path.")
    if labelled:
        classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        files = [(f, d.name) for d in classes for f in sorted(d.glob("*.txt")) if f.is_file()]
    else:
        files = [(f, "") for f in sorted(root.glob("*.txt")) if f.is_file()]
    if not files:
        layout = "<label>/*.txt" if labelled else "*.txt"
        raise UnsupportedFileError(
            f"text folder {str(root)!r} holds no .txt files; lay it out as {str(root)}/{layout}."
        )
    texts, names = [], []
    for f, _ in files:
        size = f.stat().st_size
        if (
            size > 4 * MAX_DOCUMENT_CHARS
        ):  # refuse before reading it all (UTF-8: at most 4 bytes a character)
            raise InvalidInputError(
                f"file {str(f)!r} is {size / 1e6:.1f} MB, more than the {MAX_DOCUMENT_CHARS:,} characters dlpipe reads per document; "
                "split it into smaller documents or cut it."
            )
        data = f.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnsupportedFileError(
                f"file {str(f)!r} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "save it as UTF-8 (for example `iconv -f latin1 -t utf-8`)."
            ) from None
        texts.append(text)
        names.append(str(f))
    texts = _check_documents(texts, [f"file {n!r}" for n in names])
    labels = [lab for _, lab in files] if labelled else None
    return texts, labels, names


def _is_text_folder(p: Path) -> bool:
    if not p.is_dir():
        return False
    return any(d.is_dir() and any(d.glob("*.txt")) for d in p.iterdir())


def load_text(
    source: Any,
    *,
    target: str | None = None,
    test: Any = None,
    name: str | None = None,
    columns: dict[str, Any] | None = None,
    fix: str = "add a column of documents, or pass a table with one",
) -> TextDataset:
    """Read labelled documents (and the table columns beside them).

    Args:
        source: A folder ``docs/<label>/*.txt``, a CSV/TSV/Parquet/``.csv.gz`` path or DataFrame with a
            free-text column, or a ``(texts, labels)`` tuple.
        target: The label column of a table. Defaults to ``label`` when present, else the last column.
        test: A separate labelled test set in the same form. Defaults to `None` (held out from ``source``).
        name: A short name for run folders. Defaults to the file or folder name.
        columns: ``categorical`` / ``numeric`` / ``drop`` lists for the table columns beside the text (as
            for a table). Defaults to `None` (kinds inferred).
        fix: The end of the sentence refusing a table without a free-text column (how to fix it).
    """
    import pandas as pd

    if isinstance(source, tuple) and len(source) == 2:
        texts_in, labels_in = list(source[0]), [str(v) for v in source[1]]
        if len(texts_in) != len(labels_in):
            raise InvalidInputError(
                f"`data` has {len(texts_in)} texts but {len(labels_in)} labels; pass one label per text."
            )
        texts = _check_documents(texts_in, [f"text {i}" for i in range(len(texts_in))])
        ds = TextDataset(texts=texts, labels=labels_in, name=name or "text")
        ds.schema = Schema(
            columns=(
                ColumnInfo("text", "text", "object", len(set(texts)), 0, "documents as given"),
            ),
            target="label",
        )
    elif isinstance(source, (str, Path)) and Path(source).is_dir():
        texts, labels, files = read_text_folder(source)
        assert labels is not None
        ds = TextDataset(texts=texts, labels=labels, name=name or Path(source).name)
        ds.meta["files"] = len(files)
        ds.schema = Schema(
            columns=(
                ColumnInfo(
                    "text",
                    "text",
                    "file",
                    len(set(texts)),
                    0,
                    f"one .txt file per document, {len(files)} files in {len(set(labels))} class folders",
                ),
            ),
            target="label",
        )
    else:
        where = (
            f"{str(source)!r}"
            if isinstance(source, (str, Path))
            else f"the {type(source).__name__}"
        )
        if not isinstance(source, (str, Path, pd.DataFrame)):
            raise InvalidInputError(
                f"`data` is a {type(source).__name__}, but a text folder, a CSV/Parquet path, a DataFrame or (texts, labels) was expected."
            )
        frame = _read_frame(source, what="data")
        frame.columns = [str(c) for c in frame.columns]
        dropped_cols = set((columns or {}).get("drop") or ())
        found = {
            c: why for c, why in find_text_columns(frame, target).items() if c not in dropped_cols
        }
        if not found:
            raise InvalidInputError(no_text_column_message(frame, where, target, fix))
        text_cols = list(found)
        target = _pick_target(frame, target, text_cols, where)
        frame = frame[frame[target].notna()].reset_index(drop=True)
        texts = _frame_texts(frame, text_cols, where)
        labels = [str(v) for v in frame[target].tolist()]
        stem = Path(source).name.split(".")[0] if isinstance(source, (str, Path)) else "text"
        ds = TextDataset(
            texts=texts, labels=labels, name=name or stem, target=target, text_columns=text_cols
        )
        columns_info = [
            ColumnInfo(
                c,
                "text",
                str(frame[c].dtype),
                int(frame[c].nunique()),
                int(frame[c].isna().sum()),
                why,
            )
            for c, why in found.items()
        ]
        others = [c for c in frame.columns if c not in found and c != target]
        table_schema, dropped = _table_schema(frame, others, target, columns or {})
        if table_schema is not None:  # the table part's input check leaves the text column(s) alone
            read = tuple((c, "read by the text branch") for c in text_cols)
            table_schema = dataclasses.replace(table_schema, dropped=table_schema.dropped + read)
        ds.frame = frame[others].reset_index(drop=True)
        ds.table_schema = table_schema
        ds.schema = Schema(
            columns=tuple(columns_info) + (table_schema.columns if table_schema else ()),
            target=target,
            dropped=dropped,
        )
    if len(set(ds.labels)) < 2:
        only = ds.labels[0] if ds.labels else None
        raise InvalidInputError(
            f"the label {ds.target!r} has one class ({only!r}) in {len(ds.labels)} documents; "
            "text classification needs at least two classes, so add documents of another class."
        )
    if test is not None:
        tds = (
            load_text(
                test,
                target=ds.target,
                name="test",
                columns={"drop": list(ds.frame.columns) if ds.frame is not None else []},
                fix=fix,
            )
            if not isinstance(test, (str, Path))
            or Path(test).is_dir()
            or _is_table_path(Path(test))
            else None
        )
        if tds is None:
            raise UnsupportedFileError(
                f"`test` {str(test)!r} is neither a text folder nor a table file; pass the same form as the data."
            )
        ds.test_texts, ds.test_labels = tds.texts, tds.labels
        ds.test_frame = tds.frame
        if ds.table_schema is not None:
            missing = [
                c for c in ds.table_schema.names if tds.frame is None or c not in tds.frame.columns
            ]
            if missing:
                raise InvalidInputError(
                    f"the test data lacks the column(s) {format_names(missing)} that the training data holds "
                    "beside its text; pass a test table with the same columns."
                )
    return ds


def detect_text(data: Any, cfg: Any, test: Any = None) -> TextDataset | None:
    """The ``dl.train`` detector: a folder of class folders of .txt files, or a table with a free-text column."""
    import pandas as pd

    if cfg.data.task not in ("auto", "binary", "multiclass") or cfg.image.image_column:
        return None  # an image CSV (its `image_column` named) is the image kind's, captions or not
    target = cfg.data.target
    family = cfg.model.family if "family" in cfg.model.model_fields_set else None
    asked = family in TEXT_FAMILIES  # `--model text_bag` etc.: the data must hold text
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, str) for t in data[0]):
        return load_text(data, test=test, name=cfg.name)
    if isinstance(data, (str, Path)):
        p = Path(data)
        if _is_text_folder(p):
            return load_text(p, test=test, name=cfg.name)
        if not (p.is_file() and _is_table_path(p)):
            return None
        peek = _read_frame(
            p, what="data", nrows=None if p.suffix in (".parquet", ".pq") else _PEEK_ROWS
        )
        where = f"data file {str(p)!r}"
    elif isinstance(data, pd.DataFrame):
        peek = data
        where = "the DataFrame"
    else:
        return None
    peek.columns = [str(c) for c in peek.columns]
    if asked:
        fix = (
            f"pass a table with a column of documents, or leave `family` unset (not {family!r}) "
            "to train on these columns as a table"
        )
    else:
        fix = "add a column of documents"
    lists = {k: list(getattr(cfg.data, k)) for k in ("categorical", "numeric", "drop")}
    if not {c: w for c, w in find_text_columns(peek, target).items() if c not in lists["drop"]}:
        if asked:
            raise InvalidInputError(no_text_column_message(peek, where, target, fix))
        return None
    return load_text(data, target=target, test=test, name=cfg.name, columns=lists, fix=fix)


# ----------------------------------------------------------------------------------- tokenizing
def fit_tokenizer(
    texts: list[str], *, vocab_size: int, min_frequency: int = 2, words_only: bool = False
) -> Any:
    """A word-level tokenizer trained on ``texts`` (the training split only): NFKC + lowercase, words and
    punctuation runs as tokens (``\\w+|[^\\w\\s]+``), ``[PAD]`` = 0 and ``[UNK]`` = 1, the ``vocab_size``
    most frequent words seen at least ``min_frequency`` times. ``words_only``: runs of two or more word
    characters only (scikit-learn's default ``token_pattern``, ``\\b\\w\\w+\\b``): punctuation and
    one-character words are dropped, so word pairs form across them. Offline: nothing is downloaded."""
    from dlpipe.core.runtime import require

    tk = require("tokenizers", extra="text")
    tok = tk.Tokenizer(tk.models.WordLevel(unk_token=UNK))
    tok.normalizer = tk.normalizers.Sequence([tk.normalizers.NFKC(), tk.normalizers.Lowercase()])
    if (
        words_only
    ):  # what lies between the words is removed: runs of non-word characters and 1-letter words
        tok.pre_tokenizer = tk.pre_tokenizers.Split(tk.Regex(r"(?:\W|\b\w\b)+"), behavior="removed")
    else:
        tok.pre_tokenizer = tk.pre_tokenizers.Whitespace()
    trainer = tk.trainers.WordLevelTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, UNK],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def load_tokenizer(spec: str) -> Any:
    """A tokenizer from its JSON (as stored in a bundle)."""
    from dlpipe.core.runtime import require

    tk = require("tokenizers", extra="text")
    return tk.Tokenizer.from_str(spec)


def encode_texts(
    tokenizer: Any, texts: list[str], max_length: int, *, special_tokens: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (N, T) int64, padded with 0 to the longest document (at most ``max_length``), and each
    document's token count (N,): before truncation for dlpipe's word tokenizers; for a pretrained
    encoder's (``special_tokens``: [CLS] ... [SEP], truncated by the tokenizer so [SEP] stays last)
    the count after it, so a document at the limit counts as truncated."""
    if special_tokens:
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # no offsets: faster
    encs = encode(texts, add_special_tokens=special_tokens)
    lengths = np.fromiter((len(e.ids) for e in encs), np.int64, count=len(encs))
    width = int(max(1, min(max_length, int(lengths.max()) if len(lengths) else 1)))
    ids = np.zeros((len(encs), width), np.int64)
    for i, e in enumerate(encs):
        row = e.ids[:width]
        ids[i, : len(row)] = row
    return ids, lengths


# ----------------------------------------------------------------------------------- bundles
class TextAdapter:
    """How a text bundle reads raw input: strings, rows, a table with the text column(s), a folder of
    ``.txt`` files (flat, or ``<label>/*.txt`` with labels) -> token ids.

    State (JSON): ``tokenizer`` (its JSON), ``max_length``, ``text_columns``, ``target``, ``schema``,
    ``special_tokens`` for pretrained-encoder bundles (the tokenizer is then the encoder's own), and
    ``table`` (the table preprocessor's state) when the model also reads table columns: its inputs
    are then the token ids, ``x_num`` and (wide categoricals) ``x_cat``, and input must be rows.
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = dict(state)
        self._tok: Any = None
        self._table: Any = None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TextAdapter:
        return cls(state)

    def state(self) -> dict[str, Any]:
        return dict(self._state)

    @property
    def text_columns(self) -> list[str]:
        return list(self._state.get("text_columns") or ["text"])

    @property
    def table(self) -> Any:
        """The table preprocessor of the columns beside the text, or None (text alone)."""
        if self._table is None and self._state.get("table") is not None:
            from dlpipe.data.preprocessing import TabularPreprocessor

            self._table = TabularPreprocessor.from_state(self._state["table"])
        return self._table

    @property
    def input_names(self) -> list[str]:
        table = self.table
        return self.text_columns + (list(table.input_names) if table is not None else [])

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            self._tok = load_tokenizer(self._state["tokenizer"])
        return self._tok

    def texts_of(
        self, data: Any, *, with_target: bool = False
    ) -> tuple[list[str], list[Any] | None]:
        """Documents (and labels when present and asked for) from any accepted input form."""
        import pandas as pd

        cols, target = self.text_columns, str(self._state.get("target", "label"))
        if isinstance(data, str) and not _looks_like_path(data):
            data = [data]
        if isinstance(data, (str, Path)):
            p = Path(data)
            if p.is_dir():
                labelled = _is_text_folder(p)
                texts, folder_labels, _ = read_text_folder(p, labelled=labelled)
                return texts, folder_labels if with_target else None
            data = _read_frame(p, what="input")
        if isinstance(data, list) and all(isinstance(t, str) for t in data):
            return _check_documents(data, [f"text {i}" for i in range(len(data))]), None
        if isinstance(data, dict):
            data = [data]
        if isinstance(data, list):
            if not all(isinstance(r, dict) for r in data):
                raise InvalidInputError(
                    "the input is a list that is neither all strings nor all row dicts; pass texts, or rows holding "
                    f"the text column(s) {format_names(cols)}."
                )
            data = pd.DataFrame(data)
        if not isinstance(data, pd.DataFrame):
            raise InvalidInputError(
                f"the input is a {type(data).__name__}, but texts, rows, a table or a folder of .txt files was expected."
            )
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise InvalidInputError(
                f"the input has no text column {', '.join(map(repr, missing))}; the model reads the column(s) "
                f"{', '.join(map(repr, cols))}, so pass rows or a table with that column."
            )
        for c in cols:
            bad = [
                i
                for i, v in enumerate(data[c].tolist())
                if v is not None
                and not isinstance(v, str)
                and not (isinstance(v, float) and np.isnan(v))
            ]
            if bad:
                raise InvalidInputError(
                    f"row {bad[0]} of the input holds a {type(data[c].iloc[bad[0]]).__name__} in the text column {c!r}; pass text."
                )
        texts = _frame_texts(data.reset_index(drop=True), cols, "the input")
        labels: list[Any] | None = (
            [None if pd.isna(v) else str(v) for v in data[target].tolist()]
            if with_target and target in data.columns
            else None
        )
        return texts, labels

    def _rows(self, data: Any) -> pd.DataFrame:
        """Input for a model that reads table columns too: rows (a table, a path to one, dicts) only."""
        import pandas as pd

        if isinstance(data, (str, Path)) and not (
            isinstance(data, str) and not _looks_like_path(data)
        ):
            if not Path(data).is_dir():
                return _read_frame(Path(data), what="input")
        if isinstance(data, dict):
            data = [data]
        if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
            return pd.DataFrame(data)
        if isinstance(data, pd.DataFrame):
            return data
        raise InvalidInputError(
            f"this model reads the text column(s) {format_names(self.text_columns)} together with the columns "
            f"{format_names(self.table.input_names)}, so texts alone or a folder of .txt files cannot be read; "
            "pass rows or a table holding all of them."
        )

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        import pandas as pd

        columns: list[np.ndarray] = []
        if self.table is not None:
            data = self._rows(data).reset_index(drop=True)
            if len(data) == 0:
                raise InvalidInputError(
                    "input has no rows; pass at least one row with the text and the columns the model was trained on."
                )
            x_num, x_cat = self.table.transform(data)
            columns = [x_num] + ([x_cat] if x_cat.shape[1] else [])
        texts, labels = self.texts_of(data, with_target=with_target)
        ids, _ = encode_texts(
            self.tokenizer,
            texts,
            int(self._state["max_length"]),
            special_tokens=bool(self._state.get("special_tokens", False)),
        )
        targets = pd.Series(labels, dtype=object) if labels is not None else None
        return PreparedBatch(
            inputs=[ids, *columns],
            targets=targets,
            baseline_features=columns[0] if columns else np.zeros((len(texts), 0)),
        )


def _looks_like_path(s: str) -> bool:
    """A string that names an existing file or folder is read from there; any other string is a document."""
    if len(s) > 4096 or "\n" in s:
        return False
    try:
        return Path(s).exists()
    except OSError:
        return False
