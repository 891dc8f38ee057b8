"""MLflow tracking as a training callback: parameters, per-epoch metrics, the run folder, a registered model.

The trainer knows nothing of MLflow: :class:`MlflowTracker` is handed in as a callback
(``dl.train(..., callbacks=[MlflowTracker()])`` or ``dlpipe train ... --track mlflow[:URI]``).
``on_fit_start`` opens an MLflow run and logs the trainer's settings, ``on_epoch_end`` logs the epoch's
metrics, and ``on_run_saved`` (called by :func:`dlpipe.train` once the run folder is written) logs the
resolved config, the test metrics, the run folder's files (report, plots, history) and the bundle as
artifacts, registers the bundle as a model version and closes the run.

Default store: a SQLite file beside the runs folder (``mlflow.db``) with artifacts in ``mlartifacts/``
next to it, set explicitly (MLflow would otherwise write ``./mlruns`` wherever it is started). Any
tracking URI works (``http://host:5000``, ``sqlite:///path.db``, ``file:...``). Tracking must never lose
a training run: when the store cannot be reached, or a call fails, one warning is printed and the run
continues without tracking.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpipe.core.errors import DlpipeWarning, InvalidConfigError
from dlpipe.training.callbacks import Callback

if TYPE_CHECKING:
    from dlpipe.training.trainer import Trainer

__all__ = ["MlflowTracker", "TrackingWarning", "tracker_from_flag", "default_tracking_uri"]


class TrackingWarning(DlpipeWarning):
    """Tracking failed; the training run continues without it."""


def default_tracking_uri(runs_dir: str | Path = "runs") -> str:
    """``sqlite:///<parent of runs_dir>/mlflow.db`` (absolute)."""
    return "sqlite:///" + str(Path(runs_dir).resolve().parent / "mlflow.db")


def tracker_from_flag(flag: str, runs_dir: str | Path = "runs") -> MlflowTracker:
    """``mlflow`` (local SQLite store) or ``mlflow:URI`` -> a tracker; anything else is refused."""
    kind, _, uri = flag.partition(":")
    if kind != "mlflow":
        raise InvalidConfigError(
            f"`track` is {flag!r} but must be 'mlflow' or 'mlflow:<tracking URI>', e.g. mlflow:http://127.0.0.1:5000."
        )
    return MlflowTracker(uri or None, runs_dir=runs_dir)


class MlflowTracker(Callback):
    """Log a training run to MLflow.

    Args:
        tracking_uri: Where runs go. Defaults to a SQLite file beside ``runs_dir`` (``mlflow.db``).
        experiment: The MLflow experiment name. Defaults to `"dlpipe"`.
        run_name: The MLflow run name. Defaults to MLflow's generated name.
        runs_dir: The runs folder (locates the default store). Defaults to `"runs"`.
        register_as: The registered model's name; ``None`` uses ``dlpipe-<target>``; ``""`` registers nothing. Defaults to `None`.
        artifact_location: Where a NEW experiment stores artifacts; defaults to ``mlartifacts/`` beside a
            local store (a tracking server decides for itself). Defaults to `None`.

    Example:
        >>> MlflowTracker("sqlite:///mlflow.db").experiment
        'dlpipe'
    """

    checkpoint_state = False  # a resumed fit opens a new MLflow run, never the crashed run's

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        experiment: str = "dlpipe",
        run_name: str | None = None,
        runs_dir: str | Path = "runs",
        register_as: str | None = None,
        artifact_location: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri(runs_dir)
        self.experiment = experiment
        self.run_name = run_name
        self.register_as = register_as
        self.artifact_location = artifact_location
        self.run_id: str | None = None
        self.model_version: str | None = None
        self.disabled = False
        self._warned = False
        self._client: Any = None

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: Trainer) -> None:
        self.run_id = None
        self.model_version = None
        self.disabled = False
        self._safe(lambda: self._start(trainer))

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.run_id is None:
            return

        def log() -> None:
            from mlflow.entities import Metric

            ts = _now_ms()
            metrics = [
                Metric(k, float(v), ts, epoch)
                for k, v in logs.items()
                if k not in ("epoch", "time")
            ]
            self._client.log_batch(self.run_id, metrics=metrics)

        self._safe(log)

    def on_fit_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if self.run_id is None:
            return
        h = trainer.history
        tags = {
            "dlpipe.epochs_run": str(len(h)),
            "dlpipe.best_epoch": str(h.best_epoch),
            "dlpipe.stopped_epoch": str(h.stopped_epoch),
        }
        self._safe(lambda: [self._client.set_tag(self.run_id, k, v) for k, v in tags.items()])

    def on_run_saved(self, run: Any) -> None:
        """Log the resolved config, test metrics, the run folder and the bundle; register the model; close the run."""
        if self.run_id is None:
            return
        self._safe(lambda: self._finish(run))

    # ------------------------------------------------------------------ internals
    def _start(self, trainer: Trainer) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        if self.tracking_uri.startswith(("http://", "https://")):
            # MLflow retries an unreachable server for minutes; ask once, briefly, before training.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
            _probe(self.tracking_uri)
        import logging

        logging.getLogger("mlflow.store.db.utils").setLevel(
            logging.WARNING
        )  # "creating tables" chatter
        client = MlflowClient(tracking_uri=self.tracking_uri)
        exp = client.get_experiment_by_name(self.experiment)
        if exp is None:
            location = self.artifact_location
            if location is None and self.tracking_uri.startswith("sqlite:///"):
                location = (
                    (Path(self.tracking_uri[len("sqlite:///") :]).parent / "mlartifacts")
                    .resolve()
                    .as_uri()
                )
            exp_id = client.create_experiment(self.experiment, artifact_location=location)
        else:
            exp_id = exp.experiment_id
        run = client.create_run(exp_id, run_name=self.run_name, tags={"dlpipe": "train"})
        self._client, self.run_id = client, run.info.run_id
        params = {
            "trainer.epochs": trainer.epochs,
            "trainer.batch_size": trainer.batch_size,
            "trainer.learning_rate": trainer.learning_rate,
            "trainer.optimizer": trainer.optimizer_name,
            "trainer.weight_decay": trainer.weight_decay,
            "trainer.seed": trainer.seed,
            "trainer.device": str(trainer.device),
            "trainer.callbacks": ",".join(type(c).__name__ for c in trainer.callbacks),
            "model.n_parameters": sum(p.numel() for p in trainer.model.parameters()),
        }
        client.log_batch(self.run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()])

    def _finish(self, run: Any) -> None:
        from mlflow.entities import Metric, Param, RunStatus

        client, run_id = self._client, self.run_id
        params = {f"config.{k}": v for k, v in _flatten(run.config).items()}
        client.log_batch(run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()])
        test = run.metrics.get("test", {})
        ts = _now_ms()
        metrics = [
            Metric(f"test_{k}", float(v), ts, 0)
            for k, v in test.get("model", {}).items()
            if isinstance(v, (int, float))
        ]
        for base, values in test.get("baselines", {}).items():
            metrics += [
                Metric(f"baseline_{base}_{k}", float(v), ts, 0)
                for k, v in values.items()
                if isinstance(v, (int, float))
            ]
        client.log_batch(run_id, metrics=metrics)
        if test.get("verdict"):
            client.set_tag(run_id, "dlpipe.verdict", str(test["verdict"])[:5000])
        if run.path is not None:
            root = Path(run.path)
            for item in sorted(root.iterdir()):
                if item.is_file():
                    client.log_artifact(run_id, str(item))
                elif item.name != "bundle":
                    client.log_artifacts(run_id, str(item), item.name)
            client.log_artifacts(run_id, str(root / "bundle"), "bundle")
            client.set_tag(run_id, "dlpipe.run_folder", str(root.resolve()))
            name = (
                self.register_as
                if self.register_as is not None
                else f"dlpipe-{run.metrics.get('target', 'model')}"
            )
            if name:
                from mlflow.exceptions import MlflowException

                try:
                    client.create_registered_model(
                        name, description="dlpipe bundles (manifest.json + weights.safetensors)"
                    )
                except MlflowException as exc:
                    if (
                        "ALREADY_EXISTS" not in str(getattr(exc, "error_code", ""))
                        and "already exists" not in str(exc).lower()
                    ):
                        raise
                source = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/bundle"
                version = client.create_model_version(
                    name,
                    source,
                    run_id=run_id,
                    description=f"{run.metrics.get('task')} model of {run.metrics.get('target')!r}",
                )
                self.model_version = f"{name}/{version.version}"
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))

    def _safe(self, fn: Callable[[], Any]) -> None:
        if self.disabled:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # MLflow's own deprecation chatter is not the user's business
                fn()
        except Exception as exc:  # noqa: BLE001 - tracking must never lose a training run
            self.disabled = True
            if not self._warned:
                self._warned = True
                first = (
                    str(exc).strip().splitlines()[0][:300]
                    if str(exc).strip()
                    else type(exc).__name__
                )
                warnings.warn(
                    TrackingWarning(
                        f"MLflow tracking at {self.tracking_uri!r} failed ({first}); the training run continues without tracking."
                    ),
                    stacklevel=3,
                )


def _probe(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=3) as resp:  # noqa: S310 - the user's tracking URI
            resp.read(64)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"the tracking server did not answer: {reason}") from None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
