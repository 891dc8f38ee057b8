"""Raw category strings in, inside the ONNX graph: one ``LabelEncoder`` (ai.onnx.ml) per category column.

``torch.onnx.export`` traces integer codes (strings are not tensors in torch); this pass rewrites the
exported file so that its ``categorical`` input is a (B, C) *string* tensor holding the raw values,
and the graph maps them to the codes the network was traced with:

- a training category -> its code 1..K, as the bundle's preprocessor does (a value is compared in
  pandas' text form: ``str(value)``; an integer category ``3`` is the key ``"3"``);
- a value that reads as the same integer as a training category (``"3"`` for ``"3.0"``, ``"3.0"`` for
  ``"3"``: a column read as float because of a gap, or a caller that formats numbers differently)
  -> that category's code, not "unseen";
- ``""`` (empty string) -> missing (the training mode, plus the missing indicator where the model
  has one), unless ``""`` was itself a training category;
- anything else -> 0, the unknown category.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["category_keys", "encode_categories_in_graph", "string_categories"]

_INT = re.compile(r"-?\d+")
_INT_FLOAT = re.compile(r"(-?\d+)\.0+")
_ML_DOMAIN = "ai.onnx.ml"


def category_keys(categories: list[Any]) -> dict[str, int]:
    """Text -> code for one column: the training categories (1..K), their integer twins, ``""`` -> -1."""
    keys = {str(c): i + 1 for i, c in enumerate(categories)}
    twins: dict[str, int] = {}
    for text, code in keys.items():
        if _INT.fullmatch(text):
            twins.setdefault(text + ".0", code)
        elif m := _INT_FLOAT.fullmatch(text):
            twins.setdefault(m.group(1), code)
    for text, code in twins.items():
        keys.setdefault(text, code)  # a real training category always wins over a twin
    keys.setdefault("", -1)
    return keys


def string_categories(frame: Any, entries: list[dict[str, Any]]) -> np.ndarray:
    """Raw rows -> the (B, C) string input: each value's text (pandas' ``string`` form), ``""`` for missing."""
    cols = [frame[e["name"]].astype("string").fillna("").to_numpy(dtype=object) for e in entries]
    return np.column_stack(cols).astype(object)


def encode_categories_in_graph(path: Path, entries: list[dict[str, Any]]) -> None:
    """Rewrite the ONNX file at ``path`` in place: ``categorical`` becomes a string input encoded in-graph."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    old = next(i for i in graph.input if i.name == "categorical")
    codes = "categorical_codes"
    for node in graph.node:
        node.input[:] = [codes if n == "categorical" else n for n in node.input]
    batch = old.type.tensor_type.shape.dim[0]
    new_input = helper.make_tensor_value_info(
        "categorical", TensorProto.STRING, [None, len(entries)]
    )
    new_input.type.tensor_type.shape.dim[0].CopyFrom(batch)
    position = list(graph.input).index(old)
    graph.input.remove(old)
    graph.input.insert(position, new_input)

    nodes, parts = [], []
    axes = helper.make_tensor("cat_axes_1", TensorProto.INT64, [1], [1])
    graph.initializer.append(axes)
    for j, e in enumerate(entries):
        keys = category_keys(list(e["categories"]))
        index = helper.make_tensor(f"cat_index_{j}", TensorProto.INT64, [], [j])
        graph.initializer.append(index)
        column, code, part = f"cat_text_{j}", f"cat_code_{j}", f"cat_part_{j}"
        nodes.append(
            helper.make_node("Gather", ["categorical", index.name], [column], axis=1)
        )  # (B,)
        nodes.append(
            helper.make_node(
                "LabelEncoder",
                [column],
                [code],
                domain=_ML_DOMAIN,
                keys_strings=list(keys),
                values_int64s=list(keys.values()),
                default_int64=0,
            )
        )
        nodes.append(helper.make_node("Unsqueeze", [code, axes.name], [part]))  # (B, 1)
        parts.append(part)
    nodes.append(helper.make_node("Concat", parts, [codes], axis=1))  # (B, C) int64
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *rest])
    ml = [o for o in model.opset_import if o.domain == _ML_DOMAIN]
    if ml:  # LabelEncoder's string->int64 attributes need ai.onnx.ml 2 or later
        ml[0].version = max(ml[0].version, 3)
    else:
        model.opset_import.append(helper.make_opsetid(_ML_DOMAIN, 3))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
