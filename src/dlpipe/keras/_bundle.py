"""A Keras-style model as a dlpipe bundle: ``model.save`` writes one, ``load_model`` reads one back.

The manifest's ``model_spec`` is ``{"family": "keras", "config": <the model as JSON>, "fold": [...]}``:
data only, rebuilt with this package's layers (the family is registered by name in
``dlpipe._builtins``, so ``dlpipe.load_bundle`` builds it without importing ``dlpipe.keras`` first).
What the bundle's kind and task are follows from the model:

- one input of flat rows ``(F,)`` -> a ``table`` bundle with numeric columns (no scaling: the model
  gets the numbers it was trained on), so ``dlpipe predict/evaluate/serve/export/drift`` treat it like
  any table model; its reference statistics (drift) come from up to 10,000 rows given to ``fit``
  (none for inputs wider than 256 features, such as flattened images);
- one input of images ``(H, W, C)`` or sequences ``(T, F)`` -> an ``arrays`` bundle (``.npz`` files or
  arrays in, ``inputs`` in a serving request);
- the task from the loss (or, uncompiled, the last activation): binary cross-entropy over one unit is
  ``binary`` (classes 0, 1), a categorical one over C units ``multiclass`` (classes 0..C-1), one
  value with mse/mae/huber ``regression``. The network in the bundle outputs logits for the two
  classification tasks (the sigmoid/softmax is applied by the bundle, as for every dlpipe bundle).

Models the task table cannot describe (several inputs or outputs, several values per row) are
written as bundles of kind ``keras``: :func:`load_model` reads them; ``dlpipe.load_bundle`` explains
that it cannot feed them.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from dlpipe.core.errors import BundleError, DlpipeError, InvalidConfigError
from dlpipe.keras.layers import layer_from_config
from dlpipe.keras.losses import Loss
from dlpipe.keras.optimizers import Optimizer

if TYPE_CHECKING:
    from dlpipe.keras.model import Model

__all__ = ["model_config", "save_bundle", "load_keras_model", "build_network", "load_graph_bundle"]

FORMAT = "dlpipe-keras"
FORMAT_VERSION = 2
FAMILY = "keras"
MAX_DRIFT_FEATURES = 256


def _loss_configs(model: Model) -> Any:
    assert model.compiled is not None
    spec = model.compiled["loss"]
    if isinstance(spec, Loss):
        return spec.get_config()
    if isinstance(spec, dict):
        return {k: v.get_config() for k, v in spec.items()}
    return [v.get_config() for v in spec]


def model_config(model: Model) -> dict[str, Any]:
    """The model as JSON: inputs, layers with their inbound tensors, outputs and compile settings."""
    from dlpipe.keras.model import Sequential

    sources = dict(model._plan)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class_name": "Sequential" if isinstance(model, Sequential) else "Model",
        "name": model.name,
        "inputs": [{"name": n, "shape": list(s)} for n, s in model._inputs],
        "layers": [
            {
                "class_name": type(layer).__name__,
                "config": layer.get_config(),
                "inbound": sources.get(layer.name, []),
            }
            for layer in model.layers
        ],
        "outputs": list(model._output_names),
        "compile": None
        if model.compiled is None
        else {
            "optimizer": model.compiled["optimizer"].get_config(),
            "loss": _loss_configs(model),
            "loss_weights": model.compiled["loss_weights"],
            "metrics": model.compiled["metrics_names"],
        },
    }


def model_from_config(config: dict[str, Any]) -> Model:
    """Rebuild the (uncompiled) model from :func:`model_config`'s JSON; data only, never code."""
    from dlpipe.keras.model import Model, Sequential

    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise InvalidConfigError(
            f"the model config has format {config.get('format')!r} version {config.get('format_version')!r}, but this dlpipe reads {FORMAT!r} version {FORMAT_VERSION}."
        )
    layers = [layer_from_config(item) for item in config["layers"]]
    inputs = [(str(i["name"]), tuple(int(d) for d in i["shape"])) for i in config["inputs"]]
    model: Model
    if config.get("class_name") == "Sequential":
        seq = Sequential(name=config.get("name"))
        seq._input_name = inputs[0][0]
        seq.layers = layers
        seq._set_sequential_input(inputs[0][1])
        model = seq
    else:
        model = Model(name=config.get("name"))
        model.layers = layers
        model._inputs = inputs
        model._plan = [
            (layer.name, [str(s) for s in item["inbound"]])
            for layer, item in zip(layers, config["layers"])
        ]
        model._output_names = [str(o) for o in config["outputs"]]
        known = {n for n, _ in inputs} | {layer.name for layer in layers}
        if any(s not in known for _, srcs in model._plan for s in srcs) or any(
            o not in known for o in model._output_names
        ):
            raise InvalidConfigError(
                "the model config wires a layer to a tensor it does not define."
            )
    model._build()
    return model


def build_network(spec: dict[str, Any]) -> nn.Module:
    """The model family ``keras`` of :func:`dlpipe.models.build_model`: the network a bundle's spec describes."""
    _check_memory(spec["config"])
    model = model_from_config(spec["config"])
    net = model.net
    assert net is not None
    fold = spec.get("fold", [False] * len(net.fold))
    if (
        not isinstance(fold, list)
        or len(fold) != len(net.fold)
        or not all(isinstance(f, bool) for f in fold)
    ):
        raise InvalidConfigError("`model_spec.fold` must list one true/false per output.")
    if any(f and not ok for f, ok in zip(fold, model._foldable)):
        raise InvalidConfigError(
            "`model_spec.fold` folds an output whose activation cannot be folded."
        )
    net.fold = list(fold)
    return net


def _check_memory(config: dict[str, Any]) -> None:
    """Refuse, before allocating, a spec whose weights do not fit in memory (counted on torch's meta device)."""
    import torch

    from dlpipe.models.registry import available_memory

    available = available_memory()
    if available is None:
        return
    try:
        with torch.device("meta"):
            net = model_from_config(config).net
        assert net is not None
        needed = sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])
    except DlpipeError:
        raise
    except Exception:  # noqa: BLE001 - an init that needs real tensors: built (and checked by loading) as before
        return
    if needed > available:
        raise InvalidConfigError(
            f"the Keras-style model needs about {needed / 1e9:,.1f} GB for its weights but only {available / 1e9:,.1f} GB is available."
        )


# ---------------------------------------------------------------------- the task a model has
def _task(model: Model, target: str) -> tuple[dict[str, Any] | None, bool]:
    """The bundle's task and whether the network outputs logits (a folded sigmoid/softmax); None: no task fits."""
    if len(model._inputs) != 1 or len(model._output_names) != 1:
        return None, False
    shape = tuple(model.output_shapes_[0])
    layer = model.get_layer(model._output_names[0])
    act = layer.activation
    loss: Loss | None = None
    if model.compiled is not None:
        spec = model.compiled["loss"]
        loss = (
            spec
            if isinstance(spec, Loss)
            else list(spec.values() if isinstance(spec, dict) else spec)[0]
        )
    name = loss.name if loss is not None else None
    from_logits = bool(loss is not None and loss.from_logits)
    foldable = model._foldable[0]
    if len(shape) != 1:
        return None, False
    width = shape[0]
    if (name == "binary_crossentropy" or (name is None and act == "sigmoid")) and width == 1:
        if act == "sigmoid" and foldable:
            return {"kind": "binary", "target": target, "classes": [0, 1]}, True
        if act == "linear" and from_logits:
            return {"kind": "binary", "target": target, "classes": [0, 1]}, False
        return None, False
    if (
        name in ("categorical_crossentropy", "sparse_categorical_crossentropy")
        or (name is None and act == "softmax")
    ) and width >= 2:
        classes = list(range(width))
        if act == "softmax" and foldable:
            return {"kind": "multiclass", "target": target, "classes": classes}, True
        if act == "linear" and from_logits:
            return {"kind": "multiclass", "target": target, "classes": classes}, False
        return None, False
    if width == 1 and (
        name in ("mse", "mae", "huber") or (name is None and act not in ("sigmoid", "softmax"))
    ):
        return {
            "kind": "regression",
            "target": target,
            "loss": "huber" if name == "huber" else "mse",
        }, False
    return None, False


def _table_parts(
    model: Model, names: list[str], target: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The table preprocessor state (numeric columns, no scaling) and the drift reference statistics."""
    import pandas as pd

    from dlpipe.data.preprocessing import TabularPreprocessor, reference_statistics
    from dlpipe.data.schema import ColumnInfo, Schema

    sample = model._fit_sample
    frame = pd.DataFrame(
        sample if sample is not None else np.zeros((1, len(names)), np.float32), columns=names
    ).astype("float64")
    schema = Schema(
        columns=tuple(
            ColumnInfo(
                n,
                "numeric",
                "float32",
                int(frame[n].nunique()) if sample is not None else 0,
                0,
                "an input of the Keras-style model",
            )
            for n in names
        ),
        target=target,
    )
    pre = TabularPreprocessor(schema, scaling="none").fit(frame)
    # Per-feature drift statistics cost ~5 ms a column (784 pixels: 4 s on a busy machine) and a
    # per-pixel drift test says little: wider inputs are saved without them (drift then says so).
    wide = len(names) > MAX_DRIFT_FEATURES
    stats = reference_statistics(frame, schema) if sample is not None and not wide else {}
    return pre.state(), stats


def save_bundle(
    model: Model,
    path: Path,
    *,
    overwrite: bool = True,
    feature_names: Sequence[str] | None = None,
    target: str | None = None,
) -> None:
    """Write ``model`` as a dlpipe bundle folder at ``path`` (atomically; an existing bundle is replaced when ``overwrite``)."""
    from dlpipe.bundle.bundle import Bundle, make_manifest

    assert model.net is not None
    target = target if target is not None else (model.target_name_ or "y")
    if not isinstance(target, str) or not target:
        raise InvalidConfigError(f"`target` is {target!r} but must be a non-empty column name.")
    config = model_config(model)
    task, logits = _task(model, target)
    shape = model._inputs[0][1]
    n_out = len(model._output_names)
    fold = [False] * n_out
    state: dict[str, Any]
    stats: dict[str, Any]
    if task is None:
        kind, state, stats = "keras", {}, {}
        task = {"kind": "regression", "target": target}
        names = None
    elif len(shape) == 1:
        kind = "table"
        given = list(feature_names) if feature_names is not None else model.feature_names_
        names = [str(n) for n in given] if given is not None else [f"x{i}" for i in range(shape[0])]
        if len(names) != shape[0] or len(set(names)) != len(names) or target in names:
            raise InvalidConfigError(
                f"`feature_names` must be {shape[0]} distinct column names other than the target {target!r}, but got {names[:5]}{'...' if len(names) > 5 else ''} ({len(names)})."
            )
        state, stats = _table_parts(model, names, target)
        fold = [logits]
    else:
        kind, names, stats = "arrays", None, {}
        state = {
            "shape": list(shape),
            "modality": "image" if len(shape) == 3 else "sequence",
            "scale": 1.0,
        }
        fold = [logits]
    spec: dict[str, Any] = {"family": FAMILY, "config": config, "fold": fold}
    if kind != "keras":
        spec["n_outputs"] = len(task["classes"]) if task["kind"] == "multiclass" else 1
    last = model.history.history if model.history is not None else {}
    metrics = {"history": {k: v[-1] for k, v in last.items() if v and math.isfinite(v[-1])}}
    manifest = make_manifest(
        kind=kind,
        task=task,
        preprocessor=state,
        model_spec=spec,
        metrics=metrics,
        baselines={},
        reference_statistics=stats,
        feature_names=names,
    )
    bundle = object.__new__(Bundle)  # Bundle.save alone: a `keras` kind has no input adapter
    bundle.manifest = manifest
    bundle.model = model.net
    was_training = model.net.training
    try:
        bundle.save(path, overwrite=overwrite, what="`filepath`")  # Keras' name for it
    finally:
        model.net.train(was_training)


# ---------------------------------------------------------------------- reading
def load_keras_model(path: Path, *, compile: bool = True) -> Model:
    """Rebuild the Keras-style model from a bundle ``model.save`` wrote (weights checked against their checksum)."""
    from dlpipe.bundle.bundle import load_checked_state, read_manifest, read_weights

    if (path / "model.json").is_file() and not (path / "manifest.json").exists():
        raise BundleError(
            f"{str(path)!r} was saved by an earlier dlpipe.keras (model.json), before saved models became bundles; "
            "load it with that dlpipe version and save it again, or retrain."
        )
    root, manifest = read_manifest(path)
    spec = manifest.get("model_spec") or {}
    if spec.get("family") != FAMILY:
        raise BundleError(
            f"bundle {str(root)!r} holds a {spec.get('family')!r} model, not one written by dlpipe.keras; load it with dlpipe.load_bundle."
        )
    try:
        config = spec["config"]
        model = model_from_config(config)
    except (DlpipeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BundleError(
            f"the model config in bundle {str(root)!r} cannot be rebuilt ({exc}); the manifest is damaged, so re-save the model."
        ) from None
    assert model.net is not None
    load_checked_state(model.net, read_weights(root, manifest), root)
    if manifest.get("kind") == "table":
        model.feature_names_ = list(manifest.get("feature_names") or []) or None
        model.target_name_ = manifest["task"]["target"]
    c = config.get("compile")
    if compile and c:
        loss = c["loss"]
        losses: Any = (
            Loss(**loss)
            if isinstance(loss, dict) and "name" in loss
            else {k: Loss(**v) for k, v in loss.items()}
            if isinstance(loss, dict)
            else [Loss(**v) for v in loss]
        )
        model.compile(
            optimizer=Optimizer(**c["optimizer"]),
            loss=losses,
            loss_weights=c.get("loss_weights"),
            metrics=c.get("metrics"),
        )
    return model


def load_graph_bundle(root: Path, manifest: dict[str, Any]) -> Any:
    """``dlpipe.load_bundle`` on a ``keras`` bundle: refused in one sentence (no task to feed it with)."""
    spec = manifest.get("model_spec") or {}
    config = spec.get("config") or {}
    n_in, n_out = len(config.get("inputs") or []), len(config.get("outputs") or [])
    raise BundleError(
        f"bundle {str(root)!r} holds a Keras-style model with {n_in} input(s) and {n_out} output(s), whose outputs are not one "
        "regression value or class per row, so dlpipe predict/serve cannot feed it; load it with dlpipe.keras.models.load_model."
    )


# ---------------------------------------------------------------------- MLflow and other run trackers
def report_to_trackers(model: Model, trackers: list[Any]) -> None:
    """Hand a fitted facade model to trackers' ``on_run_saved`` as a run folder holding its bundle (then removed)."""
    tmp = Path(tempfile.mkdtemp(prefix="dlpipe-keras-run-"))
    try:
        root = tmp / "run"
        root.mkdir()
        save_bundle(model, root / "bundle", overwrite=False)
        history = model.history.history if model.history is not None else {}
        (root / "history.json").write_text(json.dumps(history), encoding="utf-8")
        manifest = json.loads((root / "bundle" / "manifest.json").read_text(encoding="utf-8"))
        assert model.compiled is not None
        opt = model.compiled["optimizer"]
        config = {
            "api": "dlpipe.keras",
            "model": model.name,
            "layers": len(model.layers),
            "parameters": model.count_params(),
            "optimizer": opt.kind,
            "learning_rate": opt.learning_rate,
            "epochs": len(model.history.epoch) if model.history is not None else 0,
        }
        run = SimpleNamespace(
            config=config,
            metrics={
                "target": manifest["task"]["target"],
                "task": manifest["task"]["kind"],
                "test": {},
            },
            path=root,
        )
        for tracker in trackers:
            tracker.on_run_saved(run)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
