"""Typer commands. Each one parses flags, calls the public API and prints; errors become one line."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="dlpipe",
    help=(
        "Data to a trained, evaluated, saved and served neural network: tables (CSV/TSV/Parquet), "
        "series (a table with a time column, Monash .tsf), labelled sequences (UCR/UEA .ts/.tsv), "
        "image folders, .npz arrays and IDX (MNIST) files."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATE: dict[str, Any] = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    _STATE["debug"] = debug or os.environ.get("DLPIPE_DEBUG") == "1"


def _csv_ints(text: str | None, flag: str = "--hidden") -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        from dlpipe.core.errors import InvalidConfigError

        raise InvalidConfigError(
            f"`{flag}` is {text!r} but must be comma-separated integers such as 64,32."
        ) from None


def _csv_names(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def _csv_floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        from dlpipe.core.errors import InvalidConfigError

        raise InvalidConfigError(
            f"`{flag}` is {text!r} but must be comma-separated numbers such as 0.5,0.5,0.5."
        ) from None


def _trackers(track: str | None, runs_dir: Path) -> list[Any] | None:
    if track is None:
        return None
    from dlpipe.tracking import tracker_from_flag

    return [tracker_from_flag(track, runs_dir)]


def _number_or_auto(text: str | None, flag: str, kind: type) -> Any:
    if text is None or text == "auto":
        return text
    try:
        return kind(text)
    except ValueError:
        from dlpipe.core.errors import InvalidConfigError

        raise InvalidConfigError(f"`{flag}` is {text!r} but must be a number or 'auto'.") from None


@app.command()
def train(
    data: Annotated[
        str,
        typer.Argument(
            help=(
                "A table (CSV/TSV/Parquet; with --task forecast --time-column: a series), a Monash .tsf "
                "series file, a UCR/UEA .ts/.tsv sequence file (--test: its TEST file), an image folder "
                "(one subfolder per class) or a CSV of image paths, an .npz of arrays, an IDX images "
                "file (--labels: its labels file), or a bundled data set name (see `dlpipe datasets`)."
            )
        ),
    ],
    target: Annotated[str | None, typer.Option("--target", "-t", help="Column to predict.")] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="auto, regression, binary, multiclass, forecast or sequence-classification."
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="Primary metric of the verdict; auto: roc_auc (binary), log_loss (multiclass), rmse (regression), accuracy (images, sequences)."
        ),
    ] = None,
    test: Annotated[
        Path | None,
        typer.Option(help="A separate test file (then data is split into train/val only)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Run folder: a new or empty folder (default runs/<name>-<task>-<time>).",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace --out if it is an earlier dlpipe run folder (never any other folder or file).",
        ),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML/JSON config; flags override it.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model family.")] = None,
    hidden: Annotated[str | None, typer.Option(help="Hidden layer sizes, e.g. 64,32.")] = None,
    latent: Annotated[
        int | None, typer.Option(help="Generative: code width of an autoencoder, VAE or GAN.")
    ] = None,
    decoder: Annotated[
        str | None, typer.Option(help="Conv autoencoder upsampling: transpose or unpool.")
    ] = None,
    kl_anneal: Annotated[
        int | None, typer.Option(help="VAE: epochs over which the KL weight rises from 0 to 1.")
    ] = None,
    activation: Annotated[
        str | None, typer.Option(help="relu, gelu, tanh, sigmoid, leaky_relu, silu.")
    ] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout after each hidden layer.")] = None,
    batch_norm: Annotated[
        bool | None, typer.Option("--batch-norm/--no-batch-norm", help="Batch normalisation.")
    ] = None,
    epochs: Annotated[str | None, typer.Option(help="Maximum epochs or 'auto'.")] = None,
    batch_size: Annotated[str | None, typer.Option(help="Rows per step or 'auto'.")] = None,
    lr: Annotated[
        str | None,
        typer.Option("--lr", "--learning-rate", help="Learning rate or 'auto' (range test)."),
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw, adam, sgd or rmsprop.")] = None,
    momentum: Annotated[float | None, typer.Option(help="Momentum for sgd/rmsprop.")] = None,
    nesterov: Annotated[
        bool | None, typer.Option("--nesterov/--no-nesterov", help="Nesterov momentum (sgd).")
    ] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay.")] = None,
    schedule: Annotated[str | None, typer.Option(help="none, plateau, cosine or onecycle.")] = None,
    patience: Annotated[
        int | None, typer.Option(help="Early-stopping patience in epochs (0: off).")
    ] = None,
    monitor: Annotated[str | None, typer.Option(help="Metric early stopping watches.")] = None,
    clip_grad: Annotated[
        float | None, typer.Option(help="Clip the gradient norm to this value.")
    ] = None,
    class_weight: Annotated[str | None, typer.Option(help="none or balanced.")] = None,
    scaling: Annotated[str | None, typer.Option(help="standard, minmax, l2 or none.")] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="Share of rows for validation.")
    ] = None,
    test_fraction: Annotated[float | None, typer.Option(help="Share of rows for testing.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="One seed for split, weights and batch order.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    deterministic: Annotated[
        bool | None,
        typer.Option(
            "--deterministic/--no-deterministic",
            help="Deterministic kernels and one CPU thread whatever the load (slower).",
        ),
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    time_column: Annotated[
        str | None, typer.Option(help="Series: the column of timestamps (rows are ordered by it).")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Series: other input columns, e.g. Open,High,Low,Volume.")
    ] = None,
    lookback: Annotated[
        str | None, typer.Option(help="Series: rows each window sees, or 'auto'.")
    ] = None,
    horizon: Annotated[int | None, typer.Option(help="Series: steps ahead to forecast.")] = None,
    stride: Annotated[
        int | None, typer.Option(help="Series: rows between training windows.")
    ] = None,
    recursive: Annotated[
        bool | None,
        typer.Option(
            "--recursive/--direct",
            help="Series: recursive one-step or direct multi-output forecasting.",
        ),
    ] = None,
    period: Annotated[
        int | None,
        typer.Option(
            help="Series: season length for the seasonal-naive baseline (default: detected)."
        ),
    ] = None,
    znorm: Annotated[
        bool | None, typer.Option("--znorm/--no-znorm", help="Sequences: z-normalise each series.")
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Refuse NaNs instead of interpolating them; images: unreadable files are an error, not skipped.",
        ),
    ] = None,
    bidirectional: Annotated[
        bool | None,
        typer.Option(
            "--bidirectional/--no-bidirectional",
            help="Sequence classification: bidirectional RNN layers.",
        ),
    ] = None,
    image_column: Annotated[
        str | None,
        typer.Option(help="Images: the CSV column of image paths (relative to the CSV)."),
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Images: the IDX labels file for an IDX images file.")
    ] = None,
    image_size: Annotated[
        str | None,
        typer.Option(
            help="Images: resize to SIDE or HEIGHT,WIDTH (default: the most common size)."
        ),
    ] = None,
    resize: Annotated[
        bool | None,
        typer.Option(
            "--resize/--no-resize", help="Images: resize differing sizes (--no-resize: an error)."
        ),
    ] = None,
    color: Annotated[str | None, typer.Option(help="Images: auto, grey or rgb.")] = None,
    normalize: Annotated[
        str | None,
        typer.Option(help="Images: per-channel mean/std from 'train', 'imagenet' or 'none'."),
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(
            help="Images: none, all, or a list of crop,flip,rotate (training batches only)."
        ),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            help="Images: a torchvision-format weight file (.pth or .safetensors) for the model."
        ),
    ] = None,
    freeze_backbone: Annotated[
        bool | None,
        typer.Option(
            "--freeze-backbone/--no-freeze-backbone", help="Images: train only the new head."
        ),
    ] = None,
    finetune_epochs: Annotated[
        int | None,
        typer.Option(help="Images: then unfreeze and train this many epochs at a lower LR."),
    ] = None,
    precision: Annotated[str | None, typer.Option(help="Images: fp32 or bf16 (autocast).")] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="Images: channels_last memory format (default: measured choice).",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue an interrupted run from its runs/<name>.partial folder (same data and flags)."
        ),
    ] = None,
    checkpoint: Annotated[
        bool,
        typer.Option(
            "--checkpoint/--no-checkpoint",
            help="Crash-safe checkpoints every epoch in <run>.partial.",
        ),
    ] = True,
    track: Annotated[
        str | None, typer.Option(help="mlflow (local SQLite beside the runs folder) or mlflow:URI.")
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            help="Train on N processes of this machine (torch.distributed; gloo on CPU, NCCL on CUDA)."
        ),
    ] = 1,
    master_port: Annotated[
        int, typer.Option(help="Port of rank 0 for --nproc (127.0.0.1).")
    ] = 29500,
    report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report", help="Build report.html and plots/ in the run folder."
        ),
    ] = True,
    name: Annotated[
        str | None,
        typer.Option(help="A name for the run (its folder is runs/<name>-<task>-<time>)."),
    ] = None,
    max_onehot: Annotated[
        int | None,
        typer.Option(help="Categoricals with more levels than this get an embedding, not one-hot."),
    ] = None,
    categorical: Annotated[
        str | None, typer.Option(help="Columns to treat as categorical, e.g. zip,store.")
    ] = None,
    numeric: Annotated[
        str | None, typer.Option(help="Columns to treat as numeric, e.g. age,income.")
    ] = None,
    drop: Annotated[str | None, typer.Option(help="Columns to leave out, e.g. id,name.")] = None,
    embedding_dim: Annotated[
        int | None,
        typer.Option(
            help="Width of every categorical embedding (default: from the number of levels)."
        ),
    ] = None,
    members: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Table MLP: ensemble members sharing the hidden layers (default: 32 below 2,000 training rows, else 8, for classification; 8 for regression; from 2,000 rows the default also encodes numbers piecewise-linearly; 1 = a plain MLP).",
        ),
    ] = None,
    min_delta: Annotated[
        float | None,
        typer.Option(help="Smallest change of the monitored metric that counts as an improvement."),
    ] = None,
    restore_best: Annotated[
        bool | None,
        typer.Option(
            "--restore-best/--no-restore-best",
            help="Put back the best epoch's weights when training ends.",
        ),
    ] = None,
    loss: Annotated[
        str | None, typer.Option(help="Regression and forecast loss: auto, mse, mae or huber.")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="CPU threads for training (default: chosen per step size and load)."),
    ] = None,
    residual: Annotated[
        bool | None,
        typer.Option(
            "--residual/--no-residual",
            help="Series: the model predicts a change from the last value.",
        ),
    ] = None,
    relative: Annotated[
        bool | None,
        typer.Option(
            "--relative/--no-relative", help="Series: scale each window by its last value."
        ),
    ] = None,
    series_column: Annotated[
        str | None,
        typer.Option(
            help="Series: the column naming each series of a long table (one global model)."
        ),
    ] = None,
    refit: Annotated[
        bool | None,
        typer.Option(
            "--refit/--no-refit",
            help="Series: refit on the whole series with the chosen epochs before forecasting the future.",
        ),
    ] = None,
    mean: Annotated[
        str | None,
        typer.Option(help="Images: per-channel mean for normalisation, e.g. 0.485,0.456,0.406."),
    ] = None,
    std: Annotated[
        str | None,
        typer.Option(help="Images: per-channel std for normalisation, e.g. 0.229,0.224,0.225."),
    ] = None,
    cache: Annotated[
        bool | None,
        typer.Option("--cache/--no-cache", help="Images: keep decoded images in the cache folder."),
    ] = None,
    channels: Annotated[
        str | None, typer.Option(help="Images: CNN channels per block, e.g. 32,64.")
    ] = None,
    kernel_size: Annotated[int | None, typer.Option(help="Images: CNN kernel size.")] = None,
    padding: Annotated[str | None, typer.Option(help="Images: CNN padding, same or valid.")] = None,
    finetune_lr_factor: Annotated[
        float | None, typer.Option(help="Images: learning-rate factor for --finetune-epochs.")
    ] = None,
) -> None:
    """Train a model on a table, series, sequences or images; write the run folder with metrics beside baselines and a bundle.

    Every config key has a flag of the same name (``restore_best`` -> ``--restore-best``); flags override ``--config``.
    """
    if nproc > 1 and "RANK" not in os.environ:
        from dlpipe.core.files import check_output_dir, check_parent_writable
        from dlpipe.distributed import launch

        if (
            out is not None
        ):  # fail before starting the ranks (rank 0 checks again, holding the lock)
            check_parent_writable(out, what="`out`")
            check_output_dir(out, kind="run", overwrite=overwrite, what="`out`")
            if out.parent.is_dir():
                from dlpipe.core.locking import OutputLock

                with OutputLock(out, "`out`"):  # refused now if another process is writing it
                    pass
        launch(_without_launch_flags(_STATE.get("argv") or sys.argv[1:]), nproc, master_port)
        return
    import dlpipe as dl

    model_section = {
        "family": model,
        "hidden": _csv_ints(hidden),
        "activation": activation,
        "dropout": dropout,
        "batch_norm": batch_norm,
        "latent": latent,
        "decoder": decoder,
        "kl_anneal": kl_anneal,
    }
    options = {
        "optimizer": optimizer,
        "momentum": momentum,
        "nesterov": nesterov,
        "weight_decay": weight_decay,
        "schedule": schedule,
        "patience": patience,
        "monitor": monitor,
        "clip_grad": clip_grad,
        "class_weight": class_weight,
        "metric": metric,
        "scaling": scaling,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "device": device,
        "deterministic": deterministic,
        "time_column": time_column,
        "features": features.split(",") if features else None,
        "lookback": _number_or_auto(lookback, "--lookback", int),
        "horizon": horizon,
        "stride": stride,
        "recursive": recursive,
        "period": period,
        "znorm": znorm,
        "strict": strict,
        "bidirectional": bidirectional,
        "image_column": image_column,
        "labels": labels,
        "image_size": _csv_ints(image_size, "--image-size"),
        "resize": resize,
        "color": color,
        "normalize": normalize,
        "augment": augment,
        "pretrained": pretrained,
        "freeze_backbone": freeze_backbone,
        "finetune_epochs": finetune_epochs,
        "precision": precision,
        "channels_last": channels_last,
        "name": name,
        "max_onehot": max_onehot,
        "categorical": _csv_names(categorical),
        "numeric": _csv_names(numeric),
        "drop": _csv_names(drop),
        "embedding_dim": embedding_dim,
        "members": members,
        "min_delta": min_delta,
        "restore_best": restore_best,
        "loss": loss,
        "threads": threads,
        "residual": residual,
        "relative": relative,
        "series_column": series_column,
        "refit": refit,
        "mean": _csv_floats(mean, "--mean"),
        "std": _csv_floats(std, "--std"),
        "cache": cache,
        "channels": _csv_ints(channels, "--channels"),
        "kernel_size": kernel_size,
        "padding": padding,
        "finetune_lr_factor": finetune_lr_factor,
    }
    from dlpipe.pipeline.train import cli_command

    with cli_command(
        _STATE.get("argv") or sys.argv[1:]
    ):  # the run records the command line that made it
        run = dl.train(
            data,
            target,
            task=task,
            test=str(test) if test else None,
            out=out,
            config=config,
            model={k: v for k, v in model_section.items() if v is not None} or None,
            epochs=_number_or_auto(epochs, "--epochs", int),
            batch_size=_number_or_auto(batch_size, "--batch-size", int),
            learning_rate=_number_or_auto(lr, "--lr", float),
            seed=seed,
            runs_dir=runs_dir,
            progress="quiet" if quiet else "auto",
            **{k: v for k, v in options.items() if v is not None},
            checkpoint=checkpoint,
            resume=resume,
            callbacks=_trackers(track, runs_dir),
            report=report,
            overwrite=overwrite,
        )
    if os.environ.get("RANK", "0") != "0":
        return  # rank 0 reports for the whole job
    from dlpipe.cli._schema import print_schema

    print_schema(run)  # each column's kind and why
    if run.metrics["task"] in ("reconstruction", "generate"):
        from dlpipe.cli.generative import print_generative

        print_generative(run.metrics)
    else:
        _print_scores(
            run.metrics["test"],
            title=f"{run.metrics['task']} · {run.metrics['dataset']} · test split ({run.metrics['rows']['test']} rows)",
        )
    typer.echo(f"run folder: {run.path}")
    typer.echo(f"bundle:     {run.path / 'bundle' if run.path else '-'}")
    if run.path is not None and (run.path / "report.html").is_file():
        typer.echo(f"report:     {run.path / 'report.html'}")


def _without_launch_flags(argv: list[str]) -> list[str]:
    """The command line for each rank: the same, minus --nproc/--master-port."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--nproc", "--master-port"):
            skip = True
            continue
        if arg.startswith(("--nproc=", "--master-port=")):
            continue
        out.append(arg)
    return out


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (runs/<name>/bundle).")],
    data: Annotated[
        Path, typer.Argument(help="Labelled rows (CSV/TSV/Parquet) with the target column.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the metrics as JSON here.")
    ] = None,
) -> None:
    """Score a bundle on labelled data, beside the baselines it carries."""
    import dlpipe as dl
    from dlpipe.core.files import atomic_file, check_output_file, write_json

    if output is not None:
        check_output_file(output, "`--output`")  # before any work
    scores = dl.evaluate(bundle, str(data))
    _print_scores(scores, title=f"{data} ({scores['rows']} rows)")
    if {"ridge", "logistic"} & set(scores.get("baselines", {})):
        typer.echo(
            "note: the HistGradientBoosting and random-forest baselines are scored in the training run only "
            "(its metrics.json and report.html): a bundle keeps baselines as plain numbers and never a pickled model."
        )
    if output is not None:
        with atomic_file(output, "`--output`") as tmp:
            write_json(tmp, scores)


@app.command()
def predict(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (runs/<name>/bundle).")],
    data: Annotated[
        list[Path],
        typer.Argument(
            help=(
                "Rows to predict (CSV/TSV/Parquet) with the training columns; image bundles: image files "
                "and folders; sequence bundles: a .ts/.tsv file; forecast bundles: the series table or .tsf."
            )
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write predictions to this CSV; '-' or no flag: print them."
        ),
    ] = None,
    keep_columns: Annotated[
        bool,
        typer.Option(
            "--keep-columns",
            help="Write the input's columns (ids and inputs) before each row's predictions.",
        ),
    ] = False,
) -> None:
    """Predict labels/values (and class probabilities) for raw rows or images."""
    import dlpipe as dl
    from dlpipe.core.files import atomic_file, check_output_file

    if output is not None and str(output) == "-":  # the Unix convention: standard output
        output = None
    if output is not None:
        check_output_file(output, "`--output`")  # before any work
    loaded = dl.load_bundle(bundle)
    if loaded.kind == "image":
        from dlpipe.data.images import expand_image_paths

        files = expand_image_paths(data)
        preds = loaded.predict(files)
        preds.insert(0, "path", [str(f) for f in files])
    elif len(data) != 1:
        from dlpipe.core.errors import InvalidInputError

        raise InvalidInputError(
            f"a {loaded.kind} bundle predicts one file at a time but {len(data)} were given; pass one file."
        )
    elif not data[0].exists():
        # the argument is a path, never a document: a text bundle would read the name as one
        from dlpipe.core.errors import UnsupportedFileError

        raise UnsupportedFileError(
            f"input {str(data[0])!r} does not exist; check the path (a {loaded.kind} bundle reads "
            + (
                "a CSV/TSV/Parquet file or a folder of .txt files)."
                if loaded.kind == "text"
                else "a file)."
            )
        )
    elif keep_columns:
        from dlpipe.cli._columns import check_keepable, keep_input_columns
        from dlpipe.data.tabular import read_table

        check_keepable(loaded.kind)
        frame = read_table(str(data[0]), what="input")  # read once: predicted and kept
        preds = keep_input_columns(loaded.predict(frame), frame, command="predict", kind="table")
    else:
        preds = loaded.predict(str(data[0]))
    if output is None:
        typer.echo(preds.to_csv(index=False), nl=False)
        return
    with atomic_file(output, "`--output`") as tmp:
        preds.to_csv(tmp, index=False)
    typer.echo(f"wrote {len(preds)} predictions to {output}")


@app.command()
def datasets() -> None:
    """List the bundled data sets (no downloads)."""
    from dlpipe.data.datasets import list_datasets

    typer.echo(f"{'name':<16}{'task':<12}{'rows':>6}{'features':>10}  description")
    for d in list_datasets():
        typer.echo(f"{d.name:<16}{d.task:<12}{d.rows:>6}{d.features:>10}  {d.description}")


@app.command()
def quickstart(
    dataset: Annotated[str, typer.Option(help="A bundled data set.")] = "breast_cancer",
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
) -> None:
    """The main job on a bundled real data set: train, evaluate beside baselines, bundle, predict."""
    import dlpipe as dl

    typer.echo(
        f"training on the bundled {dataset!r} data set (real data, shipped with scikit-learn)..."
    )
    run = dl.train(dataset, runs_dir=runs_dir)
    _print_scores(
        run.metrics["test"],
        title=f"{run.metrics['task']} · {dataset} · test split ({run.metrics['rows']['test']} rows)",
    )
    ds = dl.datasets.load(dataset)
    sample = ds.frame.drop(columns=[ds.target]).head(3)
    preds = dl.load_bundle(run.path / "bundle").predict(sample)
    typer.echo("predictions for the first 3 rows, from the saved bundle:")
    typer.echo(preds.round(4).to_string(index=False))
    typer.echo(f"run folder: {run.path}")


@app.command()
def version() -> None:
    """Print the dlpipe version."""
    from dlpipe import __version__

    typer.echo(__version__)


def _print_scores(scores: dict[str, Any], title: str) -> None:
    metric = scores["primary_metric"]
    keys = [
        k
        for k in (
            "accuracy",
            "f1",
            "f1_macro",
            "roc_auc",
            "log_loss",
            "r2",
            "mae",
            "rmse",
            "smape",
            "mase",
            "windows",
        )
        if k in scores["model"] and k != metric
    ]
    if (
        metric in scores["model"]
    ):  # the primary metric's column first, even one chosen with --metric
        keys.insert(0, metric)
    cost = scores.get("cost_s") or {}  # a table run: seconds to fit and predict
    columns = keys + (["cost s"] if cost else [])
    rows = [("model", scores["model"])] + list(scores["baselines"].items())

    def cells(name: str, m: dict[str, Any]) -> list[str]:
        values = [
            f"{m.get(k, 0):d}" if k == "windows" else f"{m.get(k, float('nan')):.4f}" for k in keys
        ]  # a forecast's score rests on `windows` windows
        return values + ([f"{cost.get(name, float('nan')):.2f}"] if cost else [])

    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        table.add_column("")
        for k in columns:
            table.add_column(k, justify="right", style="bold" if k == metric else None)
        for name, m in rows:
            table.add_row(name, *cells(name, m))
        Console().print(table)
    else:
        typer.echo(title)
        width = max(16, *(len(name) + 2 for name, _ in rows))
        typer.echo(f"{'':<{width}}" + "".join(f"{k:>10}" for k in columns))
        for name, m in rows:
            typer.echo(f"{name:<{width}}" + "".join(f"{c:>10}" for c in cells(name, m)))
    typer.echo(scores["verdict"])
    for note in scores.get("baseline_notes") or []:
        typer.echo(f"note: {note}.")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    from dlpipe.core.errors import DlpipeWarning

    text = str(message)
    if issubclass(
        category, DlpipeWarning
    ):  # dlpipe's own name keys (`overwrite`); show this command's flags
        text = _flag_names(text)
    print(f"warning: {text}", file=sys.stderr)


def _flag_names(message: str) -> str:
    """A library message with the keys it names shown as the running command's flags (rule: dlpipe.cli._flags)."""
    from dlpipe.cli._flags import command_of, with_flags

    try:
        return with_flags(message, command_of(_STATE.get("argv") or sys.argv[1:]))
    except Exception:  # noqa: BLE001 - a message is never lost to its rewording
        return message


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], ...]:
    """Click's Exit, ClickException and Abort classes: from the click that Typer vendors (typer._click,
    which raises them here) and from a standalone click if one is installed."""
    modules = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            modules.append(__import__(name, fromlist=["Exit"]))
        except ImportError:
            continue
    return tuple(
        tuple(getattr(m, cls) for m in modules if hasattr(m, cls))
        for cls in ("Exit", "ClickException", "Abort")
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; a DlpipeError becomes ``error: <message>`` and exit code 2 (1 for a failed run)."""
    warnings.showwarning = _show_warning  # type: ignore[assignment]
    _STATE["argv"] = list(argv) if argv is not None else sys.argv[1:]
    debug = (
        "--debug" in (argv if argv is not None else sys.argv[1:])
        or os.environ.get("DLPIPE_DEBUG") == "1"
    )
    try:
        app(args=argv, standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print(
            "error: interrupted; no run folder was written (a training run can be continued with `--resume runs/<name>.partial`).",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place where every error becomes one line
        from dlpipe.core.errors import DlpipeError

        if debug:
            raise
        click_exit, click_error, click_abort = _click_exceptions()
        if isinstance(exc, click_exit):
            return int(getattr(exc, "exit_code", 0))
        if isinstance(exc, click_error):
            exc.show()  # type: ignore[attr-defined]  # usage line, "Try ... --help", then the error
            return int(getattr(exc, "exit_code", 2))
        if isinstance(exc, click_abort):
            print("error: aborted.", file=sys.stderr)
            return 1
        if isinstance(exc, DlpipeError):
            print(f"error: {_flag_names(str(exc))}", file=sys.stderr)
            return exc.exit_code
        print(
            f"error: the run failed with {type(exc).__name__}: {exc} (rerun with --debug for the traceback).",
            file=sys.stderr,
        )
        return 1
    return 0


from dlpipe.cli import deploy as _deploy  # noqa: E402,F401 - registers serve, export, drift
from dlpipe.cli import explain as _explain  # noqa: E402,F401 - registers explain
from dlpipe.cli import generative as _generative  # noqa: E402,F401 - registers embed, anomalies, sample
from dlpipe.cli import reports as _reports  # noqa: E402,F401 - registers report, runs, compare, summary
from dlpipe.cli import tuning as _tuning  # noqa: E402,F401 - registers tune, ensemble
from dlpipe.cli.rl import rl_app as _rl_app  # noqa: E402 - the `dlpipe rl` group

app.add_typer(_rl_app, name="rl")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
