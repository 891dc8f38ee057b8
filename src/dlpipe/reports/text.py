"""The report's text section: tokenizer and truncation, throughput, per-class scores, and the most
confident mistakes with their (escaped) text. Reads only the run folder, so ``dlpipe report`` rebuilds it."""

from __future__ import annotations

import json
from typing import Any

from dlpipe.reports.folder import RunFolder
from dlpipe.reports.sections import Section, Table

__all__ = ["sections"]

MISTAKES_FILE = "text_mistakes.json"  # written by the text recipe (dlpipe.pipeline._fit_text)


def sections(run: RunFolder) -> list[Section]:
    info: dict[str, Any] = run.metrics.get("text") or {}
    s = Section("text", "Text")
    if info:
        s.table(
            Table(
                ["", ""],
                [
                    ["model family", info.get("family")],
                    ["tokenizer", info.get("tokenizer")],
                    [
                        "normalisation",
                        f"{info.get('normalization')}, lowercase"
                        if info.get("lowercase")
                        else info.get("normalization"),
                    ],
                    ["vocabulary (words)", info.get("vocab_size")],
                    ["tokens read per document", info.get("max_length")],
                    [
                        "median / longest document (tokens)",
                        f"{info.get('tokens_median')} / {info.get('tokens_max')}",
                    ],
                    [
                        "documents truncated (train / test)",
                        f"{info.get('truncated_train')} / {info.get('truncated_test')}",
                    ],
                    ["training documents/s", info.get("documents_per_second")],
                    ["prediction documents/s", info.get("predict_documents_per_second")],
                ],
                caption="How documents became tokens, and how fast the model read them.",
            )
        )
    per_class = ((run.test.get("model") or {}).get("per_class")) or {}
    if per_class:
        rows = [
            [c, _f(v.get("precision")), _f(v.get("recall")), _f(v.get("f1")), v.get("support")]
            for c, v in per_class.items()
        ]
        s.table(
            Table(
                ["class", "precision", "recall", "F1", "documents"],
                rows,
                caption="Per-class scores on the test split.",
            )
        )
    path = run.path / MISTAKES_FILE
    if not path.is_file():
        return [
            s.note(
                f"missing: {MISTAKES_FILE} (the most confident mistakes) is not in the run folder."
            )
        ]
    data = json.loads(path.read_text(encoding="utf-8"))
    mistakes = data.get("mistakes") or []
    if not mistakes:
        s.text("The model classified every test document correctly.")
    else:
        rows = [
            [
                m["true"],
                m["predicted"],
                _f(m["confidence"]),
                m["text"] + (" …" if m.get("cut") else ""),
            ]
            for m in mistakes
        ]
        s.table(
            Table(
                ["true", "predicted", "confidence", "text"],
                rows,
                caption=f"The {len(rows)} most confident mistakes (of {data.get('n_wrong')} wrong in {data.get('n_test')} test documents).",
            )
        )
    return [s]


def _f(v: Any) -> Any:
    return round(float(v), 4) if isinstance(v, (int, float)) else v
