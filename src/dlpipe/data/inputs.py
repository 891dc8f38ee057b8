"""Input adapters: how a bundle turns raw input of one kind (table, image, series...) into model inputs.

A bundle's manifest names its ``kind``; :func:`adapter_for` maps the kind to a class with
``from_state(dict)`` (JSON state, never code), ``state()``, ``input_names`` and
``prepare(data, with_target=False) -> PreparedBatch``. New input kinds call :func:`register_adapter`
with the class itself (built-in kinds name theirs as ``"module:Class"``, imported when first used).
The table is :data:`dlpipe.core.extensions.INPUT_ADAPTERS`; this module registers the kinds whose
adapter lives in ``dlpipe.data``, and ``dlpipe._builtins`` those whose adapter lives higher up
(forecasting bundles: ``series``, in ``dlpipe.evaluation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dlpipe.core.errors import BundleError
from dlpipe.core.extensions import INPUT_ADAPTERS, load_target

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PreparedBatch", "InputAdapter", "adapter_for", "register_adapter"]


@dataclass
class PreparedBatch:
    """Model inputs for a batch of raw input, plus what evaluation needs.

    ``inputs``: arrays in the model's forward order; ``targets``: raw labels/values (a pandas Series)
    when present; ``baseline_features``: the 2-D features the stored baselines use (or None).
    """

    inputs: list[np.ndarray]
    targets: pd.Series | None = None
    baseline_features: np.ndarray | None = None
    index: Any = None


class InputAdapter(Protocol):
    @property
    def input_names(self) -> list[str]: ...

    def state(self) -> dict[str, Any]: ...

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch: ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InputAdapter: ...


_ADAPTERS = INPUT_ADAPTERS
_ADAPTERS.update(
    {
        "table": "dlpipe.data.preprocessing:TabularPreprocessor",
        "image": "dlpipe.data.images:ImagePreprocessor",
        "arrays": "dlpipe.data.arrays:ArrayAdapter",
        "sequence": "dlpipe.data.sequences:SequenceAdapter",  # sequence-classification bundles
        "text": "dlpipe.data.text:TextAdapter",  # documents: token ids from the stored tokenizer
    }
)


def register_adapter(kind: str, target: str | type) -> None:
    """Map a bundle kind to its adapter class, or to ``"module:Class"`` (imported only when such a bundle is loaded).

    A bundle names only its kind: loading one picks a registered class and never imports code the bundle names.
    """
    _ADAPTERS[kind] = target


def adapter_for(kind: str) -> Any:
    if kind not in _ADAPTERS:
        raise BundleError(
            f"bundle kind {kind!r} is not known to this dlpipe (known: {', '.join(sorted(_ADAPTERS))}); load it with the dlpipe version that wrote it."
        )
    return load_target(_ADAPTERS[kind])
