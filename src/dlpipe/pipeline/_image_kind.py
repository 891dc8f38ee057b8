"""Registers the ``image`` data kind with :func:`dlpipe.train` (the fitter is imported lazily)."""

from __future__ import annotations

from dlpipe.data.images import detect_image_dataset
from dlpipe.pipeline.train import register_kind

register_kind("image", "dlpipe.pipeline._fit_images:fit_images", detect_image_dataset)
