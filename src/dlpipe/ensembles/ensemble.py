"""An ensemble is itself a bundle (kind ``"ensemble"``): it embeds its members and predicts, evaluates,
saves and loads like any bundle.

    ensemble/
      manifest.json     kind "ensemble", task, method, weights, meta-model coefficients (JSON numbers)
      members/0/ ...    each member bundle, embedded as saved (manifest.json + weights.safetensors)

``soft``: the weighted mean of the members' class probabilities (classification) or values
(regression). ``stack``: a logistic (classification) or ridge (regression) meta-model on the
members' outputs, fitted on out-of-fold predictions: each member's recipe (its stored config) is
retrained on k-1 folds of the given table and predicts the held-out fold, so the meta-model never
sees an output a member made for a row it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.bundle.bundle import (
    FORMAT,
    FORMAT_VERSION,
    Bundle,
    load_bundle,
    make_manifest,
    resolve_inside,
)
from dlpipe.bundle.card import write_model_card
from dlpipe.core.errors import BundleError, InvalidConfigError, InvalidInputError
from dlpipe.core.files import atomic_dir, write_json
from dlpipe.data.inputs import PreparedBatch
from dlpipe.tasks.task import Task

__all__ = ["EnsembleBundle", "build_ensemble", "load_ensemble"]

METHODS = ("soft", "stack")
_EPS = 1e-7


class EnsembleInputs:
    """The input adapter of an ensemble: every member prepares the raw input its own way."""

    def __init__(self, members: Sequence[Bundle]) -> None:
        self.members = list(members)
        self.counts: list[int] = []

    @property
    def input_names(self) -> list[str]:
        return list(self.members[0].preprocessor.input_names)

    def state(self) -> dict[str, Any]:
        return {"members": len(self.members)}

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        batches = [m.preprocessor.prepare(data, with_target=with_target) for m in self.members]
        self.counts = [len(b.inputs) for b in batches]
        first = batches[0]
        return PreparedBatch(
            [a for b in batches for a in b.inputs],
            first.targets,
            first.baseline_features,
            first.index,
        )


class EnsembleBundle(Bundle):
    """A bundle whose outputs combine its member bundles' outputs (see the module docstring)."""

    def __init__(self, manifest: dict[str, Any], members: Sequence[Bundle]) -> None:
        self.manifest = manifest
        self.members = list(members)
        self.task = Task.from_dict(manifest["task"])
        # each member's probabilities are already calibrated by its own temperature (member_outputs);
        # the combined output is not scaled again (the task dict may carry the first member's)
        self.task.temperature = 1.0
        self.model = self.members[0].model
        self.preprocessor: EnsembleInputs = EnsembleInputs(self.members)  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EnsembleBundle(method={self.method!r}, members={len(self.members)}, task={self.task.kind!r}, target={self.task.target!r})"

    @property
    def method(self) -> str:
        return str(self.manifest["method"])

    def member_outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Each member's decoded output: class probabilities (n, C) or values (n,)."""
        counts = self.preprocessor.counts or [len(inputs) // len(self.members)] * len(self.members)
        out, start = [], 0
        for m, k in zip(self.members, counts):
            values, proba = m.task.decode(m.outputs(inputs[start : start + k]))
            out.append(proba if proba is not None else values)
            start += k
        return out

    def outputs(self, inputs: list[np.ndarray]) -> np.ndarray:
        """The ensemble's output in the task's logit space, so ``task.decode`` turns it into labels/probabilities."""
        parts = self.member_outputs(inputs)
        kind = self.task.kind
        if self.method == "stack":
            meta = self.manifest["meta"]
            z = _meta_features(parts, kind) @ np.asarray(meta["coef"]).T + np.asarray(
                meta["intercept"]
            )
            if kind == "regression":
                return ((z.reshape(-1) - self.task.y_mean) / self.task.y_std)[:, None]
            return z.reshape(len(z), -1)
        w = np.asarray(self.manifest["weights"], dtype=np.float64)
        avg = sum(wi * p for wi, p in zip(w / w.sum(), parts))
        if kind == "regression":
            return ((np.asarray(avg) - self.task.y_mean) / self.task.y_std)[:, None]
        p = np.clip(np.asarray(avg), _EPS, 1 - _EPS)
        if kind == "binary":
            return np.log(p[:, 1] / p[:, 0])[:, None]
        return np.log(p)

    def save(self, path: str | Path, *, overwrite: bool = False, what: str = "`out`") -> Path:
        """Write the ensemble folder (members embedded) atomically.

        An existing ``path`` is replaced only if it is an earlier dlpipe ensemble folder and ``overwrite``
        is True; anything else there is refused and left untouched.
        """
        with atomic_dir(path, overwrite=overwrite, kind="ensemble", what=what) as tmp:
            for i, m in enumerate(self.members):
                m.save(tmp / "members" / str(i))
            write_json(tmp / "manifest.json", self.manifest)
            write_model_card(tmp, self.manifest)
        return Path(path)


def _meta_features(parts: list[np.ndarray], kind: str) -> np.ndarray:
    if kind == "regression":
        return np.column_stack([p.reshape(-1) for p in parts])
    if kind == "binary":
        return np.column_stack([p[:, 1] for p in parts])
    return np.column_stack(parts)


def _check_members(members: list[Bundle]) -> None:
    if len(members) < 2:
        raise InvalidConfigError(
            f"an ensemble needs at least 2 member bundles but got {len(members)}; pass two or more bundle folders."
        )
    first = members[0]
    for i, m in enumerate(members[1:], start=1):
        if m.task.kind != first.task.kind or m.task.target != first.task.target:
            raise InvalidInputError(
                f"ensemble members must solve the same task, but member 0 is {first.task.kind} on {first.task.target!r} and member {i} is {m.task.kind} on {m.task.target!r}; combine bundles trained on the same target."
            )
        if [str(c) for c in (m.task.classes or [])] != [str(c) for c in (first.task.classes or [])]:
            raise InvalidInputError(
                f"ensemble members must share one label set, but member 0 has classes {first.task.classes} and member {i} has {m.task.classes}; train them on the same labels."
            )
        if m.kind != first.kind:
            raise InvalidInputError(
                f"ensemble members must read the same kind of input, but member 0 reads {first.kind!r} and member {i} reads {m.kind!r}."
            )


def build_ensemble(
    members: Sequence[str | Path | Bundle],
    method: str = "soft",
    *,
    weights: Sequence[float] | None = None,
    data: Any = None,
    folds: int = 5,
    seed: int = 0,
) -> EnsembleBundle:
    """Combine bundles into one ensemble bundle.

    Args:
        members: Bundle folders or loaded bundles of the same task and label set.
        method: ``"soft"`` (weighted mean of probabilities / values) or ``"stack"``. Defaults to `"soft"`.
        weights: One weight per member for ``soft``. Defaults to equal weights.
        data: For ``stack``: the labelled training table the out-of-fold predictions are made on.
        folds: Folds for the out-of-fold predictions. Defaults to `5`.
        seed: Seeds the folds. Defaults to `0`.
    """
    if method not in METHODS:
        raise InvalidConfigError(f"`method` is {method!r} but must be 'soft' or 'stack'.")
    bundles = [m if isinstance(m, Bundle) else load_bundle(m) for m in members]
    _check_members(bundles)
    n = len(bundles)
    if weights is None:
        w = [1.0] * n
    else:
        w = [float(x) for x in weights]
        if len(w) != n or any(x < 0 for x in w) or sum(w) <= 0:
            raise InvalidConfigError(
                f"`weights` is {list(weights)!r} but must be {n} non-negative numbers (one per member) with a positive sum."
            )
    first = bundles[0]
    manifest = make_manifest(
        kind="ensemble",
        method=method,
        weights=w,
        task=first.task.to_dict(),
        members=[f"members/{i}" for i in range(n)],
        baselines=first.manifest.get("baselines", {}),
        reference_statistics=first.manifest.get("reference_statistics", {}),
        feature_names=first.manifest.get("feature_names"),
        model_spec={"family": "ensemble", "method": method, "members": n},
        metrics={},
    )
    if method == "stack":
        if data is None:
            raise InvalidConfigError(
                "method='stack' fits its meta-model on out-of-fold predictions and needs the labelled training table; pass it as `data`."
            )
        manifest["meta"] = _fit_meta(bundles, data, folds, seed)
    return EnsembleBundle(manifest, bundles)


def _fit_meta(bundles: list[Bundle], data: Any, folds: int, seed: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, StratifiedKFold

    import dlpipe as dl
    from dlpipe.core.config import build_config
    from dlpipe.pipeline.train import resolve_dataset

    task = bundles[0].task
    ds = resolve_dataset(data, build_config({}, {"target": task.target}))
    frame = ds.frame.reset_index(drop=True)
    if task.target not in frame.columns:
        raise InvalidInputError(
            f"the stacking data has no target column {task.target!r}; pass the labelled table the members were trained on."
        )
    frame = frame[frame[task.target].notna()].reset_index(drop=True)
    y = task.encode(frame[task.target]).reshape(-1)
    if task.kind == "regression":
        y = y * task.y_std + task.y_mean
        splitter: Any = KFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    oof: list[np.ndarray | None] = [None] * len(bundles)
    for tr, te in splitter.split(frame, y if task.kind != "regression" else None):
        held_out = frame.iloc[te]
        for i, b in enumerate(bundles):
            cfg = dict(b.manifest.get("config") or {})
            run = dl.train(
                frame.iloc[tr], task.target, config=cfg, test=held_out, save=False, progress="quiet"
            )
            batch = run.bundle.preprocessor.prepare(held_out)
            values, proba = run.bundle.task.decode(run.bundle.outputs(batch.inputs))
            part = proba if proba is not None else values
            if oof[i] is None:
                oof[i] = np.zeros((len(frame), *part.shape[1:]))
            oof[i][te] = part  # type: ignore[index]
    X = _meta_features([p for p in oof if p is not None], task.kind)
    if task.kind == "regression":
        ridge = Ridge(alpha=1.0).fit(X, y)
        return {
            "model": "ridge",
            "coef": ridge.coef_.reshape(1, -1).tolist(),
            "intercept": [float(ridge.intercept_)],
            "folds": folds,
        }
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(X, y.astype(np.int64))
    return {
        "model": "logistic",
        "coef": lr.coef_.tolist(),
        "intercept": lr.intercept_.tolist(),
        "folds": folds,
    }


def load_ensemble(root: Path, manifest: dict[str, Any]) -> EnsembleBundle:
    """Load an ensemble folder: each member is a bundle inside it.

    ``manifest`` was checked by :func:`dlpipe.bundle.bundle.read_manifest` (method, weights, members, meta);
    every member path must resolve inside ``root`` (no ``..``, absolute path or symbolic link out), and
    is refused before anything under it is read.
    """
    paths = [
        resolve_inside(Path(root), rel, f"member {i}") for i, rel in enumerate(manifest["members"])
    ]
    members = [load_bundle(p) for p in paths]
    if (
        manifest.get("format") != FORMAT
        or manifest.get("format_version") != FORMAT_VERSION
        or len(members) < 2
    ):
        raise BundleError(
            f"{str(root)!r} is not a complete ensemble bundle; re-create it with `dlpipe ensemble`."
        )
    try:
        _check_members(members)
    except (InvalidInputError, InvalidConfigError) as exc:
        raise BundleError(
            f"ensemble {str(root)!r} does not hold a working ensemble: {str(exc).rstrip('.')}."
        ) from None
    if manifest["method"] == "stack":  # the meta-model reads one column per member output
        task, n = members[0].task, len(members)
        per = len(task.classes or []) if task.kind == "multiclass" else 1
        rows = per if task.kind == "multiclass" else 1
        coef = manifest["meta"]["coef"]
        if len(coef) != rows or len(coef[0]) != n * per:
            raise BundleError(
                f"the manifest of ensemble {str(root)!r} is damaged: `meta.coef` is {len(coef)} x {len(coef[0])} but {n} {task.kind} members need "
                f"{rows} x {n * per}; re-create the ensemble with `dlpipe ensemble`."
            )
    return EnsembleBundle(manifest, members)
