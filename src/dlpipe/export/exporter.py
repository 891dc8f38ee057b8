"""``export_bundle``: a bundle to ONNX, TorchScript or a torch.export program, checked against PyTorch.

ONNX goes through ``torch.onnx.export`` (the dynamo exporter) with a dynamic batch axis, as ONE file
(``external_data=False``). TorchScript (``torch.jit.trace``) is deprecated in torch 2.13; it is kept
while it works, with the deprecation notice kept out of the user's way, and ``pt2`` (``torch.export``)
is offered as its successor. ``--quantize int8`` quantises the ONNX model's weights dynamically
(onnxruntime), and with labelled ``data`` reports the metric before and after.

Every export is run once more after writing (onnxruntime, ``torch.jit.load``, ``torch.export.load``)
and compared with the bundle's own predictions: ``parity["max_abs_diff"]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.core.files import check_output_file, private_tmp, write_json
from dlpipe.core.runtime import require
from dlpipe.export.graph import TableGraph, network_sidecar, sidecar_for, table_inputs, wrap
from dlpipe.export.networks import (
    EXPORTABLE_KINDS,
    TEXT_INPUTS,
    network_inputs,
    text_inputs,
    wrap_network,
)
from dlpipe.export.strings import encode_categories_in_graph

__all__ = ["export_bundle", "ExportResult", "FORMATS"]

FORMATS = ("onnx", "torchscript", "pt2")
_TASKS = ("binary", "multiclass", "regression", "forecast")
_PARITY_ROWS = 256


@dataclass
class ExportResult:
    """What was written and how it compares with the bundle."""

    path: Path
    sidecar: Path
    format: str
    parity: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None


def export_bundle(
    bundle: Any,
    output: str | Path,
    *,
    format: Literal["onnx", "torchscript", "pt2"] = "onnx",
    quantize: Literal["int8"] | None = None,
    data: Any = None,
) -> ExportResult:
    """Export a bundle (object or folder) to ``output`` and write ``<output>.json`` describing its inputs.

    Args:
        bundle: A :class:`~dlpipe.Bundle` or its folder.
        output: The file to write (``model.onnx``, ``model.pt``, ``model.pt2``).
        format: ``"onnx"``, ``"torchscript"`` or ``"pt2"``. Defaults to `"onnx"`.
        quantize: ``"int8"``: dynamic int8 weights (ONNX only). Defaults to `None`.
        data: Rows for the parity check and, when labelled, the quantisation's metric change
            (tables: a DataFrame or CSV path). Defaults to rows synthesised from the training statistics.

    Returns:
        An :class:`ExportResult` with the paths, ``parity`` (max abs diff against PyTorch) and
        ``quantization`` (metric before/after, with labelled ``data``).
    """
    from dlpipe.bundle.bundle import Bundle, load_bundle

    if format not in FORMATS:
        raise InvalidConfigError(f"`format` is {format!r} but must be one of {', '.join(FORMATS)}.")
    if quantize not in (None, "int8"):
        raise InvalidConfigError(
            f"`quantize` is {quantize!r} but the only quantisation offered is 'int8'."
        )
    if quantize and format != "onnx":
        raise InvalidConfigError(
            f"int8 quantisation is offered for ONNX exports (onnxruntime), not {format!r}: torch's eager quantisation is deprecated in torch 2.13; set `format` to 'onnx'."
        )
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    if b.kind not in EXPORTABLE_KINDS:
        raise InvalidInputError(
            f"export covers {', '.join(EXPORTABLE_KINDS)} bundles; this one is a {b.kind!r} bundle, whose network alone can be exported with torch.onnx.export(bundle.model, ...)."
        )
    if b.task.kind not in _TASKS:
        raise InvalidInputError(
            f"export covers predictive bundles (classification, regression, forecasts); this {b.kind} bundle's task is {b.task.kind!r}; export its network with torch.onnx.export(bundle.model, ...)."
        )
    if format == "pt2" and b.kind == "text" and _has_gru(b.manifest.get("model_spec") or {}):
        raise InvalidInputError(
            "torch.export fixes a GRU's sequence length to the traced documents' length, so a text_rnn bundle "
            "exports to ONNX or TorchScript but not 'pt2'; set `format` to 'onnx' or 'torchscript'."
        )
    out = check_output_file(output, "`output`")
    if b.kind == "table":
        frame = _rows(b, data)
        feeds = table_inputs(b.preprocessor, frame)  # what torch traces: category codes
        names: list[str] = [k for k in ("numeric", "categorical") if k in feeds]
        module = wrap(TableGraph(b.model.eval(), b.preprocessor.state(), b.task))
        cats = [*b.preprocessor.state()["onehot"], *b.preprocessor.state()["embed"]]
        # ONNX takes the raw category strings (encoded inside the graph): its parity feeds are raw too
        run_feeds = table_inputs(b.preprocessor, frame, strings=True) if format == "onnx" else feeds
        expected = _expected(b, frame)
        n_rows = len(frame)
    else:
        raw, prepared = network_inputs(b, data)
        names = _input_names(b, len(raw))
        feeds = dict(zip(names, raw))
        run_feeds = feeds
        module = wrap_network(b, len(raw))
        cats = []
        frame = None
        if b.kind == "text" and data is None:
            # the parity check runs on other documents than the trace (another batch and length), so a
            # graph specialised to the traced shapes would show here
            other = text_inputs(b, 7, 37, 1)
            run_feeds, prepared = dict(zip(names, other)), other
        expected = _network_expected(b, prepared)
        n_rows = len(prepared[0])
    args = tuple(torch.from_numpy(np.ascontiguousarray(feeds[k])) for k in names)
    tmp = private_tmp(out)
    sidecar = out.with_name(out.name + ".json")
    side_tmp = private_tmp(sidecar)
    try:
        dynamic = _dynamic_shapes(b, names)
        if format == "onnx":
            _onnx(module, args, names, tmp, dynamic)
            if cats:
                encode_categories_in_graph(tmp, cats)
        elif format == "torchscript":
            with _quiet():
                traced = torch.jit.trace(module, args, check_trace=False)
                torch.jit.save(traced, str(tmp))
        else:
            with _quiet():
                program = torch.export.export(module, args, dynamic_shapes=dynamic)
                torch.export.save(program, str(tmp))
        got = run_exported(tmp, format, run_feeds)
        parity = {"rows": int(n_rows), "max_abs_diff": _max_diff(got, expected)}
        quant = None
        if quantize:
            quant = _quantize(tmp, b, frame, run_feeds, expected)
        info = (
            sidecar_for(b, format, bool(quantize))
            if b.kind == "table"
            else network_sidecar(b, format, bool(quantize), names)
        )
        info["parity"] = parity
        if quant is not None:
            info["quantization"] = quant
        write_json(side_tmp, json.loads(json.dumps(info, default=str)))  # strict JSON: NaN -> null
        os.replace(tmp, out)  # both files complete: only now do they take their names
        os.replace(side_tmp, sidecar)
    finally:
        tmp.unlink(missing_ok=True)
        side_tmp.unlink(missing_ok=True)
    return ExportResult(out, sidecar, format, parity, quant)


def run_exported(path: str | Path, format: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Run an exported file on its inputs, by name (tables: ``numeric`` and ``categorical``: raw
    strings for ONNX, codes for TorchScript/pt2; other kinds: the sidecar's input names)."""
    if format == "onnx":
        ort = require("onnxruntime", extra="export")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        wanted = [i.name for i in session.get_inputs()]
        return np.asarray(session.run(None, {k: feeds[k] for k in wanted})[0])
    args = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values())
    with _quiet(), torch.inference_mode():
        if format == "torchscript":
            return torch.jit.load(str(path))(*args).numpy()
        return torch.export.load(str(path)).module()(*args).numpy()


# ---------------------------------------------------------------------- helpers
def _has_gru(spec: dict[str, Any]) -> bool:
    """Whether a text bundle's network (or its text branch, beside table columns) is the GRU/LSTM."""
    inner = spec.get("text") if spec.get("family") == "text_tabular" else spec
    return isinstance(inner, dict) and inner.get("family") == "text_rnn"


def _dynamic_shapes(b: Any, names: list[str]) -> tuple[dict[int, Any], ...]:
    """The batch axis of every input is dynamic; a text run's token ids also have a dynamic length
    (3 to the bundle's `max_length`: the bag of embeddings specialises lengths 1 and 2, its word pairs,
    and the Transformer's positions end at `max_length`)."""
    batch = torch.export.Dim("batch", min=1)
    if b.kind == "text":
        most = max(4, int(b.preprocessor.state().get("max_length", 512)))
        length = torch.export.Dim("length", min=3, max=most)
        return tuple({0: batch, 1: length} if n == "ids" else {0: batch} for n in names)
    return tuple({0: batch} for _ in names)


def _onnx(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    names: list[str],
    path: Path,
    dynamic: tuple[dict[int, Any], ...],
) -> None:
    require("onnx", extra="export")
    with _quiet():
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )


def _quantize(
    path: Path, b: Any, frame: Any, feeds: dict[str, np.ndarray], expected: np.ndarray
) -> dict[str, Any]:
    import onnx

    quantization = require("onnxruntime.quantization", extra="export")
    model = onnx.load(str(path))
    del model.graph.value_info[
        :
    ]  # the exporter's shape annotations trip onnxruntime's re-inference
    plain = path.with_name(f".{path.name}.float")
    onnx.save(model, str(plain))
    tmp = path.with_name(f".{path.name}.int8")
    try:
        with _quiet():
            quantization.quantize_dynamic(
                str(plain), str(tmp), weight_type=quantization.QuantType.QInt8
            )
        float_size = path.stat().st_size
        os.replace(tmp, path)
    finally:
        plain.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    got = run_exported(path, "onnx", feeds)
    result: dict[str, Any] = {
        "rows": int(len(expected)),
        "max_abs_diff": _max_diff(got, expected),
        "bytes_float": int(float_size),
        "bytes_int8": int(path.stat().st_size),
    }
    target = b.task.target
    if frame is not None and target in frame.columns:
        keep = frame[target].notna().to_numpy()
        y = b.task.encode(frame[target][keep], what="evaluation target").reshape(-1)
        if b.task.kind == "regression":
            y_true = y * b.task.y_std + b.task.y_mean
            result.update(
                metric="mae",
                float=float(np.mean(np.abs(expected[keep] - y_true))),
                int8=float(np.mean(np.abs(got[keep] - y_true))),
            )
        else:
            y_true = y.astype(np.int64)
            result.update(
                metric="accuracy",
                float=float(np.mean(expected[keep].argmax(1) == y_true)),
                int8=float(np.mean(got[keep].argmax(1) == y_true)),
            )
    return result


def _max_diff(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(got.astype(np.float64).reshape(expected.shape) - expected)))


def _input_names(b: Any, n: int) -> list[str]:
    if b.kind == "text":
        return list(TEXT_INPUTS[:n])
    return ["image"] if b.kind == "image" else ["x", "mask"][:n]


def _network_expected(b: Any, prepared: list[np.ndarray]) -> np.ndarray:
    """The bundle's own answer: ``decode(bundle.outputs(...))`` (a forecast: its scaled outputs)."""
    logits = b.outputs(prepared)
    if b.task.kind not in ("binary", "multiclass", "regression"):
        return np.asarray(logits, dtype=np.float64)
    values, proba = b.task.decode(logits)
    return np.asarray(proba if proba is not None else values, dtype=np.float64)


def _expected(b: Any, frame: Any) -> np.ndarray:
    batch = b.preprocessor.prepare(frame)
    values, proba = b.task.decode(b.outputs(batch.inputs))
    return np.asarray(proba if proba is not None else values, dtype=np.float64)


def _rows(b: Any, data: Any) -> Any:
    """Rows for the trace and the parity check: the given data, or rows drawn from the training statistics."""
    import pandas as pd

    from dlpipe.data.tabular import read_table

    if data is not None:
        frame = read_table(data, what="export data")
        frame.columns = [str(c) for c in frame.columns]
        if len(frame) < 2:
            raise InvalidInputError(
                "export data needs at least 2 rows (the batch axis is traced as dynamic)."
            )
        return frame
    rng = np.random.default_rng(0)
    ref = b.manifest.get("reference_statistics") or {}
    state = b.preprocessor.state()
    cats = {e["name"]: e["categories"] for e in (*state["onehot"], *state["embed"])}
    cols: dict[str, Any] = {}
    n = 64
    for c in state["schema"]["columns"]:
        name, kind, stats = c["name"], c["kind"], ref.get(c["name"], {})
        if kind == "numeric":
            sample = stats.get("sample") or stats.get("quantiles") or [0.0]
            values = rng.choice(np.asarray(sample, dtype=np.float64), size=n)
            values[::9] = np.nan  # exercise imputation
            cols[name] = values
        elif kind == "boolean":
            cols[name] = rng.integers(0, 2, size=n).astype(bool)
        elif kind == "datetime":
            cols[name] = pd.date_range("2024-01-01", periods=n, freq="D")
        else:
            options = list(cats.get(name, [])) or ["x"]
            values_c = rng.choice(np.asarray(options, dtype=object), size=n)
            values_c[::7] = None
            cols[name] = values_c
    return pd.DataFrame(cols)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep exporter chatter (deprecations, progress prints, optional-op logs) away from the user."""
    loggers = [
        logging.getLogger(n)
        for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "root", "")
    ]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
