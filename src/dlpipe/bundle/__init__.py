"""Bundles: a folder of manifest.json + weights.safetensors that predicts on raw data. Never pickle."""

from dlpipe.bundle.bundle import (
    FORMAT,
    FORMAT_VERSION,
    Bundle,
    load_bundle,
    make_manifest,
    register_composite,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Bundle",
    "load_bundle",
    "make_manifest",
    "register_composite",
]
