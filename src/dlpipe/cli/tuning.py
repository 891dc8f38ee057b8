"""``dlpipe tune`` and ``dlpipe ensemble``: thin commands over dlpipe.tuning and dlpipe.ensembles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dlpipe.cli.app import app


@app.command()
def tune(
    data: Annotated[
        str, typer.Argument(help="A CSV/TSV/Parquet file, or a bundled data set name.")
    ],
    target: Annotated[str | None, typer.Option("--target", "-t", help="Column to predict.")] = None,
    trials: Annotated[
        int, typer.Option(help="Finished trials the study should reach (shared by all workers).")
    ] = 30,
    timeout: Annotated[
        str | None, typer.Option(help="Stop starting trials after this long: 90s, 30m, 2h.")
    ] = None,
    space: Annotated[
        Path | None, typer.Option(help="Search space YAML (default: Keras Tuner's space).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL shared by workers (default: SQLite in the run folder)."),
    ] = None,
    study_name: Annotated[
        str | None, typer.Option(help="Study name (workers with one name and storage share it).")
    ] = None,
    heartbeat: Annotated[
        int,
        typer.Option(
            help="With --storage: seconds between a running trial's heartbeats; a dead worker's trial is re-run (0: off)."
        ),
    ] = 30,
    pruner: Annotated[str, typer.Option(help="hyperband, median or none.")] = "hyperband",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Run folder (rerun with the same folder to resume the study)."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Start afresh: replace --out if it is an earlier dlpipe tune folder (never any other folder).",
        ),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML/JSON base config.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Maximum epochs per trial (default: auto).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds split, weights, batch order and sampler.")] = 0,
    no_retrain: Annotated[
        bool, typer.Option("--no-retrain", help="Do not retrain the best trial into <out>/best.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-trial lines.")] = False,
    no_report: Annotated[
        bool,
        typer.Option("--no-report", help="Skip report.html (trials table, history, importances)."),
    ] = False,
) -> None:
    """Tune hyper-parameters with Optuna (TPE, pruning); retrain the best trial into a bundle."""
    from dlpipe.tuning import tune as run_tune

    extra: dict[str, Any] = {"epochs": epochs} if epochs is not None else {}
    result = run_tune(
        data,
        target,
        trials=trials,
        timeout=timeout,
        space=space,
        storage=storage,
        study_name=study_name,
        heartbeat=heartbeat,
        pruner=pruner,
        out=out,
        overwrite=overwrite,
        config=config,
        seed=seed,
        retrain=not no_retrain,
        report=not no_report,
        progress="quiet" if quiet else "auto",
        **extra,
    )
    s = result.summary
    typer.echo(
        f"study {s['study']}: {s['complete']} complete, {s['pruned']} pruned, {s['failed']} failed"
    )
    default = f"{s['default_val_loss']:.4f}" if s["default_val_loss"] is not None else "-"
    typer.echo(
        f"best val_loss {s['best_val_loss']:.4f} (trial {s['best_trial']}); default config {default}"
    )
    typer.echo(f"best params: {s['best_params']}")
    if s.get("folder_written_by_another_worker"):
        typer.echo(
            f"run folder: {result.path} (written by the worker holding it, {s['folder_written_by_another_worker']})"
        )
    else:
        typer.echo(f"run folder: {result.path}")
    if result.best_run is not None:
        typer.echo(f"bundle:     {result.path / 'best' / 'bundle'}")
    if result.report is not None:
        typer.echo(f"report:     {result.report}")


@app.command()
def ensemble(
    bundles: Annotated[
        list[Path], typer.Argument(help="Member bundle folders (same task and labels).")
    ],
    method: Annotated[
        str,
        typer.Option(help="soft (weighted mean) or stack (meta-model on out-of-fold predictions)."),
    ] = "soft",
    weights: Annotated[
        str | None, typer.Option(help="Comma-separated member weights for soft, e.g. 2,1,1.")
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Labelled training table (needed by --method stack).")
    ] = None,
    folds: Annotated[int, typer.Option(help="Folds for out-of-fold predictions (stack).")] = 5,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The ensemble bundle folder (a new or empty folder)."),
    ] = Path("runs/ensemble"),
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace --out if it is an earlier dlpipe ensemble folder (never any other folder or file).",
        ),
    ] = False,
) -> None:
    """Combine bundles into one ensemble bundle that predicts, evaluates and serves like any bundle."""
    from dlpipe.core.errors import InvalidConfigError
    from dlpipe.core.files import claim_output_dir
    from dlpipe.ensembles import build_ensemble

    w = None
    if weights is not None:
        try:
            w = [float(x) for x in weights.split(",") if x.strip()]
        except ValueError:
            raise InvalidConfigError(
                f"`--weights` is {weights!r} but must be comma-separated numbers such as 2,1,1."
            ) from None
    with claim_output_dir(
        out, kind="ensemble", overwrite=overwrite, what="`out`"
    ):  # checked and locked before the (stack) fits
        ens = build_ensemble([str(b) for b in bundles], method, weights=w, data=data, folds=folds)
        ens.save(out, overwrite=overwrite)
    typer.echo(f"ensemble of {len(ens.members)} bundles ({method}) written to {out}")
