"""Registers the ``series`` (forecast) and ``sequence`` (sequence classification) training kinds.

The detectors live in ``dlpipe.data`` (no torch); the fitters are imported only when used.
"""

from __future__ import annotations

from dlpipe.data.sequences import detect_sequences
from dlpipe.data.series import detect_series
from dlpipe.pipeline.train import register_kind

register_kind("series", "dlpipe.pipeline._fit_series:fit_series", detect_series)
register_kind("sequence", "dlpipe.pipeline._fit_series:fit_sequences", detect_sequences)
