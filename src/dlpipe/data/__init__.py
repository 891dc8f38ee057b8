"""Loading data and turning it into tensors: tables, schema inference, preprocessing, splits."""

from dlpipe.data import datasets
from dlpipe.data.preprocessing import TabularPreprocessor, reference_statistics
from dlpipe.data.schema import ColumnInfo, Schema, infer_schema
from dlpipe.data.splits import split_indices
from dlpipe.data.tabular import TabularDataset, load_table, read_table

__all__ = [
    "ColumnInfo",
    "Schema",
    "TabularDataset",
    "TabularPreprocessor",
    "datasets",
    "infer_schema",
    "load_table",
    "read_table",
    "reference_statistics",
    "split_indices",
]
