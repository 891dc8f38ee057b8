"""``dlpipe explain BUNDLE data``: which columns a table model leans on, or which pixels, time steps or tokens an
image, sequence or text classifier's predictions rest on (thin: calls ``dlpipe.explain``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlpipe.cli.app import app


@app.command()
def explain(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (runs/<name>/bundle).")],
    data: Annotated[
        Path,
        typer.Argument(
            help="Rows (CSV/TSV/Parquet) with the training columns (with the target column too for permutation "
            "importance); for an image bundle image files' folder, a sequence bundle its cases, a text bundle documents."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Tables: a CSV of each row's integrated-gradients attributions. Images, sequences, text: a new folder "
            "for overlay PNGs / attributions.csv / tokens.csv and tokens.html (images default to ./explanations).",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an explanations folder dlpipe wrote (images, sequences, text).",
        ),
    ] = False,
    repeats: Annotated[int, typer.Option(help="Shuffles per column (permutation importance).")] = 5,
    max_rows: Annotated[
        int,
        typer.Option(
            help="Tables: rows used for permutation importance (a seeded sample if more); images, sequences, "
            "text: the first inputs explained."
        ),
    ] = 1000,
    steps: Annotated[
        int, typer.Option(help="Trapezoid steps along each integrated-gradients path.")
    ] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the shuffles and the sample.")] = 0,
) -> None:
    """Permutation importance and integrated gradients of a table model; attributions to the pixels, time steps or
    tokens of an image, sequence or text classifier's inputs."""
    import dlpipe as dl
    from dlpipe.bundle.explain import Explanation, InputExplanation
    from dlpipe.core.errors import UnsupportedFileError
    from dlpipe.core.files import atomic_file, check_output_dir, check_output_file

    loaded = dl.load_bundle(bundle)
    if loaded.kind in ("image", "sequence", "text"):
        if not data.exists():  # a text bundle would read a missing path's name as a document
            raise UnsupportedFileError(
                f"`data` {str(data)!r} does not exist; pass the {loaded.kind} file(s) or folder to explain."
            )
        folder = (
            output
            if output is not None
            else (Path("explanations") if loaded.kind == "image" else None)
        )
        if folder is not None:  # before any work
            check_output_dir(folder, kind="explanations", overwrite=overwrite, what="`--output`")
        ex = dl.explain(loaded, str(data), max_rows=max_rows, steps=steps, seed=seed)
        assert isinstance(ex, InputExplanation)
        typer.echo(
            f"{data} ({len(ex.items)} inputs): {ex.method.replace('_', ' ')} of {ex.output}"
            + (
                f"; attributions add up to output minus baseline output within {100 * ex.completeness_error:.2g}%"
                if ex.method == "integrated_gradients"
                else ""
            )
        )
        typer.echo(ex.to_text())
        if folder is not None:
            files = ex.save(folder, overwrite=overwrite)
            typer.echo(f"wrote {len(files)} files to {folder}")
        return
    if output is not None:
        check_output_file(output, "`--output`")  # before any work
    e = dl.explain(
        loaded,
        str(data),
        repeats=repeats,
        max_rows=max_rows,
        steps=steps,
        seed=seed,
    )
    assert isinstance(e, Explanation)
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
