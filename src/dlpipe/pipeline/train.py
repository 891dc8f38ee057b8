"""``dl.train``: data -> task -> preprocessing (fit on train only) -> model -> training ->
evaluation beside baselines -> bundle -> run folder. The CLI's ``train`` calls exactly this."""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.config import RunConfig, build_config, read_config_file
from dlpipe.core.distributed import (
    init_distributed,
    is_main_process,
    shutdown_distributed,
    world_size,
)
from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.core.files import OutputExistsError, check_parent_writable, claim_output_dir
from dlpipe.core.locking import OutputBusyError, lock_path
from dlpipe.core.runtime import seed_everything
from dlpipe.data import datasets as bundled
from dlpipe.data.preprocessing import TabularPreprocessor, reference_statistics
from dlpipe.data.schema import infer_schema
from dlpipe.data.splits import split_indices
from dlpipe.data.tabular import TableSource, TabularDataset, load_table
from dlpipe.pipeline.recipe import detect_dataset, recipe_for, run_recipe

if TYPE_CHECKING:
    from dlpipe.pipeline.run import Run

__all__ = ["train", "evaluate", "resolve_dataset", "data_sources", "cli_command"]

_TRAIN_KEYS = ("epochs", "batch_size", "learning_rate")

# The command line of the `dlpipe train` call being run (None for a run made from Python): the CLI
# sets it, so a run's record knows whether to show a command or a Python snippet to reproduce it.
_CLI_COMMAND: ContextVar[str | None] = ContextVar("dlpipe_cli_command", default=None)


@contextmanager
def cli_command(argv: list[str]) -> Iterator[None]:
    """Mark the runs made inside this block as made by ``dlpipe <argv...>`` (used by the CLI)."""
    token = _CLI_COMMAND.set(shlex.join(["dlpipe", *argv]))
    try:
        yield
    finally:
        _CLI_COMMAND.reset(token)


def data_sources(data: Any, test: Any, ds: Any) -> dict[str, dict[str, Any] | None]:
    """metrics.json's ``data_sources``: each split's data as given, its row count and a content hash.

    ``{"train": {"source", "rows", "sha256"}, "test": {...} or None}``; ``source`` is the path string
    as given, a bundled data set's name, ``"DataFrame"`` for a frame or ``"<TypeName>"`` for another object;
    ``sha256`` hashes a file's bytes, a frame's :func:`pandas.util.hash_pandas_object`, or is None
    (a folder of images, arrays). ``test`` is None when the test split was carved from the data.
    """
    train_items = next(
        (getattr(ds, a) for a in ("frame", "images", "x") if getattr(ds, a, None) is not None), None
    )
    test_items = next(
        (
            getattr(ds, a)
            for a in ("test_frame", "test_images", "test_x")
            if getattr(ds, a, None) is not None
        ),
        None,
    )
    if test is None and isinstance(data, TabularDataset) and data.test_frame is not None:
        test = data.test_frame  # a data set object carrying its own test table
    return {
        "train": _describe_source(data, len(train_items) if train_items is not None else None, ds),
        "test": None
        if test is None and test_items is None
        else _describe_source(
            test, len(test_items) if test_items is not None else None, ds, bundled_test=test is None
        ),
    }


def _describe_source(
    src: Any, rows: int | None, ds: Any, *, bundled_test: bool = False
) -> dict[str, Any]:
    import pandas as pd

    sha: str | None = None
    frame = None
    if bundled_test:  # a bundled data set's own test split
        source: str = f"{getattr(ds, 'name', 'data')} (test split)"
        frame = getattr(ds, "test_frame", None)
    elif isinstance(src, (str, Path)):
        source = str(src)
        path = Path(src)
        if path.is_file():
            sha = _file_sha256(path)
        elif isinstance(ds, TabularDataset):
            frame = ds.frame if src == getattr(ds, "name", None) else None  # a bundled name
    elif isinstance(src, pd.DataFrame):
        source, frame = "DataFrame", src
    elif isinstance(
        src, TabularDataset
    ):  # a bundled data set keeps its name; any other table object is a frame
        source = src.name if src.name in {d.name for d in bundled.list_datasets()} else "DataFrame"
        frame = src.frame
    else:
        source = (
            f"<{type(src).__name__}>"  # arrays, an image set...: nothing to name on a command line
        )
    if frame is not None:
        sha = hashlib.sha256(
            pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
        ).hexdigest()
    return {"source": source, "rows": rows, "sha256": sha}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_dataset(data: Any, cfg: RunConfig, test: Any = None) -> Any:
    """A dataset object, a table (path/DataFrame/rows), another registered kind, or a bundled data set's name."""
    target = cfg.data.target
    # a dataset object names its kind with a string; a DataFrame with a column named "kind" is a table
    if isinstance(getattr(data, "kind", None), str) and not isinstance(data, (str, Path)):
        if isinstance(data, TabularDataset):
            if target is not None and target != data.target:
                return load_table(
                    data.frame,
                    target,
                    test=test if test is not None else data.test_frame,
                    name=data.name,
                )
            if test is not None:
                return load_table(data.frame, data.target, test=test, name=data.name)
        return data
    found = detect_dataset(
        data, cfg, test
    )  # the registered kinds, highest priority first (pipeline/kinds.py)
    if found is not None:
        return found
    if (
        isinstance(data, str)
        and not Path(data).exists()
        and data in {d.name for d in bundled.list_datasets()}
    ):
        ds = bundled.load(data)
        if (target is not None and target != ds.target) or test is not None:
            return load_table(ds.frame, target or ds.target, test=test, name=ds.name)
        return ds
    return load_table(data, target, test=test)


def train(
    data: TabularDataset | TableSource | str,
    target: str | None = None,
    *,
    task: str | None = None,
    model: Mapping[str, Any] | None = None,
    epochs: int | str | None = None,
    batch_size: int | str | None = None,
    learning_rate: float | str | None = None,
    seed: int | None = None,
    config: str | Path | Mapping[str, Any] | RunConfig | None = None,
    test: TableSource | None = None,
    out: str | Path | None = None,
    runs_dir: str | Path = "runs",
    save: bool = True,
    report: bool = True,
    progress: str = "auto",
    callbacks: list[Any] | None = None,
    checkpoint: bool = True,
    resume: str | Path | None = None,
    overwrite: bool = False,
    **options: Any,
) -> Run:
    """Train, evaluate (beside baselines) and bundle a model; write the run folder.

    Args:
        data: A :class:`TabularDataset`, a CSV/Parquet path, a DataFrame, or a bundled data set's name.
        target: The column to predict (for paths and DataFrames).
        task: ``"auto"``, ``"regression"``, ``"binary"`` or ``"multiclass"``. Defaults to `"auto"`.
        model: Model section, e.g. ``{"family": "mlp", "hidden": [64, 32]}``. Defaults to sizes from the data.
        epochs: Maximum epochs (early stopping usually ends sooner), or ``"auto"``.
        batch_size: Rows per step, or ``"auto"``.
        learning_rate: A number, or ``"auto"`` for the range test.
        seed: One seed for the split, the initial weights and the batch order. Defaults to `0`.
        config: A YAML/JSON path, a mapping or a :class:`RunConfig`; the other arguments override it.
        test: A separate test table; then the data is split into train/validation only.
        out: The run folder: a new or empty folder, or (with ``overwrite``) an earlier dlpipe run folder.
            Checked and locked before training (another process writing it is refused). Defaults to
            ``runs/<name>-<task>-<time>``.
        runs_dir: Where run folders go when ``out`` is not given. Defaults to `"runs"`.
        save: Write the run folder. Defaults to `True`.
        report: Also build ``report.html`` (and ``plots/``) in the run folder. Defaults to `True`.
        progress: ``"auto"``, ``"rich"``, ``"plain"`` or ``"quiet"``. Defaults to `"auto"`.
        callbacks: Extra training callbacks (e.g. an MLflow tracker); one with ``on_run_saved(run)``
            is also called after the run folder is written. Defaults to `None`.
        checkpoint: Write a crash-safe checkpoint every epoch to ``<run folder>.partial`` (removed when the run
            folder is written; kept after a crash or Ctrl-C for ``resume``), as ``dlpipe train`` does. Only when
            ``save`` is True. Defaults to `True`.
        resume: A ``.partial`` folder an interrupted run left behind: continue it (same data and flags).
        overwrite: Replace ``out`` if it is an earlier dlpipe run folder (never a folder dlpipe did not
            write), and discard an interrupted run's checkpoint there. Defaults to `False`.
        **options: Any other config key by name (``dropout=0.2``, ``optimizer="sgd"``, ``patience=10``...).

    Returns:
        A :class:`dlpipe.Run` with ``metrics``, ``history``, ``bundle`` and ``path``.
    """
    started = time.perf_counter()
    if isinstance(config, RunConfig):
        base: Mapping[str, Any] = config.model_dump()
    elif isinstance(config, (str, Path)):
        base = read_config_file(config)
    else:
        base = config or {}
    flags: dict[str, Any] = {
        "target": target,
        "task": task,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        **options,
    }
    if model is not None:
        flags["model"] = dict(model)
    cfg = build_config(base, flags)
    writes = save and is_main_process()  # only rank 0 writes the run folder and bundle
    with ExitStack() as stack:
        # Fail fast, before the data is read or anything trained: the output path is checked and locked
        # (another writer is refused) and stays locked until the run folder is renamed into place.
        if resume is not None and out is None:
            from dlpipe.pipeline._resume import resume_target

            out = resume_target(resume)[1].get("out")
        if writes:
            if out is not None:
                check_parent_writable(
                    out, what="`out`"
                )  # '.', '..', '/' and a file on the way first
                _check_data_outside(out, data, test)
                stack.enter_context(
                    claim_output_dir(out, kind="run", overwrite=overwrite, what="`out`")
                )
            else:
                check_parent_writable(Path(runs_dir) / "run", what="`runs_dir`")
        run, ds, ckpt = _fit(
            data,
            cfg,
            test,
            stack,
            out=out,
            runs_dir=runs_dir,
            progress=progress,
            callbacks=callbacks,
            checkpoint=checkpoint and writes,
            resume=resume,
            overwrite=overwrite,
        )
        run.metrics["wall_time_s"] = round(time.perf_counter() - started, 3)
        if writes:
            if out is not None:
                run.save(out, report=report, overwrite=overwrite)
            else:
                _save_unique(run, Path(runs_dir), cfg.name or ds.name, report)
        if ckpt is not None:
            ckpt.remove()  # the run folder is written: nothing left to resume
    for cb in callbacks or []:
        if hasattr(cb, "on_run_saved"):
            cb.on_run_saved(run)
    return run


def _fit(
    data: Any,
    cfg: RunConfig,
    test: Any,
    stack: ExitStack,
    *,
    out: str | Path | None,
    runs_dir: str | Path,
    progress: str,
    callbacks: list[Any] | None,
    checkpoint: bool,
    resume: str | Path | None,
    overwrite: bool,
) -> tuple[Run, Any, Any]:
    """Resolve the data, pick the recipe, add the checkpoint callback (its folder held by ``stack``) and train."""
    ds = resolve_dataset(data, cfg, test)
    if getattr(ds, "target", None):
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"target": ds.target})})
    recipe = recipe_for(ds, cfg)
    distributed = init_distributed()  # a no-op unless this process is one rank of several
    main = is_main_process()
    extra = list(callbacks or [])
    ckpt = None
    if distributed and resume is not None:
        shutdown_distributed()
        raise InvalidConfigError(
            "`resume` is not supported with several processes yet; resume the run in a single process."
        )
    if (checkpoint or resume is not None) and not distributed:
        # Checkpoints are single-process for now: with --nproc the ranks would need the restored
        # state broadcast, which the engine does not do yet (see docs/distributed.md).
        from dlpipe.pipeline._resume import checkpointing

        ckpt = stack.enter_context(
            checkpointing(ds, cfg, out=out, runs_dir=runs_dir, resume=resume, overwrite=overwrite)
        )
        extra.append(ckpt)  # last: it restores the state the other callbacks reset
    try:
        run = run_recipe(
            recipe, ds, cfg, progress=progress if main else "quiet", extra_callbacks=extra
        )
        command = _CLI_COMMAND.get()
        if command is not None:  # a run made by `dlpipe train`: the command line as typed
            run.metrics.setdefault("command", command)
        run.metrics.setdefault("origin", "cli" if command is not None else "python")
        run.metrics.setdefault("data_source", str(data) if isinstance(data, (str, Path)) else None)
        run.metrics["data_sources"] = data_sources(data, test, ds)
        if distributed:
            run.metrics["world_size"] = world_size()
    finally:
        if distributed:
            shutdown_distributed()
    return run, ds, ckpt


def _check_data_outside(out: str | Path, *sources: Any) -> None:
    """Refuse an ``out`` folder that holds the training or test data (replacing it would delete the data)."""
    root = Path(out).resolve()
    for src in sources:
        if (
            isinstance(src, (str, Path))
            and Path(src).exists()
            and root in Path(src).resolve().parents
        ):
            raise OutputExistsError(
                f"`out` {str(out)!r} holds the data {str(src)!r}, and writing the run folder there could delete it; pass another folder."
            )


def _save_unique(run: Run, runs_dir: Path, name: str, report: bool) -> None:
    """Save under ``runs/<name>-<task>-<time>``, taking the next free name if another run got there first."""
    for _ in range(100):
        try:
            run.save(_unique_run_path(runs_dir, name, run.metrics["task"]), report=report)
            return
        except (OutputBusyError, OutputExistsError):
            continue  # another run took this name since it was picked
    raise OutputExistsError(f"no free run folder name was found in {str(runs_dir)!r}; pass `out`.")


def evaluate(bundle: Any, data: TableSource) -> dict[str, Any]:
    """Score a bundle (object or path) on labelled rows, beside the baselines it carries."""
    from dlpipe.bundle.bundle import Bundle, load_bundle

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    return b.evaluate(data)


def _unique_run_path(runs_dir: Path, name: str, task: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = runs_dir / f"{slug}-{task}-{stamp}"
    i = 2
    while (
        path.exists() or lock_path(path).exists()
    ):  # a lock file: another run is writing it (or was killed)
        path = runs_dir / f"{slug}-{task}-{stamp}-{i}"
        i += 1
    return path


def _split(
    ds: TabularDataset, cfg: RunConfig, strat: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(ds.frame)
    if ds.test_frame is not None:
        tr, va, _ = split_indices(
            n, val_fraction=cfg.data.val_fraction, test_fraction=0.0, seed=cfg.seed, stratify=strat
        )
        return tr, va, np.zeros(0, np.int64)
    if cfg.data.val_fraction + cfg.data.test_fraction >= 0.9:
        raise InvalidInputError(
            f"`val_fraction` + `test_fraction` = {cfg.data.val_fraction + cfg.data.test_fraction:g} leaves too little to train on; keep their sum below 0.9."
        )
    return split_indices(
        n,
        val_fraction=cfg.data.val_fraction,
        test_fraction=cfg.data.test_fraction,
        seed=cfg.seed,
        stratify=strat,
    )


def prepare_table(ds: TabularDataset, cfg: RunConfig) -> dict[str, Any]:
    """Schema, task, split and fitted preprocessor; everything as arrays, nothing trained yet."""
    from dlpipe.tasks.task import infer_task

    seed_everything(cfg.seed)
    frame = ds.frame
    schema = infer_schema(
        frame,
        ds.target,
        categorical=cfg.data.categorical,
        numeric=cfg.data.numeric,
        drop=cfg.data.drop,
    )
    task = infer_task(frame[ds.target], target=ds.target, task=cfg.data.task, loss=cfg.train.loss)
    strat = (
        task.encode(frame[ds.target]).reshape(-1).astype(np.int64)
        if task.is_classification
        else None
    )
    tr, va, te = _split(ds, cfg, strat)
    test_frame = ds.test_frame if ds.test_frame is not None else frame.iloc[te]
    train_frame = frame.iloc[tr]
    pre = TabularPreprocessor(schema, cfg.data.scaling, cfg.data.max_onehot).fit(train_frame)
    if task.kind == "regression":
        import pandas as pd

        task.fit_target(pd.to_numeric(train_frame[ds.target]).to_numpy(np.float64))
    splits = {}
    for name, part in (("train", train_frame), ("val", frame.iloc[va]), ("test", test_frame)):
        x_num, x_cat = pre.transform(part, warn_unknown=name != "train")
        splits[name] = (x_num, x_cat, task.encode(part[ds.target], what=f"{name} target"))
    return {
        "schema": schema,
        "task": task,
        "preprocessor": pre,
        "splits": splits,
        "test_frame": test_frame,  # the test rows as given: the report's worst-errors table shows them
        "reference": reference_statistics(train_frame, schema),
        "split_rows": {k: int(len(v[2])) for k, v in splits.items()},
        "same_rows": len(tr) == len(frame) and len(va) == len(frame),
    }
