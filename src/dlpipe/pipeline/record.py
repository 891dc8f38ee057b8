"""metrics.json as a typed record: what every run folder's metrics.json holds, whatever the kind of data.

:class:`RunRecord` is the schema (``RunRecord.model_json_schema()`` gives it as JSON Schema); a kind
adds its own keys beside these (``image``, ``test_forecast``, ``sequence``, an RL run's ``evaluation``...),
which the record keeps as they are. ``Run.record`` and :func:`read_record` parse a run's metrics
into it; an undefined score is ``null`` (strict JSON) and reads back as None.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RunRecord", "TestRecord", "DataSource", "read_record"]

Score = float | int | None


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TestRecord(_Open):
    """The test part: the model beside its baselines on the same rows, and the verdict in words."""

    primary_metric: str | None = Field(
        description="the metric the verdict is judged on (its direction: dlpipe.evaluation.METRICS)"
    )
    rows: int | None = Field(None, description="test rows (windows, images, episodes) scored")
    model: dict[str, Any] = Field(description="the model's scores by metric name")
    baselines: dict[str, dict[str, Any]] = Field(
        description="each baseline's scores by metric name"
    )
    verdict: str = Field(
        description="a short paragraph: beats / ties / loses to the best baseline on the primary metric, "
        "and every other headline metric where the model and that baseline disagree"
    )
    cost_s: dict[str, float] | None = Field(
        None,
        description="tables: seconds per entry (the model's training epochs + test prediction; "
        "each baseline's fit + test prediction)",
    )
    run_only_baselines: list[str] | None = Field(
        None, description="tables: baselines scored in the run but not stored in the bundle (trees)"
    )
    baseline_notes: list[str] | None = Field(
        None, description="tables: a baseline not fitted, and why (a forest too costly for the run)"
    )
    baseline_settings: dict[str, dict[str, Any]] | None = Field(
        None,
        description="text: settings a baseline chose in the run (tfidf_linear_svc: its C, and the "
        "cross-validated accuracy of each C tried when the training documents were few)",
    )


class DataSource(_Open):
    """A split's data as given: a path, a bundled data set's name, ``DataFrame`` or ``<TypeName>``."""

    source: str | None
    rows: int | None = None
    sha256: str | None = None


class RunRecord(_Open):
    """What every run's metrics.json holds (kinds add their own keys beside these)."""

    dataset: str = Field(
        description="the data set's name (file stem, bundled name, environment id)"
    )
    task: str = Field(
        description="regression, binary, multiclass, forecast, reconstruction, generate, reinforcement..."
    )
    target: str | None = Field(None, description="the predicted column, if any")
    classes: list[Any] | None = Field(
        None, description="class labels in the model's output order (classification)"
    )
    rows: dict[str, int] = Field(description="rows (or windows, images, episodes) per split")
    epochs_run: int | None = Field(
        None, description="epochs trained (None: a run without epochs, RL)"
    )
    best_epoch: int | None = None
    stopped_epoch: int | None = None
    n_parameters: int | None = None
    test: TestRecord
    environment: dict[str, Any] = Field(
        description="device, threads, versions, seed, native kernels"
    )
    data_sources: dict[str, DataSource | None] | None = Field(
        None, description="train/test data as given, rows, sha256"
    )
    origin: str | None = Field(None, description="cli or python: how the run was made")
    command: str | None = Field(
        None, description="the dlpipe command line, for a run made by the CLI"
    )
    wall_time_s: float | None = None


def read_record(path: str | Path) -> RunRecord:
    """Parse ``<run folder>/metrics.json`` (or a metrics.json path) into a :class:`RunRecord`."""
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.json"
    return RunRecord.model_validate(json.loads(p.read_text(encoding="utf-8")))
