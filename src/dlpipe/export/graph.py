"""The exported graph of a table bundle: raw numeric columns and category codes in, predictions out.

Imputation (training medians), scaling (standard/minmax/l2), missing-value indicators and one-hot
blocks are folded into the graph, so the exported model needs no Python preprocessing:

- ``numeric``: (B, N) float32, the raw numeric columns in the sidecar's order (booleans as 0/1, date
  columns as their parts), NaN for a missing value;
- ``categorical``: (B, C) int64, each category column as the code the sidecar lists
  (1..K for the training categories, 0 for an unseen one, -1 for a missing value); in an ONNX file
  this input is rewritten to take the raw category *strings* (``export/strings.py``);
- ``output``: class probabilities (B, K) for classification (the bundle's temperature included),
  values in the target's units (B,) for regression.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["TableGraph", "table_inputs", "sidecar_for", "network_sidecar"]


class TableGraph(nn.Module):
    """Preprocessing + model + decoding as one module (see the module docstring for inputs and output)."""

    fill: torch.Tensor
    shift: torch.Tensor
    div: torch.Tensor
    indicators: torch.Tensor

    def __init__(self, model: nn.Module, state: dict[str, Any], task: Any) -> None:
        super().__init__()
        self.model = model
        numeric = state["numeric"]
        self.n_numeric = len(numeric)
        self.scaling = state["scaling"]
        self.register_buffer(
            "fill", torch.tensor([e["fill"] for e in numeric], dtype=torch.float32)
        )
        scale = state["scale"]
        if self.scaling == "standard" and numeric:
            shift, div = scale["mean"], scale["std"]
        elif self.scaling == "minmax" and numeric:
            shift, div = scale["min"], scale["range"]
        else:
            shift, div = [0.0] * len(numeric), [1.0] * len(numeric)
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))
        self.register_buffer("div", torch.tensor(div, dtype=torch.float32))
        self.register_buffer(
            "indicators",
            torch.tensor([i for i, e in enumerate(numeric) if e["indicator"]], dtype=torch.long),
        )
        self.onehot = [
            (len(e["categories"]), _mode_code(e), bool(e["indicator"])) for e in state["onehot"]
        ]
        self.embed_modes = [_mode_code(e) for e in state["embed"]]
        self.n_categorical = len(self.onehot) + len(self.embed_modes)
        for j, (k, _, _) in enumerate(self.onehot):
            self.register_buffer(f"codes_{j}", torch.arange(1, k + 1, dtype=torch.long))
        self.kind = task.kind
        self.y_mean, self.y_std = float(task.y_mean), float(task.y_std)
        self.temperature = float(getattr(task, "temperature", 1.0) or 1.0)

    def core(self, numeric: torch.Tensor | None, categorical: torch.Tensor | None) -> torch.Tensor:
        blocks: list[torch.Tensor] = []
        if numeric is not None:
            missing = torch.isnan(numeric)  # (B, N)
            x = torch.where(missing, self.fill, numeric)
            if self.scaling == "l2":
                norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
                x = x / torch.where(norm > 0, norm, torch.ones_like(norm))
            else:
                x = (x - self.shift) / self.div
            blocks.append(x)
            if self.indicators.numel():
                blocks.append(missing.index_select(1, self.indicators).to(torch.float32))
        x_cat: torch.Tensor | None = None
        if categorical is not None:
            for j, (_, mode, indicator) in enumerate(self.onehot):
                c = categorical[:, j]
                was_missing = c < 0
                c = torch.where(was_missing, torch.full_like(c, mode), c)
                blocks.append(
                    (c.unsqueeze(1) == getattr(self, f"codes_{j}")).to(torch.float32)
                )  # (B, K)
                if indicator:
                    blocks.append(was_missing.to(torch.float32).unsqueeze(1))
            if self.embed_modes:
                offset = len(self.onehot)
                cols = []
                for i, mode in enumerate(self.embed_modes):
                    c = categorical[:, offset + i]
                    cols.append(torch.where(c < 0, torch.full_like(c, mode), c))
                x_cat = torch.stack(cols, dim=1)  # (B, C_embed)
        x_num = torch.cat(blocks, dim=1)
        logits = self.model(x_num, x_cat) if x_cat is not None else self.model(x_num)
        if self.kind == "binary":
            p1 = torch.sigmoid(logits.reshape(-1, 1) / self.temperature)
            return torch.cat([1 - p1, p1], dim=1)
        if self.kind in ("multiclass",):
            return torch.softmax(logits / self.temperature, dim=1)
        return logits.reshape(-1) * self.y_std + self.y_mean


class _Both(nn.Module):
    def __init__(self, graph: TableGraph) -> None:
        super().__init__()
        self.table = graph

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.table.core(numeric, categorical)


class _NumericOnly(_Both):
    def forward(self, numeric: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.table.core(numeric, None)


class _CategoricalOnly(_Both):
    def forward(self, categorical: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.table.core(None, categorical)


def wrap(graph: TableGraph) -> nn.Module:
    """The module to export: its forward takes only the inputs this table has."""
    if graph.n_numeric and graph.n_categorical:
        return _Both(graph).eval()
    if graph.n_numeric:
        return _NumericOnly(graph).eval()
    return _CategoricalOnly(graph).eval()


def table_inputs(pre: Any, frame: Any, *, strings: bool = False) -> dict[str, np.ndarray]:
    """Raw rows -> the exported model's inputs: ``numeric`` float32 with NaN, and ``categorical`` as
    int64 codes (TorchScript, pt2) or, with ``strings=True``, the raw values as text (ONNX; ``""``
    for a missing value)."""
    from dlpipe.data.preprocessing import _codes, _column_values
    from dlpipe.export.strings import string_categories

    state = pre.state()
    pre.check_columns(frame)
    out: dict[str, np.ndarray] = {}
    if state["numeric"]:
        out["numeric"] = np.column_stack(
            [_column_values(frame, e) for e in state["numeric"]]
        ).astype(np.float32)
    entries = [*state["onehot"], *state["embed"]]
    if strings and entries:
        out["categorical"] = string_categories(frame, entries)
        return out
    cols = []
    for e in entries:
        codes, _, was_missing = _codes(frame[e["name"]], e)
        codes[was_missing] = -1
        cols.append(codes)
    if cols:
        out["categorical"] = np.column_stack(cols).astype(np.int64)
    return out


def sidecar_for(bundle: Any, fmt: str, quantized: bool) -> dict[str, Any]:
    """What the exported file expects and returns, as JSON (written beside it)."""
    state = bundle.preprocessor.state()
    inputs: dict[str, Any] = {}
    if state["numeric"]:
        inputs["numeric"] = {
            "dtype": "float32",
            "shape": ["batch", len(state["numeric"])],
            "missing": "NaN",
            "columns": [
                {
                    "name": e["name"],
                    "kind": e["kind"],
                    **(
                        {"source": e["source"], "part": e["part"]}
                        if e["kind"] == "datetime"
                        else {}
                    ),
                }
                for e in state["numeric"]
            ],
        }
    cats = [*state["onehot"], *state["embed"]]
    if cats and fmt == "onnx":
        from dlpipe.export.strings import category_keys

        inputs["categorical"] = {
            "dtype": "string",
            "shape": ["batch", len(cats)],
            "missing": "",
            "unknown": "any other value (encoded as the unknown category, without a warning)",
            "encoding": "inside the graph (ai.onnx.ml LabelEncoder): pass each value as text, str(value)",
            "columns": [
                {
                    "name": e["name"],
                    "categories": [str(c) for c in e["categories"]],
                    "codes": category_keys(list(e["categories"])),
                }
                for e in cats
            ],
        }
    elif cats:
        inputs["categorical"] = {
            "dtype": "int64",
            "shape": ["batch", len(cats)],
            "missing": -1,
            "unknown": 0,
            "columns": [
                {"name": e["name"], "codes": {c: i + 1 for i, c in enumerate(e["categories"])}}
                for e in cats
            ],
        }
    task = bundle.task
    output: dict[str, Any]
    if task.kind in ("binary", "multiclass"):
        output = {
            "name": "output",
            "meaning": "class probabilities",
            "shape": ["batch", len(task.classes)],
            "classes": list(task.classes),
        }
    else:
        output = {
            "name": "output",
            "meaning": f"predicted {task.target!r} in its own units",
            "shape": ["batch"],
        }
    return {
        "format": fmt,
        "quantized": "int8" if quantized else None,
        "kind": bundle.kind,
        "task": task.kind,
        "target": task.target,
        "inputs": inputs,
        "output": output,
        "dlpipe_bundle": bundle.manifest.get("versions", {}),
    }


def network_sidecar(bundle: Any, fmt: str, quantized: bool, names: list[str]) -> dict[str, Any]:
    """The sidecar of an image, array, sequence or series export (see ``export/networks.py``)."""
    state = bundle.preprocessor.state()
    meaning = {
        "image": "(batch, channels, height, width) float32 pixels in the stored units (0..255 for image files), resized to `adapter.image_size`; normalisation is in the graph",
        "arrays": "the trained shape, float32, times `adapter.scale`",
        "sequence": "x: (batch, steps, features) float32; mask: (batch, steps), 1 for a step, 0 for padding",
        "series": "(batch, lookback, features) float32: the last `adapter.lookback` rows of `adapter.input_columns`, scaled by `adapter.scaler`",
        "text": "ids: (batch, length >= 3) int64 token ids from the tokenizer in `adapter.tokenizer` (Hugging Face tokenizers JSON; `adapter.special_tokens`: [CLS] ... [SEP]), 0 = padding, at most `adapter.max_length` read; x_num / x_cat (when `adapter.table` is set): that table preprocessor's outputs for the other columns",
    }.get(bundle.kind, "")
    task = bundle.task
    if task.kind in ("binary", "multiclass"):
        output: dict[str, Any] = {
            "name": "output",
            "meaning": "class probabilities",
            "shape": ["batch", len(task.classes)],
            "classes": list(task.classes),
        }
    elif task.kind == "regression":
        output = {
            "name": "output",
            "meaning": f"predicted {task.target!r} in its own units",
            "shape": ["batch"],
        }
    else:
        output = {
            "name": "output",
            "meaning": "the network's forecast in the scaled units of `adapter.scaler` (a recursive model: one step; feed it back for the horizon)",
        }
    return {
        "format": fmt,
        "quantized": "int8" if quantized else None,
        "kind": bundle.kind,
        "task": task.kind,
        "target": task.target,
        "inputs": {"names": names, "meaning": meaning},
        "adapter": state,
        "output": output,
        "dlpipe_bundle": bundle.manifest.get("versions", {}),
    }


def _mode_code(entry: dict[str, Any]) -> int:
    cats = entry["categories"]
    return cats.index(entry["mode"]) + 1 if entry["mode"] in cats else 0
