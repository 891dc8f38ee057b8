"""The bundle: what ``predict`` needs and nothing else, as a folder of JSON and safetensors.

    bundle/
      manifest.json        format version, task, schema + preprocessor state, label map, model spec,
                           metrics, baselines, reference statistics, versions, weight checksums
      weights.safetensors  the model's state_dict

No pickle anywhere: loading reads JSON and raw tensors and rebuilds the network from the spec with
dlpipe's own code, so a bundle can never run code of its own.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlpipe import __version__
from dlpipe.core.errors import BundleError, InvalidInputError
from dlpipe.core.files import atomic_dir, write_json
from dlpipe.data.inputs import InputAdapter, adapter_for
from dlpipe.evaluation.scoring import score
from dlpipe.models.registry import build_model
from dlpipe.tasks.task import Task
from dlpipe.training.trainer import predict_logits

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Bundle", "load_bundle", "load_checked_state", "read_manifest", "read_weights", "sha256_file", "FORMAT", "FORMAT_VERSION"]

FORMAT = "dlpipe-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"


class Bundle:
    """A trained model with everything needed to use it on raw data.

    Build one with :func:`dlpipe.train` (``run.bundle``) or :func:`load_bundle`.
    """

    def __init__(self, manifest: dict[str, Any], model: nn.Module) -> None:
        self.manifest = manifest
        self.model = model.eval()
        self.task = Task.from_dict(manifest["task"])
        # The manifest's "kind" (table, image, series, ...) picks the code that turns raw input
        # into model inputs; its state is JSON, never code.
        self.preprocessor: InputAdapter = adapter_for(manifest.get("kind", "table")).from_state(manifest["preprocessor"])

    # ------------------------------------------------------------------ describing
    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    @property
    def classes(self) -> list[Any] | None:
        return self.task.classes

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "table"))

    @property
    def input_columns(self) -> list[str]:
        return list(self.preprocessor.input_names)

    def __repr__(self) -> str:
        return f"Bundle(kind={self.kind!r}, task={self.task.kind!r}, target={self.task.target!r}, model={self.manifest['model_spec']['family']!r})"

    # ------------------------------------------------------------------ using
    def outputs(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Model outputs (logits) for already-preprocessed inputs."""
        return predict_logits(self.model, [torch.from_numpy(a) for a in inputs]).float().cpu().numpy()

    def predict(self, data: Any) -> pd.DataFrame:
        """Raw input in, a DataFrame out (tables: a DataFrame, a list of dicts or a CSV/Parquet path).

        The column ``prediction`` holds labels (classification) or values in the target's units
        (regression); classification adds one ``proba_<class>`` column per class.
        """
        import pandas as pd

        custom = getattr(self.preprocessor, "predict_bundle", None)
        if custom is not None:  # kinds whose output is not one row per input row (forecasts)
            return custom(self, data)  # type: ignore[no-any-return]
        self._require_predictive("predict")
        batch = self.preprocessor.prepare(data)
        labels, proba = self.task.decode(self.outputs(batch.inputs))
        out = pd.DataFrame({"prediction": labels})
        if proba is not None and self.task.classes is not None:
            for i, c in enumerate(self.task.classes):
                out[f"proba_{c}"] = proba[:, i]
        return out

    def _require_predictive(self, verb: str) -> None:
        if self.task.kind not in ("regression", "binary", "multiclass"):
            raise InvalidInputError(
                f"this bundle's task is {self.task.kind!r}, which has no labels or values to {verb}; "
                "use `dlpipe embed`, `dlpipe anomalies` or `dlpipe sample` (dl.embed, dl.score_anomalies, dl.sample) instead."
            )

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Score the model and its stored baselines on labelled input (tables: rows with the target column)."""
        custom = getattr(self.preprocessor, "evaluate_bundle", None)
        if custom is not None:  # kinds scored otherwise (forecasts: every window, beside naive)
            return custom(self, data)  # type: ignore[no-any-return]
        self._require_predictive("evaluate")
        batch = self.preprocessor.prepare(data, with_target=True)
        if batch.targets is None:
            raise InvalidInputError(
                f"evaluation data has no target {self.task.target!r}; pass labelled data, or use predict() for unlabelled input."
            )
        keep = batch.targets.notna().to_numpy()
        y = self.task.encode(batch.targets[keep], what="evaluation target")
        values, proba = self.task.decode(self.outputs([a[keep] for a in batch.inputs]))
        if proba is None:
            y_true, output = y.reshape(-1) * self.task.y_std + self.task.y_mean, values
        else:
            y_true, output = y.reshape(-1).astype(np.int64), proba
        x_base = batch.baseline_features[keep] if batch.baseline_features is not None else np.zeros((int(keep.sum()), 0))
        return score(self.task.kind, y_true, output, x_base, self.manifest.get("baselines", {}), self.task.classes)

    # ------------------------------------------------------------------ saving
    def save(self, path: str | Path) -> Path:
        """Write the bundle folder atomically (a temporary name, renamed when complete)."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_dir(path) as tmp:
            save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
            manifest = dict(self.manifest)
            manifest["weights"] = {
                "file": WEIGHTS,
                "sha256": sha256_file(tmp / WEIGHTS),
                "tensors": {k: list(v.shape) for k, v in state.items()},
            }
            write_json(tmp / MANIFEST, manifest)
        self.manifest = manifest
        return Path(path)


def make_manifest(**parts: Any) -> dict[str, Any]:
    """The manifest skeleton with format and version stamps filled in."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {
            "dlpipe": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        **parts,
    }


# Bundle kinds whose folder holds other bundles: kind -> "module:loader(root, manifest)" (data only, never code).
_COMPOSITE: dict[str, str] = {"ensemble": "dlpipe.ensembles.ensemble:load_ensemble"}


def read_manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The bundle folder and its manifest, checked: present, JSON, dlpipe's format, this format version."""
    root = Path(path)
    if root.is_file() and root.name == MANIFEST:
        root = root.parent
    if not (root / MANIFEST).is_file():
        raise BundleError(
            f"{str(root)!r} is not a dlpipe bundle (no {MANIFEST}); pass the bundle folder, e.g. runs/<name>/bundle."
        )
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"the manifest of bundle {str(root)!r} is not valid JSON ({exc}); the bundle is damaged, so re-save it.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{str(root / MANIFEST)!r} is not a dlpipe bundle manifest; pass a folder written by dlpipe.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"bundle {str(root)!r} has format version {version!r}, but dlpipe {__version__} reads version {FORMAT_VERSION}; "
            "load it with the dlpipe version that wrote it, or retrain."
        )
    return root, manifest


def read_weights(root: Path, manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The bundle's tensors, after checking the file exists and matches its recorded checksum (safetensors: no code runs)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = root / manifest.get("weights", {}).get("file", WEIGHTS)
    if not weights.is_file():
        raise BundleError(f"bundle {str(root)!r} has no weights file {weights.name!r}; the bundle is incomplete, so re-save it.")
    expected = manifest.get("weights", {}).get("sha256")
    if expected and sha256_file(weights) != expected:
        raise BundleError(f"the weights of bundle {str(root)!r} do not match their recorded checksum; the file is corrupted, so re-save or retrain.")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"the weights of bundle {str(root)!r} could not be read ({exc}); the file is corrupted, so re-save or retrain.") from None


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder, checking format version, checksum, tensor names and shapes.

    Raises:
        BundleError: the folder is not a bundle, is of another format version, or its weights are
            missing, damaged or do not fit the model the manifest describes.
    """
    root, manifest = read_manifest(path)
    if manifest.get("kind") in _COMPOSITE:  # a bundle made of bundles (an ensemble) loads its members itself
        module, _, name = _COMPOSITE[manifest["kind"]].partition(":")
        return getattr(importlib.import_module(module), name)(root, manifest)  # type: ignore[no-any-return]
    model = build_model(manifest["model_spec"])
    load_checked_state(model, read_weights(root, manifest), root)
    return Bundle(manifest, model)


def load_checked_state(model: nn.Module, state: dict[str, torch.Tensor], root: Path) -> None:
    """Load ``state`` into ``model`` after checking that names and shapes match exactly (one clear sentence if not)."""
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in state:
            raise BundleError(f"bundle {str(root)!r} lacks the weight {key!r} that its model needs; the bundle does not match its manifest.")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise BundleError(
                f"weight {key!r} in bundle {str(root)!r} has shape {tuple(state[key].shape)} but the model expects {tuple(tensor.shape)}; the bundle does not match its manifest."
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise BundleError(f"bundle {str(root)!r} holds weights the model does not have, such as {extra[0]!r}; the bundle does not match its manifest.")
    model.load_state_dict(state)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
