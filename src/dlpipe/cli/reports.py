"""Report commands: ``report``, ``runs``, ``compare`` and ``summary`` (thin: each calls dlpipe.reports)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dlpipe.cli.app import app


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="A run folder (runs/<name>).")],
    open_: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
) -> None:
    """(Re)build runs/<name>/report.html from the run folder and print its path."""
    if (
        run / "tuning.json"
    ).is_file():  # a `dlpipe tune` folder: trials table, history, importances
        from dlpipe.tuning.report import build_tuning_report

        typer.echo(f"report: {build_tuning_report(run)}")
        return
    from dlpipe.reports.report import build_report

    typer.echo(f"report: {build_report(run, open_browser=open_)}")


@app.command()
def runs(
    runs_dir: Annotated[Path, typer.Argument(help="The folder that holds run folders.")] = Path(
        "runs"
    ),
) -> None:
    """Table of runs: task, model, key metric beside the best baseline by its direction, epochs, time."""
    from dlpipe.reports.compare import list_runs

    rows = list_runs(runs_dir)
    if not rows:
        typer.echo(f"no runs in {runs_dir}; train one with `dlpipe train <data>`.")
        return
    cols = ("name", "task", "model", "metric", "value", "baseline", "epochs", "time_s")
    marks = {"better": " ✓", "tie": " =", "worse": " ✗"}
    for r in rows:
        r["time_s"] = f"{r['time_s']:.1f}" if isinstance(r["time_s"], (int, float)) else r["time_s"]
        r["metric"] += {"max": " ↑", "min": " ↓"}.get(r["direction"] or "", "")
        r["value"] = _fmt(r["value"]) + marks.get(r["vs_baseline"] or "", "")
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    _print_table(
        ["run", "task", "model", "metric", "model score", "best baseline", "epochs", "time s"],
        cells,
        f"{len(rows)} run{'s' if len(rows) != 1 else ''} in {runs_dir}",
    )
    typer.echo(
        "✓ beats its best baseline, = ties it (not a win), ✗ loses to it; ↑ higher is better, ↓ lower is better"
    )


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="The HTML file to write (default runs/compare-<a>-vs-<b>.html)."
        ),
    ] = None,
    open_: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
) -> None:
    """Compare runs as an HTML page: test scores, the data each was scored on, overlaid training curves, settings that differ."""
    from dlpipe.cli._flags import with_flags
    from dlpipe.reports.compare import compare_runs, comparison_warnings

    path = compare_runs(runs, output)
    typer.echo(f"comparison: {path}")
    for warning in comparison_warnings(
        runs
    ):  # its advice (`test`) is about how the runs were trained
        typer.echo(f"warning: {with_flags(warning, ('train',))}", err=True)
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.command()
def summary(
    bundle: Annotated[
        Path, typer.Argument(help="A bundle folder (runs/<name>/bundle) or a run folder.")
    ],
    diagram: Annotated[
        Path | None, typer.Option("--diagram", help="Also draw the network into this PNG file.")
    ] = None,
) -> None:
    """Print the layer table of a saved model: layer, type, output shape, parameters."""
    from dlpipe.reports.summary import model_diagram
    from dlpipe.reports.summary import summary as summarize

    s = summarize(bundle)
    rows = [
        [r["layer"], r["type"], r["output_shape"], f"{r['params']:,}", f"{r['trainable']:,}"]
        for r in s.table()
    ]
    _print_table(["layer", "type", "output shape", "params", "trainable"], rows, s.model_name)
    typer.echo(f"total parameters {s.total_params:,} (trainable {s.trainable_params:,})")
    if s.note:
        typer.echo(s.note)
    if diagram is not None:
        plot = model_diagram(s)
        if plot.png is not None:
            diagram.write_bytes(plot.png)
            typer.echo(f"diagram: {diagram}")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.4g}"
    return str(v)


def _print_table(header: list[str], rows: list[list[str]], title: str) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i < 2 else "right")
        for r in rows:
            table.add_row(*r)
        Console().print(table)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    typer.echo(title)
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
