"""Explanations of image, sequence and text bundles on new input: ``dlpipe.explain`` for those kinds.

The arithmetic lives in :mod:`dlpipe.evaluation.attributions`; this module reads the input through the
bundle's adapter, attributes each input's predicted class and returns an :class:`InputExplanation`,
which prints a summary and writes overlay PNGs (images), a CSV of attributions per step (sequences)
or per token plus an HTML page of highlighted tokens (text).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from dlpipe.bundle.bundle import Bundle

__all__ = ["InputExplanation", "explain_inputs", "KINDS"]

KINDS = ("image", "sequence", "text")


@dataclass
class InputExplanation:
    """What :func:`dlpipe.explain` found for an image, sequence or text bundle.

    ``items``: one row per input: ``name`` (file, case or document), ``predicted`` (the class attributed),
    ``probability``, ``output`` and ``baseline_output`` (the attributed logit at the input and at the
    baseline; NaN for occlusion). ``attributions``: one array per input: (H, W) per pixel summed over
    channels (images), (T, C) per step and channel (sequences), (T,) per token (text). ``tokens``: the
    documents' tokens as they appear in the text (text only). ``completeness_error``: the largest per-input
    gap between the sum of attributions and ``output - baseline_output``, relative (NaN for occlusion).
    """

    kind: str
    method: str
    output: str
    items: pd.DataFrame
    attributions: list[np.ndarray]
    completeness_error: float
    tokens: list[list[str]] | None = None
    images: np.ndarray | None = field(default=None, repr=False)

    def to_text(self, top: int = 5) -> str:
        """One line per input: its prediction and the ``top`` pixels' share, steps or tokens that push it most."""
        lines = []
        for k, r in self.items.iterrows():
            a = self.attributions[int(str(k))]
            head = (
                f"{str(r['name'])[:40]:<40} {str(r['predicted'])[:16]:<16} p={r['probability']:.3f}"
            )
            if self.kind == "image":
                pos = float(a[a > 0].sum())
                total = float(np.abs(a).sum()) or 1.0
                peak = np.unravel_index(int(np.argmax(a)), a.shape)
                lines.append(
                    f"{head}  {100 * pos / total:.0f}% of |attribution| for it; strongest pixel (row, col) {tuple(int(v) for v in peak)}"
                )
            elif self.kind == "sequence":
                per_step = a.sum(axis=1)
                best = np.argsort(-per_step)[:top]
                lines.append(f"{head}  steps most for it: {', '.join(str(int(t)) for t in best)}")
            else:
                toks = (self.tokens or [[]])[int(str(k))]
                order = [i for i in np.argsort(-a[: len(toks)]) if a[i] > 0][:top]
                against = [i for i in np.argsort(a[: len(toks)]) if a[i] < 0][:top]
                lines.append(
                    f"{head}  for: {', '.join(toks[i] for i in order) or '-'}; against: {', '.join(toks[i] for i in against) or '-'}"
                )
        return "\n".join(lines)

    def to_html(self) -> str:
        """Text bundles: a self-contained HTML page, each token on a colour (red: for the predicted class,
        blue: against it); every piece of the documents is escaped."""
        if self.kind != "text" or self.tokens is None:
            raise InvalidInputError(
                f"to_html() shows token attributions, but this is a {self.kind} explanation; use save() instead."
            )
        from dlpipe.evaluation.attributions import token_colour

        parts = [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            '<title>token attributions</title></head><body style="font:14px/1.9 sans-serif;max-width:1000px;margin:20px">',
            f"<p>{html.escape(self.output)}; {html.escape(self.method.replace('_', ' '))}. Red: for the predicted "
            "class, blue: against it.</p>",
        ]
        for k, r in self.items.iterrows():
            a = self.attributions[int(str(k))]
            toks = self.tokens[int(str(k))]
            scale = float(np.abs(a[: len(toks)]).max()) if len(toks) else 0.0
            spans = " ".join(
                f'<span style="background:{token_colour(float(v), scale)}">{html.escape(t)}</span>'
                for t, v in zip(toks, a[: len(toks)], strict=True)
            )
            parts.append(
                f'<div style="border:1px solid #ccc;padding:6px;margin:8px 0"><div style="color:#555">'
                f"{html.escape(str(r['name']))}: {html.escape(str(r['predicted']))} ({r['probability']:.0%})</div>{spans}</div>"
            )
        parts.append("</body></html>")
        return "\n".join(parts)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write the explanation into a new folder (or an explanations folder dlpipe wrote, with ``overwrite``).

        Images: one ``<name>.png`` overlay per image (grey image, red pixels for the predicted class, blue
        against) and ``items.csv``; sequences: ``attributions.csv`` (one row per case and step); text:
        ``tokens.csv`` (one row per token) and ``tokens.html``. Returns the files written.
        """
        import pandas as pd

        from dlpipe.core.files import atomic_dir

        names: list[str] = []
        with atomic_dir(
            folder, overwrite=overwrite, kind="explanations", what="the output folder"
        ) as tmp:
            self.items.to_csv(tmp / "items.csv", index=False)
            names.append("items.csv")
            if self.kind == "image":
                from PIL import Image

                from dlpipe.evaluation.attributions import overlay_image

                assert self.images is not None
                used: set[str] = set()
                for k, name in enumerate(self.items["name"]):
                    stem = _file_stem(str(name), k, used)
                    pic = overlay_image(self.images[k], self.attributions[k])
                    Image.fromarray(pic).save(tmp / f"{stem}.png")
                    names.append(f"{stem}.png")
            elif self.kind == "sequence":
                rows = []
                for k, name in enumerate(self.items["name"]):
                    a = self.attributions[k]
                    for t in range(a.shape[0]):
                        rows.append(
                            {"name": name, "step": t, "attribution": float(a[t].sum())}
                            | {f"channel_{c}": float(a[t, c]) for c in range(a.shape[1])}
                        )
                pd.DataFrame(rows).to_csv(tmp / "attributions.csv", index=False)
                names.append("attributions.csv")
            else:
                assert self.tokens is not None
                rows = [
                    {"name": name, "position": t, "token": tok, "attribution": float(v)}
                    for k, name in enumerate(self.items["name"])
                    for t, (tok, v) in enumerate(
                        zip(self.tokens[k], self.attributions[k], strict=False)
                    )
                ]
                pd.DataFrame(rows).to_csv(tmp / "tokens.csv", index=False)
                (tmp / "tokens.html").write_text(self.to_html(), encoding="utf-8")
                names += ["tokens.csv", "tokens.html"]
        return [Path(folder) / n for n in names]


def _file_stem(name: str, k: int, used: set[str]) -> str:
    """A safe, unique file name stem for an input's overlay (its path with separators turned to '_')."""
    stem = "".join(
        ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(name).with_suffix("").as_posix()
    )
    stem = stem.strip("._")[:120] or f"image_{k}"
    if stem in used:
        stem = f"{stem}_{k}"
    used.add(stem)
    return stem


def explain_inputs(
    b: Bundle, data: Any, *, steps: int = 64, max_rows: int = 1000, seed: int = 0
) -> InputExplanation:
    """Attributions of the predicted class for each input (at most ``max_rows``) of an image, sequence or text bundle."""
    import pandas as pd

    from dlpipe.evaluation.attributions import (
        image_attributions,
        sequence_attributions,
        token_attributions,
        token_strings,
    )

    task = b.task
    if task.kind not in ("binary", "multiclass"):
        raise InvalidInputError(
            f"explanations of {b.kind} bundles are computed for classifiers, but this bundle's task is "
            f"{task.kind!r}; pass a bundle trained to classify."
        )
    batch = b._prepare(data)
    if b.kind == "text" and len(batch.inputs) > 1:
        raise InvalidInputError(
            "token attributions are computed for text models that read the text alone, but this bundle's model "
            "also reads table columns; use `dlpipe predict`, or train on the text column alone to explain it."
        )
    inputs = [np.asarray(a)[:max_rows] for a in batch.inputs]
    n = len(inputs[0])
    logits = b.outputs(inputs)
    _, proba = task.decode(logits)
    assert proba is not None
    pred = proba.argmax(axis=1)
    classes = list(task.classes or range(proba.shape[1]))
    names = _names(b.kind, data, n)
    model = b.model.eval()
    temperature = float(task.temperature)
    tokens = None
    images = None
    if b.kind == "image":
        pre: Any = b.preprocessor
        c, h, w = int(pre.channels), int(pre.image_size[0]), int(pre.image_size[1])
        black = pre.normalise(np.zeros((1, c, h, w), np.float32))[0]
        x = inputs[0]
        a = image_attributions(
            model,
            x,
            black.reshape(-1) if x.ndim == 2 else black,
            pred,
            temperature=temperature,
            steps=steps,
        )
        images = x.reshape(n, c, h, w)
        per_item = list(a.values.reshape(n, c, h, w).sum(axis=1))
    elif b.kind == "sequence":
        family = str((b.manifest.get("model_spec") or {}).get("family", ""))
        a = sequence_attributions(
            model,
            inputs[0],
            inputs[1],
            pred,
            temperature=temperature,
            steps=steps,
            occlusion=family == "minirocket",
        )
        lengths = [int(m.sum()) or inputs[0].shape[1] for m in np.asarray(inputs[1])]
        per_item = [a.values[k, : lengths[k]] for k in range(n)]
    else:
        ids = inputs[0]
        width = max(1, int((ids != 0).sum(axis=1).max()))  # columns every document pads are dropped
        a = token_attributions(model, ids[:, :width], pred, temperature=temperature, steps=steps)
        adapter: Any = b.preprocessor
        texts, _ = adapter.texts_of(data)
        special = bool(adapter.state().get("special_tokens", False))
        shown = token_strings(adapter.tokenizer, texts[:n], width, special_tokens=special)
        lengths = [min(len(shown[k]), int((ids[k] != 0).sum())) for k in range(n)]
        per_item = [a.values[k, : lengths[k]] for k in range(n)]
        tokens = [shown[k][: lengths[k]] for k in range(n)]
    items = pd.DataFrame(
        {
            "name": names,
            "predicted": [classes[int(p)] for p in pred],
            "probability": proba[np.arange(n), pred],
            "output": a.output,
            "baseline_output": a.baseline_output,
        }
    )
    return InputExplanation(
        kind=b.kind,
        method=a.method,
        output="the predicted class's logit over the temperature",
        items=items,
        attributions=per_item,
        completeness_error=float(a.completeness_error),
        tokens=tokens,
        images=images,
    )


def _names(kind: str, data: Any, n: int) -> list[str]:
    """Input names: image files relative to the folder given, else '<kind> <i>'."""
    if kind == "image" and isinstance(data, (str, Path, list, tuple)):
        from dlpipe.data.images import expand_image_paths

        try:
            items = [data] if isinstance(data, (str, Path)) else list(data)
            if all(isinstance(i, (str, Path)) for i in items):
                root = Path(items[0]) if len(items) == 1 and Path(items[0]).is_dir() else None
                paths = expand_image_paths(items)
                return [str(p.relative_to(root)) if root else str(p) for p in paths][:n]
        except (OSError, ValueError):
            pass
    word = {"image": "image", "sequence": "case", "text": "document"}[kind]
    return [f"{word} {i}" for i in range(n)]
