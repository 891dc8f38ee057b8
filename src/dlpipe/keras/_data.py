"""How ``fit``, ``evaluate`` and ``predict`` read their arguments: inputs, targets and weights, checked once.

Inputs are an array (one input), a list (in order) or a dict by ``Input`` name; targets an array, a
list or a dict by output layer name; each is checked against the model's shapes and losses, with one
sentence naming the argument when it does not fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlpipe.core.errors import InvalidInputError
from dlpipe.keras._objective import Objective
from dlpipe.training.trainer import TensorData

if TYPE_CHECKING:
    from dlpipe.keras._graph import KerasNet

__all__ = ["DataMixin"]


class DataMixin:
    """The argument readers of :class:`~dlpipe.keras.Model`."""

    _inputs: list[tuple[str, tuple[int, ...]]]
    net: KerasNet | None
    objective: Objective
    feature_names_: list[str] | None
    target_name_: str | None

    @property
    def input_names(self) -> list[str]:
        return [n for n, _ in self._inputs]

    def _ensure_built(self, shapes: list[tuple[int, ...]]) -> None:
        raise NotImplementedError

    def _inputs_of(self, x: Any, what: str = "x", record: bool = False) -> list[torch.Tensor]:
        """Model inputs from an array (one input), a list (in order) or a dict by Input name."""
        if isinstance(x, dict):
            if self.net is None or not self._inputs:
                raise InvalidInputError(
                    f"`{what}` is a dict but the model has no named inputs yet; pass an array."
                )
            missing = [n for n in self.input_names if n not in x]
            if missing:
                raise InvalidInputError(
                    f"`{what}` lacks the inputs {missing}; pass a dict with the keys {self.input_names}."
                )
            items = [x[n] for n in self.input_names]
        elif isinstance(x, (list, tuple)) and len(self._inputs) > 1:
            items = list(x)
        else:
            items = [x]
        if self._inputs and len(items) != len(self._inputs):
            raise InvalidInputError(
                f"`{what}` holds {len(items)} arrays but the model has {len(self._inputs)} inputs {self.input_names}; pass one array per input, in order or as a dict."
            )
        arrays = []
        for i, item in enumerate(items):
            if hasattr(item, "columns") and len(items) == 1 and record:
                self.feature_names_ = [str(c) for c in item.columns]
            arr = np.asarray(item)
            label = what if len(items) == 1 else f"{what}[{i}]"
            if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
                raise InvalidInputError(
                    f"`{label}` holds {arr.dtype} values but the model needs numbers; encode text and categories first."
                )
            if arr.ndim < 2:
                raise InvalidInputError(
                    f"`{label}` has shape {arr.shape} but the model needs a batch of rows, shape (n, ...); pass x.reshape(-1, 1) for one feature."
                )
            arrays.append(arr)
        self._ensure_built([tuple(a.shape[1:]) for a in arrays])
        n = arrays[0].shape[0]
        out = []
        for arr, (name, shape) in zip(arrays, self._inputs):
            label = what if len(arrays) == 1 else f"{what} for input {name!r}"
            if tuple(arr.shape[1:]) != shape:
                hint = (
                    " (add the channel axis: x[..., None])"
                    if tuple(arr.shape[1:]) + (1,) == shape
                    else ""
                )
                raise InvalidInputError(
                    f"`{label}` has shape {arr.shape} but the model's input expects {(None, *shape)}{hint}; pass data of that shape or change Input(shape=...)."
                )
            if arr.shape[0] != n:
                raise InvalidInputError(
                    f"the input arrays of `{what}` have {[a.shape[0] for a in arrays]} rows; pass the same rows to every input."
                )
            out.append(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)))
        return out

    def _targets(self, y: Any, n: int, what: str = "y", record: bool = False) -> list[np.ndarray]:
        """Each output's targets, checked against its shape and loss."""
        outputs = self.objective.outputs
        if isinstance(y, dict):
            missing = [o.name for o in outputs if o.name not in y]
            if missing:
                raise InvalidInputError(
                    f"`{what}` lacks targets for the outputs {missing}; pass a dict with the keys {[o.name for o in outputs]}."
                )
            items = [y[o.name] for o in outputs]
        elif isinstance(y, (list, tuple)) and len(outputs) > 1:
            items = list(y)
        else:
            items = [y]
        if len(items) != len(outputs):
            raise InvalidInputError(
                f"`{what}` holds {len(items)} target arrays but the model has {len(outputs)} outputs {[o.name for o in outputs]}; pass one per output, in order or as a dict."
            )
        if len(items) == 1 and record and isinstance(getattr(items[0], "name", None), str):
            self.target_name_ = items[0].name
        arrays = []
        for o, item in zip(outputs, items):
            label = what if len(outputs) == 1 else f"{what} for output {o.name!r}"
            arr = np.asarray(item)
            if arr.shape[0:1] != (n,):
                raise InvalidInputError(
                    f"`{label}` has {arr.shape[0] if arr.ndim else 0} rows but x has {n}; pass one target per row."
                )
            if o.sparse:
                codes = arr.reshape(n, -1)
                if codes.shape[1] != o.target_width or not np.all(np.equal(np.mod(codes, 1), 0)):
                    raise InvalidInputError(
                        f"`{label}` has shape {arr.shape} but sparse_categorical_crossentropy expects one integer class per row; for one-hot labels use loss='categorical_crossentropy'."
                    )
                if codes.min() < 0 or codes.max() >= o.shape[-1]:
                    raise InvalidInputError(
                        f"`{label}` holds classes {int(codes.min())}..{int(codes.max())} but the last layer has {o.shape[-1]} units; classes must be 0..{o.shape[-1] - 1}."
                    )
                arrays.append(codes.astype(np.float32))
                continue
            if arr.size != n * o.width:
                hint = (
                    " (integer labels need loss='sparse_categorical_crossentropy', or one-hot them with utils.to_categorical)"
                    if o.loss.name == "categorical_crossentropy"
                    else ""
                )
                raise InvalidInputError(
                    f"`{label}` has shape {arr.shape} but the model outputs {(None, *o.shape)}{hint}; pass targets of the output's shape."
                )
            if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
                raise InvalidInputError(
                    f"`{label}` holds {arr.dtype} values but targets must be numbers; encode the labels first."
                )
            arrays.append(arr.reshape(n, -1).astype(np.float32))
        return arrays

    def _weights(
        self, sample_weight: Any, n: int, what: str = "sample_weight"
    ) -> np.ndarray | None:
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape not in ((n,), (n, 1)) or not np.all(np.isfinite(w)) or (w < 0).any():
            raise InvalidInputError(
                f"`{what}` has shape {w.shape} but must hold one finite weight >= 0 per row, shape ({n},)."
            )
        return w.reshape(n).astype(np.float32)

    def _data(self, x: Any, y: Any, sample_weight: Any, what: str = "") -> TensorData:
        xs = self._inputs_of(x, f"{what}x" if not what else f"{what}[0]")
        n = int(xs[0].shape[0])
        ys = self._targets(y, n, "y" if not what else f"{what}[1]")
        w = self._weights(sample_weight, n, "sample_weight" if not what else f"{what}[2]")
        return TensorData(tuple(xs), self.objective.pack(ys, w, n))

    # ------------------------------------------------------------------ fit / evaluate / predict
