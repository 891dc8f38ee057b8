"""``dlpipe explain BUNDLE data.csv``: which columns a table model leans on (thin: calls ``dlpipe.explain``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlpipe.cli.app import app


@app.command()
def explain(
    bundle: Annotated[Path, typer.Argument(help="A table bundle folder (runs/<name>/bundle).")],
    data: Annotated[
        Path,
        typer.Argument(
            help="Rows (CSV/TSV/Parquet) with the training columns; with the target column too for permutation importance."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write each row's integrated-gradients attributions (one column per input column, plus output and baseline_output) to this CSV.",
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(help="Shuffles per column (permutation importance).")] = 5,
    max_rows: Annotated[
        int, typer.Option(help="Rows used for permutation importance (a seeded sample if more).")
    ] = 1000,
    steps: Annotated[
        int, typer.Option(help="Trapezoid steps along each integrated-gradients path.")
    ] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the shuffles and the sample.")] = 0,
) -> None:
    """Permutation importance (labelled rows) and integrated-gradients attributions of a table model."""
    import dlpipe as dl
    from dlpipe.core.files import atomic_file, check_output_file

    if output is not None:
        check_output_file(output, "`--output`")  # before any work
    e = dl.explain(
        dl.load_bundle(bundle),
        str(data),
        repeats=repeats,
        max_rows=max_rows,
        steps=steps,
        seed=seed,
    )
    head = (
        f"permutation importance: drop in {e.metric} when a column is shuffled ({repeats} shuffles)"
        if e.metric
        else "no target column in the rows: permutation importance needs labels; attributions only"
    )
    typer.echo(
        f"{data} ({e.rows} rows); {head}; |IG| mean: mean absolute attribution to the {e.output}"
    )
    typer.echo(e.to_text())
    if e.completeness_error > 0.01:
        typer.echo(
            f"note: attributions add up to the output within {100 * e.completeness_error:.1f}% only; raise --steps."
        )
    if output is not None:
        with atomic_file(output, "`--output`") as tmp:
            e.attributions.to_csv(tmp, index=False)
        typer.echo(f"wrote {len(e.attributions)} rows of attributions to {output}")
