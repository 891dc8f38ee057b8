"""``Run``: one training's config, history, metrics and bundle, and its folder on disk.

    runs/<name>/
      config.yaml     the resolved config (every default written out), enough to reproduce the run
      history.csv     one row per epoch
      metrics.json    test metrics of the model beside its baselines, and the verdict; data_sources (each
                      split's data as given, rows, sha256), origin (cli/python), environment (seed, versions)
      lr_finder.csv   the learning-rate range test curve (only with learning_rate='auto')
      predictions.csv the test split: y_true, prediction and (classification) proba_<class> columns
      report.html     the run report (dlpipe.reports), with its pictures under plots/
      plots/          PNG figures some tasks add (generative: samples, embeddings, anomaly scores)
      bundle/         what predict needs (see dlpipe.bundle)

The folder is written under a temporary name and renamed when complete; it holds dlpipe's marker
file ``.dlpipe`` (kind "run"), without which no dlpipe command replaces a folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpipe.bundle.bundle import Bundle, load_bundle
from dlpipe.core.errors import InvalidInputError
from dlpipe.core.files import atomic_dir, report_or_warn, write_json
from dlpipe.training.history import History

if TYPE_CHECKING:
    from dlpipe.pipeline.record import RunRecord

__all__ = ["Run", "load_run"]


@dataclass
class Run:
    """The result of :func:`dlpipe.train`."""

    config: dict[str, Any]
    history: History
    metrics: dict[str, Any]
    bundle: Bundle
    path: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> RunRecord:
        """metrics.json as a typed :class:`~dlpipe.pipeline.record.RunRecord`."""
        from dlpipe.pipeline.record import RunRecord

        return RunRecord.model_validate(json.loads(json.dumps(self.metrics, default=str)))

    @property
    def verdict(self) -> str:
        return str(self.metrics.get("test", {}).get("verdict", ""))

    def save(self, path: str | Path, *, report: bool = True, overwrite: bool = False) -> Path:
        """Write the run folder atomically and return its path; then build report.html (unless ``report=False``).

        An existing ``path`` is replaced only if it is an earlier dlpipe run folder and ``overwrite`` is True
        (see :func:`dlpipe.core.files.atomic_dir`); anything else there is refused and left untouched.
        """
        import yaml

        with atomic_dir(path, overwrite=overwrite, kind="run", what="`out`") as tmp:
            (tmp / "config.yaml").write_text(
                yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8"
            )
            self.history.to_csv(tmp / "history.csv")
            write_json(tmp / "metrics.json", self.metrics)
            finder = self.extras.get("lr_finder")
            if finder is not None:
                lines = ["lr,loss"] + [
                    f"{a!r},{b!r}" for a, b in zip(finder["lrs"], finder["losses"])
                ]
                (tmp / "lr_finder.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
            for rel, content in self.extras.get(
                "files", {}
            ).items():  # e.g. plots/*.png, relative to the run folder
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(content)
            preds = self.extras.get("predictions")
            if preds is not None:
                import pandas as pd

                pd.DataFrame(preds).to_csv(tmp / "predictions.csv", index=False)
            self.bundle.save(tmp / "bundle")
        self.path = Path(path)
        if report:
            report_or_warn(self.report, self.path)
        return self.path

    def report(self, open_browser: bool = False) -> Path:
        """Build (or rebuild) ``report.html`` in the run folder and return its path."""
        from dlpipe.reports.report import build_report

        return build_report(self, bundle=self.bundle, open_browser=open_browser)

    def summary(self) -> str:
        """A few lines: model vs baselines on the test split, and the verdict."""
        test = self.metrics.get("test", {})
        metric = test.get("primary_metric", "")
        lines = [f"{self.metrics.get('task')} on {self.metrics.get('dataset')}: test {metric}"]
        baselines = test.get("baselines", {})
        width = max([11, *(len(str(name)) for name in baselines)])
        lines.append(f"  {'model':<{width}} {_number(test.get('model', {}).get(metric)):.4f}")
        for name, m in baselines.items():
            lines.append(f"  {name:<{width}} {_number(m.get(metric)):.4f}")
        lines.append(self.verdict)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Run(path={str(self.path) if self.path else None!r}, epochs={len(self.history)}, verdict={self.verdict!r})"


def load_run(path: str | Path) -> Run:
    """Read a run folder back (config, history, metrics, bundle)."""
    import yaml

    root = Path(path)
    if not (root / "metrics.json").is_file() or not (root / "bundle").is_dir():
        raise InvalidInputError(
            f"{str(root)!r} is not a dlpipe run folder; a run folder holds config.yaml, history.csv, metrics.json and bundle/."
        )
    config = (
        yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8"))
        if (root / "config.yaml").is_file()
        else {}
    )
    history = (
        History.from_csv(root / "history.csv") if (root / "history.csv").is_file() else History()
    )
    metrics = json.loads((root / "metrics.json").read_text(encoding="utf-8"))
    return Run(
        config=config,
        history=history,
        metrics=metrics,
        bundle=load_bundle(root / "bundle"),
        path=root,
    )


def _number(value: Any) -> float:
    """A metric read back from strict JSON: an undefined one (``null``) prints as nan."""
    return float("nan") if value is None else float(value)
