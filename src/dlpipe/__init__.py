"""dlpipe: a table, an image folder or a time series to a trained, evaluated, saved and served network.

Example:
    >>> import dlpipe as dl
    >>> [d.name for d in dl.datasets.list_datasets()][:3]
    ['xor', 'classification', 'regression']

Names are imported on first use, so ``import dlpipe`` (and ``dlpipe --help``) stays fast; torch
loads only when something that needs it is touched.
"""

from __future__ import annotations

import importlib
from typing import Any

from dlpipe import _builtins  # noqa: F401 - registers the built-in kinds whose code is imported on use

__version__ = "0.1.0"

_EXPORTS = {
    "load_table": "dlpipe.data.tabular",
    "load_series": "dlpipe.data.series",
    "load_sequences": "dlpipe.data.sequences",
    "TabularDataset": "dlpipe.data.tabular",
    "load_images": "dlpipe.data.images",
    "ImageDataset": "dlpipe.data.images",
    "conv_output_size": "dlpipe.models.shapes",
    "pool_output_size": "dlpipe.models.shapes",
    "datasets": "dlpipe.data",
    "train": "dlpipe.pipeline.train",
    "evaluate": "dlpipe.pipeline.train",
    "Run": "dlpipe.pipeline.run",
    "load_run": "dlpipe.pipeline.run",
    "Bundle": "dlpipe.bundle.bundle",
    "load_bundle": "dlpipe.bundle.bundle",
    "explain": "dlpipe.bundle.explain",
    "Explanation": "dlpipe.bundle.explain",
    "InputExplanation": "dlpipe.bundle.attributions",
    "Trainer": "dlpipe.training.trainer",
    "TensorData": "dlpipe.training.trainer",
    "EarlyStopping": "dlpipe.training.callbacks",
    "History": "dlpipe.training.history",
    "build_model": "dlpipe.models.registry",
    "infer_task": "dlpipe.tasks.task",
    "Task": "dlpipe.tasks.task",
    "DlpipeError": "dlpipe.core.errors",
    "seed_everything": "dlpipe.core.runtime",
    "summary": "dlpipe.reports.summary",
    "plot_model": "dlpipe.reports.summary",
    "plot_history": "dlpipe.reports.compare",
    "build_report": "dlpipe.reports.report",
    "compare_runs": "dlpipe.reports.compare",
    "list_runs": "dlpipe.reports.compare",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dlpipe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
