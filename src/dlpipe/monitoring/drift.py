"""Data drift: new rows compared per feature with the training inputs a bundle describes.

The bundle's ``reference_statistics`` (written at training time from the training split only) hold,
per numeric column, quantile bin edges with counts, a bounded sample of values (at most a few hundred)
and summary numbers; per categorical column, the category frequencies. For each feature:

- numeric: the two-sample Kolmogorov-Smirnov test against the stored sample (or, for bundles without
  one, the one-sample test against the CDF interpolated from the quantile bins);
- categorical and boolean: the chi-square test of homogeneity on the table of training counts
  (frequencies x training rows) against new counts, so the training sample's own noise is
  accounted for (categories never seen in training form one extra cell);
- both: the population stability index (PSI) over the training bins / categories.

A feature *drifted* when its test's p-value is below ``level`` or its PSI is above the usual "large
shift" line (PSI < 0.1 stable, 0.1-0.25 moderate, > 0.25 large): with thousands of rows a tiny,
harmless shift is "significant", and PSI says how large it is; with few rows a large shift may not be
significant, and PSI still says it is large. ``reason`` names which rule flagged it.

PSI has a floor from sampling alone: about ``(bins - 1) / rows`` (the chi-square approximation of
the noise in the new rows' proportions). When that floor is above 0.1 ("moderate" from noise alone),
the sample is too small to judge: the feature's ``small_sample`` is set and the report says so,
naming how many rows would be needed, whatever it flagged.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidConfigError, InvalidInputError, format_names
from dlpipe.core.files import private_tmp

__all__ = ["FeatureDrift", "DriftReport", "detect_drift"]

_EPS = 1e-4
PSI_MODERATE = 0.1
PSI_LARGE = 0.25  # the "large shift" line: above it a feature drifted, whatever the test says
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


@dataclass
class FeatureDrift:
    """The comparison of one feature: test, statistic, p-value, PSI and whether it drifted."""

    feature: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    drifted: bool
    rows: int
    missing_reference: float
    missing_new: float
    # what the HTML page draws: bins/categories with reference and new proportions
    bins: list[str] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    new: list[float] = field(default_factory=list)
    reason: str = ""  # "test", "psi" or "test, psi": which rule flagged it
    psi_noise: float = math.nan  # PSI expected from sampling alone: (bins - 1) / rows
    small_sample: bool = False  # psi_noise above the "moderate" line: too few rows to judge

    def __post_init__(self) -> None:
        cells = max(len(self.bins), 2)
        self.psi_noise = (cells - 1) / self.rows if self.rows else math.inf
        self.small_sample = bool(self.psi_noise > PSI_MODERATE)
        by_test = bool(self.drifted)
        by_psi = bool(np.isfinite(self.psi) and self.psi > PSI_LARGE)
        self.reason = ", ".join(r for r, on in (("test", by_test), ("psi", by_psi)) if on)
        self.drifted = by_test or by_psi

    @property
    def rows_needed(self) -> int:
        """Rows for which sampling alone keeps PSI under the "moderate" line."""
        return int(math.ceil((max(len(self.bins), 2) - 1) / PSI_MODERATE))


@dataclass
class DriftReport:
    """Per-feature drift of new rows against the training inputs, at significance ``level``."""

    features: list[FeatureDrift]
    level: float
    rows: int
    skipped: list[str] = field(default_factory=list)
    # rows the model cannot vouch for (dlpipe.data.ranges): a value far outside the training range,
    # or every input missing
    out_of_range_rows: int = 0
    all_missing_rows: int = 0

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def small_sample(self) -> bool:
        """Too few rows to judge some feature's PSI (sampling noise alone near the "moderate" line)."""
        return any(f.small_sample for f in self.features)

    @property
    def rows_needed(self) -> int:
        return max((f.rows_needed for f in self.features), default=0)

    def small_sample_note(self) -> str | None:
        if not self.small_sample:
            return None
        worst = max(self.features, key=lambda f: f.psi_noise)
        return (
            f"{self.rows} rows are too few to judge drift: sampling alone gives a PSI of about "
            f"{worst.psi_noise:.2f} for {worst.feature!r} ({len(worst.bins)} bins), and the tests "
            f"detect only large shifts; compare at least {self.rows_needed} rows."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "level": self.level,
            "drifted": self.drifted,
            "skipped": self.skipped,
            "out_of_range_rows": self.out_of_range_rows,
            "all_missing_rows": self.all_missing_rows,
            "psi_large": PSI_LARGE,
            "small_sample": self.small_sample,
            "note": self.small_sample_note(),
            "features": [
                {k: v for k, v in asdict(f).items() if k not in ("bins", "reference", "new")}
                for f in self.features
            ],
        }

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.to_dict()["features"])

    def to_text(self) -> str:
        lines = [
            f"drift of {self.rows} new rows against the training inputs (level {self.level:g}; "
            f"PSI < {PSI_MODERATE:g} stable, {PSI_MODERATE:g}-{PSI_LARGE:g} moderate, > {PSI_LARGE:g} large: drifted)"
        ]
        lines.append(
            f"{'feature':<24}{'kind':<13}{'test':<7}{'statistic':>10}{'p-value':>10}{'PSI':>8}  drifted"
        )
        for f in self.features:
            lines.append(
                f"{f.feature[:23]:<24}{f.kind:<13}{f.test:<7}{f.statistic:>10.4f}{f.p_value:>10.4f}{f.psi:>8.3f}  {'YES (' + f.reason + ')' if f.drifted else 'no'}"
            )
        if self.skipped:
            lines.append(f"not compared (no reference statistics): {format_names(self.skipped)}")
        if self.out_of_range_rows or self.all_missing_rows:
            lines.append(
                f"{self.out_of_range_rows} row(s) hold values far outside the training range and "
                f"{self.all_missing_rows} row(s) have every input missing: the model's answers for them "
                "are not backed by training data."
            )
        n = len(self.drifted)
        lines.append(
            f"{n} of {len(self.features)} features drifted: {format_names(self.drifted)}."
            if n
            else f"no feature drifted at level {self.level:g} or above PSI {PSI_LARGE:g}."
        )
        note = self.small_sample_note()
        if note:
            lines.append(note)
        return "\n".join(lines)

    def to_html(self, path: str | Path | None = None) -> str:
        """An HTML page: the table, then reference and new distributions overlaid per feature."""
        page = _html(self)
        if path is not None:
            p = Path(path)
            tmp = private_tmp(p)
            tmp.write_text(page, encoding="utf-8")
            tmp.replace(p)
        return page


def detect_drift(reference: Any, data: Any, *, level: float = 0.05) -> DriftReport:
    """Compare new rows with the training inputs, feature by feature.

    Args:
        reference: A :class:`~dlpipe.Bundle`, its folder, or its ``reference_statistics`` dict.
        data: New rows: a DataFrame, a list of dicts or a CSV/Parquet path (the target may be present; it is ignored).
        level: Significance level of the tests. Defaults to `0.05`.

    Example:
        >>> import pandas as pd
        >>> ref = {"x": {"kind": "numeric", "count": 4, "missing": 0.0, "bin_edges": [0.0, 1.0, 2.0], "bin_counts": [2, 2]}}
        >>> detect_drift(ref, pd.DataFrame({"x": [5.0, 6.0, 7.0, 8.0]})).drifted
        ['x']
    """
    from dlpipe.data.tabular import read_table

    if not 0 < level < 1:
        raise InvalidConfigError(f"`level` is {level!r} but must be between 0 and 1, e.g. 0.05.")
    stats = _reference(reference)
    frame = read_table(data, what="drift data")
    frame.columns = [str(c) for c in frame.columns]
    missing = [c for c in stats if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"the new data is missing the columns {format_names(missing)}; pass rows with the columns the model was trained on: {format_names(list(stats))}."
        )
    if len(frame) == 0:
        raise InvalidInputError("the new data has no rows; pass at least one row to compare.")
    results: list[FeatureDrift] = []
    skipped: list[str] = []
    for name, ref in stats.items():
        kind = ref.get("kind")
        col = frame[name]
        if kind == "numeric" and ref.get("bin_edges"):
            results.append(_numeric(name, ref, col, level))
        elif kind == "boolean" and "mean" in ref:
            results.append(_boolean(name, ref, col, level))
        elif kind == "categorical" and ref.get("frequencies"):
            results.append(_categorical(name, ref, col, level))
        else:
            skipped.append(name)
    from dlpipe.data.ranges import flag_frame

    flags = flag_frame(frame, list(stats), stats)
    return DriftReport(
        results,
        level,
        int(len(frame)),
        skipped,
        out_of_range_rows=flags.out_of_range,
        all_missing_rows=flags.all_missing,
    )


# ---------------------------------------------------------------------- per kind
def _numeric(name: str, ref: dict[str, Any], col: Any, level: float) -> FeatureDrift:
    import pandas as pd
    from scipy import stats

    values = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
    missing_new = float(np.mean(~np.isfinite(values))) if len(values) else 0.0
    values = values[np.isfinite(values)]
    edges = np.asarray(ref["bin_edges"], dtype=np.float64)
    counts = np.asarray(ref["bin_counts"], dtype=np.float64)
    if len(values) == 0:
        return FeatureDrift(
            name,
            "numeric",
            "ks",
            math.nan,
            math.nan,
            math.nan,
            False,
            0,
            ref.get("missing", 0.0),
            missing_new,
        )
    sample = ref.get("sample")
    if sample:
        res = stats.ks_2samp(np.asarray(sample, dtype=np.float64), values)
    else:
        cdf_x, cdf_y = _cdf_knots(edges, counts)
        res = stats.kstest(values, lambda x: np.interp(x, cdf_x, cdf_y))
    # PSI over the training quantile bins, the outer bins open-ended
    inner = edges[1:-1]
    p_ref = (
        counts / counts.sum() if counts.sum() else np.full(len(counts), 1.0 / max(len(counts), 1))
    )
    if len(edges) > 1:
        new_counts = np.bincount(
            np.searchsorted(inner, values, side="right"), minlength=len(counts)
        ).astype(np.float64)
    else:
        new_counts = np.array([float(len(values))])
    p_new = new_counts / new_counts.sum()
    labels = (
        [f"{a:.4g}..{b:.4g}" for a, b in zip(edges[:-1], edges[1:])]
        if len(edges) > 1
        else [f"{edges[0]:.4g}"]
    )
    p_value = float(res.pvalue)
    return FeatureDrift(
        name,
        "numeric",
        "ks",
        float(res.statistic),
        p_value,
        _psi(p_ref, p_new),
        bool(p_value < level),
        int(len(values)),
        float(ref.get("missing", 0.0)),
        missing_new,
        labels,
        p_ref.tolist(),
        p_new.tolist(),
    )


def _boolean(name: str, ref: dict[str, Any], col: Any, level: float) -> FeatureDrift:
    values = np.array([_bool(v) for v in col.tolist()], dtype=np.float64)
    missing_new = float(np.mean(np.isnan(values))) if len(values) else 0.0
    values = values[~np.isnan(values)]
    p1 = float(ref["mean"])
    n_ref = float(ref.get("count", 0)) * (1 - float(ref.get("missing", 0.0)))
    return _frequencies(
        name,
        "boolean",
        {"false": 1 - p1, "true": p1},
        {"false": float(np.sum(values == 0)), "true": float(np.sum(values == 1))},
        level,
        float(ref.get("missing", 0.0)),
        missing_new,
        n_ref,
    )


def _categorical(name: str, ref: dict[str, Any], col: Any, level: float) -> FeatureDrift:
    text = col.astype("string").fillna("<missing>")
    observed = {str(k): float(v) for k, v in text.value_counts().items()}
    freq = {str(k): float(v) for k, v in ref["frequencies"].items()}
    return _frequencies(
        name,
        "categorical",
        freq,
        observed,
        level,
        float(freq.get("<missing>", 0.0)),
        float((col.isna()).mean()),
        float(ref.get("count", 0)),
    )


def _frequencies(
    name: str,
    kind: str,
    freq: dict[str, float],
    observed: dict[str, float],
    level: float,
    miss_ref: float,
    miss_new: float,
    n_ref: float,
) -> FeatureDrift:
    from scipy import stats

    cats = list(freq)
    unseen = sum(v for k, v in observed.items() if k not in freq)
    obs = np.array([observed.get(c, 0.0) for c in cats] + [unseen])
    p_ref = np.array([freq[c] for c in cats] + [0.0])
    n = obs.sum()
    if n == 0:
        return FeatureDrift(
            name, kind, "chi2", math.nan, math.nan, math.nan, False, 0, miss_ref, miss_new
        )
    keep = (obs > 0) | (p_ref > 0)
    if n_ref > 0:
        # homogeneity: the training counts are a sample too
        table = np.vstack([p_ref[keep] * n_ref, obs[keep]])
        res = stats.chi2_contingency(table, correction=False) if keep.sum() > 1 else None
        statistic, p_value = (
            (float(res.statistic), float(res.pvalue)) if res is not None else (0.0, 1.0)
        )
    else:
        # goodness of fit; a cell the training data never filled gets a tiny expected share
        p_exp = np.maximum(p_ref, _EPS)[keep]
        gof = stats.chisquare(obs[keep], p_exp / p_exp.sum() * n)
        statistic, p_value = float(gof.statistic), float(gof.pvalue)
    labels = cats + ["<unseen>"]
    p_new = obs / n
    show = [i for i in range(len(labels)) if labels[i] != "<unseen>" or unseen > 0]
    return FeatureDrift(
        name,
        kind,
        "chi2",
        statistic,
        p_value,
        _psi(p_ref, p_new),
        bool(p_value < level),
        int(n),
        miss_ref,
        miss_new,
        [labels[i] for i in show],
        [float(p_ref[i]) for i in show],
        [float(p_new[i]) for i in show],
    )


# ---------------------------------------------------------------------- helpers
def _reference(reference: Any) -> dict[str, Any]:
    if isinstance(reference, dict):
        return reference
    manifest = getattr(reference, "manifest", None)
    if manifest is None:
        from dlpipe.bundle.bundle import load_bundle

        manifest = load_bundle(reference).manifest
    stats = manifest.get("reference_statistics")
    if not stats:
        raise InvalidInputError(
            "this bundle carries no reference statistics of its training inputs, so drift cannot be measured; retrain it with this dlpipe version."
        )
    return dict(stats)


def _cdf_knots(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(edges) < 2:
        return np.array([edges[0] - 1e-9, edges[0]]), np.array([0.0, 1.0])
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    return edges, cum / cum[-1]


def _psi(p_ref: np.ndarray, p_new: np.ndarray) -> float:
    a = np.maximum(np.asarray(p_ref, np.float64), _EPS)
    b = np.maximum(np.asarray(p_new, np.float64), _EPS)
    return float(np.sum((b - a) * np.log(b / a)))


def _bool(value: Any) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    return math.nan


def _plot(f: FeatureDrift) -> str:
    from dlpipe.reports.plots import new_figure, render

    fig = new_figure(5.2, 2.4, constrained=True)
    ax = fig.add_subplot()
    x = np.arange(len(f.bins))
    ax.bar(x - 0.2, f.reference, width=0.4, label="training", color="#7a9cc6")
    ax.bar(x + 0.2, f.new, width=0.4, label="new", color="#e08a4b")
    ax.set_xticks(x, f.bins, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("share of rows", fontsize=8)
    ax.set_title(f"{f.feature} ({f.test} p={f.p_value:.3g}, PSI {f.psi:.3f})", fontsize=9)
    ax.legend(fontsize=7)
    return base64.b64encode(render(fig)).decode("ascii")  # names are drawn as typed (no mathtext)


# The page runs no script and loads nothing but its own inline pictures, whatever the data's names hold.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _html(report: DriftReport) -> str:
    def esc(
        value: Any,
    ) -> (
        str
    ):  # every name, category or value from the data: text, and safe inside a quoted attribute
        return html.escape(str(value), quote=True)

    rows = "".join(
        f'<tr class="{"drift" if f.drifted else ""}"><td>{esc(f.feature)}</td><td>{esc(f.kind)}</td><td>{esc(f.test)}</td>'
        f"<td>{f.statistic:.4f}</td><td>{f.p_value:.4g}</td><td>{f.psi:.3f}</td><td>{f.missing_reference:.1%} / {f.missing_new:.1%}</td>"
        f"<td>{'YES (' + esc(f.reason) + ')' if f.drifted else 'no'}</td></tr>"
        for f in report.features
    )
    plots = "".join(
        f'<figure><img alt="distribution of {esc(f.feature)}" src="data:image/png;base64,{_plot(f)}"></figure>'
        for f in report.features
        if f.bins
    )
    summary = (
        f"{len(report.drifted)} of {len(report.features)} features drifted: {esc(format_names(report.drifted))}."
        if report.drifted
        else f"No feature drifted at level {report.level:g} or above PSI {PSI_LARGE:g}."
    )
    note = report.small_sample_note()
    if note:
        summary += f"</strong></p><p><strong>{esc(note)}"
    skipped = (
        f"<p>Not compared (no reference statistics): {esc(format_names(report.skipped))}.</p>"
        if report.skipped
        else ""
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}"><title>dlpipe drift report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}}td:first-child{{text-align:left}}
tr.drift{{background:#fde8e0}} figure{{display:inline-block;margin:.4rem}}</style></head><body>
<h1>Drift report</h1><p>{int(report.rows)} new rows against the training inputs; tests at level {float(report.level):g}
(KS for numeric, chi-square for categorical and boolean); PSI: &lt; 0.1 stable, 0.1-0.25 moderate, &gt; 0.25 large (drifted).</p>
<p><strong>{summary}</strong></p>{skipped}
<table><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>p-value</th><th>PSI</th><th>missing (train / new)</th><th>drifted</th></tr>{rows}</table>
<h2>Distributions (training vs new)</h2>{plots}</body></html>
"""
