"""Deployment commands: ``serve``, ``export`` and ``drift`` (thin: each calls the public API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlpipe.cli.app import app


@app.command()
def serve(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (runs/<name>/bundle).")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model once).")] = 1,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Name of an environment variable holding the API key; every path but /health then needs it (the page and docs too)."
        ),
    ] = None,
    batch_window_ms: Annotated[
        float,
        typer.Option(
            help="Gather concurrent single-row requests for this long into one forward pass (0: off)."
        ),
    ] = 0.0,
    max_body_mb: Annotated[
        float,
        typer.Option(
            help="Largest request body accepted, in MB, counted as it arrives (larger: 413)."
        ),
    ] = 10.0,
    header_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client has to send a request's headers (else 408 and the connection closes)."
        ),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a request body may stop arriving (else 408 and the connection closes)."
        ),
    ] = 30.0,
    keep_alive_timeout: Annotated[
        float, typer.Option(help="Seconds an idle kept-alive connection stays open.")
    ] = 5.0,
    max_connections: Annotated[
        int, typer.Option(help="Open connections per worker; more get a 503.")
    ] = 200,
    max_header_kb: Annotated[
        float, typer.Option(help="Largest request line plus headers, in kB (larger: 431).")
    ] = 64.0,
    drift_window: Annotated[
        int, typer.Option(help="How many recent input rows GET /drift compares (1 to 100000).")
    ] = 1000,
) -> None:
    """Serve a bundle over HTTP: POST /predict, /predict/csv, GET /health, /metadata, /drift, an HTML page at /."""
    from dlpipe.serving import ServeConfig, run_server

    run_server(
        ServeConfig(
            bundle=str(bundle),
            api_key_env=api_key_env,
            batch_window_ms=batch_window_ms,
            max_body_mb=max_body_mb,
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            keep_alive_s=keep_alive_timeout,
            max_connections=max_connections,
            max_header_kb=max_header_kb,
            drift_window=drift_window,
        ),
        host=host,
        port=port,
        workers=workers,
    )


@app.command()
def export(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (runs/<name>/bundle).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="onnx, torchscript or pt2 (torch.export).")
    ] = "onnx",
    output: Annotated[Path, typer.Option("--output", "-o", help="The exported model file.")] = Path(
        "model.onnx"
    ),
    quantize: Annotated[
        str | None, typer.Option(help="int8: dynamic int8 quantisation of the weights.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Rows (tables: CSV/TSV/Parquet; images: files or a folder; sequences/series: their files) for the parity check, and with labels the metric change of --quantize; default: cases synthesised from the training statistics."
        ),
    ] = None,
) -> None:
    """Export a bundle to ONNX / TorchScript / torch.export; table preprocessing is folded into the graph."""
    from dlpipe.export import export_bundle

    result = export_bundle(
        bundle,
        output,
        format=format,  # type: ignore[arg-type]  # typer checked it against the choices
        quantize=quantize,  # type: ignore[arg-type]
        data=str(data) if data else None,
    )
    typer.echo(
        f"wrote {result.path} ({result.path.stat().st_size / 1e3:.1f} kB) and {result.sidecar}"
    )
    if result.parity is not None:
        typer.echo(
            f"parity with PyTorch on {result.parity['rows']} rows: max abs diff {result.parity['max_abs_diff']:.2e}"
        )
    if result.quantization is not None:
        q = result.quantization
        size = f"{q['bytes_float'] / 1e3:.1f} kB -> {q['bytes_int8'] / 1e3:.1f} kB"
        if "metric" in q:
            typer.echo(
                f"int8: {q['metric']} {q['float']:.4f} -> {q['int8']:.4f} (change {q['int8'] - q['float']:+.4f}) on {q['rows']} rows; {size}"
            )
        else:  # no labelled rows: the outputs' change only
            typer.echo(
                f"int8: max abs diff from the float model {q['max_abs_diff']:.2e} on {q['rows']} {'synthesised ' if data is None else ''}cases; {size}; pass labelled rows with --data for the metric's change"
            )


@app.command()
def drift(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (runs/<name>/bundle).")],
    data: Annotated[
        Path, typer.Argument(help="New rows (CSV/TSV/Parquet) to compare with the training inputs.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write an HTML page with overlaid distributions."),
    ] = None,
    level: Annotated[
        float, typer.Option(help="Significance level of the KS / chi-square tests.")
    ] = 0.05,
) -> None:
    """Compare new rows with the training inputs per feature: KS (numeric), chi-square (categorical), PSI."""
    import dlpipe as dl
    from dlpipe.monitoring import detect_drift

    b = dl.load_bundle(bundle)
    report = detect_drift(b, str(data), level=level)
    typer.echo(report.to_text())
    if output is not None:
        report.to_html(output)
        typer.echo(f"wrote {output}")
