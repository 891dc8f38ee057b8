"""``dl.tune``: Optuna (TPE + median/Hyperband pruning on the per-epoch validation loss) over dlpipe's table pipeline.

Every trial trains on the same split and preprocessing (fitted once, on the training rows), with
the same recipe as :func:`dlpipe.train` (early stopping, LR plateau schedule), plus a callback that
reports the validation loss each epoch so unpromising trials stop early. The default configuration
is enqueued as trial 0, so the best trial is never worse than the default on validation. The best
trial is retrained by :func:`dlpipe.train` into ``<run folder>/best`` (a normal run folder with a bundle).

Storage is a SQLite file in the run folder (rerunning the same command resumes the study) or any
SQLAlchemy URL (``postgresql://...``) so that several ``dlpipe tune`` workers share one study; the
study then ends with exactly ``trials`` finished (complete or pruned) trials.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from dlpipe.core.config import RunConfig, build_config, read_config_file
from dlpipe.core.errors import DlpipeWarning, InvalidConfigError, InvalidInputError, RunFailedError
from dlpipe.core.files import claim_output_dir, read_marker, write_json, write_marker
from dlpipe.core.locking import OutputBusyError, lock_path
from dlpipe.core.runtime import require
from dlpipe.tuning.space import SearchSpace, load_space

if TYPE_CHECKING:
    from dlpipe.pipeline.recipe import Prepared

__all__ = ["tune", "TuneResult", "parse_timeout", "connect_storage"]

_PRUNERS = ("median", "hyperband", "none")
_TENTHS = 10  # Hyperband's step: tenths of an epoch of the default config's network


@dataclass
class TuneResult:
    """What :func:`tune` returns: the study, the best trial and its retrained run."""

    study: Any
    best_params: dict[str, Any]
    best_value: float
    default_value: float | None
    path: Path
    best_run: Any = None
    report: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def parse_timeout(value: str | float | int | None) -> float | None:
    """``"30m"``, ``"90s"``, ``"2h"`` or seconds -> seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value))
        if not m:
            raise InvalidConfigError(
                f"`timeout` is {value!r} but must be a duration such as 90s, 30m or 2h."
            )
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds <= 0:
        raise InvalidConfigError(f"`timeout` is {value!r} but must be positive.")
    return seconds


def _masked(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def connect_storage(url: str, heartbeat: int | None = None, *, local_file: bool = False) -> Any:
    """An Optuna RDB storage for ``url``, or one clear sentence naming the URL and the driver's error.

    With ``heartbeat`` (seconds), a running trial records a heartbeat that often; a trial whose last
    heartbeat is older than 3 intervals (its worker died) is failed by the next worker that looks and
    re-queued once with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``).
    ``local_file``: the run folder's own SQLite file, written by this process only: write-ahead log and
    no fsync per commit (not for a file that several machines share, e.g. over NFS).
    """
    optuna = require("optuna", extra="tune")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = (
            "postgresql+psycopg://" + url.split("://", 1)[1]
        )  # psycopg 3 is what the tune extra installs
    kwargs: dict[str, Any] = {}
    if url.startswith("postgresql"):
        kwargs = {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    beat: dict[str, Any] = {}
    if heartbeat:
        with (
            warnings.catch_warnings()
        ):  # Optuna marks the heartbeat experimental (since 2.8); it is what optimize() uses
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = {
                "heartbeat_interval": int(heartbeat),
                "grace_period": 3 * int(heartbeat),
                "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=1
                ),
            }
    for attempt in range(4):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, **beat)
            if local_file and url.startswith("sqlite"):
                _fast_sqlite(storage.engine)
            return storage
        except Exception as exc:  # noqa: BLE001 - any driver error becomes one line
            # workers starting together on a fresh database race to create Optuna's tables: the loser retries
            if attempt < 3 and ("already exists" in str(exc) or "UniqueViolation" in str(exc)):
                time.sleep(0.5 * (attempt + 1))
                continue
            _storage_error(url, exc, local_file)
    raise AssertionError("unreachable")  # pragma: no cover


def _fast_sqlite(engine: Any) -> None:
    """Write-ahead log and no fsync per commit: Optuna commits once per reported epoch, which cost
    ~7 ms each with SQLite's default journal on a busy disk (a crash can lose the last commits,
    never the file's consistency; the study resumes from what was kept)."""
    from sqlalchemy import event

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections opened while Optuna created its tables reconnect with the pragmas


def _storage_error(url: str, exc: BaseException, local_file: bool = False) -> NoReturn:
    detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
    detail = re.sub(r"\(Background on this error at: [^)]*\)", "", detail).strip()
    if local_file:  # the run folder's own study.db: the user passed no --storage
        raise InvalidConfigError(
            f"cannot open the study file {url.split(':///', 1)[-1]!r}: {type(getattr(exc, 'orig', None) or exc).__name__}: {detail[:300]}; "
            "the file is damaged or was written by another program, so move it away to start a new study in this folder."
        ) from None
    raise InvalidConfigError(
        f"cannot reach the study storage {_masked(url)!r}: {type(getattr(exc, 'orig', None) or exc).__name__}: {detail[:300]}; "
        "check the URL and that the database server is running, or leave `storage` unset to use a SQLite file in the run folder."
    ) from None


def _run_dir(out: str | Path | None, runs_dir: str | Path, name: str) -> Path:
    if out is not None:
        return Path(out)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "data"
    path = Path(runs_dir) / f"{slug}-tune-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    i = 2
    while path.exists() or lock_path(path).exists():  # another study started in the same second
        path = Path(runs_dir) / f"{slug}-tune-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{i}"
        i += 1
    return path


def _claim_folder(
    stack: ExitStack, path: Path, *, overwrite: bool, shared: bool
) -> tuple[str, str | None]:
    """Lock the tuning folder for the study: (what is there, None), or ("", the holder) for a worker of a
    shared study whose folder another worker holds. A new, empty or earlier tuning folder is accepted
    (an earlier one resumes its study, or with ``overwrite`` is replaced); anything else is refused."""
    try:
        return stack.enter_context(
            claim_output_dir(path, kind="tune", overwrite=True, what="`out`")
        ), None
    except OutputBusyError as exc:
        if not shared:
            raise
        warnings.warn(
            DlpipeWarning(
                f"`out` {str(path)!r} is being written by another worker of this study ({exc.owner}); "
                "this worker adds trials to the shared study and leaves the folder to that worker."
            ),
            stacklevel=3,
        )
        return "", exc.owner


def _open_folder(path: Path, *, replace: bool) -> None:
    """Create the tuning folder (with dlpipe's marker), or keep an earlier one to resume; ``replace`` starts afresh."""
    if replace:  # an earlier dlpipe tuning folder (checked under the lock) and --overwrite
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(path, old)
        shutil.rmtree(old, ignore_errors=True)
    path.mkdir(exist_ok=True)
    if read_marker(path) is None:
        write_marker(path, "tune")


def _trial_config(cfg: RunConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """The run config (as a mapping) for a trial's parameters."""
    from dlpipe.tuning.space import KNOWN

    data = cfg.model_dump()
    if "dropout" not in cfg.model.model_fields_set:
        # unset, the table recipe picks it (0 for an ensemble): the retrain must pick it the same way
        del data["model"]["dropout"]
    if data["train"].get("threads") is None:
        data["train"]["threads"] = (
            1  # as the trial trained (trial.py), so the retrain reproduces it
        )
    for key, value in params.items():
        if key == "hidden":
            if value:  # an empty list (n_layers 0) keeps the config's sizes, as the trial did (trial_config)
                data["model"]["hidden"] = list(value)
        elif key in KNOWN and key not in ("n_layers", "units"):
            data[KNOWN[key]][key] = value
    return data


def tune(
    data: Any,
    target: str | None = None,
    *,
    trials: int = 30,
    timeout: str | float | None = None,
    space: str | Path | Mapping[str, Any] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    heartbeat: int | None = 30,
    pruner: str = "hyperband",
    out: str | Path | None = None,
    overwrite: bool = False,
    runs_dir: str | Path = "runs",
    config: str | Path | Mapping[str, Any] | None = None,
    seed: int = 0,
    retrain: bool = True,
    report: bool = True,
    progress: str = "auto",
    **options: Any,
) -> TuneResult:
    """Search hyper-parameters with Optuna and retrain the best configuration into a bundle.

    Args:
        data: A table path, DataFrame or bundled data set name (as :func:`dlpipe.train`).
        target: The column to predict.
        trials: Finished (complete or pruned) trials the study should reach. Defaults to `30`.
        timeout: Stop starting new trials after this long (``"30m"``, seconds). Defaults to `None`.
        space: A YAML path or mapping; ``None`` is the Keras Tuner space. Defaults to `None`.
        storage: A SQLAlchemy URL; ``None`` is ``sqlite:///<run folder>/study.db``. Defaults to `None`.
        study_name: Workers with the same name and storage share the study. Defaults to the data's name.
        heartbeat: With ``storage``: each running trial records a heartbeat this often (seconds); a
            trial silent for 3 intervals (its worker died) is failed and re-run once by a live worker,
            and workers stay until the study has ``trials`` finished trials. ``None``/0: off. Defaults to `30`.
        pruner: ``"hyperband"``, ``"median"`` or ``"none"``. Defaults to `"hyperband"` (measured to prune the Keras Tuner space harder, benchmarks/RESULTS.md).
        out: The run folder: new, empty, or an earlier tuning folder (whose study this run resumes). It is
            locked for the whole study: a second tuning of it is refused, unless both share ``storage``,
            then only the first writes it. Defaults to ``runs/<name>-tune-<time>``.
        overwrite: Replace ``out`` if it is an earlier dlpipe tuning folder (a new study) instead of
            resuming it; never any other folder. Defaults to `False`.
        seed: Seeds the split, the weights, the batch order and the sampler. Defaults to `0`.
        retrain: Retrain the best trial into ``<out>/best``. Defaults to `True`.
        report: Build the tuning folder's ``report.html`` (trials table, optimisation history, parameter
            importances) and the retrained run's own report. Defaults to `True`.

    Returns:
        A :class:`TuneResult`.
    """
    begun = time.monotonic()
    optuna = require("optuna", extra="tune")
    from dlpipe.pipeline._fit import TableRecipe
    from dlpipe.pipeline.settings import resolve_settings
    from dlpipe.pipeline.train import resolve_dataset
    from dlpipe.tuning.trial import model_cost, trial_model

    problems = []
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        problems.append(f"`trials` is {trials!r} but must be a positive integer")
    if pruner not in _PRUNERS:
        problems.append(f"`pruner` is {pruner!r} but must be one of {', '.join(_PRUNERS)}")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    seconds = parse_timeout(timeout)
    search = load_space(space)
    base: Mapping[str, Any] = (
        read_config_file(config) if isinstance(config, (str, Path)) else (config or {})
    )
    cfg = build_config(base, {"target": target, "seed": seed, **options})
    ds = resolve_dataset(data, cfg)
    if getattr(ds, "kind", "table") != "table":
        raise InvalidInputError(
            f"tuning supports tables for now, but the data is of kind {ds.kind!r}; pass a CSV/Parquet table."
        )
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"target": ds.target})})
    if heartbeat is not None and (
        not isinstance(heartbeat, int) or isinstance(heartbeat, bool) or heartbeat < 0
    ):
        raise InvalidConfigError(
            f"`heartbeat` is {heartbeat!r} but must be a whole number of seconds (0 turns it off)."
        )
    path = _run_dir(out, runs_dir, ds.name)
    local = storage is None
    url = storage or f"sqlite:///{(path / 'study.db').resolve()}"
    with ExitStack() as stack:
        # The run folder is checked and locked before any work and for the whole study: a second
        # `dlpipe tune` of the same folder is refused, unless the workers share a --storage study; then
        # the worker holding the folder writes it and the others only add trials to the study.
        found, busy = _claim_folder(stack, path, overwrite=overwrite, shared=not local)
        recipe = TableRecipe()
        prepared = recipe.prepare(ds, cfg)  # once per study: every trial trains on the same tensors
        if prepared.rows["val"] == 0:
            raise InvalidInputError(
                "tuning needs validation rows but `val_fraction` is 0; set val_fraction to 0.1 or more."
            )
        if local:
            _open_folder(
                path, replace=found == "replace" and overwrite
            )  # the SQLite file lives in it
        beat = (
            heartbeat if not local and heartbeat else None
        )  # one worker in memory needs no heartbeat
        rdb = connect_storage(
            url, heartbeat=beat, local_file=local
        )  # a shared storage is checked before anything is written to disk
        if not local and busy is None:
            _open_folder(path, replace=found == "replace" and overwrite)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # the default config: its settings as `dlpipe train` resolves them, and the network it builds
        n_train = prepared.n_train if prepared.n_train is not None else len(prepared.train)
        defaults = resolve_settings(cfg, recipe, n_train, prep=prepared)
        default_model, default_spec = trial_model(cfg, prepared, {})
        # no trial trains longer than the default config may (its epoch budget), and Hyperband's largest
        # bracket is that budget; the pruners act on the validation loss reported after every epoch
        max_epochs = defaults.epochs
        # Hyperband's resource is training compute, in tenths of an epoch of the default config's network:
        # trials are compared at equal cost, so a network 100x the default's size must beat what smaller
        # ones reached with the same compute to keep training (a pruner on epochs alone let wide networks
        # spend 10-20x the default's time per epoch). Median compares at equal epochs.
        cost_unit = model_cost(default_model) / _TENTHS if pruner == "hyperband" else None
        pruner_obj = {
            "median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
            "hyperband": optuna.pruners.HyperbandPruner(
                min_resource=_TENTHS, max_resource=_TENTHS * max_epochs, reduction_factor=3
            ),
            "none": optuna.pruners.NopPruner(),
        }[pruner]
        # one worker: a seeded sampler (reproducible); several workers: unseeded, so they do not propose the same points
        sampler = optuna.samplers.TPESampler(seed=seed if local else None, n_startup_trials=10)
        name = study_name or f"dlpipe-{ds.name}"
        study = optuna.create_study(
            storage=rdb,
            sampler=sampler,
            pruner=pruner_obj,
            study_name=name,
            direction="minimize",
            load_if_exists=True,
        )
        durable = None
        if local:
            # nobody else uses this file: RUNNING trials were left by a killed earlier run of this folder
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            # One worker: the study runs in memory (Optuna's sampler and pruner read every trial each
            # epoch, ~15 ms a time through SQLAlchemy on SQLite) and each finished trial is copied to the
            # SQLite file at once, so the file stays the resumable record.
            durable, study = (
                study,
                optuna.create_study(
                    sampler=sampler, pruner=pruner_obj, study_name=name, direction="minimize"
                ),
            )
            study.add_trials(durable.get_trials(deepcopy=False))
        # a rate the range test will choose is no point of the space: then the default config is not enqueued
        default_cfg = {
            "hidden": list(default_spec["hidden"]),
            "n_layers": len(default_spec["hidden"]),
            "dropout": cfg.model.dropout,
            "learning_rate": None if defaults.find_learning_rate else defaults.learning_rate,
            "batch_size": defaults.batch_size,
            "weight_decay": cfg.train.weight_decay,
            "optimizer": cfg.train.optimizer,
            "activation": cfg.model.activation,
            "batch_norm": cfg.model.batch_norm,
            "momentum": cfg.train.momentum,
        }
        if not study.trials:
            default_params = search.optuna_params(default_cfg)
            if default_params is not None:
                study.enqueue_trial(default_params, user_attrs={"default_config": True})

        counted = (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.RUNNING,
        )
        started = time.monotonic()
        ran = 0
        waiting: tuple[tuple[int, ...], float] = (
            (),
            0.0,
        )  # (live trial numbers, since when) while waiting for other workers
        while True:
            if seconds is not None and time.monotonic() - started >= seconds:
                break
            if beat:
                _fail_stale(study)
            if len(study.get_trials(deepcopy=False, states=counted[:2])) >= trials:
                break
            live = study.get_trials(deepcopy=False, states=counted)
            if len(live) >= trials:
                # other workers run the last trials: stay, so that a dead worker's trial (failed once its
                # heartbeat is 3 intervals old) is re-run here; give up after 30 intervals without any change
                # (a worker killed before its first heartbeat leaves a trial no heartbeat check can fail)
                seen = tuple(sorted(t.number for t in live))
                if seen != waiting[0]:
                    waiting = (seen, time.monotonic())
                if not beat or time.monotonic() - waiting[1] > 30 * beat:
                    break
                time.sleep(min(beat, 1.0))
                continue
            with warnings.catch_warnings():  # Optuna warns that heartbeats are meant for optimize(): this loop beats and fails stale trials itself
                warnings.filterwarnings(
                    "ignore",
                    message="Heartbeat of storage is supposed to be used with Study.optimize",
                )
                trial = study.ask()
            # trial numbers are unique across workers: only the first `trials` live ones may run
            ahead = [
                t
                for t in study.get_trials(deepcopy=False, states=counted)
                if t.number < trial.number
            ]
            if len(ahead) >= trials:
                trial.set_user_attr("surplus", True)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            try:
                with _heartbeat(rdb, trial._trial_id, beat):
                    value = _objective(trial, search, cfg, prepared, max_epochs, cost_unit)
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            except RunFailedError as exc:  # e.g. a loss that became NaN at a high learning rate: the next trial may do better
                trial.set_user_attr("error", str(exc))
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            except BaseException:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                _keep(durable, study, trial.number)
                rdb.engine.dispose()
                raise
            else:
                study.tell(trial, value)
            _keep(durable, study, trial.number)
            ran += 1
            if progress != "quiet":
                done = len(study.get_trials(deepcopy=False, states=counted[:2]))
                best = _best_value(study)
                state = study.get_trials(deepcopy=False)[trial.number].state.name.lower()
                print(
                    f"trial {trial.number}: {state}  (finished {done}/{trials}, best val_loss {best:.4g})",
                    flush=True,
                )

        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            rdb.engine.dispose()
            raise RunFailedError(
                f"no trial of study {name!r} completed (all were pruned or failed); widen the search space or raise `trials`."
            )
        best = study.best_trial
        best_params = dict(best.user_attrs.get("config", best.params))
        default_trials = [t for t in complete if t.user_attrs.get("default_config")]
        default_value = default_trials[0].value if default_trials else None
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        summary = {
            "study": name,
            "storage": _masked(url),
            "trials_requested": trials,
            "trials_run_here": ran,
            "complete": states.count("COMPLETE"),
            "pruned": states.count("PRUNED"),
            "failed": states.count("FAIL"),
            "best_trial": best.number,
            "best_val_loss": best.value,
            "best_val_score": best.user_attrs.get("val_score"),
            "default_val_loss": default_value,
            "default_val_score": default_trials[0].user_attrs.get("val_score")
            if default_trials
            else None,
            "best_params": best_params,
            "tuning_time_s": round(time.monotonic() - started, 3),
            "pruner": pruner,
            "pruner_step": "tenths of a default-config epoch of compute" if cost_unit else "epoch",
            "search_space": {
                k: (
                    v
                    if isinstance(v, list)
                    else {"low": v.low, "high": v.high, "step": v.step, "log": v.log}
                )
                for k, v in search.ranges.items()
            },
        }
        if (
            busy is not None
        ):  # another worker writes the folder: this one only added trials to the study
            rdb.engine.dispose()
            summary["folder_written_by_another_worker"] = busy
            return TuneResult(
                study=study,
                best_params=best_params,
                best_value=float(best.value),
                default_value=default_value,
                path=path,
                summary=summary,
            )
        _write_reports(study, path, summary)
        rdb.engine.dispose()  # close the pooled connections (a later read of result.study reconnects)
        summary["search_s"] = round(
            time.monotonic() - begun, 3
        )  # everything before the retrain: data, study, trials, tables
        write_json(path / "tuning.json", summary)
        result = TuneResult(
            study=study,
            best_params=best_params,
            best_value=float(best.value),
            default_value=default_value,
            path=path,
            summary=summary,
        )
        if retrain:
            import dlpipe as dl

            retrain_started = time.monotonic()
            # best/ is this tuning folder's own run folder: replaced on each (resumed) study
            result.best_run = dl.train(
                ds,
                config=_trial_config(cfg, best_params),
                out=path / "best",
                report=report,
                progress="quiet" if progress == "quiet" else "auto",
                overwrite=True,
            )
            summary["best_run_test"] = result.best_run.metrics["test"]["model"]
            summary["retrain_s"] = round(time.monotonic() - retrain_started, 3)
            write_json(path / "tuning.json", summary)
        if report:
            from dlpipe.tuning.report import build_tuning_report

            result.report = build_tuning_report(path)
        return result


def _fail_stale(study: Any) -> None:
    optuna = require("optuna", extra="tune")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@contextmanager
def _heartbeat(storage: Any, trial_id: int, interval: int | None) -> Iterator[None]:
    """Record the trial's heartbeat every ``interval`` seconds on a thread while the trial trains."""
    if not interval:
        yield
        return
    storage.record_heartbeat(
        trial_id
    )  # at once: a worker that dies from here on leaves a trial others can fail
    stop = threading.Event()

    def beat() -> None:
        try:
            while True:
                storage.record_heartbeat(trial_id)
                if stop.wait(interval):
                    return
        except Exception:  # noqa: BLE001 - the database went away: the trial will be seen as stale, which is right
            return

    thread = threading.Thread(target=beat, name=f"dlpipe-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _keep(durable: Any, study: Any, number: int) -> None:
    """Copy a finished in-memory trial to the SQLite study (one worker), with its reports and attributes."""
    if durable is not None:
        durable.add_trial(study.get_trials(deepcopy=False)[number])


def _best_value(study: Any) -> float:
    try:
        return float(study.best_value)
    except ValueError:
        return float("nan")


def _objective(
    trial: Any,
    search: SearchSpace,
    cfg: RunConfig,
    prepared: Prepared,
    max_epochs: int,
    cost_unit: float | None = None,
) -> float:
    from dlpipe.tuning.trial import train_trial

    params = search.sample(trial)
    params.pop("n_layers", None)
    trial.set_user_attr("config", params)
    val_loss, val_score, epochs = train_trial(
        trial, cfg, prepared, params, max_epochs=max_epochs, cost_unit=cost_unit
    )
    trial.set_user_attr("val_score", val_score)
    trial.set_user_attr("epochs_run", epochs)
    return val_loss


def _write_reports(study: Any, path: Path, summary: dict[str, Any]) -> None:
    """trials.csv (the trials table), intermediate.csv (val_loss per epoch of every trial), tuning.json (+ importances)."""
    optuna = require("optuna", extra="tune")
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    best = np.inf
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            best = min(best, t.value)
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "val_loss": t.value,
                "val_score": t.user_attrs.get("val_score"),
                "epochs": t.user_attrs.get("epochs_run", len(t.intermediate_values)),
                "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
                if t.datetime_complete and t.datetime_start
                else None,
                "best_so_far": None if not np.isfinite(best) else best,
                "default_config": bool(t.user_attrs.get("default_config", False)),
                **{f"param_{k}": v for k, v in t.params.items()},
            }
        )
        # one report per epoch; the step is the epoch, or the compute spent so far (Hyperband's resource)
        curves.extend(
            {"number": t.number, "epoch": i + 1, "step": step, "val_loss": v}
            for i, (step, v) in enumerate(sorted(t.intermediate_values.items()))
        )
    import pandas as pd

    pd.DataFrame(rows).to_csv(path / "trials.csv", index=False)
    pd.DataFrame(curves, columns=["number", "epoch", "step", "val_loss"]).to_csv(
        path / "intermediate.csv", index=False
    )
    summary.pop("importances", None)
    summary.pop("importances_note", None)
    n_complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if n_complete < 2:
        summary["importances_note"] = (
            f"parameter importances need at least 2 complete trials and this study has {n_complete}; "
            "run more trials (`trials`) to see them."
        )
    else:
        try:
            import warnings

            with warnings.catch_warnings():  # "few trials per regime" chatter: importances on few trials are rough, and said so in the report
                warnings.simplefilter("ignore")
                summary["importances"] = {
                    k: float(v) for k, v in optuna.importance.get_param_importances(study).items()
                }
        except (
            RuntimeError,
            ValueError,
        ) as exc:  # e.g. every complete trial had the same parameters
            summary["importances_note"] = f"parameter importances could not be computed ({exc})."
    write_json(path / "tuning.json", summary)
