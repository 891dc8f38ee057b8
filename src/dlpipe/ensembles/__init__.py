"""Ensembles of bundles: soft voting / averaging (optional weights) and stacking on out-of-fold predictions."""

from dlpipe.ensembles.ensemble import EnsembleBundle, build_ensemble, load_ensemble

__all__ = ["EnsembleBundle", "build_ensemble", "load_ensemble"]
