"""``dlpipe embed``, ``dlpipe anomalies`` and ``dlpipe sample``: thin commands over dlpipe.pipeline.generative."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from dlpipe.cli.app import app
from dlpipe.core.files import private_tmp

__all__: list[str] = []


def _write_csv(frame: Any, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(output)
    frame.to_csv(tmp, index=False)
    os.replace(tmp, output)


def print_generative(metrics: dict[str, Any]) -> None:
    """A few lines for a generative run: the test figure beside baselines, anomaly and embedding scores."""
    test = metrics["test"]
    metric = test["primary_metric"]
    typer.echo(
        f"{metrics['task']} · {metrics['model_family']} · {metrics['dataset']} · {metrics.get('evaluated_on', 'test')} split ({test['rows']} rows)"
    )
    typer.echo(
        f"  {metric:<22} model {test['model'][metric]:.4g}  "
        + "  ".join(f"{k} {v[metric]:.4g}" for k, v in test["baselines"].items())
    )
    if "anomaly" in metrics:
        a = metrics["anomaly"]
        typer.echo(
            f"  anomaly ROC-AUC        model {a['roc_auc']:.4f}  pca {a['baselines']['pca']['roc_auc']:.4f}  (positive: {a['positive']})"
        )
        typer.echo(
            f"  at the threshold       precision {a['precision']:.4f}  recall {a['recall']:.4f}"
        )
    if "embedding" in metrics:
        e = metrics["embedding"]
        typer.echo(
            "  embedding kNN accuracy model {:.4f}  ".format(e["knn_accuracy"])
            + "  ".join(f"{k} {v['knn_accuracy']:.4f}" for k, v in e["baselines"].items())
        )
    if "stopped_reason" in metrics:
        typer.echo(f"  note: {metrics['stopped_reason']}")
    typer.echo(test["verdict"])


@app.command()
def embed(
    bundle: Annotated[
        Path, typer.Argument(help="An autoencoder or VAE bundle (runs/<name>/bundle).")
    ],
    data: Annotated[
        Path,
        typer.Argument(
            help="Rows (CSV/TSV/Parquet) with the training columns, or an .npz of arrays."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the latent vectors to this CSV (default: print)."
        ),
    ] = None,
) -> None:
    """Latent vectors (the encoder's output) for each row / image / window."""
    from dlpipe.pipeline.generative import embed as embed_data

    z = embed_data(bundle, str(data))
    if output is None:
        typer.echo(z.to_csv(index=False), nl=False)
        return
    _write_csv(z, output)
    typer.echo(f"wrote {len(z)} embeddings of width {z.shape[1]} to {output}")


@app.command()
def anomalies(
    bundle: Annotated[
        Path, typer.Argument(help="An autoencoder or VAE bundle (runs/<name>/bundle).")
    ],
    data: Annotated[
        Path,
        typer.Argument(
            help="Rows (CSV/TSV/Parquet) with the training columns, or an .npz of arrays."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write score and anomaly flag per row to this CSV (default: print).",
        ),
    ] = None,
    contamination: Annotated[
        float | None,
        typer.Option(
            help="Expected share of anomalies; sets the threshold at that quantile of the training errors."
        ),
    ] = None,
    threshold_percentile: Annotated[
        float | None,
        typer.Option(help="Threshold at this percentile of the training errors (default 99)."),
    ] = None,
    keep_columns: Annotated[
        bool,
        typer.Option(
            "--keep-columns",
            help="Write the input's columns (ids and inputs) before each row's score and flag (CSV/TSV/Parquet input).",
        ),
    ] = False,
) -> None:
    """Anomaly scores (reconstruction errors) and flags; ROC-AUC, precision and recall when the data holds the label column."""
    from dlpipe.pipeline.generative import score_anomalies

    frame = None
    if keep_columns:
        from dlpipe.core.errors import InvalidInputError
        from dlpipe.data.tabular import read_table

        if data.suffix.lower() == ".npz":
            raise InvalidInputError(
                f"`--keep-columns` keeps a table's columns, but {str(data)!r} is an .npz of arrays; pass a CSV/TSV/Parquet file or run without it."
            )
        frame = read_table(str(data), what="input")  # read once: scored and kept
    scored, summary = score_anomalies(
        bundle,
        frame if frame is not None else str(data),
        contamination=contamination,
        threshold_percentile=threshold_percentile,
    )
    if frame is not None:
        from dlpipe.cli._columns import keep_input_columns

        scored = keep_input_columns(scored, frame, command="anomalies", kind="autoencoder")
    line = f"{summary['flagged']} of {summary['rows']} rows above the threshold {summary['threshold']:.4g} ({summary['rule']})"
    if "roc_auc" in summary:
        line += f"; ROC-AUC {summary['roc_auc']:.4f}, precision {summary['precision']:.4f}, recall {summary['recall']:.4f} ({summary['positive']})"
    if output is None:
        typer.echo(scored.to_csv(index=False), nl=False)
        typer.echo(line, err=True)
        return
    _write_csv(scored, output)
    typer.echo(line)
    typer.echo(f"wrote {len(scored)} scores to {output}")


@app.command()
def sample(
    bundle: Annotated[Path, typer.Argument(help="A VAE or GAN bundle (runs/<name>/bundle).")],
    n: Annotated[int, typer.Option("-n", "--n", help="How many samples.")] = 64,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="A .png grid for images; a .csv for table rows (scaled features).",
        ),
    ] = Path("samples.png"),
    seed: Annotated[int, typer.Option(help="Seed of the noise.")] = 0,
) -> None:
    """New samples from a generative bundle: an image grid (PNG) or rows (CSV)."""
    import numpy as np

    from dlpipe.core.errors import InvalidConfigError
    from dlpipe.pipeline.generative import sample as sample_bundle
    from dlpipe.pipeline.generative import save_image_grid

    x = sample_bundle(bundle, n, seed=seed)
    if output.suffix.lower() == ".png":
        if x.ndim != 4:
            raise InvalidConfigError(
                f"this bundle generates table rows, which cannot be drawn as {output.name!r}; pass -o samples.csv."
            )
        save_image_grid(x, output)
    elif output.suffix.lower() == ".csv":
        import pandas as pd

        _write_csv(pd.DataFrame(np.asarray(x).reshape(len(x), -1)), output)
    else:
        raise InvalidConfigError(
            f"`--output` is {str(output)!r} but must end in .png (image grid) or .csv (rows)."
        )
    typer.echo(f"wrote {n} samples to {output}")
