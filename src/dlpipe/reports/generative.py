"""Reconstruction and generative runs in the report: originals beside reconstructions, the anomaly
scores by label, the embeddings, and the sample grids (the final one and one per kept epoch).

The pictures are the PNGs the generative fitter wrote under ``plots/`` (see
:mod:`dlpipe.pipeline._generative_eval`); the numbers come from ``metrics.json``. The sections' ids
start with ``pictures-`` so the report shows these files as they are and never rewrites them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dlpipe.reports.plots import Plot
from dlpipe.reports.sections import Section, Table

if TYPE_CHECKING:
    from pathlib import Path

    from dlpipe.reports.folder import RunFolder

__all__ = ["sections", "TASKS"]

TASKS = ("reconstruction", "generate")
_EPOCH = re.compile(r"samples_epoch_(\d+)\.png$")
_MAX_EPOCH_GRIDS = 12


def _png(plots: Path, stem: str) -> bytes | None:
    path = plots / f"{stem}.png"
    return path.read_bytes() if path.is_file() else None


def _plot(plots: Path, stem: str, title: str, caption: str) -> Plot:
    png = _png(plots, stem)
    return Plot(
        stem,
        title,
        png,
        caption if png is not None else f"plots/{stem}.png is not in the run folder.",
    )


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None


def sections(run: RunFolder) -> list[Section] | None:
    """The generative sections of a run of task ``reconstruction`` or ``generate`` (None for any other task)."""
    if run.task not in TASKS:
        return None
    plots = run.path / "plots"
    m = run.metrics
    gen_model = str(
        (run.manifest.get("generative") or {}).get("model") or m.get("model_family") or ""
    )
    is_image = (
        (run.manifest.get("generative") or {}).get("input") == "image"
        or (plots / "reconstructions.png").is_file()
        or (plots / "samples.png").is_file()
    )
    out: list[Section] = []
    if gen_model != "gan":
        out.append(_reconstruction_section(plots, m, is_image))
        out.append(_anomaly_section(plots, m))
        emb = _embedding_section(plots, m)
        if emb.items:
            out.append(emb)
    if run.task == "generate" or gen_model in ("vae", "gan"):
        out.append(_samples_section(plots, m, is_image))
    return [s for s in out if s.items]


def _reconstruction_section(plots: Path, m: dict[str, Any], is_image: bool) -> Section:
    s = Section("pictures-reconstructions", "Reconstructions (test split)")
    part = m.get("evaluated_on", "test")
    if is_image:
        s.plot(
            _plot(
                plots,
                "reconstructions",
                "Originals and their reconstructions",
                f"Top row: images of the {part} split; bottom row: the autoencoder's reconstruction of the image above it.",
            )
        )
    else:
        s.note(
            "a grid of reconstructions is drawn for image runs only; for this input the error per row is the anomaly score below."
        )
    return s


def _anomaly_section(plots: Path, m: dict[str, Any]) -> Section:
    s = Section("pictures-anomaly", "Anomaly scores")
    a = m.get("anomaly") or {}
    test = m.get("test") or {}
    threshold = _num(a.get("threshold", test.get("threshold")))
    caption = "Reconstruction error of each test row/image (the anomaly score), by label"
    if threshold is not None:
        caption += f"; the dashed line is the threshold {threshold:.4g}"
    s.plot(_plot(plots, "anomaly_scores", "Anomaly score histogram", caption + "."))
    if a:
        pca = ((a.get("baselines") or {}).get("pca") or {}).get("roc_auc")
        s.table(
            Table(
                ["", "ROC-AUC", "precision at threshold", "recall at threshold", "flagged"],
                [
                    [
                        "autoencoder (reconstruction error)",
                        a.get("roc_auc"),
                        a.get("precision"),
                        a.get("recall"),
                        a.get("flagged"),
                    ],
                    ["PCA reconstruction error (baseline)", pca, None, None, None],
                ],
                caption=f"anomalies: {a.get('positive', '?')}; threshold at the {a.get('threshold_percentile', 99)}th percentile of normal errors",
                highlight=0,
            )
        )
    else:
        s.note(
            "no anomaly figures: they need labels at evaluation with both normal and anomalous rows in the test split."
        )
    return s


def _embedding_section(plots: Path, m: dict[str, Any]) -> Section:
    s = Section("pictures-embeddings", "Embeddings")
    if (plots / "embeddings_pca.png").is_file():
        s.plot(
            _plot(
                plots,
                "embeddings_pca",
                "Test embeddings",
                "The encoder's codes of the test split (2-D PCA of them when the code is wider), coloured by label.",
            )
        )
    e = m.get("embedding") or {}
    if e:
        rows = [["codes", e.get("knn_accuracy")]] + [
            [name, (v or {}).get("knn_accuracy")] for name, v in (e.get("baselines") or {}).items()
        ]
        s.table(
            Table(
                ["kNN (k=5) on", "accuracy"],
                rows,
                caption="how well the codes keep the labels apart (test split)",
                highlight=0,
            )
        )
    return s


def _samples_section(plots: Path, m: dict[str, Any], is_image: bool) -> Section:
    s = Section("pictures-samples", "Samples")
    if m.get("stopped_reason"):
        s.note(
            str(m["stopped_reason"])
        )  # e.g. a GAN whose losses turned NaN, and which epoch was kept
    g = m.get("generation") or {}
    if g:
        rows = [[k.replace("_", " "), v] for k, v in g.items() if k != "metric"]
        s.table(
            Table(
                ["samples from", "mean distance to nearest training row"],
                rows,
                caption=str(g.get("metric", "")),
                highlight=0,
            )
        )
    if not is_image:
        return s.note("sample grids are drawn for image runs only.")
    s.plot(
        _plot(
            plots,
            "samples",
            "Samples from the final model",
            "Samples decoded from random codes after training.",
        )
    )
    if (plots / "interpolations.png").is_file():
        s.plot(
            _plot(
                plots,
                "interpolations",
                "Latent interpolations",
                "Each row decodes evenly spaced codes between two test images.",
            )
        )
    epochs = sorted(
        (int(mt.group(1)), p)
        for p in plots.glob("samples_epoch_*.png")
        if (mt := _EPOCH.search(p.name))
    )
    if not epochs:
        return s.note("no per-epoch sample grids in plots/ (the run kept none).")
    if len(epochs) > _MAX_EPOCH_GRIDS:  # evenly spaced, always the first and the last
        step = (len(epochs) - 1) / (_MAX_EPOCH_GRIDS - 1)
        epochs = [epochs[round(i * step)] for i in range(_MAX_EPOCH_GRIDS)]
    s.text(
        "The same fixed noise decoded after each kept epoch: the grids show how training progressed."
    )
    for epoch, path in epochs:
        s.plot(Plot(path.stem, f"Samples after epoch {epoch}", path.read_bytes(), f"epoch {epoch}"))
    return s
