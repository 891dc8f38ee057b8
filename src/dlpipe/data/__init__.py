"""Loading data and turning it into tensors: tables, schema inference, preprocessing, splits."""

from dlpipe.data import datasets
from dlpipe.data.inputs import register_adapter
from dlpipe.data.preprocessing import TabularPreprocessor, reference_statistics
from dlpipe.data.schema import ColumnInfo, Schema, infer_schema
from dlpipe.data.splits import split_indices
from dlpipe.data.tabular import TabularDataset, load_table, read_table

register_adapter("series", "dlpipe.evaluation.forecast_baselines:ForecastAdapter")  # forecasting bundles (scoring needs evaluation)
register_adapter("sequence", "dlpipe.data.sequences:SequenceAdapter")  # sequence-classification bundles

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
