"""Extension points: per kind, the code that a lower layer calls for it, in tables any layer can fill.

Loading a bundle (``dlpipe.bundle``), reading raw input into a bundle (``dlpipe.data``) and adding a
kind's sections to a report (``dlpipe.reports``) each look a kind up in a table, and the code for some
kinds lives in a layer above the one that reads the table (an RL agent's bundle loader is in
``dlpipe.rl``). So the tables live here, at the bottom: filling one imports neither its reader nor
torch, and an entry given as a ``"module:attr"`` string is imported only when its kind is used.

A module registers only code in its own layer or below. The built-in entries whose code sits above
the reader are registered by the root package (``dlpipe._builtins``), which is above every layer;
tests/test_registries.py checks every ``"module:attr"`` string for both and that each one resolves.
Each owning layer has its own ``register_*`` function for these tables (:func:`dlpipe.data.inputs.register_adapter`,
:func:`dlpipe.bundle.register_composite`, :func:`dlpipe.reports.register_section`).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BUNDLE_LOADERS",
    "BUNDLE_MODELS",
    "INPUT_ADAPTERS",
    "REPLACED_SECTIONS",
    "REPORT_SECTIONS",
    "load_target",
]

# A value is the object itself or "module:attr", imported when first used.
# bundle kind -> its InputAdapter class: how bundles of that kind read raw input
INPUT_ADAPTERS: dict[str, object] = {}
# bundle kind -> loader(root, manifest) -> Bundle, for bundles that load themselves (ensembles, RL agents)
BUNDLE_LOADERS: dict[str, object] = {}
# model family -> builder(spec) -> nn.Module, for bundles whose network is built by code above the models
# layer (a dlpipe.keras model: its layers are the facade's); dlpipe.models' own families are not here
BUNDLE_MODELS: dict[str, object] = {}
# run kind ("*": every run) -> providers sections(run) -> list[Section] | Section | None, in order
REPORT_SECTIONS: dict[str, list[object]] = {}
# run kind -> ids of the standard report sections that its own sections stand in for
REPLACED_SECTIONS: dict[str, set[str]] = {}


def load_target(target: object) -> Any:
    """``target`` itself, or the attribute a ``"module:attr"`` string names (its module imported now).

    Example:
        >>> load_target("json:dumps")([1])
        '[1]'
    """
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
