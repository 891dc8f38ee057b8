"""The exported graph of an image, array, sequence or series bundle: the network plus its decoding.

- ``image``: input ``x`` (B, C, H, W) float32 pixels in the bundle's stored units (0..255 for decoded
  image files), already resized to the bundle's size and colour mode; the per-channel normalisation
  (and flattening, for an MLP over pixels) is in the graph.
- ``arrays``: input ``x`` of the trained shape, scaled by the adapter's ``scale`` (in the sidecar).
- ``sequence``: inputs ``x`` (B, T, F) float32 as the adapter prepares them, and ``mask`` (B, T)
  (1 for a real step, 0 for padding).
- ``series``: input ``x`` (B, lookback, F): the last ``lookback`` rows, scaled as the sidecar's
  ``adapter.scaler`` says; the output is the network's next step(s) in those scaled units (one step
  for a recursive model: feed it back for the whole horizon, as ``dlpipe predict`` does).
- ``text``: input ``ids`` (B, T) int64 token ids, 0 = padding, T >= 3 (both axes dynamic): the
  tokenizer stays outside the graph (its JSON is the sidecar's ``adapter.tokenizer``; pad to at
  least 3 columns); with table columns beside the text also ``x_num`` (B, F) float32 and, for wide
  categoricals, ``x_cat`` (B, C) int64 codes, as ``adapter.table`` (the table preprocessor) gives them.

Output: class probabilities (B, K) for classification (temperature included), values in the target's
units (B,) for regression.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import InvalidInputError

__all__ = ["NetworkGraph", "network_inputs", "text_inputs", "EXPORTABLE_KINDS", "TEXT_INPUTS"]

EXPORTABLE_KINDS = ("table", "image", "arrays", "sequence", "series", "text")
TEXT_INPUTS = ("ids", "x_num", "x_cat")


class NetworkGraph(nn.Module):
    """Network + decoding as one module (see the module docstring for inputs and output)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, bundle: Any) -> None:
        super().__init__()
        self.model = bundle.model.eval()
        task = bundle.task
        self.kind = task.kind
        self.temperature = float(getattr(task, "temperature", 1.0) or 1.0)
        self.y_mean = float(getattr(task, "y_mean", 0.0) or 0.0)
        self.y_std = float(getattr(task, "y_std", 1.0) or 1.0)
        pre = bundle.preprocessor
        self.normalise = bundle.kind == "image"
        self.flatten = bool(getattr(pre, "flatten", False)) if self.normalise else False
        mean = np.asarray(getattr(pre, "mean", [0.0]), np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(getattr(pre, "std", [1.0]), np.float32).reshape(1, -1, 1, 1)
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        if self.kind == "binary":
            p1 = torch.sigmoid(logits.reshape(-1, 1) / self.temperature)
            return torch.cat([1 - p1, p1], dim=1)
        if self.kind == "multiclass":
            return torch.softmax(logits / self.temperature, dim=1)
        if self.kind == "regression":
            return logits.reshape(-1) * self.y_std + self.y_mean
        return logits  # a forecast: the network's output in the scaled units

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if not self.normalise:
            return x
        x = (x - self.mean) / self.std  # (B, C, H, W)
        return x.reshape(x.shape[0], -1) if self.flatten else x


class _One(nn.Module):
    def __init__(self, graph: NetworkGraph) -> None:
        super().__init__()
        self.net = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.decode(self.net.model(self.net.prepare(x)))


class _Two(_One):
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net.decode(self.net.model(x, mask))


class _Text(_One):
    def forward(  # type: ignore[override]
        self,
        ids: torch.Tensor,
        x_num: torch.Tensor | None = None,
        x_cat: torch.Tensor | None = None,
    ) -> torch.Tensor:
        columns = [t for t in (x_num, x_cat) if t is not None]
        return self.net.decode(self.net.model(ids, *columns))


def wrap_network(bundle: Any, n_inputs: int) -> nn.Module:
    graph = NetworkGraph(bundle)
    if bundle.kind == "text":
        return _Text(graph).eval()
    return (_Two(graph) if n_inputs == 2 else _One(graph)).eval()


def text_inputs(bundle: Any, n: int, length: int, seed: int) -> list[np.ndarray]:
    """Made-up inputs of a text bundle: token ids of random lengths (1..``length``), and table columns."""
    pre = bundle.preprocessor
    rng = np.random.default_rng(seed)
    vocab = int(pre.tokenizer.get_vocab_size())
    ids = rng.integers(2, max(3, vocab), size=(n, length), dtype=np.int64)
    lengths = rng.integers(1, length + 1, size=n)
    lengths[0] = length  # one document fills the width
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    out = [ids]
    table = pre.table
    if table is not None:
        out.append(rng.standard_normal((n, table.n_numeric)).astype(np.float32))
        cards = table.cardinalities
        if cards:
            out.append(
                np.stack([rng.integers(0, c, size=n) for c in cards], axis=1).astype(np.int64)
            )
    return out


def network_inputs(
    bundle: Any, data: Any, n: int = 16
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(what the exported graph takes, what the bundle's network takes) for ``data`` or synthesised cases.

    They differ only for images (raw pixels vs normalised ones); the bundle's own path is
    ``bundle.outputs(prepared)``, which the parity check compares with.
    """
    pre = bundle.preprocessor
    rng = np.random.default_rng(0)
    kind = bundle.kind
    if kind == "image":
        raw = (
            pre.load(data)
            if data is not None
            else rng.uniform(
                0, 255 * float(getattr(pre, "file_scale", 1.0)), (n, pre.channels, *_hw(pre))
            ).astype(np.float32)
        )
        x = pre.normalise(raw)
        return [raw.astype(np.float32)], [x.reshape(len(x), -1) if pre.flatten else x]
    if kind == "text" and data is None:
        x = text_inputs(bundle, n, 24, 0)
        return x, x
    if data is not None:
        inputs = [np.ascontiguousarray(a) for a in pre.prepare(data).inputs]
        if len(inputs[0]) < 1:
            raise InvalidInputError("export data holds no case; pass at least one.")
        return inputs, inputs
    st = pre.state()
    if kind == "arrays":
        x = rng.standard_normal((n, *st["shape"])).astype(np.float32)
        return [x], [x]
    if kind == "sequence":
        length, channels = int(st["length"]), int(st["channels"])
        x = rng.standard_normal((n, length, channels)).astype(np.float32)
        mask = np.ones((n, length), np.float32)
        mask[::3, length // 2 :] = 0.0  # padded cases too
        x[mask == 0] = 0.0
        return [x, mask], [x, mask]
    if kind == "series":
        width = len(st["input_columns"])
        x = rng.standard_normal((n, int(st["lookback"]), width)).astype(np.float32)
        return [x], [x]
    raise InvalidInputError(
        f"export covers {', '.join(EXPORTABLE_KINDS)} bundles; this one is a {kind!r} bundle, whose network alone can be exported with torch.onnx.export(bundle.model, ...)."
    )


def _hw(pre: Any) -> tuple[int, int]:
    size = pre.image_size
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)
