"""Attributions of a few test inputs for the report of image, sequence and text runs (issue #20 item 1).

Each function picks inputs across the classes, attributes the predicted class's calibrated logit
(:mod:`dlpipe.evaluation.attributions`) and returns ``(metrics["attributions"], run-folder files)``.
A failure costs the report its section, never the run: it is recorded as ``skipped`` and warned about.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import DataWarning
from dlpipe.evaluation.attributions import (
    Attributions,
    image_attributions,
    pick_across_classes,
    sequence_attributions,
    token_attributions,
    token_strings,
)

__all__ = [
    "attribute_images",
    "attribute_sequences",
    "attribute_texts",
    "N_IMAGES",
    "N_CASES",
    "N_DOCUMENTS",
]

N_IMAGES = 8
N_CASES = 6
N_DOCUMENTS = 6
_RUN_MAX_STEPS = (
    4096  # the refinement cap (a ReLU CNN on 8x8 digits needed over 1024 steps for one image)
)


def _record(a: Attributions, seconds: float, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": a.method,
        "rows": int(len(a.output)),
        "steps": int(a.steps),
        "seconds": round(seconds, 3),
        **more,
    }
    if a.method == "integrated_gradients":
        out["completeness_error"] = float(a.completeness_error)
        out.pop("occluded", None)
    else:
        out.pop("baseline", None)
    return out


def _guarded(
    what: str, fn: Callable[[], tuple[dict[str, Any], dict[str, bytes]]]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the report loses a section, the run is kept
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        warnings.warn(
            DataWarning(f"{what} attributions were not computed ({reason})."), stacklevel=3
        )
        return {"skipped": f"{what} attributions failed ({reason})"}, {}


def attribute_images(
    model: nn.Module,
    x_test: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    transform: Callable[[list[torch.Tensor], bool], list[torch.Tensor]],
    *,
    temperature: float,
    seed: int,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Integrated-gradients saliency of ``N_IMAGES`` test images (raw storage ``x_test`` (N, C, H, W))."""
    from dlpipe.reports.attributions import IMAGE_FILE, image_attribution_file

    def run() -> tuple[dict[str, Any], dict[str, bytes]]:
        t0 = time.perf_counter()
        rows = pick_across_classes(y_true, N_IMAGES, seed)
        raw = np.asarray(x_test[rows])
        with torch.no_grad():
            x = transform([torch.from_numpy(raw)], False)[0].contiguous().numpy()
            black = torch.zeros((1, *raw.shape[1:]), dtype=torch.from_numpy(raw[:1]).dtype)
            baseline = transform([black], False)[0][0].contiguous().numpy()
        pred = proba[rows].argmax(axis=1)
        a = image_attributions(
            model, x, baseline, pred, temperature=temperature, max_steps=_RUN_MAX_STEPS
        )
        values = a.values.reshape(raw.shape)  # an MLP's flat inputs back to (n, C, H, W)
        data = image_attribution_file(raw, values, y_true[rows], pred, proba[rows, pred])
        info = _record(
            a,
            time.perf_counter() - t0,
            baseline="a black image",
            output="the predicted class's logit over the temperature",
        )
        return info, {IMAGE_FILE: data}

    return _guarded("image", run)


def attribute_sequences(
    model: nn.Module,
    x: np.ndarray,
    mask: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    temperature: float,
    seed: int,
    occlusion: bool,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Attributions over the steps of ``N_CASES`` test cases (integrated gradients, or occlusion for MiniRocket)."""
    from dlpipe.reports.attributions import SEQUENCE_FILE, sequence_attribution_file

    def run() -> tuple[dict[str, Any], dict[str, bytes]]:
        t0 = time.perf_counter()
        rows = pick_across_classes(y_true, N_CASES, seed)
        pred = proba[rows].argmax(axis=1)
        a = sequence_attributions(
            model,
            x[rows],
            mask[rows],
            pred,
            temperature=temperature,
            occlusion=occlusion,
            max_steps=_RUN_MAX_STEPS,
        )
        data = sequence_attribution_file(
            x[rows], mask[rows], a.values, y_true[rows], pred, proba[rows, pred]
        )
        info = _record(
            a,
            time.perf_counter() - t0,
            baseline="zero (the training mean after scaling)",
            output="the predicted class's logit over the temperature",
            occluded=f"windows of {max(1, x.shape[1] // 32)} step(s) set to zero, the training mean after scaling",
        )
        return info, {SEQUENCE_FILE: data}

    return _guarded("sequence", run)


def attribute_texts(
    model: nn.Module,
    ids: np.ndarray,
    texts: list[str],
    tokenizer: Any,
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: list[Any],
    *,
    temperature: float,
    seed: int,
    special_tokens: bool,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Per-token attributions of ``N_DOCUMENTS`` test documents (token ids ``ids`` (N, T))."""
    from dlpipe.reports.attributions import TEXT_FILE, text_attribution_file

    def run() -> tuple[dict[str, Any], dict[str, bytes]]:
        t0 = time.perf_counter()
        rows = pick_across_classes(y_true, N_DOCUMENTS, seed)
        pred = proba[rows].argmax(axis=1)
        sub = ids[rows]
        width = max(
            1, int((sub != 0).sum(axis=1).max())
        )  # drop the columns every chosen document pads
        a = token_attributions(
            model, sub[:, :width], pred, temperature=temperature, max_steps=_RUN_MAX_STEPS
        )
        toks = token_strings(
            tokenizer, [texts[i] for i in rows], width, special_tokens=special_tokens
        )
        docs = []
        for k, i in enumerate(rows):
            n = min(len(toks[k]), int((sub[k] != 0).sum()))
            docs.append(
                {
                    "index": int(i),
                    "true": str(classes[int(y_true[i])]),
                    "predicted": str(classes[int(pred[k])]),
                    "confidence": round(float(proba[i, pred[k]]), 4),
                    "tokens": list(zip(toks[k][:n], a.values[k, :n].tolist(), strict=True)),
                }
            )
        info = _record(
            a,
            time.perf_counter() - t0,
            baseline="zero vectors in place of the tokens' embeddings",
            output="the predicted class's logit over the temperature",
            occluded="the token left out of the document; its word pairs go with it",
        )
        return info, {TEXT_FILE: text_attribution_file(docs)}

    return _guarded("text", run)
