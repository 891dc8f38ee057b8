"""Attributions for images, sequences and text: which pixels, time steps and tokens a prediction rests on.

Each function attributes one scalar per input: the logit of a class (the predicted one by default),
divided by the bundle's temperature; a one-logit binary model's log-odds of that class (``-z`` for
class 0). Integrated gradients (:func:`dlpipe.evaluation.explain.integrated_gradients`, the trapezoid
rule with refinement until completeness holds within ``tolerance``) run on the model's float inputs:

- **images**: the normalised pixels, from a black image (raw pixel 0) to the image;
  attributions (N, C, H, W);
- **sequences**: the scaled values, from 0 (the training mean after scaling; the series' own mean
  for z-normalised cases) to the case; the mask is held fixed; attributions (N, T, C). MiniRocket's
  features count signs (no gradient), so its attributions are **occlusion** of windows of steps;
- **text**: the token embeddings, from zero vectors to the document's, through a forward hook on the
  model's ``nn.Embedding`` (the token ids, so padding and attention masks, stay the document's);
  attributions (N, T) summed over the embedding's width. Bags of embeddings (``nn.EmbeddingBag``:
  the fastText-style default and GloVe averages) have no per-token tensor to hook, so their tokens
  are scored by **occlusion**: the output minus the output without that token (its bigrams go with it).

Occlusion does not add up to anything (no completeness), and says so in ``method``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.runtime import threads_for_load
from dlpipe.evaluation.explain import completeness_error, integrated_gradients

__all__ = [
    "Attributions",
    "pick_across_classes",
    "class_output",
    "image_attributions",
    "sequence_attributions",
    "token_attributions",
    "overlay_image",
    "token_strings",
    "token_colour",
]


@dataclass
class Attributions:
    """``values``: attributions shaped like the input (images (N, C, H, W), sequences (N, T, C), text (N, T));
    ``output`` and ``baseline_output`` (N,): the attributed scalar at the input and at the baseline (for
    occlusion, ``baseline_output`` is NaN); ``targets``: the class attributed per row; ``method``:
    ``"integrated_gradients"`` or ``"occlusion"``; ``completeness_error``: the largest per-row gap between the
    sum of attributions and ``output - baseline_output``, relative (NaN for occlusion); ``steps``: the
    trapezoid intervals asked for (refined rows used more)."""

    values: np.ndarray
    output: np.ndarray
    baseline_output: np.ndarray
    targets: np.ndarray
    method: str
    completeness_error: float
    steps: int


def pick_across_classes(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` row indices spread over the classes of ``labels``: a seeded shuffle, then one row of
    each class in turn (so 8 rows of 10 classes are 8 different classes, not the first rows of a folder).

    Example:
        >>> sorted(np.asarray([0, 0, 0, 1, 1, 2])[pick_across_classes(np.asarray([0, 0, 0, 1, 1, 2]), 3)].tolist())
        [0, 1, 2]
    """
    labels = np.asarray(labels).reshape(-1)
    order = np.random.default_rng(seed).permutation(len(labels))
    queues = {c: [i for i in order if labels[i] == c] for c in np.unique(labels[order])}
    classes = sorted(queues, key=lambda c: int(np.flatnonzero(labels[order] == c)[0]))
    out: list[int] = []
    while len(out) < n and any(queues[c] for c in classes):
        for c in classes:
            if queues[c] and len(out) < n:
                out.append(int(queues[c].pop(0)))
    return np.asarray(out, dtype=np.int64)


def class_output(logits: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, K) logits, (B,) classes -> (B,): the class's logit over the temperature (one logit: ``±z``)."""
    if logits.shape[1] == 1:
        z = logits[:, 0]
        return torch.where(target == 1, z, -z) / temperature
    return logits.gather(1, target[:, None].long()).reshape(-1) / temperature


def _predicted(model: nn.Module, *inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        logits = model(*inputs)
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long().numpy()  # type: ignore[no-any-return]
    return logits.argmax(dim=1).numpy()  # type: ignore[no-any-return]


def _chunk_rows(features: int) -> int:
    """Rows per integrated-gradients pass (at 64 steps) so that one pass holds about 4M input values (16 MB):
    a 224x224 RGB path is one row, an 8x8 grey one 900 rows (many tiny passes cost more than the model)."""
    return max(1, 4_000_000 // (65 * max(1, features)))


@threads_for_load()  # one torch thread on a busy machine (core.runtime)
def image_attributions(
    model: nn.Module,
    x: np.ndarray,
    baseline: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    temperature: float = 1.0,
    steps: int = 64,
    max_steps: int = 4096,
    tolerance: float = 0.01,
) -> Attributions:
    """Integrated gradients of normalised images ``x`` (N, C, H, W) from ``baseline`` (C, H, W).

    ``model`` takes (N, C, H, W), or (N, C*H*W) when it is an MLP: pass ``x`` shaped as the model takes it
    and ``baseline`` of one row's shape. ``targets``: classes to attribute (default: the predicted ones).
    """
    model = model.eval()
    shape = x.shape[1:]
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    if targets is None:
        targets = _predicted(model, torch.from_numpy(np.ascontiguousarray(x, np.float32)))

    def output(path: torch.Tensor, _: torch.Tensor | None, t: torch.Tensor | None) -> torch.Tensor:
        assert t is not None
        return class_output(model(path.reshape(-1, *shape)), t, temperature)

    attr, o_x, o_b = integrated_gradients(
        output,
        flat,
        np.asarray(baseline, np.float32).reshape(-1),
        None,
        np.asarray(targets, np.int64),
        steps=steps,
        tolerance=tolerance,
        max_steps=max_steps,
        chunk_rows=_chunk_rows(flat.shape[1]),
    )
    return Attributions(
        attr.reshape(x.shape),
        o_x,
        o_b,
        np.asarray(targets, np.int64),
        "integrated_gradients",
        completeness_error(attr, o_x, o_b),
        steps,
    )


@threads_for_load()  # one torch thread on a busy machine (core.runtime)
def sequence_attributions(
    model: nn.Module,
    x: np.ndarray,
    mask: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    temperature: float = 1.0,
    steps: int = 64,
    max_steps: int = 4096,
    tolerance: float = 0.01,
    occlusion: bool = False,
) -> Attributions:
    """Attributions over the steps of sequences ``x`` (N, T, C) with ``mask`` (N, T), from a zero baseline.

    Integrated gradients, or with ``occlusion`` (a model without gradients: MiniRocket) the output minus
    the output with a window of ``max(1, T // 32)`` steps set to 0, shared equally by the window's steps.
    """
    model = model.eval()
    x = np.ascontiguousarray(x, np.float32)
    mask_t = torch.from_numpy(np.ascontiguousarray(mask))
    if targets is None:
        targets = _predicted(model, torch.from_numpy(x), mask_t)
    targets = np.asarray(targets, np.int64)
    n, t_len, c = x.shape
    if occlusion:
        return _occlude_steps(model, x, mask, targets, temperature)

    def output(path: torch.Tensor, m: torch.Tensor | None, t: torch.Tensor | None) -> torch.Tensor:
        assert t is not None
        return class_output(model(path.reshape(-1, t_len, c), m), t, temperature)

    attr, o_x, o_b = integrated_gradients(
        output,
        x.reshape(n, -1),
        np.zeros(t_len * c, np.float32),
        np.ascontiguousarray(mask),
        targets,
        steps=steps,
        tolerance=tolerance,
        max_steps=max_steps,
        chunk_rows=_chunk_rows(t_len * c),
    )
    return Attributions(
        attr.reshape(n, t_len, c),
        o_x,
        o_b,
        targets,
        "integrated_gradients",
        completeness_error(attr, o_x, o_b),
        steps,
    )


def _occlude_steps(
    model: nn.Module, x: np.ndarray, mask: np.ndarray, targets: np.ndarray, temperature: float
) -> Attributions:
    n, t_len, c = x.shape
    width = max(1, t_len // 32)
    starts = list(range(0, t_len, width))
    values = np.zeros((n, t_len, c))
    out = np.zeros(n)
    with torch.no_grad():
        for i in range(n):
            copies = np.repeat(x[i : i + 1], len(starts) + 1, axis=0)  # (windows + 1, T, C)
            for k, s in enumerate(starts):
                copies[k + 1, s : s + width] = 0.0
            m = torch.from_numpy(np.repeat(mask[i : i + 1], len(copies), axis=0))
            tgt = torch.full((len(copies),), int(targets[i]))
            y = class_output(model(torch.from_numpy(copies), m), tgt, temperature).double().numpy()
            out[i] = y[0]
            for k, s in enumerate(starts):
                span = min(width, t_len - s)
                values[i, s : s + span] = (y[0] - y[k + 1]) / (span * c)
    return Attributions(values, out, np.full(n, np.nan), targets, "occlusion", float("nan"), 0)


def _token_embedding(model: nn.Module) -> nn.Embedding | None:
    """The embedding of token ids a forward hook can stand in for (MiniLM's ``word``, a text model's ``embed``)."""
    for name in ("word", "embed"):
        for mod_name, mod in model.named_modules():
            if mod_name.rsplit(".", 1)[-1] == name and isinstance(mod, nn.Embedding):
                return mod
    return None


@threads_for_load()  # one torch thread on a busy machine (core.runtime)
def token_attributions(
    model: nn.Module,
    ids: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    temperature: float = 1.0,
    steps: int = 64,
    max_steps: int = 4096,
    tolerance: float = 0.01,
) -> Attributions:
    """Per-token attributions of token ids (N, T) (0 = padding): integrated gradients on the token
    embeddings when the model has an ``nn.Embedding`` (``embed`` or MiniLM's ``word``), else occlusion."""
    model = model.eval()
    ids = np.ascontiguousarray(ids, np.int64)
    ids_t = torch.from_numpy(ids)
    if targets is None:
        targets = _predicted(model, ids_t)
    targets = np.asarray(targets, np.int64)
    emb = _token_embedding(model)
    if emb is None:
        return _occlude_tokens(model, ids, targets, temperature)
    captured: list[torch.Tensor] = []
    handle = emb.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    try:
        with torch.no_grad():
            model(ids_t)
    finally:
        handle.remove()
    e = captured[0].float()  # (N, T', D): T' <= T when the model reads only its first tokens
    n, t_used, d = e.shape
    feed: list[torch.Tensor] = []
    handle = emb.register_forward_hook(lambda m, i, o: feed[0])

    def output(
        path: torch.Tensor, cats: torch.Tensor | None, t: torch.Tensor | None
    ) -> torch.Tensor:
        assert cats is not None and t is not None
        feed[:] = [path.reshape(-1, t_used, d)]
        return class_output(model(cats), t, temperature)

    try:
        attr, o_x, o_b = integrated_gradients(
            output,
            e.reshape(n, -1).numpy(),
            np.zeros(t_used * d, np.float32),
            ids,
            targets,
            steps=steps,
            tolerance=tolerance,
            max_steps=max_steps,
            chunk_rows=_chunk_rows(t_used * d),
        )
    finally:
        handle.remove()
    per_token = np.zeros(ids.shape)
    per_token[:, :t_used] = attr.reshape(n, t_used, d).sum(axis=2)
    return Attributions(
        per_token,
        o_x,
        o_b,
        targets,
        "integrated_gradients",
        completeness_error(attr, o_x, o_b),
        steps,
    )


def _occlude_tokens(
    model: nn.Module, ids: np.ndarray, targets: np.ndarray, temperature: float
) -> Attributions:
    n, t_len = ids.shape
    values = np.zeros((n, t_len))
    out = np.zeros(n)
    with torch.no_grad():
        for i in range(n):
            real = np.flatnonzero(ids[i])
            copies = np.repeat(ids[i : i + 1], len(real) + 1, axis=0)  # (tokens + 1, T)
            copies[np.arange(1, len(real) + 1), real] = 0  # copy k lacks token k (0 = padding)
            tgt = torch.full((len(copies),), int(targets[i]))
            y = class_output(model(torch.from_numpy(copies)), tgt, temperature).double().numpy()
            out[i] = y[0]
            values[i, real] = y[0] - y[1:]
    return Attributions(values, out, np.full(n, np.nan), targets, "occlusion", float("nan"), 0)


def token_strings(
    tokenizer: Any, texts: list[str], width: int, *, special_tokens: bool = False
) -> list[list[str]]:
    """Each document's first ``width`` tokens as they appear in its text (original case; a special token by its name)."""
    out = []
    for text, enc in zip(
        texts, tokenizer.encode_batch(texts, add_special_tokens=special_tokens), strict=True
    ):
        toks = [
            text[a:b] if b > a else tok
            for tok, (a, b) in zip(enc.tokens[:width], enc.offsets[:width], strict=True)
        ]
        out.append(toks)
    return out


def token_colour(value: float, scale: float) -> str:
    """A CSS background for one token: red for a positive attribution, blue for a negative one, opacity by size.

    Example:
        >>> token_colour(0.5, 1.0), token_colour(-1.0, 1.0), token_colour(0.0, 0.0)
        ('rgba(207,34,46,0.350)', 'rgba(9,105,218,0.700)', 'rgba(0,0,0,0)')
    """
    if not scale or not np.isfinite(value) or value == 0:
        return "rgba(0,0,0,0)"
    alpha = min(1.0, abs(value) / scale) * 0.7
    return f"rgba(207,34,46,{alpha:.3f})" if value > 0 else f"rgba(9,105,218,{alpha:.3f})"


def overlay_image(image: np.ndarray, attr: np.ndarray, *, alpha: float = 0.6) -> np.ndarray:
    """A picture of where an image's attributions lie: the image in grey with positive attributions in red
    and negative in blue (opacity by size, clipped at the 99th percentile of |attribution|).

    ``image``: (C, H, W) in any units; ``attr``: (C, H, W) or (H, W). Returns (H, W, 3) uint8.
    """
    img = np.asarray(image, np.float64)
    grey = img.mean(axis=0) if img.ndim == 3 else img
    grey = (grey - grey.min()) / (np.ptp(grey) or 1.0)
    a = np.asarray(attr, np.float64)
    a = a.sum(axis=0) if a.ndim == 3 else a
    scale = float(np.percentile(np.abs(a), 99)) or float(np.abs(a).max()) or 1.0
    s = np.clip(a / scale, -1.0, 1.0)  # (H, W) in [-1, 1]
    base = 0.35 + 0.65 * grey  # a lighter grey keeps the colours readable
    rgb = np.repeat(base[..., None], 3, axis=2)
    red, blue = np.array([0.85, 0.1, 0.1]), np.array([0.1, 0.3, 0.9])
    w = (alpha * np.abs(s))[..., None]
    colour = np.where((s >= 0)[..., None], red, blue)
    rgb = (1 - w) * rgb + w * colour
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)  # type: ignore[no-any-return]
