"""The workflow in one call: ``train`` (data to run folder), ``evaluate``, ``Run``, ``load_run``."""
# ruff: noqa: I001  (the import order is the order in which input kinds are tried: images before arrays)

from dlpipe.pipeline.run import Run, load_run
from dlpipe.pipeline.train import evaluate, train
from dlpipe.pipeline import _image_kind as _image_kind  # noqa: E402,F401  (registers the image kind; before arrays, which takes any .npz)
from dlpipe.pipeline import generative as _generative  # noqa: E402,F401  (registers the arrays kind and generative tasks)
from dlpipe.pipeline import _series_kinds as _series_kinds  # noqa: E402,F401  (registers the series and sequence kinds)

__all__ = ["Run", "evaluate", "load_run", "train"]
