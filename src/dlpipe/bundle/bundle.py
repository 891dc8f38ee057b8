"""The bundle: what ``predict`` needs and nothing else, as a folder of JSON and safetensors.

    bundle/
      manifest.json        format version, task, schema + preprocessor state, label map, model spec,
                           metrics, baselines, reference statistics, versions, weight checksums
      weights.safetensors  the model's state_dict
      MODEL_CARD.md        data, scores beside baselines, calibration, coverage, use, limitations
                           (bundle/card.py; written for people, never read by a loader)

No pickle anywhere: loading reads JSON and raw tensors and rebuilds the network from the spec with
dlpipe's own code, so a bundle can never run code of its own.

Loading trusts nothing in the folder: every file the manifest names (the weights, an ensemble's
members) must resolve inside it (no absolute path, ``..`` or symbolic link out; the weights file
itself is a regular file, not a link), checked before anything under that name is opened; the
manifest is at most ``MAX_MANIFEST_BYTES`` (checked before reading), UTF-8 JSON, and every key the
loaders read has its type checked in one place (:func:`check_manifest`); weights holding NaN or
infinity are refused. Each failure is one :class:`BundleError` sentence (the CLI exits 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import stat
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlpipe import __version__
from dlpipe.bundle.card import write_model_card
from dlpipe.core.errors import BundleError, DlpipeError, InvalidInputError
from dlpipe.core.extensions import BUNDLE_LOADERS, BUNDLE_MODELS, load_target
from dlpipe.core.files import atomic_dir, write_json
from dlpipe.data.inputs import InputAdapter, adapter_for
from dlpipe.evaluation.metrics import SCORED_METRICS
from dlpipe.evaluation.scoring import score
from dlpipe.models.registry import build_model
from dlpipe.tasks.task import Task
from dlpipe.training.trainer import predict_logits

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Bundle",
    "load_bundle",
    "load_checked_state",
    "read_manifest",
    "read_weights",
    "register_composite",
    "round_to_float16",
    "resolve_inside",
    "sha256_file",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_MANIFEST_BYTES",
]

FORMAT = "dlpipe-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
# A manifest is JSON metadata: the largest dlpipe writes (hundreds of columns with their categories and
# reference histograms) are a few MB. Anything bigger is refused before it is read.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


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
        self.preprocessor: InputAdapter = adapter_for(manifest.get("kind", "table")).from_state(
            manifest["preprocessor"]
        )

    # ------------------------------------------------------------------ describing
    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics") or {}

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
        try:
            return (
                predict_logits(self.model, [torch.from_numpy(a) for a in inputs])
                .float()
                .cpu()
                .numpy()
            )
        except RuntimeError as exc:
            text = str(exc)
            if "shape" not in text and "size" not in text:
                raise
            # the preprocessor checked the input's columns, so inputs the model cannot take mean its state and
            # the model spec disagree (an edited manifest)
            raise BundleError(
                f"this bundle's prepared inputs {[tuple(a.shape) for a in inputs]} do not fit its model ({_reason(exc)}); "
                "its `preprocessor` and `model_spec` disagree, so re-save the bundle with dlpipe or retrain."
            ) from None

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
        flags = None
        if self.kind == "table":  # read once: the range checks need the raw values
            from dlpipe.data.ranges import flag_frame
            from dlpipe.data.tabular import read_table

            data = read_table(data, what="input")
            flags = flag_frame(
                data, self.input_columns, self.manifest.get("reference_statistics") or {}
            )
        batch = self._prepare(data)
        labels, proba = self.task.decode(self.outputs(batch.inputs))
        out = pd.DataFrame({"prediction": labels})
        if proba is not None and self.task.classes is not None:
            for i, c in enumerate(self.task.classes):
                out[f"proba_{c}"] = proba[:, i]
        intervals = self.manifest.get("intervals")
        if proba is None and isinstance(intervals, dict):
            from dlpipe.evaluation.conformal import interval_columns

            for name, values in interval_columns(labels, intervals).items():
                out[name] = values
        if flags is not None and flags.any:
            import warnings

            from dlpipe.core.errors import DataWarning
            from dlpipe.data.ranges import describe_flags

            out["warnings"] = flags.column()
            warnings.warn(DataWarning(describe_flags(flags)), stacklevel=2)
        return out

    def explain(self, data: Any, **options: Any) -> Any:
        """Why the model predicts what it does on ``data``: for table rows, permutation importance (when
        ``data`` holds the target) and integrated-gradients attributions (an ``Explanation``); for images,
        sequences and text, attributions per pixel, time step or token (an ``InputExplanation``). See
        :func:`dlpipe.explain` for the options and what is returned."""
        from dlpipe.bundle.explain import explain

        return explain(self, data, **options)

    def _prepare(self, data: Any, *, with_target: bool = False) -> Any:
        """The preprocessor's batch; a raw error from its state (a key missing or of another type in an edited
        manifest: the state is read lazily) becomes one BundleError sentence. Input errors pass unchanged."""
        try:
            return self.preprocessor.prepare(data, with_target=with_target)
        except DlpipeError:
            raise
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            raise BundleError(
                f"this bundle's `preprocessor` state (kind {self.kind!r}) could not be applied ({type(exc).__name__}: {_reason(exc)}); "
                "if its manifest was edited, re-save the bundle with dlpipe or retrain, otherwise report it as a dlpipe bug."
            ) from None

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
        batch = self._prepare(data, with_target=True)
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
        x_base = (
            batch.baseline_features[keep]
            if batch.baseline_features is not None
            else np.zeros((int(keep.sum()), 0))
        )
        return score(
            self.task.kind,
            y_true,
            output,
            x_base,
            self.manifest.get("baselines", {}),
            self.task.classes,
            metric=self._primary_metric(),
        )

    def _primary_metric(self) -> str | None:
        """The metric the run was judged on (so a bundle keeps its verdict's metric); None: the task's default."""
        stored = ((self.manifest.get("metrics") or {}).get("test") or {}).get("primary_metric")
        return stored if stored in SCORED_METRICS.get(self.task.kind, ()) else None

    # ------------------------------------------------------------------ saving
    def save(self, path: str | Path, *, overwrite: bool = False, what: str = "`path`") -> Path:
        """Write the bundle folder atomically (a temporary name, renamed when complete).

        An existing ``path`` is replaced only when it is a bundle dlpipe wrote and ``overwrite`` is true.
        """
        from safetensors.torch import save_file

        own = self.model.state_dict()
        state = {k: _compact(v.detach().cpu().contiguous()) for k, v in own.items()}
        with atomic_dir(
            path, overwrite=overwrite, what=what
        ) as tmp:  # `what`: the caller's name for it
            save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
            manifest = dict(self.manifest)
            manifest["weights"] = {
                "file": WEIGHTS,
                "sha256": sha256_file(tmp / WEIGHTS),
                "tensors": {k: list(v.shape) for k, v in state.items()},
            }
            for short, dtype in (("float16", torch.float16), ("int32", torch.int32)):
                names = [k for k, v in state.items() if v.dtype == dtype and own[k].dtype != dtype]
                if names:  # read back into the model's own dtype by load_state_dict, unchanged
                    manifest["weights"][f"stored_{short}"] = names
            write_json(tmp / MANIFEST, manifest)
            write_model_card(tmp, manifest)  # documentation only: loading never opens it
        self.manifest = manifest
        return Path(path)


# tensors of at least this many values are stored at half the bytes when that loses nothing (_compact)
COMPACT_MIN_VALUES = 4096


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` at half the bytes when that loses nothing, else unchanged (storage only): a large
    float32 tensor whose every value float16 holds exactly (a text network's first layer after
    :func:`round_to_float16`) as float16, a large int64 tensor within int32's range (a vocabulary's
    ids) as int32."""
    if tensor.numel() < COMPACT_MIN_VALUES:
        return tensor
    if tensor.dtype == torch.float32:
        half = tensor.half()
        return half if torch.equal(half.float(), tensor) else tensor
    if tensor.dtype == torch.int64:
        info = torch.iinfo(torch.int32)
        if int(tensor.min()) >= info.min and int(tensor.max()) <= info.max:
            return tensor.int()
    return tensor


def round_to_float16(model: nn.Module) -> list[str]:
    """Round, in place, the parameters that ``model``'s modules list in ``stored_float16`` (names inside
    the module) to float16's precision, so the bundle stores them at half the size (:func:`_compact`)
    and predicts exactly what the run evaluated. A tensor with a value beyond float16's range is left
    as it is. Returns the rounded names (as in ``model.state_dict()``)."""
    done = []
    with torch.no_grad():
        for prefix, module in model.named_modules():
            for name in getattr(module, "stored_float16", ()):
                try:
                    tensor = module.get_parameter(name)
                except AttributeError:  # an optional part the module was built without
                    continue
                if tensor.dtype != torch.float32:
                    continue
                if bool(tensor.abs().max() < torch.finfo(torch.float16).max):
                    tensor.copy_(tensor.half().float())
                    done.append(f"{prefix}.{name}" if prefix else name)
    return done


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


# Bundle kinds loaded by their own code: kind -> loader(root, manifest) or "module:loader". The built-in
# ones live above this layer (an ensemble holds other bundles, an RL agent's model_spec is a policy
# network or a Q-table), so dlpipe._builtins registers them, by name.
_COMPOSITE = BUNDLE_LOADERS


def register_composite(kind: str, target: str | Callable[[Path, dict[str, Any]], Bundle]) -> None:
    """Load bundles whose manifest has ``kind`` with ``target(root, manifest)`` instead of from weights.

    ``target`` is the loader or ``"module:loader"`` (imported only when such a bundle is loaded). The
    bundle names only its kind: loading one picks a registered loader and never imports code the bundle names.
    """
    _COMPOSITE[kind] = target


def resolve_inside(root: Path, name: Any, what: str) -> Path:
    """``root / name`` resolved, after checking that it stays inside the bundle folder ``root``.

    Refused (one sentence) before anything is opened: a name that is not a non-empty relative path, an
    absolute path, a ``..`` part, or a symbolic link (of the name or any folder on the way) whose target
    leaves ``root``. Only ``lstat``/``readlink`` run here (``Path.resolve``), never ``open``.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BundleError(
            f"bundle {str(root)!r} names its {what} as {_show(name)}, which is not a file name; the manifest is damaged, so re-save the bundle with dlpipe."
        )
    rel = PurePath(name)
    if (
        rel.is_absolute()
        or rel.anchor
        or name.startswith(("/", "\\"))
        or ".." in rel.parts
        or ".." in name.replace("\\", "/").split("/")
    ):
        raise BundleError(
            f"bundle {str(root)!r} names its {what} as {name!r}, a path outside the bundle folder; a bundle may only name files inside "
            "its own folder, so this one is damaged or unsafe and is not loaded."
        )
    try:
        base, target = root.resolve(), (root / rel).resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        raise BundleError(
            f"bundle {str(root)!r} names its {what} as {name!r}, which is a loop of symbolic links; the bundle is damaged or unsafe and is not loaded."
        ) from None
    if target == base or not target.is_relative_to(base):
        raise BundleError(
            f"bundle {str(root)!r} names its {what} as {name!r}, which leads to {str(target)!r} outside the bundle folder (a symbolic link); "
            "a bundle may only name files inside its own folder, so this one is damaged or unsafe and is not loaded."
        )
    return target


def _regular_file(root: Path, name: str, path: Path, what: str) -> None:
    """Refuse ``root / name`` unless it is a regular file and not itself a symbolic link (lstat only)."""
    try:
        mode = os.lstat(root / name).st_mode
    except OSError:
        raise BundleError(
            f"bundle {str(root)!r} has no {what} {name!r}; the bundle is incomplete, so re-save it."
        ) from None
    if stat.S_ISLNK(mode):
        raise BundleError(
            f"the {what} {name!r} of bundle {str(root)!r} is a symbolic link, which a bundle may not hold; copy the real file into the bundle folder, or re-save the bundle."
        )
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise BundleError(
            f"the {what} {name!r} of bundle {str(root)!r} is not a regular file; the bundle is damaged, so re-save it."
        )


# What a loader that expects one kind calls it when the manifest declares another.
_KIND_NAMES = {"rl": "an RL agent", "ensemble": "an ensemble"}


def read_manifest(path: str | Path, *, kind: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The bundle folder and its manifest, checked: inside the folder, at most ``MAX_MANIFEST_BYTES``,
    UTF-8 JSON, dlpipe's format and version, of ``kind`` when given, every key of the right type
    (:func:`check_manifest`)."""
    root = Path(path)
    if root.name == MANIFEST and not root.is_dir():
        root = root.parent
    if not os.path.lexists(root / MANIFEST):
        raise BundleError(
            f"{str(root)!r} is not a dlpipe bundle (no {MANIFEST}); pass the bundle folder, e.g. runs/<name>/bundle."
        )
    where = resolve_inside(root, MANIFEST, "manifest")
    _regular_file(root, MANIFEST, where, "manifest")
    size = os.stat(where).st_size
    if size > MAX_MANIFEST_BYTES:
        raise BundleError(
            f"the manifest of bundle {str(root)!r} is {size / 2**20:.1f} MiB, above the {MAX_MANIFEST_BYTES // 2**20} MiB a dlpipe manifest may have, "
            "so it was not read; the bundle is damaged or not dlpipe's, so re-save it."
        )
    with open(where, "rb") as fh:
        raw = fh.read(MAX_MANIFEST_BYTES + 1)  # bounded even if the file grew since stat
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(
            f"the manifest of bundle {str(root)!r} is larger than {MAX_MANIFEST_BYTES // 2**20} MiB, so it was not read; the bundle is damaged, so re-save it."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(
            f"the manifest of bundle {str(root)!r} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); the bundle is damaged, so re-save it."
        ) from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"the manifest of bundle {str(root)!r} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); the bundle is damaged, so re-save it."
        ) from None
    except RecursionError:
        raise BundleError(
            f"the manifest of bundle {str(root)!r} nests its JSON too deeply to be a dlpipe manifest; the bundle is damaged, so re-save it."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(
            f"{str(root / MANIFEST)!r} is not a dlpipe bundle manifest; pass a folder written by dlpipe."
        )
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise BundleError(
            f"bundle {str(root)!r} has format version {_show(version)}, but dlpipe {__version__} reads version {FORMAT_VERSION}; "
            "load it with the dlpipe version that wrote it, or retrain."
        )
    declared = manifest.get("kind", "table")
    if kind is not None and declared != kind:
        raise BundleError(
            f"bundle {str(root)!r} is of kind {_show(declared)}, not {_KIND_NAMES.get(kind, f'a {kind} bundle')}; load it with the loader "
            "for its kind (dlpipe.load_bundle for model bundles and ensembles, dlpipe.rl.load_agent for agents written by `dlpipe rl train`)."
        )
    check_manifest(root, manifest)
    return root, manifest


# ---------------------------------------------------------------------- the manifest's schema
# One place that knows every top-level key a manifest may hold and what it must be; a loader can then
# index the manifest without KeyError/TypeError. Nested state (preprocessor, model_spec) is checked by
# the code that reads it; its failures are turned into BundleError in load_bundle.
def _show(value: Any, limit: int = 60) -> str:
    """A value for a message: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_finite(v: Any) -> bool:
    return _is_number(v) and math.isfinite(v)


def _finite_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_finite(x) for x in v)


_OBJECT = (lambda v: isinstance(v, dict), "an object ({...})")
_OBJECT_OR_NULL = (lambda v: v is None or isinstance(v, dict), "an object ({...}) or null")
_STRING = (lambda v: isinstance(v, str), "a string")
_NAMES = (
    lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "a list of names or null",
)

_COMMON: dict[str, tuple[Any, str]] = {
    "kind": _STRING,
    "versions": _OBJECT,
    "metrics": _OBJECT_OR_NULL,
    "config": _OBJECT_OR_NULL,
    "baselines": _OBJECT_OR_NULL,
    "reference_statistics": _OBJECT,
    "feature_names": _NAMES,
    "generative": _OBJECT,
    "explain": _OBJECT,
    "intervals": (
        lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("levels"), list)
            and isinstance(v.get("half_widths"), list)
            and len(v["levels"]) == len(v["half_widths"])
            and all(_is_finite(x) and 0 < x < 1 for x in v["levels"])
            and all(x is None or (_is_finite(x) and x >= 0) for x in v["half_widths"])
        ),
        "an object with `levels` (numbers between 0 and 1) and as many `half_widths` (non-negative numbers or null)",
    ),
}
_TASK: dict[str, tuple[Any, str]] = {
    "kind": _STRING,
    "target": _STRING,
    "classes": (lambda v: v is None or isinstance(v, list), "a list of class labels or null"),
    "y_mean": (_is_finite, "a finite number"),
    "y_std": (lambda v: _is_finite(v) and v != 0, "a finite non-zero number"),
    "loss": _STRING,
    "temperature": (lambda v: _is_finite(v) and v > 0, "a finite positive number"),
    "class_counts": (
        lambda v: (
            isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        ),
        "a list of integers",
    ),
}
_WEIGHTS: dict[str, tuple[Any, str]] = {
    "file": _STRING,
    "sha256": (
        lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
        "a 64-digit hex SHA-256",
    ),
    "tensors": (
        lambda v: (
            isinstance(v, dict)
            and all(isinstance(x, list) and all(isinstance(d, int) for d in x) for x in v.values())
        ),
        "an object of tensor names to shapes",
    ),
}


def _refuse(root: Path, key: str, value: Any, expected: str, missing: bool = False) -> BundleError:
    held = "is missing" if missing else f"holds {_show(value)} ({_json_type(value)})"
    return BundleError(
        f"the manifest of bundle {str(root)!r} is damaged: `{key}` {held} but must be {expected}; re-save the bundle with dlpipe, or retrain."
    )


def _check_keys(
    root: Path,
    obj: dict[str, Any],
    rules: dict[str, tuple[Any, str]],
    *,
    prefix: str = "",
    required: tuple[str, ...] = (),
    known: tuple[str, ...] | None = None,
) -> None:
    for key in required:
        if key not in obj:
            raise _refuse(root, prefix + key, None, rules[key][1], missing=True)
    for key, (
        ok,
        expected,
    ) in rules.items():  # in the rules' order, so one damage gives one message
        if key in obj and not ok(obj[key]):
            raise _refuse(root, prefix + key, obj[key], expected)
    for key in obj:
        if known is not None and key not in known:
            raise BundleError(
                f"the manifest of bundle {str(root)!r} is damaged: `{prefix}{key}` is not a key dlpipe writes (known: {', '.join(known)}); "
                "re-save the bundle with dlpipe, or retrain."
            )


def check_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Check every top-level key the loaders read, raising one :class:`BundleError` sentence naming the key,
    what it holds and what it must be. ``format`` and ``format_version`` are checked by :func:`read_manifest`."""
    _check_keys(root, manifest, _COMMON)
    kind = manifest.get("kind", "table")
    needs: dict[str, tuple[Any, str]] = {"task": _OBJECT}
    if kind == "ensemble":
        members = manifest.get("members")
        needs |= {
            "method": (lambda v: v in ("soft", "stack"), "'soft' or 'stack'"),
            "members": (
                lambda v: (
                    isinstance(v, list) and len(v) >= 2 and all(isinstance(x, str) for x in v)
                ),
                "a list of at least 2 member folder names",
            ),
            "weights": (
                lambda v: (
                    _finite_list(v)
                    and all(x >= 0 for x in v)
                    and sum(v) > 0
                    and (not isinstance(members, list) or len(v) == len(members))
                ),
                "a list of finite non-negative numbers, one per member, with a positive sum",
            ),
        }
        if manifest.get("method") == "stack":
            needs["meta"] = _OBJECT
    elif kind == "rl":
        needs = {"algo": _STRING, "env": _OBJECT, "model_spec": _OBJECT, "weights": _OBJECT}
    else:
        needs |= {"preprocessor": _OBJECT, "model_spec": _OBJECT, "weights": _OBJECT}
    _check_keys(root, manifest, needs, required=tuple(needs))
    if "model_spec" in needs:
        _check_keys(
            root,
            manifest["model_spec"],
            {"family": _STRING},
            prefix="model_spec.",
            required=("family",),
        )
    if "weights" in needs and kind != "ensemble":
        _check_keys(
            root, manifest["weights"], _WEIGHTS, prefix="weights.", required=("file", "sha256")
        )
    if "task" in needs:
        fields = tuple(f.name for f in dataclasses.fields(Task))  # Task(**task) takes exactly these
        _check_keys(
            root, manifest["task"], _TASK, prefix="task.", required=("kind", "target"), known=fields
        )
        _check_task_fits(root, manifest["task"], manifest.get("model_spec"))
    if "meta" in needs:
        meta = manifest["meta"]
        rules = {
            "coef": (
                lambda v: (
                    isinstance(v, list) and len(v) > 0 and all(_finite_list(r) and r for r in v)
                ),
                "a non-empty list of rows of finite numbers",
            ),
            "intercept": (_finite_list, "a list of finite numbers"),
        }
        _check_keys(root, meta, rules, prefix="meta.", required=("coef", "intercept"))
        widths = {len(r) for r in meta["coef"]}
        if len(widths) != 1 or len(meta["intercept"]) != len(meta["coef"]):
            raise _refuse(
                root,
                "meta.coef",
                meta["coef"],
                f"{len(meta['intercept'])} rows of one width (one per `meta.intercept` entry)",
            )


def _check_task_fits(root: Path, task: dict[str, Any], spec: Any) -> None:
    """A classification task has its labels (two for binary), and the model's output width fits the task."""
    kind, classes = task["kind"], task.get("classes")
    if kind in ("binary", "multiclass"):
        wanted = (
            "a list of exactly 2 class labels"
            if kind == "binary"
            else "a list of at least 2 class labels"
        )
        n = (
            len(classes)
            if isinstance(classes, list)
            and all(isinstance(c, (str, int, float, bool)) for c in classes)
            else 0
        )
        if n < 2 or (kind == "binary" and n != 2):
            raise _refuse(
                root,
                "task.classes",
                classes,
                f"{wanted} (strings or numbers) for task.kind {kind!r}",
            )
    n_out = spec.get("n_outputs") if isinstance(spec, dict) else None
    if (
        kind in ("regression", "binary", "multiclass")
        and isinstance(n_out, int)
        and not isinstance(n_out, bool)
    ):
        wanted_n = len(classes or ()) if kind == "multiclass" else 1
        if n_out != wanted_n:
            raise _refuse(
                root,
                "model_spec.n_outputs",
                n_out,
                f"{wanted_n} for a {kind} task{f' of {wanted_n} classes' if kind == 'multiclass' else ''}",
            )


def read_weights(root: Path, manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The bundle's tensors, after checking the file lies inside the bundle folder (no `..`, absolute path or
    symbolic link), matches its recorded checksum and holds only finite numbers (safetensors: no code runs)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    entry = manifest.get("weights")
    name = entry.get("file", WEIGHTS) if isinstance(entry, dict) else WEIGHTS
    weights = resolve_inside(
        root, name, "weights file"
    )  # before anything under that name is opened
    _regular_file(root, name, weights, "weights file")
    expected = entry.get("sha256") if isinstance(entry, dict) else None
    if expected and sha256_file(weights) != expected:
        raise BundleError(
            f"the weights of bundle {str(root)!r} do not match their recorded checksum; the file is corrupted, so re-save or retrain."
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(
            f"the weights of bundle {str(root)!r} could not be read ({exc}); the file is corrupted, so re-save or retrain."
        ) from None
    for key, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise BundleError(
                    f"weight {key!r} of bundle {str(root)!r} holds {bad} NaN or infinite value{'s' if bad > 1 else ''}, so its predictions would be NaN; "
                    "the bundle is damaged (or was saved from a diverged run), so retrain it."
                )
    return state


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder, checking format version, checksum, tensor names and shapes.

    Every file the manifest names must lie inside the folder; nothing from the bundle is executed (JSON
    and safetensors only). The compiled kernels the model would call in inference are built here, not
    in its first prediction.

    Raises:
        BundleError: the folder is not a bundle, is of another format version, its manifest is malformed
            or names a file outside the folder, or its weights are missing, damaged, non-finite or do not
            fit the model the manifest describes.
    """
    root, manifest = read_manifest(path)
    if (
        manifest.get("kind") in _COMPOSITE
    ):  # a bundle made of bundles (an ensemble) loads its members itself
        return load_target(_COMPOSITE[manifest["kind"]])(root, manifest)
    model = _build_checked(root, manifest["model_spec"])
    load_checked_state(model, read_weights(root, manifest), root)
    try:
        bundle = Bundle(manifest, model)
    except BundleError:
        raise
    except (DlpipeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BundleError(
            f"the manifest of bundle {str(root)!r} is damaged: its `preprocessor` state for kind {manifest.get('kind', 'table')!r} cannot be read "
            f"({_reason(exc)}); re-save the bundle with dlpipe, or retrain."
        ) from None
    from dlpipe.models.fused import warm_kernels

    warm_kernels(model)
    return bundle


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"the key {_show(exc.args[0] if exc.args else None)} is missing"
    text = " ".join(str(exc).split()).rstrip(".")
    return (text if len(text) <= 300 else text[:297] + "...") if text else type(exc).__name__


def _build_checked(root: Path, spec: dict[str, Any]) -> nn.Module:
    """The model ``spec`` describes, or a BundleError naming `model_spec` when dlpipe cannot build it."""
    try:
        family = spec.get("family")
        if family in BUNDLE_MODELS:  # a family built by a package above this layer (dlpipe.keras)
            return load_target(BUNDLE_MODELS[family])(spec)  # type: ignore[no-any-return]
        return build_model(
            spec, for_training=False
        )  # its weights must fit in memory (checked on the meta device first)
    except (DlpipeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BundleError(
            f"the manifest of bundle {str(root)!r} is damaged: its `model_spec` (family {spec.get('family')!r}) describes no model dlpipe can build "
            f"({_reason(exc)}); re-save the bundle with dlpipe, or retrain."
        ) from None


def load_checked_state(model: nn.Module, state: dict[str, torch.Tensor], root: Path) -> None:
    """Load ``state`` into ``model`` after checking that names and shapes match exactly (one clear sentence if not).

    A model with an ``upgrade_state(state)`` method first maps a state saved by an earlier version
    of its family onto its own keys (nbeats: the last block's dropped backcast layer).
    """
    upgrade = getattr(model, "upgrade_state", None)
    if callable(upgrade):
        state = upgrade(state)
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in state:
            raise BundleError(
                f"bundle {str(root)!r} lacks the weight {key!r} that its model needs; the bundle does not match its manifest."
            )
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise BundleError(
                f"weight {key!r} in bundle {str(root)!r} has shape {tuple(state[key].shape)} but the model expects {tuple(tensor.shape)}; the bundle does not match its manifest."
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise BundleError(
            f"bundle {str(root)!r} holds weights the model does not have, such as {extra[0]!r}; the bundle does not match its manifest."
        )
    model.load_state_dict(state)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
